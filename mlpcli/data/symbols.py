"""Gene symbols beside the gene ids a model's features are named by: an .h5ad file (or a 10x directory, offered as
one: ``tenx.TenX``) whose genes are named by Ensembl ids (its var_names) keeps their symbols in a var column, as
CELLxGENE (``feature_name``), scanpy's ``read_10x_mtx`` and 10x (``gene_symbols``) and others (``gene_name``,
``symbol``) write them. What the symbols are for: showing a biologist the genes a ranking names (``explain``);
the ids stay the features' names and keys.

    H5ad (its var table, the feature names read) ─symbol_values(h, column)─▶ GeneSymbols(column, {name: symbol})

The column: a var column by name, ``var_names`` for the var index (unless a var column has that very name, as
``--var-names`` reads it), ``auto`` (or None) for the first of ``SYMBOL_COLUMNS`` the file has that is not the
column its genes are named by and holds other names than they are, ``none`` for no symbols.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import DataError, OptionError
from ..text import quoted

__all__ = ["AUTO", "NO_SYMBOLS", "SYMBOL_COLUMNS", "GeneSymbols", "check_symbols_option", "label", "symbol_values"]

# the var columns that hold gene symbols, by convention, in the order looked for: CELLxGENE, scanpy's read_10x_mtx
# (and mlpcli's 10x reader), GENCODE / Ensembl annotations, hand-made files
SYMBOL_COLUMNS = ("feature_name", "gene_symbols", "gene_name", "symbol")
AUTO = "auto"  # the first of SYMBOL_COLUMNS the file has (the default)
NO_SYMBOLS = "none"  # no symbols: the ids alone, as before
_INDEX = "var_names"  # the var index (as --var-names var_names)


@dataclass
class GeneSymbols:
    """The symbols of a model's genes: ``symbols`` {feature name: symbol} for the genes that have one (a gene without
    one, or whose symbol is its name, is left out: shown by its id alone); ``column`` where they came from (a var
    column's name, or "var_names" for the index); ``notes`` for the user (which column, and how to choose)."""

    column: str
    symbols: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def of(self, name: str) -> str | None:
        """The symbol of the feature ``name``, or None."""
        return self.symbols.get(str(name))


def label(name: str, symbol: object) -> str:
    """A gene as a figure labels it: "TP53 (ENSG00000141510)", or its id alone without a symbol."""
    if symbol is None or (isinstance(symbol, float) and np.isnan(symbol)) or str(symbol) in ("", str(name)):
        return str(name)
    return f"{symbol} ({name})"


def check_symbols_option(source, column: str | None) -> None:
    """--symbols COLUMN belongs to cell input (an .h5ad file or a 10x directory, whose var table holds the symbols):
    an OptionError for any other table, as --var-names is refused. ``auto`` (the default) and ``none`` pass."""
    from . import h5ad, tenx

    if column in (None, AUTO, NO_SYMBOLS):
        return
    if isinstance(source, pd.DataFrame):
        shown = "the table"
    elif h5ad.is_h5ad(source) or tenx.is_tenx(source):
        return
    else:
        shown = "standard input" if str(source) == "-" else os.path.basename(os.fspath(source))
    raise OptionError(f"--symbols {column} applies to .h5ad (AnnData) or 10x Genomics input only (their var tables "
                      f"hold the symbols); {shown} is a table whose columns are the features")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or \
        value is pd.NaT or str(value).strip() == ""


def _values(h, column: str | None) -> list:
    """The var index (None) or a var column as plain values (categories as their values, bytes as text)."""
    from .h5ad import plain_values

    values = plain_values(h.var.index if column is None else h.var[column])
    return [None if _missing(v) else str(v).strip() for v in values]


def _same_as_names(values: list, names: list[str]) -> bool:
    """Whether a column holds the genes' own names (the features are the symbols already): most of its values, the
    matching rule of every reader aside (letter case, Ensembl versions), are the name of their gene."""
    from .names import name_key

    pairs = [(v, n) for v, n in zip(values, names) if v is not None]
    return bool(pairs) and 2 * sum(name_key(v) == name_key(n) for v, n in pairs) > len(pairs)


def symbol_values(h, column: str | None = None, features: Mapping[str, str] | None = None) -> GeneSymbols | None:
    """The symbols of the genes of an open .h5ad file or 10x directory ``h`` (``h5ad.H5ad``: its var table and the
    feature names it was read with), from the var column ``column`` (module docstring: a name, "var_names",
    "auto" or None, "none"). ``features``: {model feature: the file's feature name} (``names.match_names``): the
    symbols are keyed by the model's names; default: the file's names themselves.

    None when there is nothing to add: "none"; auto and no conventional column (or only the one the genes are named
    by, or one holding their names); a column given that names the genes already (said in a note would be noise:
    the ranking shows those names). A column given that the file lacks, or that holds numbers that are no names,
    is a DataError naming the file's columns."""
    if column == NO_SYMBOLS:
        return None
    names = list(h.feature_names)
    named_by = h.var_names_column  # None: the var index
    columns = [str(c) for c in h.var.columns]
    from .h5ad import _is_text, _may_hold_names

    table = ".raw.var" if getattr(h, "matrix_name", "") == ".raw.X" else "var"
    if column in (None, AUTO):
        chosen = None
        for c in SYMBOL_COLUMNS:
            if c in columns and c != named_by and _is_text(h.var[c]):
                values = _values(h, c)
                if not _same_as_names(values, names):
                    chosen = c
                    break
        if chosen is None:
            return None
        column = chosen
        how = "auto-detected; --symbols COLUMN for another, --symbols none for the ids alone"
    else:
        index = column == _INDEX and _INDEX not in columns
        if not index and column not in columns:
            raise DataError(f"--symbols {column!r}: no such {table} column in {h.path}; its {table} columns: "
                            f"{quoted(columns, 8) or 'none'} (or var_names, the index; --symbols none for the ids "
                            "alone)")
        if (column if not index else None) == named_by:  # the genes are named by it: nothing beside them
            return None
        if not index and not _may_hold_names(h.var[column]):
            texts = [c for c in columns if _is_text(h.var[c])]
            raise DataError(f"--symbols {column!r}: the {table} column of {h.path} holds numbers or flags, not gene "
                            f"symbols; its text columns: {quoted(texts, 8) or 'none'} (or var_names, the index)")
        values = _values(h, None if index else column)
        how = "--symbols"
    where = "var_names (the var index)" if column == _INDEX and _INDEX not in columns else f"{table} column {column!r}"
    by_name = {n: v for n, v in zip(names, values) if v is not None and v != n}
    keys = features if features is not None else {n: n for n in names}
    symbols = {str(f): by_name[c] for f, c in keys.items() if c in by_name}
    notes = [f"gene symbols beside the ids from the {where} of {h.path} ({how})"]
    return GeneSymbols(column, symbols, notes)
