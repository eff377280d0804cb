"""Review 17 of the NumPy engine and its verification: gradcheck on a model that fits its rows almost exactly
(inconclusive, not pass), the float32 arithmetic checked against the float64 gradients, a warning when a
non-default --eps or --tol makes the check fail, the optimizers against their equations, the engine importing
NumPy alone, and fit's exact restore of the best epoch after a mid-epoch Ctrl-C."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import mlpcli.training as training
from mlpcli.engine import MLP, activations, gradcheck as gc, losses, optim
from mlpcli.training import FitConfig, fit
from cli_helpers import run


# ----------------------------------------------------------------- gradients below the round-off floor
def _fitted_linear_model():
    """A linear BCE model whose logits are about +-20 on its rows: loss ~1e-9, every gradient ~1e-10, far below
    the check's absolute floor of 1e-8."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 4))
    y = (X[:, 0] > 0).astype(np.float64).reshape(-1, 1)
    X[:, 0] = np.where(y[:, 0] > 0, 1.0, -1.0)
    net = MLP(4, [], 1, activation="identity", seed=0)
    net.parameters()["dense0.W"][...] = [[20.0, 0.1, -0.1, 0.05]]
    return net, X, y


def test_a_wrong_gradient_below_the_round_off_floor_is_inconclusive_not_passed(monkeypatch):
    net, X, y = _fitted_linear_model()
    good = gc.check_network(net, losses.get("bce"), X, y, training=False)
    assert good.passed and not good.inconclusive  # tiny but agreeing gradients are evidence

    right = losses.BCE.grad
    monkeypatch.setattr(losses.BCE, "grad", lambda self, o, t: 3.0 * right(self, o, t))  # 3 x too large
    bad = gc.check_network(net, losses.get("bce"), X, y, training=False)
    assert not bad.passed and bad.inconclusive, bad  # it used to pass: every entry "within round-off"
    assert "no entry resolved" in bad.note and "lower atol" in bad.note and "larger loss" in bad.note
    assert bad.max_rel_error == pytest.approx(2 / 3, rel=1e-3)  # how far apart they were, not 0
    strict = gc.check_network(net, losses.get("bce"), X, y, training=False, atol=0.0)
    assert not strict.passed and not strict.inconclusive  # a lower atol compares them: a plain failure


def test_the_suite_has_nothing_inconclusive_and_the_cli_says_inconclusive(monkeypatch):
    assert not any(r.inconclusive or not r.passed for r in gc.run(only="loss"))
    monkeypatch.setattr(gc, "run", lambda **kw: [gc.CheckResult("loss:x", 3, 0.5, 3, False, "n", True),
                                                 gc.CheckResult("loss:y", 3, 1e-8, 0, True)])
    res = run(["gradcheck"])
    assert res.exit_code == 1, res.output
    assert "inconclusive" in res.output and "FAIL" not in res.output and "failed:" not in res.output
    assert "1 of 2 components passed; inconclusive" in res.output and "--atol 1e-08" in res.output
    doc = json.loads(run(["gradcheck", "--json"]).stdout)
    assert not doc["passed"] and doc["n_inconclusive"] == 1 and doc["results"][0]["inconclusive"]


# ----------------------------------------------------------------- float32
def test_float32_group_covers_every_cli_activation_and_passes():
    results = gc.run(only="float32")
    names = [r.component for r in results]
    for act in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"):
        assert any(f" {act}" in n for n in names), act
    assert any("batchnorm" in n for n in names) and any("dropout" in n for n in names)
    assert all(r.passed for r in results), [(r.component, r.max_rel_error) for r in results if not r.passed]


def test_a_float32_only_error_fails_the_float32_group_not_the_float64_suite(monkeypatch):
    right = activations.Tanh.backward

    def half_precision_in_float32(self, z, grad_out, a=None, out=None):
        g = right(self, z, grad_out, a, out)
        return g.astype(np.float16).astype(g.dtype) if g.dtype == np.float32 else g

    monkeypatch.setattr(activations.Tanh, "backward", half_precision_in_float32)
    assert all(r.passed for r in gc.run(only="network:[6] tanh"))  # finite differences run in float64
    failed = [r for r in gc.run(only="float32") if not r.passed]
    assert [r.component for r in failed] == ["float32:[6] tanh"] and "worst in" in failed[0].note


# ----------------------------------------------------------------- --eps / --tol that the check cannot meet
def test_failures_under_a_non_default_step_carry_a_warning_naming_it():
    res = run(["gradcheck", "--only", "loss:mse", "--eps", "1e-12"])
    assert res.exit_code == 1 and "failed: loss:mse" in res.output
    assert "--eps 1e-12" in res.output and "rerun with the defaults" in res.output, res.output
    doc = json.loads(run(["gradcheck", "--only", "loss:mse", "--eps", "1e-12", "--json"]).stdout)
    assert any("--eps 1e-12" in w for w in doc["warnings"])
    ok = run(["gradcheck", "--only", "loss:mse", "--eps", "1e-5"])  # passes: nothing to explain
    assert ok.exit_code == 0 and "rerun" not in ok.output, ok.output


# ----------------------------------------------------------------- optimizers against their equations
def _steps(opt, key="W", n=15, dtype=np.float64):
    rng = np.random.default_rng(3)
    p0 = rng.normal(size=(6, 4)).astype(dtype)
    grads = [rng.normal(size=p0.shape).astype(dtype) for _ in range(n)]
    p = p0.copy()
    for g in grads:
        opt.step({key: p}, {key: g.copy()})
    return p0, grads, p


def _adam_reference(p, grads, lr, b1, b2, eps, decay=0.0):
    """Kingma & Ba's Algorithm 1, with Loshchilov & Hutter's decoupled decay in PyTorch's form (lr x decay)."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        p = p * (1 - lr * decay)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_its_equation(momentum, nesterov):
    p0, grads, p = _steps(optim.SGD(lr=0.1, momentum=momentum, nesterov=nesterov))
    v, ref = np.zeros_like(p0), p0.copy()
    for g in grads:
        v = momentum * v + g
        ref = ref - 0.1 * ((g + momentum * v) if nesterov else v)
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("key,decayed", [("W", True), ("dense0.W", True), ("rest", False), ("dense0.b", False)])
def test_adam_and_adamw_match_their_equations(key, decayed):
    p0, grads, p = _steps(optim.Adam(lr=0.01, beta2=0.95), key)
    np.testing.assert_allclose(p, _adam_reference(p0, grads, 0.01, 0.9, 0.95, 1e-8), rtol=0, atol=1e-13)
    p0, grads, p = _steps(optim.AdamW(lr=0.01, beta2=0.95, weight_decay=1.0), key)
    ref = _adam_reference(p0, grads, 0.01, 0.9, 0.95, 1e-8, decay=1.0 if decayed else 0.0)
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("make", [lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=True), lambda: optim.AdamW(lr=0.01)])
def test_float32_parameters_and_state_stay_float32(make):
    opt = make()
    _, _, p = _steps(opt, dtype=np.float32)
    assert p.dtype == np.float32
    assert all(s.dtype == np.float32 for slots in opt.state.values() for s in slots.values())


# ----------------------------------------------------------------- the engine imports NumPy alone
def test_the_engine_imports_numpy_and_the_standard_library_only():
    code = ("import sys, numpy\n"
            "before = set(sys.modules)\n"
            "import mlpcli.engine\n"
            "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
            "print(sorted(new - set(sys.stdlib_module_names) - {'mlpcli'}))\n"
            "print(sorted(m for m in sys.modules if m.startswith('mlpcli') and not m.startswith('mlpcli.engine')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", out  # no third-party module
    assert out[1] == "['mlpcli']", out  # and nothing of mlpcli beyond the engine (the package's own __init__)


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
    record = training.EarlyStopping.update

    def update(self, epoch, value, net):  # a copy of each epoch's weights as the stopper sees them
        kept[epoch] = net.get_state()
        return record(self, epoch, value, net)

    monkeypatch.setattr(training.EarlyStopping, "update", update)
    ce, steps = losses.get("ce"), [0]

    class Counting(type(ce)):
        def backward(self, output, y, sample_weight=None):
            steps[0] += 1
            if steps[0] == stop_at_step:  # 4 steps an epoch: in the middle of epoch 6
                raise KeyboardInterrupt
            return super().backward(output, y, sample_weight)

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
