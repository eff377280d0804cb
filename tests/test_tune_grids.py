"""`tune`'s grid settings against the data: --results of any grid as parquet, the model and --results all or none,
values judged with the grid's other options, log1p and impute settings checked before any fit, settings tied
with the best, and each setting scored as `cv` scores it."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from mlpcli import data
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError, DataError
from mlpcli.model_selection import grid, tuning
from mlpcli.model_selection.cross_validation import mean_sd
from mlpcli.model_selection.tuning import PointResult
from cli_helpers import assert_clean_error, run
from tables import make_table


FAST = ["--folds", "2", "--epochs", "3", "--hidden", "none"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("tune20") / "mc.csv"
    make_table("multiclass", n_patients=18, per_patient=2, n_features=6).to_csv(path, index=False)
    return str(path)


def test_results_parquet_of_a_grid_mixing_auto_and_numbers(table, tmp_path):
    """`--grid "lr=auto,0.01; top-var=none,5" --results r.parquet` ran every fit, then failed with pyarrow's
    "Could not convert 'auto' with type str: tried to convert to double" (exit 1, no results); with --refit the
    model was written all the same."""
    out = tmp_path / "r.parquet"
    res = run(["tune", table, "--grid", "lr=auto,0.01; top-var=none,5; l2=0.5", "-q", *FAST,
               "--results", str(out)])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out)
    assert sorted(frame["lr"]) == ["0.01", "0.01", "auto", "auto"] and sorted(set(frame["top_var"])) == ["5", "none"]
    assert list(frame["l2"]) == [0.5] * 4  # an option of numbers only keeps them
    # the cells read back as --grid values
    assert grid.parse_grid("lr=" + ",".join(sorted(set(frame["lr"]))))["lr"] == [0.01, "auto"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_refit_model_and_results_are_written_all_or_none(table, tmp_path):
    """A --results that failed to write (here a full device) after the refit left the new model behind, exit 1."""
    model = tmp_path / "best.mlp"
    res = run(["tune", table, "--grid", "l2=0,1", "-q", *FAST, "--refit", "--member-folds", "2", "-o", str(model),
               "--results", "/dev/full"])
    assert_clean_error(res, "/dev/full")
    assert not model.exists() and os.listdir(tmp_path) == []


def test_a_value_is_judged_with_the_grids_other_options():
    """`--grid "lr=50,0.01; optimizer=adam"` was refused as "lr=50: AdamW shrinks the weights by lr x weight
    decay", though no setting of the grid uses AdamW; a value wrong in every setting is still refused as before."""
    space = grid.parse_grid("lr=50,0.01; optimizer=adam")
    assert space == {"lr": [50.0, 0.01], "optimizer": ["adam"]}
    assert grid.parse_grid("optimizer=adam; lr=50")["lr"] == [50.0]
    with pytest.raises(ConfigError, match=r"^--grid: lr=50: AdamW shrinks"):
        grid.parse_grid("lr=50; l2=0,1")
    with pytest.raises(ConfigError, match=r"^--grid: dropout=1.5: must be in"):  # a range: whatever the others
        grid.parse_grid("dropout=1.5; hidden=8")
    # valid with adam, not with adamw: the setting that cannot train is named
    options = TrainOptions()
    space = grid.parse_grid("optimizer=adam,adamw; lr=50", options)
    with pytest.raises(ConfigError, match="the setting optimizer=adamw lr=50 is not valid"):
        grid.check_settings(options, grid.choose_points(space)[0])


def _dataset(frame: pd.DataFrame, tmp_path) -> data.Dataset:
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return data.load_dataset(str(path))[0]


def test_log1p_and_impute_settings_are_checked_against_the_data_before_any_fit(table, tmp_path):
    """`--grid "log1p=auto,true"` on a table with negative values ran the auto setting's fits, then failed as
    "fold 1: log1p needs non-negative input ...; drop --log1p" (an option never given); impute=none on a table
    with missing values the same way ("pass --impute")."""
    frame = make_table("multiclass", n_patients=12, per_patient=2, n_features=4)
    ds = _dataset(frame, tmp_path)
    calls = []
    with pytest.raises(ConfigError, match=r"^--grid: the setting log1p=true does not fit the data: log1p needs "
                                          r"non-negative input.*drop log1p=true from --grid"):
        tuning.tune(ds, TrainOptions(epochs=3, hidden=[]), {"log1p": ["auto", True]}, folds=2,
                    progress=lambda done, total: calls.append(done))
    assert calls == []  # before any fit
    frame.loc[3, "f02"] = np.nan
    ds = _dataset(frame, tmp_path)
    with pytest.raises(ConfigError, match=r"^--grid: the setting impute=none does not fit the data: missing values "
                                          r"in 1 feature column: 'f02' \(1\); give impute median, mean, zero or min in --grid"):
        tuning.tune(ds, TrainOptions(epochs=3, hidden=[]), {"impute": ["median", None]}, folds=2,
                    progress=lambda done, total: calls.append(done))
    assert calls == []
    # the command line's own option (no impute given, the grid tunes something else): said as train says it
    with pytest.raises(DataError, match=r"^missing values .* pass --impute median\|mean\|zero\|min"):
        tuning.tune(ds, TrainOptions(epochs=3, hidden=[]), {"l2": [0.0, 1.0]}, folds=2)
    # through the command line: one line, exit 1, no fold named
    res = run(["tune", table, "--grid", "log1p=false,true", *FAST])
    assert_clean_error(res, "--grid: the setting log1p=true does not fit the data")
    assert "fold 1" not in res.output
    res = run(["tune", table, "--log1p", "--grid", "l2=0,1", *FAST])
    assert_clean_error(res, "log1p needs non-negative input", "drop --log1p")


def test_settings_tied_with_the_best_are_said(table):
    """`--grid "calibrate=true,false"` (temperature scaling never changes a predicted label, which balanced
    accuracy scores) printed calibrate=true as the best of 2 settings, and --refit trained it: the two tie in every
    fold, and it ranked first by its place in the grid."""
    res = run(["tune", table, "--grid", "calibrate=true,false", *FAST, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["points"][0]["scores"] == doc["points"][1]["scores"]
    tie = [n for n in doc["notes"] if "score the same" in n or "scores the same" in n]
    assert tie == ["1 other setting (calibrate=false) scores the same as the best, calibrate=true, in every fold: the "
                   "best ranks first by its place in the grid, not by its score, so the grid does not choose between "
                   "them"]
    # equal means over other fold scores: the SD decided
    a = PointResult(0, {"l2": 0.0}, [0.6, 0.6], 0.6, 0.0, rank=1)
    b = PointResult(1, {"l2": 1.0}, [0.5, 0.7], 0.6, 0.14, rank=2)
    note = tuning.tie_note([a, b], "balanced_accuracy")
    assert "in mean (balanced accuracy 0.6): the best ranks first by its smaller SD over the folds" in note
    assert note.endswith("; --repeats may")
    c = PointResult(2, {"l2": 2.0}, [0.5, 0.5], 0.5, 0.0, rank=3)
    assert tuning.tie_note([a, c], "balanced_accuracy") is None


def test_tune_scores_a_setting_as_cv_does(table):
    """Each setting's fold scores are `cv --member-folds 1`'s for that setting: the same folds and seeds."""
    res = run(["tune", table, "--grid", "l2=0,1", *FAST, "--json", "-q"])
    assert res.exit_code == 0, res.output
    points = {p["setting"]["l2"]: p["scores"] for p in json.loads(res.stdout)["points"]}
    for l2 in (0.0, 1.0):
        cv = run(["cv", table, "--member-folds", "1", "--l2", str(l2), *FAST, "--no-baseline", "--json", "-q"])
        assert cv.exit_code == 0, cv.output
        assert [f["score"] for f in json.loads(cv.stdout)["per_fold"]] == pytest.approx(points[l2], abs=1e-12)


def test_tune_grid_settings_that_do_not_apply_are_usage_errors(tmp_path):
    """A grid setting that cannot apply to the data (class weights on a regression target) was exit 1 where train's
    --class-weight is now exit 2; class_weight=balanced,none (',' where '|' separates class-weight values) said
    "got 'balanced'"."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd")).assign(label=rng.normal(size=60))
    frame.to_csv(tmp_path / "r.csv", index=False)
    res = run(["tune", str(tmp_path / "r.csv"), "--no-group", "--grid", "class_weight=balanced|none", "--epochs", "1",
               "--folds", "2"])
    assert res.exit_code == 2 and "does not fit the data: --class-weight needs a classification target" in res.output
    frame["label"] = np.where(frame["a"] > 0, "x", "y")
    frame.to_csv(tmp_path / "c.csv", index=False)
    res = run(["tune", str(tmp_path / "c.csv"), "--no-group", "--grid", "class_weight=balanced,none", "--epochs", "1"])
    assert res.exit_code == 2 and "'|' separates class-weight values" in res.output.splitlines()[-1]


def test_tune_counts_settings_that_train_the_same_networks_once(small_table):
    res = run(["tune", str(small_table), "--epochs", "4", "--folds", "2", "--grid", "hidden=none|4; dropout=0,0.3"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "1 of 4 settings trains the same networks as another setting" in text
    assert "dropout drops units of the hidden layers, and --hidden none has none" in text
    assert "the highest of 3 settings" in text


def test_a_hidden_value_of_several_layers_is_said_to_be_one_setting(small_table):
    """`--grid "hidden=16,32"` ran one two-layer network without a word, where "," separates every other option's
    values; with another option in the grid (two settings) not even the one-setting note said so."""
    res = run(["tune", str(small_table), "--epochs", "2", "--folds", "2", "--grid", "hidden=8,4,2; l2=0,1e-4",
               "--json", "-q"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert '--grid hidden=8,4,2: one setting, hidden layers 8, 4 and 2 ("|" separates settings: hidden=8|4|2)' in notes
    for space in ({"hidden": [[8], [4]]}, {"hidden": [[8, 4], [2]]}, {"hidden": [[8]]}, {"hidden": [[]]}, {"l2": [0]},
                  {"class_weight": ["a=2,b=1"]}):  # "|" written, one layer, none; a class-weight map is one setting
        assert grid.hidden_layers_note(space) == []


def test_tune_refuses_augment_noise_auto_with_unstandardised_features_in_its_grid(small_table):
    res = run(["tune", str(small_table), "--epochs", "2", "--folds", "2", "--hidden", "4",
               "--grid", "augment-noise=auto; standardize=false"])
    assert res.exit_code == 2 and "augment-noise: auto sizes the noise in units of a standardised feature" in res.output


def test_outer_folds_without_nested_is_a_usage_error(small_table):
    res = run(["tune", str(small_table), "--epochs", "2", "--folds", "2", "--outer-folds", "3", "--grid", "l2=0,0.1"])
    assert res.exit_code == 2 and "--outer-folds sets the outer folds of --nested" in res.output


def test_nested_with_nothing_chosen_does_not_call_the_inner_score_optimistic(small_table):
    res = run(["tune", str(small_table), "--epochs", "3", "--folds", "2", "--outer-folds", "2", "--nested",
               "--hidden", "4", "--grid", "l2=0"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "honest estimate of the tuned model" in text and "it was used to choose" not in text


def test_a_tuned_val_size_the_refit_ensemble_ignores_is_a_warning(small_table, tmp_path):
    res = run(["tune", str(small_table), "--epochs", "3", "--folds", "2", "--hidden", "4", "--grid",
               "val-size=0.2,0.3", "--refit", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "has no effect on the model --refit trained: --member-folds auto trained 5" in " ".join(res.stderr.split())


def test_rounding_does_not_break_a_tie_against_the_grid_order():
    from mlpcli.model_selection.tuning import PointResult, rank, tie_note

    v = [0.7, 0.6333333333333333, 0.8166666666666667, 0.55, 0.75]
    w = [0.7, 0.6333333333333333, 0.75, 0.8166666666666667, 0.55]
    assert sum(v) / 5 != sum(w) / 5  # the same scores in another order: the means differ in their last bit

    def point(i, setting, scores):
        mean, sd = mean_sd(scores)
        return PointResult(index=i, setting=setting, scores=scores, mean=mean, sd=sd, decisions=["argmax"] * 5)

    ranked = rank([point(0, {"l2": 0.0}, w), point(1, {"l2": 0.001}, v)], True)
    assert [p.index for p in ranked] == [0, 1]
    assert "by its place in the grid" in tie_note(ranked, "balanced_accuracy")


# ── the session's own changes, reviewed ─────────────────────────────────────────────────────────────────


def test_momentum_under_a_given_sgd_is_no_moot_option(small_table):
    res = run(["tune", str(small_table), "--optimizer", "sgd", "--epochs", "3", "--folds", "2", "--hidden", "4",
               "--grid", "momentum=0,0.9"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "trains the same networks" not in text and "the highest of 2 settings" in text


def test_a_grids_auto_noise_beside_an_sd_is_refused_without_standardising(small_table):
    res = run(["tune", str(small_table), "--no-standardize", "--epochs", "2", "--folds", "2", "--hidden", "4",
               "--grid", "augment-noise=auto,0.1"])
    assert res.exit_code == 2 and "--grid: augment-noise=auto: auto sizes the noise" in " ".join(res.output.split())
