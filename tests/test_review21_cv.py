"""Review 21, `mlpcli cv` by use: the OOD column's mean over folds that cannot flag, the legend of the per-patient
coverage, a binary out-of-fold label at exactly P = 0.5, the folds' errors before the fits are announced, and the
--oof file against the reported figures (recomputed with scikit-learn)."""

import json

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score

from mlpcli import data
from mlpcli.model_selection.held_out import prediction_columns
from tables import make_table
from cli_helpers import run, assert_clean_error

FAST = ["--hidden", "8", "--epochs", "3", "--member-folds", "1"]


def _write(tmp_path, name="d.csv", **kw):
    path = tmp_path / name
    make_table(**kw).to_csv(path, index=False)
    return str(path)


def test_ood_mean_is_not_a_rate_when_no_fold_can_flag(tmp_path):
    # 15 patients over 3 batches: every fold model holds out a few patients, so its smallest OOD p-value is far
    # above 0.01 and each fold's OOD cell is n/a; the mean row averaged their zeros and read 0.000
    path = _write(tmp_path, n_patients=15, per_patient=2, seed=1)
    res = run(["cv", path, "--leave-batch-out", "--no-baseline", *FAST])
    assert res.exit_code == 0, res.output
    rows = [line for line in res.output.splitlines() if line.startswith("│")]
    folds = [r for r in rows if r.split("│")[1].strip() not in ("mean", "SD")]
    assert folds and all(r.split("│")[-2].strip() == "n/a" for r in folds), res.output
    summary = [r for r in rows if r.split("│")[1].strip() in ("mean", "SD")]
    assert len(summary) == 2
    for r in summary:
        assert r.split("│")[-2].strip() != "0.000", res.output
    # the coverage column counts each patient once, and its legend now says so
    assert "cov@0.9 per patient" in res.output
    assert "cov@ per patient: share of held-out samples whose prediction set holds the true class, each patient " \
           "counted once" in " ".join(res.output.split())


def test_binary_out_of_fold_label_at_one_half_is_the_positive_class():
    df = make_table("binary", n_patients=4, per_patient=1)
    roles, _ = data.resolve_roles(df.columns, target="label")
    ds = data.Dataset.from_frame(df, roles)
    rows = np.arange(3)
    P = np.array([[0.5], [0.4999], [0.9]])  # the model's single P(positive) column
    cols = prediction_columns(ds, rows, P)
    positive, negative = ds.classes[1], ds.classes[0]
    # as metrics.compute and predict call it (p >= 0.5); argmax of [1 - p, p] gave the negative class at 0.5
    assert list(cols["pred_label"]) == [positive, negative, positive]


def test_fold_errors_come_before_the_fits_are_announced(tmp_path):
    path = _write(tmp_path, n_patients=9, per_patient=2)
    res = run(["cv", path, "--folds", "20", *FAST])
    assert_clean_error(res, "--folds 20", "9 groups")
    assert "fits in this process" not in res.output


def test_missing_values_without_impute_are_the_tables_not_a_folds(tmp_path):
    df = make_table(n_patients=9, per_patient=2)
    df.loc[4, "f03"] = np.nan
    path = tmp_path / "gap.csv"
    df.to_csv(path, index=False)
    res = run(["cv", str(path), "--folds", "3", *FAST])
    assert_clean_error(res, "missing values in 1 feature column", "'f03'", "--impute")
    assert "fold 1" not in res.output and "fits in this process" not in res.output


def test_oof_file_lines_up_and_reproduces_the_pooled_figure(tmp_path):
    path = _write(tmp_path, n_patients=12, per_patient=2, seed=3)
    oof = tmp_path / "oof.csv"
    res = run(["cv", path, "--folds", "3", "--repeats", "2", "--oof", str(oof), "--json", "--quiet", "--no-baseline",
               *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # no NaN
    table, frame = pd.read_csv(path), pd.read_csv(oof)
    assert len(frame) == 2 * len(table)
    for r, part in frame.groupby("repeat"):  # every row once per repeat, in the table's order
        assert list(part["sample_id"]) == list(table["sample_id"])
        assert list(part["label"]) == list(table["label"])
        assert list(part["patient_id"]) == list(table["patient_id"])
    per_repeat = [balanced_accuracy_score(p["label"], p["pred_label"]) for _, p in frame.groupby("repeat")]
    assert abs(doc["pooled"]["value"] - np.mean(per_repeat)) < 1e-12
    fold_scores = {(f["repeat"], f["fold"]): f["score"] for f in doc["per_fold"]}
    for (r, k), part in frame.groupby(["repeat", "fold"]):
        assert abs(fold_scores[(r, k)] - balanced_accuracy_score(part["label"], part["pred_label"])) < 1e-12


def test_the_model_note_gives_each_folds_member_count_when_they_differ():
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection.cross_validation import cross_validate

    # 7 'case' patients over 3 folds: training parts of 4 or 5 of them, so --member-folds auto trains 4 or 5
    # members per fold; the note named the first fold's count as every fold's
    df = make_table("binary", n_patients=20, per_patient=1, seed=2)
    cases = df.index[df["label"] == "case"][:3]
    df.loc[cases, "label"] = "ctrl"
    roles, _ = data.resolve_roles(df.columns, target="label")
    ds = data.Dataset.from_frame(df, roles)
    result = cross_validate(ds, TrainOptions(hidden=[4], epochs=2), folds=3, keep_predictions=False)
    counts = [f.members for f in result.folds]
    assert len(set(counts)) > 1, counts
    note = result.notes[0]
    assert f"per fold: {', '.join(map(str, counts))}" in note, note
    assert f"{min(counts)} or {max(counts)} members" in note and f"a {counts[0]}-member" not in note, note


def test_a_held_out_batch_of_one_sample_per_patient_shows_its_coverage(tmp_path):
    # a batch of one single-sample patient: its per-patient coverage is its samples' coverage, but the cell read
    # "—" and the mean left the fold out without a word
    df = make_table(n_patients=15, per_patient=2, seed=1)
    extra = df.iloc[[0]].copy()
    extra["sample_id"], extra["patient_id"], extra["batch"] = "S9999", "P999", "B9"
    extra[[c for c in df.columns if c.startswith("f")]] += 0.5  # not a copy of its twin
    path = tmp_path / "one.csv"
    pd.concat([df, extra]).to_csv(path, index=False)
    res = run(["cv", str(path), "--leave-batch-out", "--no-baseline", *FAST])
    assert res.exit_code == 0, res.output
    assert "cov@0.9 per patient" in res.output
    row = next(line for line in res.output.splitlines() if line.startswith("│") and line.split("│")[1].strip() == "B9")
    cells = [c.strip() for c in row.split("│")[1:-1]]
    coverage = cells[-3]  # cov, set size, OOD
    assert coverage in ("0.000", "1.000"), row


def test_cv_sd_row_is_printed_to_its_means_decimals(tmp_path):
    """An SD printed with more digits than its mean ("1.115" over "0.1417") read as more precise than the mean."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 5)), columns=list("abcde"))
    df["y"] = 1.5 * rng.normal(size=60)  # RMSE ~1.5 (three decimals at four significant digits), its SD below 1
    df.to_csv(tmp_path / "r.csv", index=False)
    res = run(["cv", str(tmp_path / "r.csv"), "--target", "y", "--folds", "3", "--epochs", "3", "--no-group"])
    assert res.exit_code == 0, res.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in res.stdout.splitlines() if line.startswith("│") and line.split("│")[1].strip() in ("mean", "SD")}
    pairs = [(m, s) for m, s in zip(rows["mean"], rows["SD"]) if "." in m and "." in s and "e" not in m + s]
    assert pairs
    for mean, sd in pairs:
        places = len(mean.split(".")[1])
        assert len(sd.split(".")[1]) == places or float(sd) < 10 ** -places, (mean, sd)
