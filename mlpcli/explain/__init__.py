"""Which features drive a model's predictions: integrated gradients through the engine's own backward
pass (``attribution``), per-class rankings with their stability across ensemble members or bootstrap
resamples (``ranking``), permutation importance (``permutation``), the rows explained (``samples``) and what each is
explained toward (``labels``), the symbols of genes named by id (``symbols``), and their figures (``plots``,
imported on use).

    >>> from mlpcli.explain import integrated_gradients, explain, feature_symbols, load_samples
    >>> A = integrated_gradients(model, X, target="Basal")          # (n, d) attributions toward Basal
    >>> samples = load_samples(model, "test_cohort.csv.gz")
    >>> result = explain(model, samples.X, samples.y, top=20)       # result.table: class, rank, feature, ...
    >>> result.add_symbols(feature_symbols(model, "cells.h5ad"))    # an .h5ad file's symbols beside its gene ids
    >>> result.add_symbols(read_symbol_file("GPL570.annot.gz", model.feature_names))  # any table's, from a file
"""

from .attribution import (BASELINES, DEFAULT_STEPS, OUTPUTS, attribution_chunks, baseline_values, completeness_gap,
                          input_gradients, integrated_gradients)
from .labels import label_matrix
from .permutation import SCORINGS, feature_rng, permutation_importance
from .ranking import COLUMNS, METHODS, Explanation, check_rankable, explain, rank_features, ranked_column
from .samples import Samples, load_samples
from .symbols import GeneSymbols, feature_symbols, read_symbol_file

__all__ = ["BASELINES", "COLUMNS", "DEFAULT_STEPS", "METHODS", "OUTPUTS", "SCORINGS", "Explanation", "GeneSymbols",
           "Samples", "check_rankable", "attribution_chunks", "baseline_values", "completeness_gap", "explain",
           "feature_symbols", "label_matrix", "feature_rng", "input_gradients", "integrated_gradients", "load_samples", "permutation_importance", "rank_features", "ranked_column",
           "read_symbol_file"]
