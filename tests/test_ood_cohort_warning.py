"""`predict --ood` and `evaluate --ood`: when far more samples are flagged out-of-distribution than chance flags,
a warning; with the cohort's patients known, each patient counts once, so the samples of one far-off patient do
not read as a cohort or site that differs from the training data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run


def _patients(n_pat: int, spp: int, seed: int, far: int | None = None, far_spp: int = 0,
              site_of=None, far_site: str | None = None) -> pd.DataFrame:
    """Patients of `spp` samples each (patient `far`: `far_spp` samples, 8 SD off on four genes; every patient of
    site `far_site` likewise), three classes whose centres are fixed across seeds."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 1, (3, 12))
    rows = []
    for p in range(n_pat):
        c = p % 3
        site = site_of(p) if site_of else "S1"
        off = p == far or site == far_site
        for s in range(far_spp if p == far else spp):
            x = centres[c] + rng.normal(0, 1, 12)
            if off:
                x[:4] += 8
            rows.append({"sample_id": f"s{p}_{s}", "patient_id": f"P{p:03d}", "site": site, "label": "ABC"[c],
                         **{f"g{j}": x[j] for j in range(12)}})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ood_cohort")
    _patients(150, 2, seed=1, site_of=lambda p: f"S{p % 3 + 1}").to_csv(tmp / "train.csv", index=False)
    res = run(["train", str(tmp / "train.csv"), "--batch", "site", "--hidden", "8", "--epochs", "20", "-q",
               "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    # 30 new patients, one of them (20 samples) far from the training data: 20 of 78 samples flagged
    one_far = _patients(30, 2, seed=2, far=0, far_spp=20, site_of=lambda p: f"S{p % 3 + 1}")
    one_far.to_csv(tmp / "one_far.csv", index=False)
    one_far.drop(columns="patient_id").to_csv(tmp / "one_far_rows.csv", index=False)
    _patients(60, 2, seed=3, site_of=lambda p: f"S{p % 3 + 1}", far_site="S3").to_csv(tmp / "site.csv", index=False)
    return tmp


def _warning(res) -> str:
    return next((w for w in " ".join(res.stderr.split()).split("warning: ") if "flagged out-of-distribution, where"
                 in w), "")


def test_one_far_patient_of_thirty_is_not_a_cohort_that_differs(files):
    res = run(["predict", str(files / "m.mlp"), str(files / "one_far.csv"), "--ood", "-o", str(files / "p.csv")])
    assert res.exit_code == 0, res.output
    patients = pd.read_csv(files / "one_far.csv")["patient_id"]  # the output keeps the input's order
    flagged = pd.read_csv(files / "p.csv")["ood"].groupby(patients).mean()
    assert flagged["P000"] >= 0.9 and flagged.drop("P000").max() <= 0.5  # the one patient's samples are the flags
    assert _warning(res) == ""


def test_the_same_rows_without_their_patients_are_counted_as_rows(files):
    res = run(["predict", str(files / "m.mlp"), str(files / "one_far_rows.csv"), "--ood", "-o", str(files / "q.csv")])
    assert res.exit_code == 0, res.output
    text = _warning(res)
    assert text.startswith("20 of 78 samples (26%) flagged") and "each patient once" not in text


def test_evaluate_counts_patients_as_predict_does(files):
    res = run(["evaluate", str(files / "m.mlp"), str(files / "one_far.csv"), "--ood", "-q"])
    assert res.exit_code == 0, res.output
    assert _warning(res) == ""
    res = run(["evaluate", str(files / "m.mlp"), str(files / "one_far_rows.csv"), "--ood", "-q"])
    assert res.exit_code == 0, res.output
    assert _warning(res).startswith("20 of 78 samples (26%) flagged")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_far_site_of_many_patients_is_warned_of_per_patient_and_named(files, command):
    out = ["-o", str(files / f"{command}_site.csv")] if command == "predict" else []
    res = run([command, str(files / "m.mlp"), str(files / "site.csv"), "--ood", "-q", *out])
    assert res.exit_code == 0, res.output
    text = _warning(res)
    assert ("(counting each patient once, a mean 33% of each patient's samples, over 60 patients: the samples of one "
            "patient are flagged together)") in text
    assert "most in batch 'S3' 100% (40 of 40)" in text


def test_a_cohort_of_one_far_patient_is_warned_of_by_its_samples(files):
    """Counted per patient, one patient can never be beyond chance (its share is at most 1, its p-value alpha): a
    single patient's 20 far-off biopsies went without a word."""
    _patients(1, 0, seed=4, far=0, far_spp=20).to_csv(files / "one.csv", index=False)
    res = run(["predict", str(files / "m.mlp"), str(files / "one.csv"), "--ood", "-o", str(files / "one_p.csv")])
    assert res.exit_code == 0, res.output
    text = _warning(res)
    assert text.startswith("20 of 20 samples (100%) flagged")
    assert "(counted by samples: 1 patient, too few to judge patient by patient)" in text


def test_the_level_note_counts_patients_where_the_calibration_does(tmp_path):
    """--mondrian with a class of 6 patients of 3 samples each: "needs more held-out rows of a class" where the
    class had 18 rows and the limit was its 6 patients."""
    rows = _patients(60, 3, seed=7)
    keep_c = sorted(rows.loc[rows["label"] == "C", "patient_id"].unique())[:6]  # class C: 6 patients of 20
    rows = rows[(rows["label"] != "C") | rows["patient_id"].isin(keep_c)]
    rows.drop(columns="site").to_csv(tmp_path / "t.csv", index=False)
    assert run(["train", str(tmp_path / "t.csv"), "--hidden", "8", "--epochs", "10", "-q",
                "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "--coverage", "0.9", "--mondrian",
               "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "--coverage 0.9 needs more held-out patients of a class than the model has" in text
    assert "each patient counted once; the model has 6 in the smallest such class" in text
