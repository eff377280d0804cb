"""Extreme but finite values (1e300, -1e308, 3e38, 1e-320 subnormals, mixtures) in training columns, targets,
validation, predict and evaluate inputs: each either works (finite statistics, the feature kept, finite
predictions) or is refused with a one-line DataError naming the column and row, and no raw NumPy warning
reaches the user. Values beyond float32's range (±3.4e38, the network's precision) are refused as data
errors; smaller ones must not give infinite scales, silently zeroed features or NaN predictions."""

import warnings

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from mlpcli import model_io
from mlpcli.data import PreprocessConfig, Preprocessor
from mlpcli.errors import DataError
from mlpcli.model_io import Model
from mlpcli.engine import MLP
from mlpcli.predict.shift import ShiftReport
from tables import make_table

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # a NumPy warning fails the test

FAST = ["--epochs", "3", "--hidden", "8", "-q"]


def _one_line_error(res, *needles):
    assert res.exit_code == 1, res.output
    text = res.output.strip()
    assert "Traceback" not in text and "internal error" not in text and "Warning" not in text, text
    lines = text.splitlines()  # notes may come first; the error is the last line, and one line
    assert lines[-1].startswith("Error:") and sum(line.startswith("Error:") for line in lines) == 1, text
    for needle in needles:
        assert needle in lines[-1], (needle, text)
    return lines[-1]


def _table(tmp_path, name="data.csv", cells=(), task="multiclass", **kwargs):
    """The usual small table with ``cells`` [(row, column, value)] set; written with full precision."""
    df = make_table(task=task, n_patients=30, **kwargs)
    for row, col, value in cells:
        df.loc[row, col] = value
    path = tmp_path / name
    df.to_csv(path, index=False, float_format="%.17g")
    return str(path), df


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A robust-scaled (the default) and a standard-scaled model of the usual table."""
    tmp = tmp_path_factory.mktemp("extreme")
    data, _ = _table(tmp)
    out = {"data": data}
    for scaling in ("robust", "standard"):
        out[scaling] = str(tmp / f"{scaling}.mlp")
        res = run(["train", data, "-o", out[scaling], "--folds", "1", "--scaling", scaling, *FAST])
        assert res.exit_code == 0, res.output
    return out


# ── training ─────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("value", [1e300, -1e308, 1e39, -3.5e38, np.finfo(np.float64).max])
@pytest.mark.parametrize("scaling", ["robust", "standard"])
def test_a_training_value_beyond_float32_is_refused_naming_column_and_row(tmp_path, value, scaling):
    data, df = _table(tmp_path, cells=[(3, "f02", value)])
    res = run(["train", data, "-o", str(tmp_path / "m.mlp"), "--scaling", scaling, *FAST])
    _one_line_error(res, "'f02'", "row 4", "S0003", "3.4e+38")
    assert not (tmp_path / "m.mlp").exists()


@pytest.mark.parametrize("where", ["--val-data", "target"])
def test_validation_rows_and_regression_targets_are_held_to_the_same_limit(tmp_path, where):
    if where == "--val-data":
        data, _ = _table(tmp_path)
        val, _ = _table(tmp_path, "val.csv", cells=[(7, "f05", -1e300)], seed=1)
        args = ["train", data, "--val-data", val]
        needles = ("'f05'", "row 8")
    else:
        data, _ = _table(tmp_path, task="regression", cells=[(10, "label", 1e300)])
        args = ["train", data]
        needles = ("target column 'label'", "row 11")
    _one_line_error(run([*args, "-o", str(tmp_path / "m.mlp"), *FAST]), *needles)


@pytest.mark.parametrize("scaling", ["robust", "standard"])
@pytest.mark.parametrize("values", [
    {"f02": 3e38},  # just within float32
    {"f02": -3e38, "f03": 3e38},
    {"f02": 1e30, "f04": 1e-30},  # a mixture of magnitudes
    {"f02": 1e-320, "f03": -5e-324},  # subnormals among ordinary values
])
def test_large_but_finite_training_values_keep_their_feature_and_finite_statistics(tmp_path, scaling, values):
    data, _ = _table(tmp_path, cells=[(3, col, v) for col, v in values.items()])
    out = tmp_path / "m.mlp"
    res = run(["train", data, "-o", str(out), "--folds", "1", "--scaling", scaling, *FAST])
    assert res.exit_code == 0, res.output
    model = model_io.load(out)
    pre = model.preprocessor
    assert set(values) <= set(pre.kept_features)  # not dropped, not zeroed
    for arr in (pre.center_, pre.scale_, pre.train_mean_, pre.train_sd_):
        assert np.isfinite(arr).all()
    assert (pre.scale_ > 0).all() and (pre.train_sd_ > 0).all()
    X = pd.read_csv(data)[model.feature_names].to_numpy()
    Z = pre.transform(X)
    assert np.isfinite(Z).all()
    j = pre.kept_features.index(next(iter(values)))
    assert np.ptp(Z[:, j]) > 0  # the feature still varies as the network sees it
    res = run(["predict", str(out), data, "-o", str(tmp_path / "p.csv"), "-q"])
    assert res.exit_code == 0, res.output
    probs = pd.read_csv(tmp_path / "p.csv").filter(like="prob_").to_numpy()
    assert np.isfinite(probs).all()


def test_spreads_below_float64_resolution_are_constant_and_tiny_ones_are_scaled_exactly():
    """A feature varying only in subnormals (1e-320) is constant for float64 arithmetic: dropped like one,
    not scaled by 0 or a subnormal SD into infinities. One varying around 1e-200, whose squared deviations
    underflow, gets its true SD (not 0)."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 3))
    X = np.column_stack([base, rng.integers(0, 3, 50) * 1e-320, base[:, 0] * 1e-200])
    names = ["a", "b", "c", "subnormal", "tiny"]
    for scaling in ("standard", "robust"):
        pre = Preprocessor(PreprocessConfig(scaling=scaling)).fit(X, names)
        assert "subnormal" in pre.dropped_constant and "tiny" in pre.kept_features
        assert np.isfinite(pre.scale_).all() and (pre.scale_ >= 1e-250).all()
        Z = pre.transform(X)
        assert np.isfinite(Z).all()
        if scaling == "standard":
            tiny = pre.kept_features.index("tiny")
            np.testing.assert_allclose(pre.scale_[tiny], base[:, 0].std() * 1e-200, rtol=1e-12)
            np.testing.assert_allclose(Z[:, tiny], Z[:, 0], rtol=1e-9, atol=1e-9)  # same values, scaled down


def test_robust_scaling_saturates_extreme_inputs_instead_of_zeroing_them():
    """The smooth clip maps a value far beyond the training spread to about ±3 (its limit), where the
    naive formula overflowed to z / inf = 0, the training median."""
    rng = np.random.default_rng(1)
    pre = Preprocessor(PreprocessConfig(scaling="robust")).fit(rng.normal(size=(40, 2)), ["a", "b"])
    X = np.array([[1e300, -1e300], [3e38, -1e200], [np.finfo(np.float64).max, 1e155], [20.0, -20.0]])
    Z = pre.transform(X)
    assert np.isfinite(Z).all()
    clipped = Z + pre.offset_  # the clip's output, before the training mean is subtracted
    np.testing.assert_allclose(clipped[:3], np.sign(X[:3]) * 3.0, rtol=1e-12)
    assert 2.0 < clipped[3, 0] < 3.0 and -3.0 < clipped[3, 1] < -2.0  # ordinary clipping is unchanged


# ── predict and evaluate ─────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("scaling", ["robust", "standard"])
@pytest.mark.parametrize("value", [1e300, -1e308, 1e39])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_an_input_value_beyond_float32_is_refused_naming_file_column_and_row(trained, tmp_path, scaling, value,
                                                                             command):
    data, _ = _table(tmp_path, "new.csv", cells=[(12, "f07", value)], seed=4)
    args = [command, trained[scaling], data] + (["-o", str(tmp_path / "p.csv")] if command == "predict" else [])
    _one_line_error(run(args), "new.csv", "'f07'", "row 13", "S0012")
    assert not (tmp_path / "p.csv").exists()


def test_evaluate_refuses_a_regression_target_beyond_float32_naming_its_row(tmp_path):
    data, _ = _table(tmp_path, task="regression")
    model = tmp_path / "r.mlp"
    assert run(["train", data, "-o", str(model), "--folds", "1", *FAST]).exit_code == 0
    new, _ = _table(tmp_path, "new.csv", task="regression", cells=[(20, "label", -1e300)], seed=6)
    _one_line_error(run(["evaluate", str(model), new, "--chunksize", "7", "-q"]), "new.csv", "target column 'label'",
                    "row 21", "S0020")


@pytest.mark.parametrize("scaling", ["robust", "standard"])
def test_large_input_values_within_the_limit_predict_finite_with_a_shift_report(trained, tmp_path, scaling):
    """3e38 and 1e-320 in new samples: finite probabilities (robust: saturated; standard: a confident but
    finite prediction, or a one-line error naming the feature), a cohort-shift report whose numbers print."""
    cells = [(r, f"f{c:02d}", v) for r in range(0, 40, 3) for c, v in ((1, 3e38), (2, -3e38), (3, 1e-320))]
    data, _ = _table(tmp_path, "new.csv", cells=cells, seed=5)
    report = tmp_path / "shift.csv"
    res = run(["predict", trained[scaling], data, "-o", str(tmp_path / "p.csv"), "--shift-report", str(report)])
    if res.exit_code == 0:
        probs = pd.read_csv(tmp_path / "p.csv").filter(like="prob_").to_numpy()
        assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1.0)
        shift = pd.read_csv(report)
        assert "f01" in set(shift["feature"]) and "Traceback" not in res.output
    else:  # standard scaling: 3e38 lies ~1e38 SDs out, the float32 network overflows; refused, naming row and feature
        line = _one_line_error(res, "new.csv", "row 1:", "not finite")
        assert "feature 'f01'" in line or "feature 'f02'" in line, line


def test_a_value_beyond_the_training_spread_of_a_tiny_feature_names_the_feature(tmp_path):
    """Standard scaling of a feature whose training SD is 1e-30: a new value of 1e10 lies 1e40 SDs out, beyond
    what a network input can be. Refused naming the feature, not NaN probabilities."""
    data, df = _table(tmp_path, cells=[])
    df["f03"] = df["f03"] * 1e-30
    df.to_csv(data, index=False, float_format="%.17g")
    model = tmp_path / "m.mlp"
    assert run(["train", data, "-o", str(model), "--folds", "1", "--scaling", "standard", *FAST]).exit_code == 0
    new = df.copy()
    new.loc[5, "f03"] = 1e10
    new.to_csv(tmp_path / "new.csv", index=False, float_format="%.17g")
    _one_line_error(run(["predict", str(model), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv")]),
                    "'f03'", "training SD")


def test_an_output_that_overflows_is_a_data_error_naming_the_row():
    """Inputs within the limit can still overflow a float32 network (huge weights times a large z-score):
    the prediction is refused naming the row, never returned as NaN."""
    rng = np.random.default_rng(2)
    pre = Preprocessor(PreprocessConfig(scaling="standard")).fit(rng.normal(size=(30, 2)), ["a", "b"])
    net = MLP(2, [4], 3, seed=0, dtype="float32")
    net.set_state({k: np.full(v.shape, 1e30 if k.endswith(".W") else 0.0) for k, v in net.get_state().items()})
    model = Model.single(net, pre, task="multiclass", classes=["x", "y", "z"], feature_names=["a", "b"],
                         target_names=["label"], loss={"name": "ce", "params": {}})
    X = rng.normal(size=(6, 2)) * 1e-40  # outputs 0 * 1e30 * ... = finite
    assert np.isfinite(model.predict_output(X)).all()
    X[4] = [1e9, 1e9]
    with pytest.raises(DataError, match="row 5: the model's output is not finite"):
        model.predict_output(X)
    with pytest.raises(DataError, match="row 105"):
        model.predict_output(X, first_row=100)


def test_shift_report_messages_print_when_a_statistic_is_not_finite():
    features = ["a", "b"]
    report = ShiftReport(features=features, n=30, new_mean=np.array([np.inf, 0.0]), new_sd=np.array([np.inf, 1.0]),
                         train_mean=np.zeros(2), train_sd=np.ones(2), filled=np.zeros(2, dtype=bool))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = report.message()
    assert "cohort shift" in text and "n/a" in text
    assert report.most_shifted(1)[0]["mean_shift_sd"] is None  # JSON gets null, not inf


def test_a_regression_target_millions_of_sds_from_the_rest_is_refused_naming_the_column(tmp_path):
    path, df = _table(tmp_path, task="regression")
    target = [c for c in df.columns if c not in ("sample_id", "patient_id", "batch") and not c.startswith("f")][0]
    df.loc[7, target] = 1e30  # within float32, but an entry error: it overflows the held-out squared error
    df.to_csv(path, index=False, float_format="%.17g")
    out = tmp_path / "m.mlp"
    line = _one_line_error(run(["train", path, "--target", target, "-o", str(out), *FAST]), f"target '{target}'",
                           df.loc[7, "sample_id"], "training SDs")
    assert not out.exists(), line


def test_the_console_entry_point_never_shows_a_numpy_warning():
    """Through the console entry point (what users run), a NumPy RuntimeWarning raised anywhere in a
    command (here an overflow planted in the data reader) never reaches stderr; --debug shows it."""
    import subprocess
    import sys

    script = ("import sys, numpy as np, mlpcli.data as d\n"
              "real = d.load_dataset\n"
              "def noisy(*a, **k):\n"
              "    np.float32(3e38) * np.float32(10)\n"
              "    return real(*a, **k)\n"
              "d.load_dataset = noisy\n"
              "from mlpcli.cli import main\n"
              "main(sys.argv[1:])\n")
    args = ["train", "no-such-table.csv", "-q"]
    quiet = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    debug = subprocess.run([sys.executable, "-c", script, "--debug", *args], capture_output=True, text=True, timeout=120)
    assert "RuntimeWarning" in debug.stderr, debug.stderr  # the planted overflow does warn
    assert "RuntimeWarning" not in quiet.stderr and quiet.returncode == 1, quiet.stderr
    assert quiet.stderr.strip().splitlines()[-1].startswith("Error:"), quiet.stderr
