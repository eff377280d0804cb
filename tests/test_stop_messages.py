"""What a stop signal (SLURM's SIGTERM) leaves and says where a batch job reads it: `predict -o -` writes whole
rows only and says the rows on standard output are incomplete; a stop while `train --refit`'s network trains says
the file holds the members' ensemble, not the refit network; a stop after the command ended says its outputs
are complete."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import pandas as pd

from cli_helpers import run
from tables import write_table



def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_predict_to_standard_output_stops_at_a_whole_row_and_says_the_rows_are_incomplete(tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(5000, 4)), columns=["g0", "g1", "g2", "g3"])
    table.assign(label=np.where(table["g0"] > 0, "A", "B")).to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "1", "--epochs", "2", "--hidden", "none", "-q",
               "-o", str(model)])  # in this process: the stop under test is predict's
    assert res.exit_code == 0, res.output
    # SIGTERM within the second block's write (a write blocked on a full pipe, as a job's time limit finds it)
    code = ("import contextlib, os, signal, sys\n"
            "import mlpcli.predict.output as o\n"
            "calls, held = [0], o.held\n"
            "@contextlib.contextmanager\n"
            "def stopped_within():\n"
            "    with held():\n"
            "        calls[0] += 1\n"
            "        if calls[0] == 2:\n"
            "            os.kill(os.getpid(), signal.SIGTERM)\n"
            "        yield\n"
            "o.held = stopped_within\n"
            "from mlpcli import _entry\n"
            f"sys.argv = ['mlpcli', 'predict', {str(model)!r}, {str(tmp_path / 't.csv')!r}, '--chunksize', '1000',\n"
            "            '-o', '-']\n"
            "_entry.main()\n")
    res = _run(code)
    assert res.returncode == 143, res.stderr
    assert res.stderr.rstrip().endswith("the predictions already written to standard output are incomplete (whole "
                                        "rows, not every row of the table); not to be used as a complete output")
    lines = res.stdout.split("\n")
    assert lines[-1] == "" and 0 < len(lines) - 2 < 5000  # not every row
    assert (len(lines) - 2) % 1000 == 0 or (len(lines) - 2) % 2048 == 0  # whole blocks: the second written whole
    width = lines[0].count(",")
    assert all(line.count(",") == width for line in lines[:-1])


def _train_with(patch: str, args: list[str], table: str) -> str:
    """A script that applies ``patch`` (Python lines; os, signal and sys imported) and runs `mlpcli train` on
    ``table`` (2 folds, 2 epochs, no hidden layer) with ``args``."""
    return ("import os, signal, sys\n" + patch + "from mlpcli import _entry\n"
            f"sys.argv = ['mlpcli', 'train', {table!r}, '--folds', '2', '--epochs', '2', '--hidden', 'none', "
            f"*{args!r}]\n_entry.main()\n")


def test_a_stop_while_the_refit_network_trains_says_the_file_holds_the_ensemble(tmp_path):
    model = tmp_path / "r.mlp"
    res = _run(_train_with("import mlpcli.model_selection.crossfit as c\n"
                           "fit = c.fit_run\n"
                           "def fit_run(ds, val, *a, **k):\n"
                           "    if val is None:  # the refit: no validation rows\n"
                           "        os.kill(os.getpid(), signal.SIGTERM)\n"
                           "    return fit(ds, val, *a, **k)\n"
                           "c.fit_run = fit_run\n", ["--refit", "-q", "-o", str(model)],
                           write_table(tmp_path)))
    assert res.returncode == 143, res.stderr
    assert ("stopped while the --refit network trained; the members' ensemble, not the one network --refit asks "
            f"for, is written to {model}") in " ".join(res.stderr.split())
    assert model.exists()


def test_a_stop_after_the_command_ended_says_its_outputs_are_complete():
    code = ("import signal\n"
            "from mlpcli import _entry\n"
            "_entry._ended = True\n"
            "_entry.quiet_exit(signal.SIGTERM, None)\n")
    res = _run(code)
    assert res.returncode == 143
    assert res.stderr == ("Interrupted by SIGTERM after the command had ended: its outputs and the lines above are "
                          "complete.\n")


@pytest.mark.parametrize("arrives", ["raised", "held"])
def test_a_stop_that_cuts_the_summary_short_still_says_the_model_is_complete(tmp_path, arrives):
    """A stop signal to a job's whole process group took its output's reader too: the summary's write failed, the held
    interrupt was raised, and the job log ended in a bare "Interrupted." (exit 130) over a complete model file. The
    signal may be raised before the failed write is (``raised``) or only received, its handler's exception not yet
    raised, when the write fails (``held``: on a loaded machine the broken pipe came first, exit 141)."""
    model = tmp_path / "m.mlp"
    stop = ("    signal.raise_signal(signal.SIGINT)\n" if arrives == "raised" else
            "    import mlpcli.cli.signals as c\n    c._received.append(int(signal.SIGINT))\n")
    res = _run(_train_with("import mlpcli.cli.train as t\n"
                           "def summary(*a, **k):  # the stop arrives, then the write fails: the reader is gone\n"
                           # raise_signal: in this thread, handled before the next line (os.kill's could reach another
                           # thread and be seen after the BrokenPipeError)
                           + stop +
                           "    raise BrokenPipeError(32, 'Broken pipe')\n"
                           "t._summary_table = summary\n", ["-o", str(model)], write_table(tmp_path)))
    assert res.returncode == 130, res.stderr
    assert f"stopped once training was over; the complete model is written to {model}" in " ".join(res.stderr.split())
    assert model.exists()


def test_a_stop_as_the_trained_networks_rows_are_taken_for_the_ood_fit_keeps_the_model(tmp_path):
    """--folds 1: the rows the out-of-distribution fit reads are taken from the training matrices once every network
    has trained; a SIGTERM there lost the trained model ("nothing trained yet to keep", exit 143) until that step
    moved inside the part of train where a stop waits for the model to be complete."""
    model = tmp_path / "g.mlp"
    patch = ("import mlpcli.model_selection.held_out_fits as c\n"
             "gather = c.PreparedRows.gather.__func__\n"
             "def stopped_gather(cls, *a, **k):\n"
             "    signal.raise_signal(signal.SIGTERM)  # the job's time limit, as the rows are moved\n"
             "    return gather(cls, *a, **k)\n"
             "c.PreparedRows.gather = classmethod(stopped_gather)\n")
    res = _run(("import os, signal, sys\n" + patch + "from mlpcli import _entry\n"
                f"sys.argv = ['mlpcli', 'train', {write_table(tmp_path)!r}, '--folds', '1', '--epochs', '2', '--hidden', 'none', "
                f"'-q', '-o', {str(model)!r}]\n_entry.main()\n"))
    assert res.returncode == 143, res.stderr
    assert f"stopped once training was over; the complete model is written to {model}" in " ".join(res.stderr.split())
    assert model.exists()
