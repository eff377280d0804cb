"""The parquet reader: row-major float groups read as pandas reads them, columns widened late, column blocks of a
large row group, and the parquet copy of a text table giving the same numbers."""

import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io
from mlpcli.errors import DataError
from mlpcli.data import column_stats, parquet as parquet_mod
from mlpcli.data.column_stats import quartile_rows
from cli_helpers import run


def _pandas_values(path, names) -> np.ndarray:
    return pd.read_parquet(path)[names].to_numpy(dtype=np.float64, na_value=np.nan)


class _PoisonedEmpty:
    """numpy for the parquet module, whose np.empty float32 arrays hold a signalling NaN in every value (what
    uninitialised memory may hold), so that the test does not depend on the allocator's leftovers."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float, *args, **kwargs):
        out = np.empty(shape, dtype, *args, **kwargs)
        if out.dtype == np.float32:
            out.view(np.uint32)[...] = 0x7FA00000
        return out


@pytest.mark.parametrize("with_integers", [False, True])  # float groups through to_tensor; column by column
def test_parquet_matrix_widened_late_warns_nothing(tmp_path, monkeypatch, with_integers):
    """A value that is not a float32 number in the last row group of the last column group widens the matrix
    to float64: the copy includes the part not yet written (uninitialised), and that raised NumPy's
    "invalid value encountered in cast" RuntimeWarning when it held a signalling-NaN bit pattern."""
    n = 24
    df = pd.DataFrame({"label": ["a", "b"] * (n // 2)})
    for j in range(4):
        df[f"f{j}"] = (np.arange(n) * (j + 1) / 4).astype(np.float32)
    df["late"] = np.arange(n, dtype=np.float64) / 2
    df.loc[n - 2, "late"] = 0.1  # no float32 number
    if with_integers:
        df["count"] = np.arange(n) % 5
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False, row_group_size=7)
    monkeypatch.setattr(parquet_mod, "PARQUET_GROUP_BYTES", 8 * n * 2)  # two columns a read
    monkeypatch.setattr(parquet_mod, "np", _PoisonedEmpty())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ds, _ = data.load_dataset(str(path))
    assert ds.X.dtype == np.float64 and ds.X.flags.c_contiguous
    assert np.array_equal(ds.X, _pandas_values(path, ds.feature_names))


def _write(path, df: pd.DataFrame, how: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if how == "pandas":
        df.to_parquet(path, index=False, row_group_size=5)
    else:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=5, use_dictionary=True)


def _read_in_uneven_chunks(monkeypatch) -> None:
    """ParquetFile.read gives every column in chunks of its own lengths (pyarrow joins a small file's row
    groups into one chunk): a group then converts in several record batches, sliced at every column's cuts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    read = pq.ParquetFile.read

    def uneven(self, *args, **kwargs):
        table = read(self, *args, **kwargs).combine_chunks()
        columns = []
        for k, column in enumerate(table.columns):
            values = column.chunk(0)
            cuts = sorted({0, min(3 + k, len(values)), min(11, len(values)), len(values)})
            columns.append(pa.chunked_array([values.slice(a, b - a) for a, b in zip(cuts, cuts[1:])], values.type))
        return pa.Table.from_arrays(columns, schema=table.schema)

    monkeypatch.setattr(pq.ParquetFile, "read", uneven)


@pytest.mark.parametrize("how", ["pandas", "dictionary", "uneven chunks"])
@pytest.mark.parametrize("columns_per_read", [1, 3, 100])
def test_parquet_float_groups_of_every_kind_read_as_pandas_reads_them(tmp_path, monkeypatch, how, columns_per_read):
    """Float columns entirely missing, pandas' nullable Float32 / Float64 (missing values and NaN), float16 and
    booleans beside floats in one group, columns read in chunks of different lengths: the values pandas reads,
    in float32 while every value is a float32 number (then float64, from a value that is not one in the last rows of a nullable Float64 column)."""
    import pyarrow as pa

    if how == "uneven chunks":
        _read_in_uneven_chunks(monkeypatch)
    n = 19
    i = np.arange(n)
    df = pd.DataFrame({"label": ["a", "b"] * (n // 2) + ["a"]})
    df["f32"] = (i / 4).astype(np.float32)
    df["null32"] = pd.Series([None] * n, dtype="float32")
    df["ext32"] = pd.array(np.where(i % 4 == 1, None, i / 8), dtype="Float32")
    df["null64"] = np.full(n, np.nan)
    df["ext64"] = pd.array([None if k % 5 == 2 else (np.nan if k == 7 else k / 2) for k in range(n)], dtype="Float64")
    if int(pa.__version__.split(".")[0]) >= 15:  # Parquet holds float16 from pyarrow 15 on (pyproject allows 14)
        df["half"] = (i / 2).astype(np.float16)
    df["flag"] = i % 3 == 0
    path = tmp_path / "t.parquet"
    _write(path, df, how)
    monkeypatch.setattr(parquet_mod, "PARQUET_GROUP_BYTES", 8 * n * columns_per_read)
    ds, _ = data.load_dataset(str(path))
    expected = _pandas_values(path, ds.feature_names)
    assert ds.feature_names == list(df.columns[1:])  # f32, null32, ext32, null64, ext64, half, flag
    assert ds.X.dtype == np.float32 and ds.X.flags.c_contiguous
    assert np.array_equal(ds.X.astype(np.float64), expected, equal_nan=True)
    assert np.isnan(ds.X[:, 1]).all() and np.isnan(ds.X[:, 3]).all() and np.isnan(ds.X[7, 4])

    df["ext64"] = pd.array([None if k % 5 == 2 else 0.1 if k == n - 3 else k / 2 for k in range(n)], dtype="Float64")
    _write(path, df, how)
    ds, _ = data.load_dataset(str(path))
    assert ds.X.dtype == np.float64
    assert np.array_equal(ds.X, _pandas_values(path, ds.feature_names), equal_nan=True)


def test_train_and_predict_a_parquet_table_with_subsampled_quartiles(tmp_path, monkeypatch):
    """End to end on a parquet file of float32 / float64 / integer columns with missing values read through
    the row-major groups, robust scaling's quartiles from a subsample of rows: train exits 0, the model loads
    and predict labels every row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(column_stats, "QUARTILE_ROWS", 16)
    monkeypatch.setattr(parquet_mod, "PARQUET_GROUP_BYTES", 8 * 120 * 2)
    rng = np.random.default_rng(4)
    n = 120
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    columns = {"sample_id": pa.array([f"s{i}" for i in range(n)]), "label": pa.array(y)}
    for j in range(5):
        v = rng.lognormal(0, 1, n) + (y == "b") * (j % 2)
        columns[f"f{j}"] = pa.array(v.astype(np.float32 if j % 2 else np.float64), mask=rng.random(n) < 0.05)
    columns["late"] = pa.array(np.where(np.arange(n) > 100, 0.1, 1.0) + rng.normal(0, 1, n))
    columns["count"] = pa.array(rng.integers(0, 4, n))
    path, model = tmp_path / "t.parquet", tmp_path / "m.mlp"
    pq.write_table(pa.table(columns), path, row_group_size=37)
    result = run(["train", str(path), "--scaling", "robust", "--impute", "median", "--folds", "1", "--val-size",
                  "0.25", "--epochs", "3", "--hidden", "8", "--seed", "0", "-q", "-o", str(model)])
    assert result.exit_code == 0, result.output
    m = model_io.load(str(model))
    rows = quartile_rows(m.preprocessor.train_rows_)  # ~90 training rows: 16 of them
    assert rows is not None and len(rows) == 16 and m.preprocessor.center_.shape == (7,)
    out = tmp_path / "p.csv"
    result = run(["predict", str(model), str(path), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    predicted = pd.read_csv(out)
    assert list(predicted["sample_id"]) == [f"s{i}" for i in range(n)] and predicted.notna().all().all()


def _corrupt_column(path, name: str) -> None:
    """Overwrite the data of column `name` (every row group) with 0xFF bytes: its pages cannot be decoded."""
    import pyarrow.parquet as pq

    md = pq.read_metadata(path)
    raw = bytearray(path.read_bytes())
    for g in range(md.num_row_groups):
        group = md.row_group(g)
        chunk = next(group.column(k) for k in range(group.num_columns) if group.column(k).path_in_schema == name)
        raw[chunk.data_page_offset:chunk.data_page_offset + chunk.total_compressed_size] = \
            b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(raw))


def test_a_column_group_read_ahead_that_cannot_be_decoded_is_a_data_error_and_no_reader_outlives_it(tmp_path, monkeypatch):
    """The next group of columns is read in a thread while this one is copied: an undecodable group late in the
    table is the reader's one-line error naming the file, and no reading thread is left behind."""
    import threading

    n = 40
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"label": ["a", "b"] * (n // 2), **{f"f{j}": rng.standard_normal(n).astype(np.float32)
                                                            for j in range(10)}})
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False, compression="snappy")
    monkeypatch.setattr(parquet_mod, "PARQUET_GROUP_BYTES", 8 * n * 2)  # two columns a read: f8 in the fifth
    ds, _ = data.load_dataset(str(path))  # intact: the values pandas reads
    assert np.array_equal(ds.X, _pandas_values(path, ds.feature_names))
    _corrupt_column(path, "f8")
    with pytest.raises(DataError, match=rf"^cannot parse {re.escape(str(path))} as parquet: [^\n]+$"):
        data.load_dataset(str(path))
    assert not [t for t in threading.enumerate() if t.name.startswith("mlpcli-parquet")]


def test_a_parquet_file_rewritten_after_its_header_was_looked_at_is_read_as_it_is_now(tmp_path):
    """`train` looks at a parquet file's header before it reads it, and the footer's parse is kept for the read:
    a file rewritten in between (the same size, within the same clock tick) is read with its new footer."""
    from mlpcli import pipeline
    from mlpcli.config import TrainOptions

    n = 30
    rng = np.random.default_rng(1)
    path = tmp_path / "t.parquet"

    def table(prefix: str, patient: str) -> pd.DataFrame:
        return pd.DataFrame({"label": ["a", "b", "c"] * (n // 3), patient: np.arange(n) // 2,
                             **{f"{prefix}{j}": rng.standard_normal(n).astype(np.float32) for j in range(4)}})

    table("f", "patient_id").to_parquet(path, index=False)
    size, mtime = path.stat().st_size, path.stat().st_mtime_ns
    assert pipeline.needs_scikit_learn(str(path), TrainOptions()) is False  # a patient column: no splitter needed
    table("g", "donor_code").to_parquet(path, index=False)  # other names, of the same lengths
    os.utime(path, ns=(mtime, mtime))
    assert path.stat().st_size == size and path.stat().st_mtime_ns == mtime  # what a file's size and time say
    assert pipeline.needs_scikit_learn(str(path), TrainOptions()) is True  # no default patient column
    ds, _ = pipeline.load_dataset(str(path), TrainOptions(drop=("donor_code",)))
    assert ds.feature_names == ["g0", "g1", "g2", "g3"]
    assert np.array_equal(ds.X, _pandas_values(path, ds.feature_names))
