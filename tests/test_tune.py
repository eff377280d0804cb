"""Tuning: the grid syntax, random sampling, ranking, nested CV that keeps the test folds out of
tuning, and `mlpcli tune` end to end."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError
from mlpcli.model_selection import cross_validation, grid, splits, tuning
from mlpcli.model_selection.grid import parse_grid
from mlpcli.parallel import Plan
from cli_helpers import assert_clean_error, run
from tables import make_table, write_table

FAST = ["--hidden", "8", "--epochs", "8", "--patience", "4", "--quiet"]
OPTIONS = TrainOptions(hidden=[8], epochs=8, patience=4)


def dataset(task="multiclass", **kw):
    df = make_table(task, **kw)
    roles, _ = data.resolve_roles(df.columns)
    return data.Dataset.from_frame(df, roles)


# ── the grid ─────────────────────────────────────────────────────────────────────────────────────────────


def test_the_issue_example_parses():
    space = grid.parse_grid("lr=1e-3,1e-2; l2=0,1e-4; dropout=0,0.3; hidden=64|128,64")
    assert space == {"lr": [1e-3, 1e-2], "l2": [0.0, 1e-4], "dropout": [0.0, 0.3], "hidden": [[64], [128, 64]]}
    assert grid.grid_size(space) == 16


def test_types_kebab_keys_none_and_duplicates():
    space = grid.parse_grid("batch-size=16,32 ; top_var=none,50; batchnorm=true,no; impute=none,median; "
                          "activation=relu,tanh; class-weight=none|balanced|typeA=2,typeB=1; lr=1e-3,0.001")
    assert space["batch_size"] == [16, 32] and space["top_var"] == [None, 50]
    assert space["batchnorm"] == [True, False] and space["impute"] == [None, "median"]
    assert space["class_weight"] == ["none", "balanced", "typeA=2,typeB=1"]
    assert space["lr"] == [0.001]  # the same value twice is one grid value


@pytest.mark.parametrize("text,needle", [
    ("", "--grid is empty"),
    (" ; ", "--grid is empty"),
    ("lr", "'lr' is not KEY=VALUES"),
    ("lrr=1e-3", "unknown option 'lrr' (did you mean 'lr'?)"),
    ("lr=", "lr has no values"),
    ("lr=1e-3,,1e-2", "lr has an empty value"),
    ("lr=fast", "lr value 'fast' is not a number"),
    ("batch_size=16.5", "batch_size value '16.5' is not a whole number"),
    ("batchnorm=maybe", "batchnorm value 'maybe' is not true or false"),
    ("hidden=64|12a", "hidden value '12a' is not comma-separated layer widths"),
    ("dropout=0,1.5", "dropout=1.5: must be in [0, 1)"),
    ("lr=0", "lr=0: must be > 0"),
    ("activation=swish", "activation=swish: must be one of"),
    ("lr=1e-3; lr=1e-2", "lr is given twice"),
    ("seed=0,1", "'seed' cannot be tuned"),
    ("target=label", "'target' cannot be tuned"),
])
def test_bad_grids_are_one_line_config_errors(text, needle):
    with pytest.raises(ConfigError) as exc:
        grid.parse_grid(text)
    message = str(exc.value)
    assert needle in message and "\n" not in message and message.startswith("--grid")


def test_random_points_are_distinct_seeded_and_in_grid_order():
    space = grid.parse_grid("lr=1e-4,1e-3,1e-2; l2=0,1e-4,1e-3; dropout=0,0.2,0.4")
    a, notes = grid.choose_points(space, 5, seed=1)
    b, _ = grid.choose_points(space, 5, seed=1)
    c, _ = grid.choose_points(space, 5, seed=2)
    assert a == b and a != c and "5 of 27" in notes[0]
    indices = [i for i, _ in a]
    assert indices == sorted(set(indices))
    all_points = [p for _, p in grid.choose_points(space)[0]]
    assert all(p in all_points for _, p in a) and all_points[0] == {"lr": 1e-4, "l2": 0.0, "dropout": 0.0}
    full, notes = grid.choose_points(space, 100)
    assert len(full) == 27 and "whole grid" in notes[0]


# ── tuning ───────────────────────────────────────────────────────────────────────────────────────────────


def test_tune_ranks_by_mean_score():
    ds = dataset(n_patients=18)
    res = tuning.tune(ds, OPTIONS, grid.parse_grid("lr=1e-3,3e-2; hidden=4|8"), folds=3)
    means = [p.mean for p in res.points]
    assert means == sorted(means, reverse=True) and [p.rank for p in res.points] == [1, 2, 3, 4]
    assert all(len(p.scores) == 3 for p in res.points)
    assert tuning.best_options(OPTIONS, res).lr == res.best.setting["lr"]


def test_regression_ranks_lowest_rmse_first():
    df = make_table("regression", n_patients=18)
    roles, _ = data.resolve_roles(df.columns)
    ds = data.Dataset.from_frame(df, roles)
    res = tuning.tune(ds, OPTIONS, grid.parse_grid("lr=1e-3,3e-2"), folds=3)
    assert res.metric == "rmse" and not res.higher_is_better
    assert res.points[0].mean <= res.points[1].mean


def test_nested_cv_keeps_each_outer_test_fold_out_of_its_tuning(monkeypatch):
    """Instrumented: record the rows every fit trains or scores on."""
    ds = dataset(n_patients=24)
    calls = []
    real = cross_validation.fit_and_score

    def spy(ds_, train_rows, test_rows, options, label=(), keep_predictions=False):
        calls.append((label, set(ds_.ids[train_rows]), set(ds_.ids[test_rows])))
        return real(ds_, train_rows, test_rows, options, label, keep_predictions)

    monkeypatch.setattr(cross_validation, "fit_and_score", spy)
    res = tuning.tune(ds, OPTIONS, grid.parse_grid("lr=1e-3,3e-2"), folds=3, nested=True, outer_folds=3)
    outer_folds, _ = splits.kfold(ds, 3, seed=OPTIONS.seed)
    assert len(res.nested) == 3
    for o, expected in zip(res.nested, outer_folds):
        np.testing.assert_array_equal(o.test_rows, expected.test)
        outer_test = set(ds.ids[o.test_rows])
        inner = [c for c in calls if c[0][0] == "inner" and c[0][1] == o.fold]
        assert len(inner) == 2 * 3  # points x inner folds
        for _, train_ids, test_ids in inner:
            assert not (train_ids | test_ids) & outer_test
        assert set().union(*(t for _, _, t in inner)) == set(ds.ids[o.train_rows])  # inner CV covers the rest
        refit = [c for c in calls if c[0][0] == "outer" and c[0][1] == o.fold]
        assert len(refit) == 1 and refit[0][2] == outer_test and not refit[0][1] & outer_test
        assert o.chosen == o.inner[0].setting
    # the chosen setting and the outer scores are reported
    s = res.nested_summary()
    assert s["folds"] == 3 and s["mean"] == pytest.approx(np.mean([o.score for o in res.nested]))


def test_nested_grouped_outer_folds_share_no_patient():
    ds = dataset(n_patients=24)
    res = tuning.tune(ds, OPTIONS, grid.parse_grid("lr=1e-2"), folds=2, nested=True, outer_folds=3)
    for o in res.nested:
        assert not set(ds.groups[o.train_rows]) & set(ds.groups[o.test_rows])


def test_tune_two_jobs_equals_sequential():
    ds = dataset(n_patients=18)
    space = grid.parse_grid("lr=1e-3,3e-2; dropout=0,0.3")
    a = tuning.tune(ds, OPTIONS, space, folds=3)
    b = tuning.tune(ds, OPTIONS, space, folds=3, plan=Plan(n_jobs=2))
    assert [(p.setting, p.scores) for p in a.points] == [(p.setting, p.scores) for p in b.points]


# ── the command ──────────────────────────────────────────────────────────────────────────────────────────


def test_cli_tune_table_results_and_refit(tmp_path):
    path = write_table(tmp_path, n_patients=18)
    results, model = tmp_path / "tuning.csv", tmp_path / "best.mlp"
    res = run(["tune", path, "--grid", "lr=1e-3,3e-2; hidden=4|8,4", "--folds", "3", "--results", str(results),
               "--refit", "-o", str(model), *FAST[:-1]])
    assert res.exit_code == 0, res.output
    for needle in ("Tuning: 4 of 4 grid points", "StratifiedGroupKFold by patient_id", "rank", "best:",
                   "each setting is scored as one network per fold", "trained the best setting as `train` does: a "
                   "5-member cross-fitted ensemble, each member on", "of the 54 samples", str(model)):
        assert needle in res.output, needle
    assert "on all the data" not in res.output  # each member holds some samples out
    table = pd.read_csv(results)
    assert list(table["rank"]) == [1, 2, 3, 4] and {"lr", "hidden", "mean_balanced_accuracy"} <= set(table.columns)
    m = model_io.load(model)
    assert len(m.members) >= 2  # train's default: a cross-fitted ensemble of the winning setting
    best = table.iloc[0]
    assert m.network.hidden == [int(h) for h in str(best["hidden"]).split(",")]
    assert m.config["lr"] == pytest.approx(best["lr"])
    assert m.extra["tuning"]["setting"]["lr"] == pytest.approx(best["lr"])


def test_cli_tune_json_random_and_nested(tmp_path):
    path = write_table(tmp_path, n_patients=18)
    res = run(["tune", path, "--grid", "lr=1e-3,1e-2,3e-2; dropout=0,0.3", "--random", "2", "--folds", "2",
               "--nested", "--outer-folds", "3", "--json", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["grid_size"] == 6 and doc["evaluated"] == 2 and len(doc["points"]) == 2
    assert doc["notes"][0] == "2 of 6 grid points drawn at random (seed 0)"
    assert doc["notes"][1].startswith("each setting is scored as one network per fold (as train --folds 1")
    nested = doc["nested"]
    assert len(nested["outer_folds"]) == 3 and nested["mean"] is not None
    assert all(o["chosen"] in [p["setting"] for p in doc["points"]] for o in nested["outer_folds"])


def test_cli_tune_nested_rich_output(tmp_path):
    path = write_table(tmp_path, n_patients=18)
    res = run(["tune", path, "--grid", "lr=1e-3,3e-2", "--folds", "2", "--nested", "--outer-folds", "3", *FAST])
    assert res.exit_code == 0, res.output
    assert "Nested CV" in res.output and "honest estimate of the tuned model" in res.output


@pytest.mark.parametrize("args,needle,code", [
    (["--grid", "lr=abc"], "--grid: lr value 'abc' is not a number", 2),
    (["--grid", "lrr=1"], "unknown option 'lrr'", 2),
    (["--grid", "lr=1e-3", "--folds", "19"], "--folds 19 is more than the 18 groups", 1),
    (["--grid", "lr=1e-3", "--nested", "--outer-folds", "19"], "--outer-folds 19 is more than the 18 groups", 1),
    (["--grid", "lr=1e-3", "-o", "x.mlp"], "add --refit", 2),
    (["--grid", "lr=1e-3", "--backend", "dask"], "--backend dask needs --scheduler", 2),
    (["--folds", "3"], "Missing option '--grid'", 2),
])
def test_cli_tune_errors_are_one_line(tmp_path, args, needle, code):
    path = write_table(tmp_path, n_patients=18)
    res = run(["tune", path, *args, *FAST])
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and needle in res.output
    assert res.output.strip().splitlines()[-1].startswith("Error:")
    assert not list(tmp_path.glob("*.mlp")) and not list(tmp_path.glob(".*.tmp"))


def test_a_grid_given_as_a_dict_is_checked_like_a_parsed_one():
    ds = data.Dataset.from_frame(make_table(n_patients=20), data.resolve_roles(make_table(n_patients=20).columns)[0])
    with pytest.raises(ConfigError, match="unknown option 'learning_rate'"):
        tuning.tune(ds, OPTIONS, {"learning_rate": [1e-3, 1e-2]}, folds=2)
    with pytest.raises(ConfigError, match="'seed' cannot be tuned"):
        tuning.tune(ds, OPTIONS, {"seed": [0, 1]}, folds=2)


def test_member_folds_messages_name_member_folds_and_a_failed_refit_leaves_no_results(tmp_path):
    """cv and tune call train's --folds --member-folds, but its errors said --folds (cv's own CV folds), and
    tune checked the refit's member count only after the whole tuning, having written --results by then."""
    path = write_table(tmp_path, n_patients=20)
    res = run(["cv", path, "--folds", "3", "--member-folds", "1", "--refit"])
    assert_clean_error(res, "--member-folds 2 or more", code=2)
    res = run(["cv", path, "--folds", "3", "--member-folds", "3", "--val-data", path])
    assert_clean_error(res, "--member-folds 1", code=2)
    results, model = tmp_path / "res.csv", tmp_path / "best.mlp"
    res = run(["tune", path, "--folds", "2", "--grid", "lr=1e-3,1e-2", "--epochs", "2", "--hidden", "4",
               "--member-folds", "70", "--refit", "-o", str(model), "--results", str(results)])
    assert_clean_error(res, "--member-folds 70 is more than the 20 groups", code=1)
    assert " fits " not in res.output  # refused before any fit
    assert not results.exists() and not model.exists()


def test_an_empty_grid_or_value_list_is_an_error_naming_it():
    from mlpcli.model_selection.grid import choose_points

    with pytest.raises(ConfigError, match="grid is empty"):
        choose_points({})
    with pytest.raises(ConfigError, match="lr needs a list of at least one value"):
        choose_points({"lr": []})
    assert TrainOptions(hidden=8).hidden == [8]  # as a config file's `hidden = 8`


def test_results_file_writes_no_hidden_layer_as_none(tmp_path):
    """`hidden=none|4` ranks "none" in the table but wrote an empty cell to --results, read back as NaN (and the
    other widths as floats, 4.0): the file now says none, as the table and the grid syntax do. `hidden=0` is refused
    as --hidden 0 is (it was read as no hidden layer, in the grid alone)."""
    path = write_table(tmp_path, n_patients=12, n_features=4)
    results = tmp_path / "tuning.csv"
    assert_clean_error(run(["tune", path, "--grid", "hidden=0|4", "--folds", "2", *FAST]), "hidden=0",
                       "positive whole numbers", code=2)
    res = run(["tune", path, "--grid", "hidden=none|4", "--folds", "2", "--results", str(results), *FAST])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(results, dtype=str)
    assert sorted(table["hidden"]) == ["4", "none"]
    assert sorted(grid.parse_grid("hidden=" + "|".join(table["hidden"]))["hidden"]) == [[], [4]]  # round trip


def test_member_folds_without_refit_is_a_usage_error(tmp_path):
    """tune scores the grid one network per fold: --member-folds only sizes --refit's model, and without
    --refit it was accepted and did nothing."""
    path = write_table(tmp_path, "t.csv", task="binary", n_patients=20)
    res = run(["tune", str(path), "--grid", "lr=0.001", "--member-folds", "3", "--folds", "2"])
    assert_clean_error(res, "--member-folds (or member-folds in --config) sets the members of the model --refit trains; add --refit", code=2)


def test_an_option_only_the_grid_gives_is_blamed_on_the_grid():
    """`--grid "momentum=0.5,0.9"` with AdamW said "--momentum: only --optimizer sgd uses it", an option the
    user never gave."""
    res = run(["tune", "x.csv", "--grid", "momentum=0.5,0.9"])
    assert res.exit_code == 2 and "--grid: momentum: only --optimizer sgd uses it" in res.output
    res = run(["tune", "x.csv", "--grid", "weight-decay=0.1,1", "--optimizer", "adam"])
    assert res.exit_code == 2 and "--grid: weight-decay: only --optimizer adamw uses it" in res.output


# ── tune: what the grid does not tune ────────────────────────────────────────────────────────────────────


def test_settings_an_optimizer_ignores_are_said_to_train_one_model_and_counted_once():
    points = [(i, {"optimizer": o, "momentum": m}) for i, (o, m) in
              enumerate([("adam", 0.5), ("adam", 0.9), ("sgd", 0.5), ("sgd", 0.9)])]
    notes = tuning.grid_notes(points)
    assert len(notes) == 1 and notes[0].startswith("1 of 4 settings trains the same networks")
    assert "momentum applies to optimizer=sgd only" in notes[0]
    scored = [tuning.PointResult(index=i, setting=s, scores=[0.5], mean=0.5, sd=0.0) for i, s in points]
    assert tuning.chosen_among(scored) == 3
    assert tuning.grid_notes([(0, {"lr": 0.1}), (1, {"lr": 0.01})]) == []


def test_an_option_without_effect_in_some_settings_is_said_and_left_out_of_the_best_line():
    """`optimizer=lbfgs,sgd; dropout=0.3`: lbfgs trains without dropout, yet its row and the best line said
    "optimizer=lbfgs dropout=0.3" (and `optimizer=adam,adamw; weight-decay=50` scored adam's plain networks as
    "adam weight-decay=50"). Values that ask for nothing (dropout=0) are not said."""
    points = [(0, {"optimizer": "lbfgs", "dropout": 0.3}), (1, {"optimizer": "sgd", "dropout": 0.3})]
    notes = tuning.grid_notes(points)
    assert len(notes) == 1 and notes[0].startswith("dropout has no effect in 1 of the 2 settings"), notes
    assert "lbfgs" in notes[0] and "they train" not in notes[0]
    assert tuning.setting_text(points[0][1]) == "optimizer=lbfgs (dropout=0.3: no effect there)"
    assert tuning.setting_text(points[1][1]) == "optimizer=sgd dropout=0.3"
    decay = [(0, {"optimizer": "adam", "weight_decay": 50.0}), (1, {"optimizer": "adamw", "weight_decay": 50.0})]
    assert any(n.startswith("weight-decay has no effect in 1 of the 2") and "adamw only" in n
               for n in tuning.grid_notes(decay))
    assert tuning.grid_notes([(0, {"optimizer": "lbfgs", "dropout": 0.0}), (1, {"optimizer": "sgd", "dropout": 0.0})]
                             ) == []
    assert tuning.setting_text({"optimizer": "lbfgs", "dropout": 0.0}) == "optimizer=lbfgs dropout=0"


def test_weight_decay_auto_and_the_value_it_resolves_to_are_one_model_for_the_task(tmp_path):
    """A regression's weight_decay=auto is 0.01: `--grid "weight-decay=auto,0.01,0.1"` trained the same networks twice
    (two rows of one score) and counted them as two settings the best was chosen from."""
    points = [(0, {"weight_decay": "auto"}), (1, {"weight_decay": 0.01}), (2, {"weight_decay": 1.0})]
    for task, same in (("regression", 1), ("binary", 2)):  # auto is 1.0 for a classifier
        notes = tuning.grid_notes(points, task=task)
        twin = f"weight-decay={points[same][1]['weight_decay']:g}"
        assert len(notes) == 1 and "weight-decay=auto is" in notes[0] and twin in notes[0], notes
        scored = [tuning.PointResult(index=i, setting=s, scores=[0.5], mean=0.5, sd=0.0) for i, s in points]
        assert tuning.chosen_among(scored, task=task) == 2
    assert tuning.chosen_among(scored) == 3  # the task unknown: nothing resolved
    path = write_table(tmp_path, task="regression", n_patients=18)
    res = run(["tune", path, "--grid", "weight-decay=auto,0.01,0.1", "--folds", "2", "--json", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    scores = {str(p["setting"]["weight_decay"]): p["scores"] for p in doc["points"]}
    assert scores["auto"] == scores["0.01"] != scores["0.1"]  # what the note says
    assert any("weight-decay=auto is 0.01 for a regression" in n for n in doc["notes"])
    assert any("the lowest of 2 settings" in n for n in doc["notes"]), doc["notes"]


def test_tune_warns_of_a_label_confounded_with_the_batch_and_cv_names_a_diverged_fold(tmp_path):
    """tune, like cv, warns when the label goes with the batch (a grid point can win by recognising batches); a fold
    whose training diverges is named in cv's error, as a fold's data errors are."""
    from test_cv_report import confounded

    path = tmp_path / "confounded.csv"
    confounded().to_csv(path, index=False)
    res = run(["tune", str(path), "--grid", "l2=0,1e-3", "--folds", "2", "--epochs", "3", "--hidden", "4", "--json"])
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if "confounded with 'batch'" in w]
    assert said and "`mlpcli cv --leave-batch-out`" in said[0]  # (tune has no --leave-batch-out of its own)
    res = run(["cv", str(path), "--optimizer", "sgd", "--lr", "1e6", "--epochs", "5", "--folds", "2",
               "--member-folds", "1", "--no-baseline"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "Error: fold 1: training diverged" in res.output or "Error: fold 2: training diverged" in res.output


def test_a_grid_missing_a_semicolon_says_so():
    with pytest.raises(ConfigError, match="separate options with ';'"):
        parse_grid("lr=1e-3,1e-2 l2=0,1e-4")
    assert len(parse_grid("class-weight=none|case=1,ctrl=3")["class_weight"]) == 2  # its values hold '=' themselves
    assert_clean_error(run(["tune", "x.csv", "--grid", "dropout=0,0.2, l2=0"]), "--grid", "dropout", "';'", code=2)


@pytest.mark.parametrize("grid_text, flags", [("hidden=none|8; dropout=0.5", ["--lr", "0.01"]),
                                              ("optimizer=adamw,sgd", ["--momentum", "0.5", "--lr", "0.01"])])
def test_a_refit_models_config_trains_it_again(tmp_path, grid_text, flags):
    """A refit whose chosen setting makes an option moot (dropout under hidden=none, momentum under adamw) stored it,
    and `info --config-out` wrote a file `train --config` refused ("--dropout: ... --hidden none has none")."""
    path = write_table(tmp_path, task="multiclass", n_patients=30, seed=2)
    out, config, again = tmp_path / "m.mlp", tmp_path / "m.toml", tmp_path / "again.mlp"
    res = run(["tune", path, "--folds", "2", "--epochs", "3", "--grid", grid_text, *flags, "--refit", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert run(["info", str(out), "--config-out", str(config)]).exit_code == 0
    res = run(["train", path, "--config", str(config), "-o", str(again)])
    assert res.exit_code == 0, res.output
    import zipfile

    with zipfile.ZipFile(out) as a, zipfile.ZipFile(again) as b:
        assert a.read("weights.npz") == b.read("weights.npz")  # the moot values had no effect


def test_results_and_the_table_keep_every_digit_of_a_setting(tmp_path):
    """--results in CSV wrote settings to 6 significant digits: lr=0.0012345678 and 0.00123456789 were two rows of
    0.00123457, and a value copied back trained another model."""
    path = write_table(tmp_path, task="multiclass", n_patients=20, seed=2)
    res = run(["tune", path, "--folds", "2", "--epochs", "2", "--grid", "lr=0.0012345678,0.00123456789; l2=1.23456789e-7",
               "--results", str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(tmp_path / "r.csv")
    assert sorted(rows["lr"]) == [0.0012345678, 0.00123456789] and set(rows["l2"]) == {1.23456789e-7}
    assert "lr=0.0012345678 " in res.output and "l2=1.23456789e-07" in res.output
    assert grid.value_text(0.001) == "0.001" and grid.value_text(1e-05) == "1e-05"  # exact values stay short
