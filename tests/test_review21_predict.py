"""Review 21, predicting on a new cohort (follow-ups): cv's OOD rate of a fold model that cannot flag is undefined,
not 0, and its per-patient coverage of one-sample patients is the coverage; a 10x directory against a model of an
.h5ad file's .X; a sample sheet sharing the target column with the data; -o FILE.h5ad of another input; and SDs
printed to their mean's decimals."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cli_helpers import assert_clean_error, run
from mlpcli import model_io
from mlpcli.cli._common import fmt_mean_sd, fmt_sd
from mlpcli.predict.columns import RoleFlags
from mlpcli.predict.prepared import prepare
from mlpcli.predict.trust import held_out_trust
from tables import make_table

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


def test_10x_counts_against_a_model_of_log_normalised_x_warn(tmp_path):
    """A model trained on an .h5ad file's .X (log-normalised, no log1p) predicting a 10x directory (raw counts)
    had only the shift warning; a layer or .raw chosen against .X is warned of, and so is this now. A model that
    applies log1p learned counts-like values: no warning."""
    anndata = pytest.importorskip("anndata")
    from test_tenx import write_10x

    barcodes, types, X = write_10x(tmp_path / "run", n_cells=90, n_genes=12)
    obs = pd.DataFrame({"cell_type": [f"type{t}" for t in types], "donor": [f"D{i % 6}" for i in range(90)]},
                       index=barcodes)
    var = pd.DataFrame(index=[f"ENSG{j:011d}" for j in range(12)])
    for name, values in (("log.h5ad", np.log1p(X)), ("counts.h5ad", X)):
        anndata.AnnData(X=sp.csr_matrix(values.astype(np.float32)), obs=obs, var=var).write_h5ad(tmp_path / name)
    fast = ["--target", "cell_type", "--group", "donor", "--folds", "1", "--epochs", "2", "--hidden", "", "-q"]
    for name, extra in (("log", []), ("counts", ["--log1p"])):
        res = run(["train", str(tmp_path / f"{name}.h5ad"), *fast, *extra, "-o", str(tmp_path / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    res = run(["predict", str(tmp_path / "log.mlp"), str(tmp_path / "run"), "-o", str(tmp_path / "p.csv"), "--json"])
    assert res.exit_code == 0, res.output
    warnings = json.loads(res.stdout)["warnings"]
    assert any("10x matrix (its raw counts), but the model was trained on .X" in w for w in warnings), warnings
    res = run(["predict", str(tmp_path / "counts.mlp"), str(tmp_path / "run"), "-o", str(tmp_path / "q.csv"), "--json"])
    assert res.exit_code == 0, res.output
    assert not any("10x matrix" in w for w in json.loads(res.stdout)["warnings"])


@pytest.mark.parametrize("key, mean, sd, want", [
    ("log_loss", 1.115, 0.1417, "0.142"),  # a loss's 4 significant digits gave the SD a decimal more than its mean
    ("mae", 0.4512, 0.005865, "0.0059"),   # finer than the mean's decimals: to the SD's first significant digit
    ("rmse", 12.34, 1.2345, "1.23"),
    ("balanced_accuracy", 0.812, 0.0312, "0.031"),
    ("mae", None, 0.005865, "0.005865"),   # no mean to align with: the metric's own format
    ("mae", 0.5, None, "—"),
], ids=["log-loss", "mae-fine", "rmse", "metric", "no-mean", "no-sd"])
def test_sd_is_printed_to_its_means_decimals(key, mean, sd, want):
    assert fmt_sd(key, mean, sd) == want
    if mean is not None and sd is not None:
        assert fmt_mean_sd(key, mean, sd).endswith(f" ± {want}")
    elif mean is not None:  # one value: its SD is undefined, said in words (a "± —" read as a missing figure)
        assert fmt_mean_sd(key, mean, sd).endswith(" (one value, no SD)")


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
