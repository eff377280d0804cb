"""`evaluate --net-benefit`: decision-curve analysis of a binary model's risks (Vickers & Elkin 2006), the net benefit
of treating the samples at or above each risk threshold beside treating everyone and no one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import run
from mlpcli import metrics
from test_risk_calibration import _cohort


def test_net_benefit_by_hand_and_by_resample():
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.3).astype(int)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 500), 0, 1)
    t = np.array([0.1, 0.25, 0.5])
    nb = metrics.net_benefit(y, p, t)
    for j, tj in enumerate(t):
        tp, fp = np.sum((p >= tj) & (y == 1)), np.sum((p >= tj) & (y == 0))
        assert nb["model"][j] == pytest.approx(tp / 500 - fp / 500 * tj / (1 - tj))
        assert nb["treat_all"][j] == pytest.approx(y.mean() - (1 - y.mean()) * tj / (1 - tj))
    unit_of = np.arange(500) // 2  # patients of two rows
    M = np.zeros((2, 250))
    M[0] = 1.0  # every patient once: the table itself
    M[1, :10] = 25.0  # ten patients, 25 times each
    draws = metrics.net_benefit(y, p, t, unit_of, M)
    np.testing.assert_allclose(draws["model"][0], nb["model"])
    rows = np.repeat(np.arange(20), 25)
    np.testing.assert_allclose(draws["model"][1], metrics.net_benefit(y[rows], p[rows], t)["model"])


def test_evaluate_reports_net_benefit_with_intervals(risk_model, tmp_path):
    _cohort(800, 2).to_csv(tmp_path / "new.csv", index=False)
    res = run(["evaluate", risk_model, str(tmp_path / "new.csv"), "--id", "pid", "--net-benefit",
               "0.3,0.1", "--bootstrap", "200", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["net_benefit"]
    assert [r["threshold"] for r in rows] == [0.1, 0.3]  # sorted
    for r in rows:
        assert r["treat_none"] == 0.0 and r["margin"] == pytest.approx(r["model"] - max(r["treat_all"], 0.0))
        assert r["model_ci"][0] <= r["model"] <= r["model_ci"][1]
    assert rows[1]["model"] > max(rows[1]["treat_all"], 0.0)  # a useful model beats both defaults at 0.3
    table = run(["evaluate", risk_model, str(tmp_path / "new.csv"), "--id", "pid", "--net-benefit",
                 "0.2"]).output
    assert "Net benefit at risk thresholds" in table and "treat everyone" in table
