"""The fit loop against references: ten steps and BatchNorm as PyTorch computes them, schedules that never raise
the learning rate past its floor, BatchNorm refused on batches of one row, and a binary target's training
subsample stratified like a class index."""

import math

import numpy as np
import pytest

from mlpcli.engine import MLP, losses, optim
from mlpcli.training import FitConfig, MIN_LR, fit, run_epoch, train_eval_rows


def _blobs(n=80, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, d))
    X[np.arange(n), y] += 2.5
    return X, y


# ---------------------------------------------------------------- BatchNorm needs two rows a batch

def test_batchnorm_with_batches_of_one_row_is_refused():
    """With batch size 1 BatchNorm normalises every hidden unit to 0: the training loss stayed at log 3 for
    30 epochs (1.10, against 0.06 at batch size 16), without a word."""
    X, y = _blobs()
    with pytest.raises(ValueError, match="batch normalisation needs minibatches of 2 or more rows; batch size 1"):
        fit(MLP(6, [8], 3, batchnorm=True), losses.get("ce"), X, y, X[:20], y[:20], FitConfig(batch_size=1, epochs=2))
    with pytest.raises(ValueError, match="needs 2 or more training rows to normalise a minibatch, got 1: give more "
                                         "samples") as err:  # no batch size helps one row: not that advice
        fit(MLP(6, [8], 3, batchnorm=True), losses.get("ce"), X[:1], y[:1], X[:20], y[:20], FitConfig(epochs=2))
    assert "--batch-size" not in str(err.value)
    # two rows a batch train; without BatchNorm a batch of one row is fine
    res = fit(MLP(6, [8], 3, batchnorm=True), losses.get("ce"), X, y, X[:20], y[:20], FitConfig(batch_size=2, epochs=2))
    assert res.epochs_run == 2
    net = MLP(6, [8], 3)
    opt = optim.Adam()
    assert np.isfinite(run_epoch(net, losses.get("ce"), X, y, opt, 1, np.random.default_rng(0)))


# ---------------------------------------------------------------- schedules only ever lower the rate

@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_a_schedule_never_raises_a_learning_rate_below_its_floor(schedule):
    """--lr 1e-7: cosine annealed it *up* to MIN_LR (1e-6) and a plateau "halved" it to 1e-6, 10 x larger."""
    X, y = _blobs()
    lr0 = MIN_LR / 10
    # min_delta 1: no epoch improves on the first, so the plateau schedule cuts every 3 epochs
    res = fit(MLP(6, [8], 3), losses.get("ce"), X, y, X[:20], y[:20],
              FitConfig(lr=lr0, lr_schedule=schedule, epochs=12, patience=None, min_delta=1.0))
    lrs = [row["lr"] for row in res.history]
    assert lrs[0] == pytest.approx(lr0) and max(lrs) <= lr0 * (1 + 1e-12)
    assert all(b <= a for a, b in zip(lrs, lrs[1:]))


def test_cosine_schedule_is_unchanged_above_the_floor():
    X, y = _blobs()
    res = fit(MLP(6, [8], 3), losses.get("ce"), X, y, X[:20], y[:20],
              FitConfig(lr=1e-2, lr_schedule="cosine", epochs=5, patience=None))
    expected = [MIN_LR + 0.5 * (1e-2 - MIN_LR) * (1 + math.cos(math.pi * (e - 1) / 5)) for e in range(1, 6)]
    assert [row["lr"] for row in res.history] == expected


# ---------------------------------------------------------------- a binary target's subsample keeps both classes

def test_a_binary_targets_training_subsample_is_stratified_like_a_class_index():
    """A binary task trains on one 0/1 column (n, 1): its inference-mode training loss and metric were measured
    on a simple random sample, which for 15 positives in 20,000 rows held none for 43 of 200 seeds (the
    README promises a sample stratified by class, at least one row a class)."""
    rng = np.random.default_rng(0)
    y = (rng.random(20_000) < 0.0004).astype(np.float64)[:, None]  # 15 positives
    assert int(y.sum()) == 15
    for seed in range(20):
        rows = train_eval_rows(y, seed)
        assert int(y[rows].sum()) == 2  # round(2,048 x 15 / 20,000), as for the same classes as indices
        np.testing.assert_array_equal(rows, train_eval_rows(y[:, 0].astype(np.int64), seed))
    soft = np.full((5000, 1), 0.3)  # not a 0/1 column (a regression target): a simple random sample
    assert len(train_eval_rows(soft, 0, limit=100)) == 100


# ---------------------------------------------------------------- the engine against PyTorch

def _torch_copy(net: MLP, torch):
    mods = []
    params = net.parameters()
    for i in range(len(net.hidden) + 1):
        W, b = params[f"dense{i}.W"], params[f"dense{i}.b"]
        lin = torch.nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W))
            lin.bias.copy_(torch.tensor(b))
        mods.append(lin)
        if i < len(net.hidden):
            mods.append(torch.nn.Tanh())
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize("name,kwargs,l2,clip", [
    ("sgd", {"lr": 0.1}, 0.0, None),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}, 0.0, 0.5),
    ("adam", {"lr": 0.01}, 0.0, None),
    ("adam", {"lr": 0.01}, 0.05, None),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1}, 0.0, 0.5),
], ids=["sgd", "nesterov-clip", "adam", "adam-l2", "adamw-clip"])
def test_ten_steps_match_pytorch(name, kwargs, l2, clip):
    """Same initial weights, same minibatches, cross-entropy: the weights after ten steps agree with
    PyTorch's to float64 rounding (AdamW decays the weights, not the biases: PyTorch's parameter groups)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)), rng.integers(0, 3, 40)
    net = MLP(6, [5, 4], 3, activation="tanh", seed=1)
    tnet = _torch_copy(net, torch)
    weights = [p for n, p in tnet.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in tnet.named_parameters() if n.endswith("bias")]
    if name == "adamw":
        topt = torch.optim.AdamW([{"params": weights, "weight_decay": kwargs["weight_decay"]},
                                  {"params": biases, "weight_decay": 0.0}], lr=kwargs["lr"])
    else:
        topt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[name](tnet.parameters(), **kwargs)
    opt, loss, penalty = optim.get(name, **kwargs), losses.get("ce"), optim.WeightPenalty(0.0, l2)
    params, grads = net.parameter_groups()
    for step in range(10):
        idx = (np.arange(10) + 4 * step) % 40
        out = net.forward(X[idx], training=True)
        net.backward(loss.backward(out, y[idx]))
        if penalty.active:
            penalty.add_grad(params, grads)
        if clip:
            optim.clip_grad_norm(grads, clip)
        opt.step(params, grads)
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tnet(torch.tensor(X[idx])), torch.tensor(y[idx]))
        if l2:
            tloss = tloss + l2 * sum((w**2).sum() for w in weights)
        tloss.backward()
        if clip:  # clip_grad_norm_'s rule with our 1e-12 (PyTorch's own adds 1e-6 to the norm: 3e-8 apart here)
            norm = torch.sqrt(sum((q.grad**2).sum() for q in tnet.parameters()))
            if norm > clip:
                for q in tnet.parameters():
                    q.grad *= clip / (norm + 1e-12)
        topt.step()
    mine = net.parameters()
    for i in range(3):
        np.testing.assert_allclose(mine[f"dense{i}.W"], tnet[2 * i].weight.detach().numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(mine[f"dense{i}.b"], tnet[2 * i].bias.detach().numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("n", [2, 3, 16])
def test_batchnorm_matches_pytorch_in_training_and_inference(n):
    """Batch statistics, the momentum 0.1 running averages with the unbiased variance, and inference on the
    running statistics, against torch.nn.BatchNorm1d over five SGD steps (batches down to 2 rows)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(n)
    net = MLP(5, [4], 2, activation="relu", batchnorm=True, seed=3)
    p = net.parameters()
    lin, bn, head = torch.nn.Linear(5, 4).double(), torch.nn.BatchNorm1d(4).double(), torch.nn.Linear(4, 2).double()
    with torch.no_grad():
        for layer, i in ((lin, 0), (head, 1)):
            layer.weight.copy_(torch.tensor(p[f"dense{i}.W"]))
            layer.bias.copy_(torch.tensor(p[f"dense{i}.b"]))
    tnet = torch.nn.Sequential(lin, bn, torch.nn.ReLU(), head)
    opt, topt, mse = optim.SGD(lr=0.1), torch.optim.SGD(tnet.parameters(), lr=0.1), losses.get("mse")
    params, grads = net.parameter_groups()
    for _ in range(5):
        X, Y = rng.normal(size=(n, 5)) * 3 + 1, rng.normal(size=(n, 2))
        out = net.forward(X, training=True)
        net.backward(mse.backward(out, Y))
        opt.step(params, grads)
        topt.zero_grad()
        (0.5 * ((tnet(torch.tensor(X)) - torch.tensor(Y)) ** 2).sum(1).mean()).backward()
        topt.step()
    buffers = net.buffers()
    np.testing.assert_allclose(buffers["batchnorm0.running_mean"], bn.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(buffers["batchnorm0.running_var"], bn.running_var.numpy(), atol=1e-12)
    np.testing.assert_allclose(net.parameters()["batchnorm0.gamma"], bn.weight.detach().numpy(), atol=1e-12)
    tnet.eval()
    X = rng.normal(size=(7, 5))
    np.testing.assert_allclose(net.forward(X), tnet(torch.tensor(X)).detach().numpy(), atol=1e-12)


def test_the_command_refuses_batchnorm_with_batches_of_one_before_reading_the_data(tmp_path):
    from cli_helpers import assert_clean_error, run

    missing = tmp_path / "not_read.csv"  # never opened: the options are checked first
    res = run(["train", str(missing), "--batchnorm", "--batch-size", "1", "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "--batch-size 1", "--batchnorm", code=2)
