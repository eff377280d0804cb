"""`mlpcli gradcheck`, third review: a table with only some of a multi-label model's target columns, BatchNorm
on too few rows, the suite's per-group random streams, float32 networks, loss kinks on real rows, and the exit
code of a failing check."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.checks import check_model
from mlpcli.engine import MLP, layers, losses
from mlpcli.engine import gradcheck as gc
from mlpcli.pipeline import TrainOptions, train
from mlpcli.predict import prepare
from cli_helpers import assert_clean_error, run
from tables import make_table


def _train(tmp, name: str, task: str, **options) -> tuple[str, str]:
    """(model path, table path): a tiny network trained on a small table of `task`."""
    data = tmp / f"{name}.csv"
    make_table(task=task, seed=1, n_features=6, n_patients=10).to_csv(data, index=False)
    if task == "multilabel":
        options.setdefault("target", ["lab0", "lab1", "lab2"])
    outcome = train(str(data), TrainOptions(**{"hidden": [6], "epochs": 2, "seed": 0, "folds": 1, **options}))
    model_io.save(outcome.model, tmp / f"{name}.mlp")
    return str(tmp / f"{name}.mlp"), str(data)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gc3")
    return {
        "multiclass": _train(tmp, "multiclass", "multiclass"),  # dropout 0.3, the default
        "multilabel": _train(tmp, "multilabel", "multilabel"),
        "batchnorm": _train(tmp, "batchnorm", "multiclass", batchnorm=True, dropout=0.0),
        "batchnorm+dropout": _train(tmp, "bn_dropout", "multiclass", batchnorm=True),
    }


def gradcheck(model, data, *extra):
    return run(["gradcheck", "--model", model, "--data", data, "--rows", "4", "--entries", "3", *extra])


def checked(res) -> dict:
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


# ── some of a multi-label model's target columns ────────────────────────────────────────────────────────────


def test_a_table_with_some_of_the_label_columns_is_refused_naming_the_missing_ones(models, tmp_path):
    """The table reader reads a multi-output target only whole: with 'lab0' and 'lab1' but not 'lab2' the check
    fell back to the model's own predictions, with the note "no target column", and passed."""
    model, data = models["multilabel"]
    partial = tmp_path / "partial.csv"
    pd.read_csv(data).drop(columns=["lab2"]).to_csv(partial, index=False)
    res = gradcheck(model, str(partial))
    assert_clean_error(res, "partial.csv", "2 of the model's 3 target columns", "lacks 'lab2'", "--drop")
    assert "own predictions" in res.output.splitlines()[-1]  # the other way out
    # --drop the ones it has: the check uses the model's own predictions, and says why
    doc = checked(gradcheck(model, str(partial), "--drop", "lab0,lab1", "--json"))
    assert doc["passed"] and all("target columns dropped: checked against the model's own predictions" in r["note"]
                                 for r in doc["results"])
    # every label column, or none, as before
    assert checked(gradcheck(model, data, "--json"))["passed"]
    none = tmp_path / "none.csv"
    pd.read_csv(data).drop(columns=["lab0", "lab1", "lab2"]).to_csv(none, index=False)
    assert "no target column" in checked(gradcheck(model, str(none), "--json"))["results"][0]["note"]


def test_the_missing_label_columns_are_named_among_many(tmp_path):
    """Every absent label column is named, however many the model has (``Prepared.targets``: not read back from
    the reader's note, which quotes the first 5 columns it found)."""
    rng = np.random.default_rng(0)
    labels = [f"g{i}" for i in range(8)]
    table = pd.DataFrame(rng.normal(size=(40, 5)), columns=[f"f{j}" for j in range(5)])
    for j, name in enumerate(labels):
        table[name] = (table[f"f{j % 5}"] + rng.normal(size=40) > 0).astype(int)
    table.to_csv(tmp_path / "many.csv", index=False)
    outcome = train(str(tmp_path / "many.csv"), TrainOptions(target=labels, hidden=[4], epochs=2, seed=0, folds=1))
    model = str(tmp_path / "many.mlp")
    model_io.save(outcome.model, model)
    for absent, named in ((["g0"], "lacks 'g0';"), (["g3"], "lacks 'g3';"), (["g6", "g7"], "lacks 'g6', 'g7';"),
                          (["g1", "g7"], "lacks 'g1', 'g7';")):
        table.drop(columns=absent).to_csv(tmp_path / "some.csv", index=False)
        assert_clean_error(gradcheck(model, str(tmp_path / "some.csv")), f"has {8 - len(absent)} of the model's 8", named)


def test_a_dropped_target_column_does_not_give_the_labels(models):
    """--drop label was ignored for the target: the table reader took the labels from the dropped column."""
    model, data = models["multiclass"]
    doc = checked(gradcheck(model, data, "--drop", "label", "--json"))
    assert "target column dropped: checked against the model's own predictions" in doc["results"][0]["note"]
    assert_clean_error(gradcheck(model, data, "--drop", "label", "--target", "label"), "--target", "--drop",
                       "'label'", code=2)


# ── BatchNorm on too few rows ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("rows", ["1", "2"])
def test_batchnorm_in_training_mode_needs_three_rows(models, rows):
    """With one row BatchNorm's output is beta whatever its input (two: beta +- gamma), so every gradient before
    it is zero (or nearly) and the training-mode check "passed" vacuously."""
    model, data = models["batchnorm"]
    res = run(["gradcheck", "--model", model, "--data", data, "--rows", rows, "--entries", "3"])
    assert_clean_error(res, f"--rows {rows}", "BatchNorm", "at least 3 rows", "--rows 3", code=2)
    doc = checked(run(["gradcheck", "--model", model, "--data", data, "--rows", "3", "--entries", "3", "--json"]))
    assert [r["component"] for r in doc["results"]] == ["model (inference mode)",
                                                         "model (training mode, batch statistics)"]
    assert doc["passed"]


def test_a_table_with_fewer_rows_checks_batchnorm_in_inference_mode_and_says_why(models, tmp_path):
    model, data = models["batchnorm+dropout"]
    pd.read_csv(data).head(2).to_csv(tmp_path / "two.csv", index=False)
    doc = checked(run(["gradcheck", "--model", model, "--data", str(tmp_path / "two.csv"), "--json"]))
    assert [r["component"] for r in doc["results"]] == ["model (inference mode)"]
    assert "training mode not checked: BatchNorm needs 3 rows and 2 rows could be checked" in doc["results"][0]["note"]
    # three rows: the training-mode check, named after what it holds fixed
    doc = checked(run(["gradcheck", "--model", model, "--data", data, "--rows", "3", "--json"]))
    assert doc["results"][1]["component"] == "model (training mode, batch statistics, fixed dropout mask)"


@pytest.mark.parametrize("n", [1, 2])
def test_check_network_refuses_batchnorm_in_training_mode_on_too_few_rows(n):
    net = MLP(3, [4], 2, batchnorm=True, seed=0)
    X = np.random.default_rng(0).normal(size=(n, 3))
    y = np.arange(n) % 2
    with pytest.raises(ValueError, match="at least 3 rows"):
        gc.check_network(net, losses.get("ce"), X, y, training=True)
    assert gc.check_network(net, losses.get("ce"), X, y, training=False).passed  # running statistics: any rows


def test_one_row_is_singular(models):
    model, data = models["multiclass"]
    doc = checked(run(["gradcheck", "--model", model, "--data", data, "--rows", "1", "--entries", "1", "--json"]))
    assert doc["results"][0]["note"].startswith("1 row, up to 1 entry per array, float64 copy"), doc["results"][0]


# ── the synthetic suite's random streams ──────────────────────────────────────────────────────────────────


def test_each_group_has_its_own_reproducible_stream(monkeypatch):
    """The streams were seeded by the length of the group's name: 'layer' and 'input', 'penalty' and 'network'
    drew the same numbers."""
    first: dict[str, float] = {}

    def recorder(group):
        def make(rng, eps, tol, atol):
            first[group] = rng.random()
            return iter(())
        return make

    names = ["layer", "input", "penalty", "network"]
    monkeypatch.setattr(gc, "GROUPS", {g: recorder(g) for g in names})
    gc.run(seed=3)
    assert len(set(first.values())) == len(names), first
    # a stable hash of the name (not Python's salted hash()): the same draws in every process
    assert first["layer"] == np.random.default_rng([3, zlib.crc32(b"layer")]).random()


def test_only_sees_the_same_draws_as_the_whole_suite():
    whole = {r.component: r.max_rel_error for r in gc.run()}
    for r in gc.run(only="input") + gc.run(only="layer"):
        assert r.max_rel_error == whole[r.component], r.component


# ── float32 ───────────────────────────────────────────────────────────────────────────────────────────────


def test_float32_networks_and_arrays_are_refused_by_the_finite_differences():
    """A float32 entry + 1e-6 rounds and a float32 loss is noise at that step: such a check fails spuriously
    (or passes anything with a loose --tol); the library said nothing."""
    net = MLP(3, [4], 2, seed=0, dtype="float32")
    X = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="float64"):
        gc.check_network(net, losses.get("ce"), X, np.array([0, 1, 0, 1, 1]))
    with pytest.raises(ValueError, match="float64"):
        gc.numerical_gradient(lambda: 0.0, {"x": np.zeros(3, dtype=np.float32)})
    with pytest.raises(ValueError, match="contiguous"):  # perturbing a copy would leave f() unchanged
        gc.numerical_gradient(lambda: 0.0, {"x": np.zeros((3, 4)).T})


def test_a_float32_model_is_checked_in_a_float64_copy_and_left_as_it_was(models):
    model_path, data = models["multiclass"]
    model = model_io.load(model_path)
    assert model.members[0].network.dtype == np.float32  # train's default
    before = {k: v.copy() for k, v in model.members[0].network.get_state().items()}
    results = check_model(model, data, rows=8, max_entries=5)
    assert all(r.passed for r in results) and "float64 copy" in results[0].note
    for k, v in model.members[0].network.get_state().items():
        assert v.dtype == np.float32 and np.array_equal(v, before[k]), k


# ── loss kinks on real rows ───────────────────────────────────────────────────────────────────────────────


def test_rows_at_the_mae_kink_are_skipped(tmp_path):
    """Only ReLU-family kinks were kept away from: rows whose label equals the network's output sit on MAE's
    kink, where the central difference (about 0) disagrees with the analytic sign(0 +- round-off)."""
    model_path, data = _train(tmp_path, "mae", "regression", loss="mae", activation="tanh", dropout=0.0)
    model = model_io.load(model_path)
    member = model.members[0]
    net = MLP(**{**member.network.config(), "dtype": "float64"})
    net.set_state({k: v.astype(np.float64) for k, v in member.network.get_state().items()})
    out = net.forward(member.preprocessor.transform(prepare(model, data).X, dtype=np.float64))[:, 0]
    table = pd.read_csv(data)
    on_kink = table.index[:5]
    table.loc[on_kink, "label"] = out[on_kink] * member.target_scaling["sd"][0] + member.target_scaling["mean"][0]
    table.to_csv(tmp_path / "at_kink.csv", index=False)
    doc = checked(run(["gradcheck", "--model", model_path, "--data", str(tmp_path / "at_kink.csv"), "--rows", "30",
                       "--json"]))
    assert doc["passed"] and "5 rows within 0.001 of a kink skipped" in doc["results"][0]["note"]


def test_huber_checked_against_its_own_predictions_stays_off_its_bend(tmp_path):
    """The predictions shifted by 1 put every residual at Huber's default delta, the bend of the loss."""
    model_path, data = _train(tmp_path, "huber", "regression", loss="huber", activation="tanh", dropout=0.0)
    pd.read_csv(data).drop(columns=["label"]).to_csv(tmp_path / "unlabelled.csv", index=False)
    doc = checked(gradcheck(model_path, str(tmp_path / "unlabelled.csv"), "--json"))
    assert "checked against the predictions shifted by 0.5" in doc["results"][0]["note"]


# ── options and exit codes ────────────────────────────────────────────────────────────────────────────────


def test_a_wrong_gradient_fails_the_model_check_with_exit_1(models, monkeypatch):
    model, data = models["multiclass"]
    good = layers.Dense.backward

    def broken(self, grad_out, need_input_grad=True, param_grads=True):
        out = good(self, grad_out, need_input_grad, param_grads)
        self.grads["W"] *= 1.001
        return out

    monkeypatch.setattr(layers.Dense, "backward", broken)
    res = gradcheck(model, data)
    assert res.exit_code == 1 and "FAIL" in res.stdout and "0 of 2 components passed" in res.stdout, res.output
    res = gradcheck(model, data, "--json")
    doc = json.loads(res.stdout)  # the report is still whole
    assert res.exit_code == 1 and not doc["passed"] and doc["n_failed"] == 2
    assert all("worst entry in dense" in r["note"] for r in doc["results"])


def test_seed_entries_and_tolerances_reach_the_model_check(models):
    model, data = models["multiclass"]
    a = checked(gradcheck(model, data, "--json", "--seed", "3"))
    assert a == checked(gradcheck(model, data, "--json", "--seed", "3"))  # reproducible
    assert a["results"] != checked(gradcheck(model, data, "--json", "--seed", "4"))["results"]
    assert a["seed"] == 3 and a["results"][0]["entries"] == 4 * 3  # dense0.W, dense0.b, dense1.W, dense1.b
    strict = gradcheck(model, data, "--tol", "1e-15", "--atol", "0", "--json")
    assert strict.exit_code == 1 and not json.loads(strict.stdout)["passed"]
