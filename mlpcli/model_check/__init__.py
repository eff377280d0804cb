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

The steps' modules: ``archive`` (1), ``fields`` (2 and 3's shapes), ``arrays`` (3 and 4's reading, 5), ``limits``
(every size above), ``words`` (how a field and a value are named).
"""

from __future__ import annotations

import errno
import hashlib
import io
import lzma
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFileError
from ..fileio import symlink_loop, symlink_loop_message
from .archive import archive_members, check_weights_size, not_a_model, parse_json, streamed_bytes, TRUNCATED
from .arrays import check_values, read_arrays
from .fields import ModelFields, expand_feature_lists
from .archive import ZIP_MAGIC
from .limits import FORMAT, MAX_FEATURES, MAX_JSON_BYTES, SUPPORTED_VERSIONS

__all__ = ["FORMAT", "SUPPORTED_VERSIONS", "MAX_FEATURES", "MAX_JSON_BYTES", "ZIP_MAGIC", "CheckedModel", "expand_feature_lists", "read"]


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
        from .._entry import CLOSED_STREAMS

        if "stdin" in CLOSED_STREAMS:  # reopened on /dev/null by _entry: read, it was "empty (0 bytes; ...)"
            from ..data.sources import closed_stdin

            raise ModelFileError(f"model -: {closed_stdin('a model file', 'it')}")
        if os.isatty(0):
            raise ModelFileError("model - is standard input, which is a terminal: pipe a model file into it (zcat "
                                 "m.mlp.gz | mlpcli predict - DATA) or give its path")
        try:
            return read("/dev/stdin")
        except ModelFileError as exc:  # named as the user gave it
            raise ModelFileError(str(exc).replace("/dev/stdin", "- (standard input)")) from None
    if not os.path.exists(name):
        if symlink_loop(name):
            raise ModelFileError(symlink_loop_message(f"model file {name}", "model file"))
        raise ModelFileError(f"model file not found: {name}")
    if os.path.isdir(name):
        raise ModelFileError(f"{name} is a directory, not a model file")
    source = streamed_bytes(name)
    try:
        with zipfile.ZipFile(name if source is None else io.BytesIO(source)) as zf:
            infos = archive_members(name, zf)
            raw_meta = zf.read(infos["model.json"])
            meta = parse_json(name, raw_meta)
            del raw_meta
            ModelFields(name).header(meta)
            members, specs, aliases = ModelFields(name).model(meta)
            stored = {key: spec for key, spec in specs.items() if key not in aliases}
            check_weights_size(name, infos["weights.npz"], stored)
            weights = zf.read(infos["weights.npz"])
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(f"{name} is not a readable mlpcli model file: {not_a_model(name, source, exc)}") from None
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # a seek to where the damaged index says a member starts
            raise ModelFileError(f"{name} is not a readable mlpcli model file: it is {TRUNCATED}") from None
        raise ModelFileError(f"{name} cannot be read ({exc.strerror or exc})") from None
    except (zlib.error, lzma.LZMAError, struct.error, NotImplementedError, RuntimeError, ValueError) as exc:
        # what a damaged archive raises: zlib and LZMA errors, short headers, an unknown compression method, an
        # encryption flag, bad member names; not a bug of this code (a NameError, a TypeError), which would be
        # blamed on the user's file and hidden from --debug
        raise ModelFileError(f"{name} is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    if hashlib.sha256(weights).hexdigest() != meta["weights_sha256"]:
        raise ModelFileError(f"{name}: weights.npz does not match the checksum in model.json (file modified or damaged)")
    arrays = read_arrays(name, weights, stored)
    del weights
    arrays.update({alias: arrays[target] for alias, target in aliases.items()})  # read-only: shared safely
    check_values(name, arrays, specs, meta, members)
    return CheckedModel(source=name, meta=meta, members=members, arrays=arrays)
