"""Audit of the prediction sets' statistics: what the notes and evaluate say about them matches what the sets do
(fixed seeds and wide margins, so the statistical checks cannot flake)."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlpcli import conformal, model_io
from mlpcli.conformal import SetPredictor, class_probabilities, label_scores
from mlpcli.errors import ConfigError
from mlpcli.predict.trust import Trust, Uncertainty, evaluation_report, held_out_trust, risk_coverage
from cli_helpers import assert_clean_error, run
from tables import make_table


def _draw(rng, n: int, k: int, sharp):
    """Rows whose true class probabilities are known: logits z (n, k), classes y drawn from softmax(z)."""
    z = rng.normal(size=(n, k)) * np.reshape(sharp, (-1, 1))
    P = np.exp(z - z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1)
    return z, np.minimum(y, k - 1), P


def _model(cal, k: int):
    """The parts of a model that Trust reads, around a calibration."""
    return SimpleNamespace(task="multiclass", classes=[f"c{j}" for j in range(k)], members=[None], temperature=None,
                           conformal=cal, ood=None, output_activation=lambda: "softmax")


def test_aps_empty_sets_fall_on_confident_samples_whatever_the_accuracy_and_the_note_says_so():
    """The note said APS sets are empty 'when the level asks for less than the model's accuracy': at level 0.9
    a model of accuracy ~0.68 still empties sets, and only those of samples more confident than most."""
    rng = np.random.default_rng(0)
    z, y, P = _draw(rng, 12000, 4, 2.0)
    cal = conformal.calibrate(z[:2000], y[:2000], np.zeros(2000, dtype=int), None, "softmax", None, "validation")
    accuracy = (P[2000:].argmax(axis=1) == y[2000:]).mean()
    assert accuracy < 0.75
    sets = SetPredictor(cal, 4, 1, "softmax", None, 0.9, "aps").sets([z[2000:]])
    empty = sets.sum(axis=1) == 0
    assert empty.mean() > 0.002  # about 0.7 %
    top = P[2000:].max(axis=1)
    assert top[empty].min() > np.quantile(top, 0.6)  # never an uncertain sample's set
    trust = Trust(_model(cal, 4), Uncertainty(coverage=0.9))
    trust.columns(P[2000:], P[2000:].argmax(axis=1), np.array([f"c{j}" for j in P[2000:].argmax(axis=1)]),
                  {"set": sets})
    note = next(n for n in trust.notes() if n.startswith("APS sets are empty"))
    assert "model's accuracy (" not in note and "confident samples" in note
    # abstaining on those sets abstains on confident calls: refused, with the score whose empty sets are uncertain
    with pytest.raises(ConfigError, match="--abstain-on-empty-set: APS sets .* --conformal-score lac"):
        Uncertainty(coverage=0.9, abstain_on_empty_set=True).check(_model(cal, 4))
    Uncertainty(coverage=0.9, score="lac", abstain_on_empty_set=True).check(_model(cal, 4))


def test_the_level_note_counts_patients_when_rows_are_weighted():
    """120 held-out rows of 30 patients (4 each): at 0.99 every set holds every class because 99 patients are
    needed, not rows; the note said 'more held-out rows than the model has' (it had 120)."""
    rng = np.random.default_rng(1)
    z, y, _ = _draw(rng, 120, 3, 1.0)
    groups = np.repeat(np.arange(30), 4)
    cal = conformal.calibrate(z, y, np.zeros(120, dtype=int), groups, "softmax", None, "validation")
    trust = Trust(_model(cal, 3), Uncertainty(coverage=0.99))
    assert trust.sets.trivial.all()
    (note,) = trust.level_notes()
    assert "from 99 held-out patients" in note and "the model has 30)" in note
    assert Trust(_model(cal, 3), Uncertainty(coverage=0.95)).level_notes() == []  # 19 patients suffice
    plain = conformal.calibrate(z[:60], y[:60], np.zeros(60, dtype=int), None, "softmax", None, "validation")
    (note,) = Trust(_model(plain, 3), Uncertainty(coverage=0.99)).level_notes()
    assert "from 99 held-out rows" in note and "the model has 60)" in note
    (note,) = Trust(_model(cal, 3), Uncertainty(coverage=0.95, mondrian=True)).level_notes()
    assert "from 19 held-out patients of the class" in note


def test_patient_weights_keep_the_per_patient_guarantee_where_counting_rows_breaks_it():
    """Patients the model is right about with 6 samples, patients it is overconfident about (their classes
    nearly random) with 1: counting rows under-covers a new patient's sample; weighting each patient once
    keeps the level (40 seeds, one sample per new patient)."""

    def patients(rng, hard):
        z, y, _ = _draw(rng, len(hard), 3, np.where(hard, 0.2, 3.0))  # the truth
        return z * 3.0 / np.where(hard, 0.2, 3.0)[:, None], y  # the model: as confident for every patient

    levels = (0.8, 0.9)
    weighted, unweighted = {lv: [] for lv in levels}, {lv: [] for lv in levels}
    for seed in range(40):
        rng = np.random.default_rng(500 + seed)
        hard = rng.random(200) < 0.4
        size = np.where(hard, 1, 6)
        groups = np.repeat(np.arange(200), size)
        z, y = patients(rng, hard[groups])
        zt, yt = patients(rng, rng.random(3000) < 0.4)
        member = np.zeros(len(groups), dtype=int)
        for lv in levels:
            for store, g in ((weighted, groups), (unweighted, None)):
                cal = conformal.calibrate(z, y, member, g, "softmax", None, "validation")
                sets = SetPredictor(cal, 3, 1, "softmax", None, lv, "aps").sets([zt])
                store[lv].append(sets[np.arange(3000), yt].mean())
    for lv in levels:
        assert np.mean(weighted[lv]) >= lv - 0.005, (lv, np.mean(weighted[lv]))
        assert np.mean(unweighted[lv]) < lv - 0.02, (lv, np.mean(unweighted[lv]))


def test_evaluation_report_gives_coverage_with_each_group_counted_once():
    rng = np.random.default_rng(2)
    z, y, P = _draw(rng, 400, 3, 1.5)
    cal = conformal.calibrate(z[:200], y[:200], np.zeros(200, dtype=int), None, "softmax", None, "validation")
    trust = Trust(_model(cal, 3), Uncertainty(coverage=0.8))
    sets = trust.membership([z[200:]])
    groups = np.repeat(np.arange(50), 4)[rng.permutation(200)]
    doc = evaluation_report(trust, P[200:], y[200:], P[200:].argmax(axis=1), sets, None, None, None, groups=groups)
    covered = sets[np.arange(200), y[200:]]
    per_group = pd.Series(covered).groupby(groups).mean().mean()
    assert doc["sets"]["coverage"] == pytest.approx(covered.mean())
    assert doc["sets"]["coverage_per_group"] == pytest.approx(per_group)
    assert doc["sets"]["n_groups"] == 50
    assert evaluation_report(trust, P[200:], y[200:], P[200:].argmax(axis=1), sets, None, None,
                             None)["sets"]["coverage_per_group"] is None


def test_evaluate_reports_the_per_patient_coverage_that_predicts_sets_give(tmp_path):
    """A test table where some patients have 6 samples and others 1: evaluate's per-patient coverage is the
    mean over patients of the share of their samples covered, from predict's own pred_set column."""
    train = make_table(n_patients=60, per_patient=2, seed=11, signal=1.0)
    train.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "train.csv"), "-o", str(model), "--epochs", "20", "--hidden", "8", "-q"])
    assert res.exit_code == 0, res.output
    test = make_table(n_patients=40, per_patient=1, seed=12, signal=1.0)
    many = test[test["patient_id"].isin(test["patient_id"].unique()[:8])]
    copies = [many.assign(sample_id=many["sample_id"] + f"_{r}") for r in range(5)]
    test = pd.concat([test, *copies], ignore_index=True)
    test.to_csv(tmp_path / "test.csv", index=False)
    res = run(["evaluate", str(model), str(tmp_path / "test.csv"), "--coverage", "0.8", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    res = run(["predict", str(model), str(tmp_path / "test.csv"), "--coverage", "0.8", "-o",
               str(tmp_path / "p.csv"), "-q"])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(tmp_path / "p.csv", keep_default_na=False).merge(test[["sample_id", "patient_id", "label"]])
    covered = np.array([label in s.split("|") for label, s in zip(pred["label"], pred["pred_set"])])
    sets = doc["trust"]["sets"]
    assert sets["coverage"] == pytest.approx(covered.mean())
    assert sets["coverage_per_group"] == pytest.approx(pd.Series(covered).groupby(pred["patient_id"]).mean().mean())
    assert sets["n_groups"] == 40
    assert any("with each --group counted once" in n for n in doc["notes"])


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
