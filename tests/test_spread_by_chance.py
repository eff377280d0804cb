"""The shift check's spread test allows for what chance does to a feature's SD: a heavy-tailed feature's SD rests on a
few extreme values, and a feature at one value but for a few percent of rows on whether a sample holds one. Random
fifths of real tables (the same population) read "cohort shift" on 15 % of pd_speech's voice features and 20 % of a
hepatic-injury table's assays; each feature's kurtosis in training (model format 17) now sets how far its SD ratio may
move by chance. A cohort truly on another scale is still a shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cli_helpers import run
from mlpcli import model_io
from mlpcli.data import PreprocessConfig, Preprocessor
from mlpcli.predict.shift import shift_report


def _population(n: int, seed: int) -> pd.DataFrame:
    """n samples of 60 features: 20 normal, 20 heavy-tailed (Student t, 1.5 degrees of freedom), 20 at 4 but for a
    rare departure to 0 (3 % of rows, a detection limit's fill); the label follows the normal ones."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(n, 20))
    heavy = rng.standard_t(1.5, size=(n, 20))
    rare = np.where(rng.random((n, 20)) < 0.03, 0.0, 4.0)
    frame = pd.DataFrame(np.hstack([normal, heavy, rare]), columns=[f"g{j}" for j in range(60)])
    frame.insert(0, "label", np.where(normal[:, 0] + normal[:, 1] > 0, "a", "b"))
    frame.insert(0, "sample_id", [f"s{seed}_{i}" for i in range(n)])
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("spread")
    _population(400, 0).to_csv(d / "t.csv", index=False)
    model = d / "m.mlp"
    res = run(["train", str(d / "t.csv"), "--no-group", "--folds", "1", "--hidden", "none", "--epochs", "3",
               "--no-log1p", "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    return model_io.load(model), d


def test_a_model_keeps_each_features_kurtosis_before_the_clip(trained):
    model, _ = trained
    kurtosis = model.preprocessor.train_kurtosis_
    names = model.preprocessor.kept_features
    k = dict(zip(names, kurtosis))
    assert all(2 < k[f"g{j}"] < 4.5 for j in range(20))  # normal: 3
    assert all(k[f"g{j}"] > 8 for j in range(20, 40))  # t with 1.5 degrees of freedom: no finite fourth moment
    assert all(k[f"g{j}"] > 15 for j in range(40, 60) if f"g{j}" in k)  # two values, 3 % apart: ~ 1 / 0.03
    counts = sp.csr_matrix(np.abs(_population(50, 3).iloc[:, 2:22].to_numpy()))
    sparse = Preprocessor(PreprocessConfig(scaling="robust")).fit(counts, [f"g{j}" for j in range(20)])
    assert sparse.train_kurtosis_ is None  # (sparse input: the SD ratio alone, as before format 17)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_samples_of_the_training_population_draw_no_spread_shift(trained, seed):
    model, _ = trained
    cohort = _population(60, seed)
    report = shift_report(model, cohort)
    assert report.level == "none", (report.level, report.fraction_spread_shifted)
    assert report.fraction_spread_shifted <= 0.05


def test_without_the_kurtosis_the_same_samples_read_as_a_shift(trained):
    """What the test above guards against: the SD ratio alone, on the same cohorts (a model before format 17)."""
    model, _ = trained
    levels = []
    for seed in (1, 2, 3):
        report = shift_report(model, _population(60, seed))
        report.train_kurtosis = None
        levels.append((report.level, round(report.fraction_spread_shifted, 3)))
    assert sum(level == "shift" for level, _ in levels) >= 2, levels


def test_a_cohort_on_another_scale_is_still_a_shift(trained):
    model, _ = trained
    cohort = _population(60, 4)
    features = [f"g{j}" for j in range(60)]
    cohort[features] = cohort[features] * 3.0
    report = shift_report(model, cohort)
    assert report.level == "shift"
    assert report.spread_shifted[:20].mean() >= 0.9  # the normal features: their SDs tripled


def test_a_collapsed_feature_is_news_only_where_training_would_have_shown_its_spread(trained):
    model, _ = trained
    cohort = _population(60, 5)
    cohort["g0"] = 0.3  # a normal feature at one value: another assay, a fill
    cohort["g45"] = 4.0  # a rare departure's feature without one in 60 samples: 16 % chance in training
    report = shift_report(model, cohort)
    spread = dict(zip(report.features, report.spread_shifted))
    assert spread["g0"] and not spread["g45"]


def test_a_model_from_before_format_17_judges_by_the_ratio_alone(trained, tmp_path):
    from model_files import rewrite_model

    _, d = trained
    old = rewrite_model(d / "m.mlp", tmp_path / "v16.mlp", lambda m: m.update(format_version=16), lambda a: a)
    model = model_io.load(old)
    assert model.preprocessor.train_kurtosis_ is None
    assert shift_report(model, _population(60, 1)).train_kurtosis is None


def test_a_kurtosis_below_one_is_refused_on_load(trained, tmp_path):
    from model_files import rewrite_model

    _, d = trained

    def lower(arrays):
        key = next(k for k in arrays if k.endswith("preprocessor/train_kurtosis"))
        arrays[key] = np.full_like(arrays[key], 0.5)
        return arrays

    bad = rewrite_model(d / "m.mlp", tmp_path / "bad.mlp", lambda m: None, lower)
    res = run(["info", bad])
    assert res.exit_code == 1 and "train_kurtosis" in res.output


def test_only_the_models_own_preprocessing_keeps_the_checks_statistics(tmp_path):
    """The shift and far-value checks read the model's own preprocessing: five members' copies of the kurtosis and the
    reach were 15 % of the sample data's model file."""
    from model_files import model_parts

    _population(200, 7).to_csv(tmp_path / "t.csv", index=False)
    path = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "2", "--hidden", "none", "--epochs", "2",
               "--no-log1p", "-q", "-o", str(path)])
    assert res.exit_code == 0, res.output
    _, arrays = model_parts(path)
    kept = sorted(k for k in arrays if "kurtosis" in k or "reach" in k)
    assert kept == ["preprocessor/train_kurtosis", "preprocessor/train_reach_high", "preprocessor/train_reach_low"]
    model = model_io.load(path)
    assert model.preprocessor.train_kurtosis_ is not None and model.is_ensemble
