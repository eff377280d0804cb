"""Hostile tables for `predict` and `evaluate`: rows with a field too many or too few, repeated or missing
ids, quoting and line-end quirks that must not change a number, and memory that follows the budget
(--chunk-mb) rather than the table's width or length."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli import model_io
from mlpcli import predict as lib
from mlpcli.cli import cli
from mlpcli.config import TrainOptions
from mlpcli.errors import DataError
from mlpcli.pipeline import train
from mlpcli.data.pieces import PieceSize
from mlpcli.data.streamed import open_table
from tables import make_table, lines_of, ragged
from cli_helpers import assert_clean_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small multiclass model (12 features f00..f11; id sample_id, group patient_id, batch batch)."""
    root = tmp_path_factory.mktemp("hostile")
    path = root / "train.csv"
    make_table(task="multiclass", seed=1).to_csv(path, index=False)
    fitted = train(str(path), TrainOptions(target=["label"], hidden=[8], epochs=20, lr=0.01, seed=0, folds=1))
    model_path = root / "m.mlp"
    model_io.save(fitted.model, model_path)
    return str(model_path)


def cohort(n_patients: int = 30) -> pd.DataFrame:
    """90 new samples with labels; sample_id unique."""
    df = make_table(task="multiclass", seed=7, n_patients=n_patients)
    df["sample_id"] = "N" + df["sample_id"]
    return df


def no_leftovers(directory) -> bool:
    return not [p for p in os.listdir(directory) if p.endswith(".tmp") or p.startswith("out")]


def one_line_error(result, *needles):
    assert_clean_error(result, *needles)
    message = result.output.strip().splitlines()[-1]
    assert message.count("Error:") == 1 and len(message) < 400, message


def run(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


# ── a field too many or too few ──────────────────────────────────────────────────────────────────────────


WHERE = {"first": 2, "middle": 47, "last": 91}  # file lines of a 90-row table (the header is line 1)
CHUNKS = {"default": [], "bytes": ["--chunk-mb", "0.05"]}  # rows (--chunksize): on standard input below


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("kind", ["extra", "missing"])
@pytest.mark.parametrize("where", list(WHERE))
@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz", "csv-no-id", "csv-crlf", "csv-quoted"])
def test_a_ragged_row_is_an_error_naming_file_and_line(tmp_path, model, command, kind, where, fmt):
    df = cohort()
    if fmt == "csv-no-id":
        df = df.drop(columns=["sample_id"])
    sep = "\t" if fmt == "tsv" else ","
    lines = lines_of(df, sep)
    if fmt == "csv-quoted":  # R's write.csv: every text field quoted; a quoted comma is not a separator
        lines = [",".join(f'"{c}"' if not c[:1].isdigit() and not c[:1] == "-" else c for c in line.split(","))
                 for line in lines]
        lines = [lines[0]] + [line.replace('"P', '"P,', 1) for line in lines[1:]]
    line = WHERE[where]
    text = "\n".join(ragged(lines, line, kind, sep)) + "\n"
    if fmt == "csv-crlf":
        text = text.replace("\n", "\r\n")
    name = {"csv.gz": "t.csv.gz", "tsv": "t.tsv"}.get(fmt, "t.csv")
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if fmt == "csv.gz" else text.encode())
    width = len(lines[0].split(sep))
    got = width + 1 if kind == "extra" else width - 1
    for chunks in CHUNKS.values():
        args = [command, model, str(path), *chunks, "-q"]
        out = tmp_path / ("out.csv" if command == "predict" else "out.json")
        res = run([*args, "-o", str(out)])
        one_line_error(res, str(path), f"line {line} has {got} fields", f"header has {width}")
        assert no_leftovers(tmp_path), os.listdir(tmp_path)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("kind", ["extra", "missing"])
@pytest.mark.parametrize("gz", [False, True])
def test_a_ragged_row_on_standard_input(tmp_path, model, command, kind, gz):
    lines = lines_of(cohort())
    text = ("\n".join(ragged(lines, 60, kind)) + "\n").encode()
    args = [command, model, "-", "--chunksize", "7", "-q"]
    if command == "evaluate":
        args += ["-o", str(tmp_path / "out.json")]
    res = run(args, input=gzip.compress(text) if gz else text)
    one_line_error(res, "standard input", "line 60 has")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("kind", ["extra", "missing"])
@pytest.mark.parametrize("stdin", [False, True])
def test_a_ragged_row_in_the_features_in_rows_layout(tmp_path, model, kind, stdin):
    df = cohort()
    feats = [c for c in df.columns if c.startswith("f")]
    transposed = df.set_index("sample_id")[feats].T.rename_axis("gene").reset_index()
    lines = ragged(lines_of(transposed), 4, kind)  # the gene f02: one sample would get another's value
    text = "\n".join(lines) + "\n"
    path = tmp_path / "genes.csv"
    path.write_text(text)
    for command in ("predict", "evaluate"):
        source = "-" if stdin else str(path)
        out = tmp_path / ("out.csv" if command == "predict" else "out.json")
        res = run([command, model, source, "--features-in-rows", "-o", str(out), "-q"],
                  input=text if stdin else None)
        one_line_error(res, "standard input" if stdin else str(path), "line 4 has")
    assert sorted(os.listdir(tmp_path)) == ["genes.csv"]
    # the library's notebook entry point reads the same way
    with pytest.raises(DataError, match="line 4 has"):
        lib.prepare(model_io.load(model), str(path), roles=lib.RoleFlags(features_in_rows=True))


def test_the_row_that_shifted_values_no_longer_predicts(tmp_path, model):
    """The issue's example: S9,A,0.1,99.0,0.3,... was read with its values one gene to the right."""
    df = cohort()
    path = tmp_path / "c.csv"
    path.write_text("\n".join(ragged(lines_of(df), 11, "extra")) + "\n")
    with pytest.raises(DataError, match=r"line 11 has 17 fields but the header has 16"):
        pd.concat(lib.predict_stream(model_io.load(model), str(path)))
    res = run(["predict", model, str(path), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 1 and not (tmp_path / "p.csv").exists()


def test_blank_and_whitespace_lines_and_a_missing_final_line_end_are_fine(tmp_path, model):
    df = cohort()
    lines = lines_of(df)
    ref = pd.concat(lib.predict_stream(model_io.load(model), df))
    variants = {
        "trailing": "\n".join(lines) + "\n\n\n",
        "trailing-spaces": "\n".join(lines) + "\n   \n\t\n",
        "inside": "\n".join(lines[:30] + ["", "  "] + lines[30:]) + "\n",
        "no-final-newline": "\n".join(lines),
        "crlf": "\r\n".join(lines) + "\r\n\r\n",
    }
    m = model_io.load(model)
    for name, text in variants.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text, newline="")
        for chunks in ({}, {"chunksize": 7}, {"chunk_mb": 0.05}):
            got = pd.concat(lib.predict_stream(m, str(path), **chunks))
            pd.testing.assert_frame_equal(got.reset_index(drop=True), ref.reset_index(drop=True), check_exact=True)


# ── the same numbers however the text is written ─────────────────────────────────────────────────────────


def _quoted_everywhere(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, quoting=1)  # csv.QUOTE_ALL: numbers quoted too


@pytest.mark.parametrize("variant", ["plain", "tsv", "quote-all", "quoted-text", "quoted-comma", "padded", "na-cells",
                                     "exponents", "semicolon-decimal-comma", "tab-decimal-comma"])
def test_text_variants_give_the_dataframe_predictions_bit_for_bit(tmp_path, model, variant):
    df = cohort()
    m = model_io.load(model)
    feats = list(m.feature_names)
    if variant == "exponents":
        df[feats] = df[feats] * 1e-5
    name = "c.csv"
    if variant == "tsv":
        name = "c.tsv"
        text = df.to_csv(index=False, sep="\t")
    elif variant == "quote-all":
        text = _quoted_everywhere(df)
    elif variant == "quoted-text":
        text = df.to_csv(index=False, quoting=2)  # csv.QUOTE_NONNUMERIC
    elif variant == "quoted-comma":  # ids holding the separator, quoted: read by the CSV parser
        df["sample_id"] = df["sample_id"] + ", rep 1"
        text = df.to_csv(index=False)
    elif variant.endswith("decimal-comma"):  # a comma-decimal locale's export: 0,123; ids keep their commas and dots
        df["sample_id"] = df["sample_id"] + ".1,a"
        text = df.to_csv(index=False, sep=";" if variant.startswith("semicolon") else "\t", decimal=",")
        assert "," in text.splitlines()[1].split(";" if variant.startswith("semicolon") else "\t")[5]
    elif variant == "padded":  # spaces around numbers: pyarrow's cast refuses them, its CSV reader trims them
        padded = df.astype({"f05": object})
        padded["f05"] = [f" {v!r} " for v in df["f05"]]
        text = padded.to_csv(index=False)
    else:
        text = df.to_csv(index=False)
    if variant == "na-cells":  # unused column cells missing: nothing the model reads
        df["patient_id"] = np.where(np.arange(len(df)) % 3 == 0, None, df["patient_id"])
        text = df.to_csv(index=False, na_rep="NA")
    path = tmp_path / name
    path.write_text(text)
    ref = pd.concat(lib.predict_stream(m, df))
    for chunks in ({}, {"chunksize": 1}, {"chunk_mb": 0.05}):
        got = pd.concat(lib.predict_stream(m, str(path), **chunks))
        pd.testing.assert_frame_equal(got.reset_index(drop=True), ref.reset_index(drop=True), check_exact=True)


def test_missing_and_non_numeric_feature_cells_are_named(tmp_path, model):
    df = cohort()
    for cell, needle in (("NA", "missing value at row 40"), ("", "missing value at row 40"),
                         ("abc", "'abc' at row 40"), ("inf", "infinite value at row 40")):
        bad = df.astype({"f03": object})
        bad.loc[39, "f03"] = cell
        path = tmp_path / "bad.csv"
        bad.to_csv(path, index=False)
        for chunks in ([], ["--chunksize", "9"], ["--chunk-mb", "0.05"]):
            one_line_error(run(["predict", model, str(path), "-o", str(tmp_path / "out.csv"), *chunks]), "f03", needle)
        assert no_leftovers(tmp_path)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_ragged_row_of_a_decimal_comma_table_is_counted_on_its_separator(tmp_path, model, sep):
    lines = ragged(lines_of(cohort(), sep=sep), 47, "extra", sep=sep)
    path = tmp_path / "c.csv"
    path.write_text("\n".join(lines).replace(".", ",") + "\n")  # decimal commas (ids hold no dots)
    for chunks in ([], ["--chunk-mb", "0.05"]):
        one_line_error(run(["predict", model, str(path), "-o", str(tmp_path / "out.csv"), *chunks]), "c.csv",
                       "line 47", "fields")
    assert no_leftovers(tmp_path)


def test_evaluate_reads_labels_of_every_type_as_from_a_dataframe(tmp_path):
    """Targets of text, integer and float type are read by the tokenizer as pyarrow's CSV reader types them."""
    for task, string_labels in (("binary", False), ("binary", True), ("regression", True)):
        df = make_table(task=task, seed=1, string_labels=string_labels)
        path = tmp_path / f"{task}.csv"
        df.to_csv(path, index=False)
        m = train(str(path), TrainOptions(target=["label"], hidden=[8], epochs=10, seed=0, folds=1)).model
        new = make_table(task=task, seed=5, string_labels=string_labels)
        new_path = tmp_path / f"{task}_new.csv"
        new.to_csv(new_path, index=False)
        comma_path = tmp_path / f"{task}_comma.csv"  # semicolons and decimal commas, targets included
        new.to_csv(comma_path, index=False, sep=";", decimal=",")
        from_frame = lib.evaluate(m, new).metrics
        for source in (new_path, comma_path):
            from_text = lib.evaluate(m, str(source), chunk_mb=0.05).metrics
            assert (json.dumps(from_text, sort_keys=True, default=str)
                    == json.dumps(from_frame, sort_keys=True, default=str)), source


# ── ids ──────────────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("fmt", ["csv", "parquet", "stdin"])
@pytest.mark.parametrize("rows", [(4, 9), (3, 88)])  # in one piece, or pieces apart
def test_duplicate_ids_are_an_error_naming_the_id_and_the_file(tmp_path, model, command, fmt, rows):
    df = cohort()
    first, second = rows
    df.loc[second - 1, "sample_id"] = df.loc[first - 1, "sample_id"]
    repeated = df.loc[first - 1, "sample_id"]
    path = tmp_path / f"d.{'parquet' if fmt == 'parquet' else 'csv'}"
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    source = "-" if fmt == "stdin" else str(path)
    out = tmp_path / ("out.csv" if command == "predict" else "out.json")
    res = run([command, model, source, "--chunksize", "10", "-o", str(out)],
              input=path.read_bytes() if fmt == "stdin" else None)
    one_line_error(res, f"duplicate sample id {repeated!r}", "standard input" if fmt == "stdin" else str(path),
                   f"rows {first} and {second}")
    assert no_leftovers(tmp_path)


def test_ids_missing_or_repeated_under_another_id_column_and_in_dataframes(tmp_path, model):
    m = model_io.load(model)
    df = cohort()
    df.loc[20, "sample_id"] = None
    with pytest.raises(DataError, match=r"id column 'sample_id' is empty at row 21"):
        pd.concat(lib.predict_stream(m, df))
    path = tmp_path / "m.csv"
    df.to_csv(path, index=False)
    one_line_error(run(["predict", model, str(path), "-o", str(tmp_path / "out.csv")]), "is empty at row 21", str(path))
    # --id names another column: its repeats count (patient_id repeats: three samples a patient)
    df = cohort()
    df.to_csv(path, index=False)
    one_line_error(run(["predict", model, str(path), "--id", "patient_id", "--no-group", "-o", str(tmp_path / "o.csv")]),
                   "duplicate sample id 'P000'", "rows 1 and 2")
    # 1, 1.0 and "1" are one id, as in training
    ints = cohort().assign(sample_id=list(range(89)) + [3.0])
    with pytest.raises(DataError, match=r"duplicate sample id '3'.*rows 4 and 90"):
        pd.concat(lib.predict_stream(m, ints))
    with pytest.raises(DataError, match="duplicate sample id"):
        lib.prepare(m, ints)
    assert no_leftovers(tmp_path)


def test_without_an_id_column_repeated_rows_are_fine(tmp_path, model):
    df = cohort().drop(columns=["sample_id"])
    df = pd.concat([df, df.iloc[:5]], ignore_index=True)  # the same sample twice: rows are numbered
    path = tmp_path / "noid.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "p.csv"
    res = run(["predict", model, str(path), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out)
    assert list(got["row"]) == list(range(1, len(df) + 1))


# ── options ──────────────────────────────────────────────────────────────────────────────────────────────


def test_chunk_options_are_usage_errors_when_wrong(tmp_path, model):
    path = tmp_path / "c.csv"
    cohort().to_csv(path, index=False)
    for args in (["--chunk-mb", "0"], ["--chunk-mb", "-1"], ["--chunk-mb", "nan"], ["--chunk-mb", "inf"],
                 ["--chunksize", "0"], ["--chunksize", "5", "--chunk-mb", "8"]):
        res = run(["predict", model, str(path), *args])
        assert res.exit_code == 2 and "Traceback" not in res.output, (args, res.output)
        assert "--chunk" in res.output
    m = model_io.load(model)
    for kw in ({"chunk_mb": 0}, {"chunk_mb": float("nan")}, {"chunksize": 0}, {"chunksize": 2.5}):
        with pytest.raises(Exception, match="--chunk"):
            lib.predict_stream(m, str(path), **kw)


# ── memory and chunking by bytes ─────────────────────────────────────────────────────────────────────────


def _wide_table(n: int, d: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = np.round(np.exp(rng.normal(size=(n, d))), 3)
    df = pd.DataFrame(X, columns=[f"g{j:05d}" for j in range(d)])
    df.insert(0, "sample_id", [f"S{i:05d}" for i in range(n)])
    df.insert(1, "label", np.where(X[:, 0] > X[:, 1], "hi", "lo"))
    return df


def test_pieces_follow_the_byte_budget_for_wide_and_long_rows(tmp_path):
    """Pieces of text hold about the same bytes whatever the row width: few wide rows, many narrow ones."""
    budget = PieceSize(nbytes=1 << 20)
    for n, d in ((60, 3000), (6000, 30)):
        df = _wide_table(n, d)
        path = tmp_path / f"t{d}.csv"
        df.to_csv(path, index=False)
        table = open_table(str(path))

        class Plan:  # every column: features as numbers, the id as text
            present_names = list(df.columns[2:])
            label_columns = ["sample_id"]
            roles = type("R", (), {"target": []})()

            def usecols(self):
                return ["sample_id", *self.present_names]

            def dtypes(self):
                return {"sample_id": str}

        sizes = [len(p) for p in table.pieces(budget, Plan(), lambda parsed, first: parsed)]
        row_bytes = os.path.getsize(path) / n
        assert sum(sizes) == n
        most = budget.text_bytes(1) // row_bytes + 1  # rows in the largest piece the budget allows
        assert len(sizes) > 1 and max(sizes) <= most, (sizes, most)


@pytest.mark.parametrize("folds", [1, 3])
def test_chunked_equals_one_shot_for_a_wide_model_with_small_network_blocks(tmp_path, monkeypatch, folds):
    """Network blocks shrink with the input width (Model.row_block); with blocks of 40 rows here, every
    chunking gives the numbers of model.predict_output(X) bit for bit."""
    monkeypatch.setattr(model_io, "ROW_BLOCK_BYTES", 8 * 300 * 40)
    df = _wide_table(130, 300, seed=1)
    path = tmp_path / "wide.csv"
    df.to_csv(path, index=False)
    fitted = train(str(path), TrainOptions(target=["label"], hidden=[8], epochs=2, seed=0, folds=folds))
    m = fitted.model
    assert m.row_block == 40
    feats = list(m.feature_names)
    expected = m.predict_output(df[feats].to_numpy(dtype=float)).astype(np.float32)[:, -1]  # P(second class)
    shuffled = df[["sample_id", *feats[::-1], "label"]]  # columns by name, in another order
    shuffled.to_csv(path, index=False)
    shuffled.to_parquet(tmp_path / "wide.parquet", index=False)
    for source in (str(path), str(tmp_path / "wide.parquet"), shuffled):
        for chunks in ({}, {"chunksize": 1}, {"chunksize": 7}, {"chunk_mb": 0.05}, {"chunk_mb": 0.3}):
            got = pd.concat(lib.predict_stream(m, source, **chunks))
            np.testing.assert_array_equal(got[f"prob_{m.classes[1]}"].to_numpy(), expected)


_PEAK = """
import os, resource, sys
from mlpcli import model_io, predict as lib
model = model_io.load(sys.argv[1])
before = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20  # resident now
n = lib.write_predictions(lib.predict_stream(model, sys.argv[2], chunk_mb=float(sys.argv[3])), sys.argv[4])
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before)  # peak growth, MiB
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident size from /proc (Linux)")
def test_peak_memory_follows_the_budget_not_the_table(tmp_path):
    """A wide table ten times longer costs (nearly) no more memory to predict: the rows are read in pieces
    of the budget and the network sees blocks of at most 32 MiB. Read whole, the long table would need
    some 100 MB more (its values alone are 36 MB as float64, its text 30 MB)."""
    df = _wide_table(1500, 3000, seed=2)
    big, small = tmp_path / "big.csv", tmp_path / "small.csv"
    df.to_csv(big, index=False)
    df.iloc[:150].to_csv(small, index=False)
    fitted = train(str(small), TrainOptions(target=["label"], hidden=[8], epochs=2, seed=0, folds=1))
    model_path = tmp_path / "w.mlp"
    model_io.save(fitted.model, model_path)
    env = {**os.environ, "PYTHONPATH": ROOT}
    growth = {}
    for name, path in (("small", small), ("big", big)):
        proc = subprocess.run([sys.executable, "-c", _PEAK, str(model_path), str(path), "8", str(tmp_path / "p.csv")],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        rows, growth[name] = proc.stdout.split()
        assert int(rows) == (1500 if name == "big" else 150)
    assert float(growth["big"]) - float(growth["small"]) < 40, growth


@pytest.mark.parametrize("chunksize", [None, "7"])
def test_a_stray_opening_quote_is_an_error_not_the_rest_of_the_file_dropped(model, tmp_path, chunksize):
    """pyarrow's parser (line ends allowed in quoted fields) accepted a quoted field still open at the end of
    the file: every row after a stray '"' became part of one field, and predict wrote the rows before it and
    exited 0. A quote inside a field (5" tall) is text, as before."""
    df = cohort()
    df["note"] = "ok"
    lines = lines_of(df)
    at = 40  # data row 40: file line 41
    lines[at] = lines[at][:-len("ok")] + '"see chart'  # the note field opens a quote it never closes
    (tmp_path / "stray.csv").write_text("\n".join(lines) + "\n")
    extra = ["--chunksize", chunksize] if chunksize else []
    out = tmp_path / "out.csv"
    res = run(["predict", model, str(tmp_path / "stray.csv"), "-o", str(out), *extra])
    one_line_error(res, "stray.csv", "line 41", "never closed")
    assert not out.exists() and no_leftovers(tmp_path)
    lines[at] = lines[at].replace('"see chart', '5" tall')
    (tmp_path / "inch.csv").write_text("\n".join(lines) + "\n")
    res = run(["predict", model, str(tmp_path / "inch.csv"), "-o", str(out), *extra])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out)) == len(df)


# ── labels, stored indexes and the row layout ────────────────────────────────────────────────────────────


@pytest.mark.parametrize("chunksize", [None, "10", "1"])
def test_a_missing_label_names_the_file_and_its_first_row_whatever_the_chunking(tmp_path, model, chunksize):
    """Labels missing in rows 4 and 51: evaluate names the file and row 4 however the rows are cut into pieces
    (it said "missing values in 2 rows", or "in 1 rows" with --chunksize 10, naming no file)."""
    df = cohort()
    df.loc[[3, 50], "label"] = None
    path = tmp_path / "nolabel.csv"
    df.to_csv(path, index=False)
    size = ["--chunksize", chunksize] if chunksize else []
    one_line_error(run(["evaluate", model, str(path), *size, "-o", str(tmp_path / "out.json")]),
                   str(path), "'label'", "row 4 (id 'NS0003')")
    # the label from a sample sheet, with rows the sheet lacks before it in the same piece
    df[["sample_id", "label"]].iloc[2:].to_csv(tmp_path / "sheet.csv", index=False)
    df.drop(columns=["label"]).to_csv(tmp_path / "expr.csv", index=False)
    one_line_error(run(["evaluate", model, str(tmp_path / "expr.csv"), "--samples", str(tmp_path / "sheet.csv"),
                        *size, "-o", str(tmp_path / "out.json")]), str(tmp_path / "sheet.csv"), "row 4 (id 'NS0003')")
    assert no_leftovers(tmp_path)


def test_a_stored_pandas_index_gives_the_ids_predict_and_train_both_see(tmp_path, model):
    """An unnamed stored index (``set_index("sample_id").rename_axis(None)``) is the sample ids in predict and
    evaluate as in train (predict numbered the rows, train saw a column 'index'); a named one no longer stops
    evaluate with an internal error when a label column is not text."""
    df = cohort()
    df.to_parquet(tmp_path / "plain.parquet", index=False)
    df.set_index("sample_id").rename_axis(None).to_parquet(tmp_path / "unnamed.parquet")
    df.assign(patient_id=df["patient_id"].str[1:].astype(int)).set_index("sample_id").to_parquet(
        tmp_path / "named.parquet")
    out = tmp_path / "p.csv"
    outputs = []
    for name in ("plain", "unnamed", "named"):
        res = run(["predict", model, str(tmp_path / f"{name}.parquet"), "--chunksize", "7", "-o", str(out), "-q"])
        assert res.exit_code == 0, res.output
        outputs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outputs[1], outputs[0])
    pd.testing.assert_frame_equal(outputs[2], outputs[0])
    for name in ("unnamed", "named"):
        res = run(["evaluate", model, str(tmp_path / f"{name}.parquet"), "--id", "sample_id", "--chunksize", "7",
                   "--json", "-q"])
        assert res.exit_code == 0, res.output
    # a repeated id in the stored index is found as in a column
    twice = df.set_index("sample_id").rename_axis(None)
    twice.index = list(twice.index[:-1]) + [twice.index[2]]
    twice.to_parquet(tmp_path / "twice.parquet")
    one_line_error(run(["predict", model, str(tmp_path / "twice.parquet"), "--chunksize", "7", "-o", str(out)]),
                   "duplicate sample id 'NS0002'", "rows 3 and 90")


def test_evaluate_reads_role_rows_of_the_row_layout_as_written(tmp_path):
    """Labels 1, 01 and 2 are three classes in a genes × samples table too (its rows were read as the numbers
    1, 1 and 2): evaluate gives the samples × features table's metrics."""
    df = make_table(task="multiclass", seed=1, n_features=6)
    df["label"] = df["label"].map({"typeA": "1", "typeB": "01", "typeC": "2"})
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    model_path = tmp_path / "m.mlp"
    model_io.save(train(str(path), TrainOptions(target=["label"], hidden=[4], epochs=5, seed=0, folds=1)).model,
                  model_path)
    feats = [c for c in df.columns if c.startswith("f")]
    rows = df.set_index("sample_id")[["label", "patient_id", *feats]].T.rename_axis("gene").reset_index()
    rows.to_csv(tmp_path / "rows.csv", index=False)
    docs = []
    for args in ([str(path)], [str(tmp_path / "rows.csv"), "--features-in-rows"]):
        res = run(["evaluate", str(model_path), *args, "--json", "-q"])
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.output[res.output.index("{"):]))
    assert docs[1]["metrics"] == docs[0]["metrics"] and docs[0]["classes"] == ["01", "1", "2"]
