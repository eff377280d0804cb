"""The model `train` ships: cross-fitted members, out-of-fold scores, the --hidden auto portfolio,
--log1p auto, temperature calibration, --refit, and the leakage guarantees of grouped cross-fitting."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpcli import data, model_io, pipeline
from mlpcli.calibration import calibration_report, fit_temperature
from mlpcli.config import TrainOptions
from mlpcli.errors import DataError
from mlpcli.engine.functional import softmax
from mlpcli.model_selection import check_disjoint, fit_model, kfold
from mlpcli.config import AUTO_NOISE_MAX
from mlpcli.model_selection.portfolio import FULL_BATCH
from tables import make_table, write_table
from cli_helpers import run
from model_files import rewrite_model, without_trust

FAST = dict(hidden=[8], epochs=6)


def dataset(df: pd.DataFrame, **roles) -> data.Dataset:
    r, _ = data.resolve_roles(df.columns, **roles)
    return data.Dataset.from_frame(df, r)


# ── calibration ──────────────────────────────────────────────────────────────────────────────────────────


def test_temperature_recovers_the_scale_of_overconfident_logits():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=2.0, size=(4000, 4))  # true logits
    y = np.array([rng.choice(4, p=p) for p in softmax(z)])
    T = fit_temperature(2.0 * z, y, "softmax")  # the logits of a model twice too confident
    assert T == pytest.approx(2.0, rel=0.1)
    report = calibration_report(2.0 * z, y, "softmax", T)
    assert report.log_loss_after < report.log_loss_before and report.ece_after < report.ece_before / 2


def test_temperature_for_sigmoid_outputs_and_bounds():
    rng = np.random.default_rng(1)
    z = rng.normal(scale=1.5, size=(3000, 1))
    y = (rng.random(3000) < 1 / (1 + np.exp(-z[:, 0]))).astype(int)
    assert fit_temperature(0.5 * z, y, "sigmoid") == pytest.approx(0.5, rel=0.15)  # underconfident: T < 1
    # logits unrelated to the labels: the bound keeps T finite
    assert fit_temperature(rng.normal(size=(200, 1)) * 50, rng.integers(0, 2, 200), "sigmoid") <= 3.0 + 1e-6


def test_the_model_applies_its_temperature_and_predictions_keep_their_labels(tmp_path):
    ds = dataset(make_table(n_patients=40))  # 120 held-out rows: enough to fit a temperature
    fitted = fit_model(ds, TrainOptions(**FAST))
    model = fitted.model
    assert model.temperature is not None and fitted.calibration.temperature == model.temperature
    P = model.predict_output(ds.X)
    model.temperature = None
    raw = model.predict_output(ds.X)
    np.testing.assert_array_equal(P.argmax(axis=1), raw.argmax(axis=1))  # T never changes a label
    assert not np.allclose(P, raw)
    few = fit_model(dataset(make_table(n_patients=30)), TrainOptions(**FAST))  # 90 rows: too few
    assert few.model.temperature is None and any("not calibrated" in n for n in few.notes)


# ── the ensemble ─────────────────────────────────────────────────────────────────────────────────────────


def test_members_are_cross_fitted_and_every_row_is_held_out_once():
    ds = dataset(make_table(n_patients=40))
    fitted = fit_model(ds, TrainOptions(**FAST, seed=3))
    folds, _ = kfold(ds, 5, 1, 3)
    assert len(fitted.model.members) == 5 and fitted.model.is_ensemble
    assert sorted(fitted.held_out_by.tolist()) == sorted(np.concatenate(
        [np.full(len(f.test), k + 1) for k, f in enumerate(folds)]).tolist())
    for k, (run_, fold) in enumerate(zip(fitted.runs, folds)):
        assert run_.y_train.shape[0] == len(fold.train) and run_.y_val.shape[0] == len(fold.test)
        assert run_.X_train is None and run_.X_val is None  # members keep their networks, not their rows
        assert (fitted.held_out_by[fold.test] == k + 1).all()
    # the model predicts with the mean of its members' probabilities, calibrated by the temperature
    from mlpcli.calibration import temper

    P = fitted.model.predict_output(ds.X[:7])
    mean = np.mean([fitted.model.member_output(m, ds.X[:7], calibrated=False) for m in fitted.model.members], axis=0)
    np.testing.assert_allclose(P, temper(mean, fitted.model.temperature, "softmax"), rtol=1e-10)


def test_out_of_fold_scores_are_the_held_out_members_predictions():
    ds = dataset(make_table(n_patients=30))
    fitted = fit_model(ds, TrainOptions(**FAST))
    model = fitted.model
    for k, member in enumerate(model.members):
        rows = np.flatnonzero(fitted.held_out_by == k + 1)
        np.testing.assert_allclose(fitted.proba[rows], model.member_output(member, ds.X[rows]), rtol=1e-5, atol=1e-7)
    # a single member's calibrated output is softmax(z / T), as temper gives from its probabilities
    from mlpcli.calibration import temper

    one = model.member_output(model.members[0], ds.X[:5], calibrated=False)
    np.testing.assert_allclose(temper(one, model.temperature, "softmax"), model.member_output(model.members[0], ds.X[:5]),
                               rtol=1e-6, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=10, max_size=40), n_folds=st.integers(2, 5),
       seed=st.integers(0, 10_000), n_classes=st.integers(2, 3))
def test_no_group_is_ever_on_both_sides_of_a_members_split(sizes, n_folds, seed, n_classes):
    """Random group layouts: every fold of cross-fitting keeps each patient on one side."""
    groups = np.repeat([f"P{i}" for i in range(len(sizes))], sizes)
    y = np.repeat(np.arange(len(sizes)) % n_classes, sizes)
    ds = data.Dataset(X=np.zeros((len(y), 1)), y=y, feature_names=["f"], task="multiclass",
                      classes=[str(c) for c in range(n_classes)], groups=groups)
    try:
        folds, _ = kfold(ds, n_folds, 1, seed)
    except Exception as exc:  # too few groups per class for this many folds: refused, with a reason
        assert "--folds" in str(exc)
        return
    seen = np.zeros(len(y), dtype=int)
    for f in folds:
        assert not set(groups[f.train]) & set(groups[f.test])
        check_disjoint(ds, f.train, f.test, "a fold")
        seen[f.test] += 1
    assert (seen == 1).all()


def test_patients_with_a_private_signature_and_a_random_label_score_near_chance():
    """Each patient's samples share a strong private signature and one random label: a split that put a
    patient on both sides would memorise it. Out-of-fold scores must stay near chance."""
    rng = np.random.default_rng(0)
    n_patients, per = 60, 4
    signature = rng.normal(scale=3.0, size=(n_patients, 20))
    X = np.repeat(signature, per, axis=0) + rng.normal(scale=0.3, size=(n_patients * per, 20))
    label = np.repeat(rng.integers(0, 2, n_patients), per)
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(20)])
    df.insert(0, "patient_id", np.repeat([f"P{i}" for i in range(n_patients)], per))
    df.insert(0, "label", np.where(label == 1, "case", "ctrl"))
    outcome = pipeline.train_dataset(dataset(df), TrainOptions(hidden=[32], epochs=40))
    assert outcome.val_metrics["balanced_accuracy"] < 0.65
    leaky = pipeline.train_dataset(dataset(df, no_group=True, drop=["patient_id"]), TrainOptions(hidden=[32], epochs=40))
    # what ignoring the patients would report: the memorised patients look like skill
    assert leaky.val_metrics["balanced_accuracy"] > outcome.val_metrics["balanced_accuracy"] + 0.1


# ── defaults that look at the data ───────────────────────────────────────────────────────────────────────


def test_hidden_auto_chooses_from_the_portfolio_by_out_of_fold_score():
    ds = dataset(make_table(n_patients=30))
    fitted = fit_model(ds, TrainOptions(epochs=6))
    # the softmax regression early-stopped, then by L-BFGS to its optimum, then the hidden layer
    assert [(p["hidden"], p.get("optimizer")) for p in fitted.portfolio] == [([], None), ([], "lbfgs"), ([128], None)]
    scores = {(tuple(p["hidden"]), p.get("optimizer", "adamw")): p["score"] for p in fitted.portfolio}
    chosen = (tuple(fitted.options.hidden), fitted.options.optimizer)
    assert fitted.model.network.hidden == list(chosen[0])
    assert scores[chosen] >= max(scores.values()) - 0.005  # the best, or within the tie margin of it
    assert any("--hidden auto" in n for n in fitted.notes)


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_hidden_auto_note_says_the_margin_is_the_tie_margin_without_a_standard_error(task):
    """Regression compares with the fixed tie margin, and the note said "one standard error" for it too; a
    multi-label target is compared by its labels' summed log loss, with one (paired, per row)."""
    target = "lab0,lab1,lab2" if task == "multilabel" else "label"
    df = make_table(task, n_patients=30)
    roles, _ = data.resolve_roles(df.columns, target=target)
    fitted = fit_model(data.Dataset.from_frame(df, roles), TrainOptions(epochs=4, folds=2))
    note = next(n for n in fitted.notes if n.startswith("--hidden auto"))
    if task == "regression":
        assert "the tie margin" in note and "standard error of the difference" not in note
    else:
        assert "log loss" in note and "one standard error of the paired difference" in note


def test_log1p_auto_follows_the_data_and_flags_win():
    counts = make_table(n_patients=30)
    feats = [c for c in counts.columns if c.startswith("f")]
    counts[feats] = np.round(np.exp(1.5 * counts[feats].to_numpy()))  # non-negative, right-skewed
    on = fit_model(dataset(counts), TrainOptions(**FAST))
    assert on.options.log1p is True and all(m.preprocessor.config.log1p for m in on.model.members)
    assert any("--log1p auto: applied" in n for n in on.notes)
    off = fit_model(dataset(counts), TrainOptions(**FAST, log1p=False))
    assert off.options.log1p is False and not any("--log1p" in n for n in off.notes)
    plain = fit_model(dataset(make_table(n_patients=30)), TrainOptions(**FAST))  # has negative values
    assert plain.options.log1p is False


def test_folds_auto_adapts_to_a_rare_class_and_to_large_data(monkeypatch):
    df = make_table(n_patients=30)
    rare = df["patient_id"].isin(["P000", "P003", "P006"])  # typeA in 3 patients only
    df = df[~df["patient_id"].isin([f"P{i:03d}" for i in range(9, 30, 3)]) | rare]
    fitted = fit_model(dataset(df), TrainOptions(**FAST))
    assert len(fitted.model.members) == 3 and any("3 members instead of 5" in n for n in fitted.notes)
    from mlpcli import auto_defaults

    monkeypatch.setattr(auto_defaults, "SINGLE_HOLDOUT_ABOVE", 50)
    big = fit_model(dataset(make_table(n_patients=30)), TrainOptions(**FAST))
    assert len(big.model.members) == 1 and any("one network on a --val-size hold-out" in n for n in big.notes)


def test_refit_trains_one_network_on_all_rows_for_the_median_best_epoch():
    ds = dataset(make_table(n_patients=30))
    fitted = fit_model(ds, TrainOptions(hidden=[8], epochs=12, refit=True))
    best = [m["best_epoch"] for m in fitted.members]
    assert len(fitted.members) == 5 and len(fitted.model.members) == 1
    assert fitted.refit_epochs == int(np.median(best))
    refit = fitted.runs[-1]
    assert refit.X_train.shape[0] == ds.n_samples and refit.X_val is None
    assert refit.result.epochs_run == fitted.refit_epochs


# ── the command and the file ─────────────────────────────────────────────────────────────────────────────


def test_oof_file_has_predicts_columns_and_matches_the_summary(tmp_path):
    data_path = write_table(tmp_path, n_patients=30)
    oof = tmp_path / "oof.csv"
    res = run(["train", data_path, "-o", str(tmp_path / "m.mlp"), "--hidden", "8", "--epochs", "6", "--oof", str(oof),
               "--json", "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    frame = pd.read_csv(oof)
    assert list(frame.columns[:5]) == ["sample_id", "patient_id", "held_out_by_member", "label", "pred_label"]
    assert [c for c in frame.columns if c.startswith("prob_")] == ["prob_typeA", "prob_typeB", "prob_typeC"]
    assert len(frame) == 90 and frame.groupby("patient_id")["held_out_by_member"].nunique().max() == 1
    from sklearn.metrics import balanced_accuracy_score

    assert balanced_accuracy_score(frame["label"], frame["pred_label"]) == pytest.approx(
        doc["validation_metrics"]["balanced_accuracy"])


def test_oof_file_of_a_single_hold_out_holds_the_validation_rows_with_their_own_truth(tmp_path):
    """--folds 1: the file has one row per validation sample, and each row's truth is that sample's label
    in the table (the scored rows are a subset of the table, not its first rows)."""
    data_path = write_table(tmp_path, n_patients=30)
    oof = tmp_path / "oof.csv"
    res = run(["train", data_path, "-o", str(tmp_path / "m.mlp"), "--folds", "1", "--hidden", "8", "--epochs", "6",
               "--oof", str(oof), "--json", "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    frame = pd.read_csv(oof)
    table = pd.read_csv(data_path).set_index("sample_id")
    assert len(frame) == doc["split"]["n_val"] < len(table)
    assert frame["label"].tolist() == table.loc[frame["sample_id"], "label"].tolist()
    assert set(frame["held_out_by_member"]) == {1}
    from sklearn.metrics import balanced_accuracy_score

    assert balanced_accuracy_score(frame["label"], frame["pred_label"]) == pytest.approx(
        doc["validation_metrics"]["balanced_accuracy"])


def test_same_data_options_seed_give_byte_identical_model_files(tmp_path):
    data_path = write_table(tmp_path, n_patients=30)
    paths = [tmp_path / "a.mlp", tmp_path / "b.mlp"]
    for p in paths:
        assert run(["train", data_path, "-o", str(p), "--epochs", "5", "--threads", "1", "-q"]).exit_code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert run(["train", data_path, "-o", str(paths[1]), "--epochs", "5", "--threads", "1", "--seed", "1",
                "-q"]).exit_code == 0
    assert paths[0].read_bytes() != paths[1].read_bytes()


def test_a_version_1_single_network_file_still_loads_and_predicts(tmp_path):
    """Files written before ensembles (format 1: network/ and preprocessor/ arrays, one architecture)."""
    ds = dataset(make_table(n_patients=30))
    # standard scaling: no offset after the robust clip (format 10), which format 1 cannot hold
    fitted = fit_model(ds, TrainOptions(**FAST, folds=1, calibrate=False, scaling="standard"))
    path = tmp_path / "new.mlp"
    model_io.save(fitted.model, path)

    def format_1(meta):
        meta["architecture"] = meta.pop("members")[0]["architecture"]
        meta.pop("temperature"), meta.pop("conformal"), meta.pop("ood")
        meta["format_version"] = 1

    # format 1 had no prediction-set calibration or out-of-distribution basis (format 3), and one network
    old = tmp_path / "old.mlp"
    rewrite_model(path, old, format_1, lambda a: {k.removeprefix("members/0/"): v for k, v in without_trust(a).items()})
    loaded = model_io.load(old)
    assert len(loaded.members) == 1 and loaded.members[0].preprocessor is loaded.preprocessor
    np.testing.assert_array_equal(loaded.predict_output(ds.X), fitted.model.predict_output(ds.X))
    res = run(["predict", str(old), write_table(tmp_path, n_patients=30), "-o", str(tmp_path / "p.csv"), "-q"])
    assert res.exit_code == 0, res.output


def test_huge_held_out_log_losses_are_written_in_four_significant_digits():
    """Unscaled features around 1e30 gave logits in the millions, and the --hidden auto note wrote a log loss of
    "626536041381513347989504.0000": four significant digits there, four decimals for usual losses."""
    from mlpcli.model_selection.crossfit import FittedCandidate
    from mlpcli.model_selection.portfolio import Candidate, choose_candidate

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    wrong = np.eye(3)[(y + 1) % 3] * 1e6  # sure and always wrong: a log loss of about 1e6
    right = np.eye(3)[y] * 5.0
    notes: list[str] = []
    choose_candidate([FittedCandidate(Candidate((), 0.0), [], wrong, 0.0),
                      FittedCandidate(Candidate((128,), 0.0), [], right, 1.0)], notes, "out-of-fold score", y,
                     "multiclass", "softmax", log_loss=True, calibrate=False)
    assert "1e+06" in notes[0] and "000000.0000" not in notes[0], notes[0]
    assert re.search(r"hidden 128: 0\.\d{4};", notes[0]), notes[0]  # a usual loss: four decimals


def test_a_hidden_layer_must_win_by_more_than_the_noise_of_the_comparison():
    from mlpcli.model_selection.crossfit import FittedCandidate
    from mlpcli.model_selection.portfolio import Candidate, choose_candidate

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    right = np.eye(3)[y] * 5.0  # logits that are always right
    noisy = right.copy()
    noisy[:8] = np.eye(3)[(y[:8] + 1) % 3] * 5.0  # 8 of 40 wrong
    linear = FittedCandidate(Candidate((), 0.0), [], noisy, 0.80)
    hidden = FittedCandidate(Candidate((128,), 0.0), [], right, 0.83)  # 3 points better: within one standard error on 40 rows
    notes: list[str] = []
    best, table = choose_candidate([linear, hidden], notes, "out-of-fold score", y, "multiclass")
    assert best is linear and "one standard error" in notes[0]
    hidden.score = 1.0  # 20 points better: clearly more than the noise
    assert choose_candidate([linear, hidden], [], "out-of-fold score", y, "multiclass")[0] is hidden


def test_the_per_epoch_balanced_accuracy_equals_scikit_learns():
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    from mlpcli.metrics import main_metric_from_outputs

    rng = np.random.default_rng(1)
    metric = main_metric_from_outputs("multiclass", 4)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        y = rng.integers(0, 4, n)
        out = rng.normal(size=(n, 4))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert metric(out, y) == pytest.approx(balanced_accuracy_score(y, out.argmax(axis=1)))


def test_evaluate_reports_log_loss_and_ece_with_and_without_the_temperature(tmp_path):
    from mlpcli import metrics
    from mlpcli.predict import evaluate

    train_path = write_table(tmp_path, n_patients=40)
    test_df = make_table(n_patients=20, seed=7)
    model = pipeline.train(train_path, TrainOptions(**FAST)).model
    result = evaluate(model, test_df)
    cal = result.calibration
    assert cal["temperature"] == model.temperature and cal["log_loss_after"] == result.metrics["log_loss"]
    ds = dataset(test_df)
    model.temperature = None  # the outputs before the temperature, computed directly
    before = metrics.compute(ds.task, ds.y, model.predict_output(ds.X), ds.classes)
    assert cal["log_loss_before"] == pytest.approx(before["log_loss"], rel=1e-6)
    assert cal["ece_before"] == pytest.approx(before["ece"], abs=1e-6)
    assert run(["train", train_path, "-o", str(tmp_path / "m.mlp"), "--hidden", "8", "--epochs", "6", "-q"]).exit_code == 0
    test_path = write_table(tmp_path, "t.csv", n_patients=20, seed=7)
    doc = json.loads(run(["evaluate", str(tmp_path / "m.mlp"), test_path, "--json"]).stdout)
    assert doc["calibration"]["temperature"] > 0 and doc["calibration"]["log_loss_before"] is not None
    assert "calibration: temperature" in run(["evaluate", str(tmp_path / "m.mlp"), test_path]).output


def test_input_noise_auto_follows_features_per_row_and_spares_softmax_regression():
    from mlpcli.config import AUTO_NOISE_MAX
    from mlpcli.auto_defaults import auto_noise, resolve

    assert auto_noise(100, 50) == 0.0 and auto_noise(100, 100) == 0.0  # rows outnumber features: none
    assert auto_noise(100, 225) == pytest.approx(1.5)  # sqrt(p / n)
    assert auto_noise(45, 6830) == AUTO_NOISE_MAX  # capped: NCI60's p / n ~ 150 would drown every gene
    assert TrainOptions().augment_noise == 0.0  # a fixed network gets none unless asked: on NCI60 it cost 0.03
    hidden = resolve(TrainOptions(hidden=[16], augment_noise="auto"), 100, 400)
    assert hidden.augment_noise == pytest.approx(2.0)
    assert resolve(TrainOptions(hidden=[], augment_noise="auto"), 100, 400).augment_noise == 0.0  # l2 is its ridge
    assert resolve(TrainOptions(hidden=[16], augment_noise=0.25), 100, 400).augment_noise == 0.25  # flags win

    wide = make_table(n_patients=20, n_features=200)  # 60 samples, ~48 training rows per member, 200 genes
    fitted = fit_model(dataset(wide), TrainOptions(hidden=[8], epochs=4, augment_noise="auto"))
    used = [m["augment_noise"] for m in fitted.members]
    assert all(u == pytest.approx(min(AUTO_NOISE_MAX, (200 / m["n_train"]) ** 0.5)) for u, m in zip(used, fitted.members))
    assert fitted.options.augment_noise == pytest.approx(float(np.median(used)), rel=1e-3)  # what the model records
    narrow = fit_model(dataset(make_table(n_patients=20)), TrainOptions(hidden=[8], epochs=4, augment_noise="auto"))
    assert all(m["augment_noise"] == 0.0 for m in narrow.members)


def test_hidden_auto_also_tries_input_noise_only_where_features_outnumber_rows():
    from mlpcli.model_selection.portfolio import Candidate, portfolio

    lbfgs = Candidate((), 0.0, "auto", FULL_BATCH)
    plain = [Candidate((), 0.0), lbfgs, Candidate((128,), 0.0)]
    assert portfolio(TrainOptions(), 500, 150) == plain  # more rows than features: nothing to memorise
    # p > n: the hidden layer with input noise, before the plain one, so the plain layer must beat it clearly
    slow = Candidate((), 0.0, 0.001)  # (and the slower softmax regression, from 200 features)
    assert portfolio(TrainOptions(), 490, 2000) == [plain[0], slow, lbfgs, Candidate((128,), "auto"), plain[2]]
    # input noise given: L-BFGS, which minimises a fixed objective, is not tried
    assert portfolio(TrainOptions(augment_noise=0.5), 490, 2000) == [Candidate((), 0.5), Candidate((), 0.5, 0.001),
                                                                   Candidate((128,), 0.5)]
    assert portfolio(TrainOptions(hidden=[64]), 490, 2000) == [Candidate((64,), 0.0)]  # a fixed network: as asked
    assert "input noise" in Candidate((128,), "auto").describe()

    wide = make_table(n_patients=20, n_features=200)  # ~48 training rows per member, 200 genes
    fitted = fit_model(dataset(wide), TrainOptions(epochs=4))
    assert [p["hidden"] for p in fitted.portfolio] == [[], [], [], [128], [128]]
    noise = [p["augment_noise"] for p in fitted.portfolio]
    assert noise[0] == noise[1] == noise[2] == noise[4] == 0.0 and noise[3] == pytest.approx(AUTO_NOISE_MAX, rel=0.2)
    chosen = next(p for p in fitted.portfolio if p["hidden"] == fitted.options.hidden
                  and p["augment_noise"] == fitted.options.augment_noise
                  and p["lr"] in ("auto", fitted.options.lr))
    assert chosen  # the model records the candidate it shipped, noise included


@pytest.mark.parametrize("groups_of_rare, advice", [(1, None), (2, "use --folds 2 or fewer")])
def test_a_fold_count_the_rarest_class_cannot_fill_names_one_that_can_or_none(groups_of_rare, advice):
    """A class in one patient fits no fold count: the error does not send the user back to --folds 2."""
    frame = make_table(n_patients=30)
    rare = frame["patient_id"].isin(sorted(frame["patient_id"].unique())[:groups_of_rare])
    frame.loc[rare, "label"] = "rare"
    with pytest.raises(DataError, match="merge the class") as info:
        kfold(dataset(frame), 3, 1, 0, flag="--folds")
    assert (advice in str(info.value)) if advice else "use --folds" not in str(info.value)


@pytest.mark.parametrize("grouped, folds, rarest", [(True, 25, "'b' has 3 group(s)"), (False, 20, "'b' has 9 sample(s)")])
def test_the_fold_advice_names_the_rarest_class(grouped, folds, rarest):
    """Two classes short of the folds: the error named the first in label order ('Basal', 43 patients: "use --folds
    43"), and --folds 43 then failed on the next ('HER2', 15). It names the rarest, whose count works for all."""
    frame = make_table(n_patients=30, n_classes=3)
    labels = {p: ("a" if i < 6 else "b" if i < 9 else "c") for i, p in enumerate(sorted(frame["patient_id"].unique()))}
    frame["label"] = frame["patient_id"].map(labels)  # a: 6 patients (18 samples), b: 3 (9), c: 21 (63)
    ds = dataset(frame) if grouped else dataset(frame, no_group=True)
    with pytest.raises(DataError) as info:
        kfold(ds, folds, 1, 0, flag="--folds")
    assert f"class {rarest}" in str(info.value) and f"use --folds {rarest.split()[2]} or fewer" in str(info.value)


def test_the_calibration_note_counts_the_patients_of_every_held_out_row(monkeypatch):
    """Beyond conformal.MAX_ROWS held-out rows the stored scores are a subsample, and the note gave the subsample's
    summed patient weights as "N held-out scores of P patients"; it counts the held-out rows' patients."""
    from mlpcli import conformal

    ds = dataset(make_table(n_patients=40))
    monkeypatch.setattr(conformal, "MAX_ROWS", 30)  # a subsample, as a very large table would store
    fitted = fit_model(ds, TrainOptions(**FAST, seed=3))
    note = next(n for n in fitted.notes if n.startswith("prediction sets"))
    assert f"30 held-out scores of {len(np.unique(ds.groups))} patients" in note


def test_features_constant_on_some_members_rows_are_one_warning():
    """Each member warned of the features constant on its own training rows: five near-identical warnings that -q
    cannot hide (a 10x directory's rare genes); one warning now names their union and the count per member."""
    frame = make_table("binary", n_patients=40, n_features=6, seed=2)
    rng = np.random.default_rng(0)
    for j in range(6):  # nonzero in two rows only: constant on a member's rows when both are held out
        column = np.zeros(len(frame))
        column[rng.choice(len(frame), 2, replace=False)] = 1.0
        frame[f"rare{j}"] = column
    frame["flat"] = 3.0
    out = pipeline.train_dataset(dataset(frame), TrainOptions(hidden=[4], epochs=2, folds=5))
    constant = [w for w in out.warnings if "constant on the training rows" in w]
    assert len(constant) == 1, constant
    assert "per member (5 members)" in constant[0] and "'flat'" in constant[0]
    dropped = set().union(*(m.preprocessor.dropped_constant for m in out.model.members))
    assert f"{len(dropped)} in all" in constant[0]


def test_hidden_auto_tries_a_slower_softmax_regression_on_wide_tables():
    """From SLOW_LINEAR_FEATURES features, with --lr auto, the softmax regression is tried again at a tenth
    of its rate (lr auto for the width): second, so it must beat the usual rate by more than the noise."""
    from mlpcli.auto_defaults import auto_lr
    from mlpcli.model_selection.portfolio import SLOW_LINEAR_FACTOR, SLOW_LINEAR_FEATURES, Candidate, portfolio

    for p in (SLOW_LINEAR_FEATURES, 2000, 20000):
        cands = portfolio(TrainOptions(), 3 * p, p)  # more rows than features: no noisy candidate
        assert cands == [Candidate((), 0.0), Candidate((), 0.0, auto_lr(False, p) * SLOW_LINEAR_FACTOR),
                         Candidate((), 0.0, "auto", FULL_BATCH), Candidate((128,), 0.0)]
    assert portfolio(TrainOptions(), 60000, 20000)[1].lr == pytest.approx(1e-4)  # the width rule, then a tenth
    assert len(portfolio(TrainOptions(), 5000, SLOW_LINEAR_FEATURES - 1)) == 3  # narrow: the rate is not the issue
    assert len(portfolio(TrainOptions(lr=0.003), 5000, 2000)) == 3  # a rate given is the rate used
    assert "learning rate 0.001" in portfolio(TrainOptions(), 5000, 2000)[1].describe()
    slow = Candidate((), 0.0, 0.001)
    assert slow.options(TrainOptions()).lr == 0.001 and Candidate((), 0.0).options(TrainOptions(lr=0.02)).lr == 0.02


def test_hidden_auto_tries_lbfgs_only_where_its_fixed_smooth_objective_holds_the_options():
    """The softmax regression by L-BFGS comes after the early-stopped ones (it must beat them by more than the
    noise) and is left out where the options ask for what L-BFGS cannot do (an L1 kink, input noise, a rate
    schedule, batch normalisation) or already train every candidate with it."""
    from mlpcli.model_selection.portfolio import Candidate, portfolio

    lbfgs = Candidate((), 0.0, "auto", FULL_BATCH)
    for optimizer in ("adam", "adamw", "sgd"):
        assert portfolio(TrainOptions(optimizer=optimizer), 500, 150)[1] == lbfgs
    for moot in (dict(l1=1e-4), dict(augment_noise=0.1), dict(lr_schedule="cosine"), dict(batchnorm=True),
                 dict(optimizer="lbfgs")):
        assert all(c.optimizer != FULL_BATCH for c in portfolio(TrainOptions(**moot), 500, 150)), moot
    assert lbfgs.options(TrainOptions()).optimizer == "lbfgs" and lbfgs.describe() == "no hidden layer by L-BFGS"
    assert Candidate((), 0.0).options(TrainOptions(optimizer="sgd")).optimizer == "sgd"


def _marked_counts(path) -> None:
    """Sparse-ish counts of 400 cells x 1,000 genes, 6 types of 7-30 % marked by 20 genes each, the rest noise,
    written to ``path`` (a "label" column)."""
    rng = np.random.default_rng(0)
    n, d, k = 400, 1000, 6
    shares = np.array([30, 20, 15, 10, 10, 7], dtype=float)
    y = rng.choice(k, size=n, p=shares / shares.sum())
    base = rng.gamma(0.6, 1.0, size=d)
    logfc = np.zeros((k, d))
    for c in range(k):
        markers = rng.choice(d, 20, replace=False)
        logfc[c, markers] = rng.normal(0, np.log(2.5), size=20)
    rates = base / base.sum() * np.exp(logfc[y])
    mu = rates / rates.sum(axis=1, keepdims=True) * rng.lognormal(np.log(1500), 0.4, size=(n, 1))
    df = pd.DataFrame(rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float), columns=[f"g{j}" for j in range(d)])
    df["label"] = [f"c{v}" for v in y]
    df.to_csv(path, index=False)


def test_a_chosen_slower_softmax_regression_is_what_the_model_and_info_record(tmp_path):
    """On the marked counts the slower rate scores clearly better out of fold than the usual one, is chosen
    (with a negligible --l1, whose kink L-BFGS cannot minimise, so that it is not tried), and the model trains,
    refits and reports with it; `info` names it."""
    _marked_counts(tmp_path / "t.csv")
    path = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "t.csv"), "--target", "label", "--no-group", "-o", str(path), "--seed", "0",
               "--refit", "--l1", "1e-9", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    table = next(p for p in _find(doc, "portfolio") if p)
    assert [(p["hidden"], p["lr"]) for p in table[:2]] == [([], "auto"), ([], pytest.approx(0.001))]
    assert not any(p.get("optimizer") for p in table)
    assert table[1]["score"] > table[0]["score"]
    resolved = model_io.load(path).config["resolved"]
    assert resolved["hidden"] == [] and resolved["lr"] == pytest.approx(0.001)  # the refit's rate too
    out = " ".join(run(["info", str(path)]).output.split())
    assert "no hidden layer at learning rate 0.001" in out


def test_a_chosen_softmax_regression_by_lbfgs_is_what_the_model_the_refit_and_info_record(tmp_path):
    """On the same counts the softmax regression trained by L-BFGS to its penalised optimum beats both
    early-stopped rates out of fold (log loss 1.320 against 1.337 and 1.399), is chosen, and its members, the --refit network and `info` are L-BFGS's."""
    _marked_counts(tmp_path / "t.csv")
    path = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "t.csv"), "--target", "label", "--no-group", "-o", str(path), "--seed", "0",
               "--refit", "--json"])
    assert res.exit_code == 0, res.output
    table = next(p for p in _find(json.loads(res.stdout), "portfolio") if p)
    assert [(p["hidden"], p.get("optimizer")) for p in table[:3]] == [([], None), ([], None), ([], "lbfgs")]
    assert table[2]["log_loss"] < min(table[0]["log_loss"], table[1]["log_loss"])  # (chosen by log loss)
    model = model_io.load(path)
    assert model.config["resolved"]["optimizer"] == "lbfgs" and model.config["resolved"]["hidden"] == []
    assert all(m.get("converged") is not None for m in model.fit["members"])  # L-BFGS runs, to convergence
    out = " ".join(run(["info", str(path)]).output.split())
    assert "no hidden layer by L-BFGS" in out and "iterations run" in out


def test_a_refit_of_one_epoch_and_patients_of_one_sample_are_counted_in_the_singular(tmp_path):
    """"for 1 epochs (the members' median best epoch)" and "(1 samples each on average)"."""
    path = write_table(tmp_path, task="binary", n_patients=24, per_patient=1, n_features=4)
    res = run(["train", path, "--folds", "2", "--refit", "--epochs", "1", "--hidden", "4", "--n-jobs", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "groups: 24 in 'patient_id' (1 sample each on average)" in out
    assert "--refit: one network trained on all 24 rows for 1 epoch (the members' median best epoch)" in out
    assert "the shipped network refit on all rows for 1 epoch" in out and "1 epochs" not in out


def _find(doc, key):
    """Every value of ``key`` anywhere in a JSON document."""
    if isinstance(doc, dict):
        yield from ([doc[key]] if key in doc else [])
        for v in doc.values():
            yield from _find(v, key)
    elif isinstance(doc, list):
        for v in doc:
            yield from _find(v, key)


def _regression_candidates(unit: float):
    """Two --hidden auto candidates scored on the same rows, the target in `unit`s: the hidden layer's RMSE is
    a third below the linear one's (0.27 against 0.40 target SDs), a clear win whatever the unit."""
    from mlpcli.model_selection.crossfit import FittedCandidate
    from mlpcli.model_selection.portfolio import Candidate, held_out_score

    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 1)) * unit
    linear_out = y + rng.normal(size=y.shape) * 0.4 * unit
    hidden_out = y + rng.normal(size=y.shape) * 0.27 * unit
    linear = FittedCandidate(Candidate((), 0.0), [], linear_out, held_out_score("regression", y, linear_out, 1))
    hidden = FittedCandidate(Candidate((128,), 0.0), [], hidden_out, held_out_score("regression", y, hidden_out, 1))
    return linear, hidden, y


def test_hidden_auto_for_regression_does_not_depend_on_the_targets_unit():
    """The tie margin was 0.005 in the target's units: a target in kg (RMSE 0.012 against 0.008) always kept
    no hidden layer (R² 0.76), the same target in g (11.8 against 7.8) took the hidden layer (R² 0.89)."""
    from mlpcli.model_selection.portfolio import choose_candidate

    chosen = []
    for unit in (1e-3, 1.0, 1e3):
        linear, hidden, y = _regression_candidates(unit)
        notes: list[str] = []
        best, _ = choose_candidate([linear, hidden], notes, "out-of-fold score", y, "regression")
        chosen.append(best.spec.hidden)
        assert "the tie margin" in notes[0] and "RMSE" in notes[0]
    assert chosen == [(128,)] * 3
    linear, hidden, y = _regression_candidates(1e-3)  # a real tie stays a tie: the simpler one wins
    hidden.score = linear.score * (1 - 0.001)
    assert choose_candidate([linear, hidden], [], "out-of-fold score", y, "regression")[0] is linear


def test_a_refit_replays_the_members_cosine_schedule(tmp_path):
    """`--refit --lr-schedule cosine` trained the refit for the members' median best epoch with the cosine
    annealed over those few epochs, down to 1e-6 at their end, where the members at that epoch were still near
    --lr: the refit trained with another schedule than the one its epoch count was chosen on."""
    import numpy as np

    from mlpcli.pipeline import train
    from tables import make_table

    df = make_table("multiclass", n_patients=30)
    df["label"] = np.random.default_rng(0).permutation(df["label"].to_numpy())  # no signal: an early best epoch
    df.to_csv(tmp_path / "t.csv", index=False)
    out = train(str(tmp_path / "t.csv"), TrainOptions(hidden=[16], epochs=40, folds=2, refit=True, lr=0.03,
                                                      lr_schedule="cosine", seed=0, patience=3))
    *members, refit = out.fitted.runs
    last = refit.result.history[-1]
    assert last["epoch"] == out.fitted.refit_epochs < members[0].options.epochs
    at_that_epoch = [row["lr"] for row in members[0].result.history if row["epoch"] == last["epoch"]]
    assert last["lr"] == pytest.approx(at_that_epoch[0], rel=1e-12) and last["lr"] > 0.5 * 0.03


# ── 6. the temperature at an end of its range ────────────────────────────────────────────────────────


def _noisy(n: int = 100, classes: int = 2) -> data.Dataset:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 10))
    df = pd.DataFrame(X, columns=[f"g{i}" for i in range(10)])
    if classes == 2:
        df["label"] = np.where(X[:, 0] > 0, "a", "b")
    else:
        df["label"] = np.select([X[:, 0] < -0.4, X[:, 0] > 0.4], ["a", "c"], "b")
    roles, _ = data.resolve_roles(df.columns, no_group=True)
    return data.Dataset.from_frame(df, roles)


@pytest.mark.parametrize("options, end, confident", [
    # unscaled features, no hidden layer, 3 epochs: held-out probabilities far too sure (T wants > 3)
    (dict(hidden=[], epochs=3, standardize=False), "top", "overconfident"),
    # strong label smoothing: right but timid (T wants < 1/3)
    (dict(hidden=[], epochs=10, label_smoothing=0.95, lr=0.1), "bottom", "underconfident"),
], ids=["top", "bottom"])
def test_a_temperature_at_an_end_of_its_range_is_noted(options, end, confident):
    ds = _noisy(classes=2 if end == "top" else 3)
    fitted = fit_model(ds, TrainOptions(folds=2, **options))
    said = [n for n in fitted.notes if "of the range calibration fits" in n]
    assert len(said) == 1 and f"at the {end}" in said[0] and f"more {confident}" in said[0]
    assert fitted.model.temperature == pytest.approx(3.0 if end == "top" else 1 / 3, rel=1e-2)


def test_a_temperature_inside_its_range_is_not_noted():
    fitted = fit_model(_noisy(), TrainOptions(folds=2, hidden=[8], epochs=20, l2=1.0))
    assert 1 / 3 * 1.01 < fitted.model.temperature < 3 / 1.01
    assert not any("of the range calibration fits" in n for n in fitted.notes)


def test_the_missing_patient_column_warning_names_the_calibration_too(tmp_path):
    df = make_table(n_patients=12).drop(columns="patient_id")
    df.to_csv(tmp_path / "t.csv", index=False)
    ds, _ = data.load_dataset(str(tmp_path / "t.csv"))
    said = [w for w in ds.warnings if "no 'patient_id'" in w]
    assert len(said) == 1 and "validation is optimistic" in said[0] and "calibrated on it overconfident" in said[0]


def test_hidden_auto_scores_several_targets_in_units_of_their_sds(tmp_path):
    """--hidden auto chose among candidates by the pooled RMSE of several targets, in mixed units: an IC50 (1e-6)
    beside an age (tens of years) had no say. Each candidate's score is now the RMSE of the errors in units of each
    target's SD over the scored rows, which the out-of-fold predictions reproduce."""
    rng = np.random.default_rng(0)
    n, d = 120, 8
    X = rng.standard_normal((n, d))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(d)])
    df["age"] = 50 + 10 * X[:, 0] + 2 * rng.standard_normal(n)
    df["ic50"] = 1e-6 * (1 + 0.5 * np.tanh(X[:, 1] * X[:, 2]) + 0.05 * rng.standard_normal(n))
    data, model, oof = tmp_path / "mt.csv", tmp_path / "mt.mlp", tmp_path / "oof.csv"
    df.to_csv(data, index=False)
    res = run(["train", str(data), "--target", "age,ic50", "--epochs", "30", "-o", str(model), "--oof", str(oof)])
    assert res.exit_code == 0, res.output
    assert "RMSE of the 2 targets in units of their SDs" in " ".join(res.output.split())
    info = json.loads(run(["info", str(model), "--json"]).stdout)

    def portfolio(o):
        if isinstance(o, dict):
            return o["portfolio"] if "portfolio" in o else next((p for v in o.values() if (p := portfolio(v))), None)
        return next((p for v in o if (p := portfolio(v))), None) if isinstance(o, list) else None

    scores = [c["score"] for c in portfolio(info)]
    # the candidates are compared on their cross-fitted out-of-fold predictions (each row at the epoch the rest of
    # its member's held-out rows chose: ``FittedCandidate.choice_logits``), which the --oof file holds for the shipped
    # candidate where every part chose it
    fitted = fit_model(dataset(df, target=["age", "ic50"]), TrainOptions(target=["age", "ic50"], epochs=30))
    assert [c["score"] for c in fitted.portfolio] == pytest.approx(scores, rel=1e-9)
    held = pd.read_csv(oof)
    assert held[["pred_age", "pred_ic50"]].to_numpy() == pytest.approx(fitted.estimate.proba, rel=1e-6)
    assert len(set(fitted.estimate.chosen)) == 1  # (one candidate for every part: the estimate is its predictions)
    Y, P = df[["age", "ic50"]].to_numpy(), fitted.estimate.proba
    expected = -np.sqrt(np.mean(((P - Y) / Y.std(axis=0)) ** 2))
    assert any(s == pytest.approx(expected, rel=1e-6) for s in scores), (scores, expected)  # the shipped candidate's
    # not the members' own out-of-fold predictions, each at the epoch chosen on them
    own = -np.sqrt(np.mean(((fitted.proba - Y) / Y.std(axis=0)) ** 2))
    assert not any(s == pytest.approx(own, rel=1e-6) for s in scores), (scores, own)


def test_auto_noise_that_resolves_to_none_is_not_described_as_noise():
    """--augment-noise auto on 20 features and 96 rows: the candidates note said "with input noise (--augment-noise
    auto)" for both while info said "input noise 0" (auto adds none where rows outnumber features, nor to the
    softmax regression)."""
    from dataclasses import replace

    from mlpcli.config import TrainOptions
    from mlpcli.model_selection.portfolio import portfolio

    auto = replace(TrainOptions(), augment_noise="auto")
    described = [c.describe() for c in portfolio(auto, 96, 20)]
    assert described == ["no hidden layer", "no hidden layer by L-BFGS", "hidden 128"]
    wide = [c.describe() for c in portfolio(auto, 40, 300)]  # p >> n: the hidden layer's noise is auto's
    assert wide[0].startswith("no hidden layer") and "input noise" not in wide[0]
    assert any("hidden 128 with input noise (--augment-noise auto)" == d for d in wide)


def test_hidden_auto_tries_no_hidden_layer_beyond_ten_features_per_training_row(tmp_path):
    """At 60,000 genes of a few hundred rows the hidden candidates never won and took most of the time (600 x
    60,000: not done in 5 minutes, 51 s without them); an explicit --hidden still trains one."""
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection.portfolio import WIDE_FEATURES_PER_ROW, portfolio

    assert [c.hidden for c in portfolio(TrainOptions(), 40, 400)] == [(), (), (), (128,), (128,)]  # 10 per row: tried
    assert [c.hidden for c in portfolio(TrainOptions(), 40, 401)] == [(), (), ()]
    assert [c.hidden for c in portfolio(TrainOptions(hidden=[64]), 40, 4000)] == [(64,)]
    table = make_table("multiclass", n_patients=12, per_patient=2, n_features=300, seed=1)
    table.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--epochs", "3", "--folds", "2", "--json", "-o",
               str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    said = [n for n in doc["notes"] if n.startswith("--hidden auto: 300 features for about 12 training rows")]
    assert len(said) == 1 and f"(more than {WIDE_FEATURES_PER_ROW} per row)" in said[0], doc["notes"]
    assert all(not c["hidden"] for c in model_io.load(tmp_path / "m.mlp").fit["portfolio"])


def test_a_temperature_at_its_bottom_on_near_certain_held_out_calls_is_not_called_a_want_of_correction():
    from mlpcli.calibration import LOG_T_BOUNDS, bound_note

    low = float(np.exp(LOG_T_BOUNDS[0]))
    assert "more underconfident than it can correct" in bound_note(low, 0.2)
    assert "more underconfident" not in bound_note(low, 4.5e-5) and "nothing there to correct" in bound_note(low, 4.5e-5)
    assert "overconfident than it can correct" in bound_note(float(np.exp(LOG_T_BOUNDS[1])), 1e-5)
    assert bound_note(1.0, 1e-5) is None
