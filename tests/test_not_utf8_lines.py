"""Regressions from a command-line review of training's piecewise text reader: a byte that is not UTF-8
deep in a table is named by its own line (not by a position in a parser's buffer, nor by the first line of
the piece it fell in)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run

N_ROWS = 6000
BAD_LINE = 5001  # the file's line (the header is line 1): data row 5,000


def _table(n: int = N_ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"g{j}" for j in range(6)])
    frame.insert(0, "sample_id", [f"S{i:05d}" for i in range(n)])
    frame["label"] = np.where(frame.g0 > 0, "A", "B")
    return frame


@pytest.fixture(scope="module")
def not_utf8(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("utf8")
    lines = _table().to_csv(index=False).encode().split(b"\n")
    lines[BAD_LINE - 1] = lines[BAD_LINE - 1].replace(b"S0", b"S\xff0", 1)  # in the id column
    text = b"\n".join(lines)
    (folder / "bad.csv").write_bytes(text)
    (folder / "bad.csv.gz").write_bytes(gzip.compress(text))
    good = _table().to_csv(index=False).encode()
    (folder / "good.csv").write_bytes(good)
    return {"folder": folder, "text": text}


@pytest.mark.parametrize("name", ["bad.csv", "bad.csv.gz", "-"])
def test_train_names_the_line_of_a_byte_that_is_not_utf8(not_utf8, name, monkeypatch):
    folder = not_utf8["folder"]
    monkeypatch.chdir(folder)
    result = run(["train", name, "-o", "m.mlp", "--folds", "1", "--epochs", "2"],
                 input=not_utf8["text"] if name == "-" else None)
    assert_clean_error(result, "not UTF-8 text (byte 0xff on line 5001)", "save it as UTF-8")
    assert not (folder / "m.mlp").exists()


def test_predict_names_the_line_of_a_byte_that_is_not_utf8(not_utf8, monkeypatch):
    folder = not_utf8["folder"]
    monkeypatch.chdir(folder)
    assert run(["train", "good.csv", "-o", "good.mlp", "--folds", "1", "--epochs", "2"]).exit_code == 0
    result = run(["predict", "good.mlp", "bad.csv", "-o", "p.csv"])
    assert_clean_error(result, "not UTF-8 text (byte 0xff on line 5001)")  # before: "near line 2"
    assert not (folder / "p.csv").exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("name", ["latin.csv", "latin.csv.gz", "-"])
def test_a_latin1_header_is_said_as_train_says_it(not_utf8, command, name, monkeypatch):
    """A gene name in Latin-1 ("é", "È") on the header line: predict and evaluate said "the header line is not
    UTF-8 text (a binary file?)", which misled; train's words name the byte, its line and the remedy."""
    folder = not_utf8["folder"]
    monkeypatch.chdir(folder)
    if not (folder / "small.mlp").exists():
        _table(60).to_csv(folder / "small.csv", index=False)
        assert run(["train", "small.csv", "-o", "small.mlp", "--folds", "1", "--epochs", "2", "--quiet"]).exit_code == 0
    text = _table(60).to_csv(index=False).encode().replace(b"g1", b"g\xc8", 1)  # a model feature's name
    (folder / "latin.csv").write_bytes(text)
    (folder / "latin.csv.gz").write_bytes(gzip.compress(text))
    trained = run(["train", "latin.csv", "-o", "never.mlp", "--folds", "1", "--epochs", "2"])
    assert_clean_error(trained, "not UTF-8 text (byte 0xc8 on line 1); save it as UTF-8")
    result = run([command, "small.mlp", name] + (["--target", "label"] if command == "evaluate" else []),
                 input=text if name == "-" else None)
    assert_clean_error(result, "not UTF-8 text (byte 0xc8 on line 1); save it as UTF-8")
    assert "binary" not in result.output


@pytest.mark.parametrize("name", ["latin.csv", "-"])
def test_every_reader_says_not_utf8_in_the_same_words(three_classes, name, monkeypatch):
    """train's whole-table reader said "cannot parse latin.csv as CSV: not UTF-8 text ...", the streamed readers
    (predict, evaluate) "cannot parse latin.csv: not UTF-8 text ...": two copies of one message."""
    d, df = three_classes
    monkeypatch.chdir(d)
    text = df.to_csv(index=False).encode().replace(b"S0007", b"S\xe90007", 1)  # an id on line 9
    (d / "latin.csv").write_bytes(text)
    shown = "standard input" if name == "-" else name
    said = f"Error: cannot parse {shown}: not UTF-8 text (byte 0xe9 on line 9); save it as UTF-8"
    for args in (["train", name, "-o", "never.mlp", "--folds", "1", "--epochs", "2"], ["predict", "m.mlp", name],
                 ["evaluate", "m.mlp", name]):
        result = run(args, input=text if name == "-" else None)
        assert_clean_error(result)
        assert result.output.strip().splitlines()[-1] == said, (args, result.output)
