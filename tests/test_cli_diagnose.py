"""`mlpcli diagnose` on a model file and on a history table: the verdict panel, --json, --plot,
the terminal chart, and clean one-line errors."""

from __future__ import annotations

import json
import pathlib
import sys
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli import model_io
from mlpcli.cli import cli
from mlpcli.diagnosis import LABELS, diagnose
from mlpcli.errors import DataError
from mlpcli.history import curves_from_history, diagnose_curves, history_csv, read_curves
from mlpcli.plotting import BOTH_CHAR, TRAIN_CHAR, VAL_CHAR, terminal_chart
from cli_helpers import assert_clean_error, run
from curves import ENSEMBLE_SHAPES, ensemble_history
from tables import SAMPLE, _labelled, make_table, write_table

JSON_FIELDS = {"label", "evidence", "advice", "runner_up"}


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    """One short training run of one network (--folds 1) through `mlpcli train`: its model file and its
    history table."""
    d = tmp_path_factory.mktemp("diagnose")
    data = write_table(d)
    model, history = d / "m.mlp", d / "h.csv"
    res = run(["train", data, "-o", str(model), "--history", str(history), "--hidden", "8", "--epochs", "30",
               "--patience", "100", "--folds", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    return {"dir": d, "model": str(model), "history": str(history), "data": data}


# --- the verdict -------------------------------------------------------------------------------------


def test_model_file_panel_has_label_evidence_advice_and_chart(run_files):
    res = run(["diagnose", run_files["model"]])
    assert res.exit_code == 0, res.output
    label = model_io.load(run_files["model"]).extra["diagnosis"]["label"]
    for needle in (f"Learning curves: {label}", "evidence", "best_epoch", "Advice", "•", "validation", "kept epoch",
                   "baseline"):
        assert needle in res.stdout, needle


def test_model_file_json_matches_the_verdict_train_stored(run_files):
    res = run(["diagnose", run_files["model"], "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert JSON_FIELDS <= set(doc)
    assert doc["label"] in LABELS and isinstance(doc["advice"], list) and doc["advice"]
    assert doc["runner_up"] is None or doc["runner_up"] in LABELS
    stored = model_io.load(run_files["model"]).extra["diagnosis"]
    assert doc["label"] == stored["label"] and doc["evidence"] == stored["evidence"]
    assert doc["evidence"]["scale_source"] == "baseline"
    assert doc["kind"] == "model" and doc["curves"] == "loss"


def test_history_table_rich_and_json(run_files):
    res = run(["diagnose", run_files["history"]])
    assert res.exit_code == 0, res.output
    doc = json.loads(run(["diagnose", run_files["history"], "--json"]).stdout)
    assert JSON_FIELDS <= set(doc) and doc["label"] in LABELS
    assert f"Learning curves: {doc['label']}" in res.stdout
    assert doc["kind"] == "history" and doc["n_epochs"] == 30
    assert doc["evidence"]["train_eval_final"] is not None  # train_loss_eval column used


def test_history_from_standard_input(run_files):
    text = open(run_files["history"]).read()
    res = run(["diagnose", "-", "--json"], input=text)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["label"] in LABELS


def test_baseline_option_sets_the_scale(run_files):
    doc = json.loads(run(["diagnose", run_files["history"], "--json", "--baseline", "1.1"]).stdout)
    assert doc["evidence"]["scale_source"] == "baseline" and doc["evidence"]["scale"] == pytest.approx(1.1)


def test_metric_curves_of_a_model_are_higher_is_better_with_chance_baseline(run_files):
    doc = json.loads(run(["diagnose", run_files["model"], "--metric", "metric", "--json"]).stdout)
    assert doc["curves"] == "metric" and doc["higher_is_better"] is True
    assert doc["baseline"] == pytest.approx(1 / 3)  # balanced accuracy of a constant guess, 3 classes
    assert doc["evidence"]["higher_is_better"] is True
    # the model knows its metric's direction: the opposite option is refused (it read balanced accuracy, or RMSE, the
    # wrong way round and gave a false verdict); the same one is accepted
    assert_clean_error(run(["diagnose", run_files["model"], "--metric", "metric", "--lower-is-better"]),
                       "--lower-is-better", "balanced accuracy, which is higher is better", code=2)
    assert run(["diagnose", run_files["model"], "--metric", "metric", "--higher-is-better", "--json"]).exit_code == 0


def test_metric_curves_of_a_history_table_infer_the_direction_and_say_so(run_files):
    res = run(["diagnose", run_files["history"], "--metric", "metric"])
    assert res.exit_code == 0, res.output
    assert "reading higher values as better" in res.stderr
    res = run(["diagnose", run_files["history"], "--metric", "metric", "--lower-is-better", "--json"])
    assert json.loads(res.stdout)["higher_is_better"] is False


def test_a_pinned_training_score_leaves_the_direction_to_the_loss_columns(tmp_path):
    """A training score at ~1 from epoch 1 and a falling validation score: both curves together "fell", so the score
    was read lower-is-better and an overfitting run was labelled underfit. The loss columns of the same epochs move
    against the score: higher is better, and the run overfits (as its loss curves say)."""
    E = np.arange(1, 61)
    rng = np.random.default_rng(1)
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": E, "train_loss": 0.3 * np.exp(-E / 5) + 0.001, "val_loss": 0.3 + 0.01 * E,
                  "train_metric": np.minimum(1, 0.97 + 0.01 * E),
                  "val_metric": 0.9 - 0.2 * (1 - np.exp(-E / 15)) + rng.normal(0, 0.005, 60)}).to_csv(path, index=False)
    res = run(["diagnose", str(path), "--metric", "metric", "--json"])
    doc = json.loads(res.stdout)
    assert doc["higher_is_better"] is True and doc["label"] == "overfit", doc["label"]
    assert any("moves against the loss columns of the same epochs" in n for n in doc["notes"]), doc["notes"]
    assert json.loads(run(["diagnose", str(path), "--json"]).stdout)["label"] == "overfit"


# --- plots -------------------------------------------------------------------------------------------


def test_plot_png(run_files):
    out = run_files["dir"] / "curves.png"
    res = run(["diagnose", run_files["history"], "--plot", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_svg_is_xml_with_an_svg_root(run_files):
    out = run_files["dir"] / "curves.svg"
    res = run(["diagnose", run_files["model"], "--plot", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["plot"] == str(out)
    assert ET.parse(out).getroot().tag.endswith("svg")


def test_plot_pdf(run_files):
    out = run_files["dir"] / "curves.pdf"
    assert run(["diagnose", run_files["model"], "--plot", str(out)]).exit_code == 0
    assert out.read_bytes()[:5] == b"%PDF-"


def test_plot_bad_extension_is_a_clean_error_and_writes_nothing(run_files):
    out = run_files["dir"] / "curves.jpg"
    res = run(["diagnose", run_files["model"], "--plot", str(out)])
    assert_clean_error(res, "--plot", ".png, .svg or .pdf", code=2)
    assert not out.exists()
    assert not list(run_files["dir"].glob(".curves.jpg*"))


# --- errors ------------------------------------------------------------------------------------------


def test_history_without_the_loss_columns_names_the_columns_present(tmp_path):
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.8, 0.7], "acc": [0.5, 0.6, 0.7]}).to_csv(path, index=False)
    assert_clean_error(run(["diagnose", str(path)]), "train_loss", "val_loss", "'epoch', 'loss', 'acc'")


def test_history_without_metric_columns_with_metric_option(tmp_path):
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.8]}).to_csv(path, index=False)
    assert_clean_error(run(["diagnose", str(path), "--metric", "metric"]), "train_metric", "--metric metric")


def test_history_with_text_in_a_curve(tmp_path):
    path = tmp_path / "h.csv"
    pd.DataFrame({"train_loss": [1.0, "oops", 0.7, 0.6], "val_loss": [1.1, 0.9, 0.8, 0.8]}).to_csv(path, index=False)
    assert_clean_error(run(["diagnose", str(path)]), "'train_loss'", "oops")


def test_too_short_history(tmp_path):
    path = tmp_path / "h.csv"
    pd.DataFrame({"train_loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}).to_csv(path, index=False)
    assert_clean_error(run(["diagnose", str(path)]), "at least 3 epochs")


def test_missing_file(tmp_path):
    assert_clean_error(run(["diagnose", str(tmp_path / "nope.mlp")]), "file not found")


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04truncated"], ids=["text", "truncated-zip"])
def test_damaged_model_file(tmp_path, content):
    path = tmp_path / "m.mlp"
    path.write_bytes(content)
    assert_clean_error(run(["diagnose", str(path)]), "m.mlp")


def test_foreign_zip_is_not_taken_for_a_table(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert_clean_error(run(["diagnose", str(path)]), "not an mlpcli model file")


def test_train_options_need_learning_curve(run_files):
    res = run(["diagnose", run_files["model"], "--hidden", "8"])
    assert res.exit_code == 2 and "--hidden applies only with --learning-curve" in res.output


def test_curve_options_do_not_apply_to_learning_curve(run_files):
    res = run(["diagnose", "--learning-curve", run_files["data"], "--metric", "metric"])
    assert res.exit_code == 2 and "--metric" in res.output


@pytest.mark.parametrize("option", ["--no-chart", "--chart"])
def test_chart_option_does_not_apply_to_learning_curve(run_files, option):
    """--learning-curve draws no terminal chart: --no-chart was accepted and silently ignored."""
    res = run(["diagnose", "--learning-curve", run_files["data"], option])
    assert_clean_error(res, option, "--learning-curve", code=2)


def test_help_has_examples():
    res = run(["diagnose", "--help"])
    assert res.exit_code == 0 and "Examples:" in res.output and "--learning-curve" in res.output


# --- the terminal chart ------------------------------------------------------------------------------


def test_terminal_chart_draws_both_curves_axes_and_best_epoch():
    epochs = np.arange(40)
    train = 1.0 * np.exp(-epochs / 8)
    val = 0.3 + 0.7 * np.exp(-epochs / 8) + 0.004 * np.maximum(epochs - 15, 0)
    text = terminal_chart(train, val, width=50, height=10, best_epoch=16, baseline=1.1)
    lines = text.splitlines()
    assert len(lines) == 10 + 3  # rows, the x axis, epoch labels, legend
    plot_rows = lines[:10]
    assert all(len(l) == len(plot_rows[0]) for l in plot_rows)
    body = "\n".join(plot_rows)
    assert TRAIN_CHAR in body and VAL_CHAR in body
    assert "1.1" in lines[0]  # the top of the range is the baseline
    assert "best epoch 16" in lines[-1] and "baseline 1.1" in lines[-1]
    marker = lines[-2].index("▲")
    assert all(row[marker] in "│" + TRAIN_CHAR + VAL_CHAR + BOTH_CHAR for row in plot_rows)
    # the training curve ends on the bottom row (its minimum), validation above it
    assert lines[9].rstrip().endswith(TRAIN_CHAR)


def test_terminal_chart_averages_long_runs_into_the_width_and_skips_nan():
    n = 1000
    train = np.linspace(1, 0.1, n)
    val = np.linspace(1.1, 0.3, n)
    val[::7] = np.nan
    text = terminal_chart(train, val, width=30, height=6)
    rows = text.splitlines()[:6]
    assert all(len(r.split("┤", 1)[1]) == 30 for r in rows)
    assert str(n) in text.splitlines()[-2]
    assert sum(r.count(VAL_CHAR) + r.count(BOTH_CHAR) for r in rows) == 30


def test_terminal_chart_flat_and_empty_inputs():
    assert TRAIN_CHAR in terminal_chart([0.5] * 5, [0.5] * 5) or BOTH_CHAR in terminal_chart([0.5] * 5, [0.5] * 5)
    assert "no finite values" in terminal_chart([np.nan] * 3, [np.nan] * 3)
    with pytest.raises(ValueError):
        terminal_chart([1, 2], [1, 2], width=3)


# --- ensembles: a history with a member column ------------------------------------------------------


@pytest.fixture(scope="module")
def ensemble_files(tmp_path_factory):
    """History tables of 5-member ensembles (members of different lengths), written as train
    --history writes them: one where every member overfits, one where the members' validation
    folds disagree."""
    d = tmp_path_factory.mktemp("ensemble")
    files = {}
    for shape in ENSEMBLE_SHAPES:
        path = d / f"{shape}.csv"
        path.write_text(history_csv(ensemble_history(shape, n_members=5, seed=0)))
        files[shape] = str(path)
    files["dir"] = d
    return files


def test_members_that_all_overfit_are_labelled_overfit(ensemble_files):
    res = run(["diagnose", ensemble_files["overfit"], "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    rows = ensemble_history("overfit", n_members=5, seed=0)
    lengths = [sum(r["member"] == m for r in rows) for m in range(1, 6)]
    assert doc["label"] == "overfit"
    assert doc["n_members"] == 5 and doc["n_epochs"] == sorted(lengths)[2]  # while 3 of 5 still ran
    assert [m["member"] for m in doc["members"]] == [1, 2, 3, 4, 5]
    assert [m["epochs"] for m in doc["members"]] == lengths
    assert [m["best_epoch"] for m in doc["members"]] == [
        [r["best_epoch"] for r in rows if r["member"] == m][-1] for m in range(1, 6)]
    assert doc["member_spread"] == doc["evidence"]["member_spread"] < 0.1


def test_a_member_without_training_values_is_said_to_be_left_out_of_that_mean(tmp_path):
    """A member whose train_loss cells are all empty was dropped from the training mean only, the header still
    reading "mean of 5 members" (training averaged 4, validation 5)."""
    rows = ensemble_history("overfit", n_members=5, seed=0)
    for r in rows:
        if r["member"] == 2:
            r["train_loss"] = float("nan")
    path = tmp_path / "h.csv"
    path.write_text(history_csv(rows))
    doc = json.loads(run(["diagnose", str(path), "--json"]).stdout)
    assert any("member 2 has no training value: the training curve is the mean of the other 4" in n
               for n in doc["notes"]), doc["notes"]


def test_members_that_disagree_give_high_noise_evidence(ensemble_files):
    doc = json.loads(run(["diagnose", ensemble_files["disagree"], "--json"]).stdout)
    assert doc["evidence"]["member_spread"] > 0.2
    assert doc["label"] == "unrepresentative_validation_noisy"
    assert "members" in doc["summary"]


def test_ensemble_panel_says_the_curves_are_a_mean(ensemble_files):
    res = run(["diagnose", ensemble_files["disagree"]])
    assert res.exit_code == 0, res.output
    for needle in ("mean of 5 members", "kept epochs", "member_spread", "validation (mean of 5)"):
        assert needle in res.stdout, needle


def test_ensemble_plot_draws_every_member(ensemble_files):
    out = ensemble_files["dir"] / "members.svg"
    res = run(["diagnose", ensemble_files["overfit"], "--plot", str(out)])
    assert res.exit_code == 0, res.output
    svg = out.read_text()
    assert ET.fromstring(svg).tag.endswith("svg")
    assert "members (5)" in svg and "validation (mean of 5)" in svg


def test_single_network_json_has_no_member_fields(run_files):
    doc = json.loads(run(["diagnose", run_files["history"], "--json"]).stdout)
    assert not {"n_members", "members", "member_spread"} & set(doc)
    assert doc["evidence"]["member_spread"] is None


@pytest.mark.parametrize("member, needle", [("x", "non-numeric value 'x'"), ("0", "member 0 in row 2")],
                         ids=["text", "zero"])
def test_bad_member_column_is_a_clean_error(tmp_path, member, needle):
    path = tmp_path / "h.csv"
    path.write_text(f"member,epoch,train_loss,val_loss\n1,1,1.0,1.1\n{member},2,0.8,0.9\n1,3,0.7,0.8\n")
    assert_clean_error(run(["diagnose", str(path)]), needle)


# --- user errors are usage errors naming the option; an unstable run says so -------------------------


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf"])
def test_a_bad_baseline_is_a_usage_error_naming_the_option_not_the_file(run_files, value):
    res = run(["diagnose", run_files["history"], "--baseline", value])
    assert_clean_error(res, "--baseline", code=2)
    assert "h.csv" not in res.output


def test_a_bad_baseline_for_a_score_curve_is_a_usage_error_too(run_files):
    res = run(["diagnose", run_files["model"], "--metric", "metric", "--baseline", "2"])
    assert_clean_error(res, "--baseline", "below", code=2)


def test_an_empty_plot_file_name_is_a_usage_error(run_files, tmp_path):
    """--plot "" exited 0 and drew nothing."""
    for args in (["diagnose", run_files["history"]], ["diagnose", "--learning-curve", run_files["data"]]):
        assert_clean_error(run(args + ["--plot", ""]), "--plot", code=2)


@pytest.mark.parametrize("option", ["--folds=3", "--refit", "--no-refit", "--calibrate", "--no-calibrate"])
def test_learning_curve_refuses_options_it_cannot_honour(run_files, option):
    """--folds, --refit and --calibrate were silently ignored by --learning-curve."""
    res = run(["diagnose", "--learning-curve", run_files["data"], option])
    assert_clean_error(res, option.split("=")[0], "--learning-curve", code=2)


def test_a_history_that_blew_up_is_reported_unstable_with_its_epoch(tmp_path):
    """Losses infinite from epoch 86 of 100 were dropped as missing and the run read as a good fit."""
    t = np.arange(100, dtype=float)
    train, val = 0.2 + 0.9 * np.exp(-t / 10), 0.25 + 0.85 * np.exp(-t / 10)
    train[85:], val[85:] = np.inf, np.inf
    path, plot = tmp_path / "h.csv", tmp_path / "h.svg"
    pd.DataFrame({"epoch": t + 1, "train_loss": train, "val_loss": val}).to_csv(path, index=False)
    res = run(["diagnose", str(path), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert "unstable from epoch 86" in res.stdout and "Unstable training" in res.stdout
    assert "unstable from epoch 86" in plot.read_text() and "divergence (epoch 86)" in plot.read_text()
    doc = json.loads(run(["diagnose", str(path), "--json"]).stdout)
    assert doc["evidence"]["unstable_epoch"] == 86 and doc["evidence"]["n_infinite"] == 15
    # beside the label (the run before it went unstable), where a script reading the label alone sees it
    assert doc["unstable_epoch"] == 86
    pd.DataFrame({"epoch": t[:80] + 1, "train_loss": train[:80], "val_loss": val[:80]}).to_csv(path, index=False)
    assert json.loads(run(["diagnose", str(path), "--json"]).stdout)["unstable_epoch"] is None


def _json(args):
    res = run(["diagnose", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _history(tmp_path, name, **columns):
    n = len(next(iter(columns.values())))
    path = tmp_path / name
    pd.DataFrame({"epoch": range(1, n + 1), **columns}).to_csv(path, index=False)
    return str(path)


def test_baseline_help_is_right_for_regression_models_too():
    """--baseline said "default: the model's class-prior loss"; a regression model's baseline is the loss of
    predicting the training mean."""
    out = " ".join(run(["diagnose", "--help"]).output.split())
    assert "class-prior loss" not in out
    assert "for regression the training mean" in out  # --baseline and SOURCE
    assert out.count("training mean") >= 2


def test_a_run_stopped_after_three_epochs_is_read_at_the_epoch_it_kept(tmp_path):
    """`train --patience 1` stopped after epoch 3 and kept epoch 2 (validation 0.90, 0.66, 1.26); the width-3
    smoother took epoch 2's dip for a spike and said "lowest around epoch 1 (0.8397)", a value no epoch had, and
    advised restoring epoch 1."""
    path = _history(tmp_path, "h.csv", train_loss=[32.4, 0.506, 0.553], val_loss=[0.8995, 0.6601, 1.2634],
                    best_epoch=[1, 2, 2])
    doc = _json([path, "--baseline", "1.255"])
    assert doc["label"] == "overfit" and doc["best_epoch"] == 2
    ev = doc["evidence"]
    assert ev["best_epoch"] == 2 and ev["divergence_epoch"] == 2 and ev["best_val"] == 0.6601
    assert "lowest around epoch 2 (0.6601)" in doc["summary"] and "epoch 2" in doc["advice"][0]


def test_longer_runs_are_still_smoothed():
    """A one-epoch dip on a 40-epoch run stays a spike, not the best epoch."""
    train = [1.0 * 0.9 ** e + 0.2 for e in range(40)]
    val = [1.0 * 0.9 ** e + 0.3 for e in range(40)]
    val[30] = 0.05  # one wild epoch
    d = diagnose(train, val, baseline=1.2)
    assert d.evidence["best_epoch"] != 31


def test_a_rise_that_falls_short_says_which_number_fell_short(tmp_path):
    """Without a baseline the first epoch's blown-up training loss (32.4) is the scale, so validation's rise is
    1.9 % of it: the summary said "did not clearly rise after its lowest value (1.9 % of the scale, 1.093e+07
    s.e.)", ten million standard errors read as a reason."""
    path = _history(tmp_path, "h.csv", train_loss=[32.4, 0.506, 0.553], val_loss=[0.8995, 0.6601, 1.2634])
    summary = _json([path])["summary"]
    assert "rose by only 1.9 % of the scale after its lowest value (a rise counts from 4.0 %)" in summary
    assert "did not clearly" not in summary and "s.e.)" not in summary


def test_a_flat_history_without_a_baseline_is_not_called_a_high_loss(tmp_path):
    """Curves flat at a cross-entropy of 0.05 from epoch 1 were "flat at a high loss" with the advice to add
    capacity: without a baseline the first epochs' level is taken as no skill, which the verdict now says, with
    --baseline as the way to tell; given the baseline, the same curves are a good fit."""
    train = [0.050 + 0.001 * ((7 * e) % 5 - 2) for e in range(30)]
    val = [0.060 + 0.001 * ((3 * e) % 5 - 2) for e in range(30)]
    path = _history(tmp_path, "flat.csv", train_loss=train, val_loss=val)
    doc = _json([path])
    assert doc["label"] == "underfit_capacity"
    assert "high loss" not in doc["summary"] and "taken as no skill without a baseline" in doc["summary"]
    assert "--baseline" in doc["advice"][0] and "ln K" in doc["advice"][0]
    assert _json([path, "--baseline", "1.1"])["label"] == "good_fit"


def test_a_flat_run_with_a_baseline_keeps_its_advice():
    d = diagnose([0.69] * 20, [0.69] * 20, baseline=0.69)
    assert d.label == "underfit_capacity" and d.advice[0].startswith("Increase model capacity")
    assert "high loss" in d.summary


def test_regression_learning_curve_names_rmse_in_capitals(tmp_path):
    """The answers said "validation rmse improves by ..." and the caption "no-skill rmse"; diagnose and the table
    header say RMSE."""
    df = make_table("regression", n_patients=20, per_patient=2, n_features=4)
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    args = ["diagnose", "--learning-curve", str(path), "--hidden", "4", "--epochs", "3", "--fractions", "0.5,1"]
    res = run([*args, "--json", "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert "validation RMSE" in doc["more_data"]["text"] and "rmse" not in doc["more_data"]["text"]
    assert "training RMSE" in doc["bias_variance"]["text"]
    res = run([*args, "-q"])
    assert res.exit_code == 0 and "no-skill RMSE" in res.stdout and "rmse" not in res.stdout


def test_the_kept_epoch_is_said_beside_the_evidence_best_epoch(tmp_path):
    """The panel's best_epoch row (the first epoch within the noise of the best) read 1 while `--json`'s best_epoch
    (the epoch whose weights train kept) read 9, with nothing saying the two differ; both now name the kept one."""
    val = [0.95, 0.97, 0.84, 0.79, 1.02, 0.74, 1.09, 0.74, 0.72, 0.81, 0.85, 0.91]
    train = [1.13, 0.35, 0.21, 0.21, 0.26, 0.32, 0.34, 0.24, 0.26, 0.23, 0.23, 0.21]
    path = _history(tmp_path, "h.csv", train_loss=train, val_loss=val, best_epoch=[1, 1, 3, 4, 4, 6, 6, 6, 9, 9, 9, 9])
    doc = _json([path, "--baseline", "1.255"])
    assert doc["kept_epoch"] == doc["best_epoch"] == 9 and doc["evidence"]["best_epoch"] != 9
    res = run(["diagnose", path, "--baseline", "1.255", "--no-chart"])
    assert res.exit_code == 0 and "weights kept from epoch 9" in res.stdout
    no_kept = _history(tmp_path, "plain.csv", train_loss=train, val_loss=val)
    assert _json([no_kept])["kept_epoch"] is None


def test_the_stopped_early_caveat_applies_to_a_variance_verdict_too():
    """At the largest size the run was still improving and the answer was "Mostly variance", yet the caveat
    said to train longer "before reading bias from it"."""
    from mlpcli.model_selection.learning_curve import SizePoint
    from mlpcli.diagnosis.sample_size import bias_variance

    point = SizePoint(fraction=1, n_train=488, n_groups=159, train_score=0.925, val_score=0.79, train_loss=0.38,
                      val_loss=0.51, baseline_val_loss=1.25, best_epoch=10, epochs_run=10, seconds=0,
                      curve_label="underfit_stopped_early")
    out = bias_variance([point], True, 0.25, 0.75, "balanced_accuracy")
    assert out["verdict"] == "variance" and "before reading bias or variance" in out["caveat"]


def test_diagnose_names_regression_metric_curves_in_the_targets_units(tmp_path):
    """diagnose --metric metric called a regression model's RMSE curves "rmse (standardised targets)" beside a
    baseline of 23.8 in the target's units: the history has held target units since the history fix. Its loss
    baseline (and train's summary) said "always predicting the training prior" for a regression's mean."""
    from mlpcli import history as hist

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(4)])
    df["label"] = 1000.0 + 200.0 * X[:, 0] + rng.normal(size=120) * 20.0
    path, model = tmp_path / "t.csv", str(tmp_path / "m.mlp")
    df.to_csv(path, index=False)
    res = run(["train", str(path), "--no-group", "--folds", "1", "--epochs", "6", "--hidden", "8", "-o", model, "-q"])
    assert res.exit_code == 0, res.output
    assert hist.read_curves(model, "metric").name == "rmse"
    assert hist.read_curves(model, "loss").baseline_note == "loss of always predicting the training mean"
    res = run(["diagnose", model, "--metric", "metric", "--no-chart"])
    assert res.exit_code == 0, res.output
    assert "RMSE curves" in res.output and "rmse" not in res.output and "standardised" not in res.output


def _small_model(tmp_path_factory, name: str, *options: str):
    """A model file trained with ``options`` on a small table (60 rows of 6 features), with its history."""
    tmp = tmp_path_factory.mktemp(name)
    data = write_table(tmp, n_patients=20, per_patient=3, n_features=6)
    out = tmp / f"{name}.mlp"
    res = run(["train", data, *options, "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small model file with its history: one network, 8 epochs."""
    return _small_model(tmp_path_factory, "m", "--folds", "1", "--epochs", "8", "--hidden", "none")


# --- history files and sources ---------------------------------------------------------------------------------------


def test_metric_curves_that_are_empty_name_the_metric_columns(tmp_path):
    """--metric metric on a table whose metric columns are empty said "need at least 3 epochs where both train_loss
    and val_loss are finite", naming the loss columns it had not read."""
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": [1, 2, 3, 4], "train_loss": [0.9, 0.7, 0.6, 0.5], "val_loss": [1.0, 0.8, 0.7, 0.65],
                  "train_metric": [np.nan] * 4, "val_metric": [np.nan] * 4}).to_csv(path, index=False)
    res = run(["diagnose", str(path), "--metric", "metric"])
    assert_clean_error(res, str(path), "train_metric and val_metric")
    assert "train_loss" not in res.output


def test_an_empty_member_cell_is_called_empty(tmp_path):
    """It said "member nan in row 4 is not a member number (1, 2, ...)", for a cell left empty."""
    path = tmp_path / "h.csv"
    path.write_text("member,epoch,train_loss,val_loss\n1,1,0.5,0.6\n1,2,0.4,0.5\n1,3,0.3,0.4\n,1,0.5,0.6\n")
    res = run(["diagnose", str(path)])
    assert_clean_error(res, str(path), "row 4: the cell is empty")


def test_an_ensemble_whose_mean_curve_is_too_short_says_why(tmp_path):
    """One member ran 3 epochs, the other 1: "got 1" epoch while the file shows 3, with nothing saying the mean
    curve ends where half the members stopped."""
    path = tmp_path / "h.csv"
    path.write_text("member,epoch,train_loss,val_loss\n1,1,0.5,0.6\n1,2,0.4,0.5\n1,3,0.3,0.4\n2,1,0.5,0.6\n")
    assert_clean_error(run(["diagnose", str(path)]), str(path), "got 1", "members ran 1-3 epochs")


def test_a_model_file_through_standard_input_or_a_pipe_is_read_as_a_model(model):
    """`cat m.mlp | mlpcli diagnose -` (and `<(zcat m.mlp.gz)`) said "cannot parse standard input as CSV: not UTF-8
    text": a pipe was read as a history table only."""
    res = run(["diagnose", "-", "--json"], input=model.read_bytes())
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    direct = json.loads(run(["diagnose", str(model), "--json"]).stdout)
    assert doc["source"] == "standard input" and doc["kind"] == "model"
    assert doc["label"] == direct["label"] and doc["baseline"] == direct["baseline"]
    damaged = run(["diagnose", "-"], input=model.read_bytes()[:2000])
    assert_clean_error(damaged, "standard input", "model file")
    assert "/proc/self/fd" not in damaged.output


def test_a_history_table_through_standard_input_still_reads(tmp_path):
    text = "epoch,train_loss,val_loss\n" + "".join(f"{e},{1 / e:.4f},{1.1 / e + 0.05:.4f}\n" for e in range(1, 13))
    res = run(["diagnose", "-", "--json"], input=text)
    assert res.exit_code == 0 and json.loads(res.stdout)["kind"] == "history"
    res = run(["diagnose", "-"], input="a,b\n1,2\n")
    assert_clean_error(res, "standard input has no 'train_loss' or 'val_loss' column")


# --- the Python API a notebook uses ----------------------------------------------------------------------------------


def test_read_curves_takes_a_pathlib_path(model, tmp_path):
    """read_curves(Path("m.mlp")) raised AttributeError: 'PosixPath' object has no attribute 'lower'."""
    c = read_curves(pathlib.Path(model))
    assert c.kind == "model" and diagnose_curves(c).label
    history = tmp_path / "h.csv"
    pd.DataFrame({"epoch": range(1, 6), "train_loss": [1, .8, .6, .5, .45], "val_loss": [1.1, .9, .7, .65, .6]}).to_csv(
        history, index=False)
    assert read_curves(history).kind == "history"


def test_curves_from_rows_without_the_curve_columns_is_a_data_error():
    """Rows from a Keras-like log (``loss``) raised a bare KeyError: 'train_loss'."""
    with pytest.raises(DataError, match=r"row 1 has no train_loss or val_loss \(it has epoch, loss\)"):
        curves_from_history([{"epoch": 1, "loss": 0.3}])
    with pytest.raises(DataError, match="train_metric or val_metric"):
        curves_from_history([{"epoch": 1, "train_loss": 0.3, "val_loss": 0.4}], "metric")


# --- --plot without matplotlib ---------------------------------------------------------------------------------------


@pytest.fixture
def no_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError; find_spec: None


def test_plot_without_matplotlib_is_a_one_line_error_naming_what_to_install(model, tmp_path, no_matplotlib):
    """It was "Error: internal error (ModuleNotFoundError: No module named 'matplotlib')"."""
    out = tmp_path / "curves.png"
    res = run(["diagnose", str(model), "--plot", str(out)])
    assert_clean_error(res, "--plot", "matplotlib", "pip install matplotlib")
    assert "internal error" not in res.output and not out.exists()


def test_the_learning_curve_says_so_before_training(tmp_path, no_matplotlib):
    """--learning-curve trained every size and only then failed to draw."""
    data = write_table(tmp_path, n_patients=20, per_patient=2, n_features=6)
    res = run(["diagnose", "--learning-curve", data, "--epochs", "3", "--plot", str(tmp_path / "lc.svg")])
    assert_clean_error(res, "--plot", "pip install matplotlib")
    assert "training at" not in res.output and "of the training groups" not in res.output


def test_diagnose_names_a_compressed_model_and_reads_a_history_without_a_suffix(tmp_path, model):
    """`diagnose m.mlp.gz` said "unsupported table format" (the file is a model); a history table named without a
    suffix was refused though the same bytes on standard input were read."""
    import gzip
    import shutil

    packed = tmp_path / "m.mlp.gz"
    with open(model, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    res = CliRunner().invoke(cli, ["diagnose", str(packed)])
    assert res.exit_code == 1
    assert "is not a readable mlpcli model file: it is a gzip-compressed model file" in res.output
    history = tmp_path / "history"
    res = CliRunner().invoke(cli, ["train", SAMPLE, "--folds", "1", "--epochs", "4", "--hidden", "none", "-q",
                                   "-o", str(tmp_path / "h.mlp"), "--history", str(tmp_path / "h.csv")])
    assert res.exit_code == 0, res.output
    shutil.copy(tmp_path / "h.csv", history)
    by_name = CliRunner().invoke(cli, ["diagnose", str(history), "--json"])
    by_stdin = CliRunner().invoke(cli, ["diagnose", "-", "--json"], input=(tmp_path / "h.csv").read_bytes())
    assert by_name.exit_code == 0 and by_stdin.exit_code == 0, (by_name.output, by_stdin.output)
    assert json.loads(by_name.stdout)["label"] == json.loads(by_stdin.stdout)["label"]
    model_copy = tmp_path / "modelfile"  # a model without a suffix is still a model: its bytes say so
    shutil.copy(tmp_path / "h.mlp", model_copy)
    res = CliRunner().invoke(cli, ["diagnose", str(model_copy), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["label"]


def test_a_model_files_history_beyond_diagnoses_arithmetic_is_an_error_as_a_tables_is(tmp_path, model):
    """A model file whose history was scaled by 1e160 read "Noisy validation: ... wiggles by n/a of its level", exit
    0: the limit a history table is held to (the rules square deviations, which overflow) was not checked there."""
    from model_files import rewrite_model

    def scaled(meta: dict) -> None:
        for row in meta["history"]:
            row["train_loss"], row["val_loss"] = row["train_loss"] * 1e160, row["val_loss"] * 1e160

    edited = rewrite_model(model, tmp_path / "edited.mlp", scaled, lambda arrays: arrays)
    assert_clean_error(run(["diagnose", edited]), "edited.mlp: train_loss holds",
                       "beyond 1e+100, the largest value diagnose's arithmetic takes", "the file was edited or damaged")


@pytest.fixture(scope="module")
def ensemble_model(tmp_path_factory):
    """A small two-member ensemble's model file (--folds 2), its history one row per member and epoch."""
    return _small_model(tmp_path_factory, "e", "--folds", "2", "--epochs", "20", "--hidden", "8")


def test_a_model_files_history_is_held_to_a_history_tables_checks(tmp_path, model, ensemble_model):
    """An ensemble's history without its member key read as one network of every member's epochs end to end, and a
    model's epoch numbers were never checked (a table's are: no gap, no repeat)."""
    from model_files import rewrite_model

    assert run(["diagnose", str(ensemble_model)]).exit_code == 0

    def without_members(meta: dict) -> None:
        for row in meta["history"]:
            row.pop("member")

    edited = rewrite_model(ensemble_model, tmp_path / "merged.mlp", without_members, lambda arrays: arrays)
    assert_clean_error(run(["diagnose", edited]), "merged.mlp: the model records 2 ensemble members but its history "
                       "has no 'member'", "the file was edited or damaged")

    def stray_member(meta: dict) -> None:
        meta["history"][-1]["member"] = 7

    edited = rewrite_model(ensemble_model, tmp_path / "stray.mlp", stray_member, lambda arrays: arrays)
    assert_clean_error(run(["diagnose", edited]), "stray.mlp: the model's history has rows of member 7")

    def repeated_epoch(meta: dict) -> None:
        meta["history"][3]["epoch"] = meta["history"][2]["epoch"]

    edited = rewrite_model(model, tmp_path / "repeat.mlp", repeated_epoch, lambda arrays: arrays)
    assert_clean_error(run(["diagnose", edited]), "repeat.mlp: epoch 3 appears twice (row 4) of the model's "
                       "history", "the file was edited or damaged")


def test_lbfgs_curves_are_iterations(histories):
    """The panel said "13 epochs; weights kept from epoch 13" and the chart "kept epoch" for L-BFGS iterations."""
    c = read_curves(histories / "lbfgs.mlp")
    assert c.step == "iteration" and any("per L-BFGS iteration" in n for n in c.notes)
    res = run(["diagnose", str(histories / "lbfgs.mlp")])
    assert res.exit_code == 0, res.output
    assert f"{len(c.train)} iterations; weights kept from iteration {c.checkpoint_epoch}" in res.output
    assert f"kept iteration {c.checkpoint_epoch}" in res.output and "  iteration" in res.output
    doc = json.loads(run(["diagnose", str(histories / "lbfgs.mlp"), "--json"]).output)
    assert any("L-BFGS" in n for n in doc["notes"])


def test_minibatch_curves_stay_epochs(histories):
    c = read_curves(histories / "adam.mlp")
    assert c.step == "epoch" and not any("L-BFGS" in n for n in c.notes)
    res = run(["diagnose", str(histories / "adam.mlp")])
    assert res.exit_code == 0, res.output
    assert "12 epochs" in res.output and "iteration" not in res.output


def test_diagnose_given_the_data_instead_of_a_history_points_to_learning_curve(tmp_path):
    """`diagnose single_cell.h5ad` said the file "is read by train, ..., diagnose and gradcheck, not as a table"."""
    from pathlib import Path

    cells = Path(__file__).resolve().parents[1] / "sample_data" / "single_cell.h5ad"
    res = run(["diagnose", str(cells)])
    assert res.exit_code == 1 and "is single-cell data, not a run's history" in res.output
    assert f"diagnose --learning-curve {cells}" in res.output
    table = _labelled(tmp_path / "t.csv", ["a", "b"])
    wide = pd.read_csv(table)
    for j in range(4, 30):
        wide[f"g{j}"] = 0.0
    wide.to_csv(table, index=False)
    res = run(["diagnose", str(table)])
    assert res.exit_code == 1 and "it looks like the data itself: diagnose --learning-curve" in res.output
