import json

import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli.cli import all_commands, cli
from mlpcli.engine import layers
from tables import write_table
from cli_helpers import run


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
