"""Crafted and broken model files: `predict` refuses every one with a one-line error naming the file (exit 1,
no traceback, no output file), before allocating anything proportional to what the file claims.

Two small models are trained once (a 2-member multiclass ensemble with batchnorm, each member with its own
preprocessing, and a one-network regression model) and tampered with: one defect per case, with the
checksum recomputed so that only the defect under test is wrong."""

import hashlib
import io
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run
from mlpcli import model_io
from mlpcli.config import TrainOptions
from mlpcli.errors import ModelFileError
from mlpcli.pipeline import train
from model_files import model_parts, with_feature_lists, without_kurtoses, without_offsets, without_unclipped_sds
from tables import write_table

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # no NumPy warning on the way to a refusal


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    data = write_table(tmp, n_patients=20)
    paths = {"data": data, "regression_data": write_table(tmp, "reg.csv", task="regression", n_patients=20)}
    for key, table, options in (
            ("ensemble", data, TrainOptions(hidden=[8], epochs=3, folds=2, batchnorm=True, calibrate=False)),
            ("regression", paths["regression_data"], TrainOptions(hidden=[4], epochs=3, folds=1))):
        paths[key] = tmp / f"{key}.mlp"
        model_io.save(train(table, options).model, paths[key])
    return paths


def _npz(arrays: dict, compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _write(path, meta=None, weights: bytes | None = None, *, json_bytes: bytes | None = None, members=None,
           compression=zipfile.ZIP_DEFLATED):
    """A model file of ``meta`` and ``weights`` with the checksum made to match (so that only the defect
    under test is wrong); ``json_bytes`` replaces model.json as it is, ``members`` adds archive members."""
    if meta is not None and weights is not None:
        meta["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("model.json", json_bytes if json_bytes is not None else json.dumps(meta))
        zf.writestr("weights.npz", weights if weights is not None else b"")
        for name, payload in (members or []):
            zf.writestr(name, payload)
    return str(path)


def _assert_refused(path, data, tmp_path, *needles):
    """`predict` on the file: exit 1, one line naming the file and each needle, no traceback, no output."""
    out = tmp_path / "pred.csv"
    res = run(["predict", str(path), data, "-o", str(out)])
    assert res.exit_code == 1, res.output
    text = res.output.strip()
    assert "Traceback" not in text and "internal error" not in text, text
    assert len(text.splitlines()) == 1 and text.startswith("Error:"), text
    assert os.path.basename(str(path)) in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    with pytest.raises(ModelFileError):
        model_io.load(path)
    return text


def test_the_untampered_models_load_and_predict(models, tmp_path):
    """The cases below tamper with these files, so they must be valid to begin with; a re-zipped copy
    (other timestamps, np.savez's layout) and arrays stored in Fortran order load alike."""
    for key, table in (("ensemble", models["data"]), ("regression", models["regression_data"])):
        res = run(["predict", str(models[key]), table, "-o", str(tmp_path / f"{key}.csv"), "-q"])
        assert res.exit_code == 0, res.output
    meta, arrays = model_parts(models["ensemble"])
    arrays = {k: np.asfortranarray(v) for k, v in arrays.items()}
    copy = _write(tmp_path / "copy.mlp", meta, _npz(arrays))
    X = np.random.default_rng(0).normal(size=(5, 12))
    np.testing.assert_array_equal(model_io.load(copy).predict_output(X), model_io.load(models["ensemble"]).predict_output(X))


# ── model.json fields ────────────────────────────────────────────────────────────────────────────────────

def _arch(m, **changes):
    m["members"][0]["architecture"].update(changes)


def _pre(m, **changes):
    m["members"][0]["preprocessing"]["config"].update(changes)


def _set(key, value):
    return lambda m: m.__setitem__(key, value)


FIELD_CASES = {
    # task and classes
    "unknown task": (_set("task", "ordinal"), "task"),
    "task a number": (_set("task", 3), "task"),
    "no task": (lambda m: m.pop("task"), "task"),
    "empty class list": (_set("classes", []), "classes"),
    "fewer classes than outputs": (lambda m: m.__setitem__("classes", m["classes"][:2]), "outputs"),
    "more classes than outputs": (lambda m: m["classes"].append("typeD"), "outputs"),
    "a class twice": (_set("classes", ["typeA", "typeA", "typeB"]), "twice"),
    "1 and 1.0 are one class": (_set("classes", [1, 1.0, 2]), "twice"),
    "classes a string": (_set("classes", "typeA"), "classes"),
    "a class an object": (_set("classes", [{"a": 1}, "typeB", "typeC"]), "classes[0]"),
    "a class NaN": (_set("classes", [float("nan"), "typeB", "typeC"]), "classes[0]"),
    # features
    "a feature twice": (lambda m: m["feature_names"].__setitem__(1, m["feature_names"][0]), "feature_names"),
    "a feature a number": (lambda m: m["feature_names"].__setitem__(0, 7), "feature_names[0]"),
    "features renamed": (lambda m: with_feature_lists(m)["feature_names"].__setitem__(0, "other"), "feature_names"),
    "features an object": (_set("feature_names", {"f00": 0}), "feature_names"),
    # architecture
    "40,000-wide layers": (lambda m: _arch(m, hidden=[40000, 40000]), "array_shapes"),
    "a zero-width layer": (lambda m: _arch(m, hidden=[0]), "hidden[0]"),
    "a negative width": (lambda m: _arch(m, hidden=[-8]), "hidden[0]"),
    "a width as text": (lambda m: _arch(m, hidden=["8"]), "hidden[0]"),
    "a fractional width": (lambda m: _arch(m, hidden=[8.5]), "hidden[0]"),
    "a width true": (lambda m: _arch(m, hidden=[True]), "hidden[0]"),
    "a width of 2**40": (lambda m: _arch(m, hidden=[2**40]), "hidden[0]"),
    "hidden a number": (lambda m: _arch(m, hidden=8), "hidden"),
    "too many layers": (lambda m: _arch(m, hidden=[8] * 10_000), "hidden"),
    "inputs disagree with the preprocessing": (lambda m: _arch(m, n_inputs=11), "n_inputs"),
    "inputs as text": (lambda m: _arch(m, n_inputs="12"), "n_inputs"),
    "zero outputs": (lambda m: _arch(m, n_outputs=0), "n_outputs"),
    "outputs disagree between members": (lambda m: _arch(m, n_outputs=4), "n_outputs"),
    "unknown activation": (lambda m: _arch(m, activation="swish"), "activation"),
    "activation a number": (lambda m: _arch(m, activation=1), "activation"),
    "activation parameter as text": (lambda m: _arch(m, activation="leaky_relu", activation_params={"alpha": "x"}),
                                     "activation_params"),
    "unknown activation parameter": (lambda m: _arch(m, activation_params={"beta": 1.0}), "activation_params"),
    "dropout 1": (lambda m: _arch(m, dropout=1.0), "dropout"),
    "dropout as text": (lambda m: _arch(m, dropout="0.3"), "dropout"),
    "batchnorm as text": (lambda m: _arch(m, batchnorm="yes"), "batchnorm"),
    "negative seed": (lambda m: _arch(m, seed=-1), "seed"),
    "unknown dtype": (lambda m: _arch(m, dtype="float16"), "dtype"),
    "unknown architecture setting": (lambda m: _arch(m, wings=2), "wings"),
    "architecture missing": (lambda m: m["members"][0].pop("architecture"), "architecture"),
    "architecture a list": (lambda m: m["members"][0].__setitem__("architecture", [12, 8, 3]), "architecture"),
    # members
    "no members": (_set("members", []), "members"),
    "members an object": (_set("members", {"0": {}}), "members"),
    "a member a number": (lambda m: m["members"].__setitem__(0, 1), "members[0]"),
    "shares_preprocessing as text": (lambda m: m["members"][0].__setitem__("shares_preprocessing", "no"),
                                     "shares_preprocessing"),
    "member preprocessing missing": (lambda m: m["members"][0].pop("preprocessing"), "preprocessing"),
    "too many members": (lambda m: m.__setitem__("members", m["members"] * 600), "members"),
    # preprocessing
    "preprocessing version": (lambda m: m["preprocessing"].__setitem__("version", 2), "version"),
    "unknown preprocessing setting": (lambda m: _pre(m, zscore=True), "zscore"),
    "unknown impute method": (lambda m: _pre(m, impute="mode"), "impute"),
    "unknown scaling": (lambda m: _pre(m, scaling="minmax"), "scaling"),
    "top_var 0": (lambda m: _pre(m, top_var=0), "top_var"),
    "log1p as text": (lambda m: _pre(m, log1p="yes"), "log1p"),
    "a kept feature not an input": (lambda m: with_feature_lists(m)["preprocessing"]["kept_features"].append("zzz"),
                                    "kept_features"),
    "no kept features": (lambda m: m["preprocessing"].__setitem__("kept_features", []), "kept_features"),
    "preprocessing a string": (_set("preprocessing", "robust"), "preprocessing"),
    "preprocessing version as text": (lambda m: m["preprocessing"].__setitem__("version", "1"), "version"),
    "warnings a number": (lambda m: m["preprocessing"].__setitem__("warnings", 3), "preprocessing.warnings"),
    "a dropped feature a number": (lambda m: m["preprocessing"].__setitem__("dropped_constant", [1]),
                                   "dropped_constant[0]"),
    "member fitted on other features": (lambda m: with_feature_lists(m)["members"][1]["preprocessing"][
                                            "feature_names_in"].reverse(),
                                        "members[1].preprocessing.feature_names_in"),
    "member keeps a feature the model does not": (lambda m: with_feature_lists(m)["preprocessing"].__setitem__(
        "kept_features", m["preprocessing"]["kept_features"][1:]), "kept_features"),
    "no features": (_set("feature_names", []), "feature_names"),
    "target names a string": (_set("target_names", "label"), "target_names"),
    "loss parameters a list": (lambda m: m["loss"].__setitem__("params", [0.1]), "loss.params"),
    "activation parameters a list": (lambda m: _arch(m, activation_params=[0.1]), "activation_params"),
    "best epoch as text": (lambda m: m["fit"].__setitem__("best_epoch", "3"), "fit.best_epoch"),
    "class counts as a list": (lambda m: m["split"].__setitem__("class_counts_val", [30, 30, 30]),
                               "class_counts_val"),
    # loss, temperature, scaling
    "unknown loss": (_set("loss", {"name": "hubris", "params": {}}), "loss"),
    "loss parameter as text": (lambda m: m["loss"]["params"].__setitem__("label_smoothing", "x"), "label_smoothing"),
    "loss of another task": (_set("loss", {"name": "mse", "params": {}}), "task"),
    "class weights for 2 of 3 outputs": (lambda m: m["loss"]["params"].__setitem__("class_weight", [1.0, 2.0]),
                                         "class_weight"),
    "loss a string": (_set("loss", "ce"), "loss"),
    "temperature 0": (_set("temperature", 0), "temperature"),
    "negative temperature": (_set("temperature", -1.5), "temperature"),
    "temperature as text": (_set("temperature", "1.2"), "temperature"),
    "temperature 1e9": (_set("temperature", 1e9), "temperature"),
    "temperature NaN": (_set("temperature", float("nan")), "temperature"),
    "target scaling on a classifier": (lambda m: m["members"][0].__setitem__("target_scaling", {"mean": [0.0] * 3,
                                                                                                "sd": [1.0] * 3}),
                                       "target_scaling"),
    # format and bookkeeping
    "format version as text": (_set("format_version", "2"), "version"),
    "format version 2.0": (_set("format_version", 2.0), "version"),
    "array_shapes missing": (lambda m: m.pop("array_shapes"), "array_shapes"),
    "an extra array shape": (lambda m: m["array_shapes"].__setitem__("members/9/network/dense0.W", [3, 3]),
                             "array_shapes"),
    "an array shape as text": (lambda m: m["array_shapes"].__setitem__("preprocessor/center", "12"), "array_shapes"),
    # metadata other commands read
    "roles a list": (_set("roles", ["label"]), "roles"),
    "group role a number": (lambda m: m["roles"].__setitem__("group", 5), "roles.group"),
    "target roles as text": (lambda m: m["roles"].__setitem__("target", "label"), "roles.target"),
    "history a string": (_set("history", "none"), "history"),
    "a history row a list": (_set("history", [[1, 0.5]]), "history[0]"),
    "a history value an object": (_set("history", [{"epoch": {"n": 1}}]), "history[0].epoch"),
    "a history value 1e400": (_set("history", [{"epoch": 10**400}]), "history[0].epoch"),
    "batch counts as text": (lambda m: m["split"].__setitem__("batch_counts_train", {"B1": "many"}),
                             "batch_counts_train"),
    "negative baseline": (_set("baseline", {"val_loss": -1.0}), "baseline.val_loss"),
    "fit metric a number": (lambda m: m["fit"].__setitem__("metric", 3), "fit.metric"),
    "fit members nested": (lambda m: m["fit"].__setitem__("members", [{"member": [1]}]), "fit.members[0]"),
    "config a list": (_set("config", []), "config"),
    "provenance a string": (_set("provenance", "lab"), "provenance"),
    "extra a list": (_set("extra", []), "extra"),
    # summary fields info shows, against their ranges and each other ("balanced accuracy 7.500", "A (1), B (2) ...
    # in the 400 training rows", "many samples", "best epochs 91, 143" for 5 members, a history cell of text)
    "a held-out metric out of its range": (lambda m: m["fit"]["held_out_metrics"].__setitem__("balanced_accuracy", 7.5),
                                           "fit.held_out_metrics.balanced_accuracy"),
    "class counts not adding up to the rows": (lambda m: m["split"].__setitem__(
        "class_counts_train", {c: 1 for c in m["classes"]}), "split.class_counts_train"),
    "a sample count as text": (lambda m: m["provenance"].__setitem__("n_samples", "many"), "provenance.n_samples"),
    "fewer member rows than members": (lambda m: m["fit"].__setitem__("members", m["fit"]["members"][:1]),
                                       "fit.members"),
    "a history cell of text": (lambda m: m["history"][1].__setitem__("val_loss", "abc"), "history[1].val_loss"),
    "an unknown verdict": (lambda m: m["extra"]["diagnosis"].__setitem__("label", "great"), "extra.diagnosis.label"),
}


@pytest.mark.parametrize("case", list(FIELD_CASES))
def test_a_wrong_field_is_refused_naming_it(models, tmp_path, case):
    tamper, needle = FIELD_CASES[case]
    meta, arrays = model_parts(models["ensemble"])
    tamper(meta)
    path = _write(tmp_path / "bad.mlp", meta, _npz(arrays))
    _assert_refused(path, models["data"], tmp_path, needle)


REGRESSION_CASES = {
    "target SD 0": (lambda s: s.__setitem__("sd", [0.0]), "target_scaling.sd[0]"),
    "target mean NaN": (lambda s: s.__setitem__("mean", [float("nan")]), "target_scaling.mean[0]"),
    "target SD for 2 outputs": (lambda s: s.__setitem__("sd", [1.0, 1.0]), "target_scaling.sd"),
    "target SD missing": (lambda s: s.pop("sd"), "sd"),
    "target mean as text": (lambda s: s.__setitem__("mean", ["50"]), "target_scaling.mean[0]"),
}


@pytest.mark.parametrize("case", list(REGRESSION_CASES))
def test_a_wrong_target_scaling_is_refused(models, tmp_path, case):
    tamper, needle = REGRESSION_CASES[case]
    meta, arrays = model_parts(models["regression"])
    tamper(meta["members"][0]["target_scaling"])
    _assert_refused(_write(tmp_path / "bad.mlp", meta, _npz(arrays)), models["regression_data"], tmp_path, needle)


def test_regression_target_columns_must_match_the_outputs(models, tmp_path):
    meta, arrays = model_parts(models["regression"])
    meta["classes"] = ["label", "other"]
    _assert_refused(_write(tmp_path / "bad.mlp", meta, _npz(arrays)), models["regression_data"], tmp_path, "outputs")


def test_a_format_1_file_is_checked_as_strictly(models, tmp_path):
    """Format 1 (one network, arrays under network/ and preprocessor/) goes through the same checks."""
    meta, arrays = model_parts(models["regression"])
    without_offsets(meta, arrays)  # format 10's
    without_unclipped_sds(meta, arrays)  # format 11's
    without_kurtoses(meta, arrays)  # format 17's
    v1 = {k.removeprefix("members/0/"): v for k, v in arrays.items() if k != "training_rows"}
    meta.pop("training_rows", None)  # format 8's
    entry = meta.pop("members")[0]
    with_feature_lists(meta)  # as format 1 wrote them
    meta.update(format_version=1, architecture=entry["architecture"], array_shapes={k: list(v.shape) for k, v in v1.items()})
    meta.pop("temperature")
    meta["extra"]["target_scaling"] = entry["target_scaling"]
    good = _write(tmp_path / "v1.mlp", meta, _npz(v1))
    assert model_io.load(good).members[0].target_scaling == entry["target_scaling"]
    meta["extra"]["target_scaling"] = {"mean": [1.0], "sd": [-2.0]}
    _assert_refused(_write(tmp_path / "bad.mlp", meta, _npz(v1)), models["regression_data"], tmp_path,
                    "extra.target_scaling.sd[0]")
    meta["extra"]["target_scaling"] = entry["target_scaling"]
    meta["architecture"]["hidden"] = [40000]
    _assert_refused(_write(tmp_path / "bad2.mlp", meta, _npz(v1)), models["regression_data"], tmp_path,
                    "array_shapes")


# ── weights.npz ──────────────────────────────────────────────────────────────────────────────────────────

def _value(key, index, value):
    def tamper(arrays):
        arrays[key] = arrays[key].copy()
        arrays[key].flat[index] = value
    return tamper


ARRAY_CASES = {
    "a NaN weight": (_value("members/0/network/dense0.W", 5, np.nan), "dense0.W"),
    "an infinite bias": (_value("members/1/network/dense1.b", 0, np.inf), "dense1.b"),
    "a NaN centre": (_value("preprocessor/center", 2, np.nan), "preprocessor/center"),
    "a zero scale": (_value("members/0/preprocessor/scale", 3, 0.0), "scale"),
    "a negative scale": (_value("members/1/preprocessor/scale", 3, -1.0), "scale"),
    "an infinite scale": (_value("preprocessor/scale", 0, np.inf), "scale"),
    "a negative running variance": (_value("members/0/network/batchnorm0.running_var", 1, -0.5), "running_var"),
    "a NaN running mean": (_value("members/1/network/batchnorm0.running_mean", 1, np.nan), "running_mean"),
    "a negative training SD": (_value("preprocessor/train_sd", 1, -1.0), "train_sd"),
    "an infinite impute value": (_value("preprocessor/impute_values", 1, np.inf), "impute_values"),
    "kept indices swapped": (lambda a: a.__setitem__("preprocessor/kept_index", a["preprocessor/kept_index"][::-1].copy()),
                             "kept_index"),
    "a kept index out of range": (_value("members/0/preprocessor/kept_index", 0, 10**9), "kept_index"),
    "a weight matrix transposed": (lambda a: a.__setitem__("members/0/network/dense1.W",
                                                           a["members/0/network/dense1.W"].T.copy()), "dense1.W"),
    "float64 weights in a float32 network": (lambda a: a.__setitem__("members/0/network/dense0.W",
                                                                     a["members/0/network/dense0.W"].astype(np.float64)),
                                             "dense0.W"),
    "integer weights": (lambda a: a.__setitem__("members/0/network/dense0.W",
                                                a["members/0/network/dense0.W"].view(np.int32)), "dtype"),
    "float16 statistics": (lambda a: a.__setitem__("preprocessor/center", a["preprocessor/center"].astype(np.float16)),
                           "center"),
    "a complex array": (lambda a: a.__setitem__("preprocessor/train_mean", a["preprocessor/train_mean"].astype(complex)),
                        "train_mean"),
    "a missing array": (lambda a: a.pop("members/1/network/dense1.b"), "weights.npz"),
    "an extra array": (lambda a: a.__setitem__("members/1/network/dense9.W", np.zeros((3, 3), np.float32)), "weights.npz"),
}


@pytest.mark.parametrize("case", list(ARRAY_CASES))
def test_a_wrong_array_is_refused_naming_it(models, tmp_path, case):
    tamper, needle = ARRAY_CASES[case]
    meta, arrays = model_parts(models["ensemble"])
    tamper(arrays)
    _assert_refused(_write(tmp_path / "bad.mlp", meta, _npz(arrays)), models["data"], tmp_path, needle)


def test_object_arrays_are_never_unpickled(models, tmp_path, monkeypatch):
    import pickle

    def never(*args, **kwargs):
        raise AssertionError("a model file was unpickled")

    meta, arrays = model_parts(models["ensemble"])
    evil = np.empty(arrays["members/0/network/dense0.W"].shape, dtype=object)
    evil[...] = "payload"
    arrays["members/0/network/dense0.W"] = evil
    path = _write(tmp_path / "evil.mlp", meta, _npz(arrays))
    monkeypatch.setattr(pickle, "load", never)
    monkeypatch.setattr(pickle, "loads", never)
    _assert_refused(path, models["data"], tmp_path, "dense0.W", "pickle")


def test_compressed_or_damaged_npy_members_are_refused(models, tmp_path):
    meta, arrays = model_parts(models["ensemble"])
    _assert_refused(_write(tmp_path / "c.mlp", meta, _npz(arrays, compressed=True)), models["data"], tmp_path,
                    "compressed")
    weights = bytearray(_npz(arrays))
    at = weights.index(b"\x93NUMPY")
    weights[at + 1:at + 6] = b"XXXXX"  # not a .npy magic string any more
    _assert_refused(_write(tmp_path / "m.mlp", meta, bytes(weights)), models["data"], tmp_path, "weights.npz")
    _assert_refused(_write(tmp_path / "z.mlp", meta, b"not a zip at all"), models["data"], tmp_path, "weights.npz")


def _claiming_npy(shape, dtype="<f4") -> bytes:
    """A .npy header claiming ``shape`` followed by 64 bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue() + bytes(64)


@pytest.fixture(scope="module")
def crafted(models, tmp_path_factory):
    """Files claiming far more than they hold: 40,000 x 40,000 hidden layers (in model.json alone, and with
    .npy headers to match), and zip bombs whose members inflate to 320 MiB."""
    tmp = tmp_path_factory.mktemp("crafted")
    meta, arrays = model_parts(models["ensemble"])
    big = 40_000
    for i in range(2):
        meta["members"][i]["architecture"].update(hidden=[big, big], batchnorm=False)
        shapes = {"dense0.W": (big, 12), "dense0.b": (big,), "dense1.W": (big, big), "dense1.b": (big,),
                  "dense2.W": (3, big), "dense2.b": (3,)}
        for k in [k for k in arrays if k.startswith(f"members/{i}/network/")]:
            arrays.pop(k)
        for k, shape in shapes.items():
            meta["array_shapes"][f"members/{i}/network/{k}"] = list(shape)
        meta["array_shapes"] = {k: v for k, v in meta["array_shapes"].items()
                                if not k.startswith(f"members/{i}/network/batchnorm")}
    paths = {"claims": _write(tmp / "claims.mlp", meta, _npz(arrays))}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in arrays.items():
            zf.writestr(f"{k}.npy", _npy(v))
        for k, shape in meta["array_shapes"].items():
            if k not in arrays:
                zf.writestr(f"{k}.npy", _claiming_npy(shape))
    paths["headers"] = _write(tmp / "headers.mlp", meta, buf.getvalue())

    size = 320 * 2**20
    for name in ("model.json", "weights.npz"):
        path = tmp / f"bomb-{name.split('.')[0]}.mlp"
        with zipfile.ZipFile(path, "w") as zf:
            for member in ("model.json", "weights.npz"):
                info = zipfile.ZipInfo(member)
                info.compress_type = zipfile.ZIP_DEFLATED
                info._compresslevel = 1
                with zf.open(info, "w", force_zip64=True) as fh:
                    if member == name:
                        chunk = b" " * 2**20
                        for _ in range(size // len(chunk)):
                            fh.write(chunk)
                    else:
                        fh.write(b"{}")
        paths[f"bomb-{name}"] = str(path)
    return paths


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


@pytest.mark.parametrize("case,needle", [("claims", "weights.npz holds"), ("headers", "weights.npz holds"),
                                         ("bomb-model.json", "model.json"), ("bomb-weights.npz", "zip bomb")])
def test_files_claiming_more_than_they_hold_are_refused(models, crafted, tmp_path, case, needle):
    _assert_refused(crafted[case], models["data"], tmp_path, needle)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak memory from /proc")
def test_crafted_files_are_refused_within_300_mb(models, crafted, tmp_path):
    """One process runs `predict` on every crafted file (claiming 40,000 x 40,000 layers, 320 MiB members);
    its peak memory, interpreter and imports included, stays under 300 MB."""
    # The peak is the kernel's high-water mark of the child's own memory (VmHWM): ru_maxrss would carry over
    # the resident size of the forking pytest process, which Linux keeps across exec.
    script = (
        "import json, re, sys\n"
        "from mlpcli.cli import cli\n"
        "codes = []\n"
        "for path in sys.argv[3:]:\n"
        "    try:\n"
        "        cli.main(['predict', path, sys.argv[1], '-o', sys.argv[2]], standalone_mode=True)\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "status = open('/proc/self/status').read()\n"
        "peak = int(re.search(r'VmHWM:\\s*(\\d+) kB', status).group(1))\n"
        "print(json.dumps({'codes': codes, 'maxrss_kb': peak}))\n"
    )
    files = [crafted[k] for k in ("claims", "headers", "bomb-model.json", "bomb-weights.npz")]
    proc = subprocess.run([sys.executable, "-c", script, models["data"], str(tmp_path / "p.csv"), *files],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["codes"] == [1, 1, 1, 1], proc.stderr
    assert report["maxrss_kb"] < 300 * 1024, report
    assert "Traceback" not in proc.stderr


# ── the archive and model.json as a whole ────────────────────────────────────────────────────────────────

def test_archive_and_json_defects_are_refused(models, tmp_path):
    meta, arrays = model_parts(models["ensemble"])
    weights = _npz(arrays)
    meta["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    text = json.dumps(meta).encode()
    data = models["data"]
    cases = [
        (dict(json_bytes=b"\xff\xfe" + text), "UTF-8"),
        (dict(json_bytes=text.decode().encode("utf-16")), "UTF-8"),
        (dict(json_bytes=b"[1, 2, 3]"), "format tag"),
        (dict(json_bytes=b'"mlpcli-model"'), "format tag"),
        (dict(json_bytes=b"[" * 100_000 + b"]" * 100_000), "not valid JSON"),
        (dict(json_bytes=b'{"format": "mlpcli-model", "format_version": 1' + b"0" * 5000 + b"}"), "not valid JSON"),
        (dict(json_bytes=b"{" + b"{}," * 1_100_000 + b"}", compression=zipfile.ZIP_STORED), "objects and lists"),
        (dict(json_bytes=text + b" " * (33 * 2**20), compression=zipfile.ZIP_STORED), "MiB"),
        (dict(json_bytes=text, members=[("readme.txt", b"hi")]), "3 members"),
        (dict(json_bytes=text, compression=zipfile.ZIP_BZIP2), "compression method"),
    ]
    for i, (kwargs, needle) in enumerate(cases):
        path = _write(tmp_path / f"bad{i}.mlp", None, weights, **kwargs)
        _assert_refused(path, data, tmp_path, needle)
    with pytest.warns(UserWarning, match="Duplicate name"):
        dup = _write(tmp_path / "dup.mlp", None, weights, json_bytes=text, members=[("model.json", b"{}")])
    _assert_refused(dup, data, tmp_path, "model.json twice")


def test_the_checksum_guards_the_weights(models, tmp_path):
    meta, arrays = model_parts(models["ensemble"])
    weights = _npz(arrays)
    for i, (digest, needle) in enumerate([(hashlib.sha256(weights + b"x").hexdigest(), "checksum"),
                                          (5, "weights_sha256"), ("ab" * 40, "weights_sha256")]):
        meta["weights_sha256"] = digest
        path = tmp_path / f"sum{i}.mlp"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("model.json", json.dumps(meta))
            zf.writestr("weights.npz", weights)
        _assert_refused(path, models["data"], tmp_path, needle)


def test_every_command_that_loads_a_model_refuses_it_alike(models, tmp_path):
    """evaluate, gradcheck --model and diagnose go through the same loader."""
    meta, arrays = model_parts(models["ensemble"])
    arrays["members/0/network/dense0.W"][0, 0] = np.nan
    path = _write(tmp_path / "nan.mlp", meta, _npz(arrays))
    for args in (["evaluate", path, models["data"]], ["gradcheck", "--model", path, "--data", models["data"]],
                 ["diagnose", path]):
        res = run(args)
        assert res.exit_code == 1, (args, res.output)
        text = res.output.strip()
        assert "Traceback" not in text and text.startswith("Error:") and len(text.splitlines()) == 1, (args, text)
        assert "nan.mlp" in text and "dense0.W" in text, (args, text)
    assert math.isnan(np.float32(arrays["members/0/network/dense0.W"][0, 0]))


def test_save_refuses_a_model_that_load_would_refuse(models, tmp_path, monkeypatch):
    """model.json's size limit holds on both sides: a model too large to load is never written."""
    from mlpcli import model_check

    model = model_io.load(models["ensemble"])
    monkeypatch.setattr(model_check, "MAX_JSON_BYTES", 4096)
    target = tmp_path / "big.mlp"
    with pytest.raises(ModelFileError, match="more than the 0 MiB a model file may hold.*12 input features 7 times"):
        model_io.save(model, target)
    assert not target.exists() and os.listdir(tmp_path) == []


# ── the prediction sets' calibration and the out-of-distribution basis (format 3) ──────────────────────────


def _field(key, value):
    """Set model.json's ``key`` ("conformal.source") to ``value``."""
    head, tail = key.split(".")
    return lambda m, a: m[head].__setitem__(tail, value)


def _array(key, index, value):
    def tamper(m, a):
        a[key] = a[key].copy()
        a[key][index] = value
    return tamper


def _resize(key, n):
    """Both the array and what model.json says of it: only their agreement with the rest is wrong."""
    def tamper(m, a):
        a[key] = np.resize(a[key], n)
    return tamper


def _in_version_2(m, a):
    without_offsets(m, a)
    without_unclipped_sds(m, a)
    without_kurtoses(m, a)
    with_feature_lists(m)["format_version"] = 2


def _unsorted(m, a):
    a["ood/calibration"] = a["ood/calibration"][::-1].copy()


TRUST_CASES = {
    "conformal a list": (lambda m, a: m.__setitem__("conformal", []), "'conformal'"),
    "conformal without n": (lambda m, a: m["conformal"].pop("n"), "n"),
    "conformal.n 0": (_field("conformal.n", 0), "conformal.n"),
    "conformal.n beyond the limit": (_field("conformal.n", 10**7), "conformal.n"),
    "conformal.n not the arrays' length": (_field("conformal.n", 7), "conformal"),
    "conformal.n_rows below n": (_field("conformal.n_rows", 1), "conformal.n_rows"),
    "an unknown source": (_field("conformal.source", "magic"), "conformal.source"),
    "zero members": (_field("conformal.members", 0), "conformal.members"),
    "patients not the weights' sum": (_field("conformal.patients", 3.5), "conformal/weight"),
    "patients NaN": (_field("conformal.patients", float("nan")), "conformal.patients"),
    "weighted as text": (_field("conformal.weighted", "yes"), "conformal.weighted"),
    "an APS score above 0": (_array("conformal/aps", 0, 0.5), "conformal/aps"),
    "a LAC score NaN": (_array("conformal/lac", 1, np.nan), "conformal/lac"),
    "a LAC score above 1": (_array("conformal/lac", 1, 7.0), "conformal/lac"),
    "a class that does not exist": (_array("conformal/label", 0, 99), "conformal/label"),
    "a negative class": (_array("conformal/label", 0, -1), "conformal/label"),
    "a member that does not exist": (_array("conformal/member", 0, 50), "conformal/member"),
    "a zero weight": (_array("conformal/weight", 0, 0.0), "conformal/weight"),
    "a weight above 1": (_array("conformal/weight", 0, 2.0), "conformal/weight"),
    "a label array of floats": (lambda m, a: a.__setitem__("conformal/label", a["conformal/label"].astype(float)),
                                "conformal/label"),
    "a scores array too short": (_resize("conformal/aps", 3), "conformal/aps"),
    "conformal in a version 2 file": (_in_version_2, "version 3"),
    "ood.n_features not the kept features": (_field("ood.n_features", 5), "ood.n_features"),
    "ood.n_components beyond the limit": (_field("ood.n_components", 500), "ood.n_components"),
    "ood.n_reference 0": (_field("ood.n_reference", 0), "ood.n_reference"),
    "ood.n_reference missing": (lambda m, a: m["ood"].pop("n_reference"), "n_reference"),
    "ood.n_calibration beyond the limit": (_field("ood.n_calibration", 10**9), "ood.n_calibration"),
    "a negative residual norm": (_array("ood/reference_residual", 0, -1.0), "ood/reference_residual"),
    "a NaN reference row": (_array("ood/reference", (0, 0), np.nan), "ood/reference"),
    "an infinite mean": (_array("ood/mean", 0, np.inf), "ood/mean"),
    "a NaN component": (_array("ood/components", (0, 0), np.nan), "ood/components"),
    "a negative calibration score": (_array("ood/calibration", 0, -1.0), "ood/calibration"),
    "calibration scores unsorted": (_unsorted, "ood/calibration"),
    "ood.n_classes not the classes": (_field("ood.n_classes", 7), "ood.n_classes"),
    "ood.n_classes missing": (lambda m, a: m["ood"].pop("n_classes"), "n_classes"),
    "a reference row of a class that does not exist": (_array("ood/reference_label", -1, 99), "ood/reference_label"),
    "a negative reference class": (_array("ood/reference_label", 0, -1), "ood/reference_label"),
    "reference classes unsorted": (lambda m, a: a.__setitem__("ood/reference_label", a["ood/reference_label"][::-1].copy()),
                                   "ood/reference_label"),
    "a zero class spread": (_array("ood/class_scale", 0, 0.0), "ood/class_scale"),
    "a NaN held-out part": (_array("ood/part_calibration", (1, 1), np.nan), "ood/part_calibration"),
    "held-out parts unsorted": (lambda m, a: a.__setitem__("ood/part_calibration", a["ood/part_calibration"][::-1].copy()),
                                "ood/part_calibration"),
    "reference classes as floats": (lambda m, a: a.__setitem__("ood/reference_label",
                                                               a["ood/reference_label"].astype(float)), "ood/reference_label"),
}


@pytest.mark.parametrize("case", list(TRUST_CASES))
def test_a_wrong_calibration_or_ood_field_is_refused(models, tmp_path, case):
    """One defect in the new fields or arrays, everything else (array_shapes, the checksum) consistent."""
    tamper, needle = TRUST_CASES[case]
    meta, arrays = model_parts(models["ensemble"])
    assert meta["format_version"] >= 4 and "conformal" in meta and "ood" in meta
    tamper(meta, arrays)
    if not case.startswith("conformal.n not"):  # the shapes follow the arrays unless that is the defect
        meta["array_shapes"] = {k: list(v.shape) for k, v in arrays.items()}
    _assert_refused(_write(tmp_path / "bad.mlp", meta, _npz(arrays)), models["data"], tmp_path, needle)


def test_calibration_fields_on_a_regression_model_are_refused(models, tmp_path):
    meta, arrays = model_parts(models["regression"])
    ens_meta, ens_arrays = model_parts(models["ensemble"])
    meta["conformal"] = ens_meta["conformal"]
    arrays.update({k: v for k, v in ens_arrays.items() if k.startswith("conformal/")})
    meta["array_shapes"] = {k: list(v.shape) for k, v in arrays.items()}
    _assert_refused(_write(tmp_path / "bad.mlp", meta, _npz(arrays)), models["regression_data"], tmp_path,
                    "conformal", "regression")
