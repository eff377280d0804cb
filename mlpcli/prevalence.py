"""A new cohort's class mix (label shift): probabilities moved from the training mix to the cohort's.

A classifier's calibrated probabilities P(c | x) carry the class mix it was trained on, π (``Decision.shares``: each
class's share of the training rows as the loss weighted them). A cohort of another mix — a model trained on a
case-control table of 50 % cases scoring a screening cohort of 2 % — gets probabilities that overstate the classes
rarer there. When only the mix differs (a class's samples look as they did in training: p(x | c) unchanged, "label
shift"), Bayes' rule moves them (Saerens, Latinne & Decaestecker, "Adjusting the outputs of a classifier to new a
priori probabilities: a simple procedure", Neural Computation 14, 2002, eq. 2.4):

    P'(c | x) = w_c P(c | x) / Σ_j w_j P(j | x),      w_c = π'_c / π_c

The cohort's mix π' is the user's (``predict --prevalence 'case=0.02'``: a screening population's prevalence
from its registry, a study's recruitment quota). It is not estimated from the cohort's own predictions: the EM of
the same paper (§2.3), tried on the sample data's test cohort, whose mix is the training one, moved LumB from 25 %
to 12 % and raised the log loss from 0.279 to 0.374 (it needs probabilities calibrated class by class, which one
temperature does not give: Alexandari, Kundaje & Shrikumar, ICML 2020).

What it does not fix: samples of a class that look different in the cohort (batch effects, another protocol) —
covariate or concept shift, which the shift check and the out-of-distribution flags are for. It is exact for
calibrated probabilities; ``evaluate --prevalence`` on a labelled cohort shows the log loss and ECE before and after
the move, the evidence that it helps on the user's data.

Labels: under the balanced rule (the argmax of P(c | x) / π_c) they do not change — P'(c | x) / π'_c is
proportional to P(c | x) / π_c —; under argmax they become the most probable class in the cohort.

Prediction sets (Podkopaev & Ramdas, "Distribution-free uncertainty quantification for classification under label
shift", UAI 2021): each calibration row weighs w of its class, and the new sample w of the class it is tested
for (``conformal.SetPredictor``'s ``label_weights``), which keeps the coverage guarantee for the cohort when π' is
its true mix. Mondrian sets (per class) keep theirs whatever the mix, and do not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .errors import OptionError
from .text import named_pairs, quoted, written_name
from .metrics import class_proba  # a binary model's P(positive) as one column per class

__all__ = ["Prevalence", "adjust", "parse", "given"]

# Given shares may add up to 1 within this (they are then divided by their sum)
SUM_SLACK = 1e-3


def adjust(proba: np.ndarray, training: np.ndarray, cohort: np.ndarray) -> np.ndarray:
    """Probabilities ``proba`` of a model trained on the class mix ``training`` (k,), moved to the mix ``cohort``
    (k,): P'(c | x) ∝ P(c | x) π'_c / π_c. ``proba`` is one column per class (n, k), or a binary model's P(positive)
    (n, 1) or (n,), and the result has its shape (float64). A row whose probability is all on classes of share 0
    in the cohort stays as it was."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim not in (1, 2) or proba.ndim == 2 and proba.shape[1] < 1:
        # (a single number failed with an IndexError; a 3-D array came back reshaped, as if it were rows)
        raise OptionError(f"prevalence.adjust: the probabilities must be one row per sample, (n,) or (n, k), got shape "
                          f"{proba.shape}")
    columns = class_proba("binary", proba[:, None]) if proba.ndim == 1 else \
        class_proba("binary" if proba.shape[1] == 1 else "multiclass", proba)
    training, cohort = np.asarray(training, dtype=np.float64), np.asarray(cohort, dtype=np.float64)
    k = columns.shape[1]
    if training.shape != (k,) or cohort.shape != (k,):
        raise OptionError(f"prevalence.adjust: the training and cohort mixes need one share per class ({k}), got "
                          f"{training.size} and {cohort.size}")
    if not (np.all(np.isfinite(training)) and np.all(training > 0) and np.all(np.isfinite(cohort))
            and np.all(cohort >= 0)):
        raise OptionError("prevalence.adjust: the training shares must be positive and the cohort's at least 0 (a class "
                          "of training share 0 has no probability to move)")
    w = cohort / training
    P = columns * w
    total = P.sum(axis=1, keepdims=True)
    moved = np.divide(P, total, out=columns.copy(), where=total > 0)
    if proba.ndim == 1:
        return moved[:, 1]
    return moved[:, 1:2] if proba.shape[1] == 1 else moved


@dataclass(frozen=True)
class Prevalence:
    """The class mix a model's probabilities are moved to: ``training`` (k,) the mix they carry (the training rows'
    shares as the loss weighted them), ``cohort`` (k,) the cohort's, both in the model's class order."""

    training: tuple[float, ...]
    cohort: tuple[float, ...]

    @property
    def weights(self) -> np.ndarray:
        """(k,) w_c = π'_c / π_c: the factor on each class's probability (before normalising) and on each
        calibration row of the class (the prediction sets)."""
        return np.asarray(self.cohort, dtype=np.float64) / np.asarray(self.training, dtype=np.float64)

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """``adjust`` to this mix: (n, k), or a binary model's (n, 1); the same shape back."""
        return adjust(proba, np.asarray(self.training), np.asarray(self.cohort))

    def to_dict(self, classes: Sequence) -> dict:
        """JSON-able (predict's and evaluate's ``prevalence``): the two mixes by class."""
        names = [str(c) for c in classes]
        return {"training": dict(zip(names, map(float, self.training))),
                "cohort": dict(zip(names, map(float, self.cohort)))}

    def describe(self, classes: Sequence, recalibrated_on: str | None = None) -> str:
        """The run's note: what the probabilities were moved from and to, and on what assumption.
        ``recalibrated_on``: the cohort a recalibrated model's probabilities are of (``mlpcli recalibrate``), whose
        mix ``training`` then is."""
        carried = "the training class mix" if recalibrated_on is None else f"the class mix of {recalibrated_on}"
        where = "in training" if recalibrated_on is None else f"in {recalibrated_on}"
        return (f"probabilities moved from {carried} ({_mix(classes, self.training)}) to this "
                f"cohort's, as --prevalence gives it ({_mix(classes, self.cohort)}), assuming each class's samples "
                f"look as they did {where} (label shift)")


def _mix(classes: Sequence, shares: Sequence[float], shown: int = 6) -> str:
    parts = [f"{c} {100 * s:.3g} %" for c, s in list(zip(classes, shares))[:shown]]
    return ", ".join(parts) + (f" and {len(classes) - shown} more" if len(classes) > shown else "")


def given(shares: Mapping | Sequence | np.ndarray, classes: Sequence, training: np.ndarray) -> Prevalence:
    """A Prevalence for the cohort mix ``shares``: a mapping class -> share (every class, or every one but one,
    whose share is what is left; a pandas Series by its index), or a sequence (k,) in the model's class order; the
    shares are divided by
    their sum (which must be 1 within SUM_SLACK). OptionError (a usage error naming --prevalence) for shares that
    are not a mix of the model's classes, each above 0."""
    names = [str(c) for c in classes]
    k = len(names)
    if not isinstance(shares, Mapping) and hasattr(shares, "items") and hasattr(shares, "index"):
        shares = dict(shares.items())  # a pandas Series (value_counts(normalize=True)): by its index, not position
    if isinstance(shares, Mapping):
        # a class as written, else without the spaces around it ('b' for '  b ')
        at = {str(c): written_name(str(c), names) for c in shares}
        unknown = [c for c, i in at.items() if i is None]
        if unknown:
            raise OptionError(f"--prevalence: {unknown[0].strip()!r} is not one of the model's classes "
                              f"({quoted(names, 10)})")
        values: dict[str, float] = {}
        for c, v in shares.items():
            name = names[at[str(c)]]
            if name in values:
                raise OptionError(f"--prevalence: {name!r} is given twice")
            values[name] = _share(v, name)
        missing = [c for c in names if c not in values]
        if len(missing) > 1:
            raise OptionError(f"--prevalence: give every class's share, or every one but one (its share is what is "
                              f"left); missing {', '.join(repr(c) for c in missing[:5])}"
                              f"{' and more' if len(missing) > 5 else ''}")
        if missing:
            rest = 1.0 - sum(values.values())
            if not rest > SUM_SLACK:  # ~0 left: a class forgotten, not one known to be that rare
                raise OptionError(f"--prevalence: the shares given add up to {sum(values.values()):.6g}, leaving "
                                  f"{max(rest, 0.0):.3g} for {missing[0]!r}; give its share (above 0), or leave out "
                                  "one class whose share is what is left")
            values[missing[0]] = rest
        cohort = np.array([values[c] for c in names], dtype=np.float64)
    else:
        cohort = np.asarray(shares, dtype=np.float64).reshape(-1)
        if cohort.shape[0] != k:
            given = cohort.shape[0]
            raise OptionError(f"--prevalence: {given} share{'s' * (given != 1)} for the model's {k} classes")
        for c, v in zip(names, cohort.tolist()):
            _share(v, c)
    total = float(cohort.sum())
    if abs(total - 1.0) > SUM_SLACK:
        raise OptionError(f"--prevalence: the shares add up to {total:.6g}, not 1")
    training = np.asarray(training, dtype=np.float64)
    return Prevalence(training=tuple(map(float, training)), cohort=tuple(map(float, cohort / total)))


def _share(value, name: str) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and 0 < value < 1):
        raise OptionError(f"--prevalence: the share of {name!r} must be a number between 0 and 1 (both excluded), "
                          f"got {value!r}")
    return float(value)


def parse(text: str, classes: Sequence) -> dict[str, float]:
    """--prevalence's text, ``CLASS=SHARE,CLASS=SHARE,...`` (a class's name as the model writes it; the last ``=``
    of a pair ends the name). OptionError naming the option otherwise (the shares themselves are checked by
    ``given``). A bare number is refused, also for a binary model: it would not say which class it is the share of
    (the positive class is the one that sorts last, 'control' before 'case' is not)."""
    text = str(text).strip()
    names = [str(c) for c in classes]
    commas = [c for c in names if "," in c]
    hint = (f" (write a class whose name holds ',' in double quotes: '\"{commas[0]}\"=0.2')") if commas else ""
    example = f"'{names[0]}=0.3,{names[-1]}=0.7'" if len(names) > 1 else "'CLASS=0.3'"
    values: dict[str, float] = {}
    for item in filter(str.strip, named_pairs(text)):  # a name holding a comma in double quotes, its spaces kept
        name, sep, number = item.rpartition("=")
        item = item.strip()
        if not sep or not name.strip():
            raise OptionError(f"--prevalence: {item!r} is not CLASS=SHARE (e.g. {example}; a share alone does not say "
                              f"which class it is of){hint}")
        if name in values:
            raise OptionError(f"--prevalence: {name!r} is given twice")
        try:
            values[name] = float(number)
        except ValueError:
            raise OptionError(f"--prevalence: the share of {name!r}, {number.strip()!r}, is not a number{hint}") from None
    if not values:
        raise OptionError(f"--prevalence: no CLASS=SHARE pairs given (e.g. {example})")
    unknown = [n for n in values if written_name(n, names) is None]
    if unknown and hint:
        raise OptionError(f"--prevalence: {unknown[0]!r} is not one of the model's classes{hint}")
    return values
