"""Ids, groups, batches and class labels are read as written by every reader: 007 stays 007, and the labels
1 and 01 are two classes, in train and cv as in predict and evaluate (they were typed by pandas on the
training side, which turned 007 into 7 and merged 1 with 01)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io, predict as lib
from cli_helpers import assert_clean_error, run
from tables import _labelled, _table

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


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_leading_zero_keeps_labels_as_written_beside_a_decimal_one(tmp_path, suffix):
    """1, 01 and 1.0 in a CSV label column were read as numbers: one class '1.0' ("nothing to learn"), while 1 and
    01 alone were two classes and the same table as parquet text three. Now three classes in both, with a warning."""
    from mlpcli.data import load_dataset

    ds, _ = load_dataset(str(_labelled(tmp_path / f"t{suffix}", ["1", "01", "1.0"])), no_group=True)
    assert sorted(map(str, ds.classes)) == ["01", "1", "1.0"]
    assert any("one number written differently: '01', '1', '1.0'" in w and "leading zero" in w for w in ds.warnings)


def test_labels_one_number_apart_warn_and_distinct_numbers_do_not(tmp_path):
    from mlpcli.data import load_dataset

    ds, _ = load_dataset(str(_labelled(tmp_path / "t.csv", ["1", "01"])), no_group=True)
    assert sorted(map(str, ds.classes)) == ["01", "1"]
    assert any("'01', '1'" in w for w in ds.warnings)
    ds, _ = load_dataset(str(_labelled(tmp_path / "codes.csv", ["01", "02", "10"])), no_group=True)
    assert sorted(map(str, ds.classes)) == ["01", "02", "10"]
    assert not any("written differently" in w for w in ds.warnings)
    # a number without a leading zero beside floats is still a number (a regression target keeps 05.5 and 48.0)
    ds, _ = load_dataset(str(_labelled(tmp_path / "age.csv", [str(v) for v in np.linspace(20, 80, 60)] + ["05.5"],
                                        n=61)),
                         no_group=True)
    assert ds.task == "regression"


def test_one_number_written_two_ways_says_so_when_it_is_the_only_class(tmp_path):
    res = run(["train", str(_labelled(tmp_path / "t.csv", ["1", "1.0"])), "--no-group", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "1 and 1.0 are one value" in res.output and not (tmp_path / "m.mlp").exists()


def test_evaluate_keeps_labels_as_text_for_a_model_of_one_number_written_differently(tmp_path):
    """A model of classes '01', '1', '1.0' scored every '1.0' row of a cohort labelled '1' and '1.0' as class '1'
    (the cohort's column, without a leading zero, was read as numbers)."""
    import json

    train = _labelled(tmp_path / "t.csv", ["1", "01", "1.0"], n=90)
    res = run(["train", str(train), "--no-group", "--folds", "1", "--hidden", "4", "--epochs", "3",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    cohort = _labelled(tmp_path / "c.csv", ["1", "1.0"], n=40)
    out = run(["evaluate", str(tmp_path / "m.mlp"), str(cohort), "--json"]).output
    doc = json.loads(out[out.index("{"):])
    support = {row["class"]: row["support"] for row in doc["metrics"]["per_class"]}
    assert support == {"01": 0, "1": 20, "1.0": 20}, support


# ── batches: a batch named "NA" and the rows without one ──────────────────────────────────────────────────


def test_a_batch_named_NA_is_not_merged_with_the_rows_without_a_batch(tmp_path):
    frame = _table(n_pat=24, batch_of=lambda p: ["1", "NA", None][p % 3])
    frame.to_parquet(tmp_path / "t.parquet")  # parquet keeps the text 'NA' apart from the nulls
    ds, _ = data.load_dataset(str(tmp_path / "t.parquet"), target="label")
    report = ds.warnings
    assert sorted(set(ds.batches.tolist())) == ["1", "NA", "NA (missing)"]
    assert any("counted as batch 'NA (missing)' (a batch is named 'NA' already)" in w for w in report)


def test_missing_batches_are_still_NA_when_no_batch_has_that_name(tmp_path):
    _table(n_pat=24, batch_of=lambda p: ["1", "2", None][p % 3]).to_parquet(tmp_path / "t.parquet")
    ds, _ = data.load_dataset(str(tmp_path / "t.parquet"), target="label")
    report = ds.warnings
    assert sorted(set(ds.batches.tolist())) == ["1", "2", "NA"]
    assert any("counted as batch 'NA'" in w and "already" not in w for w in report)


# ── labels: one number under a decimal comma ────────────────────────────────────────────────────────────


def test_labels_that_are_one_number_under_a_decimal_comma_are_named(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["label;g1;g2"] + [f"{['01', '1,0', '2', '1'][i % 4]};{rng.normal():.3f};{rng.normal():.3f}".replace(".", ",")
                               for i in range(80)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    ds, _ = data.load_dataset(str(tmp_path / "t.csv"), target="label", no_group=True)
    assert ds.classes == ["01", "1", "1,0", "2"]
    assert any("one number written differently: '01', '1', '1,0'" in w for w in ds.warnings)


def test_rows_without_a_batch_keep_the_name_training_gave_them(tmp_path):
    from mlpcli.data.roles import missing_batch_name

    assert missing_batch_name({"B1": 3, "NA": 4, "NA (missing)": 2}) == "NA (missing)"
    assert missing_batch_name({"B1": 3, "NA": 4}) == "NA" and missing_batch_name(None) == "NA"
    frame = _table(n_pat=90, batch_of=lambda p: ["B1", "NA", None][p % 3], seed=5)
    frame.to_parquet(tmp_path / "train.parquet")
    res = run(["train", str(tmp_path / "train.parquet"), "--hidden", "4", "--epochs", "3", "-q",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    cohort = _table(n_pat=60, batch_of=lambda p: ["NA", None][p % 2], seed=5)
    far = cohort["batch"].isna()
    cohort.loc[far, ["g0", "g1", "g2", "g3"]] += 8.0
    cohort.to_parquet(tmp_path / "cohort.parquet")
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "cohort.parquet"), "--ood", "--ood-alpha", "0.05",
               "-q", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stderr.split())
    assert "most in batch 'NA (missing)'" in text and "most in batch 'NA' " not in text
