"""What `train` does outside its epochs runs partly on a second core (``background.beside``) and reuses work
already done; none of it may change a result."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlpcli import background, data, model_io, parallel
from mlpcli.config import TrainOptions
from mlpcli.errors import DataError
from mlpcli.model_selection.fitting import fit_run
from mlpcli.model_selection.splits import holdout
from mlpcli.pipeline import train_dataset
from mlpcli.centred_rows import CentredRows


def _counts_table(n: int, p: int, seed: int = 0) -> pd.DataFrame:
    """Skewed non-negative values (log1p applies), 3 classes shifting 10 features each, 2 samples a patient."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.lognormal(1.0, 1.0, size=(n, p)).astype(np.float32)
    for c in range(3):
        X[y == c, 10 * c:10 * c + 10] *= 3.0
    frame = pd.DataFrame(X, columns=[f"g{j:04d}" for j in range(p)])
    frame.insert(0, "label", np.array(["a", "b", "c"])[y])
    frame.insert(0, "patient_id", [f"P{i // 2:05d}" for i in range(n)])
    return frame


def _dataset(frame: pd.DataFrame) -> data.Dataset:
    roles, _ = data.resolve_roles(frame.columns, target=["label"])
    return data.Dataset.from_frame(frame, roles)


def _toy(n: int, p: int, seed: int = 0, column: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (n, p) standard normal float32 and y, whether feature ``column`` is positive."""
    X = np.random.default_rng(seed).standard_normal((n, p)).astype(np.float32)
    return X, (X[:, column] > 0).astype(np.int64)


@pytest.fixture()
def spare(monkeypatch):
    """Set whether a second core is there (``background.spare_core``) for the rest of the test."""
    def set_to(value: bool) -> None:
        monkeypatch.setattr(background, "spare_core", lambda: value)
    return set_to


def test_beside_gives_the_result_or_raises_in_the_callers_thread(spare):
    for threaded in (True, False):
        spare(threaded)
        assert background.beside(lambda a, b: a + b, 2, 3)() == 5
        failing = background.beside(lambda: {}["missing"])
        with pytest.raises(KeyError):
            failing()


def test_deferred_work_runs_where_it_is_started_or_when_its_result_is_asked(spare):
    """``background.Deferred``: started, it runs beside the caller when a core is spare (here and now when none is);
    never started, it runs when its result is asked for, in the caller's thread; an error is raised there; the
    work runs once however often it is started or asked."""
    import threading

    for threaded in (True, False):
        spare(threaded)
        ran: list[str] = []

        def work(a: int, b: int) -> int:
            ran.append(threading.current_thread().name)
            return a + b

        task = background.Deferred(work, 2, 3)
        assert not task.started and ran == []
        task.start()
        task.start()
        assert task.started and task() == 5 and task() == 5
        assert ran == ["mlpcli-beside" if threaded else threading.current_thread().name]
        lazy = background.Deferred(work, 1, 1)
        assert lazy() == 2 and ran[-1] == threading.current_thread().name and len(ran) == 2
        failing = background.Deferred(lambda: {}["missing"])
        failing.start()
        with pytest.raises(KeyError):
            failing()


@pytest.mark.parametrize("folds", [1, 3])
def test_train_checks_the_whole_table_once_its_networks_are_trained(spare, monkeypatch, folds):
    """The provenance checksum and the table-wide checks, needed only for the model file and the summary, start
    on the spare core once training here is over (not beside the split and the preprocessing, which need that
    core sooner), and their results are the model's as before."""
    from mlpcli.data import missingness

    spare(True)
    events: list[str] = []
    checksum, binary = data.Dataset.checksum, missingness.binary_among_continuous
    monkeypatch.setattr(data.Dataset, "checksum", lambda self: events.append("checksum") or checksum(self))
    monkeypatch.setattr(missingness, "binary_among_continuous", lambda ds: events.append("binary") or binary(ds))
    frame = _counts_table(240, 40)
    frame["g0039"] = (frame["g0039"] > 3).astype(float)  # a 0/1 column: the check's warning
    ds = _dataset(frame)
    options = TrainOptions(target=["label"], folds=folds, epochs=3, hidden=[8])
    outcome = train_dataset(ds, options, progress=lambda row: events.append("epoch") if "epoch" in row else None,
                            source="table", plan=parallel.Plan())  # (the members trained here, one after the other)
    assert events.count("epoch") == 3 * folds
    last_epoch = len(events) - 1 - events[::-1].index("epoch")
    assert sorted(events[last_epoch + 1:]) == ["binary", "checksum"], events
    assert outcome.model.provenance["data_sha256"] == checksum(ds)
    assert any("'g0039'" in w and "only 0 and 1" in w for w in outcome.warnings)


@pytest.mark.parametrize("config", [dict(log1p=True), dict(log1p=True, scaling="standard"),
                                    dict(log1p=True, top_var=700, impute="median")])
def test_preprocessing_on_a_second_core_gives_the_same_matrix_and_fit(spare, config):
    """Several column blocks (2,000 rows x 1,500 features: blocks of 524 columns) scaled in threads while
    the next are read: the transformed matrix and every fitted array are those of one thread, bit for bit."""
    X = _counts_table(2000, 1500).iloc[:, 2:].to_numpy(copy=True)  # written below: pandas 3 gives read-only views
    if config.get("impute"):
        X[np.random.default_rng(1).random(X.shape) < 0.01] = np.nan
    names = [f"g{j}" for j in range(X.shape[1])]
    results = []
    for threaded in (False, True):
        spare(threaded)
        pre = data.Preprocessor(data.PreprocessConfig(**config))
        Z = pre.fit_transform(X, names, dtype=np.float32, order="C")
        results.append((Z, pre.state()[1]))
    (Z0, s0), (Z1, s1) = results
    assert Z0.tobytes() == Z1.tobytes()
    assert all(s0[k].tobytes() == s1[k].tobytes() for k in s0)


@pytest.mark.parametrize("scaling", ["robust", "standard"])
def test_transform_on_a_second_core_gives_the_same_rows_and_errors(spare, scaling):
    """Many rows (blocks of 699 at 1,500 features) transformed in threads: the same matrix, and a user's error
    in later blocks (a negative value under log1p, a missing value) is the same one-line error, counted over
    every row."""
    X = _counts_table(3000, 1500).iloc[:, 2:].to_numpy().astype(np.float64)
    pre = data.Preprocessor(data.PreprocessConfig(log1p=True, scaling=scaling)).fit(X[:2000], [f"g{j}" for j in
                                                                                              range(1500)])
    outputs, errors = [], []
    for threaded in (False, True):
        spare(threaded)
        outputs.append(pre.transform(X, dtype=np.float32, order="C"))
        messages = []
        for row, value in ((2500, -1.0), (2100, np.nan)):
            bad = X.copy()
            bad[row, 7], bad[row - 1500, 9] = value, value
            with pytest.raises(DataError) as caught:
                pre.transform(bad, dtype=np.float32, order="C")
            messages.append(str(caught.value))
        errors.append(messages)
    assert outputs[0].tobytes() == outputs[1].tobytes()
    assert errors[0] == errors[1]
    assert "log1p needs non-negative input, but 2 feature columns" in errors[0][0]
    assert "missing values in 2 feature columns" in errors[0][1]


def test_train_on_a_second_core_writes_the_same_model_file(spare, tmp_path):
    """The whole of `train` (checksum, preprocessing, the OOD bases on more than 240 rows and features, so the
    randomised SVD) with and without a second core: the same model file, byte for byte."""
    ds = _dataset(_counts_table(1200, 600))
    options = TrainOptions(target=["label"], folds=1, epochs=2, hidden=[16])
    files = []
    for threaded in (False, True):
        spare(threaded)
        outcome = train_dataset(ds, options, source="table")
        path = tmp_path / f"{threaded}.mlp"
        model_io.save(outcome.model, path)
        files.append(path.read_bytes())
    assert files[0] == files[1]
    with zipfile.ZipFile(io.BytesIO(files[0])) as zf:
        assert len(np.load(io.BytesIO(zf.read("weights.npz"))).files) > 0
    assert model_io.load(tmp_path / "True.mlp").ood.components.shape[0] > 1


@pytest.mark.parametrize("sparse", [False, True])
def test_validation_rows_scored_from_their_preprocessed_matrix_equal_the_raw_rows(sparse):
    """A run scores its validation rows from the matrix training validated on (dense, or CSR and the centring
    offset for sparse input): the same outputs, bit for bit, as preprocessing the raw rows again."""
    frame = _counts_table(400, 60)
    if sparse:
        values = frame.iloc[:, 2:].to_numpy(copy=True)
        values[values < np.quantile(values, 0.6)] = 0.0
        frame.iloc[:, 2:] = values
    ds = _dataset(frame)
    if sparse:
        ds = dataclasses.replace(ds, X=sp.csr_matrix(np.asarray(ds.X)))
    tr, va, _ = holdout(ds, 0.25, 0)
    run = fit_run(ds.subset(tr), ds.subset(va), TrainOptions(target=["label"], epochs=2, hidden=[8], log1p=True))
    assert isinstance(run.X_val, CentredRows) == sparse  # CSR and the centring offset
    member = model_io.Member(run.network, run.preprocessor, run.target_scaling)
    raw = member.raw_output(ds.subset(va).X)
    assert raw.tobytes() == member.raw_output(run.X_val, preprocessed=True).tobytes()
    assert member.raw_output(run.X_val, preprocessed=True, rows=7).tobytes() == member.raw_output(
        ds.subset(va).X, rows=7).tobytes()


def test_training_updates_on_the_spare_core_give_the_same_network(spare, monkeypatch):
    """With a core to spare, the optimizer's updates run in two threads (``training.update_threads``); the
    trained weights and history are those of one thread, bit for bit."""
    from mlpcli import training
    from mlpcli.engine import MLP, losses, optim

    monkeypatch.setattr(optim, "MIN_SHARE", 1 << 14)  # shares of a small network's 38,000 weights
    monkeypatch.setattr(optim, "CHUNK_BYTES", 1 << 14)  # in blocks of 4,096
    X, y = _toy(300, 150)
    runs = []
    for threaded in (False, True):
        spare(threaded)
        assert training.update_threads() == (2 if threaded else 1)
        net = MLP(150, [256], 2, seed=0, dtype="float32")
        config = training.FitConfig(epochs=4, batch_size=32, lr=1e-3, l2=1e-3, optimizer="adam")
        result = training.fit(net, losses.get("ce"), X[:240], y[:240], X[240:], y[240:], config)
        runs.append((net.flat_params.tobytes(), [r["val_loss"] for r in result.history]))
    assert runs[0] == runs[1]


# ── an epoch's validation passes beside the next epoch ─────────────────────────────────────────────────────


def _fit_twice(spare, make_net, config, X, y, metric=None, callback_factory=None):
    """``training.fit`` without and with a spare core: [(weights bytes, history without seconds, result,
    callback rows, threads the metric ran in)] for each."""
    from mlpcli import training
    from mlpcli.engine import losses
    import threading

    out = []
    for threaded in (False, True):
        spare(threaded)
        threads, rows = set(), []

        def counted(outputs, target):
            threads.add(threading.current_thread().name)
            return metric(outputs, target)

        callback = callback_factory(rows) if callback_factory else rows.append
        net = make_net()
        n = int(0.8 * len(y))
        result = training.fit(net, losses.get("ce"), X[:n], y[:n], X[n:], y[n:], config,
                              metric=counted if metric else None, callback=callback)
        history = [{k: v for k, v in r.items() if k != "seconds"} for r in result.history]
        out.append((net.flat_params.tobytes(), history, result, [dict(r) for r in rows], threads))
    return out


def _accuracy(outputs, target):
    return float(np.mean(outputs.argmax(axis=1) == target))


@pytest.mark.parametrize("case", ["early stop", "epoch cap", "batchnorm float64", "no patience"])
def test_epoch_passes_beside_the_next_epoch_change_nothing(spare, case):
    """With a core to spare, an epoch's validation and inference-mode training passes run in another thread
    on a copy of its weights while the next epoch trains (the metric is called there); the history, the
    stopping epoch, the rows the callback gets and the restored weights are those of one thread, bit for bit,
    and no epoch is trained past the stop."""
    from mlpcli import training
    from mlpcli.engine import MLP

    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 60)).astype(np.float32)
    y = (X[:, 0] + 0.8 * rng.standard_normal(400) > 0).astype(np.int64)  # noisy: validation loss turns up
    dtype = "float64" if case == "batchnorm float64" else "float32"
    patience = {"early stop": 3, "epoch cap": 50, "batchnorm float64": 4, "no patience": None}[case]
    epochs = 12 if case in ("epoch cap", "no patience") else 60
    config = training.FitConfig(epochs=epochs, batch_size=32, lr=3e-3, patience=patience, optimizer="adam")
    make = lambda: MLP(60, [64, 32], 2, seed=3, dtype=dtype, batchnorm=case == "batchnorm float64")  # noqa: E731
    (w0, h0, r0, rows0, threads0), (w1, h1, r1, rows1, threads1) = _fit_twice(spare, make, config, X, y, _accuracy)
    assert w0 == w1 and h0 == h1
    assert (r0.best_epoch, r0.epochs_run, r0.stopped_early) == (r1.best_epoch, r1.epochs_run, r1.stopped_early)
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in rows0] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in rows1]
    assert all(r["seconds"] > 0 for r in r1.history)
    if case in ("early stop", "batchnorm float64"):
        assert r0.stopped_early and r0.epochs_run < epochs
    else:
        assert r0.epochs_run == epochs
    assert threads0 == {"MainThread"}
    assert threads1 - {"MainThread"}, "no pass ran beside the training"


def test_an_interrupt_keeps_the_epochs_measured_beside(spare):
    """Ctrl-C (here raised by the callback on epoch 5's row) ends training with the same epochs recorded and
    the same weights restored as with one thread."""
    from mlpcli import training
    from mlpcli.engine import MLP

    X, y = _toy(300, 40, seed=2, column=1)

    def interrupt_at_5(rows):
        def callback(row):
            rows.append(row)
            if row["epoch"] == 5:
                raise KeyboardInterrupt
        return callback

    config = training.FitConfig(epochs=30, batch_size=32, lr=1e-3, patience=20, optimizer="adam")
    runs = _fit_twice(spare, lambda: MLP(40, [32], 2, seed=0, dtype="float32"), config, X, y,
                      callback_factory=interrupt_at_5)
    (w0, h0, r0, _, _), (w1, h1, r1, _, _) = runs
    assert r0.interrupted and r1.interrupted
    assert [r["epoch"] for r in h0] == [r["epoch"] for r in h1] == [1, 2, 3, 4, 5]
    assert h0 == h1 and w0 == w1 and r0.best_epoch == r1.best_epoch


def test_a_run_that_diverges_fails_alike_with_its_passes_beside(spare):
    """A blow-up seen in a pass run beside the next epoch stops training with the same error, naming the same
    epoch, as when the passes run in line."""
    from mlpcli import training
    from mlpcli.engine import MLP, losses
    from mlpcli.errors import TrainingError

    X, y = _toy(200, 30)
    messages = []
    for threaded in (False, True):
        spare(threaded)
        config = training.FitConfig(epochs=40, batch_size=32, lr=1e6, optimizer="adam", patience=30)
        with pytest.raises(TrainingError, match=r"training diverged at epoch \d+") as caught:
            training.fit(MLP(30, [16], 2, seed=0, dtype="float32"), losses.get("ce"), X[:160], y[:160], X[160:],
                         y[160:], config)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


# ── scikit-learn imported beside the read ──────────────────────────────────────────────────────────────────


def test_import_beside_raises_its_import_error_in_the_caller():
    wait = background.import_beside("json", "mlpcli_no_such_module")
    with pytest.raises(ModuleNotFoundError, match="mlpcli_no_such_module"):
        wait()


def test_scikit_learn_is_imported_beside_the_read_where_training_will_use_it(tmp_path):
    """Judged from the options and the header before the read: a table without patients (scikit-learn's splitters),
    --no-group, balanced class weights, a regression's single hold-out use scikit-learn; a model of a table with
    patients (given or found by name) uses none of it. A pipe's header cannot be read ahead: imported, as before."""
    from mlpcli.pipeline import needs_scikit_learn

    frame = _counts_table(20, 6)
    grouped, plain = tmp_path / "g.csv", tmp_path / "p.parquet"
    frame.to_csv(grouped, index=False)
    frame.drop(columns="patient_id").to_parquet(plain, index=False)
    frame.rename(columns={"patient_id": "donor_id"}).to_parquet(tmp_path / "d.parquet", index=False)
    label = ["label"]
    assert not needs_scikit_learn(str(grouped), TrainOptions(target=label))
    assert not needs_scikit_learn(str(tmp_path / "d.parquet"), TrainOptions(target=label))  # CELLxGENE's donor_id
    assert not needs_scikit_learn(str(plain), TrainOptions(target=label, group="g0000"))
    assert not needs_scikit_learn(str(grouped), TrainOptions(target=label, task="regression"))  # grouped folds
    for path, options in ((plain, {}), (grouped, {"no_group": True}), (grouped, {"class_weight": "balanced"}),
                          (grouped, {"task": "regression", "folds": 1}), (grouped, {"drop": ["patient_id"]})):
        assert needs_scikit_learn(str(path), TrainOptions(target=label, **options)), (path.name, options)
    assert needs_scikit_learn("-", TrainOptions(target=label))


def test_a_classifier_of_a_table_with_patients_reads_and_trains_without_scikit_learn(tmp_path):
    """In a fresh process: ``pipeline.load_dataset`` of a table with patients returns without scikit-learn, and the
    whole of `train`'s default run after it — cross-fitted members on grouped folds, the portfolio, calibration, the
    metrics and their intervals — imports no scikit-learn and none of scipy's stats and optimize modules (1-2 s of a
    small run's start), also with a batch column, whose confounding with the classes is a chi-square test
    (``distributions``: scipy.stats cost 0.7-0.8 s of the README's main job for it). A table read for a run without
    patients (--no-group) has training's scikit-learn modules imported beside the read. Either way the dataset is
    ``data.load_dataset``'s."""
    import subprocess
    import sys

    frame = _counts_table(60, 12)
    frame.insert(1, "batch", np.where(np.arange(60) % 4 < 2, "B1", "B2"))  # each patient in one batch
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    code = ("import sys, numpy as np\n"
            "from mlpcli import data, pipeline\n"
            "from mlpcli.config import TrainOptions\n"
            "options = TrainOptions(target=['label'], epochs=3, no_group=sys.argv[2] == 'no')\n"
            "ds, notes = pipeline.load_dataset(sys.argv[1], options)\n"
            "again, _ = data.load_dataset(sys.argv[1], **options.roles())\n"
            "assert np.array_equal(ds.X, again.X) and np.array_equal(ds.y, again.y)\n"
            "print(all(m in sys.modules for m in pipeline.TRAINING_IMPORTS))\n"
            "if sys.argv[2] != 'no':\n"
            "    pipeline.train_dataset(ds, options)\n"
            "    print('sklearn' in sys.modules, 'scipy.stats' in sys.modules or 'scipy.optimize' in sys.modules)\n")
    for path, no_group, said in (("t.csv", "", ["False", "False", "False"]), ("t.parquet", "no", ["True"])):
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path / path), no_group], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0 and done.stdout.split() == said, (path, done.stdout, done.stderr)


def test_the_command_line_hands_the_interpreters_teardown_frozen_objects_and_complete_files(tmp_path):
    """``mlpcli`` freezes the objects alive at exit after every other exit handler (so the teardown's
    collections skip them), and what it wrote is whole: the model loads, the out-of-fold file has a row per
    sample."""
    import subprocess
    import sys

    frame = _counts_table(60, 20)
    table, model, oof = tmp_path / "t.csv", tmp_path / "m.mlp", tmp_path / "oof.csv"
    frame.to_csv(table, index=False)
    code = ("import atexit, gc, sys\n"
            # registered before the command's own handler, so it runs after it
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, file=sys.stderr))\n"
            "from mlpcli.cli import main\n"
            f"main(['train', {str(table)!r}, '--target', 'label', '--folds', '1', '--epochs', '3', '-q',\n"
            f"      '-o', {str(model)!r}, '--oof', {str(oof)!r}])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "frozen True"
    assert model_io.load(str(model)).classes == ["a", "b", "c"]
    assert len(pd.read_csv(oof)) == 12  # the validation fifth of the 60 rows
