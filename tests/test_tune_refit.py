"""What a `tune --refit` model records of its tuning and what `info` says of it: the grid, the setting chosen and
its scores, optimism only where something was chosen, and older files without the counts."""

import json

import numpy as np
import pytest

from cli_helpers import assert_clean_error, run, table_rows
from model_files import rewrite_model
from tables import make_table


def test_info_describes_what_tune_refit_chose(tmp_path):
    """`tune --refit` stored the grid, the setting and its scores in the model, and neither `info` nor `info --json`
    showed them."""
    from cli_helpers import run
    from tables import make_table

    path = tmp_path / "t.csv"
    make_table("multiclass", n_patients=20, per_patient=2, n_features=12, seed=5).to_csv(path, index=False)
    model = tmp_path / "tuned.mlp"
    res = run(["tune", str(path), "--grid", "lr=0.001,0.01", "--folds", "2", "--refit", "-o", str(model), "-q",
               "--epochs", "3", "--hidden", "4"])
    assert res.exit_code == 0, res.output
    doc = json.loads(run(["info", str(model), "--json"]).stdout)
    tuning = doc["tuning"]
    assert tuning["grid"] == {"lr": [0.001, 0.01]} and tuning["setting"]["lr"] in (0.001, 0.01)
    text = " ".join(run(["info", str(model)]).output.split())
    assert f"chose lr={tuning['setting']['lr']:g} (" in text.replace("│ ", "")
    assert "optimistic: the best of 2 on the same folds" in text.replace("│ ", "")


FAST = ["-q", "--epochs", "3", "--folds", "2", "--member-folds", "2"]


NEW_FIELDS = ("grid_size", "evaluated", "chosen_from", "folds", "repeats")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("tuned_info")
    make_table("multiclass", n_patients=18, per_patient=2, n_features=6).to_csv(d / "mc.csv", index=False)
    make_table("regression", n_patients=18, per_patient=2, n_features=6).to_csv(d / "reg.csv", index=False)
    return d


def _refit(tables, grid: str, *extra, data: str = "mc.csv", name: str = "m.mlp") -> str:
    out = str(tables / name)
    res = run(["tune", str(tables / data), "--grid", grid, *FAST, *extra, "--refit", "-o", out])
    assert res.exit_code == 0, res.output
    return out


def _info(path) -> tuple[str, dict]:
    text, doc = run(["info", str(path)]), run(["info", str(path), "--json"])
    assert text.exit_code == 0 and doc.exit_code == 0, text.output + doc.output
    return table_rows(text.output)["tuning"], json.loads(doc.output)


@pytest.fixture(scope="module")
def one_setting(tables):
    return _refit(tables, "hidden=8,4", name="one.mlp")


@pytest.fixture(scope="module")
def random_repeats(tables):
    return _refit(tables, "hidden=8|4; lr=1e-3,1e-2", "--random", "2", "--repeats", "2", name="random.mlp")


def test_one_setting_is_not_called_optimistic_or_chosen_over_its_option(one_setting):
    """`--grid "hidden=8,4"` (one two-layer setting): info said "chose hidden=8,4 over hidden ... optimistic as the
    best of the settings' estimates", of a score nothing was chosen by."""
    text, doc = _info(one_setting)
    assert "optimistic" not in text and "over hidden" not in text, text
    assert "tuned: 1 setting," in text and "hidden=8,4" in text and "nothing was chosen" in text, text
    t = doc["tuning"]
    assert (t["grid_size"], t["evaluated"], t["chosen_from"], t["optimistic"], t["random"]) == (1, 1, 1, False, False)
    assert "optimistic" not in json.dumps(doc["held_out"])


def test_random_draw_folds_and_repeats_are_recorded_and_said(random_repeats):
    text, doc = _info(random_repeats)
    t = doc["tuning"]
    assert (t["grid_size"], t["evaluated"], t["random"], t["folds"], t["repeats"]) == (4, 2, True, 2, 2)
    assert t["chosen_from"] == 2 and t["optimistic"] is True
    assert "tuned: 2 of 4 settings (drawn at random)" in text and "2 folds × 2 repeats" in text, text
    assert "optimistic: the best of 2 on the same folds" in text, text
    # the score is of one network per fold; the model shipped is train's 2-member ensemble
    assert (t["scored_as"], t["model"], t["score_of_model"]) == ("one network per fold",
                                                                 "a 2-member cross-fitted ensemble", False)
    assert "the score is of one network per fold, the model a 2-member cross-fitted ensemble" in text, text


def test_out_of_fold_metrics_of_a_tuned_model_are_said_optimistic(random_repeats):
    """The refit's out-of-fold metrics are on the samples the setting was chosen on: tune said so, info did not."""
    out = run(["info", random_repeats]).output
    row = next(line for line in out.splitlines() if "out-of-fold metrics" in line)
    assert "optimistic: tune --refit chose the setting from 2" in row, row


def test_nested_estimate_is_named_with_its_metric(tables):
    path = _refit(tables, "hidden=8|4", "--nested", "--outer-folds", "3", name="nested.mlp")
    text, doc = _info(path)
    nested = doc["tuning"]["nested"]
    assert nested["folds"] == 3 and nested["mean"] is not None
    assert "nested CV, the honest estimate: balanced accuracy" in text and "over 3 outer folds" in text, text
    assert "the scores are of one network per fold" in text, text


def test_regression_scored_as_shipped_says_no_mismatch(tables):
    """One network per fold scored, one network shipped (--member-folds 1): nothing to say about it; RMSE, the
    lowest, is still "the best of 2"."""
    out = str(tables / "reg.mlp")
    res = run(["tune", str(tables / "reg.csv"), "--grid", "hidden=8|4", "-q", "--epochs", "3", "--folds", "2",
               "--member-folds", "1", "--refit", "-o", out])
    assert res.exit_code == 0, res.output
    text, doc = _info(out)
    assert doc["tuning"]["score_of_model"] is True and "the score is of" not in text, text
    assert "chose hidden=" in text and "(RMSE " in text and "optimistic: the best of 2" in text, text


@pytest.mark.parametrize("version", [8, 5])
def test_older_files_without_the_counts_load_and_read_true(one_setting, random_repeats, tmp_path, version):
    def older(meta):
        for key in NEW_FIELDS:
            meta["extra"]["tuning"].pop(key)
        meta["format_version"] = version

    old_random = rewrite_model(random_repeats, tmp_path / "r.mlp", older, lambda a: a)
    text, doc = _info(old_random)
    assert doc["tuning"]["evaluated"] is None and doc["tuning"]["grid_size"] == 4 and doc["tuning"]["random"] is None
    assert "a grid of 4 settings" in text and "does not record how many were evaluated" in text, text
    assert "optimistic: the best of up to 4" in text, text
    old_one = rewrite_model(one_setting, tmp_path / "o.mlp", older, lambda a: a)
    text, doc = _info(old_one)
    assert "optimistic" not in text and "nothing was chosen" in text, text


@pytest.mark.parametrize("key, value, needle", [
    ("evaluated", 9, "extra.tuning.evaluated"),  # more than the grid's 4 settings
    ("repeats", 0, "extra.tuning.repeats"),
    ("setting", 3, "extra.tuning.setting"),  # was an internal error (AttributeError) in info
    ("cv_mean", "high", "extra.tuning.cv_mean"),
    (None, "x", "extra.tuning"),  # the whole record: was an internal error in info
], ids=["evaluated-over-grid", "repeats-0", "setting-number", "mean-text", "record-text"])
def test_the_record_is_checked_on_load(random_repeats, tmp_path, key, value, needle):
    def damage(meta):
        if key is None:
            meta["extra"]["tuning"] = value
        else:
            meta["extra"]["tuning"][key] = value

    path = rewrite_model(random_repeats, tmp_path / "bad.mlp", damage, lambda a: a)
    assert_clean_error(run(["info", path]), "bad.mlp", needle)


def test_the_refit_models_notes_are_said_where_its_warnings_point_to_them(tmp_path):
    """A warning of the refit said "it is not calibrated (see the notes)", and the note was only in --json."""
    path = tmp_path / "t.csv"
    make_table("multiclass", n_patients=20, per_patient=2, n_features=12, seed=5).to_csv(path, index=False)
    res = run(["tune", str(path), "--grid", "lr=0.001,0.01", "--folds", "2", "--refit", "-o", str(tmp_path / "m.mlp"),
               "--epochs", "3", "--hidden", "4"])
    assert res.exit_code == 0, res.output
    refit = [line for line in res.output.splitlines() if line.startswith("· --refit: ")]
    assert any("not calibrated" in line for line in refit), res.output
    assert not any("numeric columns" in line for line in refit)  # the table's notes are not said twice


def test_the_refit_does_not_repeat_the_tunings_batch_warning(tmp_path):
    """A batch confounded with the label was warned of twice by `tune --refit`: the tuning's and the refit's words."""
    from tables import make_table

    df = make_table(n_patients=30, n_features=4)
    labels = sorted(df["label"].unique())
    df["batch"] = np.where(df["label"] == labels[0], "B1", "B2")
    df.to_csv(tmp_path / "conf.csv", index=False)
    res = run(["tune", str(tmp_path / "conf.csv"), "--grid", "hidden=4|none", "--folds", "2", "--epochs", "3",
               "--refit", "-o", str(tmp_path / "m.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    warned = [w for w in json.loads(res.stdout)["warnings"] if "confounded with 'batch'" in w]
    assert len(warned) == 1, warned
