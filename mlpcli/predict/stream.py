"""Prediction in chunks of rows as frames (``predict_stream``, ``PredictionStream``): the labels, probabilities,
prediction sets and flags ``predict`` writes, from one pass of the model over the table (``run``)."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from .. import data
from ..data.pieces import DEFAULT_CHUNK_MB
from ..decision import threshold_field
from ..model_summary import weighted_by
from ..errors import ConfigError, OptionError
from ..metrics import class_proba, predicted_class
from ..model_io import Model, require_model
from .columns import RoleFlags
from .trust import Trust, Uncertainty
from .labelling import labelled_by, resolve_decision, resolve_prevalence
from .run import PredictionRun


# predict --explain with abstention: the column naming the class each row's top_features explain
EXPLAINED_CLASS = "explained_class"
# predict --explain with gene symbols: top_features' genes by symbol (top_symbols_<target> beside each
# top_features_<target>)
SYMBOLS_COLUMN = "top_symbols"


class PredictionStream:
    """Prediction frames for a table, block by block (at most FORWARD_ROWS rows each); iterate once.

    Columns: the id column when the table has one (else `row`, 1-based), then
      binary / multiclass: `pred_<target>` (the label; binary uses `threshold` on P(positive class)) and
                           `prob_<class>` per class;
      multi-label:         `pred_<label>` (0/1, `threshold` on each probability) and `prob_<label>` per label;
      regression:          `pred_<target>` per target.
    With `explain`: `top_features` (a regression model of several targets: `top_features_<target>` each; a
    multi-label model: `top_features_<label>` each, filled for the labels a row is predicted positive for); with
    `symbols` too, `top_symbols` (`top_symbols_<target>`, `top_symbols_<label>`) after them.
    With `uncertainty` (classification): `pred_set`, `set_size`, `ood_score`, `ood_p`, `ood` as asked, and
    abstained rows labelled with the unassigned label.
    `notes` and `warnings` are filled as soon as the header is read; `shift`, `n_rows` and `counts`
    (predicted labels, or positives per label) after the last frame. The table stays open from
    `predict_stream` until the last frame: a stream that is not read to its end should be closed (`close`,
    or `with predict_stream(...) as stream:`).
    """

    def __init__(self, run: PredictionRun, threshold: float):
        self._run, self.threshold, self.decision = run, threshold, run.decision
        self.trust = run.trust
        model = run.model
        self.model = model
        self.id_column = run.plan.roles.id or "row"
        self.counts: Counter = Counter()
        target = (model.target_names or ["label"])[0]
        if model.task in data.CLASSIFICATION_TASKS:
            self.label_column = f"pred_{target}"
            self.columns = [self.id_column, self.label_column, *[f"prob_{c}" for c in model.classes]]
        elif model.task == "multilabel":
            self.columns = [self.id_column, *[f"pred_{c}" for c in model.classes], *[f"prob_{c}" for c in model.classes]]
        else:
            self.columns = [self.id_column, *[f"pred_{c}" for c in model.classes]]
        self.explain_columns: list[str] = []
        if run.explain is not None:  # one per regression target when there are several, one per label (as `pred_<c>`)
            self.explain_columns = ([f"top_features_{c}" for c in model.classes] if model.task == "multilabel" or
                                    model.task == "regression" and len(model.classes) > 1 else ["top_features"])
            self.columns += self.explain_columns
        # the same genes by symbol (symbols known: an annotation file, cells' var column), beside top_features
        self.symbol_columns: list[str] = ([c.replace("top_features", SYMBOLS_COLUMN, 1) for c in self.explain_columns]
                                          if run.symbol_names is not None else [])
        self.columns += self.symbol_columns
        # with abstention, an unassigned row's top_features are toward the class the rule chose, which its label no
        # longer names: ``explained_class`` names it (for every row, so the column reads alike)
        self.explained_column = (EXPLAINED_CLASS if run.explain is not None and model.task in ("binary", "multiclass")
                                 and self.trust is not None and self.trust.options.abstains else None)
        if self.explained_column:
            self.columns.append(self.explained_column)
        if self.trust is not None:
            self.columns += self.trust.added_columns
        twice = [name for name, k in Counter(self.columns).items() if k > 1]
        if twice:  # a target named "set" is predicted as pred_set, --coverage's column: one would replace the other
            raise OptionError(
                f"the predictions would hold two columns named {twice[0]!r}: one from the model's id, target or "
                f"class names, one that {'--coverage/--ood/--explain' if self.trust or run.explain else 'predict'} "
                "adds; leave that option out, or rename the column the model was trained with and retrain")
        # Probabilities are given in the network's precision (float32: ~7 significant digits, written in the
        # shortest form that reads back to the same float32); regression values in float64 (``_frame``).
        self.dtype = np.dtype(model.network.dtype)
        self._closed = False

    notes = property(lambda self: self._run.notes)
    warnings = property(lambda self: self._run.warnings)
    shift = property(lambda self: self._run.shift)
    n_rows = property(lambda self: self._run.n_rows)
    plan = property(lambda self: self._run.plan)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        if self._closed and not self._run._started:
            raise ValueError("this prediction stream was closed before it was read; call predict_stream again")
        for out, meta in self._run.blocks():
            yield self._frame(out, meta)
        if self.trust is not None:
            self._run.notes.extend(self.trust.notes())
            self._run.warnings.extend(self.trust.ood_warnings())

    def close(self) -> None:
        """Release the table (its file) without reading it: for a stream that will not be iterated, e.g. when
        its notes showed the wrong table. Iterating to the end releases it too; closing twice is harmless."""
        self._closed = True
        self._run.table.close()

    def __enter__(self) -> "PredictionStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _frame(self, out: np.ndarray, meta: dict) -> pd.DataFrame:
        model, task = self.model, self.model.task
        decide, out = out, out.astype(self.dtype, copy=False)  # decisions on the float64 values, as evaluate
        cols: dict[str, Any] = {self.id_column: meta["id"] if "id" in meta else meta["row"]}
        classes = np.asarray(model.classes, dtype=object)
        pred = None  # the predicted class indices (binary, multiclass)
        if task == "binary":
            probs = class_proba(task, out)
            pred = predicted_class(task, decide, self.threshold)
            labels = classes[pred]
            cols[self.label_column] = labels
            for k, c in enumerate(model.classes):
                cols[f"prob_{c}"] = probs[:, k]
        elif task == "multiclass":
            pred = self.decision.classes(task, decide)  # float32 rounding can tie two classes the float64 values order
            labels = classes[pred]
            cols[self.label_column] = labels
            for k, c in enumerate(model.classes):
                cols[f"prob_{c}"] = out[:, k]
        elif task == "multilabel":
            pred = predicted_class(task, decide, self.threshold)  # one threshold, or one per label (its rule)
            for k, c in enumerate(model.classes):
                cols[f"pred_{c}"] = pred[:, k]
                self.counts[str(c)] += int(pred[:, k].sum())
            for k, c in enumerate(model.classes):
                cols[f"prob_{c}"] = out[:, k]
        else:  # values in the target's units, as evaluate scores them: float32 would round a target of large
            # mean and small spread (2e7 +- 3) to steps of 2, coarser than the model's error
            for k, c in enumerate(model.classes):
                cols[f"pred_{c}"] = decide[:, k]
        if task in data.CLASSIFICATION_TASKS:
            if self.trust is not None:  # abstentions, prediction sets, out-of-distribution flags
                labels, added = self.trust.columns(class_proba(task, decide), pred, cols[self.label_column], meta)
                cols[self.label_column] = labels
                cols.update(added)
            self.counts.update(cols[self.label_column].tolist())
        if "top_features" in meta:
            for j, column in enumerate(self.explain_columns):
                cols[column] = meta["top_features"][:, j]
            for j, column in enumerate(self.symbol_columns):
                cols[column] = meta["top_symbols"][:, j]
            if self.explained_column:
                cols[self.explained_column] = classes[pred]
        return pd.DataFrame(cols, columns=self.columns)

    def _count_order(self, item) -> tuple[int, str]:
        order = {str(c): i for i, c in enumerate(self.model.classes or [])}
        return order.get(str(item[0]), len(order)), str(item[0])

    def summary(self) -> dict:
        """JSON-able: rows, columns, predicted label counts, shift summary, notes and warnings."""
        return {"rows": self.n_rows, "task": self.model.task, "columns": self.columns,
                # one number, or a multi-label model's one per label {label: threshold}
                "threshold": (threshold_field(self.threshold, self.model.classes, self.model.task == "multilabel")
                              if self.model.task in ("binary", "multilabel") else None),
                "decision": self._run.labelled_by,  # argmax, balanced or threshold (``labelled_by``)
                # where a binary or multi-label model's threshold came from: --threshold, or the decision rule (0.5
                # for argmax, the positive class's (each label's) training share for balanced)
                "threshold_source": (getattr(self._run, "threshold_source", None)
                                     if self.model.task in ("binary", "multilabel") else None),
                "positive_class": str(self.model.classes[-1]) if self.model.task == "binary" else None,
                # the options that weighted the loss by class: the balanced rule's shares are as they weigh them
                "weighted_by": weighted_by(self.model.config or {}),
                # the table a recalibrated model's probabilities (and a balanced rule's shares) are of; None: training's
                "recalibrated_on": self.model.recalibrated_on,
                # in the model's order of classes or labels (a multi-label model's is its --target order), others after
                "predicted_counts": {str(k): int(v) for k, v in sorted(self.counts.items(), key=self._count_order)},
                "shift": self.shift.summary() if self.shift is not None else None,
                "trust": self.trust.summary() if self.trust is not None else None,  # (stable keys: null without)
                # rows the model was trained on (None: the model keeps no fingerprints of them)
                "seen_in_training": None if self._run.seen is None else self._run.seen.n,
                # the class mix the probabilities were moved to (--prevalence), and the training one; None: not moved
                "prevalence": None if self._run.prevalence is None else self._run.prevalence.to_dict(self.model.classes),
                "notes": list(self.notes), "warnings": list(self.warnings)}


def predict_stream(model: Model, source, *, chunksize: int | None = None, chunk_mb: float = DEFAULT_CHUNK_MB,
                   threshold: float | None = None, fill_missing: str | None = None, roles: RoleFlags | None = None,
                   stdin=None, progress: Callable[[dict], None] | None = None, explain: int | None = None,
                   explain_steps: int = 16, max_missing: float | None = None,
                   uncertainty: Uncertainty | None = None, unique_ids: bool = True,
                   decision: str | None = None, prevalence=None, symbols=None) -> PredictionStream:
    """Predictions for the table `source` (path, "-" or DataFrame), read in pieces of about `chunk_mb`
    MiB of table data (text and parsed values) at a time, or of `chunksize` rows when given.

    Memory stays at about the budget of table data (plus the model and a block of network inputs of at
    most 32 MiB) however long or wide the table; iterate the result once for the output frames (see
    PredictionStream for the columns). ``decision`` ("argmax", "balanced"; None: the model's own rule) and
    `threshold` (binary, multi-label; None: the rule's, 0.5 unless balanced) decide the labels. The output does
    not depend on the chunking, bit for bit. `fill_missing="mean"` fills absent features with their training
    means, at most a share `max_missing` of them (default 10 %, ``columns.DEFAULT_MAX_MISSING``).

    ``explain`` K adds a ``top_features`` column: per row the K features with the largest integrated-gradients
    attributions toward the predicted class (``mlpcli.explain``; the members' mean logit from the training
    mean, over ``explain_steps`` path intervals), as "GENE:score;...". A regression model: the K largest by
    |attribution| of the predicted value (in the target's units, from the value at the training mean), signed
    (a positive score raises it, a negative one lowers it); one ``top_features_<target>`` column per target
    when there are several. A multi-label model: one ``top_features_<label>`` column per label, toward the label,
    filled for the rows predicted positive for it (``threshold``) and "" for the others.

    `uncertainty` (binary, multiclass): prediction sets (`pred_set`, `set_size`), abstention (the label
    becomes the unassigned label) and out-of-distribution flags (`ood_score`, `ood_p`, `ood`); see
    `Uncertainty`. Their counts are in the notes and in `summary()["trust"]`.

    ``unique_ids`` False: ids may repeat (the predictions are written back by position, as ``predict -o
    FILE.h5ad`` writes them into the cells' own .obs); else a repeated id is an error, since the output's rows
    are joined back to the samples by id.

    ``prevalence`` (binary, multiclass): the cohort's class mix, to which the probabilities are moved from the
    training mix (``mlpcli.prevalence``): "CLASS=SHARE,..." or a mapping class -> share, or the shares in the
    model's class order. The labels follow the moved probabilities (balanced ones stay as they were), prediction
    sets weigh their calibration rows for the mix, and ``summary()["prevalence"]`` gives both mixes.

    ``symbols`` (with ``explain``): the gene symbols of the features, for a ``top_symbols`` column beside each
    ``top_features`` one: the same genes in the same order, "SYMBOL;..." (a gene without a symbol by its id;
    names written as in ``top_features``), while ``top_features`` keeps the ids. An annotation file's path, a
    var column of cell input, "auto" (cell input's conventional var column, if any) or "none", as ``explain
    --symbols`` reads them (``explain.feature_symbols``); or a ``GeneSymbols`` or a mapping {feature: symbol}.
    None (the default): no symbols. A dict lookup per gene: the table is still read in pieces.
    """
    require_model(model, "predict_stream takes")
    threshold_given = threshold is not None
    rule, threshold = resolve_decision(model, decision, threshold)
    mix, rule, threshold = resolve_prevalence(model, prevalence, rule, threshold, threshold_given)
    trust = Trust(model, uncertainty, prevalence=mix) if uncertainty is not None and uncertainty.active else None
    explaining = None
    if explain is not None:
        from ..explain.attribution import check_model, check_steps

        if isinstance(explain, bool) or not isinstance(explain, (int, np.integer)) or explain < 1:
            raise ConfigError(f"--explain must be a whole number of at least 1, got {explain!r}")
        check_model(model)
        explaining = (int(explain), check_steps(explain_steps))
    gene_symbols = _symbols(model, source, roles, symbols, explaining is not None)
    run = PredictionRun(model, source, roles=roles, need_target=False, by=None, fill_missing=fill_missing,
               chunksize=chunksize, chunk_mb=chunk_mb, stdin=stdin, progress=progress, max_missing=max_missing,
               trust=trust, unique_ids=unique_ids)
    run.prevalence = mix
    if mix is not None:
        run.notes.append(mix.describe(model.classes, model.recalibrated_on))
    run.explain, run.threshold, run.decision = explaining, threshold, rule
    if gene_symbols is not None:
        run.notes.extend(gene_symbols.notes)
        run.warnings.extend(gene_symbols.warnings)
        if not gene_symbols.named_already:
            run.symbol_names = [gene_symbols.of(f) or str(f) for f in run.plan.features]
            n = sum(gene_symbols.of(f) is not None for f in run.plan.features)
            run.notes.append(f"{SYMBOLS_COLUMN}: the top genes by symbol ({n:,} of the model's "
                             f"{len(run.plan.features):,} features have one; the others by their ids); "
                             "top_features keeps the ids")
    run.threshold_source = "--threshold" if threshold_given else "decision rule"
    run.labelled_by = labelled_by(model, rule, threshold_given)
    if trust is not None:  # the rule that chose the labels --min-confidence judges (its notes say so)
        trust.rule = run.labelled_by
    return PredictionStream(run, threshold)


def _symbols(model: Model, source, roles: RoleFlags | None, symbols, explaining: bool):
    """``predict_stream``'s ``symbols`` as a GeneSymbols keyed by the model's features, or None (none asked for, or
    none found: "auto" with a table, or cells without a symbol column). Without ``explain`` only None and "auto"
    pass: symbols are for the top_symbols column."""
    from ..data.symbols import AUTO, NO_SYMBOLS, GeneSymbols

    if symbols is None or (isinstance(symbols, str) and symbols == NO_SYMBOLS):
        return None
    if not explaining:
        if isinstance(symbols, str) and symbols == AUTO:
            return None
        raise OptionError("--symbols applies to the top_symbols column of --explain: add --explain K")
    if isinstance(symbols, GeneSymbols):
        return symbols
    if isinstance(symbols, (str, os.PathLike)):
        from ..explain.symbols import feature_symbols

        return feature_symbols(model, source, roles=roles, column=os.fspath(symbols))
    if isinstance(symbols, Mapping):
        return GeneSymbols("symbols", {str(k): str(v) for k, v in symbols.items() if v is not None and str(v) != ""})
    raise TypeError(f"symbols is an annotation file's path, a var column, 'auto', 'none', a GeneSymbols or a mapping "
                    f"{{feature: symbol}}; got {type(symbols).__qualname__}")
