import json
import zlib

import numpy as np
import pytest

from mlpcli.engine import MLP, activations, gradcheck, layers, losses
from mlpcli.engine import gradcheck as gc
from mlpcli.engine.gradcheck import GROUPS
from cli_helpers import run


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_component_passes(group):
    results = gradcheck.run(only=group)
    assert results
    failed = [(r.component, r.max_rel_error, r.note) for r in results if not r.passed]
    assert not failed, failed


@pytest.mark.parametrize("seed", [1, 2])
def test_networks_pass_for_other_seeds(seed):
    results = gradcheck.run(only="network", seed=seed)
    assert all(r.passed for r in results), [r.component for r in results if not r.passed]


def test_suite_covers_everything_the_issue_lists():
    names = gradcheck.components()
    for a in activations.names():
        assert f"activation:{a}" in names
    for l in losses.names():
        assert any(n.startswith(f"loss:{l}") for n in names)
    for needle in ("label_smoothing", "class_weight", "pos_weight", "gamma=0.5,alpha=0.25", "huber(delta=0.5)",
                   "layer:dense", "layer:batchnorm(training)", "layer:dropout(fixed mask)", "penalty:l1", "penalty:l2",
                   "batchnorm / ", "dropout=0.3", "[5, 4, 3]"):
        assert any(needle in n for n in names), needle


def test_broken_activation_gradient_is_caught(monkeypatch):
    good = activations.Sigmoid.backward
    monkeypatch.setattr(activations.Sigmoid, "backward", lambda self, z, g, a=None: 1.01 * good(self, z, g, a))
    results = gradcheck.run(only="activation:sigmoid")
    assert not results[0].passed and results[0].max_rel_error > 1e-3


def test_a_broken_training_step_loss_gradient_is_caught(monkeypatch):
    # the fit loop takes the loss and its gradient in one call (value_and_grad), not forward and backward
    good = losses.CrossEntropy.value_and_grad

    def broken(self, output, y, sample_weight=None):
        value, grad = good(self, output, y, sample_weight)
        return value, grad * 1.01

    monkeypatch.setattr(losses.CrossEntropy, "value_and_grad", broken)
    results = {r.component: r for r in gradcheck.run(only="loss:ce")}
    assert not results["loss:ce[value_and_grad]"].passed and results["loss:ce"].passed


def test_broken_dense_weight_gradient_is_caught_in_networks(monkeypatch):
    good = layers.Dense.backward

    def broken(self, grad_out, need_input_grad=True):
        out = good(self, grad_out, need_input_grad)
        self.grads["W"][0, 0] *= 1.001  # one entry off by 0.1 %
        return out

    monkeypatch.setattr(layers.Dense, "backward", broken)
    results = gradcheck.run(only="network:[6] tanh")
    assert results and not any(r.passed for r in results)


def test_broken_loss_gradient_is_caught(monkeypatch):
    monkeypatch.setattr(losses.BCE, "grad", lambda self, o, y: y - np.exp(-np.logaddexp(0, -o)))  # sign flipped
    assert not any(r.passed for r in gradcheck.run(only="loss:bce"))


def test_broken_batchnorm_input_gradient_is_caught(monkeypatch):
    good = layers.BatchNorm.backward

    def broken(self, grad_out, need_input_grad=True):
        g = good(self, grad_out, need_input_grad)
        return None if g is None else g + 1e-3 * grad_out  # forgets the mean-subtraction term's share
    monkeypatch.setattr(layers.BatchNorm, "backward", broken)
    assert not gradcheck.run(only="layer:batchnorm(training)")[0].passed


def test_check_network_restores_batchnorm_buffers():
    net = MLP(3, [4], 2, batchnorm=True, seed=0)
    X = np.random.default_rng(0).normal(size=(6, 3))
    before = {k: v.copy() for k, v in net.buffers().items()}
    res = gradcheck.check_network(net, losses.get("ce"), X, np.array([0, 1, 0, 1, 1, 0]))
    assert res.passed
    for k, v in net.buffers().items():
        np.testing.assert_array_equal(v, before[k])


def test_only_with_no_match_is_a_value_error():
    with pytest.raises(ValueError, match="no gradcheck component matches"):
        gradcheck.run(only="activation:swish")


def test_broken_input_gradient_is_caught(monkeypatch):
    good = layers.Dense.backward

    def broken(self, grad_out, need_input_grad=True, param_grads=True):
        out = good(self, grad_out, need_input_grad, param_grads)
        return out if param_grads or out is None else out * 1.001  # only the input-only pass is off
    monkeypatch.setattr(layers.Dense, "backward", broken)
    results = gradcheck.run(only="input:[6] tanh")
    assert results and not any(r.passed for r in results)
    assert all(r.passed for r in gradcheck.run(only="network:[6] tanh"))


def test_input_gradient_leaves_parameter_gradients_alone():
    net = MLP(4, [5, 3], 2, activation="tanh", batchnorm=True, seed=1)
    X = np.random.default_rng(0).normal(size=(6, 4))
    R = np.random.default_rng(1).normal(size=(6, 2))
    net.flat_grads[...] = 7.0
    net.forward(X)
    g = net.input_gradient(R)
    assert np.all(net.flat_grads == 7.0)
    net.forward(X)
    net.backward(R, input_grad=True)
    np.testing.assert_allclose(g, net.grad_input)


@pytest.mark.parametrize("n", [1, 2])
def test_check_network_refuses_batchnorm_in_training_mode_on_too_few_rows(n):
    net = MLP(3, [4], 2, batchnorm=True, seed=0)
    X = np.random.default_rng(0).normal(size=(n, 3))
    y = np.arange(n) % 2
    with pytest.raises(ValueError, match="at least 3 rows"):
        gc.check_network(net, losses.get("ce"), X, y, training=True)
    assert gc.check_network(net, losses.get("ce"), X, y, training=False).passed  # running statistics: any rows


# ── the synthetic suite's random streams ──────────────────────────────────────────────────────────────────


def test_each_group_has_its_own_reproducible_stream(monkeypatch):
    """The streams were seeded by the length of the group's name: 'layer' and 'input', 'penalty' and 'network'
    drew the same numbers."""
    first: dict[str, float] = {}

    def recorder(group):
        def make(rng, eps, tol, atol):
            first[group] = rng.random()
            return iter(())
        return make

    names = ["layer", "input", "penalty", "network"]
    monkeypatch.setattr(gc, "GROUPS", {g: recorder(g) for g in names})
    gc.run(seed=3)
    assert len(set(first.values())) == len(names), first
    # a stable hash of the name (not Python's salted hash()): the same draws in every process
    assert first["layer"] == np.random.default_rng([3, zlib.crc32(b"layer")]).random()


def test_only_sees_the_same_draws_as_the_whole_suite():
    whole = {r.component: r.max_rel_error for r in gc.run()}
    for r in gc.run(only="input") + gc.run(only="layer"):
        assert r.max_rel_error == whole[r.component], r.component


# ── float32 ───────────────────────────────────────────────────────────────────────────────────────────────


def test_float32_networks_and_arrays_are_refused_by_the_finite_differences():
    """A float32 entry + 1e-6 rounds and a float32 loss is noise at that step: such a check fails spuriously
    (or passes anything with a loose --tol); the library said nothing."""
    net = MLP(3, [4], 2, seed=0, dtype="float32")
    X = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="float64"):
        gc.check_network(net, losses.get("ce"), X, np.array([0, 1, 0, 1, 1]))
    with pytest.raises(ValueError, match="float64"):
        gc.numerical_gradient(lambda: 0.0, {"x": np.zeros(3, dtype=np.float32)})
    with pytest.raises(ValueError, match="contiguous"):  # perturbing a copy would leave f() unchanged
        gc.numerical_gradient(lambda: 0.0, {"x": np.zeros((3, 4)).T})


def test_gradcheck_suite_covers_large_inputs_and_they_pass():
    results = gradcheck.run(only="activation") + gradcheck.run(only="loss")
    names = {r.component for r in results}
    for name in activations.names():
        assert f"activation:{name}[large inputs]" in names
    for name in ("bce", "ce", "focal"):
        assert f"loss:{name}[large logits]" in names
    assert all(r.passed for r in results), [r.component for r in results if not r.passed]


def test_gradcheck_catches_an_unstable_bce_only_at_large_logits(monkeypatch):
    def naive(self, output, y):  # log of a rounded probability: -log(0) = inf once |logit| > ~37
        p = 1.0 / (1.0 + np.exp(-output))
        return np.sum(-(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)), axis=1)

    monkeypatch.setattr(losses.BCE, "per_sample", naive)
    with np.errstate(all="ignore"):
        results = {r.component: r.passed for r in gradcheck.run(only="loss:bce")}
    assert results["loss:bce"] and not results["loss:bce[large logits]"]


def test_only_runs_just_the_groups_it_can_match(monkeypatch):
    ran = []
    for group, make in list(gradcheck.GROUPS.items()):
        monkeypatch.setitem(gradcheck.GROUPS, group, lambda *a, g=group, m=make: (ran.append(g), m(*a))[1])
    assert {r.component.split(":")[0] for r in gradcheck.run(only="loss")} == {"loss"}
    assert ran == ["loss"]  # every group used to run (the networks: 1.3 s) and be filtered afterwards
    ran.clear()
    gradcheck.run(only="Act")  # a group name's beginning, in any case
    assert ran == ["activation"]


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


def test_gradients_exactly_zero_everywhere_are_inconclusive_not_passed():
    """Every hinge margin met: the loss is flat, each gradient is exactly 0 analytic and numerical, and a wrong
    backward (here sign-flipped) gives 0 as well. That compared nothing: it used to pass with "max rel. error 0"."""
    net = MLP(3, [4], 1, activation="relu", seed=0)
    net.parameters()["dense1.b"][...] = 50.0  # every logit far beyond the margin of a positive label
    X, y = np.random.default_rng(0).normal(size=(5, 3)), np.ones((5, 1))
    res = gc.check_network(net, losses.get("hinge"), X, y, training=False)
    assert not res.passed and res.inconclusive, res
    assert "exactly 0" in res.note and "slope" in res.note
    hinge = losses.get("hinge")
    out = np.array([[3.0], [-4.0]])
    t = np.array([[1.0], [0.0]])
    flipped = gc.check_function("loss:hinge", lambda: hinge.forward(out, t), {"output": out},
                                {"output": -hinge.backward(out, t)}, 1e-6, 1e-6, gc.DEFAULT_ATOL)
    assert not flipped.passed and flipped.inconclusive
    y[0] = 0.0  # one row on the loss's slope: its entries are compared, the zeros of the others beside them
    mixed = gc.check_network(net, losses.get("hinge"), X, y, training=False)
    assert mixed.passed and not mixed.inconclusive, mixed


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


def test_a_raised_atol_that_forgave_a_wrong_gradient_is_warned_of(monkeypatch):
    """--atol 0.1 passed a weight gradient twice the true one ("2 of 2 components passed", max rel. error 2.5e-07):
    the correct bias entries were counted, the wrong weight entries forgiven as round-off."""
    import json

    from cli_helpers import run
    from mlpcli.engine import layers

    only = ["--only", "network:[5] sigmoid"]  # 8 networks, two of which pass a doubled weight gradient at --atol 0.1
    right = run(["gradcheck", *only, "--atol", "0.1", "--json"])
    assert right.exit_code == 0 and json.loads(right.stdout)["warnings"] == []  # right gradients: no word
    backward = layers.Dense.backward

    def doubled(self, grad_out, need_input_grad=True, param_grads=True, ready=None):
        out = backward(self, grad_out, need_input_grad, param_grads, ready)
        if param_grads:
            self.grads["W"] *= 2.0
        return out

    monkeypatch.setattr(layers.Dense, "backward", doubled)
    res = run(["gradcheck", *only, "--atol", "0.1", "--json"])
    doc = json.loads(res.stdout)
    forgiven = [r for r in doc["results"] if r["passed"] and r["max_rel_forgiven"] > 0.5]
    assert forgiven  # some networks pass with their doubled weight gradients forgiven ...
    assert any(w.startswith("with --atol 0.1 ") and "the default --atol 1e-08 fails" in w
               for w in doc["warnings"]), doc["warnings"]  # ... and the warning says so
    assert run(["gradcheck", *only]).exit_code == 1  # the default floor fails them


def test_a_raised_tol_that_passed_a_wrong_gradient_is_warned_of(monkeypatch):
    """--tol 0.5 passed an MSE gradient 1.5 x the true one ("1 of 1 components passed", exit 0) without a word,
    where a raised --atol that forgave one is warned of. Right gradients under a raised tol get no warning."""
    from cli_helpers import run

    only = ["--only", "loss:mse"]
    right = run(["gradcheck", "--only", "loss", "--tol", "1e-4", "--json"])  # entries under the default floor too
    assert right.exit_code == 0 and json.loads(right.stdout)["warnings"] == [], right.stdout
    grad = losses.MSE.grad
    monkeypatch.setattr(losses.MSE, "grad", lambda self, o, y: 1.5 * grad(self, o, y))
    res = run(["gradcheck", *only, "--tol", "0.5", "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["passed"]  # the tolerance asked for lets it through ...
    assert doc["results"][0]["max_rel_tolerated"] == pytest.approx(1 / 3)
    assert any(w.startswith("with --tol 0.5 loss:mse passed") and "the default --tol 1e-06 fails" in w
               for w in doc["warnings"]), doc["warnings"]  # ... and the warning says so
    assert run(["gradcheck", *only]).exit_code == 1  # the default tol fails it


def test_the_suite_checks_the_large_batch_product_and_blocked_weight_gradients(monkeypatch):
    """Every network of the suite had 8 rows and small layers: the direct x W^T product of more than FEW_ROWS rows
    (minibatches of 64 and more) and dL/dW made in row blocks were never checked — a forward scaled by 1.01 there, or
    a block of dL/dW dropped, passed all 154 components."""
    found = gc.run(only="network:[1024]")
    assert len(found) == 1 and found[0].passed, found
    assert "more rows than 48" in found[0].note and "row blocks" in found[0].note
    rows = layers.weight_grad_rows

    def last_block_dropped(n_out, n_in):
        blocks = rows(n_out, n_in)
        return blocks if len(blocks) == 1 else blocks[:-1] + [(blocks[-1][0], blocks[-1][0])]

    monkeypatch.setattr(layers, "weight_grad_rows", last_block_dropped)
    broken = gc.run(only="network:[1024]")[0]
    assert not broken.passed and broken.max_rel_error == pytest.approx(1.0)
