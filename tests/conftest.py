"""Fixtures every test gets, and the fixtures several test modules share (small trained models and tables)."""

from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.config import TrainOptions
from mlpcli.pipeline import train
from cli_helpers import FAST, run
from model_files import _trained
from tables import _table, make_table, risk_cohort


def _release(package: str) -> tuple[int, int]:
    return tuple(int(part) for part in version(package).split(".")[:2])


if _release("click") < (8, 2):
    # click 8.1 (pyproject allows it) mixes a CliRunner's stderr into its stdout unless told not to, and then its
    # `output` is stdout alone; the tests read click 8.2's result: `stdout` and `stderr` apart, and `output` both,
    # in the order they were written (JSON after the notes, the error line last). Each stream's writes are
    # copied to one shared output here, as 8.2 does.
    import contextlib
    import io
    import sys

    from click.testing import CliRunner, Result, _NamedTextIOWrapper

    class _Copied(io.BytesIO):
        def __init__(self, shared: io.BytesIO):
            super().__init__()
            self.shared = shared

        def write(self, b):
            self.shared.write(b)
            return super().write(b)

    _runner_init, _isolation, _invoke = CliRunner.__init__, CliRunner.isolation, CliRunner.invoke

    def _stderr_apart(self, *args, mix_stderr=False, **kwargs):
        _runner_init(self, *args, mix_stderr=mix_stderr, **kwargs)

    @contextlib.contextmanager
    def _both_copied(self, *args, **kwargs):
        with _isolation(self, *args, **kwargs):
            self.output_bytes = io.BytesIO()
            out, err = _Copied(self.output_bytes), _Copied(self.output_bytes)
            sys.stdout = _NamedTextIOWrapper(out, encoding=self.charset, name="<stdout>", mode="w", write_through=True)
            sys.stderr = _NamedTextIOWrapper(err, encoding=self.charset, name="<stderr>", mode="w", write_through=True,
                                             errors="backslashreplace")
            yield out, err

    def _with_output(self, *args, **kwargs):
        result = _invoke(self, *args, **kwargs)
        result.output_bytes = self.output_bytes.getvalue()
        return result

    CliRunner.__init__, CliRunner.isolation, CliRunner.invoke = _stderr_apart, _both_copied, _with_output
    Result.output = property(lambda res: res.output_bytes.decode(res.runner.charset, "replace").replace("\r\n", "\n"))

if _release("scikit-learn") < (1, 7):
    # scikit-learn 1.6 fails to import its estimator checks (RuntimeError; 1.7 catches it) when array-api-compat,
    # which anndata brings, and SciPy 1.14+ are installed without SCIPY_ARRAY_API=1. Imported once here with the
    # variable set, after SciPy has read it at its own import, so SciPy runs as it would without it.
    import sklearn.utils._array_api  # noqa: F401  (imports SciPy)

    with pytest.MonkeyPatch.context() as _mp:
        _mp.setenv("SCIPY_ARRAY_API", "1")
        import sklearn.utils.estimator_checks  # noqa: F401


@pytest.fixture(autouse=True)
def _no_terminal_size(monkeypatch):
    """The runner's terminal does not shape the output under test: a COLUMNS exported by the shell that runs
    the suite (an 80-column terminal) set the width `info` and rich lay out tables at in a pipe, and text
    assertions failed there only. Tests that need a width set it themselves."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread_per_worker():
    """One BLAS thread in each process of the suite, as every command and fit_model default to: library calls
    that leave BLAS as they find it (explain, evaluate, the engine's own calls) otherwise ran 2 threads beside
    the other xdist worker on 2 cores, and a 4.6 s test took 32 s on a loaded machine. Modules that test what
    the library does with the caller's BLAS threads are marked ``blas_as_found`` and get the process's own."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(autouse=True)
def _blas_as_found(request):
    """The caller's BLAS threads as the process found them, for tests marked ``blas_as_found``."""
    if request.node.get_closest_marker("blas_as_found") is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=_FOUND_BLAS_THREADS, user_api="blas"):
        yield


def _blas_threads_found() -> int | None:
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), default=None)


_FOUND_BLAS_THREADS = _blas_threads_found()  # at import, before the session's cap


def pytest_configure(config):
    config.addinivalue_line("markers", "blas_as_found: the test runs with the process's own BLAS thread count, "
                                       "not the suite's one thread (tests of thread defaults)")


TINY = dict(hidden=[6], epochs=2, seed=0, folds=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny multiclass and binary model, each with the table it was trained on."""
    root = tmp_path_factory.mktemp("review3")
    out = {}
    for task in ("multiclass", "binary"):
        data = root / f"{task}.csv"
        make_table(task, n_patients=30).to_csv(data, index=False)
        model = root / f"{task}.mlp"
        model_io.save(train(str(data), TrainOptions(**TINY)).model, model)
        out[task] = (str(model), str(data))
    return out


# ── 4. another .h5ad matrix than the training one ────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    pytest.importorskip("anndata")
    from test_h5ad import make_adata

    tmp = tmp_path_factory.mktemp("cells")
    path = tmp / "cells.h5ad"
    make_adata(n_cells=120, n_genes=20).write_h5ad(path)
    models = {}
    for name, extra in (("counts", ["--layer", "counts"]), ("raw", ["--raw"]), ("X", [])):
        models[name] = str(tmp / f"{name}.mlp")
        res = run(["train", str(path), "--target", "cell_type", *extra, "--epochs", "2", "--hidden", "", "--folds", "1",
                   "-q", "-o", models[name]])
        assert res.exit_code == 0, res.output
    return str(path), models


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return _trained(tmp_path_factory, "none")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(60, 5)), columns=[f"g{j}" for j in range(5)])
    frame.insert(0, "label", np.where(frame["g0"] > 0, "a", "b"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(60)])
    frame.to_csv(tmp / "t.csv", index=False)
    res = run(["train", str(tmp / "t.csv"), "--folds", "1", "--epochs", "2", "--hidden", "4", "--no-group", "-q",
               "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    return tmp


@pytest.fixture(scope="session")  # five modules read it (a test writes only files of its own names there)
def site_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    train = _table(n_pat=150, batch_of=lambda p: f"S{p % 3 + 1}", seed=3)
    train.to_csv(tmp / "train.csv", index=False)
    res = run(["train", str(tmp / "train.csv"), "--hidden", "8", "--epochs", "20", "-q", "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    cohort = _table(n_pat=90, batch_of=lambda p: f"S{p % 3 + 1}", seed=3)  # the same centres, new samples
    cohort.iloc[:, :].to_csv(tmp / "same.csv", index=False)
    shifted = cohort.copy()
    far = shifted["batch"] == "S3"
    shifted.loc[far, ["g0", "g1", "g2", "g3"]] += 6.0
    shifted.to_csv(tmp / "shifted.csv", index=False)
    new_site = cohort.assign(batch="S9")
    new_site.to_csv(tmp / "new_site.csv", index=False)
    return tmp


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tune")
    _table(n_pat=60, genes=12, seed=4, sig=0.8).to_csv(tmp / "t.csv", index=False)
    return tmp / "t.csv"


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    """A 3-class model and its table."""
    d = tmp_path_factory.mktemp("three")
    df = make_table("multiclass", n_patients=60, seed=3)
    df.to_csv(d / "train.csv", index=False)
    assert run(["train", str(d / "train.csv"), "-o", str(d / "m.mlp"), *FAST]).exit_code == 0
    return d, df


@pytest.fixture(scope="module")
def histories(tmp_path_factory):
    """An L-BFGS and an Adam run of one small table: {lbfgs,adam}.mlp and their --history {lbfgs,adam}.csv."""
    tmp = tmp_path_factory.mktemp("histories")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=120) > 0, "a", "b")
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(8)])
    frame.insert(0, "label", y)
    frame.to_csv(tmp / "t.csv", index=False)
    for name, extra in (("lbfgs", ["--optimizer", "lbfgs"]), ("adam", ["--optimizer", "adam", "--epochs", "12"])):
        res = run(["train", str(tmp / "t.csv"), *extra, "--folds", "1", "--no-group", "--hidden", "4", "-q",
                   "--history", str(tmp / f"{name}.csv"), "-o", str(tmp / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    return tmp


@pytest.fixture(scope="session")
def risk_model(tmp_path_factory):
    """A binary model (positive class 'event', one hidden layer of 16) trained on ``risk_cohort(500, 1)``: the path
    of its file, for the tests of evaluate's clinical figures and of recalibrate. Trained once per process of the
    suite (four modules only read it)."""
    tmp = tmp_path_factory.mktemp("risk")
    risk_cohort(500, 1).to_csv(tmp / "dev.csv", index=False)
    res = run(["train", str(tmp / "dev.csv"), "--id", "pid", "--positive", "event", "--hidden", "16", "-q",
               "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    return str(tmp / "m.mlp")
