"""`mlpcli evaluate --novel-labels`: a labelled cohort holding a class the model never saw (a new cell type) is
scored on its known rows, and the unseen class's rows are reported apart: how many are flagged ood or given an
empty or multi-class prediction set ("caught", as benchmarks/bench_conformal.py counts a held-out class), and what
they are taken for."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cli_helpers import assert_clean_error, assert_same_figures, run
from tables import make_table

# a single network (--folds 1) has few held-out rows: its smallest ood p-value is about 1/8, so flag below 0.3; at
# level 0.6 the unseen class's samples are caught by the flags and the sets in part, each some the other misses
TRUST = ["--coverage", "0.6", "--ood", "--ood-alpha", "0.3"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A model of typeA / typeB, and a test table of all three types (typeC unseen), the known rows alone and
    the typeC rows alone."""
    tmp = tmp_path_factory.mktemp("novel")
    df = make_table("multiclass", n_patients=36, per_patient=2, n_features=8, seed=3)
    in_training = df["patient_id"].isin([f"P{p:03d}" for p in range(24)]) & (df["label"] != "typeC")
    df[in_training].to_csv(tmp / "train.csv", index=False)
    test = df[~in_training]
    paths = {"model": str(tmp / "m.mlp"), "test": str(tmp / "test.csv"), "known": str(tmp / "known.csv"),
             "novel": str(tmp / "novel.csv")}
    test.to_csv(paths["test"], index=False)
    test[test["label"] != "typeC"].to_csv(paths["known"], index=False)
    test[test["label"] == "typeC"].to_csv(paths["novel"], index=False)
    res = run(["train", str(tmp / "train.csv"), "-o", paths["model"], "--epochs", "3", "--folds", "1",
               "--no-group", "-q"])
    assert res.exit_code == 0, res.output
    paths["tmp"] = tmp
    return paths


def _json(*args) -> dict:
    res = run(["evaluate", *args, "--json", "-q"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_without_the_flag_the_error_names_it(cohort):
    res = run(["evaluate", cohort["model"], cohort["test"]])
    assert_clean_error(res, "labels the model does not know: 'typeC'", "--novel-labels scores the other rows")
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1


def test_metrics_are_those_of_the_known_rows_alone(cohort):
    options = [*TRUST, "--by", "batch", "--bootstrap", "50"]
    mixed = _json(cohort["model"], cohort["test"], "--novel-labels", *options)
    known = _json(cohort["model"], cohort["known"], *options)
    assert mixed["n"] == known["n"] == int((pd.read_csv(cohort["known"])["label"] != "typeC").sum())
    for key in ("metrics", "ci", "groups", "trust", "calibration", "seen_in_training", "bootstrap"):
        assert_same_figures(mixed[key], known[key], where=key)
    # the shift check is of the known rows too (the same sums, in other blocks: float32 rounding apart)
    assert mixed["shift"]["n"] == known["shift"]["n"] == mixed["n"]
    for a, b in zip(mixed["shift"]["most_shifted"], known["shift"]["most_shifted"]):
        assert a["feature"] == b["feature"] and a["mean_shift_sd"] == pytest.approx(b["mean_shift_sd"], abs=1e-5)
    assert "novel" not in known
    assert any("kept apart" in n for n in mixed["notes"])


def test_novel_shares_are_predicts_flags_and_sets(cohort):
    doc = _json(cohort["model"], cohort["test"], "--novel-labels", *TRUST)
    out = cohort["tmp"] / "p.csv"
    res = run(["predict", cohort["model"], cohort["test"], *TRUST, "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(out).merge(pd.read_csv(cohort["test"])[["sample_id", "label"]], on="sample_id")
    rows = pred[pred["label"] == "typeC"]
    ood, unsure = rows["ood"].astype(bool).to_numpy(), (rows["set_size"] != 1).to_numpy()
    novel = doc["novel"]
    assert novel["n"] == len(rows) > 0 and [r["label"] for r in novel["labels"]] == ["typeC"]
    row = novel["labels"][0]
    assert row["n"] == len(rows)
    assert row["ood"] == pytest.approx(ood.mean())
    assert row["empty_set"] == pytest.approx((rows["set_size"] == 0).mean())
    assert row["multi_class_set"] == pytest.approx((rows["set_size"] > 1).mean())
    assert row["empty_or_multi_set"] == pytest.approx(unsure.mean())
    assert row["caught"] == pytest.approx((ood | unsure).mean()) and row["n_caught"] == int((ood | unsure).sum())
    assert max(ood.mean(), unsure.mean()) < row["caught"] < min(1.0, ood.mean() + unsure.mean())  # either, once
    counts = rows["pred_label"].value_counts()
    top = sorted(counts.index, key=lambda c: (-counts[c], c))[:3]
    assert [p["class"] for p in row["predicted_as"]] == top
    assert [p["n"] for p in row["predicted_as"]] == [int(counts[c]) for c in top]
    assert sum(p["share"] for p in row["predicted_as"]) == pytest.approx(1.0)
    assert novel["caught_by"] == ["ood", "empty_or_multi_set"] and novel["ood_alpha"] == 0.3
    # the table a user reads
    res = run(["evaluate", cohort["model"], cohort["test"], "--novel-labels", *TRUST])
    assert res.exit_code == 0, res.output
    assert "Labels the model does not know" in res.output and f"{row['caught']:.1%}" in res.output


def test_without_trust_options_the_section_says_what_to_add(cohort):
    doc = _json(cohort["model"], cohort["test"], "--novel-labels")
    row = doc["novel"]["labels"][0]
    assert row["ood"] is None and row["caught"] is None and row["empty_or_multi_set"] is None
    assert row["predicted_as"]
    assert any("add --coverage 0.9 and --ood" in n for n in doc["notes"])


def test_streaming_gives_the_same_report(cohort):
    whole = _json(cohort["model"], cohort["test"], "--novel-labels", *TRUST, "--by", "batch")
    pieces = _json(cohort["model"], cohort["test"], "--novel-labels", *TRUST, "--by", "batch", "--chunksize", "7")
    for key in whole:
        if key != "shift":  # (its sums are float32 per piece, as without the option)
            assert whole[key] == pieces[key], key


def test_a_table_of_unknown_labels_alone(cohort):
    res = run(["evaluate", cohort["model"], cohort["novel"], "--novel-labels", *TRUST])
    assert res.exit_code == 0, res.output
    assert "no metric can be computed" in res.output and "Labels the model does not know" in res.output
    doc = _json(cohort["model"], cohort["novel"], "--novel-labels", *TRUST)
    assert doc["n"] == 0 and doc["metrics"] == {} and doc["trust"] is None
    assert doc["novel"]["n"] == len(pd.read_csv(cohort["novel"]))
    mixed = _json(cohort["model"], cohort["test"], "--novel-labels", *TRUST)
    assert doc["novel"] == mixed["novel"]
    # no risk–coverage curve to draw: said, and nothing written
    plot = cohort["tmp"] / "rc.png"
    assert_clean_error(run(["evaluate", cohort["model"], cohort["novel"], "--novel-labels", "--plot", str(plot)]),
                       "--plot", "no sample")
    assert not plot.exists()


def test_a_table_of_known_labels_alone(cohort):
    doc = _json(cohort["model"], cohort["known"], "--novel-labels")
    assert doc["novel"]["n"] == 0 and doc["n"] == len(pd.read_csv(cohort["known"]))
    assert any("holds a label the model knows" in n for n in doc["notes"])


def test_predict_and_evaluate_json_always_hold_a_trust_key(tmp_path):
    """Without --coverage or --ood the key was left out, where scripts reading the document expect it (null)."""
    from tables import make_table

    make_table("multiclass", n_patients=12, per_patient=2, n_features=4).to_csv(tmp_path / "t.csv", index=False)
    assert run(["train", str(tmp_path / "t.csv"), "--folds", "2", "--epochs", "2", "-q", "-o",
                str(tmp_path / "m.mlp")]).exit_code == 0
    doc = json.loads(run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "--json"]).stdout)
    assert "trust" in doc
    doc = json.loads(run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv"),
                          "--json"]).stdout)
    assert "trust" in doc and doc["trust"] is None
