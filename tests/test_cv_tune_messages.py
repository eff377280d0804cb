"""What `cv` and `tune` say about their folds and settings: grids given twice or holding values that do not go
together, options a grid replaces, a fold's data error named by its fold, repeats, the best setting's score
called optimistic, means over fewer folds, and nested folds too small."""

import json

import pytest

from mlpcli import data
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError
from mlpcli.model_selection import cross_validation, grid, tuning
from mlpcli.model_selection.cross_validation import CVResult, FoldScore
from mlpcli.model_selection.tuning import PointResult, TuneResult
from cli_helpers import assert_clean_error, run, table_cells
from tables import make_table, write_table


def _dataset(**kw) -> data.Dataset:
    df = make_table(**kw)
    return data.Dataset.from_frame(df, data.resolve_roles(df.columns)[0])


# ── tune's grid ───────────────────────────────────────────────────────────────────────────────────────────


def test_grid_given_twice_combines_both_grids(tmp_path):
    """`--grid "lr=1e-3" --grid "l2=0,1e-4"` tuned l2 alone: click kept the last --grid and dropped the first
    without a word. Now the grids are one, so an option in both is "given twice"."""
    path = write_table(tmp_path, n_patients=12, n_features=4)
    res = run(["tune", path, "--grid", "lr=1e-3", "--grid", "l2=0,1e-4", "--folds", "2", "--json", *FAST])
    assert res.exit_code == 0, res.output
    assert '"grid_size": 2' in res.stdout and '"lr": [\n      0.001' in res.stdout
    res = run(["tune", path, "--grid", "lr=1e-3,1e-2", "--grid", "lr=0.1", *FAST])
    assert_clean_error(res, "--grid: lr is given twice", code=2)


def test_grid_values_that_do_not_go_together_are_refused_before_the_data_is_read(tmp_path, monkeypatch):
    """batch-size=1 and batchnorm=true are each valid alone: the setting failed when its first fit ran (after
    every fit before it), exit 1, naming --batch-size and --batchnorm, which the user never gave."""
    res = run(["tune", str(tmp_path / "not_read.csv"), "--grid", "batch-size=8,1; batchnorm=true", *FAST])
    assert_clean_error(res, "--grid: the setting batch-size=1 batchnorm=true is not valid",
                       "use --batch-size 2 or more", code=2)

    def no_fit(*args, **kwargs):
        raise AssertionError("a setting was fitted before the grid was checked")

    monkeypatch.setattr(cross_validation, "fit_and_score", no_fit)
    with pytest.raises(ConfigError, match="the setting batch-size=1 batchnorm=true is not valid"):
        tuning.tune(_dataset(n_patients=12, n_features=4), TrainOptions(hidden=[4], epochs=2),
                    {"batch_size": [8, 1], "batchnorm": [True]}, folds=2)


def test_an_option_the_grid_also_sets_is_said_to_be_replaced(tmp_path):
    """`--lr 0.5 --grid "lr=1e-3,1e-2"` used the grid's values and said nothing of the --lr given; the best-epoch
    column read "2–2" where every fold agreed."""
    path = write_table(tmp_path, n_patients=12, n_features=4)
    res = run(["tune", path, "--lr", "0.5", "--grid", "lr=1e-3", "--folds", "2", "--epochs", "1", "--hidden", "4"])
    assert res.exit_code == 0, res.output
    assert "the grid's values replace --lr (given on the command line or in --config)" in res.stderr
    row = next(line for line in res.stdout.splitlines() if "0.001" in line)
    assert "1–1" not in row and table_cells(row)[-1] == "1"


def test_grid_values_are_written_as_the_grid_syntax_writes_them():
    """Messages said `batchnorm=True top-var=None` (Python, not the grid's `true`/`none`), and --results wrote an
    unset option as an empty cell, read back as NaN (and 50 as 50.0)."""
    assert grid.format_setting({"batchnorm": True, "top_var": None, "hidden": [], "lr": 0.001}) == \
        "batchnorm=true top-var=none hidden=none lr=0.001"
    points = [PointResult(index=i, setting={"top_var": v}, scores=[0.5], mean=0.5, sd=0.0, rank=i + 1)
              for i, v in enumerate([None, 50])]
    result = TuneResult(task="multiclass", metric="balanced_accuracy", higher_is_better=True,
                        space={"top_var": [None, 50]}, grid_size=2, strategy="KFold", folds=2, repeats=1, points=points)
    column = list(result.results_frame()["top_var"])
    assert column == ["none", 50]
    assert grid.parse_grid("top-var=" + ",".join(map(str, column)))["top_var"] == [None, 50]  # round trip


# ── cv ───────────────────────────────────────────────────────────────────────────────────────────────────────


def test_a_folds_data_error_names_the_fold(tmp_path):
    """10 patients of one sample, 2 folds: a fold's training part (5 rows) is too small for its early-stopping
    split. The error quoted the fold's numbers ("the largest class has 3 samples": the table has 5) without
    saying it was about a fold; tune named the fold, cv did not."""
    path = write_table(tmp_path, task="binary", n_patients=10, per_patient=1, n_features=3)
    res = run(["cv", path, "--folds", "2", "--member-folds", "1", *FAST])
    assert_clean_error(res, "data.csv: fold 1: the largest class has 3 samples")  # (said of the table it reads)


def test_repeats_are_named_and_a_warning_names_every_fold_it_came_from(tmp_path):
    """5 folds x 2 repeats was "over 10 folds"; a warning every fold gave named the first fold only."""
    path = write_table(tmp_path, n_patients=12, n_features=4)
    res = run(["cv", path, "--folds", "2", "--repeats", "2", "--member-folds", "1", "--top-var", "50", *FAST])
    assert res.exit_code == 0, res.output
    assert "over 2 folds × 2 repeats (higher is better)" in res.stdout
    lines = [line for line in res.stderr.splitlines() if "--top-var 50" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: repeat 1 fold 1, within its training part")
    assert lines[0].endswith("(also repeat 1 fold 2, repeat 2 fold 1 and repeat 2 fold 2)"), lines


def test_leave_batch_out_without_groups_does_not_call_the_split_grouped(tmp_path):
    """--no-group: the forecast compared the held-out batches with "a grouped validation split" that was not."""
    path = write_table(tmp_path, n_patients=12, n_features=4)
    res = run(["cv", path, "--leave-batch-out", "--no-group", "--member-folds", "1", *FAST])
    assert res.exit_code == 0, res.output
    forecast = next(line for line in res.stdout.splitlines() if line.startswith("new-batch forecast"))
    assert "on a validation split within the training batches" in forecast and "grouped" not in forecast


FAST = ["--hidden", "4", "--epochs", "2", "--patience", "2", "--quiet"]


# ── tune: selection bias ────────────────────────────────────────────────────────────────────────────────────


def _points(means):
    return [PointResult(index=i, setting={"lr": 0.1 * (i + 1)}, scores=[m or float("nan")], mean=m, sd=0.0)
            for i, m in enumerate(means)]


def test_the_best_settings_score_is_said_to_be_optimistic(tmp_path):
    """`best: lr=0.01 — balanced accuracy 0.384 ± 0.037 over 3 folds` read as an estimate of the tuned model; it is
    the highest of the grid's scores on those folds (selection bias), and only --nested said so. --refit's
    out-of-fold score on the same samples was printed bare too."""
    path = write_table(tmp_path, n_patients=12, n_features=4)
    out = tmp_path / "best.mlp"
    res = run(["tune", path, "--grid", "lr=1e-2,1e-1", "--folds", "2", "--refit", "--member-folds", "2",
               "-o", str(out), *FAST])
    assert res.exit_code == 0, res.output
    best = next(line for line in res.stdout.splitlines() if line.startswith("best:"))
    assert "(optimistic: the highest of 2 settings on these folds; --nested for an honest estimate)" in best
    assert "optimistic: the setting was chosen from 2 on these samples" in res.stdout
    # in --json's notes as well (the library returns it as data)
    notes = tuning.selection_note(_points([0.7, 0.6]), nested=False)
    assert "highest of 2 settings" in notes and "--nested" in notes
    assert "outer folds" in tuning.selection_note(_points([0.7, 0.6, 0.5]), nested=True)


def test_no_optimism_caveat_without_a_choice(tmp_path):
    """One setting (or one that survived, the others failed) was not chosen among others: no caveat."""
    assert tuning.selection_note(_points([0.7]), nested=False) is None
    assert tuning.selection_note(_points([0.7, None]), nested=False) is None
    path = write_table(tmp_path, n_patients=12, n_features=4)
    res = run(["tune", path, "--grid", "lr=1e-2", "--folds", "2", "--json", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert not any("optimistic" in n for n in doc["notes"])


# ── cv: what a mean is over ─────────────────────────────────────────────────────────────────────────────────


def _fold(fold, auc, held_out=None):
    return FoldScore(label=("cv", 0, fold), repeat=0, fold=fold, n_train=10, n_test=5, n_groups_train=None,
                     n_groups_test=None, metrics={"balanced_accuracy": 0.5 + fold / 10, "roc_auc": auc}, score=0.5,
                     best_epoch=1, epochs_run=1, seconds=0.0, held_out=held_out)


def test_summary_counts_the_folds_a_metric_is_defined_in():
    """AUC undefined in one fold (a test part of one class) was left out of the mean silently, and the summary
    (and the table's headline) said "over 3 folds"."""
    result = CVResult(task="multiclass", metric="balanced_accuracy", higher_is_better=True, classes=["a", "b"],
                      target_names=["label"], strategy="leave one batch out (3 folds)", n_folds=3, repeats=1,
                      folds=[_fold(0, 0.6, "B1"), _fold(1, 0.8, "B2"), _fold(2, None, "B3")], seconds=0.0)
    s = result.summary()
    assert s["roc_auc"]["mean"] == 0.7 and s["roc_auc"]["folds"] == 2
    assert s["roc_auc"]["undefined"] == ["fold 3 (held-out batch B3)"]
    assert s["balanced_accuracy"]["folds"] == 3 and s["balanced_accuracy"]["undefined"] == []
    assert result.to_dict()["summary"]["roc_auc"]["folds"] == 2


def test_cv_table_says_which_means_are_over_fewer_folds(tmp_path):
    """A held-out batch holding one class has no AUC: the mean row averaged the other two batches and nothing
    on the page said so."""
    df = make_table(n_patients=18, n_features=4)
    df.loc[df.label == "typeC", "batch"] = "B3"
    df.loc[(df.label != "typeC") & (df.batch == "B3"), "batch"] = "B1"
    path = tmp_path / "confounded.csv"
    df.to_csv(path, index=False)
    res = run(["cv", str(path), "--leave-batch-out", "--member-folds", "2", *FAST])
    assert res.exit_code == 0, res.output
    assert "ROC AUC (one-vs-rest): mean and SD over 2 of 3 folds (undefined in fold 3 (held-out batch B3))" \
        in res.stdout
    assert "balanced accuracy: mean and SD" not in res.stdout  # defined in every fold: no line
    doc = json.loads(run(["cv", str(path), "--leave-batch-out", "--member-folds", "2", "--json", *FAST]).stdout)
    assert doc["summary"]["roc_auc_ovr"]["folds"] == 2 and doc["summary"]["balanced_accuracy"]["folds"] == 3


# ── tune --nested: an error that points somewhere ───────────────────────────────────────────────────────────


def test_nested_inner_fold_errors_suggest_more_outer_folds(tmp_path):
    """12 patients, 4 per class, --outer-folds 3: --folds 3 said "use --folds 2 or fewer", --folds 2 said "use
    --folds 3": no --folds works in an outer training part of 8 patients. More outer folds does (4 works)."""
    path = write_table(tmp_path, n_patients=12, n_features=4)
    for folds in ("2", "3"):
        res = run(["tune", path, "--grid", "lr=1e-2,1e-3", "--folds", folds, "--nested", "--outer-folds", "3", *FAST])
        assert_clean_error(res, "outer fold 1 (--nested)", "raise --outer-folds (now 3)")


def test_leave_batch_out_oof_names_each_rows_batch(tmp_path):
    """cv --leave-batch-out --oof gave only a fold number, a group of batches: which batch a row was held out
    with had to be joined back from the sample sheet."""
    import pandas as pd

    from cli_helpers import run
    from tables import make_table

    df = make_table(n_patients=18, seed=2)
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    oof = tmp_path / "oof.csv"
    res = run(["cv", str(path), "--leave-batch-out", "--epochs", "2", "--hidden", "4", "--member-folds", "2", "-q",
               "--oof", str(oof)])
    assert res.exit_code == 0, res.output
    out = pd.read_csv(oof).merge(df[["sample_id", "batch"]], on="sample_id")
    assert (out["held_out_batch"] == out["batch"]).all()
    assert out.groupby("fold")["held_out_batch"].nunique().min() >= 1
