"""Checking a model file before anything is built from it (``model_io.load`` reads through here).

A model file is a zip of ``model.json`` and ``weights.npz`` (see ``model_io``). Everything in it is a claim
until checked: a 4 KB file can say its hidden layers are 40,000 wide, a zip header can say a member inflates
to 10 GB, model.json can give an output layer of 3 for 5 classes or NaN weights. ``read`` checks in an order
that allocates nothing proportional to a claim before the claim is verified:

1. the archive: exactly the two members, stored or deflated, not encrypted; model.json inflates to at most
   MAX_JSON_BYTES, and neither member to more than MAX_RATIO times its compressed size (a zip bomb is
   refused from its header, before anything is inflated). A file that is no zip archive is named for what
   its first bytes say it is (empty, text, gzip, HDF5, Parquet, a pickle, a zip cut short); a model that
   comes through a pipe (``<(zcat m.mlp.gz)``, /dev/stdin) is read whole first (at most MAX_STREAMED_BYTES);
2. model.json: UTF-8 JSON, every field's type, range and consistency (task, classes against the output
   layer, features against the preprocessing, layer widths within limits, known activations and losses,
   temperature, target scaling, the metadata other commands read, the prediction sets' calibration and the
   out-of-distribution basis);
3. the arrays those fields imply (names, shapes and dtypes from the architectures and preprocessing):
   model.json's ``array_shapes`` must list exactly those stored, ``array_aliases`` (format 6) the others, each
   with a stored array of its shape and kind whose data it shares, and weights.npz's inflated size must be
   what the stored arrays need, before weights.npz is read;
4. weights.npz: its checksum, then each ``.npy`` header (shape, dtype, order; read without the data, so
   object arrays are refused without being unpickled) against the expected array, then the data;
5. values: weights and statistics finite, scales positive, variances non-negative, kept-feature indices
   matching the feature names; conformity scores within their ranges, their classes and members existing,
   weights in (0, 1] summing to the patients recorded, out-of-distribution calibration scores sorted.

Every failure is a ModelFileError naming the file and the field or array, on one line.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import lzma
import math
import os
import shlex
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from .engine import activations as act_mod
from .engine import losses as loss_mod
from .engine.network import state_shapes
from .errors import ConfigError, ModelFileError, one_line

__all__ = ["FORMAT", "SUPPORTED_VERSIONS", "CheckedModel", "read"]

FORMAT = "mlpcli-model"
SUPPORTED_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)

# ── limits ───────────────────────────────────────────────────────────────────────────────────────────────
# model.json repeats the feature names 3 + 2K times for K members (170-300 bytes per feature with 5 members,
# by name length), so 32 MiB holds some 110,000-190,000 features in a 5-member ensemble and about three times
# as many in a single network; parsing takes 5-8 times its size in Python objects. `save` refuses to write
# more, so a trained model always loads.
MAX_JSON_BYTES = 32 * 2**20
# JSON containers ({ or [) in model.json: each costs about 60 bytes parsed, so a file of nothing but "{},"
# would take 25 times its size. A long ensemble run has one per member and epoch (10 x 1,000 = 10,000).
MAX_JSON_CONTAINERS = 1_000_000
# Trained weights and statistics are close to incompressible (real files inflate 1.3-2.2 times, model.json
# 3-6 times); a member inflating more than this is a zip bomb. Below RATIO_FREE_BYTES the ratio is not
# judged (small files compress well, and a few MiB cost nothing).
MAX_RATIO = 32
RATIO_FREE_BYTES = 2**20
MAX_MEMBERS = 1024
MAX_HIDDEN_LAYERS = 256
MAX_WIDTH = 2**24  # hidden and output units of one layer
MAX_FEATURES = 2**26  # input features
MAX_NPY_HEADER = 4096  # bytes of a .npy header (NumPy writes 128 for any array mlpcli saves)
TEMPERATURE_RANGE = (1e-3, 1e3)
MAX_TRAINING_ROWS = 2**28  # fingerprints of training rows (8 bytes each: 2 GiB at most)  # fitted temperatures lie in [1/3, 3]
_ZIP_SLACK = 2**16 + 512  # archive comment and end records
_ENTRY_SLACK = 512  # local and central headers of one archive member, besides its name twice
_FINITE_CHUNK = 2**20  # entries checked at a time (the boolean temporary stays 1 MiB)

CONFORMAL_SOURCES = ("out-of-fold", "validation", "refit", "cohort")  # conformal.SOURCES (NumPy-free here)
_PREPROCESSING_ARRAYS = ("kept_index", "impute_values", "center", "scale", "train_mean", "train_sd")
_PREPROCESSING_STATE_VERSION = 1
_ARCHITECTURE_KEYS = ("n_inputs", "hidden", "n_outputs", "activation", "activation_params", "dropout",
                      "batchnorm", "seed", "dtype")
_LINKS = {  # task -> output activation of the loss -> how many outputs (None: one per class)
    "binary": {"softmax": 2, "sigmoid": 1},
    "multiclass": {"softmax": None},
    "multilabel": {"sigmoid": None},
    "regression": {"identity": None},
}


@dataclass
class _ArraySpec:
    """What one stored array must be: its shape, dtype kind and item sizes, and a rule for its values."""

    shape: tuple[int, ...]
    kinds: str  # numpy dtype kinds allowed ("f", or "iu" for indices)
    itemsizes: tuple[int, ...]
    rule: str  # "finite" | "positive" | "nonneg" | "not_inf" | "index"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class CheckedModel:
    """A model file that passed every check: its metadata, its members' entries (format 1 normalised to
    format 2's shape: ``architecture``, ``shares_preprocessing``, ``preprocessing``, ``target_scaling`` and
    the ``prefix`` of its arrays) and its arrays (read-only, by their name in weights.npz)."""

    source: str
    meta: dict
    members: list[dict]
    arrays: dict[str, np.ndarray] = field(repr=False)


def read(path: str | os.PathLike) -> CheckedModel:
    """Read and check the model file at ``path``; see the module docstring. Raises ModelFileError."""
    name = str(path)
    if not name:
        raise ModelFileError("model file not found: the name given is empty ('')")
    if name == "-":  # standard input, as "-" is for every input (diagnose, the tables)
        if os.isatty(0):
            raise ModelFileError("model - is standard input, which is a terminal: pipe a model file into it (zcat "
                                 "m.mlp.gz | mlpcli predict - DATA) or give its path")
        try:
            return read("/dev/stdin")
        except ModelFileError as exc:  # named as the user gave it
            raise ModelFileError(str(exc).replace("/dev/stdin", "- (standard input)")) from None
    if not os.path.exists(name):
        raise ModelFileError(f"model file not found: {name}")
    if os.path.isdir(name):
        raise ModelFileError(f"{name} is a directory, not a model file")
    source = _streamed(name)
    try:
        with zipfile.ZipFile(name if source is None else io.BytesIO(source)) as zf:
            infos = _archive_members(name, zf)
            raw_meta = zf.read(infos["model.json"])
            meta = _parse_json(name, raw_meta)
            del raw_meta
            _Fields(name).header(meta)
            members, specs, aliases = _Fields(name).model(meta)
            stored = {key: spec for key, spec in specs.items() if key not in aliases}
            _check_weights_size(name, infos["weights.npz"], stored)
            weights = zf.read(infos["weights.npz"])
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(f"{name} is not a readable mlpcli model file: {_not_a_model(name, source, exc)}") from None
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # a seek to where the damaged index says a member starts
            raise ModelFileError(f"{name} is not a readable mlpcli model file: it is {_TRUNCATED}") from None
        raise ModelFileError(f"{name} cannot be read ({exc.strerror or exc})") from None
    except (zlib.error, lzma.LZMAError, struct.error, NotImplementedError, RuntimeError, ValueError) as exc:
        # what a damaged archive raises: zlib and LZMA errors, short headers, an unknown compression method, an
        # encryption flag, bad member names; not a bug of this code (a NameError, a TypeError), which would be
        # blamed on the user's file and hidden from --debug
        raise ModelFileError(f"{name} is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    if hashlib.sha256(weights).hexdigest() != meta["weights_sha256"]:
        raise ModelFileError(f"{name}: weights.npz does not match the checksum in model.json (file modified or damaged)")
    arrays = _read_arrays(name, weights, stored)
    del weights
    arrays.update({alias: arrays[target] for alias, target in aliases.items()})  # read-only: shared safely
    _check_values(name, arrays, specs, meta, members)
    return CheckedModel(source=name, meta=meta, members=members, arrays=arrays)


# ── the archive ──────────────────────────────────────────────────────────────────────────────────────────

ZIP_MAGIC = b"PK\x03\x04"  # a zip archive's first bytes (its first member's local header)
# A model given through a pipe (``<(curl ...)``, /dev/stdin) is read into memory whole: at most this much.
MAX_STREAMED_BYTES = 2**32
_TRUNCATED = ("a zip archive that is truncated or damaged (an incomplete copy or download, or a disk that filled up "
              "while it was written)")
# What a file that is not a zip archive is, from its first bytes: the usual wrong files (a data table given
# where the model goes, another program's model).
_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed data (a .gz data table?)"),
    (b"BZh", "bzip2-compressed data (a .bz2 data table?)"),
    (b"\xfd7zXZ\x00", "xz-compressed data (an .xz data table?)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (an .h5ad or .h5 data file?)"),
    (b"PAR1", "a Parquet table"),
    (ZIP_MAGIC, _TRUNCATED),
)


def _streamed(name: str) -> bytes | None:
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
                    raise ModelFileError(f"{name}: more than {_mib(MAX_STREAMED_BYTES)} came through the pipe, more "
                                         "than a model file read from a pipe may hold; give the model file's path")
                chunks.append(chunk)
    except OSError as exc:
        raise ModelFileError(f"{name} cannot be read ({exc.strerror or exc})") from None
    return b"".join(chunks)


def _not_a_model(name: str, streamed: bytes | None, exc: BaseException) -> str:
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


def _archive_members(name: str, zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """model.json's and weights.npz's zip entries, each checked to inflate to a bounded size."""
    infos = zf.infolist()
    names = [i.filename for i in infos]
    missing = [m for m in ("model.json", "weights.npz") if m not in names]
    if missing and infos and min(i.header_offset for i in infos) > 0:
        # an archive found inside the file, not at its start: a model cut short, whose own index is gone, reads
        # as the weights.npz archive stored within it
        raise ModelFileError(f"{name} is not a readable mlpcli model file: it is {_TRUNCATED}")
    if missing:
        raise ModelFileError(f"{name} is not an mlpcli model file: {_other_archive(names)}missing "
                             f"{', '.join(missing)}")
    if len(names) != 2:
        others = [n for n in names if n not in ("model.json", "weights.npz")]
        odd = f"unexpected: {_show(others[0])}" if others else f"{next(n for n in names if names.count(n) > 1)} twice"
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
        return f"a zip archive holding {_show(tables[0])} (a zipped data table? unzip it and give it as DATA), "
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
        raise ModelFileError(f"{name}: {what} would inflate to {_mib(size)}, more than the {_mib(limit)} a model "
                             "file may hold there")
    if info.compress_type == zipfile.ZIP_STORED and size != packed:
        raise ModelFileError(f"{name}: {what} is stored uncompressed but its header gives two sizes "
                             f"({size} and {packed} bytes); the file is damaged or crafted")
    if size > RATIO_FREE_BYTES and size > MAX_RATIO * packed:
        raise ModelFileError(f"{name}: {what} would inflate {size / max(packed, 1):,.0f} times ({_mib(packed)} to "
                             f"{_mib(size)}); model files inflate at most {MAX_RATIO} times, so this is a zip bomb "
                             "or a damaged file")


class _DuplicateKey(Exception):
    """A JSON object naming one key twice (``_unique_keys``)."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


def _parse_json(name: str, raw: bytes) -> dict:
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


def _check_weights_size(name: str, info: zipfile.ZipInfo, specs: dict[str, _ArraySpec]) -> None:
    """weights.npz must inflate to what the arrays model.json describes need, with their headers: checked
    before reading, so a file claiming large layers is refused from its header."""
    least = sum(spec.size * min(spec.itemsizes) for spec in specs.values())
    most = _ZIP_SLACK + sum(spec.size * max(spec.itemsizes) + MAX_NPY_HEADER + _ENTRY_SLACK + 2 * (len(key) + 4)
                            for key, spec in specs.items())
    if not least <= info.file_size <= most:
        raise ModelFileError(f"{name}: weights.npz holds {_mib(info.file_size)} but the {len(specs)} arrays model.json "
                             f"describes need {_mib(least)}{'' if least == most else f' to {_mib(most)}'}; the "
                             "architecture and the stored weights disagree")


# ── model.json ───────────────────────────────────────────────────────────────────────────────────────────

_MISSING = object()


def expand_feature_lists(meta: dict) -> None:
    """model.json of format 7 as the checks (and ``Preprocessor.from_state``) read every format: the feature
    lists format 7 leaves out, in place. Each preprocessing (the model's, each member's own) was fitted on the
    model's ``feature_names`` and says so by leaving out ``feature_names_in``; it leaves out ``kept_features``
    when it keeps what its reference keeps (the model's preprocessing: every input; a member's: the model's
    preprocessing's kept features). Before format 7 a 5-member model listed its features 13 times: 15 MB of
    model.json at 60,000 Ensembl ids, parsed on every ``predict``, and past the 32 MB limit with --folds 10."""
    features = meta.get("feature_names")
    top = meta.get("preprocessing")
    if not isinstance(top, dict):
        return  # the checks name it
    top.setdefault("feature_names_in", features)
    top.setdefault("kept_features", top["feature_names_in"])
    members = meta.get("members")
    for entry in members if isinstance(members, list) else ():
        pre = entry.get("preprocessing") if isinstance(entry, dict) else None
        if isinstance(pre, dict):
            pre.setdefault("feature_names_in", features)
            left = pre.get("kept_features_left_out")
            # format 12: a member that keeps all but a few of its reference's kept features names those few
            if meta.get("format_version", 0) >= 12 and "kept_features" not in pre and isinstance(left, list) \
                    and all(isinstance(n, str) for n in left) and isinstance(top["kept_features"], list):
                out = set(left)
                if out <= set(top["kept_features"]):  # else the key stays, and the checks name it
                    pre["kept_features"] = [n for n in top["kept_features"] if n not in out]
                    del pre["kept_features_left_out"]
            pre.setdefault("kept_features", top["kept_features"])


class _Fields:
    """Checks of model.json's fields. Each check names the field (``members[0].architecture.hidden[1]``)
    in its message; ``model`` returns the members' entries and the arrays they imply."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, what: str):
        raise ModelFileError(f"{self.source}: model.json field '{where}' {what}")

    # -- scalar and container types
    def get(self, d: dict, key: str, where: str, default=_MISSING):
        if key in d:
            return d[key]
        if default is _MISSING:
            self.fail(_join(where, key), "is missing")
        return default

    def mapping(self, v, where: str) -> dict:
        if not isinstance(v, dict):
            self.fail(where, f"must be a JSON object, got {_kind(v)}")
        return v

    def listing(self, v, where: str, min_len: int = 0, max_len: int | None = None) -> list:
        if not isinstance(v, list):
            self.fail(where, f"must be a list, got {_kind(v)}")
        if min_len == max_len and len(v) != min_len:
            self.fail(where, f"must hold {min_len:,} entr{'y' if min_len == 1 else 'ies'}, got {len(v):,}")
        if len(v) < min_len:
            self.fail(where, "must not be empty" if min_len == 1 else f"must hold at least {min_len} entries")
        if max_len is not None and len(v) > max_len:
            self.fail(where, f"holds {len(v):,} entries, more than the {max_len:,} allowed")
        return v

    def whole(self, v, where: str, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.fail(where, f"must be a whole number from {lo:,} to {hi:,}, got {_show(v)}")
        return v

    def number(self, v, where: str, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False) -> float:
        ok = _is_number(v) and math.isfinite(float(v))
        if ok and lo is not None:
            ok = float(v) > lo if lo_open else float(v) >= lo
        if ok and hi is not None:
            ok = float(v) < hi if hi_open else float(v) <= hi
        if not ok:
            rng = ""
            if lo is not None or hi is not None:
                left = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
                right = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
                rng = " " + " and ".join(p for p in (left, right) if p)
            self.fail(where, f"must be a finite number{rng}, got {_show(v)}")
        return float(v)

    def flag(self, v, where: str) -> bool:
        if not isinstance(v, bool):
            self.fail(where, f"must be true or false, got {_show(v)}")
        return v

    def text(self, v, where: str, choices=None, optional: bool = False) -> str | None:
        if v is None and optional:
            return None
        if not isinstance(v, str):
            self.fail(where, f"must be a string, got {_kind(v)}")
        if choices is not None and v not in choices:
            self.fail(where, f"is {_show(v)}, not one of {', '.join(map(str, choices))}")
        return v

    def texts(self, v, where: str, unique: bool = True, min_len: int = 0, max_len: int = MAX_FEATURES) -> list[str]:
        self.listing(v, where, min_len, max_len)
        for i, item in enumerate(v):
            if not isinstance(item, str):
                self.fail(f"{where}[{i}]", f"must be a string, got {_kind(item)}")
        if unique and len(set(v)) != len(v):
            seen: set = set()
            twice = next(s for s in v if s in seen or seen.add(s))
            self.fail(where, f"names {_show(twice)} twice")
        return v

    def present(self, d: dict, key: str, default: dict | list, where: str) -> dict | list:
        """``d[key]``, an object (``default`` {}) or a list ([]): a null there is taken as absent and replaced by
        ``default``, so that what reads the loaded model meets the type it expects either way."""
        if key in d and d[key] is None:
            d[key] = type(default)()
        value = d.get(key, default)
        return self.mapping(value, where) if isinstance(default, dict) else self.listing(value, where)

    def options(self, options: dict, where: str) -> None:
        """Recorded training options (``config``, ``config.resolved``): each known one of its declared type
        (``config.check_value``; ranges are not judged: an older mlpcli may have drawn them otherwise)."""
        from .config import check_value

        for key, value in options.items():
            try:
                check_value(key, value, ranges=False)
            except ConfigError as exc:
                self.fail(_join(where, key), str(exc).split(": ", 1)[-1])

    def scalars(self, v, where: str) -> dict:
        """An object of JSON scalars (numbers that fit a float, strings, true/false, null)."""
        self.mapping(v, where)
        for key, value in v.items():
            if not (value is None or isinstance(value, (bool, str)) or _is_number(value)):
                self.fail(_join(where, key), f"must be a number, string, true/false or null, got {_kind(value)}")
        return v

    # -- the model
    def header(self, meta: dict) -> None:
        version = meta.get("format_version")
        known = f"{SUPPORTED_VERSIONS[0]}-{SUPPORTED_VERSIONS[-1]}"
        whole = isinstance(version, int) and not isinstance(version, bool)
        if whole and version > SUPPORTED_VERSIONS[-1]:  # only a newer mlpcli writes one: "upgrade" is the remedy
            raise ModelFileError(f"{self.source} has model format version {version:,}, newer than the {known} this "
                                 "mlpcli reads: it was written by a newer mlpcli; upgrade mlpcli, or retrain with this one")
        if not whole or version not in SUPPORTED_VERSIONS:  # no mlpcli wrote it: upgrading would not help
            self.fail("format_version", f"is {_show(version)}, not a model format version ({known}, a whole number); "
                      "the file was edited or damaged")
        digest = self.text(self.get(meta, "weights_sha256", ""), "weights_sha256")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            self.fail("weights_sha256", f"must be 64 lowercase hexadecimal digits, got {_show(digest)}")

    def model(self, meta: dict) -> tuple[list[dict], dict[str, _ArraySpec], dict[str, str]]:
        """The members' entries, every array the model needs, and which of them the file stores once for two
        (``array_aliases``: name -> the stored array's name)."""
        from .data import TASKS

        task = self.text(self.get(meta, "task", ""), "task", choices=TASKS)
        features = self.texts(self.get(meta, "feature_names", ""), "feature_names", min_len=1)
        if meta["format_version"] >= 7:
            expand_feature_lists(meta)
        self.texts(self.get(meta, "target_names", "", default=[]), "target_names", unique=False)
        reference = self.preprocessing(self.get(meta, "preprocessing", ""), "preprocessing", meta["format_version"])
        if features != reference["feature_names_in"]:
            self.fail("feature_names", "differs from preprocessing.feature_names_in (the features the "
                      "preprocessing was fitted on)")
        specs = self.preprocessing_arrays("preprocessor/", reference)

        if meta["format_version"] == 1:  # one network, whose preprocessing is the reference
            extra = self.mapping(_given(meta.get("extra"), {}), "extra")
            entries = [({"architecture": self.get(meta, "architecture", ""), "shares_preprocessing": True,
                         "target_scaling": extra.get("target_scaling")}, "", "architecture", "extra.target_scaling")]
        else:
            listed = self.listing(self.get(meta, "members", ""), "members", 1, MAX_MEMBERS)
            entries = [(self.mapping(e, f"members[{i}]"), f"members/{i}/", f"members[{i}].architecture",
                        f"members[{i}].target_scaling") for i, e in enumerate(listed)]

        members = []
        for i, (entry, prefix, arch_where, scaling_where) in enumerate(entries):
            arch = self.architecture(self.get(entry, "architecture", arch_where.rsplit(".", 1)[0]), arch_where)
            shares = self.flag(entry.get("shares_preprocessing", False), f"members[{i}].shares_preprocessing")
            pre = reference
            if not shares:
                where = f"members[{i}].preprocessing"
                pre = self.preprocessing(self.get(entry, "preprocessing", f"members[{i}]"), where, meta["format_version"])
                if pre["feature_names_in"] != reference["feature_names_in"]:
                    self.fail(f"{where}.feature_names_in", "differs from the model's feature_names")
                if "kept_features_left_out" in pre:  # not expanded (``expand_feature_lists``): malformed
                    self.fail(f"{where}.kept_features_left_out", "must list features of preprocessing.kept_features "
                              f"(format 12 or later, without kept_features beside it), got "
                              f"{_show(pre['kept_features_left_out'])}")
                used = set(reference["kept_features"])
                unknown = [k for k in pre["kept_features"] if k not in used]
                if unknown:
                    self.fail(f"{where}.kept_features", f"names {_show(unknown[0])}, which the model does not "
                              "list as an input it uses (preprocessing.kept_features)")
                specs.update(self.preprocessing_arrays(f"{prefix}preprocessor/", pre))
            if arch["n_inputs"] != len(pre["kept_features"]):
                self.fail(f"{arch_where}.n_inputs", f"is {arch['n_inputs']:,} but the member's preprocessing keeps "
                          f"{len(pre['kept_features']):,} features")
            itemsize = np.dtype(arch.get("dtype", "float64")).itemsize
            for key, shape in state_shapes(arch["n_inputs"], arch["hidden"], arch["n_outputs"],
                                           arch.get("batchnorm", False)).items():
                rule = "nonneg" if key.endswith(".running_var") else "finite"
                specs[f"{prefix}network/{key}"] = _ArraySpec(shape, "f", (itemsize,), rule)
            members.append({"architecture": arch, "shares_preprocessing": shares,
                            "preprocessing": None if shares else entry["preprocessing"],
                            "target_scaling": entry.get("target_scaling"), "prefix": prefix})

        n_outputs = members[0]["architecture"]["n_outputs"]
        for i, m in enumerate(members[1:], start=1):
            if m["architecture"]["n_outputs"] != n_outputs:
                self.fail(f"members[{i}].architecture.n_outputs", f"is {m['architecture']['n_outputs']:,} but "
                          f"members[0] has {n_outputs:,} outputs; an ensemble's members share their outputs")
        link = self.loss(self.get(meta, "loss", ""), n_outputs)
        self.outputs(task, self.get(meta, "classes", ""), link, n_outputs)
        for m, (_, _, _, scaling_where) in zip(members, entries):
            m["target_scaling"] = self.target_scaling(scaling_where, m["target_scaling"], task, n_outputs)
        temperature = self.get(meta, "temperature", "", default=None)
        if isinstance(temperature, list):  # format 13: a multi-label model's, one per label
            if task != "multilabel" or meta["format_version"] < 13:
                self.fail("temperature", "is a list, which only a multi-label model of format 13 or later has (one "
                                         "per label); one number otherwise")
            self.listing(temperature, "temperature", n_outputs, n_outputs)
            for i, v in enumerate(temperature):
                self.number(v, f"temperature[{i}]", *TEMPERATURE_RANGE)
        elif temperature is not None:
            self.number(temperature, "temperature", *TEMPERATURE_RANGE)
        self.metadata(meta)
        specs.update(self.trust(meta, task, len(meta["classes"]), len(reference["kept_features"]), len(members)))
        self.decision(meta, task, len(meta["classes"]))
        self.recalibration(meta, task, len(meta["classes"]), link)
        specs.update(self.training_rows(meta))
        aliases = self.aliases(meta, specs)
        self.array_shapes(self.get(meta, "array_shapes", ""), {k: v for k, v in specs.items() if k not in aliases},
                          aliases)
        return members, specs, aliases

    def aliases(self, meta: dict, specs: dict[str, _ArraySpec]) -> dict[str, str]:
        """``array_aliases``: each names an array the model needs that the file stores once, under the name of
        another of the same shape, dtypes and value rule. Written since format 6 (so that an earlier mlpcli asks
        for an upgrade rather than naming a missing array); accepted in a file of any version, checked alike."""
        given = meta.get("array_aliases")
        if given is None:
            return {}
        self.mapping(given, "array_aliases")
        for alias, target in given.items():
            if alias not in specs:
                self.fail("array_aliases", f"lists {_show(alias)}, an array the model does not have")
            where = _join("array_aliases", alias)
            self.text(target, where)
            if target not in specs or target in given:
                self.fail(where, f"is {_show(target, 80)}, not an array the file stores")
            if specs[alias] != specs[target]:
                want, got = specs[alias], specs[target]
                self.fail(where, f"is {target!r}, of shape {list(got.shape)}, for an array of shape "
                          f"{list(want.shape)}" if want.shape != got.shape else
                          f"is {target!r}, an array of another kind of values")
        return given

    def trust(self, meta: dict, task: str, n_classes: int, n_kept: int, n_members: int) -> dict[str, _ArraySpec]:
        """The optional ``conformal`` and ``ood`` fields (format 3, classification) and the arrays they imply."""
        from .conformal import MAX_ROWS
        from .ood import MAX_BASIS_VALUES, MAX_CALIBRATION, MAX_COMPONENTS, MAX_REFERENCE

        specs: dict[str, _ArraySpec] = {}
        for key in ("conformal", "ood"):
            if meta.get(key) is None:
                continue
            if meta["format_version"] < 3:
                self.fail(key, f"needs model format version 3, the file says {meta['format_version']}")
            if task not in ("binary", "multiclass"):
                self.fail(key, f"is set but the task is {task}; only binary and multiclass models have it")
            self.mapping(meta[key], key)
        c = meta.get("conformal")
        if c is not None:
            n = self.whole(self.get(c, "n", "conformal"), "conformal.n", 1, MAX_ROWS)
            self.whole(self.get(c, "n_rows", "conformal"), "conformal.n_rows", n, 2**63 - 1)
            source = self.text(self.get(c, "source", "conformal"), "conformal.source", choices=CONFORMAL_SOURCES)
            if source == "cohort" and meta["format_version"] < 15:
                self.fail("conformal.source", f"'cohort' needs model format version 15, the file says "
                                              f"{meta['format_version']}")
            if c.get("cohort") is not None:
                if source != "cohort":
                    self.fail("conformal.cohort", f"is set, but the scores' source is {source!r}, not 'cohort'")
                self.cohort(c["cohort"], "conformal.cohort")
            elif source == "cohort":  # (written with every cohort's scores: which table they are of)
                self.fail("conformal.cohort", "is missing: scores of a cohort name the table they were taken on")
            scored_by = self.whole(self.get(c, "members", "conformal"), "conformal.members", 1, MAX_MEMBERS)
            # whose held-out rows the scores are: a cohort's, the whole model's (one "member"); one network's
            # validation rows; each cross-fitted member's (a --refit network, the model's one, held none out: its
            # scores are its K members')
            expected = {"cohort": 1, "validation": 1, "out-of-fold": n_members}.get(source, scored_by)
            if scored_by != expected:
                self.fail("conformal.members", f"is {scored_by}, but {source} scores of a model of {n_members} "
                                               f"member{'s' * (n_members != 1)} come from {expected}")
            self.number(self.get(c, "patients", "conformal"), "conformal.patients", 0.0, lo_open=True)
            self.flag(self.get(c, "weighted", "conformal"), "conformal.weighted")
            for name in ("aps", "lac", "weight"):
                specs[f"conformal/{name}"] = _ArraySpec((n,), "f", (8,), "finite")
            for name in ("label", "member"):
                specs[f"conformal/{name}"] = _ArraySpec((n,), "iu", (1, 2, 4, 8), "index")
        o = meta.get("ood")
        if o is not None:
            p = self.whole(self.get(o, "n_features", "ood"), "ood.n_features", n_kept, n_kept)
            r = self.whole(self.get(o, "n_components", "ood"), "ood.n_components", 1,
                           max(1, min(MAX_COMPONENTS, p, MAX_BASIS_VALUES // p)))
            k = self.whole(self.get(o, "n_reference", "ood"), "ood.n_reference", 1, MAX_REFERENCE)
            m = self.whole(self.get(o, "n_calibration", "ood"), "ood.n_calibration", 0, MAX_CALIBRATION)
            if "weighted" in o:  # the calibration counts patients, one value each (ood.calibrate)
                self.flag(o["weighted"], "ood.weighted")
            if "streamed" in o:  # every held-out row scored, not the capped sample's (ood.RowSource)
                self.flag(o["streamed"], "ood.streamed")
            if o.get("cohort") is not None:  # calibrated on a labelled cohort (recalibrate; format 15)
                if meta["format_version"] < 15:
                    self.fail("ood.cohort", f"needs model format version 15, the file says {meta['format_version']}")
                self.cohort(o["cohort"], "ood.cohort")
            specs.update({"ood/mean": _ArraySpec((p,), "f", (8,), "finite"),
                          "ood/components": _ArraySpec((r, p), "f", (8,), "finite"),
                          "ood/reference": _ArraySpec((k, r), "f", (8,), "finite"),
                          "ood/reference_residual": _ArraySpec((k,), "f", (8,), "nonneg"),
                          "ood/calibration": _ArraySpec((m,), "f", (8,), "nonneg")})
            # the class-relative distance (format 4 on), which a basis calibrated on no held-out row has not: its
            # distance alone (every row of the sample trained it)
            if meta["format_version"] >= 4 and (m > 0 or "n_classes" in o):
                c = self.whole(self.get(o, "n_classes", "ood"), "ood.n_classes", n_classes, n_classes)
                specs.update({"ood/reference_label": _ArraySpec((k,), "iu", (1, 2, 4, 8), "index"),
                              "ood/class_scale": _ArraySpec((c,), "f", (8,), "positive"),
                              "ood/part_calibration": _ArraySpec((max(m, 1), 2), "f", (8,), "nonneg")})
        return specs

    def decision(self, meta: dict, task: str, n_classes: int) -> None:
        """The optional ``decision`` field (format 9, binary and multiclass models; format 13, multi-label ones): the
        rule, and the training class shares it divides by, one per class in (0, 1] (a multi-label model's: each
        label's share of positives, in [0, 1])."""
        from .decision import RULES

        d = meta.get("decision")
        if d is None:
            return
        if meta["format_version"] < 9:
            self.fail("decision", f"needs model format version 9, the file says {meta['format_version']}")
        if task == "multilabel" and meta["format_version"] < 13:
            self.fail("decision", f"of a multi-label model needs model format version 13, the file says "
                                  f"{meta['format_version']}")
        if task not in ("binary", "multiclass", "multilabel"):
            self.fail("decision", f"is for binary, multiclass and multi-label models; this model is {task}")
        self.mapping(d, "decision")
        self.text(self.get(d, "rule", "decision"), "decision.rule", choices=RULES)
        shares = self.listing(self.get(d, "shares", "decision"), "decision.shares", n_classes, n_classes)
        for i, v in enumerate(shares):
            self.number(v, f"decision.shares[{i}]", 0.0, 1.0, lo_open=task != "multilabel")
        labels = d.get("labels")
        if labels is not None:  # format 13: which labels of a multi-label model the balanced rule calls at their share
            if task != "multilabel":
                self.fail("decision.labels", f"is for multi-label models; this model is {task}")
            self.listing(labels, "decision.labels", n_classes, n_classes)
            for i, v in enumerate(labels):
                if not isinstance(v, bool):
                    self.fail(f"decision.labels[{i}]", f"must be true or false, got {_show(v)}")
        self.text(d.get("chosen"), "decision.chosen", choices=("auto", "option"), optional=True)
        self.scalars(_given(d.get("held_out"), {}), "decision.held_out")

    def recalibration(self, meta: dict, task: str, n_classes: int, link: str) -> None:
        """The optional ``recalibration`` field (format 14, binary and multiclass models): the update's method, its
        intercept (one per class, the first 0; a binary model's two) and its positive slope, and what it was fitted
        on."""
        from .metrics import RECAL_MAX_SLOPE
        from .recalibration import MAX_INTERCEPT, MIN_SLOPE

        d = meta.get("recalibration")
        if d is None:
            return
        if meta["format_version"] < 14:
            self.fail("recalibration", f"needs model format version 14, the file says {meta['format_version']}")
        if task not in ("binary", "multiclass", "multilabel") or link not in ("softmax", "sigmoid"):
            self.fail("recalibration", f"is for classifiers with probabilities; this model is {task}")
        self.mapping(d, "recalibration")
        if task == "multilabel":  # each label its own update: intercept, slope and method (L,) each
            self.text(self.get(d, "method", "recalibration"), "recalibration.method", choices=("per label",))
            methods = self.listing(self.get(d, "labels", "recalibration"), "recalibration.labels", n_classes, n_classes)
            intercept = self.listing(self.get(d, "intercept", "recalibration"), "recalibration.intercept", n_classes,
                                     n_classes)
            slope = self.listing(self.get(d, "slope", "recalibration"), "recalibration.slope", n_classes, n_classes)
            for i, (m, a, b) in enumerate(zip(methods, intercept, slope)):
                self.text(m, f"recalibration.labels[{i}]", choices=("none", "intercept", "logistic"))
                a = self.number(a, f"recalibration.intercept[{i}]", -MAX_INTERCEPT, MAX_INTERCEPT)
                b = self.number(b, f"recalibration.slope[{i}]", MIN_SLOPE, RECAL_MAX_SLOPE, lo_open=True)
                if (m != "logistic" and b != 1.0) or (m == "none" and a != 0.0):
                    self.fail(f"recalibration.labels[{i}]", f"is {m!r} with intercept {_show(a)} and slope {_show(b)}")
        else:
            self.text(self.get(d, "method", "recalibration"), "recalibration.method", choices=("intercept", "logistic"))
            if "labels" in d:
                self.fail("recalibration.labels", f"is for multi-label models; this model is {task}")
            k = 2 if task == "binary" else n_classes
            intercept = self.listing(self.get(d, "intercept", "recalibration"), "recalibration.intercept", k, k)
            for i, v in enumerate(intercept):
                self.number(v, f"recalibration.intercept[{i}]", -MAX_INTERCEPT, MAX_INTERCEPT)
            if intercept[0] != 0:
                self.fail("recalibration.intercept[0]", f"must be 0 (the reference class), got {_show(intercept[0])}")
            slope = self.number(self.get(d, "slope", "recalibration"), "recalibration.slope", MIN_SLOPE,
                                RECAL_MAX_SLOPE, lo_open=True)
            if d["method"] == "intercept" and slope != 1.0:
                self.fail("recalibration.slope", f"of an intercept update must be 1, got {_show(slope)}")
        self.cohort(d.get("cohort"), "recalibration.cohort")
        fit = self.mapping(_given(d.get("fit"), {}), "recalibration.fit")
        for key in ("alpha", "p_overall", "p_slope"):
            if fit.get(key) is not None:
                self.number(fit[key], f"recalibration.fit.{key}", 0.0, 1.0)
        for key in ("log_loss_before", "log_loss_after"):
            if fit.get(key) is not None:
                self.number(fit[key], f"recalibration.fit.{key}", 0.0)
        self.text(fit.get("chosen_by"), "recalibration.fit.chosen_by", choices=("closed test", "option"), optional=True)
        self.text(fit.get("method"), "recalibration.fit.method", choices=("auto", "intercept", "logistic"), optional=True)

    def cohort(self, value, where: str) -> None:
        """The labelled table a recalibration or a cohort's conformal scores were fitted on (``where``): a mapping of
        optional data (its name), sha256, n, patients and class counts."""
        cohort = self.mapping(_given(value, {}), where)
        self.text(cohort.get("data"), f"{where}.data", optional=True)
        digest = self.text(cohort.get("sha256"), f"{where}.sha256", optional=True)
        if digest is not None and (len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest)):
            self.fail(f"{where}.sha256", f"must be 64 hexadecimal digits, got {_show(digest)}")
        for key in ("n", "patients"):
            if cohort.get(key) is not None:
                self.whole(cohort[key], f"{where}.{key}", 1, 2**62)
        for key in ("class_counts", "label_positives"):
            for name, count in self.mapping(_given(cohort.get(key), {}), f"{where}.{key}").items():
                self.whole(count, f"{where}.{key}.{name}", 0, 2**62)

    def training_rows(self, meta: dict) -> dict[str, _ArraySpec]:
        """The optional ``training_rows`` (format 8) and ``cohort_rows`` (format 16) fields: how many fingerprints of
        training rows, and of the recalibration table's rows, the file holds."""
        specs = {}
        for name, since in (("training_rows", 8), ("cohort_rows", 16)):
            t = meta.get(name)
            if t is None:
                continue
            if meta["format_version"] < since:
                self.fail(name, f"needs model format version {since}, the file says {meta['format_version']}")
            if name == "cohort_rows" and meta.get("recalibration") is None and \
                    _given((meta.get("conformal") or {}).get("source"), "") != "cohort" and \
                    (meta.get("ood") or {}).get("cohort") is None:
                self.fail(name, "is there without a recalibration, or cohort calibration, it belongs to")
            self.mapping(t, name)
            n = self.whole(self.get(t, "n", name), f"{name}.n", 1, MAX_TRAINING_ROWS)
            specs[name] = _ArraySpec((n,), "u", (8,), "index")
        return specs

    def preprocessing(self, pre, where: str, format_version: int) -> dict:
        from .data.preprocess import IMPUTE_METHODS, SCALINGS, PreprocessConfig

        self.mapping(pre, where)
        version = self.get(pre, "version", where)
        if isinstance(version, bool) or version != _PREPROCESSING_STATE_VERSION:
            self.fail(f"{where}.version", f"is {_show(version)}; this mlpcli reads preprocessing state version "
                      f"{_PREPROCESSING_STATE_VERSION}")
        config = self.mapping(self.get(pre, "config", where), f"{where}.config")
        known = set(PreprocessConfig.__dataclass_fields__)
        unknown = sorted(set(config) - known)
        if unknown:
            self.fail(f"{where}.config.{unknown[0]}", f"is not a preprocessing setting ({', '.join(sorted(known))})")
        for key in ("log1p", "standardize"):
            if key in config:
                self.flag(config[key], f"{where}.config.{key}")
        if config.get("top_var") is not None:
            self.whole(config["top_var"], f"{where}.config.top_var", 1, MAX_FEATURES)
        self.text(config.get("impute"), f"{where}.config.impute", choices=IMPUTE_METHODS, optional=True)
        if "scaling" in config:
            self.text(config["scaling"], f"{where}.config.scaling", choices=SCALINGS)
        names = self.texts(self.get(pre, "feature_names_in", where), f"{where}.feature_names_in", min_len=1)
        kept = self.texts(self.get(pre, "kept_features", where), f"{where}.kept_features", min_len=1)
        known_names = set(names)
        outside = [k for k in kept if k not in known_names]
        if outside:
            self.fail(f"{where}.kept_features", f"names {_show(outside[0])}, which is not in feature_names_in")
        self.texts(pre.get("dropped_constant", []), f"{where}.dropped_constant", unique=False)
        self.texts(pre.get("warnings", []), f"{where}.warnings", unique=False)
        if "train_rows" in pre:  # format 5: the training rows the zero shares are of (the absent-gene check)
            self.whole(pre["train_rows"], f"{where}.train_rows", 1, 2**63 - 1)
        if "offset" in pre:  # format 10: the robust clip's offset is stored
            if format_version < 10:
                self.fail(f"{where}.offset", f"needs model format version 10, the file says {format_version}")
            self.flag(pre["offset"], f"{where}.offset")
        if "sd_unclipped" in pre:  # format 11: the SDs before the robust clip (the shift check's spread test)
            if format_version < 11:
                self.fail(f"{where}.sd_unclipped", f"needs model format version 11, the file says {format_version}")
            self.flag(pre["sd_unclipped"], f"{where}.sd_unclipped")
        return pre

    @staticmethod
    def preprocessing_arrays(prefix: str, pre: dict) -> dict[str, _ArraySpec]:
        d = (len(pre["kept_features"]),)
        impute_rule = "finite" if pre["config"].get("impute") is not None else "not_inf"  # NaN when impute is off
        rules = {"kept_index": "index", "impute_values": impute_rule, "center": "finite", "scale": "positive",
                 "train_mean": "finite", "train_sd": "nonneg"}
        if "train_rows" in pre:  # format 5 (shares in [0, 1]: checked by Preprocessor.from_state)
            rules["train_zero_share"] = "nonneg"
        if pre.get("offset") is True:  # format 10
            rules["offset"] = "finite"
        if pre.get("sd_unclipped") is True:  # format 11
            rules["train_sd_unclipped"] = "nonneg"
        return {f"{prefix}{key}": _ArraySpec(d, "iu", (1, 2, 4, 8), rule) if key == "kept_index"
                else _ArraySpec(d, "f", (4, 8), rule) for key, rule in rules.items()}

    def architecture(self, arch, where: str) -> dict:
        self.mapping(arch, where)
        unknown = sorted(set(arch) - set(_ARCHITECTURE_KEYS))
        if unknown:
            self.fail(_join(where, unknown[0]), f"is not an architecture setting ({', '.join(_ARCHITECTURE_KEYS)})")
        self.whole(self.get(arch, "n_inputs", where), f"{where}.n_inputs", 1, MAX_FEATURES)
        hidden = self.listing(self.get(arch, "hidden", where), f"{where}.hidden", 0, MAX_HIDDEN_LAYERS)
        for i, h in enumerate(hidden):
            self.whole(h, f"{where}.hidden[{i}]", 1, MAX_WIDTH)
        self.whole(self.get(arch, "n_outputs", where), f"{where}.n_outputs", 1, MAX_WIDTH)
        activation = self.text(arch.get("activation", "relu"), f"{where}.activation", choices=act_mod.names())
        params = self.scalars(_given(arch.get("activation_params"), {}), f"{where}.activation_params")
        for key, value in params.items():
            self.number(value, f"{where}.activation_params.{key}")
        try:
            act_mod.get(activation, **params)
        except (ValueError, TypeError) as exc:
            self.fail(f"{where}.activation_params", f"is invalid ({one_line(exc)})")
        if "dropout" in arch:
            self.number(arch["dropout"], f"{where}.dropout", 0.0, 1.0, hi_open=True)
        if "batchnorm" in arch:
            self.flag(arch["batchnorm"], f"{where}.batchnorm")
        if "seed" in arch:
            self.whole(arch["seed"], f"{where}.seed", 0, 2**64 - 1)
        if "dtype" in arch:
            self.text(arch["dtype"], f"{where}.dtype", choices=("float32", "float64"))
        return arch

    def loss(self, loss, n_outputs: int) -> str:
        """Check the loss and its parameters; returns its output activation (the link)."""
        self.mapping(loss, "loss")
        name = self.text(self.get(loss, "name", "loss"), "loss.name", choices=loss_mod.names())
        params = self.present(loss, "params", {}, "loss.params")
        for key, value in params.items():
            if value is None:
                continue
            if isinstance(value, list):
                if len(value) not in (1, n_outputs):
                    self.fail(f"loss.params.{key}", f"holds {len(value):,} values for {n_outputs:,} outputs")
                for i, v in enumerate(value):
                    self.number(v, f"loss.params.{key}[{i}]")
            else:
                self.number(value, f"loss.params.{key}")
        try:
            fn = loss_mod.get(name, **params)
        except (ValueError, TypeError) as exc:
            self.fail("loss.params", f"is invalid for loss {name!r} ({one_line(exc)})")
        return fn.output_activation

    def outputs(self, task: str, classes, link: str, n_outputs: int) -> None:
        """classes against the task and the output layer; the loss's link against the task."""
        from .data.labels import label_key

        self.listing(classes, "classes", 1, MAX_WIDTH)
        if task in ("binary", "multiclass"):
            for i, c in enumerate(classes):
                if not (isinstance(c, (str, bool)) or (_is_number(c) and math.isfinite(float(c)))):
                    self.fail(f"classes[{i}]", f"must be a string or a finite number, got {_show(c)}")
            keys = [label_key(c) for c in classes]
            if len(set(keys)) != len(keys):
                seen: set = set()
                twice = next(classes[i] for i, k in enumerate(keys) if k in seen or seen.add(k))
                self.fail("classes", f"names the class {_show(twice)} twice")
            if task == "binary" and len(classes) != 2:
                self.fail("classes", f"lists {len(classes)} classes; a binary model has 2")
            if task == "multiclass" and len(classes) < 2:
                self.fail("classes", "lists 1 class; a multiclass model has at least 2")
        else:
            self.texts(classes, "classes", min_len=1)  # the target columns
        links = _LINKS[task]
        if link not in links:
            raise ModelFileError(f"{self.source}: model.json's loss gives {link} outputs, which do not fit task "
                                 f"{task!r} ({' or '.join(links)})")
        wanted = links[link] or len(classes)
        if n_outputs != wanted:
            what = "classes" if task in ("binary", "multiclass") else "target columns"
            raise ModelFileError(f"{self.source}: model.json lists {len(classes)} {what} ({task}, {link} outputs) "
                                 f"but the networks have {_count(n_outputs, 'output')} instead of {wanted:,}")

    def target_scaling(self, where: str, scaling, task: str, n_outputs: int) -> dict | None:
        if scaling is None:
            return None
        if task != "regression":
            self.fail(where, f"is set but the task is {task}; only regression targets are scaled")
        self.mapping(scaling, where)
        for key in ("mean", "sd"):
            values = self.listing(self.get(scaling, key, where), f"{where}.{key}", n_outputs, n_outputs)
            for i, v in enumerate(values):
                self.number(v, f"{where}.{key}[{i}]", 0.0 if key == "sd" else None, lo_open=True)
        return scaling

    def metadata(self, meta: dict) -> None:
        """The fields other commands read from a loaded model (column roles, history, split, baseline, fit)."""
        roles = self.present(meta, "roles", {}, "roles")
        if roles.get("target") is not None:
            self.texts(roles["target"], "roles.target", unique=False)
        for key in ("group", "id", "batch"):
            self.text(roles.get(key), f"roles.{key}", optional=True)
        if roles.get("drop") is not None:
            self.texts(roles["drop"], "roles.drop", unique=False)
        config = self.present(meta, "config", {}, "config")
        self.options({k: v for k, v in config.items() if k != "resolved"}, "config")
        if config.get("resolved") is not None:
            self.options(self.mapping(config["resolved"], "config.resolved"), "config.resolved")
        provenance = self.present(meta, "provenance", {}, "provenance")
        self.text(provenance.get("data_file"), "provenance.data_file", optional=True)
        if provenance.get("versions") is not None:
            self.scalars(provenance["versions"], "provenance.versions")
        extra = self.present(meta, "extra", {}, "extra")
        if extra.get("diagnosis") is not None:
            self.mapping(extra["diagnosis"], "extra.diagnosis")
        self.tuning(extra.get("tuning"))
        history = self.present(meta, "history", [], "history")
        for i, row in enumerate(history):
            self.scalars(row, f"history[{i}]")
        split = self.present(meta, "split", {}, "split")
        for key in ("class_counts_train", "class_counts_val", "batch_counts_train", "batch_counts_val"):
            counts = self.present(split, key, {}, f"split.{key}")
            for label, count in counts.items():
                self.whole(count, _join(f"split.{key}", label), 0, 2**63 - 1)
        baseline = self.present(meta, "baseline", {}, "baseline")
        for key, value in baseline.items():
            if value is not None:
                self.number(value, f"baseline.{key}", 0.0)
        fit = self.present(meta, "fit", {}, "fit")
        for key in ("best_epoch", "epochs_run"):
            if fit.get(key) is not None:
                self.whole(fit[key], f"fit.{key}", 0, 2**63 - 1)
        self.text(fit.get("metric"), "fit.metric", optional=True)
        self.text(fit.get("held_out"), "fit.held_out", optional=True)
        self.scalars(self.present(fit, "held_out_metrics", {}, "fit.held_out_metrics"), "fit.held_out_metrics")
        if fit.get("portfolio") is not None:  # --hidden auto's candidates and their scores (``info`` shows them)
            for i, row in enumerate(self.listing(fit["portfolio"], "fit.portfolio")):
                at = f"fit.portfolio[{i}]"
                self.options({k: v for k, v in self.mapping(row, at).items() if k != "score"}, at)
                if row.get("score") is not None and not _is_number(row["score"]):
                    self.fail(f"{at}.score", f"must be a number or null, got {_kind(row['score'])}")
        interval = fit.get("held_out_interval")
        if interval is not None:  # the main metric's bootstrap interval
            self.mapping(interval, "fit.held_out_interval")
            self.text(interval.get("metric"), "fit.held_out_interval.metric")
            ci = interval.get("ci")
            if ci is not None:
                for i, v in enumerate(self.listing(ci, "fit.held_out_interval.ci", 2, 2)):
                    self.number(v, f"fit.held_out_interval.ci[{i}]")
            self.number(interval.get("level"), "fit.held_out_interval.level", 0.0, 1.0, lo_open=True, hi_open=True)
            self.whole(interval.get("resamples"), "fit.held_out_interval.resamples", 0, 2**31)
            self.whole(interval.get("n_units"), "fit.held_out_interval.n_units", 0, 2**63 - 1)
            self.whole(interval.get("n"), "fit.held_out_interval.n", 0, 2**63 - 1)
            self.text(interval.get("units"), "fit.held_out_interval.units")
        for part in ("held_out_per_target", "held_out_per_label", "held_out_per_class"):
            for i, row in enumerate(self.listing(_given(fit.get(part), []), f"fit.{part}")):
                self.scalars(row, f"fit.{part}[{i}]")
        for i, m in enumerate(self.listing(_given(fit.get("members"), []), "fit.members")):
            self.scalars(m, f"fit.members[{i}]")
        if fit.get("refit") is not None:  # the --refit network's settings (absent before they were stored)
            self.scalars(fit["refit"], "fit.refit")

    def tuning(self, tuning) -> None:
        """``extra.tuning``, what ``tune --refit`` chose and how (``tuning.refit_record``; ``info`` reads it): absent
        in other models; ``grid_size``, ``evaluated``, ``chosen_from``, ``folds`` and ``repeats`` are absent in files
        written before they were recorded."""
        if tuning is None:
            return
        where = "extra.tuning"
        self.mapping(tuning, where)
        grid = self.mapping(self.get(tuning, "grid", where), f"{where}.grid")
        if not grid:
            self.fail(f"{where}.grid", "must name at least one option")
        for key, values in grid.items():
            self.listing(values, _join(f"{where}.grid", key), min_len=1)
        self.mapping(self.get(tuning, "setting", where), f"{where}.setting")
        self.text(tuning.get("metric"), f"{where}.metric")
        self.text(tuning.get("strategy"), f"{where}.strategy", optional=True)
        nested = tuning.get("nested")
        scores = [(tuning, where, "cv_mean"), (tuning, where, "cv_sd")]
        if nested is not None:
            self.scalars(nested, f"{where}.nested")
            scores += [(nested, f"{where}.nested", "mean"), (nested, f"{where}.nested", "sd")]
        for d, at, key in scores:  # null: undefined (NaN, which model.json allows, too)
            if d.get(key) is not None and not _is_number(d[key]):
                self.fail(_join(at, key), f"must be a number or null, got {_kind(d[key])}")
        if nested is not None:
            folds = self.whole(nested.get("folds"), f"{where}.nested.folds", 1, 2**31)
            self.whole(nested.get("scored", folds), f"{where}.nested.scored", 0, folds)
        size = tuning.get("grid_size")
        if size is not None:
            self.whole(size, f"{where}.grid_size", 1, 2**63 - 1)
        evaluated = tuning.get("evaluated")
        if evaluated is not None:
            self.whole(evaluated, f"{where}.evaluated", 1, 2**63 - 1 if size is None else size)
        if tuning.get("chosen_from") is not None:
            self.whole(tuning["chosen_from"], f"{where}.chosen_from", 0, 2**63 - 1 if evaluated is None else evaluated)
        for key in ("folds", "repeats"):
            if tuning.get(key) is not None:
                self.whole(tuning[key], f"{where}.{key}", 1, 2**31)

    def array_shapes(self, shapes, specs: dict[str, _ArraySpec], aliases: dict[str, str]) -> None:
        self.mapping(shapes, "array_shapes")
        for key, spec in specs.items():
            if key not in shapes:
                self.fail("array_shapes", f"lists no shape for the array {key!r} the model needs")
            given = self.listing(shapes[key], _join("array_shapes", key), max_len=8)
            if not all(isinstance(s, int) and not isinstance(s, bool) for s in given) or tuple(given) != spec.shape:
                self.fail(_join("array_shapes", key), f"is {_show(given)} but the model's fields make it "
                          f"{list(spec.shape)}")
        extra = [k for k in shapes if k not in specs]
        if extra and extra[0] in aliases:
            self.fail("array_shapes", f"lists {extra[0]!r}, which array_aliases says is stored as {aliases[extra[0]]!r}")
        if extra:
            self.fail("array_shapes", f"lists {_show(extra[0])}, an array the model does not have")


# ── weights.npz ──────────────────────────────────────────────────────────────────────────────────────────


def _read_arrays(name: str, weights: bytes, specs: dict[str, _ArraySpec]) -> dict[str, np.ndarray]:
    """The arrays of weights.npz (a zip of .npy files), each header checked against its spec before its
    data is read; object arrays are refused from the header, so nothing is ever unpickled."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(weights))
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ModelFileError(f"{name}: weights.npz is not a readable array archive ({one_line(exc)})") from None
    with zf:
        wanted = {f"{key}.npy": key for key in specs}
        entries = [i.filename for i in zf.infolist()]
        if len(set(entries)) != len(entries):
            raise ModelFileError(f"{name}: weights.npz holds an array twice")
        extra = [e for e in entries if e not in wanted]
        if extra:
            raise ModelFileError(f"{name}: weights.npz holds {_show(extra[0])}, an array model.json does not describe")
        missing = [key for entry, key in wanted.items() if entry not in entries]
        if missing:
            raise ModelFileError(f"{name}: weights.npz lacks array {missing[0]}")
        arrays = {}
        for info in zf.infolist():
            key = wanted[info.filename]
            if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                raise ModelFileError(f"{name}: weights.npz stores array {key} compressed or encrypted; mlpcli "
                                     "stores arrays as plain .npy files")
            try:
                arrays[key] = _read_npy(name, key, zf, info, specs[key])
            except ModelFileError:
                raise
            except Exception as exc:  # a bad magic string or header, a short read, a CRC mismatch
                raise ModelFileError(f"{name}: weights.npz array {key} cannot be read "
                                     f"({type(exc).__name__}: {one_line(exc)})") from None
    return arrays


def _read_npy(name: str, key: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo, spec: _ArraySpec) -> np.ndarray:
    fmt = np.lib.format
    with zf.open(info) as fp:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fp, max_header_size=MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fp, max_header_size=MAX_NPY_HEADER)
        else:
            raise ModelFileError(f"{name}: weights.npz array {key} has .npy format version {version}; "
                                 "mlpcli writes 1.0")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in spec.kinds \
                or dtype.itemsize not in spec.itemsizes:
            want = "floats" if spec.kinds == "f" else "integers"
            why = "object arrays are never read: they would need pickle" if dtype.hasobject else "its data is not read"
            raise ModelFileError(f"{name}: weights.npz array {key} has dtype {'object' if dtype.hasobject else dtype.str}"
                                 f", not {want} of {' or '.join(f'{8 * s}' for s in spec.itemsizes)} bits ({why})")
        if tuple(shape) != spec.shape:
            raise ModelFileError(f"{name}: weights.npz array {key} has shape {tuple(shape)}, model.json says {spec.shape}")
        nbytes = spec.size * dtype.itemsize
        if info.file_size != fp.tell() + nbytes:
            raise ModelFileError(f"{name}: weights.npz array {key} holds {info.file_size - fp.tell():,} bytes of "
                                 f"data, its header says {nbytes:,}")
        data = fp.read(nbytes)
    if len(data) != nbytes:
        raise ModelFileError(f"{name}: weights.npz array {key} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(spec.shape, order="F" if fortran else "C")


def _check_values(name: str, arrays: dict[str, np.ndarray], specs: dict[str, _ArraySpec], meta: dict,
                  members: list[dict]) -> None:
    what = {"finite": "finite", "positive": "finite and positive", "nonneg": "finite and non-negative",
            "not_inf": "finite or NaN"}
    for key, spec in specs.items():
        if spec.rule == "index":
            continue
        if not _all_pass(arrays[key], spec.rule):
            raise ModelFileError(f"{name}: weights.npz array {key} holds values that are not {what[spec.rule]} "
                                 "(a model whose training diverged, or a damaged file)")
    _check_trust(name, arrays, meta)
    preprocessing = [("preprocessor/", meta["preprocessing"])]
    preprocessing += [(f"{m['prefix']}preprocessor/", m["preprocessing"]) for m in members if m["preprocessing"]]
    for prefix, pre in preprocessing:
        position = {n: j for j, n in enumerate(pre["feature_names_in"])}
        expected = np.fromiter((position[n] for n in pre["kept_features"]), dtype=np.int64,
                               count=len(pre["kept_features"]))
        if not np.array_equal(arrays[f"{prefix}kept_index"], expected):
            raise ModelFileError(f"{name}: weights.npz array {prefix}kept_index does not match the kept features' "
                                 "positions in feature_names_in")


def _check_trust(name: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Values of the conformal and out-of-distribution arrays beyond finiteness: scores in their ranges,
    classes and members that exist, weights in (0, 1] summing to the patients, calibration scores sorted."""
    from .conformal import SCORE_SLACK

    def bad(key: str, what: str):
        raise ModelFileError(f"{name}: weights.npz array {key} {what} (a damaged or crafted file)")

    c = meta.get("conformal")
    if c is not None:
        a = {k[len("conformal/"):]: v for k, v in arrays.items() if k.startswith("conformal/")}
        if a["aps"].min() < -1 - SCORE_SLACK or a["aps"].max() > SCORE_SLACK:
            bad("conformal/aps", "holds scores outside [-1, 0]")
        if a["lac"].min() < -SCORE_SLACK or a["lac"].max() > 1 + SCORE_SLACK:
            bad("conformal/lac", "holds scores outside [0, 1]")
        if a["label"].min() < 0 or a["label"].max() >= len(meta["classes"]):
            bad("conformal/label", f"holds class indices outside 0-{len(meta['classes']) - 1}")
        if a["member"].min() < 0 or a["member"].max() >= c["members"]:
            bad("conformal/member", f"holds member indices outside 0-{c['members'] - 1}")
        if a["weight"].min() <= 0 or a["weight"].max() > 1:
            bad("conformal/weight", "holds weights outside (0, 1]")
        if not math.isclose(float(a["weight"].sum()), float(c["patients"]), rel_tol=1e-6, abs_tol=1e-6):
            bad("conformal/weight", f"sums to {float(a['weight'].sum()):.6g}, not the {c['patients']:.6g} patients "
                "model.json gives")
    for field_name in ("training_rows", "cohort_rows"):
        rows = arrays.get(field_name)
        if rows is not None and len(rows) > 1 and not (rows[1:] > rows[:-1]).all():
            bad(field_name, "is not sorted and distinct")
    if meta.get("ood") is not None:
        cal = arrays["ood/calibration"]
        if len(cal) > 1 and np.any(np.diff(cal) < 0):
            bad("ood/calibration", "is not sorted")
        if "ood/reference_label" in arrays:
            label = arrays["ood/reference_label"]
            if len(label) and (label.min() < 0 or label.max() >= len(meta["classes"])):
                bad("ood/reference_label", f"holds class indices outside 0-{len(meta['classes']) - 1}")
            if len(label) > 1 and np.any(np.diff(label) < 0):
                bad("ood/reference_label", "is not sorted")
            if np.any(np.diff(arrays["ood/part_calibration"], axis=0) < 0):
                bad("ood/part_calibration", "has a column that is not sorted")


def _all_pass(a: np.ndarray, rule: str) -> bool:
    """True when every entry of ``a`` satisfies ``rule``, checked in chunks so the temporaries stay small."""
    flat = a.reshape(-1, order="A")  # a view for C- and Fortran-ordered arrays alike
    for s in range(0, flat.size, _FINITE_CHUNK):
        c = flat[s:s + _FINITE_CHUNK]
        if rule == "not_inf":
            ok = not np.isinf(c).any()
        else:
            ok = bool(np.isfinite(c).all())
            if ok and rule == "positive":
                ok = bool((c > 0).all())
            elif ok and rule == "nonneg":
                ok = bool((c >= 0).all())
        if not ok:
            return False
    return True


# ── helpers ──────────────────────────────────────────────────────────────────────────────────────────────


def _is_number(v) -> bool:
    """An int or float that converts to a float (no bool; ints beyond a float's range are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if isinstance(v, int):
        return abs(v) <= 2**1023
    return True


def _given(value, default):
    """A field's value, ``default`` when it is absent or null (so an empty list where an object belongs is
    still caught)."""
    return default if value is None else value


def _join(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _kind(v) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and not _is_number(v):
        return "a number beyond a float's range"
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__) + ("" if isinstance(v, (dict, list)) else f" ({_show(v)})")


def _show(v, limit: int = 40) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _mib(n: int) -> str:
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:,.1f} MiB"
