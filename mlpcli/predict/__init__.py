"""Using a trained model on new samples: features matched by name, a cohort-shift check, prediction in
pieces of a memory budget, and evaluation against known labels.

    table ─open_table─▶ header ─plan_columns(model)─▶ ColumnPlan (roles, features by name, fills)
          ─pieces of rows, parsed in reading threads─▶ raw values, in the model's feature order
          ─the model's Preprocessor, as fitted─▶ Z (n, d_kept) ─▶ shift statistics per feature
          ─network, in blocks of Model.row_block rows─▶ outputs ─▶ prediction frames │ metrics

Speed and memory, for tables far larger than memory, long or wide: the text is cut at line ends into
pieces of a memory budget (``chunk_mb``, 64 MiB; about budget / (6 x threads) bytes of text a piece:
a few hundred rows of 2,000 genes, a dozen rows of 50,000), parsed side by side in a few threads while the caller's thread transforms, predicts and
writes the previous ones. A piece is split into fields by a numpy tokenizer (one comparison per byte)
and only the fields needed are converted, by pyarrow's number parser (the features the fitted
preprocessing keeps, so a 60,000-gene table scored by a 2,000-gene model converts 2,000 columns); its
cost does not grow with the number of columns, where a CSV parser's does (pyarrow's costs ~20 us per
column and piece). The network sees blocks of at most 2,048 rows and 32 MiB of inputs, the same blocks
however the table is cut, so the output does not depend on the chunking, bit for bit. Pieces with
quoted separators or line ends go to pyarrow's CSV parser, and a piece it rejects to pandas', whose
inferred types locate a bad cell to its column and row. Every row must have the header's number of
fields (else a DataError naming the line), and the id column's values must be present and unique.

Modules: ``data.streamed`` (opening and reading, shared with training's text reader), ``columns`` (matching columns to the model, fills,
preprocessing), ``shift`` (the cohort-shift check), ``run`` (one pass of a model over a table, in chunks), ``table_roles`` (a table's role
columns, an .h5ad file opened for a model), ``labelling`` (the decision rule and prevalence of a run), ``stream``
(prediction frames), ``prepared`` (a whole table made ready,
for explain and gradcheck), ``seen`` (the rows a model was trained on), ``trust``
(prediction sets, abstention, out-of-distribution flags), ``output`` (writing predictions) and
``evaluation`` (metrics against known labels).

Nothing here prints or imports click / rich: notes and warnings are returned as lists of strings,
progress goes through a callback, and every user error is a ``DataError`` / ``ConfigError`` with a
one-line message.

    >>> stream = predict_stream(model, "new_cohort.csv.gz")
    >>> predictions = pd.concat(stream)          # or write_predictions(stream, "predictions.csv")
    >>> stream.shift.most_shifted(5)
    >>> result = evaluate(model, "test_cohort.csv.gz", by="batch", bootstrap=1000)
    >>> sets = predict_stream(model, "new_cohort.csv.gz", uncertainty=Uncertainty(coverage=0.9, ood=True))
"""

from __future__ import annotations

import importlib

# Each public name and the module that defines it, imported when the name is first used (PEP 562): `train` imports
# ``predict.shift`` for its validation rows' shift check, and importing every module here with it cost 25-45 ms of
# its time outside the epochs (the evaluation's metrics, the writers, the stream) for nothing it used.
_EXPORTS = {
    "DEFAULT_CHUNK_MB": "..data.pieces", "open_table": "..data.streamed",
    "DEFAULT_CHUNKSIZE": ".sizes",
    "ColumnPlan": ".columns", "RoleFlags": ".columns", "plan_columns": ".columns",
    "EvaluationResult": ".evaluation", "evaluate": ".evaluation", "main_metric": ".evaluation",
    "DEFAULT_OBS_PREFIX": ".output", "OUTPUT_FORMATS": ".output", "TABLE_FORMATS": ".output", "obs_columns": ".output",
    "output_format": ".output", "write_predictions": ".output", "write_predictions_h5ad": ".output",
    "write_table": ".output",
    "ShiftReport": ".shift", "shift_report": ".shift",
    "Prepared": ".prepared", "prepare": ".prepared",
    "FORWARD_ROWS": ".run", "PredictionStream": ".stream", "predict_stream": ".stream",
    "Uncertainty": ".trust",
}
_MODULES = ("bootstrap", "cohort_checks", "cohort_labels", "columns", "evaluation", "labelling", "novel_labels", "output",
            "prepared", "recalibrate", "risk_thresholds", "run", "seen", "shift", "sizes", "stream", "subgroups", "table_roles",
            "trust", "unique_ids")

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_MODULES))
