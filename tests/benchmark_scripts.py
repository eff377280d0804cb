"""The benchmark scripts (benchmarks/*.py are scripts, not a package) loaded as modules for their tests."""

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextmanager
def loaded(name: str):
    """benchmarks/<name>.py as a module, registered in sys.modules while in use (dataclasses look their
    module up while being defined; joblib workers pickle by module name)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
