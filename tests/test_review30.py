"""Review 30, by use: a new site's forecast and warnings (leave-batch-out, OOD excess) and the Python API's
messages."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from mlpcli import data
from mlpcli.cli._common import fmt_mean_sd
from mlpcli.model_selection.cross_validation import mean_sd
from mlpcli.predict.trust import beyond_chance


def _table(n_pat=60, spp=2, genes=12, classes=("A", "B", "C"), batch_of=None, shift=None, seed=0, sig=1.0):
    """Patients with `spp` samples each, class centres `sig` apart; batch_of(p) names patient p's batch;
    shift {batch: added to the first 4 genes}."""
    rng = np.random.default_rng(seed)
    centres = {c: rng.normal(0, sig, genes) for c in classes}
    rows = []
    for p in range(n_pat):
        c = classes[p % len(classes)]
        b = batch_of(p) if batch_of is not None else f"S{p % 3 + 1}"
        for s in range(spp):
            x = centres[c] + rng.normal(0, 1, genes)
            if shift and b in shift:
                x[:4] += shift[b]
            rows.append({"sample_id": f"s{p}_{s}", "patient_id": f"P{p:03d}", "batch": b, "label": c,
                         **{f"g{j}": x[j] for j in range(genes)}})
    return pd.DataFrame(rows)


# ── batches: a batch named "NA" and the rows without one ──────────────────────────────────────────────────


def test_a_batch_named_NA_is_not_merged_with_the_rows_without_a_batch(tmp_path):
    frame = _table(n_pat=24, batch_of=lambda p: ["1", "NA", None][p % 3])
    frame.to_parquet(tmp_path / "t.parquet")  # parquet keeps the text 'NA' apart from the nulls
    ds, _ = data.load_dataset(str(tmp_path / "t.parquet"), target="label")
    report = ds.warnings
    assert sorted(set(ds.batches.tolist())) == ["1", "NA", "NA (missing)"]
    assert any("counted as batch 'NA (missing)' (a batch is named 'NA' already)" in w for w in report)


def test_missing_batches_are_still_NA_when_no_batch_has_that_name(tmp_path):
    _table(n_pat=24, batch_of=lambda p: ["1", "2", None][p % 3]).to_parquet(tmp_path / "t.parquet")
    ds, _ = data.load_dataset(str(tmp_path / "t.parquet"), target="label")
    report = ds.warnings
    assert sorted(set(ds.batches.tolist())) == ["1", "2", "NA"]
    assert any("counted as batch 'NA'" in w and "already" not in w for w in report)


# ── leave-batch-out: what the forecast averages ──────────────────────────────────────────────────────────


def test_the_sd_of_one_value_is_undefined_not_zero():
    assert mean_sd([0.7]) == (0.7, None)
    assert mean_sd([0.5, float("nan"), None]) == (0.5, None)
    assert mean_sd([]) == (None, None)
    mean, sd = mean_sd([0.6, 0.8])
    assert mean == pytest.approx(0.7) and sd == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert fmt_mean_sd("balanced_accuracy", 0.7, None) == "0.700 (one value, no SD)"


@pytest.fixture(scope="module")
def lopsided(tmp_path_factory):
    """Two batches, S1 of 8 patients and S2 of 40: the model trained without S2 has 8 held-out patients, too
    few for prediction sets at 0.9 (their coverage is 1 by the count alone), and S1 is a small batch."""
    tmp = tmp_path_factory.mktemp("lopsided")
    _table(n_pat=48, classes=("A", "B"), batch_of=lambda p: "S1" if p < 8 else "S2", seed=9).to_csv(
        tmp / "t.csv", index=False)
    res = run(["cv", str(tmp / "t.csv"), "--leave-batch-out", "--hidden", "8", "--epochs", "15", "--no-baseline",
               "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), res


def test_a_coverage_of_one_by_the_count_alone_is_left_out_of_the_mean(lopsided):
    doc, res = lopsided
    trust = doc["trust"]
    assert trust["left_out"]["coverage"] == ["fold 2 (held-out batch S2)"]
    assert trust["coverage"]["folds"] == 1 and trust["coverage"]["sd"] is None
    by_fold = {f["held_out"]: f for f in doc["per_fold"]}
    kept = by_fold["S1"]["trust"]
    assert trust["coverage"]["mean"] == pytest.approx(kept["coverage_per_group"] if trust["per_patient"]
                                                      else kept["coverage"])


def test_held_out_batches_of_few_patients_are_named_and_the_forecast_given_without_them(lopsided):
    doc, _ = lopsided
    small = doc["small_held_out"]
    assert [b["batch"] for b in small["batches"]] == ["S1"] and small["batches"][0]["units"] == 8
    assert small["unit"] == "patients" and small["folds"] == 1
    s2 = next(f for f in doc["per_fold"] if f["held_out"] == "S2")
    assert small["mean"] == pytest.approx(s2["score"]) and small["sd"] is None


def test_cv_prints_the_small_batches_and_the_left_out_coverage(tmp_path):
    _table(n_pat=48, classes=("A", "B"), batch_of=lambda p: "S1" if p < 8 else "S2", seed=9).to_csv(
        tmp_path / "t.csv", index=False)
    res = run(["cv", str(tmp_path / "t.csv"), "--leave-batch-out", "--hidden", "8", "--epochs", "15", "--no-baseline"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "held-out batches of fewer than 10 patients: 'S1' (8)" in text
    assert "(one value, no SD) over 1 batch" in text
    assert "cov@ by the count alone in 1 fold (left out of the mean)" in text


# ── predict and evaluate: far more flagged than chance ───────────────────────────────────────────────────


def test_beyond_chance():
    assert not beyond_chance(0, 100, 0.01)
    assert not beyond_chance(3, 100, 0.01)  # 3 % of 100: within what chance gives
    assert not beyond_chance(2, 10, 0.01)  # 20 % of 10: too few to tell
    assert beyond_chance(50, 168, 0.01)
    assert beyond_chance(10, 10, 0.01)
    assert not beyond_chance(40, 1000, 0.05)  # below alpha


@pytest.fixture(scope="module")
def site_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    train = _table(n_pat=150, batch_of=lambda p: f"S{p % 3 + 1}", seed=3)
    train.to_csv(tmp / "train.csv", index=False)
    res = run(["train", str(tmp / "train.csv"), "--hidden", "8", "--epochs", "20", "-q", "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    cohort = _table(n_pat=90, batch_of=lambda p: f"S{p % 3 + 1}", seed=3)  # the same centres, new samples
    cohort.iloc[:, :].to_csv(tmp / "same.csv", index=False)
    shifted = cohort.copy()
    far = shifted["batch"] == "S3"
    shifted.loc[far, ["g0", "g1", "g2", "g3"]] += 6.0
    shifted.to_csv(tmp / "shifted.csv", index=False)
    new_site = cohort.assign(batch="S9")
    new_site.to_csv(tmp / "new_site.csv", index=False)
    return tmp


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


# ── the Python API ──────────────────────────────────────────────────────────────────────────────────────


def test_the_estimators_grouped_early_stopping_error_says_it_once():
    from mlpcli.estimators import MLPClassifier

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    with pytest.raises(ValueError) as info:
        MLPClassifier(hidden=(4,), epochs=3).fit(X, y, groups=np.where(y == 0, "P1", "P2"))
    message = str(info.value)
    assert message.count("cannot hold out whole groups") == 1
    assert "a class whose samples all come from one group" in message and "groupss" not in message


# ── pipelines and outputs ───────────────────────────────────────────────────────────────────────────────


def test_an_h5ad_output_killed_outright_leaves_no_temporary_file(tmp_path):
    """The copy of the input was a named temporary file from the start: SIGKILL (the OOM killer, SLURM after its
    grace period) left a full copy of the input as .out.h5ad.<8 random characters>.tmp."""
    import subprocess
    import sys

    anndata = pytest.importorskip("anndata")
    anndata.AnnData(np.ones((20, 3), dtype=np.float32)).write_h5ad(tmp_path / "in.h5ad")
    code = ("import os, numpy as np\n"
            "import anndata.io as aio\n"
            "aio.write_elem = lambda *a, **k: os._exit(9)  # killed while the copy is being changed\n"
            "from mlpcli.data.h5ad import write_obs_columns\n"
            f"write_obs_columns({str(tmp_path / 'in.h5ad')!r}, {str(tmp_path / 'out.h5ad')!r}, "
            "{'mlpcli_x': np.zeros(20)})\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.h5ad"]


def test_predictions_written_into_an_h5ad_copy_keep_the_input(tmp_path):
    anndata = pytest.importorskip("anndata")
    from mlpcli.data.h5ad import write_obs_columns

    X = np.arange(60, dtype=np.float32).reshape(20, 3)
    anndata.AnnData(X).write_h5ad(tmp_path / "in.h5ad")
    write_obs_columns(tmp_path / "in.h5ad", tmp_path / "out.h5ad", {"mlpcli_x": np.arange(20.0)})
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    assert np.array_equal(out.X, X) and np.array_equal(out.obs["mlpcli_x"].to_numpy(), np.arange(20.0))
    assert sorted(os.listdir(tmp_path)) == ["in.h5ad", "out.h5ad"]


def test_a_model_is_not_written_to_a_terminal(site_model):
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "mlpcli", "train", str(site_model / "train.csv"), "--folds", "1",
                               "--epochs", "2", "--hidden", "4", "-q", "-o", "-"], stdout=follower,
                              stderr=subprocess.PIPE, text=True, cwd=site_model)
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert "a model file is binary and standard output is a terminal" in done.stderr
    piped = subprocess.run([sys.executable, "-m", "mlpcli", "train", str(site_model / "train.csv"), "--folds", "1",
                            "--epochs", "2", "--hidden", "4", "-q", "-o", "-"], capture_output=True, cwd=site_model)
    assert piped.returncode == 0 and piped.stdout.startswith(b"PK")  # a pipe: written as asked


def test_a_model_can_come_from_standard_input_in_every_command(site_model):
    import subprocess
    import sys

    for args in (["predict", "-", "same.csv", "-q", "-o", "-"], ["evaluate", "-", "same.csv", "-q", "--json"],
                 ["info", "-", "--json"], ["explain", "-", "same.csv", "-q", "-o", "-"]):
        with open(site_model / "m.mlp", "rb") as model:
            done = subprocess.run([sys.executable, "-m", "mlpcli", *args], stdin=model, capture_output=True,
                                  cwd=site_model)
        assert done.returncode == 0, (args, done.stderr.decode())
    with open(site_model / "m.mlp", "rb") as model:
        done = subprocess.run([sys.executable, "-m", "mlpcli", "predict", "-", "-"], stdin=model,
                              capture_output=True, text=True, cwd=site_model)
    assert done.returncode == 2 and "would both read standard input" in done.stderr


def test_predict_names_a_directory_output_as_a_directory(site_model, tmp_path):
    res = run(["predict", str(site_model / "m.mlp"), str(site_model / "same.csv"), "-o", str(tmp_path / "newdir") + "/"])
    assert res.exit_code == 2 and "a name ending in '/' names a directory" in res.stderr


def test_evaluate_to_standard_output_puts_its_tables_on_stderr(site_model):
    res = run(["evaluate", str(site_model / "m.mlp"), str(site_model / "same.csv"), "-o", "-"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == 180
    assert "Metrics on 180 samples" in res.stderr


def test_a_config_file_with_a_byte_order_mark_is_read(site_model, tmp_path):
    (tmp_path / "c.toml").write_bytes(b"\xef\xbb\xbfepochs = 2\nfolds = 1\nhidden = [4]\n")
    res = run(["train", str(site_model / "train.csv"), "--config", str(tmp_path / "c.toml"), "-q",
               "--history", str(tmp_path / "h.csv"), "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "h.csv")) == 2


# ── diagnose: a linear model cannot be made smaller ─────────────────────────────────────────────────────


def _overfit_curves(n=40):
    epochs = np.arange(1, n + 1)
    train = list(0.7 * np.exp(-epochs / 6) + 0.01)
    val = list(0.45 + 0.004 * (epochs - 8) ** 2 / 8)
    return train, val


@pytest.mark.parametrize("full_batch", [False, True])
def test_a_linear_model_is_not_told_to_shrink(full_batch):
    from mlpcli.diagnosis import diagnose

    train, val = _overfit_curves()
    network = diagnose(train, val, baseline=0.69, full_batch=full_batch)
    linear = diagnose(train, val, baseline=0.69, full_batch=full_batch, linear=True)
    assert network.label == linear.label == "overfit"
    assert any("--hidden" in a for a in network.advice)
    assert not any("Reduce model capacity" in a or "smaller network" in a for a in linear.advice)
    if full_batch:
        assert "fewer features (--top-var)" in linear.advice[0]


def test_diagnose_reads_a_linear_model_as_linear(tmp_path):
    from mlpcli.history import read_curves

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 60))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(60)])
    frame.insert(0, "label", np.where(X[:, 0] + rng.normal(size=120) > 0, "a", "b"))
    frame.to_csv(tmp_path / "t.csv", index=False)
    for hidden, linear in (("none", True), ("4", False)):
        res = run(["train", str(tmp_path / "t.csv"), "--hidden", hidden, "--folds", "1", "--no-group", "--epochs", "5",
                   "-q", "-o", str(tmp_path / f"{hidden}.mlp")])
        assert res.exit_code == 0, res.output
        assert read_curves(tmp_path / f"{hidden}.mlp").linear is linear


# ── labels: one number under a decimal comma ────────────────────────────────────────────────────────────


def test_labels_that_are_one_number_under_a_decimal_comma_are_named(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["label;g1;g2"] + [f"{['01', '1,0', '2', '1'][i % 4]};{rng.normal():.3f};{rng.normal():.3f}".replace(".", ",")
                               for i in range(80)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    ds, _ = data.load_dataset(str(tmp_path / "t.csv"), target="label", no_group=True)
    assert ds.classes == ["01", "1", "1,0", "2"]
    assert any("one number written differently: '01', '1', '1,0'" in w for w in ds.warnings)


# ── tune ────────────────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tune")
    _table(n_pat=60, genes=12, seed=4, sig=0.8).to_csv(tmp / "t.csv", index=False)
    return tmp / "t.csv"


def test_tune_counts_settings_that_train_the_same_networks_once(small_table):
    res = run(["tune", str(small_table), "--epochs", "4", "--folds", "2", "--grid", "hidden=none|4; dropout=0,0.3"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "1 of 4 settings trains the same networks as another setting" in text
    assert "dropout drops units of the hidden layers, and --hidden none has none" in text
    assert "the highest of 3 settings" in text


def test_tune_refuses_augment_noise_auto_with_unstandardised_features_in_its_grid(small_table):
    res = run(["tune", str(small_table), "--epochs", "2", "--folds", "2", "--hidden", "4",
               "--grid", "augment-noise=auto; standardize=false"])
    assert res.exit_code == 2 and "augment-noise: auto sizes the noise in units of a standardised feature" in res.output


def test_outer_folds_without_nested_is_a_usage_error(small_table):
    res = run(["tune", str(small_table), "--epochs", "2", "--folds", "2", "--outer-folds", "3", "--grid", "l2=0,0.1"])
    assert res.exit_code == 2 and "--outer-folds sets the outer folds of --nested" in res.output


def test_nested_with_nothing_chosen_does_not_call_the_inner_score_optimistic(small_table):
    res = run(["tune", str(small_table), "--epochs", "3", "--folds", "2", "--outer-folds", "2", "--nested",
               "--hidden", "4", "--grid", "l2=0"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "honest estimate of the tuned model" in text and "it was used to choose" not in text


def test_a_tuned_val_size_the_refit_ensemble_ignores_is_a_warning(small_table, tmp_path):
    res = run(["tune", str(small_table), "--epochs", "3", "--folds", "2", "--hidden", "4", "--grid",
               "val-size=0.2,0.3", "--refit", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "has no effect on the model --refit trained: --member-folds auto trained 5" in " ".join(res.stderr.split())


def test_rounding_does_not_break_a_tie_against_the_grid_order():
    from mlpcli.model_selection.tuning import PointResult, rank, tie_note

    v = [0.7, 0.6333333333333333, 0.8166666666666667, 0.55, 0.75]
    w = [0.7, 0.6333333333333333, 0.75, 0.8166666666666667, 0.55]
    assert sum(v) / 5 != sum(w) / 5  # the same scores in another order: the means differ in their last bit

    def point(i, setting, scores):
        mean, sd = mean_sd(scores)
        return PointResult(index=i, setting=setting, scores=scores, mean=mean, sd=sd, decisions=["argmax"] * 5)

    ranked = rank([point(0, {"l2": 0.0}, w), point(1, {"l2": 0.001}, v)], True)
    assert [p.index for p in ranked] == [0, 1]
    assert "by its place in the grid" in tie_note(ranked, "balanced_accuracy")


# ── the session's own changes, reviewed ─────────────────────────────────────────────────────────────────


def test_momentum_under_a_given_sgd_is_no_moot_option(small_table):
    res = run(["tune", str(small_table), "--optimizer", "sgd", "--epochs", "3", "--folds", "2", "--hidden", "4",
               "--grid", "momentum=0,0.9"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "trains the same networks" not in text and "the highest of 2 settings" in text


def test_a_grids_auto_noise_beside_an_sd_is_refused_without_standardising(small_table):
    res = run(["tune", str(small_table), "--no-standardize", "--epochs", "2", "--folds", "2", "--hidden", "4",
               "--grid", "augment-noise=auto,0.1"])
    assert res.exit_code == 2 and "--grid: augment-noise=auto: auto sizes the noise" in " ".join(res.output.split())


def test_rows_without_a_batch_keep_the_name_training_gave_them(tmp_path):
    from mlpcli.predict._common import missing_batch_name

    assert missing_batch_name({"B1": 3, "NA": 4, "NA (missing)": 2}) == "NA (missing)"
    assert missing_batch_name({"B1": 3, "NA": 4}) == "NA" and missing_batch_name(None) == "NA"
    frame = _table(n_pat=90, batch_of=lambda p: ["B1", "NA", None][p % 3], seed=5)
    frame.to_parquet(tmp_path / "train.parquet")
    res = run(["train", str(tmp_path / "train.parquet"), "--hidden", "4", "--epochs", "3", "-q",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    cohort = _table(n_pat=60, batch_of=lambda p: ["NA", None][p % 2], seed=5)
    far = cohort["batch"].isna()
    cohort.loc[far, ["g0", "g1", "g2", "g3"]] += 8.0
    cohort.to_parquet(tmp_path / "cohort.parquet")
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "cohort.parquet"), "--ood", "--ood-alpha", "0.05",
               "-q", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stderr.split())
    assert "most in batch 'NA (missing)'" in text and "most in batch 'NA' " not in text


def test_a_linear_models_diagnosis_has_no_dropout_advice():
    from mlpcli.diagnosis import diagnose

    train, val = _overfit_curves()
    advice = diagnose(train, val, baseline=0.69, stochastic_regularisation=True, linear=True).advice
    assert not any("--dropout" in a for a in advice)
    assert any(a.startswith("Add regularisation: a stronger L2 penalty") for a in advice)


def test_a_model_from_standard_input_is_named_so_and_gradcheck_reads_stdin_once(site_model):
    import subprocess
    import sys

    bad = subprocess.run([sys.executable, "-m", "mlpcli", "predict", "-", "same.csv"], input=b"garbage\n",
                         capture_output=True, cwd=site_model)
    assert bad.returncode == 1 and b"- (standard input) is not a readable mlpcli model file" in bad.stderr
    with open(site_model / "m.mlp", "rb") as model:
        both = subprocess.run([sys.executable, "-m", "mlpcli", "gradcheck", "--model", "-", "--data", "-"],
                              stdin=model, capture_output=True, text=True, cwd=site_model)
    assert both.returncode == 2 and "would both read standard input" in both.stderr


def test_an_h5ad_copy_falls_back_where_copy_file_range_copies_nothing(tmp_path, monkeypatch):
    anndata = pytest.importorskip("anndata")
    from mlpcli.data.h5ad import write_obs_columns

    X = np.arange(60, dtype=np.float32).reshape(20, 3)
    anndata.AnnData(X).write_h5ad(tmp_path / "in.h5ad")
    if hasattr(os, "copy_file_range"):
        monkeypatch.setattr(os, "copy_file_range", lambda *a, **k: 0)
    write_obs_columns(tmp_path / "in.h5ad", tmp_path / "out.h5ad", {"mlpcli_x": np.arange(20.0)})
    assert np.array_equal(anndata.read_h5ad(tmp_path / "out.h5ad").X, X)


# ── regression ──────────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def offset_targets(tmp_path_factory):
    """One target, alone and shifted by 2e9: every figure in the target's units moves with it, no RMSE changes."""
    tmp = tmp_path_factory.mktemp("regression")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 12)) * 2 + 5
    frame = pd.DataFrame(X, columns=[f"G{i}" for i in range(12)])
    frame.insert(0, "patient_id", [f"P{i}" for i in np.repeat(np.arange(80), 3)])
    y = (X[:, 0] - 5) + 0.5 * rng.normal(size=240)
    frame.assign(age=y).to_csv(tmp / "small.csv", index=False)
    frame.assign(age=y + 2e9).to_csv(tmp / "big.csv", index=False)
    return tmp


def test_the_ridge_baseline_does_not_depend_on_the_targets_offset(offset_targets):
    scores = []
    for name in ("small", "big"):
        res = run(["cv", str(offset_targets / f"{name}.csv"), "--target", "age", "--hidden", "4", "--epochs", "5",
                   "--folds", "3", "--member-folds", "2", "--json"])
        assert res.exit_code == 0, res.output
        scores.append(json.loads(res.stdout)["baseline"]["summary"]["rmse"]["mean"])
    assert scores[0] < 1.0 and scores[1] == pytest.approx(scores[0], rel=1e-4)  # was 512 against 0.53


def test_the_regression_loss_is_named_for_what_it_is_and_calibrate_is_said_to_do_nothing(offset_targets, tmp_path):
    res = run(["train", str(offset_targets / "small.csv"), "--target", "age", "--hidden", "4", "--epochs", "3",
               "--calibrate", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "mse (half the squared error) of the standardised target" in text
    assert "--calibrate had no effect" in text


def test_a_binary_task_on_measured_values_points_to_regression(offset_targets):
    res = run(["train", str(offset_targets / "small.csv"), "--target", "age", "--task", "binary"])
    assert res.exit_code == 1 and "they are measured values: use --task regression" in " ".join(res.output.split())


def test_many_whole_numbers_read_as_classes_are_a_warning_naming_regression(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2400, 4))
    age = np.clip(np.round(50 + 10 * X[:, 0] + 5 * rng.normal(size=2400)), 18, 90).astype(int)
    frame = pd.DataFrame(X, columns=[f"G{i}" for i in range(4)]).assign(age=age)
    frame.to_csv(tmp_path / "t.csv", index=False)
    ds, _ = data.load_dataset(str(tmp_path / "t.csv"), target="age", no_group=True)
    assert ds.task == "multiclass"
    assert any("distinct whole numbers, read as" in w and "--task regression" in w for w in ds.warnings)
    few = frame.assign(age=age % 4)  # a 0-3 score: classes, a note at most
    few.to_csv(tmp_path / "s.csv", index=False)
    ds, _ = data.load_dataset(str(tmp_path / "s.csv"), target="age", no_group=True)
    assert not any("whole numbers" in w for w in ds.warnings)


def test_tune_on_targets_of_different_units_says_the_widest_decides(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    frame = pd.DataFrame(X, columns=[f"G{i}" for i in range(6)])
    frame.insert(0, "patient_id", [f"P{i}" for i in np.repeat(np.arange(50), 3)])
    frame["y1"] = X[:, 0] + 0.3 * rng.normal(size=150)
    frame["y2"] = 1000 * X[:, 1] + rng.normal(size=150)
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["tune", str(tmp_path / "t.csv"), "--target", "y1,y2", "--epochs", "2", "--folds", "2", "--hidden", "4",
               "--grid", "l2=0,0.1", "-q"])
    assert res.exit_code == 0, res.output
    assert "the ranking is by the RMSE pooled over the 2 targets in their own units" in " ".join(res.stderr.split())
    frame["y2"] = frame["y2"] / 1000  # the same units: nothing to say
    frame.to_csv(tmp_path / "s.csv", index=False)
    res = run(["tune", str(tmp_path / "s.csv"), "--target", "y1,y2", "--epochs", "2", "--folds", "2", "--hidden", "4",
               "--grid", "l2=0,0.1", "-q"])
    assert res.exit_code == 0 and "pooled over" not in res.stderr


# ── info says what the model holds ──────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def info_models(small_table, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("info")
    for name, extra in (("hold", ["--folds", "1"]), ("lbfgs", ["--optimizer", "lbfgs"]), ("refit", ["--refit"])):
        res = run(["train", str(small_table), "--hidden", "4", "--epochs", "3", "-q", *extra,
                   "-o", str(tmp / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    return tmp


def _info(path) -> str:
    res = run(["info", str(path)], env={"COLUMNS": "2000"})  # each row on one line
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def test_info_says_which_rows_the_class_counts_are_of(info_models):
    text = _info(info_models / "hold.mlp")
    assert "(samples per class in the 96 training rows)" in text  # 120 rows, a fifth held out


def test_info_says_how_many_lbfgs_runs_converged(info_models):
    text = _info(info_models / "lbfgs.mlp")
    assert "iterations run 3, 3, 3, 3, 3" in text and "0 of 5 converged" in text and "to convergence" not in text


def test_info_says_a_refit_models_figures_are_the_members(info_models):
    text = _info(info_models / "refit.mlp")
    assert "the cross-fitted members', which overstate the refit network that ships" in text
    assert "the auto settings above are the members'" in text
    assert "(members' mean curves)" in text


def test_counts_with_scattered_missing_values_still_look_like_counts():
    """5 % of the cells missing left almost no complete row, and --log1p auto answered "no" without a word: raw
    counts trained unlogged under --impute."""
    rng = np.random.default_rng(0)
    X = rng.negative_binomial(2, 0.1, size=(600, 300)).astype(float)
    whole = data.looks_like_counts(X)
    gapped = X.copy()
    gapped[rng.random(X.shape) < 0.05] = np.nan
    assert whole is not None and data.looks_like_counts(gapped) == pytest.approx(whole, abs=0.1)
    normal = rng.normal(5, 1, size=(600, 300))
    normal[rng.random(normal.shape) < 0.05] = np.nan
    assert data.looks_like_counts(normal) is None
