"""Ids and labels as people type them: sample ids pandas would read as missing (a sample named NA or None), labels
differing from the model's classes by a stray space or letter case, and patient ids spelled two ways."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io, predict as lib
from mlpcli.errors import DataError
from cli_helpers import assert_clean_error, run


FAST = ["--epochs", "2", "--folds", "1", "--hidden", "", "-q"]


# the tokens pandas (and so training) reads as missing in a feature or label cell, written as sample ids
TOKENS = ["NA", "None", "nan", "NULL", "<NA>", "n/a", "#N/A", "null", "NaN"]


def cohort(ids, seed=0, labels=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(ids)
    labels = labels if labels is not None else ["Normal", "Tumour"] * (n // 2)
    frame = pd.DataFrame({"sample_id": ids, "label": labels})
    for j in range(4):
        frame[f"g{j}"] = rng.normal(size=n) + (np.asarray(labels) == labels[0]) * (j == 0) * 2.0
    return frame


def write(frame: pd.DataFrame, path, quoted: bool = False) -> str:
    text = frame.to_csv(index=False, na_rep="")  # ids written as they are: NA stays NA
    if quoted:  # a quoted field holding the separator: predict's reader leaves its fast tokenizer for pyarrow's
        lines = text.splitlines()
        text = "\n".join([lines[0] + ",note"] + [line + ',"a, b"' for line in lines[1:]]) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return str(path)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("model")
    path = write(cohort([f"S{i}" for i in range(40)]), tmp / "train.csv")
    out = str(tmp / "m.mlp")
    res = run(["train", path, "--no-group", *FAST, "-o", out])
    assert res.exit_code == 0, res.output
    return out


def ids_with_tokens() -> list[str]:
    ids = [f"S{i}" for i in range(40)]
    for k, token in enumerate(TOKENS):
        ids[2 * k + 1] = token
    return ids


def test_ids_that_look_missing_are_read_as_written_in_training(tmp_path):
    """A sample named NA (or None, NULL, nan) was 'the id column is empty at row 2' in train and predict, though
    the cell is not empty and the same table as parquet, or the same id in a genes x samples header, was read."""
    ids = ids_with_tokens()
    for quoted in (False, True):
        path = write(cohort(ids), tmp_path / f"t{quoted}.csv", quoted=quoted)
        ds, _ = data.load_dataset(path, no_group=True, drop=["note"] if quoted else ())
        assert list(ds.ids) == ids
    frame = cohort(ids)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    assert list(data.load_dataset(str(tmp_path / "t.parquet"), no_group=True)[0].ids) == ids


@pytest.mark.parametrize("quoted", [False, True], ids=["tokenizer", "pyarrow"])
def test_ids_that_look_missing_are_predicted_under_their_names(tmp_path, model, quoted):
    ids = ids_with_tokens()
    path = write(cohort(ids), tmp_path / "new.csv", quoted=quoted)
    out = tmp_path / "p.csv"
    res = run(["predict", model, path, "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out, dtype=str, keep_default_na=False)["sample_id"].tolist() == ids
    frame = pd.concat(lib.predict_stream(model_io.load(model), path, chunksize=7))  # pieces of 7 rows
    assert frame["sample_id"].tolist() == ids
    res = run(["evaluate", model, path, "-q"])  # the labels still read, the ids unique
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("command", ["train", "predict"])
def test_an_empty_id_cell_is_still_an_error_naming_column_and_row(tmp_path, model, command):
    ids = ids_with_tokens()
    ids[6] = ""
    path = write(cohort(ids), tmp_path / "t.csv")
    args = ["train", path, "--no-group", *FAST, "-o", str(tmp_path / "x.mlp")] if command == "train" else \
        ["predict", model, path, "-o", str(tmp_path / "x.csv")]
    assert_clean_error(run(args), "t.csv: the id column 'sample_id' is empty at row 7")


def test_a_label_none_is_a_label_in_evaluate_as_in_train(tmp_path, model):
    """predict's reader took pyarrow's missing-value tokens, which lack pandas' None and <NA>: a label None was a
    missing label in train and an unknown class in evaluate. Both now read the documented tokens only (empty,
    NA, N/A, NULL, NaN, #N/A): None is a class ("no response"), as in a parquet file, in train and evaluate."""
    frame = cohort([f"S{i}" for i in range(40)])
    frame.loc[4, "label"] = "None"
    path = write(frame, tmp_path / "t.csv")
    assert_clean_error(run(["evaluate", model, path]), "labels the model does not know: 'None'", "row 5")
    frame.loc[4, "label"] = "NA"
    path = write(frame, tmp_path / "t.csv")
    # said as read: a cell holding NA is a missing label, as R writes one (not an empty cell to hunt for)
    assert_clean_error(run(["evaluate", model, path]), "the target 'label' has missing values", "NA / NULL",
                       "read as missing", "row 5")
    assert_clean_error(run(["train", path, "--no-group", *FAST, "-o", str(tmp_path / "x.mlp")]),
                       "target has missing values in 1 row")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_none_is_a_class_and_a_batch_in_text_as_in_parquet(tmp_path, fmt):
    """A text table read 'None' as missing (pandas' default tokens) where a parquet file keeps it as text: a class
    None ("no response") stopped training as missing labels, and batches None and null merged into one."""
    rng = np.random.default_rng(3)
    n = 90
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"g{j}" for j in range(6)])
    frame.insert(0, "label", np.array(["None", "Partial", "Complete"])[np.arange(n) % 3])
    frame.insert(1, "batch", np.array(["None", "b2"])[np.arange(n) % 2])
    path = tmp_path / f"resp.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    res = run(["train", str(path), "--no-group", *FAST, "-o", str(tmp_path / "r.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[res.output.index("{"):])
    info = run(["info", str(tmp_path / "r.mlp"), "--json"])
    assert sorted(json.loads(info.output)["classes"]) == ["Complete", "None", "Partial"]
    assert "missing" not in " ".join(doc.get("warnings", [])).lower()


def test_repeated_na_ids_say_they_are_read_as_ids(tmp_path):
    ids = [f"S{i}" for i in range(40)]
    ids[3] = ids[9] = "NA"
    path = write(cohort(ids), tmp_path / "t.csv")
    assert_clean_error(run(["train", path, "--no-group", *FAST, "-o", str(tmp_path / "x.mlp")]),
                       "duplicate sample ids in --id column 'sample_id': 'NA' (×2)", "'NA' is read as a sample id")


def test_a_sheet_id_na_joins_the_matrix_column_na(tmp_path):
    """A genes x samples matrix's header read a sample 'NA' as its id, the sample sheet's id column as a missing
    id: 'the id column is empty at line 6'."""
    rng = np.random.default_rng(1)
    samples = [f"GSM{i}" for i in range(24)]
    samples[4] = "NA"
    matrix = pd.DataFrame(rng.poisson(30, size=(5, 24)), columns=samples)
    matrix.insert(0, "gene", [f"G{i}" for i in range(5)])
    matrix.to_csv(tmp_path / "m.csv", index=False)
    sheet = pd.DataFrame({"sample_id": samples, "disease": ["case", "ctrl"] * 12})
    write(sheet, tmp_path / "s.csv")
    ds, notes = data.load_dataset(str(tmp_path / "m.csv"), features_in_rows=True, samples=str(tmp_path / "s.csv"),
                                  target="disease", no_group=True)
    assert list(ds.ids) == samples
    assert any("24 of the 24 samples" in n for n in notes)
    sheet.loc[10, "sample_id"] = "NA"
    write(sheet, tmp_path / "s2.csv")
    with pytest.raises(DataError, match=r"duplicate sample id 'NA' at lines 6 and 12 .*'NA' is read as a sample id"):
        data.read_sample_sheet(str(tmp_path / "s2.csv"))
    sheet.loc[10, "sample_id"] = ""
    write(sheet, tmp_path / "s3.csv")
    with pytest.raises(DataError, match=r"the id column 'sample_id' is empty at line 12"):
        data.read_sample_sheet(str(tmp_path / "s3.csv"))


def test_labels_with_a_stray_space_match_the_models_classes_in_evaluate(tmp_path, model):
    """'Tumour ' (a spreadsheet's stray space) was 'labels the model does not know: Tumour ' in evaluate; it can only
    mean the class Tumour, as the README says of 1.0 for the class 1."""
    frame = cohort([f"S{i}" for i in range(40)], seed=3)
    clean = lib.evaluate(model_io.load(model), frame)
    spaced = frame.assign(label=[f"{v} " if i % 3 else f" {v}" for i, v in enumerate(frame["label"])])
    path = write(spaced, tmp_path / "spaced.csv")
    res = run(["evaluate", model, path, "--json"])
    assert res.exit_code == 0, res.output
    assert lib.evaluate(model_io.load(model), spaced).metrics == clean.metrics


def test_labels_in_another_letter_case_are_an_error_that_says_so(tmp_path, model):
    frame = cohort([f"S{i}" for i in range(40)], seed=3)
    frame["label"] = frame["label"].str.lower()
    path = write(frame, tmp_path / "lower.csv")
    assert_clean_error(run(["evaluate", model, path]), "labels the model does not know: 'normal', 'tumour'",
                       "'normal' differs from the model's class 'Normal' only in letter case")


def test_a_space_does_not_match_when_it_would_be_ambiguous(tmp_path):
    # the model's classes 'a' and 'a ' (trained apart, with a warning): a label ' a' matches neither
    labels = ["a", "a ", "b"] * 10
    frame = cohort([f"S{i}" for i in range(30)], labels=labels)
    ds, _ = data.load_dataset(write(frame, tmp_path / "t.csv"), no_group=True)
    assert ds.classes == ["a", "a ", "b"]
    assert any("differ only in letter case, spaces or Unicode form" in w for w in ds.warnings)
    with pytest.raises(DataError, match=r"labels the model does not know: ' a'"):
        data.Dataset.from_frame(frame.assign(label=" a").drop(columns="sample_id"), data.Roles(target=["label"]),
                                classes=ds.classes)


def test_patient_ids_spelled_two_ways_are_a_warning(tmp_path):
    """'P01' and 'P01 ' are two patients to the split: one patient's samples on both sides, without a word."""
    frame = cohort([f"S{i}" for i in range(40)])
    frame["patient_id"] = [f"P{i // 2:02d}" for i in range(40)]
    frame.loc[1, "patient_id"] = "P00 "
    frame.loc[3, "patient_id"] = "p01"
    ds, _ = data.load_dataset(write(frame, tmp_path / "t.csv"))
    warning = [w for w in ds.warnings if "--group 'patient_id'" in w]
    assert warning and "'P00', 'P00 '; 'P01', 'p01'" in warning[0] and "both sides of a split" in warning[0]
    ds, _ = data.load_dataset(write(cohort([f"S{i}" for i in range(40)]).assign(
        patient_id=[f"P{i // 2}" for i in range(40)]), tmp_path / "ok.csv"))
    assert not [w for w in ds.warnings if "--group" in w]


def test_explain_reads_a_sample_named_na_and_predict_names_a_repeated_one(tmp_path):
    """explain reads the whole table (``predict.prepare``): a sample named NA was "the id column is empty"; a
    repeated NA in predict's streamed reader says it is read as an id."""
    ids = [f"S{i}" for i in range(40)]
    ids[5] = "NA"
    frame = cohort(ids)
    path = write(frame, tmp_path / "t.csv")
    model = str(tmp_path / "m.mlp")
    assert run(["train", path, "--no-group", *FAST, "-o", model]).exit_code == 0
    res = run(["explain", model, path, "--top", "2"])
    assert res.exit_code == 0, res.output
    twice = frame.copy()
    twice.loc[6, "sample_id"] = "NA"
    res = run(["predict", model, write(twice, tmp_path / "twice.csv"), "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "duplicate sample id 'NA'", "'NA' is read as a sample id")
    assert not (tmp_path / "p.csv").exists()


def test_an_unknown_label_in_a_whole_table_names_its_file_once(tmp_path):
    """explain and gradcheck --data read the whole table (``predict.prepare``): the error said "small.csv:
    small.csv: target 'label' holds labels the model does not know"."""
    frame = cohort([f"S{i}" for i in range(40)])
    path = write(frame, tmp_path / "t.csv")
    model = str(tmp_path / "m.mlp")
    assert run(["train", path, "--no-group", *FAST, "-o", model]).exit_code == 0
    frame.loc[0, "label"] = "Other"
    bad = write(frame, tmp_path / "small.csv")
    for args in (["explain", model, bad], ["gradcheck", "--model", model, "--data", bad]):
        res = run(args)
        assert_clean_error(res, "small.csv: target 'label' holds labels the model does not know: 'Other'")
        assert res.output.count("small.csv") == 1, res.output


def test_the_split_table_quotes_a_class_with_a_space_at_an_end(tmp_path):
    """'A' and 'A ' (trained apart, with a warning) were two rows "class A" in the split table."""
    frame = cohort([f"S{i}" for i in range(30)], labels=["a", "a ", "b"] * 10)
    res = run(["train", write(frame, tmp_path / "t.csv"), "--no-group", "--folds", "1", "--epochs", "2", "-o",
               str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    rows = [line for line in res.output.splitlines() if "class " in line and "│" in line]
    assert any("class a " in r and "'a '" not in r for r in rows) and any("class 'a '" in r for r in rows), rows
