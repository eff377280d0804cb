"""`evaluate --by`: which groups are flagged as worse (a gap of one sample is not, a group clearly worse on enough
samples is), for classification and regression, and the rule as the help states it."""

import numpy as np
import pytest

from mlpcli import metrics
from mlpcli.predict import subgroups
from cli_helpers import run


# ── 5. --by: a gap that rests on one sample is not "clearly worse" ───────────────────────────────────────


def _batches(seed: int = 0):
    """The sample data's case: batch B2 of 40 samples holds one HER2 sample, misread (balanced accuracy 0.75
    against ~0.9 overall); B1's errors are spread over its 128 samples."""
    rng = np.random.default_rng(seed)
    classes = ["Basal", "HER2", "LumA", "LumB"]
    y = np.array([0] * 12 + [1] + [2] * 23 + [3] * 4 + [0] * 24 + [1] * 22 + [2] * 53 + [3] * 38)
    by = np.array(["B2"] * 40 + ["B1"] * (len(y) - 40), dtype=object)
    pred = y.copy()
    pred[12] = 2
    wrong = rng.choice(np.arange(40, len(y)), 15, replace=False)
    pred[wrong] = (pred[wrong] + 1) % 4
    proba = np.eye(4)[pred] * 0.9 + 0.025
    return y, proba, classes, by


@pytest.mark.parametrize("bootstrap", [0, 200])
def test_a_group_whose_gap_is_one_sample_is_not_flagged(bootstrap):
    y, proba, classes, by = _batches()
    overall = metrics.compute("multiclass", y, proba, classes, 0.5)
    warns, notes = [], []
    groups = subgroups.by_groups("multiclass", y, proba, classes, 0.5, by, None, overall, "balanced_accuracy",
                                   bootstrap, np.random.default_rng(0), "batch", warns, notes)
    b2 = {g["value"]: g for g in groups}["B2"]
    assert b2["metrics"]["balanced_accuracy"] == pytest.approx(0.75)
    assert overall["balanced_accuracy"] - 0.75 > subgroups.BY_WORSE_SCORE  # the old rule flagged it
    assert not b2["flagged"] and not warns
    assert len(notes) == 1 and "'B2'" in notes[0] and "not flagged" in notes[0]
    assert ("95 % interval" in notes[0]) if bootstrap else ("HER2: 1 sample" in notes[0])


@pytest.mark.parametrize("bootstrap", [0, 200])
def test_a_group_clearly_worse_on_enough_samples_is_flagged(bootstrap):
    """Three batches of 12 samples per class (patients of 3 samples); B3 misreads every HER2 and LumB sample:
    flagged either way, the warning saying on what evidence."""
    classes = ["Basal", "HER2", "LumA", "LumB"]
    y = np.tile(np.repeat(np.arange(4), 12), 3)  # (144,)
    by = np.repeat(np.array(["B1", "B2", "B3"], dtype=object), 48)
    patients = np.arange(len(y)) // 3
    pred = y.copy()
    pred[(by == "B3") & np.isin(y, [1, 3])] = 2
    proba = np.eye(4)[pred] * 0.9 + 0.025
    overall = metrics.compute("multiclass", y, proba, classes, 0.5)
    warns, notes = [], []
    groups = subgroups.by_groups("multiclass", y, proba, classes, 0.5, by, patients, overall, "balanced_accuracy",
                                   bootstrap, np.random.default_rng(0), "batch", warns, notes)
    flagged = [g["value"] for g in groups if g["flagged"]]
    assert flagged == ["B3"] and len(warns) == 1 and "'B3'" in warns[0] and not notes
    assert ("95 % interval" in warns[0]) if bootstrap else ("at least 10 samples" in warns[0])


def test_a_regression_group_of_few_samples_is_not_flagged():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(60, 1))
    pred = y + rng.normal(scale=0.1, size=y.shape)
    pred[:5] += 3.0  # five samples far off: RMSE far above the overall one, on 5 samples
    by = np.array(["small"] * 5 + ["large"] * 55, dtype=object)
    overall = metrics.compute("regression", y, pred, ["t"], 0.5)
    warns, notes = [], []
    groups = subgroups.by_groups("regression", y, pred, ["t"], 0.5, by, None, overall, "rmse", 0,
                                   np.random.default_rng(0), "site", warns, notes)
    small = {g["value"]: g for g in groups}["small"]
    assert small["metrics"]["rmse"] > 1.25 * overall["rmse"] and not small["flagged"] and "5 samples" in notes[0]


def test_by_help_states_the_rule():
    res = run(["evaluate", "--help"])
    text = " ".join(res.output.split())
    assert f"at least {subgroups.BY_MIN_CLASS_SAMPLES} samples" in text and "95 % interval" in text
    assert f"the group {subgroups.BY_MIN_SAMPLES}" in text


def test_samples_without_a_patient_id_are_patients_of_their_own_not_one(tmp_path):
    """Three samples of two patients with their patient id left empty were one extra "patient" in the bootstrap
    and the per-patient coverage, without a word; each is a patient of its own now, and a note says so."""
    import json

    from tables import make_table

    table = make_table("multiclass", n_patients=30, per_patient=2, n_features=10, seed=5)
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run(["train", str(tmp_path / "t.csv"), "--hidden", "4", "--epochs", "3", "--folds", "2", "-q",
                "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    patients = table["patient_id"].nunique()
    gaps = table.copy()
    gaps.loc[[0, 2, 3], "patient_id"] = np.nan  # patient 0 loses one of its two samples, patient 1 both
    gaps.to_csv(tmp_path / "gaps.csv", index=False)
    res = run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "gaps.csv"), "--bootstrap", "20", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["bootstrap"]["n_units"] == patients - 1 + 3  # patient 1 gone, three samples of their own
    assert any("3 samples without a value in the patient column 'patient_id'" in n for n in doc["notes"])


def test_a_numeric_by_column_dominated_by_one_value_still_makes_groups():
    """250 zeros and 50 other values: the quartiles all fell on 0 and `--by` gave one bin, "Q1 [0, 49]", the whole
    table again. The common value is a group of its own, the others quantile bins."""
    values = np.r_[np.zeros(250), np.arange(1, 51)].astype(object)
    notes: list[str] = []
    groups = subgroups.binned(values, "dose", notes)
    assert sorted(set(groups)) == ["= 0", "Q1 [1, 17]", "Q2 [18, 33]", "Q3 [34, 50]"]
    assert (groups[:250] == "= 0").all()
    assert "its most common value, 0 (250 samples), and 3 quantile bins of the others" in notes[0]
    spread = np.arange(100).astype(object)  # the usual case unchanged: four bins of 25
    assert sorted(set(subgroups.binned(spread, "age", []))) == ["Q1 [0, 24]", "Q2 [25, 49]", "Q3 [50, 74]",
                                                                 "Q4 [75, 99]"]
