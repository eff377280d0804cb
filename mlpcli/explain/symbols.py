"""Gene symbols for a ranking whose genes are ids: a model trained on an .h5ad file's Ensembl ids (its var_names)
ranks them by id; the file's var table (``feature_name`` in CELLxGENE's files, ``gene_symbols`` in a 10x
directory's features.tsv) tells their symbols, which a biologist reads (``data.symbols``).

    >>> from mlpcli.explain import explain, feature_symbols, load_samples
    >>> samples = load_samples(model, "cells.h5ad")
    >>> result = explain(model, samples.X, samples.y)
    >>> symbols = feature_symbols(model, "cells.h5ad")          # None: nothing to add (no column, or symbols already)
    >>> result.add_symbols(symbols)                              # result.table: a `symbol` column after `feature`

A table of microarray probes, Entrez or Ensembl ids (any input) takes an annotation file: a GEO platform table
(GPL570.annot.gz), a BioMart export, two columns of ids and symbols.

    >>> result.add_symbols(feature_symbols(model, "cohort.csv", column="GPL570.annot.gz"))
    >>> read_symbol_file("GPL570.annot.gz", model.feature_names).symbols       # {probe id: symbol}
"""

from __future__ import annotations

import os

from ..data.symbols import (AUTO, NO_SYMBOLS, SYMBOL_COLUMNS, GeneSymbols, check_symbols_option, label,
                            read_symbol_file, symbol_values)
from ..model_io import Model, require_model

__all__ = ["AUTO", "NO_SYMBOLS", "SYMBOL_COLUMNS", "GeneSymbols", "feature_symbols", "label", "read_symbol_file"]


def feature_symbols(model: Model, source, roles=None, column: str | None = None) -> GeneSymbols | None:
    """The symbols of ``model``'s features, keyed by the model's feature names: from the var table of the .h5ad
    file or 10x directory ``source``, read with the matrix and gene names ``load_samples`` (and predict) read it
    with — the model's training choices (--layer, --raw, --var-names) unless ``roles`` (``predict.RoleFlags``) say
    others —, or from an annotation file (``data.symbols.read_symbol_file``), for any ``source``.

    ``column`` (``--symbols``; ``data.symbols.symbols_kind`` tells which): the var column of the symbols,
    "var_names" for the var index, "auto" or None for the conventional ones (``SYMBOL_COLUMNS``), "none" for none;
    or an annotation file's path (a value with a "/", any value with another input than cells, and with cells one
    that names no var column). Returns a GeneSymbols, or None when there is nothing to add: another kind of table
    without a file, no such column found, or the features are named by it already (a model trained with
    --var-names feature_name). A word that names no file with another input than cells is an OptionError (as
    --var-names is); a column the cells lack, a file that is missing or unreadable or matches none of the
    features: a DataError."""
    require_model(model, "feature_symbols takes")
    from ..predict.prepared import is_cells

    check_symbols_option(source, column)
    if column == NO_SYMBOLS:
        return None
    cells = is_cells(source)
    if not cells:
        if column in (None, AUTO):
            return None
        return read_symbol_file(column, model.feature_names)  # (check_symbols_option: a file)
    if "/" in str(column) or os.sep in str(column):  # a path: no var column is looked at (./NAME)
        return read_symbol_file(column, model.feature_names)
    from .. import data
    from ..predict.columns import RoleFlags
    from ..predict.table_roles import open_h5ad

    roles = roles or RoleFlags()
    if data.tenx.is_tenx(source):
        data.tenx.check_options(source, roles.layer, roles.raw, roles.features_in_rows)
    table, _, _, _ = open_h5ad(source, roles, model)  # (its notes and warnings were said when the cells were read)
    try:
        h = table.h
        match = data.names.match_names(model.preprocessor.kept_features, h.feature_names, source=table.name)
        return symbol_values(h, column, match.columns)
    finally:
        table.close()
