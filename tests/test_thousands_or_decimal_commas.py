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


def test_a_warning_gives_the_other_reading_even_under_quiet(tmp_path):
    _counts(tmp_path / "c.tsv")
    first = pd.read_csv(tmp_path / "c.tsv", sep="\t", dtype=str)["g0"].iloc[0]
    said = (f"warning: {tmp_path / 'c.tsv'}: numbers read with decimal commas ('{first}' is {first.replace(',', '.')}, not "
            f"{first.replace(',', '')} with a thousands separator")
    res = run(["train", str(tmp_path / "c.tsv"), "--no-group", "--folds", "1", "--epochs", "1", "-q",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert said in text and "write the numbers without them" in text
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "c.tsv"), "-q", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and said in " ".join(res.output.split())


def test_decimal_commas_that_cannot_be_separators_stay_a_note(tmp_path):
    rows = ["sample_id;g0;g1;label"] + [f"s{i};0,{100 + i};{i % 7},5;{'AB'[i % 2]}" for i in range(40)]
    (tmp_path / "eu.csv").write_text("\n".join(rows) + "\n")
    res = run(["train", str(tmp_path / "eu.csv"), "--no-group", "--folds", "1", "--epochs", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert f"· {tmp_path / 'eu.csv'}: numbers read with decimal commas ('0,100' is 0.100)" in text
    assert "warning:" not in text


def test_decimal_points_forced_name_both_readings(tmp_path):
    _counts(tmp_path / "c.tsv")
    assert_clean_error(run(["train", str(tmp_path / "c.tsv"), "--no-group", "--folds", "1", "--epochs", "1",
                            "--decimal", "dot", "-o", str(tmp_path / "m.mlp")]),
                       "with thousands separators or a decimal comma: write them without separators",
                       "pass --decimal comma (and --sep) if the commas are decimal marks")


def test_a_parquet_text_column_of_comma_numbers_is_told_to_store_numbers_not_to_pass_decimal(tmp_path):
    """A parquet file stores its columns typed: a text column of "1,5" was told to "pass --decimal comma (and
    --sep)", options refused for parquet files. The advice is to store the numbers as numbers, and the one stray cell
    of a column of numbers names the file too (its message had no file)."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"sample_id": [f"s{i}" for i in range(12)], "label": ["A", "B"] * 6,
                          "g0": rng.normal(size=12), "g1": [f"{v:.2f}".replace(".", ",") for v in rng.normal(size=12)]})
    frame.to_parquet(tmp_path / "t.parquet")
    res = run(["train", str(tmp_path / "t.parquet"), "-o", str(tmp_path / "m.mlp")])
    first = frame["g1"].iloc[0]
    assert_clean_error(res, "t.parquet", "'g1'", f"decimal commas such as '{first}', stored as text",
                       f"store the column as numbers ({first.replace(',', '.')})")
    assert "--decimal" not in res.output and "--sep" not in res.output
    frame["g1"] = [f"{v:.2f}" for v in rng.normal(size=12)]
    frame.loc[4, "g1"] = "1,5"
    frame.to_parquet(tmp_path / "t.parquet")
    res = run(["train", str(tmp_path / "t.parquet"), "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "t.parquet:", "'g1' holds the non-numeric value '1,5' at row 5",
                       "stored as text, with a decimal comma: store it as the number 1.5")
    assert "--decimal" not in res.output and not (tmp_path / "m.mlp").exists()
