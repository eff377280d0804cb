"""predict / evaluate check that ids are unique in memory that does not grow with the ids' length: a 64-bit
hash and the row per id, a repeated hash confirmed on the ids themselves (read again from a file that can be
read twice, kept compactly for text). Hashes that collide must never make a false duplicate error, and
every real duplicate must still be found, in every input format; .h5ad obs columns are read by row range."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli import predict as lib
from mlpcli.config import TrainOptions
from mlpcli.errors import DataError
from mlpcli.pipeline import train
from mlpcli.predict import unique_ids
from tables import make_table
from cli_helpers import assert_clean_error, run


def _reference(pieces: list[tuple[list, int]]) -> str | None:
    """The row-by-row check (a dict of every id), as the error text the compact one must give, or None."""
    seen: dict = {}
    for ids, first in pieces:
        keys, empty = unique_ids.id_keys(np.asarray(ids, dtype=object))
        for i, key in enumerate(keys):
            row = first + i + 1
            earlier = seen.setdefault(key, row)
            if earlier != row:
                return f"duplicate sample id {key!r} in src: rows {earlier} and {row}"
        if empty is not None:
            return f"empty at row {first + empty + 1}"
    return None


def _compact(pieces: list[tuple[list, int]], lookup_all: list | None) -> str | None:
    checker = unique_ids.UniqueIds("id", "src", None if lookup_all is None
                                else lambda rows: np.asarray(lookup_all, dtype=object)[rows])
    try:
        for ids, first in pieces:
            checker.add(np.asarray(ids, dtype=object), first)
    except DataError as exc:
        text = str(exc)
        return text.split(" of the id column")[0] if "duplicate" in text else "empty at row " + \
            text.split("empty at row ")[1].split(";")[0]
    return None


@pytest.mark.parametrize("weak_hash", [None, 3, 1])  # the real hash; 3 values; every id one hash
def test_compact_check_agrees_with_a_dict_of_every_id_and_collisions_are_never_duplicates(monkeypatch, weak_hash):
    if weak_hash is not None:
        real = unique_ids.hash_keys
        monkeypatch.setattr(unique_ids, "hash_keys", lambda keys: real(keys) % np.uint64(weak_hash))
    rng = np.random.default_rng(weak_hash or 0)
    outcomes = set()
    for case in range(150):
        n = int(rng.integers(1, 60))
        universe = int(rng.integers(n, 4 * n + 2))  # sometimes ids repeat, sometimes not
        ids: list = [f"S{v}" for v in rng.choice(universe, n, replace=bool(rng.random() < 0.5))]
        if rng.random() < 0.3:  # numbers: 1, 1.0 and "1" are one id
            ids = [int(v[1:]) if rng.random() < 0.4 else float(v[1:]) if rng.random() < 0.5 else v[1:] for v in ids]
        if rng.random() < 0.1:
            ids[int(rng.integers(0, n))] = None
        cuts = sorted(set(rng.integers(0, n, int(rng.integers(0, 5))).tolist()) | {0, n})
        pieces = [(ids[a:b], a) for a, b in zip(cuts[:-1], cuts[1:])]
        expected = _reference(pieces)
        outcomes.add(expected is None)
        assert _compact(pieces, None) == expected, (ids, cuts)  # ids kept compactly (text input)
        assert _compact(pieces, ids) == expected, (ids, cuts)  # ids read again (files read twice)
    assert outcomes == {True, False}  # both unique and repeated ids were exercised


def test_memory_is_a_hash_and_a_row_per_id():
    checker = unique_ids.UniqueIds("id", "src", lambda rows: pytest.fail("no hash repeats"))
    n, piece = 200_000, 7_000
    for first in range(0, n, piece):
        checker.add(np.array([f"cell-{i:08d}-with-a-long-barcode" for i in range(first, min(n, first + piece))],
                             dtype=object), first)
    held = sum(h.nbytes + r.nbytes for h, r in checker.runs)
    assert held <= 12 * n
    assert len(checker.runs) <= 8  # merged: a few runs to search, not one per piece


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("ids")
    path = root / "train.csv"
    make_table(task="multiclass", seed=1).to_csv(path, index=False)
    fitted = train(str(path), TrainOptions(target=["label"], hidden=[8], epochs=5, seed=0, folds=1))
    model_path = root / "m.mlp"
    model_io.save(fitted.model, model_path)
    return str(model_path)


def _cohort() -> pd.DataFrame:
    df = make_table(task="multiclass", seed=7)
    df["sample_id"] = "N" + df["sample_id"]
    return df


def _write(df: pd.DataFrame, path, fmt: str) -> str:
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "h5ad":
        anndata = pytest.importorskip("anndata")
        features = [c for c in df.columns if c.startswith("f")]
        adata = anndata.AnnData(X=df[features].to_numpy(np.float32),
                                obs=df[["label", "patient_id", "batch"]].set_axis(df["sample_id"].to_numpy()),
                                var=pd.DataFrame(index=features))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # anndata: obs names not unique (the case tested)
            adata.write_h5ad(path)
    else:
        df.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "stdin", "parquet", "h5ad"])
def test_colliding_hashes_predict_as_before_and_real_repeats_are_found(tmp_path, model, monkeypatch, fmt):
    df = _cohort()
    path = tmp_path / f"d.{'csv' if fmt == 'stdin' else fmt}"
    source = _write(df, path, fmt)
    args = ["predict", model, "-" if fmt == "stdin" else source, "--chunksize", "10", "-q"]
    stdin = path.read_bytes() if fmt == "stdin" else None
    res = run([*args, "-o", str(tmp_path / "plain.csv")], input=stdin)
    assert res.exit_code == 0, res.output
    real = unique_ids.hash_keys
    monkeypatch.setattr(unique_ids, "hash_keys", lambda keys: real(keys) % np.uint64(2))  # every id collides
    res = run([*args, "-o", str(tmp_path / "collided.csv")], input=stdin)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "collided.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    # a real repeat, pieces apart, is still named with both rows
    df.loc[87, "sample_id"] = df.loc[2, "sample_id"]
    path.unlink()
    _write(df, path, fmt)
    res = run([*args, "-o", str(tmp_path / "out.csv")], input=path.read_bytes() if fmt == "stdin" else None)
    assert_clean_error(res, f"duplicate sample id {df.loc[2, 'sample_id']!r}", "rows 3 and 88")
    assert not (tmp_path / "out.csv").exists()


def test_dataframes_and_prepare_confirm_collisions_too(model, monkeypatch):
    m = model_io.load(model)
    real = unique_ids.hash_keys
    monkeypatch.setattr(unique_ids, "hash_keys", lambda keys: real(keys) % np.uint64(2))
    df = _cohort()
    assert len(pd.concat(lib.predict_stream(m, df, chunksize=10))) == len(df)
    assert len(lib.prepare(m, df).ids) == len(df)
    df.loc[50, "sample_id"] = df.loc[10, "sample_id"]
    with pytest.raises(DataError, match="rows 11 and 51"):
        pd.concat(lib.predict_stream(m, df, chunksize=10))
    with pytest.raises(DataError, match="rows 11 and 51"):
        lib.prepare(m, df)


def test_a_dataframes_named_or_text_index_gives_the_sample_ids_as_training_takes_them(model):
    """predict_stream and prepare numbered the rows of a frame whose sample ids were its index
    (pd.read_csv(..., index_col=0)), where pipeline.train reads them from it: "row 1" in notes and no ids out."""
    m = model_io.load(model)
    df = _cohort()
    expected = pd.concat(lib.predict_stream(m, df))
    indexed = df.set_index("sample_id")
    for frame in (indexed, indexed.rename_axis(None)):  # named; text without a name (read as sample_id)
        got = pd.concat(lib.predict_stream(m, frame))
        pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
        assert list(lib.prepare(m, frame).ids) == list(df["sample_id"])
    numbered = df.drop(columns="sample_id")  # a plain integer index is row positions, not ids
    assert "sample_id" not in pd.concat(lib.predict_stream(m, numbered)).columns
    assert list(indexed.columns) == list(df.columns[1:])  # the caller's frame is left as it was


def test_h5ad_obs_columns_are_read_by_row_range_as_whole(tmp_path):
    anndata = pytest.importorskip("anndata")
    from anndata.io import read_elem

    from mlpcli.data.h5ad import H5ad, plain_values

    n = 37
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({
        "cat": pd.Categorical(rng.choice(["a", "b", None], n)),
        "num_cat": pd.Categorical(rng.choice([1.5, 2.5], n)),
        "ints": rng.integers(0, 5, n),
        "floats": rng.normal(size=n),
        "flags": rng.random(n) < 0.5,
        "text": [f"t{i % 7}" for i in range(n)],
        "nullable": pd.array(rng.choice([1, 2, None], n), dtype="Int64"),
    }, index=[f"c{i}" for i in range(n)])
    path = tmp_path / "o.h5ad"
    anndata.AnnData(X=np.zeros((n, 2), np.float32), obs=obs).write_h5ad(path)
    names = ["obs_names", *obs.columns]
    with H5ad(path) as h:
        whole = pd.DataFrame({c: plain_values(read_elem(h.file["obs"]["_index" if c == "obs_names" else c]))
                              for c in names})
        for start, stop in ((0, n), (0, 1), (5, 17), (30, n), (36, 40)):
            part = h.obs_frame(names, start, stop)
            expected = whole.iloc[start:stop].reset_index(drop=True)
            pd.testing.assert_frame_equal(part, expected, check_dtype=False)
