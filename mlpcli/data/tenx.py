"""10x Genomics output directories, as Cell Ranger writes them (``filtered_feature_bc_matrix/``):

    matrix.mtx.gz     counts, Matrix Market coordinates, features × barcodes
    features.tsv.gz   one line per feature: id (Ensembl), symbol, type  (genes.tsv.gz before Cell Ranger 3: id, symbol)
    barcodes.tsv.gz   one line per cell

    DIR ─TenX(path, var_names)─▶ barcodes (the `barcode` column, the default id) + feature names
        ─read_matrix─▶ CSR float32 cells × genes (kept sparse)  ─▶ Dataset     (train with --samples)
        ─rows(start, stop, columns)─▶ dense float64 row blocks                  (predict)

The uncompressed names (matrix.mtx, features.tsv, genes.tsv, barcodes.tsv) are read too, and so are one sample's
files named with a prefix, as GEO hands them out (GSM1234_s1_matrix.mtx.gz, ...; a note says so). The matrix is read
with scipy's Matrix Market reader and transposed once into CSR; it is never densified as a whole.

Feature names: the ids (column 1) by default, the symbols with ``--var-names gene_symbols`` — the
directory is offered as an AnnData-like table whose var index is the ids and whose var columns are
``gene_ids``, ``gene_symbols`` and ``feature_types``, so the option means what it means for an .h5ad file,
and a gene-identifier mismatch with a model is explained by the same code (``h5ad.H5ad``'s, which this
class extends: `_names`, `check_feature_names`).

Feature types (column 3 of features.tsv): training reads the ``Gene Expression`` features alone when the
directory has others too (CITE-seq's Antibody Capture, CRISPR guides, multiome's Peaks), as scanpy's
``read_10x_mtx`` does (Seurat's ``Read10X`` returns them apart), and says so in a note; prediction offers
every feature and reads the model's. A feature of another type named as a gene (``CD4`` the antibody beside
``CD4`` the gene, under ``--var-names gene_symbols``) is named with its type, ``CD4 (Antibody Capture)``.

A 10x directory has no annotations: training takes the labels from a sample sheet (``--samples``) whose id
column holds the barcodes (it is matched to the barcodes whatever its name).
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, OptionError
from .conventions import JOINED_ATTR
from .header import FEATURE_COLUMN_NAMES
from .h5ad import H5ad, as_float32_csr, hdf5_reason
from ..text import agreeing, count_of

__all__ = ["BARCODE", "SYMBOLS", "TenX", "is_tenx", "check_options"]

BARCODE = "barcode"  # the column a 10x directory offers for its barcodes (the default id)
SYMBOLS = "gene_symbols"  # the var column of the symbols (--var-names gene_symbols)
_MATRIX = ("matrix.mtx.gz", "matrix.mtx")
_FEATURES = ("features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv")
_BARCODES = ("barcodes.tsv.gz", "barcodes.tsv")
_SUBDIRS = ("filtered_feature_bc_matrix", "raw_feature_bc_matrix", "filtered_gene_bc_matrices",
            "raw_gene_bc_matrices")

# What reading a damaged file raises (gzip: OSError / EOFError; text and Matrix Market: ValueError, ...).
_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError, MemoryError)


def is_tenx(path) -> bool:
    """Whether `path` names a directory: every reader takes a directory for 10x Genomics output (a table is
    a file), so that a directory missing one of its files gets an error naming that file."""
    return path is not None and str(path) != "-" and os.path.isdir(os.fspath(path))


def check_directory(path) -> None:
    """A DataError naming the missing counts file unless the directory holds a 10x matrix (so that a
    directory given by mistake is not taken for 10x output that only lacks its annotations)."""
    directory = os.fspath(path)
    not_zarr(directory)
    _find(directory, _MATRIX, "the counts", _prefix(directory))


def not_zarr(directory: str) -> None:
    """A DataError with the one conversion step for an AnnData Zarr store (a directory too, with .zattrs, or
    zarr.json in Zarr 3), which read as a 10x directory "without matrix.mtx.gz"."""
    if any(os.path.exists(os.path.join(directory, marker)) for marker in (".zattrs", ".zgroup", "zarr.json")):
        raise DataError(f"{directory} is a Zarr store (AnnData's .zarr), not a 10x Genomics directory: convert it "
                        f"once, python -c \"import anndata; anndata.read_zarr({directory!r}).write_h5ad("
                        "'cells.h5ad')\", and give the .h5ad file")


def check_options(path, layer: str | None, raw: bool, features_in_rows: bool = False) -> None:
    """--layer, --raw and --features-in-rows do not apply to a 10x directory (one matrix, cells by barcode): a usage
    error (OptionError, exit 2), as --layer on a text table is."""
    for flag, given in (("--layer", layer), ("--raw", raw), ("--features-in-rows", features_in_rows)):
        if given:
            raise OptionError(f"{flag} does not apply to the 10x Genomics directory {os.fspath(path)} (one counts "
                              "matrix, cells × genes by definition); leave it out")


def _find(directory: str, names: Sequence[str], what: str, prefix: str = "") -> str:
    for name in names:
        path = os.path.join(directory, prefix + name)
        if os.path.isfile(path):
            return path
    if prefix:
        matrix = next((prefix + m for m in _MATRIX if os.path.isfile(os.path.join(directory, prefix + m))), "")
        raise DataError(f"10x Genomics directory {directory} has {matrix} but no {prefix}{names[0]} "
                        f"({what}{'; nor ' + ' or '.join(prefix + n for n in names[1:]) if len(names) > 1 else ''})")
    nested = _nested_matrix(directory)
    hint = f"; did you mean {nested}?" if nested else \
        "; Cell Ranger writes matrix.mtx.gz, features.tsv.gz and barcodes.tsv.gz side by side"
    alternatives = " or ".join(names[1:]) if len(names) > 1 else ""
    raise DataError(f"10x Genomics directory {directory} has no {names[0]} ({what}"
                    f"{'; nor ' + alternatives if alternatives else ''}){hint}")


def _prefix(directory: str) -> str:
    """The prefix of the directory's 10x files when it holds no matrix.mtx(.gz) but one sample's files named
    as GEO hands them out (GSM1234_sample1_matrix.mtx.gz, ..._features.tsv.gz, ..._barcodes.tsv.gz; scanpy's
    ``read_10x_mtx(prefix=...)``), else "". Several samples' files side by side are a DataError naming them:
    which one is meant cannot be told."""
    if any(os.path.isfile(os.path.join(directory, name)) for name in _MATRIX):
        return ""
    try:
        files = sorted(f for f in os.listdir(directory) if os.path.isfile(os.path.join(directory, f)))
    except OSError:
        return ""
    matrices = {f[: -len(m)]: f for f in files for m in _MATRIX if f.endswith(m) and len(f) > len(m)}
    prefixes = sorted(matrices)
    if len(prefixes) > 1:
        shown = ", ".join(matrices[p] for p in prefixes[:3]) + (f" and {len(prefixes) - 3} more"
                                                                 if len(prefixes) > 3 else "")
        raise DataError(f"10x Genomics directory {directory} holds the matrices of {len(prefixes)} samples, named "
                        f"by prefix as GEO gives them ({shown}); give one sample at a time: put its matrix, features "
                        "and barcodes files in a directory of their own")
    return prefixes[0] if prefixes else ""


def _nested_matrix(directory: str) -> str | None:
    """The folder below `directory` that holds a 10x matrix, for the hint of a directory that does not:
    Cell Ranger's matrix folders in its outs/ (filtered first), and the one folder per genome that Cell
    Ranger 2 writes in them (filtered_gene_bc_matrices/hg19/); a matrix folder without one, else None."""
    def holds(path: str) -> bool:
        return any(os.path.isfile(os.path.join(path, name)) for name in _MATRIX)

    def genomes(path: str) -> list[str]:
        try:
            return sorted(os.path.join(path, d) for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
        except OSError:
            return []

    folders = [os.path.join(directory, d) for d in _SUBDIRS if os.path.isdir(os.path.join(directory, d))]
    for folder in [*folders, directory]:
        for candidate in [folder, *genomes(folder)]:
            if candidate != directory and holds(candidate):
                return candidate
    return folders[0] if folders else None


_GEX = "Gene Expression"


def _feature_type(fields: list[str]) -> str:
    """A features.tsv line's type (column 3); genes.tsv (Cell Ranger 2) lists genes alone."""
    return fields[2] if len(fields) > 2 and fields[2].strip() else _GEX


def _read_lines(path: str) -> list[list[str]]:
    """The tab-separated fields of each line of a (gzipped) text file; a damaged file is a DataError."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            return [line.rstrip("\r\n").split("\t") for line in fh if line.strip()]
    except _READ_ERRORS as exc:
        raise DataError(f"cannot read {path}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """Why a file of the directory could not be read, for the end of a message: a file named .gz that is not
    gzip-compressed (a plain file renamed, or gunzipped in place) is said as such, not as a damaged file."""
    if isinstance(exc, gzip.BadGzipFile):
        return "it is not gzip-compressed, though its name ends in .gz (a plain text file renamed?)"
    return f"{hdf5_reason(exc).rstrip('.')}; is the file truncated or corrupt?"


# Entries of the matrix file checked against a header that says "integer" (``_matrix_shape``): scipy's reader
# truncates a decimal value under that header (3.32 read as 3), so log-normalised values under a wrong header
# trained as counts, log1p'd again
_INTEGER_CHECKED_ENTRIES = 1000


def _header_hint(lines: list[list[str]], expected: int, listed: int | None = None) -> str:
    """The end of the error for a features or barcodes file that lists another number of lines than the matrix
    has rows or columns: one more, the first line a header (a file written by hand with pandas' to_csv or R's
    write.table; Cell Ranger writes none), or files of different runs."""
    listed = len(lines) if listed is None else listed
    if listed == expected + 1 and lines and _looks_like_header(lines[0]):
        return (f": one more, and its first line {chr(9).join(lines[0])!r} looks like a header — Cell Ranger's files "
                "have none; remove that line")
    return "; the directory's files do not belong together"


_HEADER_WORDS = FEATURE_COLUMN_NAMES | {"feature_type", "feature_types", "type", "barcode", "barcodes", "cell",
                                        "cells", "cell_id", "cell_barcode", "x", "v1", "v2", "v3", ""}


def _looks_like_header(fields: list[str]) -> bool:
    """Whether a first line's fields are column names (gene_id, gene_name, feature_type; barcode; x, R's
    write.table without row names) rather than a feature or a barcode."""
    return all(f.strip().strip('"').lower() in _HEADER_WORDS for f in fields)


class TenX(H5ad):
    """An open 10x Genomics directory, with the interface of ``h5ad.H5ad`` (obs columns: `barcode`; features
    named by var_names — the ids — or a var column, ``gene_symbols`` for the symbols). `layer` and `raw`
    are accepted for that interface (a model trained on an .h5ad layer) and mean nothing here: the
    directory has one matrix, the counts."""

    def _no_unique_names_fix(self) -> str:
        return (f"neither the ids nor the symbols of {os.path.basename(self.features_path)} name every gene once: "
                "keep one line of each gene in it, with its row of the matrix")

    def __init__(self, path, layer: str | None = None, raw: bool = False, var_names: str | None = None,
                 var_names_fallback: bool = False, needed: frozenset | None = None, gene_expression_only: bool = False,
                 feature_types: Sequence[str] | None = None):
        self._fallback = var_names_fallback
        self._needed = needed
        self.path = os.fspath(path).rstrip(os.sep) or os.fspath(path)
        self.file = None  # nothing stays open: the files are read whole
        self._whole = None
        self.matrix_name = "matrix.mtx"
        self.notes: list[str] = []
        if not os.path.isdir(self.path):
            raise DataError(f"10x Genomics directory not found: {self.path}")
        not_zarr(self.path)
        prefix = _prefix(self.path)
        self.matrix_path = _find(self.path, _MATRIX, "the counts", prefix)
        self.features_path = _find(self.path, _FEATURES, "the feature ids and symbols", prefix)
        self.barcodes_path = _find(self.path, _BARCODES, "the cell barcodes", prefix)
        if prefix:
            self.notes.append(f"{self.path}: read the 10x Genomics files named with the prefix {prefix!r} (as GEO "
                              "names them)")
        self.kind = "csr"
        features = _read_lines(self.features_path)
        self.barcodes = np.asarray([fields[0] for fields in _read_lines(self.barcodes_path)], dtype=object)
        self.shape = self._matrix_shape()
        n_genes, n_cells = self.shape[1], self.shape[0]
        if n_genes != n_cells and (len(features), len(self.barcodes)) == (n_cells, n_genes):
            raise DataError(f"{self.matrix_path} is {n_genes:,} × {n_cells:,}, cells × features "
                            f"({self.barcodes_path} lists {n_genes:,} barcodes, {self.features_path} {n_cells:,} "
                            "features): a 10x matrix "
                            "is features × barcodes, as Cell Ranger writes it — write the transpose "
                            "(scipy.io.mmwrite(path, adata.X.T))")
        if len(features) != n_genes:
            raise DataError(f"{self.matrix_path} has {n_genes:,} features (rows) but {self.features_path} lists "
                            f"{len(features):,}{_header_hint(features, n_genes)}")
        if len(self.barcodes) != n_cells:
            first = [[b] for b in self.barcodes[:1]]
            raise DataError(f"{self.matrix_path} has {n_cells:,} barcodes (columns) but {self.barcodes_path} lists "
                            f"{len(self.barcodes):,}{_header_hint(first, n_cells, len(self.barcodes))}")
        repeated = pd.Index(self.barcodes).duplicated()
        if repeated.any():
            first = self.barcodes[int(np.flatnonzero(repeated)[0])]
            raise DataError(f"{self.barcodes_path} repeats the barcode {first!r}; each cell needs its own")
        self._n_file_features = n_genes
        self._file_columns = None  # (g,) the file's features kept, None for all of them
        self.left_out: dict[str, int] = {}  # {feature type: count} not read (gene_expression_only)
        types = [_feature_type(f) for f in features]
        wanted = None  # the feature types read (None: all of them)
        if feature_types is not None:  # --feature-types: these, each of which the directory must have
            wanted = {str(t).strip() for t in feature_types}
            missing = sorted(wanted - set(types))
            if missing:
                have = ", ".join(f"{k!r} ({v:,})" for k, v in Counter(types).items())
                raise DataError(f"--feature-types: {self.path} has no features of type {', '.join(map(repr, missing))}; "
                                f"its types are {have}")
        elif gene_expression_only and _GEX in types:
            wanted = {_GEX}
        if wanted is not None and any(t not in wanted for t in types):
            self._file_columns = np.array([k for k, t in enumerate(types) if t in wanted], dtype=np.int64)
            self.left_out = dict(Counter(t for t in types if t not in wanted))
            features = [features[k] for k in self._file_columns]
            self.shape = (n_cells, len(features))
            n_genes = len(features)
        self.var = self._var_table(features)
        self.obs_columns = [BARCODE]
        self.n_obs = n_cells
        self._gene_names(var_names, "the feature ids")  # --var-names var_names: the ids, as for an .h5ad file
        if n_cells == 0:
            raise DataError(f"{self.path}: {self.barcodes_path} lists no cells")
        if n_genes == 0:
            raise DataError(f"{self.path}: {self.features_path} lists no features")
        if self._n_entries == 0:
            raise DataError(f"{self.matrix_path} holds no counts (0 entries: every cell is 0 for every feature); is "
                            "it the right file?")
        self.names_from = (f"var column {self.var_names_column!r}" if self.var_names_column
                           else f"feature ids (column 1 of {os.path.basename(self.features_path)})")
        types = self.var["feature_types"].value_counts()
        kinds = ", ".join(f"{k} {v:,}" for k, v in types.items()) if len(types) > 1 else ""
        # a directory holding both forms of a file (gunzip -k, a partial copy): the one read is named, and the other
        unread = [os.path.join(os.path.basename(self.path), prefix + n) for found, names in
                  ((self.matrix_path, _MATRIX), (self.features_path, _FEATURES), (self.barcodes_path, _BARCODES))
                  for n in names if os.path.isfile(os.path.join(self.path, prefix + n))
                  and os.path.join(self.path, prefix + n) != found]
        self.notes.append(f"{self.path}: {count_of(n_cells, 'cell')} × {count_of(n_genes, 'feature')} from 10x Genomics "
                          f"{os.path.basename(self.matrix_path)} (sparse), gene names from {self.names_from}"
                          f"{f' ({kinds})' if kinds else ''}"
                          + (f"; also there and not read: {', '.join(unread)}" if unread else ""))
        if self.left_out:
            others = ", ".join(f"{k} {v:,}" for k, v in self.left_out.items())
            which = (f"of type {_GEX!r} only, as scanpy's read_10x_mtx reads them (--feature-types to choose)"
                     if feature_types is None else f"of the types {', '.join(map(repr, sorted(wanted)))} (--feature-types)")
            self.notes.append(f"{self.path}: features {which}; left out {sum(self.left_out.values()):,} of other "
                              f"types ({others})")

    def _matrix_shape(self) -> tuple[int, int]:
        """(cells, genes) from the Matrix Market header (the file stores features × barcodes)."""
        try:
            opener = gzip.open if self.matrix_path.endswith(".gz") else open
            with opener(self.matrix_path, "rt", encoding="ascii") as fh:
                banner = fh.readline()
                if not banner.lower().startswith("%%matrixmarket"):
                    raise ValueError("no %%MatrixMarket banner on line 1")
                line = fh.readline()
                while line.startswith("%"):
                    line = fh.readline()
                sizes = line.split()
                if len(sizes) != 3:
                    raise ValueError(f"its size line {line.strip()!r} should hold three numbers: rows, columns and "
                                     "entries")
                rows, cols, entries = (int(v) for v in sizes)
                if "integer" in banner.lower().split():
                    self._check_integer_entries(fh)
        except _READ_ERRORS as exc:
            raise DataError(f"cannot read {self.matrix_path} as a Matrix Market file: {_reason(exc)}") from None
        self._n_entries = entries
        return cols, rows

    def _check_integer_entries(self, fh) -> None:
        """A DataError when one of the first entries under an "integer" header holds a decimal value."""
        for _, line in zip(range(_INTEGER_CHECKED_ENTRIES), fh):
            fields = line.split()
            if len(fields) == 3 and not fields[2].lstrip("+-").isdigit():
                raise DataError(f"{self.matrix_path}: its header says the values are integers, but it holds "
                                f"{fields[2]!r} (line {line.strip()!r}), which would be read as a whole number; "
                                "correct the header to 'real' (%%MatrixMarket matrix coordinate real general)")

    def _var_table(self, features: list[list[str]]) -> pd.DataFrame:
        """var, indexed by the feature ids: gene_ids, gene_symbols, feature_types (as scanpy names them). A
        features file of ids alone (an old or hand-made one) has no gene_symbols: --var-names gene_symbols
        is then an error naming the columns there are, not the ids under the symbols' name."""
        ids = [f[0] for f in features]
        types = [_feature_type(f) for f in features]
        columns = {"gene_ids": ids}
        if any(len(f) > 1 for f in features):
            columns[SYMBOLS] = [f[1] if len(f) > 1 else f[0] for f in features]
        columns["feature_types"] = types
        return pd.DataFrame(columns, index=pd.Index(ids))

    def _names(self, column: str | None) -> list[str]:
        """As ``H5ad._names``, except that a feature of another type (an antibody of CITE-seq) whose name is a
        gene's ('CD4' the gene and 'CD4' the antibody, under the symbols) is named with its type ('CD4
        (Antibody Capture)'): the gene keeps its name, and the names stay one per feature."""
        types = self.var["feature_types"].to_numpy(dtype=object)
        gene = types == _GEX
        if gene.all() or not gene.any() or (column is not None and column not in self.var.columns):
            return super()._names(column)
        values = np.asarray(self.var.index if column is None else self.var[column], dtype=object)
        names = np.asarray([str(v) for v in values], dtype=object)
        clash = ~gene & np.isin(names, names[gene])
        if not clash.any():
            return super()._names(column)
        values = values.copy()
        values[clash] = [f"{n} ({t})" for n, t in zip(names[clash], types[clash])]
        k = int(clash.sum())
        self.notes.append(f"{self.path}: {count_of(k, 'feature')} of other types {agreeing(k, 'shares', 'share')} a "
                          f"gene's name; named with {agreeing(k, 'its', 'their')} type (e.g. {values[clash][0]!r})")
        kept, self.var = self.var, self.var.copy()
        if column is None:
            self.var.index = pd.Index(values)
        else:
            self.var[column] = values
        try:
            return super()._names(column)
        finally:
            self.var = kept

    def _matrices(self) -> str:
        return "matrix.mtx (one counts matrix)"

    @property
    def columns(self) -> list[str]:
        """The names this directory offers as a table: `barcode`, then the features."""
        genes = set(self.feature_names)
        return [c for c in self.obs_columns if c not in genes] + self.named_features

    @property
    def default_id(self) -> str:
        return BARCODE

    def obs_frame(self, names: Sequence[str], start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """As ``H5ad.obs_frame``: the barcodes of cells start..stop (all by default)."""
        rows = slice(start, self.n_obs if stop is None else stop)
        out = {}
        for name in dict.fromkeys(names):
            if name != BARCODE:
                raise DataError(f"{self.path}: a 10x Genomics directory has no column {name!r} (only its "
                                f"barcodes, {BARCODE!r}); give annotations in a sample sheet (--samples)")
            out[name] = self.barcodes[rows]
        return pd.DataFrame(out, index=pd.RangeIndex(len(self.barcodes[rows])))

    def read_matrix(self, columns: np.ndarray | None = None):
        """The counts as CSR float32 cells × genes (or its `columns`), never densified."""
        import scipy.io

        try:
            M = scipy.io.mmread(self.matrix_path)  # (genes, cells), COO
        except _READ_ERRORS as exc:
            raise DataError(f"cannot read {self.matrix_path} as a Matrix Market file: {_reason(exc)}") from None
        if not hasattr(M, "tocsr"):
            raise DataError(f"{self.matrix_path} is a dense Matrix Market array, not the coordinate (sparse) file "
                            "Cell Ranger writes")
        rows = self._n_file_features
        if M.shape != (rows, self.shape[0]):
            raise DataError(f"{self.matrix_path}: its header says {rows:,} × {self.shape[0]:,} but it holds a "
                            f"{M.shape[0]:,} × {M.shape[1]:,} matrix; is it truncated or corrupt?")
        X = M.T.tocsr()  # (cells, genes)
        del M
        if self._file_columns is not None:  # the Gene Expression features alone
            X = X[:, self._file_columns]
        if columns is not None:
            X = X[:, columns]
        return as_float32_csr(X)

    def rows(self, start: int, stop: int, columns: np.ndarray) -> np.ndarray:
        """Rows start..stop, only `columns`, dense C-ordered float64. The matrix (a text file) is read whole
        once, sparse and restricted to `columns`."""
        if self._whole is None:
            self._whole, self._whole_columns = self.read_matrix(columns), columns
        elif self._whole_columns is not columns:
            raise RuntimeError("rows: columns changed between calls")
        return self._whole[start:stop].toarray().astype(np.float64, copy=False)

    def close(self) -> None:
        self._whole = None


def load_dataset(path, sheet, *, target, group: str | None, no_group: bool, batch: str | None,
                 drop: Sequence[str], task: str, classes, var_names: str | None, feature_types: Sequence[str] = ()):
    """A training Dataset from a 10x directory and a read sample sheet (``samples.SampleSheet``), whose id
    column holds the barcodes; returns (dataset, notes). Rows: the barcodes with a row in the sheet, in the
    matrix's order; features: the genes, kept sparse (CSR float32)."""
    from .dataset import Dataset
    from .roles import listed_names, resolve_roles
    from .samples import SampleJoin

    t = TenX(path, var_names=var_names, gene_expression_only=not feature_types, feature_types=feature_types or None)
    key = sheet.id_column  # the barcodes are matched to the sheet's id column, whatever its name
    genes = set(t.feature_names)
    if key in genes:
        raise DataError(f"{sheet.said}: its id column {key!r} is also a feature of {t.path}; rename it")
    join = SampleJoin(sheet, t.path, [key, *t.feature_names])
    join.require("--target", listed_names(target))
    join.require("--group", [group])
    join.require("--batch", [batch])
    roles, notes = resolve_roles(join.columns, target=target, group=group, no_group=no_group, id=key, batch=batch,
                                 drop=drop)
    named = [n for n in [*roles.target, roles.group, roles.batch] if n is not None]
    on_genes = [n for n in named if n in genes]
    if on_genes:
        raise DataError(f"{on_genes[0]!r} is a feature of {t.path}, not a column of {sheet.said}; roles "
                        "come from the sheet")
    join.select(named, [d for d in roles.drop if d not in genes])
    frame, keep = join.apply(pd.DataFrame({key: t.barcodes}))
    frame.attrs[JOINED_ATTR] = {c: sheet.said for c in join.joined}  # a bad cell there is the sheet's
    X = t.read_matrix()
    names = t.feature_names
    dropped = [d for d in roles.drop if d in genes]
    if dropped:
        columns = np.array([j for j, n in enumerate(names) if n not in set(dropped)], dtype=np.int64)
        X, names = X[:, columns], [names[j] for j in columns]
    if keep is not None:
        X = X[keep]
    roles.drop = [d for d in roles.drop if d not in genes and d in frame.columns]
    ds = Dataset.from_frame(frame, roles, task=task, classes=classes, features=(names, X))
    ds.warnings += join.warnings
    return ds, [*t.notes, *notes, *join.notes]
