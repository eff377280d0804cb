"""Matching a model's feature names to a table (issue 16, item 1): names that differ only in letter case,
spaces or an Ensembl version suffix are matched and said so; ambiguous ones are errors; filling more
than 10 % of the features needs --max-missing; a table in the other layout is recognised; --val-data and
.h5ad inputs follow the same rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io, predict as lib
from mlpcli.config import TrainOptions
from mlpcli.data.names import match_names, name_key
from mlpcli.errors import DataError
from mlpcli.pipeline import train
from cli_helpers import FAST, assert_clean_error, run
from tables import _features, make_table

N_FEATURES = 20


def ensembl(j: int) -> str:
    return f"ENSG{10_000_000_000 + j:011d}"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small model on Ensembl-named features, and a new cohort with the model's exact names."""
    root = tmp_path_factory.mktemp("match")
    rename = {f"f{j:02d}": ensembl(j) for j in range(N_FEATURES)}
    df = make_table(task="binary", seed=1, n_features=N_FEATURES).rename(columns=rename)
    path = root / "train.csv"
    df.to_csv(path, index=False)
    fitted = train(str(path), TrainOptions(hidden=[8], epochs=20, lr=0.01, seed=0, folds=1)).model
    model_path = root / "m.mlp"
    model_io.save(fitted, model_path)
    cohort = make_table(task="binary", seed=5, n_patients=20, n_features=N_FEATURES).rename(columns=rename)
    return str(model_path), cohort


def write(df: pd.DataFrame, tmp_path: Path, name: str = "cohort.csv") -> str:
    path = tmp_path / name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return str(path)


def features_in_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The cohort as genes x samples: first column the gene names, one column per sample."""
    genes = [c for c in df.columns if c.startswith("ENSG")]
    return df.set_index("sample_id")[genes].T.rename_axis("gene").reset_index()


# ── the rule itself ──────────────────────────────────────────────────────────────────────────────────────


def test_name_key_normalises_case_spaces_and_ensembl_versions_only():
    assert name_key(" ENSG00000141510.17 ") == name_key("ensg00000141510") == "ensg00000141510"
    assert name_key("ENSMUSG00000059552.3") == "ensmusg00000059552"
    assert name_key("ENSG00000002586.20_PAR_Y") != name_key("ENSG00000002586")  # another gene, kept apart
    assert name_key("TP53.1") == "tp53.1"  # a version suffix only on Ensembl ids
    m = match_names(["TP53", "BRCA1", "EGFR"], ["tp53", "BRCA1", " egfr "], source="t")
    assert m.columns == {"BRCA1": "BRCA1", "TP53": "tp53", "EGFR": " egfr "}
    assert m.relaxed == [("TP53", "tp53"), ("EGFR", " egfr ")]
    # an exact match wins over a normalised one, and a role column is never a feature
    m = match_names(["TP53"], ["tp53", "TP53"], source="t")
    assert m.columns == {"TP53": "TP53"} and not m.relaxed
    assert match_names(["TP53"], ["tp53"], source="t", unavailable=["tp53"]).missing(["TP53"]) == ["TP53"]
    with pytest.raises(DataError, match="'tp53', 'Tp53'.*TP53"):
        match_names(["TP53"], ["tp53", "Tp53"], source="t")
    with pytest.raises(DataError, match="'tp53'.*'TP53', 'Tp53'"):
        match_names(["TP53", "Tp53"], ["tp53"], source="t")


def test_a_uniprot_header_matches_its_accession_and_is_said():
    # proteomics search engines write sp|P02768|ALBU_HUMAN where others write P02768
    assert name_key("sp|P02768|ALBU_HUMAN") == name_key("P02768") == "p02768"
    assert name_key("tr|A0A024R161|A0A024R161_HUMAN") == "a0a024r161"
    assert name_key("sp|P02768-2|ALBU_HUMAN") == "p02768-2" != name_key("P02768")  # an isoform is another protein
    assert name_key("a|b|c") == "a|b|c"
    m = match_names(["sp|P02768|ALBU_HUMAN", "sp|P01023|A2MG_HUMAN"], ["P01023", "P02768"], source="t")
    assert m.columns == {"sp|P02768|ALBU_HUMAN": "P02768", "sp|P01023|A2MG_HUMAN": "P01023"}
    assert "UniProt header" in m.note()
    with pytest.raises(DataError, match="all match the feature"):  # two forms of one protein: never a silent pick
        match_names(["P02768"], ["sp|P02768|ALBU_HUMAN", "tr|P02768|X"], source="t")


# ── predict and evaluate ─────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_lower_case_and_versioned_names_predict_as_the_exact_ones(model, tmp_path, fmt):
    model_path, cohort = model
    exact, relaxed = tmp_path / "exact.csv", tmp_path / "relaxed.csv"
    assert run(["predict", model_path, write(cohort, tmp_path, f"a.{fmt}"), "-o", str(exact), "-q"]).exit_code == 0
    renamed = {ensembl(j): (ensembl(j).lower() if j % 3 == 0 else f"{ensembl(j)}.{j + 1}" if j % 3 == 1
                            else f" {ensembl(j)} ") for j in range(N_FEATURES)}
    res = run(["predict", model_path, write(cohort.rename(columns=renamed), tmp_path, f"b.{fmt}"), "-o", str(relaxed)])
    assert res.exit_code == 0, res.output
    assert exact.read_bytes() == relaxed.read_bytes()
    assert f"{N_FEATURES} of the model's features matched apart from letter case" in res.output
    assert f"{ensembl(1)!r} ← '{ensembl(1)}.2'" in res.output and "20 of the model's 20 features found" in res.output
    # the library's prepare follows the same rule
    X, _, notes, _ = lib.prepare(model_io.load(model_path), cohort.rename(columns=renamed))
    X0, *_ = lib.prepare(model_io.load(model_path), cohort)
    np.testing.assert_array_equal(X, X0)
    assert any("matched apart from letter case" in n for n in notes)


def test_ambiguous_normalised_columns_are_an_error_naming_them(model, tmp_path):
    model_path, cohort = model
    twice = cohort.rename(columns={ensembl(3): f"{ensembl(3)}.1"})
    twice[f"{ensembl(3)}.2"] = 1.0
    out = tmp_path / "p.csv"
    res = run(["predict", model_path, write(twice, tmp_path), "-o", str(out)])
    assert_clean_error(res, f"'{ensembl(3)}.1', '{ensembl(3)}.2'", f"feature {ensembl(3)!r}")
    assert not out.exists()


def test_fill_missing_alone_never_predicts_from_no_features(model, tmp_path):
    """The issue's case: lower-case names used to give "0 of 2000 found", one class for every sample."""
    model_path, cohort = model
    foreign = cohort.rename(columns={ensembl(j): f"gene{j}" for j in range(N_FEATURES)})
    path, out = write(foreign, tmp_path), tmp_path / "p.csv"
    res = run(["predict", model_path, path, "-o", str(out)])
    # most features absent: the table is questioned, not filled (filling them all predicts the training average)
    assert_clean_error(res, "lacks 20 of the 20 features", "(100 %)", "has 0 of the model's features",
                       "the same gene identifiers")
    assert "--max-missing" not in res.output
    # none of them: filling cannot help (every sample would get the training average), whatever the limit
    for limit in ([], ["--max-missing", "1"]):
        res = run(["predict", model_path, path, "-o", str(out), "--fill-missing", "mean", *limit])
        assert_clean_error(res, "lacks 20 of the 20 features", "it has none of the model's features",
                           "every sample would get the same prediction", "the same gene identifiers")
        assert "pass --max-missing" not in res.output
        assert not out.exists()
    # within the default limit (2 of 20 = 10 %) filling works with a warning giving the share
    two = cohort.drop(columns=[ensembl(4), ensembl(9)])
    res = run(["predict", model_path, write(two, tmp_path, "two.csv"), "-o", str(out), "--fill-missing", "mean"])
    assert res.exit_code == 0, res.output
    assert "2 of the 20 features the model uses (10 %) are missing and filled" in res.output
    # beyond it, only when the user raises the limit explicitly; evaluate takes the same options
    three = cohort.drop(columns=[ensembl(4), ensembl(9), ensembl(11)])
    res = run(["evaluate", model_path, write(three, tmp_path, "three.csv"), "--fill-missing", "mean"])
    assert_clean_error(res, "lacks 3 of the 20", "(15 %)", "--max-missing 0.15")
    res = run(["evaluate", model_path, str(tmp_path / "three.csv"), "--fill-missing", "mean", "--max-missing", "0.15",
               "--json"])
    assert res.exit_code == 0, res.output
    assert any("(15 %) are missing" in w for w in json.loads(res.stdout)["warnings"])


def test_a_share_is_said_as_the_limit_it_needs(tmp_path):
    """1 of 8 features is 12.5 %: said so, where "12 %" stood beside "pass --max-missing 0.13"."""
    df = make_table("binary", n_patients=20, per_patient=2, n_features=8, seed=3)
    train, model_path = tmp_path / "t.csv", str(tmp_path / "m.mlp")
    df.to_csv(train, index=False)
    assert run(["train", str(train), "-o", model_path, "--epochs", "3", "--hidden", "", "--folds", "1",
                "-q"]).exit_code == 0
    short = tmp_path / "short.csv"
    df.drop(columns=["f00"]).to_csv(short, index=False)
    res = run(["predict", model_path, str(short), "-o", str(tmp_path / "p.csv"), "--fill-missing", "mean",
               "--max-missing", "0.12"])
    assert_clean_error(res, "(12.5 %)", "--max-missing 0.13")


def test_max_missing_needs_fill_missing_and_a_fraction(model, tmp_path):
    model_path, cohort = model
    path = write(cohort, tmp_path)
    assert_clean_error(run(["predict", model_path, path, "--max-missing", "0.2", "-o", str(tmp_path / "p.csv")]),
                       "--max-missing", "--fill-missing mean", code=2)
    assert_clean_error(run(["predict", model_path, path, "--fill-missing", "mean", "--max-missing", "1.5"]),
                       "--max-missing", code=2)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "stdin"])
def test_a_features_in_rows_table_read_the_wrong_way_is_recognised(model, tmp_path, fmt):
    model_path, cohort = model
    genes_in_rows = features_in_rows(cohort)
    out = tmp_path / "p.csv"
    if fmt == "stdin":
        res = run(["predict", model_path, "-", "-o", str(out)], input=genes_in_rows.to_csv(index=False))
    else:
        res = run(["predict", model_path, write(genes_in_rows, tmp_path, f"t.{fmt}"), "-o", str(out),
                   "--fill-missing", "mean", "--max-missing", "0.5"])
    assert_clean_error(res, "column 1 holds 20 of the model's 20 feature names", "header only 0",
                       "pass --features-in-rows")
    assert not out.exists()
    if fmt == "csv":  # and with the flag it predicts
        ok = run(["predict", model_path, str(tmp_path / "t.csv"), "--features-in-rows", "-o", str(out), "-q"])
        assert ok.exit_code == 0, ok.output


def test_features_in_rows_on_a_samples_in_rows_table_is_recognised(model, tmp_path):
    model_path, cohort = model
    res = run(["evaluate", model_path, write(cohort, tmp_path), "--features-in-rows"])
    assert_clean_error(res, "header holds 20 of the model's 20 feature names", "leave out --features-in-rows")
    # its first column a gene (measurements, read as the feature names): said as such, not as names repeated
    genes = [c for c in cohort.columns if c not in ("sample_id", "label", "patient_id", "batch")]
    first_a_gene = cohort[[genes[0], *[c for c in cohort.columns if c != genes[0]]]]
    res = run(["predict", model_path, write(first_a_gene, tmp_path, "g.csv"), "--features-in-rows"])
    assert_clean_error(res, "g.csv", "first column holds the feature names", "measurements", "leave out --features-in-rows")


# ── training: --val-data ─────────────────────────────────────────────────────────────────────────────────


def test_val_data_columns_match_by_the_same_rule(model, tmp_path):
    _, cohort = model
    rename = {f"f{j:02d}": ensembl(j) for j in range(N_FEATURES)}
    train_path = write(make_table(task="binary", seed=1, n_features=N_FEATURES).rename(columns=rename), tmp_path,
                       "train.csv")
    val = cohort.rename(columns={ensembl(j): f"{ensembl(j).lower()}.4" for j in range(N_FEATURES)})
    val["patient_id"], val["sample_id"] = "V" + val["patient_id"], "V" + val["sample_id"]
    args = ["train", train_path, "--val-data", write(val, tmp_path, "val.csv"), "--hidden", "4", "--epochs", "3",
            "--folds", "1", "-o", str(tmp_path / "m.mlp")]
    res = run(args)
    assert res.exit_code == 0, res.output
    assert "--val-data" in res.output and "20 features matched apart from letter case" in res.output
    val[f"{ensembl(2)}.9"] = 0.0  # two columns for one training feature
    val.to_csv(tmp_path / "val.csv", index=False)
    assert_clean_error(run(args), "--val-data", f"'{ensembl(2).lower()}.4', '{ensembl(2)}.9'")
    ds = data.Dataset.from_frame(cohort, data.resolve_roles(cohort.columns)[0], task="binary")
    with pytest.raises(DataError, match="lacks 1 feature"):
        data.align_features(ds, [*ds.feature_names, "ENSG99999999999"], "x")


def test_aligning_features_reorders_their_missing_value_counts_with_them():
    frame = pd.DataFrame({"label": ["a", "b", "a", "b"], "g1": [1.0, np.nan, np.nan, 4.0], "g2": [1.0, 2.0, 3.0, 4.0],
                          "g3": [np.nan, 2.0, 3.0, 4.0]})
    ds = data.Dataset.from_frame(frame, data.resolve_roles(frame.columns)[0], task="binary")
    assert ds.missing.tolist() == [2, 0, 1]
    data.align_features(ds, ["g3", "g1", "g2"], "x")
    assert ds.missing.tolist() == [1, 2, 0]  # each count still beside its column
    assert np.isnan(ds.X[:, 1]).sum() == 2


# ── .h5ad input: the same helper ─────────────────────────────────────────────────────────────────────────


def test_h5ad_gene_names_match_by_the_same_rule(tmp_path):
    anndata = pytest.importorskip("anndata")
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n, g = 120, 20
    types = rng.integers(0, 2, size=n)
    X = rng.poisson(1.0, size=(n, g)).astype(np.float32)
    X[types == 1, :4] += 5
    obs = pd.DataFrame({"cell_type": pd.Categorical(np.array(["A", "B"])[types]),
                        "donor_id": [f"D{i % 6}" for i in range(n)]}, index=[f"c{i}" for i in range(n)])
    genes = [ensembl(j) for j in range(g)]
    adata = anndata.AnnData(X=sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes))
    adata.write_h5ad(tmp_path / "cells.h5ad")
    model_path = str(tmp_path / "m.mlp")
    res = run(["train", str(tmp_path / "cells.h5ad"), "--target", "cell_type", "--hidden", "", "--epochs", "5",
               "--folds", "1", "-o", model_path, "-q"])
    assert res.exit_code == 0, res.output
    exact, relaxed = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run(["predict", model_path, str(tmp_path / "cells.h5ad"), "-o", str(exact), "-q"]).exit_code == 0
    adata.var = pd.DataFrame(index=[f"{x.lower()}.3" for x in genes])
    adata.write_h5ad(tmp_path / "versioned.h5ad")
    res = run(["predict", model_path, str(tmp_path / "versioned.h5ad"), "-o", str(relaxed)])
    assert res.exit_code == 0, res.output
    assert exact.read_bytes() == relaxed.read_bytes()
    assert "20 of the model's features matched apart from letter case" in res.output
    # a partial overlap falls under --fill-missing / --max-missing as for any table
    adata.var = pd.DataFrame(index=[x if j < 15 else f"X{j}" for j, x in enumerate(genes)])
    adata.write_h5ad(tmp_path / "partial.h5ad")
    res = run(["predict", model_path, str(tmp_path / "partial.h5ad"), "-o", str(relaxed), "--fill-missing", "mean"])
    assert_clean_error(res, "lacks 5 of the 20", "(25 %)", "--max-missing 0.25")


def test_a_human_model_matched_to_mouse_gene_symbols_by_letter_case_warns(tmp_path):
    """CD3E ← Cd3e for every gene: a note (which --quiet hides) was all a human model said of a mouse table."""
    df = make_table("multiclass", n_patients=30, seed=2)
    genes = ["CD3E", "MS4A1", "CD14", "LYZ", "NKG7", "GNLY", "CD8A", "FCGR3A", "PPBP", "IL7R", "CCR7", "S100A4"]
    human = df.rename(columns=dict(zip(_features(df), genes)))
    human.to_csv(tmp_path / "human.csv", index=False)
    assert run(["train", str(tmp_path / "human.csv"), "-o", str(tmp_path / "m.mlp"), *FAST]).exit_code == 0
    mouse = human.rename(columns={g: g.capitalize() for g in genes})
    mouse.to_csv(tmp_path / "mouse.csv", index=False)
    r = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "mouse.csv"), "-o", str(tmp_path / "p.csv"), "-q"])
    assert r.exit_code == 0, r.output
    assert "warning: 12 of the model's features (100%) matched only by letter case" in r.output
    assert "'CD3E' ← 'Cd3e'" in r.output and "map orthologues" in r.output
    # a few names in another case (a typo, a spreadsheet) stay a note
    few = human.rename(columns={"CD3E": "Cd3e"})
    few.to_csv(tmp_path / "few.csv", index=False)
    r = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "few.csv"), "-o", str(tmp_path / "p.csv")])
    assert r.exit_code == 0 and "matched only by letter case" not in r.output and "'CD3E' ← 'Cd3e'" in r.output


def test_a_validation_table_warns_as_predict_does_of_names_matched_loosely(tmp_path):
    """--val-data chooses the epoch and fits the temperature: a mouse table, or a column spelt like a feature it has
    exactly, got a note at most where predict warns."""
    df = make_table("multiclass", n_patients=30, seed=2)
    genes = ["CD3E", "MS4A1", "CD14", "LYZ", "NKG7", "GNLY", "CD8A", "FCGR3A", "PPBP", "IL7R", "CCR7", "S100A4"]
    human = df.rename(columns=dict(zip(_features(df), genes)))
    human.to_csv(tmp_path / "human.csv", index=False)
    val = make_table("multiclass", n_patients=10, seed=3).rename(columns=dict(zip(_features(df), genes)))
    val["patient_id"] = "V" + val["patient_id"].astype(str)  # other patients than training's
    mouse = val.rename(columns={g: g.capitalize() for g in genes})
    mouse.to_csv(tmp_path / "mouse.csv", index=False)
    args = ["train", str(tmp_path / "human.csv"), "-o", str(tmp_path / "m.mlp"), *FAST]
    r = run([*args, "--val-data", str(tmp_path / "mouse.csv")])
    assert r.exit_code == 0, r.output
    assert "warning: --val-data " in r.output and "12 of the training table's features (100%) matched only by letter " \
        "case" in r.output
    val.assign(Cd3e=1.0).to_csv(tmp_path / "twin.csv", index=False)
    r = run([*args, "--val-data", str(tmp_path / "twin.csv")])
    assert r.exit_code == 0, r.output
    assert "1 column spelt like a feature it also has exactly ('Cd3e' beside 'CD3E')" in r.output


# ── gene symbols a spreadsheet turned into dates ─────────────────────────────────────────────────────────


def test_symbols_turned_into_dates_are_named_beside_the_missing_genes(tmp_path):
    """A cohort opened in Excel lost SEPT1, MARCH1 and OCT4 to '1-Sep', '1-Mar' and '4-Oct': the error asked to
    add the genes (and --fill-missing mean filled them) without a word about the date columns beside them."""
    rng = np.random.default_rng(4)
    genes = ["SEPT1", "MARCH1", "OCT4"] + [f"G{j}" for j in range(27)]
    X = rng.normal(size=(100, 30))
    frame = pd.DataFrame(X, columns=genes)
    frame.insert(0, "label", np.where(X[:, 0] - X[:, 2] > 0, "a", "b"))
    frame.to_csv(tmp_path / "train.csv", index=False)
    res = run(["train", str(tmp_path / "train.csv"), "--folds", "1", "--no-group", "--hidden", "4", "--epochs", "3",
               "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    frame.drop(columns="label").rename(columns={"SEPT1": "1-Sep", "MARCH1": "Mar-01", "OCT4": "2024-10-04"}).to_csv(
        tmp_path / "excel.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "excel.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 1
    assert ("the table has '1-Sep' for 'SEPT1', 'Mar-01' for 'MARCH1', '2024-10-04' for 'OCT4': gene symbols a "
            "spreadsheet program turned into dates") in res.output
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "excel.csv"), "-o", str(tmp_path / "p.csv"),
               "--fill-missing", "mean", "--max-missing", "0.2"])
    assert res.exit_code == 0 and "'1-Sep' for 'SEPT1'" in res.output
    # dates that match no missing symbol are not taken for one
    frame.drop(columns="label").rename(columns={"G0": "1-Sep"}).to_csv(tmp_path / "dates.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "dates.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 1 and "turned into dates" not in res.output


def test_drop_of_a_model_feature_is_said_as_the_options_doing(model, tmp_path):
    """`--drop G` of a feature the model uses was "the table lacks 1 of the 20 features ...; add them": the table
    has it, the option took it out."""
    model_path, cohort = model
    feature = ensembl(3)
    res = run(["predict", model_path, write(cohort, tmp_path), "--drop", feature, "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, f"--drop removes 1 of the {N_FEATURES} features the model uses: {feature!r}",
                       "leave them out of --drop, or pass --fill-missing mean")
    assert "add them" not in res.output and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("flag", ["--group", "--id", "--batch"])
def test_the_target_given_another_role_names_the_option(model, tmp_path, command, flag):
    """"column 'label' is both the target and another role or a feature" (exit 1) named neither; train says which
    option, exit 2."""
    model_path, cohort = model
    out = str(tmp_path / ("out.csv" if command == "predict" else "out.json"))
    res = run([command, model_path, write(cohort, tmp_path), flag, "label", "-o", out])
    assert_clean_error(res, f"column 'label' is given two roles (the target and {flag})", code=2)
