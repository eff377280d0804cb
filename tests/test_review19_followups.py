"""Follow-ups of review 19 outside the reviewers' scopes."""

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run, write_tenx


def test_hidden_auto_scores_several_targets_in_units_of_their_sds(tmp_path):
    """--hidden auto chose among candidates by the pooled RMSE of several targets, in mixed units: an IC50 (1e-6)
    beside an age (tens of years) had no say. Each candidate's score is now the RMSE of the errors in units of each
    target's SD over the scored rows, which the out-of-fold predictions reproduce."""
    rng = np.random.default_rng(0)
    n, d = 120, 8
    X = rng.standard_normal((n, d))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(d)])
    df["age"] = 50 + 10 * X[:, 0] + 2 * rng.standard_normal(n)
    df["ic50"] = 1e-6 * (1 + 0.5 * np.tanh(X[:, 1] * X[:, 2]) + 0.05 * rng.standard_normal(n))
    data, model, oof = tmp_path / "mt.csv", tmp_path / "mt.mlp", tmp_path / "oof.csv"
    df.to_csv(data, index=False)
    res = run(["train", str(data), "--target", "age,ic50", "--epochs", "30", "-o", str(model), "--oof", str(oof)])
    assert res.exit_code == 0, res.output
    assert "RMSE of the 2 targets in units of their SDs" in " ".join(res.output.split())
    info = json.loads(run(["info", str(model), "--json"]).stdout)

    def portfolio(o):
        if isinstance(o, dict):
            return o["portfolio"] if "portfolio" in o else next((p for v in o.values() if (p := portfolio(v))), None)
        return next((p for v in o if (p := portfolio(v))), None) if isinstance(o, list) else None

    scores = [c["score"] for c in portfolio(info)]
    held = pd.read_csv(oof)
    Y, P = held[["age", "ic50"]].to_numpy(), held[["pred_age", "pred_ic50"]].to_numpy()
    expected = -np.sqrt(np.mean(((P - Y) / Y.std(axis=0)) ** 2))
    assert any(s == pytest.approx(expected, rel=1e-6) for s in scores), (scores, expected)  # the shipped candidate's


def test_evaluate_on_cells_with_repeated_names_does_not_suggest_predicts_h5ad_output(tmp_path):
    """Repeated obs_names (files concatenated) stop evaluate with the duplicate named; the advice to write
    -o FILE.h5ad is predict's (evaluate's -o is the metrics), so only predict gives it."""
    anndata = pytest.importorskip("anndata")
    rng = np.random.default_rng(0)
    n, d = 60, 6
    X = rng.lognormal(1.0, 0.5, (n, d)).astype(np.float32)
    labels = np.array(["a", "b"])[np.arange(n) % 2]
    X[labels == "b", 0] *= 4
    genes = [f"G{j}" for j in range(d)]
    table = pd.DataFrame(X, columns=genes)
    table["label"] = labels
    table.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--folds", "1", "--epochs", "3", "-q", "-o", str(model)]).exit_code == 0
    obs = pd.DataFrame({"label": labels}, index=[f"c{i % 30}" for i in range(n)])  # every name twice
    cells = tmp_path / "cells.h5ad"
    anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(cells)
    res = run(["evaluate", str(model), str(cells)])
    assert res.exit_code == 1 and "duplicate sample id" in res.output
    assert "-o FILE.h5ad" not in res.output
    res = run(["predict", str(model), str(cells), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 1 and "-o FILE.h5ad" in res.output


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("r19f")
    rng = np.random.default_rng(1)
    genes = [f"G{j}" for j in range(5)]
    df = pd.DataFrame(rng.poisson(3.0, (40, 5)), columns=genes)
    df["label"] = np.array(["a", "b"])[np.arange(40) % 2]
    df.to_csv(tmp / "t.csv", index=False)
    model = tmp / "m.mlp"
    assert run(["train", str(tmp / "t.csv"), "--folds", "1", "--epochs", "2", "-q", "-o", str(model)]).exit_code == 0
    return str(model), genes


def test_a_file_of_a_10x_directory_given_alone_names_the_directory(tmp_path, small_model):
    from cli_helpers import assert_clean_error

    model, genes = small_model
    tenx = tmp_path / "filtered"
    write_tenx(tenx, genes)
    for name, needle in (("matrix.mtx.gz", "give the directory that holds the three"),
                         ("features.tsv.gz", "is the features file of a 10x Genomics matrix, not a table"),
                         ("barcodes.tsv.gz", "is the barcodes file of a 10x Genomics matrix")):
        for command in ("predict", "evaluate"):
            assert_clean_error(run([command, model, str(tenx / name)]), needle, str(tenx))
    # the directory itself predicts; evaluated without a sample sheet, the labels are asked for there
    assert run(["predict", model, str(tenx), "-o", str(tmp_path / "p.csv"), "-q"]).exit_code == 0
    assert_clean_error(run(["evaluate", model, str(tenx)]), "10x Genomics directory, which holds no labels",
                       "--samples FILE")


def test_a_gzipped_geo_series_matrix_gets_a_command_that_reads_gzip(tmp_path):
    import gzip

    path = tmp_path / "GSE1_series_matrix.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write('!Series_title\t"a study"\n!Series_geo_accession\t"GSE1"\n\n!series_matrix_table_begin\n'
                '"ID_REF"\t"GSM1"\t"GSM2"\n"g1"\t1.0\t2.0\n!series_matrix_table_end\n')
    res = run(["train", str(path), "--features-in-rows"])
    assert res.exit_code == 1
    assert f"zcat {path} | grep -v -e '^!' -e '^$' > matrix.tsv" in " ".join(res.output.split())


def test_info_shows_each_targets_and_labels_held_out_figures(tmp_path):
    """The model kept only the pooled held-out metrics, so `info` gave several targets' RMSE in mixed units alone;
    it now keeps and shows each target's (and each label's) own figures, as `train` printed them."""
    rng = np.random.default_rng(2)
    n, d = 90, 6
    X = rng.standard_normal((n, d))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(d)])
    df["age"] = 50 + 10 * X[:, 0] + rng.standard_normal(n)
    df["ic50"] = 1e-6 * (1 + 0.3 * X[:, 1] + 0.05 * rng.standard_normal(n))
    df["A"] = (X[:, 2] > 0).astype(int)
    df["B"] = (X[:, 3] > 0.5).astype(int)
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    reg, oof = tmp_path / "reg.mlp", tmp_path / "oof.csv"
    assert run(["train", str(data), "--target", "age,ic50", "--drop", "A,B", "--epochs", "20", "-q", "-o", str(reg),
                "--oof", str(oof)]).exit_code == 0
    doc = json.loads(run(["info", str(reg), "--json"]).stdout)
    rows = {r["target"]: r for r in doc["held_out"]["per_target"]}
    held = pd.read_csv(oof)
    for t in ("age", "ic50"):
        assert rows[t]["rmse"] == pytest.approx(np.sqrt(np.mean((held[f"pred_{t}"] - held[t]) ** 2)), rel=1e-6)
    text = " ".join(run(["info", str(reg)]).output.split())
    assert "each below" in text and "ic50 │ RMSE" in text
    ml = tmp_path / "ml.mlp"
    assert run(["train", str(data), "--target", "A,B", "--drop", "age,ic50", "--epochs", "20", "-q",
                "-o", str(ml)]).exit_code == 0
    doc = json.loads(run(["info", str(ml), "--json"]).stdout)
    assert [r["label"] for r in doc["held_out"]["per_label"]] == ["A", "B"]
    assert [r["support"] for r in doc["held_out"]["per_label"]] == [int(df["A"].sum()), int(df["B"].sum())]


def test_tune_warns_of_a_label_confounded_with_the_batch_and_cv_names_a_diverged_fold(tmp_path):
    """tune, like cv, warns when the label goes with the batch (a grid point can win by recognising batches); a fold
    whose training diverges is named in cv's error, as a fold's data errors are."""
    from test_review19_selection import confounded

    path = tmp_path / "confounded.csv"
    confounded().to_csv(path, index=False)
    res = run(["tune", str(path), "--grid", "l2=0,1e-3", "--folds", "2", "--epochs", "3", "--hidden", "4", "--json"])
    assert res.exit_code == 0, res.output
    assert any("confounded with 'batch'" in w for w in json.loads(res.stdout)["warnings"])
    res = run(["cv", str(path), "--optimizer", "sgd", "--lr", "1e6", "--epochs", "5", "--folds", "2",
               "--member-folds", "1", "--no-baseline"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "Error: fold 1: training diverged" in res.output or "Error: fold 2: training diverged" in res.output


def test_fit_model_caps_blas_threads_as_the_commands_do():
    """The README's notebook call fit_model(ds, TrainOptions()) left BLAS its default thread count (every core):
    on a busy 2-core machine 268 s against 34 s, for products too small to share. It now runs with the plan's
    BLAS threads (default 1, as every command), whatever the caller's setting."""
    from threadpoolctl import threadpool_limits

    from blas_threads import numpy_blas_threads

    from mlpcli import data as data_lib
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection import fit_model
    from mlpcli.parallel import Plan

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(40, 4)), columns=[f"g{j}" for j in range(4)])
    df["label"] = np.array(["a", "b"])[np.arange(40) % 2]
    roles, _ = data_lib.resolve_roles(df.columns, no_group=True)
    ds = data_lib.Dataset.from_frame(df, roles)

    if not numpy_blas_threads():
        pytest.skip("NumPy's BLAS is not one threadpoolctl can see")
    seen = []

    def progress(row):
        seen.append(numpy_blas_threads()[0])

    with threadpool_limits(limits=2):
        fit_model(ds, TrainOptions(hidden=[4], epochs=2, folds=2), progress=progress)
        assert seen and set(seen) == {1}
        seen.clear()
        fit_model(ds, TrainOptions(hidden=[4], epochs=2, folds=2), progress=progress, plan=Plan(threads=2))
        assert set(seen) == {2}


def test_regression_tune_and_cv_say_lowest_and_show_only_columns_they_compute(tmp_path):
    """tune called the winning RMSE "the highest of 2 settings"; cv showed a Pearson r column of dashes for several
    targets (computed per target only)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 4))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(4)])
    df["age"] = 50 + 10 * X[:, 0] + rng.standard_normal(60)
    df["score"] = X[:, 1] + 0.1 * rng.standard_normal(60)
    path = tmp_path / "r.csv"
    df.to_csv(path, index=False)
    res = run(["tune", str(path), "--target", "age,score", "--grid", "l2=0,1e-3", "--folds", "2", "--epochs", "3",
               "--hidden", "4"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "the lowest of 2 settings" in text and "highest" not in text
    res = run(["cv", str(path), "--target", "age,score", "--folds", "2", "--member-folds", "1", "--epochs", "3",
               "--hidden", "4", "--no-baseline"])
    assert res.exit_code == 0, res.output
    assert "RMSE" in res.output and "Pearson" not in res.output


def test_auto_input_noise_is_for_standardised_features(tmp_path):
    """--augment-noise auto's SD is in units of a standardised feature: with --no-standardize it was applied to
    features in their own units (counts in thousands, or values of 0.01). Asked for, it is a usage error; the
    --hidden auto portfolio's noisy candidate (p > n) is left out."""
    from cli_helpers import assert_clean_error

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(30, 60)), columns=[f"g{j}" for j in range(60)])
    df["label"] = np.array(["a", "b"])[np.arange(30) % 2]
    path = tmp_path / "wide.csv"
    df.to_csv(path, index=False)
    assert_clean_error(run(["train", str(path), "--no-standardize", "--augment-noise", "auto", "-o",
                            str(tmp_path / "x.mlp")]), "--augment-noise", "--no-standardize", code=2)
    assert not (tmp_path / "x.mlp").exists()

    def noises(*extra):
        model = tmp_path / "m.mlp"
        res = run(["train", str(path), "--folds", "2", "--epochs", "3", "-q", "-o", str(model), *extra])
        assert res.exit_code == 0, res.output
        doc = json.loads(run(["info", str(model), "--json"]).stdout)
        return [c["augment_noise"] for c in doc["training"]["portfolio"]]

    assert any(n > 0 for n in noises())  # p > n: the noisy candidate, on standardised features
    # three candidates: each comparison's own margin is named (the note gave the largest as if it held for all)
    res = run(["train", str(path), "--folds", "2", "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    text = " ".join(res.output.split())
    assert "must beat the one chosen before it by more than its margin: hidden 128 with input noise" in text
    assert all(n == 0 for n in noises("--no-standardize"))


def _two_sites(tmp_path):
    """40 patients of two classes at two sites, site S2 shifted 3 SD in every gene: a table of one sample a patient,
    whose leave-batch-out fold models hold out about 20 patients each (too few to flag at p < 0.01)."""
    rng = np.random.default_rng(6)
    rows = []
    for p in range(40):
        label, site = ("a", "b")[p % 2], ("S1", "S2")[(p // 2) % 2]
        x = rng.normal(size=5) + (0.8 if label == "b" else 0.0) + (3.0 if site == "S2" else 0.0)
        rows.append({"sample_id": f"P{p}", "patient_id": f"P{p}", "batch": site, "label": label,
                     **{f"g{j}": x[j] for j in range(5)}})
    path = tmp_path / "sites.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_cv_shows_ood_as_not_available_where_a_fold_model_cannot_flag(tmp_path):
    """A fold model with fewer than 99 held-out patients cannot flag anything at p < 0.01: its OOD cell read 0.000,
    as if a shifted site resembled training. It reads n/a, with the reason once under the table."""
    path = _two_sites(tmp_path)
    res = run(["cv", str(path), "--leave-batch-out", "--hidden", "4", "--epochs", "5", "--member-folds", "2",
               "--no-baseline"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "n/a" in text and "OOD n/a in 2 folds" in text and "0.01" in text


def test_bootstrap_workers_are_the_idle_cores():
    """evaluate --bootstrap's default worker processes: the cores the load leaves idle (this process counted), from
    200 resamples on; all of them lost to serial on a busy machine."""
    from mlpcli.predict.evaluation import bootstrap_workers

    assert bootstrap_workers(199, cores=4, load=0.0) == 1  # few resamples: serial
    assert bootstrap_workers(200, cores=2, load=1.0) == 2  # only this process running
    assert bootstrap_workers(200, cores=2, load=1.6) == 1  # another job on the second core
    assert bootstrap_workers(1000, cores=2, load=6.0) == 1
    assert bootstrap_workers(1000, cores=4, load=2.2) == 2


def test_cv_ood_alpha_sets_the_level_a_fold_model_can_flag_at(tmp_path):
    """cv counted OOD rows at p < 0.01 only, which a fold model with few held-out patients cannot reach; --ood-alpha
    chooses the level (the site held out is far from training: flagged at 0.2), and needs the trust figures."""
    from cli_helpers import assert_clean_error

    path = _two_sites(tmp_path)
    args = ["cv", str(path), "--hidden", "4", "--epochs", "5", "--member-folds", "2", "--no-baseline"]
    res = run([*args, "--leave-batch-out", "--ood-alpha", "0.2", "--json"])
    assert res.exit_code == 0, res.output
    folds = json.loads(res.stdout)["per_fold"]
    assert all(f["trust"]["ood_alpha"] == 0.2 and not f["trust"]["notes"] for f in folds)
    assert max(f["trust"]["ood_rate"] for f in folds) > 0.5  # a site 3 SD away, flagged once the level allows
    assert_clean_error(run([*args, "--ood-alpha", "0.2"]), "--ood-alpha", "--coverage", code=2)
