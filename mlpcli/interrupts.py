"""Interrupts a fit absorbed: ``training.fit`` ends on Ctrl-C (or the SIGTERM / SIGHUP the command line turns
into one) with the best weights so far instead of raising, so that ``train`` can keep them. Code that runs
many fits one after the other in this process (``parallel.run`` without workers: cross-validation, tuning,
learning curves) must still stop, and asks here whether a fit was cut short while it ran."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_count = 0


def absorbed() -> None:
    """Record that a fit ended early on an interrupt instead of raising it."""
    global _count
    with _lock:
        _count += 1


def count() -> int:
    """How many fits in this process have ended on an interrupt so far (compare before and after a call)."""
    return _count
