"""Model files as older versions of mlpcli wrote them, made from a file of today's format for tests."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Callable

import numpy as np
from click.testing import CliRunner

from mlpcli.cli import cli
from tables import SAMPLE


def saved_model(table, path, options):
    """Train on ``table`` with TrainOptions ``options`` and save the model at ``path`` (returned)."""
    from mlpcli import model_io
    from mlpcli.pipeline import train

    model_io.save(train(table, options).model, path)
    return path


def without_offsets(meta: dict, arrays: dict) -> None:
    """model.json and the arrays, in place, as before format 10: no preprocessing's robust-clip ``offset``."""
    _without_preprocessing_array(meta, arrays, "offset", "offset")


def without_unclipped_sds(meta: dict, arrays: dict) -> None:
    """model.json and the arrays, in place, as before format 11: no ``train_sd_unclipped`` (``sd_unclipped``)."""
    _without_preprocessing_array(meta, arrays, "sd_unclipped", "train_sd_unclipped")


def without_kurtoses(meta: dict, arrays: dict) -> None:
    """model.json and the arrays, in place, as before format 17: no ``train_kurtosis`` (``kurtosis``), no
    ``train_reach_low`` / ``train_reach_high`` (``reach``)."""
    _without_preprocessing_array(meta, arrays, "kurtosis", "train_kurtosis")
    _without_preprocessing_array(meta, arrays, "reach", "train_reach_low")
    _without_preprocessing_array(meta, arrays, "reach", "train_reach_high")


def _without_preprocessing_array(meta: dict, arrays: dict, flag: str, array: str) -> None:
    """Remove, in place, the ``flag`` of every preprocessing state in model.json, the aliases of its ``array``,
    and the array itself (every member's)."""
    def drop(node) -> None:
        if isinstance(node, dict):
            if "config" in node and ("kept_features" in node or "version" in node):  # a preprocessing state
                node.pop(flag, None)
            aliases = node.get("array_aliases")
            if isinstance(aliases, dict):
                for k in [k for k in aliases if k.endswith(f"preprocessor/{array}")]:
                    del aliases[k]
            for v in node.values():
                drop(v)
        elif isinstance(node, list):
            for v in node:
                drop(v)

    drop(meta)
    for key in [k for k in arrays if k.endswith(f"preprocessor/{array}")]:
        del arrays[key]


def rewrite_model(src, dst, meta_fn: Callable[[dict], None], arrays_fn: Callable[[dict], dict]) -> str:
    """A copy of model file ``src`` at ``dst`` with model.json changed in place by ``meta_fn`` and the arrays
    replaced by ``arrays_fn(arrays)``; array_shapes and the weights checksum are kept true, so that only the
    change under test differs from a file mlpcli wrote."""
    with zipfile.ZipFile(src) as zf:
        meta = json.loads(zf.read("model.json"))
        with np.load(io.BytesIO(zf.read("weights.npz"))) as npz:
            arrays = {k: npz[k] for k in npz.files}
    meta_fn(meta)
    if meta.get("format_version", 7) < 7:  # before format 7 every preprocessing listed its features
        with_feature_lists(meta)
    if meta.get("format_version", 8) < 8:  # before format 8 no file kept fingerprints of its training rows
        meta.pop("training_rows", None)
        arrays.pop("training_rows", None)
    if meta.get("format_version", 9) < 9:  # before format 9 no file kept its decision rule
        meta.pop("decision", None)
    if meta.get("format_version", 10) < 10:  # before format 10 no preprocessing stored the robust clip's offset
        without_offsets(meta, arrays)
    if meta.get("format_version", 11) < 11:  # before format 11 none stored the SDs before the clip
        without_unclipped_sds(meta, arrays)
    if meta.get("format_version", 17) < 17:  # before format 17 none stored the kurtosis before the clip
        without_kurtoses(meta, arrays)
    arrays = arrays_fn(arrays)
    meta["array_shapes"] = {k: list(v.shape) for k, v in arrays.items()}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    meta["weights_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        zf.writestr("weights.npz", buf.getvalue())
    return str(dst)


def with_feature_lists(meta: dict) -> dict:
    """model.json with every preprocessing's feature lists written out, as formats 1-6 had them (format 7 leaves
    out those that repeat the model's), in place; returns it."""
    from mlpcli.model_check import expand_feature_lists

    expand_feature_lists(meta)
    for pre in [meta["preprocessing"]] + [e["preprocessing"] for e in meta.get("members", [])
                                          if isinstance(e, dict) and e.get("preprocessing") is not None]:
        pre["feature_names_in"], pre["kept_features"] = list(pre["feature_names_in"]), list(pre["kept_features"])
    return meta


def without_trust(arrays: dict) -> dict:
    """The arrays without the prediction-set calibration and the OOD basis (formats 1 and 2 had neither)."""
    return {k: v for k, v in arrays.items() if not k.startswith(("conformal/", "ood/"))}


def model_parts(path) -> tuple[dict, dict]:
    """A model file's model.json and the arrays weights.npz stores (as written, before loading expands anything)."""
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("model.json"))
        with np.load(io.BytesIO(zf.read("weights.npz"))) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def _trained(tmp_path_factory, hidden: str) -> str:
    """A one-network model of the sample data, two epochs, hidden layers ``hidden`` ("none": softmax regression)."""
    path = tmp_path_factory.mktemp(f"hidden_{hidden}") / "m.mlp"
    res = CliRunner().invoke(cli, ["train", SAMPLE, "--folds", "1", "--epochs", "2", "--hidden", hidden, "-q",
                                   "-o", str(path)])
    assert res.exit_code == 0, res.output
    return str(path)
