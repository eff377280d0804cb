"""How `explain` and `info` print for a reader: titles that count the genes ranked, names from the data printed as
written (rich markup, mathtext in plots), no bootstrap stability from one patient, and info's width in a pipe
and a regression's R²."""

import json
from click.testing import CliRunner
import numpy as np

import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.cli import cli
from mlpcli.explain import explain, load_samples
from cli_helpers import run
from model_files import _trained
from tables import SAMPLE, make_table


FAST = ["--epochs", "3", "--hidden", "8", "-q"]


def _train(tmp, name: str, table: pd.DataFrame, *extra: str) -> tuple[str, str]:
    data, model = tmp / f"{name}.csv", tmp / f"{name}.mlp"
    table.to_csv(data, index=False)
    res = run(["train", str(data), "-o", str(model), *FAST, *extra])
    assert res.exit_code == 0, res.output
    return str(model), str(data)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A 2-member ensemble whose class and gene names hold rich markup and mathtext ("T[reg]", "[bold]B",
    "p$\\frac$q"), and a single network (bootstrap stability), on 12 genes."""
    tmp = tmp_path_factory.mktemp("review16_explain")
    table = make_table(n_patients=18, per_patient=2, n_features=12, seed=4, signal=3.0)
    table["label"] = table["label"].map({"typeA": "T[reg]", "typeB": "[bold]B", "typeC": "C"})
    table = table.rename(columns={"f00": "HLA-A", "f01": "p$\\frac$q", "f02": "gene[x]"})
    return {"ensemble": _train(tmp, "ensemble", table, "--folds", "2"),
            "single": _train(tmp, "single", table, "--folds", "1")}


def test_info_says_r2_is_the_targets_mean(tmp_path):
    table = make_table("regression", n_patients=24, per_patient=1, n_features=4)
    table["dose_mg"] = table["label"] * 100.0
    model, _ = _train(tmp_path, "two", table, "--target", "label,dose_mg", "--folds", "2")
    text = " ".join(run(["info", model]).stdout.replace("│", " ").split())
    assert "RMSE and MAE pooled over the 2 targets' units, R² the mean of the targets' R²" in text, text


# ── info in a pipe ───────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review16_info")
    return _train(tmp, "wide", make_table(n_patients=12, per_patient=2, n_features=400, seed=1), "--folds", "1",
                  "--hidden", "")[0]


def test_info_features_in_a_pipe_are_folded_not_every_row_padded(wide_model):
    """`info --features > file` gave every row of the table the width of the one-line list of all genes
    (10,000 columns at 2,000 genes: 220 kB of spaces for 13 rows)."""
    res = run(["info", wide_model, "--features"])
    assert res.exit_code == 0, res.output
    widths = [len(line) for line in res.stdout.splitlines()]
    assert max(widths) < 400, max(widths)
    assert "f399" in res.stdout and "f00," in res.stdout  # every name still listed
    plain = run(["info", wide_model]).stdout  # without --features each row stays on one line: as wide as that
    assert max(widths) <= max(len(line) for line in plain.splitlines()) + 10


def test_info_in_a_pipe_honours_columns(wide_model):
    """COLUMNS was ignored when standard output was not a terminal: `COLUMNS=100 mlpcli info m.mlp > log`
    wrote 270-character lines."""
    res = run(["info", wide_model], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    assert max(len(line) for line in res.stdout.splitlines()) <= 100


# ── explain ──────────────────────────────────────────────────────────────────────────────────────────────


def test_titles_count_the_genes_ranked_and_print_names_as_written(models, tmp_path):
    """--top 2 titled each class "top 2 of 2 genes" (read as a model of 2 genes), the class "T[reg]" was
    printed "T" and "[bold]B" as a bold "B" (rich markup), and the output file "run[2].csv" as "run.csv"."""
    out = tmp_path / "run[2].csv"
    res = run(["explain", models["ensemble"][0], models["ensemble"][1], "--top", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert "T[reg]: top 2 of 12 genes" in text and "[bold]B: top 2 of 12 genes" in text, text
    assert f"→ {out}" in text and out.exists()
    # one line whatever the console's width: a log can be grepped for it
    assert any(line.startswith("completeness:") and line.endswith("baseline mean") for line in text.splitlines())
    doc = json.loads(run(["explain", models["ensemble"][0], models["ensemble"][1], "--top", "2", "--json",
                          "-q"]).stdout)
    assert doc["n_features"] == 12
    assert isinstance(doc["warnings"], list) and isinstance(doc["notes"], list)  # the keys predict's and evaluate's hold


def test_a_class_from_one_patient_gets_no_bootstrap_stability(models):
    """A single network's class whose samples all come from one patient showed "top-3 overlap 1.00, Spearman
    1.00": every resample of one patient is that patient again, a perfect score from one piece of evidence."""
    model = model_io.load(models["single"][0])
    samples = load_samples(model, models["single"][1])
    first = samples.patients[samples.y == "C"][0]
    keep = (samples.y != "C") | (samples.patients == first)
    assert (samples.y[keep] == "C").sum() == 2  # two samples of one patient
    result = explain(model, samples.X[keep], samples.y[keep], top=3, bootstrap=5, patients=samples.patients[keep])
    st = result.stability["C"]
    assert st["mean_overlap"] is None and st["mean_spearman"] is None, st
    assert result.table[result.table["class"] == "C"]["member_overlap"].isna().all()
    assert any("no stability for C (one patient)" in n for n in result.notes), result.notes
    assert result.stability["T[reg]"]["mean_overlap"] is not None  # the other classes keep theirs


def test_a_plot_of_names_holding_dollar_signs_is_drawn(models, tmp_path):
    """A gene named "p$\\frac$q" (or a class with two "$") was parsed as mathtext and the plot failed with
    "ParseSyntaxException: Expected \\frac{num}{den}"."""
    plot = tmp_path / "genes.png"
    res = run(["explain", models["ensemble"][0], models["ensemble"][1], "--top", "12", "--plot", str(plot), "-q"])
    assert res.exit_code == 0, res.output
    assert plot.stat().st_size > 0


@pytest.fixture(scope="module")
def hidden_model(tmp_path_factory):
    return _trained(tmp_path_factory, "32")


def test_permutation_importance_of_a_shuffle_that_changes_nothing_is_exactly_zero(hidden_model):
    """One sample: every shuffle is the identity, yet every gene scored +2.5e-08 in every shuffle (the unshuffled
    outputs came from a product of another size, which rounds float32 otherwise). A gene whose weights are zero
    changes nothing either: its drops are rounding at most, not a drop in every shuffle."""
    from mlpcli import model_io
    from mlpcli.explain import permutation_importance

    m = model_io.load(hidden_model)
    frame = pd.read_csv(SAMPLE)
    X = frame[m.feature_names].iloc[:1]
    drops, _ = permutation_importance(m, X, frame["label"].iloc[:1], repeats=5, seed=0)
    scored = np.isfinite(drops)  # the sample's class (the others have no sample: NaN)
    assert scored.any() and np.all(drops[scored] == 0)
    W = m.members[0].network.parameters()["dense0.W"]
    W[:, 7] = 0  # the network's 8th input no longer reaches it
    gene = m.members[0].preprocessor.kept_features[7]
    X = frame[m.feature_names].iloc[:200]
    drops, _ = permutation_importance(m, X, frame["label"].iloc[:200], repeats=5, seed=0)
    j = m.feature_names.index(gene)
    assert np.all(np.abs(drops[:, j]) < 1e-6)
    assert not np.all(drops[:, j] > 0)


def test_explain_says_when_its_terminal_table_shows_fewer_genes_than_top(hidden_model):
    res = CliRunner().invoke(cli, ["explain", hidden_model, SAMPLE, "--top", "15"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "the first 10 of 15 ranked shown; -o FILE or --json holds all 15" in text


def test_explain_notes_training_rows_and_a_recalibration_its_logits_do_not_include(tmp_path):
    """Integrated gradients on the training table said nothing (permutation warns); on a recalibrated model the
    default --output logit is of the networks' logits, which the update does not change, without a word."""
    from test_risk_calibration import _cohort

    _cohort(400, 1).to_csv(tmp_path / "dev.csv", index=False)
    _cohort(300, 2, shift=-0.9).to_csv(tmp_path / "site.csv", index=False)
    assert run(["train", str(tmp_path / "dev.csv"), "--id", "pid", "--positive", "event", "--hidden", "8", "--folds",
                "2", "--epochs", "10", "-q", "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    own = json.loads(run(["explain", str(tmp_path / "m.mlp"), str(tmp_path / "dev.csv"), "--id", "pid", "--json",
                          "-q"]).stdout)
    assert any("all 400 samples are rows the model was trained on" in n and "fitted to" in n for n in own["notes"])
    new = json.loads(run(["explain", str(tmp_path / "m.mlp"), str(tmp_path / "site.csv"), "--id", "pid", "--json",
                          "-q"]).stdout)
    assert not any("trained on" in n for n in new["notes"])
    assert run(["recalibrate", str(tmp_path / "m.mlp"), str(tmp_path / "site.csv"), "--id", "pid", "--method",
                "intercept", "-o", str(tmp_path / "r.mlp"), "-q"]).exit_code == 0
    logit = json.loads(run(["explain", str(tmp_path / "r.mlp"), str(tmp_path / "site.csv"), "--id", "pid", "--json",
                            "-q"]).stdout)
    assert any("before the model's recalibration on site.csv" in n for n in logit["notes"]), logit["notes"]
    prob = json.loads(run(["explain", str(tmp_path / "r.mlp"), str(tmp_path / "site.csv"), "--id", "pid", "--output",
                           "prob", "--json", "-q"]).stdout)
    assert not any("before the model's recalibration" in n for n in prob["notes"])


def test_a_plot_that_cannot_be_written_leaves_no_ranking_behind(models, tmp_path, monkeypatch):
    """-o TABLE --plot PLOT: both or neither. A full disk under the plot left the ranking written before it (a tmpfs
    of 200 KB, or ulimit -f): the plot is written (to disk) first, the ranking then, and both put in place."""
    import errno
    import os

    real = os.fsync

    def fsync(fd):  # the disk fills up under the plot (its temporary file may have no name: told by its bytes)
        if os.pread(fd, 8, 0) == b"\x89PNG\r\n\x1a\n":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    table, plot = tmp_path / "genes.csv", tmp_path / "genes.png"
    res = run(["explain", models["ensemble"][0], models["ensemble"][1], "--top", "5", "-o", str(table), "--plot",
               str(plot), "-q"])
    assert res.exit_code == 1 and "genes.png" in res.output and "no space left" in res.output.lower(), res.output
    assert sorted(os.listdir(tmp_path)) == []
