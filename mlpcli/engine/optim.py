"""Optimizers, weight penalties and gradient clipping.

Optimizers are tiny classes with explicit state and one ``step(params, grads)`` that updates the
parameter arrays in place. ``params`` and ``grads`` are dicts of arrays with the same keys: either
``MLP.parameters()`` / the dict from ``MLP.backward``, or the two flat groups of
``MLP.parameter_groups()`` (``W``: all weights, ``rest``: biases and BatchNorm parameters), which
makes a step a handful of vectorised operations for the whole network. State arrays are allocated
on the first step and reused, so a step allocates nothing parameter-sized afterwards.

``threads`` (an optimizer's attribute, 1 by default; the training loop sets it to the BLAS threads it
runs with): a large update is cut into that many contiguous shares, each updated by its own thread (NumPy
releases the GIL inside its loops). Every entry gets the same arithmetic whichever thread runs it, so the
result is bit-for-bit the same for any number of threads.
"""

from __future__ import annotations

import math
import os
import threading

from abc import ABC, abstractmethod
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Callable

import numpy as np

from .functional import build
from .network import is_weight_key

__all__ = ["SGD", "Adam", "AdamW", "WeightPenalty", "StepInParts", "clip_grad_norm", "get", "OPTIMIZERS",
           "run_in_shares", "adam_passes"]


# Elementwise updates run over blocks of this many entries so that the dozen NumPy passes of
# an update read each block from cache rather than main memory (an unblocked Adam step over
# a few million parameters is memory-bound and costs as much as the matrix multiplies).
# 512 KiB per array keeps the four operands of a block in a typical 2 MiB L2 cache (measured on
# a 2.7M-parameter network: 11.4 ms per unblocked step, 5.7 ms blocked; 2 KiB blocks cost more
# in Python overhead than they save).
CHUNK_BYTES = 512 * 1024
# A fused path was measured and not kept (issue 17): numexpr, evaluating the three update expressions (m, v,
# then the parameters) in one compiled, blocked, multi-threaded pass each, took 0.89 s for the 63 Adam steps
# of a workload-A epoch (2.7M float32 parameters) on one thread and 0.50 s on two, against 0.27 s for the
# blocked NumPy passes here, side by side in one process (benchmarks/bench_train.py reports both: "Adam
# steps of an epoch"). Its virtual machine runs scalar loops over 4,096-entry chunks, where NumPy's
# float32 multiply, add, sqrt and divide are SIMD loops over cache-resident blocks. Block sizes of 32 KiB
# to 1 MiB per array changed the NumPy path by less than the noise (0.41-0.60 s on a busy machine).

# Entries per share below which an update stays on one thread: handing a share to another thread and
# waiting for it costs some 20-50 us, a blocked Adam pass over 2^18 float32 entries about 0.5 ms.
MIN_SHARE = 1 << 18

_pool: ThreadPoolExecutor | None = None
_pool_owner = (0, 0)  # (process id, workers) the pool was made for: a forked child makes its own


def _executor(workers: int) -> ThreadPoolExecutor:
    """The module's thread pool with at least ``workers`` threads (made again after a fork, whose child
    inherits the pool object but not its threads)."""
    global _pool, _pool_owner
    if _pool is None or _pool_owner[0] != os.getpid() or _pool_owner[1] < workers:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlpcli-optim")
        _pool_owner = (os.getpid(), workers)
    return _pool


def run_in_shares(size: int, itemsize: int, threads: int, update: Callable[[int, int], None]) -> None:
    """Call ``update(start, stop)`` over contiguous shares of range(size) that together cover it once: one
    share when ``threads`` <= 1 or the shares would hold fewer than MIN_SHARE entries each, else up to
    ``threads`` shares (block-aligned), the first on the calling thread and the rest on the pool's.

    Returns only when every share is done, also when the caller is interrupted (Ctrl-C) half-way: no thread
    may still be writing the parameters once a step has returned or raised."""
    shares = max(1, min(int(threads), size // MIN_SHARE))
    chunk = _chunk(itemsize)
    per = -(-size // shares)
    per = -(-per // chunk) * chunk  # whole blocks per share
    bounds = [(a, min(a + per, size)) for a in range(0, size, per)]
    if len(bounds) <= 1:  # one share, or fewer entries than a block
        update(0, size)
        return
    pool = _executor(len(bounds) - 1)
    futures = [pool.submit(update, a, b) for a, b in bounds[1:]]
    try:
        update(*bounds[0])
    finally:
        _wait_all(futures)


def _wait_all(futures: list[Future]) -> None:
    """Wait for every future (through Ctrl-C: re-raised once all are done), then raise a worker's error."""
    interrupted: BaseException | None = None
    while True:
        try:
            wait(futures)
            break
        except KeyboardInterrupt as exc:
            interrupted = exc
    for f in futures:
        f.result()
    if interrupted is not None:
        raise interrupted


def _chunk(itemsize: int) -> int:
    return max(1024, CHUNK_BYTES // itemsize)


def _blocks(start: int, stop: int, itemsize: int):
    chunk = _chunk(itemsize)
    for a in range(start, stop, chunk):
        yield slice(a, min(a + chunk, stop))


class Optimizer(ABC):
    name = ""

    def __init__(self, lr: float):
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        self.t = 0
        self.threads = 1  # threads an update may use (the module docstring); the result is the same for any
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def _slot(self, key: str, name: str, like: np.ndarray) -> np.ndarray:
        slots = self.state.setdefault(key, {})
        if name not in slots:
            slots[name] = np.zeros_like(like)
        return slots[name]

    def _block_tmp(self, key: str, p: np.ndarray, start: int = 0) -> np.ndarray:
        """A block-sized scratch array of the calling thread for ``p``'s updates, allocated once per thread (two
        threads may update parts of one array at once)."""
        return self._slot(key, f"tmp@{threading.get_ident()}", p.reshape(-1)[: _chunk(p.itemsize)])

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update every array of ``params`` in place from ``grads`` (same keys, same shapes: the updates run on
        flat ranges, so a transposed or longer gradient would be applied scrambled or cut, not refused)."""
        self._begin(params, grads)
        for key, p in params.items():
            g = grads[key]
            run_in_shares(p.size, p.itemsize, self.threads,
                          lambda start, stop, key=key, p=p, g=g: self._update(key, p, g, start, stop))

    def _begin(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Check params against grads, count the step, make its scalars and the state slots (before any
        thread runs: threads must not race to create them)."""
        if params.keys() != grads.keys():
            raise ValueError(f"params and grads must have the same keys; params has {sorted(params)}, grads "
                             f"{sorted(grads)} (pair parameter_groups() with parameter_groups(), parameters() "
                             "with backward()'s gradients)")
        for key, p in params.items():
            if grads[key].shape != p.shape:
                raise ValueError(f"gradient {key!r} has shape {grads[key].shape}, its parameter {p.shape}")
        self.t += 1
        self._begin_step()
        for key, p in params.items():
            self._prepare(key, p)

    def _begin_step(self) -> None:
        """The step's scalars (bias corrections and the like), once per step."""

    def _prepare(self, key: str, p: np.ndarray) -> None:
        """Create the state slots of ``key`` before its shares run."""

    @abstractmethod
    def _update(self, key: str, p: np.ndarray, g: np.ndarray, start: int, stop: int) -> None:
        """Update entries start..stop of p (flattened) from g, block by block."""


class StepInParts:
    """One step of ``opt`` (with ``penalty``'s gradient added first, as the training loop does) applied range by
    range while the backward pass is still running: ``ready(start, stop)`` (``MLP.backward``'s callback)
    queues a range of the flat buffer that ``params`` and ``grads`` cover in order (``MLP.parameter_groups``),
    a thread of the module's pool updates the queued ranges, and ``finish`` updates what is left on both
    threads and returns once every entry is updated. With a core to spare, the update of the first layer's
    weights, most of an Adam step (3.3 ms of a 26 ms step on workload A), hides behind the product that
    makes their next block (``layers.weight_grad_rows``).

    Each entry gets the arithmetic ``penalty.add_grad`` then ``opt.step`` give it, so the parameters are the
    same bit for bit. Ranges are queued in pieces of at least MIN_SHARE entries, so that the last can be shared."""

    def __init__(self, opt: "Optimizer", params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
                 penalty: "WeightPenalty | None" = None):
        opt._begin(params, grads)
        self.opt, self.penalty = opt, penalty if penalty is not None and penalty.active else None
        self.groups, at = [], 0  # (key, flat p, flat g, the group's first flat entry)
        for key, p in params.items():
            self.groups.append((key, p.reshape(-1), grads[key].reshape(-1), at))
            at += p.size
        self.tasks: deque[tuple[int, int, int]] = deque()  # (group, start, stop) within the group
        self.worker: Future | None = None

    def ready(self, start: int, stop: int) -> None:
        """Queue entries start..stop of the flat buffer (final in ``grads``) for their update; a range of fewer
        than MIN_SHARE entries (biases, small layers) is updated here and now, which costs less than handing
        it to the other thread."""
        for i, (_, pf, _, at) in enumerate(self.groups):
            lo, hi = max(start, at) - at, min(stop, at + pf.size) - at
            if lo >= hi:
                continue
            if hi - lo < MIN_SHARE:
                self._run(i, lo, hi)
                continue
            pieces = max(1, (hi - lo) // MIN_SHARE)
            per = -(-(hi - lo) // pieces)
            self.tasks.extend((i, a, min(a + per, hi)) for a in range(lo, hi, per))
        if self.tasks and (self.worker is None or self.worker.done()):
            if self.worker is not None:
                self.worker.result()  # a worker's error, raised here
            self.worker = _executor(1).submit(self._drain)

    def finish(self) -> None:
        """Update whatever is still queued, here and on the worker; return when every entry is done (also when
        interrupted: no thread may still be writing the parameters afterwards)."""
        try:
            self._drain()
        finally:
            if self.worker is not None:
                _wait_all([self.worker])

    def _drain(self) -> None:
        while True:
            try:
                task = self.tasks.popleft()
            except IndexError:
                return
            self._run(*task)

    def _run(self, i: int, a: int, b: int) -> None:
        """Entries a..b of group i: the penalty's gradient (weights only), then the update."""
        key, pf, gf, _ = self.groups[i]
        if self.penalty is not None and is_weight_key(key):
            self.penalty._add(pf, gf, a, b)
        self.opt._update(key, pf, gf, a, b)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, in PyTorch's form:

    v <- mu v + g;   theta <- theta - lr (g + mu v) with Nesterov, theta <- theta - lr v without.
    With mu = 0 this is the notes' theta <- theta - eta grad.
    """

    name = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _prepare(self, key, p):
        if self.momentum:
            self._slot(key, "v", p)

    def _update(self, key, p, g, start, stop):
        mu, lr = self.momentum, self.lr
        tmp = self._block_tmp(key, p, start)
        pf, gf = p.reshape(-1), g.reshape(-1)
        vf = self.state[key]["v"].reshape(-1) if mu else None
        for blk in _blocks(start, stop, pf.itemsize):
            pb, gb, t = pf[blk], gf[blk], tmp[: blk.stop - blk.start]
            if vf is None:
                np.multiply(gb, lr, out=t)
            else:
                vb = vf[blk]
                vb *= mu
                vb += gb
                if self.nesterov:
                    np.multiply(vb, mu, out=t)
                    t += gb
                else:
                    np.copyto(t, vb)
                t *= lr
            pb -= t


class Adam(Optimizer):
    """Adam (Kingma & Ba), updated in place:

    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2;   theta <- theta - lr m^ / (sqrt(v^) + eps)

    with m^ = m / (1 - b1^t), v^ = v / (1 - b2^t). The state is kept rescaled, m' = m / (1 - b1)
    and v' = v / (1 - b2), so each moment update is one multiply and one add, and every constant
    (bias corrections, lr, the rescaling) folds into two scalars:

    theta <- theta - c m' / (sqrt(v') + eps'),
    c = lr (1 - b1) / (1 - b1^t) * sqrt((1 - b2^t) / (1 - b2)),   eps' = eps sqrt((1 - b2^t) / (1 - b2))

    which equals the textbook update exactly (up to rounding).

    ``kernel`` (None: the NumPy passes below) is a compiled loop that makes a range's whole update in one pass:
    ``kernel(p, g, m, v, b1, b2, c, eps', decay, use_decay)`` on 1-D contiguous ranges (n,) of the parameters,
    gradient and both moments, the scalars in their dtype, updating p, m and v in place with exactly the
    arithmetic of the passes below, in their order and precision (``decay``: AdamW's factor, applied first when
    ``use_decay``); a gradient of another dtype than its parameters' gets the passes. The engine imports nothing but NumPy: the fit loop attaches one (``mlpcli.fused``) when a
    fit is long enough to pay for compiling it. The parameters are the same bit for bit either way.

    No weight decay: it used to accept a ``weight_decay`` and ignore it. Decoupled decay is AdamW's; an
    L2 penalty on the weights (what PyTorch's Adam calls weight decay) is ``WeightPenalty(l2=...)``.
    """

    name = "adam"
    decoupled_decay = False
    kernel: Callable | None = None

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {beta1}, {beta2}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.beta1, self.beta2, self.eps, self.weight_decay = float(beta1), float(beta2), float(eps), 0.0

    def _begin_step(self):
        b1, b2 = self.beta1, self.beta2
        root = math.sqrt((1.0 - b2**self.t) / (1.0 - b2))
        self._c = self.lr * (1.0 - b1) / (1.0 - b1**self.t) * root
        self._eps_t = self.eps * root

    def _prepare(self, key, p):
        self._slot(key, "m", p)
        self._slot(key, "v", p)

    def _update(self, key, p, g, start, stop):
        b1, b2, c, eps_t = self.beta1, self.beta2, self._c, self._eps_t
        slots = self.state[key]
        tmp = self._block_tmp(key, p, start)
        decay = 1.0 - self.lr * self.weight_decay if self.decoupled_decay and self.weight_decay and is_weight_key(key) else None
        pf, gf, mf, vf = p.reshape(-1), g.reshape(-1), slots["m"].reshape(-1), slots["v"].reshape(-1)
        if self.kernel is not None and g.dtype == p.dtype:  # one pass; the scalars rounded as NumPy's passes round them
            d = pf.dtype.type
            self.kernel(pf[start:stop], gf[start:stop], mf[start:stop], vf[start:stop], d(b1), d(b2), d(c),
                        d(eps_t), d(1.0 if decay is None else decay), decay is not None)
            return
        for blk in _blocks(start, stop, pf.itemsize):
            pb = pf[blk]
            adam_passes(pb, gf[blk], mf[blk], vf[blk], tmp[: pb.size], b1, b2, c, eps_t, decay)


def adam_passes(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: np.ndarray, b1: float, b2: float,
                c: float, eps: float, decay: float | None = None) -> None:
    """Adam's update of one block in NumPy passes, in place (``Adam``'s rescaled moments and folded scalars):
    p, g, m, v and the scratch t of one shape; ``decay``: AdamW's factor on p first (None: none)."""
    if decay is not None:
        p *= decay  # AdamW: decay the weights directly, not through m and v
    m *= b1
    m += g
    np.square(g, out=t)  # g^2: bit for bit g * g, and twice as fast as multiply(g, g) (no aliased operands)
    v *= b2
    v += t
    np.sqrt(v, out=t)
    t += eps
    np.divide(m, t, out=t)
    t *= c
    p -= t


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
    ICLR 2019, Algorithm 2): before each Adam step the Dense weights shrink by a factor
    (1 - lr * weight_decay); biases and BatchNorm parameters do not:

    theta <- theta (1 - lr lambda) - lr m^ / (sqrt(v^) + eps)

    This is PyTorch's parameterisation: the decay scales with the learning rate, scheduled or not. The paper
    writes theta <- theta - eta_t (alpha m^ / (sqrt(v^) + eps) + lambda' theta) with eta_t the schedule's
    multiplier and alpha the base rate, so its lambda' is lr0 * weight_decay here (a weight_decay of 1.0 at
    lr 3e-3 is the paper's lambda' = 3e-3)."""

    name = "adamw"
    decoupled_decay = True

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(lr, beta1, beta2, eps)
        if not weight_decay >= 0:  # NaN too
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.weight_decay = float(weight_decay)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW)}


def get(name: str, **params) -> Optimizer:
    """The optimizer called ``name`` (``sgd``, ``adam``, ``adamw``), built with ``params`` (e.g. ``lr=1e-3``); a
    ValueError lists the valid names or parameters."""
    try:
        cls = OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}") from None
    return build(cls, "optimizer", name, params)


class WeightPenalty:
    """L1 and L2 penalties on the Dense weights (never biases or BatchNorm parameters), added to
    the objective as in the notes:

    R = l1 sum |w| + l2 sum w^2,    dR/dw = l1 sign(w) + 2 l2 w   (subgradient 0 at w = 0).
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        if not (0 <= l1 < np.inf and 0 <= l2 < np.inf):  # NaN fails too: it would make every gradient NaN
            raise ValueError(f"l1 and l2 must be finite and >= 0, got {l1}, {l2}")
        self.l1, self.l2 = float(l1), float(l2)

    @property
    def active(self) -> bool:
        return self.l1 > 0 or self.l2 > 0

    def value(self, params: dict[str, np.ndarray]) -> float:
        """R summed over the weight arrays of ``params`` (keys ``W`` or ``*.W``; the others are skipped)."""
        total = 0.0
        for key, w in params.items():
            if is_weight_key(key):
                if self.l1:
                    total += self.l1 * float(np.abs(w).sum())
                if self.l2:
                    total += self.l2 * float(np.vdot(w, w))
        return total

    def add_grad(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], threads: int = 1) -> None:
        """grads[key] += dR/dw for every weight key, in place, block by block (no parameter-sized
        temporaries: this runs every training step), in up to ``threads`` threads (``run_in_shares``)."""
        for key, w in params.items():
            if is_weight_key(key):
                wf, gf = w.reshape(-1), grads[key].reshape(-1)
                run_in_shares(wf.size, wf.itemsize, threads, lambda start, stop, wf=wf, gf=gf: self._add(wf, gf, start, stop))

    def _add(self, wf: np.ndarray, gf: np.ndarray, start: int, stop: int) -> None:
        tmp = np.empty(min(stop - start, _chunk(wf.itemsize)), dtype=wf.dtype)
        for blk in _blocks(start, stop, wf.itemsize):
            wb, gb, t = wf[blk], gf[blk], tmp[: blk.stop - blk.start]
            if self.l1:
                np.sign(wb, out=t)
                t *= self.l1
                gb += t
            if self.l2:
                np.multiply(wb, 2.0 * self.l2, out=t)
                gb += t


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``; returns the
    norm before clipping."""
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    norm = math.sqrt(sum(_squared_norm(g) for g in grads.values()))
    if norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm


def _squared_norm(g: np.ndarray) -> float:
    """sum g^2. A float32 dot product sums in float32, which overflows to inf from finite entries (1e18 each
    over 1,000 entries): the clip would then scale the gradient by max_norm / inf = 0 and the step would not
    move at all. Such a sum is taken again in float64 (a copy, only on that rare path)."""
    s = float(np.vdot(g, g))
    if math.isinf(s) and g.dtype != np.float64 and np.isfinite(g).all():
        g64 = g.astype(np.float64).reshape(-1)
        s = float(np.vdot(g64, g64))
    return s
