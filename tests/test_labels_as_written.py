"""Ids, groups, batches and class labels are read as written by every reader: 007 stays 007, and the labels
1 and 01 are two classes, in train and cv as in predict and evaluate (they were typed by pandas on the
training side, which turned 007 into 7 and merged 1 with 01)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io
from mlpcli import predict as lib
from cli_helpers import assert_clean_error, run

FAST = ["--epochs", "3", "--folds", "2", "--hidden", "", "-q"]


def table(labels, ids=None, seed=0, n_features=6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(labels)
    frame = pd.DataFrame({"sample_id": ids if ids is not None else [f"s{i}" for i in range(n)], "label": labels})
    codes = pd.factorize(pd.Series(labels))[0]
    for j in range(n_features):
        frame[f"g{j}"] = rng.normal(size=n) + (codes == j % max(1, codes.max() + 1)) * 3.0
    return frame


def write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False)  # strings as they are: 007 is written 007
    return str(path)


def test_ids_keep_their_leading_zeros_and_1_and_01_are_two_ids(tmp_path):
    labels = ["A", "B", "C"] * 20
    path = write(table(labels, ids=[f"{i:03d}" for i in range(60)]), tmp_path / "t.csv")
    oof, cv_oof = tmp_path / "oof.csv", tmp_path / "cv.csv"
    assert run(["train", path, *FAST, "-o", str(tmp_path / "m.mlp"), "--oof", str(oof)]).exit_code == 0
    assert run(["cv", path, "--epochs", "3", "--folds", "2", "--hidden", "", "--oof", str(cv_oof), "-q"]).exit_code == 0
    for out in (oof, cv_oof):
        ids = pd.read_csv(out, dtype=str)["sample_id"]
        assert sorted(ids) == [f"{i:03d}" for i in range(60)]
    ids = [str(i) for i in range(30)] + [f"0{i}" for i in range(30)]  # 1 and 01 are different samples
    path = write(table(labels, ids=ids), tmp_path / "ids.csv")
    res = run(["train", path, *FAST, "-o", str(tmp_path / "i.mlp")])
    assert res.exit_code == 0, res.output


def test_labels_1_and_01_are_two_classes_everywhere(tmp_path):
    labels = ["1", "01", "2"] * 20
    path = write(table(labels), tmp_path / "t.csv")
    model_path = tmp_path / "m.mlp"
    res = run(["train", path, *FAST, "-o", str(model_path), "--json"])
    assert res.exit_code == 0, res.output
    model = model_io.load(model_path)
    assert sorted(map(str, model.classes)) == ["01", "1", "2"]
    prepared = lib.prepare(model, path, labels=True)
    assert list(np.asarray(model.classes, dtype=object)[prepared.y]) == labels  # as written, row by row
    out = tmp_path / "p.csv"
    assert run(["predict", str(model_path), path, "-o", str(out), "-q"]).exit_code == 0
    predicted = pd.read_csv(out, dtype=str)
    assert set(predicted["pred_label"]) <= {"1", "01", "2"}
    assert {"prob_01", "prob_1", "prob_2"} <= set(predicted.columns)
    report = json.loads(run(["evaluate", str(model_path), path, "--json"]).stdout)
    expected = (predicted["pred_label"] == pd.read_csv(path, dtype=str)["label"]).mean()
    assert report["n"] == 60 and report["metrics"]["accuracy"] == pytest.approx(expected)


def test_leading_zero_classes_are_kept_and_an_older_models_numbers_still_match(tmp_path):
    written = ["01", "02", "10"] * 20
    path = write(table(written), tmp_path / "t.csv")
    model_path = tmp_path / "m.mlp"
    assert run(["train", path, *FAST, "-o", str(model_path)]).exit_code == 0
    assert list(model_io.load(model_path).classes) == ["01", "02", "10"]
    # a model whose classes are the numbers 1, 2, 10 (as training typed them before) still reads 01 as 1
    numbers_path = write(table(["1", "2", "10"] * 20), tmp_path / "n.csv")
    numbers_model = tmp_path / "n.mlp"
    assert run(["train", numbers_path, *FAST, "-o", str(numbers_model)]).exit_code == 0
    assert list(model_io.load(numbers_model).classes) == [1, 2, 10]
    prepared = lib.prepare(model_io.load(numbers_model), path, labels=True)
    assert list(np.array([1, 2, 10])[prepared.y]) == [int(w) for w in written]
    res = run(["evaluate", str(numbers_model), path, "--json"])
    assert res.exit_code == 0, res.output


def test_numbers_stay_numbers(tmp_path):
    """Regression targets written 45.0 (as pandas writes a float column) are numbers; 0/1 labels are 0 and 1."""
    rng = np.random.default_rng(1)
    frame = table(["x"] * 60)
    frame["label"] = [f"{v:.1f}" for v in rng.integers(20, 80, 60)]
    path = write(frame, tmp_path / "r.csv")
    res = run(["train", path, *FAST, "-o", str(tmp_path / "r.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    assert model_io.load(tmp_path / "r.mlp").task == "regression"
    path = write(table(["0", "1"] * 30), tmp_path / "b.csv")
    assert run(["train", path, *FAST, "-o", str(tmp_path / "b.mlp")]).exit_code == 0
    assert list(model_io.load(tmp_path / "b.mlp").classes) == [0, 1]


@pytest.mark.parametrize("cells, typed", [
    (["1", "01", "2"], ["1", "01", "2"]),
    (["1", "2", "10"], [1, 2, 10]),
    (["007", "008"], ["007", "008"]),
    (["48", "48.0"], [48.0, 48.0]),  # one number written two ways: a regression target's
    (["9007199254740993", "5"], [9007199254740993, 5]),  # exact beyond 2**53
    (["45.0", "60.0"], [45.0, 60.0]),
    (["0,5", "1,25"], [0.5, 1.25]),
    (["True", "False"], [True, False]),
    (["a", "1"], ["a", "1"]),
])
def test_typed_as_written(cells, typed):
    out = data.typed_as_written(pd.Series(cells, dtype=object), decimal="," if "0,5" in cells else None)
    assert list(out) == typed and [type(v) for v in out.tolist()] == [type(v) for v in typed]


def test_a_sheets_labels_are_read_as_written_too(tmp_path):
    frame = table(["1", "01", "2"] * 20)
    matrix = write(frame.drop(columns=["label"]), tmp_path / "m.csv")
    sheet = write(frame[["sample_id", "label"]], tmp_path / "s.csv")
    model_path = tmp_path / "m.mlp"
    res = run(["train", matrix, "--samples", sheet, *FAST, "-o", str(model_path)])
    assert res.exit_code == 0, res.output
    assert sorted(map(str, model_io.load(model_path).classes)) == ["01", "1", "2"]


def test_boolean_classes_and_flags_are_written_as_pandas_writes_them(tmp_path):
    """True / False in every text output (pyarrow's writer, which predict uses for speed, wrote true / false,
    while train --oof and the pandas path wrote True / False)."""
    path = write(table(["True", "False"] * 30), tmp_path / "b.csv")
    model_path, oof = tmp_path / "b.mlp", tmp_path / "oof.csv"
    assert run(["train", path, *FAST, "-o", str(model_path), "--oof", str(oof)]).exit_code == 0
    out = tmp_path / "p.csv"
    assert run(["predict", str(model_path), path, "-o", str(out), "--ood", "-q"]).exit_code == 0
    predicted = pd.read_csv(out, dtype=str)
    assert set(predicted["pred_label"]) <= {"True", "False"} and set(predicted["ood"]) <= {"True", "False"}
    assert set(pd.read_csv(oof, dtype=str)["pred_label"]) <= {"True", "False"}


def test_a_regression_target_written_with_leading_zeros_is_still_numbers(tmp_path):
    """Kept as text by the reader (007 as written), such a column is parsed as numbers for --task regression
    (it was "needs numeric targets; holds text such as '007'")."""
    frame = table(["x"] * 60)
    frame["label"] = [f"{v:03d}" for v in np.random.default_rng(2).integers(20, 80, 60)]
    path = write(frame, tmp_path / "r.csv")
    res = run(["train", path, *FAST, "--task", "regression", "-o", str(tmp_path / "r.mlp")])
    assert res.exit_code == 0, res.output
    assert model_io.load(tmp_path / "r.mlp").task == "regression"


# ── 1. an unknown label names the file and its row ───────────────────────────────────────────────────────


@pytest.mark.parametrize("chunks", [[], ["--chunksize", "20"]], ids=["one-piece", "pieces"])
def test_unknown_label_names_the_file_and_row(tiny, tmp_path, chunks):
    """It said "target 'label' holds labels the model does not know: 'Normal'" without the file, where every
    other error of the reader names it ("FILE, rows ...")."""
    model, data = tiny["multiclass"]
    df = pd.read_csv(data)
    df.loc[57, "label"] = "Normal"
    df.to_csv(tmp_path / "cohort.csv", index=False)
    res = run(["evaluate", model, str(tmp_path / "cohort.csv"), *chunks])
    assert_clean_error(res, f"{tmp_path / 'cohort.csv'}: target 'label' holds labels the model does not know: "
                            "'Normal'", "the first at row 58 (id 'S0057')")


def test_unknown_label_of_a_sample_sheet_names_the_sheet(tiny, tmp_path):
    model, data = tiny["multiclass"]
    df = pd.read_csv(data)
    sheet = df[["sample_id", "label"]].copy()
    sheet.loc[5, "label"] = "Normal"
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    df.drop(columns=["label"]).to_csv(tmp_path / "cohort.csv", index=False)
    for command in ("evaluate", "explain"):
        res = run([command, model, str(tmp_path / "cohort.csv"), "--samples", str(tmp_path / "sheet.csv")])
        assert_clean_error(res, "cohort.csv joined with --samples", "sheet.csv", "'Normal'", "row 6 (id 'S0005')")
