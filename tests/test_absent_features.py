"""Genes a new cohort did not measure: 0 in every sample although training rarely had them at 0.

A gene missing from a new cohort's panel or array, written as 0 when the tables were merged, reads to the
model as "not expressed". Zeroing 3 % of the sample data's genes in its test cohort left the cohort-shift
check at "none" (3 % of features shifted, a warning needs 10 %): the absent-feature test names them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlpcli import model_io
from mlpcli.config import TrainOptions
from mlpcli.data import Preprocessor, PreprocessConfig
from mlpcli.errors import ModelFileError
from mlpcli.pipeline import train
from mlpcli.predict import ShiftReport
from cli_helpers import run
from model_files import rewrite_model
from tables import make_table

N_FEATURES = 40


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("absent")
    df = make_table(n_patients=60, per_patient=3, n_features=N_FEATURES, seed=0)
    # a sparse-ish gene: 0 in about 80 % of training samples, as many single-cell genes are
    rng = np.random.default_rng(5)
    df["f39"] = np.where(rng.random(len(df)) < 0.8, 0.0, np.abs(df["f39"]))
    path = tmp / "train.csv"
    df.to_csv(path, index=False)
    model = tmp / "m.mlp"
    model_io.save(train(str(path), TrainOptions(hidden=[6], epochs=2, seed=0, folds=1)).model, model)
    new = make_table(n_patients=12, per_patient=2, n_features=N_FEATURES, seed=1)
    new["f39"] = 0.0  # 0 everywhere, as it often is in training: no surprise
    return {"model": str(model), "new": new, "tmp": tmp}


def _predict(trained, df, *args):
    path = trained["tmp"] / "new.csv"
    df.to_csv(path, index=False)
    res = run(["predict", trained["model"], str(path), "-o", str(trained["tmp"] / "p.csv"), "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_genes_at_zero_in_every_sample_are_named_and_common_zeros_are_not(trained):
    clean = _predict(trained, trained["new"])
    assert clean["shift"]["absent_checked"] and clean["shift"]["absent"] == []
    assert not any("0 in every one" in w for w in clean["warnings"])

    new = trained["new"].copy()
    new[["f05", "f17"]] = 0.0
    doc = _predict(trained, new)
    assert doc["shift"]["absent"] == ["f05", "f17"]
    assert doc["shift"]["level"] == "none"  # 2 of 40 genes: the means test alone stays silent
    [warning] = [w for w in doc["warnings"] if "0 in every one" in w]
    assert "2 of the 40 features are 0 in every one of the 12 patients" in warning
    assert "never 0 in training: f05, f17" in warning and "--fill-missing mean" in warning
    # the same verdict read a row at a time
    assert _predict(trained, new, "--chunksize", "1")["shift"]["absent"] == ["f05", "f17"]


def test_the_per_feature_report_holds_the_zero_shares(trained):
    new = trained["new"].copy()
    new["f05"] = 0.0
    report = trained["tmp"] / "shift.csv"
    _predict(trained, new, "--shift-report", str(report))
    frame = pd.read_csv(report).set_index("feature")
    assert frame.loc["f05", "absent"] and frame.loc["f05", "zero_in_every_sample"]
    assert frame.loc["f05", "train_zero_share"] == 0.0
    assert frame.loc["f39", "zero_in_every_sample"] and not frame.loc["f39", "absent"]
    assert 0.6 < frame.loc["f39", "train_zero_share"] < 0.95
    assert not frame.loc["f00", "zero_in_every_sample"]


def test_a_single_patient_at_zero_is_not_enough_evidence(trained):
    # one patient may lack a gene (a deletion): the chance a training-like patient has a never-0 gene at 0 is
    # taken as 1 / (training rows + 2), not 0
    new = trained["new"][trained["new"]["patient_id"] == trained["new"]["patient_id"].iloc[0]]
    new = pd.concat([new] * 3, ignore_index=True).assign(sample_id=lambda d: [f"R{i}" for i in range(len(d))])
    new["f05"] = 0.0
    doc = _predict(trained, new)
    assert doc["shift"]["groups"] == 1 and doc["shift"]["absent"] == []
    # the same rows as independent samples (no group column) are evidence enough
    assert _predict(trained, new, "--no-group")["shift"]["absent"] == ["f05"]


def _report(zero_share, nonzero, units, rows=100):
    d = len(zero_share)
    z = np.zeros(d)
    return ShiftReport(features=[f"g{j}" for j in range(d)], n=units, new_mean=z, new_sd=z + 1, train_mean=z,
                       train_sd=z + 1, filled=np.zeros(d, dtype=bool), nonzero=np.asarray(nonzero),
                       train_zero_share=np.asarray(zero_share, dtype=float), train_rows=rows)


def test_the_rule_weighs_the_training_zero_share_against_the_patients():
    # 10 features; flagged when ((zeros + 1) / (rows + 2)) ** units < 0.01 / 10
    r = _report([0.0, 0.5, 0.5, 0.9] + [0.0] * 6, [0, 0, 0, 0] + [3] * 6, units=5)
    assert r.absent.tolist() == [True, False, False, False] + [False] * 6  # 0.5 ** 5 = 0.03: could be chance
    r = _report([0.0, 0.5, 0.5, 0.9] + [0.0] * 6, [0, 0, 3, 0] + [30] * 6, units=30)
    assert r.absent.tolist() == [True, True, False, False] + [False] * 6  # 0.5 ** 30: not chance; 0.9 ** 30 is
    assert "2 of the 10 features are 0 in every one of the 30 samples" in r.absent_message()
    assert _report([0.0] * 3, [5, 5, 5], units=5).absent_message() is None
    # under 5 rows the shift check does not run, nor does this test
    assert not _report([0.0] * 3, [0, 0, 0], units=4).absent.any()


def test_the_training_zero_share_is_the_same_from_dense_and_sparse_rows():
    rng = np.random.default_rng(0)
    X = rng.poisson(0.7, size=(50, 8)).astype(float)
    X[:, 3] = rng.random(50) + 1.0  # never 0
    names = [f"g{j}" for j in range(8)]
    dense = Preprocessor(PreprocessConfig(log1p=True)).fit(X, names)
    sparse = Preprocessor(PreprocessConfig(log1p=True)).fit(sp.csr_matrix(X), names)
    expected = (X == 0).mean(axis=0)
    np.testing.assert_array_equal(dense.train_zero_share_, expected)
    np.testing.assert_array_equal(sparse.train_zero_share_, expected)
    assert dense.train_rows_ == sparse.train_rows_ == 50
    top = Preprocessor(PreprocessConfig(log1p=True, top_var=3)).fit(X, names)
    np.testing.assert_array_equal(top.train_zero_share_, expected[top.kept_index_])
    # missing values are not zeros
    X[:10, 0] = np.nan
    imputed = Preprocessor(PreprocessConfig(impute="median")).fit(X, names)
    assert imputed.train_zero_share_[0] == (X[10:, 0] == 0).sum() / 50


@pytest.mark.parametrize("log1p", [True, False])
def test_zero_shares_of_blocks_without_a_zero_and_with_a_few(monkeypatch, log1p):
    from mlpcli.data import blocks

    monkeypatch.setattr(blocks, "BLOCK_VALUES", 40 * 4)  # blocks of 4 columns of the 40 rows
    rng = np.random.default_rng(3)
    X = rng.lognormal(0, 1, size=(40, 12))  # no zero: every block's minima above 0
    X[5, 6] = 0.0  # one zero in the second block
    X[7, 9], X[8, 9] = -0.0, 0.0  # a negative zero is a zero too
    X[9, 11] = 5e-324  # the smallest value above 0 is no zero, logged or not
    names = [f"g{j}" for j in range(12)]
    pre = Preprocessor(PreprocessConfig(log1p=log1p)).fit(X, names)
    np.testing.assert_array_equal(pre.train_zero_share_, (X == 0).mean(axis=0))
    assert pre.train_zero_share_[6] == 1 / 40 and pre.train_zero_share_[9] == 2 / 40
    assert pre.train_zero_share_[:4].sum() == pre.train_zero_share_[11] == 0


def test_a_model_file_without_the_zero_shares_still_predicts_without_the_test(trained):
    old = rewrite_model(trained["model"], trained["tmp"] / "old.mlp",
                        lambda m: (m.update(format_version=4), m["preprocessing"].pop("train_rows")),
                        lambda a: {k: v for k, v in a.items() if not k.endswith("train_zero_share")})
    new = trained["new"].copy()
    new["f05"] = 0.0
    path = trained["tmp"] / "new.csv"
    new.to_csv(path, index=False)
    res = run(["predict", old, str(path), "-o", str(trained["tmp"] / "p.csv"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["shift"]["absent_checked"] is False and doc["shift"]["absent"] == []


@pytest.mark.parametrize("meta_fn, arrays_fn, needle", [
    (lambda m: None, lambda a: {k: (v + 1.5 if k.endswith("train_zero_share") else v) for k, v in a.items()},
     "train_zero_share"),
    (lambda m: m["preprocessing"].update(train_rows=0), lambda a: a, "train_rows"),
    (lambda m: m["preprocessing"].update(train_rows=True), lambda a: a, "train_rows"),
    (lambda m: None, lambda a: {k: v for k, v in a.items() if not k.endswith("train_zero_share")}, "train_zero_share"),
], ids=["share above 1", "no rows", "rows true", "array missing"])
def test_a_malformed_zero_share_is_refused_on_load(trained, meta_fn, arrays_fn, needle):
    bad = rewrite_model(trained["model"], trained["tmp"] / "bad.mlp", meta_fn, arrays_fn)
    with pytest.raises(ModelFileError, match=needle):
        model_io.load(bad)


# ── a gene without a value in any row of a new cohort ────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def imputing(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("imputing")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(160, 20))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(20)])
    frame.insert(0, "label", np.where(X[:, 0] + X[:, 1] > 0, "a", "b"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(160)])
    frame.iloc[:120].to_csv(tmp / "train.csv", index=False)
    cohort = frame.iloc[120:].drop(columns="label")
    cohort.to_csv(tmp / "cohort.csv", index=False)
    for name, extra in (("impute", ["--impute", "median"]), ("plain", [])):
        res = run(["train", str(tmp / "train.csv"), *extra, "--folds", "1", "--no-group", "--hidden", "4",
                   "--epochs", "5", "-q", "-o", str(tmp / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    unmeasured = cohort.copy()
    unmeasured[["g0"]] = np.nan
    unmeasured.to_csv(tmp / "one_unmeasured.csv", index=False)
    unmeasured[["g1", "g2", "g3"]] = np.nan  # 4 of 20: 20 %
    unmeasured.to_csv(tmp / "four_unmeasured.csv", index=False)
    return tmp


def test_an_imputing_model_warns_of_a_gene_never_measured_and_keeps_it_out_of_the_shift_check(imputing, tmp_path):
    """A model trained with --impute filled a column without a value in any row from the training medians, exit 0
    with only a count of imputed values; the shift check then called the gene's spread x0 a shift."""
    out = tmp_path / "p.csv"
    res = run(["predict", str(imputing / "impute.mlp"), str(imputing / "one_unmeasured.csv"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 of the 20 features the model uses (5 %) has no value in any of its 40 rows: 'g0'" in res.output
    assert "imputed with their training medians in every row" in res.output
    assert "of the 19 features shifted" in res.output  # judged without it
    assert len(pd.read_csv(out)) == 40


def test_more_never_measured_genes_than_max_missing_is_an_error_until_raised(imputing, tmp_path):
    out = tmp_path / "p.csv"
    res = run(["predict", str(imputing / "impute.mlp"), str(imputing / "four_unmeasured.csv"), "-o", str(out)])
    assert res.exit_code == 1 and not out.exists()
    assert "4 of the 20 features the model uses (20 %) have no value in any of its 40 rows" in res.output
    assert "--max-missing 0.2" in res.output
    # to standard output the rows went out before the whole table was seen: the error says they are not to be used
    res = run(["predict", str(imputing / "impute.mlp"), str(imputing / "four_unmeasured.csv"), "-o", "-"])
    assert res.exit_code == 1 and res.output.strip().splitlines()[-1].startswith("Error:")
    assert "have no value in any of its 40 rows" in res.output
    assert "the predictions already written to standard output are not to be used" in res.output
    res = run(["predict", str(imputing / "impute.mlp"), str(imputing / "four_unmeasured.csv"), "-o", str(out),
               "--max-missing", "0.2"])
    assert res.exit_code == 0, res.output
    assert out.exists() and "predictions rest on the other 16" in res.output
    # a model without --impute: --max-missing still needs --fill-missing mean
    res = run(["predict", str(imputing / "plain.mlp"), str(imputing / "cohort.csv"), "--max-missing", "0.2"])
    assert res.exit_code == 2 and "pass --fill-missing mean too" in res.output


def test_explain_leaves_a_never_measured_gene_out_and_a_plain_model_says_how_to_drop_it(imputing, tmp_path):
    from mlpcli.explain.samples import load_samples
    from mlpcli.model_io import load

    samples = load_samples(load(imputing / "impute.mlp"), str(imputing / "one_unmeasured.csv"))
    assert "g0" in samples.filled and any("has no value in any of its 40 rows: 'g0'" in w for w in samples.warnings)
    res = run(["predict", str(imputing / "plain.mlp"), str(imputing / "one_unmeasured.csv"), "-o",
               str(tmp_path / "p.csv")])
    assert res.exit_code == 1 and not (tmp_path / "p.csv").exists()
    assert "'g0' has a missing value at row 1" in res.output
    assert "if the column holds no value anywhere (a gene the cohort's assay did not measure), remove it and pass " \
           "--fill-missing mean" in res.output
    # only the first rows empty, read in pieces: no word of an unmeasured gene
    cohort = pd.read_csv(imputing / "cohort.csv")
    cohort.loc[:2, "g0"] = np.nan
    cohort.to_csv(tmp_path / "first3.csv", index=False)
    res = run(["predict", str(imputing / "plain.mlp"), str(tmp_path / "first3.csv"), "-o", str(tmp_path / "p.csv"),
               "--chunksize", "10"])
    assert res.exit_code == 1 and "missing value at row 1" in res.output


def test_a_second_spelling_of_a_gene_the_table_has_exactly_is_warned_not_called_unused(imputing, tmp_path):
    """'g0.13' beside 'g0' was "ignored ... a column the model does not use"; it is another version of a gene the
    model uses, and only the exact one is read."""
    cohort = pd.read_csv(imputing / "cohort.csv")
    cohort["G1"] = cohort["g1"] * 10
    cohort.to_csv(tmp_path / "twins.csv", index=False)
    out = tmp_path / "p.csv"
    res = run(["predict", str(imputing / "plain.mlp"), str(tmp_path / "twins.csv"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 column spelt like a model feature it also has exactly: 'G1' (beside 'g1'); the exact one is used" \
        in res.output
    base = tmp_path / "base.csv"
    assert run(["predict", str(imputing / "plain.mlp"), str(imputing / "cohort.csv"), "-o", str(base)]).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(base))


def test_drop_of_a_file_column_in_the_genes_by_samples_layout_says_what_drop_names(imputing, tmp_path):
    cohort = pd.read_csv(imputing / "cohort.csv").set_index("sample_id").T
    cohort.insert(0, "symbol", [f"S{j}" for j in range(len(cohort))])
    cohort.rename_axis("gene").to_csv(tmp_path / "t.csv")
    res = run(["predict", str(imputing / "plain.mlp"), str(tmp_path / "t.csv"), "--features-in-rows", "--drop",
               "symbol", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "--drop 'symbol' names none of the file's rows" in res.output and "cut -d, -f1,3-" in res.output


def test_predict_names_an_ignored_unnamed_first_column_as_row_names(imputing, tmp_path):
    """The note read "ignored 1 column the model does not use: ''"."""
    cohort = pd.read_csv(imputing / "cohort.csv")
    cohort.index = [f"r{i}" for i in range(len(cohort))]
    cohort.to_csv(tmp_path / "named_rows.csv")
    res = run(["predict", str(imputing / "plain.mlp"), str(tmp_path / "named_rows.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "ignored 1 column the model does not use: the unnamed column 1 (row names; the ids are read from" in res.output
    assert pd.read_csv(tmp_path / "p.csv")["sample_id"].tolist() == cohort["sample_id"].tolist()


def test_samples_of_zeros_in_every_feature_are_warned_of_in_train_and_predict(tmp_path):
    """Empty droplets (0 in every gene) were trained on and then called 'T cell' at 0.89, not flagged out of
    distribution, without a word (a review); the duplicate check leaves rows of one value out on purpose."""
    from tables import make_table

    table = make_table("multiclass", n_patients=40, per_patient=2, n_features=12, seed=5)
    genes = [c for c in table.columns if c not in ("sample_id", "patient_id", "label", "batch")]
    empty = table.copy()
    empty.loc[empty.index[:4], genes] = 0.0
    empty.to_csv(tmp_path / "empty.csv", index=False)
    res = run(["train", str(tmp_path / "empty.csv"), "--folds", "2", "--epochs", "3", "--hidden", "4", "-o",
               str(tmp_path / "m.mlp"), "--json", "-q"])
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if "hold 0 in every one of the" in w]
    first = repr(str(empty["sample_id"].iloc[0]))
    assert said and said[0].startswith(f"4 samples hold 0 in every one of the {len(genes)} features ({first}"), said
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "empty.csv"), "-o", str(tmp_path / "p.csv"),
               "--json"])
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if "0 in every one of the model's" in w]
    assert said and said[0].startswith("4 samples hold 0") and "empty droplets or failed samples" in said[0], said
    # a column absent and filled (--fill-missing): the sample's own values are still all 0
    empty.drop(columns=genes[:1]).to_csv(tmp_path / "short.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "short.csv"), "--fill-missing", "mean", "-o",
               str(tmp_path / "s.csv"), "--json"])
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if "samples hold 0 in every one of the" in w]
    assert said and f"the {len(genes) - 1} of the model's features the table has" in said[0], said
    clean = table.copy()
    clean.to_csv(tmp_path / "clean.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "clean.csv"), "-o", str(tmp_path / "q.csv"),
               "--json"])
    assert not any("0 in every one" in w for w in json.loads(res.stdout)["warnings"])
