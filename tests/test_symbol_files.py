"""Gene symbols from an annotation file (``--symbols FILE``, ``data.symbols.read_symbol_file``): a model trained on a
microarray table (Affymetrix probe ids), Entrez or Ensembl ids ranked and explained its genes by ids a biologist
cannot read; only an .h5ad file's var column could name them. The file: a GEO platform table (GPL….annot between
its markers, the GPL full table under its "#" lines; " /// " between a probe's symbols), a BioMart export, two
columns. ``predict --explain`` keeps its ``top_features`` ids and adds ``top_symbols``."""

from __future__ import annotations

import gzip
import json
import urllib.parse

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io

from cli_helpers import assert_clean_error, run

PROBES = ["1007_s_at", "1053_at", "117_at", "121_at", "1255_g_at", "1294_at"]
# 1007_s_at maps to two genes (GEO: "DDR1 /// MIR4640"); 1294_at has none ("---" in the full table, empty in .annot)
SYMBOLS = {"1007_s_at": "DDR1 /// MIR4640", "1053_at": "RFC2", "117_at": "HSPA6", "121_at": "PAX8",
           "1255_g_at": "GUCA1A"}
FAST = ["--steps", "4", "--bootstrap", "2", "--top", str(len(PROBES)), "-q"]


def probe_table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    """Samples x probes; the label follows the first two probes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(PROBES)))
    frame = pd.DataFrame(X, columns=PROBES)
    frame.insert(0, "sample_id", [f"GSM{1000 + i}" for i in range(n)])
    frame["label"] = np.where(X[:, 0] + X[:, 1] > 0, "tumour", "normal")
    return frame


def write_annot(path) -> str:
    """GEO's GPL….annot layout: ^ and ! lines, the table between !platform_table_begin and !platform_table_end."""
    rows = ["^Annotation", "!Annotation_date = Jun 28 2023", "!Annotation_platform = GPL570",
            "!Annotation_platform_title = [HG-U133_Plus_2] Affymetrix Human Genome U133 Plus 2.0 Array",
            "^PLATFORM = GPL570", "!platform_table_begin",
            "ID\tGene title\tGene symbol\tGene ID\tGO:Function"]
    for j, probe in enumerate(PROBES):
        rows.append(f"{probe}\t\"a\" title {j}\t{SYMBOLS.get(probe, '')}\t{780 + j}\t0001 // binding /// 0002 // x")
    rows += ["!platform_table_end", ""]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows))
    return str(path)


def write_full_table(path) -> str:
    """The GPL "full table" download: "#COLUMN = description" lines above the header, "---" for no symbol."""
    rows = ["#ID = Affymetrix Probe Set ID", "#Gene Symbol = A gene symbol, when one is available",
            "ID\tGB_ACC\tGene Title\tGene Symbol\tENTREZ_GENE_ID"]
    rows += [f"{p}\tU{j}\ttitle\t{SYMBOLS.get(p, '---')}\t{780 + j}" for j, p in enumerate(PROBES)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from mlpcli.config import TrainOptions
    from mlpcli.pipeline import train as fit

    d = tmp_path_factory.mktemp("symbol_files")
    table = d / "GSE1_probes.csv"
    probe_table().to_csv(table, index=False)
    model = d / "probes.mlp"
    opts = TrainOptions(target=["label"], epochs=3, hidden=[], folds=1, no_group=True)
    model_io.save(fit(str(table), opts).model, model)
    return {"dir": d, "table": str(table), "model": str(model), "annot": write_annot(d / "GPL570.annot.gz"),
            "full": write_full_table(d / "GPL570-55999.txt")}


def symbol_of(probe: str) -> str | None:
    return SYMBOLS.get(probe)


def read_symbol_file(path, feature_names):
    from mlpcli.data.symbols import read_symbol_file as read  # (imported here: each test fails alone without it)

    return read(path, feature_names)


@pytest.mark.parametrize("kind", ["annot", "full"])
def test_a_geo_platform_table_gives_the_probes_symbols(files, kind):
    """Both GEO layouts: the id column is ID (it holds the model's probes), the symbol column 'Gene symbol' /
    'Gene Symbol'; a probe of two genes keeps both, a probe without one ('---', empty) is left out."""
    found = read_symbol_file(files[kind], PROBES)
    assert found.id_column == "ID" and found.column in ("Gene symbol", "Gene Symbol")
    assert found.symbols == SYMBOLS and found.n_matched == len(PROBES) and not found.named_already
    assert found.source == files[kind] and not found.warnings
    assert any("'ID'" in n and "5 with a symbol" in n and "1 with several" in n for n in found.notes)


def test_a_file_holding_few_of_the_features_is_used_with_a_warning(files, tmp_path):
    """An annotation of another platform shares a few probe ids by chance (Affymetrix ids recur across arrays): its
    symbols are used, with a warning that most features are not in it, in explain and predict alike."""
    other = tmp_path / "GPL96_subset.tsv"
    other.write_text("ID\tGene Symbol\n1007_s_at\tDDR1\n1053_at\tRFC2\n200000_s_at\tPRPF8\n200001_at\tCAPNS1\n")
    found = read_symbol_file(other, PROBES)
    assert found.n_matched == 2 and found.symbols == {"1007_s_at": "DDR1", "1053_at": "RFC2"}
    assert len(found.warnings) == 1
    assert "only 2 of the model's 6 features (33%) are in its column 'ID'" in found.warnings[0]
    explained = run(["explain", files["model"], files["table"], "--symbols", str(other), *FAST])
    assert explained.exit_code == 0, explained.output
    assert "only 2 of the model's 6 features (33%)" in " ".join(explained.stderr.split())
    predicted = run(["predict", files["model"], files["table"], "--explain", "2", "--symbols", str(other), "-q",
                     "-o", str(tmp_path / "p.csv")])
    assert predicted.exit_code == 0, predicted.output
    assert "only 2 of the model's 6 features (33%)" in " ".join(predicted.stderr.split())


def test_explain_shows_a_geo_annotations_symbols_beside_the_probe_ids(files, tmp_path):
    out = tmp_path / "genes.csv"
    res = run(["explain", files["model"], files["table"], "--symbols", files["annot"], *FAST[:-1], "--json",
               "-o", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["rankings"] and all(r["symbol"] == symbol_of(r["feature"]) for r in doc["rankings"])
    ranked = {r["feature"] for r in doc["rankings"]}
    n_symbols = sum(symbol_of(f) is not None for f in ranked)
    assert any(f"gene symbols for {n_symbols} of the {len(ranked)} genes ranked" in n for n in doc["notes"])
    assert any("GPL570.annot.gz" in n and "'Gene symbol'" in n for n in doc["notes"])
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns[:4]) == ["class", "rank", "feature", "symbol"]
    assert table.loc[table["feature"] == "1007_s_at", "symbol"].iloc[0] == "DDR1 /// MIR4640"


def test_a_biomart_export_matches_versioned_ensembl_ids(tmp_path):
    """BioMart's "Gene stable ID" (no version), "Gene stable ID version" and "Gene name": the model's ids carry other
    versions (ENSG….12); matched without them, keyed by the model's names; an id of no name is left out."""
    path = tmp_path / "mart_export.txt"
    path.write_text("Gene stable ID\tGene stable ID version\tTranscript stable ID\tGene name\n"
                    "ENSG00000141510\tENSG00000141510.18\tENST00000269305\tTP53\n"
                    "ENSG00000141510\tENSG00000141510.18\tENST00000413465\tTP53\n"
                    "ENSG00000012048\tENSG00000012048.23\tENST00000357654\tBRCA1\n"
                    "ENSG00000230000\tENSG00000230000.1\tENST00000400000\t\n")
    features = ["ENSG00000141510.12", "ENSG00000012048.20", "ENSG00000230000.1", "ENSG00000999999.1"]
    found = read_symbol_file(path, features)
    assert found.column == "Gene name" and found.id_column == "Gene stable ID" and found.n_matched == 3
    assert found.symbols == {"ENSG00000141510.12": "TP53", "ENSG00000012048.20": "BRCA1"}


def test_a_plain_two_column_file_with_or_without_a_header(tmp_path):
    """Entrez ids and symbols: the other column of two is the symbols whatever its name; a file without a header
    (its first row names a feature) is read from its first row."""
    headed, bare = tmp_path / "entrez.csv", tmp_path / "entrez.tsv"
    headed.write_text("entrez,hugo\n7157,TP53\n672,BRCA1\n")
    bare.write_text("7157\tTP53\n672\tBRCA1\n")
    for path in (headed, bare):
        found = read_symbol_file(path, ["672", "7157", "1"])
        assert found.symbols == {"7157": "TP53", "672": "BRCA1"} and found.n_matched == 2, path


def test_a_file_of_the_features_own_symbols_adds_nothing(tmp_path):
    path = tmp_path / "mart.csv"
    path.write_text("Gene stable ID,Gene name\nENSG00000141510,TP53\nENSG00000012048,BRCA1\n")
    found = read_symbol_file(path, ["TP53", "BRCA1"])
    assert found.named_already and found.symbols == {} and "already" in found.notes[0]


def test_errors_name_the_file_and_what_is_wrong(files, tmp_path):
    no_match = tmp_path / "mouse.tsv"
    no_match.write_text("ID\tGene Symbol\n1415670_at\tCopg1\n1415671_at\tAtp6v0d1\n")
    assert_clean_error(run(["explain", files["model"], files["table"], "--symbols", str(no_match)]),
                       str(no_match), "no column matches the model's features", f"0 of the model's {len(PROBES)}",
                       "'1007_s_at'", "'1415670_at'", code=1)
    no_symbols = tmp_path / "ids.tsv"
    no_symbols.write_text("ID\tGB_ACC\tSPOT_ID\n1007_s_at\tU48705\t\n")
    assert_clean_error(run(["explain", files["model"], files["table"], "--symbols", str(no_symbols)]),
                       str(no_symbols), "no gene symbol column", "'ID', 'GB_ACC', 'SPOT_ID'", code=1)
    missing = tmp_path / "GPL96.annot.gz"
    res = run(["explain", files["model"], files["table"], "--symbols", str(missing)])
    assert_clean_error(res, "symbol file not found", str(missing), code=1)
    assert f"Error: --symbols {missing}: symbol file not found" in res.output  # not said of the data table
    assert_clean_error(run(["predict", files["model"], files["table"], "--explain", "2", "--symbols", str(missing)]),
                       "symbol file not found", code=1)
    binary = tmp_path / "annot.txt"
    binary.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    assert_clean_error(run(["explain", files["model"], files["table"], "--symbols", str(binary)]), str(binary),
                       "HDF5", code=1)
    # a word that is no file, with a table: a var column belongs to cell input (usage)
    assert_clean_error(run(["explain", files["model"], files["table"], "--symbols", "gene_symbol"]),
                       "--symbols gene_symbol", "no such file", ".h5ad", code=2)
    assert_clean_error(run(["predict", files["model"], files["table"], "--symbols", files["annot"]]),
                       "--symbols", "--explain K", code=2)


def _names(cell: str) -> list[str]:
    return [urllib.parse.unquote(e.rsplit(":", 1)[0] if ":" in e else e) for e in str(cell).split(";") if e]


def test_predict_explain_adds_top_symbols_to_a_streamed_table(files, tmp_path):
    """top_features keeps the probe ids (scripts join on them); top_symbols lists the same genes in the same order by
    symbol, a probe without one by its id; read in pieces of 7 rows, the rows are those of one piece; parquet and
    --json say the same columns."""
    plain, with_symbols, pieces = tmp_path / "p.csv", tmp_path / "s.csv", tmp_path / "s7.csv"
    base = ["predict", files["model"], files["table"], "--explain", "3", "-q"]
    assert run([*base, "-o", str(plain)]).exit_code == 0
    res = run([*base, "--symbols", files["full"], "-o", str(with_symbols)])
    assert res.exit_code == 0, res.output
    assert run([*base, "--symbols", files["full"], "--chunksize", "7", "-o", str(pieces)]).exit_code == 0
    p = pd.read_csv(with_symbols, keep_default_na=False)
    assert list(p.columns) == [*pd.read_csv(plain).columns, "top_symbols"]
    pd.testing.assert_frame_equal(p.drop(columns=["top_symbols"]), pd.read_csv(plain, keep_default_na=False))
    pd.testing.assert_frame_equal(p, pd.read_csv(pieces, keep_default_na=False))
    assert (p["top_features"] != "").any()
    for ids, symbols in zip(p["top_features"], p["top_symbols"]):
        assert _names(symbols) == [symbol_of(f) or f for f in _names(ids)]
    assert p["top_symbols"].str.contains("DDR1 /// MIR4640").any()
    parquet = tmp_path / "s.parquet"
    res = run([*base[:-1], "--symbols", files["full"], "-o", str(parquet), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["columns"][-2:] == ["top_features", "top_symbols"]
    assert any(n.startswith("top_symbols:") for n in doc["notes"])
    pd.testing.assert_frame_equal(pd.read_parquet(parquet)[["top_features", "top_symbols"]],
                                  p[["top_features", "top_symbols"]])


def test_an_h5ad_takes_a_symbol_file_and_its_var_column_for_predict(files, tmp_path, monkeypatch):
    """An .h5ad input whose var table has no symbols takes --symbols FILE; a var column named as a file in the
    working directory is the column (./NAME the file); predict's top_symbols comes from the var column by itself
    (auto) and lands in the copy's obs."""
    anndata = pytest.importorskip("anndata")  # the test extra installs it: never skipped in CI
    frame = probe_table(40, seed=1)
    obs = pd.DataFrame({"label": frame["label"].to_numpy()}, index=frame["sample_id"].to_numpy())
    X = frame[PROBES].to_numpy(np.float32)
    bare = tmp_path / "cells.h5ad"
    anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=PROBES)).write_h5ad(bare)
    res = run(["explain", files["model"], str(bare), "--symbols", files["annot"], *FAST[:-1], "--json"])
    assert res.exit_code == 0, res.output
    assert all(r["symbol"] == symbol_of(r["feature"]) for r in json.loads(res.stdout)["rankings"])

    named = tmp_path / "named.h5ad"
    var = pd.DataFrame({"feature_name": [f"VAR{j}" for j in range(len(PROBES))]}, index=PROBES)
    anndata.AnnData(X=X, obs=obs, var=var).write_h5ad(named)
    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{p}\tFILE{j}\n" for j, p in enumerate(PROBES))
    (tmp_path / "feature_name").write_text("ID\tGene symbol\n" + rows)
    for value, prefix in (("feature_name", "VAR"), ("./feature_name", "FILE")):
        res = run(["explain", files["model"], str(named), "--symbols", value, *FAST[:-1], "--json"])
        assert res.exit_code == 0, res.output
        assert all(r["symbol"].startswith(prefix) for r in json.loads(res.stdout)["rankings"]), value

    out = tmp_path / "predicted.h5ad"
    res = run(["predict", files["model"], str(named), "--explain", "2", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    adata = anndata.read_h5ad(out)
    index = {p: f"VAR{j}" for j, p in enumerate(PROBES)}
    for ids, symbols in zip(adata.obs["mlpcli_top_features"], adata.obs["mlpcli_top_symbols"]):
        assert _names(symbols) == [index[f] for f in _names(ids)]


def test_the_library_adds_top_symbols_from_a_file_or_a_mapping(files):
    """``predict_stream(..., explain=K, symbols=...)``: an annotation file's path as the CLI reads it, or a mapping;
    without explain a file is refused (nothing would show it)."""
    from mlpcli.errors import OptionError
    from mlpcli.predict import predict_stream

    model = model_io.load(files["model"])
    for symbols, expected in ((files["annot"], SYMBOLS), ({"1053_at": "RFC2"}, {"1053_at": "RFC2"})):
        with predict_stream(model, files["table"], explain=2, symbols=symbols, chunksize=30) as stream:
            frame = pd.concat(list(stream))
        assert stream.columns[-2:] == ["top_features", "top_symbols"]
        for ids, names in zip(frame["top_features"], frame["top_symbols"]):
            assert _names(names) == [expected.get(f, f) for f in _names(ids)]
    with pytest.raises(OptionError, match="--explain"):
        predict_stream(model, files["table"], symbols=files["annot"])


def test_the_symbols_help_names_the_var_columns_auto_looks_for_in_both_commands():
    """explain --symbols and predict --symbols say one default, from one text: it names every var column that auto
    looks for (``data.symbols.SYMBOL_COLUMNS``), so the help cannot drift from what the code does."""
    from mlpcli.data.symbols import SYMBOL_COLUMNS

    for command in (["explain"], ["predict"]):
        res = run([*command, "--help"])
        text = " ".join(res.output.split())
        assert res.exit_code == 0 and "GPL570.annot.gz" in text, text
        assert all(column in text for column in SYMBOL_COLUMNS), (command, text)
