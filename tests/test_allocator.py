"""The allocator's handling of freed blocks (``mlpcli.allocator``): applied by the console script, inherited by
the processes it starts, and never over the user's own settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _allocator_in_child(env: dict) -> dict:
    code = ("import json, os; from mlpcli import allocator; applied = allocator.keep_freed_blocks(); "
            "print(json.dumps({'applied': applied, 'trim': "
            "os.environ.get('MALLOC_TRIM_THRESHOLD_'), 'mmap': os.environ.get('MALLOC_MMAP_THRESHOLD_')}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
                    reason="glibc only")
def test_freed_blocks_are_kept_for_reuse_and_worker_processes_inherit_it():
    from mlpcli.allocator import KEPT_FREE_BYTES, MMAP_BYTES

    got = _allocator_in_child({})
    assert got == {"applied": True, "trim": str(KEPT_FREE_BYTES), "mmap": str(MMAP_BYTES)}


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
                    reason="glibc only")
@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "131072"}, {"MALLOC_TOP_PAD_": "0"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}])
def test_the_users_own_allocator_settings_are_left_alone(env):
    got = _allocator_in_child(env)
    assert got["applied"] is False
    assert got["trim"] == env.get("MALLOC_TRIM_THRESHOLD_") and got["mmap"] is None


def test_the_heap_is_trimmed_only_where_its_thresholds_slide(monkeypatch):
    """The console script fixes them (MALLOC_TRIM_THRESHOLD_): trimming there made the next stage's pages fault
    again for nothing; the library in a notebook keeps the trim."""
    from mlpcli import allocator

    calls = []

    class Libc:
        def malloc_trim(self, pad):
            calls.append(pad)

    monkeypatch.setattr(allocator, "_glibc", lambda: Libc())
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", str(allocator.KEPT_FREE_BYTES))
    allocator.return_freed()
    assert calls == []
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    allocator.return_freed()
    assert calls == [0]
