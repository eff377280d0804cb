"""The ``--grid`` syntax of ``tune``: which options may vary, their values, and the points to try."""

from __future__ import annotations

import difflib
import math
from dataclasses import replace

import numpy as np

from ..config import TrainOptions, check_value, parse_option_text
from ..errors import ConfigError, OptionError

__all__ = ["TUNABLE", "MAX_POINTS", "check_key", "parse_grid", "grid_size", "choose_points", "hidden_layers_note",
           "apply_setting", "check_settings", "format_setting", "value_text", "grid_key", "option_name"]


# ── the grid ─────────────────────────────────────────────────────────────────────────────────────────────

# Options a grid may vary: everything that shapes the model, its training or its preprocessing.
# Not: column roles and the task (the data), --val-data, and the seed (tuning a seed fits noise).
TUNABLE = (
    "impute", "log1p", "top_var", "standardize", "scaling", "val_size", "folds", "calibrate", "hidden", "activation", "dropout", "batchnorm", "dtype",
    "optimizer", "lr", "momentum", "adam_beta2", "weight_decay", "l1", "l2", "batch_size", "epochs", "patience", "min_delta",
    "lr_schedule", "augment_noise", "clip_norm", "loss", "class_weight", "pos_weight", "focal_gamma", "focal_alpha",
    "label_smoothing", "decision",
)
# Values of these contain commas (layer widths, LABEL=W pairs), so "|" separates their values.
_BAR_SEPARATED = ("hidden", "class_weight")

# The most grid points one tuning evaluates (each of them --folds x --repeats fits). A grid of 10 options with
# 10 values each has 10^10 points: listing them alone never finished; --random N draws from any grid.
MAX_POINTS = 10_000

# Train options that tune's grid names otherwise: tune's own --folds is the CV that scores every setting, so
# train's --folds (the members of each model) is member-folds, as on tune's command line and in --config.
_GRID_NAMES = {"folds": "member_folds"}
_FROM_GRID_NAME = {v: k for k, v in _GRID_NAMES.items()}


def grid_key(key: str) -> str:
    """The grid's name (snake case) for TrainOptions field ``key``: ``folds`` is ``member_folds``."""
    return _GRID_NAMES.get(key, key)


def option_name(key: str) -> str:
    """The grid's name of field ``key`` as the user writes it (kebab case): ``member-folds``, ``batch-size``."""
    return grid_key(key).replace("_", "-")


def _parse_value(key: str, text: str, shown: str | None = None):
    """One grid value for option ``key``, parsed as its declaration says (range checks come later); messages
    name the key ``shown`` (as the user wrote it; default the kebab-case name)."""
    t = text.strip()
    shown = shown or option_name(key)
    if not t and key != "hidden":
        raise ConfigError(f"--grid: {shown} has an empty value")
    if key == "hidden" and t.lower() == "none":  # ("0" is refused as --hidden 0 is: a width of no units)
        return []
    if "=" in t and key != "class_weight":  # "lr=1e-3 l2=0": a ';' left out read the next option as a value
        raise ConfigError(f"--grid: {shown} value {t!r} holds another option; separate options with ';' "
                          "(e.g. lr=1e-3,1e-2; l2=0,1e-4)")
    try:
        return parse_option_text(key, t)
    except ConfigError as exc:
        raise ConfigError(f"--grid: {shown} value {t!r} {str(exc).split(f'{t!r} ', 1)[-1]}") from None


def parse_grid(text: str, base: TrainOptions | None = None) -> dict[str, list]:
    """``"lr=1e-3,1e-2; l2=0,1e-4; hidden=64|128,64"`` -> ``{"lr": [0.001, 0.01], ...}`` (in order).

    ``;`` separates options and ``,`` values, except for ``hidden`` and ``class_weight`` whose
    values are separated by ``|`` (``hidden=64|128,64`` is [64] or [128, 64]). Keys are train
    option names, kebab or snake case. Each value is checked against the option's rules (with
    ``base`` for the other options). Every mistake is a one-line ConfigError naming the key."""
    if text is None or not str(text).strip():
        raise ConfigError('--grid is empty; give KEY=VALUES pairs, e.g. "lr=1e-3,1e-2; dropout=0,0.3"')
    base = base if base is not None else TrainOptions()
    space: dict[str, list] = {}
    pending: list[tuple[str, object, str]] = []  # values refused with base's other options (see below)
    for part in str(text).split(";"):
        if not part.strip():
            continue
        key_text, sep, values_text = part.partition("=")
        name = key_text.strip().replace("-", "_")  # as the user wrote it, snake case
        if not sep or not name:
            raise ConfigError(f"--grid: {part.strip()!r} is not KEY=VALUES (e.g. lr=1e-3,1e-2); separate options with ;")
        if name == "folds":  # tune's --folds: read as it, the grid tuned the members of every fold's model
            raise ConfigError("--grid: 'folds' cannot be tuned: tune's --folds is the CV that scores every setting; "
                              "the members of each model are member-folds (e.g. member-folds=1,5)")
        key = _FROM_GRID_NAME.get(name, name)
        check_key(key, key_text.strip())
        name = key_text.strip()  # messages name the key as the user wrote it (member-folds, batch_size)
        if key in space:
            raise ConfigError(f"--grid: {name} is given twice; list all its values once")
        sep_char = "|" if key in _BAR_SEPARATED else ","
        items = values_text.split(sep_char)
        if not values_text.strip():
            raise ConfigError(f"--grid: {name} has no values (e.g. {name}={_example(key)})")
        values: list = []
        for item in items:
            if not item.strip() and key not in ("hidden",):
                raise ConfigError(f"--grid: {name} has an empty value in {values_text.strip()!r}")
            value = _parse_value(key, item, name)
            try:
                replace(base, **{key: value}).validate()
            except ConfigError as exc:
                message = f"--grid: {name}={item.strip()}: {str(exc).split(': ', 1)[-1]}"
                try:  # its type and range: wrong whatever the other options
                    check_value(key, value)
                except ConfigError:
                    raise ConfigError(message) from None
                # with another option (lr=50 under adamw's weight decay): judged once the grid's other options are
                # known, which may change it (optimizer=adam): refusing it now refused a grid whose every setting
                # was valid
                pending.append((key, value, message))
            if value not in values:
                values.append(value)
        space[key] = values
    if not space:
        raise ConfigError('--grid is empty; give KEY=VALUES pairs, e.g. "lr=1e-3,1e-2; dropout=0,0.3"')
    for key, value, message in pending:  # a value that goes with no setting of the grid's other options
        if not _valid_in_some_setting(base, space, key, value):
            raise ConfigError(message)
    return space


def _valid_in_some_setting(base: TrainOptions, space: dict[str, list], key: str, value) -> bool:
    """Whether ``key=value`` is valid with some combination of the grid's other options' values (applied to
    ``base``). The settings where it is not are refused one by one (``check_settings``); a grid too large to
    search is left to that check too."""
    others = {k: v for k, v in space.items() if k != key}
    if not others:  # base's own options, with which it was refused
        return False
    if grid_size(others) > MAX_POINTS:
        return True
    for i in range(grid_size(others)):
        try:
            replace(base, **{key: value}, **_point(others, i)).validate()
        except ConfigError:
            continue
        return True
    return False


def _example(key: str) -> str:
    return {"hidden": "64|128,64", "class_weight": "none|balanced"}.get(key, "a,b")


def grid_size(space: dict[str, list]) -> int:
    return math.prod(len(v) for v in space.values())


def _point(space: dict[str, list], index: int) -> dict:
    """The ``index``-th point of the grid in itertools.product order (last key varies fastest)."""
    out = {}
    for key in reversed(list(space)):
        values = space[key]
        index, j = divmod(index, len(values))
        out[key] = values[j]
    return {k: out[k] for k in space}


def check_key(key: str, shown: str | None = None) -> None:
    """A ConfigError unless ``key`` (a TrainOptions field name) may be tuned; ``shown``: as the user wrote it."""
    if key in TUNABLE:
        return
    shown = key if shown is None else shown
    if key == "refit":  # train's --refit: tune's own --refit trains the best setting, and has no train twin here
        raise ConfigError(f"--grid: {shown!r} cannot be tuned: tune's --refit trains the best setting as train does")
    if key in TrainOptions.__dataclass_fields__:
        why = "the seed (tuning it fits noise)" if key == "seed" else "a column role or data option"
        raise ConfigError(f"--grid: {shown!r} cannot be tuned: it is {why}; set it with its own flag")
    # option names are lower case: "LR" is close to "lr" only once lowered (difflib scored them 0.5, no hint)
    names = [grid_key(k) for k in TUNABLE]
    hint = difflib.get_close_matches(key.lower(), names, n=1)
    raise ConfigError(f"--grid: unknown option {shown!r}" + (f" (did you mean {hint[0].replace('_', '-')!r}?)" if hint else "")
                      + "; keys are train option names such as lr, l2, dropout, hidden, patience")


def choose_points(space: dict[str, list], n_random: int | None = None, seed: int = 0) -> tuple[list[tuple[int, dict]], list[str]]:
    """(grid index, setting) pairs to evaluate: the full grid, or ``n_random`` distinct points drawn
    with ``seed`` (in grid order). Returns notes too. Every key of ``space`` must be tunable (``check_key``)."""
    if not space:
        raise ConfigError("the grid is empty; give at least one option and its values, e.g. --grid \"lr=1e-3,1e-2\"")
    for key, values in space.items():
        check_key(str(key))
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
            raise ConfigError(f"the grid's {key} needs a list of at least one value, got {values!r}")
    size = grid_size(space)
    if n_random is not None and (isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer))
                                 or n_random < 1):
        raise ConfigError(f"--random must be a whole number >= 1, got {n_random!r}")
    check_points(space, n_random)
    if n_random is None:
        return [(i, _point(space, i)) for i in range(size)], []
    if n_random >= size:
        return ([(i, _point(space, i)) for i in range(size)],
                [f"--random {n_random} covers the whole grid of {size} points; running all of them"])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    chosen = np.sort(rng.choice(size, size=n_random, replace=False))
    return [(int(i), _point(space, int(i))) for i in chosen], [f"{n_random} of {size} grid points drawn at random (seed {seed})"]


def hidden_layers_note(space: dict[str, list]) -> list[str]:
    """A note when the grid's ``hidden`` is one network of several layers (``hidden=16,32``, no "|"): a user who
    meant two settings, as "," separates the other options' values, got one two-layer network without a word.
    (class_weight has no such reading: its "," joins LABEL=W pairs of one map, and "balanced,none" is refused.)"""
    values = space.get("hidden")
    if values is None or len(values) != 1 or not isinstance(values[0], list) or len(values[0]) < 2:
        return []
    widths = [str(w) for w in values[0]]
    return [f"--grid hidden={value_text(values[0])}: one setting, hidden layers {', '.join(widths[:-1])} and "
            f"{widths[-1]} (\"|\" separates settings: hidden={'|'.join(widths)})"]


def check_points(space: dict[str, list], n_random: int | None = None) -> None:
    """An OptionError (a usage error) when the grid points to evaluate are more than MAX_POINTS, or the grid
    is too large to draw --random points from; before any work."""
    size = grid_size(space)
    n = size if n_random is None else min(int(n_random), size)
    if n > MAX_POINTS:
        if n_random is None:
            raise OptionError(f"--grid has {size:,} points, more than the {MAX_POINTS:,} settings one tuning "
                              "evaluates (each with --folds x --repeats fits); draw some with --random N (e.g. "
                              "--random 50) or give fewer values")
        raise OptionError(f"--random {n_random} is more than the {MAX_POINTS:,} settings one tuning evaluates (each "
                          "with --folds x --repeats fits); draw fewer")
    if n_random is not None and size > _MAX_DRAWN_FROM:
        raise OptionError(f"--grid has {size:.3g} points, too many to draw --random points from (at most "
                          f"{_MAX_DRAWN_FROM:.3g}); give fewer options or values")


# numpy draws distinct indices below 2^63 only
_MAX_DRAWN_FROM = 2**63 - 1


def apply_setting(options: TrainOptions, setting: dict) -> TrainOptions:
    return replace(options, **setting)


def check_settings(options: TrainOptions, points: list[tuple[int, dict]]) -> None:
    """A ConfigError naming the setting for a grid point whose values do not go together with each other or with
    ``options`` (``batch-size=1`` with ``batchnorm=true``: each value is valid alone). Before any fit: such a
    point failed when its first fit ran, after every fit before it, with a message naming flags the user never
    gave. ``options``: those the points are applied to (their own values already valid)."""
    for _, setting in points:
        try:
            apply_setting(options, setting).validate("--member-folds")
        except ConfigError as exc:
            raise ConfigError(f"--grid: the setting {format_setting(setting)} is not valid: {exc}") from None


def value_text(v) -> str:
    """One grid value as ``--grid`` writes it: ``128,64``, ``none`` (no hidden layer, an unset option), ``true``,
    ``0.001`` (Python's ``True`` and ``None`` in messages were not grid syntax)."""
    if isinstance(v, list):
        return ",".join(str(x) for x in v) or "none"
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):  # short where that is exact; else every digit (0.0012345678 and 0.00123456789 are two)
        return f"{v:g}" if float(f"{v:g}") == v else repr(v)
    return str(v)


def format_setting(setting: dict) -> str:
    """``{"lr": 0.001, "hidden": [128, 64]}`` -> ``lr=0.001 hidden=128,64``."""
    return " ".join(f"{option_name(k)}={value_text(v)}" for k, v in setting.items())

