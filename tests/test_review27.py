"""Fixes from the twenty-seventh session's reviews by use (evaluate, predict's shift check, model files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_clean_error, run, write_tenx
from tables import make_table

FAST = ["--hidden", "8", "--epochs", "15", "--folds", "1", "--quiet"]


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    """A 3-class model and its table."""
    d = tmp_path_factory.mktemp("three")
    df = make_table("multiclass", n_patients=60, seed=3)
    df.to_csv(d / "train.csv", index=False)
    assert run(["train", str(d / "train.csv"), "-o", str(d / "m.mlp"), *FAST]).exit_code == 0
    return d, df


def test_evaluate_says_f1_macro_counts_an_absent_class_it_predicted_as_zero(three_classes):
    """A cohort without class C in which the model still calls some samples C: F1 macro (scikit-learn's
    convention) counts C as 0 and sat at 0.59 beside a balanced accuracy of 0.83 with nothing to say why."""
    d, df = three_classes
    cohort = df[df.label != "typeC"].copy()
    cohort.loc[cohort.index[:5], "f02"] += 8.0  # five samples pushed towards class C: predicted C, never true
    cohort.to_csv(d / "no_c.csv", index=False)
    r = run(["evaluate", str(d / "m.mlp"), str(d / "no_c.csv"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    per_class = {row["class"]: row for row in doc["metrics"]["per_class"]}
    called = doc["metrics"]["confusion_matrix"][0][2] + doc["metrics"]["confusion_matrix"][1][2]
    assert called >= 1 and per_class["typeC"]["f1"] == 0.0 and per_class["typeC"]["support"] == 0
    note = next(n for n in doc["notes"] if "absent from the table" in n)
    assert f"F1 macro counts 'typeC' (predicted for {called:,} sample" in note and "as 0" in note
    # never called: no such clause (its F1 is left out of the mean)
    df[df.label != "typeC"].to_csv(d / "no_c_clean.csv", index=False)
    doc = json.loads(run(["evaluate", str(d / "m.mlp"), str(d / "no_c_clean.csv"), "--json"]).stdout)
    if doc["metrics"]["confusion_matrix"][0][2] + doc["metrics"]["confusion_matrix"][1][2] == 0:
        assert not any("F1 macro counts" in n for n in doc["notes"])


def test_a_batch_offset_on_values_with_negatives_is_not_called_raw_counts(three_classes):
    """The table's features are Gaussian (negative values): +1.5 on every gene is an offset, not counts."""
    d, df = three_classes
    shifted = df.copy()
    feats = [c for c in df.columns if c.startswith("f")]
    shifted[feats] += 1.5
    shifted.to_csv(d / "offset.csv", index=False)
    r = run(["predict", str(d / "m.mlp"), str(d / "offset.csv"), "-o", str(d / "p.csv")])
    assert r.exit_code == 0, r.output
    assert "higher than in training" in r.output and "carries a batch offset" in r.output
    assert "raw counts" not in r.output


def _set(path: str, value):
    """A model.json edit: the field at dotted ``path`` set to ``value``."""
    def edit(meta: dict) -> None:
        *parents, last = path.split(".")
        d = meta
        for key in parents:
            d = d.setdefault(key, {})
        d[last] = value
    return edit


@pytest.mark.parametrize("field, value", [
    ("extra.diagnosis", "x"), ("provenance.versions", "x"), ("provenance.data_file", 1), ("fit.portfolio", [1]),
    ("fit.portfolio", [{"hidden": "wide", "score": 0.5}]), ("config.resolved", 1), ("config.pos_weight", [1]),
    ("config.resolved", {"epochs": "many"}),
])
def test_an_edited_field_of_the_wrong_type_is_named_when_the_model_is_read(three_classes, tmp_path, field, value):
    """Fields that `info` and `evaluate` read, of the wrong type in a hand-edited model.json, passed the load-time
    checks and ended in "internal error (AttributeError ...)": now the load names the field."""
    from model_files import rewrite_model

    d, _ = three_classes
    bad = rewrite_model(d / "m.mlp", tmp_path / "bad.mlp", _set(field, value), lambda a: a)
    name = field.split(".")[0] + "." + field.split(".")[1]
    for args in (["info", bad], ["evaluate", bad, str(d / "train.csv")]):
        assert_clean_error(run(args), "bad.mlp: model.json field", f"'{name}")


@pytest.mark.parametrize("field, empty", [("loss.params", {}), ("split.class_counts_train", {}),
                                          ("fit.held_out_metrics", {}), ("history", [])])
def test_a_null_where_an_object_belongs_reads_as_absent(three_classes, tmp_path, field, empty):
    """``loss.params: null`` loaded, then predict failed with "internal error (TypeError: ... argument after ** must
    be a mapping, not NoneType)"; a null is now taken as the field absent, in every command and the library."""
    from mlpcli import model_io
    from model_files import rewrite_model

    d, df = three_classes
    path = rewrite_model(d / "m.mlp", tmp_path / "null.mlp", _set(field, None), lambda a: a)
    model = model_io.load(path)
    node = model_io.load(path)
    for key in field.split("."):
        node = node[key] if isinstance(node, dict) else getattr(node, key)
    assert node == empty
    X = df[[c for c in df.columns if c.startswith("f")]].to_numpy(np.float32)
    assert model.predict_output(X).shape == (len(df), 3)
    for args in (["info", path], ["evaluate", path, str(d / "train.csv")],
                 ["predict", path, str(d / "train.csv"), "-o", str(tmp_path / "p.csv")]):
        r = run(args)
        assert r.exit_code == 0, (args, r.output)


def test_model_and_data_both_from_standard_input_is_a_usage_error(three_classes, tmp_path):
    """`cat m.mlp | mlpcli predict /dev/stdin -`: the model took every byte of standard input, then the table was
    "standard input is empty"; two inputs cannot share the one stream."""
    d, _ = three_classes
    model = (d / "m.mlp").read_bytes()
    for args in (["predict", "/dev/stdin", "-", "-o", str(tmp_path / "p.csv")], ["evaluate", "-", "/dev/stdin"]):
        r = run(args, input=model)
        assert_clean_error(r, f"MODEL {args[1]} and DATA {args[2]} would both read standard input", code=2)
    assert not (tmp_path / "p.csv").exists()


def test_an_empty_file_name_says_so(three_classes):
    d, _ = three_classes
    assert_clean_error(run(["info", ""]), "model file not found: the name given is empty ('')")
    assert_clean_error(run(["predict", str(d / "m.mlp"), "", "-o", "-"]), "table file not found: the name given is empty")
    assert_clean_error(run(["train", ""]), "table file not found: the name given is empty")


def _features(df):
    return [c for c in df.columns if c.startswith("f")]


def test_the_spread_test_measures_sds_before_robust_scalings_clip(three_classes, tmp_path):
    """Robust scaling's smooth clip squeezes a wider spread: a cohort whose genes' SDs had doubled (x2.5) read as
    x1.7 (x2.0) after it and passed the 2x test. The ratio is now of the SDs before the clip, and the report's SDs
    on the features' own scale are the table's."""
    d, df = three_classes
    cohort = make_table("multiclass", n_patients=60, seed=11)
    wide = _features(cohort)[:4]  # a third of the 12 features
    cohort[wide] = cohort[wide] * 2.5
    cohort.to_csv(tmp_path / "wide.csv", index=False)
    r = run(["predict", str(d / "m.mlp"), str(tmp_path / "wide.csv"), "-o", str(tmp_path / "p.csv"),
             "--shift-report", str(tmp_path / "shift.csv")])
    assert r.exit_code == 0, r.output
    assert "have an SD over 2x larger or smaller than in training" in r.output
    import pandas as pd

    report = pd.read_csv(tmp_path / "shift.csv").set_index("feature")
    feats = _features(df)
    truth = cohort[feats].std(ddof=0) / df[feats].std(ddof=0)
    assert np.allclose(report.loc[feats, "sd_ratio"], truth[feats], rtol=0.05)
    assert np.allclose(report.loc[feats, "new_sd"], cohort[feats].std(ddof=0), rtol=1e-5)  # from float32 inputs
    assert report.loc[wide, "spread_shifted"].all() and not report.loc[feats[4:], "spread_shifted"].any()


def test_a_model_keeps_its_training_sds_before_the_clip_dense_and_sparse(three_classes):
    import scipy.sparse as sp

    from mlpcli.data import PreprocessConfig, Preprocessor

    _, df = three_classes
    X = np.abs(df[_features(df)].to_numpy()) * (np.arange(len(df))[:, None] % 3 > 0)  # a third of the rows 0
    for matrix in (X, sp.csr_matrix(X)):
        pre = Preprocessor(PreprocessConfig(scaling="robust"))
        pre.fit(matrix, _features(df))
        assert np.allclose(pre.train_sd_unclipped_, X.std(axis=0) / pre.scale_, rtol=1e-9)
        assert np.all(pre.train_sd_unclipped_ > pre.train_sd_)  # the clip squeezed every one
    plain = Preprocessor(PreprocessConfig(scaling="standard")).fit(X, _features(df))
    assert plain.train_sd_unclipped_ is None


def test_a_model_from_before_format_11_judges_spread_after_the_clip(three_classes, tmp_path):
    from mlpcli import model_io
    from model_files import rewrite_model

    d, df = three_classes
    old = rewrite_model(d / "m.mlp", tmp_path / "v10.mlp", lambda m: m.update(format_version=10), lambda a: a)
    model = model_io.load(old)
    assert model.preprocessor.train_sd_unclipped_ is None
    r = run(["predict", old, str(d / "train.csv"), "-o", str(tmp_path / "p.csv"), "--shift-report",
             str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    import pandas as pd

    report = pd.read_csv(tmp_path / "s.csv")
    assert np.allclose(report["sd_ratio"], report["new_sd_scaled"] / report["train_sd_scaled"])


def test_the_sds_before_the_clip_are_sampled_over_the_whole_of_a_sorted_table(three_classes):
    """Past the first rows the SDs before the clip come from every 16th row, weighted: a table sorted so that its
    wide half comes last still gives the SDs of all its rows."""
    from mlpcli import model_io
    from mlpcli.predict.shift import UNCLIPPED_EVERY_ROW, shift_report

    d, df = three_classes
    model = model_io.load(d / "m.mlp")
    rng = np.random.default_rng(5)
    base = df[_features(df)].to_numpy()
    rows = base[rng.integers(0, len(base), 3 * UNCLIPPED_EVERY_ROW)]
    rows[len(rows) // 2:] = rows[len(rows) // 2:] * 3.0 - 2.0 * rows.mean(axis=0)  # the later half wider
    report = shift_report(model, rows.astype(np.float32))
    truth = rows.std(axis=0) / base.std(axis=0)  # ~2.2; the first rows alone would give ~1
    assert np.allclose(report.sd_ratio, truth, rtol=0.1)  # 2,048 rows and 256 of the other 4,096
    assert abs(report.sd_ratio.mean() / truth.mean() - 1) < 0.03


@pytest.mark.parametrize("inside", ["matrix.mtx.gz", "barcodes.tsv.gz", "features.tsv.gz"])
def test_an_output_inside_a_10x_input_directory_cannot_replace_its_files(tmp_path, inside):
    """`train pbmc -o pbmc/matrix.mtx.gz` replaced the counts by the model (exit 0), `predict ... -o
    pbmc/barcodes.tsv.gz` the barcodes by the predictions: every output check compared files, and the directory
    is not one of its files. A new file there is still allowed."""
    tenx = tmp_path / "pbmc"
    write_tenx(tenx, [f"G{j}" for j in range(8)], cells=40)
    before = {p.name: p.read_bytes() for p in tenx.iterdir()}
    sheet = tmp_path / "cells.csv"
    sheet.write_text("barcode,cell_type\n" + "".join(f"AAAC{i}-1,{'BT'[i % 2]}\n" for i in range(40)))
    common = ["--samples", str(sheet), "--id", "barcode"]
    r = run(["train", str(tenx), *common, "--target", "cell_type", "--folds", "1", "--epochs", "2", "--hidden", "4",
             "-q", "-o", str(tenx / inside)])
    assert_clean_error(r, f"--out {tenx / inside} is also the input DATA's {inside}", code=2)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tenx), *common, "--target", "cell_type", "--folds", "1", "--epochs", "2", "--hidden",
                "4", "-q", "-o", str(model)]).exit_code == 0
    for args in (["predict", str(model), str(tenx), *common, "-o", str(tenx / inside)],
                 ["predict", str(model), str(tenx), *common, "-o", "-", "--shift-report", str(tenx / inside)],
                 ["evaluate", str(model), str(tenx), *common, "--shift-report", str(tenx / inside)]):
        # .mtx.gz is no output format: refused for that first
        needles = [f"is also the input DATA's {inside}"] if inside != "matrix.mtx.gz" else []
        assert_clean_error(run(args), *needles, code=2)
    assert {p.name: p.read_bytes() for p in tenx.iterdir()} == before
    assert run(["predict", str(model), str(tenx), *common, "-o", str(tenx / "predictions.csv"), "-q"]).exit_code == 0


def test_an_h5ad_file_another_process_holds_open_for_writing_is_not_called_corrupt(tmp_path):
    """A notebook holding the file with backed='r+' (HDF5's lock): "is it truncated or corrupt?" sent users to
    re-download an intact file."""
    import subprocess
    import sys

    anndata = pytest.importorskip("anndata")
    import pandas as pd

    path = tmp_path / "cells.h5ad"
    anndata.AnnData(np.ones((6, 3), dtype=np.float32),
                    obs=pd.DataFrame({"cell_type": list("ababab")}, index=[f"c{i}" for i in range(6)])).write_h5ad(path)
    holder = subprocess.Popen([sys.executable, "-c", "import h5py, sys, time; f = h5py.File(sys.argv[1], 'r+'); "
                               "print('open', flush=True); time.sleep(60)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        r = run(["train", str(path), "--target", "cell_type", "-q"], env={"HDF5_USE_FILE_LOCKING": "TRUE"})
        assert_clean_error(r, "HDF5 could not lock it", "HDF5_USE_FILE_LOCKING=FALSE")
        assert "corrupt" not in r.output
    finally:
        holder.kill()
        holder.wait()


def test_a_human_model_matched_to_mouse_gene_symbols_by_letter_case_warns(tmp_path):
    """CD3E ← Cd3e for every gene: a note (which --quiet hides) was all a human model said of a mouse table."""
    df = make_table("multiclass", n_patients=30, seed=2)
    genes = ["CD3E", "MS4A1", "CD14", "LYZ", "NKG7", "GNLY", "CD8A", "FCGR3A", "PPBP", "IL7R", "CCR7", "S100A4"]
    human = df.rename(columns=dict(zip(_features(df), genes)))
    human.to_csv(tmp_path / "human.csv", index=False)
    assert run(["train", str(tmp_path / "human.csv"), "-o", str(tmp_path / "m.mlp"), *FAST]).exit_code == 0
    mouse = human.rename(columns={g: g.capitalize() for g in genes})
    mouse.to_csv(tmp_path / "mouse.csv", index=False)
    r = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "mouse.csv"), "-o", str(tmp_path / "p.csv"), "-q"])
    assert r.exit_code == 0, r.output
    assert "warning: 12 of the model's features (100%) matched only by letter case" in r.output
    assert "'CD3E' ← 'Cd3e'" in r.output and "map orthologues" in r.output
    # a few names in another case (a typo, a spreadsheet) stay a note
    few = human.rename(columns={"CD3E": "Cd3e"})
    few.to_csv(tmp_path / "few.csv", index=False)
    r = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "few.csv"), "-o", str(tmp_path / "p.csv")])
    assert r.exit_code == 0 and "matched only by letter case" not in r.output and "'CD3E' ← 'Cd3e'" in r.output


def test_an_anndata_zarr_store_is_named_with_its_conversion(tmp_path, three_classes):
    """A .zarr store is a directory too: it read as a 10x directory "without matrix.mtx.gz"."""
    store = tmp_path / "cells.zarr"
    store.mkdir()
    (store / ".zattrs").write_text("{}")
    (store / ".zgroup").write_text('{"zarr_format": 2}')
    d, _ = three_classes
    for args in (["train", str(store), "--target", "cell_type"], ["predict", str(d / "m.mlp"), str(store), "-o", "-"]):
        assert_clean_error(run(args), "is a Zarr store (AnnData's .zarr), not a 10x Genomics directory",
                           "anndata.read_zarr(")


def test_a_model_file_given_as_the_table_is_named(three_classes, tmp_path):
    """`predict m.mlp m-copy.csv`, or `train model.mlp`: "the header line is not UTF-8 text (a binary file?)"."""
    d, _ = three_classes
    copy = tmp_path / "data.csv"
    copy.write_bytes((d / "m.mlp").read_bytes())
    for args in (["predict", str(d / "m.mlp"), str(copy), "-o", "-"], ["train", str(d / "m.mlp")],
                 ["evaluate", str(d / "m.mlp"), str(copy)]):
        assert_clean_error(run(args), "is an mlpcli model file, not a data table", "mlpcli predict MODEL DATA")


def test_a_10x_directory_with_both_forms_of_a_file_names_the_one_read(tmp_path):
    """matrix.mtx.gz and matrix.mtx side by side (gunzip -k) with other contents: one was read silently, and the
    note said "matrix.mtx" whichever it was."""
    import gzip

    from mlpcli import data

    tenx = tmp_path / "pbmc"
    write_tenx(tenx, [f"G{j}" for j in range(5)], cells=8)
    (tenx / "matrix.mtx").write_bytes(gzip.decompress((tenx / "matrix.mtx.gz").read_bytes()))
    sheet = tmp_path / "cells.csv"
    sheet.write_text("barcode,cell_type\n" + "".join(f"AAAC{i}-1,{'BT'[i % 2]}\n" for i in range(8)))
    _, notes = data.load_dataset(str(tenx), samples=str(sheet), id="barcode", target=["cell_type"])
    (note,) = [n for n in notes if "from 10x Genomics" in n]
    assert "from 10x Genomics matrix.mtx.gz (sparse)" in note and "also there and not read: pbmc/matrix.mtx" in note


def test_a_genes_by_samples_parquet_with_its_gene_column_last_says_so(tmp_path, three_classes):
    """The gene column written last (pandas' reset_index after a transpose, in another order): "duplicate feature
    names in the first column: '5.0' (×5) ... (a microarray's probes?)"."""
    import pandas as pd

    d, df = three_classes
    matrix = df.set_index("sample_id")[_features(df)].T.round(0)
    matrix["gene"] = matrix.index
    matrix.reset_index(drop=True).to_parquet(tmp_path / "genes_last.parquet")
    r = run(["predict", str(d / "m.mlp"), str(tmp_path / "genes_last.parquet"), "--features-in-rows", "-o", "-"])
    assert_clean_error(r, "holds numbers, not feature names", "'gene'", "write that column first")


def test_a_key_named_twice_in_model_json_is_named(three_classes, tmp_path):
    """`"task"` given twice (a hand edit beside the old value): JSON kept the last, and the error spoke of sigmoid
    outputs not fitting task 'regression'."""
    import zipfile

    d, _ = three_classes
    with zipfile.ZipFile(d / "m.mlp") as zf:
        text, weights = zf.read("model.json").decode(), zf.read("weights.npz")
    edited = text.replace('"task": "multiclass"', '"task": "multiclass", "task": "regression"', 1)
    assert edited != text
    with zipfile.ZipFile(tmp_path / "twice.mlp", "w") as zf:
        zf.writestr("model.json", edited)
        zf.writestr("weights.npz", weights)
    assert_clean_error(run(["info", str(tmp_path / "twice.mlp")]), "model.json names the key 'task' twice")


def test_other_zip_archives_given_as_the_model_are_named(tmp_path):
    import zipfile

    np.savez(tmp_path / "arrays.npz", x=np.ones(3))
    with zipfile.ZipFile(tmp_path / "d.csv.zip", "w") as zf:
        zf.writestr("d.csv", "a,b\n1,2\n")
    assert_clean_error(run(["info", str(tmp_path / "arrays.npz")]), "a NumPy .npz archive of arrays")
    assert_clean_error(run(["info", str(tmp_path / "d.csv.zip")]), "a zip archive holding 'd.csv' (a zipped data table?")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_no_group_on_a_table_whose_patients_repeat_warns(tmp_path, fmt):
    """`train --no-group` on a table with several samples per patient said nothing, and its held-out estimates and
    calibration treated a patient's samples as independent."""
    df = make_table("multiclass", n_patients=30, per_patient=3)
    path = tmp_path / f"t.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path)
    r = run(["train", str(path), "--no-group", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert r.exit_code == 0, r.output
    assert "warning: --no-group, but 'patient_id' repeats: 90 samples of 30 patients (3.0 each)" in r.output
    from mlpcli import model_io

    assert "patient_id" not in model_io.load(tmp_path / "m.mlp").feature_names
    once = make_table("multiclass", n_patients=60, per_patient=1)
    once.to_csv(tmp_path / "once.csv", index=False)
    r = run(["train", str(tmp_path / "once.csv"), "--no-group", "-o", str(tmp_path / "m1.mlp"), *FAST])
    assert r.exit_code == 0 and "--no-group, but" not in r.output


def test_lbfgs_in_float32_reaches_logistic_regression_as_float64_does():
    """One small step (a decrease under 1e-6 of max(|f|, 1)) ended float32 L-BFGS runs with their gradient still
    100 x float64's final one: weights 5e-3 and probabilities 7e-3 from LogisticRegression(C=1)'s."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from mlpcli.estimators import MLPClassifier

    X, y = make_classification(n_samples=500, n_features=30, n_informative=8, n_classes=3, random_state=4)
    X = (X - X.mean(0)) / X.std(0)
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(X, y)
    m = MLPClassifier(hidden=(), optimizer="lbfgs", early_stopping=False, dtype="float32", epochs=1000, l2=0.5 / 500,
                      random_state=0).fit(X, y)
    assert np.abs(m.predict_proba(X) - sk.predict_proba(X)).max() < 1e-3


def test_lbfgs_in_float32_on_a_small_regression_loss_reaches_least_squares(tmp_path):
    """A regression's loss on the standardised target (~0.02) made the float32 tolerance 1e-6 absolute, 50 x its
    value's rounding: predictions 4 units (target SD 76) from least squares'."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 20)) * rng.uniform(0.1, 8, size=20)
    y = 10 * X @ rng.normal(size=20) + 1000 + rng.normal(scale=20, size=500)
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(20)]).assign(y=y)
    df.iloc[:400].to_csv(tmp_path / "tr.csv", index=False)
    df.iloc[400:].to_csv(tmp_path / "va.csv", index=False)
    r = run(["train", str(tmp_path / "tr.csv"), "--val-data", str(tmp_path / "va.csv"), "--target", "y", "--task",
             "regression", "--hidden", "none", "--optimizer", "lbfgs", "--l2", "0", "--no-standardize", "--no-log1p",
             "-o", str(tmp_path / "m.mlp"), "-q"])
    assert r.exit_code == 0, r.output
    assert run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "va.csv"), "-o", str(tmp_path / "p.csv"),
                "-q"]).exit_code == 0
    ols = LinearRegression().fit(X[:400], y[:400]).predict(X[400:])
    assert np.abs(pd.read_csv(tmp_path / "p.csv")["pred_y"].to_numpy() - ols).max() < 0.5  # was 4.1


def test_an_lbfgs_run_is_summarised_in_iterations_and_says_it_keeps_its_last_weights(tmp_path):
    """"37 run (epoch limit); best epoch 37, weights restored" was said of an L-BFGS run that converged (its limit was
    200) and restored nothing."""
    df = make_table("multiclass", n_patients=40)
    df.to_csv(tmp_path / "t.csv", index=False)
    for folds, expected in (("1", "of L-BFGS (converged); the last weights kept"),
                            ("3", "of L-BFGS, at most 200 (per member; 3 converged; the last weights kept)")):
        r = run(["train", str(tmp_path / "t.csv"), "--hidden", "none", "--optimizer", "lbfgs", "--folds", folds,
                 "-o", str(tmp_path / "m.mlp")])
        assert r.exit_code == 0, r.output
        assert expected in r.output and "weights restored" not in r.output and "epoch limit" not in r.output


def test_balanced_class_weights_with_sample_weights_count_classes_as_scikit_learn_does():
    """class_weight="balanced" divided by the classes' unweighted counts when sample_weight was given; scikit-learn
    (compute_class_weight with sample_weight, as LogisticRegression uses it) divides by their weighted counts: the
    probabilities differed by 3e-2 from LogisticRegression's, 3e-5 now."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from mlpcli.estimators import MLPClassifier

    X, y = make_classification(n_samples=500, n_features=30, n_informative=8, n_classes=3, random_state=4)
    X = (X - X.mean(0)) / X.std(0)
    sw = np.random.default_rng(0).uniform(0.2, 3, 500)
    m = MLPClassifier(hidden=(), optimizer="lbfgs", early_stopping=False, dtype="float64", epochs=1000,
                      class_weight="balanced", random_state=0, l2=0.5 / 500).fit(X, y, sample_weight=sw)
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000, class_weight="balanced").fit(X, y, sample_weight=sw)
    assert np.abs(m.predict_proba(X) - sk.predict_proba(X)).max() < 1e-3
    with pytest.raises(ValueError, match="total sample_weight, which is 0 for"):
        MLPClassifier(hidden=(), class_weight="balanced", epochs=2).fit(X, y, sample_weight=np.where(y == 0, 0.0, 1.0))


def _children(pid: int) -> list[int]:
    import os

    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d))
    return out


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="reads /proc (Linux)")
def test_workers_end_when_the_command_is_killed_outright():
    """The command SIGKILLed (the out-of-memory killer) or crashed in BLAS while members trained in worker
    processes: the workers, which ignore the stop signals, stayed alive for good, one blocked writing its result."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from pathlib import Path

    sample = Path(__file__).resolve().parent.parent / "sample_data" / "tumour_subtypes.csv.gz"
    proc = subprocess.Popen([sys.executable, "-m", "mlpcli", "train", str(sample), "--n-jobs", "2", "--epochs",
                             "400", "--patience", "400", "-o", os.devnull, "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)  # the members are training
        workers = _children(proc.pid)
        assert len(workers) >= 2 and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_without_worker_processes_the_fits_run_here_with_one_warning(tmp_path):
    """JOBLIB_MULTIPROCESSING=0, or a read-only /dev/shm: joblib fell back to threads with a raw UserWarning, then
    refused the BLAS cap ("internal error (AssertionError: ThreadingBackend does not accept ...)") — in `train`
    without --n-jobs too."""
    import os
    import subprocess
    import sys

    make_table("multiclass", n_patients=30).to_csv(tmp_path / "t.csv", index=False)
    env = {**os.environ, "JOBLIB_MULTIPROCESSING": "0"}
    for args in (["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp"), "--n-jobs", "2"],
                 ["cv", str(tmp_path / "t.csv"), "--folds", "2", "--n-jobs", "2"]):
        r = subprocess.run([sys.executable, "-m", "mlpcli", *args, "--hidden", "4", "--epochs", "3", "-q"], env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "worker processes cannot be started here (JOBLIB_MULTIPROCESSING=0" in r.stderr
        assert "UserWarning" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("error", [RuntimeError("can't start new thread"),
                                   ImportError("libx.so: failed to map segment from shared object"),
                                   OSError(12, "Cannot allocate memory")])
def test_memory_running_out_in_other_guises_is_the_out_of_memory_error(tmp_path, monkeypatch, error):
    """Under `ulimit -v` a thread's stack or a library's mapping fails first: "internal error (RuntimeError: can't
    start new thread)" instead of the out-of-memory message a MemoryError gets."""
    from mlpcli import pipeline

    make_table("multiclass", n_patients=20).to_csv(tmp_path / "t.csv", index=False)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipeline, "train_dataset", fail)
    assert_clean_error(run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp")]),
                       "out of memory: the job's memory limit")


def test_an_output_path_with_a_line_break_is_named_on_one_line(tmp_path):
    make_table("multiclass", n_patients=20).to_csv(tmp_path / "t.csv", index=False)
    r = run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "no\nsuch" / "m.mlp")])
    assert_clean_error(r, f"--out: directory {str(tmp_path / ('no' + chr(10) + 'such'))!r} does not exist")
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1


@pytest.mark.skipif(not __import__("os").path.isdir("/dev/fd"), reason="needs /dev/fd")
def test_a_table_read_through_a_descriptor_records_no_descriptor_number(tmp_path):
    """`train <(zcat x.csv.gz)` recorded "63", the number bash chose, so the same data gave other model bytes
    under another shell."""
    import os

    from mlpcli import model_io

    make_table("multiclass", n_patients=20).to_csv(tmp_path / "t.csv", index=False)
    outs = []
    for i in range(2):
        fd = os.open(tmp_path / "t.csv", os.O_RDONLY)
        dup = os.dup2(fd, 40 + i)  # another number each time
        try:
            out = tmp_path / f"m{i}.mlp"
            assert run(["train", f"/dev/fd/{dup}", "-o", str(out), "--hidden", "4", "--epochs", "2", "-q"]).exit_code == 0
            outs.append(out.read_bytes())
        finally:
            os.close(dup)
            os.close(fd)
    assert outs[0] == outs[1]
    assert model_io.load(tmp_path / "m0.mlp").provenance["data_file"] == "(a pipe or descriptor)"


def test_a_gene_far_out_in_training_and_cohort_alike_is_not_called_spread(tmp_path):
    """The same 1e12 outlier in 10 genes of both cohorts: the clip's inverse gave inf for the cohort's and the
    training SD was exact, so 20 % of genes read as spread-shifted and --fail-on-shift refused the predictions.
    Both sides now hold values within ±100 scales."""
    import pandas as pd

    frames = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 400)
        X = rng.normal(0, 1, (400, 50))
        X[:, :5] += y[:, None]
        X[3, :10] = 1e12
        df = pd.DataFrame(X, columns=[f"g{j}" for j in range(50)])
        df.insert(0, "label", np.where(y, "pos", "neg"))
        df.insert(0, "patient_id", [f"{seed}_{i}" for i in range(400)])
        frames.append(df)
    frames[0].to_csv(tmp_path / "train.csv", index=False)
    frames[1].to_csv(tmp_path / "new.csv", index=False)
    assert run(["train", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m.mlp"), "--folds", "2", "--epochs", "5",
                "-q"]).exit_code == 0
    r = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv"),
             "--fail-on-shift", "shift", "--shift-report", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    report = pd.read_csv(tmp_path / "s.csv")
    assert not report["spread_shifted"].any() and np.isfinite(report["sd_ratio"]).all()
