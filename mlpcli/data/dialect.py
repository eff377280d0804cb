"""How a text table is written: its separator and decimal mark, sniffed from its head, and its header line."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, DataError
from .cells import THOUSANDS_DOT_NUMBER, THOUSANDS_NUMBER
from .sources import Source, open_binary


SEPARATORS = (",", "\t", ";", "|")  # the ones detected, in order of preference
_SEP_WORDS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
SNIFF_BYTES = 1 << 20  # the head of a file that separators and decimal marks are judged on
_MAX_HEAD_BYTES = 64 << 20  # a header line longer than this is not sniffed (the file name decides)
COMMA_NUMBER = re.compile(r"\s*[-+]?(\d+,\d*|,\d+)([eE][-+]?\d+)?\s*")
_DOT_NUMBER = re.compile(r"\s*[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?\s*")
# A plain whole number: beside numbers with thousands separators (``THOUSANDS_NUMBER``) in one column, all below
# 1,000, it says the table was written with separators, not decimal commas (``looks_like_thousands``)
_WHOLE_NUMBER = re.compile(r"\s*[-+]?\d+\s*")


def separator_char(value: str | None) -> str | None:
    """The separator an option value means ("tab" -> a tab, "semicolon" -> ";"); None for auto."""
    if value is None or value == "auto":
        return None
    char = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(value, value)
    if char not in SEPARATORS:
        raise ConfigError(f"--sep {value!r}: use one of comma, tab, semicolon, pipe (or , ; |) or auto")
    return char


def decimal_char(value: str | None) -> str | None:
    """The decimal mark an option value means; None for auto."""
    if value is None or value == "auto":
        return None
    char = {"dot": ".", "point": ".", "comma": ","}.get(value, value)
    if char not in (".", ","):
        raise ConfigError(f"--decimal {value!r}: use dot or comma (or . ,) or auto")
    return char


def _sep_name(sep: str) -> str:
    return f"{_SEP_WORDS[sep]} ({sep!r})" if sep != "\t" else "tab"


@dataclass(frozen=True)
class Dialect:
    """How a text table is split and its numbers written, with notes on what was detected."""

    sep: str
    decimal: str = "."
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # a reading that may be the wrong one (said even under -q)


def sniff_dialect(head: str, complete: bool, source: str, default_sep: str | None, sep: str | None = None,
                  decimal: str | None = None, suffix: str = "") -> Dialect:
    """The separator and decimal mark of a text table from its first lines.

    head: the text from the start of the file, cut at a line end (`complete`: the whole file).
    default_sep: the file name's separator (None for standard input: tab when the first line has more tabs
    than commas, else comma). `sep`/`decimal` given (not None/"auto") win; otherwise the file name's
    separator is kept when the header splits on it into several fields and every first row into as many;
    if not, the separator among , tab ; | on which they all split consistently (most fields first), with a
    note. Under a separator other than the comma, numbers written like 0,123 (more of them than like
    0.123) mean decimal commas, with a note; pandas and pyarrow then read them as numbers.
    """
    given_sep, given_decimal = separator_char(sep), decimal_char(decimal)
    if given_sep == given_decimal == ",":
        raise ConfigError("--decimal comma: comma is the field separator too (--sep comma); pass another --sep")
    records = head_records(head, complete)
    if default_sep is None:
        first = head.split("\n", 1)[0]
        default_sep = "\t" if first.count("\t") > first.count(",") else ","
    # (header fields, rows consistent?) per separator, each split only when asked: the file name's separator
    # is usually all it takes (the four splits of a 2,000-column head took 0.09 s)
    shapes = _LazyShapes(records)
    notes: list[str] = []
    warnings: list[str] = []
    if given_sep is not None:
        chosen = given_sep
        splits = [c for c in SEPARATORS if shapes[c][0] > 1]
        if shapes[chosen][0] == 1 and splits:
            raise DataError(f"{source}: --sep {_sep_name(chosen)} reads its header as a single column, but it splits "
                            f"on {_sep_name(splits[0])}; pass --sep {'tab' if splits[0] == chr(9) else splits[0]!r} "
                            "or leave --sep out")
    elif shapes[default_sep][0] > 1 and shapes[default_sep][1]:
        chosen = default_sep
    else:
        consistent = [c for c in SEPARATORS if c != default_sep and shapes[c][0] > 1 and shapes[c][1]]
        several = [c for c in SEPARATORS if c != default_sep and shapes[c][0] > 1]
        pool = consistent or (several if shapes[default_sep][0] == 1 else [])
        chosen = max(pool, key=lambda c: shapes[c][0]) if pool else default_sep
        if chosen != default_sep:
            named = f"as its {suffix} name says" if suffix else "(the usual default)"
            notes.append(f"{source}: read as {_sep_name(chosen)}-separated: its header and first rows split on "
                         f"that, not on {_sep_name(default_sep)} {named}; --sep to choose")
    if given_decimal is not None:
        chosen_decimal = given_decimal
    elif chosen == ",":
        chosen_decimal = "."
        _refuse_thousands_dots([split_line(r, chosen) for r in records[1:]], source)
    else:
        rows = [split_line(r, chosen) for r in records[1:]]
        cells = [cell for row in rows for cell in row]
        commas = [c for c in cells if "," in c and COMMA_NUMBER.fullmatch(c)]
        # (counted only to outnumber the commas: none, and the dots win whatever their count)
        dots = sum(1 for c in cells if "." in c and _DOT_NUMBER.fullmatch(c)) if commas else 0
        # the mark most numbers are written with: one "0.5" among "0,3" cells is that cell's error (named
        # when it is read), not a reason to read every other number as text
        comma = commas[0] if commas else None
        chosen_decimal = "," if len(commas) > dots else "."
        if chosen_decimal == "," and looks_like_thousands(commas, rows):
            raise DataError(f"{source}: numbers such as {comma.strip()!r} look written with thousands separators "
                            "(every number with a comma has groups of three digits, and a column mixes them with "
                            "whole numbers below 1,000 written without one), which are not read: write the numbers "
                            "without them — or, if the commas are decimal marks, pass --decimal comma")
        if chosen_decimal == ".":
            _refuse_thousands_dots(rows, source)
        if chosen_decimal == ",":
            either = all(THOUSANDS_NUMBER.fullmatch(c) for c in commas)  # 95,823 alone: separators, or 3 decimals?
            # the ambiguous reading is a warning: whole counts with separators read as decimals are divided by
            # 1,000, and a note is hidden by -q
            (warnings if either else notes).append(
                f"{source}: numbers read with decimal commas ({comma.strip()!r} is {comma.strip().replace(',', '.')}"
                + (f", not {comma.strip().replace(',', '')} with a thousands separator: every number with a comma "
                   "has groups of three digits; if they are separators, write the numbers without them" if either
                   else "") + "); --decimal . to read them otherwise")
    if chosen_decimal == chosen:
        raise ConfigError(f"--decimal comma: comma is also the field separator of {source}; pass --sep too "
                          "(e.g. --sep semicolon --decimal comma)")
    return Dialect(chosen, chosen_decimal, tuple(notes), tuple(warnings))


def _refuse_thousands_dots(rows: list[list[str]], source: str) -> None:
    """A DataError when the numbers written with a dot look like thousands separated by dots (1.486 for 1486, as
    German and French number formats write them), by the rule ``looks_like_thousands`` gives commas: read with
    decimal points they would be 1.486, a thousand times too small, without a word."""
    dots = []
    for row in rows:
        for c in row:
            if "." in c and _DOT_NUMBER.fullmatch(c):
                if not THOUSANDS_DOT_NUMBER.fullmatch(c):
                    return  # a number that is no thousands form: decimals (what looks_like_thousands would say)
                dots.append(c)
    if looks_like_thousands(dots, rows, THOUSANDS_DOT_NUMBER):
        first = dots[0].strip()
        raise DataError(f"{source}: numbers such as {first!r} look written with dots as thousands separators "
                        f"({first.replace('.', '')}: every number with a dot has groups of three digits, and a column "
                        "mixes them with whole numbers below 1,000 written without one), which would be read as "
                        f"decimals ({first}): write the numbers without separators — or, if the dots are decimal "
                        "marks, pass --decimal dot")


def looks_like_thousands(commas: list[str], rows: list[list[str]], form: re.Pattern = THOUSANDS_NUMBER) -> bool:
    """Whether numbers written with a comma (`commas`, among the cells of a table's `rows`) are thousands separators
    rather than decimal commas: every one in the thousands form (``THOUSANDS_NUMBER``), and at least one column
    mixing them with whole numbers written without a comma, all below 1,000 (619 beside 1,798), as a number format
    with separators writes a column. Decimal commas rounded to three places do not mix so: Excel's fixed format
    writes 5,000, R and pandas drop trailing zeros (5,12); a column of whole numbers alone (an age, an id) is
    not mixed."""
    if not commas or not all(form.fullmatch(c) for c in commas):
        return False
    width = max((len(r) for r in rows), default=0)
    for j in range(width):
        column = [r[j] for r in rows if j < len(r)]
        whole = [c for c in column if _WHOLE_NUMBER.fullmatch(c)]
        if whole and any(form.fullmatch(c) for c in column) and all(abs(int(c)) < 1000 for c in whole):
            return True
    return False


def head_records(head: str, complete: bool) -> list[str]:
    """The lines of `head` that are not blank; the last one dropped when the text was cut."""
    lines = head.splitlines()
    if not complete and lines:
        lines = lines[:-1] if len(lines) > 1 else lines
    return [line for line in lines if line.strip()]


@contextlib.contextmanager
def _fields_up_to(n: int):
    """Let the csv module read fields of up to ``n`` characters for the duration (its default limit, 128 KiB,
    is global): under a separator a line does not use, a wide table's whole header (20,000 genes: ~160 KiB)
    is one field."""
    limit = csv.field_size_limit()
    if n <= limit:
        yield
        return
    csv.field_size_limit(n)
    try:
        yield
    finally:
        csv.field_size_limit(limit)


class _LazyShapes(dict):
    """{separator: ``_split_shape`` of the records on it}, each computed when first looked up."""

    def __init__(self, records: list[str]):
        super().__init__()
        self.records = records

    def __missing__(self, sep: str) -> tuple[int, bool]:
        self[sep] = value = _split_shape(self.records, sep)
        return value


def split_line(line: str, sep: str) -> list[str]:
    with _fields_up_to(len(line)):
        return next(csv.reader([line], delimiter=sep), [])


def _split_shape(lines: list[str], sep: str) -> tuple[int, bool]:
    """(fields in the header, whether every other line has as many) when split on `sep`. Lines are split
    one by one: a quoted field spanning lines makes a row look ragged, which only costs detection."""
    if not lines:
        return 0, False
    n = len(split_line(lines[0], sep))
    return n, all(len(split_line(line, sep)) == n for line in lines[1:])


def head_text(src: Source) -> tuple[str, bool]:
    """The first lines of a text table (at least the header and the first row, about a MiB), decoded, and
    whether that is the whole file."""
    with open_binary(src.opener(), src.compression) as raw:
        parts, size, lines = [], 0, 0
        while True:
            block = raw.read(SNIFF_BYTES)
            if not block:
                complete = True
                break
            parts.append(block)
            size += len(block)
            lines += block.count(b"\n")
            if (size >= SNIFF_BYTES and lines >= 2) or size >= _MAX_HEAD_BYTES:
                complete = False
                break
    data = b"".join(parts)
    if not complete and b"\n" in data:
        data = data[:data.rindex(b"\n") + 1]  # whole lines (a line end never splits a UTF-8 character)
    return data.decode("utf-8-sig"), complete




def header_cells(src: Any, sep: str, compression: str | None) -> list[str]:
    """Cells of the first line of a path or binary buffer, decompressing as pandas would.

    Read with the csv module rather than pandas: a one-row read of a 60,000-column header costs pandas
    seconds, and pandas would rename repeated names.
    """
    with open_binary(src, compression) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        try:
            return next(csv.reader(text, delimiter=sep), [])
        finally:
            text.detach()
