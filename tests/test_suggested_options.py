"""Every option a message tells the user to add exists, on the command the message names, with a value it takes.

mlpcli's notes, warnings, errors and advice suggest next steps ("pass --impute median", "`mlpcli cv
--leave-batch-out` shows ...", "--hidden none is the linear model"), which users copy. The first tests read every
string in mlpcli's source (not docstrings: the commands' help comes from Click, read as Click shows it) and every
command's help, and check the ``--option`` tokens in them against the options the Click commands accept (fast: no
training). The tests after them pin suggestions that were wrong in their context, which the introspection cannot
see: advice for a linear model to add dropout or ``--augment-noise auto`` (which gives it no noise), for a run with
input noise to add the ``--augment-noise auto`` it had, for a network ``--hidden auto`` chose to "let the defaults
choose", ``--val-size`` for a run validated on a ``--val-data`` table, ``--threshold`` for a multiclass model,
``raise --epochs`` for a grid that sets the epochs itself, ``cv --leave-batch-out`` for a class found in one batch
only, and diagnose's advice naming train's options without saying so. (tests/test_suggested_options_runs.py: the
ones a tiny run produces.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest

import mlpcli
from mlpcli.cli import all_commands, cli

PACKAGE = Path(mlpcli.__file__).resolve().parent

# `--name` tokens in mlpcli's strings that are other programs' options, not mlpcli's (each with where it is said)
NOT_MLPCLI = {
    "--signal": "SLURM's sbatch --signal=USR1@120 (train's help: a warning ahead of the time limit)",
    "--nthreads": "dask worker --nthreads (parallel.py, shared_options.py: a Dask worker's threads)",
    "--memory-limit": "dask worker --memory-limit (parallel.py: Dask workers that died)",
    "--scheduler-file": "dask scheduler --scheduler-file (dask_connect.py: the scheduler's address)",
}

# Words that follow a choice option in a sentence, not as its value ("--task to override", "--sep out"): the
# value check leaves them alone. A new sentence may need its verb here; a value a choice refuses may not.
NOT_VALUES = {"to", "too", "out", "is", "must", "applies", "could", "or", "and", "the", "says", "imputes"}

# (not a piece of one an f-string completes: f"--no-{name}")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?![\w-])")
# an option and the word after it, the value it may be given (not a parenthesis: "--output (logit or ...)")
OPTION_VALUE = re.compile(r"(?<![\w-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])(?:=| )([^\s,;)(`'\"\]][^\s,;)`'\"\]]*)")


def _commands() -> dict[str, dict[str, click.Parameter]]:
    """{command: {option spelling (--x, --no-x, -x): its Click parameter}} for every command."""
    out = {}
    for name, command in all_commands().items():
        out[name] = {opt: p for p in command.params if isinstance(p, click.Option)
                     for opt in (*p.opts, *p.secondary_opts)}
    return out


COMMANDS = _commands()
GROUP_OPTIONS = {opt for p in cli.params for opt in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
EVERY_OPTION = set().union(*COMMANDS.values()) | GROUP_OPTIONS
# "mlpcli cv --leave-batch-out", "predict --coverage 0.9", "train --dtype float64": the options after a command's
# name (not part of a longer word: "retrain --impute", "bench_train.py --x" are not commands)
PAIR = re.compile(r"(?<![\w./-])(?:mlpcli )?(" + "|".join(sorted(COMMANDS, key=len, reverse=True)) + r")"
                  r"((?:\s+(?:-[a-zA-Z]|--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])(?:[ =](?!-)[^\s,;)`'\"\]]+)?)+)")
SHORT_OR_LONG = re.compile(r"(?<![\w-])(-[a-zA-Z]|--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])(?:[ =](?!-)([^\s,;)`'\"\]]+))?")


def strings_of(source: str, name: str) -> list[tuple[str, str]]:
    """(``file:line``, text) of every string constant of a module's source but its docstrings (f-strings' literal
    parts each)."""
    tree = ast.parse(source)
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(f"{name}:{node.lineno}", node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs]


def help_texts() -> list[tuple[str, str]]:
    """(``mlpcli CMD --help``, text) of every command's help, epilog and options' help, as Click shows them."""
    out = []
    for name, command in all_commands().items():
        where = f"mlpcli {name} --help"
        out += [(where, command.help or ""), (where, command.epilog or "")]
        out += [(f"{where} ({p.opts[0]})", p.help or "") for p in command.params if isinstance(p, click.Option)]
    return out


def texts() -> list[tuple[str, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        out += strings_of(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    return out + help_texts()


def _converts(param: click.Parameter, value: str, command: str) -> bool:
    try:
        param.type.convert(value, param, click.Context(all_commands()[command]))
    except (click.BadParameter, click.UsageError, ValueError, TypeError):
        return False
    return True


def unknown_options(items) -> list[str]:
    """``where: --name`` for every option token no command (nor the group) has, outside ``NOT_MLPCLI``."""
    return [f"{where}: {token}" for where, text in items for token in OPTION.findall(text)
            if token not in EVERY_OPTION and token not in NOT_MLPCLI]


def wrong_command_options(items) -> list[str]:
    """``where: CMD --name`` for each option named right after a command's name that this command lacks, or whose
    value (a choice's) the command refuses: "mlpcli predict --leave-batch-out", "predict --decision auto"."""
    bad = []
    for where, text in items:
        for m in PAIR.finditer(text):
            command = m.group(1)
            for option in SHORT_OR_LONG.finditer(m.group(2)):
                flag, value = option.group(1), option.group(2)
                param = COMMANDS[command].get(flag)
                if param is None and flag not in GROUP_OPTIONS:
                    bad.append(f"{where}: {command} {flag} ({command} has no {flag}) in {m.group(0)!r}")
                elif (param is not None and value and isinstance(param.type, click.Choice)
                      and not _converts(param, value.rstrip(".:") or value, command)):
                    bad.append(f"{where}: {command} {flag} {value} (not one of {list(param.type.choices)})")
    return bad


def refused_values(items) -> list[str]:
    """``where: --name value`` where every command's --name is a choice and none takes the value named."""
    bad = []
    for where, text in items:
        for m in OPTION_VALUE.finditer(text):
            flag, value = m.group(1), m.group(2).rstrip(".:") or m.group(2)
            params = [(c, opts[flag]) for c, opts in COMMANDS.items() if flag in opts]
            if (not params or value.lower() in NOT_VALUES
                    or not all(isinstance(p.type, click.Choice) for _, p in params)):
                continue
            if not any(_converts(p, value, c) for c, p in params):
                bad.append(f"{where}: {flag} {value} (choices: {list(params[0][1].type.choices)})")
    return bad


@pytest.fixture(scope="module")
def every_text():
    items = texts()
    assert len(items) > 3000 and any("--impute" in t for _, t in items)  # the source was read
    return items


def test_every_option_a_message_names_exists(every_text):
    assert not unknown_options(every_text), "\n".join(unknown_options(every_text))


def test_an_option_named_after_a_command_is_that_commands(every_text):
    bad = wrong_command_options(every_text)
    assert not bad, "\n".join(bad)
    # the check reads the pairs the messages hold (it is not vacuous)
    assert any(m.group(1) == "cv" and "--leave-batch-out" in m.group(2)
               for _, t in every_text for m in PAIR.finditer(t))


def test_a_choice_value_a_message_names_is_one_the_option_takes(every_text):
    bad = refused_values(every_text)
    assert not bad, "\n".join(bad)


def test_the_allow_list_holds_only_tokens_still_said_and_never_an_option(every_text):
    said = {token for _, text in every_text for token in OPTION.findall(text)}
    assert set(NOT_MLPCLI) <= said, set(NOT_MLPCLI) - said  # a stale entry would hide a real misspelling later
    assert not set(NOT_MLPCLI) & EVERY_OPTION


BROKEN = '''
"""A docstring's --anything is not a message."""

def read(path):
    raise ValueError(f"{path}: missing values; pass --imputee median or remove them")

def advise():
    return "the held-out batch: `mlpcli predict MODEL --leave-batch-out` shows it; or predict --decision auto"

def choose():
    return "read as semicolon-separated; pass --sep semi-colon to choose"
'''


def test_the_checks_catch_a_misspelt_option_a_wrong_command_and_a_refused_value():
    items = strings_of(BROKEN, "broken.py")
    assert unknown_options(items) == ["broken.py:5: --imputee"]
    wrong = wrong_command_options(items)
    assert len(wrong) == 1 and "predict --decision auto" in wrong[0]  # after MODEL the pair is not read as one
    assert [w.split(" (")[0] for w in refused_values(items)] == ["broken.py:11: --sep semi-colon"]
    assert not unknown_options(strings_of('"""--anything"""\nx = "--json and --impute"\n', "ok.py"))


# --- suggestions that were wrong in their context ------------------------------------------------------------------


def _advice_shapes(**kw):
    """Every label's advice from the labeller's synthetic curves (tests/curves.py), plain and with dropout."""
    import curves
    from mlpcli.diagnosis import LABELS, diagnose

    out = []
    for label in LABELS:
        for seed in range(3):
            case = curves.make_case(label, seed, seed=1)
            for stochastic in (False, True):
                d = diagnose(case.train, case.val, baseline=case.baseline, train_eval_loss=case.train_eval,
                             stochastic_regularisation=stochastic, **kw)
                out += [(d.label, a) for a in d.advice]
    return out


def _memorised(**kw):
    """A training loss that falls to ~0 while validation settles a third of the scale above: the memorised rows of
    the sample data's default run (a softmax regression of 2,000 genes on ~490 rows)."""
    from mlpcli.diagnosis import diagnose

    e = np.arange(1, 61)
    return diagnose(1.0 * np.exp(-e / 6) + 0.001, 0.35 + 0.6 * np.exp(-e / 6) + 0.001 * np.sin(e), baseline=1.1,
                    kept_epochs=[60], **kw)


def test_a_linear_models_advice_asks_for_nothing_that_cannot_change_it():
    """The sample data's default run ships the softmax regression; diagnose advised "Stronger regularisation (--l2,
    --dropout, --augment-noise auto) or a smaller model (--hidden)" and "Apply data augmentation ...
    --augment-noise auto": `train --hidden none --dropout 0.3` is a usage error, --augment-noise auto gives a network
    without hidden layers no noise (auto_defaults.auto_noise), and nothing is smaller than the linear model."""
    network = _memorised()
    assert network.label == "unrepresentative_train"
    assert any("--dropout, --augment-noise auto) or a smaller model (--hidden)" in a for a in network.advice)
    linear = _memorised(linear=True)
    assert linear.label == "unrepresentative_train"
    assert any("A stronger penalty (--l2, --weight-decay) or fewer features (--top-var)" in a for a in linear.advice)
    for label, a in _advice_shapes(linear=True) + [(linear.label, a) for a in linear.advice]:
        assert "--dropout" not in a and "--augment-noise auto" not in a, (label, a)
        assert "smaller model" not in a and not a.startswith("Reduce model capacity"), (label, a)
    from mlpcli.auto_defaults import resolve
    from mlpcli.config import TrainOptions

    # the premise: on 2,000 features and 490 rows auto means noise for a hidden layer, none for the linear model
    assert resolve(TrainOptions(hidden=[], augment_noise="auto"), 490, 2000).augment_noise == 0
    assert resolve(TrainOptions(hidden=[128], augment_noise="auto"), 490, 2000).augment_noise > 1


def test_the_learning_curve_asks_a_linear_model_for_no_dropout():
    """`diagnose --learning-curve --hidden none` answered "... with regularisation (--l2, --dropout)"."""
    from mlpcli.diagnosis.sample_size import bias_variance
    from mlpcli.model_selection.learning_curve import SizePoint

    def point(train, val):
        return SizePoint(fraction=1, n_train=160, n_groups=None, train_score=train, val_score=val, train_loss=1,
                         val_loss=1, baseline_val_loss=1, best_epoch=1, epochs_run=2, seconds=0, curve_label=None)

    for train, val in ((0.8, 0.6), (0.99, 0.6)):  # both bias and variance; mostly variance
        network = bias_variance([point(train, val)], True, 0.5, 0.5, "balanced_accuracy")
        linear = bias_variance([point(train, val)], True, 0.5, 0.5, "balanced_accuracy", linear=True)
        assert "--dropout" in network["text"] and "--dropout" not in linear["text"], linear["text"]
        assert "smaller model" not in linear["text"] and "--l2" in linear["text"]


def test_a_run_validated_on_its_own_table_is_not_told_to_split_one():
    """A `train --folds 1 --val-data B` run with a noisy validation curve was told "Use a larger validation set
    (--val-size, e.g. 0.3)" (a usage error beside --val-data) and "k-fold cross-validation (--folds 5)" (one too)."""
    noisy = [a for label, a in _advice_shapes() if label == "unrepresentative_validation_noisy"]
    assert any("--val-size" in a for a in noisy)
    with_table = [a for label, a in _advice_shapes(validation_table="b.csv")
                  if label == "unrepresentative_validation_noisy"]
    assert with_table and not any("--val-size" in a for a in with_table), with_table
    assert all("--folds 5" not in a or "leave out --val-data: --folds 5" in a for a in with_table), with_table
    assert any("more samples in b.csv" in a for a in with_table)


def test_diagnose_says_whose_options_its_advice_names(tmp_path):
    """diagnose MODEL advises train's options (--l2, --hidden, ...), which diagnose refuses without
    --learning-curve: the heading says whose they are."""
    from cli_helpers import run

    e = np.arange(1, 41)
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": e, "train_loss": 0.7 * np.exp(-e / 6) + 0.01,
                  "val_loss": 0.45 + 0.004 * (e - 8) ** 2 / 8}).to_csv(path, index=False)
    res = run(["diagnose", str(path), "--baseline", "0.69", "--no-chart"])
    assert res.exit_code == 0, res.output
    assert "Advice (options of `mlpcli train`)" in res.output and "--l2" in res.output


def test_a_multiclass_model_predicting_one_class_is_not_told_of_threshold():
    """"choose a --threshold for predict and evaluate" for a multiclass model: both refuse --threshold there
    ("applies to binary and multi-label models")."""
    from mlpcli.pipeline import held_out_warnings

    y = np.array([0] * 85 + [1] * 8 + [2] * 7)
    proba = np.tile([0.86, 0.07, 0.07], (100, 1))
    [multiclass] = [w for w in held_out_warnings("multiclass", y, proba, ["A", "B", "C"], {"log_loss": 0.5},
                                                 "out-of-fold") if "for every one" in w]
    assert "--threshold" not in multiclass and "--decision balanced to predict and evaluate" in multiclass
    y2 = np.array([0] * 90 + [1] * 10)
    [binary] = [w for w in held_out_warnings("binary", y2, np.full((100, 1), 0.1), ["ctrl", "case"],
                                             {"log_loss": 0.3}, "out-of-fold") if "for every one" in w]
    assert "choose a --threshold for predict and evaluate" in binary
    assert "multi-label" in COMMANDS["predict"]["--threshold"].help  # the premise: not a multiclass option


def test_a_grid_that_sets_the_epochs_is_not_told_to_raise_epochs():
    """`tune --grid "epochs=3,5"` warned "raise --epochs": the grid's epochs win over --epochs, so it changed
    nothing; the warning names the grid."""
    from mlpcli.model_selection.tuning import PointResult, _epochs_cap_warning

    flag = PointResult(index=0, setting={"lr": 0.01}, scores=[0.5, 0.5], mean=0.5, sd=0.0, epochs=[5, 5],
                       epoch_caps=[5, 5])
    assert "raise --epochs" in _epochs_cap_warning(flag)
    grid = PointResult(index=0, setting={"epochs": 5}, scores=[0.5, 0.5], mean=0.5, sd=0.0, epochs=[5, 5],
                       epoch_caps=[5, 5])
    warning = _epochs_cap_warning(grid)
    assert "raise --epochs" not in warning and "epochs=5 in --grid" in warning and "larger epochs" in warning


def test_leave_batch_out_is_not_suggested_where_a_class_lives_in_one_batch():
    """Every class in a batch of its own: `cv --leave-batch-out`, which train's warning suggested, holds each class
    out whole and scores every fold 0; the warning says so instead. A class spread over batches keeps the
    suggestion."""
    from mlpcli import data
    from mlpcli.model_selection.cross_validation import batch_confounding

    rng = np.random.default_rng(0)
    rows = [{"sample_id": f"S{i}", "patient_id": f"P{i // 2}", "batch": f"B{(i // 2) % 3}",
             "label": f"C{(i // 2) % 3}", **{f"g{j}": v for j, v in enumerate(rng.normal(size=4))}}
            for i in range(120)]
    frame = pd.DataFrame(rows)
    roles, _ = data.resolve_roles(frame.columns)
    confined = data.Dataset.from_frame(frame, roles)
    for command in ("train", "cv", "tune"):
        warning = batch_confounding(confined, command=command)
        assert "does not measure it for class 'C0': that class is only in batch 'B0'" in warning, warning
        assert "shows how it fares" not in warning
    spread = frame.copy()
    moved = spread.index % 10 == 0  # every class in two batches
    spread.loc[moved, "batch"] = spread.loc[moved, "batch"].map({"B0": "B1", "B1": "B2", "B2": "B0"})
    warning = batch_confounding(data.Dataset.from_frame(spread, roles), command="train")
    assert "`mlpcli cv --leave-batch-out` shows how it fares" in warning, warning


def test_a_run_with_input_noise_is_asked_for_more_not_for_what_it_had():
    """Random labels at `train --hidden 128 --augment-noise auto` (SD 1.58) were told "regularise ... (--l2,
    --weight-decay, --augment-noise auto)": the option the run was given. A run with noise is asked for more of it,
    and one at auto's cap (2, beyond which the noise drowns single genes) for none."""
    plain = _advice_shapes()
    assert any("--augment-noise auto" in a for _, a in plain)
    for sd, more in ((0.5, True), (2.0, False)):
        shapes = _advice_shapes(augment_noise=sd)
        assert not any("--augment-noise auto" in a for _, a in shapes), sd
        assert any(f"--augment-noise above the {sd:g} this run used" in a for _, a in shapes) is more, sd
    memorised = _memorised(augment_noise=1.58).advice
    assert any("--augment-noise above the 1.58 this run used" in a for a in memorised), memorised


def test_a_network_the_defaults_chose_is_not_told_to_let_the_defaults_choose():
    """Random labels, train's defaults: --hidden auto chose the hidden layer over the linear model, validation never
    beat no skill, and the advice ended "or let the defaults choose (--hidden auto)": they had."""
    from mlpcli.diagnosis import diagnose

    # a wide network memorising 64 rows while validation climbs from 0.83 to ~4.9 (tests/test_diagnosis_advice.py)
    train = 1.1 * 10 ** (-(np.arange(100) * 8 / 99))
    val = np.concatenate([[0.83, 1.93, 2.81, 3.46, 3.9, 4.3, 4.6, 4.8, 5.0, 5.1], np.linspace(5.2, 4.88, 90)])
    chosen_by_flag = diagnose(train, val, baseline=0.6976).advice[0]
    assert chosen_by_flag.endswith("or let the defaults choose (--hidden auto).")
    chosen_by_default = diagnose(train, val, baseline=0.6976, hidden_auto=True).advice[0]
    assert "--hidden auto" not in chosen_by_default and chosen_by_default.endswith("weight decay (--l2).")
