"""`mlpcli evaluate` on regression and multi-label targets: --target naming the table's label columns otherwise
than the model's, multi-label log loss, MCC on a cohort of one class, and --by tables of several targets."""

import numpy as np
import pytest

from mlpcli import metrics, model_io
from mlpcli.config import TrainOptions
from mlpcli.pipeline import train
from cli_helpers import assert_clean_error, run
from tables import make_table
from test_evaluate import TARGETS, evaluate_json, perfect_model, separable


@pytest.fixture()
def perfect(tmp_path):
    """(model path, its table written with the target columns renamed by `rename`, the table)."""
    def make(task: str, rename: dict | None = None):
        df = separable(task, seed=0)
        model = tmp_path / f"{task}.mlp"
        model_io.save(perfect_model(task, df), model)
        new = separable(task, seed=3).rename(columns=rename or {})
        table = tmp_path / f"{task}_{'renamed' if rename else 'new'}.csv"
        new.to_csv(table, index=False)
        return str(model), str(table), new
    return make


# ── --target: the table's label columns under other names ───────────────────────────────────────────────


@pytest.mark.parametrize("task,rename", [
    ("regression", {"label": "age_years"}),
    ("multilabel", {"lab0": "is_a", "lab1": "is_b", "lab2": "is_c"}),
])
def test_a_regression_or_multilabel_target_may_be_named_otherwise(perfect, task, rename):
    """--target said it reads the truth from the column it names, but a regression or multi-label model refused
    any column not named as in training ("pass the model's columns to --target"); classifiers accepted it."""
    model, table, _ = perfect(task, rename=rename)
    _, same_names, _ = perfect(task)
    doc = evaluate_json(model, table, "--target", ",".join(rename.values()))
    expected = evaluate_json(model, same_names)
    assert doc["metrics"] == expected["metrics"] and doc["classes"] == TARGETS[task]  # the model's names kept
    said = [n for n in doc["notes"] if n.startswith("--target:")]
    assert len(said) == 1 and all(repr(v) in said[0] and repr(k) in said[0] for k, v in rename.items())
    # the default is still the model's own target: the renamed table without --target is refused as before
    assert_clean_error(run(["evaluate", model, table]), f"no target column {TARGETS[task][0]!r}", "--target")


def test_the_model_s_own_label_columns_in_another_order_are_read_by_name(perfect):
    model, table, _ = perfect("multilabel")
    assert evaluate_json(model, table, "--target", "lab2,lab0,lab1")["metrics"]["hamming_loss"] == 0.0


@pytest.mark.parametrize("task,target,needles", [
    ("multilabel", "lab1,x,y", ["'lab1'", "target 1", "model's target 2", "'lab0', 'lab1', 'lab2'"]),
    ("multilabel", "lab0,lab1", ["2 columns", "3 targets", "in this order"]),
    ("multilabel", "lab0,lab0,lab1", ["'lab0' twice"]),
    ("multiclass", "label,batch", ["2 columns", "1 target"]),  # was: "--task multiclass takes one --target column"
])
def test_target_columns_that_cannot_be_the_model_s_are_usage_errors(perfect, task, target, needles):
    model, table, _ = perfect(task)
    res = run(["evaluate", model, table, "--target", target])
    assert_clean_error(res, "--target", *needles, code=2)
    assert "--task" not in res.output


def test_a_target_named_otherwise_is_never_a_feature_or_another_role(perfect):
    model, table, _ = perfect("regression", rename={"label": "age_years"})
    assert_clean_error(run(["evaluate", model, table, "--target", "f00"]), "'f00'", "both the target and")
    assert_clean_error(run(["evaluate", model, table, "--target", "batch"]),  # the batch column by default: the
                       "--target 'batch': that column is the batch column by default", "--batch", code=2)  # option's doing


# ── multi-label log loss ─────────────────────────────────────────────────────────────────────────────────


def test_multilabel_log_loss_is_the_binary_cross_entropy_averaged_over_labels():
    rng = np.random.default_rng(0)
    Y = (rng.random((40, 3)) < 0.4).astype(int)
    P = rng.uniform(0.01, 0.99, size=(40, 3))
    m = metrics.compute("multilabel", Y, P, ["a", "b", "c"])
    per_label = [metrics.compute("binary", Y[:, j], P[:, j:j + 1], ["0", "1"])["log_loss"] for j in range(3)]
    assert m["log_loss"] == pytest.approx(np.mean(per_label), rel=1e-12)
    assert [r["log_loss"] for r in m["per_label"]] == pytest.approx(per_label, rel=1e-12)
    assert metrics.compute("multilabel", np.zeros((0, 2)), np.zeros((0, 2)), ["a", "b"])["log_loss"] is None


def test_evaluate_reports_multilabel_log_loss_in_table_json_groups_and_calibration(tmp_path):
    """Binary and multiclass models report log loss; multi-label ones did not, anywhere (nor the effect of
    their calibration temperature, which training fits on that very loss)."""
    df = make_table(task="multilabel", seed=1)
    df.to_csv(tmp_path / "train.csv", index=False)
    model = train(str(tmp_path / "train.csv"), TrainOptions(target=TARGETS["multilabel"], hidden=[4], epochs=3)).model
    assert model.temperature is not None  # 120 held-out rows: calibrated
    model_io.save(model, tmp_path / "m.mlp")
    make_table(task="multilabel", seed=2, n_patients=20).to_csv(tmp_path / "test.csv", index=False)
    args = [str(tmp_path / "m.mlp"), str(tmp_path / "test.csv"), "--by", "batch", "--bootstrap", "5"]
    doc = evaluate_json(*args)
    loss = doc["metrics"]["log_loss"]
    assert loss > 0 and all(r["log_loss"] > 0 for r in doc["metrics"]["per_label"])
    assert len(doc["ci"]["log_loss"]) == 2
    assert all(g["metrics"]["log_loss"] > 0 for g in doc["groups"])
    assert doc["calibration"]["log_loss_after"] == loss and doc["calibration"]["log_loss_before"] > 0
    res = run(["evaluate", *args])
    assert res.exit_code == 0, res.output
    assert res.output.count("log loss") >= 4  # metrics table, per-label table, calibration line, --by table
    line = [x for x in res.output.splitlines() if x.startswith("calibration:")][0]
    # ECE too since review 19 (every sample-label call pooled, as training's calibration line has it)
    assert "log loss" in line and "ECE" in line and "—" not in line
    assert doc["calibration"]["ece_after"] == doc["metrics"]["ece"]


# ── MCC when the truth holds one class ────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_mcc_is_undefined_not_zero_on_a_cohort_of_one_class(perfect, tmp_path, task):
    """A cohort of one class, classified perfectly, scored MCC 0.000 (scikit-learn's value for 0/0), as if the
    model were no better than chance; it is undefined, like R² of a constant target."""
    model, _, df = perfect(task)
    one = df[df["label"] == df["label"].iloc[0]]
    one.to_csv(tmp_path / "one.csv", index=False)
    doc = evaluate_json(model, str(tmp_path / "one.csv"), "--by", "batch")
    assert doc["metrics"]["accuracy"] == 1.0 and doc["metrics"]["mcc"] is None
    if task == "binary":  # mcc is one of the --by columns for binary models
        assert all(g["metrics"]["mcc"] is None for g in doc["groups"])
    y = np.array([0, 0, 1, 1])
    assert metrics.compute("binary", y, np.array([[0.1], [0.6], [0.7], [0.9]]), ["a", "b"])["mcc"] == pytest.approx(
        0.5773502691896258)  # both classes present: as before


# ── --by with several regression targets ────────────────────────────────────────────────────────────────


def test_by_groups_of_a_multi_target_regression_carry_only_metrics_it_computes(tmp_path):
    """The --by table had a Pearson r column of dashes (and JSON groups pearson_r: null, read as undefined),
    although with several targets the correlations are per target only and the overall table has none."""
    df = make_table(task="regression", seed=1)
    df.insert(4, "label2", df["f02"] * 2.0 + 1.0)
    df.to_csv(tmp_path / "train.csv", index=False)
    model = train(str(tmp_path / "train.csv"), TrainOptions(target=["label", "label2"], hidden=[], epochs=2,
                                                            folds=1)).model
    model_io.save(model, tmp_path / "m.mlp")
    doc = evaluate_json(str(tmp_path / "m.mlp"), str(tmp_path / "train.csv"), "--by", "batch")
    assert "pearson_r" not in doc["metrics"] and doc["groups"]
    assert all(list(g["metrics"]) == ["rmse", "mae", "r2"] for g in doc["groups"])
    res = run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "train.csv"), "--by", "batch"])
    assert res.exit_code == 0 and "By batch" in res.output and "Pearson r" not in res.output.split("By batch")[1]


# ── metrics of several regression targets ────────────────────────────────────────────────────────────────


def test_several_targets_each_get_their_mae_and_r2_is_the_mean_of_the_defined_ones():
    """The MAE of several targets was only pooled (a target in mg swamping one in years), with no per-target
    MAE beside it; and one target constant in the cohort made the overall R² undefined, however well the
    others were predicted."""
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(30, 3)) * [1.0, 100.0, 5.0]
    P = Y + rng.normal(size=(30, 3)) * [0.5, 30.0, 2.0]
    m = metrics.compute("regression", Y, P, ["years", "dose_mg", "score"])
    assert [t["mae"] for t in m["per_target"]] == pytest.approx(np.abs(Y - P).mean(axis=0))
    from sklearn.metrics import r2_score

    assert m["r2"] == pytest.approx(r2_score(Y, P))  # scikit-learn's uniform average of the targets' R²
    Y[:, 0] = 40.0  # every sample the same age: that target's R² is undefined
    m = metrics.compute("regression", Y, P, ["years", "dose_mg", "score"])
    r2s = [t["r2"] for t in m["per_target"]]
    assert r2s[0] is None and m["r2"] == pytest.approx(np.mean(r2s[1:]))


def test_evaluate_says_what_the_pooled_figures_of_several_targets_are(tmp_path):
    """evaluate printed one RMSE and one MAE for several targets with nothing saying they pool the targets'
    units (a target in mg swamps one in years) or that R² is the targets' mean."""
    df = make_table("regression", seed=0, n_patients=20, n_features=6)
    df["other"] = df["label"] * 1000.0 + 5.0
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    model = str(tmp_path / "m.mlp")
    fast = ["--hidden", "8", "--epochs", "4", "--quiet", "--folds", "1"]
    assert run(["train", str(path), "--target", "label,other", *fast, "-o", model]).exit_code == 0
    res = run(["evaluate", model, str(path)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "RMSE and MAE pooled over their units, R² the mean of the targets' R²" in text
    assert "Per target" in text
