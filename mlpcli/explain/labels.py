"""What each sample is explained toward: its label's class index (``label_indices``), a multi-label model's
label matrix (``label_matrix``), a regression model's target values (``target_values``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.labels import label_key
from ..text import quoted
from ..data.targets import encode_classes
from ..data.labels import as_number
from ..errors import DataError
from ..model_io import Model


def _integers_name_classes(model: Model) -> bool:
    """Whether an integer label can name a class of ``model``: a number (1, 1.0, or "01", which evaluate matches
    to the label 1) or a boolean (1 == True)."""
    return any(isinstance(c, (bool, np.bool_)) or as_number(label_key(c)) is not None for c in model.classes)


def label_indices(model: Model, y, n: int) -> np.ndarray | None:
    """Labels ``y`` (n,) as the model's class indices (n,) int64; None stays None.

    Labels are the classes' names, matched as evaluate matches a table's labels (``encode_classes``, the
    ``classes=`` path of data reading: 1, 1.0 and "1" name the class 1). Integers are class indices
    (``model.classes`` order) only for a model whose classes no integer can name, such as "LumA": for the
    classes 1, 2, 3 (or a binary 1, 0 reordered by --positive) the label 1 is the class 1, never the index 1.
    A DataError when there are not n labels or one is not a class of the model."""
    if y is None:
        return None
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise DataError(f"y has {len(y)} labels for {n} samples")
    if y.dtype.kind in "iu" and not _integers_name_classes(model):
        bad = (y < 0) | (y >= len(model.classes))
        if bad.any():
            raise DataError(f"label {y[bad][0]} is not a class index of the model (0 to {len(model.classes) - 1}); "
                            "give class indices or the classes' names")
        return y.astype(np.int64)
    return encode_classes(pd.Series(y), "y", model.task, model.classes, [])[0]


def label_matrix(model: Model, y, n: int) -> np.ndarray | None:
    """A multi-label model's labels ``y`` as (n, L) int64 0/1 in the model's label order (``model.classes``); a
    DataFrame's columns are matched by name. None stays None. A DataError names what does not fit: the shape, a
    missing label column, a value other than 0 and 1 (true / false count as 1 / 0)."""
    if y is None:
        return None
    names = [str(c) for c in model.classes]
    if isinstance(y, pd.DataFrame):
        missing = [c for c in names if c not in set(map(str, y.columns))]
        if missing:
            raise DataError(f"y lacks the label column{'s' * (len(missing) > 1)} {quoted(missing, 10)} of the "
                            "multi-label model")
        y = y.rename(columns=str)[names]
    try:
        Y = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"y must hold 0/1 values, one column per label ({quoted(names, 10)}): {exc}") from None
    if Y.shape != (n, len(names)):
        raise DataError(f"y has shape {Y.shape} for {n} samples; expected ({n}, {len(names)}): one 0/1 column per "
                        f"label ({quoted(names, 10)})")
    bad = ~np.isin(Y, (0.0, 1.0))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"label {names[j]} of sample {i + 1} is {float(Y[i, j]):g}; a multi-label model's labels are 0 or 1")
    return Y.astype(np.int64)


def target_values(model: Model, y, n: int) -> np.ndarray | None:
    """A regression model's true values y as (n, k) float64, k its targets; None stays None."""
    if y is None:
        return None
    try:
        y = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"y must hold the targets' values (numbers): {exc}") from None
    k = len(model.classes)
    if y.shape not in ((n,), (n, k)) or (y.ndim == 1 and k != 1):
        raise DataError(f"y has shape {y.shape} for {n} samples; expected ({n}, {k}): the values of "
                        f"{quoted(model.classes, 10)}")
    y = y.reshape(n, k)
    if not np.isfinite(y).all():
        raise DataError(f"y has {int((~np.isfinite(y)).sum())} missing or infinite value(s); drop those samples")
    return y
