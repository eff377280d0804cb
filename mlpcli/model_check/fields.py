"""model.json's fields: each one's type, range and consistency with the others, and the arrays they imply
(``ModelFields``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..engine import activations as act_mod
from ..engine import losses as loss_mod
from ..engine.network import state_shapes
from ..errors import ConfigError, ModelFileError, one_line
from .limits import (MAX_FEATURES, MAX_HIDDEN_LAYERS, MAX_MEMBERS, MAX_TRAINING_ROWS, MAX_WIDTH, SUPPORTED_VERSIONS,
                     TEMPERATURE_RANGE)
from ..text import count_of
from .words import is_number, join_key, kind_of, or_default, short_repr


CONFORMAL_SOURCES = ("out-of-fold", "validation", "refit", "cohort")  # conformal.SOURCES (NumPy-free here)


_PREPROCESSING_ARRAYS = ("kept_index", "impute_values", "center", "scale", "train_mean", "train_sd")


_PREPROCESSING_STATE_VERSION = 1


_ARCHITECTURE_KEYS = ("n_inputs", "hidden", "n_outputs", "activation", "activation_params", "dropout",
                      "batchnorm", "seed", "dtype")


_LINKS = {  # task -> output activation of the loss -> how many outputs (None: one per class)
    "binary": {"softmax": 2, "sigmoid": 1},
    "multiclass": {"softmax": None},
    "multilabel": {"sigmoid": None},
    "regression": {"identity": None},
}


# The history columns that hold numbers (a cell of text there is a damaged file, not a missing epoch)
HISTORY_NUMBERS = frozenset({"member", "epoch", "train_loss", "val_loss", "train_loss_eval", "penalty", "train_metric",
                             "val_metric", "lr", "best_epoch", "seconds"})
# The held-out metrics with a range of their own (the others: any number)
METRIC_RANGES = {**{k: (0.0, 1.0) for k in ("accuracy", "balanced_accuracy", "precision", "recall", "specificity",
                                             "npv", "f1", "f1_macro", "f1_micro", "f1_weighted", "roc_auc",
                                             "roc_auc_ovr", "average_precision", "ece", "hamming_loss")},
                 "mcc": (-1.0, 1.0), "log_loss": (0.0, None), "brier": (0.0, 2.0), "rmse": (0.0, None),
                 "mae": (0.0, None)}


@dataclass
class ArraySpec:
    """What one stored array must be: its shape, dtype kind and item sizes, and a rule for its values."""

    shape: tuple[int, ...]
    kinds: str  # numpy dtype kinds allowed ("f", or "iu" for indices)
    itemsizes: tuple[int, ...]
    rule: str  # "finite" | "positive" | "nonneg" | "not_inf" | "index"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


_MISSING = object()


def expand_feature_lists(meta: dict) -> None:
    """model.json of format 7 as the checks (and ``Preprocessor.from_state``) read every format: the feature
    lists format 7 leaves out, in place. Each preprocessing (the model's, each member's own) was fitted on the
    model's ``feature_names`` and says so by leaving out ``feature_names_in``; it leaves out ``kept_features``
    when it keeps what its reference keeps (the model's preprocessing: every input; a member's: the model's
    preprocessing's kept features). Before format 7 a 5-member model listed its features 13 times: 15 MB of
    model.json at 60,000 Ensembl ids, parsed on every ``predict``, and past the 32 MB limit with --folds 10."""
    features = meta.get("feature_names")
    top = meta.get("preprocessing")
    if not isinstance(top, dict):
        return  # the checks name it
    top.setdefault("feature_names_in", features)
    top.setdefault("kept_features", top["feature_names_in"])
    members = meta.get("members")
    for entry in members if isinstance(members, list) else ():
        pre = entry.get("preprocessing") if isinstance(entry, dict) else None
        if isinstance(pre, dict):
            pre.setdefault("feature_names_in", features)
            left = pre.get("kept_features_left_out")
            # format 12: a member that keeps all but a few of its reference's kept features names those few
            if meta.get("format_version", 0) >= 12 and "kept_features" not in pre and isinstance(left, list) \
                    and all(isinstance(n, str) for n in left) and isinstance(top["kept_features"], list):
                out = set(left)
                if out <= set(top["kept_features"]):  # else the key stays, and the checks name it
                    pre["kept_features"] = [n for n in top["kept_features"] if n not in out]
                    del pre["kept_features_left_out"]
            pre.setdefault("kept_features", top["kept_features"])


class ModelFields:
    """Checks of model.json's fields. Each check names the field (``members[0].architecture.hidden[1]``)
    in its message; ``model`` returns the members' entries and the arrays they imply."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, what: str):
        raise ModelFileError(f"{self.source}: model.json field '{where}' {what}")

    # -- scalar and container types
    def get(self, d: dict, key: str, where: str, default=_MISSING):
        if key in d:
            return d[key]
        if default is _MISSING:
            self.fail(join_key(where, key), "is missing")
        return default

    def mapping(self, v, where: str) -> dict:
        if not isinstance(v, dict):
            self.fail(where, f"must be a JSON object, got {kind_of(v)}")
        return v

    def listing(self, v, where: str, min_len: int = 0, max_len: int | None = None) -> list:
        if not isinstance(v, list):
            self.fail(where, f"must be a list, got {kind_of(v)}")
        if min_len == max_len and len(v) != min_len:
            self.fail(where, f"must hold {min_len:,} entr{'y' if min_len == 1 else 'ies'}, got {len(v):,}")
        if len(v) < min_len:
            self.fail(where, "must not be empty" if min_len == 1 else f"must hold at least {min_len} entries")
        if max_len is not None and len(v) > max_len:
            self.fail(where, f"holds {len(v):,} entries, more than the {max_len:,} allowed")
        return v

    def whole(self, v, where: str, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.fail(where, f"must be a whole number from {lo:,} to {hi:,}, got {short_repr(v)}")
        return v

    def number(self, v, where: str, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False) -> float:
        ok = is_number(v) and math.isfinite(float(v))
        if ok and lo is not None:
            ok = float(v) > lo if lo_open else float(v) >= lo
        if ok and hi is not None:
            ok = float(v) < hi if hi_open else float(v) <= hi
        if not ok:
            rng = ""
            if lo is not None or hi is not None:
                left = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
                right = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
                rng = " " + " and ".join(p for p in (left, right) if p)
            self.fail(where, f"must be a finite number{rng}, got {short_repr(v)}")
        return float(v)

    def flag(self, v, where: str) -> bool:
        if not isinstance(v, bool):
            self.fail(where, f"must be true or false, got {short_repr(v)}")
        return v

    def text(self, v, where: str, choices=None, optional: bool = False) -> str | None:
        if v is None and optional:
            return None
        if not isinstance(v, str):
            self.fail(where, f"must be a string, got {kind_of(v)}")
        if choices is not None and v not in choices:
            self.fail(where, f"is {short_repr(v)}, not one of {', '.join(map(str, choices))}")
        return v

    def texts(self, v, where: str, unique: bool = True, min_len: int = 0, max_len: int = MAX_FEATURES) -> list[str]:
        self.listing(v, where, min_len, max_len)
        for i, item in enumerate(v):
            if not isinstance(item, str):
                self.fail(f"{where}[{i}]", f"must be a string, got {kind_of(item)}")
        if unique and len(set(v)) != len(v):
            seen: set = set()
            twice = next(s for s in v if s in seen or seen.add(s))
            self.fail(where, f"names {short_repr(twice)} twice")
        return v

    def present(self, d: dict, key: str, default: dict | list, where: str) -> dict | list:
        """``d[key]``, an object (``default`` {}) or a list ([]): a null there is taken as absent and replaced by
        ``default``, so that what reads the loaded model meets the type it expects either way."""
        if key in d and d[key] is None:
            d[key] = type(default)()
        value = d.get(key, default)
        return self.mapping(value, where) if isinstance(default, dict) else self.listing(value, where)

    def options(self, options: dict, where: str) -> None:
        """Recorded training options (``config``, ``config.resolved``): each known one of its declared type
        (``config.check_value``; ranges are not judged: an older mlpcli may have drawn them otherwise)."""
        from ..config import check_value

        for key, value in options.items():
            try:
                check_value(key, value, ranges=False)
            except ConfigError as exc:
                self.fail(join_key(where, key), str(exc).split(": ", 1)[-1])

    def scalars(self, v, where: str) -> dict:
        """An object of JSON scalars (numbers that fit a float, strings, true/false, null)."""
        self.mapping(v, where)
        for key, value in v.items():
            if not (value is None or isinstance(value, (bool, str)) or is_number(value)):
                self.fail(join_key(where, key), f"must be a number, string, true/false or null, got {kind_of(value)}")
        return v

    # -- the model
    def header(self, meta: dict) -> None:
        version = meta.get("format_version")
        known = f"{SUPPORTED_VERSIONS[0]}-{SUPPORTED_VERSIONS[-1]}"
        whole = isinstance(version, int) and not isinstance(version, bool)
        if whole and version > SUPPORTED_VERSIONS[-1]:  # only a newer mlpcli writes one: "upgrade" is the remedy
            raise ModelFileError(f"{self.source} has model format version {version:,}, newer than the {known} this "
                                 "mlpcli reads: it was written by a newer mlpcli; upgrade mlpcli, or retrain with this one")
        if not whole or version not in SUPPORTED_VERSIONS:  # no mlpcli wrote it: upgrading would not help
            self.fail("format_version", f"is {short_repr(version)}, not a model format version ({known}, a whole number); "
                      "the file was edited or damaged")
        digest = self.text(self.get(meta, "weights_sha256", ""), "weights_sha256")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            self.fail("weights_sha256", f"must be 64 lowercase hexadecimal digits, got {short_repr(digest)}")

    def model(self, meta: dict) -> tuple[list[dict], dict[str, ArraySpec], dict[str, str]]:
        """The members' entries, every array the model needs, and which of them the file stores once for two
        (``array_aliases``: name -> the stored array's name)."""
        from ..data import TASKS

        task = self.text(self.get(meta, "task", ""), "task", choices=TASKS)
        features = self.texts(self.get(meta, "feature_names", ""), "feature_names", min_len=1)
        if meta["format_version"] >= 7:
            expand_feature_lists(meta)
        self.texts(self.get(meta, "target_names", "", default=[]), "target_names", unique=False)
        reference = self.preprocessing(self.get(meta, "preprocessing", ""), "preprocessing", meta["format_version"])
        if features != reference["feature_names_in"]:
            self.fail("feature_names", "differs from preprocessing.feature_names_in (the features the "
                      "preprocessing was fitted on)")
        specs = self.preprocessing_arrays("preprocessor/", reference)

        if meta["format_version"] == 1:  # one network, whose preprocessing is the reference
            extra = self.mapping(or_default(meta.get("extra"), {}), "extra")
            entries = [({"architecture": self.get(meta, "architecture", ""), "shares_preprocessing": True,
                         "target_scaling": extra.get("target_scaling")}, "", "architecture", "extra.target_scaling")]
        else:
            listed = self.listing(self.get(meta, "members", ""), "members", 1, MAX_MEMBERS)
            entries = [(self.mapping(e, f"members[{i}]"), f"members/{i}/", f"members[{i}].architecture",
                        f"members[{i}].target_scaling") for i, e in enumerate(listed)]

        members = []
        for i, (entry, prefix, arch_where, scaling_where) in enumerate(entries):
            arch = self.architecture(self.get(entry, "architecture", arch_where.rsplit(".", 1)[0]), arch_where)
            shares = self.flag(entry.get("shares_preprocessing", False), f"members[{i}].shares_preprocessing")
            pre = reference
            if not shares:
                where = f"members[{i}].preprocessing"
                pre = self.preprocessing(self.get(entry, "preprocessing", f"members[{i}]"), where, meta["format_version"])
                if pre["feature_names_in"] != reference["feature_names_in"]:
                    self.fail(f"{where}.feature_names_in", "differs from the model's feature_names")
                if "kept_features_left_out" in pre:  # not expanded (``expand_feature_lists``): malformed
                    self.fail(f"{where}.kept_features_left_out", "must list features of preprocessing.kept_features "
                              f"(format 12 or later, without kept_features beside it), got "
                              f"{short_repr(pre['kept_features_left_out'])}")
                used = set(reference["kept_features"])
                unknown = [k for k in pre["kept_features"] if k not in used]
                if unknown:
                    self.fail(f"{where}.kept_features", f"names {short_repr(unknown[0])}, which the model does not "
                              "list as an input it uses (preprocessing.kept_features)")
                specs.update(self.preprocessing_arrays(f"{prefix}preprocessor/", pre))
            if arch["n_inputs"] != len(pre["kept_features"]):
                self.fail(f"{arch_where}.n_inputs", f"is {arch['n_inputs']:,} but the member's preprocessing keeps "
                          f"{len(pre['kept_features']):,} features")
            itemsize = np.dtype(arch.get("dtype", "float64")).itemsize
            for key, shape in state_shapes(arch["n_inputs"], arch["hidden"], arch["n_outputs"],
                                           arch.get("batchnorm", False)).items():
                rule = "nonneg" if key.endswith(".running_var") else "finite"
                specs[f"{prefix}network/{key}"] = ArraySpec(shape, "f", (itemsize,), rule)
            members.append({"architecture": arch, "shares_preprocessing": shares,
                            "preprocessing": None if shares else entry["preprocessing"],
                            "target_scaling": entry.get("target_scaling"), "prefix": prefix})

        n_outputs = members[0]["architecture"]["n_outputs"]
        for i, m in enumerate(members[1:], start=1):
            if m["architecture"]["n_outputs"] != n_outputs:
                self.fail(f"members[{i}].architecture.n_outputs", f"is {m['architecture']['n_outputs']:,} but "
                          f"members[0] has {n_outputs:,} outputs; an ensemble's members share their outputs")
        link = self.loss(self.get(meta, "loss", ""), n_outputs)
        self.outputs(task, self.get(meta, "classes", ""), link, n_outputs)
        for m, (_, _, _, scaling_where) in zip(members, entries):
            m["target_scaling"] = self.target_scaling(scaling_where, m["target_scaling"], task, n_outputs)
        temperature = self.get(meta, "temperature", "", default=None)
        if isinstance(temperature, list):  # format 13: a multi-label model's, one per label
            if task != "multilabel" or meta["format_version"] < 13:
                self.fail("temperature", "is a list, which only a multi-label model of format 13 or later has (one "
                                         "per label); one number otherwise")
            self.listing(temperature, "temperature", n_outputs, n_outputs)
            for i, v in enumerate(temperature):
                self.number(v, f"temperature[{i}]", *TEMPERATURE_RANGE)
        elif temperature is not None:
            self.number(temperature, "temperature", *TEMPERATURE_RANGE)
        self.metadata(meta)
        specs.update(self.trust(meta, task, len(meta["classes"]), len(reference["kept_features"]), len(members)))
        self.decision(meta, task, len(meta["classes"]))
        self.recalibration(meta, task, len(meta["classes"]), link)
        specs.update(self.training_rows(meta))
        aliases = self.aliases(meta, specs)
        self.array_shapes(self.get(meta, "array_shapes", ""), {k: v for k, v in specs.items() if k not in aliases},
                          aliases)
        return members, specs, aliases

    def aliases(self, meta: dict, specs: dict[str, ArraySpec]) -> dict[str, str]:
        """``array_aliases``: each names an array the model needs that the file stores once, under the name of
        another of the same shape, dtypes and value rule. Written since format 6 (so that an earlier mlpcli asks
        for an upgrade rather than naming a missing array); accepted in a file of any version, checked alike."""
        given = meta.get("array_aliases")
        if given is None:
            return {}
        self.mapping(given, "array_aliases")
        for alias, target in given.items():
            if alias not in specs:
                self.fail("array_aliases", f"lists {short_repr(alias)}, an array the model does not have")
            where = join_key("array_aliases", alias)
            self.text(target, where)
            if target not in specs or target in given:
                self.fail(where, f"is {short_repr(target, 80)}, not an array the file stores")
            if specs[alias] != specs[target]:
                want, got = specs[alias], specs[target]
                self.fail(where, f"is {target!r}, of shape {list(got.shape)}, for an array of shape "
                          f"{list(want.shape)}" if want.shape != got.shape else
                          f"is {target!r}, an array of another kind of values")
        return given

    def trust(self, meta: dict, task: str, n_classes: int, n_kept: int, n_members: int) -> dict[str, ArraySpec]:
        """The optional ``conformal`` and ``ood`` fields (format 3, classification) and the arrays they imply."""
        from ..conformal import MAX_ROWS
        from ..ood import MAX_BASIS_VALUES, MAX_CALIBRATION, MAX_COMPONENTS, MAX_REFERENCE

        specs: dict[str, ArraySpec] = {}
        for key in ("conformal", "ood"):
            if meta.get(key) is None:
                continue
            if meta["format_version"] < 3:
                self.fail(key, f"needs model format version 3, the file says {meta['format_version']}")
            if task not in ("binary", "multiclass"):
                self.fail(key, f"is set but the task is {task}; only binary and multiclass models have it")
            self.mapping(meta[key], key)
        c = meta.get("conformal")
        if c is not None:
            n = self.whole(self.get(c, "n", "conformal"), "conformal.n", 1, MAX_ROWS)
            self.whole(self.get(c, "n_rows", "conformal"), "conformal.n_rows", n, 2**63 - 1)
            source = self.text(self.get(c, "source", "conformal"), "conformal.source", choices=CONFORMAL_SOURCES)
            if source == "cohort" and meta["format_version"] < 15:
                self.fail("conformal.source", f"'cohort' needs model format version 15, the file says "
                                              f"{meta['format_version']}")
            if c.get("cohort") is not None:
                if source != "cohort":
                    self.fail("conformal.cohort", f"is set, but the scores' source is {source!r}, not 'cohort'")
                self.cohort(c["cohort"], "conformal.cohort")
            elif source == "cohort":  # (written with every cohort's scores: which table they are of)
                self.fail("conformal.cohort", "is missing: scores of a cohort name the table they were taken on")
            scored_by = self.whole(self.get(c, "members", "conformal"), "conformal.members", 1, MAX_MEMBERS)
            # whose held-out rows the scores are: a cohort's, the whole model's (one "member"); one network's
            # validation rows; each cross-fitted member's (a --refit network, the model's one, held none out: its
            # scores are its K members')
            expected = {"cohort": 1, "validation": 1, "out-of-fold": n_members}.get(source, scored_by)
            if scored_by != expected:
                self.fail("conformal.members", f"is {scored_by}, but {source} scores of a model of {n_members} "
                                               f"member{'s' * (n_members != 1)} come from {expected}")
            self.number(self.get(c, "patients", "conformal"), "conformal.patients", 0.0, lo_open=True)
            self.flag(self.get(c, "weighted", "conformal"), "conformal.weighted")
            for name in ("aps", "lac", "weight"):
                specs[f"conformal/{name}"] = ArraySpec((n,), "f", (8,), "finite")
            for name in ("label", "member"):
                specs[f"conformal/{name}"] = ArraySpec((n,), "iu", (1, 2, 4, 8), "index")
        o = meta.get("ood")
        if o is not None:
            p = self.whole(self.get(o, "n_features", "ood"), "ood.n_features", n_kept, n_kept)
            r = self.whole(self.get(o, "n_components", "ood"), "ood.n_components", 1,
                           max(1, min(MAX_COMPONENTS, p, MAX_BASIS_VALUES // p)))
            k = self.whole(self.get(o, "n_reference", "ood"), "ood.n_reference", 1, MAX_REFERENCE)
            m = self.whole(self.get(o, "n_calibration", "ood"), "ood.n_calibration", 0, MAX_CALIBRATION)
            if "weighted" in o:  # the calibration counts patients, one value each (ood.calibrate)
                self.flag(o["weighted"], "ood.weighted")
            if "streamed" in o:  # every held-out row scored, not the capped sample's (ood.RowSource)
                self.flag(o["streamed"], "ood.streamed")
            if o.get("cohort") is not None:  # calibrated on a labelled cohort (recalibrate; format 15)
                if meta["format_version"] < 15:
                    self.fail("ood.cohort", f"needs model format version 15, the file says {meta['format_version']}")
                self.cohort(o["cohort"], "ood.cohort")
            specs.update({"ood/mean": ArraySpec((p,), "f", (8,), "finite"),
                          "ood/components": ArraySpec((r, p), "f", (8,), "finite"),
                          "ood/reference": ArraySpec((k, r), "f", (8,), "finite"),
                          "ood/reference_residual": ArraySpec((k,), "f", (8,), "nonneg"),
                          "ood/calibration": ArraySpec((m,), "f", (8,), "nonneg")})
            # the class-relative distance (format 4 on), which a basis calibrated on no held-out row has not: its
            # distance alone (every row of the sample trained it)
            if meta["format_version"] >= 4 and (m > 0 or "n_classes" in o):
                c = self.whole(self.get(o, "n_classes", "ood"), "ood.n_classes", n_classes, n_classes)
                specs.update({"ood/reference_label": ArraySpec((k,), "iu", (1, 2, 4, 8), "index"),
                              "ood/class_scale": ArraySpec((c,), "f", (8,), "positive"),
                              "ood/part_calibration": ArraySpec((max(m, 1), 2), "f", (8,), "nonneg")})
        return specs

    def decision(self, meta: dict, task: str, n_classes: int) -> None:
        """The optional ``decision`` field (format 9, binary and multiclass models; format 13, multi-label ones): the
        rule, and the training class shares it divides by, one per class in (0, 1] (a multi-label model's: each
        label's share of positives, in [0, 1])."""
        from ..decision import RULES

        d = meta.get("decision")
        if d is None:
            return
        if meta["format_version"] < 9:
            self.fail("decision", f"needs model format version 9, the file says {meta['format_version']}")
        if task == "multilabel" and meta["format_version"] < 13:
            self.fail("decision", f"of a multi-label model needs model format version 13, the file says "
                                  f"{meta['format_version']}")
        if task not in ("binary", "multiclass", "multilabel"):
            self.fail("decision", f"is for binary, multiclass and multi-label models; this model is {task}")
        self.mapping(d, "decision")
        self.text(self.get(d, "rule", "decision"), "decision.rule", choices=RULES)
        shares = self.listing(self.get(d, "shares", "decision"), "decision.shares", n_classes, n_classes)
        for i, v in enumerate(shares):
            self.number(v, f"decision.shares[{i}]", 0.0, 1.0, lo_open=task != "multilabel")
        labels = d.get("labels")
        if labels is not None:  # format 13: which labels of a multi-label model the balanced rule calls at their share
            if task != "multilabel":
                self.fail("decision.labels", f"is for multi-label models; this model is {task}")
            self.listing(labels, "decision.labels", n_classes, n_classes)
            for i, v in enumerate(labels):
                if not isinstance(v, bool):
                    self.fail(f"decision.labels[{i}]", f"must be true or false, got {short_repr(v)}")
        self.text(d.get("chosen"), "decision.chosen", choices=("auto", "option"), optional=True)
        self.scalars(or_default(d.get("held_out"), {}), "decision.held_out")

    def recalibration(self, meta: dict, task: str, n_classes: int, link: str) -> None:
        """The optional ``recalibration`` field (format 14, binary and multiclass models): the update's method, its
        intercept (one per class, the first 0; a binary model's two) and its positive slope, and what it was fitted
        on."""
        from ..metrics import RECAL_MAX_SLOPE
        from ..recalibration import MAX_INTERCEPT, MIN_SLOPE

        d = meta.get("recalibration")
        if d is None:
            return
        if meta["format_version"] < 14:
            self.fail("recalibration", f"needs model format version 14, the file says {meta['format_version']}")
        if task not in ("binary", "multiclass", "multilabel") or link not in ("softmax", "sigmoid"):
            self.fail("recalibration", f"is for classifiers with probabilities; this model is {task}")
        self.mapping(d, "recalibration")
        if task == "multilabel":  # each label its own update: intercept, slope and method (L,) each
            self.text(self.get(d, "method", "recalibration"), "recalibration.method", choices=("per label",))
            methods = self.listing(self.get(d, "labels", "recalibration"), "recalibration.labels", n_classes, n_classes)
            intercept = self.listing(self.get(d, "intercept", "recalibration"), "recalibration.intercept", n_classes,
                                     n_classes)
            slope = self.listing(self.get(d, "slope", "recalibration"), "recalibration.slope", n_classes, n_classes)
            for i, (m, a, b) in enumerate(zip(methods, intercept, slope)):
                self.text(m, f"recalibration.labels[{i}]", choices=("none", "intercept", "logistic"))
                a = self.number(a, f"recalibration.intercept[{i}]", -MAX_INTERCEPT, MAX_INTERCEPT)
                b = self.number(b, f"recalibration.slope[{i}]", MIN_SLOPE, RECAL_MAX_SLOPE, lo_open=True)
                if (m != "logistic" and b != 1.0) or (m == "none" and a != 0.0):
                    self.fail(f"recalibration.labels[{i}]", f"is {m!r} with intercept {short_repr(a)} and slope {short_repr(b)}")
        else:
            self.text(self.get(d, "method", "recalibration"), "recalibration.method", choices=("intercept", "logistic"))
            if "labels" in d:
                self.fail("recalibration.labels", f"is for multi-label models; this model is {task}")
            k = 2 if task == "binary" else n_classes
            intercept = self.listing(self.get(d, "intercept", "recalibration"), "recalibration.intercept", k, k)
            for i, v in enumerate(intercept):
                self.number(v, f"recalibration.intercept[{i}]", -MAX_INTERCEPT, MAX_INTERCEPT)
            if intercept[0] != 0:
                self.fail("recalibration.intercept[0]", f"must be 0 (the reference class), got {short_repr(intercept[0])}")
            slope = self.number(self.get(d, "slope", "recalibration"), "recalibration.slope", MIN_SLOPE,
                                RECAL_MAX_SLOPE, lo_open=True)
            if d["method"] == "intercept" and slope != 1.0:
                self.fail("recalibration.slope", f"of an intercept update must be 1, got {short_repr(slope)}")
        self.cohort(d.get("cohort"), "recalibration.cohort")
        fit = self.mapping(or_default(d.get("fit"), {}), "recalibration.fit")
        for key in ("alpha", "p_overall", "p_slope"):
            if fit.get(key) is not None:
                self.number(fit[key], f"recalibration.fit.{key}", 0.0, 1.0)
        for key in ("log_loss_before", "log_loss_after"):
            if fit.get(key) is not None:
                self.number(fit[key], f"recalibration.fit.{key}", 0.0)
        self.text(fit.get("chosen_by"), "recalibration.fit.chosen_by", choices=("closed test", "option"), optional=True)
        self.text(fit.get("method"), "recalibration.fit.method", choices=("auto", "intercept", "logistic"), optional=True)

    def cohort(self, value, where: str) -> None:
        """The labelled table a recalibration or a cohort's conformal scores were fitted on (``where``): a mapping of
        optional data (its name), sha256, n, patients and class counts."""
        cohort = self.mapping(or_default(value, {}), where)
        self.text(cohort.get("data"), f"{where}.data", optional=True)
        digest = self.text(cohort.get("sha256"), f"{where}.sha256", optional=True)
        if digest is not None and (len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest)):
            self.fail(f"{where}.sha256", f"must be 64 hexadecimal digits, got {short_repr(digest)}")
        for key in ("n", "patients"):
            if cohort.get(key) is not None:
                self.whole(cohort[key], f"{where}.{key}", 1, 2**62)
        for key in ("class_counts", "label_positives"):
            for name, count in self.mapping(or_default(cohort.get(key), {}), f"{where}.{key}").items():
                self.whole(count, f"{where}.{key}.{name}", 0, 2**62)

    def training_rows(self, meta: dict) -> dict[str, ArraySpec]:
        """The optional ``training_rows`` (format 8) and ``cohort_rows`` (format 16) fields: how many fingerprints of
        training rows, and of the recalibration table's rows, the file holds."""
        specs = {}
        for name, since in (("training_rows", 8), ("cohort_rows", 16)):
            t = meta.get(name)
            if t is None:
                continue
            if meta["format_version"] < since:
                self.fail(name, f"needs model format version {since}, the file says {meta['format_version']}")
            if name == "cohort_rows" and meta.get("recalibration") is None and \
                    or_default((meta.get("conformal") or {}).get("source"), "") != "cohort" and \
                    (meta.get("ood") or {}).get("cohort") is None:
                self.fail(name, "is there without a recalibration, or cohort calibration, it belongs to")
            self.mapping(t, name)
            n = self.whole(self.get(t, "n", name), f"{name}.n", 1, MAX_TRAINING_ROWS)
            specs[name] = ArraySpec((n,), "u", (8,), "index")
        return specs

    def preprocessing(self, pre, where: str, format_version: int) -> dict:
        from ..data.preprocess import IMPUTE_METHODS, SCALINGS, PreprocessConfig

        self.mapping(pre, where)
        version = self.get(pre, "version", where)
        if isinstance(version, bool) or version != _PREPROCESSING_STATE_VERSION:
            self.fail(f"{where}.version", f"is {short_repr(version)}; this mlpcli reads preprocessing state version "
                      f"{_PREPROCESSING_STATE_VERSION}")
        config = self.mapping(self.get(pre, "config", where), f"{where}.config")
        known = set(PreprocessConfig.__dataclass_fields__)
        unknown = sorted(set(config) - known)
        if unknown:
            self.fail(f"{where}.config.{unknown[0]}", f"is not a preprocessing setting ({', '.join(sorted(known))})")
        for key in ("log1p", "standardize"):
            if key in config:
                self.flag(config[key], f"{where}.config.{key}")
        if config.get("top_var") is not None:
            self.whole(config["top_var"], f"{where}.config.top_var", 1, MAX_FEATURES)
        self.text(config.get("impute"), f"{where}.config.impute", choices=IMPUTE_METHODS, optional=True)
        if "scaling" in config:
            self.text(config["scaling"], f"{where}.config.scaling", choices=SCALINGS)
        names = self.texts(self.get(pre, "feature_names_in", where), f"{where}.feature_names_in", min_len=1)
        kept = self.texts(self.get(pre, "kept_features", where), f"{where}.kept_features", min_len=1)
        known_names = set(names)
        outside = [k for k in kept if k not in known_names]
        if outside:
            self.fail(f"{where}.kept_features", f"names {short_repr(outside[0])}, which is not in feature_names_in")
        self.texts(pre.get("dropped_constant", []), f"{where}.dropped_constant", unique=False)
        self.texts(pre.get("warnings", []), f"{where}.warnings", unique=False)
        if "train_rows" in pre:  # format 5: the training rows the zero shares are of (the absent-gene check)
            self.whole(pre["train_rows"], f"{where}.train_rows", 1, 2**63 - 1)
        if "offset" in pre:  # format 10: the robust clip's offset is stored
            if format_version < 10:
                self.fail(f"{where}.offset", f"needs model format version 10, the file says {format_version}")
            self.flag(pre["offset"], f"{where}.offset")
        if "sd_unclipped" in pre:  # format 11: the SDs before the robust clip (the shift check's spread test)
            if format_version < 11:
                self.fail(f"{where}.sd_unclipped", f"needs model format version 11, the file says {format_version}")
            self.flag(pre["sd_unclipped"], f"{where}.sd_unclipped")
        if "kurtosis" in pre:  # format 17: the kurtosis before the robust clip (the spread test's chance)
            if format_version < 17:
                self.fail(f"{where}.kurtosis", f"needs model format version 17, the file says {format_version}")
            self.flag(pre["kurtosis"], f"{where}.kurtosis")
        if "reach" in pre:  # format 17: how far the training values reached (far values in a new table)
            if format_version < 17:
                self.fail(f"{where}.reach", f"needs model format version 17, the file says {format_version}")
            self.flag(pre["reach"], f"{where}.reach")
        return pre

    @staticmethod
    def preprocessing_arrays(prefix: str, pre: dict) -> dict[str, ArraySpec]:
        d = (len(pre["kept_features"]),)
        impute_rule = "finite" if pre["config"].get("impute") is not None else "not_inf"  # NaN when impute is off
        rules = {"kept_index": "index", "impute_values": impute_rule, "center": "finite", "scale": "positive",
                 "train_mean": "finite", "train_sd": "nonneg"}
        if "train_rows" in pre:  # format 5 (shares in [0, 1]: checked by Preprocessor.from_state)
            rules["train_zero_share"] = "nonneg"
        if pre.get("offset") is True:  # format 10
            rules["offset"] = "finite"
        if pre.get("sd_unclipped") is True:  # format 11
            rules["train_sd_unclipped"] = "nonneg"
        if pre.get("kurtosis") is True:  # format 17 (>= 1: checked by Preprocessor.from_state)
            rules["train_kurtosis"] = "positive"
        if pre.get("reach") is True:  # format 17
            rules["train_reach_low"] = rules["train_reach_high"] = "nonneg"
        return {f"{prefix}{key}": ArraySpec(d, "iu", (1, 2, 4, 8), rule) if key == "kept_index"
                else ArraySpec(d, "f", (4, 8), rule) for key, rule in rules.items()}

    def architecture(self, arch, where: str) -> dict:
        self.mapping(arch, where)
        unknown = sorted(set(arch) - set(_ARCHITECTURE_KEYS))
        if unknown:
            self.fail(join_key(where, unknown[0]), f"is not an architecture setting ({', '.join(_ARCHITECTURE_KEYS)})")
        self.whole(self.get(arch, "n_inputs", where), f"{where}.n_inputs", 1, MAX_FEATURES)
        hidden = self.listing(self.get(arch, "hidden", where), f"{where}.hidden", 0, MAX_HIDDEN_LAYERS)
        for i, h in enumerate(hidden):
            self.whole(h, f"{where}.hidden[{i}]", 1, MAX_WIDTH)
        self.whole(self.get(arch, "n_outputs", where), f"{where}.n_outputs", 1, MAX_WIDTH)
        activation = self.text(arch.get("activation", "relu"), f"{where}.activation", choices=act_mod.names())
        params = self.scalars(or_default(arch.get("activation_params"), {}), f"{where}.activation_params")
        for key, value in params.items():
            self.number(value, f"{where}.activation_params.{key}")
        try:
            act_mod.get(activation, **params)
        except (ValueError, TypeError) as exc:
            self.fail(f"{where}.activation_params", f"is invalid ({one_line(exc)})")
        if "dropout" in arch:
            self.number(arch["dropout"], f"{where}.dropout", 0.0, 1.0, hi_open=True)
        if "batchnorm" in arch:
            self.flag(arch["batchnorm"], f"{where}.batchnorm")
        if "seed" in arch:
            self.whole(arch["seed"], f"{where}.seed", 0, 2**64 - 1)
        if "dtype" in arch:
            self.text(arch["dtype"], f"{where}.dtype", choices=("float32", "float64"))
        return arch

    def loss(self, loss, n_outputs: int) -> str:
        """Check the loss and its parameters; returns its output activation (the link)."""
        self.mapping(loss, "loss")
        name = self.text(self.get(loss, "name", "loss"), "loss.name", choices=loss_mod.names())
        params = self.present(loss, "params", {}, "loss.params")
        for key, value in params.items():
            if value is None:
                continue
            if isinstance(value, list):
                if len(value) not in (1, n_outputs):
                    self.fail(f"loss.params.{key}", f"holds {len(value):,} values for {n_outputs:,} outputs")
                for i, v in enumerate(value):
                    self.number(v, f"loss.params.{key}[{i}]")
            else:
                self.number(value, f"loss.params.{key}")
        try:
            fn = loss_mod.get(name, **params)
        except (ValueError, TypeError) as exc:
            self.fail("loss.params", f"is invalid for loss {name!r} ({one_line(exc)})")
        return fn.output_activation

    def outputs(self, task: str, classes, link: str, n_outputs: int) -> None:
        """classes against the task and the output layer; the loss's link against the task."""
        from ..data.labels import label_key

        self.listing(classes, "classes", 1, MAX_WIDTH)
        if task in ("binary", "multiclass"):
            for i, c in enumerate(classes):
                if not (isinstance(c, (str, bool)) or (is_number(c) and math.isfinite(float(c)))):
                    self.fail(f"classes[{i}]", f"must be a string or a finite number, got {short_repr(c)}")
            keys = [label_key(c) for c in classes]
            if len(set(keys)) != len(keys):
                seen: set = set()
                twice = next(classes[i] for i, k in enumerate(keys) if k in seen or seen.add(k))
                self.fail("classes", f"names the class {short_repr(twice)} twice")
            if task == "binary" and len(classes) != 2:
                self.fail("classes", f"lists {len(classes)} classes; a binary model has 2")
            if task == "multiclass" and len(classes) < 2:
                self.fail("classes", "lists 1 class; a multiclass model has at least 2")
        else:
            self.texts(classes, "classes", min_len=1)  # the target columns
        links = _LINKS[task]
        if link not in links:
            raise ModelFileError(f"{self.source}: model.json's loss gives {link} outputs, which do not fit task "
                                 f"{task!r} ({' or '.join(links)})")
        wanted = links[link] or len(classes)
        if n_outputs != wanted:
            what = "classes" if task in ("binary", "multiclass") else "target columns"
            raise ModelFileError(f"{self.source}: model.json lists {len(classes)} {what} ({task}, {link} outputs) "
                                 f"but the networks have {count_of(n_outputs, 'output')} instead of {wanted:,}")

    def target_scaling(self, where: str, scaling, task: str, n_outputs: int) -> dict | None:
        if scaling is None:
            return None
        if task != "regression":
            self.fail(where, f"is set but the task is {task}; only regression targets are scaled")
        self.mapping(scaling, where)
        for key in ("mean", "sd"):
            values = self.listing(self.get(scaling, key, where), f"{where}.{key}", n_outputs, n_outputs)
            for i, v in enumerate(values):
                self.number(v, f"{where}.{key}[{i}]", 0.0 if key == "sd" else None, lo_open=True)
        return scaling

    def metadata(self, meta: dict) -> None:
        """The fields other commands read from a loaded model (column roles, history, split, baseline, fit)."""
        roles = self.present(meta, "roles", {}, "roles")
        if roles.get("target") is not None:
            self.texts(roles["target"], "roles.target", unique=False)
        for key in ("group", "id", "batch"):
            self.text(roles.get(key), f"roles.{key}", optional=True)
        if roles.get("drop") is not None:
            self.texts(roles["drop"], "roles.drop", unique=False)
        config = self.present(meta, "config", {}, "config")
        self.options({k: v for k, v in config.items() if k != "resolved"}, "config")
        if config.get("resolved") is not None:
            self.options(self.mapping(config["resolved"], "config.resolved"), "config.resolved")
        provenance = self.present(meta, "provenance", {}, "provenance")
        self.text(provenance.get("data_file"), "provenance.data_file", optional=True)
        for key in ("n_samples", "n_features"):  # said as "good.csv: many samples x 30 features" when text
            if provenance.get(key) is not None:
                self.whole(provenance[key], f"provenance.{key}", 0, 2**63 - 1)
        if provenance.get("versions") is not None:
            self.scalars(provenance["versions"], "provenance.versions")
        extra = self.present(meta, "extra", {}, "extra")
        if extra.get("diagnosis") is not None:
            from ..diagnosis.rules import LABELS

            self.mapping(extra["diagnosis"], "extra.diagnosis")
            self.text(extra["diagnosis"].get("label"), "extra.diagnosis.label", choices=LABELS, optional=True)
        self.tuning(extra.get("tuning"))
        history = self.present(meta, "history", [], "history")
        for i, row in enumerate(history):
            self.scalars(row, f"history[{i}]")
            for key in HISTORY_NUMBERS & set(row):  # a text cell read as a missing epoch by diagnose, silently
                if row[key] is not None and (isinstance(row[key], (bool, str)) or not is_number(row[key])):
                    self.fail(f"history[{i}].{key}", f"must be a number or null, got {kind_of(row[key])}")
        split = self.present(meta, "split", {}, "split")
        for key in ("n_train", "n_val"):
            if split.get(key) is not None:
                self.whole(split[key], f"split.{key}", 0, 2**63 - 1)
        for key in ("class_counts_train", "class_counts_val", "batch_counts_train", "batch_counts_val"):
            counts = self.present(split, key, {}, f"split.{key}")
            for label, count in counts.items():
                self.whole(count, join_key(f"split.{key}", label), 0, 2**63 - 1)
            rows = split.get(f"n_{key.rsplit('_', 1)[1]}")
            # a class's samples, one class each: they add up to the rows (info said "A (1), B (2) ... in the 400 rows")
            decided = meta.get("task") in ("binary", "multiclass")
            if key.startswith("class") and decided and counts and rows is not None and sum(counts.values()) != rows:
                self.fail(f"split.{key}", f"must add up to split.n_{key.rsplit('_', 1)[1]} = {rows}, got "
                                          f"{sum(counts.values())}")
        baseline = self.present(meta, "baseline", {}, "baseline")
        for key, value in baseline.items():
            if value is not None:
                self.number(value, f"baseline.{key}", 0.0)
        fit = self.present(meta, "fit", {}, "fit")
        for key in ("best_epoch", "epochs_run"):
            if fit.get(key) is not None:
                self.whole(fit[key], f"fit.{key}", 0, 2**63 - 1)
        self.text(fit.get("metric"), "fit.metric", optional=True)
        self.text(fit.get("held_out"), "fit.held_out", optional=True)
        held_out = self.scalars(self.present(fit, "held_out_metrics", {}, "fit.held_out_metrics"),
                                "fit.held_out_metrics")
        for key, (lo, hi) in METRIC_RANGES.items():  # info showed "balanced accuracy 7.500"
            if held_out.get(key) is not None:
                self.number(held_out[key], f"fit.held_out_metrics.{key}", lo, hi)
        if fit.get("portfolio") is not None:  # --hidden auto's candidates and their scores (``info`` shows them)
            for i, row in enumerate(self.listing(fit["portfolio"], "fit.portfolio")):
                at = f"fit.portfolio[{i}]"
                self.options({k: v for k, v in self.mapping(row, at).items() if k != "score"}, at)
                if row.get("score") is not None and not is_number(row["score"]):
                    self.fail(f"{at}.score", f"must be a number or null, got {kind_of(row['score'])}")
        interval = fit.get("held_out_interval")
        if interval is not None:  # the main metric's bootstrap interval
            self.mapping(interval, "fit.held_out_interval")
            self.text(interval.get("metric"), "fit.held_out_interval.metric")
            ci = interval.get("ci")
            if ci is not None:
                for i, v in enumerate(self.listing(ci, "fit.held_out_interval.ci", 2, 2)):
                    self.number(v, f"fit.held_out_interval.ci[{i}]")
            self.number(interval.get("level"), "fit.held_out_interval.level", 0.0, 1.0, lo_open=True, hi_open=True)
            self.whole(interval.get("resamples"), "fit.held_out_interval.resamples", 0, 2**31)
            self.whole(interval.get("n_units"), "fit.held_out_interval.n_units", 0, 2**63 - 1)
            self.whole(interval.get("n"), "fit.held_out_interval.n", 0, 2**63 - 1)
            self.text(interval.get("units"), "fit.held_out_interval.units")
        for part in ("held_out_per_target", "held_out_per_label", "held_out_per_class"):
            for i, row in enumerate(self.listing(or_default(fit.get(part), []), f"fit.{part}")):
                self.scalars(row, f"fit.{part}[{i}]")
        fitted = self.listing(or_default(fit.get("members"), []), "fit.members")
        for i, m in enumerate(fitted):
            self.scalars(m, f"fit.members[{i}]")
        networks = meta.get("members")
        # one row per member ("best epochs 91, 143" for 5 members); a --refit network keeps its folds' members
        refit = fit.get("refit") is not None or bool((meta.get("config") or {}).get("refit"))  # (before fit.refit)
        if fitted and isinstance(networks, list) and not refit and len(fitted) != len(networks):
            self.fail("fit.members", f"has {len(fitted)} rows for the model's {len(networks)} members")
        if fit.get("refit") is not None:  # the --refit network's settings (absent before they were stored)
            self.scalars(fit["refit"], "fit.refit")

    def tuning(self, tuning) -> None:
        """``extra.tuning``, what ``tune --refit`` chose and how (``tuning.refit_record``; ``info`` reads it): absent
        in other models; ``grid_size``, ``evaluated``, ``chosen_from``, ``folds`` and ``repeats`` are absent in files
        written before they were recorded."""
        if tuning is None:
            return
        where = "extra.tuning"
        self.mapping(tuning, where)
        grid = self.mapping(self.get(tuning, "grid", where), f"{where}.grid")
        if not grid:
            self.fail(f"{where}.grid", "must name at least one option")
        for key, values in grid.items():
            self.listing(values, join_key(f"{where}.grid", key), min_len=1)
        self.mapping(self.get(tuning, "setting", where), f"{where}.setting")
        self.text(tuning.get("metric"), f"{where}.metric")
        self.text(tuning.get("strategy"), f"{where}.strategy", optional=True)
        nested = tuning.get("nested")
        scores = [(tuning, where, "cv_mean"), (tuning, where, "cv_sd")]
        if nested is not None:
            self.scalars(nested, f"{where}.nested")
            scores += [(nested, f"{where}.nested", "mean"), (nested, f"{where}.nested", "sd")]
        for d, at, key in scores:  # null: undefined (NaN, which model.json allows, too)
            if d.get(key) is not None and not is_number(d[key]):
                self.fail(join_key(at, key), f"must be a number or null, got {kind_of(d[key])}")
        if nested is not None:
            folds = self.whole(nested.get("folds"), f"{where}.nested.folds", 1, 2**31)
            self.whole(nested.get("scored", folds), f"{where}.nested.scored", 0, folds)
        size = tuning.get("grid_size")
        if size is not None:
            self.whole(size, f"{where}.grid_size", 1, 2**63 - 1)
        evaluated = tuning.get("evaluated")
        if evaluated is not None:
            self.whole(evaluated, f"{where}.evaluated", 1, 2**63 - 1 if size is None else size)
        if tuning.get("chosen_from") is not None:
            self.whole(tuning["chosen_from"], f"{where}.chosen_from", 0, 2**63 - 1 if evaluated is None else evaluated)
        for key in ("folds", "repeats"):
            if tuning.get(key) is not None:
                self.whole(tuning[key], f"{where}.{key}", 1, 2**31)

    def array_shapes(self, shapes, specs: dict[str, ArraySpec], aliases: dict[str, str]) -> None:
        self.mapping(shapes, "array_shapes")
        for key, spec in specs.items():
            if key not in shapes:
                # (an array stored once for two names is listed under array_aliases: a file without them, edited
                # by hand, names the shapes as missing — said with where else the array could be)
                self.fail("array_shapes", f"lists no shape for the array {key!r} the model needs"
                          + ("" if aliases else ", and array_aliases names no array it is stored as"))
            given = self.listing(shapes[key], join_key("array_shapes", key), max_len=8)
            if not all(isinstance(s, int) and not isinstance(s, bool) for s in given) or tuple(given) != spec.shape:
                self.fail(join_key("array_shapes", key), f"is {short_repr(given)} but the model's fields make it "
                          f"{list(spec.shape)}")
        extra = [k for k in shapes if k not in specs]
        if extra and extra[0] in aliases:
            self.fail("array_shapes", f"lists {extra[0]!r}, which array_aliases says is stored as {aliases[extra[0]]!r}")
        if extra:
            self.fail("array_shapes", f"lists {short_repr(extra[0])}, an array the model does not have")
