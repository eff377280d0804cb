"""The train options as Click options, generated from their one declaration (``mlpcli.config.TrainOptions``),
and ``--config FILE.toml`` whose keys become the command's defaults."""

from __future__ import annotations

import functools
import re
from dataclasses import MISSING

import click

from ..config import (AUTO, EXCLUSIVE, ONLY_WITH, OPTION_KEYS, TrainOptions, check_unused, check_value, flag_name, option_fields,
                      parse_option_value, toml_text)
from ..config_file import read_config_file
from ..errors import ConfigError, MlpcliError

__all__ = ["train_options", "options_from_params", "given_options", "config_option", "declared_options"]


class OptionValue(click.ParamType):
    """Parses and checks one declared option (text from the command line, or a typed value from a config
    file); a bad value is a usage error (exit 2) naming the flag."""

    def __init__(self, name: str, metavar: str):
        self.field, self.name = name, metavar

    def convert(self, value, param, ctx):
        try:
            if isinstance(value, str):
                return parse_option_value(self.field, value)
            if isinstance(value, (list, tuple)):
                value = list(value)
            check_value(self.field, value)
            return value
        except ConfigError as exc:
            self.fail(str(exc).split(": ", 1)[-1], param, ctx)


class _AliasChoice(click.Choice):
    """A choice that also takes other spellings of its values (``--sep semicolon``, ``--sep $'\\t'``)."""

    def __init__(self, choices, aliases: dict):
        super().__init__(choices)
        self.aliases = aliases

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value in self.aliases:
            value = self.aliases[value]
        return super().convert(value, param, ctx)


def declared_options(*names: str):
    """Some TrainOptions fields as Click options, for commands that do not take all the train options
    (predict and evaluate: --sep, --decimal, --samples; gradcheck: --samples)."""
    def decorate(fn):
        for f in reversed([f for f in option_fields() if f.name in names]):
            fn = _click_option(f, flag_name(f.name), f.name)(fn)
        return fn

    return decorate


def _metavar(meta: dict) -> str:
    kind = meta["kind"]
    base = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "int_list": "WIDTHS", "str_list": "NAMES"}.get(kind, "TEXT")
    return f"{base}|auto" if meta["auto"] else base


def _default_text(f) -> str | None:
    default = f.default if f.default is not MISSING else f.default_factory()
    if default is None or default == [] and f.name != "hidden":
        return None
    if isinstance(default, list):
        return ",".join(map(str, default))
    if isinstance(default, bool):
        return None
    return str(default)


# Train options that only some tasks use, said at the start of their help in every command that shows them (train,
# cv, tune, diagnose --learning-curve): a regression user reads past them.
_FOR_TASKS = {"positive": "binary", "calibrate": "classifiers", "class_weight": "classifiers",
              "pos_weight": "binary, multi-label", "focal_gamma": "binary, multi-label",
              "focal_alpha": "binary, multi-label", "label_smoothing": "classifiers"}


def _help(f) -> str:
    """The declared help, with the tasks the option applies to when not all of them (``_FOR_TASKS``)."""
    text = f.metadata["help"]
    tasks = _FOR_TASKS.get(f.name)
    if tasks is None:
        return text
    if text.startswith("Binary target: "):  # the mark says it
        text = text.removeprefix("Binary target: ")
        text = text[:1].upper() + text[1:]
    return f"({tasks}) {text}"


def _click_option(f, flag: str, param: str, rename: dict[str, str] | None = None, hidden: bool = False):
    """``f`` as a Click option named ``flag``; ``rename``: the command's other flags for train options, which the
    help texts name as that command has them (cv's "--val-size ... with --member-folds 1", not --folds);
    ``hidden``: parsed (its usage error explains why it does not apply) but not listed in --help."""
    meta = f.metadata
    option = functools.partial(click.option, hidden=hidden)
    kind, help_text = meta["kind"], _help(f)
    for name, other in (rename or {}).items():
        help_text = re.sub(re.escape(flag_name(name)) + r"(?![\w-])", other, help_text)
    default = f.default if f.default is not MISSING else f.default_factory()
    if kind == "flag":
        return option(flag, param, is_flag=True, default=False, help=help_text)
    if kind == "bool":
        negative = "--no-" + flag[2:]
        if meta["auto"]:  # neither flag given: "auto"
            return option(f"{flag}/{negative}", param, default=None, help=f"{help_text}  [default: auto]")
        return option(f"{flag}/{negative}", param, default=default, show_default=True, help=help_text)
    if kind == "choice":
        shown = _default_text(f)
        choice = _AliasChoice(meta["choices"], meta["aliases"]) if meta["aliases"] else click.Choice(meta["choices"])
        return option(flag, param, type=choice, default=default, show_default=shown is not None, help=help_text)
    shown = _default_text(f)
    if kind == "str_list":  # `--target age --target ic50` is `--target age,ic50`; it kept the last one, silently
        return option(flag, param, type=OptionValue(f.name, _metavar(meta)), multiple=True,
                      callback=_joined, help=help_text + " Repeat it to add names."
                      + (f"  [default: {shown}]" if shown is not None else ""))
    return option(flag, param, type=OptionValue(f.name, _metavar(meta)), default=None,
                  help=help_text + (f"  [default: {shown}]" if shown is not None else ""))


def _joined(ctx, param, value: tuple) -> list[str] | None:
    """The names of every use of a repeatable list option, in order (None: not given, the declared default)."""
    return [name for names in value for name in names] if value else None


def train_options(fn=None, *, rename: dict[str, str] | None = None, exclude: tuple[str, ...] = (),
                  hide: tuple[str, ...] = ()):
    """Add every train option (roles, task, ensemble, preprocessing, network, optimisation, imbalance).

    ``rename`` gives some options another flag where a command has its own option of that name
    (``cv`` and ``tune`` already use ``--folds`` for their CV: the ensemble's becomes ``--member-folds``);
    ``exclude`` leaves some out (they keep their declared default); ``hide`` keeps some out of --help, those a
    command always refuses with a reason (cv's --val-data): listed, they read as options it takes."""
    rename = rename or {}

    def decorate(func):
        fields = [f for f in option_fields() if f.name not in exclude]
        for f in reversed(fields):
            flag = rename.get(f.name) or flag_name(f.name)
            param = flag[2:].replace("-", "_")
            func = _click_option(f, flag, param, rename, hidden=f.name in hide)(func)
        func.__mlpcli_train_params__ = {(rename.get(f.name) or flag_name(f.name))[2:].replace("-", "_"): f.name
                                        for f in fields}
        return func

    return decorate if fn is None else decorate(fn)


def _train_params(ctx: click.Context | None) -> dict[str, str]:
    """{Click parameter name: TrainOptions field} of the command being run (set by ``train_options``,
    possibly on a function that another decorator wraps)."""
    callback = ctx.command.callback if ctx is not None else None
    while callback is not None:
        mapping = getattr(callback, "__mlpcli_train_params__", None)
        if mapping:
            return mapping
        callback = getattr(callback, "__wrapped__", None)
    return {}


def options_from_params(params: dict, check_optimizer: bool = True) -> TrainOptions:
    """The library's TrainOptions from the parsed values (removing them from ``params``); an option left
    unset takes its declared default. Values out of range are usage errors (exit 2) naming the flag, and so is
    an option given where the others make it moot (``config.ONLY_WITH``: --momentum with --optimizer adam,
    --scaling with --no-standardize; ``check_optimizer`` False: the caller checks, as tune does once its grid is
    known). A --config value that a command-line flag makes contradictory or moot is dropped: the flag wins."""
    values = {}
    folds_flag = "--folds"
    ctx = click.get_current_context(silent=True)
    for param, name in _train_params(ctx).items():
        if name == "folds":
            folds_flag = "--" + param.replace("_", "-")  # --member-folds in cv and tune
        if param not in params:
            continue
        value = params.pop(param)
        if value is None and name in ("log1p",):
            value = AUTO
        if value is None and _declared_default(name) is not None:
            continue  # not given: the declared default
        values[name] = value
    try:
        given = given_options(ctx)
        dropped = _overridden_by_flags(ctx, values, moot=check_optimizer)
        unused = []
        for name, flags in dropped.items():
            value = values.pop(name, None)  # the file's value: the option takes its default
            given.discard(name)
            unused.append(f"--config {ctx.meta.get(CONFIG_META)}: {name.replace('_', '-')} = {toml_text(value)} not "
                          f"used, as {' and '.join(flag_name(c) for c in flags)} on the command line contradicts it "
                          "or leaves it without effect (the command line wins)")
        if unused:  # the model differs from what the file says: a warning, which -q does not hide
            from .console import report

            report([], unused, False)
        options = TrainOptions(**values)
        from click.core import ParameterSource

        in_file = {n for n in given if ctx.get_parameter_source(_param_of(ctx, n)) == ParameterSource.DEFAULT_MAP}
        try:
            options.validate(folds_flag)
        except MlpcliError as exc:  # options the message names that the file set: said with the file, as below
            named = [n for n in sorted(in_file) if re.search(rf"{re.escape(flag_name(n))}(?![\w-])", str(exc))]
            if not named or ctx.meta.get(CONFIG_META) is None:
                raise
            said = ", ".join(f"{n.replace('_', '-')} = {toml_text(getattr(options, n))}" for n in named)
            raise type(exc)(f"{exc} (--config {ctx.meta.get(CONFIG_META)}: {said})") from None
        if check_optimizer:  # TrainOptions.validate's rule for the options given, saying which a --config file set
            check_unused(options, given, folds_flag=folds_flag, config_file=(ctx.meta.get(CONFIG_META), in_file)
                         if in_file else None)
    except MlpcliError as exc:
        raise click.UsageError(str(exc)) from None
    return options


def _param_of(ctx: click.Context, name: str) -> str:
    """The Click parameter that sets TrainOptions field ``name`` in the command being run."""
    return {n: p for p, n in _train_params(ctx).items()}[name]


def given_options(ctx: click.Context | None) -> set[str]:
    """The TrainOptions fields set on the command line or in --config (not left at their defaults)."""
    from click.core import ParameterSource

    if ctx is None:
        return set()
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT_MAP)
    return {name for p, name in _train_params(ctx).items() if ctx.get_parameter_source(p) in given}


def _overridden_by_flags(ctx: click.Context | None, values: dict, moot: bool = True) -> dict[str, list[str]]:
    """The TrainOptions fields whose --config value a command-line flag contradicts (``config.EXCLUSIVE``, when
    the two values do exclude each other: a file's val-data stays with --folds 1) or, ``moot``, makes moot
    (``config.ONLY_WITH``: the file's scaling with --no-standardize), each with the fields of those flags.
    ``values``: the options as given."""
    from click.core import ParameterSource

    if ctx is None:
        return {}
    param_of = {name: p for p, name in _train_params(ctx).items()}

    def source(name: str):
        return ctx.get_parameter_source(param_of[name]) if name in param_of else None

    def flag(name: str) -> bool:
        return source(name) == ParameterSource.COMMANDLINE

    def from_file(name: str) -> bool:
        return source(name) == ParameterSource.DEFAULT_MAP

    dropped: dict[str, list[str]] = {}
    try:
        options = TrainOptions(**values)
    except (MlpcliError, TypeError):  # validate says what is wrong
        return dropped
    for a, b, conflict in EXCLUSIVE:
        if conflict(options):
            for given, other in ((a, b), (b, a)):
                if flag(given) and from_file(other):
                    dropped.setdefault(other, []).append(given)
    if moot:
        options = TrainOptions(**{k: v for k, v in values.items() if k not in dropped})
        for name, rule in ONLY_WITH.items():
            controls = [c for c in rule.controls if flag(c)]
            if from_file(name) and not rule.is_inert(getattr(options, name)) and not rule.applies(options) and controls:
                dropped[name] = controls
    return dropped


def _declared_default(name: str):
    f = TrainOptions.__dataclass_fields__[name]
    return f.default if f.default is not MISSING else f.default_factory()


CONFIG_META = "mlpcli.config_file"  # where ctx.meta keeps the --config path


def _load_config_defaults(ctx: click.Context, param, value):
    """--config FILE.toml: its keys become the command's defaults, so command-line flags win. Every value is
    checked against its option's type and range here (``config_file.read_config_file``), and a key the command
    does not have is refused: each problem is a usage error (exit 2) naming the file and the key."""
    if value is None:
        return value
    if not str(value).strip():
        raise click.BadParameter("an empty file name; give a file name, or leave the option out", ctx=ctx, param=param)
    ctx.meta[CONFIG_META] = value  # an input file too: no output may replace it (``distinct_files``)
    train_params = _train_params(ctx)
    renamed = {}  # {train option: this command's key for it} where its flag is another (cv's --member-folds)
    for p in ctx.command.params:
        if p.name in train_params and p.opts:
            key = p.opts[0].lstrip("-").replace("-", "_")
            if key != train_params[p.name]:
                renamed[train_params[p.name]] = key
    try:
        cfg = read_config_file(value, renamed)
    except MlpcliError as exc:
        raise click.BadParameter(str(exc).removeprefix("--config: "), ctx=ctx, param=param) from None
    mapping = {name: p for p, name in train_params.items()}
    rename = {"json": "as_json", "history": "history_path", "oof": "oof_path"}
    accepted = {p.name for p in ctx.command.params}
    defaults = {}
    for key, v in cfg.items():
        # a train option this command leaves out (tune's own --refit means something else) does not apply
        target = mapping.get(key) if key in OPTION_KEYS else rename.get(key, key)
        if target not in accepted:
            raise click.BadParameter(f"{value}: key '{key.replace('_', '-')}' does not apply to "
                                     f"`mlpcli {ctx.info_name}`; remove it", ctx=ctx, param=param)
        if v == AUTO and key in _BOOL_AUTO:
            v = None  # --x/--no-x given neither way: "auto" (options_from_params)
        if key in _LISTS and isinstance(v, str):
            v = [v]  # one use of a repeatable option ("a,b"), not its letters
        defaults[target] = v
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


# Options of names that may be repeated on the command line (``_joined``).
_LISTS = {f.name for f in option_fields() if f.metadata["kind"] == "str_list"}
# Boolean options that may also be "auto": on the command line neither --x nor --no-x.
_BOOL_AUTO = {f.name for f in option_fields() if f.metadata["kind"] == "bool" and f.metadata["auto"]}


def config_option(help: str = "TOML file of options (keys mirror the option names); command-line flags win."):
    """--config FILE.toml for every command that takes the train options."""
    return click.option("--config", type=click.Path(), callback=_load_config_defaults, is_eager=True,
                        expose_value=False, help=help)
