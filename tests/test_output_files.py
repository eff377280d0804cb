"""Output files written whole or not at all: a failing plot, shift report, history or --oof leaves no partial
result and no earlier file replaced; empty output names, directories, full disks, symbolic-link loops, line
breaks in names, permissions kept, and .h5ad copies made safely."""

import json
import os
from pathlib import Path
from unittest import mock

import click
import numpy as np
import pandas as pd
import pytest

from mlpcli.cli.outputs import check_writable
from mlpcli.errors import OutputError
from cli_helpers import assert_clean_error, run, write_tenx
from tables import make_table


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


@pytest.mark.parametrize("inside", ["matrix.mtx.gz", "barcodes.tsv.gz", "features.tsv.gz"])
def test_an_output_inside_a_10x_input_directory_cannot_replace_its_files(tmp_path, inside):
    """`train pbmc -o pbmc/matrix.mtx.gz` replaced the counts by the model (exit 0), `predict ... -o
    pbmc/barcodes.tsv.gz` the barcodes by the predictions: every output check compared files, and the directory
    is not one of its files. A new file there is still allowed."""
    tenx = tmp_path / "pbmc"
    write_tenx(tenx, [f"G{j}" for j in range(8)], cells=40)
    before = {p.name: p.read_bytes() for p in tenx.iterdir()}
    sheet = tmp_path / "cells.csv"
    sheet.write_text("barcode,cell_type\n" + "".join(f"AAAC{i}-1,{'BT'[i % 2]}\n" for i in range(40)))
    common = ["--samples", str(sheet), "--id", "barcode"]
    r = run(["train", str(tenx), *common, "--target", "cell_type", "--folds", "1", "--epochs", "2", "--hidden", "4",
             "-q", "-o", str(tenx / inside)])
    assert_clean_error(r, f"--out {tenx / inside} is also the input DATA's {inside}", code=2)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tenx), *common, "--target", "cell_type", "--folds", "1", "--epochs", "2", "--hidden",
                "4", "-q", "-o", str(model)]).exit_code == 0
    for args in (["predict", str(model), str(tenx), *common, "-o", str(tenx / inside)],
                 ["predict", str(model), str(tenx), *common, "-o", "-", "--shift-report", str(tenx / inside)],
                 ["evaluate", str(model), str(tenx), *common, "--shift-report", str(tenx / inside)]):
        # .mtx.gz is no output format: refused for that first
        needles = [f"is also the input DATA's {inside}"] if inside != "matrix.mtx.gz" else []
        assert_clean_error(run(args), *needles, code=2)
    assert {p.name: p.read_bytes() for p in tenx.iterdir()} == before
    assert run(["predict", str(model), str(tenx), *common, "-o", str(tenx / "predictions.csv"), "-q"]).exit_code == 0


def test_an_output_path_with_a_line_break_is_named_on_one_line(tmp_path):
    make_table("multiclass", n_patients=20).to_csv(tmp_path / "t.csv", index=False)
    r = run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "no\nsuch" / "m.mlp")])
    assert_clean_error(r, f"--out: directory {str(tmp_path / ('no' + chr(10) + 'such'))!r} does not exist")
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1


# ── outputs written nameless until whole ─────────────────────────────────────────────────────────────────


def test_an_output_is_whole_with_its_permissions_whichever_way_its_temporary_file_is_named(tmp_path, monkeypatch):
    import os
    import stat

    from mlpcli import fileio

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    fileio.atomic_write(target, lambda fh: fh.write(b"x" * 3_000_000))  # nameless, then named, then renamed
    assert target.read_bytes() == b"x" * 3_000_000 and stat.S_IMODE(target.stat().st_mode) == 0o600
    if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):  # named by its link, not copied (os.link
        assert fileio.UNNAMED_TEMPORARIES  # without a directory descriptor called link(): a cross-device error)
    # where /proc refuses the link, the content is copied into a named temporary file, and later outputs are
    # written named from the start
    monkeypatch.setattr(fileio, "UNNAMED_TEMPORARIES", True)
    real_link = os.link

    def refused(src, dst, **kw):
        if str(src).startswith("/proc/"):
            raise PermissionError(1, "Operation not permitted")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", refused)
    fileio.atomic_write(tmp_path / "new.bin", lambda fh: fh.write(b"y" * 2_500_000))
    assert (tmp_path / "new.bin").read_bytes() == b"y" * 2_500_000
    assert fileio.UNNAMED_TEMPORARIES is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin", "out.bin"]


def test_a_failed_write_leaves_nothing_and_the_old_file_untouched(tmp_path):
    from mlpcli import fileio

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def broken(fh):
        fh.write(b"partial")
        raise RuntimeError("the writer failed")

    with pytest.raises(RuntimeError):
        fileio.atomic_write(target, broken)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


# ── pipelines and outputs ───────────────────────────────────────────────────────────────────────────────


def test_an_h5ad_output_killed_outright_leaves_no_temporary_file(tmp_path):
    """The copy of the input was a named temporary file from the start: SIGKILL (the OOM killer, SLURM after its
    grace period) left a full copy of the input as .out.h5ad.<8 random characters>.tmp."""
    import subprocess
    import sys

    anndata = pytest.importorskip("anndata")
    anndata.AnnData(np.ones((20, 3), dtype=np.float32)).write_h5ad(tmp_path / "in.h5ad")
    code = ("import os, numpy as np\n"
            "import anndata.io as aio\n"
            "aio.write_elem = lambda *a, **k: os._exit(9)  # killed while the copy is being changed\n"
            "from mlpcli.data.h5ad import write_obs_columns\n"
            f"write_obs_columns({str(tmp_path / 'in.h5ad')!r}, {str(tmp_path / 'out.h5ad')!r}, "
            "{'mlpcli_x': np.zeros(20)})\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.h5ad"]


def test_predictions_written_into_an_h5ad_copy_keep_the_input(tmp_path):
    anndata = pytest.importorskip("anndata")
    from mlpcli.data.h5ad import write_obs_columns

    X = np.arange(60, dtype=np.float32).reshape(20, 3)
    anndata.AnnData(X).write_h5ad(tmp_path / "in.h5ad")
    write_obs_columns(tmp_path / "in.h5ad", tmp_path / "out.h5ad", {"mlpcli_x": np.arange(20.0)})
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    assert np.array_equal(out.X, X) and np.array_equal(out.obs["mlpcli_x"].to_numpy(), np.arange(20.0))
    assert sorted(os.listdir(tmp_path)) == ["in.h5ad", "out.h5ad"]


def test_a_model_is_not_written_to_a_terminal(site_model):
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "mlpcli", "train", str(site_model / "train.csv"), "--folds", "1",
                               "--epochs", "2", "--hidden", "4", "-q", "-o", "-"], stdout=follower,
                              stderr=subprocess.PIPE, text=True, cwd=site_model)
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert "a model file is binary and standard output is a terminal" in done.stderr
    piped = subprocess.run([sys.executable, "-m", "mlpcli", "train", str(site_model / "train.csv"), "--folds", "1",
                            "--epochs", "2", "--hidden", "4", "-q", "-o", "-"], capture_output=True, cwd=site_model)
    assert piped.returncode == 0 and piped.stdout.startswith(b"PK")  # a pipe: written as asked


def test_predict_names_a_directory_output_as_a_directory(site_model, tmp_path):
    res = run(["predict", str(site_model / "m.mlp"), str(site_model / "same.csv"), "-o", str(tmp_path / "newdir") + "/"])
    assert res.exit_code == 2 and "a name ending in '/' names a directory" in res.stderr


def test_an_h5ad_copy_falls_back_where_copy_file_range_copies_nothing(tmp_path, monkeypatch):
    anndata = pytest.importorskip("anndata")
    from mlpcli.data.h5ad import write_obs_columns

    X = np.arange(60, dtype=np.float32).reshape(20, 3)
    anndata.AnnData(X).write_h5ad(tmp_path / "in.h5ad")
    if hasattr(os, "copy_file_range"):
        monkeypatch.setattr(os, "copy_file_range", lambda *a, **k: 0)
    write_obs_columns(tmp_path / "in.h5ad", tmp_path / "out.h5ad", {"mlpcli_x": np.arange(20.0)})
    assert np.array_equal(anndata.read_h5ad(tmp_path / "out.h5ad").X, X)


def test_a_model_output_named_as_a_table_is_a_usage_error(tmp_path):
    """`train -o rr.csv` wrote a zip archive under a table's name (predict refuses `-o x.mlp` alike)."""
    from tables import make_table

    make_table("multiclass", n_patients=10, per_patient=2).to_csv(tmp_path / "t.csv", index=False)
    for name in ("m.csv", "m.TSV.gz", "m.parquet", "m.json"):
        res = run(["train", str(tmp_path / "t.csv"), "--epochs", "2", "-o", str(tmp_path / name)])
        assert res.exit_code == 2 and f"--out: '{name}' is named as a" in res.output and "name it .mlp" in res.output
        assert not (tmp_path / name).exists()
    res = run(["train", str(tmp_path / "t.csv"), "--epochs", "2", "--folds", "1", "-q", "-o", str(tmp_path / "model")])
    assert res.exit_code == 0, res.output
    res = run(["recalibrate", str(tmp_path / "model"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "r.csv")])
    assert res.exit_code == 2 and "'r.csv' is named as a .csv file" in res.output
