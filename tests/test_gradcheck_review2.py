"""`mlpcli gradcheck --model --data`, second review: its own advice for target errors, --target naming a
column otherwise than the model's target, and the notes of the table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli.engine import gradcheck as gc
from cli_helpers import assert_clean_error, run
from tables import make_table


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


def gradcheck(model, data, *extra):
    return run(["gradcheck", "--model", model, "--data", data, "--rows", "4", "--entries", "3", *extra])


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
