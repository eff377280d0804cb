"""mlpcli.plotting's file plots: an ensemble's members drawn under their mean curves."""

from __future__ import annotations

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
    for fmt in ("pdf", "svg", "png"):
        a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        plot_curves(str(a), train, val, best_epoch=3)
        time.sleep(1.1)  # a second later: a creation date would differ
        plot_curves(str(b), train, val, best_epoch=3)
        assert a.read_bytes() == b.read_bytes(), fmt
