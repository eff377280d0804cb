"""One pass of a model over a table (``PredictionRun``): pieces read ahead, checked and preprocessed, the network
in fixed blocks of rows (so chunked prediction equals one-shot prediction bit for bit), the shift statistics,
out-of-distribution scores and the rows' own columns beside the outputs."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from contextlib import nullcontext
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from .. import data
from ..data.copies import row_fingerprints
from ..data.labels import label_keys
from ..data.far_values import far_cells, far_words
from ..data.roles import listed_names, missing_batch_name
from ..data.samples import SampleJoin, read_sample_sheet, refuse_row_number_join
from ..data.pieces import PieceSize
from ..data.streamed import open_table
from ..data.streamed_frames import H5adPiece
from ..data.streamed_text import TextPiece
from ..decision import Decision
from ..errors import ConfigError, DataError
from ..model_io import ROW_BLOCK, Model
from ..resources import usable_cores
from ..text import quoted
from .cohort_labels import NOVEL_LABELS_HINT, encode_known, encode_target
from .columns import (ColumnPlan, RoleFlags, complete_rows, kept_only, present_values, row_label, TransformedRows,
                      never_measured, plan_columns)
from .seen import SeenRows, among, kept_feature_weights
from .shift import SHIFT_MIN_SAMPLES, ShiftReport, GroupCount, ShiftStats
from .sizes import STAT_BYTES, STAT_ROWS
from .trust import Trust
from .table_roles import number_key, open_h5ad, role_names, sheet_roles
from .unique_ids import id_lookup, UniqueIds


# The key of a sample whose patient id is missing, followed by its row: a patient of its own
NO_GROUP = "(no patient id) row "

# How many of a streamed table's first ids tell row numbers under its unnamed first column (``refuse_row_number_join``)
ROW_NUMBER_LOOKS = 10_000

# The network sees rows in blocks of Model.row_block rows (at most this many; fewer for wide tables),
# counted from the table's first row whatever the chunk size. BLAS results differ in the last bits with the
# number of rows in a product, so fixed blocks are what makes chunked prediction equal one-shot prediction
# exactly; Model.predict_output cuts its input into the same blocks, so the numbers also equal
# model.predict_output(X) bit for bit.
FORWARD_ROWS = ROW_BLOCK


def _with_references(blocks: Iterator[tuple[np.ndarray, dict]], refs: "_InputRows | None",
                     final: bool = False) -> Iterator[tuple[np.ndarray, dict]]:
    """The network's blocks, each with the reference rows of the same table rows in its meta ("reference")
    when ``refs`` keeps them (filled in step with the network's rows, so its blocks are the same rows)."""
    if refs is None:
        yield from blocks
        return
    for (Z, meta), (R, _) in itertools.zip_longest(blocks, refs.blocks(final)):
        meta["reference"] = R
        yield Z, meta


class _InputRows:
    """Network inputs waiting for the network, in one buffer reused for every chunk (fresh memory per
    chunk costs a page fault per 4 KiB, which on some machines is a third of the run time).

    A chunk's rows are written after the pending ones (`append`); `blocks` hands out views of whole
    blocks of `block` rows, counted from the table's first row (see FORWARD_ROWS), and moves the
    remainder to the front once the caller has used them.
    """

    def __init__(self, block: int, width: int, dtype):
        self.block, self.width, self.dtype = block, width, np.dtype(dtype)
        self.buf = np.empty((0, width), dtype=self.dtype)  # row-major: BLAS is slow on few column-major rows
        self.n = 0
        self.meta: list[dict] = []  # per appended chunk, its rows' columns (ids, batches, ...)

    def append(self, k: int, meta: dict) -> np.ndarray:
        """A (k, width) view to fill with the next k rows."""
        if self.n + k > len(self.buf):  # grows to the largest piece after the most rows that can be pending
            grown = np.empty((max(self.n + k, len(self.buf) * 5 // 4), self.width), dtype=self.dtype)
            grown[:self.n] = self.buf[:self.n]
            self.buf = grown
        self.meta.append(meta)
        self.n += k
        return self.buf[self.n - k:self.n]

    def blocks(self, final: bool = False) -> Iterator[tuple[np.ndarray, dict]]:
        start = 0
        while self.n - start >= self.block or (final and self.n > start):
            m = min(self.block, self.n - start)
            yield self.buf[start:start + m], self._take_meta(m)
            start += m
        if start:
            rest = self.n - start
            self.buf[:rest] = self.buf[start:self.n]  # numpy copies through a temporary if they overlap
            self.n = rest

    def _take_meta(self, m: int) -> dict:
        taken, got = [], 0
        while got < m:
            meta = self.meta[0]
            k = len(next(iter(meta.values())))
            if got + k <= m:
                taken.append(self.meta.pop(0))
                got += k
            else:
                cut = m - got
                taken.append({key: v[:cut] for key, v in meta.items()})
                self.meta[0] = {key: v[cut:] for key, v in meta.items()}
                got = m
        if len(taken) == 1:
            return taken[0]
        return {key: np.concatenate([t[key] for t in taken]) for key in taken[0]}


class _BlasShare:
    """Caps BLAS threads while the network runs beside the threads that read the table: on the same cores,
    OpenBLAS's threads (which spin while they wait) and the parsers slow each other down many times over
    (a 5-network ensemble on a 50,000-column table, 2 cores: 3.4 s with one BLAS thread next to the two
    parsers, 16.5 s with two). BLAS gets the cores the readers leave, at least one, never more than it
    had (an outer cap such as --threads stays)."""

    def __init__(self, reading_threads: int):
        self._controller, self.threads = None, None
        if not reading_threads:
            return
        from threadpoolctl import ThreadpoolController

        controller = ThreadpoolController().select(user_api="blas")
        current = min((info["num_threads"] for info in controller.info()), default=None)
        if current:
            share = max(1, min(current, usable_cores() - reading_threads))
            if share < current:
                self._controller, self.threads = controller, share

    def __call__(self):
        return self._controller.limit(limits=self.threads) if self._controller is not None else nullcontext()


class PredictionRun:
    """One pass over a table with a model: rows in, (outputs, per-row columns) blocks out."""

    def __init__(self, model: Model, source, *, roles: RoleFlags | None, need_target: bool, by: str | None,
                 fill_missing: str | None, chunksize: int | None, chunk_mb: float, stdin,
                 progress: Callable[[dict], None] | None, max_missing: float | None = None,
                 trust: Trust | None = None, unique_ids: bool = True, novel_labels: bool = False):
        from ..data.sources import check_table_argument

        check_table_argument(source)  # (a NumPy array failed in os.fspath, naming nothing)
        self.size = piece_size(chunksize, chunk_mb)
        self.model, self.progress, self.need_target = model, progress, need_target
        # evaluate --novel-labels: rows whose label the model does not know are marked (meta "novel", "novel_label")
        # and left out of the shift check, instead of stopping the run
        self.novel_labels = novel_labels
        self.trust = trust  # prediction sets and out-of-distribution scores (predict/trust.py), or None
        self.prevalence = None  # the cohort class mix the probabilities are moved to (``resolve_prevalence``), or None
        roles = roles or RoleFlags()
        # a sample sheet is small: read whole, before the table, and joined to each piece of it by id
        sheet = read_sample_sheet(roles.samples, id=roles.id) if roles.samples is not None else None
        # a GEO series matrix: its table read whole (features x samples), its samples' annotations the sheet
        series = data.geo.series_source(source)
        geo_notes: list[str] = []
        if series is not None:
            sheet, geo_notes = data.geo.annotations_or(series, sheet, id=roles.id)
            roles = dataclasses.replace(roles, features_in_rows=True)
        h5ad_notes: list[str] = []
        h5ad_warnings: list[str] = []
        if not isinstance(source, pd.DataFrame) and (data.h5ad.is_h5ad(source) or data.tenx.is_tenx(source)):
            if data.tenx.is_tenx(source):  # 10x Genomics: read as an .h5ad file is, through data.tenx.TenX
                data.tenx.check_options(source, roles.layer, roles.raw, roles.features_in_rows)
            self.table, roles, h5ad_notes, h5ad_warnings = open_h5ad(source, roles, model)
        else:
            role_rows = role_names(model, roles) + ([by] if by else [])  # the row layout's, read as written
            if isinstance(source, pd.DataFrame):  # its sample ids from a named or text index, as training takes them
                source = data.user_frame(source, roles.id)
                roles = dataclasses.replace(roles, id=data.dataset.frame_id(source, roles.id))  # a named index: ids
            self.table = open_table(source, features_in_rows=roles.features_in_rows, stdin=stdin, sep=roles.sep,
                                    decimal=roles.decimal, layer=roles.layer, raw=roles.raw,
                                    var_names=roles.var_names, text=role_rows)
        try:
            if series is None and not roles.features_in_rows:
                data.geo.refuse_streamed(self.table.columns, self.table.name)
            self.table.check_feature_names(model.preprocessor.kept_features)
            self.join, self.sheet_only = self._join(sheet, roles, by) if sheet is not None else (None, set())
            if self.join is not None:
                roles = dataclasses.replace(roles, id=self.join.data_id)
                if self.table.row_names:  # its head's ids: the sniffed window's rows (a few hundred at least)
                    refuse_row_number_join(self.table.first_cells(ROW_NUMBER_LOOKS), self.join, self.table.name)
            self.plan = plan_columns(model, self.join.columns if self.join else self.table.columns, roles,
                                     need_target=need_target, by=by, fill_missing=fill_missing,
                                     source=self.table.name, sheet_columns=sorted(self.sheet_only),
                                     max_missing=max_missing, first_cells=self.table.first_cells,
                                     ids_written=not need_target, feature_columns=self.table.feature_columns)
            if self.join is not None:
                self.join.select(sheet_roles(self.plan.roles, roles, self.table.columns, need_target, by),
                                 self.plan.roles.drop, said=() if need_target else self.plan.roles.target)
        except BaseException:
            self.table.close()
            raise
        # what the table's reader reads: the plan without the sheet's columns (joined to each piece by id)
        self.read_plan = self.plan if self.join is None else _without(self.plan, self.sheet_only)
        if roles.features_in_rows and series is None:
            self.plan.notes.append("--features-in-rows: the table was read whole (the transposed layout cannot "
                                   "be streamed)")
        self.notes = [*self.table.notes, *geo_notes, *h5ad_notes, *self.plan.notes]
        self.warnings = [*getattr(self.table, "warnings", ()), *h5ad_warnings, *self.plan.warnings]
        if self.join is not None:
            self.notes += self.join.notes
            self._join_noted = len(self.join.notes)
        self.pre = kept_only(model.preprocessor)
        # One network whose preprocessing is the reference: rows are transformed once, for the network and
        # the shift statistics alike. An ensemble's members each have their own preprocessing, so its rows
        # wait as raw values (float64) and every member transforms them (Model.predict_output).
        self.transform_once = not model.is_ensemble and model.members[0].preprocessor is model.preprocessor
        if self.transform_once:
            self.net_model = dataclasses.replace(
                model, members=[dataclasses.replace(model.members[0], preprocessor=TransformedRows())])
        else:
            self.net_model = model
        self.input_dtype = model.network.dtype if self.transform_once else np.float64
        self.stats = ShiftStats(model.preprocessor)
        self.n_far, self.first_far = 0, None  # values far beyond the training values (``_count_far``)
        self.empty_rows: list[str] = []  # the first few rows with 0 in every feature (``_count_empty``), and how many
        self.n_empty = 0
        # the shift check's sample counts are of patients when the table names them (samples of one patient
        # are not independent)
        self.group_count = GroupCount() if self.plan.roles.group else None
        self.n_without_group = 0  # rows whose patient id is missing: each counted as a patient of its own
        # give each block's first-member raw outputs (meta "first_member"): what APS's u is drawn from (recalibrate)
        self.keep_first_member = False
        # and, with an out-of-distribution basis (``trust``), each block's two distances (meta "ood_parts")
        self.keep_ood_parts = False
        # and each row's fingerprint (meta "fingerprint", ``data.row_fingerprints`` of its raw values of the model's
        # kept features): recalibrate keeps its cohort's, evaluate recognises them. Not where a feature is filled
        # (--fill-missing): the row is then not the one the table holds
        self.keep_fingerprints = False
        self._print_weights: np.ndarray | None = None  # their weights (``kept_feature_weights``), once needed
        self.n_rows = 0
        self.batch_counts: Counter = Counter()
        self._missing_batch = missing_batch_name((model.split or {}).get("batch_counts_train"))
        self.n_missing_values = 0
        self.measured = np.zeros(len(self.plan.features), dtype=np.int64)  # values per feature (--impute models)
        self.shift: ShiftReport | None = None
        self.ids = UniqueIds(self.plan.roles.id, self.table.name, id_lookup(self.table, self.plan.roles.id),
                              predicting=not need_target) if self.plan.roles.id and unique_ids else None
        self._started = False
        self._rows: np.ndarray | None = None  # raw feature values of up to STAT_ROWS rows, reused
        # rows the model was trained (or validated) on, recognised by their fingerprints (format 8 models)
        self.seen = SeenRows.of(model)
        if self.seen is not None and not self.plan.present.all():
            # a fingerprint covers every feature the model uses: a row with a feature filled (--fill-missing) never
            # matches, so "none seen" would be a false all-clear for a table that may well be the training one
            self.seen = None
            self.notes.append(SeenRows.filled_note(int((~self.plan.present).sum()), len(self.plan.present)))
        self.explain: tuple[int, int] | None = None  # (top K, IG steps): per-row reasons (PredictionStream)
        # how the shift warning tells the user to write every feature's figures (the command's own option)
        self.shift_report_hint = "--shift-report"
        # with explain: the name shown for each of plan.features in top_symbols (its gene symbol, else its id)
        self.symbol_names: list[str] | None = None
        self.threshold: float = 0.5  # what labels the rows (``resolve_decision``; set by predict_stream, evaluate)
        self.decision: Decision = model.decider
        self.labelled_by: str | None = None  # what the report names as having labelled the rows (``labelled_by``)

    def _join(self, sheet, roles: RoleFlags, by: str | None) -> tuple[SampleJoin, set]:
        """The sample sheet matched to the table's header; the columns only the sheet has."""
        join = SampleJoin(sheet, self.table.name, self.table.columns, features_in_rows=roles.features_in_rows,
                          keep_unmatched=not self.need_target,  # evaluation needs the sheet's rows, predict not
                          cells_id=getattr(self.table, "default_id", None))
        if self.need_target:
            join.require("--target", listed_names(roles.target) or list((self.model.roles or {}).get("target")
                                                                   or self.model.target_names))
        for flag, name in (("--group", roles.group), ("--batch", roles.batch), ("--by", by)):
            join.require(flag, [name])
        return join, set(join.columns) - set(self.table.columns)

    def _convert(self, frame, first_row: int) -> tuple[np.ndarray, dict]:
        """A parsed piece as (raw feature values (n, d_present) float64, per-row columns). Runs in the
        reading threads, so it only reads `self`."""
        plan = self.plan
        if isinstance(frame, (TextPiece, H5adPiece)):
            return self._convert_cells(frame, first_row)
        if not isinstance(frame, pd.DataFrame):
            return self._convert_arrow(frame, first_row)
        meta = self._meta(lambda name: frame[name].to_numpy(dtype=object),
                          lambda t: frame[t].reset_index(drop=True), len(frame), first_row)
        return present_values(plan, frame, first_row, meta.get("id")), meta

    def _meta(self, column, target_series, n_rows: int, first_row: int) -> dict[str, np.ndarray]:
        """The non-feature columns of a piece: id, batch / group / --by keys, the encoded target and each
        row's first-row offset (and, with a sample sheet, each row's sheet row, -1 for none: the sheet's
        columns are looked up by id). ``column(name)`` gives a column's values, ``target_series(name)`` a
        target column as a pandas Series (whichever reader parsed the piece)."""
        plan, join = self.plan, self.join
        meta: dict[str, np.ndarray] = {}
        matched = None
        if join is not None:
            positions = join.lookup(column(join.data_id))
            matched = positions >= 0
            meta["sheet_row"] = positions
            read_column, read_series = column, target_series

            def column(name):
                return join.values(name, positions) if name in self.sheet_only else read_column(name)

            def target_series(name):
                return pd.Series(join.values(name, positions)) if name in self.sheet_only else read_series(name)

        if plan.roles.id:
            meta["id"] = column(plan.roles.id)
        for key, name in (("batch", plan.roles.batch), ("group", plan.roles.group), ("by", plan.by)):
            if name:
                meta[key] = label_keys(column(name), self._missing_batch if key == "batch" else
                                        NO_GROUP if key == "group" else "NA")
        if "group" in meta:  # a sample without a patient id is a patient of its own (one key per row), not one "NA"
            missing = np.flatnonzero(meta["group"] == NO_GROUP)
            meta["group"][missing] = [f"{NO_GROUP}{first_row + i}" for i in missing]
        if self.need_target:
            targets = plan.roles.target
            frame = pd.DataFrame({t: target_series(t) for t in targets})
            decimal = getattr(self.table, "decimal", None)
            source = plan.source if not set(targets) & self.sheet_only else \
                f"{plan.source} joined with {join.sheet.said}"  # the labels are the sheet's
            if self.novel_labels:
                meta["novel_label"] = np.full(n_rows, None, dtype=object)
            if matched is None or matched.all():
                meta["y"] = self._encode(frame, targets, source, first_row, meta.get("id"), decimal, None,
                                         meta.get("novel_label"))
            else:  # rows without a sheet row are left out of the evaluation (after the network): no label needed
                meta["y"] = _empty_target(self.model, n_rows, len(targets))
                if matched.any():
                    rows = np.flatnonzero(matched)
                    novel = None if not self.novel_labels else np.full(len(rows), None, dtype=object)
                    meta["y"][matched] = self._encode(frame, targets, source, first_row, meta.get("id"), decimal,
                                                      rows, novel)
                    if novel is not None:
                        meta["novel_label"][rows] = novel
            if self.novel_labels:
                meta["novel"] = np.fromiter((v is not None for v in meta["novel_label"]), dtype=bool, count=n_rows)
        meta["first_row"] = np.full(n_rows, first_row, dtype=np.int64)
        return meta

    def _encode(self, frame: pd.DataFrame, targets: list[str], source: str, first_row: int, ids, decimal,
                rows: np.ndarray | None, novel: np.ndarray | None) -> np.ndarray:
        """The encoded target of a piece (``encode_target``); with --novel-labels, a label the model does not know
        is written into ``novel`` (its label, None for the others) instead of stopping the run."""
        if novel is None:
            return encode_target(frame, targets, self.model, source, first_row, ids, decimal, rows=rows,
                                  unknown_hint=NOVEL_LABELS_HINT)
        return encode_known(frame, targets, self.model, source, first_row, ids, decimal, rows, novel)

    def _convert_arrow(self, table, first_row: int) -> tuple[np.ndarray, dict]:
        """As `_convert`, for a pyarrow Table parsed with float64 features and text labels."""
        plan = self.plan
        index = {c: i for i, c in enumerate(table.column_names)}

        def column(name):
            return table.column(index[name]).to_numpy(zero_copy_only=False)

        meta = self._meta(column, lambda t: table.column(index[t]).to_pandas(), table.num_rows, first_row)
        # the feature columns as they are (copied into rows by `_transform`, in the caller's thread)
        return [column(c) for c in plan.present_names], meta

    def _convert_cells(self, cells: TextPiece, first_row: int) -> tuple[np.ndarray, dict]:
        """As `_convert`, for a piece read by the tokenizer: the feature values as they come, (n, d_present)."""
        plan = self.plan
        present = {c: j for j, c in enumerate(plan.present_names)}

        def column(name):  # --by may name a feature
            if name in cells.columns:
                return cells.columns[name].to_numpy(zero_copy_only=False)
            return cells.values[:, present[name]]

        meta = self._meta(column, lambda t: cells.columns[t].to_pandas(), len(cells), first_row)
        return cells.values, meta

    def _transform(self, values, ids: np.ndarray | None, first_row: int, Z: np.ndarray,
                   R: np.ndarray | None = None, seen: np.ndarray | None = None,
                   novel: np.ndarray | None = None, fingerprints: np.ndarray | None = None) -> None:
        """Write a piece's rows, as the network's inputs, into Z (n, d_kept), STAT_ROWS rows at a time so
        the preprocessing's temporaries stay small. `values` (an (n, d_present) array, or a list of the
        d_present columns) is copied slice by slice into a reused buffer, which is transformed in place.
        R (n, d_kept): where the reference preprocessing's rows go too, when Z holds raw values and the
        out-of-distribution scores need them (computed once, for the shift statistics and for them).
        seen (n,) bool: set where a row is one the model was trained on (``SeenRows``).
        novel (n,) bool: rows of a label the model does not know (evaluate --novel-labels), left out of the shift
        statistics, which are then those of the rows evaluated.
        fingerprints (n,) uint64: where each row's fingerprint goes (``keep_fingerprints``)."""
        pre = self.model.preprocessor
        if fingerprints is not None and self._print_weights is None:  # drawn once, not for every piece
            self._print_weights = (self.seen.weights if self.seen is not None else kept_feature_weights(self.model))
        weights = self._print_weights
        n = len(Z)
        width = len(values) if isinstance(values, list) else values.shape[1]
        step = max(1, min(STAT_ROWS, STAT_BYTES // (8 * max(width, 1))))
        # the scratch takes the values' layout, so that copying them in is contiguous: columns of a parsed
        # table are column-major, the tokenizer's rows row-major
        order = "C" if not isinstance(values, list) and values.flags.c_contiguous else "F"
        for s in range(0, n, step):
            e = min(s + step, n)
            if self._rows is None or self._rows.shape[0] < e - s or not self._rows.flags[f"{order}_CONTIGUOUS"]:
                self._rows = np.empty((min(step, max(n, 1)), width), order=order)
            rows = self._rows[:e - s]  # a copy: the values may be a view of the caller's DataFrame
            if isinstance(values, list):
                for j, column in enumerate(values):  # contiguous copies: the buffer is column-major
                    rows[:, j] = column[s:e]
            else:
                rows[...] = values[s:e]
            X = complete_rows(self.plan, rows, first_row + s, pre, None if ids is None else ids[s:e])
            # raw values, before the preprocessing transforms X in place
            if fingerprints is not None:
                fingerprints[s:e] = row_fingerprints(X, weights)
                if seen is not None:
                    seen[s:e] = among(fingerprints[s:e], self.seen.fingerprints)
            elif seen is not None:
                seen[s:e] = self.seen.match(X)
            keep = None if novel is None or not novel[s:e].any() else ~novel[s:e]
            self._count_empty(X, first_row + s, None if ids is None else ids[s:e])
            self.stats.count_nonzero(X if keep is None else X[keep])  # raw values: a gene at 0 in every row
            self._count_far(X, first_row + s, None if ids is None else ids[s:e])  # raw values, before the transform
            if pre.config.impute is not None:
                measured = ~np.isnan(X)
                self.n_missing_values += X.size - int(np.count_nonzero(measured))
                self.measured += np.count_nonzero(measured, axis=0)  # (a feature never measured: never_measured)
            try:
                if self.transform_once:
                    Z[s:e] = self.pre.transform(X)  # float64, in place in X; cast to the network's dtype on assignment
                    reference = Z[s:e]
                else:
                    Z[s:e] = X  # raw values: each member transforms them with its own preprocessing
                    reference = self.pre.transform(X)
                    if R is not None:
                        R[s:e] = reference
                self.stats.update(reference if keep is None else reference[keep])
            except DataError as exc:  # a value too far outside the training spread (the feature is named)
                raise DataError(f"{self.plan.source}, rows {first_row + s + 1}-{first_row + e}: {exc}") from None

    def _count_far(self, X: np.ndarray, first_row: int, ids: np.ndarray | None) -> None:
        """Count the raw values of a block of rows (X (k, d_kept), the block's first row being table row ``first_row``
        + 1) far beyond their feature's training values (``data.far_values.far_cells``), and keep where the first is."""
        k, first = far_cells(X, self.pre, seen=True)
        if not k:
            return
        if self.n_far == 0:
            i, j = first
            self.first_far = (self.pre.kept_features[j], row_label(first_row, i, ids))
        self.n_far += k

    def _count_empty(self, X: np.ndarray, first_row: int, ids: np.ndarray | None) -> None:
        """Count the rows of X (raw values of the model's features; table row ``first_row`` + 1 first) that hold 0 in
        every feature the table has (a NaN is no 0; the ones --fill-missing filled are not the sample's), keeping the
        first few by name."""
        present = self.plan.present
        if not present.all():
            X = X[:, present]
        empty = np.flatnonzero(~(X != 0).any(axis=1)) if X.shape[1] else np.zeros(0, dtype=np.int64)
        if not len(empty):
            return
        self.n_empty += len(empty)
        for i in empty[: max(0, 3 - len(self.empty_rows))]:
            self.empty_rows.append(row_label(first_row, int(i), ids))

    def empty_rows_warning(self) -> str | None:
        """A warning when rows hold 0 in every feature the model uses (``_count_empty``): empty droplets, failed
        samples. The model still gives them a class, with confidence, from no measurement (50 empty cells: 'T cell'
        at 0.89 each); on sparse counts the out-of-distribution check takes an empty profile for a typical one (the
        zero vector lay nearer the training cells than any real held-out cell), so nothing flagged them."""
        if not self.n_empty:
            return None
        k, d = self.n_empty, int(self.plan.present.sum())
        which = ", ".join(self.empty_rows) + (", …" if k > len(self.empty_rows) else "")
        of = (f"the model's {d:,} features" if self.plan.present.all() else
              f"the {d:,} of the model's features the table has")
        return (f"{'1 sample holds' if k == 1 else f'{k:,} samples hold'} 0 in every one of {of} "
                f"({which}): empty droplets or failed samples? The model still calls {'it' if k == 1 else 'them'}, "
                "from no measurement, and the out-of-distribution check need not flag an empty profile; remove such "
                "samples (or read their predictions as none)")

    def far_values_warning(self) -> str | None:
        """A warning when values lie far beyond their feature's training values (``_count_far``), else None."""
        if not self.n_far:
            return None
        feature, row = self.first_far
        some = "a value lies" if self.n_far == 1 else f"{self.n_far:,} values lie"
        far = far_words(bool(self.pre.config.log1p), self.pre.train_reach_ is not None)
        return (f"{some} {far} — the first in {feature!r} at {row} — which the model reads as the edge of its range, "
                "so a typo or a value in another unit moves the prediction without standing out: check the cell")

    def blocks(self) -> Iterator[tuple[np.ndarray, dict]]:
        """(outputs (m, n_outputs) float64 as `Model.predict_output` gives them, per-row columns) blocks."""
        if self._started:
            raise RuntimeError("a prediction stream can be iterated once")
        self._started = True
        rows = _InputRows(self.model.row_block, len(self.plan.features), self.input_dtype)
        # an ensemble's rows wait as raw values; the OOD scores need the reference preprocessing's, kept here
        # in the same blocks (the network's, which start at fixed table rows: see _outputs)
        refs = (_InputRows(self.model.row_block, len(self.plan.features), np.float64)
                if self.trust is not None and self.trust.basis is not None and not self.transform_once else None)
        self._blas = _BlasShare(self.table.reading_threads)
        plan, table = self.plan, self.table
        try:
            for values, meta in table.pieces(self.size, self.read_plan, self._convert):
                n = len(meta["first_row"])
                first_row = int(meta.pop("first_row")[0])
                if self.ids is not None:
                    self.ids.add(meta["id"], first_row)
                if self.join is not None:
                    self.join.count(meta["id"], meta["sheet_row"], first_row)
                meta["row"] = np.arange(self.n_rows + 1, self.n_rows + n + 1, dtype=np.int64)
                read, ids = n, meta.get("id")  # the piece's rows as read, and their ids (errors name rows of the table)
                kept = None  # the rows a sample sheet keeps (evaluate: those with a row in it), when it leaves some out
                if self.join is not None and not self.join.keep_unmatched and (meta["sheet_row"] < 0).any():
                    # left out before the preprocessing, not only after the network: their values (QC pools and
                    # blanks without a sheet row) had entered the shift check, the imputed and never-measured counts
                    kept = np.flatnonzero(meta["sheet_row"] >= 0)
                    meta = {k: v[kept] for k, v in meta.items()}
                    n = len(kept)
                known = ~meta["novel"] if "novel" in meta else None  # --novel-labels: the rows evaluated
                if "batch" in meta:
                    batches = meta["batch"] if known is None else meta["batch"][known]
                    if self.join is not None and (not self.join.keep_unmatched or plan.roles.batch in self.sheet_only):
                        # rows left out, or without the sheet's batch
                        batches = batches[(meta["sheet_row"] if known is None else meta["sheet_row"][known]) >= 0]
                    self.batch_counts.update(batches.tolist())
                if self.group_count is not None and "group" in meta:
                    self.group_count.add(meta["group"] if known is None else meta["group"][known])
                    self.n_without_group += sum(1 for g in meta["group"] if g.startswith(NO_GROUP))
                if self.seen is not None:
                    meta["seen"] = np.zeros(n, dtype=bool)
                if self.keep_fingerprints and self.plan.present.all():
                    meta["fingerprint"] = np.zeros(n, dtype=np.uint64)
                Z = rows.append(n, meta)
                R = None if refs is None else refs.append(n, {"row": meta["row"]})
                # runs of consecutive rows kept, each transformed with its own first row in the table
                runs = [(0, n, 0)] if kept is None else [
                    (int(run[0]), int(run[-1]) + 1, int(kept[run[0]]))
                    for run in np.split(np.arange(n), np.flatnonzero(np.diff(kept) != 1) + 1) if len(run)]
                for a, b, t in runs:
                    piece = values if kept is None else (
                        [column[t:t + b - a] for column in values] if isinstance(values, list) else values[t:t + b - a])
                    self._transform(piece, None if ids is None else ids[t:t + b - a], first_row + t, Z[a:b],
                                    None if R is None else R[a:b],
                                    *(None if meta.get(k) is None else meta[k][a:b]
                                      for k in ("seen", "novel", "fingerprint")))
                del values
                self.n_rows += read
                for Z, block_meta in _with_references(rows.blocks(), refs):
                    yield self._joined(self._outputs(Z, block_meta), block_meta)
                if self.progress is not None:
                    self.progress({"stage": "read", "rows": self.n_rows, "bytes": table.bytes_read,
                                   "total_bytes": table.total_bytes})
            for Z, block_meta in _with_references(rows.blocks(final=True), refs, final=True):
                yield self._joined(self._outputs(Z, block_meta), block_meta)
        finally:
            table.close()
        if self.n_rows == 0:
            raise DataError(f"{table.name} has a header but no data rows")
        self._finish()

    def _joined(self, out: np.ndarray, meta: dict) -> tuple[np.ndarray, dict]:
        """A block's outputs and columns without the rows a sample sheet leaves out (no row in it, when
        evaluating); predict keeps every row. The training rows among them are counted here (``SeenRows``)."""
        positions = meta.pop("sheet_row", None)
        if not (positions is None or self.join.keep_unmatched or (positions >= 0).all()):
            kept = positions >= 0
            out, meta = out[kept], {k: v[kept] for k, v in meta.items()}
        if self.seen is not None:  # the rows predicted or scored, not those a sample sheet leaves out
            # (with --novel-labels, of the rows evaluated: a training row never holds a label the model lacks)
            self.seen.count(meta["seen"] & ~meta["novel"] if "novel" in meta else meta["seen"], meta.get("id"),
                            meta["row"])
        return out, meta

    def _outputs(self, Z: np.ndarray, meta: dict) -> np.ndarray:
        first_row = int(meta["row"][0]) - 1 if len(Z) else 0  # a non-finite output names its row in the table
        if self.trust is not None and self.trust.basis is not None:
            # Out-of-distribution scores of the reference preprocessing's rows, as the model's basis was fitted
            # on, per block of the network's rows: the blocks start at fixed table rows whatever the reader's
            # pieces, so a row's score (its matrix products) does not depend on --chunksize, bit for bit.
            meta["ood_score"], meta["ood_p"] = self._ood_scores(Z, meta)
        features = None if self.transform_once else self.plan.features
        logits = [] if self.keep_first_member or (self.trust is not None and self.trust.wants_logits) else None
        try:
            with self._blas():
                out = self.net_model.predict_output(Z, batch_size=len(Z), features=features, first_row=first_row,
                                                    member_logits=logits)
                own = out  # the model's own probabilities, which a cohort's conformal scores are of
                if self.prevalence is not None:  # before anything decides by them (the sets keep the model's own)
                    out = self.prevalence.apply(out)
                if self.explain is not None and len(Z):
                    # (m, T): a column per regression target (label); the same genes by symbol (top_symbols)
                    meta["top_features"], symbols = self._reasons(Z, out)
                    if symbols is not None:
                        meta["top_symbols"] = symbols
        except DataError as exc:  # the row is named; name the file too
            raise DataError(f"{self.plan.source}: {exc}") from None
        if logits and self.trust is not None and self.trust.wants_logits:  # one block of at most row_block rows
            meta["set"] = self.trust.membership(logits[0], own)
        if self.keep_first_member:
            meta["first_member"] = logits[0][0] if logits else np.zeros((0, self.model.network.n_outputs))
        return out

    def _ood_scores(self, Z: np.ndarray, meta: dict) -> tuple[np.ndarray, np.ndarray]:
        """((m,) out-of-distribution scores, (m,) their p-values) of a block of rows: of Z (m, d) itself when it holds the reference
        preprocessing's rows (one network), else of the reference rows kept beside it (``meta``)."""
        rows = Z if self.transform_once else meta.pop("reference")
        if self.keep_ood_parts:  # (recalibrate: the cohort's rows calibrate the flag, ``ood.recalibrated``)
            basis = self.trust.basis
            meta["ood_parts"] = parts = basis.parts(rows)
            return basis.combine(parts), basis.p_values_of(parts)  # ``score_and_p`` of the parts in hand
        return self.trust.ood_scores(rows)

    def _reasons(self, Z: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(m, T) "GENE:score;..." per row: the K features with the largest integrated-gradients attributions
        toward the predicted class (the model's logit, from the training mean; T = 1), or a regression model's
        K largest by |attribution| of each target's predicted value, signed (T targets), or toward each label
        of a multi-label model the row is predicted positive for ("" for the others; T labels):
        mlpcli.explain. With ``symbol_names``, also (m, T) "SYMBOL;..." of the same genes (else None)."""
        from ..explain.attribution import attribution_chunks, baseline_values, top_cells

        k, steps = self.explain
        regression, multilabel = self.model.task == "regression", self.model.task == "multilabel"
        if regression or multilabel:  # every target's (label's) output, each row
            predicted = np.repeat(np.arange(out.shape[1])[:, None], len(out), axis=1)  # (T, m)
        else:
            predicted = self.decision.classes(self.model.task, out, self.threshold)[None]
        if getattr(self, "_baseline", None) is None:
            b = baseline_values(self.model, "mean")[self.model.preprocessor.kept_index_]  # plan.features' order
            self._baseline = self.pre.transform(b[None])[0] if self.transform_once else b
        reasons, by_symbol = [], []
        for chunk in attribution_chunks(self.model, Z, predicted, baseline=self._baseline, steps=steps,
                                        features=None if self.transform_once else self.plan.features,
                                        transformed=self.transform_once, exact=False):
            cells = [top_cells(values, self.plan.features, k, signed=regression, symbols=self.symbol_names)
                     for values in chunk.values]
            reasons.append(np.column_stack([c for c, _ in cells]))
            if self.symbol_names is not None:
                by_symbol.append(np.column_stack([c for _, c in cells]))
        reasons = np.concatenate(reasons)
        symbols = np.concatenate(by_symbol) if by_symbol else None
        if multilabel:  # a label the row is not predicted to carry has no reasons for it
            reasons[out < self.threshold] = ""
            if symbols is not None:
                symbols[out < self.threshold] = ""
        return reasons, symbols

    def _finish(self) -> None:
        model, plan = self.model, self.plan
        if self.join is not None:
            self.join.finish()  # no sample matched: an error
            self.notes += self.join.notes[self._join_noted:]
            self.warnings += self.join.warnings
        groups = None if self.group_count is None else self.group_count.count
        if self.n_without_group:
            k = self.n_without_group
            self.notes.append(f"{k:,} sample{'s' * (k > 1)} without a value in the patient column "
                              f"{plan.roles.group!r}: each counted as a patient of its own (in the per-patient "
                              "figures, the bootstrap and the shift check), not as one patient")
        # features without a value in any row were imputed in every row: judged as the absent ones, not as shifted
        unmeasured = plan.present & (self.measured == 0) if self.n_missing_values else np.zeros_like(plan.present)
        self.shift = self.stats.report(plan.features, model.preprocessor, ~plan.present | unmeasured, groups)
        message = self.shift.message(self.shift_report_hint)
        far = self.far_values_warning()
        if far is not None:
            self.warnings.append(far)
        empty = self.empty_rows_warning()
        if empty is not None:
            self.warnings.append(empty)
        absent = self.shift.absent_message()
        if absent is not None:
            self.warnings.append(absent)
        far_off = self.shift.far_message()
        if far_off is not None:
            self.warnings.append(far_off)
        zeros = self.shift.zeros_unlike_training()
        k = int(zeros.sum())
        if k and getattr(model.preprocessor.config, "impute", None) is not None:
            names = quoted([plan.features[j] for j in np.flatnonzero(zeros)][:5])
            self.warnings.append(
                f"{k} feature{'s' * (k > 1)} never 0 in training {'are' if k > 1 else 'is'} "
                f"0 in some of this table's rows ({names}{' …' if k > 5 else ''}), and the model filled "
                "missing values in training (--impute): if 0 means 'not detected' here, write those cells as missing "
                "(NA, empty) so that they are filled as in training; a 0 is read as a measured value")
        if message is None:
            checked = self.stats.n  # the rows of known labels with --novel-labels; else every row
            whose = " of known labels" if checked != self.n_rows else ""
            self.notes.append(f"cohort-shift check skipped: {checked} row{'s' * (checked != 1)}{whose} (it needs "
                              f"{SHIFT_MIN_SAMPLES})")
        elif self.shift.shifted:
            if self.prevalence is not None:  # (the check does not know the cohort's mix)
                message += ("; the check compares the features with the training table, whose class mix is not the "
                            "one --prevalence gave: a mix of other classes moves their marker genes by itself, so part "
                            "of this may be the mix")
            self.warnings.append(message)
        else:
            self.notes.append(message)
        trained = (model.split or {}).get("batch_counts_train") or {}
        if self.batch_counts and trained:
            # a batch written 1.0 where training read 1 is that batch, as labels are matched; rows without a batch
            # value are no new site (a note counts them)
            known = {number_key(b) for b in trained}
            without = 0 if self._missing_batch in trained else self.batch_counts.get(self._missing_batch, 0)
            if without:
                self.notes.append(f"{without:,} sample{'s' * (without != 1)} without a value in the batch column "
                                  f"{plan.roles.batch!r}")
            unseen = [(b, k) for b, k in sorted(self.batch_counts.items())
                      if b not in trained and number_key(b) not in known and not (without and b == self._missing_batch)]
            if unseen:
                listed = ", ".join(f"{b!r} ({k} sample{'s' * (k != 1)})" for b, k in unseen[:5])
                sets = (self.trust is not None and self.trust.sets is not None and self.model.task
                        in data.CLASSIFICATION_TASKS)
                cohort = self.model.conformal is not None and self.model.conformal.on_model_proba
                where = ((self.model.conformal.cohort or {}).get("data") or "its recalibration cohort") if cohort else ""
                coverage = (f"; the prediction sets' --coverage holds for samples exchangeable with {where}'s (the "
                            "population they were calibrated on, with `mlpcli recalibrate`)" if cohort else
                            "; the prediction sets' --coverage holds for samples exchangeable with the training ones, "
                            "which a new site's are not (`mlpcli cv --leave-batch-out` measures it at held-out "
                            "batches)")
                self.warnings.append(f"batch{'es' * (len(unseen) > 1)} {listed} not seen in training (trained on "
                                     f"{quoted(sorted(trained), 8)}); batch effects may shift predictions"
                                     + (coverage if sets else ""))
        if self.seen is not None and not self.need_target:  # evaluate says it with the metrics
            note = self.seen.predict_note(self.n_rows)
            if note is not None:
                self.notes.append(note)
        if self.n_missing_values:
            values = "1 missing feature value" if self.n_missing_values == 1 else \
                f"{self.n_missing_values:,} missing feature values"
            self.notes.append(f"{values} imputed with the training "
                              f"{model.preprocessor.config.impute}s")
            unmeasured = never_measured(plan, self.measured, self.n_rows, model.preprocessor.config.impute)
            if unmeasured is not None:
                self.warnings.append(unmeasured)


def _without(plan: ColumnPlan, columns: set) -> ColumnPlan:
    """`plan` for the reader of a table that lacks `columns` (a sample sheet's, looked up by id per piece)."""
    def kept(name: str | None) -> str | None:
        return None if name in columns else name

    r = plan.roles
    roles = data.Roles(target=[t for t in r.target if t not in columns], group=kept(r.group), id=kept(r.id),
                       batch=kept(r.batch), drop=[d for d in r.drop if d not in columns])
    return dataclasses.replace(plan, roles=roles, by=kept(plan.by))


def _empty_target(model: Model, n: int, k: int) -> np.ndarray:
    """y for n rows in the model's encoding, to be filled: (n,) int64 class indices, or (n, k) float64."""
    if model.task in data.CLASSIFICATION_TASKS:
        return np.zeros(n, dtype=np.int64)
    return np.zeros((n, k), dtype=np.float64)


def piece_size(chunksize: int | None, chunk_mb: float) -> PieceSize:
    """--chunksize (rows, an override) or --chunk-mb (the memory budget) as a PieceSize."""
    if chunksize is not None and (isinstance(chunksize, bool) or not isinstance(chunksize, (int, np.integer))
                                  or chunksize < 1):
        raise ConfigError(f"--chunksize must be a positive whole number, got {chunksize!r}")
    if isinstance(chunk_mb, bool) or not isinstance(chunk_mb, (int, float, np.number)) or not chunk_mb > 0 \
            or not math.isfinite(chunk_mb):
        raise ConfigError(f"--chunk-mb must be a positive number of MiB, got {chunk_mb!r}")
    return PieceSize(rows=None if chunksize is None else int(chunksize), nbytes=max(1, int(chunk_mb * (1 << 20))))
