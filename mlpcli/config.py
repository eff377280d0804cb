"""Training options, declared once.

Every option of ``mlpcli train`` is one field of ``TrainOptions`` whose metadata carries its flag,
help text, choices and valid range. From that one declaration come:

* ``TrainOptions.validate()`` — types and ranges, each error a ``ConfigError`` naming the flag;
* the Click options of every command that trains (``mlpcli.cli.options.train_options``);
* the TOML config file's keys (``config_file.read_config_file``), which mirror the option names;
* the parameters the scikit-learn estimators check (``mlpcli.estimators``).

Data-dependent defaults ("auto") are resolved by ``auto_defaults.resolve`` once the training table is known,
and the resolved values are what a model file stores; the TOML config file is ``config_file``'s.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Iterable

from .decision import CHOICES as DECISION_CHOICES
from . import fused
from .engine import activations
from .errors import ConfigError, OptionError
from .training import LR_SCHEDULES, FitConfig

AUTO_LR_LINEAR = 1e-2  # softmax regression: a convex problem that small steps reach too slowly
AUTO_LR_HIDDEN = 3e-3  # hidden layers (measured on the accuracy benchmark; README)
WIDE_LR_FEATURES = 2_000  # beyond this many kept features the auto learning rate shrinks (``auto_lr``)
# AdamW's decay, --weight-decay auto: a classifier's (measured on the accuracy benchmark) shrinks its logits, which
# the fitted temperature scales back; a regression's predictions it pulls towards the mean, with nothing to undo it:
# `cv` pooled RMSE at 1.0 / 0.01 on Boston 3.78 / 3.44, body measurements (openintro::bdims, weight) 2.29 / 2.19, a
# simulated linear table 0.585 / 0.540 (ridge 0.536), sklearn's diabetes 54.05 / 54.48 (README)
AUTO_WEIGHT_DECAY = 1.0
AUTO_WEIGHT_DECAY_REGRESSION = 0.01
BASE_PATIENCE = 20  # --patience auto: epochs without improvement to wait, more as the best epoch grows (adaptive)

TASK_CHOICES = ("auto", "binary", "multiclass", "multilabel", "regression")
LOSS_CHOICES = ("auto", "ce", "bce", "focal", "hinge", "mse", "mae", "huber")
OPTIMIZER_CHOICES = ("adam", "adamw", "sgd", "lbfgs")
MINIBATCH_OPTIMIZERS = ("adam", "adamw", "sgd")  # lbfgs: every row at once, to convergence
IMPUTE_CHOICES = ("median", "mean", "zero", "min")
SCALING_CHOICES = ("standard", "robust")
ACTIVATION_CHOICES = tuple(n for n in activations.names() if n != "softmax")
AUTO = "auto"
AUTO_NOISE_MAX = 2.0  # augment_noise auto: at most twice the SD of a standardised feature
# How text tables are read (data.dialect): "auto" takes the separator from the file name unless the content
# says otherwise, and decimal commas when the numbers under a non-comma separator are written so.
SEP_CHOICES = (AUTO, "comma", "tab", "semicolon", "pipe")
SEP_ALIASES = {",": "comma", "\t": "tab", "\\t": "tab", ";": "semicolon", "|": "pipe"}
DECIMAL_CHOICES = (AUTO, "dot", "comma")
DECIMAL_ALIASES = {".": "dot", "point": "dot", ",": "comma"}


def option(default: Any = None, help: str = "", *, factory=None, kind: str | None = None, choices=None,
           low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False,
           flag: str | None = None, cli: bool = True, auto: bool = False, optional: bool = False,
           group: str = "training", aliases: dict | None = None, literal: bool = False):
    """A TrainOptions field with what the CLI, the config file and ``validate`` need to know.

    kind: int | float | bool | flag (an on-only switch) | choice | str | str_list | int_list.
    auto: the value may also be "auto" (resolved from the data). optional: None is allowed (written none, null
    or empty, unless `literal`: a value such as a class label, where "None" is a class).
    aliases: other spellings of choices, {alias: choice} (``--sep semicolon`` for ``--sep ';'``).
    """
    meta = {"help": help, "kind": kind, "choices": choices, "low": low, "high": high, "low_open": low_open,
            "high_open": high_open, "flag": flag, "cli": cli, "auto": auto, "optional": optional, "group": group,
            "aliases": aliases or {}, "literal": literal}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# Seeds reach NumPy's RandomState and scikit-learn's splitters, which take 0 to 2**32 - 1
MAX_SEED = 2**32 - 1


def offset_seed(seed: int, k: int) -> int:
    """The seed of repeat or member k of a run seeded ``seed``: seed + k, wrapped into 0..MAX_SEED (so the
    largest --seed still gives every repeat a seed RandomState takes; any seed below MAX_SEED - k is as before)."""
    return (int(seed) + int(k)) % (MAX_SEED + 1)


@dataclass
class TrainOptions:
    """Everything ``mlpcli train`` can be told; ``pipeline.train`` consumes it."""

    # --- columns and task (declared here for the config file; the role flags are shared with predict)
    target: list[str] = option(factory=lambda: ["label"], kind="str_list", group="roles",
                               help="Target column; comma-separated names mean several targets: multi-label (0/1 "
                                    "columns) or multi-target regression (numbers).")
    group: str | None = option(None, kind="str", optional=True, group="roles",
                               help="Group column (samples of one patient); default patient_id when present.")
    no_group: bool = option(False, kind="flag", group="roles",
                            help="Ignore groups: split by rows (only when samples are independent).")
    id: str | None = option(None, kind="str", optional=True, group="roles",
                            help="Sample id column; default sample_id when present (a GEO series matrix: the "
                                 "annotation its table's header names the samples by, default geo_accession).")
    batch: str | None = option(None, kind="str", optional=True, group="roles",
                               help="Batch / site column; default batch when present.")
    drop: list[str] = option(factory=list, kind="str_list", group="roles", help="Comma-separated columns to ignore.")
    features_in_rows: bool = option(False, kind="flag", group="roles",
                                    help="The table is features x samples (genes in rows).")
    samples: str | None = option(None, kind="str", optional=True, group="roles",
                                 help="Sample sheet (.csv, .tsv, .txt, optionally compressed, or .parquet) joined to "
                                      "the table on the sample id (--id in both files; default sample_id, else the "
                                      "sheet's first column; with --features-in-rows, the table's column headers): "
                                      "--target, --group and --batch may name its columns, features never come from "
                                      "it. Rows keep the table's order; ids on one side only are noted.")
    sep: str = option(AUTO, kind="choice", choices=SEP_CHOICES, aliases=SEP_ALIASES, group="roles",
                      help="Field separator of text tables (or , ; | as themselves). auto: from the "
                           "file name (.csv comma, .tsv/.txt tab) unless the header and first rows split "
                           "consistently on another one (a note says so).")
    decimal: str = option(AUTO, kind="choice", choices=DECIMAL_CHOICES, aliases=DECIMAL_ALIASES, group="roles",
                          help="Decimal mark of numbers in text tables (or . ,). auto: a comma "
                               "when the separator is not one and numbers are written like 0,123 (a note says so).")
    layer: str | None = option(None, kind="str", optional=True, group="roles",
                               help=".h5ad input: features from this layer (e.g. counts) instead of .X ('X' means "
                                    ".X itself; predict and evaluate default to the model's).")
    raw: bool = option(False, kind="flag", group="roles",
                       help=".h5ad input: features from .raw.X, named by .raw.var_names.")
    var_names: str | None = option(None, kind="str", optional=True, group="roles",
                                   help=".h5ad input: gene names from this var column (e.g. gene symbols) instead of "
                                        "var_names ('var_names' means the index; predict and evaluate default to the "
                                        "model's).")
    feature_types: list[str] = option(factory=list, kind="str_list", group="roles",
                                      help="10x Genomics directory: the feature types to train on, comma-separated "
                                           "(e.g. 'Gene Expression,Antibody Capture' for CITE-seq). Default: Gene "
                                           "Expression alone, as scanpy reads them; predict reads the model's "
                                           "features whatever their type.")
    task: str = option("auto", kind="choice", choices=TASK_CHOICES, help="What to predict; auto infers it from the target.")
    positive: str | None = option(None, kind="str", optional=True, literal=True,  # a class "None" ("no response")
                                  help="Binary target: the positive class, which precision, recall, F1, AP, "
                                       "--threshold and --pos-weight refer to. Default: the class that sorts last.")
    # --- validation and the ensemble
    folds: int | str = option(AUTO, kind="int", low=1, auto=True,
                              help="Cross-fitted ensemble members: member k trains on the other folds (grouped, "
                                   "stratified) and is early-stopped on fold k; the model averages their "
                                   "probabilities and every sample gets an out-of-fold prediction. 1: one network "
                                   "with a --val-size hold-out. auto: 5 (fewer when the rarest class is in fewer groups), or 1 "
                                   "above 20,000 samples.")
    val_size: float = option(0.2, kind="float", low=0, high=1, low_open=True, high_open=True,
                             help="Validation fraction (of groups when grouped) with --folds 1.")
    val_data: str | None = option(None, kind="str", optional=True,
                                  help="Explicit validation table instead of a split (one network), read as the training "
                                       "data is (a table, .h5ad file or 10x directory; the same --samples sheet).")
    refit: bool = option(False, kind="bool",
                         help="After cross-fitting, train one network on all rows for the members' median best "
                              "epoch count and ship it instead of the ensemble.")
    calibrate: bool = option(True, kind="bool",
                             help="Temperature-scale the probabilities, fitted on the out-of-fold (or validation) "
                                  "logits.")
    # --- preprocessing (fitted on training rows only)
    impute: str | None = option(None, kind="choice", choices=IMPUTE_CHOICES, optional=True,
                                help="Fill missing values (fitted on training rows): a feature's median, mean, 0, or "
                                     "min, its smallest training value, for values missing below a detection limit "
                                     "(proteomics, metabolomics: the median fills them with a typical, detected "
                                     "level).")
    log1p: bool | str = option(AUTO, kind="bool", auto=True,
                               help="log(1 + x) the features first. Default: auto — applied when the features look "
                                    "like raw counts, TPM or mass-spectrometry intensities (non-negative, "
                                    "right-skewed).")
    top_var: int | None = option(None, kind="int", low=1, optional=True,
                                 help="Keep the N most variable features (on training rows).")
    standardize: bool = option(True, kind="bool", help="Centre and scale features with training statistics.")
    scaling: str = option("robust", kind="choice", choices=SCALING_CHOICES,
                          help="standard: z-scores. robust: median and IQR (of 2,048 training rows drawn at random, from "
                               "4,096 rows on; 1.349 SDs where that is smaller, as for a bimodal marker gene), then "
                               "smooth clipping to about ±3 "
                               "(outliers cannot dominate), then centred at the clipped training values' mean; a "
                               "dense feature where one value holds a quarter of the rows or more (zero-inflated "
                               "expression) takes its mean and SD instead.")
    # --- network
    hidden: list[int] | str = option(AUTO, kind="int_list", auto=True,
                                     help="Hidden layer widths, comma-separated ('' or none for none: softmax regression). "
                                          "auto: a small portfolio (none; with --lr auto on 200 features or more, none again at a tenth "
                                          "of the rate; none trained by L-BFGS to its optimum, as logistic regression "
                                          "is (not with --l1, --augment-noise, --lr-schedule or --batchnorm); one hidden layer of 128; and, when features outnumber "
                                          "training rows, that layer with --augment-noise auto) chosen by out-of-fold score on the training folds, the simpler "
                                          "one unless a more complex one wins by more than the larger of a tie "
                                          "margin (0.005) and one standard error of the paired difference "
                                          "(regression: by more than 0.5 % of the simpler one's RMSE, no standard "
                                          "error).")
    activation: str = option("relu", kind="choice", choices=ACTIVATION_CHOICES, help="Hidden-layer activation.")
    dropout: float = option(0.3, kind="float", low=0, high=1, high_open=True, help="Dropout rate after each hidden layer.")
    batchnorm: bool = option(False, kind="bool", help="Batch normalisation after each hidden layer.")
    dtype: str = option("float32", kind="choice", choices=("float32", "float64"),
                        help="Arithmetic precision (float64 for checking).")
    # --- optimisation
    optimizer: str = option("adamw", kind="choice", choices=OPTIMIZER_CHOICES,
                            help="Optimizer. lbfgs: full-batch L-BFGS on every training row to convergence (at most "
                                 "--epochs iterations; the last weights are kept, not the best validation epoch's), "
                                 "without dropout, input noise or an L1 penalty: with --hidden none, the optimum "
                                 "LogisticRegression(C=1) reaches at --l2 auto.")
    lr: float | str = option(AUTO, kind="float", low=0, low_open=True, auto=True,
                             help=f"Learning rate. auto: {AUTO_LR_LINEAR:g} without hidden layers, {AUTO_LR_HIDDEN:g} with "
                                  f"them, times {WIDE_LR_FEATURES:,} / features beyond {WIDE_LR_FEATURES:,} features.")
    momentum: float = option(0.9, kind="float", low=0, high=1, high_open=True, help="SGD momentum.")
    adam_beta2: float = option(0.95, kind="float", low=0, high=1, low_open=True, high_open=True,
                               help="Adam/AdamW second-moment decay. 0.95 (RealMLP's) adapts the step size within "
                                    "~20 steps, so it cannot overshoot when the gradients grow again late in "
                                    "training (0.999 made validation loss spike there).")
    weight_decay: float | str = option(AUTO, kind="float", low=0, auto=True,
                                       help=f"AdamW decoupled weight decay: each step shrinks the weights by lr x this. "
                                            f"auto: {AUTO_WEIGHT_DECAY:g} for classifiers (their temperature undoes "
                                            f"the shrinkage), {AUTO_WEIGHT_DECAY_REGRESSION:g} for regression (whose "
                                            "predictions it pulls towards the mean).")
    l1: float = option(0.0, kind="float", low=0, help="L1 penalty on weights.")
    l2: float | str = option(AUTO, kind="float", low=0, auto=True,
                             help="L2 penalty on weights. auto: 0.5 / n_train, the penalty of "
                                  "LogisticRegression(C=1), so p >> n stays regularised.")
    batch_size: int | str = option(AUTO, kind="int", low=1, auto=True,
                                   help="Minibatch size. auto: 2^(3 + floor(log10 n)) between 16 and 512.")
    epochs: int | str = option(AUTO, kind="int", low=1, auto=True,
                               help="Most epochs to run. auto: 200, or more so that small sets still get "
                                    f"{1000:,} optimizer steps.")
    patience: int | str = option(AUTO, kind="int", low=1, auto=True,
                                 help="Early stopping: epochs without validation improvement. auto: 20, growing "
                                      "to 20 + half the epoch of the last improvement larger than the validation "
                                      "loss's own epoch-to-epoch noise (chance lows of a noisy plateau still reset "
                                      "the count, but do not make it longer).")
    min_delta: float = option(0.0, kind="float", low=0, help="Early stopping: smallest improvement that counts.")
    lr_schedule: str = option("none", kind="choice", choices=LR_SCHEDULES,
                              help="Learning-rate schedule. plateau: halve the rate after max(2, patience / 3) "
                                   "epochs without a validation improvement, never below 1e-6; cosine: anneal it "
                                   "from --lr towards 1e-6 over --epochs.")
    augment_noise: float | str = option(0.0, kind="float", low=0, auto=True,
                                        help="SD of zero-mean noise added to standardised training inputs "
                                             "(uniform: the same ridge effect as Gaussian noise, drawn 4x faster). "
                                             "auto: for networks with hidden layers, sqrt(features / training "
                                             "rows) when features outnumber rows (at most 2), else 0 — the remedy "
                                             "when many genes let the network memorise its training rows; "
                                             "--hidden auto tries it as a candidate by itself when features "
                                             "outnumber rows.")
    clip_norm: float | None = option(None, kind="float", low=0, low_open=True, optional=True,
                                     help="Clip the global gradient norm.")
    seed: int = option(0, kind="int", low=0, high=MAX_SEED,
                       help="Same data, options, seed and threads give the same model.")
    # --- imbalance
    loss: str = option("auto", kind="choice", choices=LOSS_CHOICES,
                       help="auto: ce for multiclass, bce for binary and multi-label, mse for regression.")
    class_weight: str = option("none", kind="str", help="none, balanced, or per class e.g. 'A=1,B=3' (a class "
                               "holding a comma in double quotes: '\"Stage I, early\"=2').")
    pos_weight: float = option(1.0, kind="float", low=0, low_open=True, high=1e6,  # beyond: an overflowing loss
                               help="BCE weight of positives.")
    focal_gamma: float = option(2.0, kind="float", low=0, help="Focal loss gamma.")
    focal_alpha: float | None = option(None, kind="float", low=0, high=1, low_open=True, high_open=True,
                                       optional=True, help="Focal alpha for positives (1 - alpha for negatives).")
    label_smoothing: float = option(0.0, kind="float", low=0, high=1, high_open=True, help="CE label smoothing alpha.")
    decision: str = option("auto", kind="choice", choices=DECISION_CHOICES,
                           help="How a class is chosen from the calibrated probabilities (binary, multiclass, "
                                "multi-label; the probabilities are not changed). argmax: the most probable class. "
                                "balanced: the most probable relative to its share of the training samples (P(c) / "
                                "share(c); binary: P(positive) >= the positive share; multi-label: each label when "
                                "P >= its share of positives), the rule that maximises balanced accuracy, which "
                                "calls a rare class more often. auto: balanced when it gives the higher held-out "
                                "(out-of-fold) balanced accuracy, else argmax.")

    def __post_init__(self) -> None:
        # a tuple is as good a list of names or widths as a list (hidden=(128, 64), as the estimators take it)
        for f in fields(self):
            value = getattr(self, f.name)
            kind = OPTION_META.get(f.name, {}).get("kind")
            if isinstance(value, tuple) and kind in ("str_list", "int_list"):
                setattr(self, f.name, list(value))
            elif kind == "int_list" and is_whole_number(value):  # hidden=8, as a config file's hidden = 8 reads
                setattr(self, f.name, [value])
            elif kind == "str" and isinstance(value, os.PathLike):  # a file's Path, as pipeline.train takes the table
                setattr(self, f.name, os.fspath(value))

    def validate(self, folds_flag: str = "--folds", given: Iterable[str] = ()) -> None:
        """Raise ConfigError naming the flag for any value of the wrong type or out of range, and for options that
        exclude each other. ``folds_flag``: the option that sets ``folds`` (``cv`` and ``tune`` call it
        --member-folds), for the messages. ``given``: the options set explicitly (the command line, a config
        file), each refused where the others make it moot (``ONLY_WITH``: --scaling with --no-standardize)."""
        for f in fields(self):
            check_value(f.name, getattr(self, f.name))
        if self.no_group and self.group:
            raise ConfigError("--no-group: contradicts --group")
        if self.decimal == self.sep == "comma":
            raise ConfigError("--decimal: comma is the field separator too (--sep comma); a table with decimal "
                              "commas is separated by something else, e.g. --sep semicolon")
        if self.raw and self.layer not in (None, "X"):
            raise ConfigError(f"--raw and --layer {self.layer} both choose the features of an .h5ad file; pass one")
        check_one_target_for_classes(self.task, self.target)
        if self.val_data and self.folds not in (1, AUTO):
            raise ConfigError(f"--val-data: gives one validation table, which needs {folds_flag} 1 (got {folds_flag} "
                              f"{self.folds})")
        if self.batchnorm and self.batch_size == 1:  # said before the data is read (training refuses it too)
            raise ConfigError("--batch-size 1 with --batchnorm: batch normalisation turns a one-row minibatch into "
                              "zeros, so the hidden layers would learn nothing; use --batch-size 2 or more")
        if self.class_weight is not None and self.class_weight.strip().lower() not in ("", "none", "balanced"):
            class_weight_pairs(self.class_weight)  # its form, before the data is read; its labels once it is
        check_decay(self)
        if self.loss != AUTO:  # "auto" is resolved with the task, and checked then (fitting.build_loss)
            check_loss_options(self, self.loss)
        if self.refit and self.folds == 1:
            raise ConfigError("--refit: refits the cross-fitted members' epoch count on all rows; it needs "
                              f"{folds_flag} 2 or more")
        if self.refit and self.val_data:
            raise ConfigError("--refit: refits the cross-fitted members' epoch count on all rows; with --val-data the "
                              "one network already trains on every row of the table")
        check_unused(self, given, folds_flag=folds_flag)
        if self.optimizer == "lbfgs":  # what the fit would refuse once started, said before any data is read
            cannot = {"l1": self.l1 not in (0, 0.0), "augment_noise": self.augment_noise not in (0, 0.0, AUTO),
                      "lr_schedule": self.lr_schedule != "none", "batchnorm": bool(self.batchnorm)}
            name = next((k for k, v in cannot.items() if v), None)
            if name is not None:
                raise ConfigError(f"{flag_name(name)} {toml_text(getattr(self, name))} with --optimizer lbfgs: it "
                                  "minimises one smooth, fixed objective on every row (no l1 kink, no input noise, "
                                  "no learning-rate schedule, no minibatch statistics); drop it, or use a minibatch "
                                  "optimizer")
        fused.mode()  # MLPCLI_NUMBA read by every fit: a bad value said before the data is read, not after

    def fit_config(self) -> FitConfig:
        """The fit loop's settings; every "auto" must have been resolved (``resolve``)."""
        unresolved = [k for k in ("batch_size", "epochs", "l2", "lr", "augment_noise") if getattr(self, k) == AUTO]
        if unresolved:
            raise ValueError(f"fit_config needs resolved options; still auto: {', '.join(unresolved)}")
        return FitConfig(
            optimizer=self.optimizer, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
            beta2=self.adam_beta2,
            l1=self.l1, l2=self.l2, batch_size=self.batch_size, epochs=self.epochs,
            patience=BASE_PATIENCE if self.patience == AUTO else self.patience, adaptive_patience=self.patience == AUTO,
            min_delta=self.min_delta, lr_schedule=self.lr_schedule, augment_noise=self.augment_noise,
            clip_norm=self.clip_norm, seed=self.seed,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def roles(self) -> dict:
        """The column-role options as ``data.load_dataset`` takes them."""
        return {"target": self.target, "group": self.group, "no_group": self.no_group, "id": self.id,
                "batch": self.batch, "drop": self.drop, "task": self.task, "features_in_rows": self.features_in_rows,
                "sep": self.sep, "decimal": self.decimal, "samples": self.samples, "layer": self.layer,
                "raw": self.raw, "var_names": self.var_names, "positive": self.positive,
                "feature_types": list(self.feature_types)}


def require_options(options, who: str) -> None:
    """A ConfigError unless ``options`` is a TrainOptions: a dict of options (or None) given instead failed with an
    AttributeError deep inside ('dict' object has no attribute 'validate'). ``who``: what takes it, e.g. "fit_model
    takes"."""
    if not isinstance(options, TrainOptions):
        raise ConfigError(f"{who} a TrainOptions for its options (config.TrainOptions(epochs=...)), got a "
                          f"{type(options).__name__}")


# Options that some optimizers only read: given for another one they would change nothing, silently.
OPTIMIZER_ONLY = {"weight_decay": ("adamw",), "momentum": ("sgd",), "adam_beta2": ("adam", "adamw"),
                  **{name: MINIBATCH_OPTIMIZERS for name in ("lr", "batch_size", "lr_schedule", "patience", "min_delta",
                                                             "clip_norm")}}
_FULL_BATCH = "; lbfgs steps on every row by line search until the loss stops falling"
_OPTIMIZER_ADVICE = {"weight_decay": "; for an L2 penalty with another optimizer use --l2",
                     "momentum": "; Adam's own momentum (beta1) is fixed at 0.9", "adam_beta2": "",
                     **{name: _FULL_BATCH for name in ("lr", "batch_size", "lr_schedule", "patience", "min_delta",
                                                       "clip_norm")}}


@dataclass(frozen=True)
class OnlyWith:
    """An option that has an effect only under some settings of others: ``applies(options)`` says whether it
    has one, reading only the options named in ``controls``; ``why(tried, folds_flag)`` says, for the settings
    tried where it has none (a grid's), what makes it moot (after "--flag: "). ``inert``: its values that ask
    for nothing (--dropout 0, --no-batchnorm, --class-weight none), which go with any setting."""
    controls: tuple[str, ...]
    applies: Any  # Callable[[TrainOptions], bool]
    why: Any  # Callable[[list[TrainOptions], str], str]: the settings tried (a grid's), the flag that sets folds
    inert: tuple = ()

    def is_inert(self, value: Any) -> bool:
        return (value.lower() if isinstance(value, str) else value) in self.inert


def _optimizer_only(name: str) -> OnlyWith:
    readers = OPTIMIZER_ONLY[name]
    # "auto", the default, asks for nothing: --weight-decay auto with adam (a config file's) was refused
    inert = (AUTO,) if TrainOptions.__dataclass_fields__[name].metadata.get("auto") else ()
    return OnlyWith(("optimizer",), lambda o: o.optimizer in readers,
                    lambda tried, _: (f"only --optimizer {' or '.join(readers)} uses it, and the optimizer is "
                                      f"{' or '.join(sorted({o.optimizer for o in tried}))}{_OPTIMIZER_ADVICE[name]}"),
                    inert)


def _val_size_moot(tried: list, folds_flag: str) -> str:
    if any(o.val_data for o in tried):
        return ("splits a validation hold-out off the table, and --val-data gives the validation table instead; "
                "drop one of them")
    k = next(o.folds for o in tried)
    return (f"sets the hold-out of one network ({folds_flag} 1), and {folds_flag} {k} trains {k} cross-fitted members, "
            f"each early-stopped on its own fold; drop --val-size, or use {folds_flag} 1")


def _no_hidden(flag: str, what: str):
    return lambda tried, _: (f"{what}, and --hidden none has none (softmax regression); drop {flag}, or give "
                             "hidden layers")


def _minibatch_only(flag: str, what: str, other: OnlyWith | None = None) -> OnlyWith:
    """An option that --optimizer lbfgs cannot apply (its objective must be the same at every evaluation), besides
    ``other``'s rule (what else makes it moot) when there is one."""
    def applies(o) -> bool:
        return o.optimizer != "lbfgs" and (other is None or other.applies(o))

    def why(tried, folds_flag) -> str:
        if other is not None and not any(other.applies(o) for o in tried):
            return other.why(tried, folds_flag)
        return (f"{what}, and --optimizer lbfgs minimises a fixed objective on every row (no random units, noise "
                f"or kinks); drop {flag}, or use a minibatch optimizer")

    return OnlyWith(tuple(dict.fromkeys(("optimizer", *(other.controls if other else ())))), applies, why,
                    other.inert if other else (0, 0.0))


# The options that only some settings of others read (besides the loss-shaping ones, ``check_loss_options``,
# which are refused once the loss is known). Given explicitly (on the command line or in a config file) where
# nothing reads them, they are a usage error naming both options, rather than accepted and ignored; a tuning grid
# is refused only when none of its settings reads them (``check_unused``). The scikit-learn estimators do not
# apply these rules: their parameters always have values, and grids over them (hidden=() with dropout) are
# scikit-learn's convention (they refuse weight_decay with adam or sgd, whose None means "not set").
ONLY_WITH: dict[str, OnlyWith] = {
    **{name: _optimizer_only(name) for name in OPTIMIZER_ONLY},
    "scaling": OnlyWith(("standardize",), lambda o: o.standardize,
                        lambda tried, _: ("chooses how --standardize scales the features, and --no-standardize "
                                          "leaves them unscaled; drop one of them")),
    "augment_noise": _minibatch_only("--augment-noise", "adds noise to each minibatch's inputs", OnlyWith(
        ("standardize",), lambda o: o.standardize or o.augment_noise != AUTO,
        lambda tried, _: ("auto sizes the noise in units of a standardised feature (SD "
                          "sqrt(features / rows)), and --no-standardize leaves the features in "
                          "their own units; give --augment-noise an SD in those units, or drop "
                          "--no-standardize"), inert=(0, 0.0))),
    "val_size": OnlyWith(("folds", "val_data"), lambda o: o.folds in (1, AUTO) and not o.val_data, _val_size_moot),
    "dropout": _minibatch_only("--dropout", "drops random units of the hidden layers", OnlyWith(
        ("hidden",), lambda o: o.hidden != [], _no_hidden("--dropout", "drops units of the hidden layers"),
        inert=(0, 0.0))),
    "batchnorm": _minibatch_only("--batchnorm", "normalises each minibatch", OnlyWith(
        ("hidden",), lambda o: o.hidden != [], _no_hidden("--batchnorm", "normalises the hidden layers"),
        inert=(False,))),
    "l1": OnlyWith(("optimizer",), lambda o: o.optimizer != "lbfgs",
                   lambda tried, _: ("has a kink at zero, and --optimizer lbfgs needs a smooth objective; use --l2, "
                                     "or a minibatch optimizer"), inert=(0, 0.0)),
    "activation": OnlyWith(("hidden",), lambda o: o.hidden != [],
                           _no_hidden("--activation", "sets the hidden layers' activation")),
    "class_weight": OnlyWith(("task",), lambda o: o.task != "regression",
                             lambda tried, _: "needs a classification target, and --task regression predicts values",
                             inert=("none",)),
    "positive": OnlyWith(("task",), lambda o: o.task in (AUTO, "binary"),
                         lambda tried, _: (f"names the positive class of a binary target, and the task is "
                                           f"{' or '.join(sorted({o.task for o in tried}))} (--task)"), inert=(None,)),
    "calibrate": OnlyWith(("task",), lambda o: o.task != "regression",
                          lambda tried, _: "temperature-scales a classifier's probabilities, and --task regression "
                                           "predicts values; drop --calibrate", inert=(False,)),
}


def check_unused(options: "TrainOptions", given: Iterable[str], grid: dict | None = None,
                 folds_flag: str = "--folds", config_file: tuple[str, Iterable[str]] | None = None) -> None:
    """A ConfigError naming both options when one in ``given`` (set explicitly: on the command line or in a
    config file) or in ``grid`` (a tuning grid: {option: values}, named as the grid's) is read under none of the
    settings tried (``ONLY_WITH``): ``options``, with each combination of the grid's values of the options that
    decide it. ``--no-standardize --scaling standard`` would otherwise train as if --scaling were not there.
    ``config_file``: (its path, the options it set), which the message then names with their values."""
    grid, given = grid or {}, set(given)
    given = [name for name in OPTION_META if name in given]  # declaration order: the same message whatever the hash seed
    path, in_file = config_file or ("", ())
    in_file = set(in_file)
    for name in [*given, *(g for g in grid if g not in given)]:
        rule = ONLY_WITH.get(name)
        values = grid.get(name, [getattr(options, name)])
        if rule is None or all(rule.is_inert(v) for v in values):
            continue
        tuned = [k for k in rule.controls if k in grid]
        # each of the grid's values (those that ask for something) on its own: a rule may read the option itself
        # (--augment-noise auto, not an SD, is what --no-standardize makes moot), and a grid's "auto" beside 0.1
        # passed as long as 0.1 was read, and --refit shipped auto unstandardised
        own = [v for v in values if not rule.is_inert(v)] if name in grid else [getattr(options, name)]
        tried_each = []
        for value in own:
            tried = [replace(options, **{name: value})]
            for key in tuned:
                tried = [replace(o, **{key: v}) for o in tried for v in grid[key]]
            tried_each.append((value, tried, any(rule.applies(o) for o in tried)))
        unread = [(value, tried) for value, tried, read in tried_each if not read]
        if unread:
            value, tried = unread[0]
            # the value is named where others of the grid are read (auto beside an SD), the option where none is
            shown = flag_name(name) if name in given else (
                f"--grid: {name.replace('_', '-')}" + (f"={value}" if len(unread) < len(tried_each) else ""))
            filed = [k for k in (name, *rule.controls) if k in in_file and k not in grid]
            said = ", ".join(f"{k.replace('_', '-')} = {toml_text(getattr(options, k))}" for k in filed)
            raise ConfigError(f"{shown}: {rule.why(tried, folds_flag)}" + (f" (--config {path}: {said})" if filed
                                                                           else ""))


def check_one_target_for_classes(task: str, target: Iterable[str] | None) -> None:
    """A ConfigError for ``--task binary`` or ``multiclass`` with several --target columns: the options contradict
    each other whatever the table holds, so it is a usage error before the data is read (it was a data error, exit
    1, once the whole table had been read)."""
    names = [n.strip() for t in (target or ()) for n in str(t).split(",") if n.strip()]
    if task in ("binary", "multiclass") and len(names) > 1:
        raise ConfigError(f"--task {task} takes one --target column, got {len(names)} "
                          f"({', '.join(map(repr, names))}); use --task multilabel for several 0/1 columns, "
                          "--task regression for several numeric ones")


def toml_text(value: Any) -> str:
    """A value as a config file writes it (``false``, ``"robust"``, ``[64, 32]``)."""
    import json

    return json.dumps(value)


def check_optimizer_options(given: Iterable[str], optimizers: Iterable[str], grid: Iterable[str] = ()) -> None:
    """``check_unused`` for the optimizer-only options alone (``OPTIMIZER_ONLY``), for a run that tries
    ``optimizers`` (tune: every one its grid tries; ``grid``: the grid's keys). ``--optimizer adam
    --weight-decay 0.1`` would otherwise train as if the decay were not there."""
    keys = [g for g in grid if g in OPTIMIZER_ONLY]
    check_unused(TrainOptions(), [g for g in given if g in OPTIMIZER_ONLY],
                 {"optimizer": list(optimizers), **{k: [None] for k in keys}})


# Options that ``TrainOptions.validate`` refuses together, and when: where one comes from the command line and
# the other from --config, the flag wins and the file's value is dropped (``cli.options``), as for any other key.
EXCLUSIVE = (
    ("group", "no_group", lambda o: bool(o.no_group and o.group)),
    ("layer", "raw", lambda o: bool(o.raw) and o.layer not in (None, "X")),
    ("val_data", "folds", lambda o: bool(o.val_data) and o.folds not in (1, AUTO)),
    ("val_data", "refit", lambda o: bool(o.val_data and o.refit)),
    ("refit", "folds", lambda o: bool(o.refit) and o.folds == 1),
)


def unused_once_resolved(options: "TrainOptions", given: Iterable[str], folds: int,
                         folds_flag: str = "--folds", task: str | None = None) -> list[str]:
    """Notes for options given explicitly that a data-dependent default, resolved, left without effect:
    --val-size when ``folds`` auto became a cross-fitted ensemble of ``folds`` members; --calibrate when the
    inferred ``task`` is regression (--task regression given makes it a usage error)."""
    notes = []
    if "val_size" in given and options.folds == AUTO and not options.val_data and folds > 1:
        notes.append(f"--val-size {options.val_size:g} had no effect: {folds_flag} auto trained {folds} cross-fitted "
                     f"members, each early-stopped on its own fold ({folds_flag} 1 trains one network on a --val-size "
                     "hold-out)")
    if "calibrate" in given and options.calibrate and task == "regression":
        notes.append("--calibrate had no effect: it temperature-scales a classifier's probabilities, and the target "
                     "was inferred as a regression's (values)")
    return notes


def option_fields() -> list:
    """The declared options, in declaration order."""
    return list(fields(TrainOptions))


OPTION_KEYS = {f.name for f in option_fields()}
OPTION_META = {f.name: f.metadata for f in option_fields()}


def flag_name(name: str) -> str:
    return OPTION_META.get(name, {}).get("flag") or "--" + name.replace("_", "-")


def check_value(name: str, value: Any, ranges: bool = True) -> None:
    """One option's type and range, from its declaration; ConfigError naming its flag. ``ranges`` False: the
    type alone (a model file's recorded options, whose ranges an older mlpcli may have drawn otherwise)."""
    meta = OPTION_META.get(name)
    if meta is None:
        return
    flag, kind = flag_name(name), meta["kind"]

    def fail(what: str):
        shown = repr(value)
        if "\n" in shown:  # a DataFrame (or an array) given for --val-data put its whole table in the message
            shown = f"a {type(value).__module__.split('.')[0]}.{type(value).__qualname__}"
        raise ConfigError(f"{flag}: {what}, got {shown}")

    if value is None:
        if not meta["optional"]:
            fail("needs a value")
        return
    if meta["auto"] and value == AUTO:
        return
    if kind in ("bool", "flag"):
        if not isinstance(value, bool):
            fail("must be true or false")
        return
    if kind == "choice":
        if value not in meta["choices"]:
            fail(f"must be one of {', '.join(meta['choices'])}")
        return
    if kind == "str":
        if not isinstance(value, str):
            fail("must be text")
        return
    if kind == "str_list":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            fail("must be a list of names")
        if name == "target" and not value:
            fail("needs at least one column name")
        return
    if kind == "int_list":
        if not isinstance(value, list) or not all(is_whole_number(v) and v >= 1 for v in value):
            fail("layer widths must be positive whole numbers, e.g. 128,64 ('' for no hidden layer)")
        return
    if kind == "int" and not is_whole_number(value):
        fail("must be a whole number")
    if kind == "float" and not (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)):
        fail("must be a finite number")
    if not ranges:
        return
    low, high = meta["low"], meta["high"]
    too_low = low is not None and (value <= low if meta["low_open"] else value < low)
    too_high = high is not None and (value >= high if meta["high_open"] else value > high)
    bound = (lambda v: f"{v:,}") if kind == "int" else (lambda v: f"{v:g}")  # 4,294,967,295, not 4.29497e+09
    if (too_low or too_high) and low is not None and high is not None:
        fail(f"must be in {'(' if meta['low_open'] else '['}{bound(low)}, {bound(high)}{')' if meta['high_open'] else ']'}")
    if too_low:
        fail(f"must be {'>' if meta['low_open'] else '>='} {bound(low)}")
    if too_high:
        fail(f"must be {'<' if meta['high_open'] else '<='} {bound(high)}")


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
NONE_WORDS = ("none", "null", "")


def parse_option_text(name: str, text: str) -> Any:
    """An option's value from text (command line, grid) as its declared type, not yet range-checked:
    "auto" where the option has it, none/empty for optional ones, comma lists for lists."""
    meta = OPTION_META[name]
    if str(text) in meta["aliases"]:  # before stripping: a tab is a separator's alias
        return meta["aliases"][str(text)]
    kind, t = meta["kind"], str(text).strip()
    what = {"int": "a whole number", "float": "a number", "bool": "true or false", "flag": "true or false",
            "int_list": "comma-separated layer widths such as 128,64"}
    if meta["auto"] and t.lower() == AUTO:
        return AUTO
    if kind == "str" and not t:  # `--samples "$SHEET"` with the variable unset: not the same as leaving it out
        raise ConfigError(f"{flag_name(name)}: an empty value (an unset shell variable?); give one"
                          + (", or none" if meta["optional"] else ""))
    if meta["optional"] and not meta["literal"] and t.lower() in NONE_WORDS:
        return None
    try:
        if kind == "int":
            return int(t)
        if kind == "float":
            value = float(t)
            if not math.isfinite(value):
                raise ValueError
            return value
        if kind in ("bool", "flag"):
            if t.lower() not in _TRUE + _FALSE:
                raise ValueError
            return t.lower() in _TRUE
        if kind == "int_list":
            if t.lower() == "none":  # no hidden layer, as tune's --grid and --results write it (hidden=none|64)
                return []
            pieces = [p.strip() for p in t.split(",")] if t else []
            if any(not p for p in pieces):
                raise ValueError
            return [int(p) for p in pieces]
        if kind == "str_list":
            return [p.strip() for p in t.split(",") if p.strip()]
        return t
    except ValueError:
        raise ConfigError(f"{flag_name(name)}: {t!r} is not {what.get(kind, 'valid')}") from None


def parse_option_value(name: str, text: str) -> Any:
    """``parse_option_text`` and then ``check_value``."""
    value = parse_option_text(name, text)
    check_value(name, value)
    return value


def is_whole_number(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


# ── checks of one option's value, or of two together ─────────────────────────────────────────────────────

def class_weight_pairs(spec: str) -> list[tuple[str, float]]:
    """The (label, weight) pairs of an explicit ``--class-weight`` ('A=1,B=3'), in order, checked without the
    data: every item LABEL=WEIGHT with a label, a positive finite weight, no label twice (ConfigError naming the
    item). Whether the labels are classes of the data is ``data.weights``'s to check, once the data is read. A label
    holding a comma is written in double quotes ('"Stage I, early"=2', ``text.named_pairs``); a label keeps its
    spaces, which ``data.weights`` matches as written or without them."""
    from .text import named_pairs

    pairs: list[tuple[str, float]] = []
    items = named_pairs(spec) or [str(spec).strip()]
    for item in items:
        label, sep, value = item.rpartition("=")
        if not sep or not label.strip():
            item = item.strip()
            alone = item.lower() in ("balanced", "none")  # 'balanced,none': two values where one is read
            raise ConfigError(f"--class-weight expects 'balanced', 'none' or LABEL=WEIGHT pairs such as 'A=1,B=3', "
                              f"got {item!r}" + (f" among pairs in {str(spec).strip()!r} ('balanced' and 'none' stand "
                                                 "alone; in tune's --grid '|' separates class-weight values, as in "
                                                 "class_weight=balanced|none)" if alone else
                                                 " (a label holding a comma is written in double quotes: "
                                                 "'\"Stage I, early\"=2')" if len(items) > 1 and "=" not in item
                                                 else ""))
        if label.strip() in (seen.strip() for seen, _ in pairs):
            raise ConfigError(f"--class-weight gives class {label.strip()!r} twice")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not math.isfinite(weight) or weight <= 0:
            raise ConfigError(f"--class-weight for class {label!r} must be a positive number, got {value.strip()!r}")
        pairs.append((label, weight))
    return pairs


def check_loss_options(options: TrainOptions, name: str) -> None:
    """An OptionError (a usage error) naming the option when one that shapes a loss is given for another loss
    ``name`` (it would be ignored): before the data is read for an explicit --loss, once the task is known for
    --loss auto."""
    if options.label_smoothing and name != "ce":
        raise OptionError(f"--label-smoothing applies to --loss ce only (the loss is {name})")
    if options.pos_weight != 1.0 and name != "bce":
        raise OptionError(f"--pos-weight applies to --loss bce only (the loss is {name})")
    if options.focal_alpha is not None and name != "focal":
        raise OptionError(f"--focal-alpha applies to --loss focal only (the loss is {name})")
    if options.focal_gamma != 2.0 and name != "focal":  # as --focal-alpha: silently ignored, it promised nothing
        raise OptionError(f"--focal-gamma applies to --loss focal only (the loss is {name})")


def check_decay(options: TrainOptions) -> None:
    """An OptionError (a usage error) when AdamW's decoupled decay would shrink the weights by lr x weight decay
    >= 1 each step: at 1 it zeroes them, above it flips their sign every step — a run that ends without an error
    and with a useless model (AUC 0.47 at --lr 0.5 --weight-decay 4). An auto learning rate is checked once
    resolved."""
    if options.optimizer != "adamw" or options.lr == AUTO:
        return
    decay = AUTO_WEIGHT_DECAY if options.weight_decay == AUTO else options.weight_decay  # (the larger auto value)
    shrink = float(options.lr) * float(decay)
    if shrink >= 1:
        raise OptionError(f"--weight-decay {decay:g} with --lr {float(options.lr):g}: AdamW shrinks "
                          f"the weights by lr x weight decay = {shrink:g} of themselves each step, which "
                          "zeroes them or flips their sign; keep the product well below 1")


# ── --n-jobs, read by every command that fits in parallel ─────────────────────────────────────────────────


def n_jobs_problem(n_jobs: int, local: bool = True) -> str | None:
    """What is wrong with an ``--n-jobs`` value (on the command line or in a config file alike), None when
    nothing: joblib's convention, which HPC users know, counts 1, 2, ... workers and, from the end, -1 every
    core this job may use (``resources.usable_cores``), -2 all but one, and so on; 0, and a count from the end
    past the last core (-3 on 2 cores), leave no worker. ``local`` False: the fits may not run on this
    machine's cores (a Dask cluster, which ignores the count; or not known yet: a config file is read
    before the command line's --backend), so only 0 is wrong, and the cores are checked once they are known."""
    from .resources import usable_cores

    if n_jobs == 0:
        return "must not be 0; use 1 for one fit at a time, -1 for every core or -2 for all but one"
    if n_jobs >= 1 or n_jobs == -1 or not local:
        return None
    cores = usable_cores()
    if n_jobs < -cores:
        if cores == 1:
            return f"must be -1 (every core: this job may use 1) or a number of workers, got {n_jobs}"
        return (f"must be -1 to -{cores} (counted back from the {cores} cores this job may use: -1 every core, -2 all "
                f"but one) or a number of workers, got {n_jobs}")
    return None


