"""`diagnose HISTORY` on hand-edited or foreign history tables: curve values too large for its arithmetic are an
error (the rules square deviations, which overflowed into "noisy, n/a of its level" at 1e160), and a best_epoch
that is not one of the run's epochs is ignored with a note, not printed as "weights kept from epoch 999"."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cli_helpers import assert_clean_error, run


def _history(path, scale: float = 1.0, best=None) -> None:
    e = np.arange(1, 31)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"epoch": e, "train_loss": (0.3 + 0.9 * np.exp(-e / 8) + rng.normal(0, .005, 30)) * scale,
                          "val_loss": (0.45 + 0.7 * np.exp(-e / 8) + rng.normal(0, .01, 30)) * scale})
    if best is not None:
        frame["best_epoch"] = best
    frame.to_csv(path, index=False)


def test_the_verdict_is_the_same_at_any_scale_it_takes_and_an_error_beyond(tmp_path):
    verdicts = []
    for scale in (1.0, 1e-30, 1e90):
        _history(tmp_path / "h.csv", scale)
        res = run(["diagnose", str(tmp_path / "h.csv"), "--json"])
        assert res.exit_code == 0, res.output
        verdicts.append(res.stdout.split('"label": ')[1].split(",")[0])
    assert len(set(verdicts)) == 1
    _history(tmp_path / "huge.csv", 1e160)
    assert_clean_error(run(["diagnose", str(tmp_path / "huge.csv")]),
                       "huge.csv: train_loss holds", "beyond 1e+100, the largest value diagnose's arithmetic takes")


def test_a_best_epoch_outside_the_run_is_ignored_and_said(tmp_path):
    for best in (999, 2.5):
        _history(tmp_path / "h.csv", best=best)
        res = run(["diagnose", str(tmp_path / "h.csv"), "--no-chart"])
        assert res.exit_code == 0, res.output
        text = " ".join(res.output.split())
        assert f"best_epoch {best:g} is not one of the run's epochs (1-30): ignored" in text
        assert "weights kept from epoch" not in text
    _history(tmp_path / "h.csv", best=12)
    assert "weights kept from epoch 12" in " ".join(run(["diagnose", str(tmp_path / "h.csv"), "--no-chart"]).output.split())


def test_a_best_epoch_of_text_is_ignored_and_said(tmp_path):
    """A best_epoch cell edited to text was dropped without a word, and with it the last row's: an earlier row's
    number then read as "weights kept from epoch 29" (a number outside the run was already said and ignored)."""
    _history(tmp_path / "h.csv", best=[str(e) for e in range(1, 30)] + ["x"])
    res = run(["diagnose", str(tmp_path / "h.csv"), "--no-chart"])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "best_epoch 'x' is not an epoch number: ignored" in text, text
    assert "weights kept from epoch" not in text


def test_an_ensemble_members_best_epoch_outside_its_run_is_said(tmp_path):
    e = np.arange(1, 31)
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"member": m, "epoch": e, "train_loss": 0.3 + 0.9 * np.exp(-e / 8) + rng.normal(0, .005, 30),
                            "val_loss": 0.45 + 0.7 * np.exp(-e / 8) + rng.normal(0, .01, 30),
                            "best_epoch": 999 if m == 1 else 20}) for m in (1, 2, 3)]
    pd.concat(frames).to_csv(tmp_path / "ens.csv", index=False)
    res = run(["diagnose", str(tmp_path / "ens.csv"), "--no-chart"])
    assert res.exit_code == 0, res.output
    assert "member 1: best_epoch 999 is not one of the run's epochs (1-30): ignored" in " ".join(res.output.split())
