"""What this job may use of the machine: its cores (the CPU affinity mask, the cgroup CPU quota, SLURM_CPUS_PER_TASK)
and its memory (RAM, the cgroup limit, SLURM's allocation), read from the places a batch system sets them; the
machine's own counts (``os.cpu_count()``) describe a shared node, not the job."""

from __future__ import annotations

import os

__all__ = ["usable_cores", "cores_words", "available_memory", "address_space_limit", "address_space_words"]


CGROUP_ROOT = "/sys/fs/cgroup"  # where the cgroup files are mounted (tests point it elsewhere)
PROC_CGROUP = "/proc/self/cgroup"  # which cgroup this process is in (tests point it elsewhere)


def usable_cores() -> int:
    """Cores this process may actually use: the smallest of the CPU affinity mask (taskset, SLURM's and
    cgroup cpusets), the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``:
    containers, ``docker --cpus``, SLURM with ConstrainCores) in whole cores, and ``SLURM_CPUS_PER_TASK``;
    at least 1. ``os.cpu_count()`` counts the machine's cores, which a shared node or a job does not own."""
    return max(1, min(n for n, _ in _core_limits()))


def _core_limits() -> list[tuple[int, str]]:
    """Each limit on the cores this process may use, in whole cores, with what sets it, in words."""
    try:
        limits = [(len(os.sched_getaffinity(0)), "the CPU affinity mask: taskset, the job's cpuset")]
    except AttributeError:  # pragma: no cover - macOS, Windows
        limits = [(os.cpu_count() or 1, "the machine's cores")]
    quota = _cgroup_cpu_quota()
    if quota is not None:
        limits.append((max(1, int(quota)), f"the cgroup CPU quota of {quota:g} CPUs"))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) > 0:
        limits.append((int(slurm), f"SLURM_CPUS_PER_TASK={int(slurm)}"))
    return limits


def cores_words(cores: int) -> str:
    """``cores`` (``usable_cores()``) with what sets it, for a warning: "2 (SLURM_CPUS_PER_TASK=2)", "1 (the
    cgroup CPU quota of 1.5 CPUs)": a user who asked the scheduler for 8 CPUs learns which limit gave 2."""
    why = [words for n, words in _core_limits() if max(1, n) == cores]
    return f"{cores} ({'; '.join(why) if why else 'CPU affinity, cgroup quota, SLURM_CPUS_PER_TASK'})"


def _cgroup_cpu_quota() -> float | None:
    """CPUs the cgroup quota allows (quota / period), the smallest over this process's cgroup and every
    cgroup above it (a limit set on a job's or a slice's cgroup binds the cgroups below it, whose own
    ``cpu.max`` reads "max"); None without a quota."""
    quotas = []
    for version, folder in _cgroup_dirs("cpu"):
        if version == 2:  # "max 100000" (no limit) or "150000 100000"
            fields = _read_fields(os.path.join(folder, "cpu.max"))
        else:
            fields = _read_fields(os.path.join(folder, "cpu.cfs_quota_us")) + _read_fields(
                os.path.join(folder, "cpu.cfs_period_us"))
        if len(fields) == 2 and all(f.lstrip("-").isdigit() for f in fields):
            quota, period = int(fields[0]), int(fields[1])  # v1's quota is -1 without a limit
            if quota > 0 and period > 0:
                quotas.append(quota / period)
    return min(quotas) if quotas else None


def _read_fields(path: str) -> list[str]:
    """The whitespace-separated fields of a small file, [] when it cannot be read."""
    try:
        with open(path) as fh:
            return fh.read().split()
    except OSError:
        return []


def _cgroup_dirs(v1_controller: str) -> list[tuple[int, str]]:
    """(cgroup version, folder) for this process's cgroup and every cgroup above it, leaf first, in v2 and in
    v1's hierarchy of ``v1_controller`` ("cpu", "memory"), then the mounts' roots (a container whose cgroup
    path, seen from outside, does not exist in its own mount)."""
    try:
        with open(PROC_CGROUP) as fh:
            lines = [line.strip().split(":", 2) for line in fh]
    except OSError:
        lines = []
    v1_root = os.path.join(CGROUP_ROOT, v1_controller)
    dirs = []
    for parts in lines:
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":  # v2: "0::/path"
            version, base = 2, CGROUP_ROOT
        elif v1_controller in parts[1].split(","):  # v1: "N:cpu,cpuacct:/path"
            version, base = 1, v1_root
        else:
            continue
        path = parts[2].strip("/")
        while True:
            dirs.append((version, os.path.join(base, path) if path else base))
            if not path:
                break
            path = os.path.dirname(path)
    for root in ((2, CGROUP_ROOT), (1, v1_root)):
        if root not in dirs:
            dirs.append(root)
    return dirs


def available_memory() -> int | None:
    """Bytes of memory this job may use: the smallest of the machine's RAM, its cgroup's limit (v2
    ``memory.max``, v1 ``memory.limit_in_bytes``, of this process's own cgroup and each one above it: a
    batch job's cgroup sits below the root) and SLURM's allocation (``--mem``: ``SLURM_MEM_PER_NODE``;
    ``--mem-per-cpu``: ``SLURM_MEM_PER_CPU`` x the job's CPUs on the node), in MB; None when none can be
    read. Not ``ulimit -v``: it caps each process's address space (worker processes each have their own),
    which counts reserved, never-touched mappings too; a run beyond it ends in the command line's one-line
    out-of-memory error."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        pass
    for path in _cgroup_memory_files():
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max" or a huge number: no limit
            limits.append(int(text))
    slurm = os.environ.get("SLURM_MEM_PER_NODE", "").strip()
    if slurm.isdigit() and int(slurm) > 0:
        limits.append(int(slurm) * 1024 * 1024)
    per_cpu = os.environ.get("SLURM_MEM_PER_CPU", "").strip()
    cpus = (os.environ.get("SLURM_CPUS_ON_NODE", "") or os.environ.get("SLURM_CPUS_PER_TASK", "")).strip()
    if per_cpu.isdigit() and int(per_cpu) > 0:
        limits.append(int(per_cpu) * (int(cpus) if cpus.isdigit() and int(cpus) > 0 else 1) * 1024 * 1024)
    return min(limits) if limits else None


def address_space_limit() -> int | None:
    """Bytes of address space each process of this job may map (``ulimit -v``, RLIMIT_AS; some batch systems set
    it per job), None without a limit. It counts every mapping, reserved or used: OpenBLAS's buffers and threads,
    the allocators' arenas, thread stacks, shared libraries, so a run needs it well above its resident memory
    (`cv --n-jobs 1` of the sample data: 250 MB resident, a limit of 720 MB). Worker processes each have their own."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (AttributeError, ValueError, OSError):  # pragma: no cover - a platform without it
        return None
    return None if soft == resource.RLIM_INFINITY or soft < 0 else int(soft)


def address_space_words(limit: int) -> str:
    """The limit (bytes) as the user set it, in the shell's unit: "ulimit -v 2000000 KiB"."""
    return f"ulimit -v {limit // 1024} KiB"


def _cgroup_memory_files() -> list[str]:
    """The memory-limit files of this process's cgroup and of every cgroup above it, v2 and v1."""
    return [os.path.join(folder, "memory.max" if version == 2 else "memory.limit_in_bytes")
            for version, folder in _cgroup_dirs("memory")]
