"""What predict and evaluate add for a clinician deciding whether to trust each prediction: conformal
prediction sets (``conformal``), abstention, and per-sample out-of-distribution flags (``ood``).

    Uncertainty (the options) ─check(model)─▶ Trust (one per run)
      per block of rows:  transformed rows Z ─ood_scores─▶ ood_score, p-value
                          members' raw outputs ─sets─▶ (m, C) membership
      per frame:          columns pred_set, set_size, ood_score, ood_p, ood; abstained labels

The counts it keeps (abstained, empty and multi-class sets, flagged samples) become the run's notes and
its summary.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from ..conformal import SCORES, SET_SEPARATOR, SetPredictor, format_sets, group_weights
from ..errors import ConfigError, ModelFileError
from ..metrics import class_proba
from ..model_io import Model
from ..text import count_of, natural_key

__all__ = ["Uncertainty", "Trust", "DEFAULT_UNASSIGNED", "DEFAULT_OOD_ALPHA", "risk_coverage", "evaluation_report",
           "held_out_trust"]

DEFAULT_UNASSIGNED = "unassigned"
DEFAULT_OOD_ALPHA = 0.01


def _probability(value, name: str, open_low: bool, open_high: bool) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value > 0 if open_low else value >= 0) and (value < 1 if open_high else value <= 1)
    if not ok:
        lo, hi = "(0" if open_low else "[0", "1)" if open_high else "1]"
        raise ConfigError(f"{name} must be a number in {lo}, {hi}, got {value!r}")
    return float(value)


@dataclass
class Uncertainty:
    """Prediction sets, abstention and out-of-distribution flags for predict and evaluate (all off by default).

    coverage: the level of the prediction sets (e.g. 0.9: the set holds the true class for at least 90 % of
      new samples exchangeable with the training ones); adds ``pred_set`` ("A|B") and ``set_size``.
    score: "aps" (adaptive prediction sets) or "lac"; mondrian: coverage per class instead of overall.
    min_confidence: the predicted label becomes ``unassigned_label`` when its calibrated probability is
      below it; abstain_on_empty_set: likewise when the prediction set is empty.
    ood: add ``ood_score``, ``ood_p`` (its p-value among held-out training rows) and ``ood`` (p < ood_alpha).
    """

    coverage: float | None = None
    score: str = "aps"
    mondrian: bool = False
    min_confidence: float | None = None
    abstain_on_empty_set: bool = False
    unassigned_label: str = DEFAULT_UNASSIGNED
    ood: bool = False
    ood_alpha: float = DEFAULT_OOD_ALPHA

    @property
    def abstains(self) -> bool:
        return self.min_confidence is not None or self.abstain_on_empty_set

    @property
    def active(self) -> bool:
        return self.coverage is not None or self.abstains or self.ood

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self, model: Model, source: str = "the model") -> None:
        """Options against each other and the model; ConfigError (options) or ModelFileError (a model
        without the calibration an option needs), naming the option."""
        if self.coverage is not None:
            _probability(self.coverage, "--coverage", True, True)
        if self.score not in SCORES:
            raise ConfigError(f"--conformal-score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if self.coverage is None and self.mondrian:
            raise ConfigError("--mondrian applies to prediction sets (binary and multiclass models): add --coverage "
                              "LEVEL")
        if self.coverage is None and self.abstain_on_empty_set:
            raise ConfigError("--abstain-on-empty-set needs prediction sets (binary and multiclass models): add "
                              "--coverage LEVEL")
        if self.abstain_on_empty_set and self.score == "aps":
            # randomised APS empties the set of a random share of the confident samples, never an uncertain one's
            raise ConfigError("--abstain-on-empty-set: APS sets (--conformal-score aps, the default) are empty only "
                              "for confident samples, at random, so it would abstain on confident calls; add "
                              "--conformal-score lac, whose empty sets mean no class is probable enough")
        if self.min_confidence is not None:
            _probability(self.min_confidence, "--min-confidence", False, False)
        _probability(self.ood_alpha, "--ood-alpha", True, True)
        if not self.active:
            return
        if model.task not in ("binary", "multiclass"):
            # --ood-alpha implies --ood: name what was typed (an --ood-alpha at the default reads as --ood)
            used = ("--coverage" if self.coverage is not None else "--min-confidence" if self.min_confidence is not None
                    else "--ood" if self.ood_alpha == DEFAULT_OOD_ALPHA else "--ood-alpha")
            raise ConfigError(f"{used} applies to binary and multiclass models; this model is {model.task}")
        if self.coverage is not None:
            piped = [str(c) for c in model.classes if SET_SEPARATOR in str(c)]
            if piped:  # "A|B" of classes "A|B" and "C" would read back as three classes
                raise ConfigError(f"--coverage: the model's class {piped[0]!r} holds '|', which pred_set puts between "
                                  "the classes of a set, so its sets could not be read back; rename the class in the "
                                  "training table and retrain")
        if self.abstains:
            label = self.unassigned_label
            if not isinstance(label, str) or not label.strip():
                raise ConfigError(f"--unassigned-label must be a non-empty text, got {label!r}")
            if _names_a_class(label, model.classes):
                raise ConfigError(f"--unassigned-label {label!r} is one of the model's classes; choose another text")
        if self.coverage is not None and getattr(model, "conformal", None) is None:
            raise ModelFileError(f"{source} holds no conformal calibration scores, which --coverage needs (saved by an "
                                 "mlpcli from before prediction sets, or trained without held-out rows); retrain it "
                                 "with this mlpcli")
        if self.ood and getattr(model, "ood", None) is None:
            raise ModelFileError(f"{source} holds no out-of-distribution basis, which --ood needs (saved by an mlpcli "
                                 "from before it); retrain it with this mlpcli")


# A class of a smaller share of the training samples than this (and than 1 - level) is named by the marginal
# sets' note (``Trust._rare_class_notes``)
RARE_FOR_SETS = 0.1


class Trust:
    """One run's prediction sets, abstention and out-of-distribution flags, and their counts."""

    def __init__(self, model: Model, options: Uncertainty, source: str = "the model", prevalence=None):
        """``prevalence``: the cohort's class mix (``mlpcli.prevalence.Prevalence``) when the probabilities are
        moved to it; the prediction sets then weigh the calibration rows for it."""
        options.check(model, source)
        self.model, self.options = model, options
        self.classes = list(model.classes)
        self.prevalence = prevalence
        self.sets = None
        if options.coverage is not None:
            weights = None if prevalence is None else model.conformal.label_shift_weights(np.asarray(prevalence.cohort))
            self.sets = SetPredictor(model.conformal, len(self.classes), len(model.members), model.output_activation(),
                                     model.temperature, options.coverage, options.score, options.mondrian, weights)
        self.basis = model.ood if options.ood else None
        self.n = self.n_empty = self.n_multi = self.set_size = 0
        self.n_low_confidence = self.n_empty_abstained = self.n_ood = self.n_abstained = 0
        self.n_both = 0  # abstained for both reasons: low confidence and an empty set
        # rows and flagged rows per (batch, patient) (a cohort's batch and patient columns, when the model has the
        # roles; None without one): which site drew the flags, counting each patient once (``excess_ood``)
        self.rows_by_unit: Counter = Counter()
        self.ood_by_unit: Counter = Counter()
        self.rule = "argmax"  # the decision rule that chose the labels: set by predict_stream and evaluate

    @property
    def wants_logits(self) -> bool:
        return self.sets is not None

    def ood_scores(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """((n,) out-of-distribution scores, (n,) their p-values) of rows Z (n, p) as the reference preprocessing
        gives them (``ood.OODBasis.score_and_p``)."""
        return None if self.basis is None else self.basis.score_and_p(Z)

    def membership(self, member_logits: list[np.ndarray], model_proba: np.ndarray | None = None) -> np.ndarray:
        """(m, C) bool prediction sets of one block from each member's raw outputs, or (the calibration of a cohort)
        from the model's own probabilities ``model_proba`` (m, outputs), before any --prevalence."""
        return self.sets.sets(member_logits, None if model_proba is None else class_proba(self.model.task, model_proba))

    def columns(self, proba: np.ndarray, pred: np.ndarray, labels: np.ndarray, meta: dict) -> tuple[np.ndarray, dict]:
        """For a frame's rows: the labels with abstentions put in, and the added columns. ``proba`` (m, C)
        class probabilities, ``pred`` (m,) the predicted class indices and ``labels`` (m,) their labels,
        ``meta`` the block's per-row columns (``set`` membership, ``ood_score``)."""
        o, cols = self.options, {}
        m = len(labels)
        self.n += m
        abstain = np.zeros(m, dtype=bool)
        empty = np.zeros(m, dtype=bool)
        if self.sets is not None:
            members = meta["set"]
            size = members.sum(axis=1)
            cols["pred_set"] = format_sets(members, self.classes)
            cols["set_size"] = size.astype(np.int64)
            self.n_empty += int((size == 0).sum())
            self.n_multi += int((size > 1).sum())
            self.set_size += int(size.sum())
            if o.abstain_on_empty_set:
                empty = size == 0
                abstain |= empty
                self.n_empty_abstained += int(empty.sum())
        if o.min_confidence is not None:
            low = predicted_probability(proba, pred) < o.min_confidence
            self.n_low_confidence += int(low.sum())
            self.n_both += int((low & empty).sum())
            abstain |= low
        if o.abstains:  # text throughout, so a column of numeric classes and the label stays one type
            labels = np.array([str(v) for v in labels], dtype=object)
            labels[abstain] = o.unassigned_label
        if self.basis is not None:
            score, p = meta["ood_score"], meta["ood_p"]
            flagged = p < o.ood_alpha
            cols["ood_score"], cols["ood_p"], cols["ood"] = score, p, flagged
            self.n_ood += int(flagged.sum())
            _count_units(self.rows_by_unit, self.ood_by_unit, flagged, meta.get("batch"), meta.get("group"))
        self.n_abstained += int(abstain.sum())
        return labels, cols

    @property
    def added_columns(self) -> list[str]:
        cols = ["pred_set", "set_size"] if self.sets is not None else []
        return cols + (["ood_score", "ood_p", "ood"] if self.basis is not None else [])

    @property
    def in_every_set(self) -> list[str]:
        """The classes every prediction set holds because the level needs more held-out rows (patients) than
        the model has (``SetPredictor.trivial``; in the summaries beside ``level_notes``'s note)."""
        return [] if self.sets is None else [str(c) for c, t in zip(self.classes, self.sets.trivial) if t]

    def split_notes(self) -> list[str]:
        """A note when the model's held-out rows were split one by one (trained without a patient column, and no
        --val-data): then a patient with several samples had some held out and the others in training, so the
        held-out scores are those of samples whose patient the model knew, and a new patient's samples are covered
        by the sets less often than the level and flagged out-of-distribution more often than --ood-alpha (on a
        table of 150 patients with 1-5 samples each: 35 % flagged at 0.05)."""
        ood_held_out = self.basis is not None and self.basis.cohort is None
        if (self.sets is None or self.sets.on_model_proba) and not ood_held_out:
            return []
        roles = getattr(self.model, "roles", None) or {}
        config = getattr(self.model, "config", None) or {}
        if "group" not in roles or roles["group"] is not None or config.get("val_data"):
            return []
        promised = []
        if self.sets is not None and not self.sets.on_model_proba:  # (a cohort's sets were calibrated on its patients)
            promised.append(f"covered by the sets less often than --coverage {self.options.coverage:.12g}")
        if ood_held_out:
            promised.append(f"flagged out-of-distribution more often than --ood-alpha {self.options.ood_alpha:.12g}")
        return ["the model was trained without a patient column, so its held-out rows were split one sample at a "
                "time: if a patient has several samples, the held-out ones had their patient in training, and a new "
                f"patient's samples can be {' and '.join(promised)}; retrain with --group COLUMN"]

    def level_notes(self) -> list[str]:
        """What the level asks of the model's held-out scores: a note when the level needs more of them than the
        model has, so that some class is in every set (``predict`` and ``evaluate`` say it alike)."""
        out: list[str] = []
        if self.sets is None:
            return out
        o = self.options
        recalibrated_on = getattr(self.model, "recalibrated_on", None)  # (a bare stand-in model has none)
        cal = self.model.conformal
        if cal.on_model_proba:
            out.append(f"prediction sets: calibrated on {_cohort_name(cal.cohort)} "
                       "(mlpcli recalibrate): their coverage is promised for new samples of that population")
        elif recalibrated_on is not None:
            out.append(f"prediction sets: of the model's training calibration, not of its recalibration on "
                       f"{recalibrated_on} (which moves the probabilities, not the sets' held-out scores): "
                       "their coverage is promised for samples like the training ones")
        out += self._rare_class_notes()
        trivial = self.in_every_set
        if not trivial:
            return out
        # a set can leave a class out once level · (W + 1) <= W: W >= level / (1 - level) held-out rows (patients)
        # (the level as written: 0.999999999 needs 999,999,999, where 1 − level in floats would say 1,000,000,028)
        level = Fraction(repr(float(o.coverage)))
        needed = math.ceil(level / (1 - level))
        cal = self.model.conformal
        weighted = bool(np.any(cal.weight < 1))
        totals = np.atleast_1d(self.sets.total)
        have = (f"{float(totals.min()):.0f}" if not o.mondrian
                else f"{float(totals[self.sets.trivial].min()):.0f} in the smallest such class")
        unit = "patients" if weighted else "rows"
        if self.prevalence is not None and not o.mondrian:
            # weighed for the cohort's mix, a class far commoner there than among the held-out rows weighs as much as
            # many of them: the count it must stay below rises with its weight, not with the rows the model lacks
            mix = cal.class_mix(len(self.classes))
            named = ", ".join(f"{c} ({100 * self.prevalence.cohort[self.classes.index(c)]:.3g} % in the mix given, "
                              f"{100 * mix[self.classes.index(c)]:.3g} % of the held-out {unit})" for c in trivial[:5])
            return out + [f"every prediction set includes {named}{' …' if len(trivial) > 5 else ''}: weighed for "
                          f"--prevalence, a class this much commoner in the cohort than among the model's held-out "
                          f"{unit} cannot be ruled out at --coverage {o.coverage:.12g}; lower the level, or use "
                          "--mondrian (per class, unchanged by the mix)"]
        # a cohort's scores (recalibrate): its rows, not held-out ones, and more of them come from a larger cohort
        held = "cohort" if cal.on_model_proba else "held-out"
        remedy = "recalibrate on a larger cohort" if cal.on_model_proba else "retrain on more samples"
        return out + [f"--coverage {o.coverage:.12g} needs more {held} "
                      f"{unit if not o.mondrian else unit + ' of a class'} than the model has, so every set includes "
                      f"{', '.join(trivial[:5])}"
                      f"{' …' if len(trivial) > 5 else ''} (a set can leave a class out from {needed:,} {held} "
                      f"{'patients' if weighted else 'rows'}{' of the class' if o.mondrian else ''}"
                      f"{', each patient counted once' if weighted else ''}; the model has {have}); lower the level or "
                      f"{remedy}"]

    def _rare_class_notes(self) -> list[str]:
        """Marginal sets (no --mondrian) promise the level over all samples, not per class: a class rarer than
        1 - level can be left out of every set and the promise still hold (a class of 1.2 % was covered for 0 of
        its 10 new samples at 0.9, overall coverage 0.888). A note naming such classes, with --mondrian."""
        shares = self.model.class_shares() if hasattr(self.model, "class_shares") else None
        where = "the training samples"
        if self.prevalence is not None:  # the sets are weighed for the cohort's mix: its rare classes are the ones
            shares, where = np.asarray(self.prevalence.cohort), "the cohort (--prevalence)"
        level = float(self.options.coverage)
        if self.options.mondrian or shares is None:
            return []
        # rare ones only: at a low level (0.5) every class is rarer than 1 - level, and the note would be noise
        rare = [(str(c), float(s)) for c, s in zip(self.model.classes, shares) if s < min(1 - level, RARE_FOR_SETS)]
        if not rare:
            return []
        named = ", ".join(f"{c!r} ({s:.1%})" for c, s in rare[:5]) + (" …" if len(rare) > 5 else "")
        return [f"--coverage {level:.12g} is a share of all samples, not of each class: a class rarer than "
                f"{min(1 - level, RARE_FOR_SETS):.0%} of {where} — {named} — can be left out of the "
                "sets for most of its samples while the share holds; --mondrian gives each class the coverage"]

    @property
    def _ood_like(self) -> str:
        """Whose samples the flag's p-values are among: "the training ones", or a labelled cohort's (recalibrate)."""
        cohort = None if self.basis is None else self.basis.cohort
        return "the training ones" if cohort is None else f"{_cohort_name(cohort)}'s"

    def ood_floor(self) -> float:
        """The smallest p-value the model's held-out rows can give, a sample's beyond them all: 1 / (m + 1)
        for the distance alone, more with the class-relative part (``ood.OODBasis.p_value``)."""
        return float(self.basis.p_value(np.array([np.inf]))[0])

    def ood_warnings(self) -> list[str]:
        """Warnings on what the sets and flags promise (``predict`` and ``evaluate`` say them alike): that the
        model's held-out rows were split one sample at a time (``split_notes``: a warning, which --quiet keeps,
        since the coverage and the flag rate then hold for known patients only), and when --ood-alpha is not
        above the smallest p-value the model's held-out rows can give (``ood_floor``): then no sample can be
        flagged, however far out."""
        split = self.split_notes()
        if self.basis is None:
            return split
        m, alpha = len(self.basis.calibration), self.options.ood_alpha
        floor = self.ood_floor()
        if floor < alpha:
            return split + self.excess_ood()
        unit = "patients" if self.basis.weighted else "rows"
        from ..ood import sample_rows

        trained = int((getattr(self.model, "provenance", None) or {}).get("n_samples") or 0)
        capped = len(sample_rows(trained, self.basis.n_features)) if trained else trained
        if 0 < capped < trained and not self.basis.streamed:  # the rows were cut by their width, not by the patients
            remedy = (f"at {self.basis.n_features:,} features the out-of-distribution check keeps {capped:,} of the "
                      f"{trained:,} training rows (a memory cap on its rows), so more patients do not help: train on "
                      "fewer features (--top-var)")
        else:
            remedy = f"train with more held-out {unit} (the default ensemble scores every training row)"
        held = "held-out"
        if self.basis.cohort is not None:  # calibrated on a labelled cohort (recalibrate): a larger one
            held, remedy = "cohort", "recalibrate on a larger cohort"
        return split + [f"--ood flags nothing at --ood-alpha {alpha:.12g}: the model's out-of-distribution calibration has "
                f"{m} {held} {unit}, so its smallest p-value is {round(floor * (m + 1))}/{m + 1} = {floor:.3g}; "
                f"pass --ood-alpha above {floor:.3g}, or {remedy}"]

    def excess_ood(self, flagged: np.ndarray | None = None, batches: np.ndarray | None = None,
                   groups: np.ndarray | None = None) -> list[str]:
        """A warning when far more samples were flagged out-of-distribution than chance flags among samples like
        the training ones (about --ood-alpha of them): the cohort, or the batches named, differ from the training
        data, so the calibrated probabilities and the prediction sets' coverage do not hold for the flagged
        samples. Far more: at least twice alpha, and beyond chance by a Chernoff bound at 1 in 1,000
        (``beyond_chance``); a site with 85 % flagged among three read as "cohort shift: none" and a note.
        With the cohort's patients known, each patient counts once (the share of its samples flagged): the samples
        of one patient are flagged together or not at all far more often than independent rows would be, so a
        count of rows calls chance clusters of one or two patients beyond chance (simulated, 4,000 cohorts of 30
        in-distribution patients of 1-30 samples each at --ood-alpha 0.01, the flags of one patient's samples
        correlated at 0.7-0.97: 2-12 % warned counting rows, none counting patients). Without a patient column,
        or with patients too few to be beyond chance even all flagged (one, or two at --ood-alpha 0.05), the rows
        are counted.
        From the counts ``columns`` kept (predict), or from the rows' ``flagged`` (n,) bool, ``batches`` (n,) and
        ``groups`` (n,) (evaluate, which scores the rows without ``columns``)."""
        alpha = self.options.ood_alpha
        if self.basis is None or self.ood_floor() >= alpha:
            return []
        rows, hits = self.rows_by_unit, self.ood_by_unit
        if flagged is not None:
            rows, hits = Counter(), Counter()
            _count_units(rows, hits, flagged, batches, groups)
        per_patient = any(g is not None for _, g in rows)
        n_ood, n = sum(hits.values()), sum(rows.values())
        k, units = _flagged_units(rows, hits)
        few = per_patient and not beyond_chance(units, units, alpha)  # too few patients to judge even all flagged
        if few:  # one or two patients (a single patient's biopsies): their samples, counted as rows, say it
            per_patient, k, units = False, float(n_ood), n
        if not beyond_chance(k, units, alpha):
            return []
        by_batch: dict = {}  # batch -> {patient: rows}
        for (b, g), r in rows.items():
            by_batch.setdefault(b, {})[g] = r
        drawn = []
        if len(by_batch) > 1 or None not in by_batch:
            for b, b_rows in by_batch.items():
                if few:  # counted by samples, as the cohort's total
                    kb, ub = float(sum(hits[(b, g)] for g in b_rows)), int(sum(b_rows.values()))
                else:
                    kb, ub = _flagged_units({(b, g): r for g, r in b_rows.items()}, hits)
                if beyond_chance(kb, ub, alpha):
                    f = sum(hits[(b, g)] for g in b_rows)
                    drawn.append((b, f, sum(b_rows.values()), kb / ub))
        drawn.sort(key=lambda t: (-t[3], str(t[0])))
        where = ""
        if drawn and len(drawn) < len(by_batch):  # some batches, not all: name them
            listed = ", ".join(f"{b!r} {f / r:.0%} ({f} of {r})" for b, f, r, _ in drawn[:5])
            where = f"; most in batch{'es' * (len(drawn) > 1)} {listed}{' …' if len(drawn) > 5 else ''}"
        patients = (f" (counting each patient once, a mean {k / units:.0%} of each patient's samples, over {units} "
                    "patients: the samples of one patient are flagged together)" if per_patient else
                    f" (counted by samples: {units_of(rows)} patient{'s' * (units_of(rows) != 1)}, too few to judge "
                    "patient by patient)" if few else "")
        holds = "calibrated probabilities" + (" and prediction sets' --coverage" if self.sets is not None else "")
        if self.basis.cohort is not None:  # p-values among a labelled cohort of this population (recalibrate)
            return [f"{n_ood:,} of {count_of(n, 'sample')} ({n_ood / n:.0%}) flagged out-of-distribution, where about "
                    f"{alpha * 100:.3g} % of samples like {self._ood_like} would be{patients}{where}: they lie further "
                    f"from the training data than that population's own samples (a kind of sample its classes do not "
                    f"include, or another site), so the {holds} do not hold for them; look at the flagged samples "
                    "(column ood) before trusting their calls"]
        return [f"{n_ood:,} of {count_of(n, 'sample')} ({n_ood / n:.0%}) flagged out-of-distribution, where about "
                f"{alpha * 100:.3g} % of samples like the training ones would be{patients}{where}: they differ from "
                f"the training data (another site, protocol or sample type?), so the {holds} do not hold for them; "
                "look at the flagged samples (column ood) before trusting their calls"]

    def notes(self) -> list[str]:
        """The run's notes on what was added (after the last frame)."""
        o, out, n = self.options, [], max(self.n, 1)
        if self.sets is not None:
            what = "per class (Mondrian)" if o.mondrian else "overall"
            cal = self.model.conformal
            scores = (f"scores of {_cohort_name(cal.cohort)}'s rows" if cal.on_model_proba
                      else f"held-out scores of {cal.source} rows")
            out.append(f"prediction sets ({o.score.upper()}, coverage {o.coverage:.12g} {what}, {scores}): mean size {self.set_size / n:.2f}; "
                       f"{self.n_multi:,} multi-class and {self.n_empty:,} empty of {self.n:,}")
            out += self.level_notes()
            if self.n_empty and o.score == "aps":
                out.append("APS sets are empty at random among confident samples, not for uncertain ones: randomised APS "
                           "leaves even the top class out of a random share of the samples whose top probability exceeds "
                           "the level's threshold (more of them the lower the level, whatever the model's accuracy)"
                           + ": --conformal-score lac empties the least confident sets instead")
        if o.abstains:
            reasons = []
            if o.min_confidence is not None:
                reasons.append(f"{self.n_low_confidence} below --min-confidence {o.min_confidence:.12g}"
                               + (": a label of the balanced decision rule is often a rarer class than the most "
                                  "probable one, at a lower probability; --decision argmax labels by the most "
                                  "probable class" if self.n_low_confidence and self.rule == "balanced"
                                  else ""))
            if o.abstain_on_empty_set:
                reasons.append(f"{self.n_empty_abstained} with an empty set")
            if self.n_both:  # the reasons overlap: their counts add up to more than the abstained
                reasons.append(f"{self.n_both} of them both")
            out.append(f"{self.n_abstained:,} of {count_of(self.n, 'sample')} {o.unassigned_label!r} "
                       f"({'; '.join(reasons)})")
        if self.basis is not None:
            chance = (f"at most {o.ood_alpha * 100:.3g} % of samples like {self._ood_like} are flagged by chance"
                      if self.ood_floor() < o.ood_alpha else "none can be flagged at this level: see the warning")
            m = len(self.basis.calibration)
            if self.basis.cohort is None:
                among = (f"{m} held-out training patients, each counted once" if self.basis.weighted
                         else f"{m} held-out training rows")
            else:  # calibrated on a labelled cohort (recalibrate)
                of = _cohort_name(self.basis.cohort)
                among = f"{m} patients of {of}, each counted once" if self.basis.weighted else f"{m} samples of {of}"
            if self.split_notes() and self.ood_floor() < o.ood_alpha:  # the promise holds for the held-out rows only
                chance = (f"at most {o.ood_alpha * 100:.3g} % of held-out training rows are flagged by chance; a new "
                          "patient's samples more often: see the warning")
            out.append(f"{self.n_ood:,} of {count_of(self.n, 'sample')} flagged out-of-distribution (p < {o.ood_alpha:.12g} among "
                       f"{among}; {chance})")
        return out

    def summary(self) -> dict:
        """JSON-able counts for predict's summary."""
        out: dict = {"options": self.options.to_dict(), "rows": self.n}
        if self.sets is not None:
            cal = self.model.conformal
            out.update(mean_set_size=self.set_size / max(self.n, 1), empty_sets=self.n_empty,
                       multi_class_sets=self.n_multi, in_every_set=self.in_every_set,
                       # whose scores the sets are ("cohort": a labelled table of this population, named)
                       sets_source=cal.source, **({"sets_cohort": cal.cohort} if cal.cohort is not None else {}))
        if self.options.abstains:
            out.update(abstained=self.n_abstained, low_confidence=self.n_low_confidence,
                       empty_set_abstained=self.n_empty_abstained, abstained_for_both=self.n_both)
        if self.basis is not None:
            # whether a sample could be flagged at all (``ood_warnings``): without, the 0 flagged says nothing
            out.update(ood_flagged=self.n_ood, ood_can_flag=self.ood_floor() < self.options.ood_alpha)
        return out


# ── evaluate: how the sets, abstention and flags did against known labels ──────────────────────────────────

RISK_COVERAGE_POINTS = 101  # points of the risk–coverage curve kept (accepted shares 0, 1 %, ..., 100 %)


def predicted_probability(proba: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(n,) each row's probability of its predicted class ``pred`` (n,) in ``proba`` (n, C): the confidence
    --min-confidence compares. Not the top probability: a binary --threshold below 0.5 predicts the positive
    class with a probability under one half."""
    return proba[np.arange(len(pred)), pred]


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> dict:
    """The risk–coverage curve of abstaining below a confidence threshold: accept the most confident share c
    of the samples; the risk is the error rate among them. {"coverage": [...], "risk": [...], "threshold":
    [...]} at RISK_COVERAGE_POINTS shares (risk None where nothing is accepted), and its area (AURC, lower is
    better: the mean risk over the shares)."""
    n = len(confidence)
    if n == 0:
        return {"coverage": [], "risk": [], "threshold": [], "aurc": None}
    order = np.argsort(-confidence, kind="stable")
    ranked = confidence[order]
    errors = np.cumsum(~correct[order]).astype(np.float64)
    # Samples of equal confidence are accepted together or not at all: within a run of ties the count is the
    # expected errors in any order of them (linear across the run), so the curve and AURC do not depend on the
    # table's row order (a confident model's probabilities round to exactly 1 for many samples).
    start = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # first position of each run
    end = np.r_[start[1:], n]  # one past its last
    before = np.r_[0.0, errors][start]  # errors ranked above the run
    run_rate = (errors[end - 1] - before) / (end - start)
    run = np.repeat(np.arange(len(start)), end - start)
    errors = before[run] + (np.arange(n) - start[run] + 1) * run_rate[run]
    shares = np.linspace(0, 1, RISK_COVERAGE_POINTS)
    k = np.round(shares * n).astype(np.int64)
    risk = [None if kk == 0 else float(errors[kk - 1] / kk) for kk in k]
    threshold = [None if kk == 0 else float(ranked[kk - 1]) for kk in k]
    full = errors / np.arange(1, n + 1)
    return {"coverage": shares.tolist(), "risk": risk, "threshold": threshold, "aurc": float(full.mean())}


def _count_units(rows: Counter, hits: Counter, flagged: np.ndarray, batches: np.ndarray | None,
                 groups: np.ndarray | None) -> None:
    """Add a block's rows and flagged rows (``flagged`` (m,) bool) to ``rows`` and ``hits``, keyed by (batch,
    patient): the rows' ``batches`` and ``groups`` (m,), None where the cohort has no such column."""
    flagged = np.asarray(flagged, dtype=bool)
    if batches is None and groups is None:  # one key: two sums, no pass in Python
        rows[(None, None)] += len(flagged)
        hits[(None, None)] += int(flagged.sum())
        return
    frame = pd.DataFrame({"b": None if batches is None else np.asarray(batches, dtype=object),
                          "g": None if groups is None else np.asarray(groups, dtype=object), "f": flagged})
    counts = frame.groupby(["b", "g"], dropna=False, sort=False)["f"].agg(["size", "sum"])
    for (b, g), size, hit in zip(counts.index, counts["size"].tolist(), counts["sum"].tolist()):
        key = (None if batches is None else b, None if groups is None else g)
        rows[key] += int(size)
        hits[key] += int(hit)


def units_of(rows: dict) -> int:
    """The patients among the (batch, patient) keys of ``rows`` (a patient in two batches once)."""
    return len({g for _, g in rows})


def _flagged_units(rows: dict, hits: Counter) -> tuple[float, int]:
    """(flagged, units) of the (batch, patient) counts ``rows`` / ``hits``: with patients (keys whose patient is not
    None), each patient's share of its samples flagged, summed, and the number of patients (a patient in two
    batches counts once, its samples pooled); without, the flagged rows and the rows."""
    if not any(g is not None for _, g in rows):
        return float(sum(hits[key] for key in rows)), int(sum(rows.values()))
    n_rows, n_hits = Counter(), Counter()
    for (b, g), r in rows.items():
        n_rows[g] += r
        n_hits[g] += hits[(b, g)]
    return float(sum(n_hits[g] / r for g, r in n_rows.items())), len(n_rows)


# How far beyond chance a flagged count must lie to be warned about (``beyond_chance``): ln(1000), a tail of 1 in 1,000
_EXCESS_LOG_ODDS = math.log(1000.0)


def beyond_chance(k: float, n: int, alpha: float) -> bool:
    """Whether k flagged of n samples is far more than the share alpha that chance flags among samples like the
    training ones: k / n at least 2 alpha, and P(Binomial(n, alpha) >= k) below 1 / 1,000 by the Chernoff bound
    exp(-n KL(k / n || alpha)) (an upper bound on the tail: what it calls beyond chance is). The bound holds for
    any sum of n independent shares in [0, 1] of mean alpha (Hoeffding 1963), so k may be the patients' summed
    shares of flagged samples, n the patients."""
    if n <= 0 or k <= 0:
        return False
    p = k / n
    if p < 2 * alpha:
        return False
    kl = p * math.log(p / alpha) + (0.0 if p >= 1 else (1 - p) * math.log((1 - p) / (1 - alpha)))
    return n * kl >= _EXCESS_LOG_ODDS


def _coverage_rows(covered: np.ndarray, size: np.ndarray, keys: np.ndarray, named: list[tuple],
                   groups: np.ndarray | None = None) -> list[dict]:
    """Coverage and mean set size per (key, name) of ``named``: the rows whose ``keys`` value is the key; with
    ``groups`` (n,) (the rows' patients) also the coverage with each of the rows' patients counted once
    (``coverage_per_group``), the figure the per-patient guarantee is about, per class or site as overall."""
    out = []
    for key, name in named:
        idx = keys == key
        row = {"value": name, "n": int(idx.sum()), "coverage": float(covered[idx].mean()),
               "mean_set_size": float(size[idx].mean())}
        if groups is not None:
            row["coverage_per_group"] = float(np.average(covered[idx], weights=group_weights(groups[idx], row["n"])))
            row["n_groups"] = int(len(np.unique(groups[idx])))
        out.append(row)
    return out


def evaluation_report(trust: Trust, proba: np.ndarray, y: np.ndarray, pred: np.ndarray, sets: np.ndarray | None,
                      ood_p: np.ndarray | None, by: np.ndarray | None, by_name: str | None,
                      groups: np.ndarray | None = None) -> dict:
    """What ``evaluate`` reports on the trust options, for class probabilities ``proba`` (n, C), true class
    indices ``y`` (n,), predicted class indices ``pred`` (n,), set membership ``sets`` (n, C) and OOD
    scores (n,) when asked for, and the ``--by`` values (n,):

    sets: coverage (the share of samples whose set holds the true class) and mean set size overall, per
    class and per --by group, the shares of empty and multi-class sets; abstention: the rate, accuracy on
    the accepted samples beside the overall accuracy, and the risk–coverage curve of a confidence threshold;
    ood: the flagged share (per class and --by group too).

    ``groups`` (n,) (the table's patients): the sets' coverage with each patient counted once too
    (``coverage_per_group``: each sample weighted 1 / its patient's samples), the figure the guarantee is
    about; the plain coverage counts samples, so patients with many samples weigh more in it."""
    o, classes = trust.options, trust.classes
    n = len(y)
    correct = pred == y
    confidence = predicted_probability(proba, pred)
    doc: dict = {"options": o.to_dict(), "n": int(n), "accuracy": float(correct.mean()) if n else None,
                 "risk_coverage": risk_coverage(confidence, correct)}
    empty = np.zeros(n, dtype=bool)
    if sets is not None:
        size = sets.sum(axis=1)
        covered = sets[np.arange(n), y]
        empty = size == 0
        present = sorted(set(y.tolist()))
        doc["sets"] = {
            "level": o.coverage, "score": o.score, "mondrian": o.mondrian, "coverage": float(covered.mean()),
            "coverage_per_group": None if groups is None else float(np.average(covered,
                                                                              weights=group_weights(groups, n))),
            "n_groups": None if groups is None else int(len(np.unique(groups))),
            "mean_set_size": float(size.mean()), "empty": float(empty.mean()), "singleton": float((size == 1).mean()),
            "multi_class": float((size > 1).mean()),
            "per_class": _coverage_rows(covered, size, y, [(c, str(classes[c])) for c in present], groups),
            "by": None if by is None else _coverage_rows(covered, size, by,
                                                         [(v, v) for v in sorted(set(by.tolist()), key=natural_key)],
                                                         groups),
            "source": trust.model.conformal.source, "in_every_set": trust.in_every_set,
        }
    if o.abstains:
        abstain = np.zeros(n, dtype=bool)
        if o.min_confidence is not None:
            abstain |= confidence < o.min_confidence
        if o.abstain_on_empty_set:
            abstain |= empty
        accepted = ~abstain
        doc["abstention"] = {"rate": float(abstain.mean()), "n_abstained": int(abstain.sum()),
                             "accuracy_accepted": float(correct[accepted].mean()) if accepted.any() else None,
                             "accuracy_all": doc["accuracy"], "label": o.unassigned_label}
    if ood_p is not None:
        flagged = ood_p < o.ood_alpha
        # a model whose smallest p-value is at or above alpha flags nothing however far out: its rates are
        # undefined (None), not 0, which would read as evidence that the rows resemble training (Trust.ood_warnings)
        can_flag = trust.ood_floor() < o.ood_alpha

        def rate(mask: np.ndarray) -> float | None:
            return float(flagged[mask].mean()) if can_flag else None

        every = np.ones(n, dtype=bool)
        doc["ood"] = {"alpha": o.ood_alpha, "rate": rate(every), "n_flagged": int(flagged.sum()), "can_flag": can_flag,
                      "per_class": [{"value": str(classes[c]), "n": int((y == c).sum()), "rate": rate(y == c)}
                                    for c in sorted(set(y.tolist()))],
                      "by": None if by is None else [{"value": v, "n": int((by == v).sum()), "rate": rate(by == v)}
                                                     for v in sorted(set(by.tolist()), key=natural_key)]}
    doc["by_name"] = by_name
    return doc


def held_out_trust(model: Model, X, y: np.ndarray, level: float = 0.9, alpha: float = DEFAULT_OOD_ALPHA,
                   score: str = "aps", member_logits: list | None = None, groups: np.ndarray | None = None) -> dict:
    """Prediction-set coverage and mean size at ``level`` and the out-of-distribution flag rate of a model on
    held-out rows X (n, d) in the model's feature order with true classes y (n,) (``cv`` per fold); the
    parts the model lacks are None. ``member_logits``: what ``model.predict_output(X, member_logits=...)``
    collected, when the caller predicted X already. ``groups`` (n,) (the rows' patients): the coverage with
    each patient counted once too (``coverage_per_group``, None without groups; with one row per group it is
    ``coverage``), the figure the per-patient guarantee is about. ``ood_floor``: the smallest p-value the model's
    held-out rows can give; when it is not below ``alpha`` no row can be flagged, however far out, so the rate
    is undefined: ``ood_rate`` is None (a 0 would read as evidence that the rows resemble training), and
    ``notes`` says why (as ``Trust.ood_warnings`` does for predict: a fold model of a small table has few
    held-out patients)."""
    level = _probability(level, "level", True, True)
    alpha = _probability(alpha, "alpha", True, True)
    out = {"level": level, "coverage": None, "coverage_per_group": None, "mean_set_size": None,
           "ood_rate": None, "ood_alpha": alpha, "ood_floor": None, "notes": [], "set_notes": []}
    if model.task not in ("binary", "multiclass") or len(y) == 0:
        return out
    if getattr(model, "conformal", None) is not None:
        sets = SetPredictor(model.conformal, len(model.classes), len(model.members), model.output_activation(),
                            model.temperature, level, score)
        logits, proba = member_logits, None
        if logits is None or sets.on_model_proba:
            logits = []
            proba = class_proba(model.task, model.predict_output(X, member_logits=logits))
        if sets.on_model_proba:  # a cohort's calibration: the whole model's probabilities, one block
            members = sets.sets([np.concatenate([block[0] for block in logits])], proba)
        else:
            members = np.concatenate([sets.sets(block) for block in logits])
        covered = members[np.arange(len(y)), y]
        out["coverage"] = float(covered.mean())
        if groups is not None:  # one row per patient: weights all 1, the plain coverage
            out["coverage_per_group"] = float(np.average(covered, weights=group_weights(groups, len(y))))
        out["mean_set_size"] = float(members.sum(axis=1).mean())
        if sets.trivial.any():  # every set holds every class, by the count alone (as ``Trust.level_notes`` says)
            exact = Fraction(repr(level))
            weighted = bool(np.any(model.conformal.weight < 1))
            unit = "patients" if weighted else "rows"
            out["set_notes"] = [f"every prediction set at {level:.12g} holds every class: the level needs "
                                f"{math.ceil(exact / (1 - exact)):,} held-out {unit} and the model's conformal "
                                f"calibration has {float(np.min(sets.total)):.0f}"]
    if getattr(model, "ood", None) is not None:
        floor = float(model.ood.p_value(np.array([np.inf]))[0])  # as Trust.ood_floor
        out["ood_floor"] = floor
        if floor < alpha:
            out["ood_rate"] = float((model.ood.score_and_p(model.preprocessor.transform(X))[1] < alpha).mean())
        else:
            m = len(model.ood.calibration)
            unit = "patients" if model.ood.weighted else "rows"
            out["notes"] = [f"no OOD rate at p < {alpha:.12g}: the model's out-of-distribution "
                            f"calibration has {m} held-out {unit}, so its smallest p-value is {round(floor * (m + 1))}/"
                            f"{m + 1} = {floor:.3g}, and no row can be flagged, however far out"]
    return out


def _cohort_name(cohort: dict | None) -> str:
    """The labelled table a calibration was taken on (``recalibrate``), as the notes name it."""
    return (cohort or {}).get("data") or "the recalibration cohort"


def _names_a_class(label: str, classes) -> bool:
    """Whether ``label`` would be read back as one of ``classes``: the same text, surrounding spaces aside, or
    the same number ("1.0" and " 1" for a class 1, as evaluate matches a table's labels)."""
    from ..data.labels import as_number

    text = label.strip()
    value = as_number(text)
    return (text in {str(c).strip() for c in classes}
            or value is not None and value in {as_number(str(c)) for c in classes})
