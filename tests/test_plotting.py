"""mlpcli.plotting's file plots: an ensemble's members drawn under their mean curves."""

from __future__ import annotations

import json

import numpy as np

from mlpcli.history import mean_curve
from mlpcli.plotting import plot_curves


def test_plot_with_members_writes_the_file(tmp_path):
    rng = np.random.default_rng(0)
    members = []
    for n in (30, 40, 50):
        t = np.arange(n)
        members.append((list(0.7 * np.exp(-t / 8) + 0.05), list(0.3 + 0.4 * np.exp(-t / 6) + rng.normal(0, 0.01, n))))
    train, val = mean_curve([m[0] for m in members]), mean_curve([m[1] for m in members])
    png, svg = tmp_path / "members.png", tmp_path / "members.svg"
    plot_curves(str(png), train, val, members=members, best_epoch=20)
    plot_curves(str(svg), train, val, members=members)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "members (3)" in text and "training (mean of 3)" in text


def test_plot_without_members_keeps_plain_labels(tmp_path):
    svg = tmp_path / "single.svg"
    plot_curves(str(svg), [1.0, 0.8, 0.7], [1.1, 0.9, 0.85])
    text = svg.read_text()
    assert "members" not in text and "mean of" not in text and "validation" in text


def test_the_same_curves_give_the_same_file_in_every_format(tmp_path):
    """The PDF embedded its creation date (matplotlib's key is CreationDate; Date was passed) and the SVG
    random element ids, so two plots of the same curves differed."""
    import time

    train, val = [1.0, 0.6, 0.4, 0.35], [1.1, 0.7, 0.55, 0.56]
    formats = ("pdf", "svg", "png")
    for fmt in formats:
        plot_curves(str(tmp_path / f"a.{fmt}"), train, val, best_epoch=3)
    time.sleep(1.1)  # a second later, for every format at once: a creation date would differ
    for fmt in formats:
        plot_curves(str(tmp_path / f"b.{fmt}"), train, val, best_epoch=3)
        assert (tmp_path / f"a.{fmt}").read_bytes() == (tmp_path / f"b.{fmt}").read_bytes(), fmt


def test_explain_plots_say_what_permutation_scores_and_what_grey_bars_are(tmp_path):
    """The permutation plot's axis read "score drop" where the score is the rise of log loss; grey bars (direction
    mixed, as on an XOR of two genes) were missing from the legend."""
    import numpy as np
    import pandas as pd

    from cli_helpers import run

    rng = np.random.default_rng(20)
    X = rng.normal(5, 1, size=(600, 20))
    frame = pd.DataFrame(X, columns=[f"g{i}" for i in range(20)])
    frame.insert(0, "label", np.where((X[:, 3] > 5) ^ (X[:, 7] > 5), "pos", "neg"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(600)])
    frame.to_csv(tmp_path / "xor.csv", index=False)
    assert run(["train", str(tmp_path / "xor.csv"), "--no-group", "--hidden", "16", "--epochs", "40", "-q", "-o",
                str(tmp_path / "m.mlp")]).exit_code == 0
    res = run(["explain", str(tmp_path / "m.mlp"), str(tmp_path / "xor.csv"), "--no-group", "--plot",
               str(tmp_path / "ig.svg"), "-q", "--json"])
    assert res.exit_code == 0, res.output
    mixed = any(r["direction"] == "mixed" for r in json.loads(res.stdout)["rankings"])
    assert mixed and "mixed: no one direction" in (tmp_path / "ig.svg").read_text()
    res = run(["explain", str(tmp_path / "m.mlp"), str(tmp_path / "xor.csv"), "--no-group", "--method", "permutation",
               "--plot", str(tmp_path / "perm.svg"), "-q"])
    assert res.exit_code == 0, res.output
    svg = (tmp_path / "perm.svg").read_text()
    assert "skill lost when the gene is shuffled" in svg and "score drop" not in svg


def _history(tmp_path):
    t = np.arange(40)
    path = tmp_path / "h.csv"
    path.write_text("epoch,train_loss,val_loss\n" + "".join(
        f"{e + 1},{0.7 * np.exp(-e / 8) + 0.05:.6f},{0.3 + 0.4 * np.exp(-e / 6):.6f}\n" for e in t))
    return str(path)


def test_settings_for_interactive_matplotlib_do_not_reach_a_plot_file(tmp_path):
    """An MPLBACKEND matplotlib does not know ended the command ("Key backend: 'nonsense' is not a valid value",
    naming no variable); a HOME that cannot hold matplotlib's folders put its two-line warning on stderr under -q."""
    import os
    import subprocess
    import sys

    home = tmp_path / "a-file"  # no folder can be made under it: as a read-only HOME
    home.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env.update(MPLBACKEND="nonsense", HOME=str(home))
    plot = tmp_path / "d.png"
    res = subprocess.run([sys.executable, "-m", "mlpcli", "diagnose", _history(tmp_path), "--plot", str(plot), "-q"],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_matplotlib_that_cannot_be_imported_is_named_with_the_option_before_any_work(monkeypatch, tmp_path):
    """A broken install (found, but failing to import) passed the look for the package and ended explain --plot as
    "internal error (ImportError ...)" after the attributions; --calibration-plot's error named --plot."""
    import sys

    import pytest

    from mlpcli.errors import ConfigError
    from mlpcli.plotting import plot_format

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    with pytest.raises(ConfigError, match=r"^--calibration-plot c\.png: drawing needs matplotlib"):
        plot_format("c.png", "--calibration-plot")
    with pytest.raises(ConfigError, match=r"^--plot g\.svg: drawing needs matplotlib"):
        plot_format("g.svg")
