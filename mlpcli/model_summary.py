"""What a model file holds, as plain data (``mlpcli info``): the task and its classes, the features, the
preprocessing, the networks, how they were trained and validated, and where the data came from.

Everything here is read from the model itself; nothing is recomputed. A model file records no clock
time (the same data, options, seed and threads give a byte-identical file), so "when" is the file's
modification time.
"""

from __future__ import annotations

import datetime
import math
import os
import stat
from pathlib import Path

from .calibration import temperature_field
from .decision import DECIDED
from .model_io import Model

__all__ = ["describe", "network_summary", "decision_words", "tuning_summary", "loss_words", "trained_matrix", "trust_summary", "FIRST_FEATURES"]

FIRST_FEATURES = 10  # feature names listed unless all are asked for


def describe(model: Model, path: str | os.PathLike | None = None, all_features: bool = False) -> dict:
    """The model's description as a JSON-ready dict (sections: file, task, features, preprocessing,
    network, training, split, held_out, diagnosis, tuning, provenance, roles, matrix, trust). ``all_features``: every input
    feature name instead of the first FIRST_FEATURES."""
    names = list(model.feature_names)
    ref = model.preprocessor
    kept = list(getattr(ref, "kept_features", []) or names)
    config = dict(model.config or {})
    resolved = {k: v for k, v in config.items() if k != "resolved"}
    resolved.update(config.get("resolved") or {})
    fit = model.fit or {}
    members = fit.get("members") or []
    diagnosis = (model.extra or {}).get("diagnosis")
    return _finite({
        "file": _file(path, model.format_version),
        "task": model.task,
        "classes": [str(c) for c in model.classes],
        "positive_class": positive_class(model),
        "class_counts": {str(k): v for k, v in (model.split or {}).get("class_counts_train", {}).items()},
        "features": {
            "count": len(names),
            "names": names if all_features else names[:FIRST_FEATURES],
            "listed": "all" if all_features or len(names) <= FIRST_FEATURES else f"first {FIRST_FEATURES}",
            # what a table must supply: the features some member uses (--top-var and constant features
            # leave the others out; predict names only these when they are missing)
            "used": len(kept),
            "used_names": kept if all_features else kept[:FIRST_FEATURES],
            "dropped_constant": len(getattr(ref, "dropped_constant", []) or []),
        },
        "preprocessing": _preprocessing(ref, model.members, _fitted_on(model)),
        "network": network_summary(model),
        "training": {
            "options": resolved,
            "strategy": fit.get("strategy"),
            "folds": fit.get("folds"),
            # per member: what each "auto" became for its rows (None for models written before)
            "resolved": {k: _same_or_list([m.get(k) for m in members]) for k in ("batch_size", "lr", "l2", "max_epochs",
                                                                               "augment_noise", "weight_decay")},
            "best_epochs": _per_member(members, fit, "best_epoch"),
            "epochs_run": _per_member(members, fit, "epochs_run"),
            "stopped_early": _per_member(members, fit, "stopped_early"),
            "converged": _per_member(members, fit, "converged"),  # L-BFGS: whether each member's run converged
            "interrupted": bool(fit.get("interrupted", False)),
            "refit_epochs": fit.get("refit_epochs"),
            # the --refit network's settings, what "auto" became for all the rows (None: not refit, or a model
            # written before they were stored)
            "refit": fit.get("refit"),
            "portfolio": fit.get("portfolio"),
            "calibration": fit.get("calibration"),
        },
        "split": model.split or {},
        "held_out": {
            "kind": fit.get("held_out"),
            "metric": fit.get("metric"),
            "metrics": fit.get("held_out_metrics"),  # None for models written before they were stored
            "per_target": fit.get("held_out_per_target"),  # several regression targets, each in its own units
            "per_label": fit.get("held_out_per_label"),  # a multi-label model's labels
            "per_class": fit.get("held_out_per_class"),  # a multiclass model's classes: recall, precision, support
            "interval": fit.get("held_out_interval"),  # the main metric's bootstrap interval over patients
            "crossed": fit.get("held_out_crossed"),  # cross-fitted (None: a file of before, or the networks' own)
        },
        "diagnosis": None if not diagnosis else {k: diagnosis.get(k) for k in ("label", "runner_up", "summary")},
        # what `tune --refit` chose, how, and what its score measured (tuning_summary); None else
        "tuning": tuning_summary(model),
        "provenance": model.provenance or {},
        "roles": model.roles or {},
        "matrix": trained_matrix(model),  # an .h5ad file's matrix the features came from (None: not an .h5ad file)
        "trust": trust_summary(model),
    })


def tuning_summary(model: Model) -> dict | None:
    """What ``tune --refit`` recorded (``tuning.refit_record``: grid, setting, metric, ``cv_mean`` and ``cv_sd``,
    strategy, nested estimate, ``grid_size``, ``evaluated``, ``chosen_from``, ``folds``, ``repeats``), with what
    follows from it: ``random`` (fewer settings evaluated than the grid holds: ``--random``), ``optimistic`` (the
    score is the best of ``chosen_from`` models' on the same folds), ``scored_as`` (what each fold's score was of:
    one network unless the grid set member-folds) and ``model`` (what was shipped: an ensemble by default, so the
    score does not measure it). Files written before the counts: ``grid_size`` from the grid, ``evaluated``,
    ``chosen_from``, ``random``, ``folds`` and ``repeats`` None, and ``optimistic`` whether the grid held more than one
    setting. None for a model not made by ``tune --refit``."""
    stored = (model.extra or {}).get("tuning")
    if not stored:
        return None
    grid = stored.get("grid") or {}
    size = stored.get("grid_size")
    if size is None:
        size = math.prod(len(v) for v in grid.values()) if grid else None
    evaluated, chosen_from = stored.get("evaluated"), stored.get("chosen_from")
    members = (stored.get("setting") or {}).get("folds", 1)  # the grid's member-folds: each fold's model
    fit = model.fit or {}
    if len(model.members) > 1:
        shipped = f"a {len(model.members)}-member cross-fitted ensemble"
    elif fit.get("refit_epochs"):
        shipped = "one network refitted on every row"
    else:
        shipped = "one network"
    return {
        **stored,
        "grid_size": size,
        "evaluated": evaluated,
        "random": None if evaluated is None or size is None else evaluated < size,
        "chosen_from": chosen_from,
        "optimistic": chosen_from > 1 if chosen_from is not None else size is None or size > 1,
        "folds": stored.get("folds"),
        "repeats": stored.get("repeats"),
        "scored_as": ("one network per fold" if members == 1 else
                      f"a {members}-member cross-fitted ensemble per fold" if isinstance(members, int) else
                      f"train's cross-fitted ensemble (member-folds={members}) per fold"),
        "model": shipped,
        # whether the score was of such a model as the one shipped (an ensemble of as many members, or one network)
        # (None: the grid's member-folds=auto, which each fold resolved for its rows)
        "score_of_model": None if not isinstance(members, int) else members == len(model.members),
    }


def trust_summary(model: Model) -> dict:
    """What ``predict`` can add to the predictions with this model: prediction sets (``--coverage``: the held-out
    conformity scores), out-of-distribution flags (``--ood``: the basis and its calibration) and the check for
    features absent from a new cohort (each feature's share of zeros in training), and how many training rows it
    recognises (``training_rows``: their fingerprints, for predict's and evaluate's notes). None for a part the model
    lacks: files written before it existed, or a task without it (prediction sets and out-of-distribution flags
    are for binary and multiclass models); ``applies`` says which."""
    from .predict.seen import SeenRows

    cal, basis = model.conformal, model.ood
    zero_share = getattr(model.preprocessor, "train_zero_share_", None)
    return {
        "applies": model.task in ("binary", "multiclass"),
        "prediction_sets": None if cal is None else {"source": cal.source, "scores": int(cal.n),
                                                     "rows": int(cal.n_rows),
                                                     # a sum of 1/rows per patient: 39.99999999999999 for 40
                                                     "patients": cal.patients,
                                                     # source "cohort": the labelled table (``mlpcli recalibrate``)
                                                     **({"cohort": cal.cohort} if cal.cohort is not None else {})},
        "ood": None if basis is None else {"features": int(basis.n_features),
                                           "components": int(basis.components.shape[0]),
                                           "reference_rows": int(len(basis.reference)),
                                           "calibration_rows": int(len(basis.calibration)),
                                           # calibration_rows are patients, one value each (ood.calibrate)
                                           "calibration_per_patient": bool(basis.weighted),
                                           "class_relative": bool(basis.relative),
                                           # calibrated on a labelled cohort (recalibrate), not held-out training rows
                                           **({"cohort": basis.cohort} if basis.cohort is not None else {})},
        "absent_features_check": zero_share is not None,
        # fingerprints of the training rows, which predict and evaluate recognise (format 8; predict.seen)
        # (distinct: samples with equal values share one, as 565 MASS::biopsy rows of 9 scores give 377)
        "training_rows": None if model.training_rows is None else int(len(model.training_rows)),
        # the rows they were taken from (the training table's and --val-data's), None where the file does not say
        "training_rows_of": _fingerprinted_rows(model),
        # how the model saw them: "trained on", or "trained or validated on" (one network's validation rows too)
        "training_rows_seen_as": None if (seen := SeenRows.of(model)) is None else seen.seen_as,
        # fingerprints of the rows of the table it was recalibrated on, which evaluate recognises (format 16)
        "cohort_rows": None if model.cohort_rows is None else int(len(model.cohort_rows)),
    }


def _fingerprinted_rows(model: Model) -> int | None:
    """How many rows the model's ``training_rows`` fingerprints were taken from: the training table's (as read), and
    the --val-data table's (``pipeline.training_fingerprints``); None without fingerprints or where the file does not
    say (a count below the fingerprints' would be no count of theirs)."""
    if model.training_rows is None:
        return None
    rows = (model.provenance or {}).get("n_samples")
    if (model.config or {}).get("val_data"):  # the validation table's rows were fingerprinted too
        n_val = (model.split or {}).get("n_val")
        rows = rows + n_val if isinstance(rows, int) and isinstance(n_val, int) else None
    return rows if isinstance(rows, int) and rows >= len(model.training_rows) else None


def _not_calibrated(model: Model) -> str | None:
    """Why a classifier has no temperature, as train said it ("--no-calibrate", or too few held-out rows); None
    when it has one, when its outputs are no probabilities (regression, hinge) or when the file does not say."""
    from .calibration import MIN_ROWS

    if model.temperature is not None or model.output_activation() not in ("softmax", "sigmoid"):
        return None
    config = model.config or {}
    if config.get("calibrate") is False:
        return "--no-calibrate"
    n = ((model.fit or {}).get("held_out_metrics") or {}).get("n")
    if config.get("calibrate") and isinstance(n, int) and n < MIN_ROWS:
        return f"{n} held-out rows, fewer than the {MIN_ROWS} a temperature needs"
    return None


def network_summary(model: Model) -> dict:
    """The networks as plain data (``info``'s and ``train --json``'s "network" section): members, layer widths
    (inputs → hidden → outputs), activation and dropout (None without a hidden layer), parameters, the loss as
    stored (``{"name", "params"}``) and in words (``loss_words``), the calibration temperature or why there is none,
    and a classifier's decision rule (``decision``, ``decision_words``; argmax for files without one)."""
    net = model.network
    per_member = int(net.n_parameters)
    return {
        "members": len(model.members),
        "layers": [int(net.n_inputs), *map(int, net.hidden), int(net.n_outputs)],
        "activation": net.activation if net.hidden else None,
        "dropout": net.dropout if net.hidden else None,
        "batchnorm": net.batchnorm,
        "dtype": str(net.dtype),
        "parameters_per_member": per_member,
        "parameters": per_member * len(model.members),
        "loss": model.loss,
        "loss_words": loss_words(model.loss, model.config or {}, model.task),
        "temperature": temperature_field(model.temperature),  # a multi-label model's: one per label
        "not_calibrated": _not_calibrated(model),  # why a classifier has no temperature (None: it has one, or n/a)
        # how labels are chosen from the probabilities (binary, multiclass, multi-label; ``mlpcli.decision``): rule,
        # shares, ...
        "decision": (model.decider.to_dict() if model.task in DECIDED else None),
        "decision_words": decision_words(model),
        # an update of the probabilities for a population (``mlpcli recalibrate``), after the temperature, or None
        "recalibration": None if model.recalibration is None else model.recalibration.to_dict(),
        "recalibration_words": recalibration_words(model),
    }


def recalibration_words(model: Model) -> str | None:
    """A recalibrated model's update in one line: the cohort, the update and what it did there; None without."""
    rc = model.recalibration
    if rc is None:
        return None
    from .recalibration import p_text

    c, f = rc.cohort, rc.fit
    who = f"{c['n']:,} samples" if isinstance(c.get("n"), int) else "samples"
    if isinstance(c.get("patients"), int):
        who += f" of {c['patients']:,} patients"
    digest = f", sha256 {c['sha256'][:12]}…" if c.get("sha256") else ""
    how = ""
    if f.get("chosen_by") == "closed test" and f.get("p_overall") is not None:
        how = f"; chosen by the closed test ({p_text(f['p_overall'])}" + (
            f"; slope {p_text(f['p_slope'])})" if f.get("p_slope") is not None else ")")
    loss = (f"; log loss there {f['log_loss_before']:.4g} → {f['log_loss_after']:.4g} (in-sample)"
            if f.get("log_loss_before") is not None and f.get("log_loss_after") is not None else "")
    balanced = model.decider.rule == "balanced"
    if model.task == "multilabel":
        rule = "; the balanced rule calls a label it updated at its share of positives there" if balanced else ""
    else:
        rule = ("; the balanced labels divide by that table's class shares" if balanced
                else "; --prevalence moves the probabilities from that table's class mix")
    cohort_sets = model.conformal is not None and model.conformal.on_model_proba
    ood_there = model.ood is not None and getattr(model.ood, "cohort", None) is not None
    kept = ("; prediction sets" + (" and OOD flags" if ood_there else "") + " calibrated there too"
            + ("; OOD flags keep the training calibration" if model.ood is not None and not ood_there else "")
            if cohort_sets
            else "; prediction sets and OOD flags keep the training calibration"
            if model.conformal is not None or model.ood is not None else "")
    return (f"on {c.get('data') or 'a cohort'} ({who}{digest}): {rc.words(model.classes)}{loss}{how}; applied after "
            f"the temperature{rule}{kept}")


def decision_words(model: Model) -> str | None:
    """A binary, multiclass or multi-label model's decision rule in words, on its own classes or labels
    (``Decision.describe``): the ``labels`` row of ``train``'s summary and of ``info``. None for regression."""
    if model.task not in DECIDED:
        return None
    if model.decision is None:
        if model.task == "multilabel":
            return "each label present when P >= 0.5: the model file predates the stored decision rule"
        return "argmax (the most probable class): the model file predates the stored decision rule"
    return model.decision.describe(model.task, list(model.classes), (model.fit or {}).get("held_out") or "held-out",
                                   cohort=model.recalibrated_on, weighted_by=weighted_by(model.config or {}))


def loss_words(loss: dict, options: dict, task: str) -> str:
    """The training loss and what makes it differ from the plain one, in words: "bce, class weights balanced",
    "ce, label smoothing 0.1", "focal (gamma 2)", "mse of the standardised target". ``options``: the model's
    training options (``Model.config``), where the class weights of every loss are (focal and hinge take them
    as sample weights, not as loss parameters). The validation loss is weighted like the training loss, so with
    weights it is not the log loss."""
    name, params = loss.get("name", "?"), loss.get("params") or {}
    words = []
    if name == "focal":
        words.append(f"gamma {params.get('gamma', 2.0):g}"
                     + (f", alpha {params['alpha']:g}" if params.get("alpha") is not None else ""))
    if name == "huber" and params.get("delta") is not None:
        words.append(f"delta {params['delta']:g}")
    if params.get("label_smoothing"):
        words.append(f"label smoothing {params['label_smoothing']:g}")
    class_weight = options.get("class_weight")
    if class_weight not in (None, "none"):
        words.append(f"class weights {class_weight}")
    if options.get("pos_weight") not in (None, 1.0):
        words.append(f"positives weighted {options['pos_weight']:g}")
    text = name + (f" ({', '.join(words)})" if words else "")
    return text + (standardised_words(name) if task == "regression" else "")


def standardised_words(name: str, n_targets: int = 1) -> str:
    """What a regression loss is computed on, after its name: the standardised target, and for mse half its squared
    error (the engine's MSE is sum_k (o - y)^2 / 2, whose gradient is o - y: a validation "mse" of 0.09 is an MSE of
    0.18, read as R² 0.91 where it was 0.82), summed over several targets."""
    half = " (half the squared error)" if name == "mse" else ""
    summed = f", summed over the {n_targets} targets" if n_targets > 1 else ""
    return f"{half} of the standardised target{summed}"


def weighted_by(options: dict) -> str | None:
    """The options that weighted a model's loss by class, as flags ("--pos-weight", "--class-weight and
    --pos-weight"); None for none. The balanced rule's shares are the classes' shares as they weigh them."""
    return " and ".join(flag for flag, on in (
        ("--class-weight", options.get("class_weight") not in (None, "none")),
        ("--pos-weight", options.get("pos_weight") not in (None, 1.0))) if on) or None


def is_weighted(options: dict) -> bool:
    """Whether the training (and validation) loss weights samples by class (--class-weight, --pos-weight)."""
    return options.get("class_weight") not in (None, "none") or options.get("pos_weight") not in (None, 1.0)


def trained_matrix(model: Model) -> str | None:
    """The matrix of an .h5ad file the model was trained on (".X", "layer 'counts'", ".raw.X"), as its
    training options and data file record it; None when it was not trained on an .h5ad file (a table, a
    10x directory) or does not say."""
    from .data import h5ad

    trained = model.config or {}
    if trained.get("raw"):
        return ".raw.X"
    if trained.get("layer") not in (None, h5ad.X_LAYER):
        return f"layer {trained['layer']!r}"
    data_file = (model.provenance or {}).get("data_file")
    return ".X" if data_file and h5ad.is_h5ad(data_file) else None


def _finite(value):
    """``value`` with every NaN or infinity (a model file may hold them: its JSON allows them) as None, as
    undefined figures are everywhere else: ``info --json`` prints standard JSON, which has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def positive_class(model: Model) -> str | None:
    """The class a binary model's positive-class metrics, ``--threshold`` and ``--pos-weight`` refer to:
    the stored one, else the class that sorts last (the second of the two); None for other tasks."""
    if model.task != "binary":
        return None
    stored = (model.fit or {}).get("positive_class")
    return str(stored) if stored is not None else str(model.classes[-1])


def _per_member(members: list[dict], fit: dict, key: str) -> list:
    """Each member's ``key``; a model written before the members were listed has its one run's at the top level
    of ``fit`` (else nothing: [])."""
    if members:
        return [m.get(key) for m in members]
    return [fit[key]] if fit.get(key) is not None else []


def _same_or_list(values: list):
    """One value when every member has it, else the list (members differ in rows, so "auto" may differ);
    None without members (a model written before they were listed: what "auto" became is not stored)."""
    if not values:
        return None
    return values[0] if all(v == values[0] for v in values) else values


def _file(path, format_version: int | None) -> dict | None:
    """The file's path, size, modification time and model format version (which says what it can hold)."""
    if path is None:
        return None
    p = Path(path)
    try:
        st = os.stat(0) if str(path) == "-" else p.stat()  # "-": standard input
    except OSError:  # gone since it was read (a pipe's name): nothing of its own to say
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):  # a pipe (<(zcat m.mlp.gz), /dev/stdin): no size or time
        return {"path": str(p), "bytes": None, "modified": None, "format_version": format_version}
    modified = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")
    return {"path": str(p), "bytes": int(st.st_size), "modified": modified, "format_version": format_version}


def _fitted_on(model: Model) -> str:
    """Which rows the shipped preprocessing was fitted on. Said of every model as the ensemble's ("each member's
    training rows; the reference: all rows"), which was wrong twice: a --refit network's is fitted on all rows,
    and one network's (--folds 1) on its training rows, the validation rows held out, its reference included."""
    fit = model.fit or {}
    if fit.get("refit_epochs"):
        return "all rows (one network refitted on every row)"
    folds = fit.get("folds")
    if len(model.members) == 1 and not (isinstance(folds, int) and folds > 1):  # not an interrupted ensemble's
        return "the network's training rows (not its validation rows)"
    return "each member's training rows (the reference: all rows, for the shift report)"


def _preprocessing(pre, members, fitted_on: str) -> dict:
    """The preprocessing's settings; --top-var is the members' (the reference preprocessing, fitted on all rows
    for the shift check, keeps every feature some member uses and has no --top-var of its own)."""
    cfg = getattr(pre, "config", None)
    if cfg is None:
        return {}
    top_var = {getattr(getattr(m.preprocessor, "config", None), "top_var", None) for m in members} - {None}
    return {"log1p": bool(cfg.log1p), "impute": cfg.impute, "top_var": max(top_var) if top_var else cfg.top_var,
            "standardize": bool(cfg.standardize), "scaling": cfg.scaling if cfg.standardize else None,
            "fitted_on": fitted_on}
