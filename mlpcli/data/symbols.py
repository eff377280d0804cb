"""Gene symbols beside the gene ids a model's features are named by: an .h5ad file (or a 10x directory, offered as
one: ``tenx.TenX``) whose genes are named by Ensembl ids (its var_names) keeps their symbols in a var column, as
CELLxGENE (``feature_name``), scanpy's ``read_10x_mtx`` and 10x (``gene_symbols``) and others (``gene_name``,
``symbol``) write them. What the symbols are for: showing a biologist the genes a ranking names (``explain``);
the ids stay the features' names and keys.

    H5ad (its var table, the feature names read) ─symbol_values(h, column)─▶ GeneSymbols(column, {name: symbol})

The column: a var column by name, ``var_names`` for the var index (unless a var column has that very name, as
``--var-names`` reads it), ``auto`` (or None) for the first of ``SYMBOL_COLUMNS`` the file has that is not the
column its genes are named by and holds other names than they are, ``none`` for no symbols.

Any input (a plain table of microarray probes, Entrez or Ensembl ids too) takes an annotation FILE instead
(``read_symbol_file``): a GEO platform table (``GPL570.annot.gz``, the GPL "full table" download, a family SOFT
file), an Ensembl BioMart export, a plain two-column file (ids, symbols; with or without a header).

    annotation file ─read_symbol_file(path, feature names)─▶ GeneSymbols(column, {name: symbol}, source=path)

How ``--symbols VALUE`` is read (``symbols_kind``): ``auto`` and ``none`` are the keywords; a value with a "/" is
a file's path (``./auto``, ``./feature_name`` for a file of such a name); with cell input (an .h5ad file or a
10x directory) a value naming a var column (or ``var_names``) is that column, any other value a file; with any
other input every value is a file (a word that names no file and is not written as one — no "/", no table
suffix — is then an OptionError: a var column asked of a table).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, OptionError
from ..text import quoted

__all__ = ["AUTO", "NO_SYMBOLS", "SYMBOL_COLUMNS", "SYMBOL_FILE_COLUMNS", "GeneSymbols", "check_symbols_option",
           "label", "read_symbol_file", "symbol_values", "symbols_kind"]

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
    column's name, or "var_names" for the index; an annotation file's symbol column); ``notes`` for the user
    (which column, and how to choose). From an annotation file (``read_symbol_file``): ``source`` its path,
    ``id_column`` its column matched to the feature names, ``n_matched`` how many of them it holds; and
    ``named_already`` True (``symbols`` empty) when the features are the file's symbols already; ``warnings`` when it
    holds fewer than FEW_MATCHED of them (an annotation of another platform or id type, matching some by chance)."""

    column: str
    symbols: dict[str, str]
    notes: list[str] = field(default_factory=list)
    source: str | None = None
    id_column: str | None = None
    n_matched: int | None = None
    named_already: bool = False
    warnings: list[str] = field(default_factory=list)  # an annotation file holding few of the features (FEW_MATCHED)

    def of(self, name: str) -> str | None:
        """The symbol of the feature ``name``, or None."""
        return self.symbols.get(str(name))


def label(name: str, symbol: object) -> str:
    """A gene as a figure labels it: "TP53 (ENSG00000141510)", or its id alone without a symbol."""
    if symbol is None or (isinstance(symbol, float) and np.isnan(symbol)) or str(symbol) in ("", str(name)):
        return str(name)
    return f"{symbol} ({name})"


# the suffixes that make a --symbols value a file's name, whatever the input (a workbook: to be refused by name)
_FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".annot", ".soft", ".parquet", ".gz", ".bz2", ".xz", ".zip",
                  ".xlsx", ".xls")


def _written_as_path(value: str) -> bool:
    """Whether a --symbols value is written as a file's path: a "/" in it, or an annotation table's suffix."""
    text = str(value)
    return "/" in text or os.sep in text or text.lower().endswith(_FILE_SUFFIXES)


def symbols_kind(value: str | None, columns: Sequence[str] | None = None) -> str:
    """What a ``--symbols`` value names: "auto" (None or "auto"), "none", "column" or "file". ``columns``: the var
    columns of cell input (an .h5ad file or a 10x directory), None for any other input. The rule: the keywords
    first; a value with a "/" is a file (``./NAME`` for a file named as a keyword or a var column); with cell input
    a var column of that name, or "var_names" (the var index), is that column; any other value is a file."""
    if value in (None, AUTO):
        return AUTO
    if value == NO_SYMBOLS:
        return NO_SYMBOLS
    if "/" in str(value) or os.sep in str(value):
        return "file"
    if columns is not None and (value in columns or value == _INDEX):
        return "column"
    return "file"


def check_symbols_option(source, column: str | None) -> None:
    """--symbols before any reading: a var COLUMN belongs to cell input (an .h5ad file or a 10x directory, whose var
    table holds the symbols), so with any other table a value that is neither an existing file nor written as a
    file's path (a "/", a table suffix: read, and said missing, by ``read_symbol_file``) is an OptionError, as
    --var-names is refused. ``auto`` (the default) and ``none`` pass, and so does anything with cell input (its
    var table decides)."""
    from . import h5ad, tenx

    if column in (None, AUTO, NO_SYMBOLS):
        return
    if isinstance(source, pd.DataFrame):
        shown = "the table"
    elif h5ad.is_h5ad(source) or tenx.is_tenx(source):
        return
    else:
        shown = "standard input" if str(source) == "-" else os.path.basename(os.fspath(source))
    if os.path.exists(column) or _written_as_path(column):
        return
    raise OptionError(f"--symbols {column}: no such file, and a var column applies to .h5ad (AnnData) or 10x "
                      f"Genomics input only (their var tables hold the symbols); {shown} is a table whose columns "
                      "are the features: give an annotation file of ids and symbols (a GEO platform table, a "
                      "BioMart export, two columns)")


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
    from .h5ad import is_text_column, may_hold_names

    table = ".raw.var" if getattr(h, "matrix_name", "") == ".raw.X" else "var"
    if column in (None, AUTO):
        chosen = None
        for c in SYMBOL_COLUMNS:
            if c in columns and c != named_by and is_text_column(h.var[c]):
                values = _values(h, c)
                if not _same_as_names(values, names):
                    chosen = c
                    break
        if chosen is None:
            return None
        column = chosen
        how = "auto-detected; --symbols COLUMN for another, --symbols none for the ids alone"
    else:
        if symbols_kind(column, columns) == "file" and (os.path.exists(column) or _written_as_path(column)):
            keys = features if features is not None else {n: n for n in names}
            return read_symbol_file(column, list(keys))
        index = column == _INDEX and _INDEX not in columns
        if not index and column not in columns:
            raise DataError(f"--symbols {column!r}: no such {table} column in {h.path}, nor a file of that name; its "
                            f"{table} columns: {quoted(columns, 8) or 'none'} (or var_names, the index; --symbols none "
                            "for the ids alone)")
        if (column if not index else None) == named_by:  # the genes are named by it: nothing beside them
            return None
        if not index and not may_hold_names(h.var[column]):
            texts = [c for c in columns if is_text_column(h.var[c])]
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


# ── annotation files: ids and their symbols ──────────────────────────────────────────────────────────────

# The columns of an annotation file that hold gene symbols, by convention, in the order looked for (their names
# compared in any letter case, with spaces, underscores, dots and dashes alike): GEO platform tables ("Gene Symbol"
# in the full table, "Gene symbol" in GPL….annot, "GENE_SYMBOL" on Agilent, "Symbol" on Illumina), BioMart exports
# ("Gene name"; "hgnc_symbol", "external_gene_name" from biomaRt), CELLxGENE's and 10x's names, hand-made files.
SYMBOL_FILE_COLUMNS = ("gene symbol", "gene symbols", "symbol", "hgnc symbol", "mgi symbol", "gene name",
                       "external gene name", "feature name", "gene_name", "gene_symbol")
_SEPARATORS = re.compile(r"[\s_.\-]+")
# GEO's platform tables between these lines (a GPL….annot file, a family SOFT file); else every line that starts
# with one of _PREAMBLE is above or beside the table (the full table's "#ID = …" lines, the SOFT headers)
_TABLE_BEGIN, _TABLE_END = "!platform_table_begin", "!platform_table_end"
_PREAMBLE = ("#", "!", "^")
# several symbols of one id: GEO writes "DDR1 /// MIR4640" (a probe set of two genes); kept, written so
_MANY = " /// "
# a cell without a symbol: Affymetrix's "---", empty, NA
_NO_SYMBOL = {"", "---", "--", "-", "na", "n/a", "nan", "null", "none"}
_HDF5, _ZIP = b"\x89HDF\r\n\x1a\n", b"PK\x03\x04"
_OTHER_NAMES = "gene symbols or other names"  # ``names.id_kind`` of names that are no ids by their form


def _column_key(name: object) -> str:
    """A column's name as the conventions compare it: "Gene_Symbol", "gene.symbol" and "GENE SYMBOL" alike."""
    return _SEPARATORS.sub(" ", str(name).strip().casefold()).strip()


_CONVENTION_RANK = {}
for _rank, _name in enumerate(SYMBOL_FILE_COLUMNS):
    _CONVENTION_RANK.setdefault(_column_key(_name), _rank)


def _symbols_of(cell: object) -> list[str]:
    """The symbols a cell holds: "DDR1 /// MIR4640" gives both, "---" and empty none."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return []
    parts = [p.strip() for p in str(cell).split("///")]
    return [p for p in parts if p.casefold() not in _NO_SYMBOL]


def _file_error(shown: str, what: str) -> DataError:
    return DataError(f"symbol file {shown}: {what}")


def _table_lines(text: str) -> tuple[list[str], bool]:
    """The lines of an annotation file's table (its header first), and whether GEO's platform table markers held it."""
    lines = text.splitlines()
    begin = next((i for i, line in enumerate(lines) if line.strip().casefold() == _TABLE_BEGIN), None)
    if begin is not None:
        end = next((i for i in range(begin + 1, len(lines)) if lines[i].strip().casefold() == _TABLE_END), len(lines))
        return [line for line in lines[begin + 1:end] if line.strip()], True
    return [line for line in lines if line.strip() and not line.lstrip().startswith(_PREAMBLE)], False


def _read_text(path: str, shown: str) -> tuple[pd.DataFrame | None, bool]:
    """An annotation file's table as text cells, its header row as the first row (None: no table lines), and
    whether it is a GEO platform table (between its markers)."""
    from .sources import PARSE_ERRORS, format_suffix, is_model_file, open_binary, short_reason, stream_compression

    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise _file_error(shown, f"cannot be read ({exc.strerror or exc})") from None
    if path.lower().endswith((".xlsx", ".xls")):
        raise _file_error(shown, "is an Excel workbook; save its sheet as .csv or .tsv (ids and symbols)")
    if head.startswith(_HDF5):
        raise _file_error(shown, "is an HDF5 file (.h5ad, .h5), not an annotation table; give a text table of ids "
                                 "and symbols (.csv, .tsv, .txt, optionally .gz)")
    if head.startswith(_ZIP) and is_model_file(path):
        raise _file_error(shown, "is an mlpcli model file, not an annotation table")
    compression = format_suffix(path)[1] or stream_compression(head) or ("zip" if head.startswith(_ZIP) else None)
    try:
        with open_binary(path, compression) as fh:
            raw = fh.read()
    except PARSE_ERRORS as exc:
        raise _file_error(shown, f"cannot be read ({short_reason(exc)})") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _file_error(shown, "is UTF-16 text; save it as UTF-8 (iconv -f UTF-16 -t UTF-8)")
    if b"\x00" in raw[:65536]:
        raise _file_error(shown, "is not a text table (a binary file?); give ids and symbols as .csv, .tsv or .txt")
    # a description column may hold Latin-1 (old GEO uploads): the ids and symbols are ASCII either way
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines, geo = _table_lines(text)
    if not lines:
        return None, geo
    header = lines[0]
    sep = "\t" if "\t" in header else "," if "," in header else ";" if ";" in header else r"\s+"
    import csv

    try:
        frame = pd.read_csv(io.StringIO("\n".join(lines)), sep=sep, header=None, dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=True, engine="python" if sep == r"\s+" else "c",
                            # GEO does not quote (a description may start with a quote); CSV exports do
                            quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL)
    except PARSE_ERRORS as exc:
        raise _file_error(shown, f"cannot be read as a table ({short_reason(exc)})") from None
    return frame, geo


def _frame_of(path: str, shown: str) -> tuple[pd.DataFrame | None, bool]:
    """(the file's table as text, its header row first; None: no table), whether it is a GEO platform table."""
    from .sources import format_suffix

    if format_suffix(path)[0] == ".parquet":
        from .parquet import read_parquet_frame
        from .sources import PARSE_ERRORS, short_reason

        try:
            frame, _ = read_parquet_frame(path, False)
        except DataError as exc:
            raise _file_error(shown, str(exc)) from None
        except PARSE_ERRORS as exc:
            raise _file_error(shown, f"cannot be read ({short_reason(exc)})") from None
        cells = frame.astype(object).where(frame.notna(), "").astype(str)
        return pd.DataFrame([[str(c) for c in frame.columns], *cells.to_numpy().tolist()]), False
    return _read_text(path, shown)


def _unique(names: list[str]) -> list[str]:
    """Column names made distinct ("x", "x (2)"), empty ones named by their position."""
    seen: dict[str, int] = {}
    out = []
    for i, n in enumerate(names):
        n = str(n).strip() or f"column {i + 1}"
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def _example(values: Sequence[object]) -> str | None:
    return next((str(v).strip() for v in values if str(v).strip()), None)


def read_symbol_file(path: str | os.PathLike, feature_names: Sequence[str]) -> GeneSymbols:
    """The gene symbols of ``feature_names`` (a model's features: probe ids, Entrez or Ensembl ids) from the
    annotation file ``path``: a GEO platform table (``GPL….annot`` or the GPL full table; ``#``, ``!`` and ``^``
    lines are skipped, and the lines between ``!platform_table_begin`` and ``!platform_table_end`` are the table
    where the file has them), an Ensembl BioMart export, or a plain table of ids and symbols (two columns, with
    or without a header). Text (.csv, .tsv, .txt, .annot: tab, comma or semicolon separated, as its header line
    says), optionally gzip, bzip2, xz or zip compressed (by name or by content); or .parquet.

    The id column is the one whose values match the most feature names (by the readers' rule, ``names.name_key``:
    letter case and Ensembl version suffixes aside, ``ENSG00000141510.17`` is ``ENSG00000141510``); the symbol
    column the first other column named by convention (``SYMBOL_FILE_COLUMNS``, in any letter case: "Gene Symbol",
    "Gene symbol", "Gene name", "symbol", "hgnc_symbol", ...), else a two-column file's other column. An id of
    several symbols (GEO's "DDR1 /// MIR4640"; an id on several rows with different symbols) keeps them all,
    " /// " between them; "---", NA and empty cells are no symbol.

    Returns a GeneSymbols: ``symbols`` {feature name (as given): symbol} for the features that have one,
    ``column`` the symbol column, ``id_column``, ``n_matched`` (features found in the file), ``source`` the path,
    and a note saying which columns were read. When the column matching the features best is a symbol column, the
    features are the symbols already: ``named_already`` True and ``symbols`` empty, said in the note.

    A DataError naming the file (one line) when it is missing or cannot be read, when no column holds any of the
    feature names (with an example of each side), or when it has no symbol column (listing its columns)."""
    from .names import count_matches, id_kind, name_key

    path = os.fspath(path)
    shown = path
    if not os.path.exists(path):
        from .sources import check_file

        try:
            check_file(path)  # its hints: a ~ not expanded, the file compressed beside it
        except DataError as exc:
            # "--symbols FILE: ..." where "table file not found: FILE" would be said of the command's table
            raise DataError(str(exc).replace("table file not found: ", f"--symbols {path}: symbol file not found: ",
                                             1)) from None
        raise DataError(f"--symbols {path}: symbol file not found: {path}")  # pragma: no cover - check_file raised
    if os.path.isdir(path):
        raise _file_error(shown, "is a directory; give an annotation table of ids and symbols (.csv, .tsv, .txt, "
                                 "optionally .gz)")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise _file_error(shown, "is empty (0 bytes); expected a header line and rows of ids and symbols")
    frame, geo = _frame_of(path, shown)
    if frame is None or frame.empty:
        raise _file_error(shown, "holds no table (comment lines alone)" if frame is None else "holds no table")
    features = [str(f) for f in feature_names]
    first = [str(v) for v in frame.iloc[0].tolist()]
    headerless = count_matches(features, first) > 0  # the first row names a feature: ids and symbols, no header
    if headerless:
        columns = [f"column {i + 1}" for i in range(frame.shape[1])]
        rows = frame
    else:
        columns = _unique(first)
        rows = frame.iloc[1:]
    rows = rows.set_axis(columns, axis=1)
    if rows.empty:
        raise _file_error(shown, f"holds a header ({quoted(columns, 6)}) and no rows")
    values = {c: rows[c].tolist() for c in columns}
    matches = {c: count_matches(features, values[c]) for c in columns}
    best = max(columns, key=lambda c: matches[c])  # (the first of a tie: Gene stable ID before its version)
    if matches[best] == 0:
        id_column = next((c for c in columns if _column_key(c) == "id"), columns[0])
        theirs = _example(values[id_column])
        ours = features[0] if features else None
        raise _file_error(shown, f"no column matches the model's features: 0 of the model's {len(features):,} "
                                 f"features (like {ours!r}, {id_kind(features)}) are in any of its {len(columns)} "
                                 f"columns (its column {id_column!r} holds values like {theirs!r}, "
                                 f"{id_kind(values[id_column])}); give the annotation of the ids the model was "
                                 "trained on (the platform of its table)")
    conventional = sorted((c for c in columns if _column_key(c) in _CONVENTION_RANK),
                          key=lambda c: _CONVENTION_RANK[_column_key(c)])
    named = f"{best!r} ({matches[best]:,} of the model's {len(features):,} features)"
    # a symbol column holding the model's names: the features are symbols (unless its values are ids by their form,
    # a column misnamed: Ensembl ids under "gene_name")
    if best in conventional and not headerless and id_kind(values[best]) == _OTHER_NAMES:
        note = (f"the model's features are the gene symbols of {shown}'s column {named} already: "
                "nothing to add beside them")
        return GeneSymbols(best, {}, [note], source=path, id_column=best, n_matched=matches[best], named_already=True)
    symbol_column = next((c for c in conventional if c != best), None)
    if symbol_column is None and len(columns) == 2:
        symbol_column = next(c for c in columns if c != best)
    if symbol_column is None:
        raise _file_error(shown, f"no gene symbol column (one named {', '.join(SYMBOL_FILE_COLUMNS[:6])}, ... in any "
                                 f"letter case) beside its ids in {best!r}; its columns: {quoted(columns, 10)} "
                                 "(rename the symbols' column, or give two columns: ids, symbols)")
    by_key: dict[str, list[str]] = {}
    for ident, cell in zip(values[best], values[symbol_column]):
        found = _symbols_of(cell)
        if not found:
            continue
        known = by_key.setdefault(name_key(ident), [])
        known.extend(s for s in found if s not in known)
    symbols, several = {}, 0
    for f in features:
        found = [s for s in by_key.get(name_key(f), []) if name_key(s) != name_key(f)]
        if found:
            symbols[f] = _MANY.join(found)
            several += len(found) > 1
    where = "GEO platform table" if geo else "annotation file"
    note = (f"gene symbols beside the ids from the {where} {shown}: its column {symbol_column!r}, by the ids in its "
            f"column {named}, {len(symbols):,} with a symbol")
    if several:
        note += f"; {several:,} with several (kept, '{_MANY}' between them)"
    return GeneSymbols(symbol_column, symbols, [note], source=path, id_column=best, n_matched=matches[best],
                       warnings=_few_matched(shown, best, matches[best], features))


# A platform's annotation holds every probe of its arrays, a BioMart export of all genes every id: an annotation file
# holding fewer than this share of the model's features is for other ids (another platform, another id type, a
# subset of genes), and its matches may be chance (probe ids such as "1007_s_at" recur across Affymetrix platforms)
FEW_MATCHED = 0.5


def _few_matched(shown: str, column: str, n_matched: int, features: list[str]) -> list[str]:
    """A warning when the annotation file ``shown`` holds fewer than FEW_MATCHED of ``features`` (in ``column``)."""
    if not features or n_matched >= FEW_MATCHED * len(features):
        return []
    from .names import id_kind

    share = n_matched / len(features)
    return [f"--symbols {shown}: only {n_matched:,} of the model's {len(features):,} features ({share:.0%}) are in its "
            f"column {column!r}: is it the annotation of the ids the model was trained on ({id_kind(features)}; for "
            "a microarray, the GPL of its series)? The others are shown by their ids"]
