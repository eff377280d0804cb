"""When a run stops: early stopping on the validation loss with a patience that grows with the best epoch
(``EarlyStopping``), the epoch each validation row would have been stopped at by the rows outside its part
(``CrossedStopping``), and divergence read from the training loss against the no-skill loss (``DivergenceCheck``).
NumPy only."""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from .engine import MLP
from .engine.losses import Loss
from .errors import TrainingError

if TYPE_CHECKING:  # the run's settings, read by DivergenceCheck
    from .training import FitConfig


# Divergence, read from the training loss L (the lower of its training-mode and inference-mode values, so
# dropout and noise cannot raise it) against the no-skill loss S: the larger of the baseline (always
# predicting the training prior or mean), the loss of all-zero outputs and the untrained network's loss
# (where training starts), so a rare class's tiny baseline or unscaled inputs cannot move the bar.
#   exploded:  L > DIVERGENCE_FACTOR x S for DIVERGENCE_EPOCHS epochs in a row: stop at once;
#   blew up:   L > BLOWUP_FACTOR x S for DIVERGENCE_EPOCHS epochs in a row and never back under
#              RECOVERED_FACTOR x S (where training starts) by the end of the run.
# Measured (tests/test_runaway_training.py, and a grid over the sample data and small tables of every task,
# adam/adamw/sgd, lr 1e-4..0.1, dropout 0.9, input noise 3): healthy runs stay under 4 x S. --lr 1e3 and
# above run at 30 x to 1e22 x S (or reach NaN); SGD with momentum 0.999 jumps to 100 x and stays at 5-15 x.
# An Adam lr of 0.1 on 500 features and 60 rows rose to 170 x for ~15 epochs and came back to 1 x with a
# good model: not flagged. The validation loss is not read: overfitting raises it, early stopping's job.
DIVERGENCE_FACTOR = 1000.0
BLOWUP_FACTOR = 10.0
RECOVERED_FACTOR = 2.0
DIVERGENCE_EPOCHS = 3

# Epochs of validation loss whose first differences give its noise (EarlyStopping's growth_noise): the
# default patience, so the estimate covers what one patience window sees.
NOISE_WINDOW = 20


class CrossedStopping:
    """The early-stopping epoch chosen on the rest of the validation rows, for each part of them.

    Early stopping keeps the weights of the epoch whose validation loss is lowest: scored on those same rows, the
    network looks better than it is, by the luck of that choice — on tables of random labels by 0.03 of balanced
    accuracy. Here, for each part j of the validation rows (``parts`` (n_val,) small non-negative integers), the
    other parts' rows find their best epoch (lowest loss, by more than ``min_delta``, as ``EarlyStopping``), and part
    j's outputs at that epoch are kept: every row is then scored at an epoch no choice on its own rows made
    (``outputs``). The network itself still stops and restores on all the rows."""

    def __init__(self, parts: np.ndarray, min_delta: float = 0.0):
        parts = np.asarray(parts).reshape(-1)
        self.masks = [parts == j for j in np.unique(parts)]
        self.min_delta = float(min_delta)
        self.best = [math.inf] * len(self.masks)
        self.epochs = [0] * len(self.masks)
        self.kept: list[np.ndarray | None] = [None] * len(self.masks)  # part j's outputs at its rest's best epoch

    @property
    def usable(self) -> bool:
        """Two parts or more (one part has no rest to choose for it)."""
        return len(self.masks) >= 2

    def losses(self, loss: Loss, outputs: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
               ) -> tuple[float, ...]:
        """The mean loss of the rows outside each part, from the epoch's validation ``outputs`` (n_val, k)."""
        return tuple(float(loss.forward(outputs[~m], y[~m], None if sample_weight is None else sample_weight[~m]))
                     for m in self.masks)

    def update(self, epoch: int, losses: tuple[float, ...], outputs: np.ndarray) -> None:
        for j, value in enumerate(losses):
            first = self.kept[j] is None or (math.isnan(self.best[j]) and not math.isnan(value))
            if first or value < self.best[j] - self.min_delta:
                self.best[j], self.epochs[j] = value, epoch
                self.kept[j] = outputs[self.masks[j]].copy()

    def outputs(self) -> np.ndarray | None:
        """(n_val, k): each row's outputs at the epoch the rows outside its part found best; None before any."""
        if any(k is None for k in self.kept):
            return None
        out = np.empty((len(self.masks[0]), self.kept[0].shape[1]), dtype=self.kept[0].dtype)
        for m, kept in zip(self.masks, self.kept):
            out[m] = kept
        return out


class EarlyStopping:
    """Stop when the monitored loss has not improved by more than ``min_delta`` for ``patience``
    epochs; keep a copy of the best weights so they can be restored.

    ``adaptive``: the patience grows to patience + e / 2, e being the last epoch whose improvement showed
    the run still learning (AutoGluon's rule: a run whose best epoch is late improves slowly). With
    ``growth_noise`` c > 0 that is an improvement on the lowest loss so far by more than c * sigma, sigma
    being the loss's epoch-to-epoch noise: the robust SD (1.4826 MAD / sqrt 2) of its last NOISE_WINDOW
    first differences. Once a network has memorised its training rows, its validation loss on a few hundred
    samples wanders around a plateau, and the lowest value so far keeps being beaten by chance (records of a
    stationary series arrive at a rate ~ 1/t); when each chance record bought half its epoch number in
    patience, such runs went on for 200 epochs of noise. A curve that really improves has first differences
    that agree with each other, so a small sigma, and its improvements grow the patience as before. Every
    improvement still resets the count and moves the weights kept to the lowest loss."""

    def __init__(self, patience: int | None, min_delta: float = 0.0, adaptive: bool = False,
                 growth_noise: float = 0.0):
        self.patience, self.min_delta, self.adaptive = patience, float(min_delta), adaptive
        self.growth_noise = float(growth_noise)
        self.best = math.inf
        self.best_epoch = 0
        self.grown_epoch = 0  # the epoch the adaptive patience has grown with (the last real improvement)
        self.best_state: dict[str, np.ndarray] | None = None
        self.bad_epochs = 0
        self.values: deque[float] = deque(maxlen=NOISE_WINDOW + 1)  # what noise() reads

    def update(self, epoch: int, value: float, net: MLP) -> bool:
        """Record epoch ``epoch``'s value; return True when training should stop."""
        self.values.append(float(value))
        # The first epoch is kept whatever its value, so that there are weights to restore; a NaN kept that way
        # (a validation pass that overflowed) gives way to the first epoch with a number, which no comparison
        # with NaN would ever let through.
        first = self.best_state is None or (math.isnan(self.best) and not math.isnan(value))
        if value < self.best - self.min_delta or first:
            if first or value < self.best - self.min_delta - self.growth_noise * self.noise():
                self.grown_epoch = epoch
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = net.get_state()
            return False
        self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.current_patience

    def noise(self) -> float:
        """sigma: the robust SD of the loss's noise from its last NOISE_WINDOW first differences (0 before
        there are 3 finite ones, and when growth_noise is 0)."""
        if not (self.growth_noise and self.adaptive):
            return 0.0
        d = np.diff(np.asarray(self.values))
        d = d[np.isfinite(d)]
        if d.size < 3:
            return 0.0
        return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))

    def could_stop_next(self) -> bool:
        """Whether the next ``update`` can return True (it does when that epoch does not improve)."""
        return self.patience is not None and self.best_state is not None and self.bad_epochs + 1 >= self.current_patience

    @property
    def current_patience(self) -> int | None:
        if self.patience is None or not self.adaptive:
            return self.patience
        return self.patience + self.grown_epoch // 2

    def restore(self, net: MLP) -> None:
        """Copy the weights of ``best_epoch`` back into ``net`` (nothing before the first update)."""
        if self.best_state is not None:
            net.set_state(self.best_state)


# Beyond these a diverged run names the penalty or the input noise before the learning rate: usual L1/L2 weights
# are 1e-5 to 1 and input noise SDs up to 2 standardised units (augment_noise auto's cap)
PENALTY_LIMIT = 1e3
NOISE_LIMIT = 10.0


class DivergenceCheck:
    """Stops a run whose training has blown up (see DIVERGENCE_FACTOR): a non-finite loss or weights or an
    exploded loss at once (``update``), a blow-up never recovered from at the end (``finish``). Raises
    TrainingError naming the option to change and the figures behind the verdict."""

    def __init__(self, no_skill: float, config: "FitConfig"):
        self.no_skill, self.config = float(no_skill), config
        self.above = {DIVERGENCE_FACTOR: 0, BLOWUP_FACTOR: 0}  # consecutive epochs above each bar
        self.blowup: tuple[int, float] | None = None  # (epoch, peak loss) of an unrecovered blow-up

    def _advice(self) -> str:
        cfg = self.config
        # an extreme penalty or noise blows the loss up whatever the step size: name it first
        extreme = [f"--{name.replace('_', '-')} (now {value:g})" for name, value, limit in
                   (("l1", cfg.l1, PENALTY_LIMIT), ("l2", cfg.l2, PENALTY_LIMIT),
                    ("augment_noise", cfg.augment_noise, NOISE_LIMIT)) if value > limit]
        if extreme:
            return (f"lower {' and '.join(extreme)}, far beyond usual values, which overflow the loss; else lower "
                    f"--lr (now {cfg.lr:g})")
        advice = f"lower --lr (now {cfg.lr:g})"
        if cfg.optimizer == "sgd" and cfg.momentum > 0:
            advice += f" or --momentum (now {cfg.momentum:g})"
        return advice + ("" if cfg.clip_norm else ", or set --clip-norm")

    def _fail(self, epoch: int, what: str) -> None:
        raise TrainingError(f"training diverged at epoch {epoch}: {what}; {self._advice()}")

    def _vs(self, value: float) -> str:
        return f"training loss {value:.3g}, {value / self.no_skill:.3g} x the no-skill loss {self.no_skill:.3g}"

    def update(self, epoch: int, losses: list[float], net: MLP) -> None:
        """``losses``: this epoch's training loss(es) (training mode, and inference mode when known)."""
        for v in losses:
            if not np.isfinite(v):
                self._fail(epoch, f"the training loss is {v}")
        if not np.isfinite(net.flat_params).all():
            self._fail(epoch, "the weights overflowed to inf or NaN")
        if self.no_skill <= 0:  # a constant target: nothing to compare against
            return
        value = min(losses)
        for factor in self.above:
            self.above[factor] = self.above[factor] + 1 if value > factor * self.no_skill else 0
        if self.above[DIVERGENCE_FACTOR] >= DIVERGENCE_EPOCHS:
            self._fail(epoch, f"{self._vs(value)} (a constant prediction's or the untrained network's), over {DIVERGENCE_FACTOR:g} x for "
                              f"{DIVERGENCE_EPOCHS} epochs in a row")
        if self.above[BLOWUP_FACTOR] >= DIVERGENCE_EPOCHS and (self.blowup is None or value > self.blowup[1]):
            self.blowup = (epoch if self.blowup is None else self.blowup[0], value)
        if self.blowup is not None and value < RECOVERED_FACTOR * self.no_skill:
            self.blowup = None  # back where training starts: it recovered

    def finish(self, epoch: int) -> None:
        """At the end of the run (not on Ctrl-C): fail if a blow-up was never recovered from."""
        if self.blowup is not None:
            start, peak = self.blowup
            self._fail(epoch, f"the {self._vs(peak)}, stayed over {BLOWUP_FACTOR:g} x for {DIVERGENCE_EPOCHS}+ "
                              f"epochs from epoch {start - DIVERGENCE_EPOCHS + 1} and never came back under "
                              f"{RECOVERED_FACTOR:g} x")
