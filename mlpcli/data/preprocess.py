"""Preprocessing fitted on training rows only: log1p, imputation, constant-feature removal,
top-variance selection, standardisation; stored in the model without pickle."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError, ModelFileError
from .io import _short_reason
from ._common import IMPUTE_METHODS, _counted, _quoted

# ── preprocessing ────────────────────────────────────────────────────────────────────────────────────────


SCALINGS = ("standard", "robust")
CLIP_AT = 3.0  # robust scaling's smooth clip x / sqrt(1 + (x / 3)^2) keeps values within ±3 (RealMLP-TD)

# A median per-feature skewness above this on non-negative data looks like raw counts or TPM, for which
# log1p is the usual first step (the sample data sits near 2.7; log-scale microarray data near 0).
COUNTS_SKEW = 1.0

# Feature values beyond float32's range (about ±3.4e38) cannot reach a float32 network and are in practice
# data errors (units, a parsing slip, a sentinel like 1e300); they are refused where tables are read, naming
# the column and row. Within the limit every training statistic stays finite in float64 (squares < 1e78).
VALUE_LIMIT = float(np.finfo(np.float32).max)
# A feature whose training values span less than this is constant for float64 arithmetic: its spread would
# be a subnormal number (a few significant bits, or 0), so scaling by it gives noise or infinities.
TINY_SPREAD = float(np.finfo(np.float64).tiny) * 2.0**52


@dataclass
class PreprocessConfig:
    log1p: bool = False  # log(1 + x) first; counts/TPM are heavy-tailed
    top_var: int | None = None  # keep the N most variable features (on training rows)
    standardize: bool = True  # centre and scale with training statistics
    impute: str | None = None  # None (missing values are an error) | "median" | "mean" | "zero"
    scaling: str = "standard"  # standard: mean and SD | robust: median and IQR, then smooth clipping

    def validate(self) -> None:
        if self.impute is not None and self.impute not in IMPUTE_METHODS:
            raise ConfigError(f"--impute {self.impute!r} is not one of {', '.join(IMPUTE_METHODS)}")
        if self.scaling not in SCALINGS:
            raise ConfigError(f"--scaling {self.scaling!r} is not one of {', '.join(SCALINGS)}")
        if self.top_var is not None and (isinstance(self.top_var, bool) or not isinstance(self.top_var, (int, np.integer))
                                         or self.top_var < 1):
            raise ConfigError(f"--top-var must be a positive whole number, got {self.top_var!r}")


_STATE_ARRAYS = ("kept_index", "impute_values", "center", "scale", "train_mean", "train_sd")
_STATE_VERSION = 1


class Preprocessor:
    """log1p -> impute -> drop constant features -> top-variance filter -> centre and scale.

    Scaling ``standard`` gives z-scores. ``robust`` (RealMLP-TD's default) centres on the median, divides
    by the interquartile range (half the range when the IQR is 0) and then clips smoothly,
    z -> z / sqrt(1 + (z/3)^2), so a few extreme samples cannot dominate the first layer.

    Every parameter is fitted on the training rows only; `transform` applies them to any rows and never
    refits. Fitted arrays are per kept feature, shape (d_kept,).
    """

    def __init__(self, config: PreprocessConfig | None = None):
        self.config = config if config is not None else PreprocessConfig()
        self.config.validate()
        self.feature_names_in: list[str] = []
        self.kept_features: list[str] = []
        self.dropped_constant: list[str] = []
        self.warnings: list[str] = []
        self.kept_index_: np.ndarray | None = None  # (d_kept,) int64 columns of the input that are kept
        self.impute_values_: np.ndarray | None = None  # (d_kept,) NaN when impute is off
        self.center_: np.ndarray | None = None  # (d_kept,) subtracted (0 when standardize is off)
        self.scale_: np.ndarray | None = None  # (d_kept,) divided by (1 when standardize is off)
        self.train_mean_: np.ndarray | None = None  # (d_kept,) of the transformed training rows
        self.train_sd_: np.ndarray | None = None  # (d_kept,)

    @property
    def n_features_in(self) -> int:
        return len(self.feature_names_in)

    def fit(self, X, feature_names: Sequence[str]) -> "Preprocessor":
        """Fit on training rows X (n, d). Does not modify X."""
        cfg = self.config
        names = [str(n) for n in feature_names]
        X = np.array(X, dtype=np.float64, copy=True)  # own copy: the steps below work in place
        if X.ndim != 2 or X.shape[1] != len(names):
            raise DataError(f"preprocessing expects a 2-D array with {len(names)} feature columns, got shape {X.shape}")
        if X.shape[0] == 0:
            raise DataError("no training rows to fit the preprocessing on")
        if np.isinf(X).any():
            bad = np.flatnonzero(np.isinf(X).any(axis=0))
            raise DataError(f"feature columns hold infinite values: {_quoted(np.asarray(names)[bad])}; replace them")
        at = first_beyond_limit(X)
        if at is not None:
            raise DataError(value_limit_message("feature column", names[at[1]], X[at], f"training row {at[0] + 1}"))
        self.feature_names_in = names
        self.warnings = []

        if cfg.log1p:
            _check_non_negative(X, names)
            np.log1p(X, out=X)
        impute_values = self._fit_impute(X, names)  # (d,) fills NaN in X in place

        variable = X.max(axis=0) - X.min(axis=0) >= TINY_SPREAD  # values are within ±VALUE_LIMIT: no overflow
        self.dropped_constant = [names[j] for j in np.flatnonzero(~variable)]
        if self.dropped_constant:
            self.warnings.append(
                f"dropped {len(self.dropped_constant)} features constant on the training rows: "
                f"{_quoted(self.dropped_constant)}"
            )
        if not variable.any():
            raise DataError(f"all {len(names)} features are constant on the training rows; nothing to learn from")
        kept = self._select_top_var(X, np.flatnonzero(variable))

        Xk = X[:, kept]  # (n, d_kept)
        if not cfg.standardize:
            self.center_, self.scale_ = np.zeros(len(kept)), np.ones(len(kept))
        elif cfg.scaling == "robust":
            q25, median, q75 = np.percentile(Xk, [25, 50, 75], axis=0)
            half_range = (Xk.max(axis=0) - Xk.min(axis=0)) / 2  # >= TINY_SPREAD / 2: constant columns are gone
            self.center_, self.scale_ = median, np.where(q75 - q25 >= TINY_SPREAD, q75 - q25, half_range)
        else:
            self.center_, self.scale_ = Xk.mean(axis=0), _column_sd(Xk)  # sd > 0: constant columns are gone
        Z = Xk  # a copy of X's kept columns, no longer needed raw
        _scale_in_place(Z, self.center_, self.scale_, self._clips)  # robust: a huge z/IQR overflows, then clips
        self.train_mean_, self.train_sd_ = Z.mean(axis=0), _column_sd(Z)
        self.kept_index_ = kept.astype(np.int64)
        self.impute_values_ = impute_values[kept]
        self.kept_features = [names[j] for j in kept]
        return self

    def _fit_impute(self, X: np.ndarray, names: list[str]) -> np.ndarray:
        """Imputation values (d,) from the training rows; fills X's NaN in place. NaN values when impute is off."""
        method = self.config.impute
        nan_mask = np.isnan(X)
        nan_counts = nan_mask.sum(axis=0)
        if method is None:
            if nan_counts.any():
                raise DataError(_missing_message(names, nan_counts))
            return np.full(X.shape[1], np.nan)
        if method == "zero":
            values = np.zeros(X.shape[1])
        elif method == "mean":
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns, handled below
                values = np.nanmean(X, axis=0)
        else:
            values = _nan_median(X, nan_mask, nan_counts)
        empty = nan_counts == X.shape[0]
        if empty.any():
            values[empty] = 0.0  # no training value at all: the column becomes constant and is dropped
            self.warnings.append(
                f"{int(empty.sum())} features have no values on the training rows: {_quoted(np.asarray(names)[empty])}"
            )
        if nan_counts.any():
            rows, cols = np.nonzero(nan_mask)
            X[rows, cols] = values[cols]
        return values

    def _select_top_var(self, X: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Column indices to keep (sorted): the `top_var` most variable of `candidates`, or all of them."""
        n_keep = self.config.top_var
        if n_keep is None:
            return candidates
        if n_keep >= len(candidates):
            if n_keep > len(candidates):
                self.warnings.append(f"--top-var {n_keep} is more than the {len(candidates)} non-constant "
                                     "features; keeping all of them")
            return candidates
        variances = X[:, candidates].var(axis=0)
        # stable sort on -variance: ties keep the earlier column, so the choice is deterministic
        order = np.argsort(-variances, kind="stable")[:n_keep]
        return np.sort(candidates[order])

    def transform(self, X, dtype=np.float64) -> np.ndarray:
        """(n, d_in) -> (n, d_kept) with the fitted parameters; X is not modified."""
        if self.kept_index_ is None:
            raise RuntimeError("Preprocessor.transform called before fit")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in:
            raise DataError(f"expected {self.n_features_in} feature columns, got shape {X.shape}; "
                            "the table's features must match the ones the model was trained on")
        return self._transform_in_place(X[:, self.kept_index_], dtype)  # fancy indexing copies: X is left alone

    def transform_kept(self, Xk, dtype=np.float64, logged: bool = False, scratch: bool = False) -> np.ndarray:
        """(n, d_kept) raw values of the kept features only, in ``kept_features`` order -> (n, d_kept).

        logged: log1p has been applied already (an ensemble shares it: it has no parameters).
        scratch: Xk is a float64 array the caller gives away, transformed in place; otherwise it is copied."""
        if self.kept_index_ is None:
            raise RuntimeError("Preprocessor.transform_kept called before fit")
        Xk = np.asarray(Xk, dtype=np.float64) if scratch else np.array(Xk, dtype=np.float64)
        if Xk.ndim != 2 or Xk.shape[1] != len(self.kept_features):
            raise DataError(f"expected {len(self.kept_features)} kept feature columns, got shape {Xk.shape}")
        return self._transform_in_place(Xk, dtype, logged)

    def _transform_in_place(self, Xk: np.ndarray, dtype, logged: bool = False) -> np.ndarray:
        if self.config.log1p and not logged:
            _check_non_negative(Xk, self.kept_features)
            np.log1p(Xk, out=Xk)
        nan_mask = np.isnan(Xk)
        if nan_mask.any():
            if self.config.impute is None:
                raise DataError(_missing_message(self.kept_features, nan_mask.sum(axis=0)))
            rows, cols = np.nonzero(nan_mask)
            Xk[rows, cols] = self.impute_values_[cols]
        _scale_in_place(Xk, self.center_, self.scale_, self._clips)
        if not self._clips:
            self._check_inputs(Xk)
        return Xk.astype(dtype, copy=False)

    def _check_inputs(self, Z: np.ndarray) -> None:
        """Unclipped network inputs (n, d_kept) must lie within ±VALUE_LIMIT: beyond it a float32 network
        sees infinities and predicts NaN. Only a value absurdly far outside a feature's training spread gets
        there (the raw values are within the limit), which is a data error worth naming."""
        if Z.size == 0 or (Z.max() <= VALUE_LIMIT and Z.min() >= -VALUE_LIMIT):
            return
        i, j = first_beyond_limit(Z)
        name, z = self.kept_features[j], Z[i, j]
        where = f"row {i + 1} of the {len(Z)} rows transformed"  # callers transforming blocks name the block
        if self.config.standardize:
            raise DataError(f"feature {name!r} has a value {z:.3g} training SDs from its training mean at {where} "
                            f"(training SD {self.scale_[j]:.3g}), beyond the ±{VALUE_LIMIT:.3g} a network input "
                            "can be; check the units of that column")
        raise DataError(value_limit_message("feature column", name, z, where))

    def restricted(self, names: Sequence[str]) -> "Preprocessor":
        """A copy keeping only the kept features ``names`` (a subset, in kept order): same parameters."""
        wanted = set(names)
        keep = np.array([j for j, n in enumerate(self.kept_features) if n in wanted], dtype=np.int64)
        if len(keep) != len(wanted):
            raise ValueError("restricted: every name must be one of the kept features")
        out = Preprocessor(self.config)
        out.feature_names_in = list(self.feature_names_in)
        out.dropped_constant = list(self.dropped_constant)
        out.warnings = list(self.warnings)
        out.kept_features = [self.kept_features[j] for j in keep]
        for attr in ("kept_index_", "impute_values_", "center_", "scale_", "train_mean_", "train_sd_"):
            setattr(out, attr, getattr(self, attr)[keep].copy())
        return out

    @property
    def _clips(self) -> bool:
        return self.config.standardize and self.config.scaling == "robust"

    def unscale(self, Z: np.ndarray) -> np.ndarray:
        """Scaled values (..., d_kept) back to the scale before centring (after log1p and imputation):
        the inverse of the centring, scaling and (robust) clipping."""
        Z = np.array(Z, dtype=np.float64)
        if self._clips:  # z / sqrt(1 + (z/c)^2) = u  <=>  z = u / sqrt(1 - (u/c)^2), |u| < c
            Z = Z / np.sqrt(np.maximum(1.0 - (Z / CLIP_AT) ** 2, 1e-12))
        return self.center_ + self.scale_ * Z

    def fit_transform(self, X, feature_names: Sequence[str], dtype=np.float64) -> np.ndarray:
        return self.fit(X, feature_names).transform(X, dtype=dtype)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able meta, arrays) for the model file; arrays are plain numeric, loadable without pickle."""
        if self.kept_index_ is None:
            raise RuntimeError("Preprocessor.state called before fit")
        meta = {
            "version": _STATE_VERSION,
            "config": asdict(self.config),
            "feature_names_in": list(self.feature_names_in),
            "kept_features": list(self.kept_features),
            "dropped_constant": list(self.dropped_constant),
            "warnings": list(self.warnings),
        }
        arrays = {
            "kept_index": self.kept_index_.copy(),
            "impute_values": self.impute_values_.copy(),
            "center": self.center_.copy(),
            "scale": self.scale_.copy(),
            "train_mean": self.train_mean_.copy(),
            "train_sd": self.train_sd_.copy(),
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "Preprocessor":
        """Rebuild a fitted Preprocessor; inconsistent state raises ModelFileError."""
        try:
            if meta.get("version") != _STATE_VERSION:
                raise ModelFileError(f"unknown preprocessing state version {meta.get('version')!r}")
            pre = cls(PreprocessConfig(**meta["config"]))
            names = [str(n) for n in meta["feature_names_in"]]
            kept_names = [str(n) for n in meta["kept_features"]]
            missing = [k for k in _STATE_ARRAYS if k not in arrays]
            if missing:
                raise ModelFileError(f"preprocessing arrays missing from the model file: {_quoted(missing)}")
            loaded = {k: np.asarray(arrays[k]) for k in _STATE_ARRAYS}
        except (KeyError, TypeError, ConfigError) as exc:
            raise ModelFileError(f"preprocessing state in the model file is malformed: {_short_reason(exc)}") from None
        kept = loaded["kept_index"].astype(np.int64)
        d_kept = len(kept_names)
        if any(loaded[k].shape != (d_kept,) for k in _STATE_ARRAYS):
            raise ModelFileError(f"preprocessing arrays in the model file do not match its {d_kept} kept features")
        if d_kept and (kept.min() < 0 or kept.max() >= len(names) or [names[j] for j in kept] != kept_names):
            raise ModelFileError("preprocessing feature indices in the model file do not match its feature names")
        pre.feature_names_in = names
        pre.kept_features = kept_names
        pre.dropped_constant = [str(n) for n in meta.get("dropped_constant", [])]
        pre.warnings = [str(w) for w in meta.get("warnings", [])]
        pre.kept_index_ = kept
        pre.impute_values_ = loaded["impute_values"].astype(np.float64)
        pre.center_ = loaded["center"].astype(np.float64)
        pre.scale_ = loaded["scale"].astype(np.float64)
        pre.train_mean_ = loaded["train_mean"].astype(np.float64)
        pre.train_sd_ = loaded["train_sd"].astype(np.float64)
        return pre


def _scale_in_place(Z: np.ndarray, center: np.ndarray, scale: np.ndarray, clip: bool) -> None:
    """Z (n, d) <- (Z - center) / scale, then the robust smooth clip when ``clip``. A quotient beyond float64
    (a value absurdly far outside a feature's training spread) becomes ±inf without a warning; clipping maps
    it to ±CLIP_AT, and unclipped callers check the result."""
    events: list[str] = []
    with np.errstate(over="call", divide="call", invalid="call", call=lambda kind, flag: events.append(kind)):
        Z -= center
        Z /= scale
    if clip:
        if events:
            big = np.finfo(np.float64).max
            np.clip(Z, -big, big, out=Z)  # ±inf -> ±max, keeping the sign for the clip
        _smooth_clip(Z)


def _smooth_clip(Z: np.ndarray) -> None:
    """In place: z / sqrt(1 + (z / CLIP_AT)^2), smooth, monotone, within ±CLIP_AT; Z must be finite.

    For |z| beyond ~4e154 the square overflows and z / inf gives ±0, where the exact value is ±CLIP_AT to
    float64 precision: those entries are set to it (found only when an overflow happened, so the usual
    case costs no extra pass)."""
    overflowed: list[str] = []
    with np.errstate(over="call", call=lambda kind, flag: overflowed.append(kind)):
        T = Z / CLIP_AT
        np.square(T, out=T)
        T += 1.0
        np.sqrt(T, out=T)
        Z /= T  # finite / inf = ±0, the sign of z kept
    if overflowed:
        huge = np.isinf(T)
        Z[huge] = np.copysign(CLIP_AT, Z[huge])


def _column_sd(X: np.ndarray) -> np.ndarray:
    """Per-column standard deviation (d,) of X (n, d), X.std(axis=0) except where the deviations are so small
    that their squares leave float64's normal range (SD below 1e-150): those columns are computed on
    deviations divided by their largest magnitude, then scaled back, so the result is not 0 or subnormal
    noise."""
    sd = X.std(axis=0)
    small = np.flatnonzero(sd < 1e-150)
    if small.size:
        D = X[:, small] - X[:, small].mean(axis=0)
        m = np.abs(D).max(axis=0)
        m[m == 0] = 1.0
        sd[small] = m * (D / m).std(axis=0)
    return sd


def first_beyond_limit(X: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of X's (n, d) first entry beyond ±VALUE_LIMIT in row order (infinities included), or
    None; NaN passes. Two NaN-ignoring reductions when all is well (no temporary the size of X)."""
    if X.size == 0:
        return None
    if np.fmax.reduce(X, axis=None) <= VALUE_LIMIT and np.fmin.reduce(X, axis=None) >= -VALUE_LIMIT:
        return None
    with np.errstate(invalid="ignore"):
        beyond = np.argwhere(np.abs(X) > VALUE_LIMIT)
    return (int(beyond[0][0]), int(beyond[0][1])) if len(beyond) else None  # all NaN: nothing beyond


def value_limit_message(what: str, column: str, value: float, where: str) -> str:
    """The one message for a value beyond ±VALUE_LIMIT: `what` ("feature column", "target column"),
    `where` ("row 12 (id 'S3')")."""
    return (f"{what} {column!r} holds {value:.4g} at {where}, beyond ±{VALUE_LIMIT:.3g}, the largest value a "
            "float32 network can take; it is almost surely a data error (units, a parsing slip, a sentinel "
            "value): fix it, or drop the column")


def looks_like_counts(X: np.ndarray) -> float | None:
    """The median per-feature skewness of X (n, d) when it looks like raw counts or TPM (all values
    non-negative, median skewness above COUNTS_SKEW), else None. Rows with missing values are ignored."""
    finite = X[np.isfinite(X).all(axis=1)] if not np.isfinite(X).all() else X
    if finite.shape[0] < 3 or finite.min() < 0:
        return None
    centred = finite - finite.mean(axis=0)
    sd = _column_sd(centred)
    ok = sd >= TINY_SPREAD
    if not ok.any():
        return None
    with np.errstate(over="ignore", invalid="ignore"):  # beyond ~1e102 SDs a cube is inf (NaN if both signs)
        skew = ((centred[:, ok] / sd[ok]) ** 3).mean(axis=0)
    median = float(np.median(skew))
    return median if median > COUNTS_SKEW else None


def _check_non_negative(X: np.ndarray, names: Sequence[str]) -> None:
    negative = (X < 0).any(axis=0)  # NaN compares False, so missing values pass
    if negative.any():
        cols = np.flatnonzero(negative)
        first = cols[0]
        raise DataError(
            f"log1p needs non-negative input, but {len(cols)} feature columns hold negative values "
            f"(first {names[first]!r}, min {np.nanmin(X[:, first]):.4g}); drop --log1p if the data is already on a log scale"
        )


def _missing_message(names: Sequence[str], nan_counts: np.ndarray) -> str:
    cols = np.flatnonzero(nan_counts)
    pairs = [(names[j], int(nan_counts[j])) for j in cols]
    return (f"missing values in {len(cols)} feature columns: {_counted(pairs)}; "
            "pass --impute median|mean|zero or remove them")


def _nan_median(X: np.ndarray, nan_mask: np.ndarray, nan_counts: np.ndarray) -> np.ndarray:
    """Column medians (d,) ignoring NaN, vectorised (np.nanmedian loops in Python over columns with NaN)."""
    values = np.empty(X.shape[1])
    full = nan_counts == 0
    if full.any():
        values[full] = np.median(X[:, full], axis=0)
    holed = np.flatnonzero(~full)
    if holed.size:
        block = np.sort(X[:, holed], axis=0)  # NaN sort last
        k = X.shape[0] - nan_counts[holed]  # non-missing values per column
        lo, hi = np.maximum((k - 1) // 2, 0), np.maximum(k // 2, 0)
        cols = np.arange(holed.size)
        values[holed] = np.where(k > 0, (block[lo, cols] + block[hi, cols]) / 2, np.nan)
    return values
