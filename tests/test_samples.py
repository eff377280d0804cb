"""`--samples SHEET`: an expression matrix (genes × samples as GEO and DESeq2 hand it out, or samples ×
genes) joined to a sample sheet on the sample id, in every command that reads a table."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io
from mlpcli import predict as lib
from mlpcli.errors import DataError
from cli_helpers import assert_clean_error, run
from tables import make_table

FAST = ["--epochs", "4", "--hidden", "", "--folds", "2", "--seed", "0"]


def cohort(seed: int = 0, prefix: str = "S") -> pd.DataFrame:
    """Samples with a binary phenotype, patients and batches; genes g00.. as features."""
    df = make_table("binary", n_patients=20, per_patient=3, n_features=8, seed=seed)
    df = df.rename(columns={c: "g" + c[1:] for c in df.columns if c.startswith("f")})
    df["sample_id"] = [f"{prefix}{i:04d}" for i in range(len(df))]
    df["patient_id"] = prefix + df["patient_id"]
    return df.rename(columns={"label": "disease"})


def genes(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith("g")]


def write_matrix(df: pd.DataFrame, path) -> str:
    """The GEO series-matrix layout: genes in rows, one column per sample, headed by its id."""
    df.set_index("sample_id")[genes(df)].T.rename_axis("ID_REF").to_csv(path, sep="\t")
    return str(path)


def write_sheet(df: pd.DataFrame, path, order=None) -> str:
    """A GEO-like sample sheet: id, phenotype, patient, batch and annotations that take no role."""
    sheet = df[["sample_id", "patient_id", "batch", "disease"]].copy()
    sheet["title"] = "tumour " + sheet["sample_id"]
    sheet["source_name_ch1"] = "biopsy"
    sheet["characteristics_ch1"] = "tissue: colon"
    sheet = sheet.iloc[order] if order is not None else sheet.iloc[::-1]  # another order than the matrix
    path = str(path)
    if path.endswith(".parquet"):
        sheet.to_parquet(path, index=False)
    else:
        sheet.to_csv(path, index=False, sep="\t" if ".tsv" in path else ",")
    return path


def as_json(res) -> dict:
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


@pytest.fixture()
def geo(tmp_path):
    df = cohort()
    return df, write_matrix(df, tmp_path / "matrix.tsv"), write_sheet(df, tmp_path / "sheet.csv")


# ── the GEO / DESeq2 layout end to end ───────────────────────────────────────────────────────────────────


def test_geo_layout_trains_as_the_merged_table_and_predicts(tmp_path, geo):
    """Matrix + sheet give the same model as the table a user would have merged by hand; the model then
    predicts and evaluates a new cohort in the same layout."""
    df, matrix, sheet = geo
    merged = tmp_path / "merged.csv"
    df[["sample_id", "patient_id", "batch", "disease", *genes(df)]].to_csv(merged, index=False)
    doc = as_json(run(["train", matrix, "--features-in-rows", "--samples", sheet, "--target", "disease",
                       "-o", str(tmp_path / "geo.mlp"), "--json", *FAST]))
    ref = as_json(run(["train", str(merged), "--target", "disease", "-o", str(tmp_path / "ref.mlp"), "--json", *FAST]))
    assert doc["validation_metrics"] == ref["validation_metrics"]
    assert doc["split"] == ref["split"]  # groups (patients) and batches came from the sheet
    assert any("ignored 3 columns that take no role: 'title', 'source_name_ch1', 'characteristics_ch1'" in n
               for n in doc["notes"])
    model = model_io.load(tmp_path / "geo.mlp")
    assert model.roles["group"] == "patient_id" and model.roles["batch"] == "batch"
    assert model.feature_names == genes(df)

    new = cohort(seed=5, prefix="N")
    new_matrix, new_sheet = write_matrix(new, tmp_path / "new.tsv"), write_sheet(new, tmp_path / "new_sheet.tsv")
    out, ref_out = tmp_path / "pred.csv", tmp_path / "ref_pred.csv"
    res = run(["predict", str(tmp_path / "geo.mlp"), new_matrix, "--features-in-rows", "--samples", new_sheet,
               "-o", str(out), "--json"])
    assert as_json(res)["rows"] == len(new)
    new[["sample_id", *genes(new)]].to_csv(tmp_path / "new.csv", index=False)
    assert run(["predict", str(tmp_path / "ref.mlp"), str(tmp_path / "new.csv"), "-o", str(ref_out), "-q"]).exit_code == 0
    got, want = pd.read_csv(out), pd.read_csv(ref_out)
    assert list(got["sample_id"]) == list(new["sample_id"])  # the matrix's order, not the sheet's
    pd.testing.assert_frame_equal(got, want)

    result = as_json(run(["evaluate", str(tmp_path / "geo.mlp"), new_matrix, "--features-in-rows", "--samples",
                          new_sheet, "--by", "batch", "--json"]))  # the target and --by from the sheet
    assert result["n"] == len(new) and {g["value"] for g in result["groups"]} == set(new["batch"])


def test_the_join_counts_one_matched_sample_and_one_sheet_row_in_the_singular(tmp_path):
    """"1 of the 5 samples ... have a row in the sheet (1 rows)"."""
    df = cohort()
    sheet = data.samples.read_sample_sheet(write_sheet(df.iloc[[2]], tmp_path / "s.csv"))
    join = data.samples.SampleJoin(sheet, "t.csv", ["sample_id", "g00"])
    join.select(["disease"], [])
    join.apply(pd.DataFrame({"sample_id": df["sample_id"].iloc[:5]}))
    assert any(n.endswith("joined on 'sample_id': 1 of the 5 samples of t.csv has a row in the sheet (1 row)")
               for n in join.notes), join.notes


def test_samples_in_rows_rows_are_matched_by_id_and_kept_in_table_order(tmp_path):
    """Sheet rows in another order, samples on one side only: each kept sample gets its own sheet row,
    the table's order stays, and both kinds of missing ids are counted and named."""
    df = cohort()
    table = df[["sample_id", *genes(df)]].iloc[:50]  # S0050.. only in the sheet
    table.to_csv(tmp_path / "t.csv", index=False)
    rng = np.random.default_rng(1)
    sheet_rows = rng.permutation(np.r_[3:60])  # S0000-S0002 only in the table
    sheet = write_sheet(df, tmp_path / "s.csv", order=sheet_rows)
    ds, notes = data.load_dataset(tmp_path / "t.csv", target="disease", samples=sheet)
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}  # pandas 3: default
    kept = pd.read_csv(tmp_path / "t.csv", **exact).iloc[3:]  # the numbers as written
    assert list(ds.ids) == list(kept["sample_id"])
    np.testing.assert_array_equal(ds.X, kept[genes(df)].to_numpy())
    assert [ds.classes[k] for k in ds.y] == list(df["disease"].iloc[3:50])
    assert list(ds.groups) == list(df["patient_id"].iloc[3:50])
    text = "\n".join(notes)
    assert "joined on 'sample_id': 47 of the 50 samples of" in text
    left_out = "\n".join(ds.warnings)  # data lost: a warning, which -q does not hide
    assert "3 samples of" in left_out and "(left out): 'S0000', 'S0001', 'S0002'" in left_out
    unused = next(n for n in notes if "10 of its 57 rows match no sample of" in n)
    assert unused.count("'S005") == 5 and "and 5 more" in unused

    res = run(["train", str(tmp_path / "t.csv"), "--samples", sheet, "--target", "disease", "-o",
               str(tmp_path / "m.mlp"), *FAST, "-q"])
    assert res.exit_code == 0, res.output
    assert "warning: --samples" in res.output and "(left out): 'S0000', 'S0001', 'S0002'" in res.output  # under -q

    # predict keeps every sample of the table (the sheet only adds ids, batch, group), and says which lack a row
    out = tmp_path / "p.csv"
    doc = as_json(run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "--samples", sheet, "-o",
                       str(out), "--json", "--chunksize", "7"]))
    assert list(pd.read_csv(out)["sample_id"]) == list(table["sample_id"])
    assert any("3 samples of" in n and "kept without the sheet's columns" in n for n in doc["notes"])
    # evaluate leaves them out: they have no label
    result = as_json(run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "--samples", sheet,
                          "--chunksize", "7", "--json"]))
    assert result["n"] == 47
    assert any("3 samples of" in w and "(left out)" in w for w in result["warnings"])


def test_samples_left_out_whose_ids_carry_a_prefix_are_pointed_to(tmp_path):
    """Half the sheet's ids written with a prefix ('zz' + the table's id): half the samples lost their label and
    were left out of training with a note that -q hid. Now a warning, which names the prefix."""
    df = cohort()
    df[["sample_id", *genes(df)]].to_csv(tmp_path / "t.csv", index=False)
    sheet = df[["sample_id", "patient_id", "disease"]].copy()
    sheet.loc[::2, "sample_id"] = "zz" + sheet.loc[::2, "sample_id"]
    sheet.to_csv(tmp_path / "s.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--samples", str(tmp_path / "s.csv"), "--target", "disease", "-o",
               str(tmp_path / "m.mlp"), *FAST, "-q"])
    assert res.exit_code == 0, res.output
    said = next(line for line in res.output.splitlines() if "no row in the sheet" in line)
    assert said.startswith("warning: --samples") and "30 samples of" in said and "(left out)" in said
    assert "prefix or suffix" in said and "'S0000'" in said and "'zzS0000'" in said


def test_predict_with_a_sheet_streams_per_piece_with_the_same_output(tmp_path):
    """Pieces of any size, text or parquet input: the same predictions, the sheet's batch in the shift
    check's unseen-batch warning."""
    df = cohort()
    df[["sample_id", "patient_id", "batch", "disease", *genes(df)]].to_csv(tmp_path / "train.csv", index=False)
    assert run(["train", str(tmp_path / "train.csv"), "--target", "disease", "-o", str(tmp_path / "m.mlp"),
                *FAST]).exit_code == 0
    new = cohort(seed=3, prefix="N")
    new["batch"] = "B9"  # not seen in training
    new[["sample_id", *genes(new)]].to_csv(tmp_path / "new.csv", index=False)
    new[["sample_id", *genes(new)]].to_parquet(tmp_path / "new.parquet", index=False)
    sheet = write_sheet(new, tmp_path / "sheet.csv")
    outputs = []
    for source, chunk in (("new.csv", "5"), ("new.csv", "1000"), ("new.parquet", "4")):
        out = tmp_path / f"p{len(outputs)}.csv"
        doc = as_json(run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / source), "--samples", sheet, "-o",
                           str(out), "--chunksize", chunk, "--json"]))
        assert any("'B9' (60 samples) not seen in training" in w for w in doc["warnings"]), doc["warnings"]
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


# ── ids ──────────────────────────────────────────────────────────────────────────────────────────────────


def test_ids_match_as_exact_strings_after_stripping_whitespace(tmp_path):
    frame = pd.DataFrame({"sample_id": ["007", "7", "S1", "s1"], "g1": [1.0, 2.0, 3.0, 4.0], "g2": [0.0, 1.0, 0.0, 1.0]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "s.csv").write_text("sample_id,disease\n  7 ,b\n007,a\ns1 ,d\nS1,c\n")
    ds, _ = data.load_dataset(tmp_path / "t.csv", target="disease", samples=str(tmp_path / "s.csv"))
    assert list(ds.ids) == ["007", "7", "S1", "s1"]
    assert [ds.classes[k] for k in ds.y] == ["a", "b", "c", "d"]


def test_no_match_is_one_line_error_naming_both_files_and_example_ids(tmp_path, geo):
    df, matrix, _ = geo
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame({"title": [f"tumour {i}" for i in range(4)], "gsm": df["sample_id"].iloc[:4],
                  "disease": ["a", "b", "a", "b"]}).to_csv(wrong, index=False)
    out = tmp_path / "m.mlp"
    res = run(["train", matrix, "--features-in-rows", "--samples", str(wrong), "--target", "disease", "-o", str(out)])
    assert_clean_error(res, "no sample of", matrix, str(wrong), "'S0000'", "'tumour 0'", "--id gsm")
    assert not out.exists()
    # the hint is right: --id names the sheet's column holding the matrix's sample ids
    doc = as_json(run(["train", matrix, "--features-in-rows", "--samples", str(wrong), "--id", "gsm", "--target",
                       "disease", "-o", str(out), "--json", "--epochs", "2", "--hidden", "", "--folds", "1",
                       "--val-size", "0.5", "--no-group"]))
    assert doc["split"]["n_train"] + doc["split"]["n_val"] == 4

    (tmp_path / "case.csv").write_text("sample_id,disease\n" + "".join(f"{s.lower()},a\n" for s in df["sample_id"]))
    assert_clean_error(run(["train", matrix, "--features-in-rows", "--samples", str(tmp_path / "case.csv"),
                            "--target", "disease", "-o", str(out)]), "differ in letter case only")

    model_path = tmp_path / "ok.mlp"
    df[["sample_id", "disease", *genes(df)]].to_csv(tmp_path / "t.csv", index=False)
    assert run(["train", str(tmp_path / "t.csv"), "--target", "disease", "-o", str(model_path), *FAST]).exit_code == 0
    for command in (["predict", "-o", str(tmp_path / "p.csv")], ["evaluate", "-o", str(tmp_path / "e.json")]):
        res = run([command[0], str(model_path), matrix, "--features-in-rows", "--samples", str(wrong), *command[1:]])
        assert_clean_error(res, "no sample of", str(wrong))
        assert not os.path.exists(command[2])
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_duplicate_and_missing_ids_in_the_sheet_name_the_file_id_and_lines(tmp_path, geo):
    _, matrix, _ = geo
    sheet = tmp_path / "dup.csv"
    sheet.write_text('sample_id,disease,note\nS0000,a,x\n\nS0001,b,"two\nlines"\nS0002,a,y\nS0001 ,b,z\n')
    res = run(["train", matrix, "--features-in-rows", "--samples", str(sheet), "--target", "disease"])
    assert_clean_error(res, str(sheet), "duplicate sample id 'S0001'", "lines 4 and 7")
    empty = tmp_path / "empty_id.csv"
    empty.write_text("sample_id,disease\nS0000,a\n,b\n")
    assert_clean_error(run(["train", matrix, "--features-in-rows", "--samples", str(empty), "--target", "disease"]),
                       str(empty), "empty at line 3")
    parquet = tmp_path / "dup.parquet"
    pd.DataFrame({"sample_id": ["S0000", "S0001", "S0000"], "disease": ["a", "b", "a"]}).to_parquet(parquet)
    assert_clean_error(run(["cv", matrix, "--features-in-rows", "--samples", str(parquet)]), str(parquet),
                       "duplicate sample id 'S0000'", "rows 1 and 3")


def test_missing_target_names_the_column_and_the_sheet(tmp_path, geo):
    _, matrix, sheet = geo
    res = run(["train", matrix, "--features-in-rows", "--samples", sheet, "--target", "diseas"])
    assert_clean_error(res, "--target column 'diseas'", sheet, "did you mean 'disease'")
    res = run(["train", matrix, "--features-in-rows", "--samples", sheet])  # the default, label
    assert_clean_error(res, "'label'", sheet, "the sheet's columns: 'sample_id', 'patient_id'")


def test_a_sheet_column_is_never_a_feature(tmp_path, geo):
    """A column of both files is an error when it would take a role, else the table's copy is used; a
    sheet column named like a model feature the table lacks does not stand in for it."""
    df, matrix, _ = geo
    table = df[["sample_id", "batch", *genes(df)]]
    table.to_csv(tmp_path / "t.csv", index=False)
    both = tmp_path / "both.csv"
    df[["sample_id", "disease", "batch", "g01"]].assign(g01=99.0).to_csv(both, index=False)
    assert_clean_error(run(["train", str(tmp_path / "t.csv"), "--samples", str(both), "--target", "disease"]),
                       "'batch' is in both", str(both))
    ds, notes = data.load_dataset(tmp_path / "t.csv", target="disease", batch=None, samples=str(both), drop=["batch"])
    assert ds.feature_names == genes(df)
    np.testing.assert_allclose(ds.X[:, 1], df["g01"].to_numpy())  # the table's g01, not the sheet's 99
    assert any("'batch', 'g01' are also columns of" in n and "the table's columns are used" in n for n in notes)

    model = tmp_path / "m.mlp"
    df[["sample_id", "disease", *genes(df)]].to_csv(tmp_path / "full.csv", index=False)
    assert run(["train", str(tmp_path / "full.csv"), "--target", "disease", "-o", str(model), *FAST]).exit_code == 0
    lacking = tmp_path / "lacking.csv"
    df[["sample_id", *genes(df)[1:]]].to_csv(lacking, index=False)  # no g00
    sheet = tmp_path / "g00.csv"
    df[["sample_id", "g00"]].to_csv(sheet, index=False)
    assert_clean_error(run(["predict", str(model), str(lacking), "--samples", str(sheet)]), "lacks 1 of the 8 features",
                       "'g00'")


# ── formats, options, config ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", ["sheet.parquet", "sheet.tsv.gz", "sheet_rownames.csv", "sheet_semicolon.txt"])
def test_sheet_formats(tmp_path, geo, name):
    df, matrix, reference = geo
    path = tmp_path / name
    sheet = pd.read_csv(reference)
    if name.endswith(".parquet"):
        sheet.to_parquet(path, index=False)
    elif name.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            sheet.to_csv(fh, sep="\t", index=False)
    elif "rownames" in name:  # R's write.csv(colData(dds)): the ids are row names under an empty header cell
        sheet.set_index("sample_id").rename_axis(None).to_csv(path)
    else:  # semicolons, decimal commas: detected as for every table
        sheet.assign(age=np.linspace(40.5, 70.5, len(sheet))).to_csv(path, sep=";", decimal=",", index=False)
    want, _ = data.load_dataset(matrix, features_in_rows=True, target="disease", samples=reference)
    got, notes = data.load_dataset(matrix, features_in_rows=True, target="disease", samples=str(path))
    np.testing.assert_array_equal(got.X, want.X)
    np.testing.assert_array_equal(got.y, want.y)
    np.testing.assert_array_equal(got.groups, want.groups)
    if "semicolon" in name:
        assert any("semicolon" in n for n in notes)
        age, _ = data.load_dataset(matrix, features_in_rows=True, target="age", samples=str(path))
        assert age.task == "regression" and age.y.max() == 70.5


def test_config_file_key_and_other_commands(tmp_path, geo):
    df, matrix, sheet = geo
    config = tmp_path / "c.toml"
    config.write_text(f'samples = "{sheet}"\ntarget = "disease"\nfeatures-in-rows = true\n')
    out = tmp_path / "m.mlp"
    doc = as_json(run(["train", matrix, "--config", str(config), "-o", str(out), "--json", *FAST]))
    assert any("--samples" in n and "60 of the 60 samples" in n for n in doc["notes"])
    bad = tmp_path / "bad.toml"
    bad.write_text("samples = 3\n")
    assert_clean_error(run(["train", matrix, "--config", str(bad)]), "samples", code=2)

    common = [matrix, "--features-in-rows", "--samples", sheet, "--target", "disease", "--epochs", "3", "--hidden", ""]
    assert as_json(run(["cv", *common, "--folds", "2", "--json"]))["folds"] == 2
    assert run(["tune", *common, "--folds", "2", "--grid", "l2=0,1e-3", "-q"]).exit_code == 0
    assert as_json(run(["diagnose", *common, "--learning-curve", "--fractions", "0.5,1", "--json"]))["sizes"]
    res = run(["gradcheck", "--model", str(out), "--data", matrix, "--samples", sheet])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("command", ["train", "cv", "predict", "evaluate", "gradcheck"])
def test_bad_sheet_path_is_one_line_error_with_no_output(tmp_path, geo, command):
    df, matrix, sheet = geo
    model = tmp_path / "m.mlp"
    assert run(["train", matrix, "--features-in-rows", "--samples", sheet, "--target", "disease", "-o", str(model),
                *FAST]).exit_code == 0
    out = tmp_path / "out.csv"
    for missing in (str(tmp_path / "nope.csv"), str(tmp_path)):
        args = {
            "train": ["train", matrix, "--features-in-rows", "--target", "disease", "-o", str(tmp_path / "new.mlp")],
            "cv": ["cv", matrix, "--features-in-rows", "--target", "disease", "--oof", str(out)],
            "predict": ["predict", str(model), matrix, "--features-in-rows", "-o", str(out)],
            "evaluate": ["evaluate", str(model), matrix, "--features-in-rows", "-o", str(out.with_suffix(".json"))],
            "gradcheck": ["gradcheck", "--model", str(model), "--data", matrix],
        }[command]
        res = run([*args, "--samples", missing])
        assert_clean_error(res, "--samples", missing)
        assert not out.exists() and not out.with_suffix(".json").exists() and not (tmp_path / "new.mlp").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_library_prepare_and_errors(tmp_path, geo):
    df, matrix, sheet = geo
    model = tmp_path / "m.mlp"
    assert run(["train", matrix, "--features-in-rows", "--samples", sheet, "--target", "disease", "-o", str(model),
                *FAST]).exit_code == 0
    prepared = lib.prepare(model_io.load(model), matrix, roles=lib.RoleFlags(features_in_rows=True, samples=sheet))
    assert list(prepared.ids) == list(df["sample_id"]) and prepared.X.shape == (60, 8)
    with pytest.raises(DataError, match="--id column 'nope' not found in --samples"):
        data.read_sample_sheet(sheet, id="nope")
    with pytest.raises(DataError, match="its id column 'title'"):
        data.load_dataset(write_rows(df, tmp_path), target="disease", samples=sheet, id="title")


def write_rows(df: pd.DataFrame, tmp_path) -> str:
    path = tmp_path / "rows.csv"
    df[["sample_id", *genes(df)]].to_csv(path, index=False)
    return str(path)


def test_val_data_takes_its_roles_from_the_same_sheet(tmp_path):
    """--val-data in the GEO layout: the validation matrix's target comes from the sheet as the training
    matrix's does; the result equals the hand-merged tables'."""
    train_df, val_df = cohort(), cohort(seed=3, prefix="V")
    sheet = write_sheet(pd.concat([train_df, val_df]), tmp_path / "sheet.csv")
    train_m, val_m = write_matrix(train_df, tmp_path / "t.tsv"), write_matrix(val_df, tmp_path / "v.tsv")
    cols = ["sample_id", "patient_id", "batch", "disease"]
    train_df[cols + genes(train_df)].to_csv(tmp_path / "t.csv", index=False)
    val_df[cols + genes(val_df)].to_csv(tmp_path / "v.csv", index=False)
    opts = ["--epochs", "4", "--hidden", "", "--folds", "1", "--target", "disease", "--json"]
    doc = as_json(run(["train", train_m, "--features-in-rows", "--samples", sheet, "--val-data", val_m,
                       "-o", str(tmp_path / "geo.mlp"), *opts]))
    ref = as_json(run(["train", str(tmp_path / "t.csv"), "--val-data", str(tmp_path / "v.csv"),
                       "-o", str(tmp_path / "ref.mlp"), *opts]))
    assert doc["validation_metrics"] == ref["validation_metrics"]


def test_no_output_may_replace_the_sample_sheet(tmp_path, geo):
    """predict, evaluate, explain, cv and tune wrote their outputs over the --samples sheet they read (the
    check that an output names no input was handed the sheet after the role flags had taken it: None);
    train refused. Each is now a usage error before any work, and the sheet is untouched."""
    df, matrix, sheet = geo
    model = tmp_path / "m.mlp"
    assert run(["train", matrix, "--features-in-rows", "--samples", sheet, "--target", "disease", *FAST, "-q",
                "-o", str(model)]).exit_code == 0
    before = open(sheet, "rb").read()
    reading = ["--features-in-rows", "--samples", sheet]
    for args, flag in (
            (["predict", str(model), matrix, *reading, "-o", sheet], "--out"),
            (["predict", str(model), matrix, *reading, "-o", str(tmp_path / "p.csv"), "--shift-report", sheet],
             "--shift-report"),
            (["evaluate", str(model), matrix, *reading, "--target", "disease", "-o", sheet], "--out"),
            (["explain", str(model), matrix, *reading, "-o", sheet], "--out"),
            (["cv", matrix, *reading, "--target", "disease", *FAST, "--oof", sheet], "--oof"),
            (["tune", matrix, *reading, "--target", "disease", "--grid", "lr=1e-3", "--results", sheet], "--results")):
        res = run(args)
        assert_clean_error(res, flag, "--samples", code=2)
        assert open(sheet, "rb").read() == before, args


def test_integer_sample_ids_in_a_parquet_sheet_join(tmp_path, geo):
    """A sheet whose id column holds integers (a parquet int64 column: no string at all) failed with an
    internal error (pandas' .str accessor on a column without strings)."""
    df, _, _ = geo
    numbered = df.assign(sample_id=np.arange(len(df)))
    matrix = write_matrix(numbered, tmp_path / "matrix.tsv")
    sheet = numbered[["sample_id", "patient_id", "disease"]]
    sheet.to_parquet(tmp_path / "sheet.parquet", index=False)
    model = tmp_path / "m.mlp"
    res = run(["train", matrix, "--features-in-rows", "--samples", str(tmp_path / "sheet.parquet"), "--target",
               "disease", *FAST, "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    assert model_io.load(model).fit is not None


def test_ids_differing_only_in_surrounding_spaces_are_a_duplicate_not_one_shared_sheet_row(tmp_path, geo):
    """'S0000' and 'S0000 ' match the same sheet row once spaces are stripped: both would silently take its
    label and patient. Every command refuses them, naming both spellings, in either layout and in any piece."""
    df, _, sheet = geo
    table = df[["sample_id", *genes(df)]].copy()
    table.loc[1, "sample_id"] = "S0000 "
    table.to_csv(tmp_path / "t.csv", index=False)
    matrix = write_matrix(table, tmp_path / "m.tsv")
    both = ("duplicate sample id", "'S0000'", "'S0000 '")
    res = run(["train", str(tmp_path / "t.csv"), "--samples", sheet, "--target", "disease",
               "-o", str(tmp_path / "x.mlp"), *FAST])
    assert_clean_error(res, str(tmp_path / "t.csv"), "(row 1)", "(row 2)", *both)
    assert_clean_error(run(["cv", matrix, "--features-in-rows", "--samples", sheet, "--target", "disease", *FAST]),
                       matrix, "(header cell 2)", "(header cell 3)", *both)
    model_path = tmp_path / "ok.mlp"
    df[["sample_id", "disease", *genes(df)]].to_csv(tmp_path / "train.csv", index=False)
    res = run(["train", str(tmp_path / "train.csv"), "--target", "disease", "-o", str(model_path), *FAST])
    assert res.exit_code == 0, res.output
    for args in ([str(tmp_path / "t.csv"), "--chunksize", "1"], [matrix, "--features-in-rows"]):
        for command in (["evaluate", "-o", str(tmp_path / "e.json")], ["predict", "-o", str(tmp_path / "p.csv")]):
            res = run([command[0], str(model_path), *args, "--samples", sheet, *command[1:]])
            assert_clean_error(res, *both)
            assert not os.path.exists(command[2])


def test_one_coincidental_prefix_is_not_taken_for_a_pattern():
    from mlpcli.data.samples import one_holds_other

    ours = ["S10", "S11", "S12", "S13"]
    assert one_holds_other(ours, np.array(["S100", "T1", "T2"], dtype=object)) is None
    assert one_holds_other(ours, np.array([f"x_{s}" for s in ours], dtype=object)) == ("S10", "x_S10")


def test_predict_says_once_that_a_sheets_target_is_ignored(tmp_path):
    """predict with --samples noted both "ignored the target column 'label' (not needed to predict)" and "--samples
    ...: ignored 1 column that takes no role: 'label' (... --target ... to use one)"."""
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(40)]
    matrix = pd.DataFrame(rng.normal(size=(6, 40)), index=[f"G{j}" for j in range(6)], columns=ids)
    matrix.index.name = "gene"
    matrix.to_csv(tmp_path / "m.csv")
    pd.DataFrame({"sample_id": ids, "label": ["ab"[i % 2] for i in range(40)]}).to_csv(tmp_path / "s.csv", index=False)
    sheet = ["--features-in-rows", "--samples", str(tmp_path / "s.csv")]
    model = tmp_path / "x.mlp"
    assert run(["train", str(tmp_path / "m.csv"), *sheet, "--no-group", "--epochs", "1", "--folds", "1", "-q",
                "-o", str(model)]).exit_code == 0
    res = run(["predict", str(model), str(tmp_path / "m.csv"), *sheet, "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "ignored the target column 'label'" in res.output and "no role: 'label'" not in res.output


@pytest.mark.parametrize("writer", ["pandas to_csv", "R write.csv, reordered", "pandas to_parquet, filtered"])
def test_a_sheet_saved_with_its_row_numbers_joins_on_its_ids(tmp_path, writer):
    """pandas' to_csv (index=True by default) and R's write.csv put an unnamed column of row numbers first; it was
    read as the sample ids, and with samples numbered 1..n every label went to another sample (exit 0, balanced
    accuracy at chance). Row numbers are no ids: the sheet's first named column is."""
    df = cohort()
    df["sample_id"] = [str(i + 1) for i in range(len(df))]
    table = tmp_path / "table.csv"
    df[["sample_id", *genes(df)]].to_csv(table, index=False)
    sheet = df[["sample_id", "patient_id", "disease"]].rename(columns={"sample_id": "sample"})
    if writer == "pandas to_csv":
        path = tmp_path / "sheet.csv"
        sheet.to_csv(path)  # 0, 1, 2, ... under an empty header cell
    elif writer == "R write.csv, reordered":
        path = tmp_path / "sheet.csv"
        shuffled = sheet.sample(frac=1, random_state=0)
        shuffled.index = range(1, len(shuffled) + 1)  # 1, 2, 3, ... beside other samples
        shuffled.to_csv(path)
    else:
        path = tmp_path / "sheet.parquet"
        sheet.sample(frac=0.5, random_state=1).to_parquet(path)  # a filtered frame: its index stored, without a name
    ds, notes = data.load_dataset(str(table), samples=str(path), target="disease", group="patient_id")
    truth = dict(zip(df["sample_id"], df["disease"].astype(str)))
    assert [ds.classes[k] for k in ds.y] == [truth[i] for i in ds.ids]
    assert any("numbers the rows" in n and "'sample'" in n for n in notes), notes


def test_validation_samples_without_a_sheet_row_are_said(tmp_path):
    """train --val-data with --samples: 10 of the validation table's samples had no row in the sheet and were left out
    without a word (the training table's join note the only one shown)."""
    train_df, val_df = cohort(seed=0, prefix="S"), cohort(seed=1, prefix="T")
    train_path, val_path = tmp_path / "train.csv", tmp_path / "val.csv"
    train_df[["sample_id", *genes(train_df)]].to_csv(train_path, index=False)
    val_df[["sample_id", *genes(val_df)]].to_csv(val_path, index=False)
    both = pd.concat([train_df, val_df.iloc[10:]])[["sample_id", "patient_id", "disease"]]
    sheet = tmp_path / "sheet.csv"
    both.to_csv(sheet, index=False)
    res = run(["train", str(train_path), "--samples", str(sheet), "--val-data", str(val_path), "--target", "disease",
               "--group", "patient_id", "-o", str(tmp_path / "m.mlp"), *FAST[:4]])
    assert res.exit_code == 0, res.output
    assert f"warning: --val-data {val_path}: --samples {sheet}: 10 samples of {val_path} have no row in the sheet " \
           "(left out)" in res.output.replace("\n", " ")


def test_ids_spelled_otherwise_after_many_simply_missing_are_an_error(tmp_path):
    """The ids of the table compared with unmatched sheet rows were its first 20 unmatched ones: 25 samples missing
    from the sheet, then 20 whose ids the sheet writes in lower case, lost those 20 rows with a warning only."""
    df = cohort()  # S0000 ... S0059
    path = tmp_path / "table.csv"
    df[["sample_id", *genes(df)]].to_csv(path, index=False)
    sheet = df[["sample_id", "patient_id", "disease"]].iloc[25:].copy()
    sheet.loc[sheet.index[-20:], "sample_id"] = sheet["sample_id"].iloc[-20:].str.lower()
    sheet_path = tmp_path / "sheet.csv"
    sheet.to_csv(sheet_path, index=False)
    with pytest.raises(DataError, match="some of them differ only in letter case.*'S0040' in .*'s0040' in the sheet"):
        data.load_dataset(str(path), samples=str(sheet_path), target="disease", group="patient_id")


@pytest.mark.parametrize("side", ["sheet", "table"])
def test_ids_written_as_floats_are_named(tmp_path, side):
    """Sample numbers read as floating point somewhere and written back (1.0 for 1) matched nothing, and half of them
    so lost their rows with a count only (exit 0): said as the leading zeros are."""
    df = cohort()
    df["sample_id"] = [str(i + 1) for i in range(len(df))]
    table, sheet = df[["sample_id", *genes(df)]].copy(), df[["sample_id", "patient_id", "disease"]].copy()
    half = (table if side == "table" else sheet)
    half.loc[half.index[::2], "sample_id"] = half["sample_id"].iloc[::2] + ".0"
    table.to_csv(tmp_path / "table.csv", index=False)
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    with pytest.raises(DataError, match=r"only in a whole number's decimals \(1\.0 for 1"):
        data.load_dataset(str(tmp_path / "table.csv"), samples=str(tmp_path / "sheet.csv"), target="disease",
                          group="patient_id")


def test_a_sheet_whose_ids_stand_after_its_labels_names_the_column(tmp_path):
    """Without --id the first column is the ids: a sheet beginning with its labels said "duplicate sample id
    'Normal' ... of the id column 'label'" without naming the column that holds the ids."""
    df = cohort()
    path = write_matrix(df, tmp_path / "matrix.tsv")
    sheet = tmp_path / "sheet.csv"
    df[["disease", "patient_id", "sample_id"]].rename(columns={"sample_id": "sid"}).to_csv(sheet, index=False)
    with pytest.raises(DataError, match="its column 'sid' has one value per row: --id sid joins on it"):
        data.load_dataset(path, features_in_rows=True, samples=str(sheet), target="disease", group="patient_id")


def test_a_table_whose_ids_are_its_row_numbers_is_not_joined_on_them(tmp_path):
    """A table written with pandas' to_csv and no id column: its index, 0, 1, 2, ..., read as the sample ids (R's row
    names), was joined to a sheet of samples numbered 1..n, every sample taking the next one's row (exit 0)."""
    df = cohort()
    df["sample_id"] = [str(i + 1) for i in range(len(df))]
    path = tmp_path / "table.csv"
    df[genes(df)].to_csv(path)  # the index, 0 .. n-1, under an empty header cell
    sheet = tmp_path / "sheet.csv"
    df[["sample_id", "patient_id", "disease"]].to_csv(sheet, index=False)
    with pytest.raises(DataError, match="table.csv: its first column has no name and numbers the rows .* row numbers, "
                                        "which are no sample ids"):
        data.load_dataset(str(path), samples=str(sheet), target="disease", group="patient_id")


@pytest.mark.parametrize("command", ["evaluate", "predict", "explain"])
def test_a_new_cohort_whose_ids_are_its_row_numbers_is_not_joined_on_them(tmp_path, command):
    """The same table in evaluate (whose labels the sheet gives), predict (its groups, batches) and explain: each
    sample took the next one's label, exit 0 with balanced accuracy at chance. A table with its ids is joined."""
    df = cohort()
    df[["sample_id", "patient_id", "disease", *genes(df)]].to_csv(tmp_path / "train.csv", index=False)
    assert run(["train", str(tmp_path / "train.csv"), "--target", "disease", "-o", str(tmp_path / "m.mlp"),
                *FAST]).exit_code == 0
    new = cohort(seed=3)
    new["sample_id"] = [str(i + 1) for i in range(len(new))]
    new[genes(new)].to_csv(tmp_path / "rows.csv")  # the index, 0 .. n-1, under an empty header cell
    new[["sample_id", *genes(new)]].to_csv(tmp_path / "ids.csv", index=False)
    sheet = tmp_path / "sheet.csv"
    new[["sample_id", "patient_id", "disease"]].to_csv(sheet, index=False)
    out = tmp_path / "out.csv"
    extra = {"evaluate": ["--target", "disease"], "predict": ["-o", str(out)],
             "explain": ["--target", "disease", "-o", str(out)]}[command]
    res = run([command, str(tmp_path / "m.mlp"), str(tmp_path / "rows.csv"), "--samples", str(sheet), *extra])
    assert_clean_error(res, "rows.csv: its first column has no name and numbers the rows", "--id")
    assert not out.exists()
    assert run([command, str(tmp_path / "m.mlp"), str(tmp_path / "ids.csv"), "--samples", str(sheet),
                *extra]).exit_code == 0


def test_a_sheet_repeating_its_header_skips_that_row(tmp_path):
    """Two sheets pasted together, the second's header between them: it was an unmatched sample named 'sample_id'
    and kept a column of numbers as text (an age read as 76 classes)."""
    df = cohort()
    sheet = df[["sample_id", "patient_id", "disease"]].copy()
    sheet["age"] = np.arange(len(sheet)) + 30.5
    text = sheet.to_csv(index=False).splitlines()
    path = tmp_path / "sheet.csv"
    path.write_text("\n".join(text[:31] + [text[0]] + text[31:]) + "\n")
    read = data.samples.read_sample_sheet(str(path))
    assert len(read.ids) == len(df) and read.frame["age"].dtype.kind == "f"
    assert any("skipped 1 row repeating its header" in n for n in read.notes)
    dup = text[:31] + [text[0]] + text[31:] + [text[5]]  # a repeated id is still said at its lines of the file
    path.write_text("\n".join(dup) + "\n")
    with pytest.raises(DataError, match="duplicate sample id 'S0004' at lines 6 and 63"):
        data.samples.read_sample_sheet(str(path))
