"""`mlpcli info MODEL`: what a model file holds, read back from the file alone."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.model_summary import describe
from cli_helpers import assert_clean_error, run, table_rows
from tables import write_table

FAST = ["--epochs", "4", "--folds", "2", "--seed", "0", "-q"]


def _train(tmp_path, *args, task="binary", n_features=14):
    data = write_table(tmp_path, task=task, n_features=n_features)
    out = tmp_path / "m.mlp"
    res = run(["train", data, "-o", str(out), "--json", *FAST, *args])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout), data


def test_info_of_a_top_var_model_names_the_features_a_table_must_supply(tmp_path):
    """--top-var: the members' setting, and the features they use (a table must supply those; predict names
    only those when missing), beside the training table's features."""
    out, _, _ = _train(tmp_path, "--hidden", "8", "--top-var", "5", n_features=14)
    model = model_io.load(out)
    used = model.preprocessor.kept_features
    assert len(used) < 14
    doc = json.loads(run(["info", str(out), "--json", "--features"]).stdout)
    assert doc["preprocessing"]["top_var"] == 5
    assert doc["features"]["count"] == 14 and doc["features"]["used"] == len(used)
    assert doc["features"]["used_names"] == used
    text = run(["info", str(out)]).stdout
    assert "top-var 5" in text and f"{len(used)}, which a table must supply" in text


def test_info_reports_what_training_reported(tmp_path):
    out, trained, data = _train(tmp_path, "--hidden", "8")
    doc = json.loads(run(["info", str(out), "--json"]).stdout)
    assert doc["task"] == "binary" and doc["classes"] == trained["classes"]
    assert doc["positive_class"] == trained["classes"][-1]  # the class the positive-class metrics describe
    assert doc["features"]["count"] == 14 and len(doc["features"]["names"]) == 10
    assert doc["network"]["layers"] == [14, 8, 1] and doc["network"]["members"] == 2
    assert doc["network"]["parameters"] == 2 * (14 * 8 + 8 + 8 + 1)
    held = doc["held_out"]
    assert held["kind"] == "out-of-fold"
    for key, value in trained["validation_metrics"].items():  # the held-out estimate travels with the model
        if isinstance(value, (int, float)):
            assert held["metrics"][key] == value, key
    assert doc["training"]["resolved"]["batch_size"] == 16  # what --batch-size auto became for ~60 rows
    assert doc["training"]["options"]["batch_size"] == "auto"
    assert doc["provenance"]["data_sha256"] == model_io.load(out).provenance["data_sha256"]
    assert doc["diagnosis"]["label"] == trained["diagnosis"]["label"]
    assert doc["file"]["bytes"] == out.stat().st_size

    every = json.loads(run(["info", str(out), "--json", "--features"]).stdout)
    assert every["features"]["names"] == model_io.load(out).feature_names and every["features"]["listed"] == "all"

    text = run(["info", str(out)]).stdout
    for needle in ("positive class", "out-of-fold metrics", "balanced accuracy", "14 → 8 → 1", "(auto)",
                   doc["provenance"]["data_sha256"]):
        assert needle in text, needle


def test_info_on_a_multiclass_softmax_regression_and_an_older_model(tmp_path):
    out, _, _ = _train(tmp_path, "--hidden", "", task="multiclass")
    doc = describe(model_io.load(out), out)
    assert doc["positive_class"] is None and doc["network"]["activation"] is None
    assert doc["network"]["dropout"] is None  # no hidden layer: nothing to drop out
    model = model_io.load(out)
    for key in ("held_out", "held_out_metrics"):  # as written before the metrics were stored
        model.fit.pop(key)
    model_io.save(model, tmp_path / "old.mlp")
    assert "not stored" in run(["info", str(tmp_path / "old.mlp")]).stdout


def test_info_errors_are_one_line(tmp_path):
    assert_clean_error(run(["info", str(tmp_path / "missing.mlp")]), "missing.mlp")
    bad = tmp_path / "bad.mlp"
    bad.write_bytes(b"not a model")
    assert_clean_error(run(["info", str(bad)]), "bad.mlp")
    assert run(["info"]).exit_code == 2


def test_quiet_is_accepted_by_info_and_diagnose_as_by_every_command(tmp_path):
    """-q is one rule for every command (hide notes and progress); `info -q` was "No such option" and
    `diagnose MODEL -q` a usage error, which broke scripts that pass -q to every mlpcli call."""
    out = _train(tmp_path)[0]
    for command in (["info", str(out)], ["diagnose", str(out)]):
        plain, quiet = run(command), run([*command, "-q"])
        assert plain.exit_code == quiet.exit_code == 0, quiet.output
        assert quiet.stdout == plain.stdout


def test_info_shows_a_regression_portfolio_as_the_rmse_train_showed(tmp_path):
    """The model stores each candidate's score as "higher is better" (RMSE negated); info printed it as is:
    "no hidden layer -1.605" where train had said 1.605."""
    data = write_table(tmp_path, task="regression", n_patients=30)
    model = tmp_path / "r.mlp"
    assert run(["train", data, "--epochs", "4", "--folds", "2", "-q", "-o", str(model)]).exit_code == 0
    portfolio = model_io.load(model).fit["portfolio"]
    assert len(portfolio) > 1 and all(p["score"] < 0 for p in portfolio)
    line = table_rows(run(["info", str(model)]).output)["architecture choice"]
    assert not re.search(r"-\d", line) and f"{-portfolio[0]['score']:.3f}" in line


def test_info_says_which_rows_the_preprocessing_was_fitted_on(tmp_path):
    """Every model was said to be preprocessed on "each member's training rows (the reference: all rows)":
    wrong for a --refit network (fitted on all rows) and for one network (its training rows only)."""
    fitted_on = {}
    for name, args in (("ensemble", []), ("refit", ["--refit"]), ("one", ["--folds", "1"])):
        (tmp_path / name).mkdir()
        out, _, _ = _train(tmp_path / name, "--hidden", "8", *args)
        fitted_on[name] = json.loads(run(["info", str(out), "--json"]).stdout)["preprocessing"]["fitted_on"]
    assert fitted_on["ensemble"].startswith("each member's training rows")
    assert fitted_on["refit"].startswith("all rows") and "member" not in fitted_on["refit"]
    assert fitted_on["one"].startswith("the network's training rows") and "all rows" not in fitted_on["one"]


def test_info_shows_each_targets_and_labels_held_out_figures(tmp_path):
    """The model kept only the pooled held-out metrics, so `info` gave several targets' RMSE in mixed units alone;
    it now keeps and shows each target's (and each label's) own figures, as `train` printed them."""
    rng = np.random.default_rng(2)
    n, d = 90, 6
    X = rng.standard_normal((n, d))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(d)])
    df["age"] = 50 + 10 * X[:, 0] + rng.standard_normal(n)
    df["ic50"] = 1e-6 * (1 + 0.3 * X[:, 1] + 0.05 * rng.standard_normal(n))
    df["A"] = (X[:, 2] > 0).astype(int)
    df["B"] = (X[:, 3] > 0.5).astype(int)
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    reg, oof = tmp_path / "reg.mlp", tmp_path / "oof.csv"
    assert run(["train", str(data), "--target", "age,ic50", "--drop", "A,B", "--epochs", "20", "-q", "-o", str(reg),
                "--oof", str(oof)]).exit_code == 0
    doc = json.loads(run(["info", str(reg), "--json"]).stdout)
    rows = {r["target"]: r for r in doc["held_out"]["per_target"]}
    held = pd.read_csv(oof)
    for t in ("age", "ic50"):
        assert rows[t]["rmse"] == pytest.approx(np.sqrt(np.mean((held[f"pred_{t}"] - held[t]) ** 2)), rel=1e-6)
    text = " ".join(run(["info", str(reg)]).output.split())
    assert "each below" in text and "ic50 │ RMSE" in text
    ml = tmp_path / "ml.mlp"
    assert run(["train", str(data), "--target", "A,B", "--drop", "age,ic50", "--epochs", "20", "-q",
                "-o", str(ml)]).exit_code == 0
    doc = json.loads(run(["info", str(ml), "--json"]).stdout)
    assert [r["label"] for r in doc["held_out"]["per_label"]] == ["A", "B"]
    assert [r["support"] for r in doc["held_out"]["per_label"]] == [int(df["A"].sum()), int(df["B"].sum())]


# ── info says what the model holds ──────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def info_models(small_table, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("info")
    for name, extra in (("hold", ["--folds", "1"]), ("lbfgs", ["--optimizer", "lbfgs"]), ("refit", ["--refit"])):
        res = run(["train", str(small_table), "--hidden", "4", "--epochs", "3", "-q", *extra,
                   "-o", str(tmp / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    return tmp


def _info(path) -> str:
    res = run(["info", str(path)], env={"COLUMNS": "2000"})  # each row on one line
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def test_info_says_which_rows_the_class_counts_are_of(info_models):
    text = _info(info_models / "hold.mlp")
    assert "(samples per class in the 96 training rows)" in text  # 120 rows, a fifth held out


def test_info_says_how_many_lbfgs_runs_converged(info_models):
    text = _info(info_models / "lbfgs.mlp")
    assert "iterations run 3, 3, 3, 3, 3" in text and "0 of 5 converged" in text and "to convergence" not in text


def test_info_says_a_refit_models_figures_are_the_members(info_models):
    text = _info(info_models / "refit.mlp")
    assert "the cross-fitted members', which overstate the refit network that ships" in text
    assert "(members' mean curves)" in text


def test_info_gives_the_settings_the_refit_network_resolved_for_all_rows(info_models, tmp_path):
    """The refit network's "auto" settings were "resolved for all the rows and are not stored": its l2 (which
    shrinks as the rows grow) and batch are stored now, beside the members'."""
    from model_files import rewrite_model

    path = info_models / "refit.mlp"
    doc = json.loads(run(["info", str(path), "--json"]).stdout)
    refit, members = doc["training"]["refit"], doc["training"]["resolved"]
    assert refit["n_train"] == 120 and refit["epochs_run"] == doc["training"]["refit_epochs"]
    member_l2 = members["l2"] if isinstance(members["l2"], list) else [members["l2"]]
    assert all(refit["l2"] < l2 for l2 in member_l2)  # more rows, a smaller penalty
    text = _info(path)
    assert (f"refit for {refit['epochs_run']} epochs on all 120 rows (resolved for them: lr {refit['lr']:.4g}, "
            f"batch {refit['batch_size']}, l2 {refit['l2']:.4g}") in text
    assert "the ones above are the members'" in text and "not stored" not in text

    def older(meta: dict) -> None:  # a file written before the refit's settings were stored
        del meta["fit"]["refit"]
    old = rewrite_model(path, tmp_path / "old.mlp", older, lambda a: a)
    assert "the refit network's were resolved for all the rows and are not stored: model written by an earlier " \
           "version" in _info(old)


def test_info_says_units_and_ece_as_they_are(tmp_path):
    """Without a patient column the prediction sets' scores were "(400 patients)"; a multi-label model's ECE was
    called top-label, which it is not (every label's call), and its labels' positives "samples per class"."""
    from tables import make_table

    run_cli = run
    table = make_table("multilabel", n_patients=40, per_patient=1).drop(columns=["patient_id"])
    table.to_csv(tmp_path / "t.csv", index=False)
    model = str(tmp_path / "m.mlp")
    assert run_cli(["train", str(tmp_path / "t.csv"), "--target", "lab0,lab1,lab2", "--no-group", "--epochs", "3",
                    "-q", "-o", model]).exit_code == 0
    text = " ".join(run_cli(["info", model], env={"COLUMNS": "400"}).output.split())
    assert "ECE (every label call)" in text and "top-label" not in text
    # a label's count is its positives: "samples per class" read as if each row held one of the labels
    assert "(positives per label in the 40 training rows)" in text and "per class" not in text
    binary = make_table("binary", n_patients=40, per_patient=3).drop(columns=["patient_id"])
    binary.to_csv(tmp_path / "b.csv", index=False)
    assert run_cli(["train", str(tmp_path / "b.csv"), "--no-group", "--epochs", "3", "-q", "-o", model]).exit_code == 0
    text = " ".join(run_cli(["info", model], env={"COLUMNS": "400"}).output.split())
    assert "out-of-fold scores (no patient column: each row its own unit)" in text


def test_a_file_name_that_is_not_utf8_gives_valid_json(tmp_path):
    """`info m\\xe9.mlp --json` wrote the name's byte as a lone surrogate escape, which strict JSON readers refuse."""
    import os
    import shutil

    from tables import make_table

    make_table("binary", n_patients=20).to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--folds", "2", "--epochs", "2", "-q", "-o", str(model)]).exit_code == 0
    odd = os.path.join(os.fsencode(tmp_path), b"m\xe9.mlp")
    shutil.copy(model, odd)
    res = run(["info", os.fsdecode(odd), "--json"])
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert "\\udce9" not in text
    doc = json.loads(text)
    assert "m\ufffd.mlp" in json.dumps(doc, ensure_ascii=False)


def test_the_estimate_row_names_an_architecture_choice_only_where_there_was_one(tmp_path):
    """info said each held-out row was scored "by the architecture chosen on other held-out rows" of a model trained
    with a fixed --hidden, which chose none (train's own note said only the epoch)."""
    data = write_table(tmp_path)
    out = tmp_path / "fixed.mlp"
    assert run(["train", data, "-o", str(out), "--hidden", "8", *FAST]).exit_code == 0
    text = " ".join(run(["info", str(out)]).output.split())
    assert "each row scored at the epoch chosen on other held-out rows" in text and "architecture" not in text
