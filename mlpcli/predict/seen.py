"""Samples a model was trained on, recognised in a table given to ``predict`` or ``evaluate``.

A model of format 8 keeps a 64-bit fingerprint of each row it was trained or validated on (``data.row_fingerprints``
over the features it uses: ``Model.training_rows``). A row of a new table with the same fingerprint has the same
feature values as a training row, so its prediction is the model's fit to that row, not a prediction for a new
sample, and metrics on it flatter the model: the commonest leak there is, evaluating on the training table (or on a
cohort that shares samples with it). Two different rows share a fingerprint with probability about 2^-64 per pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..data.copies import fingerprint_weights, row_fingerprints

__all__ = ["SeenRows", "among", "kept_feature_weights"]


def kept_feature_weights(model) -> np.ndarray:
    """(d_kept,) uint64: the ``row_fingerprints`` weights of a table's rows of ``model``'s kept features, in their
    order: the fingerprints its stored rows (``training_rows``, ``cohort_rows``) were made with."""
    return fingerprint_weights(len(model.feature_names))[model.preprocessor.kept_index_]


def among(found: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """(k,) bool: which of the fingerprints ``found`` (k,) are in ``stored`` (m,) uint64, sorted and distinct."""
    if len(stored) == 0:
        return np.zeros(len(found), dtype=bool)
    at = np.searchsorted(stored, found)
    at[at == len(stored)] = 0
    return stored[at] == found


@dataclass
class SeenRows:
    """The training rows' fingerprints (m,) uint64, sorted and distinct; the weights (d_kept,) that fingerprint a
    table's rows of the model's kept features in their order; what a pass over a table has found so far."""

    fingerprints: np.ndarray
    weights: np.ndarray
    # whether some of the rows may be validation rows, not trained on: a single network's (--folds 1, --val-data),
    # early-stopped and calibrated on them; an ensemble's members (and a --refit network) trained on every row
    validated: bool = False
    n: int = 0  # rows found to be training rows
    # the share of the training rows whose values another training sample's repeat (``copies.chance_share``): how
    # often a new sample matches a training row by its values alone; 0 for continuous features
    chance: float = 0.0
    examples: list[str] = field(default_factory=list)  # the first few, by id (or row number)

    EXAMPLES = 3

    @classmethod
    def of(cls, model) -> "SeenRows | None":
        """For ``model``, or None when it keeps no fingerprints (a file older than format 8, a model fitted by
        the scikit-learn estimators)."""
        if model.training_rows is None or len(model.training_rows) == 0:
            return None
        validated = not model.is_ensemble and not (model.fit or {}).get("refit_epochs")
        chance = (model.extra or {}).get("training_rows_chance")
        chance = float(chance) if isinstance(chance, (int, float)) and 0 <= chance <= 1 else 0.0
        return cls(np.asarray(model.training_rows, dtype=np.uint64), kept_feature_weights(model), validated,
                   chance=chance)

    def match(self, X: np.ndarray) -> np.ndarray:
        """(k,) bool: which rows of X (k, d_kept), raw feature values in the model's kept-feature order, are
        training rows."""
        return among(row_fingerprints(X, self.weights), self.fingerprints)

    def count(self, seen: np.ndarray, ids: np.ndarray | None, rows: np.ndarray) -> None:
        """Add a piece's matches: ``seen`` (k,) bool, its rows' ids (or None) and 1-based row numbers."""
        hits = np.flatnonzero(seen)
        self.n += len(hits)
        for i in hits[: max(0, self.EXAMPLES - len(self.examples))]:
            self.examples.append(repr(str(ids[i])) if ids is not None else f"row {int(rows[i])}")

    def describe(self, n_rows: int) -> str:
        """"12 of 40 samples are rows the model was trained on (identical feature values: 'S1', 'S4', 'S9', …)"."""
        more = ", …" if self.n > len(self.examples) else ""
        share = "the one sample is a row" if n_rows == 1 and self.n == 1 else f"all {n_rows:,} samples are rows" \
            if self.n == n_rows else (
            f"{self.n:,} of {n_rows:,} samples {'is a row' if self.n == 1 else 'are rows'}")
        return (f"{share} the model was {self.seen_as} (identical feature values: {', '.join(self.examples)}{more})")

    def by_chance(self, n_rows: int) -> bool:
        """Whether the matches found among ``n_rows`` rows are no more than new samples would give by chance: at
        most 3 binomial SDs above ``chance`` x n_rows. A model of 9 cytology scores (MASS::biopsy, 40 % of its
        training rows repeat another patient's scores) met 48 of 134 new patients' rows "seen"; its own training
        table, all of them."""
        expected = self.chance * n_rows
        return self.n > 0 and self.chance > 0 and self.n <= expected + 3 * math.sqrt(expected * (1 - self.chance))

    def chance_note(self, n_rows: int) -> str:
        """"48 of 134 samples have a training row's exact values, about what chance gives on this table (...)"."""
        expected = self.chance * n_rows
        which = ("the one sample has" if n_rows == 1 else
                 f"{self.n:,} of {n_rows:,} samples {'has' if self.n == 1 else 'have'}")
        return (f"{which} a training row's exact feature values ({', '.join(self.examples)}"
                f"{', …' if self.n > len(self.examples) else ''}), about what chance gives on this table "
                f"({expected:.0f} expected: {self.chance:.0%} of the training rows repeat another training sample's "
                "values, as features of few values do): more likely new samples alike than the training samples "
                "themselves")

    @property
    def seen_as(self) -> str:
        """How the model saw its rows: "trained on", or "trained or validated on" for a single network."""
        return "trained or validated on" if self.validated else "trained on"

    @staticmethod
    def filled_note(n_filled: int, n_features: int) -> str:
        """What ``predict`` and ``evaluate`` say when ``n_filled`` of the model's ``n_features`` features are absent
        and filled (--fill-missing): a fingerprint covers every feature, so no row can match, and the count is
        unknown rather than 0."""
        which = "1 feature is" if n_filled == 1 else f"{n_filled} features are"
        return (f"samples the model was trained on cannot be recognised in this table: it knows them by all "
                f"{n_features} feature values, and {which} filled (--fill-missing); `seen_in_training` is null")

    def predict_note(self, n_rows: int) -> str | None:
        """What ``predict`` says of them, or None when there are none."""
        if not self.n:
            return None
        if self.by_chance(n_rows):
            return self.chance_note(n_rows)
        what = ("their predictions are", "predictions for new samples") if self.n > 1 else \
            ("its prediction is", "a prediction for a new sample")
        if self.validated:  # a validation row's prediction is no fit, but it chose the epoch and the calibration
            return (f"{self.describe(n_rows)}: {what[0]} not {what[1]} (the network was fitted to its training "
                    "rows, and early-stopped and calibrated on its validation rows)")
        return f"{self.describe(n_rows)}: {what[0]} the model's fit to its training data, not {what[1]}"
