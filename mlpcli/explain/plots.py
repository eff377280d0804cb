"""Figures of an explanation (matplotlib, rendered off-screen and written atomically by ``plotting``):
per class a horizontal bar chart of the top genes coloured by direction, and a heatmap of samples x top
genes of the standardised expression (as the network sees it), samples ordered by class."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..model_io import Model
from ..plotting import plot_format, save_figure
from .ranking import Explanation

UP_COLOUR, DOWN_COLOUR, NEUTRAL_COLOUR = "#d62728", "#1f77b4", "#7f7f7f"  # red: higher expression, blue: lower
HEATMAP_GENES = 40  # at most this many genes in the heatmap (the top ones of each class, in turn)

__all__ = ["plot_explanation", "plot_format"]


def _standardised(model: Model, X: np.ndarray, features: list[str], genes: list[str]) -> np.ndarray:
    """Samples x genes (n, g) as the reference preprocessing standardises them (log1p, centring, scaling)."""
    pre = model.preprocessor
    features = list(model.feature_names) if features is None else features
    kept = {name: i for i, name in enumerate(pre.kept_features)}
    position = {name: j for j, name in enumerate(features)}
    Z = pre.transform_kept(np.take(X, [position[n] for n in pre.kept_features], axis=1))
    return Z[:, [kept[g] for g in genes]]


def _labels(rows) -> list[str]:
    """The genes of ranking rows as the figure names them: "TP53 (ENSG00000141510)" where the ranking has a symbol
    for the gene (``Explanation.add_symbols``), else the feature's name."""
    if "symbol" not in rows.columns:
        return [str(f) for f in rows["feature"]]
    from ..data.symbols import label

    return [label(f, s) for f, s in zip(rows["feature"], rows["symbol"])]


def plot_explanation(expl: Explanation, path: str, model: Model | None = None, X: np.ndarray | None = None,
                     groups: np.ndarray | None = None, features: list[str] | None = None,
                     before_replacing: Callable[[], None] | None = None) -> None:
    """Write the bar charts (one panel per class) and, given the samples X (columns ``features``) and
    their classes ``groups`` (indices), the heatmap, to ``path`` (.png, .svg or .pdf), atomically.

    ``before_replacing``: run once the figure is drawn, before the file at ``path`` is replaced (the
    command's other outputs): when it fails, ``path`` is left as it was (a plot from an earlier run
    included), never deleted after the fact."""
    plot_format(path)  # an unknown extension, or no matplotlib, before any drawing
    from matplotlib import rc_context

    # gene and class names as written: "$" in one (p$\\frac$q, a probe id) was read as mathtext, and the plot
    # failed with a parser's error; a text takes the setting when it is made
    with rc_context({"text.parse_math": False}):
        figure = _explanation_figure(expl, model, X, groups, features)
    save_figure(figure, path, before_replacing)


def _explanation_figure(expl: Explanation, model: Model | None, X: np.ndarray | None, groups: np.ndarray | None,
                        features: list[str] | None):
    """The figure of ``plot_explanation``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    classes = expl.classes
    heat = model is not None and X is not None and groups is not None and expl.table.shape[0] > 0
    ncols = min(2, len(classes))
    nrows = math.ceil(len(classes) / ncols)
    top = max(1, min(expl.top, int(expl.table.groupby("class").size().max()) if len(expl.table) else 1))
    panel_h = 0.9 + 0.22 * top
    height = nrows * panel_h + (5.5 if heat else 0.0)
    fig = Figure(figsize=(6.4 * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    ratios = [panel_h] * nrows + ([5.5] if heat else [])
    grid = fig.add_gridspec(len(ratios), ncols, height_ratios=ratios)
    # in the units of the output explained (the genes' own units, log1p or scaling, cancel out of IG)
    unit = {"logit": " (logit)", "prob": " (probability)"}.get(expl.output or "", "")
    regression = expl.grouped_by == "all samples"  # a regression model: one ranking per target, every sample
    if regression:
        what = ("mean |attribution| (the target's units)" if expl.method == "ig"
                else "rise of RMSE when the gene is shuffled (the target's units)")
    else:
        noun = "label" if model is not None and model.task == "multilabel" else "class"
        what = (f"mean attribution toward the {noun}{unit}" if expl.method == "ig"
                else "skill lost when the gene is shuffled (log loss rise; recall drop by balanced accuracy)")
    for i, name in enumerate(classes):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        rows = expl.table[expl.table["class"] == name].sort_values("rank")
        y = np.arange(len(rows))[::-1]
        colours = [UP_COLOUR if d == "up" else DOWN_COLOUR if d == "down" else NEUTRAL_COLOUR for d in rows["direction"]]
        ax.barh(y, rows["score"], color=colours)
        ax.set_yticks(y, _labels(rows), fontsize=8)
        ax.axvline(0.0, color="black", linewidth=0.6)
        ax.set_xlabel(what)
        ax.set_title(f"{name}: top {len(rows)} genes (n = {expl.n_samples.get(name, 0)})")
        if (expl.method == "ig" or regression) and i == 0:
            from matplotlib.patches import Patch

            up, down = (("higher expression → higher prediction", "higher expression → lower prediction")
                        if regression else (f"higher expression → {noun}", f"lower expression → {noun}"))
            handles = [Patch(color=UP_COLOUR, label=up), Patch(color=DOWN_COLOUR, label=down)]
            if (expl.table["direction"] == "mixed").any():  # grey bars: the legend names them too
                handles.append(Patch(color=NEUTRAL_COLOUR, label="mixed: no one direction"))
            ax.legend(handles=handles, fontsize=8, loc="lower right")
    if heat:
        ax = fig.add_subplot(grid[nrows, :])
        genes = []
        ranked = [list(expl.table[expl.table["class"] == c].sort_values("rank")["feature"]) for c in classes]
        for r in range(max(len(g) for g in ranked)):  # the classes' top genes in turn, each once
            for g in ranked:
                if r < len(g) and g[r] not in genes and len(genes) < HEATMAP_GENES:
                    genes.append(g[r])
        order = np.argsort(groups, kind="stable")
        Z = _standardised(model, X[order], features, genes)
        image = ax.imshow(Z.T, aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3, interpolation="nearest")
        named = {}  # a gene's label: its symbol beside its id, when the ranking has symbols
        for c in classes:
            rows = expl.table[expl.table["class"] == c]
            named.update(zip(rows["feature"], _labels(rows)))
        ax.set_yticks(np.arange(len(genes)), [named.get(g, g) for g in genes], fontsize=6)
        if regression:  # groups: the predicted value of the first target ranked
            ax.set_xticks([])
            ax.set_xlabel(f"samples, ordered by their predicted {classes[0]} (low to high)")
        else:
            counts = np.bincount(groups[order], minlength=len(model.classes))
            edges = np.cumsum(counts)
            for e in edges[:-1]:
                ax.axvline(e - 0.5, color="black", linewidth=0.8)
            mids = edges - counts / 2
            ax.set_xticks([m for m, c in zip(mids, counts) if c],
                          [str(model.classes[k]) for k, c in enumerate(counts) if c])
            ax.set_xlabel(f"samples, ordered by {expl.grouped_by}")
        ax.set_title("standardised expression of the top genes (as the network sees it)")
        fig.colorbar(image, ax=ax, label="standardised value", shrink=0.8)
    fig.suptitle(f"mlpcli explain: {'integrated gradients' if expl.method == 'ig' else 'permutation importance'}")
    return fig
