"""Tests for mlpcli.data: reading, roles, validation, preprocessing, splits, class weights."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections import Counter
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpcli import data as D
from mlpcli.data import column_stats
from mlpcli.model_selection import splits
from mlpcli.errors import ConfigError, DataError, ModelFileError
from cli_helpers import run

# ── fixtures and helpers ─────────────────────────────────────────────────────────────────────────────────


def make_frame(n_patients: int = 12, per_patient: int = 3, n_genes: int = 6, seed: int = 0,
               labels=("A", "B", "C")) -> pd.DataFrame:
    """A small omics-like table: sample_id, patient_id, batch, label, then gene columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = labels[p % len(labels)]
        for s in range(per_patient):
            rows.append({"sample_id": f"S{p:02d}_{s}", "patient_id": f"P{p:02d}", "batch": f"B{p % 2 + 1}",
                         "label": label})
    frame = pd.DataFrame(rows)
    genes = rng.lognormal(size=(len(frame), n_genes)).round(4)
    for j in range(n_genes):
        frame[f"g{j}"] = genes[:, j]
    return frame


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def dataset(frame) -> D.Dataset:
    roles, _ = D.resolve_roles(frame.columns)
    return D.Dataset.from_frame(frame, roles)


def build(frame: pd.DataFrame, task: str = "auto", classes=None, **role_kwargs) -> D.Dataset:
    roles, _ = D.resolve_roles(frame.columns, **role_kwargs)
    return D.Dataset.from_frame(frame, roles, task=task, classes=classes)


def write(frame: pd.DataFrame, path, sep=",") -> None:
    frame.to_csv(path, sep=sep, index=False)


def assert_same_table(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
    for col in expected.columns:  # numbers come back as numbers, text as text
        assert pd.api.types.is_numeric_dtype(got[col]) == pd.api.types.is_numeric_dtype(expected[col]), col


# ── read_table ───────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.txt", "t.csv.gz", "t.tsv.bz2", "t.txt.xz", "t.csv.zip",
                                  "t.TSV.GZ", "t.parquet"])
def test_read_table_round_trips_every_format(tmp_path, frame, name):
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        sep = "," if ".csv" in name.lower() else "\t"
        frame.to_csv(path, sep=sep, index=False)  # pandas compresses by extension
    assert_same_table(D.read_table(path), frame)


def test_read_table_accepts_str_path(tmp_path, frame):
    write(frame, tmp_path / "t.csv")
    assert_same_table(D.read_table(str(tmp_path / "t.csv")), frame)


@pytest.mark.parametrize("sep", [",", "\t"], ids=["csv", "tsv"])
def test_read_table_stdin_sniffs_separator(frame, sep):
    buffer = io.BytesIO(frame.to_csv(sep=sep, index=False).encode())
    assert_same_table(D.read_table("-", stdin=buffer), frame)


def test_read_table_stdin_gzip_and_text_stream(frame):
    gz = io.BytesIO(gzip.compress(frame.to_csv(index=False).encode()))
    assert_same_table(D.read_table("-", stdin=gz), frame)
    assert_same_table(D.read_table("-", stdin=io.StringIO(frame.to_csv(index=False))), frame)


def transposed(frame: pd.DataFrame) -> pd.DataFrame:
    """The genes × samples layout: first column 'feature', one column per sample id."""
    out = frame.set_index("sample_id").T
    out.index.name = "feature"
    return out.reset_index()


@pytest.mark.parametrize("name", ["t.tsv", "t.csv.gz", "t.parquet"])
def test_read_table_features_in_rows(tmp_path, frame, name):
    path = tmp_path / name
    t = transposed(frame)
    if name.endswith(".parquet"):
        t.astype(str).to_parquet(path, index=False)  # a parquet transposed table is all text columns
    else:
        t.to_csv(path, sep="\t" if ".tsv" in name else ",", index=False)
    got = D.read_table(path, features_in_rows=True)
    assert got.columns[0] == "sample_id"
    assert_same_table(got, frame)
    ds = build(got)  # role rows became role columns
    assert ds.task == "multiclass" and ds.groups is not None and ds.batches is not None


def test_read_table_features_in_rows_stdin_and_integral_rows(frame):
    frame = frame.assign(label=(frame["label"] == "A").astype(int))  # a numeric 0/1 label row
    buffer = io.BytesIO(transposed(frame).to_csv(index=False).encode())
    got = D.read_table("-", features_in_rows=True, stdin=buffer)
    assert got["label"].dtype == np.int64
    assert_same_table(got, frame)


def test_read_table_features_in_rows_text_after_numeric_first_sample(tmp_path, frame):
    # patient ids look numeric in the first sample only: the fast path must notice and fall back
    frame = frame.copy()
    frame["patient_id"] = ["7"] + list(frame["patient_id"].iloc[1:])
    transposed(frame).to_csv(tmp_path / "t.csv", index=False)
    got = D.read_table(tmp_path / "t.csv", features_in_rows=True)
    assert list(got["patient_id"]) == list(frame["patient_id"])
    assert got["g0"].dtype == np.float64


def test_features_in_rows_role_rows_are_read_as_written_as_in_the_samples_by_features_table(tmp_path, frame):
    """Labels 01 / 1 / 2 and patients 000, 001, ... are read as written in either layout: the row layout made
    them the numbers 1, 1, 2 and 0, 1, ... (two classes instead of three, and other patient ids), also when
    the first sample's cell looks like a plain number."""
    frame = frame.assign(label=frame["label"].map({"A": "1", "B": "01", "C": "2"}),
                         patient_id=[f"{i // 3:03d}" for i in range(len(frame))])
    write(frame, tmp_path / "cols.csv")
    transposed(frame).to_csv(tmp_path / "rows.csv", index=False)
    by_columns, _ = D.load_dataset(tmp_path / "cols.csv")
    by_rows, _ = D.load_dataset(tmp_path / "rows.csv", features_in_rows=True)
    assert by_columns.classes == by_rows.classes == ["01", "1", "2"]
    assert list(by_rows.y) == list(by_columns.y)
    assert list(by_rows.groups) == list(by_columns.groups) == list(frame["patient_id"])
    np.testing.assert_array_equal(by_rows.X, by_columns.X)
    # other target and group names, given as options, too
    renamed = frame.rename(columns={"label": "grade", "patient_id": "donor"})
    transposed(renamed).to_csv(tmp_path / "renamed.csv", index=False)
    ds, _ = D.load_dataset(tmp_path / "renamed.csv", features_in_rows=True, target="grade", group="donor")
    assert ds.classes == ["01", "1", "2"] and list(ds.groups) == list(frame["patient_id"])


def test_features_in_rows_with_decimal_commas_reads_numbers(tmp_path, frame):
    """A genes × samples table written with semicolons and decimal commas: its gene rows are numbers (every
    row was taken for text, and training stopped with an internal error)."""
    write(frame, tmp_path / "cols.csv")
    rows = transposed(frame).astype(str)
    genes = rows["feature"].str.startswith("g")
    rows.loc[genes, rows.columns[1:]] = rows.loc[genes, rows.columns[1:]].apply(lambda c: c.str.replace(".", ","))
    rows.to_csv(tmp_path / "rows.csv", sep=";", index=False)
    assert "," in (tmp_path / "rows.csv").read_text().splitlines()[-1]  # the last gene, in decimal commas
    by_columns, _ = D.load_dataset(tmp_path / "cols.csv")
    by_rows, _ = D.load_dataset(tmp_path / "rows.csv", features_in_rows=True)
    np.testing.assert_array_equal(by_rows.X, by_columns.X)
    assert by_rows.classes == by_columns.classes and list(by_rows.groups) == list(by_columns.groups)


def test_read_table_features_in_rows_missing_values(tmp_path, frame):
    frame = frame.copy()
    frame.loc[2, "g1"] = np.nan
    transposed(frame).to_csv(tmp_path / "t.csv", index=False)
    got = D.read_table(tmp_path / "t.csv", features_in_rows=True)
    assert np.isnan(got.loc[2, "g1"]) and got["g1"].notna().sum() == len(frame) - 1


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found: .*nope.csv"):
        D.read_table(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        D.read_table(tmp_path / "e.csv")


def test_empty_compressed_file(tmp_path):
    (tmp_path / "e.csv.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(DataError, match="empty"):
        D.read_table(tmp_path / "e.csv.gz")


def test_empty_stdin():
    with pytest.raises(DataError, match="standard input is empty"):
        D.read_table("-", stdin=io.BytesIO(b""))


def test_header_without_rows(tmp_path):
    (tmp_path / "h.csv").write_text("sample_id,label,g1\n")
    with pytest.raises(DataError, match="no data rows"):
        D.read_table(tmp_path / "h.csv")


def test_unknown_extension_lists_supported(tmp_path):
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"unsupported table format 't.xlsx'.*\.csv.*\.tsv.*\.parquet"):
        D.read_table(tmp_path / "t.xlsx")


def test_unparseable_text_is_one_line(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(DataError, match="cannot read .*bad.csv: line 3 has 4 fields but the header has 2") as info:
        D.read_table(tmp_path / "bad.csv")
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


@pytest.mark.parametrize("name", ["bad.csv.gz", "bad.csv.bz2", "bad.csv.xz", "bad.csv.zip", "bad.parquet"])
def test_corrupt_binary_files(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not compressed data at all\n" * 3)
    with pytest.raises(DataError, match="cannot parse .*bad"):
        D.read_table(tmp_path / name)


def test_wrong_separator_for_the_extension_is_detected_and_noted(tmp_path, frame):
    frame.to_csv(tmp_path / "t.txt", index=False)
    read, notes = D.read_table_with_notes(tmp_path / "t.txt")
    pd.testing.assert_frame_equal(read, frame)
    assert any("read as comma" in n and "as its .txt name says" in n for n in notes)


def test_non_utf8_text(tmp_path):
    (tmp_path / "l.csv").write_bytes("sample_id,label,g1\ns1,caf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text .*byte 0xe9.*save it as UTF-8"):
        D.read_table(tmp_path / "l.csv")


def test_zip_with_two_members(tmp_path, frame):
    with zipfile.ZipFile(tmp_path / "two.csv.zip", "w") as archive:
        archive.writestr("a.csv", frame.to_csv(index=False))
        archive.writestr("b.csv", frame.to_csv(index=False))
    with pytest.raises(DataError, match="exactly one file"):
        D.read_table(tmp_path / "two.csv.zip")


def test_r_style_row_names(tmp_path):
    (tmp_path / "r.csv").write_text("label,g1\ns1,A,1\ns2,B,2\n")
    with pytest.raises(DataError, match="one field more than the header"):
        D.read_table(tmp_path / "r.csv")


@pytest.mark.parametrize("suffix", [".csv", ".tsv.gz"])
def test_duplicate_column_names_are_named(tmp_path, suffix):
    sep = "," if suffix == ".csv" else "\t"
    text = sep.join(["sample_id", "g1", "g2", "g1", "g2", "g1"]) + "\n" + sep.join(["s1", "1", "2", "3", "4", "5"]) + "\n"
    path = tmp_path / f"dup{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    with pytest.raises(DataError, match=r"duplicate column names .*'g1' \(×3\), 'g2' \(×2\)"):
        D.read_table(path)


def test_duplicate_column_names_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0])], names=["g1", "g1"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"duplicate column names .*'g1' \(×2\)"):
        D.read_table(tmp_path / "dup.parquet")


def test_features_in_rows_duplicates(tmp_path):
    (tmp_path / "s.csv").write_text("feature,s1,s2,s1\ng1,1,2,3\n")
    with pytest.raises(DataError, match=r"duplicate sample ids .*'s1' \(×2\)"):
        D.read_table(tmp_path / "s.csv", features_in_rows=True)
    (tmp_path / "f.csv").write_text("feature,s1,s2\ng1,1,2\ng1,3,4\n")
    with pytest.raises(DataError, match=r"duplicate feature names .*'g1' \(×2\)"):
        D.read_table(tmp_path / "f.csv", features_in_rows=True)


def test_a_stored_pandas_index_is_read_as_the_sample_ids(tmp_path, frame):
    """``set_index("sample_id").rename_axis(None).to_parquet``: the index is the sample ids, read as
    `sample_id` (first, as R's row names), not as a feature column 'index'; with a `sample_id` column, an
    unnamed index (a filtered frame's row numbers) is left out, with a note."""
    frame.set_index("sample_id").rename_axis(None).to_parquet(tmp_path / "idx.parquet")
    got, notes = D.read_table_with_notes(tmp_path / "idx.parquet")
    assert_same_table(got, frame)
    assert any("stored pandas index" in n and "'sample_id'" in n for n in notes)
    ds, _ = D.load_dataset(tmp_path / "idx.parquet")
    assert list(ds.ids) == list(frame["sample_id"]) and "index" not in ds.feature_names
    filtered = frame[frame["label"] != "A"]
    filtered.to_parquet(tmp_path / "filtered.parquet")
    got, notes = D.read_table_with_notes(tmp_path / "filtered.parquet")
    assert_same_table(got, filtered)
    assert any("ignored its stored pandas index" in n for n in notes)
    ds, _ = D.load_dataset(tmp_path / "filtered.parquet")
    assert ds.feature_names == [f"g{j}" for j in range(6)]


def test_features_in_rows_needs_samples(tmp_path):
    (tmp_path / "one.csv").write_text("feature\ng1\ng2\n")
    with pytest.raises(DataError, match="no sample columns"):
        D.read_table(tmp_path / "one.csv", features_in_rows=True)


# ── resolve_roles ────────────────────────────────────────────────────────────────────────────────────────


def test_role_defaults_are_picked_up_and_reported(frame):
    roles, notes = D.resolve_roles(frame.columns)
    assert roles == D.Roles(target=["label"], group="patient_id", id="sample_id", batch="batch", drop=[])
    assert "group: patient_id (default; --no-group to switch off)" in notes
    assert any(n.startswith("id: sample_id (default") for n in notes)
    assert any(n.startswith("batch: batch (default") for n in notes)


def test_no_group_and_absent_defaults(frame):
    roles, notes = D.resolve_roles(frame.columns, no_group=True)
    assert roles.group is None and "group: none (--no-group)" in notes
    roles, notes = D.resolve_roles(["label", "g1"])
    assert (roles.group, roles.id, roles.batch) == (None, None, None)
    assert any("samples are treated as independent" in n for n in notes)


def test_explicit_roles_and_comma_separated_target(frame):
    frame = frame.assign(y2=0, donor=frame["patient_id"])
    roles, _ = D.resolve_roles(frame.columns, target="label, y2", group="donor", batch=None, drop="g5")
    assert roles.target == ["label", "y2"] and roles.group == "donor" and roles.drop == ["g5"]
    roles, _ = D.resolve_roles(frame.columns, target=["label", "y2"])
    assert roles.target == ["label", "y2"]


@pytest.mark.parametrize("kwargs, flag, column", [
    ({"target": "lable"}, "--target", "lable"),
    ({"group": "patient"}, "--group", "patient"),
    ({"id": "sid"}, "--id", "sid"),
    ({"batch": "run"}, "--batch", "run"),
    ({"drop": ["tissue"]}, "--drop", "tissue"),
])
def test_missing_explicit_columns_name_flag_and_column(frame, kwargs, flag, column):
    with pytest.raises(DataError, match=rf"{flag} column '{column}' not found.*available columns: 'sample_id'"):
        D.resolve_roles(frame.columns, **kwargs)


def test_missing_target_suggests_close_match(frame):
    with pytest.raises(DataError, match="did you mean 'label'"):
        D.resolve_roles(frame.columns, target="lable")


def test_role_conflicts_are_config_errors(frame):
    with pytest.raises(ConfigError, match="--group and --no-group"):
        D.resolve_roles(frame.columns, group="patient_id", no_group=True)
    with pytest.raises(ConfigError, match=r"'batch' is given two roles \(--batch and --drop\)"):
        D.resolve_roles(frame.columns, batch="batch", drop="batch")
    with pytest.raises(ConfigError, match="--target names 'label' more than once"):
        D.resolve_roles(frame.columns, target="label,label")


def test_dropping_a_default_column_switches_its_default_off(frame):
    roles, _ = D.resolve_roles(frame.columns, drop="batch")
    assert roles.batch is None and roles.drop == ["batch"]


def test_prediction_tables_need_no_target(frame):
    roles, notes = D.resolve_roles(frame.drop(columns="label").columns, require_target=False)
    assert roles.target == [] and any("predictions only" in n for n in notes)
    roles, _ = D.resolve_roles(frame.columns, require_target=False)
    assert roles.target == ["label"]  # present: kept out of the features
    ds = D.Dataset.from_frame(frame.drop(columns="label"), D.resolve_roles(frame.drop(columns="label").columns,
                                                                          require_target=False)[0])
    assert ds.y is None and ds.task is None and ds.n_features == 6


# ── Dataset.from_frame ───────────────────────────────────────────────────────────────────────────────────


def test_from_frame_arrays(dataset, frame):
    assert dataset.X.shape == (36, 6) and dataset.X.dtype == np.float64
    assert dataset.y.dtype == np.int64 and dataset.classes == ["A", "B", "C"]
    assert dataset.feature_names == [f"g{j}" for j in range(6)]
    assert list(dataset.ids) == list(frame["sample_id"]) and dataset.groups[0] == "P00"
    assert dataset.target_names == ["label"] and (dataset.n_samples, dataset.n_features) == (36, 6)
    sub = dataset.subset([0, 5, 7])
    assert sub.n_samples == 3 and list(sub.ids) == [dataset.ids[i] for i in (0, 5, 7)]
    assert np.array_equal(sub.X, dataset.X[[0, 5, 7]]) and sub.classes == dataset.classes


def test_non_numeric_features(frame):
    frame = frame.assign(tissue="liver", site="x")
    with pytest.raises(DataError, match=r"feature columns must be numeric: 'tissue', 'site' \(2 columns\); "
                                        r"pass them to --drop, or use --id/--batch/--group"):
        build(frame)
    assert build(frame, drop="tissue,site").n_features == 6


def test_duplicate_sample_ids(frame):
    frame.loc[1, "sample_id"] = frame.loc[0, "sample_id"]
    with pytest.raises(DataError, match=r"duplicate sample ids in --id column 'sample_id': 'S00_0' \(×2\)"):
        build(frame)


def test_missing_target_values(frame):
    frame.loc[[1, 4, 9], "label"] = np.nan
    with pytest.raises(DataError, match=r"target has missing values in 3 rows \('label' \(3\)\)"):
        build(frame)


def test_a_label_of_spaces_only_is_missing_not_a_class(frame):
    """A spreadsheet's " " cell became a class named ' ' (counted as a rare class, refused by the folds)."""
    frame.loc[[2, 5], "label"] = " "
    frame.loc[7, "label"] = "\t"
    with pytest.raises(DataError, match=r"target has missing values in 3 rows \('label' \(3\)\)"):
        build(frame)


def test_missing_group_values(frame):
    frame.loc[1, "patient_id"] = np.nan
    with pytest.raises(DataError, match="--group column 'patient_id' has 1 missing value;"):
        build(frame)


def test_missing_features_kept_and_noted(frame):
    """A note, not a warning asking for --impute: the reader cannot tell whether --impute is given, and
    training without it stops with an error that asks for it."""
    frame.loc[[0, 1], "g2"] = np.nan
    frame.loc[3, "g4"] = np.nan
    ds = build(frame)
    assert np.isnan(ds.X).sum() == 3
    assert any("missing values in 2 feature columns: 'g2' (2), 'g4' (1)" in n for n in ds.notes)
    assert not ds.warnings


@pytest.mark.parametrize("command", ["train", "cv"])
def test_imputing_commands_do_not_warn_to_impute(tmp_path, frame, command):
    frame = make_frame(n_patients=20, seed=1)
    frame.loc[::7, "g1"] = np.nan
    write(frame, tmp_path / "nan.csv")
    fast = ["--folds", "2", "--epochs", "2", "--hidden", "", "-q"]
    out = ["-o", str(tmp_path / "m.mlp")] if command == "train" else []
    res = run([command, str(tmp_path / "nan.csv"), "--impute", "median", *fast, *out])
    assert res.exit_code == 0, res.output
    # (2 epochs on 40 samples score near chance, which train says of its estimate: not of the missing values)
    warned = [line for line in res.output.lower().splitlines() if "warning" in line and "near chance" not in line]
    assert "missing values" not in res.output and not warned, res.output
    res = run([command, str(tmp_path / "nan.csv"), *fast, *out])  # without it: the error names the remedy
    assert res.exit_code == 1 and "--impute" in res.output.strip().splitlines()[-1]


def test_infinite_features(frame):
    frame.loc[0, "g3"] = np.inf
    with pytest.raises(DataError, match="infinite values: 'g3'"):
        build(frame)


@pytest.mark.parametrize("labels, task, classes", [
    ([0, 1], "binary", [0, 1]),
    (["no", "yes"], "binary", ["no", "yes"]),
    (["LumB", "Basal", "LumA", "HER2"], "multiclass", ["Basal", "HER2", "LumA", "LumB"]),
    ([3, 1, 2], "multiclass", [1, 2, 3]),
], ids=["binary-int", "binary-str", "multiclass-str", "multiclass-int"])
def test_task_inference_classification(labels, task, classes):
    frame = make_frame(labels=labels)
    ds = build(frame)
    assert ds.task == task and ds.classes == classes
    assert [ds.classes[i] for i in ds.y] == list(frame["label"])
    assert any(n.startswith(f"task: {task} (inferred from {len(classes)} classes in 'label'; --task to override)")
               for n in ds.notes)


def test_task_inference_regression(frame):
    ds = build(frame.assign(label=np.linspace(0.5, 9.7, len(frame))))
    assert ds.task == "regression" and ds.y.shape == (36, 1) and ds.y.dtype == np.float64
    assert ds.classes == ["label"] and any("task: regression (inferred" in n for n in ds.notes)
    many_ints = build(frame.assign(label=np.arange(len(frame)) * 3))  # 36 distinct integers
    assert many_ints.task == "regression"


def test_task_inference_multilabel(frame):
    rng = np.random.default_rng(1)
    frame = frame.assign(tp53=rng.integers(0, 2, len(frame)), kras=rng.integers(0, 2, len(frame)))
    ds = build(frame, target="tp53,kras", drop="label")
    assert ds.task == "multilabel" and ds.y.shape == (36, 2) and set(np.unique(ds.y)) <= {0.0, 1.0}
    assert ds.classes == ["tp53", "kras"] and any("task: multilabel (inferred" in n for n in ds.notes)


def test_several_numeric_targets_are_regression(frame):
    frame = frame.assign(a=np.linspace(0, 1, 36), b=np.linspace(5, 3, 36))
    ds = build(frame, target="a,b", drop="label")
    assert ds.task == "regression" and ds.y.shape == (36, 2)


def test_single_class_is_an_error(frame):
    with pytest.raises(DataError, match="single class .*'A'"):
        build(frame.assign(label="A"))


@pytest.mark.parametrize("change, task, message", [
    ({}, "binary", "--task binary needs 2 classes, but 'label' has 3"),
    ({"label": 5}, "multilabel", "--task multilabel needs 0/1 target columns; 'label'"),
    ({}, "regression", "--task regression needs numeric targets; 'label'"),
])
def test_explicit_task_contradicting_the_data(frame, change, task, message):
    with pytest.raises(DataError, match=message):
        build(frame.assign(**change), task=task)


def test_unknown_task(frame):
    with pytest.raises(ConfigError, match="--task 'ordinal' is not one of"):
        build(frame, task="ordinal")


def test_model_classes_map_labels(frame):
    model_classes = ["C", "B", "A", "D"]  # the model's order, with a class absent from this table
    ds = build(frame, task="multiclass", classes=model_classes)
    assert ds.classes == model_classes
    assert [model_classes[i] for i in ds.y] == list(frame["label"])
    ints = build(make_frame(labels=[1, 0]).assign(label=lambda f: f["label"].astype(str)), classes=[0, 1])
    assert ints.task == "binary" and set(ints.y) == {0, 1}  # "1" in the table matches 1 in the model


def test_unknown_label_for_model(frame):
    with pytest.raises(DataError, match="labels the model does not know: 'C'; its classes are 'A', 'B'"):
        build(frame, task="multiclass", classes=["A", "B", "D"])


def test_rare_class_warning():
    frame = make_frame(labels=["A"] * 5 + ["B"])  # B: 2 patients × 3 samples
    frame.loc[frame.index[-1], "label"] = "C"
    ds = build(frame)
    assert any("rare classes in 'label' with fewer than 5 samples: 'C' (1)" in w for w in ds.warnings)


# ── Preprocessor ─────────────────────────────────────────────────────────────────────────────────────────


def toy_matrix(n: int = 40, d: int = 8, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    X = rng.lognormal(mean=1.0, sigma=1.0, size=(n, d)) * rng.uniform(0.5, 5, size=d)
    return X, [f"g{j}" for j in range(d)]


def test_preprocessing_is_fitted_on_training_rows_only():
    X, names = toy_matrix()
    train, val = np.arange(30), np.arange(30, 40)
    X[val] *= 3.0  # a shifted cohort
    pre = D.Preprocessor(D.PreprocessConfig(log1p=True)).fit(X[train], names)
    Z_train, Z_val = pre.transform(X[train]), pre.transform(X[val])
    np.testing.assert_allclose(Z_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(axis=0), 1, atol=1e-12)
    assert np.abs(Z_val.mean(axis=0)).max() > 0.3  # validation rows are not re-standardised
    np.testing.assert_allclose(pre.train_mean_, 0, atol=1e-12)
    np.testing.assert_allclose(pre.train_sd_, 1, atol=1e-12)

    X_other = X.copy()
    X_other[val] = np.random.default_rng(9).uniform(0, 1000, size=X[val].shape)  # validation rows changed
    again = D.Preprocessor(D.PreprocessConfig(log1p=True)).fit(X_other[train], names)
    for key, arr in pre.state()[1].items():
        np.testing.assert_array_equal(arr, again.state()[1][key], err_msg=key)


def test_transform_does_not_modify_input_and_never_refits():
    X, names = toy_matrix()
    X[3, 2] = np.nan
    before = X.copy()
    pre = D.Preprocessor(D.PreprocessConfig(log1p=True, impute="median")).fit(X, names)
    state_before = pre.state()[1]
    pre.transform(X[:5] * 10)
    np.testing.assert_array_equal(X, before)
    for key, arr in pre.state()[1].items():
        np.testing.assert_array_equal(arr, state_before[key])


def test_state_round_trip_gives_identical_transforms():
    X, names = toy_matrix(d=12)
    X[:, 3] = 2.0  # constant: dropped
    X[5, 1] = np.nan
    pre = D.Preprocessor(D.PreprocessConfig(log1p=True, top_var=6, impute="mean")).fit(X, names)
    meta, arrays = pre.state()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        restored = D.Preprocessor.from_state(json.loads(json.dumps(meta)), dict(loaded))
    X_new, _ = toy_matrix(n=7, d=12, seed=3)
    X_new[2, 1] = np.nan
    np.testing.assert_array_equal(restored.transform(X_new), pre.transform(X_new))
    assert restored.kept_features == pre.kept_features and restored.dropped_constant == ["g3"]


def test_from_state_rejects_inconsistent_arrays():
    X, names = toy_matrix()
    meta, arrays = D.Preprocessor().fit(X, names).state()
    with pytest.raises(ModelFileError, match="do not match"):
        D.Preprocessor.from_state(meta, {**arrays, "center": arrays["center"][:-1]})
    with pytest.raises(ModelFileError, match="missing"):
        D.Preprocessor.from_state(meta, {k: v for k, v in arrays.items() if k != "scale"})
    with pytest.raises(ModelFileError, match="version"):
        D.Preprocessor.from_state({**meta, "version": 99}, arrays)


def test_log1p_rejects_negative_values_naming_the_column():
    X, names = toy_matrix()
    X[4, 5] = -1.5
    with pytest.raises(DataError, match=r"log1p needs non-negative input.*first 'g5', min -1.5"):
        D.Preprocessor(D.PreprocessConfig(log1p=True)).fit(X, names)
    X[4, 5] = 1.0
    pre = D.Preprocessor(D.PreprocessConfig(log1p=True)).fit(X, names)
    X[0, 2] = -3
    with pytest.raises(DataError, match="first 'g2'"):
        pre.transform(X)


def test_missing_values_need_impute():
    X, names = toy_matrix()
    X[[1, 2], 0] = np.nan
    X[7, 4] = np.nan
    with pytest.raises(DataError, match=r"missing values in 2 feature columns: 'g0' \(2\), 'g4' \(1\) \(counted in "
                                        r"the training rows\); pass --impute median\|mean\|zero\|min \(min for values below a detection limit\)"):
        D.Preprocessor().fit(X, names)
    pre = D.Preprocessor().fit(np.nan_to_num(X), names)
    with pytest.raises(DataError, match="--impute"):
        pre.transform(X)


@pytest.mark.parametrize("method", ["median", "mean", "zero"])
def test_imputation_uses_training_statistics(method):
    X, names = toy_matrix(n=41)
    X[[0, 3, 9], 1] = np.nan
    pre = D.Preprocessor(D.PreprocessConfig(impute=method, standardize=False)).fit(X, names)
    expected = {"median": np.nanmedian, "mean": np.nanmean, "zero": lambda a: 0.0}[method](X[:, 1])
    assert pre.transform(X)[0, 1] == pytest.approx(expected)
    assert not np.isnan(pre.transform(X)).any()


def test_nan_median_matches_numpy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 50))
    X[rng.random(X.shape) < 0.3] = np.nan
    X[:, 7] = np.nan
    mask = np.isnan(X)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(X, axis=0)
    np.testing.assert_allclose(column_stats.nan_median(X, mask, mask.sum(axis=0)), expected)


def test_all_missing_feature_is_dropped_with_warning():
    X, names = toy_matrix()
    X[:, 6] = np.nan
    pre = D.Preprocessor(D.PreprocessConfig(impute="median")).fit(X, names)
    assert "g6" not in pre.kept_features and "g6" in pre.dropped_constant
    assert any("no values on the training rows: 'g6'" in w for w in pre.warnings)


def test_constant_features_dropped_and_top_var():
    X, names = toy_matrix(d=10)
    X[:, [2, 7]] = 5.0
    X[:, 4] *= 100  # by far the most variable
    pre = D.Preprocessor(D.PreprocessConfig(top_var=3)).fit(X, names)
    assert pre.dropped_constant == ["g2", "g7"]
    assert any(w.startswith("dropped 2 features constant on the training rows: 'g2', 'g7'") for w in pre.warnings)
    assert len(pre.kept_features) == 3 and "g4" in pre.kept_features
    variances = X.var(axis=0)
    assert set(pre.kept_features) == {names[j] for j in np.argsort(-variances)[:3]}
    assert pre.transform(X, dtype=np.float32).dtype == np.float32


def test_top_var_larger_than_available_keeps_all():
    X, names = toy_matrix()
    pre = D.Preprocessor(D.PreprocessConfig(top_var=100)).fit(X, names)
    assert pre.kept_features == names and any("--top-var 100 is more than the 8" in w for w in pre.warnings)


def test_no_standardize_passes_values_through():
    X, names = toy_matrix()
    pre = D.Preprocessor(D.PreprocessConfig(log1p=True, standardize=False)).fit(X, names)
    np.testing.assert_allclose(pre.transform(X), np.log1p(X))
    np.testing.assert_allclose(pre.train_mean_, np.log1p(X).mean(axis=0))


@pytest.mark.parametrize("config, flag", [
    (D.PreprocessConfig(impute="knn"), "--impute"),
    (D.PreprocessConfig(top_var=0), "--top-var"),
])
def test_invalid_preprocess_config(config, flag):
    with pytest.raises(ConfigError, match=flag):
        D.Preprocessor(config)


def test_transform_checks_width_and_all_constant():
    X, names = toy_matrix()
    pre = D.Preprocessor().fit(X, names)
    with pytest.raises(DataError, match="expected 8 feature columns"):
        pre.transform(X[:, :5])
    with pytest.raises(DataError, match="all 8 features are constant"):
        D.Preprocessor().fit(np.ones((5, 8)), names)


# ── split ────────────────────────────────────────────────────────────────────────────────────────────────


def grouped_dataset(group_sizes: list[int], group_classes: list[int], task: str = "auto",
                    batches: list[str] | None = None) -> D.Dataset:
    """One row per sample; the class (and batch) is constant within a group."""
    groups = np.repeat([f"P{g}" for g in range(len(group_sizes))], group_sizes)
    labels = np.repeat([f"c{c}" for c in group_classes], group_sizes)
    frame = pd.DataFrame({"patient_id": groups, "label": labels, "g0": np.arange(len(groups), dtype=float)})
    if batches is not None:
        frame["batch"] = np.repeat(batches, group_sizes)
    return build(frame, task=task)


@st.composite
def group_layouts(draw):
    n_classes = draw(st.integers(2, 4))
    groups_per_class = draw(st.lists(st.integers(2, 7), min_size=n_classes, max_size=n_classes))
    group_classes = [c for c, k in enumerate(groups_per_class) for _ in range(k)]
    sizes = draw(st.lists(st.integers(1, 5), min_size=len(group_classes), max_size=len(group_classes)))
    order = draw(st.permutations(range(len(group_classes))))
    return [sizes[i] for i in order], [group_classes[i] for i in order]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=group_layouts(), val_size=st.sampled_from([0.2, 0.25, 1 / 3, 0.5]), seed=st.integers(0, 2**16),
       task=st.sampled_from(["classification", "regression"]))
def test_grouped_split_never_shares_a_group(layout, val_size, seed, task):
    sizes, classes = layout
    if task == "classification":
        ds = grouped_dataset(sizes, classes)
    else:  # a numeric, group-constant target exercises GroupShuffleSplit
        ds = regression_grouped(sizes, [c + 0.5 for c in classes])
    try:
        train, val, summary = splits.holdout(ds, val_size=val_size, seed=seed)
    except DataError as exc:  # only the documented "not enough groups" refusal is acceptable
        assert "too few" in str(exc), str(exc)
        return
    assert len(train) and len(val)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(ds.n_samples))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert not set(ds.groups[train]) & set(ds.groups[val])
    assert summary.n_train == len(train) and summary.n_val == len(val)
    assert summary.n_groups_train + summary.n_groups_val == len(sizes)
    json.dumps(asdict(summary))
    n_folds = max(2, round(1 / val_size))
    if task == "classification" and min(Counter(classes).values()) >= n_folds:
        # stratification: with enough groups per class, every class is on both sides
        assert set(ds.y[train]) == set(ds.y[val]) == set(range(len(ds.classes)))


def regression_grouped(sizes: list[int], values: list[float]) -> D.Dataset:
    groups = np.repeat([f"P{g}" for g in range(len(sizes))], sizes)
    frame = pd.DataFrame({"patient_id": groups, "label": np.repeat(values, sizes), "g0": 1.0})
    return build(frame, task="regression")


def test_grouped_split_is_deterministic_and_stratified():
    ds = grouped_dataset([3] * 30, [g % 3 for g in range(30)])
    first = splits.holdout(ds, 0.2, seed=4)
    again = splits.holdout(ds, 0.2, seed=4)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    train, val, summary = first
    assert summary.strategy.startswith("StratifiedGroupKFold by patient_id")
    assert all(summary.class_counts_train[c] > 0 and summary.class_counts_val[c] > 0 for c in ds.classes)
    assert 0.1 < len(val) / ds.n_samples < 0.3 and not summary.warnings
    other = splits.holdout(ds, 0.2, seed=5)
    assert not np.array_equal(other[1], val)


def test_ungrouped_stratified_split_keeps_every_class_on_both_sides():
    frame = make_frame(n_patients=20, per_patient=1, labels=["A"] * 8 + ["B"]).drop(columns="patient_id")
    frame.loc[[0, 1], "label"] = "C"  # a rare class of 2 samples
    ds = build(frame)
    for seed in range(5):
        train, val, summary = splits.holdout(ds, 0.25, seed=seed)
        assert summary.strategy == "StratifiedShuffleSplit (no group column)"
        assert set(ds.y[train]) == set(ds.y[val]) == {0, 1, 2}
        assert summary.n_groups_train is None


def test_ungrouped_regression_uses_shuffle_split(frame):
    ds = build(frame.assign(label=np.linspace(0, 1, 36)).drop(columns="patient_id"))
    train, val, summary = splits.holdout(ds, 0.25, seed=1)
    assert summary.strategy == "ShuffleSplit (no group column)" and len(val) == 9
    assert summary.class_counts_train == {} and summary.class_counts_val == {}


def test_class_with_one_sample_cannot_be_split(frame):
    frame = frame.drop(columns="patient_id")
    frame.loc[0, "label"] = "Z"
    with pytest.raises(DataError, match="class 'Z' has 1 sample; it cannot appear on both"):
        splits.holdout(build(frame), 0.2)


def test_class_in_one_group_cannot_be_split():
    ds = grouped_dataset([3] * 10, [0, 0, 0, 1, 1, 1, 1, 0, 0, 2])
    with pytest.raises(DataError, match="class 'c2' has 3 samples, all from 1 group in 'patient_id'; it cannot "
                                        "appear on both"):
        splits.holdout(ds, 0.2)


def test_too_few_groups():
    with pytest.raises(DataError, match="4 groups in 'patient_id' are too few for --val-size 0.1"):
        splits.holdout(grouped_dataset([4, 4, 4, 4], [0, 1, 0, 1]), 0.1)
    # a class in one group: that is the reason, whatever the share (no --val-size would help)
    with pytest.raises(DataError, match="class .* has 4 samples, all from 1 group in 'patient_id'"):
        splits.holdout(grouped_dataset([4, 4, 4], [0, 1, 1]), 0.2)
    frame = pd.DataFrame({"patient_id": "P1", "label": np.linspace(0, 1, 12), "g0": 1.0})
    with pytest.raises(DataError, match="only 1 group in 'patient_id'.*--no-group"):
        splits.holdout(build(frame, task="regression"), 0.2)


@pytest.mark.parametrize("val_size", [0, 1, 1.5, -0.2, "0.2"])
def test_val_size_out_of_range(dataset, val_size):
    with pytest.raises(ConfigError, match="--val-size"):
        splits.holdout(dataset, val_size)


def test_one_sided_batch_warning():
    # batch B9 is a single patient, so it can only be on one side
    ds = grouped_dataset([3] * 20, [g % 2 for g in range(20)], batches=["B1"] * 19 + ["B9"])
    train, val, summary = splits.holdout(ds, 0.25, seed=0)
    side = "training" if "B9" in summary.batch_counts_train else "validation"
    assert any(w.startswith(f"batch 'B9' is only in the {side} rows (3 samples)") for w in summary.warnings)
    assert sum(summary.batch_counts_train.values()) == len(train)


def test_summarize_split_for_an_explicit_validation_table():
    ds = grouped_dataset([2] * 12, [g % 3 for g in range(12)])
    train = ds.subset(np.flatnonzero(np.isin(ds.groups, [f"P{g}" for g in range(9)])))
    val = ds.subset(np.flatnonzero(np.isin(ds.groups, ["P9", "P10"])))  # classes c0, c1 only
    summary = splits.summarize_split(train, val, "explicit validation table")
    assert summary.strategy == "explicit validation table" and (summary.n_train, summary.n_val) == (18, 4)
    assert summary.class_counts_val == {"c0": 2, "c1": 2, "c2": 0}
    assert any(w.startswith("class 'c2' is only in the training rows (6 samples)") for w in summary.warnings)
    with pytest.raises(DataError, match=r"1 group in 'patient_id' appears in both .*--val-data.*'P0'.*remove it "):
        splits.summarize_split(train, ds.subset([0, 1]), "explicit validation table")
    with pytest.raises(DataError, match=r"2 groups in 'patient_id' appear in both .*--val-data.*remove them "):
        splits.summarize_split(train, ds.subset([0, 1, 2, 3]), "explicit validation table")


def test_the_table_notes_count_thousands_with_a_separator_and_one_in_the_singular():
    """"features: 1 numeric columns, 1000 samples" beside "groups: 1,000 in ..."; "1,000 samples of 1 patients"."""
    frame = pd.DataFrame({"label": list("abab") * 250, "patient_id": "P1",
                          "g0": np.random.default_rng(0).normal(size=1000)})
    ds, _ = D.load_dataset(frame, no_group=True)
    assert "features: 1 numeric column, 1,000 samples" in ds.notes, ds.notes
    assert any("--no-group, but 'patient_id' repeats: 1,000 samples of 1 patient (1,000.0 each)" in w
               for w in ds.warnings), ds.warnings


def test_split_messages_count_one_sample_and_one_group_in_the_singular():
    """"(1 samples)", "gives 1 validation samples" and "1 groups ... appear": a count of one said in the plural."""
    ds = grouped_dataset([2, 2, 2, 2, 1], [0, 1, 0, 1, 2])
    summary = splits.summarize_split(ds.subset(np.flatnonzero(np.isin(ds.groups, ["P2", "P3", "P4"]))),
                                     ds.subset([0, 1, 2, 3]))
    assert "class 'c2' is only in the training rows (1 sample); validation metrics do not cover it" in summary.warnings
    ungrouped = build(pd.DataFrame({"label": ["a", "b"] * 5, "g0": np.arange(10.0)}))
    with pytest.raises(DataError, match=r"--val-size 0.1 gives 1 validation sample, fewer than the 2 classes"):
        splits.holdout(ungrouped, val_size=0.1)


def test_a_multilabel_labels_positives_on_one_side_are_not_called_a_class():
    """A label whose positives all sit on one side was warned of as "class 'rare' is only in the training rows
    (4 samples)": a multi-label label is no class of 4 samples, every row holds it, present or absent."""
    y = np.zeros((12, 2))
    y[::2, 0] = 1
    y[:4, 1] = 1  # 'rare': positive in the first 4 rows only
    ds = D.Dataset(X=np.zeros((12, 1)), y=y, feature_names=["g0"], task="multilabel", classes=["common", "rare"])
    summary = splits.summarize_split(ds.subset(np.arange(8)), ds.subset(np.arange(8, 12)), "explicit validation table")
    assert summary.warnings == ["label 'rare' has positives only in the training rows (4 positives); validation "
                                "metrics do not cover it"]
    summary = splits.summarize_split(ds.subset(np.arange(4, 12)), ds.subset(np.arange(4)), "explicit validation table")
    assert summary.warnings == ["label 'rare' has positives only in the validation rows (4 positives); the model "
                                "never trains on it"]


def test_leakage_guard_raises_internal_error():
    ds = D.Dataset(X=np.zeros((3, 1)), y=None, feature_names=["f"], task=None, groups=np.array(["a", "b", "c"]))
    splits.check_disjoint(ds, np.array([0, 1]), np.array([2]), "a split")  # disjoint: fine
    with pytest.raises(D.SplitLeakageError, match="groups on both sides of a split: 'b'"):
        splits.check_disjoint(ds, np.array([0, 1]), np.array([1, 2]), "a split")
    # float groups: intersect1d never matches NaN with NaN, which hid a missing group on both sides
    ds = D.Dataset(X=np.zeros((4, 1)), y=None, feature_names=["f"], task=None, groups=np.array([1.0, np.nan, 2.0, np.nan]))
    splits.check_disjoint(ds, np.array([0, 1]), np.array([2]), "a split")
    with pytest.raises(D.SplitLeakageError, match="groups on both sides of a split"):
        splits.check_disjoint(ds, np.array([0, 1]), np.array([2, 3]), "a split")


def test_multilabel_split_counts_positives(frame):
    rng = np.random.default_rng(0)
    frame = frame.assign(m1=rng.integers(0, 2, 36), m2=rng.integers(0, 2, 36))
    ds = build(frame, target="m1,m2", drop="label")
    train, val, summary = splits.holdout(ds, 0.25, seed=0)
    assert summary.strategy == "GroupShuffleSplit by patient_id"
    assert summary.class_counts_train["m1"] + summary.class_counts_val["m1"] == int(ds.y[:, 0].sum())


# ── class weights and checksum ───────────────────────────────────────────────────────────────────────────


def test_class_weights_balanced_matches_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 0, 1, 2, 2, 1, 0])
    got = D.class_weights(y, 3, "balanced", ["A", "B", "C"])
    np.testing.assert_allclose(got, compute_class_weight("balanced", classes=np.arange(3), y=y))
    assert got.dtype == np.float64 and got.shape == (3,)


def test_class_weights_none_and_explicit():
    y = np.array([0, 1, 1, 2])
    assert D.class_weights(y, 3, None, ["A", "B", "C"]) is None
    assert D.class_weights(y, 3, "none", ["A", "B", "C"]) is None
    np.testing.assert_array_equal(D.class_weights(y, 3, "A=1, C=3.5", ["A", "B", "C"]), [1.0, 1.0, 3.5])
    np.testing.assert_array_equal(D.class_weights(y, 2, "1=4", [0, 1]), [1.0, 4.0])


def test_class_weights_multilabel_zero_one():
    y = np.array([[0, 1], [0, 0], [1, 0], [0, 0.0]])
    np.testing.assert_allclose(D.class_weights(y, 2, "balanced", [0, 1]), [8 / (2 * 6), 8 / (2 * 2)])


@pytest.mark.parametrize("spec, message", [
    ("X=2", "unknown class 'X'; valid labels: 'A', 'B', 'C'"),
    ("A=0", "must be a positive number, got '0'"),
    ("A=-1", "positive number"),
    ("A=heavy", "positive number, got 'heavy'"),
    ("A:2", "LABEL=WEIGHT pairs"),
    ("A=1,A=2", "gives class 'A' twice"),
])
def test_class_weights_bad_spec(spec, message):
    with pytest.raises(ConfigError, match=f"--class-weight.*{message}"):
        D.class_weights(np.array([0, 1, 2]), 3, spec, ["A", "B", "C"])


def test_class_weights_balanced_with_absent_class():
    with pytest.raises(DataError, match="--class-weight balanced: class 'C' has no training samples"):
        D.class_weights(np.array([0, 1, 1]), 3, "balanced", ["A", "B", "C"])


def test_data_checksum():
    X, _ = toy_matrix()
    y = np.arange(40)
    digest = D.data_checksum(X, y)
    assert len(digest) == 64 and digest == D.data_checksum(X.copy(), y.copy())
    assert digest != D.data_checksum(X, y[::-1].copy())
    assert digest != D.data_checksum(X, None)


def test_the_provenance_checksum_tells_tables_named_otherwise_apart():
    """y holds class indices: relabelling the classes (or renaming the genes) kept the same checksum, so a
    model's provenance could not tell a table from its relabelled copy."""
    frame = pd.DataFrame({"g1": [0.1, 0.5, 0.3, 0.9], "g2": [1.0, 2.0, 3.0, 4.0], "label": ["a", "b", "a", "b"]})
    roles, _ = D.resolve_roles(frame.columns)
    base = D.Dataset.from_frame(frame, roles)
    relabelled = D.Dataset.from_frame(frame.assign(label=frame["label"].map({"a": "x", "b": "y"})), roles)
    renamed = frame.rename(columns={"g1": "TP53"})
    genes = D.Dataset.from_frame(renamed, D.resolve_roles(renamed.columns)[0])
    assert np.array_equal(base.y, relabelled.y) and np.array_equal(base.X, genes.X)
    assert len({base.checksum(), relabelled.checksum(), genes.checksum()}) == 3
    assert base.checksum() == D.Dataset.from_frame(frame.copy(), roles).checksum()


def test_a_training_label_that_never_changes_is_warned_about():
    frame = pd.DataFrame({"g1": [0.1, 0.5, 0.3, 0.9], "t1": [0, 1, 0, 1], "t2": [0, 0, 0, 0]})
    roles, _ = D.resolve_roles(frame.columns, target=["t1", "t2"])
    ds = D.Dataset.from_frame(frame, roles)
    assert ds.task == "multilabel"
    assert any("label 't2' (always 0) never changes" in w for w in ds.warnings)
    assert not any("'t1'" in w for w in ds.warnings)


def test_no_group_leaves_the_default_patient_column_out_of_the_features(tmp_path):
    """The notes advise --no-group ("group: patient_id (default; --no-group to switch off)"), but with it the
    patient ids became a feature column: an error for text ids ("feature columns must be numeric:
    'patient_id'"), a silent feature for numeric ones."""
    roles, notes = D.resolve_roles(["sample_id", "patient_id", "label", "g1"], no_group=True)
    assert roles.group is None and roles.drop == ["patient_id"]
    assert "group: none (--no-group)" in notes and "dropped: patient_id" in notes
    from tables import make_table

    frame = make_table(n_patients=20, n_features=3)
    frame["patient_id"] = frame["patient_id"].astype("category").cat.codes  # numeric ids: no error, a feature
    frame.to_csv(tmp_path / "t.csv", index=False)
    ds, _ = D.load_dataset(str(tmp_path / "t.csv"), no_group=True)
    assert ds.groups is None and "patient_id" not in ds.feature_names


def test_training_without_impute_names_every_column_with_missing_values_at_once(tmp_path):
    """An ensemble's first member named only the columns missing in its own training rows: 2 of 5 here, and
    the next run 3 more. The whole table is counted now."""
    from cli_helpers import assert_clean_error, run
    from tables import make_table

    df = make_table("multiclass", seed=2, n_patients=30, n_features=8)
    for j in range(5):
        df.loc[j * 7, f"f{j:02d}"] = np.nan
    path = tmp_path / "miss.csv"
    df.to_csv(path, index=False)
    res = run(["train", str(path), "--folds", "2", "--epochs", "2", "--hidden", "8", "-q", "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "missing values in 5 feature columns: 'f00' (1), 'f01' (1), 'f02' (1), 'f03' (1), "
                            "'f04' (1); the first in 'f00' at row 1 (id 'S0000'); pass --impute")
    assert not (tmp_path / "m.mlp").exists()


def test_infinite_feature_values_name_the_file_and_first_cell(tmp_path):
    """The error named the columns only; a user with thousands of rows had to search for the cell."""
    path = tmp_path / "inf.csv"
    path.write_text("sample_id,label,g1,g2\nS1,a,1,2\nS2,b,inf,3\nS3,a,1,2\nS4,b,2,1e500\n")
    with pytest.raises(DataError, match=r"inf\.csv: feature columns hold infinite values: 'g1', 'g2'; the first, "
                                        r"inf in 'g1' at row 2 \(id 'S2'\); replace them"):
        D.load_dataset(path, group=None)


def test_one_constant_feature_is_said_in_the_singular():
    """"dropped 1 features constant on the training rows"; "all 1 features are constant"."""
    X, names = toy_matrix(d=4)
    X[:, 1] = 5.0
    pre = D.Preprocessor(D.PreprocessConfig()).fit(X, names)
    assert any(w.startswith("dropped 1 feature constant on the training rows: 'g1'") for w in pre.warnings)
    with pytest.raises(DataError, match="^the feature is constant on the training rows"):
        D.Preprocessor(D.PreprocessConfig()).fit(X[:, [1]], ["g1"])


def test_thousands_of_constant_features_are_counted_with_a_separator():
    """"dropped 1200 features constant" and "all 1200 features are constant", where the notes write 1,200."""
    X, names = toy_matrix(d=1201)
    X[:, 1:] = 5.0
    pre = D.Preprocessor(D.PreprocessConfig()).fit(X, names)
    assert any(w.startswith("dropped 1,200 features constant on the training rows") for w in pre.warnings)
    with pytest.raises(DataError, match="^all 1,200 features are constant on the training rows"):
        D.Preprocessor(D.PreprocessConfig()).fit(X[:, 1:], names[1:])


def test_a_table_of_one_feature_is_said_in_the_singular():
    """"features: 1 numeric columns, 2 samples"."""
    frame = pd.DataFrame({"sample_id": ["s1", "s2", "s3"], "label": ["a", "b", "a"], "g1": [1.0, 2.0, 3.0]})
    ds = D.Dataset.from_frame(frame, D.Roles(target=["label"], id="sample_id"))
    assert "features: 1 numeric column, 3 samples" in ds.notes
