"""A new cohort whose genes are other identifiers or whose values are on another scale: Ensembl ids for a model of
symbols named as such, the table's own names shown, log values for a log1p model and offsets on values that
cannot be counts named in the shift warning."""

import numpy as np
import pandas as pd
import pytest

from mlpcli.predict import ShiftReport
from cli_helpers import assert_clean_error, run
from tables import make_table


N_FEATURES = 12


def counts(seed: int, n_patients: int) -> pd.DataFrame:
    """A multiclass table of count-like values (non-negative, right-skewed: the model applies log1p) under
    gene-symbol-like names GENE01, GENE02, ..."""
    table = make_table("multiclass", n_patients=n_patients, per_patient=2, n_features=N_FEATURES, seed=seed)
    features = [f"f{j:02d}" for j in range(N_FEATURES)]
    table[features] = np.round(np.exp(table[features] * 0.8 + 4.0))
    return table.rename(columns={f: f"GENE{j + 1:02d}" for j, f in enumerate(features)})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("review16_predict")
    path, model = root / "train.csv", root / "m.mlp"
    counts(1, 40).to_csv(path, index=False)
    res = run(["train", str(path), "--folds", "1", "--epochs", "3", "--hidden", "8", "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    return str(model), counts(5, 30)


GENES = [f"GENE{j + 1:02d}" for j in range(N_FEATURES)]


@pytest.mark.parametrize("rename, kind", [
    (lambda j: f"ENSG{j + 1:011d}", "Ensembl ids"),
    (lambda j: f"{j + 1001}.0", "numbers written with a decimal point"),
], ids=["ensembl-for-symbols", "ids-read-as-floats"])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_other_gene_identifiers_are_named_as_such(trained, tmp_path, rename, kind, command):
    """A cohort whose genes are Ensembl ids, for a model of symbols, was asked in general whether it was "the
    kind of table the model was trained on", its own column names never shown: the error now says that the
    identifiers differ, of which kinds, shows the table's names, and leaves no output."""
    model, cohort = trained
    data, out = tmp_path / "cohort.csv", tmp_path / "p.csv"
    cohort.rename(columns={g: rename(j) for j, g in enumerate(GENES)}).to_csv(data, index=False)
    args = [command, model, str(data)] + (["-o", str(out)] if command == "predict" else [])
    res = run(args)
    assert_clean_error(res, "gene identifiers differ", "the model's features are gene symbols", kind,
                       repr(rename(0)), "map the table's columns to the same gene identifiers")
    assert not out.exists()


def test_same_kind_of_names_shows_the_tables_columns(trained, tmp_path):
    """Names of one kind that match none of the model's (a suffix the matching rule does not drop): the
    error shows the table's names beside the model's, and does not claim the identifiers are of another kind."""
    model, cohort = trained
    data = tmp_path / "cohort.csv"
    cohort.rename(columns={g: f"{g}_x" for g in GENES}).to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "its other columns are 'GENE01_x'", "has 0 of the model's features")
    assert "gene identifiers differ" not in res.output


def test_log_values_for_a_log1p_model_are_called_another_scale(trained, tmp_path):
    """log2 values given to a model that applies log1p to counts drew the generic "batch, protocol,
    population" shift warning; every shifted gene moving down is the mark of a table already log-transformed,
    and the warning now says so. The counts themselves draw no such sentence."""
    model, cohort = trained
    logged = cohort.copy()
    logged[GENES] = np.log2(logged[GENES] + 1)
    data = tmp_path / "log.csv"
    logged.to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "cohort shift" in res.output
    assert "training SD are lower than in training" in " ".join(res.output.split())
    assert "already log-transformed" in res.output
    plain = tmp_path / "counts.csv"
    cohort.to_csv(plain, index=False)
    res = run(["predict", model, str(plain), "-o", str(tmp_path / "q.csv")])
    assert res.exit_code == 0, res.output
    assert "than in training, as when" not in res.output


def report(shift: np.ndarray, log1p: bool | None, negative: bool | None = False) -> ShiftReport:
    d = len(shift)
    return ShiftReport(features=[f"g{j}" for j in range(d)], n=40, new_mean=shift.astype(float),
                       new_sd=np.ones(d), train_mean=np.zeros(d), train_sd=np.ones(d),
                       filled=np.zeros(d, dtype=bool), log1p=log1p, negative=negative)


@pytest.mark.parametrize("shift, log1p, expected", [
    (np.full(20, -2.0), True, "already log-transformed"),
    # (a model of raw counts is shifted up by counts x2 too: the sentence names scales, not that the model learned logs)
    (np.full(20, 2.0), False, "on another scale than the training table's — raw counts or TPM where the model "
                              "learned log-transformed values, log2 where it learned natural logs, another "
                              "normalisation or library size"),
    (np.full(20, 2.0), True, "another scale, unit or normalisation"),
    (np.r_[np.full(10, 0.7), np.zeros(10)], None, "10 of the 10 features whose mean moved more than 0.5 training SD are higher"),  # mild level
    (np.r_[np.full(10, 2.0), np.full(10, -2.0)], True, None),  # a batch effect: both ways
    (np.r_[np.full(19, -2.0), np.full(1, 2.0)], True, "19 of the 20 features whose mean moved more than 1 training SD are lower"),
    (np.r_[np.full(17, -2.0), np.full(3, 2.0)], True, None),  # 85 %: not nearly all
], ids=["log-for-log1p", "counts-for-log-model", "higher-for-log1p", "mild", "both-ways", "19-of-20", "17-of-20"])
def test_shift_warning_names_a_change_of_scale_only_when_features_move_one_way(shift, log1p, expected):
    message = report(shift, log1p).message()
    assert message is not None and "shift" in message
    if expected is None:
        assert "than in training, as when" not in message
    else:
        assert expected in message


@pytest.mark.parametrize("negative", [True, None])
def test_values_that_cannot_be_counts_are_not_called_raw_counts(negative):
    """A batch offset on every gene of a table holding negative values (z-scores, log ratios) was read as "raw
    counts or TPM where the model learned log-transformed values": counts are never negative."""
    message = report(np.full(20, 2.0), False, negative=negative).message()
    assert "raw counts" not in message and "20 of the 20 features whose mean moved more than 1 training SD are higher" in message
    assert "another scale, unit or normalisation than the training table, or carries a batch offset" in message


def test_a_few_annotation_columns_are_not_called_other_identifiers(trained, tmp_path):
    """A table holding no genes, only a couple of annotation columns, is not told its genes are of another
    kind: its columns are shown, and the general question about the table stays."""
    model, cohort = trained
    data = tmp_path / "cohort.csv"
    cohort.drop(columns=GENES).assign(age=60, stage="II").to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "its other columns are 'age', 'stage'", "has 0 of the model's features")
    assert "gene identifiers differ" not in res.output


def test_the_count_of_features_moved_one_way_says_which_features_it_counts():
    """Every feature's SD x3 and a few means moved: "100 % have an SD over 2x larger ... 10 of the 10 shifted features
    are lower" read as if of the spread's features; the count is of the features past the mean test's bar."""
    d = 50
    r = ShiftReport(features=[f"g{j}" for j in range(d)], n=40, new_mean=np.r_[np.full(10, -0.7), np.zeros(d - 10)],
                    new_sd=np.full(d, 3.0), train_mean=np.zeros(d), train_sd=np.ones(d),
                    filled=np.zeros(d, dtype=bool), log1p=True, negative=False)
    message = r.message()
    assert "have an SD over 2x larger or smaller" in message
    assert "10 of the 10 features whose mean moved more than 0.5 training SD are lower" in message
