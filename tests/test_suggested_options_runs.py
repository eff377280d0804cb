"""Suggestions that only a (tiny) run produces, each checked in the command whose output shows it: the option named
is that command's. The introspection over every message is tests/test_suggested_options.py (no training)."""

from __future__ import annotations

import pytest

from mlpcli import auto_defaults, data
from mlpcli.config import TrainOptions
from mlpcli.model_selection.crossfit import fit_model
from tables import make_table


def test_the_single_network_note_names_the_option_that_sets_the_members(monkeypatch):
    """Above 20,000 samples `--folds auto` trains one network, "(--folds to choose)": inside cv and tune, whose
    --folds are the outer folds, the members are --member-folds (cv's --folds 10 would not have changed it)."""
    monkeypatch.setattr(auto_defaults, "SINGLE_HOLDOUT_ABOVE", 50)  # 120 samples count as many
    frame = make_table("binary", n_patients=40, n_features=4)
    roles, _ = data.resolve_roles(frame.columns)
    ds = data.Dataset.from_frame(frame, roles)
    options = TrainOptions(hidden=[4], epochs=2, log1p=False, calibrate=False)
    for flag in ("--folds", "--member-folds"):
        notes = fit_model(ds, options, folds_flag=flag).notes
        [note] = [n for n in notes if "one network on a --val-size hold-out" in n]
        assert note.endswith(f"({flag} to choose)"), note


def test_trains_own_verdict_does_not_ask_for_the_grouped_split_it_had(tmp_path):
    """train's --json verdict (and the one stored in the model) said "split by patient, experiment or batch (--group
    names the column ...)" for a run split by patient_id already, where `diagnose MODEL` says the split kept them
    whole: the same run, the same advice."""
    import json

    from cli_helpers import run

    path, model = tmp_path / "t.csv", tmp_path / "m.mlp"
    make_table("multiclass", n_patients=30, per_patient=2, n_features=300, seed=0, signal=1.0).to_csv(path, index=False)
    res = run(["train", str(path), "--hidden", "32", "--folds", "2", "--epochs", "60", "--json", "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    trained = json.loads(res.stdout)["diagnosis"]
    assert trained["label"] == "unrepresentative_train", trained["summary"]
    assert not any("--group names the column" in a for a in trained["advice"]), trained["advice"]
    assert any("the split already kept the samples of each patient_id value on one side" in a
               for a in trained["advice"]), trained["advice"]
    res = run(["diagnose", str(model), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["advice"] == trained["advice"]


def test_reading_an_h5ad_or_10x_input_as_a_table_names_every_command_that_reads_it(tmp_path):
    """The error listed five of the nine commands that read an .h5ad file, and two of the eight for 10x."""
    pytest.importorskip("anndata")
    from mlpcli.data.io import read_table
    from mlpcli.errors import DataError
    from test_h5ad import make_adata

    make_adata(n_cells=10, n_genes=4).write_h5ad(tmp_path / "c.h5ad")
    with pytest.raises(DataError, match="explain, recalibrate and gradcheck --data, not as a table"):
        read_table(str(tmp_path / "c.h5ad"))
