"""predict, evaluate and explain as batch jobs on new cohorts meet them (review 3): an unknown label names its
file and row, non-finite option values are usage errors, an annotation column of a genes x samples file is
named by explain too, another .h5ad matrix than the training one is a warning, --by flags a group only when
its gap does not rest on a few samples, the outputs of one command are written all or none, and an empty
output file name is a usage error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from mlpcli import metrics, model_io
from mlpcli.config import TrainOptions
from mlpcli.errors import OutputError
from mlpcli.pipeline import train
from mlpcli.predict import evaluation
from cli_helpers import assert_clean_error, run
from tables import make_table

TINY = dict(hidden=[6], epochs=2, seed=0, folds=1)


def leftovers(directory) -> list[str]:
    return sorted(p for p in os.listdir(directory) if p.endswith(".tmp"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny multiclass and binary model, each with the table it was trained on."""
    root = tmp_path_factory.mktemp("review3")
    out = {}
    for task in ("multiclass", "binary"):
        data = root / f"{task}.csv"
        make_table(task, n_patients=30).to_csv(data, index=False)
        model = root / f"{task}.mlp"
        model_io.save(train(str(data), TrainOptions(**TINY)).model, model)
        out[task] = (str(model), str(data))
    return out


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


# ── 2. non-finite option values are usage errors ─────────────────────────────────────────────────────────


@pytest.mark.parametrize("command, option", [
    ("predict", "--threshold"), ("evaluate", "--threshold"), ("predict", "--max-missing"),
    ("predict", "--coverage"), ("predict", "--min-confidence"), ("evaluate", "--ood-alpha"),
    ("explain", "--tol"), ("explain", "--max-missing"),
])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_option_values_are_usage_errors(tiny, command, option, value):
    """predict --threshold nan exited 1 (the library's check), explain --tol nan failed the completeness check
    and --tol inf switched it off."""
    model, data = tiny["binary"]
    res = run([command, model, data, option, value])
    if value == "inf" and option not in ("--tol",):  # a FloatRange bound refuses inf already
        assert res.exit_code == 2, res.output
        return
    assert_clean_error(res, option, code=2)
    if value == "nan" or option == "--tol":
        assert "is not a finite number" in res.output


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


# ── 4. another .h5ad matrix than the training one ────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    pytest.importorskip("anndata")
    from test_h5ad import make_adata

    tmp = tmp_path_factory.mktemp("cells")
    path = tmp / "cells.h5ad"
    make_adata(n_cells=120, n_genes=20).write_h5ad(path)
    models = {}
    for name, extra in (("counts", ["--layer", "counts"]), ("raw", ["--raw"]), ("X", [])):
        models[name] = str(tmp / f"{name}.mlp")
        res = run(["train", str(path), "--target", "cell_type", *extra, "--epochs", "2", "--hidden", "", "--folds", "1",
                   "-q", "-o", models[name]])
        assert res.exit_code == 0, res.output
    return str(path), models


@pytest.mark.parametrize("trained, given, warned", [
    ("counts", ["--raw"], (".raw.X (--raw)", "trained on layer 'counts'", "leave out --raw")),
    ("counts", ["--layer", "X"], (".X (--layer X)", "trained on layer 'counts'", "leave out --layer X")),
    ("raw", ["--layer", "counts"], ("layer 'counts' (--layer counts)", "trained on .raw.X", "leave out --layer counts")),
    ("X", ["--layer", "counts"], ("layer 'counts'", "trained on .X", "to read .X as in training")),
    ("X", ["--raw"], (".raw.X (--raw)", "trained on .X")),
    ("counts", ["--layer", "counts"], None),
    ("counts", [], None),
    ("raw", [], None),
    ("X", ["--layer", "X"], None),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_another_matrix_than_in_training_is_a_warning(cells, tmp_path, trained, given, warned):
    """predict --raw on a model trained on --layer counts (values on another scale) had only the note naming
    the matrix read."""
    path, models = cells
    for command, extra in (("predict", ["-o", str(tmp_path / "p.csv")]), ("evaluate", []), ("explain", [])):
        res = run([command, models[trained], path, *given, "-q", *extra])
        assert res.exit_code == 0, res.output
        if warned is None:
            assert "warning: features from" not in res.output, (command, res.output)
        else:
            assert "warning: features from" in res.output, (command, res.output)
            for needle in warned:
                assert needle in res.output, (command, needle, res.output)


def test_a_model_trained_on_a_table_records_no_matrix(cells, tiny, tmp_path):
    """What the warning compares with (and `info` shows): nothing for a table's model, so no warning there."""
    from mlpcli.model_summary import trained_matrix

    assert trained_matrix(model_io.load(tiny["multiclass"][0])) is None
    assert trained_matrix(model_io.load(cells[1]["X"])) == ".X"


# ── 5. --by: a gap that rests on one sample is not "clearly worse" ───────────────────────────────────────


def _batches(seed: int = 0):
    """The sample data's case: batch B2 of 40 samples holds one HER2 sample, misread (balanced accuracy 0.75
    against ~0.9 overall); B1's errors are spread over its 128 samples."""
    rng = np.random.default_rng(seed)
    classes = ["Basal", "HER2", "LumA", "LumB"]
    y = np.array([0] * 12 + [1] + [2] * 23 + [3] * 4 + [0] * 24 + [1] * 22 + [2] * 53 + [3] * 38)
    by = np.array(["B2"] * 40 + ["B1"] * (len(y) - 40), dtype=object)
    pred = y.copy()
    pred[12] = 2
    wrong = rng.choice(np.arange(40, len(y)), 15, replace=False)
    pred[wrong] = (pred[wrong] + 1) % 4
    proba = np.eye(4)[pred] * 0.9 + 0.025
    return y, proba, classes, by


@pytest.mark.parametrize("bootstrap", [0, 200])
def test_a_group_whose_gap_is_one_sample_is_not_flagged(bootstrap):
    y, proba, classes, by = _batches()
    overall = metrics.compute("multiclass", y, proba, classes, 0.5)
    warns, notes = [], []
    groups = evaluation._by_groups("multiclass", y, proba, classes, 0.5, by, None, overall, "balanced_accuracy",
                                   bootstrap, np.random.default_rng(0), "batch", warns, notes)
    b2 = {g["value"]: g for g in groups}["B2"]
    assert b2["metrics"]["balanced_accuracy"] == pytest.approx(0.75)
    assert overall["balanced_accuracy"] - 0.75 > evaluation.BY_WORSE_SCORE  # the old rule flagged it
    assert not b2["flagged"] and not warns
    assert len(notes) == 1 and "'B2'" in notes[0] and "not flagged" in notes[0]
    assert ("95 % interval" in notes[0]) if bootstrap else ("HER2: 1 sample" in notes[0])


@pytest.mark.parametrize("bootstrap", [0, 200])
def test_a_group_clearly_worse_on_enough_samples_is_flagged(bootstrap):
    """Three batches of 12 samples per class (patients of 3 samples); B3 misreads every HER2 and LumB sample:
    flagged either way, the warning saying on what evidence."""
    classes = ["Basal", "HER2", "LumA", "LumB"]
    y = np.tile(np.repeat(np.arange(4), 12), 3)  # (144,)
    by = np.repeat(np.array(["B1", "B2", "B3"], dtype=object), 48)
    patients = np.arange(len(y)) // 3
    pred = y.copy()
    pred[(by == "B3") & np.isin(y, [1, 3])] = 2
    proba = np.eye(4)[pred] * 0.9 + 0.025
    overall = metrics.compute("multiclass", y, proba, classes, 0.5)
    warns, notes = [], []
    groups = evaluation._by_groups("multiclass", y, proba, classes, 0.5, by, patients, overall, "balanced_accuracy",
                                   bootstrap, np.random.default_rng(0), "batch", warns, notes)
    flagged = [g["value"] for g in groups if g["flagged"]]
    assert flagged == ["B3"] and len(warns) == 1 and "'B3'" in warns[0] and not notes
    assert ("95 % interval" in warns[0]) if bootstrap else ("at least 10 samples" in warns[0])


def test_a_regression_group_of_few_samples_is_not_flagged():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(60, 1))
    pred = y + rng.normal(scale=0.1, size=y.shape)
    pred[:5] += 3.0  # five samples far off: RMSE far above the overall one, on 5 samples
    by = np.array(["small"] * 5 + ["large"] * 55, dtype=object)
    overall = metrics.compute("regression", y, pred, ["t"], 0.5)
    warns, notes = [], []
    groups = evaluation._by_groups("regression", y, pred, ["t"], 0.5, by, None, overall, "rmse", 0,
                                   np.random.default_rng(0), "site", warns, notes)
    small = {g["value"]: g for g in groups}["small"]
    assert small["metrics"]["rmse"] > 1.25 * overall["rmse"] and not small["flagged"] and "5 samples" in notes[0]


def test_by_help_states_the_rule():
    res = run(["evaluate", "--help"])
    text = " ".join(res.output.split())
    assert f"at least {evaluation.BY_MIN_CLASS_SAMPLES} samples" in text and "95 % interval" in text
    assert f"the group {evaluation.BY_MIN_SAMPLES}" in text


# ── 6. the outputs of one command: all or none ───────────────────────────────────────────────────────────


def _failing(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail


@pytest.mark.parametrize("error", [OutputError("cannot write rc.png: no space left on device"),
                                   ValueError("the figure could not be drawn")], ids=["disk-full", "drawing"])
def test_evaluate_writes_no_output_when_the_plot_fails(tiny, tmp_path, error):
    """The shift report and the JSON file were written before the plot: a failing plot left them behind."""
    import mlpcli.plotting

    model, data = tiny["binary"]
    args = ["evaluate", model, data, "--shift-report", str(tmp_path / "shift.csv"), "-o", str(tmp_path / "m.json"),
            "--plot", str(tmp_path / "rc.png"), "-q"]
    with mock.patch.object(mlpcli.plotting, "plot_risk_coverage", _failing(error)):
        res = run(args)
    assert_clean_error(res, str(error).split(":")[0])
    assert sorted(os.listdir(tmp_path)) == []
    # an earlier run's files stay as they were
    for name in ("shift.csv", "m.json", "rc.png"):
        (tmp_path / name).write_text("earlier")
    with mock.patch.object(mlpcli.plotting, "plot_risk_coverage", _failing(error)):
        assert run(args).exit_code == 1
    assert all((tmp_path / name).read_text() == "earlier" for name in ("shift.csv", "m.json", "rc.png"))
    assert not leftovers(tmp_path)
    # and a run that succeeds writes all three
    res = run(args)
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 90
    assert pd.read_csv(tmp_path / "shift.csv").shape[0] > 0 and (tmp_path / "rc.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("out", ["p.csv", "p.tsv.gz", "p.parquet"])
def test_predict_writes_no_predictions_when_the_shift_report_fails(tiny, tmp_path, out):
    """The predictions were in place before the shift report was written."""
    import mlpcli.predict.output as output

    model, data = tiny["multiclass"]
    args = ["predict", model, data, "-o", str(tmp_path / out), "--shift-report", str(tmp_path / "shift.csv"), "-q"]
    with mock.patch.object(output, "table_bytes", _failing(OutputError("cannot write shift.csv: disk quota exceeded"))):
        res = run(args)
    assert_clean_error(res, "cannot write shift.csv")
    assert os.listdir(tmp_path) == []
    res = run([*args[:-1], "--shift-report", "/dev/full", "-q"])  # a device that fails: nothing in place either
    assert_clean_error(res, "cannot write /dev/full")
    assert os.listdir(tmp_path) == []
    assert run(args).exit_code == 0
    assert sorted(os.listdir(tmp_path)) == sorted([out, "shift.csv"])


def test_predict_h5ad_and_shift_report_all_or_none(cells, tmp_path):
    import mlpcli.data.h5ad as h5ad
    import mlpcli.predict.output as output

    path, models = cells
    args = ["predict", models["counts"], path, "-o", str(tmp_path / "a.h5ad"), "--shift-report",
            str(tmp_path / "shift.csv"), "-q"]
    with mock.patch.object(h5ad, "write_obs_columns", _failing(OutputError("cannot write a.h5ad: no space left"))):
        assert_clean_error(run(args), "cannot write a.h5ad")
    assert os.listdir(tmp_path) == []
    with mock.patch.object(output, "table_bytes", _failing(OutputError("cannot write shift.csv: no space left"))):
        assert_clean_error(run(args), "cannot write shift.csv")
    assert os.listdir(tmp_path) == []
    assert run(args).exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["a.h5ad", "shift.csv"]


def test_shift_report_bytes_are_what_write_table_writes(tiny, tmp_path):
    from mlpcli.predict import write_table
    from mlpcli.predict.output import table_bytes

    frame = pd.DataFrame({"feature": ["a", "b"], "x": [0.1234567891, 2.0], "flag": [True, False]})
    for name in ("t.csv", "t.tsv", "t.csv.gz", "t.parquet"):
        write_table(frame, str(tmp_path / name))
        if name.endswith(".parquet"):
            assert pd.read_parquet(tmp_path / name).equals(pd.read_parquet(__import__("io").BytesIO(
                table_bytes(frame, name))))
        else:
            assert (tmp_path / name).read_bytes() == table_bytes(frame, name)


# ── an empty output file name ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("command, option", [
    ("predict", "-o"), ("predict", "--shift-report"), ("evaluate", "-o"), ("evaluate", "--plot"),
    ("evaluate", "--shift-report"), ("explain", "-o"), ("explain", "--plot"),
])
def test_an_empty_output_name_is_a_usage_error(tiny, tmp_path, command, option):
    """`--shift-report "$REPORT"` with the variable unset wrote nothing and said nothing (evaluate -o '' and
    --plot '' too); explain -o '' failed after the work with exit 1."""
    model, data = tiny["multiclass"]
    extra = ["-o", str(tmp_path / "p.csv")] if command == "predict" and option != "-o" else []
    res = run([command, model, data, *extra, option, ""])
    assert_clean_error(res, "an empty file name", code=2)
    assert not Path(tmp_path / "p.csv").exists()


# ── standard output on a full disk ───────────────────────────────────────────────────────────────────────


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args, what", [
    (["predict", "{model}", "{data}", "-o", "-"], "standard output"),
    (["predict", "{model}", "{data}", "-o", "{tmp}/p.csv", "--shift-report", "-"], "standard output"),
    (["predict", "{model}", "{data}", "-o", "{tmp}/p.csv", "--json"], "the JSON document to standard output"),
    (["evaluate", "{model}", "{data}"], "standard output"),
    (["train", "{data}", "--folds", "1", "--epochs", "2", "--hidden", "4", "-o", "-"], "standard output"),
], ids=["rows", "shift-report", "json", "tables", "train-model"])
def test_a_full_disk_behind_standard_output_is_named(tiny, tmp_path, args, what):
    """`predict ... -o - > predictions.csv` on a full disk or quota said "Error: [Errno 28] No space left on
    device", naming nothing."""
    import subprocess
    import sys

    model, data = tiny["multiclass"]
    argv = [a.format(model=model, data=data, tmp=tmp_path) for a in args]
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "mlpcli", *argv, "-q"], stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    *said, last = res.stderr.strip().splitlines()
    assert last == f"Error: cannot write {what}: no space left on device", res.stderr
    assert all(line.startswith("warning:") for line in said), res.stderr  # evaluate's: the training table
    assert not leftovers(tmp_path) and not (tmp_path / "p.csv").exists() or "--json" in argv  # all or none


def test_evaluate_refuses_dropping_the_column_it_scores_against(tiny, tmp_path):
    """`evaluate --drop label` read the labels from 'label' all the same and scored against them."""
    model, data = tiny["multiclass"]
    assert_clean_error(run(["evaluate", model, data, "--drop", "label"]), "--drop", "'label'", code=2)
    # predict needs no labels: dropping the column is fine, and it is not reported as an ignored target
    res = run(["predict", model, data, "--drop", "label", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "ignored the target column" not in res.output


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
