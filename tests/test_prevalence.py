"""--prevalence: a cohort's known class mix. Bayes' rule moves the probabilities from the training mix to it
(exactly the cohort's posterior under label shift), the balanced labels stay, argmax labels follow, and the
prediction sets weigh their calibration rows for the mix so that coverage holds in the cohort."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import conformal, model_io
from mlpcli.decision import Decision
from mlpcli.errors import OptionError
from mlpcli.predict import evaluate, predict_stream
from mlpcli.prevalence import Prevalence, adjust, given, parse
from cli_helpers import run
from tables import make_table

MU, SD = np.array([-5.0, 0.0, 1.0]), 1.0  # class 0 apart, classes 1 and 2 overlapping


def _posterior(x: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """(n, 3) the true P(c | x) of the Gaussian classes above under the class mix ``mix``."""
    joint = np.exp(-0.5 * ((x[:, None] - MU) / SD) ** 2) * mix
    return joint / joint.sum(axis=1, keepdims=True)


def test_adjust_gives_the_cohorts_own_posterior():
    x = np.random.default_rng(0).normal(size=500) * 3
    training, cohort = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.1, 0.3])
    moved = adjust(_posterior(x, training), training, cohort)
    np.testing.assert_allclose(moved, _posterior(x, cohort), atol=1e-12)
    np.testing.assert_allclose(adjust(_posterior(x, training), training, training), _posterior(x, training), atol=1e-15)


def test_adjust_keeps_a_binary_models_one_column():
    p = np.array([[0.5], [0.9], [0.01]])  # P(positive), trained at 50 %
    moved = adjust(p, [0.5, 0.5], [0.9, 0.1])
    assert moved.shape == (3, 1)
    # odds times 0.1 / 0.9: 1 -> 1/9, 9 -> 1, 1/99 -> 1/891
    np.testing.assert_allclose(moved[:, 0], [0.1, 0.5, 1 / 892], rtol=1e-12)
    np.testing.assert_allclose(adjust(p[:, 0], [0.5, 0.5], [0.9, 0.1]), moved[:, 0])


def test_balanced_labels_stay_and_argmax_labels_follow_the_mix():
    x = np.random.default_rng(1).normal(size=2000) * 3
    training, cohort = np.array([0.2, 0.5, 0.3]), np.array([0.05, 0.15, 0.8])
    P = _posterior(x, training)
    moved = adjust(P, training, cohort)
    balanced = Decision("balanced", tuple(training))
    np.testing.assert_array_equal(balanced.with_shares(cohort).classes("multiclass", moved),
                                  balanced.classes("multiclass", P))
    before, after = Decision("argmax").classes("multiclass", P), Decision("argmax").classes("multiclass", moved)
    assert (after == 2).mean() > (before == 2).mean() + 0.05  # the class common in the cohort is called more
    np.testing.assert_array_equal(after, _posterior(x, cohort).argmax(axis=1))


@pytest.mark.parametrize("score", ["lac", "aps"])
def test_weighted_sets_keep_their_coverage_in_a_cohort_of_another_mix(score):
    training = np.ones(3) / 3
    for cohort, unweighted_off in ((np.array([0.02, 0.49, 0.49]), "under"), (np.array([0.9, 0.05, 0.05]), "over"),
                                   (np.array([0.1, 0.8, 0.1]), "under")):
        weighted, plain = [], []
        for seed in range(40):
            rng = np.random.default_rng(seed)
            y = rng.choice(3, 500, p=training)
            logits = np.log(_posterior(rng.normal(MU[y], SD), training))
            cal = conformal.calibrate(logits, y, np.zeros(500, dtype=int), None, "softmax", None, "validation", seed)
            yt = rng.choice(3, 2000, p=cohort)
            new = [np.log(_posterior(rng.normal(MU[yt], SD), training))]
            for out, w in ((weighted, cohort / training), (plain, None)):
                sets = conformal.SetPredictor(cal, 3, 1, "softmax", None, 0.9, score, label_weights=w).sets(new)
                out.append(sets[np.arange(len(yt)), yt].mean())
        assert abs(np.mean(weighted) - 0.9) < 0.01, (cohort, np.mean(weighted))
        if score == "lac":  # the training mix's sets miss the level here: its hard classes are common, or rare
            # (APS sets, which grow on hard samples, came within 0.01 of it unweighted)
            assert np.mean(plain) < 0.88 if unweighted_off == "under" else np.mean(plain) > 0.93, (cohort, np.mean(plain))


def test_sets_are_weighed_against_the_held_out_rows_mix_not_the_training_weights():
    # class weights (--class-weight balanced) make the probabilities carry equal shares, but the held-out rows the
    # sets are calibrated on keep the table's own mix: the weights must be the cohort's over theirs
    rng = np.random.default_rng(7)
    table_mix, cohort = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.45, 0.45])
    weighted, by_training = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        y = rng.choice(3, 600, p=table_mix)
        logits = np.log(_posterior(rng.normal(MU[y], SD), np.ones(3) / 3))  # equal shares, as class weights make
        cal = conformal.calibrate(logits, y, np.zeros(600, dtype=int), None, "softmax", None, "validation", seed)
        np.testing.assert_allclose(cal.class_mix(3), np.bincount(y, minlength=3) / 600)
        yt = rng.choice(3, 2000, p=cohort)
        new = [np.log(_posterior(rng.normal(MU[yt], SD), np.ones(3) / 3))]
        for out, w in ((weighted, cal.label_shift_weights(cohort)), (by_training, cohort / (np.ones(3) / 3))):
            sets = conformal.SetPredictor(cal, 3, 1, "softmax", None, 0.9, "lac", label_weights=w).sets(new)
            out.append(sets[np.arange(len(yt)), yt].mean())
    assert abs(np.mean(weighted) - 0.9) < 0.01, np.mean(weighted)
    assert np.mean(by_training) < 0.88, np.mean(by_training)  # weighed by the training shares: short of the level
    # a class without held-out rows cannot be ruled out: an infinite weight, in every set
    cal = conformal.calibrate(np.zeros((4, 3)), np.array([0, 0, 1, 1]), np.zeros(4, dtype=int), None, "softmax", None,
                              "validation")
    w = cal.label_shift_weights(np.array([0.3, 0.3, 0.4]))
    assert np.isinf(w[2]) and np.isfinite(w[:2]).all()
    sets = conformal.SetPredictor(cal, 3, 1, "softmax", None, 0.5, "lac", label_weights=w).sets([np.zeros((5, 3))])
    assert sets[:, 2].all()


def test_mondrian_sets_do_not_change_with_the_mix():
    rng = np.random.default_rng(3)
    y = rng.choice(3, 400)
    logits = np.log(_posterior(rng.normal(MU[y], SD), np.ones(3) / 3))
    cal = conformal.calibrate(logits, y, np.zeros(400, dtype=int), None, "softmax", None, "validation")
    new = [np.log(_posterior(rng.normal(size=300) * 3, np.ones(3) / 3))]
    same = conformal.SetPredictor(cal, 3, 1, "softmax", None, 0.8, "aps", True).sets(new)
    moved = conformal.SetPredictor(cal, 3, 1, "softmax", None, 0.8, "aps", True, np.array([3.0, 0.1, 0.5])).sets(new)
    np.testing.assert_array_equal(moved, same)


def test_given_mixes_and_their_errors():
    classes, training = ["a", "b", "c"], np.array([0.5, 0.3, 0.2])
    mix = given(parse("a=0.2, b=0.3", classes), classes, training)  # the last class gets what is left
    assert mix.cohort == pytest.approx((0.2, 0.3, 0.5)) and mix.training == pytest.approx(tuple(training))
    assert given([0.2, 0.3, 0.5002], classes, training).cohort == pytest.approx((0.2 / 1.0002, 0.3 / 1.0002,
                                                                                 0.5002 / 1.0002))
    series = pd.Series({"c": 0.5, "a": 0.2, "b": 0.3})  # value_counts(normalize=True) order, not the model's
    assert given(series, classes, training).cohort == pytest.approx((0.2, 0.3, 0.5))
    for text, said in (("a=0.2,z=0.8", "'z' is not one of the model's classes"),
                       ("a=0.2", "missing 'b', 'c'"),
                       ("a=0.5,b=0.7", "leaving 0 for 'c'"),
                       ("a=0.2,b=0.79999", "leaving 1e-05 for 'c'; give its share"),  # a class forgotten
                       ("a=0.2,b=0.3,c=0.6", "add up to 1.1, not 1"),
                       ("a=0,b=0.5", "between 0 and 1"),
                       ("a=0.2,a=0.3", "'a' is given twice"),
                       ("a=x", "'x', is not a number"),
                       ("a:0.2", "is not CLASS=SHARE"),
                       ("0.3", "a share alone does not say which class it is of")):
        with pytest.raises(OptionError, match="--prevalence") as err:
            given(parse(text, classes), classes, training)
        assert said in str(err.value), (text, str(err.value))
    with pytest.raises(OptionError, match="""write a class whose name holds ',' in double quotes: '"T1,T2"=0.2'"""):
        parse("T1,T2=0.4,a=0.6", ["a", "T1,T2"])
    # so written, it is named; a class written with spaces around it ('  b ' as Excel leaves it) by its name alone
    assert given(parse('"T1,T2"=0.4,a=0.6', ["a", "T1,T2"]), ["a", "T1,T2"], [0.5, 0.5]).cohort == pytest.approx((0.6, 0.4))
    assert given(parse("b=0.4, a=0.6", ["a", "  b "]), ["a", "  b "], [0.5, 0.5]).cohort == pytest.approx((0.6, 0.4))
    mix = given(parse("a=0.6", ["a", "T1,T2"]), ["a", "T1,T2"], [0.5, 0.5])  # it gets what is left
    assert mix.cohort == pytest.approx((0.6, 0.4))
    with pytest.raises(OptionError, match="2 shares for the model's 3 classes"):
        given([0.5, 0.5], classes, training)


@pytest.fixture(scope="module")
def screening(tmp_path_factory):
    """A binary model trained on 50 % cases, and a cohort of 16 cases in 316 samples (a screening mix). Its classes
    sort as ('case', 'ctrl'): 'ctrl' is the positive class, the one a single number's share is of."""
    d = tmp_path_factory.mktemp("prevalence")
    make_table("binary", n_patients=150, per_patient=2, n_features=8, seed=1, signal=1.0).to_csv(d / "train.csv",
                                                                                                  index=False)
    new = make_table("binary", n_patients=300, per_patient=2, n_features=8, seed=2, signal=1.0)
    pd.concat([new[new.label == "ctrl"], new[new.label == "case"].iloc[:16]]).to_csv(d / "cohort.csv", index=False)
    res = run(["train", str(d / "train.csv"), "--epochs", "30", "--hidden", "8", "--decision", "argmax", "-q",
               "-o", str(d / "m.mlp")])
    assert res.exit_code == 0, res.output
    return d


def test_predict_moves_the_probabilities_to_the_mix_given(screening):
    d = screening
    plain = run(["predict", str(d / "m.mlp"), str(d / "cohort.csv"), "-o", str(d / "plain.csv"), "-q"])
    moved = run(["predict", str(d / "m.mlp"), str(d / "cohort.csv"), "--prevalence", "ctrl=0.95", "-o",
                 str(d / "moved.csv"), "--json"])
    assert plain.exit_code == 0 and moved.exit_code == 0, moved.output
    summary = json.loads(moved.stdout)
    training = summary["prevalence"]["training"]
    assert summary["prevalence"]["cohort"] == pytest.approx({"ctrl": 0.95, "case": 0.05})
    assert training["case"] == pytest.approx(0.5, abs=0.05)
    assert any(n.startswith("probabilities moved from the training class mix") for n in summary["notes"])
    before, after = pd.read_csv(d / "plain.csv"), pd.read_csv(d / "moved.csv")
    want = adjust(before[["prob_ctrl"]].to_numpy(), [training["case"], training["ctrl"]], [0.05, 0.95])[:, 0]
    np.testing.assert_allclose(after["prob_ctrl"], want, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(after["prob_ctrl"] + after["prob_case"], 1.0, atol=1e-6)
    assert (after["pred_label"] == "case").sum() < (before["pred_label"] == "case").sum()  # argmax: fewer cases
    assert json.loads(run(["predict", str(d / "m.mlp"), str(d / "cohort.csv"), "-o", str(d / "p.csv"),
                           "--json"]).stdout)["prevalence"] is None


def test_evaluate_reports_the_move_and_the_labels_mix(screening):
    d = screening
    res = run(["evaluate", str(d / "m.mlp"), str(d / "cohort.csv"), "--prevalence", "case=0.05", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    prev = doc["prevalence"]
    assert prev["observed"] == pytest.approx({"ctrl": 300 / 316, "case": 16 / 316})
    assert prev["log_loss_cohort_mix"] < prev["log_loss_training_mix"]  # the move is right for this cohort
    assert doc["metrics"]["log_loss"] == pytest.approx(prev["log_loss_cohort_mix"])
    # the prior-shift warning of the training mix's probabilities is gone once they carry the cohort's
    plain = json.loads(run(["evaluate", str(d / "m.mlp"), str(d / "cohort.csv"), "--json"]).stdout)
    assert any("(prior shift)" in w and "--prevalence" in w for w in plain["warnings"])
    assert not any("add up to" in w for w in doc["warnings"])
    # the temperature's own effect is reported as without --prevalence (the probabilities moved back first)
    assert doc["calibration"]["log_loss_before"] == pytest.approx(plain["calibration"]["log_loss_before"], rel=1e-6)
    assert doc["calibration"]["log_loss_after"] == pytest.approx(plain["calibration"]["log_loss_after"], rel=1e-6)
    assert prev["log_loss_training_mix"] == pytest.approx(plain["metrics"]["log_loss"], rel=1e-6)


def test_the_library_takes_a_mapping_and_the_sets_a_weighted_level(screening):
    d = screening
    model = model_io.load(d / "m.mlp")
    table = pd.read_csv(d / "cohort.csv")
    stream = predict_stream(model, table, prevalence={"case": 0.05})
    frame = pd.concat(stream)
    assert stream.summary()["prevalence"]["cohort"]["case"] == pytest.approx(0.05)
    assert list(model.classes) == ["case", "ctrl"]
    mix = Prevalence(training=tuple(model.decision.shares), cohort=(0.05, 0.95))
    again = pd.concat(predict_stream(model, table, prevalence=mix))
    pd.testing.assert_frame_equal(frame, again)
    result = evaluate(model, table, prevalence=[0.05, 0.95])
    assert result.prevalence["cohort"] == pytest.approx({"ctrl": 0.95, "case": 0.05})


@pytest.mark.parametrize("args, said", [
    (["--prevalence", "ctrl=0.5,case=0.6"], "the shares add up to 1.1, not 1"),
    (["--prevalence", "case=1.5"], "between 0 and 1"),
    (["--prevalence", "tumour=0.1"], "'tumour' is not one of the model's classes"),
])
def test_bad_mixes_are_usage_errors(screening, args, said):
    d = screening
    res = run(["predict", str(d / "m.mlp"), str(d / "cohort.csv"), "-o", str(d / "bad.csv"), *args])
    assert res.exit_code == 2 and said in res.output, res.output
    assert not (d / "bad.csv").exists()


def test_a_regression_model_refuses_a_mix(tmp_path):
    make_table("regression", n_patients=20).to_csv(tmp_path / "r.csv", index=False)
    assert run(["train", str(tmp_path / "r.csv"), "--epochs", "2", "--hidden", "4", "--folds", "1", "-q", "-o",
                str(tmp_path / "r.mlp")]).exit_code == 0
    res = run(["evaluate", str(tmp_path / "r.mlp"), str(tmp_path / "r.csv"), "--prevalence", "a=0.5"])
    assert res.exit_code == 2 and "--prevalence applies to binary and multiclass models; this model is regression" \
        in res.output, res.output


def test_quiet_summary_and_set_notes_speak_of_the_cohorts_mix(three_classes):
    d, _ = three_classes
    res = run(["predict", str(d / "m.mlp"), str(d / "train.csv"), "-o", str(d / "p.csv"), "--coverage", "0.9",
               "--prevalence", "typeA=0.05,typeB=0.5"])
    assert res.exit_code == 0, res.output
    assert "class mix" in res.output and "typeA 5 %, typeB 50 %, typeC 45 %" in res.output
    # the marginal sets' rare-class note names the classes rare in the cohort the sets are weighed for
    note = [line for line in res.output.splitlines() if "is a share of all samples" in line]
    assert note and "of the cohort (--prevalence)" in note[0] and "'typeA' (5.0%)" in note[0], res.output
    quiet = run(["predict", str(d / "m.mlp"), str(d / "train.csv"), "-o", str(d / "p.csv"), "-q",
                 "--prevalence", "typeA=0.05,typeB=0.5"])
    assert "class mix" in quiet.output and "probabilities moved to" in quiet.output
