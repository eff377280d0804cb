"""Names from the data as messages write them: lists of quoted names that stay on one line however many there
are, names with counts, a name that would break a line, and the natural order of names (B2 before B10)."""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence


def quoted(names: Iterable[Any], limit: int = 5) -> str:
    """"'a', 'b', 'c' and 4 more" — keeps messages one line however many names there are."""
    names = list(names)
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    rest = len(names) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def counted(pairs: Sequence[tuple[Any, int]], limit: int = 5) -> str:
    """"'g1' (3), 'g2' (1) and 8 more" from (name, count) pairs."""
    shown = ", ".join(f"{str(name)!r} ({count})" for name, count in pairs[:limit])
    rest = len(pairs) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def one_line_name(name: Any) -> str:
    """A name as written when it prints on one line, else quoted with its escapes ('G3\\nrep2'): a feature named
    over two lines in a spreadsheet must not break a summary's row."""
    text = str(name)
    return text if text.isprintable() else repr(text)


# ── small helpers ────────────────────────────────────────────────────────────────────────────────────────


def natural_key(value) -> list:
    """Sort key of a group value putting B2 before B10 (and 2.0 before 10.0): its text split into digit runs,
    compared as numbers, and the rest."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(value))]
