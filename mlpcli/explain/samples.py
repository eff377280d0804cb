"""A table read for explaining a model: its rows as the model's inputs (``Samples``: features in the model's order,
labels, patients, the rows the model was trained on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..text import quoted
from ..errors import DataError
from ..model_io import Model

if TYPE_CHECKING:
    from ..predict.seen import SeenRows


_SEEN_ROWS = 4096  # rows fingerprinted at a time by ``load_samples``


@dataclass
class Samples:
    """A table's samples matched to a model with predict's checks (features by name, roles, ids)."""

    X: np.ndarray  # (n, d) raw values in model.feature_names order (unused features NaN)
    ids: np.ndarray  # (n,) the id column, or 1-based rows
    y: np.ndarray | None  # (n,) labels, as the model's class names, when the table has the model's target column
    # (a regression model's: (n, T) values)
    notes: list[str]
    warnings: list[str]
    filled: list[str] = field(default_factory=list)  # features the table lacks, filled with training means
    patients: np.ndarray | None = None  # (n,) the group column (patients) when the table has the model's
    # the rows the model was trained on, recognised by their fingerprints (``predict.seen``); None when the model
    # keeps none or the table lacks features (filled: no row can match)
    seen: "SeenRows | None" = None


def load_samples(model: Model, source, roles=None, fill_missing: str | None = None,
                 max_missing: float | None = None, training_rows: bool = False) -> Samples:
    """Read the table ``source`` (path, "-" or DataFrame; an .h5ad file or a 10x directory: its cells, with
    the matrix and gene names predict would use) whole and match it to ``model`` as predict does; labels
    are read when the target column is there, in the table or its sample sheet (unknown labels are an
    error naming them), as the model's class names: what ``explain`` takes as y, whatever the classes are
    (indices would be read as names for classes 1, 2, 3). ``fill_missing``, ``max_missing``: as for predict.
    ``training_rows``: recognise the rows the model was trained on (``Samples.seen``; what permutation importance
    needs to be honest, a pass over the table that integrated gradients does without)."""
    from ..predict.prepared import prepare
    from ..predict.seen import SeenRows

    from ..predict.columns import TARGET_ADVICE, with_advice

    try:
        prepared = prepare(model, source, roles=roles, fill_missing=fill_missing, max_missing=max_missing, labels=True)
    except DataError as exc:  # explain needs no labels: without them it explains the predicted classes
        raise with_advice(exc, {TARGET_ADVICE: "; explain reads labels only when the table has them (it explains the "
                                               "predicted classes otherwise): name the label column with --target, "
                                               "or leave --target out"}) from None
    name = "the table" if isinstance(source, pd.DataFrame) else source
    if len(prepared.X) == 0:
        raise DataError(f"{name} has a header but no data rows")
    targets, absent = prepared.absent_targets(model)
    if absent:  # read as unlabelled, its labels were dropped without a word (and permutation said "no target")
        raise DataError(f"{name} has {len(targets) - len(absent)} of the model's {len(targets)} target columns "
                        f"({quoted(targets)}) and lacks {quoted(absent)}; explain reads the labels whole: add the "
                        f"missing column{'s' * (len(absent) != 1)}, or --drop the ones it has to explain the "
                        "model's own predictions")
    if prepared.y is None:
        y = None
    elif model.task == "regression":  # the targets' values (n, T), in the model's target order
        y = np.asarray(prepared.y, dtype=np.float64).reshape(len(prepared.X), -1)
    elif model.task == "multilabel":  # (n, L) 0/1, in the model's label order
        y = np.asarray(prepared.y, dtype=np.float64).reshape(len(prepared.X), -1).astype(np.int64)
    else:
        y = np.asarray(model.classes)[prepared.y.reshape(-1).astype(np.int64)]
    notes = [n for n in prepared.notes if not n.startswith("ignored the target column")]
    seen = SeenRows.of(model) if training_rows and not prepared.filled else None
    if seen is not None:  # a block of rows at a time: no second copy of the table
        kept, n = model.preprocessor.kept_index_, len(prepared.X)
        for a in range(0, n, _SEEN_ROWS):
            b = min(a + _SEEN_ROWS, n)
            seen.count(seen.match(prepared.X[a:b][:, kept]), None if not prepared.id_column else prepared.ids[a:b],
                       np.arange(a + 1, b + 1))
    return Samples(prepared.X, prepared.ids, y, notes, list(prepared.warnings), list(prepared.filled),
                   prepared.groups, seen)
