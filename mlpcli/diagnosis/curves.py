"""Learning curves as the rules read them: validated, in loss orientation, NaN epochs dropped, scaled
(``prepare_curves``; steps 1 and 2 of ``mlpcli.diagnosis``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DataError

# --- input -------------------------------------------------------------------------------------
MIN_POINTS = 3  # two points always lie on a line; three are the least that can show a trend
SHORT_CURVE_EPOCHS = 10  # below this the last window holds ~3 points: the label is best-effort
FIRST_EPOCHS = 3  # without a baseline, the scale is the level of this many first epochs



class CurveError(DataError, ValueError):
    """Learning curves that cannot be diagnosed (mismatched lengths, too few finite epochs)."""


class BaselineError(CurveError):
    """A baseline that cannot serve as the scale; its own class so that a caller can blame whoever gave
    it (a user's option rather than the curves' file)."""


@dataclass(frozen=True)
class Curves:
    """Validated curves in loss orientation, NaN epochs dropped; ``scale`` > 0."""

    epochs: np.ndarray  # (n,) 1-based epoch numbers of the kept points
    train: np.ndarray  # (n,)
    val: np.ndarray  # (n,)
    train_eval: np.ndarray | None  # (n,), may still hold NaN
    scale: float
    scale_source: str
    baseline: float | None  # in loss orientation
    n_missing: int
    ceiling: float | None  # loss = ceiling - score for score curves, None for losses
    spread: np.ndarray | None = None  # (n,) s.d. of validation across ensemble members, may hold NaN
    n_infinite: int = 0  # epochs where a curve is infinite: the run blew up (dropped, not missing)
    first_infinite: int | None = None  # the first such epoch


# --- preparing the input -----------------------------------------------------------------------


def _as_curve(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise CurveError(f"{name} must be a sequence of numbers") from None
    if arr.ndim != 1:
        raise CurveError(f"{name} must be one-dimensional (one value per epoch), got shape "
                         f"{arr.shape}")
    return arr


def _initial_level(train: np.ndarray, val: np.ndarray) -> float:
    """Level of the first epochs: the larger of the first training value and the medians of the
    first ``FIRST_EPOCHS`` values of each curve. The first training value is the mean over the
    first epoch, so it still carries the untrained network's loss when learning is fast."""
    k = min(FIRST_EPOCHS, len(train))
    return float(max(train[0], np.median(train[:k]), np.median(val[:k])))


def _check_lengths(train: np.ndarray, val: np.ndarray, train_eval: np.ndarray | None,
                   spread: np.ndarray | None = None, names: tuple[str, str] = ("train_loss", "val_loss")) -> None:
    if len(train) != len(val):
        raise CurveError(f"{names[0]} and {names[1]} must have one value per epoch: got "
                         f"{len(train)} and {len(val)} values")
    if train_eval is not None and len(train_eval) != len(train):
        raise CurveError(f"train_eval_loss must have one value per epoch like {names[0]}: got "
                         f"{len(train_eval)} and {len(train)} values")
    if spread is not None and len(spread) != len(train):
        raise CurveError(f"member_spread must have one value per epoch like {names[0]}: got "
                         f"{len(spread)} and {len(train)} values")
    if spread is not None and np.any(spread < 0):  # NaN compares False: missing epochs pass
        raise CurveError("member_spread holds a negative value; it is a standard deviation")


def _loss_baseline(baseline: float | None, ceiling: float | None) -> float | None:
    """The baseline in loss orientation; it must be a finite loss above 0 to serve as the scale."""
    if baseline is None:
        return None
    try:
        value = float(baseline)
    except (TypeError, ValueError):
        raise BaselineError(f"baseline must be a number, got {baseline!r}") from None
    loss = value if ceiling is None else ceiling - value
    if not (math.isfinite(loss) and loss > 0):
        need = "a finite loss above 0" if ceiling is None else f"a finite score below {ceiling:g}"
        raise BaselineError(f"baseline must be {need}, got {value:g}")
    return loss


def _scale(train: np.ndarray, val: np.ndarray, baseline: float | None) -> tuple[float, str]:
    """``S`` and its source: the baseline, else the first epochs' level, else (curves below 0,
    e.g. log-likelihoods) their range."""
    if baseline is not None:
        return baseline, "baseline"
    level = _initial_level(train, val)
    if math.isfinite(level) and level > 0:
        return level, "first_epochs"
    spread = float(np.ptp(np.concatenate([train, val])))
    return (spread, "range") if spread > 0 else (1.0, "unit")


def prepare_curves(train_loss, val_loss, baseline, train_eval_loss, higher_is_better, member_spread=None,
             names: tuple[str, str] = ("train_loss", "val_loss")) -> Curves:
    """Validate, turn scores into losses, drop epochs where either curve is not finite (NaN: missing;
    infinite: blown up, counted apart). names: what the two curves are called in messages."""
    train, val = _as_curve(train_loss, names[0]), _as_curve(val_loss, names[1])
    train_eval = None if train_eval_loss is None else _as_curve(train_eval_loss, "train_eval_loss")
    spread = None if member_spread is None else _as_curve(member_spread, "member_spread")
    _check_lengths(train, val, train_eval, spread, names)
    keep = np.isfinite(train) & np.isfinite(val)  # (n_epochs,)
    infinite = np.isinf(train) | np.isinf(val)  # (n_epochs,)
    first_infinite = int(np.flatnonzero(infinite)[0]) + 1 if infinite.any() else None
    if keep.sum() < MIN_POINTS:
        diverged = f" (the run diverged: infinite from epoch {first_infinite})" if first_infinite else ""
        raise CurveError(f"need at least {MIN_POINTS} epochs where both {names[0]} and {names[1]} "
                         f"are finite, got {int(keep.sum())}{diverged}")
    ceiling = None
    if higher_is_better:  # score -> loss: ceiling - score (the error rate for scores <= 1)
        ceiling = max(1.0, float(np.max(np.concatenate([train[keep], val[keep]]))))
        train, val = ceiling - train, ceiling - val
        train_eval = None if train_eval is None else ceiling - train_eval
    loss_baseline = _loss_baseline(baseline, ceiling)
    epochs = np.arange(1, len(keep) + 1)[keep]
    train, val = train[keep], val[keep]
    train_eval = None if train_eval is None else train_eval[keep]
    scale, source = _scale(train, val, loss_baseline)
    spread = None if spread is None else spread[keep]  # an s.d.: the same for a score and its loss
    return Curves(epochs, train, val, train_eval, scale, source, loss_baseline,
                   int((~keep & ~infinite).sum()), ceiling, spread, int(infinite.sum()), first_infinite)
