"""The optimizer step applied range by range while the backward pass runs (``optim.StepInParts``): the same
parameters bit for bit as the step after the whole backward pass, every entry updated once, errors raised."""

from __future__ import annotations

import numpy as np
import pytest

import mlpcli.early_stopping as early_stopping
import mlpcli.training as training
from mlpcli.engine import MLP, layers, losses, optim
from mlpcli.training import FitConfig, fit


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 2,048 entries, so a small first layer (40 x 300) is reported in 4 blocks of rows."""
    monkeypatch.setattr(layers, "GRAD_BLOCK_ENTRIES", 2048)
    monkeypatch.setattr(optim, "MIN_SHARE", 1000)


def _batch(seed=0, n=32, d=300, k=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, k, n)


def _train(make_opt, in_parts: bool, penalty=None, batchnorm=False, steps=4):
    X, y = _batch()
    net = MLP(300, [40, 16], 4, dtype="float32", seed=2, batchnorm=batchnorm)
    opt, loss = make_opt(), losses.CrossEntropy()
    params, grads = net.parameter_groups()
    for _ in range(steps):
        out = net.forward(X, training=True)
        if in_parts:
            step = optim.StepInParts(opt, params, grads, penalty)
            try:
                net.backward(loss.backward(out, y), ready=step.ready)
            finally:
                step.finish()
        else:
            net.backward(loss.backward(out, y))
            if penalty is not None:
                penalty.add_grad(params, grads)
            opt.step(params, grads)
    return net.flat_params.copy()


@pytest.mark.parametrize("make_opt, penalty, batchnorm", [
    (lambda: optim.Adam(lr=1e-2), None, False),
    (lambda: optim.AdamW(lr=1e-2, weight_decay=0.1), None, True),
    (lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True), optim.WeightPenalty(1e-3, 1e-2), False),
    (lambda: optim.Adam(lr=1e-2), optim.WeightPenalty(0.0, 1e-2), True),
])
def test_a_step_in_parts_gives_the_same_parameters_bit_for_bit(small_blocks, make_opt, penalty, batchnorm):
    whole = _train(make_opt, False, penalty, batchnorm)
    parts = _train(make_opt, True, penalty, batchnorm)
    assert whole.tobytes() == parts.tobytes()
    assert not np.array_equal(whole, MLP(300, [40, 16], 4, dtype="float32", seed=2, batchnorm=batchnorm).flat_params)


def test_backward_reports_every_gradient_once_and_the_first_weights_by_blocks(small_blocks):
    X, y = _batch()
    net = MLP(300, [40, 16], 4, dtype="float32", seed=2)
    out = net.forward(X, training=True)
    seen: list[tuple[int, int]] = []
    net.backward(losses.CrossEntropy().backward(out, y), ready=lambda a, b: seen.append((a, b)))
    covered = np.zeros(net.n_parameters, dtype=int)
    for a, b in seen:
        covered[a:b] += 1
    assert (covered == 1).all()
    first = [(a, b) for a, b in seen if b <= 40 * 300]  # dense0.W comes first in the flat buffer
    assert len(first) == len(layers.weight_grad_rows(40, 300)) == 4
    assert seen[-1][1] - seen[-1][0] == 40  # dense0.b, once its layer is done: the last range


def test_weight_blocks_cover_the_rows_and_stay_whole_for_small_layers():
    assert layers.weight_grad_rows(256, 512) == [(0, 256)]
    blocks = layers.weight_grad_rows(512, 5000)
    assert blocks[0] == (0, 128) and blocks[-1][1] == 512 and len(blocks) == layers.GRAD_BLOCKS
    assert layers.weight_grad_rows(3, 10**6) == [(0, 1), (1, 2), (2, 3)]


def test_an_update_error_reaches_the_caller_after_every_thread_is_done(small_blocks):
    class Broken(optim.Adam):
        def _update(self, key, p, g, start, stop):
            if start > 0:
                raise FloatingPointError("update failed")
            super()._update(key, p, g, start, stop)

    X, y = _batch()
    net = MLP(300, [40, 16], 4, dtype="float32", seed=2)
    params, grads = net.parameter_groups()
    out = net.forward(X, training=True)
    step = optim.StepInParts(Broken(lr=1e-2), params, grads)
    with pytest.raises(FloatingPointError, match="update failed"):
        try:
            net.backward(losses.CrossEntropy().backward(out, y), ready=step.ready)
        finally:
            step.finish()
    assert step.worker is None or step.worker.done()


def test_an_epoch_with_a_core_to_spare_trains_the_same_network(small_blocks):
    """run_epoch updates in parts when the optimizer has two threads and the first layer several gradient
    blocks: the network after two epochs is the same bit for bit as with one thread."""
    from mlpcli import training

    X, y = _batch(n=96)
    nets = []
    for threads in (1, 2):
        net = MLP(300, [40, 16], 4, dtype="float32", seed=2)
        opt = optim.Adam(lr=1e-2)
        opt.threads = threads
        rng = np.random.default_rng(5)
        for _ in range(2):
            training.run_epoch(net, losses.CrossEntropy(), X, y, opt, 16, rng, penalty=optim.WeightPenalty(0.0, 1e-3))
        nets.append(net.flat_params.tobytes())
    assert len(training.first_weight_blocks(MLP(300, [40, 16], 4))) == 4
    assert nets[0] == nets[1]


# ----------------------------------------------------------------- fit: the best epoch's weights, exactly
def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 6))
    X[np.arange(n), y] += 1.5
    return X, y


@pytest.mark.parametrize("threads", [1, 2], ids=["measured-in-line", "measured-beside-the-next-epoch"])
@pytest.mark.parametrize("stop_at_step", [None, 23], ids=["early-stop", "ctrl-c-mid-epoch"])
def test_fit_restores_the_best_epochs_weights_bit_for_bit(monkeypatch, threads, stop_at_step):
    monkeypatch.setattr(training, "update_threads", lambda: threads)
    kept = {}
    record = early_stopping.EarlyStopping.update

    def update(self, epoch, value, net):  # a copy of each epoch's weights as the stopper sees them
        kept[epoch] = net.get_state()
        return record(self, epoch, value, net)

    monkeypatch.setattr(early_stopping.EarlyStopping, "update", update)
    ce, steps = losses.get("ce"), [0]

    class Counting(type(ce)):
        def value_and_grad(self, output, y, sample_weight=None):  # once a training step
            steps[0] += 1
            if steps[0] == stop_at_step:  # 4 steps an epoch: in the middle of epoch 6
                raise KeyboardInterrupt
            return super().value_and_grad(output, y, sample_weight)

    X, y = _blobs(60, 0)
    Xv, yv = _blobs(30, 1)
    net = MLP(6, [16], 3, dropout=0.2, batchnorm=True, seed=1)
    res = fit(net, Counting(), X, y, Xv, yv, FitConfig(epochs=40, batch_size=16, lr=0.3, patience=4, seed=0))
    assert res.interrupted == (stop_at_step is not None)
    assert res.epochs_run == (5 if stop_at_step else res.epochs_run) and res.best_epoch <= res.epochs_run
    best = kept[res.best_epoch]
    now = net.get_state()  # weights and BatchNorm's running statistics
    assert all(np.array_equal(best[k], now[k]) for k in now)
    assert res.best_val_loss == min(r["val_loss"] for r in res.history)
