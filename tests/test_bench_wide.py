"""The wide-table benchmark keeps working (nothing here is timed: only its plumbing)."""

import pandas as pd
import pytest

from benchmark_scripts import loaded


@pytest.fixture(scope="module")
def bench():
    with loaded("bench_wide") as module:
        yield module


def test_the_table_has_a_label_and_the_asked_width(bench, tmp_path):
    path = tmp_path / "w.csv"
    bench.make_table(path, rows=12, genes=50)
    frame = pd.read_csv(path)
    assert frame.shape == (12, 51) and frame.columns[0] == "label" and set(frame["label"]) <= {"A", "B", "C"}


def test_main_prints_one_row_per_width_and_checkout(bench, capsys):
    assert bench.main(["--rows", "30", "--genes", "40,60"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["genes", "rows", "MB", "read_csv"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[1], r[4]) for r in rows] == [("40", "30", "this"), ("60", "30", "this")]
    assert all(float(r[5]) > 0 and float(r[7]) > 0 for r in rows)  # train and predict seconds
