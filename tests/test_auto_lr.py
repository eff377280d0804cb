"""``--lr auto`` shrinks beyond WIDE_LR_FEATURES kept features: Adam moves every weight by about the learning rate
per step, so a first-layer unit moves in proportion to the number of inputs."""

from __future__ import annotations

import pytest

from mlpcli import auto_defaults, config
from mlpcli.config import TrainOptions


@pytest.mark.parametrize("hidden, base", [([], config.AUTO_LR_LINEAR), ([16], config.AUTO_LR_HIDDEN)])
def test_the_auto_learning_rate_shrinks_with_the_number_of_features(hidden, base):
    options = TrainOptions(hidden=hidden)
    at = {p: auto_defaults.resolve(options, 300, p).lr for p in (50, config.WIDE_LR_FEATURES, 20_000, 60_000)}
    assert at[50] == at[config.WIDE_LR_FEATURES] == base  # the widths the base rates were measured at
    assert at[20_000] == pytest.approx(base * config.WIDE_LR_FEATURES / 20_000)
    assert at[60_000] == pytest.approx(at[20_000] / 3)
    # unknown width (before preprocessing): left to the call that knows it
    assert auto_defaults.resolve(options, 300).lr == config.AUTO
    # an explicit rate always wins
    assert auto_defaults.resolve(TrainOptions(hidden=hidden, lr=0.05), 300, 60_000).lr == 0.05


def test_the_model_records_the_rate_it_trained_with(tmp_path):
    """The resolved rate reaches the fit loop and the model file (``info`` shows it)."""
    import json

    from cli_helpers import run
    from tables import write_table

    table = write_table(tmp_path, n_patients=10, n_features=2_500)
    model = tmp_path / "m.mlp"
    assert run(["train", table, "--hidden", "", "--epochs", "2", "--folds", "1", "-o", str(model), "-q"]).exit_code == 0
    info = json.loads(run(["info", str(model), "--json"]).output)
    kept = info["features"]["used"]
    assert kept > config.WIDE_LR_FEATURES
    assert info["training"]["resolved"]["lr"] == pytest.approx(config.AUTO_LR_LINEAR * config.WIDE_LR_FEATURES / kept)
