"""mlpcli.history: the history table (rows -> CSV -> rows) and the curves read back from a model
file or a history table for diagnose."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mlpcli import history, model_io, pipeline
from mlpcli.config import TrainOptions
from mlpcli.errors import DataError
from mlpcli.history import read_curves
from cli_helpers import run
from tables import make_table

try:  # tests/ is on sys.path under pytest's default (prepend) import mode
    import curves
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests import curves


def _rows(n: int = 6, **extra) -> list[dict]:
    """Rows shaped like the fit loop's: ints, floats at 6 significant digits or fewer."""
    return [{**extra, "epoch": e, "train_loss": round(1.0 / e, 5), "val_loss": round(1.2 / e + 0.01 * e, 5),
             "train_loss_eval": round(0.9 / e, 5), "lr": 0.001, "best_epoch": min(e, 4), "seconds": 0.0125}
            for e in range(1, n + 1)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short real run of one network (--folds 1): its model file, and its history written with history_csv."""
    d = tmp_path_factory.mktemp("history")
    path = d / "data.csv"
    make_table(n_patients=60, per_patient=2, n_features=8).to_csv(path, index=False)
    outcome = pipeline.train(str(path), TrainOptions(hidden=[8], epochs=12, patience=100, folds=1))
    model, table = d / "m.mlp", d / "h.csv"
    model_io.save(outcome.model, model)
    table.write_text(history.history_csv(outcome.fitted.history))
    return {"model": str(model), "table": str(table), "fit": outcome.fitted.runs[0].result,
            "model_history": outcome.model.history}


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


def test_round_trip_with_a_member_column(tmp_path):
    rows = [r for m in (1, 2, 3) for r in _rows(4 + m, member=m)]
    text = history.history_csv(rows)
    assert text.startswith("member,epoch,train_loss,")
    path = tmp_path / "h.csv"
    path.write_text(text)
    back = history.read_history(str(path))
    assert back == rows and all(type(r["member"]) is int for r in back)


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


# --- ensembles: members, the mean curve, the spread --------------------------------------------------


def test_split_members_groups_rows_in_member_order():
    rows = [{"member": m, "epoch": e, "train_loss": 1.0, "val_loss": 1.0} for e in (1, 2) for m in (2, 1)]
    groups = history.split_members(rows)
    assert [m for m, _ in groups] == [1, 2]
    assert [[r["epoch"] for r in g] for _, g in groups] == [[1, 2], [1, 2]]
    assert history.split_members(_rows()) is None


@pytest.mark.parametrize("rows, message", [
    ([{"member": 1, "train_loss": 1.0}, {"train_loss": 1.0}], "row 2 has no member"),
    ([{"member": 0, "train_loss": 1.0}], "member 0 in row 1"),
    ([{"member": 1.5, "train_loss": 1.0}], "member 1.5 in row 1"),
    ([{"member": float("nan"), "train_loss": 1.0}], "member nan in row 1"),
], ids=["mixed", "zero", "fraction", "missing"])
def test_split_members_errors(rows, message):
    with pytest.raises(DataError, match=message):
        history.split_members(rows)


@pytest.mark.parametrize("lengths, expected", [([5], 5), ([10, 50], 10), ([10, 20, 30, 40], 20),
                                               ([50, 10, 40, 20, 30], 30), ([], 0)])
def test_majority_length_is_where_more_than_half_still_run(lengths, expected):
    assert history.majority_length(lengths) == expected


def test_mean_curve_of_equal_members_is_the_plain_mean():
    a, b = [1.0, 0.8, 0.6], [0.6, 0.5, 0.4]
    assert history.mean_curve([a, b]) == pytest.approx([0.8, 0.65, 0.5])
    # the spread ignores the members' levels (their folds): it measures how differently they move
    centred = [np.subtract(a, np.mean(a)), np.subtract(b, np.mean(b))]
    assert history.spread_curve([a, b]) == pytest.approx(np.std(centred, axis=0, ddof=1))


def test_mean_curve_of_members_of_different_lengths_does_not_jump_when_a_member_stops():
    """Members share one shape at different levels (their folds) and stop at 10, 20, 30, 40, 50
    epochs: the mean keeps the shape and the average level, and ends at epoch 30, the last one
    at which three of the five still run."""
    shape = np.linspace(1.0, 0.5, 50)
    levels = [0.4, 0.0, 0.3, 0.1, 0.2]
    members = [list(shape[:n] + lv) for n, lv in zip((10, 20, 30, 40, 50), levels)]
    mean = history.mean_curve(members)
    assert len(mean) == 30
    np.testing.assert_allclose(mean, shape[:30] + np.mean(levels))
    spread = history.spread_curve(members)  # one shape at five levels: the members agree
    assert len(spread) == 30 and np.allclose(spread, 0.0, atol=1e-12)


def test_mean_curve_skips_missing_values():
    """A member's missing epoch is bridged so that its change across the gap still counts;
    epochs no member measured stay missing."""
    mean = history.mean_curve([[1.0, np.nan, 0.6, 0.5], [0.8, 0.7, 0.6, 0.5]])
    assert mean == pytest.approx([0.9, 0.75, 0.6, 0.5])
    sparse = history.mean_curve([[1.0, np.nan, 0.6, np.nan, 0.4], [0.8, np.nan, 0.6, np.nan, 0.2]])
    assert np.isnan(sparse[1]) and np.isnan(sparse[3])
    assert [sparse[0], sparse[2], sparse[4]] == pytest.approx([0.9, 0.6, 0.3])
    assert np.isnan(history.spread_curve([[1.0, np.nan], [0.8, 0.7]])[1])  # one value: no s.d.


def test_curves_of_an_ensemble_history():
    rows = curves.ensemble_history("overfit", n_members=5, seed=0)
    c = history.curves_from_history(rows)
    lengths = [len(m.train) for m in c.members]
    assert [m.member for m in c.members] == [1, 2, 3, 4, 5]
    assert len(c.train) == len(c.val) == len(c.val_spread) == sorted(lengths)[2]
    assert c.checkpoint_epoch is None and c.train_eval is None
    for m in c.members:  # the kept epoch is the last row's best_epoch
        assert m.best_epoch == [r["best_epoch"] for r in rows if r["member"] == m.member][-1]
    d = history.diagnose_curves(c)
    assert d.label == "overfit" and d.evidence["member_spread"] < 0.1


def test_member_best_epoch_without_a_best_epoch_column_is_the_lowest_validation_loss():
    rows = [{"member": 1, "epoch": e, "train_loss": 1.0 / e, "val_loss": v}
            for e, v in enumerate([0.9, 0.5, 0.7, 0.6], 1)]
    assert history.curves_from_history(rows).members[0].best_epoch == 2


def test_spread_evidence_of_members_that_disagree():
    d = history.diagnose_curves(history.curves_from_history(curves.ensemble_history("disagree", seed=0)))
    assert d.evidence["member_spread"] > 0.2
    assert d.label == "unrepresentative_validation_noisy"


def test_read_curves_of_an_ensemble_table_and_model(tmp_path, trained):
    rows = curves.ensemble_history("overfit", n_members=3, seed=1)
    table = tmp_path / "ensemble.csv"
    table.write_text(history.history_csv(rows))
    c = history.read_curves(str(table))
    assert len(c.members) == 3 and c.val_spread is not None

    model = model_io.load(trained["model"])
    model.history = rows
    model.fit["members"] = [{"member": m, "best_epoch": 10 + m, "epochs_run": 50, "stopped_early": True,
                             "best_val_loss": 0.3} for m in (1, 2, 3)]
    # one network with three members' curves: a --refit model's (else the file's member rows must be its networks)
    model.fit["refit"] = {"epochs_run": 12}
    path = tmp_path / "ensemble.mlp"
    model_io.save(model, path)
    m = history.read_curves(str(path))
    assert m.kind == "model" and m.checkpoint_epoch is None
    assert [x.best_epoch for x in m.members] == [11, 12, 13]
    np.testing.assert_allclose(m.val, c.val, rtol=1e-5)


def test_single_network_curves_have_no_members(trained):
    c = history.read_curves(trained["model"])
    assert c.members == [] and c.val_spread is None


def test_a_table_in_another_row_order_gives_the_same_curves(tmp_path):
    """Curves are read by epoch, not by row: a table sorted by another column (or shuffled) reads the same,
    members included."""
    rows = [dict(r, member=m) for m in (1, 2) for r in _rows(8)]
    straight, shuffled = tmp_path / "a.csv", tmp_path / "b.csv"
    straight.write_text(history.history_csv(rows))
    order = np.random.default_rng(0).permutation(len(rows))
    shuffled.write_text(history.history_csv([rows[i] for i in order]))
    a, b = history.read_curves(str(straight)), history.read_curves(str(shuffled))
    assert a.val == b.val and a.train == b.train
    assert [m.val for m in a.members] == [m.val for m in b.members]


@pytest.mark.parametrize("epochs, needle", [
    ([1, 2, 2, 3], "epoch 2 appears twice"),
    ([5, 10, 15], "epoch 5 comes where epoch 1 should"),
    ([101, 102], "epoch 101 comes where epoch 1 should"),
    ([0, 0, 1, 2], "epoch 0 appears twice"),  # numbered from 0 (Keras), with a repeat
    ([0, 2, 3], "epoch 2 comes where epoch 1 should"),  # and with a gap
])
def test_a_table_without_every_epoch_from_one_is_an_error_naming_it(tmp_path, epochs, needle):
    rows = [dict(r, epoch=e) for r, e in zip(_rows(len(epochs)), epochs)]
    path = tmp_path / "h.csv"
    path.write_text(history.history_csv(rows))
    with pytest.raises(DataError, match=needle):
        history.read_curves(str(path))


def test_a_table_with_epochs_from_zero_is_read_and_says_how_it_numbers_them(tmp_path):
    """Keras writes epochs 0, 1, 2, ...; that was "epoch 0 appears twice". It reads like the same table from 1,
    with a note on the numbering."""
    rows = _rows(8)
    zero, one = tmp_path / "keras.csv", tmp_path / "mlpcli.csv"
    zero.write_text(history.history_csv([dict(r, epoch=r["epoch"] - 1) for r in rows]))
    one.write_text(history.history_csv(rows))
    a, b = history.read_curves(str(zero)), history.read_curves(str(one))
    assert a.train == b.train and a.val == b.val
    assert any("numbered from 0" in n for n in a.notes) and not b.notes


def test_a_baseline_given_by_the_caller_is_not_blamed_on_the_file(trained):
    """diagnose h.csv --baseline -5 said "h.csv: baseline must be ..."; the error is the caller's value (the CLI
    names --baseline), while a bad baseline inside a file still names the file."""
    from mlpcli.diagnosis import BaselineError

    with pytest.raises(BaselineError, match=r"^baseline must be a finite loss above 0, got -5$"):
        history.diagnose_curves(history.read_curves(trained["table"], baseline=-5))
    c = history.read_curves(trained["table"])
    c.baseline, c.baseline_note = -5.0, "from the file"
    with pytest.raises(DataError, match=r"h\.csv: baseline must be"):
        history.diagnose_curves(c)


def test_a_member_that_blew_up_makes_the_mean_curve_blow_up():
    """An infinite member value was skipped like a missing one, so the ensemble's mean curve hid the divergence."""
    a, b = [1.0, 0.8, 0.7, 0.65, 0.6], [1.1, 0.9, 0.8, math.inf, math.inf]
    mean = history.mean_curve([a, b])
    assert mean[:3] == pytest.approx([1.05, 0.85, 0.75]) and mean[3:] == [math.inf, math.inf]
    rows = [{"member": m, "epoch": e, "train_loss": v, "val_loss": v} for m, c in ((1, a * 2), (2, b * 2))
            for e, v in enumerate(c, 1)]
    d = history.diagnose_curves(history.curves_from_history(rows))
    assert d.evidence["first_infinite_epoch"] == 4 and d.summary.startswith("Unstable training")


def test_a_history_header_with_spaces_after_the_commas_is_read(tmp_path):
    """`epoch, train_loss, val_loss` (a space after each comma, as people type it) was "has no 'train_loss'
    column (columns present: epoch, train_loss, ...)": the listed name hid its leading space."""
    from mlpcli.history import read_curves

    path = tmp_path / "h.csv"
    path.write_text("epoch, train_loss, val_loss\n1, 1.0, 1.1\n2, 0.8, 0.9\n3, 0.7, 0.85\n")
    c = read_curves(str(path))
    assert list(c.train) == [1.0, 0.8, 0.7] and list(c.val) == [1.1, 0.9, 0.85]


def test_the_members_spread_of_a_diverged_member_raises_no_numpy_warning():
    """A member whose loss went infinite made spread_curve warn "invalid value encountered in subtract" to a
    library user (the command line hides RuntimeWarnings)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spread = history.spread_curve([[1.0, 0.8, 0.7], [1.1, float("inf"), float("inf")], [0.9, 0.85, 0.75]])
    assert len(spread) == 3 and all(np.isfinite(spread))


def test_keras_csv_logger_table_is_read(tmp_path):
    """Keras's CSVLogger writes epoch,loss,val_loss (from epoch 0): its 'loss' is the training loss. That was
    "has no 'train_loss' column" although the README says Keras's epoch numbering is read."""
    t = np.arange(40)
    train = 0.3 + 0.4 * np.exp(-t / 8)
    val = train + 0.02
    keras = tmp_path / "keras_log.csv"
    keras.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n"
                     + "".join(f"{i},0.9,{a},0.9,{b}\n" for i, (a, b) in enumerate(zip(train, val))))
    ours = tmp_path / "history.csv"
    ours.write_text("epoch,train_loss,val_loss\n" + "".join(f"{i + 1},{a},{b}\n" for i, (a, b) in
                                                            enumerate(zip(train, val))))
    res = run(["diagnose", str(keras), "--json"])
    assert res.exit_code == 0, res.output
    doc, same = json.loads(res.stdout), json.loads(run(["diagnose", str(ours), "--json"]).stdout)
    assert doc["label"] == same["label"] and doc["evidence"] == same["evidence"]
    assert any("'loss' as the training loss" in n for n in doc["notes"])
    # a table with neither is still an error naming what it has
    bad = tmp_path / "bad.csv"
    bad.write_text("epoch,loss\n0,0.5\n1,0.4\n2,0.3\n")
    res = run(["diagnose", str(bad)])
    assert res.exit_code == 1 and "has no 'train_loss' or 'val_loss' column" in res.output


def test_an_lbfgs_history_file_is_read_in_iterations(histories):
    """The model file said iterations; its --history file, diagnosed on its own, said epochs."""
    c = read_curves(histories / "lbfgs.csv")
    assert c.step == "iteration" and any("per L-BFGS iteration" in n for n in c.notes)
    res = run(["diagnose", str(histories / "lbfgs.csv")])
    assert res.exit_code == 0, res.output
    assert f"{len(c.train)} iterations" in res.output


def test_a_minibatch_history_file_and_a_hand_made_one_stay_epochs(histories, tmp_path):
    assert read_curves(histories / "adam.csv").step == "epoch"
    # a table of one's own, with no lr column and none of train's bookkeeping, is not taken for L-BFGS
    pd.read_csv(histories / "adam.csv")[["epoch", "train_loss", "val_loss"]].to_csv(tmp_path / "own.csv", index=False)
    c = read_curves(tmp_path / "own.csv")
    assert c.step == "epoch" and not any("L-BFGS" in n for n in c.notes)


def test_a_hand_edited_history_names_the_edited_row_and_a_negative_loss(tmp_path):
    e = np.arange(1, 13)
    rows = [{"member": m, "epoch": k, "train_loss": 1 / k, "val_loss": 1 / k + 0.1} for m in (1, 2) for k in e]
    frame = pd.DataFrame(rows)
    frame.loc[4, "member"] = 99  # member 1's epoch 5, moved to a member of its own
    frame.to_csv(tmp_path / "moved.csv", index=False)
    res = run(["diagnose", str(tmp_path / "moved.csv")])
    assert res.exit_code == 1
    assert "(data row 5 has epoch 5 under member 99, a member of one row)" in res.output, res.output
    single = pd.DataFrame({"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e + 0.1})
    single.loc[4, "val_loss"] = -1
    single.to_csv(tmp_path / "negative.csv", index=False)
    res = run(["diagnose", str(tmp_path / "negative.csv")])
    assert res.exit_code == 0 and "val_loss holds 1 negative value (-1 at epoch 5)" in res.output


def test_lbfgs_curves_get_advice_lbfgs_takes(histories):
    """diagnose of an L-BFGS run advised --lr and --dropout (both refused with --optimizer lbfgs) and said its last
    iterate was kept as "its lowest validation loss"."""
    import json

    for source in ("lbfgs.csv", "lbfgs.mlp"):
        res = run(["diagnose", str(histories / source), "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.output[res.output.index("{"):])
        advice = " ".join(doc["advice"])
        for refused in ("--lr ", "--lr,", "--dropout", "--augment-noise", "--patience"):
            assert refused not in advice, (source, refused, advice)
        assert "lowest validation loss" not in advice and "Stop early" not in advice
