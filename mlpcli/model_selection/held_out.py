"""Held-out predictions (``train --oof``, ``cv --oof``) in the columns ``predict`` writes, so one reader
handles all three: the truth under the target's name, ``pred_<target>`` and ``prob_<class>``
(multi-label: ``<label>``, ``pred_<label>``, ``prob_<label>``; regression: ``<target>``, ``pred_<target>``)."""

from __future__ import annotations

import numpy as np

from .. import data
from ..errors import OptionError
from ..decision import Decision
from ..metrics import class_proba

__all__ = ["prediction_columns", "exact_if_regression", "held_out_names", "check_column_names"]


def exact_if_regression(frame, task: str):
    """``frame`` (held-out predictions) marked, for a regression task, to be written with exact floats
    (``predict.write_table``): its truth and predictions are values in the target's units, which 6
    significant digits could round beyond the model's own error. Returns the frame."""
    if task == "regression":
        from ..predict.output import EXACT_FLOATS

        frame.attrs[EXACT_FLOATS] = True
    return frame


def prediction_columns(ds: data.Dataset, rows: np.ndarray, P: np.ndarray, decision: Decision | None = None) -> dict:
    """Truth and prediction columns for ``rows`` of ``ds`` scored ``P`` (len(rows), k): probabilities as
    the model gives them (a binary model's single P(positive) column included) or regression values.
    ``decision``: the model's rule for the labels (None: the most probable class, P >= 0.5 for binary and for each
    label of a multi-label model)."""
    cols: dict = {}
    classes = np.asarray(ds.classes, dtype=object)
    if ds.task in data.CLASSIFICATION_TASKS:
        P = class_proba(ds.task, P)
        target = (ds.target_names or ["label"])[0]
        cols[target] = classes[ds.y[rows]]
        # as metrics.compute and predict decide (argmax of [1 - p, p] gave the negative class at exactly 0.5)
        cols[f"pred_{target}"] = classes[(decision or Decision()).classes(ds.task, P)]
        for k, c in enumerate(ds.classes):
            cols[f"prob_{c}"] = P[:, k]
    elif ds.task == "multilabel":
        for j, c in enumerate(ds.classes):
            cols[str(c)] = ds.y[rows, j].astype(int)
        called = (decision or Decision()).classes(ds.task, P)  # each label by the model's rule
        for j, c in enumerate(ds.classes):
            cols[f"pred_{c}"] = called[:, j]
        for j, c in enumerate(ds.classes):
            cols[f"prob_{c}"] = P[:, j]
    else:
        for j, c in enumerate(ds.classes):
            cols[str(c)] = ds.y[rows, j]
            cols[f"pred_{c}"] = P[:, j]
    return cols


def held_out_names(ds: data.Dataset, middle: dict[str, str]) -> list[tuple[str, str]]:
    """(column name, what it holds) of held-out predictions of ``ds``, in order: the id (else the 1-based
    ``row``), the group, the ``middle`` columns (train's ``held_out_by_member``; cv's ``repeat`` and
    ``fold``), then ``prediction_columns``' names."""
    roles = ds.roles
    names = [(roles.id, f"the id column (--id {roles.id})") if roles is not None and roles.id else
             ("row", "the row number (the table has no id column)")]
    if ds.groups is not None:
        group = roles.group if roles is not None and roles.group else "group"
        names.append((group, f"the group column (--group {group})"))
    names += list(middle.items())
    if ds.task in data.CLASSIFICATION_TASKS:
        target = (ds.target_names or ["label"])[0]
        names += [(str(target), "the true class"), (f"pred_{target}", "the predicted class")]
        names += [(f"prob_{c}", f"the probability of class {c}") for c in ds.classes]
    elif ds.task == "multilabel":
        names += [(str(c), f"label {c}'s truth") for c in ds.classes]
        names += [(f"pred_{c}", f"label {c}'s prediction") for c in ds.classes]
        names += [(f"prob_{c}", f"label {c}'s probability") for c in ds.classes]
    else:
        for c in ds.classes:
            names += [(str(c), f"target {c}'s truth"), (f"pred_{c}", f"target {c}'s prediction")]
    return names


def check_column_names(names: list[tuple[str, str]], flag: str) -> None:
    """An OptionError (a usage error) naming ``flag`` when two of the held-out table's columns ``names``
    (``held_out_names``) would have one name: a DataFrame built from them keeps the last, so a group
    column named ``held_out_by_member`` or an id column named ``pred_label`` was silently replaced."""
    seen: dict[str, str] = {}
    for name, what in names:
        if name in seen:
            raise OptionError(f"{flag}: two columns would be named {name!r}: {seen[name]} and {what}; rename the "
                              f"column in the table, or leave {flag} out")
        seen[name] = what
