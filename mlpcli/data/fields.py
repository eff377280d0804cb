"""Field counts of delimited text: every row of a table must have as many fields as its header.

A row with a field too many or too few would put its values under the wrong columns, and the CSV parsers
hide it: given the column names, pandas pads a short row with missing values and cuts or re-indexes a long
one. So every reader of text tables (training's ``TextTable``, prediction's streamed reader) checks the
count of every row with these helpers, which raise one message: the file, the line, the fields seen and
expected. Lines are the file's physical lines (the header is line 1); lines of nothing but whitespace are
blank lines, skipped, as pandas skips them.
"""

from __future__ import annotations

import csv
import io
from typing import BinaryIO

import numpy as np

from ..errors import DataError

_PIECE_BYTES = 1 << 24  # text checked at a time by `check_stream` (16 MiB: numpy's passes stay in cache-sized
# work per byte while the index arrays of one piece stay small)


def field_count_error(name: str, line: int, got: int, expected: int, last_empty: bool = False) -> DataError:
    """The one message for a row of the wrong width (`line`: the file's line, the header is line 1; `last_empty`:
    its last field is empty, as a separator at its end makes it)."""
    hint = "a field too many or too few would shift values into the wrong columns (a stray or missing separator?)"
    if got == expected + 1 and last_empty:
        hint = ("one field more than the header, an empty one at its end: a separator after the last value of the "
                "rows but not of the header? remove it (or add one to the header)")
    elif line == 2 and got == expected + 1:
        hint = ("one field more than the header: row names without a header cell, as R's write.table writes "
                "them? give the first column a name such as sample_id")
    return DataError(f"cannot read {name}: line {line} has {got} field{'s' * (got != 1)} but the header has "
                     f"{expected}; {hint}")


def not_utf8(name: str, where: str, byte: int | None = None) -> DataError:
    """The message for a text table ``name`` that is not UTF-8, whichever reader met it (train's whole-table
    reader, the streamed ones): its first bad ``byte`` and ``where`` it is ("on line 5001"; "at position 142475"
    where the line is not known). Two readers' own copies differed ("cannot parse x.csv as CSV: ..." beside
    "cannot parse x.csv: ...")."""
    said = where if byte is None else f"byte 0x{byte:02x} {where}"
    return DataError(f"cannot parse {name}: not UTF-8 text ({said}); save it as UTF-8")


def not_utf8_error(text, name: str, line: int) -> DataError:
    """The message for a piece of text (whole lines; its first is the file's line `line`) that is not UTF-8,
    naming the line of its first bad byte. A parser's UnicodeDecodeError counts from the start of the piece,
    or of its own internal buffer: "near line 2" was said of a bad byte on line 5,001."""
    data = bytes(text)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = line + data.count(b"\n", 0, exc.start)
        return not_utf8(name, f"on line {at}", data[exc.start])
    return not_utf8(name, f"near line {line}")


def locate_not_utf8(stream: BinaryIO, piece_bytes: int = _PIECE_BYTES) -> tuple[int, int, int] | None:
    """(the first byte of a binary text stream that is not UTF-8, its file line, its offset in the text), or
    None when all of it is UTF-8. For the message of a parser that met it, whose error counts from the start
    of its own buffer (pandas' read_csv: "position 142475" of a bad byte 1.45 MB into the file)."""
    line, offset, carry = 1, 0, b""
    while True:
        block = stream.read(piece_bytes)
        data = carry + block
        carry = b""
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if block and exc.end == len(data) and exc.reason == "unexpected end of data":
                data, carry = data[:exc.start], data[exc.start:]  # a character cut by the read: read on
            else:
                return data[exc.start], line + data.count(b"\n", 0, exc.start), offset + exc.start
        line += data.count(b"\n")
        offset += len(data)
        if not block:
            return None


def row_lines(buf: np.ndarray, ends: np.ndarray, counts: np.ndarray, width: int, name: str, line: int,
              empty_rows: bool = False, sep: str | None = None) -> np.ndarray:
    """Indices of the lines of a piece of text that are rows; a line of another number of fields than
    `width` is a DataError naming it, unless it is blank (nothing but whitespace: skipped).

    buf: the piece's bytes (uint8, ending with a line end); ends (L,): the byte index of each line's line
    end; counts (L,): the fields of each line; `line`: the file's line number of the piece's first line.
    `empty_rows`: lines of separators without a value are rows (a sample sheet skips them with a note), not an
    error (``_refuse_separator_lines``). `sep`: the separator, to tell a row ending in one (an empty last field)."""
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    empty = (ends == starts) | ((ends == starts + 1) & (buf[ends - 1] == 13))
    if not empty_rows:
        _refuse_separator_lines(buf, starts, ends, counts, width, name, line)
    suspect = np.flatnonzero((counts != width) | empty)
    if not suspect.size:
        return np.arange(len(ends))
    blank = []
    for k in suspect.tolist():
        if not bytes(buf[starts[k]:ends[k]]).strip():
            blank.append(k)
        elif counts[k] != width:
            row = bytes(buf[starts[k]:ends[k]]).rstrip(b"\r\n").rstrip(b'"')
            raise field_count_error(name, line + k, int(counts[k]), width, sep is not None and row.endswith(sep.encode()))
    return np.delete(np.arange(len(ends)), blank)


# The bytes of a line that hold no value: separators, spaces, tabs, quotes, a carriage return and the line end
_FILLER = np.zeros(256, dtype=bool)
_FILLER[[9, 10, 13, 32, 34, 44, 59, 124]] = True


def _refuse_separator_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, counts: np.ndarray, width: int,
                            name: str, line: int) -> None:
    """A DataError naming the first line of a piece (its lines' byte ``starts`` and ``ends``, field ``counts``) that
    holds every field but no value (",,,,": spreadsheets write such rows below a table): read as a sample, it failed
    later as "the id column is empty at row 121" or "the target has missing values", whose remedies did not fit.
    Looked at only when some line is short enough to be one (three bytes a field at most: `"",`), so a table of
    values costs nothing."""
    if width < 2 or not np.any((counts == width) & (ends - starts <= 3 * width)):
        return
    values = np.add.reduceat(~_FILLER[buf], starts, dtype=np.int64)  # (L,) each line's bytes to its line end
    hollow = np.flatnonzero((values == 0) & (counts == width))
    if hollow.size:
        k = int(hollow[0])
        more = f" ({hollow.size} such lines in this part of the file)" if hollow.size > 1 else ""
        raise DataError(f"{name}: line {line + k} holds separators but no value{more} — an empty row, as spreadsheets "
                        "write below a table; delete such lines")


def simple_quotes(buf: np.ndarray, pos: np.ndarray) -> np.ndarray | None:
    """Positions of the quotes when every quote opens or closes a field that is quoted whole and holds no
    other quote (`"S1",1.5`: the fields split at separators are then the CSV fields); else None.
    pos: the index of every separator and line end of `buf`, in order."""
    q = np.flatnonzero(buf == 34)
    field = np.searchsorted(pos, q)  # the field each quote is in: pos[field] is the separator after it
    start = np.where(field > 0, pos[field - 1] + 1, 0)
    end = pos[field]
    last = end - 1 - ((buf[end] == 10) & (buf[end - 1] == 13))  # a carriage return before a line end is dropped
    opens, closes = q == start, q == last
    if not (opens ^ closes).all() or not np.array_equal(field[opens], field[closes]):
        return None
    return q


def check_quoted(text, sep: str, width: int, name: str, line: int, empty_rows: bool = False) -> None:
    """The field counts of a piece of text read with the csv module, which follows the quoting rules of
    pandas and pyarrow (a separator or line end inside quotes is part of the field)."""
    start = 0  # lines before the current record
    try:
        reader = csv.reader(io.StringIO(str(text, "utf-8"), newline=""), delimiter=sep)
        for fields in reader:
            if len(fields) != width and not _blank_record(fields, sep):
                raise field_count_error(name, line + start, len(fields), width, not fields[-1])
            if not empty_rows and width > 1 and len(fields) == width and not any(f.strip() for f in fields):
                raise DataError(f"{name}: line {line + start + 1} holds separators but no value — an empty row, as "
                                "spreadsheets write below a table; delete such lines")
            start = reader.line_num
    except UnicodeDecodeError:
        raise not_utf8_error(text, name, line) from None  # the bad byte's own line, not the piece's first
    except csv.Error as exc:
        raise DataError(f"cannot parse {name} near line {line + start}: {str(exc).strip()[:160]}") from None


def check_quotes_closed(text, sep: str, name: str, line: int) -> None:
    """A DataError when the last piece of a file (text; its first line is the file's line `line`) ends inside
    a quoted field: a stray opening quote. pyarrow's parser (with line ends allowed in quoted fields) accepts
    it and reads the rest of the file as that one field, so every later row would be lost without a word;
    pandas refuses it ("EOF inside string"). The csv module's strict mode tells that case apart from a quote
    inside a field (`5" tall`), which is text, as pandas and pyarrow read it."""
    start = 0
    reader = csv.reader(io.StringIO(str(text, "utf-8", "replace"), newline=""), delimiter=sep, strict=True)
    try:
        for _ in reader:
            start = reader.line_num
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise DataError(f"cannot parse {name}: the quoted field opened on line {line + start} is never closed (a "
                            "stray '\"' there makes every later line part of it); remove or close the quote") from None
        # other strict-mode complaints (text after a closing quote) are not what pandas and pyarrow refuse


def _blank_record(fields: list[str], sep: str) -> bool:
    """A line of nothing but whitespace (the separator included when it is a tab): pandas skips it."""
    return not fields or ((len(fields) == 1 or sep.isspace()) and not "".join(fields).strip())


def check_no_nul(text, sep: str, name: str, line: int, columns=None) -> None:
    """A DataError naming the line and column of the first NUL byte (0x00) in a piece of whole lines (bytes, a
    bytearray or a memoryview of one from its start; its first line is the file's line `line`). A text table has
    none, and the parsers read one as the end of its cell: '-0\\x00535' was read as -0.0 and a label 'A\\x00X' as
    'A' by one reader, whole by another (a file cut and pasted from a binary one, or a disk or transfer error)."""
    data = text.obj if isinstance(text, memoryview) else text
    at = data.find(b"\x00", 0, len(text))
    if at < 0:
        return
    start = data.rfind(b"\n", 0, at) + 1
    field = data.count(sep.encode(), start, at)
    where = f"column {columns[field]!r}" if columns is not None and field < len(columns) else f"field {field + 1}"
    at_line = line + data.count(b"\n", 0, at)
    raise DataError(f"{name}: line {at_line}, {where} holds a NUL byte (0x00), which no text "
                    "table has: the file is damaged or not a text table; remove the byte or export the table again")


def check_header_no_nul(cells, name: str) -> None:
    """``check_no_nul`` for the header line (its cells, as read): a NUL byte there became part of a feature's name
    (a model stored 'g\\x003' without a word)."""
    for j, cell in enumerate(cells):
        if "\x00" in str(cell):
            raise DataError(f"{name}: line 1, the header's field {j + 1} ({str(cell)!r}) holds a NUL byte (0x00), which "
                            "no text table has: the file is damaged or not a text table; remove the byte or export the "
                            "table again")


def check_piece(text, sep: str, width: int, name: str, line: int, columns=None, empty_rows: bool = False) -> int:
    """Check the field count of every line of a piece of whole lines (its first line is the file's line
    `line`); returns the number of line ends in it.

    Without quotes the fields of a line are its separators plus one, counted with numpy (a few passes over
    the bytes); quotes that only wrap whole fields do not change that count, other quoting (a separator or
    line end inside quotes) is read with the csv module."""
    check_no_nul(text, sep, name, line, columns)
    buf = np.frombuffer(text, dtype=np.uint8)
    if not buf.size:
        return 0
    last_open = buf[-1] != 10
    if last_open:  # the last line of the input without a line end
        buf = np.append(buf, np.uint8(10))
    code = ord(sep)
    if not (buf == 34).any():
        ends = np.flatnonzero(buf == 10)  # (L,)
        seps = np.flatnonzero(buf == code)  # (S,)
        counts = np.diff(np.searchsorted(seps, ends), prepend=0) + 1  # separators before each line end, per line
        row_lines(buf, ends, counts, width, name, line, empty_rows, sep)
        return len(ends) - last_open
    n_ends = int(np.count_nonzero(buf == 10)) - last_open
    pos = np.flatnonzero((buf == code) | (buf == 10))
    if simple_quotes(buf, pos) is None:
        check_quoted(text, sep, width, name, line, empty_rows)
        return n_ends
    line_ends = np.flatnonzero(buf[pos] == 10)
    row_lines(buf, pos[line_ends], np.diff(line_ends, prepend=-1), width, name, line, empty_rows, sep)
    return n_ends


def check_stream(stream: BinaryIO, sep: str, width: int, name: str, piece_bytes: int = _PIECE_BYTES,
                 columns=None, empty_rows: bool = False) -> None:
    """Check that every row after the header line of a binary (decompressed) text stream has `width`
    fields. Read into one reused buffer in pieces of whole lines (a piece never ends inside a quoted
    field), so memory stays at about a piece however long the table."""
    header = stream.readline()  # line 1, and more should a quoted header cell hold a line end
    line = 2
    while header.count(b'"') % 2:
        more = stream.readline()
        if not more:
            return
        header += more
        line += 1
    read_bytes = min(piece_bytes, 1 << 16)  # reads grow to piece_bytes: a small table costs a small buffer
    buffer = bytearray(2 * read_bytes)
    fill = 0  # buffer[:fill] is text read and not yet checked
    scanned, odd = 0, False  # whether the quotes in buffer[:scanned] leave a quoted field open
    while True:
        if len(buffer) - fill < read_bytes:  # room for the next read (a line longer than a piece included)
            buffer.extend(bytes(max(read_bytes, len(buffer) // 2)))
        with memoryview(buffer) as view:
            k = stream.readinto(view[fill:fill + read_bytes])
        read_bytes = min(piece_bytes, 2 * read_bytes)
        fill += k
        if not fill:
            return
        cut = fill
        if k:  # cut after the last line end, unless a quoted field is open there
            cut = buffer.rfind(b"\n", 0, fill) + 1
            if cut > scanned:
                if buffer.find(b'"', scanned, cut) >= 0:
                    odd ^= buffer.count(b'"', scanned, cut) % 2 == 1
                scanned = cut
            if cut == 0 or odd:  # no whole line yet, or inside a quoted field: read on
                continue
        with memoryview(buffer) as view:
            line += check_piece(view[:cut], sep, width, name, line, columns, empty_rows)
        if not k:
            return
        buffer[:fill - cut] = buffer[cut:fill]  # the unfinished last line to the front (less than a line)
        fill -= cut
        scanned = 0
