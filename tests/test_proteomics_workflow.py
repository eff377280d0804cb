"""A proteomics / metabolomics workflow's findings: missing values written as 0 (MaxQuant's proteinGroups, Perseus,
peak tables), which ``train`` and ``cv`` now warn of — a 0 among log2 intensities of 18-32 (or raw intensities of
2^18 and more) is no measurement, but it was read as one without a word, and raw intensities with 0 for missing were
left unlogged by --log1p auto —; Perseus's type row; samples without a sheet row in ``evaluate``; two messages."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from mlpcli import parallel
from mlpcli.config import TrainOptions
from mlpcli.data.missingness import zeros_as_missing_warning
from mlpcli.pipeline import load_dataset, train_dataset


def _intensities(n: int = 120, d: int = 40, seed: int = 0, raw: bool = False) -> np.ndarray:
    """(n, d) log2 intensities (or 2 ** them), 15 % of them 0 below a detection limit."""
    rng = np.random.default_rng(seed)
    X = rng.normal(24, 2, d) + rng.normal(0, 0.6, (n, d))
    X[X < rng.normal(22.5, 0.5, (n, 1))] = 0.0
    X[rng.random((n, d)) < 0.05] = 0.0
    return np.where(X > 0, 2.0 ** X, 0.0) if raw else X


def _ds(X: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(X=X, feature_names=[f"P{j:05d}" for j in range(X.shape[1])])


def test_log2_and_raw_intensities_with_zeros_for_missing_are_named():
    for raw in (False, True):
        warning = zeros_as_missing_warning(_ds(_intensities(raw=raw)))
        assert warning is not None and "0 far below their other values" in warning, warning
        assert "write them as NA" in warning and "'P00000'" in warning


def test_no_warning_for_counts_log_normalised_values_missing_values_or_signed_values():
    rng = np.random.default_rng(1)
    mu = np.exp(rng.normal(3, 2, 300))
    counts = rng.negative_binomial(5, 5 / (5 + mu), size=(200, 300)).astype(float)  # zeros beside 1, 2, 3 …
    assert zeros_as_missing_warning(_ds(counts)) is None
    lognorm = np.log1p(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) * 1e4)
    assert zeros_as_missing_warning(_ds(lognorm)) is None
    X = _intensities()
    assert zeros_as_missing_warning(_ds(np.where(X == 0, np.nan, X))) is None  # written as missing: nothing to say
    assert zeros_as_missing_warning(_ds(np.where(X == 0, 0.0, X - 24))) is None  # centred: 0 is a value among others


def test_real_zeros_of_flags_coarse_scores_and_rare_zeros_are_not_called_missing():
    """Two of the benchmark's real tables read "missing values written as 0": pd_speech's 0/1 sex column, and
    hepatic-injury's assays scored 4.0-6.2 in steps of 0.1 with 0 in 2 % of the compounds (138 of 376 features)."""
    rng = np.random.default_rng(2)
    n = 300
    flags = rng.integers(0, 2, (n, 5)).astype(float)  # 0/1 columns: a 0 beside 1s
    coarse = np.round(rng.uniform(4.0, 6.2, (n, 40)), 1)  # 23 distinct values at most, on a grid of 0.1 ...
    coarse[rng.random((n, 40)) < 0.1] = 0.0  # ... with real zeros in 10 % of the rows
    coarse[:, :20] = np.round(coarse[:, :20] * 2) / 2  # half of them on a grid of 0.5: 5 distinct values
    rare = rng.normal(24, 1, (n, 40))
    rare[rng.random((n, 40)) < 0.02] = 0.0  # zeros in 2 % of the rows: too rare to judge
    for X in (np.hstack([flags, rng.normal(10, 1, (n, 20))]), coarse[:, :20], rare):
        assert zeros_as_missing_warning(_ds(X)) is None
    X = _intensities(n=n)
    assert zeros_as_missing_warning(_ds(np.hstack([X, flags]))) is not None  # the intensities' zeros still named


def test_train_warns_of_zeros_for_missing(tmp_path):
    rng = np.random.default_rng(2)
    X = _intensities(n=60, d=24, seed=2)
    frame = pd.DataFrame(X, columns=[f"P{j:05d}" for j in range(X.shape[1])])
    frame.insert(0, "label", np.repeat(["case", "control"], 30))
    frame.insert(0, "patient_id", [f"PT{i // 2:03d}" for i in range(60)])
    frame.insert(0, "sample_id", [f"S{i}" for i in range(60)])
    rng.shuffle(frame["label"].to_numpy())
    path = tmp_path / "lfq.csv"
    frame.to_csv(path, index=False)
    options = TrainOptions(folds=2, epochs=2, hidden=[4], calibrate=False)
    ds, _ = load_dataset(str(path), options)
    outcome = train_dataset(ds, options, source=str(path), plan=parallel.Plan(n_jobs=1))
    assert any("0 far below their other values" in w for w in outcome.warnings), outcome.warnings


def test_one_unused_absent_feature_is_said_in_the_singular(tmp_path):
    """predict's note on model features absent from the table but unused by the network: "1 of the model's input
    features is absent" (it read "1 … are absent" on a proteomics cohort lacking one protein)."""
    from mlpcli import predict as lib
    from mlpcli.pipeline import train
    from tables import make_table

    df = make_table(task="binary", n_patients=12, per_patient=2, n_features=6, seed=4)
    df["flat"] = 1.0  # constant: dropped in training, unused by the network
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    model = train(str(path), TrainOptions(hidden=[4], epochs=2, folds=2)).model
    new = tmp_path / "new.csv"
    df.drop(columns=["flat", "label"]).to_csv(new, index=False)
    stream = lib.predict_stream(model, str(new))
    list(stream)
    notes = " ".join(stream.notes)
    assert "1 of the model's input features is absent but unused" in notes, notes


def test_cv_baseline_difference_that_rounds_to_zero_has_no_sign():
    """cv's "mlpcli minus it" of a mean difference of -1e-17 (folds +0.056, -0.074, +0.074, -0.074, +0.018) read
    "-0.000 ± 0.071 (better in 3 of 5, worse in 2)"."""
    from mlpcli.cli.cv import baseline_line

    folds = [SimpleNamespace(baseline=SimpleNamespace(decision="argmax")) for _ in range(5)]
    result = SimpleNamespace(metric="balanced_accuracy", folds=folds)
    linear = {"model": "logistic regression (L2, C=1)", "summary": {"balanced_accuracy": {"mean": 0.789, "sd": 0.087}},
              "difference": {"mean": -1.1e-17, "sd": 0.071, "folds": 5, "better": 3, "worse": 2}}
    line = baseline_line(linear, result)
    assert "mlpcli minus it: 0.000 ± 0.071 (better in 3 of 5, worse in 2)" in line, line
    linear["difference"]["mean"] = -0.012
    assert "mlpcli minus it: -0.012 ± 0.071" in baseline_line(linear, result)


def _perseus_rows(tmp_path) -> str:
    """A samples x proteins table with Perseus's type row under the header; one protein has no value at all, so its
    column holds the row's 'E' alone."""
    lines = ["sample_id,patient_id,label,P1,P2;Q2,P3", "#!{Type}T,T,C,E,E,E"]
    lines += [f"S{i},PT{i // 2},{'case' if i % 4 == 0 else 'control'},{20 + i % 3},{21.5 + i % 5},"
              for i in range(12)]
    path = tmp_path / "perseus.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_perseus_type_row_is_named_as_a_row_not_its_columns(tmp_path):
    """The error named 'P3' (its only value the row's 'E') as a column to --drop, where the row was to blame."""
    from mlpcli.errors import DataError

    try:
        load_dataset(_perseus_rows(tmp_path), TrainOptions(impute="min"))
    except DataError as exc:
        message = str(exc)
    else:
        raise AssertionError("no error")
    assert "holds the non-numeric value 'E' at row 1 (id '#!{Type}T')" in message, message
    assert "Perseus annotation row" in message and "must be numeric" not in message


def test_evaluate_leaves_samples_without_a_sheet_row_out_of_every_check(tmp_path):
    """evaluate --samples: samples of the table without a sheet row (QC pools, blanks) are left out, but their values
    still entered the preprocessing — a missing value in one stopped a model without --impute, and blanks made the
    cohort-shift check read "100 % of the features have an SD over 2x" on a table whose scored samples had none."""
    from mlpcli import predict as lib
    from mlpcli.pipeline import train
    from tables import make_table

    df = make_table(task="binary", n_patients=16, per_patient=2, n_features=6, seed=5)
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    model = train(str(path), TrainOptions(hidden=[4], epochs=2, folds=2)).model
    feats = [c for c in df.columns if c.startswith("f")]
    study = df.drop(columns=["label", "patient_id", "batch"])
    sheet = tmp_path / "sheet.csv"
    df[["sample_id", "patient_id", "batch", "label"]].to_csv(sheet, index=False)
    extra = pd.DataFrame({"sample_id": [f"Blank{i}" for i in range(6)] + ["QC1"]})
    for j, f in enumerate(feats):
        extra[f] = [40.0 + j] * 6 + [np.nan]  # blanks far off, a QC pool with a missing value
    with_extra = pd.concat([study.iloc[:10], extra, study.iloc[10:]], ignore_index=True)
    (tmp_path / "study.csv").write_text(study.to_csv(index=False))
    (tmp_path / "all.csv").write_text(with_extra.to_csv(index=False))
    results = [lib.evaluate(model, str(tmp_path / name), roles=lib.RoleFlags(samples=str(sheet)))
               for name in ("study.csv", "all.csv")]
    assert results[0].metrics == results[1].metrics
    assert results[0].shift.fraction_mean_shifted == results[1].shift.fraction_mean_shifted
    assert not any("cohort shift" in w for w in results[1].warnings), results[1].warnings
