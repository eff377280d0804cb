"""Fixes from the twenty-seventh session's reviews by use (evaluate, predict's shift check, model files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_clean_error, run
from tables import make_table

FAST = ["--hidden", "8", "--epochs", "15", "--folds", "1", "--quiet"]


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    """A 3-class model and its table."""
    d = tmp_path_factory.mktemp("three")
    df = make_table("multiclass", n_patients=60, seed=3)
    df.to_csv(d / "train.csv", index=False)
    assert run(["train", str(d / "train.csv"), "-o", str(d / "m.mlp"), *FAST]).exit_code == 0
    return d, df


def test_evaluate_says_f1_macro_counts_an_absent_class_it_predicted_as_zero(three_classes):
    """A cohort without class C in which the model still calls some samples C: F1 macro (scikit-learn's
    convention) counts C as 0 and sat at 0.59 beside a balanced accuracy of 0.83 with nothing to say why."""
    d, df = three_classes
    cohort = df[df.label != "typeC"].copy()
    cohort.loc[cohort.index[:5], "f02"] += 8.0  # five samples pushed towards class C: predicted C, never true
    cohort.to_csv(d / "no_c.csv", index=False)
    r = run(["evaluate", str(d / "m.mlp"), str(d / "no_c.csv"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    per_class = {row["class"]: row for row in doc["metrics"]["per_class"]}
    called = doc["metrics"]["confusion_matrix"][0][2] + doc["metrics"]["confusion_matrix"][1][2]
    assert called >= 1 and per_class["typeC"]["f1"] == 0.0 and per_class["typeC"]["support"] == 0
    note = next(n for n in doc["notes"] if "absent from the table" in n)
    assert f"F1 macro counts 'typeC' (predicted for {called:,} sample" in note and "as 0" in note
    # never called: no such clause (its F1 is left out of the mean)
    df[df.label != "typeC"].to_csv(d / "no_c_clean.csv", index=False)
    doc = json.loads(run(["evaluate", str(d / "m.mlp"), str(d / "no_c_clean.csv"), "--json"]).stdout)
    if doc["metrics"]["confusion_matrix"][0][2] + doc["metrics"]["confusion_matrix"][1][2] == 0:
        assert not any("F1 macro counts" in n for n in doc["notes"])


def test_a_batch_offset_on_values_with_negatives_is_not_called_raw_counts(three_classes):
    """The table's features are Gaussian (negative values): +1.5 on every gene is an offset, not counts."""
    d, df = three_classes
    shifted = df.copy()
    feats = [c for c in df.columns if c.startswith("f")]
    shifted[feats] += 1.5
    shifted.to_csv(d / "offset.csv", index=False)
    r = run(["predict", str(d / "m.mlp"), str(d / "offset.csv"), "-o", str(d / "p.csv")])
    assert r.exit_code == 0, r.output
    assert "higher than in training" in r.output and "carries a batch offset" in r.output
    assert "raw counts" not in r.output


def _set(path: str, value):
    """A model.json edit: the field at dotted ``path`` set to ``value``."""
    def edit(meta: dict) -> None:
        *parents, last = path.split(".")
        d = meta
        for key in parents:
            d = d.setdefault(key, {})
        d[last] = value
    return edit


@pytest.mark.parametrize("field, value", [
    ("extra.diagnosis", "x"), ("provenance.versions", "x"), ("provenance.data_file", 1), ("fit.portfolio", [1]),
    ("fit.portfolio", [{"hidden": "wide", "score": 0.5}]), ("config.resolved", 1), ("config.pos_weight", [1]),
    ("config.resolved", {"epochs": "many"}),
])
def test_an_edited_field_of_the_wrong_type_is_named_when_the_model_is_read(three_classes, tmp_path, field, value):
    """Fields that `info` and `evaluate` read, of the wrong type in a hand-edited model.json, passed the load-time
    checks and ended in "internal error (AttributeError ...)": now the load names the field."""
    from model_files import rewrite_model

    d, _ = three_classes
    bad = rewrite_model(d / "m.mlp", tmp_path / "bad.mlp", _set(field, value), lambda a: a)
    name = field.split(".")[0] + "." + field.split(".")[1]
    for args in (["info", bad], ["evaluate", bad, str(d / "train.csv")]):
        assert_clean_error(run(args), "bad.mlp: model.json field", f"'{name}")


@pytest.mark.parametrize("field, empty", [("loss.params", {}), ("split.class_counts_train", {}),
                                          ("fit.held_out_metrics", {}), ("history", [])])
def test_a_null_where_an_object_belongs_reads_as_absent(three_classes, tmp_path, field, empty):
    """``loss.params: null`` loaded, then predict failed with "internal error (TypeError: ... argument after ** must
    be a mapping, not NoneType)"; a null is now taken as the field absent, in every command and the library."""
    from mlpcli import model_io
    from model_files import rewrite_model

    d, df = three_classes
    path = rewrite_model(d / "m.mlp", tmp_path / "null.mlp", _set(field, None), lambda a: a)
    model = model_io.load(path)
    node = model_io.load(path)
    for key in field.split("."):
        node = node[key] if isinstance(node, dict) else getattr(node, key)
    assert node == empty
    X = df[[c for c in df.columns if c.startswith("f")]].to_numpy(np.float32)
    assert model.predict_output(X).shape == (len(df), 3)
    for args in (["info", path], ["evaluate", path, str(d / "train.csv")],
                 ["predict", path, str(d / "train.csv"), "-o", str(tmp_path / "p.csv")]):
        r = run(args)
        assert r.exit_code == 0, (args, r.output)


def test_model_and_data_both_from_standard_input_is_a_usage_error(three_classes, tmp_path):
    """`cat m.mlp | mlpcli predict /dev/stdin -`: the model took every byte of standard input, then the table was
    "standard input is empty"; two inputs cannot share the one stream."""
    d, _ = three_classes
    model = (d / "m.mlp").read_bytes()
    for args in (["predict", "/dev/stdin", "-", "-o", str(tmp_path / "p.csv")], ["evaluate", "-", "/dev/stdin"]):
        r = run(args, input=model)
        assert_clean_error(r, "both read standard input", code=2)
        assert args[1] in r.output and args[2] in r.output or "MODEL and DATA" in r.output
    assert not (tmp_path / "p.csv").exists()


def test_an_empty_file_name_says_so(three_classes):
    d, _ = three_classes
    assert_clean_error(run(["info", ""]), "model file not found: the name given is empty ('')")
    assert_clean_error(run(["predict", str(d / "m.mlp"), "", "-o", "-"]), "table file not found: the name given is empty")
    assert_clean_error(run(["train", ""]), "table file not found: the name given is empty")
