"""AnnData ``.h5ad`` files (cells × genes, as scanpy and CELLxGENE write them), read and written through the
optional ``anndata`` package (the ``h5ad`` extra: ``python -m pip install ".[h5ad]"`` from a checkout, or
``pip install anndata``).

    .h5ad ─H5ad(path, layer, raw, var_names)─▶ obs columns (roles) + feature names (var_names or a var column)
          ─read_matrix─▶ CSR float32 (kept sparse) or dense float64 ─▶ Dataset         (train, cv, tune, ...)
          ─rows(start, stop, columns)─▶ dense float64 row blocks                         (predict, evaluate)
    predictions ─write_obs_columns─▶ a copy of the input with new .obs columns, .X untouched

The file is opened with h5py and its elements read with anndata's element readers (``read_elem`` for the
obs / var tables, ``sparse_dataset`` for a backed CSR matrix read by row ranges). This is anndata's backed
mode without ``read_h5ad(backed="r")`` itself, which loads every layer, ``obsm`` and ``uns`` into memory on
opening: a file with a counts layer beside ``.X`` would cost both matrices' memory to predict on one.

Features: ``.X``, a layer (``--layer NAME``; ``--layer X`` is ``.X`` itself) or ``.raw.X`` (``--raw``, with
``.raw.var_names``). Feature names: ``var_names``, or a ``var`` column (``--var-names COLUMN``;
``--var-names var_names`` is the index itself). Roles come from ``.obs`` columns; ``obs_names`` is offered as
a column named ``obs_names`` and is the default id.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, OptionError
from .compressed import index_problem, signed_index, sparse_values, structure_problem
from .conventions import JOINED_ATTR, SOURCE_ATTR
from ..text import count_of, quoted
from .names import count_matches, id_kind, name_key

__all__ = ["EXTRA_HINT", "OBS_NAMES", "X_LAYER", "VAR_INDEX", "H5ad", "is_h5ad", "load_dataset", "check_options",
           "write_obs_columns", "plain_values", "is_text_column", "may_hold_names"]

# the extra's one dependency by its own name: "mlpcli[h5ad]" on PyPI would be another project's
EXTRA_HINT = 'pip install anndata (the h5ad extra: python -m pip install ".[h5ad]" from the mlpcli checkout)'
OBS_NAMES = "obs_names"  # the column an .h5ad table offers for its obs_names (the default id)
X_LAYER = "X"  # --layer X: the main matrix .X (to override a model's training layer)
VAR_INDEX = "var_names"  # --var-names var_names: the var index (to override a model's training column)
_SUFFIX = ".h5ad"


def is_h5ad(path) -> bool:
    """Whether `path` names an .h5ad file (by its suffix, as every format is told; ``data.sources.table_format``)."""
    from .sources import table_format

    if path is None or str(path) == "-":
        return False
    try:
        return table_format(os.fspath(path))[0] == "h5ad"
    except DataError:
        return False


def check_options(path, layer: str | None, raw: bool, var_names: str | None) -> None:
    """--layer, --raw and --var-names belong to .h5ad input: a ConfigError for any other table."""
    given = [flag for flag, value in (("--layer", layer), ("--raw", raw), ("--var-names", var_names)) if value]
    if given and not is_h5ad(path):
        shown = "standard input" if str(path) == "-" else os.path.basename(os.fspath(path))
        raise OptionError(f"{given[0]} applies to .h5ad (AnnData) input only; {shown} is a table whose columns are "
                          "the features")


def _io():
    """(h5py, read_elem), or the one-line error naming the extra to install."""
    try:
        import h5py
        try:
            from anndata.io import read_elem
        except ImportError:  # anndata 0.10 keeps it under experimental
            from anndata.experimental import read_elem
    except ImportError:
        raise DataError(f"reading .h5ad (AnnData) files needs the anndata package: {EXTRA_HINT}") from None
    return h5py, read_elem


def hdf5_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# What h5py / anndata raise on a damaged file or element (a truncated file fails on opening; a damaged
# dataset on reading it).
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, IndexError, RuntimeError, AttributeError)


def plain_values(values) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """An obs column as training reads a table column: categories become their values (a categorical target
    or group is a label like any other), strings stay strings."""
    if isinstance(values, pd.Categorical):
        return np.asarray(values.astype(object))
    if isinstance(values, (pd.Series, pd.Index)):
        return plain_values(values.array)
    if isinstance(values, np.ndarray) and values.dtype.kind in "SO":
        return np.asarray([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
    return values


def open_failure(path: str, exc: BaseException) -> str:
    """Why HDF5 could not open ``path``: another process holding its lock (a notebook's ``backed="r+"`` AnnData,
    a writer still at work; on NFS and Lustre, locks that file system does not offer) is not a damaged file."""
    reason = str(exc).lower()
    if "unable to lock file" in reason or "no locks available" in reason:  # HDF5's words; EAGAIN, ENOLCK
        return (f"cannot read {path}: HDF5 could not lock it ({hdf5_reason(exc)}) — another process has it open for "
                "writing (a notebook's AnnData read with backed='r+', a job still writing it), or the file system "
                "does not support locks (NFS, Lustre): close it there, or set HDF5_USE_FILE_LOCKING=FALSE when "
                "nothing writes it")
    return f"cannot read {path} as .h5ad (an HDF5 file): {hdf5_reason(exc)}; is it truncated or corrupt?"


class H5ad:
    """An open .h5ad file: its cells' obs columns, the chosen matrix and its feature names.

    layer: a layer's name, "X" (or None) for .X; raw: .raw.X with .raw.var_names; var_names: a var column
    holding the feature names ("var_names" or None: the var index). Every problem with the file or the
    options is a one-line DataError / ConfigError naming it; use as a context manager (or ``close``)."""

    def __init__(self, path, layer: str | None = None, raw: bool = False, var_names: str | None = None,
                 var_names_fallback: bool = False, needed: frozenset | None = None):
        from .sources import check_file

        self._fallback = var_names_fallback  # var_names came from a model: the index when this file lacks it
        self._needed = needed  # the genes a model reads (predict): only their names must be unique
        self.path = os.fspath(path)
        check_file(self.path)  # a mistyped name is said before a missing package
        h5py, self._read_elem = _io()
        self._indptr: np.ndarray | None = None  # a sparse matrix's index pointer, once read and checked
        if raw and layer not in (None, X_LAYER):
            raise OptionError(f"--raw and --layer {layer} both choose the features; pass one of them")
        try:
            self.file = h5py.File(self.path, "r")
        except (OSError, ValueError) as exc:
            raise DataError(open_failure(self.path, exc)) from None
        try:
            self._open(layer, raw, var_names)
        except BaseException:
            self.close()
            raise

    def _fail(self, exc: BaseException, what: str) -> DataError:
        return DataError(f"cannot read {what} of {self.path}: {hdf5_reason(exc)}; is the file truncated or corrupt?")

    def _open(self, layer: str | None, raw: bool, var_names: str | None) -> None:
        f = self.file
        self.notes: list[str] = []
        if "obs" not in f or "var" not in f:
            missing = "obs" if "obs" not in f else "var"
            raise DataError(f"{self.path} is an HDF5 file but not AnnData: it has no {missing!r} table")
        if raw:
            if "raw" not in f or "X" not in f["raw"]:
                raise DataError(f"{self.path} has no .raw (--raw); its matrices: {self.matrices()}")
            self.matrix_name, elem, var_group = ".raw.X", f["raw"]["X"], f["raw"]["var"]
        elif layer not in (None, X_LAYER):
            layers = list(f["layers"].keys()) if "layers" in f else []
            if layer not in layers:
                raise DataError(f"--layer {layer!r} not found in {self.path}; its matrices: {self.matrices()}")
            self.matrix_name, elem, var_group = f"layer {layer!r}", f["layers"][layer], f["var"]
        else:
            if "X" not in f:
                raise DataError(f"{self.path} has no .X matrix; its matrices: {self.matrices()} (--layer NAME)")
            self.matrix_name, elem, var_group = ".X", f["X"], f["var"]
        self._elem = elem
        try:
            self.kind, self.shape = self._matrix_kind(elem)
            self.var = self._read_elem(var_group)
            obs = f["obs"]
            self._obs_index = None if isinstance(obs, h5py_dataset()) else _text(obs.attrs.get("_index", "_index"))
            if self._obs_index is None:
                raise DataError(f"{self.path} is an AnnData file of the layout before anndata 0.7 (2019), which "
                                "mlpcli does not read; convert it once with a current anndata: python -c \"import "
                                f"anndata; anndata.read_h5ad({self.path!r}).write_h5ad('converted.h5ad')\"")
            order = obs.attrs.get("column-order", [])
            # anndata 0.7 (h5py 2) wrote these names as bytes
            self.obs_columns = [_text(c) for c in (order.tolist() if hasattr(order, "tolist") else order)]
            self.n_obs = int(obs[self._obs_index].shape[0])
            # an obs column named obs_names would stand in for the cells' names, the default id (its values were
            # written as the ids, and a user joined the predictions back on the wrong ones): the names win
            self.shadowed_obs = [OBS_NAMES] if OBS_NAMES in self.obs_columns else []
            self.obs_columns = [c for c in self.obs_columns if c != OBS_NAMES]
        except DataError:
            raise
        except _READ_ERRORS as exc:
            raise self._fail(exc, "the obs / var tables") from None
        if self.shape[0] != self.n_obs:
            raise DataError(f"{self.path}: {self.matrix_name} has {self.shape[0]} rows but obs has {self.n_obs} cells; "
                            "the file is inconsistent")
        if len(self.var) != self.shape[1]:
            raise DataError(f"{self.path}: {self.matrix_name} has {self.shape[1]} columns but its var table "
                            f"{len(self.var)} genes; the file is inconsistent")
        self._gene_names(var_names, "var_names")
        if self.n_obs == 0:
            raise DataError(f"{self.path} has no cells (obs is empty)")
        if self.shape[1] == 0:
            raise DataError(f"{self.path}: {self.matrix_name} has no genes (var is empty)")
        if self._stored_values() == 0:
            raise DataError(f"{self.path}: {self.matrix_name} stores no values (every gene 0 in every cell: an empty "
                            f"placeholder?); its matrices: {self.matrices()}")
        shown = f"var column {self.var_names_column!r}" if self.var_names_column else (
            ".raw.var_names" if raw else "var_names")
        self.names_from = shown
        self.notes.append(f"{self.path}: {count_of(self.n_obs, 'cell')} × {count_of(self.shape[1], 'gene')} from "
                          f"{self.matrix_name} "
                          f"({'sparse ' + self.kind.upper() if self.kind != 'dense' else 'dense'}), gene names from "
                          f"{shown}")
        if self.shadowed_obs:
            self.notes.append(f"{self.path}: its .obs column 'obs_names' is not read: the name means the cells' names "
                              "(obs_names, the default id); rename the column to use its values")
        genes = set(self.feature_names)
        named_like_genes = [c for c in self.obs_columns if c in genes]
        if named_like_genes:  # (``columns``: the name means the gene)
            self.notes.append(f"{self.path}: {len(named_like_genes)} .obs column{'s' * (len(named_like_genes) > 1)} "
                              f"named like a gene, read as the gene: {', '.join(map(repr, named_like_genes[:5]))}; "
                              "rename the column to use its values")
        self.obs_named_like_genes = named_like_genes

    def _stored_values(self) -> int | None:
        """The number of values a sparse matrix stores (0: an empty layer, all zeros), None for a dense one (which
        would have to be read to tell)."""
        if self.kind == "dense":
            return None
        try:
            return int(self._elem["data"].shape[0])
        except _READ_ERRORS as exc:
            raise self._fail(exc, self.matrix_name) from None

    def counts_like(self, sample: int = 100_000) -> tuple[bool, float | None]:
        """(whether the chosen matrix's first ``sample`` stored values are whole numbers >= 0, as raw counts are;
        the first value that is not, or None), read without densifying: a sparse matrix's data array, a dense one's
        first rows."""
        try:
            if self.kind == "dense":
                rows = max(1, sample // max(self.shape[1], 1))
                values = np.asarray(self._elem[:rows], dtype=np.float64).ravel()
            else:
                values = np.asarray(self._elem["data"][:sample], dtype=np.float64)
        except _READ_ERRORS as exc:
            raise self._fail(exc, self.matrix_name) from None
        from .counts import whole_counts

        return whole_counts(values)

    def matrices(self) -> str:
        """The file's matrices as the messages name them (".X, layer 'counts', .raw.X (--raw)")."""
        f, found = self.file, []
        if "X" in f:
            found.append(".X")
        if "layers" in f:
            found += [f"layer {k!r}" for k in f["layers"].keys()]
        if "raw" in f and "X" in f["raw"]:
            found.append(".raw.X (--raw)")
        return ", ".join(found) if found else "none"

    def _matrix_kind(self, elem) -> tuple[str, tuple[int, int]]:
        """("dense" | "csr" | "csc", (n_obs, n_vars)) of a matrix element."""
        if isinstance(elem, h5py_dataset()):
            if elem.ndim != 2 or elem.dtype.kind not in "biuf":
                raise DataError(f"{self.path}: {self.matrix_name} is not a numeric matrix (dtype {elem.dtype}, "
                                f"{elem.ndim} dimensions)")
            return "dense", (int(elem.shape[0]), int(elem.shape[1]))
        encoding = elem.attrs.get("encoding-type", elem.attrs.get("h5sparse_format", ""))
        encoding = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
        kind = {"csr_matrix": "csr", "csc_matrix": "csc", "csr": "csr", "csc": "csc"}.get(encoding)
        if kind is None:
            raise DataError(f"{self.path}: {self.matrix_name} is stored as {encoding or 'an unknown element'!r}, "
                            "not a dense, CSR or CSC matrix")
        shape = elem.attrs.get("shape", elem.attrs.get("h5sparse_shape"))
        if elem["data"].dtype.kind not in "biuf":
            raise DataError(f"{self.path}: {self.matrix_name} holds {elem['data'].dtype} values, not numbers")
        return kind, (int(shape[0]), int(shape[1]))

    def _gene_names(self, var_names: str | None, index_words: str) -> None:
        """Sets ``var_names_column`` and ``feature_names``: ``--var-names var_names`` (or none) is the var index,
        unless a var column has that very name; with the model's column as a fallback that this file lacks,
        the index, said in a note (``index_words`` names it for the user)."""
        self._index_words = index_words
        index_meant = var_names is None or (var_names == VAR_INDEX and VAR_INDEX not in self.var.columns)
        self.var_names_column = None if index_meant else var_names
        if self._fallback and self.var_names_column is not None and self.var_names_column not in self.var.columns:
            self.notes.append(f"{self.path} has no var column {var_names!r} (the model's gene names came from one): "
                              f"gene names from {index_words}")
            self.var_names_column = None
        self.unlisted_genes: set[str] = set()  # names given to genes said to be left out (``_names``)
        self.feature_names = self._names(self.var_names_column)

    def _names(self, column: str | None) -> list[str]:
        """The feature names from the var index or a var column; missing names are an error, and so are
        repeated ones (two loci sharing a symbol) unless no model gene is among them (``needed``, predict):
        which copy a gene is cannot be told from its name, and naming them apart by file order (anndata's
        var_names_make_unique) would tie a model to one annotation's order of its genes."""
        if column is None:
            values, what = self.var.index, self._index_words
        else:
            if column not in self.var.columns:
                raw = getattr(self, "matrix_name", "") == ".raw.X"
                table = ".raw.var" if raw else "var"
                main = raw and column in self._main_var_columns()
                why = ("; .var has it, but --raw reads .raw's genes, named by .raw.var — leave out --var-names or "
                       "--raw" if main else "")
                raise DataError(f"--var-names {column!r}: no such {table} column in {self.path}; its {table} columns: "
                                f"{quoted(self.var.columns, 8) or 'none'} (or var_names, the index){why}")
            values, what = self.var[column], f"var column {column!r} (--var-names)"
        values = pd.Series(plain_values(values))
        unnamed = values.isna().to_numpy()
        if unnamed.any() and self._needed is None:  # training: every gene read needs its name
            raise DataError(f"{self.path}: {what} has {int(unnamed.sum())} missing gene names; pick another "
                            "--var-names column")
        named = values[~unnamed]
        if column is not None and (named.dtype.kind in "bc" or (named.dtype.kind == "f" and (
                named != np.round(named)).any())):
            # a measurement (gene length, mean expression) or a flag (highly_variable): names like '3.5' or 'True'
            # would match no other file's genes; whole numbers may be Entrez ids, and pass
            texts = [c for c in self.var.columns if is_text_column(self.var[c])]
            raise DataError(f"--var-names {column!r}: {what.split(' (')[0]} of {self.path} holds "
                            f"{'true/false flags' if values.dtype.kind == 'b' else 'measurements'} "
                            f"({', '.join(map(str, values.iloc[:3]))}, ...), not gene names; its text columns: "
                            f"{quoted(texts, 8) or 'none'} (or var_names, the index)")
        if unnamed.any() and named.dtype.kind == "f":  # whole numbers (Entrez ids) made floats by the missing ones
            values = values.astype(object).where(unnamed, named.astype(np.int64).astype(str))
        names = [str(v) for v in values]
        if unnamed.any():
            # predict: a gene without a name is none of the model's genes found by name (a symbol column lacks
            # some loci's); each gets a name no model gene has, and the missing-feature rules judge the rest
            for j in np.flatnonzero(unnamed):
                names[j] = f"(gene {j + 1} of {what}: no name)"
                self.unlisted_genes.add(names[j])
            k = int(unnamed.sum())
            self.notes.append(f"{count_of(k, 'gene')} {'has' if k == 1 else 'have'} no name in {what}; left out (the "
                              "model's genes are "
                              "found by their names)")
        counts = Counter(names)
        repeats = [(n, k) for n, k in counts.items() if k > 1]
        if not repeats:
            return names
        # a model gene among them by the matching rule (letter case, Ensembl versions), not only as written
        needed = None if self._needed is None else {name_key(n) for n in self._needed}
        if needed is not None and not any(name_key(n) in needed for n, _ in repeats):
            # genes the model does not read (two unused genes sharing a symbol, as in many 10x files): each
            # copy gets a name no model gene has, so every name stays one column
            seen: Counter = Counter()
            for j, n in enumerate(names):
                if counts[n] > 1:
                    seen[n] += 1
                    names[j] = f"{n} (copy {seen[n]} in {what})"
                    self.unlisted_genes.add(names[j])
            self.notes.append(f"{count_of(sum(k for _, k in repeats), 'gene')} the model does not use share "
                              f"{count_of(len(repeats), 'name')} in {what} (e.g. {repeats[0][0]!r}); left out")
            return names
        if needed is not None:
            repeats = [(n, k) for n, k in repeats if name_key(n) in needed]
        ids = self._other_ids(column)

        def shown(n: str, k: int) -> str:  # 'TBCE' (×2) ['ENSG00000284770', 'ENSG00000285053']
            if ids is None:
                return f"{n!r} (×{k})"
            return f"{n!r} (×{k}) [{quoted([i for i, m in zip(ids[1], names) if m == n], 3)}]"

        listed = ", ".join(shown(n, k) for n, k in repeats[:3])
        more = f" and {len(repeats) - 3} more" if len(repeats) > 3 else ""
        if needed is not None:
            raise DataError(f"{self.path}: {what} repeats gene names the model uses: {listed}{more}; which copy is the "
                            "model's cannot be told from the name — keep one gene of each name in the file, or train "
                            "on unique gene ids")
        if ids is not None:
            fix = (f"leave out --var-names to name genes by {self._index_words}" if ids[0] is None else
                   f"pass --var-names {ids[0]}") + " (unique), or keep one gene of each name in the file"
        else:  # no other column names every gene once: --var-names cannot help
            fix = self._no_unique_names_fix()
        verb = "repeat" if what == "the feature ids" else "repeats"
        raise DataError(f"{self.path}: {what} {verb} gene names: {listed}{more}; features must have unique names — "
                        f"{fix}")

    def check_drop_name(self, name: str) -> None:
        """A DataError when --drop `name` is neither a gene name the file is read with nor an .obs column but a
        value of another var column (a symbol, where genes are named by Ensembl id): the option that names genes
        so, and the gene's name as read. Nothing otherwise (the roles' "not found" says the rest)."""
        for column in self.var.columns:
            if not is_text_column(self.var[column]) or column == self.var_names_column:
                continue
            values = pd.Series(plain_values(self.var[column])).astype(str).to_numpy()
            hits = np.flatnonzero(values == name)
            if hits.size:
                raise DataError(f"{self.path}: --drop {name!r} is a value of the var column {column!r}, but genes are "
                                f"named by {self.names_from} here ({name!r} is {self.feature_names[hits[0]]!r}): give "
                                f"that name, or pass --var-names {column}")

    def _main_var_columns(self) -> list[str]:
        """The column names of .var (beside .raw.var, which --raw reads), from the file's attributes."""
        try:
            order = self.file["var"].attrs.get("column-order", [])
        except _READ_ERRORS:
            return []
        return [_text(c) for c in (order.tolist() if hasattr(order, "tolist") else order)]

    def _no_unique_names_fix(self) -> str:
        """The remedy when neither the var index nor any text var column names every gene once."""
        return ("no var column names every gene once either: make the names unique (anndata's "
                "var_names_make_unique) or keep one gene of each name in the file")

    def _other_ids(self, column: str | None) -> tuple[str | None, list[str]] | None:
        """(the var column, None for the index; its values) of unique gene identifiers other than `column`:
        the var index, or a text var column (gene_ids) when the index is the repeated one; None if none."""
        candidates = [] if column is None else [None]
        candidates += [c for c in self.var.columns if c != column and is_text_column(self.var[c])]
        for c in candidates:
            values = pd.Series(plain_values(self.var.index if c is None else self.var[c]))
            if not values.isna().any() and values.is_unique:
                return c, [str(v) for v in values]
        return None

    # ── obs ──────────────────────────────────────────────────────────────────────────────────────────────

    @property
    def columns(self) -> list[str]:
        """The names a table of this file offers: obs_names, the obs columns, then the features (an obs
        column sharing its name with a feature is left out: the name means the feature). Genes without a name,
        or sharing one, that a model does not use (``_names``: a note has said them) are not among them: no
        model gene is one of them, and a list of the columns ignored must not say them again."""
        features = set(self.feature_names)
        obs = [c for c in [OBS_NAMES, *self.obs_columns] if c not in features]
        return list(dict.fromkeys(obs)) + self.named_features

    @property
    def named_features(self) -> list[str]:
        """The feature names a table of this file offers (``columns``): those the reader did not leave out."""
        if not self.unlisted_genes:
            return self.feature_names
        return [n for n in self.feature_names if n not in self.unlisted_genes]

    def obs_frame(self, names: Sequence[str], start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """The obs columns `names` (``obs_names`` for the index) of cells start..stop (all by default) as a
        DataFrame indexed from 0, each read as a table column reads (categories as their values). Only those
        rows are read from the file (prediction reads a range of cells at a time, so memory stays at the
        range); an encoding without a row-range reader here is read whole once and kept."""
        stop = self.n_obs if stop is None else min(int(stop), self.n_obs)
        start = max(0, min(int(start), stop))
        out: dict[str, object] = {}
        for name in dict.fromkeys(names):
            try:
                values = self._obs_rows(name, start, stop)
            except DataError:
                raise
            except _READ_ERRORS as exc:
                raise self._fail(exc, f"obs column {name!r}") from None
            out[name] = values
        return pd.DataFrame(out, index=pd.RangeIndex(stop - start))

    def _obs_rows(self, name: str, start: int, stop: int):
        """Rows start..stop of one obs column, converted by ``plain_values``. Datasets (strings, numbers) and
        categoricals (codes + categories) are sliced in the file; other encodings (nullable arrays) are
        read whole through anndata once and kept."""
        obs = self.file["obs"]
        key = self._obs_index if name == OBS_NAMES else name
        if key not in obs:
            raise DataError(f"{self.path}: obs has no column {name!r}")
        elem = obs[key]
        encoding = elem.attrs.get("encoding-type", "")
        encoding = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
        whole = getattr(self, "_obs_whole", None)
        if whole is None:
            whole = self._obs_whole = {}
        # a categorical: codes + categories, since anndata 0.8 a group, before it (0.7) a dataset of codes whose
        # "categories" attribute refers to obs/__categories/NAME — read as a dataset, its codes would be the labels
        legacy = isinstance(elem, h5py_dataset()) and "categories" in elem.attrs
        if isinstance(elem, h5py_dataset()) and elem.ndim == 1:
            length, values = elem.shape[0], None
        elif encoding == "categorical" and "codes" in elem and "categories" in elem:
            length, values = elem["codes"].shape[0], None
        else:
            if key not in whole:
                whole[key] = plain_values(self._read_elem(elem))
            length, values = len(whole[key]), whole[key]
        if length != self.n_obs:
            raise DataError(f"{self.path}: obs column {name!r} has {length} values for {self.n_obs} cells")
        if values is not None:
            return values[start:stop]
        if isinstance(elem, h5py_dataset()) and not legacy:
            return plain_values(elem[start:stop])
        if key not in whole:  # the categories: small, read once
            whole[key] = self._read_elem(elem.parent[elem.attrs["categories"]] if legacy else elem["categories"])
        codes = np.asarray((elem if legacy else elem["codes"])[start:stop])
        categories = whole[key]
        if codes.size and (codes.max() >= len(categories) or codes.min() < -1):
            raise DataError(f"{self.path}: obs column {name!r} has category codes beyond its {len(categories)} "
                            "categories; is the file corrupt?")
        return plain_values(pd.Categorical.from_codes(codes, categories=pd.Index(categories)))

    # ── the matrix ───────────────────────────────────────────────────────────────────────────────────────

    def read_matrix(self, columns: np.ndarray | None = None):
        """The whole matrix (n_obs, n_vars), or its `columns`: a sparse one as CSR float32 (never densified),
        a dense one as float64."""
        import scipy.sparse as sp

        if self.kind == "dense":
            try:
                X = np.asarray(self._elem[()], dtype=np.float64)
            except _READ_ERRORS as exc:
                raise self._fail(exc, self.matrix_name) from None
            return X if columns is None else np.ascontiguousarray(X[:, columns])
        indptr = self._pointer()
        data, indices = self._entries(0, int(indptr[-1]), "")
        build = sp.csr_matrix if self.kind == "csr" else sp.csc_matrix
        X = build((data, indices, indptr), shape=self.shape)
        X = sp.csr_matrix(X) if self.kind == "csc" else X  # CSC: one conversion (stored column-wise)
        if columns is not None:
            X = X[:, columns]
        return as_float32_csr(X)

    def rows(self, start: int, stop: int, columns: np.ndarray) -> np.ndarray:
        """Rows start..stop of the matrix, only `columns`, as a dense C-ordered float64 block. A sparse matrix
        is read by row ranges from the file (CSR), so memory stays at the block; a CSC one is read whole once
        (it is stored by columns, a row range would read all of it)."""
        import scipy.sparse as sp

        if self.kind == "csc":
            if getattr(self, "_whole", None) is None:
                self._whole = self.read_matrix(columns)
                self._whole_columns = columns
            if self._whole_columns is not columns:
                raise RuntimeError("rows: columns changed between calls")
            return self._whole[start:stop].toarray().astype(np.float64, copy=False)
        try:
            if self.kind == "dense":
                return np.ascontiguousarray(self._elem[start:stop][:, columns], dtype=np.float64)
        except _READ_ERRORS as exc:
            raise self._fail(exc, f"rows {start + 1}-{stop} of {self.matrix_name}") from None
        indptr = self._pointer()
        low, high = int(indptr[start]), int(indptr[stop])
        data, indices = self._entries(low, high, f" (rows {start + 1}-{stop})")
        block = sp.csr_matrix((data, indices, indptr[start:stop + 1] - low), shape=(stop - start, self.shape[1]))
        return block[:, columns].toarray().astype(np.float64, copy=False)

    def _pointer(self) -> np.ndarray:
        """The sparse matrix's index pointer (n_major + 1,), read and checked once (``compressed``): a damaged
        one is a DataError naming the file and the matrix before a value is read."""
        if self._indptr is None:
            try:
                indptr = np.asarray(self._elem["indptr"][()])
                n_indices, n_data = int(self._elem["indices"].shape[0]), int(self._elem["data"].shape[0])
            except _READ_ERRORS as exc:
                raise self._fail(exc, self.matrix_name) from None
            csr = self.kind == "csr"
            problem = structure_problem(indptr, n_indices, n_data, self.shape[0 if csr else 1],
                                        "row" if csr else "column")
            if problem:
                raise self._corrupt(problem)
            self._indptr = signed_index(indptr)
        return self._indptr

    def _entries(self, low: int, high: int, where: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, indices) of the sparse matrix's entries low..high, the indices checked against its shape."""
        try:
            data, indices = self._elem["data"][low:high], self._elem["indices"][low:high]
        except _READ_ERRORS as exc:
            raise self._fail(exc, f"{self.matrix_name}{where}") from None
        csr = self.kind == "csr"
        problem = index_problem(indices, self.shape[1 if csr else 0], "column" if csr else "row")
        if problem:
            raise self._corrupt(problem, where)
        return sparse_values(data), signed_index(indices)

    def _corrupt(self, problem: str, where: str = "") -> DataError:
        return DataError(f"cannot read {self.matrix_name} of {self.path}{where}: {problem}; is the file truncated "
                         "or corrupt?")

    # ── gene identifiers ─────────────────────────────────────────────────────────────────────────────────

    def check_feature_names(self, wanted: Sequence[str], given_var_names: str | None) -> None:
        """A DataError explaining a gene-identifier mismatch with a model whose features are `wanted`: when
        fewer of them are among this file's feature names than among another var column's (or the var
        index's), name that column and the option that picks it; when none is found anywhere, show a few
        names of each side. Names are compared by the one matching rule of every reader (``data.names``:
        letter case, spaces and Ensembl version suffixes aside). A partial overlap that no other column
        betters is left to the missing-feature rules of prediction (``--fill-missing``, ``--max-missing``)."""
        wanted = list(wanted)
        found = count_matches(wanted, self.feature_names)
        if found == len(wanted):
            return
        best, best_found = None, found
        candidates = [] if self.var_names_column is None else [None]
        # text columns, and whole-number ones (Entrez ids are stored as integers), as ``_names`` reads them
        candidates += [c for c in self.var.columns if c != self.var_names_column and may_hold_names(self.var[c])]
        for column in candidates:
            values = self.var.index if column is None else self.var[column]
            n = count_matches(wanted, [str(v) for v in plain_values(values)])
            if n > best_found:
                best, best_found = column, n
        keys = {name_key(n) for n in self.feature_names}
        absent = [w for w in wanted if name_key(w) not in keys]  # the model's names the file's do not hold
        in_raw = self._raw_matches(wanted)
        if in_raw > max(found, best_found):  # a highly-variable-gene subset in .X, every gene in .raw (scanpy's way)
            raise DataError(f"{self.path}: only {found:,} of the model's {len(wanted):,} features are among the genes "
                            f"of {self.matrix_name} (e.g. not {quoted(absent[:2])}), but {in_raw:,} are among .raw's "
                            "(a subset of genes kept in .X, all of them in .raw?); pass --raw")
        if best_found > found:
            if best is None:
                fix = "leave out --var-names (or pass --var-names var_names)" if given_var_names else \
                    "pass --var-names var_names"
                where = "var_names (the var index)"
            else:
                fix, where = f"pass --var-names {best}", f"var column {best!r}"
            raise DataError(f"{self.path}: gene identifiers differ from the model's — only {found:,} of the model's "
                            f"{len(wanted):,} features are among the file's {self.names_from}, but {best_found:,} are "
                            f"in {where} (e.g. the model's {quoted(absent[:2])} are not among the file's "
                            f"{self.names_from}, which start {quoted(self.feature_names[:2])}); {fix}")
        if found == 0:
            model_kind, file_kind = id_kind(wanted), id_kind(self.feature_names)
            kinds = (f"the model's features are {model_kind}, the file's {file_kind}" if model_kind != file_kind else
                     "Ensembl ids vs symbols?")
            raise DataError(f"{self.path}: none of the model's {len(wanted):,} features is among the file's "
                            f"{self.names_from} or any var column (e.g. model {quoted(wanted[:3])}, file "
                            f"{quoted(self.feature_names[:3])}); gene identifiers differ ({kinds}) "
                            "— map them to the model's before predicting")

    def _raw_matches(self, wanted: Sequence[str]) -> int:
        """How many of `wanted` name genes of .raw (its var index), when this reads another matrix; 0 without one."""
        f = getattr(self, "file", None)  # (none for a 10x directory, read by the same checks)
        if f is None or self.matrix_name == ".raw.X" or "raw" not in f or "X" not in f["raw"] or "var" not in f["raw"]:
            return 0
        try:
            return count_matches(wanted, [str(v) for v in plain_values(self._read_elem(f["raw"]["var"]).index)])
        except _READ_ERRORS:
            return 0

    def close(self) -> None:
        file = getattr(self, "file", None)
        if file is not None:
            try:
                file.close()
            except Exception:  # noqa: BLE001 - closing after an error must not mask it
                pass
            self.file = None

    def __enter__(self) -> "H5ad":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _text(value) -> str:
    """An HDF5 attribute's name as text (bytes in files written with h5py 2)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def h5py_dataset():
    import h5py

    return h5py.Dataset


def may_hold_names(column) -> bool:
    """Whether a var column may hold gene names: text, or whole numbers (Entrez ids), as ``H5ad._names`` reads."""
    dtype = getattr(column, "dtype", None)
    return is_text_column(column) or (dtype is not None and dtype.kind in "iu")


def is_text_column(column) -> bool:
    """Whether a var (or obs) column holds text: categories, objects or strings, not numbers or flags."""
    dtype = getattr(column, "dtype", None)
    return isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype) or \
        pd.api.types.is_string_dtype(dtype)


def as_float32_csr(X):
    """A CSR matrix with float32 values when they are float32 numbers already (counts, values stored as
    float32: half the memory of float64), else float64 — rounding them would make a matrix read whole (CSC,
    10x) predict other numbers than the same values read by row ranges or from a table —, sorted indices, one
    entry per position (repeated ones summed: preprocessing works on the stored values, and log1p of two halves
    is not log1p of their sum) and int32/int64 index arrays as scipy chose."""
    if X.dtype != np.float32:
        exact = np.array_equal(X.data.astype(np.float32), X.data, equal_nan=True)  # compared in float64
        X = X.astype(np.float32) if exact else X.astype(np.float64, copy=False)
    if not X.has_canonical_format:  # entries repeated at one position (a file written by hand or another tool):
        X.sum_duplicates()  # one value each, as a dense read sums them; also sorts the indices
    return X


def load_dataset(path, *, target=None, group: str | None = None, no_group: bool = False, id: str | None = None,  # noqa: A002
                 batch: str | None = None, drop: Sequence[str] = (), task: str = "auto", classes=None,
                 layer: str | None = None, raw: bool = False, var_names: str | None = None,
                 require_target: bool = True, var_names_fallback: bool = False, sheet=None):
    """A training Dataset from an .h5ad file; returns (dataset, notes). Roles come from obs columns (id:
    obs_names unless --id names a column), and from a sample sheet (``samples.SampleSheet``, --samples) joined
    on the cells' names (obs_names, or the obs column of the sheet's id column's name) when one is given:
    cells without a row in it are left out; features from the chosen matrix, a sparse one kept as CSR
    float32. --drop may name obs columns or genes (genes are left out of the features)."""
    from .conventions import DEFAULT_TARGET
    from .dataset import Dataset
    from .roles import listed_names, resolve_roles
    from .samples import SampleJoin

    with H5ad(path, layer, raw, var_names, var_names_fallback=var_names_fallback) as h:
        columns = h.columns
        obs_set = set(columns) - set(h.feature_names)
        drops = listed_names(drop)
        genes_of_file = set(h.feature_names)
        gene_drops = [d for d in drops if d not in obs_set and d in genes_of_file]
        for d in drops:
            if d not in obs_set and d not in genes_of_file:  # a gene named in another var column (a symbol)?
                h.check_drop_name(d)
        obs_columns = [c for c in columns if c in obs_set]
        join = None
        if sheet is not None:  # the sheet's columns beside the obs ones, matched on the cells' names
            join = SampleJoin(sheet, h.path, obs_columns, cells_id=OBS_NAMES)
            for flag, names in (("--target", listed_names(DEFAULT_TARGET if target is None else target)),
                                ("--group", [group]), ("--batch", [batch])):
                join.require(flag, names)
            obs_columns = join.columns
        try:
            roles, notes = resolve_roles(obs_columns,
                                         target=DEFAULT_TARGET if target is None else target, group=group,
                                         no_group=no_group, id=join.data_id if join is not None else
                                         OBS_NAMES if id is None else id, batch=batch,
                                         drop=[d for d in drops if d not in gene_drops], require_target=require_target,
                                         suggest_group=True)  # no donor_id, but an obs column 'donor': --group donor
        except DataError as exc:  # the file named, and why an .obs column the user sees is not among the columns
            asked = {*listed_names(DEFAULT_TARGET if target is None else target), group, batch, id} - {None}
            hidden = [c for c in h.obs_named_like_genes if c in asked]
            if hidden:
                raise DataError(f"{path}: the .obs column {hidden[0]!r} is named like a gene of the file, and the name "
                                "means the gene; rename the .obs column (e.g. adata.obs.rename(columns={"
                                f"{hidden[0]!r}: 'label'}})) and name that") from None
            raise DataError(f"{path}: {exc}") from None
        if id is None:
            notes = [n.replace(f"id: {OBS_NAMES}", f"id: {OBS_NAMES} (default for .h5ad; --id to choose)")
                     for n in notes]
        if join is not None:
            join.select([*roles.target, roles.group, roles.batch], roles.drop)
            on_file = [c for c in roles.columns() if c in obs_set]
            frame, keep_rows = join.apply(h.obs_frame(list(dict.fromkeys([join.data_id, *on_file]))))
        else:
            frame, keep_rows = h.obs_frame(roles.columns()), None
        names, keep = h.feature_names, None
        if gene_drops:
            dropped = set(gene_drops)
            keep = np.array([j for j, n in enumerate(names) if n not in dropped], dtype=np.int64)
            names = [names[j] for j in keep]
            notes.append(f"dropped genes: {', '.join(gene_drops)}")
        X = h.read_matrix(keep)
        if keep_rows is not None:
            X = X[keep_rows]
        read_notes = list(h.notes)
    if join is not None:
        notes += join.notes
        frame = frame[[c for c in roles.columns() if c in frame.columns]]
        frame.attrs[JOINED_ATTR] = {c: join.sheet.said for c in join.joined}  # a bad cell there is the sheet's
    if roles.id == OBS_NAMES and OBS_NAMES in frame.columns:
        _check_unique_obs_names(frame[OBS_NAMES], path)
    frame = frame.drop(columns=[c for c in roles.drop if c in frame.columns])
    roles.drop = []  # obs columns: never features here, nothing to remove from the matrix
    if join is None:  # a cell that does not fit names the file (with a sample sheet, the sheet's cell is)
        frame.attrs.setdefault(SOURCE_ATTR, path)
    ds = Dataset.from_frame(frame, roles, task=task, classes=classes, features=(names, X))
    ds.warnings += [] if join is None else join.warnings
    return ds, read_notes + notes


def _check_unique_obs_names(values: pd.Series, path) -> None:
    """A DataError naming the file when cells share an obs_name (the id): files concatenated without
    ``index_unique`` repeat each sample's barcodes, and one id would stand for several cells."""
    repeated = values[values.duplicated(keep=False)]
    if repeated.empty:
        return
    counts = repeated.value_counts(sort=False)
    listed = ", ".join(f"{str(i)!r} (×{k})" for i, k in counts.iloc[:3].items())
    more = f" and {len(counts) - 3} more" if len(counts) > 3 else ""
    raise DataError(f"{os.fspath(path)}: obs_names repeat cell names: {listed}{more} — cells of several samples "
                    "concatenated? Make them unique (adata.obs_names_make_unique(), or anndata.concat(..., "
                    "index_unique='-')), or pass --id COLUMN")


# ── writing predictions back ─────────────────────────────────────────────────────────────────────────────


def write_obs_columns(source, out, columns: dict[str, object], notes: list[str] | None = None,
                      prefix: str = "", ours: set[str] | None = None) -> None:
    """Write `out`: a copy of the .h5ad file `source` with `columns` ({name: (n_obs,) values}) added to its
    obs (replacing obs columns of the same names, and removing the other columns that carry `prefix`, an
    earlier prediction's; both noted in `notes`), everything else byte for byte as it
    was (.X, layers, raw, uns); an obs column of the same name that does not carry `prefix` (a non-empty one)
    is a DataError, not overwritten. `ours`: the names a prediction can write (``predict``'s
    ``prediction_obs_names``); given, only those count as an earlier prediction's, so a user's column that
    merely starts with the prefix (`cell_type` under the prefix "cell") is neither replaced nor removed.
    Atomic: the copy is made and changed in a file without a name beside `out` (``fileio.atomic_write``), named
    and renamed at the end; an error, Ctrl-C, SIGTERM or SIGKILL leaves `out` untouched and no temporary file
    (a named one killed outright stayed, a full copy of the input). Memory: the obs table, not the matrix."""
    from ..fileio import atomic_write

    h5py, read_elem = _io()
    try:
        from anndata.io import write_elem
    except ImportError:  # anndata 0.10
        from anndata.experimental import write_elem
    source = os.fspath(source)
    changed: dict[str, list] = {}

    def write(fh) -> None:
        _copy_into(source, fh)
        fh.seek(0)
        with h5py.File(fh, "r+") as f:  # h5py's file-object driver: the copy has no name to open it by
            obs = read_elem(f["obs"])
            replaced = [c for c in columns if c in obs.columns]
            def earlier(c) -> bool:  # an earlier prediction's column
                return prefix != "" and (str(c).startswith(prefix) if ours is None else str(c) in ours)

            # a column of the prefix holding another kind of value than the prediction's (the user's text note named
            # like a probability column) is not an earlier prediction's: overwritten with a note that -q hid
            foreign = [c for c in replaced if not earlier(c) or not _same_kind(obs[c], columns[c])]
            if foreign:
                fix = "give a prefix (the default is mlpcli_)" if prefix == "" else "pass --obs-prefix to name them apart"
                raise DataError(f"{source} already has the obs column{'s' * (len(foreign) > 1)} {quoted(foreign)}, "
                                f"which the predictions would overwrite; {fix}")
            # the prefix's other columns are an earlier prediction's (its probabilities, sets, OOD flags): kept
            # beside this one's labels they would contradict them
            stale = [c for c in obs.columns if earlier(c) and c not in columns]
            if prefix:
                stale = _class_probabilities(obs, columns, stale, source, prefix)
            obs = obs.drop(columns=stale)
            for name, values in columns.items():
                if len(values) != len(obs):
                    raise DataError(f"{len(values)} predictions for the {len(obs)} cells of {source}")
                obs[name] = values
            kwargs = _compression_of(f["obs"])  # as the input's obs was stored (gzip, as scanpy writes it)
            del f["obs"]
            write_elem(f, "obs", obs, dataset_kwargs=kwargs)
        fh.flush()
        changed.update(replaced=replaced, stale=stale)

    atomic_write(out, write, readable=True)
    replaced, stale = changed["replaced"], changed["stale"]
    if replaced and notes is not None:
        notes.append(f"replaced the obs column{'s' * (len(replaced) > 1)} {quoted(replaced)} of the input "
                     "(a previous prediction?); --obs-prefix to keep both")
    if stale and notes is not None:
        notes.append(f"removed the obs column{'s' * (len(stale) > 1)} {quoted(stale)} of an earlier prediction "
                     f"(prefix {prefix!r}), which this one does not write; --obs-prefix to keep both")


def _compression_of(group) -> dict:
    """The compression filter of the first compressed dataset under `group` (h5py's compression and its options),
    for rewriting the group as it was stored; {} when none is."""
    found: dict = {}

    def visit(_name, obj) -> bool | None:
        if isinstance(obj, h5py_dataset()) and getattr(obj, "compression", None):
            found.update(compression=obj.compression, compression_opts=obj.compression_opts)
            return True  # stop
        return None

    group.visititems(visit)
    return found


def _same_kind(old, new) -> bool:
    """Whether an obs column ``old`` holds the kind of values (numbers, or text and categories) that the prediction's
    ``new`` values are, as an earlier prediction's column does."""
    def numeric(values) -> bool:
        dtype = getattr(values, "dtype", None)
        return dtype is not None and pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)

    return numeric(old) == numeric(new)


def _copy_into(source: str, fh) -> None:
    """The file ``source`` copied into the empty file object ``fh`` by the kernel (copy_file_range, else sendfile:
    5 times faster than through Python's buffers, 118 MB in 0.08 s against 0.4), through ``fh`` where neither
    is to be had."""
    import shutil

    fh.flush()
    out = fh.fileno()
    with open(source, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        for copy in (getattr(os, "copy_file_range", None), getattr(os, "sendfile", None)):
            if copy is None:
                continue
            done = 0
            try:
                while done < size:
                    step = copy(src.fileno(), out, size - done) if copy is not os.sendfile else \
                        os.sendfile(out, src.fileno(), done, size - done)
                    if step == 0:
                        break
                    done += step
            except OSError as exc:
                if done or exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF):
                    raise  # (disk full: the output's error)
                continue
            if done == size:
                os.lseek(out, 0, os.SEEK_SET)
                return
            if done == 0:  # the call copies nothing on this file system (0 at once, as some do): the next way
                continue
            raise OSError(errno.EIO, f"{source} changed while it was copied")
        shutil.copyfileobj(src, fh, 1 << 22)
        fh.flush()


def obs_spellings(name: str, others: int) -> set[str]:
    """The obs column names a prediction may have written ``name`` under: itself, and where it holds a "/" (HDF5's
    path separator) with "_" for it, then "_2", "_3", ... up to ``others`` + 1 where that name was taken
    (``predict.output``'s renaming)."""
    if "/" not in name:
        return {name}
    safe = name.replace("/", "_")
    return {name, safe} | {f"{safe}_{k}" for k in range(2, others + 2)}


def _class_probabilities(obs: pd.DataFrame, columns: dict, stale: list, source: str, prefix: str) -> list:
    """`stale` (the obs columns an earlier prediction wrote that this one does not) corrected by the class
    probabilities of earlier predictions (``--obs-probs``: `<prefix>prob_<class>` for each category of the
    label column `<prefix><target>`, which has `<prefix><target>_prob` beside it). Those columns are named by
    class, not by target, so the names a model can write do not tell whose they are: of an earlier prediction
    of a target written now (its label column replaced), the probabilities of classes this model lacks are
    stale too (left, a class renamed or dropped since would add its probability to this one's, summing past
    1); of an earlier prediction of another target (its label column kept), none is stale, and one this
    prediction would overwrite is a DataError (two models' probabilities in one set of columns)."""
    labels = [c for c in obs.columns if str(c).startswith(prefix) and f"{c}_prob" in obs.columns
              and isinstance(obs[c].dtype, pd.CategoricalDtype)]

    def probabilities(label) -> set[str]:
        names = {f"{prefix}prob_{c}" for c in obs[label].cat.categories}
        return {n for name in names for n in obs_spellings(name, 3 * len(names) + 8) if n in obs.columns}

    out = list(stale)
    for label in labels:
        theirs = probabilities(label)
        if label in columns:  # this prediction's target: the earlier one's classes are all stale
            out += sorted(p for p in theirs if p not in columns and p not in out)
            continue
        clash = [c for c in columns if c in theirs]
        if clash:
            raise DataError(f"{source}: the obs column{'s' * (len(clash) > 1)} {quoted(clash)} hold"
                            f"{'s' * (len(clash) == 1)} the class probabilities of the earlier prediction "
                            f"{label!r}, which this one would overwrite with another model's; pass --obs-prefix "
                            "to keep both")
        out = [c for c in out if c not in theirs]
    return out
