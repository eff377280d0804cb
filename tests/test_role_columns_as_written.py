"""Group and batch columns hold names, read as written: a site coded NA (North America), N/A or NULL was read as a
missing value, so `--group site` stopped training ("has 16 missing values; fill them"), evaluate made each of its
samples a patient of its own, and the batches N/A and NULL became 'NA' with a warning about missing values, where a
parquet copy of the same table kept them. Only an empty cell is missing there, as in an id column. A target's NA
stays a missing label (R writes one so), and its error now says the cells hold 'NA'."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import data
from mlpcli.data.conventions import MISSING_AS_WRITTEN_ATTR
from cli_helpers import assert_clean_error, run
from tables import _table

FAST = ["--epochs", "2", "--folds", "2", "--hidden", "", "-q"]
CODES = ["NA", "N/A", "NULL", "nan"]  # site and batch codes pandas' and pyarrow's readers took for missing values


def sites(n_pat: int = 24) -> pd.DataFrame:
    """Patients at four sites coded as CODES, batches coded likewise (one per patient's site)."""
    frame = _table(n_pat=n_pat, spp=2, genes=6, batch_of=lambda p: CODES[p % 4])
    frame.insert(2, "site", frame["batch"])
    return frame


def written(frame: pd.DataFrame, path, fmt: str) -> str:
    """``frame`` as a text table (every cell as it is: NA stays NA) or a parquet file; "quoted": with a quoted
    field holding the separator, which the streamed reader hands from its tokenizer to pyarrow's CSV parser."""
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        return str(path)
    if fmt == "quoted":
        frame = frame.assign(note="a, b")
    frame.to_csv(path, index=False, na_rep="")
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "quoted", "parquet"])
def test_group_and_batch_codes_that_look_missing_are_names(tmp_path, fmt):
    frame = sites()
    path = written(frame, tmp_path / f"t.{'parquet' if fmt == 'parquet' else 'csv'}", fmt)
    ds, _ = data.load_dataset(path, target="label", group="site", drop=["patient_id", "note"] if fmt == "quoted"
                              else ["patient_id"])
    assert sorted(set(ds.batches.tolist())) == sorted(CODES)
    assert sorted(set(ds.groups.tolist())) == sorted(CODES)
    assert not any("missing" in w for w in ds.warnings), ds.warnings


def test_the_whole_table_reader_reads_them_as_written_too(tmp_path):
    """``read_table`` (pandas' parser, for a table read whole): the same columns as written, the target's NA missing."""
    frame = sites()
    frame.loc[0, "label"] = "NA"
    path = written(frame, tmp_path / "t.csv", "csv")
    read = data.read_table(path, text=["site", "batch", "label"], ids=["site", "batch"])
    assert sorted(set(read["site"])) == sorted(CODES) and sorted(set(read["batch"])) == sorted(CODES)
    assert pd.isna(read.loc[0, "label"]) and read["label"].notna().sum() == len(frame) - 1
    assert read.attrs[MISSING_AS_WRITTEN_ATTR] == {"label": {"NA": 1}}  # for the target's message


def test_train_and_cv_group_by_a_site_coded_NA(tmp_path):
    frame = sites()
    path = written(frame, tmp_path / "t.csv", "csv")
    res = run(["cv", path, "--group", "site", "--drop", "patient_id", *FAST, "--member-folds", "2", "--no-baseline",
               "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert all(f["n_groups_train"] + f["n_groups_test"] == 4 for f in doc["per_fold"])
    out = tmp_path / "m.mlp"
    res = run(["train", path, "--group", "site", "--drop", "patient_id", *FAST, "-o", str(out)])
    assert res.exit_code == 0, res.output
    info = json.loads(run(["info", str(out), "--json"]).stdout)
    assert sorted((info.get("split") or {}).get("batch_counts_train") or {}) == sorted(CODES)


def test_an_empty_group_cell_is_still_missing(tmp_path):
    frame = sites()
    frame["site"] = frame["site"].astype(object)
    frame.loc[5, "site"] = None
    path = written(frame, tmp_path / "t.csv", "csv")
    assert_clean_error(run(["train", path, "--group", "site", "--drop", "patient_id", *FAST]),
                       "--group column 'site' has 1 missing value", "row 6")


@pytest.mark.parametrize("fmt", ["csv", "quoted"])
def test_evaluate_counts_a_site_coded_NA_as_one_group(tmp_path, fmt):
    """Its samples were "without a value in the patient column", each a patient of its own in the bootstrap."""
    frame = sites()
    train = written(frame, tmp_path / "train.csv", "csv")
    model = tmp_path / "m.mlp"
    assert run(["train", train, "--group", "site", "--drop", "patient_id", *FAST, "-o", str(model)]).exit_code == 0
    cohort = written(sites().assign(label=frame["label"]), tmp_path / "cohort.csv", fmt)
    res = run(["evaluate", str(model), cohort, "--group", "site", "--bootstrap", "20", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["bootstrap"]["n_units"] == 4
    assert not any("without a value in the patient column" in n for n in doc["notes"]), doc["notes"]


@pytest.mark.parametrize("fmt", ["csv", "quoted"])
def test_a_target_NA_is_a_missing_label_said_as_written(tmp_path, fmt):
    """"target has missing values in 16 rows" sent the user looking for empty cells in a column that holds NA."""
    frame = sites()
    frame["label"] = frame["label"].astype(object)
    frame.loc[frame["label"] == "A", "label"] = "NA"
    frame.loc[1, "label"] = "NULL"
    frame.loc[4, "label"] = None  # an empty cell: missing, and not counted as written NA or NULL
    path = written(frame, tmp_path / "t.csv", fmt)
    drop = ["--drop", "note"] if fmt == "quoted" else []
    res = run(["train", path, *drop, *FAST, "-o", str(tmp_path / "m.mlp")])
    missing = int((frame["label"].isna() | frame["label"].isin(["NA", "NULL"])).sum())
    written_na = int(frame["label"].isin(["NA", "NULL"]).sum())
    assert_clean_error(res, f"target has missing values in {missing} rows", f"{written_na} cells hold 'NA' (",
                       "or 'NULL' (1), read as missing", "a class of that name needs another")
