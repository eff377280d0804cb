"""The model file: a zip archive with ``model.json`` (metadata) and ``weights.npz`` (arrays only).

A model holds one or more members (a network with the preprocessing it was trained with): K members
for a cross-fitted ensemble, whose probabilities are averaged, or one. Besides, the model keeps a
reference preprocessing fitted on all training rows: it names the input features a table must supply
and holds the training statistics the cohort-shift check compares against. A temperature, when set,
divides every member's logits before the softmax or sigmoid (``calibration``).

Format version 2 stores the members under ``members/<i>/``; version 1 files (one network, whose
preprocessing is the reference) still load. Version 3 adds, for classification models, the held-out
conformity scores of the prediction sets (``conformal`` in model.json, arrays ``conformal/*``: at most
``conformal.MAX_ROWS`` rows) and the out-of-distribution basis (``ood``, arrays ``ood/*``: a mean and at most
``ood.MAX_COMPONENTS`` components over the kept features, at most ``ood.MAX_REFERENCE`` training rows in those
components, at most ``ood.MAX_CALIBRATION`` scores); both are
optional, and version 1 and 2 files load without them. Version 4 adds to ``ood`` the class of each reference
row, one spread per class and the held-out values of both parts (the class-relative distance,
``ood.n_classes``); version 3
files load with the distance alone. Version 5 adds each preprocessing's share of zeros per feature and its
training row count (``train_zero_share``, ``train_rows``: the check for genes absent from a new cohort).
Version 6 stores once an ensemble member's array that repeats, byte for byte, the same array of an earlier
member (the kept-feature indices, the missing-value fills): model.json's ``array_aliases`` maps the repeat's
name to the stored array's. Version 7 lists the features once: a preprocessing leaves out
``feature_names_in`` (the model's ``feature_names``) and ``kept_features`` when they are its reference's
(``model_check.expand_feature_lists``); earlier versions listed them up to 13 times. Version 8 adds the
fingerprints of the training rows (``training_rows``, array ``training_rows``: 8 bytes per row, optional), so
that ``predict`` and ``evaluate`` can say which samples the model was trained on. Version 9 adds the decision
rule (``decision``: argmax or balanced, with the training class shares; ``mlpcli.decision``); older files decide
by argmax. Version 10 adds each preprocessing's ``offset`` (the robust clip's training mean, subtracted after it;
``offset: true`` in its state); older files load with none, as their networks were trained. Version 11 adds,
with robust scaling, each preprocessing's SDs of the scaled training values before the smooth clip
(``train_sd_unclipped``, ``sd_unclipped: true``: the shift check's spread test); older files judge spread after
the clip. Version 12 lists a member's kept features, when it keeps all but a few of the model's preprocessing's
(genes constant on its training rows), as the few it leaves out (``kept_features_left_out``): a 3-member model
of 60,000 genes repeated the whole list for each member that dropped 2-6 all-zero genes (5.6 MB of model.json).
Version 13 gives multi-label models their decision rule too (``decision``, with each label's training share of
positives: the balanced rule calls a label at P >= its share); older multi-label files call each label at 0.5.
Version 14 adds ``recalibration``: an update of a binary or multiclass model's probabilities for a population,
fitted on a labelled cohort (``mlpcli recalibrate``; ``recalibration.Recalibration``), applied after the
temperature. Version 15 adds conformal calibration scores of a labelled cohort of a new population
(``conformal.source`` "cohort", written by ``mlpcli recalibrate``): scores of the whole model's probabilities, which
prediction sets then compare a new sample's with. Version 16 adds the fingerprints of the rows of the table a model
was recalibrated on (``cohort_rows``, array ``cohort_rows``, optional), so that ``evaluate`` recognises them in any
copy or part of that table, not only in the identical file. Today's files are version 16.

Loading never unpickles: ``model_check`` reads each array's .npy header first and refuses object
dtypes without reading them. Every way a file can be wrong — not a zip, truncated, a member missing
or extra, a zip bomb, JSON that does not parse, another program's archive, an unknown format version,
a field of the wrong type or out of its limits, classes that disagree with the output layer, weights
that do not match their recorded checksum or the architecture's shapes, non-finite weights — is a
``ModelFileError`` with a one-line message, raised before anything proportional to what the file
claims is allocated. Files are written to a temporary file in the target directory and renamed, so a
failure never leaves half a model behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import model_check
from .jsonable import json_default
from .engine import MLP
from .centred_rows import is_sparse
from .engine import losses as loss_mod
from .calibration import apply_temperature, temper, temperature_field
from .decision import Decision
from .engine.functional import sigmoid, softmax
from .errors import ConfigError, DataError, ModelFileError
from .fileio import atomic_write

FORMAT = model_check.FORMAT
FORMAT_VERSION = 17
SUPPORTED_VERSIONS = model_check.SUPPORTED_VERSIONS
_NET, _PRE = "network/", "preprocessor/"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can record


ROW_BLOCK = 2048  # rows per preprocessing + forward pass inside a member, at most
ROW_BLOCK_BYTES = 32 << 20  # and at most this much of float64 inputs: fewer rows for wide tables


def row_block(n_features: int) -> int:
    """Rows per preprocessing + forward pass for inputs of ``n_features`` columns: ROW_BLOCK, or fewer
    so that a block of float64 inputs stays within ROW_BLOCK_BYTES (a 50,000-feature row is 400 KB)."""
    return max(1, min(ROW_BLOCK, ROW_BLOCK_BYTES // (8 * max(n_features, 1))))


@dataclass
class Member:
    """One network and the preprocessing fitted on its own training rows."""

    network: MLP
    preprocessor: object  # data.Preprocessor
    target_scaling: dict | None = None  # regression: the mean and SD its targets were standardised with

    def raw_output(self, X: np.ndarray, columns: np.ndarray | None = None, logged: bool = False,
                   rows: int = ROW_BLOCK, preprocessed: bool = False) -> np.ndarray:
        """Network outputs (n, k) for raw rows X; ``columns`` maps this member's kept features to
        columns of X (None: X is in the model's feature order). ``logged``: X is log1p'd already.
        ``preprocessed``: X (n, d_kept), dense or CSR, is already this member's preprocessing of the rows in
        the network's dtype (training's validation matrix), the values the transform here would give.

        Rows go through in blocks of ``rows`` (Model.row_block), so the preprocessing's float64 copy
        stays small however many rows X holds (every caller goes through here, so results do not
        depend on it)."""
        pre, net = self.preprocessor, self.network
        out = np.empty((X.shape[0], net.n_outputs), dtype=net.dtype)
        for s in range(0, X.shape[0], rows):
            block = X[s:s + rows]
            # np.take, not block[:, columns]: numpy lays a fancy-indexed column selection out column-major
            if preprocessed:
                Z = block.toarray() if is_sparse(block) else block
            elif columns is not None:
                Z = pre.transform_kept(np.take(block, columns, axis=1), dtype=net.dtype, logged=logged, scratch=True)
            elif logged:
                Z = pre.transform_kept(np.take(block, pre.kept_index_, axis=1), dtype=net.dtype, logged=True,
                                       scratch=True)
            else:
                Z = pre.transform(block, dtype=net.dtype)
            # row-major: BLAS is up to 25x slower on a column-major block of few rows (a wide table's),
            # and one layout for every caller keeps the results independent of how X is laid out
            out[s:s + rows] = net.forward(np.ascontiguousarray(Z))
        return out

    def unscale(self, out: np.ndarray) -> np.ndarray:
        """Outputs (n, k) as float64 in the target's units: regression networks train on standardised
        targets; classification outputs pass through."""
        out = np.asarray(out, dtype=np.float64)
        if not self.target_scaling:
            return out
        return out * np.asarray(self.target_scaling["sd"]) + np.asarray(self.target_scaling["mean"])


@dataclass
class Model:
    """Everything needed to use trained networks on new samples, and to know how they were made."""

    members: list[Member]
    preprocessor: object  # data.Preprocessor: the reference (input features, shift statistics)
    task: str
    classes: list  # class labels (binary/multiclass), label columns (multilabel), targets (regression)
    feature_names: list[str]  # input features, in the order the preprocessor expects them
    target_names: list[str]
    loss: dict  # {"name": ..., "params": {...}}
    roles: dict = field(default_factory=dict)  # the column roles used in training
    config: dict = field(default_factory=dict)  # the resolved training configuration
    history: list[dict] = field(default_factory=list)
    split: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)
    fit: dict = field(default_factory=dict)  # best epoch, stopped early, interrupted, seconds
    provenance: dict = field(default_factory=dict)  # data checksum, versions, creation time
    extra: dict = field(default_factory=dict)  # e.g. the learning-curve diagnosis
    # divides the logits of classification models (calibration); a multi-label model's: one per label (L,)
    temperature: "float | np.ndarray | None" = None
    # how a class is chosen from the calibrated probabilities (binary, multiclass; format 9): argmax, or balanced
    # (divided by the training class shares); None: argmax (older files, other tasks)
    decision: Decision | None = None
    # format 14: an update of the calibrated probabilities for a population (``recalibration.Recalibration``: a
    # labelled cohort's intercept and slope, ``mlpcli recalibrate``), applied after the temperature; None: none
    recalibration: object | None = None
    conformal: object | None = None  # conformal.ConformalCalibration: held-out scores for prediction sets
    ood: object | None = None  # ood.OODBasis: the out-of-distribution distance and its held-out calibration
    # (m,) uint64, sorted and distinct: ``data.row_fingerprints`` of the rows the model was trained and validated on,
    # over the reference preprocessing's kept features, so that predict and evaluate can tell those rows from new
    # samples (format 8; None: an older file, or a model fitted on arrays by the scikit-learn estimators)
    training_rows: np.ndarray | None = None
    # (m,) uint64, sorted and distinct: the same fingerprints of the rows of the table the model was recalibrated on
    # (``mlpcli recalibrate``), so that ``evaluate`` can tell them from other samples of that population (format
    # 16; None: not recalibrated, an older file, or a cohort read with features filled)
    cohort_rows: np.ndarray | None = None
    format_version: int | None = None  # the version of the file it was loaded from (None: not loaded); save writes its own

    @classmethod
    def single(cls, network: MLP, preprocessor, target_scaling: dict | None = None, **fields) -> "Model":
        """A one-network model whose preprocessing is also the reference."""
        return cls(members=[Member(network, preprocessor, target_scaling)], preprocessor=preprocessor, **fields)

    @property
    def network(self) -> MLP:
        """The first member's network (all members share dtype, outputs and activation)."""
        return self.members[0].network

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    def output_activation(self) -> str:
        return loss_mod.get(self.loss["name"], **self.loss.get("params", {})).output_activation

    def link(self, logits: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Raw outputs (n, k) of one member -> probabilities (calibrated unless told: the temperature, then any
        recalibration) or values."""
        link = self.output_activation()
        T = self.temperature if calibrated else None
        if link == "softmax":
            return self.recalibrated(softmax(apply_temperature(logits, T)), calibrated)
        if link == "sigmoid":
            return self.recalibrated(sigmoid(apply_temperature(logits, T)), calibrated)
        return logits

    @property
    def recalibrated_on(self) -> str | None:
        """The table the model was recalibrated on (``mlpcli recalibrate``), named for messages; None: it was not."""
        if self.recalibration is None:
            return None
        return self.recalibration.cohort.get("data") or "the recalibration cohort"

    def recalibrated(self, P: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Probabilities at the model's temperature (n, k) -> with its recalibration for a population applied
        (``mlpcli recalibrate``), when it has one and ``calibrated``."""
        if not calibrated or self.recalibration is None:
            return P
        return self.recalibration.apply(P, self.output_activation()).astype(P.dtype, copy=False)

    @property
    def row_block(self) -> int:
        """Rows per preprocessing + forward pass (`row_block` of the input width). A property of the
        model alone: the network's matrix products, whose last bits depend on their number of rows,
        see the same blocks of rows however the input is chunked, so chunked prediction (mlpcli
        predict) equals one-shot prediction bit for bit."""
        return row_block(len(self.feature_names))

    def member_output(self, member: Member, X: np.ndarray, columns=None, calibrated: bool = True,
                      logged: bool = False) -> np.ndarray:
        """One member's predictions (n, k) float64 for raw rows X: probabilities or values."""
        return member.unscale(self.link(member.raw_output(X, columns, logged, self.row_block), calibrated))

    def _feature_maps(self, features: list[str] | None) -> tuple[list, np.ndarray | None]:
        """For X's columns ``features`` (None: ``feature_names``): each member's kept features as column
        indices of X (None: X is in the model's order), and the columns any member uses. Kept for the
        last ``features`` list: a streamed prediction passes the same one for every block, and building
        the maps for 50,000 features takes longer than scoring a block. The cache is keyed by the list's
        contents (a copy), not by the list object: a list changed in place must not reuse stale maps."""
        key = None if features is None else tuple(features)
        cached = self.__dict__.get("_maps")
        if cached is not None and cached[0] == key:
            return cached[1]
        names = self.feature_names if features is None else features
        columns = [None] * len(self.members)
        if features is not None:
            index = {name: j for j, name in enumerate(features)}
            if len(index) < len(features):  # two columns of one name: which the model reads would be a guess
                used = set(self.preprocessor.kept_features).union(*(m.preprocessor.kept_features for m in self.members))
                twice = [name for name, k in Counter(features).items() if k > 1 and name in used]
                if twice:
                    shown = ", ".join(repr(n) for n in twice[:5]) + (", ..." if len(twice) > 5 else "")
                    raise DataError(f"X has {len(twice)} feature name(s) the model uses more than once: {shown}; "
                                    "keep one column per feature (e.g. sum or drop duplicated gene symbols)")
            missing = sorted({n for m in self.members for n in m.preprocessor.kept_features} - index.keys())
            if missing:  # built once per features list: the check costs nothing per block
                raise DataError(f"X lacks {len(missing)} of the features the model uses, e.g. {missing[0]!r}")
            columns = [np.array([index[n] for n in m.preprocessor.kept_features], dtype=np.int64) for m in self.members]
        used = np.flatnonzero(np.isin(names, self.preprocessor.kept_features))
        self.__dict__["_maps"] = (key, (columns, used))
        return columns, used

    def _shared_log1p(self, block: np.ndarray, features: list[str] | None) -> tuple[np.ndarray, bool]:
        """log1p has no parameters, so when every member applies it, it is applied once for all of them
        (a fifth of an ensemble's preprocessing time); negative values are refused as a member would."""
        if not all(m.preprocessor.config.log1p for m in self.members) or block.ndim != 2:
            return block, False
        names = self.feature_names if features is None else features
        if block.shape[1] != len(names):
            return block, False  # a member's transform names the mismatch
        used = self._feature_maps(features)[1]
        from .data.preprocess_messages import check_non_negative

        check_non_negative(block[:, used], [names[j] for j in used])
        with np.errstate(invalid="ignore"):  # unused columns may hold anything; they are never read
            return np.log1p(np.asarray(block, dtype=np.float64)), True

    def _largest_input(self, row: np.ndarray, columns: np.ndarray | None, logged: bool) -> str:
        """For a message: the feature of ``row`` (1, d) whose network input (as the first member sees it) is
        largest in magnitude, e.g. ": feature 'f01' enters at 2e+38"; "" when it cannot be told."""
        pre = self.members[0].preprocessor
        try:
            if columns is not None or logged:
                Z = pre.transform_kept(row[:, pre.kept_index_ if columns is None else columns], logged=logged)
            else:
                Z = pre.transform(row)
            names = getattr(pre, "kept_features", self.preprocessor.kept_features)
            j = int(np.argmax(np.abs(Z[0])))
        except Exception:  # noqa: BLE001 - the message is still right without the detail
            return ""
        return f": feature {names[j]!r} enters it at {Z[0, j]:.3g} after the training scaling"

    def _member_output(self, member: Member, X: np.ndarray, columns, calibrated: bool, logged: bool,
                       logits: list | None) -> np.ndarray:
        """``member_output``, also appending the member's raw outputs (float64) to ``logits`` when given."""
        if logits is None:
            return self.member_output(member, X, columns, calibrated=calibrated, logged=logged)
        raw = member.raw_output(X, columns, logged, self.row_block)
        logits.append(np.asarray(raw, dtype=np.float64))
        return member.unscale(self.link(raw, calibrated))

    def inputs(self, X, features: list[str] | None = None):
        """(X, features) as ``predict_output`` takes them. A pandas DataFrame is matched to the model by its
        column names (``features``, if given, renames them): the columns that are not the model's input
        features (ids, labels, notes) are left out, the others taken in their own order; anything else is
        returned as it is (its columns ``features``, or ``feature_names`` in order)."""
        pd = sys.modules.get("pandas")  # not imported: X cannot be a DataFrame
        if pd is None or not isinstance(X, pd.DataFrame):
            if is_sparse(X) and hasattr(X, "tocsr"):
                X = X.tocsr()  # rows are read a block at a time: COO and DIA cannot be sliced (CSR: X itself)
            if not hasattr(X, "shape"):  # a list of rows
                try:
                    X = np.asarray(X, dtype=np.float64)
                except (TypeError, ValueError) as exc:
                    raise DataError(f"X must be a 2-D array of numbers (rows x features): {exc}") from None
            if getattr(X, "ndim", 2) != 2:
                raise DataError(f"X must be a 2-D array (rows x features), got {X.ndim} dimension(s)")
            return X, features
        names = [str(c) for c in X.columns] if features is None else [str(f) for f in features]
        if len(names) != X.shape[1]:
            raise DataError(f"features= gives {len(names)} names for the DataFrame's {X.shape[1]} columns")
        known = set(self.feature_names)
        keep = [j for j, c in enumerate(names) if c in known]
        if not keep:
            raise DataError(f"none of the DataFrame's {X.shape[1]} columns is one of the model's "
                            f"{len(self.feature_names)} input features (e.g. {self.feature_names[0]!r})")
        try:
            values = X.iloc[:, keep].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"feature columns of the DataFrame must be numbers: {exc}") from None
        return values, [names[j] for j in keep]

    def class_shares(self) -> np.ndarray | None:
        """(k,) each class's share of the labelled rows the model was trained on (an ensemble's rows, or one
        network's training and validation rows), from the counts it keeps; None for a model without classes, one
        that keeps no counts (an older file) or none for some class."""
        if self.task not in ("binary", "multiclass"):
            return None
        split = self.split or {}
        train, val = split.get("class_counts_train") or {}, split.get("class_counts_val") or {}
        counts = [train.get(str(c)) for c in self.classes]
        if any(not isinstance(c, (int, float)) or c < 0 for c in counts):
            return None
        total = np.asarray(counts, dtype=np.float64)
        if val != train:  # a hold-out's validation rows (an ensemble lists every row on both sides)
            total += [float(val.get(str(c), 0)) for c in self.classes]
        return total / total.sum() if total.sum() > 0 else None

    @property
    def decider(self) -> Decision:
        """The model's decision rule (argmax when it has none: an older file, a regression model)."""
        return self.decision if self.decision is not None else Decision()

    def predict_classes(self, proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """The class indices (n,) a binary or multiclass model gives rows of probabilities ``proba`` (n, outputs),
        as ``predict_output`` returns them, by its decision rule; a multi-label model's 0/1 calls (n, L);
        ``threshold`` (binary, multi-label) overrides the rule's; a multiclass model has none to override (the CLI
        refuses ``--threshold`` there too): a ValueError rather than a threshold silently unused."""
        if threshold is not None and self.task == "multiclass":
            raise ConfigError("threshold= applies to a binary or multi-label model; a multiclass model labels each row "
                              "by its decision rule (argmax or balanced), which a threshold does not change")
        proba = np.asarray(proba)
        outputs = self.network.n_outputs
        if proba.ndim == 1 and outputs == 1:  # a binary model's probabilities as one vector
            proba = proba.reshape(-1, 1)
        if proba.ndim != 2 or proba.shape[1] != outputs:  # two of three columns were labelled without a word
            raise DataError(f"proba must be (rows, {outputs}), as predict_output gives it; got shape {proba.shape}")
        return self.decider.classes(self.task, proba, threshold)

    def predict_output(self, X: np.ndarray, batch_size: int = 8192, features: list[str] | None = None,
                       first_row: int = 0, member_logits: list | None = None) -> np.ndarray:
        """Predictions for raw feature rows X (n, d): class probabilities (softmax or sigmoid per the
        training loss, averaged over the members) or regression values (averaged).

        The temperature applies to the members' mean probability p (softmax(log p / T), or
        sigmoid(logit p / T)), so calibration never changes the most probable class; for one network this is
        softmax(z / T) of its logits z.

        X's columns are ``feature_names`` in order, or ``features`` (any order, at least every feature
        a member uses); a DataFrame's are matched by name (``inputs``). ``batch_size`` is rounded to whole
        ``row_block``s: results do not depend on it. An output that is not finite (a value so far outside the training data that the network's arithmetic
        overflows) is a DataError naming its row, counted from ``first_row`` + 1.

        ``member_logits``: a list that receives, per block of rows, the list of every member's raw outputs
        (float64, (rows, k)): what prediction sets compare with the members' held-out scores (``conformal``)."""
        X, features = self.inputs(X, features)
        if features is not None and len(features) != X.shape[1]:
            raise DataError(f"features= gives {len(features)} names for X's {X.shape[1]} columns")
        columns = self._feature_maps(features)[0]
        sparse = is_sparse(X)  # scipy.sparse: densified one row block at a time
        step = self.row_block if sparse else max(1, batch_size // self.row_block) * self.row_block
        outs = []
        for s in range(0, X.shape[0], step):
            block, logged = (X[s : s + step].toarray() if sparse else X[s : s + step]), False
            raw = None if member_logits is None else []
            with np.errstate(over="ignore", invalid="ignore"):  # checked below, with the row named
                if len(self.members) == 1:
                    out = self._member_output(self.members[0], block, columns[0], True, False, raw)
                else:
                    block, logged = self._shared_log1p(block, features)
                    total = self._member_output(self.members[0], block, columns[0], False, logged, raw)
                    for member, cols in zip(self.members[1:], columns[1:]):
                        total += self._member_output(member, block, cols, False, logged, raw)
                    out = self.recalibrated(temper(total / len(self.members), self.temperature,
                                                   self.output_activation()))
            if raw is not None:
                member_logits.append(raw)
            if not np.isfinite(out).all():
                infinite = np.isinf(block) if block.dtype.kind == "f" else None  # (looked for only here: no cost)
                if infinite is not None and infinite.any():  # an infinite input, not an overflow
                    i, j = (int(v[0]) for v in np.nonzero(infinite))
                    names = features or self.feature_names
                    name = repr(names[j]) if j < len(names) else f"column {j + 1}"
                    raise DataError(f"row {first_row + s + i + 1}: feature {name} is infinite; features must be "
                                    "finite numbers (NaN marks a missing value)")
                i = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
                raise DataError(f"row {first_row + s + i + 1}: the model's output is not finite (a feature value far "
                                f"outside the training data overflowed the network's {self.network.dtype.name} "
                                f"arithmetic{self._largest_input(block[i:i + 1], columns[0], logged)}); check that "
                                "row's values")
            outs.append(out)
        if not outs:
            return np.zeros((0, self.network.n_outputs))
        return np.concatenate(outs, axis=0)


def require_model(model, who: str) -> None:
    """A ConfigError unless ``model`` is a Model: a path given instead (or an estimator) failed with an AttributeError
    deep inside. ``who``: what takes it, e.g. "predict_stream takes"."""
    if isinstance(model, Model):
        return
    if isinstance(model, (str, os.PathLike)):
        hint = f": load it first, model_io.load({str(model)!r})"
    elif hasattr(model, "fit"):  # an estimator or anything else failed with an AttributeError inside to_bytes
        hint = ": a fitted estimator is saved with pickle or joblib; pipeline.train gives a Model"
    else:
        hint = ""
    raise ConfigError(f"{who} an mlpcli Model, got a {type(model).__name__}{hint}")


def save(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` atomically."""
    require_model(model, "model_io.save writes")
    data = to_bytes(model, path)
    atomic_write(path, lambda fh: fh.write(data))


def to_bytes(model: Model, path: str | os.PathLike = "the model file") -> bytes:
    """The bytes ``save`` writes (a zip of model.json and weights.npz), for a caller that writes them together
    with other outputs, all or none (``path``: named in errors)."""
    pre_meta, pre_arrays = model.preprocessor.state()
    arrays = {f"{_PRE}{k}": np.asarray(v) for k, v in pre_arrays.items()}
    members = []
    for i, m in enumerate(model.members):
        prefix = f"members/{i}/"
        arrays.update({f"{prefix}{_NET}{k}": v for k, v in m.network.get_state().items()})
        entry = {"architecture": m.network.config(), "target_scaling": m.target_scaling,
                 "shares_preprocessing": m.preprocessor is model.preprocessor}
        if not entry["shares_preprocessing"]:
            member_meta, member_arrays = m.preprocessor.state(checks=False)  # (the checks read the model's own)
            entry["preprocessing"] = member_meta
            arrays.update({f"{prefix}{_PRE}{k}": np.asarray(v) for k, v in member_arrays.items()})
        members.append(entry)
    trust = {}
    for key, part in (("conformal", model.conformal), ("ood", model.ood)):
        if part is not None:
            trust[key] = part.describe()
            arrays.update({f"{key}/{name}": np.asarray(v) for name, v in part.arrays().items()})
    arrays, aliases = _shared_member_arrays({k: _narrow(v) for k, v in arrays.items()})
    for name in ("training_rows", "cohort_rows"):  # fingerprints, not indices: never narrowed
        if getattr(model, name) is not None:
            arrays[name] = np.asarray(getattr(model, name), dtype=np.uint64)
    weights = _npz_bytes(arrays)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "task": model.task,
        "classes": list(model.classes),
        "feature_names": list(model.feature_names),
        "target_names": list(model.target_names),
        "loss": model.loss,
        "members": members,
        "temperature": temperature_field(model.temperature),  # a multi-label model's: a list, one per label
        **({"decision": model.decision.to_dict()} if model.decision is not None else {}),
        **({"recalibration": model.recalibration.to_dict()} if model.recalibration is not None else {}),
        "preprocessing": pre_meta,
        "array_shapes": {k: list(np.shape(v)) for k, v in arrays.items()},
        **({"array_aliases": aliases} if aliases else {}),
        "roles": model.roles,
        "config": model.config,
        "history": model.history,
        "split": model.split,
        "baseline": model.baseline,
        "fit": model.fit,
        "provenance": model.provenance,
        "extra": model.extra,
        **trust,
        **({"training_rows": {"n": len(model.training_rows)}} if model.training_rows is not None else {}),
        **({"cohort_rows": {"n": len(model.cohort_rows)}} if model.cohort_rows is not None else {}),
    }
    _compact_feature_lists(meta)
    text = json.dumps(meta, indent=1, default=json_default, allow_nan=True)
    size = len(text.encode())
    if size > model_check.MAX_JSON_BYTES:  # load would refuse the file; better to say so than to write it
        copies = 3 + 2 * sum(m.preprocessor is not model.preprocessor for m in model.members)
        raise ModelFileError(
            f"{path}: the model's model.json would be {size / 2**20:.1f} MiB, more than the "
            f"{model_check.MAX_JSON_BYTES / 2**20:.0f} MiB a model file may hold (loading refuses larger ones, a "
            f"guard against crafted files); it lists the {len(model.feature_names):,} input features {copies} times: "
            "train on fewer features or with fewer --folds")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        # model.json (text) deflates to a fifth; weights.npz is stored: trained weights and statistics are
        # nearly incompressible (deflate saved 8 % of 5.8 MB at 8,000 x 5,000 and took 0.15 s of the save)
        for member, payload, method in (("model.json", text, zipfile.ZIP_DEFLATED),
                                        ("weights.npz", weights, zipfile.ZIP_STORED)):
            # a fixed timestamp: the same model gives the same bytes
            info = zipfile.ZipInfo(member, date_time=_ZIP_TIME)
            info.compress_type = method
            zf.writestr(info, payload)
    return buf.getvalue()


def _compact_feature_lists(meta: dict) -> None:
    """model.json's feature lists as format 7 writes them, in place: a preprocessing leaves out
    ``feature_names_in`` (always the model's ``feature_names``) and ``kept_features`` when they are its
    reference's (the model's preprocessing: every input; a member's own: the model's preprocessing's kept
    features); ``model_check.expand_feature_lists`` puts them back. A 5-member model listed its features
    13 times: 15 MB of model.json at 60,000 Ensembl ids."""
    features, top = meta["feature_names"], meta["preprocessing"]
    kept = top["kept_features"]
    for entry in meta["members"]:
        pre = entry.get("preprocessing")
        if pre is not None:
            if pre["feature_names_in"] == features:
                del pre["feature_names_in"]
            if pre["kept_features"] == kept:
                del pre["kept_features"]
            else:  # all but a few of the reference's (constant genes of its rows): those few, in order
                mine = set(pre["kept_features"])
                left = [n for n in kept if n not in mine]
                if mine <= set(kept) and [n for n in kept if n in mine] == pre["kept_features"] \
                        and len(left) < len(pre["kept_features"]):
                    pre["kept_features_left_out"] = left
                    del pre["kept_features"]
    if top["feature_names_in"] == features:
        del top["feature_names_in"]
        if kept == features:
            del top["kept_features"]


def _narrow(array: np.ndarray) -> np.ndarray:
    """An integer array (feature indices, class and member numbers) as int32 when its values fit, as they
    always do (at most model_check.MAX_FEATURES features): half the bytes, the same numbers; loading widens
    them back to int64. Every format version accepts 1- to 8-byte integers there."""
    array = np.asarray(array)
    if array.dtype.kind in "iu" and array.dtype.itemsize > 4 and (
            array.size == 0 or (int(array.min()) >= -2**31 and int(array.max()) < 2**31)):
        return array.astype(np.int32)
    return array


def _shared_member_arrays(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(the arrays to store, aliases): an ensemble member's array whose dtype, shape and bytes are those of the
    same array of an earlier member is stored once, and model.json's ``array_aliases`` maps its name to the
    stored one's. Members fitted on the same features repeat their kept-feature indices, the missing-value fills
    (all NaN without --impute) and the zero shares of continuous data: 4 x 3 arrays of 20,000 features, 1.9 MB
    of a 5-member model's 16 MB.
    Bytes, not values, are compared, so NaN matches NaN and -0.0 is not taken for 0.0."""
    stored: dict[str, np.ndarray] = {}
    aliases: dict[str, str] = {}
    first: dict[str, list[str]] = {}  # the name under members/<i>/ -> the stored arrays of that name
    for key, array in arrays.items():
        if key.startswith("members/"):
            rest = key.split("/", 2)[2]
            for other in first.get(rest, ()):
                kept = stored[other]
                if kept.dtype == array.dtype and kept.shape == array.shape and \
                        np.ascontiguousarray(kept).tobytes() == np.ascontiguousarray(array).tobytes():
                    aliases[key] = other
                    break
            else:
                first.setdefault(rest, []).append(key)
        if key not in aliases:
            stored[key] = array
    return stored, aliases


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """What ``np.savez`` writes (a zip of ``.npy`` files, read back by ``np.load``), with fixed member
    timestamps: ``np.savez`` stamps the current time, so equal arrays would not give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asarray(array), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME), npy.getvalue())
    return buf.getvalue()


def load(path: str | os.PathLike) -> Model:
    """Read a model file; any defect is a ModelFileError naming the file and what is wrong.

    ``model_check.read`` checks every field of model.json and every array of weights.npz (shapes and
    dtypes from their headers before their data, then their values) against each other and against
    limits, so nothing here is built from an unchecked claim."""
    from .data import Preprocessor  # data imports pandas; keep model_io importable without it at module load

    if not isinstance(path, (str, os.PathLike)):  # a file object read as a path was "model file not found: <_io...>"
        raise ConfigError(f"model_io.load reads a model file by its path (a str or os.PathLike), got a "
                          f"{type(path).__name__}")
    checked = model_check.read(path)
    name, meta, arrays = checked.source, checked.meta, checked.arrays
    try:
        pre = Preprocessor.from_state(meta["preprocessing"], _under(arrays, _PRE))
        members = []
        for entry in checked.members:
            marr = _under(arrays, entry["prefix"])
            net = MLP(**entry["architecture"])
            net.set_state(_under(marr, _NET))
            net.release_training_memory()  # a loaded model predicts: no gradient buffer (allocated if it trains)
            member_pre = pre if entry["shares_preprocessing"] else Preprocessor.from_state(
                entry["preprocessing"], _under(marr, _PRE))
            members.append(Member(net, member_pre, entry["target_scaling"]))
    except ModelFileError as exc:  # Preprocessor.from_state's own checks; model_check has made them moot
        raise ModelFileError(f"{name}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:  # likewise: a disagreement model_check missed
        raise ModelFileError(f"{name}: model.json does not describe a consistent model ({type(exc).__name__}: {exc})") from None
    temperature = meta.get("temperature")
    conformal_data, ood_basis = _trust(meta, arrays)
    return Model(
        conformal=conformal_data,
        ood=ood_basis,
        members=members,
        preprocessor=pre,
        temperature=(None if temperature is None else np.asarray(temperature, dtype=np.float64)
                     if isinstance(temperature, list) else float(temperature)),
        decision=Decision.from_dict(meta["decision"]) if meta.get("decision") else None,
        recalibration=_recalibration(meta.get("recalibration")),
        task=meta["task"],
        classes=list(meta["classes"]),
        feature_names=list(meta["feature_names"]),
        target_names=list(meta.get("target_names") or []),
        loss=meta["loss"],
        roles=meta.get("roles") or {},
        config=meta.get("config") or {},
        history=meta.get("history") or [],
        split=meta.get("split") or {},
        baseline=meta.get("baseline") or {},
        fit=meta.get("fit") or {},
        provenance=meta.get("provenance") or {},
        extra=meta.get("extra") or {},
        training_rows=np.array(arrays["training_rows"]) if "training_rows" in arrays else None,
        cohort_rows=np.array(arrays["cohort_rows"]) if "cohort_rows" in arrays else None,
        format_version=int(meta["format_version"]),
    )


def _recalibration(d: dict | None):
    """The model's recalibration for a population (format 14, checked by ``model_check``), or None."""
    if not d:
        return None
    from .recalibration import Recalibration

    return Recalibration.from_dict(d)


def _trust(meta: dict, arrays: dict[str, np.ndarray]):
    """The prediction sets' calibration and the out-of-distribution basis, when the file has them (both
    checked by ``model_check``); None for files written before they existed."""
    from .conformal import ConformalCalibration
    from .ood import OODBasis

    conformal_data = ood_basis = None
    if meta.get("conformal") is not None:
        c, a = meta["conformal"], _under(arrays, "conformal/")
        conformal_data = ConformalCalibration(
            aps=np.array(a["aps"], dtype=np.float64), lac=np.array(a["lac"], dtype=np.float64),
            label=np.array(a["label"], dtype=np.int64), member=np.array(a["member"], dtype=np.int64),
            weight=np.array(a["weight"], dtype=np.float64), source=c["source"], n_rows=int(c["n_rows"]),
            cohort=c.get("cohort"))
    if meta.get("ood") is not None:
        a = _under(arrays, "ood/")
        ood_basis = OODBasis(**{key: np.array(a[key], dtype=np.float64) for key in
                                ("mean", "components", "reference", "reference_residual", "calibration")})
        if "reference_label" in a:  # format 4: the class-relative distance too
            ood_basis.reference_label = np.array(a["reference_label"], dtype=np.int64)
            ood_basis.class_scale = np.array(a["class_scale"], dtype=np.float64)
            ood_basis.part_calibration = np.array(a["part_calibration"], dtype=np.float64)
        ood_basis.weighted = bool(meta["ood"].get("weighted", False))
        ood_basis.streamed = bool(meta["ood"].get("streamed", False))
        ood_basis.cohort = meta["ood"].get("cohort")  # format 15: calibrated on a labelled cohort (recalibrate)
    return conformal_data, ood_basis


def _under(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
