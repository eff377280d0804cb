"""predict, evaluate and info in shell pipelines and batch jobs: standard output redirected onto an input
(`>> data.csv`), evaluate on a closed standard output, `evaluate -o` named as a table, the --threads warning's
words outside training, and the bootstrap's workers within a SLURM job's CPU set."""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest

from cli_helpers import assert_clean_error, run
from tables import make_table


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A labelled table, the same table without labels and a one-network model of it."""
    d = tmp_path_factory.mktemp("pipes")
    df = make_table("multiclass", n_patients=20, n_features=6)
    df.to_csv(d / "lab.csv", index=False)
    df.drop(columns=["label"]).to_csv(d / "new.csv", index=False)
    res = run(["train", str(d / "lab.csv"), "-o", str(d / "m.mlp"), "--epochs", "3", "--folds", "1",
               "--hidden", "4", "-q"])
    assert res.exit_code == 0, res.output
    return d


@contextmanager
def redirected(fd: int, path, mode: str):
    """File descriptor ``fd`` (0 or 1) on ``path`` for the block, as the shell's ``< path`` / ``>> path`` leave it."""
    saved = os.dup(fd)
    with open(path, mode) as fh:
        os.dup2(fh.fileno(), fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@pytest.mark.parametrize("command, target", [
    (["predict", "{m}", "{copy}", "-q"], "copy"),
    (["predict", "{m}", "{copy}", "-o", "{d}/p.csv", "-q"], "copy"),  # the summary table would go there
    (["evaluate", "{m}", "{copy}", "-q"], "copy"),
    (["info", "{copy}"], "model"),
    # every other command that reads a file and writes its summary to standard output
    (["train", "{copy}", "-o", "{d}/p.mlp", "--epochs", "2", "--folds", "1", "-q"], "copy"),
    (["cv", "{copy}", "--folds", "2", "--epochs", "2", "-q"], "copy"),
    (["diagnose", "{copy}"], "model"),
    (["explain", "{m}", "{copy}", "-q"], "copy"),
    (["gradcheck", "--model", "{m}", "--data", "{copy}", "-q"], "copy"),
], ids=["predict-rows", "predict-summary", "evaluate", "info", "train", "cv", "diagnose", "explain", "gradcheck"])
def test_stdout_appended_to_an_input_is_a_usage_error(files, tmp_path, command, target):
    """`mlpcli predict m.mlp cohort.csv >> cohort.csv` appended the predictions to the table it read, exit 0 (the
    table then failed to read: ragged rows); `info m.mlp >> m.mlp` wrote its summary into the model file."""
    source = files / ("m.mlp" if target == "model" else "lab.csv")
    copy = tmp_path / source.name
    copy.write_bytes(source.read_bytes())
    args = [a.format(m=files / "m.mlp", copy=copy, d=tmp_path) for a in command]
    with redirected(1, copy, "ab"):
        res = run(args)
    assert_clean_error(res, f"standard output is redirected to {copy}", "redirect standard output to another file",
                       code=2)
    assert copy.read_bytes() == source.read_bytes()
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.mlp").exists()


def test_stdout_onto_the_file_stdin_reads_is_a_usage_error(files, tmp_path):
    """DATA '-' with standard input redirected from the very file standard output is appended to."""
    copy = tmp_path / "new.csv"
    copy.write_bytes((files / "new.csv").read_bytes())
    with redirected(0, copy, "rb"), redirected(1, copy, "ab"):
        res = run(["predict", str(files / "m.mlp"), "-", "-q"])
    assert_clean_error(res, "the file standard input is redirected from, the input DATA", code=2)
    assert copy.read_bytes() == (files / "new.csv").read_bytes()


def test_stdout_to_another_file_still_works(files, tmp_path):
    out = tmp_path / "preds.csv"
    with redirected(1, out, "ab"):
        res = run(["predict", str(files / "m.mlp"), str(files / "new.csv"), "-q"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].startswith("sample_id,pred_label,prob_")  # the runner's stdout, not fd 1


def test_evaluate_on_a_closed_stdout_is_an_error_unless_the_document_goes_to_a_file(files, tmp_path, monkeypatch):
    """`evaluate ... >&-` computed the metrics and showed them nowhere, exit 0 (info and diagnose already refused)."""
    import mlpcli.cli._common as common

    monkeypatch.setattr(common, "CLOSED_STREAMS", {"stdout"})
    res = run(["evaluate", str(files / "m.mlp"), str(files / "lab.csv"), "-q"])
    assert_clean_error(res, "the metrics report writes to standard output, which was closed")
    res = run(["evaluate", str(files / "m.mlp"), str(files / "lab.csv"), "-q", "-o", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m.json").read_text().lstrip().startswith("{")


@pytest.mark.parametrize("name", ["metrics.csv", "metrics.tsv.gz"])
def test_evaluate_out_named_as_another_format_is_a_usage_error(files, tmp_path, name):
    """`evaluate -o metrics.csv` wrote the JSON document into a file named .csv without a word."""
    res = run(["evaluate", str(files / "m.mlp"), str(files / "lab.csv"), "-q", "-o", str(tmp_path / name)])
    assert res.exit_code == 2, res.output
    assert "writes the JSON document" in res.output and "metrics.json" in res.output, res.output
    assert not (tmp_path / name).exists()


def test_evaluate_out_named_json_or_a_device_draws_no_warning(files, tmp_path):
    for out in (str(tmp_path / "metrics.json"), str(tmp_path / "metrics.txt"), os.devnull):
        res = run(["evaluate", str(files / "m.mlp"), str(files / "lab.csv"), "-q", "-o", out])
        assert res.exit_code == 0 and "--out" not in res.output, res.output


def test_threads_warning_outside_training_does_not_speak_of_training(files, monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    res = run(["predict", str(files / "m.mlp"), str(files / "new.csv"), "-q", "--threads", "2"])
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("warning: --threads 2")]
    assert warning and "SLURM_CPUS_PER_TASK=1" in warning[0] and "training" not in warning[0], res.output


def test_bootstrap_workers_within_a_cpu_set_ignore_the_nodes_load(monkeypatch):
    """A 4-core SLURM job on a busy 64-core node: the node's load average (50) left it one worker, though its
    cores are its own. On a machine without a CPU set the load still counts."""
    from mlpcli.predict.evaluation import bootstrap_workers

    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    assert bootstrap_workers(1000, cores=4) == 4
    assert bootstrap_workers(100, cores=4) == 1  # few resamples: serial, as before
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert bootstrap_workers(1000, cores=4) == 1
