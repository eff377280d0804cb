"""What `diagnose` says: every sentence and evidence meaning follows the direction of the curves (a loss
falls as it improves, balanced accuracy rises), the best epoch is the one a reader would point at, a
verdict that no rule fully supports says so in words, and the file plot is titled in words with its
legend clear of the curves and the baseline.

The direction tests label the same run twice: as a loss, and as the score ``1 - loss / c`` with
``higher_is_better`` (the labeller turns a score back into a loss internally, so the label and the
unsigned evidence must not change, only the words and the signs)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mlpcli.diagnosis import LABELS, RULES, diagnose, evidence_meanings, label_title
from cli_helpers import run

try:  # tests/ is on sys.path under pytest's default (prepend) import mode
    import curves
except ImportError:  # pragma: no cover
    from tests import curves


def _both(case: curves.Case, name: str = "balanced accuracy"):
    """The case as a loss and as a score on [0, 1] (score = 1 - loss / (1.2 B), baseline likewise)."""
    c = 1.2 * case.true_baseline
    loss = diagnose(case.train / c, case.val / c, baseline=1 / 1.2)
    score = diagnose(1 - case.train / c, 1 - case.val / c, baseline=1 - 1 / 1.2, higher_is_better=True, name=name)
    return loss, score


def test_unrepresentative_train_says_below_for_a_score_and_above_for_a_loss():
    case = curves.make_case("unrepresentative_train", 3, seed=2)
    loss, score = _both(case)
    assert loss.label == score.label == "unrepresentative_train"
    assert "of the scale above training" in loss.summary and "below training" not in loss.summary
    assert "of the scale below training" in score.summary and "above training" not in score.summary
    assert "balanced accuracy" in score.summary or "validation settles" in score.summary
    assert any("below training" in a for a in score.advice) and any("above training" in a for a in loss.advice)
    # signed evidence in the curve's own units: validation below training is a negative gap for a score
    assert loss.evidence["gap_end"] > 0 > score.evidence["gap_end"]


def test_overfit_says_lowest_and_rose_for_a_loss_highest_and_fell_for_a_score():
    case = curves.make_case("overfit", 1, seed=0)
    loss, score = _both(case)
    assert loss.label == score.label == "overfit"
    assert "lowest around epoch" in loss.summary and " rose by " in loss.summary
    assert "highest around epoch" in score.summary and " fell by " in score.summary
    assert "lowest" not in score.summary and "lowest" not in " ".join(score.advice)
    assert "smoothed validation balanced accuracy was highest" in score.summary
    assert loss.evidence["best_epoch"] == score.evidence["best_epoch"]
    assert loss.evidence["divergence_epoch"] == score.evidence["divergence_epoch"]


def test_stopped_early_says_falling_for_a_loss_and_rising_for_a_score():
    case = curves.make_case("underfit_stopped_early", 2, seed=0)
    loss, score = _both(case)
    assert loss.label == score.label == "underfit_stopped_early"
    assert "still falling" in loss.summary and "still rising" in score.summary
    assert loss.evidence["val_slope"] < 0 < score.evidence["val_slope"]  # both improving, in their own units


def test_evidence_meanings_follow_the_direction():
    lower, higher = evidence_meanings(False), evidence_meanings(True)
    assert "lowest" in lower["best_val"] and "highest" in higher["best_val"]
    assert "lowest" in lower["best_epoch"] and "highest" in higher["best_epoch"]
    assert "< 0 falling, improving" in lower["val_slope"] and "> 0 rising, improving" in higher["val_slope"]
    assert "validation above training" in lower["gap_end"] and "validation below training" in higher["gap_end"]
    assert "rose" in lower["val_rise"] and "fell" in higher["val_rise"]
    for meanings in (lower, higher):  # the score's scale is explained, negative included
        assert "< 0" in meanings["score"] and "no shape matches clearly" in meanings["score"]
    # no loss words left in a score's meanings
    assert not any(re.search(r"\blowest\b|\(< 0 falling", m) for m in higher.values())


def test_best_epoch_of_a_flat_then_noisy_curve_is_where_it_flattens():
    """The issue's case: balanced accuracy flat from epoch 3 to the end, with noise; the exact maximum falls
    wherever the noise puts it, a reader calls epoch 3 best."""
    rng = np.random.default_rng(3)
    n = 40
    train = np.r_[0.4, 0.8, np.full(n - 2, 1.0)] - np.abs(rng.normal(0, 0.002, n))
    val = np.r_[0.45, 0.7, np.full(n - 2, 0.82)] + rng.normal(0, 0.02, n)
    d = diagnose(train, val, baseline=0.25, higher_is_better=True, name="balanced accuracy")
    assert d.evidence["best_epoch"] <= 5, d.evidence
    assert int(np.argmax(val)) + 1 > 5  # the raw maximum is somewhere in the noise
    loss = diagnose(1 - train, 1 - val, baseline=0.75)  # the same as an error rate
    assert loss.evidence["best_epoch"] == d.evidence["best_epoch"]
    assert 0 < d.evidence["best_tolerance"] < 0.1


def test_best_epoch_of_a_clean_minimum_is_that_minimum():
    n = 100
    t = np.arange(n, dtype=float)
    train = 0.7 * np.exp(-t / 10) + 0.02
    val = 0.5 * np.exp(-t / 10) + 0.2 + 0.004 * np.clip(t - 40, 0, None)
    d = diagnose(train, val, baseline=0.69)
    assert d.label == "overfit"
    assert abs(d.evidence["divergence_epoch"] - (int(np.argmin(val)) + 1)) <= 2  # where the rise starts
    # the documented rule: the first epoch within 1 % of the scale of the minimum (noise-free curve)
    within = np.flatnonzero(val <= val.min() + 0.01 * 0.69) + 1
    assert abs(d.evidence["best_epoch"] - within[0]) <= 4  # the smoother (11 epochs wide here) blurs it a little
    assert d.evidence["best_epoch"] <= d.evidence["divergence_epoch"]


def test_a_negative_score_says_no_shape_matches_why_and_what_fails():
    """Training as erratic as validation (15 % wiggles, the same shape): with this draw validation's smoothed
    minimum comes early and it ends a little higher, but not clearly beyond its noise; no rule holds, and the
    summary says so instead of naming a shape."""
    rng = np.random.default_rng(0)
    n = 60
    t = np.arange(n, dtype=float)
    train = (0.6 * np.exp(-t / 3) + 0.30) * np.exp(rng.normal(0, 0.15, n))
    val = (0.6 * np.exp(-t / 3) + 0.31) * np.exp(rng.normal(0, 0.15, n))
    d = diagnose(train, val, baseline=0.9)
    assert d.evidence["score"] < 0, (d.label, d.evidence["score"], d.summary)
    assert d.summary.startswith("No shape matches clearly; closest: ")
    assert label_title(d.label).lower() in d.summary and "; but " in d.summary


@pytest.mark.parametrize("label", LABELS)
def test_every_rule_condition_has_words_both_ways(label):
    """Every condition of every rule can be explained whether it holds or fails (no KeyError, no
    snake_case leaking into a sentence)."""
    from mlpcli.diagnosis import words as D

    d = diagnose(*_pair(label), baseline=0.69)
    lv = {**d.evidence}
    for higher in (False, True):
        w = D.Words(higher, "balanced accuracy" if higher else "loss")
        for cond in RULES[label]:
            for holds in (True, False):
                text = D.fact_words(cond.lstrip("-"), holds, {**lv, "gap_end": abs(lv["gap_end"])}, w)
                assert text and "_" not in text, (cond, holds, text)


def _pair(label: str):
    case = curves.make_case(label, 0, seed=1)
    c = 1.2 * case.true_baseline
    return case.train / c * 0.69 * 1.2, case.val / c * 0.69 * 1.2


def test_label_titles_are_words():
    for label in LABELS:
        assert "_" not in label_title(label) and label_title(label)[0].isupper()
    assert label_title("validation_below_train", higher_is_better=True) == "Validation better than training"


def test_file_plot_has_its_legend_below_the_axes(monkeypatch, tmp_path):
    """The legend sits under the plot area, so it can cover neither the curves nor the baseline."""
    from mlpcli import plotting

    figures = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, path: figures.append(fig))
    t = np.arange(60, dtype=float)
    train, val = 0.7 * np.exp(-t / 8) + 0.05, 0.5 * np.exp(-t / 8) + 0.3
    plotting.plot_curves(str(tmp_path / "p.png"), train, val, baseline=0.69, best_epoch=30, title="Learning curves: Good fit")
    fig = figures[0]
    ax = fig.axes[0]
    assert ax.get_legend() is None and len(fig.legends) == 1
    fig.canvas.draw()
    legend_box = fig.legends[0].get_window_extent()
    axes_box = ax.get_window_extent()
    assert legend_box.y1 <= axes_box.y0  # entirely below the axes
    assert any(t.get_text().startswith("baseline") for t in fig.legends[0].get_texts())


def test_an_unstable_run_says_rose_for_a_loss_and_fell_for_a_score():
    """The instability sentence follows the curves' direction like every other one."""
    t = np.arange(100, dtype=float)
    blowup = np.where(t >= 80, 3.0 ** ((t - 79) / 20), 1.0)
    train, val = (0.7 * np.exp(-t / 10) + 0.1) * blowup, (0.7 * np.exp(-t / 10) + 0.13) * blowup
    c = 1.2 * 0.69
    loss = diagnose(train / c, val / c, baseline=0.69 / c)
    score = diagnose(1 - train / c, 1 - val / c, baseline=1 - 0.69 / c, higher_is_better=True, name="balanced accuracy")
    assert loss.evidence["unstable_epoch"] == score.evidence["unstable_epoch"] is not None
    assert loss.summary.startswith("Unstable training: the training loss rose by ")
    assert score.summary.startswith("Unstable training: the training balanced accuracy fell by ")
    meanings = evidence_meanings(True)
    assert {"unstable_epoch", "train_rise", "n_infinite", "first_infinite_epoch"} <= set(meanings)
    assert "fell" in meanings["train_rise"] and "rose" in evidence_meanings(False)["train_rise"]


def test_slopes_in_standard_errors_are_left_out_where_no_noise_could_be_measured():
    """Three epochs have no late wiggle to measure noise on: the z of a slope against the 1e-9 floor read
    -2.5e+08 standard errors. It is n/a there, and given where the curve is long enough to measure its noise."""
    short = diagnose([0.95, 0.90, 0.887], [0.83, 0.82, 0.81], baseline=1.36)
    assert short.evidence["train_slope_z"] is None and short.evidence["val_slope_z"] is None
    assert short.evidence["gap_slope_z"] is None and short.label  # still labelled (best effort)
    rng = np.random.default_rng(0)
    epochs = np.arange(1, 41)
    train = 0.3 + 0.9 * np.exp(-epochs / 6) + rng.normal(0, 0.01, 40)
    val = 0.5 + 0.7 * np.exp(-epochs / 6) + rng.normal(0, 0.02, 40)
    long = diagnose(train, val, baseline=1.36)
    assert all(abs(long.evidence[k]) < 1e3 for k in ("train_slope_z", "val_slope_z", "gap_slope_z"))


# ── diagnose: a linear model cannot be made smaller ─────────────────────────────────────────────────────


def _overfit_curves(n=40):
    epochs = np.arange(1, n + 1)
    train = list(0.7 * np.exp(-epochs / 6) + 0.01)
    val = list(0.45 + 0.004 * (epochs - 8) ** 2 / 8)
    return train, val


@pytest.mark.parametrize("full_batch", [False, True])
def test_a_linear_model_is_not_told_to_shrink(full_batch):
    from mlpcli.diagnosis import diagnose

    train, val = _overfit_curves()
    network = diagnose(train, val, baseline=0.69, full_batch=full_batch)
    linear = diagnose(train, val, baseline=0.69, full_batch=full_batch, linear=True)
    assert network.label == linear.label == "overfit"
    assert any("--hidden" in a for a in network.advice)
    assert not any("Reduce model capacity" in a or "smaller network" in a for a in linear.advice)
    if full_batch:
        assert "fewer features (--top-var)" in linear.advice[0]


def test_diagnose_reads_a_linear_model_as_linear(tmp_path):
    from mlpcli.history import read_curves

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 60))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(60)])
    frame.insert(0, "label", np.where(X[:, 0] + rng.normal(size=120) > 0, "a", "b"))
    frame.to_csv(tmp_path / "t.csv", index=False)
    for hidden, linear in (("none", True), ("4", False)):
        res = run(["train", str(tmp_path / "t.csv"), "--hidden", hidden, "--folds", "1", "--no-group", "--epochs", "5",
                   "-q", "-o", str(tmp_path / f"{hidden}.mlp")])
        assert res.exit_code == 0, res.output
        assert read_curves(tmp_path / f"{hidden}.mlp").linear is linear


def test_a_linear_models_diagnosis_has_no_dropout_advice():
    from mlpcli.diagnosis import diagnose

    train, val = _overfit_curves()
    advice = diagnose(train, val, baseline=0.69, stochastic_regularisation=True, linear=True).advice
    assert not any("--dropout" in a for a in advice)
    assert any(a.startswith("Add regularisation: a stronger L2 penalty") for a in advice)
