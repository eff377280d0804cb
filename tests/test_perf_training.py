"""Issue 17's per-epoch and ensemble work: the inference-mode training loss on a fixed subsample of the
training rows, and the rule that trains an ensemble's members in worker processes or here."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mlpcli import data, model_io, parallel, training
from mlpcli.config import TrainOptions
from mlpcli.engine import MLP, losses
from mlpcli.model_selection import fit_model
from mlpcli.parallel import MEMBER_COPY_BYTES, Plan, member_processes
from mlpcli.training import FitConfig, evaluate_loss, fit, train_eval_rows
from tables import make_table


# ── the inference-mode training loss on a subsample ──────────────────────────────────────────────────────


def test_small_training_sets_are_measured_on_every_row():
    assert train_eval_rows(np.arange(training.TRAIN_EVAL_ROWS) % 3, seed=0) is None


def test_the_subsample_is_fixed_by_the_seed_sorted_and_keeps_every_class():
    y = np.zeros(10_000, dtype=np.int64)
    y[:3] = 2  # a rare class of 3 rows in 10,000: proportional allocation alone would give it none
    y[3:3000] = 1
    a, b, c = train_eval_rows(y, 0), train_eval_rows(y, 0), train_eval_rows(y, 1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(np.diff(a) > 0)  # sorted and without repeats
    assert abs(len(a) - training.TRAIN_EVAL_ROWS) <= 3
    assert set(y[a]) == {0, 1, 2}
    # classes in proportion (class 1 is 30 % of the rows)
    assert np.mean(y[a] == 1) == pytest.approx(0.3, abs=0.01)


def test_regression_and_multilabel_targets_get_a_simple_random_sample():
    for y in (np.linspace(0, 1, 5000), np.zeros((5000, 3))):
        rows = train_eval_rows(y, 0, limit=100)
        assert len(rows) == 100 and len(np.unique(rows)) == 100 and rows.max() < 5000


@pytest.mark.parametrize("sparse", [False, True])
def test_history_measures_the_inference_mode_loss_and_metric_on_the_subsample(monkeypatch, sparse):
    monkeypatch.setattr(training, "TRAIN_EVAL_ROWS", 50)
    monkeypatch.setattr(training, "EVAL_CHUNK_BYTES", 7 * 10 * 4)  # gathered 7 rows at a time
    # one usable core: each epoch's passes run at its end, so the callback's network is that epoch's (with a
    # core to spare they run beside the next epoch and the row arrives an epoch later)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    Xv, yv = X[:40], y[:40]
    Xt = X
    if sparse:
        scipy_sparse = pytest.importorskip("scipy.sparse")
        Xt = scipy_sparse.csr_matrix(np.where(np.abs(X) > 0.5, X, 0).astype(np.float32))
    net = MLP(10, [6], 2, dropout=0.3, seed=0, dtype="float32")
    loss = losses.get("ce")
    rows = train_eval_rows(y, 0, limit=50)
    seen = []

    def check(row):
        sub = Xt[rows].toarray() if sparse else X[rows]
        value, out = evaluate_loss(net, loss, sub, y[rows])
        seen.append((row["train_loss_eval"], value, row["train_metric"], float((out.argmax(1) == y[rows]).mean())))

    metric = lambda out, t: float((out.argmax(1) == t).mean())  # noqa: E731 - plain accuracy
    fit(net, loss, Xt, y, Xv, yv, FitConfig(epochs=3, batch_size=32, patience=None), metric=metric, callback=check)
    assert len(seen) == 3
    for recorded, expected, metric_recorded, metric_expected in seen:
        assert recorded == pytest.approx(expected, rel=1e-6)
        assert metric_recorded == pytest.approx(metric_expected)


@pytest.mark.parametrize("n_val, measured", [(40, training.TRAIN_EVAL_MIN_ROWS), (600, 600), (3000, training.TRAIN_EVAL_ROWS)])
def test_the_training_loss_is_measured_on_as_many_rows_as_the_validation_pass(n_val, measured, monkeypatch):
    # a member of the ensemble holds out a quarter of its training rows: its inference-mode training loss is
    # measured on as many of them (within the floor and the cap), not on all, and the sample is the public one
    rng = np.random.default_rng(2)
    n = 2600
    X = rng.normal(size=(n + n_val, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n + n_val) > 0).astype(np.int64)
    assert training.train_eval_limit(n_val) == measured and training.train_eval_limit(None) == training.TRAIN_EVAL_ROWS
    rows = train_eval_rows(y[:n], 3, training.train_eval_limit(n_val))
    assert rows is not None and abs(len(rows) - measured) <= 2  # (each class rounded to whole rows)
    net = MLP(6, [5], 2, seed=3, dtype="float32")
    loss = losses.get("ce")
    seen = []
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")  # the passes at each epoch's end, as in the test above

    def check(row):
        seen.append((row["train_loss_eval"], evaluate_loss(net, loss, X[rows], y[rows])[0],
                     evaluate_loss(net, loss, X[:n], y[:n])[0]))

    fit(net, loss, X[:n], y[:n], X[n:], y[n:], FitConfig(epochs=2, batch_size=256, patience=None, seed=3),
        callback=check)
    assert len(seen) == 2
    for recorded, on_sample, on_all in seen:
        assert recorded == pytest.approx(on_sample, rel=1e-6)
        assert recorded != on_all  # not every training row


def test_same_seed_gives_byte_identical_weights_and_history_with_a_subsample(monkeypatch):
    monkeypatch.setattr(training, "TRAIN_EVAL_ROWS", 64)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 12)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    runs = []
    for _ in range(2):
        net = MLP(12, [8], 3, seed=4, dtype="float32")
        res = fit(net, losses.get("ce"), X, y, X[:60], y[:60], FitConfig(epochs=4, batch_size=16, seed=4))
        runs.append((net.flat_params.tobytes(), [r["train_loss_eval"] for r in res.history]))
    assert runs[0] == runs[1]


# ── members in processes or here ─────────────────────────────────────────────────────────────────────────


def test_member_rule_processes_for_small_copies_this_process_for_large_ones(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    auto = Plan(n_jobs=2, auto=True)
    assert member_processes(auto, 15, MEMBER_COPY_BYTES) == 2
    assert member_processes(auto, 15, MEMBER_COPY_BYTES + 1) == 1
    assert member_processes(auto, 1, 10) == 1  # one network: no worker to start
    # an explicit --n-jobs is obeyed whatever the data
    assert member_processes(Plan(n_jobs=2), 15, 10 * MEMBER_COPY_BYTES) == 2
    assert member_processes(Plan(n_jobs=1, auto=True), 15, 10) == 1


def _train(ds, plan, events):
    return fit_model(ds, TrainOptions(hidden=[8], epochs=4, folds=3), progress=events.append, plan=plan)


def test_large_copies_train_the_members_here_and_the_model_is_byte_identical(monkeypatch, tmp_path):
    df = make_table(n_patients=30)
    roles, _ = data.resolve_roles(df.columns)
    ds = data.Dataset.from_frame(df, roles)
    plan = Plan(n_jobs=2, threads=1, auto=True)
    here, workers = [], []
    monkeypatch.setattr(parallel, "MEMBER_COPY_BYTES", 0)  # every copy counts as large: train here
    a = _train(ds, plan, here)
    monkeypatch.setattr(parallel, "MEMBER_COPY_BYTES", 1 << 40)
    b = _train(ds, plan, workers)
    # here: every epoch's row reaches the progress callback; in workers only "run_done" events do
    assert any("epoch" in e for e in here) and not any(e.get("event") == "run_done" for e in here)
    assert any(e.get("event") == "run_done" for e in workers) and not any("epoch" in e for e in workers)
    paths = []
    for name, fitted in (("here", a), ("workers", b)):
        paths.append(tmp_path / f"{name}.mlp")
        model_io.save(fitted.model, paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()


def _loky_workers(pid: int) -> list[int]:
    """The children of ``pid`` that are joblib's loky worker processes."""
    found = []
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"popen_loky" in f.read():
                    found.append(child)
        except OSError:
            continue
    return found


def _children(pid: int) -> list[int]:
    import os

    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d))
    return out


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="reads /proc (Linux)")
@pytest.mark.parametrize("when", ["while the members train", "as the workers start"])
def test_workers_end_when_the_command_is_killed_outright(when):
    """The command SIGKILLed (the out-of-memory killer) or crashed in BLAS while members trained in worker
    processes: the workers, which ignore the stop signals, stayed alive for good, one blocked writing its result.
    Killed as its workers started, before a task reached them, they waited for one until loky's idle timeout
    (300 s), and the two resource trackers with them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from pathlib import Path

    sample = Path(__file__).resolve().parent.parent / "sample_data" / "tumour_subtypes.csv.gz"
    proc = subprocess.Popen([sys.executable, "-m", "mlpcli", "train", str(sample), "--n-jobs", "2", "--epochs",
                             "400", "--patience", "400", "-o", os.devnull, "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        # the resource trackers start first, then the two loky workers
        while len(_loky_workers(proc.pid)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        if when == "while the members train":
            time.sleep(1.0)
        workers = _children(proc.pid)  # the workers and the trackers
        assert len(_loky_workers(proc.pid)) >= 2 and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_without_worker_processes_the_fits_run_here_with_one_warning(tmp_path):
    """JOBLIB_MULTIPROCESSING=0, or a read-only /dev/shm: joblib fell back to threads with a raw UserWarning, then
    refused the BLAS cap ("internal error (AssertionError: ThreadingBackend does not accept ...)") — in `train`
    without --n-jobs too."""
    import os
    import subprocess
    import sys

    make_table("multiclass", n_patients=30).to_csv(tmp_path / "t.csv", index=False)
    env = {**os.environ, "JOBLIB_MULTIPROCESSING": "0"}
    for args in (["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp"), "--n-jobs", "2"],
                 ["cv", str(tmp_path / "t.csv"), "--folds", "2", "--n-jobs", "2"]):
        r = subprocess.run([sys.executable, "-m", "mlpcli", *args, "--hidden", "4", "--epochs", "3", "-q"], env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "worker processes cannot be started here (JOBLIB_MULTIPROCESSING=0" in r.stderr
        assert "UserWarning" not in r.stderr and "Traceback" not in r.stderr


class _UnreadableInAWorker:
    """Pickles to a call that fails where it is unpickled, as a task does in a worker whose installed code changed."""

    def __reduce__(self):
        return (int, ("not a number",))


def test_a_task_a_worker_cannot_read_is_one_line_naming_why_and_the_remedy():
    """"internal error (BrokenProcessPool: A task has failed to un-serialize ...)" with no cause, seen once while the
    package's files were being changed under a running train."""
    from mlpcli import parallel
    from mlpcli.errors import TrainingError

    with pytest.raises(TrainingError, match=r"^a worker process running fits side by side could not read its task "
                                            r"\(ValueError: invalid literal for int\(\).*--n-jobs 1$"):
        parallel.run([(len, ([1],)), (len, (_UnreadableInAWorker(),))], parallel.Plan(n_jobs=2))


def _fails_after(seconds: float, name: str) -> None:
    time.sleep(seconds)
    raise ValueError(f"{name} failed")


def test_tasks_side_by_side_raise_the_first_task_s_error_as_one_after_the_other_would():
    """cv's folds on two workers: which fold's error the user read depended on which worker was quicker ("fold 2:
    the largest class has 3 samples" where a run one after the other says fold 1). The first task's error is raised,
    the tasks before it waited for; a later task that fails first does not win."""
    from mlpcli import parallel

    tasks = [(_fails_after, (0.6, "task 1")), (_fails_after, (0.0, "task 2")), (_fails_after, (0.0, "task 3"))]
    with pytest.raises(ValueError, match="^task 1 failed$"):
        parallel.run(tasks, parallel.Plan(n_jobs=2))
    with pytest.raises(ValueError, match="^task 1 failed$"):
        parallel.run(tasks, parallel.Plan(n_jobs=1))
    ok = [(len, ([1, 2],)), (_fails_after, (0.3, "task 2")), (_fails_after, (0.0, "task 3"))]
    with pytest.raises(ValueError, match="^task 2 failed$"):
        parallel.run(ok, parallel.Plan(n_jobs=2))
