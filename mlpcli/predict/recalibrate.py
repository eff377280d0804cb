"""Recalibrating a model on a labelled cohort of its new population (``mlpcli recalibrate``): the table is read as
``evaluate`` reads it, the model's probabilities and the true classes go to ``mlpcli.recalibration``, and a copy of
the model comes back with the update it keeps (or none), its figures and the cohort it was fitted on."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import recalibration as recal
from ..data.streamed import DEFAULT_CHUNK_MB
from ..decision import Decision
from ..errors import ConfigError, DataError, OptionError
from ..fileio import file_sha256
from ..model_io import Model
from .columns import RoleFlags
from .evaluation import read_targets_as
from .stream import NOVEL_LABELS_HINT, _Run

__all__ = ["RecalibrationResult", "recalibrate"]

# Fewer samples of the rarest class than this make an update noisy (Steyerberg: about 100 events and 100 non-events
# to validate a model; an intercept needs fewer): a note says so
FEW_FOR_UPDATE = 100
# The table reader's advice is evaluate's; recalibrate's in its place
_ADVICE = {
    "; evaluation needs the true labels — name the column with --target, or use `mlpcli predict` for unlabelled data":
        "; recalibration fits the model to the true labels — name their column with --target",
    NOVEL_LABELS_HINT: "; recalibration fits the model's own classes: leave rows of other labels out of the table",
}


@dataclass
class RecalibrationResult:
    """What ``recalibrate`` did: the model to write (``model``; the input's copy, with ``recalibration`` set unless
    ``kept`` is "none"), the update kept and the figures of all three on the cohort (in-sample: the same samples
    fitted and scored)."""

    model: Model
    kept: str  # "none" | "intercept" | "logistic"
    method: str  # what was asked: "auto" or one of the updates
    n: int
    # {"none" | "intercept" | "logistic": {"log_loss", "ece", "observed_expected" (binary)}; "logistic": None where the
    # model's probabilities separate the classes (no finite slope)}
    figures: dict
    test: dict  # the closed test (``RecalibrationFit.test``)
    cohort: dict
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        rc = self.model.recalibration
        return {"kept": self.kept, "method": self.method, "n": self.n, "cohort": self.cohort, "test": self.test,
                "figures": self.figures, "recalibration": None if rc is None else rc.to_dict(),
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
        raise ConfigError(f"recalibrate updates a binary or multiclass model's probabilities; this model is "
                          f"{model.task}" + ("" if model.task in ("binary", "multiclass") else
                                             " (its outputs are not one set of class probabilities)"))
    if model.recalibrated_on is not None:
        raise ConfigError(f"this model was already recalibrated on {model.recalibrated_on}; recalibrate the model it "
                          "was made from (an update fitted on top of another mixes two populations)")
    reader, roles, target_note = read_targets_as(model, roles)
    run, P, y, groups, seen = _read_labelled(model, reader, source, roles=roles, fill_missing=fill_missing,
                                             chunksize=chunksize, chunk_mb=chunk_mb, stdin=stdin, progress=progress,
                                             max_missing=max_missing)
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
        kept, intercept, slope, test = recal.choose(fitted, method, alpha)
    except ValueError as exc:
        raise DataError(f"{_name(source)}: {exc}") from None
    if kept != "none" and not np.all(np.abs(intercept) <= recal.MAX_INTERCEPT):
        raise DataError(f"{_name(source)}: the {kept} update's intercepts reach {float(np.max(np.abs(intercept))):.3g} "
                        "on the log scale: not an update of the model's probabilities but a replacement of them; "
                        "check the table's labels")
    n_units = len(np.unique(groups.astype(str))) if groups is not None else None
    cohort = {"data": _name(source), "sha256": file_sha256(source), "n": int(len(y)),
              **({"patients": n_units} if n_units is not None else {}),
              "class_counts": {c: int(n) for c, n in zip(classes, counts)}}
    figures = {}
    for name, (a, b) in (("none", (None, None)), ("intercept", (fitted.intercept, 1.0)),
                         ("logistic", (fitted.logistic_intercept, fitted.logistic_slope))):
        if name == "logistic" and fitted.separated:
            figures[name] = None  # no finite fit
            continue
        Q = P if name == "none" else recal.Recalibration(name, a, b).apply(P, link)
        m = metrics.compute(model.task, y, metrics.as_task_proba(model.task, Q), model.classes)
        figures[name] = {"log_loss": m.get("log_loss"), "ece": m.get("ece"),
                         **({"observed_expected": m.get("observed_expected")} if model.task == "binary" else {})}
    new = dataclasses.replace(model)
    shares = counts / counts.sum()
    if kept != "none":
        fit_doc = {"alpha": test["alpha"], "p_overall": test["p_overall"], "p_slope": test["p_slope"],
                   "log_loss_before": figures["none"]["log_loss"], "log_loss_after": figures[kept]["log_loss"],
                   "chosen_by": "closed test" if method == "auto" else "option"}
        new.recalibration = recal.Recalibration(kept, np.asarray(intercept, dtype=np.float64), float(slope),
                                                cohort=cohort, fit=fit_doc)
        # the probabilities are now of the cohort's mix: the rule divides by it, and --prevalence moves from it (a
        # file from before the rule was stored decided by argmax: it still does, now with the mix to move from)
        new.decision = (model.decision or Decision(rule="argmax", chosen="auto")).with_shares(shares)
    notes, warnings = _notes(model, method, kept, test, fitted.separated, classes, counts, len(y), n_units,
                             int(seen.sum()) if seen is not None else 0)
    notes[:0] = [*filter(None, [target_note]), *run.notes]
    warnings[:0] = run.warnings
    return RecalibrationResult(model=new, kept=kept, method=method, n=int(len(y)), figures=figures, test=test,
                               cohort=cohort, notes=notes, warnings=warnings)


def _read_labelled(model: Model, reader: Model, source, **kw):
    """(the run, the model's probabilities P (n, outputs), the classes y (n,), the patients (n,) or None, whether each
    row is a training row (n,) bool or None) of the labelled table, read as ``evaluate`` reads it; a DataError of
    the reader carries recalibrate's advice in place of evaluate's."""
    outs, ys, groups, seen = [], [], [], []
    try:
        run = _Run(reader, source, need_target=True, by=None, **kw)
        for out, meta in run.blocks():
            outs.append(out)
            ys.append(meta["y"])
            if meta.get("group") is not None:
                groups.append(meta["group"])
            if meta.get("seen") is not None:
                seen.append(meta["seen"])
    except DataError as exc:
        text = str(exc)
        for said, instead in _ADVICE.items():
            text = text.replace(said, instead)
        raise DataError(text) from None
    P = np.concatenate(outs) if outs else np.zeros((0, model.network.n_outputs))
    y = np.concatenate(ys).astype(np.int64) if ys else np.zeros(0, dtype=np.int64)
    return (run, P, y, np.concatenate(groups) if groups else None, np.concatenate(seen) if seen else None)


def _notes(model: Model, method: str, kept: str, test: dict, separated: bool, classes: list[str], counts: np.ndarray,
           n: int, n_units: int | None, seen_rows: int) -> tuple[list[str], list[str]]:
    """recalibrate's (notes, warnings) on what it fitted and what the figures rest on."""
    notes, warnings = [], []
    if seen_rows:
        warnings.append(f"{seen_rows:,} of the table's {n:,} rows are rows the model was trained on: on them its "
                        "probabilities are its fit, not its predictions, and an update fitted to them corrects the "
                        "wrong thing (too confident where it fits its training rows); recalibrate on samples of the "
                        "new population it has not seen")
    if separated:
        notes.append("the model's probabilities separate this table's classes perfectly, so no finite slope fits "
                     "them: the logistic update is left out" + (", and the closed test chose between no update and "
                                                                 "the intercept" if method == "auto" else ""))
    if method != "auto" and method != test["chosen"]:
        notes.append(f"--method {method}: the closed test would have kept "
                     f"{'no update' if test['chosen'] == 'none' else 'the ' + test['chosen'] + ' update'} "
                     f"(the {'intercept' if separated else 'logistic'} update against none "
                     f"{recal.p_text(test['p_overall'])}"
                     + (f", the slope {recal.p_text(test['p_slope'])}" if test.get("p_slope") is not None else "")
                     + ")")
    if kept != "none":
        notes.append("the table's class mix becomes the model's ("
                     + ", ".join(f"{c} {100 * v / n:.3g} %" for c, v in list(zip(classes, counts))[:6])
                     + "): a table sampled by class, such as a case-control set, gives the wrong baseline; give the "
                     "population's mix to predict --prevalence then")
    if int(counts.min()) < FEW_FOR_UPDATE:
        rarest = classes[int(np.argmin(counts))]
        notes.append(f"the table holds {int(counts.min())} samples of {rarest!r}: with fewer than {FEW_FOR_UPDATE} of "
                     "the rarest class the update is rough" + (" (the closed test keeps a simpler one unless the "
                                                               "evidence is clear)" if method == "auto" else ""))
    if n_units is not None and n_units < n:
        notes.append(f"the tests count the {n:,} samples as independent; they come from {n_units:,} patients, "
                     "so their p-values are too small")
    if kept != "none" and (model.conformal is not None or model.ood is not None):
        notes.append("prediction sets (--coverage) and the out-of-distribution flag (--ood) keep the training "
                     "calibration: the update changes the probabilities, not them")
    return notes, warnings


def _name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return "standard input" if str(source) == "-" else os.path.basename(os.fspath(source).rstrip("/"))
    return "the table"
