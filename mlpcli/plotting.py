"""Drawing learning curves: a small text chart for the terminal, and matplotlib figures for files.

``terminal_chart`` is a pure function returning a string (the CLI colours it). The file plots use
matplotlib's object-oriented API on an Agg canvas (no pyplot), so they never need a display and
never switch the backend of a notebook that imports this module; matplotlib itself is imported only
when a file is drawn. Files are rendered in memory and written atomically: a failure leaves no
partial plot behind.
"""

from __future__ import annotations

import atexit
import io
import math
import os
import shutil
import sys
import tempfile
from typing import Callable, Sequence

import numpy as np

from .errors import ConfigError, OptionError

__all__ = ["PLOT_FORMATS", "TRAIN_CHAR", "VAL_CHAR", "BOTH_CHAR", "plot_format", "terminal_chart",
           "plot_curves", "plot_learning_curve", "plot_risk_coverage", "save_figure"]

PLOT_FORMATS = ("png", "svg", "pdf")
PNG_DPI = 150  # sharp on a laptop screen and in a slide, ~100 kB per figure

# The terminal chart's marks; the CLI colours them (train blue, validation orange like the plots).
TRAIN_CHAR = "•"
VAL_CHAR = "×"
BOTH_CHAR = "*"  # both curves fall into the same cell
BEST_CHAR = "│"  # the best (lowest validation loss) epoch's column
BASELINE_CHAR = "┄"  # the no-skill loss, where no curve is drawn
_Y_LABEL_WIDTH = 10  # room for ticks such as "0.000316" or "-3.16e-05"

TRAIN_COLOUR, VAL_COLOUR = "#1f77b4", "#ff7f0e"  # matplotlib's first two colours: colour-blind safe


def plot_format(path: str, option: str = "--plot") -> str:
    """The file format for ``--plot PATH`` (``option``: the flag that gave it) from its extension: png, svg or pdf.

    Raises OptionError for any other extension, and ConfigError when matplotlib cannot be imported (both
    checked before any work is done: a learning curve must not train for minutes and then fail to draw; a
    broken install, which a look for the package passed, failed as "internal error" after the work)."""
    ext = os.path.splitext(str(path))[1].lower().lstrip(".")
    if ext not in PLOT_FORMATS:
        shown = f"'.{ext}'" if ext else "no extension"
        raise OptionError(f"{option} {path}: unsupported file type ({shown}); use a .png, .svg or .pdf file name")
    import_matplotlib(path, option)
    return ext


def import_matplotlib(path: str, option: str = "--plot"):
    """matplotlib, imported for drawing to files on an Agg canvas, or a ConfigError naming ``option`` and ``path``.
    Two settings of the environment meant for interactive use are kept out of it: an MPLBACKEND matplotlib does
    not know (no backend is used here; "Key backend: 'x' is not a valid value" named no variable), and a
    configuration folder that cannot be written (a read-only HOME: matplotlib's two-line warning about a
    temporary cache folder, under -q too) — a private temporary folder is given instead (MPLCONFIGDIR)."""
    if "matplotlib" in sys.modules and sys.modules["matplotlib"] is not None:
        return sys.modules["matplotlib"]
    backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "agg"
    if not os.environ.get("MPLCONFIGDIR") and not _writable_config_dir():
        folder = tempfile.mkdtemp(prefix="mlpcli-matplotlib-")
        atexit.register(shutil.rmtree, folder, True)
        os.environ["MPLCONFIGDIR"] = folder
    try:
        import matplotlib
    except ImportError:
        raise _no_matplotlib(path, option) from None
    finally:
        if backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = backend
    return matplotlib


def _writable_config_dir() -> bool:
    """Whether matplotlib's configuration and cache folders (XDG's, else under HOME) can be made and written."""
    home = os.path.expanduser("~")
    for variable, default in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        folder = os.path.join(os.environ.get(variable) or os.path.join(home, default), "matplotlib")
        probe = folder
        while not os.path.exists(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)  # the nearest folder that exists must take the new one
        if not (os.path.isdir(probe) and os.access(probe, os.W_OK | os.X_OK)):
            return False
    return True


def _no_matplotlib(path: str, option: str = "--plot") -> ConfigError:
    return ConfigError(f"{option} {path}: drawing needs matplotlib, which this Python cannot import; install it with "
                       "python -m pip install matplotlib (an mlpcli dependency: python -m pip install . from the "
                       "mlpcli checkout brings it)")


# --- the terminal chart --------------------------------------------------------------------------


def _column_means(y: np.ndarray, width: int) -> np.ndarray:
    """(width,) mean of the finite values of ``y`` falling into each column (NaN where none do);
    with fewer points than columns, each point sits in its own column, spread over the width."""
    n = len(y)
    cols = np.full(width, np.nan)
    if n == 0:
        return cols
    if n <= width:
        where = np.round(np.arange(n) * (width - 1) / max(n - 1, 1)).astype(int)
        cols[where] = y
        return cols
    edges = np.linspace(0, n, width + 1).round().astype(int)
    for c in range(width):
        chunk = y[edges[c]:edges[c + 1]]
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            cols[c] = chunk.mean()
    return cols


def _epoch_column(epoch: int, n: int, width: int) -> int:
    """The chart column holding 1-based ``epoch`` of ``n`` (the inverse of ``_column_means``)."""
    if n <= width:
        return int(round((epoch - 1) * (width - 1) / max(n - 1, 1)))
    return int(min(width - 1, (epoch - 1) * width // n))


def _tick(v: float) -> str:
    return f"{v:.3g}".rjust(_Y_LABEL_WIDTH - 2)


def terminal_chart(
    train: Sequence[float],
    val: Sequence[float],
    *,
    width: int = 60,
    height: int = 12,
    best_epoch: int | None = None,
    baseline: float | None = None,
    train_name: str = "train",
    val_name: str = "validation",
    best_name: str = "best epoch",
    x_name: str = "epoch",
) -> str:
    """Both curves as ``height`` lines of ``width`` character cells, plus axes and a legend.

    train, val: (n_epochs,) values, NaN = missing. Epoch k is the k-th value (1-based). Long runs
    are averaged into ``width`` columns; ``best_epoch`` marks its column with a vertical bar and a
    ``▲`` under the axis; ``baseline`` draws a dotted row when it lies within twice the curves'
    range (a far-away baseline would squash the curves into one line). Returns plain text.
    """
    if width < 10 or height < 3:
        raise ValueError("terminal_chart needs width >= 10 and height >= 3")
    tr, va = np.asarray(train, dtype=float), np.asarray(val, dtype=float)
    n = max(len(tr), len(va))
    finite = np.concatenate([tr[np.isfinite(tr)], va[np.isfinite(va)]])
    if finite.size == 0:
        return "(no finite values to draw)"
    lo, hi = float(finite.min()), float(finite.max())
    show_baseline = baseline is not None and math.isfinite(baseline) and (
        lo - (hi - lo) <= baseline <= hi + (hi - lo))
    if show_baseline:
        lo, hi = min(lo, baseline), max(hi, baseline)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):  # a flat line: give it a little room
        lo, hi = lo - 0.5 * max(abs(lo), 1e-9), hi + 0.5 * max(abs(hi), 1e-9)

    def row(v: float) -> int:
        return int(round((hi - v) / (hi - lo) * (height - 1)))

    grid = [[" "] * width for _ in range(height)]  # (height, width)
    best_col = None
    if best_epoch is not None and 1 <= best_epoch <= n:
        best_col = _epoch_column(best_epoch, n, width)
        for r in range(height):
            grid[r][best_col] = BEST_CHAR
    if show_baseline:
        r = row(baseline)
        for c in range(width):
            if grid[r][c] == " ":
                grid[r][c] = BASELINE_CHAR
    train_cols, val_cols = _column_means(tr, width), _column_means(va, width)
    for c in range(width):
        rt = row(train_cols[c]) if np.isfinite(train_cols[c]) else None
        rv = row(val_cols[c]) if np.isfinite(val_cols[c]) else None
        if rt is not None:
            grid[rt][c] = TRAIN_CHAR
        if rv is not None:
            grid[rv][c] = BOTH_CHAR if rv == rt else VAL_CHAR

    lines = []
    for r in range(height):
        label = _tick(hi) if r == 0 else _tick(lo) if r == height - 1 else " " * (_Y_LABEL_WIDTH - 2)
        lines.append(f"{label} ┤{''.join(grid[r])}")
    lines.append(" " * (_Y_LABEL_WIDTH - 1) + "└" + "─" * width)
    axis = [" "] * width
    first, last = "1", str(n)
    at_first, at_last = 0, width - len(last)
    if best_col is not None:  # the marker never covers a number: the number moves to the marker's right
        if best_col < len(first):
            at_first = best_col + 1
        if best_col >= at_last:
            at_last = best_col + 1
        axis += [" "] * max(0, at_last + len(last) - width)
    axis[at_first:at_first + len(first)] = first
    axis[at_last:at_last + len(last)] = last
    if best_col is not None:
        axis[best_col] = "▲"
    lines.append(" " * _Y_LABEL_WIDTH + "".join(axis).rstrip() + f"  {x_name}")
    legend = f"{TRAIN_CHAR} {train_name}   {VAL_CHAR} {val_name}   {BOTH_CHAR} both"
    if best_col is not None:
        legend += f"   {BEST_CHAR} {best_name} {best_epoch}"
    if show_baseline:
        legend += f"   {BASELINE_CHAR} baseline {baseline:.3g}"
    lines.append(" " * _Y_LABEL_WIDTH + legend)
    return "\n".join(lines)


# --- matplotlib figures ----------------------------------------------------------------------------


def _figure(path: str, ncols: int = 1):
    """A Figure on an Agg canvas: no pyplot, no global backend state, no display needed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # plot_format checked that it is there; a broken install gets the same words
        raise _no_matplotlib(path) from None

    fig = Figure(figsize=(6.4 * ncols if ncols > 1 else 7.0, 4.6), layout="constrained")  # room for the legend below
    FigureCanvasAgg(fig)
    return fig


def figure_bytes(fig, path: str) -> bytes:
    """The figure rendered in the format named by ``path``'s extension (for a command that writes it together
    with its other outputs, all or none)."""
    fmt = plot_format(path)
    buf = io.BytesIO()
    # No creation date in the metadata (PDF's key is CreationDate, SVG's Date) and SVG's element ids from a
    # fixed salt instead of a random one: the same curves give the same file
    import matplotlib

    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
    with matplotlib.rc_context({"svg.hashsalt": "mlpcli"}):
        fig.savefig(buf, format=fmt, dpi=PNG_DPI, metadata=metadata)
    return buf.getvalue()


def save_figure(fig, path: str, before_replacing: Callable[[], None] | None = None) -> None:
    """Render to memory in the format named by the extension, then write atomically.

    ``before_replacing``: run once the figure is rendered and written beside ``path`` (on disk), before the file at
    ``path`` is replaced (a command's other outputs): when it fails, ``path`` is left as it was, a plot of an earlier
    run included; when the figure cannot be written (a full disk), it does not run (``fileio.write_together``: it
    ran first, and its table stayed behind a failed plot)."""
    from .fileio import write_together

    write_together({path: figure_bytes(fig, path)}, last=before_replacing)


def plot_curves(
    path: str,
    train: Sequence[float],
    val: Sequence[float],
    *,
    ylabel: str = "loss",
    title: str | None = None,
    best_epoch: int | None = None,
    divergence_epoch: int | None = None,
    baseline: float | None = None,
    train_eval: Sequence[float] | None = None,
    best_label: str | None = None,
    members: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None,
    xlabel: str = "epoch",
) -> None:
    """Draw per-epoch training and validation curves to ``path`` (.png, .svg or .pdf).

    Marks the best epoch (a dot on the validation curve and a dotted line), the divergence epoch
    (a dashed line, when the run overfits), the baseline (no-skill) level as a grey dashed line,
    and the inference-mode training curve (thin, dotted) when given. Epoch k is the k-th value;
    ``best_label`` names the best-epoch mark in the legend (default "best epoch N").

    members: an ensemble's ``(train, val)`` curves, one pair per member and each of its own length;
    drawn thin and faint under ``train``/``val``, which are then the members' mean curves.
    """
    plot_format(path)
    tr, va = np.asarray(train, dtype=float), np.asarray(val, dtype=float)
    epochs = np.arange(1, len(tr) + 1)
    fig = _figure(path)
    ax = fig.add_subplot()
    for i, (m_train, m_val) in enumerate(members or ()):
        # faint enough that the mean stays the figure's subject, visible enough to show the spread
        for curve, colour in ((m_train, TRAIN_COLOUR), (m_val, VAL_COLOUR)):
            y = np.asarray(curve, dtype=float)
            ax.plot(np.arange(1, len(y) + 1), y, color=colour, linewidth=0.7, alpha=0.35,
                    label=f"members ({len(members)})" if i == 0 and colour == VAL_COLOUR else None)
    mean, width = (f" (mean of {len(members)})", 2.0) if members else ("", None)
    ax.plot(epochs, tr, color=TRAIN_COLOUR, linewidth=width, label="training" + mean)
    if train_eval is not None:
        te = np.asarray(train_eval, dtype=float)
        if np.isfinite(te).any():
            ax.plot(epochs, te, color=TRAIN_COLOUR, linestyle=":", linewidth=1.2,
                    label="training (inference mode)")
    ax.plot(epochs, va, color=VAL_COLOUR, linewidth=width, label="validation" + mean)
    if baseline is not None and math.isfinite(baseline):
        ax.axhline(baseline, color="grey", linestyle="--", linewidth=1, label=f"baseline {baseline:.3g}")
    if best_epoch is not None and 1 <= best_epoch <= len(va) and np.isfinite(va[best_epoch - 1]):
        ax.axvline(best_epoch, color="0.35", linestyle=":", linewidth=1)
        ax.plot([best_epoch], [va[best_epoch - 1]], "o", color=VAL_COLOUR, markeredgecolor="black",
                label=best_label or f"best epoch {best_epoch}")
    if divergence_epoch is not None and 1 <= divergence_epoch <= len(va):
        ax.axvline(divergence_epoch, color="#d62728", linestyle="--", linewidth=1.2,
                   label=f"divergence (epoch {divergence_epoch})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    save_figure(fig, path)


def _legend_below(fig, *axes) -> None:
    """One legend for ``axes`` below the plot area, outside it: inside, matplotlib's "best" place
    still lands on a horizontal line such as the baseline (a line is not an obstacle it avoids
    well), and the curves of a long run fill every corner."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)), fontsize=8,
                   frameon=False)


def plot_learning_curve(
    path: str,
    n_train: Sequence[int],
    train_score: Sequence[float],
    val_score: Sequence[float],
    train_loss: Sequence[float],
    val_loss: Sequence[float],
    *,
    score_name: str,
    chance_score: float | None = None,
    title: str | None = None,
) -> None:
    """Draw the sample-size learning curve to ``path``: the main score (left) and the loss (right)
    of the training and validation sets against the number of training samples."""
    plot_format(path)
    x = np.asarray(n_train, dtype=float)
    fig = _figure(path, ncols=2)
    left, right = fig.subplots(1, 2)
    for ax, tr, va, name in ((left, train_score, val_score, score_name), (right, train_loss, val_loss, "loss")):
        ax.plot(x, tr, "o-", color=TRAIN_COLOUR, label="training")
        ax.plot(x, va, "s-", color=VAL_COLOUR, label="validation")
        ax.set_xlabel("training samples")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    if chance_score is not None and math.isfinite(chance_score):
        left.axhline(chance_score, color="grey", linestyle="--", linewidth=1, label=f"no skill {chance_score:.3g}")
    _legend_below(fig, left, right)
    if title:
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path)


def plot_risk_coverage(path: str, curve: dict, *, chosen: tuple[float, float] | None = None,
                       title: str | None = None) -> None:
    """Draw a risk–coverage curve (``predict.trust.risk_coverage``) to ``path``: the error rate among the
    accepted samples against the share accepted, accepting the most confident first; ``chosen`` marks
    (coverage, risk) of the run's abstention rule, and the dashed line is the error rate of accepting all."""
    plot_format(path)
    x = np.asarray(curve["coverage"], dtype=float)
    y = np.asarray([np.nan if r is None else r for r in curve["risk"]], dtype=float)
    fig = _figure(path)
    ax = fig.add_subplot()
    ax.plot(x, y, color=VAL_COLOUR, linewidth=2, label=f"most confident first (AURC {curve['aurc']:.3g})")
    if len(y) and np.isfinite(y[-1]):
        ax.axhline(y[-1], color="grey", linestyle="--", linewidth=1, label=f"all: error {y[-1]:.3g}")
    if chosen is not None and all(v is not None and math.isfinite(v) for v in chosen):
        ax.plot([chosen[0]], [chosen[1]], "o", color=TRAIN_COLOUR, markeredgecolor="black",
                label=f"this run: {chosen[0]:.0%} accepted, error {chosen[1]:.3g}")
    ax.set_xlabel("share of samples accepted (coverage)")
    ax.set_ylabel("error rate among the accepted (risk)")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    if title:
        ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    save_figure(fig, path)


def calibration_plot(path: str, curves: dict, *, title: str | None = None) -> bytes:
    """A calibration plot (``evaluate --calibration-plot``), rendered for ``path``: for each class (label) of
    ``curves`` ({name: ``metrics.calibration_curve`` rows}) the observed rate of its bins against their mean
    probability, with the rates' 95 % Wilson intervals, beside the diagonal of perfect calibration."""
    plot_format(path)
    fig = _figure(path)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    many = len(curves) > 1
    for name, rows in curves.items():
        if not rows:
            continue
        x = np.array([r["mean_predicted"] for r in rows])
        y = np.array([r["observed"] for r in rows])
        ci = np.array([r["observed_ci"] for r in rows])
        n = sum(r["n"] for r in rows)
        ax.errorbar(x, y, yerr=np.maximum(0.0, [y - ci[:, 0], ci[:, 1] - y]), marker="o", markersize=4, linewidth=1.5, capsize=2,
                    color=None if many else VAL_COLOUR,
                    label=f"{name}" if many else f"{name}: {len(rows)} bins of ~{n // len(rows):,} samples")
    ax.set_xlabel("mean predicted probability (bin)")
    ax.set_ylabel("observed share (95 % interval)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if title:
        ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    return figure_bytes(fig, path)
