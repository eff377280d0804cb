"""Gradient checks of a trained model on real rows (``mlpcli gradcheck --model FILE --data FILE``).

The synthetic suite proves each formula; this proves the very network a user trained, with its
preprocessing, architecture and loss, on samples of their own data. The model is copied to
float64 for the check and a seeded sample of entries per parameter array is differenced (two
forward passes per entry: every entry of a 2,000-gene network would take hours).
"""

from __future__ import annotations

import numpy as np

from . import data
from .engine import MLP
from .engine import losses as loss_mod
from .engine.gradcheck import KINK_MARGIN, CheckResult, check_network
from .engine.layers import Activation as ActivationLayer
from .engine.layers import Dropout
from .errors import DataError
from .model_io import Member, Model

__all__ = ["check_model"]


def _targets(model: Model, member: Member, ds: data.Dataset, loss, outputs: np.ndarray) -> tuple[np.ndarray, str]:
    """Targets shaped for the model's loss; the model's own predictions when the table has none."""
    if ds.y is None:
        if loss.y_kind == "index":
            return outputs.argmax(axis=1), "no target column: checked against the model's own predictions"
        if loss.output_activation == "sigmoid":
            return (outputs > 0).astype(np.float64), "no target column: checked against the model's own predictions"
        return outputs + 1.0, "no target column: checked against the predictions shifted by 1"
    if loss.y_kind == "index":
        return ds.y.astype(np.int64), ""
    if model.task == "binary":
        return ds.y.reshape(-1, 1).astype(np.float64), ""
    y = ds.y.astype(np.float64)
    scaling = member.target_scaling
    if scaling:  # the network was trained on standardised targets
        y = (y - np.asarray(scaling["mean"])) / np.asarray(scaling["sd"])
    return y, ""


def _rows_away_from_kinks(net: MLP, X: np.ndarray) -> np.ndarray:
    """Rows whose every ReLU-family pre-activation is at least KINK_MARGIN from a kink."""
    net.forward(X, training=False)
    keep = np.ones(X.shape[0], dtype=bool)
    for layer in net.layers:
        if isinstance(layer, ActivationLayer):
            for k in layer.fn.kinks:
                keep &= np.abs(layer.z - k).min(axis=1) > KINK_MARGIN
    return keep


def check_model(model: Model, data_path: str, rows: int = 32, max_entries: int = 20, eps: float = 1e-6,
                tol: float = 1e-6, atol: float = 1e-8, seed: int = 0, samples: str | None = None) -> list[CheckResult]:
    """Check the trained network's gradients on ``rows`` sampled rows of the table at ``data_path``;
    ``samples``: a sample sheet joined to it (``data.samples``), e.g. holding the target."""
    roles_used = model.roles or {}
    if data.h5ad.is_h5ad(data_path):  # AnnData: the matrix and gene names the model was trained on
        ds = _h5ad_rows(model, data_path, roles_used)
    else:
        ds = _table_rows(model, data_path, roles_used, samples)
    loss = loss_mod.get(model.loss["name"], **model.loss.get("params", {}))
    results = []
    for k, member in enumerate(model.members):
        label = f"member {k + 1} of {len(model.members)}, " if model.is_ensemble else ""
        results += _check_member(model, member, ds, loss, label, rows, max_entries, eps, tol, atol, seed)
    return results


def _table_rows(model: Model, data_path: str, roles_used: dict, samples: str | None) -> data.Dataset:
    """A text or parquet table's rows as a Dataset for the check (joined to the sample sheet ``samples``),
    its target when present, features in the model's order."""
    features_in_rows = bool(model.config.get("features_in_rows", False))
    sheet = data.read_sample_sheet(samples) if samples is not None else None  # small: its errors come first
    frame = data.read_table(data_path, features_in_rows=features_in_rows)
    if sheet is not None:
        frame, _ = data.join_samples(frame, sheet, source=data_path, features_in_rows=features_in_rows,
                                     roles=[*roles_used.get("target", []), roles_used.get("group"),
                                            roles_used.get("batch")])
    target = [t for t in roles_used.get("target", []) if t in frame.columns]
    group, id_, batch = (roles_used.get(k) if roles_used.get(k) in frame.columns else None for k in ("group", "id", "batch"))
    # columns that are neither the model's features nor its roles are ignored, as predict ignores them
    features = set(model.feature_names)
    extra = [c for c in frame.columns if c not in features and c not in {*target, group, id_, batch}]
    roles, _ = data.resolve_roles(
        frame.columns, target=target or None, group=group, no_group=group is None, id=id_, batch=batch,
        drop=extra, require_target=False,
    )
    classes = model.classes if model.task in ("binary", "multiclass") else None
    ds = data.Dataset.from_frame(frame, roles, task=model.task if target else "auto", classes=classes)
    ds = data.align_features(ds, model.feature_names, data_path)
    if np.isnan(ds.X).any() and not model.preprocessor.config.impute:
        raise DataError(f"{data_path} has missing feature values and the model was trained without --impute")

    return ds


def _h5ad_rows(model: Model, path: str, roles_used: dict) -> data.Dataset:
    """An .h5ad file's cells as a Dataset for the check: the model's training matrix (--layer / --raw) and
    gene names (--var-names), its target when present, features in the model's order (kept sparse)."""
    cfg = model.config or {}
    with data.h5ad.H5ad(path, cfg.get("layer"), bool(cfg.get("raw")), cfg.get("var_names"),
                        var_names_fallback=True) as h:
        h.check_feature_names(model.preprocessor.kept_features, None)
        target = [t for t in roles_used.get("target", []) if t in h.obs_columns]
    classes = model.classes if model.task in ("binary", "multiclass") else None
    ds, _ = data.h5ad.load_dataset(path, target=target or [], no_group=True, task=model.task if target else "auto",
                                   classes=classes, layer=cfg.get("layer"), raw=bool(cfg.get("raw")),
                                   var_names=cfg.get("var_names"), require_target=False, var_names_fallback=True)
    ds = data.align_features(ds, model.feature_names, path)
    if data.is_sparse(ds.X) and np.isnan(ds.X.data).any() and not model.preprocessor.config.impute:
        raise DataError(f"{path} has missing feature values and the model was trained without --impute")
    return ds


def _check_member(model: Model, member: Member, ds: data.Dataset, loss, label: str, rows: int, max_entries: int,
                  eps: float, tol: float, atol: float, seed: int) -> list[CheckResult]:
    """One member's network, in a float64 copy, on rows its own preprocessing transforms."""
    net = MLP(**{**member.network.config(), "dtype": "float64"})
    net.set_state({k: v.astype(np.float64) for k, v in member.network.get_state().items()})

    rng = np.random.default_rng(seed)
    X_all = member.preprocessor.transform(ds.X, dtype=np.float64)
    keep = np.flatnonzero(_rows_away_from_kinks(net, X_all))
    if keep.size == 0:
        raise DataError("every row has a hidden unit within 1e-3 of a ReLU kink; no row can be checked")
    idx = np.sort(rng.choice(keep, size=min(rows, keep.size), replace=False))
    X = X_all[idx]
    sub = ds.subset(idx)
    y, target_note = _targets(model, member, sub, loss, net.forward(X))
    skipped = X_all.shape[0] - keep.size
    notes = [f"{len(idx)} rows, up to {max_entries} entries per array, float64 copy"]
    if skipped:
        notes.append(f"{skipped} rows within {KINK_MARGIN:g} of a kink skipped")
    if target_note:
        notes.append(target_note)

    results = [check_network(net, loss, X, y, training=False, eps=eps, tol=tol, atol=atol,
                             name=f"model ({label}inference mode)", note="; ".join(notes), max_entries=max_entries,
                             seed=seed)]
    if any(isinstance(l, Dropout) for l in net.layers) or net.batchnorm:
        net.forward(X, training=True)  # draws the dropout mask the check then holds fixed
        results.append(check_network(net, loss, X, y, training=True, eps=eps, tol=tol, atol=atol,
                                     name=f"model ({label}training mode, fixed dropout mask)", note="; ".join(notes),
                                     max_entries=max_entries, seed=seed))
    return results
