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


def table_cells(line: str) -> list[str]:
    """The cells of one row of a rich table as a command prints it, stripped: framed (a terminal: "│ a │ b │") or
    not (a pipe or a file, where the outer frame is left out: " a │ b")."""
    cells = line.split("│")
    if line.strip().startswith("│"):
        cells = cells[1:]
    if line.strip().endswith("│"):
        cells = cells[:-1]
    return [c.strip() for c in cells]


def table_rows(text: str) -> dict[str, str]:
    """{first cell: second cell} of every table row in ``text`` with at least two cells (a summary's rows)."""
    return {cells[0]: cells[1] for cells in map(table_cells, text.splitlines()) if len(cells) >= 2}


def write_tenx(directory, genes, cells: int = 6) -> None:
    """A 10x Genomics directory (matrix.mtx.gz, features.tsv.gz, barcodes.tsv.gz) of random counts: ``genes`` as
    Gene Expression features, barcodes AAAC0-1, AAAC1-1, ... (``cells`` of them)."""
    import scipy.sparse as sp

    from tables import write_cellranger

    directory.mkdir()
    counts = sp.random(len(genes), cells, density=0.5, format="coo", random_state=0).T  # (cells, genes), not whole
    write_cellranger(directory, counts, ids=genes, symbols=genes, barcodes=[f"AAAC{i}-1" for i in range(cells)])


FAST = ["--hidden", "8", "--epochs", "15", "--folds", "1", "--quiet"]


def assert_same_figures(a, b, rel: float = 1e-6, where: str = "") -> None:
    """Two JSON reports (or parts) equal but for the last bits of their floats: the same keys, lengths, texts and
    integers, floats within ``rel``. The same rows scored in blocks of other sizes round differently on some
    BLAS kernels (OpenBLAS's Haswell / Zen kernels: 1e-9 apart; SkylakeX's gave the same bits), which a figure
    computed from other rows would miss by far more."""
    import math

    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), (where, sorted(a), sorted(b))
        for key in a:
            assert_same_figures(a[key], b[key], rel, f"{where}.{key}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_figures(x, y, rel, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == b or math.isclose(a, b, rel_tol=rel, abs_tol=rel * 1e-3) or (math.isnan(a) and math.isnan(b)), \
            (where, a, b)
    else:
        assert a == b, (where, a, b)
