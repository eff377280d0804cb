"""scikit-learn estimators around the NumPy engine: ``MLPClassifier`` and ``MLPRegressor``.

They follow scikit-learn's conventions, so they work in a ``Pipeline``, ``cross_validate`` and
``GridSearchCV`` and pass ``sklearn.utils.estimator_checks`` in the configurations ``tests/test_estimators.py``
checks (the default classifier, one without early stopping, the default regressor), but for the checks listed
there as expected to fail, and why. Other settings fail a few more, for reasons of the method, not bugs:
``dtype="float32"`` fails ``check_methods_subset_invariance`` by round-off (~1e-7: a row's output depends on how
many rows one product holds, through BLAS's kernels); ``check_class_weight_classifiers`` fails with early stopping on
other losses (focal, hinge) as with cross-entropy, and with ``optimizer="lbfgs"`` and a hidden layer without
``l2`` (an unregularised network fits the rows weighted 1000x exactly whatever the weights); and
``check_sample_weight_equivalence_*`` fails with ``dropout``, ``augment_noise`` or ``batchnorm`` even without early
stopping (a repeated row draws its own dropout mask and noise, and counts twice in its batch's statistics; a weight of
2 does neither). ``loss="bce"``, ``"focal"`` and ``"hinge"`` are tagged ``multi_class=False`` and refuse a multiclass
target in scikit-learn's words, so the checks test them on two classes and on multi-label targets::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from mlpcli.estimators import MLPClassifier

    model = make_pipeline(StandardScaler(), MLPClassifier(hidden=(64,), dropout=0.3, l2=1e-4))
    model.fit(X, y, mlpclassifier__groups=patients)   # early stopping on a grouped validation split

Differences from ``mlpcli train`` worth knowing:

* **One network with fixed defaults**, not ``train``'s model: no cross-fitted ensemble of 5 members, no choice
  between softmax regression and a hidden layer (``hidden=(128, 64)``, the CLI's ``--hidden auto``), no
  dropout (``dropout=0.0``; the CLI 0.3), a fixed ``lr=1e-3`` and ``l2=0`` (the CLI's ``auto`` rules scale
  them to the data), no input noise, no temperature calibration and argmax labels (the CLI's
  ``--decision auto`` may label by class shares). ``mlpcli.pipeline.train`` builds what the command does.
* **No preprocessing inside.** Features are used as given; put a ``StandardScaler`` (and any
  ``log1p`` / feature filter) in front of the estimator in a ``Pipeline``, so that cross-validation
  fits it on each fold's training rows.
* **Seeding** is ``random_state`` (scikit-learn's name for the CLI's ``--seed``). An int seeds the
  initial weights, the dropout masks, the minibatch order and the early-stopping split, so the same
  data, parameters and ``random_state`` give the same model; ``None`` draws a fresh seed per fit.
  The default is 0, as on the command line.
* **Optimizer**: ``optimizer="adam"`` with Adam's beta2 of 0.999 and no weight decay by default (the CLI
  trains with adamw, ``--weight-decay 1.0`` and beta2 0.95). ``weight_decay`` is AdamW's: None (0.01
  with ``optimizer="adamw"``); set with adam or sgd, which would ignore it, it is a ValueError at fit.
* **dtype** defaults to ``"float64"`` (exact enough for scikit-learn's invariance checks); pass
  ``dtype="float32"`` (or ``np.float32``) for the CLI's faster arithmetic.
* **Early stopping** (``early_stopping=True``) holds out ``validation_fraction`` of the rows —
  of the groups when ``fit(..., groups=...)`` is given (no group on both sides), stratified by class
  for classifiers — and restores the weights of the epoch with the lowest validation loss. A class
  with one sample (with ``groups``: from one group) always trains, the others are held out. With
  ``early_stopping=False`` the network trains for ``epochs`` epochs on every row, as it does with
  ``optimizer="lbfgs"`` whatever ``early_stopping`` (trained to convergence, nothing to stop). With
  ``sklearn.set_config(enable_metadata_routing=True)``, ``.set_fit_request(groups=True)`` routes a CV
  loop's ``params={"groups": patients}`` to both the splitter and the estimator.
* **Class weights** (``class_weight="balanced"`` or ``{label: weight}``) multiply each sample's loss
  by its class's weight, which for cross-entropy and binary cross-entropy is the same as the CLI's
  per-class factors; multi-label targets take ``"balanced"`` (per-label positive/negative weights).
* **Threads** (``threads``): BLAS threads for fitting and predicting, as the CLI's ``--threads``; None
  (the default) is the CLI's default, 1 (``mlpcli.parallel.DEFAULT_BLAS_THREADS``: networks of this
  size gain nothing from more, and on a busy machine lose many times over). More than the cores this
  process may use (affinity, cgroup quota, ``SLURM_CPUS_PER_TASK``) gives a UserWarning. To use many
  cores, fit side by side (``GridSearchCV(n_jobs=...)``, ``cross_validate(n_jobs=...)``).
"""

from __future__ import annotations

import numbers
import re
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from . import data
from .config import AUTO, BASE_PATIENCE, MAX_SEED, TrainOptions
from .auto_defaults import resolve
from .data.cells import first_non_number
from .data.limits import VALUE_LIMIT, first_beyond_limit
from .engine import MLP
from .engine.functional import sigmoid, softmax
from .errors import ConfigError, DataError, MlpcliError
from .metrics import class_proba, predicted_class
from .model_selection import build_loss, holdout_keeping_scarce
from .model_selection.fitting import check_memory, start_at_prior
from .parallel import blas_cap, default_blas_threads, threads_warning
from .training import FitConfig, fit
from .centred_rows import dense_rows, is_sparse

# Parameters that are train options too: checked by TrainOptions' declaration.
_SHARED_PARAMS = ("activation", "dropout", "batchnorm", "l1", "l2", "optimizer", "lr", "momentum", "weight_decay",
                  "batch_size", "epochs", "patience", "min_delta", "lr_schedule", "augment_noise", "clip_norm", "dtype")

__all__ = ["MLPClassifier", "MLPRegressor"]

_CLASSIFIER_LOSSES = ("auto", "ce", "bce", "focal", "hinge")
_REGRESSOR_LOSSES = ("auto", "mse", "mae", "huber")
_BINARY_ONLY_LOSSES = ("bce", "focal", "hinge")  # sigmoid outputs: two classes, or a 0/1 multi-label matrix
_PREDICT_CHUNK = 8192  # rows per forward pass at prediction time, to bound memory


class _BaseMLP(BaseEstimator):
    """Shared fitting code; subclasses encode targets and turn raw outputs into predictions."""

    _losses: tuple[str, ...] = ()

    # ------------------------------------------------------------------ parameters, checked in one place
    def _check_params(self) -> None:
        """Every parameter that mirrors a train option is checked by the option's one declaration
        (``TrainOptions.validate``); the estimators' own ones here."""
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ValueError(f"{type(self).__name__}: {name} {what}, got {getattr(self, name)!r}")

        hidden = self._hidden()
        need(hidden is not None and all(h >= 1 for h in hidden), "hidden",
             "must be a sequence of positive layer widths such as (128, 64), or () for none")
        need(isinstance(self.early_stopping, (bool, np.bool_)), "early_stopping", "must be True or False")
        fraction = self.validation_fraction
        need(isinstance(fraction, numbers.Real) and not isinstance(fraction, bool) and 0 < fraction < 1,
             "validation_fraction", "must be a number in (0, 1)")
        need(self.early_stopping or self.lr_schedule != "plateau", "lr_schedule",
             "'plateau' watches the validation loss and needs early_stopping=True")
        need(self.loss in self._losses, "loss", f"must be one of {', '.join(self._losses)}")
        seed = self.random_state  # anything else ('x', 1.5, a numpy Generator) failed inside NumPy, unnamed
        need(seed is None or isinstance(seed, np.random.RandomState) or isinstance(seed, numbers.Integral)
             and (isinstance(seed, bool) or 0 <= seed <= MAX_SEED), "random_state",
             "must be None, a whole number in [0, 2**32 - 1] or a numpy RandomState")
        need(self.threads is None or isinstance(self.threads, numbers.Integral) and not isinstance(self.threads, bool)
             and self.threads >= 1, "threads", "must be None (1 thread) or a whole number >= 1")
        try:
            self._as_train_options().validate()
        except MlpcliError as exc:
            raise ValueError(f"{type(self).__name__}: {_as_parameters(exc)}") from None
        # the train option's default dropout (0.3) is resolved to 0 for lbfgs; an estimator's default is 0, so a rate
        # given here is asked for, and lbfgs would train without it, as it refuses l1 and batchnorm
        need(self.optimizer != "lbfgs" or float(self.dropout) == 0.0, "dropout",
             "cannot apply with optimizer='lbfgs' (it minimises one fixed objective on every row: no random units); "
             "use dropout=0.0, or a minibatch optimizer")
        need(self.optimizer != "lbfgs" or self.clip_norm is None, "clip_norm",
             "cannot apply with optimizer='lbfgs' (it takes whole line-search steps, no gradient clipping); use "
             "clip_norm=None, or a minibatch optimizer")
        # Adam and SGD have no decoupled decay: a decay asked for with them would be silently ignored (0: none,
        # which is true of them). Their weight penalty is l2.
        if not (self.weight_decay is None or self.weight_decay == 0 or self.weight_decay == AUTO
                or self.optimizer == "adamw"):
            raise ValueError(f"{type(self).__name__}: weight_decay={self.weight_decay!r} applies to optimizer='adamw' "
                             f"only (decoupled decay); optimizer={self.optimizer!r} would ignore it: use "
                             "optimizer='adamw', or l2 for a weight penalty with adam or sgd, or leave "
                             "weight_decay=None")

    def _as_train_options(self) -> TrainOptions:
        """The parameters that mirror train options, as TrainOptions (checked and sized by the CLI's code)."""
        shared = {name: getattr(self, name) for name in _SHARED_PARAMS}
        shared = {k: (bool(v) if isinstance(v, np.bool_) else v) for k, v in shared.items()}
        shared["weight_decay"] = self._weight_decay()
        shared["dtype"] = self._dtype()
        return TrainOptions(hidden=self._hidden(), **shared)

    def _dtype(self):
        """``dtype`` by name: scikit-learn code writes ``np.float32`` (or ``np.dtype("float32")``, ``float``) where
        the command line writes "float32"; a string, or anything NumPy cannot read, is left for the check."""
        if isinstance(self.dtype, str) or self.dtype is None:
            return self.dtype
        try:
            return np.dtype(self.dtype).name
        except TypeError:
            return self.dtype

    def _weight_decay(self):
        """``weight_decay``, None being AdamW's default decay (``FitConfig``'s), "auto" the command line's (1.0 for a
        classifier, 0.01 for a regressor, made concrete by ``_resolved``); used by optimizer='adamw' only."""
        return FitConfig.weight_decay if self.weight_decay is None else self.weight_decay

    def _hidden(self) -> list[int] | None:
        h = self.hidden
        if isinstance(h, numbers.Integral) and not isinstance(h, bool):
            return [int(h)]
        try:
            widths = list(h)
        except TypeError:
            return None
        if not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) for w in widths):
            return None
        return [int(w) for w in widths]

    def _seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool):
            return int(self.random_state)  # the CLI's --seed, used as is (checked in _check_params)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _resolved(self, n_train: int, n_features: int) -> TrainOptions:
        """The train options with every "auto" (batch_size, epochs, l2, lr, augment_noise) made concrete for
        ``n_train`` training rows of ``n_features`` features, as `mlpcli train` makes them."""
        return resolve(self._as_train_options(), n_train, n_features,
                       "regression" if isinstance(self, RegressorMixin) else None)

    def _fit_config(self, seed: int, resolved: TrainOptions) -> FitConfig:
        return FitConfig(
            optimizer=self.optimizer, lr=float(resolved.lr), momentum=float(self.momentum),
            weight_decay=float(resolved.weight_decay), l1=float(self.l1), l2=float(resolved.l2),
            batch_size=int(resolved.batch_size), epochs=int(resolved.epochs),
            patience=(None if not self.early_stopping else BASE_PATIENCE if self.patience == AUTO else int(self.patience)),
            adaptive_patience=self.early_stopping and self.patience == AUTO,  # as `mlpcli train --patience auto`
            min_delta=float(self.min_delta),
            lr_schedule=self.lr_schedule, augment_noise=float(resolved.augment_noise),
            clip_norm=None if self.clip_norm is None else float(self.clip_norm), seed=seed,
        )

    # ------------------------------------------------------------------ threads
    @contextmanager
    def _blas_threads(self):
        """BLAS capped at ``threads`` (None: the CLI's default) while the network computes."""
        threads = getattr(self, "threads", None)  # estimators pickled before the parameter existed
        with blas_cap(int(threads) if threads is not None else default_blas_threads()):
            yield

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, y, sample_weight, groups, regression: bool):
        """Fit, or leave the estimator as it was: a fit that fails (a bad target, a split that cannot be made,
        divergence) or is interrupted (Ctrl-C: KeyboardInterrupt, as from any Python call) changes no fitted
        attribute, so a previous fit's ``classes_`` never meet another fit's network."""
        self._check_params()
        warning = threads_warning(self.threads)
        if warning is not None:
            warnings.warn(f"{type(self).__name__}: {_as_parameters(warning)}", UserWarning, stacklevel=3)
        before = dict(self.__dict__)  # attributes are replaced by a fit, never changed in place
        try:
            with self._blas_threads():
                return self._fit_capped(X, y, sample_weight, groups, regression)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit_capped(self, X, y, sample_weight, groups, regression: bool):
        if not regression:
            _check_labels(y, type(self).__name__)
        elif y is not None and not is_sparse(y):
            _check_numbers(y, type(self).__name__)
        with _text_named(self, X):
            X, y = validate_data(self, X, y, accept_sparse="csr", dtype=(np.float64, np.float32), multi_output=True,
                                 y_numeric=regression)
        n = X.shape[0]
        if self._dtype() == "float32":  # cast to float32 below, such a value would be inf: "training diverged"
            _refuse_beyond_float32(X, self)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if groups is not None:
            groups = _checked_groups(groups, n)
        # task: binary | multiclass | multilabel | regression; Y: what the loss expects;
        # strata: class indices for stratified splitting (None for multilabel / regression)
        task, Y, strata = self._encode_targets(y)
        seed = self._seed()
        options = self._train_options(seed)
        ds = data.Dataset(X=X, y=Y, feature_names=[f"x{j}" for j in range(X.shape[1])], task=task,
                          classes=list(self._class_names(Y)))
        try:
            setup = build_loss(options, ds, Y)
        except MlpcliError as exc:
            raise ValueError(f"{type(self).__name__}: {_as_parameters(exc)}") from None
        weights = self._with_class_weights(weights, setup, Y, strata)
        targets = setup.targets(Y)
        if regression:  # train on standardised targets, like the CLI; predictions are scaled back
            # a target that never varies is predicted as that value exactly: its scale is 0 at prediction (it
            # was 1, and the network's untrained output for it, noise of about ±1, came back in its units)
            constant = targets.min(axis=0) == targets.max(axis=0) if len(targets) else np.zeros(targets.shape[1], bool)
            with np.errstate(over="ignore"):
                mean, std = _weighted_moments(targets, weights)
                mu = np.where(constant, targets[0] if len(targets) else 0.0, mean)
                sd = np.where(constant, 0.0, std)
            if not (np.isfinite(mu).all() and np.isfinite(sd).all()):  # a target near 1e300: its square is inf,
                big = np.maximum(np.abs(targets).max(axis=0), np.finfo(np.float64).tiny)  # which made every
                # prediction inf; so in units of the column's largest value
                mean, std = _weighted_moments(targets / big, weights)
                mu = np.where(constant, targets[0], big * mean)
                sd = np.where(constant, 0.0, big * std)
            self._y_mean, self._y_scale = mu, sd
            targets = (targets - mu) / np.where(sd > 0, sd, 1.0)

        tr = va = None
        # lbfgs minimises one fixed objective to convergence on every row (as scikit-learn's MLP with its lbfgs
        # solver): no epoch to stop at, so no rows are held out for one (they were, and never trained on)
        if self.early_stopping and self.optimizer != "lbfgs":
            tr, va = _early_stopping_split(ds, groups, float(self.validation_fraction), seed)
        if tr is not None and weights is not None:
            for side, rows, so in (("trained on", tr, "there is nothing to learn from"),
                                   ("held out for early stopping", va, "their loss cannot choose an epoch")):
                if not weights[rows].any():  # a loss of 0 whatever the weights: nothing learnt, or epoch 1 kept
                    raise ValueError(f"{type(self).__name__}: the samples {side} ({len(rows)} of {n}) all have "
                                     f"sample_weight 0, so {so}; weight more samples or classes, or set "
                                     "early_stopping=False")
        n_train = n if tr is None else len(tr)
        if self.batchnorm and n_train < 2:  # the fit loop's advice (a larger --batch-size) would not help here
            after = " after the early-stopping hold-out" if tr is not None else ""
            raise ValueError(f"{type(self).__name__}: batchnorm=True needs 2 or more training rows to normalise a "
                             f"minibatch, got 1 sample{after}; give more samples or set batchnorm=False")
        resolved = self._resolved(n_train, X.shape[1])
        try:  # a network whose training cannot fit in memory is refused before anything is allocated
            check_memory(resolved, X.shape[1], setup.n_outputs, n)
        except MlpcliError as exc:
            raise ValueError(f"{type(self).__name__}: {_as_parameters(exc)}") from None
        # (n, d); a sparse X (single cells: adata.X) stays CSR, densified a minibatch at a time by the fit loop
        Xn = X.astype(self._dtype()) if is_sparse(X) else np.ascontiguousarray(X, dtype=self._dtype())
        net = MLP(X.shape[1], self._hidden(), setup.n_outputs, activation=self.activation, dropout=float(self.dropout),
                  batchnorm=bool(self.batchnorm), seed=seed, dtype=self._dtype())
        start_at_prior(net, setup.loss, targets if tr is None else targets[tr])
        config = self._fit_config(seed, resolved)
        try:
            if tr is not None:
                w_tr, w_va = (None, None) if weights is None else (_mean_one(weights[tr]), _mean_one(weights[va]))
                result = fit(net, setup.loss, Xn[tr], targets[tr], Xn[va], targets[va], config,
                             sample_weight=w_tr, val_sample_weight=w_va)
            else:  # every row, config.epochs epochs, the final weights
                result = fit(net, setup.loss, Xn, targets, None, None, config, sample_weight=_mean_one(weights))
        except MlpcliError as exc:  # divergence: a ValueError like every other bad-fit in sklearn
            _refuse_unchecked_gaps(self, X, y, weights)  # what sklearn's assume_finite=True let through, said as such
            raise ValueError(f"{type(self).__name__}: {_as_parameters(exc)}") from None
        if result.interrupted:  # the fit loop keeps what it trained for the CLI; a library call stops
            raise KeyboardInterrupt
        if tr is not None and result.history and not np.isfinite(result.best_val_loss):
            # NaN never compares lower: epoch 1's weights were kept as "best" and returned without a word (train
            # goes on with a warning, its other members scoring; here this network is the model)
            _refuse_unchecked_gaps(self, X, y, weights)
            raise ValueError(f"{type(self).__name__}: the early-stopping loss was not finite at any of the "
                             f"{len(result.history)} epochs ({result.best_val_loss}): a held-out row's values are so "
                             "large that the network's outputs overflow, so no epoch can be chosen; rescale the "
                             "features (StandardScaler, log1p) or set early_stopping=False")
        net.release_training_memory()  # the fitted network keeps its parameters, not its gradients and scratch
        self.history_ = result.history
        self.best_epoch_ = int(result.best_epoch)
        self.n_iter_ = int(result.epochs_run)
        self.loss_curve_ = [row["train_loss"] for row in self.history_]
        self.network_ = net
        self.loss_ = setup.loss.name
        self.n_outputs_ = setup.n_outputs
        return self

    def _train_options(self, seed: int) -> TrainOptions:
        return TrainOptions(loss=self.loss, seed=seed)

    def _with_class_weights(self, weights, setup, Y, strata):
        return weights

    def _class_names(self, Y) -> list:
        return []

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR X (single-cell counts) is densified a minibatch or chunk at a time
        return tags

    # ------------------------------------------------------------------ prediction
    def _raw_output(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        with _text_named(self, X):
            X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=(np.float64, np.float32))
        net = self.network_
        with self._blas_threads(), np.errstate(over="ignore", invalid="ignore"):  # checked below, the row named
            outs = [net.forward(np.asarray(dense_rows(X, s, s + _PREDICT_CHUNK), dtype=net.dtype))  # sparse: densified
                    for s in range(0, X.shape[0], _PREDICT_CHUNK)]
        if not outs:
            return np.zeros((0, net.n_outputs))
        out = np.concatenate(outs, axis=0).astype(np.float64)  # (n, n_outputs)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():  # NaN probabilities would be predicted as classes_[0] without a word
            i = int(np.flatnonzero(bad)[0])
            row = np.asarray(dense_rows(X, i, i + 1), dtype=np.float64)
            if not np.isfinite(row).all():  # validate_data lets them through under sklearn's assume_finite=True
                raise ValueError(f"{type(self).__name__}: row {i} (0-based) of X holds a missing or infinite value "
                                 "(sklearn's assume_finite=True skipped the check): the network's output there is "
                                 "not a number; impute or drop it")
            wider = ", or use dtype='float64'" if net.dtype != np.float64 else ""
            raise ValueError(f"{type(self).__name__}: the network's output is not finite for row {i} (0-based): a "
                             f"value far outside the training data overflowed its {net.dtype.name} arithmetic; "
                             f"check that row{wider}")
        return out

    # ------------------------------------------------------------------ pickling
    # The network keeps its parameters as views into one flat buffer; pickle its state instead
    # so that an unpickled estimator is an ordinary, consistent MLP again.
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns the live __dict__
        net = state.pop("network_", None)
        if net is not None:
            state["_network_pickle"] = (net.config(), net.get_state())
        return state

    def __setstate__(self, state):
        state = dict(state)
        packed = state.pop("_network_pickle", None)
        super().__setstate__(state)
        if packed is not None:
            config, arrays = packed
            net = MLP(**config)
            net.set_state(arrays)
            net.release_training_memory()  # as the fit left it: parameters, no gradients
            self.network_ = net


# CLI flags whose parameter has another name here
_PARAMETER_NAMES = {"val-size": "validation_fraction", "seed": "random_state"}


def _as_parameters(exc: Exception) -> str:
    """The library's messages name CLI flags (``--label-smoothing``); here they are parameters."""
    return re.sub(r"--([a-z][a-z-]*)", lambda m: _PARAMETER_NAMES.get(m.group(1), m.group(1).replace("-", "_")),
                  str(exc))


def _first_non_number(y):
    """The first value of ``y`` that is not a number, as written (``'b'``, not ``np.str_('b')``)."""
    for value in np.ravel(np.asarray(y, dtype=object)):
        try:
            float(value)
        except (TypeError, ValueError):
            return _as_written(value)
    return None


def _check_numbers(y, who: str) -> None:
    """Refuse a regression target holding text, naming the first such value: NumPy's "could not convert string to
    float: np.str_('b')" (or, for a pandas column of text, scikit-learn's "...: 'b'") named neither y nor the fix."""
    if np.asarray(y).dtype.kind == "c":  # NumPy would drop the imaginary parts with a ComplexWarning
        raise ValueError(f"{who}: Complex data not supported: y must be real numbers")
    try:
        np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: y must be numbers, got {_first_non_number(y)!r}; for class labels use "
                         "MLPClassifier") from None


def _missing(values: np.ndarray) -> np.ndarray:
    """Which entries of ``values`` are missing (None, NaN, pandas' NA), as a bool array of its shape."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        flat = [v is None or (isinstance(v, numbers.Real) and v != v) or type(v).__name__ == "NAType"
                for v in values.ravel()]
        return np.array(flat, dtype=bool).reshape(values.shape)
    return np.zeros(values.shape, dtype=bool)


def _check_labels(y, who: str) -> None:
    """Refuse class labels with a missing value (None, NaN, pandas' NA: a blank in a sample sheet) or a mix of
    text and numbers, naming the row; NumPy's sort of them failed with "'<' not supported between instances
    of 'NoneType' and 'str'", and a NaN with "Input contains NaN", naming neither y nor the sample."""
    y = np.asarray(y)  # a list of text and numbers is text here, as in scikit-learn: only objects can mix
    if y.ndim == 0 or y.dtype.kind not in "fO" or y.size == 0:  # (a sparse matrix is 0-d here)
        return
    per_row = y.size // len(y)  # a 0/1 matrix (n, k) for multi-label
    missing = _missing(y)
    if missing.any():
        row = int(np.flatnonzero(missing)[0]) // per_row
        raise ValueError(f"{who}: y has a missing label (None or NaN) at row {row} (0-based); drop the unlabelled "
                         "samples before fitting")
    if y.dtype.kind == "O":
        text = np.array([isinstance(v, (str, bytes)) for v in y.ravel()], dtype=bool)
        if 0 < text.sum() < text.size:
            i, j = int(np.flatnonzero(text)[0]), int(np.flatnonzero(~text)[0])
            raise ValueError(f"{who}: y mixes text and number labels ({_as_written(y.ravel()[i])!r} at row "
                             f"{i // per_row}, {_as_written(y.ravel()[j])!r} at row {j // per_row}, 0-based); give "
                             "every label as text or every label as a number")


@contextmanager
def _text_named(estimator, X):
    """A text cell in X (a sample-sheet column such as "batch" left in the frame) is a ValueError naming its column
    and row; NumPy's "could not convert string to float: 'b2'" named neither."""
    try:
        yield
    except ValueError as exc:
        if "could not convert" not in str(exc) or is_sparse(X) or np.ndim(X) != 2:
            raise
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        found = first_non_number(frame, list(frame.columns))
        if found is None:
            raise
        row, j, value, count = found
        column = f"column {frame.columns[j]!r}" if isinstance(X, pd.DataFrame) else f"column {j}"
        more = f" and {count - 1} more row{'s' * (count > 2)}" if count > 1 else ""
        raise ValueError(f"{type(estimator).__name__}: X {column} holds text: {_as_written(value)!r} at row {row} "
                         f"(0-based){more}; the network takes numbers: drop that column, or encode it (a "
                         "OneHotEncoder in a ColumnTransformer)") from None


def _refuse_unchecked_gaps(est, X, y, sample_weight: np.ndarray | None = None) -> None:
    """A ValueError naming the first missing or infinite value of X, y or sample_weight, if any: validate_data lets
    them through under sklearn's assume_finite=True, and training then "diverged" at epoch 1 (or had no finite
    validation loss), whose advice (a lower lr) no lr follows. For a float32 network, likewise a value of X whose
    square overflows float32 (Adam squares gradients, which grow with the inputs). Looked for only once a fit has
    failed, so the setting still skips the pass on good data."""
    values = X.data if is_sparse(X) else np.asarray(X)
    if not np.isfinite(values).all():
        where = "X" if not is_sparse(X) else "X's stored values"
        row = int(np.argwhere(~np.isfinite(np.asarray(X)))[0][0]) if not is_sparse(X) else None
        at = f"row {row} (0-based) of {where}" if row is not None else where
        raise ValueError(f"{type(est).__name__}: {at} holds a missing or infinite value (sklearn's assume_finite=True "
                         "skipped the check); impute or drop it") from None
    if y is not None and not is_sparse(y):
        target = np.asarray(y)
        if target.dtype.kind in "fc" and not np.isfinite(target).all():
            row = int(np.argwhere(~np.isfinite(target.reshape(len(target), -1)))[0][0])
            raise ValueError(f"{type(est).__name__}: row {row} (0-based) of y holds a missing or infinite value "
                             "(sklearn's assume_finite=True skipped the check); drop it") from None
    if sample_weight is not None and not np.isfinite(sample_weight).all():
        row = int(np.flatnonzero(~np.isfinite(sample_weight))[0])
        raise ValueError(f"{type(est).__name__}: sample_weight[{row}] is {sample_weight[row]} (sklearn's "
                         "assume_finite=True skipped the check); give every sample a finite weight") from None
    if est._dtype() == "float32" and values.size:
        big = np.abs(values) > FLOAT32_SQUARE_LIMIT
        if big.any():
            where = "X's stored values" if is_sparse(X) else \
                "row {}, column {} (0-based) of X".format(*np.argwhere(np.abs(np.asarray(X)) > FLOAT32_SQUARE_LIMIT)[0])
            raise ValueError(f"{type(est).__name__}: {where} holds {values[big][0]:.3g}, whose square overflows "
                             "float32, so a float32 network's training overflowed; rescale that feature (log1p, "
                             "StandardScaler) or use dtype='float64'") from None


FLOAT32_SQUARE_LIMIT = float(np.sqrt(np.finfo(np.float32).max))  # ~1.8e19


def _refuse_beyond_float32(X, estimator) -> None:
    """A value of X (n, d) beyond float32's range is a ValueError naming its row and column: cast for a float32
    network it became inf, and the fit failed with "training diverged ... lower lr", which no lr fixes."""
    at = data.row_view.sparse_first_beyond_limit(X) if is_sparse(X) else first_beyond_limit(X)
    if at is None:
        return
    i, j = at
    names = getattr(estimator, "feature_names_in_", None)
    where = f"row {i} (0-based), column {names[j]!r}" if names is not None else f"row {i}, column {j} (0-based)"
    raise ValueError(f"{type(estimator).__name__}: X holds {X[i, j]:.4g} at {where}, beyond "
                     f"±{VALUE_LIMIT:.3g}, the largest value dtype='float32' can hold; rescale that feature "
                     "(log1p, StandardScaler) or use dtype='float64'")


def _as_written(value):
    """A NumPy scalar as the Python value it stands for (``'b'``, not ``np.str_('b')``)."""
    return value.item() if isinstance(value, np.generic) else value


def _weighted_moments(Y: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, SD) (k,) of targets Y (n, k) under sample weights (n,), as of the rows repeated (unweighted without
    weights, or when they are all 0): the standardisation a weighted regression trains on."""
    if weights is None or not len(Y) or not weights.sum() > 0:
        return Y.mean(axis=0) if len(Y) else np.zeros(Y.shape[1]), Y.std(axis=0) if len(Y) else np.zeros(Y.shape[1])
    mean = np.average(Y, axis=0, weights=weights)
    return mean, np.sqrt(np.average((Y - mean) ** 2, axis=0, weights=weights))


def _mean_one(weights: np.ndarray | None) -> np.ndarray | None:
    """Sample weights (n,) scaled to mean 1 over the rows they weigh. The loss is the weighted sum over n rows, so
    unscaled weights moved the data term against the l2 penalty: weights x 10 fitted another model, and a weight
    of 2 was not a repeated row (scikit-learn's estimators: the same model to 1e-16). At mean 1 the loss is
    sum(w l) / sum(w), as for the rows repeated, and a minibatch's sum(w l) / b estimates it without bias."""
    if weights is None:
        return None
    mean = float(weights.mean()) if len(weights) else 0.0
    return weights / mean if mean > 0 else weights


def _checked_groups(groups, n: int) -> np.ndarray:
    """``groups`` (n,) as an array the splitters can sort: a missing group (None, NaN) is an error naming the
    row, not a TypeError from deep inside NumPy (None) or a silent "patient NaN" (NaN); labels of mixed types
    (1 and "p2", as a half-cleaned sample sheet gives) are compared as text."""
    shape = np.shape(groups)
    if not (len(shape) == 1 or len(shape) == 2 and shape[1] == 1):  # sklearn's column_or_1d would call it "y"
        raise ValueError(f"groups should be a 1d array (one group label per sample), got an array of shape {shape}")
    groups = column_or_1d(groups)
    if groups.shape[0] != n:
        raise ValueError(f"groups has {groups.shape[0]} entries for {n} samples")
    missing = _missing(groups)
    if missing.any():
        raise ValueError(f"groups has a missing value (None or NaN) at row {int(np.flatnonzero(missing)[0])} "
                         "(0-based); every sample needs its group (patient), or pass no groups")
    if groups.dtype.kind == "O":
        groups = groups.astype(str)  # sortable whatever the types; the same label is the same group
    return groups


def _early_stopping_split(ds: data.Dataset, groups, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) row indices holding out ``fraction`` for early stopping, by
    ``model_selection.holdout_keeping_scarce``: whole groups when ``groups`` is given, stratified by class when
    every class allows it, else at random; a class's only sample, or the only group of a class, trains (so
    that a grouped CV whose training part holds one patient of a rare class does not fail every fit)."""
    if groups is not None:  # the groups are fit's `groups`, as the messages say
        ds = data.Dataset(X=ds.X, y=ds.y, feature_names=ds.feature_names, task=ds.task, classes=ds.classes,
                          groups=np.asarray(groups), roles=data.Roles(target=[], group="groups"))
        if len(np.unique(groups)) < 2:
            raise ValueError("early stopping with groups needs at least 2 groups; pass more groups or set "
                             "early_stopping=False")
    try:
        return holdout_keeping_scarce(ds, fraction, seed)
    except (DataError, ConfigError) as exc:
        reason = _as_parameters(exc).removeprefix("cannot hold out whole groups: ")
        raise ValueError(f"cannot hold out {'whole groups' if groups is not None else 'rows'} for early stopping: "
                         f"{reason}; or set early_stopping=False") from None


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer-perceptron classifier on the mlpcli engine: binary, multiclass or multi-label.

    Parameters mirror ``mlpcli train``'s options (``hidden``, ``activation``, ``dropout``,
    ``batchnorm``, ``l1``, ``l2``, ``optimizer``, ``lr``, ``momentum``, ``weight_decay``,
    ``batch_size``, ``epochs``, ``patience``, ``min_delta``, ``lr_schedule``, ``augment_noise``,
    ``clip_norm``, ``loss``, ``class_weight``, ``label_smoothing``, ``pos_weight``, ``focal_gamma``,
    ``focal_alpha``, ``dtype``); ``random_state`` is the CLI's ``--seed``, ``threads`` its ``--threads``
    (BLAS threads; None: 1). Besides:

    early_stopping : hold out ``validation_fraction`` of the rows (of the groups when ``fit`` gets
        ``groups``) and restore the best epoch's weights; False trains ``epochs`` epochs on all rows.
    loss : "auto" is bce with one sigmoid output for two classes, ce (softmax) for more, and bce per
        label for a 2-D 0/1 target (multi-label); "ce", "focal" and "hinge" are also accepted.
    class_weight : None, "balanced", or a dict {class label: weight}.
    label_smoothing : ce's label smoothing (softmax outputs): with ``loss="auto"`` a two-class or multi-label
        target trains bce, which has none, so a value above 0 there is a ValueError at ``fit``; give
        ``loss="ce"`` to smooth a two-class target's labels (two softmax outputs).
    optimizer : "lbfgs" trains one fixed, smooth objective on every row, to convergence (at most ``epochs``
        iterations): ``dropout``, ``l1``, ``batchnorm``, ``augment_noise``, ``clip_norm`` and an ``lr_schedule``
        other than "none" are a ValueError with it, and ``early_stopping`` (with ``validation_fraction``,
        ``patience``, ``min_delta``), ``lr`` and ``batch_size`` do not apply, as for scikit-learn's lbfgs solver.
    pos_weight : bce's weight of the positive class, ``classes_[1]`` (the later label in sorted order).
    weight_decay : AdamW's decoupled decay (each step shrinks the weights by ``lr`` x this); None is 0.01
        with ``optimizer="adamw"``, "auto" the command line's (1.0 for a classifier, 0.01 for a regressor).
        Adam and SGD have none: a value other than None, "auto" or 0 with them is a
        ValueError at ``fit`` (their weight penalty is ``l2``).

    Attributes: ``classes_`` (labels; column indices for multi-label), ``n_features_in_``,
    ``feature_names_in_``, ``network_`` (the fitted ``mlpcli.engine.MLP``), ``history_`` (one dict
    per epoch), ``loss_curve_``, ``best_epoch_``, ``n_iter_``, ``loss_`` (the loss's name, e.g. "bce";
    scikit-learn's MLP keeps its last loss value there, which is ``loss_curve_[-1]`` here), ``n_outputs_``.
    """

    _losses = _CLASSIFIER_LOSSES

    def __init__(self, hidden=(128, 64), activation="relu", dropout=0.0, batchnorm=False, l1=0.0, l2=0.0,
                 optimizer="adam", lr=1e-3, momentum=0.9, weight_decay=None, batch_size=32, epochs=200,
                 early_stopping=True, validation_fraction=0.1, patience=20, min_delta=0.0, lr_schedule="none",
                 augment_noise=0.0, clip_norm=None, loss="auto", class_weight=None, label_smoothing=0.0,
                 pos_weight=1.0, focal_gamma=2.0, focal_alpha=None, dtype="float64", random_state=0, threads=None):
        self.hidden, self.activation, self.dropout, self.batchnorm = hidden, activation, dropout, batchnorm
        self.l1, self.l2, self.optimizer, self.lr, self.momentum = l1, l2, optimizer, lr, momentum
        self.weight_decay, self.batch_size, self.epochs = weight_decay, batch_size, epochs
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.patience, self.min_delta, self.lr_schedule = patience, min_delta, lr_schedule
        self.augment_noise, self.clip_norm, self.loss, self.class_weight = augment_noise, clip_norm, loss, class_weight
        self.label_smoothing, self.pos_weight = label_smoothing, pos_weight
        self.focal_gamma, self.focal_alpha, self.dtype, self.random_state = focal_gamma, focal_alpha, dtype, random_state
        self.threads = threads

    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit on X (n, d) and labels y (n,), or a 0/1 matrix y (n, k) for multi-label.

        ``sample_weight`` (n,) weights each sample's loss; ``groups`` (n,) makes the early-stopping
        split hold out whole groups (e.g. patients)."""
        return self._fit(X, y, sample_weight, groups, regression=False)

    def _encode_targets(self, y):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        if kind == "multilabel-indicator":
            # (n, k) 0/1; sparse as MultiLabelBinarizer(sparse_output=True) gives it
            Y = np.asarray(y.toarray() if is_sparse(y) else y, dtype=np.float64)
            # scikit-learn calls any 2-D matrix of two integer values multi-label: -1/+1 or 0/2 went to the
            # binary cross-entropy as targets outside [0, 1], its loss falling without bound (exit: a fitted model)
            found = np.unique(Y)
            if not np.isin(found, (0.0, 1.0)).all():
                raise ValueError(f"{type(self).__name__}: y is a multi-label matrix ({Y.shape[1]} columns), whose "
                                 f"values must be 0 and 1 (or False and True); it holds "
                                 f"{', '.join(f'{v:g}' for v in found[:5])}: recode it, e.g. (y > 0).astype(int)")
            self.classes_ = np.arange(Y.shape[1])
            self._multilabel = True
            return "multilabel", Y, None
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{type(self).__name__} does not support {kind} targets; give labels (n,) or a "
                             "0/1 matrix (n, k) for multi-label")
        self.classes_, codes = np.unique(y, return_inverse=True)
        self._multilabel = False
        if self.classes_.size < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; y has 1 class "
                             f"({_as_written(self.classes_[0])!r})")
        task = "binary" if self.classes_.size == 2 else "multiclass"
        if task == "multiclass" and self.loss in _BINARY_ONLY_LOSSES:  # in scikit-learn's words (its estimator checks)
            raise ValueError(f"{type(self).__name__}: Only binary classification is supported with loss="
                             f"{self.loss!r} (or a 0/1 multi-label matrix); y is multiclass with {self.classes_.size} "
                             "classes: use loss='ce' or 'auto'")
        return task, codes.astype(np.int64), codes.astype(np.int64)

    def _class_names(self, Y) -> list:
        return [str(c) for c in self.classes_]

    def _train_options(self, seed: int) -> TrainOptions:
        cw = self.class_weight
        if not (cw is None or isinstance(cw, str) and cw == "balanced" or isinstance(cw, dict)):
            raise ValueError(f"{type(self).__name__}: class_weight must be None, 'balanced' or a dict "
                             f"{{label: weight}}, got {cw!r}")
        options = TrainOptions(
            loss=self.loss, seed=seed, label_smoothing=self.label_smoothing, pos_weight=self.pos_weight,
            focal_gamma=self.focal_gamma, focal_alpha=self.focal_alpha,
            # multi-label "balanced" weights belong in BCE's per-label weights; the others are
            # applied as per-sample weights below
            class_weight="balanced" if cw == "balanced" and self._multilabel else "none",
        )
        try:
            options.validate()
        except MlpcliError as exc:
            raise ValueError(f"{type(self).__name__}: {_as_parameters(exc)}") from None
        return options

    def _weighted_balanced(self, strata: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(K,) class_weight="balanced" with sample weights as scikit-learn computes it (``compute_class_weight``
        with ``sample_weight``: the classes' weighted counts), as LogisticRegression applies it."""
        from sklearn.utils.class_weight import compute_class_weight

        K = len(self.classes_)
        mass = np.bincount(strata, weights=weights, minlength=K)
        if np.any(mass <= 0):
            absent = [self.classes_[k] for k in np.flatnonzero(mass <= 0)]
            raise ValueError(f"{type(self).__name__}: class_weight='balanced' divides by each class's total "
                             f"sample_weight, which is 0 for {absent!r}")
        return compute_class_weight("balanced", classes=np.arange(K), y=strata, sample_weight=weights).astype(float)

    def _with_class_weights(self, weights, setup, Y, strata):
        cw = self.class_weight
        extra = None  # (multi-label weights are the BCE loss's own: ``build_loss``)
        if cw is not None and not self._multilabel:
            if cw == "balanced":
                factor = data.class_weights(strata, len(self.classes_), "balanced", list(self.classes_))
                if weights is not None:  # scikit-learn's rule: class counts weighted by sample_weight
                    factor = self._weighted_balanced(strata, weights)
            else:
                # scikit-learn's rule (compute_class_weight): a label absent from y is fine when every class of
                # y has its weight (a rare class missing from one CV fold's training rows), a typo when not
                present = self.classes_.tolist()
                unknown = [k for k in cw if k not in set(present)]
                if unknown and any(c not in cw for c in present):
                    raise ValueError(f"{type(self).__name__}: class_weight names labels not in y: {unknown!r}")
                factor = np.array([float(cw.get(c, 1.0)) for c in present])
                if not np.all(np.isfinite(factor) & (factor > 0)):  # inf made the loss NaN: "training diverged"
                    raise ValueError(f"{type(self).__name__}: class_weight values must be finite numbers > 0, "
                                     f"got {cw!r}")
            extra = factor[strata]  # each sample's loss times its class's weight
        elif cw is not None and cw != "balanced":
            raise ValueError(f"{type(self).__name__}: multi-label targets take class_weight=None or 'balanced'")
        if extra is None:
            return weights
        return extra if weights is None else weights * extra

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes) in ``classes_`` order; per-label probabilities (n, k)
        for multi-label. With ``loss="hinge"`` they are the sigmoid of the margin: a monotone score that ranks
        (ROC AUC), not a calibrated probability (log loss and Brier score mean nothing on it)."""
        out = self._raw_output(X)
        if self.network_.n_outputs > 1 and self.loss_ == "ce":
            return softmax(out)
        p = sigmoid(out)
        if self._multilabel:
            return p
        return class_proba("binary", p)  # one sigmoid output is P(classes_[1])

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))`` (n, n_classes), as scikit-learn's classifiers offer it
        (``cross_val_predict(method="predict_log_proba")``); a probability of 0 gives -inf."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """Labels (n,) from ``classes_``; a 0/1 matrix (n, k) for multi-label (threshold 0.5)."""
        P = self.predict_proba(X)
        if self._multilabel:
            return (P >= 0.5).astype(np.int64)
        # as predict decides: a binary positive at P >= 0.5 (an argmax of [1 - p, p] gave the negative at 0.5)
        return self.classes_[predicted_class("binary" if len(self.classes_) == 2 else "multiclass", P)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # what the loss takes: ce is one softmax over classes (no multi-label target), bce, focal and hinge are losses
        # of sigmoid outputs (two classes, or labels)
        tags.classifier_tags.multi_label = self.loss != "ce"
        tags.classifier_tags.multi_class = self.loss not in _BINARY_ONLY_LOSSES
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer-perceptron regressor on the mlpcli engine, for one target (n,) or several (n, k).

    Parameters as for ``MLPClassifier`` (without the class-weight and classification-loss ones;
    ``weight_decay`` too is for ``optimizer="adamw"`` only);
    ``loss`` is "auto" (= "mse"), "mse", "mae" or "huber". Targets are standardised for training
    and predictions scaled back, like the CLI. ``validation_fraction`` is held out at random, or by
    whole groups when ``fit`` gets ``groups``.
    """

    _losses = _REGRESSOR_LOSSES

    def __init__(self, hidden=(128, 64), activation="relu", dropout=0.0, batchnorm=False, l1=0.0, l2=0.0,
                 optimizer="adam", lr=1e-3, momentum=0.9, weight_decay=None, batch_size=32, epochs=200,
                 early_stopping=True, validation_fraction=0.1, patience=20, min_delta=0.0, lr_schedule="none",
                 augment_noise=0.0, clip_norm=None, loss="auto", dtype="float64", random_state=0, threads=None):
        self.hidden, self.activation, self.dropout, self.batchnorm = hidden, activation, dropout, batchnorm
        self.l1, self.l2, self.optimizer, self.lr, self.momentum = l1, l2, optimizer, lr, momentum
        self.weight_decay, self.batch_size, self.epochs = weight_decay, batch_size, epochs
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.patience, self.min_delta, self.lr_schedule = patience, min_delta, lr_schedule
        self.augment_noise, self.clip_norm, self.loss = augment_noise, clip_norm, loss
        self.dtype, self.random_state, self.threads = dtype, random_state, threads

    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit on X (n, d) and targets y (n,) or (n, k); ``sample_weight`` and ``groups`` as for
        ``MLPClassifier.fit``."""
        return self._fit(X, y, sample_weight, groups, regression=True)

    def _encode_targets(self, y):
        y = np.asarray(y.toarray() if is_sparse(y) else y, dtype=np.float64)  # numbers: checked by _check_numbers
        self._y_1d = y.ndim == 1
        Y = y.reshape(len(y), -1)  # (n, k)
        return "regression", Y, None

    def _class_names(self, Y) -> list:
        return [f"y{j}" for j in range(Y.shape[1])]

    def predict(self, X) -> np.ndarray:
        """Predictions (n,) for a 1-D training target, else (n, k)."""
        out = self._raw_output(X) * self._y_scale + self._y_mean
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
