"""Which features drive a model's predictions: integrated gradients through the engine's own backward
pass (``attribution``), per-class rankings with their stability across ensemble members or bootstrap
resamples, and permutation importance (``ranking``), and their plots (``plots``)."""

from .attribution import (BASELINES, DEFAULT_STEPS, OUTPUTS, attribution_chunks, baseline_values, completeness_gap,
                          input_gradients, integrated_gradients)

__all__ = ["BASELINES", "DEFAULT_STEPS", "OUTPUTS", "attribution_chunks", "baseline_values", "completeness_gap",
           "input_gradients", "integrated_gradients"]
