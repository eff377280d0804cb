"""The cohort-shift check on cohorts of few patients (audit of mlpcli.predict.shift).

Samples of one patient are not independent: a cohort of 20 samples from 5-7 patients is, for a mean, much
closer to 5-7 samples than to 20. Counting samples, the check's 0.5 SD test (judged from 20 samples) warned
of a "mild cohort shift" on most such cohorts drawn from the training distribution itself (2 in 3 cohorts of
20 samples split by patient from sample_data/tumour_subtypes.csv.gz), and the 1 SD test (from 5 samples)
gave a full "cohort shift" warning to 1 in 3 cohorts of 5 samples. With a group column the check now counts
patients; with fewer than 5 patients it still runs the mean test, at a bar raised to the same chance level.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io, predict as lib
from mlpcli.config import TrainOptions
from mlpcli.pipeline import train
from cli_helpers import assert_clean_error, run
from tables import _features, make_table

D = 40  # features


def clustered(seed: int, n_patients: int, per_patient: int, first: int = 0) -> pd.DataFrame:
    """Samples of patients whose own offsets dominate (within-patient correlation 0.8), as in tissue
    samples of one tumour or cells of one donor; the label is the patient's."""
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(n_patients), per_patient)
    X = 2.0 * rng.normal(size=(n_patients, D))[patient] + rng.normal(size=(len(patient), D))
    label = np.array(["A", "B"])[(np.arange(n_patients) + first) % 2][patient]
    X[:, 0] += 3.0 * (label == "B")
    df = pd.DataFrame({"sample_id": [f"S{first}_{i}" for i in range(len(patient))],
                       "patient_id": [f"P{first + p:03d}" for p in patient], "label": label})
    return pd.concat([df, pd.DataFrame(X, columns=[f"g{j:02d}" for j in range(D)])], axis=1)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shift_audit")
    path = tmp / "train.csv"
    clustered(0, 80, 3).to_csv(path, index=False)
    out = tmp / "m.mlp"
    model_io.save(train(str(path), TrainOptions(hidden=[6], epochs=2, seed=0)).model, out)
    return str(out)


def _shift(model_path, df, tmp_path, *args):
    path = tmp_path / "new.csv"
    df.to_csv(path, index=False)
    res = run(["predict", model_path, str(path), "-o", str(tmp_path / "p.csv"), "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_samples_of_few_patients_from_the_training_distribution_draw_no_warning(model_path, tmp_path):
    # 20 samples of 5 new patients, drawn as the training ones were
    new = clustered(1, 5, 4, first=500)
    doc = _shift(model_path, new, tmp_path)
    shift = doc["shift"]
    assert shift["n"] == 20 and shift["groups"] == 5
    assert shift["level"] == "none", shift
    assert not any("cohort shift" in w for w in doc["warnings"])
    # counted as 20 independent samples (no group column), the same rows look mildly shifted: the rule the
    # fix replaces (and still the rule when the table does not say which samples share a patient)
    doc = _shift(model_path, new, tmp_path, "--no-group")
    assert doc["shift"]["groups"] is None and doc["shift"]["level"] == "mild"
    # the verdict is the same however the table is read in pieces
    one = _shift(model_path, new, tmp_path, "--chunksize", "1")["shift"]
    assert (one["groups"], one["level"], one["fraction_mildly_shifted"]) == (5, "none", shift["fraction_mildly_shifted"])


def test_a_gross_error_in_a_cohort_of_two_patients_is_still_a_shift(model_path, tmp_path):
    new = clustered(2, 2, 4, first=600)
    feats = [c for c in new.columns if c.startswith("g")]
    assert _shift(model_path, new, tmp_path)["shift"]["level"] == "none"
    wrong = new.copy()
    wrong[feats] = new[feats] * 10 + 20  # other units, another offset
    doc = _shift(model_path, wrong, tmp_path)
    assert doc["shift"]["level"] == "shift" and doc["shift"]["groups"] == 2
    assert doc["shift"]["thresholds"]["mean_shift_sd"] == pytest.approx(np.sqrt(5 / 2))
    warning = next(w for w in doc["warnings"] if w.startswith("cohort shift"))
    assert "raised for 2 patients" in warning


def test_the_note_gives_no_figure_for_a_test_that_did_not_run():
    d = 20
    base = dict(features=[f"g{j}" for j in range(d)], train_mean=np.zeros(d), train_sd=np.ones(d),
                new_sd=np.ones(d), filled=np.zeros(d, dtype=bool))
    mean = np.where(np.arange(d) < 5, 0.7, 0.0)  # a quarter of the features 0.7 SD away
    report = lib.ShiftReport(n=10, new_mean=mean, **base)  # too few samples for the 0.5 SD test
    assert report.level == "none"
    text = report.message()
    assert "0% by more than 0.5" not in text and "need 20 samples" in text
    # with a group column the tests count patients: 60 samples of 8 patients are not judged at 0.5 SD
    grouped = lib.ShiftReport(n=60, groups=8, new_mean=mean, **base)
    assert grouped.level == "none" and "need 20 patients, this cohort has 8" in grouped.message()
    assert lib.ShiftReport(n=60, groups=30, new_mean=mean, **base).level == "mild"
    assert lib.ShiftReport(n=60, new_mean=mean, **base).level == "mild"


def test_patients_are_counted_only_as_far_as_the_tests_need():
    """A streamed table with one group per row kept every id in a set; counting stops at the cap, far above the
    5 and 20 patients the tests ask about."""
    from mlpcli.predict.shift import GROUP_COUNT_CAP, GroupCount

    counter = GroupCount()
    for start in range(0, 3 * GROUP_COUNT_CAP, 4096):
        counter.add(np.array([f"P{i}" for i in range(start, start + 4096)], dtype=object))
    assert GROUP_COUNT_CAP <= counter.count < GROUP_COUNT_CAP + 4096 and len(counter.keys) < GROUP_COUNT_CAP + 4096
    assert GroupCount().add(np.array(["a", "a", "NA", "b"], dtype=object)).count == 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("review13_predict")
    table = make_table("multiclass", n_patients=40, per_patient=2, n_features=8, seed=2)
    path = root / "train.csv"
    table.to_csv(path, index=False)
    model = root / "m.mlp"
    res = run(["train", str(path), "--folds", "1", "--epochs", "3", "--hidden", "4", "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    cohort = make_table("multiclass", n_patients=30, per_patient=2, n_features=8, seed=5)
    return str(model), cohort


def test_fail_on_shift_writes_the_shift_report_and_says_where(trained, tmp_path):
    """--fail-on-shift stopped before the shift report was written: the one file that shows why it failed
    was missing. The report is written, the predictions are not, and the error names the report."""
    model, cohort = trained
    shifted = cohort.copy()
    features = [c for c in cohort.columns if c.startswith("f")]
    shifted[features] = shifted[features] * 10 + 30
    data, out, report = tmp_path / "shifted.csv", tmp_path / "p.csv", tmp_path / "shift.csv"
    shifted.to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(out), "--fail-on-shift", "--shift-report", str(report)])
    assert_clean_error(res, "reaches --fail-on-shift mild", "no predictions written",
                       f"the shift report is in {report}")
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    frame = pd.read_csv(report)
    assert sorted(frame["feature"]) == sorted(features) and frame["mean_shifted"].any()
    # without --shift-report, the error says how to get it
    res = run(["predict", model, str(data), "-o", str(out), "--fail-on-shift", "shift"])
    assert_clean_error(res, "--shift-report FILE")


def _symmetric(seed: int, n_patients: int) -> pd.DataFrame:
    """Features centred and symmetric about their medians (a patient effect, a logistic label on five of them)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_patients * 3, 30)) + np.repeat(rng.normal(0, 0.5, (n_patients, 30)), 3, axis=0)
    beta = np.r_[np.random.default_rng(42).normal(size=5), np.zeros(25)]
    y = rng.random(len(X)) < 1 / (1 + np.exp(-X @ beta))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(30)])
    frame.insert(0, "label", np.where(y, "case", "ctrl"))
    frame.insert(0, "patient_id", [f"P{seed}_{i // 3}" for i in range(len(X))])
    return frame


@pytest.fixture(scope="module")
def symmetric_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("symmetric")
    _symmetric(1, 150).to_csv(tmp / "train.csv", index=False)
    assert run(["train", str(tmp / "train.csv"), "--folds", "2", "--epochs", "5", "--hidden", "", "-o",
                str(tmp / "m.mlp"), "-q"]).exit_code == 0
    return str(tmp / "m.mlp")


@pytest.mark.parametrize("factor", [100, 300, 1000])
def test_a_cohort_on_a_scale_hundreds_of_times_larger_is_a_shift(symmetric_model, tmp_path, factor):
    """Every feature x300: most values past the bound of the spreads measured before the clip, so no SD ratio was
    measured, and the clipped values' mean did not move: "cohort shift: none", --fail-on-shift passed (x100, x200
    were caught)."""
    model = symmetric_model
    scaled = _symmetric(2, 100)
    features = [c for c in scaled.columns if c.startswith("g")]
    scaled[features] = scaled[features] * factor
    scaled.to_csv(tmp_path / "x.csv", index=False)
    res = run(["predict", model, str(tmp_path / "x.csv"), "-o", str(tmp_path / "p.csv"), "--fail-on-shift", "shift"])
    assert_clean_error(res, "reaches --fail-on-shift shift")
    doc = json.loads(run(["predict", model, str(tmp_path / "x.csv"), "-o", str(tmp_path / "p.csv"), "--json"]).stdout)
    assert doc["shift"]["level"] == "shift"


def test_fail_on_shift_fails_on_features_the_cohort_did_not_measure(trained, tmp_path):
    """Features at 0 in every sample though never 0 in training drew a warning, yet --fail-on-shift let the
    run pass with exit 0 and the summary said 'cohort shift none'."""
    model, cohort = trained
    zeroed = cohort.copy()
    zeroed[["f06", "f07"]] = 0.0  # the noise features: the means test alone stays quiet
    data, out = tmp_path / "zeroed.csv", tmp_path / "p.csv"
    zeroed.to_csv(data, index=False)
    plain = run(["predict", model, str(data), "-o", str(out)])
    assert plain.exit_code == 0 and "2 features 0 in every sample" in plain.output, plain.output
    out.unlink()
    res = run(["predict", model, str(data), "-o", str(out), "--fail-on-shift", "shift"])
    assert_clean_error(res, "2 features are 0 in every one of the 30 patients", "f06, f07", "--fill-missing mean")
    assert not out.exists()


def test_ood_floor_warning_counts_the_two_parts(trained, tmp_path):
    """A one-network model whose held-out rows are too few to reach --ood-alpha: the warning says so, and the
    note no longer promises 'about 1 %' flagged when none can be."""
    model, cohort = trained
    data = tmp_path / "c.csv"
    cohort.to_csv(data, index=False)
    res = run(["predict", model, str(data), "--ood", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "smallest p-value is 1/" in res.output and "none can be flagged at this level" in res.output


def test_abstention_note_says_when_both_reasons_overlap(trained, tmp_path):
    """'56 of 168 unassigned (10 below --min-confidence; 56 with an empty set)': the reasons' counts did not
    add up; the note counts the samples abstained for both."""
    model, cohort = trained
    data, out = tmp_path / "c.csv", tmp_path / "p.csv"
    cohort.to_csv(data, index=False)
    res = run(["predict", model, str(data), "--coverage", "0.3", "--conformal-score", "lac", "--abstain-on-empty-set",
               "--min-confidence", "0.6", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    import json

    trust = json.loads(res.stdout)["trust"]
    frame = pd.read_csv(out)
    assert trust["abstained"] == int((frame["pred_label"] == "unassigned").sum())
    both = trust["abstained_for_both"]
    assert trust["low_confidence"] + trust["empty_set_abstained"] - both == trust["abstained"]
    assert both > 0 and f"{both} of them both" in " ".join(json.loads(res.stdout)["notes"])


def test_a_table_without_the_id_column_is_told_how_to_keep_its_ids(trained, tmp_path):
    """Ids under another column name were dropped silently as 'a column the model does not use', and the
    predictions were numbered by row: the note now says so and names --id."""
    model, cohort = trained
    data, out = tmp_path / "c.csv", tmp_path / "p.csv"
    cohort.rename(columns={"sample_id": "barcode"}).to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "'barcode'" in res.output and "rows are numbered: --id COLUMN" in res.output
    assert list(pd.read_csv(out).columns)[0] == "row"
    assert run(["predict", model, str(data), "-o", str(out), "--id", "barcode", "-q"]).exit_code == 0
    assert list(pd.read_csv(out)["barcode"][:2]) == ["S0000", "S0001"]


def test_fail_on_shift_says_when_it_could_not_judge(trained, tmp_path):
    """One sample passed --fail-on-shift unjudged (the check needs 5 rows) with only a note under --quiet's
    silence: a pipeline gate that did not run now warns."""
    model, cohort = trained
    data, out = tmp_path / "one.csv", tmp_path / "p.csv"
    cohort.iloc[:1].to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(out), "--fail-on-shift", "-q"])
    assert res.exit_code == 0 and out.exists()
    assert "--fail-on-shift could not judge this table" in res.stderr and "it has 1" in res.stderr


def test_a_batch_offset_on_values_with_negatives_is_not_called_raw_counts(three_classes):
    """The table's features are Gaussian (negative values): +1.5 on every gene is an offset, not counts."""
    d, df = three_classes
    shifted = df.copy()
    feats = [c for c in df.columns if c.startswith("f")]
    shifted[feats] += 1.5
    shifted.to_csv(d / "offset.csv", index=False)
    r = run(["predict", str(d / "m.mlp"), str(d / "offset.csv"), "-o", str(d / "p.csv")])
    assert r.exit_code == 0, r.output
    assert "higher than in training" in r.output and "carries a batch offset" in r.output
    assert "raw counts" not in r.output


def test_the_spread_test_measures_sds_before_robust_scalings_clip(three_classes, tmp_path):
    """Robust scaling's smooth clip squeezes a wider spread: a cohort whose genes' SDs had doubled (x2.5) read as
    x1.7 (x2.0) after it and passed the 2x test. The ratio is now of the SDs before the clip, and the report's SDs
    on the features' own scale are the table's."""
    d, df = three_classes
    cohort = make_table("multiclass", n_patients=60, seed=11)
    wide = _features(cohort)[:4]  # a third of the 12 features
    cohort[wide] = cohort[wide] * 2.5
    cohort.to_csv(tmp_path / "wide.csv", index=False)
    r = run(["predict", str(d / "m.mlp"), str(tmp_path / "wide.csv"), "-o", str(tmp_path / "p.csv"),
             "--shift-report", str(tmp_path / "shift.csv")])
    assert r.exit_code == 0, r.output
    assert "have an SD over 2x larger or smaller than in training" in r.output
    import pandas as pd

    report = pd.read_csv(tmp_path / "shift.csv").set_index("feature")
    feats = _features(df)
    truth = cohort[feats].std(ddof=0) / df[feats].std(ddof=0)
    assert np.allclose(report.loc[feats, "sd_ratio"], truth[feats], rtol=0.05)
    assert np.allclose(report.loc[feats, "new_sd"], cohort[feats].std(ddof=0), rtol=1e-5)  # from float32 inputs
    assert report.loc[wide, "spread_shifted"].all() and not report.loc[feats[4:], "spread_shifted"].any()


def test_a_model_keeps_its_training_sds_before_the_clip_dense_and_sparse(three_classes):
    import scipy.sparse as sp

    from mlpcli.data import PreprocessConfig, Preprocessor

    _, df = three_classes
    X = np.abs(df[_features(df)].to_numpy()) * (np.arange(len(df))[:, None] % 3 > 0)  # a third of the rows 0
    for matrix in (X, sp.csr_matrix(X)):
        pre = Preprocessor(PreprocessConfig(scaling="robust"))
        pre.fit(matrix, _features(df))
        assert np.allclose(pre.train_sd_unclipped_, X.std(axis=0) / pre.scale_, rtol=1e-9)
        assert np.all(pre.train_sd_unclipped_ > pre.train_sd_)  # the clip squeezed every one
    plain = Preprocessor(PreprocessConfig(scaling="standard")).fit(X, _features(df))
    assert plain.train_sd_unclipped_ is None


def test_a_model_from_before_format_11_judges_spread_after_the_clip(three_classes, tmp_path):
    from mlpcli import model_io
    from model_files import rewrite_model

    d, df = three_classes
    old = rewrite_model(d / "m.mlp", tmp_path / "v10.mlp", lambda m: m.update(format_version=10), lambda a: a)
    model = model_io.load(old)
    assert model.preprocessor.train_sd_unclipped_ is None
    r = run(["predict", old, str(d / "train.csv"), "-o", str(tmp_path / "p.csv"), "--shift-report",
             str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    import pandas as pd

    report = pd.read_csv(tmp_path / "s.csv")
    assert np.allclose(report["sd_ratio"], report["new_sd_scaled"] / report["train_sd_scaled"])


def test_the_sds_before_the_clip_are_sampled_over_the_whole_of_a_sorted_table(three_classes):
    """Past the first rows the SDs before the clip come from every 16th row, weighted: a table sorted so that its
    wide half comes last still gives the SDs of all its rows."""
    from mlpcli import model_io
    from mlpcli.predict.shift import UNCLIPPED_EVERY_ROW, shift_report

    d, df = three_classes
    model = model_io.load(d / "m.mlp")
    rng = np.random.default_rng(5)
    base = df[_features(df)].to_numpy()
    rows = base[rng.integers(0, len(base), 3 * UNCLIPPED_EVERY_ROW)]
    rows[len(rows) // 2:] = rows[len(rows) // 2:] * 3.0 - 2.0 * rows.mean(axis=0)  # the later half wider
    report = shift_report(model, rows.astype(np.float32))
    truth = rows.std(axis=0) / base.std(axis=0)  # ~2.2; the first rows alone would give ~1
    assert np.allclose(report.sd_ratio, truth, rtol=0.1)  # 2,048 rows and 256 of the other 4,096
    assert abs(report.sd_ratio.mean() / truth.mean() - 1) < 0.03


def test_a_gene_far_out_in_training_and_cohort_alike_is_not_called_spread(tmp_path):
    """The same 1e12 outlier in 10 genes of both cohorts: the clip's inverse gave inf for the cohort's and the
    training SD was exact, so 20 % of genes read as spread-shifted and --fail-on-shift refused the predictions.
    Both sides now hold values within ±100 scales."""
    import pandas as pd

    frames = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 400)
        X = rng.normal(0, 1, (400, 50))
        X[:, :5] += y[:, None]
        X[3, :10] = 1e12
        df = pd.DataFrame(X, columns=[f"g{j}" for j in range(50)])
        df.insert(0, "label", np.where(y, "pos", "neg"))
        df.insert(0, "patient_id", [f"{seed}_{i}" for i in range(400)])
        frames.append(df)
    frames[0].to_csv(tmp_path / "train.csv", index=False)
    frames[1].to_csv(tmp_path / "new.csv", index=False)
    assert run(["train", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m.mlp"), "--folds", "2", "--epochs", "5",
                "-q"]).exit_code == 0
    r = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv"),
             "--fail-on-shift", "shift", "--shift-report", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    report = pd.read_csv(tmp_path / "s.csv")
    assert not report["spread_shifted"].any() and np.isfinite(report["sd_ratio"]).all()


def test_a_cohort_far_beyond_the_training_values_has_no_sd_ratio_not_zero(tmp_path):
    # log2 intensities in training, raw ones (2^x, a million times wider) in the cohort: the values before the clip
    # are held at ±100 scales, every one at the bound, so their SD is not measured — it read "SD ratio 0.00"
    table = make_table("binary", n_patients=40, per_patient=2, n_features=8, seed=3)
    features = [c for c in table.columns if c.startswith("f")]
    table[features] = table[features] + 20.0
    table.to_csv(tmp_path / "train.csv", index=False)
    model = train(str(tmp_path / "train.csv"), TrainOptions(hidden=[4], epochs=2, folds=1, log1p=False)).model
    cohort = table.copy()
    cohort[features] = 2.0 ** cohort[features]
    report = lib.shift_report(model, cohort)
    frame = report.to_frame()
    assert frame["sd_ratio"].isna().all(), frame[["feature", "sd_ratio"]]
    assert report.shifted and (frame["mean_shift_sd"] > 1).all()


def test_one_feature_far_off_is_named_whatever_the_share_of_features(tmp_path):
    """One gene in another unit (+100 SD) moved 17 of 100 calls while the summary read "cohort shift: none": one gene
    is under the 10 % bar of any table. It is now named, with its means; an ordinary cohort names none."""
    def table(n, seed):
        r = np.random.default_rng(seed)
        y = r.choice(list("ABC"), n)
        X = r.normal(5, 1, (n, 20))
        X[y == "B", 3] += 2.5
        X[y == "C", 7] -= 2.5
        d = pd.DataFrame(X, columns=[f"g{i}" for i in range(20)])
        d.insert(0, "sample_id", [f"s{seed}_{i}" for i in range(n)])
        d["label"] = y
        return d

    table(400, 1).to_csv(tmp_path / "tr.csv", index=False)
    assert run(["train", str(tmp_path / "tr.csv"), "--folds", "2", "--epochs", "10", "--hidden", "8", "-q", "-o",
                str(tmp_path / "m.mlp")]).exit_code == 0
    cohort = table(100, 2)
    cohort.to_csv(tmp_path / "ok.csv", index=False)
    cohort.assign(g10=cohort["g10"] + 100).to_csv(tmp_path / "far.csv", index=False)
    docs = {}
    for name in ("ok", "far"):
        res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / f"{name}.csv"), "-o",
                   str(tmp_path / f"{name}_p.csv"), "--json"])
        assert res.exit_code == 0, res.output
        docs[name] = json.loads(res.stdout)
    said = [w for w in docs["far"]["warnings"] if "far from its training values" in w]
    assert said and "'g10' at +" in said[0] and "its mean 10" in said[0] and "(--shift-report)" in said[0], \
        docs["far"]["warnings"]
    assert docs["far"]["shift"]["far"] == ["g10"] and docs["far"]["shift"]["level"] == "none"
    assert docs["ok"]["shift"]["far"] == [] and not any("far from" in w for w in docs["ok"]["warnings"])
    # a gene at 0 in every sample has the absent-gene warning, not this one too (its mean printed -6.6e-14)
    cohort.assign(g10=0.0).to_csv(tmp_path / "zero.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "zero.csv"), "-o", str(tmp_path / "z_p.csv"),
               "--json"])
    doc = json.loads(res.stdout)
    assert "g10" in doc["shift"]["absent"] and doc["shift"]["far"] == [], doc["shift"]


def test_a_far_off_feature_has_the_shift_tables_sd_and_its_means_said_before_the_clip():
    """A gene 4 SDs off read "mean 4.123 against -0.03123 ± 1" (4 SD, before robust scaling's clip) in the warning
    and +3.1 SD in the shift table (after it): two figures for one gene. The warning now gives the table's, and says
    the means are before the clip; without the clip the two agree."""
    table = make_table("multiclass", n_patients=40, seed=0)
    cohort = make_table("multiclass", n_patients=20, seed=1)
    cohort["f05"] = cohort["f05"] + 4.5
    for scaling in ("robust", "standard"):
        model = train(table, TrainOptions(hidden=[6], epochs=2, seed=0, folds=1, scaling=scaling)).model
        report = lib.shift_report(model, cohort)
        said = report.far_message()
        frame = report.to_frame().set_index("feature")
        assert report.far_shifted().tolist() == [report.features.index("f05")], said  # what is flagged: unchanged
        sd = float(said.split("'f05' at ")[1].split(" SD")[0])
        assert sd == pytest.approx(frame.loc["f05", "mean_shift_sd"], abs=0.01), said
        means = [float(v) for v in said.split("its mean ")[1].split(" in training")[0].replace("±", "against")
                 .split(" against ")]
        own = (means[0] - means[1]) / means[2]  # the SDs the quoted means are apart
        if scaling == "robust":
            assert "after its robust clip, as --shift-report's mean_shift_sd" in said and "before the clip" in said
            assert own > sd + 0.5  # the clip holds the far values in: the figures differ, and the warning says why
        else:
            assert "clip" not in said and own == pytest.approx(sd, rel=0.1)
