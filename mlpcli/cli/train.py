"""`mlpcli train`: from a table to a validated, saved model."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from ..errors import MlpcliError
from ..config import OPTION_KEYS as _OPTION_FIELDS
from ._common import (
    CONTEXT_SETTINGS, StderrBar, check_writable, csv_list, debug_option, fmt, handle_errors, json_option, print_json,
    render_notes, role_options, stderr_console, stdout_console, threads_context, threads_option, write_text_atomic,
)


def _load_config_defaults(ctx: click.Context, param, value):
    """--config FILE.toml: its keys become the command's defaults, so command-line flags win."""
    if value is None:
        return value
    from ..config import read_config_file

    try:
        cfg = read_config_file(value)
    except MlpcliError as exc:
        raise click.BadParameter(str(exc).removeprefix("--config: "), ctx=ctx, param=param) from None
    rename = {"id": "id_col", "json": "as_json", "class_weight": "class_weight"}
    defaults = {}
    for key, v in cfg.items():
        if key in ("target", "drop", "hidden") and isinstance(v, list):
            v = ",".join(str(x) for x in v)
        defaults[rename.get(key, key)] = v
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def config_option(help: str = "TOML file of options (keys mirror the option names); command-line flags win."):
    """--config FILE.toml for every command that takes the train options."""
    return click.option("--config", type=click.Path(dir_okay=False), callback=_load_config_defaults, is_eager=True,
                        expose_value=False, help=help)


class _Progress(StderrBar):
    """Renders the fit loop's per-epoch callback: a rich bar on a terminal, a line every few
    epochs in logs (HPC batch jobs), nothing with --quiet."""

    def __init__(self, epochs: int, quiet: bool):
        super().__init__(quiet)
        self.epochs = epochs
        self.every = max(1, epochs // 10)
        if self.wants_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn(), console=self.console, transient=True)
            self.task = self.bar.add_task("train", total=epochs, info="")

    def __call__(self, row: dict) -> None:
        info = f"train {row['train_loss']:.4f}  val {row['val_loss']:.4f}  best epoch {row['best_epoch']}"
        if self.bar:
            self.bar.update(self.task, completed=row["epoch"], info=info)
        elif not self.quiet and (row["epoch"] % self.every == 0 or row["epoch"] == 1):
            self.console.print(f"epoch {row['epoch']}/{self.epochs}  {info}")


def _split_table(split: dict) -> Table:
    table = Table(title=f"Split: {split['strategy']}", title_justify="left")
    table.add_column("")
    table.add_column("training", justify="right")
    table.add_column("validation", justify="right")
    table.add_row("samples", str(split["n_train"]), str(split["n_val"]))
    if split.get("n_groups_train") is not None:
        table.add_row("groups", str(split["n_groups_train"]), str(split["n_groups_val"]))
    for c in sorted(set(split["class_counts_train"]) | set(split["class_counts_val"]), key=str):
        table.add_row(f"class {c}", str(split["class_counts_train"].get(c, 0)), str(split["class_counts_val"].get(c, 0)))
    for b in sorted(set(split["batch_counts_train"]) | set(split["batch_counts_val"]), key=str):
        table.add_row(f"batch {b}", str(split["batch_counts_train"].get(b, 0)), str(split["batch_counts_val"].get(b, 0)))
    return table


def _summary_table(outcome, out_path: str) -> Table:
    fit = outcome.fit
    model = outcome.model
    h = fit.history
    best = h[fit.best_epoch - 1] if fit.best_epoch else {}
    table = Table(title="Training summary", title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("task", f"{model.task} ({len(model.classes)} {'classes' if model.task in ('binary', 'multiclass') else 'outputs'})")
    table.add_row("network", f"{model.network.n_inputs} → {model.network.hidden} → {model.network.n_outputs}, "
                  f"{model.network.activation}, {model.network.n_parameters:,} parameters, loss {model.loss['name']}")
    stop = "interrupted" if fit.interrupted else ("early stopping" if fit.stopped_early else "epoch limit")
    table.add_row("epochs", f"{fit.epochs_run} run ({stop}); best epoch {fit.best_epoch}, weights restored")
    if best:
        table.add_row("loss at best epoch", f"train {best['train_loss']:.4f} (inference mode {best['train_loss_eval']:.4f}), "
                      f"validation {best['val_loss']:.4f}")
    if fit.baseline:
        table.add_row("baseline loss", f"{fit.baseline['val_loss']:.4f} on validation (always predicting the training prior)")
    m = outcome.val_metrics
    keys = {"binary": ["balanced_accuracy", "roc_auc", "f1", "mcc"],
            "multiclass": ["balanced_accuracy", "accuracy", "f1_macro", "roc_auc_ovr"],
            "multilabel": ["balanced_accuracy", "f1_macro", "hamming_loss"],
            "regression": ["rmse", "mae", "r2", "pearson_r"]}[model.task]
    table.add_row("validation metrics", ", ".join(f"{k.replace('_', ' ')} {fmt(m.get(k))}" for k in keys))
    if outcome.diagnosis is not None:
        d = outcome.diagnosis
        table.add_row("learning curves", f"{d.label}" + (f" (runner-up: {d.runner_up})" if d.runner_up else "") + f" — {d.summary}")
    table.add_row("time", f"{fit.seconds:.1f} s")
    table.add_row("model", out_path)
    return table



# Everything that shapes a model: shared by train and by commands that train internally
# (the learning curve of diagnose, cross-validation).
_TRAIN_OPTIONS = [
    click.option("--task", type=click.Choice(["auto", "binary", "multiclass", "multilabel", "regression"]), default="auto", show_default=True),
    click.option("--val-size", type=float, default=0.2, show_default=True, help="Validation fraction (of groups when grouped)."),
    click.option("--val-data", type=click.Path(exists=True, dir_okay=False), default=None, help="Explicit validation table instead of a split."),
    click.option("--impute", type=click.Choice(["median", "mean", "zero"]), default=None, help="Fill missing values (fitted on training rows)."),
    click.option("--log1p", is_flag=True, help="log(1 + x) the features first (counts, TPM)."),
    click.option("--top-var", type=click.IntRange(min=1), default=None, help="Keep the N most variable features (on training rows)."),
    click.option("--standardize/--no-standardize", default=True, show_default=True, help="Z-score features with training mean and SD."),
    click.option("--hidden", default="128,64", show_default=True, help="Hidden layer widths, comma-separated ('' for none)."),
    click.option("--activation", type=click.Choice(["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]),
              default="relu", show_default=True),
    click.option("--dropout", type=float, default=0.0, show_default=True, help="Dropout rate after each hidden layer."),
    click.option("--batchnorm/--no-batchnorm", default=False, show_default=True),
    click.option("--l1", type=float, default=0.0, show_default=True, help="L1 penalty on weights."),
    click.option("--l2", type=float, default=0.0, show_default=True, help="L2 penalty on weights."),
    click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd"]), default="adam", show_default=True),
    click.option("--lr", type=float, default=1e-3, show_default=True, help="Learning rate."),
    click.option("--momentum", type=float, default=0.9, show_default=True, help="SGD momentum."),
    click.option("--weight-decay", type=float, default=0.01, show_default=True, help="AdamW decoupled weight decay."),
    click.option("--batch-size", type=int, default=32, show_default=True),
    click.option("--epochs", type=int, default=200, show_default=True, help="Most epochs to run."),
    click.option("--patience", type=int, default=20, show_default=True, help="Early stopping: epochs without validation improvement."),
    click.option("--min-delta", type=float, default=0.0, show_default=True, help="Early stopping: smallest improvement that counts."),
    click.option("--lr-schedule", type=click.Choice(["none", "plateau", "cosine"]), default="none", show_default=True),
    click.option("--augment-noise", type=float, default=0.0, show_default=True, help="SD of Gaussian noise on standardised training inputs."),
    click.option("--clip-norm", type=float, default=None, help="Clip the global gradient norm."),
    click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True),
    click.option("--seed", type=int, default=0, show_default=True, help="Same data, options, seed and threads give the same weights."),
    click.option("--loss", type=click.Choice(["auto", "ce", "bce", "focal", "hinge", "mse", "mae", "huber"]), default="auto", show_default=True,
              help="auto: ce for multiclass, bce for binary and multi-label, mse for regression."),
    click.option("--class-weight", default="none", show_default=True, help="none, balanced, or per class e.g. 'A=1,B=3'."),
    click.option("--pos-weight", type=float, default=1.0, show_default=True, help="BCE weight of positives."),
    click.option("--focal-gamma", type=float, default=2.0, show_default=True),
    click.option("--focal-alpha", type=float, default=None, help="Focal alpha for positives (1 - alpha for negatives)."),
    click.option("--label-smoothing", type=float, default=0.0, show_default=True, help="CE label smoothing alpha."),
]


def train_options(fn):
    """Add the column-role, preprocessing, network, optimisation and imbalance options."""
    for d in reversed(_TRAIN_OPTIONS):
        fn = d(fn)
    return role_options(fn)


def options_from_params(params: dict):
    """Build the library's TrainOptions from the parsed option values (removing them from params)."""
    from ..config import TrainOptions

    hidden = params.pop("hidden")
    try:
        hidden_list = [int(h) for h in csv_list(hidden)]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 128,64, got {hidden!r}", param_hint="--hidden") from None
    options = TrainOptions(
        target=csv_list(params.pop("target")), drop=csv_list(params.pop("drop")), id=params.pop("id_col"),
        hidden=hidden_list, **{k: params.pop(k) for k in list(params) if k in _OPTION_FIELDS},
    )
    options.validate()
    return options


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("data_file", metavar="DATA", type=click.Path(dir_okay=False, allow_dash=True))
@config_option()
@train_options
@click.option("-o", "--out", default="model.mlp", show_default=True, type=click.Path(dir_okay=False), help="Model file to write.")
@click.option("--history", "history_path", default=None, type=click.Path(dir_okay=False), help="Write the per-epoch table (CSV).")
@threads_option
@click.option("-q", "--quiet", is_flag=True, help="No progress or notes on stderr.")
@json_option
@debug_option
@handle_errors
def train(data_file, out, history_path, threads, quiet, as_json, debug, **params):
    """Train an MLP on a samples x features table with grouped validation and save the model.

    Samples of one patient (--group, default patient_id) never straddle the split; preprocessing
    is fitted on training rows only; early stopping restores the best epoch's weights.

    \b
    Examples:
      mlpcli train sample_data/tumour_subtypes.csv.gz -o subtypes.mlp --history history.csv
      mlpcli train cohort.tsv.gz --target subtype --group donor --log1p --class-weight balanced
    """
    from .. import model_io, pipeline

    options = options_from_params(params)
    epochs = options.epochs
    check_writable(out, "--out")
    if history_path:
        check_writable(history_path, "--history")
    err = stderr_console(quiet)
    with threads_context(threads), _Progress(epochs, quiet) as progress:
        outcome = pipeline.train(data_file, options, progress=progress)
    outcome.model.provenance["threads"] = threads
    model_io.save(outcome.model, out)
    if history_path:
        from ..history import history_csv

        write_text_atomic(history_path, history_csv(outcome.fit.history))

    if as_json:
        print_json({
            "model": out, "task": outcome.model.task, "classes": [str(c) for c in outcome.model.classes],
            "split": outcome.model.split, "fit": outcome.model.fit, "baseline": outcome.fit.baseline,
            "validation_metrics": outcome.val_metrics,
            "diagnosis": outcome.diagnosis.to_dict() if outcome.diagnosis is not None else None,
            "notes": outcome.notes, "warnings": outcome.warnings,
        })
    else:
        render_notes(err, outcome.notes, outcome.warnings)
        con = stdout_console()
        con.print(_split_table(outcome.model.split))
        con.print(_summary_table(outcome, out))
    if outcome.fit.interrupted:
        err.print(f"[yellow]Interrupted:[/] kept the best weights so far (epoch {outcome.fit.best_epoch}); model written to {out}.")
        sys.exit(130)
