"""The cohort-shift check: how far new samples' features sit from the training distribution."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..data.scaling import UNCLIPPED_LIMIT
from ..errors import DataError
from ..model_io import Model, require_model
from .sizes import STAT_ROWS, DEFAULT_CHUNKSIZE
from ..data.labels import label_keys
from ..text import count_of


# Cohort-shift check, on the preprocessed scale the network sees (z-scores when trained with standardising).
# A feature is "shifted" when its new mean is more than SHIFT_MEAN_SD training SDs from the training mean: the
# first layer was fitted to inputs spread over about +-1 SD, so a whole-SD offset moves the feature to where
# the model saw few samples. Without a real shift a cohort's mean lies that far out only by chance, which for
# n >= SHIFT_MIN_SAMPLES happens to under 3 % of features (the mean's SE is 1/sqrt(n)) -- for n independent
# samples. Samples of one patient are not independent (in the sample data they correlate at 0.39, and a cohort
# of 20 samples from 7 patients drew the mild warning 2 times in 3 when samples were counted), so with a group
# column the sample counts below count patients (groups): the SE of a mean over G patients is at most 1/sqrt(G)
# whatever the correlation within them. Under SHIFT_MIN_SAMPLES patients (but at least SHIFT_MIN_SAMPLES rows)
# the mean test still runs, with its bar raised to CHANCE_Z / sqrt(patients) SD -- the same 2.5 % chance per
# feature -- so that gross errors (log values for counts, other units) are still caught in a cohort of 1-4
# patients, or of a few single-cell donors.
SHIFT_MEAN_SD = 1.0
# ... or when its SD is more than SHIFT_SPREAD_RATIO times larger or smaller than in training (another
# normalisation, other units, a saturated assay). SD estimates are noisy (heavy-tailed features especially),
# so spread is judged only from SPREAD_MIN_SAMPLES rows on.
SHIFT_SPREAD_RATIO = 2.0
SPREAD_MIN_SAMPLES = 20
# ... and beyond what chance moves it by: SPREAD_CHANCE_Z standard errors of log(new variance / training variance),
# sqrt((kurtosis - 1) x (1 / n + 1 / n_train)), with the feature's kurtosis before the clip in training (model format
# 17). For a normal feature (kurtosis 3) at 20 samples that is 1.3, inside the 2x bar's 1.39: the ratio alone
# decides. A heavy-tailed feature's SD rests on its few extreme values, and a feature at one value but for a few
# percent of rows (a detection limit, a rare event) on whether a sample holds one: random fifths of real tables,
# the same population, read "cohort shift" on 15 % of pd_speech's 752 voice features (SD ratios down to 0.11,
# kurtosis up to 160) and 20 % of a hepatic-injury table's 376 (assays at 4 in 98 % of rows), now 1 % and 3 %.
SPREAD_CHANCE_Z = 4.0
# A feature whose new values are all one value (SD 0) is read as collapsed only where training would have shown at
# least this many values off its main one in as many rows (a share 1 / (kurtosis + 3), a two-valued feature's):
# fewer, and a sample without any is no news
SPREAD_MIN_DEPARTURES = 5.0
COLLAPSED_RATIO = 1e-6  # an SD ratio below this: the new values are one value but for rounding (5e-9 from float32)
# Warn when more than this share of features is shifted: a few shifted genes occur in any new cohort, a tenth
# of the inputs moving together is a batch or protocol effect the model never saw.
SHIFT_FRACTION = 0.10
# A milder warning when more than SHIFT_FRACTION of features are SHIFT_MILD_SD away: a batch effect of half an
# SD on many genes at once still moves predictions near the decision boundary. Judged from MILD_MIN_SAMPLES
# rows on, where chance alone puts under 3 % of features that far (SE = 1/sqrt(20) = 0.22 SD).
SHIFT_MILD_SD = 0.5
MILD_MIN_SAMPLES = 20
SHIFT_MIN_SAMPLES = 5  # fewer rows (patients): one sample's own spread would flag a third of the features
SHIFT_SHOWN = 5  # features named in the warning
# When at least this share of the shifted features moved the same way, the warning says the whole table looks
# on another scale: a batch or population effect moves genes both ways, while values already log-transformed
# (for a model that applies log1p), counts for a model that learned log values, or another normalisation move
# nearly all of them one way (log2 values of the sample data against its log1p model: 921 of 921 down).
SAME_WAY_SHARE = 0.9
# A table on another scale is a shift whatever the share of features beyond the mean test's bar: when at least
# SAME_WAY_SHARE of all the features (ONE_WAY_MIN_FEATURES or more) moved the same way by more than ONE_WAY_SD and
# their median SD ratio is beyond SHIFT_SPREAD_RATIO either way. Log-normalised single cells given to a model of raw
# counts moved 99.9 % of 1,000 genes down (96 % by more than 0.05 SD; median SD ratio 0.37), but their
# zero-inflated genes barely moved in SD units: 3 % beyond the bar, "cohort shift: none". The spread is what tells
# another scale from an offset or a chance draw: a uniform +0.1 SD offset moves every feature one way with its SDs
# as they were, and so do small cohorts of features that share a strong common factor (simulated: 10-18 % of
# in-distribution cohorts of 5-50 samples moved 90 % of 200 features one way at a loading of 0.7).
ONE_WAY_SD = 0.05
ONE_WAY_MIN_FEATURES = 20
# Under SHIFT_MIN_SAMPLES rows the share of all the features that must have moved one way (``few_rows_rescaled``),
# beside the mean test's raised bar: single samples of the sample data's test and new cohorts moved at most 62 %
# of the 2,000 genes one way, of a 30-gene count table 77 %; log2 values of the sample data given to its log1p
# model moved 86 % down, counts given to a model of log values 97 % up.
FEW_ROWS_ONE_WAY_SHARE = 0.8
# A feature whose cohort mean lies this many training SDs from its training mean (on the scale the network sees,
# robust scaling's clip included) is named whatever the share of features: one gene in another unit or
# normalisation (+100 SD) moved 17 of 100 calls while the summary read "cohort shift: none", one gene being under the
# 10 % bar of any table. The bar rises to FAR_SHIFT_Z / sqrt(patients) for few patients, so that chance (a normal
# mean's z beyond 5: 6e-7 per feature) does not name one of 60,000 genes.
FAR_SHIFT_SD = 3.0
FAR_SHIFT_Z = 5.0
GROUP_COUNT_CAP = 10_000  # patients counted at most (the JSON's `groups` is then "at least")
# The spread test's SDs before the clip are of every row of the first UNCLIPPED_EVERY_ROW and every
# UNCLIPPED_STRIDE-th row after (``ShiftStats``): an SD from 2,048 + n / 16 rows is within a few % of all rows'
# (2-3 % for normal values, ~7 % where most of a table's spread sits in its later rows), inside the 2x bar;
# undoing the clip on every row cost 40 % of a 30,000 x 2,000 prediction, on these rows ~2 %.
UNCLIPPED_EVERY_ROW = 2048
UNCLIPPED_STRIDE = 16
CHANCE_Z = SHIFT_MEAN_SD * math.sqrt(SHIFT_MIN_SAMPLES)  # 2.24: |z| beyond it for 2.5 % of Gaussian means
# A feature is "absent" when it is 0 in every row of the cohort although training rarely had it at 0: a gene the
# new assay (panel, array, annotation) did not measure, written as 0 by whoever merged the tables, reads to the
# model as "not expressed", and a few such genes among thousands move neither the means test (3 % of genes here
# at 0 left the warning silent) nor the predictions' notes. Chance of a cohort from the training distribution
# having feature j at 0 in all its U patients: p_j^U, p_j = (zeros_j + 1) / (training rows + 2) (the rule of
# succession: a gene never 0 in 60 training rows may still be 0 in 1 of 62). A feature is flagged when that
# chance is below ABSENT_CHANCE / (features judged): the chance that a cohort like the training one shows any
# flag at all stays below ABSENT_CHANCE. Patients, not rows, because one patient's samples share a deletion.
ABSENT_CHANCE = 0.01


# ── cohort shift ─────────────────────────────────────────────────────────────────────────────────────────


# A share of a cohort's rows at 0 in a feature never 0 in training, from which (with --impute) the 0s read as "not
# detected" written as 0 (``ShiftReport.zeros_unlike_training``)
ZERO_AS_MISSING_SHARE = 0.05


@dataclass
class ShiftReport:
    """Per-feature comparison of a new table with the training rows, on the preprocessed scale.

    mean_shift = (new mean - training mean) / training SD; sd_ratio = new SD / training SD. Per feature:
    `mean_shifted` when |mean_shift| > `mean_bar` (SHIFT_MEAN_SD from SHIFT_MIN_SAMPLES patients, higher
    below), `spread_shifted` (from SPREAD_MIN_SAMPLES rows) when
    sd_ratio is beyond SHIFT_SPREAD_RATIO either way, `mildly_shifted` (from MILD_MIN_SAMPLES rows) when
    |mean_shift| > SHIFT_MILD_SD. `level` is "shift" when more than SHIFT_FRACTION of the features are
    mean- or spread-shifted, "mild" when more than that share are mildly shifted, else "none" (or
    "unchecked" below SHIFT_MIN_SAMPLES rows). Features filled with --fill-missing are not judged.
    The sample counts are of `units`: the patients (`groups`, distinct values of the group column) when the
    table has one, else the rows.
    """

    features: list[str]
    n: int
    new_mean: np.ndarray  # (d,)
    new_sd: np.ndarray
    train_mean: np.ndarray
    train_sd: np.ndarray
    filled: np.ndarray  # (d,) bool
    # the preprocessing's centre and scale per feature (the features' own scale = centre + scale x scaled;
    # None: the report's figures are the features' own) and its exact inverse (robust scaling clips)
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    unscale: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    groups: int | None = None  # patients (distinct group values) among the n rows; None: no group column
    # (d,) rows of the cohort whose raw value is not 0 (counted until the first: 0 means 0 in every row), and
    # the training rows' share at 0 and their count (None: a model file from before the training share was
    # kept: no absent-feature test)
    nonzero: np.ndarray | None = None
    train_zero_share: np.ndarray | None = None
    train_rows: int | None = None
    log1p: bool | None = None  # whether the model applies log1p to the raw values (None: not known)
    negative: bool | None = None  # whether the cohort holds a negative raw value: not counts or TPM (None: not known)
    # (d,) the SDs before robust scaling's smooth clip, new and training (``Preprocessor.train_sd_unclipped_``;
    # None: no clip, or a model from before format 11): the spread test's ratio, as the clip squeezes a wider
    # spread (every gene's SD doubled read as x1.7 after it, x2.5 as x2.0)
    new_sd_unclipped: np.ndarray | None = None
    train_sd_unclipped: np.ndarray | None = None
    # (d,) the share of the new values at the ±100-scale bound of those SDs: beyond it nothing is measured, and
    # a cohort on another scale (raw intensities for a model of log2 ones) read "SD ratio 0.00", as if narrower
    new_at_bound: np.ndarray | None = None
    # (d,) each feature's kurtosis before the clip in training (``Preprocessor.train_kurtosis_``; None: a model before
    # format 17, or without the clip): how far the SD ratio moves by chance (SPREAD_CHANCE_Z)
    train_kurtosis: np.ndarray | None = None
    # whether the preprocessing clips (robust scaling's smooth clip): the mean shifts are then of the clipped values,
    # and the means on the features' own scale (``far_message``, ``to_frame``) of the values before the clip
    clipped: bool = False

    @property
    def units(self) -> int:
        """The independent units the tests' sample counts are of: patients when known, else rows."""
        return min(self.groups, self.n) if self.groups is not None else self.n

    def unit_name(self) -> str:
        return "patients" if self.groups is not None else "samples"

    @property
    def checked(self) -> bool:
        return self.n >= SHIFT_MIN_SAMPLES

    @property
    def few_rows_rescaled(self) -> bool:
        """Under SHIFT_MIN_SAMPLES rows (1-4 samples, too few for the tests), whether the table is on another scale
        all the same: more than SHIFT_FRACTION of the features (ONE_WAY_MIN_FEATURES or more judged) beyond the mean
        test's raised bar (``mean_bar``: 2.24 SD for one sample, a 2.5 % chance per feature), and SAME_WAY_SHARE of
        those the same way. One sample of log values given to a model of counts (or 1,000 x its scale) moved 27 of
        30 genes 3-4 SD one way and read "cohort-shift check skipped", a note -q hides, while predicting one new
        patient at a time is the clinic's usual case. So that one sample's own spread does not raise it,
        FEW_ROWS_ONE_WAY_SHARE of all the features judged must also have moved that way by more than ONE_WAY_SD: an
        ordinary sample, or a rare class's markers, move features both ways."""
        if self.checked or self.n < 1:
            return False
        judged = ~self.filled
        if int(judged.sum()) < ONE_WAY_MIN_FEATURES:
            return False
        shifts = np.nan_to_num(self.mean_shift)
        flags = judged & (np.abs(shifts) > self.mean_bar)
        if flags.sum() <= SHIFT_FRACTION * judged.sum():
            return False
        down = int((shifts[flags] < 0).sum())
        if max(down, int(flags.sum()) - down) < SAME_WAY_SHARE * flags.sum():
            return False
        # and nearly every feature moved that way (``one_way``'s share): log-counts' long left tails put a few genes of
        # an ordinary sample below the bar together, all one way, beside a gene truly off
        sign = -1.0 if 2 * down >= flags.sum() else 1.0
        return int((sign * shifts[judged] > ONE_WAY_SD).sum()) >= FEW_ROWS_ONE_WAY_SHARE * judged.sum()

    @property
    def mean_bar(self) -> float:
        """The mean test's threshold in training SDs: SHIFT_MEAN_SD, raised under SHIFT_MIN_SAMPLES patients to
        where chance puts as few features as at SHIFT_MIN_SAMPLES (CHANCE_Z / sqrt(patients))."""
        return max(SHIFT_MEAN_SD, CHANCE_Z / math.sqrt(max(self.units, 1)))

    @property
    def far_bar(self) -> float:
        """A feature's mean shift, in training SDs, beyond which it is named alone (``far_shifted``)."""
        return max(FAR_SHIFT_SD, FAR_SHIFT_Z / math.sqrt(max(self.units, 1)))

    def far_shifted(self) -> np.ndarray:
        """(k,) indices of the features (not filled) whose mean lies beyond ``far_bar``, farthest first."""
        if not self.checked:
            return np.zeros(0, dtype=np.int64)
        shift = np.abs(np.nan_to_num(self.mean_shift))
        absent = self.absent if self.absent is not None else np.zeros(len(shift), dtype=bool)
        far = np.flatnonzero((shift > self.far_bar) & ~self.filled & ~absent)  # (absent ones have their own warning)
        return far[np.argsort(-shift[far], kind="stable")]

    def far_message(self) -> str | None:
        """A warning naming the features whose cohort mean lies far beyond their training values (``far_shifted``),
        with their means on their own scale, or None."""
        far = self.far_shifted()
        if not len(far):
            return None
        center = self.center if self.center is not None else np.zeros(len(self.features))
        scale = self.scale if self.scale is not None else np.ones(len(self.features))
        unscale = self.unscale or (lambda z: center + scale * z)
        train_sd = scale * (self.train_sd_unclipped if self.unclipped else self.train_sd)
        # the clip's inverse leaves round-off where a mean is 0 (-6.6e-14): shown as 0
        new, train = (np.where(np.abs(v) < 1e-9 * np.maximum(train_sd, 1e-300), 0.0, v)
                      for v in (unscale(self.new_mean), unscale(self.train_mean)))
        def written(j: int) -> str:  # a log1p model's means are of log(1 + x): what they are as the table writes them
            if not self.log1p:
                return ""
            with np.errstate(over="ignore"):
                back = np.expm1([new[j], train[j]])
            return f" (about {shown_number(back[0], '.3g')} against {shown_number(back[1], '.3g')} as written)"

        # the SDs flagged are the shift table's (``mean_shift``: after robust scaling's clip, the scale the network
        # sees); the means are the features' own, before the clip, which holds far values in: a gene at "mean 4.56
        # against 0.05 ± 1" (4.5 SDs) is +3.1 SD after it, and the warning gave the one, the table the other
        before = " before the clip" if self.clipped else ""
        shift = self.mean_shift
        shown = "; ".join(f"{self.features[j]!r} at {shown_number(_num(shift[j]), '+.3g')} SD, its mean "
                          f"{shown_number(new[j], '.4g')} against {shown_number(train[j], '.4g')} ± "
                          f"{shown_number(train_sd[j], '.2g')} in training{before}{written(j)}"
                          for j in far[:SHIFT_SHOWN])
        k = len(far)
        more = f"; and {k - SHIFT_SHOWN} more" if k > SHIFT_SHOWN else ""
        scale = ", of log(1 + x) of the values, the scale the model reads" if self.log1p else ""
        if self.clipped:
            scale = ((scale or " on the scale the model reads") + " after its robust clip, as --shift-report's "
                     "mean_shift_sd")
        return (f"{'1 feature lies' if k == 1 else f'{k:,} features lie'} far from {'its' if k == 1 else 'their'} "
                f"training values across the cohort (mean beyond {self.far_bar:.3g} training SDs{scale}: {shown}{more}): "
                "another unit, normalisation or a column mix-up — or a cohort of one rare class, whose markers lie "
                "that far in training too? Values beyond the training range the model reads as extremes, which move "
                "its predictions whatever the other features say (--shift-report)")

    @property
    def mild_checked(self) -> bool:
        return self.units >= MILD_MIN_SAMPLES

    @property
    def spread_checked(self) -> bool:
        return self.units >= SPREAD_MIN_SAMPLES

    @property
    def mean_shift(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.filled, np.nan, (self.new_mean - self.train_mean) / np.maximum(self.train_sd, 1e-12))

    @property
    def unclipped(self) -> bool:
        """Whether the spreads are compared before the robust clip (``new_sd_unclipped``)."""
        return self.new_sd_unclipped is not None and self.train_sd_unclipped is not None

    @property
    def sd_ratio(self) -> np.ndarray:
        """New SD / training SD per feature: before the robust clip when the model keeps those SDs (format 11),
        else as the network sees the values (after it); before the clip each value counts within ±100 scales
        (``Preprocessor.unclipped``), in training too."""
        new, train = ((self.new_sd_unclipped, self.train_sd_unclipped) if self.unclipped
                      else (self.new_sd, self.train_sd))
        with np.errstate(invalid="ignore", divide="ignore"):
            # (one sample has no spread to compare: its SD of 0 read as "SD ratio 0.00", a collapsed feature)
            return np.where(self.filled | self.at_bound | (self.n < 2), np.nan, new / np.maximum(train, 1e-12))

    @property
    def at_bound(self) -> np.ndarray:
        """(d,) bool: features most of whose new values lie at the ±UNCLIPPED_LIMIT bound of the values before the
        clip (UNCLIPPED_LIMIT training scales and more away: another scale), where no SD ratio is measured. Each counts
        as spread-shifted: a table multiplied by 300 read "cohort shift: none" (its clipped values' mean unmoved, its
        SD ratio unmeasured) where x100 and x200 were caught."""
        if not (self.unclipped and self.new_at_bound is not None):
            return np.zeros(len(self.features), dtype=bool)
        return ~self.filled & (np.asarray(self.new_at_bound) > 0.5)

    def _beyond(self, sd: float, min_n: int) -> np.ndarray:
        if self.units < min_n or not (self.checked or self.few_rows_rescaled):
            return np.zeros(len(self.features), dtype=bool)
        return ~self.filled & (np.abs(np.nan_to_num(self.mean_shift)) > sd)

    @property
    def mean_shifted(self) -> np.ndarray:
        return self._beyond(self.mean_bar, 1)

    @property
    def mildly_shifted(self) -> np.ndarray:
        return self._beyond(SHIFT_MILD_SD, MILD_MIN_SAMPLES)

    @property
    def spread_shifted(self) -> np.ndarray:
        if not self.spread_checked:
            return np.zeros(len(self.features), dtype=bool)
        r = np.nan_to_num(self.sd_ratio, nan=1.0)
        beyond = (r > SHIFT_SPREAD_RATIO) | (r < 1 / SHIFT_SPREAD_RATIO)
        if self.unclipped and self.train_kurtosis is not None and self.train_rows:
            beyond &= self._beyond_chance(r)
        return ~self.filled & (beyond | self.at_bound)

    def _beyond_chance(self, ratio: np.ndarray) -> np.ndarray:
        """(d,) bool: whether each SD ratio lies beyond what chance moves it by (SPREAD_CHANCE_Z, SPREAD_MIN_DEPARTURES),
        given the feature's kurtosis in training."""
        kurtosis = np.maximum(np.asarray(self.train_kurtosis, dtype=np.float64), 1.0)
        n = max(self.units, 2)
        se = np.sqrt((kurtosis - 1.0) * (1.0 / n + 1.0 / max(self.train_rows, 2)))
        with np.errstate(divide="ignore"):
            far = np.abs(2.0 * np.log(np.maximum(ratio, 0.0))) > SPREAD_CHANCE_Z * se
        collapsed = ratio < COLLAPSED_RATIO
        return np.where(collapsed, n / (kurtosis + 3.0) >= SPREAD_MIN_DEPARTURES, far)

    @property
    def absent_checked(self) -> bool:
        return self.checked and self.nonzero is not None and self.train_zero_share is not None and bool(self.train_rows)

    @property
    def zero_everywhere(self) -> np.ndarray:
        """(d,) bool: features 0 in every row of the cohort (filled ones excluded)."""
        if self.nonzero is None:
            return np.zeros(len(self.features), dtype=bool)
        return ~self.filled & (self.nonzero == 0)

    @property
    def absent_chance(self) -> np.ndarray:
        """(d,) the chance that a cohort of as many patients from the training distribution has each feature at
        0 in every row: ((zeros + 1) / (training rows + 2)) ** patients (see ABSENT_CHANCE); 1 when unknown."""
        if not self.absent_checked:
            return np.ones(len(self.features))
        rows = self.train_rows
        p0 = (self.train_zero_share * rows + 1.0) / (rows + 2.0)
        return p0 ** max(self.units, 1)

    @property
    def absent(self) -> np.ndarray:
        """(d,) bool: features 0 in every row though training rarely had them at 0 (ABSENT_CHANCE)."""
        if not self.absent_checked:
            return np.zeros(len(self.features), dtype=bool)
        judged = max(int((~self.filled).sum()), 1)
        return self.zero_everywhere & (self.absent_chance < ABSENT_CHANCE / judged)

    def absent_names(self) -> str:
        """The absent features (``absent``) as a list for a message: the most surprising SHIFT_SHOWN first."""
        idx = np.flatnonzero(self.absent)
        idx = idx[np.argsort(self.train_zero_share[idx], kind="stable")]  # the most surprising first
        k = len(idx)
        return ", ".join(self.features[j] for j in idx[:SHIFT_SHOWN]) + (f" and {k - SHIFT_SHOWN} more" if k > SHIFT_SHOWN else "")

    def absent_message(self) -> str | None:
        """A warning naming the absent features (``absent``), or None when there are none."""
        flags = self.absent
        k = int(flags.sum())
        if not k:
            return None
        names = self.absent_names()
        most = float(self.train_zero_share[flags].max())
        at_most = "never 0 in training" if most == 0 else f"0 in at most {most:.1%} of the training samples"
        return (f"{k:,} of the {count_of(int((~self.filled).sum()), 'feature')} {'are' if k > 1 else 'is'} 0 in every "
                f"one of the {count_of(self.units, self.unit_name()[:-1])}, though {at_most}: {names}. A gene the "
                "cohort's assay did not "
                "measure, written as 0, reads to the model as 'not expressed': if they were not measured, remove "
                "those columns and predict with --fill-missing mean (their training means instead)")

    def zeros_unlike_training(self, share: float = ZERO_AS_MISSING_SHARE) -> np.ndarray:
        """(d,) bool: features never 0 in training but 0 in at least ``share`` of this cohort's rows (and not in
        every row: ``absent``). Where missing values were filled in training (--impute), that is the mark of a lab
        writing 'not detected' as 0: the model then reads the lowest detected value's far side, not a fill."""
        if self.nonzero is None or self.train_zero_share is None or not self.n:
            return np.zeros(len(self.features), dtype=bool)
        zero_share = 1.0 - self.nonzero / self.n
        return (~self.filled & (self.train_zero_share == 0) & (zero_share >= share) & (zero_share < 1.0))

    def _fraction(self, flags: np.ndarray) -> float:
        judged = int((~self.filled).sum())
        return float(flags.sum() / judged) if judged else 0.0

    @property
    def fraction_mean_shifted(self) -> float:
        return self._fraction(self.mean_shifted)

    @property
    def fraction_mildly_shifted(self) -> float:
        return self._fraction(self.mildly_shifted)

    @property
    def fraction_spread_shifted(self) -> float:
        return self._fraction(self.spread_shifted)

    def one_way(self) -> tuple[str, int, int] | None:
        """("lower" or "higher", how many, of how many) when at least SAME_WAY_SHARE of all the features judged
        (ONE_WAY_MIN_FEATURES or more) moved the same way by more than ONE_WAY_SD and their median SD ratio is
        SHIFT_SPREAD_RATIO or more off: the whole table on another scale (``level`` "shift" whatever the other tests
        say); else None."""
        if not self.checked:
            return None
        shifts = self.mean_shift[~self.filled]
        shifts = shifts[np.isfinite(shifts)]
        if len(shifts) < ONE_WAY_MIN_FEATURES:
            return None
        down, up = int((shifts < -ONE_WAY_SD).sum()), int((shifts > ONE_WAY_SD).sum())
        way, k = ("lower", down) if down >= up else ("higher", up)
        if k < SAME_WAY_SHARE * len(shifts):
            return None
        ratio = self.sd_ratio[~self.filled]
        ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
        spread = float(np.median(ratio)) if len(ratio) else 1.0
        rescaled = spread <= 1 / SHIFT_SPREAD_RATIO or spread >= SHIFT_SPREAD_RATIO
        return (way, k, len(shifts)) if rescaled else None

    @property
    def level(self) -> str:
        if not self.checked:
            return "shift" if self.few_rows_rescaled else "unchecked"
        if self.fraction_mean_shifted > SHIFT_FRACTION or self.fraction_spread_shifted > SHIFT_FRACTION:
            return "shift"
        if self.one_way() is not None:
            return "shift"
        if self.fraction_mildly_shifted > SHIFT_FRACTION:
            return "mild"
        return "none"

    @property
    def shifted(self) -> bool:
        """True when the table as a whole looks shifted (level "shift" or "mild")."""
        return self.level in ("shift", "mild")

    @property
    def score(self) -> np.ndarray:
        """max(|mean_shift| / mean_bar, |log sd_ratio| / log SHIFT_SPREAD_RATIO): above 1 means flagged."""
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.abs(np.nan_to_num(self.mean_shift)) / self.mean_bar
            if self.spread_checked:
                ratio = np.nan_to_num(self.sd_ratio, nan=1.0)
                spread = np.abs(np.log(np.clip(ratio, 1e-12, None))) / math.log(SHIFT_SPREAD_RATIO)
                # at the bound: at least UNCLIPPED_LIMIT scales off, as an SD ratio of that size would score
                bound = math.log(UNCLIPPED_LIMIT) / math.log(SHIFT_SPREAD_RATIO)
                s = np.maximum(s, np.where(self.at_bound, np.maximum(spread, bound), spread))
        return np.where(self.filled, 0.0, s)

    @property
    def ranking(self) -> str:
        """How features are ranked as "most shifted": by `score` when spread is what shifted, else by mean."""
        return "score" if self.fraction_spread_shifted > SHIFT_FRACTION else "mean"

    def _key(self, by: str | None) -> np.ndarray:
        return self.score if (by or self.ranking) == "score" else np.abs(np.nan_to_num(self.mean_shift))

    def most_shifted(self, k: int = 10, by: str | None = None) -> list[dict]:
        """The k most shifted features: largest |mean_shift| (by="mean") or `score` (by="score"); by
        default as `ranking` says."""
        key = self._key(by)
        order = np.argsort(-key, kind="stable")[:k]
        ms, sr, bound = self.mean_shift, self.sd_ratio, self.at_bound
        return [{"feature": self.features[j], "mean_shift_sd": _num(ms[j]), "sd_ratio": _num(sr[j]),
                 "at_bound": bool(bound[j]),  # most values UNCLIPPED_LIMIT scales and more away: no ratio measured
                 "new_mean": _num(self.new_mean[j]), "train_mean": _num(self.train_mean[j])} for j in order]

    def to_frame(self) -> pd.DataFrame:
        """The per-feature table, most shifted first (see `ranking`). `new_mean`, `new_sd`, `train_mean`,
        `train_sd` are on the features' own scale (the table's values, after log1p and imputation when the
        model applies them; with robust scaling the clipping of extreme values is undone on the means, so
        those are close, not exact; the SDs are exact where the model keeps them before the clip, format 11);
        the same four with `_scaled` are on the standardised scale the network sees, where `mean_shift_sd` is
        measured, and `sd_ratio` too for models before format 11 (since then: the SDs before the clip)."""
        center = self.center if self.center is not None else np.zeros(len(self.features))
        scale = self.scale if self.scale is not None else np.ones(len(self.features))
        unscale = self.unscale or (lambda z: center + scale * z)
        new_sd, train_sd = (self.new_sd_unclipped, self.train_sd_unclipped) if self.unclipped else (
            self.new_sd, self.train_sd)
        frame = pd.DataFrame({
            "feature": self.features, "new_mean": unscale(self.new_mean), "new_sd": scale * new_sd,
            "train_mean": unscale(self.train_mean), "train_sd": scale * train_sd,
            "mean_shift_sd": self.mean_shift, "sd_ratio": self.sd_ratio,
            "mean_shifted": self.mean_shifted, "spread_shifted": self.spread_shifted,
            "mildly_shifted": self.mildly_shifted, "filled": self.filled,
            "zero_in_every_sample": self.zero_everywhere, "absent": self.absent,
            "train_zero_share": (self.train_zero_share if self.train_zero_share is not None
                                 else np.full(len(self.features), np.nan)),
            "new_mean_scaled": self.new_mean, "new_sd_scaled": self.new_sd, "train_mean_scaled": self.train_mean,
            "train_sd_scaled": self.train_sd,
        })
        return frame.iloc[np.argsort(-self._key(None), kind="stable")].reset_index(drop=True)

    def summary(self, top: int = 10) -> dict:
        return {"n": self.n, "groups": self.groups, "features": len(self.features), "level": self.level,
                "mild_checked": self.mild_checked, "spread_checked": self.spread_checked,
                "fraction_mean_shifted": self.fraction_mean_shifted,
                "fraction_mildly_shifted": self.fraction_mildly_shifted,
                "fraction_spread_shifted": self.fraction_spread_shifted,
                "thresholds": {"mean_shift_sd": self.mean_bar, "mild_shift_sd": SHIFT_MILD_SD,
                               "sd_ratio": SHIFT_SPREAD_RATIO, "fraction": SHIFT_FRACTION},
                "most_shifted": self.most_shifted(top) if self.level != "unchecked" else [],
                "absent_checked": self.absent_checked,
                "absent": [self.features[j] for j in np.flatnonzero(self.absent)],
                # ("lower" | "higher", how many, of how many) when nearly all features moved one way (``one_way``)
                "one_way": list(self.one_way() or []) or None,
                # the features whose mean lies far beyond their training values, named whatever their share
                "far": [self.features[j] for j in self.far_shifted()]}

    def same_way(self) -> tuple[str, int, int] | None:
        """("lower" or "higher", how many, of how many) when at least SAME_WAY_SHARE of the features that make
        the shift level (mean-shifted at "shift", mildly shifted at "mild"), more than SHIFT_FRACTION of them,
        moved the same way; else None."""
        if self.level not in ("shift", "mild"):
            return None
        flags = self.mean_shifted if self.fraction_mean_shifted > SHIFT_FRACTION else self.mildly_shifted
        if self._fraction(flags) <= SHIFT_FRACTION:
            return self.one_way()
        shifts = self.mean_shift[flags]
        down, total = int((shifts < 0).sum()), len(shifts)
        way, k = ("lower", down) if 2 * down >= total else ("higher", total - down)
        return (way, k, total) if k >= SAME_WAY_SHARE * total else None

    def scale_hint(self) -> str:
        """A sentence for the warning when nearly every shifted feature moved the same way (``same_way``):
        the table's values look on another scale than the training table's; "" otherwise."""
        found = self.same_way()
        if found is None:
            return ""
        way, k, total = found
        # which features ``same_way`` counted: those past the mean test's bar, else past the mild one (the spread
        # test's features may be others: "10 of the 10 shifted features" read as if of the spread's 50)
        bar = self.mean_bar if self.fraction_mean_shifted > SHIFT_FRACTION else SHIFT_MILD_SD
        moved = (f"{k:,} of the {total:,} features whose mean moved more than {bar:.3g} training SD are {way} than in "
                 "training" if self._fraction(self.mean_shifted) > SHIFT_FRACTION
                 or self._fraction(self.mildly_shifted) > SHIFT_FRACTION else "Nearly every feature moved that way")
        if way == "lower" and self.log1p:
            why = ("as when the values are already log-transformed: the model applies log1p itself and expects "
                   "values like its training table's (counts, TPM)")
        elif way == "higher" and self.log1p is False and self.negative is False:
            # (whether the training values were logs is not known: raw counts have small means too, in single cells)
            why = ("as when the values are on another scale than the training table's — raw counts or TPM where "
                   "the model learned log-transformed values, log2 where it learned natural logs, another "
                   "normalisation or library size: transform them as the training table was")
        else:  # negative values are no counts: an offset of the whole table (a batch), or other units
            why = ("as when the table is on another scale, unit or normalisation than the training table, or "
                   "carries a batch offset")
        return f" {moved}, {why}."

    def _raised(self) -> str:
        """How the mean test's bar was raised for a cohort of few patients (else "")."""
        if self.mean_bar <= SHIFT_MEAN_SD:
            return ""
        units = count_of(self.units, self.unit_name()[:-1])
        return f" (the {SHIFT_MEAN_SD:g} SD bar raised for {units}: chance alone moves means that far)"

    def message(self, report: str = "--shift-report") -> str | None:
        """One line for the user: a warning text when `shifted`, else a note; None when unchecked. ``report``: how
        the command that reads it writes every feature's figures (recalibrate has no --shift-report: predict's)."""
        d = int((~self.filled).sum())
        if self.level == "unchecked":
            return None
        if self.level == "none":
            if self.mild_checked:
                mild = f"{self.fraction_mildly_shifted:.0%} by more than {SHIFT_MILD_SD:g}"
            else:  # not judged: a 0 % here would be a figure never measured
                mild = (f"the {SHIFT_MILD_SD:g} SD and SD-ratio tests need {MILD_MIN_SAMPLES} {self.unit_name()}, "
                        f"this cohort has {self.units:,}")
            return (f"cohort-shift check: {self.fraction_mean_shifted:.0%} of the {count_of(d, 'feature')} shifted by "
                    "more than "
                    f"{self.mean_bar:.3g} training SD{self._raised()}, {mild} (warnings above {SHIFT_FRACTION:.0%})")
        parts = []
        if self.fraction_mean_shifted > SHIFT_FRACTION or self.level == "mild":
            sd = self.mean_bar if self.level == "shift" else SHIFT_MILD_SD
            frac = self.fraction_mean_shifted if self.level == "shift" else self.fraction_mildly_shifted
            parts.append(f"{frac:.0%} of the {count_of(d, 'feature')} have a mean more than {sd:.3g} training SD from the "
                         f"training mean{self._raised() if self.level == 'shift' else ''}")
        if self.fraction_spread_shifted > SHIFT_FRACTION:
            parts.append(f"{self.fraction_spread_shifted:.0%} have an SD over {SHIFT_SPREAD_RATIO:g}x larger or "
                         "smaller than in training")
        bar = f"warning above {SHIFT_FRACTION:.0%}"
        if not parts:  # the one-way test alone (``one_way``)
            way, k, total = self.one_way()
            parts.append(f"{k:,} of the {total:,} features have a mean {way} than in training (by more than "
                         f"{ONE_WAY_SD:g} training SD; {self.fraction_mean_shifted:.0%} beyond {self.mean_bar:.3g} SD) "
                         f"and a median SD {SHIFT_SPREAD_RATIO:g}x or more off")
            bar = f"warning when {SAME_WAY_SHARE:.0%} move one way"
        shown = ", ".join(f"{r['feature']} ({shown_number(r['mean_shift_sd'], '+.2g')} SD"
                          + (")" if self.n < 2  # one sample has no spread: "SD x0" read as a collapsed feature
                             else f", SD x{shown_number(r['sd_ratio'], '.2g')})" if r['sd_ratio'] is not None
                             else f", most values beyond {UNCLIPPED_LIMIT:g} training scales)" if r["at_bound"]
                             else ", SD ratio —)")  # not measured
                          for r in self.most_shifted(SHIFT_SHOWN))
        if self.level == "shift":
            return (f"cohort shift: {' and '.join(parts)} ({bar}); most shifted: {shown}."
                    f"{self.scale_hint()} These samples differ from the training cohort (batch, protocol, population): check the "
                    f"predictions before trusting them ({report} for every feature)")
        return (f"mild cohort shift: {' and '.join(parts)} (warning above {SHIFT_FRACTION:.0%}; "
                f"{self.fraction_mean_shifted:.0%} beyond {self.mean_bar:.3g} SD); most shifted: {shown}."
                f"{self.scale_hint()} Predictions may be less reliable than on the training cohort ({report} for every "
                "feature)")


SHIFT_LEVELS = ("none", "mild", "shift")  # in increasing order; "unchecked" (too few rows) is none of them


def shift_failure(report: "ShiftReport | None", level: str) -> str | None:
    """``predict --fail-on-shift LEVEL``: a one-line reason to stop when the report's level is `level` or
    worse ("mild": any shift; "shift": a strong one), or when features are absent (0 in every sample though
    rarely 0 in training: not measured, at either level), else None. A table too small to check
    (SHIFT_MIN_SAMPLES rows) cannot be judged and does not fail."""
    if level not in SHIFT_LEVELS[1:]:
        raise ValueError(f"--fail-on-shift must be one of {', '.join(SHIFT_LEVELS[1:])}, got {level!r}")
    if report is None:
        return None
    reasons = []
    if report.level in SHIFT_LEVELS and SHIFT_LEVELS.index(report.level) >= SHIFT_LEVELS.index(level):
        mild = (f"{report.fraction_mildly_shifted:.0%} beyond {SHIFT_MILD_SD:g} SD, {report.fraction_spread_shifted:.0%} "
                f"with an SD over {SHIFT_SPREAD_RATIO:g}x off" if report.mild_checked else
                f"the {SHIFT_MILD_SD:g} SD and SD-ratio tests not run (under {MILD_MIN_SAMPLES} {report.unit_name()})")
        way = report.one_way()
        one_way = (f"; {way[1]:,} of the {way[2]:,} features {way[0]} than in training with SDs {SHIFT_SPREAD_RATIO:g}x "
                   f"off (the rule: {SAME_WAY_SHARE:.0%} of them one way, a table on another scale)" if way else "")
        reasons.append(f"cohort shift {report.level!r} reaches --fail-on-shift {level}: {report.fraction_mean_shifted:.0%} "
                       f"of the features beyond {report.mean_bar:.3g} training SD, {mild} (the rule: more than "
                       f"{SHIFT_FRACTION:.0%} of them){one_way}")
    absent = int(report.absent.sum())
    if absent:  # genes the cohort did not measure, written as 0: wrong inputs whatever the level asked
        reasons.append(f"{count_of(absent, 'feature')} {'are' if absent > 1 else 'is'} 0 in every one of the "
                       f"{count_of(report.units, report.unit_name()[:-1])} though rarely 0 in training "
                       f"({report.absent_names()}), which fails "
                       f"--fail-on-shift {level}: not measured? remove {'them' if absent > 1 else 'it'} and use "
                       "--fill-missing mean")
    return "; ".join(reasons) or None


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def shown_number(v: float | None, spec: str) -> str:
    """A report value for people: formatted with ``spec``, or "n/a" where the JSON form holds None."""
    return "n/a" if v is None else format(v, spec)


class ShiftStats:
    """Running per-feature count, sum and sum of squares of (Z - training mean), accumulated in float64.

    Each block's sums are taken by BLAS in Z's precision; when they overflow (float32 values far beyond the
    training spread square past 3.4e38) the block is summed again in float64, where network inputs (within
    ±3.4e38, see ``Preprocessor``) square to at most 1e78."""

    def __init__(self, pre):
        self.ref = np.asarray(pre.train_mean_, dtype=np.float64)
        self.n = 0
        self.s1 = np.zeros_like(self.ref)
        self.s2 = np.zeros_like(self.ref)
        self.nonzero = np.zeros(len(self.ref), dtype=np.int64)
        self.zero_share = getattr(pre, "train_zero_share_", None)
        # features whose share of zeros is read (``ShiftReport.zeros_unlike_training``: a model that imputed, and
        # features never 0 in training): counted in every row; the others only until each has a non-zero value
        imputed = getattr(getattr(pre, "config", None), "impute", None) is not None
        self.exact = (self.zero_share == 0) if imputed and self.zero_share is not None else None
        self.train_rows = getattr(pre, "train_rows_", None)
        self.negative = False
        # the values before the robust clip (``Preprocessor.unclipped``), when the model keeps their training SDs
        self.pre = pre
        self.train_sd_unclipped = getattr(pre, "train_sd_unclipped_", None)
        self.u1 = np.zeros_like(self.ref)
        self.u2 = np.zeros_like(self.ref)
        self.u_at = np.zeros_like(self.ref)  # the weight of the values at the ±UNCLIPPED_LIMIT bound
        self.u_n = 0.0

    def count_nonzero(self, X: np.ndarray) -> None:
        """Count the rows of raw values X (rows, d_kept) whose value is not 0, per feature (NaN is not 0), and
        note whether any value is negative (until one is)."""
        if not self.negative:
            self.negative = bool((X < 0).any())
        if self.zero_share is None:
            return  # a model file from before the training shares were kept: no test to feed
        # only features still at 0 in every row can change the "absent" verdict; the exact ones are counted always
        # (a count that stopped after the first piece read 300 features as 0 in most rows of a table without a 0)
        still = self.nonzero == 0
        open_ = np.flatnonzero(still if self.exact is None else still | self.exact)
        if len(open_) == 0:
            return
        if 4 * len(open_) < len(self.nonzero):  # a few columns: copying them costs less than a pass over all
            self.nonzero[open_] += np.count_nonzero(X[:, open_], axis=0)
        else:
            self.nonzero += np.count_nonzero(X, axis=0)

    def update(self, Z: np.ndarray) -> None:
        ref = self.ref.astype(Z.dtype)
        for start in range(0, len(Z), STAT_ROWS):
            block = Z[start:start + STAT_ROWS]
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught below
                D = block - ref  # (rows, d) in Z's precision
                ones = np.ones(len(D), dtype=D.dtype)
                s1 = ones @ D  # column sums by BLAS; at most STAT_ROWS terms each, then added in float64
                D *= D
                s2 = ones @ D
            if not (np.isfinite(s1).all() and np.isfinite(s2).all()):
                D = block.astype(np.float64) - self.ref
                s1 = D.sum(axis=0)
                D *= D
                s2 = D.sum(axis=0)
            self.s1 += s1
            self.s2 += s2
            if self.train_sd_unclipped is not None:
                self._add_unclipped(block, self.n + start)
        self.n += len(Z)

    def _add_unclipped(self, block: np.ndarray, first: int) -> None:
        """The sums of the values before the clip (``Preprocessor.unclipped``) of the rows ``block`` (whose first is
        row ``first`` of the table): every row of the first UNCLIPPED_EVERY_ROW, then every UNCLIPPED_STRIDE-th
        (by the row's number, so the sample is spread over the whole table however it is sorted) weighing
        UNCLIPPED_STRIDE each."""
        rows = np.arange(first, first + len(block))
        keep = (rows < UNCLIPPED_EVERY_ROW) | (rows % UNCLIPPED_STRIDE == 0)
        weight = np.where(rows[keep] < UNCLIPPED_EVERY_ROW, 1.0, float(UNCLIPPED_STRIDE))
        U = self.pre.unclipped(block[keep] if not keep.all() else block)  # (m, d) float64: robust z-scores
        with np.errstate(over="ignore", invalid="ignore"):
            self.u_at += weight @ (np.abs(U) >= UNCLIPPED_LIMIT)
            self.u1 += weight @ U
            U *= U
            self.u2 += weight @ U
        self.u_n += float(weight.sum())

    def report(self, features: list[str], pre, filled: np.ndarray, groups: int | None = None) -> ShiftReport:
        n = max(self.n, 1)
        with np.errstate(over="ignore", invalid="ignore"):  # sums are finite for inputs within ±3.4e38
            mean_d = self.s1 / n
            var = np.maximum(self.s2 / n - mean_d**2, 0.0)
            u_n = max(self.u_n, 1.0)
            u_var = np.maximum(self.u2 / u_n - (self.u1 / u_n) ** 2, 0.0)
        return ShiftReport(features=list(features), n=self.n, new_mean=self.ref + mean_d, new_sd=np.sqrt(var),
                           train_mean=self.ref.copy(), train_sd=np.asarray(pre.train_sd_, dtype=np.float64).copy(),
                           filled=np.asarray(filled, dtype=bool).copy(), groups=groups,
                           nonzero=self.nonzero.copy() if self.zero_share is not None else None,
                           train_zero_share=self.zero_share, train_rows=self.train_rows,
                           log1p=bool(getattr(pre.config, "log1p", False)), negative=self.negative if self.n else None,
                           new_sd_unclipped=None if self.train_sd_unclipped is None else np.sqrt(u_var),
                           train_sd_unclipped=None if self.train_sd_unclipped is None else
                           np.asarray(self.train_sd_unclipped, dtype=np.float64).copy(),
                           new_at_bound=None if self.train_sd_unclipped is None else self.u_at / u_n,
                           train_kurtosis=None if getattr(pre, "train_kurtosis_", None) is None else
                           np.asarray(pre.train_kurtosis_, dtype=np.float64).copy(),
                           clipped=bool(getattr(pre, "clips", False)), **_own_scale(pre))


def _own_scale(pre) -> dict:
    """The ShiftReport fields that map its standardised figures back to the features' own scale."""
    if getattr(pre, "center_", None) is None or getattr(pre, "scale_", None) is None:
        return {}
    return {"center": np.asarray(pre.center_, dtype=np.float64), "scale": np.asarray(pre.scale_, dtype=np.float64),
            "unscale": pre.unscale}


def preprocessed_shift(pre, Z, groups=None) -> ShiftReport:
    """The mean test of the shift report (and the spread test on the clipped values) for rows Z (n, d_kept) already
    transformed by ``pre`` (dense, or sparse rows densified a piece at a time): a network's validation rows against
    its own training rows, in ``train``. No absent-gene test (it needs the raw values); `groups` as for
    ``shift_report``."""
    stats = ShiftStats(pre)
    stats.zero_share = None
    stats.train_sd_unclipped = None  # (the spread test on the clipped values: its unclipped sums cost a pass more)
    for start in range(0, Z.shape[0], DEFAULT_CHUNKSIZE):
        block = Z[start:start + DEFAULT_CHUNKSIZE]
        stats.update(block.toarray() if hasattr(block, "toarray") else np.asarray(block))
    n_groups = None if groups is None else GroupCount().add(label_keys(np.asarray(groups, dtype=object))).count
    return stats.report(pre.kept_features, pre, np.zeros(len(pre.kept_features), dtype=bool), n_groups)


def shift_report(model: Model, X, groups=None, features: list[str] | None = None) -> ShiftReport:
    """The shift report for raw rows X (n, d_in), as `predict_output` takes them: in `model.feature_names`
    order, or with their columns named by ``features`` (any order), or a pandas DataFrame whose columns are
    matched by name (others — ids, labels — left out). A feature the model uses that X lacks is a DataError.
    `groups` (n,): each row's patient, so that the tests' sample counts count patients (None: rows)."""
    require_model(model, "shift_report takes")  # a path given for it failed with an AttributeError inside
    pre = model.preprocessor
    X, features = model.inputs(X, features)
    if features is not None:
        X = _in_model_order(model, X, features)
    pre.check_width(X)  # before the rows are indexed by the kept features
    if groups is not None and len(groups) != X.shape[0]:
        raise DataError(f"groups has {len(groups)} values for X's {X.shape[0]} rows; give each row its patient")
    stats = ShiftStats(pre)
    for start in range(0, len(X), DEFAULT_CHUNKSIZE):
        chunk = X[start:start + DEFAULT_CHUNKSIZE]
        stats.count_nonzero(chunk[:, pre.kept_index_])
        stats.update(pre.transform(chunk))
    n_groups = None if groups is None else GroupCount().add(label_keys(np.asarray(groups, dtype=object))).count
    return stats.report(pre.kept_features, pre, np.zeros(len(pre.kept_features), dtype=bool), n_groups)


def _in_model_order(model: Model, X, features: list[str]) -> np.ndarray:
    """X (n, len(features)) as (n, d_in) in ``model.feature_names`` order; a feature the model does not use
    (``kept_features``: not constant on the training rows) may be absent, and is then NaN."""
    if len(features) != X.shape[1]:
        raise DataError(f"features= gives {len(features)} names for X's {X.shape[1]} columns")
    index: dict[str, int] = {}
    used = set(model.preprocessor.kept_features)
    for j, name in enumerate(features):
        if name in index and name in used:
            raise DataError(f"X has the feature {name!r} the model uses more than once; keep one column per feature")
        index.setdefault(name, j)
    missing = [name for name in model.preprocessor.kept_features if name not in index]
    if missing:
        raise DataError(f"X lacks {len(missing)} of the features the model uses, e.g. {missing[0]!r}")
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    out = np.full((X.shape[0], len(model.feature_names)), np.nan, dtype=X.dtype if X.dtype.kind == "f" else np.float64)
    present = [(k, index[name]) for k, name in enumerate(model.feature_names) if name in index]
    if present:
        to, source = map(list, zip(*present))
        out[:, to] = X[:, source]
    return out


class GroupCount:
    """Distinct patients among streamed rows, from their group keys (`label_keys`); a row whose group is
    missing ("NA") counts as a patient of its own. Counted up to GROUP_COUNT_CAP: the tests only ask whether
    there are 5 or 20, and a streamed table with a group per row must not keep every id in memory."""

    def __init__(self):
        self.keys: set = set()
        self.missing = 0

    def add(self, keys: np.ndarray) -> "GroupCount":
        if self.count >= GROUP_COUNT_CAP:
            return self
        keys = np.asarray(keys, dtype=object)
        na = keys == "NA"
        self.missing += int(na.sum())
        self.keys.update(keys[~na].tolist())
        return self

    @property
    def count(self) -> int:
        return len(self.keys) + self.missing
