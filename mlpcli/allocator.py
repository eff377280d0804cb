"""The C allocator's handling of freed memory (glibc's malloc; a no-op elsewhere).

A command makes many short-lived arrays of a few megabytes: the preprocessing's blocks of columns (8 MiB
float64 copies and their work space, two threads at a time), the row blocks of ``transform``, of the counts
check and of the shift check. glibc hands such a block back to the system when it is freed at the top of its
heap and more than ``M_TRIM_THRESHOLD`` (by default twice the mmap threshold, so 16 MiB after the first 8 MiB
block) lies free there; the next block is then new memory, and every 4 KiB page of it costs a page fault on
its first write: 1-4 us on a virtual machine, where each fault exits to the hypervisor. ``keep_freed_blocks``
fixes the mmap threshold and the trim threshold so that freed blocks are used again instead. Measured on `train
--folds 1 --epochs 2 --hidden 128` of 8,000 x 5,000 float32 parquet: 306,000-318,000 page faults -> 189,000-192,000,
system time 0.72-0.90 -> 0.58-0.74 s, 0.08 s less outside the epochs (medians of six alternating pairs, 2.83 ->
2.75 s), peak resident set 614-637 -> 632-640 MB; on 100,000 x 2,000 sparse .h5ad 469,000 -> 398,000 faults, peak
993 -> 997 MB. A trim threshold of 64 MiB keeps nearly all of it (256 MiB: 189,000 faults; 32 MiB: 198,000), where
256 MiB raised the sparse peak by 20 MB more. Arrays of MMAP_BYTES and more (the data matrix, the training matrix)
still get memory of their own from the system, returned when they are freed, so the memory kept is at most the
blocks in use at one time plus KEPT_FREE_BYTES, and a later stage reuses it. ``return_freed`` trims the heap only
where the thresholds still slide (the library in a notebook, which never calls ``keep_freed_blocks``): under them
the trim before the OOD calibration made 24,000 of its pages fault again, for the same peak.
"""

from __future__ import annotations

import os

__all__ = ["MMAP_BYTES", "KEPT_FREE_BYTES", "keep_freed_blocks", "return_freed", "reserve_less_under_a_limit",
           "ARENAS_UNDER_A_LIMIT", "ARROW_RESERVE_KIB"]

MMAP_BYTES = 32 << 20  # glibc's own ceiling for its sliding mmap threshold (64-bit), fixed here
KEPT_FREE_BYTES = 64 << 20  # free memory a heap may keep at its top before it is trimmed

# mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# the environment variables glibc reads when a process starts (worker processes inherit them)
_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": MMAP_BYTES, "MALLOC_TRIM_THRESHOLD_": KEPT_FREE_BYTES}


def _glibc():
    """The C library's functions when it is glibc, else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (AttributeError, ValueError, OSError):  # not glibc (macOS, musl, Windows)
        return None
    import ctypes

    try:
        return ctypes.CDLL(None)  # the running program's symbols, libc's among them (no ldconfig subprocess)
    except OSError:  # pragma: no cover - a static build
        return None


def keep_freed_blocks() -> bool:
    """Make freed blocks below MMAP_BYTES stay with the allocator for reuse (see the module docstring), in this
    process (``mallopt``) and in the processes it starts (the environment). Left alone when the user set
    these thresholds (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_ or a glibc.malloc tunable
    in GLIBC_TUNABLES), and where the C library is not glibc. Returns whether it was applied."""
    if any(k in os.environ for k in (*_ENVIRONMENT, "MALLOC_TOP_PAD_")) or \
            "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _glibc()
    if libc is None:
        return False
    try:
        applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES))
    except AttributeError:  # pragma: no cover - a libc without mallopt
        return False
    if applied:
        os.environ.update({k: str(v) for k, v in _ENVIRONMENT.items()})
    return applied


def return_freed() -> None:
    """Hand the memory freed so far back to the system (glibc's malloc_trim) where the allocator's thresholds
    still slide: blocks under its mmap threshold (which grows to 32 MB as large arrays are freed) stay in its heap
    when freed, and the resident set would carry them into the next stage (120 MB after an 8,000 x 5,000
    ensemble). A no-op where the trim threshold is fixed (MALLOC_TRIM_THRESHOLD_: ``keep_freed_blocks``, inherited
    by a worker process, or the user's), where the heap keeps at most that much, and where there is no glibc."""
    if "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return
    libc = _glibc()
    if libc is not None:
        try:
            libc.malloc_trim(0)
        except AttributeError:  # pragma: no cover
            pass


# Under an address-space limit (``reserve_less_under_a_limit``): glibc's arenas at most (each reserves 64 MiB of
# address space, one for each thread that allocates, up to 8 per core), and the address space pyarrow's allocator
# (mimalloc) reserves at a time, in KiB (1 GiB by default, on the first table read).
ARENAS_UNDER_A_LIMIT = 2
ARROW_RESERVE_KIB = 64 * 1024


def reserve_less_under_a_limit() -> bool:
    """Under an address-space limit (``ulimit -v``: ``resources.address_space_limit``), make the allocators reserve
    less of it, in this process and in the processes it starts (the environment): glibc at most
    ARENAS_UNDER_A_LIMIT arenas (``mallopt`` and MALLOC_ARENA_MAX), pyarrow's mimalloc ARROW_RESERVE_KIB at a time
    (MIMALLOC_ARENA_RESERVE, read when pyarrow first allocates: called before). The limit counts address space
    reserved, not memory used: 1 GiB reserved by mimalloc for the first table read and 64 MiB by each thread's arena
    took most of it, and `cv --n-jobs 1` of the sample data needed a limit of 1.0 GB where it now runs under 0.8 GB.
    A setting the user made is kept; nothing is done without a limit, where reserving is free. Returns whether
    anything was set."""
    from .resources import address_space_limit

    if address_space_limit() is None:
        return False
    applied = False
    if "MIMALLOC_ARENA_RESERVE" not in os.environ:
        os.environ["MIMALLOC_ARENA_RESERVE"] = str(ARROW_RESERVE_KIB)
        applied = True
    if "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return applied
    libc = _glibc()
    try:
        if libc is not None and libc.mallopt(_M_ARENA_MAX, ARENAS_UNDER_A_LIMIT):
            os.environ["MALLOC_ARENA_MAX"] = str(ARENAS_UNDER_A_LIMIT)
            applied = True
    except AttributeError:  # pragma: no cover - a libc without mallopt
        pass
    return applied
