"""What `cv` prints and writes about its folds: means and SDs to matching decimals, metrics counted over the folds
that define them, the OOD and coverage columns of fold models that cannot flag, the --oof file, and the forecast
for a new batch."""

import json
import re
from types import SimpleNamespace
from click.testing import CliRunner

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

from mlpcli import data
from mlpcli.cli import cli
from mlpcli.cli.formatting import fmt_mean_sd, fmt_sd
from mlpcli.cli.cv import baseline_line
from mlpcli.config import TrainOptions
from mlpcli.model_selection import cross_validation as cv
from mlpcli.model_selection.cross_validation import mean_sd
from mlpcli.model_selection.crossfit import fit_model
from mlpcli.model_selection.held_out import prediction_columns
from cli_helpers import assert_clean_error, run, table_cells
from tables import _table, make_table


@pytest.mark.parametrize("key, mean, sd, text", [
    ("log_loss", 1.2823, 0.043, "1.282 ± 0.043"),  # was "1.282 ± 0.04300"
    ("log_loss", 4.567, 0.7785, "4.567 ± 0.778"),
    ("balanced_accuracy", 0.812, 0.031, "0.812 ± 0.031"),
    ("balanced_accuracy", 0.812, 0.0004, "0.812 ± 0.0004"),  # a finer SD keeps its first digit
])
def test_mean_and_sd_are_written_to_the_same_decimals(key, mean, sd, text):
    from mlpcli.cli.formatting import fmt_mean_sd

    assert fmt_mean_sd(key, mean, sd) == text


def _two_sites(tmp_path):
    """40 patients of two classes at two sites, site S2 shifted 3 SD in every gene: a table of one sample a patient,
    whose leave-batch-out fold models hold out about 20 patients each (too few to flag at p < 0.01)."""
    rng = np.random.default_rng(6)
    rows = []
    for p in range(40):
        label, site = ("a", "b")[p % 2], ("S1", "S2")[(p // 2) % 2]
        x = rng.normal(size=5) + (0.8 if label == "b" else 0.0) + (3.0 if site == "S2" else 0.0)
        rows.append({"sample_id": f"P{p}", "patient_id": f"P{p}", "batch": site, "label": label,
                     **{f"g{j}": x[j] for j in range(5)}})
    path = tmp_path / "sites.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_cv_shows_ood_as_not_available_where_a_fold_model_cannot_flag(tmp_path):
    """A fold model with fewer than 99 held-out patients cannot flag anything at p < 0.01: its OOD cell read 0.000,
    as if a shifted site resembled training. It reads n/a, with the reason once under the table."""
    path = _two_sites(tmp_path)
    res = run(["cv", str(path), "--leave-batch-out", "--hidden", "4", "--epochs", "5", "--member-folds", "2",
               "--no-baseline"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "n/a" in text and "OOD n/a in 2 folds" in text and "0.01" in text


def test_cv_ood_alpha_sets_the_level_a_fold_model_can_flag_at(tmp_path):
    """cv counted OOD rows at p < 0.01 only, which a fold model with few held-out patients cannot reach; --ood-alpha
    chooses the level (the site held out is far from training: flagged at 0.2), and needs the trust figures."""
    from cli_helpers import assert_clean_error

    path = _two_sites(tmp_path)
    args = ["cv", str(path), "--hidden", "4", "--epochs", "5", "--member-folds", "2", "--no-baseline"]
    res = run([*args, "--leave-batch-out", "--ood-alpha", "0.2", "--json"])
    assert res.exit_code == 0, res.output
    folds = json.loads(res.stdout)["per_fold"]
    assert all(f["trust"]["ood_alpha"] == 0.2 and not f["trust"]["notes"] for f in folds)
    assert max(f["trust"]["ood_rate"] for f in folds) > 0.5  # a site 3 SD away, flagged once the level allows
    assert_clean_error(run([*args, "--ood-alpha", "0.2"]), "--ood-alpha", "--coverage", code=2)


def private_signature(n_patients=24, samples=3, genes=8, seed=0) -> pd.DataFrame:
    """Each patient's samples share a private signature; the label is drawn per patient, independent of it."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        signature, label = rng.normal(0, 3, genes), ("case", "ctrl")[p % 2]
        for s in range(samples):
            rows.append({"sample_id": f"P{p:02d}_{s}", "patient_id": f"P{p:02d}", "label": label,
                         **{f"g{j}": signature[j] + rng.normal(0, 0.3) for j in range(genes)}})
    return pd.DataFrame(rows)


def confounded(seed=0) -> pd.DataFrame:
    """A label with no biology: the batch shifts the genes, and batch B1 is mostly cases, B2 mostly controls."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(40):
        label = ("ctrl", "case")[p % 2]
        batch = ("B1" if rng.random() < 0.9 else "B2") if label == "case" else ("B2" if rng.random() < 0.9 else "B1")
        for s in range(2):
            x = rng.normal(size=6) + (1.0 if batch == "B1" else 0.0)
            rows.append({"sample_id": f"P{p}_{s}", "patient_id": f"P{p}", "batch": batch, "label": label,
                         **{f"g{j}": x[j] for j in range(6)}})
    return pd.DataFrame(rows)


def dataset(df: pd.DataFrame) -> data.Dataset:
    roles, _ = data.resolve_roles(df.columns)
    return data.Dataset.from_frame(df, roles)


def test_folds_are_sklearns_patient_grouped_folds_and_the_oof_predictions_are_the_fold_models():
    ds = dataset(private_signature())
    options = TrainOptions(hidden=[8], epochs=3, folds=1, seed=3, log1p=False, scaling="standard")
    result = cv.cross_validate(ds, options, folds=3, repeats=2, baseline=True)
    # scikit-learn < 1.8 shuffles StratifiedGroupKFold's groups out of step with their counts (its PR #32540)
    fixed_shuffle = tuple(int(x) for x in sklearn.__version__.split(".")[:2]) >= (1, 8)
    for r in range(2):
        expected = StratifiedGroupKFold(3, shuffle=True, random_state=3 + r).split(ds.X, ds.y, ds.groups)
        for f, (_, test) in zip([f for f in result.folds if f.repeat == r], expected):
            if fixed_shuffle:
                assert np.array_equal(np.sort(f.test_rows), np.sort(test))
            train = np.setdiff1d(np.arange(ds.n_samples), f.test_rows)
            assert not set(ds.groups[train]) & set(ds.groups[f.test_rows])  # no patient on both sides
    fold = result.folds[4]  # repeat 2, fold 2: seeded seed + 1
    train = np.setdiff1d(np.arange(ds.n_samples), fold.test_rows)
    refitted = fit_model(ds.subset(train), cv.with_seed(options, fold.repeat), folds_flag="--member-folds")
    assert np.array_equal(refitted.model.predict_output(ds.subset(fold.test_rows).X), fold.proba)
    # the mean ± SD is over the 6 fold scores, and the paired difference is on the same folds
    scores = np.array([f.score for f in result.folds])
    linear = np.array([f.baseline.score for f in result.folds])
    summary, base = result.summary()["balanced_accuracy"], result.baseline_summary()
    assert summary["mean"] == pytest.approx(scores.mean()) and summary["sd"] == pytest.approx(scores.std(ddof=1))
    assert base["difference"]["mean"] == pytest.approx((scores - linear).mean())
    assert base["difference"]["sd"] == pytest.approx((scores - linear).std(ddof=1))
    assert base["difference"]["better"] == int(np.sum(scores > linear))
    # each fold's baseline is scikit-learn's logistic regression on the fold's own standardisation
    for f in result.folds:
        train = np.setdiff1d(np.arange(ds.n_samples), f.test_rows)
        scaler = StandardScaler().fit(ds.X[train])
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(ds.X[train]), ds.y[train])
        by_hand = balanced_accuracy_score(ds.y[f.test_rows], lr.predict(scaler.transform(ds.X[f.test_rows])))
        assert f.baseline.score == pytest.approx(by_hand)


def test_the_printed_mean_sd_and_difference_are_the_json_ones(tmp_path):
    path = tmp_path / "private.csv"
    private_signature().to_csv(path, index=False)
    args = ["cv", str(path), "--folds", "3", *FAST]
    doc = json.loads(run([*args, "--json", "--quiet"]).stdout)  # stdout holds the document alone
    printed = run([*args, "--quiet"]).stdout
    mean, sd = doc["summary"]["balanced_accuracy"]["mean"], doc["summary"]["balanced_accuracy"]["sd"]
    assert f"balanced accuracy: {mean:.3f} ± {sd:.3f} over 3 folds" in printed
    diff = doc["baseline"]["difference"]
    assert f"mlpcli minus it: {'+' if diff['mean'] >= 0 else '-'}{abs(diff['mean']):.3f} ± {diff['sd']:.3f}" in printed


def test_the_difference_to_the_baseline_shows_its_sd_to_the_means_decimals():
    # RMSE 25.72 ± 4.413 read as more precise than the mean beside it: every other mean ± SD is "25.72 ± 4.41"
    folds = [SimpleNamespace()] * 3
    linear = {"model": "ridge regression (alpha=1)", "summary": {"rmse": {"mean": 2.853, "sd": 0.575}},
              "difference": {"metric": "rmse", "mean": 25.7212, "sd": 4.41321, "folds": 3, "better": 0, "worse": 3}}
    line = baseline_line(linear, SimpleNamespace(metric="rmse", folds=folds))
    assert "mlpcli minus it: +25.72 ± 4.41 (better in 0 of 3, worse in 3)" in line


def test_val_size_left_without_effect_by_an_auto_ensemble_is_said(tmp_path):
    path = tmp_path / "private.csv"
    private_signature().to_csv(path, index=False)
    base = ["cv", str(path), "--folds", "3", "--hidden", "8", "--epochs", "2", "--val-size", "0.3", "--no-baseline"]
    doc = json.loads(run([*base, "--json", "--quiet"]).stdout)  # --member-folds auto: an ensemble per fold
    assert any("--val-size 0.3 had no effect" in n and "--member-folds" in n for n in doc["notes"]), doc["notes"]
    doc = json.loads(run([*base, "--member-folds", "1", "--json", "--quiet"]).stdout)  # one network reads it
    assert not any("--val-size" in n for n in doc["notes"])


@pytest.mark.parametrize("key, value", [("refit", "true"), ("calibrate", "false"), ("folds", "3")])
def test_learning_curve_refuses_in_a_config_file_what_it_refuses_as_a_flag(tmp_path, key, value):
    table, config = tmp_path / "private.csv", tmp_path / "run.toml"
    private_signature().to_csv(table, index=False)
    config.write_text(f"epochs = 2\n{key} = {value}\n")
    result = run(["diagnose", "--learning-curve", str(table), "--config", str(config), "--hidden", "8", "--quiet"])
    assert_clean_error(result, str(config), f"'{key}'", "--learning-curve", code=2)


def test_a_label_confounded_with_the_batch_is_a_warning(tmp_path):
    ds = dataset(confounded())
    warning = cv.batch_confounding(ds)
    assert warning and "confounded with 'batch'" in warning and "--leave-batch-out" in warning
    assert re.search(r"B1 \d+% 'case'", warning) and re.search(r"B2 \d+% 'ctrl'", warning)
    assert "--leave-batch-out" not in cv.batch_confounding(ds, leave_batch_out=True)
    # batches independent of the label: nothing to say
    shuffled = confounded()
    shuffled["batch"] = np.where(shuffled["patient_id"].str[1:].astype(int) % 4 < 2, "B1", "B2")
    assert cv.batch_confounding(dataset(shuffled)) is None
    path = tmp_path / "confounded.csv"
    confounded().to_csv(path, index=False)
    result = run(["cv", str(path), "--folds", "3", *FAST, "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert any("confounded with 'batch'" in w for w in doc["warnings"])
    assert "warning: the label is confounded" in result.stderr  # a warning is never hidden, --json or not


def test_a_moderate_association_of_label_and_batch_is_a_warning_too():
    """Class shares of 30 % and 70 % in two kinds of batch (Cramér's V ~0.3, p < 0.01, 200 patients): grouped CV read
    a balanced accuracy of 0.63 (CI 0.56-0.69) from the batches alone without a word, the V 0.5 threshold unmet."""
    rng = np.random.default_rng(1)
    rows = []
    for p in range(200):
        batch = "ABCD"[p % 4]
        label = ("case" if rng.random() < (0.7 if batch in "BD" else 0.3) else "ctrl")
        for s in range(2):
            rows.append({"sample_id": f"P{p}_{s}", "patient_id": f"P{p}", "batch": batch, "label": label,
                         **{f"g{j}": v for j, v in enumerate(rng.normal(size=4))}})
    warning = cv.batch_confounding(dataset(pd.DataFrame(rows)))
    assert warning and "associated with 'batch'" in warning and "--leave-batch-out" in warning, warning
    v = float(re.search(r"Cramér's V ([0-9.]+)", warning).group(1))
    assert 0.25 <= v < 0.5
    assert "confounded with" in cv.batch_confounding(dataset(confounded()))  # a strong one keeps its word


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
    rows = [table_cells(line) for line in res.output.splitlines() if "│" in line]
    folds = [r for r in rows if r[0] not in ("mean", "SD")]
    assert folds and all(r[-1] == "n/a" for r in folds), res.output
    summary = [r for r in rows if r[0] in ("mean", "SD")]
    assert len(summary) == 2
    for r in summary:
        assert r[-1] != "0.000", res.output
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
    cells = next(c for c in map(table_cells, res.output.splitlines()) if c[0] == "B9")
    coverage = cells[-3]  # cov, set size, OOD
    assert coverage in ("0.000", "1.000"), cells


def test_cv_sd_row_is_printed_to_its_means_decimals(tmp_path):
    """An SD printed with more digits than its mean ("1.115" over "0.1417") read as more precise than the mean."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 5)), columns=list("abcde"))
    df["y"] = 1.5 * rng.normal(size=60)  # RMSE ~1.5 (three decimals at four significant digits), its SD below 1
    df.to_csv(tmp_path / "r.csv", index=False)
    res = run(["cv", str(tmp_path / "r.csv"), "--target", "y", "--folds", "3", "--epochs", "3", "--no-group"])
    assert res.exit_code == 0, res.output
    rows = {c[0]: c[1:] for c in map(table_cells, res.stdout.splitlines()) if c[0] in ("mean", "SD")}
    pairs = [(m, s) for m, s in zip(rows["mean"], rows["SD"]) if "." in m and "." in s and "e" not in m + s]
    assert pairs
    for mean, sd in pairs:
        places = len(mean.split(".")[1])
        assert len(sd.split(".")[1]) == places or float(sd) < 10 ** -places, (mean, sd)


@pytest.mark.parametrize("key, mean, sd, want", [
    ("log_loss", 1.115, 0.1417, "0.142"),  # a loss's 4 significant digits gave the SD a decimal more than its mean
    ("mae", 0.4512, 0.005865, "0.0059"),   # finer than the mean's decimals: to the SD's first significant digit
    ("rmse", 12.34, 1.2345, "1.23"),
    ("balanced_accuracy", 0.812, 0.0312, "0.031"),
    ("mae", None, 0.005865, "0.005865"),   # no mean to align with: the metric's own format
    ("mae", 0.5, None, "—"),
    (None, 1.1234, 0.31523, "0.315"),  # a plain number (cv's mean set size): its SD had a decimal more than its mean
], ids=["log-loss", "mae-fine", "rmse", "metric", "no-mean", "no-sd", "set-size"])
def test_sd_is_printed_to_its_means_decimals(key, mean, sd, want):
    assert fmt_sd(key, mean, sd) == want
    if mean is not None and sd is not None:
        assert fmt_mean_sd(key, mean, sd).endswith(f" ± {want}")
    elif mean is not None:  # one value: its SD is undefined, said in words (a "± —" read as a missing figure)
        assert fmt_mean_sd(key, mean, sd).endswith(" (one value, no SD)")


def test_cv_says_when_a_fold_models_sets_hold_every_class_by_the_count_alone(tmp_path):
    """`cv --leave-batch-out` on 12 donors in 3 runs: each fold model has 8 held-out donors, fewer than the 9 that
    sets at 0.9 need, so every set held every class (coverage 1.000, size 4) with no word why; the OOD n/a was
    explained. Both are now, in the table's notes and in --json."""
    rng = np.random.default_rng(0)
    rows = []
    for d in range(12):
        for c in range(20):
            k = int(rng.integers(4))
            rows.append({"sample_id": f"d{d}c{c}", "patient_id": f"D{d}", "batch": f"run{d % 3}", "label": f"t{k}",
                         **{f"g{j}": rng.normal(1.0 * (j == k)) for j in range(6)}})
    path = tmp_path / "lbo.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    res = CliRunner().invoke(cli, ["cv", str(path), "--leave-batch-out", "--epochs", "3", "-q"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert ("cov@ by the count alone in 3 folds (left out of the mean): fold 1 (held-out batch run0): every prediction "
            "set at 0.9 holds every class: the level needs 9 held-out patients and the model's conformal calibration "
            "has 8") in text
    res = CliRunner().invoke(cli, ["cv", str(path), "--leave-batch-out", "--epochs", "3", "-q", "--json"])
    folds = json.loads(res.stdout)["per_fold"]
    assert all(f["trust"]["coverage"] == 1.0 and f["trust"]["set_notes"] for f in folds)


# ── leave-batch-out: what the forecast averages ──────────────────────────────────────────────────────────


def test_the_sd_of_one_value_is_undefined_not_zero():
    assert mean_sd([0.7]) == (0.7, None)
    assert mean_sd([0.5, float("nan"), None]) == (0.5, None)
    assert mean_sd([]) == (None, None)
    mean, sd = mean_sd([0.6, 0.8])
    assert mean == pytest.approx(0.7) and sd == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert fmt_mean_sd("balanced_accuracy", 0.7, None) == "0.700 (one value, no SD)"


@pytest.fixture(scope="module")
def lopsided(tmp_path_factory):
    """Two batches, S1 of 8 patients and S2 of 40: the model trained without S2 has 8 held-out patients, too
    few for prediction sets at 0.9 (their coverage is 1 by the count alone), and S1 is a small batch."""
    tmp = tmp_path_factory.mktemp("lopsided")
    _table(n_pat=48, classes=("A", "B"), batch_of=lambda p: "S1" if p < 8 else "S2", seed=9).to_csv(
        tmp / "t.csv", index=False)
    res = run(["cv", str(tmp / "t.csv"), "--leave-batch-out", "--hidden", "8", "--epochs", "15", "--no-baseline",
               "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), res


def test_a_coverage_of_one_by_the_count_alone_is_left_out_of_the_mean(lopsided):
    doc, res = lopsided
    trust = doc["trust"]
    assert trust["left_out"]["coverage"] == ["fold 2 (held-out batch S2)"]
    assert trust["coverage"]["folds"] == 1 and trust["coverage"]["sd"] is None
    by_fold = {f["held_out"]: f for f in doc["per_fold"]}
    kept = by_fold["S1"]["trust"]
    assert trust["coverage"]["mean"] == pytest.approx(kept["coverage_per_group"] if trust["per_patient"]
                                                      else kept["coverage"])


def test_held_out_batches_of_few_patients_are_named_and_the_forecast_given_without_them(lopsided):
    doc, _ = lopsided
    small = doc["small_held_out"]
    assert [b["batch"] for b in small["batches"]] == ["S1"] and small["batches"][0]["units"] == 8
    assert small["unit"] == "patients" and small["folds"] == 1
    s2 = next(f for f in doc["per_fold"] if f["held_out"] == "S2")
    assert small["mean"] == pytest.approx(s2["score"]) and small["sd"] is None


def test_cv_prints_the_small_batches_and_the_left_out_coverage(tmp_path):
    _table(n_pat=48, classes=("A", "B"), batch_of=lambda p: "S1" if p < 8 else "S2", seed=9).to_csv(
        tmp_path / "t.csv", index=False)
    res = run(["cv", str(tmp_path / "t.csv"), "--leave-batch-out", "--hidden", "8", "--epochs", "15", "--no-baseline"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "held-out batches of fewer than 10 patients: 'S1' (8)" in text
    assert "(one value, no SD) over 1 batch" in text and "over 1 batches" not in text
    assert "cov@ by the count alone in 1 fold (left out of the mean)" in text


def test_each_folds_constant_features_are_one_warning(tmp_path):
    """All-zero genes of RNA-seq: each fold's training part drops its own handful, and cv printed the warning once
    per fold (tune once per fold too), news the first line already gave."""
    table = make_table("multiclass", n_patients=30, per_patient=2, n_features=8, seed=4)
    for j in range(6):  # a gene seen in one patient only: constant on the folds that hold that patient out
        table[f"rare{j}"] = np.where(table["patient_id"] == f"P{5 * j:03d}", 1.0, 0.0)
    table.to_csv(tmp_path / "t.csv", index=False)
    res = run(["cv", str(tmp_path / "t.csv"), "--folds", "3", "--epochs", "2", "--hidden", "4", "--json"])
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if "features constant on the training rows" in w]
    assert len(said) == 1, said
    assert said[0].startswith("fold ") and ", each dropping its own)" in said[0]


def test_tune_says_which_setting_a_fold_warning_came_from_and_merges_its_figures(tmp_path):
    """A rare class under `--grid "class_weight=balanced|none"`: the weighted setting's probabilities overstate the
    class in every fold. tune printed five lines, one per fold, each with its own figures and none naming the
    setting that gave them (the unweighted one gave none)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(6)])
    frame.insert(0, "label", np.where(X[:, 0] + 0.7 * rng.normal(size=300) > 1.6, "rare", "common"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(300)])
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["tune", str(tmp_path / "t.csv"), "--no-group", "--grid", "class_weight=balanced|none",
               "--epochs", "15", "--hidden", "8", "--json"])
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if "held-out probabilities of 'rare'" in w]
    weighted = [w for w in said if "--class-weight balanced weighs the classes" in w]
    assert len(weighted) == 1, said
    assert weighted[0].startswith("fold 1, within its training part:")
    assert "(also fold 2, fold 3, fold 4 and fold 5, each with figures of its own)" in weighted[0]
    assert weighted[0].endswith("[setting class-weight=balanced]")
    # whatever the other setting's fits said (these short runs overstate the rare class too), it names its own
    assert all(w.endswith("[setting class-weight=none]") for w in said if w not in weighted)


def test_warnings_of_different_classes_stay_apart():
    """Only the figures merge: the same words about class '1' and class '2' are two warnings."""
    from mlpcli.model_selection.cross_validation import without_figures as _without_figures

    one = "the held-out probabilities of '1' add up to 20.2 where 5 of the 48 held-out samples are of it (4 x)"
    assert _without_figures(one) == _without_figures(one.replace("20.2", "16.5").replace("(4 x)", "(3.3 x)"))
    assert _without_figures(one) != _without_figures(one.replace("'1'", "'2'"))
    assert "member #'s held-out rows" in _without_figures("member 3's held-out rows")
