"""Gene symbols for a ranking whose genes are ids: a model trained on an .h5ad file's Ensembl ids (its var_names)
ranks them by id; the file's var table (``feature_name`` in CELLxGENE's files, ``gene_symbols`` in a 10x
directory's features.tsv) tells their symbols, which a biologist reads (``data.symbols``).

    >>> from mlpcli.explain import explain, feature_symbols, load_samples
    >>> samples = load_samples(model, "cells.h5ad")
    >>> result = explain(model, samples.X, samples.y)
    >>> symbols = feature_symbols(model, "cells.h5ad")          # None: nothing to add (no column, or symbols already)
    >>> result.add_symbols(symbols)                              # result.table: a `symbol` column after `feature`
"""

from __future__ import annotations

from ..data.symbols import AUTO, NO_SYMBOLS, SYMBOL_COLUMNS, GeneSymbols, check_symbols_option, label, symbol_values
from ..model_io import Model, require_model

__all__ = ["AUTO", "NO_SYMBOLS", "SYMBOL_COLUMNS", "GeneSymbols", "feature_symbols", "label"]


def feature_symbols(model: Model, source, roles=None, column: str | None = None) -> GeneSymbols | None:
    """The symbols of ``model``'s features in the .h5ad file or 10x directory ``source``, read with the matrix and
    gene names ``load_samples`` (and predict) read it with — the model's training choices (--layer, --raw,
    --var-names) unless ``roles`` (``predict.RoleFlags``) say others; keyed by the model's feature names.

    ``column``: the var column of the symbols, "var_names" for the var index, "auto" or None for the conventional
    ones (``SYMBOL_COLUMNS``), "none" for none. None when there is nothing to add: another kind of table (a
    column named for one is an OptionError, as --var-names is), no such column found, or the features are named by
    it already (a model trained with --var-names feature_name). A column given that the file lacks: a DataError."""
    require_model(model, "feature_symbols takes")
    from ..predict.prepared import is_cells

    check_symbols_option(source, column)
    if column == NO_SYMBOLS or not is_cells(source):
        return None
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
