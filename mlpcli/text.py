"""Names from the data as messages write them: lists of quoted names that stay on one line however many there
are, names with counts, a name that would break a line, and the natural order of names (B2 before B10); and a
count with its noun ("1 cell", "2,000 genes") and a verb agreeing with it ("1 group appears")."""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence


def quoted(names: Iterable[Any], limit: int = 5) -> str:
    """"'a', 'b', 'c' and 4 more" — keeps messages one line however many names there are."""
    names = list(names)
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    rest = len(names) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def count_of(n: int, noun: str, plural: str | None = None) -> str:
    """"1 cell", "2,000 cells": a count with a thousands separator and its noun, singular for 1 (``plural``: the
    noun's plural where it is not noun + "s", e.g. "classes")."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def agreeing(n: int, singular: str, plural: str) -> str:
    """The word agreeing with a count ``n``, as ``count_of`` chooses the noun: ``singular`` for 1, else ``plural``
    (f"{count_of(n, 'group')} {agreeing(n, 'appears', 'appear')}": "1 group appears", "2 groups appear")."""
    return singular if n == 1 else plural


def counted(pairs: Sequence[tuple[Any, int]], limit: int = 5) -> str:
    """"'g1' (3), 'g2' (1) and 8 more" from (name, count) pairs."""
    shown = ", ".join(f"{str(name)!r} ({count})" for name, count in pairs[:limit])
    rest = len(pairs) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def named_pairs(text: str) -> list[str]:
    """The comma-separated items of an option's NAME=VALUE list ('A=1,B=3'), a name holding a comma written in
    double quotes ('"Stage I, early"=2', as a CSV field: "" for a quote inside); spaces after a comma are dropped,
    the rest of each item kept as written (its caller strips what it compares stripped), an empty item too (a
    trailing comma: the caller says whether that is an error)."""
    import csv

    rows = list(csv.reader([str(text)], skipinitialspace=True))
    return rows[0] if rows else []


def written_name(text: str, names: Sequence[str]) -> int | None:
    """The index of the name in ``names`` that ``text``, written in an option, means: as written, else without the
    spaces around it when exactly one name matches so ('b' or ' b' for a class '  b ', which Excel leaves in
    labels); None for none."""
    if text in names:
        return list(names).index(text)
    bare = text.strip()
    hits = [i for i, n in enumerate(names) if str(n).strip() == bare]
    return hits[0] if len(hits) == 1 else None


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
