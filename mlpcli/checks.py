"""Gradient checks of a trained model on real rows (``mlpcli gradcheck --model FILE --data FILE``).

The synthetic suite proves each formula; this proves the very network a user trained, with its
preprocessing, architecture and loss, on samples of their own data. The model is copied to
float64 for the check and a seeded sample of entries per parameter array is differenced (two
forward passes per entry: every entry of a 2,000-gene network would take hours). Rows near a kink
(of a ReLU-family unit, or of the loss against the row's target) are left out, as the synthetic
suite draws its inputs away from them; a BatchNorm model's training mode is checked on at least
BATCHNORM_MIN_ROWS rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .engine import MLP
from .engine import losses as loss_mod
from .engine.gradcheck import BATCHNORM_MIN_ROWS, KINK_MARGIN, CheckResult, check_network
from .engine.layers import Activation as ActivationLayer
from .engine.layers import Dropout
from .text import quoted
from .errors import DataError, OptionError
from .model_io import Member, Model
from .data.roles import listed_names
from .predict.columns import RoleFlags

__all__ = ["check_model"]


def _targets(model: Model, member: Member, y: np.ndarray | None, loss, outputs: np.ndarray,
             why: str = "no target column") -> tuple[np.ndarray, str]:
    """Targets shaped for the model's loss from the rows' targets y (None: the table has none, for the reason
    ``why``; then the model's own predictions) and a note saying which."""
    if y is None:
        if loss.y_kind == "index":
            return outputs.argmax(axis=1), f"{why}: checked against the model's own predictions"
        if loss.output_activation == "sigmoid":
            return (outputs > 0).astype(np.float64), f"{why}: checked against the model's own predictions"
        # a shift off the Huber loss's bend at |o - y| = delta (and off MAE's kink at 0)
        shift = 0.5 * loss.delta if loss.name == "huber" else 1.0
        return outputs + shift, f"{why}: checked against the predictions shifted by {shift:g}"
    if loss.y_kind == "index":
        return y.astype(np.int64), ""
    if model.task == "binary":
        return y.reshape(-1, 1).astype(np.float64), ""
    y = y.astype(np.float64)
    scaling = member.target_scaling
    if scaling:  # the network was trained on standardised targets
        y = (y - np.asarray(scaling["mean"])) / np.asarray(scaling["sd"])
    return y, ""


def _row_kink_distance(net: MLP, loss, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n,) How close each row of the last forward pass came to a kink: of a ReLU-family activation (its
    pre-activations, cached by the pass) or of the loss (MAE at o = y, Huber at |o - y| = delta, hinge at the
    margin) for the outputs (n, k) against the targets y. A central difference straddling a kink disagrees
    with any subgradient: such rows are left out."""
    d = np.full(outputs.shape[0], np.inf)
    for layer in net.layers:
        if isinstance(layer, ActivationLayer):
            for k in layer.fn.kinks:
                d = np.minimum(d, np.abs(layer.z - k).min(axis=1))
    if loss.y_kind == "dense":
        kd = loss.kink_distance(outputs, np.asarray(y, dtype=np.float64).reshape(outputs.shape))
        if kd is not None:
            d = np.minimum(d, kd.min(axis=1))
    return d


_BATCHNORM_WHY = ("with 1 or 2, its batch statistics make the gradients of the layers before it zero or nearly, "
                  "and their check would prove nothing")


def _rows(n: int) -> str:
    return f"{n} row{'s' * (n != 1)}"


def _labels(model: Model, prepared, roles: RoleFlags, source) -> tuple[np.ndarray | None, str]:
    """The rows' targets from ``prepare`` and "", or None and why there are none (the check then uses the
    model's own predictions). A DataError naming the absent columns when the table has some but not all of a
    multi-output model's target columns (``Prepared.targets``): prepare reads the target only whole, and the
    check would fall back to the model's own predictions as if the table had no labels. Target columns given
    to --drop are not read."""
    targets = [str(t) for t in (model.roles or {}).get("target") or model.target_names]
    dropped = set(listed_names(roles.drop)) & set(targets)
    if prepared.y is not None:
        return prepared.y, ""
    _, absent = prepared.absent_targets(model)
    if not absent:
        return None, (f"target column{'s' * (len(dropped) != 1)} dropped" if dropped else "no target column")
    found = [t for t in targets if t not in absent]
    raise DataError(f"{source} has {len(found)} of the model's {len(targets)} target columns ({quoted(targets)}) "
                    f"and lacks {quoted(absent)}; the check's loss needs every one: "
                    f"add the missing column{'s' * (len(absent) != 1)}, or --drop the {len(found)} it has to check "
                    "the gradients against the model's own predictions")


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
    if rows < BATCHNORM_MIN_ROWS and any(m.network.batchnorm for m in model.members):
        raise OptionError(f"--rows {rows}: the model uses BatchNorm, whose training-mode check needs at least "
                          f"{BATCHNORM_MIN_ROWS} rows ({_BATCHNORM_WHY}); pass --rows {BATCHNORM_MIN_ROWS} or more")
    given, dropped = listed_names(roles.target), listed_names(roles.drop)
    if set(given) & set(dropped):
        raise OptionError(f"--target and --drop both name {quoted(sorted(set(given) & set(dropped)))}; give the "
                          "column one role")
    prepared = prepare(model, data_path, roles=roles, labels=True, can_fill=False, unlabelled="skip")
    X_in = prepared.X
    if prepared.labelled is not None:  # rows without a label: the check samples rows, it needs only labelled ones
        unlabelled = int((~prepared.labelled).sum())
        if prepared.y is None:
            raise DataError(f"{data_path}: no row has a label in {quoted(prepared.targets)}; label some rows, or "
                            f"--drop {quoted(prepared.targets)} (and leave --target out) to check the gradients "
                            "against the model's own predictions")
        X_in = X_in[prepared.labelled]
        prepared.notes.append(f"{_rows(unlabelled)} without a label left out (of {_rows(len(prepared.labelled))})")
    y, why = _labels(model, prepared, roles, data_path)
    if notes is not None:
        notes.extend(prepared.notes)
    if warnings is not None:
        warnings.extend(prepared.warnings)
    if np.isnan(X_in[:, model.preprocessor.kept_index_]).any() and not model.preprocessor.config.impute:
        raise DataError(f"{data_path} has missing feature values and the model was trained without --impute")
    loss = loss_mod.get(model.loss["name"], **model.loss.get("params", {}))
    results = []
    for k, member in enumerate(model.members):
        label = f"member {k + 1} of {len(model.members)}, " if model.is_ensemble else ""
        results += _check_member(model, member, X_in, y, why, loss, label, rows, max_entries, eps, tol, atol,
                                 seed)
    return results


def _check_member(model: Model, member: Member, X_in: np.ndarray, y_in: np.ndarray | None, why: str, loss,
                  label: str, rows: int, max_entries: int, eps: float, tol: float, atol: float,
                  seed: int) -> list[CheckResult]:
    """One member's network, in a float64 copy, on rows of X_in (n, d_in) its own preprocessing transforms;
    y_in: their targets in the model's encoding (None: none, for the reason ``why``)."""
    net = MLP(**{**member.network.config(), "dtype": "float64"})
    net.set_state({k: v.astype(np.float64) for k, v in member.network.get_state().items()})

    rng = np.random.default_rng(seed)
    X_all = member.preprocessor.transform(X_in, dtype=np.float64)  # (n, d)
    out_all = net.forward(X_all, training=False)  # (n, k)
    y_all, target_note = _targets(model, member, y_in, loss, out_all, why)
    keep = np.flatnonzero(_row_kink_distance(net, loss, out_all, y_all) > KINK_MARGIN)
    if keep.size == 0:
        raise DataError(f"every row is within {KINK_MARGIN:g} of a kink (a hidden unit at a ReLU-family kink, or "
                        "the loss's); no row can be checked")
    idx = np.sort(rng.choice(keep, size=min(rows, keep.size), replace=False))
    X, y = X_all[idx], y_all[idx]
    skipped = X_all.shape[0] - keep.size
    notes = [f"{_rows(len(idx))}, up to {max_entries} entr{'ies' if max_entries != 1 else 'y'} per array, "
             "float64 copy"]
    if skipped:
        notes.append(f"{_rows(skipped)} within {KINK_MARGIN:g} of a kink skipped")
    if target_note:
        notes.append(target_note)

    drops = any(isinstance(l, Dropout) for l in net.layers)
    training = drops or net.batchnorm
    if net.batchnorm and len(idx) < BATCHNORM_MIN_ROWS:  # the table had no more (fewer --rows are refused)
        training = False
        notes.append(f"training mode not checked: BatchNorm needs {BATCHNORM_MIN_ROWS} rows and {_rows(len(idx))} "
                     f"could be checked ({_BATCHNORM_WHY})")
    results = [check_network(net, loss, X, y, training=False, eps=eps, tol=tol, atol=atol,
                             name=f"model ({label}inference mode)", note="; ".join(notes), max_entries=max_entries,
                             seed=seed)]
    if training:
        mode = ", ".join(filter(None, ["batch statistics" if net.batchnorm else "",
                                       "fixed dropout mask" if drops else ""]))
        # the rows were chosen off the kinks in inference mode; the dropout mask and the batch statistics move
        # the pre-activations (and outputs) of training mode, so its rows are chosen again in that mode
        kept, why_not = _off_training_kinks(net, loss, X, y)
        if why_not:
            results[0] = replace(results[0], note=f"{results[0].note}; training mode not checked: {why_not}")
            return results
        train_notes = [f"{_rows(len(kept))}, up to {max_entries} entr{'ies' if max_entries != 1 else 'y'} per "
                       "array, float64 copy", *notes[1:]]
        if len(kept) < len(idx):
            train_notes.insert(1, f"{_rows(len(idx) - len(kept))} within {KINK_MARGIN:g} of a kink in training "
                                  "mode left out")
        results.append(check_network(net, loss, X[kept], y[kept], training=True, eps=eps, tol=tol, atol=atol,
                                     name=f"model ({label}training mode, {mode})", note="; ".join(train_notes),
                                     max_entries=max_entries, seed=seed))
    return results


TRAINING_REDRAWS = 10  # training-mode passes that may find rows at a kink (each leaves them out, then looks again)


def _off_training_kinks(net: MLP, loss, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, str]:
    """The rows of X (n, d) the training-mode check takes, those whose training-mode pass (a fresh dropout mask,
    the batch statistics) stays KINK_MARGIN away from every kink, and ""; or the reason the mode cannot be
    checked. Leaving rows out changes the batch statistics and draws another mask, so the rows left are looked
    at again; the last pass's mask is the one the check holds fixed (``check_network`` reuses it)."""
    keep = np.arange(X.shape[0])
    least = BATCHNORM_MIN_ROWS if net.batchnorm else 1
    saved = {k: v.copy() for k, v in net.buffers().items()}  # a training pass moves BatchNorm's running statistics
    try:
        for _ in range(TRAINING_REDRAWS):
            out = net.forward(X[keep], training=True)  # draws the dropout mask the check then holds fixed
            near = _row_kink_distance(net, loss, out, y[keep]) <= KINK_MARGIN
            if not near.any():
                return keep, ""
            keep = keep[~near]
            if keep.size < least:
                break
    finally:
        for k, v in net.buffers().items():
            v[...] = saved[k]
    if keep.size < least:
        return keep, (f"{_rows(X.shape[0] - keep.size)} of the {X.shape[0]} within {KINK_MARGIN:g} of a kink in "
                      f"training mode, leaving {keep.size}" + (f" (BatchNorm needs {BATCHNORM_MIN_ROWS})"
                                                               if net.batchnorm and keep.size else ""))
    return keep, (f"rows still within {KINK_MARGIN:g} of a kink in training mode after {TRAINING_REDRAWS} passes "
                  "(each leaving those of the last out)")
