"""The console script's first code, before anything heavy is imported.

A stop signal (Ctrl-C, SLURM's SIGTERM, SIGHUP) that arrives while the command line is still importing
(about half a second) or after its command has finished (while the interpreter shuts down, joblib's
worker processes included) has nothing to stop or to keep: the process says so on one line and ends with
128 + the signal, instead of a traceback from inside an import or from an exit handler. In between, the
command line's own handling (``cli._common.stop_signals_as_interrupts``) is in force.
"""

from __future__ import annotations

import os
import signal

STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


def quiet_exit(signum, frame) -> None:
    """End the process at once: "Interrupted." (with the signal's name unless it is SIGINT), 128 + signum."""
    name = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    try:
        os.write(2, f"Interrupted{name}.\n".encode())
    except OSError:  # stderr closed: the exit code still says it
        pass
    os._exit(128 + signum)


def main() -> None:
    for s in STOP_SIGNALS:
        if signal.getsignal(s) is not signal.SIG_IGN:  # a signal ignored by the caller (nohup) stays ignored
            signal.signal(s, quiet_exit)
    from .cli import main as cli_main

    cli_main()
