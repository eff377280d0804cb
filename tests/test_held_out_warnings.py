"""The warnings `train` gives about its held-out predictions: a model that labels every held-out sample as the
majority class (with the remedy), and held-out probabilities worse than always predicting the class shares."""

import numpy as np

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
