"""Model selection, in one place: grouped splits, one fitted run, cross-fitting, cross-validation, grids,
tuning and sample-size learning curves. ``train``, ``cv``, ``tune``, ``diagnose --learning-curve`` and the
scikit-learn estimators all call these.

    splits.py            grouped hold-out and K folds, with the one leakage guard (check_disjoint)
    fitting.py           fit_run: one network from train/validation datasets and options; the loss setup
    crossfit.py          fit_model: the model train ships (cross-fitted members or a hold-out network,
                         temperature calibration, --refit)
    portfolio.py         the candidates --hidden auto tries and the one-standard-error rule that chooses
    cross_validation.py  cross_validate: what train ships, scored on grouped outer folds
    grid.py              the --grid syntax and the points to try
    tuning.py            tune: grid points scored by grouped CV, optionally nested
    learning_curve.py    training at growing shares of the training groups
"""

from .crossfit import FittedModel, fit_model
from .fitting import FittedRun, LossSetup, build_loss, fit_run
from .splits import (Fold, SplitSummary, check_disjoint, holdout, holdout_keeping_scarce, kfold, summarize_folds,
                     summarize_split)

__all__ = ["FittedModel", "fit_model", "FittedRun", "LossSetup", "build_loss", "fit_run", "Fold", "SplitSummary",
           "check_disjoint", "holdout", "holdout_keeping_scarce", "kfold", "summarize_folds", "summarize_split"]
