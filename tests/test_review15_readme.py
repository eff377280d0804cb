"""What a walk through the README found: names from the data printed as written (rich read 'T [naive]' or
'loss:ce[large logits]' as markup and dropped the bracketed part), and learning curves of the network train
ships."""

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


def test_learning_curve_with_hidden_auto_curves_the_noisy_layer_on_wide_tables(tmp_path):
    """With more features than training rows, train prefers (and on such tables ships) the hidden layer with
    input noise; the learning curve trains that network, and says so."""
    from tables import write_table

    wide = write_table(tmp_path, "wide.csv", n_patients=20, n_features=150)
    narrow = write_table(tmp_path, "narrow.csv", n_patients=20, n_features=6)
    for table, noisy in ((wide, True), (narrow, False)):
        res = run(["diagnose", "--learning-curve", table, "--fractions", "0.5,1", "--epochs", "3", "--json"])
        assert res.exit_code == 0, res.output
        assert ("and input noise (--augment-noise auto" in res.output) is noisy, res.output
