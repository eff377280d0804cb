"""`mlpcli info`: what a model file holds, without Python."""

from __future__ import annotations

import os

import click
import numpy as np

from ..metrics import display_name, task_display_name
from ..text import one_line_name
from . import SHORT_HELP
from .console import check_stdout_open, print_json, stdout_console, Table
from .exits import handle_errors
from .formatting import fmt, fmt_ci, fmt_mean_sd, fmt_metric, per_class_recall
from .shared_options import CONTEXT_SETTINGS, debug_option, json_option, quiet_option


@click.command(context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["info"])
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("--features", "all_features", is_flag=True,
              help="List every feature name, and every one the model uses (default: the first 10 of each).")
@click.option("--config-out", "config_out", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True),
              default=None,
              help="Write the model's training options (those it was given that differ from the defaults, and the "
                   "threads) as a config file that `mlpcli train DATA --config FILE` reads to train it again "
                   "('-': standard output, instead of the summary).")
@json_option
@quiet_option  # the one rule of every command; info writes no notes or progress, so it changes nothing
@debug_option
@handle_errors
def info(model_path, all_features, config_out, as_json, quiet, debug):
    """Show what a model file holds: task, classes and positive class, features, preprocessing,
    architecture and parameter count, training options, split, held-out metrics, learning-curve
    verdict, data checksum and versions.

    \b
    Examples:
      mlpcli info subtypes.mlp
      mlpcli info subtypes.mlp --features --json | jq '.features.names'
      mlpcli info subtypes.mlp --config-out subtypes.toml   # then: mlpcli train DATA --config subtypes.toml
    """
    from .. import model_io
    from ..model_summary import describe
    from .outputs import check_stdout_not_input, check_writable, distinct_files, on_standard_output, one_stdout_writer

    check_stdout_not_input({"MODEL": model_path})  # `info m.mlp >> m.mlp` wrote the summary into the model
    if config_out is not None:
        if not str(config_out).strip():  # ("cannot write : it is a directory")
            raise click.UsageError("--config-out: an empty file name; give the config file's name, or - for standard "
                                   "output")
        # the TOML and the JSON both on standard output read as neither; with --config-out - alone, the TOML is
        # the result
        one_stdout_writer({f"--config-out {config_out}": on_standard_output(config_out), "--json": as_json})
        if not on_standard_output(config_out):
            suffix = os.path.splitext(str(config_out))[1].lower()
            if suffix in (".json", ".yaml", ".yml", ".ini", ".csv", ".tsv"):  # TOML under another format's name
                raise click.UsageError(f"--config-out {config_out}: the file is TOML (what train --config reads); "
                                       "name it .toml")
            check_writable(config_out, "--config-out")  # a name ending in "/", a missing directory: before any work
            # `--config-out m.mlp` replaced the model it read by the config, exit 0
            distinct_files({"--config-out": config_out}, {"MODEL": model_path})
    if not as_json:  # the summary is the result: not lost on a closed standard output
        check_stdout_open("the summary")
    model = model_io.load(model_path)
    if config_out is not None:
        _write_config(model, model_path, config_out)
        if on_standard_output(config_out):  # the TOML is the result (/dev/stdout too: the summary after it was not)
            return
    doc = describe(model, model_path, all_features=all_features)
    if as_json:
        print_json(doc)
        return
    console = stdout_console()
    console.print(_table(doc), width=_pipe_width(console, doc))


def _write_config(model, model_path: str, out: str) -> None:
    """``--config-out``: the model's training options as a config file (``config_file.options_toml``), with what it was
    trained on and with as comments."""
    from ..config_file import options_toml
    from ..fileio import write_text_atomic

    prov = model.provenance or {}
    versions = prov.get("versions") or {}
    header = [f"the training options of {os.path.basename(model_path)}: mlpcli train DATA --config THIS_FILE",
              f"trained on {prov.get('data_file')} (values and names sha256 {prov.get('data_sha256')}"
              + (f"; patient and batch columns sha256 {prov['roles_sha256']}" if prov.get("roles_sha256") else "")
              + ")",
              "with " + ", ".join(f"{k} {v}" for k, v in versions.items()),
              "the same model file needs the same data under the same file name, this mlpcli source and BLAS build"]
    if model.recalibrated_on is not None:  # not a training option: a second step, on its own table
        rc = model.recalibration
        header.append(f"then recalibrated on {model.recalibrated_on} (sha256 {rc.cohort.get('sha256') or 'not recorded'})"
                      f": `mlpcli recalibrate` the trained model on that table again, --method "
                      f"{rc.fit.get('method') or 'auto'}")
    text = options_toml(model.config or {}, prov.get("threads"), header)
    if out == "-":
        click.echo(text, nl=False)
    else:
        write_text_atomic(out, text)


def _pipe_width(console, doc: dict) -> int | None:
    """The table's width when standard output is not a terminal (None on one: rich fits it, COLUMNS included).
    COLUMNS when set; else each row on one line, as wide as the widest row but the full feature lists of
    --features, which fold: at their one-line width (20,000 characters for 2,000 genes) every row of the table
    was padded to it, 220 kB of spaces for a 13-row summary."""
    from .console import columns_env

    if console.is_terminal:
        return None
    if columns_env() is not None:
        return columns_env()
    f = doc["features"]
    short = {**doc, "features": {**f, "names": f["names"][:10], "used_names": f["used_names"][:10]}}
    return console.measure(_table(short), options=console.options.update(max_width=10_000)).maximum


def _metric_value(task: str, score: float | None) -> float | None:
    """The main metric from a portfolio score, which the model stores as "higher is better" (RMSE negated):
    the RMSE itself, as `train` showed it."""
    from ..metrics import higher_is_better

    name = _main_metric(task)
    return score if score is None or not name or higher_is_better(name) else -score


def _main_metric(task: str) -> str:
    from ..metrics import main_metric_name

    return main_metric_name(task) if task in ("binary", "multiclass", "multilabel", "regression") else ""


def _refit_words(tr: dict, opts: dict) -> str:
    """The --refit network: its epochs, and the settings "auto" became for all the rows (the ones above are the
    members', for their training folds); a file written before they were stored says so."""
    refit = tr.get("refit")
    epochs = f"refit for {tr['refit_epochs']} {'iterations' if opts.get('optimizer') == 'lbfgs' else 'epochs'}"
    if not refit:
        return (f"{epochs} (the auto settings above are the members'; the refit network's were resolved for all "
                "the rows and are not stored: model written by an earlier version)")
    # the settings resolved from the data: "auto" ones, and any the members resolved otherwise (the chosen
    # candidate's input noise, which the options record as the members' value)
    keys = [key for key in ("lr", "batch_size", "l2", "augment_noise") if refit.get(key) is not None and
            (opts.get(key) == "auto" or refit[key] != tr["resolved"].get(key))]
    if opts.get("optimizer") == "lbfgs":
        keys = [key for key in keys if key not in ("lr", "batch_size")]
    names = {"lr": "lr", "batch_size": "batch", "l2": "l2", "augment_noise": "input noise"}
    settings = ", ".join(f"{names[key]} {fmt(refit[key])}" for key in keys)
    rows = f" on all {refit['n_train']:,} rows" if refit.get("n_train") else " on all rows"
    return epochs + rows + (f" (resolved for them: {settings}; the ones above are the members')" if settings else "")


def _temperature(T, calibration: dict | None = None, labels=None) -> str:
    """The calibration temperature (a multi-label model's one per label, ``labels``), and whether the fit stopped at
    an end of its range (``calibration.bound_note``; ``calibration``: the model's record of the fit, with its
    held-out log loss)."""
    from ..calibration import bound_note, temperature_words

    after = (calibration or {}).get("log_loss_after") if isinstance(calibration, dict) else None
    note = bound_note(T, after if isinstance(after, (int, float)) else None, labels)
    words = fmt(T) if np.ndim(T) == 0 else temperature_words(T, labels)
    return words if note is None else f"{words} ({note})"


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else str(n)


def _tuning_text(tuning: dict) -> str:
    """What `tune --refit` chose and how, in one line: the settings evaluated (of the grid's; drawn at random with
    --random), the folds, the setting and its cross-validated score — optimistic when it is the best of several
    settings scored on the same folds, a plain estimate for a grid of one —, the nested estimate, and what the
    scores were of when that is not the model shipped (one network per fold; the model an ensemble)."""
    from ..model_selection.grid import format_setting, option_name

    metric = str(tuning.get("metric") or "")
    name = display_name(metric)
    size, evaluated = tuning.get("grid_size"), tuning.get("evaluated")
    if evaluated is None:  # a file written before the count: the grid, not what was evaluated of it
        tried = (f"a grid of {_count(size)} setting{'' if size == 1 else 's'} (of "
                 f"{', '.join(option_name(k) for k in tuning.get('grid') or {})}; the file does not record how many "
                 "were evaluated)")
    elif evaluated == 1:
        tried = "1 setting" if size == 1 else f"1 of {_count(size)} settings (drawn at random)"
    else:
        tried = f"{_count(evaluated)} of {_count(size)} settings (drawn at random)" if tuning.get("random") else \
            f"{_count(evaluated)} settings"
    score = f"{name} {fmt_mean_sd(metric, tuning.get('cv_mean'), tuning.get('cv_sd'))}"
    chosen_from = tuning.get("chosen_from")
    if tuning.get("optimistic"):
        best_of = "up to " + _count(size) if chosen_from is None else _count(chosen_from)
        score += f", optimistic: the best of {best_of} on the same folds"
        verb = "chose"
    elif size == 1 or evaluated == 1:
        score += ", its cross-validated estimate: nothing was chosen"
        verb = "scored"
    else:  # the others failed, or trained the same networks
        score += ", its cross-validated estimate: the other settings failed or trained the same networks"
        verb = "chose"
    text = (f"tuned: {tried}, {tuning.get('strategy') or 'cross-validation'}; {verb} "
            f"{format_setting(tuning.get('setting') or {})} ({score})")
    nested = tuning.get("nested")
    if nested:
        if nested.get("mean") is None:
            text += f"; nested CV: none of its {nested.get('folds')} outer folds has a score"
        else:
            scored, folds = nested.get("scored", nested.get("folds")), nested.get("folds")
            over = f"{folds}" if scored == folds else f"{scored} of {folds}"
            text += (f"; nested CV, the honest estimate: {name} {fmt_mean_sd(metric, nested['mean'], nested.get('sd'))} "
                     f"over {over} outer folds")
    if tuning.get("score_of_model") is not True and tuning.get("scored_as") and tuning.get("model"):
        text += (f"; {'the scores are' if nested else 'the score is'} of {tuning['scored_as']}, "
                 f"the model {tuning['model']}")
    return text


# How the stored conformity scores were held out, in words; "refit" read as scores of the refit network, which has
# no held-out rows: they are the cross-fitted members' out-of-fold scores, compared with the refit network's outputs
_SCORE_SOURCE = {"refit": ("out-of-fold scores of the cross-fitted members", "; the refit network has no held-out rows")}


def _trust_text(trust: dict, grouped: bool = True) -> str:
    """What predict can add with this model: prediction sets (--coverage), out-of-distribution flags (--ood), the
    absent-gene warning (each feature's share of zeros in training), the training rows it recognises; what the
    file lacks, said once. ``grouped``: the model was trained with a patient column (else each row is a unit of its
    own, not a patient)."""
    have, lacking = [], []
    sets, basis = trust["prediction_sets"], trust["ood"]
    if trust["applies"]:
        if sets is None:
            lacking.append("prediction sets (--coverage)")
        else:
            rows = f" of {sets['rows']:,} rows" if sets["rows"] != sets["scores"] else ""
            scores, why = _SCORE_SOURCE.get(sets["source"], (f"{sets['source']} scores", ""))
            if sets.get("cohort"):  # recalibrate --conformal cohort: the labelled table's, by the whole model
                scores = f"scores of {sets['cohort'].get('data') or 'a labelled cohort'} (recalibrate)"

            # without a patient column every row is its own unit: "400 patients" was said of 400 unrelated rows
            units = f"{sets['patients']:,.0f} patients" if grouped else "no patient column: each row its own unit"
            have.append(f"prediction sets (--coverage) from {sets['scores']:,} {scores}{rows} ({units}{why})")
        if basis is None:
            lacking.append("out-of-distribution flags (--ood)")
        else:
            if basis.get("cohort"):  # recalibrate --conformal cohort: the labelled table's samples
                cohort = basis["cohort"]
                samples = cohort.get("n") or basis["calibration_rows"]
                patients = f" of {cohort['patients']:,} patients" if cohort.get("patients") else ""
                on = (f"{samples:,} samples{patients} of {cohort.get('data') or 'a labelled cohort'} (recalibrate"
                      + ("; each patient counted once)" if patients else ")"))
            else:
                on = f"{basis['calibration_rows']:,} held-out " + ("patients (each counted once)"
                                                                    if basis["calibration_per_patient"] else "rows")
            have.append(f"out-of-distribution flags (--ood) from {basis['components']} components of "
                        f"{basis['features']:,} features and {basis['reference_rows']:,} training rows, calibrated on "
                        f"{on}" + ("" if basis["class_relative"] else " (the distance alone, not the class-relative one)"))
    (have if trust["absent_features_check"] else lacking).append("the absent-gene warning")
    if trust.get("training_rows") is not None:
        seen_as = trust.get("training_rows_seen_as") or "trained on"
        # the fingerprints are distinct: samples of equal values (a few discrete features) share one
        distinct, of = trust["training_rows"], trust.get("training_rows_of")
        rows = (f"{distinct:,} rows" if of == distinct else f"{distinct:,} distinct rows"
                + (f" of the {of:,}" if isinstance(of, int) else ""))
        have.append(f"recognising the {rows} it was {seen_as} (predict and evaluate name them)")
    else:
        lacking.append("recognising its training rows")
    if trust.get("cohort_rows") is not None:
        have.append(f"recognising the {trust['cohort_rows']:,} distinct rows of the table it was recalibrated on "
                    "(evaluate names them)")
    text = "; ".join(have)
    if lacking:
        text += ("; " if text else "") + (f"{', '.join(lacking)}: not stored (model written by an earlier version; "
                                          "retrain to use them)")
    if not trust["applies"]:
        text += "; prediction sets and out-of-distribution flags are for binary and multiclass models"
    return text


def _table(doc: dict) -> Table:
    table = Table(title=f"Model {doc['file']['path']}", title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", overflow="fold")
    f, net, tr, held = doc["features"], doc["network"], doc["training"], doc["held_out"]
    version = doc["file"]["format_version"]
    fmt_version = "" if version is None else f"model format {version}, "
    if doc["file"]["bytes"] is None:
        table.add_row("file", f"{fmt_version}read from a pipe (no size or modification time of its own)")
    else:
        threads = (doc.get("provenance") or {}).get("threads")  # the BLAS threads training ran with
        threads = f" ({threads})" if isinstance(threads, int) else ""
        table.add_row("file", f"{fmt_version}{doc['file']['bytes']:,} bytes, modified {doc['file']['modified']} (the "
                              f"model records no clock time: same data, options, seed and threads{threads} on the same "
                              "BLAS build and CPU kind, the versions row's, give the same bytes)")
    counts = doc["class_counts"]
    classes = ", ".join(f"{c} ({counts[c]})" if c in counts else c for c in doc["classes"])
    # the counts are of the rows the split trained on: all of them for an ensemble, the training part of a hold-out
    train_rows = (doc.get("split") or {}).get("n_train")
    # a multi-label model's counts are each label's positives (every row holds every label, present or absent)
    per = "positives per label" if doc["task"] == "multilabel" else "samples per class"
    of_rows = f" ({per} in the {train_rows:,} training rows)" if counts and isinstance(train_rows, int) else ""
    table.add_row("task", f"{doc['task']}: {classes}{of_rows}")
    if doc["positive_class"] is not None:
        table.add_row("positive class", f"{doc['positive_class']} (positive-class metrics, --threshold and "
                                        "--pos-weight refer to it)")
    roles = doc["roles"]
    table.add_row("roles", ", ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}"
                                     for k, v in roles.items() if v) or "not stored (model written by an earlier version)")
    shown = ", ".join(map(one_line_name, f["names"])) + (" …" if f["listed"] != "all" else "")
    table.add_row("features", f"{f['count']:,} ({f['listed']}: {shown})")
    if doc.get("matrix"):
        table.add_row("matrix", f"{doc['matrix']} of an .h5ad file (predict, evaluate and explain read the same one "
                                "unless --layer or --raw says otherwise, with a warning)")
    if f["used"] != f["count"]:
        used = ", ".join(map(one_line_name, f["used_names"])) + (" …" if f["listed"] != "all" and f["used"] > len(f["used_names"]) else "")
        table.add_row("features used", f"{f['used']:,}, which a table must supply ({used}); the others were "
                                       "dropped (constant, or not among --top-var's)")
    pre = doc["preprocessing"]
    steps = [s for s in ("log1p" if pre.get("log1p") else None,
                         f"impute {pre['impute']}" if pre.get("impute") else None,
                         f"top-var {pre['top_var']}" if pre.get("top_var") else None,
                         f"{pre['scaling']} scaling" if pre.get("standardize") else "no scaling") if s]
    if f["dropped_constant"]:
        steps.append(f"{f['dropped_constant']} constant features dropped")
    table.add_row("preprocessing", ", ".join(steps) + f"; fitted on {pre.get('fitted_on', '')}")
    several = net["members"] > 1
    kind = f"{net['members']} members, each" if several else "one network"
    layers = " → ".join(f"{w:,}" for w in net["layers"])
    # "5 members, each 12 → 128 → 3, ...; 10,255 parameters" read as 10,255 per member: say both, as train does
    parameters = f"{net['parameters']:,} parameters" + (f" ({net['parameters_per_member']:,} each)" if several else "")
    calibration = (f"; temperature {_temperature(net['temperature'], tr.get('calibration'), doc['classes'])}"
                   if net["temperature"] is not None
                   else f"; not calibrated ({net['not_calibrated']})" if net.get("not_calibrated") else "")
    table.add_row("network", f"{kind} {layers}, " + (f"{net['activation']}"
                                                     + (", BatchNorm" if net.get("batchnorm") else "")
                                                     + f", dropout {fmt(net['dropout'])}, "
                                                     if net["activation"] else "no hidden layer, ")
                  + f"{net['dtype']}; {parameters}; loss {net['loss_words']}" + calibration)
    if net.get("decision_words"):
        table.add_row("labels", net["decision_words"])
    if net.get("recalibration_words"):
        table.add_row("recalibrated", net["recalibration_words"])
    opts = tr["options"]

    def setting(key: str, resolved: str | None = None) -> str:
        """The option as given, and what "auto" became (per member when they differ; ``resolved``: the name it is
        stored under); "—" when the model does not store it (files written before the options or the members'
        settings were)."""
        given, used = opts.get(key), tr["resolved"].get(resolved or key)
        if used is None:
            return fmt(given)
        used = "/".join(fmt(u) for u in used) if isinstance(used, list) else fmt(used)
        return used if given != "auto" or used in ("—", "") else f"{used} (auto)"

    best = ", ".join(map(str, tr["best_epochs"])) or "—"
    if not (tr["strategy"] or opts or tr["best_epochs"]):  # not "hold-out; best epochs —; optimizer —, lr —, ..."
        table.add_row("training", "not stored (model written by an earlier version)")
    else:
        # lbfgs steps on every row by line search: a learning rate and batch size would be settings it never read
        lbfgs = opts.get("optimizer") == "lbfgs"
        converged = [c for c in (tr.get("converged") or []) if isinstance(c, bool)]
        if lbfgs:  # every row until the loss stops falling, or the iteration limit: the last weights kept either way
            reached = (f"{sum(converged)} of {len(converged)} converged" if converged else "to convergence")
            steps = f"optimizer lbfgs (every row, {reached}; iterations, not epochs)"
        else:
            optimizer = opts.get("optimizer")
            steps = f"optimizer {fmt(optimizer)}, lr {setting('lr')}, batch {setting('batch_size')}"
            # what a methods section states beside them: the limits of the run and the optimizer's own settings
            patience = setting("patience")
            patience = "auto (growing with the best epoch)" if patience == "auto" else patience
            steps += f", at most {setting('epochs', 'max_epochs')} epochs, patience {patience}"
            if optimizer == "adamw":
                steps += f", weight decay {setting('weight_decay')}"
            if optimizer in ("adam", "adamw"):
                steps += f", beta2 {fmt(opts.get('adam_beta2'))}"
            if optimizer == "sgd":
                steps += f", momentum {fmt(opts.get('momentum'))}"
            if opts.get("lr_schedule") not in (None, "none"):
                steps += f", schedule {fmt(opts.get('lr_schedule'))}"
            if opts.get("min_delta"):
                steps += f", min delta {fmt(opts.get('min_delta'))}"
        # L-BFGS keeps its last iterate, not a best one
        table.add_row("training", f"{tr['strategy'] or 'hold-out'}; {'iterations run' if lbfgs else 'best epochs'} {best}; "
                                  f"{steps}, l2 {setting('l2')}, input noise {setting('augment_noise')}, "
                                  f"seed {fmt(opts.get('seed'))}"
                                  + (f"; {_refit_words(tr, opts)}" if tr["refit_epochs"] else "")
                                  + ("; interrupted" if tr["interrupted"] else ""))
    if tr["portfolio"]:
        several = doc["task"] == "regression" and len(doc["classes"]) > 1  # scored in units of each target's SD
        # chosen by held-out log loss (``portfolio.by_log_loss``): that is the figure shown first, the main metric beside
        by_loss = all(isinstance(p.get("log_loss"), (int, float)) for p in tr["portfolio"])
        main = _main_metric(doc["task"])
        table.add_row("architecture choice", ("chosen by out-of-fold log loss (" + display_name(main) + " beside): "
                                              if by_loss else "") +
                      ("RMSE of the targets in units of their SDs: " if several else "") + "; ".join(
            f"{'hidden ' + ','.join(map(str, p['hidden'])) if p['hidden'] else 'no hidden layer'}"
            f"{' by L-BFGS' if p.get('optimizer') == 'lbfgs' else ''}"
            f"{' at learning rate ' + format(p['lr'], '.2g') if isinstance(p.get('lr'), (int, float)) else ''}"
            f"{' with input noise ' + fmt(p.get('augment_noise')) if p.get('augment_noise') else ''}: "
            + (f"{fmt(p['log_loss'], 'loss')} ({fmt_metric(main, _metric_value(doc['task'], p['score']))})" if by_loss
               else f"{fmt_metric(main, _metric_value(doc['task'], p['score']))}")
            for p in tr["portfolio"])
            # the candidates were scored by their most probable class: beside a balanced model's out-of-fold figure
            # (of its rule's labels) the two read as disagreeing
            + ("; scored by the most probable class, before the decision rule" if (net.get("decision") or {})
               .get("rule") == "balanced" else ""))
    if held["metrics"]:
        m = held["metrics"]
        # the threshold and the positive class are settings the metrics were computed at, not metrics
        settings = ("n", "threshold", "positive_class")
        # a multi-label model's ECE is of every label's calls (each at max(p, 1 - p)), not of a top label
        shown = ", ".join(f"{task_display_name(k, doc['task'])}"
                          f" {fmt_metric(k, v)}" for k, v in m.items() if k not in settings and v is not None)
        at = f", threshold {fmt(m['threshold'])}" if m.get("threshold") is not None else ""
        if doc["task"] == "regression" and len(doc["classes"]) > 1:
            at += (f"; RMSE and MAE pooled over the {len(doc['classes'])} targets' units, R² the mean of the "
                   "targets' R²" + (", each below" if held.get("per_target") else ""))
        iv = held.get("interval")
        if iv and iv.get("ci"):
            at += (f"; {display_name(iv['metric'])} {fmt_ci(iv['metric'], iv['ci'], iv['level'])} from "
                   f"{iv['resamples']:,} bootstrap resamples of the {iv['n_units']:,} {iv['units']}")
        tuned = doc.get("tuning") or {}
        if tuned.get("optimistic"):  # tune chose the setting by its score on these same samples
            of = tuned.get("chosen_from") or f"up to {_count(tuned.get('grid_size'))}"
            at += f"; optimistic: tune --refit chose the setting from {of} by their scores on these samples"
        if held.get("crossed"):  # said in a row of its own below (a long metrics row is wide in a pipe)
            at += "; cross-fitted"
        if tr.get("refit_epochs"):  # the members' held-out figures: the shipped network has no held-out rows
            at += "; the cross-fitted members', which overstate the refit network that ships"
        if net.get("recalibration"):  # the figures are the trained model's, labelled by its training rule
            cohort = (net["recalibration"].get("cohort") or {}).get("data") or "a labelled cohort"
            at += f"; of the model as trained, before its recalibration on {cohort} (its rule and threshold since moved)"
        table.add_row(f"{held['kind'] or 'held-out'} metrics", f"{shown} (n = {m.get('n')}{at})")
        if held.get("crossed"):  # (the architecture too where --hidden auto chose among candidates)
            chose = len(tr.get("portfolio") or []) > 1
            table.add_row("held-out estimate", "cross-fitted: each row scored at the epoch "
                          + ("and by the architecture " if chose else "")
                          + "chosen on other held-out rows of its network; the "
                          + ("architecture and decision rows show" if chose else "decision row shows")
                          + " the networks' own predictions")
        if held.get("per_class"):  # each class's recall (absent in older model files)
            table.add_row(f"{held['kind'] or 'held-out'} recall", per_class_recall(held["per_class"]))
        for t in held.get("per_target") or []:  # each target in its own units (absent in older model files)
            table.add_row(f"  {t.get('target')}", ", ".join(f"{display_name(k)} {fmt_metric(k, t.get(k))}"
                                                           for k in ("rmse", "mae", "r2", "pearson_r")))
        for t in held.get("per_label") or []:  # the calls' recall and precision beside the ranking metrics (not in
            keys = [k for k in ("recall", "precision") if k in t] + ["roc_auc", "average_precision", "log_loss"]
            called = f", {t['called']} called" if "called" in t else ""  # model files from before they were kept)
            table.add_row(f"  {t.get('label')}", ", ".join(f"{display_name(k)} {fmt_metric(k, t.get(k))}" for k in keys)
                          + f" ({t.get('support')} positive{called})")
    else:
        table.add_row("held-out metrics", "not stored (model written by an earlier version)")
    if doc.get("tuning"):
        table.add_row("tuning", _tuning_text(doc["tuning"]))
    table.add_row("for predict", _trust_text(doc["trust"], (doc.get("roles") or {}).get("group") is not None))
    if doc["diagnosis"]:
        whose = " (members' mean curves)" if len(tr.get("best_epochs") or []) > 1 else ""
        runner = doc["diagnosis"].get("runner_up")
        table.add_row("learning curves", f"{doc['diagnosis']['label']}{whose}"
                                         f"{f' (runner-up: {runner})' if runner else ''} — {doc['diagnosis']['summary']}")
    prov = doc["provenance"]
    if prov:
        versions = ", ".join(f"{k} {v}" for k, v in (prov.get("versions") or {}).items())
        kind = {"10x": " (a 10x Genomics directory: raw counts)", "h5ad": " (an AnnData file)"}.get(
            prov.get("data_kind"), "")
        table.add_row("data", f"{prov.get('data_file')}{kind}: {_count(prov.get('n_samples'))} samples × "
                              f"{_count(prov.get('n_features'))} features; values and names sha256 "
                              f"{prov.get('data_sha256')} (of the table as read, not the file's bytes; of a sparse matrix: of its "
                              "stored arrays)" + (f"; patient and batch columns sha256 {prov['roles_sha256']}"
                                                  if prov.get("roles_sha256") else ""))
        table.add_row("versions", versions)
    return table
