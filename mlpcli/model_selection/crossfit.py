"""The model ``train`` ships: a cross-fitted ensemble (or one hold-out network), its architecture chosen
from a small portfolio on training folds only, its probabilities calibrated on out-of-fold logits.

    Dataset ─kfold (grouped, stratified)─▶ K folds
       member k: fit_run(other folds → train, fold k → early stopping)        for each candidate architecture
       out-of-fold outputs: every row scored by the member that never saw its group
    ─▶ the candidate with the best out-of-fold main metric (ties: the simpler one)
    ─▶ temperature fitted on its out-of-fold logits
    ─▶ Model(members, reference preprocessing on all rows, temperature)

``--folds 1`` (or ``--val-data``) trains one network on a grouped hold-out instead; everything else is the
same, with "out-of-fold" meaning the validation rows. ``--refit`` trains one network on all rows for the
members' median best epoch and ships it (the scores stay the members' out-of-fold ones, which on the accuracy
benchmark overstated the refit network by 0.020 ± 0.006 of balanced accuracy, the ensemble by 0.006 ± 0.009).

Everything that decides something looks only at training rows: member k's preprocessing, its early
stopping and its weights see its own training folds; the choice of architecture and the temperature see
out-of-fold outputs, which ``cv`` keeps honest by running all of this inside each of its training parts.
"""


import math
import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .. import auto_defaults, data, interrupts
from ..calibration import Calibration
from ..config import AUTO, TrainOptions, offset_seed, require_options
from ..decision import DECIDED, Decision
from ..decision import choose as choose_decision
from ..errors import DataError, OptionError, TrainingError
from ..history import MEMBER
from ..model_io import Member, Model
from ..parallel import Plan
from ..text import count_of
from ..background import beside, quick_switches
from .fitting import (FittedRun, FoldCache, check_fits_memory, class_loss_weights, fit_run, prepare_fold,
                      worker_copy_bytes, fewer_at_once_note, label_loss_weights,
                      resolve_log1p)
from .crossed import CROSSING_PARTS, Crossing, CrossedEstimate, crossed_estimate
from .held_out import check_column_names, exact_if_regression, held_out_names, prediction_columns
from .portfolio import (WIDE_FEATURES_PER_ROW, Candidate, by_log_loss, choose_candidate, held_out_score, noise_used,
                        portfolio, too_wide_for_hidden)
from .splits import SplitSummary, crossing_parts, holdout, kfold, max_folds, require_dataset, summarize_split
from .held_out_fits import calibrate_on_held_out, PreparedRows, store_trust


__all__ = ["FittedModel", "fit_model", "validation_dataset",
           "held_out_frame", "check_held_out_frame", "check_decision", "check_missing", "decision_shares"]


@dataclass
class FittedModel:
    """What ``fit_model`` returns: the model and the evidence behind it."""

    model: Model  # members, reference preprocessing, temperature, task/classes/features/loss (no provenance)
    runs: list[FittedRun]  # the shipped candidate's members (the refit run last with --refit)
    scored: data.Dataset  # the rows the held-out scores are for: all rows (out-of-fold) or the validation rows
    scored_rows: np.ndarray | None  # their indices in the training table (None with --val-data)
    proba: np.ndarray  # (n_scored, k) held-out predictions as Model.predict_output gives them (calibrated)
    held_out_by: np.ndarray  # (n_scored,) 1-based member that held each scored row out
    strategy: str  # how members were split, for the summary
    split: SplitSummary | None  # the hold-out split (one network), None for cross-fitting
    history: list[dict]  # per member and epoch (with "member" for an ensemble)
    members: list[dict]  # per member: best epoch, epochs run, stopped early, best validation loss
    options: TrainOptions  # as resolved (folds, log1p, hidden made concrete)
    calibration: Calibration | None = None
    portfolio: list[dict] | None = None  # per candidate with --hidden auto: hidden, out-of-fold score
    refit_epochs: int | None = None
    refit: dict | None = None  # with --refit: the refit network's run as ``members`` lists one (its "auto" settings)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C / SIGTERM: the model holds what was trained by then
    # a stop signal that came once training was over (scoring, calibrating): held until the model was complete,
    # which the caller keeps (writes) before it stops (``interrupts.finishing``); the model is not cut short
    stopped: list[BaseException] = field(default_factory=list)
    # the held-out estimate no choice was made on (``crossed``): what the fit kept for it, and the estimate (None:
    # fewer than two parts, as on a single validation patient; the held-out scores are then ``proba``'s)
    crossing: Crossing | None = None
    estimate: CrossedEstimate | None = None

    @property
    def estimate_proba(self) -> np.ndarray:
        """(n_scored, k) the held-out predictions the reported estimate is of: cross-fitted where there is one."""
        return self.proba if self.estimate is None else self.estimate.proba

    def estimate_labels(self) -> np.ndarray | None:
        """The labels the reported estimate counts (classification): the cross-fitted ones, else the model's."""
        if self.estimate is not None:
            return self.estimate.predicted
        return self.model.predict_classes(self.proba) if self.model.task in DECIDED else None


def validation_dataset(ds: data.Dataset, options: TrainOptions) -> data.Dataset:
    """The ``--val-data`` table read as the training table is (``data.load_dataset``: a text or parquet table,
    an .h5ad file, a 10x directory with the ``--samples`` sheet; the same reading options) with the training
    table's roles and classes, its features in the training order."""
    roles = ds.roles
    source = f"--val-data {options.val_data}"
    try:
        # the id and batch columns as the user named them, else the validation table's own defaults: a default
        # of the training table's format (obs_names, sample_id) is not the other format's, and was refused as
        # "--id column 'sample_id' not found" though no --id was given
        val_ds, read_notes = data.load_dataset(
            options.val_data, target=options.target, group=roles.group if roles else None,
            no_group=roles is None or roles.group is None, id=options.id,
            batch=options.batch, drop=options.drop, task=ds.task,
            features_in_rows=options.features_in_rows, sep=options.sep, decimal=options.decimal,
            samples=options.samples, layer=options.layer, raw=options.raw, var_names=options.var_names,
            classes=ds.classes if ds.task in data.CLASSIFICATION_TASKS else None)
    except DataError as exc:
        # the reader's errors name a column, a row, a label, not always the file: said of the training
        # table, "missing values in 'f02'" or "labels the model does not know" sent users to the wrong file
        path, message = str(options.val_data), str(exc)
        if path != "-" and message.startswith(f"{path}: "):  # named by its path: by its option too
            message = message[len(path) + 2:]
        elif "--val-data" in message:
            raise
        elif path != "-" and path in message:  # "-" is in many a message. Named by its option too: without it the
            # command's own table went in front ("train.csv: table file not found: nope.csv", the wrong file blamed)
            raise type(exc)(f"--val-data: {message}") from None
        # the classes it is checked against are the training table's: no model exists yet
        message = message.replace("labels the model does not know", "labels the training table does not have")
        raise type(exc)(f"{source}: {message}") from None
    # how its rows were joined to the sheet, said of it: 10 of its samples without a sheet row were left out
    # without a word, the training table's join note the only one shown
    val_ds.notes += [f"{source}: {n}" for n in read_notes if n.startswith("--samples")]
    val_ds.warnings = [w if w.startswith(source) else f"{source}: {w}" for w in val_ds.warnings
                       if "--samples" in w or "sheet" in w]
    given = list(val_ds.feature_names)
    val_ds = data.align_features(val_ds, ds.feature_names, source)
    if len(given) > len(ds.feature_names):
        val_ds.notes.append(_ignored_columns(given, ds.feature_names, source))
    if options.impute is None and val_ds.missing is not None and val_ds.missing.any():
        _check_no_missing(val_ds, source)
    return val_ds


def _ignored_columns(given: list[str], feature_names: list[str], source: str) -> str:
    """The note for the validation table's feature columns that the training table does not have (predict
    notes the columns it ignores likewise): ``given`` matched to ``feature_names`` by the one rule of every
    reader (``data.names``)."""
    from ..data.names import match_names

    used = set(match_names(list(feature_names), given, source=source).columns.values())
    extra = [n for n in given if n not in used]
    shown = ", ".join(repr(n) for n in extra[:4]) + (f" and {len(extra) - 4} more" if len(extra) > 4 else "")
    return f"{source}: ignored {len(extra)} column{'s' * (len(extra) != 1)} the training table does not have: {shown}"


def _check_no_missing(val_ds: data.Dataset, source: str) -> None:
    """A DataError naming ``source`` for missing values in the features the model uses (the validation table's
    own count, ``val_ds.missing``, includes the columns it ignores, in the table's order)."""
    X = val_ds.X
    if data.is_sparse(X):
        X = X.tocoo()
        counts = np.bincount(X.col[np.isnan(X.data)], minlength=X.shape[1])
    else:
        counts = np.isnan(X).sum(axis=0)  # (d,)
    if counts.any():
        raise DataError(f"{source}: {data.preprocess_messages.missing_message(val_ds.feature_names, counts)}")


@dataclass
class FittedCandidate:
    """A candidate's members and their held-out outputs."""

    spec: Candidate
    runs: list[FittedRun]
    logits: np.ndarray  # (n_scored, k) raw outputs of the member that held each row out
    score: float
    folds: list[int] = field(default_factory=list)  # the fold each run held out (all of them unless interrupted)
    # (n_scored, k) the same rows each at the epoch the rest of its member's held-out rows chose, and (n_scored,)
    # whether it was (``early_stopping.CrossedStopping``; ``crossed.Crossing``)
    crossed: np.ndarray | None = None
    crossed_rows: np.ndarray | None = None

    @property
    def choice_logits(self) -> np.ndarray:
        """(n_scored, k) the held-out outputs the architecture is chosen on (``portfolio.choose_candidate``): each row
        at the epoch the rest of its member's held-out rows chose (``crossed``), else at its member's best epoch.
        Scored at the epoch chosen on them, the rows flatter a candidate by the luck of that choice, and the more so
        the more its validation loss moves from epoch to epoch: a softmax regression memorising 2,000 genes of 488
        samples read a held-out log loss 0.075 below its cross-fitted one, the hidden layer with input noise beside
        it 0.055, and the comparison of the two was decided by that difference."""
        return self.logits if self.crossed is None else self.crossed

    def place(self, rows: np.ndarray, out: np.ndarray, run: FittedRun, n: int) -> None:
        """Set rows ``rows`` (of ``n``) of the held-out outputs from ``out`` (len(rows), k), ``run``'s at its
        best epoch, and of the crossed ones from its result."""
        if self.logits is None:
            self.logits = np.zeros((n, out.shape[1]))
        if self.crossed is None:
            self.crossed, self.crossed_rows = np.zeros((n, out.shape[1])), np.zeros(n, dtype=bool)
        self.logits[rows] = out
        crossed = run.result.crossed_outputs
        if crossed is None:  # no parts to cross; L-BFGS (``converged`` set) chose no epoch to cross
            self.crossed[rows] = out
            self.crossed_rows[rows] = run.result.converged is not None
        else:
            self.crossed[rows] = Member(run.network, run.preprocessor, run.target_scaling).unscale(
                np.asarray(crossed, dtype=np.float64))
            self.crossed_rows[rows] = True

    def restricted(self, rows: np.ndarray) -> None:
        """Keep only the scored rows ``rows`` (an interrupted ensemble's)."""
        self.logits = self.logits[rows]
        if self.crossed is not None:
            self.crossed, self.crossed_rows = self.crossed[rows], self.crossed_rows[rows]


def _announce(progress, strategy: str, sizes: list[tuple[int, int]], candidates: list[Candidate]) -> None:
    """Tell ``progress`` how the rows are split and what will be trained, before the first epoch (so a
    user can stop a long run that read the wrong column): ``{"event": "plan", "strategy", "sizes"
    [(n_train, n_held_out) per member], "candidates" [descriptions]}``, and "why" when the number of networks was
    chosen for the data (``_with_plan_note``)."""
    if progress is not None:
        progress({"event": "plan", "strategy": strategy, "sizes": [list(map(int, s)) for s in sizes],
                  "candidates": [c.describe() for c in candidates]})


def _with_plan_note(progress, why: str):
    """``progress`` whose plan event carries ``why`` (said before the first epoch, not only in the notes after)."""
    if progress is None:
        return None

    def noted(row: dict) -> None:
        progress({**row, "why": why} if row.get("event") == "plan" else row)

    return noted


def _member_progress(progress, member: int, n_members: int, candidate: int, n_candidates: int):
    if progress is None:
        return None

    def report(row: dict) -> None:
        progress({**row, "member": member, "members": n_members, "candidate": candidate,
                  "candidates": n_candidates})

    return report


def _raw_outputs(run: FittedRun, X: np.ndarray) -> np.ndarray:
    """The run's network outputs for its validation rows X (raw): logits, or regression values in the
    target's units. While the run holds them, its preprocessed validation rows are scored instead of
    preprocessing X again (the same values: 0.1 s at 1,600 x 5,000)."""
    member = Member(run.network, run.preprocessor, run.target_scaling)
    if run.X_val is not None and run.X_val.shape[0] == X.shape[0]:
        out = member.unscale(member.raw_output(run.X_val, preprocessed=True))
    else:  # members trained in worker processes come back without their rows
        out = member.unscale(member.raw_output(X))
    run.network.release_training_memory()  # its first layer would keep the last block of rows (15 MB at 5,000 genes)
    return out


def fit_model(ds: data.Dataset, options: TrainOptions, progress: Callable[[dict], None] | None = None,
              val_ds: data.Dataset | None = None, plan=None, folds_flag: str = "--folds",
              when_idle: Callable[[data.Preprocessor | None], None] | None = None) -> FittedModel:
    """Train the model ``mlpcli train`` ships on ``ds``; see the module docstring.

    ``val_ds``: an explicit validation table (``--val-data``), which implies one network.
    ``plan`` (a ``parallel.Plan``): train the members in parallel processes; the model is the same.
    ``progress(row)`` first gets ``{"event": "plan", ...}`` (the split and the candidates, ``_announce``),
    then every epoch's history row with ``member``/``members`` and ``candidate``/``candidates`` added,
    or, with members in parallel, ``{"event": "run_done", "done", "runs"}`` as each finishes.
    ``folds_flag``: the option that sets ``options.folds``, for messages (``cv`` and ``tune`` call it
    ``--member-folds``).
    ``when_idle(reference)``: called once training leaves this process's spare core idle (the members handed to
    worker processes, or the networks trained here), before the model's trust bases are fitted (one core here): the
    caller's own work for the end may start then (``background.Deferred``). ``reference``: the preprocessing the
    model will read its inputs with when it is known by then (a single hold-out's), else None. At most once.

    BLAS threads: ``plan``'s (default 1, as every command's), set for the call: left to the BLAS library, a
    notebook's call took all cores for products too small to share, and on a busy machine the threads waiting
    for each other made it many times slower (the README's example, 611 x 2,000 at load 12: 268 s against 34 s
    capped), and the model is now the command's bit for bit (BLAS's thread count can change a product's last bits)."""
    from ..parallel import blas_cap

    require_dataset(ds, "fit_model takes")  # a path or a dict of options failed with an AttributeError inside
    require_options(options, "fit_model takes")
    with blas_cap((plan or Plan()).blas_threads):
        return _fit_model(ds, options, progress, val_ds, plan, folds_flag, _Once(when_idle))


class _Once:
    """``fn`` (or nothing) callable any number of times, called the first time only."""

    def __init__(self, fn: Callable[..., None] | None):
        self.fn = fn

    def __call__(self, *args) -> None:
        fn, self.fn = self.fn, None
        if fn is not None:
            fn(*args)


def _fit_model(ds: data.Dataset, options: TrainOptions, progress, val_ds, plan, folds_flag: str,
               idle: _Once) -> FittedModel:
    options.validate()
    if ds.y is None or ds.task is None:
        raise DataError("the table has no target column; name it with --target")
    check_decision(options, ds.task)
    check_missing(options, ds)
    notes: list[str] = []
    n_folds = 1 if val_ds is not None else options.folds
    if n_folds == AUTO:
        n_folds = auto_defaults.auto_folds(ds.n_samples)
        if n_folds == 1:
            notes.append(f"{ds.n_samples:,} samples (more than {auto_defaults.SINGLE_HOLDOUT_ABOVE:,}): one network on a "
                         f"--val-size hold-out instead of a {auto_defaults.DEFAULT_FOLDS}-member ensemble ({folds_flag} "
                         "to choose)")  # (cv and tune: --member-folds; their --folds are the outer folds)
            progress = _with_plan_note(progress, f"one network, not {auto_defaults.DEFAULT_FOLDS} members: more than "
                                                 f"{auto_defaults.SINGLE_HOLDOUT_ABOVE:,} samples ({folds_flag} to choose)")
        elif max_folds(ds) < n_folds:  # a rare class in few patients: as many members as its groups allow
            supported = max_folds(ds)
            n_folds = supported if supported >= 2 else 1
            notes.append(f"{folds_flag} auto: {n_folds} member{'s' * (n_folds > 1)} instead of {auto_defaults.DEFAULT_FOLDS}: "
                         f"the rarest class {'is in' if ds.groups is not None else 'has'} only {supported} "
                         f"{'group' if ds.groups is not None else 'sample'}{'s' * (supported != 1)}, and each "
                         "member's held-out fold needs every class")

    # --log1p auto's look at the table (a pass over it and the skewness of 2,000 rows: 0.15 s at 8,000 x 5,000)
    # on a second core while the rows are split here (0.1-0.2 s for 4,000 patients; neither needs the other)
    log1p_warnings: list[str] = []
    deciding = beside(resolve_log1p, options, ds.X, notes, log1p_warnings, ds.feature_names)
    try:
        with quick_switches():  # the decision's NumPy calls get the lock back from the split's Python loop
            if val_ds is not None:
                split = None
            elif n_folds == 1:
                split = holdout(ds, options.val_size, options.seed)
            else:
                split = kfold(ds, n_folds, 1, options.seed, flag=folds_flag)
    finally:
        log1p, skew = deciding()  # waited for even when the split fails: no thread outlives the call
    if skew is not None:
        notes.append(f"--log1p auto: applied log(1 + x), the features look like raw counts, TPM or intensities "
                     f"(non-negative, median skewness {skew:.1f}); --no-log1p to switch off")
    resolved = replace(options, folds=n_folds, log1p=log1p)
    n_inputs = min(ds.n_features, options.top_var or ds.n_features)
    if val_ds is not None:  # rows per member, roughly: the noise candidate exists only where p > n
        n_train = ds.n_samples
    elif n_folds > 1:
        n_train = ds.n_samples - ds.n_samples // n_folds
    else:
        n_train = round(ds.n_samples * (1 - options.val_size))
    candidates = portfolio(resolved, n_train, n_inputs)
    if options.hidden == AUTO and too_wide_for_hidden(n_train, n_inputs):
        notes.append(f"--hidden auto: {n_inputs:,} features for about {n_train:,} training rows per network (more "
                     f"than {WIDE_FEATURES_PER_ROW} per row): no hidden layer is tried, as at such widths it gained nothing "
                     "over the softmax regression on the tables measured and took most of the time; --hidden 128 "
                     "tries one")

    if n_folds == 1:
        fitted = _fit_holdout(ds, resolved, candidates, progress, val_ds, split, idle)
    else:
        fitted = _fit_crossfit(ds, resolved, candidates, progress, split, plan, idle)
    # the rule divides by the shares of the rows the network(s) trained on: a hold-out's training rows (every row
    # trains a member of an ensemble, and --val-data's table is apart)
    trained_on = ds.subset(split[0]) if n_folds == 1 and val_ds is None else ds
    fitted.model.decision = _decision(trained_on, fitted, options.decision)
    fitted.estimate = _estimate(fitted)
    held_out = "out-of-fold" if fitted.split is None or fitted.refit_epochs else "validation"
    early_stopped = any(run.result.converged is None for run in fitted.runs[: len(fitted.members)])
    if fitted.estimate is not None:
        model = fitted.model
        words = fitted.estimate.words(held_out, len(fitted.crossing.logits), early_stopped,
                                      fitted.scored.groups is not None, model.temperature is not None,
                                      model.decision is not None)
    elif early_stopped or len(fitted.portfolio or []) > 1:  # every member held out a single patient: no rest to choose on
        chosen = " and the architecture were" if len(fitted.portfolio or []) > 1 else " was"
        who = "each member held out a single patient" if held_out == "out-of-fold" else "its rows are a single patient"
        words = (f"{held_out} estimate not cross-fitted: {who}, so the epoch{chosen} chosen on the rows scored, which "
                 "lifts the estimate by their luck; `mlpcli cv` scores samples no choice was made on")
    else:
        words = None
    if words:
        fitted.notes.append(words)
    fitted.notes[:0] = notes
    fitted.warnings[:0] = log1p_warnings
    fitted.warnings += held_out_shift_warnings(fitted.runs, val_ds is not None)
    return fitted


def held_out_shift_warnings(runs: list[FittedRun], own_table: bool = False) -> list[str]:
    """A warning for each network whose held-out rows differ from its training rows as a new cohort's would
    (``FittedRun.val_shift``: more than 10 % of the features beyond 1 training SD in mean, the bar raised for few
    patients): a batch, site or protocol confined to those patients makes the validation loss rise and read as
    overfitting, which no regularisation cures. ``own_table``: validated on a --val-data table."""
    shifted = [(i, r.val_shift) for i, r in enumerate(runs, 1) if r.val_shift and r.val_shift["shifted"]]
    if not shifted:
        return []
    several = len(runs) > 1
    if several:
        numbers = [str(i) for i, _ in shifted]
        listed = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]
        who = f"member{'s' * (len(numbers) > 1)} {listed}'s held-out rows differ from {'its' if len(numbers) == 1 else 'their'}"
    else:
        who = f"{'the --val-data table differs' if own_table else 'the validation rows differ'} from the"
    worst = max(shifted, key=lambda p: p[1]["mean_shifted"])[1]
    how = f"{worst['mean_shifted']:.0%} of the {worst['features']:,} features have a mean beyond 1 training SD"
    most = f" (most shifted: {', '.join(map(str, worst['most_shifted'][:5]))})" if worst["most_shifted"] else ""
    return [f"{who} training rows as a new cohort's would: {how}{most} — "
            "a batch, site or protocol confined to those samples? The held-out scores and the learning curves then "
            "measure that shift (a rising validation loss reads as overfitting, which regularisation does not "
            "cure); correct the batch effect, or measure a new site with `mlpcli cv --leave-batch-out`"]


def check_decision(options: TrainOptions, task: str | None) -> None:
    """An OptionError for --decision argmax/balanced on a target without classes to decide between."""
    if options.decision != "auto" and task not in DECIDED:
        raise OptionError(f"--decision {options.decision}: a decision rule chooses between classes or labels; this "
                          f"target is {task} (leave --decision out)")


def check_missing(options: TrainOptions, ds: data.Dataset) -> None:
    """Without --impute, a DataError naming every feature column with missing values in the whole table and how
    many, before any fit: a member's, fold's or learning-curve size's preprocessing would name those of its own
    training rows only, after the fits before it (``Dataset.missing``: counted when the table was read)."""
    if options.impute is None and ds.missing is not None and ds.missing.any():
        i, j = _first_missing(ds.X, np.flatnonzero(ds.missing))  # in row order, where a user looks for it
        where = f"row {i + 1}" + (f" (id {str(ds.ids[i])!r})" if ds.ids is not None else "")
        raise DataError((f"{ds.source}: " if ds.source else "")
                        + data.preprocess_messages.missing_message(ds.feature_names, ds.missing,
                                                          f"; the first in {ds.feature_names[j]!r} at {where}"))


def _first_missing(X, columns: np.ndarray) -> tuple[int, int]:
    """(row, column) of X's (n, d) first missing value in row order, among `columns` (those holding one)."""
    if data.is_sparse(X):  # its stored values in row order (never densified)
        X = X.tocsr()
        k = int(np.flatnonzero(np.isnan(X.data))[0])
        return int(np.searchsorted(X.indptr, k, side="right") - 1), int(X.indices[k])
    rows, at = np.nonzero(np.isnan(np.asarray(X[:, columns])))  # row-major: the first row's first such column
    return int(rows[0]), int(columns[at[0]])


def decision_shares(ds: data.Dataset, options: TrainOptions, temperature=None) -> np.ndarray | None:
    """(k,) the class shares the balanced decision rule divides by: each class's share of ``ds``'s rows as the loss
    weighted them (``fitting.class_loss_weights``: with --class-weight balanced the shares are equal, and the rule
    is argmax). A multi-label target's (L,): each label's share of positives as the loss weighted them
    (``fitting.label_loss_weights``), 0 or 1 for a label that never or always holds; where the loss weighted a
    label and ``temperature`` (the model's, one per label) calibrated it, that share moved through the temperature,
    sigmoid(logit(share) / T): the weighted share is the balanced threshold on the network's own probabilities, and
    the temperature, fitted against the true labels, moves them (--pos-weight 3 with T = 2.31 left a label's calls at
    balanced accuracy 0.501 by the unmoved share, 0.662 by the moved one). None for regression, or when a class has
    no row (nothing to divide by)."""
    if ds.task == "multilabel":
        Y = np.asarray(ds.y, dtype=np.float64).reshape(ds.n_samples, -1)
        neg_w, pos_w = label_loss_weights(options, ds)
        pos, neg = Y.sum(axis=0) * pos_w, (len(Y) - Y.sum(axis=0)) * neg_w
        shares = pos / np.maximum(pos + neg, np.finfo(np.float64).tiny)
        weighted = ~np.isclose(pos_w, neg_w, rtol=1e-12, atol=0.0)
        if temperature is not None and weighted.any():
            T = np.broadcast_to(np.asarray(temperature, dtype=np.float64), shares.shape)
            inside = weighted & (shares > 0) & (shares < 1)
            logit = np.log(shares[inside]) - np.log1p(-shares[inside])
            shares[inside] = 1.0 / (1.0 + np.exp(-logit / T[inside]))
        return shares
    if ds.task not in ("binary", "multiclass"):
        return None
    counts = np.bincount(np.asarray(ds.y, dtype=np.int64).reshape(-1), minlength=len(ds.classes))
    if (counts == 0).any():  # a class of the model without a training row (never from a table): nothing to divide by
        return None
    mass = counts * class_loss_weights(options, ds)
    return mass / mass.sum()


def _crossing(cands: list[FittedCandidate], parts: np.ndarray, scored: data.Dataset, shell: Model,
              options: TrainOptions) -> Crossing | None:
    """What the cross-fitted estimate needs of the candidates scored on ``scored`` (``parts`` (n_scored,)): their
    crossed outputs, and the model's choice of candidate (``choose_candidate``, as made on all rows) on some of the rows."""
    if any(c.crossed is None for c in cands):
        return None
    task, link = scored.task, shell.output_activation()
    log_loss = by_log_loss(options, task) and link in ("softmax", "sigmoid")

    def choose(rows: np.ndarray) -> int:
        groups = None if scored.groups is None else np.asarray(scored.groups)[rows]
        sub = [FittedCandidate(c.spec, c.runs, c.choice_logits[rows], math.nan, c.folds) for c in cands]
        if not log_loss:  # (by log loss the main metric is only shown beside, and nothing is shown here: 95 % of
            for c in sub:  # the choice's time went into the full metric set)
                c.score = held_out_score(task, scored.y[rows], shell.link(c.logits), len(scored.classes))
        best, _ = choose_candidate(sub, [], "", scored.y[rows], task, link, groups, log_loss, options.calibrate)
        return sub.index(best)

    crossed = np.logical_and.reduce([c.crossed_rows for c in cands])
    return Crossing(parts=parts, logits=[c.crossed for c in cands], crossed=crossed, choose=choose)


def _estimate(fitted: FittedModel) -> CrossedEstimate | None:
    """The cross-fitted held-out estimate of ``fitted`` (``crossed.crossed_estimate``), at the model's temperature and
    by its decision rule."""
    if fitted.crossing is None:
        return None
    model = fitted.model
    return crossed_estimate(fitted.crossing, model.link,
                            model.predict_classes if model.task in DECIDED else None)


def _decision(ds: data.Dataset, fitted: FittedModel, option: str) -> Decision | None:
    """The model's decision rule (``mlpcli.decision``): ``option``, or for auto the rule with the higher balanced
    accuracy on the held-out predictions; divides by ``decision_shares`` over ``ds``, the rows trained on."""
    shares = decision_shares(ds, fitted.options, fitted.model.temperature)
    if shares is None:
        return None
    return choose_decision(ds.task, fitted.scored.y, fitted.proba, shares, option)


def _fit_holdout(ds, options, candidates, progress, val_ds, split, idle: _Once) -> FittedModel:
    """One network (per candidate) on the hold-out ``split`` (``holdout``'s (train, validation, summary)),
    or trained on all of ``ds`` and validated on ``val_ds``; ``idle``: ``fit_model``'s when_idle."""
    if val_ds is None:
        tr, va, summary = split
        train_ds, scored, scored_rows = ds.subset(tr), ds.subset(va), va
    else:
        summary = summarize_split(ds, val_ds, f"explicit validation table ({options.val_data})")
        train_ds, scored, scored_rows = ds, val_ds, None
    parts = crossing_parts(scored, [np.arange(scored.n_samples)], CROSSING_PARTS, options.seed)
    _announce(progress, summary.strategy, [(train_ds.n_samples, scored.n_samples)], candidates)
    cands, interrupted, stopped = [], False, []
    notes: list[str] = []
    for c, spec in enumerate(candidates):
        # the candidates differ only in the network and its training: they share the preprocessed rows
        try:
            run = fit_run(train_ds, scored, spec.options(options),
                          _member_progress(progress, 1, 1, c + 1, len(candidates)),
                          prepared=cands[0].runs[0].prepared() if cands else None, val_parts=parts)
        except KeyboardInterrupt:  # before this candidate's first epoch (its preprocessing): keep the others
            if not cands:
                raise
            interrupts.absorbed()
            notes.append(f"interrupted before training {spec.describe()}: the model is chosen among the "
                         "architectures that finished")
            interrupted = True
            break
        interrupted = run.result.interrupted
        if interrupted and (cands or run.result.epochs_run == 0):
            if not cands:  # not one epoch done: nothing learnt to keep
                raise KeyboardInterrupt
            notes.append(f"interrupted while training {spec.describe()}: the model is chosen among the "
                         "architectures that finished")
            break
        with interrupts.finishing(stopped):  # a trained candidate: scored whole, or kept unscored
            cand = FittedCandidate(spec, [run], None, math.nan)
            cand.place(np.arange(scored.n_samples), _raw_outputs(run, scored.X), run, scored.n_samples)
            cands.append(cand)
        if stopped and c + 1 < len(candidates):  # more to train: stop here, as an interrupt in training does
            notes.append(f"interrupted after training {spec.describe()}: the model is chosen among the "
                         "architectures that finished")
            interrupted, stopped = True, []
        if run.result.interrupted or interrupted:
            break
    idle(cands[0].runs[0].preprocessor)  # (the candidates share it)
    with interrupts.finishing(stopped):  # training is over: a stop now waits for the model to be complete
        # the rows the trust fits read, taken from the preprocessed matrices before they go (they are its now)
        prepared = PreparedRows.gather(ds, cands[0].runs[0], (tr, va) if val_ds is None else None, options.seed)
        # every candidate is trained and has scored its rows: the model keeps networks, not preprocessed rows
        # (the training rows, their copy and the candidates' shared preprocessed matrix: 320 MB at 6,400 x 5,000)
        del train_ds, run
        for c in cands:
            c.runs = [r.without_data() for r in c.runs]
        shell = _shell_model(ds, cands[0].runs, options)
        for c in cands:
            c.score = held_out_score(ds.task, scored.y, shell.link(c.choice_logits), len(ds.classes))
        best, table = choose_candidate(cands, notes, "the validation score", scored.y, ds.task, shell.output_activation(),
                              scored.groups, by_log_loss(options, ds.task), options.calibrate)
        crossing = _crossing(cands, parts, scored, shell, options)
        run = best.runs[0]
        chosen = replace(best.spec.options(options), augment_noise=noise_used(best.runs))
        model = _shell_model(ds, best.runs, chosen, reference=run.preprocessor)
        calibration_warnings: list[str] = []
        calibration = calibrate_on_held_out(model, best.logits, scored, chosen, notes, calibration_warnings)
        store_trust(model, ds, best.logits, scored, np.zeros(scored.n_samples, dtype=np.int64), "validation",
                     [(tr, va)] if val_ds is None else [], options.seed, notes, val_ds=val_ds, prepared=prepared)
        del prepared
    history = list(run.result.history)
    members = [_member_summary(1, run)]
    return FittedModel(model=model, runs=[run], scored=scored, scored_rows=scored_rows,
                       proba=model.link(best.logits), held_out_by=np.ones(scored.n_samples, dtype=np.int64),
                       strategy=summary.strategy, split=summary, history=history,
                       members=members, options=chosen, calibration=calibration, portfolio=table, notes=notes,
                       warnings=list(summary.warnings) + list(run.preprocessor.warnings) + calibration_warnings,
                       interrupted=interrupted,
                       stopped=stopped, crossing=crossing)


@dataclass(frozen=True)
class _SharedFold:
    """How a member task shares its fold's preprocessing with the other candidates' tasks a worker runs
    (``_worker_folds``): the ensemble's key, and the folds (members' numbers) no task after this one uses, which
    the worker lets go once this one is done (it receives tasks in the order they were dispatched)."""

    run_key: str
    release: tuple[int, ...]


def _fit_member(ds: data.Dataset, train_rows: np.ndarray, val_rows: np.ndarray, options: TrainOptions,
                member: int | None = None, val_parts: np.ndarray | None = None, share: _SharedFold | None = None
                ) -> FittedRun:
    """One member, as a task for ``parallel.run`` (everything it needs is in its arguments); sent back
    without its preprocessed rows. ``member``: its number, for a divergence's error (``_member_diverged``);
    ``val_parts``: ``fit_run``'s; ``share``: its fold's preprocessed rows kept in this worker for the other
    candidates on them."""
    train_ds, val_ds = ds.subset(train_rows), ds.subset(val_rows)
    cache = None if share is None else _worker_folds(share.run_key)
    try:
        prepared = None if cache is None else cache.get(member, lambda: prepare_fold(train_ds, val_ds, options))
        return fit_run(train_ds, val_ds, options, val_parts=val_parts, prepared=prepared).without_data()
    except TrainingError as exc:
        raise _member_diverged(exc, member) from None
    finally:
        if cache is not None:
            cache.release(share.release)


# Bytes of preprocessed folds a process keeps for the portfolio's other candidates (``FoldCache``): the sample data's
# five folds (611 x 2,000 float32 each) take 24 MB, and their 20 preprocessings saved took ~1.2 s of the ensemble's
# ~15 s of fitting. Larger folds are preprocessed for each candidate, as before: a process holds at most this much more.
FOLD_CACHE_BYTES = 64 * 2**20

# A worker process's preprocessed folds (``FoldCache``) for the ensemble it is training now (its ``run_key``): a
# worker serves one ensemble at a time, and the next one's key lets the last one's rows go
_WORKER_FOLDS: dict[str, FoldCache] = {}
_WORKER_FOLDS_LOCK = threading.Lock()


def _worker_folds(run_key: str) -> FoldCache:
    with _WORKER_FOLDS_LOCK:
        if run_key not in _WORKER_FOLDS:
            _WORKER_FOLDS.clear()
            _WORKER_FOLDS[run_key] = FoldCache(FOLD_CACHE_BYTES)
        return _WORKER_FOLDS[run_key]


def _member_diverged(exc: TrainingError, member: int | None) -> TrainingError:
    """A member's divergence, said with its number, its history rows numbered as the ensemble's --history numbers
    them (``member`` first): which fold blew up, and the curves a `diagnose` of them needs."""
    if member is None:
        return exc
    error = TrainingError(f"member {member}: {exc}")
    rows = getattr(exc, "history", None)
    if rows is not None:
        error.history = [{MEMBER: member, **row} for row in rows]
    return error


def _expected_cost(spec: Candidate) -> tuple[int, bool]:
    """Sort key for a candidate's training time: its hidden units, then input noise (more epochs)."""
    return sum(spec.hidden), spec.augment_noise not in (0, 0.0)


def _parallel_runs(ds, folds, options, candidates, plan, progress, parts: np.ndarray, idle: _Once,
                   notes: list[str] | None = None) -> list[FittedRun | None] | None:
    """Every candidate's members trained side by side when ``plan`` has more than one worker (each with
    its own seed and plan.threads BLAS threads, so the runs equal the sequential ones), in the order
    candidate by candidate, fold by fold; None when the members are to be trained here one after the other
    (one worker, or ``parallel.member_processes``' rule: workers would each copy large data). Ctrl-C (or SIGTERM) keeps the members finished by then and leaves None in place of the others."""
    from ..parallel import local_workers, member_processes, run

    if plan is None:
        return None
    total = len(candidates) * len(folds)
    rows = max(len(fold.train) + len(fold.test) for fold in folds)  # a member's training and validation rows
    if member_processes(plan, total, worker_copy_bytes(ds, rows, options)) == 1:
        return None
    # Longest first (the widest candidate, the one with input noise before the plain one: it trains more
    # epochs; softmax regression last): the workers' last tasks are then short and end close together, where
    # candidate order left one worker training a wide member while the other had finished. The results
    # come back in task order whatever the dispatch order.
    order = sorted(range(total), key=lambda i: _expected_cost(candidates[i // len(folds)]), reverse=True)
    run_key = uuid.uuid4().hex  # this ensemble's folds in the workers' caches (``_worker_folds``)
    last = {i % len(folds) + 1: p for p, i in enumerate(order)}  # each fold's last task, in dispatch order
    tasks = []
    for p, i in enumerate(order):
        spec, k = candidates[i // len(folds)], i % len(folds)
        share = _SharedFold(run_key, tuple(m for m, q in last.items() if q <= p)) if len(candidates) > 1 else None
        tasks.append((_fit_member, (ds, folds[k].train, folds[k].test,
                                    replace(spec.options(options), seed=offset_seed(options.seed, k)),
                                    k + 1, parts[folds[k].test], share)))
    # member processes on this machine share its memory (the default plan: as many side by side as it holds)
    asked, plan = plan, check_fits_memory(ds, [(spec.options(options), max(len(fold.train) for fold in folds))
                                               for spec in candidates], plan, total)
    if notes is not None:
        notes += fewer_at_once_note(asked, plan, total)
    if local_workers(plan.n_jobs, total) == 1:
        return None  # one at a time (two would not fit in the memory): here, fold by fold

    def done(finished: int, _total: int) -> None:
        if progress is not None:
            progress({"event": "run_done", "done": finished, "runs": total})

    idle(None)  # this process waits for the workers
    results = run(tasks, plan, shared=[ds], progress=done, keep_partial=True)
    ready: list[FittedRun | None] = [None] * total
    for i, result in zip(order, results):
        ready[i] = result
    return ready


def _fit_crossfit(ds, options, candidates, progress, split, plan=None, idle: _Once | None = None) -> FittedModel:
    """One member per fold of ``split`` (``kfold``'s (folds, strategy)) for each candidate; ``idle``:
    ``fit_model``'s when_idle."""
    idle = _Once(None) if idle is None else idle
    folds, strategy = split
    cands, interrupted, stopped = [], False, []
    notes: list[str] = []
    warnings: list[str] = []
    scored_rows = np.arange(ds.n_samples)
    parts = crossing_parts(ds, [f.test for f in folds], CROSSING_PARTS, options.seed)
    _announce(progress, strategy, [(len(f.train), len(f.test)) for f in folds], candidates)
    ready = _parallel_runs(ds, folds, options, candidates, plan, progress, parts, idle, notes)
    if ready is None:
        threads = _member_threads(ds, folds, options, candidates, plan)
        if threads > 1:
            idle(None)  # the candidates' threads take the cores: nothing beside them
        ready, interrupted, stopped = _sequential_runs(ds, folds, options, candidates, progress, parts, threads)
    # the members finished are paid for: a second stop while they are scored is held to its end and recorded
    # (raised, it threw them all away: "nothing trained yet to keep")
    with interrupts.finishing(stopped):
        cands, scored_rows, note = _kept_candidates(ds, folds, candidates, ready)
    if note is not None:
        notes.append(note)
        interrupted = True
    with interrupts.finishing(stopped):  # training is over: a stop now waits for the model to be complete
        partial = len(cands[0].runs) < len(folds)  # interrupted: only some members, scored on the rows they held out
        scored = ds.subset(scored_rows) if partial else ds
        shell = _shell_model(ds, cands[0].runs[:1], options)
        for c in cands:
            c.score = held_out_score(ds.task, scored.y, shell.link(c.choice_logits), len(ds.classes))
        best, table = choose_candidate(cands, notes, "out-of-fold score", scored.y, ds.task, shell.output_activation(),
                              scored.groups, by_log_loss(options, ds.task), options.calibrate)
        crossing = _crossing(cands, parts[scored_rows], scored, shell, options)
        chosen = replace(best.spec.options(options), augment_noise=noise_used(best.runs))
        warnings += _members_warnings([run.preprocessor for run in best.runs])
        history = [{"member": k + 1, **row} for k, run in zip(best.folds, best.runs) for row in run.result.history]
        members = [_member_summary(k + 1, run) for k, run in zip(best.folds, best.runs)]
    runs, refit_epochs, refit_record = list(best.runs), None, None
    if options.refit and not interrupted and not stopped:
        epochs = int(np.median([run.result.best_epoch for run in best.runs]))
        try:
            # a cosine schedule runs over the members' epochs, as theirs did: cut at their best epoch, not
            # annealed to its end over fewer epochs (a plateau schedule cuts nothing without validation rows)
            members_epochs = int(np.median([run.options.epochs for run in best.runs]))
            refit = fit_run(ds, None, replace(chosen, epochs=max(1, epochs), augment_noise=best.spec.augment_noise),
                            _member_progress(progress, len(folds) + 1, len(folds) + 1, 1, 1),
                            schedule_epochs=members_epochs)
        except KeyboardInterrupt as exc:  # while preparing the refit's rows: the members are complete
            interrupts.absorbed()
            refit, stopped = None, [exc]
        if refit is not None and refit.result.interrupted:  # cut short: fewer epochs than the members agreed on
            refit, stopped = None, [KeyboardInterrupt("the refit")]
        if refit is not None:
            refit_epochs = epochs
            runs.append(refit)
            # what "auto" became for all the rows (the l2 grows with n, the batch with it): `info` shows it
            refit_record = {k: v for k, v in _member_summary(0, refit).items()
                            if k not in ("member", "best_val_loss", "n_val", "stopped_early", "best_epoch")}
            span = (f"{count_of(refit_epochs, 'iteration')} of L-BFGS (the members' median)"
                    if chosen.optimizer == "lbfgs" else
                    f"{count_of(refit_epochs, 'epoch')} (the members' median best epoch)")
            notes.append(f"--refit: one network trained on all {count_of(ds.n_samples, 'row')} for {span}; the "
                         "out-of-fold scores are the members', and overstate one "
                         "network trained this way (by 0.02 of balanced accuracy on average on the accuracy benchmark, "
                         "where it also scored 0.01 below the ensemble)"
                         + ("; --lr-schedule plateau: the refit has no validation rows, so it keeps --lr (the "
                            "members' cuts are not replayed)" if chosen.lr_schedule == "plateau" else ""))
            model = _shell_model(ds, [refit], chosen, reference=refit.preprocessor)
    idle(None)
    if options.refit and refit_epochs is None and stopped and not interrupted:
        notes.append("--refit: not trained to the end, the run was stopped once the members had trained; the model "
                     "is their ensemble")
    with interrupts.finishing(stopped):
        if refit_epochs is None:
            model = _shell_model(ds, best.runs, chosen, reference=_reference_preprocessor(ds, best.runs, chosen))
        calibration = calibrate_on_held_out(model, best.logits, scored, chosen, notes, warnings)
        held_out_by = np.zeros(ds.n_samples, dtype=np.int64)
        for k in best.folds:
            held_out_by[folds[k].test] = k + 1
        position = {k + 1: i for i, k in enumerate(best.folds)}  # fold -> the model member that held it out
        store_trust(model, ds, best.logits, scored, np.array([position[k] for k in held_out_by[scored_rows]]),
                     "refit" if refit_epochs is not None else "out-of-fold",
                     [(folds[k].train, folds[k].test) for k in best.folds], options.seed, notes)
    return FittedModel(model=model, runs=runs, scored=scored, scored_rows=scored_rows,
                       proba=model.link(best.logits), held_out_by=held_out_by[scored_rows], strategy=strategy,
                       split=None, history=history,
                       members=members, options=chosen, calibration=calibration, portfolio=table,
                       refit_epochs=refit_epochs, refit=refit_record, notes=notes, warnings=warnings,
                       interrupted=interrupted, stopped=stopped, crossing=crossing)


def _members_warnings(preprocessors: list[data.Preprocessor]) -> list[str]:
    """The members' preprocessing warnings, each once; the features each dropped as constant on its own training
    rows (alike but for a few features, member by member) as one warning naming their union."""
    constant_message, pre = data.preprocess_messages.constant_message, data.preprocess_messages
    out: list[str] = []
    dropped = [p.constant_only for p in preprocessors]  # (the features without a value: their own warning)
    empty: list[list[str]] = [[] for _ in preprocessors]  # each member's features without a training value
    for i, p in enumerate(preprocessors):
        own = constant_message(p.constant_only) if p.constant_only else None
        for w in p.warnings:
            if pre.is_empty_message(w):
                empty[i] = list(getattr(p, "without_values", []))
            elif w != own and w not in out:
                out.append(w)
    if any(empty):  # one warning for the members, as for the constant features below
        order = {name: j for j, name in enumerate(preprocessors[0].feature_names_in)}
        union = sorted(set().union(*empty), key=lambda name: order.get(name, len(order)))
        out.append(pre.empty_message(union, [len(e) for e in empty] if len(empty) > 1 else None))
    if any(dropped):
        order = {name: j for j, name in enumerate(preprocessors[0].feature_names_in)}
        union = sorted(set().union(*dropped), key=lambda name: order.get(name, len(order)))
        out.append(constant_message(union, [len(d) for d in dropped] if len(dropped) > 1 else None))
    return out


def _member_threads(ds, folds, options, candidates: list[Candidate], plan) -> int:
    """Threads to train a fold's candidates side by side in this process (``_sequential_runs``): where the default plan
    (``plan.auto``, no --n-jobs) has cores for workers but each would copy too much (``parallel.member_processes``:
    tables of 64 MB and more), the candidates of one fold share its preprocessed rows, each in a thread of one BLAS
    thread (NumPy leaves the interpreter lock in its products): at 8,000 x 5,000 float32 two hidden-layer fits took
    1.51 s side by side against 2.74 s one after the other, the same weights bit for bit. As many as the cores, the
    candidates and the memory allow (two networks at once must fit); 1 otherwise."""
    from ..parallel import local_workers, member_processes
    from ..resources import address_space_limit

    if plan is None or not plan.auto or plan.backend != "loky" or len(candidates) < 2:
        return 1
    if address_space_limit() is not None:  # (``ulimit -v``: a thread's stack and BLAS buffers count, as for spare_core)
        return 1
    workers = local_workers(plan.n_jobs, len(candidates), available=True)
    rows = max(len(fold.train) + len(fold.test) for fold in folds)
    if workers < 2 or member_processes(plan, len(candidates) * len(folds), worker_copy_bytes(ds, rows, options)) > 1:
        return 1  # one core, or the members went to worker processes
    checked = check_fits_memory(ds, [(spec.options(options), max(len(fold.train) for fold in folds))
                                     for spec in candidates], replace(plan, n_jobs=workers), len(candidates))
    return local_workers(checked.n_jobs, len(candidates), available=True)


def _sequential_runs(ds, folds, options, candidates: list[Candidate], progress, parts: np.ndarray, threads: int = 1
                     ) -> tuple[list[FittedRun | None], bool, list[BaseException]]:
    """Every candidate's members trained in this process, fold by fold: a fold's rows are preprocessed once for all
    the candidates (they differ in the network and its training only) and only one fold's are held at a time (at
    8,000 x 5,000 float32 a preprocessing took ~1 s, paid by each of 20 members before). Returns (the runs in
    ``_parallel_runs``' order, candidate by candidate, fold by fold, None for those not trained; whether a stop
    (Ctrl-C, SIGTERM) ended training early; a stop held while a finished member was kept, ``interrupts.finishing``).
    A member cut short by a stop after its first epoch is kept (its best weights so far)."""
    n_folds, n_cands = len(folds), len(candidates)
    ready: list[FittedRun | None] = [None] * (n_folds * n_cands)
    stopped: list[BaseException] = []
    if threads > 1:
        return _threaded_runs(ds, folds, options, candidates, progress, parts, threads)
    for k, fold in enumerate(folds):
        train_ds, val_ds = ds.subset(fold.train), ds.subset(fold.test)
        prepared = None  # the fold's preprocessed rows, once its first candidate has made them
        for c, spec in enumerate(candidates):
            try:
                run = fit_run(train_ds, val_ds, replace(spec.options(options), seed=offset_seed(options.seed, k)),
                              _member_progress(progress, k + 1, n_folds, c + 1, n_cands),
                              val_parts=parts[fold.test], prepared=prepared)
            except TrainingError as exc:
                raise _member_diverged(exc, k + 1) from None
            except KeyboardInterrupt:  # before this member's first epoch (its preprocessing)
                if all(r is None for r in ready):
                    raise  # nothing trained to keep
                interrupts.absorbed()
                return ready, True, stopped
            if run.result.interrupted and run.result.epochs_run == 0:  # not one epoch done: nothing learnt to keep
                return ready, True, stopped
            if prepared is None:
                prepared = run.prepared()
            with interrupts.finishing(stopped):  # a trained member is kept
                run = run.without_data()  # the model keeps networks, not their rows (nor does this loop: the next
                ready[c * n_folds + k] = run  # fold's rows are made while ``run`` still names the last member)
            if run.result.interrupted:  # Ctrl-C / SIGTERM in its training: it ships what it learnt
                return ready, True, stopped
            if stopped and (k + 1 < n_folds or c + 1 < n_cands):  # more to train: stop here instead
                return ready, True, []
        del train_ds, val_ds, prepared  # before the next fold's rows are made
    return ready, False, stopped


def _threaded_runs(ds, folds, options, candidates: list[Candidate], progress, parts: np.ndarray, threads: int
                   ) -> tuple[list[FittedRun | None], bool, list[BaseException]]:
    """``_sequential_runs`` with each fold's candidates in ``threads`` threads of this process (``_member_threads``),
    on the fold's rows preprocessed once, here; the same runs. Progress comes as ``run_done`` events (epoch rows of
    several networks at once would interleave). A stop (Ctrl-C, SIGTERM: the main thread's) asks the threads to end at
    their next epoch (``interrupts.request_stop``), keeping what they learnt; a member that diverged is raised once
    the others end, the first in candidate order."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from ..background import POOL_TASK

    n_folds, n_cands = len(folds), len(candidates)
    ready: list[FittedRun | None] = [None] * (n_folds * n_cands)
    done = 0

    def member(train_ds, val_ds, spec: Candidate, k: int, prepared) -> FittedRun:
        POOL_TASK.active = True  # a core of its own, none to spare beside it
        try:
            return fit_run(train_ds, val_ds, replace(spec.options(options), seed=offset_seed(options.seed, k)),
                           val_parts=parts[folds[k].test], prepared=prepared).without_data()
        finally:
            POOL_TASK.active = False

    interrupted = False
    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlpcli-member") as pool:
            try:
                for k, fold in enumerate(folds):
                    train_ds, val_ds = ds.subset(fold.train), ds.subset(fold.test)
                    try:
                        prepared = prepare_fold(train_ds, val_ds, candidates[0].options(options))
                    except KeyboardInterrupt:  # while the fold's rows were prepared: the folds before it are kept
                        if all(r is None for r in ready):
                            raise  # nothing trained to keep
                        interrupts.absorbed()
                        return ready, True, []
                    # the longest first (``_parallel_runs``' order): the others share the other threads meanwhile
                    order = sorted(range(n_cands), key=lambda c: _expected_cost(candidates[c]), reverse=True)
                    futures = {pool.submit(member, train_ds, val_ds, candidates[c], k, prepared): c for c in order}
                    pending, errors = set(futures), {}
                    while pending:
                        try:
                            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                            with interrupts.held():  # (a stop meanwhile is raised once the finished runs are kept)
                                for future in finished:
                                    c = futures[future]
                                    try:
                                        run = future.result()
                                    except TrainingError as exc:  # a divergence: the others need not finish
                                        errors[c] = _member_diverged(exc, k + 1)
                                        interrupts.request_stop()
                                        continue
                                    if run.result.interrupted:
                                        interrupted = True
                                        if run.result.epochs_run == 0:
                                            continue  # not one epoch done: nothing learnt to keep
                                    ready[c * n_folds + k] = run
                                    done += 1
                                    if progress is not None:
                                        progress({"event": "run_done", "done": done, "runs": n_folds * n_cands})
                        except KeyboardInterrupt:  # the threads stop at their next epoch; what they learnt is kept
                            interrupts.absorbed()
                            interrupts.request_stop()
                            interrupted = True
                    if errors:
                        raise errors[min(errors)]
                    del train_ds, val_ds, prepared
                    if interrupted:
                        return ready, True, []
            except BaseException:  # the threads end at their next epoch before the pool waits for them
                interrupts.request_stop()
                raise
    finally:
        interrupts.clear_stop()
    return ready, False, []


def _kept_candidates(ds, folds, candidates: list[Candidate], ready: list[FittedRun | None]
                     ) -> tuple[list[FittedCandidate], np.ndarray, str | None]:
    """The candidates to choose among, from their members in ``ready`` (candidate by candidate, fold by fold), each
    scored on the rows it held out. Every member trained: all of them, on every row, and no note. A run stopped early
    (None for the members not trained, whatever order they were trained in: fold by fold in this process, the
    widest candidates first in worker processes) keeps the candidates whose members all finished, to choose among;
    else, when it costs at most one member, every candidate with members, on the folds each of them finished (a run
    stopped in its third fold: all the candidates, on the first two, where the first candidates had three); else the
    candidate with the most finished members (the simpler on a tie; the widest candidate's four members, where the
    softmax regression had finished one). Returns
    (candidates, scored rows, a note of what an early stop kept or None); a KeyboardInterrupt when no member finished."""
    fitted = []
    for c, spec in enumerate(candidates):
        runs, member_folds = [], []
        cand = FittedCandidate(spec, runs, None, math.nan, member_folds)
        for k, fold in enumerate(folds):
            run = ready[c * len(folds) + k]
            if run is None:
                continue
            out = _raw_outputs(run, ds.subset(fold.test).X)  # a view of the rows, scored in blocks
            cand.place(fold.test, out, run, ds.n_samples)
            runs.append(run.without_data())
            member_folds.append(k)
        if runs:
            fitted.append(cand)
    if all(run is not None for run in ready):
        return fitted, np.arange(ds.n_samples), None
    complete = [f for f in fitted if len(f.runs) == len(folds)]
    if complete:
        return complete, np.arange(ds.n_samples), ("interrupted: the model is chosen among the architectures "
                                                   "whose members all finished")
    if not fitted:
        raise KeyboardInterrupt  # nothing trained to keep
    most = max(fitted, key=lambda f: len(f.runs))  # max keeps the first of equals: the simpler
    shared = sorted(set.intersection(*(set(f.folds) for f in fitted)))
    if len(fitted) > 1 and shared and len(shared) >= len(most.runs) - 1:  # a choice for at most one member
        rows = np.sort(np.concatenate([folds[k].test for k in shared]))
        for f in fitted:
            f.runs = [run for run, k in zip(f.runs, f.folds) if k in shared]
            f.folds[:] = shared
            f.restricted(rows)
        return fitted, rows, (f"interrupted: the model is chosen among the {len(fitted)} architectures on the "
                              f"{count_of(len(shared), 'fold')} each of them finished; it holds the chosen one's "
                              f"{count_of(len(shared), 'member')}, and out-of-fold scores cover their "
                              f"{count_of(len(rows), 'held-out row')}")
    rows = np.sort(np.concatenate([folds[k].test for k in most.folds]))
    most.restricted(rows)
    what = "" if len(candidates) == 1 else f" of {most.spec.describe()}"
    return [most], rows, (f"interrupted: the model holds the {count_of(len(most.runs), 'member')}{what} "
                          f"trained so far; out-of-fold scores cover their {count_of(len(rows), 'held-out row')}")


def _member_summary(member: int, run: FittedRun) -> dict:
    r = run.result
    return {"member": member, "best_epoch": int(r.best_epoch), "epochs_run": int(r.epochs_run),
            "stopped_early": bool(r.stopped_early), "best_val_loss": float(r.best_val_loss),
            "n_train": int(run.y_train.shape[0]), "n_val": None if run.y_val is None else int(run.y_val.shape[0]),
            "augment_noise": float(run.options.augment_noise), "interrupted": bool(r.interrupted),
            # what "auto" became for this member's rows (`mlpcli info`)
            "batch_size": int(run.options.batch_size), "lr": float(run.options.lr), "l2": float(run.options.l2),
            "max_epochs": int(run.options.epochs), "weight_decay": float(run.options.weight_decay),
            # the share of features whose held-out mean lies beyond the shift check's bar (`diagnose` says when a
            # member's validation curve measures a shifted batch rather than overfitting)
            **({} if run.val_shift is None else {"held_out_shifted": float(run.val_shift["mean_shifted"])}),
            **({} if r.converged is None else {"converged": bool(r.converged)})}  # L-BFGS


def _reference_preprocessor(ds: data.Dataset, runs: list[FittedRun], options: TrainOptions) -> data.Preprocessor:
    """Preprocessing fitted on all rows, kept to the features some member uses: the input features a
    table must supply and the training statistics of the shift check. Fitted without --top-var, so
    every member's features are among its own (a feature some member keeps varies on all rows)."""
    from .fitting import preprocess_config

    ref = data.Preprocessor(replace(preprocess_config(options, bool(options.log1p)), top_var=None))
    ref.fit(ds.X, ds.feature_names)
    used = set().union(*(r.preprocessor.kept_features for r in runs))
    if used == set(ref.kept_features):
        return ref
    return ref.restricted([n for n in ref.kept_features if n in used])


def _shell_model(ds: data.Dataset, runs: list[FittedRun], options: TrainOptions, reference=None) -> Model:
    loss = runs[0].setup.loss
    return Model(members=[Member(r.network, r.preprocessor, r.target_scaling) for r in runs],
                 preprocessor=reference if reference is not None else runs[0].preprocessor, task=ds.task,
                 classes=list(ds.classes), feature_names=list(ds.feature_names), target_names=list(ds.target_names),
                 loss={"name": loss.name, "params": loss.params()})


_MEMBER_COLUMN = {"held_out_by_member": "the member that held each row out"}


def check_held_out_frame(ds: data.Dataset, flag: str = "--oof") -> None:
    """Before training: an OptionError naming ``flag`` when ``held_out_frame`` would give two of its columns
    one name (``held_out.check_column_names``), e.g. an id column named ``pred_label``."""
    check_column_names(held_out_names(ds, _MEMBER_COLUMN), flag)


def held_out_frame(fitted: FittedModel, flag: str = "--oof"):
    """The held-out predictions as a DataFrame, in predict's columns: the id (or 1-based row), the group,
    the member that held the row out, the true target, then ``pred_<target>`` and ``prob_<class>``
    (binary, multiclass), ``pred_<label>``/``prob_<label>`` (multi-label) or ``pred_<target>`` (regression): the
    cross-fitted predictions the summary's held-out metrics are computed from (``FittedModel.estimate_proba``).
    Two columns of one name are an OptionError naming ``flag`` (``check_held_out_frame``)."""
    import pandas as pd

    # ds: the scored rows only (a hold-out, an interrupted ensemble's); the predictions the reported estimate is of
    ds, P = fitted.scored, fitted.estimate_proba
    check_held_out_frame(ds, flag)
    table_rows = fitted.scored_rows if fitted.scored_rows is not None else np.arange(ds.n_samples)
    id_name = ds.roles.id if ds.roles is not None and ds.roles.id else "row"
    cols: dict = {id_name: ds.ids if ds.ids is not None else table_rows + 1}
    if ds.groups is not None:
        cols[ds.roles.group if ds.roles is not None and ds.roles.group else "group"] = ds.groups
    cols["held_out_by_member"] = fitted.held_out_by
    cols.update(prediction_columns(ds, np.arange(ds.n_samples), P, fitted.model.decision))
    return exact_if_regression(pd.DataFrame(cols), ds.task)
