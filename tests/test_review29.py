"""Review 29, by use: what `diagnose` reads from a history file and the faults this session's reviews found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from mlpcli.history import read_curves


@pytest.fixture(scope="module")
def histories(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("histories")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=120) > 0, "a", "b")
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(8)])
    frame.insert(0, "label", y)
    frame.to_csv(tmp / "t.csv", index=False)
    for name, extra in (("lbfgs", ["--optimizer", "lbfgs"]), ("adam", ["--optimizer", "adam", "--epochs", "12"])):
        res = run(["train", str(tmp / "t.csv"), *extra, "--folds", "1", "--no-group", "--hidden", "4", "-q",
                   "--history", str(tmp / f"{name}.csv"), "-o", str(tmp / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    return tmp


def test_an_lbfgs_history_file_is_read_in_iterations(histories):
    """The model file said iterations; its --history file, diagnosed on its own, said epochs."""
    c = read_curves(histories / "lbfgs.csv")
    assert c.step == "iteration" and any("per L-BFGS iteration" in n for n in c.notes)
    res = run(["diagnose", str(histories / "lbfgs.csv")])
    assert res.exit_code == 0, res.output
    assert f"{len(c.train)} iterations" in res.output


def test_a_minibatch_history_file_and_a_hand_made_one_stay_epochs(histories, tmp_path):
    assert read_curves(histories / "adam.csv").step == "epoch"
    # a table of one's own, with no lr column and none of train's bookkeeping, is not taken for L-BFGS
    pd.read_csv(histories / "adam.csv")[["epoch", "train_loss", "val_loss"]].to_csv(tmp_path / "own.csv", index=False)
    c = read_curves(tmp_path / "own.csv")
    assert c.step == "epoch" and not any("L-BFGS" in n for n in c.notes)


# ── labels that are one number written differently ───────────────────────────────────────────────────────


def _labelled(path, labels, n=60):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"g{j}" for j in range(4)])
    frame.insert(0, "label", [labels[i % len(labels)] for i in range(n)])
    if str(path).endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_leading_zero_keeps_labels_as_written_beside_a_decimal_one(tmp_path, suffix):
    """1, 01 and 1.0 in a CSV label column were read as numbers: one class '1.0' ("nothing to learn"), while 1 and
    01 alone were two classes and the same table as parquet text three. Now three classes in both, with a warning."""
    from mlpcli.data import load_dataset

    ds, _ = load_dataset(str(_labelled(tmp_path / f"t{suffix}", ["1", "01", "1.0"])), no_group=True)
    assert sorted(map(str, ds.classes)) == ["01", "1", "1.0"]
    assert any("one number written differently: '01', '1', '1.0'" in w and "leading zero" in w for w in ds.warnings)


def test_labels_one_number_apart_warn_and_distinct_numbers_do_not(tmp_path):
    from mlpcli.data import load_dataset

    ds, _ = load_dataset(str(_labelled(tmp_path / "t.csv", ["1", "01"])), no_group=True)
    assert sorted(map(str, ds.classes)) == ["01", "1"]
    assert any("'01', '1'" in w for w in ds.warnings)
    ds, _ = load_dataset(str(_labelled(tmp_path / "codes.csv", ["01", "02", "10"])), no_group=True)
    assert sorted(map(str, ds.classes)) == ["01", "02", "10"]
    assert not any("written differently" in w for w in ds.warnings)
    # a number without a leading zero beside floats is still a number (a regression target keeps 05.5 and 48.0)
    ds, _ = load_dataset(str(_labelled(tmp_path / "age.csv", [str(v) for v in np.linspace(20, 80, 60)] + ["05.5"],
                                        n=61)),
                         no_group=True)
    assert ds.task == "regression"


def test_one_number_written_two_ways_says_so_when_it_is_the_only_class(tmp_path):
    res = run(["train", str(_labelled(tmp_path / "t.csv", ["1", "1.0"])), "--no-group", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "1 and 1.0 are one value" in res.output and not (tmp_path / "m.mlp").exists()


# ── outputs written nameless until whole ─────────────────────────────────────────────────────────────────


def test_an_output_is_whole_with_its_permissions_whichever_way_its_temporary_file_is_named(tmp_path, monkeypatch):
    import os
    import stat

    from mlpcli import fileio

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    fileio.atomic_write(target, lambda fh: fh.write(b"x" * 3_000_000))  # nameless, then named, then renamed
    assert target.read_bytes() == b"x" * 3_000_000 and stat.S_IMODE(target.stat().st_mode) == 0o600
    if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):  # named by its link, not copied (os.link
        assert fileio.UNNAMED_TEMPORARIES  # without a directory descriptor called link(): a cross-device error)
    # where /proc refuses the link, the content is copied into a named temporary file, and later outputs are
    # written named from the start
    monkeypatch.setattr(fileio, "UNNAMED_TEMPORARIES", True)
    real_link = os.link

    def refused(src, dst, **kw):
        if str(src).startswith("/proc/"):
            raise PermissionError(1, "Operation not permitted")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", refused)
    fileio.atomic_write(tmp_path / "new.bin", lambda fh: fh.write(b"y" * 2_500_000))
    assert (tmp_path / "new.bin").read_bytes() == b"y" * 2_500_000
    assert fileio.UNNAMED_TEMPORARIES is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin", "out.bin"]


def test_a_failed_write_leaves_nothing_and_the_old_file_untouched(tmp_path):
    from mlpcli import fileio

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def broken(fh):
        fh.write(b"partial")
        raise RuntimeError("the writer failed")

    with pytest.raises(RuntimeError):
        fileio.atomic_write(target, broken)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


# ── a gene without a value in any row of a new cohort ────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def imputing(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("imputing")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(160, 20))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(20)])
    frame.insert(0, "label", np.where(X[:, 0] + X[:, 1] > 0, "a", "b"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(160)])
    frame.iloc[:120].to_csv(tmp / "train.csv", index=False)
    cohort = frame.iloc[120:].drop(columns="label")
    cohort.to_csv(tmp / "cohort.csv", index=False)
    for name, extra in (("impute", ["--impute", "median"]), ("plain", [])):
        res = run(["train", str(tmp / "train.csv"), *extra, "--folds", "1", "--no-group", "--hidden", "4",
                   "--epochs", "5", "-q", "-o", str(tmp / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    unmeasured = cohort.copy()
    unmeasured[["g0"]] = np.nan
    unmeasured.to_csv(tmp / "one_unmeasured.csv", index=False)
    unmeasured[["g1", "g2", "g3"]] = np.nan  # 4 of 20: 20 %
    unmeasured.to_csv(tmp / "four_unmeasured.csv", index=False)
    return tmp


def test_an_imputing_model_warns_of_a_gene_never_measured_and_keeps_it_out_of_the_shift_check(imputing, tmp_path):
    """A model trained with --impute filled a column without a value in any row from the training medians, exit 0
    with only a count of imputed values; the shift check then called the gene's spread x0 a shift."""
    out = tmp_path / "p.csv"
    res = run(["predict", str(imputing / "impute.mlp"), str(imputing / "one_unmeasured.csv"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 of the 20 features the model uses (5 %) have no value in any of its 40 rows: 'g0'" in res.output
    assert "imputed with their training medians in every row" in res.output
    assert "of the 19 features shifted" in res.output  # judged without it
    assert len(pd.read_csv(out)) == 40


def test_more_never_measured_genes_than_max_missing_is_an_error_until_raised(imputing, tmp_path):
    out = tmp_path / "p.csv"
    res = run(["predict", str(imputing / "impute.mlp"), str(imputing / "four_unmeasured.csv"), "-o", str(out)])
    assert res.exit_code == 1 and not out.exists()
    assert "4 of the 20 features the model uses (20 %) have no value in any of its 40 rows" in res.output
    assert "--max-missing 0.2" in res.output
    res = run(["predict", str(imputing / "impute.mlp"), str(imputing / "four_unmeasured.csv"), "-o", str(out),
               "--max-missing", "0.2"])
    assert res.exit_code == 0, res.output
    assert out.exists() and "predictions rest on the other 16" in res.output
    # a model without --impute: --max-missing still needs --fill-missing mean
    res = run(["predict", str(imputing / "plain.mlp"), str(imputing / "cohort.csv"), "--max-missing", "0.2"])
    assert res.exit_code == 2 and "pass --fill-missing mean too" in res.output


def test_explain_leaves_a_never_measured_gene_out_and_a_plain_model_says_how_to_drop_it(imputing, tmp_path):
    from mlpcli.explain.ranking import load_samples
    from mlpcli.model_io import load

    samples = load_samples(load(imputing / "impute.mlp"), str(imputing / "one_unmeasured.csv"))
    assert "g0" in samples.filled and any("have no value in any of its 40 rows: 'g0'" in w for w in samples.warnings)
    res = run(["predict", str(imputing / "plain.mlp"), str(imputing / "one_unmeasured.csv"), "-o",
               str(tmp_path / "p.csv")])
    assert res.exit_code == 1 and not (tmp_path / "p.csv").exists()
    assert "'g0' has a missing value at row 1" in res.output
    assert "if the column holds no value anywhere (a gene the cohort's assay did not measure), remove it and pass " \
           "--fill-missing mean" in res.output
    # only the first rows empty, read in pieces: no word of an unmeasured gene
    cohort = pd.read_csv(imputing / "cohort.csv")
    cohort.loc[:2, "g0"] = np.nan
    cohort.to_csv(tmp_path / "first3.csv", index=False)
    res = run(["predict", str(imputing / "plain.mlp"), str(tmp_path / "first3.csv"), "-o", str(tmp_path / "p.csv"),
               "--chunksize", "10"])
    assert res.exit_code == 1 and "missing value at row 1" in res.output


# ── gene symbols a spreadsheet turned into dates ─────────────────────────────────────────────────────────


def test_symbols_turned_into_dates_are_named_beside_the_missing_genes(tmp_path):
    """A cohort opened in Excel lost SEPT1, MARCH1 and OCT4 to '1-Sep', '1-Mar' and '4-Oct': the error asked to
    add the genes (and --fill-missing mean filled them) without a word about the date columns beside them."""
    rng = np.random.default_rng(4)
    genes = ["SEPT1", "MARCH1", "OCT4"] + [f"G{j}" for j in range(27)]
    X = rng.normal(size=(100, 30))
    frame = pd.DataFrame(X, columns=genes)
    frame.insert(0, "label", np.where(X[:, 0] - X[:, 2] > 0, "a", "b"))
    frame.to_csv(tmp_path / "train.csv", index=False)
    res = run(["train", str(tmp_path / "train.csv"), "--folds", "1", "--no-group", "--hidden", "4", "--epochs", "3",
               "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    frame.drop(columns="label").rename(columns={"SEPT1": "1-Sep", "MARCH1": "Mar-01", "OCT4": "2024-10-04"}).to_csv(
        tmp_path / "excel.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "excel.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 1
    assert ("the table has '1-Sep' for 'SEPT1', 'Mar-01' for 'MARCH1', '2024-10-04' for 'OCT4': gene symbols a "
            "spreadsheet program turned into dates") in res.output
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "excel.csv"), "-o", str(tmp_path / "p.csv"),
               "--fill-missing", "mean", "--max-missing", "0.2"])
    assert res.exit_code == 0 and "'1-Sep' for 'SEPT1'" in res.output
    # dates that match no missing symbol are not taken for one
    frame.drop(columns="label").rename(columns={"G0": "1-Sep"}).to_csv(tmp_path / "dates.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "dates.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 1 and "turned into dates" not in res.output


def test_a_second_spelling_of_a_gene_the_table_has_exactly_is_warned_not_called_unused(imputing, tmp_path):
    """'g0.13' beside 'g0' was "ignored ... a column the model does not use"; it is another version of a gene the
    model uses, and only the exact one is read."""
    cohort = pd.read_csv(imputing / "cohort.csv")
    cohort["G1"] = cohort["g1"] * 10
    cohort.to_csv(tmp_path / "twins.csv", index=False)
    out = tmp_path / "p.csv"
    res = run(["predict", str(imputing / "plain.mlp"), str(tmp_path / "twins.csv"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 column spelt like a model feature it also has exactly: 'G1' (beside 'g1'); the exact one is used" \
        in res.output
    base = tmp_path / "base.csv"
    assert run(["predict", str(imputing / "plain.mlp"), str(imputing / "cohort.csv"), "-o", str(base)]).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(base))


def test_drop_of_a_file_column_in_the_genes_by_samples_layout_says_what_drop_names(imputing, tmp_path):
    cohort = pd.read_csv(imputing / "cohort.csv").set_index("sample_id").T
    cohort.insert(0, "symbol", [f"S{j}" for j in range(len(cohort))])
    cohort.rename_axis("gene").to_csv(tmp_path / "t.csv")
    res = run(["predict", str(imputing / "plain.mlp"), str(tmp_path / "t.csv"), "--features-in-rows", "--drop",
               "symbol", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "--drop 'symbol' names none of the file's rows" in res.output and "cut -d, -f1,3-" in res.output


def test_predict_names_an_ignored_unnamed_first_column_as_row_names(imputing, tmp_path):
    """The note read "ignored 1 column the model does not use: ''"."""
    cohort = pd.read_csv(imputing / "cohort.csv")
    cohort.index = [f"r{i}" for i in range(len(cohort))]
    cohort.to_csv(tmp_path / "named_rows.csv")
    res = run(["predict", str(imputing / "plain.mlp"), str(tmp_path / "named_rows.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "ignored 1 column the model does not use: the unnamed column 1 (row names; the ids are read from" in res.output
    assert pd.read_csv(tmp_path / "p.csv")["sample_id"].tolist() == cohort["sample_id"].tolist()


# ── diagnose on real overfitting runs ────────────────────────────────────────────────────────────────────


def _history_file(path, train, val):
    pd.DataFrame({"epoch": np.arange(1, len(train) + 1), "train_loss": train, "val_loss": val}).to_csv(path,
                                                                                                       index=False)
    return str(path)


def _wide_net_curves():
    """A wide network on p >> n: validation lowest at epoch 1, climbing steeply, a later shallow dip, then up."""
    e = np.arange(1, 301)
    train = 0.75 * np.exp(-(e - 1) / 0.5) + 1e-6
    val = np.where(e <= 9, 1.15 + (2.83 - 1.15) * (e - 1) / 8, 2.83 - 0.69 * np.exp(-((e - 35) / 15.0) ** 2) * 1.0)
    val = np.where(e > 35, 2.14 + (3.06 - 2.14) * (e - 35) / 265, val)
    return train, val + 0.002 * np.sin(e)


def test_overfit_quotes_the_validation_minimum_at_epoch_1_not_a_later_dip(tmp_path):
    """The smoother's cut window at the start hid an epoch-1 minimum: "lowest around epoch 36 (2.155)" while the
    model kept epoch 1 (1.15)."""
    import json

    train, val = _wide_net_curves()
    res = run(["diagnose", _history_file(tmp_path / "h.csv", train, val), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    ev = doc["evidence"]
    assert doc["label"] == "overfit" and ev["divergence_epoch"] <= 2 and ev["best_val"] < 1.3, ev


def test_overfit_says_when_validation_never_beat_no_skill(tmp_path):
    import json

    train, val = _wide_net_curves()
    path = _history_file(tmp_path / "h.csv", train, val)
    below = json.loads(run(["diagnose", path, "--baseline", "0.67", "--json"]).output)
    assert below["evidence"]["best_distance_from_baseline"] < 0
    assert "the network learned nothing that carries over to new samples" in below["summary"]
    assert below["advice"][0].startswith("Validation never beat the no-skill loss")
    above = json.loads(run(["diagnose", path, "--baseline", "5", "--json"]).output)  # it did beat this one
    assert above["evidence"]["best_distance_from_baseline"] > 0
    assert "learned nothing" not in above["summary"] and not above["advice"][0].startswith("Validation never")


def test_the_kept_epoch_marker_never_hides_an_axis_number():
    from mlpcli.plotting import terminal_chart

    e = np.arange(1, 31)
    for best in (1, 30):
        chart = terminal_chart(list(0.5 / e), list(0.6 / e), best_epoch=best)
        axis = next(line for line in chart.splitlines() if "▲" in line)
        assert " 1" in " " + axis.replace("▲", " ") and "30" in axis, axis


# ── out of memory, at scale ──────────────────────────────────────────────────────────────────────────────


def test_every_command_that_can_run_out_of_memory_names_its_own_remedies():
    """The error named --chunk-mb to train and --hidden, --batch-size, --top-var and --chunk-mb to explain, options
    neither has."""
    import click

    from mlpcli.cli import cli
    from mlpcli.cli._common import MEMORY_REMEDIES

    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        remedy = MEMORY_REMEDIES.get(command.callback.__name__)
        if name == "info":
            continue
        assert remedy is not None, name
        offered = {p.opts[0] for p in command.params if p.opts and p.opts[0].startswith("--")}
        for option in {w.strip("(),;:") for w in remedy.split() if w.startswith(("--", "(--"))}:
            assert option in offered, (name, option)


def test_train_out_of_memory_names_train_options(tmp_path, monkeypatch):
    from mlpcli import pipeline

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(pipeline, "train_dataset", no_memory)
    _labelled(tmp_path / "t.csv", ["a", "b"])
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "out of memory" in res.output, res.output
    assert "--n-jobs 1" in res.output and "--chunk-mb" not in res.output


# ── progress of long runs ────────────────────────────────────────────────────────────────────────────────


def test_train_logs_progress_at_least_once_a_minute(tmp_path, monkeypatch):
    """In a log (no terminal) train printed a line per run and every 25 epochs: a wide network on 40,000 cells was
    silent for minutes. Now also whenever a minute has passed since the last line."""
    from mlpcli.cli import train as train_cli

    path = _labelled(tmp_path / "t.csv", ["a", "b"])
    args = ["train", str(path), "--no-group", "--folds", "1", "--hidden", "4", "--epochs", "6", "--patience", "50",
            "-o", str(tmp_path / "m.mlp")]
    quiet = run(args)
    assert quiet.exit_code == 0 and quiet.output.count("network: epoch") == 1, quiet.output
    monkeypatch.setattr(train_cli._Progress, "SECONDS", 0.0)  # every epoch is a minute later
    chatty = run(args)
    assert chatty.exit_code == 0, chatty.output
    assert [f"network: epoch {k} " in chatty.output for k in range(1, 7)] == [True] * 6, chatty.output


def test_the_plan_line_says_why_a_large_table_gets_one_network(tmp_path):
    rng = np.random.default_rng(5)
    n = 20_001
    frame = pd.DataFrame(rng.normal(size=(n, 3)).astype(np.float32), columns=["g0", "g1", "g2"])
    frame.insert(0, "label", np.where(frame["g0"] > 0, "a", "b"))
    frame.to_parquet(tmp_path / "big.parquet")
    res = run(["train", str(tmp_path / "big.parquet"), "--no-group", "--hidden", "", "--epochs", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    plan = next(line for line in res.output.splitlines() if "training/held out" in line)
    assert "one network, not 5 members: more than 20,000 samples (--folds to choose)" in plan


def test_cv_logs_a_line_while_no_fold_finishes(tmp_path, monkeypatch):
    """`cv` on a wide table printed "3 fits in this process" and then nothing for minutes in a batch job's log."""
    from mlpcli.cli import cv as cv_cli

    monkeypatch.setattr(cv_cli.FitProgress, "SECONDS", 0.05)
    path = _labelled(tmp_path / "t.csv", ["a", "b"], n=80)
    res = run(["cv", str(path), "--no-group", "--folds", "2", "--hidden", "64", "--epochs", "300", "--patience",
               "300", "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    assert "folds: 0/2 done, running for 0 min" in res.output and "folds: 2/2 done" in res.output


def test_a_temperature_at_its_bottom_on_near_certain_held_out_calls_is_not_called_a_want_of_correction():
    from mlpcli.calibration import LOG_T_BOUNDS, bound_note

    low = float(np.exp(LOG_T_BOUNDS[0]))
    assert "more underconfident than it can correct" in bound_note(low, 0.2)
    assert "more underconfident" not in bound_note(low, 4.5e-5) and "nothing there to correct" in bound_note(low, 4.5e-5)
    assert "overconfident than it can correct" in bound_note(float(np.exp(LOG_T_BOUNDS[1])), 1e-5)
    assert bound_note(1.0, 1e-5) is None


# ── a batch confined to the held-out rows ────────────────────────────────────────────────────────────────


def test_a_validation_table_shifted_like_a_batch_is_warned_about_and_a_plain_one_is_not(tmp_path):
    """A batch effect confined to the validation patients made the validation loss climb: `train` and `diagnose`
    said overfit, and following their remedies made it worse. `train` now says the held-out rows differ."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 30))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(30)])
    frame.insert(0, "label", np.where(X[:, 0] + X[:, 1] > 0, "a", "b"))
    frame.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "same.csv", index=False)
    shifted = frame.iloc[200:].copy()
    shifted.iloc[:, 1:] += rng.normal(1.5, 0.5, size=30)  # every gene moved by its own offset
    shifted.to_csv(tmp_path / "batch.csv", index=False)
    common = ["--no-group", "--hidden", "8", "--epochs", "20", "-o", str(tmp_path / "m.mlp")]
    res = run(["train", str(tmp_path / "train.csv"), "--val-data", str(tmp_path / "batch.csv"), *common])
    assert res.exit_code == 0, res.output
    assert "the --val-data table differs from the training rows as a new cohort's would" in res.output
    assert "cv --leave-batch-out" in res.output
    res = run(["diagnose", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0 and "the validation rows (" in res.output and "new cohort's would" in res.output
    res = run(["train", str(tmp_path / "train.csv"), "--val-data", str(tmp_path / "same.csv"), *common])
    assert res.exit_code == 0 and "new cohort's would" not in res.output, res.output
    res = run(["diagnose", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0 and "new cohort's would" not in res.output


def test_the_members_whose_held_out_rows_are_shifted_are_named():
    from types import SimpleNamespace

    from mlpcli.model_selection.crossfit import held_out_shift_warnings

    def member(share):
        return SimpleNamespace(val_shift={"shifted": share > 0.1, "mean_shifted": share, "features": 50,
                                          "most_shifted": ["g3", "g7"]})

    (one,) = held_out_shift_warnings([member(0.9), member(0.0), member(0.02)])
    assert one.startswith("member 1's held-out rows differ from its training rows") and "90% of the 50" in one
    (two,) = held_out_shift_warnings([member(0.5), member(0.0), member(0.9)])
    assert two.startswith("members 1 and 3's held-out rows differ from their training rows") and "90%" in two
    assert held_out_shift_warnings([member(0.05), member(0.0)]) == []


def _random_labels(path, n: int, d: int, seed: int):
    """A table of n rows of d Gaussian features and labels a/b drawn at random (no signal), written to path;
    (the frame, its features)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(d)])
    frame.insert(0, "label", rng.choice(["a", "b"], size=n))
    frame.to_csv(path, index=False)
    return frame, X


def test_learning_curve_on_labels_without_signal_says_so_not_a_more_flexible_model(tmp_path):
    """Validation at chance at every size was answered "Both bias and variance ... a more flexible model"."""
    frame, X = _random_labels(tmp_path / "noise.csv", 240, 20, seed=7)
    frame["label"] = np.where(X[:, 0] > 0, "a", "b")
    frame.to_csv(tmp_path / "signal.csv", index=False)
    import json

    verdicts = {}
    for name in ("noise", "signal"):
        res = run(["diagnose", "--learning-curve", str(tmp_path / f"{name}.csv"), "--no-group", "--fractions",
                   "0.5,1", "--hidden", "64", "--epochs", "60", "--n-jobs", "1", "--json"])
        assert res.exit_code == 0, res.output
        verdicts[name] = json.loads(res.output[res.output.index("{"):])["bias_variance"]
    # 48 validation samples: chance reaches 0.64 at two standard errors, so the verdict is said to be tentative
    assert verdicts["noise"]["verdict"] != "no_signal"
    assert "within two standard errors of chance" in verdicts["noise"]["caveat"]
    assert "mlpcli cv" in verdicts["noise"]["caveat"]
    assert verdicts["signal"]["verdict"] != "no_signal" and "standard errors" not in (verdicts["signal"]["caveat"] or "")


def test_learning_curve_on_many_validation_samples_without_signal_says_no_signal(tmp_path):
    """Validation at chance on 300 validation samples: "no learnable signal", not "a more flexible model"."""
    import json

    _random_labels(tmp_path / "noise.csv", 1000, 30, seed=12)
    res = run(["diagnose", "--learning-curve", str(tmp_path / "noise.csv"), "--no-group", "--fractions", "0.5,1",
               "--hidden", "128", "--epochs", "60", "--val-size", "0.3", "--n-jobs", "1", "--json"])
    assert res.exit_code == 0, res.output
    bv = json.loads(res.output[res.output.index("{"):])["bias_variance"]
    assert bv["verdict"] == "no_signal" and "No learnable signal" in bv["text"], bv


def test_diagnose_given_the_data_instead_of_a_history_points_to_learning_curve(tmp_path):
    """`diagnose single_cell.h5ad` said the file "is read by train, ..., diagnose and gradcheck, not as a table"."""
    from pathlib import Path

    cells = Path(__file__).resolve().parents[1] / "sample_data" / "single_cell.h5ad"
    res = run(["diagnose", str(cells)])
    assert res.exit_code == 1 and "is single-cell data, not a run's history" in res.output
    assert f"diagnose --learning-curve {cells}" in res.output
    table = _labelled(tmp_path / "t.csv", ["a", "b"])
    wide = pd.read_csv(table)
    for j in range(4, 30):
        wide[f"g{j}"] = 0.0
    wide.to_csv(table, index=False)
    res = run(["diagnose", str(table)])
    assert res.exit_code == 1 and "it looks like the data itself: diagnose --learning-curve" in res.output


def test_a_diverged_run_writes_its_history_for_diagnose(tmp_path):
    """The run that most needs `diagnose` wrote nothing: a divergence left no --history."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 30))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(30)])
    frame.insert(0, "label", np.where(X[:, 0] > 0, "a", "b"))
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    history = tmp_path / "h.csv"
    res = run(["train", str(path), "--no-group", "--folds", "1", "--hidden", "64", "--optimizer", "sgd", "--lr", "5",
               "--epochs", "40", "--history", str(history), "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "training diverged" in res.output, res.output
    assert not (tmp_path / "m.mlp").exists() and history.exists()
    rows = pd.read_csv(history)
    assert len(rows) >= 1 and f"the {len(rows)} epochs before it are in {history}" in res.output
    assert run(["diagnose", str(history)]).exit_code in (0, 1)  # readable: a verdict, or a one-line reason


def test_a_hand_edited_history_names_the_edited_row_and_a_negative_loss(tmp_path):
    e = np.arange(1, 13)
    rows = [{"member": m, "epoch": k, "train_loss": 1 / k, "val_loss": 1 / k + 0.1} for m in (1, 2) for k in e]
    frame = pd.DataFrame(rows)
    frame.loc[4, "member"] = 99  # member 1's epoch 5, moved to a member of its own
    frame.to_csv(tmp_path / "moved.csv", index=False)
    res = run(["diagnose", str(tmp_path / "moved.csv")])
    assert res.exit_code == 1
    assert "(data row 5 has epoch 5 under member 99, a member of one row)" in res.output, res.output
    single = pd.DataFrame({"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e + 0.1})
    single.loc[4, "val_loss"] = -1
    single.to_csv(tmp_path / "negative.csv", index=False)
    res = run(["diagnose", str(tmp_path / "negative.csv")])
    assert res.exit_code == 0 and "val_loss holds 1 negative value (-1 at epoch 5)" in res.output


def test_unrepresentative_advice_knows_the_split_was_grouped_and_when_training_was_memorised():
    from mlpcli.diagnosis import diagnose

    e = np.arange(1, 61)
    train = 0.6 * np.exp(-e / 4) + 0.002  # memorised: near 0
    val = 0.45 + 0.25 * np.exp(-e / 4) + 0.003 * np.sin(e)  # settles well above, gap stable
    grouped = diagnose(train, val, baseline=0.69, grouped_by="patient_id")
    plain = diagnose(train, val, baseline=0.69)
    assert grouped.label == plain.label == "unrepresentative_train"
    assert any("split already kept the samples of each patient_id value on one side" in a for a in grouped.advice)
    assert not any("--group names the column" in a for a in grouped.advice)
    assert any("--group names the column" in a for a in plain.advice)
    assert any("memorises its training rows" in a for a in plain.advice)


# ── multi-label: labels with one value, rare labels ──────────────────────────────────────────────────────


def test_a_label_without_positives_is_left_out_of_the_balanced_accuracy():
    """A label with no positives scored its specificity alone, 1.0 when nothing was called positive, and lifted the
    mean (0.650 over four labels read 0.720 with a constant fifth); F1 macro and ROC AUC already left it out."""
    from sklearn.metrics import balanced_accuracy_score

    from mlpcli import metrics

    rng = np.random.default_rng(8)
    Y = rng.integers(0, 2, size=(60, 3))
    Y[:, 2] = 0  # never positive in these rows
    P = np.clip(Y * 0.6 + rng.uniform(0, 0.5, size=Y.shape), 0, 1)
    m = metrics.compute("multilabel", Y, P, ["a", "b", "never"], 0.5)
    expected = np.mean([balanced_accuracy_score(Y[:, j], P[:, j] >= 0.5) for j in (0, 1)])
    assert m["balanced_accuracy"] == pytest.approx(expected)
    assert metrics.compute("multilabel", np.zeros((5, 2), int), np.full((5, 2), 0.1), ["a", "b"], 0.5)[
        "balanced_accuracy"] is None


def test_a_rare_label_starts_at_its_prior_and_ends_near_it(tmp_path):
    """Every output started at p = 0.5: a softmax regression at lr 1e-3 ended 200 epochs at a mean probability of
    0.175 for a label of 4 % prevalence, and 0.10-0.12 for a label never positive in training."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(300, 40))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(40)])
    frame.insert(0, "common", (X[:, :3].sum(axis=1) > 0).astype(int))
    frame.insert(0, "rare", (X[:, 3:6].sum(axis=1) > 3.4).astype(int))  # ~3 %
    frame.insert(0, "never", 0)
    frame.to_csv(tmp_path / "t.csv", index=False)
    oof = tmp_path / "oof.csv"
    res = run(["train", str(tmp_path / "t.csv"), "--target", "common,rare,never", "--no-group", "--hidden", "",
               "--lr", "1e-3", "--epochs", "60", "--oof", str(oof), "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    probs = pd.read_csv(oof)
    assert probs["prob_never"].max() < 0.01
    assert abs(probs["prob_rare"].mean() - frame["rare"].mean()) < 0.04
    assert "balanced accuracy" in res.output


def test_the_estimator_starts_a_multilabel_output_at_its_prior():
    from mlpcli.estimators import MLPClassifier

    rng = np.random.default_rng(10)
    X = rng.normal(size=(200, 10))
    Y = np.column_stack([(X[:, 0] > 0).astype(int), (X[:, 1] > 2.0).astype(int)])
    est = MLPClassifier(hidden=(), epochs=3, early_stopping=False, random_state=0).fit(X, Y)
    assert abs(est.predict_proba(X)[:, 1].mean() - Y[:, 1].mean()) < 0.1


def test_never_beat_no_skill_is_judged_on_the_epochs_own_values_and_a_sharp_early_dip_is_found(tmp_path):
    """A noisy run whose kept epoch (0.593) beat the baseline (0.693) was told its kept weights "do worse"; a V over
    epochs 2-4 (0.61, 0.58, then up) was reported "lowest around epoch 1"."""
    from mlpcli.diagnosis import diagnose

    e = np.arange(1, 81)
    rng = np.random.default_rng(11)
    val = np.r_[0.80, 0.61, 0.58, 0.70, 0.76 + 0.12 * (e[4:] - 5) / 75 + rng.normal(0, 0.04, 76)]
    train = 1.0 * np.exp(-e / 15) + 0.05
    d = diagnose(train, val, baseline=0.693)
    assert d.label == "overfit" and d.evidence["divergence_epoch"] == 3, d.evidence
    noisy = np.full(40, 0.75) + rng.normal(0, 0.03, 40)
    noisy[20] = 0.60  # one epoch below the baseline: what early stopping would keep
    d = diagnose(0.5 * np.exp(-np.arange(1, 41) / 5) + 0.01, noisy, baseline=0.693)
    assert d.evidence["best_distance_from_baseline"] > 0 and not any("never beat" in a for a in d.advice)


def test_train_logs_a_line_a_minute_while_members_train_in_other_processes(capsys, monkeypatch):
    """Members in worker processes report only when each is done: a log said nothing for two minutes."""
    import time

    from mlpcli.cli import train as train_cli

    monkeypatch.setattr(train_cli._Progress, "SECONDS", 0.1)
    with train_cli._Progress(quiet=False) as progress:
        progress({"event": "run_done", "done": 1, "runs": 5})
        time.sleep(0.5)
    err = capsys.readouterr().err
    assert "1/5 networks trained" in err and "still training, 0 min in (last: 1/5 networks trained)" in err
    with train_cli._Progress(quiet=True) as progress:
        time.sleep(0.3)
    assert "still training" not in capsys.readouterr().err


def test_evaluate_keeps_labels_as_text_for_a_model_of_one_number_written_differently(tmp_path):
    """A model of classes '01', '1', '1.0' scored every '1.0' row of a cohort labelled '1' and '1.0' as class '1'
    (the cohort's column, without a leading zero, was read as numbers)."""
    import json

    train = _labelled(tmp_path / "t.csv", ["1", "01", "1.0"], n=90)
    res = run(["train", str(train), "--no-group", "--folds", "1", "--hidden", "4", "--epochs", "3",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    cohort = _labelled(tmp_path / "c.csv", ["1", "1.0"], n=40)
    out = run(["evaluate", str(tmp_path / "m.mlp"), str(cohort), "--json"]).output
    doc = json.loads(out[out.index("{"):])
    support = {row["class"]: row["support"] for row in doc["metrics"]["per_class"]}
    assert support == {"01": 0, "1": 20, "1.0": 20}, support


def test_lbfgs_curves_get_advice_lbfgs_takes(histories):
    """diagnose of an L-BFGS run advised --lr and --dropout (both refused with --optimizer lbfgs) and said its last
    iterate was kept as "its lowest validation loss"."""
    import json

    for source in ("lbfgs.csv", "lbfgs.mlp"):
        res = run(["diagnose", str(histories / source), "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.output[res.output.index("{"):])
        advice = " ".join(doc["advice"])
        for refused in ("--lr ", "--lr,", "--dropout", "--augment-noise", "--patience"):
            assert refused not in advice, (source, refused, advice)
        assert "lowest validation loss" not in advice and "Stop early" not in advice


def _multilabel_frame(n=120, seed=13):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(12)])
    frame.insert(0, "L2", (X[:, 1] > 0).astype(int))
    frame.insert(0, "L1", (X[:, 0] > 0).astype(int))
    return frame


def test_multilabel_targets_stored_as_categories_in_h5ad_obs_train(tmp_path):
    """0/1 labels kept as categories in .obs (how AnnData stores them) were "neither 0/1 nor numeric"."""
    anndata = pytest.importorskip("anndata")
    frame = _multilabel_frame()
    obs = pd.DataFrame({"L1": pd.Categorical(frame["L1"].to_numpy()),
                        "L2": pd.Categorical(frame["L2"].astype(str).to_numpy())},
                       index=[f"c{i}" for i in range(len(frame))])
    var = pd.DataFrame(index=[f"g{j}" for j in range(12)])
    anndata.AnnData(X=frame[var.index].to_numpy(np.float32), obs=obs, var=var).write_h5ad(tmp_path / "t.h5ad")
    res = run(["train", str(tmp_path / "t.h5ad"), "--target", "L1,L2", "--no-group", "--folds", "1", "--hidden", "4",
               "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "task: multilabel" in res.output


def test_a_stray_value_among_0_1_targets_is_warned_and_text_labels_named(tmp_path):
    frame = _multilabel_frame()
    frame.loc[7, "L2"] = 2
    frame.to_csv(tmp_path / "stray.csv", index=False)
    res = run(["train", str(tmp_path / "stray.csv"), "--target", "L1,L2", "--no-group", "--folds", "1", "--hidden",
               "4", "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "the target columns are 0/1 but for 1 cell ('L2' holds 2 at row 8)" in res.output
    words = _multilabel_frame()
    words["L1"] = np.where(words["L1"] == 1, "yes", "no")
    words.to_csv(tmp_path / "yes.csv", index=False)
    res = run(["train", str(tmp_path / "yes.csv"), "--target", "L1,L2", "--no-group", "-o", str(tmp_path / "y.mlp")])
    first = words["L1"].iloc[0]
    assert res.exit_code == 1 and "0/1 or true/false" in res.output and f"('L1' holds '{first}')" in res.output


def test_a_run_stopped_by_its_epoch_limit_is_not_told_to_raise_patience():
    from mlpcli.diagnosis import diagnose

    e = np.arange(1, 41)
    train, val = 0.7 * np.exp(-e / 40) + 0.1, 0.72 * np.exp(-e / 45) + 0.12
    at_limit = diagnose(train, val, baseline=0.69, kept_epochs=[40])
    assert at_limit.label == "underfit_stopped_early"
    assert not any("--patience" in a and "raise" in a.split("--patience")[0][-8:] for a in at_limit.advice)
    assert any("--epochs, not --patience" in a for a in at_limit.advice)
    cut = diagnose(train, val, baseline=0.69, kept_epochs=[30])
    assert any("raise --patience" in a for a in cut.advice)


def test_predict_counts_multilabel_positives_in_the_models_label_order(tmp_path):
    frame = _multilabel_frame()
    frame = frame.rename(columns={"L1": "ZETA", "L2": "ALPHA"})  # alphabetical order is not the model's
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--target", "ZETA,ALPHA", "--no-group", "--folds", "1", "--hidden",
               "4", "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv"), "--json"])
    import json

    doc = json.loads(res.output[res.output.index("{"):])
    assert list(doc["predicted_counts"]) == ["ZETA", "ALPHA"]


def test_tune_leaves_out_a_combination_that_cannot_train_and_still_refuses_a_value_that_never_can(tmp_path):
    """loss=bce,focal x class_weight=none|balanced on multi-label targets stopped the whole grid (focal takes no
    per-label class weights); a value that trains in no setting is still an error."""
    frame = _multilabel_frame(n=80)
    frame.to_csv(tmp_path / "t.csv", index=False)
    common = ["--target", "L1,L2", "--no-group", "--folds", "2", "--hidden", "4", "--epochs", "2"]
    res = run(["tune", str(tmp_path / "t.csv"), *common, "--grid", "loss=bce,focal; class_weight=none|balanced"])
    assert res.exit_code == 0, res.output
    assert "1 of the 4 settings cannot train on this data and are left out: loss=focal class-weight=balanced" \
        in res.output
    res = run(["tune", str(tmp_path / "t.csv"), *common, "--grid", "loss=bce,mse"])
    assert res.exit_code in (1, 2) and "--grid: the setting loss=mse does not fit the data" in res.output


def test_an_ensemble_divergence_names_the_member_and_numbers_its_history(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 30))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(30)])
    frame.insert(0, "label", np.where(X[:, 0] > 0, "a", "b"))
    frame.to_csv(tmp_path / "t.csv", index=False)
    history = tmp_path / "h.csv"
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "3", "--hidden", "64", "--optimizer", "sgd",
               "--lr", "5", "--epochs", "40", "--n-jobs", "1", "--history", str(history), "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "Error: member 1: training diverged" in res.output, res.output
    rows = pd.read_csv(history)
    assert list(rows.columns[:2]) == ["member", "epoch"] and set(rows["member"]) == {1}
