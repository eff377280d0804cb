"""The console script asks NumPy not to mark its arrays for transparent huge pages where Linux would stall to
compact memory on their first write (``_entry.no_stalling_huge_pages``), and leaves every other setting alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mlpcli._entry import no_stalling_huge_pages


CODE = ("import os, sys\n"
        "from mlpcli._entry import no_stalling_huge_pages\n"
        "no_stalling_huge_pages(sys.argv[1])\n"
        "print(os.environ.get('NUMPY_MADVISE_HUGEPAGE', 'unset'))\n")


def setting_after(tmp_path, text: str | None, user: str | None = None) -> str:
    """NUMPY_MADVISE_HUGEPAGE after the function ran in a fresh interpreter (where NumPy is not imported yet)
    with the defrag file holding ``text`` (None: no such file) and the user's own value ``user``."""
    path = tmp_path / "defrag"
    if text is not None:
        path.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if user is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = user
    out = subprocess.run([sys.executable, "-c", CODE, str(path)], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("setting", ["always defer defer+madvise [madvise] never\n",
                                     "always defer [defer+madvise] madvise never\n"])
def test_stalling_settings_turn_numpys_mark_off(tmp_path, setting):
    assert setting_after(tmp_path, setting) == "0"


@pytest.mark.parametrize("setting", ["[always] defer defer+madvise madvise never\n",
                                     "always [defer] defer+madvise madvise never\n",
                                     "always defer defer+madvise madvise [never]\n",
                                     "garbage without a choice\n", "", None])
def test_other_settings_or_no_file_leave_numpy_alone(tmp_path, setting):
    assert setting_after(tmp_path, setting) == "unset"


@pytest.mark.parametrize("user", ["1", "0"])
def test_the_users_own_setting_wins(tmp_path, user):
    assert setting_after(tmp_path, "always defer defer+madvise [madvise] never\n", user) == user


def test_numpy_imported_already_is_left_alone(monkeypatch, tmp_path):
    """Once NumPy is imported the variable is no longer read: setting it would only mislead child processes
    into a setting the parent does not have (this test's process has NumPy)."""
    import numpy

    assert "numpy" in sys.modules and numpy.__name__ == "numpy"

    path = tmp_path / "defrag"
    path.write_text("always defer defer+madvise [madvise] never\n")
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    no_stalling_huge_pages(str(path))
    assert "NUMPY_MADVISE_HUGEPAGE" not in os.environ


def test_the_console_script_sets_it_before_numpy_is_imported(tmp_path):
    """Through the real entry point: the command's NumPy reads the setting (where this machine's kernel
    asks for it) and the user's value passes through untouched."""
    code = ("import sys, os\n"
            "import mlpcli._entry as e\n"
            "e.no_stalling_huge_pages(sys.argv[1])\n"
            "import numpy\n"
            "print(os.environ.get('NUMPY_MADVISE_HUGEPAGE'), 'numpy' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    stalling = tmp_path / "defrag"
    stalling.write_text("always defer defer+madvise [madvise] never\n")
    out = subprocess.run([sys.executable, "-c", code, str(stalling)], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["0", "True"]
    out = subprocess.run([sys.executable, "-c", code, str(stalling)], capture_output=True, text=True,
                         env={**env, "NUMPY_MADVISE_HUGEPAGE": "1"}, check=True)
    assert out.stdout.split() == ["1", "True"]
    # importing mlpcli._entry itself must not import NumPy, or the setting would come too late
    out = subprocess.run([sys.executable, "-c", "import sys, mlpcli._entry; print('numpy' in sys.modules)"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
