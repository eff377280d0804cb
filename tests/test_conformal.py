"""Conformal prediction sets, abstention and out-of-distribution flags: the guarantee on synthetic exchangeable
data (fixed seeds, so the statistical checks cannot flake), and every new option and column end to end."""

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run
from model_files import rewrite_model, without_trust
from mlpcli import conformal, model_io, ood
from mlpcli.conformal import SetPredictor, label_scores, uniform_hash
from mlpcli.model_selection.splits import batch_components
from tables import make_table

LEVELS = (0.8, 0.9)


# ── the guarantee, without networks: a known model and exchangeable rows ────────────────────────────────────


def _draw(rng, n: int, k: int, sharp: float):
    """Rows whose true class probabilities are known: logits z (n, k), classes y drawn from softmax(z)."""
    z = rng.normal(scale=sharp, size=(n, k))
    P = np.exp(z - z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1)
    return z, np.minimum(y, k - 1)


def _calibration(z, y, member, groups=None):
    return conformal.calibrate(z, y, member, groups, "softmax", None, "out-of-fold")


@pytest.mark.parametrize("score", ["aps", "lac"])
@pytest.mark.parametrize("mondrian", [False, True])
def test_coverage_holds_on_exchangeable_data_over_many_seeds(score, mondrian):
    """60 fixed seeds, 400 calibration and 1,000 test rows each: the mean coverage lies within a point of
    the level (the guarantee is ≥ level, and ≤ level + 1/(n+1) without ties), no seed strays by more than
    six test-set standard deviations, and Mondrian sets cover every class."""
    for level in LEVELS:
        covered, per_class = [], {c: [] for c in range(4)}
        for seed in range(60):
            rng = np.random.default_rng(seed)
            z, y = _draw(rng, 1400, 4, sharp=1.5)
            cal = _calibration(z[:400], y[:400], np.zeros(400, dtype=int))
            sets = SetPredictor(cal, 4, 1, "softmax", None, level, score, mondrian).sets([z[400:]])
            hit = sets[np.arange(1000), y[400:]]
            covered.append(hit.mean())
            assert abs(hit.mean() - level) < 6 * np.sqrt(level * (1 - level) / 1000) + 1 / 401, (seed, hit.mean())
            if mondrian:  # per class: the calibration's and the test's sampling error of that class's rows
                for c in range(4):
                    n_cal, n_test = (y[:400] == c).sum(), (y[400:] == c).sum()
                    sd = np.sqrt(level * (1 - level)) * (1 / np.sqrt(n_cal) + 1 / np.sqrt(n_test))
                    per_class[c].append(hit[y[400:] == c].mean())
                    assert hit[y[400:] == c].mean() > level - 4 * sd, (seed, c)
        assert level - 0.01 <= np.mean(covered) <= level + 0.015, (level, np.mean(covered))
        for c, values in per_class.items() if mondrian else ():
            assert np.mean(values) >= level - 0.015, (level, c, np.mean(values))


def test_cv_plus_across_members_and_patient_weights_keep_coverage():
    """Calibration rows scored by 5 different members (each a noisy copy of the truth), the test rows'
    scores taken under each member (CV+), patients of 1-4 rows weighted to count once: coverage holds."""
    covered = []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        z, y = _draw(rng, 1600, 3, sharp=1.2)
        noise = [rng.normal(scale=0.3, size=z.shape) for _ in range(5)]
        member = rng.integers(0, 5, 600)
        groups = np.repeat(np.arange(600), rng.integers(1, 5, 600))[:600]
        member = member[groups]  # a patient's rows are held out by one member
        cal_logits = np.stack([z[i] + noise[member[i]][i] for i in range(600)])
        cal = _calibration(cal_logits, y[:600], member, groups)
        assert cal.weight.sum() == pytest.approx(len(np.unique(groups)))
        sets = SetPredictor(cal, 3, 5, "softmax", None, 0.9, "aps").sets([z[600:] + nz[600:] for nz in noise])
        covered.append(sets[np.arange(1000), y[600:]].mean())
    # the mean of 40 seeds' coverage has an SE of about 0.0015 (their SD 0.009): 0.928 with one draw of APS's u,
    # 0.930 with another; CV+ across members is a little conservative, not by more than this
    assert 0.89 <= np.mean(covered) <= 0.935, np.mean(covered)


def test_scores_keep_confident_rows_apart_and_u_is_uniform():
    P = np.array([[1 - 2e-20, 1e-20, 1e-20], [1 - 2e-30, 1e-30, 1e-30]])
    aps, lac = label_scores(P, "aps"), label_scores(P, "lac")
    assert aps[0, 0] != aps[1, 0] and lac[0, 0] != lac[1, 0]  # 1 − p would round both to 0
    assert lac[0, 0] == pytest.approx(2e-20)
    u = uniform_hash(np.random.default_rng(0).normal(size=(20000, 3)))
    assert np.all((u >= 0) & (u < 1)) and abs(u.mean() - 0.5) < 0.01
    assert np.histogram(u, 10, (0, 1))[0].min() > 1800
    np.testing.assert_array_equal(u[:5], uniform_hash(np.random.default_rng(0).normal(size=(5, 3))))


def test_a_level_beyond_the_calibration_rows_gives_every_class():
    rng = np.random.default_rng(0)
    z, y = _draw(rng, 30, 3, 1.0)
    sp = SetPredictor(_calibration(z[:9], y[:9], np.zeros(9, dtype=int)), 3, 1, "softmax", None, 0.95)
    assert sp.trivial.all() and sp.sets([z[9:]]).all()


def test_ood_p_values_are_uniform_in_distribution_and_small_outside():
    """Held-out calibration makes in-distribution p-values uniform (about α flagged at every α); samples of
    a kind the training rows lack (a fourth cluster) are flagged."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(4, 40))

    def rows(seed, n, kinds):
        r = np.random.default_rng(seed)
        return centres[r.choice(kinds, n)] + r.normal(size=(n, 40))

    train = rows(1, 600, [0, 1, 2])
    parts = [(np.setdiff1d(np.arange(600), np.arange(k, 600, 5)), np.arange(k, 600, 5)) for k in range(5)]
    basis = ood.calibrate(train, parts)
    p_in = basis.p_value(basis.score(rows(2, 3000, [0, 1, 2])))
    assert (p_in < 0.01).mean() <= 0.02 and (p_in < 0.2).mean() == pytest.approx(0.2, abs=0.06)
    assert (basis.p_value(basis.score(rows(3, 3000, [3]))) < 0.01).mean() > 0.95
    assert len(basis.calibration) == 600 and np.all(np.diff(basis.calibration) >= 0)


def _clusters(seed: int, n: int, kinds, p: int = 40):
    """Rows of three classes with very different spreads: 0 tight (SD 0.3), 1 diffuse (SD 2), 2 between."""
    centres = np.zeros((3, p))
    centres[1, 0] = centres[2, 1] = 30.0
    spread = np.array([0.3, 2.0, 1.0])
    r = np.random.default_rng(seed)
    y = r.choice(kinds, n)
    return centres[y] + spread[y][:, None] * r.normal(size=(n, p)), y


def test_the_class_relative_distance_flags_a_near_copy_of_a_tight_class():
    """A kind of sample 3 SD from a tight training class lies nearer to it than the diffuse class's rows lie to
    each other: the distance alone flags none of it, the distance relative to each class's spread nearly all,
    and in-distribution p-values stay uniform."""
    X, y = _clusters(1, 600, [0, 1, 2])
    parts = [(np.setdiff1d(np.arange(600), np.arange(k, 600, 5)), np.arange(k, 600, 5)) for k in range(5)]
    relative, distance = ood.calibrate(X, parts, labels=y, n_classes=3), ood.calibrate(X, parts)
    assert relative.relative and not distance.relative
    near = np.random.default_rng(3).normal(size=(1000, 40)) * 0.3
    near[:, 2] += 3.0
    inside = _clusters(2, 3000, [0, 1, 2])[0]
    for basis in (relative, distance):
        p_in = basis.p_value(basis.score(inside))
        assert (p_in < 0.01).mean() <= 0.02 and (p_in < 0.2).mean() == pytest.approx(0.2, abs=0.03)
    assert (relative.p_value(relative.score(near)) < 0.01).mean() > 0.95
    assert (distance.p_value(distance.score(near)) < 0.01).mean() < 0.05
    np.testing.assert_allclose(relative.class_scale, [0.3, 2.0, 1.0], rtol=0.15)  # each class's own spread


def test_classes_without_a_spread_borrow_the_others():
    """A class of one row, or of identical rows, has no spread of its own: it takes the median of the others,
    so every score stays finite."""
    X, y = _clusters(1, 300, [0, 1])
    X = np.vstack([X, np.full((1, 40), 9.0), np.repeat(X[:1] + 5.0, 4, axis=0)])
    y = np.r_[y, 2, 3, 3, 3, 3]
    basis = ood.fit_basis(X, labels=y, n_classes=5)
    assert np.all(basis.reference_label[:-1] <= basis.reference_label[1:])  # sorted by class
    assert basis.class_scale[2] == basis.class_scale[3] == basis.class_scale[4] == pytest.approx(
        np.median(basis.class_scale[:2]))
    assert np.isfinite(basis.parts(_clusters(5, 50, [0, 1])[0])).all()


def test_batch_components_join_batches_that_share_a_patient():
    batches = np.array(["B1", "B1", "B2", "B2", "B3", "B4", "B4"])
    groups = np.array(["p1", "p2", "p2", "p3", "p4", "p5", "p6"])
    component, members = batch_components(batches, groups)
    assert members == [["B1", "B2"], ["B3"], ["B4"]]
    np.testing.assert_array_equal(component, [0, 0, 0, 0, 1, 2, 2])


# ── end to end ───────────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conformal")
    paths = {}
    for key, kwargs in (("mc", dict(task="multiclass", n_patients=60, seed=1)),
                        ("test", dict(task="multiclass", n_patients=40, seed=2)),
                        ("bin", dict(task="binary", n_patients=40, seed=3, string_labels=False)),
                        ("reg", dict(task="regression", n_patients=20, seed=4))):
        paths[key] = str(tmp / f"{key}.csv")
        make_table(**kwargs).to_csv(paths[key], index=False)
    for key, data, extra in (("mc", "mc", ["--folds", "3"]), ("bin", "bin", ["--folds", "1"]),
                             ("reg", "reg", ["--folds", "1"])):
        out = str(tmp / f"{key}.mlp")
        res = run(["train", paths[data], "-o", out, "--epochs", "80", "--hidden", "8", "-q", *extra])
        assert res.exit_code == 0, res.output
        paths[f"{key}_model"] = out
    paths["tmp"] = tmp
    return paths


def _predict(trained, *args, model="mc_model", data="test", out="p.csv"):
    path = trained["tmp"] / out
    res = run(["predict", trained[model], trained[data], "-o", str(path), "-q", *args])
    assert res.exit_code == 0, res.output
    return pd.read_csv(path) if out.endswith(".csv") else pd.read_parquet(path)


def test_train_stores_the_calibration_and_the_ood_basis(trained):
    m = model_io.load(trained["mc_model"])
    assert m.conformal.source == "out-of-fold" and m.conformal.n == 180 and m.conformal.weight.sum() == 60
    assert set(m.conformal.member.tolist()) == {0, 1, 2}
    assert m.ood.components.shape[1] == len(m.preprocessor.kept_features) and len(m.ood.calibration) == 60  # patients
    assert m.ood.reference.shape == (180, m.ood.components.shape[0])
    b = model_io.load(trained["bin_model"])
    assert b.conformal.source == "validation" and set(b.conformal.member.tolist()) == {0}
    assert model_io.load(trained["reg_model"]).conformal is None


def test_predict_coverage_adds_sets_that_name_classes(trained):
    plain = _predict(trained)
    df = _predict(trained, "--coverage", "0.9")
    assert list(df.columns) == list(plain.columns) + ["pred_set", "set_size"]
    sets = df["pred_set"].fillna("")
    assert all(set(filter(None, s.split("|"))) <= {"typeA", "typeB", "typeC"} for s in sets)
    assert (df["set_size"] == [len(list(filter(None, s.split("|")))) for s in sets]).all()
    truth = pd.read_csv(trained["test"])["label"]
    covered = np.mean([t in s.split("|") for t, s in zip(truth, sets)])
    assert covered >= 0.75  # 120 new samples: a loose check here; the guarantee is tested above
    wide = _predict(trained, "--coverage", "0.97", out="wide.csv")
    assert (wide["set_size"] >= df["set_size"]).all()  # a higher level never shrinks a set
    for extra in (["--mondrian"], ["--conformal-score", "lac"], ["--mondrian", "--conformal-score", "lac"]):
        other = _predict(trained, "--coverage", "0.9", *extra, out="other.csv")
        assert other["set_size"].between(0, 3).all()
    chunked = _predict(trained, "--coverage", "0.9", "--chunksize", "7", out="chunked.csv")
    pd.testing.assert_series_equal(chunked["pred_set"], df["pred_set"])


def test_abstention_labels_and_counts(trained):
    df = _predict(trained, "--min-confidence", "0.999", "--unassigned-label", "unsure")
    assert (df["pred_label"] == "unsure").sum() > 0
    probs = df[["prob_typeA", "prob_typeB", "prob_typeC"]].max(axis=1)
    assert ((df["pred_label"] == "unsure") == (probs < 0.999)).all()
    res = run(["predict", trained["mc_model"], trained["test"], "-o", str(trained["tmp"] / "j.csv"), "--json",
               "--coverage", "0.5", "--abstain-on-empty-set", "--conformal-score", "lac", "-q"])
    doc = json.loads(res.output)
    assert doc["trust"]["abstained"] == doc["trust"]["empty_sets"] == doc["predicted_counts"].get("unassigned", 0)
    # numeric classes: the label column becomes text, parquet included
    b = _predict(trained, "--min-confidence", "0.99", model="bin_model", data="bin", out="b.parquet")
    assert set(b["pred_label"]) <= {"0", "1", "unassigned"} and "unassigned" in set(b["pred_label"])


def test_min_confidence_judges_the_predicted_class_under_a_binary_threshold(trained):
    """With --threshold below one half, a sample predicted positive can have P(positive) < 0.5: abstention
    compares the predicted class's probability, not the larger one, in predict and in evaluate."""
    args = ("--threshold", "0.3", "--min-confidence", "0.6")
    plain = _predict(trained, "--threshold", "0.3", model="bin_model", data="bin", out="bt.csv")
    df = _predict(trained, *args, model="bin_model", data="bin", out="bta.csv")
    own = np.where(plain["pred_label"] == 1, plain["prob_1"], plain["prob_0"])
    assert ((plain["pred_label"] == 1) & (plain["prob_1"] < 0.5)).any()  # the case this is about
    assert ((df["pred_label"] == "unassigned") == (own < 0.6)).all()
    res = run(["evaluate", trained["bin_model"], trained["bin"], *args, "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["trust"]["abstention"]["n_abstained"] == int((own < 0.6).sum())


def test_ood_columns_and_in_distribution_rate(trained):
    df = _predict(trained, "--ood")
    assert list(df.columns[-3:]) == ["ood_score", "ood_p", "ood"]
    assert df["ood_p"].between(0, 1).all() and (df["ood"] == (df["ood_p"] < 0.01)).all()
    assert df["ood"].mean() <= 0.05
    shifted = pd.read_csv(trained["test"])
    shifted[[f"f{j:02d}" for j in range(12)]] *= 6  # far from anything the model saw
    path = trained["tmp"] / "shifted.csv"
    shifted.to_csv(path, index=False)
    res = run(["predict", trained["mc_model"], str(path), "-o", str(trained["tmp"] / "s.csv"), "-q",
               "--ood-alpha", "0.05"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(trained["tmp"] / "s.csv")["ood"].mean() > 0.9


@pytest.mark.parametrize("args,needle", [
    (["--coverage", "0"], "--coverage"), (["--coverage", "1"], "--coverage"), (["--coverage", "1.5"], "--coverage"),
    (["--mondrian"], "--coverage"), (["--abstain-on-empty-set"], "--coverage"),
    (["--conformal-score", "lac"], "--coverage"), (["--unassigned-label", "x"], "--min-confidence"),
    (["--min-confidence", "0.5", "--unassigned-label", "typeA"], "typeA"), (["--ood-alpha", "0"], "--ood-alpha"),
    (["--min-confidence", "1.5"], "--min-confidence"),
])
def test_bad_trust_options_are_usage_errors(trained, args, needle):
    res = run(["predict", trained["mc_model"], trained["test"], "-o", str(trained["tmp"] / "bad.csv"), *args])
    assert_clean_error(res, needle, code=2)
    assert not (trained["tmp"] / "bad.csv").exists()


def test_regression_models_refuse_trust_options(trained):
    res = run(["predict", trained["reg_model"], trained["reg"], "-o", str(trained["tmp"] / "r.csv"), "--coverage", "0.9"])
    assert_clean_error(res, "--coverage", "regression", code=2)


def test_a_model_without_calibration_data_is_a_clear_error(trained, tmp_path):
    """A model file saved before prediction sets existed (format 2, no conformal or ood data)."""

    def format_2(meta):
        meta.pop("conformal"), meta.pop("ood")
        meta["format_version"] = 2

    old = tmp_path / "old.mlp"
    rewrite_model(trained["mc_model"], old, format_2, without_trust)
    assert run(["predict", str(old), trained["test"], "-o", str(tmp_path / "ok.csv"), "-q"]).exit_code == 0
    for flag in (["--coverage", "0.9"], ["--ood"]):
        res = run(["predict", str(old), trained["test"], "-o", str(tmp_path / "p.csv"), *flag])
        assert_clean_error(res, "old.mlp", flag[0], "retrain", code=1)
        assert not (tmp_path / "p.csv").exists()


def test_a_format_3_model_still_flags_with_the_distance_alone(trained, tmp_path):
    """A model saved before the class-relative distance (format 3: no classes in the ood arrays) loads, and
    its ood_score is the nearest-neighbour distance it was calibrated on."""
    new = model_io.load(trained["mc_model"])
    assert new.ood.relative and len(new.ood.class_scale) == 3
    old = tmp_path / "v3.mlp"

    def meta_fn(meta):
        meta["format_version"] = 3
        meta["ood"].pop("n_classes")

    rewrite_model(trained["mc_model"], old, meta_fn, lambda a: {k: v for k, v in a.items() if k not in (
        "ood/reference_label", "ood/class_scale", "ood/part_calibration")})
    m = model_io.load(str(old))
    assert not m.ood.relative
    path = tmp_path / "p.csv"
    res = run(["predict", str(old), trained["test"], "-o", str(path), "-q", "--ood"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(path)
    X = pd.read_csv(trained["test"])[m.feature_names].to_numpy()
    # the old file's own inputs (format 3 had no offset after the robust clip: m's transform has none)
    np.testing.assert_allclose(df["ood_score"], new.ood.parts(m.preprocessor.transform(X))[:, 0], rtol=1e-6)
    # a format 3 file that claims the new arrays, and a format 4 file without them, are refused
    for version, keep in ((3, True), (4, False)):
        bad = tmp_path / f"bad{version}.mlp"
        rewrite_model(trained["mc_model"], bad, lambda meta, v=version: meta.update(format_version=v),
                       lambda a, k=keep: a if k else {n: v for n, v in a.items() if n != "ood/part_calibration"})
        res = run(["predict", str(bad), trained["test"], "-o", str(tmp_path / "x.csv"), "--ood"])
        assert_clean_error(res, "bad", code=1)


def test_evaluate_reports_coverage_abstention_ood_and_plots(trained):
    plot = trained["tmp"] / "rc.png"
    res = run(["evaluate", trained["mc_model"], trained["test"], "--coverage", "0.9", "--ood", "--min-confidence",
               "0.7", "--by", "batch", "--json", "--plot", str(plot), "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)["trust"]  # warnings go to stderr
    sets = doc["sets"]
    assert 0 <= sets["coverage"] <= 1 and sets["mean_set_size"] > 0
    assert {r["value"] for r in sets["per_class"]} == {"typeA", "typeB", "typeC"}
    assert {r["value"] for r in sets["by"]} == {"B1", "B2", "B3"}
    assert sum(r["n"] for r in sets["by"]) == doc["n"] == 120
    ab = doc["abstention"]
    assert 0 < ab["rate"] < 1 and ab["accuracy_accepted"] >= ab["accuracy_all"] - 0.05
    # a rate where the model can flag at --ood-alpha 0.01, else undefined (null), not 0
    assert (0 <= doc["ood"]["rate"] <= 0.05) if doc["ood"]["can_flag"] else doc["ood"]["rate"] is None
    curve = doc["risk_coverage"]
    assert len(curve["coverage"]) == 101 and curve["risk"][-1] == pytest.approx(1 - doc["accuracy"])
    assert plot.exists() and plot.stat().st_size > 1000
    text = run(["evaluate", trained["mc_model"], trained["test"], "--coverage", "0.9", "--mondrian", "--ood"])
    assert text.exit_code == 0 and "Prediction sets" in text.output and "OOD flagged" in text.output
    bad = run(["evaluate", trained["reg_model"], trained["reg"], "--plot", str(trained["tmp"] / "r.png")])
    assert_clean_error(bad, "--plot", code=2)


def test_cv_leave_batch_out_reports_per_batch(trained):
    res = run(["cv", trained["mc"], "--leave-batch-out", "--epochs", "5", "--hidden", "8", "--member-folds", "2",
               "--json", "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [f["held_out"] for f in doc["per_fold"]] == ["B1", "B2", "B3"]
    for f in doc["per_fold"]:
        assert 0 <= f["trust"]["coverage"] <= 1 and f["trust"]["level"] == 0.9 and f["inner_score"] is not None
        # a rate, or undefined (None) where the fold model's smallest p-value is not below 0.01 (review 21)
        assert (f["trust"]["ood_rate"] is not None) == (f["trust"]["ood_floor"] < 0.01)
        # patients with several samples: the coverage counting each once, which the guarantee is about
        assert 0 <= f["trust"]["coverage_per_group"] <= 1
    # the table piped (not a terminal) is as wide as its 13 columns need: every header and value whole
    text = run(["cv", trained["mc"], "--leave-batch-out", "--epochs", "5", "--hidden", "8", "--member-folds", "2",
                "-q"]).stdout
    header = next(line for line in text.splitlines() if "held-out batch" in line)
    for column in ("best epoch", "bal. acc.", "inner OOF", "cov@0.9 per patient", "set size", "OOD"):
        assert column in header, (column, header)
    assert "…" not in text
    assert_clean_error(run(["cv", trained["mc"], "--leave-batch-out", "--folds", "3"]), "--folds", code=2)
    no_batch = pd.read_csv(trained["mc"]).drop(columns="batch")
    path = trained["tmp"] / "nobatch.csv"
    no_batch.to_csv(path, index=False)
    assert_clean_error(run(["cv", str(path), "--leave-batch-out"]), "batch")
    linked = pd.read_csv(trained["mc"])
    linked.loc[linked["patient_id"] == "P000", "batch"] = ["B1", "B2", "B3"]  # one patient spans every batch
    path = trained["tmp"] / "linked.csv"
    linked.to_csv(path, index=False)
    assert_clean_error(run(["cv", str(path), "--leave-batch-out"]), "--leave-batch-out", "linked")


def test_leave_batch_out_on_one_batch_names_the_column(tmp_path):
    """"the batch column holds one batch" named neither the column nor the option that picked it."""
    from mlpcli import data
    from mlpcli.errors import DataError
    from mlpcli.model_selection.splits import leave_batch_out

    table = make_table(n_patients=10).rename(columns={"batch": "site"}).assign(site="S1")
    table.to_csv(tmp_path / "t.csv", index=False)
    ds, _ = data.load_dataset(str(tmp_path / "t.csv"), batch="site")
    with pytest.raises(DataError, match=r"the batch column 'site' \(--batch\) holds one batch \('S1'\)"):
        leave_batch_out(ds)


def test_a_wide_ood_basis_spans_the_leading_singular_directions_of_its_rows():
    """Few rows, many genes (the exact SVD, not the range finder): the components are orthonormal and span
    the leading right singular vectors LAPACK's SVD of the centred rows gives, a direction without variance
    (beyond the rows' rank of 40) is dropped, and the reference rows' residuals are ~0."""
    from mlpcli import ood

    rng = np.random.default_rng(5)
    Z = rng.normal(size=(120, 40)) @ rng.normal(size=(40, 3000)) + rng.normal(size=3000)  # rank 40 + a mean
    basis = ood.fit_basis(Z)
    V = basis.components
    assert V.shape == (40, 3000)  # the 41st and later directions have no variance: dropped
    assert np.allclose(V @ V.T, np.eye(len(V)), atol=1e-12)
    _, s, Vt = np.linalg.svd(Z - Z.mean(axis=0), full_matrices=False)
    assert s[40] < 1e-9 * s[0]
    assert np.allclose(Vt[:40] @ V.T @ V, Vt[:40], atol=1e-9)  # the same subspace
    assert np.all(basis.reference_residual < 1e-12 * (s[0] ** 2))


def test_ood_fits_read_the_callers_rows_only_and_a_fit_on_some_rows_equals_the_fit_on_their_copy():
    """fit_basis(rows=...) fits on some of Z's rows without copying them (training's memory peak): the same
    basis to the bit as a fit on their copy; neither it nor calibrate changes Z, and calibrate gives the same
    basis with its fit on all rows in a thread beside the held-out parts' (background.beside)."""
    from mlpcli import ood
    from mlpcli.background import beside

    rng = np.random.default_rng(3)
    Z = rng.normal(size=(300, 400)) * rng.uniform(0.5, 3, size=400) + 5.0
    labels = rng.integers(0, 3, size=300)
    kept = Z.copy()
    some = np.sort(rng.choice(300, 260, replace=False))  # more than 240 rows and features: the randomised SVD
    on_rows = ood.fit_basis(Z, seed=1, labels=labels, n_classes=3, rows=some)
    on_copy = ood.fit_basis(Z[some], seed=1, labels=labels[some], n_classes=3)
    for name in ("mean", "components", "reference", "reference_residual", "reference_label", "class_scale"):
        assert np.array_equal(getattr(on_rows, name), getattr(on_copy, name)), name
    assert np.array_equal(Z, kept)
    parts = [(np.arange(0, 200), np.arange(200, 300)), (np.arange(100, 300), np.arange(0, 100))]
    a = ood.calibrate(Z, parts, seed=1, labels=labels, n_classes=3)
    b = ood.calibrate(Z, parts, seed=1, labels=labels, n_classes=3, start=beside)
    assert np.array_equal(Z, kept)
    assert np.array_equal(a.calibration, b.calibration) and np.array_equal(a.components, b.components)


def test_an_ood_alpha_below_the_smallest_possible_p_value_is_a_warning(tmp_path):
    """With m held-out rows the smallest p-value is 1/(m+1): a one-network model with 24 validation rows could
    never flag a sample at the default --ood-alpha 0.01, however far out, and nothing said so."""
    path = tmp_path / "t.csv"
    make_table("binary", n_patients=60, per_patient=2, n_features=6, seed=3).to_csv(path, index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(path), "--folds", "1", "--epochs", "3", "--hidden", "4", "-q", "-o", str(model)]).exit_code == 0
    m = len(model_io.load(model).ood.calibration)
    assert 1 / (m + 1) >= 0.01
    for args in (["predict", str(model), str(path), "--ood", "-o", str(tmp_path / "p.csv")],
                 ["evaluate", str(model), str(path), "--ood"]):
        res = run(args)
        assert res.exit_code == 0 and f"smallest p-value is 1/{m + 1}" in res.output, res.output
    res = run(["predict", str(model), str(path), "--ood", "--ood-alpha", f"{1.5 / (m + 1):.4f}", "-o",
               str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "smallest p-value" not in res.output


def test_an_unassigned_label_that_reads_back_as_a_class_is_refused(tmp_path):
    """--unassigned-label 1 was refused for classes 0 and 1, but "1.0" and " 0" were taken: read back, the
    abstained samples became class 1 (or 0)."""
    df = make_table("binary", n_patients=30, n_features=4, seed=4)
    df["label"] = (df["label"] == sorted(df["label"].unique())[0]).astype(int)
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(path), "--folds", "2", "--epochs", "3", "--hidden", "4", "-q", "-o", str(model)]).exit_code == 0
    for label in ("1", "1.0", " 0", "0.0"):
        res = run(["predict", str(model), str(path), "--min-confidence", "0.6", "--unassigned-label", label, "-o",
                   str(tmp_path / "p.csv")])
        assert res.exit_code == 2 and "is one of the model's classes" in res.output, (label, res.output)
    res = run(["predict", str(model), str(path), "--min-confidence", "0.6", "--unassigned-label", "unassigned",
               "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0


def test_one_held_out_part_is_split_conformal_against_its_own_training_rows():
    """With one hold-out (--folds 1, --val-data) a new sample is scored against the rows the held-out rows were
    scored against, the part's training rows, not all rows (a denser reference, which made in-distribution
    samples score lower than the calibration rows and the flags too few): its p-value is the split-conformal
    one, (1 + #{held-out nearest distances >= its own}) / (m + 1), computed here by brute force."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(3, 40))
    X = centres[rng.choice(3, 300)] + rng.normal(size=(300, 40))
    new = centres[rng.choice(3, 400)] + rng.normal(size=(400, 40))
    train, held = np.arange(240), np.arange(240, 300)
    basis = ood.calibrate(X, [(train, held)])

    def nearest(A):
        return np.sqrt(((A[:, None, :] - X[train][None]) ** 2).sum(axis=-1)).min(axis=1)

    expected = (1 + (nearest(X[held])[None, :] >= nearest(new)[:, None]).sum(axis=1)) / (len(held) + 1)
    assert len(basis.reference) == len(train)
    np.testing.assert_array_equal(basis.score_and_p(new)[1], expected)


def test_aps_draws_survive_last_bit_rounding_of_the_logits():
    """Another BLAS kernel or thread count rounds the logits differently in their last bits: the u of APS (and so
    the prediction sets) must not be redrawn for every sample by it, and must still look uniform."""
    from scipy import stats

    rng = np.random.default_rng(4)
    logits = rng.normal(0, 3, (5000, 5))
    nudged = logits * (1 + rng.uniform(-1e-9, 1e-9, logits.shape))  # ~1e-9 relative, as kernels differ
    assert (nudged != logits).mean() > 0.9
    u, v = uniform_hash(logits), uniform_hash(nudged)
    assert (u != v).sum() <= 5  # each of 25,000 values crosses a step of 2^-12 with probability ~1e-5
    assert stats.kstest(u, "uniform").pvalue > 0.01
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.05  # no serial structure
    assert uniform_hash(np.array([[0.0, 1.0]]))[0] == uniform_hash(np.array([[-0.0, 1.0]]))[0]
