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


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.mlp"
    res = CliRunner().invoke(cli, ["train", SAMPLE, "--folds", "1", "--epochs", "2", "--hidden", "none", "-q",
                                   "-o", str(path)])
    assert res.exit_code == 0, res.output
    return str(path)


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
    assert ("cov@ by the count alone in 3 folds: fold 1 (held-out batch run0): every prediction set at 0.9 holds every "
            "class: the level needs 9 held-out patients and the model's conformal calibration has 8") in text
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
