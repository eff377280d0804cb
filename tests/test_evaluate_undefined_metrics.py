"""`mlpcli evaluate` on cohorts that lack a class: per-class scores of 0/0 undefined rather than zero, one-vs-rest
AUC over the classes present, a binary ECE that does not move with --threshold, a bootstrap of one patient, --by
of distinct values, and titles that stay on one line."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from mlpcli import metrics
from mlpcli.calibration import calibration_report
from cli_helpers import run
from test_evaluate import perfect  # noqa: F401 - the fixture


def strict_json(text: str) -> dict:
    def refuse(name):
        raise AssertionError(f"{name} in the JSON document")
    return json.loads(text, parse_constant=refuse)


def evaluate_json(*args) -> dict:
    res = run(["evaluate", *args, "--json"])
    assert res.exit_code == 0, res.output
    return strict_json(res.stdout)


# ── metrics.compute on classes a cohort lacks ────────────────────────────────────────────────────────────


def test_per_class_scores_that_are_0_over_0_are_undefined_not_zero():
    """A class absent from the table showed recall 0.000 and F1 0.000 in the per-class table although F1 macro
    left it out; a class never predicted showed precision 0.000. Both are 0/0: undefined (—, null)."""
    y = np.array([0, 0, 1, 1, 0, 1])
    P = np.array([[.8, .1, .1], [.6, .3, .1], [.2, .7, .1], [.6, .3, .1], [.5, .4, .1], [.1, .8, .1]])  # c: never
    rows = {r["class"]: r for r in metrics.compute("multiclass", y, P, ["a", "b", "c"])["per_class"]}
    assert rows["c"]["precision"] is None and rows["c"]["recall"] is None and rows["c"]["f1"] is None
    assert rows["c"]["support"] == 0 and rows["c"]["roc_auc"] is None
    assert rows["b"]["recall"] == pytest.approx(2 / 3) and rows["b"]["precision"] == 1.0
    assert rows["a"]["precision"] == pytest.approx(0.75)
    never = np.array([[.8, .1, .1], [.6, .3, .1], [.2, .1, .7], [.3, .3, .4], [.5, .4, .1], [.1, .2, .7]])  # b never
    rows = {r["class"]: r for r in metrics.compute("multiclass", y, never, ["a", "b", "c"])["per_class"]}
    assert rows["b"]["precision"] is None and rows["b"]["recall"] == 0.0 and rows["b"]["f1"] == 0.0
    assert rows["c"]["precision"] == 0.0 and rows["c"]["recall"] is None and rows["c"]["f1"] == 0.0


def test_binary_precision_and_recall_without_positives_are_undefined():
    """A cohort of controls alone scored recall 0.000 (and, with no positive call, precision and F1 0.000): a
    model that misses every positive, when there was none to miss."""
    y = np.zeros(4, dtype=int)
    m = metrics.compute("binary", y, np.array([[0.1], [0.2], [0.3], [0.4]]), ["ctrl", "case"])
    assert m["precision"] is None and m["recall"] is None and m["f1"] is None and m["accuracy"] == 1.0
    m = metrics.compute("binary", y, np.array([[0.1], [0.6], [0.3], [0.4]]), ["ctrl", "case"])
    assert m["precision"] == 0.0 and m["recall"] is None and m["f1"] == 0.0  # a false positive: defined
    yb, p = np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.6, 0.9])
    m = metrics.compute("binary", yb, p[:, None], ["ctrl", "case"])
    pred = (p >= 0.5).astype(int)
    assert m["precision"] == skm.precision_score(yb, pred) and m["recall"] == skm.recall_score(yb, pred)
    assert m["f1"] == skm.f1_score(yb, pred)


def test_roc_auc_ovr_is_the_mean_over_the_classes_present():
    """A cohort without one subtype had no ROC AUC at all (—); the one-vs-rest AUC of every class it holds is
    defined, and their mean is scikit-learn's figure when every class is present."""
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), size=60)
    y = np.where(rng.random(60) < 0.6, P.argmax(axis=1), rng.integers(0, 4, 60))
    y[:4] = [0, 1, 2, 3]
    m = metrics.compute("multiclass", y, P, list("abcd"))
    assert m["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, P, multi_class="ovr"), abs=1e-12)
    assert [r["roc_auc"] for r in m["per_class"]] == pytest.approx([skm.roc_auc_score(y == k, P[:, k]) for k in range(4)])
    keep = y != 2
    m = metrics.compute("multiclass", y[keep], P[keep], list("abcd"))
    expected = np.mean([skm.roc_auc_score(y[keep] == k, P[keep, k]) for k in (0, 1, 3)])
    assert m["roc_auc_ovr"] == pytest.approx(expected, abs=1e-12) and m["per_class"][2]["roc_auc"] is None
    one = y == 1
    assert metrics.compute("multiclass", y[one], P[one], list("abcd"))["roc_auc_ovr"] is None
    tied = np.round(P, 1)  # ties count 1/2, as in scikit-learn
    m = metrics.compute("multiclass", y, tied, list("abcd"))
    assert [r["roc_auc"] for r in m["per_class"]] == pytest.approx(
        [skm.roc_auc_score(y == k, tied[:, k]) for k in range(4)], abs=1e-12)


def test_binary_ece_is_top_label_and_does_not_move_with_the_threshold():
    """The binary ECE took the confidence of the class --threshold picks, so the same probabilities scored
    0.043 at 0.5 and 0.068 at 0.3: it judged the threshold, not the calibration. It is now the top-label ECE
    the training summary reports (calibration_report, on the same probabilities)."""
    rng = np.random.default_rng(0)
    p = rng.random(300)
    y = (rng.random(300) < p).astype(int)
    eces = [metrics.compute("binary", y, p[:, None], ["a", "b"], threshold=t)["ece"] for t in (0.5, 0.3, 0.7)]
    assert eces[0] == eces[1] == eces[2]
    logits = np.log(p) - np.log1p(-p)
    assert eces[0] == pytest.approx(calibration_report(logits[:, None], y, "sigmoid", 1.0).ece_before, abs=1e-12)
    conf, correct = np.maximum(p, 1 - p), (p >= 0.5) == y  # by hand: 15 equal-width bins
    bins = np.minimum((conf * 15).astype(int), 14)
    by_hand = sum((bins == b).mean() * abs(correct[bins == b].mean() - conf[bins == b].mean())
                  for b in range(15) if (bins == b).any())
    assert eces[0] == pytest.approx(by_hand, abs=1e-12)


# ── the command ──────────────────────────────────────────────────────────────────────────────────────────


def test_evaluate_on_a_cohort_without_a_class_says_what_is_undefined(perfect, tmp_path):  # noqa: F811
    model, _, df = perfect("multiclass", seed=3)
    df[df["label"] != "typeC"].to_csv(tmp_path / "no_c.csv", index=False)
    doc = evaluate_json(model, str(tmp_path / "no_c.csv"), "--by", "batch")
    m = doc["metrics"]
    assert m["roc_auc_ovr"] == pytest.approx(1.0) and all(g["metrics"]["roc_auc_ovr"] is not None for g in doc["groups"])
    row = next(r for r in m["per_class"] if r["class"] == "typeC")
    assert row["recall"] is None and row["precision"] is None and row["f1"] is None and row["support"] == 0
    note = [n for n in doc["notes"] if "absent from the table" in n]
    assert len(note) == 1 and "'typeC'" in note[0] and "mean over the 2 classes present" in note[0]
    res = run(["evaluate", model, str(tmp_path / "no_c.csv")])
    assert res.exit_code == 0 and "absent from the table ('typeC')" in res.output


def test_evaluate_on_controls_alone_names_the_undefined_metrics(perfect, tmp_path):  # noqa: F811
    model, _, df = perfect("binary", seed=3)
    df[df["label"] == "ctrl"].to_csv(tmp_path / "ctrl.csv", index=False)
    doc = evaluate_json(model, str(tmp_path / "ctrl.csv"))
    m = doc["metrics"]
    assert m["accuracy"] == 1.0 and m["recall"] is None and m["precision"] is None and m["roc_auc"] is None
    assert any("holds class 'ctrl' alone" in n and "recall" in n for n in doc["notes"])


def test_table_titles_stay_on_one_line(perfect, tmp_path):  # noqa: F811
    """rich wrapped a table's title to the table's width: "Metrics on 168 samples (multiclass," above
    "4 classes)"; and one row was "1 samples"."""
    model, _, df = perfect("multiclass", seed=3)
    df.head(1).to_csv(tmp_path / "one.csv", index=False)
    res = run(["evaluate", model, str(tmp_path / "one.csv")], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "Metrics on 1 sample (multiclass, 3 classes)" in lines
    assert "Confusion matrix (rows: true class, columns: predicted)" in lines


def test_bootstrap_of_one_patient_gives_no_interval(perfect, tmp_path):  # noqa: F811
    """A table of one patient's samples got "95 % CI 1.000 – 1.000" for every metric: every resample of one
    patient is the same rows, an interval of width 0 that reads as certainty."""
    model, _, df = perfect("multiclass", seed=3)
    one = df[df["patient_id"] == df["patient_id"].iloc[0]]
    assert len(one) > 1
    one.to_csv(tmp_path / "one_patient.csv", index=False)
    doc = evaluate_json(model, str(tmp_path / "one_patient.csv"), "--bootstrap", "20")
    assert doc["bootstrap"]["n_units"] == 1 and doc["ci"] and all(ci is None for ci in doc["ci"].values())
    assert any("one patient_id group" in n and "no interval" in n for n in doc["notes"])
    two = df[df["patient_id"].isin(df["patient_id"].unique()[:3])]
    two.to_csv(tmp_path / "three_patients.csv", index=False)
    doc = evaluate_json(model, str(tmp_path / "three_patients.csv"), "--bootstrap", "20")
    assert doc["bootstrap"]["n_units"] == 3 and doc["ci"]["log_loss"] is not None  # as before
    assert any("with 3 patient_id groups the intervals are rough" in n for n in doc["notes"]), doc["notes"]


def test_by_a_column_of_distinct_text_values_is_refused(perfect, tmp_path):  # noqa: F811
    """`--by sample_id` made one group per sample: a table of metrics on one sample each (scikit-learn called
    once per sample: minutes on 100,000 cells) that says nothing about groups. Patients (several samples
    each) are still groups."""
    model, data_path, df = perfect("multiclass", seed=3)
    df.assign(sample_id=[f"S{i}" for i in range(len(df))]).to_csv(tmp_path / "ids.csv", index=False)
    res = run(["evaluate", model, str(tmp_path / "ids.csv"), "--by", "sample_id"])
    assert res.exit_code == 2 and f"--by sample_id: every one of its {len(df):,} values is different" in res.output
    assert evaluate_json(model, data_path, "--by", "patient_id")["groups"]


def test_each_class_has_its_average_precision_as_scikit_learn_computes_it():
    """A rare class's ROC AUC read 0.979 where its average precision was 0.564: the per-class table now gives both,
    AP as scikit-learn's average_precision_score (ties included), None for a class absent from the rows."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        n, k = int(rng.integers(10, 200)), int(rng.integers(3, 6))
        P = rng.dirichlet(np.ones(k), size=n).round(int(rng.integers(1, 4)))  # rounded: ties
        P = np.clip(P, 1e-6, None)
        P /= P.sum(axis=1, keepdims=True)
        y = rng.integers(0, k - 1, size=n)  # the last class never occurs
        rows = metrics.compute("multiclass", y, P, [f"c{j}" for j in range(k)])["per_class"]
        for j, row in enumerate(rows[:-1]):
            if (y == j).any():
                assert row["average_precision"] == pytest.approx(skm.average_precision_score(y == j, P[:, j]),
                                                                 abs=1e-12)
        assert rows[-1]["average_precision"] is None
