"""The names every data module and command agrees on: the tasks, the imputation methods, the column roles' default
names, and the DataFrame attributes the table readers set."""

from __future__ import annotations

TASKS = ("binary", "multiclass", "multilabel", "regression")
CLASSIFICATION_TASKS = ("binary", "multiclass")
IMPUTE_METHODS = ("median", "mean", "zero", "min")

# Defaults of the column roles (see design.md, "Conventions every command shares").
DEFAULT_TARGET = "label"
DEFAULT_GROUP = "patient_id"
DEFAULT_GROUPS = (DEFAULT_GROUP, "donor_id")  # donor_id: the CELLxGENE name of the patient
DEFAULT_ID = "sample_id"
DEFAULT_BATCH = "batch"

# The DataFrame.attrs key under which the text readers record the decimal mark a table was read with, so
# that a cell that is not a number can be found (and named) as the parser saw it: under decimal commas
# pandas keeps a column holding one "0.5" as text, every other cell written "0,3".
DECIMAL_ATTR = "mlpcli.decimal"
SOURCE_ATTR = "mlpcli.source"  # and the name of the file (for messages about its cells)
# and whether its first column was unnamed (row names, read as sample ids): a sample sheet is not joined on row numbers
ROW_NAMES_ATTR = "mlpcli.row_names"
# and {column: {token: cells}}: the missing-value tokens ("NA", "NULL", ...) a label column held, read as missing
# (``io.tokens_as_missing``), for the message about its missing labels to name what the user sees in the file
MISSING_AS_WRITTEN_ATTR = "mlpcli.missing_as_written"


# DataFrame.attrs key of {column: the sample sheet (--samples) it was joined from}: a message about a label or
# group cell names the file it is in
JOINED_ATTR = "mlpcli.joined"
# a caller's DataFrame (``dataset.user_frame``): the column its named index became, its sample ids unless --id names
# another
INDEX_ID_ATTR = "mlpcli.index_id"
