"""Memory and time outside the epochs (issue 13, item 7), as behaviour: feature matrices in float32 where
every value is a float32 number (and the same model and checksum as the float64 matrix of the same
numbers), parquet read column by column with pandas' values, the --log1p auto decision on a row
subsample with negativity over every value, the one-pass preprocessing and its quartiles equal to
np.percentile's, and commands that compute no metric do not import scikit-learn."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io
from mlpcli.config import TrainOptions
from mlpcli.data import counts as counts_mod
from mlpcli.data.row_view import RowView  # what Dataset.subset holds as X
from mlpcli.data import blocks, column_stats
from mlpcli.data.column_stats import column_percentiles
from mlpcli.data.scaling import NORMAL_IQR
from mlpcli.pipeline import train_dataset
from cli_helpers import run
from tables import make_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _float32_table(n_patients: int = 30) -> pd.DataFrame:
    df = make_table(n_patients=n_patients, n_features=8)
    features = [c for c in df.columns if c.startswith("f")]
    df[features] = np.exp(df[features]).astype(np.float32)  # non-negative, float32 storage
    return df


def test_float32_parquet_gives_a_float32_matrix_and_the_model_of_its_float64_numbers(tmp_path):
    df = _float32_table()
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False)
    ds, _ = data.load_dataset(str(path))
    assert ds.X.dtype == np.float32 and ds.X.flags.c_contiguous
    features = [c for c in df.columns if c.startswith("f")]
    assert np.array_equal(ds.X, df[features].to_numpy())
    wide = data.Dataset(**{**ds.__dict__, "X": ds.X.astype(np.float64)})
    options = TrainOptions(folds=1, epochs=3, hidden=[8], log1p=True)
    narrow_model = train_dataset(ds, options, source="t").model
    wide_model = train_dataset(wide, options, source="t").model
    assert narrow_model.provenance["data_sha256"] == wide_model.provenance["data_sha256"]
    model_io.save(narrow_model, tmp_path / "a.mlp")
    model_io.save(wide_model, tmp_path / "b.mlp")
    assert (tmp_path / "a.mlp").read_bytes() == (tmp_path / "b.mlp").read_bytes()


def test_checksum_of_the_same_numbers_is_the_same_in_float32_and_float64():
    """A float64 matrix of float32 numbers (NaN, infinities and -0.0 included) hashes as the float32 one, in blocks of
    rows however many; one value that is no float32 number, in the first block or the last, makes it another
    table's checksum (its float64 bytes), and the same float64 matrix always gives the same one."""
    rng = np.random.default_rng(0)
    X = rng.random((37, 5)).astype(np.float32)
    X[3, 2], X[4, 1], X[5, 0] = np.nan, -np.inf, -0.0
    y = np.arange(37)
    assert data.data_checksum(X, y) == data.data_checksum(X.astype(np.float64), y)
    assert data.data_checksum(X[:0], None) == data.data_checksum(X[:0].astype(np.float64), None)
    tall = rng.random((3000, 200)).astype(np.float32)  # several blocks of rows (_HASH_BLOCK values each)
    assert data.data_checksum(tall, None) == data.data_checksum(tall.astype(np.float64), None)
    for row in (0, -1):
        finer = tall.astype(np.float64)
        finer[row, 7] += 1e-12  # no float32 number
        assert data.data_checksum(finer, None) not in (data.data_checksum(tall, None),
                                                       data.data_checksum(finer.astype(np.float32), None))
        assert data.data_checksum(finer, None) == data.data_checksum(finer.copy(), None)
    beyond = X.astype(np.float64)
    beyond[0, 0] = 1e300  # beyond float32's range
    assert data.data_checksum(beyond, y) != data.data_checksum(beyond.astype(np.float32), y)
    Y = X.copy()
    Y[0, 0] += 1
    assert data.data_checksum(Y, y) != data.data_checksum(X, y)


@pytest.mark.parametrize("name, values, dtype", [
    ("counts.csv", np.arange(60) % 7, np.float32),  # counts: exact in float32
    ("decimals.csv", np.round(np.arange(60) * 0.1, 1), np.float64),  # 0.1 is no float32 number
    ("big.parquet", np.arange(60, dtype=np.int64) + 2**40, np.float64),  # beyond float32's 24 bits
    ("wide.parquet", np.arange(60, dtype=np.float64) / 4, np.float32),  # float64 storage, float32 numbers
])
def test_matrix_dtype_follows_the_values_not_the_storage(tmp_path, name, values, dtype):
    df = make_table(n_patients=20, n_features=3)
    df["f00"], df["f01"], df["f02"] = np.arange(60) % 5, values, np.roll(values, 7)  # one column decides
    path = tmp_path / name
    df.to_csv(path, index=False) if name.endswith(".csv") else df.to_parquet(path, index=False)
    ds, _ = data.load_dataset(str(path))
    assert ds.X.dtype == dtype
    assert np.array_equal(ds.X[:, ds.feature_names.index("f01")].astype(np.float64), values.astype(np.float64))


def test_parquet_columns_read_as_pandas_reads_them(tmp_path):
    df = make_table(n_patients=20, n_features=3)
    df["ints"] = pd.array([1, None, 3] * 20, dtype="Int64")  # nulls in an integer column: NaN
    df["floats"] = np.where(np.arange(60) % 5 == 0, np.nan, np.arange(60) * 0.5).astype(np.float32)
    df["flags"] = np.arange(60) % 2 == 0  # booleans: 1 and 0
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False)
    ds, _ = data.load_dataset(str(path))
    expected = pd.read_parquet(path)[ds.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
    assert np.array_equal(ds.X.astype(np.float64), expected, equal_nan=True)
    assert any("missing values" in n for n in ds.notes)


@pytest.mark.parametrize("row_group_size", [None, 7], ids=["one-chunk", "row-groups"])
def test_parquet_float_columns_read_from_their_buffers_as_pandas_reads_them(tmp_path, row_group_size):
    """Float columns without missing values are read as views of their buffers (one chunk) or converted (several
    chunks, missing values): the same numbers either way, float32 and float64 side by side."""
    df = make_table(n_patients=20, n_features=4)
    df["f32"] = (np.arange(60) * 0.25 - 3).astype(np.float32)
    df["f32_missing"] = np.where(np.arange(60) % 4 == 0, np.nan, np.arange(60) * 0.5).astype(np.float32)
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False, row_group_size=row_group_size)
    ds, _ = data.load_dataset(str(path))
    expected = pd.read_parquet(path)[ds.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
    assert np.array_equal(ds.X.astype(np.float64), expected, equal_nan=True)
    assert np.isnan(ds.X[:, ds.feature_names.index("f32_missing")]).sum() == 15


def test_log1p_decision_on_a_row_subsample_checks_every_value_for_negativity(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.lognormal(0, 1, (60, 12))  # heavy-tailed, non-negative: looks like counts
    full = counts_mod.looks_like_counts(X)
    assert full is not None
    monkeypatch.setattr(counts_mod, "SKEW_ROWS", 20)
    sub = counts_mod.looks_like_counts(X)
    assert sub is not None and sub != full  # computed on 20 rows
    assert counts_mod.looks_like_counts(X) == sub  # the same rows every time
    rows = np.linspace(0, 59, 20).round().astype(int)
    outside = int(np.setdiff1d(np.arange(60), rows)[0])
    Y = X.copy()
    Y[outside, 3] = -0.5  # a negative value in a row the skewness does not read
    assert counts_mod.looks_like_counts(Y) is None
    Y = X.copy()
    Y[outside, 3], Y[outside, 4] = -0.5, np.nan  # ... in a row left out for its missing value
    assert counts_mod.looks_like_counts(Y) is None
    view = RowView.of(X, np.arange(0, 60, 2))  # a subset's rows, without a copy
    assert counts_mod.looks_like_counts(view) == counts_mod.looks_like_counts(X[::2])


def test_log1p_decision_on_a_small_table_uses_every_complete_row():
    rng = np.random.default_rng(2)
    X = rng.lognormal(0, 1, (50, 6))
    X[7, 1] = np.nan
    complete = np.delete(X, 7, axis=0)
    z = (complete - complete.mean(axis=0)) / complete.std(axis=0)
    expected = float(np.median((z ** 3).mean(axis=0)))
    assert counts_mod.looks_like_counts(X) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 100, 101, 1001])
@pytest.mark.parametrize("order", ["C", "F"])
def test_column_percentiles_equal_numpys_bit_for_bit(n, order):
    rng = np.random.default_rng(n)
    X = np.asarray(rng.lognormal(0, 2, (n, 6)), order=order)
    X[:, 2] = 1.5
    X[::2, 3] = 0.0
    for qs in ((25.0, 50.0, 75.0), (10.0, 90.0), (0.0, 100.0), (33.3, 66.7, 99.9)):
        assert column_percentiles(X, qs).tobytes() == np.percentile(X, qs, axis=0).tobytes(), (n, qs)
    before = X.copy()
    column_percentiles(X, (50.0,))
    assert np.array_equal(X, before)  # partitions its own copy


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("settings", [dict(log1p=True, impute="median"), dict(scaling="standard", impute="mean"),
                                      dict(top_var=6, impute="zero"), dict(standardize=False, impute="median")])
def test_one_pass_fit_transform_equals_fit_then_transform(monkeypatch, order, settings):
    rng = np.random.default_rng(3)
    X = rng.lognormal(1, 1, (90, 14)).astype(np.float32)
    X[:, [2, 9, 13]] = 4.0  # constant columns, squeezed out of the result in place
    X[5, 7] = np.nan
    names = [f"g{j}" for j in range(14)]
    for block in (1 << 20, 200):  # one block, and blocks of two columns
        monkeypatch.setattr(blocks, "BLOCK_VALUES", block)
        a = data.Preprocessor(data.PreprocessConfig(**settings))
        Z = a.fit_transform(RowView.of(X, np.arange(90)), names, dtype=np.float32, order=order)
        b = data.Preprocessor(data.PreprocessConfig(**settings)).fit(X, names)
        assert Z.shape == (90, len(b.kept_features)) and Z.flags[f"{order}_CONTIGUOUS"]
        assert np.array_equal(Z, b.transform(X, dtype=np.float32, order=order))
        assert "g2" not in a.kept_features and a.kept_features == b.kept_features
        for attr in ("center_", "scale_", "train_mean_", "train_sd_", "impute_values_"):
            assert np.array_equal(getattr(a, attr), getattr(b, attr), equal_nan=True), attr


def test_predict_and_help_do_not_import_scikit_learn(tmp_path):
    table = tmp_path / "t.csv"
    make_table(n_patients=20, n_features=4).to_csv(table, index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(table), "--folds", "1", "--epochs", "2", "-q", "-o", str(model)]).exit_code == 0
    probe = ("import runpy, sys\n"
             "sys.argv = ['mlpcli', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('mlpcli', run_name='__main__')\n"
             "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))\n")
    env = {**os.environ, "PYTHONPATH": ROOT}
    for args in (["--help"], ["predict", str(model), str(table), "-o", str(tmp_path / "p.csv"), "-q"]):
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env,
                             cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "sklearn" not in out.stdout.strip().splitlines()[-1], (args, out.stdout[-300:])


def test_no_commands_help_imports_pandas():
    """`recalibrate --help` imported pandas and the whole data layer (0.81 s against 0.32 s for the others'): a
    constant of its options came from the module that recalibrates."""
    from mlpcli.cli import COMMANDS

    probe = ("import runpy, sys\n"
             "for command in sys.argv[1:]:\n"
             "    sys.argv = ['mlpcli', command, '--help']\n"
             "    try:\n        runpy.run_module('mlpcli', run_name='__main__')\n"
             "    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
             "print('pandas' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", probe, *COMMANDS], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_command_imports_only_its_own_module_of_the_command_line():
    """The startup does not import what a command does not use: `info` loads no other command's module
    (cv, explain, gradcheck, ...), and the group's help still lists every command."""
    probe = ("import runpy, sys\n"
             "sys.argv = ['mlpcli', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('mlpcli', run_name='__main__')\n"
             "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('mlpcli.cli.')))\n")
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", probe, "info", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    from mlpcli.cli import COMMANDS, all_commands

    loaded = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert [m for m in loaded if m in COMMANDS] == ["info"], loaded

    assert sorted(all_commands()) == sorted(COMMANDS)
    listed = run(["--help"]).output.split("Commands:")[1]
    assert all(f"  {name} " in listed for name in COMMANDS)


def test_the_groups_help_and_completion_import_no_command():
    """`mlpcli --help` and the shell's completion of a command name list the commands by their one-line helps
    without importing any of them (it imported all ten, and pandas with them: 1.2 s of a 0.4 s help)."""
    probe = ("import runpy, sys\n"
             "sys.argv = ['mlpcli', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('mlpcli', run_name='__main__')\n"
             "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('mlpcli.cli.')),\n"
             "      'pandas' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    from mlpcli.cli import SHORT_HELP, all_commands

    for name, line in SHORT_HELP.items():
        assert f"  {name.ljust(12)} {line}" in out.stdout, name
    loaded, pandas = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert not set(ast.literal_eval(loaded)) & set(SHORT_HELP) and pandas == "False", out.stdout[-300:]
    completion = {**env, "_MLPCLI_COMPLETE": "bash_complete", "COMP_WORDS": "mlpcli tr", "COMP_CWORD": "1"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=completion)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "plain,train"
    assert out.stdout.splitlines()[1] == f"{loaded} False"  # the same plumbing, no command
    assert {name: command.get_short_help_str() for name, command in all_commands().items()} == SHORT_HELP


@pytest.mark.parametrize("arrow", ["to_tensor", "without to_tensor"])
@pytest.mark.parametrize("columns_per_read", [2, 100])
def test_parquet_float_groups_read_whole_as_pandas_reads_them(tmp_path, monkeypatch, columns_per_read, arrow):
    """Groups of float32 / float64 columns go through Arrow's row-major conversion a record batch at a time;
    a value that needs float64 in a later batch of a later group widens the matrix without losing a value
    already read, and missing values are NaN; a group with an integer column is read column by column."""
    import pyarrow as pa

    from mlpcli.data import parquet as parquet_mod

    n = 40
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "label": ["a", "b"] * (n // 2)})
    df["f0"] = (rng.integers(0, 50, n) / 4).astype(np.float32)
    df["f1"] = np.where(np.arange(n) % 6 == 0, np.nan, np.arange(n) * 0.5).astype(np.float32)
    df["f2"] = np.arange(n, dtype=np.float64) / 8  # float64 storage, float32 numbers
    df["f3"] = np.arange(n, dtype=np.float64) / 2
    df.loc[33, "f3"] = 0.1  # no float32 number, in the last row group
    df["f4"] = np.arange(n) % 3  # integers
    df["f5"] = (np.arange(n) * 0.75).astype(np.float32)
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False, row_group_size=15)
    monkeypatch.setattr(parquet_mod, "PARQUET_GROUP_BYTES", 8 * n * columns_per_read)
    if arrow == "without to_tensor":  # an older pyarrow: the float groups fall back to the column path
        def missing(batch):
            raise pa.ArrowNotImplementedError("to_tensor")
        monkeypatch.setattr(parquet_mod, "batch_rows", missing)
    converted = []
    if arrow == "to_tensor":
        if not hasattr(pa.RecordBatch, "to_tensor"):  # pyarrow 14 (pyproject allows it): the column path only
            pytest.skip("pyarrow without RecordBatch.to_tensor")
        real = parquet_mod.batch_rows
        monkeypatch.setattr(parquet_mod, "batch_rows", lambda batch: converted.append(batch.num_rows) or real(batch))
    ds, _ = data.load_dataset(str(path))
    assert ds.X.dtype == np.float64 and ds.X.flags.c_contiguous
    if arrow == "to_tensor" and columns_per_read == 2:  # the float-only groups, a row group at a time
        assert converted and sum(converted) % n == 0  # every row of each group
    else:  # one group holding the integer column: column by column
        assert not converted
    expected = pd.read_parquet(path)[ds.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
    assert np.array_equal(ds.X, expected, equal_nan=True)
    df.loc[33, "f3"] = 0.5
    df.to_parquet(path, index=False, row_group_size=15)
    ds, _ = data.load_dataset(str(path))
    assert ds.X.dtype == np.float32
    expected = pd.read_parquet(path)[ds.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
    assert np.array_equal(ds.X.astype(np.float64), expected, equal_nan=True)


@pytest.mark.parametrize("order", ["C", "F"])
def test_robust_quartiles_of_many_rows_read_from_a_fixed_random_subsample(monkeypatch, order):
    """From 2 x QUARTILE_ROWS training rows on, robust scaling's median and IQR are those of QUARTILE_ROWS rows
    drawn with a fixed seed (np.percentile's numbers on them), whatever the column blocks; below, of every row."""
    rng = np.random.default_rng(5)
    X = np.asarray(rng.lognormal(1, 1, (301, 7)), order=order)
    X[:, 4] = np.round(X[:, 4])  # coarse values: ties
    names = [f"g{j}" for j in range(7)]
    monkeypatch.setattr(column_stats, "QUARTILE_ROWS", 40)
    rows = column_stats.quartile_rows(301)
    assert len(rows) == 40 and np.all(np.diff(rows) > 0) and np.array_equal(rows, column_stats.quartile_rows(301))
    assert column_stats.quartile_rows(80) is not None and column_stats.quartile_rows(79) is None
    q25, median, q75 = np.percentile(X[rows], (25, 50, 75), axis=0)
    untied = [j for j in range(7) if j != 4]
    for block in (1 << 20, 3 * 301):  # one block, blocks of three columns
        monkeypatch.setattr(blocks, "BLOCK_VALUES", block)
        pre = data.Preprocessor(data.PreprocessConfig(scaling="robust"))
        Z = pre.fit_transform(X, names)
        assert np.array_equal(pre.center_[untied], median[untied])
        np.testing.assert_allclose(pre.scale_[untied], np.minimum(q75 - q25, NORMAL_IQR * X.std(axis=0))[untied],
                                   rtol=1e-12, atol=0)
        np.testing.assert_allclose(Z, pre.transform(X), rtol=0, atol=1e-12)
    got = column_percentiles(X, (25.0, 75.0), rows=rows)
    assert got.tobytes() == np.percentile(X[rows], (25, 75), axis=0).tobytes()
    monkeypatch.setattr(column_stats, "QUARTILE_ROWS", 200)  # 301 rows: fewer than twice, so every row
    pre = data.Preprocessor(data.PreprocessConfig(scaling="robust")).fit(X, names)
    assert np.array_equal(pre.center_[0], np.median(X[:, 0]))


def test_robust_quartiles_of_an_ordered_table_see_every_kind_of_row(monkeypatch):
    """Rows in a pattern (paired normal / tumour samples, alternating) are subsampled at random, not every k-th
    row: every second row would have read the normal rows alone (a marker's IQR 1.4 where all rows give 4)."""
    monkeypatch.setattr(column_stats, "QUARTILE_ROWS", 64)
    rng = np.random.default_rng(2)
    n = 256
    tumour = np.arange(n) % 2 == 1
    X = np.column_stack([rng.normal(0, 1, n) + 4 * tumour, rng.normal(0, 1, n)])
    pre = data.Preprocessor(data.PreprocessConfig(scaling="robust")).fit(X, ["marker", "other"])
    q25, median, q75 = np.percentile(X[:, 0], (25, 50, 75))
    scale = min(q75 - q25, NORMAL_IQR * X[:, 0].std())  # the SD's: a bimodal marker's IQR spans both modes
    assert abs(pre.center_[0] - median) < 0.5 and abs(pre.scale_[0] - scale) < 0.5
    every_second = np.percentile(X[::2, 0], (25, 75))
    assert every_second[1] - every_second[0] < scale - 1  # what the k-th-row rule read


@pytest.mark.parametrize("order", ["C", "F"])
def test_column_percentiles_of_chosen_rows_gathered_into_scratch(order):
    rng = np.random.default_rng(8)
    X = np.asarray(rng.normal(size=(50, 4)), order=order)
    rows = np.array([0, 3, 4, 17, 30, 49])
    scratch = np.empty_like(X)
    before = X.copy()
    got = column_percentiles(X, (25.0, 50.0, 75.0), scratch, rows=rows)
    assert got.tobytes() == np.percentile(X[rows], (25, 50, 75), axis=0).tobytes()
    assert np.array_equal(X, before)
