"""Fixtures every test gets."""

from importlib.metadata import version

import pytest


def _release(package: str) -> tuple[int, int]:
    return tuple(int(part) for part in version(package).split(".")[:2])


if _release("click") < (8, 2):
    # click 8.1 (pyproject allows it) mixes a CliRunner's stderr into its stdout unless told not to, and then its
    # `output` is stdout alone; the tests read click 8.2's result: `stdout` and `stderr` apart, and `output` both,
    # in the order they were written (JSON after the notes, the error line last). Each stream's writes are
    # copied to one shared output here, as 8.2 does.
    import contextlib
    import io
    import sys

    from click.testing import CliRunner, Result, _NamedTextIOWrapper

    class _Copied(io.BytesIO):
        def __init__(self, shared: io.BytesIO):
            super().__init__()
            self.shared = shared

        def write(self, b):
            self.shared.write(b)
            return super().write(b)

    _runner_init, _isolation, _invoke = CliRunner.__init__, CliRunner.isolation, CliRunner.invoke

    def _stderr_apart(self, *args, mix_stderr=False, **kwargs):
        _runner_init(self, *args, mix_stderr=mix_stderr, **kwargs)

    @contextlib.contextmanager
    def _both_copied(self, *args, **kwargs):
        with _isolation(self, *args, **kwargs):
            self.output_bytes = io.BytesIO()
            out, err = _Copied(self.output_bytes), _Copied(self.output_bytes)
            sys.stdout = _NamedTextIOWrapper(out, encoding=self.charset, name="<stdout>", mode="w", write_through=True)
            sys.stderr = _NamedTextIOWrapper(err, encoding=self.charset, name="<stderr>", mode="w", write_through=True,
                                             errors="backslashreplace")
            yield out, err

    def _with_output(self, *args, **kwargs):
        result = _invoke(self, *args, **kwargs)
        result.output_bytes = self.output_bytes.getvalue()
        return result

    CliRunner.__init__, CliRunner.isolation, CliRunner.invoke = _stderr_apart, _both_copied, _with_output
    Result.output = property(lambda res: res.output_bytes.decode(res.runner.charset, "replace").replace("\r\n", "\n"))

if _release("scikit-learn") < (1, 7):
    # scikit-learn 1.6 fails to import its estimator checks (RuntimeError; 1.7 catches it) when array-api-compat,
    # which anndata brings, and SciPy 1.14+ are installed without SCIPY_ARRAY_API=1. Imported once here with the
    # variable set, after SciPy has read it at its own import, so SciPy runs as it would without it.
    import sklearn.utils._array_api  # noqa: F401  (imports SciPy)

    with pytest.MonkeyPatch.context() as _mp:
        _mp.setenv("SCIPY_ARRAY_API", "1")
        import sklearn.utils.estimator_checks  # noqa: F401


@pytest.fixture(autouse=True)
def _no_terminal_size(monkeypatch):
    """The runner's terminal does not shape the output under test: a COLUMNS exported by the shell that runs
    the suite (an 80-column terminal) set the width `info` and rich lay out tables at in a pipe, and text
    assertions failed there only. Tests that need a width set it themselves."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
