"""The validated Dataset (X, y, groups, batches, ids) from a table and its roles: the id, group and batch columns;
``load_dataset`` / ``read_dataset`` as the commands read a table. The feature matrix and its checks are
``feature_values``'s, the data checksum ``checksum``'s, a subset's rows without a copy ``row_view``'s."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, OptionError
from ..text import count_of, quoted
from ..centred_rows import is_sparse
from .cells import (SPELLING_WORDS, CellPlace, first_row, is_text_dtype, near_spellings, one_number_groups,
                    typed_as_written, visible)
from .conventions import (DECIMAL_ATTR, DEFAULT_BATCH, DEFAULT_GROUPS, DEFAULT_ID, DEFAULT_TARGET, INDEX_ID_ATTR,
                          JOINED_ATTR, SOURCE_ATTR, TASKS)
from .labels import label_key
from .samples import refuse_row_number_join
from .roles import (DROPPED_GROUP_NOTE, NO_GROUP_NOTE, Roles, group_hint, listed_names, missing_batch_names,
                    require_columns, resolve_roles, warn_role_names)
from .targets import read_target
from .checksum import data_checksum
from .feature_values import check_feature_values, check_value_limit, column_ranges, feature_matrix, warn_row_numbers
from .row_view import RowView, sparse_rows

if TYPE_CHECKING:
    from .samples import SampleJoin


@dataclass
class Dataset:
    """Validated arrays for one table.

    X (n, d) float64, or float32 when every value is a float32 number (a float32 parquet file, counts: the
    readers choose, ``float32.feature_dtype``; the network is float32 and everything downstream computes in
    float64 from either, so the numbers and the model are the same, at half the memory); may hold NaN (the
    Preprocessor imputes). Or a scipy.sparse CSR matrix (float32), as an
    .h5ad file's counts come, never densified as a whole (the preprocessing keeps it sparse, training
    densifies one minibatch at a time). y is (n,) int64 indices into `classes` for
    binary/multiclass, (n, k) float64 0/1 for multilabel, (n, k) float64 for regression, None without target.
    """

    X: np.ndarray  # or a RowView of another Dataset's X (subset), or a CSR matrix
    y: np.ndarray | None
    feature_names: list[str]
    task: str | None
    classes: list = field(default_factory=list)  # sorted labels, or target names for multilabel/regression
    groups: np.ndarray | None = None  # (n,) str
    batches: np.ndarray | None = None  # (n,) str
    ids: np.ndarray | None = None  # (n,) str
    target_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    roles: Roles | None = None  # the column names behind groups/batches/ids (for messages and summaries)
    # (d,) missing values per feature column, counted on the whole table when it was read (None: not counted,
    # as in a subset): training without --impute names every such column at once, not a member's share
    missing: np.ndarray | None = None
    source: str | None = None  # the file (or "the DataFrame") the rows were read from, for messages; None: not known
    # (the X they are of, its (n,) uint64 ``row_fingerprints``), once asked for: the copies check and the model's
    # training rows share them; a new X (columns reordered to a model's) has none
    _fingerprints: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def checksum(self) -> str:
        """The provenance checksum (``data_checksum``) of the values, the labels and the names that give them
        their meaning: features, classes, targets."""
        return data_checksum(self.X, self.y, (self.feature_names, self.classes, self.target_names))

    def row_fingerprints(self) -> np.ndarray:
        """(n,) uint64 ``copies.row_fingerprints`` of X's rows over every feature, computed once (X is not changed in
        place once read): the check for copied samples and the training rows a model keeps both need them
        (0.07 s at 8,000 x 5,000)."""
        if self._fingerprints is None or self._fingerprints[0] is not self.X:
            from .copies import row_fingerprints

            self._fingerprints = (self.X, row_fingerprints(self.X))
        return self._fingerprints[1]

    def subset(self, idx) -> "Dataset":
        """Rows `idx` (indices or boolean mask) as a new Dataset; notes and warnings are carried over.
        X is a RowView of this Dataset's rows, not a copy (a sparse X: a CSR copy of the rows, which costs
        their stored values only)."""
        idx = np.asarray(idx)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return Dataset(
            X=sparse_rows(self.X, idx) if is_sparse(self.X) else RowView.of(self.X, idx), y=take(self.y), feature_names=list(self.feature_names), task=self.task,
            classes=list(self.classes), groups=take(self.groups), batches=take(self.batches),
            ids=take(self.ids), target_names=list(self.target_names), notes=list(self.notes),
            warnings=list(self.warnings), roles=self.roles, source=self.source,
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame, roles: Roles, task: str = "auto", classes: Sequence | None = None,
                   features: tuple[list[str], np.ndarray] | None = None) -> "Dataset":
        """Validate a table against its roles and build the arrays.

        `classes` (from a trained model) fixes the label -> index mapping at prediction/evaluation time; a
        label outside it is an error. Classification labels are sorted originals (strings or numbers).
        `features`: (names, X (n, d) float64 or float32, or CSR) read apart from `df` (``TextTable.read_features``, an
        .h5ad file's matrix), which then holds the other columns only; X is used as it is, not copied.
        """
        if task != "auto" and task not in TASKS:
            raise ConfigError(f"--task {task!r} is not one of auto, {', '.join(TASKS)}")
        columns = [str(c) for c in df.columns]
        for flag, names in (("--target", roles.target), ("--group", [roles.group]), ("--id", [roles.id]),
                            ("--batch", [roles.batch]), ("--drop", roles.drop)):
            require_columns([n for n in names if n is not None], columns, flag)
        if len(df) == 0:
            raise DataError("the table has no rows")
        non_features = set(roles.columns())
        feature_names = [c for c in columns if c not in non_features] if features is None else list(features[0])
        if not feature_names:
            source = f"{df.attrs[SOURCE_ATTR]}: " if SOURCE_ATTR in df.attrs else ""  # (the file, when read from one)
            raise DataError(f"{source}no feature columns left after removing the target, group, id, batch and --drop "
                            f"columns ({', '.join(map(repr, columns))})")

        notes: list[str] = []
        warn: list[str] = []
        if features is None:
            X = feature_matrix(df, feature_names, notes, roles.id,
                               {"--group": roles.group, "--batch": roles.batch, "--id": roles.id})
        else:
            X = features[1]
        place = CellPlace(df, roles.id)
        ranges = None if is_sparse(X) or not X.size else column_ranges(X)
        missing = check_feature_values(X, feature_names, notes, place, ranges)
        if classes is None:  # training: a model's features are what it was trained on
            numbered = warn_row_numbers(X, feature_names, ranges, warn) if ranges is not None else []
            warn_role_names([n for n in feature_names if n not in numbered], warn)
        ids = _id_column(df, roles.id)
        if is_sparse(X) or X.dtype != np.float32:  # float32 values, refused when infinite, are within float32's range
            check_value_limit(X, feature_names, ids, "feature column", place)
        groups = _label_column(df, roles.group, "--group", roles.id)
        if groups is not None and classes is None:
            _warn_near_groups(groups, roles.group, warn)
        batches = _batch_column(df, roles.batch, warn)

        y, task_out, class_list = None, None, []
        if roles.target:
            y, task_out, class_list = read_target(df, list(roles.target), task, classes, notes, warn, roles.id)
            if task_out == "regression":
                check_value_limit(y, list(roles.target), ids, "target column")
        if groups is not None:
            n_groups = len(np.unique(groups))
            samples = "sample" if len(df) == n_groups else "samples"  # "1 sample each" where each patient has one
            notes.append(f"groups: {n_groups:,} in {roles.group!r} ({_mean_count(len(df), n_groups)} {samples} each on "
                         "average)")
        notes.append(f"features: {count_of(len(feature_names), 'numeric column')}, {count_of(len(df), 'sample')}")
        return cls(
            X=X, y=y, feature_names=feature_names, task=task_out, classes=class_list, groups=groups,
            batches=batches, ids=ids, target_names=list(roles.target), notes=notes, warnings=warn, roles=roles,
            missing=missing, source=df.attrs.get(SOURCE_ATTR),
        )


def _id_column(df: pd.DataFrame, name: str | None) -> np.ndarray | None:
    if name is None:
        return None
    col = df[name]
    empty = np.flatnonzero(col.isna().to_numpy())
    if empty.size:  # named as predict names it: the file and the first row
        more = f" (and {empty.size - 1} more row{'s' * (empty.size > 2)})" if empty.size > 1 else ""
        raise DataError(f"{CellPlace(df).source}the id column {name!r} is empty at row {empty[0] + 1}{more}; every "
                        "sample needs an id (or pass --id to name another column)")
    ids = np.asarray([label_key(v) for v in col], dtype=object)
    repeats = [(i, k) for i, k in Counter(ids).items() if k > 1]
    if repeats:
        listed = ", ".join(f"{i!r} (×{k})" for i, k in repeats[:5])
        raise DataError(f"{CellPlace(df).source}duplicate sample ids in --id column {name!r}: {listed}; ids must be "
                        f"unique{missing_id_hint([i for i, _ in repeats])}")
    return ids


def missing_id_hint(ids: Iterable[str]) -> str:
    """" ('NA' is read as a sample id, ...)" when a repeated id is a missing-value token (R writes NA for a
    missing id): ids are read as written, only an empty cell being a missing id; else ""."""
    from .io import NA_TOKENS

    tokens = [i for i in ids if i in set(NA_TOKENS)]
    if not tokens:
        return ""
    return (f" ({tokens[0]!r} is read as a sample id, as written: if it marks a missing id, give each sample its "
            "id)")


def _label_column(df: pd.DataFrame, name: str | None, flag: str, id_column: str | None = None) -> np.ndarray | None:
    """Group labels as strings; a sample without a group could land on either side, so missing is an error."""
    if name is None:
        return None
    col = df[name]
    if col.isna().any():
        where = CellPlace(df, id_column, name)
        n_missing = int(col.isna().sum())
        raise DataError(f"{where.source}{flag} column {name!r} has {count_of(n_missing, 'missing value')}; "
                        f"{first_row(df, col.isna().to_numpy(), id_column, where)}; fill "
                        f"{'it' if n_missing == 1 else 'them'} or use --no-group")
    return np.asarray([label_key(v) for v in col], dtype=object)


def _batch_column(df: pd.DataFrame, name: str | None, warn: list[str]) -> np.ndarray | None:
    """Batch labels as strings; missing ones become one batch, "NA", with a warning: a name no batch has, so that
    a batch called "NA" (text in a parquet column, where only nulls are missing) is not merged with the rows
    without a batch (``--leave-batch-out`` would hold the two sites out as one)."""
    if name is None:
        return None
    col = df[name]
    missing = col.isna().to_numpy()
    labels = np.asarray([None if m else label_key(v) for v, m in zip(col, missing)], dtype=object)
    if missing.any():
        taken = set(labels[~missing].tolist())
        label = next(c for c in missing_batch_names() if c not in taken)
        k = int(missing.sum())
        also = f" (a batch is named {'NA'!r} already)" if label != "NA" else ""
        warn.append(f"--batch column {name!r} has {count_of(k, 'missing value')}; "
                    f"{'they are' if k != 1 else 'it is'} counted as batch {label!r}{also}")
        labels[missing] = label
    near = one_number_groups(str(b) for b in pd.unique(labels))  # '1' and '01': one site written two ways?
    if near:
        shown = "; ".join(", ".join(map(visible, group)) for group in near[:3])
        warn.append(f"--batch column {name!r} holds batches that differ only in how one number is written: {shown}; "
                    "they count as different batches (held out apart by cv --leave-batch-out, reported apart by "
                    "evaluate --by) — write each one way if they are one")
    return labels


def _warn_near_groups(groups: np.ndarray, name: str, warn: list[str]) -> None:
    """A warning when patient (group) ids differ only in letter case, spaces or Unicode form ('P01' and 'P01 ',
    as a spreadsheet keeps a stray space; 'Zoë' typed and pasted), or read as one number ('7', '7.0', '007'): read as
    written, they are two patients, whose samples the split may then put on both sides — the leak the grouping is
    there to prevent (random labels of 60 patients, each sample's id written '7' or '7.0': out-of-fold balanced
    accuracy 0.76 for 0.54)."""
    unique = pd.unique(groups)
    for near, how in ((near_spellings(unique), SPELLING_WORDS),
                      # '7', '7.0' and '007': one number written three ways, as a spreadsheet or a join mixes them
                      (one_number_groups(str(g) for g in unique), "how one number is written")):
        if near:
            shown = "; ".join(", ".join(map(visible, group)) for group in near[:3])
            warn.append(f"--group {name!r} holds ids that differ only in {how}: {shown}"
                        f"{f' and {len(near) - 3} more' if len(near) > 3 else ''}; they are split as different "
                        "patients, so one patient's samples can be on both sides of a split — write each id one way "
                        "if they are one")


def _mean_count(total: int, parts: int) -> str:
    """total / parts as a count is written: 5,000 (not 5000.0), 2.5."""
    return f"{total // parts:,}" if total % parts == 0 else f"{total / parts:,.1f}"


def load_dataset(path, *, positive: str | None = None, **kwargs) -> tuple["Dataset", list[str]]:
    """Read and validate a training table (``read_dataset``); ``positive``: the class of a binary target
    that positive-class metrics, ``--threshold`` and ``--pos-weight`` refer to (``with_positive``).

    A labelled table without a patient column is a warning, not a note: if several samples come from one
    patient, rows of a patient on both sides of every split make validation optimistic (on the sample
    data, balanced accuracy 0.76 -> 0.94 when the grouping is lost)."""
    ds, notes = read_dataset(path, **kwargs)
    ungrouped = [n for n in notes if n.startswith(NO_GROUP_NOTE) or n.startswith(DROPPED_GROUP_NOTE)]
    if ds.y is not None and ungrouped:
        notes = [n for n in notes if n not in ungrouped]
        dropped = [g for g in DEFAULT_GROUPS if ds.roles is not None and g in ds.roles.drop]
        why = (f"{quoted(dropped)} dropped (--drop)" if dropped else
               f"no {' or '.join(map(repr, DEFAULT_GROUPS))} column")
        calibrated = "" if ds.task == "regression" else ", and the probabilities calibrated on it overconfident"
        # an .h5ad file's obs column named like a patient column ('donor', 'Patient'): what --group likely means
        like = ds.roles.group_like if ds.roles is not None else []
        fix = (f"pass {group_hint(like)}, or --no-group to confirm they are independent" if like else
               "pass --group COLUMN (or --no-group to confirm they are independent)")
        ds.warnings.append(f"{why}: samples are treated as independent; "
                           f"if several come from one patient, validation is optimistic{calibrated} — {fix}"
                           f"{replicate_ids_hint(ds.ids)}")
    ds = with_positive(ds, positive)
    common = common_positive_note(ds) if positive is None else None
    return ds, notes + ([common] if common else [])


# A sample id ending in a replicate's mark after a separator: "_R2", "-rep1", ".TR3", " replicate 2", "_A", "_2"
# (technical replicates of one sample, which a lab names after it); what is left is the sample's stem
_REPLICATE_SUFFIX = re.compile(r"^(.+?)[ _.\-]+(?:(?:r|rep|replicate|tr|tech|techrep|run|inj|injection)[ _.\-]?\d{1,2}"
                               r"|[a-d]|\d{1,2})$", re.IGNORECASE)


# The stems look like replicated samples when they hold 2-6 ids each (the median) and none holds more than
# REPLICATE_STEM_SHARE of the ids (or 6): plain numbered ids ("cell_1" ... "cell_40") make one stem of all of them
REPLICATE_STEM_SHARE = 0.1


def replicate_ids_hint(ids) -> str:
    """For the warning of a table without a patient column: ids that look like replicates of fewer samples
    ("PT000_R1", "PT000_R2": a stem, a separator and a replicate's mark), when at least a tenth of the samples share
    a stem with another and the stems look like samples (``REPLICATE_STEM_SHARE``); "" otherwise. Replicates of one
    sample on both sides of a split read balanced accuracy 0.959 where grouping them gave 0.646."""
    if ids is None or len(ids) < 4:
        return ""
    texts = [str(v).strip() for v in ids]
    stems = []
    for v in texts:
        m = _REPLICATE_SUFFIX.match(v)
        stems.append(None if m is None else m.group(1))
    counts = Counter(s for s in stems if s is not None)
    shared = [(v, s) for v, s in zip(texts, stems) if s is not None and counts[s] > 1]
    sizes = [c for c in counts.values() if c > 1]
    if (len(shared) < 0.1 * len(texts) or len(sizes) < 2 or not 2 <= float(np.median(sizes)) <= 6
            or max(sizes) > max(6, REPLICATE_STEM_SHARE * len(texts))):
        return ""
    first = next(s for _, s in shared)
    examples = [v for v, s in shared if s == first][:2]
    return (f"; the ids look like replicates of fewer samples ({len(shared):,} of {len(texts):,} share a stem with "
            f"another, e.g. {', '.join(map(repr, examples))} of {first!r}): a column of their stems as --group keeps "
            "each sample's replicates on one side")


# The other class's share below which a default positive class that is the common one is said (``common_positive_note``)
RARE_OTHER_SHARE = 0.2


def common_positive_note(ds: "Dataset") -> str | None:
    """A note when a binary target's default positive class (the one that sorts last) is the common one and the
    other is rare: 36 cases among 600 labelled case/control made 'control' positive, and the headline precision
    0.998, F1 0.952 and AP 0.999 described the controls. None otherwise."""
    if ds.task != "binary" or ds.y is None or len(ds.y) == 0:
        return None
    share = float(np.mean(np.asarray(ds.y).reshape(-1) == 1))
    if share <= 1 - RARE_OTHER_SHARE:
        return None
    return (f"positive class {str(ds.classes[1])!r} (it sorts last) is the common one ({share:.0%} of the samples): "
            f"precision, recall, F1, average precision, --threshold and --pos-weight describe it; --positive "
            f"{shlex.quote(str(ds.classes[0]))} to make the rare class {str(ds.classes[0])!r} positive")


def with_positive(ds: "Dataset", positive: str | None, flag: str = "--positive") -> "Dataset":
    """``ds`` with the binary class ``positive`` encoded as 1 (the second of ``classes``), in place.

    By default the class that sorts last is positive; with labels like HER2 / other that is the wrong
    one, and precision, recall, F1, AP, ``--threshold`` and ``--pos-weight`` would describe "other"."""
    if positive is None:
        return ds
    if ds.task != "binary":
        raise OptionError(f"{flag}: names the positive class of a binary target, but the target is {ds.task}"
                        + (f" ({len(ds.classes)} classes)" if ds.task == "multiclass" else ""))
    names = [str(c) for c in ds.classes]
    if str(positive) not in names:
        raise DataError(f"{flag}: {positive!r} is not a class of the target; its classes are {quoted(names)}")
    if names.index(str(positive)) == 0:
        ds.y = 1 - ds.y
        ds.classes = [ds.classes[1], ds.classes[0]]
    return ds


def read_dataset(path, *, target=DEFAULT_TARGET, group: str | None = None, no_group: bool = False,
                 id: str | None = None, batch: str | None = None, drop: Sequence[str] = (),  # noqa: A002
                 task: str = "auto", features_in_rows: bool = False, stdin=None, sep: str | None = None,
                 decimal: str | None = None, samples: str | None = None, layer: str | None = None,
                 raw: bool = False, var_names: str | None = None,
                 classes: Sequence | None = None, feature_types: Sequence[str] = ()) -> tuple["Dataset", list[str]]:
    """Read and validate a training table; returns the dataset and the notes on how it was read and the
    roles picked up.

    A text or parquet table (the usual case) is read with its roles resolved from the header first, so that
    the feature columns go straight into one matrix (``TextTable.read_features`` in pieces, predict's reader;
    ``ParquetTable.read_features`` in column groups): reading then peaks near one copy of the data instead
    of pandas' frame plus the matrix made from it. The matrix is float32 when every value is a float32
    number (a float32 parquet file, counts), float64 otherwise (``float32.feature_dtype``).

    `samples`: a sample sheet joined to the table on the sample id (``data.samples``): roles may come from
    it, features never; rows keep the table's order, those without a row in the sheet are left out.

    An .h5ad file (``data.h5ad``): roles from its obs columns, features from .X, a `layer` or .raw.X
    (`raw`), named by var_names or the var column `var_names`; a sparse matrix stays sparse (CSR float32).
    A directory (``data.tenx``): 10x Genomics output, with `samples` (required) giving the labels per barcode;
    the genes named by their ids or (`var_names` "gene_symbols") their symbols, kept sparse; `feature_types`:
    the 10x feature types to read (default: Gene Expression alone when the directory has it).
    `classes`: a trained model's labels (a validation table is encoded as its training table).

    `path` may be a pandas DataFrame (a notebook's table): read as a file holding it would be, the roles found
    by name; sample ids from its index when that is named or text (``user_frame``); the options that say how
    to read a file (sep, decimal, features_in_rows, layer, ...) are errors then. The caller's frame is not changed."""
    from .sources import check_table_argument

    check_table_argument(path)
    from . import geo, h5ad, tenx
    from .feature_rows import raise_annotation_columns
    from .header import UNNAMED
    from .io import TextTable, read_table_with_notes
    from .parquet import ParquetTable
    from .sources import check_text_options, table_source
    from .samples import SampleJoin, read_sample_sheet

    roles_kw = dict(target=target, group=group, no_group=no_group, id=id, batch=batch, drop=drop)
    if isinstance(path, pd.DataFrame):
        _check_frame_options(features_in_rows=features_in_rows, sep=sep, decimal=decimal, layer=layer, raw=raw,
                             var_names=var_names, feature_types=feature_types)
        frame = user_frame(path, id)
        roles_kw["id"] = frame_id(frame, id)
        sheet = read_sample_sheet(samples, id=id) if samples is not None else None
        join, roles, notes = _joined_roles(sheet, FRAME_SOURCE, list(frame.columns), roles_kw, False)
        if join is not None:
            frame, _ = join.apply(frame)
            notes += join.notes
            frame.attrs[JOINED_ATTR] = {c: sheet.said for c in join.joined}
        ds = Dataset.from_frame(frame, roles, task=task, classes=classes)
        ds.warnings += [] if join is None else join.warnings
        if no_group:
            ds.warnings += repeated_patients_warning(frame, [g for g in DEFAULT_GROUPS if g in roles.drop])
        return ds, notes
    src = table_source(path, stdin)
    check_text_options(src.name, src.kind, sep, decimal)
    if src.kind == "10x":
        tenx.check_options(src.name, layer, raw, features_in_rows)
        tenx.check_directory(src.name)
        if samples is None:
            raise ConfigError(f"{src.name} is a 10x Genomics directory (counts and barcodes, no annotations): give "
                              "each barcode's label in a sample sheet, --samples FILE (its id column holds the "
                              "barcodes)")
        sheet = read_sample_sheet(samples, id=id)
        return tenx.load_dataset(src.name, sheet, target=target, group=group, no_group=no_group, batch=batch,
                                 drop=drop, task=task, classes=classes, var_names=var_names,
                                 feature_types=feature_types)
    if feature_types:
        raise OptionError(f"--feature-types: chooses the feature types of a 10x Genomics directory; {src.name} is "
                          "not one (leave it out)")
    h5ad.check_options(path, layer, raw, var_names)
    if src.kind == "h5ad":
        if features_in_rows:
            raise OptionError("--features-in-rows: an .h5ad file is cells x genes by definition; leave it out")
        sheet = read_sample_sheet(samples, id=id) if samples is not None else None  # small: fail before the file
        return h5ad.load_dataset(src.name, **roles_kw, task=task, classes=classes, layer=layer, raw=raw,
                                 var_names=var_names, sheet=sheet)
    sheet = read_sample_sheet(samples, id=id) if samples is not None else None  # small: fail before the table
    series = src if geo.is_series_matrix(src) else None  # (standard input and pipes too: src holds their bytes)
    geo_notes: list[str] = []
    if series is not None:  # a GEO series matrix: a features x samples table and the samples' annotations
        features_in_rows = True
        sheet, geo_notes = geo.annotations_or(series, sheet, id=id)

    def joined_roles(columns: list[str]) -> tuple[SampleJoin | None, Roles, list[str]]:
        return _joined_roles(sheet, src.name, columns, roles_kw, features_in_rows)

    table = None
    if src.kind == "text" and not features_in_rows:
        table = TextTable.open(src, sep=sep, decimal=decimal)
    elif src.kind == "parquet" and not features_in_rows:
        table = ParquetTable.open(src)  # None: a file best read whole (a stored index)
    if table is not None:
        named = [n for n in table.names if not n.startswith(UNNAMED)]  # not the stand-ins of empty header cells
        join, roles, notes = joined_roles(named)
        if table.row_names and DEFAULT_ID not in roles.columns():  # row names, but --id names another column
            roles = replace(roles, drop=[*roles.drop, DEFAULT_ID])
            notes.append(f"ignored the unnamed first column (row names) as --id is {roles.id!r}")
        features = [n for n in named if n not in set(roles.columns())]
        # ids, groups, batches and labels as written (007 stays 007, and the labels 1 and 01 two classes);
        # a target is then typed as pandas would type it where that loses nothing (``typed_as_written``)
        # with --no-group, the patient column it set aside is read too (a text column): its repeats are a warning
        unused_group = [g for g in DEFAULT_GROUPS if no_group and g in named and g in roles.drop]
        text = [c for c in dict.fromkeys([*([join.data_id] if join is not None else []), roles.id, roles.group,
                                          roles.batch, *roles.target, *unused_group]) if c is not None and c in named]
        # ids, groups and batches as written, as in a parquet file: only an empty cell is missing (a sample, patient
        # or site named NA is one); a target's NA is a missing label (``io.written_columns``)
        ids = [c for c in text if c not in set(roles.target)]
        read = table.read_features(features, text=text, ids=ids) if features else None
        if read is not None:
            frame, X = read
            frame = _typed_targets(frame, roles.target, table)
            if join is not None:
                if table.row_names and DEFAULT_ID in frame.columns:
                    refuse_row_number_join(frame[DEFAULT_ID], join, src.name)
                frame, keep = join.apply(frame)
                X = _keep_rows(X, keep)
                notes += join.notes
                frame.attrs[JOINED_ATTR] = {c: sheet.said for c in join.joined}
            if join is None:  # a target cell that does not fit names the file (with a sheet, it is the sheet's)
                frame.attrs.setdefault(SOURCE_ATTR, src.name)
            ds = Dataset.from_frame(frame, roles, task=task, classes=classes, features=(features, X))
            ds.warnings += repeated_patients_warning(frame, unused_group) + getattr(table, "warnings", [])
            ds.warnings += [] if join is None else join.warnings
            return ds, table.notes + notes
        frame = _typed_targets(table.read_frame(text=text, ids=ids), roles.target, table)  # a feature column holds
        notes = table.notes + notes  # text: the whole frame names it
    else:  # the row layout (its rows that may take a role read as written), or a parquet file's stored index
        text = [c for c in [*listed_names(target), group, id, batch, DEFAULT_ID, *DEFAULT_GROUPS, DEFAULT_BATCH] if c]
        # (the Source: a pipe or standard input was read into it, and cannot be read again)
        frame, read_notes = read_table_with_notes(src, features_in_rows, sep=sep, decimal=decimal, text=text)
        raise_annotation_columns(frame)  # no model here to tell a samples x features table given transposed
        join, roles, notes = joined_roles(list(frame.columns))
        notes = read_notes + geo_notes + notes
    if join is not None:
        if table is not None and table.row_names and DEFAULT_ID in frame.columns:
            refuse_row_number_join(frame[DEFAULT_ID], join, src.name)
        frame, _ = join.apply(frame)
        notes += join.notes
        frame.attrs[JOINED_ATTR] = {c: sheet.said for c in join.joined}
    ds = Dataset.from_frame(frame, roles, task=task, classes=classes)
    ds.warnings += getattr(table, "warnings", [])  # a text table read whole: its reading's warnings
    ds.warnings += [] if join is None else join.warnings
    if no_group:
        ds.warnings += repeated_patients_warning(frame, [g for g in DEFAULT_GROUPS if g in roles.drop])
    return ds, notes


def _joined_roles(sheet, source: str, columns: list[str], roles_kw: dict,
                  features_in_rows: bool) -> tuple["SampleJoin | None", Roles, list[str]]:
    """Roles (``roles_kw``: resolve_roles's options) resolved on a table's columns, and on the sample sheet's
    when there is one (then with the SampleJoin that adds its columns to the table's rows)."""
    from .samples import SampleJoin

    if sheet is None:
        return None, *resolve_roles(columns, **roles_kw)
    join = SampleJoin(sheet, source, columns, features_in_rows=features_in_rows)
    join.require("--target", listed_names(roles_kw["target"]))
    join.require("--group", [roles_kw["group"]])
    join.require("--batch", [roles_kw["batch"]])
    roles, notes = resolve_roles(join.columns, **{**roles_kw, "id": join.data_id})
    join.select([*roles.target, roles.group, roles.batch], roles.drop)
    return join, roles, notes


FRAME_SOURCE = "the DataFrame"  # a pandas DataFrame given instead of a file, in messages


def _check_frame_options(**options) -> None:
    """The reading options that mean nothing for a DataFrame (they say how to read a file) are errors when set."""
    given = [(name, value) for name, value in options.items() if value not in (None, False, (), [], "auto")]
    if given:
        name, value = given[0]
        advice = " (pass df.T: a DataFrame is read samples x features)" if name == "features_in_rows" else ""
        raise OptionError(f"{name}={value!r} says how to read a file; a DataFrame is already read — leave it "
                          f"out{advice}")


def user_frame(df: pd.DataFrame, id: str | None = None) -> pd.DataFrame:  # noqa: A002
    """A caller's DataFrame as the readers give a table: column names as text; sample ids kept from the index
    when it holds them (a named index, or one of text: ``pd.read_csv(..., index_col=0)``) as a column named
    after it (unnamed: ``sample_id``), unless --id names another column. An integer index that is not named
    is a row position (a RangeIndex, or what is left of one after filtering rows): not ids. The caller's
    frame is not changed."""
    frame = df.copy(deep=False)
    frame.attrs = {}
    index = df.index
    takes_index = (not isinstance(index, pd.MultiIndex)
                   and (index.name is not None or not pd.api.types.is_integer_dtype(index.dtype)))
    if takes_index:
        name = DEFAULT_ID if index.name is None else str(index.name)
        if (id is None or id == name) and name not in {str(c) for c in df.columns}:
            # by concat, not reset_index: inserting a column into a frame of many blocks (a frame built column by
            # column; pandas 3's read_csv) is a PerformanceWarning the caller did not ask for
            ids = pd.DataFrame({name: index.to_numpy()})
            frame = pd.concat([ids, frame.set_axis(pd.RangeIndex(len(frame)), axis=0)], axis=1)
            frame.attrs = {INDEX_ID_ATTR: name}  # the id role's column (a named index was trained on as a gene)
    frame.index = pd.RangeIndex(len(frame))
    frame.columns = [str(c) for c in frame.columns]
    twice = [name for name, k in Counter(frame.columns).items() if k > 1]
    if twice:
        raise DataError(f"{FRAME_SOURCE} has {len(twice)} column name(s) more than once: {quoted(twice, 5)}; "
                        "give each column one name")
    frame.attrs[SOURCE_ATTR] = FRAME_SOURCE
    return frame


def frame_id(frame: pd.DataFrame, id: str | None) -> str | None:  # noqa: A002
    """The id column of a frame from ``user_frame``: ``id`` when given, else the column its index became."""
    return id if id is not None else frame.attrs.get(INDEX_ID_ATTR)


def repeated_patients_warning(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """With --no-group: a warning when a patient column it set aside (``columns``, DEFAULT_GROUPS present in
    ``frame``) repeats a value, i.e. several samples come from one patient — then every split puts some of a
    patient's samples on both sides, and the held-out metrics and the calibration on them are optimistic; --no-group
    is for samples that are independent."""
    for name in columns:
        if name not in frame.columns:
            continue
        values = frame[name].dropna()
        patients = values.nunique()
        if len(values) and patients < len(values):
            return [f"--no-group, but {name!r} repeats: {len(values):,} samples of {count_of(patients, 'patient')} "
                    f"({len(values) / patients:,.1f} each): splits put some of a patient's samples on both sides, so "
                    f"the held-out metrics are optimistic and the probabilities calibrated on them overconfident — "
                    f"leave out --no-group to split by {name!r} (--group COLUMN for another)"]
    return []


def _typed_targets(frame: pd.DataFrame, targets: Sequence[str], table) -> pd.DataFrame:
    """``frame`` with its target columns, read as text from a text table, typed as written (a parquet file's
    columns keep the types it stores)."""
    dialect = getattr(table, "dialect", None)
    if dialect is None:
        return frame
    decimal = dialect.decimal
    for t in targets:
        if t in frame.columns and is_text_dtype(frame[t].dtype):
            frame[t] = typed_as_written(frame[t], decimal)
    frame.attrs.setdefault(DECIMAL_ATTR, decimal)  # labels kept as text are judged in it ('1,0' is 1 here)
    return frame


def _keep_rows(X: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """Rows `keep` (ascending indices) of X (n, d), moved to the front in place (a few MiB at a time) so that
    leaving out rows never holds a second copy of the matrix; returns the view X[:len(keep)]."""
    if keep is None:
        return X
    step = max(1, (16 << 20) // max(1, X.shape[1] * X.itemsize))
    for s in range(0, len(keep), step):
        rows = keep[s:s + step]
        X[s:s + len(rows)] = X[rows]  # rows >= their destinations, and later blocks read rows beyond this one
    return X[:len(keep)]


def align_features(ds: "Dataset", feature_names: Sequence[str], source: str) -> "Dataset":
    """``ds`` with its feature columns reordered to ``feature_names`` (in place), matched by the one rule of
    every reader (``data.names``: a column whose name differs only in letter case, spaces or an Ensembl
    version suffix matches, and a note in ``ds.notes`` starting with ``source`` says so); a missing one is a
    DataError naming ``source`` and the first few missing names, an ambiguous one names the columns."""
    from .names import match_names, name_key, species_warning

    if list(ds.feature_names) == list(feature_names):
        return ds
    match = match_names(list(feature_names), ds.feature_names, source=source)
    missing = match.missing(feature_names)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        raise DataError(f"{source} lacks {len(missing)} feature column(s) of the training table: {shown}")
    index = {n: j for j, n in enumerate(ds.feature_names)}
    order = np.array([index[match.columns[n]] for n in feature_names], dtype=np.int64)
    ds.X = ds.X[:, order]
    if ds.missing is not None:  # counted per column of the table: it follows the columns it counts
        ds.missing = ds.missing[order]
    ds.feature_names = list(feature_names)
    species = species_warning(match, len(feature_names), "of the training table's features")
    if species:  # (as predict warns: the validation rows choose the epoch and fit the temperature)
        ds.warnings.append(f"{source}: {species}")
    elif match.relaxed:
        ds.notes.append(f"{source}: {match.note('features', 'training ← this table')}")
    # a column spelt like a feature the table has exactly (tp53 beside TP53): the exact one is used, as predict says
    exact = {name_key(n): n for n in feature_names if match.columns.get(n) == n}
    used = set(match.columns.values())
    twins = sorted((c, exact[name_key(c)]) for c in index if c not in used and name_key(c) in exact)
    if twins:
        shown = ", ".join(f"{c!r} beside {f!r}" for c, f in twins[:3])
        ds.warnings.append(f"{source}: {len(twins)} column{'s' * (len(twins) > 1)} spelt like a feature it also has "
                           f"exactly ({shown}): the exact one is used, the other ignored")
    return ds
