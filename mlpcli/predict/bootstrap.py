"""Bootstrap intervals that resample patients, not rows: every scalar metric of many resamples computed at once from
how often each patient was drawn, in batches of bounded memory, in worker processes when the work pays for their
start; percentile intervals, none for a metric undefined in too many resamples."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..resources import usable_cores


# Bootstrap: a metric undefined in more than half the resamples (e.g. AUC with one class drawn) gets no CI.
_BOOTSTRAP_MIN_VALID = 0.5
_PARALLEL_BOOTSTRAP = 200  # resamples from which worker processes pay for their start (~2 s)
# Resamples below which a 95 % percentile interval has no tails to speak of: its ends are a resample or two
BOOTSTRAP_MIN = 100
BOOTSTRAP_FEW_UNITS = 10  # fewer patients (or rows) than this: percentile intervals said to be rough
# a batch of resamples' row weights (resamples x rows, float64), at most; the arrays computed from it are a few times
# that
BOOTSTRAP_BATCH_BYTES = 16 << 20
# resamples x rows (x classes for multiclass) from which worker processes pay for their start (~2 s): serially
# 10-250 ns each (the rank metrics' sorts and sums), so below this the vectorised resamples take a few seconds at most
_PARALLEL_BOOTSTRAP_CELLS = 5 * 10 ** 7


def bootstrap_workers(resamples: int, cores: int | None = None, load: float | None = None) -> int:
    """Worker processes for ``resamples`` bootstrap resamples when --threads does not say: from
    _PARALLEL_BOOTSTRAP resamples on, the cores left idle (``cores``: the usable ones, at most 4; ``load``: the
    1-minute load average, this process counted in it), else 1. The idle cores, not all of them: on a busy
    machine the workers waited for each other (2 cores at load 6: 200 resamples 9.0 s with 2 workers against
    8.1 s serial, 1,000 resamples 30 s against 23 s). Within a CPU set narrower than the machine (a SLURM job's
    cores, ``taskset``) the load average is the whole node's, other jobs' cores included: a 4-core job on a
    64-core node at load 50 ran its resamples in one process; there the cores of the set count as idle. The
    figures are the same either way."""
    if resamples < _PARALLEL_BOOTSTRAP:
        return 1
    if cores is None:
        cores = min(4, usable_cores())
    if load is None:
        try:
            load = 1.0 if _within_cpu_set() else os.getloadavg()[0]
        except (AttributeError, OSError):  # not on this platform: count every core as idle
            load = 1.0
    idle = cores - max(0.0, load - 1.0)  # the load beyond this process's own
    return max(1, min(cores, int(idle)))


def _within_cpu_set() -> bool:
    """Whether this process may run on fewer cores than the machine has (its affinity mask: SLURM's and cgroup
    cpusets, taskset), so that the machine's load average says nothing of its own cores."""
    try:
        return len(os.sched_getaffinity(0)) < (os.cpu_count() or 0)
    except AttributeError:  # pragma: no cover - macOS, Windows
        return False


@dataclass
class Units:
    """Resampling units (patients; rows without groups) as one ragged array: unit u holds the rows
    order[starts[u]:starts[u] + sizes[u]]."""

    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, groups: np.ndarray | None, idx: np.ndarray) -> "Units":
        if groups is None:
            return cls(order=idx, starts=np.arange(len(idx)), sizes=np.ones(len(idx), dtype=np.int64))
        keys, inverse = np.unique(groups[idx], return_inverse=True)
        order = idx[np.argsort(inverse, kind="stable")]
        sizes = np.bincount(inverse, minlength=len(keys))
        return cls(order=order, starts=np.cumsum(sizes) - sizes, sizes=sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def rows(self, pick: np.ndarray) -> np.ndarray:
        """The rows of the units `pick` (with repeats), without a Python loop over units."""
        lengths = self.sizes[pick]
        block_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.order[np.repeat(self.starts[pick], lengths) + np.arange(lengths.sum()) - block_start]


def bootstrap_metrics(task, y, proba, classes, threshold, units: Units, rng: np.random.Generator, resamples: int,
               n_jobs: int, progress: Callable[[dict], None] | None, weights: np.ndarray | None = None
               ) -> dict[str, np.ndarray]:
    """Every scalar metric of metrics.compute on each resample ({metric: (resamples,)}, NaN where undefined),
    computed for a batch of resamples at once from how many times each unit was drawn (``metrics_resampled``):
    2,000 resamples cost about what a few calls of metrics.compute did. The units are drawn from `rng` a batch at a
    time, in order, the same numbers one draw of (resamples, units) gives, so the figures depend neither on the
    batches nor on `n_jobs`: worker processes (at most `n_jobs`) take batches only when the work pays for their
    start (``_PARALLEL_BOOTSTRAP_CELLS``), and memory holds a batch's (resamples, rows) weights, not every resample."""
    from ..metrics_resampled import ResampledMetrics

    unit_of = np.repeat(np.arange(len(units)), units.sizes)  # of the rows in units.order
    calc = ResampledMetrics(task, y[units.order], proba[units.order], threshold, unit_of, len(units), weights)
    cells = max(len(units.order), len(units))
    per = max(1, min(resamples, BOOTSTRAP_BATCH_BYTES // (8 * cells)))
    if n_jobs > 1 and resamples * cells * _task_width(task, proba) < _PARALLEL_BOOTSTRAP_CELLS:
        n_jobs = 1
    if n_jobs > 1:
        per = min(per, -(-resamples // (4 * n_jobs)))  # a few batches per worker, so that they end together
    elif progress is not None:
        per = min(per, max(1, -(-resamples // 10)))  # progress every tenth
    batches = (rng.integers(0, len(units), size=(min(per, resamples - a), len(units)))
               for a in range(0, resamples, per))
    if n_jobs > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_bootstrap_batch)(calc, batch, len(units)) for batch in batches)
    else:
        results = (_bootstrap_batch(calc, batch, len(units)) for batch in batches)
    done, parts = 0, []
    for part in results:
        parts.append(part)
        done += len(next(iter(part.values())))
        if progress is not None:
            progress({"stage": "bootstrap", "done": done, "total": resamples})
    return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}


def _bootstrap_batch(calc, picks: np.ndarray, n_units: int) -> dict[str, np.ndarray]:
    """The metrics of the resamples `picks` (resamples, n_units): {metric: (resamples,)}; may run in a worker."""
    from ..metrics_resampled import unit_multiplicities

    return calc.of(unit_multiplicities(picks, n_units))


def _task_width(task: str, proba: np.ndarray) -> int:
    """How many score columns the rank metrics sort (the cost of a resample is about rows x this)."""
    return proba.shape[1] if task == "multiclass" else 1


def percentile_ci(values, resamples: int) -> list | None:
    """The 95 % percentile interval of `values` (a list or array; None and NaN undefined)."""
    values = np.asarray(values, dtype=float)  # None -> NaN
    ok = values[np.isfinite(values)]
    if len(ok) < _BOOTSTRAP_MIN_VALID * resamples or len(ok) == 0:
        return None
    lo, hi = np.percentile(ok, [2.5, 97.5])
    return [float(lo), float(hi)]
