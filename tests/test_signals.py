"""Signals from batch schedulers and terminals: SIGTERM (SLURM's scancel and time limits), SIGHUP and SIGINT
stop every command like Ctrl-C — exit 128 + the signal, no partial output, no temporary file left — and
`train` keeps the best weights so far (the members trained so far for an ensemble) and says so.

Each test starts the real command line in a subprocess, waits for a progress line or for the output's
temporary file to appear (never a blind sleep), sends the signal and reads what the process did.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli import model_io
from mlpcli.cli import cli
from cli_helpers import run
from tables import SAMPLE, make_table

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
def default_signals() -> None:
    """In the child before it runs: SIGINT as a terminal would deliver it. A test run started in the
    background (`cmd &`, as some CI runners start it) hands its children SIGINT ignored, which the command
    line, as any shell tool, leaves ignored: the SIGINT tests would then test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


TIMEOUT = 120  # seconds; a generous bound for a loaded machine, reached only if something hangs

# Long enough per member (hundreds of epochs, never stopping early) that a signal lands mid-training.
SLOW = ["--hidden", "32", "--epochs", "200", "--patience", "200", "--folds", "5"]


class Command:
    """A running `python -m mlpcli ...` in its own session (so a whole process group can be signalled),
    its stderr read line by line in a thread."""

    def __init__(self, args: list[str], cwd: Path):
        self.stdout = open(cwd / "stdout.txt", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "mlpcli", *args], cwd=cwd, env=ENV, text=True,
                                     preexec_fn=default_signals,
                                     stdout=self.stdout, stderr=subprocess.PIPE, start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_line(self, needle: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"the command ended before printing {needle!r}: {''.join(self.stderr)}")
            self.stderr.append(line)
            if needle in line:
                return
        pytest.fail(f"no line with {needle!r} within {TIMEOUT} s")

    def freeze_after(self, needle: str) -> list[str]:
        """Wait for a line with `needle`, then stop the whole process group (SIGSTOP: the command and its
        member processes) so that nothing more happens until `resume_with`; returns every stderr line
        written by then (what had finished when the signal is sent, whatever the machine's load)."""
        self.wait_for_line(needle)
        os.killpg(self.proc.pid, signal.SIGSTOP)
        while True:  # a stopped process writes nothing: drain what it wrote before it stopped
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                return list(self.stderr)
            if line is None:
                return list(self.stderr)
            self.stderr.append(line)

    def resume_with(self, sig: int, whole_group: bool = True) -> None:
        """Send `sig` to the stopped process group (or its main process only), then let it run again:
        the signal is pending in every process it was sent to before any of them runs on."""
        if whole_group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        os.killpg(self.proc.pid, signal.SIGCONT)

    def wait_for(self, condition) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail("the command ended before the awaited moment")
            if time.monotonic() > deadline:
                pytest.fail(f"nothing happened within {TIMEOUT} s")
            time.sleep(0.01)

    def freeze_when(self, condition) -> None:
        """Wait until `condition()` holds, then stop the whole process group (SIGSTOP) and check it still
        holds: from then on nothing changes until `resume_with`, so a fast command on a loaded machine
        cannot finish between the moment seen and the signal."""
        self.wait_for(condition)
        os.killpg(self.proc.pid, signal.SIGSTOP)
        assert condition(), "the awaited moment passed before the command could be stopped"

    def finish(self) -> tuple[int, str]:
        rc = self.proc.wait(timeout=TIMEOUT)
        while (line := self.lines.get(timeout=TIMEOUT)) is not None:
            self.stderr.append(line)
        self.stdout.close()
        return rc, "".join(self.stderr)


def _writing(proc: subprocess.Popen, folder: Path, name: str) -> bool:
    """Whether ``proc`` is writing the output ``name`` in ``folder``: its temporary file is there (``.NAME.*``),
    or it holds a nameless one open there (``fileio.UNNAMED_TEMPORARIES``: /proc shows ``FOLDER/#INODE
    (deleted)``)."""
    if any(p.name.startswith(f".{name}.") for p in folder.iterdir()):
        return True
    try:
        links = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")]
    except OSError:  # it ended, or a descriptor closed as it was read
        return False
    return any(link.startswith(f"{folder}/#") and link.endswith(" (deleted)") for link in links)


def _assert_no_temporaries(folder: Path) -> None:
    stray = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert not stray, stray


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("signals") / "cohort.csv"
    make_table("multiclass", n_patients=40).to_csv(path, index=False)
    return path


# ── train ─────────────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_train_sequential_members_keeps_the_members_trained_so_far(tmp_path, table, sig, code):
    cmd = Command(["train", str(table), "-o", "m.mlp", "--history", "h.csv", "--n-jobs", "1", *SLOW], tmp_path)
    cmd.wait_for_line("member 2/5: epoch 1 ")  # member 1 finished, member 2 is training
    cmd.proc.send_signal(sig)
    rc, err = cmd.finish()
    assert rc == code, err
    assert "Traceback" not in err
    assert f"Interrupted by {sig.name}: kept the 2 of 5 members trained so far" in err
    assert "model written to m.mlp" in err
    model = model_io.load(tmp_path / "m.mlp")
    assert model.fit["interrupted"] and len(model.members) == 2
    assert [m["interrupted"] for m in model.fit["members"]] == [False, True]
    summary = " ".join((tmp_path / "stdout.txt").read_text().split())  # the split as it ended: two members' folds
    assert "2 of 5 members kept" in summary and "exactly one member" not in summary
    assert (tmp_path / "h.csv").exists()
    _assert_no_temporaries(tmp_path)


def test_train_one_network_sigint_keeps_its_best_weights(tmp_path, table):
    cmd = Command(["train", str(table), "-o", "m.mlp", "--folds", "1", "--hidden", "32", "--epochs", "3000",
                   "--patience", "3000"], tmp_path)
    cmd.wait_for_line("network: epoch 25 ")
    cmd.proc.send_signal(signal.SIGINT)
    rc, err = cmd.finish()
    assert rc == 130, err
    assert "Interrupted: kept the best weights so far (epoch" in err and "Traceback" not in err
    model = model_io.load(tmp_path / "m.mlp")
    assert model.fit["interrupted"] and 25 <= model.fit["epochs_run"] < 3000
    _assert_no_temporaries(tmp_path)


def test_train_stops_in_order_on_the_signal_sbatch_sends_before_the_time_limit(tmp_path, table):
    """`sbatch --signal=USR1@120` warns a job ahead of its time limit: SIGUSR1's default action killed the process,
    leaving a temporary file and no model; it now stops training as SIGTERM does, keeping the best weights."""
    cmd = Command(["train", str(table), "-o", "m.mlp", "--folds", "1", "--hidden", "32", "--epochs", "3000",
                   "--patience", "3000"], tmp_path)
    cmd.wait_for_line("network: epoch 25 ")
    cmd.proc.send_signal(signal.SIGUSR1)
    rc, err = cmd.finish()
    assert rc == 128 + signal.SIGUSR1, err
    assert "Interrupted by SIGUSR1: kept the best weights so far (epoch" in err and "Traceback" not in err
    assert model_io.load(tmp_path / "m.mlp").fit["interrupted"]
    _assert_no_temporaries(tmp_path)


def test_train_stopped_before_any_network_has_weights_says_no_model_was_written(tmp_path, table):
    """SIGTERM before any member had trained: "Interrupted by SIGTERM." alone, where a user expects to hear whether
    a model was kept (the other stops say what they kept and where)."""
    cmd = Command(["train", str(table), "-o", "m.mlp", "--n-jobs", "2", "--hidden", "32", "--epochs", "100000",
                   "--patience", "100000", "--folds", "5"], tmp_path)
    cmd.wait_for_line("StratifiedGroupKFold")  # the last note before the members start
    time.sleep(0.3)
    cmd.proc.send_signal(signal.SIGTERM)
    rc, err = cmd.finish()
    assert rc == 143, err
    assert "Interrupted by SIGTERM: nothing trained yet to keep; no model written" in err and "Traceback" not in err
    assert not (tmp_path / "m.mlp").exists()
    _assert_no_temporaries(tmp_path)


def _networks_trained(lines: list[str]) -> int:
    """The last "k/5 networks trained" progress count in `lines`."""
    counts = [int(m.group(1)) for line in lines if (m := re.search(r"(\d+)/\d+ networks trained", line))]
    return counts[-1] if counts else 0


def _kept_members_after_sigterm(tmp_path, table, whole_group: bool) -> None:
    """Members in 2 processes; SIGTERM once at least one member finished, the job frozen from that moment
    to the signal (so members finishing meanwhile on a loaded machine cannot make it a race): exit 143, the
    model holds exactly the members finished by then or also some that were finishing (never fewer, never
    all 5), each scoring its own held-out fold, and no member process outlives the command."""
    cmd = Command(["train", str(table), "-o", "m.mlp", "--n-jobs", "2", *SLOW], tmp_path)
    finished = _networks_trained(cmd.freeze_after("1/5 networks trained"))
    assert 1 <= finished < 5  # 200 epochs per member: at most the 2 running ones can have ended meanwhile
    cmd.resume_with(signal.SIGTERM, whole_group)
    rc, err = cmd.finish()
    assert rc == 143, err
    assert "Traceback" not in err and "Interrupted by SIGTERM: kept the" in err
    model = model_io.load(tmp_path / "m.mlp")
    assert model.fit["interrupted"] and finished <= len(model.members) < 5, (finished, len(model.members))
    assert f"kept the {len(model.members)} of 5 members trained so far" in err
    held_out = {m["member"] for m in model.fit["members"]}
    assert len(held_out) == len(model.members)
    deadline = time.monotonic() + 30
    while not _group_gone(cmd.proc.pid):  # no member process outlives the command
        assert time.monotonic() < deadline, "worker processes still running"
        time.sleep(0.1)
    _assert_no_temporaries(tmp_path)


def test_train_parallel_members_sigterm_to_the_whole_job_keeps_finished_members(tmp_path, table):
    """As SLURM does it: SIGTERM to every process of the job, the member processes included."""
    _kept_members_after_sigterm(tmp_path, table, whole_group=True)


def test_train_parallel_members_sigterm_to_the_main_process(tmp_path, table):
    _kept_members_after_sigterm(tmp_path, table, whole_group=False)


def test_train_parallel_portfolio_keeps_the_candidate_whose_members_finished(tmp_path, table):
    """The default portfolio in two processes: the hidden layer's members run first, the softmax regressions'
    last. Stopped after five networks, the model holds the hidden layer's finished members (all five, or
    four when a quick softmax member slipped in), not nothing (as it did: the candidates were walked in
    their own order and the run gave up at softmax regression, unfinished)."""
    cmd = Command(["train", str(table), "-o", "m.mlp", "--n-jobs", "2", "--epochs", "200", "--patience", "200"],
                  tmp_path)
    finished = _networks_trained(cmd.freeze_after("5/15 networks trained"))  # (3 candidates x 5 members)
    assert 5 <= finished < 15
    cmd.resume_with(signal.SIGTERM)
    rc, err = cmd.finish()
    assert rc == 143 and "Traceback" not in err, err
    model = model_io.load(tmp_path / "m.mlp")
    assert model.network.hidden == [128] and 4 <= len(model.members) <= 5, (model.network.hidden, len(model.members))
    _assert_no_temporaries(tmp_path)


# ── predict and cv ────────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def model_and_cohort(tmp_path_factory, table) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("predict")
    model = folder / "m.mlp"
    assert run(["train", str(table), "-o", str(model), "--folds", "1", "--hidden", "8", "--epochs", "3", "-q"]).exit_code == 0
    frame = make_table("multiclass", n_patients=40)
    big = frame.loc[np.tile(np.arange(len(frame)), 400)].reset_index(drop=True)  # 48,000 rows
    big["sample_id"] = [f"S{i:06d}" for i in range(len(big))]
    cohort = folder / "cohort.csv"
    big.to_csv(cohort, index=False)
    return model, cohort


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_predict_leaves_no_partial_output_and_no_temporary_file(tmp_path, model_and_cohort, sig, code):
    model, cohort = model_and_cohort
    out = tmp_path / "preds.csv"
    cmd = Command(["predict", str(model), str(cohort), "-o", str(out), "--chunksize", "50"],
                  tmp_path)
    cmd.freeze_when(lambda: _writing(cmd.proc, tmp_path, "preds.csv"))
    cmd.resume_with(sig, whole_group=False)
    rc, err = cmd.finish()
    assert rc == code, err
    assert "Traceback" not in err and "Interrupted" in err
    assert not out.exists()
    _assert_no_temporaries(tmp_path)


def _nameless_files_in_tmp() -> bool:
    try:
        os.close(os.open(tempfile.gettempdir(), os.O_TMPFILE | os.O_RDWR, 0o600))
    except (AttributeError, OSError):
        return False
    return os.path.isdir("/proc/self/fd")


@pytest.mark.skipif(not _nameless_files_in_tmp(), reason="the temporary directory's file system has no O_TMPFILE")
def test_predict_killed_outright_while_writing_leaves_nothing(tmp_path, model_and_cohort):
    """SIGKILL (the OOM killer; SLURM after its grace period) or OpenBLAS's own exit() cannot be handled: the
    output's temporary file stayed behind as .preds.csv.<random>.tmp. It is now nameless until it is whole."""
    model, cohort = model_and_cohort
    out = tmp_path / "preds.csv"
    cmd = Command(["predict", str(model), str(cohort), "-o", str(out), "--chunksize", "50"], tmp_path)
    cmd.freeze_when(lambda: _writing(cmd.proc, tmp_path, "preds.csv"))
    assert not any(p.name.startswith(".preds.csv.") for p in tmp_path.iterdir())  # nameless while written
    cmd.resume_with(signal.SIGKILL, whole_group=False)
    rc, _ = cmd.finish()
    assert rc == -signal.SIGKILL
    assert not out.exists()
    _assert_no_temporaries(tmp_path)


def test_predict_keeps_the_previous_output_untouched(tmp_path, model_and_cohort):
    model, cohort = model_and_cohort
    out = tmp_path / "preds.csv"
    out.write_text("previous results\n")
    cmd = Command(["predict", str(model), str(cohort), "-o", str(out), "--chunksize", "50"],
                  tmp_path)
    cmd.freeze_when(lambda: _writing(cmd.proc, tmp_path, "preds.csv"))
    cmd.resume_with(signal.SIGTERM, whole_group=False)
    rc, err = cmd.finish()
    assert rc == 143, err
    assert out.read_text() == "previous results\n"
    _assert_no_temporaries(tmp_path)


@pytest.mark.parametrize("command, options, started, output", [
    (["tune"], ["--folds", "2", "--grid", "lr=1e-3,1e-2", "--results", "out.csv"], "fits in this process", "out.csv"),
    (["diagnose", "--learning-curve"], ["--fractions", "0.5,1", "--plot", "out.png"], "training at 2 sizes",
     "out.png"),
])
def test_tune_and_learning_curve_in_one_process_stop_on_sigterm(tmp_path, table, command, options, started, output):
    """The signal lands in the first fit (3,000 epochs of a 32-unit network): the command stops with 143
    and writes nothing, where it used to train every other fit and exit 0."""
    cmd = Command([*command, str(table), *options, "--hidden", "32", "--epochs", "3000", "--patience", "3000",
                   "--n-jobs", "1"], tmp_path)
    cmd.wait_for_line(started)  # the fits start now
    time.sleep(0.5)
    cmd.proc.send_signal(signal.SIGTERM)
    rc, err = cmd.finish()
    assert rc == 143, err
    assert "Interrupted by SIGTERM." in err and "Traceback" not in err
    assert not (tmp_path / output).exists()
    _assert_no_temporaries(tmp_path)


def test_tune_refit_stopped_by_sigterm_writes_neither_output(tmp_path, table):
    """The signal lands in --refit, after the tuning's fits: the refit's fits absorbed it and tune saved the
    cut-short model, wrote --results and exited 0; now it exits 143 and writes nothing."""
    # 300 epochs, never stopping early: the tuning's 2 fits are over in a second or two, and the refit's 5
    # members (1,500 epochs, several seconds even on an idle machine) are still training when the signal comes
    # half a second after the tuning's last line; 1,000 epochs only made the tuning before it longer.
    cmd = Command(["tune", str(table), "--folds", "2", "--grid", "lr=1e-3", "--hidden", "32", "--epochs", "300",
                   "--patience", "300", "--n-jobs", "1", "--refit", "-o", "tuned.mlp", "--results", "out.csv"],
                  tmp_path)
    cmd.wait_for_line("fits: 2/2 done")  # the tuning is over: the refit (5 members of 300 epochs) starts now
    time.sleep(0.5)
    cmd.proc.send_signal(signal.SIGTERM)
    rc, err = cmd.finish()
    assert rc == 143, err
    # the stop says the tuning it ends (the best setting) and that nothing was written
    assert "Interrupted by SIGTERM: during --refit; the tuning had ended — best lr=0.001" in err
    assert "Traceback" not in err
    assert not (tmp_path / "tuned.mlp").exists() and not (tmp_path / "out.csv").exists()
    _assert_no_temporaries(tmp_path)


@pytest.mark.parametrize("n_jobs", ["1", "2"])
def test_cv_sigterm_writes_no_oof_file(tmp_path, table, n_jobs):
    """In one process (--n-jobs 1) too: the fit under way absorbs the interrupt (train keeps its best weights
    that way), and cross-validation must still stop there rather than train the other folds."""
    cmd = Command(["cv", str(table), "--folds", "3", "--member-folds", "1", "--hidden", "32", "--epochs", "3000",
                   "--patience", "3000", "--oof", "oof.csv", "--n-jobs", n_jobs], tmp_path)
    cmd.wait_for_line(" fits ")
    cmd.proc.send_signal(signal.SIGTERM)
    rc, err = cmd.finish()
    assert rc == 143, err
    assert "Interrupted by SIGTERM." in err and "Traceback" not in err
    assert not (tmp_path / "oof.csv").exists()
    _assert_no_temporaries(tmp_path)


# ── before and after the command ─────────────────────────────────────────────────────────────────────────


def test_a_signal_while_the_command_line_imports_ends_it_on_one_line(tmp_path):
    """Ctrl-C or SIGTERM in the first half second (the command line still importing its modules) gave a
    traceback from inside an import; the console script's first code now ends the process on one line."""
    script = tmp_path / "signal_during_import.py"
    script.write_text(
        "import importlib.abc, os, signal, sys\n"
        "SIG = getattr(signal, sys.argv[1])\n"
        "class Hook(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'mlpcli.cli':\n"
        "            os.kill(os.getpid(), SIG)  # as a signal from outside, in the middle of the imports\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hook())\n"
        "sys.argv = ['mlpcli', 'info', 'model.mlp']\n"
        "from mlpcli._entry import main\n"
        "main()\n")
    for name, code, said in (("SIGINT", 130, "Interrupted."), ("SIGTERM", 143, "Interrupted by SIGTERM.")):
        proc = subprocess.run([sys.executable, str(script), name], cwd=tmp_path, env=ENV, capture_output=True,
                              preexec_fn=default_signals,
                              text=True, timeout=TIMEOUT)
        assert proc.returncode == code and proc.stderr == said + "\n", (proc.returncode, proc.stderr)
    assert "mlpcli._entry:main" in (ROOT / "pyproject.toml").read_text()  # the console script starts there
    assert "mlpcli._entry" in (ROOT / "mlpcli" / "__main__.py").read_text()  # and python -m mlpcli


def _pid() -> int:
    return os.getpid()


def test_worker_processes_end_before_the_interpreter_shuts_down():
    """joblib keeps its worker processes for the next run and ends them from an exit handler, where a
    signal to the whole job as the command ends left a traceback or leaked semaphores; the command line
    ends them itself (parallel.shutdown_workers) while its signal handling is in force."""
    from mlpcli.parallel import Plan, run as run_tasks, shutdown_workers

    pids = set(run_tasks([(_pid, ())] * 4, Plan(n_jobs=2)))
    assert pids and os.getpid() not in pids
    shutdown_workers()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, "worker processes still running"
        time.sleep(0.05)
    shutdown_workers()  # nothing left to end: harmless


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie, ended but not yet reaped, counts as ended
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def _blocked_signals() -> set[int]:
    with open("/proc/self/status") as fh:
        mask = int(next(line for line in fh if line.startswith("SigBlk:")).split()[1], 16)
    return {s for s in range(1, 64) if mask >> (s - 1) & 1}


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the signal mask from /proc")
def test_worker_processes_are_born_with_stop_signals_blocked():
    """A Ctrl-C to the whole process group while a worker's interpreter was still starting killed it with a
    traceback on stderr (2 runs in 10 at the right moment): workers now start with the stop signals held
    back for their whole life (they end by their pool's word, or with the parent), and the parent gets
    its own signals as before."""
    from mlpcli.parallel import Plan, run as run_tasks, shutdown_workers

    shutdown_workers()  # workers of this test's own making
    masks = run_tasks([(_blocked_signals, ())] * 2, Plan(n_jobs=2))
    shutdown_workers()
    for blocked in masks:
        assert {signal.SIGINT, signal.SIGTERM, signal.SIGHUP} <= blocked, blocked
    assert not {signal.SIGINT, signal.SIGTERM} & signal.pthread_sigmask(signal.SIG_BLOCK, [])


def _worker_children() -> list[int]:
    """This process's loky worker processes (not its resource tracker)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(") ", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"popen_loky" in cmdline:
            out.append(int(pid))
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="counts child processes in /proc")
def test_no_more_worker_processes_than_tasks():
    """--n-jobs 64 for 3 folds started 64 interpreters (1.9 GB), 61 of them idle."""
    from mlpcli.parallel import Plan, run as run_tasks, shutdown_workers

    shutdown_workers()
    run_tasks([(_pid, ())] * 2, Plan(n_jobs=8))
    assert 1 <= len(_worker_children()) <= 2
    shutdown_workers()
    assert run_tasks([(_pid, ())], Plan(n_jobs=8)) == [os.getpid()]  # one task: here, no worker at all


# ── a stop signal at an awkward moment ───────────────────────────────────────────────────────────────────
# `python -m signal_at MOMENT predict ...` runs `python -m mlpcli predict ...` (runpy, as the interpreter
# does) with an audit hook that sends the process SIGINT at MOMENT, while predict writes its output: at
# that exact instant every time, where a Ctrl-C from outside lands there once in many runs.
_SIGNAL_AT = r"""
import os, runpy, signal, sys

MOMENT = sys.argv.pop(1)
state = {"temporary": False}


def say(text):
    os.write(2, f"[signal_at] {text}\n".encode())


class AtTeardown:
    def __del__(self):  # while the interpreter tears the modules down, its handlers reset to the default
        os.kill(os.getpid(), signal.SIGINT)


class Sender:
    def __del__(self):  # where Python cannot propagate an exception: it prints "Exception ignored in ..."
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass


def in_mkstemp(frame, event, arg):  # tempfile's _mkstemp_inner, line by line
    if event == "line" and "fd" in frame.f_locals:  # the file exists; its name is not returned yet
        frame.f_trace = None
        sys.settrace(None)
        say("SIGINT as mkstemp has created the temporary file")
        os.kill(os.getpid(), signal.SIGINT)
    return in_mkstemp


def hook(event, args):
    if event == "tempfile.mkstemp" and ".preds.csv." in str(args[0]):
        state["temporary"] = True
        if MOMENT == "mkstemp":
            frame = sys._getframe(1)
            while frame.f_code.co_name != "_mkstemp_inner":
                frame = frame.f_back
            frame.f_trace, frame.f_trace_lines = in_mkstemp, True
            sys.settrace(lambda *a: None)
    elif event == "open" and state["temporary"] and isinstance(args[0], int):  # its descriptor, to write
        state["temporary"] = False
        if MOMENT == "exec":  # as when Ctrl-C lands in a namedtuple or dataclass an import creates
            say("SIGINT inside code run by exec() of a string")
            exec("os.kill(os.getpid(), signal.SIGINT)\nfor _ in range(1000): pass", {"os": os, "signal": signal})
        elif MOMENT == "del":  # as when the garbage collector runs a __del__ or weakref callback
            say("SIGINT inside a __del__ method")
            Sender()
        elif MOMENT == "thrice":
            say("SIGINT as the output is written")
            os.kill(os.getpid(), signal.SIGINT)
    elif event == "os.remove" and MOMENT == "thrice" and ".preds.csv." in str(args[0]):
        say("SIGINT again as the temporary file is being removed")
        os.kill(os.getpid(), signal.SIGINT)


import mlpcli.fileio  # the moments are those of a named temporary file (as on NFS, where O_TMPFILE is not had)
mlpcli.fileio.UNNAMED_TEMPORARIES = False
if MOMENT == "thrice":
    sys.modules["_signal_at_teardown"] = type(sys)("_signal_at_teardown")
    sys.modules["_signal_at_teardown"].sender = AtTeardown()
sys.addaudithook(hook)
sys.argv[0] = "mlpcli"
runpy.run_module("mlpcli", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("moment, said", [
    # CPython remembers a KeyboardInterrupt that leaves code run by exec() of a string as unhandled, however
    # it is caught afterwards, and `python -m` then ended by killing itself with SIGINT (-2) after "Interrupted."
    ("exec", "inside code run by exec()"),
    # the interrupt raised where Python cannot propagate it: the command went on to the end, exit 0
    ("del", "inside a __del__ method"),
    # the temporary file created, its name not yet returned by mkstemp: it was left behind
    ("mkstemp", "as mkstemp has created"),
    # Ctrl-C pressed again as the temporary file was being removed (it stayed), and once more as the
    # interpreter ended (its handlers back to the default: death by SIGINT, -2)
    ("thrice", "again as the temporary file is being removed"),
])
def test_predict_sigint_at_an_awkward_moment_still_exits_130_leaving_nothing(tmp_path, model_and_cohort, moment,
                                                                             said):
    model, cohort = model_and_cohort
    (tmp_path / "signal_at.py").write_text(_SIGNAL_AT)
    proc = subprocess.run([sys.executable, "-m", "signal_at", moment, "predict", str(model), str(cohort), "-o",
                           "preds.csv", "--chunksize", "50"], cwd=tmp_path, env=ENV, preexec_fn=default_signals,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert said in proc.stderr, proc.stderr  # the signal was sent at that moment
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert proc.stderr.count("Interrupted.") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "preds.csv").exists()
    _assert_no_temporaries(tmp_path)


def test_a_stop_signal_while_stopping_waits_for_the_cleanup_unless_the_stop_is_stuck(tmp_path, monkeypatch):
    """A stop signal while the command is already stopping (a double Ctrl-C) is not raised: the cleanup runs
    to its end. Long after the first, the stop is stuck (a hang while cleaning up): the process ends at once,
    the temporary files being written removed, with 128 + the signal. When the first interrupt did not
    stop the command (a fit absorbed it and the command goes on), the next signal is raised as the first was."""
    from mlpcli import fileio
    from mlpcli.cli import signals as stopping

    tmp = tmp_path / ".out.csv.x.tmp"
    tmp.write_text("half")
    monkeypatch.setattr(fileio, "_TEMPORARIES", {str(tmp)})
    monkeypatch.setattr(stopping, "_received", [])
    monkeypatch.setattr(stopping, "_state", {"since": 0.0, "said": False})
    exits = []
    monkeypatch.setattr(stopping.os, "_exit", exits.append)
    with pytest.raises(stopping.Terminated):
        stopping._on_stop_signal(signal.SIGTERM, None)
    with pytest.raises(stopping.Interrupted):  # the first was absorbed: nothing is stopping
        stopping._on_stop_signal(signal.SIGINT, None)
    try:
        raise stopping.Terminated(signal.SIGTERM)
    except KeyboardInterrupt:  # its cleanup runs
        stopping._on_stop_signal(signal.SIGTERM, None)  # right after the first: not raised
        assert tmp.exists() and not exits
        stopping._state["since"] -= 10 * stopping._REPEAT_GRACE
        stopping._on_stop_signal(signal.SIGTERM, None)  # long after: stuck
    assert exits == [130] and not tmp.exists()


# ── a stop once training is over ──────────────────────────────────────────────────────────────────────────

_SIGNAL_IN = r"""
import os, runpy, signal, sys

MOMENT = sys.argv.pop(1)  # where the command sends itself SIGTERM
from mlpcli import model_io, pipeline
from mlpcli.data import preprocess
from mlpcli.model_selection import crossfit

SIGNAL = signal.SIGTERM

def sending(fn, on_call=1):
    calls = [0]
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == on_call:
            sys.stderr.write(f"[sending {SIGNAL.name} in {fn.__name__}]\n")
            os.kill(os.getpid(), SIGNAL)
        return fn(*args, **kwargs)
    return wrapped

if MOMENT == "calibrating":  # every member trained: the model's calibration, conformal scores, OOD basis
    crossfit.calibrate_on_held_out = sending(crossfit.calibrate_on_held_out)
elif MOMENT == "metrics":  # the model made: its held-out metrics and diagnosis
    pipeline._diagnose = sending(pipeline._diagnose)
elif MOMENT == "writing":  # the model's bytes being made
    model_io.to_bytes = sending(model_io.to_bytes)
elif MOMENT == "second member":  # member 1 trained, member 2's preprocessing being fitted
    preprocess.Preprocessor.fit_transform = sending(preprocess.Preprocessor.fit_transform, on_call=2)
elif MOMENT == "second member, hangup":  # the same with SIGHUP (the caller ignores it: nohup)
    SIGNAL = signal.SIGHUP
    preprocess.Preprocessor.fit_transform = sending(preprocess.Preprocessor.fit_transform, on_call=2)
elif MOMENT == "scoring":  # the members trained in worker processes, the first being scored in this one
    crossfit._raw_outputs = sending(crossfit._raw_outputs)
sys.argv[0] = "mlpcli"
runpy.run_module("mlpcli", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("moment, folds", [("calibrating", "5"), ("calibrating", "1"), ("metrics", "5"),
                                           ("writing", "5")])
def test_a_stop_once_training_is_over_writes_the_complete_model_then_exits_143(tmp_path, table, moment, folds):
    """SIGTERM after every member had trained (the model's calibration, trust data, metrics, writing: 1.7 s of a
    3 s run) ended with "nothing trained yet to keep; no model written": the finished model was thrown away."""
    (tmp_path / "signal_in.py").write_text(_SIGNAL_IN)
    proc = subprocess.run([sys.executable, "-m", "signal_in", moment, "train", str(table), "-o", "m.mlp", "--oof",
                           "oof.csv", "--hidden", "4", "--epochs", "3", "--folds", folds, "--n-jobs", "1", "-q"],
                          cwd=tmp_path, env={**ENV, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"},
                          preexec_fn=default_signals, capture_output=True, text=True, timeout=TIMEOUT)
    assert "[sending SIGTERM" in proc.stderr, proc.stderr
    assert proc.returncode == 143, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "stopped once training was over; the complete model is written to m.mlp" in proc.stderr, proc.stderr
    model = model_io.load(tmp_path / "m.mlp")
    assert not model.fit["interrupted"] and len(model.members) == int(folds)
    assert model.ood is not None and (tmp_path / "oof.csv").exists()  # what comes after the calibration is there
    if folds == "5":
        assert model.fit["calibration"] is not None  # (24 validation rows are too few to calibrate on)
    _assert_no_temporaries(tmp_path)


def test_a_stop_before_the_second_member_trains_keeps_the_first(tmp_path, table):
    """SIGTERM while member 2's rows were being preprocessed (before its first epoch) lost member 1 too."""
    (tmp_path / "signal_in.py").write_text(_SIGNAL_IN)
    proc = subprocess.run([sys.executable, "-m", "signal_in", "second member", "train", str(table), "-o", "m.mlp",
                           "--hidden", "4", "--epochs", "3", "--folds", "5", "--n-jobs", "1", "-q"],
                          cwd=tmp_path, env={**ENV, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"},
                          preexec_fn=default_signals, capture_output=True, text=True, timeout=TIMEOUT)
    assert "[sending SIGTERM" in proc.stderr, proc.stderr
    assert proc.returncode == 143 and "Traceback" not in proc.stderr, proc.stderr
    assert "kept the 1 of 5 members trained so far" in proc.stderr, proc.stderr
    model = model_io.load(tmp_path / "m.mlp")
    assert model.fit["interrupted"] and len(model.members) == 1
    _assert_no_temporaries(tmp_path)


def _slow_task(k):
    import time

    time.sleep(0.3)
    return k


def test_a_run_stopped_early_keeps_joblibs_cancellation_warning_to_itself():
    """Ctrl-C during fits side by side: the tasks joblib cancels are not announced on stderr (its "N tasks have
    been successfully executed but not used ... cancelled" warning came when the generator was collected, after
    the filter that silences it)."""
    import gc

    from mlpcli import parallel

    def stop(done, total):
        if done == 1:
            raise KeyboardInterrupt

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = parallel.run([(_slow_task, (k,)) for k in range(8)], parallel.Plan(n_jobs=2), progress=stop,
                           keep_partial=True)
        gc.collect()
    assert out.count(None) >= 5 and sum(r is not None for r in out) >= 1
    assert not [w for w in caught if "cancelled" in str(w.message)]


def test_a_stop_signal_after_the_last_exit_handler_is_ignored():
    """CPython puts the default handlers back after the exit handlers: a Ctrl-C in those last moments killed the
    process without a word (exit -2) though its work was done and written. The console script's last exit handler
    now ignores the stop signals: a signal sent after it leaves the command's own exit code."""
    code = ("import atexit, os, signal, sys\n"
            "from mlpcli import _entry\n"
            "sys.argv = ['mlpcli', '--version']\n"
            "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), os.kill(os.getpid(), signal.SIGTERM),"
            " print('after the signals', flush=True)))\n"  # registered before main's handler: runs after it
            "_entry.main()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert "after the signals" in res.stdout and "Interrupted" not in res.stderr


def _ends_with_sigterm_after_the_command(code: str) -> None:
    """Run ``code`` (an `mlpcli --version` that SIGTERM stops once its work is done): exit 143, and the last line
    says the outputs are complete."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 143, (res.returncode, res.stderr)
    assert res.stderr.strip().endswith("Interrupted by SIGTERM after the command had ended: its outputs and the "
                                       "lines above are complete."), res.stderr


def test_a_stop_signal_during_the_exit_handlers_still_ends_with_its_code():
    """Before the last handler the console script's own handler is in force: one line, 128 + the signal."""
    code = ("import atexit, os, signal, sys, time\n"
            "from mlpcli import _entry\n"
            "sys.argv = ['mlpcli', '--version']\n"
            "orig = _entry.main\n"
            "def main():\n"
            "    try:\n"
            "        orig()\n"
            "    finally:\n"
            "        atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(5)))\n"
            "main()\n")
    _ends_with_sigterm_after_the_command(code)


def test_a_stop_signal_while_the_summary_is_printed_says_the_model_is_written(tmp_path):
    """SIGTERM after the model, --history and --oof were written but while the summary was printed ended in a bare
    "Interrupted by SIGTERM." (exit 143), which a job log reads as "no model"; now the signal waits for the
    summary and the last line says the complete model is written."""
    model = tmp_path / "m.mlp"
    code = ("import os, signal, sys\n"
            "import mlpcli.cli.train as t\n"
            "shown = t._summary_table\n"
            "def summary(*a, **k):\n"
            "    os.kill(os.getpid(), signal.SIGTERM)  # the job's time limit, as the summary is drawn\n"
            "    return shown(*a, **k)\n"
            "t._summary_table = summary\n"
            "from mlpcli import _entry\n"
            f"sys.argv = ['mlpcli', 'train', {SAMPLE!r}, '--folds', '1', '--epochs', '2', '--hidden', 'none',\n"
            f"            '-o', {str(model)!r}, '--history', {str(tmp_path / 'h.csv')!r}]\n"
            "_entry.main()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 143, res.stderr
    assert "stopped once training was over; the complete model is written to" in res.stderr
    assert "Training summary" in res.stdout  # the summary was finished first
    assert model.exists() and (tmp_path / "h.csv").exists()


def test_an_interrupted_ensembles_split_is_what_its_kept_members_held_out(tmp_path, monkeypatch):
    """Interrupted after its first member, the model's split (`train --json`'s `split`, `info`) said every sample was
    held out (the planned folds' 611 of 611) where the kept member held out one fold, as the interval, the summary
    and --oof said."""
    from mlpcli import cli as cli_mod, model_io

    original = cli_mod.TrainProgress.__call__

    def interrupt(self, row):  # in the first member's third epoch
        original(self, row)
        if row.get("epoch") == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_mod.TrainProgress, "__call__", interrupt)
    oof, out = tmp_path / "oof.csv", tmp_path / "m.mlp"
    res = CliRunner().invoke(cli, ["train", SAMPLE, "-o", str(out), "--hidden", "none", "--epochs", "20",
                                   "--n-jobs", "1", "--oof", str(oof)])
    assert res.exit_code == 130, res.output
    model = model_io.load(out)
    assert len(model.members) == 1
    held = pd.read_csv(oof)
    assert model.split["n_val"] == len(held) < 611
    assert model.split["n_train"] == 611 - len(held)
    assert model.split["n_groups_val"] == held["patient_id"].nunique()
    assert sum(model.split["class_counts_val"].values()) == len(held)



def _ignoring_sighup() -> None:
    default_signals()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as `nohup` starts its command


def test_a_hangup_the_caller_ignores_stays_ignored(tmp_path, table):
    """`nohup mlpcli train ... &` ignores SIGHUP so that the job outlives the terminal; the command's own handler
    went over it, and the job stopped at logout with exit 129 and a model of the members trained by then."""
    (tmp_path / "signal_in.py").write_text(_SIGNAL_IN)
    proc = subprocess.run([sys.executable, "-m", "signal_in", "second member, hangup", "train", str(table), "-o",
                           "m.mlp", "--hidden", "4", "--epochs", "3", "--n-jobs", "1", "-q"],
                          cwd=tmp_path, env={**ENV, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"},
                          preexec_fn=_ignoring_sighup, capture_output=True, text=True, timeout=TIMEOUT)
    assert "[sending SIGHUP" in proc.stderr, proc.stderr
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    model = model_io.load(tmp_path / "m.mlp")
    assert not model.fit["interrupted"] and len(model.members) == 5


def test_a_stop_while_parallel_members_are_scored_keeps_them_all(tmp_path, table):
    """With the members trained in worker processes, SIGTERM while the first was being scored was taken as "more to
    train": the model kept 1 of 5 members, or the architecture chosen among the candidates scored by then."""
    (tmp_path / "signal_in.py").write_text(_SIGNAL_IN)
    proc = subprocess.run([sys.executable, "-m", "signal_in", "scoring", "train", str(table), "-o", "m.mlp",
                           "--hidden", "4", "--epochs", "3", "--n-jobs", "2", "-q"],
                          cwd=tmp_path, env={**ENV, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"},
                          preexec_fn=default_signals, capture_output=True, text=True, timeout=TIMEOUT)
    assert "[sending SIGTERM" in proc.stderr, proc.stderr
    assert proc.returncode == 143, (proc.returncode, proc.stderr)
    assert "stopped once training was over; the complete model is written to m.mlp" in proc.stderr, proc.stderr
    model = model_io.load(tmp_path / "m.mlp")
    assert not model.fit["interrupted"] and len(model.members) == 5
    _assert_no_temporaries(tmp_path)


def test_a_stop_signal_as_the_worker_processes_are_ended_says_the_command_had_ended():
    """A signal after the command's work, as its worker processes were stopped (0.2 s of every parallel run), read
    "Interrupted by SIGTERM." in a batch job's log, with the model, history and --oof written and complete."""
    code = ("import os, signal, sys, time\n"
            "import mlpcli.cli as cli\n"
            "from mlpcli import _entry\n"
            "sys.argv = ['mlpcli', '--version']\n"
            "def shutdown():\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(5)\n"
            "cli.shutdown_workers = shutdown\n"
            "_entry.main()\n")
    _ends_with_sigterm_after_the_command(code)
