"""One way to time a command and read its peak memory, shared by the benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

# The command runs as the only child of this wrapper, so RUSAGE_CHILDREN is the command's own peak.
_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)\n"
    "wall = time.perf_counter() - t\n"
    "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'wall_s': wall, 'cpu_s': ru.ru_utime + ru.ru_stime, 'peak_kb': ru.ru_maxrss,"
    " 'rc': p.returncode, 'stdout': p.stdout[-4000:], 'stderr': p.stderr[-2000:]}))\n"
)


def byte_compile(root: str) -> None:
    """Byte-compile the checkout's package once, as ``pip install`` does for an installed package. An editable
    checkout run with PYTHONDONTWRITEBYTECODE set (as in some sandboxes and clusters) never caches its
    bytecode, and every command would compile mlpcli's modules again: ~0.25 s of each command's start on
    this project's machine, not part of what an installed mlpcli costs."""
    import compileall

    package = os.path.join(root, "mlpcli")
    if root not in _COMPILED and os.path.isdir(package):
        compileall.compile_dir(package, quiet=1)
        _COMPILED.add(root)


_COMPILED: set[str] = set()


def measure(cmd: list[str], root: str) -> dict:
    """Run `cmd` with mlpcli imported from the checkout `root` (byte-compiled first, ``byte_compile``): wall
    time, CPU time (user + system, all threads), peak RSS in MiB (`peak_mb`), and the tails of its output. A
    failing command ends the benchmark with its error."""
    byte_compile(root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    # run outside any checkout: `python -m` and `-c` put the working directory first on sys.path
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=True, env=env,
                         cwd=tempfile.gettempdir())
    res = json.loads(out.stdout)
    if res["rc"] != 0:
        raise SystemExit(f"command failed ({res['rc']}): {' '.join(cmd)}\n{res['stderr']}")
    res["peak_mb"] = res.pop("peak_kb") / 1024  # Linux reports ru_maxrss in KiB
    return res
