"""--optimizer lbfgs: full-batch training to convergence, and the options it cannot apply."""

import json

import pytest

from mlpcli import model_io
from cli_helpers import assert_clean_error, run
from tables import write_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_table(tmp_path_factory.mktemp("lbfgs"), n_patients=30)


@pytest.mark.parametrize("hidden", ["none", "8"])
def test_train_with_lbfgs_keeps_its_last_iterate_and_predicts(table, tmp_path, hidden):
    out = tmp_path / "m.mlp"
    res = run(["train", table, "--optimizer", "lbfgs", "--hidden", hidden, "-o", str(out), "--json", "--folds", "2"])
    assert res.exit_code == 0, res.output
    model = model_io.load(out)
    assert model.config["optimizer"] == "lbfgs" and model.config["augment_noise"] == 0.0
    assert all(m.network.dropout == 0.0 for m in model.members)  # built without the dropout it could not apply
    doc = json.loads(res.stdout)
    for member in doc["fit"]["members"]:  # converged weights, not a best-validation epoch's
        assert member["best_epoch"] == member["epochs_run"] < member["max_epochs"] and not member["stopped_early"]
    assert doc["validation_metrics"]["balanced_accuracy"] > 0.6  # (the signal: 0.9 and more with minibatches)
    shown = " ".join(run(["info", str(out)]).output.split())
    assert "optimizer lbfgs (every row, 2 of 2 converged" in shown and "lr 0.01" not in shown  # each converged
    pred = run(["predict", str(out), table, "-o", str(tmp_path / "p.csv")])
    assert pred.exit_code == 0, pred.output


@pytest.mark.parametrize("flags, named", [
    (["--lr", "0.01"], "--lr"),
    (["--batch-size", "16"], "--batch-size"),
    (["--patience", "5"], "--patience"),
    (["--lr-schedule", "cosine"], "--lr-schedule"),
    (["--hidden", "8", "--dropout", "0.2"], "--dropout"),
    (["--hidden", "8", "--batchnorm"], "--batchnorm"),
    (["--augment-noise", "0.5"], "--augment-noise"),
    (["--l1", "0.01"], "--l1"),
])
def test_options_lbfgs_cannot_apply_are_usage_errors(table, tmp_path, flags, named):
    res = run(["train", table, "--optimizer", "lbfgs", *flags, "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, named, "lbfgs", code=2)
    assert not (tmp_path / "m.mlp").exists()


def test_the_estimator_takes_lbfgs_and_refuses_it_with_batch_normalisation():
    import numpy as np

    from mlpcli.estimators import MLPClassifier

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    X = rng.normal(size=(120, 6)) + rng.normal(size=(3, 6))[y]
    clf = MLPClassifier(hidden=(), optimizer="lbfgs", random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.8 and np.allclose(clf.predict_proba(X).sum(axis=1), 1)
    with pytest.raises(ValueError, match="lbfgs cannot train batch normalisation"):
        MLPClassifier(hidden=(8,), batchnorm=True, optimizer="lbfgs", random_state=0).fit(X, y)
