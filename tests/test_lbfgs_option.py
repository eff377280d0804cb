"""--optimizer lbfgs: full-batch training to convergence, and the options it cannot apply."""

import json

import numpy as np
import pytest

from mlpcli import model_io
from cli_helpers import assert_clean_error, run
from tables import make_table, write_table


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
    with pytest.raises(ValueError, match="batchnorm true with optimizer lbfgs"):  # refused before the fit
        MLPClassifier(hidden=(8,), batchnorm=True, optimizer="lbfgs", random_state=0).fit(X, y)


def test_lbfgs_in_float32_reaches_logistic_regression_as_float64_does():
    """One small step (a decrease under 1e-6 of max(|f|, 1)) ended float32 L-BFGS runs with their gradient still
    100 x float64's final one: weights 5e-3 and probabilities 7e-3 from LogisticRegression(C=1)'s."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from mlpcli.estimators import MLPClassifier

    X, y = make_classification(n_samples=500, n_features=30, n_informative=8, n_classes=3, random_state=4)
    X = (X - X.mean(0)) / X.std(0)
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(X, y)
    m = MLPClassifier(hidden=(), optimizer="lbfgs", early_stopping=False, dtype="float32", epochs=1000, l2=0.5 / 500,
                      random_state=0).fit(X, y)
    assert np.abs(m.predict_proba(X) - sk.predict_proba(X)).max() < 1e-3


def test_lbfgs_in_float32_on_a_small_regression_loss_reaches_least_squares(tmp_path):
    """A regression's loss on the standardised target (~0.02) made the float32 tolerance 1e-6 absolute, 50 x its
    value's rounding: predictions 4 units (target SD 76) from least squares'."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 20)) * rng.uniform(0.1, 8, size=20)
    y = 10 * X @ rng.normal(size=20) + 1000 + rng.normal(scale=20, size=500)
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(20)]).assign(y=y)
    df.iloc[:400].to_csv(tmp_path / "tr.csv", index=False)
    df.iloc[400:].to_csv(tmp_path / "va.csv", index=False)
    r = run(["train", str(tmp_path / "tr.csv"), "--val-data", str(tmp_path / "va.csv"), "--target", "y", "--task",
             "regression", "--hidden", "none", "--optimizer", "lbfgs", "--l2", "0", "--no-standardize", "--no-log1p",
             "-o", str(tmp_path / "m.mlp"), "-q"])
    assert r.exit_code == 0, r.output
    assert run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "va.csv"), "-o", str(tmp_path / "p.csv"),
                "-q"]).exit_code == 0
    ols = LinearRegression().fit(X[:400], y[:400]).predict(X[400:])
    assert np.abs(pd.read_csv(tmp_path / "p.csv")["pred_y"].to_numpy() - ols).max() < 0.5  # was 4.1


def test_an_lbfgs_run_is_summarised_in_iterations_and_says_it_keeps_its_last_weights(tmp_path):
    """"37 run (epoch limit); best epoch 37, weights restored" was said of an L-BFGS run that converged (its limit was
    200) and restored nothing."""
    df = make_table("multiclass", n_patients=40)
    df.to_csv(tmp_path / "t.csv", index=False)
    for folds, expected in (("1", "of L-BFGS (converged); the last weights kept"),
                            ("3", "of L-BFGS, at most 200 (per member; 3 converged; the last weights kept)")):
        r = run(["train", str(tmp_path / "t.csv"), "--hidden", "none", "--optimizer", "lbfgs", "--folds", folds,
                 "-o", str(tmp_path / "m.mlp")])
        assert r.exit_code == 0, r.output
        assert expected in r.output and "weights restored" not in r.output and "epoch limit" not in r.output


def test_the_estimator_with_lbfgs_trains_on_every_row_whatever_early_stopping():
    """early_stopping=True (the default) held out 10 % of the rows that lbfgs never trained on, and kept its last
    iterate anyway (validation loss 3.39 where the lowest had been 0.64): with lbfgs nothing is held out, as with
    scikit-learn's lbfgs solver; clip_norm, which it cannot apply, is refused as dropout is."""
    import numpy as np

    from mlpcli.estimators import MLPClassifier

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 150)
    X = rng.normal(size=(150, 8)) + 0.8 * y[:, None]
    default = MLPClassifier(hidden=(8,), optimizer="lbfgs", random_state=0).fit(X, y)
    off = MLPClassifier(hidden=(8,), optimizer="lbfgs", early_stopping=False, random_state=0).fit(X, y)
    assert np.array_equal(default.predict_proba(X), off.predict_proba(X))  # the same fit: every row trained
    assert all("val_loss" not in row or row["val_loss"] is None for row in default.history_)
    with pytest.raises(ValueError, match="clip_norm cannot apply with optimizer='lbfgs'"):
        MLPClassifier(optimizer="lbfgs", clip_norm=1.0).fit(X, y)
