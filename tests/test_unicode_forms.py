"""Labels, patients, sample ids and column names in two Unicode forms (composed and decomposed accents,
non-breaking spaces, superscripts and full-width digits) and header cells over two lines or holding a comma:
warned about, matched to the model's classes only where they are the same text, and explained."""

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run


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
    frame["G0"] = frame["G0"].astype(object)  # a text cell in a float column: refused by pandas 3 otherwise
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


def test_a_column_name_holding_a_comma_is_explained(tmp_path):
    frame = _unicode_table(40).rename(columns={"label": "subtype, WHO 2016"})
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--target", "subtype, WHO 2016", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1
    assert "the column 'subtype, WHO 2016' holds a comma, which separates names in --target" in res.output


def test_a_column_name_with_spaces_around_it_is_explained(tmp_path):
    """--target ' label ' loses its spaces, and the hint offered the spaced name back ("did you mean ' label '?")."""
    frame = _unicode_table(40).rename(columns={"label": " label "})
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--target", " label ", "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "the column ' label ' has spaces around its name", "rename the column")
    assert "did you mean" not in res.output


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
