import io
import json
import os
import zipfile

import numpy as np
import pytest

from mlpcli import model_io
from mlpcli.config import TrainOptions
from mlpcli.errors import ModelFileError
from mlpcli.pipeline import train
from tables import write_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("model")
    path = write_table(tmp, seed=3)
    outcome = train(path, TrainOptions(hidden=[8], epochs=5, batchnorm=True, dropout=0.1))
    out = tmp / "m.mlp"
    model_io.save(outcome.model, out)
    return outcome.model, out, outcome


def test_round_trip_gives_identical_predictions(trained):
    model, path, _ = trained
    loaded = model_io.load(path)
    X = np.random.default_rng(0).normal(size=(7, len(model.feature_names)))
    np.testing.assert_array_equal(loaded.predict_output(X), model.predict_output(X))
    assert loaded.classes == model.classes and loaded.feature_names == model.feature_names
    assert loaded.history == model.history and loaded.split == model.split
    assert loaded.config["hidden"] == [8] and loaded.provenance["data_sha256"]
    assert set(loaded.provenance["versions"]) >= {"mlpcli", "numpy", "pandas", "scikit-learn", "python"}


def test_predict_output_refuses_a_feature_given_twice(trained):
    """Duplicated gene symbols are common; training and `predict` refuse them, and so does the library call
    on a DataFrame (or with features=): which of the two columns the model reads would be a guess."""
    import pandas as pd
    from mlpcli.errors import DataError

    model = trained[0]
    names = list(model.feature_names)
    X = np.random.default_rng(0).normal(size=(4, len(names)))
    frame = pd.DataFrame(np.column_stack([X, X[:, 0] + 1.0]), columns=names + [names[0]])
    with pytest.raises(DataError, match=rf"1 feature name\(s\) the model uses more than once: '{names[0]}'"):
        model.predict_output(frame)
    with pytest.raises(DataError, match="more than once"):
        model.predict_output(frame.to_numpy(), features=names + [names[0]])
    unused = pd.DataFrame(np.column_stack([X, X[:, :1]]), columns=names + ["note"])
    unused["note2"] = 1.0
    unused.columns = names + ["note", "note"]  # columns the model does not read may repeat
    np.testing.assert_array_equal(model.predict_output(unused), model.predict_output(X))


def test_predict_output_takes_a_list_of_rows_and_refuses_one_dimension(trained):
    from mlpcli.errors import DataError

    model = trained[0]
    X = np.random.default_rng(1).normal(size=(3, len(model.feature_names)))
    np.testing.assert_array_equal(model.predict_output(X.tolist()), model.predict_output(X))
    with pytest.raises(DataError, match="2-D array"):
        model.predict_output(X[0])


def _rewrite(src, dst, json_fn=None, weights_fn=None, drop=None):
    with zipfile.ZipFile(src) as zf:
        meta = zf.read("model.json")
        weights = zf.read("weights.npz")
    if json_fn:
        meta = json.dumps(json_fn(json.loads(meta))).encode()
    if weights_fn:
        weights = weights_fn(weights)
    with zipfile.ZipFile(dst, "w") as zf:
        if drop != "model.json":
            zf.writestr("model.json", meta)
        if drop != "weights.npz":
            zf.writestr("weights.npz", weights)


def test_truncated_file(trained, tmp_path):
    _, path, _ = trained
    data = path.read_bytes()
    bad = tmp_path / "t.mlp"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupt or truncated|not a readable"):
        model_io.load(bad)


def test_not_a_zip_and_missing_file(tmp_path):
    p = tmp_path / "x.mlp"
    p.write_text("hello")
    with pytest.raises(ModelFileError, match="not a readable mlpcli model file"):
        model_io.load(p)
    with pytest.raises(ModelFileError, match="not found"):
        model_io.load(tmp_path / "nope.mlp")
    with pytest.raises(ModelFileError, match="directory"):
        model_io.load(tmp_path)


def test_foreign_zip(tmp_path):
    p = tmp_path / "foreign.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ModelFileError, match="missing model.json, weights.npz"):
        model_io.load(p)
    q = tmp_path / "foreign2.zip"
    with zipfile.ZipFile(q, "w") as zf:
        zf.writestr("model.json", json.dumps({"name": "other tool"}))
        zf.writestr("weights.npz", b"")
    with pytest.raises(ModelFileError, match="format tag"):
        model_io.load(q)


@pytest.mark.parametrize("member", ["model.json", "weights.npz"])
def test_missing_member(trained, tmp_path, member):
    bad = tmp_path / "m.mlp"
    _rewrite(trained[1], bad, drop=member)
    with pytest.raises(ModelFileError, match=f"missing {member}"):
        model_io.load(bad)


def test_unknown_version(trained, tmp_path):
    bad = tmp_path / "v.mlp"
    _rewrite(trained[1], bad, json_fn=lambda m: {**m, "format_version": 99})
    with pytest.raises(ModelFileError, match="version 99"):
        model_io.load(bad)


def test_tampered_weights_fail_the_checksum(trained, tmp_path):
    bad = tmp_path / "w.mlp"

    def flip(b):
        b = bytearray(b)
        b[-100] ^= 0xFF
        return bytes(b)

    _rewrite(trained[1], bad, weights_fn=flip)
    with pytest.raises(ModelFileError, match="checksum"):
        model_io.load(bad)


def test_shape_disagreeing_with_model_json(trained, tmp_path):
    bad = tmp_path / "s.mlp"

    def grow(m):
        m["members"][0]["architecture"]["hidden"] = [9]
        return m

    _rewrite(trained[1], bad, json_fn=grow)
    with pytest.raises(ModelFileError, match="shape|consistent"):
        model_io.load(bad)


def test_pickled_arrays_are_refused(trained, tmp_path):
    import hashlib

    buf = io.BytesIO()
    np.savez(buf, **{"network/dense0.W": np.array([{"evil": 1}], dtype=object)})
    weights = buf.getvalue()
    bad = tmp_path / "p.mlp"
    _rewrite(trained[1], bad, json_fn=lambda m: {**m, "weights_sha256": hashlib.sha256(weights).hexdigest()},
             weights_fn=lambda _: weights)
    with pytest.raises(ModelFileError, match="pickle|disagree"):
        model_io.load(bad)


def test_failed_save_leaves_nothing_behind(trained, tmp_path, monkeypatch):
    model = trained[0]
    target = tmp_path / "out.mlp"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(OSError):
        model_io.save(model, target)
    assert os.listdir(tmp_path) == []


def test_a_features_list_changed_in_place_is_not_matched_with_stale_maps(tmp_path):
    """The column maps were cached by the list object (`is`): reversing the same list in place and passing it
    again read every feature from the wrong column, without an error."""
    import numpy as np

    from mlpcli import pipeline
    from mlpcli.config import TrainOptions
    from tables import write_table

    path = write_table(tmp_path, n_patients=20, n_features=6)
    model = pipeline.train(path, TrainOptions(hidden=[4], epochs=3, folds=1)).model
    import pandas as pd

    X = pd.read_csv(path)[model.feature_names].to_numpy()
    base = model.predict_output(X)
    names = list(model.feature_names)
    model.predict_output(X, features=names)
    names.reverse()
    np.testing.assert_allclose(model.predict_output(X[:, ::-1], features=names), base, rtol=1e-6, atol=1e-7)
