"""Tables as other tools export them: Excel sample sheets (empty rows, decimal-comma locales), ids that fail to
join for a reason the error names, GEO series matrices and featureCounts output, gene-symbol annotation columns,
and 10x CITE-seq antibody features."""

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io
from mlpcli.errors import DataError
from cli_helpers import assert_clean_error, run
from tables import write_cellranger


FAST = ["--epochs", "3", "--hidden", "", "--folds", "2", "--seed", "0", "-q"]


N, G = 24, 12


def cohort(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(genes x samples matrix indexed by gene id, sample sheet with id, disease and patient)."""
    rng = np.random.default_rng(seed)
    ids = [f"GSM{1000 + i}" for i in range(N)]
    disease = np.array(["case", "ctrl"] * (N // 2))
    X = rng.normal(size=(G, N)) + (disease == "case") * 1.5  # (genes, samples)
    matrix = pd.DataFrame(X, index=pd.Index([f"G{j}" for j in range(G)], name="ID_REF"), columns=ids)
    sheet = pd.DataFrame({"sample_id": ids, "disease": disease, "patient": [f"P{i // 2}" for i in range(N)]})
    return matrix, sheet


@pytest.fixture()
def geo(tmp_path):
    matrix, sheet = cohort()
    path = tmp_path / "matrix.tsv"
    matrix.to_csv(path, sep="\t")
    return tmp_path, str(path), matrix, sheet


def excel_csv(sheet: pd.DataFrame, path, tail: str = "") -> str:
    """The sheet as Excel writes a CSV in a decimal-comma locale: BOM, ';', CRLF, and `tail` after the rows."""
    lines = [";".join(sheet.columns)] + [";".join(str(v) for v in row) for row in sheet.itertuples(index=False)]
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        fh.write("\r\n".join(lines) + "\r\n" + tail)
    return str(path)


# ── sample sheets from a spreadsheet ─────────────────────────────────────────────────────────────────────


def test_excel_sheet_with_empty_rows_below_the_data_joins(geo):
    """Excel writes ';;' lines for formatted empty cells below the data: they were 'the id column is empty at
    line N', now skipped with a note."""
    tmp, matrix, _, sheet = geo
    path = excel_csv(sheet, tmp / "sheet.csv", tail=";;\r\n;;\r\n")
    res = run(["train", matrix, "--features-in-rows", "--samples", path, "--target", "disease",
               "-o", str(tmp / "m.mlp"), *FAST])
    assert res.exit_code == 0, res.output
    read = data.read_sample_sheet(path)
    assert len(read.ids) == N and any("skipped 2 empty rows" in n for n in read.notes)


def test_sheet_errors_name_file_lines_past_an_empty_row(tmp_path):
    """An empty row in the middle is skipped, and a repeated id is still named by its lines in the file."""
    _, sheet = cohort()
    sheet = pd.concat([sheet.iloc[:3], sheet.iloc[[1]]])
    path = excel_csv(sheet.iloc[:2], tmp_path / "s.csv", tail=";;\r\n" + "\r\n".join(
        ";".join(str(v) for v in row) for row in sheet.iloc[2:].itertuples(index=False)) + "\r\n")
    with pytest.raises(DataError, match=r"duplicate sample id 'GSM1001' at lines 3 and 6 "):
        data.read_sample_sheet(path)


def test_a_row_with_fields_but_no_id_is_still_an_error(tmp_path):
    _, sheet = cohort()
    path = excel_csv(sheet, tmp_path / "s.csv", tail=";case;P9\r\n")
    with pytest.raises(DataError, match=r"the id column 'sample_id' is empty at line 26"):
        data.read_sample_sheet(path)


@pytest.mark.parametrize("name, needles", [
    ("sheet.xlsx", ["--samples", "sheet.xlsx", "save the spreadsheet as CSV"]),
    ("cells.h5ad", ["--samples", "cells.h5ad", ".csv, .tsv or .txt"]),
], ids=["excel", "h5ad"])
def test_sheet_of_a_format_a_sheet_cannot_be(geo, name, needles):
    """The table readers' message offered standard input and .h5ad, which --samples refuses."""
    tmp, matrix, _, _ = geo
    (tmp / name).write_bytes(b"PK\x03\x04 not a table")
    res = run(["train", matrix, "--features-in-rows", "--samples", str(tmp / name), "--target", "disease", *FAST])
    assert_clean_error(res, *needles)
    assert "standard input" not in res.output


def test_sheet_that_is_a_directory(geo):
    tmp, matrix, _, _ = geo
    res = run(["train", matrix, "--features-in-rows", "--samples", str(tmp), "--target", "disease", *FAST])
    assert_clean_error(res, "--samples", "is a directory")
    assert "Errno" not in res.output


# ── ids that do not join: the error says why ─────────────────────────────────────────────────────────────


def test_leading_zeros_dropped_by_a_spreadsheet_are_named(tmp_path):
    matrix, sheet = cohort()
    matrix.columns = [f"{i + 1:03d}" for i in range(N)]
    matrix.to_csv(tmp_path / "m.tsv", sep="\t")
    sheet["sample_id"] = [str(i + 1) for i in range(N)]  # Excel opened the CSV: 001 became 1
    sheet.to_csv(tmp_path / "s.csv", index=False)
    res = run(["train", str(tmp_path / "m.tsv"), "--features-in-rows", "--samples", str(tmp_path / "s.csv"),
               "--target", "disease", *FAST])
    assert_clean_error(res, "leading zeros only", "'001'", "'1'")


@pytest.mark.parametrize("sheet_ids, needle", [
    (lambda b: b[:-2], "holds the sheet's 'AAAC000000'"),  # Seurat without 10x's -1
    (lambda b: "lib1_" + b, "the sheet's 'lib1_AAAC000000-1' holds"),  # a merged object's sample prefix
], ids=["suffix", "prefix"])
def test_barcodes_with_a_suffix_or_prefix_on_one_side_are_named(tmp_path, sheet_ids, needle):
    barcodes = write_10x(tmp_path / "run")
    pd.DataFrame({"cell": [sheet_ids(b) for b in barcodes], "cell_type": ["T", "B"] * (len(barcodes) // 2)}) \
        .to_csv(tmp_path / "cells.csv", index=False)
    res = run(["train", str(tmp_path / "run"), "--samples", str(tmp_path / "cells.csv"), "--target", "cell_type",
               *FAST])
    assert_clean_error(res, needle, "prefix or suffix")


# ── files as GEO and featureCounts write them ────────────────────────────────────────────────────────────


def test_geo_series_matrix_file_reads_as_its_table(geo):
    """A series matrix given by name is read as its table (``data.geo``; tests/test_geo.py): here with the labels in
    --samples, as the same table without GEO's lines above and below it is, to the same model."""
    tmp, _, matrix, sheet = geo
    path = tmp / "GSE1_series_matrix.txt"
    with open(path, "w") as fh:
        fh.write('!Series_title\t"A study"\n!Series_geo_accession\t"GSE1"\n\n')
        fh.write("!Sample_title\t" + "\t".join(f'"{c}"' for c in matrix.columns) + "\n")
        fh.write("!series_matrix_table_begin\n")
        fh.write('"ID_REF"\t' + "\t".join(f'"{c}"' for c in matrix.columns) + "\n")
        for gene, row in matrix.iterrows():
            fh.write(f'"{gene}"\t' + "\t".join(f"{v:.4f}" for v in row) + "\n")
        fh.write("!series_matrix_table_end\n")
    sheet.to_csv(tmp / "s.csv", index=False)
    res = run(["train", str(path), "--samples", str(tmp / "s.csv"), "--target", "disease", "-o", str(tmp / "geo.mlp"),
               *FAST])
    assert res.exit_code == 0, res.output
    with open(path) as fh, open(tmp / "clean.tsv", "w") as out:
        out.writelines(line for line in fh if not line.startswith("!") and line.strip())
    res = run(["train", str(tmp / "clean.tsv"), "--features-in-rows", "--samples", str(tmp / "s.csv"),
               "--target", "disease", "-o", str(tmp / "m.mlp"), *FAST])
    assert res.exit_code == 0, res.output
    outputs = [run(["predict", str(tmp / m), str(tmp / "clean.tsv"), "--features-in-rows", "-o", "-", "-q"]).stdout
               for m in ("geo.mlp", "m.mlp")]
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == matrix.shape[1] + 1


def featurecounts(matrix: pd.DataFrame, path, comment: bool) -> str:
    with open(path, "w") as fh:
        if comment:
            fh.write('# Program:featureCounts v2.0.1; Command:"featureCounts" "-a" "genes.gtf"\n')
        fh.write("Geneid\tChr\tStart\tEnd\tStrand\tLength\t" + "\t".join(matrix.columns) + "\n")
        for gene, row in matrix.iterrows():
            fh.write(f"{gene}\tchr1;chr1\t1;50\t40;90\t+;+\t80\t" + "\t".join(str(int(abs(v) * 10)) for v in row)
                     + "\n")
    return str(path)


def test_featurecounts_comment_line_is_named(geo):
    tmp, _, matrix, sheet = geo
    sheet.to_csv(tmp / "s.csv", index=False)
    res = run(["train", featurecounts(matrix, tmp / "counts.txt", comment=True), "--features-in-rows",
               "--samples", str(tmp / "s.csv"), "--target", "disease", *FAST])
    assert_clean_error(res, "starts with '#'", "grep -v '^#'")


def test_featurecounts_annotation_columns_are_not_samples(geo):
    """Start, End and Length hold numbers: they were three 'samples' (left out of training with a note)."""
    tmp, _, matrix, sheet = geo
    sheet.to_csv(tmp / "s.csv", index=False)
    path = featurecounts(matrix, tmp / "counts.txt", comment=False)
    res = run(["train", path, "--features-in-rows", "--samples", str(tmp / "s.csv"), "--target", "disease", *FAST])
    assert_clean_error(res, "featureCounts", "Chr, Start, End, Strand, Length", "cut -f1,7-")


# ── annotation columns beside the samples ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("at", [0, 5], ids=["after-the-ids", "among-the-samples"])
@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_gene_symbol_column_is_not_taken_for_a_sample(geo, at, fmt):
    """A 'Gene Symbol' column (empty for control probes) beside the probe ids: training left it out as a
    sample without a sheet row, and predict failed naming a gene's row and a symbol as a number."""
    tmp, _, matrix, sheet = geo
    annotated = matrix.copy()
    annotated.insert(at, "Gene Symbol", [f"SYM{j}" if j % 4 else None for j in range(G)])
    path = tmp / f"annotated.{fmt}"
    annotated.to_csv(path, sep="\t") if fmt == "tsv" else annotated.to_parquet(path)
    sheet.to_csv(tmp / "s.csv", index=False)
    res = run(["train", str(path), "--features-in-rows", "--samples", str(tmp / "s.csv"), "--target", "disease",
               *FAST])
    assert_clean_error(res, "column 'Gene Symbol'", f"header cell {at + 2}", "holds text, not a sample's numbers")
    # predict (which keeps samples without a sheet row) says the same, and writes nothing
    model = tmp / "m.mlp"
    assert run(["train", str(tmp / "matrix.tsv"), "--features-in-rows", "--samples", str(tmp / "s.csv"),
                "--target", "disease", "-o", str(model), *FAST]).exit_code == 0
    out = tmp / "p.csv"
    res = run(["predict", str(model), str(path), "--features-in-rows", "--samples", str(tmp / "s.csv"),
               "-o", str(out)])
    assert_clean_error(res, "column 'Gene Symbol'", "holds text")
    assert not out.exists()


def test_label_rows_and_a_text_feature_row_are_not_annotation_columns(geo):
    """Text in a row (a label row, a dropped 'sex' row) leaves every sample with its numbers."""
    tmp, _, matrix, _ = geo
    m = matrix.astype(object)
    m.loc["label"] = ["case", "ctrl"] * (N // 2)
    m.loc["sex"] = ["F", "M", "M"] * (N // 3)
    m.to_csv(tmp / "m.tsv", sep="\t")
    res = run(["train", str(tmp / "m.tsv"), "--features-in-rows", "--drop", "sex", "--no-group",
               "-o", str(tmp / "m.mlp"), *FAST])
    assert res.exit_code == 0, res.output


def test_repeated_gene_names_say_where_and_what_to_do(geo):
    tmp, _, matrix, sheet = geo
    m = matrix.copy()
    m.index = pd.Index(["G0", "G1", "G2", "G0", *[f"G{j}" for j in range(4, G)]], name="ID_REF")
    m.to_csv(tmp / "m.tsv", sep="\t")
    sheet.to_csv(tmp / "s.csv", index=False)
    res = run(["train", str(tmp / "m.tsv"), "--features-in-rows", "--samples", str(tmp / "s.csv"),
               "--target", "disease", *FAST])
    assert_clean_error(res, "'G0' (×2)", "data rows 1, 4", "one row per gene")


# ── missing labels and patients: which sample ────────────────────────────────────────────────────────────


def test_missing_label_and_patient_in_the_sheet_name_the_sample(geo):
    tmp, matrix, _, sheet = geo
    s = sheet.copy()
    s.loc[3, "disease"] = None
    s.to_csv(tmp / "s.csv", index=False)
    res = run(["train", matrix, "--features-in-rows", "--samples", str(tmp / "s.csv"), "--target", "disease",
               *FAST])
    assert_clean_error(res, "target has missing values in 1 row ", "id 'GSM1003'")
    s = sheet.copy()
    s.loc[5, "patient"] = None
    s.to_csv(tmp / "s.csv", index=False)
    res = run(["train", matrix, "--features-in-rows", "--samples", str(tmp / "s.csv"), "--target", "disease",
               "--group", "patient", *FAST])
    assert_clean_error(res, "--group column 'patient' has 1 missing value;", "id 'GSM1005'")


def test_labels_differing_in_a_stray_space_or_case_are_a_warning(geo):
    tmp, matrix, _, sheet = geo
    s = sheet.copy()
    s.loc[[2, 6, 10, 14, 18], "disease"] = "case "
    s.to_csv(tmp / "s.csv", index=False)
    res = run(["train", matrix, "--features-in-rows", "--samples", str(tmp / "s.csv"), "--target", "disease",
               "-o", str(tmp / "m.mlp"), *FAST])
    assert res.exit_code == 0, res.output
    assert "differ only in letter case, spaces or Unicode form (an accent composed or not, a non-breaking space): 'case', 'case '" in res.output


# ── 10x directories with other feature types ─────────────────────────────────────────────────────────────


def write_10x(directory, n_cells: int = 60, n_genes: int = 10, n_antibodies: int = 0,
              antibody_names_genes: bool = False) -> list[str]:
    """A Cell Ranger 3 directory; `n_antibodies` Antibody Capture features after the genes (CITE-seq), named
    like the first genes' symbols with `antibody_names_genes` ('GENE0' the gene and the antibody)."""
    rng = np.random.default_rng(0)
    types = np.arange(n_cells) % 2
    counts = rng.poisson(1.0, size=(n_cells, n_genes + n_antibodies))
    counts[types == 0, :3] += 4
    counts[types == 0, n_genes:] += 50  # antibodies: another scale
    names = [f"GENE{j}" if antibody_names_genes else f"CD{j}" for j in range(n_antibodies)]
    return write_cellranger(directory, counts, ids=[f"ENSG{j:011d}" for j in range(n_genes)]
                            + [f"{name}_TotalSeqB" for name in names], symbols=[f"GENE{j}" for j in range(n_genes)] + names,
                            types=["Gene Expression"] * n_genes + ["Antibody Capture"] * n_antibodies)


def test_10x_antibody_capture_features_are_left_out_of_training(tmp_path):
    """scanpy's read_10x_mtx and Seurat's Read10X read Gene Expression alone; training took the antibodies too."""
    barcodes = write_10x(tmp_path / "run", n_antibodies=3)
    sheet = tmp_path / "cells.csv"
    pd.DataFrame({"barcode": barcodes, "cell_type": ["T", "B"] * (len(barcodes) // 2)}).to_csv(sheet, index=False)
    ds, notes = data.load_dataset(str(tmp_path / "run"), samples=str(sheet), target="cell_type")
    assert ds.feature_names == [f"ENSG{j:011d}" for j in range(10)] and ds.X.shape == (60, 10)
    assert any("left out 3 of other types (Antibody Capture 3)" in n for n in notes)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "run"), "--samples", str(sheet), "--target", "cell_type", "-o", str(model),
                *FAST]).exit_code == 0
    assert model_io.load(model).feature_names == ds.feature_names
    res = run(["predict", str(model), str(tmp_path / "run"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output


def test_feature_types_trains_on_the_antibodies_too(tmp_path):
    """CITE-seq's antibody counts type cells as well as genes do; training read Gene Expression alone, with no
    way to ask for the antibodies."""
    barcodes = write_10x(tmp_path / "run", n_antibodies=3)
    sheet = tmp_path / "cells.csv"
    pd.DataFrame({"barcode": barcodes, "cell_type": ["T", "B"] * (len(barcodes) // 2)}).to_csv(sheet, index=False)
    model = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "run"), "--samples", str(sheet), "--target", "cell_type", "--feature-types",
               "Gene Expression,Antibody Capture", "-o", str(model), *FAST])
    assert res.exit_code == 0, res.output
    names = model_io.load(model).feature_names
    assert len(names) == 13 and names[10:] == [f"CD{j}_TotalSeqB" for j in range(3)]
    res = run(["predict", str(model), str(tmp_path / "run"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "13 of the model's 13 features found" in res.output, res.output
    ds, notes = data.load_dataset(str(tmp_path / "run"), samples=str(sheet), target="cell_type",
                                  feature_types=["Antibody Capture"])
    assert ds.feature_names == [f"CD{j}_TotalSeqB" for j in range(3)]
    assert any("of the types 'Antibody Capture' (--feature-types); left out 10" in n for n in notes)
    assert_clean_error(run(["train", str(tmp_path / "run"), "--samples", str(sheet), "--target", "cell_type",
                            "--feature-types", "Peaks", *FAST]), "--feature-types", "no features of type 'Peaks'",
                       "'Gene Expression' (10), 'Antibody Capture' (3)")
    table = tmp_path / "t.csv"
    pd.DataFrame({"label": ["a", "b"] * 10, "g": range(20)}).to_csv(table, index=False)
    assert_clean_error(run(["train", str(table), "--feature-types", "Gene Expression", *FAST]), "--feature-types",
                       "not one", code=2)  # an option that does not apply to the input: a usage error


def test_10x_antibody_named_as_a_gene_under_the_symbols(tmp_path):
    """'GENE0' the gene and 'GENE0' the antibody made --var-names gene_symbols a 'repeats gene names' error in
    train and predict; the antibody is now named with its type."""
    barcodes = write_10x(tmp_path / "run", n_antibodies=2, antibody_names_genes=True)
    sheet = tmp_path / "cells.csv"
    pd.DataFrame({"barcode": barcodes, "cell_type": ["T", "B"] * (len(barcodes) // 2)}).to_csv(sheet, index=False)
    model = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "run"), "--samples", str(sheet), "--target", "cell_type",
               "--var-names", "gene_symbols", "-o", str(model), *FAST])
    assert res.exit_code == 0, res.output
    assert model_io.load(model).feature_names == [f"GENE{j}" for j in range(10)]
    res = run(["predict", str(model), str(tmp_path / "run"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    t = data.tenx.TenX(tmp_path / "run", var_names="gene_symbols")
    assert t.feature_names[10:] == ["GENE0 (Antibody Capture)", "GENE1 (Antibody Capture)"]


def test_one_antibody_named_as_a_gene_is_counted_in_the_singular(tmp_path):
    """"1 features of other types share a gene's name; named with their type"."""
    write_10x(tmp_path / "run", n_cells=4, n_genes=3, n_antibodies=1, antibody_names_genes=True)
    notes = data.tenx.TenX(tmp_path / "run", var_names="gene_symbols").notes
    assert any("1 feature of other types shares a gene's name; named with its type (e.g. 'GENE0 (Antibody "
               "Capture)')" in n for n in notes), notes


def test_cell_ranger_h5_file_says_how_to_read_it(tmp_path):
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    res = run(["train", str(path), *FAST])
    assert_clean_error(res, "Cell Ranger's .h5", "filtered_feature_bc_matrix directory", "read_10x_h5")


@pytest.mark.parametrize("kept, cut", [(["Length"], "cut -f1,3-"), (["Strand", "Length"], "cut -f1,4-")])
def test_featurecounts_annotation_columns_a_cut_left_are_not_samples(geo, kept, cut):
    """After `cut -f1,6-` only Length was left beside the counts: read as a sample (the gene lengths), noted as
    having no sheet row in train, then predicted as a sample by predict, exit 0."""
    tmp, _, matrix, sheet = geo
    sheet.to_csv(tmp / "s.csv", index=False)
    path = tmp / "counts.tsv"
    with open(path, "w") as fh:
        fh.write("\t".join(["Geneid", *kept, *matrix.columns]) + "\n")
        for gene, row in matrix.iterrows():
            fh.write("\t".join([str(gene), *(["+", "80"][-len(kept):]), *(str(int(abs(v) * 10)) for v in row)]) + "\n")
    res = run(["train", str(path), "--features-in-rows", "--samples", str(tmp / "s.csv"), "--target", "disease", *FAST])
    assert_clean_error(res, "featureCounts", ", ".join(kept), cut)
