"""A NUL byte (0x00) in a table: text parsers read one as the end of its cell (a number cut to '-0', a label 'A\\x00X'
to 'A' by one reader and whole by another), and pandas' hashing took 'A' and 'A\\x00X' for one label; each is a
one-line error naming the place instead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run


def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"g{j}" for j in range(5)])
    frame.insert(0, "sample_id", [f"s{i}" for i in range(n)])
    return frame.assign(label=np.where(frame["g0"] > 0, "A", "B"))


def _with_nul(path, line: int, column: int) -> None:
    """Put a NUL byte inside cell `column` (0-based) of the file's line `line` (1-based)."""
    lines = path.read_bytes().split(b"\n")
    cells = lines[line - 1].split(b",")
    cells[column] = cells[column][:2] + b"\x00" + cells[column][2:]
    lines[line - 1] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nul")
    _frame().to_csv(tmp / "t.csv", index=False)
    res = run(["train", str(tmp / "t.csv"), "--no-group", "--folds", "1", "--epochs", "2", "--hidden", "4", "-q",
               "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    return tmp


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_a_nul_byte_in_a_number_is_an_error_naming_line_and_column(model, tmp_path, command):
    path = tmp_path / "nul.csv"
    _frame(seed=1).to_csv(path, index=False)
    _with_nul(path, 5, 3)  # g2 of the fourth sample
    out = tmp_path / "out.csv"
    args = {"train": ["train", str(path), "--no-group", "--folds", "1", "--epochs", "2", "-o",
                      str(out.with_suffix(".mlp"))],
            "predict": ["predict", str(model / "m.mlp"), str(path), "-o", str(out)],
            "evaluate": ["evaluate", str(model / "m.mlp"), str(path)]}[command]
    assert_clean_error(run(args), "nul.csv: line 5, column 'g2' holds a NUL byte (0x00)")
    assert not out.exists() and not out.with_suffix(".mlp").exists()


def test_a_nul_byte_in_a_label_is_an_error_in_text_and_in_parquet(tmp_path):
    path = tmp_path / "lab.csv"
    _frame().to_csv(path, index=False)
    _with_nul(path, 4, 6)
    assert_clean_error(run(["train", str(path), "--no-group", "--folds", "1", "--epochs", "2",
                            "-o", str(tmp_path / "m")]), "line 4, column 'label' holds a NUL byte")
    frame = _frame()
    frame.loc[2, "label"] = "A\x00X"
    frame.to_parquet(tmp_path / "lab.parquet")
    assert_clean_error(run(["train", str(tmp_path / "lab.parquet"), "--no-group", "--folds", "1", "--epochs", "2",
                            "-o", str(tmp_path / "m")]),
                       "target 'label' holds a label with a NUL byte (0x00), 'A\\x00X', at row 3")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", ["train", "predict"])
def test_a_nul_byte_in_the_header_is_an_error(model, tmp_path, command):
    (tmp_path / "h.csv").write_bytes(b"sample_id,g\x003,label\ns1,1.0,A\ns2,2.0,B\n")
    args = {"train": ["train", str(tmp_path / "h.csv"), "-o", str(tmp_path / "m.mlp")],
            "predict": ["predict", str(model / "m.mlp"), str(tmp_path / "h.csv"), "-o", str(tmp_path / "p.csv")]}
    assert_clean_error(run(args[command]), "line 1, the header's field 2 ('g\\x003') holds a NUL byte (0x00)")
