"""The fitted preprocessing: --log1p auto on counts and log-normalised cells, mean imputation of constant columns,
scalings against scikit-learn's, robust scaling of tied features and its subsampled quartiles, and spreads of
float rounding read as no spread."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_selection import VarianceThreshold
from sklearn.preprocessing import RobustScaler, StandardScaler

from mlpcli import data
from mlpcli.data import PreprocessConfig, Preprocessor, looks_like_counts
from mlpcli.data.row_view import RowView
from mlpcli.data import blocks, column_stats
from mlpcli.data.column_stats import TIED_SHARE, column_percentiles, quartile_rows
from mlpcli.data.scaling import NORMAL_IQR


def test_log1p_auto_says_when_it_declines_log_normalised_values():
    """--log1p auto declined log-normalised single cells (skewed by their zeros alone) without a word: the user
    could not tell it had looked, nor why it said no where the zeros look like counts."""
    import numpy as np
    import scipy.sparse as sp

    from mlpcli import data

    rng = np.random.default_rng(0)
    counts = rng.poisson(0.15, size=(300, 50)).astype(float)  # mostly zeros, as single cells
    logged = np.where(counts > 0, rng.normal(2.0, 0.3, size=counts.shape), 0.0)  # non-zero values not skewed
    for X in (logged, sp.csr_matrix(logged)):
        notes: list[str] = []
        assert data.looks_like_counts(X, notes) is None and notes == [data.counts.LOGGED_NOTE]
    notes = []
    assert data.looks_like_counts(counts, notes) is not None and notes == []  # counts: applied, no such note


def _cells(n: int = 300, d: int = 40, depth: float = 0.2, seed: int = 0):
    """(raw counts, log-normalised values) (n, d) of zero-inflated single cells, as scanpy's
    normalize_total(target_sum=1e4) + log1p make them."""
    rng = np.random.default_rng(seed)
    mu = depth * rng.lognormal(0.0, 1.0, d) * rng.lognormal(0.0, 0.5, (n, 1))
    counts = rng.negative_binomial(2, 2 / (2 + mu)).astype(np.float64)
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return counts, np.log1p(counts / totals * 1e4)


def _with_stored_zeros(X: np.ndarray, seed: int):
    """X as CSR with some explicit zeros stored as well (an .h5ad file may hold them)."""
    rng = np.random.default_rng(seed)
    S = sp.csr_matrix(X).tocoo()
    rows, cols = np.nonzero(X == 0)
    pick = rng.choice(len(rows), 30, replace=False)
    return sp.csr_matrix((np.concatenate([S.data, np.zeros(30)]),
                          (np.concatenate([S.row, rows[pick]]), np.concatenate([S.col, cols[pick]]))), shape=X.shape)


@pytest.mark.parametrize("layout", ["dense", "sparse", "sparse with stored zeros"])
def test_log1p_auto_leaves_log_normalised_single_cells_alone(layout):
    counts, lognorm = _cells()
    z = (lognorm - lognorm.mean(axis=0)) / lognorm.std(axis=0)
    assert np.median((z ** 3).mean(axis=0)) > 1.0  # the zeros make the log values skewed: what misled the rule
    as_given = {"dense": lambda X: X, "sparse": sp.csr_matrix,
                "sparse with stored zeros": lambda X: _with_stored_zeros(X, 1)}[layout]
    assert looks_like_counts(as_given(lognorm)) is None  # log1p is not applied a second time
    assert looks_like_counts(as_given(counts)) > 1.0  # the counts still get it


def test_log1p_auto_still_takes_whole_counts_and_unlogged_values():
    rng = np.random.default_rng(3)
    counts = np.where(rng.random((200, 20)) < 0.7, 0.0, rng.integers(1, 40, (200, 20)))  # non-zero values uniform
    assert looks_like_counts(counts) is not None and looks_like_counts(sp.csr_matrix(counts)) is not None
    tpm = np.where(rng.random((200, 20)) < 0.2, 0.0, rng.lognormal(2.0, 1.0, (200, 20)))  # skewed non-zero values
    assert looks_like_counts(tpm) is not None and looks_like_counts(sp.csr_matrix(tpm)) is not None


@pytest.mark.parametrize("log1p", [False, True], ids=["raw", "log1p"])
@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_mean_imputation_keeps_a_constant_column_constant(log1p, layout):
    """The mean of equal values summed in floating point can land an ulp beside them; the column then had an
    SD of ~1e-16 and a new value of it became a network input of ~1e15."""
    rng = np.random.default_rng(0)
    for value in (0.1, 0.7, 7.3):
        X = np.column_stack([rng.normal(size=40) ** 2, np.full(40, value)])
        X[::7, 1] = np.nan
        pre = Preprocessor(PreprocessConfig(impute="mean", scaling="standard", log1p=log1p))
        pre.fit(sp.csr_matrix(X) if layout == "sparse" else X, ["a", "flat"])
        assert pre.dropped_constant == ["flat"] and pre.kept_features == ["a"], value
        assert np.all(np.abs(pre.transform(np.array([[1.0, value + 1.0]]))) < 10)


def test_scalings_and_constant_features_match_scikit_learn():
    rng = np.random.default_rng(4)
    X = rng.lognormal(0.0, 1.0, (60, 5)) * [1, 10, 0.1, 5, 1] + [0, 3, 2, 100, 0]
    X[:, 4] = 2.5  # constant: dropped, as VarianceThreshold() drops it
    X[:50, 0] = 0.0  # IQR 0 (mostly zeros, like a gene in single cells)
    names = list("abcde")
    kept = VarianceThreshold().fit(X).get_support()
    standard = Preprocessor(PreprocessConfig(scaling="standard")).fit(X, names)
    assert standard.kept_features == [n for n, k in zip(names, kept) if k]
    assert np.allclose(standard.transform(X), StandardScaler().fit_transform(X[:, kept]), atol=1e-12)
    robust = Preprocessor(PreprocessConfig(scaling="robust")).fit(X, names)
    reference = RobustScaler().fit(X[:, kept])
    # column a is 0 in 50 of 60 rows: its quartiles fall on the tie, so it is scaled by its mean and SD
    # (column_stats.TIED_SHARE); the others as scikit-learn's RobustScaler
    assert np.allclose(robust.center_[1:], reference.center_[1:])
    assert np.allclose(robust.scale_[1:], reference.scale_[1:])
    assert np.isclose(robust.center_[0], X[:, 0].mean()) and np.isclose(robust.scale_[0], X[:, 0].std())
    Z = robust.transform(X)
    assert np.all(np.abs(Z) < 3.0)  # clipped smoothly


@pytest.mark.parametrize("scaling", ["standard", "robust"])
@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_spreads_of_float_rounding_are_no_spread(scaling, layout):
    """0.1 + 0.2 and 0.3 differ in the last bit: a column of the two is constant (it was scaled by 5e-17, and
    a new value of 0.31 reached the network as 2e14); an IQR of that size is 0 (half the range instead)."""
    rng = np.random.default_rng(5)
    n = 40
    rounding = np.where(np.arange(n) % 2 == 0, 0.1 + 0.2, 0.3)
    mostly = rounding.copy()
    mostly[:4] = [2.0, 5.0, 9.0, 12.0]  # a few real values among the rounding noise
    X = np.column_stack([rng.normal(size=n) ** 2, rounding, mostly])
    pre = Preprocessor(PreprocessConfig(scaling=scaling))
    pre.fit(sp.csr_matrix(X) if layout == "sparse" else X, ["a", "flat", "mostly"])
    assert pre.dropped_constant == ["flat"] and pre.kept_features == ["a", "mostly"]
    if scaling == "robust" and layout == "sparse":  # IQR 0: half the range, or NORMAL_IQR SDs, the smaller
        assert pre.scale_[1] == pytest.approx(min((12.0 - 0.3) / 2, NORMAL_IQR * X[:, 2].std()))
    elif scaling == "robust":  # the two roundings of 0.3 hold 36 of 40 rows: a tie, scaled by the SD (TIED_SHARE)
        assert pre.scale_[1] == pytest.approx(X[:, 2].std())
    assert np.all(np.abs(pre.transform(np.array([[1.0, 0.31, 0.31]]))) < 10)


def _robust(X, names=None):
    names = names or [f"g{j}" for j in range(X.shape[1])]
    return Preprocessor(PreprocessConfig(scaling="robust")).fit(X, names)


def test_a_zero_inflated_marker_is_scaled_by_its_sd_and_its_expressed_cells_keep_their_order():
    rng = np.random.default_rng(0)
    n = 400
    marker = np.zeros(n)
    expressed = rng.random(n) < 0.1  # a rare cell type's marker: 0 in ~90 % of the cells
    marker[expressed] = rng.lognormal(1.0, 0.5, expressed.sum())
    marker[np.argmax(marker)] = 40.0  # one outlier: the half range it set used to squash the others
    smooth = rng.normal(size=n)
    pre = _robust(np.column_stack([marker, smooth]))
    assert pre.center_[0] == pytest.approx(marker.mean()) and pre.scale_[0] == pytest.approx(marker.std())
    Z = pre.transform(np.column_stack([marker, smooth]))
    z = Z[expressed, 0]
    # before, scale = half the range (20): the expressed cells sat within 0.4 of the zeros; now they stand apart
    assert np.median(z) - Z[~expressed, 0].max() > 1.0
    assert np.all(np.diff(z[np.argsort(marker[expressed])]) >= 0)  # the smooth clip keeps their order
    # a continuous feature without ties keeps the median, and the IQR or NORMAL_IQR SDs, the smaller
    q25, q50, q75 = np.percentile(smooth, [25, 50, 75])
    assert pre.center_[1] == pytest.approx(q50)
    assert pre.scale_[1] == pytest.approx(min(q75 - q25, NORMAL_IQR * smooth.std()))


@pytest.mark.parametrize("share, tied", [(TIED_SHARE - 0.05, False), (TIED_SHARE, True), (0.6, True)])
def test_the_rule_starts_at_a_quarter_of_the_rows_at_one_value(share, tied):
    rng = np.random.default_rng(1)
    n = 200
    x = rng.normal(size=n)
    k = int(round(share * n))
    x[rng.permutation(n)[:k]] = 1.5  # one value, at some quartile, in k rows
    pre = _robust(np.column_stack([x]))
    if tied:
        assert pre.center_[0] == pytest.approx(x.mean()) and pre.scale_[0] == pytest.approx(x.std())
    else:
        q25, q50, q75 = np.percentile(x, [25, 50, 75])
        assert pre.center_[0] == pytest.approx(q50)
        assert pre.scale_[0] == pytest.approx(min(q75 - q25, NORMAL_IQR * x.std()))


def test_sparse_input_keeps_the_iqr_or_half_range_without_centring():
    """Scaled by the IQR (half the range where it is 0), or by NORMAL_IQR SDs of the whole column, implicit zeros
    included, where that is smaller, as dense input; not centred."""
    X = np.zeros((40, 3))
    X[:6, 0] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # IQR 0: half the range, 3.0, against 1.349 x 1.414
    X[:, 1] = np.arange(40.0)  # uniform: IQR 19.5 against 1.349 x 11.5
    X[:, 2] = np.random.default_rng(0).lognormal(0.0, 1.5, 40)  # heavy-tailed: the IQR is the smaller
    pre = _robust(sp.csr_matrix(X))
    assert np.all(pre.center_ == 0)
    assert pre.scale_[0] == pytest.approx(NORMAL_IQR * X[:, 0].std()) and pre.scale_[0] < 3.0
    assert pre.scale_[1] == pytest.approx(NORMAL_IQR * X[:, 1].std())
    assert pre.scale_[2] == pytest.approx(np.percentile(X[:, 2], 75) - np.percentile(X[:, 2], 25))
    assert pre.scale_[2] < NORMAL_IQR * X[:, 2].std()


def test_column_percentiles_of_contiguous_rows_leave_the_array_as_it_was():
    """rows= without scratch space partitions a copy, as the percentiles of every row do (contiguous rows were
    once partitioned in X itself, the caller's array reordered)."""
    rng = np.random.default_rng(1)
    for X in (np.asfortranarray(rng.normal(size=(15, 3))), rng.normal(size=(15, 1))):
        before = X.copy()
        for rows in (np.arange(15), np.arange(2, 15)):
            got = column_percentiles(X, (25.0, 50.0, 75.0), rows=rows)
            assert np.array_equal(X, before)
            assert got.tobytes() == np.percentile(before[rows], (25, 50, 75), axis=0).tobytes()


def _robust_reference(X: np.ndarray, log1p: bool, impute: str | None):
    """(median, scale) of X after log1p and imputation, computed directly: the median and IQR of the subsampled
    rows (quartile_rows), the scale the IQR or NORMAL_IQR SDs of every row, the smaller."""
    Z = np.array(X, dtype=np.float64)
    if log1p:
        Z = np.log1p(Z)
    if impute == "median":
        Z = np.where(np.isnan(Z), np.nanmedian(Z, axis=0), Z)
    rows = quartile_rows(Z.shape[0])
    q25, median, q75 = np.percentile(Z if rows is None else Z[rows], (25, 50, 75), axis=0)
    return median, np.minimum(q75 - q25, NORMAL_IQR * Z.std(axis=0))


@pytest.mark.parametrize("n", [63, 64, 97])  # QUARTILE_ROWS 32: every row, then 32 random ones
@pytest.mark.parametrize("layout", ["C", "F", "float32", "rows"])
@pytest.mark.parametrize("steps", ["plain", "log1p+impute", "top-var"])
def test_robust_quartiles_subsampled_whatever_the_input(monkeypatch, n, layout, steps):
    """The median and IQR are those of the subsampled training rows for C and F ordered, float32 and RowView
    inputs, after log1p and imputation, and in --top-var's second pass, column blocks of every width;
    fit_transform gives what fit then transform gives, and columns tied at a quartile are not IQR-scaled."""
    monkeypatch.setattr(column_stats, "QUARTILE_ROWS", 32)
    monkeypatch.setattr(blocks, "BLOCK_VALUES", 2 * n)  # two columns a block
    rng = np.random.default_rng(n)
    base = rng.lognormal(0.5, 1.0, (n + 9, 6))
    base[:, 2] = np.where(rng.random(n + 9) < 0.6, 0.0, base[:, 2])  # zero-inflated: tied
    base[:, 4] = np.round(base[:, 4] * 3)  # coarse levels
    log1p, impute = steps == "log1p+impute", "median" if steps == "log1p+impute" else None
    if impute:
        base[[3, 11, 40], 5] = np.nan
    if layout == "float32":
        base = base.astype(np.float32)
    rows = np.sort(rng.choice(n + 9, n, replace=False))
    X = RowView.of(base, rows) if layout == "rows" else np.asarray(base[rows], order="F" if layout == "F" else "C")
    plain = base[rows]
    names = [f"g{j}" for j in range(6)]
    config = dict(scaling="robust", log1p=log1p, impute=impute, top_var=4 if steps == "top-var" else None)
    pre = data.Preprocessor(data.PreprocessConfig(**config))
    Z = pre.fit_transform(X, names)
    again = data.Preprocessor(data.PreprocessConfig(**config)).fit(X, names)
    assert np.array_equal(pre.center_, again.center_) and np.array_equal(pre.scale_, again.scale_)
    np.testing.assert_allclose(Z, again.transform(X), rtol=0, atol=1e-12)
    median, scale = _robust_reference(plain, log1p, impute)
    kept = pre.kept_index_
    tied = kept == 2
    assert tied.any() or steps == "top-var"
    assert not np.any(pre.center_[tied] == median[kept][tied])  # the mean, not the median (0)
    assert np.array_equal(pre.center_[~tied], median[kept][~tied])
    np.testing.assert_allclose(pre.scale_[~tied], scale[kept][~tied], rtol=1e-12, atol=0)
    assert np.isfinite(Z).all() and np.allclose(Z.mean(axis=0), 0, atol=1e-12)


def test_counts_with_scattered_missing_values_still_look_like_counts():
    """5 % of the cells missing left almost no complete row, and --log1p auto answered "no" without a word: raw
    counts trained unlogged under --impute."""
    rng = np.random.default_rng(0)
    X = rng.negative_binomial(2, 0.1, size=(600, 300)).astype(float)
    whole = data.looks_like_counts(X)
    gapped = X.copy()
    gapped[rng.random(X.shape) < 0.05] = np.nan
    assert whole is not None and data.looks_like_counts(gapped) == pytest.approx(whole, abs=0.1)
    normal = rng.normal(5, 1, size=(600, 300))
    normal[rng.random(normal.shape) < 0.05] = np.nan
    assert data.looks_like_counts(normal) is None


@pytest.mark.parametrize("gap", [False, True], ids=["no-missing-value", "a-missing-value-beside"])
@pytest.mark.parametrize("value, config, message", [
    (np.inf, {}, "feature columns hold infinite values: 'g5'"),
    (-np.inf, {"impute": "median"}, "feature columns hold infinite values: 'g5'"),
    (1e300, {}, "feature column 'g5' holds 1e+300 at training row 8, beyond"),
    (-1e300, {"log1p": True}, "feature column 'g5' holds -1e+300 at training row 8, beyond"),
    (-2.5, {"log1p": True}, "log1p needs non-negative input"),
])
def test_fit_refuses_bad_values_whether_or_not_their_block_has_missing_values(gap, value, config, message):
    """The fit finds infinities, values beyond float32's range and (with log1p) negative values from each block's
    extremes when the block has no missing value, and from every value when it has one: the same errors either
    way, naming the column (and for a value beyond the range, its row)."""
    X = np.random.default_rng(0).lognormal(size=(40, 12))
    X[7, 5] = value
    if gap:
        X[3, 9] = np.nan  # in the same block of columns
        config = {"impute": "median", **config}
    from mlpcli.errors import DataError

    with pytest.raises(DataError, match=message.replace("+", r"\+").replace("(", r"\(")):
        Preprocessor(PreprocessConfig(**config)).fit(X, [f"g{j}" for j in range(12)])


@pytest.mark.parametrize("impute", [None, "mean"])
def test_a_block_without_missing_values_is_fitted_as_one_with_them(impute):
    """Columns are fitted the same whether their block of columns holds a missing value elsewhere or not (the
    extremes of a complete block stand in for passes over its values)."""
    X = np.random.default_rng(1).lognormal(size=(60, 10))
    X[:, 4] = 2.0  # constant: dropped either way
    names = [f"g{j}" for j in range(10)]
    config = PreprocessConfig(log1p=True, impute=impute or "median")
    plain = Preprocessor(config).fit(X, names)
    gapped = X.copy()
    gapped[0, 9] = np.nan
    other = Preprocessor(config).fit(gapped, names)
    assert plain.kept_features == other.kept_features and "g4" not in plain.kept_features
    same = slice(0, -1)  # every column but the one given a missing value
    for name in ("center_", "scale_", "offset_", "train_mean_", "train_sd_", "train_zero_share_"):
        np.testing.assert_array_equal(getattr(plain, name)[same], getattr(other, name)[same], err_msg=name)


def test_a_bimodal_marker_keeps_its_weight_beside_normal_genes():
    """A gene high in one class and low in the other has an IQR spanning both modes: divided by it, the marker
    shrank to two thirds of its z-score weight against the normal genes beside it (class means at +-0.46 against
    a neighbour's SD 0.74, where z-scores give +-0.89 against 1). Robust scaling divides it by NORMAL_IQR SDs, the
    smaller, so the marker stands against its neighbours as z-scores put it; the normal genes keep their IQR."""
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 6))
    X[:, 0] += 4.0 * (y - 0.5)  # class means -2 / +2, SD 1 within each
    pre = _robust(X)
    Z = pre.transform(X)
    z = StandardScaler().fit_transform(X)

    def weight(M):  # half the marker's class-mean gap over a normal gene's SD
        return (M[y == 1, 0].mean() - M[y == 0, 0].mean()) / 2 / M[:, 1:].std(axis=0).mean()

    assert weight(Z) == pytest.approx(weight(z), rel=0.05)
    q25, q75 = np.percentile(X[:, 1:], [25, 75], axis=0)
    np.testing.assert_allclose(pre.scale_[1:], q75 - q25, rtol=0.1)  # a normal gene's IQR and 1.349 SD agree
