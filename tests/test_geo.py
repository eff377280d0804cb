"""GEO series matrix files (GSE…_series_matrix.txt.gz): the expression table between !series_matrix_table_begin and
!series_matrix_table_end read as samples x features, the samples' !Sample_ annotations as the sample sheet, in every
command that reads a table; a file cut short, an empty table or damaged annotations a one-line error."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pandas as pd
import pytest

from mlpcli import data
from mlpcli.errors import DataError
from cli_helpers import assert_clean_error, run
from tables import make_table

FAST = ["--epochs", "4", "--hidden", "", "--folds", "1", "--seed", "0", "-q"]


def cohort(n_patients: int = 20, seed: int = 0) -> pd.DataFrame:
    """Samples with a binary phenotype, patients and batches, genes g00.. (numbers written to 17 digits below)."""
    df = make_table("binary", n_patients=n_patients, per_patient=3, n_features=8, seed=seed)
    df = df.rename(columns={c: "g" + c[1:] for c in df.columns if c.startswith("f")})
    df["sample_id"] = [f"GSM{1000 + i}" for i in range(len(df))]
    df["grade"] = (np.arange(len(df)) % 3) + 1
    return df.rename(columns={"label": "disease"})


def genes(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c[0] == "g" and c[1:].isdigit()]


def _quoted(values) -> str:
    return "\t".join(f'"{v}"' for v in values)


def series_lines(df: pd.DataFrame, extra: list[str] = (), table: bool = True, end: bool = True) -> list[str]:
    """A series matrix as GEO writes one: !Series_ lines, a blank line, !Sample_ lines (characteristics written
    "key: value"), then the table, quoted probe ids and sample ids, unquoted numbers."""
    gsm = list(df["sample_id"])
    lines = ['!Series_title\t"A cohort"', '!Series_geo_accession\t"GSE1"', '!Series_platform_id\t"GPL570"', "",
             "!Sample_title\t" + _quoted(f"tumour {i}" for i in range(len(df))),
             "!Sample_geo_accession\t" + _quoted(gsm),
             "!Sample_source_name_ch1\t" + _quoted(["biopsy"] * len(df)),
             "!Sample_characteristics_ch1\t" + _quoted(f"disease state: {v}" for v in df["disease"]),
             "!Sample_characteristics_ch1\t" + _quoted(f"patient: {v}" for v in df["patient_id"]),
             "!Sample_characteristics_ch1\t" + _quoted(f"batch: {v}" for v in df["batch"]),
             "!Sample_characteristics_ch1\t" + _quoted(f"grade: {v}" for v in df["grade"]),
             *extra,
             '!Sample_data_row_count\t' + _quoted([len(genes(df))] * len(df)),
             "!series_matrix_table_begin", '"ID_REF"\t' + _quoted(gsm)]
    if table:
        X = df[genes(df)].to_numpy()
        lines += [f'"{g}"\t' + "\t".join(repr(float(v)) for v in X[:, j]) for j, g in enumerate(genes(df))]
    if end:
        lines.append("!series_matrix_table_end")
    return lines


def write_series(df: pd.DataFrame, path, **kw) -> str:
    text = "\n".join(series_lines(df, **kw)) + "\n"
    path = str(path)
    with (gzip.open(path, "wt") if path.endswith(".gz") else open(path, "w")) as fh:
        fh.write(text)
    return path


def test_a_series_matrix_reads_as_its_table_and_its_sample_annotations(tmp_path):
    """The dataset is the one the same numbers give as a genes x samples table joined to a sample sheet."""
    df = cohort()
    path = write_series(df, tmp_path / "GSE1_series_matrix.txt.gz")
    ds, notes = data.load_dataset(path, target="disease state", group="patient")
    matrix = tmp_path / "matrix.tsv"
    df.set_index("sample_id")[genes(df)].T.rename_axis("ID_REF").to_csv(matrix, sep="\t")
    sheet = tmp_path / "sheet.csv"
    df[["sample_id", "patient_id", "disease"]].rename(columns={"patient_id": "patient", "disease": "disease state"}) \
        .to_csv(sheet, index=False)
    ref, _ = data.load_dataset(str(matrix), target="disease state", group="patient", features_in_rows=True,
                               samples=str(sheet))
    assert ds.feature_names == ref.feature_names == genes(df)
    np.testing.assert_array_equal(ds.X, ref.X)
    np.testing.assert_array_equal(ds.y, ref.y)
    assert list(ds.ids) == list(df["sample_id"]) and list(ds.groups) == list(ref.groups)
    said = " ".join(notes)
    assert "a GEO series matrix (GSE1, platform GPL570): 8 features" in said and "x 60 samples" in said
    assert "'title', 'source_name_ch1'" in said  # the annotations that take no role, named


def test_train_predict_evaluate_on_series_matrices(tmp_path):
    df = cohort()
    train_path = write_series(df.iloc[:45], tmp_path / "GSE1_series_matrix.txt.gz")
    new_path = write_series(df.iloc[45:], tmp_path / "GSE2_series_matrix.txt")
    model = str(tmp_path / "m.mlp")
    res = run(["train", train_path, "--target", "disease state", "--group", "patient", "-o", model, *FAST])
    assert res.exit_code == 0, res.output
    out = tmp_path / "pred.csv"
    res = run(["predict", model, new_path, "-o", str(out)])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(out)
    assert list(pred["sample_id"]) == list(df["sample_id"].iloc[45:])  # the GSM accessions of the table's header
    res = run(["evaluate", model, new_path, "--json"])  # the labels: the annotations' "disease state"
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["n"] == 15 and 0 <= report["metrics"]["balanced_accuracy"] <= 1


def test_the_characteristics_become_columns(tmp_path):
    """Keys of "key: value" values; GEO's lines shifted for samples with fewer characteristics (one sample's
    "age" on the line others have "sex" on) land in the key's one column; a key twice for the same samples gets a
    second column; values without a key stand in characteristics_ch1; a channel-2 key that channel 1 has too is
    said apart; empty values and NA are missing; numbers are numbers."""
    df = cohort(n_patients=2)  # 6 samples
    n = len(df)
    extra = ["!Sample_characteristics_ch1\t" + _quoted(["sex: F", "age: 50", "sex: M", "sex: F", "sex: M", "sex: F"]),
             "!Sample_characteristics_ch1\t" + _quoted(["age: 61", "", "age: 45", "age: NA", "age: 70", "age: 38"]),
             "!Sample_characteristics_ch1\t" + _quoted(["treatment: A"] * n),
             "!Sample_characteristics_ch1\t" + _quoted(["treatment: B"] * n),
             "!Sample_characteristics_ch1\t" + _quoted(["relapse"] * 3 + [""] * 3),
             "!Sample_characteristics_ch2\t" + _quoted(["grade: reference"] * n)]
    path = write_series(df, tmp_path / "GSE3_series_matrix.txt.gz", extra=extra)
    src = data.geo.series_source(path)
    assert src is not None
    sheet = data.geo.read_sheet(src)
    frame = sheet.frame
    assert sheet.id_column == "geo_accession" and list(sheet.ids) == list(df["sample_id"])
    assert list(frame["sex"].iloc[[0, 2]]) == ["F", "M"] and pd.isna(frame["sex"].iloc[1])
    assert list(frame["age"].iloc[:3]) == [61, 50, 45] and pd.isna(frame["age"].iloc[3])
    assert list(frame["treatment"]) == ["A"] * n and list(frame["treatment (2)"]) == ["B"] * n
    assert list(frame["characteristics_ch1"].iloc[:3]) == ["relapse"] * 3 and frame["characteristics_ch1"].iloc[3:].isna().all()
    assert list(frame["grade (ch2)"]) == ["reference"] * n and list(frame["grade"]) == list(df["grade"])
    assert sheet.said.endswith("sample annotations (its !Sample_ lines)")


def test_samples_given_replace_the_annotations(tmp_path):
    df = cohort()
    path = write_series(df, tmp_path / "GSE1_series_matrix.txt.gz")
    sheet = tmp_path / "sheet.csv"
    other = np.where(np.arange(len(df)) % 2, "case", "control")
    pd.DataFrame({"sample_id": df["sample_id"], "other": other}).to_csv(sheet, index=False)
    ds, notes = data.load_dataset(path, target="other", samples=str(sheet), no_group=True)
    assert [ds.classes[k] for k in ds.y] == list(other)
    assert any("are not used: --samples" in n for n in notes)
    with pytest.raises(DataError, match="'disease state' not found"):
        data.load_dataset(path, target="disease state", samples=str(sheet), no_group=True)


@pytest.mark.parametrize("case", ["cut inside the table", "gzip cut short", "empty table", "no accessions",
                                  "a line short of a value", "an accession twice", "no table"])
def test_a_damaged_series_matrix_is_one_line_and_no_model(tmp_path, case):
    df = cohort(n_patients=4)
    path = tmp_path / ("GSE9_series_matrix.txt.gz" if case == "gzip cut short" else "GSE9_series_matrix.txt")
    lines = series_lines(df)
    if case == "cut inside the table":
        lines = lines[:-3]
    elif case == "empty table":
        lines = series_lines(df, table=False)
    elif case == "no accessions":
        lines = [line for line in lines if not line.startswith("!Sample_geo_accession")]
    elif case == "a line short of a value":
        lines = [line.rsplit("\t", 1)[0] if line.startswith("!Sample_title") else line for line in lines]
    elif case == "an accession twice":
        lines = [line.replace('"GSM1001"', '"GSM1000"') if line.startswith("!Sample_geo") else line for line in lines]
    elif case == "no table":
        lines = [line for line in lines if line.startswith("!S")]
    text = ("\n".join(lines) + "\n").encode()
    if case == "gzip cut short":
        packed = gzip.compress(text)
        path.write_bytes(packed[:len(packed) // 2])
    else:
        path.write_bytes(text)
    model = tmp_path / "m.mlp"
    res = run(["train", str(path), "--target", "disease state", "-o", str(model), *FAST])
    expected = {"cut inside the table": "ends inside its expression table", "gzip cut short": "truncated or corrupt",
                "empty table": "has no values (GEO leaves it empty for sequencing series",
                "no accessions": "no !Sample_geo_accession line",
                "a line short of a value": "the line !Sample_title has 11 values for the 12 samples",
                "an accession twice": "'GSM1000' stands twice", "no table": "without its expression table"}[case]
    assert_clean_error(res, str(path), expected)
    assert not os.path.exists(model) and sorted(os.listdir(tmp_path)) == [path.name]


def test_a_stream_of_a_series_matrix(tmp_path):
    """Standard input trains (it is read whole); predict, which streams standard input, asks for the file's name,
    or reads the table alone with --features-in-rows."""
    df = cohort()
    text = ("\n".join(series_lines(df)) + "\n").encode()
    model = str(tmp_path / "m.mlp")
    res = run(["train", "-", "--target", "disease state", "--group", "patient", "-o", model, *FAST], input=text)
    assert res.exit_code == 0, res.output
    res = run(["predict", model, "-", "-o", "-"], input=text)
    assert_clean_error(res, "standard input is a GEO series matrix file: give it by its file name")
    res = run(["predict", model, "-", "-o", "-", "--features-in-rows", "-q"], input=text)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[1].startswith("GSM1000,")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_features_in_rows_from_a_named_pipe(tmp_path):
    """A genes x samples table through a named pipe (bash's <(zcat x.gz)) trains: its bytes were read once, and
    the reader of the transposed layout read them again from the pipe, finding it empty."""
    import threading

    df = cohort()
    matrix = df.set_index("sample_id")[genes(df) + ["disease"]].T.rename_axis("ID_REF").to_csv(sep="\t")
    fifo = tmp_path / "matrix.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(matrix))
    writer.start()
    try:
        res = run(["train", str(fifo), "--features-in-rows", "--target", "disease", "--no-group", "-o",
                   str(tmp_path / "m.mlp"), *FAST])
    finally:
        writer.join(timeout=10)
    assert res.exit_code == 0, res.output
    assert os.path.exists(tmp_path / "m.mlp")


def test_explain_and_prepare_read_a_series_matrix_with_its_labels(tmp_path):
    from mlpcli import model_io
    from mlpcli.predict import prepare
    from mlpcli.predict.columns import RoleFlags

    df = cohort()
    path = write_series(df, tmp_path / "GSE1_series_matrix.txt.gz")
    model = str(tmp_path / "m.mlp")
    assert run(["train", path, "--target", "disease state", "--group", "patient", "-o", model, *FAST]).exit_code == 0
    trained = model_io.load(model)
    prepared = prepare(trained, path, labels=True, roles=RoleFlags(target="disease state"))
    np.testing.assert_array_equal(prepared.X, df[genes(df)].to_numpy())
    assert [trained.classes[k] for k in prepared.y] == [str(v) for v in df["disease"]]  # from the annotations
    res = run(["explain", model, path, "--top", "3", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["grouped_by"] == "label" and report["data"] == path  # each sample under its annotated label


def test_a_target_not_among_the_annotations_names_the_characteristics(tmp_path):
    """The error lists the annotations' columns far enough to show the characteristics behind the id, title and
    source (six names showed three of them)."""
    df = cohort(n_patients=2)
    extra = ["!Sample_characteristics_ch1\t" + _quoted([f"{key}: x"] * len(df))
             for key in ("tissue", "sex", "age", "stage", "treatment")]
    path = write_series(df, tmp_path / "GSE4_series_matrix.txt.gz", extra=extra)
    res = run(["train", path, "-o", str(tmp_path / "m.mlp"), *FAST])  # the default target, label, is not there
    assert_clean_error(res, "'label' not found", "sample annotations (its !Sample_ lines)", "'grade'", "'treatment'")
    assert not os.path.exists(tmp_path / "m.mlp")


# ── found by trying the files GEO and its users write ─────────────────────────────────────────────────────────


def _sheet(path):
    return data.geo.read_sheet(data.geo.series_source(str(path)))


def test_a_key_twice_is_counted_per_sample_whatever_line_it_stands_on(tmp_path):
    """Samples without an "age" have their two treatments one line earlier (GEO shifts them): each sample's second
    treatment is in "treatment (2)", not the first of some samples and the second of others."""
    df = cohort(n_patients=2)  # 6 samples; the first two have no age
    extra = ["!Sample_characteristics_ch1\t" + _quoted(["treatment: none", "treatment: chemo"] + ["age: 50"] * 4),
             "!Sample_characteristics_ch1\t" + _quoted(["treatment: tamoxifen"] * 2 + ["treatment: none"] * 4),
             "!Sample_characteristics_ch1\t" + _quoted(["", ""] + ["treatment: tamoxifen"] * 4)]
    frame = _sheet(write_series(df, tmp_path / "GSE5_series_matrix.txt", extra=extra)).frame
    assert list(frame["treatment"]) == ["none", "chemo", "none", "none", "none", "none"]
    assert list(frame["treatment (2)"]) == ["tamoxifen"] * 6
    assert frame["age"].isna().sum() == 2


def test_names_that_collide_keep_both_values(tmp_path):
    """A characteristic named as a kept field (description) or the id column is said with its channel; a
    channel-2 key that channel 1 lacks keeps its name, and its second value gets (2)."""
    df = cohort(n_patients=2)
    n = len(df)
    extra = ["!Sample_characteristics_ch1\t" + _quoted([f"description: c{i % 2}" for i in range(n)]),
             "!Sample_characteristics_ch1\t" + _quoted(["geo_accession: old"] * n),
             "!Sample_characteristics_ch2\t" + _quoted(["genotype: wt"] + [f"treatment: t{i}" for i in range(1, n)]),
             "!Sample_characteristics_ch2\t" + _quoted(["treatment: t0"] + [f"genotype: mut{i}" for i in range(1, n)]),
             "!Sample_characteristics_ch2\t" + _quoted(["treatment: u"] * n),
             "!Sample_description\t" + _quoted([f"real{i}" for i in range(n)])]
    frame = _sheet(write_series(df, tmp_path / "GSE6_series_matrix.txt", extra=extra)).frame
    assert list(frame["description"]) == [f"real{i}" for i in range(n)]
    assert list(frame["description (ch1)"]) == [f"c{i % 2}" for i in range(n)]
    assert list(frame["geo_accession (ch1)"]) == ["old"] * n
    assert list(frame["genotype"]) == ["wt"] + [f"mut{i}" for i in range(1, n)]
    assert list(frame["treatment"]) == [f"t{i}" for i in range(n)] and list(frame["treatment (2)"]) == ["u"] * n
    assert not any("(ch2)" in c for c in frame.columns)


def test_a_colon_without_a_space_is_part_of_a_value(tmp_path):
    df = cohort(n_patients=2)
    extra = ["!Sample_characteristics_ch1\t" + _quoted(["ratio 1:2", "http://example.org/x", "time: 10:30", "stage:",
                                                        "ratio 1:3", "time: 11:00"])]
    frame = _sheet(write_series(df, tmp_path / "GSE7_series_matrix.txt", extra=extra)).frame
    assert list(frame["characteristics_ch1"].iloc[:2]) == ["ratio 1:2", "http://example.org/x"]
    assert frame.loc[2, "time"] == "10:30" and pd.isna(frame.loc[3, "stage"])
    assert not any(c.startswith(("ratio", "http")) for c in frame.columns)


@pytest.mark.parametrize("form", ["byte-order mark, no series lines", "quoted names", "trailing tabs"])
def test_files_as_other_writers_write_them(tmp_path, form):
    df = cohort(n_patients=4)
    lines = series_lines(df)
    if form == "byte-order mark, no series lines":
        lines = [line for line in lines if not line.startswith("!Series_") and line]
        lines[0] = "\ufeff" + lines[0]
    elif form == "quoted names":
        lines = [f'"{line.split(chr(9), 1)[0]}"' + line[len(line.split(chr(9), 1)[0]):] if line.startswith("!") else line
                 for line in lines]
    else:
        lines = [line + "\t" if line.startswith("!Sample_") else line for line in lines]
    path = tmp_path / "GSE8_series_matrix.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sheet = _sheet(path)
    assert list(sheet.ids) == list(df["sample_id"]) and list(sheet.frame["title"])[:2] == ["tumour 0", "tumour 1"]
    ds, _ = data.load_dataset(str(path), target="disease state", group="patient")
    assert ds.n_samples == len(df) and [ds.classes[k] for k in ds.y] == [str(v) for v in df["disease"]]


def test_decimal_and_separator_options(tmp_path):
    """--decimal is the table's; --sep other than tab is refused (GEO writes tabs): both were ignored."""
    df = cohort(n_patients=4)
    lines = [line.replace(".", ",") if line.startswith('"g') else line for line in series_lines(df)]
    path = tmp_path / "GSE9_series_matrix.txt"
    path.write_text("\n".join(lines) + "\n")
    ds, _ = data.load_dataset(str(path), target="disease state", group="patient", decimal="comma")
    np.testing.assert_allclose(ds.X, df[genes(df)].to_numpy(), rtol=1e-12)
    res = run(["train", str(path), "--target", "disease state", "--decimal", "dot", "-o", str(tmp_path / "m.mlp"),
               *FAST])
    assert_clean_error(res, "decimal commas")
    res = run(["train", str(path), "--target", "disease state", "--sep", "comma", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert res.exit_code == 2 and "--sep comma" in res.output and "tab-separated" in res.output
    assert not os.path.exists(tmp_path / "m.mlp")


def test_id_chooses_the_annotation_the_table_names_its_samples_by(tmp_path):
    df = cohort(n_patients=4)
    lines = series_lines(df)
    header = lines.index("!series_matrix_table_begin") + 1
    lines[header] = '"ID_REF"\t' + _quoted(f"tumour {i}" for i in range(len(df)))  # titles, not accessions
    path = tmp_path / "GSE10_series_matrix.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="pass --id title"):
        data.load_dataset(str(path), target="disease state", group="patient")
    ds, _ = data.load_dataset(str(path), target="disease state", group="patient", id="title")
    assert ds.n_samples == len(df) and [ds.classes[k] for k in ds.y] == [str(v) for v in df["disease"]]
    res = run(["train", str(path), "--target", "disease state", "--id", "nosuch", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert_clean_error(res, "--id column 'nosuch' not found", "'geo_accession'", "'title'")
    res = run(["train", str(path), "--target", "geo_accession", "--id", "title", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert res.exit_code == 1 and "'geo_accession'" in res.output
    res = run(["train", write_series(df, tmp_path / "GSE11_series_matrix.txt"), "--target", "geo_accession",
               "-o", str(tmp_path / "m.mlp"), *FAST])
    assert_clean_error(res, "--target 'geo_accession' is the id column of", "give --target another column")


def test_a_short_or_ragged_table_is_said_at_the_files_line(tmp_path):
    """A header without one sample's name shifted every sample by one (exit 0, every label wrong); a ragged row was
    said at the table's line number, not the file's."""
    df = cohort(n_patients=4)
    lines = series_lines(df)
    header = lines.index("!series_matrix_table_begin") + 1
    short = list(lines)
    short[header] = short[header].rsplit("\t", 1)[0]
    path = tmp_path / "GSE12_series_matrix.txt"
    path.write_text("\n".join(short) + "\n")
    res = run(["train", str(path), "--target", "disease state", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert_clean_error(res, str(path), f"header (line {header + 1}) has one cell fewer than its rows")
    matrix = tmp_path / "matrix.tsv"  # the same table alone: its first cell names the probes, as R's header does not
    matrix.write_text("\n".join(short[header:-1]) + "\n")
    res = run(["train", str(matrix), "--features-in-rows", "--samples", write_series(df, tmp_path / "s.txt"),
               "--target", "disease state", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert_clean_error(res, str(matrix), "header (line 1) has one cell fewer than its rows", "('ID_REF')")
    os.remove(matrix)
    os.remove(tmp_path / "s.txt")
    ragged = list(lines)
    ragged[header + 3] = ragged[header + 3].rsplit("\t", 1)[0]
    path.write_text("\n".join(ragged) + "\n")
    res = run(["train", str(path), "--target", "disease state", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert_clean_error(res, f"line {header + 4} has")
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_a_series_matrix_as_the_sample_sheet_of_a_counts_table(tmp_path):
    """A sequencing series: its counts in a table of their own, its annotations in the series matrix (which
    --samples had refused as a malformed sheet)."""
    df = cohort(n_patients=4)
    series = write_series(df, tmp_path / "GSE13_series_matrix.txt.gz", table=False)
    counts = tmp_path / "counts.tsv"
    df.set_index("sample_id")[genes(df)].T.rename_axis("gene").to_csv(counts, sep="\t")
    ds, notes = data.load_dataset(str(counts), features_in_rows=True, samples=series, target="disease state",
                                  group="patient")
    assert [ds.classes[k] for k in ds.y] == [str(v) for v in df["disease"]]
    with pytest.raises(DataError, match="--id column 'nosuch' not found in --samples .*GSE13.*'geo_accession'"):
        data.load_dataset(str(counts), features_in_rows=True, samples=series, target="disease state",
                          group="patient", id="nosuch")


def test_feature_names_that_read_like_missing_values_are_names(tmp_path):
    """Nan is a mouse gene, NA a probe's name: only an empty name is missing."""
    df = cohort(n_patients=4)
    matrix = df.set_index("sample_id")[genes(df)].T
    matrix.index = ["Nan", "NA", "null"] + list(matrix.index[3:])
    path = tmp_path / "matrix.tsv"
    matrix.rename_axis("gene").to_csv(path, sep="\t")
    frame = data.read_table(str(path), features_in_rows=True)
    assert list(frame.columns[1:4]) == ["Nan", "NA", "null"]
    np.testing.assert_allclose(frame["NA"].to_numpy(dtype=float), df[genes(df)[1]].to_numpy())
    text = path.read_text().splitlines()
    text[2] = "\t" + text[2].split("\t", 1)[1]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match="1 row has no feature name in the first column \\(the one after 'Nan'\\)"):
        data.read_table(str(path), features_in_rows=True)


def test_explain_from_standard_input_reads_the_annotations(tmp_path):
    """explain reads standard input whole, as train does: the series' labels, where it had ranked by the classes
    the model predicts."""
    df = cohort()
    path = write_series(df, tmp_path / "GSE1_series_matrix.txt.gz")
    model = str(tmp_path / "m.mlp")
    assert run(["train", path, "--target", "disease state", "--group", "patient", "-o", model, *FAST]).exit_code == 0
    with open(path, "rb") as fh:
        res = run(["explain", model, "-", "--top", "3", "--json"], input=fh.read())
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["grouped_by"] == "label"
