"""Regression targets by use: a continuous phenotype in raw units (one target or several on very different scales),
a target that never varies, a score of a few whole numbers, labels written as sets, evaluate --by per target,
and a label never positive in training."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from mlpcli import data, model_io, predict
from mlpcli.data import dataset as D
from mlpcli.estimators import MLPRegressor
from cli_helpers import assert_clean_error, run


FAST = ["--hidden", "8", "--epochs", "3", "--folds", "1"]


GENES = [f"gene{i + 1}" for i in range(6)]


def cohort(n: int, seed: int, prefix: str = "S") -> pd.DataFrame:
    """Genes in raw units of thousands; age = 50 + 10 (2 gene1 - gene2) + noise, IC50 on a 1e-6 scale."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, len(GENES)))
    df = pd.DataFrame(1000 + 300 * Z, columns=GENES)
    df.insert(0, "sample_id", [f"{prefix}{i:03d}" for i in range(n)])
    df.insert(1, "patient_id", [f"{prefix}P{i // 2:03d}" for i in range(n)])
    df.insert(2, "batch", np.array(["b1", "b2", "b3"])[np.arange(n) % 3])
    df["age"] = 50 + 10 * (2 * Z[:, 0] - Z[:, 1] + 0.3 * rng.normal(size=n))
    df["ic50"] = 1e-6 * np.exp(0.5 * Z[:, 2])
    return df


def build(frame: pd.DataFrame, task: str = "auto", **roles) -> D.Dataset:
    resolved, _ = D.resolve_roles(frame.columns, **roles)
    return D.Dataset.from_frame(frame, resolved, task=task)


# ── a target that never varies ─────────────────────────────────────────────────────────────────────────────


def test_constant_numeric_target_is_not_called_a_class(tmp_path):
    path = tmp_path / "const.csv"
    cohort(40, 0).assign(age=42.0).drop(columns="ic50").to_csv(path, index=False)
    res = run(["train", str(path), "--target", "age", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert_clean_error(res, "const.csv: target 'age' holds one value ('42.0') in every row", "nothing to learn")
    assert "single class" not in res.output


def test_constant_target_with_task_regression_is_a_data_error_before_training(tmp_path):
    path = tmp_path / "const.csv"
    cohort(40, 0).assign(age=42.0).drop(columns="ic50").to_csv(path, index=False)
    out = tmp_path / "m.mlp"
    res = run(["train", str(path), "--target", "age", "--task", "regression", "-o", str(out), *FAST])
    # was "training: baseline must be a finite loss above 0, got 0", after the networks had trained
    assert_clean_error(res, "const.csv: --task regression needs a target that varies, but 'age' is 42 in every row")
    assert "baseline" not in res.output and not out.exists()


def test_one_constant_target_among_several_is_a_warning():
    ds = build(cohort(40, 0).assign(dose=7.0), target="age,dose")
    assert ds.task == "regression"
    assert any("'dose' (always 7) never changes" in w for w in ds.warnings), ds.warnings


def test_text_label_of_one_class_keeps_its_wording():
    with pytest.raises(D.DataError, match="has a single class"):
        build(cohort(20, 0).assign(label="typeA"))


# ── task detection: a score of a few whole numbers, labels written a|b ─────────────────────────────────────


def test_few_whole_numbers_are_classes_with_a_pointer_to_regression():
    frame = cohort(60, 1).assign(score=lambda d: np.clip(np.round(2 + (d.gene1 - 1000) / 300), 0, 4).astype(int))
    ds = build(frame, target="score")
    assert ds.task == "multiclass"
    assert any("'score' holds 5 whole numbers, read as classes; --task regression predicts it as a number" in n
               for n in ds.notes), ds.notes
    assert not any("whole numbers" in n for n in build(frame.assign(score=frame.score % 2), target="score").notes)
    assert build(frame, task="regression", target="score").task == "regression"


def test_labels_written_as_sets_point_to_multilabel_columns():
    frame = cohort(40, 2).assign(label=["A|B", "A", "B", "none"] * 10)
    ds = build(frame)
    assert ds.task == "multiclass"
    assert any("write one 0/1 column per label and give them all to --target" in w for w in ds.warnings), ds.warnings


# ── evaluate --by on several targets of different units ────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def two_targets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two")
    train = tmp / "train.csv"
    cohort(90, 3).to_csv(train, index=False)
    model = tmp / "two.mlp"
    res = run(["train", str(train), "--target", "age,ic50", "-o", str(model), "--hidden", "", "--epochs", "40",
               "--folds", "1", "-q"])
    assert res.exit_code == 0, res.output
    test = cohort(90, 4, prefix="T")
    test.loc[test.batch == "b1", "ic50"] *= 10  # b1's IC50 far off; its age (the pooled RMSE's bulk) is not
    return model_io.load(model), test, tmp


def test_by_flags_a_group_on_the_small_unit_target(two_targets):
    model, test, _ = two_targets
    result = predict.evaluate(model, test, by="batch")
    b1 = next(g for g in result.groups if g["value"] == "b1")
    # the pooled RMSE is age's alone: b1 is no worse there, and was never flagged
    assert b1["metrics"]["rmse"] < 1.25 * result.metrics["rmse"]
    ic50 = {t["target"]: t for t in b1["per_target"]}["ic50"]
    overall = {t["target"]: t for t in result.metrics["per_target"]}["ic50"]
    assert ic50["rmse"] > 1.25 * overall["rmse"]
    assert b1["flagged"] and not any(g["flagged"] for g in result.groups if g["value"] != "b1")
    assert any("'b1' (30 samples) scores RMSE" in w and "for 'ic50'" in w for w in result.warnings), result.warnings


def test_by_per_target_rmse_matches_scikit_learn(two_targets):
    model, test, _ = two_targets
    result = predict.evaluate(model, test, by="batch")
    pred = model.predict_output(test[GENES].to_numpy())  # (n, 2) in the targets' units
    truth = test[["age", "ic50"]].to_numpy()
    assert result.metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(truth.ravel(), pred.ravel())))
    assert result.metrics["mae"] == pytest.approx(mean_absolute_error(truth.ravel(), pred.ravel()))
    assert result.metrics["r2"] == pytest.approx(r2_score(truth, pred))
    for g in result.groups:
        rows = (test.batch == g["value"]).to_numpy()
        expected = np.sqrt(mean_squared_error(truth[rows], pred[rows], multioutput="raw_values"))
        assert [t["rmse"] for t in g["per_target"]] == pytest.approx(expected.tolist())


def test_by_table_states_the_regression_rule(two_targets):
    _, test, tmp = two_targets
    path = tmp / "test.csv"
    test.to_csv(path, index=False)
    res = run(["evaluate", str(tmp / "two.mlp"), str(path), "--by", "batch"])
    assert res.exit_code == 0, res.output
    assert "a target's RMSE clearly worse than its overall one, with ≥ 20 samples" in res.output
    assert "per class" not in res.output
    assert "RMSE ic50" in res.output and "⚠ b1" in res.output


# ── the scikit-learn regressor on a target that never varies ───────────────────────────────────────────────


def test_regressor_predicts_a_constant_target_exactly():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.full(60, 0.1)  # its mean is not 0.1 to the last bit, nor its SD 0
    est = MLPRegressor(hidden=(8,), epochs=3, random_state=0).fit(X, y)
    assert np.all(est.predict(rng.normal(size=(5, 4))) == 0.1)
    Y = np.column_stack([X[:, 0] * 5 + 2, np.full(60, 7.0)])
    est = MLPRegressor(hidden=(8,), epochs=3, random_state=0).fit(X, Y)
    P = est.predict(X)
    assert np.all(P[:, 1] == 7.0) and np.ptp(P[:, 0]) > 0


# ── multi-label: a label the training table never had positive ─────────────────────────────────────────────


def test_evaluate_warns_on_a_label_never_positive_in_training(tmp_path):
    def labelled(df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns=["age", "ic50"]).assign(A=(df.gene1 > 1000).astype(int), B=(df.gene2 > 1000).astype(int))

    train, model = tmp_path / "ml.csv", tmp_path / "ml.mlp"
    labelled(cohort(40, 5)).assign(rare=0).to_csv(train, index=False)
    res = run(["train", str(train), "--target", "A,B,rare", "-o", str(model), *FAST, "-q"])
    assert res.exit_code == 0, res.output
    test = labelled(cohort(30, 6, prefix="T")).assign(rare=lambda d: (d.gene3 > 1000).astype(int))
    result = predict.evaluate(model_io.load(model), test)
    assert any("label 'rare' (never positive) never changed in the training table" in w for w in result.warnings)
    # a table where it stays 0 too: its metrics are what the model learnt, nothing to warn about
    result = predict.evaluate(model_io.load(model), test.assign(rare=0))
    assert not any("never changed in the training table" in w for w in result.warnings), result.warnings


# ── regression ──────────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def offset_targets(tmp_path_factory):
    """One target, alone and shifted by 2e9: every figure in the target's units moves with it, no RMSE changes."""
    tmp = tmp_path_factory.mktemp("regression")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 12)) * 2 + 5
    frame = pd.DataFrame(X, columns=[f"G{i}" for i in range(12)])
    frame.insert(0, "patient_id", [f"P{i}" for i in np.repeat(np.arange(80), 3)])
    y = (X[:, 0] - 5) + 0.5 * rng.normal(size=240)
    frame.assign(age=y).to_csv(tmp / "small.csv", index=False)
    frame.assign(age=y + 2e9).to_csv(tmp / "big.csv", index=False)
    return tmp


def test_the_ridge_baseline_does_not_depend_on_the_targets_offset(offset_targets):
    scores = []
    for name in ("small", "big"):
        res = run(["cv", str(offset_targets / f"{name}.csv"), "--target", "age", "--hidden", "4", "--epochs", "5",
                   "--folds", "3", "--member-folds", "2", "--json"])
        assert res.exit_code == 0, res.output
        scores.append(json.loads(res.stdout)["baseline"]["summary"]["rmse"]["mean"])
    assert scores[0] < 1.0 and scores[1] == pytest.approx(scores[0], rel=1e-4)  # was 512 against 0.53


def test_the_regression_loss_is_named_for_what_it_is_and_calibrate_is_said_to_do_nothing(offset_targets, tmp_path):
    res = run(["train", str(offset_targets / "small.csv"), "--target", "age", "--hidden", "4", "--epochs", "3",
               "--calibrate", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "mse (half the squared error) of the standardised target" in text
    assert "--calibrate had no effect" in text


def test_a_binary_task_on_measured_values_points_to_regression(offset_targets):
    res = run(["train", str(offset_targets / "small.csv"), "--target", "age", "--task", "binary"])
    assert res.exit_code == 1 and "they are measured values: use --task regression" in " ".join(res.output.split())


def test_many_whole_numbers_read_as_classes_are_a_warning_naming_regression(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2400, 4))
    age = np.clip(np.round(50 + 10 * X[:, 0] + 5 * rng.normal(size=2400)), 18, 90).astype(int)
    frame = pd.DataFrame(X, columns=[f"G{i}" for i in range(4)]).assign(age=age)
    frame.to_csv(tmp_path / "t.csv", index=False)
    ds, _ = data.load_dataset(str(tmp_path / "t.csv"), target="age", no_group=True)
    assert ds.task == "multiclass"
    assert any("distinct whole numbers, read as" in w and "--task regression" in w for w in ds.warnings)
    few = frame.assign(age=age % 4)  # a 0-3 score: classes, a note at most
    few.to_csv(tmp_path / "s.csv", index=False)
    ds, _ = data.load_dataset(str(tmp_path / "s.csv"), target="age", no_group=True)
    assert not any("whole numbers" in w for w in ds.warnings)


def test_tune_on_targets_of_different_units_says_the_widest_decides(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    frame = pd.DataFrame(X, columns=[f"G{i}" for i in range(6)])
    frame.insert(0, "patient_id", [f"P{i}" for i in np.repeat(np.arange(50), 3)])
    frame["y1"] = X[:, 0] + 0.3 * rng.normal(size=150)
    frame["y2"] = 1000 * X[:, 1] + rng.normal(size=150)
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["tune", str(tmp_path / "t.csv"), "--target", "y1,y2", "--epochs", "2", "--folds", "2", "--hidden", "4",
               "--grid", "l2=0,0.1", "-q"])
    assert res.exit_code == 0, res.output
    assert "the ranking is by the RMSE pooled over the 2 targets in their own units" in " ".join(res.stderr.split())
    frame["y2"] = frame["y2"] / 1000  # the same units: nothing to say
    frame.to_csv(tmp_path / "s.csv", index=False)
    res = run(["tune", str(tmp_path / "s.csv"), "--target", "y1,y2", "--epochs", "2", "--folds", "2", "--hidden", "4",
               "--grid", "l2=0,0.1", "-q"])
    assert res.exit_code == 0 and "pooled over" not in res.stderr


def test_the_auto_weight_decay_of_a_regression_does_not_shrink_its_predictions(tmp_path):
    """AdamW's default decay (1.0, a classifier's: its temperature scales the logits back) pulled a regression's
    predictions towards the mean: a linear model of y = 3 g0 - 2 g1 + noise (SD 0.5) scored R² 0.948, RMSE 0.834
    against the 0.5 the noise allows. --weight-decay auto is 0.01 for regression; a classifier keeps 1.0."""
    import json

    rng = np.random.default_rng(0)
    n = 1000
    X = rng.normal(size=(n, 20))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(20)])
    frame["y"] = 3 * X[:, 0] - 2 * X[:, 1] + 0.5 * rng.normal(size=n) + 10
    frame["label"] = np.where(X[:, 0] > 0, "a", "b")
    frame.insert(0, "patient_id", [f"P{i // 4}" for i in range(n)])
    frame.to_csv(tmp_path / "lin.csv", index=False)
    res = run(["train", str(tmp_path / "lin.csv"), "--target", "y", "--drop", "label", "--hidden", "none", "-o",
               str(tmp_path / "r.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    held_out = json.loads(res.stdout)["validation_metrics"]
    assert held_out["r2"] > 0.97 and held_out["rmse"] < 0.6, held_out
    res = run(["train", str(tmp_path / "lin.csv"), "--target", "label", "--drop", "y", "--hidden", "none", "--folds",
               "2", "--epochs", "3", "-o", str(tmp_path / "c.mlp"), "-q"])
    assert res.exit_code == 0, res.output
    decays = {}
    for name in ("r", "c"):
        info = json.loads(run(["info", str(tmp_path / f"{name}.mlp"), "--json"]).stdout)
        decays[name] = info["training"]["resolved"]["weight_decay"]
    assert decays == {"r": 0.01, "c": 1.0}
    res = run(["train", str(tmp_path / "lin.csv"), "--target", "y", "--drop", "label", "--hidden", "none", "--folds",
               "2", "--epochs", "3", "--weight-decay", "0.5", "-o", str(tmp_path / "given.mlp"), "-q"])
    assert res.exit_code == 0, res.output
    info = json.loads(run(["info", str(tmp_path / "given.mlp"), "--json"]).stdout)
    assert info["training"]["resolved"]["weight_decay"] == 0.5
