"""Recalibrating a model on a labelled cohort of its new population (``mlpcli recalibrate``): the table is read as
``evaluate`` reads it, the model's probabilities and the true classes go to ``mlpcli.recalibration``, and a copy of
the model comes back with the update it keeps (or none), its figures and the cohort it was fitted on."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import recalibration as recal
from ..data.streamed import DEFAULT_CHUNK_MB
from ..errors import DataError, OptionError
from ..model_io import Model
from .columns import RoleFlags
from .evaluation import read_targets_as
from .stream import _Run

__all__ = ["RecalibrationResult", "recalibrate"]

# Fewer samples of the rarest class than this make an update noisy (Steyerberg: about 100 events and 100 non-events
# to validate a model; an intercept needs fewer): a note says so
FEW_FOR_UPDATE = 100


@dataclass
class RecalibrationResult:
    """What ``recalibrate`` did: the model to write (``model``; the input's copy, with ``recalibration`` set unless
    ``kept`` is "none"), the update kept and the figures of all three on the cohort (in-sample: the same samples
    fitted and scored)."""

    model: Model
    kept: str  # "none" | "intercept" | "logistic"
    method: str  # what was asked: "auto" or one of the updates
    n: int
    figures: dict  # {"none" | "intercept" | "logistic": {"log_loss", "ece", "observed_expected" (binary)}}
    test: dict  # the closed test (``RecalibrationFit.test``)
    cohort: dict
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        rc = self.model.recalibration
        return {"kept": self.kept, "method": self.method, "n": self.n, "cohort": self.cohort, "test": self.test,
                "figures": self.figures, "recalibration": None if rc is None or self.kept == "none" else rc.to_dict(),
                "notes": self.notes, "warnings": self.warnings}


def recalibrate(model: Model, source, *, method: str = "auto", alpha: float = 0.05, roles: RoleFlags | None = None,
                fill_missing: str | None = None, max_missing: float | None = None, chunksize: int | None = None,
                chunk_mb: float = DEFAULT_CHUNK_MB, stdin=None,
                progress: Callable[[dict], None] | None = None) -> RecalibrationResult:
    """Fit the intercept and the logistic update of `model`'s probabilities on the labelled table `source` (path,
    "-" or DataFrame, read as ``evaluate`` reads it) and keep `method`'s ("auto": the closed test's choice at
    `alpha`; ``mlpcli.recalibration``). Binary and multiclass models; every class needs MIN_CLASS_SAMPLES samples
    in the table. The returned model predicts with the update after its temperature, and its decision rule divides
    by the cohort's class shares (so a balanced rule keeps its meaning there, and ``--prevalence`` moves the
    probabilities from the cohort's mix); prediction sets and the out-of-distribution flag keep the training
    calibration."""
    from .. import metrics

    if method not in recal.METHODS:
        raise OptionError(f"--method must be one of {', '.join(recal.METHODS)}, got {method!r}")
    if not 0.0 < alpha < 1.0:
        raise OptionError(f"--alpha must lie strictly between 0 and 1, got {alpha!r}")
    if model.task not in ("binary", "multiclass") or model.output_activation() not in ("softmax", "sigmoid"):
        raise OptionError(f"recalibrate updates a binary or multiclass model's probabilities; this model is "
                          f"{model.task}" + ("" if model.task in ("binary", "multiclass") else
                                             " (its outputs are not one set of class probabilities)"))
    if model.recalibrated_on is not None:
        raise OptionError(f"this model was already recalibrated on {model.recalibrated_on}; recalibrate the model it "
                          "was made from "
                          "(an update fitted on top of another mixes two populations)")
    reader, roles, target_note = read_targets_as(model, roles)
    run = _Run(reader, source, roles=roles, need_target=True, by=None, fill_missing=fill_missing,
               chunksize=chunksize, chunk_mb=chunk_mb, stdin=stdin, progress=progress, max_missing=max_missing)
    outs, ys, groups = [], [], []
    for out, meta in run.blocks():
        outs.append(out)
        ys.append(meta["y"])
        if meta.get("group") is not None:
            groups.append(meta["group"])
    P = np.concatenate(outs) if outs else np.zeros((0, model.network.n_outputs))
    y = np.concatenate(ys).astype(np.int64) if ys else np.zeros(0, dtype=np.int64)
    classes = [str(c) for c in model.classes]
    counts = np.bincount(y, minlength=len(classes))
    few = [(c, int(n)) for c, n in zip(classes, counts) if n < recal.MIN_CLASS_SAMPLES]
    if few:
        shown = ", ".join(f"{c!r} {n}" for c, n in few[:5]) + (" …" if len(few) > 5 else "")
        raise DataError(f"{_name(source)}: recalibration needs at least {recal.MIN_CLASS_SAMPLES} samples of each of "
                        f"the model's classes, and the table has {shown}; add samples of those classes (an intercept "
                        "fitted on a handful is noise)")
    link = model.output_activation()
    try:
        fitted = recal.fit(P, y, link)
    except ValueError as exc:
        raise DataError(f"{_name(source)}: {exc}") from None
    kept, intercept, slope, test = recal.choose(fitted, method, alpha)
    n_units = len(np.unique(np.concatenate(groups).astype(str))) if groups else None
    cohort = {"data": _name(source), "sha256": _file_sha256(source), "n": int(len(y)),
              **({"patients": n_units} if n_units is not None else {}),
              "class_counts": {c: int(n) for c, n in zip(classes, counts)}}
    figures = {}
    for name, (a, b) in (("none", (np.zeros(len(intercept)), 1.0)), ("intercept", (fitted.intercept, 1.0)),
                         ("logistic", (fitted.logistic_intercept, fitted.logistic_slope))):
        Q = P if name == "none" else recal.Recalibration(name, a, b).apply(P, link)
        m = metrics.compute(model.task, y, metrics.as_task_proba(model.task, Q), model.classes)
        figures[name] = {"log_loss": m.get("log_loss"), "ece": m.get("ece"),
                         **({"observed_expected": m.get("observed_expected")} if model.task == "binary" else {})}
    new = dataclasses.replace(model)
    notes, warnings = [*filter(None, [target_note]), *run.notes], list(run.warnings)
    if kept != "none":
        fit_doc = {"alpha": test["alpha"], "p_overall": test["p_overall"], "p_slope": test["p_slope"],
                   "log_loss_before": figures["none"]["log_loss"], "log_loss_after": figures[kept]["log_loss"],
                   "chosen_by": "closed test" if method == "auto" else "option"}
        new.recalibration = recal.Recalibration(kept, np.asarray(intercept, dtype=np.float64), float(slope),
                                                cohort=cohort, fit=fit_doc)
        if model.decision is not None:  # the probabilities are now of the cohort's mix: the rule divides by it
            new.decision = model.decision.with_shares(counts / counts.sum())
    if int(counts.min()) < FEW_FOR_UPDATE:
        rarest = classes[int(np.argmin(counts))]
        notes.append(f"the table holds {int(counts.min())} samples of {rarest!r}: with fewer than {FEW_FOR_UPDATE} of "
                     "the rarest class the update is rough" + (" (the closed test keeps a simpler one unless the "
                                                               "evidence is clear)" if method == "auto" else ""))
    if n_units is not None and n_units < len(y):
        notes.append(f"the tests count the {len(y):,} samples as independent; they come from {n_units:,} patients, "
                     "so their p-values are too small")
    if kept != "none" and (model.conformal is not None or model.ood is not None):
        notes.append("prediction sets (--coverage) and the out-of-distribution flag (--ood) keep the training "
                     "calibration: the update changes the probabilities, not them")
    return RecalibrationResult(model=new, kept=kept, method=method, n=int(len(y)), figures=figures, test=test,
                               cohort=cohort, notes=notes, warnings=warnings)


def _name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return "standard input" if str(source) == "-" else os.path.basename(os.fspath(source).rstrip("/"))
    return "the table"


def _file_sha256(source) -> str | None:
    """sha256 hex of the table file's bytes (None: standard input, a DataFrame or a directory)."""
    if not isinstance(source, (str, os.PathLike)) or str(source) == "-" or not os.path.isfile(source):
        return None
    digest = hashlib.sha256()
    with open(source, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
