"""`explain`'s direction column: up or down where the attributions agree on one way, `mixed` where a gene acts
through an interaction (toward the class when high in some samples and when low in others); and what permutation
importance's fraction column counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run


def _table(n: int, seed: int) -> pd.DataFrame:
    """Class A where G0 and G1 share a sign (XOR), or where G2 is high: G0 and G1 act only together."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = np.where((X[:, 0] * X[:, 1] > 0) | (X[:, 2] > 1.0), "A", "B")
    return pd.DataFrame(X, columns=[f"G{j}" for j in range(6)]).assign(label=y)


@pytest.fixture(scope="module")
def xor(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xor")
    _table(600, 0).to_csv(tmp / "train.csv", index=False)
    _table(300, 1).to_csv(tmp / "test.csv", index=False)
    res = run(["train", str(tmp / "train.csv"), "--no-group", "--folds", "1", "--hidden", "32",
               "--epochs", "150", "--no-log1p", "-q", "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    return tmp


def test_an_interaction_is_never_one_way_toward_both_classes_and_a_main_effect_is(xor):
    """Explained toward each sample's own class, an XOR gene pushes A samples toward A when high in some and when
    low in others: "up" toward A and "up" toward B was printed as if higher G0 meant both classes."""
    res = run(["explain", str(xor / "m.mlp"), str(xor / "test.csv"), "--class", "A", "--class", "B",
               "-o", str(xor / "ig.csv")])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(xor / "ig.csv").set_index(["class", "feature"])["direction"]
    for gene in ("G0", "G1"):
        assert not (table[("A", gene)] == table[("B", gene)] != "mixed"), table
    assert table[("A", "G2")] == "up" and table[("B", "G2")] == "down"  # the main effect: one way
    assert all(table[(c, g)] == "mixed" for c in "AB" for g in ("G3", "G4", "G5"))  # noise: no way


def test_permutations_fraction_is_the_share_of_shuffles_that_worsened_the_score(xor):
    res = run(["explain", str(xor / "m.mlp"), str(xor / "test.csv"), "--method", "permutation", "--repeats", "4",
               "--class", "A", "-o", str(xor / "perm.csv")])
    assert res.exit_code == 0, res.output
    assert "fraction: the share of the 4 shuffles that worsened the class's score" in " ".join(res.stderr.split())
    fractions = set(pd.read_csv(xor / "perm.csv")["fraction"].round(6))
    assert fractions <= {0.0, 0.25, 0.5, 0.75, 1.0}
