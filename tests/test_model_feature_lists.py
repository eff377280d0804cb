"""Model format 7 lists the features once: members' preprocessing leaves out the lists that repeat the model's."""

from __future__ import annotations

import json
import zipfile

import pytest

from cli_helpers import assert_clean_error, run
from mlpcli import model_io
from mlpcli.config import TrainOptions
from mlpcli.errors import ModelFileError
from model_files import model_parts, rewrite_model, saved_model, with_feature_lists
from tables import make_table, write_table


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lists")
    data = write_table(tmp, n_patients=12, n_features=40)
    return saved_model(data, tmp / "e.mlp", TrainOptions(hidden=[4], epochs=2, folds=3))


def test_an_ensemble_lists_its_features_once(ensemble):
    """A 5-member model listed every feature 13 times in model.json (15 MB at 60,000 Ensembl ids, parsed on
    every predict, and past the 32 MB limit with --folds 10)."""
    meta, _ = model_parts(ensemble)
    text = zipfile.ZipFile(ensemble).read("model.json").decode()
    name = meta["feature_names"][7]
    assert meta["format_version"] >= 7
    assert text.count(json.dumps(name)) == 1
    for entry in meta["members"]:
        assert "feature_names_in" not in entry["preprocessing"]


def test_the_lists_written_out_load_to_the_same_model(ensemble, tmp_path):
    """The written-out form (every format before 7) and the compact one are the same model: same
    predictions, and saving either gives today's bytes."""
    full = rewrite_model(ensemble, tmp_path / "full.mlp", lambda m: with_feature_lists(m), lambda a: a)
    meta, _ = model_parts(full)
    assert all("kept_features" in e["preprocessing"] for e in meta["members"])
    a, b = model_io.load(full), model_io.load(ensemble)
    X = make_table(n_patients=3, n_features=40, seed=5).filter(like="f").to_numpy()
    assert a.predict_output(X).tobytes() == b.predict_output(X).tobytes()
    assert [m.preprocessor.kept_features for m in a.members] == [m.preprocessor.kept_features for m in b.members]
    assert model_io.to_bytes(a) == model_io.to_bytes(b)


def test_a_member_keeping_other_features_lists_them(ensemble, tmp_path):
    """A member whose preprocessing kept fewer features (a feature constant on its training rows) must keep
    its own list; dropping one from a member's explicit list is refused when it disagrees with the network."""
    def fewer(meta):
        with_feature_lists(meta)
        meta["members"][1]["preprocessing"]["kept_features"].pop()
    bad = rewrite_model(ensemble, tmp_path / "bad.mlp", fewer, lambda a: a)
    data = write_table(tmp_path, n_patients=12, n_features=40)
    res = run(["predict", bad, str(data), "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "bad.mlp", "members[1]")
    assert not (tmp_path / "p.csv").exists()


def test_a_format_6_file_without_the_lists_is_refused(ensemble, tmp_path):
    """Only format 7 may leave the lists out: a format 6 file without them was damaged."""
    with zipfile.ZipFile(ensemble) as zf:
        meta, weights = json.loads(zf.read("model.json")), zf.read("weights.npz")
    meta["format_version"] = 6
    with zipfile.ZipFile(tmp_path / "v6.mlp", "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        zf.writestr("weights.npz", weights)
    with pytest.raises(ModelFileError, match="v6.mlp.*feature_names_in"):
        model_io.load(tmp_path / "v6.mlp")
