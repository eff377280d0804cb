"""weights.npz's arrays: each .npy header read before its data (no object array is unpickled), against the
array model.json implies, then the values (finite, positive, sorted, indices in range)."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np

from ..errors import ModelFileError, one_line
from .fields import ArraySpec
from .limits import MAX_NPY_HEADER
from .words import short_repr


_FINITE_CHUNK = 2**20  # entries checked at a time (the boolean temporary stays 1 MiB)


def read_arrays(name: str, weights: bytes, specs: dict[str, ArraySpec]) -> dict[str, np.ndarray]:
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
            raise ModelFileError(f"{name}: weights.npz holds {short_repr(extra[0])}, an array model.json does not describe")
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
            except (ModelFileError, MemoryError):  # out of memory is the job's limit, not a damaged file
                raise
            except Exception as exc:  # a bad magic string or header, a short read, a CRC mismatch
                raise ModelFileError(f"{name}: weights.npz array {key} cannot be read "
                                     f"({type(exc).__name__}: {one_line(exc)})") from None
    return arrays


def _read_npy(name: str, key: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo, spec: ArraySpec) -> np.ndarray:
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


def check_values(name: str, arrays: dict[str, np.ndarray], specs: dict[str, ArraySpec], meta: dict,
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
    from ..conformal import SCORE_SLACK

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
