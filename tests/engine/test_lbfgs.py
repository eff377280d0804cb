"""engine.lbfgs: the full-batch minimiser behind --optimizer lbfgs."""

import numpy as np
import pytest

from mlpcli.engine import lbfgs


def test_a_convex_quadratic_reaches_its_minimiser():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(30, 30))
    H = A @ A.T + 0.5 * np.eye(30)  # positive definite, condition number in the hundreds
    b = rng.normal(size=30)
    seen = []
    result = lbfgs.minimize(lambda x: (0.5 * x @ H @ x - b @ x, H @ x - b), np.zeros(30), max_iter=500,
                            gtol=1e-9, ftol=0.0, callback=lambda it, x, f: seen.append((it, f)))
    assert result.converged and np.allclose(result.x, np.linalg.solve(H, b), atol=1e-6)
    assert [it for it, _ in seen] == list(range(1, result.iterations + 1))
    values = [f for _, f in seen]
    assert all(b_ <= a for a, b_ in zip(values, values[1:]))  # every accepted step lowers the objective


def test_the_rosenbrock_valley_is_followed_to_its_minimum():
    def rosen(x):
        f = 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2
        g = np.array([-400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0]), 200 * (x[1] - x[0] ** 2)])
        return f, g

    result = lbfgs.minimize(rosen, np.array([-1.2, 1.0]), max_iter=1000, gtol=1e-8, ftol=0.0)
    assert result.converged and np.allclose(result.x, [1.0, 1.0], atol=1e-5)


def test_the_iteration_limit_and_a_non_finite_objective_end_the_run():
    result = lbfgs.minimize(lambda x: (float(x @ x), 2 * x), np.full(5, 3.0), max_iter=1, gtol=0.0, ftol=0.0)
    assert result.iterations == 1 and not result.converged and result.message == "iteration limit"
    nan = lbfgs.minimize(lambda x: (float("nan"), x), np.ones(3))
    assert not nan.converged and nan.iterations == 0 and "not finite" in nan.message


@pytest.mark.parametrize("k", [2, 4])
def test_a_softmax_regression_reaches_logistic_regressions_optimum(k):
    """`fit` with --optimizer lbfgs and the L2 of LogisticRegression(C=1) (0.5 / n) ends where scikit-learn's
    logistic regression does: multinomial for 4 classes (the penalty makes the weights identifiable), one
    sigmoid output with BCE for 2, as mlpcli trains a binary target."""
    from sklearn.linear_model import LogisticRegression

    from mlpcli.engine import MLP
    from mlpcli.engine.losses import get
    from mlpcli.training import FitConfig, fit

    rng = np.random.default_rng(k)
    n, p = 300, 20
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, p)) + 0.7 * rng.normal(size=(k, p))[y]
    binary = k == 2
    target = y.reshape(-1, 1).astype(np.float64) if binary else y
    net = MLP(p, [], 1 if binary else k, dtype="float64", seed=0)
    result = fit(net, get("bce" if binary else "ce"), X, target, X[:60], target[:60],
                 FitConfig(optimizer="lbfgs", l2=0.5 / n, epochs=500))
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X, y)
    assert np.abs(net.parameters()["dense0.W"] - sk.coef_).max() < 2e-3
    z = net.forward(X)
    if binary:
        proba = 1 / (1 + np.exp(-z[:, 0]))
        assert np.abs(proba - sk.predict_proba(X)[:, 1]).max() < 1e-3
    else:
        proba = np.exp(z - z.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        assert np.abs(proba - sk.predict_proba(X)).max() < 1e-3
    # the last weights are the model (no restore of a best-validation iteration), one history row per iteration
    assert result.best_epoch == result.epochs_run == len(result.history) and not result.stopped_early
    assert all("lr" not in row and row["best_epoch"] == row["epoch"] for row in result.history)
