"""When held-out metrics are rough: one sample (or one patient's samples) of the rarest class more or less right moves
the balanced accuracy noticeably, or a regression has few samples. `train` says it of its out-of-fold estimate,
`evaluate` of the table it scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ROUGH_STEP", "ROUGH_REGRESSION_ROWS", "held_out_caveat"]

# Held-out metrics are rough when one sample more or less right moves the balanced accuracy by this much
# (a binary task with 20 held-out samples of its rarer class), or, for regression, below this many samples.
ROUGH_STEP = 0.025
ROUGH_REGRESSION_ROWS = 30


def held_out_caveat(task: str, y: np.ndarray, classes: list, groups: np.ndarray | None = None,
                    scored: str = "held out") -> str | None:
    """Why held-out metrics on the rows ``y`` (class indices (n,), 0/1 columns (n, L) for multi-label, values for
    regression) are rough, or None (``scored``: what the rows are, "held out" at training; evaluate's are "scored"):
    one sample of the rarest class (of the rarer side of a label) more or less
    right moves the balanced accuracy by ROUGH_STEP or more, or a regression has fewer than
    ROUGH_REGRESSION_ROWS samples. Twelve samples gave "balanced accuracy 0.667" with nothing to say that one
    sample more or less right made it 0.583 or 0.750. With ``groups`` (n,) (binary, multiclass), one patient's
    samples, called right or wrong together, count as well: 15 cells of a type from 2 donors moved the balanced
    accuracy of 9 types by 0.056 per donor, where counting cells said nothing."""
    y = np.asarray(y)
    if task == "regression":
        n = y.shape[0]
        return "R², RMSE and correlations vary widely at this size" if n < ROUGH_REGRESSION_ROWS else None
    if task == "multilabel":
        Y = y.reshape(y.shape[0], -1).astype(int)
        sides = [(min(pos, neg), j, "positive" if pos <= neg else "negative")
                 for j, (pos, neg) in enumerate(zip(Y.sum(axis=0).tolist(), (1 - Y).sum(axis=0).tolist()))
                 if pos and neg]
        if not sides:
            return None
        fewest, j, side = min(sides)
        step = 1 / (2 * Y.shape[1] * fewest)  # the mean over labels of each label's two-class balanced accuracy
        what = f"one {side} sample of label {str(classes[j])!r} ({fewest} {scored})"
    else:
        counts = np.bincount(y.reshape(-1).astype(int), minlength=len(classes))
        present = np.flatnonzero(counts)  # balanced accuracy: the mean recall over the classes present
        if not present.size:
            return None
        rarest = present[np.argmin(counts[present])]
        fewest = int(counts[rarest])
        step = 1 / (present.size * fewest)
        what = f"one sample of class {str(classes[rarest])!r} ({fewest} {scored})"
        patient = _patient_step(y.reshape(-1).astype(int), groups, present, counts)
        if patient is not None and patient[0] > step:
            step, c, n_groups = patient
            what = (f"one patient of class {str(classes[c])!r} ({n_groups} patient{'s' * (n_groups != 1)}, "
                    f"{int(counts[c])} samples {scored})")
    if step < ROUGH_STEP:
        return None
    return f"{what} more or less right moves the balanced accuracy by {step:.3f}"


def _patient_step(y: np.ndarray, groups: np.ndarray | None, present: np.ndarray,
                  counts: np.ndarray) -> tuple[float, int, int] | None:
    """(step, class, its patients): the most one patient's samples of one class move the balanced accuracy (the
    patient's share of the class's samples, over the classes present), for the class where that is largest; None
    without groups."""
    if groups is None:
        return None
    keys = pd.Series(np.asarray(groups, dtype=object)).astype(str).to_numpy()
    best = None
    for c in present:
        _, sizes = np.unique(keys[y == c], return_counts=True)
        step = float(sizes.max()) / counts[c] / present.size
        if best is None or step > best[0]:
            best = (step, int(c), int(sizes.size))
    return best
