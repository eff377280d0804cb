"""Running the CLI in-process and checking its error contract (one line, exit code, no traceback)."""

from click.testing import CliRunner

from mlpcli.cli import cli


def run(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


def assert_clean_error(result, *needles, code=1):
    """Exit ``code``, no traceback, the last line an ``Error:`` naming each of ``needles``."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error:"), result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
