"""Cross-validation: grouped folds, isolation of the test rows, parallel = sequential, and `mlpcli cv`."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpcli import data
from mlpcli.model_selection import cross_validation as cv
from mlpcli.model_selection import fitting, splits
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError, DataError
from mlpcli.parallel import Plan
from tables import make_table, write_table
from cli_helpers import run, assert_clean_error

FAST = ["--hidden", "8", "--epochs", "8", "--patience", "4", "--quiet"]
OPTIONS = TrainOptions(hidden=[8], epochs=8, patience=4)


def dataset(task="multiclass", no_group=False, **kw):
    df = make_table(task, **kw)
    target = "lab0,lab1,lab2" if task == "multilabel" else "label"
    roles, _ = data.resolve_roles(df.columns, target=target, no_group=no_group,
                                  drop=["patient_id"] if no_group else [])
    return data.Dataset.from_frame(df, roles)


# ── folds ────────────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression"])
def test_grouped_folds_never_share_a_group_and_cover_every_row(task):
    ds = dataset(task, n_patients=30, per_patient=3)
    folds, strategy = splits.kfold(ds, 5, repeats=3, seed=7)
    assert len(folds) == 15 and "by patient_id" in strategy
    for f in folds:
        assert not set(ds.groups[f.train]) & set(ds.groups[f.test])
        assert len(np.intersect1d(f.train, f.test)) == 0 and len(f.train) + len(f.test) == ds.n_samples
    for r in range(3):
        tests = np.concatenate([f.test for f in folds if f.repeat == r])
        np.testing.assert_array_equal(np.sort(tests), np.arange(ds.n_samples))  # each row tested once per repeat
    first = [tuple(f.test) for f in folds if f.repeat == 0]
    second = [tuple(f.test) for f in folds if f.repeat == 1]
    assert first != second  # repeats reshuffle


def test_grouped_classification_folds_are_stratified():
    ds = dataset("multiclass", n_patients=30)
    for f in splits.kfold(ds, 5)[0]:
        assert set(ds.y[f.test]) == {0, 1, 2}


SKLEARN_FIXED_SHUFFLE = tuple(int(x) for x in __import__("sklearn").__version__.split(".")[:2]) >= (1, 8)


@pytest.mark.skipif(not SKLEARN_FIXED_SHUFFLE, reason="scikit-learn < 1.8 shuffles StratifiedGroupKFold's groups "
                    "out of step with their counts (its PR #32540)")
@given(sizes=st.lists(st.integers(1, 5), min_size=4, max_size=120), n_classes=st.integers(2, 12),
       n_folds=st.integers(2, 10), seed=st.integers(0, 2**31 - 1), data_=st.data())
@settings(max_examples=150, deadline=None)
def test_stratified_group_folds_are_scikit_learns(sizes, n_classes, n_folds, seed, data_):
    """The same folds, bit for bit, as StratifiedGroupKFold(shuffle=True) over random layouts: groups of
    several classes, ties in every score, string or integer group labels."""
    from sklearn.model_selection import StratifiedGroupKFold
    import warnings

    groups = np.repeat(np.arange(len(sizes)) * 7 % 101, sizes)
    if data_.draw(st.booleans()):
        groups = np.array([f"patient {g}" for g in groups], dtype=object)
    y = np.array(data_.draw(st.lists(st.integers(0, n_classes - 1), min_size=len(groups), max_size=len(groups))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = list(StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed).split(
                np.zeros((len(y), 1)), y, groups))
        except ValueError:  # more folds than groups or than the largest class: the callers refuse these first
            return
    ours = splits.stratified_group_folds(y, groups, n_folds, seed)
    assert len(ours) == len(expected)
    for (train, test), (train_ref, test_ref) in zip(ours, expected):
        np.testing.assert_array_equal(test, test_ref)
        np.testing.assert_array_equal(train, train_ref)


def test_stratified_group_folds_balance_classes_whatever_the_seed():
    """Every fold's class shares stay near the data's (the stratification scikit-learn < 1.8 lost with
    shuffle=True): 200 patients of one class each, 4 classes of unequal size, 5 folds."""
    rng = np.random.default_rng(0)
    patient_class = rng.choice(4, size=200, p=[0.55, 0.25, 0.15, 0.05])
    groups = np.repeat(np.arange(200), 3)
    y = patient_class[groups]
    for seed in range(5):
        folds = splits.stratified_group_folds(y, groups, 5, seed)
        for train, test in folds:
            assert not set(groups[train]) & set(groups[test])
            shares = np.bincount(y[test], minlength=4) / np.bincount(y, minlength=4)
            np.testing.assert_allclose(shares, 0.2, atol=0.04)
        np.testing.assert_array_equal(np.sort(np.concatenate([t for _, t in folds])), np.arange(len(y)))


def test_folds_without_groups():
    ds = dataset("binary", no_group=True, n_patients=20)
    folds, strategy = splits.kfold(ds, 4)
    assert strategy.startswith("StratifiedKFold")
    assert all(set(ds.y[f.test]) == {0, 1} for f in folds)
    folds, strategy = splits.kfold(dataset("regression", no_group=True, n_patients=20), 4)
    assert strategy.startswith("KFold")


@pytest.mark.parametrize("folds,needle", [
    (41, "--folds 41 is more than the 40 groups in 'patient_id'"),
    (14, "class 'typeB' has 13 group(s)"),
])
def test_impossible_fold_counts_are_data_errors(folds, needle):
    ds = dataset("multiclass")  # 40 patients, classes of 14, 13 and 13 patients
    with pytest.raises(DataError) as exc:
        splits.kfold(ds, folds)
    assert needle in str(exc.value) and "--folds" in str(exc.value)


def test_impossible_fold_count_without_groups():
    ds = dataset("binary", no_group=True, n_patients=4, per_patient=1)
    with pytest.raises(DataError, match="class 'case' has 2 sample"):
        splits.kfold(ds, 3)
    with pytest.raises(ConfigError, match="--folds must be a whole number >= 2"):
        splits.kfold(ds, 1)


# ── fitting on a fold ────────────────────────────────────────────────────────────────────────────────────


def test_test_rows_are_used_for_scoring_only(monkeypatch):
    """Preprocessing and early stopping see the fold's training rows only."""
    ds = dataset("multiclass", n_patients=24)
    fold = splits.kfold(ds, 3)[0][0]
    test_X = {tuple(row) for row in ds.X[fold.test]}
    seen = {"pre": [], "fit": []}
    real_pre_fit, real_fit = data.Preprocessor._fit, fitting.fit  # _fit: behind both fit and fit_transform

    def spy_pre_fit(self, X, names, *a, **k):
        seen["pre"].append(np.array(X))
        return real_pre_fit(self, X, names, *a, **k)

    def spy_fit(net, loss, X_fit, y_fit, X_val, y_val, *a, **k):
        seen["fit"].append((len(X_fit), len(X_val)))
        return real_fit(net, loss, X_fit, y_fit, X_val, y_val, *a, **k)

    monkeypatch.setattr(data.Preprocessor, "_fit", spy_pre_fit)
    monkeypatch.setattr(fitting, "fit", spy_fit)
    score = cv.fit_and_score(ds, fold.train, fold.test, OPTIONS)
    # what train ships, inside the fold: its members (and the reference preprocessing), none seeing a test row
    assert score.members >= 2 and len(seen["fit"]) == score.members and len(seen["pre"]) == score.members + 1
    assert not any(tuple(r) in test_X for X in seen["pre"] for r in X)
    for n_fit, n_val in seen["fit"]:
        assert n_fit + n_val == len(fold.train)  # each member's early-stopping rows come out of the training part
    assert score.n_test == len(fold.test) and 0 <= score.score <= 1


def test_cross_validate_summary_and_oof_frame():
    ds = dataset("multiclass", n_patients=24)
    res = cv.cross_validate(ds, OPTIONS, folds=3, repeats=2)
    assert len(res.folds) == 6 and res.metric == "balanced_accuracy" and res.higher_is_better
    s = res.summary()
    scores = [f.score for f in res.folds]
    assert s["balanced_accuracy"]["mean"] == pytest.approx(np.mean(scores))
    assert s["balanced_accuracy"]["sd"] == pytest.approx(np.std(scores, ddof=1))
    oof = res.oof_frame(ds)
    assert len(oof) == 2 * ds.n_samples
    # predict's columns (and train --oof's): the truth under the target's name, pred_<target>, prob_<class>
    assert list(oof.columns[:6]) == ["sample_id", "patient_id", "repeat", "fold", "label", "pred_label"]
    assert {"prob_typeA", "prob_typeB", "prob_typeC"} <= set(oof.columns)
    first = oof[oof["repeat"] == 1]
    assert list(first["sample_id"]) == list(ds.ids)  # row order within a repeat
    assert list(first["label"]) == [ds.classes[k] for k in ds.y]
    doc = res.to_dict()
    json.dumps(doc, allow_nan=False, default=float)


def test_regression_lower_is_better():
    res = cv.cross_validate(dataset("regression", n_patients=20), OPTIONS, folds=3)
    assert res.metric == "rmse" and not res.higher_is_better
    oof = res.oof_frame(dataset("regression", n_patients=20))
    assert {"label", "pred_label"} <= set(oof.columns)


def test_two_local_workers_give_the_sequential_results():
    ds = dataset("binary", n_patients=24)
    seq = cv.cross_validate(ds, OPTIONS, folds=3, repeats=2)
    par = cv.cross_validate(ds, OPTIONS, folds=3, repeats=2, plan=Plan(n_jobs=2))
    assert [(f.repeat, f.fold) for f in par.folds] == [(f.repeat, f.fold) for f in seq.folds]
    for a, b in zip(seq.folds, par.folds):
        np.testing.assert_array_equal(a.proba, b.proba)
        assert a.metrics == b.metrics


def test_val_data_does_not_apply():
    with pytest.raises(ConfigError, match="--val-data does not apply"):
        cv.cross_validate(dataset(n_patients=12), TrainOptions(val_data="x.csv"), folds=3)


# ── the command ──────────────────────────────────────────────────────────────────────────────────────────


def test_cli_cv_rich_table(tmp_path):
    path = write_table(tmp_path, n_patients=24)
    res = run(["cv", path, "--folds", "3", *FAST[:-1]])
    assert res.exit_code == 0, res.output
    for needle in ("group: patient_id", "Cross-validation: StratifiedGroupKFold by patient_id, 3 folds", "bal. acc.",
                   "mean", "SD", "balanced accuracy:", "higher is better"):
        assert needle in res.output, needle


@pytest.mark.parametrize("task,extra", [
    ("binary", []), ("multilabel", ["--target", "lab0,lab1,lab2"]), ("regression", []),
])
def test_cli_cv_json_and_oof_every_task(tmp_path, task, extra):
    path = write_table(tmp_path, task=task, n_patients=18)
    oof = tmp_path / "oof.tsv.gz"
    res = run(["cv", path, "--folds", "3", "--json", "--oof", str(oof), *FAST, *extra])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["task"] == task and len(doc["per_fold"]) == 3 and doc["oof"] == str(oof)
    main = "rmse" if task == "regression" else "balanced_accuracy"
    assert doc["metric"] == main and doc["summary"][main]["mean"] is not None
    frame = pd.read_csv(oof, sep="\t")
    assert len(frame) == 54 and {"repeat", "fold", "sample_id"} <= set(frame.columns)


def test_cli_cv_repeats_and_two_jobs_match_sequential(tmp_path):
    path = write_table(tmp_path, n_patients=18)
    a = json.loads(run(["cv", path, "--folds", "3", "--repeats", "2", "--json", *FAST]).stdout)
    b = json.loads(run(["cv", path, "--folds", "3", "--repeats", "2", "--json", "--n-jobs", "2", *FAST]).stdout)
    assert [f["metrics"] for f in a["per_fold"]] == [f["metrics"] for f in b["per_fold"]]
    assert len(a["per_fold"]) == 6 and a["repeats"] == 2


def test_cli_cv_errors(tmp_path):
    path = write_table(tmp_path, n_patients=12)
    assert_clean_error(run(["cv", path, "--folds", "13", *FAST]), "--folds 13 is more than the 12 groups")
    assert run(["cv", path, "--folds", "1", *FAST]).exit_code == 2
    assert_clean_error(run(["cv", path, "--scheduler", "tcp://127.0.0.1:8786", *FAST]), "--backend dask", code=2)
    assert_clean_error(run(["cv", path, "--val-data", path, *FAST]), "--val-data does not apply", code=2)
    assert_clean_error(run(["cv", path, "--oof", str(tmp_path / "no" / "oof.csv"), *FAST]), "--oof")
    assert_clean_error(run(["cv", path, "--n-jobs", "0", *FAST]), "--n-jobs", code=2)
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "no").exists()


def test_cli_help_has_examples():
    for command in ("cv", "tune"):
        res = run([command, "--help"])
        assert res.exit_code == 0 and "Examples:" in res.output
        assert "\n    mlpcli " + command in res.output  # the \b block keeps example lines unwrapped


def test_cli_cv_with_trains_defaults_scores_the_shipped_ensemble(tmp_path):
    """No train option given: every auto default (members, portfolio, epochs, lr) resolves inside the folds."""
    path = write_table(tmp_path, n_patients=24, n_features=6)
    res = run(["cv", path, "--folds", "2", "--json", "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert len(doc["per_fold"]) == 2 and all(f["members"] >= 2 and f["hidden"] in ([], [128]) for f in doc["per_fold"])
    assert "each fold trains what `train` ships" in doc["notes"][0]


def test_leave_batch_out_says_when_a_fold_never_trains_on_a_class(tmp_path):
    """Each batch holding one class: every fold's model lacks the held-out batch's class, and the warning
    names the class and the batch (it only said the other classes were absent from the test rows)."""
    df = make_table("multiclass", seed=3)
    df["batch"] = "b_" + df["label"].astype(str)  # the class is the batch
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    res = run(["cv", str(path), "--leave-batch-out", "--member-folds", "2", *FAST])
    assert res.exit_code == 0, res.output
    for label in sorted(df["label"].unique()):
        assert (f"(held-out batch b_{label}): class '{label}' has no training rows" in res.stderr), res.stderr
    assert "classes" in res.stderr and "are absent from the test rows" in res.stderr


def test_cv_names_its_member_folds_option_and_one_batch_is_its_own_error(tmp_path):
    df = make_table("multiclass", seed=3)
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    assert_clean_error(run(["cv", str(path), "--member-folds", "60", *FAST]), "--member-folds 60", "--member-folds")
    res = run(["cv", str(path), "--member-folds", "60", *FAST])
    assert "--folds" not in res.output.replace("--member-folds", "")
    df["batch"] = "only"
    df.to_csv(path, index=False)
    assert_clean_error(run(["cv", str(path), "--leave-batch-out", *FAST]), "one batch ('only')", "at least two")


def test_the_largest_seed_works_with_repeats_and_a_larger_one_is_a_usage_error(tmp_path):
    """--seed 4294967295 (the largest RandomState takes) failed with --repeats 2 (seed + 1 overflowed into
    NumPy's "Seed must be between 0 and 2**32 - 1", exit 1, no option named), and so did any seed above it."""
    from mlpcli.config import MAX_SEED, offset_seed

    assert offset_seed(7, 2) == 9 and offset_seed(MAX_SEED, 1) == 0
    path = write_table(tmp_path, n_patients=20, n_features=4)
    res = run(["cv", path, "--repeats", "2", "--folds", "2", "--seed", str(MAX_SEED), "--epochs", "2", "--hidden", "4",
               "-q"])
    assert res.exit_code == 0, res.output
    res = run(["train", path, "--seed", str(MAX_SEED + 1), "--epochs", "2", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 2 and "--seed" in res.output and "4,294,967,295" in res.output


def test_cv_coverage_on_a_regression_target_is_refused_not_ignored(tmp_path):
    path = write_table(tmp_path, task="regression", n_patients=12, n_features=4)
    res = run(["cv", path, "--coverage", "0.9", "--folds", "2", "--epochs", "2", "--hidden", "4"])
    assert_clean_error(res, "--coverage", "class targets", code=2)


def test_cv_oof_without_an_id_column_numbers_rows_as_predict_and_train_do(tmp_path):
    """Without a sample id, `cv --oof` wrote 0-based row numbers where `predict` and `train --oof` write 1-based
    ones: joined on `row`, every out-of-fold prediction landed on the next sample."""
    df = make_table("multiclass", n_patients=12, n_features=4).drop(columns="sample_id")
    path = tmp_path / "noid.csv"
    df.to_csv(path, index=False)
    oof_cv, oof_train = tmp_path / "cv.csv", tmp_path / "train.csv"
    assert run(["cv", str(path), "--folds", "3", "--member-folds", "1", "--oof", str(oof_cv), *FAST]).exit_code == 0
    res = run(["train", str(path), "--folds", "2", "-o", str(tmp_path / "m.mlp"), "--oof", str(oof_train), *FAST])
    assert res.exit_code == 0, res.output
    cv_rows, train_rows = pd.read_csv(oof_cv), pd.read_csv(oof_train)
    assert sorted(cv_rows["row"]) == list(range(1, len(df) + 1)) == sorted(train_rows["row"])
    # the row number names the sample whose truth stands beside it
    by_row = cv_rows.set_index("row")["label"]
    assert all(by_row[r] == df["label"].iloc[r - 1] for r in by_row.index)
    assert all(by_row[r] == truth for r, truth in zip(train_rows["row"], train_rows["label"]))


def test_cv_refit_is_described_as_the_one_network_each_fold_scores(tmp_path):
    """With --refit each fold's model is one network refitted on the fold's training part (what `train --refit`
    ships); the notes called it "a 2-member cross-fitted ensemble" and per_fold said members 2."""
    path = write_table(tmp_path, n_patients=12, n_features=4)
    res = run(["cv", path, "--folds", "2", "--member-folds", "2", "--refit", "--json", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [f["members"] for f in doc["per_fold"]] == [1, 1]
    assert "ensemble" not in doc["notes"][0] and "one network refitted" in doc["notes"][0]


def test_a_folds_own_warnings_name_it_as_the_table_does(tmp_path):
    """A fit's own warnings (here its early-stopping split inside the fold) were prefixed with the internal task
    label, 0-based: "cv/0/2" for the fold the table calls 3, "grid/0/0/0" in tune."""
    path = write_table(tmp_path, n_patients=40)  # mc table: the member hold-outs leave a batch out of validation
    res = run(["cv", path, "--folds", "3", "--member-folds", "1", *FAST])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if "only in the training rows" in line]
    assert lines and all(re.match(r"warning: fold [123], within its training part: batch ", line) for line in lines), lines
    res = run(["tune", path, "--folds", "3", "--repeats", "2", "--grid", "l2=0,1e-3", *FAST])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if "only in the training rows" in line]
    assert lines and all(re.match(r"warning: repeat [12] fold [123], within", line) for line in lines), lines
    assert "cv/" not in res.stderr and "grid/" not in res.stderr


def test_cv_says_what_log1p_auto_decided_in_its_folds():
    """`train` says whether --log1p auto applied log(1 + x); `cv`, whose folds each decide on their training part,
    said nothing."""
    from tables import SAMPLE

    res = run(["cv", SAMPLE, "--folds", "2", "--member-folds", "1", "--epochs", "2", "--hidden", "none",
               "--no-baseline", "--json"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    said = [n for n in notes if n.startswith("--log1p auto")]
    # once, though each fold's note gives its own skewness (two notes of "1 of 2 folds ... decided otherwise" before)
    assert len(said) == 1 and said[0].startswith("--log1p auto: applied log(1 + x)") and "folds" not in said[0], notes
    res = run(["cv", SAMPLE, "--folds", "2", "--member-folds", "1", "--epochs", "2", "--hidden", "none",
               "--no-baseline", "--no-log1p", "--json"])
    assert not any("--log1p auto" in n for n in json.loads(res.stdout)["notes"])
