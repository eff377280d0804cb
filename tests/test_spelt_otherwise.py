"""Names and ids a table writes otherwise than the model or itself does elsewhere: patient ids that are one number
written two ways (a split leaking one patient across folds), a label column spelt in another letter case (explain
ranking predicted classes without a word), id and group columns with spaces around their names (predict writing row
numbers for the ids), batches that read as one number."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cli_helpers import run

GENES = [f"G{j:02d}" for j in range(12)]
FAST = ["--epochs", "5", "--folds", "2", "--hidden", "", "--seed", "0"]


def table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, len(GENES))) + 1.5 * y[:, None] * (np.arange(len(GENES)) < 3)
    df = pd.DataFrame(X.round(4), columns=GENES)
    df.insert(0, "label", np.array(["A", "B"])[y])
    df.insert(0, "patient_id", [f"P{i // 2}" for i in range(n)])
    df.insert(0, "sample_id", [f"S{seed}_{i:03d}" for i in range(n)])
    return df


def test_patient_ids_that_read_as_one_number_are_warned_of(tmp_path):
    df = table()
    df["patient_id"] = [f"{i // 2}" if i % 2 == 0 else f"{i // 2}.0" for i in range(len(df))]
    df.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp"), *FAST])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "--group 'patient_id' holds ids that differ only in how one number is written: '0', '0.0'" in text, text
    assert "one patient's samples can be on both sides of a split" in text
    df["patient_id"] = [f"{i // 2}" for i in range(len(df))]  # written one way: nothing to say
    df.to_csv(tmp_path / "ok.csv", index=False)
    res = run(["train", str(tmp_path / "ok.csv"), "-o", str(tmp_path / "m.mlp"), *FAST])
    assert res.exit_code == 0 and "how one number is written" not in res.output


def test_a_label_column_spelt_otherwise_is_named_where_labels_are_optional(tmp_path):
    table().to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "train.csv"), "-o", str(model), *FAST]).exit_code == 0
    table(40, 1).rename(columns={"label": "Label"}).to_csv(tmp_path / "cohort.csv", index=False)
    for command in (["explain", str(model), str(tmp_path / "cohort.csv"), "-o", str(tmp_path / "e.csv")],
                    ["predict", str(model), str(tmp_path / "cohort.csv"), "-o", str(tmp_path / "p.csv")]):
        res = run(command)
        assert res.exit_code == 0, res.output
        text = " ".join(res.output.split())
        assert "has no target column 'label' but 'Label'" in text and "--target Label reads it" in text, text
    res = run(["explain", str(model), str(tmp_path / "cohort.csv"), "--target", "Label", "-o", str(tmp_path / "e.csv")])
    assert res.exit_code == 0 and "has no target column" not in res.output, res.output


def test_role_columns_with_spaces_around_their_names_keep_the_ids(tmp_path):
    table().to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "train.csv"), "-o", str(model), *FAST]).exit_code == 0
    cohort = table(40, 1)
    cohort.columns = [f" {c} " for c in cohort.columns]
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    out = tmp_path / "p.csv"
    res = run(["predict", str(model), str(tmp_path / "cohort.csv"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "id column ' sample_id ' read as 'sample_id'" in " ".join(res.output.split())
    written = pd.read_csv(out)
    assert written.iloc[:, 0].tolist() == [f"S1_{i:03d}" for i in range(40)]  # the ids, not row numbers


def test_batches_that_read_as_one_number_are_warned_of(tmp_path):
    df = table()
    df["batch"] = ["1" if i % 3 else "01" for i in range(len(df))]
    df.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp"), *FAST])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "--batch column 'batch' holds batches that differ only in how one number is written" in text, res.output
    assert "held out apart by cv --leave-batch-out" in text  # train has no --leave-batch-out
