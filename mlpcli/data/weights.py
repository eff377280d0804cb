"""Per-class loss weights: none, scikit-learn's "balanced", or explicit LABEL=WEIGHT pairs."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .labels import label_key
from ..text import quoted, written_name


def class_weights(y: np.ndarray, n_classes: int, spec: str | None, classes: Sequence) -> np.ndarray | None:
    """Per-class loss weights (n_classes,) float64, or None for no weighting.

    spec: None/"none"; "balanced" (sklearn's n / (n_classes * count)); or "A=1,B=3" by class label
    (unnamed classes get 1.0). y holds class indices (n,) or, for multilabel/binary, 0/1 values of any
    shape, weighted as the 2 classes 0 and 1 (pass n_classes=2, classes=[0, 1]).
    """
    if spec is None or str(spec).strip().lower() in ("", "none"):
        return None
    if len(classes) != n_classes:
        raise ValueError(f"class_weights: {len(classes)} class labels given for n_classes={n_classes}")
    text = str(spec).strip()
    if text.lower() == "balanced":
        return _balanced_weights(y, n_classes, classes)
    return explicit_weights(text, classes)


def _balanced_weights(y: np.ndarray, n_classes: int, classes: Sequence) -> np.ndarray:
    from sklearn.utils.class_weight import compute_class_weight

    flat = np.asarray(y).ravel()
    if flat.size == 0 or not np.all((flat == np.round(flat)) & (flat >= 0) & (flat < n_classes)):
        raise DataError(f"class indices must be whole numbers in 0..{n_classes - 1} to compute class weights")
    flat = flat.astype(np.int64)
    counts = np.bincount(flat, minlength=n_classes)
    absent = [classes[i] for i in np.flatnonzero(counts == 0)]
    if absent:
        raise DataError(f"--class-weight balanced: class {quoted(absent)} has no training samples; "
                        "give explicit weights (LABEL=WEIGHT) or add data")
    return compute_class_weight("balanced", classes=np.arange(n_classes), y=flat).astype(np.float64)


def explicit_weights(text: str, classes: Sequence) -> np.ndarray:
    from ..config import class_weight_pairs  # the form: the same check as before the data was read

    keys = [label_key(c) for c in classes]
    weights = np.ones(len(classes), dtype=np.float64)
    for label, weight in class_weight_pairs(text):
        at = written_name(label, keys)  # as written, else without the spaces around it ('b' for '  b ')
        if at is None:
            # "A=1;B=3" reads as the class "A=1;B": the pairs' separator is the likely slip
            hint = (" (pairs are separated by commas: 'A=1,B=3')" if "=" in label else
                    " (write a label holding a comma in double quotes: '\"Stage I, early\"=2')"
                    if any("," in k for k in keys) else "")
            raise ConfigError(f"--class-weight names unknown class {label.strip()!r}{hint}; valid labels: "
                              f"{quoted(keys, 10)}")
        weights[at] = weight
    return weights
