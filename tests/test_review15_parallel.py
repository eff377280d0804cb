"""Review 15, running on shared machines and clusters: the cores a job may use (a CPU quota set above the
process's own cgroup), the Dask scheduler address (a wrong port that answers, or never answers, a worker's
address, a malformed one) and a user's OMP_NUM_THREADS."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from mlpcli import parallel
from mlpcli.errors import ConfigError, OptionError
from mlpcli.parallel import Plan


def _cgroup(tmp_path, monkeypatch, line: str) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text(line)
    monkeypatch.setattr(parallel, "_CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(parallel, "_PROC_CGROUP", str(proc))
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))  # a big node


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_cpu_quota_above_the_process_cgroup_limits_the_cores(tmp_path, monkeypatch, version):
    """systemd-run -p CPUQuota=200%, a Kubernetes pod or a job's cgroup set the quota on a cgroup above the
    process's own, whose cpu.max reads "max": only the leaf was read, so 64 workers went to a 2-CPU quota."""
    if version == "v2":
        job = tmp_path / "system.slice" / "job_7"
        (job / "step_0").mkdir(parents=True)
        (job / "cpu.max").write_text("200000 100000\n")
        (job / "step_0" / "cpu.max").write_text("max 100000\n")
        line = "0::/system.slice/job_7/step_0\n"
    else:
        job = tmp_path / "cpu" / "slurm" / "job_7"
        (job / "step_0").mkdir(parents=True)
        (job / "cpu.cfs_quota_us").write_text("200000\n")
        (job / "cpu.cfs_period_us").write_text("100000\n")
        (job / "step_0" / "cpu.cfs_quota_us").write_text("-1\n")
        (job / "step_0" / "cpu.cfs_period_us").write_text("100000\n")
        line = "4:cpu,cpuacct:/slurm/job_7/step_0\n3:memory:/slurm/job_7/step_0\n"
    _cgroup(tmp_path, monkeypatch, line)
    assert parallel.usable_cores() == 2
    assert parallel.local_workers(-1) == 2
    assert "may use 2" in parallel.workers_warning(8, None)


def test_the_tightest_quota_on_the_way_up_wins_and_none_means_the_affinity_mask(tmp_path, monkeypatch):
    leaf = tmp_path / "a" / "b"
    leaf.mkdir(parents=True)
    (tmp_path / "a" / "cpu.max").write_text("300000 100000\n")
    (leaf / "cpu.max").write_text("800000 100000\n")
    _cgroup(tmp_path, monkeypatch, "0::/a/b\n")
    assert parallel.usable_cores() == 3
    (leaf / "cpu.max").write_text("max 100000\n")
    (tmp_path / "a" / "cpu.max").write_text("max 100000\n")
    assert parallel.usable_cores() == 64


# ── the Dask scheduler's address ──────────────────────────────────────────────────────────────────────


@pytest.fixture
def server():
    """A TCP server on loopback that accepts connections and answers each with ``reply`` (None: never)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    state = {"reply": None, "conns": []}

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            state["conns"].append(conn)
            if state["reply"] is not None:
                try:
                    conn.recv(65536)
                    conn.sendall(state["reply"])
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield state, f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    for conn in state["conns"]:
        conn.close()


def test_a_port_that_accepts_but_never_answers_is_an_error_not_a_hang(server):
    """A port held by another service that waits for its own protocol: distributed's handshake has no
    deadline, so a batch job hung there until its time limit."""
    pytest.importorskip("distributed")
    state, address = server
    outcome = []

    def attempt():
        try:
            parallel.connect(address, timeout=0.3)
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(20)  # before the fix: forever
    assert not thread.is_alive() and isinstance(outcome[0], ConfigError)
    assert "accepted the connection but did not answer as a Dask scheduler within 0.3 s" in str(outcome[0])


def test_a_port_where_another_service_answers_is_an_error_not_out_of_memory(server):
    """An HTTP answer (the dashboard's port, 8787, instead of the scheduler's) was read as a message of
    exabytes: the command ended with "out of memory"."""
    pytest.importorskip("distributed")
    state, address = server
    state["reply"] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(ConfigError, match=r"--scheduler tcp://127\.0\.0\.1:\d+: another service answered there, "
                                          r"not a Dask scheduler"):
        parallel.connect(address, timeout=2.0)


def test_a_dashboard_port_is_named():
    assert "8787 is the dashboard's port" in parallel._scheduler_hint("tcp://10.0.0.5:8787")
    assert parallel._scheduler_hint("tcp://10.0.0.5:8786") == ""


@pytest.mark.parametrize("address", ["http://127.0.0.1:8786", "127.0.0.1"])
def test_a_malformed_address_is_a_usage_error_without_waiting(address):
    pytest.importorskip("distributed")
    with pytest.raises(OptionError, match=rf"--scheduler {address}: not a Dask scheduler address \(.+\); give it "
                                          r"as tcp://HOST:PORT") as info:
        parallel.connect(address, timeout=30.0)
    assert "within" not in str(info.value)


# ── OMP_NUM_THREADS and friends ───────────────────────────────────────────────────────────────────────


def test_a_users_blas_thread_variable_that_mlpcli_overrides_is_named(monkeypatch):
    """OMP_NUM_THREADS=8 in a batch script was silently replaced by one BLAS thread per fit."""
    for name in parallel.BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert parallel.blas_env_note(None) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    note = parallel.blas_env_note(None)
    assert note.startswith("OMP_NUM_THREADS=8 is not used") and "--threads 8" in note
    assert "OMP_NUM_THREADS=8 is not used" in Plan(n_jobs=1).describe()
    assert parallel.blas_env_note(8) is None  # asked for on the command line: they agree
    assert "--threads 2" in parallel.blas_env_note(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what the default does anyway
    assert parallel.blas_env_note(None) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # OpenMP's nested form: not a BLAS thread count to quote
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    assert parallel.blas_env_note(None).startswith("MKL_NUM_THREADS=4 is not used")
