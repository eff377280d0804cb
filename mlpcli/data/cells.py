"""Cells as tables write them: values that are not numbers (and where they are), thousands separators and decimal
marks, one number written two ways, spellings that differ only in case, spaces or Unicode form, text columns typed as
written, and pandas' text dtypes and options across its versions."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .conventions import JOINED_ATTR, SOURCE_ATTR


# ── cells that are not numbers ───────────────────────────────────────────────────────────────────────────


def non_number_cells(values: pd.Series, decimal: str = ".") -> np.ndarray:
    """(n,) bool: the cells of a column that are present but not numbers written with `decimal` as the
    decimal mark (as the text parsers read them: under decimal commas "0,5" is a number and "0.5" not)."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return np.zeros(len(values), dtype=bool)
    present = values.notna().to_numpy()
    cells = values.astype(object).where(present, None)
    if decimal == ",":
        text = cells.map(lambda v: v if v is None or not isinstance(v, str) else
                         ("\x00" if "." in v else v.replace(",", ".")))  # a dot is not a number's
        parsed = pd.to_numeric(text, errors="coerce")
    else:
        parsed = pd.to_numeric(cells, errors="coerce")
    return present & parsed.isna().to_numpy()


def first_non_number(frame: pd.DataFrame, columns: Sequence[str], decimal: str = "."
                     ) -> tuple[int, int, Any, int] | None:
    """The first cell of `columns` (row order, then column order) that is present but not a number:
    (row index, index in `columns`, the value, how many such cells the column has), or None."""
    best = None
    for j, col in enumerate(columns):
        bad = np.flatnonzero(non_number_cells(frame[col], decimal))
        if bad.size and (best is None or bad[0] < best[0]):
            best = (int(bad[0]), j, frame[col].iloc[bad[0]], int(bad.size))
    return best


# A number written with thousands separators (1,798 or 12,345,678: a first group of 1-3 digits, no leading zero,
# then groups of three), and the same with a decimal part (8,000.0)
THOUSANDS_NUMBER = re.compile(r"\s*[-+]?[1-9]\d{0,2}(,\d{3})+\s*")
THOUSANDS_DECIMAL = re.compile(r"\s*[-+]?[1-9]\d{0,2}(,\d{3})+\.\d*\s*")
# the same with dots as separators (1.486, as German or French number formats write 1486)
THOUSANDS_DOT_NUMBER = re.compile(r"\s*[-+]?[1-9]\d{0,2}(\.\d{3})+\s*")


def decimal_advice(value: Any, decimal: str, text_table: bool = True) -> str:
    """"; the table is read with decimal commas: write it '0,5'" for a cell written with the other mark.
    ``text_table`` False: the cell is text stored in a file of typed columns (parquet) or a DataFrame, whose numbers
    no reading option (--decimal, --sep) changes: the advice is to store it as a number."""
    text = str(value).strip()
    if not text_table:
        if THOUSANDS_NUMBER.fullmatch(text):
            return (f"; it is stored as text: store it as a number, {text.replace(',', '')} if the comma separates "
                    f"thousands, {text.replace(',', '.')} if it is a decimal mark")
        other = text.replace(",", ".")
        if other == text:
            return ""
        try:
            float(other)
        except ValueError:
            return ""
        return f"; it is stored as text, with a decimal comma: store it as the number {other}"
    if decimal == "." and THOUSANDS_NUMBER.fullmatch(text):  # 1,798: a thousands separator?
        return (f"; if the comma separates thousands, write it {text.replace(',', '')!r} (separators are not read); "
                "if it is a decimal mark, pass --decimal comma and --sep")
    if decimal == "," and THOUSANDS_DOT_NUMBER.fullmatch(text):  # 1.486 among decimal commas: 1486, not 1,486
        return (f"; if the dot separates thousands, write it {text.replace('.', '')!r} (separators are not read); "
                f"if it is a decimal mark, write it {text.replace('.', ',')!r} as the table's other numbers")
    other = text.replace(".", ",") if decimal == "," else text.replace(",", ".")
    if other == text:
        return ""
    try:
        float(other.replace(",", "."))
    except ValueError:
        return ""
    if decimal == ",":
        return f"; the table is read with decimal commas (--decimal), so write it {other!r}"
    return f"; the table is read with decimal points, so write it {other!r} (or pass --decimal comma and --sep)"


def unspaced(text: str) -> str:
    """A label or id without its spelling's accidents but letter case: accents composed (NFC: a decomposed é as
    the composed one), runs of spaces — a non-breaking one too — as one space, stripped. Not NFKC, which would
    also read a footnote's ² as 2 and a ligature as its letters."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def spelling_key(text: str) -> str:
    """The form two spellings of one label or id share: ``unspaced``, case-folded."""
    return unspaced(text).casefold()


def visible(text: str) -> str:
    """A label or id quoted so that two spellings of it look different: with escapes (ascii) when it holds a
    decomposed accent or a space other than the plain one, else as repr quotes it."""
    if unicodedata.normalize("NFC", text) != text or any(c.isspace() and c != " " for c in text):
        return ascii(text)
    return repr(text)


# how values with one spelling_key may differ, for the warnings that name them
SPELLING_WORDS = "letter case, spaces or Unicode form (an accent composed or not, a non-breaking space)"


# ── label columns read as text ───────────────────────────────────────────────────────────────────────────

_BOOL_TEXT = {"true": True, "false": False}
_INTEGER_TEXT = r"[+-]?\d+"
_LEADING_ZERO_INTEGER = r"[+-]?0\d+"


def one_number_groups(values: Iterable, decimal: str = ".") -> list[list[str]]:
    """The distinct text values that read as one number ('1', '01', '1.0', '+1'; with ``decimal`` "," the table's
    decimal mark, '1,0' too), in groups."""
    by_value: dict[float, list[str]] = {}
    for value in values:
        if isinstance(value, str) and "_" not in value:  # (float() reads 1_0 as 10)
            text = value.strip()
            if decimal == "," and "." not in text and text.count(",") == 1:
                text = text.replace(",", ".")
            try:
                number = float(text)
            except ValueError:
                continue
            if math.isfinite(number):
                by_value.setdefault(number, []).append(value)
    return [group for group in by_value.values() if len(group) > 1]


def typed_as_written(text: pd.Series, decimal: str | None = None) -> pd.Series:
    """A column read as text (missing cells NaN) typed as pandas would type it (integers, numbers, booleans),
    except that a column holding an integer written with leading zeros (``01``, ``007``) keeps its text: the
    labels 1 and 01 stay two classes (beside 1.0 too, which would otherwise make all three the number 1) and 007
    stays 007. Integers are read exactly (beyond 2**53 too; beyond int64 they stay text), other numbers correctly
    rounded (pyarrow's parser), so 48 and 48.0 in one regression target are both numbers. ``decimal``: the table's decimal mark (``,``: 0,5 is a number)."""
    present = text.notna().to_numpy()
    cells = text[present].astype(str).str.strip()
    if not len(cells):
        return text
    lowered = cells.str.lower()
    if lowered.isin(list(_BOOL_TEXT)).all():
        if present.all():
            return lowered.map(_BOOL_TEXT).astype(bool).reindex(text.index)
        return text  # pandas keeps booleans with gaps as objects too
    if cells.str.fullmatch(_LEADING_ZERO_INTEGER).any():
        return text  # leading zeros (007, 01): the text is the label, also beside 1.0 (which would merge 01 and 1)
    if cells.str.fullmatch(_INTEGER_TEXT).all():
        integers = [int(c) for c in cells]
        if not all(-(2 ** 63) <= v < 2 ** 63 for v in integers):
            return text  # beyond int64: exact as text, not rounded into a float
        if present.all():
            return pd.Series(np.array(integers, dtype=np.int64), index=text.index)
        values = np.array(integers, dtype=np.float64)  # with gaps: float64, as pandas reads them
    else:
        values = parse_numbers(cells.str.replace(",", ".", regex=False) if decimal == "," else cells)
        if values is None:  # some cell is not a number: text, as pandas leaves it
            return text
    out = pd.Series(np.nan, index=text.index)
    out[present] = values
    return out


# pandas keywords that pandas 3 deprecates (Pandas4Warning) where it no longer needs them: ``copy=False`` (copy on
# write: nothing is copied anyway) and the round-trip float parser (its default parser rounds correctly); pandas 2
# copies, or rounds a digit off, without them
PANDAS_MAJOR = int(pd.__version__.split(".")[0])
NO_COPY = {"copy": False} if PANDAS_MAJOR < 3 else {}
ROUND_TRIP = {"float_precision": "round_trip"} if PANDAS_MAJOR < 3 else {}


def is_text_dtype(dtype) -> bool:
    """A column of text as pandas holds it: object (pandas 2, or a Python-built frame) or the string dtype
    (pandas 3's default for text, ``str``)."""
    return dtype == object or isinstance(dtype, pd.StringDtype)


def parse_numbers(cells: pd.Series) -> np.ndarray | None:
    """(n,) float64 of text cells, correctly rounded (pyarrow's parser, the one the streamed readers use for
    every number), or None when a cell is not a number."""
    import pyarrow as pa

    try:
        return pa.array(cells.to_numpy(dtype=object), type=pa.string()).cast(pa.float64()).to_numpy(
            zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


class CellPlace:
    """Where a cell of a table is, for messages: the file (the reader's SOURCE_ATTR) and the 1-based row with
    its sample id; without the file (a table joined to a sample sheet: its rows are not the file's) the sample
    id alone when there is one. A cell of `column`, joined from a sample sheet (``JOINED_ATTR``), is the
    sheet's: named by the sheet and its sample id."""

    def __init__(self, df: pd.DataFrame, id_column: str | None = None, column: str | None = None):
        sheet = df.attrs.get(JOINED_ATTR, {}).get(column) if column is not None else None
        name = sheet if sheet is not None else df.attrs.get(SOURCE_ATTR)  # the sheet as messages name it
        self.source = f"{name}: " if name else ""
        self.joined = sheet is not None
        self.file_rows = sheet is None and bool(name)  # rows numbered as the file's
        self.ids = df[id_column] if id_column is not None and id_column in df.columns else None

    def row(self, i: int) -> str:
        if self.ids is None:
            return f"row {i + 1}"
        sample = repr(str(self.ids.iloc[i]))
        return f"row {i + 1} (id {sample})" if self.file_rows else f"sample {sample}"


def first_row(df: pd.DataFrame, mask: np.ndarray, id_column: str | None, place: "CellPlace") -> str:
    """Where the first row of `mask` (n,) is, "the first is row 4 (id 'GSM1003')", with the id from
    `id_column` when the frame has it; "the first is the sample with id 'GSM1003'" when `place` is a sample
    sheet's (the frame's rows are not the sheet's)."""
    i = int(np.flatnonzero(mask)[0])
    has_id = id_column is not None and id_column in df.columns and pd.notna(df[id_column].iloc[i])
    if place.joined and has_id:
        return f"the first is the sample with id {str(df[id_column].iloc[i])!r}"
    return f"the first is row {i + 1}" + (f" (id {str(df[id_column].iloc[i])!r})" if has_id else "")


def near_spellings(values: Iterable) -> list[list[str]]:
    """The distinct text values that differ only in letter case, spaces or Unicode form (``spelling_key``), in
    groups ([['case', 'case '], ['Grade 1', 'Grade\xa01'], ...])."""
    by_key: dict[str, list] = {}
    for value in values:
        if isinstance(value, str):
            by_key.setdefault(spelling_key(value), []).append(value)
    return [group for group in by_key.values() if len(group) > 1]
