"""The sample-size learning curve: nested stratified group subsets, a fixed validation side, results
that do not depend on --n-jobs, the two answers, and the command."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli import data
from mlpcli.cli import cli
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError
from mlpcli.model_selection import splits
from mlpcli.model_selection.learning_curve import (missing_classes, learning_curve, nested_group_subsets,
    parse_fractions, SizePoint)
from mlpcli.diagnosis.sample_size import BIAS_LEVEL, HELPS_PER_DOUBLING, VARIANCE_GAP, bias_variance, more_data
from cli_helpers import run, table_cells
from tables import make_table, write_table

FAST = TrainOptions(hidden=[8], epochs=12, patience=50, seed=3)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_table(tmp_path_factory.mktemp("lc"), n_patients=40, per_patient=2, n_features=8)


@pytest.fixture(scope="module")
def curve(table):
    return learning_curve(table, replace(FAST), n_jobs=1)


# --- subsets -----------------------------------------------------------------------------------------


def test_subsets_are_nested_whole_groups_and_stratified():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"P{i:02d}" for i in range(30)], 3)  # (90,)
    classes = np.repeat(np.arange(30) % 3, 3)
    order = rng.permutation(90)  # row order must not matter
    groups, classes = groups[order], classes[order]
    fractions = (0.1, 0.25, 0.5, 0.75, 1.0)
    subsets = nested_group_subsets(groups, fractions, seed=7, strata=classes)
    assert len(subsets) == 5 and len(subsets[-1]) == 90
    for small, large in zip(subsets, subsets[1:]):
        assert set(small) < set(large)
    for f, rows in zip(fractions, subsets):
        chosen = set(groups[rows])
        assert len(rows) == 3 * len(chosen)  # whole groups: every row of a chosen group
        assert set(classes[rows]) == {0, 1, 2}  # every class at every size
        assert len(chosen) == sum(int(np.ceil(f * 10 - 1e-9)) for _ in range(3))
    again = nested_group_subsets(groups, fractions, seed=7, strata=classes)
    assert all(np.array_equal(a, b) for a, b in zip(subsets, again))
    other = nested_group_subsets(groups, fractions, seed=8, strata=classes)
    assert not np.array_equal(subsets[1], other[1])


def test_parse_fractions():
    assert parse_fractions("1, 0.5,10%") == (0.1, 0.5, 1.0)
    assert parse_fractions([0.25, 0.25, 1]) == (0.25, 1.0)
    for bad in ("0", "1.5", "half", ""):
        with pytest.raises(ConfigError, match="--fractions"):
            parse_fractions(bad)


def test_missing_classes_reports_absent_classes_and_constant_labels():
    X = np.zeros((6, 1))
    ds = data.Dataset(X=X, y=np.array([0, 0, 1, 1, 2, 2]), feature_names=["f"], task="multiclass",
                      classes=["a", "b", "c"])
    assert missing_classes(ds, np.array([0, 2]), np.arange(6)) == ["c"]
    assert missing_classes(ds, np.array([0, 2, 4]), np.arange(6)) == []
    ml = data.Dataset(X=X, y=np.array([[1, 0], [0, 0], [1, 1], [0, 0], [1, 0], [0, 1]], float),
                      feature_names=["f"], task="multilabel", classes=["L1", "L2"])
    assert missing_classes(ml, np.array([0, 1, 3]), np.arange(6)) == ["L2"]
    # a label that never changes in the training rows at all does not make a size "lack" it (no size has it)
    never = data.Dataset(X=X, y=np.array([[1, 0], [0, 0], [1, 0], [0, 0], [1, 0], [0, 0]], float),
                         feature_names=["f"], task="multilabel", classes=["L1", "L2"])
    assert missing_classes(never, np.array([0, 1, 3]), np.arange(6)) == []


# --- the curve on a small table ------------------------------------------------------------------------


def test_validation_groups_are_fixed_and_never_trained_on(table, curve):
    frame = data.read_table(table)
    roles, _ = data.resolve_roles(frame.columns)
    ds = data.Dataset.from_frame(frame, roles)
    _, val_rows, _ = splits.holdout(ds, FAST.val_size, FAST.seed)
    assert np.array_equal(curve.val_rows, val_rows)
    val_groups = set(ds.groups[val_rows])
    for rows in curve.train_rows:
        assert not val_groups & set(ds.groups[rows])
    for small, large in zip(curve.train_rows, curve.train_rows[1:]):
        assert set(small) < set(large)
    assert [p.n_train for p in curve.points] == [len(r) for r in curve.train_rows]
    assert curve.points[-1].n_train + curve.n_val == ds.n_samples
    assert all(p.n_groups * 2 == p.n_train for p in curve.points)


def test_points_and_answers(curve):
    assert curve.metric == "balanced_accuracy" and curve.higher_is_better
    assert curve.chance_score == pytest.approx(1 / 3)
    assert len(curve.points) == 5 and curve.skipped == []
    for p in curve.points:
        assert 0 <= p.train_score <= 1 and 0 <= p.val_score <= 1
        assert 1 <= p.best_epoch <= p.epochs_run <= FAST.epochs
        assert p.train_loss > 0 and p.val_loss > 0
    assert curve.more_data["verdict"] in ("helps", "plateaued")
    assert curve.bias_variance["verdict"] in ("bias", "variance", "both", "neither", "no_signal")
    doc = json.loads(json.dumps(curve.to_dict()))
    assert len(doc["sizes"]) == 5 and {"more_data", "bias_variance", "chance_score"} <= set(doc)


def test_n_jobs_1_and_2_give_identical_results(table, curve):
    two = learning_curve(table, replace(FAST), n_jobs=2)

    def strip(points):
        return [{k: v for k, v in asdict(p).items() if k != "seconds"} for p in points]

    assert strip(two.points) == strip(curve.points)
    assert two.more_data == curve.more_data and two.bias_variance == curve.bias_variance


# --- the two answers, on made-up points ----------------------------------------------------------------


def _points(val_scores, train_scores, sizes=(50, 100, 200)):
    return [SizePoint(fraction=0, n_train=n, n_groups=None, train_score=t, val_score=v, train_loss=1, val_loss=1,
                      baseline_val_loss=1, best_epoch=1, epochs_run=1, seconds=0, curve_label=None)
            for n, t, v in zip(sizes, train_scores, val_scores)]


def test_more_data_helps_or_plateaus_per_doubling():
    chance, scale = 0.5, 0.5  # binary balanced accuracy
    step = 2 * HELPS_PER_DOUBLING * scale  # twice the threshold per doubling
    helps = more_data(_points([0.7, 0.7 + step, 0.7 + 2 * step], [1, 1, 1]), True, chance, scale, "balanced_accuracy")
    assert helps["verdict"] == "helps" and helps["score_change_per_doubling"] == pytest.approx(step)
    flat = more_data(_points([0.8, 0.801, 0.80], [1, 1, 1]), True, chance, scale, "balanced_accuracy")
    assert flat["verdict"] == "plateaued"
    # RMSE: lower is better, so a falling validation RMSE is the improvement
    rmse = more_data(_points([2.0, 1.6, 1.2], [0.5] * 3), False, 3.0, 3.0, "rmse")
    assert rmse["verdict"] == "helps" and rmse["score_change_per_doubling"] < 0
    single = more_data(_points([0.8], [1]), True, chance, scale, "balanced_accuracy")
    assert single["verdict"] is None
    # worse with more data: which way it moved, not "does not improve (changes by 0.093)"
    worse = more_data(_points([0.8, 0.75, 0.7], [1, 1, 1]), True, chance, scale, "balanced_accuracy")
    assert worse["verdict"] == "plateaued" and "gets worse (falls by 0.05)" in worse["text"]
    rising = more_data(_points([1.0, 1.2, 1.4], [0.5] * 3), False, 3.0, 3.0, "rmse")
    assert "gets worse (rises by 0.2)" in rising["text"]


@pytest.mark.parametrize("train,val,verdict", [
    (0.99, 0.97, "neither"),
    (1.00, 0.80, "variance"),
    (0.70, 0.68, "bias"),
    (0.70, 0.55, "both"),
], ids=["neither", "variance", "bias", "both"])
def test_bias_or_variance(train, val, verdict):
    chance, scale = 0.5, 0.5
    out = bias_variance(_points([val], [train], sizes=(100,)), True, chance, scale, "balanced_accuracy")
    assert out["verdict"] == verdict
    assert (out["train_error"] >= BIAS_LEVEL) == (verdict in ("bias", "both"))
    assert (out["gap"] >= VARIANCE_GAP) == (verdict in ("variance", "both"))


# --- the command ----------------------------------------------------------------------------------------


def test_learning_curve_command_json_and_svg(table, tmp_path):
    out = tmp_path / "lc.svg"
    res = CliRunner().invoke(cli, ["diagnose", "--learning-curve", table, "--hidden", "8", "--epochs", "8",
                                   "--fractions", "0.5,1", "--plot", str(out), "--json", "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [s["fraction"] for s in doc["sizes"]] == [0.5, 1.0]
    assert doc["more_data"]["verdict"] in ("helps", "plateaued", "unclear") and doc["plot"] == str(out)
    assert ET.parse(out).getroot().tag.endswith("svg")


def test_learning_curve_command_table_and_answers(table):
    res = CliRunner().invoke(cli, ["diagnose", "--learning-curve", table, "--hidden", "8", "--epochs", "8",
                                   "--fractions", "0.5,1"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for needle in ("Sample-size learning curve", "val bal. acc.", "Does more data still help?", "Bias or variance?"):
        assert needle in res.stdout, needle
    assert "50% of the training groups" in res.stderr


def test_learning_curve_bad_fractions_is_a_clean_error(table):
    res = CliRunner().invoke(cli, ["diagnose", "--learning-curve", table, "--fractions", "0,1"])
    assert res.exit_code == 2 and "--fractions" in res.output and "Traceback" not in res.output


# --- the two answers agree with each other ---------------------------------------------------------------


def test_bias_answer_does_not_deny_what_the_more_data_answer_says():
    """A regression with no hidden layer said "More data still helps" and "Mostly bias: ... more data will not
    fix it" side by side; the bias answer now takes the more-data verdict into account."""
    points = _points([2.0, 1.6, 1.3], [1.8, 1.7, 1.6])  # RMSE, no skill 3.0: training R² 0.72 (poor), validation improving
    more = more_data(points, False, 3.0, 3.0, "rmse")
    assert more["verdict"] == "helps"
    bias = bias_variance(points, False, 3.0, 3.0, "rmse", more["verdict"])
    assert bias["verdict"] == "bias"
    assert "will not fix" not in bias["text"] and "more data still helps" in bias["text"]
    plateau = bias_variance(points, False, 3.0, 3.0, "rmse", "plateaued")
    assert "more data will not fix it" in plateau["text"]


def test_variance_answer_does_not_recommend_data_after_a_plateau():
    points = _points([0.8], [1.0], sizes=(100,))
    plateau = bias_variance(points, True, 0.5, 0.5, "balanced_accuracy", "plateaued")
    assert plateau["verdict"] == "variance" and not plateau["text"].split("; ", 1)[1].startswith("more data")
    assert "helped little" in plateau["text"]
    helps = bias_variance(points, True, 0.5, 0.5, "balanced_accuracy", "helps")
    assert "more data (it still helps" in helps["text"]


@pytest.mark.parametrize("train, val", [(0.775, 1.0), (0.9, 1.0)], ids=["bias", "neither"])
def test_validation_far_above_training_is_not_called_close(train, val):
    """On a 12-row table: "both curves are poor and close (training 0.775, validation 1, ...)"."""
    out = bias_variance(_points([val], [train], sizes=(100,)), True, 1 / 3, 2 / 3, "balanced_accuracy")
    assert "close" not in out["text"] and "validation scores better than training" in out["text"]
    near = bias_variance(_points([train - 0.02], [train], sizes=(100,)), True, 1 / 3, 2 / 3, "balanced_accuracy")
    assert "close" in near["text"]


# --- a rare class that shares its patients with common classes ------------------------------------------


def test_subsets_keep_a_rare_class_that_shares_its_groups():
    """Each group was placed by its most common class, so the patients holding a rare class's few samples were
    drawn like any other and the rare class went missing from the smaller sizes."""
    groups = np.repeat(np.arange(50), 2)  # (100,)
    classes = np.repeat(np.arange(50) % 2, 2)
    classes[[1, 21, 41]] = 2  # three patients' second sample: the rare class, beside a common one
    for seed in range(20):
        for rows in nested_group_subsets(groups, (0.1, 0.25, 0.5, 1.0), seed=seed, strata=classes):
            assert set(classes[rows]) == {0, 1, 2}, seed


def test_subsets_keep_a_class_whose_groups_all_hold_a_rarer_one():
    """Class 2 lives only in groups that also hold the rarer class 3: it still reaches every size."""
    groups = np.array([0, 0, 1, 1, 2, 2] + [g for g in range(3, 23) for _ in (0, 1)])
    classes = np.array([3, 2, 3, 0, 3, 1] + [g % 2 for g in range(3, 23) for _ in (0, 1)])
    for seed in range(20):
        for rows in nested_group_subsets(groups, (0.1, 0.5, 1.0), seed=seed, strata=classes):
            assert set(classes[rows]) == {0, 1, 2, 3}, seed


def test_learning_curve_on_a_rare_class_sharing_patients_skips_no_size(tmp_path):
    df = make_table(n_patients=50, per_patient=2, n_features=8, n_classes=2)
    df.loc[[1, 21, 41], "label"] = "rare"
    path = tmp_path / "rare.csv"
    df.to_csv(path, index=False)
    result = learning_curve(str(path), replace(FAST, epochs=2), (0.1, 0.25, 0.5, 1.0))
    assert result.skipped == [] and len(result.points) == 4


def test_a_flat_curve_does_not_report_floating_point_noise():
    """Equal validation scores fit a slope of ~1e-16, printed as "changes by 1.54e-16 per doubling"."""
    flat = more_data(_points([0.8, 0.8, 0.8], [1, 1, 1]), True, 0.5, 0.5, "balanced_accuracy")
    assert flat["verdict"] == "plateaued" and "does not change per doubling" in flat["text"]
    assert "e-" not in flat["text"]


def test_a_size_that_rounds_to_a_smaller_ones_groups_says_so(tmp_path):
    """With 10 patients, 8 train: 90 % and 100 % of them are both all 8 (whole groups). The skipped size says it
    rounds to the same 8 of 8 groups as 90 %, not only "100 % of the training groups skipped"."""
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection.learning_curve import learning_curve

    table = write_table(tmp_path, n_patients=10, per_patient=6)
    result = learning_curve(table, TrainOptions(epochs=3, hidden=[4]), fractions=(0.95, 1.0))
    assert len(result.points) == 1 and len(result.skipped) == 1
    text = result.skipped[0]
    assert text.startswith("100% of the training groups skipped") and "same 8 of 8 groups" in text
    assert text.endswith("as 95%"), text


def test_learning_curve_with_hidden_auto_curves_the_noisy_layer_on_wide_tables(tmp_path):
    """With more features than training rows, train prefers (and on such tables ships) the hidden layer with
    input noise; the learning curve trains that network, and says so."""
    from tables import write_table

    wide = write_table(tmp_path, "wide.csv", n_patients=20, n_features=150)
    narrow = write_table(tmp_path, "narrow.csv", n_patients=20, n_features=6)
    for table, noisy in ((wide, True), (narrow, False)):
        res = run(["diagnose", "--learning-curve", table, "--fractions", "0.5,1", "--epochs", "3", "--json"])
        assert res.exit_code == 0, res.output
        assert ("and input noise (--augment-noise auto" in res.output) is noisy, res.output


def test_learning_curve_names_fractions_below_one_percent(tmp_path):
    """--fractions 0.125,1 showed 12.5 % as "12%" (whole percents: 0.001 was "0%"), and one size as "1 sizes"."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    label = np.where(X[:, 0] + X[:, 1] > 0, "A", "B")
    table = tmp_path / "t.csv"
    table.write_text("label," + ",".join(f"g{j}" for j in range(4)) + "\n"
                     + "".join(f"{c}," + ",".join(f"{v:.4f}" for v in row) + "\n" for c, row in zip(label, X)))
    res = run(["diagnose", "--learning-curve", str(table), "--no-group", "--epochs", "3",
               "--fractions", "0.125,1"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "training at 2 sizes (12.5%, 100%)" in res.output
    assert "12.5% of the training groups" in res.output
    assert any(table_cells(line)[0] == "12.5%" for line in res.output.splitlines() if "│" in line), res.output
    one = run(["diagnose", "--learning-curve", str(table), "--no-group", "--epochs", "3", "--fractions", "1"])
    assert one.exit_code == 0 and "training at 1 size (100%)" in one.output


def test_the_learning_curve_counts_missing_values_in_the_whole_table_before_any_fit(tmp_path):
    """It named 1 missing value (those of the smallest size's training rows) where the table holds 20, after the
    split and the first fits had started; now the count of `train` and `cv`, first."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"g{j}" for j in range(6)])
    frame.loc[rng.choice(n, 20, replace=False), "g3"] = np.nan
    frame.insert(0, "label", np.where(frame["g0"] > 0, "a", "b"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(n)])
    path = tmp_path / "missing.csv"
    frame.to_csv(path, index=False)
    messages = []
    for args in (["train", str(path), "--folds", "1", "-o", str(tmp_path / "m.mlp")], ["cv", str(path)],
                 ["diagnose", "--learning-curve", str(path)]):
        res = CliRunner().invoke(cli, [*args, "-q"])
        assert res.exit_code == 1, res.output
        messages.append(res.output.strip().splitlines()[-1])
    assert all("'g3' (20)" in m for m in messages), messages


def _random_labels(path, n: int, d: int, seed: int):
    """A table of n rows of d Gaussian features and labels a/b drawn at random (no signal), written to path;
    (the frame, its features)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(d)])
    frame.insert(0, "label", rng.choice(["a", "b"], size=n))
    frame.to_csv(path, index=False)
    return frame, X


def test_learning_curve_on_labels_without_signal_says_so_not_a_more_flexible_model(tmp_path):
    """Validation at chance at every size was answered "Both bias and variance ... a more flexible model"."""
    frame, X = _random_labels(tmp_path / "noise.csv", 240, 20, seed=7)
    frame["label"] = np.where(X[:, 0] > 0, "a", "b")
    frame.to_csv(tmp_path / "signal.csv", index=False)
    import json

    verdicts = {}
    for name in ("noise", "signal"):
        res = run(["diagnose", "--learning-curve", str(tmp_path / f"{name}.csv"), "--no-group", "--fractions",
                   "0.5,1", "--hidden", "64", "--epochs", "60", "--n-jobs", "1", "--json"])
        assert res.exit_code == 0, res.output
        verdicts[name] = json.loads(res.output[res.output.index("{"):])["bias_variance"]
    # 48 validation samples: chance reaches 0.64 at two standard errors, so the verdict is said to be tentative
    assert verdicts["noise"]["verdict"] != "no_signal"
    assert "within two standard errors of chance" in verdicts["noise"]["caveat"]
    assert "mlpcli cv" in verdicts["noise"]["caveat"]
    assert verdicts["signal"]["verdict"] != "no_signal" and "standard errors" not in (verdicts["signal"]["caveat"] or "")


def test_learning_curve_on_many_validation_samples_without_signal_says_no_signal(tmp_path):
    """Validation at chance on 300 validation samples: "no learnable signal", not "a more flexible model"."""
    import json

    _random_labels(tmp_path / "noise.csv", 1000, 30, seed=12)
    res = run(["diagnose", "--learning-curve", str(tmp_path / "noise.csv"), "--no-group", "--fractions", "0.5,1",
               "--hidden", "128", "--epochs", "60", "--val-size", "0.3", "--n-jobs", "1", "--json"])
    assert res.exit_code == 0, res.output
    bv = json.loads(res.output[res.output.index("{"):])["bias_variance"]
    assert bv["verdict"] == "no_signal" and "No learnable signal" in bv["text"], bv


def test_a_rare_label_held_at_half_is_named_in_the_bias_answer(tmp_path):
    """A label with 6 validation positives is called at P >= 0.5 at every size (the decision rule needs 10), so its
    balanced accuracy near 0.5 read as "mostly bias: the model is too simple". The answer now names it."""
    rng = np.random.default_rng(3)
    n = 1200
    X = rng.normal(size=(n, 20))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(20)])
    frame["labA"] = (X[:, 0] > 0).astype(int)
    frame["labB"] = (X[:, 1] + X[:, 2] > 1.5).astype(int)
    frame["labC"] = (X[:, 3] + 0.3 * rng.normal(size=n) > 2.2).astype(int)
    frame.insert(0, "patient_id", [f"P{i // 4}" for i in range(n)])
    frame.to_csv(tmp_path / "ml.csv", index=False)
    res = run(["diagnose", "--learning-curve", str(tmp_path / "ml.csv"), "--target", "labA,labB,labC", "--fractions",
               "0.5,1", "--epochs", "20", "--n-jobs", "1", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[res.output.index("{"):])
    answer, positives = doc["bias_variance"], doc["split"]["class_counts_val"]["labC"]
    assert positives < 10 and answer["verdict"] == "bias", (positives, answer)
    assert f"'labC' ({positives}) has fewer than 10 validation positives" in answer["caveat"], answer


def test_one_size_standing_out_does_not_turn_no_signal_into_a_call_for_capacity():
    """On 1,000 random labels the 10 % size read 0.610 on the 200 validation rows its early stopping chose by, every
    other size stayed at chance, and the answer was "both bias and variance ... a more flexible model"."""
    train = [0.95, 0.9, 0.85, 0.8]
    one = bias_variance(_points([0.61, 0.51, 0.50, 0.51], train, sizes=(100, 200, 400, 800)), True, 0.5, 0.5,
                         "balanced_accuracy", val_units=2000)
    assert one["verdict"] == "no_signal" and "every size but one" in one["text"], one
    two = bias_variance(_points([0.61, 0.62, 0.50, 0.51], train, sizes=(100, 200, 400, 800)), True, 0.5, 0.5,
                         "balanced_accuracy", val_units=2000)
    assert two["verdict"] != "no_signal"
    last = bias_variance(_points([0.51, 0.50, 0.51, 0.61], train, sizes=(100, 200, 400, 800)), True, 0.5, 0.5,
                          "balanced_accuracy", val_units=2000)
    assert last["verdict"] != "no_signal"  # the largest size must be within the band


def test_two_or_three_sizes_weigh_their_slope_against_each_scores_own_noise():
    """`--fractions 0.5,1` on 400 samples: one more of the 80 validation samples right (0.938 -> 0.950) read "More
    data still helps" — with fewer than 4 sizes there was no scatter to measure, and the slope passed as noiseless."""
    chance, scale = 0.5, 0.5
    one_more = more_data(_points([0.9375, 0.95], [1, 1], sizes=(160, 320)), True, chance, scale, "balanced_accuracy",
                         val_units=80)
    assert one_more["verdict"] == "unclear" and "within the noise of a score on 80 validation samples" in one_more["text"]
    big = more_data(_points([0.6, 0.95], [1, 1], sizes=(4, 320)), True, chance, scale, "balanced_accuracy", val_units=80)
    assert big["verdict"] == "helps"
    # an RMSE: its own SD, RMSE / sqrt(2 n)
    assert more_data(_points([1.0, 0.95, 0.9], [0.5] * 3), False, 1.0, 1.0, "rmse", val_units=50)["verdict"] == "unclear"
    assert more_data(_points([2.0, 1.6, 1.2], [0.5] * 3), False, 3.0, 3.0, "rmse", val_units=50)["verdict"] == "helps"


def test_the_chance_caveat_on_a_handful_of_patients_quotes_no_score_above_a_perfect_one(tmp_path):
    """On 2 validation patients the caveat read "a validation balanced accuracy below 1.21 is within two standard
    errors of chance": no score could be that far above it."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(12, 10)), columns=[f"g{j}" for j in range(10)])
    frame.insert(0, "patient_id", [f"P{i // 2}" for i in range(12)])
    frame["label"] = ["a", "b"] * 6
    frame.to_csv(tmp_path / "tiny.csv", index=False)
    res = run(["diagnose", "--learning-curve", str(tmp_path / "tiny.csv"), "--hidden", "none", "--epochs", "10",
               "--json"])
    assert res.exit_code == 0, res.output
    caveat = json.loads(res.stdout)["bias_variance"]["caveat"]
    assert "no validation balanced accuracy could lie two standard errors above chance" in caveat, caveat
    assert not re.search(r"below 1\.\d", caveat)


def test_a_regression_training_r2_of_a_quarter_is_not_called_learned():
    """LEARNED (a quarter of the no-skill error removed) was applied to R², a share of the variance: a training R² of
    0.26 beside validation at chance read "the training rows were learned (memorised)". It is read in the RMSE now,
    the regression score, as balanced accuracy's error is for classifiers: at least R² 0.44."""
    def answer(train_r2):
        rmse = np.sqrt(1 - train_r2)  # no-skill RMSE 1 on both sides
        return bias_variance(_points([1.0, 1.0, 1.0], [rmse] * 3), False, 1.0, 1.0, "rmse", val_units=2000)

    weak = answer(0.26)
    assert weak["verdict"] != "no_signal" and "memorised" not in weak["text"], weak
    assert answer(0.5)["verdict"] == "no_signal"
    # classifiers keep their threshold: training balanced accuracy 0.65 (30 % of the no-skill error removed)
    points = _points([0.5, 0.5, 0.5], [0.65] * 3)
    assert bias_variance(points, True, 0.5, 0.5, "balanced_accuracy", val_units=2000)["verdict"] == "no_signal"


def test_several_regression_targets_are_curved_in_each_targets_sd_units(tmp_path):
    """Two regression targets were pooled in their own units: the one spread 1,000 times wider was the whole curve,
    and its R² that of the stacked columns, where `train` and `evaluate` give the mean of the targets' R². Scored in
    each target's SD units, rescaling one target leaves the curve as it was, and a note says what it plots."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(6)])
    frame.insert(0, "y1", X[:, 0] + 0.3 * rng.normal(size=120))
    frame.insert(1, "y2", X[:, 1] * X[:, 2] + rng.normal(size=120))
    docs = []
    for factor in (1.0, 1000.0):
        path = tmp_path / f"two_{factor:g}.csv"
        frame.assign(y2=frame["y2"] * factor).to_csv(path, index=False)
        res = run(["diagnose", "--learning-curve", str(path), "--target", "y1,y2", "--task", "regression",
                   "--no-group", "--fractions", "0.5,1", "--hidden", "8", "--epochs", "20", "--json"])
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.output[res.output.index("{"):]))
    small, wide = docs
    for key in ("train_score", "val_score"):
        assert [s[key] for s in wide["sizes"]] == pytest.approx([s[key] for s in small["sizes"]], rel=1e-6)
    assert wide["bias_variance"]["train_error"] == pytest.approx(small["bias_variance"]["train_error"], rel=1e-6)
    assert any("units of each target's SD" in n for n in wide["notes"]), wide["notes"]


def test_a_size_without_a_rare_labels_positives_says_what_it_lacks_why_and_what_to_do(tmp_path):
    """Sizes whose rows held no positive of a rare label were skipped with only "it lacks 'C'"."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 6))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(6)])
    frame["A"], frame["B"], frame["C"] = (X[:, 0] > 0).astype(int), (X[:, 1] > 0).astype(int), 0
    frame.loc[[3, 50, 90, 100, 110], "C"] = 1
    frame.to_csv(tmp_path / "ml.csv", index=False)
    result = learning_curve(tmp_path / "ml.csv", replace(FAST, target=["A", "B", "C"], no_group=True, epochs=5),
                            fractions=(0.1, 0.5, 1.0))
    first = result.skipped[0]
    assert first.startswith("10% of the training groups (10 samples) skipped: it holds no positive for label 'C' ("), first
    assert "on the whole training side" in first and "could not learn that label" in first, first
    assert "--fractions" in result.skipped[-1] and "the curve starts at" in result.skipped[-1], result.skipped


def test_a_rise_that_never_leaves_the_no_skill_band_is_no_call_for_more_data(tmp_path, monkeypatch):
    """On 2,019 single cells with random labels, scores 0.523, 0.532 and 0.534 lay so nearly on a line that "More data
    still helps ... collecting more samples should pay off" stood beside "No learnable signal ... neither a larger
    network nor more data ... will help". With no signal, a "helps" becomes "unclear"."""
    import json

    from mlpcli.diagnosis import sample_size
    from mlpcli.model_selection import learning_curve as lc

    def helps(*args, **kwargs):  # the near-straight rise of the cells' run, whatever this small table's scatter
        return {**sample_size.more_data(*args, **kwargs), "verdict": "helps", "score_change_per_doubling": 0.011,
                "text": "More data still helps: …"}

    monkeypatch.setattr(lc, "more_data", helps)
    _random_labels(tmp_path / "noise.csv", 1000, 30, seed=12)
    res = run(["diagnose", "--learning-curve", str(tmp_path / "noise.csv"), "--no-group", "--fractions", "0.5,1",
               "--hidden", "128", "--epochs", "60", "--val-size", "0.3", "--n-jobs", "1", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[res.output.index("{"):])
    assert doc["bias_variance"]["verdict"] == "no_signal"
    assert doc["more_data"]["verdict"] == "unclear", doc["more_data"]
    assert doc["more_data"]["text"].startswith("Unclear whether more data helps: validation balanced accuracy rises by "
                                               "0.011 per doubling") and "no-skill level at every size" in \
        doc["more_data"]["text"]
