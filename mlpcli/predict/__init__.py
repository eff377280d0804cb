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
preprocessing), ``shift`` (the cohort-shift check), ``stream`` (prediction in chunks), ``prepared`` (a whole table made ready,
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

from ..data.streamed import DEFAULT_CHUNK_MB
from ._common import DEFAULT_CHUNKSIZE
from .columns import ColumnPlan, RoleFlags, plan_columns
from .evaluation import EvaluationResult, evaluate, main_metric
from .output import (DEFAULT_OBS_PREFIX, OUTPUT_FORMATS, TABLE_FORMATS, obs_columns, output_format, write_predictions,
                     write_predictions_h5ad, write_table)
from .shift import ShiftReport, shift_report
from .prepared import Prepared, prepare
from .stream import FORWARD_ROWS, PredictionStream, predict_stream
from ..data.streamed import open_table
from .trust import Uncertainty

__all__ = [
    "DEFAULT_CHUNK_MB", "DEFAULT_CHUNKSIZE", "FORWARD_ROWS", "OUTPUT_FORMATS", "RoleFlags", "ColumnPlan", "ShiftReport", "PredictionStream",
    "EvaluationResult", "Prepared", "open_table", "plan_columns", "prepare", "shift_report", "predict_stream",
    "write_predictions", "write_table", "TABLE_FORMATS", "write_predictions_h5ad", "obs_columns", "DEFAULT_OBS_PREFIX", "output_format", "evaluate",
    "main_metric", "Uncertainty",
]
