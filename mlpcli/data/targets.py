"""The target column(s) and the task: binary, multiclass, multi-label or regression inferred from the values, class
labels encoded (as given, or matched to a model's classes), and the warnings a label column earns (rare classes, one
label spelt two ways, one number written two ways, a class holding the prediction-set separator)."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..text import count_of, counted, quoted
from .cells import (SPELLING_WORDS, CellPlace, first_row, is_text_dtype, near_spellings, one_number_groups, parse_numbers,
                    typed_as_written, visible)
from .conventions import CLASSIFICATION_TASKS, DECIMAL_ATTR, MISSING_AS_WRITTEN_ATTR
from .labels import case_hint, label_key, numeric_fallback, plain_label, spaced_fallback


# Task inference: a numeric target with more distinct values than both limits is taken as regression.
_REGRESSION_MIN_DISTINCT = 10
_REGRESSION_MIN_DISTINCT_FRACTION = 0.05
# A class with fewer training samples than this gets a warning (rare classes make noisy estimates).
_RARE_CLASS_SAMPLES = 5


def _blank_text(values: pd.Series) -> pd.Series:
    """(n,) bool: the cells that are text of spaces (or tabs) only."""
    return values.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)


def read_target(
    df: pd.DataFrame, targets: list[str], task: str, classes: Sequence | None, notes: list[str], warn: list[str],
    id_column: str | None = None,
) -> tuple[np.ndarray, str, list]:
    """(y, task, classes) for the target column(s), inferring the task when `task == "auto"`. A target cell
    that does not fit the task (text in a regression target, a 2 among 0/1 labels) is a DataError naming the
    file, the column, the row (and sample id in `id_column`) and the value."""
    frame = _uncategorised(df[targets]) if len(targets) > 1 else df[targets]
    # a label of spaces only (a spreadsheet's " " cell) is missing, as an empty one is, not a class named " "
    absent = pd.DataFrame({t: frame[t].isna() | (_blank_text(frame[t]) if frame[t].dtype == object else False)
                           for t in targets})
    missing = absent.any(axis=1)
    if missing.any():
        per_col = [(t, int(absent[t].sum())) for t in targets if absent[t].any()]
        where = CellPlace(df, id_column, per_col[0][0])
        raise DataError(
            f"{where.source}target has missing values in {count_of(int(missing.sum()), 'row')} "
            f"({counted(per_col)}){_written_missing(df, [t for t, _ in per_col])}; "
            f"{first_row(df, missing.to_numpy(), id_column, where)}; drop those rows, or predict them with "
            "`mlpcli predict`"
        )
    if task == "auto":
        task = _infer_task(frame, targets, classes, notes, warn)
    if task in CLASSIFICATION_TASKS:
        if len(targets) != 1:
            raise DataError(f"--task {task} takes one --target column, got {len(targets)} ({quoted(targets)}); "
                            "use --task multilabel for several 0/1 columns")
        y, labels = encode_classes(frame[targets[0]], targets[0], task, classes, warn)
        return y, task, labels
    where = CellPlace(df, id_column, targets[0])
    if task == "multilabel":
        return _multilabel_target(frame, targets, classes, warn, where), task, list(targets)
    return _regression_target(frame, targets, classes, where, warn), task, list(targets)


def _written_missing(df: pd.DataFrame, columns: list[str]) -> str:
    """How the missing labels of `columns` were written, where a token read as missing ("NA", "NULL") stood in the
    cell (``io.tokens_as_missing``): ": 20 cells hold 'NA', read as missing (...)", so that a class named NA (North
    America, not applicable) is not hunted for as empty cells; "" for empty cells alone."""
    seen: dict[str, int] = {}
    for c in columns:
        for token, k in df.attrs.get(MISSING_AS_WRITTEN_ATTR, {}).get(c, {}).items():
            seen[token] = seen.get(token, 0) + k
    if not seen:
        return ""
    ranked = sorted(seen.items(), key=lambda tk: -tk[1])[:4]
    shown = " or ".join(f"{t!r} ({k})" for t, k in ranked) if len(seen) > 1 else repr(ranked[0][0])
    k = sum(seen.values())
    return (f": {count_of(k, 'cell')} {'hold' if k != 1 else 'holds'} {shown}, read as missing (as R writes a missing "
            f"value; a class of that name needs another)")


def _first_odd_value(col: pd.Series):
    """The first value of a would-be 0/1 column that is not 0, 1, true or false (for the error naming it)."""
    for v in col.dropna():
        if str(v).strip().lower() not in ("0", "1", "0.0", "1.0", "true", "false"):
            return v
    return col.dropna().iloc[0] if col.notna().any() else None


def _uncategorised(frame: pd.DataFrame) -> pd.DataFrame:
    """Several target columns with their categorical columns (an .h5ad file's .obs keeps 0/1 labels as categories,
    of numbers or of the text "0"/"1") as plain values, typed as written: multi-label 0/1 or regression numbers
    are read by their values, where a category column was "neither" 0/1 nor numeric."""
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype) or is_text_dtype(frame[c].dtype)]
    if not cats:
        return frame
    frame = frame.copy()
    for c in cats:
        values = frame[c]
        if isinstance(values.dtype, pd.CategoricalDtype):  # its values as written (a missing one stays missing)
            values = values.astype(object).where(values.notna(), np.nan)
        # text (an .h5ad file's obs strings, a category's values): "0"/"1" and 0/1 become numbers
        frame[c] = typed_as_written(values.where(values.notna(), np.nan))
    return frame


def _is_number_column(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)


def _is_zero_one(col: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(col.dtype):
        return True
    return _is_number_column(col) and bool(np.isin(col.to_numpy(dtype=np.float64), (0.0, 1.0)).all())


def _warn_two_valued_targets(frame: pd.DataFrame, targets: list[str], warn: list[str]) -> None:
    """Several numeric targets read as regression where each holds two whole-number values: yes/no labels, some coded
    otherwise than 0/1 (1/2, 1/0 with -1...), which make every label a number to predict (a review's three labels, one
    coded 1/2, were all fitted by squared error and scored by RMSE)."""
    twos = {}
    for t in targets:
        values = pd.unique(frame[t].dropna().to_numpy(dtype=np.float64))
        if len(values) != 2 or not np.all(values == np.round(values)):
            return
        twos[t] = sorted(values.tolist())
    coded = [t for t, v in twos.items() if v != [0.0, 1.0]]
    shown = ", ".join(f"{t!r} ({plain_label(twos[t][0])}/{plain_label(twos[t][1])})" for t in coded[:3])
    more = f" and {len(coded) - 3} more" if len(coded) > 3 else ""
    warn.append(f"the {len(targets)} target columns each hold two whole numbers, as yes/no labels do, but {shown}{more} "
                f"{'is' if len(coded) == 1 else 'are'} not coded 0/1: read as {len(targets)} numbers to predict "
                "(regression: squared error, RMSE); if they are labels, recode "
                f"{'it' if len(coded) == 1 else 'them'} as 0/1 for a multi-label model")


def _infer_task(frame: pd.DataFrame, targets: list[str], classes: Sequence | None, notes: list[str],
                warn: list[str] | None = None) -> str:
    if len(targets) > 1:
        if all(_is_zero_one(frame[t]) for t in targets):
            notes.append(f"task: multilabel (inferred: {len(targets)} target columns, all 0/1; --task to override)")
            return "multilabel"
        if all(_is_number_column(frame[t]) for t in targets):
            notes.append(f"task: regression (inferred: {len(targets)} numeric target columns; --task to override)")
            values = frame[targets].to_numpy(dtype=np.float64)
            off = ~np.isin(values, (0.0, 1.0))
            if warn is not None and 0 < off.sum() <= max(1, 0.01 * off.size):  # 0/1 labels but for a stray cell
                i, j = np.argwhere(off)[0]
                k = int(off.sum())
                warn.append(f"the target columns are 0/1 but for {k} cell{'s' * (k > 1)} ({'the first: ' * (k > 1)}"
                            f"{targets[j]!r} holds {plain_label(frame[targets[j]].iloc[i])!r} at "
                            f"{CellPlace(frame, column=targets[j]).row(i)}): read as {len(targets)} numbers to "
                            f"predict (regression); if they are labels, correct {'those cells' if k > 1 else 'that cell'}"
                            " (or pass --task multilabel)")
            elif warn is not None:
                _warn_two_valued_targets(frame, targets, warn)
            return "regression"
        bad = [t for t in targets if not _is_number_column(frame[t]) and not _is_zero_one(frame[t])]
        raise DataError(f"{CellPlace(frame, column=targets[0]).source}several target columns must all be 0/1 (multi-label: 0/1 or "
                        f"true/false) or numeric (regression); {quoted(bad)} {'is' if len(bad) == 1 else 'are'} neither"
                        f" ({bad[0]!r} holds {str(_first_odd_value(frame[bad[0]]))!r})")
    name = targets[0]
    col = frame[name]
    if classes is not None:  # a trained classifier's labels were given: keep its task family
        task = "binary" if len(classes) == 2 else "multiclass"
        notes.append(f"task: {task} (from the model's {len(classes)} classes)")
        return task
    values = col.to_numpy()
    n_distinct = len(pd.unique(values))
    if not _is_number_column(col):
        _check_stray_text(col, name)
    if _is_number_column(col):
        as_float = values.astype(np.float64)
        if _looks_continuous(as_float, n_distinct):
            non_integer = not np.all(as_float == np.round(as_float))
            why = "non-integer values" if non_integer else f"{n_distinct} distinct values"
            notes.append(f"task: regression (inferred: {name!r} is numeric with {why}; --task to override)")
            return "regression"
    if n_distinct < 2:
        source = CellPlace(frame, column=name).source
        if _is_number_column(col):  # an age or a score measured alike in every sample is no class either
            raise DataError(f"{source}target {name!r} holds one value ({quoted(pd.unique(values), 1)}) in every row "
                            "(read as a number: 1 and 1.0 are one value): there is nothing to learn (a classifier needs "
                            "2 classes or more, a regression a target that varies)")
        raise DataError(f"{source}target {name!r} has a single class ({quoted(pd.unique(values), 1)}); "
                        "a classifier needs at least 2 classes")
    task = "binary" if n_distinct == 2 else "multiclass"
    # a few whole numbers (a 0-4 clinical score, a tumour grade) are taken as classes: say how to predict them as a number
    notes.append(f"task: {task} (inferred from {n_distinct} classes in {name!r}; --task to override)")
    if _is_number_column(col) and n_distinct > _REGRESSION_MIN_DISTINCT and warn is not None:
        # many whole numbers in a large cohort (integer ages: 67 of them in 2,400 rows) are more likely measured values
        # than classes; the run then ended in "class '18' has 1 sample", naming no --task
        warn.append(f"{name!r} holds {n_distinct} distinct whole numbers, read as {n_distinct} classes (they are "
                    f"under {_REGRESSION_MIN_DISTINCT_FRACTION:.0%} of the rows); if they are measured values (an age, "
                    "a count), --task regression predicts them as a number")
    elif _is_number_column(col) and n_distinct > 2:
        notes.append(f"{name!r} holds {n_distinct} whole numbers, read as classes; --task regression predicts it as a "
                     "number instead")
    return task


def _looks_continuous(values: np.ndarray, n_distinct: int) -> bool:
    """Whether numeric target values (float64) are a regression's: non-integers, or many distinct values."""
    non_integer = not np.all(values == np.round(values))
    many = n_distinct > _REGRESSION_MIN_DISTINCT and n_distinct > _REGRESSION_MIN_DISTINCT_FRACTION * len(values)
    return non_integer or many


def _check_stray_text(col: pd.Series, name: str) -> None:
    """A target of numbers that a regression would take, but for a few cells of text (a typo, "n/d"): a
    DataError naming the first such cell. Left alone, the column would be read as classes, one per value,
    and training would fail later on classes of one sample each, naming no cell."""
    numbers = pd.to_numeric(col.astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    text = np.isnan(numbers)
    k = int(text.sum())
    if not 0 < k <= max(3, len(col) // 100):
        return
    kept = numbers[~text]
    if not _looks_continuous(kept, len(np.unique(kept))):
        return
    i = int(np.argmax(text))
    where = CellPlace(col.to_frame(), column=name)
    raise DataError(f"{where.source}target {name!r} holds numbers but for {k} cell{'s' * (k > 1)} of text, the first "
                    f"{str(col.iloc[i])!r} at {where.row(i)}; fix {'them' if k > 1 else 'it'}, or give --task "
                    "multiclass to take its values as classes")


def _sorted_labels(values: np.ndarray) -> list:
    unique = [plain_label(v) for v in pd.unique(values)]
    try:
        return sorted(unique)
    except TypeError:  # mixed types (e.g. 1 and "a") in an object column
        return sorted(unique, key=str)


def encode_classes(
    col: pd.Series, name: str, task: str, classes: Sequence | None, warn: list[str]
) -> tuple[np.ndarray, list]:
    """(y (n,) int64 indices into the labels, labels)."""
    values = col.to_numpy()
    place = CellPlace(col.to_frame(), column=name)
    source = place.source
    if values.dtype == object:
        # pandas' hashing reads a NUL byte as the end of a text: pd.unique took 'A' and 'A\x00X' for one label,
        # and training then called the common 'A' unknown (a text table's NUL is refused as it is read)
        seen = dict.fromkeys(values.tolist())
        nul = next((v for v in seen if isinstance(v, str) and "\x00" in v), None)
        if nul is not None:
            raise DataError(f"{source}target {name!r} holds a label with a NUL byte (0x00), {nul!r}, at "
                            f"{place.row(values.tolist().index(nul))}: remove the byte from the labels")
    if classes is None:
        labels = _sorted_labels(values)
        if len(labels) < 2:
            raise DataError(f"{source}target {name!r} has a single class ({quoted(labels, 1)}); "
                            "a classifier needs at least 2 classes")
        if task == "binary" and len(labels) != 2:
            numbers = pd.to_numeric(pd.Series(labels, dtype=object), errors="coerce")
            measured = numbers.notna().all() and not (numbers == numbers.round()).all()  # values, not classes
            raise DataError(f"{source}--task binary needs 2 classes, but {name!r} has {len(labels)}: "
                            f"{quoted(labels)}; "
                            + ("they are measured values: use --task regression" if measured else
                               "use --task multiclass"))
    else:
        labels = list(classes)
        if task == "binary" and len(labels) != 2:
            raise DataError(f"--task binary needs 2 classes, but the model has {len(labels)}")
    index = {label_key(c): i for i, c in enumerate(labels)}
    keys = [label_key(v) for v in values]
    if classes is not None:
        keys = spaced_fallback(numeric_fallback(keys, index), index)
    unknown = [k for k in dict.fromkeys(keys) if k not in index]
    if unknown:
        raise DataError(f"{source}target {name!r} holds labels the model does not know: {quoted(unknown)}; "
                        f"its classes are {quoted(labels, 8)}{case_hint(unknown, index)}")
    y = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
    if classes is None:
        counts = np.bincount(y, minlength=len(labels))
        rare = [(labels[i], int(counts[i])) for i in np.flatnonzero(counts < _RARE_CLASS_SAMPLES)]
        if rare:
            warn.append(f"rare classes in {name!r} with fewer than {_RARE_CLASS_SAMPLES} samples: {counted(rare)}; "
                        "their validation scores will be noisy")
        _warn_near_labels(labels, name, warn, col.attrs.get(DECIMAL_ATTR, "."))
        _warn_set_separator(labels, name, warn)
    return y, labels


def _warn_set_separator(labels: list, name: str, warn: list[str]) -> None:
    """A warning when a class holds '|', which predict's pred_set column puts between the classes of a set
    (``conformal.format_sets``): ``predict --coverage`` refuses such a model, said now rather than after training."""
    from ..conformal import SET_SEPARATOR

    piped = [str(label) for label in labels if SET_SEPARATOR in str(label)]
    if piped:
        warn.append(f"class{'es' * (len(piped) > 1)} {quoted(piped, 3)} in {name!r} hold{'s' * (len(piped) == 1)} "
                    "'|', which predict's pred_set puts between the classes of a prediction set: predict --coverage "
                    "cannot use a model trained on it; rename the class in the table for prediction sets, or, if "
                    "it is a set of labels (multi-label), write one 0/1 column per label and give them all to --target")


def _warn_near_labels(labels: list, name: str, warn: list[str], decimal: str = ".") -> None:
    """A warning when classes differ only in letter case, spaces or Unicode form ('case' and 'case ', as a
    spreadsheet keeps a stray space; 'Grade 1' with a non-breaking space): labels are read as written, so they train as separate classes."""
    near = near_spellings(labels)
    if near:
        shown = "; ".join(", ".join(map(visible, group)) for group in near[:3])
        warn.append(f"classes in {name!r} that differ only in {SPELLING_WORDS}: {shown}"
                    f"{f' and {len(near) - 3} more' if len(near) > 3 else ''}; they are trained as separate "
                    "classes — write each label one way if they are one")
    numbers = one_number_groups(labels, decimal)
    if numbers:
        shown = "; ".join(", ".join(map(repr, group)) for group in numbers[:3])
        zeros = any(re.match(r"\s*[+-]?0\d", v) for group in numbers for v in group)
        why = "a label written with a leading zero keeps the column as text, so" if zeros else \
            "labels are read as written (the column holds text), so"
        warn.append(f"classes in {name!r} that are one number written differently: {shown}"
                    f"{f' and {len(numbers) - 3} more' if len(numbers) > 3 else ''}; "
                    f"{why} they are trained as separate classes — write each label one way if they are one")


def _multilabel_target(frame: pd.DataFrame, targets: list[str], classes: Sequence | None,
                       warn: list[str], where: "CellPlace | None" = None) -> np.ndarray:
    bad = [t for t in targets if not _is_zero_one(frame[t])]
    if bad:
        where = where or CellPlace(frame)
        col = frame[bad[0]]
        if _is_number_column(col):
            off = ~np.isin(col.to_numpy(dtype=np.float64), (0.0, 1.0))
        else:  # text or mixed: every cell is off (booleans are 0/1 and would have passed)
            off = np.ones(len(col), dtype=bool)
        i = int(np.argmax(off))
        raise DataError(f"{where.source}--task multilabel needs 0/1 target columns; {bad[0]!r} holds "
                        f"{str(plain_label(col.iloc[i]))!r} at {where.row(i)}"
                        + (f" (other values in {quoted(bad[1:], 3)} too)" if len(bad) > 1 else ""))
    _check_model_targets(targets, classes)
    Y = frame.to_numpy(dtype=np.float64)  # (n, k)
    if classes is None and len(Y):  # a training table: a label with one value teaches the model nothing
        constant = [(t, int(Y[0, j])) for j, t in enumerate(targets) if Y[:, j].min() == Y[:, j].max()]
        if constant:
            warn.append(f"label{'s' * (len(constant) > 1)} {', '.join(f'{t!r} (always {v})' for t, v in constant)} "
                        f"never change{'s' * (len(constant) == 1)} in this table: the model can only learn to predict that value")
    return Y


def _regression_target(frame: pd.DataFrame, targets: list[str], classes: Sequence | None,
                       where: "CellPlace | None" = None, warn: list[str] | None = None) -> np.ndarray:
    # a column kept as text by the reader (007, written as an id would be) is still numbers to a regression,
    # parsed as every other number is (``parse_numbers``; the rows have no missing target by now)
    numbers = {t: parse_numbers(frame[t].astype(str).str.strip()) for t in targets if is_text_dtype(frame[t].dtype)}
    frame = frame.assign(**{t: v for t, v in numbers.items() if v is not None})
    bad = [t for t in targets if not _is_number_column(frame[t])]
    if bad:  # name the first cell that is not a number (the first cell may well be one)
        where = where or CellPlace(frame)
        col = frame[bad[0]]
        cells = col.astype(str).str.strip()
        off = np.array([parse_numbers(pd.Series([c])) is None for c in cells], dtype=bool) \
            if is_text_dtype(col.dtype) else np.ones(len(col), dtype=bool)
        i = int(np.argmax(off)) if off.any() else 0
        raise DataError(f"{where.source}--task regression needs numeric targets; {bad[0]!r} holds the text "
                        f"{str(col.iloc[i])!r} at {where.row(i)}"
                        + (f" (text in {quoted(bad[1:], 3)} too)" if len(bad) > 1 else ""))
    _check_model_targets(targets, classes)
    Y = frame.to_numpy(dtype=np.float64)  # (n, k)
    if classes is None and len(Y):  # a training table: a target that never varies leaves nothing to learn
        constant = [(t, Y[0, j]) for j, t in enumerate(targets) if Y[:, j].min() == Y[:, j].max()]
        if len(constant) == len(targets):
            shown = ", ".join(f"{t!r} is {v:.6g}" for t, v in constant)
            raise DataError(f"{where.source if where else ''}--task regression needs a target that varies, but {shown} "
                            "in every row: there is nothing to learn")
        if constant and warn is not None:
            warn.append(f"target{'s' * (len(constant) > 1)} {', '.join(f'{t!r} (always {v:.6g})' for t, v in constant)} "
                        f"never change{'s' * (len(constant) == 1)} in this table: the model can only learn to "
                        "predict that value")
    return Y


def _check_model_targets(targets: list[str], classes: Sequence | None) -> None:
    if classes is not None and [str(c) for c in classes] != list(targets):
        raise DataError(f"target columns {quoted(targets)} differ from the model's {quoted(classes)}; "
                        "pass the model's columns to --target")
