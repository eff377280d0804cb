"""Review 13, predict on a new cohort: --fail-on-shift keeps its evidence (the shift report), fails on genes
the cohort did not measure, OOD p-values valid with the class-relative part, abstention counts that add up,
and a table whose id column has another name."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run
from mlpcli.ood import OODBasis
from tables import make_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("review13_predict")
    table = make_table("multiclass", n_patients=40, per_patient=2, n_features=8, seed=2)
    path = root / "train.csv"
    table.to_csv(path, index=False)
    model = root / "m.mlp"
    res = run(["train", str(path), "--folds", "1", "--epochs", "3", "--hidden", "4", "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    cohort = make_table("multiclass", n_patients=30, per_patient=2, n_features=8, seed=5)
    return str(model), cohort


def test_fail_on_shift_writes_the_shift_report_and_says_where(trained, tmp_path):
    """--fail-on-shift stopped before the shift report was written: the one file that shows why it failed
    was missing. The report is written, the predictions are not, and the error names the report."""
    model, cohort = trained
    shifted = cohort.copy()
    features = [c for c in cohort.columns if c.startswith("f")]
    shifted[features] = shifted[features] * 10 + 30
    data, out, report = tmp_path / "shifted.csv", tmp_path / "p.csv", tmp_path / "shift.csv"
    shifted.to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(out), "--fail-on-shift", "--shift-report", str(report)])
    assert_clean_error(res, "reaches --fail-on-shift mild", "no predictions written",
                       f"the shift report is in {report}")
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    frame = pd.read_csv(report)
    assert sorted(frame["feature"]) == sorted(features) and frame["mean_shifted"].any()
    # without --shift-report, the error says how to get it
    res = run(["predict", model, str(data), "-o", str(out), "--fail-on-shift", "shift"])
    assert_clean_error(res, "--shift-report FILE")


def test_fail_on_shift_fails_on_features_the_cohort_did_not_measure(trained, tmp_path):
    """Features at 0 in every sample though never 0 in training drew a warning, yet --fail-on-shift let the
    run pass with exit 0 and the summary said 'cohort shift none'."""
    model, cohort = trained
    zeroed = cohort.copy()
    zeroed[["f06", "f07"]] = 0.0  # the noise features: the means test alone stays quiet
    data, out = tmp_path / "zeroed.csv", tmp_path / "p.csv"
    zeroed.to_csv(data, index=False)
    plain = run(["predict", model, str(data), "-o", str(out)])
    assert plain.exit_code == 0 and "2 features 0 in every sample" in plain.output, plain.output
    out.unlink()
    res = run(["predict", model, str(data), "-o", str(out), "--fail-on-shift", "shift"])
    assert_clean_error(res, "2 features are 0 in every one of the 30 patients", "f06, f07", "--fill-missing mean")
    assert not out.exists()


def _basis(parts: np.ndarray) -> OODBasis:
    """A class-relative OOD basis whose held-out values of the two parts are ``parts`` (m, 2)."""
    basis = OODBasis(mean=np.zeros(1), components=np.zeros((1, 1)), reference=np.zeros((0, 1)),
                     reference_residual=np.zeros(0), calibration=np.zeros(0),
                     reference_label=np.zeros(0, dtype=np.int64), class_scale=np.ones(1))
    basis.part_calibration = np.sort(parts, axis=0)
    basis.calibration = np.sort(basis.combine(parts))
    return basis


def test_ood_p_values_with_the_class_relative_part_are_valid():
    """The two-part score put a sample beyond every held-out row by either part at p = 1 / (m + 1), which
    about 2 / (m + 1) of in-distribution samples reached (m = 19: 10 % at p <= 0.05); P(p <= a) <= a now."""
    rng = np.random.default_rng(0)
    m, reps = 19, 2000
    p = np.empty(reps)
    for i in range(reps):
        rows = np.abs(rng.normal(size=(m + 1, 2)))
        basis = _basis(rows[:m])
        p[i] = basis.p_value(basis.combine(rows[m:]))[0]
    for a in (0.05, 0.1, 0.2, 0.5):
        assert (p <= a + 1e-12).mean() <= a + 0.02, (a, (p <= a).mean())
    assert (p <= 0.5).mean() >= 0.45  # valid, not useless
    far = _basis(np.abs(rng.normal(size=(m, 2))))
    # well beyond every held-out row: the smallest p-value; just beyond the last one: tied with the other part's
    assert far.p_value(np.array([np.inf]))[0] == pytest.approx(1 / (m + 1))
    assert far.p_value(np.array([1.0 + 1e-9]))[0] == pytest.approx(2 / (m + 1))


def test_ood_p_values_stay_valid_in_the_far_tail():
    """The tie between a sample beyond every held-out row and the last-ranked row of the other part is broken by
    how far each lies beyond its runner-up: still P(p <= 1/(m+1)) <= 1/(m+1) on exchangeable rows."""
    rng = np.random.default_rng(1)
    m, reps = 9, 4000
    p = np.empty(reps)
    for i in range(reps):
        rows = np.abs(rng.standard_cauchy(size=(m + 1, 2)))  # heavy tails: large gaps at the top
        basis = _basis(rows[:m])
        p[i] = basis.p_value(basis.combine(rows[m:]))[0]
    for a in (0.1, 0.2, 0.3):
        assert (p <= a + 1e-12).mean() <= a + 0.015, (a, (p <= a).mean())


def test_ood_floor_warning_counts_the_two_parts(trained, tmp_path):
    """A one-network model whose held-out rows are too few to reach --ood-alpha: the warning says so, and the
    note no longer promises 'about 1 %' flagged when none can be."""
    model, cohort = trained
    data = tmp_path / "c.csv"
    cohort.to_csv(data, index=False)
    res = run(["predict", model, str(data), "--ood", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "smallest p-value is 1/" in res.output and "none can be flagged at this level" in res.output


def test_abstention_note_says_when_both_reasons_overlap(trained, tmp_path):
    """'56 of 168 unassigned (10 below --min-confidence; 56 with an empty set)': the reasons' counts did not
    add up; the note counts the samples abstained for both."""
    model, cohort = trained
    data, out = tmp_path / "c.csv", tmp_path / "p.csv"
    cohort.to_csv(data, index=False)
    res = run(["predict", model, str(data), "--coverage", "0.3", "--conformal-score", "lac", "--abstain-on-empty-set",
               "--min-confidence", "0.6", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    import json

    trust = json.loads(res.stdout)["trust"]
    frame = pd.read_csv(out)
    assert trust["abstained"] == int((frame["pred_label"] == "unassigned").sum())
    both = trust["abstained_for_both"]
    assert trust["low_confidence"] + trust["empty_set_abstained"] - both == trust["abstained"]
    assert both > 0 and f"{both} of them both" in " ".join(json.loads(res.stdout)["notes"])


def test_a_table_without_the_id_column_is_told_how_to_keep_its_ids(trained, tmp_path):
    """Ids under another column name were dropped silently as 'a column the model does not use', and the
    predictions were numbered by row: the note now says so and names --id."""
    model, cohort = trained
    data, out = tmp_path / "c.csv", tmp_path / "p.csv"
    cohort.rename(columns={"sample_id": "barcode"}).to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "'barcode'" in res.output and "rows are numbered: --id COLUMN" in res.output
    assert list(pd.read_csv(out).columns)[0] == "row"
    assert run(["predict", model, str(data), "-o", str(out), "--id", "barcode", "-q"]).exit_code == 0
    assert list(pd.read_csv(out)["barcode"][:2]) == ["S0000", "S0001"]


def test_fail_on_shift_says_when_it_could_not_judge(trained, tmp_path):
    """One sample passed --fail-on-shift unjudged (the check needs 5 rows) with only a note under --quiet's
    silence: a pipeline gate that did not run now warns."""
    model, cohort = trained
    data, out = tmp_path / "one.csv", tmp_path / "p.csv"
    cohort.iloc[:1].to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(out), "--fail-on-shift", "-q"])
    assert res.exit_code == 0 and out.exists()
    assert "--fail-on-shift could not judge this table" in res.stderr and "it has 1" in res.stderr


def test_ood_p_values_from_the_parts_are_exact_at_the_floor_and_never_above_the_bound():
    """``p_values_of`` breaks the tie of a sample beyond every held-out row by one part with the other part's own
    gap (the full-conformal p of the tie-broken score): at the floor it reaches its level, never more, and it is
    never above ``p_value``'s bound, which uses the larger gap of the two parts."""
    rng = np.random.default_rng(3)
    m, reps = 19, 4000
    exact, bound = np.empty(reps), np.empty(reps)
    for i in range(reps):
        rows = np.abs(rng.normal(size=(m + 1, 2)))
        basis = _basis(rows[:m])
        exact[i] = basis.p_values_of(rows[m:])[0]
        bound[i] = basis.p_value(basis.combine(rows[m:]))[0]
    assert (exact <= bound + 1e-12).all()
    floor = 1 / (m + 1)
    assert 0.035 <= (exact <= floor + 1e-12).mean() <= floor + 0.01  # at its level, where the bound is below it
    for a in (0.1, 0.2):
        assert (exact <= a + 1e-12).mean() <= a + 0.015
