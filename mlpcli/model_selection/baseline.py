"""The field's honest yardstick, on the same folds: a regularised linear model.

Papers comparing neural networks with linear models on expression data (Heil et al. 2023, Smith et al. 2020,
Boiarsky et al. 2023) agree on one practice: report a linear baseline beside the network, on the same
splits. ``cv`` does, for every fold:

    fold's training part ─Preprocessor (the run's own: log1p, imputation, --top-var, scaling)─▶ Z_train
        ─LogisticRegression(C=1) (class targets; one per label for multi-label) or Ridge(alpha=1)─▶ model
    fold's test part ─the same Preprocessor─▶ Z_test ─▶ probabilities / values ─▶ metrics.compute

The linear model sees exactly the features the network sees, preprocessed the same way and fitted on the same
rows, with the run's class weights, and its labels follow the fold model's decision rule (``--decision``): the
comparison is of the models, not of their preprocessing or of how they turn probabilities into labels. Its
hyperparameters are scikit-learn's defaults (L2 penalty, C = 1; ridge alpha = 1), what a user would otherwise
run; a tuned linear model can do better, so a network that does not beat this one is not worth its cost.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from .. import data, metrics
from ..config import AUTO, TrainOptions
from ..decision import DECIDED, Decision
from ..centred_rows import CentredRows
from .fitting import preprocess_config, resolve_log1p

__all__ = ["BaselineScore", "LINEAR_BASELINE", "MAX_ITER", "linear_baseline", "fit_linear_baseline"]

# What the baseline is, per task, as the tables and the JSON name it.
LINEAR_BASELINE = {
    "binary": "logistic regression (L2, C=1)",
    "multiclass": "logistic regression (multinomial, L2, C=1)",
    "multilabel": "logistic regression per label (L2, C=1)",
    "regression": "ridge regression (alpha=1)",
}
# L-BFGS iterations: scikit-learn's default of 100 stops short on thousands of standardised genes (a warning in
# most folds); 1,000 converges on the benchmark's sets, and a fold that does not is named in a warning.
MAX_ITER = 1000


@dataclass
class BaselineScore:
    """The linear baseline of one fold: its metrics on the test part (the same set as the network's)."""

    model: str  # LINEAR_BASELINE[task]
    metrics: dict
    score: float  # the main metric; NaN when undefined
    seconds: float
    warnings: list[str] = field(default_factory=list)
    decision: str | None = None  # binary / multiclass: the rule its labels followed (the fold model's), else None


def _sklearn_input(Z):
    """The preprocessed rows as scikit-learn takes them: sparse rows centred by an offset (``CentredRows``) as
    their CSR matrix, uncentred. The linear models fit an unpenalised intercept, which absorbs the offset:
    the same optimum, without densifying the matrix."""
    return Z.matrix if isinstance(Z, CentredRows) else Z


@dataclass
class LinearBaseline:
    """A fitted baseline: the fold's Preprocessor and one scikit-learn model (or one per label)."""

    task: str
    n_outputs: int  # classes (binary: 2), labels or targets
    preprocessor: data.Preprocessor
    models: list  # one estimator, or one per label (multilabel; a constant label: its training rate, a float)
    dtype: str
    # regression: the training targets' means and SDs (k,): ridge fits the standardised targets, so that a float32
    # input matrix (scikit-learn then casts y to it) does not round a target of 2e9 + small to steps of 256
    target_mean: np.ndarray | None = None
    target_sd: np.ndarray | None = None

    def predict_output(self, X) -> np.ndarray:
        """Probabilities (n, classes) or (n, labels), or values (n, targets), as ``Model.predict_output``."""
        Z = _sklearn_input(self.preprocessor.transform(X, dtype=self.dtype, order="C", sparse=True))
        if self.task == "regression":
            out = np.asarray(self.models[0].predict(Z), dtype=np.float64).reshape(Z.shape[0], -1)
            return out * self.target_sd + self.target_mean
        if self.task == "multilabel":
            cols = [np.full(Z.shape[0], m) if isinstance(m, float) else m.predict_proba(Z)[:, 1] for m in self.models]
            return np.column_stack(cols).astype(np.float64)
        model = self.models[0]
        out = np.zeros((Z.shape[0], self.n_outputs))
        if isinstance(model, np.ndarray):  # one class in the training part: its prior
            out[:] = model
        else:  # a class absent from the training part (leave-batch-out) keeps probability 0
            out[:, model.classes_.astype(int)] = model.predict_proba(Z)
        return out


def fit_linear_baseline(train_ds: data.Dataset, options: TrainOptions) -> tuple[LinearBaseline, list[str]]:
    """The linear baseline fitted on ``train_ds`` with the preprocessing and class weights ``options`` give the
    network; (baseline, warnings: an optimiser that stopped short)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    if options.hidden == AUTO:
        options = replace(options, hidden=[])
    log1p, _ = resolve_log1p(options, train_ds.X)
    pre = data.Preprocessor(preprocess_config(options, log1p))
    Z = _sklearn_input(pre.fit_transform(train_ds.X, train_ds.feature_names, dtype=options.dtype, order="C"))  # (n_train, d_kept)
    task, y = train_ds.task, train_ds.y
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        target_mean = target_sd = None
        if task == "regression":
            # the same optimum as on y itself (the ridge solution scales with the target), in units where float32
            # keeps its digits: Ridge(alpha=1) on a float32 Z and a target of 2e9 + N(0, 1) gave RMSE 512, not 0.53
            Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
            target_mean, target_sd = Y.mean(axis=0), Y.std(axis=0)
            target_sd[~(target_sd > 0)] = 1.0
            Yc = (Y - target_mean) / target_sd
            models: list = [Ridge(alpha=1.0).fit(Z, Yc if Yc.shape[1] > 1 else Yc[:, 0])]
            n_out = y.shape[1]
        elif task == "multilabel":
            weights = _label_weights(options, train_ds)
            models = []
            for j in range(y.shape[1]):
                yj = y[:, j].astype(int)
                if yj.min() == yj.max():  # a label constant in the training part: its rate (0 or 1)
                    models.append(float(yj[0]))
                    continue
                sw = None if weights is None else np.where(yj == 1, weights[1, j], weights[0, j])
                models.append(LogisticRegression(C=1.0, max_iter=MAX_ITER).fit(Z, yj, sample_weight=sw))
            n_out = y.shape[1]
        else:
            n_out = len(train_ds.classes)
            present = np.unique(y)
            if len(present) < 2:
                prior = np.zeros(n_out)
                prior[present] = 1.0
                models = [prior]
            else:
                cw = data.class_weights(y, n_out, options.class_weight, train_ds.classes)
                sw = None if cw is None else cw[y.astype(int)]
                models = [LogisticRegression(C=1.0, max_iter=MAX_ITER).fit(Z, y.astype(int), sample_weight=sw)]
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append(f"the linear baseline's L-BFGS stopped at its {MAX_ITER} iterations before converging; "
                     "its figures are of a nearly fitted model")
    return LinearBaseline(task, n_out, pre, models, options.dtype, target_mean, target_sd), notes


def _label_weights(options: TrainOptions, ds: data.Dataset) -> np.ndarray | None:
    """The run's per-label (negative, positive) weights for a multi-label target (``build_loss``'s)."""
    from .fitting import multilabel_weights

    return multilabel_weights(options.class_weight, ds.y.astype(np.float64), ds.classes)


def linear_baseline(train_ds: data.Dataset, test_ds: data.Dataset, options: TrainOptions,
                    decision: Decision | None = None) -> BaselineScore:
    """Fit the linear baseline on ``train_ds`` and score it on ``test_ds`` with ``metrics.compute``. ``decision``:
    the network's rule on the same fold (``decision.Decision``; None: argmax), which labels the baseline's rows too,
    as its class weights are the network's: under the balanced rule an argmax baseline lost the rare class's
    recall to the rule, and "mlpcli minus it" credited the network with what the rule did."""
    started = time.perf_counter()
    fitted, notes = fit_linear_baseline(train_ds, options)
    out = fitted.predict_output(test_ds.X)
    task = test_ds.task
    rule = decision if decision is not None and task in DECIDED else Decision()
    m = metrics.compute(task, test_ds.y, metrics.as_task_proba(task, out), list(test_ds.classes),
                        rule.threshold(task), rule.weights(task))
    main = m.get(metrics.main_metric_name(task))
    return BaselineScore(model=LINEAR_BASELINE[task], metrics=m,
                         score=float("nan") if main is None or not np.isfinite(main) else float(main),
                         seconds=time.perf_counter() - started, warnings=notes,
                         decision=rule.rule if task in DECIDED else None)
