"""Adam's update compiled into one pass (optional: numba, the ``fast`` extra: ``python -m pip install ".[fast]"`` from
the mlpcli checkout; the package named mlpcli on PyPI is another project).

In NumPy an Adam step is ten passes over the parameters (``engine.optim.Adam``): memory-bound, it took 370 of
the 950 us of a step of a 2,000-128-64-4 network at batch 32. One compiled loop over the same entries, with the
same operations in the same order and precision (numba without fastmath: no fused multiply-adds, no
reassociation), takes 140-160 us and leaves the parameters the same bit for bit; every process checks that on
its first use of each dtype (``AdamKernel``) and keeps the NumPy passes if the two ever differ. (A NaN's sign
bit aside: where both m and g are NaN NumPy keeps m's and the loop g's, in a run the divergence check ends anyway.)

Loading numba costs a process about 0.45 s and 130 MB of resident memory (LLVM, also when the compiled loop
comes from numba's cache), which only a long enough fit pays back. The environment variable MLPCLI_NUMBA says
when a process loads it:

- ``auto`` (unset): once the fits of this process have made LOAD_AFTER parameter updates (entries x steps) in
  NumPy, about three times as long as loading takes, and loading would not raise the process's peak memory
  (``room_to_load``); every Adam step after that uses the compiled loop;
- ``1``: at the first step (benchmarks; an error if numba cannot be loaded);
- ``0``: never.

Without numba installed, or when it cannot be loaded (a NumPy newer than it supports, NUMBA_DISABLE_JIT set), the
NumPy passes run: the same parameters, only slower. What a model file records does not depend on it. The memory
estimate that refuses a network too large for the machine (``training.fit_memory``) does not count numba's load.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Callable

import numpy as np

from .engine import optim
from .errors import ConfigError

__all__ = ["ENV", "LOAD_AFTER", "LOAD_BYTES", "SMALL_PROCESS_BYTES", "KernelSwitch", "mode", "load", "room_to_load",
           "adam_loop", "AdamKernel"]

ENV = "MLPCLI_NUMBA"
# Parameter updates (entries x steps) made in NumPy before a process loads numba: NumPy's passes cost about
# 1.3-1.4 ns per entry and step (a 264k-entry step 370 us; workload A's 2.7M-entry step 3.5 ms), so this is
# about 1.3 s of them, three times what loading takes: a fit that reaches it is long enough for the load to pay
# (the one-pass loop saves ~0.8 ns per entry and step), and short ones never carry numba's 100-130 MB. At a third
# of it, the default ensemble of `bench_memory.py --ensemble` (5 members of 2 epochs on 8,000 x 5,000) loaded it
# in its fourth member and its peak rose by ~100 MB, past issue 13's memory bar.
LOAD_AFTER = 1_000_000_000

# What loading numba adds to a process's resident memory (LLVM's library and numba's modules: 100-130 MB
# measured, also when the loop comes from numba's cache), and the size under which a process does not weigh it.
LOAD_BYTES = 130 << 20
SMALL_PROCESS_BYTES = 512 << 20

_lock = threading.Lock()
_kernel: "AdamKernel | None" = None
_failure: str | None = None  # why numba could not be loaded in this process
_work = 0  # parameter updates made in NumPy by this process's fits


def mode() -> str:
    """MLPCLI_NUMBA as "auto", "1" or "0"; a ConfigError names any other value."""
    raw = os.environ.get(ENV, "").strip().lower()
    value = {"": "auto", "auto": "auto", "1": "1", "on": "1", "true": "1", "0": "0", "off": "0", "false": "0"}.get(raw)
    if value is None:
        raise ConfigError(f"{ENV}={os.environ[ENV]!r} is not a setting: use 0 (NumPy only), 1 (numba's compiled Adam "
                          "from the first step) or auto (once a fit is long enough; the default)")
    return value


def adam_loop(p, g, m, v, b1, b2, c, eps, decay, use_decay):
    """Adam's update of 1-D ranges in one pass, for numba to compile: per entry, in the dtype of the arrays,

    p <- p * decay (when use_decay);  m <- m b1 + g;  v <- v b2 + g g;  p <- p - (m / (sqrt(v) + eps)) c

    the operations of ``optim.Adam``'s NumPy passes, in their order (its rescaled moments and folded scalars).
    p, g, m, v: (n,) contiguous, one dtype; the scalars in that dtype."""
    for i in range(p.shape[0]):
        gi = g[i]
        pi = p[i]
        if use_decay:
            pi = pi * decay
        mi = m[i] * b1 + gi
        vi = v[i] * b2 + gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = pi - (mi / (np.sqrt(vi) + eps)) * c


class AdamKernel:
    """``optim.Adam.kernel`` from a compiled ``adam_loop``, used for a dtype only once it has made three AdamW steps
    of 5,000 entries (zeros, subnormals, 1e30, gradients from 1e-30 to 1e3) with NumPy's bits (``verify``); ranges
    of any other dtype, or whose arrays differ in dtype, get NumPy's passes (``_numpy_update``)."""

    def __init__(self, compiled: Callable, cached: bool = False):
        self.compiled, self.cached = compiled, cached  # cached: numba reads and writes its cache for it
        self.verified: dict[np.dtype, str | None] = {}  # dtype -> None (the same bits) or why it is not used
        self._check_lock = threading.Lock()

    def __call__(self, p, g, m, v, b1, b2, c, eps, decay, use_decay) -> None:
        if p.dtype == g.dtype == m.dtype == v.dtype and self.agrees(p.dtype):
            self.compiled(p, g, m, v, b1, b2, c, eps, decay, use_decay)
        else:
            _numpy_update(p, g, m, v, b1, b2, c, eps, decay, use_decay)

    def agrees(self, dtype) -> bool:
        """Whether the compiled loop gives NumPy's bits for ``dtype`` (checked once per dtype and process)."""
        return self.verify(dtype) is None

    def verify(self, dtype) -> str | None:
        """None when the compiled loop gives NumPy's bits for ``dtype``, else why it is not used (checked once per dtype
        and process). A cache numba cannot read or write (a garbled file, a full disk) is left out: the loop is
        compiled again in memory and checked again."""
        dtype = np.dtype(dtype)
        with self._check_lock:
            if dtype not in self.verified:
                self.verified[dtype] = self._verify(dtype)
            return self.verified[dtype]

    def _verify(self, dtype: np.dtype) -> str | None:
        for again in (False, True):
            try:
                with np.errstate(all="ignore"):  # a caller's np.seterr(under="raise") is not the loop's failure
                    same = _same_bits(self.compiled, dtype)
            except Exception as exc:
                if not again and self.cached:
                    try:
                        self.compiled, self.cached = _compile(cache=False)
                        continue
                    except Exception as exc2:
                        exc = exc2
                return f"its loop for {dtype} failed ({_reason(exc)})"
            return None if same else f"its loop for {dtype} does not give NumPy's bits on this machine"
        return None  # (not reached)


def _numpy_update(p, g, m, v, b1, b2, c, eps, decay, use_decay) -> None:
    """``adam_loop`` as NumPy's passes (what a range the loop is not used for gets)."""
    optim.adam_passes(p, g, m, v, np.empty_like(p), b1, b2, c, eps, decay if use_decay else None)


def _same_bits(compiled: Callable, dtype: np.dtype) -> bool:
    """Three AdamW steps of optim.AdamW on 5,000 entries, with and without ``compiled`` as its kernel: the same bits?"""
    rng = np.random.default_rng(0)
    tiny = np.finfo(dtype).smallest_subnormal
    p0 = (rng.standard_normal(5000) * 0.1).astype(dtype)
    p0[:8] = [0.0, -0.0, tiny, -tiny, 1e30, -1e30, 1.0, 3.0]
    grads = [(rng.standard_normal(5000) * scale).astype(dtype) for scale in (1e-3, 1.0, 1e3)]
    for g in grads:
        g[:4] = [0.0, tiny, -tiny, 1e-30]
    results = []
    for kernel in (None, compiled):
        opt = optim.AdamW(lr=1e-2, weight_decay=0.1)
        opt.kernel = kernel
        params = {"W": p0.copy(), "b": p0[:100].copy()}  # "W": decayed; "b": not
        for g in grads:
            opt.step(params, {"W": g.copy(), "b": g[:100].copy()})
        results.append([params["W"], params["b"], *(s for key in ("W", "b") for s in (opt.state[key]["m"], opt.state[key]["v"]))])
    return all(a.tobytes() == b.tobytes() for a, b in zip(*results))


def load(dtype="float32", required: bool = False) -> AdamKernel | None:
    """This process's compiled Adam (loading numba and compiling, or reading numba's cache, the first time) when it
    gives NumPy's bits for ``dtype``, else None; with ``required`` that is a ConfigError saying why."""
    global _kernel, _failure
    with _lock:
        if _kernel is None and _failure is None:
            try:
                _kernel = AdamKernel(*_compile())
            except Exception as exc:  # not installed, or a numba that cannot run with this NumPy or Python
                _failure = _reason(exc)
    why = _failure if _kernel is None else _kernel.verify(dtype)
    if why is not None and required:
        raise ConfigError(f"{ENV}=1 asks for numba's compiled Adam, which cannot be used here ({why}): "
                          f"pip install numba (the fast extra: python -m pip install \".[fast]\" from the mlpcli "
                          f"checkout; the mlpcli on PyPI is another project), or unset {ENV}")
    return _kernel if why is None else None


def _reason(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]


def _compile(cache: bool = True) -> tuple[Callable, bool]:
    """numba's compilation of ``adam_loop`` (lazy: each dtype on its first call), and whether it uses numba's cache."""
    with warnings.catch_warnings():  # the library never prints: numba's warnings (caching, deprecations) stay here
        warnings.simplefilter("ignore")
        import numba

        if numba.config.DISABLE_JIT:  # njit would hand back the Python loop: 300 x slower than NumPy's passes
            raise RuntimeError("NUMBA_DISABLE_JIT is set, under which numba runs the loop as Python")
        options = dict(nogil=True, error_model="numpy", boundscheck=False)  # "numpy": no zero-division check per entry
        if cache:
            try:
                return numba.njit(cache=True, **options)(adam_loop), True  # compiled once per machine, then read
            except RuntimeError:  # no writable cache directory (a read-only install and home): compiled in each process
                pass
        return numba.njit(**options)(adam_loop), False


class KernelSwitch:
    """Attaches the compiled Adam to one fit's optimizer when MLPCLI_NUMBA says it is due: ``update()`` before
    each epoch counts the updates made since the last call (``opt.t`` steps of ``entries`` parameters) into the
    process's total. Other optimizers are left alone. A bad MLPCLI_NUMBA, or =1 without numba, is a ConfigError
    here, before any training."""

    def __init__(self, opt: optim.Optimizer | None, entries: int, dtype="float32"):
        self.opt, self.entries, self.dtype = opt, int(entries), np.dtype(dtype)
        self.seen = 0 if opt is None else opt.t
        self.mode = mode()
        if isinstance(opt, optim.Adam) and self.mode == "1":
            opt.kernel = load(self.dtype, required=True)

    def count(self) -> bool:
        """Add the updates made since the last call to the process's total (also at the end of a fit, so that many
        short fits add up); whether the compiled loop is due."""
        global _work
        opt = self.opt
        if not isinstance(opt, optim.Adam) or opt.kernel is not None or self.mode == "0":
            return False
        with _lock:
            _work += (opt.t - self.seen) * self.entries
            self.seen = opt.t
            return _kernel is not None or _work >= LOAD_AFTER

    def update(self) -> None:
        """Before an epoch: count, and attach the compiled loop when it is due (and gives NumPy's bits here). Under
        ``auto`` the first load also waits until it would not raise the process's peak memory (``room_to_load``)."""
        if self.count() and (_kernel is not None or self.mode == "1" or room_to_load()):
            self.opt.kernel = load(self.dtype)


def room_to_load() -> bool:
    """Whether loading numba (LOAD_BYTES) keeps this process under the peak resident memory it has already reached,
    or under SMALL_PROCESS_BYTES: a batch job sized by an earlier run's peak (SLURM's MaxRSS) is not pushed past it
    mid-run. The default ensemble on 8,000 x 5,000 float32 reached numba's threshold in its third candidate, at
    ~600 MB of a 690 MB peak so far: loaded, it had peaked at 783 MiB against 710 (issue 13's bar: 744). True where
    /proc/self/status cannot tell (not Linux)."""
    try:
        with open("/proc/self/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if line.startswith(("VmRSS", "VmHWM")))
        rss, peak = (int(fields[k].split()[0]) << 10 for k in ("VmRSS", "VmHWM"))
    except (OSError, KeyError, ValueError):
        return True
    return rss + LOAD_BYTES <= max(peak, SMALL_PROCESS_BYTES)
