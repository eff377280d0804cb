"""A model moved to a cohort whose genes are named or laid out otherwise: the errors name what differs and the
option that reads the cohort as the model needs it (a whole-number var column of Entrez ids, a symbol column missing
some unused loci's names, a highly-variable-gene subset in .X with every gene in .raw, a genes x samples matrix
beside a sample sheet, a --drop of a column matched loosely), and a log1p model's far-shift warning says its scale."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run

anndata = pytest.importorskip("anndata")  # the test extra installs it: never skipped in CI

GENES = [f"G{i}" for i in range(30)]
FAST = ["--epochs", "5", "--folds", "2", "--hidden", "", "--seed", "0"]


def table(n: int, seed: int, genes=GENES, counts: bool = False) -> pd.DataFrame:
    """`n` samples of classes A/B/C (the first 6 genes carry the class), two per patient."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    X = rng.normal(size=(n, len(genes)))
    for c in range(3):
        X[y == c, 2 * c:2 * c + 2] += 2.5
    if counts:
        X = rng.poisson(np.exp(7 + 0.3 * X)).astype(float)
    df = pd.DataFrame(X, columns=genes)
    df.insert(0, "label", np.array(["A", "B", "C"])[y])
    df.insert(0, "patient_id", [f"P{seed}_{i // 2}" for i in range(n)])
    df.insert(0, "sample_id", [f"S{seed}_{i:04d}" for i in range(n)])
    return df


def adata(df: pd.DataFrame, var: pd.DataFrame, genes=GENES):
    obs = df.set_index("sample_id")[["patient_id", "label"]]
    return anndata.AnnData(df[genes].to_numpy(np.float32), obs=obs, var=var)


def train(tmp_path, source, *extra):
    model = tmp_path / "m.mlp"
    res = run(["train", str(source), "-o", str(model), *FAST, *extra])
    assert res.exit_code == 0, res.output
    return model


def test_entrez_ids_stored_as_integers_are_a_var_column_that_is_named(tmp_path):
    """An integer var column holding every model gene (Entrez ids as anndata stores them) was passed over: the error
    said no var column held them, and blamed Ensembl ids vs symbols."""
    entrez = [str(1000 + 7 * i) for i in range(len(GENES))]
    adata(table(120, 0), pd.DataFrame(index=entrez)).write_h5ad(tmp_path / "train.h5ad")
    model = train(tmp_path, tmp_path / "train.h5ad")
    var = pd.DataFrame({"entrez": np.array(entrez, dtype=np.int64)}, index=GENES)
    adata(table(40, 1), var).write_h5ad(tmp_path / "cohort.h5ad")
    out = tmp_path / "p.csv"
    res = run(["predict", str(model), str(tmp_path / "cohort.h5ad"), "-o", str(out)])
    assert_clean_error(res, "30 are in var column 'entrez'", "pass --var-names entrez",
                       "the model's '1000', '1007' are not among the file's var_names")
    assert not out.exists()
    res = run(["predict", str(model), str(tmp_path / "cohort.h5ad"), "--var-names", "entrez", "-o", str(out)])
    assert res.exit_code == 0, res.output
    # nowhere at all: the kinds of identifier on each side are said
    adata(table(40, 1), pd.DataFrame(index=GENES)).write_h5ad(tmp_path / "symbols.h5ad")
    res = run(["predict", str(model), str(tmp_path / "symbols.h5ad"), "-o", str(out)])
    assert_clean_error(res, "the model's features are numeric ids (Entrez?), the file's gene symbols or other names")


def test_a_symbol_column_without_names_for_unused_loci_predicts(tmp_path):
    """The error recommended --var-names symbol and then refused it for two unnamed loci the model does not read."""
    adata(table(120, 0), pd.DataFrame(index=GENES)).write_h5ad(tmp_path / "train.h5ad")
    model = train(tmp_path, tmp_path / "train.h5ad")
    cohort = table(40, 1)
    cohort["extra1"], cohort["extra2"] = 1.0, 2.0
    symbols = pd.Series(GENES + [None, None], dtype=object).to_numpy()
    ens = [f"ENSG{i:011d}" for i in range(len(GENES) + 2)]
    adata(cohort, pd.DataFrame({"symbol": symbols}, index=ens), GENES + ["extra1", "extra2"]).write_h5ad(
        tmp_path / "cohort.h5ad")
    out = tmp_path / "p.csv"
    res = run(["predict", str(model), str(tmp_path / "cohort.h5ad"), "-o", str(out)])
    assert_clean_error(res, "pass --var-names symbol")
    res = run(["predict", str(model), str(tmp_path / "cohort.h5ad"), "--var-names", "symbol", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 genes have no name in var column 'symbol'" in " ".join(res.output.split())
    reference = tmp_path / "ref.csv"
    adata(table(40, 1), pd.DataFrame(index=GENES)).write_h5ad(tmp_path / "plain.h5ad")
    assert run(["predict", str(model), str(tmp_path / "plain.h5ad"), "-o", str(reference)]).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(reference))  # the same genes, the same calls
    # training needs every gene's name
    res = run(["train", str(tmp_path / "cohort.h5ad"), "--var-names", "symbol", "-o", str(tmp_path / "x.mlp"), *FAST])
    assert_clean_error(res, "var column 'symbol' (--var-names) has 2 missing gene names")
    assert not (tmp_path / "x.mlp").exists()


def test_a_gene_subset_in_x_with_every_gene_in_raw_names_raw(tmp_path):
    adata(table(120, 0), pd.DataFrame(index=GENES)).write_h5ad(tmp_path / "train.h5ad")
    model = train(tmp_path, tmp_path / "train.h5ad")
    full = adata(table(40, 1), pd.DataFrame(index=GENES))
    full.raw = full.copy()
    full[:, GENES[:15]].copy().write_h5ad(tmp_path / "hvg.h5ad")
    out = tmp_path / "p.csv"
    res = run(["predict", str(model), str(tmp_path / "hvg.h5ad"), "-o", str(out)])
    assert_clean_error(res, "only 15 of the model's 30 features are among the genes of .X", "30 are among .raw's",
                       "pass --raw")
    assert not out.exists()
    assert run(["predict", str(model), str(tmp_path / "hvg.h5ad"), "--raw", "-o", str(out)]).exit_code == 0


def test_a_genes_by_samples_matrix_beside_a_sheet_asks_for_features_in_rows(tmp_path):
    """The header of the sheet's sample ids: the error pointed to --id, which no value fixes."""
    for name, df in (("train", table(120, 0)), ("cohort", table(40, 1))):
        df.set_index("sample_id")[GENES].T.rename_axis("gene_id").to_csv(tmp_path / f"{name}.tsv", sep="\t")
        df[["sample_id", "patient_id", "label"]].to_csv(tmp_path / f"{name}_sheet.csv", index=False)
    res = run(["train", str(tmp_path / "train.tsv"), "--samples", str(tmp_path / "train_sheet.csv"), "-o",
               str(tmp_path / "m.mlp"), *FAST])
    assert_clean_error(res, "its header holds 120 of the sample ids of --samples", "pass --features-in-rows")
    res = run(["train", str(tmp_path / "train.tsv"), "--samples", str(tmp_path / "train_sheet.csv"),
               "--features-in-rows", "-o", str(tmp_path / "m.mlp"), *FAST])
    assert res.exit_code == 0, res.output
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "cohort.tsv"), "--samples",
               str(tmp_path / "cohort_sheet.csv"), "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "its header holds 40 of the sample ids", "pass --features-in-rows")


def test_a_drop_of_a_column_matched_without_its_version_is_blamed_on_the_drop(tmp_path):
    versioned = [f"ENSG{i:011d}.{i % 4 + 1}" for i in range(len(GENES))]
    table(120, 0, versioned).to_csv(tmp_path / "train.csv", index=False)
    model = train(tmp_path, tmp_path / "train.csv")
    table(40, 1, [g.split(".")[0] for g in versioned]).to_csv(tmp_path / "cohort.csv", index=False)
    res = run(["predict", str(model), str(tmp_path / "cohort.csv"), "--drop", "ENSG00000000003", "-o",
               str(tmp_path / "p.csv")])
    assert_clean_error(res, "--drop removes 1 of the 30 features the model uses: 'ENSG00000000003.4'",
                       "leave them out of --drop")
    assert "cohort.csv lacks" not in res.output


def test_a_log1p_models_far_shift_warning_says_its_scale_and_the_values_as_written(tmp_path):
    """The means quoted were of log(1 + x) without a word: an already-logged cohort (means ~7 as written) read
    "mean 2.06 against 6.98 in training", as if its values matched the training ones."""
    table(120, 0, counts=True).to_csv(tmp_path / "train.csv", index=False)
    model = train(tmp_path, tmp_path / "train.csv", "--log1p")
    cohort = table(40, 1, counts=True)
    cohort[GENES] = np.log1p(cohort[GENES])
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    res = run(["predict", str(model), str(tmp_path / "cohort.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "of log(1 + x) of the values, the scale the model reads" in text, text
    written = [float(a) for a in re.findall(r"\(about ([0-9.e+]+) against [0-9.e+,]+ as written\)", text)]
    assert written and all(5 < w < 10 for w in written), text  # the cohort's values as its file writes them


def test_genes_left_out_for_lack_of_a_name_are_said_once(tmp_path):
    """Genes without a name in the --var-names column (or sharing one) were said left out, then listed again, by
    the names given to them, among the columns the model does not use."""
    adata(table(60, 0), pd.DataFrame(index=GENES)).write_h5ad(tmp_path / "train.h5ad")
    model = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "train.h5ad"), "-o", str(model), "--epochs", "2", "--folds", "1", "--hidden",
               "", "-q"])
    assert res.exit_code == 0, res.output
    cohort = table(20, 1)
    extra = ["x1", "x2", "x3", "x4", "x5"]
    for k, name in enumerate(extra):
        cohort[name] = float(k)
    symbols = pd.Series(GENES + [None, None, "DUP", "DUP", "x5"], dtype=object).to_numpy()
    ens = [f"ENSG{i:011d}" for i in range(len(GENES) + len(extra))]
    adata(cohort, pd.DataFrame({"symbol": symbols}, index=ens), GENES + extra).write_h5ad(tmp_path / "cohort.h5ad")
    res = run(["predict", str(model), str(tmp_path / "cohort.h5ad"), "--var-names", "symbol", "-o",
               str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "2 genes have no name in var column 'symbol'" in text
    assert "2 genes the model does not use share 1 name in" in text
    assert "no name)" not in text and "(copy 1 in" not in text  # the names given to them are the reader's own
    assert "ignored 1 column the model does not use: 'x5'" in text
