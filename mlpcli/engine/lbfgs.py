"""L-BFGS: a quasi-Newton minimiser for smooth objectives, on one flat float64 vector.

Used to fit a network to convergence on all of its training rows at once (``--optimizer lbfgs``): for a
softmax regression with an L2 penalty the objective is convex, and this reaches the optimum that
scikit-learn's ``LogisticRegression`` (also L-BFGS) reaches, where minibatch Adam with early stopping stops
on the way. Nocedal & Wright, *Numerical Optimization* (2006), algorithm 7.4 (the two-loop recursion) with a
backtracking line search on the Armijo condition f(x + t d) <= f(x) + c t g.d.

NumPy only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["LBFGSResult", "minimize"]

ARMIJO_C = 1e-4  # sufficient decrease: the usual constant (Nocedal & Wright)
MIN_STEP = 1e-10  # a line search that must shrink the step below this has found no decrease: stop


@dataclass
class LBFGSResult:
    x: np.ndarray  # (n,) the last accepted point
    f: float  # the objective there
    iterations: int  # accepted steps
    converged: bool  # the gradient or the relative decrease fell below its tolerance
    message: str


def minimize(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, max_iter: int = 200,
             memory: int = 10, gtol: float = 1e-5, ftol: float = 1e-9, stall: int = 1, f_floor: float = 1.0,
             callback: Callable[[int, np.ndarray, float], None] | None = None) -> LBFGSResult:
    """Minimise ``fun`` from ``x0`` (n,). ``fun(x)`` returns (f, grad (n,)), both float64.

    Stops when max |grad| <= gtol, when ``stall`` steps in a row each lower f by at most ftol x max(|f|, f_floor)
    (relative; ``f_floor`` 1 makes it absolute for |f| < 1, as scipy's), when the line search finds no decrease (the objective's rounding is reached: float32
    networks), or after ``max_iter`` steps. ``callback(iteration, x, f)`` after each accepted step (x is the
    iterate: copy it to keep it). ``memory``: the (s, y) pairs kept for the inverse-Hessian approximation."""
    x = np.array(x0, dtype=np.float64)
    f, g = fun(x)
    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)
    small = 0  # steps in a row that lowered f by at most ftol (relative)
    for it in range(1, max_iter + 1):
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return LBFGSResult(x, float(f), it - 1, False, "the objective or its gradient is not finite")
        if np.max(np.abs(g), initial=0.0) <= gtol:
            return LBFGSResult(x, float(f), it - 1, True, "gradient below tolerance")
        d = -_inverse_hessian_times(g, pairs)
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction (curvature pairs gone stale): restart from the gradient
            pairs.clear()
            d = -_inverse_hessian_times(g, pairs)
            slope = float(g @ d)
        t = 1.0
        while True:
            x_new = x + t * d
            f_new, g_new = fun(x_new)
            if np.isfinite(f_new) and f_new <= f + ARMIJO_C * t * slope:
                break
            t *= 0.5
            if t < MIN_STEP:
                return LBFGSResult(x, float(f), it - 1, True, "no further decrease (rounding of the objective)")
        s, y = x_new - x, g_new - g
        sy = float(s @ y)
        if sy > 1e-12 * float(y @ y):  # positive curvature: keeps the approximation positive definite
            pairs.append((s, y, 1.0 / sy))
        decrease = f - f_new
        x, f, g = x_new, float(f_new), g_new
        if callback is not None:
            callback(it, x, f)
        small = small + 1 if decrease <= ftol * max(abs(f), f_floor) else 0
        if small >= stall:
            return LBFGSResult(x, f, it, True, "relative decrease below tolerance")
    return LBFGSResult(x, float(f), max_iter, False, "iteration limit")


def _inverse_hessian_times(g: np.ndarray, pairs) -> np.ndarray:
    """H g by the two-loop recursion over the stored (s, y, 1 / s.y) pairs, H0 = (s.y / y.y) I from the newest
    pair; without pairs, g scaled to unit length at most (a first step of length <= 1)."""
    if not pairs:
        return g / max(1.0, float(np.linalg.norm(g)))
    q = g.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * float(s @ q)
        q -= a * y
        alphas.append(a)
    s, y, rho = pairs[-1]
    q *= 1.0 / (rho * float(y @ y))  # gamma = s.y / y.y
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * float(y @ q)
        q += (a - b) * s
    return q
