"""Class labels as the data writes them and as they are matched: 1, 1.0, np.int64(1) and "1" are one label."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .cells import spelling_key, unspaced


def label_key(value: Any) -> str:
    """String form of a class label used for matching: 1, 1.0, np.int64(1) and "1" all give "1"."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def plain_label(value: Any) -> Any:
    """numpy scalar -> Python scalar, integral float -> int, so labels are JSON-able and print nicely."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def label_keys(values: np.ndarray, missing: str = "NA") -> np.ndarray:
    """Labels as matching keys, as in training (1, 1.0 and "1" all give "1"); missing -> ``missing``."""
    return np.asarray([missing if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA
                       else label_key(v) for v in values], dtype=object)


def numeric_fallback(keys: list[str], index: dict[str, int]) -> list[str]:
    """Label keys matched to a model's class keys ``index`` as written first, else by number: a label read
    as 1 matches the model's class 01 (or 1.0) when the model has no class 1, as the table readers of older
    versions, which typed every label column, matched them."""
    missing = [k for k in dict.fromkeys(keys) if k not in index]
    if not missing:
        return keys
    by_number: dict[float, str] = {}
    for k in index:
        number = as_number(k)
        if number is not None:
            by_number[number] = k if number not in by_number else None  # two classes of one number: no match
    renamed = {k: by_number.get(as_number(k)) for k in missing if as_number(k) is not None}
    renamed = {k: v for k, v in renamed.items() if v is not None}
    return [renamed.get(k, k) for k in keys] if renamed else keys


def spaced_fallback(keys: list[str], index: dict[str, int]) -> list[str]:
    """Label keys matched to a model's class keys ``index`` apart from spaces and Unicode form, as a spreadsheet
    keeps a stray space or a pasted label a non-breaking one or a decomposed accent: 'Tumour ' matches the class
    'Tumour' (and 'Tumour' the class 'Tumour ', 'Métastase' typed the class 'Métastase' pasted) when the model
    has no class written that way and exactly one class of that text once normalised (``unspaced``)."""
    missing = [k for k in dict.fromkeys(keys) if k not in index]
    if not missing:
        return keys
    by_text: dict[str, str | None] = {}
    for k in index:
        text = unspaced(k)
        by_text[text] = k if text not in by_text else None  # two classes of one text: no match
    renamed = {k: by_text.get(unspaced(k)) for k in missing}
    renamed = {k: v for k, v in renamed.items() if v is not None}
    return [renamed.get(k, k) for k in keys] if renamed else keys


def case_hint(unknown: list[str], index: dict[str, int]) -> str:
    """"; 'tumour' differs from the model's 'Tumour' only in letter case ..." when an unknown label does (and
    matches one class so: two classes of one spelling give no hint)."""
    by_fold: dict[str, str | None] = {}
    for k in index:
        by_fold[spelling_key(k)] = k if spelling_key(k) not in by_fold else None
    pairs = [(k, by_fold[spelling_key(k)]) for k in unknown if by_fold.get(spelling_key(k)) is not None]
    if not pairs:
        return ""
    label, cls = pairs[0]
    more = f" (and {len(pairs) - 1} more)" if len(pairs) > 1 else ""
    return (f"; {label!r} differs from the model's class {cls!r} only in letter case{more}: labels are matched as "
            "written, so write them as the model's")


def as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
