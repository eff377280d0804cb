"""Review 18, training options that only matter with another option: given where the others make them moot they are
a usage error naming both (not accepted and ignored); a --config value a command-line flag makes moot is dropped,
and pairs of options that exclude each other only under some values drop the file's value only then."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli.config import TrainOptions, check_unused
from mlpcli.errors import ConfigError
from mlpcli.estimators import MLPClassifier
from cli_helpers import assert_clean_error, run

FAST = ["--epochs", "2", "--no-group"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(4)])
    df["label"] = np.where(X[:, 0] > 0, "A", "B")
    path = tmp_path_factory.mktemp("options") / "t.csv"
    df.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("args, needles", [
    (["--no-standardize", "--scaling", "standard"], ["--scaling", "--no-standardize"]),
    (["--no-standardize", "--scaling", "robust"], ["--scaling", "--no-standardize"]),  # the default, given
    (["--folds", "3", "--val-size", "0.3"], ["--val-size", "--folds 3", "--folds 1"]),
    (["--folds", "1", "--val-data", "{table}", "--val-size", "0.3"], ["--val-size", "--val-data"]),
    (["--hidden", "none", "--dropout", "0.5"], ["--dropout", "--hidden none"]),
    (["--hidden", "", "--batchnorm"], ["--batchnorm", "--hidden none"]),
    (["--hidden", "none", "--activation", "tanh"], ["--activation", "--hidden none"]),
    (["--task", "regression", "--calibrate"], ["--calibrate", "--task regression"]),
    (["--task", "regression", "--class-weight", "balanced"], ["--class-weight", "--task regression"]),
    (["--task", "regression", "--class-weight", "None", "--calibrate"], ["--calibrate"]),  # "none" in any case: fine
    (["--task", "multiclass", "--positive", "A"], ["--positive", "multiclass"]),
    (["--optimizer", "adam", "--momentum", "0.5"], ["--momentum", "--optimizer sgd"]),
], ids=["scaling-standard", "scaling-default", "val-size-folds", "val-size-val-data", "dropout", "batchnorm",
        "activation", "calibrate", "class-weight", "class-weight-none", "positive", "momentum"])
def test_moot_option_is_a_usage_error_naming_both(table, args, needles):
    args = [a.replace("{table}", table) for a in args]
    assert_clean_error(run(["train", table, *FAST, *args]), *needles, code=2)


def test_values_that_ask_for_nothing_go_with_no_hidden_layer(table, tmp_path):
    """--dropout 0 and --no-batchnorm say what softmax regression does anyway: accepted (and so is the
    default --scaling left unsaid with --no-standardize)."""
    out = tmp_path / "m.mlp"
    res = run(["train", table, *FAST, "--folds", "1", "--hidden", "none", "--dropout", "0", "--no-batchnorm",
               "--no-standardize", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert out.exists()


def test_cv_names_its_member_folds(table):
    res = run(["cv", table, *FAST, "--folds", "2", "--member-folds", "3", "--val-size", "0.3"])
    assert_clean_error(res, "--val-size", "--member-folds 3", code=2)


def test_val_size_with_folds_auto_says_it_had_no_effect(table, tmp_path):
    """--folds auto chose an ensemble: --val-size splits nothing, which a note says (it may still apply above
    20,000 samples, so it is not refused)."""
    res = run(["train", table, *FAST, "--hidden", "none", "--val-size", "0.3", "--json",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert any(n.startswith("--val-size 0.3 had no effect: --folds auto trained 5") for n in notes), notes


def _config(tmp_path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text + 'epochs = 2\nhidden = "none"\nno-group = true\n')
    return str(path)


def test_flag_makes_config_value_moot_and_it_is_dropped(table, tmp_path):
    """A lab's config file with scaling, dropout, val-size and momentum; a run with --no-standardize, --hidden
    none, --folds 2 and --optimizer adam: the flags win, the file's values they make moot are dropped."""
    cfg = _config(tmp_path, 'scaling = "standard"\ndropout = 0.4\nval-size = 0.3\nmomentum = 0.5\n')
    res = run(["train", table, "--config", cfg, "--no-standardize", "--hidden", "none", "--folds", "2",
               "--optimizer", "adam", "-o", str(tmp_path / "m.mlp"), "-q"])
    assert res.exit_code == 0, res.output


def test_config_contradiction_names_the_file_and_its_values(table, tmp_path):
    cfg = _config(tmp_path, "standardize = false\n")
    res = run(["train", table, "--config", cfg, "--scaling", "standard"])
    assert_clean_error(res, "--scaling", "--no-standardize", f"--config {cfg}: standardize = false", code=2)


@pytest.mark.parametrize("key, flags, strategy", [
    # the file's validation table stays with --folds 1, which it needs (it was dropped: a random 20 % split instead)
    ('val-data = "{table}"', ["--folds", "1"], "explicit validation table"),
    # --folds 1 in the file stays with --no-refit (it was dropped: a 5-member ensemble instead of one network)
    ("folds = 1", ["--no-refit"], "StratifiedShuffleSplit"),
])
def test_config_value_that_agrees_with_the_flag_is_kept(table, tmp_path, key, flags, strategy):
    cfg = _config(tmp_path, key.replace("{table}", table) + "\n")
    res = run(["train", table, "--config", cfg, *flags, "--json", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["split"]["strategy"].startswith(strategy)


def test_config_refit_stays_with_folds_flag(table, tmp_path):
    cfg = _config(tmp_path, "refit = true\n")
    res = run(["train", table, "--config", cfg, "--folds", "2", "--json", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["fit"]["refit_epochs"] is not None


def test_library_rule_and_grids():
    """The rule is TrainOptions.validate's for the options given; without them (a tuning grid's settings, the
    estimators) nothing is refused, and a grid is refused only when none of its settings reads the option."""
    moot = TrainOptions(standardize=False, scaling="standard")
    moot.validate()
    with pytest.raises(ConfigError, match="^--scaling: .*--no-standardize"):
        moot.validate(given={"scaling"})
    check_unused(moot, {"scaling"}, grid={"standardize": [True, False]})
    with pytest.raises(ConfigError, match="^--grid: dropout: .*--hidden none"):
        check_unused(TrainOptions(hidden=[]), (), grid={"dropout": [0.0, 0.3]})
    check_unused(TrainOptions(hidden=[]), (), grid={"dropout": [0.0]})


def test_estimator_grids_over_hidden_and_dropout_still_fit():
    """scikit-learn's convention: GridSearchCV crosses hidden=() with dropout=0.3; the estimator fits it."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 3)), np.array([0, 1] * 15)
    MLPClassifier(hidden=(), dropout=0.3, batchnorm=True, activation="tanh", epochs=2).fit(X, y)


def test_tune_applies_the_same_rules_with_its_grid(tmp_path):
    """tune refuses an option no setting of its grid reads, and accepts it when some setting does."""
    from cli_helpers import assert_clean_error, run
    from tables import write_table

    path = write_table(tmp_path, n_patients=12)
    assert_clean_error(run(["tune", path, "--no-standardize", "--scaling", "robust", "--grid", "l2=0,1e-4"]),
                       "--scaling", "--no-standardize", code=2)
    assert_clean_error(run(["tune", path, "--dropout", "0.2", "--grid", "hidden=none"]), "--dropout", code=2)
    ok = run(["tune", path, "--dropout", "0.2", "--grid", "hidden=none|8", "--epochs", "2", "--folds", "2", "-q"])
    assert ok.exit_code == 0, ok.output
