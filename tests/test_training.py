import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from mlpcli import early_stopping, training
from mlpcli.engine import MLP, losses
from mlpcli.errors import TrainingError
from mlpcli.estimators import MLPClassifier
from mlpcli.training import FitConfig, iterate_minibatches, evaluate_loss, fit
from mlpcli.early_stopping import EarlyStopping
from cli_helpers import run


def _blobs(n=120, d=6, k=3, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, d)) * noise
    X[np.arange(n), y] += 2.0
    return X, y


def _overfitting_setup():
    """Few noisy samples, a big network: validation loss turns up within the run."""
    X, y = _blobs(n=60, d=20, seed=1, noise=2.0)
    Xv, yv = _blobs(n=200, d=20, seed=2, noise=2.0)
    net = MLP(20, [128, 128], 3, seed=0)
    return net, X, y, Xv, yv


def test_early_stopping_restores_the_best_epoch():
    net, X, y, Xv, yv = _overfitting_setup()
    res = fit(net, losses.get("ce"), X, y, Xv, yv, FitConfig(lr=0.01, epochs=80, patience=10, batch_size=16))
    assert res.stopped_early and res.best_epoch < res.epochs_run
    assert res.epochs_run == res.best_epoch + 10
    val_now, _ = evaluate_loss(net, losses.get("ce"), Xv, yv)
    assert val_now == pytest.approx(res.history[res.best_epoch - 1]["val_loss"], rel=1e-9)
    assert res.best_val_loss == min(r["val_loss"] for r in res.history)


def test_early_stopping_object():
    net = MLP(2, [2], 1)
    es = EarlyStopping(patience=2, min_delta=0.1)
    assert not es.update(1, 1.0, net)
    assert not es.update(2, 0.95, net)  # not better by more than min_delta
    assert es.update(3, 0.92, net)
    assert es.best_epoch == 1
    never = EarlyStopping(patience=None)
    assert not any(never.update(e, 1.0 + e, net) for e in range(1, 50))


def _stopping_epoch(stopper: EarlyStopping, values, net) -> int:
    for epoch, value in enumerate(values, 1):
        if stopper.update(epoch, value, net):
            return epoch
    return len(values)


def test_adaptive_patience_does_not_grow_with_chance_lows():
    """A curve that drops for 8 epochs and then wanders around a plateau (stationary noise, SD 0.08): when
    every chance new low grew the adaptive patience, some runs went on to their epoch limit; with
    growth_noise only improvements beyond the noise grow it. Every new low still resets the count and is
    the epoch kept."""
    net = MLP(2, [2], 1)
    plain_stops, aware_stops, noises = [], [], []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        values = np.concatenate([np.linspace(1.0, 0.45, 8), 0.45 + 0.08 * rng.standard_normal(192)])
        plain = EarlyStopping(patience=20, adaptive=True)
        aware = EarlyStopping(patience=20, adaptive=True, growth_noise=1.0)
        plain_stops.append(_stopping_epoch(plain, values, net))
        aware_stops.append(_stopping_epoch(aware, values, net))
        seen = values[:aware_stops[-1]]
        assert aware.best == seen.min() and aware.best_epoch == int(np.argmin(seen)) + 1
        assert aware_stops[-1] - aware.best_epoch == aware.current_patience <= 20 + 100 // 2
        noises.append(aware.noise())
    assert max(plain_stops) == 200 and max(aware_stops) < 100  # chance lows kept the plain rule going
    assert np.mean(aware_stops) < 0.85 * np.mean(plain_stops)
    assert 0.06 < np.median(noises) < 0.10  # each from 20 differences: rough, but centred on the noise's SD


def test_adaptive_patience_grows_with_a_curve_that_keeps_improving():
    """Small, steady improvements with a little noise are real: the patience grows with them as without
    growth_noise, so the run is not cut short."""
    net = MLP(2, [2], 1)
    rng = np.random.default_rng(0)
    values = 1.0 / np.arange(1, 151) ** 0.5 + 0.0005 * rng.standard_normal(150)
    values[100:110] += 0.01  # ten bad epochs: beyond the base patience, within the grown one
    aware = EarlyStopping(patience=5, adaptive=True, growth_noise=1.0)
    assert _stopping_epoch(aware, values, net) == 150 and aware.best_epoch >= 140
    assert aware.grown_epoch >= 140


def test_growth_noise_zero_is_the_plain_rule():
    net = MLP(2, [2], 1)
    values = [1.0, 0.8, 0.81, 0.79, 0.9, 0.95, 0.7, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99]
    a, b = EarlyStopping(patience=3, adaptive=True), EarlyStopping(patience=3, adaptive=True, growth_noise=0.0)
    assert _stopping_epoch(a, values, net) == _stopping_epoch(b, values, net) == 13
    assert (a.best_epoch, a.best, a.current_patience) == (b.best_epoch, b.best, b.current_patience) == (7, 0.7, 6)


def test_history_records_everything_the_issue_lists():
    X, y = _blobs()
    metric = lambda out, yy: float(np.mean(out.argmax(1) == yy))
    res = fit(MLP(6, [8], 3), losses.get("ce"), X[:90], y[:90], X[90:], y[90:], FitConfig(epochs=5),
              metric=metric, baseline_output=np.log(np.full(3, 1 / 3)))
    row = res.history[0]
    for key in ("epoch", "train_loss", "val_loss", "train_loss_eval", "train_metric", "val_metric", "lr", "seconds", "best_epoch"):
        assert key in row
    assert res.baseline["val_loss"] == pytest.approx(np.log(3))


def test_interrupt_keeps_best_weights_and_history():
    X, y = _blobs()
    net = MLP(6, [8], 3)

    def stop_at_3(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    res = fit(net, losses.get("ce"), X[:90], y[:90], X[90:], y[90:], FitConfig(epochs=50), callback=stop_at_3)
    assert res.interrupted and res.epochs_run == 3
    val_now, _ = evaluate_loss(net, losses.get("ce"), X[90:], y[90:])
    assert val_now == pytest.approx(res.history[res.best_epoch - 1]["val_loss"])


@pytest.mark.parametrize("cfg", [FitConfig(epochs=4),
                                 FitConfig(epochs=4, optimizer="sgd", augment_noise=0.3, lr_schedule="cosine"),
                                 FitConfig(epochs=4, optimizer="adamw", l1=1e-3, l2=1e-3, clip_norm=1.0)],
                         ids=["adam", "sgd-noise-cosine", "adamw-penalties-clip"])
def test_same_seed_same_weights(cfg):
    X, y = _blobs()

    def run(seed):
        net = MLP(6, [8], 3, dropout=0.2, seed=seed)
        cfg.seed = seed
        fit(net, losses.get("ce"), X[:90], y[:90], X[90:], y[90:], cfg)
        return net.flat_params.copy()

    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


def test_inputs_are_not_modified_by_noise_augmentation():
    X, y = _blobs()
    X32 = X.astype(np.float32)
    before = X32.copy()
    fit(MLP(6, [8], 3, dtype="float32"), losses.get("ce"), X32[:90], y[:90], X32[90:], y[90:],
        FitConfig(epochs=2, augment_noise=1.0))
    np.testing.assert_array_equal(X32, before)


def test_lr_schedules():
    X, y = _blobs()
    res = fit(MLP(6, [8], 3), losses.get("ce"), X[:90], y[:90], X[90:], y[90:], FitConfig(epochs=10, lr=0.01, lr_schedule="cosine", patience=None))
    lrs = [r["lr"] for r in res.history]
    assert lrs[0] == pytest.approx(0.01) and all(a > b for a, b in zip(lrs, lrs[1:]))
    net, X, y, Xv, yv = _overfitting_setup()
    res = fit(net, losses.get("ce"), X, y, Xv, yv, FitConfig(lr=0.01, epochs=40, patience=30, lr_schedule="plateau", batch_size=16))
    lrs = [r["lr"] for r in res.history]
    assert min(lrs) <= 0.005  # halved at least once on the plateau


def test_minibatches_cover_every_row_once_and_never_leave_a_single_row_for_batchnorm():
    rng = np.random.default_rng(0)
    batches = list(iterate_minibatches(65, 32, rng, min_size=2))
    assert sorted(np.concatenate(batches).tolist()) == list(range(65))
    assert min(len(b) for b in batches) >= 2
    net = MLP(3, [4], 2, batchnorm=True)
    X = rng.normal(size=(33, 3))
    y = rng.integers(0, 2, 33)
    res = fit(net, losses.get("ce"), X, y, X, y, FitConfig(epochs=2, batch_size=32))
    assert np.isfinite(res.history[-1]["train_loss"])


def test_divergence_is_a_clear_error():
    X, y = _blobs()
    X[0, 0] = 1e30
    with pytest.raises(TrainingError, match="diverged"):
        fit(MLP(6, [8], 1, activation="identity"), losses.get("mse"), X, y[:, None].astype(float), X, y[:, None].astype(float),
            FitConfig(epochs=3, lr=1.0, optimizer="sgd", momentum=0.0))


def test_invalid_config():
    X, y = _blobs()
    with pytest.raises(ValueError, match="batch size"):
        fit(MLP(6, [8], 3), losses.get("ce"), X, y, X, y, FitConfig(batch_size=0))


def test_early_stopping_rows_all_of_weight_zero_are_an_error_not_epoch_one():
    X, y = make_blobs(60, n_features=4, centers=2, random_state=0)
    weights = np.zeros(60)
    weights[:3] = 1  # with random_state=1 none of them is among the 6 validation rows
    with pytest.raises(ValueError, match=r"samples held out for early stopping \(6 of 60\) all have sample_weight 0"):
        MLPClassifier(hidden=(4,), epochs=5, random_state=1).fit(X, y, sample_weight=weights)
    MLPClassifier(hidden=(4,), epochs=5, random_state=1, early_stopping=False).fit(X, y, sample_weight=weights)


def _data(n=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)


def test_early_stopping_moves_on_from_a_nan_first_validation_loss():
    net = MLP(3, [], 2)
    stopper = early_stopping.EarlyStopping(patience=2)
    assert stopper.update(1, math.nan, net) is False  # the first epoch is kept: there must be weights to restore
    net.parameters()["dense0.b"][...] = 7.0
    assert stopper.update(2, 0.9, net) is False  # a number beats NaN (no comparison with NaN ever did)
    assert stopper.best_epoch == 2 and stopper.best == 0.9
    assert stopper.update(3, math.nan, net) is False  # a later NaN is an epoch without improvement
    assert stopper.update(4, 1.0, net) is True and stopper.best_epoch == 2
    net.parameters()["dense0.b"][...] = 0.0
    stopper.restore(net)
    assert np.all(net.parameters()["dense0.b"] == 7.0)


def test_batch_size_beyond_the_rows_with_input_noise_allocates_only_the_rows():
    X, y = _data(40, 50)
    net = MLP(50, [4], 2, dtype="float32")
    # the noise buffer was batch_size + 2 rows: 10**9 x 50 float32 is 200 GB, a MemoryError before any step
    result = training.fit(net, losses.get("ce"), X, y, X[:10], y[:10],
                          training.FitConfig(epochs=2, batch_size=10**9, augment_noise=0.1))
    assert result.epochs_run == 2 and np.isfinite(result.history[-1]["train_loss"])


def test_auto_input_noise_is_for_standardised_features(tmp_path):
    """--augment-noise auto's SD is in units of a standardised feature: with --no-standardize it was applied to
    features in their own units (counts in thousands, or values of 0.01). Asked for, it is a usage error; the
    --hidden auto portfolio's noisy candidate (p > n) is left out."""
    from cli_helpers import assert_clean_error

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(30, 60)), columns=[f"g{j}" for j in range(60)])
    df["label"] = np.array(["a", "b"])[np.arange(30) % 2]
    path = tmp_path / "wide.csv"
    df.to_csv(path, index=False)
    assert_clean_error(run(["train", str(path), "--no-standardize", "--augment-noise", "auto", "-o",
                            str(tmp_path / "x.mlp")]), "--augment-noise", "--no-standardize", code=2)
    assert not (tmp_path / "x.mlp").exists()

    def noises(*extra):
        model = tmp_path / "m.mlp"
        res = run(["train", str(path), "--folds", "2", "--epochs", "3", "-q", "-o", str(model), *extra])
        assert res.exit_code == 0, res.output
        doc = json.loads(run(["info", str(model), "--json"]).stdout)
        return [c["augment_noise"] for c in doc["training"]["portfolio"]]

    assert any(n > 0 for n in noises())  # p > n: the noisy candidate, on standardised features
    # three candidates: each comparison's own margin is named (the note gave the largest as if it held for all)
    res = run(["train", str(path), "--folds", "2", "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    text = " ".join(res.output.split())
    margins = text.split("must lower the one chosen before it by more than its margin: ")[1].split(";")[0]
    assert "no hidden layer by L-BFGS: " in margins and "hidden 128 with input noise (--augment-noise auto): " in margins
    assert all(n == 0 for n in noises("--no-standardize"))
