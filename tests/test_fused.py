"""numba's one-pass Adam (mlpcli.fused): the same bits as the NumPy passes, attached when MLPCLI_NUMBA says so."""

import os
import subprocess
import sys

import numpy as np
import pytest

from mlpcli import fused
from mlpcli.engine import MLP, optim
from mlpcli.errors import ConfigError

from cli_helpers import assert_clean_error, run
from tables import write_table

numba = pytest.importorskip("numba")  # the test extra installs it; the NumPy path alone is the rest of the suite


@pytest.fixture(scope="module")
def kernel():
    k = fused.load(required=True)
    assert isinstance(k, fused.AdamKernel)
    return k


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_compiled_loop_agrees_with_numpy_on_each_dtype(kernel, dtype):
    assert kernel.agrees(dtype)


def _steps(make, dtype, kernel, threads=1, steps=4):
    """``steps`` steps of a 700-600-3 network's flat groups (421,800 weights) with an L1 + L2 penalty."""
    net = MLP(700, [600], 3, seed=0, dtype=dtype)
    opt = make()
    opt.kernel, opt.threads = kernel, threads
    rng = np.random.default_rng(1)
    penalty = optim.WeightPenalty(l1=1e-3, l2=1e-2)
    params, grads = net.parameter_groups()
    for scale in (1e-3, 1.0, 1e3, 0.0)[:steps]:
        for k in grads:
            grads[k][...] = rng.standard_normal(grads[k].shape) * scale
        penalty.add_grad(params, grads, threads)
        opt.step(params, grads)
    return net.flat_params.tobytes(), {k: (s["m"].tobytes(), s["v"].tobytes()) for k, s in opt.state.items()}


@pytest.mark.parametrize("make", [lambda: optim.Adam(lr=0.01), lambda: optim.Adam(lr=3e-4, beta2=0.95),
                                  lambda: optim.AdamW(lr=0.01, weight_decay=0.1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_compiled_step_leaves_the_bits_of_the_numpy_passes(kernel, make, dtype):
    reference = _steps(make, dtype, None)
    assert _steps(make, dtype, kernel) == reference


def test_compiled_shares_on_two_threads_leave_the_same_bits(kernel, monkeypatch):
    # the weights cut into shares that two threads update at once with the compiled loop (it holds no GIL)
    monkeypatch.setattr(optim, "MIN_SHARE", 100_000)
    make = lambda: optim.AdamW(lr=0.01, weight_decay=0.1)  # noqa: E731
    assert _steps(make, "float32", kernel, threads=2) == _steps(make, "float32", None, threads=1)


def test_a_loop_that_rounds_otherwise_is_not_used():
    """A kernel whose arithmetic differs (here: m computed in float64, then rounded) fails the check on first use,
    and that dtype's ranges get the NumPy passes: still the reference bits."""

    def different(p, g, m, v, b1, b2, c, eps, decay, use_decay):
        m[:] = (m.astype(np.float64) * float(b1) + g).astype(m.dtype)
        v *= b2
        v += g * g
        p -= (m / (np.sqrt(v) + eps)) * c

    wrapped = fused.AdamKernel(different)
    assert not wrapped.agrees("float32")
    make = lambda: optim.Adam(lr=0.01)  # noqa: E731
    assert _steps(make, "float32", wrapped) == _steps(make, "float32", None)


def test_the_switch_follows_the_environment(monkeypatch):
    monkeypatch.setattr(fused, "LOAD_AFTER", 10**18)  # auto: not due in this test's few updates
    for value, expect in [("0", None), ("off", None), ("1", fused.AdamKernel), ("ON", fused.AdamKernel)]:
        monkeypatch.setenv(fused.ENV, value)
        opt = optim.Adam()
        switch = fused.KernelSwitch(opt, 10**9)
        opt.t = 10**6  # a million steps of a billion entries: far past any threshold
        switch.update()
        assert (opt.kernel is None) if expect is None else isinstance(opt.kernel, expect), value
    monkeypatch.setenv(fused.ENV, "bogus")
    with pytest.raises(ConfigError, match="MLPCLI_NUMBA='bogus'"):
        fused.KernelSwitch(optim.Adam(), 10)
    sgd = optim.SGD(lr=0.1)
    monkeypatch.setenv(fused.ENV, "1")
    fused.KernelSwitch(sgd, 10).update()
    assert not hasattr(sgd, "kernel")  # only Adam and AdamW have a compiled loop


def test_auto_attaches_once_a_process_has_made_enough_updates(monkeypatch, kernel):
    monkeypatch.delenv(fused.ENV, raising=False)
    monkeypatch.setattr(fused, "LOAD_AFTER", 10**18)
    # numba is loaded in this process already (the fixture): a new fit takes the loop at once, nothing to pay
    opt = optim.Adam()
    fused.KernelSwitch(opt, 10).update()
    assert opt.kernel is kernel


def test_auto_waits_for_the_threshold_in_a_fresh_process(tmp_path):
    code = (
        "import numpy as np, mlpcli.fused as f\n"
        "from mlpcli.engine import optim\n"
        "f.LOAD_AFTER = 1000\n"
        "opt = optim.Adam()\n"
        "s = f.KernelSwitch(opt, 100)\n"
        "opt.t = 9; s.update(); a = opt.kernel is None\n"  # 900 updates: not yet
        "opt.t = 10; s.update(); b = opt.kernel is not None\n"  # 1,000: due
        "print(a, b)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != fused.ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "True"]


def _train(tmp_path, name, env):
    """The model file `train` writes under MLPCLI_NUMBA=``env``: both members in the command's own process (--n-jobs 1;
    worker processes write the same bytes, parallel.member_processes, at an interpreter start-up each)."""
    table = tmp_path / "t.csv"
    if not table.exists():
        write_table(tmp_path, "t.csv", n_patients=40, per_patient=3, n_features=40)
    out = tmp_path / f"{name}.mlp"
    proc = subprocess.run([sys.executable, "-m", "mlpcli", "train", str(table), "-o", str(out), "--hidden", "32",
                           "--epochs", "8", "--folds", "2", "--quiet", "--threads", "1", "--n-jobs", "1"],
                          capture_output=True, text=True, env={**os.environ, fused.ENV: env})
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


def test_train_writes_the_same_model_file_with_and_without_numba(tmp_path):
    assert _train(tmp_path, "numba", "1") == _train(tmp_path, "numpy", "0")


@pytest.mark.parametrize("command", ["train", "cv", "tune", "diagnose"])
def test_a_bad_setting_is_a_usage_error_before_the_data_is_read(tmp_path, monkeypatch, command):
    write_table(tmp_path, "t.csv", task="binary", n_patients=20)
    monkeypatch.setenv(fused.ENV, "yes")
    extra = {"train": ["-o", str(tmp_path / "m.mlp")], "tune": ["--grid", "lr=0.01,0.1"],
             "diagnose": ["--learning-curve"]}.get(command, [])
    result = run([command, str(tmp_path / "t.csv"), *extra, "--hidden", "4", "--epochs", "2"])
    assert_clean_error(result, "MLPCLI_NUMBA='yes'", "0 (NumPy only)", code=2)
    assert "features:" not in result.output and "samples" not in result.output  # nothing read, nothing fitted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_asking_for_numba_where_it_cannot_load_is_one_line(tmp_path):
    write_table(tmp_path, "t.csv", task="binary", n_patients=20)
    code = ("import sys; sys.modules['numba'] = None\n"  # numba missing: its import raises ImportError
            "from mlpcli._entry import main; sys.argv = ['mlpcli'] + sys.argv[1:]; main()\n")
    proc = subprocess.run([sys.executable, "-c", code, "train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp"),
                           "--hidden", "4", "--epochs", "2", "--folds", "1", "--quiet"],
                          capture_output=True, text=True, env={**os.environ, fused.ENV: "1"})
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    # numba by name: "pip install mlpcli[fast]" installed PyPI's unrelated project of that name
    assert len(lines) == 1 and "MLPCLI_NUMBA=1" in lines[0] and "pip install numba (the fast extra" in lines[0] \
        and "mlpcli[fast]" not in lines[0], proc.stderr
    assert not (tmp_path / "m.mlp").exists()


def test_a_gradient_of_another_dtype_gets_numpys_passes(kernel):
    def steps(k):
        opt = optim.Adam(lr=0.01)
        opt.kernel = k
        p = {"W": np.linspace(-1, 1, 4096, dtype=np.float32)}
        for scale in (1e-3, 1.0):
            opt.step(p, {"W": np.linspace(1, -1, 4096) * scale})  # float64 gradient of float32 parameters
        return p["W"].tobytes(), opt.state["W"]["m"].tobytes()

    assert steps(kernel) == steps(None)


def _python(code, **env):
    base = {k: v for k, v in os.environ.items() if k not in (fused.ENV, "NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env})


def test_short_fits_add_up_to_the_threshold_in_a_process():
    code = (
        "import sys, numpy as np\n"
        "import mlpcli.fused as f\n"
        "from mlpcli.engine import MLP, losses\n"
        "from mlpcli.training import fit, FitConfig\n"
        "X = np.random.default_rng(0).standard_normal((64, 5)); y = np.arange(64) % 2\n"
        "seen = []\n"
        "net = MLP(5, [4], 2, seed=0)\n"
        "f.LOAD_AFTER = 3 * 2 * net.flat_params.size\n"  # three one-epoch fits of two steps
        "for i in range(4):\n"
        "    fit(MLP(5, [4], 2, seed=0), losses.get('ce'), X, y, None, None, FitConfig(epochs=1, batch_size=32))\n"
        "    seen.append('numba' in sys.modules)\n"
        "print(seen)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    # each fit's last epoch counts at its end: three fits reach the threshold, the fourth loads numba at its start
    assert out.stdout.strip() == "[False, False, False, True]"
    code = code.replace("epochs=1", "epochs=2")  # 4 updates by the first fit's end, 6 before the second's 2nd epoch
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[False, True, True, True]"


def test_numba_without_its_compiler_is_refused_by_name():
    out = _python("import mlpcli.fused as f\nf.load(required=True)", NUMBA_DISABLE_JIT="1")
    assert out.returncode != 0 and "NUMBA_DISABLE_JIT is set" in out.stderr
    out = _python("import mlpcli.fused as f\nprint(f.load())", NUMBA_DISABLE_JIT="1")
    assert out.stdout.strip() == "None"


def test_a_garbled_cache_is_compiled_again_in_memory(tmp_path):
    code = "import mlpcli.fused as f\nk = f.load(required=True)\nprint(k.agrees('float32'), k.agrees('float64'))"
    first = _python(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert first.stdout.split() == ["True", "True"], first.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files  # numba wrote its cache there
    for p in files:
        p.write_bytes(b"\x00garbled" * 10)
    again = _python(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert again.returncode == 0 and again.stdout.split() == ["True", "True"], again.stderr
    assert again.stderr == ""


def test_room_to_load_compares_the_load_with_the_peak_so_far(monkeypatch):
    monkeypatch.setattr(fused, "SMALL_PROCESS_BYTES", 0)
    monkeypatch.setattr(fused, "LOAD_BYTES", 0)
    assert fused.room_to_load()  # the resident set never exceeds its own peak
    monkeypatch.setattr(fused, "LOAD_BYTES", 1 << 50)
    assert not fused.room_to_load()
    monkeypatch.setattr(fused, "SMALL_PROCESS_BYTES", 1 << 51)
    assert fused.room_to_load()  # a small process does not weigh it


def test_auto_does_not_load_numba_past_the_peak_so_far():
    code = (
        "import sys, mlpcli.fused as f\n"
        "from mlpcli.engine import optim\n"
        "f.LOAD_AFTER, f.LOAD_BYTES, f.SMALL_PROCESS_BYTES = 10, 1 << 50, 0\n"
        "opt = optim.Adam()\n"
        "s = f.KernelSwitch(opt, 100)\n"
        "opt.t = 5; s.update()\n"
        "print(opt.kernel is None, 'numba' in sys.modules)\n"
        "f.LOAD_BYTES = 0; s.update()\n"  # room again (as when a member's rows are freed): loaded now
        "print(opt.kernel is not None)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "True"]
