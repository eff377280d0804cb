"""Hostile text tables on the training side: a row with a field too many or too few is refused by every
command that reads a table to train or check on (train, --val-data, cv, tune, diagnose --learning-curve,
gradcheck --data), naming the file, the line and both field counts, never read as missing values or
shifted columns; and a decimal-comma table with a cell that is not a number names that cell.

The reader that checks is the one `predict` uses (mlpcli.data.fields), so the cases mirror
test_hostile_predict_tables.py: formats, quoting, line ends, compression, standard input, the transposed
layout."""

from __future__ import annotations

import gzip
import io
import os

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io
from mlpcli.config import TrainOptions
from mlpcli.data.fields import check_stream
from mlpcli.errors import DataError
from mlpcli.pipeline import train
from cli_helpers import assert_clean_error, run
from tables import make_table, lines_of, ragged

WHERE = {"first": 2, "middle": 31, "last": 61}  # file lines of a 60-row table (the header is line 1)


def table() -> pd.DataFrame:
    return make_table(task="multiclass", n_patients=20, n_features=6, seed=3)  # 60 rows, 10 columns


def one_line_error(result, *needles):
    assert_clean_error(result, *needles)
    message = result.output.strip().splitlines()[-1]
    assert message.count("Error:") == 1 and len(message) < 400, message


def write(path, text: str) -> str:
    path.write_bytes(gzip.compress(text.encode()) if str(path).endswith(".gz") else text.encode())
    return str(path)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid training table and a small model trained on it."""
    root = tmp_path_factory.mktemp("train_tables")
    path = root / "good.csv"
    table().to_csv(path, index=False)
    fitted = train(str(path), TrainOptions(target=["label"], hidden=[4], epochs=3, seed=0, folds=1))
    model_io.save(fitted.model, root / "m.mlp")
    return {"data": str(path), "model": str(root / "m.mlp")}


def commands(bad: str, good) -> dict[str, list[str]]:
    """Every command that reads a training-side table, pointed at `bad`."""
    fast = ["--hidden", "4", "--epochs", "2", "-q"]
    return {
        "train": ["train", bad, "-o", os.path.join(os.path.dirname(bad), "m_out.mlp"), *fast],
        "val-data": ["train", good["data"], "--val-data", bad, "--folds", "1",
                     "-o", os.path.join(os.path.dirname(bad), "m_out.mlp"), *fast],
        "cv": ["cv", bad, "--folds", "3", *fast],
        "tune": ["tune", bad, "--grid", "l2=0,1e-4", "--folds", "2", *fast],
        "learning-curve": ["diagnose", "--learning-curve", bad, *fast],
        "gradcheck": ["gradcheck", "--model", good["model"], "--data", bad, "--rows", "4", "--entries", "2"],
    }


@pytest.mark.parametrize("command", ["train", "val-data", "cv", "tune", "learning-curve", "gradcheck"])
@pytest.mark.parametrize("kind", ["extra", "missing"])
def test_every_training_side_command_refuses_a_ragged_row(tmp_path, good, command, kind):
    for where, line in WHERE.items():
        path = write(tmp_path / f"bad_{where}.csv", "\n".join(ragged(lines_of(table()), line, kind)) + "\n")
        width = 10
        got = width + 1 if kind == "extra" else width - 1
        res = run(commands(path, good)[command])
        one_line_error(res, path, f"line {line} has {got} fields", f"header has {width}")
        assert sorted(os.listdir(tmp_path)) == sorted(p for p in os.listdir(tmp_path) if p.startswith("bad_"))


FORMATS = ["tsv", "csv.gz", "tsv.bz2", "csv-crlf", "csv-quoted", "csv-no-final-newline", "semicolon-decimal-comma"]


def formatted(df: pd.DataFrame, fmt: str, line: int, kind: str) -> tuple[str, str]:
    """(file name, text) of `df` in format `fmt` with line `line` ragged."""
    sep = {"tsv": "\t", "tsv.bz2": "\t", "semicolon-decimal-comma": ";"}.get(fmt, ",")
    if fmt == "semicolon-decimal-comma":
        lines = df.to_csv(index=False, sep=";", decimal=",").splitlines()
    else:
        lines = lines_of(df, sep)
    if fmt == "csv-quoted":  # R's write.csv: text fields quoted, some holding the separator
        lines = [",".join(f'"{c}"' if not c[:1].isdigit() and c[:1] != "-" else c for c in ln.split(","))
                 for ln in lines]
        lines = [lines[0]] + [ln.replace('"P', '"P,', 1) for ln in lines[1:]]
    text = "\n".join(ragged(lines, line, kind, sep)) + "\n"
    if fmt == "csv-crlf":
        text = text.replace("\n", "\r\n")
    if fmt == "csv-no-final-newline":
        text = text.rstrip("\n")
    name = {"tsv": "t.tsv", "csv.gz": "t.csv.gz", "tsv.bz2": "t.tsv.bz2", "semicolon-decimal-comma": "t.csv"}
    return name.get(fmt, "t.csv"), text


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["extra", "missing"])
def test_a_ragged_row_is_refused_in_every_text_format(tmp_path, fmt, kind):
    import bz2

    for where, line in WHERE.items():
        name, text = formatted(table(), fmt, line, kind)
        path = tmp_path / name
        raw = text.encode()
        path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else bz2.compress(raw) if name.endswith(".bz2")
                         else raw)
        got = 11 if kind == "extra" else 9
        for read in (lambda: data.read_table(path), lambda: data.load_dataset(path)):
            with pytest.raises(DataError, match=rf"{name}: line {line} has {got} fields but the header has 10"):
                read()


@pytest.mark.parametrize("fmt", ["csv", "csv.gz"])
def test_a_ragged_row_on_standard_input(tmp_path, fmt):
    text = ("\n".join(ragged(lines_of(table()), 40, "missing")) + "\n").encode()
    res = run(["train", "-", "-o", str(tmp_path / "m.mlp"), "--hidden", "4", "--epochs", "2", "-q"],
              input=gzip.compress(text) if fmt == "csv.gz" else text)
    one_line_error(res, "standard input", "line 40 has 9 fields", "header has 10")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("kind", ["extra", "missing"])
def test_a_ragged_row_in_the_features_in_rows_layout(tmp_path, kind):
    df = table()
    feats = [c for c in df.columns if c.startswith("f")]
    transposed = df.set_index("sample_id")[feats].T.rename_axis("gene").reset_index()
    path = tmp_path / "genes.csv"
    path.write_text("\n".join(ragged(lines_of(transposed), 4, kind)) + "\n")
    with pytest.raises(DataError, match="genes.csv: line 4 has"):
        data.read_table(path, features_in_rows=True)


def test_r_write_table_row_names_keep_their_hint(tmp_path):
    """Every data row one field longer than the header: R's write.table row names."""
    path = tmp_path / "r.tsv"
    path.write_text("label\tg1\ns1\tA\t1\ns2\tB\t2\n")
    with pytest.raises(DataError, match="line 2 has 3 fields but the header has 2; one field more than the header"
                                        ".*R's write.table"):
        data.read_table(path)


@pytest.mark.parametrize("quoted", [False, True])
def test_a_separator_after_the_rows_last_value_is_said_as_such(tmp_path, quoted):
    """Rows ending in a separator the header lacks: not R's row names (the advice to name the first column was
    wrong), and read by the quoted path too."""
    path = tmp_path / "t.csv"
    first = '"s1",A,"x, y",' if quoted else "s1,A,1,"
    path.write_text(f"sample_id,label,g1\n{first}\ns2,B,2,\n")
    with pytest.raises(DataError, match="line 2 has 4 fields but the header has 3; one field more than the header, an "
                                        "empty one at its end: a separator after the last value"):
        data.read_table(path)


def test_quoting_line_ends_and_compression_read_the_same_values(tmp_path):
    """What the check must let through: quoted fields holding the separator, quoted line ends, CRLF, gzip,
    no final line end, blank lines; the values are those of the plain file."""
    df = table()
    df["patient_id"] = df["patient_id"].str.replace("P", "P,", regex=False)  # a quoted comma in every row
    df.loc[3, "batch"] = "B1\nnext line"  # a quoted line end
    plain = tmp_path / "plain.csv"
    df.to_csv(plain, index=False)
    text = plain.read_text()
    variants = {
        "crlf.csv": text.replace("\n", "\r\n").replace("B1\r\nnext", "B1\nnext").encode(),
        "gz.csv.gz": gzip.compress(text.encode()),
        "open.csv": text.rstrip("\n").encode(),
        "blank.csv": (text + "\n\n").encode(),
    }
    expected = data.read_table(plain)
    assert expected.loc[3, "batch"] == "B1\nnext line" and expected.loc[0, "patient_id"].startswith("P,")
    for name, raw in variants.items():
        (tmp_path / name).write_bytes(raw)
        got = data.read_table(tmp_path / name)
        pd.testing.assert_frame_equal(got.replace({"batch": {"B1\r\nnext line": "B1\nnext line"}}), expected)
        ds, _ = data.load_dataset(tmp_path / name)
        # the numbers as written (correctly rounded; pandas' default parser may be an ulp away)
        np.testing.assert_array_equal(ds.X, df[ds.feature_names].to_numpy())


@pytest.mark.parametrize("piece", [1, 5, 64])
def test_the_check_cuts_pieces_only_between_records(piece):
    """Pieces smaller than a line, quoted line ends across piece boundaries: the same verdict and line."""
    ok = 'a,b,c\n1,"x\ny,z",3\n"q""q",2,3\r\n\n4,5,6'
    check_stream(io.BytesIO(ok.encode()), ",", 3, "t.csv", piece_bytes=piece)
    bad = ok + '\n7,"8\n9"\n10,11,12\n'
    with pytest.raises(DataError, match="t.csv: line 7 has 2 fields but the header has 3"):
        check_stream(io.BytesIO(bad.encode()), ",", 3, "t.csv", piece_bytes=piece)


# ── a cell that is not a number under the table's decimal mark ──────────────────────────────────────────

FEATURES = [f"f{j:02d}" for j in range(6)]
CELLS = {"first row, first feature": (0, "f00"), "middle, f03": (29, "f03"), "last row, last feature": (59, "f05")}


def decimal_comma_text(df: pd.DataFrame, row: int, column: str, value: str) -> str:
    """`df` as a semicolon-separated table with decimal commas, the cell (row, column) written `value`."""
    lines = df.to_csv(index=False, sep=";", decimal=",").splitlines()
    j = lines[0].split(";").index(column)
    fields = lines[row + 1].split(";")
    fields[j] = value
    lines[row + 1] = ";".join(fields)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def model_path(good):
    return good["model"]


@pytest.mark.parametrize("value", ["0.5", "1.25e-3", "n.d.", "1,2,3"])
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("decimal", [[], ["--decimal", "comma"]])
def test_a_stray_cell_of_a_decimal_comma_table_is_named(tmp_path, model_path, value, cell, decimal):
    """One cell written otherwise (a dot among decimal commas, or not a number): train, cv and predict name
    its column, row, sample id and value, whether the decimal comma was detected or given."""
    df = table()
    row, column = CELLS[cell]
    path = tmp_path / "dc.tsv"
    path.write_text(decimal_comma_text(df, row, column, value).replace(";", "\t"))
    sample = df["sample_id"][row]
    needles = [str(path), f"feature column {column!r}", f"non-numeric value {value!r}", f"row {row + 1} (id {sample!r})"]
    for args in (["train", str(path), "-o", str(tmp_path / "m.mlp"), "--hidden", "4", "--epochs", "2"],
                 ["cv", str(path), "--folds", "3", "--hidden", "4", "--epochs", "2"],
                 ["predict", model_path, str(path), "-o", str(tmp_path / "p.csv")],
                 ["evaluate", model_path, str(path), "-o", str(tmp_path / "e.json")]):
        res = run([*args, *decimal, "-q"])
        one_line_error(res, *needles)
        if value == "0.5":
            assert "decimal commas" in res.output and "'0,5'" in res.output
    assert os.listdir(tmp_path) == ["dc.tsv"]


def test_the_stray_cell_is_named_in_a_later_piece_and_through_the_library(tmp_path, model_path):
    """A long table read in many pieces: the row number counts from the file's first row."""
    df = make_table(task="multiclass", n_patients=400, n_features=6, seed=4)  # 1,200 rows
    path = tmp_path / "long.csv"
    path.write_text(decimal_comma_text(df, 1000, "f02", "0.75"))
    res = run(["predict", model_path, str(path), "--chunk-mb", "0.05", "-o", str(tmp_path / "p.csv"), "-q"])
    one_line_error(res, "'f02'", "'0.75'", "row 1001 (id 'S1000')")
    with pytest.raises(DataError, match=r"'f02' holds the non-numeric value '0.75' at row 1001 \(id 'S1000'\)"):
        data.load_dataset(path)


def test_a_stray_cell_in_the_features_in_rows_layout_names_the_sample(tmp_path, model_path):
    df = table()
    transposed = df.set_index("sample_id")[FEATURES].T.rename_axis("gene").reset_index()
    text = transposed.to_csv(index=False, sep=";", decimal=",")
    lines = text.splitlines()
    fields = lines[4].split(";")  # the gene f03; sample column 8 is S0007
    fields[8] = "0.5"
    lines[4] = ";".join(fields)
    path = tmp_path / "genes.csv"
    path.write_text("\n".join(lines) + "\n")
    for args in (["predict", model_path, str(path), "--features-in-rows", "-o", str(tmp_path / "p.csv")],
                 ["train", str(path), "--features-in-rows", "--target", "f00", "-o", str(tmp_path / "m.mlp")]):
        one_line_error(run([*args, "-q"]), "'f03'", "'0.5'", "id 'S0007'")


def test_a_decimal_point_table_names_a_stray_cell_too(tmp_path):
    """The same rule on an ordinary CSV: a typo in a numeric column is named, a text column is listed."""
    df = table()
    df["f04"] = df["f04"].astype(object)
    df.loc[17, "f04"] = "1.2.3"
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"t.csv: feature column 'f04' holds the non-numeric value '1.2.3' at "
                                        r"row 18 \(id 'S0017'\)"):
        data.load_dataset(tmp_path / "t.csv")
    df = table()
    df["tissue"] = "lung"  # a text column: listed, with the advice to drop it
    df.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(DataError, match=r"feature columns must be numeric: 'tissue'.*--drop"):
        data.load_dataset(tmp_path / "text.csv")


def test_a_header_cell_holding_a_line_end_is_one_header(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text('sample_id,label,"f\n1",f2\nS1,A,1,2\nS2,B,3,4\n')
    assert list(data.read_table(path).columns) == ["sample_id", "label", "f\n1", "f2"]
    path.write_text('sample_id,label,"f\n1",f2\nS1,A,1,2\nS2,B,3\n')
    with pytest.raises(DataError, match="line 4 has 3 fields but the header has 4"):
        data.read_table(path)


@pytest.mark.parametrize("extra", ["macosx", "folder"])
def test_a_zip_with_a_macos_or_folder_entry_reads_as_in_predict(tmp_path, good, extra):
    """Finder's __MACOSX/ resource files and folder entries are skipped by every reader of a .zip (pandas
    refused them: "Multiple files found in ZIP file"), as a table and as a sample sheet."""
    import zipfile

    df = table()
    member = "export/t.csv" if extra == "folder" else "t.csv"

    def zipped(name: str, frame: pd.DataFrame) -> str:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            if extra == "folder":
                archive.writestr("export/", b"")
            archive.writestr(member, frame.to_csv(index=False))
            if extra == "macosx":
                archive.writestr("__MACOSX/._t.csv", b"\x00\x05\x16\x07 resource fork")
        return str(path)

    expected, _ = data.load_dataset(good["data"])
    ds, _ = data.load_dataset(zipped("t.csv.zip", df))
    np.testing.assert_array_equal(ds.X, expected.X)
    assert list(ds.ids) == list(expected.ids)
    sheet = zipped("sheet.csv.zip", df[["sample_id", "patient_id", "label"]])
    df.drop(columns=["patient_id", "label", "batch"]).to_csv(tmp_path / "expr.csv", index=False)
    joined, _ = data.load_dataset(tmp_path / "expr.csv", samples=sheet)
    assert list(joined.y) == list(expected.y) and list(joined.groups) == list(expected.groups)
    res = run(["train", str(tmp_path / "t.csv.zip"), "-o", str(tmp_path / "z.mlp"), "--hidden", "4", "--epochs", "2",
               "--folds", "1", "-q"])
    assert res.exit_code == 0, res.output


def test_an_empty_sample_id_is_named_by_file_and_row_as_predict_names_it(tmp_path):
    """A row of empty fields ("\\t\\t\\t") gave train "--id column 'sample_id' has 1 missing values" where predict
    named the file and the row."""
    df = make_table("binary", seed=0, n_patients=12, n_features=3)
    path = tmp_path / "t.tsv"
    text = df.to_csv(sep="\t", index=False).splitlines()
    text.insert(6, "\t" * (df.shape[1] - 1))  # data row 6 (line 7, after the header): every field empty
    path.write_text("\n".join(text) + "\n")
    out = tmp_path / "m.mlp"
    # (a row of separators alone is named as such, by its line, before its empty id is: delete such lines)
    assert_clean_error(run(["train", str(path), "--epochs", "2", "-q", "-o", str(out)]),
                       "t.tsv: line 7 holds separators but no value")
    assert not out.exists()


def test_a_comment_line_above_the_header_is_hinted_in_train_and_predict(tmp_path):
    """featureCounts-style output starts with "# Program:..."; read as the header, it gave a bare "--target column
    not found" (train) or "lacks every feature" (predict). Both now say the '#' line may be a comment to remove."""
    df = make_table("binary", seed=0, n_patients=12, n_features=3)
    clean, commented = tmp_path / "clean.tsv", tmp_path / "counts.tsv"
    df.to_csv(clean, sep="\t", index=False)
    commented.write_text("# Program:featureCounts v2.0.1; Command:featureCounts -a genes.gtf\n" + clean.read_text())
    model = tmp_path / "m.mlp"
    assert_clean_error(run(["train", str(commented), "--epochs", "2", "-q", "-o", str(model)]),
                       "--target column 'label' not found", "header read starts with '#'", "grep -v '^#'")
    assert not model.exists()
    assert run(["train", str(clean), "--epochs", "2", "-q", "-o", str(model)]).exit_code == 0
    out = tmp_path / "p.csv"
    assert_clean_error(run(["predict", str(model), str(commented), "-o", str(out), "-q"]),
                       "lacks 3 of the 3 features", "header read starts with '#'")
    assert not out.exists()
    res = run(["train", str(clean), "--target", "nope", "--epochs", "2", "-q", "-o", str(model)])
    assert res.exit_code == 1 and "'#'" not in res.output  # no hint when the header does not start with '#'


def test_duplicate_sample_ids_name_the_file(tmp_path):
    """"duplicate sample ids in --id column 'sample_id'" did not say which file (with --val-data or --samples
    there are two or three)."""
    frame = make_table()
    frame.loc[1, "sample_id"] = frame.loc[0, "sample_id"]
    path = tmp_path / "dup.csv"
    frame.to_csv(path, index=False)
    assert_clean_error(run(["train", str(path), "-o", str(tmp_path / "m.mlp")]), f"{path}: duplicate sample ids")


def test_a_row_without_any_feature_value_is_refused(tmp_path):
    """A spreadsheet's blank lines below the data (",,,,") were predicted as samples from the training medians
    by a model trained with --impute (exit 0; a note counted the imputed values)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(5, 1, (100, 5)).round(3), columns=[f"G{i}" for i in range(5)])
    train_table = X.assign(label=np.where(X.G0 > 5, "A", "B"))
    train_table.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--impute", "median", "--epochs", "2", "--folds", "1", "--no-group",
                "-q", "-o", str(model)]).exit_code == 0
    (tmp_path / "new.csv").write_text(X.head(3).to_csv(index=False) + ",,,,\n,,,,\n")
    out = tmp_path / "p.csv"
    res = run(["predict", str(model), str(tmp_path / "new.csv"), "-o", str(out)])
    assert res.exit_code == 1 and not out.exists()
    assert "new.csv: line 5 holds separators but no value (2 such lines" in res.output.splitlines()[-1]
    # a row with some values is imputed as before
    (tmp_path / "new.csv").write_text(X.head(3).to_csv(index=False) + "1.0,,,,\n")
    res = run(["predict", str(model), str(tmp_path / "new.csv"), "-o", str(out)])
    assert res.exit_code == 0 and len(pd.read_csv(out)) == 4


def test_one_imputed_value_is_said_in_the_singular(tmp_path):
    """MASS::biopsy's held-out fifth has one missing V6: predict said "1 missing feature values imputed"."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(5, 1, (100, 5)).round(3), columns=[f"G{i}" for i in range(5)])
    X.assign(label=np.where(X.G0 > 5, "A", "B")).to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--impute", "median", "--epochs", "2", "--folds", "1", "--no-group",
                "-q", "-o", str(model)]).exit_code == 0
    (tmp_path / "new.csv").write_text(X.head(3).to_csv(index=False) + "1.0,2.0,3.0,4.0,\n")
    res = run(["predict", str(model), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "· 1 missing feature value imputed with the training medians" in res.output, res.output
    (tmp_path / "new.csv").write_text(X.head(3).to_csv(index=False) + "1.0,2.0,3.0,,\n")
    res = run(["predict", str(model), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv")])
    assert "· 2 missing feature values imputed" in res.output, res.output


def test_the_missing_values_error_names_the_first(small, tmp_path):
    frame = pd.read_csv(small / "t.csv")
    frame.loc[6, "g2"] = np.nan
    frame.to_csv(tmp_path / "na.csv", index=False)
    res = run(["train", str(tmp_path / "na.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "the first in 'g2' at row 7 (id 's6')" in res.output.splitlines()[-1]
    assert res.output.splitlines()[-1].startswith(f"Error: {tmp_path / 'na.csv'}: missing values")  # which file
    # an .h5ad file's dense matrix: the same, naming the file
    anndata = pytest.importorskip("anndata")
    X = frame[["g1", "g2", "g3"]].to_numpy(np.float32)
    obs = pd.DataFrame({"label": frame["label"].astype(str).to_numpy()}, index=frame["sample_id"].astype(str))
    anndata.AnnData(X, obs=obs, var=pd.DataFrame(index=["g1", "g2", "g3"])).write_h5ad(tmp_path / "na.h5ad")
    res = run(["train", str(tmp_path / "na.h5ad"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and res.output.splitlines()[-1].startswith(
        f"Error: {tmp_path / 'na.h5ad'}: missing values in 1 feature column: 'g2' (1); the first in 'g2' at row 7 (id 's6')")
    assert not (tmp_path / "m.mlp").exists()


def test_messages_name_the_file_and_the_fix(small, tmp_path):
    """A value beyond float32 named no file; a column of quoted "8,000.0" was "must be numeric ... pass them to
    --drop"; a .gct table was told to grep out '#' lines, which leaves its sizes line."""
    frame = pd.read_csv(small / "t.csv")
    big = frame.copy()
    big.loc[4, "g1"] = 1e39
    big.to_csv(tmp_path / "big.csv", index=False)
    res = run(["train", str(tmp_path / "big.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and res.output.splitlines()[-1].startswith(f"Error: {tmp_path / 'big.csv'}: feature column 'g1'")
    thousands = frame.copy()
    thousands["g1"] = [f"{v * 1000 + 5000:,.1f}" for v in frame["g1"]]
    thousands.to_csv(tmp_path / "th.csv", index=False)
    res = run(["train", str(tmp_path / "th.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "holds numbers written with thousands separators" in res.output
    lines = ["#1.2", "3\t4", "Name\tDescription\tS0\tS1\tS2\tS3"] + [f"G{g}\tna\t1\t2\t3\t4" for g in range(3)]
    for name in ("x.gct", "x.tsv"):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        res = run(["train", str(tmp_path / name), "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
        assert res.exit_code == 1 and "GenePattern .gct" in res.output and "tail -n +3" in res.output


def test_a_space_separated_table_is_named(small, tmp_path):
    """R's write.table (spaces, quotes, row names): "--target column 'label' not found; available columns:
    'patient_id "batch" ...' (1 in all)" without saying why."""
    frame = pd.read_csv(small / "t.csv").head(20)
    lines = [" ".join(f'"{c}"' for c in frame.columns)]
    lines += [f'"{i + 1}" ' + " ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in row)
              for i, row in frame.iterrows()]
    (tmp_path / "r.txt").write_text("\n".join(lines) + "\n")
    res = run(["train", str(tmp_path / "r.txt"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "a space-separated file, as R's write.table writes by default?" in res.output


def test_the_missing_values_error_names_the_first_in_row_order(small, tmp_path):
    frame = pd.read_csv(small / "t.csv")
    frame.loc[4, "g3"] = np.nan
    frame.loc[7, "g1"] = np.nan
    frame.to_csv(tmp_path / "na.csv", index=False)
    res = run(["train", str(tmp_path / "na.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "the first in 'g3' at row 5 (id 's4')" in res.output.splitlines()[-1]


@pytest.mark.parametrize("token", ["nA", "NuLL", "-NAN", "+NAN", "n/A", "nAn"])
def test_a_missing_marker_in_any_case_or_sign(small, tmp_path, token):
    frame = pd.read_csv(small / "t.csv").astype({"g2": object})
    frame.loc[3, "g2"] = token
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "missing values in 1 feature column: 'g2' (1)" in res.output.splitlines()[-1]
