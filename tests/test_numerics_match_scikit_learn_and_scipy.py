"""What mlpcli computes in NumPy in place of scikit-learn's and scipy's functions — the label-based metrics from one
confusion count (``metrics.confusion_scores``), AUC and average precision from ranks, the temperature's bounded
search — is theirs: held here to scikit-learn's and scipy's own functions on random tables and on the edge cases
their definitions settle (a class never called, a class absent from the truth, one class true, nothing called
right). Training a classifier then imports neither (1-2 s of a small run's start)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.metrics as skm

from mlpcli import metrics


def _sk(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn(*args, **kwargs))
    return value if np.isfinite(value) else None


def _close(ours, theirs):
    assert (ours is None) == (theirs is None), (ours, theirs)
    if ours is not None:
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def _binary_cases():
    rng = np.random.default_rng(0)
    for seed in range(40):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        p = rng.random(n)
        yield f"random{seed}", y, p
    yield "one class true", np.zeros(8, int), np.linspace(0.1, 0.9, 8)
    yield "nothing called positive", np.array([0, 1, 0, 1]), np.full(4, 0.2)
    yield "everything called positive", np.array([0, 1, 0, 0]), np.full(4, 0.7)
    yield "all wrong", np.array([0, 1, 0, 1]), np.array([0.9, 0.1, 0.8, 0.3])
    yield "one row", np.array([1]), np.array([0.8])


@pytest.mark.parametrize("name, y, p", list(_binary_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_binary_counts_are_scikit_learns(name, y, p):
    m = metrics.compute("binary", y, p, ["a", "b"])
    pred = (p >= 0.5).astype(int)
    _close(m["accuracy"], _sk(skm.accuracy_score, y, pred))
    _close(m["balanced_accuracy"], _sk(skm.balanced_accuracy_score, y, pred))
    _close(m["precision"], _sk(skm.precision_score, y, pred, zero_division=np.nan))
    _close(m["recall"], _sk(skm.recall_score, y, pred, zero_division=np.nan))
    _close(m["f1"], _sk(skm.f1_score, y, pred, zero_division=np.nan))
    _close(m["specificity"], _sk(skm.recall_score, 1 - y, 1 - pred, zero_division=np.nan))
    _close(m["npv"], _sk(skm.precision_score, 1 - y, 1 - pred, zero_division=np.nan))
    # MCC: undefined (None) with one class true, where scikit-learn gives 0.0; its value otherwise
    _close(m["mcc"], _sk(skm.matthews_corrcoef, y, pred) if len(set(y)) > 1 else None)
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    # the probability-based figures, as scikit-learn's functions give them (up to rounding)
    for ours, theirs in ((m["roc_auc"], _sk(skm.roc_auc_score, y, p) if len(set(y)) > 1 else None),
                         (m["average_precision"], _sk(skm.average_precision_score, y, p) if y.any() else None),
                         (m["log_loss"], _sk(skm.log_loss, y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
                         (m["brier"], _sk(skm.brier_score_loss, y, p))):
        assert (ours is None) == (theirs is None) and (ours is None or ours == pytest.approx(theirs, rel=1e-9)), \
            (ours, theirs)


def _multiclass_cases():
    rng = np.random.default_rng(1)
    for seed in range(40):
        k = int(rng.integers(3, 7))
        n = int(rng.integers(3, 80))
        y = rng.integers(0, k, n)
        P = rng.dirichlet(np.ones(k) * 0.5, n)
        yield f"random{seed}", y, P
    P = np.eye(4)[[0, 0, 1, 1, 0, 1]] * 0.7 + 0.075
    yield "classes never called", np.array([0, 2, 1, 3, 0, 1]), P
    called = np.eye(4)[[0, 2, 1, 1, 3, 0]] * 0.7 + 0.075
    yield "a class called but absent from the truth", np.array([0, 0, 1, 1, 0, 0]), called
    yield "one class true", np.zeros(5, int), np.eye(3)[[0, 1, 2, 0, 0]] * 0.7 + 0.1


@pytest.mark.parametrize("name, y, P", list(_multiclass_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_multiclass_counts_are_scikit_learns(name, y, P):
    K = P.shape[1]
    labels = list(range(K))
    m = metrics.compute("multiclass", y, P, [f"c{k}" for k in labels])
    pred = P.argmax(axis=1)
    _close(m["accuracy"], _sk(skm.accuracy_score, y, pred))
    _close(m["balanced_accuracy"], _sk(skm.balanced_accuracy_score, y, pred))
    _close(m["f1_macro"], _sk(skm.f1_score, y, pred, average="macro", labels=labels, zero_division=np.nan))
    _close(m["f1_weighted"], _sk(skm.f1_score, y, pred, average="weighted", labels=labels, zero_division=0))
    _close(m["mcc"], _sk(skm.matthews_corrcoef, y, pred) if len(set(y)) > 1 else None)
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=labels).tolist()
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(P, 1e-15, 1.0), labels=labels), rel=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prec, rec, f1, support = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=np.nan)
    for k, row in enumerate(m["per_class"]):
        for ours, theirs in ((row["precision"], prec[k]), (row["recall"], rec[k]), (row["f1"], f1[k])):
            _close(ours, None if np.isnan(theirs) else float(theirs))
        assert row["support"] == support[k]


def _multilabel_cases():
    rng = np.random.default_rng(3)
    for seed in range(30):
        n, L = int(rng.integers(2, 60)), int(rng.integers(2, 5))  # a multi-label target has two labels or more
        yield f"random{seed}", rng.integers(0, 2, (n, L)), rng.random((n, L))
    P = np.array([[0.2, 0.7], [0.6, 0.4], [0.1, 0.9]])
    yield "a label without positives", np.array([[0, 1], [0, 0], [0, 1]]), P
    yield "nothing called", np.array([[1, 0], [0, 1]]), np.full((2, 2), 0.1)


@pytest.mark.parametrize("name, Y, P", list(_multilabel_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_multilabel_counts_are_scikit_learns(name, Y, P):
    m = metrics.compute("multilabel", Y, P, [f"l{j}" for j in range(Y.shape[1])])
    pred = (P >= 0.5).astype(int)
    _close(m["f1_micro"], _sk(skm.f1_score, Y, pred, average="micro", zero_division=0))
    _close(m["f1_macro"], _sk(skm.f1_score, Y, pred, average="macro", zero_division=np.nan))
    _close(m["hamming_loss"], _sk(skm.hamming_loss, Y, pred))
    for j, row in enumerate(m["per_label"]):
        y, p = Y[:, j], P[:, j]
        for ours, theirs in ((row["roc_auc"], _sk(skm.roc_auc_score, y, p) if 0 < y.sum() < len(y) else None),
                             (row["average_precision"], _sk(skm.average_precision_score, y, p) if y.any() else None)):
            assert (ours is None) == (theirs is None) and (ours is None or ours == pytest.approx(theirs, rel=1e-9))


def test_counts_of_many_tables_at_once_are_each_tables():
    """``confusion_scores`` takes B confusion matrices at once (the bootstrap's resamples): each row of its output
    is that matrix's own figures."""
    rng = np.random.default_rng(2)
    tables = [(rng.integers(0, 3, 30), rng.integers(0, 3, 30)) for _ in range(5)]
    C = np.stack([metrics.confusion_counts(y, p, 3) for y, p in tables])
    together = metrics.confusion_scores(C)
    for b, (y, p) in enumerate(tables):
        alone = metrics.confusion_scores(C[b:b + 1])
        for key in ("accuracy", "balanced_accuracy", "mcc"):
            assert together[key][b] == alone[key][0]
        assert together["balanced_accuracy"][b] == pytest.approx(skm.balanced_accuracy_score(y, p), rel=1e-12)


def test_average_ranks_are_scipys():
    from scipy.stats import rankdata

    rng = np.random.default_rng(4)
    for x in (rng.random(50), rng.integers(0, 5, 50).astype(float), np.array([0.3]), np.array([1.0, 1.0, 1.0]),
              np.round(rng.random(200), 2)):
        assert np.array_equal(metrics.average_ranks(x), rankdata(x))


def test_the_temperatures_bounded_search_is_scipys_step_for_step():
    """``calibration.bounded_minimum`` takes scipy's bounded Brent steps: the same minimiser to the last bit, on
    smooth functions with one or several minima in the bounds."""
    from scipy.optimize import minimize_scalar

    from mlpcli.calibration import bounded_minimum

    rng = np.random.default_rng(5)
    for _ in range(100):
        c = rng.normal(size=4)

        def f(s):
            return float(np.cosh(c[0] * s + c[1]) + c[2] * s ** 2 + 0.3 * np.sin(3 * s * c[3]))

        lo, hi = sorted(rng.normal(size=2) * 3)
        for tol in (1e-4, 1e-6):
            theirs = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": tol}).x
            assert bounded_minimum(f, lo, hi, xatol=tol) == theirs


def _regression_cases():
    rng = np.random.default_rng(6)
    for seed in range(30):
        n = int(rng.integers(2, 60))
        y = rng.normal(size=n) * rng.uniform(0.1, 100)
        yield f"random{seed}", y, y * rng.uniform(-1, 1) + rng.normal(size=n) * rng.uniform(0.01, 50)
    yield "ties", np.array([1.0, 1.0, 2.0, 2.0, 3.0]), np.array([0.5, 0.7, 0.7, 2.0, 2.0])
    yield "a constant prediction", np.array([1.0, 2.0, 3.0]), np.full(3, 2.0)
    yield "a constant truth", np.full(4, 0.1), np.array([0.1, 0.2, 0.3, 0.4])
    yield "one row", np.array([1.5]), np.array([1.0])


@pytest.mark.parametrize("name, y, p", list(_regression_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_regression_figures_are_scikit_learns_and_scipys(name, y, p):
    """R² as scikit-learn's r2_score(force_finite=False) where the truth varies (undefined, None, where it does not),
    Pearson's and Spearman's r as scipy's (None where scipy gives NaN: fewer than 2 values, a constant side)."""
    from scipy import stats

    m = metrics.compute("regression", y[:, None], p[:, None], ["y"])
    varies = len(y) > 1 and not np.all(y == y[0])
    theirs = _sk(skm.r2_score, y, p, force_finite=False) if varies else None
    assert (m["r2"] is None) == (theirs is None) and (theirs is None or m["r2"] == pytest.approx(theirs, rel=1e-9))
    for key, fn in (("pearson_r", stats.pearsonr), ("spearman_r", stats.spearmanr)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = float(fn(y, p)[0])
        except ValueError:  # fewer than 2 values
            value = float("nan")
        expected = value if np.isfinite(value) else None
        assert (m[key] is None) == (expected is None), (key, m[key], expected)
        assert expected is None or m[key] == pytest.approx(expected, rel=1e-9, abs=1e-12), (key, m[key], expected)


@pytest.mark.parametrize("dof", [0.5, 1, 2, 3, 4, 7, 10, 30, 99, 100, 1000])
def test_chi_square_survival_is_scipys(dof):
    """``distributions.chi2_sf``: scipy.stats.chi2.sf to 1e-11 relative from p near 1 down to 1e-300, on both sides of
    the series / continued-fraction switch at x = dof + 2, and at 0, below 0, infinity and NaN."""
    from scipy import stats

    from mlpcli import distributions

    levels = np.array([1 - 1e-12, 0.999, 0.9, 0.5, 0.1, 0.01, 1e-5, 1e-10, 1e-50, 1e-200, 1e-300])
    x = np.concatenate([stats.chi2.isf(levels, dof), np.linspace(0.0, 3 * dof + 50, 41),
                        [dof + 2 - 1e-9, dof + 2, dof + 2 + 1e-9]])
    theirs = stats.chi2.sf(x, dof)
    ours = distributions.chi2_sf(x, dof)
    assert ours.shape == x.shape
    assert np.allclose(ours, theirs, rtol=1e-11, atol=0.0)
    assert distributions.chi2_sf(float(x[5]), dof) == pytest.approx(float(theirs[5]), rel=1e-11)
    edge = distributions.chi2_sf(np.array([-1.0, 0.0, np.inf, np.nan]), dof)
    assert edge[:3].tolist() == [1.0, 1.0, 0.0] and np.isnan(edge[3])


def test_chi_square_test_of_a_contingency_table_is_scipys():
    """``distributions.chi2_independence``: chi2_contingency(table, correction=False)'s statistic, p-value and degrees
    of freedom on 60 random tables of 1-6 rows and columns (one row or column: 0, 1, 0), and a table with an empty
    row is refused, as scipy refuses it; the normal quantile is norm.ppf's."""
    from scipy import stats

    from mlpcli import distributions

    rng = np.random.default_rng(3)
    for _ in range(60):
        r, c = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        table = rng.integers(1, 40, size=(r, c)) * (rng.random((r, c)) < 0.9) + (rng.random((r, c)) < 0.1)
        table[:, 0] += 1  # every row holds a count
        table[0, :] += 1  # and every column
        ours = distributions.chi2_independence(table)
        statistic, p, dof, _ = stats.chi2_contingency(table, correction=False)
        assert ours[2] == dof
        assert ours[0] == pytest.approx(statistic, rel=1e-12, abs=1e-12) and ours[1] == pytest.approx(p, rel=1e-10)
    with pytest.raises(ValueError):
        distributions.chi2_independence(np.array([[3, 4], [0, 0]]))
    for q in (1e-10, 0.001, 0.025, 0.5, 0.975, 0.999, 1 - 1e-10):
        assert distributions.normal_quantile(q) == pytest.approx(stats.norm.ppf(q), rel=1e-13)
    assert distributions.Z_95 == stats.norm.ppf(0.975)  # every 95 % interval's half-width in standard errors


def test_column_quartiles_are_nanpercentiles():
    """``batch_scales.column_quartiles`` (the batch-scale check's medians and IQRs): np.nanpercentile's values bit for
    bit on 40 random matrices with no, few, most and all values of a column missing, and a single row."""
    from mlpcli.data.batch_scales import column_quartiles

    rng = np.random.default_rng(5)
    for trial in range(40):
        r, c = (1, 7) if trial == 0 else (int(rng.integers(2, 220)), int(rng.integers(1, 120)))
        M = rng.lognormal(size=(r, c)) * rng.choice([1.0, 1000.0], size=c)
        M[rng.random((r, c)) < rng.choice([0.0, 0.05, 0.5, 0.99])] = np.nan
        M[:, 0] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the column without a value
            q1, med, q3 = np.nanpercentile(M, [25, 50, 75], axis=0)
        ours_med, ours_iqr = column_quartiles(M)
        assert np.array_equal(ours_med, med, equal_nan=True) and np.array_equal(ours_iqr, q3 - q1, equal_nan=True)
