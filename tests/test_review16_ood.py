"""Out-of-distribution flags when patients contribute several samples: the held-out calibration counts patients,
not rows, so the flag rate at --ood-alpha holds for a new patient's sample (review 16)."""

import numpy as np
import pytest

from cli_helpers import run
from mlpcli import model_io, ood
from tables import make_table


def _patients(rng, n: int, p: int = 10):
    """n patients of 1-30 samples, each with its own offset (its samples correlated); the patients of more than 10
    samples tighter than the rest, as when one site biopsies some patients many times. Two classes."""
    sizes = rng.integers(1, 31, n)
    X, y, g = [], [], []
    for i, k in enumerate(sizes):
        centre = np.r_[2.0 * (i % 2), np.zeros(p - 1)] + rng.normal(0, 1.0, p)
        X.append(centre + rng.normal(0, 0.25 if k > 10 else 1.0, (k, p)))
        y += [i % 2] * k
        g += [i] * k
    return np.vstack(X), np.array(y), np.array(g)


def _grouped_parts(g: np.ndarray, k: int = 5):
    return [(np.flatnonzero(g % k != f), np.flatnonzero(g % k == f)) for f in range(k)]


@pytest.mark.parametrize("labels", [True, False], ids=["two-parts", "distance-alone"])
def test_new_patients_samples_are_flagged_at_about_alpha_when_patients_have_many_samples(labels):
    """Counting rows, the tight many-sample patients filled the calibration: 15-18 % of a new patient's samples
    were flagged at --ood-alpha 0.1 (12 % at 0.05). Each patient counted once, at most alpha."""
    rates = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        X, y, g = _patients(rng, 60)
        X_new, _, g_new = _patients(rng, 200)
        kw = {"labels": y, "n_classes": 2} if labels else {}
        basis = ood.calibrate(X, _grouped_parts(g), groups=g, **kw)
        assert len(basis.calibration) == 60 and basis.weighted  # one value per held-out patient
        flagged = basis.score_and_p(X_new)[1] < 0.1
        rates.append((np.bincount(g_new, weights=flagged) / np.bincount(g_new)).mean())  # each patient once
    assert np.mean(rates) <= 0.1


def test_the_smallest_p_value_counts_patients_not_rows():
    """20 held-out patients of 10 samples: a sample beyond all of them gets 1/21, not 1/201 (as if a patient's
    10 samples were 10 independent draws), so --ood-alpha 0.01 can flag nothing, and predict warns."""
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(20), 10)
    X = np.repeat(rng.normal(size=(20, 6)), 10, axis=0) + 0.1 * rng.normal(size=(200, 6))
    y = np.arange(200) // 10 % 2
    for kw in ({}, {"labels": y, "n_classes": 2}):
        basis = ood.calibrate(X, _grouped_parts(g, 4), groups=g, **kw)
        far = np.full((1, 6), 50.0)
        assert basis.score_and_p(far)[1][0] == pytest.approx(1 / 21)
        assert basis.p_value(np.array([np.inf]))[0] == pytest.approx(1 / 21)
        assert np.all(np.diff(basis.calibration) >= 0)
        if basis.relative:
            assert basis.part_calibration.shape == (20, 2) and np.all(np.diff(basis.part_calibration, axis=0) >= 0)


def test_one_sample_per_patient_calibrates_exactly_as_without_patients():
    """Every weight 1: the stored values are the rows' own, bit for bit (model files unchanged)."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(90, 8)), np.arange(90) % 3
    parts = _grouped_parts(np.arange(90), 3)
    for kw in ({}, {"labels": y, "n_classes": 3}):
        plain = ood.calibrate(X, parts, **kw)
        grouped = ood.calibrate(X, parts, groups=np.array([f"P{i}" for i in range(90)]), **kw)
        assert not grouped.weighted
        for name, array in plain.arrays().items():
            assert grouped.arrays()[name].tobytes() == array.tobytes(), name


def test_a_single_hold_out_weighs_its_patients_too():
    """--folds 1: the validation rows of 12 patients of 1-9 samples are 12 calibration values."""
    rng = np.random.default_rng(2)
    sizes = np.arange(1, 13) % 9 + 1
    g = np.repeat(np.arange(12), sizes)
    Z_held = rng.normal(size=(len(g), 5))
    basis = ood.calibrate(rng.normal(size=(80, 5)), [(np.arange(80), np.arange(len(g)))], Z_held=Z_held,
                          labels=np.arange(80) % 2, n_classes=2, groups=g)
    assert len(basis.calibration) == len(basis.part_calibration) == 12


def test_train_says_the_ood_calibration_counts_patients(tmp_path):
    """train's note said 'calibrated on 60 held-out rows' while the p-values count 20 patients."""
    table = tmp_path / "t.csv"
    make_table(n_patients=20, per_patient=3, n_features=6).to_csv(table, index=False)
    res = run(["train", str(table), "-o", str(tmp_path / "m.mlp"), "--folds", "2", "--epochs", "3", "--hidden", "4",
               "--no-calibrate", "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "calibrated on 60 held-out rows of 20 patients (each patient counted once)" in text
    assert len(model_io.load(tmp_path / "m.mlp").ood.calibration) == 20


def test_a_saved_model_remembers_that_its_ood_calibration_counts_patients(tmp_path):
    """The per-patient calibration was known only in memory: a loaded model's predict notes, warnings and info
    said "held-out rows" for values that count patients."""
    from cli_helpers import run
    from mlpcli import model_io
    from mlpcli.config import TrainOptions
    from mlpcli.pipeline import train
    from tables import write_table

    data = write_table(tmp_path, n_patients=20, per_patient=3)
    path = tmp_path / "m.mlp"
    model = train(data, TrainOptions(hidden=[4], epochs=2, folds=3)).model
    assert model.ood.weighted
    model_io.save(model, path)
    loaded = model_io.load(path)
    assert loaded.ood.weighted and model_io.to_bytes(loaded) == path.read_bytes()
    res = run(["predict", str(path), data, "--ood", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "held-out training patients, each counted once" in " ".join(res.output.split())
    info = " ".join(run(["info", str(path)]).output.split())
    assert "held-out patients (each counted once)" in info
