"""Out-of-distribution flags: p-values valid with the class-relative part and in the far tail, calibration that
counts patients rather than rows, the floor below which a model cannot flag (n/a, not 0), and the warning when a
cohort has far more flagged samples than chance."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io, ood
from mlpcli.ood import OODBasis
from mlpcli.predict.columns import RoleFlags
from mlpcli.predict.prepared import prepare
from mlpcli.predict.trust import beyond_chance, held_out_trust
from cli_helpers import assert_clean_error, run
from tables import make_table


def _basis(parts: np.ndarray) -> OODBasis:
    """A class-relative OOD basis whose held-out values of the two parts are ``parts`` (m, 2)."""
    basis = OODBasis(mean=np.zeros(1), components=np.zeros((1, 1)), reference=np.zeros((0, 1)),
                     reference_residual=np.zeros(0), calibration=np.zeros(0),
                     reference_label=np.zeros(0, dtype=np.int64), class_scale=np.ones(1))
    basis.part_calibration = np.sort(parts, axis=0)
    basis.calibration = np.sort(basis.combine(parts))
    return basis


def test_ood_p_values_with_the_class_relative_part_are_valid():
    """The two-part score put a sample beyond every held-out row by either part at p = 1 / (m + 1), which
    about 2 / (m + 1) of in-distribution samples reached (m = 19: 10 % at p <= 0.05); P(p <= a) <= a now."""
    rng = np.random.default_rng(0)
    m, reps = 19, 2000
    p = np.empty(reps)
    for i in range(reps):
        rows = np.abs(rng.normal(size=(m + 1, 2)))
        basis = _basis(rows[:m])
        p[i] = basis.p_value(basis.combine(rows[m:]))[0]
    for a in (0.05, 0.1, 0.2, 0.5):
        assert (p <= a + 1e-12).mean() <= a + 0.02, (a, (p <= a).mean())
    assert (p <= 0.5).mean() >= 0.45  # valid, not useless
    far = _basis(np.abs(rng.normal(size=(m, 2))))
    # well beyond every held-out row: the smallest p-value; just beyond the last one: tied with the other part's
    assert far.p_value(np.array([np.inf]))[0] == pytest.approx(1 / (m + 1))
    assert far.p_value(np.array([1.0 + 1e-9]))[0] == pytest.approx(2 / (m + 1))


def test_ood_p_values_stay_valid_in_the_far_tail():
    """The tie between a sample beyond every held-out row and the last-ranked row of the other part is broken by
    how far each lies beyond its runner-up: still P(p <= 1/(m+1)) <= 1/(m+1) on exchangeable rows."""
    rng = np.random.default_rng(1)
    m, reps = 9, 4000
    p = np.empty(reps)
    for i in range(reps):
        rows = np.abs(rng.standard_cauchy(size=(m + 1, 2)))  # heavy tails: large gaps at the top
        basis = _basis(rows[:m])
        p[i] = basis.p_value(basis.combine(rows[m:]))[0]
    for a in (0.1, 0.2, 0.3):
        assert (p <= a + 1e-12).mean() <= a + 0.015, (a, (p <= a).mean())


def test_ood_p_values_from_the_parts_are_exact_at_the_floor_and_never_above_the_bound():
    """``p_values_of`` breaks the tie of a sample beyond every held-out row by one part with the other part's own
    gap (the full-conformal p of the tie-broken score): at the floor it reaches its level, never more, and it is
    never above ``p_value``'s bound, which uses the larger gap of the two parts."""
    rng = np.random.default_rng(3)
    m, reps = 19, 4000
    exact, bound = np.empty(reps), np.empty(reps)
    for i in range(reps):
        rows = np.abs(rng.normal(size=(m + 1, 2)))
        basis = _basis(rows[:m])
        exact[i] = basis.p_values_of(rows[m:])[0]
        bound[i] = basis.p_value(basis.combine(rows[m:]))[0]
    assert (exact <= bound + 1e-12).all()
    floor = 1 / (m + 1)
    assert 0.035 <= (exact <= floor + 1e-12).mean() <= floor + 0.01  # at its level, where the bound is below it
    for a in (0.1, 0.2):
        assert (exact <= a + 1e-12).mean() <= a + 0.015


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


@pytest.mark.parametrize("cap", [None, 50])
def test_a_hold_out_models_ood_basis_is_fitted_on_the_networks_own_inputs(tmp_path, monkeypatch, cap):
    """--folds 1: the bases are fitted on the training rows as the network saw them (the preprocessed float32
    matrix, the sampled rows taken from it, not transformed a second time), and the held-out rows scored the same
    way: the model's basis is the one fitted on the preprocessor's float32 output of the sampled rows, whether the
    sample is every row or (cap) 50 of the 90."""
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection.splits import holdout
    from mlpcli.pipeline import load_dataset

    table = tmp_path / "t.csv"
    make_table(n_patients=30, per_patient=3, n_features=10).to_csv(table, index=False)
    if cap is not None:  # fewer rows than the training rows; held-out rows scored from the sample, not streamed
        monkeypatch.setattr(ood, "MAX_ROW_BYTES", 8 * 10 * cap)
        monkeypatch.setattr(ood, "STREAM_BELOW_ROWS", 0)
    res = run(["train", str(table), "-o", str(tmp_path / "m.mlp"), "--folds", "1", "--epochs", "3", "--hidden", "4",
               "-q", "--seed", "3"])
    assert res.exit_code == 0, res.output
    model = model_io.load(tmp_path / "m.mlp")
    options = TrainOptions(seed=3)
    ds, _ = load_dataset(str(table), options)
    train_rows, held_rows, _ = holdout(ds, options.val_size, options.seed)
    sample = ood.sample_rows(ds.n_samples, 10, 3)
    assert len(sample) == (ds.n_samples if cap is None else cap)
    Z = model.preprocessor.transform(ds.X[sample], dtype=np.float32, order="C")
    position = np.full(ds.n_samples, -1)
    position[sample] = np.arange(len(sample))
    parts = [(position[train_rows][position[train_rows] >= 0], position[held_rows][position[held_rows] >= 0])]
    expected = ood.calibrate(Z, parts, 3, labels=ds.y[sample], n_classes=len(ds.classes), groups=ds.groups[sample])
    for name, array in expected.arrays().items():
        assert model.ood.arrays()[name].tobytes() == array.tobytes(), name


def test_a_model_whose_ood_sample_held_out_no_row_loads_and_cannot_flag(tmp_path, monkeypatch):
    """A row cap that leaves the OOD sample without a held-out row (2 rows of 90: seed 1 draws two training rows)
    gave a basis of the distance alone, which train wrote and no command could read ("model.json field
    'ood.n_classes' is missing"). It loads now, and predict says no sample can be flagged."""
    table = tmp_path / "t.csv"
    make_table(n_patients=30, per_patient=3, n_features=10).to_csv(table, index=False)
    monkeypatch.setattr(ood, "MAX_ROW_BYTES", 8 * 10 * 2)
    monkeypatch.setattr(ood, "STREAM_BELOW_ROWS", 0)
    res = run(["train", str(table), "-o", str(tmp_path / "m.mlp"), "--folds", "1", "--epochs", "2", "--hidden", "4",
               "-q", "--seed", "1"])
    assert res.exit_code == 0, res.output
    model = model_io.load(tmp_path / "m.mlp")
    assert len(model.ood.calibration) == 0 and not model.ood.relative
    res = run(["predict", str(tmp_path / "m.mlp"), str(table), "--ood", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "n/a: none can be flagged" in " ".join(res.output.split())
    assert not pd.read_csv(tmp_path / "p.csv")["ood"].any()


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


GENES = [f"f{j:02d}" for j in range(6)]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A 3-class model of 20 patients (2 folds: conformal scores and an OOD basis of 20 held-out patients, so its
    smallest OOD p-value is 1/21), a new cohort of one sample per patient and a sheet of its labels."""
    tmp = tmp_path_factory.mktemp("predict21")
    make_table(n_patients=20, per_patient=2, n_features=6, seed=1).to_csv(tmp / "train.csv", index=False)
    new = make_table(n_patients=12, per_patient=1, n_features=6, seed=2)
    new.to_csv(tmp / "new.csv", index=False)
    new[["sample_id", "label"]].assign(site="X").to_csv(tmp / "sheet.csv", index=False)
    new[["sample_id", "patient_id", "batch"]].to_csv(tmp / "obs_sheet.csv", index=False)
    model = tmp / "m.mlp"
    res = run(["train", str(tmp / "train.csv"), "--epochs", "3", "--folds", "2", "--hidden", "8", "-q", "-o",
               str(model)])
    assert res.exit_code == 0, res.output
    return {"tmp": tmp, "model": str(model), "new": str(tmp / "new.csv"), "sheet": str(tmp / "sheet.csv"),
            "obs_sheet": str(tmp / "obs_sheet.csv"), "frame": new}


def _held_out(cohort):
    m = model_io.load(cohort["model"])
    new = cohort["frame"]
    return m, new[GENES].to_numpy(), np.array([list(m.classes).index(v) for v in new["label"]])


def test_ood_rate_of_a_model_that_cannot_flag_is_undefined_not_zero(cohort):
    """At --ood-alpha 0.01 a model of 20 held-out patients cannot flag a row (smallest p-value 1/21): cv --json
    reported ood_rate 0.0 where its table says n/a, a rate that reads as "the held-out rows resemble training"."""
    m, X, y = _held_out(cohort)
    blind = held_out_trust(m, X + 5.0, y, alpha=0.01)
    assert blind["ood_floor"] == pytest.approx(1 / 21)
    assert blind["ood_rate"] is None and len(blind["notes"]) == 1
    able = held_out_trust(m, X + 5.0, y, alpha=0.2)  # above the floor: a rate, every shifted row flagged
    assert able["ood_rate"] == pytest.approx(1.0) and able["notes"] == []


def test_per_patient_coverage_of_one_sample_per_patient_is_the_coverage(cohort):
    """A test part of one sample per patient: each patient counted once is each sample counted once, so the
    per-patient figure is the coverage (it was null, and cv's per-patient column read it as missing)."""
    m, X, y = _held_out(cohort)
    one_each = held_out_trust(m, X, y, groups=cohort["frame"]["patient_id"].to_numpy())
    assert one_each["coverage"] is not None and one_each["coverage_per_group"] == one_each["coverage"]
    assert held_out_trust(m, X, y)["coverage_per_group"] is None  # no patients: no per-patient figure
    pairs = np.repeat(np.arange(len(y) // 2), 2)  # two rows per patient: rows weighted 1/2, still computed
    weighted = held_out_trust(m, X, y, groups=pairs)
    covered = [y[i] in np.flatnonzero(row) for i, row in enumerate(_sets(m, X))]
    assert weighted["coverage_per_group"] == pytest.approx(np.mean(covered))  # equal weights within the pairs


def _sets(m, X, level=0.9):
    from mlpcli.conformal import SetPredictor

    sets = SetPredictor(m.conformal, len(m.classes), len(m.members), m.output_activation(), m.temperature, level,
                        "aps")
    logits = []
    m.predict_output(X, member_logits=logits)
    return np.concatenate([sets.sets(b) for b in logits])


def test_cv_json_says_null_for_an_ood_rate_no_fold_can_give(cohort):
    res = run(["cv", str(cohort["tmp"] / "train.csv"), "--folds", "2", "--member-folds", "2", "--epochs", "2",
               "--hidden", "8", "--coverage", "0.9", "--no-baseline", "--json", "-q"])
    assert res.exit_code == 0, res.output
    folds = json.loads(res.stdout)["per_fold"]
    # each fold model holds out at most 10 patients: its smallest p-value is above 0.01
    assert all(f["trust"]["ood_floor"] >= 0.01 and f["trust"]["ood_rate"] is None for f in folds), folds


def test_a_target_column_in_both_the_data_and_the_sheet_does_not_stop_predict(cohort):
    """predict never reads the target, so a sheet with the data's own label column is no clash (it was an error:
    "its role could come from either"); evaluate, which reads it, still asks which copy is meant."""
    out = cohort["tmp"] / "p.csv"
    res = run(["predict", cohort["model"], cohort["new"], "--samples", cohort["sheet"], "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out)) == 12
    prepared = prepare(model_io.load(cohort["model"]), cohort["new"], roles=RoleFlags(samples=cohort["sheet"]))
    assert prepared.X.shape == (12, 6) and prepared.y is None
    assert_clean_error(run(["evaluate", cohort["model"], cohort["new"], "--samples", cohort["sheet"]]),
                       "'label'", "--samples")


def test_a_defaulted_group_column_in_both_files_is_the_tables(cohort):
    """A sheet repeating the table's patient and batch columns (as one exported from an .h5ad file's .obs does):
    the model's default group and batch stopped predict and evaluate ("its role could come from either") though no
    option named them; the table's copy is used, as the join's note says. Named by an option, it is still an
    error: which copy is meant?"""
    res = run(["predict", cohort["model"], cohort["new"], "--samples", cohort["obs_sheet"], "--json",
               "-o", str(cohort["tmp"] / "g.csv")])
    assert res.exit_code == 0, res.output
    assert any("'batch', 'patient_id' are also columns" in n or "'patient_id', 'batch' are also columns" in n
               for n in json.loads(res.stdout)["notes"]), res.stdout
    assert run(["evaluate", cohort["model"], cohort["new"], "--samples", cohort["obs_sheet"], "-q"]).exit_code == 0
    prepared = prepare(model_io.load(cohort["model"]), cohort["new"], roles=RoleFlags(samples=cohort["obs_sheet"]),
                       labels=True)
    assert list(prepared.groups) == list(cohort["frame"]["patient_id"])
    res = run(["predict", cohort["model"], cohort["new"], "--samples", cohort["obs_sheet"], "--group", "patient_id"])
    assert_clean_error(res, "'patient_id' is in both", "--samples")


def test_h5ad_output_of_a_table_names_the_input(cohort):
    out = cohort["tmp"] / "p.h5ad"
    res = run(["predict", cohort["model"], cohort["new"], "-o", str(out)])
    assert_clean_error(res, f"-o {out}", f"DATA {cohort['new']} is not an .h5ad file", code=2)
    assert not out.exists()


def test_predict_summary_says_n_a_when_no_sample_can_be_flagged(cohort):
    """--ood at 0.01 with a model of 20 held-out patients: the summary read "0 flagged (p < 0.01)", as if every
    sample were like the training ones; it says none can be flagged, and --json says so too."""
    res = run(["predict", cohort["model"], cohort["new"], "--ood", "-o", str(cohort["tmp"] / "o.csv"), "-q"])
    assert res.exit_code == 0, res.output
    assert "n/a: none can be flagged at p < 0.01" in res.output and "0 flagged" not in res.output
    res = run(["predict", cohort["model"], cohort["new"], "--ood-alpha", "0.2", "-o", str(cohort["tmp"] / "o.csv"),
               "--json"])
    trust = json.loads(res.stdout)["trust"]
    assert trust["ood_can_flag"] is True and isinstance(trust["ood_flagged"], int)
    res = run(["predict", cohort["model"], cohort["new"], "--ood", "-o", str(cohort["tmp"] / "o.csv"), "--json"])
    assert json.loads(res.stdout)["trust"]["ood_can_flag"] is False


def _wide(cohort, tmp_path, monkeypatch, name: str, *extra) -> str:
    """The cohort's model trained as if its 6 features were 60,000: a row cap of ten rows (in-process runs)."""
    from mlpcli import ood

    monkeypatch.setattr(ood, "MAX_ROW_BYTES", 8 * 6 * 10)
    path = tmp_path / name
    train = run(["train", str(cohort["tmp"] / "train.csv"), "--epochs", "3", "--hidden", "8", "-q", "-o", str(path),
                 *extra])
    assert train.exit_code == 0, train.output
    return str(path)


def test_wide_rows_calibrate_on_every_held_out_row(cohort, tmp_path, monkeypatch):
    """60,000 genes: the row cap kept 209 of 1,500 rows and the calibration the 39 held-out ones among them (37 of
    100 patients), so nothing could be flagged at 0.01. The held-out rows are now scored from the table, every
    one; the bases are still fitted on the capped sample."""
    for extra, held in ((["--folds", "2"], 20), (["--folds", "1"], 4)):  # 20 patients; a fifth of them held out
        model = model_io.load(_wide(cohort, tmp_path, monkeypatch, "w.mlp", *extra))
        assert model.ood.streamed and model.ood.weighted
        assert len(model.ood.calibration) == held, (extra, len(model.ood.calibration))
        assert len(model.ood.reference) <= 10  # the sample's training rows
    plain = model_io.load(cohort["model"])
    assert not plain.ood.streamed


def test_the_warning_gives_the_remedy_that_helps(cohort, tmp_path, monkeypatch):
    """A model with too few held-out patients is told to train with more; one whose calibration rows were cut by
    their width (an earlier version's 60,000-gene model: 209 of 1,500 training rows, 37 of 100 held-out patients)
    was told the same, which cannot help."""
    res = run(["predict", cohort["model"], cohort["new"], "--ood", "-o", str(tmp_path / "o.csv")])
    text = " ".join(res.output.split())
    assert "or train with more held-out patients" in text and "memory cap" not in text
    wide = _wide(cohort, tmp_path, monkeypatch, "wide.mlp", "--folds", "2")  # streamed: all held-out patients
    res = run(["predict", wide, cohort["new"], "--ood", "-o", str(tmp_path / "w.csv")])
    assert "memory cap" not in res.output and "train with more held-out patients" in " ".join(res.output.split())

    def unstreamed(meta: dict) -> None:  # as an earlier version wrote it
        meta["ood"].pop("streamed")
    from model_files import rewrite_model

    old = rewrite_model(wide, tmp_path / "old.mlp", unstreamed, lambda a: a)
    res = run(["predict", old, cohort["new"], "--ood", "-o", str(tmp_path / "w.csv")])
    text = " ".join(res.output.split())
    assert ("at 6 features the out-of-distribution check keeps 10 of the 40 training rows (a memory cap on its rows), "
            "so more patients do not help: train on fewer features (--top-var)") in text, text


def test_evaluate_says_n_a_when_no_sample_can_be_flagged(cohort):
    """evaluate --ood with a model whose smallest p-value is 1/21 at alpha 0.01: the table and JSON said "flagged 0"
    and rate 0.0 per class; the rate is undefined (null, n/a), and at alpha 0.2 it is a number again."""
    res = run(["evaluate", cohort["model"], cohort["new"], "--ood", "--json"])
    assert res.exit_code == 0, res.output
    ood = json.loads(res.stdout)["trust"]["ood"]
    assert ood["can_flag"] is False and ood["rate"] is None
    assert all(row["rate"] is None for row in ood["per_class"])
    text = run(["evaluate", cohort["model"], cohort["new"], "--ood"])
    assert text.exit_code == 0, text.output
    assert "out-of-distribution: n/a (p < 0.01): none can be flagged" in " ".join(text.output.split())
    res = run(["evaluate", cohort["model"], cohort["new"], "--ood-alpha", "0.2", "--json"])
    ood = json.loads(res.stdout)["trust"]["ood"]
    assert ood["can_flag"] is True and isinstance(ood["rate"], float)


# ── predict and evaluate: far more flagged than chance ───────────────────────────────────────────────────


def test_beyond_chance():
    assert not beyond_chance(0, 100, 0.01)
    assert not beyond_chance(3, 100, 0.01)  # 3 % of 100: within what chance gives
    assert not beyond_chance(2, 10, 0.01)  # 20 % of 10: too few to tell
    assert beyond_chance(50, 168, 0.01)
    assert beyond_chance(10, 10, 0.01)
    assert not beyond_chance(40, 1000, 0.05)  # below alpha


def test_predict_warns_when_far_more_samples_are_flagged_than_chance_and_names_the_batch(site_model):
    res = run(["predict", str(site_model / "m.mlp"), str(site_model / "shifted.csv"), "--ood", "--coverage", "0.9",
               "-q", "-o", str(site_model / "p.csv")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stderr.split())
    assert "flagged out-of-distribution, where about 1 % of samples like the training ones would be" in text
    assert "most in batch 'S3'" in text and "prediction sets' --coverage do not hold" in text
    flagged = pd.read_csv(site_model / "p.csv")["ood"]
    assert flagged.sum() > 20


def test_no_such_warning_on_a_cohort_like_the_training_one(site_model):
    res = run(["predict", str(site_model / "m.mlp"), str(site_model / "same.csv"), "--ood", "-q",
               "-o", str(site_model / "q.csv")])
    assert res.exit_code == 0, res.output
    assert "flagged out-of-distribution, where" not in res.stderr


def test_evaluate_gives_the_same_warning(site_model):
    res = run(["evaluate", str(site_model / "m.mlp"), str(site_model / "shifted.csv"), "--ood", "-q"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stderr.split())
    assert "flagged out-of-distribution, where about 1 %" in text and "most in batch 'S3'" in text


def test_a_new_site_is_told_the_sets_coverage_does_not_hold_there(site_model):
    res = run(["predict", str(site_model / "m.mlp"), str(site_model / "new_site.csv"), "--coverage", "0.9", "-q",
               "-o", str(site_model / "n.csv")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stderr.split())
    assert "batch 'S9' (180 samples) not seen in training" in text
    assert "--coverage holds for samples exchangeable with the training ones" in text
    plain = run(["predict", str(site_model / "m.mlp"), str(site_model / "new_site.csv"), "-q",
                 "-o", str(site_model / "n2.csv")])
    assert "not seen in training" in plain.stderr and "exchangeable" not in plain.stderr  # no sets, no such words


def test_evaluate_by_gives_each_groups_coverage_per_patient_and_notes_a_constant_column(site_model):
    res = run(["evaluate", str(site_model / "m.mlp"), str(site_model / "shifted.csv"), "--coverage", "0.9", "--by",
               "batch", "--json"])
    assert res.exit_code == 0, res.output
    sets = json.loads(res.stdout)["trust"]["sets"]
    for row in sets["by"] + sets["per_class"]:
        assert row["n_groups"] == row["n"] // 2 and 0 <= row["coverage_per_group"] <= 1
    frame = pd.read_csv(site_model / "same.csv").assign(site="one")
    frame.to_csv(site_model / "one_site.csv", index=False)
    res = run(["evaluate", str(site_model / "m.mlp"), str(site_model / "one_site.csv"), "--by", "site"])
    assert res.exit_code == 0, res.output
    assert "every scored row has the same value ('one')" in " ".join(res.stderr.split())


def test_a_hold_outs_basis_is_the_same_with_half_its_range_finder_on_a_second_core(monkeypatch):
    """``calibrate`` with one (training, held-out) pair runs half of its fit's range finder (the centred copy and
    the products, by halves of rows or columns) through ``start``: the same basis, bit for bit, as without."""
    from mlpcli import background

    monkeypatch.setattr(background, "spare_core", lambda: True)
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((420, 380)).astype(np.float32)  # past the exact SVD's size: the randomised range finder
    labels = rng.integers(0, 4, 420)
    parts = [(np.arange(300), np.arange(300, 420))]
    threads: set[str] = set()

    def start(fn, *args):
        def record(*a):
            import threading

            threads.add(threading.current_thread().name)
            return fn(*a)
        return background.beside(record, *args)

    here = ood.calibrate(Z, parts, 5, labels=labels, n_classes=4)
    beside = ood.calibrate(Z, parts, 5, labels=labels, n_classes=4, start=start)
    assert threads == {"mlpcli-beside"}
    for name in ("mean", "components", "reference", "reference_residual", "calibration", "class_scale",
                 "part_calibration"):
        np.testing.assert_array_equal(getattr(here, name), getattr(beside, name), err_msg=name)
    assert here.components.shape[0] > 1
