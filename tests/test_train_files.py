"""The files `train` reads and writes beside the table: outputs named like a directory, the --oof table (its
columns, agreement with the summary and the history) and --history, all written or none, --val-data errors
naming their file, --config values, and `info` reading back what train wrote."""

import json
import os

import pandas as pd
import pytest

from mlpcli import model_io, pipeline
from mlpcli.config import TrainOptions
from mlpcli.errors import OutputError
from mlpcli.fileio import atomic_path, atomic_write
from mlpcli.model_selection.held_out import held_out_names
from cli_helpers import assert_clean_error, run
from model_files import rewrite_model, without_trust
from tables import make_table


# tiny and in this process (no member processes to start): each run is a second or two
FAST = ["--epochs", "3", "--folds", "2", "--hidden", "4", "--n-jobs", "1", "-q"]


TARGETS = {"multilabel": ["--target", "lab0,lab1,lab2"]}


def _table(tmp_path, task="binary", name="data.csv", **kw) -> str:
    path = tmp_path / name
    make_table(task, n_patients=kw.pop("n_patients", 16), **kw).to_csv(path, index=False)
    return str(path)


# ── an output name ending in "/" ──────────────────────────────────────────────────────────────────────────


def test_an_output_named_like_a_missing_directory_is_refused_not_written_as_a_file(tmp_path, monkeypatch):
    """`train -o sub/` (sub does not exist) wrote a model file named `sub`: pathlib drops the trailing "/"."""
    data = _table(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert_clean_error(run(["train", data, "-o", "sub/", *FAST]), "sub/", code=2)  # usage, as `-o dir/` is
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]  # no `sub`, no temporary file


def test_tune_refit_to_a_name_ending_in_a_separator_writes_nothing(tmp_path, monkeypatch):
    data = _table(tmp_path)
    monkeypatch.chdir(tmp_path)
    res = run(["tune", data, "--grid", "lr=1e-3,1e-2", "--folds", "2", "--member-folds", "2", "--epochs", "2",
               "--hidden", "4", "--refit", "-o", "sub/", "-q"])
    assert_clean_error(res, "sub/", code=2)
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]


@pytest.mark.parametrize("writer", ["atomic_write", "atomic_path"])
def test_the_library_refuses_a_file_name_ending_in_a_separator(tmp_path, writer):
    (tmp_path / "there").mkdir()
    for name, words in (("sub/", "does not exist"), ("there/", "is a directory")):
        path = f"{tmp_path}/{name}"
        with pytest.raises(OutputError, match=words) as caught:
            if writer == "atomic_write":
                atomic_write(path, lambda fh: fh.write(b"x"))
            else:
                with atomic_path(path):
                    pass
        assert path in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == ["there"] and not os.listdir(tmp_path / "there")


# ── --oof ────────────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("rename, args, column", [
    ({"sample_id": "pred_label"}, ["--id", "pred_label"], "pred_label"),
    ({"patient_id": "held_out_by_member"}, ["--group", "held_out_by_member"], "held_out_by_member"),
    ({"label": "row"}, ["--target", "row"], "row"),  # no id column: the rows are numbered in `row`
], ids=["id-named-like-the-prediction", "group-named-like-the-member", "target-named-row"])
def test_oof_columns_of_one_name_are_a_usage_error_before_training(tmp_path, rename, args, column):
    """The held-out table kept the last of two columns of one name: an id column named pred_label came out
    holding predictions, a group column named held_out_by_member held member numbers."""
    df = make_table("binary", n_patients=16).rename(columns=rename)
    if column == "row":
        df = df.drop(columns="sample_id")
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    res = run(["train", str(data), *args, "-o", str(tmp_path / "m.mlp"), "--oof", str(tmp_path / "oof.csv"), *FAST])
    assert_clean_error(res, "--oof", repr(column), code=2)
    assert not (tmp_path / "m.mlp").exists() and not (tmp_path / "oof.csv").exists()  # refused before any work


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression"])
def test_oof_agrees_with_the_summary_and_the_history(tmp_path, task):
    """--oof's columns for each task, as held_out_names lists them; its rows rescored by scikit-learn give the
    summary's out-of-fold metrics; each member's best epoch and held-out count match --history and --oof."""
    from sklearn import metrics as skm

    data = _table(tmp_path, task, n_patients=34)  # 102 rows: enough held-out rows to calibrate
    oof, history = tmp_path / "oof.csv", tmp_path / "history.csv"
    res = run(["train", data, *TARGETS.get(task, []), "-o", str(tmp_path / "m.mlp"), "--oof", str(oof),
               "--history", str(history), "--json", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    target = ["lab0", "lab1", "lab2"] if task == "multilabel" else ["label"]
    ds, _ = pipeline.load_dataset(data, TrainOptions(target=target))
    frame, hist = pd.read_csv(oof, dtype={"sample_id": str}), pd.read_csv(history)
    assert list(frame.columns) == [name for name, _ in held_out_names(ds, {"held_out_by_member": ""})]
    m, classes = doc["validation_metrics"], doc["classes"]
    if task in ("binary", "multiclass"):
        P = frame[[f"prob_{c}" for c in classes]].to_numpy()
        assert skm.balanced_accuracy_score(frame["label"], frame["pred_label"]) == pytest.approx(m["balanced_accuracy"])
        assert skm.log_loss(frame["label"], P, labels=classes) == pytest.approx(m["log_loss"], abs=1e-5)
        assert doc["calibration"]["log_loss_after"] == pytest.approx(m["log_loss"])
    elif task == "multilabel":
        Y, pred = frame[classes].to_numpy(), frame[[f"pred_{c}" for c in classes]].to_numpy()
        assert skm.hamming_loss(Y, pred) == pytest.approx(m["hamming_loss"])
        assert skm.f1_score(Y, pred, average="macro", zero_division=0) == pytest.approx(m["f1_macro"])
    else:
        assert skm.root_mean_squared_error(frame["label"], frame["pred_label"]) == pytest.approx(m["rmse"])
        assert skm.r2_score(frame["label"], frame["pred_label"]) == pytest.approx(m["r2"])
    for member in doc["fit"]["members"]:
        rows = hist[hist["member"] == member["member"]]
        assert member["best_epoch"] == rows["best_epoch"].iloc[-1] == rows["epoch"].iloc[rows["val_loss"].argmin()]
        assert member["n_val"] == int((frame["held_out_by_member"] == member["member"]).sum())


# ── --val-data ───────────────────────────────────────────────────────────────────────────────────────────


def _validation(tmp_path, change) -> str:
    """Another cohort of other patients, its columns in another order, changed by ``change(frame)``."""
    df = make_table("binary", n_patients=16, seed=1)
    df["patient_id"] = "V" + df["patient_id"]
    df = df[list(reversed(df.columns))]
    change(df)
    path = tmp_path / "val.csv"
    df.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("change, words", [
    (lambda df: df.__setitem__("f02", df["f02"].where(df.index != 3)), "missing values in 1 feature column: 'f02'"),
    (lambda df: df.__setitem__("label", df["label"].where(df.index != 3, "other")),
     "labels the training table does not have: 'other'"),
    (lambda df: df.__setitem__("label", df["label"].where(df.index != 3)), "missing values"),
], ids=["missing-feature", "unknown-class", "missing-label"])
def test_val_data_errors_name_the_validation_file(tmp_path, change, words):
    """Said of the training table, these sent users looking for a gap or a label in the wrong file."""
    data, val = _table(tmp_path), _validation(tmp_path, change)
    res = run(["train", data, "--val-data", val, "-o", str(tmp_path / "m.mlp"), *FAST[:2], *FAST[4:]])
    assert_clean_error(res, f"--val-data {val}", words)
    assert not (tmp_path / "m.mlp").exists()


def test_val_data_in_another_column_order_with_an_extra_column_trains_and_says_what_it_ignored(tmp_path):
    """A column of the validation table that the training table lacks was ignored without a word (predict
    notes the columns it ignores); a gap in it does not matter."""
    def extra(df):
        df.insert(3, "extra_gene", 1.0)
        df.loc[0, "extra_gene"] = None

    data, val = _table(tmp_path), _validation(tmp_path, extra)
    res = run(["train", data, "--val-data", val, "-o", str(tmp_path / "m.mlp"), "--json", *FAST[:2], *FAST[4:]])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["split"]["n_val"] == 48
    assert f"--val-data {val}: ignored 1 column the training table does not have: 'extra_gene'" in doc["notes"]


def test_data_and_val_data_both_from_standard_input_is_a_usage_error(tmp_path):
    data = _table(tmp_path)
    res = run(["train", "-", "--val-data", "-", "-o", str(tmp_path / "m.mlp"), *FAST[:2], *FAST[4:]],
              input=open(data).read())
    assert_clean_error(res, "--val-data -", "standard input", code=2)


# ── info on older model files ────────────────────────────────────────────────────────────────────────────


def test_info_on_a_model_that_stored_no_options_or_members_says_so(tmp_path):
    """A format-1 file without options, members or roles: info printed "optimizer None, lr , batch , seed
    None" and an empty roles row, and --json gave [] for every per-member setting."""
    data = _table(tmp_path)
    new = tmp_path / "new.mlp"
    assert run(["train", data, "-o", str(new), *FAST[:2], "--folds", "1", *FAST[4:]]).exit_code == 0

    def format_1(meta):
        meta["architecture"] = meta.pop("members")[0]["architecture"]
        meta.pop("temperature"), meta.pop("conformal"), meta.pop("ood")
        meta["format_version"] = 1
        for key in ("config", "roles", "extra"):
            meta.pop(key)
        meta["fit"] = {"best_epoch": 2, "epochs_run": 3, "stopped_early": False}

    old = rewrite_model(new, tmp_path / "old.mlp", format_1,
                        lambda a: {k.removeprefix("members/0/"): v for k, v in without_trust(a).items()})
    text = run(["info", old]).stdout
    line = next(line for line in text.splitlines() if "optimizer" in line)
    assert "None" not in line and "lr —" in line and "best epochs 2;" in line, line
    assert "not stored" in next(line for line in text.splitlines() if "roles" in line)
    doc = json.loads(run(["info", old, "--json"]).stdout)
    assert doc["training"]["best_epochs"] == [2] and doc["training"]["epochs_run"] == [3]
    assert set(doc["training"]["resolved"].values()) == {None}


def test_info_json_round_trips_what_train_json_said(tmp_path):
    data = _table(tmp_path, "multiclass")
    out = tmp_path / "m.mlp"
    res = run(["train", data, "-o", str(out), "--refit", "--json", *FAST])
    trained = json.loads(res.stdout)
    doc = json.loads(run(["info", str(out), "--json"]).stdout)
    assert doc["held_out"]["metrics"] == trained["fit"]["held_out_metrics"]
    assert doc["training"]["best_epochs"] == [m["best_epoch"] for m in trained["fit"]["members"]]
    assert doc["training"]["refit_epochs"] == trained["fit"]["refit_epochs"] and doc["network"]["members"] == 1
    assert doc["training"]["calibration"] == trained["calibration"]


def test_info_json_is_standard_json_when_the_file_holds_a_non_finite_figure(tmp_path):
    """model.json may hold NaN and infinity (it is written with them allowed); info --json then failed with
    "Out of range float values are not JSON compliant: inf". Undefined figures are null, as everywhere."""
    new = tmp_path / "new.mlp"
    assert run(["train", _table(tmp_path, n_patients=34), "-o", str(new), *FAST]).exit_code == 0

    def non_finite(meta):
        meta["fit"]["members"][0]["best_val_loss"] = float("nan")
        meta["fit"]["calibration"]["ece_before"] = float("inf")

    old = rewrite_model(new, tmp_path / "odd.mlp", non_finite, lambda a: a)
    res = run(["info", old, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["training"]["calibration"]["ece_before"] is None


def test_info_shows_the_threshold_beside_the_metrics_not_as_one(tmp_path):
    """info listed "threshold 0.500" and "positive class ctrl" among the binary model's held-out metrics."""
    out = tmp_path / "m.mlp"
    assert run(["train", _table(tmp_path), "-o", str(out), *FAST]).exit_code == 0
    line = next(line for line in run(["info", str(out)]).stdout.splitlines() if "out-of-fold metrics" in line)
    assert ("threshold 0.5)" in line or "threshold 0.5;" in line) and "threshold 0.500" not in line and "positive class" not in line, line


# ── the summary ──────────────────────────────────────────────────────────────────────────────────────────


def test_the_summary_says_what_its_losses_are_and_how_long_a_refit_trained(tmp_path):
    """Multi-label BCE is summed over the labels (2.07 for three), the log loss beside it their mean (0.69):
    unexplained, the two read as disagreeing. A --refit network's epochs were said only in a note."""
    res = run(["train", _table(tmp_path, "multilabel"), *TARGETS["multilabel"], "-o", str(tmp_path / "m.mlp"), *FAST])
    assert "summed over the 3 labels" in res.stdout
    res = run(["train", _table(tmp_path), "-o", str(tmp_path / "r.mlp"), "--refit", *FAST])
    assert "the shipped network refit on all rows for 3 epochs" in res.stdout


# ── --config and --hidden ────────────────────────────────────────────────────────────────────────────────


def test_hidden_none_is_no_hidden_layer_as_tune_writes_it(tmp_path):
    """tune's --grid and --results write no hidden layer as `none` (hidden=none|64); train refused it."""
    data = _table(tmp_path)
    (tmp_path / "run.toml").write_text('hidden = "none"\n')
    paths = [tmp_path / f"{k}.mlp" for k in range(3)]
    for path, args in zip(paths, (["--hidden", ""], ["--hidden", "none"], ["--config", str(tmp_path / "run.toml")])):
        res = run(["train", data, "-o", str(path), *args, *FAST[:4], *FAST[6:]])
        assert res.exit_code == 0, res.output
    assert paths[0].read_bytes() == paths[1].read_bytes() == paths[2].read_bytes()
    assert model_io.load(paths[1]).network.hidden == []


def test_config_takes_n_jobs_as_the_command_line_does(tmp_path):
    """n-jobs is a train option; a config file said "unknown key 'n-jobs'; keys mirror the train options"."""
    from mlpcli.config_file import read_config_file

    data, cfg = _table(tmp_path), tmp_path / "run.toml"
    cfg.write_text("n-jobs = -1\n")
    assert read_config_file(str(cfg)) == {"n_jobs": -1}  # every core, as --n-jobs -1
    for value, code in (("1", 0), ("0", 2)):
        cfg.write_text(f"[train]\nn-jobs = {value}\nepochs = 2\nfolds = 2\nhidden = [4]\n")
        res = run(["train", data, "--config", str(cfg), "-o", str(tmp_path / "m.mlp"), "-q"])
        if code:
            assert_clean_error(res, "n-jobs", "-1", code=code)
        else:
            assert res.exit_code == 0, res.output


@pytest.mark.parametrize("flag", ["-o", "--history", "--oof"])
def test_a_directory_name_for_an_output_is_refused_before_the_data_is_read(tmp_path, flag):
    """`-o sub/` was refused only when the model was written, after the whole training."""
    args = ["train", str(tmp_path / "never_read.csv"), flag, str(tmp_path / "sub") + "/"]
    if flag != "-o":
        args += ["-o", str(tmp_path / "m.mlp")]
    res = run(args)
    assert_clean_error(res, "sub/", "names a directory", code=2)  # a usage error, as `-o existing_dir/` is
    assert "never_read" not in res.output and not (tmp_path / "sub").exists()


def test_the_model_history_and_oof_are_written_all_or_none(tmp_path, monkeypatch):
    """The model was written first and --history, --oof after it: a failure writing the last one (a full disk)
    left a new model beside an earlier run's history and held-out predictions."""
    import errno
    import os as _os

    data = _table(tmp_path)
    outputs = {name: tmp_path / name for name in ("m.mlp", "h.csv", "o.csv")}
    for path in outputs.values():
        path.write_bytes(b"an earlier run's\n")
    real_fsync, calls = _os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 3:  # the third file: the held-out predictions
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(_os, "fsync", fsync)
    res = run(["train", data, "-o", str(outputs["m.mlp"]), "--history", str(outputs["h.csv"]),
               "--oof", str(outputs["o.csv"]), *FAST])
    assert res.exit_code == 1 and "no space left on device" in res.output.lower(), res.output
    assert all(p.read_bytes() == b"an earlier run's\n" for p in outputs.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "h.csv", "m.mlp", "o.csv"]  # no temporaries
    monkeypatch.setattr(_os, "fsync", real_fsync)
    res = run(["train", data, "-o", str(outputs["m.mlp"]), "--history", str(outputs["h.csv"]),
               "--oof", str(outputs["o.csv"]), *FAST])
    assert res.exit_code == 0, res.output
    assert all(p.read_bytes() != b"an earlier run's\n" for p in outputs.values())
