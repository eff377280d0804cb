"""The features x samples layout (GEO, DESeq2): a table whose rows are genes, read as samples x features."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .conventions import DEFAULT_ID
from .cells import ROUND_TRIP, non_number_cells, typed_as_written
from ..text import quoted


# The transposed (features × samples) layout. Rows whose every value parses as a number become numeric
# columns (int64 when all integral, else float64); the others, and the rows named as holding ids, groups,
# batches or labels, are typed as written (``typed_as_written``): labels 01 and 02, patients 000 and 001
# stay as written, as in a samples × features table, instead of becoming the numbers 1, 2, 0 and 1.


def read_feature_rows_text(read_csv: Callable[..., pd.DataFrame], header: list[str], source: str,
                            text: Sequence[str] = (), decimal: str | None = None,
                            notes: list[str] | None = None, na_tokens: Sequence[str] = ()) -> pd.DataFrame:
    """Features × samples text table -> samples × features frame with `sample_id` first; `read_csv(**kw)`
    reads the file with its separator and `decimal` mark; the rows named in `text` are read as text.
    `na_tokens`: the cells of the sample columns that are missing values; the feature names are read as
    written (``Nan`` is a mouse gene, ``NA`` a name), only an empty one is missing.

    A label row makes every sample column text, and parsing 60,000 × n cells from Python strings is slow.
    So: pass 1 reads the names and the first sample to find the text rows, pass 2 lets pandas' C parser read
    the numeric rows as floats, pass 3 reads the few text rows. If pass 2 still meets text (a row that looked
    numeric in the first sample), fall back to one generic pass. Columns under an empty header cell that hold
    no value (a separator at the end of every line, as spreadsheets export) are left out, with a line in
    `notes`, as in a samples x features table; over values, an empty header cell is an error.
    """
    sample_ids = header[1:]
    if not sample_ids:
        raise DataError(f"{source} has no sample columns; with --features-in-rows the first column holds "
                        "feature names and every other column is one sample")
    blank = [k + 1 for k, s in enumerate(sample_ids) if not s.strip()]  # 0-based columns of the file
    kept: list[int] | None = None

    # the missing-value tokens per sample column, by pandas' own names for them: none for the feature names
    missing = {c: list(na_tokens) for c in read_csv(nrows=0).columns[1:]} if na_tokens else None

    def read(**kwargs) -> pd.DataFrame:
        # pandas' default number parser is an ulp away from the samples x features reader for a seventh of
        # 15-digit decimals and a third of 17-digit ones: the numeric pass below takes its correctly rounded one
        # ("round_trip"; 20,000 genes x 200 samples 1.4-1.7 s -> 2.3 s), so a CSV and its parquet copy train alike
        if kept is not None:
            kwargs.setdefault("usecols", kept)
        if missing is not None:
            kwargs.setdefault("keep_default_na", False)
            kwargs.setdefault("na_values", missing)
        return read_csv(low_memory=False, **kwargs)

    if blank:
        held = read(usecols=blank, dtype=str).notna().any(axis=0).to_numpy()
        if held.any():
            raise DataError(f"{source}: header cell {blank[int(np.argmax(held))] + 1} is empty; every sample column "
                            "needs its id there")
        kept = [j for j in range(len(header)) if j not in set(blank)]
        sample_ids = [header[j] for j in kept[1:]]
        if not sample_ids:
            raise DataError(f"{source} has no sample columns; with --features-in-rows the first column holds "
                            "feature names and every other column is one sample")
        if notes is not None:
            notes.append(f"{source}: ignored {len(blank)} column{'s' * (len(blank) > 1)} with neither a name nor a "
                         f"value (column {', '.join(str(j + 1) for j in blank[:5])}{', ...' if len(blank) > 5 else ''}"
                         "; a separator at the end of each line?)")

    first = read(usecols=[0, kept[1] if kept is not None else 1], dtype=str)
    if first.shape[0] == 0:
        raise DataError(f"{source} has a header but no feature rows")
    names = _check_feature_names(first.iloc[:, 0], source)
    cells = first.iloc[:, 1]
    # under decimal commas too: 0,5 is a number (pass 2 reads it as one), else every row of such a table was text
    is_text = non_number_cells(cells, decimal or ".") | np.isin(names, list(text))
    text_lines = set((np.flatnonzero(is_text) + 1).tolist())  # file line numbers; the header is line 0
    # correctly rounded (above): the numbers the samples x features reader and a parquet copy hold
    numeric = read(skiprows=sorted(text_lines), dtype={0: str}, **ROUND_TRIP) \
        if not is_text.all() else None
    text_rows = read(skiprows=lambda i: i > 0 and i not in text_lines, dtype=str) if is_text.any() else None

    def rows_are(frame: pd.DataFrame | None, mask: np.ndarray) -> bool:
        expected = [n for n, m in zip(names, mask) if m]
        return frame is None and not expected or frame is not None and list(frame.iloc[:, 0]) == expected

    numeric_ok = numeric is None or all(pd.api.types.is_numeric_dtype(t) for t in numeric.dtypes.iloc[1:])
    if not (numeric_ok and rows_are(numeric, ~is_text) and rows_are(text_rows, is_text)):
        return samples_from_feature_rows(read(), source, text, decimal)
    numeric_values = (np.empty((0, len(sample_ids))) if numeric is None
                      else numeric.iloc[:, 1:].to_numpy(dtype=np.float64))  # (F_num, S)
    text_values = (np.empty((0, len(sample_ids)), dtype=object) if text_rows is None
                   else text_rows.iloc[:, 1:].to_numpy(dtype=object))  # (F_text, S)
    return _assemble_samples(sample_ids, names, is_text, numeric_values, text_values, text, decimal, source)


def samples_from_feature_rows(raw: pd.DataFrame, source: str, text: Sequence[str] = (),
                               decimal: str | None = None) -> pd.DataFrame:
    """Generic transposition of an in-memory features × samples frame (parquet, or the text fallback); the
    rows named in `text` are typed as written when their cells are text (a table of numbers only keeps them)."""
    if raw.shape[1] < 2:
        raise DataError(f"{source} has no sample columns; with --features-in-rows the first column holds "
                        "feature names and every other column is one sample")
    if raw.shape[0] == 0:
        raise DataError(f"{source} has a header but no feature rows")
    text_columns = [j for j in range(1, raw.shape[1]) if not pd.api.types.is_numeric_dtype(raw.dtypes.iloc[j])]
    if pd.api.types.is_numeric_dtype(raw.dtypes.iloc[0]) and text_columns:  # the gene column elsewhere (last)
        j = text_columns[0]
        raise DataError(f"{source}: the first column ({str(raw.columns[0])!r}) holds numbers, not feature names, and "
                        f"column {j + 1} ({str(raw.columns[j])!r}) holds text; with --features-in-rows the feature "
                        "names come first — write that column first")
    names = _check_feature_names(raw.iloc[:, 0], source)
    body = raw.iloc[:, 1:]
    values, numeric_rows = _numeric_rows(body, decimal)  # (F, S) float64, (F,) bool
    cells_are_text = not all(pd.api.types.is_numeric_dtype(t) for t in body.dtypes)
    is_text = ~numeric_rows | (cells_are_text & np.isin(names, list(text)))
    text_values = body.iloc[np.flatnonzero(is_text)].to_numpy(dtype=object)
    return _assemble_samples([str(c) for c in body.columns], names, is_text, values[~is_text], text_values, text,
                             decimal, source)


def _check_feature_names(column: pd.Series, source: str) -> list[str]:
    """The first column's names as strings; missing (or blank), repeated or reserved names are errors."""
    blank = column.isna().to_numpy() | np.array([isinstance(v, str) and not v.strip() for v in column], dtype=bool)
    if blank.any():
        rows = np.flatnonzero(blank)
        where = f"the one after {str(column.iloc[rows[0] - 1])!r}" if rows[0] > 0 else "the first row"
        if len(rows) > 1:
            where = "the first: " + where
        raise DataError(f"{source}: {len(rows)} row{'s' * (len(rows) > 1)} ha{'ve' if len(rows) > 1 else 's'} no "
                        f"feature name in the first column ({where})")
    numbers = pd.to_numeric(column, errors="coerce")  # (names read as text, or as numbers)
    parsed = numbers.dropna()
    if len(parsed) > 0.9 * len(numbers) and (parsed != parsed.round()).any():  # (whole numbers: Entrez ids)
        shown = ", ".join(repr(str(v)) for v in column.iloc[:3])
        raise DataError(f"{source}: with --features-in-rows the first column holds the feature names, but this one "
                        f"holds measurements ({shown}, ...): is the table samples x features? If so, leave out "
                        "--features-in-rows")
    names = [str(v) for v in column]
    repeats = [(n, k) for n, k in Counter(names).items() if k > 1]
    if repeats:
        listed = ", ".join(f"{n!r} (×{k})" for n, k in repeats[:5])
        more = f" and {len(repeats) - 5} more" if len(repeats) > 5 else ""
        rows = [i for i, n in enumerate(names) if n == repeats[0][0]][:4]
        where = ", ".join(str(i + 1) for i in rows)
        raise DataError(f"duplicate feature names in the first column of {source}: {listed}{more} ({repeats[0][0]!r} "
                        f"in data rows {where}); names must be unique — several rows per gene (a microarray's "
                        "probes?) need one row per gene, or names of their own such as the probe ids")
    if DEFAULT_ID in names:
        raise DataError(f"{source}: a row is named {DEFAULT_ID!r}, but --features-in-rows takes sample ids "
                        "from the header; rename or remove that row")
    return names


def _numeric_rows(body: pd.DataFrame, decimal: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values (F, S) float64 with NaN where not numeric, mask (F,) of rows that are entirely numeric). Cells
    left as text are numbers when written with the table's `decimal` mark (``non_number_cells``: under
    decimal commas, one sample's stray "0.5" leaves its whole column as text, "0,3" cells included)."""
    if all(pd.api.types.is_numeric_dtype(t) for t in body.dtypes):
        return body.to_numpy(dtype=np.float64), np.ones(body.shape[0], dtype=bool)
    cells = pd.Series(body.to_numpy(dtype=object).ravel())  # (F * S,)
    stray = non_number_cells(cells, decimal or ".")  # present, but not a number
    if decimal == ",":
        cells = cells.map(lambda v: v.replace(",", ".") if isinstance(v, str) else v)
    values = pd.to_numeric(cells.where(~stray), errors="coerce").to_numpy(dtype=np.float64).reshape(body.shape)
    return values, ~stray.reshape(body.shape).any(axis=1)  # a row is numeric when every present cell is


def _assemble_samples(
    sample_ids: list[str], names: list[str], is_text: np.ndarray, numeric_values: np.ndarray, text_values: np.ndarray,
    written: Sequence[str] = (), decimal: str | None = None, source: str = "the table",
) -> pd.DataFrame:
    """Samples × features frame: `sample_id`, then one column per name in file order.

    numeric_values (F_num, S) float64 holds the rows where ~is_text, text_values (F_text, S) the others; of
    these, the `written` ones (ids, groups, batches, labels) are typed as written (``typed_as_written``;
    `decimal`: the table's decimal mark), the rest left as text for the feature checks to name a stray cell.
    """
    annotation, named = _annotation_columns(sample_ids, [n for n, t in zip(names, is_text) if t], numeric_values,
                                            text_values, written, decimal, source) if is_text.any() else (None, [])
    num_names = [n for n, t in zip(names, is_text) if not t]
    block = numeric_values.T  # (S, F_num)
    # Integral rows (counts, 0/1 labels, numeric patient ids) become int64, as read_csv would type them.
    integral = np.all(np.isfinite(block) & (block == np.round(block)) & (np.abs(block) < 2**53), axis=0)
    parts = [pd.DataFrame({DEFAULT_ID: [str(s) for s in sample_ids]})]
    if (~integral).any():
        parts.append(pd.DataFrame(block[:, ~integral], columns=[n for n, i in zip(num_names, integral) if not i]))
    if integral.any():
        parts.append(pd.DataFrame(block[:, integral].astype(np.int64), columns=[n for n, i in zip(num_names, integral) if i]))
    if is_text.any():
        text_names = [n for n, t in zip(names, is_text) if t]
        frame = pd.DataFrame(text_values.T, columns=text_names).infer_objects()
        for name in set(text_names) & set(written):
            frame[name] = typed_as_written(frame[name], decimal)
        parts.append(frame)
    frame = pd.concat(parts, axis=1)[[DEFAULT_ID, *names]]
    if annotation is not None:
        frame.attrs[ANNOTATION_ATTR] = annotation
        frame.attrs[NAMES_ATTR] = named
    return frame


# A features x samples table's columns that hold text and no number: annotation columns (gene symbols, a
# GEO file's IDENTIFIER), not samples. The reader leaves the message in the frame's attrs, and the command
# raises it (``raise_annotation_columns``) once it has ruled out the other explanation, a samples x features
# table given with --features-in-rows (its role columns are text too), which only a model's names tell.
ANNOTATION_ATTR = "mlpcli_annotation_columns"
# ... and what those columns hold, [(column, header cell, [its text per feature row])]: a symbol column beside the
# Ensembl ids may name the model's features where the first column does not (``raise_names_elsewhere``)
NAMES_ATTR = "mlpcli_annotation_names"


def raise_annotation_columns(frame: pd.DataFrame) -> None:
    """The DataError that the reader of a features x samples table left in `frame`'s attrs, if any."""
    message = frame.attrs.get(ANNOTATION_ATTR)
    if message:
        raise DataError(message)


def raise_names_elsewhere(frame: pd.DataFrame, wanted: Sequence[str], source: str) -> None:
    """A DataError when most of the model's features ``wanted`` are named by one of a features x samples
    file's text columns (gene symbols beside Ensembl ids, say) and fewer by its first column, which
    --features-in-rows reads the names from: the fix is in the file (that column first), and the generic
    "lacks N features" error would not point at it."""
    named = frame.attrs.get(NAMES_ATTR)
    if not named:
        return
    wanted = {str(w) for w in wanted}
    column, cell, hits = max(((c, k, len(wanted.intersection(v))) for c, k, v in named), key=lambda t: t[2])
    in_first = len(wanted.intersection(str(c) for c in frame.columns))
    if 2 * hits < len(wanted) or hits <= in_first:
        return
    raise DataError(f"{source}: column {column!r} (header cell {cell}) names {hits:,} of the model's {len(wanted):,} "
                    f"features, the first column {in_first:,}; with --features-in-rows the first column names the "
                    f"features — write column {column!r} first and leave out the other text columns")


def _annotation_columns(sample_ids: list[str], text_names: list[str], numeric_values: np.ndarray,
                        text_values: np.ndarray, written: Sequence[str], decimal: str | None,
                        source: str) -> tuple[str | None, list[tuple[str, int, list[str]]]]:
    """(message, columns): the error message when columns of a features x samples table hold text and no number while other
    columns hold numbers: annotation columns (gene symbols, descriptions), not samples. Read as samples, they
    were "samples" that training left out (no row in the sheet) or failed on naming a feature's row; and those
    columns as (name, header cell, their text cells), for ``raise_names_elsewhere``. numeric_values (F_num, S): the rows of numbers; text_values (F_text, S): the rows holding text, named
    `text_names`; the `written` ones (ids, groups, batches, labels) are text in every sample and do not count."""
    rows = np.flatnonzero(~np.isin(text_names, list(written)))  # text rows that are not roles
    if not rows.size:
        return None, []
    block = text_values[rows]  # (R, S) object
    cells = pd.Series(block.ravel(), dtype=object)
    stray = non_number_cells(cells, decimal or ".").reshape(block.shape)  # (R, S) text, not numbers
    present = cells.notna().to_numpy().reshape(block.shape)
    texts = stray.sum(axis=0)  # (S,)
    numbers = (present & ~stray).sum(axis=0)  # (S,) cells that are numbers
    if numeric_values.shape[0]:
        numbers = numbers + np.isfinite(numeric_values).sum(axis=0)
    annotation = np.flatnonzero((numbers == 0) & (texts > 0))
    if not annotation.size or not (numbers > 0).any():
        return None, []
    j = int(annotation[0])
    i = int(rows[np.flatnonzero(stray[:, j])[0]])
    one = annotation.size == 1
    cells = ", ".join(str(k + 2) for k in annotation[:4]) + (", ..." if annotation.size > 4 else "")
    keep = f" (keep column 1 and columns {annotation.size + 2} on)" \
        if annotation.tolist() == list(range(annotation.size)) else ""
    named = [(sample_ids[k], k + 2, [str(v) for v in block[:, k] if isinstance(v, str)]) for k in annotation]
    return (f"{source}: column{'' if one else 's'} {quoted([sample_ids[k] for k in annotation], 4)} (header "
            f"cell{'' if one else 's'} {cells}) hold{'s' if one else ''} text, not a sample's numbers (e.g. "
            f"{str(text_values[i, j])!r} for {text_names[i]!r}); with --features-in-rows the first column names the "
            f"features and every other column is one sample: remove such annotation columns first{keep} — or, if "
            "the table is samples x features, leave out --features-in-rows"), named
