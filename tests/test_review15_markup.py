"""Names from the data and the library's notes are printed as written: rich would read 'T [naive]' or
'loss:ce[large logits]' as markup and drop the bracketed part."""

import numpy as np
import pandas as pd

from cli_helpers import run


def _table(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        label = ("T [naive]", "B")[i % 2]
        x = rng.normal(size=3) + 2.0 * (i % 2)
        rows.append({"sample_id": f"S{i}", "patient_id": f"P{i // 2}", "label": label,
                     **{f"g{j}": x[j] for j in range(3)}})
    path = tmp_path / "cells.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_class_names_with_brackets_show_in_train_and_evaluate_tables(tmp_path):
    table, model = _table(tmp_path), tmp_path / "m.mlp"
    res = run(["train", str(table), "--folds", "2", "--epochs", "2", "--hidden", "4", "-o", str(model)])
    assert res.exit_code == 0, res.output
    assert "class T [naive]" in res.output  # the split table's row
    res = run(["evaluate", str(model), str(table)])
    assert res.exit_code == 0, res.output
    confusion = [line for line in res.output.splitlines() if "T [naive]" in line and "│" in line]
    assert confusion, res.output


def test_gradcheck_names_its_large_input_components():
    res = run(["gradcheck", "--only", "activation"])
    assert res.exit_code == 0, res.output
    assert "activation:sigmoid[large inputs]" in res.output
