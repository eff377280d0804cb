"""Matching a model's (or a training table's) feature names to another table's columns.

One rule for every reader (predict / evaluate on text, parquet, DataFrames and .h5ad; ``--val-data``;
gradcheck): a name matches a column written the same way; failing that, a column whose name differs only
in letter case, surrounding whitespace, an Ensembl-style version suffix (``ENSG00000141510.17`` vs
``ENSG00000141510``) or a UniProt FASTA header around the accession (``sp|P02768|ALBU_HUMAN`` vs ``P02768``),
which the caller reports as a note. Two columns (or two wanted names) that collapse
to the same normalised name cannot be told apart: that is an error naming them, never a silent pick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..errors import DataError
from ..text import quoted

__all__ = ["NameMatch", "match_names", "name_key", "count_matches", "MATCH_RULE", "comment_line_hint"]

# ENSG00000141510.17 -> ensg00000141510 (any Ensembl prefix: ENSG, ENST, ENSP, ENSMUSG, ...; eleven digits).
# A suffix after the version (GENCODE's ENSG00000002586.20_PAR_Y) names another gene and is kept.
_ENSEMBL_VERSION = re.compile(r"^(ens[a-z]*\d{11})\.\d+$")
# sp|P02768|ALBU_HUMAN -> p02768: a UniProt FASTA header (Swiss-Prot "sp", TrEMBL "tr") around the accession, as
# proteomics search engines write a protein, where others write the accession alone (an isoform's "-2" is kept)
_UNIPROT_HEADER = re.compile(r"^(?:sp|tr)\|([a-z0-9]+(?:-\d+)?)\|[^|]*$")
MATCH_RULE = ("apart from letter case, surrounding spaces, an Ensembl version suffix or a UniProt header around the "
              "accession (sp|P02768|ALBU_HUMAN for P02768)")


def name_key(name: object) -> str:
    """The normalised form of a feature name: stripped, case-folded, without an Ensembl version suffix, a UniProt
    FASTA header reduced to its accession."""
    text = str(name).strip().casefold()
    m = _ENSEMBL_VERSION.match(text) or _UNIPROT_HEADER.match(text)
    return m.group(1) if m else text


@dataclass
class NameMatch:
    """Where each wanted name is in the table.

    columns : {wanted name: table column} for every wanted name found (exactly or normalised)
    relaxed : [(wanted name, table column)] of the matches that needed normalising, in wanted order
    """

    columns: dict[str, str] = field(default_factory=dict)
    relaxed: list[tuple[str, str]] = field(default_factory=list)

    def missing(self, wanted: Sequence[str]) -> list[str]:
        return [w for w in wanted if w not in self.columns]

    def note(self, what: str = "features", sides: str = "model ← table") -> str | None:
        """One line for the user: how many names were matched only after normalising, with examples."""
        if not self.relaxed:
            return None
        examples = ", ".join(f"{w!r} ← {c!r}" for w, c in self.relaxed[:3])
        more = f" and {len(self.relaxed) - 3} more" if len(self.relaxed) > 3 else ""
        return (f"{len(self.relaxed)} {what} matched {MATCH_RULE} ({sides}: {examples}{more}); "
                "check that they are the same identifiers")


# A share of a model's features matched only by letter case from which the match warns that the table may be of
# another species: human gene symbols are upper case (CD3E, MS4A1), mouse and rat ones capitalised (Cd3e, Ms4a1),
# and a human model matched to a mouse table by letter case predicts from other genes (orthologues differ in
# more than case, and many have none).
CASE_ONLY_SHARE = 0.25


def species_warning(match: "NameMatch", n_wanted: int, what: str = "of the model's features") -> str | None:
    """A warning when at least CASE_ONLY_SHARE of ``n_wanted`` names matched only by letter case, most of them
    upper case against capitalised (or the reverse) — human against mouse gene symbols; None otherwise."""
    case_only = [(w, c) for w, c in match.relaxed if w != c and w.lower() == c.lower()]
    if not n_wanted or len(case_only) < max(2, CASE_ONLY_SHARE * n_wanted):
        return None

    def species_case(a: str, b: str) -> bool:  # CD3E against Cd3e, or Cd3e against CD3E
        return (a.isupper() and b[:1].isupper() and b[1:] != b[1:].upper()) or (b.isupper() and a[:1].isupper()
                                                                               and a[1:] != a[1:].upper())

    if sum(species_case(w, c) for w, c in case_only) < len(case_only) / 2:
        return None
    examples = ", ".join(f"{w!r} ← {c!r}" for w, c in case_only[:3])
    return (f"{len(case_only):,} {what} ({len(case_only) / n_wanted:.0%}) matched only by letter case ({examples}): "
            "human gene symbols are upper case, mouse and rat ones capitalised — if the table is of another species "
            "than the training data, these are other genes (map orthologues first); if not, write the names as the "
            "model does")


def match_names(wanted: Sequence[str], columns: Iterable[str], *, source: str,
                unavailable: Iterable[str] = ()) -> NameMatch:
    """Match `wanted` names to `columns` by the module's rule; `unavailable` columns (roles, dropped
    columns) are never matched. A DataError names `source` and the columns when a normalised match is
    ambiguous (two columns, or two wanted names, with one normalised form)."""
    unavailable = set(unavailable)
    columns = [str(c) for c in columns if str(c) not in unavailable]
    exact = set(columns)
    result = NameMatch()
    for w in wanted:
        if w in exact:
            result.columns[w] = w
    rest = [w for w in wanted if w not in result.columns]
    if not rest:
        return result
    taken = set(result.columns.values())
    by_key: dict[str, list[str]] = {}
    for c in columns:
        if c not in taken:
            by_key.setdefault(name_key(c), []).append(c)
    wanted_by_key: dict[str, list[str]] = {}
    for w in rest:
        wanted_by_key.setdefault(name_key(w), []).append(w)
    for w in rest:
        key = name_key(w)
        found = by_key.get(key)
        if not found:
            continue
        if len(found) > 1:
            raise DataError(f"{source}: columns {quoted(found)} all match the feature {w!r} {MATCH_RULE}; "
                            "rename or remove all but one of them")
        if len(wanted_by_key[key]) > 1:
            raise DataError(f"{source}: column {found[0]!r} matches the features {quoted(wanted_by_key[key])} "
                            f"{MATCH_RULE}; name it exactly as the one it holds")
        result.columns[w] = found[0]
        result.relaxed.append((w, found[0]))
    return result


# Kinds of gene identifier, told apart by their form, for the errors when a table or an .h5ad file has few of the
# model's features: a table of Ensembl ids for a model of symbols (or the reverse) is the usual cause, and the error
# then says so instead of asking in general whether it is the right table. The first pattern that matches
# most of a side's names names its kind; names that match none are "gene symbols or other names".
ID_KINDS = (
    ("Ensembl ids", r"ens[a-z]*\d{11}(\.\d+)?"),
    ("numbers written with a decimal point (ids read as floats?)", r"\d+\.0+"),
    ("numeric ids (Entrez?)", r"\d+"),
    ("RefSeq accessions", r"[nx][mr]_\d+(\.\d+)?"),
    ("array probe ids", r"(\d+_([a-z]_)*at|ilmn_\d+|a_\d+_p\d+)"),
)
ID_SAMPLE = 1000  # names of each side looked at


def id_kind(names: Sequence[str]) -> str:
    """The kind of gene identifier (``ID_KINDS``) most of `names` are, by their form."""
    names = [str(n).strip().casefold() for n in names[:ID_SAMPLE]]
    for kind, pattern in ID_KINDS:
        rule = re.compile(pattern)
        if names and 2 * sum(rule.fullmatch(n) is not None for n in names) > len(names):
            return kind
    return "gene symbols or other names"


def count_matches(wanted: Iterable[str], names: Iterable[object]) -> int:
    """How many of `wanted` appear among `names` by the module's rule (ambiguity aside): for judging
    which of several candidate name lists (var columns, a table's first column) holds the model's names."""
    keys = {name_key(n) for n in names}
    return sum(name_key(w) in keys for w in wanted)


def comment_line_hint(columns: Sequence[object]) -> str:
    """For an error about columns not found: a hint when the header read starts with '#', most likely a
    comment line above the real header (featureCounts writes "# Program:featureCounts ..."), which the
    readers do not skip — a '#' can start a real header too ("#CHROM", "#sample"). Empty otherwise."""
    if not columns or not str(columns[0]).lstrip().startswith("#"):
        return ""
    if re.fullmatch(r"#1\.[23]", str(columns[0]).strip()):  # GenePattern's .gct: a version line, then the sizes
        return ("; the file looks like a GenePattern .gct table (its first line '#1.2' or '#1.3', its sizes on the "
                "second): drop both lines and its Description column (e.g. tail -n +3 FILE | cut -f 1,3- > "
                "clean.tsv) and read it with --features-in-rows")
    return ("; the header read starts with '#' — if that line is a comment above the real header (as featureCounts "
            "writes), remove such lines first, e.g. grep -v '^#' FILE > clean.tsv")
