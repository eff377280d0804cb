"""Using a trained model on new samples: features matched by name, a cohort-shift check, prediction in
chunks of rows, and evaluation against known labels.

    table ─open_table─▶ header ─plan_columns(model)─▶ ColumnPlan (roles, features by name, fills)
          ─pieces of rows, parsed in reading threads─▶ raw values, in the model's feature order
          ─the model's Preprocessor, as fitted─▶ Z (n, d_kept) ─▶ shift statistics per feature
          ─network, in blocks of FORWARD_ROWS rows─▶ outputs ─▶ prediction frames │ metrics

Speed and memory, for tables far larger than memory: a chunk of text rows is cut into pieces at line
ends, and the pieces are parsed side by side by pyarrow's CSV parser in a few threads (it releases the
GIL) while the caller's thread transforms, predicts and writes the previous ones; only the columns
needed are converted (the features the fitted preprocessing keeps, so a 60,000-gene table scored by a
2,000-gene model parses 2,000 columns); values stay column-major from parser to network (BLAS takes
either layout), and buffers are reused rather than allocated per chunk. A piece pyarrow rejects is
parsed again by pandas, whose inferred types locate a bad cell to its column and row.

Modules: ``tables`` (opening and reading), ``columns`` (matching columns to the model, fills,
preprocessing), ``shift`` (the cohort-shift check), ``stream`` (prediction in chunks), ``output``
(writing predictions) and ``evaluation`` (metrics against known labels).

Nothing here prints or imports click / rich: notes and warnings are returned as lists of strings,
progress goes through a callback, and every user error is a ``DataError`` / ``ConfigError`` with a
one-line message.

    >>> stream = predict_stream(model, "new_cohort.csv.gz")
    >>> predictions = pd.concat(stream)          # or write_predictions(stream, "predictions.csv")
    >>> stream.shift.most_shifted(5)
    >>> result = evaluate(model, "test_cohort.csv.gz", by="batch", bootstrap=1000)
"""

from __future__ import annotations

from ._common import DEFAULT_CHUNK_MB, DEFAULT_CHUNKSIZE
from .columns import ColumnPlan, RoleFlags, plan_columns
from .evaluation import EvaluationResult, evaluate, main_metric
from .output import OUTPUT_FORMATS, output_format, write_predictions
from .shift import ShiftReport, shift_report
from .stream import FORWARD_ROWS, PredictionStream, Prepared, predict_stream, prepare
from .tables import open_table

__all__ = [
    "DEFAULT_CHUNK_MB", "DEFAULT_CHUNKSIZE", "FORWARD_ROWS", "OUTPUT_FORMATS", "RoleFlags", "ColumnPlan", "ShiftReport", "PredictionStream",
    "EvaluationResult", "Prepared", "open_table", "plan_columns", "prepare", "shift_report", "predict_stream",
    "write_predictions", "output_format", "evaluate", "main_metric",
]
