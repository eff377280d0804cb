"""Labels in an evaluated cohort that the model never learnt (``--novel-labels``): which classes their samples
were called, and how many were flagged or given a prediction set."""

from __future__ import annotations

import numpy as np

from ..text import natural_key, quoted
from .trust import Trust


def novel_report(out: np.ndarray, labels: np.ndarray, classes: list, task: str, threshold: float,
                 trust: Trust | None, sets: np.ndarray | None, ood_p: np.ndarray | None,
                 weights: np.ndarray | None = None) -> dict:
    """How the model treats the rows of labels it does not know (evaluate --novel-labels): the network's outputs
    ``out`` (n, outputs), their ``labels`` (n,), and, when asked for, their prediction sets ``sets`` (n, C) and
    out-of-distribution p-values ``ood_p`` (n,). Per label (and over them all, ``all``): n; ``ood``, the share
    flagged (p < --ood-alpha; None without --ood, or when the model cannot flag at that level: ``Trust.ood_warnings``);
    ``empty_or_multi_set``, the share whose set is empty or holds several classes (None without --coverage), and
    the two apart; ``caught``, the share either way — the held-out class figure of ``benchmarks/bench_conformal.py``
    —; ``predicted_as``, the 3 classes most predicted for them, with counts and shares."""
    from ..metrics import predicted_class  # sklearn: only evaluation needs metrics

    pred = predicted_class(task, out, threshold, weights)  # as predict labels them
    alpha = trust.options.ood_alpha if trust is not None and trust.basis is not None else None
    can_flag = alpha is not None and trust.ood_floor() < alpha
    flagged = ood_p < alpha if can_flag and ood_p is not None else None
    size = None if sets is None else sets.sum(axis=1)

    def share(mask: np.ndarray | None, idx: np.ndarray) -> float | None:
        return None if mask is None or not len(idx) else float(mask[idx].mean())

    unsure = None if size is None else size != 1
    caught = None if flagged is None and unsure is None else (
        flagged if unsure is None else unsure if flagged is None else flagged | unsure)

    def row(idx: np.ndarray) -> dict:
        counts = np.bincount(pred[idx], minlength=len(classes))
        top = sorted(np.flatnonzero(counts).tolist(), key=lambda c: (-counts[c], c))[:_NOVEL_TOP]
        return {"n": int(len(idx)), "ood": share(flagged, idx),
                "empty_set": share(None if size is None else size == 0, idx),
                "multi_class_set": share(None if size is None else size > 1, idx),
                "empty_or_multi_set": share(unsure, idx), "caught": share(caught, idx),
                "n_caught": None if caught is None else int(caught[idx].sum()),
                "predicted_as": [{"class": str(classes[c]), "n": int(counts[c]), "share": float(counts[c] / len(idx))}
                                 for c in top]}

    keys = np.asarray([str(v) for v in labels], dtype=object)
    per_label = [{"label": v, **row(np.flatnonzero(keys == v))} for v in sorted(set(keys.tolist()), key=natural_key)]
    return {"n": int(len(keys)), "labels": per_label, "all": row(np.arange(len(keys))) if len(keys) else None,
            "ood_alpha": alpha, "ood_can_flag": None if alpha is None else bool(can_flag),
            "coverage": None if sets is None else trust.options.coverage,
            "caught_by": [w for w, m in (("ood", flagged), ("empty_or_multi_set", unsure)) if m is not None]}


_NOVEL_TOP = 3  # classes named per novel label, the most predicted first


def novel_notes(doc: dict, n_rows: int) -> list[str]:
    """What evaluate --novel-labels says of the rows kept apart (the table carries the detail)."""
    k, labels = doc["n"], [r["label"] for r in doc["labels"]]
    if not k:
        return [f"--novel-labels: every one of the {n_rows:,} samples holds a label the model knows"]
    which = f"{'labels' if len(labels) > 1 else 'a label'} the model does not know ({quoted(labels, 5)})"
    if k == n_rows:
        out = [f"--novel-labels: all {k:,} samples hold {which}: no metric can be computed (they need samples of "
               "the model's classes); how the model treats them is reported alone (`novel` in --json)"]
    else:
        out = [f"--novel-labels: {k:,} of {n_rows:,} samples hold {which}, kept apart: the metrics, intervals, "
               f"groups and shift check are of the other {n_rows - k:,} (`novel` in --json)"]
    what = {"ood": "flagged ood", "empty_or_multi_set": "given an empty or multi-class set"}
    if doc["caught_by"]:
        out.append("novel labels caught (" + " or ".join(what[c] for c in doc["caught_by"]) + "): "
                   + ", ".join(f"{r['label']!r} {r['caught']:.0%} of {r['n']:,}" for r in doc["labels"][:5])
                   + (", ..." if len(doc["labels"]) > 5 else ""))
    if doc["ood_can_flag"] is False:
        out.append(f"novel labels: their ood share is not given: the model cannot flag any sample at --ood-alpha "
                   f"{doc['ood_alpha']:.12g} (see the warning)")
    missing = [(opt, what) for opt, c, what in (("--coverage 0.9", "empty_or_multi_set", "prediction sets"),
                                                ("--ood", "ood", "out-of-distribution flags"))
               if c not in doc["caught_by"] and not (c == "ood" and doc["ood_can_flag"] is False)]
    if missing:
        out.append(f"novel labels: add {' and '.join(o for o, _ in missing)} to count how many of them the model's "
                   f"{' and '.join(w for _, w in missing)} catch")
    return out
