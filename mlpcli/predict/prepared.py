"""A whole table made ready for a model, for the commands and notebooks that need every row at once (explain,
gradcheck --data): ``prepare`` matches its columns to the model with the checks ``predict`` makes (features by
name, fills, roles, a sample sheet, the target's labels), and ``read_cells`` reads an .h5ad file or a 10x
directory whole as ``predict`` streams it. Prediction of any size goes through ``predict_stream`` instead."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import data
from ..data.conventions import DECIMAL_ATTR, ROW_NAMES_ATTR
from ..data.cells import NO_COPY
from ..data.samples import SampleJoin, read_sample_sheet, refuse_row_number_join
from ..data.sources import check_table_argument, is_pipe, table_source
from ..data.streamed import read_whole
from ..model_io import Model, require_model
from .columns import RoleFlags, complete_rows, present_values, never_measured, plan_columns
from .table_roles import open_h5ad, role_names, sheet_roles
from .cohort_labels import encode_target
from .unique_ids import UniqueIds

__all__ = ["Prepared", "is_cells", "read_cells", "prepare"]


@dataclass
class Prepared:
    """A table's rows ready for `model.predict_output(X)`."""

    X: np.ndarray  # (n, d_in) float64 in model.feature_names order; features the network ignores are NaN
    ids: np.ndarray  # (n,) the id column's values, or 1-based row numbers
    notes: list[str]
    warnings: list[str]
    # with prepare(labels=True), the model's target as evaluate encodes it ((n,) class indices, or 0/1 or
    # value columns) when the table (or its sample sheet) has the target column(s); else None
    y: np.ndarray | None = None
    # the features the table lacks, filled with their training means (fill_missing="mean"): explain leaves
    # them out of its rankings, since every sample holds the same made-up value
    filled: list[str] = dataclasses.field(default_factory=list)
    # the model's target columns the table (or its sheet) has, --drop'ped ones left out: what y was read from,
    # or, when some are missing, what a caller needing labels can name (gradcheck)
    targets: list[str] = dataclasses.field(default_factory=list)
    # with prepare(unlabelled="skip"): (n,) bool, the rows y was read for (a label in every target column),
    # when some rows have none; y then holds those rows' labels only. None: every row's
    labelled: np.ndarray | None = None
    # (n,) the group column's values (patients) when the table (or its sheet) has the model's group column;
    # else None: explain's bootstrap resamples whole patients with it
    groups: np.ndarray | None = None
    id_column: str | None = None  # the id column ``ids`` holds, or None: they are row numbers

    def __iter__(self):  # X, ids, notes, warnings = prepare(...)
        return iter((self.X, self.ids, self.notes, self.warnings))

    def absent_targets(self, model: Model) -> tuple[list[str], list[str]]:
        """(the model's target columns, those the table lacks) when the table has some of a multi-output model's
        target columns but not all, so that ``y`` is None (prepare reads the target only whole); ([], []) else.
        A caller that needs labels names the absent ones rather than read the table as unlabelled."""
        if self.y is not None or not self.targets:
            return [], []
        targets = [str(t) for t in (model.roles or {}).get("target") or model.target_names]
        present = set(self.targets)
        absent = [t for t in targets if t not in present]
        return (targets, absent) if absent and len(absent) < len(targets) else ([], [])


def is_cells(source) -> bool:
    """Whether ``source`` is an AnnData .h5ad file or a 10x Genomics directory (not a table)."""
    return not isinstance(source, pd.DataFrame) and (data.h5ad.is_h5ad(source) or data.tenx.is_tenx(source))


def read_cells(model: Model, source, roles: RoleFlags | None = None
               ) -> tuple[pd.DataFrame, RoleFlags, list[str], list[str]]:
    """An .h5ad file or a 10x directory read whole as predict reads it (the model's matrix and gene names
    unless told, the gene-identifier check, obs_names or the barcodes as the id): (a DataFrame of its obs
    columns and of the genes that match the model's features, the roles for that frame, notes, warnings).
    Memory: the cells x the model's genes, dense float64; for commands that need every cell at once (explain)."""
    roles = roles or RoleFlags()
    if data.tenx.is_tenx(source):
        data.tenx.check_options(source, roles.layer, roles.raw, roles.features_in_rows)
    table, roles, notes, warnings = open_h5ad(source, roles, model)
    try:
        h = table.h
        genes_of_file = set(h.feature_names)
        obs = [c for c in table.columns if c not in genes_of_file]
        match = data.names.match_names(model.preprocessor.kept_features, h.feature_names, source=table.name)
        genes = list(dict.fromkeys(match.columns.values()))
        index = {n: j for j, n in enumerate(h.feature_names)}
        X = h.read_matrix(np.array([index[g] for g in genes], dtype=np.int64))
        # float64 before densifying, and one block the frame takes as it is: the table's values once in memory
        X = X.astype(np.float64).toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
        frame = pd.concat([h.obs_frame(obs), pd.DataFrame(X, columns=genes, copy=False)], axis=1, **NO_COPY)
        notes = [*table.notes, *notes]
    finally:
        table.close()
    return frame, roles, notes, warnings


def _str_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its column names as text, without copying its values (a whole table of genes, in explain)."""
    if all(isinstance(c, str) for c in frame.columns):
        return frame
    return frame.rename(columns=str, **NO_COPY)


def prepare(model: Model, frame, fill_missing: str | None = None, roles: RoleFlags | None = None,
            max_missing: float | None = None, labels: bool = False, can_fill: bool = True,
            unlabelled: str = "error") -> Prepared:
    """Match a table (DataFrame or path; an .h5ad file or a 10x directory is read whole, ``read_cells``) to
    the model by feature name, with the checks of predict; with ``labels``, also its target (``Prepared.y``;
    labels the model does not know are a DataError naming them; a target given in ``roles`` must be there).
    ``unlabelled``: a row without a label is a DataError naming it ("error"), or is left out of y ("skip":
    ``Prepared.labelled`` says which rows y is of; a caller sampling rows, gradcheck, needs only some).
    ``can_fill``: whether the caller offers --fill-missing (``plan_columns``)."""
    require_model(model, "prepare takes")  # a path given for it failed with an AttributeError inside
    check_table_argument(frame)  # a NumPy array failed as "expected str, bytes or os.PathLike object" in the reader
    if unlabelled not in ("error", "skip"):
        raise ValueError(f"unlabelled must be 'error' or 'skip', got {unlabelled!r}")
    need_target = labels and roles is not None and roles.target is not None
    read_notes: list[str] = []
    read_warnings: list[str] = []
    given_id = roles.id if roles is not None else None
    cells_id = None  # a cell file's column of cell names: a sheet's id column holds them, whatever its name
    series = None  # a GEO series matrix's Source: a features x samples table and its samples' annotations
    if is_cells(frame):
        name = str(frame)
        table, roles, read_notes, read_warnings = read_cells(model, frame, roles)
        if given_id is None:
            cells_id = roles.id
    elif isinstance(frame, pd.DataFrame):  # its sample ids from a named or text index, as training takes them
        name, table = "the table", data.user_frame(frame, given_id)
        if given_id is None and data.dataset.frame_id(table, None) is not None:  # its named index: the ids
            roles = dataclasses.replace(roles or RoleFlags(), id=data.dataset.frame_id(table, None))
            given_id = roles.id
        if roles is not None:
            data.h5ad.check_options(name, roles.layer, roles.raw, roles.var_names)
    else:
        name = str(frame)
        series = data.geo.series_source(frame)
        if series is None and (name == "-" or is_pipe(name)):  # read whole: what it is can be told from its bytes
            frame = table_source(frame, None)  # (read once; the reader below reads the Source's bytes)
            series = frame if data.geo.is_series_matrix(frame) else None
        if series is not None:
            roles = dataclasses.replace(roles or RoleFlags(), features_in_rows=True)
        if roles is not None:  # --layer, --raw, --var-names: .h5ad options, refused for a table as predict does
            data.h5ad.check_options(frame, roles.layer, roles.raw, roles.var_names)
        # the id columns it may have are read as written (a sample named NA is an id), as predict reads them
        ids = [str(n) for n in dict.fromkeys([given_id, (model.roles or {}).get("id"), data.DEFAULT_ID]) if n]
        table, read_notes = read_whole(frame, features_in_rows=bool(roles and roles.features_in_rows),
                           sep=roles.sep if roles else None, decimal=roles.decimal if roles else None,
                           text=role_names(model, roles), ids=ids)
    # the sheet's id column: --id as given (a cell file's default id, obs_names or barcode, is not the sheet's)
    sheet_id = given_id if cells_id is not None else (roles.id if roles is not None else None)
    sheet = read_sample_sheet(roles.samples, id=sheet_id) if roles is not None and roles.samples is not None else None
    if series is not None:
        sheet, geo_notes = data.geo.annotations_or(series, sheet, id=given_id)
        read_notes = [*read_notes, *geo_notes]
    join_notes: list[str] = []
    join_warnings: list[str] = []
    if isinstance(table, pd.DataFrame):  # a genes x samples file's symbol column naming the model's genes
        data.feature_rows.raise_names_elsewhere(table, model.preprocessor.kept_features, name)
    if sheet is None:
        plan = plan_columns(model, table.columns, roles, fill_missing=fill_missing, max_missing=max_missing,
                            source=name, need_target=need_target, can_fill=can_fill,
                            first_cells=lambda k: [str(v) for v in table.iloc[:k, 0]] if table.shape[1] else [])
        # a genes x samples file's text columns (gene symbols beside the samples): said as predict says it, once
        # the plan has told a table given in the wrong layout by the model's names (``StreamedFrame.pieces``)
        data.feature_rows.raise_annotation_columns(table)
    else:  # every row kept, with the sheet's columns where it has the sample
        join = SampleJoin(sheet, name, [str(c) for c in table.columns], features_in_rows=roles.features_in_rows,
                          keep_unmatched=True, cells_id=cells_id)
        if table.attrs.get(ROW_NAMES_ATTR) and data.DEFAULT_ID in table.columns:
            refuse_row_number_join(table[data.DEFAULT_ID], join, name)
        roles = dataclasses.replace(roles, id=join.data_id)
        plan = plan_columns(model, join.columns, roles, fill_missing=fill_missing, max_missing=max_missing,
                            source=name, sheet_columns=sorted(set(join.columns) - set(map(str, table.columns))),
                            need_target=need_target, can_fill=can_fill)
        data.feature_rows.raise_annotation_columns(table)  # before the join leaves out a text column as a sample it lacks
        join.select(sheet_roles(plan.roles, roles, table.columns, labels), plan.roles.drop,
                    said=() if labels else plan.roles.target)  # the plan notes an ignored target
        sheet_columns = set(join.columns) - set(map(str, table.columns))
        if labels and any(t in sheet_columns for t in plan.roles.target):
            join.keep_unmatched = False  # the labels are the sheet's: a sample it lacks is left out, as evaluate does
        table, _ = join.apply(table.rename(columns=str))
        join_notes, join_warnings = join.notes, join.warnings
    ids = table[plan.roles.id].to_numpy(dtype=object) if plan.roles.id else np.arange(1, len(table) + 1)
    if plan.roles.id:
        # (explain, the library's prepare: no -o FILE.h5ad annotates the cells by position)
        UniqueIds(plan.roles.id, name, lambda rows: ids[rows], predicting=False).add(ids, 0)
    row_ids = ids if plan.roles.id else None
    X_kept = complete_rows(plan, present_values(plan, _str_columns(table), 0, row_ids), 0, model.preprocessor,
                       row_ids)
    pre = model.preprocessor
    if len(pre.kept_index_) == pre.n_features_in and np.array_equal(pre.kept_index_, np.arange(pre.n_features_in)):
        X = X_kept  # every input feature kept, in order (the rule): no second copy of the table's values
    else:
        X = np.full((len(table), pre.n_features_in), np.nan)
        X[:, pre.kept_index_] = X_kept
    y, labelled = None, None
    if labels and plan.roles.target and len(plan.roles.target) == len(model.target_names or [None]):
        labels_from = name if sheet is None or not set(plan.roles.target) & sheet_columns else \
            f"{name} joined with {sheet.said}"  # the labels are the sheet's, as evaluate says
        named = _str_columns(table)
        rows = None
        if unlabelled == "skip":
            has = ~named[plan.roles.target].isna().any(axis=1).to_numpy()
            if not has.all():
                labelled, rows = has, np.flatnonzero(has)
        if rows is None or len(rows):
            y = encode_target(named, plan.roles.target, model, labels_from, 0, row_ids,
                               table.attrs.get(DECIMAL_ATTR), rows=rows)  # the decimal mark a text table was read with
    plan_notes = plan.notes if y is None else [n for n in plan.notes if not n.startswith("ignored the target column")]
    warnings = read_warnings + plan.warnings + join_warnings
    unmeasured = np.zeros(len(plan.features), dtype=bool)
    if model.preprocessor.config.impute is not None:  # a gene without a value in any row: imputed in every row
        measured = np.count_nonzero(~np.isnan(X_kept), axis=0)
        said = never_measured(plan, measured, len(X_kept), model.preprocessor.config.impute)
        if said is not None:
            warnings.append(said)
            unmeasured = plan.present & (measured == 0)
    filled = [f for f, found, never in zip(plan.features, plan.present, unmeasured) if not found or never]
    group = plan.roles.group
    columns = {str(c): c for c in table.columns}
    groups = table[columns[group]].to_numpy(dtype=object) if group is not None and group in columns else None
    return Prepared(X=X, ids=ids, id_column=plan.roles.id or None, notes=read_notes + plan_notes + join_notes,
                    warnings=warnings,
                    y=y, filled=filled, targets=list(plan.roles.target), labelled=labelled, groups=groups)
