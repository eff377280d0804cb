"""The model file: a zip archive with ``model.json`` (metadata) and ``weights.npz`` (arrays only).

Loading never unpickles (``np.load(..., allow_pickle=False)``). Every way a file can be wrong —
not a zip, truncated, a member missing, JSON that does not parse, another program's archive, an
unknown format version, weights that do not match their recorded checksum or the architecture's
shapes — is a ``ModelFileError`` with a one-line message. Files are written to a temporary file
in the target directory and renamed, so a failure never leaves half a model behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .engine import MLP
from .engine import losses as loss_mod
from .engine.functional import sigmoid, softmax
from .errors import ModelFileError
from .fileio import atomic_write

FORMAT = "mlpcli-model"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
_NET, _PRE = "network/", "preprocessor/"


@dataclass
class Model:
    """Everything needed to use a trained network on new samples, and to know how it was made."""

    network: MLP
    preprocessor: object  # data.Preprocessor
    task: str
    classes: list  # class labels (binary/multiclass), label columns (multilabel), targets (regression)
    feature_names: list[str]  # input features, in the order the preprocessor expects them
    target_names: list[str]
    loss: dict  # {"name": ..., "params": {...}}
    roles: dict = field(default_factory=dict)  # the column roles used in training
    config: dict = field(default_factory=dict)  # the resolved training configuration
    history: list[dict] = field(default_factory=list)
    split: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)
    fit: dict = field(default_factory=dict)  # best epoch, stopped early, interrupted, seconds
    provenance: dict = field(default_factory=dict)  # data checksum, versions, creation time
    extra: dict = field(default_factory=dict)  # e.g. the learning-curve diagnosis

    def output_activation(self) -> str:
        return loss_mod.get(self.loss["name"], **self.loss.get("params", {})).output_activation

    def predict_output(self, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Predictions for raw feature rows X (n, d) in ``feature_names`` order: class
        probabilities (softmax or sigmoid per the training loss) or regression values."""
        link = self.output_activation()
        outs = []
        for s in range(0, X.shape[0], batch_size):
            Z = self.network.forward(self.preprocessor.transform(X[s : s + batch_size], dtype=self.network.dtype))
            outs.append(softmax(Z) if link == "softmax" else sigmoid(Z) if link == "sigmoid" else Z)
        if not outs:
            return np.zeros((0, self.network.n_outputs))
        out = np.concatenate(outs, axis=0).astype(np.float64)
        scaling = self.extra.get("target_scaling")
        if scaling:  # regression networks are trained on standardised targets
            out = out * np.asarray(scaling["sd"]) + np.asarray(scaling["mean"])
        return out


def save(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` atomically."""
    pre_meta, pre_arrays = model.preprocessor.state()
    arrays = {f"{_NET}{k}": v for k, v in model.network.get_state().items()}
    arrays.update({f"{_PRE}{k}": np.asarray(v) for k, v in pre_arrays.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    weights = buf.getvalue()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "task": model.task,
        "classes": [_jsonable(c) for c in model.classes],
        "feature_names": list(model.feature_names),
        "target_names": list(model.target_names),
        "loss": model.loss,
        "architecture": model.network.config(),
        "preprocessing": pre_meta,
        "array_shapes": {k: list(np.shape(v)) for k, v in arrays.items()},
        "roles": model.roles,
        "config": model.config,
        "history": model.history,
        "split": model.split,
        "baseline": model.baseline,
        "fit": model.fit,
        "provenance": model.provenance,
        "extra": model.extra,
    }
    text = json.dumps(meta, indent=1, default=_jsonable, allow_nan=True)

    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("model.json", text)
            zf.writestr("weights.npz", weights)

    atomic_write(path, write)


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (str, int, float, bool)) or o is None:
        return o
    if isinstance(o, (list, tuple)):
        return [_jsonable(x) for x in o]
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    return str(o)


def load(path: str | os.PathLike) -> Model:
    """Read a model file; any defect is a ModelFileError naming the file and what is wrong."""
    from .data import Preprocessor  # data imports pandas; keep model_io importable without it at module load

    name = str(path)
    if not os.path.exists(name):
        raise ModelFileError(f"model file not found: {name}")
    if os.path.isdir(name):
        raise ModelFileError(f"{name} is a directory, not a model file")
    try:
        with zipfile.ZipFile(name) as zf:
            members = set(zf.namelist())
            missing = [m for m in ("model.json", "weights.npz") if m not in members]
            if missing:
                raise ModelFileError(f"{name} is not an mlpcli model file: missing {', '.join(missing)}")
            raw_meta = zf.read("model.json")
            weights = zf.read("weights.npz")
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(f"{name} is not a readable mlpcli model file (corrupt or truncated: {exc})") from None
    except Exception as exc:  # zlib errors, CRC mismatches
        raise ModelFileError(f"{name} is corrupt or truncated ({type(exc).__name__}: {exc})") from None

    try:
        meta = json.loads(raw_meta)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"{name}: model.json is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{name} is not an mlpcli model file (model.json has no '{FORMAT}' format tag)")
    version = meta.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise ModelFileError(
            f"{name} has model format version {version!r}; this mlpcli reads version(s) "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))} (upgrade mlpcli or retrain)"
        )
    if hashlib.sha256(weights).hexdigest() != meta.get("weights_sha256"):
        raise ModelFileError(f"{name}: weights.npz does not match the checksum in model.json (file modified or damaged)")
    try:
        with np.load(io.BytesIO(weights), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise ModelFileError(f"{name}: weights.npz cannot be read without pickle ({type(exc).__name__})") from None

    try:
        for key, shape in meta["array_shapes"].items():
            if key not in arrays:
                raise ModelFileError(f"{name}: weights.npz lacks array {key}")
            if list(arrays[key].shape) != list(shape):
                raise ModelFileError(f"{name}: array {key} has shape {arrays[key].shape}, model.json says {tuple(shape)}")
        net = MLP(**meta["architecture"])
        net.set_state({k[len(_NET):]: v for k, v in arrays.items() if k.startswith(_NET)})
        pre = Preprocessor.from_state(meta["preprocessing"], {k[len(_PRE):]: v for k, v in arrays.items() if k.startswith(_PRE)})
        model = Model(
            network=net,
            preprocessor=pre,
            task=meta["task"],
            classes=list(meta["classes"]),
            feature_names=list(meta["feature_names"]),
            target_names=list(meta.get("target_names", [])),
            loss=meta["loss"],
            roles=meta.get("roles", {}),
            config=meta.get("config", {}),
            history=meta.get("history", []),
            split=meta.get("split", {}),
            baseline=meta.get("baseline", {}),
            fit=meta.get("fit", {}),
            provenance=meta.get("provenance", {}),
            extra=meta.get("extra", {}),
        )
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{name}: model.json does not describe a consistent model ({type(exc).__name__}: {exc})") from None
    if net.n_inputs != len(pre.kept_features) or len(model.feature_names) != pre.n_features_in:
        raise ModelFileError(f"{name}: the network's {net.n_inputs} inputs do not match the preprocessing's features")
    return model
