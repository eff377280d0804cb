"""Hostile inputs of issue 12, classes 7, 8 and 10: --config files held to the options' types, table quirks
(separators, decimal commas, empty and repeated header cells), output files (disk full, permissions,
symbolic links) and the memory-saving reads (results unchanged by blocks and chunks).

Every refusal is checked for its exit code, one line naming the file, key, option or column, no traceback,
and nothing left behind."""

from __future__ import annotations

import errno
import json
import gzip
import io
import os
import stat
import threading
import zipfile

import numpy as np
import pandas as pd
import pytest

from mlpcli import config_file, data, model_io
from mlpcli.data import blocks, row_view
from mlpcli.data import io as io_mod
from mlpcli.errors import DataError, OutputError
from mlpcli.fileio import atomic_write, write_text_atomic
from cli_helpers import assert_clean_error, run
from tables import make_table

FAST = ["--hidden", "4", "--epochs", "3", "--folds", "1", "--quiet"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_table(n_patients=16, per_patient=3, n_features=5)


def _leftovers(directory) -> list[str]:
    return [p for p in os.listdir(directory) if p.endswith(".tmp")]


# ── class 7: --config files ──────────────────────────────────────────────────────────────────────────────


@pytest.fixture()
def small(tmp_path, frame) -> str:
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("text, key, expected", [
    ("epochs = 3.7", "epochs", "whole number"),  # trained 3 epochs before
    ("epochs = true", "epochs", "whole number"),  # trained 1 epoch before
    ("epochs = 1e400", "epochs", "whole number"),  # a traceback before
    ('epochs = "3"', "epochs", "write numbers without quotes"),
    ("folds = 2.0", "folds", "whole number"),
    ("lr = nan", "lr", "finite number"),
    ("lr = -1", "lr", "must be > 0"),
    ("dropout = 1.0", "dropout", "[0, 1)"),
    ("seed = -1", "seed", "in [0, 4,294,967,295]"),
    ("calibrate = 1", "calibrate", "true or false"),
    ('calibrate = "yes"', "calibrate", "true or false"),
    ("log1p = 0", "log1p", "true or false"),
    ("hidden = [8.5]", "hidden", "layer widths"),
    ("hidden = [8, true]", "hidden", "layer widths"),
    ('hidden = "8,,8"', "hidden", "layer widths"),
    ("hidden = 0", "hidden", "positive whole numbers"),
    ('scaling = "Robust"', "scaling", 'one of "standard", "robust"'),
    ("group = 5", "group", "string"),
    ("target = []", "target", "at least one column"),
    ("threads = 0", "threads", ">= 1"),
    ('out = ""', "out", "non-empty string"),
    ("epochs = 2023-01-01", "epochs", "a date or time"),
    ("[train]\nbatch-size = 2.5", "batch-size", "whole number"),
    ('sep = "x"', "sep", "one of"),
])
def test_config_values_are_held_to_the_options_types(tmp_path, small, text, key, expected):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + "\n")
    res = run(["train", small, "--config", str(cfg), "-o", str(tmp_path / "m.mlp"), *FAST])
    assert_clean_error(res, "c.toml", f"key '{key}'", expected, code=2)
    assert not (tmp_path / "m.mlp").exists()


@pytest.mark.parametrize("text, needles", [
    ("epoch = 3", ["unknown key 'epoch'", "did you mean 'epochs'"]),
    ("bacth_size = 3", ["unknown key 'bacth_size'", "did you mean 'batch-size'"]),
    ("[train.sub]\na = 1", ["[train.sub] is a nested table"]),
    ("[model]\nhidden = [8]", ["[model] is not a table mlpcli reads"]),
    ("epochs = 2\n[train]\nepochs = 3", ["key 'epochs' is given twice", "under [train]"]),
    ("batch-size = 2\nbatch_size = 3", ["given twice", "'batch-size'"]),
    ("points = [{a = 1}]", ["[points] is not a table"]),
    # an option written as an inline table: said as the option's, not as an unknown table
    ("class-weight = {A = 1, B = 2}", ["'class-weight' is a table", '"A=1,B=2"']),
    # two options of the file that contradict each other: the file named, as for the other conflicts
    ('group = "patient_id"\nno-group = true', ["--no-group: contradicts --group", 'group = "patient_id"',
                                                "no-group = true"]),
])
def test_config_structure_problems_name_the_key(tmp_path, small, text, needles):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + "\n")
    res = run(["train", small, "--config", str(cfg), *FAST])
    assert_clean_error(res, "c.toml", *needles, code=2)


@pytest.mark.parametrize("text, needles", [
    # checked once the table is read: they named the flag alone, and --decimal's exited 1
    ('drop = ["label"]', ["'label' is given two roles (--target and --drop)", 'drop = ["label"]']),
    ('decimal = ","', ["comma is also the field separator", 'decimal = "comma"']),
], ids=["drop-the-target", "decimal-comma-on-commas"])
def test_config_options_that_fail_on_the_table_name_the_file_and_key(tmp_path, small, text, needles):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + "\n")
    res = run(["train", small, "--config", str(cfg), *FAST])
    assert_clean_error(res, f"--config {cfg}: ", *needles, code=2)
    # the same options on the command line: as before, no file to name
    flags = ["--drop", "label"] if "drop" in text else ["--decimal", "comma"]
    assert "--config" not in run(["train", small, *flags, *FAST]).output


def test_a_config_from_standard_input_says_how_to_give_one(tmp_path, small):
    """`--config -` said "file not found: -" (every other file option takes '-' for standard input)."""
    res = run(["train", small, "--config", "-", *FAST])
    assert_clean_error(res, "'-': the settings are read from a file, not from standard input", "--config <(", code=2)


@pytest.mark.parametrize("command, text, key", [
    (["cv"], 'history = "h.csv"', "history"),
    (["tune", "--grid", "lr=0.01"], "refit = true", "refit"),  # tune's own --refit means something else
])
def test_config_keys_the_command_lacks_are_refused(tmp_path, small, command, text, key):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + "\n")
    res = run([*command, small, "--config", str(cfg), "--epochs", "2"])
    assert_clean_error(res, "c.toml", f"key '{key}' does not apply to `mlpcli {command[0]}`", code=2)


def test_config_files_that_cannot_be_read(tmp_path, small, monkeypatch):
    cases = {}
    cases["missing"] = (str(tmp_path / "none.toml"), "file not found")
    (tmp_path / "dir.toml").mkdir()
    cases["directory"] = (str(tmp_path / "dir.toml"), "is a directory")
    (tmp_path / "latin.toml").write_bytes('epochs = 3\n# caf\xe9\n'.encode("latin-1"))
    cases["not utf-8"] = (str(tmp_path / "latin.toml"), "not UTF-8 text (byte 0xe9 on line 2)")
    (tmp_path / "bad.toml").write_text("epochs = 3\nhidden = [8,\n")
    cases["invalid"] = (str(tmp_path / "bad.toml"), "not valid TOML")
    (tmp_path / "bad2.toml").write_text("epochs = 3\nlr 0.1\n")
    cases["invalid, line"] = (str(tmp_path / "bad2.toml"), "line 2")
    for what, (path, needle) in cases.items():
        res = run(["train", small, "--config", path, *FAST])
        assert_clean_error(res, os.path.basename(path), needle, code=2)

    def refuse(path, mode="r", *a, **k):  # as open() on a file without read permission
        raise PermissionError(errno.EACCES, "Permission denied", path)

    (tmp_path / "locked.toml").write_text("epochs = 3\n")
    monkeypatch.setattr(config_file, "open", refuse, raising=False)
    res = run(["train", small, "--config", str(tmp_path / "locked.toml"), *FAST])
    assert_clean_error(res, "cannot read", "locked.toml", "permission denied", code=2)


def test_config_values_accepted_in_every_spelling_and_flags_win(tmp_path, small):
    out = tmp_path / "m.mlp"
    for text, hidden in (('hidden = "6,4"', [6, 4]), ("hidden = [6, 4]", [6, 4]), ("hidden = 5", [5]),
                         ("hidden = []", []), ('hidden = ""', [])):
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'{text}\nepochs = 2\nfolds = 1\nlog1p = "auto"\nimpute = "none"\nclip-norm = "none"\n'
                       'sep = ","\ndecimal = "dot"\nquiet = true\n')
        res = run(["train", small, "--config", str(cfg), "-o", str(out)])
        assert res.exit_code == 0, (text, res.output)
        model = model_io.load(out)
        assert model.network.hidden == hidden and model.fit["epochs_run"] == 2
    res = run(["train", small, "--config", str(cfg), "-o", str(out), "--epochs", "3", "--hidden", "7"])
    assert res.exit_code == 0, res.output
    model = model_io.load(out)
    assert model.fit["epochs_run"] == 3 and model.network.hidden == [7]


# ── class 8: separators and decimal commas ───────────────────────────────────────────────────────────────


def _write(frame: pd.DataFrame, path, sep: str, decimal: str) -> None:
    text = frame.to_csv(sep=sep, decimal=decimal, index=False)
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def _weights(path) -> bytes:
    return zipfile.ZipFile(path).read("weights.npz")


@pytest.mark.parametrize("name, sep, decimal, notes", [
    ("semi.csv", ";", ",", ["semicolon (';')-separated", "decimal commas"]),  # Excel in a comma-decimal locale
    ("semi.csv", ";", ".", ["semicolon (';')-separated"]),
    ("tabs.tsv", "\t", ",", ["decimal commas"]),
    ("tabs.csv", "\t", ".", ["read as tab-separated", "as its .csv name says"]),
    ("pipes.csv", "|", ".", ["pipe ('|')-separated"]),
    ("pipes.txt.gz", "|", ",", ["pipe ('|')-separated", "decimal commas"]),
])
def test_separators_and_decimal_commas_are_detected_read_alike_and_predicted_on(tmp_path, frame, name, sep, decimal,
                                                                                 notes):
    plain = tmp_path / "plain.csv"
    frame.to_csv(plain, index=False)
    quirky = tmp_path / name
    _write(frame, quirky, sep, decimal)
    assert run(["train", str(plain), "-o", str(tmp_path / "plain.mlp"), *FAST]).exit_code == 0
    res = run(["train", str(quirky), "-o", str(tmp_path / "quirky.mlp"), *FAST[:-1]])
    assert res.exit_code == 0, res.output
    for note in notes:
        assert note in res.output, (note, res.output)
    # the same values were read: the same model
    assert _weights(tmp_path / "quirky.mlp") == _weights(tmp_path / "plain.mlp")
    # and the model predicts on its own training file
    out = tmp_path / "pred.csv"
    res = run(["predict", str(tmp_path / "quirky.mlp"), str(quirky), "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    expected = tmp_path / "expected.csv"
    assert run(["predict", str(tmp_path / "plain.mlp"), str(plain), "-o", str(expected), "--quiet"]).exit_code == 0
    assert out.read_text() == expected.read_text()


@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_header_longer_than_the_csv_modules_field_limit_is_read(tmp_path, sep):
    """14,000 genes make a 140 KB header: under the separators it does not use, the whole line is one field,
    beyond the csv module's 128 KiB limit. Every command reads the table, and the limit is left as it was."""
    import csv

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(30, 14_000)).round(2), columns=[f"GENE{j:05d}" for j in range(14_000)])
    frame.insert(0, "label", ["a", "b", "c"] * 10)
    path = tmp_path / ("wide.csv" if sep == "," else "wide.tsv")
    frame.to_csv(path, sep=sep, index=False)
    assert len(path.read_text().split("\n", 1)[0]) > 131_072
    limit = csv.field_size_limit()
    model = tmp_path / "m.mlp"
    res = run(["train", str(path), "--target", "label", "-o", str(model), "--no-group", *FAST])
    assert res.exit_code == 0, res.output
    for args in (["predict", str(model), str(path), "-o", str(tmp_path / "p.csv"), "--quiet"],
                 ["evaluate", str(model), str(path)],
                 ["cv", str(path), "--target", "label", "--folds", "2", "--member-folds", "2", "--no-group", *FAST[:-3]]):
        res = run(args)
        assert res.exit_code == 0, (args[0], res.output)
    assert csv.field_size_limit() == limit


def test_given_separator_and_decimal_win_and_are_checked(tmp_path, frame):
    path = tmp_path / "semi.csv"
    _write(frame, path, ";", ",")
    res = run(["train", str(path), "-o", str(tmp_path / "m.mlp"), "--sep", "semicolon", "--decimal", ",", *FAST[:-1]])
    assert res.exit_code == 0 and "semicolon (';')-separated" not in res.output, res.output
    assert_clean_error(run(["train", str(path), "--sep", ",", *FAST]), "semi.csv", "--sep comma",
                       "single column", "semicolon")
    assert_clean_error(run(["train", str(path), "--sep", ";", "--decimal", ".", *FAST]),
                       "'f00' holds numbers with decimal commas", "--decimal comma")
    assert_clean_error(run(["train", str(path), "--sep", ",", "--decimal", ",", *FAST]), "--decimal",
                       "field separator", code=2)
    plain = _csv(tmp_path, frame)
    assert_clean_error(run(["train", plain, "--decimal", "comma", *FAST]), "--decimal comma", "plain.csv",
                       "field separator")
    assert_clean_error(run(["train", str(path), "--sep", "x", *FAST]), "--sep", code=2)
    res = run(["predict", str(tmp_path / "m.mlp"), str(path), "--sep", ";", "--decimal", "comma", "-o",
               str(tmp_path / "p.csv"), "--quiet"])
    assert res.exit_code == 0, res.output


def test_semicolon_table_on_standard_input(tmp_path, frame):
    text = frame.to_csv(sep=";", decimal=",", index=False).encode()
    ds, notes = data.load_dataset("-", stdin=io.BytesIO(text))
    plain, _ = data.load_dataset(_csv(tmp_path, frame))
    assert np.array_equal(ds.X, plain.X) and any("standard input" in n and "semicolon" in n for n in notes)
    res = run(["train", "-", "-o", str(tmp_path / "m.mlp"), *FAST], input=text)
    assert res.exit_code == 0, res.output
    res = run(["predict", str(tmp_path / "m.mlp"), "-", "--quiet"], input=text)
    assert res.exit_code == 0 and len(res.stdout.strip().splitlines()) == len(frame) + 1, res.output


def _csv(tmp_path, frame, name="plain.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


# ── class 8: header cells ────────────────────────────────────────────────────────────────────────────────


def test_r_write_csv_row_names_become_the_sample_ids_in_train_and_predict(tmp_path, frame):
    path = tmp_path / "r.csv"
    frame = frame.assign(alt_id=[f"A{i}" for i in range(len(frame))])
    frame.set_index("sample_id").rename_axis(None).to_csv(path)  # R's write.csv: "" over the row names
    assert path.read_text().startswith(",patient_id")
    res = run(["train", str(path), "-o", str(tmp_path / "m.mlp"), "--drop", "alt_id", *FAST[:-1]])
    assert res.exit_code == 0, res.output
    assert "row names" in res.output and "Unnamed" not in res.output
    model = model_io.load(tmp_path / "m.mlp")
    assert model.feature_names == [c for c in frame.columns if c.startswith("f")]
    out = tmp_path / "p.csv"
    assert run(["predict", str(tmp_path / "m.mlp"), str(path), "-o", str(out), "--quiet"]).exit_code == 0
    assert list(pd.read_csv(out)["sample_id"]) == list(frame["sample_id"])
    # with --id naming another column the row names are left out, never a feature
    res = run(["train", str(path), "-o", str(tmp_path / "m2.mlp"), "--id", "alt_id", *FAST[:-1]])
    assert res.exit_code == 0 and "ignored the unnamed first column" in res.output, res.output
    assert model_io.load(tmp_path / "m2.mlp").feature_names == model.feature_names


def test_pandas_index_as_row_names(tmp_path, frame):
    path = tmp_path / "p.csv"
    frame.drop(columns=["sample_id"]).to_csv(path)  # "" over 0, 1, 2, ...
    ds, notes = data.load_dataset(path)
    assert list(ds.ids[:3]) == ["0", "1", "2"] and "sample_id" not in ds.feature_names


@pytest.mark.parametrize("make, needles", [
    (lambda f: f.assign(sample_id=f["sample_id"].where(f.index != 5, f["sample_id"][4])).set_index("sample_id")
     .rename_axis(None), ["header cell 1 is empty", "repeated values"]),
    (lambda f: f.set_index("sample_id").rename_axis(None).assign(**{"sample_id": 1}),
     ["header cell 1 is empty", "already named 'sample_id'"]),
])
def test_row_names_that_cannot_be_sample_ids(tmp_path, frame, make, needles):
    path = tmp_path / "r.csv"
    make(frame).to_csv(path)
    assert_clean_error(run(["train", str(path), *FAST]), "r.csv", *needles)


@pytest.mark.parametrize("blank", ["", "  "])
def test_empty_header_cell_over_values_is_refused_by_position(tmp_path, frame, blank):
    columns = list(frame.columns)
    columns[6] = blank  # the third feature
    path = tmp_path / "e.csv"
    frame.set_axis(columns, axis=1).to_csv(path, index=False)
    res = run(["train", str(path), *FAST])
    assert_clean_error(res, "e.csv", "header cell 7", f"after {columns[5]!r}", "is empty")
    assert "Unnamed" not in res.output


def test_trailing_separator_column_is_ignored_with_a_note(tmp_path, frame):
    path = tmp_path / "t.csv"
    lines = frame.to_csv(index=False).splitlines()
    path.write_text("".join(line + ",\n" for line in lines))
    res = run(["train", str(path), "-o", str(tmp_path / "m.mlp"), *FAST[:-1]])
    assert res.exit_code == 0 and f"column {frame.shape[1] + 1}; a separator at the end" in res.output, res.output
    model = model_io.load(tmp_path / "m.mlp")
    assert model.feature_names == [c for c in frame.columns if c.startswith("f")]
    assert run(["predict", str(tmp_path / "m.mlp"), str(path), "-o", str(tmp_path / "p.csv"), "-q"]).exit_code == 0


@pytest.mark.parametrize("suffix", [".csv", ".tsv.gz", ".parquet"])
def test_repeated_header_names_name_their_positions(tmp_path, frame, suffix):
    columns = list(frame.columns)
    columns[7] = columns[4]
    renamed = frame.set_axis(columns, axis=1)
    path = tmp_path / f"dup{suffix}"
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_arrays([pa.array(renamed.iloc[:, j]) for j in range(len(columns))],
                                            names=columns), path)
    else:
        _write(renamed, path, "\t" if ".tsv" in suffix else ",", ".")
    assert_clean_error(run(["train", str(path), *FAST]), f"dup{suffix}", f"{columns[4]!r} (×2)", "columns 5, 8")


# ── class 8: writing outputs ─────────────────────────────────────────────────────────────────────────────


def test_disk_full_names_the_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")

    def full(fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match=r"^cannot write .*out.csv: no space left on device$") as info:
        atomic_write(target, full)
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert target.read_text() == "old\n" and _leftovers(tmp_path) == []


def test_disk_full_at_sync_and_through_a_writer_that_hides_the_error(tmp_path, monkeypatch):
    target = tmp_path / "m.txt"

    def sync(fd):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(os, "fsync", sync)
    with pytest.raises(OutputError, match="cannot write .*m.txt: disk quota exceeded"):
        write_text_atomic(target, "x")
    assert not target.exists() and _leftovers(tmp_path) == []
    monkeypatch.undo()

    class FullFile(io.BytesIO):  # the temporary file on a full disk
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: (os.close(fd), FullFile())[1])

    def hiding(fh):  # a writer (library) that turns the OSError of write() into its own error
        try:
            fh.write(b"x")
        except OSError:
            raise RuntimeError("writer failed") from None

    with pytest.raises(OutputError, match="cannot write .*m.txt: no space left on device"):
        atomic_write(target, hiding)
    monkeypatch.undo()
    with pytest.raises(OutputError, match="no space left on device"):  # raised by the writer itself
        atomic_write(target, lambda fh: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    assert not target.exists() and _leftovers(tmp_path) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_train_onto_a_full_device_names_it(tmp_path, frame):
    res = run(["train", _csv(tmp_path, frame), "-o", "/dev/full", *FAST])
    assert_clean_error(res, "cannot write /dev/full: no space left on device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # written into, never replaced


def test_replacing_an_output_keeps_its_mode_and_new_files_follow_the_umask(tmp_path, frame):
    data_path = _csv(tmp_path, frame)
    out = tmp_path / "m.mlp"
    out.write_text("old")
    os.chmod(out, 0o600)
    assert run(["train", data_path, "-o", str(out), *FAST]).exit_code == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600 and model_io.load(out).task
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640


def test_a_symbolic_link_is_written_through_and_kept(tmp_path, frame):
    data_path = _csv(tmp_path, frame)
    (tmp_path / "models").mkdir()
    real = tmp_path / "models" / "real.mlp"
    real.write_text("old")
    os.chmod(real, 0o640)
    link = tmp_path / "current.mlp"
    link.symlink_to(real)
    assert run(["train", data_path, "-o", str(link), *FAST]).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert model_io.load(real).task and stat.S_IMODE(os.stat(real).st_mode) == 0o640
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "models") == []
    chain = tmp_path / "chain.txt"
    chain.symlink_to(link)  # a link to a link: followed to the end
    write_text_atomic(chain, "text")
    assert chain.is_symlink() and link.is_symlink() and real.read_text() == "text"


def test_a_named_pipe_is_written_into(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    write_text_atomic(fifo, "through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_an_output_that_is_a_directory(tmp_path):
    with pytest.raises(OutputError, match="cannot write .*: it is a directory"):
        write_text_atomic(tmp_path, "x")


# ── class 10: reading and preprocessing in pieces change nothing ─────────────────────────────────────────


def _pieces_table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"sample_id": [f"S{i}" for i in range(n)], "label": rng.choice(["a", "b"], n)})
    df["patient_id"] = [str(i // 2) if i < 200 else f"P{i // 2}" for i in range(n)]  # numbers, then text
    for j in range(6):
        col = rng.lognormal(size=n) * 10 ** j  # 17 significant digits: pandas' default parser rounds some wrong
        col[rng.random(n) < 0.05] = np.nan
        df[f"g{j}"] = col
    df["counts"] = rng.integers(0, 1000, n)
    return df


def test_text_features_read_in_pieces_are_the_numbers_written(tmp_path, monkeypatch):
    # predict's reader, a piece of text at a time: correctly rounded numbers (those a parquet copy holds, and
    # predict reads), the other columns typed as pandas types the whole file (patient ids: numbers, then text)
    from mlpcli.data import text_features

    df = _pieces_table()
    path = _csv(tmp_path, df, "t.csv")
    monkeypatch.setattr(text_features, "DEFAULT_CHUNK_BYTES", 1 << 10)  # pieces of 4 KiB of text, the smallest
    ds, _ = data.load_dataset(path)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    from_parquet, _ = data.load_dataset(tmp_path / "t.parquet")
    assert ds.X.flags.c_contiguous and ds.X.dtype == np.float64
    assert ds.X.tobytes() == from_parquet.X.tobytes()
    assert ds.checksum() == from_parquet.checksum()
    frame = data.read_table(path)
    roles, _ = data.resolve_roles(frame.columns)
    whole = data.Dataset.from_frame(frame, roles)
    assert np.allclose(ds.X, whole.X, rtol=1e-15, atol=0, equal_nan=True)  # pandas: at most an ulp away
    assert list(ds.groups) == list(whole.groups) and list(ds.ids) == list(whole.ids)
    assert list(ds.y) == list(whole.y) and ds.warnings == whole.warnings


@pytest.mark.parametrize("decimals_from", [None, 250])
def test_text_counts_read_in_pieces_stay_float32_until_a_value_needs_float64(tmp_path, monkeypatch, decimals_from):
    # counts are held in float32; a decimal in a later piece turns the rows read so far back into float64
    from mlpcli.data import text_features

    rng = np.random.default_rng(3)
    n = 300
    df = pd.DataFrame({"sample_id": [f"S{i}" for i in range(n)], "label": rng.choice(["a", "b"], n)})
    for j in range(5):
        df[f"g{j}"] = rng.integers(0, 10_000, n).astype(np.float64)
    if decimals_from is not None:
        df.loc[decimals_from:, "g3"] += 0.1
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    monkeypatch.setattr(text_features, "DEFAULT_CHUNK_BYTES", 1 << 10)  # pieces of a few dozen rows
    monkeypatch.setattr(io_mod, "GATHER_CHUNK_BYTES", 7 * 5 * 8)  # gathered 7 float64 (14 float32) rows at a time
    ds, _ = data.load_dataset(path, group=None)
    assert ds.X.dtype == (np.float32 if decimals_from is None else np.float64) and ds.X.flags.c_contiguous
    np.testing.assert_array_equal(ds.X, df[[f"g{j}" for j in range(5)]].to_numpy())


@pytest.mark.parametrize("token, message", [("NAN", "missing values.*'g1'"), ("+nan", "missing values.*'g1'"),
                                            ("1e500", "infinite values: 'g1'"), ("TRUE", "'g1'.*TRUE.*row 6")])
def test_text_numbers_are_read_as_predict_reads_them(tmp_path, token, message):
    # pyarrow's number parser, as in predict: a NaN written in any case is missing, an overflow infinite
    df = _pieces_table(40)
    df["g1"] = df["g1"].astype(object)
    df.loc[5, "g1"] = token
    path = _csv(tmp_path, df, "t.csv")
    with pytest.raises(DataError, match=message):
        ds, _ = data.load_dataset(path)
        data.Preprocessor(data.PreprocessConfig()).fit(ds.X, ds.feature_names)


def test_a_text_feature_column_still_names_itself(tmp_path, frame):
    bad = frame.astype({"f02": object})
    bad.loc[7, "f02"] = "n/d?"
    # a column of numbers with one that is not: the cell is named (row, sample id, value)
    assert_clean_error(run(["train", _csv(tmp_path, bad), *FAST]), "feature column 'f02'", "'n/d?'",
                       "row 8 (id 'S0007')")


def test_subsets_are_views_and_preprocessing_in_blocks_changes_nothing(monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.lognormal(size=(120, 9))
    X[3, 2] = np.nan
    X[:, 5] = 1.0  # constant: dropped
    ds = data.Dataset(X=X, y=None, feature_names=[f"g{j}" for j in range(9)], task=None)
    sub = ds.subset(np.arange(10, 110))
    assert isinstance(sub.X, row_view.RowView) and sub.X.base is X and sub.X.shape == (100, 9)
    assert np.array_equal(np.asarray(sub.X), X[10:110], equal_nan=True)
    assert np.array_equal(sub.subset([0, 1]).X[:], X[[10, 11]], equal_nan=True)
    configs = [data.PreprocessConfig(log1p=True, impute="median", scaling="robust"),
               data.PreprocessConfig(impute="mean", scaling="standard", top_var=4)]
    for cfg in configs:
        whole = data.Preprocessor(cfg)
        Zw = whole.fit_transform(X[10:110], ds.feature_names, dtype=np.float32)
        Tw = whole.transform(X[:50])
        monkeypatch.setattr(blocks, "BLOCK_VALUES", 150)  # blocks of one or two columns / rows
        pieces = data.Preprocessor(cfg)
        Zp = pieces.fit_transform(sub.X, ds.feature_names, dtype=np.float32)
        Tp = pieces.transform(ds.subset(np.arange(50)).X)
        monkeypatch.undo()
        for attr in ("center_", "scale_", "train_mean_", "train_sd_", "impute_values_", "kept_index_"):
            assert getattr(whole, attr).tobytes() == getattr(pieces, attr).tobytes(), attr
        assert Zw.tobytes(order="A") == Zp.tobytes(order="A") and Tw.tobytes() == Tp.tobytes()
        assert whole.warnings == pieces.warnings and whole.kept_features == pieces.kept_features
    assert data.looks_like_counts(X) is not None
    monkeypatch.setattr(blocks, "BLOCK_VALUES", 150)
    assert data.looks_like_counts(sub.X) == data.looks_like_counts(X[10:110])


def test_preprocessing_errors_still_count_every_row(monkeypatch):
    X = np.arange(120.0).reshape(40, 3)  # non-negative, no column constant
    pre = data.Preprocessor(data.PreprocessConfig(log1p=True)).fit(X, ["a", "b", "c"])
    bad = X.copy()
    bad[[2, 30], 0] = -5.0
    bad[[3, 31, 32], 1] = np.nan
    monkeypatch.setattr(blocks, "BLOCK_VALUES", 30)  # ten rows a block
    with pytest.raises(DataError, match=r"1 feature column holds negative values \(first 'a', min -5\)"):
        pre.transform(bad)
    bad[[2, 30], 0] = 1.0
    with pytest.raises(DataError, match=r"missing values in 1 feature column: 'b' \(3\)"):
        pre.transform(bad)
    with pytest.raises(DataError, match=r"2 feature columns hold negative values \(first 'a', min -5"):
        Y = X.copy()
        Y[35, 0], Y[1, 2] = -5.0, -1.0
        data.Preprocessor(data.PreprocessConfig(log1p=True)).fit(Y, ["a", "b", "c"])


def test_a_descriptors_name_is_written_into_at_its_position_and_seekable_formats_refuse_it(tmp_path):
    """/dev/fd/N and /dev/stderr name an open descriptor: written at its current position (a log file
    standard error is redirected to keeps its lines), never truncated or replaced; .h5ad (which needs a
    file it can seek in) refuses it; an unopened descriptor is an OutputError naming it."""
    from mlpcli.fileio import atomic_path, descriptor_of

    assert [descriptor_of(p) for p in ("/dev/stdout", "/dev/stderr", "/dev/fd/7", "/proc/self/fd/12",
                                       "/dev/fd/x", "fd/3", "/dev/null")] == [1, 2, 7, 12, None, None, None]
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        fh.write("first\n")
        fh.flush()
        atomic_write(f"/dev/fd/{fh.fileno()}", lambda out: out.write(b"second\n"))
        fh.write("third\n")
    assert log.read_text() == "first\nsecond\nthird\n"
    assert [p.name for p in tmp_path.iterdir()] == ["log.txt"]
    with open(log, "a") as fh, pytest.raises(OutputError, match="not a regular file"):
        with atomic_path(f"/dev/fd/{fh.fileno()}"):
            pass
    unused = os.open(os.devnull, os.O_RDONLY)
    os.close(unused)  # a descriptor number nothing holds now
    with pytest.raises(OutputError, match=f"cannot write /dev/fd/{unused}: bad file descriptor"):
        atomic_write(f"/dev/fd/{unused}", lambda out: out.write(b"x"))


def test_config_values_a_flag_contradicts_give_way_and_cv_reads_member_folds(tmp_path):
    """A --config value that a command-line flag contradicts made a usage error the user never typed
    ("--no-group: contradicts --group"), where flags are documented to win; in cv (and tune) a file's `folds`
    silently set the ensemble's members (train's --folds, cv's --member-folds) while `member-folds` was an
    unknown key."""
    from tables import write_table

    data = write_table(tmp_path, n_patients=20)
    (tmp_path / "group.toml").write_text('group = "patient_id"\nepochs = 2\nhidden = [4]\n')
    res = run(["train", data, "--config", str(tmp_path / "group.toml"), "--no-group", "--folds", "1", "-q", "-o",
               str(tmp_path / "a.mlp")])
    assert res.exit_code == 0, res.output
    assert model_io.load(tmp_path / "a.mlp").roles.get("group") is None
    (tmp_path / "val.toml").write_text(f'val-data = "{data}"\nepochs = 2\nhidden = [4]\n')
    res = run(["train", data, "--config", str(tmp_path / "val.toml"), "--folds", "2", "-q", "-o",
               str(tmp_path / "b.mlp")])
    assert res.exit_code == 0, res.output
    assert len(model_io.load(tmp_path / "b.mlp").members) == 2
    (tmp_path / "cv.toml").write_text("folds = 10\nepochs = 2\nhidden = [4]\n")
    res = run(["cv", data, "--config", str(tmp_path / "cv.toml"), "-q"])
    assert_clean_error(res, "cv.toml", "'folds' is ambiguous", "member-folds", code=2)
    (tmp_path / "cv2.toml").write_text("member-folds = 2\nepochs = 2\nhidden = [4]\n")
    res = run(["cv", data, "--config", str(tmp_path / "cv2.toml"), "--folds", "3", "-q", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["folds"] == 3 and {f["members"] for f in doc["per_fold"]} == {2}


def test_a_config_file_with_a_byte_order_mark_is_read(site_model, tmp_path):
    (tmp_path / "c.toml").write_bytes(b"\xef\xbb\xbfepochs = 2\nfolds = 1\nhidden = [4]\n")
    res = run(["train", str(site_model / "train.csv"), "--config", str(tmp_path / "c.toml"), "-q",
               "--history", str(tmp_path / "h.csv"), "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "h.csv")) == 2
