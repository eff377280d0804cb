"""How many rows each step of prediction holds: the bounds on its temporaries."""

from __future__ import annotations

DEFAULT_CHUNKSIZE = 10_000  # rows per step of `shift_report` on an in-memory array
STAT_ROWS = 2048  # rows preprocessed (and summed for the shift check) per step: bounds the temporaries
STAT_BYTES = 16 << 20  # and at most this much of float64 values per step (wide tables: fewer rows)
