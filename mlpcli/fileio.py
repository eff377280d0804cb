"""Writing output files so that a failure never leaves half a file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["atomic_write", "write_text_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write(fileobj)`` to a temporary file beside ``path``, then rename it into
    place; on any error (or Ctrl-C) the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_frame_atomic(frame, path: str) -> None:
    """A DataFrame as csv (tab-separated for .tsv/.txt), compressed by a .gz/.bz2/.xz suffix;
    written to a temporary file and renamed, so a failed run leaves no partial file."""
    import io
    from pathlib import Path

    suffixes = [s.lower() for s in Path(path).suffixes]
    compression = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}.get(suffixes[-1] if suffixes else "", None)
    base = suffixes[-2] if compression and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    sep = "\t" if base in (".tsv", ".txt") else ","
    buf = io.BytesIO()
    frame.to_csv(buf, sep=sep, index=False, compression=compression, float_format="%.6g")
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))
