"""Review 19, trusting predictions on a new cohort: prediction sets against a hand computation, a class held out
of training, the options on models they do not apply to, and cv's OOD rate on fold models that cannot flag."""

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run
from mlpcli import model_io
from mlpcli.conformal import class_probabilities, label_scores
from mlpcli.errors import ConfigError
from mlpcli.predict.trust import held_out_trust, risk_coverage
from tables import make_table

GENES = [f"f{j:02d}" for j in range(6)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A 3-class model trained without typeC (so a binary model), a regression and a multi-label model."""
    tmp = tmp_path_factory.mktemp("trust19")
    full = make_table("multiclass", n_patients=60, per_patient=2, n_features=6, seed=3, signal=3.0)
    full[full["label"] != "typeC"].to_csv(tmp / "train.csv", index=False)
    test = make_table("multiclass", n_patients=90, per_patient=1, n_features=6, seed=4, signal=3.0)
    test.to_csv(tmp / "test.csv", index=False)
    make_table("regression", n_patients=20, per_patient=1, n_features=6, seed=5).to_csv(tmp / "reg.csv", index=False)
    make_table("multilabel", n_patients=20, per_patient=1, n_features=6, seed=6).to_csv(tmp / "ml.csv", index=False)
    paths = {"tmp": tmp, "test": str(tmp / "test.csv"), "reg": str(tmp / "reg.csv"), "ml": str(tmp / "ml.csv")}
    for key, data, extra in (("bin", "train.csv", []), ("reg_model", "reg.csv", []),
                             ("ml_model", "ml.csv", ["--target", "lab0,lab1,lab2"])):
        out = str(tmp / f"{key}.mlp")
        res = run(["train", str(tmp / data), "-o", out, "--epochs", "5", "--folds", "2", "--hidden", "8", "-q",
                   *extra])
        assert res.exit_code == 0, res.output
        paths[key] = out
    return paths


def test_lac_sets_match_a_hand_cv_plus_computation(models):
    """pred_set is, for every sample, {y : Σ_i w_i 1[s_i < 1 − p_k(i)(x, y)] < level (W + 1)} over the stored
    held-out scores, each compared under the member that held its row out (CV+)."""
    known = pd.read_csv(models["test"])
    known = known[known["label"] != "typeC"]
    known.to_csv(models["tmp"] / "known.csv", index=False)
    out = models["tmp"] / "sets.csv"
    res = run(["predict", models["bin"], str(models["tmp"] / "known.csv"), "--coverage", "0.8", "--conformal-score",
               "lac", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, keep_default_na=False)["pred_set"].tolist()
    m = model_io.load(models["bin"])
    blocks = []
    m.predict_output(known[GENES].to_numpy(), member_logits=blocks)
    cal = m.conformal
    count = np.zeros((len(known), 2))
    for k in range(len(m.members)):
        P = class_probabilities(np.concatenate([b[k] for b in blocks]), m.output_activation(), m.temperature)
        held = cal.member == k
        count += ((cal.lac[held][None, None, :] < label_scores(P, "lac")[:, :, None]) * cal.weight[held]).sum(axis=2)
    sets = count < 0.8 * (cal.weight.sum() + 1)
    want = ["|".join(str(m.classes[j]) for j in np.flatnonzero(row)) for row in sets]
    assert got == want
    covered = [label in s.split("|") for label, s in zip(known["label"], got)]
    assert np.mean(covered) >= 0.7  # a learnable table: near the level, not a degenerate answer
    assert 1 <= np.mean([len(s.split("|")) if s else 0 for s in got]) < 2


def test_a_class_held_out_of_training_is_flagged_or_uncertain(models):
    out = models["tmp"] / "unseen.csv"
    res = run(["predict", models["bin"], models["test"], "--coverage", "0.9", "--conformal-score", "lac",
               "--ood-alpha", "0.05", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    p = pd.read_csv(out, keep_default_na=False)
    truth = pd.read_csv(models["test"])["label"]
    caught = p["ood"].astype(str).eq("True") | (p["set_size"] != 1)
    assert caught[truth == "typeC"].mean() >= 0.5
    assert p["ood"].astype(str).eq("True")[truth != "typeC"].mean() < 0.2


@pytest.mark.parametrize("option", [["--coverage", "0.9"], ["--min-confidence", "0.6"], ["--ood"],
                                    ["--ood-alpha", "0.05"], ["--coverage", "0.9", "--mondrian", "--ood"]],
                         ids=["coverage", "min-confidence", "ood", "ood-alpha", "all"])
@pytest.mark.parametrize("kind", ["reg", "ml"])
def test_trust_options_on_regression_and_multilabel_models_are_usage_errors(models, kind, option):
    out = models["tmp"] / f"never_{kind}.csv"
    res = run(["predict", models[f"{kind}_model"], models[kind], *option, "-o", str(out)])
    assert_clean_error(res, option[0], "binary and multiclass models", code=2)
    assert not out.exists()
    res = run(["evaluate", models[f"{kind}_model"], models[kind], *option])
    assert_clean_error(res, option[0], code=2)


def test_held_out_trust_says_when_the_fold_model_cannot_flag(models):
    """cv's per-fold OOD rate: a fold model with fewer than 99 held-out patients cannot flag anything at
    p < 0.01, so its rate 0 is no evidence that a held-out site resembles training; it says so."""
    m = model_io.load(models["bin"])
    test = pd.read_csv(models["test"])
    test = test[test["label"] != "typeC"]
    X = test[GENES].to_numpy() + 5.0  # a shifted site: far from every training sample
    y = np.array([list(m.classes).index(v) for v in test["label"]])
    patients = len(m.ood.calibration)
    assert patients < 99
    at_01 = held_out_trust(m, X, y)
    # undefined, not 0: cv --json reported 0.0 where its table says n/a (review 21)
    assert at_01["ood_rate"] is None and at_01["ood_floor"] == pytest.approx(1 / (patients + 1))
    assert len(at_01["notes"]) == 1 and f"1/{patients + 1}" in at_01["notes"][0] and "0.01" in at_01["notes"][0]
    at_20 = held_out_trust(m, X, y, alpha=0.2)
    assert at_20["notes"] == [] and at_20["ood_rate"] > 0.9


@pytest.mark.parametrize("kw", [{"level": 1.5}, {"level": 0}, {"alpha": 1.0}, {"alpha": float("nan")}],
                         ids=["level-1.5", "level-0", "alpha-1", "alpha-nan"])
def test_held_out_trust_checks_its_levels(models, kw):
    m = model_io.load(models["bin"])
    with pytest.raises(ConfigError, match="level|alpha"):
        held_out_trust(m, np.zeros((2, 6)), np.array([0, 1]), **kw)


def test_risk_coverage_does_not_depend_on_the_order_of_tied_samples():
    """Four samples of confidence exactly 1 (a saturated model), two of them wrong: accepting half of them has an
    expected risk of 1/2 whichever rows come first in the table (it was 1 or 0 by row order)."""
    confidence = np.array([1.0, 1.0, 1.0, 1.0, 0.5])
    first = risk_coverage(confidence, np.array([False, False, True, True, True]))
    last = risk_coverage(confidence, np.array([True, True, False, False, True]))
    assert first["aurc"] == pytest.approx(last["aurc"]) == pytest.approx(np.mean([0.5, 0.5, 0.5, 0.5, 0.4]))
    assert first["risk"] == pytest.approx(last["risk"]) and first["risk"][40] == pytest.approx(0.5)
    # without ties, the plain running error rate
    rng = np.random.default_rng(0)
    c, ok = rng.random(50), rng.random(50) < 0.7
    running = np.cumsum(~ok[np.argsort(-c)]) / np.arange(1, 51)
    assert risk_coverage(c, ok)["aurc"] == pytest.approx(running.mean())
