"""Fixtures every test gets."""

import pytest


@pytest.fixture(autouse=True)
def _no_terminal_size(monkeypatch):
    """The runner's terminal does not shape the output under test: a COLUMNS exported by the shell that runs
    the suite (an 80-column terminal) set the width `info` and rich lay out tables at in a pipe, and text
    assertions failed there only. Tests that need a width set it themselves."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
