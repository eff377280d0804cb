"""`mlpcli evaluate`: metric sets per task with known answers (hand-built perfect models), per-group
metrics, bootstrap intervals, outputs and errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli import data, metrics, model_io
from mlpcli import predict as lib
from mlpcli.cli import cli
from mlpcli.config import TrainOptions
from mlpcli.engine import MLP
from mlpcli.model_io import Model
from mlpcli.pipeline import train
from tables import make_table
from cli_helpers import run, assert_clean_error

TARGETS = {"binary": ["label"], "multiclass": ["label"], "multilabel": ["lab0", "lab1", "lab2"], "regression": ["label"]}


def separable(task: str, seed: int = 0, n_patients: int = 30) -> pd.DataFrame:
    """A table whose labels follow from the features exactly (patients, ids and batches B1-B3 as usual)."""
    df = make_table(task="multiclass", seed=seed, n_patients=n_patients, n_features=6).drop(columns=["label"])
    rng = np.random.default_rng(seed)
    n = len(df)
    feats = [f"f{j:02d}" for j in range(6)]
    X = rng.normal(scale=0.1, size=(n, 6))
    if task == "binary":
        case = np.repeat(np.arange(n_patients) % 2 == 1, n // n_patients)
        X[:, 0] += np.where(case, 3.0, -3.0)
        df["label"] = np.where(case, "case", "ctrl")
    elif task == "multiclass":
        cls = np.repeat(np.arange(n_patients) % 3, n // n_patients)
        X[np.arange(n), cls] += 4.0
        df["label"] = np.array(["typeA", "typeB", "typeC"])[cls]
    elif task == "multilabel":
        Y = np.repeat(rng.random((n_patients, 3)) < 0.5, n // n_patients, axis=0)
        X[:, :3] += np.where(Y, 3.0, -3.0)
        for j in range(3):
            df[f"lab{j}"] = Y[:, j].astype(int)
    else:
        X[:, 0] = rng.normal(size=n)
        df["label"] = 2.0 * X[:, 0] + 5.0
    df[feats] = X
    return df


def perfect_model(task: str, df: pd.DataFrame) -> Model:
    """A linear network whose weights are set by hand so that its predictions are (all but) exact on
    `separable` tables: a large weight on the informative standardised feature(s)."""
    feats = [c for c in df.columns if c.startswith("f")]
    pre = data.Preprocessor().fit(df[feats].to_numpy(dtype=float), feats)
    k = {"binary": 1, "multiclass": 3, "multilabel": 3, "regression": 1}[task]
    net = MLP(len(feats), [], k, dtype="float64")
    W, b = net.parameters()["dense0.W"], net.parameters()["dense0.b"]  # (k, d), (k,)
    W[...] = 0.0
    b[...] = 0.0
    extra = {}
    if task == "binary":
        W[0, 0] = 40.0  # P(case) = sigmoid(40 z0); case has the large f00
        classes, loss = ["ctrl", "case"], "bce"
    elif task == "multiclass":
        W[np.arange(3), np.arange(3)] = 40.0
        classes, loss = ["typeA", "typeB", "typeC"], "ce"
    elif task == "multilabel":
        W[np.arange(3), np.arange(3)] = 40.0
        classes, loss = ["lab0", "lab1", "lab2"], "bce"
    else:
        W[0, 0] = 1.0  # y is linear in f00, so its z-score equals f00's
        y = df["label"].to_numpy()
        extra = {"target_scaling": {"mean": [float(y.mean())], "sd": [float(y.std())]}}
        classes, loss = ["label"], "mse"
    batches = df["batch"].value_counts().to_dict()
    return Model.single(net, pre, extra.get("target_scaling"), task=task, classes=classes, feature_names=feats,
                        target_names=TARGETS[task], loss={"name": loss, "params": {}},
                        roles={"target": TARGETS[task], "group": "patient_id", "id": "sample_id", "batch": "batch"},
                        split={"batch_counts_train": batches})


@pytest.fixture()
def perfect(tmp_path):
    def make(task: str, seed: int = 0):
        df = separable(task, seed=0)
        path = tmp_path / f"{task}.mlp"
        model_io.save(perfect_model(task, df), path)
        new = separable(task, seed=seed)
        data_path = tmp_path / f"{task}_{seed}.csv"
        new.to_csv(data_path, index=False)
        return str(path), str(data_path), new
    return make


def evaluate_json(*args) -> dict:
    res = run(["evaluate", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


# ── known answers ────────────────────────────────────────────────────────────────────────────────────────


def test_perfect_binary_model_gets_perfect_metrics(perfect):
    model, table, _ = perfect("binary", seed=3)
    m = evaluate_json(model, table)["metrics"]
    for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "mcc"):
        assert m[key] == pytest.approx(1.0), key
    assert m["log_loss"] < 1e-6 and m["brier"] < 1e-9 and m["ece"] < 1e-6
    assert m["positive_class"] == "case" and m["confusion_matrix"][0][1] == m["confusion_matrix"][1][0] == 0


def test_perfect_multiclass_model_gets_perfect_metrics(perfect):
    model, table, df = perfect("multiclass", seed=3)
    m = evaluate_json(model, table)["metrics"]
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc_ovr"):
        assert m[key] == pytest.approx(1.0), key
    assert m["log_loss"] < 1e-6 and m["ece"] < 1e-6
    counts = df["label"].value_counts()
    for row in m["per_class"]:
        assert row["precision"] == row["recall"] == row["f1"] == 1.0 and row["support"] == counts[row["class"]]
    assert np.array_equal(np.diag(np.diag(m["confusion_matrix"])), np.array(m["confusion_matrix"]))


def test_perfect_multilabel_model_gets_perfect_metrics(perfect):
    model, table, _ = perfect("multilabel", seed=3)
    m = evaluate_json(model, table)["metrics"]
    assert m["f1_micro"] == pytest.approx(1.0) and m["f1_macro"] == pytest.approx(1.0) and m["hamming_loss"] == 0.0
    assert [r["label"] for r in m["per_label"]] == ["lab0", "lab1", "lab2"]
    for row in m["per_label"]:
        assert row["roc_auc"] == pytest.approx(1.0) and row["average_precision"] == pytest.approx(1.0)


def test_perfect_regression_model_gets_perfect_metrics(perfect):
    model, table, _ = perfect("regression", seed=3)
    m = evaluate_json(model, table)["metrics"]
    assert m["rmse"] < 1e-9 and m["mae"] < 1e-9
    assert m["r2"] == pytest.approx(1.0) and m["pearson_r"] == pytest.approx(1.0) and m["spearman_r"] == 1.0


def test_a_wrong_model_is_scored_as_wrong(perfect, tmp_path):
    model, _, df = perfect("binary", seed=3)
    flipped = df.assign(label=np.where(df["label"] == "case", "ctrl", "case"))
    flipped.to_csv(tmp_path / "flipped.csv", index=False)
    m = evaluate_json(model, str(tmp_path / "flipped.csv"))["metrics"]
    assert m["accuracy"] == 0.0 and m["roc_auc"] == 0.0 and m["mcc"] == pytest.approx(-1.0) and m["log_loss"] > 10


# ── trained models: consistency with the library ─────────────────────────────────────────────────────────


@pytest.mark.parametrize("task", list(TARGETS))
def test_metrics_equal_metrics_compute_on_model_outputs(tmp_path, task):
    train_df = make_table(task=task, seed=1)
    train_df.to_csv(tmp_path / "train.csv", index=False)
    model = train(str(tmp_path / "train.csv"), TrainOptions(target=TARGETS[task], hidden=[8], epochs=5)).model
    model_io.save(model, tmp_path / "m.mlp")
    test_df = make_table(task=task, seed=2, n_patients=20)
    test_df.to_csv(tmp_path / "test.csv", index=False)
    doc = evaluate_json(str(tmp_path / "m.mlp"), str(tmp_path / "test.csv"), "--chunksize", "13")
    ds = data.Dataset.from_frame(test_df, data.Roles(target=TARGETS[task], group="patient_id", id="sample_id",
                                                     batch="batch"), task=task, classes=model.classes)
    out = model.predict_output(ds.X)
    proba = out[:, 1:2] if task == "binary" and out.shape[1] == 2 else out
    rule = model.decider  # the labels predict gives: the model's decision rule (argmax, or balanced)
    cut = (rule.threshold(task), rule.weights(task))
    expected = json.loads(json.dumps(metrics.compute(task, ds.y, proba, model.classes, *cut), default=float))
    assert doc["metrics"].keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert doc["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert doc["task"] == task and doc["n"] == len(test_df)
    main = metrics.main_metric_name(task)
    assert lib.main_metric(task, ds.y, proba, *cut) == pytest.approx(expected[main])


# ── groups and bootstrap ─────────────────────────────────────────────────────────────────────────────────


def test_by_batch_flags_the_batch_that_fails(perfect, tmp_path):
    model, _, df = perfect("binary", seed=3)
    broken = df.copy()
    b3 = broken["batch"] == "B3"
    broken.loc[b3, "label"] = np.where(broken.loc[b3, "label"] == "case", "ctrl", "case")
    broken.to_csv(tmp_path / "broken.csv", index=False)
    doc = evaluate_json(model, str(tmp_path / "broken.csv"), "--by", "batch")
    groups = {g["value"]: g for g in doc["groups"]}
    assert set(groups) == {"B1", "B2", "B3"} and doc["by"] == "batch"
    assert groups["B3"]["flagged"] and groups["B3"]["metrics"]["balanced_accuracy"] == 0.0
    assert not groups["B1"]["flagged"] and groups["B1"]["metrics"]["accuracy"] == 1.0
    assert sum(g["n"] for g in groups.values()) == len(df)
    assert any("'B3'" in w and "balanced accuracy" in w for w in doc["warnings"])
    res = run(["evaluate", model, str(tmp_path / "broken.csv"), "--by", "batch"])
    assert res.exit_code == 0 and "⚠ B3" in res.output and "By batch" in res.output
    assert_clean_error(run(["evaluate", model, str(tmp_path / "broken.csv"), "--by", "site"]), "--by", "'site'")


def test_a_column_not_in_the_table_is_named_as_train_names_it(perfect, tmp_path):
    """evaluate's --by and predict's --drop name a column the table lacks as train's roles do: the nearest name,
    the columns there are and how many (one helper: they had a wording of their own, without the hints)."""
    model, _, df = perfect("binary", seed=3)
    df.to_csv(tmp_path / "t.csv", index=False)
    res = run(["evaluate", model, str(tmp_path / "t.csv"), "--by", "bach"])
    others = [c for c in df.columns if not c.startswith("f")]  # --by's candidates: the columns other than features
    assert_clean_error(res, "--by column 'bach' not found (did you mean 'batch'?)",
                       "the columns other than the features: ", f"({len(others)} in all)", "'sample_id'")
    res = run(["predict", model, str(tmp_path / "t.csv"), "--drop", "sampel_id", "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "--drop column 'sampel_id' not found (did you mean 'sample_id'?)")
    assert not (tmp_path / "p.csv").exists()


def test_by_not_found_in_an_h5ad_file_lists_its_obs_columns_not_its_genes(tmp_path):
    """--by naming no column of an .h5ad file listed its genes among the "available columns" (309 of them, 5 obs
    columns): the candidates are the obs columns."""
    anndata = pytest.importorskip("anndata")
    genes = [f"G{j}" for j in range(30)]
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"cell_type": np.repeat(["T", "B"], 20), "donor_id": np.tile(["D1", "D2", "D3", "D4"], 10)},
                       index=[f"c{i}" for i in range(40)])
    adata = anndata.AnnData(rng.normal(size=(40, 30)).astype(np.float32), obs=obs, var=pd.DataFrame(index=genes))
    adata.write_h5ad(tmp_path / "cells.h5ad")
    model_io.save(train(str(tmp_path / "cells.h5ad"), TrainOptions(target=["cell_type"], hidden=[], epochs=1,
                                                                    folds=1)).model, tmp_path / "m.mlp")
    res = run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "cells.h5ad"), "--by", "donor"])
    assert_clean_error(res, "--by column 'donor' not found", "the columns other than the features: 'obs_names', "
                       "'cell_type', 'donor_id' (3 in all)")
    assert "'G0'" not in res.output


def test_bootstrap_intervals_resample_patients_and_are_seeded(tmp_path):
    train_df = make_table(task="binary", seed=1, signal=1.0)
    train_df.to_csv(tmp_path / "train.csv", index=False)
    model_io.save(train(str(tmp_path / "train.csv"), TrainOptions(hidden=[4], epochs=3)).model, tmp_path / "m.mlp")
    test_df = make_table(task="binary", seed=2, n_patients=24, signal=1.0)
    test_df.to_csv(tmp_path / "test.csv", index=False)
    args = [str(tmp_path / "m.mlp"), str(tmp_path / "test.csv"), "--bootstrap", "25", "--by", "batch"]
    a, b = evaluate_json(*args, "--seed", "1"), evaluate_json(*args, "--seed", "1")
    c = evaluate_json(*args, "--seed", "2")
    assert a["ci"] == b["ci"] and a["ci"] != c["ci"]
    assert a["bootstrap"] == {"resamples": 25, "unit": "patient_id groups", "n_units": 24, "seed": 1}
    for key in ("accuracy", "balanced_accuracy", "roc_auc", "log_loss", "brier"):
        low, high = a["ci"][key]
        assert low <= high and low <= a["metrics"][key] + 1e-9 and a["metrics"][key] - 1e-9 <= high, key
    assert all(g["ci"]["balanced_accuracy"] is None or len(g["ci"]["balanced_accuracy"]) == 2 for g in a["groups"])
    # a metric biased on resampled rows (ECE) can have an interval that misses its estimate: a note says so
    outside = [k for k, ci in a["ci"].items() if ci is not None and not ci[0] <= a["metrics"][k] <= ci[1]]
    said = [n for n in a["notes"] if "does not contain its estimate" in n]
    assert (said == []) == (outside == []) and all(k in said[0] for k in outside) if said or outside else True
    rows = evaluate_json(str(tmp_path / "m.mlp"), str(tmp_path / "test.csv"), "--bootstrap", "10", "--no-group")
    assert rows["bootstrap"]["unit"] == "rows" and rows["bootstrap"]["n_units"] == len(test_df)
    assert not [w for w in rows["warnings"] if w.startswith("--bootstrap:")]  # asked for
    # a table without the model's patient column: rows resampled, said only as "resamples of 72 rows"
    test_df.drop(columns="patient_id").to_csv(tmp_path / "nogroup.csv", index=False)
    lacking = evaluate_json(str(tmp_path / "m.mlp"), str(tmp_path / "nogroup.csv"), "--bootstrap", "10")
    assert lacking["bootstrap"]["unit"] == "rows"
    assert any(w.startswith("--bootstrap: the model was trained with patients in 'patient_id', which this table "
                            "lacks") and "--no-group" in w for w in lacking["warnings"]), lacking["warnings"]


def test_bootstrap_of_a_perfect_model_is_degenerate(perfect):
    model, table, _ = perfect("multiclass", seed=3)
    doc = evaluate_json(model, table, "--bootstrap", "15")
    assert doc["ci"]["accuracy"] == [1.0, 1.0] and doc["ci"]["f1_macro"] == [1.0, 1.0]


# ── outputs and errors ───────────────────────────────────────────────────────────────────────────────────


def test_rich_tables_by_default_and_json_file(perfect, tmp_path):
    model, table, _ = perfect("multiclass", seed=3)
    res = run(["evaluate", model, table, "-o", str(tmp_path / "metrics.json")])
    assert res.exit_code == 0, res.output
    for needle in ("Metrics on 90 samples", "balanced accuracy", "Per class", "Confusion matrix", "typeB"):
        assert needle in res.output, needle
    assert json.loads((tmp_path / "metrics.json").read_text()) == evaluate_json(model, table)
    assert_clean_error(run(["evaluate", model, table, "-o", str(tmp_path / "nodir" / "m.json")]), "does not exist")
    for name in ("m.csv", "m.yaml", "m.toml"):  # another format's name: the JSON would have been written under it
        res = run(["evaluate", model, table, "-o", str(tmp_path / name)])
        assert_clean_error(res, f"evaluate -o writes the JSON document, not a {name[1:]} file", code=2)
        assert not (tmp_path / name).exists()


@pytest.mark.parametrize("task,needles", [
    ("binary", ["positive class 'case'", "ROC AUC", "Brier score", "MCC", "Confusion matrix"]),
    ("multilabel", ["Per label", "Hamming loss", "F1 micro", "average precision"]),
    ("regression", ["RMSE", "R²", "Spearman r"]),
])
def test_rich_tables_for_every_task(perfect, task, needles):
    model, table, _ = perfect(task, seed=3)
    res = run(["evaluate", model, table, "--by", "batch", "--bootstrap", "5"])
    assert res.exit_code == 0, res.output
    for needle in [*needles, "95 % CI", "By batch"]:
        assert needle in res.output, needle


def test_labels_are_checked_against_the_model(perfect, tmp_path):
    model, _, df = perfect("multiclass", seed=3)
    odd = df.copy()
    odd.loc[[4, 5], "label"] = "typeZ"
    odd.to_csv(tmp_path / "odd.csv", index=False)
    assert_clean_error(run(["evaluate", model, str(tmp_path / "odd.csv")]), "'typeZ'", "does not know")
    df.drop(columns=["label"]).to_csv(tmp_path / "unlabelled.csv", index=False)
    assert_clean_error(run(["evaluate", model, str(tmp_path / "unlabelled.csv")]), "no target column", "mlpcli predict")
    df.rename(columns={"label": "subtype"}).to_csv(tmp_path / "renamed.csv", index=False)
    doc = evaluate_json(model, str(tmp_path / "renamed.csv"), "--target", "subtype")
    assert doc["metrics"]["accuracy"] == 1.0
    holes = df.copy()
    holes.loc[3, "label"] = np.nan
    holes.to_csv(tmp_path / "holes.csv", index=False)
    assert_clean_error(run(["evaluate", model, str(tmp_path / "holes.csv")]), "missing values")


def test_stdin_fill_missing_and_shift_in_evaluate(perfect, tmp_path):
    model, _, df = perfect("binary", seed=3)
    text = df.drop(columns=["f05"]).to_csv(index=False)
    res = CliRunner().invoke(cli, ["evaluate", model, "-", "--json"], input=text)
    assert_clean_error(res, "'f05'", "--fill-missing")
    res = CliRunner().invoke(cli, ["evaluate", model, "-", "--json", "--fill-missing", "mean", "--max-missing", "0.2",
                                   "--shift-report", str(tmp_path / "shift.csv")], input=text)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["metrics"]["accuracy"] == 1.0 and doc["shift"]["level"] in ("none", "mild")
    report = pd.read_csv(tmp_path / "shift.csv")
    assert report.loc[report["feature"] == "f05", "filled"].item()


def test_bootstrap_in_processes_equals_serial_and_by_any_column(perfect):
    model_path, _, df = perfect("binary", seed=4)
    model = model_io.load(model_path)
    noisy = df.copy()
    noisy.loc[::7, "label"] = np.where(noisy.loc[::7, "label"] == "case", "ctrl", "case")
    noisy["site"] = np.where(noisy.index % 2 == 0, "Leeds", "Turku")
    serial = lib.evaluate(model, noisy, bootstrap=12, n_jobs=1, by="site")
    parallel = lib.evaluate(model, noisy, bootstrap=12, n_jobs=2, by="site")
    assert serial.ci == parallel.ci and serial.ci["accuracy"][0] < serial.ci["accuracy"][1]
    assert [g["value"] for g in serial.groups] == ["Leeds", "Turku"] and serial.groups == parallel.groups


def test_f1_macro_leaves_out_classes_neither_present_nor_predicted():
    """A --by group (or a small cohort) without class C, where C is never predicted, had C's F1 counted as 0:
    a perfect prediction of the other classes scored f1_macro 0.667. A class that is predicted but absent
    still counts (its F1 is 0)."""
    from mlpcli import metrics

    y = np.array([0, 0, 1, 1])
    onehot = np.eye(3)[y] * 0.9 + 0.05
    assert metrics.compute("multiclass", y, onehot, ["a", "b", "c"])["f1_macro"] == pytest.approx(1.0)
    wrong = np.eye(3)[[0, 0, 1, 2]] * 0.9 + 0.05  # c predicted once, never true
    assert metrics.compute("multiclass", y, wrong, ["a", "b", "c"])["f1_macro"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    Y = np.array([[1, 0], [0, 0], [1, 0]])  # label 2 never true, never predicted
    assert metrics.compute("multilabel", Y, np.where(Y == 1, 0.9, 0.1), ["x", "y"])["f1_macro"] == pytest.approx(1.0)
    assert metrics.compute("multilabel", np.zeros((2, 2)), np.full((2, 2), 0.1), ["x", "y"])["f1_macro"] is None


def test_bootstrap_resamples_drawn_a_batch_at_a_time_are_those_of_one_draw(perfect, monkeypatch):
    """The resamples were drawn at once, (resamples, units) int64: 800 MB for 1,000 resamples of 100,000
    cells. Drawn a bounded batch at a time now, from the same generator in the same order: the same intervals."""
    from mlpcli.predict import bootstrap

    model_path, _, df = perfect("binary", seed=4)
    model = model_io.load(model_path)
    noisy = df.copy()
    noisy.loc[::5, "label"] = np.where(noisy.loc[::5, "label"] == "case", "ctrl", "case")
    whole = lib.evaluate(model, noisy, bootstrap=30, n_jobs=1)
    monkeypatch.setattr(bootstrap, "BOOTSTRAP_BATCH_BYTES", 8 * len(noisy) * 3)  # 3 resamples per batch
    batched = lib.evaluate(model, noisy, bootstrap=30, n_jobs=1)
    assert batched.ci == whole.ci and whole.ci["accuracy"][0] < whole.ci["accuracy"][1]


def test_evaluate_refuses_dropping_the_column_it_scores_against(tiny, tmp_path):
    """`evaluate --drop label` read the labels from 'label' all the same and scored against them."""
    model, data = tiny["multiclass"]
    assert_clean_error(run(["evaluate", model, data, "--drop", "label"]), "--drop", "'label'", code=2)
    # predict needs no labels: dropping the column is fine, and it is not reported as an ignored target
    res = run(["predict", model, data, "--drop", "label", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "ignored the target column" not in res.output


def test_evaluate_says_f1_macro_counts_an_absent_class_it_predicted_as_zero(three_classes):
    """A cohort without class C in which the model still calls some samples C: F1 macro (scikit-learn's
    convention) counts C as 0 and sat at 0.59 beside a balanced accuracy of 0.83 with nothing to say why."""
    d, df = three_classes
    cohort = df[df.label != "typeC"].copy()
    cohort.loc[cohort.index[:5], "f02"] += 8.0  # five samples pushed towards class C: predicted C, never true
    cohort.to_csv(d / "no_c.csv", index=False)
    r = run(["evaluate", str(d / "m.mlp"), str(d / "no_c.csv"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    per_class = {row["class"]: row for row in doc["metrics"]["per_class"]}
    called = doc["metrics"]["confusion_matrix"][0][2] + doc["metrics"]["confusion_matrix"][1][2]
    assert called >= 1 and per_class["typeC"]["f1"] == 0.0 and per_class["typeC"]["support"] == 0
    note = next(n for n in doc["notes"] if "absent from the table" in n)
    assert f"F1 macro counts 'typeC' (predicted for {called:,} sample" in note and "as 0" in note
    # never called: no such clause (its F1 is left out of the mean)
    df[df.label != "typeC"].to_csv(d / "no_c_clean.csv", index=False)
    doc = json.loads(run(["evaluate", str(d / "m.mlp"), str(d / "no_c_clean.csv"), "--json"]).stdout)
    if doc["metrics"]["confusion_matrix"][0][2] + doc["metrics"]["confusion_matrix"][1][2] == 0:
        assert not any("F1 macro counts" in n for n in doc["notes"])


def test_evaluate_says_its_metrics_are_rough_when_a_class_has_few_samples_as_train_does(three_classes):
    """Six samples of class C (two patients): its recall, precision and AUC, and a balanced accuracy that one
    patient more or less right moves by 0.167, were given without the caveat train adds to its held-out metrics."""
    d, df = three_classes
    few = pd.concat([df[df.label == "typeA"].head(30), df[df.label == "typeB"].head(30),
                     df[df.label == "typeC"].head(6)])
    few.to_csv(d / "few_c.csv", index=False)
    doc = evaluate_json(str(d / "m.mlp"), str(d / "few_c.csv"))
    caveat = doc["metrics_caveat"]
    assert caveat == ("one patient of class 'typeC' (2 patients, 6 samples scored) more or less right moves the "
                      "balanced accuracy by 0.167")
    assert f"rough metrics: 66 samples, and {caveat}" in doc["notes"]
    text = " ".join(run(["evaluate", str(d / "m.mlp"), str(d / "few_c.csv")]).output.split())
    assert "rough metrics: 66 samples" in text
    whole = evaluate_json(str(d / "m.mlp"), str(d / "train.csv"))  # 60 patients a class: not rough
    assert whole["metrics_caveat"] is None and not any(n.startswith("rough") for n in whole["notes"])
