"""Column roles: which columns are the target, the patient (group), the sample id and the batch, given or found by
their usual names; a column that is named as a role's but not given as one; the name of the rows without a batch."""

from __future__ import annotations

import difflib
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..errors import ConfigError, DataError, OptionError
from ..text import quoted
from .cells import spelling_key
from .conventions import DEFAULT_BATCH, DEFAULT_GROUPS, DEFAULT_ID, DEFAULT_TARGET
from .names import comment_line_hint


@dataclass
class Roles:
    """Which columns play which role; every other column is a feature."""

    target: list[str]  # one name, or several for multi-label / multi-output regression
    group: str | None = None  # samples sharing a group (patient) never straddle a split
    id: str | None = None
    batch: str | None = None
    drop: list[str] = field(default_factory=list)
    # without a group column: the columns named like a patient column ('Donor', 'subject'; ``group_like``), what
    # --group likely means; found where no column is a feature (``resolve_roles``'s ``suggest_group``), else []
    group_like: list[str] = field(default_factory=list)

    def columns(self) -> list[str]:
        """All columns that are not features, in role order."""
        named = [*self.target, self.group, self.id, self.batch, *self.drop]
        return [c for c in named if c is not None]


def listed_names(value: str | Iterable[str] | None) -> list[str]:
    """'a, b' or ['a', 'b'] -> ['a', 'b'] (empty pieces ignored)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


# Column names that usually hold what a table of samples is labelled with: the cell-type annotation (CELLxGENE's
# cell_type, scanpy tutorials' celltype / louvain-free labels, Tabula Muris' cell_ontology_class), a tumour subtype,
# a diagnosis or condition. Named in the error of a table without the default `label` column (never taken silently:
# a table may hold several, and the wrong one trains a model of something else).
LABEL_LIKE = frozenset({"celltype", "cell_type", "cell_types", "cell_type_label", "cell_ontology_class", "cell_label",
                        "cell_annotation", "annotation", "subtype", "tumour_subtype", "tumor_subtype", "diagnosis",
                        "disease", "condition", "phenotype", "class", "status", "outcome", "response", "target", "y"})


def _label_key(name: str) -> str:
    """A column name as LABEL_LIKE lists it: lower case, spaces, dots and dashes as underscores."""
    return re.sub(r"[\s.\-]+", "_", str(name).strip().casefold())


def missing_columns_error(missing: Sequence[str], columns: Sequence[str], flag: str,
                          default: bool = False, listed: str = "available columns") -> DataError:
    """The one-line error for columns named to ``flag`` that the table lacks, with the likeliest reason: a close
    name, a comma or spaces in a column's name, a space-separated header. ``default``: the name is the flag's default,
    which the user may never have typed (``train`` of a table without a `label` column). ``listed``: what the
    ``columns`` offered are (the candidates: e.g. the columns other than the features, for --by)."""
    noun = "column" if len(missing) == 1 else "columns"
    hint = difflib.get_close_matches(missing[0], columns, n=1)
    usual = [c for c in columns if _label_key(c) in LABEL_LIKE] if default and flag == "--target" else []
    did_you_mean = (f" (did you mean {hint[0]!r}?)" if hint else
                    f" (the default; the table's {usual[0]!r} looks like the label: {flag} {usual[0]})"
                    if len(usual) == 1 else
                    f" (the default; name the table's label column with {flag} NAME"
                    + (f", e.g. one of {quoted(usual, 4)})" if usual else ")") if default else "")
    # a column whose name holds a comma cannot be named: the comma separates names ('subtype, WHO 2016')
    comma = next((c for c in columns if "," in c and len(listed_names(c)) > 1 and set(listed_names(c)) <= set(missing)), None)
    if comma is not None:
        did_you_mean = (f" (the column {comma!r} holds a comma, which separates names in {flag}: rename the column, "
                        "e.g. without the comma)")
    spaced = next((c for c in columns if c != c.strip() and c.strip() == missing[0]), None)
    if spaced is not None:  # names given to an option lose their surrounding spaces: the column cannot be named
        did_you_mean = (f" (the column {spaced!r} has spaces around its name, which a name given to {flag} cannot "
                        "have: rename the column without them)")
    if len(columns) == 1 and len(columns[0].split()) > 2:  # one column whose name is the whole header line
        did_you_mean = (" (the header is one column, its cells apart by spaces: a space-separated file, as R's "
                        "write.table writes by default? Write it with write.csv, or sep = \"\\t\")")
    return DataError(
        f"{flag} {noun} {quoted(missing)} not found{did_you_mean}; {listed}: "
        f"{quoted(columns, 6)} ({len(columns)} in all){comment_line_hint(columns)}"
    )


def require_columns(names: Sequence[str], columns: Sequence[str], flag: str) -> None:
    present = set(columns)
    missing = [n for n in names if n not in present]
    if missing:
        raise missing_columns_error(missing, list(columns), flag)


def resolve_roles(
    columns: Iterable[str],
    target: str | Sequence[str] | None = DEFAULT_TARGET,
    group: str | None = None,
    no_group: bool = False,
    id: str | None = None,  # noqa: A002 - the flag is --id
    batch: str | None = None,
    drop: str | Sequence[str] = (),
    require_target: bool = True,
    suggest_group: bool = False,
) -> tuple[Roles, list[str]]:
    """Assign column roles from the flags and the defaults; returns (roles, notes saying what was picked).

    Defaults: group `patient_id`, else `donor_id` (CELLxGENE's name; unless `no_group`), id `sample_id`, batch `batch`, each when present and
    not already given another role. With `require_target=False` (prediction tables) absent target columns
    are simply left out. `suggest_group`: no column is a feature (an .h5ad file's obs columns), so one named like
    a patient column is what --group likely means when neither is given nor found: ``Roles.group_like``, and the
    note's hint.
    """
    columns = [str(c) for c in columns]
    present = set(columns)
    targets = listed_names(target)
    drops = listed_names(drop)
    for flag, names in (("--target", targets), ("--drop", drops)):
        repeated = [n for n, k in Counter(names).items() if k > 1]
        if repeated:
            raise OptionError(f"{flag} names {quoted(repeated)} more than once; list each column once")
    require_columns(drops, columns, "--drop")
    notes: list[str] = []

    if require_target:
        if not targets:
            raise ConfigError("--target is empty; name the label column (several comma-separated for multi-label)")
        if targets == [DEFAULT_TARGET] and DEFAULT_TARGET not in present:
            raise missing_columns_error(targets, columns, "--target", default=True)
        require_columns(targets, columns, "--target")
        notes.append(f"target: {', '.join(targets)}")
    else:
        found = [t for t in targets if t in present]
        if found and len(found) != len(targets):
            raise missing_columns_error([t for t in targets if t not in present], columns, "--target")
        if targets and not found:
            notes.append(f"target: none (no {quoted(targets)} column; predictions only)")
        targets = found

    if group is not None and no_group:
        raise OptionError("--group and --no-group contradict each other; pass one of them")
    explicit = {"--group": group, "--id": id, "--batch": batch}
    for flag, name in explicit.items():
        if name is not None:
            require_columns([name], columns, flag)

    taken = set(targets) | set(drops) | {n for n in explicit.values() if n is not None}

    def pick(flag: str, name: str | None, defaults: str | Sequence[str], allowed: bool = True) -> str | None:
        if name is not None:
            notes.append(f"{flag.lstrip('-')}: {name}")
            return name
        for default in [defaults] if isinstance(defaults, str) else defaults:
            if allowed and default in present and default not in taken:
                suffix = "; --no-group to switch off" if flag == "--group" else f"; {flag} to choose another"
                notes.append(f"{flag.lstrip('-')}: {default} (default{suffix})")
                return default
        return None

    group_col = pick("--group", group, DEFAULT_GROUPS, allowed=not no_group)
    no_group_at = None  # where the NO_GROUP_NOTE is, which names the group-like columns once the roles are known
    if group_col is None:
        # --no-group switches the grouping off; a default group column (patient ids) is still not a feature
        unused = [g for g in DEFAULT_GROUPS if no_group and g in present and g not in taken]
        drops = [*drops, *unused]
        taken |= set(unused)
        dropped = [g for g in DEFAULT_GROUPS if g in present and g in drops]
        if no_group:
            notes.append("group: none (--no-group)")  # `unused`: in "dropped:"
        elif dropped:  # the table has one, which --drop took out: not "no 'patient_id' column"
            notes.append(f"{DROPPED_GROUP_NOTE}{quoted(dropped)}); samples are treated as independent")
        else:
            no_group_at = len(notes)
            notes.append(NO_GROUP_NOTE)
    id_col = pick("--id", id, DEFAULT_ID)
    batch_col = pick("--batch", batch, DEFAULT_BATCH)
    if drops:
        notes.append(f"dropped: {', '.join(drops)}")

    roles = Roles(target=targets, group=group_col, id=id_col, batch=batch_col, drop=drops)
    _check_one_role_each(roles)
    if suggest_group and no_group_at is not None:
        roles.group_like = group_like(c for c in columns if c not in roles.columns())
        notes[no_group_at] = no_group_note(roles.group_like)
    return roles, notes


def _check_one_role_each(roles: Roles) -> None:
    flags = [("--target", t) for t in roles.target] + [
        ("--group", roles.group), ("--id", roles.id), ("--batch", roles.batch)
    ] + [("--drop", d) for d in roles.drop]
    seen: dict[str, str] = {}
    for flag, name in flags:
        if name is None:
            continue
        if name in seen:
            raise OptionError(f"column {name!r} is given two roles ({seen[name]} and {flag}); give each column one role")
        seen[name] = flag


DROPPED_GROUP_NOTE = "group: none (--drop took out "  # then the column names, ")" and the consequence
NO_GROUP_NOTE = (f"group: none (no {' or '.join(map(repr, DEFAULT_GROUPS))} column); samples are treated as independent "
                 "— pass --group COLUMN if several samples come from one patient")


# Names of a role's column as tables spell them, by their letters and digits alone, case-folded: Patient_ID, Batch,
# Sample ID, subject, donor ... A column so named and not given that role would be a feature: a patient number or a
# batch number, read as a measurement (the batch confounded with the class raised balanced accuracy 0.683 -> 0.750).
_ROLE_NAMES = {
    "--group": ("patient", "patientid", "donor", "donorid", "subject", "subjectid", "individual", "individualid",
                "participant", "participantid"),
    "--id": ("sample", "sampleid", "samplename", "id", "barcode", "cellid", "cellbarcode"),
    "--batch": ("batch", "batchid", "plate", "plateid"),
}
ROLE_WORDS = {"--group": "a patient column (--group)", "--id": "a sample-id column (--id)",
              "--batch": "a batch column (--batch)"}
_ROLE_KEYS = {key: flag for flag, keys in _ROLE_NAMES.items() for key in keys}
_ROLE_KEY_LONGEST = max(map(len, _ROLE_KEYS))
_SEPARATORS = re.compile(r"[\W_]+")


def role_name_flag(name: str) -> str | None:
    """The role option ("--group", "--id", "--batch") whose column a table would name so ("Patient_ID", "Batch",
    "Sample ID"), by its letters and digits case-folded; None for other names."""
    name = str(name)
    if name.isascii():  # (spelling_key's Unicode forms change nothing here: 5,000 gene names in 0.01 s, not 0.1)
        key = _SEPARATORS.sub("", name).lower() if len(name) <= 4 * _ROLE_KEY_LONGEST else ""
    else:
        key = _SEPARATORS.sub("", spelling_key(name))
    return _ROLE_KEYS.get(key)


def group_like(names: Iterable[str]) -> list[str]:
    """The columns among ``names`` named as a patient column is ("donor", "Patient", "subject", "individual",
    ``role_name_flag``): what --group likely means when the default ones are absent."""
    return [str(n) for n in names if role_name_flag(n) == "--group"]


def group_hint(found: Sequence[str]) -> str:
    """"--group donor ('donor' is named like a patient column)" for the columns ``group_like`` found."""
    named = "is" if len(found) == 1 else "are"
    return f"--group {shlex.quote(found[0])} ({quoted(found, 3)} {named} named like a patient column)"


def no_group_note(like: Sequence[str] = ()) -> str:
    """The note of a table without a group column: NO_GROUP_NOTE, ending with the --group that the columns named
    like a patient column (``Roles.group_like``) suggest when there are some."""
    return NO_GROUP_NOTE + (f": {group_hint(like)}" if like else "")


def warn_role_names(names: list[str], warn: list[str]) -> None:
    """A warning naming the feature columns named as a role's column is (``role_name_flag``): numbers of patients,
    batches or samples read as measurements, which the model learns as such."""
    found = [(n, role_name_flag(n)) for n in names]
    found = [(n, flag) for n, flag in found if flag is not None]
    if not found:
        return
    listed = "; ".join(f"{n!r} is named like {ROLE_WORDS[flag]}: pass {flag} {shlex.quote(n)} if it is one"
                       for n, flag in found[:3])
    more = f"; and {len(found) - 3} more" if len(found) > 3 else ""
    warn.append(f"feature column{'s' * (len(found) > 1)} named like a role's column, read as measurements: {listed}"
                f"{more} (or --drop it); the role options match names exactly")


def missing_batch_names():
    """Names for the rows without a batch, the first one no batch has taken: "NA", "NA (missing)", then numbered."""
    yield "NA"
    yield "NA (missing)"
    k = 2
    while True:
        yield f"NA (missing {k})"
        k += 1


# The name of the rows without a batch when a batch is called "NA" already
MISSING_BATCH = "NA (missing)"


def missing_batch_name(trained_batches) -> str:
    """The name a cohort's rows without a batch take: the one the model's training gave them ("NA (missing)" when
    a training batch was called "NA"), so that a site named NA and the rows without a batch stay apart here too."""
    return MISSING_BATCH if MISSING_BATCH in set(trained_batches or ()) else "NA"
