"""explain names genes by symbol beside their ids: a model trained on an .h5ad file's Ensembl ids (var_names) ranked
them by id alone, where the file's var table (CELLxGENE's ``feature_name``, a 10x directory's ``gene_symbols``) holds
the symbols a biologist reads. The symbols come from the library (``explain.feature_symbols``), the CLI renders
them: a ``symbol`` column after ``feature`` in -o, a ``symbol`` field in --json, a column of the terminal table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

anndata = pytest.importorskip("anndata")  # the test extra installs it: never skipped in CI
import scipy.sparse as sp  # noqa: E402

from mlpcli import model_io  # noqa: E402
from mlpcli.explain import COLUMNS  # noqa: E402

from cli_helpers import assert_clean_error, run  # noqa: E402
from tables import write_cellranger  # noqa: E402

TYPES = ("T", "B", "NK")
N_GENES = 8
IDS = [f"ENSG{j:011d}" for j in range(N_GENES)]
# gene 0 has no symbol (NaN: shown by its id alone); genes 3 and 4 share one (ids stay the keys)
SYMBOLS = [None, "CD3E", "MS4A1", "NKG7", "NKG7", "GNLY", "CD8A", "LYZ"]
FAST = ["--steps", "4", "--bootstrap", "2", "--top", str(N_GENES), "-q"]


def cells(n: int = 90, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Counts of three cell types, each with two marker genes, and the cells' types."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, len(TYPES), size=n)
    X = rng.poisson(1.0, size=(n, N_GENES)).astype(np.float32)
    for t in range(len(TYPES)):
        X[types == t, 2 * t:2 * t + 2] += 5
    return X, [TYPES[t] for t in types]


def write_h5ad(path: Path, var: pd.DataFrame) -> str:
    X, types = cells()
    obs = pd.DataFrame({"cell_type": pd.Categorical(types)}, index=[f"c{i}" for i in range(len(types))])
    anndata.AnnData(X=sp.csr_matrix(X), obs=obs, var=var).write_h5ad(path)
    return str(path)


def train(path: str, out: Path, **options) -> str:
    from mlpcli.config import TrainOptions
    from mlpcli.pipeline import train as fit

    opts = TrainOptions(target=["cell_type"], epochs=3, hidden=[], folds=1, no_group=True, **options)
    model_io.save(fit(path, opts).model, out)
    return str(out)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("symbols")
    # CELLxGENE's layout: Ensembl ids as var_names, symbols in feature_name (categorical), another column of names,
    # and a measurement
    var = pd.DataFrame({"feature_name": pd.Categorical(SYMBOLS), "gene_name": [f"alt{j}" for j in range(N_GENES)],
                        "length": np.arange(N_GENES) * 1.5}, index=IDS)
    sym = write_h5ad(d / "cells.h5ad", var)
    plain = write_h5ad(d / "plain.h5ad", pd.DataFrame(index=IDS))  # no symbol column
    named = write_h5ad(d / "named.h5ad", pd.DataFrame({"feature_name": [f"S{j}" for j in range(N_GENES)]}, index=IDS))
    return {"dir": d, "cells": sym, "plain": plain, "named": named,
            "model": train(sym, d / "ids.mlp"),
            "symbol_model": train(named, d / "symbols.mlp", var_names="feature_name")}


def ranking(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def test_auto_detected_feature_name_gives_a_symbol_column_in_out_and_json(files, tmp_path):
    out = tmp_path / "genes.csv"
    res = run(["explain", files["model"], files["cells"], *FAST, "-o", str(out)])
    assert res.exit_code == 0, res.output
    table = ranking(out)
    assert list(table.columns) == [*COLUMNS[:3], "symbol", *COLUMNS[3:]]  # right after feature
    expected = dict(zip(IDS, SYMBOLS))
    assert len(table) > 3
    for feature, symbol in zip(table["feature"], table["symbol"]):
        assert (None if pd.isna(symbol) else symbol) == expected[feature], feature
    res = run(["explain", files["model"], files["cells"], *FAST[:-1], "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert all(r["symbol"] == expected[r["feature"]] for r in doc["rankings"])
    assert any("var column 'feature_name'" in n and "auto-detected" in n for n in doc["notes"])


def test_an_explicit_symbols_column_is_read(files):
    res = run(["explain", files["model"], files["cells"], *FAST[:-1], "--json", "--symbols", "gene_name"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["rankings"] and all(r["symbol"] == f"alt{IDS.index(r['feature'])}" for r in doc["rankings"])
    assert any("var column 'gene_name'" in n and "--symbols" in n for n in doc["notes"])


def test_a_symbols_column_the_file_lacks_is_a_one_line_data_error(files, tmp_path):
    out = tmp_path / "genes.csv"
    res = run(["explain", files["model"], files["cells"], "--symbols", "gene_symbol", "-o", str(out)])
    assert_clean_error(res, "--symbols 'gene_symbol'", "no such var column", "'feature_name'", code=1)
    assert not out.exists()
    # a measurement is no symbol
    assert_clean_error(run(["explain", files["model"], files["cells"], "--symbols", "length"]), "'length'",
                       "not gene symbols", code=1)
    # a table whose columns are the features has no var table: a usage error, as --var-names is
    table = tmp_path / "cells.csv"
    adata = anndata.read_h5ad(files["cells"])
    adata.to_df().assign(cell_type=adata.obs["cell_type"].to_numpy()).to_csv(table, index_label="sample_id")
    assert_clean_error(run(["explain", files["model"], str(table), "--symbols", "feature_name"]), "--symbols",
                       ".h5ad", code=2)


def test_no_symbol_column_leaves_the_ranking_as_it_was(files, tmp_path):
    """A file without a symbol column, and --symbols none, give the ranking without a symbol column: the one the file
    with symbols gives, less that column."""
    with_symbols, plain, none = tmp_path / "s.csv", tmp_path / "p.csv", tmp_path / "n.csv"
    for path, source, extra in ((with_symbols, files["cells"], []), (plain, files["plain"], []),
                                (none, files["cells"], ["--symbols", "none"])):
        res = run(["explain", files["model"], source, *FAST, "-o", str(path), *extra])
        assert res.exit_code == 0, res.output
    assert "symbol" in ranking(with_symbols).columns
    expected = ranking(with_symbols).drop(columns=["symbol"])
    for path in (plain, none):
        assert list(ranking(path).columns) == COLUMNS
        pd.testing.assert_frame_equal(ranking(path), expected)
    res = run(["explain", files["model"], files["plain"], *FAST[:-1], "--json"])
    assert all("symbol" not in r for r in json.loads(res.stdout)["rankings"])
    assert not any("symbols" in n for n in json.loads(res.stdout)["notes"])


def test_a_missing_symbol_shows_the_id_alone(files):
    """Gene 0's symbol is NaN: null in --json, an empty cell in the terminal table, its id alone in the plot; the two
    ids sharing a symbol stay two rows."""
    from mlpcli.data.symbols import label
    from mlpcli.explain import feature_symbols

    model = model_io.load(files["model"])
    symbols = feature_symbols(model, files["cells"])
    assert symbols.column == "feature_name" and IDS[0] not in symbols.symbols
    assert symbols.of(IDS[3]) == symbols.of(IDS[4]) == "NKG7"
    assert label(IDS[0], None) == IDS[0] and label(IDS[0], float("nan")) == IDS[0]
    assert label(IDS[1], "CD3E") == f"CD3E ({IDS[1]})"
    res = run(["explain", files["model"], files["cells"], *FAST[:-1], "--json", "--class", "T"])
    rows = {r["feature"]: r for r in json.loads(res.stdout)["rankings"]}
    assert IDS[0] in rows and rows[IDS[0]]["symbol"] is None  # T's own marker, ranked
    res = run(["explain", files["model"], files["cells"], *FAST, "--class", "T"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    header = next(line for line in res.output.splitlines() if "feature" in line)
    assert "symbol" in header
    line = next(line for line in res.output.splitlines() if IDS[0] in line)
    cells_ = [c.strip() for c in line.split("│")]
    assert cells_[cells_.index(IDS[0]) + 1] == ""  # the symbol's cell: empty
    assert any(c == "CD3E" for line in res.output.splitlines() for c in map(str.strip, line.split("│")))


def test_nothing_is_added_where_the_features_are_the_symbols(files, tmp_path):
    """A model trained with --var-names feature_name names its genes by symbol: nothing beside them."""
    from mlpcli.explain import feature_symbols

    model = model_io.load(files["symbol_model"])
    assert feature_symbols(model, files["named"]) is None
    out = tmp_path / "genes.csv"
    res = run(["explain", files["symbol_model"], files["named"], *FAST, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert list(ranking(out).columns) == COLUMNS and ranking(out)["feature"].str.startswith("S").all()


def test_a_10x_directory_gives_the_symbols_of_its_features_tsv(files, tmp_path):
    from mlpcli.explain import feature_symbols

    X, _ = cells()
    symbols = [f"GENE{j}" for j in range(N_GENES)]
    write_cellranger(tmp_path / "run", X.astype(np.int64), ids=IDS, symbols=symbols)
    found = feature_symbols(model_io.load(files["model"]), str(tmp_path / "run"))
    assert found.column == "gene_symbols" and found.symbols == dict(zip(IDS, symbols))
