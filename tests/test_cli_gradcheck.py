import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli import model_io
from mlpcli.checks import check_model
from mlpcli.cli import all_commands, cli
from mlpcli.engine import MLP, gradcheck as gc, layers
from mlpcli.pipeline import TrainOptions, train
from mlpcli.predict import prepare
from cli_helpers import assert_clean_error, run
from tables import make_table, write_table


def test_gradcheck_all_pass_table():
    res = run(["gradcheck", "--only", "loss"])
    assert res.exit_code == 0, res.output
    assert "loss:focal(gamma=0.5,alpha=0.25)" in res.output and "pass" in res.output
    assert "FAIL" not in res.output


def test_gradcheck_json():
    res = run(["gradcheck", "--only", "layer", "--json"])
    doc = json.loads(res.stdout)
    assert doc["passed"] and doc["n_failed"] == 0
    assert {r["component"] for r in doc["results"]} >= {"layer:dense", "layer:batchnorm(training)", "layer:dropout(fixed mask)"}


def test_gradcheck_fails_with_exit_1_on_a_broken_gradient(monkeypatch):
    good = layers.Dense.backward

    def broken(self, grad_out, need_input_grad=True):
        out = good(self, grad_out, need_input_grad)
        self.grads["b"] *= 1.01
        return out

    monkeypatch.setattr(layers.Dense, "backward", broken)
    res = CliRunner().invoke(cli, ["gradcheck", "--only", "layer:dense"])
    assert res.exit_code == 1 and "FAIL" in res.output


def test_gradcheck_unknown_component_and_bad_options():
    res = run(["gradcheck", "--only", "activation:swish"])
    assert res.exit_code == 2 and "no gradcheck component matches" in res.output and "--only" in res.output
    assert run(["gradcheck", "--eps", "0"]).exit_code == 2
    for flag, value in (("--eps", "inf"), ("--tol", "nan"), ("--atol", "inf")):  # a check that measures nothing
        res = run(["gradcheck", "--only", "loss:ce", flag, value, "--json"])
        assert res.exit_code == 2 and flag in res.output and "finite" in res.output, res.output
    res = run(["gradcheck", "--only", "loss:ce", "--rows", "5"])
    assert res.exit_code == 2 and "--rows" in res.output and "--model" in res.output
    res = run(["gradcheck", "--model", "x.mlp"])
    assert res.exit_code == 2 and "--model and --data go together" in res.output


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gc")
    data = write_table(tmp, n_features=6)
    model = tmp / "m.mlp"
    assert run(["train", data, "-o", str(model), "--hidden", "6", "--epochs", "3", "--dropout", "0.2", "--quiet"]).exit_code == 0
    return model, data


def test_gradcheck_on_a_trained_model(model_and_data):
    model, data = model_and_data
    res = run(["gradcheck", "--model", str(model), "--data", data, "--rows", "8", "--entries", "6", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    # every member of the default ensemble, each on rows its own preprocessing transforms
    assert [r["component"] for r in doc["results"]] == [
        f"model (member {k} of 5, {mode})" for k in range(1, 6)
        for mode in ("inference mode", "training mode, fixed dropout mask")]
    assert all(r["passed"] and r["entries"] > 0 for r in doc["results"])


def test_gradcheck_on_a_single_network_model(tmp_path):
    data = write_table(tmp_path, n_features=6)
    model = tmp_path / "m.mlp"
    assert run(["train", data, "-o", str(model), "--hidden", "6", "--epochs", "3", "--folds", "1", "--quiet"]).exit_code == 0
    doc = json.loads(run(["gradcheck", "--model", str(model), "--data", data, "--rows", "8", "--entries", "6",
                          "--json"]).stdout)
    assert [r["component"] for r in doc["results"]] == ["model (inference mode)", "model (training mode, fixed dropout mask)"]


def test_gradcheck_on_a_trained_model_catches_a_broken_gradient(model_and_data, monkeypatch):
    model, data = model_and_data
    good = layers.Dense.backward

    def broken(self, grad_out, need_input_grad=True):
        out = good(self, grad_out, need_input_grad)
        self.grads["W"] *= 1.01
        return out

    monkeypatch.setattr(layers.Dense, "backward", broken)
    res = CliRunner().invoke(cli, ["gradcheck", "--model", str(model), "--data", data, "--rows", "4", "--entries", "3"])
    assert res.exit_code == 1


def test_gradcheck_on_a_bad_model_file(tmp_path):
    bad = tmp_path / "bad.mlp"
    bad.write_bytes(b"PK\x03\x04 not really")
    res = run(["gradcheck", "--model", str(bad), "--data", str(bad)])
    assert res.exit_code == 1 and "Traceback" not in res.output and "model file" in res.output


def test_every_command_has_help_with_an_example():
    for name, command in all_commands().items():
        res = run([name, "--help"])
        assert res.exit_code == 0
        assert command.help and "Example" in command.help, name
    res = run(["--help"])
    for name in all_commands():
        assert name in res.output
    assert run(["--version"]).output.startswith("mlpcli, version")


def test_gradcheck_on_a_model_ignores_columns_that_are_neither_features_nor_roles(model_and_data, tmp_path):
    """As predict does: a table with an extra text column (a note, a date) is checked, not refused with
    advice about options gradcheck does not have."""
    model, data = model_and_data
    frame = pd.read_csv(data)
    frame.insert(3, "notes", "re-run")
    path = tmp_path / "extra.csv"
    frame.to_csv(path, index=False)
    res = run(["gradcheck", "--model", str(model), "--data", str(path), "--rows", "4", "--entries", "3", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["passed"]


def test_gradcheck_reads_a_decimal_comma_regression_target_and_uses_it(tmp_path):
    """The rows' target, written with decimal commas, gives the loss its values (it was refused as text once
    gradcheck read through predict's whole-table reader), and no note claims the target was ignored."""
    from tables import make_table

    df = make_table(task="regression", seed=3)
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False, sep=";", decimal=",")
    model = tmp_path / "r.mlp"
    assert run(["train", str(path), "-o", str(model), "--hidden", "4", "--epochs", "3", "--folds", "1", "-q"]).exit_code == 0
    res = run(["gradcheck", "--model", str(model), "--data", str(path), "--rows", "4", "--entries", "3"])
    assert res.exit_code == 0, res.output
    assert "no target column" not in res.stdout and "ignored the target column" not in res.stderr


def test_a_nan_or_infinite_gradient_fails_the_check():
    """NaN compares False with any tolerance, and an infinite analytic gradient against a finite difference
    passed: a check that measured nothing reported success."""
    import numpy as np

    from mlpcli.engine.gradcheck import CheckResult, compare

    for bad in (np.inf, -np.inf, np.nan):
        st = compare({"w": np.array([bad, 1.0])}, {"w": np.array([1.0, 1.0])}, 1e-6, 0.0)
        assert st.failed == 1 and st.max_rel == np.inf and st.worst == "w"
        st = compare({"w": np.array([1.0, 1.0])}, {"w": np.array([1.0, bad])}, 1e-6, 1e9)  # no floor forgives it
        assert st.failed == 1
    doc = CheckResult("x", 2, np.inf, 0, False).to_dict()
    assert doc["max_rel_error"] is None and json.dumps(doc)


def test_gradcheck_data_needs_the_target_it_is_given_and_offers_only_its_own_options(model_and_data, tmp_path):
    model, data = model_and_data
    res = run(["gradcheck", "--model", str(model), "--data", data, "--target", "no_such_column"])
    assert res.exit_code == 1 and "'no_such_column'" in res.output, res.output
    table = pd.read_csv(data)
    feature = [c for c in table.columns if c.startswith("f")][0]
    table.drop(columns=feature).to_csv(tmp_path / "fewer.csv", index=False)
    res = run(["gradcheck", "--model", str(model), "--data", str(tmp_path / "fewer.csv")])
    assert res.exit_code == 1 and repr(feature) in res.output and "--fill-missing" not in res.output, res.output


def test_gradcheck_json_keeps_the_notes_of_reading_the_data(model_and_data):
    """--json left out what reading --data said (the roles, the features matched), which the table shows."""
    model, data = model_and_data
    res = run(["gradcheck", "--model", str(model), "--data", data, "--rows", "4", "--entries", "3", "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["notes"] and isinstance(doc["warnings"], list)
    assert json.loads(run(["gradcheck", "--only", "loss:ce", "--json"]).stdout)["notes"] == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{task: (model path, its training table path)} for a small classifier and a small regression."""
    tmp = tmp_path_factory.mktemp("gc2")
    out = {}
    for task in ("multiclass", "regression"):
        data = tmp / f"{task}.csv"
        make_table(task=task, seed=1, n_features=6).to_csv(data, index=False)
        model = tmp / f"{task}.mlp"
        res = run(["train", str(data), "-o", str(model), "--hidden", "4", "--epochs", "2", "--folds", "1", "-q"])
        assert res.exit_code == 0, res.output
        out[task] = (str(model), str(data))
    return out


def test_an_absent_target_column_gets_gradcheck_s_advice_not_predict_s(trained, tmp_path):
    """The table reader's advice was evaluate's: "evaluation needs the true labels ... or use `mlpcli predict`
    for unlabelled data"; gradcheck needs labels for its loss only when --target is given, and predict is no
    remedy."""
    model, data = trained["multiclass"]
    pd.read_csv(data).drop(columns=["label"]).to_csv(tmp_path / "unlabelled.csv", index=False)
    res = gradcheck(model, str(tmp_path / "unlabelled.csv"), "--target", "label")
    assert_clean_error(res, "unlabelled.csv", "no target column 'label'", "--target", "leave --target out")
    assert "mlpcli predict" not in res.output and "evaluation" not in res.output
    # without --target the model's own predictions stand in, as the README says
    doc = json.loads(gradcheck(model, str(tmp_path / "unlabelled.csv"), "--json").stdout)
    assert doc["passed"] and "model's own predictions" in doc["results"][0]["note"]


def test_rows_without_a_label_are_left_out_of_the_sample_and_counted(trained, tmp_path):
    """One empty label cell refused the whole table, though the check samples --rows rows of it; a column with
    no label at all is an error with gradcheck's remedies, not predict's."""
    model, data = trained["multiclass"]
    table = pd.read_csv(data)
    table.loc[2, "label"] = np.nan
    table.to_csv(tmp_path / "holes.csv", index=False)
    res = gradcheck(model, str(tmp_path / "holes.csv"), "--json")
    assert res.exit_code == 0, res.output
    assert f"1 row without a label left out (of {len(table)} rows)" in res.output
    assert "no target column" not in json.loads(res.stdout)["results"][0]["note"]  # the labels were used
    table["label"] = np.nan
    table.to_csv(tmp_path / "none.csv", index=False)
    res = gradcheck(model, str(tmp_path / "none.csv"))
    assert_clean_error(res, "none.csv", "no row has a label in 'label'", "--drop 'label'")
    assert "mlpcli predict" not in res.output
    assert gradcheck(model, str(tmp_path / "none.csv"), "--drop", "label").exit_code == 0


def test_a_regression_target_named_otherwise_gives_the_loss_its_values(trained, tmp_path):
    """--target age_years for a model trained on `label` was refused ("pass the model's columns to --target")."""
    model, data = trained["regression"]
    pd.read_csv(data).rename(columns={"label": "age_years"}).to_csv(tmp_path / "renamed.csv", index=False)
    res = gradcheck(model, str(tmp_path / "renamed.csv"), "--target", "age_years", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["passed"] and not any("no target column" in r["note"] for r in doc["results"])
    assert any("'age_years'" in n and "'label'" in n for n in doc["notes"])
    assert_clean_error(gradcheck(model, str(tmp_path / "renamed.csv"), "--target", "age_years,f00"),
                       "--target", "2 columns", code=2)


def test_one_entry_within_round_off_is_singular(monkeypatch):
    monkeypatch.setattr(gc, "run", lambda **kw: [gc.CheckResult("loss:x", 3, 0.0, 1, True, "a note")])
    res = run(["gradcheck"])
    assert res.exit_code == 0 and "a note; 1 entry within round-off" in res.output, res.output


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


def test_one_row_is_singular(models):
    model, data = models["multiclass"]
    doc = checked(run(["gradcheck", "--model", model, "--data", data, "--rows", "1", "--entries", "1", "--json"]))
    assert doc["results"][0]["note"].startswith("1 row, up to 1 entry per array, float64 copy"), doc["results"][0]


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


def test_rows_at_a_kink_in_training_mode_alone_are_left_out_of_its_check(tmp_path):
    """The rows were chosen off the kinks of inference mode only: in training mode the batch statistics (or a
    dropout mask) move the pre-activations, and a row at ReLU's kink there failed the check of a right gradient
    (batchnorm0.beta off by 1.8 relative). Here the first row is the mean of the others, so in training mode every
    unit's batch-normalised value (beta 0) is 0 for it, while the running statistics keep it off 0."""
    model_path, data = _train(tmp_path, "bn_kink", "multiclass", batchnorm=True, dropout=0.0, scaling="standard")
    model = model_io.load(model_path)
    state = model.members[0].network.get_state()
    state["batchnorm0.beta"][...] = 0.0
    model.members[0].network.set_state(state)
    model_io.save(model, model_path)
    table = pd.read_csv(data)
    features = model.feature_names
    centre, spread = table[features].to_numpy()[0], np.random.default_rng(5).normal(size=(3, len(features)))
    for name, rows in (("sym7", np.vstack([centre, centre + spread, centre - spread])),
                       ("sym3", np.vstack([centre, centre + spread[0], centre - spread[0]]))):
        out = pd.DataFrame(rows, columns=features)
        out.insert(0, "label", table["label"].iloc[:len(rows)].to_numpy())
        out.to_csv(tmp_path / f"{name}.csv", index=False)
    doc = checked(run(["gradcheck", "--model", model_path, "--data", str(tmp_path / "sym7.csv"), "--json"]))
    inference, training = doc["results"]
    assert "7 rows" in inference["note"] and "kink" not in inference["note"]
    assert training["passed"] and training["note"].startswith("6 rows"), training
    assert "1 row within 0.001 of a kink in training mode left out" in training["note"]
    # two rows left: BatchNorm's training mode cannot be checked, and the inference result says why
    doc = checked(run(["gradcheck", "--model", model_path, "--data", str(tmp_path / "sym3.csv"), "--json"]))
    assert len(doc["results"]) == 1 and doc["passed"]
    assert ("training mode not checked: 1 row of the 3 within 0.001 of a kink in training mode, leaving 2 "
            "(BatchNorm needs 3)") in doc["results"][0]["note"]


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


def test_gradcheck_only_empty_is_a_usage_error():
    """An empty shell variable (`--only "$WHICH"`) ran the whole suite."""
    res = run(["gradcheck", "--only", ""])
    assert res.exit_code == 2 and "'--only'" in res.output and "is empty" in res.output


def test_gradcheck_names_its_large_input_components():
    res = run(["gradcheck", "--only", "activation"])
    assert res.exit_code == 0, res.output
    assert "activation:sigmoid[large inputs]" in res.output


def test_gradcheck_under_a_tolerance_it_cannot_reach_shows_the_real_error(tmp_path):
    """`gradcheck --only loss:ce --tol 1e-14` passed every entry as round-off and printed "max rel. error 0.0e+00";
    it now prints the real error and says why the tolerance could not bind."""
    from mlpcli.engine.gradcheck import check_function

    x = np.array([0.3, -1.2, 2.5])
    result = check_function("cube", lambda: float(np.sum(x ** 3)), {"x": x}, {"x": 3 * x ** 2}, 1e-6, 1e-14, 1e-8)
    assert result.passed and result.max_rel_error > 0
    assert "every entry missed tol 1.0e-14" in result.note and "cannot bind" in result.note
    res = CliRunner().invoke(cli, ["gradcheck", "--only", "loss:ce", "--tol", "1e-14", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["results"]
    waived = [r for r in rows if "cannot bind" in r["note"]]
    assert waived and all(r["max_rel_error"] > 0 for r in waived)
