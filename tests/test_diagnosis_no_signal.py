"""Random labels: curves near the no-skill loss whose training part does not carry over read as no learnable signal
(cause ``no_signal``), not as a network short of capacity to be made larger."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlpcli.diagnosis import diagnose

# `mlpcli train` (the defaults: a 5-member ensemble, --hidden auto chose hidden 128 with input noise) on
# sample_data/tumour_subtypes.csv.gz with its `label` column shuffled (numpy default_rng(1).permutation): the members'
# mean curves, their validation spread and the inference-mode training loss, to 4 digits. Training ends 18 % of the
# scale below the no-skill loss, validation 4-6 % above it all along; training's slope at the end is -1.6 s.e., short
# of training_only_gains' -3, and the verdict was "Underfit (capacity) ... Increase model capacity".
TUMOUR_RANDOM = dict(
    train=[3.671, 3.13, 2.677, 2.153, 1.77, 1.505, 1.294, 1.219, 1.187, 1.142, 1.132, 1.138, 1.099, 1.108, 1.073, 1.109,
           1.086, 1.08, 1.079, 1.075, 1.086, 1.058, 1.086, 1.055, 1.07, 1.062, 1.051, 1.042, 1.057, 1.046, 1.057, 1.041,
           1.043, 1.009, 1.01, 1.036],
    val=[1.717, 1.735, 1.587, 1.469, 1.398, 1.346, 1.321, 1.309, 1.307, 1.312, 1.314, 1.314, 1.322, 1.328, 1.317, 1.323,
         1.322, 1.335, 1.332, 1.327, 1.327, 1.319, 1.328, 1.327, 1.324, 1.319, 1.327, 1.325, 1.321, 1.316, 1.32, 1.336,
         1.323, 1.326, 1.323, 1.349],
    spread=[0.08474, 0.09338, 0.06848, 0.04368, 0.03026, 0.01809, 0.01083, 0.01521, 0.01698, 0.02612, 0.009655,
            0.01953, 0.01687, 0.01662, 0.01474, 0.009515, 0.016, 0.01402, 0.01507, 0.009032, 0.01925, 0.01508, 0.02336,
            0.02405, 0.01805, 0.005264, 0.01721, 0.02687, 0.02492, 0.03042, 0.03799, 0.01093, 0.01167, 0.02877,
            0.02813, 0.019],
    train_eval=[1.16, 0.929, 0.7963, 0.7688, 0.7926, 0.8453, 0.8897, 0.9158, 0.9256, 0.9244, 0.9032, 0.8723, 0.8712,
                0.853, 0.8325, 0.8318, 0.8181, 0.8227, 0.7987, 0.8095, 0.817, 0.7927, 0.7918, 0.7887, 0.7984, 0.7819,
                0.7758, 0.7448, 0.7514, 0.75, 0.7467, 0.7555, 0.7538, 0.7396, 0.7223, 0.7294],
    baseline=1.2574,
)
# The same on the benchmark's tissue table (dslabs::tissue_gene_expression, 7 tissues, labels shuffled with
# default_rng(0)): validation falls back towards the no-skill loss from 12 % of the scale above it, lowest at the last
# epoch, which read "still improving: train for more epochs", in a summary where no shape matched clearly.
TISSUE_RANDOM = dict(
    train=[4.19, 3.671, 3.35, 3.308, 3.092, 2.833, 2.513, 2.548, 2.321, 2.403, 2.141, 2.06, 1.979, 1.992, 1.916, 1.878,
           1.777, 1.713, 1.747, 1.657, 1.66, 1.587, 1.631],
    val=[2.178, 2.205, 2.287, 2.305, 2.303, 2.275, 2.241, 2.217, 2.192, 2.184, 2.174, 2.168, 2.151, 2.149, 2.146, 2.143,
         2.138, 2.128, 2.115, 2.102, 2.095, 2.082, 2.064],
    spread=[0.1224, 0.1412, 0.1492, 0.1326, 0.1051, 0.06902, 0.0433, 0.05955, 0.07089, 0.07594, 0.08144, 0.06994,
            0.05309, 0.04249, 0.03688, 0.03534, 0.04427, 0.04365, 0.05385, 0.04565, 0.04394, 0.01615, 0.0161],
    train_eval=[1.934, 1.743, 1.625, 1.526, 1.441, 1.373, 1.322, 1.284, 1.255, 1.232, 1.217, 1.199, 1.181, 1.172,
                1.169, 1.17, 1.169, 1.167, 1.167, 1.163, 1.159, 1.156, 1.156],
    baseline=1.8388,
)


def _recorded(r: dict, **kwargs):
    return diagnose(r["train"], r["val"], baseline=r["baseline"], train_eval_loss=r["train_eval"],
                    member_spread=r["spread"], stochastic_regularisation=True, **kwargs)


def _assert_no_signal(d) -> None:
    assert d.label == "underfit_capacity" and d.evidence["cause"] == "no_signal", (d.summary, d.evidence["cause"])
    assert d.summary.startswith("No learnable signal"), d.summary
    assert "validation never beat the no-skill loss" in d.summary
    text = " ".join(d.advice)
    assert d.advice[0].startswith("More capacity will not help") and "Increase model capacity" not in text
    assert "--hidden 256" not in text and "Train for more epochs" not in text and "Train longer first" not in text
    assert "Check the target first" in d.advice[1]


@pytest.mark.parametrize("run", [TUMOUR_RANDOM, TISSUE_RANDOM], ids=["sample-data", "tissue"])
def test_recorded_runs_on_random_labels_read_as_no_learnable_signal(run):
    d = _recorded(run)
    _assert_no_signal(d)
    assert d.evidence["best_distance_from_baseline"] < 0  # validation never beat a constant prediction
    # a larger network the run already tried and found no better tells the same, quoting it: that advice stays
    tried = "--hidden auto also trained hidden 128: out-of-fold balanced accuracy 0.251, against 0.254 (...)"
    assert _recorded(run, capacity_tried=tried).evidence["cause"] == "larger_model_tried"


def test_the_sample_data_run_that_matched_a_shape_says_it_as_well():
    d = _recorded(TUMOUR_RANDOM)
    assert d.evidence["score"] > 0  # the shape itself is underfit (capacity): the sentence names it after the cause
    assert d.summary.startswith("No learnable signal (underfit (capacity) in shape): training got 18.2 % of the way "
                                "from no skill to perfect (1.028) while validation never beat"), d.summary


def _one_network(seed: int, val_gain: float):
    """One network on random labels: training falls to 89 % of the no-skill loss, validation stays 2-3 % above it
    (``val_gain`` 0); with ``val_gain`` 0.08 validation ends 5-6 % below it instead, a weak signal carried over."""
    rng = np.random.default_rng(seed)
    t = np.arange(40)
    base = math.log(2)
    train = base * (1 - 0.12 * (1 - np.exp(-t / 8))) + rng.normal(0, 0.004, 40)
    val = base * (1.02 - val_gain + 0.01 * (1 - np.exp(-t / 5))) + rng.normal(0, 0.004, 40)
    return train, val, base


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_network_on_random_labels_is_not_told_to_grow(seed):
    train, val, base = _one_network(seed, 0.0)
    _assert_no_signal(diagnose(train, val, baseline=base))
    # curves of L-BFGS iterations: no "more capacity (--hidden)" lead in front of that advice
    lbfgs = diagnose(train, val, baseline=base, full_batch=True)
    assert lbfgs.evidence["cause"] == "no_signal" and not any("more capacity (--hidden)" in a for a in lbfgs.advice)
    # validation that does come below the no-skill loss carried something over: the capacity case as before
    train, val, base = _one_network(seed, 0.08)
    weak = diagnose(train, val, baseline=base)
    assert weak.label == "underfit_capacity" and weak.evidence["cause"] is None
    # without a baseline "never beat no skill" cannot be told
    assert diagnose(*_one_network(seed, 0.0)[:2]).evidence["cause"] != "no_signal"


def _flat(level: float, seed: int, n: int = 30) -> np.ndarray:
    return level + 0.002 * np.random.default_rng(seed).standard_normal(n)


def test_a_larger_network_that_did_no_better_beside_validation_at_no_skill_leads_with_no_signal():
    """Random labels on 2,019 cells (benchmark 'cells'): --hidden auto chose the linear model, both curves flat at the
    no-skill loss (0.6512), hidden 128 beside it at balanced accuracy 0.50. The advice named the features or the target
    (cause larger_model_tried) but the verdict read "Underfit (capacity): both curves are flat at a high loss"."""
    tried = "--hidden auto also trained hidden 128: out-of-fold balanced accuracy 0.503, against 0.504 (...)"
    d = diagnose(_flat(0.6501, 0), _flat(0.6547, 1), baseline=0.6512, capacity_tried=tried)
    assert d.label == "underfit_capacity" and d.evidence["cause"] == "larger_model_tried"
    assert d.summary.startswith("No learnable signal: validation never beat the no-skill loss"), d.summary
    assert "the larger network the run tried did no better. Underfit (capacity): both curves are flat" in d.summary
    assert tried in d.advice[0] and "Increase model capacity" not in " ".join(d.advice)
    # validation that came well below the no-skill loss learned something: the shape alone, as before
    learned = diagnose(_flat(0.60, 0), _flat(0.61, 1), baseline=0.6931, capacity_tried=tried)
    assert learned.evidence["cause"] == "larger_model_tried" and learned.summary.startswith("Underfit (capacity)")


# `mlpcli train` (defaults) on scanpy's pbmc68k_reduced (700 cells, 10 types, the benchmark's `pbmc68k`) with its
# labels shuffled (default_rng(0).permutation): training 51 % of the scale below the no-skill loss, validation 10-14 %
# above it from the first epoch on. The shape is the unrepresentative-training-set one, whose advice led with
# "Collect more training data".
PBMC_RANDOM = dict(
    train=[3.37, 2.416, 1.988, 1.736, 1.599, 1.475, 1.385, 1.321, 1.27, 1.232, 1.193, 1.156, 1.135, 1.083, 1.093, 1.084,
           1.077, 1.065, 1.02, 1.023, 1.014, 0.9975, 0.9586, 0.977, 0.9795, 0.9521, 0.9656, 0.9409, 0.9621, 0.9498,
           0.9505, 0.9314, 0.9772, 0.9507, 0.9184, 0.9301],
    val=[2.201, 2.193, 2.158, 2.131, 2.12, 2.094, 2.094, 2.095, 2.096, 2.094, 2.104, 2.102, 2.118, 2.126, 2.121, 2.11,
         2.121, 2.116, 2.132, 2.131, 2.15, 2.132, 2.145, 2.132, 2.132, 2.134, 2.138, 2.144, 2.15, 2.148, 2.154, 2.16,
         2.164, 2.17, 2.146, 2.142],
    spread=[0.04428, 0.03306, 0.0444, 0.03602, 0.02477, 0.02256, 0.01433, 0.03025, 0.02502, 0.03792, 0.04922,
            0.04182, 0.01487, 0.01921, 0.02623, 0.03798, 0.02667, 0.01896, 0.02929, 0.01499, 0.01713, 0.02351,
            0.01667, 0.03513, 0.02847, 0.03161, 0.03799, 0.05874, 0.06231, 0.05147, 0.0457, 0.07973, 0.06682, 0.09025,
            0.08123, 0.0861],
    train_eval=[1.68, 1.355, 1.18, 1.081, 1.036, 0.9821, 0.9349, 0.8935, 0.8436, 0.7942, 0.7585, 0.7088, 0.6767,
                0.6409, 0.6129, 0.5909, 0.568, 0.5539, 0.5351, 0.5229, 0.5052, 0.4975, 0.4773, 0.4692, 0.4607, 0.4507,
                0.4466, 0.4364, 0.4308, 0.4154, 0.4173, 0.4186, 0.4179, 0.412, 0.4062, 0.391],
    baseline=1.9071,
)


def test_a_gap_on_random_labels_is_not_blamed_on_too_little_training_data():
    d = _recorded(PBMC_RANDOM)
    assert d.label == "unrepresentative_train" and d.evidence["cause"] == "no_signal", (d.label, d.evidence["cause"])
    assert d.summary.startswith("No learnable signal: training got 51.1 % of the way"), d.summary
    assert "Unrepresentative training set" in d.summary  # the shape still named, after what the levels say
    assert d.advice[0].startswith("More data of the same kind is not the first thing to try")
    assert "Check the target first" in d.advice[1] and "Collect more training data" not in " ".join(d.advice)
    # the same curves where validation did learn (a no-skill loss of 2.6 for more classes: validation 19 % of the
    # scale below it): the training set's coverage, as before
    learned = _recorded(dict(PBMC_RANDOM, baseline=2.6))
    assert learned.label == "unrepresentative_train" and learned.evidence["cause"] is None
    assert learned.advice[0].startswith("Collect more training data")
    # a separate validation table: that table is checked first, whatever the levels
    other = _recorded(PBMC_RANDOM, validation_table="cohort2.csv")
    assert other.advice[0].startswith("Check the validation table first")
