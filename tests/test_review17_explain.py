"""Regressions from review 17: `explain` and `predict --explain` as a biologist reads them — gene names holding
`;` or `:` in the top_features column, correlated genes splitting their attribution, the scores' units."""

from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.explain import explain, load_samples
from mlpcli.explain.attribution import top_features
from cli_helpers import run
from tables import make_table

FAST = ["--epochs", "3", "--hidden", "8", "-q", "--folds", "1"]
ODD = ["P12345;Q67890", "chr1:100-200", "50%;x:y"]  # a MaxQuant protein group, an ATAC peak, both at once


def _parse(cell: str) -> list[tuple[str, float]]:
    """A top_features cell read back as the README says: split at ';', each entry at its last ':', unquote."""
    return [(unquote(name), float(score)) for name, score in (e.rsplit(":", 1) for e in cell.split(";"))] if cell else []


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A single network on 10 genes: typeA's signal in the protein group "P12345;Q67890" and its near copy
    "DUP" (a correlated decoy), the peak "chr1:100-200" carries typeB's, "50%;x:y" typeC's."""
    tmp = tmp_path_factory.mktemp("review17_explain")
    table = make_table(n_patients=30, per_patient=2, n_features=10, seed=7, signal=3.0)
    rng = np.random.default_rng(0)
    table["f09"] = table["f00"] + rng.normal(scale=0.01, size=len(table))
    table = table.rename(columns={"f00": ODD[0], "f01": ODD[1], "f02": ODD[2], "f09": "DUP"})
    data, model = tmp / "planted.csv", tmp / "planted.mlp"
    table.to_csv(data, index=False)
    res = run(["train", str(data), "-o", str(model), *FAST, "--epochs", "40"])  # enough to learn the markers
    assert res.exit_code == 0, res.output
    return str(model), str(data), tmp


def test_top_features_names_with_separators_read_back():
    values = np.array([[3.0, 2.0, 1.0, -1.0]])  # (1, 4)
    cell = top_features(values, [*ODD, "GAPDH"], 4)[0]
    assert cell.count(";") == 2  # three entries, the negative one left out
    assert _parse(cell) == [(ODD[0], 3.0), (ODD[1], 2.0), (ODD[2], 1.0)]
    assert top_features(values, ["A", "B", "C", "D"], 2)[0] == "A:3;B:2"  # plain names as before


def test_predict_explain_column_parses_and_names_the_models_genes(planted):
    model, data, tmp = planted
    out = tmp / "pred.csv"
    res = run(["predict", model, data, "--explain", "3", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    genes = set(model_io.load(model).feature_names)
    cells = pd.read_csv(out, keep_default_na=False)["top_features"]
    parsed = [_parse(c) for c in cells]
    assert all(name in genes and score > 0 for row in parsed for name, score in row)
    seen = {name for row in parsed for name, _ in row}
    assert set(ODD) <= seen  # every odd name came through whole


def test_correlated_genes_in_a_ranking_get_a_note(planted):
    model, data, _ = planted
    m = model_io.load(model)
    samples = load_samples(m, data)
    for method in ("ig", "permutation"):
        result = explain(m, samples.X, samples.y, method=method, top=5)
        typeA = result.table[result.table["class"] == "typeA"]["feature"].tolist()
        assert ODD[0] in typeA and "DUP" in typeA, (method, typeA)
        note = [n for n in result.notes if n.startswith("correlated genes")]
        assert len(note) == 1 and "DUP" in note[0] and ODD[0] in note[0], result.notes
    # the peak and the other odd gene are independent of each other: not named as a pair
    assert f"{ODD[1]} ~ {ODD[2]}" not in note[0] and f"{ODD[2]} ~ {ODD[1]}" not in note[0]


def test_no_correlated_note_without_correlated_genes(planted):
    model, data, _ = planted
    m = model_io.load(model)
    samples = load_samples(m, data)
    result = explain(m, samples.X, samples.y, classes=["typeB"], top=3)
    assert not [n for n in result.notes if n.startswith("correlated genes")], result.notes


def test_plot_axis_names_the_units(planted, monkeypatch):
    from matplotlib.axes import Axes

    model, data, tmp = planted
    labels = []
    real = Axes.set_xlabel
    monkeypatch.setattr(Axes, "set_xlabel", lambda self, text, *a, **k: (labels.append(text), real(self, text, *a, **k))[1])
    res = run(["explain", model, data, "--plot", str(tmp / "p.png"), "--output", "prob", "--top", "3", "-q"])
    assert res.exit_code == 0, res.output
    assert "mean attribution toward the class (probability)" in labels
