"""Matching a table's columns to a model: roles, features by name, fills for missing features, and the
model's fitted preprocessing applied to raw values."""

from __future__ import annotations

import copy
import difflib
import os
import math
import re
import shlex
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .. import data
from ..data.conventions import DECIMAL_ATTR
from ..data.cells import decimal_advice, first_non_number
from ..text import agreeing, count_of, counted
from ..data.limits import first_beyond_limit, value_limit_message
from ..data.names import comment_line_hint, count_matches, id_kind, match_names, name_key, species_warning
from ..errors import ConfigError, DataError, OptionError
from ..model_io import Model
from ..data.roles import listed_names, missing_columns_error
from ..text import quoted


# The reader's remedy for a target column the table lacks is evaluate's; a command that reads labels for another
# purpose (gradcheck, recalibrate, explain) puts its own in its place (``with_advice``)
TARGET_ADVICE = ("; evaluation needs the true labels — name the column with --target, or use `mlpcli predict` for "
                 "unlabelled data")


def with_advice(exc: DataError, replacements: dict[str, str]) -> DataError:
    """``exc`` with the reader's words ``replacements`` maps (a remedy written for evaluate) in a command's own."""
    text = str(exc)
    for said, instead in replacements.items():
        text = text.replace(said, instead)
    return exc if text == str(exc) else DataError(text)


@dataclass
class RoleFlags:
    """Column-role overrides (the flags shared with `train`); None means the model's own roles."""

    target: str | Sequence[str] | None = None
    group: str | None = None
    no_group: bool = False
    id: str | None = None
    batch: str | None = None
    drop: str | Sequence[str] = ()
    features_in_rows: bool = False
    sep: str | None = None  # field separator of a text table; None or "auto": detected (data.sniff_dialect)
    decimal: str | None = None  # decimal mark; None or "auto": detected
    samples: str | None = None  # a sample sheet joined on the id (data.samples): ids, batch, group, target
    layer: str | None = None  # .h5ad input: the layer ("X": .X); None: the model's training choice
    raw: bool = False  # .h5ad input: .raw.X (False: the model's training choice)
    var_names: str | None = None  # .h5ad input: the var column of gene names ("var_names": the index); None: the model's


# ── matching a table's columns to the model ──────────────────────────────────────────────────────────────

# --fill-missing mean fills at most this share of the features the network uses, unless --max-missing
# raises it: a table lacking more is almost always the wrong table, a wrong layout or other gene
# identifiers, and its predictions would rest on too few of the model's features.
DEFAULT_MAX_MISSING = 0.10
_FIRST_CELLS = 1000  # cells of a table's first column inspected for the model's feature names


@dataclass
class ColumnPlan:
    """How one table's columns map onto a model: found once from the header, applied to every chunk."""

    source: str
    roles: data.Roles  # target (present target columns), group, id, batch of this table
    features: list[str]  # the features the network uses (the preprocessing's kept ones), model order
    present: np.ndarray  # (d_kept,) bool: found in the table
    fill_values: np.ndarray  # (d_kept,) raw value used where a feature is absent (NaN where present)
    by: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    matched: list[str] | None = None  # (d_kept,) the table's column of each feature (None: named as the model's)
    max_missing: float | None = None  # --max-missing as given (None: DEFAULT_MAX_MISSING)

    @property
    def present_names(self) -> list[str]:
        """The table's columns holding the features found, in the model's order."""
        return [c for c, p in zip(self.matched or self.features, self.present) if p]

    def column_name(self, j: int) -> str:
        """The name of feature `j` (of `features`) for messages: the table's column when it has one."""
        return self.matched[j] if self.matched is not None and self.present[j] else self.features[j]

    @property
    def label_columns(self) -> list[str]:
        """id, group, batch, --by and target columns: read as text (ids like 007 stay 007, the labels 1 and
        01 stay two; the target is then typed as written: ``data.typed_as_written``)."""
        features = set(self.present_names)  # --by may name a feature
        cols = [self.roles.id, self.roles.group, self.roles.batch, self.by, *self.roles.target]
        return [c for c in dict.fromkeys(cols) if c is not None and c not in features]

    def usecols(self) -> list[str]:
        return list(dict.fromkeys([*self.present_names, *self.label_columns, *self.roles.target]))

    def dtypes(self) -> dict:
        """Text for the label columns; features are left to pandas' inference (numbers parse as int64 or
        float64 as fast as with a declared dtype, and a cell that is not a number leaves its column as text
        instead of aborting the parse, so the error can name the column and row)."""
        return {c: str for c in self.label_columns}


def training_means(model: Model) -> np.ndarray:
    """Raw values (d_kept,) that the fitted preprocessing maps to the training means of its outputs."""
    pre = model.preprocessor
    on_scale = pre.unscale(pre.train_mean_)  # the mean after log1p / imputation
    return np.expm1(on_scale) if pre.config.log1p else on_scale


def plan_columns(model: Model, columns: Sequence[str], roles: RoleFlags | None = None, *, need_target: bool = False,
                 by: str | None = None, fill_missing: str | None = None, source: str = "the table",
                 sheet_columns: Sequence[str] = (), max_missing: float | None = None,
                 first_cells: Callable[[int], Sequence[str]] | None = None, can_fill: bool = True,
                 ids_written: bool = False, feature_columns: Sequence[str] = ()) -> ColumnPlan:
    """Match a table's header to the model: roles (the model's, unless overridden), features by name.

    Features match a column of the same name, or failing that one whose name differs only in letter case,
    surrounding spaces or an Ensembl version suffix (``data.names``; a note says how many and shows some).
    Extra columns are ignored (one note); absent features the network uses are an error naming the first
    few, unless `fill_missing="mean"` fills them with the training mean (a warning) — at most a share
    `max_missing` of them (default DEFAULT_MAX_MISSING, 10 %; more is an error naming the option). With
    `need_target` the target column(s) must be present; otherwise they are ignored. `sheet_columns`: those
    of `columns` that come from a sample sheet (``data.samples``): they may take roles, are never features,
    and are not listed as ignored (the join notes them). `first_cells(k)`: up to k cells of the table's
    first column, looked at when most features are absent, to recognise a table read in the wrong layout
    (features in rows without --features-in-rows, or the reverse). `can_fill`: whether the command has
    --fill-missing (gradcheck does not: its error for absent features does not offer it). `ids_written`: the
    caller writes a row per sample under its id (predict), so a table without an id column but with columns
    it ignores is told how to name one (--id). `feature_columns`: those of `columns` the table's reader knows to be
    features (an .h5ad file's genes), which are not offered as --by's columns when it names none of the table's.
    """
    if fill_missing not in (None, "mean"):
        raise ConfigError(f"--fill-missing {fill_missing!r}: the only choice is 'mean'")
    if max_missing is not None:
        if fill_missing != "mean" and model.preprocessor.config.impute is None:
            raise OptionError("--max-missing limits what --fill-missing mean fills (and what a model trained with "
                              "--impute imputes in every row); pass --fill-missing mean too")
        if not (isinstance(max_missing, (int, float)) and 0 <= max_missing <= 1):
            raise OptionError(f"--max-missing must be a fraction of the features from 0 to 1, got {max_missing!r}")
    flags = roles or RoleFlags()
    columns = [str(c) for c in columns]
    present_set = set(columns)
    kept = list(model.preprocessor.kept_features)
    model_features = set(model.feature_names)
    mroles = model.roles or {}
    notes: list[str] = []
    warns: list[str] = []

    drop = listed_names(flags.drop)
    for name in drop:
        if name not in present_set:
            if flags.features_in_rows:  # a column of the file (an annotation beside the gene ids) is gone by now
                raise DataError(f"--drop {name!r} names none of the file's rows: with --features-in-rows, --drop "
                                "names a row (a gene, or a row of ids or labels); a column of the file, such as a "
                                "gene-symbol column beside the ids, must be removed from it first (e.g. cut -d, "
                                "-f1,3- FILE)")
            raise missing_columns_error([name], list(columns), "--drop")

    def role(flag: str, given: str | None, trained: str | None, default, allowed: bool = True) -> str | None:
        if not allowed:
            return None
        if given is not None:
            if given not in present_set:
                raise missing_columns_error([given], list(columns), flag)
            if given in model_features:
                raise ConfigError(f"{flag} {given!r} is one of the model's features; give the column one role")
            return given
        defaults = [default] if isinstance(default, str) else list(default)
        for candidate in (trained, *defaults):  # the training role first, then the usual defaults
            if candidate and candidate in present_set and candidate not in model_features and candidate not in drop:
                return candidate
        for candidate in (trained, *defaults):  # as the features are matched: letter case and spaces aside
            loose = [c for c in columns if candidate and name_key(c) == name_key(candidate)
                     and c not in model_features and c not in drop]
            if len(loose) == 1:
                notes.append(f"{flag[2:]} column {loose[0]!r} read as {candidate!r} (the names differ only in letter "
                             f"case or spaces; {flag} names another)")
                return loose[0]
        return None

    group = role("--group", flags.group, mroles.get("group"), data.DEFAULT_GROUPS, allowed=not flags.no_group)
    id_col = role("--id", flags.id, mroles.get("id"), data.DEFAULT_ID)
    batch = role("--batch", flags.batch, mroles.get("batch"), data.DEFAULT_BATCH)
    if flags.group is not None and flags.no_group:
        raise OptionError("--group and --no-group contradict each other; pass one of them")

    targets = listed_names(flags.target) or list(mroles.get("target") or model.target_names)
    dropped = [t for t in targets if t in drop]
    if need_target and dropped:  # the labels were read all the same and scored: --drop meant nothing
        raise OptionError(f"--drop names the target column {quoted(dropped)}, which the true labels are read from; "
                          "leave it out of --drop, or name the label column with --target")
    found = [t for t in targets if t in present_set and t not in drop]
    if need_target:
        absent = [t for t in targets if t not in present_set]
        if absent:
            if first_cells is not None:  # a table in the other layout lacks its target column too: say that
                _check_layout(kept, count_matches(kept, columns), first_cells, flags.features_in_rows, source)
            hint = difflib.get_close_matches(absent[0], columns, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            if isinstance(source, str) and os.path.isdir(source):  # 10x Genomics output: counts and barcodes only
                raise DataError(f"{source} is a 10x Genomics directory, which holds no labels: give the cells' "
                                f"{quoted(absent)} in a sample sheet, --samples FILE (its id column holding the "
                                "barcodes)")
            raise DataError(f"{source} has no target column {quoted(absent)}{did_you_mean}{TARGET_ADVICE}")
        if model.task == "multilabel" or model.task == "regression":
            if [str(c) for c in model.classes] != targets:
                raise DataError(f"target columns {quoted(targets)} differ from the model's {quoted(model.classes)}; "
                                "pass the model's columns to --target")
    elif found:
        notes.append(f"ignored the target column{'s' * (len(found) > 1)} {quoted(found)} (not needed to predict)")
    else:  # a label column spelt otherwise is not read as the labels (explain then explains the predicted classes)
        near = [(c, t) for t in targets for c in columns if c != t and name_key(c) == name_key(t) and c not in drop]
        if near:
            c, t = near[0]
            warns.append(f"{source} has no target column {t!r} but {c!r}, which differs from it only in letter case "
                         f"or spaces: it is not read as the labels (--target {shlex.quote(c)} reads it)")
    clash = [t for t in found if t in (group, id_col, batch) or t in model_features]
    if clash:
        roles_of = {"--group": (group, flags.group, "patient (group)"), "--id": (id_col, flags.id, "id"),
                    "--batch": (batch, flags.batch, "batch")}
        flag = next((f for f, (c, _, _) in roles_of.items() if c == clash[0]), None)
        if flag is not None and roles_of[flag][1] == clash[0]:  # an option's doing: a usage error naming it, as train's
            raise OptionError(f"column {clash[0]!r} is given two roles (the target and {flag}); give it one")
        if flag is not None:  # --target naming the column a role takes by default
            raise OptionError(f"--target {clash[0]!r}: that column is the {roles_of[flag][2]} column by default; pass "
                              f"{flag} to choose another, or name another target")
        raise ConfigError(f"column {clash[0]!r} is both the target and one of the model's features; give it one role")
    roles_used = [c for c in (id_col, group, batch) if c is not None]
    if len(set(roles_used)) != len(roles_used):
        raise ConfigError(f"one column has two roles (id {id_col!r}, group {group!r}, batch {batch!r}); "
                          "give each column one role")
    if by is not None and by not in present_set:
        # the candidates are the columns other than the features (an .h5ad file's obs columns): a list of 300 genes
        # with 4 obs columns among them named none of them (--by may name a feature all the same)
        genes = set(feature_columns)
        features = {name_key(f) for f in model.feature_names}
        others = [c for c in columns if c not in genes and name_key(c) not in features]
        raise missing_columns_error([by], others or list(columns), "--by", listed="the columns other than the "
                                    "features" if others else "available columns")

    unavailable = set(drop) | set(roles_used) | set(found)
    unavailable |= set(sheet_columns)  # features never come from a sample sheet
    match = match_names(kept, columns, source=source, unavailable=unavailable)
    present = np.array([f in match.columns for f in kept], dtype=bool)
    matched = [match.columns.get(f, f) for f in kept]
    missing = [f for f, p in zip(kept, present) if not p]
    limit = DEFAULT_MAX_MISSING if max_missing is None else float(max_missing)
    fill = np.full(len(kept), np.nan)
    if match.relaxed:
        species = species_warning(match, len(kept))
        if species:
            warns.append(species)
        else:
            notes.append(match.note("of the model's features"))
    if missing:
        share = len(missing) / len(kept)
        if share > DEFAULT_MAX_MISSING and first_cells is not None:
            _check_layout(kept, int(present.sum()), first_cells, flags.features_in_rows, source)
        lacks = (f"{source} lacks {len(missing):,} of the {len(kept):,} features the model uses "
                 f"({_percent(share)}): {quoted(missing)}")
        dropped = {name_key(d) for d in drop}  # by the matching rule: --drop names the table's column, as written
        removed = [f for f in missing if name_key(f) in dropped]
        if removed:  # the table has them: the option took them out
            lacks = (f"--drop removes {len(removed):,} of the {len(kept):,} features the model uses: {quoted(removed)}"
                     + (f"; {source} lacks {len(missing) - len(removed):,} more" if len(removed) < len(missing) else ""))
        add = "leave them out of --drop" if removed and len(removed) == len(missing) else "add them"
        hint = comment_line_hint(columns) if share > DEFAULT_MAX_MISSING else ""
        others, differ = "", False
        if share > 0.5 and not hint:  # most of them: other gene identifiers, as a rule: show the table's names
            taken = unavailable | set(match.columns.values())
            others, differ = _identifier_hint(missing, [c for c in columns if c not in taken])
        if differ and fill_missing != "mean":  # the cause, and its fix (filling would predict the training average)
            raise DataError(f"{lacks}; it has {int(present.sum()):,} of the model's features, and {others} — map "
                            "the table's columns to the same gene identifiers as the model's before predicting")
        if others:
            lacks += f"; {others}" if differ else f" ({others})"
        dates = spreadsheet_dates(missing, [c for c in columns if c not in unavailable])
        if dates:
            shown = ", ".join(f"{table_name!r} for {feature!r}" for table_name, feature in dates[:4])
            dates_hint = (f" — the table has {shown}{' and more' if len(dates) > 4 else ''}: gene symbols a "
                          "spreadsheet program turned into dates; rename those columns back")
            lacks += dates_hint
        if fill_missing != "mean":
            if not can_fill:
                raise DataError(f"{lacks}; add them: the check needs every feature the network uses{hint}")
            if share > 0.5:  # filling most of them would predict the training average, not these samples
                fix = (f"it has {int(present.sum()):,} of the model's features: is it the kind of table the model was "
                       "trained on (the same platform or panel, the same gene identifiers as column names)? Filling "
                       "most features with their training means would predict from the training average, not from "
                       "these samples")
            elif share <= limit:
                fix = (f"{add}, or pass --fill-missing mean to fill them with their training means (it fills at "
                       f"most {_percent(DEFAULT_MAX_MISSING)} of the features unless --max-missing FRACTION raises "
                       "the limit)")
            else:
                fix = (f"{add} (--fill-missing mean fills at most {_percent(DEFAULT_MAX_MISSING)} of the features "
                       f"with their training means; filling these would also need --max-missing {_ceil2(share):g})")
            raise DataError(f"{lacks}; {fix}{hint}")
        if not present.any():  # every feature filled: one prediction for every sample (refused as .h5ad refuses it)
            raise DataError(f"{lacks}; it has none of the model's features: filled with their training means, every "
                            "sample would get the same prediction, whatever --fill-missing and --max-missing allow"
                            + (" — map the table's columns to the same gene identifiers as the model's" if differ
                               else " — check the table and its feature names"))
        if share > limit:
            given = "" if max_missing is None else f" --max-missing {max_missing:g}"
            raise DataError(f"{lacks}; --fill-missing mean{given} fills at most {_percent(limit)} of them, and "
                            f"predictions would rest on {int(present.sum()):,} features — check the table and its "
                            f"feature names, or pass --max-missing {_ceil2(share):g} to fill them anyway")
        fill[~present] = training_means(model)[~present]
        rest = f"predictions rest on the other {int(present.sum()):,}"
        warns.append(f"{len(missing):,} of the {count_of(len(kept), 'feature')} the model uses ({_percent(share)}) "
                     f"{'is' if len(missing) == 1 else 'are'} missing and "
                     f"filled with their training means: {quoted(missing)}; {rest}{f'; {others}' if differ else ''}"
                     f"{dates_hint if dates else ''}")
    kept_set = set(kept)
    unused_absent = [f for f in model.feature_names if f not in present_set and f not in kept_set]
    if unused_absent:
        notes.append(f"{len(unused_absent):,} of the model's input features {'is' if len(unused_absent) == 1 else 'are'} "
                     "absent but unused by the network "
                     f"(dropped as constant or by --top-var in training): {quoted(unused_absent, 3)}")
    feature_columns = set(match.columns.values())
    used = feature_columns | kept_set | set(roles_used) | set(found) | set(drop) | ({by} if by else set())
    extra = [c for c in columns if c not in used and c not in set(sheet_columns)]
    # a column spelt like a feature the table also has exactly (ENSG1.13 beside ENSG1, tp53 beside TP53): the exact
    # one is used; said as such below, not among the columns the model does not use
    by_key = {name_key(f): match.columns.get(f, f) for f, p in zip(kept, present) if p}
    twins = [(c, by_key[name_key(c)]) for c in extra if name_key(c) in by_key]
    extra = [c for c in extra if name_key(c) not in by_key]
    if twins:
        shown = ", ".join(f"{c!r} (beside {used_name!r})" for c, used_name in twins[:4])
        warns.append(f"{source} has {len(twins)} column{'s' * (len(twins) != 1)} spelt like a model feature it "
                     f"also has exactly: {shown}{' and more' if len(twins) > 4 else ''}; the exact one is used — "
                     "two versions or spellings of one gene: keep the one you mean")
    if extra:
        unnamed = ""
        if id_col is None and ids_written:  # the sample ids may be among them under another name
            usual = f"{mroles['id']!r} as in training" if mroles.get("id") else repr(data.DEFAULT_ID)
            unnamed = f"; no id column ({usual}), so the rows are numbered: --id COLUMN names one"
        at = {c: j for j, c in enumerate(columns)}
        shown_extra = ", ".join(repr(c) if str(c).strip() else f"the unnamed column {at[c] + 1}"
                                + (" (row names; the ids are read from the id column)" if at[c] == 0 and id_col
                                   else "") for c in extra[:4])
        notes.append(f"ignored {count_of(len(extra), 'column')} the model does not use: "
                     f"{shown_extra}{f' and {len(extra) - 4} more' if len(extra) > 4 else ''}{unnamed}")

    position = {c: i for i, c in enumerate(columns)}
    order = [position[c] for c, p in zip(matched, present) if p]
    if any(b < a for a, b in zip(order, order[1:])):
        notes.append("features matched by name (the table's column order differs from the model's)")
    picked = [f"{r} {c}" for r, c in (("id", id_col), ("group", group), ("batch", batch)) if c is not None]
    notes.insert(0, f"columns: {', '.join(picked) if picked else 'no id, group or batch column'}; "
                    f"{int(present.sum()):,} of the model's {count_of(len(kept), 'feature')} found")
    return ColumnPlan(source=source, roles=data.Roles(target=found, group=group, id=id_col, batch=batch, drop=drop),
                      features=kept, present=present, fill_values=fill, by=by, notes=notes, warnings=warns,
                      matched=matched if match.relaxed else None, max_missing=max_missing)


def never_measured(plan: ColumnPlan, observed: np.ndarray, n_rows: int, impute: str) -> str | None:
    """For a model trained with --impute: a warning naming the features present in the table but without a value
    in any of its ``n_rows`` rows (``observed``, (d_kept,) counts of values), each imputed with its training
    ``impute`` value in every row — a gene the cohort's assay did not measure, as good as absent. None when
    there are none; a DataError when, with the absent features filled, they are more than --max-missing's
    share (as for absent features alone)."""
    never = plan.present & (observed == 0)
    k = int(never.sum())
    if not k or not n_rows:
        return None
    d, absent = len(plan.features), int((~plan.present).sum())
    share = (k + absent) / d
    names = quoted([plan.column_name(j) for j in np.flatnonzero(never)])
    rest = d - k - absent
    with_absent = f" (with the {absent:,} absent ones filled, {_percent(share)})" if absent else ""
    lacks = (f"{plan.source}: {k:,} of the {d:,} features the model uses ({_percent(k / d)}) {agreeing(k, 'has', 'have')} no value in any "
             f"of its {n_rows:,} rows{with_absent}: {names}")
    limit = DEFAULT_MAX_MISSING if plan.max_missing is None else float(plan.max_missing)
    if share > limit:
        given = "" if plan.max_missing is None else f" --max-missing {plan.max_missing:g}"
        raise DataError(f"{lacks}; imputing them with their training {impute}s{given} would leave predictions "
                        f"resting on {rest:,} features — were they measured (the same platform or panel)? Pass "
                        f"--max-missing {_ceil2(share):g} to go on anyway")
    return (f"{lacks}, and were imputed with their training {impute}s in every row (genes the cohort's assay did "
            f"not measure?); predictions rest on the other {rest:,}")


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_SYMBOL_NUMBER = re.compile(r"([A-Za-z]+)(\d{1,2})")
_DATE_FORMS = (re.compile(r"(\d{1,2})-([A-Za-z]{3})"), re.compile(r"([A-Za-z]{3})-(\d{1,2})"),
               re.compile(r"\d{4}-(\d{2})-(\d{2})"))


def spreadsheet_dates(missing: Sequence[str], columns: Sequence[str]) -> list[tuple[str, str]]:
    """(the table's column, the model's feature) for each missing gene symbol that a spreadsheet program turned
    into a date (SEPT1 -> 1-Sep or Sep-01 or 2001-09-01, MARCH1 -> 1-Mar, DEC1 -> 1-Dec, OCT4 -> 4-Oct): a symbol
    whose letters begin with a month's abbreviation and end in a day number, and a column of that day and month."""
    wanted: dict[tuple[int, int], list[str]] = {}
    for feature in missing:
        m = _SYMBOL_NUMBER.fullmatch(str(feature))
        if m and m.group(1)[:3].lower() in _MONTHS and 1 <= int(m.group(2)) <= 31:
            wanted.setdefault((_MONTHS.index(m.group(1)[:3].lower()) + 1, int(m.group(2))), []).append(str(feature))
    if not wanted:
        return []
    pairs = []
    for column in map(str, columns):
        day_month = None
        for k, form in enumerate(_DATE_FORMS):
            m = form.fullmatch(column.strip())
            if m is None:
                continue
            if k == 2:  # ISO, YYYY-MM-DD: the year the spreadsheet assumed, then month and day
                day_month = (int(m.group(2)), int(m.group(1)))
            else:
                day, month = (m.group(1), m.group(2)) if k == 0 else (m.group(2), m.group(1))
                if month.lower() in _MONTHS:
                    day_month = (int(day), _MONTHS.index(month.lower()) + 1)
            break
        if day_month is not None:
            day, month = day_month
            pairs += [(column, feature) for feature in wanted.get((month, day), [])]
    return pairs


def _percent(share: float) -> str:
    """A share of features as a percentage: whole percents, or tenths where they differ, but never 0 % or 100 % when it
    is neither."""
    pct = share * 100
    if 0 < pct < 1:
        return f"{pct:.1g} %"
    if 99 < pct < 100:
        return f"{math.floor(pct * 10) / 10:g} %"
    # a tenth where a whole number would misstate it: 5 of 40 is 12.5 %, which --max-missing 0.12 does not allow
    return f"{pct:.0f} %" if abs(pct - round(pct)) < 0.05 else f"{pct:.1f} %"


def _ceil2(share: float) -> float:
    """The smallest two-decimal fraction at or above `share` (the --max-missing that allows it)."""
    return min(1.0, math.ceil(share * 100 - 1e-9) / 100)


def _identifier_hint(missing: Sequence[str], candidates: Sequence[str]) -> tuple[str, bool]:
    """For a table lacking most of the model's features: what the table's other columns (`candidates`: those
    no role takes) look like, and whether they are another kind of identifier than the model's missing
    features (``_id_kind``; then the text names both kinds); ("", False) without such columns."""
    if not candidates:
        return "", False
    model_kind, table_kind = id_kind(missing), id_kind(candidates)
    if model_kind == table_kind or 10 * len(candidates) < len(missing):  # a few annotation columns: no genes
        return f"its other columns are {quoted(candidates, 3)}", False
    return (f"gene identifiers differ: the model's features are {model_kind}, the table's other columns "
            f"{table_kind} ({quoted(candidates, 3)})", True)


def _check_layout(kept: Sequence[str], found: int, first_cells: Callable[[int], Sequence[str]],
                  features_in_rows: bool, source: str) -> None:
    """A DataError when the table's first column holds more of the model's feature names than its header:
    a features x samples table read without --features-in-rows (its first column holds the genes), or a
    samples x features table read with it (transposed, its header's names land in the first column)."""
    cells = [str(c) for c in first_cells(_FIRST_CELLS)]
    in_first = count_matches(kept, cells)
    if in_first < min(2, len(kept)) or in_first <= 2 * found:
        return
    if features_in_rows:
        cells_read = f" in its first {len(cells):,} cells" if len(cells) >= _FIRST_CELLS else ""
        raise DataError(f"{source}: its header holds {in_first:,} of the model's {len(kept):,} feature names{cells_read} and "
                        f"its first column only {found:,} — the table is samples x features: leave out "
                        "--features-in-rows")
    rows = f" in its first {len(cells):,} rows" if len(cells) >= _FIRST_CELLS else ""
    raise DataError(f"{source}: column 1 holds {in_first:,} of the model's {len(kept):,} feature names{rows} and the "
                    f"header only {found:,} — the table is features x samples (genes in rows): pass --features-in-rows")


# ── feature values of one chunk ──────────────────────────────────────────────────────────────────────────


def row_label(first_row: int, i: int, ids: np.ndarray | None) -> str:
    text = f"row {first_row + i + 1}"
    if ids is not None and i < len(ids) and isinstance(ids[i], str):
        text += f" (id {ids[i]!r})"
    return text


def _raise_non_numeric(frame: pd.DataFrame, columns: Sequence[str], source: str, first_row: int,
                       ids: np.ndarray | None) -> None:
    """Raise a DataError naming the first cell of `columns` (row order, then column order) that is not a
    number as the text was parsed: with the decimal mark the reader recorded in ``frame.attrs`` (under
    decimal commas a "0.5" is the culprit, not the "0,3" cells pandas left as text beside it)."""
    decimal = frame.attrs.get(DECIMAL_ATTR, ".")
    found = first_non_number(frame, columns, decimal)
    if found is not None:
        row, j, value, _ = found
        raise DataError(f"{source}: feature column {columns[j]!r} holds the non-numeric value {str(value)!r} at "
                        f"{row_label(first_row, row, ids)}; features must be numbers"
                        f"{decimal_advice(value, decimal, DECIMAL_ATTR in frame.attrs)}")


def present_values(plan: ColumnPlan, frame: pd.DataFrame, first_row: int, ids: np.ndarray | None) -> np.ndarray:
    """The features found in the table, (n, d_present) float64 in the model's order (column-major, as
    pandas holds them: the rows are never transposed, the network's BLAS product takes either layout). A
    cell that is not a number (text input is parsed with inferred types, so a bad cell leaves its column
    as text) is a DataError naming the column and row."""
    names = plan.present_names
    dtypes = frame.dtypes
    numeric = [pd.api.types.is_numeric_dtype(dtypes[c]) for c in names]
    sub = frame[names]
    if not all(numeric):
        bad = [c for c, ok in zip(names, numeric) if not ok]
        _raise_non_numeric(frame, bad, plan.source, first_row, ids)
        sub = sub.apply(pd.to_numeric)  # text columns holding only numbers (DataFrame input)
    if all(isinstance(t, np.dtype) and t.kind in "fiub" for t in sub.dtypes):
        values = sub.to_numpy()  # column-major: pandas stacks its columns, no transposing copy
        return values if values.dtype == np.float64 else values.astype(np.float64)
    return sub.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable dtypes (pd.NA)


def complete_rows(plan: ColumnPlan, values: np.ndarray, first_row: int, pre, ids: np.ndarray | None) -> np.ndarray:
    """Rows (k, d_kept) for the preprocessing: absent features filled, values checked (missing values
    without --impute, infinities, values beyond float32's range, negatives under log1p are DataErrors naming
    column and row)."""
    if plan.present.all():
        X = values
    else:
        X = np.empty((len(values), len(plan.features)), order="F")
        X[:, plan.present] = values
        X[:, ~plan.present] = plan.fill_values[~plan.present]
    finite = np.isfinite(X)
    if not finite.all():
        bad = ~finite
        inf = bad & ~np.isnan(X)
        if inf.any():
            i, j = np.argwhere(inf)[0]
            raise DataError(f"{plan.source}: feature column {plan.column_name(j)!r} holds an infinite value at "
                            f"{row_label(first_row, i, ids)}; replace it")
        if pre.config.impute is None:
            i, j = np.argwhere(bad)[0]
            # a column without a value in this whole piece may be a gene the assay did not measure (absent, not a
            # gap to fill); only the piece is known here (--chunksize), so it is said as a possibility
            unmeasured = (" — if the column holds no value anywhere (a gene the cohort's assay did not measure), remove "
                          "it and pass --fill-missing mean (its training mean)") if bad[:, j].all() and len(X) > 1 else ""
            per_column = bad.sum(axis=0)
            columns = np.flatnonzero(per_column)
            gaps = counted([(plan.column_name(c), int(per_column[c])) for c in columns])
            rows = f"row {first_row + 1}" if len(X) == 1 else f"rows {first_row + 1}-{first_row + len(X)}"
            raise DataError(f"{plan.source}: feature column {plan.column_name(j)!r} has a missing value at "
                            f"{row_label(first_row, i, ids)} (missing values in {rows}: {gaps}); the model was "
                            f"trained without --impute, so fill them or retrain with --impute{unmeasured}")
        empty = np.isnan(values).all(axis=1) if values.shape[1] else np.zeros(0, dtype=bool)
        if empty.any():  # nothing of the sample to impute from: the training average, predicted as its own
            i = int(np.argmax(empty))
            raise DataError(f"{plan.source}: {row_label(first_row, i, ids)} has no feature value (all "
                            f"{values.shape[1]:,} missing; {int(empty.sum())} such rows in rows {first_row + 1}-"
                            f"{first_row + len(X)}): a spreadsheet's blank line, or a sample without measurements? "
                            "Remove it: imputing every feature would predict the training average, not the sample")
    at = first_beyond_limit(X)
    if at is not None:
        i, j = at
        raise DataError(f"{plan.source}: " + value_limit_message("feature column", plan.column_name(j), X[i, j],
                                                                  row_label(first_row, i, ids)))
    if pre.config.log1p:
        negative = X < 0
        if negative.any():
            i, j = np.argwhere(negative)[0]
            raise DataError(f"{plan.source}: feature column {plan.column_name(j)!r} holds the negative value "
                            f"{X[i, j]:.4g} at {row_label(first_row, i, ids)}; the model applies log1p "
                            "(trained with --log1p), which needs non-negative values")
    return X


def kept_only(pre):
    """The fitted preprocessor, taking only its kept features as input: same parameters, same code.
    Its column selection is a slice, so it transforms its (scratch) input in place instead of copying."""
    shim = copy.copy(pre)
    shim.feature_names_in = list(pre.kept_features)
    shim.kept_index_ = slice(None)
    return shim


class TransformedRows:
    """Stands in for the preprocessor when rows are already transformed (they are transformed once, for
    both the network and the shift statistics), so `Model.predict_output` does the rest unchanged."""

    def transform(self, X, dtype=np.float64):
        return np.asarray(X, dtype=dtype)
