"""Sparse preprocessing works a chunk of stored values at a time: the chunk size changes no number and no
error, and fitting plus transforming needs little more than the transformed matrix itself."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import mlpcli.data.preprocess as preprocess
from mlpcli.training import CentredRows
from mlpcli.data import looks_like_counts
from mlpcli.data.preprocess import PreprocessConfig, Preprocessor
from mlpcli.errors import DataError


def _counts(n: int, d: int, density: float, seed: int, nan_every: int = 0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", dtype=np.float32, random_state=rng)
    X.data = np.round(X.data * 50).astype(np.float32) + 1  # counts >= 1
    cols = X.indices
    X.data[cols == 1] = 0.0  # a stored but constant column: dropped
    if nan_every:
        X.data[::nan_every] = np.nan
    return X


def _outcome(X, cfg: PreprocessConfig, names):
    pre = Preprocessor(cfg)
    try:
        Z = pre.fit_transform(X, names, dtype=np.float32, order="C")
        V = pre.transform(X[::3], dtype=np.float32, sparse=True)
        D = pre.transform(X[1::3])
    except DataError as exc:
        return str(exc)
    # standardised: the CSR matrix and the centring offset training subtracts from each densified minibatch
    assert all(isinstance(M, CentredRows) and sp.isspmatrix_csr(M.matrix) for M in (Z, V))
    return [Z.toarray(), V.toarray(), D, *pre.state()[1].values(), pre.kept_features, pre.warnings]


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return all(np.array_equal(x, y, equal_nan=True) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


def test_chunk_size_changes_no_number_and_no_error(monkeypatch):
    names = [f"g{j}" for j in range(12)]
    cases = [_counts(80, 12, 0.3, 0), _counts(50, 12, 0.5, 1, nan_every=9)]
    bad = _counts(60, 12, 0.3, 2)
    bad.data[[10, 40]] = [-1.0, -3.0]  # negative values: an error under log1p
    cases.append(bad)
    configs = [PreprocessConfig(log1p=log1p, impute=impute, scaling=scaling, top_var=top_var)
               for log1p, impute, scaling, top_var in itertools.product(
                   (True, False), (None, "median", "mean"), ("standard", "robust"), (None, 4))]
    reference = {}
    for i, X in enumerate(cases):
        reference[i] = looks_like_counts(X), [_outcome(X, cfg, names) for cfg in configs]
    for chunk in (1, 7, 64):
        monkeypatch.setattr(preprocess, "_SPARSE_CHUNK", chunk)
        for i, X in enumerate(cases):
            skew, outcomes = reference[i]
            assert looks_like_counts(X) == skew
            for cfg, expected in zip(configs, outcomes):
                assert _same(_outcome(X, cfg, names), expected), (chunk, i, cfg)
    assert any(isinstance(o, str) for o in reference[2][1]) and not any(isinstance(o, str) for o in reference[0][1])


def test_a_value_beyond_the_network_range_names_its_row_whatever_the_chunk(monkeypatch):
    names = [f"g{j}" for j in range(6)]
    X = _counts(40, 6, 0.5, 3).astype(np.float64)
    X.data *= 1e-30  # a training SD near 1e-29
    pre = Preprocessor(PreprocessConfig()).fit(X, names)
    V = _counts(30, 6, 0.5, 4).astype(np.float64)
    row = 17
    V.data[V.indptr[row]] = 1e10  # 1e39 SDs away
    messages = set()
    for chunk in (3, 1 << 20):
        monkeypatch.setattr(preprocess, "_SPARSE_CHUNK", chunk)
        with pytest.raises(DataError, match=f"row {row + 1} of the 30 rows transformed") as info:
            pre.transform(V, dtype=np.float32, sparse=True)
        messages.add(str(info.value))
    assert len(messages) == 1


def test_fitting_and_transforming_need_little_more_than_the_result(monkeypatch):
    monkeypatch.setattr(preprocess, "_SPARSE_CHUNK", 1 << 15)  # temporaries of 256 KiB
    X = _counts(20_000, 500, 0.2, 5)  # 2M stored values: 16 MB of CSR
    csr = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    names = [f"g{j}" for j in range(500)]
    assert looks_like_counts(X) is not None
    tracemalloc.start()
    try:
        looks_like_counts(X)
        skew_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        pre = Preprocessor(PreprocessConfig(log1p=True))
        Z = pre.fit_transform(X, names, dtype=np.float32, order="C")
        fit_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    result = Z.matrix.data.nbytes + Z.matrix.indices.nbytes + Z.matrix.indptr.nbytes + Z.offset.nbytes
    assert skew_peak < 0.2 * csr  # was five float64 copies of the stored values: 5 x the CSR
    assert fit_peak < result + 0.3 * csr  # was ~4.5 x the CSR besides the result
