"""The scaling's elementwise kernels: centre and scale in place, and robust scaling's smooth clip
z -> z / sqrt(1 + (z / CLIP_AT)^2) (RealMLP-TD)."""

from __future__ import annotations

import numpy as np


CLIP_AT = 3.0  # robust scaling's smooth clip x / sqrt(1 + (x / 3)^2) keeps values within ±3 (RealMLP-TD)


# The values before the robust clip that the shift check's spread test compares (``Preprocessor.unclipped``, the
# training SDs) are held within ±UNCLIPPED_LIMIT scales: the clip's inverse is exact to ~1e-4 there from float32
# inputs, and a value 1e12 IQRs out came back as inf (an SD ratio of inf for a gene as far out in training)
UNCLIPPED_LIMIT = 100.0


def scale_in_place(Z: np.ndarray, center: np.ndarray, scale: np.ndarray, clip: bool,
                    scratch: np.ndarray | None = None) -> None:
    """Z (n, d) <- (Z - center) / scale, then the robust smooth clip when ``clip`` (``scratch``: its work space,
    as ``smooth_clip``). A quotient beyond float64 (a value absurdly far outside a feature's training spread)
    becomes ±inf without a warning; clipping maps it to ±CLIP_AT, and unclipped callers check the result."""
    events: list[str] = []
    with np.errstate(over="call", divide="call", invalid="call", call=lambda kind, flag: events.append(kind)):
        Z -= center
        Z /= scale
    if clip:
        if events:
            big = np.finfo(np.float64).max
            np.clip(Z, -big, big, out=Z)  # ±inf -> ±max, keeping the sign for the clip
        smooth_clip(Z, scratch)


def smooth_clip(Z: np.ndarray, scratch: np.ndarray | None = None) -> None:
    """In place: z / sqrt(1 + (z / CLIP_AT)^2), smooth, monotone, within ±CLIP_AT; Z must be finite.
    scratch: an array of Z's shape (and layout) to work in, instead of a new one.

    For |z| beyond ~4e154 the square overflows and z / inf gives ±0, where the exact value is ±CLIP_AT to
    float64 precision: those entries are set to it (found only when an overflow happened, so the usual
    case costs no extra pass)."""
    overflowed: list[str] = []
    with np.errstate(over="call", call=lambda kind, flag: overflowed.append(kind)):
        T = np.divide(Z, CLIP_AT, out=scratch)
        np.square(T, out=T)
        T += 1.0
        np.sqrt(T, out=T)
        Z /= T  # finite / inf = ±0, the sign of z kept
    if overflowed:
        huge = np.isinf(T)
        Z[huge] = np.copysign(CLIP_AT, Z[huge])
