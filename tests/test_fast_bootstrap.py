"""The bootstrap's metrics computed for every resample at once (``metrics_resampled``) equal ``metrics.compute`` on
the resample's rows repeated: every scalar metric of every task, with the same undefined (None / NaN) cases."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from mlpcli import metrics
from mlpcli.metrics_resampled import ResampledMetrics, unit_multiplicities
from cli_helpers import run

RESAMPLES = 50


def scalars(m: dict) -> dict:
    """What `evaluate` gives an interval to: the float (or undefined) metrics, not n or the threshold."""
    return {k: v for k, v in m.items() if k not in ("n", "threshold") and not isinstance(v, bool)
            and (v is None or isinstance(v, (int, float)))}


def units_of(rng: np.random.Generator, n: int) -> np.ndarray:
    """Each row's patient: 1 to 4 rows each, in shuffled order."""
    sizes = rng.integers(1, 5, size=n)
    unit_of = np.repeat(np.arange(n), sizes)[:n]
    return rng.permutation(unit_of)


def compare(task, y, proba, classes, threshold, unit_of, seed=0):
    """Assert the vectorised metrics of RESAMPLES resamples equal metrics.compute on the rows repeated."""
    _, unit_of = np.unique(unit_of, return_inverse=True)
    n_units = int(unit_of.max()) + 1
    picks = np.random.default_rng(seed).integers(0, n_units, size=(RESAMPLES, n_units))
    fast = ResampledMetrics(task, y, proba, threshold, unit_of, n_units).of(unit_multiplicities(picks, n_units))
    rows_of_unit = [np.flatnonzero(unit_of == u) for u in range(n_units)]
    undefined_seen = set()
    full = scalars(metrics.compute(task, y, proba, classes, threshold))
    for b, pick in enumerate(picks):
        rows = np.concatenate([rows_of_unit[u] for u in pick])
        slow = scalars(metrics.compute(task, y[rows], proba[rows], classes, threshold))
        if task == "multilabel":  # a resample is scored over the whole table's labels, or not at all
            for key in ("balanced_accuracy", "f1_macro"):
                if slow.get(key) is not None and _labels_scored(key, y[rows], proba[rows] >= threshold) != \
                        _labels_scored(key, y, proba >= threshold):
                    slow[key] = None
                    assert full[key] is not None
        if "target_rmse" in fast:  # several regression targets: each one's RMSE too, for `--by`'s intervals
            each = np.sqrt(np.mean((y[rows] - proba[rows]) ** 2, axis=0))
            np.testing.assert_allclose(fast["target_rmse"][b], each, rtol=1e-10, err_msg=f"resample {b}")
        assert set(fast) - {"target_rmse"} == set(slow), (set(fast) ^ set(slow))
        for key, expected in slow.items():
            got = fast[key][b]
            if expected is None:
                undefined_seen.add(key)
                assert np.isnan(got), (key, b, got)
            else:
                assert not np.isnan(got), (key, b, expected)
                np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=f"{key}, resample {b}")
    return undefined_seen


def _labels_scored(key: str, Y: np.ndarray, pred: np.ndarray) -> tuple[int, ...]:
    """The labels a multi-label mean counts: both values of the truth (balanced accuracy), or a positive call or
    truth (F1 macro)."""
    if key == "balanced_accuracy":
        return tuple(np.flatnonzero((Y.sum(axis=0) > 0) & (Y.sum(axis=0) < len(Y))))
    return tuple(np.flatnonzero(((Y == 1) | pred).any(axis=0)))


def ties(p: np.ndarray) -> np.ndarray:
    """Probabilities on a coarse grid, so that many tie (and some sit on an ECE bin edge)."""
    return np.round(p * 15) / 15


@pytest.mark.parametrize("seed", [0])
def test_binary(seed):
    rng = np.random.default_rng(seed)
    n = 24
    y = (rng.random(n) < 0.2).astype(int)  # few positives: resamples without one (no AUC, recall, MCC)
    p = ties(np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1))
    p[:3] = [0.0, 1.0, 0.5]  # the clipped log loss, the threshold itself
    undefined = compare("binary", y, p.reshape(-1, 1), ["ctrl", "case"], 0.5, units_of(rng, n), seed)
    assert {"roc_auc", "recall", "mcc"} <= undefined
    # a threshold that calls nothing positive: no precision
    assert "precision" in compare("binary", y, p.reshape(-1, 1), ["ctrl", "case"], 0.95, units_of(rng, n), seed)


def test_binary_constant_predictions():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=20)
    compare("binary", y, np.full((20, 1), 0.3), ["a", "b"], 0.5, units_of(rng, 20))


@pytest.mark.parametrize("seed", [0])
def test_multiclass(seed):
    rng = np.random.default_rng(seed)
    n, K = 30, 4
    y = rng.choice(K, size=n, p=[0.45, 0.3, 0.2, 0.05])
    y[0] = 3
    logits = rng.normal(size=(n, K)) + 1.5 * np.eye(K)[y]
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    P = np.round(P, 1)
    P = P / P.sum(axis=1, keepdims=True)
    P[1] = [1.0, 0.0, 0.0, 0.0]
    undefined = compare("multiclass", y, P, list("abcd"), 0.5, units_of(rng, n), seed)
    assert undefined <= {"roc_auc_ovr", "mcc"}  # class 3 absent: its AUC left out of the mean, not undefined


def test_multiclass_constant_predictions_and_one_class():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, size=15)
    patient = np.arange(15) % 3
    y[patient == 0] = 1  # a resample of that patient alone holds one class: no MCC (nor AUC)
    assert "mcc" in compare("multiclass", y, np.tile([0.5, 0.3, 0.2], (15, 1)), list("abc"), 0.5, patient)
    compare("multiclass", y, np.tile([0.5, 0.3, 0.2], (15, 1)), list("abc"), 0.5, units_of(rng, 15))


@pytest.mark.parametrize("seed", [0])
def test_multilabel(seed):
    rng = np.random.default_rng(seed)
    n, L = 25, 4
    Y = (rng.random((n, L)) < [0.5, 0.1, 0.9, 0.0]).astype(int)  # a rare label, a common one, one never positive
    P = ties(np.clip(0.4 * Y + 0.6 * rng.random((n, L)), 0, 1))
    P[:, 3] = 0.2  # constant
    # resamples without the rare label's positives have no balanced accuracy over the table's labels (undefined)
    assert "balanced_accuracy" in compare("multilabel", Y, P, list("wxyz"), 0.5, units_of(rng, n), seed)


def test_multilabel_nothing_positive_anywhere():
    """f1_macro undefined (every label neither present nor predicted), f1_micro 0 (zero_division=0)."""
    rng = np.random.default_rng(2)
    assert "f1_macro" in compare("multilabel", np.zeros((10, 2), int), np.full((10, 2), 0.1), ["x", "y"], 0.5,
                                 units_of(rng, 10))


@pytest.mark.parametrize("targets", [1, 3])
def test_regression(targets):
    rng = np.random.default_rng(targets)
    n = 30
    Y = np.round(rng.normal(size=(n, targets)) * 3)  # integer values: ties in the ranks
    P = np.round(Y + rng.normal(size=(n, targets)), 1)
    P[:, -1] = np.where(np.arange(n) < 5, P[:, -1], 0.5) if targets > 1 else P[:, -1]  # near-constant predictions
    compare("regression", Y, P, [f"t{j}" for j in range(targets)], 0.5, units_of(rng, n))


def test_regression_constant_truth_or_predictions():
    """R² undefined where the truth does not vary; the correlations where either does not."""
    rng = np.random.default_rng(4)
    y = np.repeat([2.0, 5.0], 4).reshape(-1, 1)  # two patients: a resample of one alone has a constant truth
    p = y + rng.normal(size=y.shape)
    assert {"r2", "pearson_r", "spearman_r"} <= compare("regression", y, p, ["t"], 0.5, np.repeat([0, 1], 4))
    assert {"pearson_r", "spearman_r"} <= compare("regression", y + rng.normal(size=y.shape), np.full(y.shape, 1.5),
                                                  ["t"], 0.5, np.arange(8))
    # a repeated 0.1, whose mean scikit-learn rounds off: metrics.compute gave R² -6.7e30, now undefined too
    y = np.repeat([0.1, 0.3], 4).reshape(-1, 1)
    assert "r2" in compare("regression", y, y + rng.normal(size=y.shape), ["t"], 0.5, np.repeat([0, 1], 4))
    assert metrics.compute("regression", np.full((7, 1), 0.1), np.full((7, 1), 0.1) + np.arange(7)[:, None],
                           ["t"])["r2"] is None


def test_evaluate_bootstrap_intervals_are_those_of_metrics_compute_on_each_resample(tmp_path, monkeypatch):
    """End to end: `evaluate --bootstrap 200 --seed 3` on a table of patients gives, for every scalar metric, the
    percentile interval of metrics.compute over the same seeded resamples of patients (the former per-resample
    path), up to rounding."""
    import json

    from click.testing import CliRunner

    from mlpcli.cli import cli

    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"g{i}" for i in range(6)])
    df["label"] = np.array(["A", "B", "C"])[np.digitize(df["g0"] + rng.normal(size=n), [-0.5, 0.5])]
    df["patient_id"] = [f"p{i % 20}" for i in range(n)]
    table, model = tmp_path / "t.csv", tmp_path / "m.mlp"
    df.to_csv(table, index=False)
    res = CliRunner().invoke(cli, ["train", str(table), "-o", str(model), "--epochs", "3", "--folds", "1", "-q"])
    assert res.exit_code == 0, res.output

    seen = []
    compute = metrics.compute
    monkeypatch.setattr(metrics, "compute", lambda *a, **k: seen.append(a) or compute(*a, **k))
    res = CliRunner().invoke(cli, ["evaluate", str(model), str(table), "--bootstrap", "200", "--seed", "3", "--json",
                                   "--threads", "1"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    task, y, proba, classes, threshold, weights = seen[0]  # the whole table's outputs, the model's decision rule
    assert task == "multiclass" and len(y) == n

    _, patient = np.unique(df["patient_id"], return_inverse=True)
    picks = np.random.default_rng(3).integers(0, 20, size=(200, 20))
    draws = [scalars(compute(task, y[rows], proba[rows], classes, threshold, weights))
             for rows in (np.concatenate([np.flatnonzero(patient == u) for u in pick]) for pick in picks)]
    assert set(doc["ci"]) == set(draws[0])
    for key, ci in doc["ci"].items():
        values = np.array([np.nan if d[key] is None else d[key] for d in draws])
        np.testing.assert_allclose(ci, np.percentile(values[np.isfinite(values)], [2.5, 97.5]), rtol=1e-12,
                                   atol=1e-14, err_msg=key)


def test_evaluate_by_group_intervals_are_those_of_each_resample(tmp_path):
    """`evaluate --bootstrap --by`: each group's interval of the main metric and of each regression target's RMSE
    is the percentile interval over the same seeded resamples of the group's patients, computed row by row (a
    scikit-learn call a resample: 9 s for three groups at 2,000 resamples, now a vectorised pass)."""
    import json

    from click.testing import CliRunner

    from mlpcli.cli import cli

    rng = np.random.default_rng(0)
    n, B = 90, 100
    df = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"g{i}" for i in range(5)])
    df["age"] = 3 * df["g0"] + rng.normal(size=n)
    df["ic50"] = 0.01 * df["g1"] + 0.01 * rng.normal(size=n)
    df["patient_id"] = [f"p{i % 30:02d}" for i in range(n)]
    df["batch"] = [f"b{i % 30 // 10}" for i in range(n)]
    table, model = tmp_path / "r.csv", tmp_path / "r.mlp"
    df.to_csv(table, index=False)
    runner = CliRunner()
    res = runner.invoke(cli, ["train", str(table), "--target", "age,ic50", "-o", str(model), "--epochs", "3",
                              "--folds", "1", "-q"])
    assert res.exit_code == 0, res.output
    preds = tmp_path / "p.csv"
    assert runner.invoke(cli, ["predict", str(model), str(table), "-o", str(preds), "-q"]).exit_code == 0
    P = pd.read_csv(preds)[["pred_age", "pred_ic50"]].to_numpy()
    Y = df[["age", "ic50"]].to_numpy()
    res = runner.invoke(cli, ["evaluate", str(model), str(table), "--bootstrap", str(B), "--seed", "3", "--by",
                              "batch", "--json", "--threads", "1"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)

    draw = np.random.default_rng(3)
    draw.integers(0, 30, size=(B, 30))  # the whole table's resamples come first
    for group in doc["groups"]:
        idx = np.flatnonzero(df["batch"] == group["value"])
        patients, unit = np.unique(df["patient_id"].to_numpy()[idx], return_inverse=True)
        picks = draw.integers(0, len(patients), size=(B, len(patients)))
        each, pooled = [], []
        for pick in picks:
            rows = idx[np.concatenate([np.flatnonzero(unit == u) for u in pick])]
            err = (Y[rows] - P[rows]) ** 2
            each.append(np.sqrt(err.mean(axis=0)))
            pooled.append(np.sqrt(err.mean()))
        np.testing.assert_allclose(group["ci"]["rmse"], np.percentile(pooled, [2.5, 97.5]), rtol=1e-9)
        for j, target in enumerate(group["per_target"]):
            np.testing.assert_allclose(target["ci"], np.percentile(np.array(each)[:, j], [2.5, 97.5]), rtol=1e-9)


def test_bootstrap_workers_are_the_idle_cores():
    """evaluate --bootstrap's default worker processes: the cores the load leaves idle (this process counted), from
    200 resamples on; all of them lost to serial on a busy machine."""
    from mlpcli.predict.bootstrap import bootstrap_workers

    assert bootstrap_workers(199, cores=4, load=0.0) == 1  # few resamples: serial
    assert bootstrap_workers(200, cores=2, load=1.0) == 2  # only this process running
    assert bootstrap_workers(200, cores=2, load=1.6) == 1  # another job on the second core
    assert bootstrap_workers(1000, cores=2, load=6.0) == 1
    assert bootstrap_workers(1000, cores=4, load=2.2) == 2


def test_bootstrap_workers_within_a_cpu_set_ignore_the_nodes_load(monkeypatch):
    """A 4-core SLURM job on a busy 64-core node: the node's load average (50) left it one worker, though its
    cores are its own. On a machine without a CPU set the load still counts."""
    from mlpcli.predict.bootstrap import bootstrap_workers

    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    assert bootstrap_workers(1000, cores=4) == 4
    assert bootstrap_workers(100, cores=4) == 1  # few resamples: serial, as before
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert bootstrap_workers(1000, cores=4) == 1


def test_evaluate_bootstrap_of_one_or_a_few_resamples(small):
    """--bootstrap 1 printed zero-width "95 % CI"s and blamed the metric for not containing its estimate."""
    res = run(["evaluate", str(small / "m.mlp"), str(small / "t.csv"), "--bootstrap", "1"])
    assert res.exit_code == 2 and "one resample gives no interval" in res.output
    res = run(["evaluate", str(small / "m.mlp"), str(small / "t.csv"), "--bootstrap", "5"])
    assert res.exit_code == 0 and "warning: --bootstrap 5: the 95 % intervals' ends are the extremes" in res.output
    assert "does not contain its estimate" not in res.output


def test_f1_macro_resamples_keep_a_predicted_absent_class():
    """A class absent from the cohort but predicted counts 0 in F1 macro's estimate; resamples that drew none of
    those rows averaged over the other classes only, so the interval reached 0.97 against an estimate of 0.64."""
    from mlpcli import metrics
    from mlpcli.metrics_resampled import ResampledMetrics, unit_multiplicities

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    P = np.full((120, 3), 0.05)
    P[np.arange(120), y] = 0.9
    P[:3] = [0.05, 0.05, 0.9]  # three rows taken for class 2, which the cohort lacks
    estimate = metrics.compute("multiclass", y, P, classes=[0, 1, 2])["f1_macro"]
    resampled = ResampledMetrics("multiclass", y, P, 0.5, np.arange(120), 120)
    M = unit_multiplicities(rng.integers(0, 120, size=(400, 120)), 120)
    draws = resampled.of(M)["f1_macro"]
    assert not np.isnan(draws).any()
    assert draws.max() <= 2 / 3 + 1e-9 and abs(np.median(draws) - estimate) < 0.02
