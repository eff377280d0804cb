"""`mlpcli cv` and `mlpcli tune`, fourteenth review: --grid given twice, grid values that do not go together,
options the grid replaces, a fold's data errors naming the fold, warnings naming every fold they came from, and
the words of the summaries (repeats, ungrouped leave-batch-out, grid values as the grid writes them)."""

from __future__ import annotations

import pytest

from mlpcli import data
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError
from mlpcli.model_selection import cross_validation, grid, tuning
from mlpcli.model_selection.tuning import PointResult, TuneResult
from tables import make_table, write_table
from cli_helpers import assert_clean_error, run

FAST = ["--hidden", "4", "--epochs", "2", "--patience", "2", "--quiet"]


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
    assert "1–1" not in row and row.split("│")[-2].strip() == "1"


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
    assert_clean_error(res, "Error: fold 1: the largest class has 3 samples")


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
