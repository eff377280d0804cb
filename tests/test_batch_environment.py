"""What a batch job or a shell pipeline hands the command line: a log on a full disk, standard error open only for
reading or closed, help into a full disk or a gone pipe, an ASCII file-system encoding, an output that is the
file an input comes from, and FORCE_COLOR in a log."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.cli.console import stderr_console, StderrBar, stdout_console
from mlpcli.data import PreprocessConfig, Preprocessor
from mlpcli.engine import MLP
from cli_helpers import assert_clean_error, run


ROOT = Path(__file__).resolve().parents[1]


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
for _name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
    ENV.pop(_name, None)


def mlpcli(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlpcli", *map(str, args)], env={**ENV, **(env or {})},
                          timeout=120, **kw)


@pytest.fixture(scope="module")
def model_and_table(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny model file (3 features, 2 classes, built without training) and a 40-row table for it."""
    folder = tmp_path_factory.mktemp("batch")
    rng = np.random.default_rng(0)
    pre = Preprocessor(PreprocessConfig()).fit(rng.normal(size=(20, 3)), ["a", "b", "c"])
    model = model_io.Model.single(MLP(3, [4], 2, seed=0), pre, task="multiclass", classes=["x", "y"],
                                  feature_names=["a", "b", "c"], target_names=["label"],
                                  loss={"name": "ce", "params": {}})
    model_io.save(model, folder / "m.mlp")
    table = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    table.insert(0, "sample_id", [f"s{i}" for i in range(40)])
    table.to_csv(folder / "new.csv", index=False)
    return folder / "m.mlp", folder / "new.csv"


# ── standard error that cannot take the notes ─────────────────────────────────────────────────────────────


@pytest.mark.parametrize("stderr", ["full disk", "open for reading"])
def test_notes_that_cannot_be_written_lose_the_notes_not_the_predictions(tmp_path, model_and_table, stderr):
    """A job's log on a full disk (or over quota), or `2>&-` through a wrapper script (pyenv's `python` shim hands
    Python its own script, open for reading, as descriptor 2): the first note ended the command, exit 1 with
    nothing said anywhere, before the predictions (on another file system) were written."""
    if stderr == "full disk" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    model, table = model_and_table
    out = tmp_path / "p.csv"
    err = open("/dev/full", "w") if stderr == "full disk" else open(table, "rb")
    with err:
        done = mlpcli("predict", model, table, "-o", out, stderr=err)
    assert done.returncode == 0
    assert len(pd.read_csv(out)) == 40
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# ── --help and --version into a full disk or a closed pipe ───────────────────────────────────────────────


def test_help_into_a_full_disk_is_one_line_not_a_traceback():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        done = mlpcli("--version", stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: cannot write standard output: no space left on device"


def test_help_into_a_pipe_whose_reader_has_gone_exits_141():
    """`mlpcli --help | head -1` with head gone first: Click's own rule ended it with exit 1, an error; every
    other writer to a closed pipe ends with 141, as the README says."""
    r, w = os.pipe()
    os.close(r)
    try:
        done = mlpcli("--help", stdout=w, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(w)
    assert done.returncode == 141 and "Traceback" not in done.stderr and "Error" not in done.stderr


# ── file names ────────────────────────────────────────────────────────────────────────────────────────────


def test_non_ascii_output_name_under_an_ascii_file_system_encoding(tmp_path):
    """LC_ALL=C with Python's UTF-8 mode off: the file system encoding is ASCII and `p_é.csv` reaches Python as
    surrogates. The temporary file's name was rebuilt as UTF-8 text, which ASCII cannot encode: "Error: 'ascii'
    codec can't encode character" once the work was done (train, predict, every output)."""
    code = "import sys; from mlpcli import fileio; fileio.write_text_atomic(sys.argv[1], 'x,y\\n1,2\\n')"
    done = subprocess.run([sys.executable, "-c", code, "p_é.csv"], cwd=tmp_path, capture_output=True, text=True,
                          env={**ENV, "LC_ALL": "C", "PYTHONUTF8": "0"}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path) == ["p_é.csv"]


# ── an output that would replace an input ─────────────────────────────────────────────────────────────────


def test_an_output_naming_the_file_standard_input_comes_from_is_refused(tmp_path, model_and_table):
    """`mlpcli predict m.mlp - -o data.csv < data.csv` replaced the table by its predictions: the check that an
    output does not name an input left '-' out."""
    model, table = model_and_table
    data = tmp_path / "data.csv"
    data.write_bytes(table.read_bytes())
    with open(data, "rb") as stdin:
        done = mlpcli("predict", model, "-", "-o", data, stdin=stdin, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "--out" in done.stderr and "standard input is that file" in done.stderr
    assert data.read_bytes() == table.read_bytes()


def test_an_output_hard_linked_to_an_input_is_refused(tmp_path, model_and_table):
    model, table = model_and_table
    data = tmp_path / "data.csv"
    data.write_bytes(table.read_bytes())
    os.link(data, tmp_path / "same.csv")
    assert_clean_error(run(["predict", str(model), str(data), "-o", str(tmp_path / "same.csv")]), "--out",
                       "is also the input DATA", code=2)
    assert data.read_bytes() == table.read_bytes()


def test_standard_output_named_twice_says_which_was_the_default(model_and_table):
    """`predict m.mlp data.csv --json`: the error named "-o -", an option the user never typed."""
    model, table = model_and_table
    assert_clean_error(run(["predict", str(model), str(table), "--json"]), "-o - (the default) and --json", code=2)
    res = run(["predict", str(model), str(table), "--json", "-o", "-"])
    assert_clean_error(res, "-o - and --json", code=2)
    assert "(the default)" not in res.output


# ── FORCE_COLOR in a batch job's environment ─────────────────────────────────────────────────────────────


def test_force_color_colours_a_log_but_draws_no_live_bar_in_it(monkeypatch):
    """FORCE_COLOR asks for colours; rich took it for a terminal, and a log file got the live progress bar's
    frames (ten a second, cursor codes) and tables wrapped at 80 columns."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert not StderrBar(quiet=False).wants_bar
    console = stderr_console()
    console.print("[yellow]warning:[/] " + "x" * 150)
    text = log.getvalue()
    assert "\x1b[33m" in text  # the colour asked for
    assert "\x1b[?25l" not in text and len(text.strip().splitlines()) == 1  # no cursor codes, no wrapping
    assert stdout_console().width == 140  # a pipe's width, not a terminal's 80


def test_no_room_to_share_the_data_with_worker_processes_is_one_line_naming_the_remedy(tmp_path):
    """Under a file-size limit (as a full /dev/shm or TMPDIR, or a quota) joblib cannot write the memory-mapped copy
    of the data it shares with the members' worker processes: it was "internal error (PicklingError: Could not pickle
    the task ...)". The model itself would fit: --n-jobs 1 trains it."""
    import resource

    from tables import make_table

    table = make_table("multiclass", n_patients=150, per_patient=4, n_features=300, seed=2)  # 1.4 MB of float64
    table.to_csv(tmp_path / "t.csv", index=False)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    common = ["train", tmp_path / "t.csv", "--hidden", "4", "--epochs", "2", "--folds", "2", "-q"]
    res = mlpcli(*common, "--n-jobs", "2", "-o", tmp_path / "m.mlp", capture_output=True, text=True, preexec_fn=limit)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no room to share the data" in lines[0] and "--n-jobs 1" in lines[0], res.stderr
    assert "JOBLIB_TEMP_FOLDER" in lines[0] and not (tmp_path / "m.mlp").exists()
    res = mlpcli(*common, "--n-jobs", "1", "-o", tmp_path / "m.mlp", capture_output=True, text=True, preexec_fn=limit)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "m.mlp").stat().st_size < 1_000_000


def test_a_joblib_temp_folder_that_cannot_be_written_is_one_line_naming_it(tmp_path):
    """JOBLIB_TEMP_FOLDER naming a file (or a read-only folder): "internal error (PicklingError: Could not pickle the
    task ...)"."""
    from tables import make_table

    # 1.4 MB of float64: beyond joblib's threshold for sharing an array through its temporary folder
    make_table("multiclass", n_patients=150, per_patient=4, n_features=300, seed=2).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "m.mlp"
    res = mlpcli("train", tmp_path / "t.csv", "--hidden", "4", "--epochs", "2", "--folds", "2", "--n-jobs", "2", "-q",
                 "-o", out, env={"JOBLIB_TEMP_FOLDER": str(tmp_path / "afile")}, capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"JOBLIB_TEMP_FOLDER={tmp_path / 'afile'} cannot be written" in lines[0], res.stderr
    assert "--n-jobs 1" in lines[0] and "internal error" not in lines[0] and not out.exists()


def test_a_joblib_temp_folder_a_parallel_run_creates_is_not_left_behind(tmp_path, monkeypatch):
    """joblib creates a JOBLIB_TEMP_FOLDER that does not exist (os.makedirs of its sharing folder in it) and removed
    only its own folder: `JOBLIB_TEMP_FOLDER=$TMPDIR/joblib` left an empty joblib/ (and any parent it made) after
    every run of `cv --n-jobs 2` or parallel members. A folder that was there before stays."""
    from mlpcli.parallel import Plan, run as run_tasks

    big = np.ones(200_000)  # 1.6 MB: beyond joblib's threshold, shared through a file in its temporary folder
    monkeypatch.setenv("JOBLIB_TEMP_FOLDER", str(tmp_path / "made" / "by_joblib"))
    assert run_tasks([(np.sum, (big,)), (np.sum, (big,))], Plan(n_jobs=2)) == [200_000.0, 200_000.0]
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    monkeypatch.setenv("JOBLIB_TEMP_FOLDER", str(tmp_path / "kept"))
    assert run_tasks([(np.sum, (big,)), (np.sum, (big,))], Plan(n_jobs=2)) == [200_000.0, 200_000.0]
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and list((tmp_path / "kept").iterdir()) == []


def test_recalibrate_refuses_every_name_of_standard_output(model_and_table, tmp_path):
    """-o - was refused, -o /dev/stdout wrote the model's zip and then the report (or --json's document) on
    standard output, exit 0."""
    model, table = model_and_table
    for name in ("-", "/dev/stdout", "/dev/fd/1"):
        res = mlpcli("recalibrate", model, table, "-o", name, "--json", capture_output=True)
        assert res.returncode == 2 and res.stdout == b"", (name, res.stderr)
        assert b"give the recalibrated model a file name" in res.stderr


def test_out_of_memory_reading_a_model_is_not_called_a_damaged_file(model_and_table, monkeypatch):
    """Under `ulimit -v` a MemoryError while reading an array read "weights.npz array ... cannot be read (MemoryError)",
    as if the file were damaged."""
    from mlpcli.model_check import arrays

    model, _ = model_and_table

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(arrays, "_read_npy", no_memory)
    res = run(["info", str(model)])
    assert_clean_error(res, "out of memory")
    assert "cannot be read" not in res.output


def test_tables_in_a_pipe_have_no_trailing_spaces(monkeypatch):
    """Not a terminal, a table is as wide as its widest row (each row on one line), and rich padded its title (and
    caption) with spaces to that width: `mlpcli train ... | cat` gave "Training summary" and 430 spaces. The rows are
    kept whole; the lines lose their trailing spaces."""
    from mlpcli.cli.console import Table

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    table = Table(title="Training summary", title_justify="left", caption="a caption")
    table.add_column("")
    table.add_column("")
    table.add_row("task", "multiclass")
    table.add_row("labels", "a long sentence " * 20)
    stdout_console().print(table)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Training summary" and lines[-1].strip() == "a caption", lines
    assert all(line == line.rstrip() for line in lines), [line for line in lines if line != line.rstrip()]
    assert sum("a long sentence" in line for line in lines) == 1  # the row on one line, as before
    res = run(["gradcheck", "--only", "loss:ce"])  # a centred title, through the command
    assert res.exit_code == 0 and all(line == line.rstrip() for line in res.stdout.splitlines()), res.stdout


def test_panels_in_a_pipe_lose_their_box_and_keep_their_title(monkeypatch):
    """diagnose's verdict is a panel: in a pipe or a SLURM log its right border stood at the console's width (140)
    after every line, each padded with spaces to reach it. Not a terminal, a panel is its title, then its body."""
    from rich.panel import Panel

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    stdout_console().print(Panel("short line\nanother", title="Learning curves: overfit", subtitle="the end"))
    assert out.getvalue().splitlines() == ["Learning curves: overfit", "short line", "another", "the end"]
    rng = np.random.default_rng(0)
    history = pd.DataFrame({"epoch": np.arange(1, 31), "train_loss": np.linspace(0.7, 0.05, 30),
                            "val_loss": 0.4 + 0.01 * np.abs(np.arange(30) - 12) + 0.01 * rng.random(30)})
    res = run(["diagnose", "-"], input=history.to_csv(index=False))
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("Learning curves: ") and not any(line[:1] in "╭│╰" and line for line in lines), lines
    assert all(line == line.rstrip() for line in lines)
