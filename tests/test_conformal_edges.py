"""Prediction sets at the edges of what the held-out patients allow: exactly the patients a level needs, tiny
levels, the temperature fitted on saturated logits, class names a set cannot hold, and models whose held-out
rows shared patients with training."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from mlpcli import conformal, data, ood
from mlpcli.calibration import fit_temperature
from mlpcli.errors import ConfigError
from mlpcli.predict.trust import Trust, Uncertainty, evaluation_report
from cli_helpers import FAST, run
from tables import make_table


def _calibration(n_patients: int, per_patient: int, n_classes: int = 2) -> conformal.ConformalCalibration:
    """Held-out LAC/APS scores of ``n_patients`` patients with ``per_patient`` samples each, all of class 0."""
    n = n_patients * per_patient
    rng = np.random.default_rng(per_patient)
    groups = np.repeat(np.arange(n_patients), per_patient)
    return conformal.ConformalCalibration(aps=-rng.random(n), lac=rng.random(n) * 0.9, label=np.zeros(n, dtype=int),
                                          member=np.zeros(n, dtype=int), weight=conformal.group_weights(groups, n),
                                          source="validation")


def _model(cal, classes, **extra):
    """The parts of a model that Trust reads."""
    return SimpleNamespace(task="multiclass", classes=list(classes), members=[None], temperature=None, conformal=cal,
                           ood=None, output_activation=lambda: "softmax", **extra)


@pytest.mark.parametrize("per_patient", [3, 9, 10])
def test_exactly_the_patients_the_level_needs_let_a_set_leave_a_class_out(per_patient):
    """At 0.9, 9 patients suffice: a sample beyond every held-out score (count 9 = 0.9 · 10) leaves the class
    out. The patients' weights 1/3 summed to 8.999999999999998 < 9.000000000000002, so the class was in every
    set while no note said so (``trivial`` False)."""
    z = np.array([[-30.0, 30.0]])  # class 0 improbable: LAC score ~1, beyond every held-out one
    enough = conformal.SetPredictor(_calibration(9, per_patient), 2, 1, "softmax", None, 0.9, "lac")
    assert not enough.trivial[0] and not enough.sets([z])[0, 0]
    short = conformal.SetPredictor(_calibration(8, per_patient), 2, 1, "softmax", None, 0.9, "lac")
    assert short.trivial[0] and short.sets([z])[0, 0]
    # the note follows what the sets do (Mondrian: class b has no held-out row, so it is in every set)
    for mondrian, always in ((False, []), (True, ["b"])):
        trust = Trust(_model(_calibration(9, per_patient), ["a", "b"]), Uncertainty(coverage=0.9, mondrian=mondrian))
        assert trust.in_every_set == always and len(trust.level_notes()) == len(always)


def test_a_tiny_level_still_keeps_a_class_below_every_held_out_score():
    """The rounding slack never reaches a count of 0: at level 1e-15 a sample whose class scores below every
    held-out row keeps it (coverage 1/(n + 1) >= the level), as exact split conformal says."""
    predictor = conformal.SetPredictor(_calibration(9, 3), 2, 1, "softmax", None, 1e-15, "lac")
    assert predictor.sets([np.array([[30.0, -30.0], [-30.0, 30.0]])])[:, 0].tolist() == [True, False]


@pytest.mark.parametrize("link", ["softmax", "sigmoid"])
def test_temperature_softens_saturated_confident_mistakes(link):
    """Logit margins of 40 (right) and 60 (5 % wrong): the probabilities clipped at 1e-12 made the log loss flat
    in T over [1/3, 2.5], and the bounded search stopped there at T = 0.56, sharpening confident mistakes;
    the exact log loss falls all the way to T = 3."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    margin = np.where(rng.random(400) < 0.05, -60.0, 40.0)
    if link == "softmax":
        z = np.zeros((400, 2))
        z[np.arange(400), y] = margin / 2
        z[np.arange(400), 1 - y] = -margin / 2
    else:
        z = (np.where(y == 1, 1.0, -1.0) * margin)[:, None]
    assert fit_temperature(z, y, link) > 2.9


def test_a_class_name_with_a_bar_is_refused_for_prediction_sets():
    """pred_set joins classes with '|': with classes 'A|B', 'B', 'C' a set read 'A|B|B|C' (set_size 3)."""
    cal = _calibration(20, 1, 3)
    with pytest.raises(ConfigError, match=r"--coverage: the model's class 'A\|B' holds '\|'.*retrain"):
        Uncertainty(coverage=0.9).check(_model(cal, ["A|B", "B", "C"]))
    Uncertainty(min_confidence=0.5).check(_model(cal, ["A|B", "B", "C"]))  # no sets, nothing to read back


def _ood_basis():
    rng = np.random.default_rng(0)
    Z, labels = rng.normal(size=(60, 4)), np.arange(60) % 2
    folds = np.arange(60) % 3
    return ood.calibrate(Z, [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(3)],
                         labels=labels, n_classes=2)


@pytest.mark.parametrize("roles, config, says", [
    ({"group": None}, {"val_data": None}, True),  # rows split one by one: the note
    ({"group": "patient_id"}, {"val_data": None}, False),
    ({"group": None}, {"val_data": "val.csv"}, False),  # a table of its own: the split is not by rows
    ({}, {}, False),  # roles unknown (older files, the estimators): no claim either way
])
def test_a_model_split_without_patients_says_new_patients_may_be_covered_less(roles, config, says):
    """Trained with --no-group on a table of 150 patients with 1-5 samples each, new patients' samples were
    flagged out-of-distribution 35 % of the time at --ood-alpha 0.05, and nothing said the held-out rows had
    their patients in training."""
    model = _model(_calibration(30, 1), ["a", "b"], roles=roles, config=config)
    model.ood = _ood_basis()
    both = Trust(model, Uncertainty(coverage=0.9, ood=True, ood_alpha=0.05))
    notes = [n for n in both.ood_warnings() if "without a patient column" in n]  # a warning: --quiet keeps it
    assert bool(notes) == says
    assert not [n for n in both.level_notes() + both.notes() if "without a patient column" in n]
    if says:
        assert "--coverage 0.9" in notes[0] and "--ood-alpha 0.05" in notes[0] and "--group" in notes[0]
        only_ood = Trust(model, Uncertainty(ood=True, ood_alpha=0.05))
        (note,) = [n for n in only_ood.ood_warnings() if "without a patient column" in n]  # predict says it once
        assert "--coverage" not in note and "--ood-alpha 0.05" in note
        only_sets = Trust(model, Uncertainty(coverage=0.9))
        (note,) = [n for n in only_sets.ood_warnings() if "without a patient column" in n]
        assert "--coverage 0.9" in note and "--ood-alpha" not in note


def test_the_summaries_name_the_classes_in_every_set_and_the_level_as_given():
    """A pipeline reading --json learnt which classes every set held only from the notes' text; and a level of
    0.999999999 was printed as 'coverage 1', needing '1000000028' patients."""
    trust = Trust(_model(_calibration(12, 2), ["a", "b"]), Uncertainty(coverage=0.999999999))
    assert trust.in_every_set == ["a", "b"]
    P = np.array([[0.7, 0.3]])
    trust.columns(P, np.array([0]), np.array(["a"]), {"set": trust.sets.sets([np.log(P)])})
    assert trust.summary()["in_every_set"] == ["a", "b"]
    (note,) = trust.level_notes()
    assert "--coverage 0.999999999 needs" in note and "from 999,999,999 held-out patients" in note
    doc = evaluation_report(trust, P, np.array([0]), np.array([0]), trust.sets.sets([np.log(P)]), None, None, None)
    assert doc["sets"]["in_every_set"] == ["a", "b"]
    mondrian = Trust(_model(_calibration(12, 2), ["a", "b"]), Uncertainty(coverage=0.95, mondrian=True))
    assert mondrian.in_every_set == ["a", "b"]  # class 'b' has no held-out row at all


def test_predict_on_a_no_group_model_says_it_end_to_end(tmp_path):
    """The CLI path: predict --coverage --json on a model trained with --no-group carries the note."""
    table = tmp_path / "t.csv"
    make_table(n_patients=20, per_patient=2, n_features=6).to_csv(table, index=False)
    model = tmp_path / "m.mlp"
    res = run(["train", str(table), "-o", str(model), "--no-group", "--folds", "2", "--epochs", "3", "--hidden", "4",
               "--no-calibrate", "--n-jobs", "1", "-q"])
    assert res.exit_code == 0, res.output
    res = run(["predict", str(model), str(table), "--coverage", "0.8", "-o", str(tmp_path / "p.csv"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert any("without a patient column" in n for n in doc["warnings"])
    assert doc["trust"]["in_every_set"] == []
    quiet = run(["predict", str(model), str(table), "--coverage", "0.8", "--ood", "-o", str(tmp_path / "p.csv"), "-q"])
    assert quiet.exit_code == 0 and "without a patient column" in quiet.output  # a warning: --quiet keeps it
    assert "of held-out training rows are flagged by chance; a new patient's samples more often" in \
        run(["predict", str(model), str(table), "--ood", "--ood-alpha", "0.1", "-o", str(tmp_path / "p.csv")]).output


# ── 5. a class holding '|' ───────────────────────────────────────────────────────────────────────────


def test_a_class_holding_a_bar_is_a_warning_when_training():
    """predict --coverage refused such a model only after it was trained."""
    df = make_table(n_patients=12)
    df["label"] = df["label"].replace({"typeB": "HER2|ERBB2"})
    roles, _ = data.resolve_roles(df.columns)
    ds = data.Dataset.from_frame(df, roles)
    said = [w for w in ds.warnings if "'HER2|ERBB2'" in w]
    assert len(said) == 1 and "predict --coverage" in said[0]
    plain = data.Dataset.from_frame(make_table(n_patients=12), roles)
    assert not any("'|'" in w for w in plain.warnings)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_no_group_on_a_table_whose_patients_repeat_warns(tmp_path, fmt):
    """`train --no-group` on a table with several samples per patient said nothing, and its held-out estimates and
    calibration treated a patient's samples as independent."""
    df = make_table("multiclass", n_patients=30, per_patient=3)
    path = tmp_path / f"t.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path)
    r = run(["train", str(path), "--no-group", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert r.exit_code == 0, r.output
    assert "warning: --no-group, but 'patient_id' repeats: 90 samples of 30 patients (3.0 each)" in r.output
    from mlpcli import model_io

    assert "patient_id" not in model_io.load(tmp_path / "m.mlp").feature_names
    once = make_table("multiclass", n_patients=60, per_patient=1)
    once.to_csv(tmp_path / "once.csv", index=False)
    r = run(["train", str(tmp_path / "once.csv"), "--no-group", "-o", str(tmp_path / "m1.mlp"), *FAST])
    assert r.exit_code == 0 and "--no-group, but" not in r.output
