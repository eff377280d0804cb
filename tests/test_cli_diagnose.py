"""`mlpcli diagnose` on a model file and on a history table: the verdict panel, --json, --plot,
the terminal chart, and clean one-line errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.diagnosis import LABELS
from mlpcli.history import history_csv
from mlpcli.plotting import BOTH_CHAR, TRAIN_CHAR, VAL_CHAR, terminal_chart
from tables import write_table
from cli_helpers import run, assert_clean_error
from curves import ENSEMBLE_SHAPES, ensemble_history

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


def test_metric_curves_of_a_history_table_infer_the_direction_and_say_so(run_files):
    res = run(["diagnose", run_files["history"], "--metric", "metric"])
    assert res.exit_code == 0, res.output
    assert "reading higher values as better" in res.stderr
    res = run(["diagnose", run_files["history"], "--metric", "metric", "--lower-is-better", "--json"])
    assert json.loads(res.stdout)["higher_is_better"] is False


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
