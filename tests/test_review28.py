"""Review 28, by use: what a model fitted by L-BFGS shows in `diagnose` (its curves are per iteration, its weights the
last iterate's, not early stopping's)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from mlpcli.history import read_curves


@pytest.fixture(scope="module")
def lbfgs_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lbfgs")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=120) > 0, "a", "b")
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(8)])
    frame.insert(0, "label", y)
    frame.to_csv(tmp / "t.csv", index=False)
    for name, extra in (("lbfgs", ["--optimizer", "lbfgs"]), ("adam", ["--optimizer", "adam", "--epochs", "12"])):
        res = run(["train", str(tmp / "t.csv"), *extra, "--folds", "1", "--no-group", "--hidden", "4", "-q",
                   "-o", str(tmp / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    return tmp


def test_lbfgs_curves_are_iterations(lbfgs_model):
    """The panel said "13 epochs; weights kept from epoch 13" and the chart "kept epoch" for L-BFGS iterations."""
    c = read_curves(lbfgs_model / "lbfgs.mlp")
    assert c.step == "iteration" and any("per L-BFGS iteration" in n for n in c.notes)
    res = run(["diagnose", str(lbfgs_model / "lbfgs.mlp")])
    assert res.exit_code == 0, res.output
    assert f"{len(c.train)} iterations; weights kept from iteration {c.checkpoint_epoch}" in res.output
    assert f"kept iteration {c.checkpoint_epoch}" in res.output and "  iteration" in res.output
    doc = json.loads(run(["diagnose", str(lbfgs_model / "lbfgs.mlp"), "--json"]).output)
    assert any("L-BFGS" in n for n in doc["notes"])


def test_minibatch_curves_stay_epochs(lbfgs_model):
    c = read_curves(lbfgs_model / "adam.mlp")
    assert c.step == "epoch" and not any("L-BFGS" in n for n in c.notes)
    res = run(["diagnose", str(lbfgs_model / "adam.mlp")])
    assert res.exit_code == 0, res.output
    assert "12 epochs" in res.output and "iteration" not in res.output


# ── empty names and huge budgets (a fuzz of the options) ─────────────────────────────────────────────────


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(60, 5)), columns=[f"g{j}" for j in range(5)])
    frame.insert(0, "label", np.where(frame["g0"] > 0, "a", "b"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(60)])
    frame.to_csv(tmp / "t.csv", index=False)
    res = run(["train", str(tmp / "t.csv"), "--folds", "1", "--epochs", "2", "--hidden", "4", "--no-group", "-q",
               "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    return tmp


@pytest.mark.parametrize("args", [
    ["train", "{t}", "-o", ""], ["train", "{t}", "--history", ""], ["train", "{t}", "--oof", " "],
    ["cv", "{t}", "--oof", ""], ["tune", "{t}", "--grid", "lr=1e-3", "--results", ""],
    ["tune", "{t}", "--grid", "lr=1e-3", "--refit", "-o", ""], ["diagnose", "{m}", "--plot", ""],
    ["train", "{t}", "--config", ""],
], ids=lambda a: " ".join(a[:1] + a[-2:-1]))
def test_an_empty_output_name_is_a_usage_error(small, tmp_path, args):
    """--history "$H" and --oof "$O" with the variable unset wrote nothing and said nothing (exit 0); -o '' said
    "is a directory" (exit 1)."""
    args = [a.format(t=small / "t.csv", m=small / "m.mlp") for a in args]
    res = run(args + ["--epochs", "1"] if args[0] in ("train", "cv", "tune") else args)
    assert res.exit_code == 2, res.output
    assert "an empty file name" in res.output.splitlines()[-1]


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
@pytest.mark.parametrize("flag", ["--group", "--id", "--batch"])
def test_an_empty_column_name_is_a_usage_error(small, command, flag):
    """predict, evaluate and explain said "--group column '' not found" (exit 1) where train says what it is."""
    res = run([command, str(small / "m.mlp"), str(small / "t.csv"), flag, ""])
    assert res.exit_code == 2, res.output
    assert "an empty value (an unset shell variable?)" in res.output.splitlines()[-1]


def test_diagnose_an_empty_name(small):
    res = run(["diagnose", ""])
    assert res.exit_code == 1 and "the name given is empty" in res.output.splitlines()[-1]


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_huge_chunk_budget_is_a_usage_error(small, command):
    """--chunk-mb 1e308 was "internal error (OverflowError ...)" once counted in bytes."""
    res = run([command, str(small / "m.mlp"), str(small / "t.csv"), "--chunk-mb", "1e308"])
    assert res.exit_code == 2 and "--chunk-mb" in res.output
    assert run([command, str(small / "m.mlp"), str(small / "t.csv"), "--chunk-mb", "1e6"]).exit_code == 0


# ── numbers written with thousands separators ────────────────────────────────────────────────────────────


def _counts_with_separators(tmp_path, decimals: bool = False):
    rng = np.random.default_rng(0)
    y = np.where(rng.random(80) < 0.5, "A", "B")
    if decimals:  # decimal commas rounded to three places: every comma number in the thousands form too
        values = rng.normal(5, 2, size=(80, 4)).round(3)
        cells = {f"G{j}": [f"{v:.3f}".replace(".", ",") for v in values[:, j]] for j in range(4)}
    else:
        values = rng.poisson(np.where(y == "A", 600, 1800)[:, None] * np.ones((1, 4)))
        cells = {f"G{j}": [f"{v:,}" for v in values[:, j]] for j in range(4)}
    frame = pd.DataFrame(cells)
    frame["label"] = y
    path = tmp_path / "t.tsv"
    frame.to_csv(path, sep="\t", index=False)
    return path, values


def test_thousands_separators_are_not_read_as_decimal_commas(tmp_path):
    """A tab-separated table of counts written 619 and 1,798 trained (exit 0, a note) on 619 and 1.798: a
    thousandfold error in one column; --decimal . then advised writing '1.798'."""
    path, _ = _counts_with_separators(tmp_path)
    out = tmp_path / "m.mlp"
    base = ["train", str(path), "--no-group", "--folds", "1", "--epochs", "1", "-o", str(out)]
    res = run(base)
    assert res.exit_code == 1 and not out.exists()
    assert "look written with thousands separators" in res.output.splitlines()[-1]
    res = run(base + ["--decimal", "."])
    assert res.exit_code == 1 and "if the comma separates thousands, write it '1" in res.output
    # a genes x samples matrix with Entrez ids (whole numbers of 1,000 and more) in its first column: still refused
    rows = ["gene\t" + "\t".join(f"S{j}" for j in range(20))]
    rows += [f"{g}\t" + "\t".join(f"{(j * 397 + g) % 4900 + 100:,}" for j in range(20)) for g in (7157, 672, 675, 1956)]
    (tmp_path / "m.tsv").write_text("\n".join(rows) + "\n")
    res = run(["train", str(tmp_path / "m.tsv"), "--features-in-rows", "--no-group", "--epochs", "1",
               "-o", str(out)])
    assert res.exit_code == 1 and "look written with thousands separators" in res.output
    assert run(base + ["--decimal", "comma", "-q"]).exit_code == 0  # the user's word: decimal commas


def test_decimal_commas_to_three_places_still_read(tmp_path):
    path, values = _counts_with_separators(tmp_path, decimals=True)
    res = run(["train", str(path), "--no-group", "--folds", "1", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "numbers read with decimal commas" in res.output
    # beside a column of whole numbers below 1,000 (an age): decimal commas, as before
    rng = np.random.default_rng(1)
    rows = ["sample_id;age;g0;g1;label"] + [f"S{i};{rng.integers(30, 80)};{a:.3f};{b:.3f};{'AB'[i % 2]}".replace(".", ",")
                                           for i, (a, b) in enumerate(rng.uniform(2, 15, (40, 2)))]
    (tmp_path / "eu.csv").write_text("\n".join(rows) + "\n")
    res = run(["train", str(tmp_path / "eu.csv"), "--no-group", "--folds", "1", "--epochs", "1", "-o", str(tmp_path / "e.mlp")])
    assert res.exit_code == 0 and "numbers read with decimal commas ('" in res.output, res.output


def test_a_row_without_any_feature_value_is_refused(tmp_path):
    """A spreadsheet's blank lines below the data (",,,,") were predicted as samples from the training medians
    by a model trained with --impute (exit 0; a note counted the imputed values)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(5, 1, (100, 5)).round(3), columns=[f"G{i}" for i in range(5)])
    train_table = X.assign(label=np.where(X.G0 > 5, "A", "B"))
    train_table.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--impute", "median", "--epochs", "2", "--folds", "1", "--no-group",
                "-q", "-o", str(model)]).exit_code == 0
    (tmp_path / "new.csv").write_text(X.head(3).to_csv(index=False) + ",,,,\n,,,,\n")
    out = tmp_path / "p.csv"
    res = run(["predict", str(model), str(tmp_path / "new.csv"), "-o", str(out)])
    assert res.exit_code == 1 and not out.exists()
    assert "row 4 has no feature value (all 5 missing; 2 such rows" in res.output.splitlines()[-1]
    # a row with some values is imputed as before
    (tmp_path / "new.csv").write_text(X.head(3).to_csv(index=False) + "1.0,,,,\n")
    res = run(["predict", str(model), str(tmp_path / "new.csv"), "-o", str(out)])
    assert res.exit_code == 0 and len(pd.read_csv(out)) == 4


# ── labels and ids spelled in two Unicode forms ──────────────────────────────────────────────────────────


def _unicode_table(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"G{i}" for i in range(6)])
    frame.insert(0, "label", np.array(["Grade 1", "Grade 2", "Grade 3"])[np.arange(n) % 3])
    frame.insert(0, "patient_id", [f"Zoë_{i // 2:02d}" for i in range(n)])
    return frame


def test_labels_and_patients_in_two_unicode_forms_warn(tmp_path):
    """'Grade 1' with a non-breaking space trained as a class of its own, and a patient id typed (é composed)
    and pasted (decomposed) as two patients — no warning, where a stray space or letter case warns."""
    import unicodedata

    labels = _unicode_table()
    labels.loc[::5, "label"] = labels.loc[::5, "label"].str.replace(" ", "\u00a0")
    labels.to_csv(tmp_path / "labels.csv", index=False)
    res = run(["train", str(tmp_path / "labels.csv"), "--epochs", "1", "--folds", "1", "-o", str(tmp_path / "a.mlp")])
    assert res.exit_code == 0, res.output
    assert "classes in 'label' that differ only in letter case, spaces or Unicode form" in res.output
    groups = _unicode_table()
    groups.loc[1::2, "patient_id"] = groups.loc[1::2, "patient_id"].map(lambda s: unicodedata.normalize("NFD", s))
    groups.to_csv(tmp_path / "groups.csv", index=False)
    res = run(["train", str(tmp_path / "groups.csv"), "--epochs", "1", "--folds", "1", "-o", str(tmp_path / "b.mlp")])
    assert res.exit_code == 0, res.output
    assert "--group 'patient_id' holds ids that differ only in letter case, spaces or Unicode form" in res.output


def test_a_label_in_another_unicode_form_is_the_models_class(tmp_path):
    """evaluate on labels written decomposed ('Me\u0301tastase') against a model trained on composed ones refused
    "labels the model does not know: 'Métastase'; its classes are 'Métastase', ..." — the two look identical."""
    import unicodedata

    frame = _unicode_table()
    frame["label"] = np.array(["Métastase", "Primaire"])[np.arange(len(frame)) % 2]
    frame.to_csv(tmp_path / "nfc.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "nfc.csv"), "--epochs", "1", "--folds", "1", "-q", "-o", str(model)]).exit_code == 0
    frame["label"] = frame["label"].map(lambda s: unicodedata.normalize("NFD", s))
    frame.to_csv(tmp_path / "nfd.csv", index=False)
    res = run(["evaluate", str(model), str(tmp_path / "nfd.csv"), "--json"])
    assert res.exit_code == 0, res.output


def test_a_column_name_over_two_lines_reads_in_predict_as_in_train(tmp_path):
    """A quoted header cell with a line break (Excel's Alt+Enter) trained, but predict, reading the header line by
    line, could not read the model's own table ("lacks 17 of the 20 features ... is it the kind of table ..."),
    and info printed the name over two lines."""
    frame = _unicode_table(40).rename(columns={"G3": "G3\nrep2"})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--epochs", "1", "--folds", "1", "-q", "-o", str(model)]).exit_code == 0
    out = tmp_path / "p.csv"
    res = run(["predict", str(model), str(tmp_path / "t.csv"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out)) == 40
    # a row's error names its line below the two-line header: line 4 holds data row 2
    frame.loc[1, "G0"] = "x"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    res = run(["predict", str(model), str(tmp_path / "bad.csv"), "-o", str(out)])
    assert res.exit_code == 1 and "row 2" in res.output.splitlines()[-1]
    info = run(["info", str(model)])
    assert "'G3\\nrep2'" in info.output and "G3\nrep2" not in info.output


@pytest.mark.parametrize("args", [
    ["--target", "label", "--target", "label"], ["--drop", "G0", "--drop", "G0"], ["--drop", "label"],
    ["--task", "multiclass", "--pos-weight", "2"], ["--weight-decay", "1e308"],
], ids=lambda a: " ".join(a))
def test_option_conflicts_found_with_the_data_are_usage_errors(tmp_path, args):
    """The same conflict was exit 2 when both values were on the command line and exit 1 when one came from the
    data (an inferred task, an auto loss or learning rate), or for a name given twice."""
    frame = _unicode_table(40).assign(label=lambda f: np.where(np.arange(len(f)) % 2, "a", "b"))
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--epochs", "1", "--folds", "1", *args, "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 2, res.output
    assert not (tmp_path / "m.mlp").exists()


def test_regression_refuses_class_options_as_usage_errors(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd")).assign(label=rng.normal(size=60))
    frame.to_csv(tmp_path / "r.csv", index=False)
    for args in (["--class-weight", "balanced"], ["--positive", "1"]):
        res = run(["train", str(tmp_path / "r.csv"), "--no-group", "--epochs", "1", *args, "-o", str(tmp_path / "m.mlp")])
        assert res.exit_code == 2 and args[0] in res.output.splitlines()[-1], res.output


def test_a_column_name_holding_a_comma_is_explained(tmp_path):
    frame = _unicode_table(40).rename(columns={"label": "subtype, WHO 2016"})
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--target", "subtype, WHO 2016", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1
    assert "the column 'subtype, WHO 2016' holds a comma, which separates names in --target" in res.output


def test_auto_noise_that_resolves_to_none_is_not_described_as_noise():
    """--augment-noise auto on 20 features and 96 rows: the candidates note said "with input noise (--augment-noise
    auto)" for both while info said "input noise 0" (auto adds none where rows outnumber features, nor to the
    softmax regression)."""
    from dataclasses import replace

    from mlpcli.config import TrainOptions
    from mlpcli.model_selection.crossfit import portfolio

    auto = replace(TrainOptions(), augment_noise="auto")
    described = [c.describe() for c in portfolio(auto, 96, 20)]
    assert described == ["no hidden layer", "hidden 128"]
    wide = [c.describe() for c in portfolio(auto, 40, 2000)]  # p >> n: the hidden layer's noise is auto's
    assert wide[0].startswith("no hidden layer") and "input noise" not in wide[0]
    assert any("hidden 128 with input noise (--augment-noise auto)" == d for d in wide)


def test_evaluate_bootstrap_of_one_or_a_few_resamples(small):
    """--bootstrap 1 printed zero-width "95 % CI"s and blamed the metric for not containing its estimate."""
    res = run(["evaluate", str(small / "m.mlp"), str(small / "t.csv"), "--bootstrap", "1"])
    assert res.exit_code == 2 and "one resample gives no interval" in res.output
    res = run(["evaluate", str(small / "m.mlp"), str(small / "t.csv"), "--bootstrap", "5"])
    assert res.exit_code == 0 and "warning: --bootstrap 5: the 95 % intervals' ends are the extremes" in res.output
    assert "does not contain its estimate" not in res.output


def test_a_divergence_from_an_extreme_penalty_names_the_penalty(small):
    """"training diverged ...; lower --lr (now 0.003), or set --clip-norm" for a loss overflowed by --l1 1e308."""
    res = run(["train", str(small / "t.csv"), "--no-group", "--epochs", "2", "--hidden", "4", "--l1", "1e308",
               "-o", str(small / "x.mlp")])
    assert res.exit_code == 1
    assert "lower --l1 (now 1e+308), far beyond usual values" in res.output.splitlines()[-1]
    res = run(["train", str(small / "t.csv"), "--no-group", "--epochs", "2", "--pos-weight", "1e308",
               "-o", str(small / "x.mlp")])
    assert res.exit_code == 2 and "--pos-weight" in res.output.splitlines()[-1]


def test_the_missing_values_error_names_the_first(small, tmp_path):
    frame = pd.read_csv(small / "t.csv")
    frame.loc[6, "g2"] = np.nan
    frame.to_csv(tmp_path / "na.csv", index=False)
    res = run(["train", str(tmp_path / "na.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "the first in 'g2' at row 7 (id 's6')" in res.output.splitlines()[-1]


def test_messages_name_the_file_and_the_fix(small, tmp_path):
    """A value beyond float32 named no file; a column of quoted "8,000.0" was "must be numeric ... pass them to
    --drop"; a .gct table was told to grep out '#' lines, which leaves its sizes line."""
    frame = pd.read_csv(small / "t.csv")
    big = frame.copy()
    big.loc[4, "g1"] = 1e39
    big.to_csv(tmp_path / "big.csv", index=False)
    res = run(["train", str(tmp_path / "big.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and res.output.splitlines()[-1].startswith(f"Error: {tmp_path / 'big.csv'}: feature column 'g1'")
    thousands = frame.copy()
    thousands["g1"] = [f"{v * 1000 + 5000:,.1f}" for v in frame["g1"]]
    thousands.to_csv(tmp_path / "th.csv", index=False)
    res = run(["train", str(tmp_path / "th.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "holds numbers written with thousands separators" in res.output
    lines = ["#1.2", "3\t4", "Name\tDescription\tS0\tS1\tS2\tS3"] + [f"G{g}\tna\t1\t2\t3\t4" for g in range(3)]
    for name in ("x.gct", "x.tsv"):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        res = run(["train", str(tmp_path / name), "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
        assert res.exit_code == 1 and "GenePattern .gct" in res.output and "tail -n +3" in res.output


def test_a_space_separated_table_is_named(small, tmp_path):
    """R's write.table (spaces, quotes, row names): "--target column 'label' not found; available columns:
    'patient_id "batch" ...' (1 in all)" without saying why."""
    frame = pd.read_csv(small / "t.csv").head(20)
    lines = [" ".join(f'"{c}"' for c in frame.columns)]
    lines += [f'"{i + 1}" ' + " ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in row)
              for i, row in frame.iterrows()]
    (tmp_path / "r.txt").write_text("\n".join(lines) + "\n")
    res = run(["train", str(tmp_path / "r.txt"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "a space-separated file, as R's write.table writes by default?" in res.output


def test_a_stray_quote_in_a_header_name_is_not_a_multiline_cell(tmp_path):
    """A column named probe_5" made the line-by-line reader take the rest of the file for the header ("internal
    error (Error: new-line character seen in unquoted field ...)") in every command reading text."""
    rng = np.random.default_rng(0)
    rows = ['sample_id,g0,g1,probe_5",label'] + [f"S{i},{a:.3f},{b:.3f},{c:.3f},{'AB'[i % 2]}"
                                                 for i, (a, b, c) in enumerate(rng.normal(size=(40, 3)))]
    (tmp_path / "q.csv").write_text("\n".join(rows) + "\n")
    model = tmp_path / "q.mlp"
    assert run(["train", str(tmp_path / "q.csv"), "--epochs", "1", "--folds", "1", "--no-group", "-q",
                "-o", str(model)]).exit_code == 0
    res = run(["predict", str(model), str(tmp_path / "q.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == 40


def test_a_class_named_none_can_be_the_positive_class(tmp_path):
    """--positive None was read as "not given" (the option's none words), so the class 'None' could never be positive."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    frame = pd.DataFrame(X, columns=["g0", "g1", "g2"]).assign(label=np.where(X[:, 0] > 0, "None", "Response"))
    frame.to_csv(tmp_path / "r.csv", index=False)
    res = run(["train", str(tmp_path / "r.csv"), "--positive", "None", "--no-group", "--epochs", "1", "--folds", "1",
               "-o", str(tmp_path / "r.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(run(["info", str(tmp_path / "r.mlp"), "--json"]).output)
    assert info["positive_class"] == "None"


def test_superscripts_and_full_width_digits_are_other_labels(tmp_path):
    """Matching by NFKC read a footnote's 'Grade²' as the class 'Grade2' in evaluate, silently."""
    frame = _unicode_table()
    frame["label"] = np.array(["Grade2", "Grade3"])[np.arange(len(frame)) % 2]
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--epochs", "1", "--folds", "1", "-q", "-o", str(model)]).exit_code == 0
    frame["label"] = frame["label"].str.replace("Grade2", "Grade²")
    frame.to_csv(tmp_path / "e.csv", index=False)
    res = run(["evaluate", str(model), str(tmp_path / "e.csv")])
    assert res.exit_code == 1 and "labels the model does not know: 'Grade²'" in res.output


def test_the_missing_values_error_names_the_first_in_row_order(small, tmp_path):
    frame = pd.read_csv(small / "t.csv")
    frame.loc[4, "g3"] = np.nan
    frame.loc[7, "g1"] = np.nan
    frame.to_csv(tmp_path / "na.csv", index=False)
    res = run(["train", str(tmp_path / "na.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "the first in 'g3' at row 5 (id 's4')" in res.output.splitlines()[-1]


@pytest.mark.parametrize("command", ["evaluate", "explain"])
def test_an_empty_target_is_a_usage_error(small, command):
    res = run([command, str(small / "m.mlp"), str(small / "t.csv"), "--target", ""])
    assert res.exit_code == 2 and "an empty value" in res.output.splitlines()[-1]


def test_a_hold_out_divides_by_its_training_rows_shares(tmp_path):
    """train --folds 1: the balanced rule divided by the class shares of the whole table, validation rows included
    (a rare class of 12 samples from 2 patients: 4 % where the network trained on 6 of 237 rows, 2.5 %)."""
    from mlpcli import model_io

    rng = np.random.default_rng(12)
    labels = np.array(["A"] * 150 + ["B"] * 138 + ["R"] * 12)
    X = rng.normal(size=(300, 12))
    for k, c in enumerate("ABR"):
        X[labels == c, 3 * k:3 * k + 3] += 1.5
    patients = [f"P{i // 3}" for i in range(288)] + [f"Q{i % 2}" for i in range(12)]
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(12)]).assign(label=labels, patient_id=patients)
    frame.to_csv(tmp_path / "t.csv", index=False)
    model_path = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "t.csv"), "--folds", "1", "--epochs", "3", "--decision", "balanced", "-q",
               "-o", str(model_path), "--oof", str(tmp_path / "oof.csv")])
    assert res.exit_code == 0, res.output
    model = model_io.load(model_path)
    held_out = set(pd.read_csv(tmp_path / "oof.csv")["patient_id"])
    trained = frame[~frame["patient_id"].isin(held_out)]["label"].value_counts(normalize=True)
    assert np.allclose(model.decision.shares, [trained[c] for c in model.classes])


def test_no_correlated_pairs_from_a_handful_of_samples(tmp_path):
    """explain --class R (5 samples) named a dozen pairs of independent genes "one signal" (|Spearman| >= 0.9 over
    5 samples is chance for one pair in twelve)."""
    rng = np.random.default_rng(5)
    labels = np.array(["A"] * 150 + ["B"] * 145 + ["R"] * 5)
    X = rng.normal(size=(300, 30))
    for k, c in enumerate("ABR"):
        X[labels == c, 3 * k:3 * k + 3] += 1.5
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(30)]).assign(label=labels)
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "1", "--epochs", "5", "-q",
                "-o", str(model)]).exit_code == 0
    res = run(["explain", str(model), str(tmp_path / "t.csv"), "--class", "R", "--top", "15"])
    assert res.exit_code == 0, res.output
    assert "correlated genes ranked" not in res.output


def test_f1_macro_resamples_keep_a_predicted_absent_class():
    """A class absent from the cohort but predicted counts 0 in F1 macro's estimate; resamples that drew none of
    those rows averaged over the other classes only, so the interval reached 0.97 against an estimate of 0.64."""
    from mlpcli import metrics
    from mlpcli.metrics_resampled import ResampledMetrics, unit_multiplicities

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    P = np.full((120, 3), 0.05)
    P[np.arange(120), y] = 0.9
    P[:3] = [0.05, 0.05, 0.9]  # three rows taken for class 2, which the cohort lacks
    estimate = metrics.compute("multiclass", y, P, classes=[0, 1, 2])["f1_macro"]
    resampled = ResampledMetrics("multiclass", y, P, 0.5, np.arange(120), 120)
    M = unit_multiplicities(rng.integers(0, 120, size=(400, 120)), 120)
    draws = resampled.of(M)["f1_macro"]
    assert not np.isnan(draws).any()
    assert draws.max() <= 2 / 3 + 1e-9 and abs(np.median(draws) - estimate) < 0.02


# ── the same numbers whichever reader: a header with a line break, a genes x samples CSV ────────────────


def _halfway_values(n: int = 40, d: int = 4) -> np.ndarray:
    """Values exactly halfway between two float32 numbers, as float64: written as 17-digit decimals, a parser one
    unit in the last place off rounds them to another float32 (and the seen-rows check misses the row)."""
    a = np.random.default_rng(5).normal(size=(n, d)).astype(np.float32)
    return (a.astype(np.float64) + np.nextafter(a, np.float32(np.inf))) / 2


def _weights_bytes(path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return archive.read("weights.npz")


def test_a_header_with_a_line_break_reads_the_numbers_as_parquet_does(tmp_path):
    """Such a header sent train to pandas' whole-table parser, an ulp off for 17-digit decimals: the model differed
    from its parquet copy's, and predict recognised 12 of its 40 training rows."""
    x = _halfway_values()
    ids, labels = [f"s{i}" for i in range(40)], ["AB"[i % 2] for i in range(40)]
    with open(tmp_path / "h.csv", "w") as fh:
        fh.write('sample_id,label,g0,g1,g2,"g\n3"\n')
        for i in range(40):
            fh.write(f"{ids[i]},{labels[i]}," + ",".join("%.17g" % v for v in x[i]) + "\n")
    pd.DataFrame({"sample_id": ids, "label": labels, "g0": x[:, 0], "g1": x[:, 1], "g2": x[:, 2],
                  "g\n3": x[:, 3]}).to_parquet(tmp_path / "h.parquet", index=False)
    fast = ["--epochs", "2", "--folds", "1", "--no-group", "--seed", "0", "-q"]
    for name in ("h.csv", "h.parquet"):
        assert run(["train", str(tmp_path / name), *fast, "-o", str(tmp_path / f"{name}.mlp")]).exit_code == 0
    assert _weights_bytes(tmp_path / "h.csv.mlp") == _weights_bytes(tmp_path / "h.parquet.mlp")
    res = run(["predict", str(tmp_path / "h.csv.mlp"), str(tmp_path / "h.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "all 40 samples are rows the model was trained" in res.output


def test_a_genes_x_samples_csv_reads_the_numbers_as_its_parquet_copy(tmp_path):
    x = _halfway_values()
    ids = [f"s{i}" for i in range(40)]
    with open(tmp_path / "m.csv", "w") as fh:
        fh.write("gene," + ",".join(ids) + "\n")
        for j in range(4):
            fh.write(f"g{j}," + ",".join("%.17g" % x[i, j] for i in range(40)) + "\n")
    pd.DataFrame({"gene": [f"g{j}" for j in range(4)], **{s: x[i] for i, s in enumerate(ids)}}).to_parquet(
        tmp_path / "m.parquet", index=False)
    pd.DataFrame({"sample_id": ids, "label": ["AB"[i % 2] for i in range(40)]}).to_csv(tmp_path / "s.csv", index=False)
    fast = ["--features-in-rows", "--samples", str(tmp_path / "s.csv"), "--epochs", "2", "--folds", "1", "--no-group",
            "--seed", "0", "-q"]
    for name in ("m.csv", "m.parquet"):
        assert run(["train", str(tmp_path / name), *fast, "-o", str(tmp_path / f"{name}.mlp")]).exit_code == 0
    assert _weights_bytes(tmp_path / "m.csv.mlp") == _weights_bytes(tmp_path / "m.parquet.mlp")


@pytest.mark.parametrize("token", ["nA", "NuLL", "-NAN", "+NAN", "n/A", "nAn"])
def test_a_missing_marker_in_any_case_or_sign(small, tmp_path, token):
    frame = pd.read_csv(small / "t.csv").astype({"g2": object})
    frame.loc[3, "g2"] = token
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "missing values in 1 feature column: 'g2' (1)" in res.output.splitlines()[-1]


def test_an_h5ad_cell_error_names_the_file(tmp_path):
    """A .h5ad with a missing label: "Error: target has missing values ..." named no file (a CSV's does)."""
    ad = pytest.importorskip("anndata")
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"cell_type": ["a", "b"] * 30}, index=[f"c{i}" for i in range(60)])
    obs.loc["c3", "cell_type"] = np.nan
    ad.AnnData(X=rng.normal(size=(60, 10)).astype(np.float32), obs=obs).write_h5ad(tmp_path / "na.h5ad")
    res = run(["train", str(tmp_path / "na.h5ad"), "--target", "cell_type", "--epochs", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1
    assert res.output.splitlines()[-1].startswith(f"Error: {tmp_path / 'na.h5ad'}: target has missing values")


def test_sample_ids_in_two_unicode_forms_are_explained(tmp_path):
    """A matrix whose headers hold decomposed accents and a sheet typed with composed ones: "no sample ... has a row
    in --samples; the table's ids look like 'Zoë_0', ..., the sheet's like 'Zoë_0', ..." — the same on screen."""
    import unicodedata

    rng = np.random.default_rng(0)
    ids = [f"Zoë_{i}" for i in range(30)]
    matrix = pd.DataFrame(rng.normal(size=(6, 30)), index=[f"G{j}" for j in range(6)],
                          columns=[unicodedata.normalize("NFD", s) for s in ids])
    matrix.index.name = "gene"
    matrix.to_csv(tmp_path / "m.csv")
    pd.DataFrame({"sample_id": ids, "label": ["ab"[i % 2] for i in range(30)]}).to_csv(tmp_path / "s.csv", index=False)
    res = run(["train", str(tmp_path / "m.csv"), "--features-in-rows", "--samples", str(tmp_path / "s.csv"),
               "--no-group", "--epochs", "1", "-o", str(tmp_path / "x.mlp")])
    assert res.exit_code == 1
    last = res.output.splitlines()[-1]
    assert "Unicode form" in last and "'Zoe\\u0308_0'" in last


def test_tune_grid_settings_that_do_not_apply_are_usage_errors(tmp_path):
    """A grid setting that cannot apply to the data (class weights on a regression target) was exit 1 where train's
    --class-weight is now exit 2; class_weight=balanced,none (',' where '|' separates class-weight values) said
    "got 'balanced'"."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd")).assign(label=rng.normal(size=60))
    frame.to_csv(tmp_path / "r.csv", index=False)
    res = run(["tune", str(tmp_path / "r.csv"), "--no-group", "--grid", "class_weight=balanced|none", "--epochs", "1",
               "--folds", "2"])
    assert res.exit_code == 2 and "does not fit the data: --class-weight needs a classification target" in res.output
    frame["label"] = np.where(frame["a"] > 0, "x", "y")
    frame.to_csv(tmp_path / "c.csv", index=False)
    res = run(["tune", str(tmp_path / "c.csv"), "--no-group", "--grid", "class_weight=balanced,none", "--epochs", "1"])
    assert res.exit_code == 2 and "'|' separates class-weight values" in res.output.splitlines()[-1]


def test_predict_says_once_that_a_sheets_target_is_ignored(tmp_path):
    """predict with --samples noted both "ignored the target column 'label' (not needed to predict)" and "--samples
    ...: ignored 1 column that takes no role: 'label' (... --target ... to use one)"."""
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(40)]
    matrix = pd.DataFrame(rng.normal(size=(6, 40)), index=[f"G{j}" for j in range(6)], columns=ids)
    matrix.index.name = "gene"
    matrix.to_csv(tmp_path / "m.csv")
    pd.DataFrame({"sample_id": ids, "label": ["ab"[i % 2] for i in range(40)]}).to_csv(tmp_path / "s.csv", index=False)
    sheet = ["--features-in-rows", "--samples", str(tmp_path / "s.csv")]
    model = tmp_path / "x.mlp"
    assert run(["train", str(tmp_path / "m.csv"), *sheet, "--no-group", "--epochs", "1", "--folds", "1", "-q",
                "-o", str(model)]).exit_code == 0
    res = run(["predict", str(model), str(tmp_path / "m.csv"), *sheet, "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "ignored the target column 'label'" in res.output and "no role: 'label'" not in res.output


def test_an_empty_data_name_beside_a_model_file(tmp_path, monkeypatch):
    """`mlpcli train "$DATA"` (unset) in a directory holding model.mlp said "--out model.mlp is also the input DATA's
    model.mlp": the empty name resolved to the directory, whose files were taken for a 10x input's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.mlp").write_bytes(b"x")
    res = run(["train", ""])
    assert res.exit_code == 1 and "table file not found: the name given is empty" in res.output.splitlines()[-1]
