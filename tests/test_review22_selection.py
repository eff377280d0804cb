"""Review by use of the decision rule (`--decision`) in model selection: `diagnose --learning-curve`, the linear
baseline of `cv` and the tie notes of `tune`, on small tables with a rare class (shares 0.7 / 0.2 / 0.1, patients
of two samples), checked against scikit-learn and against the rule applied by hand."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from mlpcli import data
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError
from mlpcli.model_selection import cross_validation as cv
from mlpcli.model_selection import tuning
from mlpcli.model_selection.baseline import fit_linear_baseline
from mlpcli.model_selection.learning_curve import learning_curve
from mlpcli.model_selection.tuning import PointResult
from cli_helpers import assert_clean_error, run

FAST = TrainOptions(hidden=[8], epochs=15, patience=50, seed=0)


def rare_class(n_patients=90, genes=8, seed=2, sep=0.6, regression=False) -> pd.DataFrame:
    """Three classes of shares 0.7 / 0.2 / 0.1 that overlap (argmax seldom calls the rare one), 2 samples a patient."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, sep, (3, genes))
    labels = rng.choice(3, n_patients, p=[0.7, 0.2, 0.1])
    rows = []
    for p, k in enumerate(labels):
        for s in range(2):
            x = centres[k] + rng.normal(0, 1, genes)
            rows.append({"sample_id": f"P{p:03d}_{s}", "patient_id": f"P{p:03d}",
                         "label": float(x[0] + rng.normal()) if regression else ("common", "mid", "rare")[k],
                         **{f"g{j}": x[j] for j in range(genes)}})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("sel22") / "rare.csv"
    rare_class().to_csv(path, index=False)
    return str(path)


def dataset(path) -> data.Dataset:
    df = pd.read_csv(path)
    roles, _ = data.resolve_roles(df.columns)
    return data.Dataset.from_frame(df, roles)


# --- diagnose --learning-curve ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curves(table):
    return {rule: learning_curve(table, replace(FAST, decision=rule), (0.5, 1.0)) for rule in ("argmax", "balanced", "auto")}


def test_learning_curve_labels_by_the_decision_rule(curves):
    """`diagnose --learning-curve --decision balanced` printed the very same balanced accuracies as `--decision
    argmax`: every size was scored by the most probable class whatever the option said, and `auto`'s curve was not
    the one of the model train would ship. The networks are the same under every rule (same losses, same epochs);
    only the labels the scores count differ, and auto's score at each size is the one of the rule it chose."""
    argmax, balanced, auto = curves["argmax"], curves["balanced"], curves["auto"]
    for a, b, c in zip(argmax.points, balanced.points, auto.points):
        assert a.val_loss == b.val_loss == c.val_loss and a.best_epoch == b.best_epoch == c.best_epoch
        assert (a.decision, b.decision) == ("argmax", "balanced") and c.decision in ("argmax", "balanced")
        assert c.val_score == {"argmax": a, "balanced": b}[c.decision].val_score
        assert c.train_score == {"argmax": a, "balanced": b}[c.decision].train_score
    assert any(a.val_score != b.val_score for a, b in zip(argmax.points, balanced.points))
    assert (argmax.decision, balanced.decision, auto.decision) == ("argmax", "balanced", "auto")
    assert any("--decision balanced: the balanced accuracies count each size's labels by the balanced rule" in n
               for n in balanced.notes)
    assert any(n.startswith("--decision auto: each size's rule is chosen on the validation rows") for n in auto.notes)


def test_learning_curve_output_names_the_rule_and_refuses_it_for_regression(table, tmp_path):
    """The table and --json say which labels the scores count; a rule for a regression target is a usage error
    naming --decision (it was silently ignored)."""
    args = ["diagnose", "--learning-curve", table, "--hidden", "8", "--epochs", "3", "--fractions", "0.5,1"]
    res = run(args + ["--decision", "balanced"])
    assert res.exit_code == 0, res.output
    assert "labels by the balanced rule" in " ".join(res.stdout.split())
    assert "(balanced labels)" in res.stderr
    doc = json.loads(run(args + ["--decision", "balanced", "--json"]).stdout)
    assert doc["decision"] == "balanced" and {s["decision"] for s in doc["sizes"]} == {"balanced"}
    reg = tmp_path / "reg.csv"
    rare_class(regression=True).to_csv(reg, index=False)
    res = run(["diagnose", "--learning-curve", str(reg), "--hidden", "8", "--epochs", "3", "--decision", "balanced"])
    assert_clean_error(res, "--decision balanced", "regression", code=2)
    doc = json.loads(run(["diagnose", "--learning-curve", str(reg), "--hidden", "8", "--epochs", "3", "--json"]).stdout)
    assert doc["decision"] is None and {s["decision"] for s in doc["sizes"]} == {None}


def test_learning_curve_under_balanced_class_weights_says_the_rule_is_argmax(table):
    result = learning_curve(table, replace(FAST, epochs=3, decision="balanced", class_weight="balanced"), (1.0,))
    assert any("so the balanced rule labels as argmax" in n for n in result.notes)


# --- cv: the linear baseline ------------------------------------------------------------------------------------


def test_cv_baseline_labels_by_the_fold_models_rule(table):
    """`cv --decision balanced` compared the network's balanced-rule labels with the logistic regression's argmax
    labels: "mlpcli minus it: +0.096, better in 3 of 3" on a table where the regression labelled by the same rule
    scored within 0.012 of the network. The baseline now labels each fold as the fold model does."""
    ds = dataset(table)
    options = replace(FAST, epochs=5, folds=1, decision="balanced")
    result = cv.cross_validate(ds, options, folds=3, baseline=True)
    all_rows = np.arange(ds.n_samples)
    moved = False
    for f in result.folds:
        assert f.decision.rule == "balanced" and f.baseline.decision == "balanced"
        test = np.sort(f.test_rows)
        linear, _ = fit_linear_baseline(ds.subset(np.setdiff1d(all_rows, test)), options)
        P = linear.predict_output(ds.subset(test).X)  # (n_test, 3)
        by_rule = balanced_accuracy_score(ds.y[test], f.decision.classes(ds.task, P))
        assert f.baseline.score == pytest.approx(by_rule, abs=1e-12)
        moved |= abs(by_rule - balanced_accuracy_score(ds.y[test], P.argmax(axis=1))) > 1e-9
    assert moved  # the table exercises the rule: argmax labels would score otherwise


def test_cv_command_pooled_and_baseline_agree_with_the_oof_file(table, tmp_path):
    """The pooled figure is the balanced accuracy of the --oof file's labels (recomputed with scikit-learn), which
    follow the rule; the baseline line says it labelled by that rule too."""
    oof = tmp_path / "oof.csv"
    args = ["cv", table, "--folds", "3", "--member-folds", "1", "--hidden", "8", "--epochs", "5",
            "--decision", "balanced", "--oof", str(oof)]
    res = run(args)
    assert res.exit_code == 0, res.output
    assert "on the same folds, preprocessing and decision rule (the balanced rule)" in " ".join(res.stdout.split())
    doc = json.loads(run(args + ["--json", "-q"]).stdout)
    frame = pd.read_csv(oof)
    assert doc["pooled"]["value"] == pytest.approx(balanced_accuracy_score(frame["label"], frame["pred_label"]))
    for f in doc["per_fold"]:
        rows = frame[frame["fold"] == f["fold"]]
        assert f["score"] == pytest.approx(balanced_accuracy_score(rows["label"], rows["pred_label"]))
        assert f["decision"] == f["baseline"]["decision"] == "balanced"


# --- tune --------------------------------------------------------------------------------------------------------


def test_tune_records_each_folds_rule_and_explains_a_decision_tie(table):
    """`--grid "decision=auto,balanced"` tied in every fold and the note said only that "the grid does not choose
    between them": auto had chosen balanced in every fold, which nothing in the output showed."""
    ds = dataset(table)
    result = tuning.tune(ds, replace(FAST, epochs=5), {"decision": ["argmax", "balanced"]}, folds=2)
    for p in result.points:
        assert p.decisions == [p.setting["decision"]] * 2 and p.to_dict()["decisions"] == p.decisions
    best = PointResult(0, {"decision": "auto"}, [0.7, 0.8], 0.75, 0.07, rank=1, decisions=["balanced", "balanced"])
    other = PointResult(1, {"decision": "balanced"}, [0.7, 0.8], 0.75, 0.07, rank=2, decisions=["balanced", "balanced"])
    assert "(decision=auto chose balanced in every fold, so they trained the same networks and labelled them " \
           "alike)" in tuning.tie_note([best, other], "balanced_accuracy")
    forced = PointResult(0, {"decision": "argmax"}, [0.7, 0.8], 0.75, 0.07, rank=1, decisions=["argmax", "argmax"])
    assert "so the balanced rule labels as argmax" in tuning.tie_note([forced, other], "balanced_accuracy", "balanced")
    assert "labels as argmax" not in tuning.tie_note([forced, other], "balanced_accuracy")


def test_tune_refuses_a_decision_grid_on_a_regression_target_before_any_fit(tmp_path):
    """`--grid "decision=auto,balanced; l2=0,1,2"` on a numeric target trained every auto setting first, then stopped
    with "--decision balanced: ... (leave --decision out)", an option the command line did not have."""
    reg = tmp_path / "reg.csv"
    rare_class(regression=True).to_csv(reg, index=False)
    fits = []
    with pytest.raises(ConfigError, match=r"^--grid: the setting decision=balanced l2=0(\.0)? does not fit"):
        tuning.tune(dataset(reg), replace(FAST, epochs=2), {"decision": ["auto", "balanced"], "l2": [0.0, 1.0]},
                    folds=2, progress=lambda done, total: fits.append(done))
    assert fits == []
    res = run(["tune", str(reg), "--grid", "decision=auto,balanced; l2=0,1", "--hidden", "8", "--epochs", "2"])
    assert_clean_error(res, "--grid: the setting decision=balanced", "leave decision out of --grid", code=2)
    assert "--decision balanced:" not in res.output
