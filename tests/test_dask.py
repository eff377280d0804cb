"""A real Dask cluster on loopback (distributed.LocalCluster, two worker processes): cv and tune
give exactly the sequential results; an unreachable scheduler is a one-line error."""

import json
import socket
import threading

import distributed  # the test extra installs dask and distributed: not skipped when missing
import numpy as np
import pytest
from click.testing import CliRunner

from mlpcli import dask_connect, data
from mlpcli.model_selection import cross_validation, grid, tuning
from mlpcli.cli import cli
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError, OptionError
from mlpcli.parallel import Plan
from tables import make_table, write_table


FAST = ["--hidden", "8", "--epochs", "8", "--patience", "4", "--quiet"]
OPTIONS = TrainOptions(hidden=[8], epochs=8, patience=4)


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  host="127.0.0.1") as cluster:
        yield cluster.scheduler_address


def dataset():
    df = make_table("multiclass", n_patients=18)
    roles, _ = data.resolve_roles(df.columns)
    return data.Dataset.from_frame(df, roles)


def test_cross_validate_on_dask_equals_sequential(scheduler):
    ds = dataset()
    seq = cross_validation.cross_validate(ds, OPTIONS, folds=3, repeats=2)
    dask = cross_validation.cross_validate(ds, OPTIONS, folds=3, repeats=2, plan=Plan(backend="dask", scheduler=scheduler, n_jobs=None))
    assert [(f.repeat, f.fold) for f in dask.folds] == [(f.repeat, f.fold) for f in seq.folds]
    for a, b in zip(seq.folds, dask.folds):
        np.testing.assert_array_equal(a.proba, b.proba)
        assert a.metrics == b.metrics


def test_nested_tune_on_dask_equals_sequential(scheduler):
    ds = dataset()
    space = grid.parse_grid("lr=1e-3,3e-2")
    seq = tuning.tune(ds, OPTIONS, space, folds=2, nested=True, outer_folds=3)
    dask = tuning.tune(ds, OPTIONS, space, folds=2, nested=True, outer_folds=3,
                   plan=Plan(backend="dask", scheduler=scheduler))
    assert [(p.setting, p.scores, p.rank) for p in seq.points] == [(p.setting, p.scores, p.rank) for p in dask.points]
    assert [(o.chosen, o.score) for o in seq.nested] == [(o.chosen, o.score) for o in dask.nested]


def test_cli_cv_and_tune_with_dask_backend(scheduler, tmp_path):
    path = write_table(tmp_path, n_patients=18)
    runner = CliRunner()
    base = ["cv", path, "--folds", "3", "--json", *FAST]
    seq = json.loads(runner.invoke(cli, base).stdout)
    res = runner.invoke(cli, [*base, "--backend", "dask", "--scheduler", scheduler])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["parallel"]["backend"] == "dask" and doc["parallel"]["scheduler"] == scheduler
    assert [f["metrics"] for f in doc["per_fold"]] == [f["metrics"] for f in seq["per_fold"]]

    res = runner.invoke(cli, ["tune", path, "--grid", "dropout=0,0.3", "--folds", "3", "--backend", "dask",
                              "--scheduler", scheduler, *FAST])
    assert res.exit_code == 0, res.output
    assert "Tuning: 2 of 2 grid points" in res.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_unreachable_scheduler_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setattr(dask_connect, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(ConfigError, match="cannot reach a Dask scheduler within 1 s"):
        dask_connect.connect(address)
    path = write_table(tmp_path, n_patients=12)
    res = CliRunner().invoke(cli, ["cv", path, "--folds", "3", "--backend", "dask", "--scheduler", address, *FAST])
    assert res.exit_code == 1 and "Traceback" not in res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Error: --scheduler tcp://127.0.0.1:") and "dask scheduler" in last


@pytest.mark.parametrize("command", [["cv"], ["tune", "--grid", "lr=0.01,0.001"]])
def test_without_distributed_or_with_a_malformed_address_before_the_table_is_read(monkeypatch, tmp_path, command):
    """A base install (no dask extra) read the whole table, then said "internal error (ModuleNotFoundError: No
    module named 'distributed')"; a malformed address did too, where it is a usage error."""
    import sys

    missing = tmp_path / "missing.csv"  # never read: the options are refused first
    res = CliRunner().invoke(cli, [*command, str(missing), "--backend", "dask", "--scheduler", "nonsense", *FAST])
    assert res.exit_code == 2 and "--scheduler nonsense: not a Dask scheduler address" in res.output, res.output
    for name in ("distributed", "distributed.comm", "distributed.comm.registry"):
        monkeypatch.setitem(sys.modules, name, None)  # import distributed: ImportError
    res = CliRunner().invoke(cli, [*command, str(missing), "--backend", "dask", "--scheduler", "tcp://127.0.0.1:8786",
                                   *FAST])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().splitlines()[-1] == f"Error: {dask_connect.DASK_MISSING}"


def test_scheduler_without_workers_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(dask_connect, "WORKER_TIMEOUT", 1.0)
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0", host="127.0.0.1") as empty:
        with pytest.raises(ConfigError, match="no Dask worker joined within 1 s; start workers with `dask worker"):
            cross_validation.cross_validate(dataset(), OPTIONS, folds=3, plan=Plan(backend="dask", scheduler=empty.scheduler_address))


def test_plan_rules():
    with pytest.raises(ConfigError, match="--backend dask needs --scheduler"):
        Plan(backend="dask").validate()
    with pytest.raises(ConfigError, match="--scheduler applies to --backend dask only"):
        Plan(scheduler="tcp://127.0.0.1:8786").validate()
    with pytest.raises(ConfigError, match="--n-jobs must not be 0"):
        Plan(n_jobs=0).validate()


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
            dask_connect.connect(address, timeout=0.3)
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
        dask_connect.connect(address, timeout=2.0)


def test_a_dashboard_port_is_named():
    assert "8787 is the dashboard's port" in dask_connect.scheduler_hint("tcp://10.0.0.5:8787")
    assert dask_connect.scheduler_hint("tcp://10.0.0.5:8786") == ""


@pytest.mark.parametrize("address", ["http://127.0.0.1:8786", "127.0.0.1"])
def test_a_malformed_address_is_a_usage_error_without_waiting(address):
    pytest.importorskip("distributed")
    with pytest.raises(OptionError, match=rf"--scheduler {address}: not a Dask scheduler address \(.+\); give it "
                                          r"as tcp://HOST:PORT") as info:
        dask_connect.connect(address, timeout=30.0)
    assert "within" not in str(info.value)


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:99999", "tcp://:8786", "tcp://127.0.0.1:0"])
def test_a_scheduler_address_no_socket_can_have_is_a_usage_error_without_waiting(address):
    """A port beyond 65535 (or none, or no host) waited the whole timeout, then said "cannot reach"."""
    pytest.importorskip("distributed")
    from mlpcli.errors import OptionError

    with pytest.raises(OptionError, match=r"not a Dask scheduler address \(a host and a port from 1 to 65535"):
        dask_connect.connect(address, timeout=30.0)
