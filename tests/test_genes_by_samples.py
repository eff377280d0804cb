"""Genes x samples tables as GEO, featureCounts and R hand them out: annotation columns (gene symbols,
Start/End/Length) told from samples, short headers and trailing separators, series-matrix and comment lines
named, and the notes of how such a file was read."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io
from mlpcli.errors import DataError
from cli_helpers import assert_clean_error, run
from tables import _features, make_table


# ── 3. explain names an annotation column of a genes x samples file ──────────────────────────────────────


@pytest.fixture(scope="module")
def geo(tmp_path_factory):
    """A genes x samples matrix, its sample sheet, a model trained on it, and copies with a gene-symbol column."""
    tmp = tmp_path_factory.mktemp("geo")
    rng = np.random.default_rng(0)
    ids = [f"GSM{1000 + i}" for i in range(24)]
    disease = np.array(["case", "ctrl"] * 12)
    matrix = pd.DataFrame(rng.normal(size=(12, 24)) + (disease == "case") * 1.5,
                          index=pd.Index([f"G{j}" for j in range(12)], name="ID_REF"), columns=ids)
    matrix.to_csv(tmp / "matrix.tsv", sep="\t")
    pd.DataFrame({"sample_id": ids, "disease": disease}).to_csv(tmp / "s.csv", index=False)
    res = run(["train", str(tmp / "matrix.tsv"), "--features-in-rows", "--samples", str(tmp / "s.csv"), "--target",
               "disease", "--no-group", "--epochs", "2", "--hidden", "", "--folds", "1", "-q", "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    return tmp, matrix


@pytest.mark.parametrize("at", [0, 5], ids=["after-the-ids", "among-the-samples"])
@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
@pytest.mark.parametrize("sheet", [False, True], ids=["alone", "with-sheet"])
def test_explain_names_an_annotation_column(geo, tmp_path, at, fmt, sheet):
    """explain said "feature column 'G1' holds the non-numeric value 'SYM1'" (or, with a sample sheet, left the
    column out silently) where predict and evaluate name the annotation column."""
    tmp, matrix = geo
    annotated = matrix.copy()
    annotated.insert(at, "Gene Symbol", [f"SYM{j}" if j % 4 else None for j in range(len(matrix))])
    path = tmp_path / f"annotated.{fmt}"
    annotated.to_csv(path, sep="\t") if fmt == "tsv" else annotated.to_parquet(path)
    extra = ["--samples", str(tmp / "s.csv")] if sheet else []
    res = run(["explain", str(tmp / "m.mlp"), str(path), "--features-in-rows", *extra, "-o", str(tmp_path / "g.csv")])
    assert_clean_error(res, "column 'Gene Symbol'", f"header cell {at + 2}", "holds text, not a sample's numbers")
    assert "non-numeric" not in res.output and not (tmp_path / "g.csv").exists()
    # the matrix without it still explains
    assert run(["explain", str(tmp / "m.mlp"), str(tmp / "matrix.tsv"), "--features-in-rows", *extra]).exit_code == 0


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_the_model_genes_named_by_a_symbol_column(geo, tmp_path, command, fmt):
    """A genes x samples file with Ensembl-style ids first and the model's gene names in a second column: predict
    said only that the file lacks every feature (its columns being the ids), never that one of its columns names
    them. Now the error names that column and the fix; with the model's names first, the annotation error."""
    tmp, matrix = geo
    relabelled = matrix.rename(index=lambda g: f"ENSG{int(g[1:]):011d}")
    relabelled.insert(0, "symbol", list(matrix.index))  # the model's names, in column 2
    relabelled.index.name = "gene_id"
    path = tmp_path / f"ids_first.{fmt}"
    relabelled.to_csv(path, sep="\t") if fmt == "tsv" else relabelled.to_parquet(path)
    out = tmp_path / ("out.json" if command == "evaluate" else "out.csv")
    sheet = ["--samples", str(tmp / "s.csv")] if command != "predict" else []
    res = run([command, str(tmp / "m.mlp"), str(path), "--features-in-rows", *sheet, "-o", str(out)])
    assert_clean_error(res, "column 'symbol' (header cell 2) names 12 of the model's 12 features, the first column 0",
                       "write column 'symbol' first")
    assert not out.exists()
    # the same file with the model's names first is the annotation error, as before
    swapped = relabelled.reset_index().set_index("symbol")
    swapped.to_csv(path, sep="\t") if fmt == "tsv" else swapped.to_parquet(path)
    res = run([command, str(tmp / "m.mlp"), str(path), "--features-in-rows", *sheet, "-o", str(out)])
    assert_clean_error(res, "column 'gene_id' (header cell 2) holds text, not a sample's numbers")


def test_a_genes_by_samples_file_says_how_it_was_read(tiny, tmp_path):
    """predict and evaluate read a --features-in-rows file whole, and dropped the reader's notes: a separator
    other than the name says, an empty column from a separator at the end of every line."""
    model, data = tiny["multiclass"]
    df = pd.read_csv(data)
    genes = [c for c in df.columns if c not in ("sample_id", "patient_id", "batch", "label")]
    matrix = df.set_index("sample_id")[genes].T.rename_axis("gene").to_csv(sep=";").strip().splitlines()
    path = tmp_path / "genes_by_samples.csv"
    path.write_text("\n".join(line + ";" for line in matrix) + "\n")
    res = run(["predict", model, str(path), "--features-in-rows", "-o", str(tmp_path / "p.csv"), "--json"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert any("semicolon (';')-separated" in n for n in notes), notes
    assert any("ignored 1 column with neither a name nor a value" in n for n in notes), notes


FAST = ["--hidden", "4", "--epochs", "3", "--folds", "1", "--quiet"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_table(n_patients=12, per_patient=2, n_features=4)


def features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("f")]


def matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The genes x samples layout of `frame`'s features, as GEO hands it out."""
    return frame.set_index("sample_id")[features(frame)].T.rename_axis("ID_REF")


# ── R's write.csv(df) and pandas' to_csv(): row numbers beside a sample_id column ─────────────────────────


def test_row_numbers_beside_sample_id_are_ignored_by_train_as_by_predict(tmp_path, frame):
    path = tmp_path / "r.csv"
    renumbered = frame.set_axis(range(1, len(frame) + 1))  # R's row names 1..n: "" over "1", "2", ...
    renumbered.to_csv(path)
    res = run(["train", str(path), "-o", str(tmp_path / "m.mlp"), *FAST[:-1]])
    assert res.exit_code == 0, res.output
    assert "ignored the first column" in res.output and "numbers the rows" in res.output
    assert model_io.load(tmp_path / "m.mlp").feature_names == features(frame)
    out = tmp_path / "p.csv"
    assert run(["predict", str(tmp_path / "m.mlp"), str(path), "-o", str(out), "-q"]).exit_code == 0
    assert list(pd.read_csv(out)["sample_id"]) == list(frame["sample_id"])


def test_row_numbers_of_a_sample_sheet_beside_its_sample_id(tmp_path, frame):
    table, sheet = tmp_path / "m.tsv", tmp_path / "sheet.csv"
    matrix(frame).to_csv(table, sep="\t")
    frame[["sample_id", "patient_id", "label"]].iloc[::-1].to_csv(sheet)  # reordered rows: 23, 22, ... 0
    ds, notes = data.load_dataset(table, features_in_rows=True, samples=str(sheet))
    assert list(ds.ids) == list(frame["sample_id"]) and ds.n_samples == len(frame)
    assert any("sheet.csv: ignored the first column" in n for n in notes), notes


def test_row_names_that_are_not_numbers_beside_sample_id_stay_an_error(tmp_path, frame):
    path = tmp_path / "r.csv"
    frame.set_axis([f"X{i}" for i in range(len(frame))]).to_csv(path)
    assert_clean_error(run(["train", str(path), *FAST]), "r.csv", "header cell 1 is empty", "already named")


def test_parquet_index_named_like_a_column(tmp_path, frame):
    path = tmp_path / "i.parquet"
    frame.set_index(frame["sample_id"] + "x").to_parquet(path)  # stored as __index_level_0__, named sample_id
    ds, notes = data.load_dataset(path)
    assert list(ds.ids) == list(frame["sample_id"]) and ds.feature_names == features(frame)
    assert any("stored pandas index" in n for n in notes), notes


# ── R's write.table(matrix): a header of the sample ids alone ─────────────────────────────────────────────


@pytest.mark.parametrize("quote", ["", '"'])
def test_genes_by_samples_header_without_the_gene_column_cell(tmp_path, frame, quote):
    m = matrix(frame)
    whole, short = tmp_path / "whole.tsv", tmp_path / "short.tsv"
    m.to_csv(whole, sep="\t")
    lines = [quote + f"{quote}\t{quote}".join(m.columns) + quote]
    lines += [f"{quote}{gene}{quote}\t" + "\t".join(repr(v) for v in row) for gene, row in m.iterrows()]
    short.write_text("\n".join(lines) + "\n")
    frame_short, notes = data.read_table_with_notes(short, features_in_rows=True)
    pd.testing.assert_frame_equal(frame_short, data.read_table(whole, features_in_rows=True))
    assert any("one cell fewer than its rows" in n for n in notes), notes


def test_rows_ending_in_a_separator_are_not_taken_for_a_short_header(tmp_path, frame):
    m = matrix(frame)
    path = tmp_path / "t.tsv"
    text = m.to_csv(sep="\t").splitlines()
    path.write_text("\n".join([text[0], *(line + "\t" for line in text[1:])]) + "\n")
    with pytest.raises(DataError, match="line 2 has"):  # never the samples' ids shifted by one
        data.read_table(path, features_in_rows=True)


# ── trailing separators in a genes x samples matrix (spreadsheet exports) ─────────────────────────────────


@pytest.mark.parametrize("sep, tail", [("\t", "\t"), (";", ";;")])
def test_genes_by_samples_trailing_empty_columns_are_ignored(tmp_path, frame, sep, tail):
    m = matrix(frame)
    path = tmp_path / "m.txt"
    path.write_text("".join(line + tail + "\n" for line in m.to_csv(sep=sep).splitlines()))
    read, notes = data.read_table_with_notes(path, features_in_rows=True, sep=sep)
    assert list(read["sample_id"]) == list(frame["sample_id"]) and list(read.columns[1:]) == features(frame)
    assert any("neither a name nor a value" in n for n in notes), notes


def test_genes_by_samples_empty_header_cell_over_values_is_named(tmp_path, frame):
    text = matrix(frame).to_csv(sep="\t").splitlines()
    cells = text[0].split("\t")
    cells[3] = ""
    path = tmp_path / "m.tsv"
    path.write_text("\n".join(["\t".join(cells), *text[1:]]) + "\n")
    with pytest.raises(DataError, match="m.tsv: header cell 4 is empty"):
        data.read_table(path, features_in_rows=True)


# ── label and group errors name the file they are in ──────────────────────────────────────────────────────


@pytest.mark.parametrize("column, needles", [
    ("label", ["t.csv: target has missing values in 1 row ", "row 4 (id 'S0003')"]),
    ("patient_id", ["t.csv: --group column 'patient_id' has 1 missing value;", "row 4 (id 'S0003')"]),
])
def test_missing_label_or_group_names_the_file(tmp_path, frame, column, needles):
    path = tmp_path / "t.csv"
    frame.assign(**{column: frame[column].where(frame.index != 3)}).to_csv(path, index=False)
    assert_clean_error(run(["train", str(path), *FAST]), *needles)


def test_single_class_and_two_class_errors_name_the_file(tmp_path, frame):
    path = tmp_path / "one.csv"
    frame.assign(label="typeA").to_csv(path, index=False)
    assert_clean_error(run(["train", str(path), *FAST]), "one.csv: target 'label' has a single class")
    path = tmp_path / "three.csv"
    frame.to_csv(path, index=False)
    assert_clean_error(run(["train", str(path), "--task", "binary", *FAST]), "three.csv: --task binary needs 2")


def test_missing_label_of_a_sample_sheet_names_the_sheet(tmp_path, frame):
    table, sheet = tmp_path / "m.tsv", tmp_path / "sheet.csv"
    matrix(frame).to_csv(table, sep="\t")
    frame[["sample_id", "patient_id", "label"]].assign(label=frame["label"].where(frame.index != 5)).to_csv(
        sheet, index=False)
    with pytest.raises(DataError, match=r"^--samples .*sheet\.csv: target has missing values .* sample with id 'S0005'"):
        data.load_dataset(table, features_in_rows=True, samples=str(sheet))


def test_a_gzipped_geo_series_matrix_without_sample_lines_asks_for_a_sheet(tmp_path):
    """Read as a series matrix (``data.geo``), gzipped; without !Sample_geo_accession its table's samples have no
    annotations to take roles from."""
    import gzip

    path = tmp_path / "GSE1_series_matrix.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write('!Series_title\t"a study"\n!Series_geo_accession\t"GSE1"\n\n!series_matrix_table_begin\n'
                '"ID_REF"\t"GSM1"\t"GSM2"\n"g1"\t1.0\t2.0\n!series_matrix_table_end\n')
    res = run(["train", str(path), "--features-in-rows"])
    assert_clean_error(res, str(path), "no !Sample_geo_accession line", "--samples FILE")


def test_a_genes_by_samples_parquet_with_its_gene_column_last_says_so(tmp_path, three_classes):
    """The gene column written last (pandas' reset_index after a transpose, in another order): "duplicate feature
    names in the first column: '5.0' (×5) ... (a microarray's probes?)"."""

    d, df = three_classes
    matrix = df.set_index("sample_id")[_features(df)].T.round(0)
    matrix["gene"] = matrix.index
    matrix.reset_index(drop=True).to_parquet(tmp_path / "genes_last.parquet")
    r = run(["predict", str(d / "m.mlp"), str(tmp_path / "genes_last.parquet"), "--features-in-rows", "-o", "-"])
    assert_clean_error(r, "holds numbers, not feature names", "'gene'", "write that column first")
