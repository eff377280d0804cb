"""The synthetic-table benchmark keeps working (nothing here is timed: its tables and plumbing)."""

import numpy as np
import pytest

from benchmark_scripts import loaded


@pytest.fixture(scope="module")
def bench():
    with loaded("bench_synthetic") as module:
        yield module


SHAPES = {"tiny": (40, 2000, 4), "small": (150, 1000, 2), "batches": (300, 500, 3), "classes20": (1000, 1000, 20),
          "cells": (2000, 2000, 8), "weak": (500, 5000, 3), "xor": (400, 300, 4), "marker": (400, 200, 2),
          "markers": (120, 3000, 4)}


def test_each_table_has_its_documented_shape_and_is_drawn_from_its_seed(bench):
    assert set(bench.TABLES) == set(SHAPES)
    for name, (n, p, k) in SHAPES.items():
        X, y, groups = bench.make(name, 0)
        assert X.shape == (n, p) and len(np.unique(y)) == k, name
        assert (groups is not None) == (name in ("batches", "cells")), name
        if name in ("cells", "weak"):  # counts
            assert X.min() >= 0 and np.array_equal(X, np.round(X)), name
    X, y, _ = bench.make("marker", 0)  # one gene carries the classes: bimodal, its modes 4 SDs apart
    gap = X[y == "c1", 0].mean() - X[y == "c0", 0].mean()
    assert gap == pytest.approx(4.0, abs=0.3) and abs(X[y == "c1", 1].mean() - X[y == "c0", 1].mean()) < 0.3
    X, y, _ = bench.make("markers", 0)  # gene c up in class c
    for c in range(4):
        assert X[y == f"c{c}", c].mean() - X[y != f"c{c}", c].mean() == pytest.approx(4.0, abs=0.6)
    a, b, c = bench.make("tiny", 1), bench.make("tiny", 1), bench.make("tiny", 2)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])


def test_main_prints_a_row_per_table_seed_and_model(bench, capsys):
    assert bench.main(["--tables", "xor", "--seeds", "0", "--mlpcli", "lin:hidden=,epochs=3", "--folds", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[4], r[5]) for r in rows] == [("xor", "0", "mlpcli:lin"), ("xor", "0", "logreg")]
    assert all(0 <= float(r[6]) <= 1 for r in rows)


def test_an_unknown_table_is_a_usage_error(bench, capsys):
    assert bench.main(["--tables", "tiny,nope"]) == 2
    assert "unknown table nope" in capsys.readouterr().err
