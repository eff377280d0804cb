"""The TOML config file of the train options (``--config``): read with every key held to its option's type
and range (``read_config_file``), and written from a model's options (``options_toml``)."""

from __future__ import annotations

import tomllib
from typing import Any, Iterable

from .errors import ConfigError
from .fileio import symlink_loop, symlink_loop_message
from .config import (AUTO, NONE_WORDS, OPTION_KEYS, OPTION_META, TrainOptions, check_value, is_whole_number,
                     n_jobs_problem, option_fields, parse_option_text, toml_text)


# Keys a config file may hold besides the train options: the command's own outputs and switches, with
# their kinds (as in ``option``). A key the running command does not have is refused (cli.options).
CLI_ONLY_KEYS = {"out": "str", "history": "str", "oof": "str", "quiet": "bool", "threads": "int", "json": "bool",
                 "n_jobs": "int"}
CONFIG_SECTION = "train"  # keys may also sit under a [train] table

# What a config file's value of each kind must be, as its error says
_EXPECTED = {
    "int": "a whole number", "float": "a number", "bool": "true or false", "flag": "true or false",
    "str": "a non-empty string", "str_list": 'a string or an array of strings, e.g. ["a", "b"]',
    "int_list": 'an array of layer widths such as [128, 64] (or the string "128,64"; [] or "none" for none)',
}


def changed_options(config: dict) -> dict:
    """{option: value} of the options in ``config`` (``TrainOptions.to_dict()``, ``Model.config``) that differ from
    the defaults, in declaration order: what a run was given, ``auto`` kept as given."""
    defaults = TrainOptions().to_dict()
    return {f.name: config[f.name] for f in option_fields() if f.name in config and config[f.name] != defaults[f.name]}


def options_toml(config: dict, threads: int | None = None, header: Iterable[str] = ()) -> str:
    """A config file (``--config``) of a model's training options (``Model.config``): the ones that differ from
    the defaults, as given (``auto`` stays ``auto``; what it became is the model's, not an option), under
    [train], with ``threads`` (the BLAS threads the model was trained with: sums split over threads round
    otherwise) and ``header`` lines as comments. ``mlpcli train DATA --config FILE`` trains the same model."""
    lines = [f"# {line}" for line in header] + [f"[{CONFIG_SECTION}]"]
    for name, value in changed_options(config).items():
        lines.append(f"{name.replace('_', '-')} = {toml_text('none' if value is None else value)}")
    if threads is not None:
        lines.append(f"threads = {int(threads)}")
    return "\n".join(lines) + "\n"


def read_config_file(path: str, renamed: dict[str, str] | None = None) -> dict:
    """Read a TOML file whose keys mirror option names (``batch-size`` or ``batch_size``) and return
    {option name: value}, each value of exactly its option's type and within its range.

    Keys may sit at the top level or under a ``[train]`` table. The file is held to the types the command
    line accepts: a float is not a whole number (``epochs = 3.7``), a boolean is not a number
    (``epochs = true``), numbers are not strings (``epochs = "3"``); "auto" where the option has it, "none"
    for an option that may be unset. Every problem is a ConfigError naming the file and the key, so a typo
    or a wrong type never silently falls back to a default or truncates.
   
    ``renamed``: {option: its key in this command} for options a command names otherwise (``cv`` and ``tune``
    call train's ``folds`` ``member-folds``, their own --folds being the CV's): the command's key is read as
    the option, and the option's own name is refused as ambiguous there.
    """
    doc = _load_toml(path)
    items: list[tuple[str, Any, str]] = []  # (key, value, where it sits)
    for key, value in doc.items():
        if key == CONFIG_SECTION and isinstance(value, dict):
            for sub, v in value.items():
                if _is_table(v):
                    raise ConfigError(f"{path}: [{CONFIG_SECTION}.{sub}] is a nested table; options are plain "
                                      f"keys of [{CONFIG_SECTION}] such as epochs = 50")
                items.append((sub, v, f"'{sub}' under [{CONFIG_SECTION}]"))
        elif _is_table(value) and key.replace("-", "_") in {*OPTION_KEYS, *CLI_ONLY_KEYS}:
            # an inline table, class-weight = {A = 1, B = 2}: the option's value, in a form no option takes
            example = ' such as "A=1,B=2" or "balanced"' if key.replace("-", "_") == "class_weight" else ""
            raise ConfigError(f"{path}: '{key}' is a table ({{...}}); the option takes a value as its flag does"
                              f"{example}, written as a TOML string or number")
        elif _is_table(value):
            raise ConfigError(f"{path}: [{key}] is not a table mlpcli reads; put the options at the top level or "
                              f"under [{CONFIG_SECTION}]{_did_you_mean(key)}")
        else:
            items.append((key, value, f"'{key}' at the top level"))
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    renamed = renamed or {}
    as_option = {key: name for name, key in renamed.items()}
    for key, value, place in items:
        name = key.replace("-", "_")
        if name in renamed:
            other = renamed[name].replace("_", "-")
            raise ConfigError(f"{path}: key '{key}' is ambiguous here: this command's --{key.replace('_', '-')} is "
                              f"its own, and train's is --{other}; write {other} = ... for train's (the command's "
                              "own goes on the command line)")
        name = as_option.get(name, name)
        if name not in OPTION_KEYS and name not in CLI_ONLY_KEYS:
            raise ConfigError(f"{path}: unknown key '{key}'{_did_you_mean(key)}; keys mirror the train options, "
                              "e.g. batch-size, hidden, lr")
        if name in given:
            raise ConfigError(f"{path}: key '{key}' is given twice ({given[name]} and {place}); keep one")
        given[name] = place
        out[name] = config_value(name, value, f"{path}: key '{key}'")
    return out


def _load_toml(path: str) -> dict:
    """The parsed file; every way of not being a readable TOML file is one ConfigError naming it."""
    if str(path) == "-":  # ("file not found: -"): standard input may be the data's; a pipe of its own reads
        raise ConfigError("'-': the settings are read from a file, not from standard input (which the data may come "
                          "through): write them to a file, or give them a pipe of their own: --config <(printf ...)")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"--config: file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"--config: {path} is a directory; give a TOML file") from None
    except OSError as exc:
        if symlink_loop(path):  # as every input path says it, not "too many levels of symbolic links"
            raise ConfigError(f"--config: {symlink_loop_message(str(path))}") from None
        raise ConfigError(f"--config: cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        # a byte-order mark (Windows Notepad writes one) is no TOML, but says nothing about the settings: read past
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"--config: {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                          "save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason = str(exc)
        if "at end of document" in reason:  # name the line: the last one
            reason = reason.replace("at end of document", f"at the end of the file, line {text.count(chr(10)) + 1}")
        raise ConfigError(f"--config: {path} is not valid TOML: {reason}") from None
    except RecursionError:  # deeply nested arrays
        raise ConfigError(f"--config: {path} is not valid TOML: nested too deeply") from None


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) or isinstance(value, list) and any(isinstance(v, dict) for v in value)


def _did_you_mean(key: str) -> str:
    import difflib

    known = [n.replace("_", "-") for n in [*OPTION_KEYS, *CLI_ONLY_KEYS]]
    hint = difflib.get_close_matches(key.replace("_", "-"), known, n=1, cutoff=0.7)
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    for kind, text in ((int, "an integer"), (float, "a float"), (str, "a string"), (list, "an array")):
        if isinstance(value, kind):
            return text
    return "a date or time" if hasattr(value, "isoformat") else type(value).__name__


def config_value(name: str, value: Any, where: str) -> Any:
    """A config file's value for option ``name`` as the option's type, range-checked; ConfigError starting
    with ``where`` (the file and the key) otherwise."""
    meta = OPTION_META.get(name)
    kind = meta["kind"] if meta is not None else CLI_ONLY_KEYS[name]
    auto, optional = bool(meta and meta["auto"]), bool(meta and meta["optional"] and not meta["literal"])

    def fail(what: str | None = None):
        if what is None:
            words = [_EXPECTED.get(kind, "a string")]
            if kind == "choice":
                words = ["one of " + ", ".join(f'"{c}"' for c in meta["choices"])]
            words += ['"auto"'] * auto + ['"none"'] * optional
            shown = (str(value).lower() if isinstance(value, bool) else value.isoformat()
                     if hasattr(value, "isoformat") else repr(value))
            what = f"must be {' or '.join(words)}, got {shown} ({_toml_type(value)})"
            if kind in ("int", "float") and isinstance(value, str):
                what += "; write numbers without quotes"
        raise ConfigError(f"{where} {what}")

    if isinstance(value, str) and (auto and value.strip().lower() == AUTO or optional
                                   and value.strip().lower() in NONE_WORDS):
        typed = AUTO if auto and value.strip().lower() == AUTO else None
    elif kind == "int":
        typed = value if is_whole_number(value) else fail()
    elif kind == "float":
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)):
            fail()
        typed = float(value)
    elif kind in ("bool", "flag"):
        typed = value if isinstance(value, bool) else fail()
    elif kind == "choice":
        value = meta["aliases"].get(value, value) if isinstance(value, str) else value
        typed = value if isinstance(value, str) and value in meta["choices"] else fail()
    elif kind == "str":
        typed = value if isinstance(value, str) and value.strip() else fail()
    elif kind == "str_list":
        if isinstance(value, str):
            typed = [p.strip() for p in value.split(",") if p.strip()]
        elif isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
            typed = [v.strip() for v in value]
        else:
            fail()
    elif kind == "int_list":
        if is_whole_number(value):  # hidden = 128: one hidden layer, as --hidden 128
            typed = [value]
        elif isinstance(value, list) and all(is_whole_number(v) for v in value):
            typed = list(value)
        elif isinstance(value, str):
            try:
                typed = parse_option_text(name, value)
            except ConfigError:
                fail()
        else:
            fail()
    else:  # pragma: no cover - every declared kind is handled above
        raise AssertionError(kind)
    if meta is None:
        if name == "n_jobs":
            # the one rule of --n-jobs; its count back from the cores waits for the command (cli's check_n_jobs),
            # which knows whether the fits run here or on a Dask cluster (--backend dask, which ignores it)
            problem = n_jobs_problem(typed, local=False)
            if problem is not None:
                fail(problem)
        elif kind == "int" and typed < 1:
            fail(f"must be >= 1, got {typed}")
        return typed
    try:
        check_value(name, typed)
    except ConfigError as exc:
        fail(str(exc).split(": ", 1)[-1])
    return typed
