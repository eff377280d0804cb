"""The smaller things of issue 16 (item 8), each with the test that would have caught it: --fail-on-shift,
one number format per kind of figure, predict/evaluate help texts, `mlpcli --help` summaries, the bootstrap
progress in logs, train's time, shift.csv's scale, --by on a continuous column, tune's epochs cap, and
multiclass MCC and Brier."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.cli.formatting import fmt, fmt_metric
from mlpcli.config import TrainOptions
from mlpcli.pipeline import train
from mlpcli.predict.shift import ShiftReport, shift_failure
from tables import make_table
from mlpcli.cli import all_commands
from cli_helpers import assert_clean_error, run, table_rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("details")
    df = make_table(task="multiclass", seed=1, n_patients=40)
    path = root / "train.csv"
    df.to_csv(path, index=False)
    model = train(str(path), TrainOptions(hidden=[8], epochs=20, lr=0.01, seed=0, folds=1)).model
    model_path = root / "m.mlp"
    model_io.save(model, model_path)
    cohort = make_table(task="multiclass", seed=4, n_patients=30)
    return str(model_path), model, df, cohort


def shifted(model, cohort: pd.DataFrame, sds: float) -> pd.DataFrame:
    """The cohort with every feature moved by `sds` training SDs (as the network sees them)."""
    out = cohort.copy()
    pre = model.preprocessor
    for j, f in enumerate(pre.kept_features):
        out[f] = out[f] + sds * pre.scale_[j] * pre.train_sd_[j]
    return out


def test_fail_on_shift_stops_without_an_output_file(trained, tmp_path):
    model_path, model, _, cohort = trained
    out = tmp_path / "p.csv"
    strong, mild = tmp_path / "strong.csv", tmp_path / "mild.csv"
    shifted(model, cohort, 3.0).to_csv(strong, index=False)
    shifted(model, cohort, 0.75).to_csv(mild, index=False)
    res = run(["predict", model_path, str(strong), "-o", str(out), "--fail-on-shift"])
    assert_clean_error(res, "cohort shift 'shift' reaches --fail-on-shift mild", "no predictions written")
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    res = run(["predict", model_path, str(mild), "-o", str(out), "--fail-on-shift", "mild"])
    assert_clean_error(res, "cohort shift 'mild'")
    assert not out.exists()
    # only a strong shift fails with 'shift'; an unshifted cohort passes either way
    assert run(["predict", model_path, str(mild), "-o", str(out), "--fail-on-shift", "shift", "-q"]).exit_code == 0
    cohort.to_csv(tmp_path / "same.csv", index=False)
    res = run(["predict", model_path, str(tmp_path / "same.csv"), "-o", str(out), "--fail-on-shift", "-q"])
    assert res.exit_code == 0, res.output
    # too few rows to check cannot be judged: no failure (the check says "unchecked")
    d = 3
    tiny = ShiftReport(features=["a", "b", "c"], n=2, new_mean=np.full(d, 5.0), new_sd=np.ones(d),
                       train_mean=np.zeros(d), train_sd=np.ones(d), filled=np.zeros(d, dtype=bool))
    assert tiny.level == "unchecked" and shift_failure(tiny, "mild") is None


def test_one_format_per_kind_of_figure():
    assert [fmt(0.711, "metric"), fmt(0.8155, "metric"), fmt(0.7, "metric")] == ["0.711", "0.816", "0.700"]
    assert [fmt(0.07913, "loss"), fmt(0.3, "loss"), fmt(1.25489, "loss"), fmt(1234.6, "loss")] == \
        ["0.07913", "0.3000", "1.255", "1235"]
    assert fmt(2.25, "seconds") == "2.2" and fmt(None) == "—" and fmt(12) == "12"
    assert fmt_metric("balanced_accuracy", 0.8) == "0.800" and fmt_metric("log_loss", 0.8) == "0.8000"
    assert fmt_metric("brier", 0.05) == "0.05000" and fmt_metric("mcc", -0.25) == "-0.250"


def test_summaries_use_the_kinds(trained, tmp_path):
    model_path, _, df, cohort = trained
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    res = run(["train", str(path), "--hidden", "4", "--epochs", "5", "--folds", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    metrics_line = table_rows(res.output)["validation metrics"]
    # the main metric's interval "(95 % CI 0.111 – 0.519)" is checked apart: its bounds have 3 decimals too
    interval = re.search(r"\(95 % CI (\S+) – (\S+)\)", metrics_line)
    assert interval and all(len(v.split(".")[1]) == 3 for v in interval.groups())
    metrics_line = metrics_line.replace(" " + interval.group(0), "")
    # every metric with 3 decimals, log loss with 4 significant digits
    for name, value in [m.rsplit(" ", 1) for m in metrics_line.strip().split(", ")]:
        decimals = len(value.split(".")[1])
        assert decimals == 3 or name == "log loss", (name, value)
    assert " s training, " in text and " s in all (reading the table, training, writing the model)" in text
    cohort.to_csv(tmp_path / "c.csv", index=False)
    res = run(["evaluate", model_path, str(tmp_path / "c.csv")], terminal_width=200)
    assert res.exit_code == 0, res.output
    rows = table_rows(res.output)
    assert len(rows["balanced accuracy"].split(".")[1]) == 3 and len(rows["MCC"].split(".")[1]) == 3


def test_predict_and_evaluate_help_state_their_real_defaults():
    for command in ("predict", "evaluate"):
        text = " ".join(run([command, "--help"], terminal_width=200).output.split())
        assert "[default: label]" not in text and "split by rows" not in text
        assert "predict ignores it. Comma-separated, or repeated [default: the model's target]" in text
        assert "--no-group No group column: samples count as independent (bootstraps resample samples, not " \
               "patients)." in text


@pytest.mark.parametrize("width", [80, 100])
def test_command_summaries_are_not_cut(width):
    res = run(["--help"], terminal_width=width)
    commands = res.output.split("Commands:")[1].strip().splitlines()
    assert len(commands) == len(all_commands())
    assert not [c for c in commands if c.rstrip().endswith("...")], res.output


def test_bootstrap_progress_in_logs_reaches_100_percent(trained, tmp_path):
    model_path, _, _, cohort = trained
    cohort.to_csv(tmp_path / "c.csv", index=False)
    res = run(["evaluate", model_path, str(tmp_path / "c.csv"), "--bootstrap", "40"])
    assert res.exit_code == 0, res.output
    assert "bootstrap 40/40 resamples (100%)" in res.output


@pytest.mark.parametrize("scaling", ["standard", "robust"])
def test_shift_report_gives_the_features_own_scale(trained, tmp_path, scaling):
    _, _, df, cohort = trained
    df.to_csv(tmp_path / "t.csv", index=False)
    model = train(str(tmp_path / "t.csv"), TrainOptions(hidden=[4], epochs=3, folds=1, scaling=scaling)).model
    model_io.save(model, tmp_path / "m.mlp")
    cohort.to_csv(tmp_path / "c.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "c.csv"), "-o", str(tmp_path / "p.csv"), "-q",
               "--shift-report", str(tmp_path / "shift.csv")])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "shift.csv").set_index("feature")
    # means and SDs on the features' own scale are those of the table's values (exact with standard scaling;
    # robust scaling's soft clip of extreme values makes them close); the _scaled ones are the network's view
    features = list(model.preprocessor.kept_features)
    tol = {"rtol": 1e-4, "atol": 1e-4} if scaling == "standard" else {"rtol": 0.1, "atol": 0.1}
    np.testing.assert_allclose(table.loc[features, "new_mean"], cohort[features].mean(), **tol)
    np.testing.assert_allclose(table.loc[features, "new_sd"], cohort[features].std(ddof=0), **tol)
    np.testing.assert_allclose(table.loc[features, "train_mean"], df[features].mean(), atol=0.2)
    pre = model.preprocessor
    np.testing.assert_allclose(table.loc[features, "train_mean_scaled"], pre.train_mean_, rtol=1e-5, atol=1e-6)
    if scaling == "standard":  # the scaled training means are ~0: the old train_mean said nothing about the genes
        np.testing.assert_allclose(table.loc[features, "train_mean_scaled"], 0, atol=1e-5)
    assert {"new_sd_scaled", "train_sd_scaled", "mean_shift_sd", "sd_ratio"} <= set(table.columns)


def test_by_a_continuous_column_groups_into_quantile_bins(trained, tmp_path):
    model_path, _, _, cohort = trained
    cohort = cohort.assign(age=np.random.default_rng(0).uniform(20, 80, len(cohort)).round(1))
    cohort.to_csv(tmp_path / "c.csv", index=False)
    res = run(["evaluate", model_path, str(tmp_path / "c.csv"), "--by", "age", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    values = [g["value"] for g in doc["groups"]]
    assert len(values) == 4 and all(v.startswith(f"Q{k + 1} [") for k, v in enumerate(values))
    assert sum(g["n"] for g in doc["groups"]) == len(cohort)
    assert any("--by age: a numeric column with" in n and "4 quantile bins" in n for n in doc["notes"])
    res = run(["evaluate", model_path, str(tmp_path / "c.csv"), "--by", "batch", "--json"])  # few values: as they are
    assert sorted(g["value"] for g in json.loads(res.stdout)["groups"]) == sorted(cohort["batch"].unique())


def test_tune_warns_when_the_best_epochs_reach_the_cap(tmp_path):
    path = tmp_path / "t.csv"
    make_table(task="binary", seed=0, n_patients=18).to_csv(path, index=False)
    res = run(["tune", str(path), "--grid", "lr=1e-4,3e-4", "--folds", "3", "--hidden", "4", "--epochs", "3",
               "--patience", "10", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert any("still improving at the --epochs cap (3)" in w for w in doc["warnings"]), doc["warnings"]
    res = run(["tune", str(path), "--grid", "lr=3e-2", "--folds", "3", "--hidden", "4", "--epochs", "60",
               "--patience", "3", "--json"])
    assert not any("--epochs cap" in w for w in json.loads(res.stdout)["warnings"])


def test_tune_with_epochs_auto_finishes_and_refits(tmp_path):
    """With --epochs auto (the default) the cap is sized per fold; the cap check compared the best epochs
    with the text "auto" and crashed after all the fitting, writing no model (the README's examples)."""
    path = tmp_path / "t.csv"
    make_table(task="binary", seed=0, n_patients=18).to_csv(path, index=False)
    out = tmp_path / "best.mlp"
    res = run(["tune", str(path), "--grid", "l2=0,1e-3", "--folds", "2", "--member-folds", "2", "--hidden", "4",
               "--refit", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert out.exists() and json.loads(res.stdout)["best"]["setting"]["l2"] in (0, 0.001)


def test_multiclass_evaluate_reports_mcc_and_brier(trained, tmp_path):
    model_path, model, _, cohort = trained
    cohort.to_csv(tmp_path / "c.csv", index=False)
    doc = json.loads(run(["evaluate", model_path, str(tmp_path / "c.csv"), "--json"]).stdout)
    m = doc["metrics"]
    assert -1 <= m["mcc"] <= 1 and 0 <= m["brier"] <= 2
    from mlpcli import predict as lib
    from sklearn.metrics import matthews_corrcoef

    frame = pd.concat(list(lib.predict_stream(model, cohort)))
    truth = cohort["label"].map({c: k for k, c in enumerate(model.classes)}).to_numpy()
    predicted = frame[[c for c in frame.columns if c.startswith("pred_")][0]].map(
        {c: k for k, c in enumerate(model.classes)}).to_numpy()
    assert m["mcc"] == pytest.approx(matthews_corrcoef(truth, predicted))
    P = frame[[f"prob_{c}" for c in model.classes]].to_numpy(dtype=float)
    assert m["brier"] == pytest.approx(np.mean(((P - np.eye(len(model.classes))[truth]) ** 2).sum(axis=1)), rel=1e-5)
