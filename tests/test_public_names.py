"""Every name a module of the package exports resolves: ``__all__`` lists, and the names and modules a package
imports on first use (PEP 562, ``mlpcli.predict``). A module moved or renamed left ``mlpcli.predict.DEFAULT_CHUNKSIZE``
pointing at a module that no longer existed, which only a user's notebook found."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import mlpcli


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(mlpcli.__path__, "mlpcli.")
                  if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", _modules())
def test_every_exported_name_of_a_module_resolves(name):
    module = importlib.import_module(name)
    missing = []
    for exported in getattr(module, "__all__", ()):
        try:
            getattr(module, exported)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{exported} ({type(exc).__name__}: {exc})")
    assert not missing, f"{name}.__all__ names what it cannot give: {missing}"


def test_the_predict_package_gives_each_of_its_modules_on_first_use():
    # in a fresh interpreter: once a module is imported (the test above imports them all) it is an attribute anyway
    script = ("import pkgutil, mlpcli.predict as p\n"
              "for m in sorted(pkgutil.iter_modules(p.__path__), key=lambda m: m.name):\n"
              "    print(m.name, getattr(p, m.name).__name__)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr.strip().splitlines()[-1]
    for line in out.stdout.splitlines():
        name, module = line.split()
        assert module == f"mlpcli.predict.{name}"
