"""The warnings `train` gives about its held-out predictions: a model that labels every held-out sample as the
majority class (with the remedy), and held-out probabilities worse than always predicting the class shares."""

import numpy as np
import pandas as pd

from mlpcli.pipeline import held_out_warnings
from cli_helpers import run
from tables import make_table


FAST = ["--epochs", "200", "--patience", "5", "--n-jobs", "1", "--folds", "2"]


def test_one_class_for_every_sample_names_the_imbalance_and_the_remedy():
    y = np.r_[np.zeros(95, int), np.ones(5, int)]
    proba = np.linspace(0.01, 0.3, 100)[:, None]  # P(positive) never reaches 0.5; ranks the positives last
    warned = held_out_warnings("binary", y, proba, ["neg", "pos"], {"balanced_accuracy": 0.5, "roc_auc": 0.9,
                                                                     "log_loss": 0.15}, "out-of-fold")
    assert len(warned) == 1
    assert "predicts 'neg' for every one of the 100 out-of-fold samples" in warned[0]
    assert "ROC AUC is 0.900" in warned[0] and "5 of 100 samples are 'pos'" in warned[0]
    assert "--class-weight balanced" in warned[0]
    # weighted already, or balanced classes: no advice to weight them
    for weighted, yy in ((True, y), (False, np.arange(100) % 2)):
        text = held_out_warnings("binary", yy, proba, ["neg", "pos"], {"balanced_accuracy": 0.5}, "validation",
                                 weighted=weighted)
        assert len(text) == 1 and "--class-weight" not in text[0] and "too little" in text[0]


def test_the_imbalance_counts_one_sample_in_the_singular_and_thousands_with_a_separator():
    """"(1 of 40 samples are 'pos')" and "every one of the 2000 out-of-fold samples", where the notes beside them
    write 2,000."""
    for y, said in ((np.r_[np.zeros(39, int), 1], "(1 of 40 samples is 'pos')"),
                    (np.r_[np.zeros(1990, int), np.ones(10, int)], "every one of the 2,000 out-of-fold samples")):
        warned = held_out_warnings("binary", y, np.full((len(y), 1), 0.1), ["neg", "pos"],
                                   {"balanced_accuracy": 0.5}, "out-of-fold")
        assert len(warned) == 1 and said in warned[0], warned


def test_log_loss_worse_than_the_class_shares_is_a_warning_unless_class_weighted():
    y = np.arange(60) % 3
    wrong = np.eye(3)[(y + 1) % 3] * 0.9 + 0.1 / 3  # confident and often wrong
    right = np.eye(3)[y] * 0.5 + 0.5 / 3
    ok = {"balanced_accuracy": 1.0, "log_loss": 0.6}
    assert held_out_warnings("multiclass", y, right, list("ABC"), ok, "out-of-fold") == []
    bad = {"balanced_accuracy": 0.0, "log_loss": 2.0}
    warned = held_out_warnings("multiclass", y, wrong, list("ABC"), bad, "out-of-fold", calibrated=False)
    assert len(warned) == 1 and "log loss 2.000 is worse than always predicting the class shares (1.099)" in warned[0]
    assert "not calibrated" in warned[0]
    assert held_out_warnings("multiclass", y, wrong, list("ABC"), bad, "out-of-fold", weighted=True) == []
    assert held_out_warnings("regression", y.astype(float), y[:, None], ["t"], bad, "out-of-fold") == []
    # a run cut short by --epochs (no network stopped early) is not judged
    assert held_out_warnings("multiclass", y, wrong, list("ABC"), bad, "out-of-fold", converged=False) == []


def test_train_on_rare_positives_warns_and_prints_the_split_title_whole(tmp_path):
    df = make_table("binary", n_patients=30, per_patient=2, n_features=6, signal=0.0)
    df["label"] = np.where(df["patient_id"].isin(["P000", "P001", "P002", "P003"]), "pos", "neg")  # 8 of 60
    path = tmp_path / "rare.csv"
    df.to_csv(path, index=False)
    res = run(["train", str(path), *FAST, "--hidden", "none", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "warning: the model predicts 'neg' for every one of the 60 out-of-fold samples" in flat
    assert "--class-weight balanced" in flat
    title = next(line for line in res.output.splitlines() if line.startswith("Cross-fitting:"))
    assert title.rstrip().endswith("each sample held out by exactly one member"), title


# ── a batch confined to the held-out rows ────────────────────────────────────────────────────────────────


def test_a_validation_table_shifted_like_a_batch_is_warned_about_and_a_plain_one_is_not(tmp_path):
    """A batch effect confined to the validation patients made the validation loss climb: `train` and `diagnose`
    said overfit, and following their remedies made it worse. `train` now says the held-out rows differ."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 30))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(30)])
    frame.insert(0, "label", np.where(X[:, 0] + X[:, 1] > 0, "a", "b"))
    frame.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "same.csv", index=False)
    shifted = frame.iloc[200:].copy()
    shifted.iloc[:, 1:] += rng.normal(1.5, 0.5, size=30)  # every gene moved by its own offset
    shifted.to_csv(tmp_path / "batch.csv", index=False)
    common = ["--no-group", "--hidden", "8", "--epochs", "20", "-o", str(tmp_path / "m.mlp")]
    res = run(["train", str(tmp_path / "train.csv"), "--val-data", str(tmp_path / "batch.csv"), *common])
    assert res.exit_code == 0, res.output
    assert "the --val-data table differs from the training rows as a new cohort's would" in res.output
    assert "cv --leave-batch-out" in res.output
    res = run(["diagnose", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0 and "the validation rows (" in res.output and "new cohort's would" in res.output
    res = run(["train", str(tmp_path / "train.csv"), "--val-data", str(tmp_path / "same.csv"), *common])
    assert res.exit_code == 0 and "new cohort's would" not in res.output, res.output
    res = run(["diagnose", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0 and "new cohort's would" not in res.output


def test_the_members_whose_held_out_rows_are_shifted_are_named():
    from types import SimpleNamespace

    from mlpcli.model_selection.crossfit import held_out_shift_warnings

    def member(share):
        return SimpleNamespace(val_shift={"shifted": share > 0.1, "mean_shifted": share, "features": 50,
                                          "most_shifted": ["g3", "g7"]})

    (one,) = held_out_shift_warnings([member(0.9), member(0.0), member(0.02)])
    assert one.startswith("member 1's held-out rows differ from its training rows") and "90% of the 50" in one
    (two,) = held_out_shift_warnings([member(0.5), member(0.0), member(0.9)])
    assert two.startswith("members 1 and 3's held-out rows differ from their training rows") and "90%" in two
    assert held_out_shift_warnings([member(0.05), member(0.0)]) == []


def test_an_l_bfgs_model_that_converged_is_warned_of_as_one_that_stopped_early(tmp_path):
    """L-BFGS never stops early on its validation loss, and the warnings waited for a network that had: a softmax
    regression by L-BFGS (what --hidden auto often ships) scoring an out-of-fold log loss of 6 against the class shares'
    0.69 on random labels went without a word."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(60, 40)), columns=[f"g{j}" for j in range(40)])
    df["label"] = np.tile(["A", "B"], 30)
    df.to_csv(tmp_path / "random.csv", index=False)
    res = run(["train", str(tmp_path / "random.csv"), "--no-group", "--optimizer", "lbfgs", "--hidden", "none",
               "--l2", "1e-6", "--folds", "2", "--n-jobs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "2 converged" in res.output
    assert "is worse than always predicting the class shares (0.693)" in " ".join(res.output.split()), res.output
