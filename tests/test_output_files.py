"""Output files written whole or not at all: a failing plot, shift report, history or --oof leaves no partial
result and no earlier file replaced; empty output names, directories, full disks, symbolic-link loops, line
breaks in names, permissions kept, and .h5ad copies made safely."""

import json
import os
from pathlib import Path
from unittest import mock

import click
import pandas as pd
import pytest

from mlpcli.cli._common import check_writable
from mlpcli.errors import OutputError
from cli_helpers import assert_clean_error, run


def leftovers(directory) -> list[str]:
    return sorted(p for p in os.listdir(directory) if p.endswith(".tmp"))


# ── 6. the outputs of one command: all or none ───────────────────────────────────────────────────────────


def _failing(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail


@pytest.mark.parametrize("error", [OutputError("cannot write rc.png: no space left on device"),
                                   ValueError("the figure could not be drawn")], ids=["disk-full", "drawing"])
def test_evaluate_writes_no_output_when_the_plot_fails(tiny, tmp_path, error):
    """The shift report and the JSON file were written before the plot: a failing plot left them behind."""
    import mlpcli.plotting

    model, data = tiny["binary"]
    args = ["evaluate", model, data, "--shift-report", str(tmp_path / "shift.csv"), "-o", str(tmp_path / "m.json"),
            "--plot", str(tmp_path / "rc.png"), "-q"]
    with mock.patch.object(mlpcli.plotting, "plot_risk_coverage", _failing(error)):
        res = run(args)
    assert_clean_error(res, str(error).split(":")[0])
    assert sorted(os.listdir(tmp_path)) == []
    # an earlier run's files stay as they were
    for name in ("shift.csv", "m.json", "rc.png"):
        (tmp_path / name).write_text("earlier")
    with mock.patch.object(mlpcli.plotting, "plot_risk_coverage", _failing(error)):
        assert run(args).exit_code == 1
    assert all((tmp_path / name).read_text() == "earlier" for name in ("shift.csv", "m.json", "rc.png"))
    assert not leftovers(tmp_path)
    # and a run that succeeds writes all three
    res = run(args)
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 90
    assert pd.read_csv(tmp_path / "shift.csv").shape[0] > 0 and (tmp_path / "rc.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("out", ["p.csv", "p.tsv.gz", "p.parquet"])
def test_predict_writes_no_predictions_when_the_shift_report_fails(tiny, tmp_path, out):
    """The predictions were in place before the shift report was written."""
    import mlpcli.predict.output as output

    model, data = tiny["multiclass"]
    args = ["predict", model, data, "-o", str(tmp_path / out), "--shift-report", str(tmp_path / "shift.csv"), "-q"]
    with mock.patch.object(output, "table_bytes", _failing(OutputError("cannot write shift.csv: disk quota exceeded"))):
        res = run(args)
    assert_clean_error(res, "cannot write shift.csv")
    assert os.listdir(tmp_path) == []
    res = run([*args[:-1], "--shift-report", "/dev/full", "-q"])  # a device that fails: nothing in place either
    assert_clean_error(res, "cannot write /dev/full")
    assert os.listdir(tmp_path) == []
    assert run(args).exit_code == 0
    assert sorted(os.listdir(tmp_path)) == sorted([out, "shift.csv"])


def test_predict_h5ad_and_shift_report_all_or_none(cells, tmp_path):
    import mlpcli.data.h5ad as h5ad
    import mlpcli.predict.output as output

    path, models = cells
    args = ["predict", models["counts"], path, "-o", str(tmp_path / "a.h5ad"), "--shift-report",
            str(tmp_path / "shift.csv"), "-q"]
    with mock.patch.object(h5ad, "write_obs_columns", _failing(OutputError("cannot write a.h5ad: no space left"))):
        assert_clean_error(run(args), "cannot write a.h5ad")
    assert os.listdir(tmp_path) == []
    with mock.patch.object(output, "table_bytes", _failing(OutputError("cannot write shift.csv: no space left"))):
        assert_clean_error(run(args), "cannot write shift.csv")
    assert os.listdir(tmp_path) == []
    assert run(args).exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["a.h5ad", "shift.csv"]


def test_shift_report_bytes_are_what_write_table_writes(tiny, tmp_path):
    from mlpcli.predict import write_table
    from mlpcli.predict.output import table_bytes

    frame = pd.DataFrame({"feature": ["a", "b"], "x": [0.1234567891, 2.0], "flag": [True, False]})
    for name in ("t.csv", "t.tsv", "t.csv.gz", "t.parquet"):
        write_table(frame, str(tmp_path / name))
        if name.endswith(".parquet"):
            assert pd.read_parquet(tmp_path / name).equals(pd.read_parquet(__import__("io").BytesIO(
                table_bytes(frame, name))))
        else:
            assert (tmp_path / name).read_bytes() == table_bytes(frame, name)


# ── an empty output file name ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("command, option", [
    ("predict", "-o"), ("predict", "--shift-report"), ("evaluate", "-o"), ("evaluate", "--plot"),
    ("evaluate", "--shift-report"), ("explain", "-o"), ("explain", "--plot"),
])
def test_an_empty_output_name_is_a_usage_error(tiny, tmp_path, command, option):
    """`--shift-report "$REPORT"` with the variable unset wrote nothing and said nothing (evaluate -o '' and
    --plot '' too); explain -o '' failed after the work with exit 1."""
    model, data = tiny["multiclass"]
    extra = ["-o", str(tmp_path / "p.csv")] if command == "predict" and option != "-o" else []
    res = run([command, model, data, *extra, option, ""])
    assert_clean_error(res, "an empty file name", code=2)
    assert not Path(tmp_path / "p.csv").exists()


# ── standard output on a full disk ───────────────────────────────────────────────────────────────────────


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args, what", [
    (["predict", "{model}", "{data}", "-o", "-"], "standard output"),
    (["predict", "{model}", "{data}", "-o", "{tmp}/p.csv", "--shift-report", "-"], "standard output"),
    (["predict", "{model}", "{data}", "-o", "{tmp}/p.csv", "--json"], "the JSON document to standard output"),
    (["evaluate", "{model}", "{data}"], "standard output"),
    (["train", "{data}", "--folds", "1", "--epochs", "2", "--hidden", "4", "-o", "-"], "standard output"),
], ids=["rows", "shift-report", "json", "tables", "train-model"])
def test_a_full_disk_behind_standard_output_is_named(tiny, tmp_path, args, what):
    """`predict ... -o - > predictions.csv` on a full disk or quota said "Error: [Errno 28] No space left on
    device", naming nothing."""
    import subprocess
    import sys

    model, data = tiny["multiclass"]
    argv = [a.format(model=model, data=data, tmp=tmp_path) for a in args]
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "mlpcli", *argv, "-q"], stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    *said, last = res.stderr.strip().splitlines()
    assert last == f"Error: cannot write {what}: no space left on device", res.stderr
    assert all(line.startswith("warning:") for line in said), res.stderr  # evaluate's: the training table
    assert not leftovers(tmp_path) and not (tmp_path / "p.csv").exists() or "--json" in argv  # all or none


# ── output paths that cannot be written ──────────────────────────────────────────────────────────────────


def test_an_output_that_is_a_symbolic_link_loop_is_a_one_line_error(tmp_path):
    """A link to itself ended in "internal error (RuntimeError: Symlink loop ...)"."""
    loop = tmp_path / "self.csv"
    loop.symlink_to("self.csv")
    with pytest.raises(click.ClickException, match="--out: .*self.csv is a symbolic link that leads back to itself"):
        check_writable(str(loop), "--out")


def test_an_output_under_a_file_says_it_is_not_a_directory(tmp_path):
    """`-o data.csv/preds.csv` said "directory .../data.csv does not exist", next to the file it names."""
    table = tmp_path / "data.csv"
    table.write_text("a\n1\n")
    with pytest.raises(click.ClickException, match=r"--out: .*data.csv is a file, not a directory"):
        check_writable(str(table / "preds.csv"), "--out")


def test_a_long_name_of_many_byte_characters_still_gets_a_temporary_file(tmp_path):
    from mlpcli import fileio

    name = "x" + "€" * 83 + ".csv"  # 254 bytes: the temporary name is cut inside a 3-byte character
    fileio.write_text_atomic(tmp_path / name, "a\n1\n")
    assert os.listdir(tmp_path) == [name]


def test_an_unsupported_output_names_its_extension(tmp_path):
    """`predict -o mm.mlp` said "unsupported output format 'mm.mlp'", quoting the whole name."""
    from mlpcli.errors import DataError
    from mlpcli.predict import output_format

    for name, said in (("mm.mlp", "unsupported output format '.mlp' ('mm.mlp', a model file's extension"),
                       ("out.xlsx", "unsupported output format '.xlsx' ('out.xlsx')"),
                       ("out", "'out' names no output format;"),
                       ("out.gz", "'out.gz' names no output format before '.gz'")):
        with pytest.raises(DataError) as err:
            output_format(str(tmp_path / name))
        assert said in str(err.value), str(err.value)
