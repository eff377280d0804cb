"""Prediction sets calibrated on a labelled cohort of a new population (`mlpcli recalibrate --conformal cohort`):
the training rows' scores promise nothing at a site whose samples are noisier, the cohort's hold the level there."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run
from mlpcli import model_io
from mlpcli.conformal import COHORT, SetPredictor
from mlpcli.errors import ModelFileError
from mlpcli.explain import load_samples
from mlpcli.metrics import class_proba
from mlpcli.predict.trust import held_out_trust
from model_files import rewrite_model
from tables import site_population

N_FEATURES, N_CLASSES = 40, 3


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A model trained at home, a labelled cohort of a noisier site (150 patients, 2 samples each) recalibrated on
    with the cohort's sets and with the training ones, and 1,500 other patients of the site to judge them."""
    tmp = tmp_path_factory.mktemp("cohort_sets")
    rng = np.random.default_rng(1)
    means = rng.normal(0, 0.45, (N_CLASSES, N_FEATURES))
    shift = np.where(rng.random(N_FEATURES) < 0.3, rng.normal(0, 0.8, N_FEATURES), 0.0)
    at_site = dict(shift=shift, scale=1.3, noise=1.5)
    site_population(rng, means, 250, 2, [1 / 3] * 3, 0).to_csv(tmp / "home.csv", index=False)
    site_population(rng, means, 150, 2, [0.6, 0.3, 0.1], 10_000, **at_site).to_csv(tmp / "cohort.csv", index=False)
    site_population(rng, means, 1500, 1, [0.6, 0.3, 0.1], 20_000, **at_site).to_csv(tmp / "later.csv", index=False)
    res = run(["train", str(tmp / "home.csv"), "--hidden", "32", "--folds", "3", "-q", "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    for sets in ("cohort", "training"):
        res = run(["recalibrate", str(tmp / "m.mlp"), str(tmp / "cohort.csv"), "--conformal", sets,
                   "-o", str(tmp / f"{sets}.mlp"), "--json"])
        assert res.exit_code == 0, res.output
        (tmp / f"{sets}.json").write_text(res.stdout)
    return tmp


def _coverage(path, table) -> dict:
    model = model_io.load(str(path))
    samples = load_samples(model, str(table))
    y = np.searchsorted(np.asarray(model.classes, dtype=str), samples.y.astype(str))
    return held_out_trust(model, samples.X, y, level=0.9)  # one sample per patient: rows are patients


def test_sets_calibrated_on_the_cohort_hold_the_level_at_the_site_where_the_training_ones_fall_short(site):
    cohort, training = _coverage(site / "cohort.mlp", site / "later.csv"), _coverage(site / "training.mlp",
                                                                                      site / "later.csv")
    # 1,500 new patients of the site: the sampling SD of a coverage of 0.9 is 0.008; the cohort's 150 patients add
    # ~0.024 (split conformal's own spread), so [0.85, 0.95] holds a correct calibration at this seed
    assert 0.85 <= cohort["coverage"] <= 0.95, cohort
    assert training["coverage"] < 0.88 and cohort["coverage"] > training["coverage"] + 0.02, (training, cohort)
    doc = json.loads((site / "cohort.json").read_text())
    assert doc["prediction_sets"] == {"source": "cohort", "scores": 300, "patients": 150}
    assert isinstance(doc["prediction_sets"]["patients"], int)  # a count, as cohort.patients is (60.0 before)
    assert json.loads((site / "training.json").read_text())["prediction_sets"]["source"] == "out-of-fold"
    assert any("calibrated on this table's 300 samples of 150 patients" in note for note in doc["notes"]), doc["notes"]


def test_the_cohort_file_keeps_the_scores_of_the_probabilities_predict_reports(site):
    model = model_io.load(str(site / "cohort.mlp"))
    cal = model.conformal
    assert cal.source == COHORT and cal.on_model_proba and cal.n == 300 and cal.weight.sum() == pytest.approx(150)
    assert cal.cohort["data"] == "cohort.csv" and len(cal.cohort["sha256"]) == 64
    assert model.format_version == model_io.FORMAT_VERSION >= 16
    assert model_io.load(str(site / "training.mlp")).conformal.source == "out-of-fold"
    info = run(["info", str(site / "cohort.mlp"), "--json"])
    assert json.loads(info.stdout)["trust"]["prediction_sets"]["cohort"]["data"] == "cohort.csv"
    # predict's pred_set column is the set SetPredictor gives from the model's own probabilities
    out = site / "pred.csv"
    res = run(["predict", str(site / "cohort.mlp"), str(site / "later.csv"), "--coverage", "0.8", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "calibrated on cohort.csv" in res.output
    written = pd.read_csv(out, keep_default_na=False)["pred_set"].to_numpy(dtype=str)
    X = load_samples(model, str(site / "later.csv")).X
    logits: list = []
    proba = class_proba(model.task, model.predict_output(X, member_logits=logits))
    first = np.concatenate([block[0] for block in logits])  # APS's u: the first member's raw outputs
    sets = SetPredictor(cal, len(model.classes), len(model.members), model.output_activation(), model.temperature,
                        0.8).sets([first], proba)
    expected = ["|".join(str(c) for c, inside in zip(model.classes, row) if inside) for row in sets]
    assert list(written) == expected
    with pytest.raises(ValueError, match="model_proba"):
        SetPredictor(cal, len(model.classes), 1, "softmax", None, 0.8).sets([np.zeros((2, 3))])


def test_evaluate_on_the_cohort_itself_says_the_coverage_is_in_sample(site):
    res = run(["evaluate", str(site / "cohort.mlp"), str(site / "cohort.csv"), "--coverage", "0.9", "--json"])
    assert res.exit_code == 0, res.output
    warnings = json.loads(res.stdout)["warnings"]
    assert any("the table the model was recalibrated on: its calibration (log loss, ECE, observed / expected: what "
               "the update was fitted to make right) and the prediction sets' coverage here are in-sample" in w
               for w in warnings), warnings


def test_training_sets_cannot_be_kept_on_a_model_whose_sets_are_a_cohorts(site, tmp_path):
    model = model_io.load(str(site / "cohort.mlp"))
    model.recalibration = None  # as when the closed test keeps no update: the sets alone are the cohort's
    model_io.save(model, tmp_path / "sets_only.mlp")
    res = run(["recalibrate", str(tmp_path / "sets_only.mlp"), str(site / "cohort.csv"), "--conformal", "training",
               "-o", str(tmp_path / "again.mlp")])
    assert_clean_error(res, "--conformal training", "calibrated on cohort.csv")
    assert not (tmp_path / "again.mlp").exists()


def _tampered(path, tmp_path, change) -> str:
    """A copy of the model file ``path`` whose model.json ``change(meta)`` edited."""
    return rewrite_model(path, tmp_path / "tampered.mlp", change, lambda arrays: arrays)


def test_a_file_whose_scores_do_not_say_truly_whose_they_are_is_refused(site, tmp_path):
    """Scores relabelled as a cohort's were compared under member 0 only while their weights counted every member's:
    every class in every set, without a word; a cohort's scores relabelled as a 3-member model's out-of-fold ones
    were read as member 0's held-out rows."""
    ensemble = model_io.load(str(site / "training.mlp"))
    assert len(ensemble.members) == 3 and ensemble.conformal.source == "out-of-fold"

    def cohort_with(meta):
        meta["conformal"]["source"] = "cohort"
        meta["conformal"]["cohort"] = {"data": "x.csv"}

    def without_cohort(meta):
        del meta["conformal"]["cohort"]

    def as_out_of_fold(meta):
        meta["conformal"]["source"] = "out-of-fold"
        del meta["conformal"]["cohort"]

    def older(meta):
        meta["format_version"] = 14

    for path, change, needle in ((site / "training.mlp", cohort_with, "conformal.members"),
                                 (site / "cohort.mlp", without_cohort, "conformal.cohort"),
                                 (site / "cohort.mlp", as_out_of_fold, "conformal.members"),
                                 (site / "cohort.mlp", older, "conformal.source")):
        with pytest.raises(ModelFileError, match=needle.replace(".", r"\.")):
            model_io.load(_tampered(path, tmp_path, change))


def test_aps_sets_of_a_confident_model_follow_the_level(tmp_path):
    """A model sure of most samples (P = 1 - 1e-9, or 1.0 exactly, after the cohort's slope of ~3.7): APS's u drawn
    from the probabilities gave thousands of samples one u, and the sets covered 0.989 at 0.8, 0.9 and 0.95 alike.
    Drawn from the first member's raw outputs, as for the training scores, they follow the level."""
    rng = np.random.default_rng(1)

    def table(n, mix):
        y = rng.choice(2, n, p=mix)
        X = rng.normal(size=(n, 20))
        X[:, :5] += 2.0 * y[:, None]
        frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(20)])
        frame.insert(0, "label", np.where(y, "pos", "neg"))
        return frame

    for name, n, mix in (("home", 400, [0.5, 0.5]), ("cohort", 300, [0.7, 0.3]), ("later", 4000, [0.7, 0.3])):
        table(n, mix).to_csv(tmp_path / f"{name}.csv", index=False)
    assert run(["train", str(tmp_path / "home.csv"), "--hidden", "16", "--folds", "3", "--seed", "1", "--no-group",
                "-q", "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    res = run(["recalibrate", str(tmp_path / "m.mlp"), str(tmp_path / "cohort.csv"), "-o", str(tmp_path / "c.mlp")])
    assert res.exit_code == 0, res.output
    covered = {}
    for level in (0.8, 0.9, 0.95):
        res = run(["evaluate", str(tmp_path / "c.mlp"), str(tmp_path / "later.csv"), "--coverage", str(level),
                   "--json"])
        assert res.exit_code == 0, res.output
        covered[level] = json.loads(res.stdout)["trust"]["sets"]["coverage"]
    # 4,000 samples: SD 0.006 at 0.8; the cohort's 300 add ~0.023 (and move the three levels together): within 3
    # SDs of that noise (this draw reads 0.758 / 0.849 / 0.914; generator seeds 2-6 read 0.80-0.84 / 0.89-0.93 /
    # 0.96-0.97); the fault gave 0.989 at every level
    assert 0.725 <= covered[0.8] <= 0.875 and 0.83 <= covered[0.9] <= 0.97 and covered[0.95] >= 0.88, covered
    assert covered[0.8] < covered[0.9] < covered[0.95], covered


def test_a_small_cohort_says_which_levels_its_sets_cannot_reach_and_predict_says_whose_scores(site, tmp_path):
    cohort = pd.read_csv(site / "cohort.csv")
    first = cohort.groupby("label")["patient_id"].unique().map(lambda ids: list(ids[:5]))  # 5 patients per class
    small = cohort[cohort["patient_id"].isin(sum(first.tolist(), []))]
    assert len(small) == 30 and small["label"].value_counts().min() == 10
    small.to_csv(tmp_path / "small.csv", index=False)
    res = run(["recalibrate", str(site / "m.mlp"), str(tmp_path / "small.csv"), "--method", "intercept", "-o",
               str(tmp_path / "small.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert any("with 15 patients, prediction sets at --coverage 0.95 or 0.99 hold every class (a set can leave one "
               "out from 19 patients at 0.95)" in n for n in notes), notes
    res = run(["predict", str(tmp_path / "small.mlp"), str(site / "later.csv"), "--coverage", "0.95", "-o",
               str(tmp_path / "p.csv"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    said = " ".join(doc["notes"])
    assert "needs more cohort patients than the model has" in said and "recalibrate on a larger cohort" in said, said
    assert doc["trust"]["sets_source"] == "cohort" and doc["trust"]["sets_cohort"]["data"] == "small.csv"
    assert pd.read_csv(tmp_path / "p.csv")["set_size"].eq(3).all()


def test_conformal_given_for_a_multilabel_model_is_refused_not_ignored(tmp_path):
    from tables import make_table

    make_table("multilabel", n_patients=40, seed=2).to_csv(tmp_path / "t.csv", index=False)
    assert run(["train", str(tmp_path / "t.csv"), "--target", "lab0,lab1,lab2", "--hidden", "4", "--folds", "2",
                "--epochs", "5", "-q", "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    res = run(["recalibrate", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "--conformal", "cohort",
               "-o", str(tmp_path / "r.mlp")])
    assert_clean_error(res, "--conformal", "binary and multiclass", code=2)
    assert not (tmp_path / "r.mlp").exists()


@pytest.fixture(scope="module")
def novel_site(tmp_path_factory):
    """As ``site``, and a kind of sample none of the training classes is (ten genes up by 2.5) seen at the site."""
    tmp = tmp_path_factory.mktemp("novel_site")
    rng = np.random.default_rng(1)
    means = rng.normal(0, 0.45, (4, N_FEATURES))
    means[3, :10] += 2.5
    shift = np.where(rng.random(N_FEATURES) < 0.3, rng.normal(0, 0.8, N_FEATURES), 0.0)
    at_site = dict(shift=shift, scale=1.3, noise=1.5)
    site_population(rng, means[:3], 250, 2, [1 / 3] * 3, 0).to_csv(tmp / "home.csv", index=False)
    site_population(rng, means[:3], 150, 2, [0.6, 0.3, 0.1], 10_000, **at_site).to_csv(tmp / "cohort.csv", index=False)
    site_population(rng, means[:3], 1000, 1, [0.6, 0.3, 0.1], 20_000, **at_site).to_csv(tmp / "later.csv", index=False)
    site_population(rng, means[3:], 300, 1, [1.0], 30_000, **at_site).to_csv(tmp / "novel.csv", index=False)
    assert run(["train", str(tmp / "home.csv"), "--hidden", "32", "--folds", "3", "-q", "-o",
                str(tmp / "m.mlp")]).exit_code == 0
    for sets in ("cohort", "training"):
        res = run(["recalibrate", str(tmp / "m.mlp"), str(tmp / "cohort.csv"), "--conformal", sets, "-o",
                   str(tmp / f"{sets}.mlp"), "-q"])
        assert res.exit_code == 0, res.output
    return tmp


def _flagged(path, table, alpha: float) -> float:
    model = model_io.load(str(path))
    X = load_samples(model, str(table)).X
    return float(np.mean(model.ood.score_and_p(model.preprocessor.transform(X))[1] < alpha))


def test_the_ood_flag_calibrated_on_the_cohort_flags_what_the_site_has_not_seen_not_the_site(novel_site):
    """At a site unlike the training data the training calibration flagged 98 % of its ordinary samples at 0.01 and
    every sample of a new kind: no information. Calibrated on the site's labelled cohort, the flag holds its rate on
    the site's ordinary samples and still flags the new kind."""
    t = novel_site
    assert _flagged(t / "training.mlp", t / "later.csv", 0.01) > 0.9  # the problem
    # 1,000 ordinary samples of the site: the rate at 0.01 is 1/151 (the cohort's 150 patients: p >= 1/151)
    assert _flagged(t / "cohort.mlp", t / "later.csv", 0.01) <= 0.02
    assert 0.02 <= _flagged(t / "cohort.mlp", t / "later.csv", 0.05) <= 0.08
    assert _flagged(t / "cohort.mlp", t / "novel.csv", 0.05) >= 0.35  # (0.50 measured: ten genes of 40 up by 2.5)
    model = model_io.load(str(t / "cohort.mlp"))
    assert model.ood.cohort["data"] == "cohort.csv" and model.ood.weighted
    assert model_io.load(str(t / "training.mlp")).ood.cohort is None
    res = run(["predict", str(t / "cohort.mlp"), str(t / "novel.csv"), "--ood", "-o", str(t / "p.csv"), "--json"])
    assert res.exit_code == 0, res.output
    said = " ".join(json.loads(res.stdout)["notes"] + json.loads(res.stdout)["warnings"])
    assert "150 patients of cohort.csv" in said and "further from the training data than that population's" in said, said
    res = run(["evaluate", str(t / "cohort.mlp"), str(t / "cohort.csv"), "--ood", "--coverage", "0.9", "--json"])
    assert res.exit_code == 0, res.output
    assert any("the prediction sets' coverage and the out-of-distribution flag rate here are in-sample" in w
               for w in json.loads(res.stdout)["warnings"]), res.stdout
    tampered = _tampered(t / "cohort.mlp", t, lambda meta: meta.update(format_version=14))
    with pytest.raises(ModelFileError, match="needs model format version 15"):
        model_io.load(tampered)


def test_the_cohort_is_recognised_in_any_copy_or_part_of_its_table(site, tmp_path):
    """evaluate knows the recalibration table's samples by their values (``Model.cohort_rows``), not by the file's
    bytes: a gzipped copy with the columns reordered is all in-sample; a table that adds other samples of the site
    names how many are the cohort's and gives the metrics on the others alone; the site's later samples are new."""
    cohort = pd.read_csv(site / "cohort.csv")
    model = model_io.load(str(site / "cohort.mlp"))
    assert model.cohort_rows is not None and len(model.cohort_rows) == len(cohort)
    copy = tmp_path / "copy.csv.gz"
    cohort[list(cohort.columns[::-1])].to_csv(copy, index=False)
    doc = json.loads(run(["evaluate", str(site / "cohort.mlp"), str(copy), "--coverage", "0.9", "--json"]).stdout)
    assert doc["cohort_rows_seen"] == 300 and doc["cohort_other_metrics"] is None
    assert any(w.startswith("all 300 samples are rows of cohort.csv, the table the model was recalibrated on")
               and "prediction sets' coverage here are in-sample" in w for w in doc["warnings"]), doc["warnings"]

    later = pd.read_csv(site / "later.csv")
    mixed = tmp_path / "mixed.csv"
    pd.concat([cohort.iloc[:40], later.iloc[:200]]).to_csv(mixed, index=False)
    doc = json.loads(run(["evaluate", str(site / "cohort.mlp"), str(mixed), "--json"]).stdout)
    assert doc["cohort_rows_seen"] == 40 and doc["cohort_other_metrics"]["n"] == 200
    alone = json.loads(run(["evaluate", str(site / "cohort.mlp"), str(site / "later.csv"), "--json"]).stdout)
    assert alone["cohort_rows_seen"] == 0 and not any("recalibrated on" in w for w in alone["warnings"])
    said = [w for w in doc["warnings"] if "40 of 240 samples are rows of cohort.csv" in w]
    assert said and "on the 200 other samples alone, log loss" in said[0], doc["warnings"]
    others = later.iloc[:200]
    part = tmp_path / "part.csv"
    others.to_csv(part, index=False)
    only = json.loads(run(["evaluate", str(site / "cohort.mlp"), str(part), "--json"]).stdout)["metrics"]
    # (the same rows in blocks of other sizes: 1e-9 apart on some BLAS kernels, see assert_same_figures)
    assert doc["cohort_other_metrics"]["log_loss"] == pytest.approx(only["log_loss"], rel=1e-6)
    assert doc["cohort_other_metrics"]["ece"] == pytest.approx(only["ece"], rel=1e-6)


def test_a_cohort_read_with_features_filled_keeps_no_rows_and_the_file_hash_still_speaks(site, tmp_path):
    """Filled features (--fill-missing) change the rows: no fingerprints are kept, and evaluate falls back to the
    file's SHA-256, as for a model written before format 16."""
    cohort = pd.read_csv(site / "cohort.csv")
    gene = [c for c in cohort.columns if c.startswith("g")][0]
    short = tmp_path / "short.csv"
    cohort.drop(columns=[gene]).to_csv(short, index=False)
    res = run(["recalibrate", str(site / "m.mlp"), str(short), "--fill-missing", "mean", "-o", str(tmp_path / "f.mlp"),
               "-q"])
    assert res.exit_code == 0, res.output
    assert model_io.load(str(tmp_path / "f.mlp")).cohort_rows is None
    doc = json.loads(run(["evaluate", str(tmp_path / "f.mlp"), str(short), "--fill-missing", "mean",
                          "--json"]).stdout)
    assert any("the table the model was recalibrated on" in w for w in doc["warnings"]), doc["warnings"]


def test_a_files_cohort_rows_must_be_sorted_and_belong_to_a_recalibration(site, tmp_path):
    def unsorted(arrays):
        arrays["cohort_rows"] = arrays["cohort_rows"][::-1].copy()
        return arrays

    bad = rewrite_model(site / "cohort.mlp", tmp_path / "unsorted.mlp", lambda meta: None, unsorted)
    with pytest.raises(ModelFileError, match="cohort_rows.* is not sorted and distinct"):
        model_io.load(bad)
    trained = model_io.load(str(site / "m.mlp"))
    assert trained.cohort_rows is None

    def stray(arrays):
        arrays["cohort_rows"] = np.arange(1, 4, dtype=np.uint64)
        return arrays

    bad = rewrite_model(site / "m.mlp", tmp_path / "stray.mlp", lambda meta: meta.update(cohort_rows={"n": 3}), stray)
    with pytest.raises(ModelFileError, match="field 'cohort_rows' is there without a recalibration"):
        model_io.load(bad)
    old = rewrite_model(site / "cohort.mlp", tmp_path / "v15.mlp", lambda meta: meta.update(format_version=15),
                        lambda arrays: arrays)
    with pytest.raises(ModelFileError, match="'cohort_rows' needs model format version 16"):
        model_io.load(old)


def test_info_says_the_flag_is_calibrated_on_the_cohort(site):
    """info described a cohort-calibrated flag as "calibrated on 150 held-out patients" of the training rows."""
    out = " ".join(run(["info", str(site / "cohort.mlp")], env={"COLUMNS": "400"}).output.split())
    assert ("calibrated on 300 samples of 150 patients of cohort.csv (recalibrate; each patient counted once)"
            in out), out
    doc = json.loads(run(["info", str(site / "cohort.mlp"), "--json"]).stdout)
    assert doc["trust"]["ood"]["cohort"]["data"] == "cohort.csv"
    trained = " ".join(run(["info", str(site / "m.mlp")], env={"COLUMNS": "400"}).output.split())
    assert "(recalibrate" not in trained and "held-out patients (each counted once)" in trained


def test_the_unseen_batch_warning_says_which_population_the_sets_hold_for(tmp_path):
    """On a model whose sets are calibrated on a recalibration cohort the warning still said they hold for samples
    exchangeable with the training ones."""
    from tables import SAMPLE

    cohort = pd.read_csv(os.path.join(os.path.dirname(SAMPLE), "test_cohort.csv.gz"))
    cohort.to_csv(tmp_path / "site.csv", index=False)
    cohort.assign(batch="B9").to_csv(tmp_path / "b9.csv", index=False)
    assert run(["train", SAMPLE, "--folds", "2", "--epochs", "20", "--hidden", "none", "-q", "-o",
                str(tmp_path / "m.mlp")]).exit_code == 0
    assert run(["recalibrate", str(tmp_path / "m.mlp"), str(tmp_path / "site.csv"), "-o", str(tmp_path / "r.mlp"),
                "-q"]).exit_code == 0
    for model, expected in (("m.mlp", "exchangeable with the training ones"), ("r.mlp", "exchangeable with site.csv's")):
        res = run(["predict", str(tmp_path / model), str(tmp_path / "b9.csv"), "--coverage", "0.9", "-o",
                   str(tmp_path / "p.csv"), "--json"])
        assert res.exit_code == 0, res.output
        said = [w for w in json.loads(res.stdout)["warnings"] if "not seen in training" in w]
        assert said and expected in said[0], said
