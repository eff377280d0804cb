"""Regression and multi-label targets end to end: held-out and predicted values written exactly, R² when it is
undefined, target cells that do not fit named with their file and row, multi-label class weights read as a
class target's, and options a model's task cannot take refused as usage errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import metrics
from tables import make_table
from cli_helpers import assert_clean_error, run

FAST = ["--hidden", "8", "--epochs", "8", "--patience", "4", "--quiet"]
OFFSET = 2e7  # a target of large mean and small spread (SD ~3.5): float32 steps of 2, 6 digits steps of 100


def big_regression(tmp_path, seed: int, name: str) -> tuple[str, pd.DataFrame]:
    df = make_table("regression", seed=seed, n_patients=20, n_features=4)
    df["label"] += OFFSET
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path), pd.read_csv(path)


def test_oof_files_keep_regression_values_exact(tmp_path):
    """train --oof and cv --oof wrote every float to 6 significant digits: 20000050.73 came out as 20000100,
    so the file's RMSE was 15.8 where train reported 0.48."""
    path, df = big_regression(tmp_path, 0, "train.csv")
    oof, cv_oof = tmp_path / "oof.csv", tmp_path / "cv_oof.csv"
    res = run(["train", path, *FAST, "--folds", "2", "-o", str(tmp_path / "m.mlp"), "--oof", str(oof)])
    assert res.exit_code == 0, res.output
    res = run(["cv", path, *FAST, "--folds", "2", "--member-folds", "2", "--oof", str(cv_oof)])
    assert res.exit_code == 0, res.output
    truth = df.set_index("sample_id")["label"]
    for file in (oof, cv_oof):
        held = pd.read_csv(file).set_index("sample_id")
        np.testing.assert_array_equal(held["label"].to_numpy(), truth.loc[held.index].to_numpy())
        assert np.abs(held["pred_label"] - held["label"]).median() < 50  # not rounded to hundreds


def test_predict_writes_regression_values_as_evaluate_scores_them(tmp_path):
    """predict wrote regression values in float32 (steps of 2 near 2e7), so its file's RMSE (0.84) was not
    evaluate's (0.61) for the same model and table."""
    path, _ = big_regression(tmp_path, 0, "train.csv")
    test_path, test = big_regression(tmp_path, 1, "test.csv")
    model, out = str(tmp_path / "m.mlp"), tmp_path / "p.csv"
    assert run(["train", path, *FAST, "--folds", "1", "-o", model]).exit_code == 0
    assert run(["predict", model, test_path, "-o", str(out), "-q"]).exit_code == 0
    res = run(["evaluate", model, test_path, "--json", "-q"])
    assert res.exit_code == 0, res.output
    rmse = json.loads(res.stdout)["metrics"]["rmse"]
    pred = pd.read_csv(out)
    assert np.sqrt(np.mean((pred["pred_label"] - test["label"]) ** 2)) == pytest.approx(rmse, rel=1e-9)


def test_r2_is_undefined_where_the_truth_does_not_vary():
    """scikit-learn's default gave R² 0.000 for predictions 45 units off a constant truth."""
    y = np.full((6, 1), 5.0)
    m = metrics.compute("regression", y, y + 45.0, ["label"])
    assert m["r2"] is None and m["rmse"] == pytest.approx(45.0)
    one = metrics.compute("regression", np.array([[5.0]]), np.array([[4.0]]), ["label"])
    assert one["r2"] is None
    two = metrics.compute("regression", np.column_stack([y[:, 0], np.arange(6.0)]),
                          np.column_stack([y[:, 0] + 1, np.arange(6.0)]), ["a", "b"])
    assert [t["r2"] for t in two["per_target"]] == [None, 1.0]
    varied = np.arange(6.0).reshape(-1, 1)
    assert metrics.compute("regression", varied, varied, ["label"])["r2"] == 1.0


def test_text_in_a_regression_target_is_named_with_its_file_row_and_value(tmp_path):
    """The message showed the column's first value (a number) as the 'text', and no row or file."""
    df = make_table("regression", seed=0, n_patients=20, n_features=4)
    df["label"] = df["label"].astype(object)
    df.loc[5, "label"] = "abc"
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    res = run(["train", str(path), *FAST, "--task", "regression", "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "bad.csv", "'label'", "'abc'", "row 6", "S0005")

    good = tmp_path / "good.csv"
    make_table("regression", seed=0, n_patients=20, n_features=4).to_csv(good, index=False)
    model = str(tmp_path / "m.mlp")
    assert run(["train", str(good), *FAST, "--folds", "1", "-o", model]).exit_code == 0
    assert_clean_error(run(["evaluate", model, str(path)]), "bad.csv", "'label'", "'abc'", "row 6", "S0005")


def test_a_multilabel_target_cell_that_is_not_0_or_1_is_named_in_evaluate(tmp_path):
    """evaluate said "--task multilabel needs 0/1 target columns; 'lab2' holds other values": an option
    evaluate does not have, and neither the file, the row nor the value."""
    train_path = tmp_path / "train.csv"
    make_table("multilabel", seed=0, n_patients=20, n_features=4).to_csv(train_path, index=False)
    model = str(tmp_path / "m.mlp")
    targets = ["--target", "lab0,lab1,lab2"]
    assert run(["train", str(train_path), *targets, *FAST, "--folds", "1", "-o", model]).exit_code == 0
    test = make_table("multilabel", seed=1, n_patients=20, n_features=4)
    test.loc[3, "lab2"] = 2
    bad = tmp_path / "bad.csv"
    test.to_csv(bad, index=False)
    assert_clean_error(run(["evaluate", model, str(bad)]), "bad.csv", "'lab2'", "'2'", "row 4", "S0003")
    res = run(["train", str(bad), *targets, "--task", "multilabel", *FAST, "-o", str(tmp_path / "n.mlp")])
    assert_clean_error(res, "bad.csv", "'lab2'", "'2'", "row 4")


@pytest.mark.parametrize("spec, needles, code", [
    ("lab0=2,lab0=3", ["'lab0' twice"], 2),  # took the last weight without a word
    ("lab0=inf", ["--class-weight", "'inf'"], 2),  # reached the loss: "bce pos_weight must be a positive number"
    ("lab0=nan", ["--class-weight", "'nan'"], 2),
    ("lab0=2,", ["--class-weight"], 2),  # the form: a usage error before the table is read
    ("labX=2", ["--class-weight", "'labX'", "lab0"], 1),  # a label: the table's to say
])
def test_multilabel_class_weights_are_checked_as_a_class_targets(tmp_path, spec, needles, code):
    path = tmp_path / "ml.csv"
    make_table("multilabel", seed=0, n_patients=20, n_features=4).to_csv(path, index=False)
    res = run(["train", str(path), "--target", "lab0,lab1,lab2", *FAST, "--folds", "1", "--class-weight", spec,
               "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, *needles, code=code)
    assert not (tmp_path / "m.mlp").exists()


def test_multilabel_class_weight_keywords_in_any_case(tmp_path):
    """'BALANCED' was read as a label name ("unknown label 'BALANCED'"); a class target takes it."""
    path = tmp_path / "ml.csv"
    make_table("multilabel", seed=0, n_patients=20, n_features=4).to_csv(path, index=False)
    for spec in ("BALANCED", "None"):
        res = run(["train", str(path), "--target", "lab0,lab1,lab2", *FAST, "--folds", "1", "--class-weight", spec,
                   "-o", str(tmp_path / "m.mlp")])
        assert res.exit_code == 0, res.output


def test_predict_explain_on_a_multilabel_model_gives_a_column_per_label(tmp_path):
    """A multi-label model's --explain gives top_features_<label> per label (it was a usage error until review 19;
    the reasons are checked against integrated gradients in tests/test_explain_multilabel.py)."""
    path = tmp_path / "t.csv"
    make_table("multilabel", seed=0, n_patients=20, n_features=4).to_csv(path, index=False)
    model, out = str(tmp_path / "m.mlp"), tmp_path / "p.csv"
    assert run(["train", str(path), "--target", "lab0,lab1,lab2", *FAST, "--folds", "1", "-o", model]).exit_code == 0
    res = run(["predict", model, str(path), "--explain", "3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    columns = list(pd.read_csv(out).columns)
    assert columns[-3:] == ["top_features_lab0", "top_features_lab1", "top_features_lab2"]


def test_a_numeric_target_with_a_stray_text_cell_names_the_cell(tmp_path):
    """One typo in a column of ages made the task multiclass, one class per age, and training then failed on
    classes of one sample without naming the cell; a target of class codes with an "unknown" stays classes."""
    df = make_table("regression", seed=3, n_patients=30, n_features=4)
    df["label"] = df["label"].round(2).astype(object)
    df.loc[6, "label"] = "n/d"
    path = tmp_path / "typo.csv"
    df.to_csv(path, index=False)
    res = run(["train", str(path), *FAST, "--folds", "2", "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "typo.csv: target 'label' holds numbers but for 1 cell of text, the first 'n/d' "
                            "at row 7; fix it, or give --task multiclass")
    assert not (tmp_path / "m.mlp").exists()
    codes = df.assign(label=np.resize(["1", "2", "3"], len(df)))
    codes.loc[::10, "label"] = "unknown"  # a class of its own, in several patients
    codes.to_csv(path, index=False)
    res = run(["train", str(path), *FAST, "--folds", "2", "-o", str(tmp_path / "m.mlp"), "--json"])
    assert res.exit_code == 0, res.output


def test_regression_history_metric_is_in_the_targets_units(tmp_path):
    """The history's train_metric / val_metric for regression were RMSEs of the standardised target (0.13 where
    the summary said rmse 22.4): at the kept epoch, val_metric is the summary's validation RMSE, and the metric
    curve's no-skill baseline that diagnose draws is in the same units."""
    from mlpcli import history as hist

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(4)])
    df["label"] = 1000.0 + 200.0 * X[:, 0] + rng.normal(size=200) * 20.0  # SD ~200: standardised RMSE ~1/10
    path, model, hist_path = tmp_path / "t.csv", str(tmp_path / "m.mlp"), tmp_path / "h.csv"
    df.to_csv(path, index=False)
    # one architecture: under --hidden auto the summary's figure is cross-fitted (each part of the validation rows
    # scored by the candidate the other parts chose), not the shipped network's own
    res = run(["train", str(path), "--no-group", "--folds", "1", "--epochs", "15", "--hidden", "none", "-o", model,
               "--history", str(hist_path), "--json", "-q"])
    assert res.exit_code == 0, res.output
    rmse = json.loads(res.stdout)["validation_metrics"]["rmse"]
    rows = pd.read_csv(hist_path)
    best = int(rows["best_epoch"].iloc[-1])
    assert rows.loc[rows["epoch"] == best, "val_metric"].item() == pytest.approx(rmse, rel=1e-4)
    curves = hist.read_curves(model, "metric")
    assert 150 < curves.baseline < 260  # RMSE of the training mean on the validation rows, target units
    assert curves.baseline > rows["val_metric"].min() * 3


# --- 6. multi-label log loss in the tables --------------------------------------------------------------------


def test_multilabel_log_loss_is_a_headline_metric_in_train_and_cv(tmp_path):
    path = tmp_path / "ml.csv"
    make_table("multilabel", n_patients=30, per_patient=2, n_features=6).to_csv(path, index=False)
    common = ["--target", "lab0,lab1,lab2", "--hidden", "4", "--epochs", "4", "-q"]
    res = run(["train", str(path), *common, "--folds", "2", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.stdout.splitlines() if "out-of-fold metrics" in line)
    assert "log loss 0." in row and "Hamming loss" in row
    res = run(["cv", str(path), *common, "--folds", "2", "--member-folds", "1"])
    assert res.exit_code == 0, res.output
    assert "log loss" in next(line for line in res.stdout.splitlines() if "best epoch" in line)
    mean = next(line for line in res.stdout.splitlines() if "mean" in line)
    assert len(mean.split("│")[-2].strip()) > 1  # a number under log loss, not "—"


def test_a_label_without_positives_has_no_average_precision():
    """A multi-label label absent from the table showed ROC AUC '—' (undefined) but average precision 0.000,
    the worst score, for a model that rightly predicted it for no sample."""
    from mlpcli import metrics

    rng = np.random.default_rng(0)
    Y = np.column_stack([rng.integers(0, 2, 40), np.zeros(40, dtype=int)])
    P = np.column_stack([np.clip(Y[:, 0] * 0.6 + rng.random(40) * 0.4, 0, 1), rng.random(40) * 0.2])
    per_label = metrics.compute("multilabel", Y, P, ["a", "b"])["per_label"]
    assert per_label[1]["roc_auc"] is None and per_label[1]["average_precision"] is None
    assert per_label[0]["average_precision"] is not None and per_label[0]["average_precision"] > 0.5
    binary = metrics.compute("binary", np.zeros(6, dtype=int), np.linspace(0.1, 0.9, 6).reshape(-1, 1), ["a", "b"])
    assert binary["roc_auc"] is None and binary["average_precision"] is None


def test_a_regression_loss_on_a_multilabel_target_suggests_losses_it_takes(tmp_path):
    """The message said "use ce, bce, focal or hinge", and --loss ce is refused for a multi-label target."""
    from cli_helpers import assert_clean_error
    from tables import make_table

    path = tmp_path / "ml.csv"
    make_table("multilabel", seed=0, n_patients=20, n_features=4).to_csv(path, index=False)
    res = run(["train", str(path), "--target", "lab0,lab1,lab2", "--loss", "mse", "--epochs", "2", "--folds", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "--loss mse", "use bce, focal or hinge", code=2)  # an option the task cannot take
    assert "ce, bce" not in res.output and not (tmp_path / "m.mlp").exists()


def test_regression_tune_and_cv_say_lowest_and_show_only_columns_they_compute(tmp_path):
    """tune called the winning RMSE "the highest of 2 settings"; cv showed a Pearson r column of dashes for several
    targets (computed per target only)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 4))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(4)])
    df["age"] = 50 + 10 * X[:, 0] + rng.standard_normal(60)
    df["score"] = X[:, 1] + 0.1 * rng.standard_normal(60)
    path = tmp_path / "r.csv"
    df.to_csv(path, index=False)
    res = run(["tune", str(path), "--target", "age,score", "--grid", "l2=0,1e-3", "--folds", "2", "--epochs", "3",
               "--hidden", "4"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "the lowest of 2 settings" in text and "highest" not in text
    res = run(["cv", str(path), "--target", "age,score", "--folds", "2", "--member-folds", "1", "--epochs", "3",
               "--hidden", "4", "--no-baseline"])
    assert res.exit_code == 0, res.output
    assert "RMSE" in res.output and "Pearson" not in res.output


# ── multi-label: labels with one value, rare labels ──────────────────────────────────────────────────────


def test_a_label_without_positives_is_left_out_of_the_balanced_accuracy():
    """A label with no positives scored its specificity alone, 1.0 when nothing was called positive, and lifted the
    mean (0.650 over four labels read 0.720 with a constant fifth); F1 macro and ROC AUC already left it out."""
    from sklearn.metrics import balanced_accuracy_score

    from mlpcli import metrics

    rng = np.random.default_rng(8)
    Y = rng.integers(0, 2, size=(60, 3))
    Y[:, 2] = 0  # never positive in these rows
    P = np.clip(Y * 0.6 + rng.uniform(0, 0.5, size=Y.shape), 0, 1)
    m = metrics.compute("multilabel", Y, P, ["a", "b", "never"], 0.5)
    expected = np.mean([balanced_accuracy_score(Y[:, j], P[:, j] >= 0.5) for j in (0, 1)])
    assert m["balanced_accuracy"] == pytest.approx(expected)
    assert metrics.compute("multilabel", np.zeros((5, 2), int), np.full((5, 2), 0.1), ["a", "b"], 0.5)[
        "balanced_accuracy"] is None


def test_a_rare_label_starts_at_its_prior_and_ends_near_it(tmp_path):
    """Every output started at p = 0.5: a softmax regression at lr 1e-3 ended 200 epochs at a mean probability of
    0.175 for a label of 4 % prevalence, and 0.10-0.12 for a label never positive in training."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(300, 40))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(40)])
    frame.insert(0, "common", (X[:, :3].sum(axis=1) > 0).astype(int))
    frame.insert(0, "rare", (X[:, 3:6].sum(axis=1) > 3.4).astype(int))  # ~3 %
    frame.insert(0, "never", 0)
    frame.to_csv(tmp_path / "t.csv", index=False)
    oof = tmp_path / "oof.csv"
    res = run(["train", str(tmp_path / "t.csv"), "--target", "common,rare,never", "--no-group", "--hidden", "",
               "--lr", "1e-3", "--epochs", "60", "--oof", str(oof), "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    probs = pd.read_csv(oof)
    assert probs["prob_never"].max() < 0.01
    assert abs(probs["prob_rare"].mean() - frame["rare"].mean()) < 0.04
    assert "balanced accuracy" in res.output


def test_the_estimator_starts_a_multilabel_output_at_its_prior():
    from mlpcli.estimators import MLPClassifier

    rng = np.random.default_rng(10)
    X = rng.normal(size=(200, 10))
    Y = np.column_stack([(X[:, 0] > 0).astype(int), (X[:, 1] > 2.0).astype(int)])
    est = MLPClassifier(hidden=(), epochs=3, early_stopping=False, random_state=0).fit(X, Y)
    assert abs(est.predict_proba(X)[:, 1].mean() - Y[:, 1].mean()) < 0.1


def _multilabel_frame(n=120, seed=13):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(12)])
    frame.insert(0, "L2", (X[:, 1] > 0).astype(int))
    frame.insert(0, "L1", (X[:, 0] > 0).astype(int))
    return frame


def test_multilabel_targets_stored_as_categories_in_h5ad_obs_train(tmp_path):
    """0/1 labels kept as categories in .obs (how AnnData stores them) were "neither 0/1 nor numeric"."""
    anndata = pytest.importorskip("anndata")
    frame = _multilabel_frame()
    obs = pd.DataFrame({"L1": pd.Categorical(frame["L1"].to_numpy()),
                        "L2": pd.Categorical(frame["L2"].astype(str).to_numpy())},
                       index=[f"c{i}" for i in range(len(frame))])
    var = pd.DataFrame(index=[f"g{j}" for j in range(12)])
    anndata.AnnData(X=frame[var.index].to_numpy(np.float32), obs=obs, var=var).write_h5ad(tmp_path / "t.h5ad")
    res = run(["train", str(tmp_path / "t.h5ad"), "--target", "L1,L2", "--no-group", "--folds", "1", "--hidden", "4",
               "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "task: multilabel" in res.output


def test_a_stray_value_among_0_1_targets_is_warned_and_text_labels_named(tmp_path):
    frame = _multilabel_frame()
    frame.loc[7, "L2"] = 2
    frame.to_csv(tmp_path / "stray.csv", index=False)
    res = run(["train", str(tmp_path / "stray.csv"), "--target", "L1,L2", "--no-group", "--folds", "1", "--hidden",
               "4", "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "the target columns are 0/1 but for 1 cell ('L2' holds 2 at row 8)" in res.output
    words = _multilabel_frame()
    words["L1"] = np.where(words["L1"] == 1, "yes", "no")
    words.to_csv(tmp_path / "yes.csv", index=False)
    res = run(["train", str(tmp_path / "yes.csv"), "--target", "L1,L2", "--no-group", "-o", str(tmp_path / "y.mlp")])
    first = words["L1"].iloc[0]
    assert res.exit_code == 1 and "0/1 or true/false" in res.output and f"('L1' holds '{first}')" in res.output


def test_predict_counts_multilabel_positives_in_the_models_label_order(tmp_path):
    frame = _multilabel_frame()
    frame = frame.rename(columns={"L1": "ZETA", "L2": "ALPHA"})  # alphabetical order is not the model's
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--target", "ZETA,ALPHA", "--no-group", "--folds", "1", "--hidden",
               "4", "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv"), "--json"])
    import json

    doc = json.loads(res.output[res.output.index("{"):])
    assert list(doc["predicted_counts"]) == ["ZETA", "ALPHA"]


def test_tune_leaves_out_a_combination_that_cannot_train_and_still_refuses_a_value_that_never_can(tmp_path):
    """loss=bce,focal x class_weight=none|balanced on multi-label targets stopped the whole grid (focal takes no
    per-label class weights); a value that trains in no setting is still an error."""
    frame = _multilabel_frame(n=80)
    frame.to_csv(tmp_path / "t.csv", index=False)
    common = ["--target", "L1,L2", "--no-group", "--folds", "2", "--hidden", "4", "--epochs", "2"]
    res = run(["tune", str(tmp_path / "t.csv"), *common, "--grid", "loss=bce,focal; class_weight=none|balanced"])
    assert res.exit_code == 0, res.output
    assert "1 of the 4 settings cannot train on this data and are left out: loss=focal class-weight=balanced" \
        in res.output
    res = run(["tune", str(tmp_path / "t.csv"), *common, "--grid", "loss=bce,mse"])
    assert res.exit_code in (1, 2) and "--grid: the setting loss=mse does not fit the data" in res.output


def test_labels_coded_otherwise_than_0_1_among_several_targets_are_named(tmp_path):
    """Three yes/no labels, one coded 1/2: every label became a number to predict (squared error, RMSE) without a
    word. Now a warning names the column and its two values; true numeric targets say nothing."""
    frame = _multilabel_frame()
    frame["L2"] = frame["L2"] + 1
    frame.to_csv(tmp_path / "coded.csv", index=False)
    res = run(["train", str(tmp_path / "coded.csv"), "--target", "L1,L2", "--no-group", "--folds", "1", "--hidden",
               "4", "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "task: regression" in res.output
    assert "'L2' (1/2) is not coded 0/1: read as 2 numbers to predict" in " ".join(res.output.split())
    frame["L1"] = np.random.default_rng(0).normal(size=len(frame))
    frame.to_csv(tmp_path / "numbers.csv", index=False)
    res = run(["train", str(tmp_path / "numbers.csv"), "--target", "L1,L2", "--no-group", "--folds", "1", "--hidden",
               "4", "--epochs", "3", "-o", str(tmp_path / "m2.mlp")])
    assert res.exit_code == 0, res.output
    assert "not coded 0/1" not in res.output
