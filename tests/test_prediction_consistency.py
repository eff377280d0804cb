"""Prediction and evaluation agree with themselves: the same values give the same outputs whatever the file
layout, evaluate's tables name the right classes and groups, and no output column hides another."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from tables import make_table


@pytest.fixture(scope="module")
def twelve_classes(tmp_path_factory):
    """A 12-class model (more than 10: class indices sorted as text put 10 and 11 before 2) and a cohort
    with a numeric `age` column."""
    tmp = tmp_path_factory.mktemp("k12")
    train = make_table(n_classes=12, n_patients=96, per_patient=3, n_features=14, seed=0, signal=3.0)
    train.to_csv(tmp / "train.csv", index=False)
    model = tmp / "m.mlp"
    res = run(["train", str(tmp / "train.csv"), "-o", str(model), "--hidden", "", "--epochs", "40", "-q"])
    assert res.exit_code == 0, res.output
    cohort = make_table(n_classes=12, n_patients=96, per_patient=3, n_features=14, seed=1, signal=3.0)
    cohort["age"] = np.random.default_rng(2).integers(30, 80, len(cohort))
    cohort.to_csv(tmp / "cohort.csv", index=False)
    return tmp, model


def test_evaluate_coverage_tables_name_the_right_class_and_bin_like_the_metrics(twelve_classes):
    """Per-class coverage paired class indices sorted as text (0, 1, 10, 11, 2, ...) with names in numeric
    order: with 11 classes or more, rows were labelled with another class's figures. --by on a numeric column
    binned the metrics into quartiles but left the coverage and OOD tables one group per value."""
    tmp, model = twelve_classes
    predicted = tmp / "pred.csv"
    assert run(["predict", str(model), str(tmp / "cohort.csv"), "--coverage", "0.9", "--ood", "-o", str(predicted),
                "-q"]).exit_code == 0
    res = run(["evaluate", str(model), str(tmp / "cohort.csv"), "--coverage", "0.9", "--ood", "--by", "age",
               "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    cohort, pred = pd.read_csv(tmp / "cohort.csv"), pd.read_csv(predicted, keep_default_na=False)
    covered = np.array([label in str(s).split("|") for label, s in zip(cohort["label"], pred["pred_set"])])
    for row in doc["trust"]["sets"]["per_class"]:
        mine = (cohort["label"] == row["value"]).to_numpy()
        assert row["n"] == mine.sum(), row
        assert row["coverage"] == pytest.approx(covered[mine].mean()), row
    metric_groups = sorted(g["value"] for g in doc["groups"])
    assert len(metric_groups) == 4 and all(v.startswith("Q") for v in metric_groups)
    assert sorted(r["value"] for r in doc["trust"]["sets"]["by"]) == metric_groups
    assert sorted(r["value"] for r in doc["trust"]["ood"]["by"]) == metric_groups


def test_a_target_named_set_with_coverage_is_a_clear_error(tmp_path):
    """A target named "set" is predicted as pred_set, the column --coverage adds: one replaced the other
    (the library returned the set string as the label; the CLI failed with an internal error)."""
    table = make_table(task="binary", n_patients=30, seed=0).rename(columns={"label": "set"})
    table.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--target", "set", "-o", str(model), "--hidden", "4", "--epochs",
                "5", "-q"]).exit_code == 0
    res = run(["predict", str(model), str(tmp_path / "t.csv"), "--coverage", "0.9", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 2 and "two columns named 'pred_set'" in res.output
    assert not (tmp_path / "p.csv").exists()
    assert run(["predict", str(model), str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv"), "-q"]).exit_code == 0


def test_csc_and_csr_h5ad_of_the_same_values_predict_the_same(tmp_path):
    """A CSC .h5ad (and a 10x matrix) is read whole, and was rounded to float32 on the way, where a CSR one is
    read by row ranges in float64: non-integer values gave other probabilities and, through APS's random
    draw, other prediction sets. Values are now rounded only when that changes nothing (counts)."""
    ad = pytest.importorskip("anndata")
    import scipy.sparse as sp

    train = make_table(n_patients=40, seed=3)
    train.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "train.csv"), "-o", str(model), "--hidden", "8", "--epochs", "10",
                "-q"]).exit_code == 0
    cohort = make_table(n_patients=40, seed=4)
    genes = [c for c in cohort.columns if c.startswith("f")]
    X = cohort[genes].to_numpy(np.float64) + 1e-9  # not float32 numbers
    obs = cohort[["sample_id", "batch"]].set_index("sample_id")
    outputs = {}
    for kind, matrix in (("csr", sp.csr_matrix(X)), ("csc", sp.csc_matrix(X)), ("dense", X)):
        path = tmp_path / f"{kind}.h5ad"
        ad.AnnData(X=matrix, obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(path)
        out = tmp_path / f"{kind}.csv"
        res = run(["predict", str(model), str(path), "--coverage", "0.9", "--ood", "-o", str(out), "-q"])
        assert res.exit_code == 0, res.output
        outputs[kind] = pd.read_csv(out, keep_default_na=False)
    pd.testing.assert_frame_equal(outputs["csc"], outputs["csr"])
    pd.testing.assert_frame_equal(outputs["dense"], outputs["csr"])


def test_evaluate_says_when_the_level_makes_every_set_hold_a_class(tmp_path):
    """A model with too few held-out rows for the level puts some class in every set; predict said so,
    evaluate printed coverage 1.000 without a word."""
    train = make_table(n_patients=20, per_patient=2, seed=5)
    train.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--folds", "1", "-o", str(model), "--hidden", "4", "--epochs",
                "5", "-q", "--no-calibrate"]).exit_code == 0
    res = run(["evaluate", str(model), str(tmp_path / "t.csv"), "--coverage", "0.99", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["trust"]["sets"]["mean_set_size"] == 3.0
    assert any("needs more held-out patients than the model has, so every set includes" in n for n in doc["notes"])


def test_predict_labels_ties_as_evaluate_does(tmp_path):
    """Two classes whose probabilities differ by less than float32's resolution: predict took the label from
    the probabilities rounded for writing (a tie: the lower class), evaluate from the float64 ones."""
    from mlpcli import data, model_io
    from mlpcli.engine import MLP
    from mlpcli.model_io import Member, Model

    cohort = make_table(n_patients=20, seed=6)
    feats = [c for c in cohort.columns if c.startswith("f")]
    pre = data.Preprocessor().fit(cohort[feats].to_numpy(dtype=float), feats)
    # two members: typeA and typeB tie in one, typeB is one float32 step ahead in the other, so their mean
    # (float64) has typeB ahead by half a step, which rounding the written probabilities to float32 can undo
    members = []
    for b in ([0.0, 0.0, -10.0], [0.0, 1e-7, -10.0]):
        net = MLP(len(feats), [], 3, dtype="float32")
        net.parameters()["dense0.W"][...] = 0.0
        net.parameters()["dense0.b"][...] = b
        members.append(Member(net, pre, None))
    model = Model(members=members, preprocessor=pre, task="multiclass", classes=["typeA", "typeB", "typeC"],
                  feature_names=feats, target_names=["label"], loss={"name": "ce", "params": {}},
                  roles={"target": ["label"], "group": "patient_id", "id": "sample_id", "batch": "batch"},
                  split={"batch_counts_train": cohort["batch"].value_counts().to_dict()})
    P = model.predict_output(cohort[feats].to_numpy(dtype=float))
    assert (P[:, 1] > P[:, 0]).all() and (P[:, 1].astype(np.float32) == P[:, 0].astype(np.float32)).any()
    model_io.save(model, tmp_path / "m.mlp")
    cohort.to_csv(tmp_path / "c.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "c.csv"), "-o", str(tmp_path / "p.csv"), "-q"])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(tmp_path / "p.csv")
    assert (pred["prob_typeA"] == pred["prob_typeB"]).any()  # equal as written, for some rows at least
    assert (pred["pred_label"] == "typeB").all()
