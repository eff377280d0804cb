"""Tables in, validated arrays out: reading, column roles, preprocessing, class weights.

    read_table ─▶ DataFrame ─resolve_roles─▶ Roles ─Dataset.from_frame─▶ Dataset(X, y, groups, ...)
    Preprocessor.fit(X[train]) ─▶ transform(any rows) with the training rows' parameters only

Splitting rows into training and validation (by group) is model selection's job:
``mlpcli.model_selection.splits``.

Everything a user can get wrong raises `DataError` / `ConfigError` with a one-line message that names the
column or flag and the fix. Nothing here prints: notes and warnings are returned as lists of strings for the
CLI to render. One module per step: io (and sources, dialect, header, parquet, h5ad, tenx, geo: the formats),
samples (a sample sheet joined on the sample id, ``--samples``), roles (which column is which), targets (the task
and the labels), dataset (the validated arrays; feature_values, the feature matrix and its checks; checksum;
row_view, a subset's rows without a copy), preprocess (with preprocess_sparse for CSR
input, column_stats, scaling, preprocess_messages and blocks), weights; streamed (predict's reader: pieces,
streamed_frames, streamed_text; text_features, training's read of a text table through it); beside them what the
steps share: conventions (tasks, the roles' default names), cells (cells as tables write them), labels (labels as
matched).
"""

from .conventions import (CLASSIFICATION_TASKS, DEFAULT_BATCH, DEFAULT_GROUP, DEFAULT_GROUPS, DEFAULT_ID,
    DEFAULT_TARGET, IMPUTE_METHODS, TASKS)
from .sources import SUPPORTED_FORMATS
from .cells import typed_as_written
from ..errors import SplitLeakageError
from . import h5ad  # noqa: E402 - AnnData files; anndata itself is imported only when one is read
from . import tenx  # noqa: E402 - 10x Genomics directories (matrix.mtx.gz, features.tsv.gz, barcodes.tsv.gz)
from . import geo  # noqa: E402 - GEO series matrix files (a table and its samples' annotations)
from .dataset import align_features, Dataset, load_dataset, user_frame, with_positive
from ..centred_rows import is_sparse
from .checksum import data_checksum
from .roles import resolve_roles, Roles
from .dialect import sniff_dialect
from .header import row_names_header
from .io import read_table, read_table_with_notes
from .sources import table_kind, text_suffix
from .counts import counts_like, looks_like_counts, whole_counts
from .copies import row_fingerprints, twin_rows
from .preprocess import PreprocessConfig, Preprocessor
from .samples import SampleJoin, SampleSheet, join_samples, read_sample_sheet
from .weights import class_weights


__all__ = [
    "TASKS", "CLASSIFICATION_TASKS", "IMPUTE_METHODS", "SUPPORTED_FORMATS", "DEFAULT_TARGET", "DEFAULT_GROUP", "DEFAULT_GROUPS",
    "DEFAULT_ID", "DEFAULT_BATCH", "SplitLeakageError", "read_table", "read_table_with_notes", "row_names_header", "sniff_dialect", "table_kind", "text_suffix", "Roles", "resolve_roles", "Dataset", "load_dataset", "with_positive", "align_features", "is_sparse",
    "PreprocessConfig", "Preprocessor", "looks_like_counts", "counts_like", "whole_counts", "row_fingerprints", "twin_rows", "class_weights", "data_checksum",
    "SampleSheet", "SampleJoin", "read_sample_sheet", "join_samples", "typed_as_written",
]
