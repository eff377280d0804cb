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


def write_tenx(directory, genes, cells: int = 6) -> None:
    """A 10x Genomics directory (matrix.mtx.gz, features.tsv.gz, barcodes.tsv.gz) of random counts: ``genes`` as
    Gene Expression features, barcodes AAAC0-1, AAAC1-1, ... (``cells`` of them)."""
    import scipy.sparse as sp

    from tables import write_cellranger

    directory.mkdir()
    counts = sp.random(len(genes), cells, density=0.5, format="coo", random_state=0).T  # (cells, genes), not whole
    write_cellranger(directory, counts, ids=genes, symbols=genes, barcodes=[f"AAAC{i}-1" for i in range(cells)])


FAST = ["--hidden", "8", "--epochs", "15", "--folds", "1", "--quiet"]
