"""The oldest versions pyproject.toml allows, where they differ from the current ones: each difference made here
under the current versions (tested against the oldest in a separate environment)."""


import numpy as np
import pytest

from mlpcli import metrics, ood


def test_multiclass_brier_without_the_labels_argument_of_scikit_learn_1_7(monkeypatch):
    """scikit-learn 1.6's brier_score_loss scores one probability column and has no labels=: every multiclass
    metric set failed there (TypeError, an internal error in train, cv, evaluate)."""
    import sklearn.metrics as skm

    real = skm.brier_score_loss

    def brier_1_6(y_true, y_proba=None, *, sample_weight=None, pos_label=None):
        return real(y_true, y_proba, sample_weight=sample_weight, pos_label=pos_label)

    monkeypatch.setattr(skm, "brier_score_loss", brier_1_6)
    rng = np.random.default_rng(0)
    for K in (2, 3, 5):
        P, y = rng.dirichlet(np.ones(K), 40), rng.integers(0, K, 40)
        m = metrics.compute("multiclass", y, P, [f"c{k}" for k in range(K)])
        # summed over classes; halved for two columns, as scikit-learn's scale_by_half="auto"
        assert m["brier"] == pytest.approx(np.mean(((np.eye(K)[y] - P) ** 2).sum(axis=1)) * (0.5 if K < 3 else 1))
    assert metrics.compute("multiclass", np.r_[y[:-1], 5], P, list("abcde"))["brier"] is None  # not a column
    assert metrics.compute("binary", y[:10] % 2, P[:10, :1], ["a", "b"])["brier"] is not None


def test_no_multilabel_rows_with_scikit_learn_1_6s_hamming_loss(monkeypatch):
    """scikit-learn 1.6's hamming_loss divides by zero on no rows: the metric set of a multi-label table without
    rows failed (ZeroDivisionError) instead of leaving its metrics undefined."""
    import sklearn.metrics as skm

    real = skm.hamming_loss

    def hamming_1_6(y_true, y_pred, *, sample_weight=None):
        if len(y_true) == 0:
            raise ZeroDivisionError("float division by zero")
        return real(y_true, y_pred, sample_weight=sample_weight)

    monkeypatch.setattr(skm, "hamming_loss", hamming_1_6)
    m = metrics.compute("multilabel", np.zeros((0, 2)), np.zeros((0, 2)), ["a", "b"])
    assert m["hamming_loss"] is None and m["log_loss"] is None


def test_rows_that_coincide_but_for_rounding_have_no_spread_of_their_own():
    """NumPy 1.26's LAPACK left identical rows a residual of 2e-13 where it is 0: their class had a spread of 1.5e-7,
    the tightest of all, instead of the median of the others' (and the median the other classes borrow fell)."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(60, 40)), 10 + 2 * rng.normal(size=(60, 40)), np.repeat(rng.normal(size=(1, 40)), 4, 0)])
    y = np.repeat([0, 1, 2], [60, 60, 4])
    basis = ood.fit_basis(X, labels=y, n_classes=4)
    same = basis.reference_label == 2
    basis.reference_residual[same] += 1e-14 * (basis.reference[same] ** 2).sum(axis=1)  # rounding of the norms
    scale = ood.class_scales(basis, 4)
    assert scale[2] == scale[3] == pytest.approx(np.median(scale[:2]))


def test_standard_error_whose_reader_has_gone_ends_the_command_with_141_under_rich_before_13_8(monkeypatch):
    """Rich calls Console.on_broken_pipe from 13.8 on; 13.0-13.7 raise the BrokenPipeError from print, which
    mlpcli passed on instead of silencing standard error and exiting 141 there (`2>&1 | head`)."""
    from rich.console import Console

    from test_standard_streams import test_standard_error_whose_reader_has_gone_ends_the_command_with_141 as ends_with_141

    if not hasattr(Console, "on_broken_pipe"):
        pytest.skip("rich before 13.8 itself: test_standard_streams.py meets it as it is")

    def check_buffer_13_0(self):
        if self.quiet:
            del self._buffer[:]
            return
        self._write_buffer()

    monkeypatch.setattr(Console, "_check_buffer", check_buffer_13_0)
    ends_with_141(monkeypatch)  # what the current rich does, now under 13.0's buffer flush


class _BatchOfPyarrow15:
    """A record batch as pyarrow 14-15 have it: no rename_columns (pyarrow 16+); a batch that a method returns is
    one too."""

    def __init__(self, batch):
        self._batch = batch

    def __getattr__(self, name):
        if name == "rename_columns":
            raise AttributeError(f"'pyarrow.lib.RecordBatch' object has no attribute {name!r}")
        value = getattr(self._batch, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: _BatchOfPyarrow15.of(value(*args, **kwargs))

    @staticmethod
    def of(value):
        import pyarrow as pa

        return _BatchOfPyarrow15(value) if isinstance(value, pa.RecordBatch) else value


def test_a_stored_pandas_index_is_read_without_pyarrow_16s_rename_columns(tmp_path, monkeypatch):
    """Predicting a parquet file whose sample ids are a stored pandas index failed under pyarrow 14-15, which
    pyproject allows: "internal error (AttributeError: ... no attribute 'rename_columns')"."""
    import pandas as pd

    from mlpcli.config import TrainOptions
    from mlpcli.data import streamed_frames
    from mlpcli.pipeline import train
    from mlpcli.predict import predict_stream
    from tables import make_table

    df = make_table("multiclass", n_patients=10, per_patient=2, n_features=5, seed=2)
    df.to_csv(tmp_path / "t.csv", index=False)
    model = train(str(tmp_path / "t.csv"), TrainOptions(hidden=[4], epochs=2, folds=1)).model
    df.set_index("sample_id").to_parquet(tmp_path / "indexed.parquet")

    def predicted():
        with predict_stream(model, str(tmp_path / "indexed.parquet"), chunksize=7) as stream:
            return pd.concat(list(stream), ignore_index=True)

    expected = predicted()
    real = streamed_frames.StreamedParquet._batches
    monkeypatch.setattr(streamed_frames.StreamedParquet, "_batches", lambda self, *args: map(_BatchOfPyarrow15, real(self, *args)))
    got = predicted()
    assert list(got["sample_id"]) == list(df["sample_id"])
    pd.testing.assert_frame_equal(got, expected)
