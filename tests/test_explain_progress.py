"""Permutation importance over a transcriptome takes minutes (400 samples x 60,000 genes: 126 s) and printed
nothing while it ran; its shuffles were all drawn before the first product (0.96 GB of row orders). It reports
the genes shuffled after each batch now, and draws each batch's shuffles as it comes (the same shuffles: each
gene's own generator)."""

from __future__ import annotations

import numpy as np

from mlpcli import model_io
from mlpcli.explain import explain, permutation_importance
from cli_helpers import run


def _rows(df, model):
    return df[model.feature_names].to_numpy(float), df["label"].to_numpy()


def test_permutation_importance_reports_the_genes_shuffled(three_classes):
    d, df = three_classes
    model = model_io.load(d / "m.mlp")
    X, y = _rows(df, model)
    seen = []
    drops, _ = permutation_importance(model, X, y, repeats=2, progress=lambda done, total: seen.append((done, total)))
    used = len(model.preprocessor.kept_features)
    assert seen and seen[-1] == (used, used)
    assert [done for done, _ in seen] == sorted({done for done, _ in seen})  # rising, once per batch
    quiet, _ = permutation_importance(model, X, y, repeats=2)
    np.testing.assert_array_equal(drops, quiet)  # reporting changes nothing
    calls = []
    explain(model, X, y, method="permutation", repeats=2, progress=lambda *a: calls.append(a))
    assert calls and calls[-1] == (used, used)
    calls.clear()
    explain(model, X, y, method="ig", progress=lambda *a: calls.append(a))
    assert calls == []  # integrated gradients: no shuffles to count


def test_a_log_gets_the_genes_shuffled_and_quiet_gets_none(three_classes):
    d, _ = three_classes
    args = ["explain", str(d / "m.mlp"), str(d / "train.csv"), "--method", "permutation", "--repeats", "2"]
    res = run(args)
    assert res.exit_code == 0, res.output
    assert "genes shuffled: 12/12 done" in res.stderr
    assert "genes shuffled" not in run([*args, "-q"]).stderr
    assert "genes shuffled" not in run(args[:3]).stderr  # integrated gradients
