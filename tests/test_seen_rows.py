"""The training rows a model recognises in predict and evaluate (a filled feature makes the count unknown,
validation rows said as such, too few new samples for a metric of their own), also when a parquet table is read
in column blocks."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlpcli.data.streamed_frames as streamed_frames
from mlpcli import model_io
from mlpcli.predict import predict_stream
from cli_helpers import run
from tables import make_table


FAST = ["--epochs", "3", "--hidden", "8", "--seed", "1", "-q"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("seen18")
    table = make_table("binary", n_patients=20, per_patient=2, n_features=12, seed=3)
    train = d / "train.csv"
    table.to_csv(train, index=False)
    out = {"dir": d, "train": str(train), "table": table}
    for name, folds in (("single", "1"), ("ensemble", "2")):
        path = d / f"{name}.mlp"
        res = run(["train", str(train), "--folds", folds, *FAST, "-o", str(path)])
        assert res.exit_code == 0, res.output
        out[name] = str(path)
    return out


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_filled_feature_makes_the_count_unknown_not_zero(models, command):
    """The training table lacking one gene, filled with --fill-missing mean, said "0 training samples" (and
    evaluate gave no warning): a filled value never matches a fingerprint, so the count is unknown."""
    d = models["dir"]
    path = d / "lacking.csv"
    models["table"].drop(columns=["f05"]).to_csv(path, index=False)
    args = [command, models["ensemble"], str(path), "--fill-missing", "mean", "--json"]
    res = run(args + (["-o", str(d / "p.csv")] if command == "predict" else []))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["seen_in_training"] is None
    assert any(n.startswith("samples the model was trained on cannot be recognised in this table: it knows them "
                            "by all 12 feature values, and 1 feature is filled (--fill-missing)") for n in doc["notes"])
    assert not any("rows the model was trained" in w for w in doc["warnings"])
    if command == "evaluate":
        assert doc["unseen_metrics"] is None
    # the whole table: recognised as before
    res = run([command, models["ensemble"], models["train"], "--json"]
              + (["-o", str(d / "p.csv")] if command == "predict" else []))
    assert json.loads(res.stdout)["seen_in_training"] == 40


def test_a_single_network_says_its_rows_were_trained_or_validated_on(models, tmp_path):
    """A --folds 1 / --val-data network is early-stopped on rows it never trained on: predict called every
    fingerprinted row "a row the model was trained on" and its prediction "the model's fit"."""
    val = make_table("binary", n_patients=6, per_patient=2, n_features=12, seed=9)
    val["sample_id"] = [f"V{i}" for i in range(len(val))]
    val["patient_id"] = [f"Q{i // 2}" for i in range(len(val))]
    val_path = tmp_path / "val.csv"
    val.to_csv(val_path, index=False)
    model = tmp_path / "v.mlp"
    res = run(["train", models["train"], "--val-data", str(val_path), *FAST, "-o", str(model)])
    assert res.exit_code == 0, res.output
    res = run(["predict", str(model), str(val_path), "-o", str(tmp_path / "p.csv"), "--json"])
    doc = json.loads(res.stdout)
    assert doc["seen_in_training"] == 12
    note = next(n for n in doc["notes"] if "validated on" in n)
    assert note.startswith("all 12 samples are rows the model was trained or validated on (identical feature "
                           "values: 'V0', 'V1', 'V2', …): their predictions are not predictions for new samples")
    assert "fit to its training data" not in note
    for name, said in (("single", "trained or validated on"), ("ensemble", "trained on (")):
        res = run(["predict", models[name], models["train"], "-o", str(tmp_path / "q.csv"), "--json"])
        notes = json.loads(res.stdout)["notes"]
        assert any(n.startswith(f"all 40 samples are rows the model was {said}") for n in notes), notes


@pytest.mark.parametrize("row_group_size", [None, 7])
def test_parquet_read_in_column_blocks_predicts_as_the_csv(models, tmp_path, monkeypatch, row_group_size):
    """One large row group (read a block of columns at a time) or several, columns in another order: the
    same predictions as the CSV, bit for bit, and every training row recognised."""
    model = model_io.load(models["ensemble"])
    table = models["table"]
    expected = pd.concat(predict_stream(model, models["train"]))
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(table[list(table.columns[::-1])], preserve_index=False), path,
                   row_group_size=row_group_size)
    monkeypatch.setattr(streamed_frames, "COLUMN_BLOCK_BYTES", 1)  # one column a block
    stream = predict_stream(model, str(path), chunksize=3)
    got = pd.concat(stream)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    assert stream.summary()["seen_in_training"] == len(table)
    changed = table.copy()
    changed.loc[[4, 30], "f02"] += 0.5
    pq.write_table(pa.Table.from_pandas(changed, preserve_index=False), path)
    stream = predict_stream(model, str(path), chunksize=3)
    assert len(pd.concat(stream)) == len(table) and stream.summary()["seen_in_training"] == len(table) - 2
    assert np.isfinite(got.filter(like="prob_").to_numpy()).all()


def test_few_new_samples_get_no_metric_of_their_own_and_info_says_how_rows_were_seen(tmp_path):
    """Three new samples beside the training table: a balanced accuracy of three is noise, so the warning says they
    are too few (the figure stays in `unseen_metrics`); one network's rows are 'trained or validated on' in info
    too, and evaluating on its whole table says the quoted validation figure may come from these rows."""
    import json

    import pandas as pd

    from cli_helpers import run
    from tables import make_table

    df = make_table("binary", n_patients=20)
    path, model = tmp_path / "t.csv", tmp_path / "m.mlp"
    df.to_csv(path, index=False)
    assert run(["train", str(path), "--folds", "1", "--epochs", "3", "-q", "-o", str(model)]).exit_code == 0
    new = df.head(3).copy()
    new["sample_id"] = ["N1", "N2", "N3"]
    new[[c for c in df.columns if c.startswith("f")]] += 0.5
    plus = tmp_path / "plus.csv"
    pd.concat([df, new]).to_csv(plus, index=False)
    doc = json.loads(run(["evaluate", str(model), str(plus), "--json"]).stdout)
    warning = next(w for w in doc["warnings"] if "trained or validated on" in w)
    assert "the 3 other samples are too few to measure it on alone" in warning
    assert doc["unseen_metrics"]["n"] == 3
    whole = json.loads(run(["evaluate", str(model), str(path), "--json"]).stdout)
    assert any("possibly on these same rows" in w for w in whole["warnings"])
    info = run(["info", str(model)]).output
    assert f"recognising the {len(df)} rows it was trained or validated on" in " ".join(info.split())


def test_the_held_out_figure_in_the_seen_rows_warning_keeps_its_size(tmp_path):
    """A regression target in tiny (or huge) units: evaluating the training table said "its out-of-fold RMSE at
    training was 0.000" (and 36 digits for a target of 1e30), where the metrics table reads 1.6e-25."""
    table = make_table("regression", n_patients=20, per_patient=2, n_features=12, seed=3)
    table["label"] = table["label"] * 1e-25
    path = tmp_path / "tiny.csv"
    table.to_csv(path, index=False)
    res = run(["train", str(path), "--folds", "2", *FAST, "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    res = run(["evaluate", str(tmp_path / "m.mlp"), str(path)])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "RMSE at training was " in text, text
    figure = text.split("RMSE at training was ")[1].split()[0]
    assert "e-2" in figure and float(figure) > 0, figure
