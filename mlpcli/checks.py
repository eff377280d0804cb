"""Gradient checks of a trained model on real rows (``mlpcli gradcheck --model FILE --data FILE``).

The synthetic suite proves each formula; this proves the very network a user trained, with its
preprocessing, architecture and loss, on samples of their own data. The model is copied to
float64 for the check and a seeded sample of entries per parameter array is differenced (two
forward passes per entry: every entry of a 2,000-gene network would take hours).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .engine import MLP
from .engine import losses as loss_mod
from .engine.gradcheck import KINK_MARGIN, CheckResult, check_network
from .engine.layers import Activation as ActivationLayer
from .engine.layers import Dropout
from .errors import DataError
from .model_io import Member, Model
from .predict.columns import RoleFlags

__all__ = ["check_model"]


def _targets(model: Model, member: Member, y: np.ndarray | None, loss, outputs: np.ndarray) -> tuple[np.ndarray, str]:
    """Targets shaped for the model's loss from the rows' targets y (None: the table has none; then the
    model's own predictions)."""
    if y is None:
        if loss.y_kind == "index":
            return outputs.argmax(axis=1), "no target column: checked against the model's own predictions"
        if loss.output_activation == "sigmoid":
            return (outputs > 0).astype(np.float64), "no target column: checked against the model's own predictions"
        return outputs + 1.0, "no target column: checked against the predictions shifted by 1"
    if loss.y_kind == "index":
        return y.astype(np.int64), ""
    if model.task == "binary":
        return y.reshape(-1, 1).astype(np.float64), ""
    y = y.astype(np.float64)
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


def check_model(model: Model, data_path, rows: int = 32, max_entries: int = 20, eps: float = 1e-6,
                tol: float = 1e-6, atol: float = 1e-8, seed: int = 0, samples: str | None = None,
                roles: RoleFlags | None = None, notes: list[str] | None = None,
                warnings: list[str] | None = None) -> list[CheckResult]:
    """Check the trained network's gradients on ``rows`` sampled rows of ``data_path`` (a table, an .h5ad
    file or a 10x directory, read and matched to the model as predict does: ``predict.prepare``, except that
    a table is read in the layout the model was trained on (genes in rows with ``--features-in-rows``)
    unless told); its target, when present, gives the loss its labels. ``roles``: predict's column-role and reading options
    (``RoleFlags``); ``samples``: a sample sheet joined to the table (``RoleFlags.samples``), e.g. holding
    the target. ``notes`` and ``warnings``, when given, receive what reading the rows said (as predict's)."""
    from .predict import prepare

    roles = roles or RoleFlags()
    if samples is not None:
        roles = replace(roles, samples=samples)
    if not roles.features_in_rows and (model.config or {}).get("features_in_rows"):
        roles = replace(roles, features_in_rows=True)  # the layout the model was trained on, by default
    prepared = prepare(model, data_path, roles=roles, labels=True, can_fill=False)
    if notes is not None:
        notes.extend(prepared.notes)
    if warnings is not None:
        warnings.extend(prepared.warnings)
    if np.isnan(prepared.X[:, model.preprocessor.kept_index_]).any() and not model.preprocessor.config.impute:
        raise DataError(f"{data_path} has missing feature values and the model was trained without --impute")
    loss = loss_mod.get(model.loss["name"], **model.loss.get("params", {}))
    results = []
    for k, member in enumerate(model.members):
        label = f"member {k + 1} of {len(model.members)}, " if model.is_ensemble else ""
        results += _check_member(model, member, prepared.X, prepared.y, loss, label, rows, max_entries, eps, tol,
                                 atol, seed)
    return results


def _check_member(model: Model, member: Member, X_in: np.ndarray, y_in: np.ndarray | None, loss, label: str,
                  rows: int, max_entries: int, eps: float, tol: float, atol: float, seed: int) -> list[CheckResult]:
    """One member's network, in a float64 copy, on rows of X_in (n, d_in) its own preprocessing transforms;
    y_in: their targets in the model's encoding (None: the table has none)."""
    net = MLP(**{**member.network.config(), "dtype": "float64"})
    net.set_state({k: v.astype(np.float64) for k, v in member.network.get_state().items()})

    rng = np.random.default_rng(seed)
    X_all = member.preprocessor.transform(X_in, dtype=np.float64)
    keep = np.flatnonzero(_rows_away_from_kinks(net, X_all))
    if keep.size == 0:
        raise DataError("every row has a hidden unit within 1e-3 of a ReLU kink; no row can be checked")
    idx = np.sort(rng.choice(keep, size=min(rows, keep.size), replace=False))
    X = X_all[idx]
    y, target_note = _targets(model, member, None if y_in is None else y_in[idx], loss, net.forward(X))
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
