"""What `predict`, `evaluate` and `explain` say about single cells and options, from a review by use: a value far
beyond its feature's training values (a typo, 1e30) moved a prediction without a word; the missing-values error
counted every column's gaps as the first column's; explain gave evaluate's advice for a --target it lacks, blamed
round-off where more steps were needed, and called a regression model's targets classes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cli_helpers import assert_clean_error, run


def test_a_value_far_beyond_the_training_values_is_named(small, tmp_path):
    frame = pd.read_csv(small / "t.csv")
    frame.loc[5, "g3"] = 1e30
    frame.to_csv(tmp_path / "typo.csv", index=False)
    for command in (["predict", "-o", str(tmp_path / "typo_p.csv")], ["evaluate"]):
        res = run([command[0], str(small / "m.mlp"), str(tmp_path / "typo.csv"), *command[1:]])
        assert res.exit_code == 0, res.output
        text = " ".join(res.output.split())
        assert "a value lies more than 1,000 training spreads from its feature's training centre (and 100 times as " \
               "far as its training values reached) — the first in 'g3' at row 6 (id 's5')" in text, text
    frame.loc[7, "g1"] = -5e6
    frame.to_csv(tmp_path / "two.csv", index=False)
    res = run(["predict", str(small / "m.mlp"), str(tmp_path / "two.csv"), "-o", str(tmp_path / "p.csv")])
    assert "2 values lie more than 1,000 training spreads" in " ".join(res.output.split())
    # the training table itself, and values a few hundred spreads out, are no typo to name
    res = run(["predict", str(small / "m.mlp"), str(small / "t.csv"), "-o", str(tmp_path / "q.csv")])
    assert res.exit_code == 0 and "training spreads" not in res.output
    frame = pd.read_csv(small / "t.csv")
    frame.loc[5, "g3"] = 300 * frame["g3"].std()
    frame.to_csv(tmp_path / "far.csv", index=False)
    res = run(["predict", str(small / "m.mlp"), str(tmp_path / "far.csv"), "-o", str(tmp_path / "r.csv")])
    assert res.exit_code == 0 and "training spreads" not in res.output


def test_the_missing_values_error_counts_each_column(small, tmp_path):
    frame = pd.read_csv(small / "t.csv")
    frame.loc[3, "g0"] = np.nan
    frame.loc[5:9, "g1"] = np.nan
    frame.to_csv(tmp_path / "na.csv", index=False)
    res = run(["predict", str(small / "m.mlp"), str(tmp_path / "na.csv"), "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "feature column 'g0' has a missing value at row 4 (id 's3')",
                       "(missing values in rows 1-60: 'g0' (1), 'g1' (5))")


def test_explain_says_its_own_remedies(small, tmp_path):
    model, table = str(small / "m.mlp"), str(small / "t.csv")
    res = run(["explain", model, table, "--target", "nosuch"])
    assert_clean_error(res, "has no target column 'nosuch'", "explain reads labels only when the table has them")
    assert "evaluation needs" not in res.output and "mlpcli predict" not in res.output
    # far above float32's round-off with one step: more steps (and a reachable --tol), not round-off alone
    res = run(["explain", model, table, "--steps", "1", "--output", "prob", "--tol", "1e-9"])
    if res.exit_code == 1:  # (a network this small may pass with any steps)
        message = res.output.strip().splitlines()[-1]
        assert "raise --steps (now 1), and use --tol 1e-05 or more" in message or "which more steps cannot close" \
            in message


def test_explain_class_of_a_regression_model_is_a_usage_error_naming_targets(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(80, 4)), columns=[f"g{j}" for j in range(4)])
    frame["label"] = 3 * frame["g0"] + rng.normal(size=80)
    frame.insert(0, "sample_id", [f"s{i}" for i in range(80)])
    frame.to_csv(tmp_path / "r.csv", index=False)
    model = str(tmp_path / "r.mlp")
    assert run(["train", str(tmp_path / "r.csv"), "--no-group", "--folds", "1", "--epochs", "2", "-q",
                "-o", model]).exit_code == 0
    res = run(["explain", model, str(tmp_path / "r.csv"), "--class", "nope"])
    assert_clean_error(res, "--class 'nope' is not one of the model's targets ('label')", code=2)


def test_a_typo_is_named_for_a_model_of_counts_too(tmp_path):
    """After log1p, 1e30 is 69 and lay only ~40 training spreads out: the warning fired for 11 of 2,000 such typos
    (one gene each) on the sample data's model, and a label changed without it in 599."""
    rng = np.random.default_rng(4)
    counts = rng.poisson(np.exp(rng.normal(3, 1, size=(1, 30))), size=(120, 30)).astype(float)
    frame = pd.DataFrame(counts, columns=[f"G{j}" for j in range(30)])
    frame.insert(0, "label", np.where(counts[:, 0] > np.median(counts[:, 0]), "hi", "lo"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(120)])
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = str(tmp_path / "m.mlp")
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "2", "--epochs", "3", "--log1p", "-o", model])
    assert res.exit_code == 0, res.output
    copies = pd.concat([frame.iloc[[0]]] * 30, ignore_index=True)
    copies["sample_id"] = [f"c{i}" for i in range(30)]
    for j in range(30):
        copies.loc[j, f"G{j}"] = 1e30
    copies.to_csv(tmp_path / "typos.csv", index=False)
    res = run(["predict", model, str(tmp_path / "typos.csv"), "-o", str(tmp_path / "p.csv")])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "30 values lie more than 1,000,000 times its feature's typical training value" in text
    # counts a hundred times the typical ones are no typo to name
    frame.loc[3, "G5"] = frame["G5"].median() * 100
    frame.to_csv(tmp_path / "high.csv", index=False)
    res = run(["predict", model, str(tmp_path / "high.csv"), "-o", str(tmp_path / "q.csv")])
    assert res.exit_code == 0 and "typical training value" not in res.output


def test_batches_are_matched_as_numbers_and_a_missing_batch_is_no_new_site(tmp_path):
    """A cohort whose batch column reads 1.0 where training read 1 was warned of three unseen batches (labels were
    matched so); an empty batch cell was "batch 'NA' (1 samples) not seen in training"."""
    from tables import make_table

    train = make_table("binary", n_patients=30, seed=2)
    train["batch"] = train["batch"].map({"B1": 1, "B2": 2, "B3": 3})
    train.to_csv(tmp_path / "t.csv", index=False)
    model = str(tmp_path / "m.mlp")
    assert run(["train", str(tmp_path / "t.csv"), "--folds", "2", "--epochs", "2", "-q", "-o", model]).exit_code == 0
    cohort = make_table("binary", n_patients=10, seed=3)
    cohort["batch"] = cohort["batch"].map({"B1": "1.0", "B2": "2.0", "B3": "3.0"})
    cohort.loc[0, "batch"] = None
    cohort.loc[1, "batch"] = "7.0"
    cohort.to_csv(tmp_path / "c.csv", index=False)
    res = run(["predict", model, str(tmp_path / "c.csv"), "-o", str(tmp_path / "p.csv")])
    text = " ".join(res.output.split())
    assert res.exit_code == 0
    assert "batch '7.0' (1 sample) not seen in training (trained on '1', '2', '3')" in text
    assert "'1.0'" not in text and "'NA'" not in text
    assert "1 sample without a value in the batch column 'batch'" in text


def test_a_model_without_standardisation_judges_no_value_far(tmp_path):
    """With --no-standardize the values keep their units and no training scale: counts in the thousands are no typo."""
    rng = np.random.default_rng(6)
    counts = rng.poisson(2000, size=(80, 6)).astype(float)
    frame = pd.DataFrame(counts, columns=[f"G{j}" for j in range(6)])
    frame.insert(0, "label", np.where(np.arange(80) % 2, "a", "b"))
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = str(tmp_path / "m.mlp")
    assert run(["train", str(tmp_path / "t.csv"), "--no-group", "--no-standardize", "--folds", "2", "--epochs", "2",
                "-q", "-o", model]).exit_code == 0
    res = run(["predict", model, str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "training spreads" not in res.output and "typical training" not in res.output


def test_a_models_own_missing_values_error_gives_a_remedy_for_prediction(small):
    """Model.predict_output on rows with gaps advised "pass --impute ... or remove them": a training option, which a
    fitted model cannot take; now the remedy predict gives (fill them, or retrain with --impute)."""
    import pytest

    from mlpcli import model_io
    from mlpcli.errors import DataError

    model = model_io.load(small / "m.mlp")
    X = pd.read_csv(small / "t.csv")[model.feature_names].to_numpy(dtype=float)
    X[2, 1] = np.nan
    with pytest.raises(DataError) as info:
        model.predict_output(X)
    message = str(info.value)
    assert "the model was trained without --impute, so fill them or retrain with --impute" in message, message
    assert "pass --impute" not in message


def test_a_threshold_is_refused_for_a_multiclass_model_as_predict_refuses_it(small, tmp_path):
    """Model.predict_classes(P, threshold=0.3) on a multiclass model ignored the threshold without a word."""
    import pytest

    from mlpcli import model_io
    from mlpcli.errors import ConfigError, DataError

    frame = pd.read_csv(small / "t.csv")
    frame["label"] = np.array(["a", "b", "c"])[np.arange(len(frame)) % 3]
    frame.to_csv(tmp_path / "three.csv", index=False)
    res = run(["train", str(tmp_path / "three.csv"), "--target", "label", "--folds", "1", "--epochs", "2", "-q",
               "-o", str(tmp_path / "three.mlp")])
    assert res.exit_code == 0, res.output
    model = model_io.load(tmp_path / "three.mlp")
    assert model.task == "multiclass"
    P = np.full((4, 3), 1 / 3)
    assert model.predict_classes(P).shape == (4,)
    with pytest.raises(ConfigError, match="threshold= applies to a binary or multi-label model"):
        model.predict_classes(P, threshold=0.3)
    # two of the three columns were labelled without a word; one column was numpy's AxisError
    for wrong in (P[:, :2], P[:, 0]):
        with pytest.raises(DataError, match=r"proba must be \(rows, 3\)"):
            model.predict_classes(wrong)
    X = np.zeros((3, len(model.feature_names)))
    X[1, 2] = np.inf  # a RuntimeWarning, then "overflowed the network's float32 arithmetic: ... enters it at nan"
    with pytest.raises(DataError, match=f"row 2: feature {model.feature_names[2]!r} is infinite"):
        model.predict_output(X)
