"""Per-class gene rankings from integrated gradients or permutation importance, and their stability.

Integrated gradients: every explained sample is explained toward its own class (its label, or the class
predicted when the table has no labels). For class c, over the samples of class c:

    score      the mean attribution toward c (positive: the gene pushes these samples toward c); genes are
               ranked by it, highest first
    mean_abs   the mean |attribution|
    direction  "up" when higher expression pushes toward c (the attributions' sign agrees with the sign
               of x - baseline, weighted by |attribution|), "down" when lower expression does, "mixed" when
               neither holds for at least MIXED_BELOW of the weight (an interaction: the gene pushes toward c
               when high in some samples and when low in others)
    fraction   the share of those samples whose attribution toward c is positive

Stability: an ensemble's members are explained each alone (its own logit or probability) and ranked the
same way; per class, the mean pairwise overlap of their top-K lists (|A and B| / K) and the mean pairwise
Spearman correlation of their scores over the features the model uses. ``member_overlap`` is the share of
members whose top K holds the gene, and a gene in the top K of fewer than half of them is flagged. A
single network is ranked again on ``bootstrap`` resamples of each class's samples instead. Tied scores share
a rank (1, 2, 2, 4), and a unit's top K holds only genes scoring above 0, every one tied with the K-th
included: genes tied at 0 (most of them, under balanced accuracy) would otherwise be "ranked" by their
names, alike in every unit, and read as a perfectly stable top K.

Permutation importance (Breiman 2001; scikit-learn's ``permutation_importance`` algorithm): a feature's
values are shuffled across the samples ``repeats`` times and the drop of the score is its importance,
per class: with ``scoring="balanced_accuracy"`` the drop of the class's recall (balanced accuracy is the
mean recall, so the mean of these drops is its drop), with ``"log_loss"`` (the default) the rise of the
mean log loss of the class's samples. Balanced accuracy moves in steps of one sample: with hundreds of
genes carrying each subtype's signal, shuffling any single one of them rarely flips a prediction, and most
genes score exactly 0 (on the sample data its top 20 are mostly ties); the log loss sees every change of
the probabilities. Computed
through the first Dense layer: shuffling one feature changes the first layer's outputs by a rank-one term,
so a shuffled feature costs a pass through the small layers only. Honest only on held-out samples; genes
that carry the same signal share their importance (shuffling one leaves the others to carry it).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from ..data.labels import label_key
from ..text import quoted
from ..data.targets import encode_classes
from ..data.labels import as_number
from ..errors import ConfigError, DataError, OptionError
from ..metrics import spearman
from ..model_io import Model
from .attribution import (DEFAULT_STEPS, TargetOutput, attribution_chunks, baseline_values, check_model_output,
                          check_steps, class_index, completeness_gap, default_tol, target_scales)

if TYPE_CHECKING:
    from ..predict.seen import SeenRows

__all__ = ["COLUMNS", "METHODS", "SCORINGS", "Explanation", "Samples", "check_rankable", "explain", "feature_rng",
           "label_indices",
           "load_samples", "rank_features", "permutation_importance"]

COLUMNS = ["class", "rank", "feature", "score", "mean_abs", "direction", "fraction", "member_overlap"]
METHODS = ("ig", "permutation")
SCORINGS = ("log_loss", "balanced_accuracy")
DEFAULT_TOP = 20
_SEEN_ROWS = 4096  # rows fingerprinted at a time by ``load_samples``
# A direction is "up" or "down" when at least this share of the |attribution| agrees with it, else "mixed": on an
# XOR of two genes each gene's direction was right for 60-67 % of the weight toward a class (printed as "up",
# toward both classes); on linear drivers 95-100 %.
MIXED_BELOW = 0.75
DEFAULT_BOOTSTRAP = 20
DEFAULT_REPEATS = 5
_PERM_BYTES = 32 << 20  # first-layer outputs of the shuffled copies handled at a time


def _check_bootstrap(bootstrap: int | None, members: int) -> None:
    """--bootstrap asked of an ensemble: an OptionError, as options of another --method are (the stability of an
    ensemble's rankings is over its members; resamples are for a single network)."""
    if bootstrap is not None and members > 1:
        raise OptionError(f"--bootstrap {bootstrap} is for a single network: the stability of this ensemble's "
                          f"rankings is over its {members} members (leave --bootstrap out)")


@dataclass
class Explanation:
    """What ``explain`` found: the ranking table (COLUMNS, top K per class) and the evidence behind it."""

    method: str
    output: str | None
    baseline: str | None
    steps: int | None
    top: int
    classes: list[str]  # the classes ranked
    n_samples: dict  # class -> samples its ranking averages over
    grouped_by: str  # "label" | "predicted class"
    table: pd.DataFrame
    stability: dict  # class -> {"unit", "n", "top" (the K compared), "mean_overlap", "mean_spearman", "flagged"}
    completeness: dict | None  # {"max_gap", "median_gap", "worst_sample", "worst_class", "tol", "passed"}
    scores: dict = field(default_factory=dict)  # class -> (d,) score of every input feature (for plots)
    notes: list[str] = field(default_factory=list)
    sample_classes: np.ndarray | None = None  # (n,) each sample's class index (label or predicted), for plots
    n_features: int | None = None  # the genes each class's ranking is over: those the model uses, less any filled in

    def to_dict(self) -> dict:
        rows = self.table.replace({np.nan: None}).to_dict(orient="records")
        return {"method": self.method, "output": self.output, "baseline": self.baseline, "steps": self.steps,
                "top": self.top, "n_features": self.n_features, "classes": self.classes, "grouped_by": self.grouped_by,
                "n_samples": self.n_samples, "completeness": self.completeness, "stability": self.stability,
                "rankings": rows, "notes": self.notes}


# ── reading a table ──────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Samples:
    """A table's samples matched to a model with predict's checks (features by name, roles, ids)."""

    X: np.ndarray  # (n, d) raw values in model.feature_names order (unused features NaN)
    ids: np.ndarray  # (n,) the id column, or 1-based rows
    y: np.ndarray | None  # (n,) labels, as the model's class names, when the table has the model's target column
    # (a regression model's: (n, T) values)
    notes: list[str]
    warnings: list[str]
    filled: list[str] = field(default_factory=list)  # features the table lacks, filled with training means
    patients: np.ndarray | None = None  # (n,) the group column (patients) when the table has the model's
    # the rows the model was trained on, recognised by their fingerprints (``predict.seen``); None when the model
    # keeps none or the table lacks features (filled: no row can match)
    seen: "SeenRows | None" = None


def load_samples(model: Model, source, roles=None, fill_missing: str | None = None,
                 max_missing: float | None = None, training_rows: bool = False) -> Samples:
    """Read the table ``source`` (path, "-" or DataFrame; an .h5ad file or a 10x directory: its cells, with
    the matrix and gene names predict would use) whole and match it to ``model`` as predict does; labels
    are read when the target column is there, in the table or its sample sheet (unknown labels are an
    error naming them), as the model's class names: what ``explain`` takes as y, whatever the classes are
    (indices would be read as names for classes 1, 2, 3). ``fill_missing``, ``max_missing``: as for predict.
    ``training_rows``: recognise the rows the model was trained on (``Samples.seen``; what permutation importance
    needs to be honest, a pass over the table that integrated gradients does without)."""
    from ..predict.prepared import prepare
    from ..predict.seen import SeenRows

    from ..predict.columns import TARGET_ADVICE, with_advice

    try:
        prepared = prepare(model, source, roles=roles, fill_missing=fill_missing, max_missing=max_missing, labels=True)
    except DataError as exc:  # explain needs no labels: without them it explains the predicted classes
        raise with_advice(exc, {TARGET_ADVICE: "; explain reads labels only when the table has them (it explains the "
                                               "predicted classes otherwise): name the label column with --target, "
                                               "or leave --target out"}) from None
    name = "the table" if isinstance(source, pd.DataFrame) else source
    if len(prepared.X) == 0:
        raise DataError(f"{name} has a header but no data rows")
    targets, absent = prepared.absent_targets(model)
    if absent:  # read as unlabelled, its labels were dropped without a word (and permutation said "no target")
        raise DataError(f"{name} has {len(targets) - len(absent)} of the model's {len(targets)} target columns "
                        f"({quoted(targets)}) and lacks {quoted(absent)}; explain reads the labels whole: add the "
                        f"missing column{'s' * (len(absent) != 1)}, or --drop the ones it has to explain the "
                        "model's own predictions")
    if prepared.y is None:
        y = None
    elif model.task == "regression":  # the targets' values (n, T), in the model's target order
        y = np.asarray(prepared.y, dtype=np.float64).reshape(len(prepared.X), -1)
    elif model.task == "multilabel":  # (n, L) 0/1, in the model's label order
        y = np.asarray(prepared.y, dtype=np.float64).reshape(len(prepared.X), -1).astype(np.int64)
    else:
        y = np.asarray(model.classes)[prepared.y.reshape(-1).astype(np.int64)]
    notes = [n for n in prepared.notes if not n.startswith("ignored the target column")]
    seen = SeenRows.of(model) if training_rows and not prepared.filled else None
    if seen is not None:  # a block of rows at a time: no second copy of the table
        kept, n = model.preprocessor.kept_index_, len(prepared.X)
        for a in range(0, n, _SEEN_ROWS):
            b = min(a + _SEEN_ROWS, n)
            seen.count(seen.match(prepared.X[a:b][:, kept]), None if not prepared.id_column else prepared.ids[a:b],
                       np.arange(a + 1, b + 1))
    return Samples(prepared.X, prepared.ids, y, notes, list(prepared.warnings), list(prepared.filled),
                   prepared.groups, seen)


# ── ranking ──────────────────────────────────────────────────────────────────────────────────────────────


def check_top(top) -> int:
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ConfigError(f"--top must be a whole number of at least 1, got {top!r}")
    return int(top)


def rank_features(scores: np.ndarray, features: Sequence[str], top: int = DEFAULT_TOP) -> list[int]:
    """Indices of the ``top`` highest scores (d,), ties broken by feature order (deterministic)."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores, dtype=np.float64)))
    return [int(j) for j in order[:min(check_top(top), len(features))]]


def _ranked(scores: np.ndarray, used: np.ndarray) -> np.ndarray:
    """The scores (d,) that can be ranked: those of the genes the model uses that are above 0 (a gene that does
    not push a class's samples toward it, or whose shuffling does not worsen the class's score, is no driver of
    it); -inf for the others (also a NaN)."""
    s = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(used & (s > 0), s, -np.inf)


def _competition_ranks(ranked: np.ndarray) -> np.ndarray:
    """1 + the number of strictly higher scores (d,): tied genes share a rank (1, 2, 2, 4), so a tie never
    reads as an order that feature order made up."""
    ascending = np.sort(ranked)
    return len(ranked) - np.searchsorted(ascending, ranked, side="right") + 1


def _top_set(scores: np.ndarray, used: np.ndarray, k: int) -> set[int]:
    """The genes in one unit's top ``k``: rankable (``_ranked``) and with fewer than k genes scoring higher, so
    every gene tied with the k-th is in (feature order must not decide which of them a unit "prefers")."""
    ranked = _ranked(scores, used)
    return {int(j) for j in np.flatnonzero(np.isfinite(ranked) & (_competition_ranks(ranked) <= k))}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two units' scores (NaN when either is constant)."""
    rho = spearman(a, b) if np.ptp(a) > 0 and np.ptp(b) > 0 else None
    return float("nan") if rho is None else rho


def _stability(unit_scores: np.ndarray, used: np.ndarray, features: Sequence[str], top: int, unit: str,
               max_pairs: int = 500, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Stability of one class's ranking over units (members or resamples): unit_scores (U, d). Returns the
    summary and each feature's share of units whose top K holds it (d,)."""
    U = unit_scores.shape[0]
    # a top K of the genes the model uses only: with --top beyond them (constant genes, --top-var) the
    # unused ones (at -inf) would fill every unit's list, and the overlap would exceed 1; and of genes scoring
    # above 0, tied ones together: genes tied at 0 (most of them under balanced accuracy) were "ranked" by
    # feature order, the same in every unit, and read as a perfectly stable top K
    k = min(top, int(used.sum()))
    tops = [_top_set(s, used, k) for s in unit_scores]
    counts = np.zeros(unit_scores.shape[1])
    for t in tops:
        counts[list(t)] += 1.0
    share = counts / U  # counted, then divided: 3 of 5 is 0.6, not a sum of fifths
    pairs = list(combinations(range(U), 2))
    if len(pairs) > max_pairs:
        rng = np.random.default_rng(seed)
        pairs = [pairs[i] for i in rng.choice(len(pairs), max_pairs, replace=False)]
    # over the longer of the two lists: K, unless ties at the K-th place lengthen one or few genes score above 0
    overlap = [len(tops[a] & tops[b]) / max(len(tops[a]), len(tops[b])) for a, b in pairs if tops[a] or tops[b]]
    rho = [_spearman(unit_scores[a, used], unit_scores[b, used]) for a, b in pairs] if pairs else []
    rho = [r for r in rho if np.isfinite(r)]
    return ({"unit": unit, "n": int(U), "top": k, "mean_overlap": float(np.mean(overlap)) if overlap else None,
             "mean_spearman": float(np.mean(rho)) if rho else None}, share)


def _direction(direction: float, agreement: np.ndarray | None, j: int) -> str:
    """"up" / "down" by the sign of ``direction``, or "mixed" when ``agreement`` (d,) (the share of the |attribution|
    whose sign agrees with ``direction``'s; None: not measured) is below MIXED_BELOW."""
    if agreement is not None and not agreement[j] >= MIXED_BELOW:
        return "mixed"
    return "up" if direction >= 0 else "down"


def _agreement(signed_sum: np.ndarray, abs_sum: np.ndarray) -> np.ndarray:
    """(d,) the share of the |attribution| whose sign (times that of x - baseline) agrees with the majority's: from
    the sum of the signed attributions and the sum of their absolute values, (1 + |signed| / abs) / 2 (1 where a
    gene has no attribution at all)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(abs_sum > 0, np.abs(signed_sum) / abs_sum, 1.0)
    return (1.0 + np.minimum(ratio, 1.0)) / 2.0


def _table_rows(name: str, scores: np.ndarray, mean_abs: np.ndarray, direction: np.ndarray | None,
                fraction: np.ndarray, share: np.ndarray | None, used: np.ndarray, features: Sequence[str],
                top: int, agreement: np.ndarray | None = None) -> list[dict]:
    """The class's table rows: the ``top`` genes of those the model uses, highest score first; tied genes
    share a rank (genes tied at 0 are not ordered by their names). ``agreement`` (d,): how far the direction
    holds (``_agreement``), "mixed" below MIXED_BELOW."""
    rows = []
    scores = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ranked = np.where(used & ~np.isnan(scores), scores, -np.inf)
    ranks = _competition_ranks(ranked)
    order = rank_features(ranked, features, top)
    for j in order[:int(used.sum())]:
        rows.append({"class": name, "rank": int(ranks[j]), "feature": features[j], "score": float(scores[j]),
                     "mean_abs": float(mean_abs[j]),
                     "direction": "" if direction is None else _direction(direction[j], agreement, j),
                     "fraction": float(fraction[j]),
                     "member_overlap": float(share[j]) if share is not None else float("nan")})
    return rows


# ── integrated gradients ─────────────────────────────────────────────────────────────────────────────────


def _record(name: str, table_rows: list[dict], summary: dict, rows: list, stability: dict, short: dict) -> None:
    """Add one class's (label's, target's) ranking to the explanation being built: its rows, its stability summary
    with the genes in the top K of fewer than half the members or resamples flagged (none without them: the overlap
    is NaN), and, in ``short``, how many of its genes score above 0 when fewer than the rows shown."""
    summary["flagged"] = [r["feature"] for r in table_rows if r["member_overlap"] < 0.5]
    stability[name] = summary
    rows += table_rows
    positive = sum(r["score"] > 0 for r in table_rows)
    if positive < len(table_rows):
        short[name] = positive


def _integers_name_classes(model: Model) -> bool:
    """Whether an integer label can name a class of ``model``: a number (1, 1.0, or "01", which evaluate matches
    to the label 1) or a boolean (1 == True)."""
    return any(isinstance(c, (bool, np.bool_)) or as_number(label_key(c)) is not None for c in model.classes)


def label_indices(model: Model, y, n: int) -> np.ndarray | None:
    """Labels ``y`` (n,) as the model's class indices (n,) int64; None stays None.

    Labels are the classes' names, matched as evaluate matches a table's labels (``encode_classes``, the
    ``classes=`` path of data reading: 1, 1.0 and "1" name the class 1). Integers are class indices
    (``model.classes`` order) only for a model whose classes no integer can name, such as "LumA": for the
    classes 1, 2, 3 (or a binary 1, 0 reordered by --positive) the label 1 is the class 1, never the index 1.
    A DataError when there are not n labels or one is not a class of the model."""
    if y is None:
        return None
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise DataError(f"y has {len(y)} labels for {n} samples")
    if y.dtype.kind in "iu" and not _integers_name_classes(model):
        bad = (y < 0) | (y >= len(model.classes))
        if bad.any():
            raise DataError(f"label {y[bad][0]} is not a class index of the model (0 to {len(model.classes) - 1}); "
                            "give class indices or the classes' names")
        return y.astype(np.int64)
    return encode_classes(pd.Series(y), "y", model.task, model.classes, [])[0]


def _groups(model: Model, X: np.ndarray, y: np.ndarray | None, features) -> tuple[np.ndarray, str]:
    """Each sample's class (n,): its label, or the predicted class (by the model's decision rule, as predict labels
    it); a multi-label model's (n, L) 0/1: the labels, or the predicted ones (by its rule, as predict calls them)."""
    if model.task == "multilabel":
        if y is not None:
            return np.asarray(y, dtype=np.int64), "label"
        P = model.predict_output(X, features=list(features) if features is not None else None)
        return model.predict_classes(P), "predicted label"
    if y is not None:
        return np.asarray(y, dtype=np.int64).reshape(-1), "label"
    P = model.predict_output(X, features=list(features) if features is not None else None)
    return model.predict_classes(P), "predicted class"


def check_rankable(model: Model) -> None:
    """An OptionError unless ``explain`` can rank genes for ``model`` (per class of a binary or multiclass model,
    per label of a multi-label model, per target of a regression model): one message and one exit code whatever
    the other task; the command line asks before reading any data."""
    if model.task not in ("binary", "multiclass", "multilabel", "regression"):
        raise OptionError(f"explain ranks genes per class of a binary, multiclass or multi-label model, or per "
                          f"target of a regression model; this model is {model.task}")


def label_matrix(model: Model, y, n: int) -> np.ndarray | None:
    """A multi-label model's labels ``y`` as (n, L) int64 0/1 in the model's label order (``model.classes``); a
    DataFrame's columns are matched by name. None stays None. A DataError names what does not fit: the shape, a
    missing label column, a value other than 0 and 1 (true / false count as 1 / 0)."""
    if y is None:
        return None
    names = [str(c) for c in model.classes]
    if isinstance(y, pd.DataFrame):
        missing = [c for c in names if c not in set(map(str, y.columns))]
        if missing:
            raise DataError(f"y lacks the label column{'s' * (len(missing) > 1)} {quoted(missing, 10)} of the "
                            "multi-label model")
        y = y.rename(columns=str)[names]
    try:
        Y = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"y must hold 0/1 values, one column per label ({quoted(names, 10)}): {exc}") from None
    if Y.shape != (n, len(names)):
        raise DataError(f"y has shape {Y.shape} for {n} samples; expected ({n}, {len(names)}): one 0/1 column per "
                        f"label ({quoted(names, 10)})")
    bad = ~np.isin(Y, (0.0, 1.0))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"label {names[j]} of sample {i + 1} is {float(Y[i, j]):g}; a multi-label model's labels are 0 or 1")
    return Y.astype(np.int64)


def _bootstrap_means(R: np.ndarray, units: list | None, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, d) column means of R (n, d) over bootstrap resamples of its rows, or of whole ``units`` (lists of
    row indices: a patient's samples share the patient's signal, and resampled apart would pass for agreement)."""
    if units is None:
        n = len(R)
        return np.stack([R[rng.integers(0, n, n)].mean(axis=0) for _ in range(n_boot)])
    return np.stack([R[np.concatenate([units[g] for g in rng.integers(0, len(units), len(units))])].mean(axis=0)
                     for _ in range(n_boot)])


def _binary_default(model: Model, y: np.ndarray | None, groups: np.ndarray | None) -> tuple[list[int], list[str]]:
    """The class a binary model is ranked for when --class does not say: its positive class (the one predict's
    probability, --threshold and the metrics refer to), or the other when no sample is of it. Both would be
    one ranking twice: a sample's attribution toward one class is minus its attribution toward the other, so
    the two tables list the same genes with opposite directions."""
    names = [str(c) for c in model.classes]
    which = y if y is not None else groups
    pos, neg = len(names) - 1, 0
    if which is not None and not (np.asarray(which) == pos).any() and (np.asarray(which) == neg).any():
        return [neg], [f"binary model: ranked for {names[neg]}, since no sample is of its positive class "
                       f"{names[pos]}"]
    return [pos], [f"binary model: ranked for its positive class {names[pos]} alone (a ranking for {names[neg]} "
                   f"lists the same genes pushing the other way; --class {names[neg]} ranks it, or both with "
                   f"--class {names[neg]} --class {names[pos]})"]


def _no_sample_error(names: list[str], wanted: list[int], grouped_by: str, multilabel: bool = False) -> DataError:
    shown = ", ".join(names[c] for c in wanted)
    if multilabel:
        return DataError(f"no sample is positive for the label{'s' * (len(wanted) > 1)} ranked ({shown}) by "
                         f"{grouped_by}")
    return DataError(f"no sample is of the class{'es' * (len(wanted) > 1)} ranked ({shown}) by {grouped_by}")


def _unranked_note(names: list[str], absent: list[int], grouped_by: str, multilabel: bool = False) -> list[str]:
    """A note naming the classes (labels) asked for that no sample has (is positive for): they get no ranking
    (an empty table would read as a class no gene drives)."""
    if not absent:
        return []
    shown = ", ".join(names[c] for c in absent)
    if multilabel:
        return [f"not ranked: no sample is positive for label{'s' * (len(absent) > 1)} {shown} (by {grouped_by})"]
    return [f"not ranked: no sample is of class{'es' * (len(absent) > 1)} {shown} (by {grouped_by})"]


def _resampling_units(patients: Sequence | None, rows: np.ndarray) -> list[np.ndarray] | None:
    """The positions in ``rows`` (a class's samples, as rows of X) of each patient's samples, when ``patients``
    is given and some patient has several of them; else None (samples are resampled one by one)."""
    if patients is None:
        return None
    keys = np.asarray([str(p) for p in np.asarray(patients, dtype=object)[rows]])
    _, inverse = np.unique(keys, return_inverse=True)
    if inverse.max(initial=-1) + 1 == len(rows):  # one sample each: resampling samples is resampling patients
        return None
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)


def _short_note(short: dict[str, int], top: int, method: str) -> list[str]:
    """A note naming the classes whose top genes include some scoring 0 or below (``short``: class -> genes
    above 0): they are in the table because --top asked for that many, not because they drive the class."""
    if not short:
        return []
    shown = ", ".join(f"{name} {n}" for name, n in short.items())
    why = ("do not push the class's samples toward it (mean attribution 0 or below)" if method == "ig" else
           "do not worsen the class's score when shuffled (a drop of 0 or below)")
    return [f"fewer than --top {top} genes score above 0 ({shown}): the genes ranked below them {why}, tied ones "
            "share a rank, and no member's (or resample's) top K counts them"]


CORRELATED = 0.9  # |Spearman| at which two of a class's top genes are one signal to the reader
# ... judged on at least this many samples: on 5, independent genes reach |Spearman| >= 0.9 one pair in twelve by
# chance (on 3, a third of them), and a rare class's ranking named a dozen unrelated pairs "one signal"; on 20,
# about one pair in ten million
CORRELATED_MIN_SAMPLES = 20


def _correlated_note(X: np.ndarray, feats: Sequence[str], table: pd.DataFrame, method: str,
                     most: int = 5) -> list[str]:
    """A note naming pairs of genes in one class's ranking whose values are nearly interchangeable over the
    samples (|Spearman| >= CORRELATED, X (n, d)): the network may lean on either, so how their attribution
    (or permutation importance) splits between them says nothing about which one matters; read them as one
    signal. Spearman: log1p and scaling are monotone, so the pairs are the same in raw and network units."""
    if len(X) < CORRELATED_MIN_SAMPLES or table.empty:
        return []
    where = {f: j for j, f in enumerate(feats)}
    names = list(dict.fromkeys(table["feature"]))
    # (g, g) over the ranked genes only; pandas: pairwise complete, NaN for a constant gene
    R = pd.DataFrame(X[:, [where[f] for f in names]]).corr(method="spearman", min_periods=3).to_numpy()
    rho = {(names[a], names[b]): float(R[a, b]) for a, b in combinations(range(len(names)), 2)
           if np.isfinite(R[a, b]) and abs(R[a, b]) >= CORRELATED}
    pairs = []
    for _, genes in table.groupby("class", sort=False)["feature"]:
        for a, b in combinations(list(genes), 2):
            r = rho.get((a, b), rho.get((b, a)))
            if r is not None and (a, b, r) not in pairs and (b, a, r) not in pairs:
                pairs.append((a, b, r))
    if not pairs:
        return []
    shown = ", ".join(f"{a} ~ {b} ({r:+.2f})" for a, b, r in pairs[:most]) + (
        f" and {len(pairs) - most} more" if len(pairs) > most else "")
    what = "attribution" if method == "ig" else "importance"
    return [f"correlated genes ranked for one class (|Spearman| >= {CORRELATED} over these samples): {shown}; the "
            f"network may lean on either, so how the {what} splits between them is arbitrary: read each pair as "
            "one signal"]


def _filled_note(unranked: list[str]) -> list[str]:
    if not unranked:
        return []
    return [f"not ranked: {quoted(unranked, 10)}, absent from the table or without a value in it (filled with "
            "training means, or imputed)"]


def explain(model: Model, X: np.ndarray, y: np.ndarray | None = None, *, features: Sequence[str] | None = None,
            ids: Sequence | None = None, method: str = "ig", classes: Sequence | None = None,
            output: str = "logit", baseline: str = "mean", steps: int = DEFAULT_STEPS, top: int = DEFAULT_TOP,
            bootstrap: int | None = None, repeats: int = DEFAULT_REPEATS, scoring: str = "log_loss",
            tol: float | None = None, seed: int = 0, absent: Sequence[str] = (),
            patients: Sequence | None = None, progress: Callable[[int, int], None] | None = None) -> Explanation:
    """Per-class rankings of the input features for raw rows X (n, d) (columns ``model.feature_names``, or
    ``features``; a DataFrame's columns by name), with labels y (n,): the classes' names, or class indices for a
    model whose classes are not numbers (``label_indices``; None: each sample counts for its predicted class); a
    multi-label model's (n, L) 0/1 (``label_matrix``): each label is ranked over the samples positive for it
    (None: predicted by the model's decision rule), toward that label's output, and permutation importance is the
    label's score over every sample (its balanced accuracy at the rule's threshold, or its mean binary log loss).

    method "ig": integrated gradients (``attribution``); every sample explained toward its class, the
    completeness gap checked against ``tol`` (default 1e-3 for float64 networks, 1e-2 for float32; rows
    beyond it are integrated again with up to 16 x the steps before the check), the
    ranking's stability over the members (an ensemble) or ``bootstrap`` resamples (one network, default
    20). method "permutation": permutation importance, which needs y. ``classes``: rank only these.
    ``absent``: features the samples lack, filled with their training means (``Samples.filled``): explained,
    but not ranked. ``patients`` (n,): the patient (group) of each sample (``Samples.patients``): the bootstrap
    resamples whole patients within each class, since samples of one patient are not independent evidence.
    ``progress(done, total)``: permutation importance's features shuffled so far, after each batch of them."""
    check_rankable(model)
    if method not in METHODS:
        raise ConfigError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    top = check_top(top)
    X, features = model.inputs(X, features)  # a DataFrame: its columns by name
    feats = list(model.feature_names) if features is None else [str(f) for f in features]
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(feats):
        raise DataError(f"X has shape {X.shape}; expected {len(feats)} feature columns")
    if X.shape[0] == 0:
        raise DataError("no samples to explain")
    regression, multilabel = model.task == "regression", model.task == "multilabel"
    labels, y = y, (_target_values(model, y, X.shape[0]) if regression else
                    label_matrix(model, y, X.shape[0]) if multilabel else label_indices(model, y, X.shape[0]))
    wanted = list(range(len(model.classes))) if classes is None else sorted({class_index(model, c) for c in classes})
    binary_default = model.task == "binary" and classes is None
    used = np.isin(feats, list(set().union(*(m.preprocessor.kept_features for m in model.members))))
    # a filled-in feature holds one made-up value in every sample: its score (0 from the mean baseline) would
    # rank it among the genes that drive a class, "up" and stable across members
    unranked = [str(f) for f in absent if str(f) in set(feats)]
    used &= ~np.isin(feats, unranked)
    if not used.any():
        raise DataError("every feature the model uses was filled in (absent from the table): nothing to rank")
    if method == "permutation":
        if y is None:
            raise ConfigError("--method permutation needs labelled samples (the table has no target column); "
                              "use --method ig for unlabelled data")
        if scoring not in SCORINGS:
            raise ConfigError(f"--scoring {scoring!r} is not one of {', '.join(SCORINGS)}")
        extra = []
        if regression:
            if scoring != "log_loss":  # the default, which stands for "the task's loss"
                raise OptionError(f"--scoring {scoring} is for classification models; a regression model's "
                                  "permutation importance is the rise of each target's RMSE")
            result = _permutation_regression(model, X, y, feats, used, wanted, top, repeats, seed, progress)
        else:
            if binary_default:
                wanted, extra = _binary_default(model, y, None)
            result = _permutation(model, X, labels, y, feats, used, wanted, top, repeats, seed, scoring, progress)
        result.notes = extra + result.notes
        result.notes += _filled_note(unranked) + _correlated_note(X, feats, result.table, "permutation")
        return result
    check_model_output(model, output)
    steps = check_steps(steps)
    if bootstrap is not None and (isinstance(bootstrap, bool) or int(bootstrap) < 2):
        raise ConfigError(f"--bootstrap must be at least 2 resamples, got {bootstrap!r}")
    if patients is not None and len(patients) != X.shape[0]:
        raise DataError(f"patients has {len(patients)} values for {X.shape[0]} samples; give each sample its patient")
    if regression:
        result = _ig_regression(model, X, feats, features, used, wanted, top, baseline, steps, bootstrap, tol, seed,
                                ids, patients)
        result.notes = _filled_note(unranked) + result.notes
        return result
    groups, grouped_by = _groups(model, X, y, features)
    extra = []
    if binary_default:
        wanted, extra = _binary_default(model, None, groups)
    names = [str(c) for c in model.classes]
    # the passes of attribution: (rows of X, the class each is explained toward). A multi-label sample is
    # explained toward every label it is positive for, one pass per label
    if multilabel:
        rows_of = {c: np.flatnonzero(groups[:, c] == 1) for c in wanted}
        explained = np.flatnonzero(groups[:, wanted].any(axis=1))
        passes = [(rows_of[c], np.full(len(rows_of[c]), c, dtype=np.int64)) for c in wanted if len(rows_of[c])]
    else:
        rows_of = {c: np.flatnonzero(groups == c) for c in wanted}
        explained = np.flatnonzero(np.isin(groups, wanted))
        passes = [(explained, groups[explained])]
    if explained.size == 0:
        raise _no_sample_error(names, wanted, grouped_by, multilabel)
    M = len(model.members)
    single = M == 1
    _check_bootstrap(bootstrap, M)
    n_boot = (DEFAULT_BOOTSTRAP if bootstrap is None else int(bootstrap)) if single else 0
    by_patient = False
    d = X.shape[1]
    b = baseline_values(model, baseline)
    if features is not None:
        position = {name: j for j, name in enumerate(model.feature_names)}
        b = np.array([b[position[f]] for f in feats])
    sums, abs_sums, pos, dirs = (np.zeros((len(model.classes), d)) for _ in range(4))
    member_sums = np.zeros((M, len(model.classes), d)) if not single else None
    kept_rows = {c: [] for c in wanted} if single else None
    kept_at = {c: [] for c in wanted} if single else None  # the rows of X those attributions are of
    gaps, gap_rows, gap_classes = [], [], []
    tol = default_tol(model) if tol is None else float(tol)
    most_steps = steps
    for rows_p, classes_p in passes:
        Xe = X if np.array_equal(rows_p, np.arange(len(X))) else X[rows_p]  # (every row, in order: no copy)
        for chunk in attribution_chunks(model, Xe, classes_p[None], baseline=b, steps=steps, output=output,
                                        per_member=not single, features=feats, refine=tol):
            most_steps = max(most_steps, int(chunk.steps.max()))
            A = chunk.values[0]  # (c, d) each row toward its own class
            t = classes_p[chunk.rows]
            gaps.append(completeness_gap(A, chunk.fx[0], chunk.fb[0]))
            gap_rows.append(rows_p[chunk.rows])
            gap_classes.append(t)
            with np.errstate(invalid="ignore"):
                sign = np.nan_to_num(np.sign(Xe[chunk.rows] - b))
            for c in np.unique(t):
                r = t == c
                sums[c] += A[r].sum(axis=0)
                abs_sums[c] += np.abs(A[r]).sum(axis=0)
                pos[c] += (A[r] > 0).sum(axis=0)
                dirs[c] += (A[r] * sign[r]).sum(axis=0)
                if single:
                    kept_rows[c].append(A[r].astype(np.float32))
                    kept_at[c].append(rows_p[chunk.rows][r])
                else:
                    member_sums[:, c] += chunk.members[:, 0][:, r].sum(axis=1)
    gaps, gap_rows, gap_classes = (np.concatenate(a) for a in (gaps, gap_rows, gap_classes))
    worst = int(np.argmax(gaps))
    completeness = {"max_gap": float(gaps.max()), "median_gap": float(np.median(gaps)),
                    "worst_sample": (ids[gap_rows[worst]] if ids is not None else int(gap_rows[worst]) + 1),
                    "worst_class": names[int(gap_classes[worst])], "tol": tol, "passed": bool(gaps.max() <= tol),
                    "steps": steps, "most_steps": most_steps, "samples": int(explained.size)}
    if hasattr(completeness["worst_sample"], "item"):
        completeness["worst_sample"] = completeness["worst_sample"].item()
    rows, stability, scores, short, alone = [], {}, {}, {}, {}
    for c in wanted:
        n_c = len(rows_of[c])
        if n_c == 0:
            continue
        score = sums[c] / n_c
        scores[names[c]] = score
        units = _resampling_units(patients, np.concatenate(kept_at[c])) if single else None
        if single and (n_c if units is None else len(units)) < 2:
            # every resample of one patient (or one sample) is that patient again: "overlap 1.00, Spearman 1.00",
            # a perfectly stable ranking, from a single piece of evidence
            alone[names[c]] = "sample" if units is None else "patient"
            summary, share = {"unit": "bootstrap resample", "n": 0, "top": None, "mean_overlap": None,
                              "mean_spearman": None}, None
        elif single:
            # the class's own resamples (seed and class): its stability does not depend on which other
            # classes --class ranks alongside it
            rng = np.random.default_rng([seed, c])
            boot = _bootstrap_means(np.concatenate(kept_rows[c]).astype(np.float64), units, n_boot, rng)
            by_patient = by_patient or units is not None
            summary, share = _stability(boot, used, feats, top, "bootstrap resample", seed=seed)
        else:
            summary, share = _stability(member_sums[:, c] / n_c, used, feats, top, "member", seed=seed)
        table_rows = _table_rows(names[c], score, abs_sums[c] / n_c, dirs[c], pos[c] / n_c, share, used, feats, top,
                                 _agreement(dirs[c], abs_sums[c]))
        _record(names[c], table_rows, summary, rows, stability, short)
    table = pd.DataFrame(rows, columns=COLUMNS)
    notes = extra + _filled_note(unranked) + _short_note(short, top, "ig") + _correlated_note(
        X[explained], feats, table[table["score"] > 0], "ig")
    if alone:
        notes.append("no stability for " + ", ".join(f"{name} (one {unit})" for name, unit in alone.items())
                     + ": every bootstrap resample of a class's only patient or sample is that one again, which "
                       "would read as a perfectly stable ranking; its genes rest on that one alone")
    if multilabel:
        notes.insert(0, f"multi-label: each label ranked over the samples positive for it ("
                        f"{'their labels' if grouped_by == 'label' else 'as predict calls them'}), toward "
                        "that label's output; a sample positive for several labels is explained toward each")
    if by_patient:
        notes.append(f"bootstrap: whole patients resampled within each {'label' if multilabel else 'class'} "
                     "(several samples of one patient are one piece of evidence)")
    if grouped_by != "label" and not multilabel:
        notes.append("no labels: each sample counts for the class the model predicts for it")
    ranked = [c for c in wanted if len(rows_of[c])]
    notes += _unranked_note(names, [c for c in wanted if c not in ranked], grouped_by, multilabel)
    return Explanation("ig", output, baseline if isinstance(baseline, str) else "given", steps, top,
                       [names[c] for c in ranked], {names[c]: int(len(rows_of[c])) for c in wanted}, grouped_by,
                       table, stability, completeness, scores, notes, None if multilabel else groups,
                       int(used.sum()))


# ── permutation importance ───────────────────────────────────────────────────────────────────────────────


def _recalls(pred: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class recall (..., k) of predictions pred (..., n) against y (n,); NaN for absent classes."""
    support = np.bincount(y, minlength=n_classes).astype(np.float64)
    hits = np.stack([((pred == c) & (y == c)).sum(axis=-1) for c in range(n_classes)], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, hits / support, np.nan)


def _softmax0(Z: np.ndarray) -> np.ndarray:
    """Softmax over the first axis (the classes): a reduction over a short last axis is ten times slower."""
    E = np.exp(Z - Z.max(axis=0))
    E /= E.sum(axis=0)
    return E


def _probabilities_cm(out_fn: TargetOutput, logit_sets: list[np.ndarray]) -> np.ndarray:
    """The model's probabilities, class-major (k, ...), from each member's logits (k, ...): the members'
    mean probability calibrated as ``calibration.temper`` does it, and recalibrated for a population as
    ``Model.recalibrated`` does it (so, as predict gives them)."""
    from ..engine.functional import sigmoid

    soft = out_fn.link == "softmax"
    P = np.mean([_softmax0(Z) if soft else sigmoid(Z) for Z in logit_sets], axis=0)
    T = out_fn.T
    if out_fn.intercept is not None:  # temperature and update together: link(s g(P) + a), s = slope / T
        column = [-1] + [1] * (P.ndim - 1)  # along the first (class-major) axis
        a = out_fn.intercept.reshape(column)
        if soft:
            return _softmax0(out_fn.slope * np.log(np.clip(P, 1e-12, 1.0)) + a)
        Q = np.clip(P, 1e-12, 1 - 1e-12)
        s = np.asarray(out_fn.slope, dtype=np.float64).reshape(column) if np.ndim(out_fn.slope) else out_fn.slope
        return sigmoid(s * (np.log(Q) - np.log1p(-Q)) + (a if out_fn.per_label else a[-1]))
    if T is None:
        return P
    if soft:
        return _softmax0(np.log(np.clip(P, 1e-12, 1.0)) / T)
    if np.ndim(T) == 1:  # a multi-label model's, one per label: along the first (class-major) axis
        T = np.asarray(T, dtype=np.float64).reshape(-1, *[1] * (P.ndim - 1))
    Q = np.clip(P, 1e-12, 1 - 1e-12)
    return sigmoid((np.log(Q) - np.log1p(-Q)) / T)


def _class_scores(model: Model, P: np.ndarray, y: np.ndarray, scoring: str) -> np.ndarray:
    """Per-class score (..., k), higher is better, of class-major probabilities P (k_out, ..., n): the class's
    recall with the labels the model's decision rule gives (``Model.decider``, as ``predict`` and ``evaluate``
    label: under the balanced rule a rare class's recall, and the drop a gene's shuffle makes in it, were those of
    argmax, about half) — balanced accuracy is their mean — or minus the mean log loss of its samples (log loss is
    their sample-weighted mean)."""
    k = len(model.classes)
    if scoring == "balanced_accuracy":
        # the model's own rule (``Decision.classes``) on the rows (n', k), n' every shuffle's samples
        rows = np.moveaxis(P, 0, -1).reshape(-1, P.shape[0])
        pred = model.predict_classes(rows[:, -1] if model.task == "binary" else rows).reshape(P.shape[1:])
        return _recalls(pred, y, k)
    if P.shape[0] == 1:  # binary sigmoid: P(positive)
        p_true = np.where(y == 1, P[0], 1.0 - P[0])
    else:
        p_true = np.take_along_axis(P, np.broadcast_to(y, (1, *P.shape[1:])), axis=0)[0]
    logp = np.log(np.clip(p_true, 1e-15, 1.0))
    support = np.bincount(y, minlength=k).astype(np.float64)
    sums = np.stack([logp[..., y == c].sum(axis=-1) for c in range(k)], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, sums / support, np.nan)


def _label_scores(model: Model, P: np.ndarray, Y: np.ndarray, scoring: str) -> np.ndarray:
    """Per-label score (..., L), higher is better, of label-major probabilities P (L, ..., n) against Y (n, L) 0/1:
    the label's balanced accuracy at the threshold of the model's decision rule (the mean of its positives' and
    negatives' recall; NaN without one or the other; the multi-label balanced accuracy is their mean), or minus its
    mean binary log loss over every sample (the multi-label log loss is their mean)."""
    Y = Y.T.reshape(Y.shape[1], *[1] * (P.ndim - 2), Y.shape[0]).astype(bool)  # (L, 1.., n)
    if scoring == "balanced_accuracy":
        threshold = np.broadcast_to(np.asarray(model.decider.threshold(model.task), dtype=np.float64), (len(Y),))
        pred = P >= threshold.reshape(-1, *[1] * (P.ndim - 1))
        n_pos, n_neg = Y.sum(axis=-1), (~Y).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = ((pred & Y).sum(axis=-1) / n_pos + (~pred & ~Y).sum(axis=-1) / n_neg) / 2
        score = np.where((n_pos > 0) & (n_neg > 0), score, np.nan)
    else:
        score = np.mean(np.log(np.clip(np.where(Y, P, 1.0 - P), 1e-15, 1.0)), axis=-1)
    return np.moveaxis(score, 0, -1)


def feature_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of a feature's shuffles in ``permutation_importance``: seeded by ``seed`` and the feature's
    name (CRC-32 of its UTF-8 text), so a table with its columns in another order gets the same importances."""
    return np.random.default_rng([int(seed), zlib.crc32(str(name).encode("utf-8"))])


class _Shuffles:
    """Each member's raw outputs with one feature shuffled at a time, ``repeats`` times, computed through the
    first Dense layer (a shuffled feature changes its outputs by a rank-one term). Iterating gives, per batch
    of features J (their columns of X), every member's outputs (k, len(J), repeats, n), class-major, and its
    unshuffled outputs (k, 1, repeats, n) computed in the same matrix products: a float32 product rounds a row
    by the batch it is in (one sample alone against five shuffles of it), and an unshuffled output from another
    batch gave every gene the same spurious drop (2.5e-08, "every shuffle raised the loss")."""

    def __init__(self, model: Model, X: np.ndarray, feats: list[str], features, repeats: int, seed: int):
        n, d = X.shape
        column_maps = model._feature_maps(None if features is None else feats)[0]
        self.states = []  # per member: (network, Z, first layer's outputs, feature -> input column)
        for member, cols in zip(model.members, column_maps):
            pre, net = member.preprocessor, member.network
            cols = np.asarray(pre.kept_index_ if cols is None else cols, dtype=np.int64)
            Z = np.ascontiguousarray(pre.transform_kept(np.take(X, cols, axis=1), dtype=net.dtype))
            a0 = net.forward_layers(Z, 0, 1)
            local = {int(j): i for i, j in enumerate(cols)}
            self.states.append((net, Z, a0, local))  # the unshuffled outputs come with each batch (__iter__)
        self.used = [j for j in range(d) if any(j in s[3] for s in self.states)]
        # the current batch's shuffles, drawn as it comes (``_draw``): all of them at once were features x repeats x
        # n int64, 0.96 GB for 60,000 genes of 400 samples before a single product
        self.perms: dict[int, np.ndarray] = {}
        self.feats, self.seed = feats, seed
        self.n, self.repeats = n, repeats

    def _draw(self, J: list[int]) -> None:
        """(repeats, n) row orders of each feature of J, from the feature's own generator (``feature_rng``): the
        same shuffles whatever the columns' order or the batching."""
        self.perms = {}
        for j in J:
            rng = feature_rng(self.seed, self.feats[j])
            self.perms[j] = np.stack([rng.permutation(self.n) for _ in range(self.repeats)])

    def shift(self, j: int) -> np.ndarray:
        """(repeats, n) the change of feature j's network input (the first member that reads it) when shuffled;
        j of the batch just yielded."""
        for _, Z, _, local in self.states:
            if j in local:
                i = local[j]
                return (Z[self.perms[j], i] - Z[:, i]).astype(np.float64)
        return np.zeros((self.repeats, self.n))

    def __iter__(self):
        n, repeats = self.n, self.repeats
        h = max(s[2].shape[1] for s in self.states)
        batch = max(1, _PERM_BYTES // max(1, repeats * n * h * 8))
        for s in range(0, len(self.used), batch):
            J = self.used[s:s + batch]
            self._draw(J)
            logit_sets = []
            base_sets = []
            for net, Z, a0, local in self.states:
                W0 = net.parameters()["dense0.W"]
                k_out = net.n_outputs
                mine = [(q, local[j]) for q, j in enumerate(J) if j in local]
                # slot 0 unshuffled, then one slot per feature of J this member reads: one product for all
                A = np.empty((len(mine) + 1, repeats, n, a0.shape[1]), dtype=a0.dtype)
                A[0] = a0
                unmoved = np.empty((len(mine), repeats, n), dtype=bool)  # a shuffle that left the input as it was
                for slot, (q, i) in enumerate(mine, start=1):
                    shuffled = Z[self.perms[J[q]], i] - Z[:, i]  # (repeats, n): feature J[q] shuffled
                    A[slot] = a0 + shuffled[..., None] * W0[:, i]  # the first layer's rank-one change
                    unmoved[slot - 1] = shuffled == 0
                logits = net.forward_layers(A.reshape(-1, a0.shape[1]), 1).astype(np.float64)
                logits = logits.T.reshape(k_out, len(mine) + 1, repeats, n)
                # an unmoved input gives the unshuffled outputs exactly: the product's rounding can still differ
                # by a row's place in it (the last rows take other kernels), a drop of ~1e-9 for nothing
                moved = logits[:, 1:]
                moved[:, unmoved] = np.broadcast_to(logits[:, :1], moved.shape)[:, unmoved]
                out = np.empty((k_out, len(J), repeats, n))  # class-major
                out[...] = logits[:, :1]  # a feature this member does not read: its outputs unchanged
                if mine:
                    out[:, [q for q, _ in mine]] = logits[:, 1:]
                logit_sets.append(out)
                base_sets.append(logits[:, :1])
            yield J, logit_sets, base_sets


def permutation_importance(model: Model, X: np.ndarray, y: np.ndarray, *, features: Sequence[str] | None = None,
                           repeats: int = DEFAULT_REPEATS, seed: int = 0, scoring: str = "log_loss",
                           members: bool = False,
                           progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Each class's score drop when a feature is shuffled: (repeats, d, k) for the model (and
    (M, repeats, d, k) for each member alone with ``members``). scoring "balanced_accuracy": the drop of the
    class's recall (their mean over classes is the drop of balanced accuracy, scikit-learn's
    ``permutation_importance`` with that scoring); "log_loss": the rise of the class's samples' mean log
    loss (their sample-weighted mean is the rise of the log loss, ``scoring="neg_log_loss"``). X (n, d) and
    the labels y (n,) as ``explain`` takes them.

    A regression model: each target's rise of RMSE (in the target's units) when a feature is shuffled, k its
    targets, y (n,) or (n, k) the true values. ``progress(done, total)``: features shuffled so far, after each
    batch (60,000 genes of 400 samples take minutes)."""
    drops, mdrops, _ = _permutation_drops(model, X, y, features=features, repeats=repeats, seed=seed, scoring=scoring,
                                          members=members, progress=progress)
    return drops, mdrops


def _permutation_drops(model: Model, X, y, *, features, repeats, seed, scoring, members, progress=None):
    """``permutation_importance``'s (drops, member drops), and for a regression model the direction of each
    feature's effect on each target's prediction (d, k): the sum over shuffles and samples of the change of the
    feature's network input times the change of the predicted value (positive: higher values raise it)."""
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ConfigError(f"--repeats must be a whole number of at least 1, got {repeats!r}")
    if scoring not in SCORINGS:
        raise ConfigError(f"--scoring {scoring!r} is not one of {', '.join(SCORINGS)}")
    X, features = model.inputs(X, features)  # a DataFrame: its columns by name
    feats = list(model.feature_names) if features is None else list(features)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(feats):
        raise DataError(f"X has shape {X.shape}; expected {len(feats)} feature columns")
    regression, multilabel = model.task == "regression", model.task == "multilabel"
    y = (_target_values(model, y, X.shape[0]) if regression else label_matrix(model, y, X.shape[0]) if multilabel
         else label_indices(model, y, X.shape[0]))
    if y is None:
        raise ConfigError("permutation importance needs labels y" + " (the targets' values)" * regression)
    n, d = X.shape
    k_cls = len(model.classes)
    out_fn = TargetOutput(model, "prob")
    sd, mean = target_scales(model)  # (M, k): each member's outputs in the target's units

    def probs(logit_sets, m=None):  # [(k, ..., n)] per member -> the model's probabilities (values), as predict_output
        if not regression:
            return _probabilities_cm(out_fn, logit_sets)
        scale = range(len(logit_sets)) if m is None else [m]
        return np.mean([Z * sd[i].reshape(-1, *[1] * (Z.ndim - 1)) + mean[i].reshape(-1, *[1] * (Z.ndim - 1))
                        for Z, i in zip(logit_sets, scale)], axis=0)

    def scores(P):  # (..., k), higher is better
        if regression:
            return _target_scores(P, y)
        return _label_scores(model, P, y, scoring) if multilabel else _class_scores(model, P, y, scoring)

    shuffles = _Shuffles(model, X, feats, features, repeats, seed)
    M = len(shuffles.states)
    drops = np.zeros((repeats, d, k_cls))
    mdrops = np.zeros((M, repeats, d, k_cls)) if members else None
    effects = np.zeros((d, k_cls)) if regression else None
    done = 0
    for J, logit_sets, base_sets in shuffles:
        # each shuffle against the unshuffled outputs of the same products (``_Shuffles``): (k, 1, R, n)
        base_values = probs(base_sets)
        P = probs(logit_sets)  # (k, F, R, n)
        drops[:, J] = np.transpose(scores(base_values) - scores(P), (1, 0, 2))
        if regression:
            for q, j in enumerate(J):
                effects[j] = np.einsum("rn,krn->k", shuffles.shift(j), P[:, q] - base_values[:, 0])
        if members:
            for m in range(M):
                member_score = scores(probs([logit_sets[m]], m))
                mdrops[m][:, J] = np.transpose(scores(probs([base_sets[m]], m)) - member_score, (1, 0, 2))
        if progress is not None:
            done += len(J)
            progress(done, len(shuffles.used))
    return drops, mdrops, effects


def _target_scores(P: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Minus each target's RMSE (..., k) of predicted values P (k, ..., n), target-major, against Y (n, k)."""
    Yt = Y.T.reshape(Y.shape[1], *[1] * (P.ndim - 2), Y.shape[0])
    return -np.moveaxis(np.sqrt(np.mean((P - Yt) ** 2, axis=-1)), 0, -1)


def _target_values(model: Model, y, n: int) -> np.ndarray | None:
    """A regression model's true values y as (n, k) float64, k its targets; None stays None."""
    if y is None:
        return None
    try:
        y = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"y must hold the targets' values (numbers): {exc}") from None
    k = len(model.classes)
    if y.shape not in ((n,), (n, k)) or (y.ndim == 1 and k != 1):
        raise DataError(f"y has shape {y.shape} for {n} samples; expected ({n}, {k}): the values of "
                        f"{quoted(model.classes, 10)}")
    y = y.reshape(n, k)
    if not np.isfinite(y).all():
        raise DataError(f"y has {int((~np.isfinite(y)).sum())} missing or infinite value(s); drop those samples")
    return y


def _permutation(model: Model, X, labels, y, feats, used, wanted, top, repeats, seed, scoring,
                 progress=None) -> Explanation:
    """Permutation importance's rankings; ``labels`` as given to ``explain``, y (n,) their class indices."""
    names = [str(c) for c in model.classes]
    multilabel = model.task == "multilabel"
    if multilabel:  # a label is scored over every sample, and ranked when some sample is positive for it
        present = y.any(axis=0) & ((~y.astype(bool)).any(axis=0) if scoring == "balanced_accuracy" else True)
    else:
        present = np.bincount(y, minlength=len(names)) > 0
    if not present[wanted].any():  # as integrated gradients: an error, not an empty ranking
        if multilabel and scoring == "balanced_accuracy" and y[:, wanted].any():
            raise DataError("--scoring balanced_accuracy needs, for a label, samples positive and negative for it; "
                            f"{', '.join(names[c] for c in wanted)} {'is' if len(wanted) == 1 else 'are'} positive "
                            "in every sample (--scoring log_loss scores them)")
        raise _no_sample_error(names, wanted, "label", multilabel)
    drops, mdrops = permutation_importance(model, X, labels, features=feats, repeats=repeats, seed=seed,
                                           scoring=scoring, members=model.is_ensemble, progress=progress)
    rows, stability, scores, short = [], {}, {}, {}
    for c in wanted:
        if not present[c]:
            continue
        score = drops[:, :, c].mean(axis=0)
        scores[names[c]] = score
        share = None
        if mdrops is not None:
            summary, share = _stability(mdrops[:, :, :, c].mean(axis=1), used, feats, top, "member", seed=seed)
        else:
            summary = {"unit": None, "n": 0, "top": None, "mean_overlap": None, "mean_spearman": None}
        table_rows = _table_rows(names[c], score, np.abs(drops[:, :, c]).mean(axis=0), None,
                                 (drops[:, :, c] > 0).mean(axis=0), share, used, feats, top)
        _record(names[c], table_rows, summary, rows, stability, short)
    if multilabel:
        overall = drops[:, :, present].mean(axis=2).mean(axis=0)
        what = ("the drop of the label's balanced accuracy (each label called as predict calls it) when the gene is "
                "shuffled (their mean "
                "over labels is the drop of the multi-label balanced accuracy" if scoring == "balanced_accuracy" else
                "the rise of the label's mean log loss over every sample when the gene is shuffled (their mean over "
                "labels is the rise of the multi-label log loss")
    elif scoring == "balanced_accuracy":
        overall = drops[:, :, present].mean(axis=2).mean(axis=0)
        what = ("the drop of the class's recall when the gene is shuffled (their mean over classes is the drop of "
                "balanced accuracy")
    else:
        weights = np.bincount(y, minlength=len(names))[present] / len(y)
        overall = (drops[:, :, present] * weights).sum(axis=2).mean(axis=0)
        what = ("the rise of the class's samples' mean log loss when the gene is shuffled (their weighted mean is "
                "the rise of the log loss")
    overall_ranked = _ranked(overall, used)
    order = rank_features(overall_ranked, feats, min(top, 5))[:int(np.isfinite(overall_ranked).sum())]
    largest = ", ".join(f"{feats[j]} {overall[j]:+.3g}" for j in order) or "none above 0"
    notes = ["permutation importance is only honest on held-out samples (not the training table), and genes that "
             "carry the same signal share their importance: shuffling one leaves the others to carry it",
             f"score: {what}; largest overall: {largest}); fraction: the share of the {drops.shape[0]} shuffles that "
             "worsened the class's score", *_short_note(short, top, "permutation")]
    if mdrops is None:
        notes.append("member_overlap needs an ensemble: a single network's permutation importance has no members")
    absent = [c for c in wanted if not present[c]]
    if multilabel and absent and scoring == "balanced_accuracy":
        notes.append(f"not ranked: {', '.join(names[c] for c in absent)}: its balanced accuracy needs samples positive "
                     "and negative for the label (--scoring log_loss scores it)")
    else:
        notes += _unranked_note(names, absent, "label", multilabel)
    counts = {names[c]: int(len(y)) for c in wanted} if multilabel else {names[c]: int((y == c).sum()) for c in wanted}
    return Explanation("permutation", None, None, None, top, [names[c] for c in wanted if present[c]], counts,
                       "label", pd.DataFrame(rows, columns=COLUMNS), stability, None, scores, notes,
                       None if multilabel else y, int(used.sum()))


# ── regression: one ranking per target ───────────────────────────────────────────────────────────────────


def _ig_regression(model: Model, X: np.ndarray, feats: list[str], features, used: np.ndarray, wanted: list[int],
                   top: int, baseline, steps: int, bootstrap, tol, seed: int, ids, patients) -> Explanation:
    """Integrated gradients of a regression model's predicted value (the members' mean, in the target's units):
    every sample explained, for each target in ``wanted``. A gene's score is its mean |attribution| (how far it
    moves the prediction from the baseline's, either way: the signed mean cancels between samples above and
    below the baseline); direction "up" when higher values raise the prediction (the attributions' sign
    agrees with that of x - baseline, weighted by |attribution|); fraction: the share of samples in which it
    moves the prediction that way."""
    names = [str(c) for c in model.classes]
    n, d = X.shape
    M = len(model.members)
    single = M == 1
    _check_bootstrap(bootstrap, M)
    n_boot = (DEFAULT_BOOTSTRAP if bootstrap is None else int(bootstrap)) if single else 0
    b = baseline_values(model, baseline)
    if features is not None:
        position = {name: j for j, name in enumerate(model.feature_names)}
        b = np.array([b[position[f]] for f in feats])
    T = len(wanted)
    targets = np.repeat(np.asarray(wanted, dtype=np.int64)[:, None], n, axis=1)  # (T, n)
    abs_sums, dirs, ups, downs = (np.zeros((T, d)) for _ in range(4))
    member_abs = np.zeros((M, T, d)) if not single else None
    kept = [[] for _ in range(T)] if single else None
    gaps = np.empty((T, n))
    fb = np.empty(T)
    tol = default_tol(model) if tol is None else float(tol)
    most_steps = steps
    for chunk in attribution_chunks(model, X, targets, baseline=b, steps=steps, output="logit",
                                    per_member=not single, features=feats, refine=tol):
        most_steps = max(most_steps, int(chunk.steps.max()))
        A = chunk.values  # (T, c, d)
        gaps[:, chunk.rows] = completeness_gap(A, chunk.fx, chunk.fb)
        fb[:] = chunk.fb[:, 0]
        with np.errstate(invalid="ignore"):
            sign = np.nan_to_num(np.sign(X[chunk.rows] - b))  # (c, d)
        signed = A * sign  # > 0: the gene moves the prediction the way its value moved from the baseline
        abs_sums += np.abs(A).sum(axis=1)
        dirs += signed.sum(axis=1)
        ups += (signed > 0).sum(axis=1)
        downs += (signed < 0).sum(axis=1)
        if single:
            for i in range(T):
                kept[i].append(np.abs(A[i]).astype(np.float32))
        else:
            member_abs += np.abs(chunk.members).sum(axis=2)
    worst_t, worst = np.unravel_index(int(np.argmax(gaps)), gaps.shape)
    completeness = {"max_gap": float(gaps.max()), "median_gap": float(np.median(gaps)),
                    "worst_sample": ids[worst] if ids is not None else int(worst) + 1,
                    "worst_class": names[wanted[worst_t]], "tol": tol, "passed": bool(gaps.max() <= tol),
                    "steps": steps, "most_steps": most_steps}
    if hasattr(completeness["worst_sample"], "item"):
        completeness["worst_sample"] = completeness["worst_sample"].item()
    units = _resampling_units(patients, np.arange(n)) if single else None
    rows, stability, scores, short = [], {}, {}, {}
    for i, t in enumerate(wanted):
        score = abs_sums[i] / n
        scores[names[t]] = score
        if single and (n if units is None else len(units)) < 2:
            summary, share = {"unit": "bootstrap resample", "n": 0, "top": None, "mean_overlap": None,
                              "mean_spearman": None}, None
        elif single:
            rng = np.random.default_rng([seed, t])
            boot = _bootstrap_means(np.concatenate(kept[i]).astype(np.float64), units, n_boot, rng)
            summary, share = _stability(boot, used, feats, top, "bootstrap resample", seed=seed)
        else:
            summary, share = _stability(member_abs[:, i] / n, used, feats, top, "member", seed=seed)
        fraction = np.where(dirs[i] >= 0, ups[i], downs[i]) / n
        table_rows = _table_rows(names[t], score, score, dirs[i], fraction, share, used, feats, top,
                                 _agreement(dirs[i], abs_sums[i]))
        _record(names[t], table_rows, summary, rows, stability, short)
    table = pd.DataFrame(rows, columns=COLUMNS)
    at_baseline = ", ".join(f"{names[t]} {fb[i]:.4g}" for i, t in enumerate(wanted))
    notes = [f"regression: genes ranked per target by their mean |attribution| over all {n} samples, in the "
             f"target's units: how far each moves the predicted value from the prediction at the baseline "
             f"({at_baseline}), either way; direction up: higher values raise the prediction; fraction: the share "
             "of samples in which the gene moves it that way"]
    notes += _short_note(short, top, "ig") + _correlated_note(X, feats, table[table["score"] > 0], "ig")
    if single and units is not None:
        notes.append("bootstrap: whole patients resampled (several samples of one patient are one piece of "
                     "evidence)")
    if single and (n if units is None else len(units)) < 2:
        notes.append(f"no stability: every bootstrap resample of one {'sample' if units is None else 'patient'} is "
                     "that one again, which would read as a perfectly stable ranking")
    # the heatmap orders the samples by the first target's prediction
    order_by = model.predict_output(X, features=list(feats) if features is not None else None)[:, wanted[0]]
    return Explanation("ig", "value", baseline if isinstance(baseline, str) else "given", steps, top,
                       [names[t] for t in wanted], {names[t]: int(n) for t in wanted}, "all samples", table,
                       stability, completeness, scores, notes, order_by, int(used.sum()))


def _permutation_regression(model: Model, X: np.ndarray, Y: np.ndarray, feats, used, wanted, top, repeats,
                            seed, progress=None) -> Explanation:
    """Permutation importance of a regression model: per target, the rise of its RMSE (in the target's units)
    when the gene is shuffled; direction from the change of the prediction with the gene's shuffled value."""
    names = [str(c) for c in model.classes]
    drops, mdrops, effects = _permutation_drops(model, X, Y, features=feats, repeats=repeats, seed=seed,
                                                scoring="log_loss", members=model.is_ensemble, progress=progress)
    rows, stability, scores, short = [], {}, {}, {}
    for t in wanted:
        score = drops[:, :, t].mean(axis=0)
        scores[names[t]] = score
        share = None
        if mdrops is not None:
            summary, share = _stability(mdrops[:, :, :, t].mean(axis=1), used, feats, top, "member", seed=seed)
        else:
            summary = {"unit": None, "n": 0, "top": None, "mean_overlap": None, "mean_spearman": None}
        table_rows = _table_rows(names[t], score, np.abs(drops[:, :, t]).mean(axis=0), effects[:, t],
                                 (drops[:, :, t] > 0).mean(axis=0), share, used, feats, top)
        _record(names[t], table_rows, summary, rows, stability, short)
    predicted = model.predict_output(X, features=list(feats))
    rmse = np.sqrt(np.mean((predicted[:, wanted] - Y[:, wanted]) ** 2, axis=0))
    notes = ["permutation importance is only honest on held-out samples (not the training table), and genes that "
             "carry the same signal share their importance: shuffling one leaves the others to carry it",
             "score: the rise of the target's RMSE, in its units, when the gene is shuffled (RMSE unshuffled: "
             + ", ".join(f"{names[t]} {r:.4g}" for t, r in zip(wanted, rmse)) + "); direction up: higher values "
             "raise the prediction; fraction: the share of shuffles that raise the RMSE",
             *_short_note(short, top, "permutation")]
    if mdrops is None:
        notes.append("member_overlap needs an ensemble: a single network's permutation importance has no members")
    return Explanation("permutation", None, None, None, top, [names[t] for t in wanted],
                       {names[t]: int(len(Y)) for t in wanted}, "all samples", pd.DataFrame(rows, columns=COLUMNS),
                       stability, None, scores, notes, predicted[:, wanted[0]], int(used.sum()))
