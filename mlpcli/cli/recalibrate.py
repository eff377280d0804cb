"""`mlpcli recalibrate`: a model's probabilities updated for a new population, fitted on a labelled cohort of it."""

from __future__ import annotations

import click

from ..fileio import write_together
from ..conformal import CONFORMAL_CHOICES
from ..recalibration import METHODS, p_text
from . import SHORT_HELP
from .console import binary_stdin, check_stdout_open, print_json, stdout_console, Table
from .exits import handle_errors, reading
from .formatting import fmt
from .outputs import check_model_name, check_writable, distinct_files, on_standard_output
from .shared_options import (CONTEXT_SETTINGS, debug_option, json_option, named_file, quiet_option, role_options,
    threads_context, threads_option)
from .predict import NoteRenderer, ReadProgress, chunking, load_model, reading_options, role_flags

_WHAT = {"none": "no update", "intercept": "intercept update (recalibration in the large)",
         "logistic": "logistic recalibration (intercept and slope)"}


def _who(result) -> str:
    return f"{result.n:,} samples" + (f" of {result.cohort['patients']:,} patients" if "patients" in result.cohort else "")


def _figures_table(result, data_file: str) -> Table:
    binary = result.model.task == "binary"
    who = _who(result)
    table = Table(title=f"Updates fitted on {data_file} ({who}; in-sample figures)", title_justify="left")
    for name in ("update", "log loss", "ECE", *(["observed / expected"] if binary else []), "kept"):
        table.add_column(name, justify="left" if name == "update" else "right")
    for name, f in result.figures.items():
        if f is None:  # no finite fit (the classes separated)
            table.add_row(_WHAT[name], "—", "—", *(["—"] if binary else []), "")
            continue
        table.add_row(_WHAT[name], fmt(f["log_loss"], "loss"), fmt(f["ece"], "loss"),
                      *([fmt(f.get("observed_expected"))] if binary else []), "◀" if name == result.kept else "",
                      style="bold" if name == result.kept else None)
    return table


def _labels_table(result, data_file: str) -> Table:
    who = _who(result)
    table = Table(title=f"Updates per label, fitted on {data_file} ({who}; in-sample figures)", title_justify="left")
    for name in ("label", "positives", "kept", "log loss", "observed / expected", "closed test"):
        table.add_column(name, justify="left" if name in ("label", "kept") else "right")
    for label, f in result.figures.items():
        test = ((f"{p_text(f['p_overall'])}" + (f"; slope {p_text(f['p_slope'])}" if f.get("p_slope") is not None
                                                 else "")) if f.get("p_overall") is not None else "—")
        table.add_row(label, f"{f['positives']:,}", _WHAT[f["kept"]].split(" (")[0],
                      f"{fmt(f['log_loss_before'], 'loss')} → {fmt(f['log_loss_after'], 'loss')}",
                      f"{fmt(f['observed_expected_before'])} → {fmt(f['observed_expected_after'])}", test)
    return table


def render(result, data_file: str, out: str) -> None:
    con = stdout_console()
    if result.model.task == "multilabel":
        con.print(_labels_table(result, data_file))
        rc = result.model.recalibration
        con.print((f"kept: {rc.words(result.model.classes)}; written to {out}" if rc is not None else
                   f"kept: no update for any label; {out} is the model unchanged"), soft_wrap=True)
        return
    con.print(_figures_table(result, data_file))
    t = result.test
    if t.get("separated"):
        con.print(f"closed test (likelihood ratio, samples counted as independent): the intercept update against none "
                  f"{t['lr_overall']:.3g} on {t['df_overall']} df, {p_text(t['p_overall'])} (alpha {t['alpha']:g}); "
                  "no logistic update: the classes are separated", soft_wrap=True)
    else:
        con.print(f"closed test (likelihood ratios, samples counted as independent): the logistic update against none "
                  f"{t['lr_overall']:.3g} on {t['df_overall']} df, {p_text(t['p_overall'])}; the slope against the "
                  f"intercept update alone {t['lr_slope']:.3g} on 1 df, {p_text(t['p_slope'])} (alpha {t['alpha']:g})",
                  soft_wrap=True)
    rc = result.model.recalibration
    if result.kept == "none":
        cohort_sets = result.model.conformal is not None and result.model.conformal.on_model_proba
        con.print(f"kept: no update — the model's probabilities fit this cohort as they are"
                  f"{' (the closed test)' if result.method == 'auto' else ''}; {out} is the model "
                  + ("with its prediction sets calibrated on this cohort" if cohort_sets else "unchanged"),
                  soft_wrap=True)
    else:
        con.print(f"kept: {rc.words(result.model.classes)}"
                  f"{' (chosen by the closed test)' if result.method == 'auto' else ' (--method)'}; written to {out}, "
                  "which predict, evaluate and explain use with it after the model's temperature", soft_wrap=True)


@click.command(context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["recalibrate"])
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("data_file", metavar="DATA", type=click.Path(allow_dash=True))  # a directory: 10x Genomics
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), callback=named_file,
              help="The recalibrated model file to write (not MODEL: the model it was made from stays as it was).")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="intercept: move the probabilities by one shift per class (the outcome's or the classes' "
                   "frequency differs in this population); logistic: also scale their log-odds by a slope (too "
                   "extreme below 1, too moderate above); auto: the closed test's choice among no update, the "
                   "intercept and the logistic update (Vergouwe et al. 2017), the simplest the data do not reject.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="The closed test's significance level (--method auto).")
@click.option("--conformal", type=click.Choice(CONFORMAL_CHOICES), default=None,
              help="Where the written model's prediction sets (predict --coverage) take their calibration from: "
                   "cohort (the default) — DATA's samples, scored by the probabilities the model now reports, so the sets' level "
                   "holds for new samples of DATA's population (split conformal, each patient once); training — the "
                   "training rows' held-out scores, as before (their level holds for the training population). "
                   "The out-of-distribution flag (predict --ood) follows: its p-values among DATA's samples, or "
                   "among the held-out training rows. Binary and multiclass models.")
@reading_options
@role_options
@threads_option
@quiet_option
@json_option
@debug_option
@handle_errors
def recalibrate(model_path, data_file, out, method, alpha, conformal, fill_missing, max_missing, chunk_mb, chunksize, threads,
                quiet, as_json, debug, **params):
    """Update MODEL's probabilities for the population of the labelled table DATA (model updating).

    A model is often miscalibrated in a new hospital, platform or population (`mlpcli evaluate` measures it:
    observed / expected events, the calibration intercept and slope). With p the model's (calibrated)
    probabilities on DATA, recalibration fits P' = softmax(b log p + a) — for a binary model
    logit p' = a + b logit p — by maximum likelihood: the intercept update fits a alone (b = 1), the logistic
    update a and b (a binary model's risks keep their order; a multiclass model's classes move against each
    other). A multi-label model's labels are updated each as a binary model, each by its own closed test (held to
    Holm's levels over the labels tested). --method auto keeps the simplest update a closed test does not reject. DATA's class mix becomes the
    model's: a table sampled by class (case-control) gives the wrong baseline (give predict --prevalence then). The update is stored in the written model, applied after its temperature by
    predict, evaluate and explain; its decision rule then divides by DATA's class shares (a balanced rule keeps
    its meaning, and --prevalence moves the probabilities from DATA's mix). Prediction sets (--coverage) are
    calibrated on DATA (--conformal cohort), so their level holds in DATA's population, where the training rows'
    promised nothing; so is the OOD flag (--ood), which then flags samples further from the training data than
    DATA's own, where the training calibration flags most samples of a site that differs. Binary and multiclass models need 10 samples of every class in DATA; a multi-label
    model's labels with fewer than 10 positives or negatives there are left as they are.

    The figures are in-sample (fitted and scored on DATA): to judge the update, evaluate the written model on
    another cohort of the same population.

    \b
    Example:  mlpcli recalibrate risk.mlp new_hospital.csv -o risk_new_hospital.mlp
    Example:  mlpcli recalibrate subtypes.mlp site_b_labelled.csv --method intercept -o subtypes_site_b.mlp
    """
    from .. import model_io
    from ..predict.recalibrate import recalibrate as fit_update

    reading(data_file)  # a data error naming no file is said of it
    roles = role_flags(params)
    chunks = chunking(chunksize, chunk_mb)
    if on_standard_output(out):  # "-", /dev/stdout, /dev/fd/1: the report would follow the zip's bytes there
        raise click.UsageError(f"-o {out}: give the recalibrated model a file name (a model file is not written to "
                               "standard output)")
    distinct_files({"--out": out}, {"MODEL": model_path, "DATA": data_file, "--samples": roles.samples})
    check_model_name(out, "--out")
    check_writable(out, "--out")
    if not as_json:
        check_stdout_open("the recalibration report")
    model = load_model(model_path, None)
    with threads_context(threads), ReadProgress(quiet, "read") as progress:
        result = fit_update(model, data_file, method=method, alpha=alpha, conformal=conformal, roles=roles,
                            fill_missing=fill_missing,
                            max_missing=max_missing, **chunks, progress=progress,
                            stdin=binary_stdin() if data_file == "-" else None)
    NoteRenderer(quiet, result)()
    write_together({out: model_io.to_bytes(result.model, out)})
    if as_json:
        print_json({"model": model_path, "data": data_file, "out": out, **result.to_dict()})
    else:
        render(result, data_file, out)
