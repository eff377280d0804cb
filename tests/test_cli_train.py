"""End-to-end tests of `mlpcli train` (CliRunner and a real subprocess)."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli import model_io
from mlpcli.cli import cli
from cli_helpers import assert_clean_error, run
from tables import SAMPLE, make_table, write_table

FAST = ["--hidden", "8", "--epochs", "6", "--quiet"]


@pytest.mark.parametrize("task,extra", [
    ("binary", []),
    ("multiclass", []),
    ("multilabel", ["--target", "lab0,lab1,lab2"]),
    ("regression", []),
])
def test_every_task_type_trains_and_saves(tmp_path, task, extra):
    data = write_table(tmp_path, task=task)
    out = tmp_path / "m.mlp"
    res = run(["train", data, "-o", str(out), "--json", *FAST, *extra])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["task"] == task
    # the default: five cross-fitted members; every patient is held out by exactly one of them
    assert doc["split"]["n_groups_train"] == 40 and len(doc["fit"]["members"]) == 5
    assert doc["held_out"] == "out-of-fold"
    assert sum(m["n_val"] for m in doc["fit"]["members"]) == doc["split"]["n_train"]
    model = model_io.load(out)
    assert model.task == task and len(model.members) == 5
    if task in ("binary", "multiclass"):
        assert doc["validation_metrics"]["balanced_accuracy"] is not None


def test_default_output_names_roles_split_and_summary(tmp_path):
    data = write_table(tmp_path)
    res = run(["train", data, "-o", str(tmp_path / "m.mlp"), "--hidden", "8", "--epochs", "5"])
    assert res.exit_code == 0, res.output
    for needle in ("group: patient_id", "task: multiclass", "Cross-fitting: StratifiedGroupKFold", "Training summary",
                   "best 5", "baseline loss", "out-of-fold metrics", "balanced accuracy", "calibration", "temperature",
                   "learning curves", "members' mean curves"):
        assert needle in res.output, needle
    single = run(["train", data, "-o", str(tmp_path / "m1.mlp"), "--hidden", "8", "--epochs", "5", "--folds", "1"])
    for needle in ("Split: StratifiedGroupKFold", "best epoch", "validation metrics", "not calibrated: 24 held-out rows"):
        assert needle in single.output, needle


def test_history_file_and_model_contents(tmp_path):
    data = write_table(tmp_path)
    hist = tmp_path / "h.csv"
    res = run(["train", data, "-o", str(tmp_path / "m.mlp"), "--history", str(hist), *FAST])
    assert res.exit_code == 0
    h = pd.read_csv(hist)
    assert list(h.columns[:4]) == ["member", "epoch", "train_loss", "val_loss"]
    assert {"train_loss_eval", "train_metric", "val_metric", "lr", "seconds"} <= set(h.columns)
    assert len(h) == 5 * 6 and sorted(h["member"].unique()) == [1, 2, 3, 4, 5]
    assert (h.groupby("member")["epoch"].max() == 6).all()


def test_real_subprocess(tmp_path):
    data = write_table(tmp_path)
    out = tmp_path / "m.mlp"
    proc = subprocess.run([sys.executable, "-m", "mlpcli", "train", data, "-o", str(out), *FAST],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Training summary" in proc.stdout
    assert model_io.load(out).task == "multiclass"


def test_same_seed_same_weights(tmp_path):
    data = write_table(tmp_path)

    def weights(name, seed):
        out = tmp_path / name
        assert run(["train", data, "-o", str(out), "--seed", str(seed), "--dropout", "0.2", *FAST]).exit_code == 0
        return model_io.load(out).network.flat_params.copy()

    np.testing.assert_array_equal(weights("a.mlp", 1), weights("b.mlp", 1))
    assert not np.array_equal(weights("a.mlp", 1), weights("c.mlp", 2))


def test_interrupt_writes_a_loadable_model_and_exits_130(tmp_path, monkeypatch):
    from mlpcli import cli as cli_mod

    data = write_table(tmp_path)
    original = cli_mod.TrainProgress.__call__

    def interrupt_at_3(self, row):
        original(self, row)
        if row.get("epoch") == 3:  # epoch rows (the first event is the plan)
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_mod.TrainProgress, "__call__", interrupt_at_3)
    out, hist = tmp_path / "m.mlp", tmp_path / "h.csv"
    res = run(["train", data, "-o", str(out), "--history", str(hist), "--hidden", "8", "--epochs", "50",
               "--n-jobs", "1"])
    assert res.exit_code == 130
    assert "Interrupted" in res.output
    model = model_io.load(out)
    assert model.fit["interrupted"] and model.fit["epochs_run"] == 3 and len(model.members) == 1
    assert len(pd.read_csv(hist)) == 3


def test_interrupt_with_members_in_parallel_keeps_the_finished_members_and_exits_130(tmp_path, monkeypatch):
    from mlpcli import cli as cli_mod

    data = write_table(tmp_path)

    def interrupt(self, row):  # as the first member's result arrives
        if row.get("event") == "run_done":
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_mod.TrainProgress, "__call__", interrupt)
    out = tmp_path / "m.mlp"
    res = run(["train", data, "-o", str(out), "--hidden", "8", "--epochs", "5", "--n-jobs", "2"])
    assert res.exit_code == 130 and "Interrupted" in res.output and "members trained so far" in res.output
    model = model_io.load(out)
    assert model.fit["interrupted"] and 1 <= len(model.members) < 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_second_stop_while_the_finished_members_are_scored_keeps_them(tmp_path, monkeypatch):
    """A second stop signal moments after the first (Ctrl-C twice, a scheduler's SIGTERM to the process and its
    group) arrived while the members finished in parallel were being scored, and threw them all away ("nothing
    trained yet to keep", no model): the command line's handler holds a signal within a step that completes a
    result already paid for (``interrupts.finishing``), which the scoring now is."""
    from mlpcli import cli as cli_mod, interrupts
    from mlpcli.model_io import Member

    data = write_table(tmp_path)

    def interrupt(self, row):  # the first stop, as the first member's result arrives
        if row.get("event") == "run_done":
            raise KeyboardInterrupt

    scored = Member.raw_output
    second = []

    def raw_output(self, *args, **kwargs):  # the second, as the command line's handler would deliver it
        if not second:
            second.append(KeyboardInterrupt("the second signal"))
            if not interrupts.holding():
                raise second[0]
            interrupts.defer(second[0])
        return scored(self, *args, **kwargs)

    monkeypatch.setattr(cli_mod.TrainProgress, "__call__", interrupt)
    monkeypatch.setattr(Member, "raw_output", raw_output)
    out = tmp_path / "m.mlp"
    res = run(["train", data, "-o", str(out), "--hidden", "8", "--epochs", "5", "--n-jobs", "2"])
    assert second and res.exit_code == 130, res.output
    assert "members trained so far" in res.output
    model = model_io.load(out)
    assert model.fit["interrupted"] and 1 <= len(model.members) < 5


def test_members_in_parallel_give_the_same_model_file(tmp_path):
    data = write_table(tmp_path)
    files = []
    for jobs in ("1", "2"):
        out = tmp_path / f"m{jobs}.mlp"
        assert run(["train", data, "-o", str(out), "--hidden", "8", "--epochs", "5", "--n-jobs", jobs, "-q"]).exit_code == 0
        files.append(out.read_bytes())
    assert files[0] == files[1]


def test_the_same_data_staged_elsewhere_and_the_default_threads_give_the_same_model_file(tmp_path, monkeypatch):
    """A batch job stages its data into its own scratch directory: the model recorded the path as typed
    (and --threads 1 against the default's null), so the same data, options, seed and threads gave other
    bytes."""
    import shutil

    data = write_table(tmp_path)
    stage = tmp_path / "job42"
    stage.mkdir()
    shutil.copy(data, stage)
    monkeypatch.chdir(tmp_path)
    name = os.path.basename(data)
    files = []
    for i, (path, extra) in enumerate(((data, []), (f"./{name}", []), (str(stage / name), ["--threads", "1"]))):
        out = tmp_path / f"m{i}.mlp"
        assert run(["train", path, "-o", str(out), "--hidden", "8", "--epochs", "3", "-q", *extra]).exit_code == 0
        files.append(out.read_bytes())
    assert files[0] == files[1] == files[2]
    assert model_io.load(tmp_path / "m0.mlp").provenance["data_file"] == name


def test_config_file_values_and_flags_win(tmp_path):
    data = write_table(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text('hidden = [5]\nepochs = 3\nbatch-size = 16\nquiet = true\n')
    out = tmp_path / "m.mlp"
    assert run(["train", data, "--config", str(cfg), "-o", str(out)]).exit_code == 0
    m = model_io.load(out)
    assert m.network.hidden == [5] and m.fit["epochs_run"] == 3 and m.config["batch_size"] == 16
    assert run(["train", data, "--config", str(cfg), "--epochs", "4", "-o", str(out)]).exit_code == 0
    assert model_io.load(out).fit["epochs_run"] == 4
    cfg.write_text("hiden = [5]\n")
    res = run(["train", data, "--config", str(cfg), "-o", str(out)])
    assert res.exit_code == 2 and "unknown key 'hiden'" in res.output


def test_class_weight_balanced_and_focal_options(tmp_path):
    df = make_table(task="binary")
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    for extra in (["--class-weight", "balanced"], ["--loss", "focal", "--focal-alpha", "0.25"],
                  ["--loss", "hinge", "--class-weight", "case=3"], ["--loss", "ce", "--label-smoothing", "0.1"],
                  ["--pos-weight", "2"]):
        res = run(["train", str(data), "-o", str(tmp_path / "m.mlp"), *FAST, *extra])
        assert res.exit_code == 0, (extra, res.output)


def test_explicit_validation_table(tmp_path):
    train_df = make_table(seed=0)
    val_df = make_table(seed=1)
    val_df["patient_id"] = "V" + val_df["patient_id"]
    val_df["sample_id"] = "V" + val_df["sample_id"]
    val_df = val_df[list(val_df.columns[:4]) + list(val_df.columns[4:][::-1])]  # reordered features
    tp, vp = tmp_path / "t.csv", tmp_path / "v.csv"
    train_df.to_csv(tp, index=False)
    val_df.to_csv(vp, index=False)
    res = run(["train", str(tp), "--val-data", str(vp), "-o", str(tmp_path / "m.mlp"), "--json", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["split"]["n_val"] == len(val_df) and "explicit" in doc["split"]["strategy"]
    # a shared patient is refused
    val_df["patient_id"] = train_df["patient_id"].values
    val_df.to_csv(vp, index=False)
    assert_clean_error(run(["train", str(tp), "--val-data", str(vp), "-o", str(tmp_path / "m2.mlp"), *FAST]))
    assert not (tmp_path / "m2.mlp").exists()


# ------------------------------------------------------------------------- bad input
def _bad_tables(tmp_path):
    base = make_table()
    cases = {}

    def put(name, df=None, text=None):
        p = tmp_path / name
        if text is not None:
            p.write_text(text)
        else:
            df.to_csv(p, index=False)
        cases[name] = str(p)

    put("empty.csv", text="")
    df = base.copy()
    df.loc[3, "f02"] = np.nan
    put("missing_values.csv", df)
    df = base.copy()
    df["f03"] = df["f03"].astype(str)
    df.loc[0, "f03"] = "high"
    put("non_numeric.csv", df)
    df = base.copy()
    df.loc[1, "sample_id"] = df.loc[0, "sample_id"]
    put("dup_ids.csv", df)
    df = base.copy()
    df["label"] = "same"
    put("one_class.csv", df)
    df = base.copy()
    df.loc[0:2, "label"] = "rare"  # three samples, all from patient 0
    put("rare_class.csv", df)
    put("dup_columns.csv", text="sample_id,label,f1,f1\nS1,a,1,2\nS2,b,3,4\n")
    return cases


@pytest.mark.parametrize("case,needles", [
    ("empty.csv", ["empty"]),
    ("missing_values.csv", ["missing", "--impute", "f02"]),
    ("non_numeric.csv", ["numeric", "f03"]),
    ("dup_ids.csv", ["duplicate", "S0000"]),
    ("one_class.csv", ["single class"]),
    ("rare_class.csv", ["rare"]),
    ("dup_columns.csv", ["duplicate", "f1"]),
])
def test_bad_tables_give_one_line_errors_and_no_model(tmp_path, case, needles):
    cases = _bad_tables(tmp_path)
    out = tmp_path / "m.mlp"
    res = run(["train", cases[case], "-o", str(out), *FAST])
    assert_clean_error(res, *needles)
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_missing_file_and_columns(tmp_path):
    data = write_table(tmp_path)
    assert_clean_error(run(["train", str(tmp_path / "nope.csv"), *FAST]), "nope.csv")
    assert_clean_error(run(["train", data, "--target", "subtype", *FAST]), "subtype", "--target")
    assert_clean_error(run(["train", data, "--group", "donor", *FAST]), "donor", "--group")
    assert_clean_error(run(["train", data, "--id", "barcode", *FAST]), "barcode")


def test_impute_fixes_missing_values(tmp_path):
    df = make_table()
    df.loc[3, "f02"] = np.nan
    p = tmp_path / "d.csv"
    df.to_csv(p, index=False)
    assert run(["train", str(p), "--impute", "median", "-o", str(tmp_path / "m.mlp"), *FAST]).exit_code == 0


@pytest.mark.parametrize("args,needle,code", [
    (["--hidden", "12,x"], "--hidden", 2),
    (["--val-size", "1.5"], "--val-size", 2),
    (["--dropout", "1"], "--dropout", 2),
    (["--hidden", "8,,8"], "--hidden", 2),
    (["--epochs", "0"], "--epochs", 2),
    (["--folds", "0"], "--folds", 2),
    (["--folds", "1", "--refit"], "--refit", 2),
    (["--loss", "mse"], "regression loss", 2),  # an option the task cannot take: usage, as --class-weight on regression
    (["--label-smoothing", "0.1", "--loss", "auto", "--target", "lab0,lab1"], "--label-smoothing", 2),
    (["--class-weight", "nosuch=2"], "--class-weight", 1),
    (["--activation", "swish"], "swish", 2),
    (["-o", "/nonexistent-dir/m.mlp"], "does not exist", 1),
])
def test_bad_options(tmp_path, args, needle, code):
    data = write_table(tmp_path, task="multiclass") if "lab0,lab1" not in args else write_table(tmp_path, task="multilabel")
    res = run(["train", data, *FAST, *args])
    assert res.exit_code == code, res.output
    assert needle in res.output and "Traceback" not in res.output


def test_debug_shows_a_traceback(tmp_path):
    res = CliRunner().invoke(cli, ["--debug", "train", str(tmp_path / "nope.csv")])
    assert res.exit_code != 0 and res.exception is not None and not isinstance(res.exception, SystemExit)


def test_stdin_input(tmp_path):
    text = make_table().to_csv(index=False)
    out = tmp_path / "m.mlp"
    res = run(["train", "-", "-o", str(out), *FAST], input=text)
    assert res.exit_code == 0, res.output
    assert model_io.load(out).task == "multiclass"


@pytest.mark.parametrize("scaling", ["robust", "standard"])
def test_preprocessing_is_fitted_on_each_members_training_rows_only(tmp_path, scaling):
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection import holdout, kfold
    from mlpcli.pipeline import load_dataset, train

    path = write_table(tmp_path)
    centre = (lambda X: np.median(X, axis=0)) if scaling == "robust" else (lambda X: X.mean(axis=0))
    opts = TrainOptions(hidden=[4], epochs=2, seed=5, scaling=scaling)
    outcome = train(path, opts)
    ds, _ = load_dataset(path, opts)
    folds, _ = kfold(ds, 5, 1, opts.seed)
    for member, fold in zip(outcome.model.members, folds):
        np.testing.assert_allclose(member.preprocessor.center_, centre(ds.X[fold.train]))
        assert not np.allclose(member.preprocessor.center_, centre(ds.X))
    # one network: the hold-out's training rows
    single = train(path, TrainOptions(hidden=[4], epochs=2, seed=5, scaling=scaling, folds=1))
    tr, _, _ = holdout(ds, opts.val_size, opts.seed)
    np.testing.assert_allclose(single.model.members[0].preprocessor.center_, centre(ds.X[tr]))


def test_real_subprocess_bad_input_is_one_line_exit_1(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("sample_id,label,f1\nS1,a,oops\nS2,b,2\n")
    proc = subprocess.run([sys.executable, "-m", "mlpcli", "train", str(bad), "-o", str(tmp_path / "m.mlp")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("Error:")
    assert not (tmp_path / "m.mlp").exists()


def test_threads_option(tmp_path):
    data = write_table(tmp_path)
    out = tmp_path / "m.mlp"
    assert run(["train", data, "-o", str(out), "--threads", "1", *FAST]).exit_code == 0
    assert model_io.load(out).provenance["threads"] == 1


def test_members_fill_the_usable_cores_without_oversubscribing(monkeypatch):
    from mlpcli import parallel
    from mlpcli.cli.train import member_plan

    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)
    assert member_plan(None, None).n_jobs == 8 and member_plan(None, None).blas_threads == 1
    assert member_plan(None, 4).n_jobs == 2 and member_plan(None, 16).n_jobs == 1
    assert member_plan(3, 2).n_jobs == 3


def test_what_train_picked_up_shows_before_the_first_epoch_and_q_keeps_warnings(tmp_path):
    """Roles, task and warnings print before training starts (a user can stop a run that read the wrong
    column); the split and the candidates follow, then the epochs. -q hides notes and progress, never
    warnings; a labelled table without a patient column is a warning."""
    from tables import make_table

    data = tmp_path / "nogroup.csv"
    make_table("binary", n_patients=30).drop(columns=["patient_id"]).to_csv(data, index=False)
    args = ["train", str(data), "--epochs", "3", "--folds", "2", "-o", str(tmp_path / "m.mlp"), "--n-jobs", "1"]
    res = run(args)
    assert res.exit_code == 0, res.output
    err = res.stderr
    picked, warned = err.index("target: label"), err.index("warning: no 'patient_id'")
    planned = err.index("members training/held out: 45/45, 45/45")
    first_epoch = err.index("epoch 1")
    chosen = err.index("--hidden auto:")  # decided after training
    assert picked < warned < planned < first_epoch < chosen
    assert err.count("warning: no 'patient_id'") == 1

    quiet = run([*args, "-q"]).stderr
    assert "warning: no 'patient_id'" in quiet
    assert "target: label" not in quiet and "epoch" not in quiet and "--hidden auto" not in quiet
    cv = run(["cv", str(data), "--folds", "2", "--epochs", "2", "--hidden", "", "-q"])
    assert cv.exit_code == 0 and "warning: no 'patient_id'" in cv.stderr and "target: label" not in cv.stderr


@pytest.mark.parametrize("suffix, reader", [
    (".parquet", pd.read_parquet),
    (".tsv.gz", lambda p: pd.read_csv(p, sep="\t")),
])
def test_table_outputs_take_the_format_their_extension_names(tmp_path, suffix, reader):
    """train --oof / --history, cv --oof and tune --results write what their extension says (they wrote CSV
    whatever the name), and diagnose reads the history back."""
    data = write_table(tmp_path)
    oof, hist = tmp_path / f"oof{suffix}", tmp_path / f"h{suffix}"
    res = run(["train", data, "-o", str(tmp_path / "m.mlp"), "--folds", "2", "--oof", str(oof), "--history", str(hist),
               *FAST])
    assert res.exit_code == 0, res.output
    frame = reader(oof)
    assert "pred_label" in frame.columns and len(frame) == len(pd.read_csv(data))
    assert {"epoch", "train_loss", "val_loss", "member"} <= set(reader(hist).columns)
    diagnosed = run(["diagnose", str(hist), "--json"])
    assert diagnosed.exit_code == 0, diagnosed.output
    assert json.loads(diagnosed.stdout)["label"]
    cv_oof, results = tmp_path / f"cv{suffix}", tmp_path / f"r{suffix}"
    assert run(["cv", data, "--folds", "2", "--member-folds", "1", "--oof", str(cv_oof), *FAST]).exit_code == 0
    assert len(reader(cv_oof)) == len(frame)
    assert run(["tune", data, "--folds", "2", "--grid", "lr=1e-3,1e-2", "--results", str(results), *FAST]).exit_code == 0
    assert len(reader(results)) == 2


@pytest.mark.parametrize("args, flag", [
    (["train", "--oof", "oof.xlsx"], "--oof"), (["train", "--history", "h.h5ad"], "--history"),
    (["cv", "--oof", "oof.json"], "--oof"), (["tune", "--grid", "lr=1e-3", "--results", "r.xlsx"], "--results"),
])
def test_a_table_output_with_an_unknown_extension_is_a_usage_error_before_any_work(tmp_path, monkeypatch, args, flag):
    data = write_table(tmp_path)
    monkeypatch.chdir(tmp_path)
    res = run([args[0], data, *args[1:], *FAST])
    assert_clean_error(res, flag, "unsupported output format", code=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [os.path.basename(data)]


def test_train_oof_to_standard_output_keeps_the_summary_off_it(tmp_path):
    data = write_table(tmp_path)
    res = run(["train", data, "-o", str(tmp_path / "m.mlp"), "--folds", "2", "--oof", "-", *FAST])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(io.StringIO(res.stdout))
    assert len(frame) == len(pd.read_csv(data)) and "pred_label" in frame.columns
    assert_clean_error(run(["train", data, "--oof", "-", "--json", *FAST]), "standard output", code=2)


def test_a_long_but_legal_output_name_is_written_and_an_illegal_one_refused_first(tmp_path):
    """A 250-byte name is legal, but its temporary name (14 bytes more) was not: the run failed at the very
    end. A name beyond 255 bytes is refused before any work."""
    data = write_table(tmp_path)
    legal = tmp_path / ("m" * 246 + ".mlp")
    assert run(["train", data, "-o", str(legal), "--hidden", "4", "--epochs", "2", "--folds", "1", "-q"]).exit_code == 0
    assert legal.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    out = tmp_path / ("p" * 246 + ".csv")
    assert run(["predict", str(legal), data, "-o", str(out), "-q"]).exit_code == 0 and out.exists()
    res = run(["train", data, "-o", str(tmp_path / ("m" * 256 + ".mlp")), "--hidden", "4", "--epochs", "2"])
    assert res.exit_code == 1 and "bytes long, more than the 255" in res.output and "Training" not in res.output


def test_a_class_of_one_patient_is_named_before_the_validation_share(tmp_path):
    """Three patients, class B in one of them: train said "3 groups are too few for --val-size 0.2 ... use
    --val-size 0.33", an option the user never gave and a value that fails too; the class is the reason."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = [{"sample_id": f"{p}_{k}", "patient_id": p, "label": label, **{f"g{j}": rng.normal() for j in range(12)}}
            for p, label in (("P1", "A"), ("P2", "B"), ("P3", "A")) for k in range(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp"), "--epochs", "2"])
    assert res.exit_code == 1 and "class 'B' has 4 samples, all from 1 group in 'patient_id'" in res.output
    assert "--val-size" not in res.output.splitlines()[-1]


def _table(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        label = ("T [naive]", "B")[i % 2]
        x = rng.normal(size=3) + 2.0 * (i % 2)
        rows.append({"sample_id": f"S{i}", "patient_id": f"P{i // 2}", "label": label,
                     **{f"g{j}": x[j] for j in range(3)}})
    path = tmp_path / "cells.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_class_names_with_brackets_show_in_train_and_evaluate_tables(tmp_path):
    table, model = _table(tmp_path), tmp_path / "m.mlp"
    res = run(["train", str(table), "--folds", "2", "--epochs", "2", "--hidden", "4", "-o", str(model)])
    assert res.exit_code == 0, res.output
    assert "class T [naive]" in res.output  # the split table's row
    res = run(["evaluate", str(model), str(table)])
    assert res.exit_code == 0, res.output
    confusion = [line for line in res.output.splitlines() if "T [naive]" in line and "│" in line]
    assert confusion, res.output


def test_a_repeated_target_or_drop_adds_names_instead_of_keeping_the_last(tmp_path):
    """`train --target age --target ic50` trained on ic50 alone, silently (Click keeps an option's last use): a
    list option may now be repeated, as `--target age,ic50`, in train, in a config file's string or array, and in
    evaluate's role options."""
    import json

    from cli_helpers import run

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 4)), columns=[f"g{j}" for j in range(4)])
    df["age"] = 3 * df["g0"] + rng.normal(size=60)
    df["ic50"] = df["g1"] + rng.normal(size=60)
    df["note"] = "x"
    table = tmp_path / "t.csv"
    df.to_csv(table, index=False)
    fast = ["--epochs", "2", "--folds", "1", "-q", "--json"]
    res = run(["train", str(table), "--target", "age", "--target", "ic50", "--drop", "note", "--drop", "g3",
               "-o", str(tmp_path / "m.mlp"), *fast])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["task"] == "regression" and doc["classes"] == ["age", "ic50"], doc
    for value in ('"age,ic50"', '["age", "ic50"]'):
        (tmp_path / "c.toml").write_text(f"target = {value}\n")
        res = run(["train", str(table), "--config", str(tmp_path / "c.toml"), "--drop", "note", "-o",
                   str(tmp_path / "c.mlp"), *fast])
        assert res.exit_code == 0 and json.loads(res.stdout)["classes"] == ["age", "ic50"], res.output
    res = run(["evaluate", str(tmp_path / "m.mlp"), str(table), "--target", "age", "--target", "ic50", "--json"])
    assert res.exit_code == 0, res.output
    assert [t["target"] for t in json.loads(res.stdout)["metrics"]["per_target"]] == ["age", "ic50"]


def test_a_dropped_patient_column_is_said_so_not_missing(tmp_path):
    """`--drop patient_id` warned "no 'patient_id' or 'donor_id' column" on a table that has one."""
    res = CliRunner().invoke(cli, ["train", SAMPLE, "--drop", "patient_id", "--folds", "1", "--epochs", "2",
                                   "--hidden", "none", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "'patient_id' dropped (--drop): samples are treated as independent" in text
    assert "no 'patient_id' or 'donor_id' column" not in text


def test_a_table_of_roles_only_is_an_error_naming_the_file_and_its_columns(tmp_path):
    """A table whose every column is a role (an id and the label) has nothing to learn from: one line naming the
    file and the columns it holds, exit 1, no model."""
    table = tmp_path / "roles.csv"
    pd.DataFrame({"sample_id": ["A", "B", "C", "D"], "patient_id": ["P1", "P1", "P2", "P2"],
                  "label": ["x", "y", "x", "y"]}).to_csv(table, index=False)
    res = run(["train", str(table), "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, f"{table}: no feature columns left", "('sample_id', 'patient_id', 'label')")
    assert not (tmp_path / "m.mlp").exists()


@pytest.mark.parametrize("command", ["train", "cv"])
def test_a_data_error_that_names_no_file_is_said_of_the_table(tmp_path, command):
    """"Error: all 20 features are constant on the training rows" named no file; the contract is one line naming the
    file, option or column. Errors that name one already are left as they are."""
    frame = make_table(n_patients=20, n_features=5)
    frame[[c for c in frame.columns if c.startswith("f")]] = 1.0
    frame.to_csv(tmp_path / "flat.csv", index=False)
    res = run([command, str(tmp_path / "flat.csv"), "--epochs", "2", *(["-o", str(tmp_path / "m.mlp")] if command ==
                                                                        "train" else [])])
    assert_clean_error(res, f"{tmp_path / 'flat.csv'}: ", "features are constant on the training rows")
    res = run([command, str(tmp_path / "flat.csv"), "--target", "nosuch"])
    assert res.output.strip().splitlines()[-1].startswith("Error: --target column 'nosuch' not found")


def test_a_table_named_with_a_trailing_slash_points_to_the_file(tmp_path):
    """`train t.csv/` (a completion gone wrong) said "table file not found" of a file that is there."""
    path = write_table(tmp_path)
    assert_clean_error(run(["train", path + "/", "-o", str(tmp_path / "m.mlp")]), "table file not found",
                       "a name ending in '/' is a directory's", f"the file is {path}")


def test_a_table_named_without_its_compression_suffix_points_to_the_compressed_file(tmp_path):
    """`train sample_data/tumour_subtypes.csv` (the file is .csv.gz) said only "table file not found"."""
    import gzip
    import shutil
    from pathlib import Path

    path = write_table(tmp_path)
    with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    Path(path).unlink()
    assert_clean_error(run(["train", path, "-o", str(tmp_path / "m.mlp")]),
                       f"table file not found: {path} (did you mean {path}.gz?)")
    assert not (tmp_path / "m.mlp").exists()


@pytest.mark.parametrize("command", ["train", "cv"])
def test_a_table_without_the_default_label_column_is_told_to_name_its_own(tmp_path, command):
    """`train cohort.csv` of a table without a `label` column said "--target column 'label' not found", naming an
    option the user never typed; the default is said, and how to name the table's own label column."""
    frame = make_table(n_patients=20, n_features=5).rename(columns={"label": "tumour grade"})
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run([command, str(tmp_path / "t.csv")])
    assert_clean_error(res, "--target column 'label' not found (the default; name the table's label column with "
                            "--target NAME)")
    # a column named as labels usually are (a cell-type annotation, a diagnosis) is named as the likely one
    frame.rename(columns={"tumour grade": "cell_type"}).to_csv(tmp_path / "t.csv", index=False)
    assert_clean_error(run([command, str(tmp_path / "t.csv")]),
                       "(the default; the table's 'cell_type' looks like the label: --target cell_type)")
    two = frame.rename(columns={"tumour grade": "Diagnosis"}).assign(Condition="x")
    two.to_csv(tmp_path / "t.csv", index=False)
    assert_clean_error(run([command, str(tmp_path / "t.csv")]),
                       "name the table's label column with --target NAME, e.g. one of 'Diagnosis', 'Condition')")
    # a close name still gets its "did you mean"
    frame.rename(columns={"tumour grade": "Label"}).to_csv(tmp_path / "t.csv", index=False)
    assert_clean_error(run([command, str(tmp_path / "t.csv")]), "(did you mean 'Label'?)")
