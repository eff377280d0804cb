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

Permutation importance (``permutation``) is ranked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..text import quoted
from ..errors import ConfigError, DataError, OptionError
from ..metrics import spearman
from ..model_io import Model, require_model
from .attribution import (DEFAULT_STEPS, attribution_chunks, baseline_values, check_model_output, check_steps,
                          class_index, completeness_gap, default_tol)
from .labels import label_indices, label_matrix, target_values
from .permutation import DEFAULT_REPEATS, SCORINGS, permutation_drops, permutation_importance

__all__ = ["COLUMNS", "METHODS", "Explanation", "check_rankable", "explain", "rank_features", "ranked_column"]


COLUMNS = ["class", "rank", "feature", "score", "mean_abs", "direction", "fraction", "member_overlap"]
METHODS = ("ig", "permutation")


def ranked_column(task: str) -> str:
    """What a ranking is of, as a ranking file's first column names it: "target" for a regression model, "label" for
    a multi-label one, else "class" (the table itself calls that column ``COLUMNS[0]``, "class", for every task)."""
    return {"regression": "target", "multilabel": "label"}.get(task, "class")
DEFAULT_TOP = 20


# A direction is "up" or "down" when at least this share of the |attribution| agrees with it, else "mixed": on an
# XOR of two genes each gene's direction was right for 60-67 % of the weight toward a class (printed as "up",
# toward both classes); on linear drivers 95-100 %.
MIXED_BELOW = 0.75


DEFAULT_BOOTSTRAP = 20


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

    def add_symbols(self, symbols) -> None:
        """A ``symbol`` column after ``feature`` in the table: each gene's symbol, from ``symbols`` (a
        ``GeneSymbols``: ``explain.feature_symbols``, ``data.symbols.read_symbol_file``; or a mapping {feature:
        symbol}); None (no symbols to add) changes nothing, and so does a GeneSymbols of features named by their
        symbols already (``named_already``) but for its note. A gene without a symbol has None there (shown by its
        id alone); the features stay the ranking's keys, so genes sharing a symbol stay apart. Its notes (which
        column) join the notes, with how many of the genes ranked have a symbol."""
        if symbols is None:
            return
        if not getattr(symbols, "named_already", False):
            lookup = getattr(symbols, "symbols", symbols)
            values = [lookup.get(str(f)) for f in self.table["feature"]]
            table = self.table.drop(columns=["symbol"], errors="ignore")
            table.insert(int(table.columns.get_loc("feature")) + 1, "symbol", pd.Series(values, index=table.index,
                                                                                          dtype=object))
            self.table = table
        self.notes.extend(n for n in getattr(symbols, "notes", []) if n not in self.notes)
        if "symbol" in self.table.columns:
            ranked = self.table.drop_duplicates("feature")
            with_symbol = int(ranked["symbol"].map(lambda v: isinstance(v, str) and v != "").sum())
            self.notes.append(f"gene symbols for {with_symbol:,} of the {len(ranked):,} genes ranked"
                              + ("" if with_symbol == len(ranked) else " (the others: their ids alone)"))

    def to_dict(self) -> dict:
        rows = self.table.replace({np.nan: None}).to_dict(orient="records")
        return {"method": self.method, "output": self.output, "baseline": self.baseline, "steps": self.steps,
                "top": self.top, "n_features": self.n_features, "classes": self.classes, "grouped_by": self.grouped_by,
                "n_samples": self.n_samples, "completeness": self.completeness, "stability": self.stability,
                "rankings": rows, "notes": self.notes}


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


def _no_sample_error(names: list[str], wanted: list[int], grouped_by: str, multilabel: bool = False,
                     groups: np.ndarray | None = None) -> DataError:
    """The error for a ranking with no sample of its classes (``grouped_by``: "label", the samples' own, or the
    predicted one), naming the classes the samples are of (``groups``: their class indices), which --class takes."""
    shown = ", ".join(names[c] for c in wanted)
    there = ""
    if groups is not None and not multilabel and len(groups):
        counts = np.bincount(np.asarray(groups, dtype=np.int64), minlength=len(names))
        held = [f"{names[c]} ({counts[c]:,})" for c in np.argsort(-counts, kind="stable") if counts[c]]
        there = f"; the samples are {', '.join(held[:6])}{' and more' if len(held) > 6 else ''}: --class names one of them"
    if multilabel:
        return DataError(f"no sample is positive for the label{'s' * (len(wanted) > 1)} ranked ({shown}) by "
                         f"{grouped_by}")
    return DataError(f"no sample is of the class{'es' * (len(wanted) > 1)} ranked ({shown}) by its "
                     f"{'true ' if grouped_by == 'label' else ''}{grouped_by}{there}")


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
    require_model(model, "explain takes")  # a path given for it failed with an AttributeError inside
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
    labels, y = y, (target_values(model, y, X.shape[0]) if regression else
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
        raise _no_sample_error(names, wanted, grouped_by, multilabel, None if multilabel else groups)
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
        raise _no_sample_error(names, wanted, "label", multilabel, None if multilabel else y)
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
    drops, mdrops, effects = permutation_drops(model, X, Y, features=feats, repeats=repeats, seed=seed,
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
