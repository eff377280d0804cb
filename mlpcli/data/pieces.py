"""A table read in pieces: how big a piece is (``PieceSize``), the interface every streamed table offers
(``StreamedTable``), and reading one piece ahead of the caller (``read_ahead``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ..errors import DataError

if TYPE_CHECKING:  # the plan of a model's columns (predict) or of a training table's (``read_features``)
    from ..predict.columns import ColumnPlan


# Tables are read in pieces of this memory budget (predict's --chunk-mb), wide or long rows alike
DEFAULT_CHUNK_MB = 64
DEFAULT_CHUNK_BYTES = DEFAULT_CHUNK_MB << 20

END = object()  # "no more pieces"

# The memory a piece of text takes while it is parsed, per byte of text: the text, the tokenizer's masks,
# field offsets and the float64 values (measured: about 5x; pyarrow's CSV parser needs less).
_PARSE_FACTOR = 6

_MIN_PIECE_BYTES = 1 << 12  # a piece of text is at least 4 KiB (and at least one line)


@dataclass(frozen=True)
class PieceSize:
    """How a table is cut into pieces: `rows` rows per chunk when given (``--chunksize``), else by a
    memory budget of `nbytes` (``--chunk-mb``) for the table's data in flight, as text and as parsed
    values, whatever the width of the rows: a 50,000-column row is 300 KB of text, a 20-column one 200 B."""

    rows: int | None = None
    nbytes: int = DEFAULT_CHUNK_BYTES

    def frame_rows(self, n_columns: int) -> int:
        """Rows per piece of an in-memory or parquet table of `n_columns` columns (held about twice: as
        read, and as values on their way to the network)."""
        if self.rows is not None:
            return self.rows
        return max(1, self.nbytes // (2 * 8 * max(n_columns, 1)))

    def text_bytes(self, workers: int) -> int:
        """Bytes of text per piece when `workers` pieces are parsed side by side."""
        return max(_MIN_PIECE_BYTES, self.nbytes // (workers * _PARSE_FACTOR))


class StreamedTable(ABC):
    """A table whose header is known and whose rows come in pieces (see PieceSize).

    `pieces(size, plan, convert)` yields `convert(parsed, first_row)` for each piece in order, where parsed
    (a DataFrame, a pyarrow Table or TextPiece for text input) holds the plan's columns and first_row is the
    0-based index of its first row; conversion runs in the reading threads where there are any."""

    name: str
    columns: list[str]
    total_bytes: int | None = None
    reading_threads = 0  # threads that read and parse beside the caller's
    notes: tuple = ()  # how the table was read (a detected separator or decimal mark)
    row_names = False  # whether its first column is unnamed (R's write.csv row names, pandas' index), read as ids
    feature_columns: Sequence[str] = ()  # the columns known to be features (an .h5ad file's genes)

    @abstractmethod
    def pieces(self, size: PieceSize, plan: "ColumnPlan", convert: Callable) -> Iterator:
        """Yield ``convert(parsed, first_row)`` for each piece, in order."""

    @property
    def bytes_read(self) -> int | None:
        return None

    def first_cells(self, limit: int) -> list[str]:
        """Up to `limit` cells of the first column, from the head of the table, as text (for recognising a
        table in the other layout, ``columns._check_layout``); reading on afterwards is unaffected."""
        return []

    def check_feature_names(self, wanted: Sequence[str]) -> None:
        """Before the column plan: a DataError when most of the features ``wanted`` are named in a column of the
        table other than the one its layout reads them from (``feature_rows.raise_names_elsewhere``)."""

    def close(self) -> None:
        pass


def check_unique_columns(columns: Sequence[str], name: str) -> None:
    repeats = [(c, k) for c, k in Counter(columns).items() if k > 1 and c != ""]
    if repeats:
        listed = ", ".join(f"{c!r} (×{k})" for c, k in repeats[:5])
        raise DataError(f"duplicate column names in {name}: {listed}; rename or remove the repeated columns")


def read_ahead(read_one: Callable[[], Any]) -> Iterator:
    """The results of calling `read_one()` until it returns END, each next one computed in a background
    thread while the caller works on the current one (one ahead, no more: memory stays at two pieces)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlpcli-read")
    try:
        pending = pool.submit(read_one)
        while True:
            item = pending.result()  # an error in the reader surfaces here, in the caller's thread
            if item is END:
                return
            pending = pool.submit(read_one)
            yield item
            del item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
