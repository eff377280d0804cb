"""Reaching a Dask scheduler (``--scheduler ADDRESS``): a connection with a timeout and a one-line error naming
what is wrong (nothing listening, the dashboard's port given for the scheduler's, a firewall), then waiting for
its first worker (batch jobs may start late), with Dask's own logging kept off the user's terminal."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from .errors import ConfigError, OptionError


CONNECT_TIMEOUT = 10.0  # seconds to reach a Dask scheduler before giving up with a one-line error
# seconds to wait for the first Dask worker (batch jobs may start late), or for any while fits remain
WORKER_TIMEOUT = 120.0


def connect(address: str, timeout: float | None = None):
    """A ``distributed.Client`` for the scheduler at ``address``, or a one-line error: an OptionError (usage)
    for an address that cannot be one, a ConfigError when nothing answers there within ``timeout`` seconds,
    or something other than a Dask scheduler does (``_probe_scheduler``)."""
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    check_address(address)
    from distributed import Client

    _probe_scheduler(address, timeout)
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise _unreachable(address, timeout, exc) from None


DASK_MISSING = ("--backend dask needs dask and distributed: pip install dask distributed (the dask extra: "
                "python -m pip install '.[dask]' from the mlpcli checkout)")


def check_address(address: str) -> tuple[str, str | None, int | None]:
    """(scheme, host, port) of a scheduler ``address``, before any data is read: a ConfigError when distributed
    cannot be imported (it was "internal error (ModuleNotFoundError ...)" once the table had been read), an
    OptionError (usage) for an address that cannot be one."""
    try:
        from distributed.comm import get_address_host_port, parse_address
        from distributed.comm.registry import get_backend
    except ImportError:
        raise ConfigError(DASK_MISSING) from None
    try:
        scheme, _ = parse_address(address)
        get_backend(scheme)
        host, port = get_address_host_port(address) if scheme == "tcp" else (None, None)
    except (ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise OptionError(f"--scheduler {address}: not a Dask scheduler address ({reason}); give it as "
                          "tcp://HOST:PORT, as `dask scheduler` prints it") from None
    if scheme == "tcp" and (not host or not isinstance(port, int) or not 0 < port < 65536):
        # no host, or a port no socket can have: "cannot reach" after the whole timeout read as a busy scheduler
        raise OptionError(f"--scheduler {address}: not a Dask scheduler address (a host and a port from 1 to 65535 "
                          "are needed); give it as tcp://HOST:PORT, as `dask scheduler` prints it")
    return scheme, host, port


def _unreachable(address: str, timeout: float, exc: BaseException | None = None) -> ConfigError:
    """The one-line error for a scheduler address where nothing answered within ``timeout``."""
    reason = " ".join(str(exc or "").split())[:160] or type(exc).__name__
    detail = "" if exc is None or "timed out" in reason.lower() else f" ({reason})"
    return ConfigError(f"--scheduler {address}: cannot reach a Dask scheduler within {timeout:g} s{detail}; check "
                       "the address and port, or start one with `dask scheduler` and pass the address it prints")


def scheduler_hint(address: str) -> str:
    """The usual mix-up, named: the dashboard's port (8787 by default) given for the scheduler's (8786)."""
    if address.rstrip("/").endswith(":8787"):
        return "; 8787 is the dashboard's port, the scheduler's is 8786 by default"
    return ""


def _probe_scheduler(address: str, timeout: float) -> None:
    """Ask what listens at a tcp ``address`` (its ``identity``) within ``timeout`` seconds, before a
    ``Client`` is made: distributed's handshake waits without a deadline, so a port held by another service
    that waits for its own protocol hung the command until the job's time limit, and one that answers (an
    HTTP server such as the dashboard) was read as a message of exabytes, a MemoryError. A malformed address
    is an OptionError; the connection is retried until ``timeout``, as the ``Client`` does (a scheduler still
    starting in the same batch job), then nothing listening there is "cannot reach"."""
    import asyncio

    from distributed.comm import connect as comm_connect

    scheme, host, port = check_address(address)
    if scheme != "tcp":  # tls needs the cluster's certificates, inproc is in this process: the Client's own checks
        return

    async def identity():
        comm = await comm_connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    box: dict[str, Any] = {}

    def ask() -> None:  # in a thread of its own: a fresh event loop, whatever loop the caller runs (a notebook's)
        try:
            box["reply"] = asyncio.run(asyncio.wait_for(identity(), timeout))
        except BaseException as exc:  # noqa: BLE001 - classified below, in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=ask, name="mlpcli-scheduler-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5)  # asyncio.wait_for ends it by `timeout`
    if "error" not in box and "reply" not in box:
        raise _unreachable(address, timeout)
    error = box.get("error")
    if isinstance(error, TimeoutError):  # the deadline (asyncio's TimeoutError is the builtin one)
        if not _listens(host, port):
            raise _unreachable(address, timeout)
        raise ConfigError(f"--scheduler {address}: something accepted the connection but did not answer as a Dask "
                          f"scheduler within {timeout:g} s{scheduler_hint(address)}; pass the address `dask "
                          "scheduler` prints (or its --scheduler-file's)")
    if isinstance(error, OSError) and "trying to connect" in str(error):  # distributed's own deadline
        raise _unreachable(address, timeout, error)
    reply = box.get("reply")
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind == "Scheduler":
        return
    if kind in ("Worker", "Nanny"):
        raise ConfigError(f"--scheduler {address}: that is a Dask {kind.lower()}, not the scheduler; pass the address "
                          "`dask scheduler` prints (or its --scheduler-file's)")
    # anything else: an answer that is no Dask message (read as a length of exabytes: a MemoryError), a closed
    # connection, a reply without a type
    raise ConfigError(f"--scheduler {address}: another service answered there, not a Dask scheduler"
                      f"{scheduler_hint(address)}; pass the address `dask scheduler` prints (or its "
                      "--scheduler-file's)")


def _listens(host: str | None, port: int | None) -> bool:
    """Whether a TCP connection to host:port is accepted now (within a second)."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except (OSError, TypeError, ValueError):
        return False


def wait_for_a_worker(client, address: str) -> None:
    """Batch-job workers may join late; wait for one before sending work (a one-line error if none)."""
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
    except (TimeoutError, OSError):
        raise ConfigError(
            f"--scheduler {address}: no Dask worker joined within {WORKER_TIMEOUT:g} s; start workers with "
            f"`dask worker {address}` (see docs/cluster.md)"
        ) from None


@contextmanager
def quiet_dask_client() -> Iterator[None]:
    """distributed's client logs a lost scheduler as errors with tracebacks on stderr, before the run ends with its
    own one-line error (``_scheduler_lost``): its loggers say only what is critical while the client is open."""
    import logging

    loggers = [logging.getLogger(name) for name in ("distributed.client", "distributed.batched", "distributed.core")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
