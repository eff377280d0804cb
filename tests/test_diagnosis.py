"""Tests for mlpcli.diagnosis: the learning-curve labeller.

The main test runs the labeller over a seeded, generated suite of realistic curves (``curves.py``,
40 per label) and prints the confusion table (rows true, columns predicted) when it falls short.
The unit tests pin the contract: evidence fields, JSON, score curves, NaN, short curves, errors,
the divergence epoch and the dropout explanation.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

from mlpcli.diagnosis import LABELS, RUNNER_UP_MARGIN, CurveError, Diagnosis, diagnose
from mlpcli.errors import DataError

try:  # tests/ is on sys.path under pytest's default (prepend) import mode
    import curves
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests import curves

PER_LABEL = 40
SUITE_SEED = 0
MIN_OVERALL_ACCURACY = 0.95
MIN_LABEL_ACCURACY = 0.90


def _run(case: curves.Case) -> Diagnosis:
    return diagnose(case.train, case.val, baseline=case.baseline, train_eval_loss=case.train_eval,
                    stochastic_regularisation=case.stochastic)


@pytest.fixture(scope="module")
def suite() -> list[tuple[curves.Case, Diagnosis]]:
    return [(case, _run(case)) for case in curves.generate_suite(PER_LABEL, SUITE_SEED)]


def _exp(n: int, start: float, plateau: float, tau: float, offset: float = 0.0) -> np.ndarray:
    t = np.arange(n, dtype=float) + offset
    return plateau + (start - plateau) * np.exp(-t / tau)


def _noise(rng: np.random.Generator, y: np.ndarray, sd: float) -> np.ndarray:
    return y * np.exp(rng.normal(0, sd, len(y)))


# --- the generated suite -----------------------------------------------------------------------


def test_generator_labels_match_the_module():
    assert curves.LABELS == LABELS


def test_suite_is_varied(suite):
    """At least 20 runs per label, with varied lengths, scales and with/without a baseline."""
    for label in LABELS:
        cases = [c for c, _ in suite if c.label == label]
        lengths = [len(c.train) for c in cases]
        scales = [c.true_baseline for c in cases]
        assert len(cases) >= 20
        assert min(lengths) <= 25 and max(lengths) >= 200, (label, lengths)
        assert min(scales) <= 0.2 and max(scales) >= 1.5, (label, scales)
        given = sum(c.baseline is not None for c in cases)
        assert 0 < given < len(cases), label


def test_labeller_accuracy_on_generated_suite(suite):
    truth = [c.label for c, _ in suite]
    predicted = [d.label for _, d in suite]
    overall = np.mean([t == p for t, p in zip(truth, predicted)])
    per_label = {lab: np.mean([p == lab for t, p in zip(truth, predicted) if t == lab])
                 for lab in LABELS}
    wrong = [f"{c.id} -> {d.label}" for c, d in suite if d.label != c.label]
    message = (f"overall accuracy {overall:.3f} (need {MIN_OVERALL_ACCURACY}), per label "
               f"{ {k: round(float(v), 3) for k, v in per_label.items()} }\n"
               + curves.confusion_table(truth, predicted) + "\nmisclassified:\n" + "\n".join(wrong))
    assert overall >= MIN_OVERALL_ACCURACY, message
    assert min(per_label.values()) >= MIN_LABEL_ACCURACY, message


def test_divergence_epochs_of_generated_overfits(suite):
    """On correctly labelled overfit runs the divergence epoch is near the noise-free minimum."""
    errors = [abs(d.evidence["divergence_epoch"] - c.truth["divergence_epoch"]) / len(c.train)
              for c, d in suite if c.label == "overfit" and d.label == "overfit"]
    assert errors and float(np.median(errors)) <= 0.05, sorted(errors)


def test_runner_up_is_close_and_different(suite):
    with_runner_up = [d for _, d in suite if d.runner_up is not None]
    assert with_runner_up, "no generated run is ambiguous enough for a runner-up"
    for d in with_runner_up:
        assert d.runner_up in LABELS and d.runner_up != d.label
        assert d.evidence["score"] - d.evidence["runner_up_score"] <= RUNNER_UP_MARGIN + 1e-6


# --- evidence, JSON, advice --------------------------------------------------------------------

REQUIRED_EVIDENCE = {
    "n_epochs", "short_curve", "train_final", "val_final", "best_val", "best_epoch",
    "train_slope", "val_slope", "gap_end", "gap_slope", "gap_trend", "val_noise",
    "divergence_epoch", "train_distance_from_baseline", "val_distance_from_baseline",
    "scale", "scale_source",
}


def _plain_json(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


@pytest.mark.parametrize("label", LABELS)
def test_evidence_fields_and_json(label):
    d = _run(curves.make_case(label, 0, seed=1))
    out = d.to_dict()
    assert set(out) == {"label", "unstable_epoch", "evidence", "advice", "runner_up", "summary"}
    assert REQUIRED_EVIDENCE <= set(out["evidence"])
    assert _plain_json(out), out
    json.dumps(out, allow_nan=False)
    assert out["label"] in LABELS and out["advice"] and out["summary"].endswith(".")
    assert "\n" not in out["summary"]


def test_divergence_epoch_only_for_overfit(suite):
    for _, d in suite:
        if d.label == "overfit":
            assert isinstance(d.evidence["divergence_epoch"], int)
        else:
            assert d.evidence["divergence_epoch"] is None


def test_distance_from_baseline_only_with_baseline():
    train, val = _exp(60, 0.69, 0.2, 8, 0.5), _exp(60, 0.69, 0.23, 8, 1.0)
    with_b = diagnose(train, val, baseline=0.69).evidence
    without = diagnose(train, val).evidence
    assert with_b["scale_source"] == "baseline" and with_b["scale"] == pytest.approx(0.69)
    assert with_b["val_distance_from_baseline"] == pytest.approx((0.69 - 0.23) / 0.69, abs=0.01)
    assert without["scale_source"] == "first_epochs"
    assert without["train_distance_from_baseline"] is None


KEYWORDS = {
    "underfit_capacity": "capacity",
    "underfit_stopped_early": "more epochs",
    "overfit": "epoch",
    "good_fit": "nothing needed",
    "unrepresentative_train": "distribution mismatch",
    "unrepresentative_validation_noisy": "k-fold",
    "validation_below_train": "dropout",
}


@pytest.mark.parametrize("label", LABELS)
def test_advice_comes_from_the_notes(suite, label):
    d = next(d for c, d in suite if c.label == label and d.label == label)
    text = " ".join(d.advice).lower()
    assert KEYWORDS[label] in text
    if label == "overfit":
        assert f"epoch {d.evidence['divergence_epoch']}" in text


def test_scale_invariance():
    """The same run in other units (loss x 37, baseline x 37) gets the same verdict."""
    case = curves.make_case("unrepresentative_train", 3, seed=2)
    a = diagnose(case.train, case.val, baseline=case.true_baseline)
    b = diagnose(37 * case.train, 37 * case.val, baseline=37 * case.true_baseline)
    assert a.label == b.label
    for key in ("train_slope", "val_slope", "gap_end", "val_noise", "val_rise"):
        assert a.evidence[key] == pytest.approx(b.evidence[key], rel=1e-4, abs=1e-9), key


# --- score curves, NaN, short and long curves --------------------------------------------------


@pytest.mark.parametrize("label", LABELS)
def test_higher_is_better_flips(label):
    """A score s = 1 - loss must get the same verdict and evidence as the loss; signed evidence (slopes,
    gaps) is reported in each curve's own direction, so it flips sign."""
    case = curves.make_case(label, 5, seed=3)
    train, val = case.train / (1.2 * case.true_baseline), case.val / (1.2 * case.true_baseline)
    train_eval = None if case.train_eval is None else case.train_eval / (1.2 * case.true_baseline)
    as_loss = diagnose(train, val, baseline=1 / 1.2, train_eval_loss=train_eval)
    as_score = diagnose(1 - train, 1 - val, baseline=1 - 1 / 1.2, higher_is_better=True,
                        train_eval_loss=None if train_eval is None else 1 - train_eval)
    assert as_score.label == as_loss.label
    assert as_score.evidence["higher_is_better"] is True
    assert as_score.evidence["val_final"] == pytest.approx(1 - as_loss.evidence["val_final"])
    for key in ("gap_end", "train_slope", "val_slope", "gap_slope"):
        assert as_score.evidence[key] == pytest.approx(-as_loss.evidence[key], abs=1e-9), key
    for key in ("val_rise", "score", "best_epoch", "val_level"):  # unsigned, or "> 0 worse" in both
        assert as_score.evidence[key] == pytest.approx(as_loss.evidence[key], abs=1e-9), key


def test_accuracy_curves_that_overfit():
    """Rising training accuracy with validation accuracy peaking and falling is overfit."""
    n = 120
    t = np.arange(n, dtype=float)
    train_acc = 0.99 - 0.49 * np.exp(-t / 15)
    val_acc = 0.85 - 0.35 * np.exp(-t / 15) - 0.002 * np.clip(t - 40, 0, None)
    d = diagnose(train_acc, val_acc, baseline=0.5, higher_is_better=True)
    assert d.label == "overfit"
    assert abs(d.evidence["best_epoch"] - (int(np.argmax(val_acc)) + 1)) <= 4


@pytest.mark.parametrize("label", ["good_fit", "overfit", "underfit_stopped_early"])
def test_nan_epochs_are_dropped(label):
    case = curves.make_case(label, 2, seed=4)
    rng = np.random.default_rng(0)
    n = len(case.train)
    train, val = case.train.copy(), case.val.copy()
    holes = rng.choice(np.arange(1, n - 1), size=max(1, n // 10), replace=False)
    train[holes[::2]] = np.nan
    val[holes[1::2]] = np.nan
    clean = _run(case)
    holey = diagnose(train, val, baseline=case.baseline)
    assert holey.label == clean.label
    assert holey.evidence["n_missing"] == len(holes)
    assert holey.evidence["n_epochs"] == n - len(holes)
    assert holey.evidence["last_epoch"] == n


def test_sparse_validation_keeps_epoch_numbers():
    """Validation recorded every 5th epoch: the best epoch is reported in real epoch numbers."""
    n = 200
    train = _exp(n, 1.0, 0.02, 20, 0.5)
    val = _exp(n, 1.0, 0.25, 20, 1.0) + 0.004 * np.clip(np.arange(n) - 80, 0, None)
    truth = int(np.argmin(val)) + 1
    sparse = np.full(n, np.nan)
    sparse[4::5] = val[4::5]
    d = diagnose(train, sparse, baseline=1.0)
    assert d.label == "overfit"
    assert d.evidence["n_epochs"] == 40 and d.evidence["n_missing"] == 160
    assert abs(d.evidence["divergence_epoch"] - truth) <= 10


def test_short_curves_get_a_best_effort_label():
    falling = diagnose([1.0, 0.8, 0.65, 0.55, 0.47], [1.0, 0.82, 0.68, 0.58, 0.5])
    assert falling.label == "underfit_stopped_early"
    assert falling.evidence["short_curve"] is True and "short curve" in falling.summary
    three = diagnose([0.7, 0.6, 0.5], [0.7, 0.65, 0.6], baseline=0.7)
    assert three.label in LABELS and three.evidence["n_epochs"] == 3


def test_long_noisy_curve():
    rng = np.random.default_rng(5)
    n = 3000
    train = _noise(rng, _exp(n, 1.1, 0.1, 300, 0.5), 0.02)
    val = _noise(rng, _exp(n, 1.1, 0.12, 300, 1.0), 0.05)
    d = diagnose(train, val, baseline=1.0)
    assert d.label == "good_fit", d.summary
    assert d.evidence["short_curve"] is False


def test_constant_curves_do_not_crash():
    d = diagnose(np.full(20, 0.69), np.full(20, 0.69), baseline=0.69)
    assert d.label == "underfit_capacity"
    json.dumps(d.to_dict(), allow_nan=False)


# --- input validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(train_loss=[1, 2, 3, 4], val_loss=[1, 2, 3]), "one value per epoch"),
        (dict(train_loss=[1, 2, 3], val_loss=[1, 2, 3], train_eval_loss=[1, 2]),
         "train_eval_loss"),
        (dict(train_loss=[1, np.nan, 3, 4], val_loss=[1, 2, np.nan, 4]), "at least 3"),
        (dict(train_loss=[1, 2], val_loss=[1, 2]), "at least 3"),
        (dict(train_loss=[[1, 2], [3, 4]], val_loss=[[1, 2], [3, 4]]), "one-dimensional"),
        (dict(train_loss=["a", "b", "c"], val_loss=[1, 2, 3]), "numbers"),
        (dict(train_loss=[1, 2, 3], val_loss=[1, 2, 3], baseline=0.0), "baseline"),
        (dict(train_loss=[1, 2, 3], val_loss=[1, 2, 3], baseline=float("nan")), "baseline"),
        (dict(train_loss=[0.5, 0.6, 0.7], val_loss=[0.5, 0.6, 0.7], baseline=1.0,
              higher_is_better=True), "baseline"),
        (dict(train_loss=[1, 2, 3], val_loss=[1, 2, 3], member_spread=[0.1, 0.1]), "member_spread"),
        (dict(train_loss=[1, 2, 3], val_loss=[1, 2, 3], member_spread=[0.1, -0.1, 0.1]), "negative"),
    ],
    ids=["lengths", "train-eval-length", "too-few-finite", "too-short", "2d", "not-numbers",
         "zero-baseline", "nan-baseline", "perfect-score-baseline", "spread-length", "negative-spread"],
)
def test_bad_input_raises_one_line_value_error(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        diagnose(**kwargs)
    assert isinstance(info.value, CurveError) and isinstance(info.value, DataError)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# --- overfit: the divergence epoch -------------------------------------------------------------


@pytest.mark.parametrize("n, divergence", [(40, 15), (150, 60), (400, 120)])
def test_divergence_epoch_of_synthetic_overfit(n, divergence):
    rng = np.random.default_rng(n)
    t = np.arange(n, dtype=float)
    train = _noise(rng, _exp(n, 0.7, 0.02, n / 6, 0.5), 0.01)
    clean_val = _exp(n, 0.7, 0.2, n / 10, 1.0) + 0.3 * (np.clip(t - divergence, 0, None) / n) ** 1.2
    truth = int(np.argmin(clean_val)) + 1
    d = diagnose(train, _noise(rng, clean_val, 0.01), baseline=0.69)
    assert d.label == "overfit"
    assert abs(d.evidence["divergence_epoch"] - truth) <= max(3, n // 40), (truth, d.evidence)
    assert f"epoch {d.evidence['divergence_epoch']}" in d.summary


# --- validation below training: the dropout explanation ----------------------------------------


def _dropout_run(n: int = 80, seed: int = 6):
    """Training-mode loss inflated by dropout; inference-mode training loss close to validation."""
    rng = np.random.default_rng(seed)
    train = _noise(rng, _exp(n, 0.75, 0.40, 8, 0.5), 0.01)
    val = _noise(rng, _exp(n, 0.68, 0.26, 8, 1.0), 0.02)
    train_eval = _noise(rng, _exp(n, 0.68, 0.25, 8, 1.0), 0.01)
    return train, val, train_eval


def test_dropout_explains_validation_below_train():
    train, val, train_eval = _dropout_run()
    d = diagnose(train, val, baseline=0.69, train_eval_loss=train_eval,
                 stochastic_regularisation=True)
    assert d.label == "validation_below_train"
    assert d.evidence["cause"] == "training_only_noise"
    assert "dropout" in d.summary and "inference-mode" in d.summary
    assert "inference-mode training loss" in d.advice[0]


def test_dropout_is_the_likely_cause_without_train_eval():
    train, val, _ = _dropout_run()
    d = diagnose(train, val, baseline=0.69, stochastic_regularisation=True)
    assert d.label == "validation_below_train"
    assert d.evidence["cause"] == "likely_training_only_noise"
    assert "dropout" in d.summary.lower()
    plain = diagnose(train, val, baseline=0.69)
    assert plain.evidence["cause"] == "unknown" and "dropout" in plain.advice[0].lower()


def test_validation_easier_when_inference_train_loss_is_also_above():
    train, val, _ = _dropout_run()
    d = diagnose(train, val, baseline=0.69, train_eval_loss=train * 0.98)
    assert d.label == "validation_below_train"
    assert d.evidence["cause"] == "validation_easier"
    assert "easier" in d.summary


def test_clean_runs_have_no_runner_up():
    train, val = _exp(100, 0.7, 0.1, 10, 0.5), _exp(100, 0.7, 0.13, 10, 1.0)
    d = diagnose(train, val, baseline=0.69)
    assert d.label == "good_fit" and d.runner_up is None


def test_prediction_counts_cover_every_label(suite):
    """The labeller uses all seven labels on the suite (no label is unreachable)."""
    assert set(Counter(d.label for _, d in suite)) == set(LABELS)


# --- ensembles: the spread across members ------------------------------------------------------


def _spread(case: curves.Case, relative: float) -> np.ndarray:
    """A per-epoch s.d. across members of ``relative`` x the validation level (NaN where the case
    has missing epochs stays harmless)."""
    return relative * np.abs(np.asarray(case.val, dtype=float))


def test_without_members_the_spread_is_none_and_labels_are_unchanged(suite):
    for case, d in suite[::10]:
        assert d.evidence["member_spread"] is None
        # a spread of NaN everywhere (one member only) is no evidence either
        again = diagnose(case.train, case.val, baseline=case.baseline, train_eval_loss=case.train_eval,
                         stochastic_regularisation=case.stochastic, member_spread=[np.nan] * len(case.val))
        assert again.label == d.label and again.evidence["member_spread"] is None


def test_spread_is_reported_relative_to_the_validation_level():
    train, val = _exp(100, 0.7, 0.1, 10, 0.5), _exp(100, 0.7, 0.13, 10, 1.0)
    d = diagnose(train, val, baseline=0.69, member_spread=0.05 * val)
    assert d.evidence["member_spread"] == pytest.approx(0.05, rel=0.02)
    assert d.label == "good_fit"


@pytest.mark.parametrize("label", ["good_fit", "unrepresentative_train"])
def test_members_that_disagree_make_validation_noisy(suite, label):
    """The same mean curves, but the members' validation losses differ by 40 % of their level:
    one fold's validation says little, whatever the mean curve's shape. (Levels well above the
    floor of 15 % of the scale, under which a spread is taken against the floor.)"""
    cases = [(c, d) for c, d in suite if c.label == label and d.label == label
             and d.evidence["val_level"] > 0.25][:5]
    assert cases
    for case, _ in cases:
        d = diagnose(case.train, case.val, baseline=case.baseline, train_eval_loss=case.train_eval,
                     member_spread=_spread(case, 0.4))
        assert d.label == "unrepresentative_validation_noisy", case.id
        assert d.evidence["member_spread"] == pytest.approx(0.4, rel=0.3)
        assert "members" in d.summary and "folds" in d.advice[0]


def test_members_that_agree_rule_out_noisy_validation(suite):
    """A wiggly mean curve whose members agree closely: the wiggle is not validation noise."""
    cases = [(c, d) for c, d in suite if c.label == "unrepresentative_validation_noisy"
             and d.label == c.label][:10]
    assert cases
    for case, _ in cases:
        d = diagnose(case.train, case.val, baseline=case.baseline, train_eval_loss=case.train_eval,
                     member_spread=_spread(case, 0.02))
        assert d.label != "unrepresentative_validation_noisy", case.id


def test_overfit_members_stay_overfit_with_small_or_large_spread(suite):
    cases = [c for c, d in suite if c.label == "overfit" and d.label == "overfit"][:10]
    for case in cases:
        small = diagnose(case.train, case.val, baseline=case.baseline, member_spread=_spread(case, 0.03))
        assert small.label == "overfit", case.id


# --- instability: infinite losses and a training loss that climbs -------------------------------


def _good_then(n: int = 100, seed: int = 0):
    """A clean good fit (both curves settle near 0.2-0.25 of a 1.0 start) to be broken at the end."""
    rng = np.random.default_rng(seed)
    return _noise(rng, _exp(n, 1.1, 0.2, 10, 0.5), 0.01), _noise(rng, _exp(n, 1.1, 0.25, 10, 1.0), 0.015)


def test_infinite_losses_say_the_run_diverged_not_that_epochs_are_missing():
    """Losses infinite from epoch 86 of 100 (a run that blew up) were dropped like NaN epochs and the run was
    called a good fit; they are a divergence, reported with its epoch, and the advice is the learning rate."""
    train, val = _good_then()
    train[85:], val[85:] = np.inf, np.inf
    d = diagnose(train, val)
    ev = d.evidence
    assert ev["n_infinite"] == 15 and ev["first_infinite_epoch"] == 86 and ev["unstable_epoch"] == 86
    assert ev["n_missing"] == 0 and ev["last_epoch"] == 85
    assert d.summary.startswith("Unstable training:") and "infinite" in d.summary and "epoch 86" in d.summary
    assert "learning rate" in d.advice[0] and "epoch 86" in d.advice[0]
    assert not any(a.startswith("Nothing needed") for a in d.advice)
    json.dumps(d.to_dict(), allow_nan=False)


def test_nan_epochs_are_still_missing_not_unstable():
    train, val = _good_then()
    train[40:45] = np.nan
    d = diagnose(train, val)
    assert d.evidence["n_missing"] == 5 and d.evidence["n_infinite"] == 0 and d.evidence["unstable_epoch"] is None
    assert d.label == "good_fit" and not d.summary.startswith("Unstable")


def test_too_few_finite_epochs_before_infinity_says_the_run_diverged():
    with pytest.raises(CurveError, match="at least 3 .* diverged: infinite from epoch 3"):
        diagnose([1.0, 0.9, np.inf, np.inf], [1.0, 0.9, np.inf, np.inf])


@pytest.mark.parametrize("baseline", [None, 1.1], ids=["no-baseline", "baseline"])
def test_curves_that_rise_sharply_at_the_end_are_unstable_not_flat(baseline):
    """Both losses x10 over the last 20 of 100 epochs were "underfit (capacity): both curves are flat at a high
    loss" with advice to add capacity; rising curves are an unstable run, and the learning rate is the advice."""
    train, val = _good_then()
    blowup = np.ones(100)
    blowup[80:] = 10.0 ** (np.arange(1, 21) / 20)
    d = diagnose(train * blowup, val * blowup, baseline=baseline)
    assert d.label != "underfit_capacity" and "flat" not in d.summary
    assert d.summary.startswith("Unstable training: the training loss rose by ")
    assert 70 <= d.evidence["unstable_epoch"] <= 81, d.evidence["unstable_epoch"]
    assert d.evidence["train_rise"] > 1
    assert "learning rate" in d.advice[0] and "capacity" not in " ".join(d.advice).lower()
    # the shape is read from the run before it went unstable: a good fit
    assert d.label == "good_fit" and d.evidence["last_epoch"] == d.evidence["unstable_epoch"]


def test_a_run_that_rises_from_the_start_is_not_called_flat():
    """A learning rate so high that the loss climbs from the first epoch: no earlier run to label, and no rule
    may call the curves flat."""
    t = np.arange(100, dtype=float)
    d = diagnose(0.7 * np.exp(t / 30), 0.75 * np.exp(t / 30), baseline=0.69)
    assert d.evidence["score"] < 0 and "flat" not in d.summary
    assert d.summary.startswith("Unstable training:") and d.evidence["unstable_epoch"] == 1


def test_a_blown_up_loss_is_not_printed_as_a_long_percentage():
    """A loss that grew by 12 orders of magnitude was reported as '529933000000000.0 %' of its scale."""
    train, val = _good_then()
    blowup = np.ones(100)
    blowup[80:] = 10.0 ** (12 * np.arange(1, 21) / 20)
    d = diagnose(train * blowup, val * blowup, baseline=0.69)
    text = d.summary + " ".join(d.advice)
    assert not re.search(r"\d{5,}(\.\d)? %", text), text
    assert re.search(r"\de\+\d+ % of the scale", d.summary), d.summary


def test_a_validation_loss_that_climbs_far_from_epoch_one_is_overfit_not_flat_capacity():
    """A review's run (a linear model, its validation rows a batch apart): training fell to 69 % of the no-skill loss,
    validation rose 43 % of it from epoch 1 at 9.5 s.e. It read "underfit: both curves are flat"; a model short of
    capacity does not push validation that far."""
    train = [0.826, 0.711, 0.646, 0.605, 0.577, 0.558, 0.542, 0.530, 0.520, 0.512, 0.505, 0.499, 0.496, 0.493,
             0.489, 0.488, 0.485, 0.484, 0.482, 0.482, 0.481]
    val = [0.744, 0.775, 0.837, 0.878, 0.939, 0.994, 1.027, 1.010, 0.984, 1.109, 1.076, 1.180, 1.271, 1.096, 1.159,
           1.163, 1.206, 1.202, 1.178, 1.268, 1.125]
    d = diagnose(train, val, baseline=0.696)
    assert d.label == "overfit", (d.label, d.summary)
    assert d.evidence["best_epoch"] == 1
    # near the baseline with validation only drifting a little: still capacity
    flat_val = [0.75 + 0.004 * (i % 3) + 0.001 * i for i in range(21)]
    flat_train = [0.70 + 0.02 * np.exp(-i / 3) for i in range(21)]
    assert diagnose(flat_train, flat_val, baseline=0.72).label == "underfit_capacity"


def test_capacity_curves_still_moving_slowly_at_the_epoch_limit_are_not_called_flat():
    """A 2-unit network on XOR stopped by --epochs 30: both curves near the no-skill loss, still falling by 0.4-0.5 %
    of the scale per 10 % of the run at many standard errors. "Both curves are flat" contradicted the slopes printed
    under it, and nothing said that the epoch limit, kept by every network, had ended the run."""
    t = np.arange(30)
    train = 0.6929 - 0.03 * (1 - np.exp(-t / 4)) - 0.0006 * t
    val = 0.6931 - 0.03 * (1 - np.exp(-t / 4)) - 0.0005 * t
    d = diagnose(train, val, baseline=0.6929, kept_epochs=[30])
    assert d.label == "underfit_capacity", d.summary
    assert "level off (falling slowly at the end: training by" in d.summary and "are flat" not in d.summary
    assert d.advice[0].startswith("Train longer first (--epochs): every network kept its last epoch's weights (30)")
    flat = diagnose(np.full(30, 0.66) + 0.001 * np.sin(t), np.full(30, 0.665) + 0.001 * np.cos(t), baseline=0.6929,
                    kept_epochs=[30])
    assert "both curves are flat" in flat.summary and not flat.advice[0].startswith("Train longer first")


def test_a_validation_rise_of_a_sixth_of_the_scale_while_training_fits_is_overfit_and_a_lucky_start_is_not():
    """Below the first rule's 20 % (a review's run: validation up 16 % of the scale at 17 s.e., from better than no skill
    to worse, while training fell to 70 % of it) still read "underfit: both curves are flat". A network that fitted
    nothing (training within 8 % of no skill) whose lucky first epoch falls back is not overfitting."""
    e = np.arange(1, 41)
    rng = np.random.default_rng(0)
    train = 0.693 * (0.69 + 0.31 * np.exp(-e / 8)) + rng.normal(0, 0.004, 40)
    val = 0.62 + 0.12 * (1 - np.exp(-(e - 1) / 10)) + rng.normal(0, 0.01, 40)
    assert diagnose(train, val, baseline=0.693).label == "overfit"
    flat_train = 0.693 * (0.95 + 0.05 * np.exp(-e / 8)) + rng.normal(0, 0.004, 40)
    assert diagnose(flat_train, val, baseline=0.693).label != "overfit"
