"""The rules for a table's column names: row names, empty and repeated header cells, and the lines some
tools write above a table."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from ..errors import DataError
from .conventions import DEFAULT_ID
from .dialect import head_records, split_line


# ── column names ─────────────────────────────────────────────────────────────────────────────────────────
#
# Every column needs a name that another table can repeat: the model matches features by name, so a
# feature called "Unnamed: 6" (pandas' name for an empty header cell) could never be found again. The rule:
#   * an empty first header cell is the row-name column of R's write.csv (and of pandas' to_csv with its
#     index): its values become the sample ids, under the name sample_id (unless a sample_id column exists,
#     or the values repeat or are missing: then it is an error). It is never a feature; with --id naming
#     another column it is ignored. `predict` names it the same way, so a model predicts on its own
#     training file.
#   * another empty header cell over a column without any value (a separator at the end of every line) is
#     ignored with a note; over values, it is an error naming its position.
#   * a name given twice is an error naming the positions.


def row_names_header(columns: Sequence[str]) -> list[str]:
    """The header with an empty first cell named `sample_id` (R's write.csv row names), when no other
    column has that name; the readers of every command name it so."""
    columns = [str(c) for c in columns]
    if columns and not columns[0].strip() and DEFAULT_ID not in columns[1:]:
        columns[0] = DEFAULT_ID
    return columns


UNNAMED = "\x00unnamed "  # stand-in names of empty header cells: never a feature, never shown


def _unnamed(position: int) -> str:
    """A stand-in name for the empty header cell at 0-based `position`."""
    return f"{UNNAMED}{position + 1}"


def header_names(cells: Sequence[Any], source: str) -> tuple[list[str], list[str], bool]:
    """(column names, notes, whether the first column is row names read as `sample_id`): row names named,
    other empty cells given stand-in names, repeats refused. Beside a `sample_id` column the row names keep a
    stand-in name: ``check_unnamed`` ignores them when they are row numbers."""
    names = [str(c) for c in cells]
    check_unique_header(names, source, False)
    notes = []
    row_names = bool(names) and not names[0].strip()
    if row_names and DEFAULT_ID in names[1:]:
        names[0] = _unnamed(0)
        row_names = False
    elif row_names:
        names[0] = DEFAULT_ID
        notes.append(f"{source}: the first column has no name (R's write.csv row names): read as the sample ids, "
                     f"{DEFAULT_ID!r}")
    for j in range(1, len(names)):
        if not names[j].strip():
            names[j] = _unnamed(j)
    return names, notes, row_names


def check_unnamed(frame: pd.DataFrame, source: str, row_names: bool, names: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Drop the columns of `frame` under an empty header cell that hold no value; any other is an error
    naming its position. `names`: every column of the file (for positions and neighbours). With
    `row_names`, the first column's values must be usable as sample ids."""
    notes = []
    if row_names and DEFAULT_ID in frame.columns:
        col = frame[DEFAULT_ID]
        if col.isna().any() or col.duplicated().any():
            why = "missing values" if col.isna().any() else "repeated values"
            raise DataError(f"{source}: header cell 1 is empty, and its column holds {why}, so it cannot be row "
                            "names (sample ids); give the first column a name")
    empty = [c for c in frame.columns if str(c).startswith(UNNAMED)]
    position = {n: j for j, n in enumerate(names)}
    first = [c for c in empty if position[c] == 0 and frame[c].notna().any()]  # row names beside a sample_id column
    if first:
        if not holds_row_numbers(frame[first[0]]):
            raise DataError(f"{source}: header cell 1 is empty (R's row names?) and another column is already named "
                            f"{DEFAULT_ID!r}; give the first column a name")
        frame = frame.drop(columns=first)
        empty = [c for c in empty if c not in first]
        notes.append(f"{source}: ignored the first column, which has no name and numbers the rows (as R's write.csv "
                     f"and pandas' to_csv write row names by default), as the sample ids are in {DEFAULT_ID!r}")
    for c in empty:
        if frame[c].notna().any():
            j = position[c]
            after = f" (after {names[j - 1]!r})" if j and not names[j - 1].startswith(UNNAMED) else ""
            raise DataError(f"{source}: header cell {j + 1}{after} is empty but its column holds values; give every "
                            "column a name (a feature needs one that other tables can repeat)")
    if empty:
        frame = frame.drop(columns=empty)
        where = ", ".join(str(position[c] + 1) for c in empty)
        notes.append(f"{source}: ignored {len(empty)} column{'s' * (len(empty) > 1)} with neither a name nor a "
                     f"value (column {where}; a separator at the end of each line?)")
    return frame, notes


def holds_row_numbers(col: pd.Series) -> bool:
    """Whether a column holds row numbers: distinct integers in every row (R's automatic row names, 1, 2, ...,
    also of a subset or a reordered frame; pandas' default index, 0, 1, ...)."""
    numbers = pd.to_numeric(col, errors="coerce")
    return bool(numbers.notna().all() and (numbers == numbers.round()).all() and numbers.is_unique)


def apply_header_rules(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """The column-name rules for a table read whole (parquet): see above."""
    names, notes, row_names = header_names(list(frame.columns), source)
    frame = frame.set_axis(names, axis=1)
    frame, more = check_unnamed(frame, source, row_names, names)
    return frame, notes + more



def preamble_hint(header: Sequence[Any], source: str) -> str:
    """For an error about rows of another width than the header: a hint when the line read as the header is
    one of the lines some tools write above their table — a GEO file's '!Series_…' / '!Platform_…' lines (a series
    matrix given by its file name is read as one, ``data.geo``: this is one read from a stream, or a platform
    file), or a '#' comment (featureCounts' "# Program:featureCounts ..."). Empty otherwise."""
    from .names import comment_line_hint

    first = str(header[0]).strip().strip('"') if len(header) else ""
    if first.startswith(("!Series_", "!Sample_", "!series_matrix")):
        return (f"; {source} is a GEO series matrix file: give it by its file name, from which mlpcli reads its "
                "expression table and its samples' annotations")
    if first.startswith("!Platform_"):
        return (f"; {source} is a GEO platform file (the probes' annotation), not an expression table: its series "
                "matrix file (GSE..._series_matrix.txt.gz) holds the values")
    return comment_line_hint(header)


# featureCounts' gene annotation columns between the gene id and the samples (its output is genes x samples)
_FEATURECOUNTS = ["Chr", "Start", "End", "Strand", "Length"]


# What the column of feature names is called (GEO's ID_REF, DESeq2's and tximport's gene ids, probes, proteins), in
# lower case: never a sample's name. (``tenx`` adds a barcode file's words.)
FEATURE_COLUMN_NAMES = frozenset({
    "id_ref", "id", "ids", "name", "gene", "genes", "gene_id", "gene_ids", "geneid", "gene_name", "gene_names",
    "gene_symbol", "gene_symbols", "genesymbol", "symbol", "symbols", "feature", "features", "feature_id",
    "feature_name", "probe", "probes", "probe_id", "probeid", "probeset", "probeset_id", "probe_set",
    "ensembl", "ensembl_id", "ensembl_gene_id", "entrez", "entrez_id", "entrezid", "protein", "protein_id",
    "protein_ids", "uniprot", "accession", "transcript", "transcript_id"})


def header_lacks_row_name_cell(header: Sequence[str], head: str, complete: bool, sep: str,
                               source: str = "the table") -> bool:
    """Whether a features x samples header lacks the feature-name column's cell: R's ``write.table(m)``
    writes a header of the sample ids alone above rows of a name and one value per sample. Told by the first
    rows of `head` (the text the dialect was sniffed on), which must all have one field more than the header.
    A DataError naming `source` when the header's first cell names the feature column (ID_REF, gene_id: R's
    header has samples only): then a sample's name is missing, and every sample would take its neighbour's
    values."""
    rows = [split_line(r, sep) for r in head_records(head, complete)[1:6]]
    # rows ending in an empty field have a separator at their end instead (the header's values would shift)
    short = bool(rows) and str(header[0]).strip() != "" and all(len(r) == len(header) + 1 for r in rows) \
        and not all(not r[-1].strip() for r in rows)
    if short and str(header[0]).strip().strip('"').lower() in FEATURE_COLUMN_NAMES:
        raise DataError(f"{source}: its header (line 1) has one cell fewer than its rows, and its first cell "
                        f"({str(header[0]).strip()!r}) names the feature column: a sample's name is missing from the "
                        "header (every sample would take its neighbour's values); is the file damaged?")
    return short


def check_not_featurecounts(header: Sequence[Any], source: str) -> None:
    """A genes x samples header of featureCounts (Geneid, Chr, Start, End, Strand, Length, then the samples):
    its five annotation columns would be read as samples (Start, End and Length hold numbers)."""
    cells = [str(h).strip() for h in header[1:1 + len(_FEATURECOUNTS)]]
    # all five, or the last of them that a cut left (cut -f1,6- keeps Length, whose gene lengths read as a sample)
    k = next((k for k in range(len(_FEATURECOUNTS), 0, -1) if cells[:k] == _FEATURECOUNTS[-k:]), 0)
    if k:
        where = f"columns 2-{k + 1}" if k > 1 else "column 2"
        raise DataError(f"{source}: {where} ({', '.join(_FEATURECOUNTS[-k:])}) {'are' if k > 1 else 'is'} featureCounts' "
                        "gene annotation, not samples; with --features-in-rows every column after the first is one "
                        f"sample — keep the gene ids and the counts, e.g. cut -f1,{k + 2}- {source} > counts.tsv")


def check_unique_header(header: Sequence[Any], source: str, features_in_rows: bool) -> None:
    names = [str(h) for h in header]
    offset = 1 if features_in_rows else 0  # the first header cell only labels the feature-name column
    positions: dict[str, list[int]] = {}
    for j, name in enumerate(names[offset:], start=offset + 1):
        if name.strip():
            positions.setdefault(name, []).append(j)
    repeats = [(name, at) for name, at in positions.items() if len(at) > 1]
    if repeats:
        listed = ", ".join(f"{name!r} (×{len(at)})" for name, at in repeats[:5])
        more = f" and {len(repeats) - 5} more" if len(repeats) > 5 else ""
        listed += more + " (columns " + "; ".join(", ".join(map(str, at[:4])) + (", ..." if len(at) > 4 else "")
                                         for _, at in repeats[:5]) + ")"
        more = ""
        if features_in_rows:
            raise DataError(f"duplicate sample ids in the header of {source}: {listed}{more}; sample ids must be unique")
        raise DataError(f"duplicate column names in {source}: {listed}{more}; rename or remove the repeated columns")
