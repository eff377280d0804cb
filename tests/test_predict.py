"""`mlpcli predict` and the library behind it (mlpcli.predict): feature matching by name, exact
chunked prediction, the cohort-shift check, formats, pipelines and failure modes."""

from __future__ import annotations

import gzip
import io
import json
import re
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli import model_io
from mlpcli import predict as lib
from mlpcli.predict.columns import training_means
from mlpcli.cli import cli
from mlpcli.config import TrainOptions
from mlpcli.pipeline import train
from tables import make_table
from cli_helpers import run, assert_clean_error

TARGETS = {"binary": ["label"], "multiclass": ["label"], "multilabel": ["lab0", "lab1", "lab2"], "regression": ["label"]}


def leftovers(directory) -> list[str]:
    return [p for p in os.listdir(directory) if p.endswith(".tmp")]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """A small trained model per task (hidden [8], 30 epochs: about a second for all four) and the table it was trained on."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for task in TARGETS:
        df = make_table(task=task, seed=1)
        path = root / f"{task}.csv"
        df.to_csv(path, index=False)
        model = train(str(path), TrainOptions(target=TARGETS[task], hidden=[8], epochs=30, lr=0.01, seed=0)).model
        model_path = root / f"{task}.mlp"
        model_io.save(model, model_path)
        out[task] = (str(model_path), df)
    return out


def cohort(task: str, seed: int = 7) -> pd.DataFrame:
    """New samples from the same generator (new patients), labels included."""
    df = make_table(task=task, seed=seed, n_patients=30)
    df["patient_id"] = "N" + df["patient_id"]
    df["sample_id"] = "N" + df["sample_id"]
    return df


def write(df: pd.DataFrame, tmp_path, name: str = "cohort.csv", **kw) -> str:
    path = tmp_path / name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",", **kw)
    return str(path)


def features(model) -> list[str]:
    return list(model.feature_names)


# ── output columns and exactness ─────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("task", list(TARGETS))
def test_output_columns_per_task(tmp_path, models, task):
    model_path, _ = models[task]
    model = model_io.load(model_path)
    df = cohort(task)
    out = tmp_path / "pred.csv"
    res = run(["predict", model_path, write(df, tmp_path), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    pred = pd.read_csv(out)
    assert len(pred) == len(df) == doc["rows"]
    assert list(pred["sample_id"]) == list(df["sample_id"])
    if task in ("binary", "multiclass"):
        probs = pred[[f"prob_{c}" for c in model.classes]].to_numpy()
        assert list(pred.columns) == ["sample_id", "pred_label", *[f"prob_{c}" for c in model.classes]]
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
        assert set(pred["pred_label"]) <= {str(c) for c in model.classes}
        if task == "multiclass":
            assert (pred["pred_label"] == np.asarray(model.classes)[probs.argmax(axis=1)]).all()
        else:  # threshold 0.5 on P(positive class), the second class
            assert (pred["pred_label"] == np.where(probs[:, 1] >= 0.5, model.classes[1], model.classes[0])).all()
    elif task == "multilabel":
        labels = ["lab0", "lab1", "lab2"]
        assert list(pred.columns) == ["sample_id", *[f"pred_{c}" for c in labels], *[f"prob_{c}" for c in labels]]
        # each label at its threshold by the model's decision rule (0.5, or its training share under balanced)
        thresholds = np.broadcast_to(model.decider.threshold("multilabel"), (len(labels),))
        assert doc["decision"] == model.decider.rule and doc["threshold_source"] == "decision rule"
        for c, t in zip(labels, thresholds):
            assert ((pred[f"prob_{c}"] >= t).astype(int) == pred[f"pred_{c}"]).all()
    else:
        assert list(pred.columns) == ["sample_id", "pred_label"]
        assert np.corrcoef(pred["pred_label"], df["label"])[0, 1] > 0.5  # it learned something
    assert "target column" in " ".join(doc["notes"])  # the labels in the table were ignored, and said so


@pytest.mark.parametrize("task", list(TARGETS))
def test_library_equals_model_predict_output_bit_for_bit(models, task):
    model_path, _ = models[task]
    model = model_io.load(model_path)
    df = cohort(task)
    frame = pd.concat(list(lib.predict_stream(model, df, chunksize=7)))
    expected = model.predict_output(df[features(model)].to_numpy(dtype=float))
    if task != "regression":  # probabilities in the network's float32; regression values in float64 (their units)
        expected = expected.astype(np.float32)
    if task == "binary" and expected.shape[1] == 1:
        got = frame[f"prob_{model.classes[1]}"].to_numpy()[:, None]
    elif task == "regression":
        got = frame[[f"pred_{c}" for c in model.classes]].to_numpy()
    else:
        got = frame[[f"prob_{c}" for c in model.classes]].to_numpy()
    np.testing.assert_array_equal(got, expected)


def test_preprocessing_with_log1p_top_var_and_impute_is_applied_as_fitted(tmp_path):
    df = make_table(task="multiclass", seed=3)
    feats = [c for c in df.columns if c.startswith("f")]
    df[feats] = np.exp(df[feats])  # non-negative, for log1p
    df.loc[[2, 9], "f01"] = np.nan
    path = write(df, tmp_path, "train.csv")
    model = train(path, TrainOptions(hidden=[6], epochs=3, log1p=True, top_var=7, impute="median")).model
    # each member keeps its own top 7; the model's inputs are the features some member uses
    assert all(len(m.preprocessor.kept_features) == 7 for m in model.members)
    assert set(model.preprocessor.kept_features) == set().union(*(m.preprocessor.kept_features for m in model.members))
    new = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    dropped = [f for f in model.feature_names if f not in model.preprocessor.kept_features]
    new_path = write(new.drop(columns=dropped[:2]), tmp_path, "new.csv")  # features the network never uses
    stream = lib.predict_stream(model, new_path, chunksize=5)
    got = pd.concat(list(stream))[[f"prob_{c}" for c in model.classes]].to_numpy()
    expected = model.predict_output(new[features(model)].to_numpy(dtype=float)).astype(np.float32)
    np.testing.assert_array_equal(got, expected)
    notes = " ".join(stream.notes)
    assert "absent but unused" in notes and "imputed" in notes


def test_chunked_prediction_equals_one_shot_exactly(tmp_path, models):
    model_path, _ = models["multiclass"]
    data = write(cohort("multiclass"), tmp_path)
    outputs = {}
    for chunksize in ("1", "7", "64", "100000"):
        for ext in ("csv", "parquet"):
            out = tmp_path / f"p{chunksize}.{ext}"
            res = run(["predict", model_path, data, "-o", str(out), "--chunksize", chunksize, "-q"])
            assert res.exit_code == 0, res.output
            outputs[(chunksize, ext)] = out.read_bytes() if ext == "csv" else pd.read_parquet(out)
    for chunksize in ("1", "7", "64"):
        assert outputs[(chunksize, "csv")] == outputs[("100000", "csv")]
        pd.testing.assert_frame_equal(outputs[(chunksize, "parquet")], outputs[("100000", "parquet")])


def test_rows_beyond_one_forward_block_stay_exact(models):
    """More rows than FORWARD_ROWS, in chunks that do not divide it: still equal to predict_output."""
    model = model_io.load(models["binary"][0])
    rng = np.random.default_rng(0)
    n = lib.FORWARD_ROWS + 1234
    X = rng.normal(size=(n, len(model.feature_names)))
    df = pd.DataFrame(X, columns=model.feature_names)
    got = pd.concat(list(lib.predict_stream(model, df, chunksize=3000)))
    assert list(got["row"][:3]) == [1, 2, 3] and len(got) == n
    expected = model.predict_output(X).astype(np.float32)[:, -1]
    np.testing.assert_array_equal(got[f"prob_{model.classes[1]}"].to_numpy(), expected)


# ── matching features by name ────────────────────────────────────────────────────────────────────────────


def test_permuted_columns_and_extra_columns_give_identical_predictions(tmp_path, models):
    model_path, _ = models["multiclass"]
    df = cohort("multiclass")
    feats = [c for c in df.columns if c.startswith("f")]
    shuffled = df[["batch", "label", *feats[::-1], "sample_id", "patient_id"]].copy()
    shuffled.insert(3, "site_notes", "lab A")  # text columns the model does not use are ignored
    shuffled["f_extra"] = 1.0
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run(["predict", model_path, write(df, tmp_path), "-o", str(a), "-q"]).exit_code == 0
    res = run(["predict", model_path, write(shuffled, tmp_path, "shuffled.csv"), "-o", str(b)])
    assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes()
    assert "ignored 2 columns the model does not use" in res.output
    assert "features matched by name" in res.output


def test_missing_features_are_an_error_unless_filled_with_training_means(tmp_path, models):
    model_path, _ = models["multiclass"]
    model = model_io.load(model_path)
    df = cohort("multiclass")
    out = tmp_path / "p.csv"
    path = write(df.drop(columns=["f03", "f07", "f11"]), tmp_path, "missing.csv")
    res = run(["predict", model_path, path, "-o", str(out)])
    assert_clean_error(res, "lacks 3 of the 12 features", "'f03'", "'f07'", "--fill-missing mean")
    assert not out.exists() and not leftovers(tmp_path)

    # 25 % of the features is beyond what --fill-missing fills by default (10 %): the limit is raised explicitly
    res = run(["predict", model_path, path, "-o", str(out), "--fill-missing", "mean"])
    assert_clean_error(res, "lacks 3 of the 12 features", "(25 %)", "at most 10 %", "--max-missing 0.25")
    assert not out.exists() and not leftovers(tmp_path)
    res = run(["predict", model_path, path, "-o", str(out), "--fill-missing", "mean", "--max-missing", "0.25", "--json"])
    assert res.exit_code == 0, res.output
    assert any("3 of the 12 features" in w and "training means" in w for w in json.loads(res.stdout)["warnings"])
    # the same as predicting with those columns set to the values that standardise to the training mean
    filled = df.copy()
    means = dict(zip(model.preprocessor.kept_features, training_means(model)))
    for f in ("f03", "f07", "f11"):
        filled[f] = means[f]
    expected = model.predict_output(filled[features(model)].to_numpy(dtype=float)).astype(np.float32)
    got = pd.read_csv(out, dtype={f"prob_{c}": np.float32 for c in model.classes})
    np.testing.assert_array_equal(got[[f"prob_{c}" for c in model.classes]].to_numpy(), expected)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet"])
def test_non_numeric_and_missing_values_name_column_and_row(tmp_path, models, fmt):
    model_path, _ = models["multiclass"]
    df = cohort("multiclass")
    bad = df.astype({"f05": str})  # as text, so parquet can hold it too
    bad.loc[40, "f05"] = "n.d."
    res = run(["predict", model_path, write(bad, tmp_path, f"bad.{fmt}"), "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "'f05'", "'n.d.'", "row 41", "N")
    holes = df.copy()
    holes.loc[[12, 30], "f02"] = np.nan
    res = run(["predict", model_path, write(holes, tmp_path, f"holes.{fmt}"), "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "'f02'", "missing value", "row 13", "--impute")
    assert not (tmp_path / "p.csv").exists()


def test_role_flags_override_the_model_roles(tmp_path, models):
    model_path, _ = models["multiclass"]
    df = cohort("multiclass").rename(columns={"sample_id": "barcode"})
    out = tmp_path / "p.csv"
    res = run(["predict", model_path, write(df, tmp_path), "-o", str(out), "--id", "barcode", "-q"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out).columns[0] == "barcode"
    res = run(["predict", model_path, write(df.drop(columns=["barcode"]), tmp_path, "noid.csv"), "-o", str(out), "-q"])
    assert res.exit_code == 0 and list(pd.read_csv(out)["row"][:3]) == [1, 2, 3]  # no id column: row numbers
    assert_clean_error(run(["predict", model_path, write(df, tmp_path), "--id", "sampel"]), "--id", "'sampel'")
    assert_clean_error(run(["predict", model_path, write(df, tmp_path), "--id", "f01"]), "one of the model's features")


def test_threshold_for_binary_models_only(tmp_path, models):
    model_path, _ = models["binary"]
    model = model_io.load(model_path)
    data = write(cohort("binary"), tmp_path)
    out = tmp_path / "p.csv"
    assert run(["predict", model_path, data, "-o", str(out), "--threshold", "0.9", "-q"]).exit_code == 0
    pred = pd.read_csv(out)
    pos = model.classes[1]
    assert (pred["pred_label"] == np.where(pred[f"prob_{pos}"] >= 0.9, pos, model.classes[0])).all()
    assert_clean_error(run(["predict", models["multiclass"][0], data, "--threshold", "0.3"]), "--threshold",
                       code=2)
    assert run(["predict", model_path, data, "--threshold", "1.5"]).exit_code == 2


# ── cohort shift ─────────────────────────────────────────────────────────────────────────────────────────


def _offset_table(seed: int) -> pd.DataFrame:
    """Features with very different means, so that mixing up columns shows."""
    df = make_table(task="multiclass", seed=seed, n_patients=30)
    feats = [c for c in df.columns if c.startswith("f")]
    df[feats] = df[feats] + np.arange(len(feats)) * 3.0
    return df


def test_shuffled_cohort_triggers_the_shift_warning(tmp_path):
    train_path = write(_offset_table(0), tmp_path, "train.csv")
    model_path = tmp_path / "m.mlp"
    model_io.save(train(train_path, TrainOptions(hidden=[6], epochs=2)).model, model_path)

    same = _offset_table(5)
    res = run(["predict", str(model_path), write(same, tmp_path, "same.csv"), "-o", str(tmp_path / "a.csv")])
    assert res.exit_code == 0 and "cohort shift:" not in res.output and "none" in res.output

    shuffled = same.copy()
    feats = [c for c in same.columns if c.startswith("f")]
    shuffled[feats] = same[feats[::-1]].to_numpy()  # each gene's values under another gene's name
    report = tmp_path / "shift.tsv"
    res = run(["predict", str(model_path), write(shuffled, tmp_path, "shuffled.csv"), "-o", str(tmp_path / "b.csv"),
               "--shift-report", str(report), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["shift"]["level"] == "shift" and doc["shift"]["fraction_mean_shifted"] > 0.5
    warning = next(w for w in doc["warnings"] if w.startswith("cohort shift"))
    # the extreme columns move most: f00 <-> f11 by 33 units, f01 <-> f10 by 27, ..., f05 <-> f06 by 3 (robust
    # scaling's clip saturates the largest shifts near its edge, so among those the order is not the raw one)
    listed = re.findall(r"(f\d\d) \(", warning.split("most shifted:")[1])
    assert len(listed) == 5 and set(listed) <= {"f00", "f01", "f02", "f03", "f08", "f09", "f10", "f11"}, warning
    table = pd.read_csv(report, sep="\t")
    assert list(table.columns[:7]) == ["feature", "new_mean", "new_sd", "train_mean", "train_sd", "mean_shift_sd",
                                      "sd_ratio"]
    assert len(table) == 12 and table["mean_shifted"].sum() >= 10
    assert abs(table["mean_shift_sd"].iloc[0]) >= abs(table["mean_shift_sd"].iloc[-1])


def test_shift_levels_and_small_cohorts():
    d = 20
    base = dict(features=[f"g{j}" for j in range(d)], train_mean=np.zeros(d), train_sd=np.ones(d),
                new_sd=np.ones(d), filled=np.zeros(d, dtype=bool))
    mean = np.zeros(d)
    assert lib.ShiftReport(n=100, new_mean=mean, **base).level == "none"
    mild = mean.copy()
    mild[:5] = 0.7  # a quarter of the features half an SD away
    assert lib.ShiftReport(n=100, new_mean=mild, **base).level == "mild"
    assert lib.ShiftReport(n=10, new_mean=mild, **base).level == "none"  # too few rows to judge half an SD
    strong = mean.copy()
    strong[:3] = -2.0
    report = lib.ShiftReport(n=100, new_mean=strong, **base)
    assert report.level == "shift" and report.most_shifted(1)[0]["mean_shift_sd"] == -2.0
    assert "cohort shift: 15% of the 20 features" in report.message()
    assert lib.ShiftReport(n=3, new_mean=strong, **base).level == "unchecked"
    wide = dict(base, new_sd=np.where(np.arange(d) < 4, 3.0, 1.0))
    assert lib.ShiftReport(n=100, new_mean=mean, **wide).level == "shift"  # spread, not mean


def test_unseen_batch_is_a_warning(tmp_path, models):
    model_path, _ = models["multiclass"]
    df = cohort("multiclass")
    df.loc[:10, "batch"] = "B9"
    res = run(["predict", model_path, write(df, tmp_path), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0
    assert "batch 'B9' (" in res.output and "not seen in training" in res.output


# ── formats, pipelines, atomic output ────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", ["cohort.tsv", "cohort.csv.gz", "cohort.csv.bz2", "cohort.parquet", "cohort.csv.zip"])
def test_input_formats_give_the_same_predictions(tmp_path, models, name):
    model_path, _ = models["multiclass"]
    df = cohort("multiclass")
    ref, out = tmp_path / "ref.csv", tmp_path / "out.csv"
    assert run(["predict", model_path, write(df, tmp_path), "-o", str(ref), "-q"]).exit_code == 0
    if name.endswith(".zip"):
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            zf.writestr("cohort.csv", df.to_csv(index=False))
        path = str(tmp_path / name)
    else:
        path = write(df, tmp_path, name)
    res = run(["predict", model_path, path, "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == ref.read_bytes()


def test_features_in_rows_layout(tmp_path, models):
    model_path, _ = models["multiclass"]
    df = cohort("multiclass")
    feats = [c for c in df.columns if c.startswith("f")]
    transposed = df.set_index("sample_id")[feats].T.rename_axis("gene").reset_index()
    ref, out = tmp_path / "ref.csv", tmp_path / "out.csv"
    assert run(["predict", model_path, write(df[["sample_id", *feats]], tmp_path), "-o", str(ref), "-q"]).exit_code == 0
    res = run(["predict", model_path, write(transposed, tmp_path, "genes.csv"), "--features-in-rows", "-o", str(out)])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(ref))


@pytest.mark.parametrize("name,reader", [
    ("p.tsv", lambda p: pd.read_csv(p, sep="\t")),
    ("p.csv.gz", pd.read_csv),
    ("p.tsv.xz", lambda p: pd.read_csv(p, sep="\t")),
    ("p.parquet", pd.read_parquet),
])
def test_output_format_by_extension(tmp_path, models, name, reader):
    model_path, _ = models["multiclass"]
    data = write(cohort("multiclass"), tmp_path)
    ref = tmp_path / "ref.csv"
    assert run(["predict", model_path, data, "-o", str(ref), "-q"]).exit_code == 0
    assert run(["predict", model_path, data, "-o", str(tmp_path / name), "-q"]).exit_code == 0
    got, expected = reader(tmp_path / name), pd.read_csv(ref)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-6)
    assert_clean_error(run(["predict", model_path, data, "-o", str(tmp_path / "p.json")]), "unsupported output format",
                       code=2)


def test_stdin_to_stdout_pipeline(tmp_path, models):
    model_path, _ = models["multiclass"]
    df = cohort("multiclass")
    ref = tmp_path / "ref.csv"
    assert run(["predict", model_path, write(df, tmp_path), "-o", str(ref), "-q"]).exit_code == 0
    text = df.to_csv(index=False)
    res = CliRunner().invoke(cli, ["predict", model_path, "-", "-o", "-", "-q"], input=text)
    assert res.exit_code == 0, res.output
    assert res.stdout == ref.read_text()
    res = CliRunner().invoke(cli, ["predict", model_path, "-", "--chunksize", "5", "-q"],
                             input=gzip.compress(df.to_csv(index=False, sep="\t").encode()))
    assert res.exit_code == 0 and res.stdout == ref.read_text()  # gzip and TSV sniffed, -o defaults to stdout
    res = CliRunner().invoke(cli, ["predict", model_path, "-", "-o", "-", "--json"], input=text)
    assert res.exit_code == 2 and "--json" in res.output


@pytest.mark.parametrize("command, extra", [
    ("predict", ["-o", "-", "--shift-report", "-"]),
    ("predict", ["-o", "p.csv", "--shift-report", "-", "--json"]),
    ("evaluate", ["--shift-report", "-", "--json"]),
    ("evaluate", ["-o", "-", "--json"]),
    ("explain", ["-o", "-", "--json"]),
])
def test_two_outputs_on_standard_output_are_a_usage_error(tmp_path, monkeypatch, models, command, extra):
    model_path, _ = models["multiclass"]
    data = write(cohort("multiclass"), tmp_path)
    monkeypatch.chdir(tmp_path)
    res = run([command, model_path, data, "-q", *extra])
    assert_clean_error(res, "standard output", code=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv"]


def test_evaluate_and_explain_write_to_standard_output_alone(tmp_path, monkeypatch, models):
    """evaluate -o - prints the JSON document (no file named "-"); explain -o - prints the ranking only."""
    model_path, _ = models["multiclass"]
    data = write(cohort("multiclass"), tmp_path)
    monkeypatch.chdir(tmp_path)
    res = run(["evaluate", model_path, data, "-o", "-", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == len(cohort("multiclass")) and not (tmp_path / "-").exists()
    res = run(["explain", model_path, data, "-o", "-", "-q", "--top", "3"])
    assert res.exit_code == 0, res.output
    ranking = pd.read_csv(io.StringIO(res.stdout))
    assert list(ranking.columns[:3]) == ["class", "rank", "feature"] and len(ranking) == 3 * 3


def test_a_reader_that_stops_early_ends_every_writer_to_standard_output_quietly(tmp_path, models):
    """`... -o - | head -1`: exit 141 (SIGPIPE's), nothing on stderr, as for predict's rows. The reader here
    (`true`) has closed the pipe long before the command writes, so the write always fails."""
    model_path, _ = models["multiclass"]
    data = write(cohort("multiclass"), tmp_path)
    for args in (f"explain {model_path} {data} -o - -q --top 50",
                 f"predict {model_path} {data} -o {tmp_path / 'p.csv'} --shift-report - -q",
                 f"info {model_path}"):  # a rich table (rich's own rule would exit 1)
        cmd = f"{sys.executable} -m mlpcli {args} | true; echo ${{PIPESTATUS[0]}}"
        proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
        assert proc.stdout.strip() == "141" and proc.stderr == "", (args, proc.stdout, proc.stderr)


def test_real_shell_pipeline(tmp_path, models):
    model_path, _ = models["binary"]
    data = write(cohort("binary"), tmp_path, "c.csv.gz")
    cmd = (f"gzip -dc {data} | {sys.executable} -m mlpcli predict {model_path} - --quiet "
           f"| {sys.executable} -c \"import sys, pandas; print(len(pandas.read_csv(sys.stdin)))\"")
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(len(cohort("binary")))


def test_an_error_halfway_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, models):
    model_path, _ = models["multiclass"]
    df = cohort("multiclass")
    out = tmp_path / "p.csv"
    out.write_text("previous results\n")
    bad = df.astype({"f01": object})
    bad.loc[len(df) - 3, "f01"] = "oops"  # in the last chunk: earlier chunks were already written
    res = run(["predict", model_path, write(bad, tmp_path, "bad.csv"), "-o", str(out), "--chunksize", "10"])
    assert_clean_error(res, "'oops'", f"row {len(df) - 2}")
    assert out.read_text() == "previous results\n"
    assert not leftovers(tmp_path)


def test_an_output_path_that_cannot_be_written_leaves_nothing(tmp_path, models):
    model_path, _ = models["multiclass"]
    data = write(cohort("multiclass"), tmp_path)
    res = run(["predict", model_path, data, "-o", str(tmp_path / "no" / "such" / "dir" / "p.csv")])
    assert_clean_error(res, "does not exist")
    assert not (tmp_path / "no").exists()
    (tmp_path / "adir.csv").mkdir()
    assert_clean_error(run(["predict", model_path, data, "-o", str(tmp_path / "adir.csv")]), "directory", code=2)
    # the directory is removed after the run started: the write fails, and nothing is left behind
    target = tmp_path / "gone"
    target.mkdir()
    stream = lib.predict_stream(model_io.load(model_path), data)
    target.rmdir()
    with pytest.raises(OSError):
        lib.write_predictions(stream, str(target / "p.csv"))
    assert not target.exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_bad_truncated_or_foreign_model_files(tmp_path, models, command):
    model_path, _ = models["multiclass"]
    data = write(cohort("multiclass"), tmp_path)
    raw = open(model_path, "rb").read()
    (tmp_path / "truncated.mlp").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.mlp").write_text("not a model\n")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    import pickle

    (tmp_path / "pickle.mlp").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    for name in ("truncated.mlp", "text.mlp", "other.zip", "pickle.mlp", "nope.mlp"):
        res = run([command, str(tmp_path / name), data])
        assert_clean_error(res, name)


def test_empty_and_header_only_tables(tmp_path, models):
    model_path, _ = models["multiclass"]
    df = cohort("multiclass")
    (tmp_path / "empty.csv").write_text("")
    assert_clean_error(run(["predict", model_path, str(tmp_path / "empty.csv")]), "empty")
    (tmp_path / "header.csv").write_text(",".join(df.columns) + "\n")
    assert_clean_error(run(["predict", model_path, str(tmp_path / "header.csv"), "-o", str(tmp_path / "p.csv")]),
                       "no data rows")
    assert not (tmp_path / "p.csv").exists()
    (tmp_path / "ragged.csv").write_text(df.head(3).to_csv(index=False) + "S9,P9,B1,typeA,1,2\n")
    # a short row is not read as missing values: its fields would sit in the wrong columns
    assert_clean_error(run(["predict", model_path, str(tmp_path / "ragged.csv")]), "line 5 has 6 fields", "16")
    assert_clean_error(run(["predict", model_path, str(tmp_path / "absent.csv")]), "not found")


# ── library ──────────────────────────────────────────────────────────────────────────────────────────────


def test_prepare_and_shift_report_for_notebooks(models):
    model = model_io.load(models["multiclass"][0])
    df = cohort("multiclass")
    reordered = df[df.columns[::-1]]
    X, ids, notes, warnings = lib.prepare(model, reordered)
    assert X.shape == (len(df), len(model.feature_names)) and list(ids) == list(df["sample_id"])
    np.testing.assert_array_equal(model.predict_output(X), model.predict_output(df[features(model)].to_numpy(float)))
    assert any("matched by name" in n for n in notes) and warnings == []
    report = lib.shift_report(model, X)
    assert report.n == len(df) and report.level in ("none", "mild")
    assert set(report.to_frame()["feature"]) == set(model.preprocessor.kept_features)
    stream = lib.predict_stream(model, df)
    list(stream)
    np.testing.assert_allclose(stream.shift.new_mean, report.new_mean, atol=1e-5)


def test_every_command_has_help_with_an_example():
    for command in ("predict", "evaluate"):
        res = run([command, "--help"])
        assert res.exit_code == 0 and "Example:" in res.output


def _open_paths() -> set[str]:
    fds = "/proc/self/fd"
    out = set()
    for fd in os.listdir(fds):
        try:
            out.add(os.path.realpath(os.readlink(os.path.join(fds, fd))))
        except OSError:
            pass
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to list open files")
@pytest.mark.parametrize("name", ["cohort.csv", "cohort.parquet"])
def test_a_stream_not_read_to_its_end_releases_its_file_when_closed(tmp_path, models, name):
    model = model_io.load(models["multiclass"][0])
    path = os.path.realpath(write(cohort("multiclass"), tmp_path, name))
    stream = lib.predict_stream(model, path, chunksize=5)
    assert path in _open_paths()  # the header is read at once (notes, column checks)
    stream.close()
    assert path not in _open_paths()
    stream.close()  # twice: harmless
    with pytest.raises(ValueError, match="closed"):
        list(stream)
    with lib.predict_stream(model, path, chunksize=5) as stream:
        first = next(iter(stream))
    assert len(first) > 0 and path not in _open_paths()  # left before its end
    with lib.predict_stream(model, path, chunksize=5) as stream:  # read to the end, then closed again
        assert sum(len(f) for f in stream) == len(cohort("multiclass"))
    assert path not in _open_paths()


@pytest.mark.parametrize("folds", ["5", "1"])
def test_out_of_distribution_scores_do_not_depend_on_the_chunking(tmp_path, folds):
    """The OOD scores' matrix products run on the network's fixed blocks of rows, not on the reader's pieces,
    so --chunksize changes no bit of them (an ensemble and one network alike; with two BLAS threads the
    products of 1 or 13 rows and of 120 differed in the last bits, 1e-14, before)."""
    df = make_table(task="multiclass", seed=3, n_features=2000, n_patients=60)
    train_path = write(df, tmp_path, "train.csv")
    model_path = tmp_path / "m.mlp"
    assert run(["train", train_path, "-o", str(model_path), "--folds", folds, "--epochs", "3", "--hidden", "16",
                "-q"]).exit_code == 0
    model = model_io.load(model_path)
    new = write(make_table(task="multiclass", seed=4, n_features=2000, n_patients=40), tmp_path, "new.csv")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2):  # two BLAS threads split a product by its rows: where it showed
        frames = [pd.concat(list(lib.predict_stream(model, new, chunksize=c,
                                                    uncertainty=lib.Uncertainty(ood=True, coverage=0.9))))
                  for c in (1, 13, 100000)]
    assert frames[0]["ood_score"].dtype == np.float64
    for frame in frames[:2]:
        assert np.array_equal(frame["ood_score"].to_numpy(), frames[2]["ood_score"].to_numpy())
        pd.testing.assert_frame_equal(frame, frames[2], check_exact=True)
    res = run(["predict", str(model_path), new, "-o", str(tmp_path / "a.csv"), "--ood", "--chunksize", "1", "-q"])
    assert res.exit_code == 0 and b"ood_score" in (tmp_path / "a.csv").read_bytes()


def test_a_table_whose_lines_end_with_carriage_returns_alone_is_read_as_train_reads_it(tmp_path, models):
    """Classic Mac OS line ends (\\r alone): train read them through pandas, predict and evaluate stopped with
    an internal error of Python's csv module."""
    model_path, _ = models["multiclass"]
    df = cohort("multiclass")
    lf = write(df, tmp_path, "lf.csv")
    cr = tmp_path / "cr.csv"
    cr.write_bytes(open(lf, "rb").read().replace(b"\n", b"\r"))
    outs = {}
    for name, path in (("lf", lf), ("cr", str(cr))):
        out = tmp_path / f"p_{name}.csv"
        res = run(["predict", model_path, path, "-o", str(out), "--chunksize", "7"])
        assert res.exit_code == 0, res.output
        outs[name] = out.read_bytes()
    assert outs["cr"] == outs["lf"]
    assert "carriage return" in run(["predict", model_path, str(cr), "-o", str(tmp_path / "x.csv")]).stderr
    res = run(["evaluate", model_path, str(cr), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["n"] == len(df)


def test_a_failed_write_closes_the_prediction_frames(tmp_path):
    """The frames are read from the input as they are written; a write that fails (here: no such
    directory) closes them, and so the input file, instead of leaving that to the garbage collector."""
    import pandas as pd

    from mlpcli.predict.output import write_predictions

    class Frames:  # as a PredictionStream: iterated for the frames, holding the input file open
        closed = False

        def __iter__(self):
            yield pd.DataFrame({"id": ["a"], "pred": ["x"]})

        def close(self):
            self.closed = True

    stream = Frames()
    with pytest.raises(Exception):
        write_predictions(stream, str(tmp_path / "missing" / "out.csv"))
    assert stream.closed
    ok = Frames()
    assert write_predictions(ok, str(tmp_path / "out.csv")) == 1 and not ok.closed  # the caller closes it


def test_csv_output_needs_no_quoting_header_option(tmp_path, monkeypatch):
    """`predict -o x.csv` writes its header itself, as pandas would (quoted only where a name needs it), so it works
    with a pyarrow whose csv.WriteOptions lacks quoting_header (before pyarrow 22; pyproject allows 14)."""
    import pyarrow.csv as pacsv

    from mlpcli.predict import output as output_mod

    real = pacsv.WriteOptions

    def old_write_options(**kwargs):
        if "quoting_header" in kwargs:
            raise TypeError("__init__() got an unexpected keyword argument 'quoting_header'")
        return real(**kwargs)

    monkeypatch.setattr(pacsv, "WriteOptions", old_write_options)
    frames = [pd.DataFrame({"sample_id": ["s1", "s2"], "label": ["a", "b"], "p,a": [0.25, 0.5]}),
              pd.DataFrame({"sample_id": ["s3"], "label": ["b"], "p,a": [0.75]})]
    for sep in (",", "\t"):
        buf = io.BytesIO()
        assert output_mod._write_text(iter(frames), buf, sep, None) == 3
        expected = pd.concat(frames).to_csv(sep=sep, index=False, lineterminator="\n")
        assert buf.getvalue().decode() == expected
