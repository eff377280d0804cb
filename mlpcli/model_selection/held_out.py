"""Held-out predictions (``train --oof``, ``cv --oof``) in the columns ``predict`` writes, so one reader
handles all three: the truth under the target's name, ``pred_<target>`` and ``prob_<class>``
(multi-label: ``<label>``, ``pred_<label>``, ``prob_<label>``; regression: ``<target>``, ``pred_<target>``)."""

from __future__ import annotations

import numpy as np

from .. import data
from ..metrics import class_proba

__all__ = ["prediction_columns", "exact_if_regression"]


def exact_if_regression(frame, task: str):
    """``frame`` (held-out predictions) marked, for a regression task, to be written with exact floats
    (``predict.write_table``): its truth and predictions are values in the target's units, which 6
    significant digits could round beyond the model's own error. Returns the frame."""
    if task == "regression":
        from ..predict.output import EXACT_FLOATS

        frame.attrs[EXACT_FLOATS] = True
    return frame


def prediction_columns(ds: data.Dataset, rows: np.ndarray, P: np.ndarray) -> dict:
    """Truth and prediction columns for ``rows`` of ``ds`` scored ``P`` (len(rows), k): probabilities as
    the model gives them (a binary model's single P(positive) column included) or regression values."""
    cols: dict = {}
    classes = np.asarray(ds.classes, dtype=object)
    if ds.task in data.CLASSIFICATION_TASKS:
        P = class_proba(ds.task, P)
        target = (ds.target_names or ["label"])[0]
        cols[target] = classes[ds.y[rows]]
        cols[f"pred_{target}"] = classes[P.argmax(axis=1)]
        for k, c in enumerate(ds.classes):
            cols[f"prob_{c}"] = P[:, k]
    elif ds.task == "multilabel":
        for j, c in enumerate(ds.classes):
            cols[str(c)] = ds.y[rows, j].astype(int)
        for j, c in enumerate(ds.classes):
            cols[f"pred_{c}"] = (P[:, j] >= 0.5).astype(int)
        for j, c in enumerate(ds.classes):
            cols[f"prob_{c}"] = P[:, j]
    else:
        for j, c in enumerate(ds.classes):
            cols[str(c)] = ds.y[rows, j]
            cols[f"pred_{c}"] = P[:, j]
    return cols
