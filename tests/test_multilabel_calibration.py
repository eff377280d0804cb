"""A multi-label model's temperatures: one per label, each fitted on its own column of the held-out logits, as a
binary model's is. One temperature for every label was set by the labels that were easy to separate and crushed a
rare label's probabilities (mean 0.035 -> 0.001 on a 4 % label)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import run
from model_files import rewrite_model
from mlpcli import model_io
from mlpcli.calibration import MIN_LABEL_EVENTS, fit_temperature, temperature_words
from mlpcli.config import TrainOptions
from mlpcli.errors import ModelFileError
from mlpcli.pipeline import train
from test_multilabel_decision import LABELS, TARGET, rare_label_table


def test_each_label_gets_the_temperature_its_own_column_would():
    rng = np.random.default_rng(0)
    n = 600
    # label 0 over-confident (logits 3x too large), label 1 under-confident (1/2), label 2 with 6 positives
    true_logits = rng.normal(0, 1.5, (n, 3))
    Y = (rng.random((n, 3)) < 1 / (1 + np.exp(-true_logits))).astype(int)
    Y[:, 2] = 0
    Y[:6, 2] = 1
    logits = true_logits * [3.0, 0.5, 1.0]
    T = fit_temperature(logits, Y, "sigmoid")
    assert T.shape == (3,)
    assert T[0] == pytest.approx(fit_temperature(logits[:, [0]], Y[:, [0]], "sigmoid"))
    assert T[1] == pytest.approx(fit_temperature(logits[:, [1]], Y[:, [1]], "sigmoid"))
    assert 2.3 < T[0] < 3.0 and 0.35 < T[1] < 0.7  # near 3 and 1/2: each label's own miscalibration
    assert T[2] == 1.0 and min(6, n - 6) < MIN_LABEL_EVENTS  # too few positives: its own probabilities
    # one sigmoid output (binary) and softmax keep one temperature
    assert np.ndim(fit_temperature(logits[:, [0]], Y[:, 0], "sigmoid")) == 0
    assert "per label: a 2.7" in temperature_words(np.array([2.7, 0.5, 1.0]), ["a", "b", "c"])


def test_a_rare_label_keeps_probabilities_that_add_up_to_its_count():
    table, new = rare_label_table(), rare_label_table(seed=11, n_patients=60)
    opts = dict(target=LABELS, group="patient_id", folds=3, epochs=40, hidden=[], seed=0)
    outcome = train(table, TrainOptions(**opts))
    model = outcome.model
    assert np.ndim(model.temperature) == 1 and len(model.temperature) == len(LABELS)
    P = model.predict_output(new[[f"f{j:02d}" for j in range(10)]].to_numpy())
    share = new[LABELS].mean().to_numpy()
    # every label's mean probability within a factor of 2 of its share (one temperature gave the rare one 1/35)
    assert np.all((P.mean(axis=0) > share / 2) & (P.mean(axis=0) < share * 2)), (P.mean(axis=0), share)
    # a label of 8 positives (100 patients): too few held-out events for a temperature of its own
    few = train(rare_label_table(n_patients=100), TrainOptions(**opts))
    assert few.model.temperature[-1] == 1.0
    assert any("not calibrated: label 'rare'" in note for note in few.notes)


def test_the_temperatures_travel_with_the_model_file(tmp_path):
    table = rare_label_table()
    table.to_csv(tmp_path / "t.csv", index=False)
    path = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "t.csv"), "--target", TARGET, "--group", "patient_id", "--folds", "3",
               "--epochs", "40", "--hidden", "", "-o", str(path)])
    assert res.exit_code == 0, res.output
    assert "temperature per label: lab0" in res.output
    model = model_io.load(path)
    info = json.loads(run(["info", str(path), "--json"]).stdout)
    assert info["network"]["temperature"] == pytest.approx(list(model.temperature))
    assert "temperature per label: lab0" in run(["info", str(path)]).output
    doc = json.loads(run(["evaluate", str(path), str(tmp_path / "t.csv"), "--json"]).stdout)
    assert doc["calibration"]["temperature"] == pytest.approx(list(model.temperature))

    def wrong_length(meta):
        meta["temperature"] = meta["temperature"][:2]

    with pytest.raises(ModelFileError, match="'temperature' must hold 4 entries"):
        model_io.load(rewrite_model(path, tmp_path / "short.mlp", wrong_length, lambda a: a))


def test_a_list_of_temperatures_on_a_binary_model_is_refused(tmp_path):
    from tables import make_table

    make_table("binary", n_patients=60, per_patient=2).to_csv(tmp_path / "b.csv", index=False)
    path = tmp_path / "b.mlp"
    assert run(["train", str(tmp_path / "b.csv"), "--folds", "1", "--epochs", "5", "-q", "-o", str(path)]).exit_code == 0

    def listed(meta):
        meta["temperature"] = [1.0]

    with pytest.raises(ModelFileError, match="only a multi-label model"):
        model_io.load(rewrite_model(path, tmp_path / "bad.mlp", listed, lambda a: a))


def test_the_calibrated_probabilities_are_the_members_mean_tempered_label_by_label():
    model = train(rare_label_table(), TrainOptions(target=LABELS, group="patient_id", folds=3, epochs=40,
                                                   hidden=[])).model
    X = rare_label_table(seed=5, n_patients=20)[[f"f{j:02d}" for j in range(10)]].to_numpy()
    logits: list = []
    P = model.predict_output(X, member_logits=logits)
    mean = np.mean([1 / (1 + np.exp(-z)) for z in logits[0]], axis=0)  # one block of rows: every member's logits
    Q = np.clip(mean, 1e-12, 1 - 1e-12)
    T = np.asarray(model.temperature)
    assert T.shape == (len(LABELS),) and len(set(T.round(6))) > 1  # the labels' own, not one for all
    np.testing.assert_allclose(P, 1 / (1 + np.exp(-(np.log(Q) - np.log1p(-Q)) / T)), rtol=1e-6, atol=1e-9)
