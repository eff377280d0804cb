"""Found by the twenty-sixth session's reviews by use: a short write to an unbuffered standard output lost the rest of
`predict -o -`'s table (exit 0); a malformed --class-weight was an error only after the table was read, exit 1;
`diagnose --learning-curve` counted a table's missing values in its first size's training rows only."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli.cli import cli
from mlpcli.fileio import WholeWrites, write_whole

from cli_helpers import write_tenx

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_data",
                      "tumour_subtypes.csv.gz")


class Stingy(io.RawIOBase):
    """A raw stream that takes at most ``most`` bytes a write (0: none at all)."""

    def __init__(self, most: int):
        super().__init__()
        self.most, self.data, self.calls = most, bytearray(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.calls += 1
        taken = bytes(memoryview(b).cast("B")[:self.most])
        self.data += taken
        return len(taken)


def test_write_whole_writes_every_byte_of_short_writes():
    raw = Stingy(7)
    data = bytes(range(256)) * 3
    assert write_whole(raw, data) == len(data)
    assert bytes(raw.data) == data and raw.calls == -(-len(data) // 7)


def test_write_whole_fails_when_the_stream_takes_nothing():
    with pytest.raises(OSError):
        write_whole(Stingy(0), b"abc")


def test_text_over_whole_writes_loses_nothing():
    """The console script's unbuffered stdout: text through WholeWrites over a raw stream that takes 5 bytes at a
    time arrives whole (a TextIOWrapper over the raw stream itself drops all but the first 5 of each write)."""
    raw = Stingy(5)
    text = io.TextIOWrapper(WholeWrites(raw), encoding="utf-8", newline="\n", write_through=True)
    text.write("sample_id,label\n" * 50)
    text.flush()
    assert raw.data.decode() == "sample_id,label\n" * 50
    bare = Stingy(5)
    plain = io.TextIOWrapper(bare, encoding="utf-8", newline="\n", write_through=True)
    plain.write("sample_id,label\n" * 50)
    plain.flush()
    assert len(bare.data) < 50 * 16  # what the fix is for


def _trained(tmp_path_factory, hidden: str) -> str:
    """A one-network model of the sample data, two epochs, hidden layers ``hidden`` ("none": softmax regression)."""
    path = tmp_path_factory.mktemp(f"hidden_{hidden}") / "m.mlp"
    res = CliRunner().invoke(cli, ["train", SAMPLE, "--folds", "1", "--epochs", "2", "--hidden", hidden, "-q",
                                   "-o", str(path)])
    assert res.exit_code == 0, res.output
    return str(path)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return _trained(tmp_path_factory, "none")


def _file_size_limit(n_bytes: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))
    return limit


@pytest.mark.parametrize("unbuffered", [True, False])
def test_predict_to_stdout_past_a_file_size_limit_is_an_error_not_a_cut_table(tmp_path, model, unbuffered):
    """`ulimit -f 8; PYTHONUNBUFFERED=1 mlpcli predict m.mlp t.csv > out.csv` wrote 8 KiB of the table and exited 0:
    the one write of the table was short and the rest was dropped. Now the error names standard output, exit 1,
    buffered or not."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    out = tmp_path / "out.csv"
    with open(out, "wb") as fh:
        res = subprocess.run([sys.executable, "-m", "mlpcli", "predict", model, SAMPLE, "-q"], stdout=fh,
                             stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_file_size_limit(8192),
                             timeout=300)
    assert res.returncode == 1, res.stderr
    assert "cannot write standard output: file too large" in res.stderr and "Traceback" not in res.stderr
    assert out.stat().st_size == 8192  # what the limit let through; the error says the rest is missing


def test_unbuffered_predict_to_stdout_is_the_buffered_output(tmp_path, model):
    outs = []
    for unbuffered in (True, False):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        if unbuffered:
            env["PYTHONUNBUFFERED"] = "1"
        res = subprocess.run([sys.executable, "-m", "mlpcli", "predict", model, SAMPLE, "-q"], capture_output=True,
                             env=env, timeout=300)
        assert res.returncode == 0, res.stderr
        outs.append(res.stdout)
    assert outs[0] == outs[1] and outs[0].count(b"\n") == 612


@pytest.mark.parametrize("spec, words", [
    ("A=x", "--class-weight for class 'A' must be a positive number, got 'x'"),
    ("Basal=-1", "--class-weight for class 'Basal' must be a positive number, got '-1'"),
    ("garbage", "--class-weight expects 'balanced', 'none' or LABEL=WEIGHT pairs"),
    ("=3", "--class-weight expects"),
    ("Basal=1,Basal=2", "--class-weight gives class 'Basal' twice"),
])
@pytest.mark.parametrize("command", ["train", "cv"])
def test_a_malformed_class_weight_is_a_usage_error_before_the_data_is_read(tmp_path, spec, words, command):
    """Its form needs no data: exit 2 before the table is opened (a table that does not exist shows that the
    check came first)."""
    res = CliRunner().invoke(cli, [command, str(tmp_path / "absent.csv"), "--class-weight", spec])
    assert res.exit_code == 2, res.output
    assert words in res.output and "absent.csv" not in res.output


def test_an_unknown_class_in_class_weight_still_needs_the_data(tmp_path):
    res = CliRunner().invoke(cli, ["train", SAMPLE, "--class-weight", "Z=2", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1
    assert "--class-weight names unknown class 'Z'; valid labels: 'Basal', 'HER2', 'LumA', 'LumB'" in res.output
    assert not (tmp_path / "m.mlp").exists()


def test_a_malformed_class_weight_in_a_tune_grid_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(cli, ["tune", str(tmp_path / "absent.csv"), "--grid", "class-weight=none|A=-1"])
    assert res.exit_code == 2, res.output
    assert "must be a positive number, got '-1'" in res.output and "does not fit the data" not in res.output


def test_the_learning_curve_counts_missing_values_in_the_whole_table_before_any_fit(tmp_path):
    """It named 1 missing value (those of the smallest size's training rows) where the table holds 20, after the
    split and the first fits had started; now the count of `train` and `cv`, first."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"g{j}" for j in range(6)])
    frame.loc[rng.choice(n, 20, replace=False), "g3"] = np.nan
    frame.insert(0, "label", np.where(frame["g0"] > 0, "a", "b"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(n)])
    path = tmp_path / "missing.csv"
    frame.to_csv(path, index=False)
    messages = []
    for args in (["train", str(path), "--folds", "1", "-o", str(tmp_path / "m.mlp")], ["cv", str(path)],
                 ["diagnose", "--learning-curve", str(path)]):
        res = CliRunner().invoke(cli, [*args, "-q"])
        assert res.exit_code == 1, res.output
        messages.append(res.output.strip().splitlines()[-1])
    assert all("'g3' (20)" in m for m in messages), messages


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
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 143, (res.returncode, res.stderr)
    assert res.stderr.strip().endswith("Interrupted by SIGTERM.")


def test_cv_says_when_a_fold_models_sets_hold_every_class_by_the_count_alone(tmp_path):
    """`cv --leave-batch-out` on 12 donors in 3 runs: each fold model has 8 held-out donors, fewer than the 9 that
    sets at 0.9 need, so every set held every class (coverage 1.000, size 4) with no word why; the OOD n/a was
    explained. Both are now, in the table's notes and in --json."""
    rng = np.random.default_rng(0)
    rows = []
    for d in range(12):
        for c in range(20):
            k = int(rng.integers(4))
            rows.append({"sample_id": f"d{d}c{c}", "patient_id": f"D{d}", "batch": f"run{d % 3}", "label": f"t{k}",
                         **{f"g{j}": rng.normal(1.0 * (j == k)) for j in range(6)}})
    path = tmp_path / "lbo.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    res = CliRunner().invoke(cli, ["cv", str(path), "--leave-batch-out", "--epochs", "3", "-q"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert ("cov@ by the count alone in 3 folds (left out of the mean): fold 1 (held-out batch run0): every prediction "
            "set at 0.9 holds every class: the level needs 9 held-out patients and the model's conformal calibration "
            "has 8") in text
    res = CliRunner().invoke(cli, ["cv", str(path), "--leave-batch-out", "--epochs", "3", "-q", "--json"])
    folds = json.loads(res.stdout)["per_fold"]
    assert all(f["trust"]["coverage"] == 1.0 and f["trust"]["set_notes"] for f in folds)


def test_diagnose_names_a_compressed_model_and_reads_a_history_without_a_suffix(tmp_path, model):
    """`diagnose m.mlp.gz` said "unsupported table format" (the file is a model); a history table named without a
    suffix was refused though the same bytes on standard input were read."""
    import gzip
    import shutil

    packed = tmp_path / "m.mlp.gz"
    with open(model, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    res = CliRunner().invoke(cli, ["diagnose", str(packed)])
    assert res.exit_code == 1
    assert "is not a readable mlpcli model file: it is a gzip-compressed model file" in res.output
    history = tmp_path / "history"
    res = CliRunner().invoke(cli, ["train", SAMPLE, "--folds", "1", "--epochs", "4", "--hidden", "none", "-q",
                                   "-o", str(tmp_path / "h.mlp"), "--history", str(tmp_path / "h.csv")])
    assert res.exit_code == 0, res.output
    shutil.copy(tmp_path / "h.csv", history)
    by_name = CliRunner().invoke(cli, ["diagnose", str(history), "--json"])
    by_stdin = CliRunner().invoke(cli, ["diagnose", "-", "--json"], input=(tmp_path / "h.csv").read_bytes())
    assert by_name.exit_code == 0 and by_stdin.exit_code == 0, (by_name.output, by_stdin.output)
    assert json.loads(by_name.stdout)["label"] == json.loads(by_stdin.stdout)["label"]
    model_copy = tmp_path / "modelfile"  # a model without a suffix is still a model: its bytes say so
    shutil.copy(tmp_path / "h.mlp", model_copy)
    res = CliRunner().invoke(cli, ["diagnose", str(model_copy), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["label"]


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


def test_an_option_that_does_not_apply_to_the_input_is_a_usage_error_whatever_the_input(tmp_path, model):
    """--layer on a CSV was exit 2, on a 10x directory exit 1; --features-in-rows on an .h5ad exit 1 in train and 2
    in predict; --feature-types on a table exit 1. Each is a usage error, exit 2, named."""
    import anndata as ad
    import scipy.sparse as sp

    genes = [f"G{j}" for j in range(5)]
    write_tenx(tmp_path / "tenx", genes, cells=8)
    sheet = tmp_path / "sheet.csv"
    pd.DataFrame({"sample_id": [f"AAAC{i}-1" for i in range(8)], "label": ["a", "b"] * 4}).to_csv(sheet, index=False)
    cells = ad.AnnData(sp.random(8, 5, density=0.5, format="csr", random_state=0, dtype=np.float32),
                       obs=pd.DataFrame({"label": ["a", "b"] * 4}, index=[f"c{i}" for i in range(8)]),
                       var=pd.DataFrame(index=genes))
    cells.write_h5ad(tmp_path / "cells.h5ad")
    table = tmp_path / "t.csv"
    pd.DataFrame({"G0": range(8), "G1": range(8), "label": ["a", "b"] * 4}).to_csv(table, index=False)
    out = ["-o", str(tmp_path / "x.mlp")]
    cases = [
        (["train", str(tmp_path / "tenx"), "--samples", str(sheet), "--layer", "counts", *out], "--layer"),
        (["train", str(tmp_path / "tenx"), "--samples", str(sheet), "--raw", *out], "--raw"),
        (["train", str(tmp_path / "tenx"), "--samples", str(sheet), "--features-in-rows", *out], "--features-in-rows"),
        (["train", str(table), "--feature-types", "Gene Expression", *out], "--feature-types"),
        (["train", str(tmp_path / "cells.h5ad"), "--features-in-rows", *out], "--features-in-rows"),
        (["predict", model, str(tmp_path / "cells.h5ad"), "--features-in-rows", "-o", str(tmp_path / "p.csv")],
         "--features-in-rows"),
    ]
    for args, flag in cases:
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2, (args, res.output)
        assert flag in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.mlp").exists() and not (tmp_path / "p.csv").exists()


def test_a_dropped_patient_column_is_said_so_not_missing(tmp_path):
    """`--drop patient_id` warned "no 'patient_id' or 'donor_id' column" on a table that has one."""
    res = CliRunner().invoke(cli, ["train", SAMPLE, "--drop", "patient_id", "--folds", "1", "--epochs", "2",
                                   "--hidden", "none", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "'patient_id' dropped (--drop): samples are treated as independent" in text
    assert "no 'patient_id' or 'donor_id' column" not in text


def test_an_interrupted_ensembles_split_is_what_its_kept_members_held_out(tmp_path, monkeypatch):
    """Interrupted after its first member, the model's split (`train --json`'s `split`, `info`) said every sample was
    held out (the planned folds' 611 of 611) where the kept member held out one fold, as the interval, the summary
    and --oof said."""
    from mlpcli import cli as cli_mod, model_io

    original = cli_mod._Progress.__call__

    def interrupt(self, row):  # in the first member's third epoch
        original(self, row)
        if row.get("epoch") == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_mod._Progress, "__call__", interrupt)
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


@pytest.fixture(scope="module")
def hidden_model(tmp_path_factory):
    return _trained(tmp_path_factory, "32")


def test_permutation_importance_of_a_shuffle_that_changes_nothing_is_exactly_zero(hidden_model):
    """One sample: every shuffle is the identity, yet every gene scored +2.5e-08 in every shuffle (the unshuffled
    outputs came from a product of another size, which rounds float32 otherwise). A gene whose weights are zero
    changes nothing either: its drops are rounding at most, not a drop in every shuffle."""
    from mlpcli import model_io
    from mlpcli.explain import permutation_importance

    m = model_io.load(hidden_model)
    frame = pd.read_csv(SAMPLE)
    X = frame[m.feature_names].iloc[:1]
    drops, _ = permutation_importance(m, X, frame["label"].iloc[:1], repeats=5, seed=0)
    scored = np.isfinite(drops)  # the sample's class (the others have no sample: NaN)
    assert scored.any() and np.all(drops[scored] == 0)
    W = m.members[0].network.parameters()["dense0.W"]
    W[:, 7] = 0  # the network's 8th input no longer reaches it
    gene = m.members[0].preprocessor.kept_features[7]
    X = frame[m.feature_names].iloc[:200]
    drops, _ = permutation_importance(m, X, frame["label"].iloc[:200], repeats=5, seed=0)
    j = m.feature_names.index(gene)
    assert np.all(np.abs(drops[:, j]) < 1e-6)
    assert not np.all(drops[:, j] > 0)


def test_gradcheck_under_a_tolerance_it_cannot_reach_shows_the_real_error(tmp_path):
    """`gradcheck --only loss:ce --tol 1e-14` passed every entry as round-off and printed "max rel. error 0.0e+00";
    it now prints the real error and says why the tolerance could not bind."""
    from mlpcli.engine.gradcheck import check_function

    x = np.array([0.3, -1.2, 2.5])
    result = check_function("cube", lambda: float(np.sum(x ** 3)), {"x": x}, {"x": 3 * x ** 2}, 1e-6, 1e-14, 1e-8)
    assert result.passed and result.max_rel_error > 0
    assert "every entry missed tol 1.0e-14" in result.note and "cannot bind" in result.note
    res = CliRunner().invoke(cli, ["gradcheck", "--only", "loss:ce", "--tol", "1e-14", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["results"]
    waived = [r for r in rows if "cannot bind" in r["note"]]
    assert waived and all(r["max_rel_error"] > 0 for r in waived)


def test_explain_names_the_label_columns_a_multilabel_table_lacks(tmp_path):
    """A multi-label model on a table with 2 of its 3 label columns: integrated gradients dropped the two
    without a word and permutation said the table had no target column; both now name the missing one."""
    rng = np.random.default_rng(0)
    n = 200
    X = rng.normal(size=(n, 6))
    frame = pd.DataFrame(X, columns=[f"G{j}" for j in range(6)])
    for k in range(3):
        frame[f"L{k}"] = (X[:, k] > 0).astype(int)
    frame.insert(0, "sample_id", [f"s{i}" for i in range(n)])
    frame.to_csv(tmp_path / "ml.csv", index=False)
    res = CliRunner().invoke(cli, ["train", str(tmp_path / "ml.csv"), "--target", "L0,L1,L2", "--task", "multilabel",
                                   "--folds", "1", "--epochs", "3", "-q", "-o", str(tmp_path / "ml.mlp")])
    assert res.exit_code == 0, res.output
    frame.drop(columns=["L2"]).to_csv(tmp_path / "part.csv", index=False)
    for method in ("ig", "permutation"):
        res = CliRunner().invoke(cli, ["explain", str(tmp_path / "ml.mlp"), str(tmp_path / "part.csv"),
                                       "--method", method, "-o", str(tmp_path / "r.csv")])
        assert res.exit_code == 1, res.output
        assert "has 2 of the model's 3 target columns ('L0', 'L1', 'L2') and lacks 'L2'" in " ".join(res.output.split())
        assert not (tmp_path / "r.csv").exists()


def test_explain_says_when_its_terminal_table_shows_fewer_genes_than_top(hidden_model):
    res = CliRunner().invoke(cli, ["explain", hidden_model, SAMPLE, "--top", "15"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "the first 10 of 15 ranked shown; -o FILE or --json holds all 15" in text


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:99999", "tcp://:8786", "tcp://127.0.0.1:0"])
def test_a_scheduler_address_no_socket_can_have_is_a_usage_error_without_waiting(address):
    """A port beyond 65535 (or none, or no host) waited the whole timeout, then said "cannot reach"."""
    pytest.importorskip("distributed")
    from mlpcli import parallel
    from mlpcli.errors import OptionError

    with pytest.raises(OptionError, match=r"not a Dask scheduler address \(a host and a port from 1 to 65535"):
        parallel.connect(address, timeout=30.0)


def _cancelled(i):
    """A fit whose future the client cancels, as it does every future when the scheduler's connection is lost."""
    from concurrent.futures import CancelledError

    raise CancelledError("batch_of__indexed_1_calls cancelled for reason: scheduler-connection-lost")


def test_a_dask_scheduler_lost_while_fits_run_is_one_line():
    """The scheduler gone mid-run (its node crashed, its job ended): `cv --backend dask` ended in "internal error
    (FutureCancelledError ...)"; `parallel.run` now says which scheduler was lost and what to do."""
    distributed = pytest.importorskip("distributed")
    from mlpcli import parallel
    from mlpcli.errors import TrainingError
    from mlpcli.parallel import Plan

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  host="127.0.0.1") as cluster:
        plan = Plan(backend="dask", scheduler=cluster.scheduler_address)
        # cancelled while the client is still connected: the workers (and the data they held) are what went (a
        # scheduler really lost: tests/test_dask_runs.py)
        with pytest.raises(TrainingError, match=rf"--scheduler {cluster.scheduler_address}: the Dask workers left "
                                                r"while fits ran"):
            parallel.run([(_cancelled, (0,)), (_cancelled, (1,))], plan)
    with pytest.raises(Exception) as info:  # without Dask the same error is the task's own
        parallel.run([(_cancelled, (0,))], Plan())
    assert not isinstance(info.value, TrainingError)
