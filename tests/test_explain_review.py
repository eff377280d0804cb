"""Regressions from a review of `mlpcli explain` and `predict --explain` as a demanding user meets them."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from mlpcli.errors import OptionError

from mlpcli import model_io
from mlpcli.errors import DataError, OutputError
from mlpcli.explain import explain, load_samples
from mlpcli.explain.attribution import class_index
from cli_helpers import assert_clean_error, run
from tables import make_table


def _train(tmp, name: str, table: pd.DataFrame, *extra: str) -> tuple[str, str]:
    data, model = tmp / f"{name}.csv", tmp / f"{name}.mlp"
    table.to_csv(data, index=False)
    res = run(["train", str(data), "-o", str(model), "--hidden", "8", "--epochs", "8", "-q", *extra])
    assert res.exit_code == 0, res.output
    return str(model), str(data)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small models on a 3-class table with two constant genes the preprocessing drops (the model uses 10
    of its 12 genes): a 5-member ensemble, a single network (bootstrap stability), and one on numbered classes."""
    tmp = tmp_path_factory.mktemp("explain_review")
    table = make_table(n_patients=30, n_features=10, seed=1).assign(fconst1=1.0, fconst2=2.0)
    numbered = make_table(n_patients=30, n_features=6, seed=2, string_labels=False).assign(label=lambda d: d.label + 1)
    return {"ensemble": _train(tmp, "ensemble", table, "--folds", "5"),
            "single": _train(tmp, "single", table, "--folds", "1"),
            "numbered": _train(tmp, "numbered", numbered, "--folds", "2")}


@pytest.mark.parametrize("kind", ["ensemble", "single"])
def test_stability_overlap_stays_within_0_and_1_when_top_exceeds_the_genes_used(models, kind):
    """--top 12 on a model using 10 of 12 genes: every unit's top list was padded with the 2 dropped genes,
    and the mean top-K overlap came out as 12/10 = 1.2 (printed as "top-12 overlap 1.20")."""
    model = model_io.load(models[kind][0])
    samples = load_samples(model, models[kind][1])
    result = explain(model, samples.X, samples.y, top=12, bootstrap=None if kind == "ensemble" else 5)
    for name, st in result.stability.items():
        assert st["top"] == 10, st
        assert 0 <= st["mean_overlap"] <= 1, (name, st)
    assert result.table["member_overlap"].between(0, 1).all()
    assert not result.table["feature"].str.startswith("fconst").any()


def test_member_overlap_is_a_count_over_members_without_round_off(models):
    model = model_io.load(models["ensemble"][0])
    samples = load_samples(model, models["ensemble"][1])
    shares = explain(model, samples.X, samples.y, top=3).table["member_overlap"]
    # k / 5 exactly, as --json shows it: summing fifths gave 0.6000000000000001 for 3 of 5 members
    assert all(s in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) for s in shares), list(shares)
    assert (shares < 1).any()  # the check means something: some gene is not in every member's top 3


def test_cli_title_names_the_k_the_stability_compares(models):
    res = run(["explain", models["ensemble"][0], models["ensemble"][1], "--top", "12", "-q"])
    assert res.exit_code == 0, res.output
    assert "top-10 overlap" in res.output and "top-12 overlap" not in res.output
    assert "of 10 genes" in res.output


def test_a_class_without_samples_is_noted_not_shown_as_an_empty_ranking(models, tmp_path):
    """A table holding only typeA samples: typeB and typeC came out as empty tables "top 0 of 20 genes
    (0 samples)" and were listed among the classes ranked in --json."""
    model_path, data = models["ensemble"]
    frame = pd.read_csv(data)
    only_a = tmp_path / "only_a.csv"
    frame[frame.label == "typeA"].to_csv(only_a, index=False)
    res = run(["explain", model_path, str(only_a), "--json", "--top", "3"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["classes"] == ["typeA"]
    assert any("not ranked" in n and "typeB, typeC" in n for n in doc["notes"]), doc["notes"]
    shown = run(["explain", model_path, str(only_a), "--top", "3"])
    assert "(0 samples)" not in shown.output and "typeB" in shown.output  # in the note, not as a table


def test_permutation_for_a_class_without_samples_is_an_error_as_for_ig(models, tmp_path):
    """--method permutation --class typeB on a table without typeB exited 0 with no ranking and no word."""
    model_path, data = models["ensemble"]
    frame = pd.read_csv(data)
    only_a = tmp_path / "only_a.csv"
    frame[frame.label == "typeA"].to_csv(only_a, index=False)
    for method in ("ig", "permutation"):
        res = run(["explain", model_path, str(only_a), "--method", method, "--class", "typeB", "-q"])
        assert_clean_error(res, "no sample is of the class ranked (typeB)")


def test_class_option_matches_numbered_classes_as_labels_are_matched(models):
    """--class 1.0 (or 01) was "not one of the model's classes ('1', '2', '3')", though a label 1.0 in the
    table is the class 1."""
    model = model_io.load(models["numbered"][0])
    assert class_index(model, "1.0") == class_index(model, "01") == class_index(model, "1") == class_index(model, 1)
    res = run(["explain", models["numbered"][0], models["numbered"][1], "--class", "1.0", "--top", "2", "-o", "-", "-q"])
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(pd.io.common.StringIO(res.stdout))["class"]) == {1}


def test_bootstrap_stability_of_a_class_does_not_depend_on_the_other_classes_ranked(models):
    """One network: the bootstrap resamples came from one generator shared by the classes in turn, so
    typeB's stability changed with --class typeB alone versus every class."""
    model = model_io.load(models["single"][0])
    samples = load_samples(model, models["single"][1])
    every = explain(model, samples.X, samples.y, top=4, bootstrap=10, seed=3)
    alone = explain(model, samples.X, samples.y, top=4, bootstrap=10, seed=3, classes=["typeB"])
    assert every.stability["typeB"] == alone.stability["typeB"]
    pd.testing.assert_frame_equal(every.table[every.table["class"] == "typeB"].reset_index(drop=True),
                                  alone.table.reset_index(drop=True))


@pytest.mark.parametrize("args, flag", [
    (["--method", "permutation", "--steps", "8"], "--steps"),
    (["--method", "permutation", "--output", "prob"], "--output"),
    (["--method", "permutation", "--baseline", "zero"], "--baseline"),
    (["--method", "permutation", "--tol", "0.1"], "--tol"),
    (["--scoring", "balanced_accuracy"], "--scoring"),
    (["--repeats", "3"], "--repeats"),
])
def test_an_option_of_the_other_method_is_a_usage_error(models, args, flag):
    """--scoring balanced_accuracy without --method permutation ran integrated gradients and said nothing."""
    res = run(["explain", *models["ensemble"], *args])
    assert_clean_error(res, flag, "--method", code=2)


def test_bootstrap_with_an_ensemble_is_refused(models):
    """It was a note (hidden by -q) that the resamples were not used; options of another --method are usage errors."""
    model = model_io.load(models["ensemble"][0])
    samples = load_samples(model, models["ensemble"][1])
    with pytest.raises(OptionError, match="--bootstrap 7 is for a single network"):
        explain(model, samples.X, samples.y, top=3, bootstrap=7)
    result = explain(model, samples.X, samples.y, top=3)
    assert result.stability["typeA"]["unit"] == "member"
    res = run(["explain", models["ensemble"][0], models["ensemble"][1], "--bootstrap", "7"])
    assert res.exit_code == 2 and "--bootstrap 7 is for a single network" in res.output


def test_a_gene_absent_from_the_table_is_not_ranked(models, tmp_path):
    """With --fill-missing mean, a gene the table lacks has exactly 0 attribution (it equals the mean
    baseline) and was ranked among the top genes, "up", with member_overlap 1."""
    model_path, data = models["ensemble"]
    partial = tmp_path / "partial.csv"
    pd.read_csv(data).drop(columns=["f05"]).to_csv(partial, index=False)
    for method in ("ig", "permutation"):
        res = run(["explain", model_path, str(partial), "--fill-missing", "mean", "--max-missing", "0.2",
                   "--method", method, "--top", "12", "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert "f05" not in {r["feature"] for r in doc["rankings"]}
        assert any("not ranked: 'f05', absent from the table" in n for n in doc["notes"]), doc["notes"]


def test_library_refuses_a_ranking_of_only_filled_genes(models):
    model = model_io.load(models["ensemble"][0])
    samples = load_samples(model, models["ensemble"][1])
    with pytest.raises(DataError, match="nothing to rank"):
        explain(model, samples.X, samples.y, absent=list(model.feature_names))


def test_a_failed_ranking_write_leaves_an_earlier_plot_in_place(models, tmp_path, monkeypatch):
    """The plot was written first and deleted when -o failed: the plot an earlier run had left at --plot was
    gone too. Now the table is written before the new plot replaces the old one."""
    import mlpcli.predict

    plot, out = tmp_path / "genes.png", tmp_path / "genes.csv"
    plot.write_bytes(b"an earlier run's plot")

    def full_disk(frame, path, **kw):
        raise OutputError(f"cannot write {path}: no space left on device")

    monkeypatch.setattr(mlpcli.predict, "write_table", full_disk)
    res = run(["explain", *models["ensemble"], "--plot", str(plot), "-o", str(out), "--top", "2"])
    assert_clean_error(res, "no space left on device")
    assert plot.read_bytes() == b"an earlier run's plot"
    assert sorted(os.listdir(tmp_path)) == ["genes.png"]  # no temporary file, no table


def test_plot_and_table_are_both_written(models, tmp_path):
    plot, out = tmp_path / "genes.png", tmp_path / "genes.csv"
    plot.write_bytes(b"old")
    res = run(["explain", *models["ensemble"], "--plot", str(plot), "-o", str(out), "--top", "2", "-q"])
    assert res.exit_code == 0, res.output
    assert plot.read_bytes().startswith(b"\x89PNG") and len(pd.read_csv(out)) == 6
    assert sorted(os.listdir(tmp_path)) == ["genes.csv", "genes.png"]


def test_predict_explain_steps_without_explain_is_a_usage_error(models):
    """--explain-steps 5 without --explain gave predictions without a top_features column, silently."""
    res = run(["predict", *models["ensemble"], "--explain-steps", "5"])
    assert_clean_error(res, "--explain-steps", "--explain K", code=2)
    res = run(["predict", *models["ensemble"], "--explain-steps", "5", "--explain", "2", "-q"])
    assert res.exit_code == 0 and "top_features" in res.stdout.splitlines()[0]


def test_predict_explain_lists_only_genes_that_push_toward_the_call():
    """top_features listed the K largest attributions even when they were 0 or negative (a gene filled in with its
    training mean scored 0 and was shown as a reason for the call)."""
    from mlpcli.explain.attribution import top_features

    values = np.array([[0.5, -0.2, 0.0, 0.1], [-0.1, -0.3, 0.0, -0.2]])
    got = top_features(values, ["a", "b", "c", "d"], 3)
    assert list(got) == ["a:0.5;d:0.1", ""]


def test_a_tol_below_float32_round_off_names_what_can_meet_it(models):
    """--tol 1e-9 on a float32 model failed with "raise --steps", which cannot help below float32 round-off."""
    model, data = models["single"]  # float32, the default
    res = run(["explain", model, data, "--tol", "1e-9", "-q"])
    assert_clean_error(res, "completeness check failed", "below the round-off of the network's float32 arithmetic",
                       "--dtype float64")
    assert "raise --steps" not in res.output
