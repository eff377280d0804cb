"""mlpcli.history: the history table (rows -> CSV -> rows) and the curves read back from a model
file or a history table for diagnose."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlpcli import history, model_io, pipeline
from mlpcli.config import TrainOptions
from mlpcli.errors import DataError
from tables import make_table


def _rows(n: int = 6, **extra) -> list[dict]:
    """Rows shaped like the fit loop's: ints, floats at 6 significant digits or fewer."""
    return [{**extra, "epoch": e, "train_loss": round(1.0 / e, 5), "val_loss": round(1.2 / e + 0.01 * e, 5),
             "train_loss_eval": 0.9 / e, "lr": 0.001, "best_epoch": min(e, 4), "seconds": 0.0125}
            for e in range(1, n + 1)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short real run: its model file, and its history written with history_csv."""
    d = tmp_path_factory.mktemp("history")
    path = d / "data.csv"
    make_table(n_patients=60, per_patient=2, n_features=8).to_csv(path, index=False)
    outcome = pipeline.train(str(path), TrainOptions(hidden=[8], epochs=12, patience=100))
    model, table = d / "m.mlp", d / "h.csv"
    model_io.save(outcome.model, model)
    table.write_text(history.history_csv(outcome.fit.history))
    return {"model": str(model), "table": str(table), "fit": outcome.fit}


# --- the table format ----------------------------------------------------------------------------


def test_history_csv_header_and_number_format():
    text = history.history_csv([{"epoch": 1, "train_loss": 0.123456789, "val_loss": 1e-7, "best_epoch": 1}])
    assert text == "epoch,train_loss,val_loss,best_epoch\n1,0.123457,1e-07,1\n"


def test_empty_history_still_names_the_columns():
    assert history.history_csv([]) == "epoch,train_loss,val_loss\n"


def test_round_trip_rows_csv_rows(tmp_path):
    rows = _rows()
    path = tmp_path / "h.csv"
    path.write_text(history.history_csv(rows))
    back = history.read_history(str(path))
    assert back == rows
    assert all(type(r["epoch"]) is int and type(r["best_epoch"]) is int for r in back)
    assert all(type(r["lr"]) is float for r in back)


def test_round_trip_of_a_real_run_to_six_digits(trained):
    back = history.read_history(trained["table"])
    assert [list(r) for r in back] == [list(r) for r in trained["fit"].history]
    for got, want in zip(back, trained["fit"].history):
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=1e-5, abs=1e-12), k


def test_read_history_keeps_text_and_empty_cells(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("epoch,train_loss,val_loss,note\n1,1.0,,start\n2,0.5,0.7,\n")
    back = history.read_history(str(path))
    assert math.isnan(back[0]["val_loss"]) and back[1]["val_loss"] == 0.7
    assert [r["note"] for r in back] == ["start", None]


# --- reading the curves ----------------------------------------------------------------------------


def test_read_curves_from_a_model(trained):
    c = history.read_curves(trained["model"])
    fit = trained["fit"]
    assert c.kind == "model" and c.curves == "loss" and c.name.startswith("loss (")
    assert c.train == [r["train_loss"] for r in fit.history] and c.val == [r["val_loss"] for r in fit.history]
    assert c.train_eval is not None and len(c.train_eval) == len(c.train)
    assert c.baseline == pytest.approx(fit.baseline["val_loss"]) and c.checkpoint_epoch == fit.best_epoch
    assert c.higher_is_better is False


def test_read_curves_from_a_table_matches_the_model(trained):
    c, m = history.read_curves(trained["table"]), history.read_curves(trained["model"])
    assert c.kind == "history" and c.baseline is None
    np.testing.assert_allclose(c.train, m.train, rtol=1e-5)
    np.testing.assert_allclose(c.val, m.val, rtol=1e-5)
    assert c.checkpoint_epoch == m.checkpoint_epoch


def test_metric_curves_of_a_model_and_of_a_table(trained):
    m = history.read_curves(trained["model"], "metric")
    assert m.higher_is_better is True and m.name == "balanced accuracy" and m.baseline == pytest.approx(1 / 3)
    t = history.read_curves(trained["table"], "metric", higher_is_better=False)
    assert t.higher_is_better is False and not t.notes


def test_baseline_overrides_the_models(trained):
    c = history.read_curves(trained["model"], baseline=2.5)
    assert c.baseline == 2.5 and c.baseline_note == "given with --baseline"


def test_diagnose_curves_labels_and_names_the_source_in_errors(tmp_path, trained):
    assert history.diagnose_curves(history.read_curves(trained["model"])).label
    path = tmp_path / "short.csv"
    pd.DataFrame({"train_loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"short\.csv: need at least 3 epochs"):
        history.diagnose_curves(history.read_curves(str(path)))


def test_curves_from_history_rows():
    c = history.curves_from_history(_rows())
    assert c.train == [r["train_loss"] for r in _rows()] and c.checkpoint_epoch == 4
    assert c.train_eval == [r["train_loss_eval"] for r in _rows()]


@pytest.mark.parametrize("content, message", [
    ("epoch,loss\n1,0.5\n", "no 'train_loss' or 'val_loss' column"),
    ("train_loss,val_loss\n1.0,1.1\noops,0.9\n", "non-numeric value 'oops' (data row 2)"),
], ids=["no-columns", "text-in-curve"])
def test_read_curves_table_errors(tmp_path, content, message):
    path = tmp_path / "h.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        history.read_curves(str(path))


def test_read_curves_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        history.read_curves(str(tmp_path / "nope.mlp"))
    with pytest.raises(DataError, match="is a directory"):
        history.read_curves(str(tmp_path))
