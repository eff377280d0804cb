"""Numbers such as 95,823 in a table whose every comma number has groups of three digits can be counts with
thousands separators or values with three decimals: read with decimal commas (as a three-place export writes
them), the note says the other reading and how to get it; forced to decimal points, the error names both."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cli_helpers import assert_clean_error, run


def _counts(path) -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"sample_id": [f"s{i}" for i in range(60)], "label": np.array(["A", "B"])[rng.integers(0, 2, 60)]})
    for j in range(4):
        frame[f"g{j}"] = [f"{v:,}" for v in rng.integers(1000, 99999, 60)]
    frame.to_csv(path, sep="\t", index=False)


def test_the_note_gives_the_other_reading(tmp_path):
    _counts(tmp_path / "c.tsv")
    res = run(["train", str(tmp_path / "c.tsv"), "--no-group", "--folds", "1", "--epochs", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    first = pd.read_csv(tmp_path / "c.tsv", sep="\t", dtype=str)["g0"].iloc[0]
    assert (f"numbers read with decimal commas ('{first}' is {first.replace(',', '.')}, not {first.replace(',', '')} "
            "with a thousands separator") in text and "write the numbers without them" in text


def test_decimal_points_forced_name_both_readings(tmp_path):
    _counts(tmp_path / "c.tsv")
    assert_clean_error(run(["train", str(tmp_path / "c.tsv"), "--no-group", "--folds", "1", "--epochs", "1",
                            "--decimal", "dot", "-o", str(tmp_path / "m.mlp")]),
                       "with thousands separators or a decimal comma: write them without separators",
                       "pass --decimal comma (and --sep) if the commas are decimal marks")
