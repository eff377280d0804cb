"""Training options: one dataclass with documented defaults, validated in one place, and the
TOML config file whose keys mirror the command-line option names."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields

from .engine import activations
from .errors import ConfigError
from .training import LR_SCHEDULES, FitConfig

TASK_CHOICES = ("auto", "binary", "multiclass", "multilabel", "regression")
LOSS_CHOICES = ("auto", "ce", "bce", "focal", "hinge", "mse", "mae", "huber")
OPTIMIZER_CHOICES = ("adam", "adamw", "sgd")
IMPUTE_CHOICES = ("median", "mean", "zero")


@dataclass
class TrainOptions:
    """Everything ``mlpcli train`` can be told; the library's ``pipeline.train`` consumes it."""

    # --- columns and task
    target: list[str] = field(default_factory=lambda: ["label"])  # several names: multi-label
    group: str | None = None  # default: patient_id when present
    no_group: bool = False
    id: str | None = None  # default: sample_id when present
    batch: str | None = None  # default: batch when present
    drop: list[str] = field(default_factory=list)
    task: str = "auto"
    features_in_rows: bool = False
    # --- preprocessing (fitted on training rows only)
    impute: str | None = None
    log1p: bool = False
    top_var: int | None = None
    standardize: bool = True
    # --- validation
    val_size: float = 0.2  # fraction of groups (of samples without groups)
    val_data: str | None = None  # an explicit validation table instead of a split
    # --- network
    hidden: list[int] = field(default_factory=lambda: [128, 64])
    activation: str = "relu"
    dropout: float = 0.0
    batchnorm: bool = False
    dtype: str = "float32"  # float64 only for checking: float32 is twice as fast and plenty precise
    # --- optimisation
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.01
    l1: float = 0.0
    l2: float = 0.0
    batch_size: int = 32
    epochs: int = 200
    patience: int = 20
    min_delta: float = 0.0
    lr_schedule: str = "none"
    augment_noise: float = 0.0
    clip_norm: float | None = None
    seed: int = 0
    # --- imbalance
    loss: str = "auto"
    class_weight: str = "none"  # none | balanced | "A=1,B=3"
    pos_weight: float = 1.0
    focal_gamma: float = 2.0
    focal_alpha: float | None = None
    label_smoothing: float = 0.0

    def validate(self) -> None:
        """Raise ConfigError naming the flag for any value out of range."""

        def need(ok: bool, flag: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"{flag}: {what}")

        need(self.task in TASK_CHOICES, "--task", f"must be one of {', '.join(TASK_CHOICES)}")
        need(self.loss in LOSS_CHOICES, "--loss", f"must be one of {', '.join(LOSS_CHOICES)}")
        need(self.optimizer in OPTIMIZER_CHOICES, "--optimizer", f"must be one of {', '.join(OPTIMIZER_CHOICES)}")
        need(self.activation in activations.names() and self.activation != "softmax", "--activation",
             f"must be one of {', '.join(n for n in activations.names() if n != 'softmax')}")
        need(self.impute in (None, *IMPUTE_CHOICES), "--impute", f"must be one of {', '.join(IMPUTE_CHOICES)}")
        need(self.lr_schedule in LR_SCHEDULES, "--lr-schedule", f"must be one of {', '.join(LR_SCHEDULES)}")
        need(self.dtype in ("float32", "float64"), "--dtype", "must be float32 or float64")
        need(len(self.target) >= 1 and all(self.target), "--target", "needs at least one column name")
        need(all(h >= 1 for h in self.hidden), "--hidden", "layer widths must be positive integers, e.g. 128,64")
        need(0 < self.val_size < 1, "--val-size", f"must be between 0 and 1 (exclusive), got {self.val_size}")
        need(0 <= self.dropout < 1, "--dropout", f"must be in [0, 1), got {self.dropout}")
        need(self.lr > 0, "--lr", "must be > 0")
        need(0 <= self.momentum < 1, "--momentum", "must be in [0, 1)")
        need(self.weight_decay >= 0, "--weight-decay", "must be >= 0")
        need(self.l1 >= 0, "--l1", "must be >= 0")
        need(self.l2 >= 0, "--l2", "must be >= 0")
        need(self.batch_size >= 1, "--batch-size", "must be >= 1")
        need(self.epochs >= 1, "--epochs", "must be >= 1")
        need(self.patience >= 1, "--patience", "must be >= 1")
        need(self.min_delta >= 0, "--min-delta", "must be >= 0")
        need(self.augment_noise >= 0, "--augment-noise", "must be >= 0")
        need(self.clip_norm is None or self.clip_norm > 0, "--clip-norm", "must be > 0")
        need(self.top_var is None or self.top_var >= 1, "--top-var", "must be >= 1")
        need(self.pos_weight > 0, "--pos-weight", "must be > 0")
        need(self.focal_gamma >= 0, "--focal-gamma", "must be >= 0")
        need(self.focal_alpha is None or 0 < self.focal_alpha < 1, "--focal-alpha", "must be in (0, 1)")
        need(0 <= self.label_smoothing < 1, "--label-smoothing", "must be in [0, 1)")
        need(not (self.no_group and self.group), "--no-group", "contradicts --group")

    def fit_config(self) -> FitConfig:
        return FitConfig(
            optimizer=self.optimizer, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
            l1=self.l1, l2=self.l2, batch_size=self.batch_size, epochs=self.epochs, patience=self.patience,
            min_delta=self.min_delta, lr_schedule=self.lr_schedule, augment_noise=self.augment_noise,
            clip_norm=self.clip_norm, seed=self.seed,
        )

    def to_dict(self) -> dict:
        return asdict(self)


OPTION_KEYS = {f.name for f in fields(TrainOptions)}


def read_config_file(path: str) -> dict:
    """Read a TOML file whose keys mirror option names (``batch-size`` or ``batch_size``).

    Keys may sit at the top level or under a ``[train]`` table. Unknown keys are an error naming
    them, so a typo never silently falls back to a default.
    """
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"--config: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config: {path} is not valid TOML ({exc})") from None
    if isinstance(doc.get("train"), dict):
        doc = {**{k: v for k, v in doc.items() if k != "train"}, **doc["train"]}
    out = {}
    for key, value in doc.items():
        name = key.replace("-", "_")
        if name not in OPTION_KEYS and name not in ("out", "history", "quiet", "threads", "json"):
            raise ConfigError(f"--config: unknown key '{key}' in {path}; keys mirror the train options, e.g. batch-size, hidden, lr")
        out[name] = value
    return out
