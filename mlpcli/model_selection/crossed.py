"""The held-out estimate ``train`` reports, cross-fitted so that no choice was made on the rows it scores.

Every row of a ``train`` run is scored by a network that never trained on its patient, but choices are made on
those same rows: the epoch early stopping keeps (per member, on its few dozen or hundred held-out rows, from a
validation loss that moves from epoch to epoch by chance) and the architecture ``--hidden auto`` picks. Each
favours the rows it was made on, by their luck: on tables of random labels the out-of-fold balanced accuracy read
0.553 (ROC AUC 0.570) against ``cv``'s 0.526 (0.518), its 95 % interval leaving out chance on 3 of 8 tables; on
small real sets it stood 0.03-0.04 above the test folds.

Here the rows each member holds out are cut into CROSSING_PARTS parts (``splits.crossing_parts``: a patient in one
part, the classes spread evenly), and each part is scored under the choices the other parts made:

    parts ≠ j ──choose──▶ the epoch (per member), the architecture ──score──▶ part j's rows

The temperature and the decision rule stay the model's: one or a few numbers fitted on all the held-out rows, whose
choice did not measurably flatter the estimate, while choosing them on part of the rows made it pessimistic. The
architecture is chosen, for part j, by the model's own rule on the other parts' out-of-fold outputs. The model itself
is unchanged: its choices are made on all the rows, as before.

Measured with ``benchmarks/bench_accuracy.py`` (seed 0; the estimate minus the outer test fold's balanced accuracy):
on seven sets of 57-333 samples +0.028 +- 0.016 before; halves (2 parts) -0.006; 4 parts +0.001. Crossing the
temperature and the decision rule too (halves, four of those sets): -0.024. See benchmarks/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


__all__ = ["CROSSING_PARTS", "Crossing", "CrossedEstimate", "crossed_estimate"]


# Each member's held-out rows are cut into this many parts; each part is scored under the choices the other parts
# made (see the module docstring and ``CROSSING_PARTS``' measurement there)
CROSSING_PARTS = 4
# What the estimate was measured to do against test folds (said with it, ``CrossedEstimate.words``)
ESTIMATE_GAP = ("−0.013 ± 0.005 of balanced accuracy below the outer test folds over 150 benchmark fits; choosing "
                "each part's epoch on the rest of its fold leans slightly against the part")


@dataclass
class Crossing:
    """What a fit keeps for the cross-fitted estimate, over its scored rows (n)."""

    parts: np.ndarray  # (n,) the part of each row (``splits.crossing_parts``)
    logits: list[np.ndarray]  # per candidate (n, k): raw outputs, each row's at the epoch the rest of its rows chose
    crossed: np.ndarray  # (n,) bool: the row's epoch was chosen on other rows (False: its member held out one patient)
    choose: Callable[[np.ndarray], int]  # the candidate the model's rule picks on some rows (bool (n,))


@dataclass
class CrossedEstimate:
    """Held-out predictions of the scored rows (n), each at the epoch and from the architecture the rest of the rows
    chose, at the model's temperature and by its decision rule."""

    proba: np.ndarray  # (n, k) as ``Model.predict_output`` gives them: probabilities or regression values
    predicted: np.ndarray | None  # classification: the labels by the model's rule ((n,) indices, (n, L) 0/1)
    parts: np.ndarray  # (n,) the part of each row
    chosen: tuple[int, ...]  # the candidate chosen for each part (indices into the portfolio)
    crossed_epochs: int  # rows scored at an epoch chosen on other rows

    def words(self, held_out: str, n_candidates: int, early_stopped: bool = True, grouped: bool = True,
              calibrated: bool = True, decided: bool = True) -> str | None:
        """A note on how the estimate was made, for the summary (None: nothing was chosen on the held-out rows, one
        architecture trained by L-BFGS, which keeps its last weights). ``grouped``: the table has patients;
        ``calibrated`` / ``decided``: the model has a temperature / a decision rule."""
        n = len(self.parts)
        if not early_stopped and n_candidates < 2:
            return None
        how = (("at the early-stopping epoch and by the architecture" if n_candidates > 1 else
                "at the early-stopping epoch") if early_stopped else "by the architecture")
        rows = "each member's held-out rows" if held_out == "out-of-fold" else "the validation rows"
        k = len(np.unique(self.parts))
        # (with patients, a member that held out fewer patients than CROSSING_PARTS has as many parts as patients)
        text = (f"{held_out} estimate cross-fitted: {rows} cut in {'up to ' if grouped else ''}{k} "
                f"parts{' (a patient in one)' if grouped else ''}, each scored {how} the other parts chose, so that "
                "the luck of a choice on the rows it was made on does not lift it")
        kept = [w for w, on in (("the temperature", calibrated), ("the decision rule", decided)) if on]
        if kept:
            text += (f" ({' and '.join(kept)}, fitted on all the rows, {'is' if len(kept) == 1 else 'are'} the "
                     "model's)")
        if self.crossed_epochs < n:
            text += (f"; the epoch of {n - self.crossed_epochs} of the {n} rows was chosen on their own rows (their "
                     "member held out a single patient)")
        return text + (f"; it reads a little low on average: {ESTIMATE_GAP}" if early_stopped and decided else "")


def crossed_estimate(crossing: Crossing, link: Callable[[np.ndarray], np.ndarray],
                     decide: Callable[[np.ndarray], np.ndarray] | None) -> CrossedEstimate | None:
    """The cross-fitted estimate of ``crossing``'s rows: for each part, the candidate ``crossing.choose`` picks on the
    other parts' rows scores its rows from their crossed outputs. ``link(outputs)``: the model's probabilities (its
    temperature) or values; ``decide(proba)``: its labels (None: regression). None with fewer than two parts."""
    parts = np.asarray(crossing.parts).reshape(-1)
    present = np.unique(parts)
    if len(present) < 2:
        return None
    outputs = np.empty_like(np.asarray(crossing.logits[0], dtype=np.float64))
    chosen = []
    for j in present:
        on = parts == j
        c = crossing.choose(~on) if len(crossing.logits) > 1 else 0
        outputs[on] = crossing.logits[c][on]
        chosen.append(c)
    proba = link(outputs)
    return CrossedEstimate(proba=proba, predicted=None if decide is None else decide(proba), parts=parts,
                           chosen=tuple(chosen), crossed_epochs=int(np.count_nonzero(crossing.crossed)))
