"""The train pipeline's loss set-up: class weights enter the loss exactly as specified."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.class_weight import compute_class_weight

from mlpcli.config import TrainOptions
from mlpcli.engine.functional import log_softmax, softplus
from mlpcli.errors import ConfigError
from mlpcli.model_selection import build_loss
from mlpcli.pipeline import load_dataset
from cli_helpers import run
from tables import make_table


def _dataset(tmp_path, task="multiclass", n_classes=3, **kw):
    df = make_table(task=task, n_classes=n_classes, **kw)
    if task == "multiclass":  # make the classes unequal so balanced weights differ from 1
        df = df[~((df["label"] == "typeC") & (df.index % 3 != 0))]
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    target = ["lab0", "lab1", "lab2"] if task == "multilabel" else ["label"]
    ds, _ = load_dataset(str(path), TrainOptions(target=target))
    return ds


def test_balanced_ce_weights_match_sklearn_and_scale_each_sample(tmp_path):
    ds = _dataset(tmp_path)
    setup = build_loss(TrainOptions(class_weight="balanced"), ds, ds.y)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=ds.y)
    np.testing.assert_allclose(setup.loss.class_weight, expected)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(ds.y), 3))
    per_sample = -log_softmax(logits)[np.arange(len(ds.y)), ds.y]
    assert setup.loss.forward(logits, ds.y) == pytest.approx(np.mean(expected[ds.y] * per_sample))
    unweighted = build_loss(TrainOptions(), ds, ds.y).loss.forward(logits, ds.y)
    assert unweighted == pytest.approx(per_sample.mean())


def test_explicit_class_weights_by_label(tmp_path):
    ds = _dataset(tmp_path)
    setup = build_loss(TrainOptions(class_weight="typeC=4"), ds, ds.y)
    np.testing.assert_allclose(setup.loss.class_weight, [1.0, 1.0, 4.0])


def test_binary_bce_gets_negative_and_positive_weights(tmp_path):
    ds = _dataset(tmp_path, task="binary")
    setup = build_loss(TrainOptions(class_weight="balanced", pos_weight=2.0), ds, ds.y)
    w = compute_class_weight("balanced", classes=np.arange(2), y=ds.y)
    assert setup.loss.neg_weight == pytest.approx(w[0]) and setup.loss.pos_weight == pytest.approx(2.0 * w[1])
    z = np.random.default_rng(1).normal(size=(len(ds.y), 1))
    Y = setup.targets(ds.y)
    manual = np.mean(2.0 * w[1] * Y[:, 0] * softplus(-z[:, 0]) + w[0] * (1 - Y[:, 0]) * softplus(z[:, 0]))
    assert setup.loss.forward(z, Y) == pytest.approx(manual)
    assert setup.n_outputs == 1


def test_focal_and_hinge_take_class_weights_as_sample_weights(tmp_path):
    ds = _dataset(tmp_path, task="binary")
    setup = build_loss(TrainOptions(loss="focal", class_weight="case=3"), ds, ds.y)
    sw = setup.sample_weight(ds.y)
    np.testing.assert_allclose(sw, np.where(ds.y == ds.classes.index("case"), 3.0, 1.0))


@pytest.mark.parametrize("loss", ["focal", "hinge"])
def test_multilabel_class_weights_with_focal_or_hinge_are_refused(tmp_path, loss):
    """One weight per sample cannot weigh each label apart: a rare label's positives got 7.5 where BCE gives 10."""
    ds = _dataset(tmp_path, task="multilabel")
    with pytest.raises(ConfigError, match=rf"--class-weight on a multi-label target .* --loss {loss} takes one weight"):
        build_loss(TrainOptions(target=["lab0", "lab1", "lab2"], loss=loss, class_weight="balanced"), ds, ds.y)
    assert build_loss(TrainOptions(target=["lab0", "lab1", "lab2"], loss=loss), ds, ds.y).sample_weight(ds.y) is None


def test_multilabel_balanced_weights_per_label(tmp_path):
    ds = _dataset(tmp_path, task="multilabel")
    setup = build_loss(TrainOptions(target=["lab0", "lab1", "lab2"], class_weight="balanced"), ds, ds.y)
    pos = ds.y.sum(axis=0)
    np.testing.assert_allclose(setup.loss.pos_weight, len(ds.y) / (2 * pos))
    np.testing.assert_allclose(setup.loss.neg_weight, len(ds.y) / (2 * (len(ds.y) - pos)))


@pytest.mark.parametrize("opts,needle", [
    (dict(loss="bce"), "multiclass"),
    (dict(loss="mse"), "regression loss"),
    (dict(label_smoothing=0.1, loss="auto", task="binary"), None),
    (dict(pos_weight=2.0), "--pos-weight"),
    (dict(focal_alpha=0.3), "--focal-alpha"),
    (dict(focal_gamma=1.0), "--focal-gamma"),  # was silently ignored with another loss
])
def test_losses_that_do_not_fit_the_task(tmp_path, opts, needle):
    ds = _dataset(tmp_path)
    if needle is None:
        ds_bin = _dataset(tmp_path, task="binary")
        with pytest.raises(ConfigError, match="--label-smoothing"):
            build_loss(TrainOptions(label_smoothing=0.1), ds_bin, ds_bin.y)
        return
    with pytest.raises(ConfigError, match=needle):
        build_loss(TrainOptions(**opts), ds, ds.y)


def test_counts_are_recognised_for_log1p_auto():
    from mlpcli.data import looks_like_counts

    rng = np.random.default_rng(0)
    counts = rng.lognormal(mean=1.0, sigma=1.2, size=(200, 30))
    assert looks_like_counts(counts) > 1.0
    assert looks_like_counts(np.log1p(counts)) is None  # already transformed
    assert looks_like_counts(rng.normal(size=(200, 30))) is None  # negative values: not counts


def test_an_interrupt_while_reading_leaves_the_import_thread_to_the_exit(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM while the table is read: the error goes up at once, without waiting for the thread
    importing scikit-learn beside the reading (the interrupted reading may hold the import lock it waits for:
    a `train` hung once that way); any other error still waits for it."""
    import sys

    from mlpcli import pipeline as pl

    path = tmp_path / "t.csv"
    path.write_text("sample_id,label,g1\ns1,a,1\ns2,b,2\n")
    waited = []
    monkeypatch.delitem(sys.modules, "sklearn", raising=False)  # as in a fresh process: imported beside
    monkeypatch.setattr(pl, "import_beside", lambda *modules: (lambda: waited.append(modules)))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.data, "load_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pl.load_dataset(str(path), TrainOptions())
    assert waited == []

    def failed(*args, **kwargs):
        raise ValueError("bad table")

    monkeypatch.setattr(pl.data, "load_dataset", failed)
    with pytest.raises(ValueError):
        pl.load_dataset(str(path), TrainOptions())
    assert waited == [pl.TRAINING_IMPORTS]


def test_counts_declined_for_a_few_negative_values_are_a_warning_of_train(tmp_path):
    """A model trained without the log1p its counts need, for one entry error: said under -q (a note had hidden it)."""
    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(2, 0.1, size=(120, 30)).astype(np.float64)
    counts[7, 3] = -4
    frame = pd.DataFrame(counts, columns=[f"g{j}" for j in range(30)])
    frame.insert(0, "label", np.where(counts[:, 0] > np.median(counts[:, 0]), "a", "b"))
    frame.to_csv(tmp_path / "counts.csv", index=False)
    res = run(["train", str(tmp_path / "counts.csv"), "--epochs", "2", "--hidden", "", "--folds", "2", "-q",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    said = [line for line in res.output.splitlines() if "negative, which counts cannot be" in line]
    assert len(said) == 1 and said[0].startswith("warning: --log1p auto: not applied"), res.output


def test_a_signed_feature_among_counts_is_named_not_called_entry_errors(tmp_path):
    """modeldata's hepatic_injury_qsar: one descriptor of 376 negative in 26 % of its rows (0.07 % of the table's
    values) read "59 values are negative ... entry errors? Correct them"; a signed column is named as such."""
    from mlpcli.data import looks_like_counts

    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(2, 0.1, size=(200, 600)).astype(np.float64)
    counts[:, 4] = rng.normal(1.0, 2.0, 200)  # a signed descriptor (a logP): about 30 % of it negative
    warnings: list[str] = []
    names = [f"g{j}" for j in range(600)]
    assert looks_like_counts(counts, [], warnings, names) is None
    assert len(warnings) == 1 and "'g4'" in warnings[0] and "signed measurement" in warnings[0], warnings
    assert "entry errors" not in warnings[0]
    stray = counts.copy()
    stray[9, 7] = -2  # and a stray negative in a count column besides: that one may be an entry error
    warnings = []
    looks_like_counts(stray, [], warnings, names)
    assert len(warnings) == 1 and "entry errors" in warnings[0], warnings
    frame = pd.DataFrame(counts, columns=names)
    frame.insert(0, "label", np.where(counts[:, 0] > np.median(counts[:, 0]), "a", "b"))
    frame.to_csv(tmp_path / "signed.csv", index=False)
    res = run(["train", str(tmp_path / "signed.csv"), "--epochs", "2", "--hidden", "", "--folds", "1", "-q", "--no-group",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "negative values, 'g4' (" in res.output and "entry errors" not in res.output, res.output


@pytest.mark.parametrize("sparse", [False, True])
def test_log1p_auto_says_why_it_declines_counts_with_a_few_negative_values(sparse):
    """5 values of -3 among counts left log1p out without a word; a log or z scale (many negatives) still gets no
    note, and counts with no negative value are taken."""
    import scipy.sparse as sp

    from mlpcli.data import looks_like_counts

    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(2, 0.1, size=(600, 80)).astype(np.float64)
    bad = counts.copy()
    bad[[3, 50, 70, 90, 400], [1, 2, 3, 4, 5]] = -3
    notes: list[str] = []
    assert looks_like_counts(sp.csr_matrix(bad) if sparse else bad, notes) is None
    assert len(notes) == 1 and "5 values are negative, which counts cannot be" in notes[0], notes
    notes, warnings = [], []  # where a caller keeps warnings (train, cv, the learning curve), it is one of them
    assert looks_like_counts(sp.csr_matrix(bad) if sparse else bad, notes, warnings) is None
    assert notes == [] and len(warnings) == 1 and "5 values are negative" in warnings[0]
    z = (counts - counts.mean(axis=0)) / counts.std(axis=0)
    assert looks_like_counts(sp.csr_matrix(z) if sparse else z, notes) is None and notes == []
    assert looks_like_counts(sp.csr_matrix(counts) if sparse else counts, notes) > 1.0 and notes == []
