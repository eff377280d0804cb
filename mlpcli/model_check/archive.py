"""A model file's archive: what a file that is no model is (by its first bytes), the two members and their
inflated sizes (a zip bomb refused from its headers), model.json parsed with its containers counted."""

from __future__ import annotations

import json
import os
import shlex
import stat
import zipfile
import zlib


from ..errors import ModelFileError
from .fields import ArraySpec
from .limits import (ENTRY_SLACK, FORMAT, MAX_JSON_BYTES, MAX_JSON_CONTAINERS, MAX_NPY_HEADER, MAX_RATIO,
                     MAX_STREAMED_BYTES, RATIO_FREE_BYTES, ZIP_SLACK)
from .words import mib, short_repr


ZIP_MAGIC = b"PK\x03\x04"  # a zip archive's first bytes (its first member's local header)


TRUNCATED = ("a zip archive that is truncated or damaged (an incomplete copy or download, or a disk that filled up "
              "while it was written)")


# What a file that is not a zip archive is, from its first bytes: the usual wrong files (a data table given
# where the model goes, another program's model).
_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed data (a .gz data table?)"),
    (b"BZh", "bzip2-compressed data (a .bz2 data table?)"),
    (b"\xfd7zXZ\x00", "xz-compressed data (an .xz data table?)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (an .h5ad or .h5 data file?)"),
    (b"PAR1", "a Parquet table"),
    (ZIP_MAGIC, TRUNCATED),
)


def streamed_bytes(name: str) -> bytes | None:
    """The bytes of a model file that is not a regular file (a pipe from process substitution, /dev/stdin, a
    named pipe), which the zip reader cannot seek in; None for a regular file. What does not start as a zip
    archive is read no further than its first bytes (``/dev/zero`` is refused at once)."""
    try:
        if stat.S_ISREG(os.stat(name).st_mode):
            return None
        with open(name, "rb") as fh:
            data = fh.read(512)
            if not data.startswith(ZIP_MAGIC):
                return data
            chunks, size = [data], len(data)
            while chunk := fh.read(1 << 20):
                size += len(chunk)
                if size > MAX_STREAMED_BYTES:
                    raise ModelFileError(f"{name}: more than {mib(MAX_STREAMED_BYTES)} came through the pipe, more "
                                         "than a model file read from a pipe may hold; give the model file's path")
                chunks.append(chunk)
    except OSError as exc:
        raise ModelFileError(f"{name} cannot be read ({exc.strerror or exc})") from None
    return b"".join(chunks)


def not_a_model(name: str, streamed: bytes | None, exc: BaseException) -> str:
    """Why a file the zip reader refused is no model file, from its first bytes: empty, a data table given
    where the model goes, another program's model, a truncated copy."""
    head = streamed
    if head is None:
        try:
            with open(name, "rb") as fh:
                head = fh.read(512)
        except OSError:
            return f"corrupt or truncated ({exc})"
    if not head:
        return "it is empty (0 bytes; an interrupted copy or download?)"
    if head.startswith(ZIP_MAGIC) and "CRC" in str(exc):  # a member's data changed: a disk or transfer error
        return f"it is damaged ({exc}): copy it again from where it came from"
    if head.startswith(b"\x1f\x8b") and _gunzipped_head(head).startswith(ZIP_MAGIC):
        quoted = shlex.quote(name)
        return f"it is a gzip-compressed model file; decompress it first (gunzip -k {quoted}), or give <(zcat {quoted})"
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return f"it is {what}"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return ("it is a Python pickle (a scikit-learn, joblib or PyTorch model?); mlpcli reads only its own model "
                "files, and never unpickles")
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            text = True
        except UnicodeDecodeError as err:  # a character cut at the 512th byte is still text
            text = err.start >= len(head) - 3
        if text:
            return "it is text (a data table given as the model?)"
    return f"corrupt or truncated ({exc})"


def _gunzipped_head(head: bytes) -> bytes:
    """The first bytes that gzip data starting with ``head`` inflates to (b"" when they cannot be told)."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 16)
    except zlib.error:
        return b""


def archive_members(name: str, zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """model.json's and weights.npz's zip entries, each checked to inflate to a bounded size."""
    infos = zf.infolist()
    names = [i.filename for i in infos]
    missing = [m for m in ("model.json", "weights.npz") if m not in names]
    if missing and infos and min(i.header_offset for i in infos) > 0:
        # an archive found inside the file, not at its start: a model cut short, whose own index is gone, reads
        # as the weights.npz archive stored within it
        raise ModelFileError(f"{name} is not a readable mlpcli model file: it is {TRUNCATED}")
    if missing:
        raise ModelFileError(f"{name} is not an mlpcli model file: {_other_archive(names)}missing "
                             f"{', '.join(missing)}")
    if len(names) != 2:
        others = [n for n in names if n not in ("model.json", "weights.npz")]
        odd = f"unexpected: {short_repr(others[0])}" if others else f"{next(n for n in names if names.count(n) > 1)} twice"
        raise ModelFileError(f"{name} is not an mlpcli model file: it holds {len(names)} members, not 2 ({odd})")
    out = {i.filename: i for i in infos}
    for info in infos:
        _check_entry(name, info, info.filename, MAX_JSON_BYTES if info.filename == "model.json" else None)
    return out


def _other_archive(names: list[str]) -> str:
    """What a zip archive that is not a model looks like from its members' names ("" when nothing tells)."""
    if names and all(n.endswith(".npy") for n in names):
        return "a NumPy .npz archive of arrays, "
    tables = [n for n in names if any(n.lower().endswith(ext) for ext in (".csv", ".tsv", ".txt", ".parquet",
                                                                         ".csv.gz", ".tsv.gz"))]
    if tables:
        return f"a zip archive holding {short_repr(tables[0])} (a zipped data table? unzip it and give it as DATA), "
    return ""


def _check_entry(name: str, info: zipfile.ZipInfo, what: str, limit: int | None) -> None:
    """Refuse an archive member that is encrypted, compressed in a way mlpcli never writes, larger than
    ``limit`` once inflated, or inflating more than MAX_RATIO times (judged from the header alone)."""
    if info.flag_bits & 0x1:
        raise ModelFileError(f"{name}: {what} is encrypted; mlpcli model files never are")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelFileError(f"{name}: {what} uses zip compression method {info.compress_type}; mlpcli writes "
                             "stored or deflated members only")
    size, packed = info.file_size, info.compress_size
    if limit is not None and size > limit:
        raise ModelFileError(f"{name}: {what} would inflate to {mib(size)}, more than the {mib(limit)} a model "
                             "file may hold there")
    if info.compress_type == zipfile.ZIP_STORED and size != packed:
        raise ModelFileError(f"{name}: {what} is stored uncompressed but its header gives two sizes "
                             f"({size} and {packed} bytes); the file is damaged or crafted")
    if size > RATIO_FREE_BYTES and size > MAX_RATIO * packed:
        raise ModelFileError(f"{name}: {what} would inflate {size / max(packed, 1):,.0f} times ({mib(packed)} to "
                             f"{mib(size)}); model files inflate at most {MAX_RATIO} times, so this is a zip bomb "
                             "or a damaged file")


class _DuplicateKey(Exception):
    """A JSON object naming one key twice (``_unique_keys``)."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


def parse_json(name: str, raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{name}: model.json is not UTF-8 text (byte {exc.start})") from None
    containers = text.count("{") + text.count("[")
    if containers > MAX_JSON_CONTAINERS:
        raise ModelFileError(f"{name}: model.json holds {containers:,} objects and lists, more than the "
                             f"{MAX_JSON_CONTAINERS:,} a model file may hold")
    try:
        meta = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:  # JSON takes the last silently: an edit that added a key beside the old one
        raise ModelFileError(f"{name}: model.json names the key {exc.args[0]!r} twice in one object; the file was "
                             "edited or damaged") from None
    except json.JSONDecodeError as exc:  # where, so that a hand edit can be found
        raise ModelFileError(f"{name}: model.json is not valid JSON ({exc.msg}: line {exc.lineno:,}, column "
                             f"{exc.colno:,}); the file was edited or damaged") from None
    except RecursionError:
        raise ModelFileError(f"{name}: model.json is not valid JSON (nested too deeply)") from None
    except ValueError:  # e.g. an integer literal of more digits than Python converts
        raise ModelFileError(f"{name}: model.json is not valid JSON (a number too long to read)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{name} is not an mlpcli model file (model.json has no '{FORMAT}' format tag)")
    return meta


def check_weights_size(name: str, info: zipfile.ZipInfo, specs: dict[str, ArraySpec]) -> None:
    """weights.npz must inflate to what the arrays model.json describes need, with their headers: checked
    before reading, so a file claiming large layers is refused from its header."""
    least = sum(spec.size * min(spec.itemsizes) for spec in specs.values())
    most = ZIP_SLACK + sum(spec.size * max(spec.itemsizes) + MAX_NPY_HEADER + ENTRY_SLACK + 2 * (len(key) + 4)
                            for key, spec in specs.items())
    if not least <= info.file_size <= most:
        raise ModelFileError(f"{name}: weights.npz holds {mib(info.file_size)} but the {len(specs)} arrays model.json "
                             f"describes need {mib(least)}{'' if least == most else f' to {mib(most)}'}; the "
                             "architecture and the stored weights disagree")
