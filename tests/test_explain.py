"""mlpcli explain: integrated gradients through the engine's backward pass, rankings, permutation importance."""

import json
import os
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.errors import ConfigError, DataError, OptionError, OutputError
from mlpcli.explain import explain, feature_rng, input_gradients, integrated_gradients, load_samples, permutation_importance
from mlpcli.explain.attribution import attribution_chunks, class_index, completeness_gap, top_features
from cli_helpers import assert_clean_error, run
from tables import make_table

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "sample_data")
TRAIN = os.path.join(SAMPLE, "tumour_subtypes.csv.gz")
TEST = os.path.join(SAMPLE, "test_cohort.csv.gz")
NEW = os.path.join(SAMPLE, "new_cohort.csv.gz")


@pytest.fixture(scope="module")
def subtypes(tmp_path_factory):
    """A linear ensemble (the portfolio's first candidate) of 3 float64 members on the sample data."""
    path = tmp_path_factory.mktemp("explain") / "subtypes.mlp"
    res = run(["train", TRAIN, "-o", str(path), "--hidden", "", "--folds", "3", "--dtype", "float64", "--quiet"])
    assert res.exit_code == 0, res.output
    return str(path)


def _counts_table(tmp_path, seed=0, n_features=10):
    """Non-negative, count-like features (log1p applies) with a constant column the preprocessing drops."""
    df = make_table(n_patients=30, n_features=n_features, seed=seed)
    feats = [c for c in df.columns if c.startswith("f")]
    df[feats] = np.round(np.exp(df[feats].to_numpy() + 1.0), 3)
    df["fconst"] = 5.0
    path = tmp_path / f"counts{seed}.csv"
    df.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def relu_models(tmp_path_factory):
    """Small ReLU ensembles with log1p and robust scaling, in float64 and float32."""
    tmp = tmp_path_factory.mktemp("relu")
    data = _counts_table(tmp)
    models = {}
    for dtype in ("float64", "float32"):
        path = tmp / f"{dtype}.mlp"
        res = run(["train", data, "-o", str(path), "--hidden", "16,8", "--folds", "2", "--dtype", dtype, "--log1p",
                   "--epochs", "30", "--quiet"])
        assert res.exit_code == 0, res.output
        models[dtype] = str(path)
    return models, data


def _precision_at_20(expl, markers):
    return {c: float(np.mean([g in set(markers.gene[markers.subtype == c])
                              for g in expl.table[expl.table["class"] == c]["feature"]])) for c in expl.classes}


def test_top_genes_recover_the_planted_markers_for_ig_and_permutation(subtypes):
    from threadpoolctl import threadpool_limits

    markers = pd.read_csv(os.path.join(SAMPLE, "markers.csv"))
    model = model_io.load(subtypes)
    samples = load_samples(model, TRAIN)
    with threadpool_limits(limits=1):  # the command's default --threads 1 (a second thread fought the other worker)
        ig = explain(model, samples.X, samples.y, top=20)
    assert all(len(ig.table[ig.table["class"] == c]) == 20 for c in ig.classes)
    precision = _precision_at_20(ig, markers)
    assert set(precision) == {"LumA", "LumB", "Basal", "HER2"}
    assert min(precision.values()) >= 0.8, precision
    # 2 shuffles per gene, not the default 5: the same precision (0.9-1.0 with 2 to 5), at 2,000 genes x 611 rows x 3
    # members in a third of the time
    with threadpool_limits(limits=1):
        perm = explain(model, samples.X, samples.y, method="permutation", top=20, repeats=2)
    precision = _precision_at_20(perm, markers)
    assert min(precision.values()) >= 0.8, precision
    assert any("held-out" in n for n in perm.notes)


def test_markers_file_is_what_the_generator_writes(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample_data", os.path.join(SAMPLE, "make_sample_data.py"))
    gen = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(__import__("sys").modules, "make_sample_data", gen)  # dataclasses look their module up
    spec.loader.exec_module(gen)
    monkeypatch.setattr(gen, "OUT_DIR", tmp_path)
    genes = gen.make_gene_model(np.random.default_rng(np.random.SeedSequence(gen.SEED).spawn(4)[0]))
    written = gen.write_markers(genes)
    with open(written, "rb") as a, open(os.path.join(SAMPLE, "markers.csv"), "rb") as b:
        assert a.read() == b.read()


def test_the_generator_without_anndata_writes_the_tables_and_says_what_the_last_file_needs(tmp_path, monkeypatch,
                                                                                             capsys):
    """On a base install (no h5ad extra) the generator wrote the tables, then ended in a ModuleNotFoundError
    traceback, where its README said it needed only numpy and pandas. The tables' making is stubbed: it is the end
    that is checked."""
    import importlib.util
    import sys

    import pandas as pd

    spec = importlib.util.spec_from_file_location("make_sample_data", os.path.join(SAMPLE, "make_sample_data.py"))
    gen = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_sample_data", gen)
    spec.loader.exec_module(gen)
    monkeypatch.setattr(gen, "OUT_DIR", tmp_path)
    table = pd.DataFrame({"label": list(gen.SUBTYPES)})
    for name, stub in (("make_gene_model", lambda rng: None), ("write_markers", lambda genes: tmp_path / "m.csv"),
                       ("make_patients", lambda *a: []), ("make_cohort", lambda *a: table),
                       ("write_csv", lambda t, name: tmp_path / name)):
        monkeypatch.setattr(gen, name, stub)
    monkeypatch.setitem(sys.modules, "anndata", None)  # import anndata: ImportError
    gen.main()
    out = capsys.readouterr().out
    assert "single_cell.h5ad: not written: it needs anndata (the h5ad extra" in out and "tumour_subtypes" in out


def test_completeness_on_float64_and_float32_relu_ensembles(relu_models):
    models, data = relu_models
    for dtype, tol in (("float64", 1e-3), ("float32", 1e-2)):
        model = model_io.load(models[dtype])
        X = load_samples(model, data).X
        for output in ("logit", "prob"):
            for baseline in ("mean", "zero"):
                A, gap = integrated_gradients(model, X, output=output, baseline=baseline, return_gap=True)
                assert A.shape == (3, len(X), len(model.feature_names))
                assert gap.max() < tol, (dtype, output, baseline, gap.max())
    # the explained probability is the one predict gives, and its attributions sum to its change
    model = model_io.load(models["float64"])
    X = load_samples(model, data).X
    chunk = next(attribution_chunks(model, X, np.full((1, len(X)), 2), output="prob", refine=1e-3))
    np.testing.assert_allclose(chunk.fx[0], model.predict_output(X)[:, 2], rtol=1e-12, atol=1e-15)
    assert completeness_gap(chunk.values, chunk.fx, chunk.fb).max() <= 1e-3
    assert chunk.steps.max() == 64  # every layer's kinks are found on the path: no row needs refining


def test_a_feature_the_network_cannot_see_gets_exactly_zero(relu_models, tmp_path):
    models, data = relu_models
    model = model_io.load(models["float64"])
    assert "fconst" in model.feature_names and "fconst" not in model.preprocessor.kept_features
    X = load_samples(model, data).X
    A = integrated_gradients(model, X)
    j = model.feature_names.index("fconst")
    assert np.all(A[:, :, j] == 0.0)
    assert np.all(input_gradients(model, X, "typeA")[:, j] == 0.0)
    # features dropped by --top-var, too
    top = tmp_path / "top.mlp"
    assert run(["train", data, "-o", str(top), "--top-var", "4", "--hidden", "", "--folds", "1", "--epochs", "20",
                "--quiet"]).exit_code == 0
    model = model_io.load(str(top))
    kept = set().union(*(m.preprocessor.kept_features for m in model.members))
    dropped = [j for j, f in enumerate(model.feature_names) if f not in kept]
    assert dropped
    A = integrated_gradients(model, load_samples(model, data).X, target="typeB")
    assert np.all(A[:, dropped] == 0.0) and np.abs(A).sum() > 0


def test_raw_input_gradient_goes_back_through_log1p_and_robust_scaling(relu_models):
    """The engine's input gradient, times each preprocessing step's derivative, against central differences
    of the explained function in the raw (count) features."""
    models, data = relu_models
    model = model_io.load(models["float64"])
    X = load_samples(model, data).X[:4]
    G = input_gradients(model, X, "typeC")
    k = model.classes.index("typeC")

    def f(Xp):
        return np.mean([m.raw_output(Xp)[:, k] for m in model.members], axis=0)

    used = [j for j, name in enumerate(model.feature_names) if name in model.preprocessor.kept_features]
    for j in used:
        h = 1e-6 * np.maximum(1.0, np.abs(X[:, j]))
        Xp, Xm = X.copy(), X.copy()
        Xp[:, j] += h
        Xm[:, j] -= h
        numeric = (f(Xp) - f(Xm)) / (2 * h)
        np.testing.assert_allclose(G[:, j], numeric, rtol=1e-4, atol=1e-7)


def test_integrated_gradients_target_forms_and_per_row_targets(relu_models):
    models, data = relu_models
    model = model_io.load(models["float64"])
    X = load_samples(model, data).X[:6]
    fixed = {"tol": np.inf}  # the same steps for every row (no row integrated again), so the results compare
    every = integrated_gradients(model, X, **fixed)
    np.testing.assert_allclose(integrated_gradients(model, X, target="typeB", **fixed), every[1])
    np.testing.assert_allclose(integrated_gradients(model, X, target=["typeC", "typeA"], **fixed), every[[2, 0]])
    per_row = np.array(["typeA", "typeB", "typeC", "typeA", "typeB", "typeC"])
    mixed = integrated_gradients(model, X, target=per_row, **fixed)
    for i, c in enumerate(per_row):
        np.testing.assert_allclose(mixed[i], every[model.classes.index(c), i])
    with pytest.raises(ConfigError, match="'typeZ' is not one of the model's classes"):
        integrated_gradients(model, X, target="typeZ")


def test_permutation_importance_equals_shuffling_through_predict(relu_models):
    """The rank-one shortcut gives what shuffling a column and calling predict_output gives."""
    models, data = relu_models
    model = model_io.load(models["float64"])
    samples = load_samples(model, data)
    drops, _ = permutation_importance(model, samples.X, samples.y, repeats=2, seed=3, scoring="log_loss")
    used = [j for j, f in enumerate(model.feature_names) if f in model.preprocessor.kept_features]
    perms = {}
    for j in used:  # each feature's shuffles from its own generator (seed, name)
        rng = feature_rng(3, model.feature_names[j])
        perms[j] = [rng.permutation(len(samples.X)) for _ in range(2)]
    y = np.array([model.classes.index(c) for c in samples.y])  # the labels as class indices

    def class_logloss(P):
        lp = np.log(np.clip(P[np.arange(len(y)), y], 1e-15, 1))
        return np.array([lp[y == c].mean() for c in range(len(model.classes))])

    base = class_logloss(model.predict_output(samples.X))
    for j in used[:3]:
        for r in range(2):
            Xs = samples.X.copy()
            Xs[:, j] = Xs[perms[j][r], j]
            np.testing.assert_allclose(drops[r, j], base - class_logloss(model.predict_output(Xs)), atol=1e-10)


def test_single_network_stability_comes_from_bootstrap(relu_models, tmp_path):
    _, data = relu_models
    path = tmp_path / "one.mlp"
    assert run(["train", data, "-o", str(path), "--hidden", "8", "--folds", "1", "--dtype", "float64",
                "--epochs", "20", "--quiet"]).exit_code == 0
    model = model_io.load(str(path))
    samples = load_samples(model, data)
    e = explain(model, samples.X, samples.y, top=3, bootstrap=10)
    st = e.stability["typeA"]
    assert st["unit"] == "bootstrap resample" and st["n"] == 10 and 0 <= st["mean_overlap"] <= 1
    assert e.table["member_overlap"].between(0, 1).all()


def test_cli_table_json_and_plot(subtypes, tmp_path):
    out, plot = tmp_path / "genes.csv", tmp_path / "genes.png"
    res = run(["explain", subtypes, TEST, "-o", str(out), "--plot", str(plot), "--top", "5", "-q"])
    assert res.exit_code == 0, res.output
    assert "completeness" in res.output and "LumB" in res.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["class", "rank", "feature", "score", "mean_abs", "direction", "fraction",
                                   "member_overlap"]
    assert len(table) == 20 and set(table["direction"]) <= {"up", "down"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = run(["explain", subtypes, NEW, "--json", "--top", "3", "--class", "HER2"])
    doc = json.loads(res.stdout)
    assert doc["grouped_by"] == "predicted class" and doc["classes"] == ["HER2"]
    assert doc["completeness"]["max_gap"] < 1e-3 and doc["completeness"]["passed"]
    assert len(doc["rankings"]) == 3 and doc["stability"]["HER2"]["unit"] == "member"


def test_cli_errors_are_one_line_and_leave_no_output(subtypes, tmp_path):
    out = tmp_path / "genes.csv"
    assert_clean_error(run(["explain", subtypes, TEST, "--top", "0"]), "--top", code=2)
    assert_clean_error(run(["explain", subtypes, TEST, "--class", "Luminal"]), "'Luminal' is not one of the model's classes",
                       code=2)
    assert_clean_error(run(["explain", subtypes, NEW, "--method", "permutation", "-o", str(out)]),
                       "--method permutation needs labelled samples")
    # more steps cannot meet 1e-300 (below float64's round-off): the error says what can, not "raise --steps"
    assert_clean_error(run(["explain", subtypes, TEST, "--tol", "1e-300", "-o", str(out)]), "completeness check failed",
                       "below the round-off of the network's float64 arithmetic", "use --tol 1e-12 or more")
    assert_clean_error(run(["explain", subtypes, TEST, "--plot", str(tmp_path / "x.gif")]), "--plot", ".gif",
                       code=2)
    assert not out.exists() and os.listdir(tmp_path) == []


def test_baseline_mean_needs_the_training_mean(subtypes):
    model = model_io.load(subtypes)
    model.preprocessor.train_mean_ = None
    X = np.ones((2, len(model.feature_names)))
    with pytest.raises(ConfigError, match="--baseline mean: the model stores no training mean"):
        integrated_gradients(model, X, target="HER2")
    assert integrated_gradients(model, X, target="HER2", baseline="zero").shape == X.shape
    with pytest.raises(DataError, match="columns"):
        integrated_gradients(model, X[:, :5], target="HER2")


@pytest.mark.parametrize("kind", ["ensemble", "one network"])
def test_predict_explain_adds_each_rows_top_genes(subtypes, relu_models, tmp_path, kind):
    if kind == "ensemble":
        model_path, data = subtypes, NEW
    else:
        data = relu_models[1]
        model_path = str(tmp_path / "one.mlp")
        assert run(["train", data, "-o", model_path, "--hidden", "8", "--folds", "1", "--dtype", "float64",
                    "--log1p", "--epochs", "20", "--quiet"]).exit_code == 0
    out, chunked = tmp_path / "p.csv", tmp_path / "q.csv"
    assert run(["predict", model_path, data, "-o", str(out), "--explain", "3", "-q"]).exit_code == 0
    assert run(["predict", model_path, data, "-o", str(chunked), "--explain", "3", "--chunksize", "7",
                "-q"]).exit_code == 0
    frame = pd.read_csv(out)
    assert list(frame.columns)[-1] == "top_features"
    pd.testing.assert_frame_equal(frame, pd.read_csv(chunked))
    model = model_io.load(model_path)
    X = load_samples(model, data).X
    label = [c for c in frame.columns if c.startswith("pred_")][0]
    A = integrated_gradients(model, X, target=frame[label].astype(str).to_numpy(), steps=16, tol=np.inf)
    for i in (0, len(frame) // 2, len(frame) - 1):
        pairs = [p.split(":") for p in frame["top_features"][i].split(";")]
        assert len(pairs) == 3
        expected = np.argsort(-A[i])[:3]
        assert [g for g, _ in pairs] == [model.feature_names[j] for j in expected]
        np.testing.assert_allclose([float(v) for _, v in pairs], A[i, expected], rtol=1e-3)
    assert_clean_error(run(["predict", model_path, data, "--explain", "0"]), "--explain", code=2)


def test_explain_fills_missing_genes_up_to_max_missing_as_predict_does(subtypes, tmp_path):
    """explain has predict's --max-missing, which its missing-gene error recommends."""
    frame = pd.read_csv(TEST)
    genes = [c for c in frame.columns if c.startswith("GENE")]
    gone = genes[:max(1, int(len(genes) * 0.15))]  # more than --fill-missing's default 10 %
    path = tmp_path / "partial.csv"
    frame.drop(columns=gone).to_csv(path, index=False)
    refused = run(["explain", subtypes, str(path), "--fill-missing", "mean", "-q"])
    assert_clean_error(refused, "--max-missing")
    out = tmp_path / "ranking.csv"
    res = run(["explain", subtypes, str(path), "--fill-missing", "mean", "--max-missing", "0.2", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out)) > 0


def test_explain_leaves_out_samples_the_label_sheet_lacks_as_evaluate_does(subtypes, tmp_path):
    """Labels from a --samples sheet that lacks some samples: those are left out with a note (evaluate's
    rule), where explain failed on their missing labels."""
    frame = pd.read_csv(TEST)
    matrix, sheet = tmp_path / "matrix.csv", tmp_path / "sheet.csv"
    frame.drop(columns=["label"]).to_csv(matrix, index=False)
    frame[["sample_id", "label"]].iloc[5:].to_csv(sheet, index=False)
    res = run(["explain", subtypes, str(matrix), "--samples", str(sheet), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert sum(doc["n_samples"].values()) == len(frame) - 5
    assert "left out" in res.stderr


def test_dataframes_are_matched_by_column_name_in_every_api(subtypes):
    """A DataFrame in another column order, or with its id and label columns, gives the same outputs as the
    model's order: predict_output, explain, integrated_gradients (it gave another ranking, silently)."""
    model = model_io.load(subtypes)
    table = pd.read_csv(TEST).head(40)
    ordered = table[model.feature_names]
    shuffled = ordered[list(np.random.default_rng(0).permutation(ordered.columns))]
    P = model.predict_output(ordered)
    assert np.array_equal(model.predict_output(shuffled), P) and np.array_equal(model.predict_output(table), P)
    y = table["label"].to_numpy()  # class names, as a table holds them
    a = explain(model, ordered, y, top=5, seed=0).table
    b = explain(model, shuffled, y, top=5, seed=0).table
    assert a.sort_values(["class", "feature"]).reset_index(drop=True).equals(
        b.sort_values(["class", "feature"]).reset_index(drop=True))
    A = integrated_gradients(model, table, target=model.classes[0])  # ids, batch and label left out
    assert A.shape == (40, len(model.feature_names))
    with pytest.raises(DataError, match="lacks 1 of the features"):
        model.predict_output(ordered.drop(columns=[model.preprocessor.kept_features[0]]))


@pytest.mark.parametrize("labels, needle", [
    (lambda y: y[:5], "5 labels for 40 samples"),
    (lambda y: np.where(np.arange(len(y)) == 0, 7, 0), "7 is not a class index"),
    (lambda y: np.array(["nope"] * len(y)), "labels the model does not know: 'nope'"),
])
def test_labels_that_do_not_fit_the_samples_are_a_data_error(subtypes, labels, needle):
    model = model_io.load(subtypes)
    table = pd.read_csv(TEST).head(40)
    with pytest.raises(DataError, match=needle):
        explain(model, table[model.feature_names], labels(table["label"].to_numpy()), top=3)
    with pytest.raises(DataError, match=needle):
        permutation_importance(model, table[model.feature_names], labels(table["label"].to_numpy()), repeats=1)


def test_a_per_row_target_of_one_row_or_a_series_is_per_row(subtypes):
    model = model_io.load(subtypes)
    table = pd.read_csv(TEST).head(3)
    one = integrated_gradients(model, table.head(1), target=table["label"].to_numpy()[:1])
    assert one.shape == (1, len(model.feature_names))
    series = integrated_gradients(model, table, target=table["label"])
    assert np.allclose(series[0], integrated_gradients(model, table.head(1), target=table["label"].iloc[0])[0])


def test_permutation_importance_does_not_depend_on_the_columns_order(subtypes):
    """Each feature is shuffled by its own generator, seeded with its name: another column order gives the
    same importances, feature by feature (it gave other noise before)."""
    model = model_io.load(subtypes)
    table = pd.read_csv(TEST).head(60)
    ordered = table[model.feature_names]
    reversed_ = ordered[ordered.columns[::-1]]
    a, _ = permutation_importance(model, ordered, table["label"].to_numpy(), repeats=2, seed=1)
    b, _ = permutation_importance(model, reversed_, table["label"].to_numpy(), repeats=2, seed=1)
    np.testing.assert_allclose(a, b[:, ::-1], atol=1e-12)


def test_explain_ranks_a_multilabel_model_per_label(tmp_path):
    """A multi-label model is ranked per label (it was refused until review 19; the rankings' content is checked in
    tests/test_explain_multilabel.py): every label of the table, the table written."""
    from tables import make_table

    df = make_table(task="multilabel", seed=2)
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(path), "--target", "lab0,lab1,lab2", "--epochs", "2", "--folds", "2", "--hidden", "4",
                "-q", "-o", str(model)]).exit_code == 0
    res = run(["explain", str(model), str(path), "-o", str(tmp_path / "g.csv"), "-q"])
    assert res.exit_code == 0, res.output
    ranked = set(pd.read_csv(tmp_path / "g.csv")["label"])  # a multi-label model's rankings are of labels
    assert ranked == {lab for lab in ("lab0", "lab1", "lab2") if df[lab].sum() > 0}


@pytest.fixture(scope="module")
def number_classes(tmp_path_factory):
    """(model, table) paths for classes that are numbers: 1, 2, 3 (multiclass), and a binary 0, 1 trained with
    --positive 0, which the model stores as the classes 1, 0."""
    tmp = tmp_path_factory.mktemp("numbers")
    tables = {"multiclass": (make_table(seed=3, string_labels=False).assign(label=lambda d: d.label + 1), []),
              "binary": (make_table("binary", seed=3, string_labels=False), ["--positive", "0"])}
    paths = {}
    for kind, (table, extra) in tables.items():
        data, path = tmp / f"{kind}.csv", tmp / f"{kind}.mlp"
        table.to_csv(data, index=False)
        res = run(["train", str(data), "-o", str(path), "--hidden", "4", "--folds", "2", "--epochs", "5", "-q", *extra])
        assert res.exit_code == 0, res.output
        paths[kind] = (str(path), str(data))
    return paths


@pytest.mark.parametrize("kind", ["multiclass", "binary"])
def test_integer_labels_name_the_models_number_classes(number_classes, kind):
    """Labels 1, 2, 3 (or 0, 1 with the classes stored as 1, 0) are the classes' names, as evaluate reads them
    and as classes= and target= are: explain and permutation_importance took them as class indices, counting
    every sample for another class (or failing on the label 3)."""
    path, data = number_classes[kind]
    model = model_io.load(path)
    table = pd.read_csv(data)
    assert model.classes == ([1, 2, 3] if kind == "multiclass" else [1, 0])
    counts = {str(c): int((table.label == c).sum()) for c in model.classes}
    # every class asked for: a binary model is ranked for its positive class alone by default (review 18)
    every = {"classes": model.classes}
    for y in (table.label.to_numpy(), table.label, table.label.astype(str).to_numpy()):
        assert explain(model, table, y, top=2, **every).n_samples == counts
    last = model.classes[-1]
    sub = table[table.label != last]
    assert explain(model, sub, sub.label.to_numpy(), top=2, **every).n_samples == {**counts, str(last): 0}
    assert explain(model, table, table.label, method="permutation", top=2, repeats=1, **every).n_samples == counts
    as_names, _ = permutation_importance(model, table, table.label.astype(str).to_numpy(), repeats=1)
    np.testing.assert_array_equal(permutation_importance(model, table, table.label.to_numpy(), repeats=1)[0], as_names)
    flags = [arg for c in model.classes for arg in ("--class", str(c))]
    doc = json.loads(run(["explain", path, data, "--json", "--top", "2", *flags]).stdout)  # load_samples' labels
    assert doc["n_samples"] == counts


def test_class_indices_still_work_for_classes_that_are_not_numbers(subtypes):
    model = model_io.load(subtypes)
    table = pd.read_csv(TEST).head(40)
    names = table["label"].to_numpy()
    indices = np.array([model.classes.index(c) for c in names])
    assert explain(model, table, indices, top=2).n_samples == explain(model, table, names, top=2).n_samples


def test_attributions_are_in_the_models_feature_order_whatever_the_dataframes(relu_models):
    """integrated_gradients and input_gradients of a DataFrame in another column order (ids and labels among
    them) give columns in model.feature_names order: they came in the DataFrame's order, so naming them
    with model.feature_names named the wrong genes."""
    models, data = relu_models
    model = model_io.load(models["float64"])
    table = pd.read_csv(data).head(12)
    genes = sorted(model.feature_names, reverse=True)
    assert genes != model.feature_names
    ordered = integrated_gradients(model, table[model.feature_names], target="typeA")
    assert np.abs(ordered).sum() > 0
    np.testing.assert_array_equal(integrated_gradients(model, table[["sample_id", "label", *genes]], target="typeA"),
                                  ordered)
    np.testing.assert_array_equal(integrated_gradients(model, table[genes].to_numpy(), target="typeA", features=genes),
                                  ordered)
    # a feature no member uses may be absent: its column is still there, 0
    np.testing.assert_array_equal(integrated_gradients(model, table[genes[1:]], target="typeA"), ordered)
    assert genes[0] == "fconst"
    np.testing.assert_array_equal(input_gradients(model, table[["sample_id", *genes]], "typeA"),
                                  input_gradients(model, table[model.feature_names].to_numpy(), "typeA"))


def _train(tmp, name: str, table: pd.DataFrame, *extra: str) -> tuple[str, str]:
    data, model = tmp / f"{name}.csv", tmp / f"{name}.mlp"
    table.to_csv(data, index=False)
    res = run(["train", str(data), "-o", str(model), "--hidden", "8", "--epochs", "8", "-q", *extra])
    assert res.exit_code == 0, res.output
    return str(model), str(data)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small models on a 3-class table with two constant genes the preprocessing drops (the model uses 10
    of its 12 genes): a 5-member ensemble, a single network (bootstrap stability), and one on numbered classes."""
    tmp = tmp_path_factory.mktemp("explain_review")
    table = make_table(n_patients=30, n_features=10, seed=1).assign(fconst1=1.0, fconst2=2.0)
    numbered = make_table(n_patients=30, n_features=6, seed=2, string_labels=False).assign(label=lambda d: d.label + 1)
    return {"ensemble": _train(tmp, "ensemble", table, "--folds", "5"),
            "single": _train(tmp, "single", table, "--folds", "1"),
            "numbered": _train(tmp, "numbered", numbered, "--folds", "2")}


@pytest.mark.parametrize("kind", ["ensemble", "single"])
def test_stability_overlap_stays_within_0_and_1_when_top_exceeds_the_genes_used(models, kind):
    """--top 12 on a model using 10 of 12 genes: every unit's top list was padded with the 2 dropped genes,
    and the mean top-K overlap came out as 12/10 = 1.2 (printed as "top-12 overlap 1.20")."""
    model = model_io.load(models[kind][0])
    samples = load_samples(model, models[kind][1])
    result = explain(model, samples.X, samples.y, top=12, bootstrap=None if kind == "ensemble" else 5)
    for name, st in result.stability.items():
        assert st["top"] == 10, st
        assert 0 <= st["mean_overlap"] <= 1, (name, st)
    assert result.table["member_overlap"].between(0, 1).all()
    assert not result.table["feature"].str.startswith("fconst").any()


def test_member_overlap_is_a_count_over_members_without_round_off(models):
    model = model_io.load(models["ensemble"][0])
    samples = load_samples(model, models["ensemble"][1])
    shares = explain(model, samples.X, samples.y, top=3).table["member_overlap"]
    # k / 5 exactly, as --json shows it: summing fifths gave 0.6000000000000001 for 3 of 5 members
    assert all(s in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) for s in shares), list(shares)
    assert (shares < 1).any()  # the check means something: some gene is not in every member's top 3


def test_cli_title_names_the_k_the_stability_compares(models):
    res = run(["explain", models["ensemble"][0], models["ensemble"][1], "--top", "12", "-q"])
    assert res.exit_code == 0, res.output
    assert "top-10 overlap" in res.output and "top-12 overlap" not in res.output
    assert "of 10 genes" in res.output


def test_a_class_without_samples_is_noted_not_shown_as_an_empty_ranking(models, tmp_path):
    """A table holding only typeA samples: typeB and typeC came out as empty tables "top 0 of 20 genes
    (0 samples)" and were listed among the classes ranked in --json."""
    model_path, data = models["ensemble"]
    frame = pd.read_csv(data)
    only_a = tmp_path / "only_a.csv"
    frame[frame.label == "typeA"].to_csv(only_a, index=False)
    res = run(["explain", model_path, str(only_a), "--json", "--top", "3"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["classes"] == ["typeA"]
    assert any("not ranked" in n and "typeB, typeC" in n for n in doc["notes"]), doc["notes"]
    shown = run(["explain", model_path, str(only_a), "--top", "3"])
    assert "(0 samples)" not in shown.output and "typeB" in shown.output  # in the note, not as a table


def test_permutation_for_a_class_without_samples_is_an_error_as_for_ig(models, tmp_path):
    """--method permutation --class typeB on a table without typeB exited 0 with no ranking and no word."""
    model_path, data = models["ensemble"]
    frame = pd.read_csv(data)
    only_a = tmp_path / "only_a.csv"
    frame[frame.label == "typeA"].to_csv(only_a, index=False)
    for method in ("ig", "permutation"):
        res = run(["explain", model_path, str(only_a), "--method", method, "--class", "typeB", "-q"])
        # the file named, and the classes its samples are of, which --class takes (it named neither)
        assert_clean_error(res, "only_a.csv: no sample is of the class ranked (typeB) by its true label",
                           f"the samples are typeA ({int((frame.label == 'typeA').sum())}): --class names one of them")


def test_class_option_matches_numbered_classes_as_labels_are_matched(models):
    """--class 1.0 (or 01) was "not one of the model's classes ('1', '2', '3')", though a label 1.0 in the
    table is the class 1."""
    model = model_io.load(models["numbered"][0])
    assert class_index(model, "1.0") == class_index(model, "01") == class_index(model, "1") == class_index(model, 1)
    res = run(["explain", models["numbered"][0], models["numbered"][1], "--class", "1.0", "--top", "2", "-o", "-", "-q"])
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(pd.io.common.StringIO(res.stdout))["class"]) == {1}


def test_bootstrap_stability_of_a_class_does_not_depend_on_the_other_classes_ranked(models):
    """One network: the bootstrap resamples came from one generator shared by the classes in turn, so
    typeB's stability changed with --class typeB alone versus every class."""
    model = model_io.load(models["single"][0])
    samples = load_samples(model, models["single"][1])
    every = explain(model, samples.X, samples.y, top=4, bootstrap=10, seed=3)
    alone = explain(model, samples.X, samples.y, top=4, bootstrap=10, seed=3, classes=["typeB"])
    assert every.stability["typeB"] == alone.stability["typeB"]
    pd.testing.assert_frame_equal(every.table[every.table["class"] == "typeB"].reset_index(drop=True),
                                  alone.table.reset_index(drop=True))


@pytest.mark.parametrize("args, flag", [
    (["--method", "permutation", "--steps", "8"], "--steps"),
    (["--method", "permutation", "--output", "prob"], "--output"),
    (["--method", "permutation", "--baseline", "zero"], "--baseline"),
    (["--method", "permutation", "--tol", "0.1"], "--tol"),
    (["--scoring", "balanced_accuracy"], "--scoring"),
    (["--repeats", "3"], "--repeats"),
])
def test_an_option_of_the_other_method_is_a_usage_error(models, args, flag):
    """--scoring balanced_accuracy without --method permutation ran integrated gradients and said nothing."""
    res = run(["explain", *models["ensemble"], *args])
    assert_clean_error(res, flag, "--method", code=2)


def test_bootstrap_with_an_ensemble_is_refused(models):
    """It was a note (hidden by -q) that the resamples were not used; options of another --method are usage errors."""
    model = model_io.load(models["ensemble"][0])
    samples = load_samples(model, models["ensemble"][1])
    with pytest.raises(OptionError, match="--bootstrap 7 is for a single network"):
        explain(model, samples.X, samples.y, top=3, bootstrap=7)
    result = explain(model, samples.X, samples.y, top=3)
    assert result.stability["typeA"]["unit"] == "member"
    res = run(["explain", models["ensemble"][0], models["ensemble"][1], "--bootstrap", "7"])
    assert res.exit_code == 2 and "--bootstrap 7 is for a single network" in res.output


def test_a_gene_absent_from_the_table_is_not_ranked(models, tmp_path):
    """With --fill-missing mean, a gene the table lacks has exactly 0 attribution (it equals the mean
    baseline) and was ranked among the top genes, "up", with member_overlap 1."""
    model_path, data = models["ensemble"]
    partial = tmp_path / "partial.csv"
    pd.read_csv(data).drop(columns=["f05"]).to_csv(partial, index=False)
    for method in ("ig", "permutation"):
        res = run(["explain", model_path, str(partial), "--fill-missing", "mean", "--max-missing", "0.2",
                   "--method", method, "--top", "12", "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert "f05" not in {r["feature"] for r in doc["rankings"]}
        assert any("not ranked: 'f05', absent from the table" in n for n in doc["notes"]), doc["notes"]


def test_library_refuses_a_ranking_of_only_filled_genes(models):
    model = model_io.load(models["ensemble"][0])
    samples = load_samples(model, models["ensemble"][1])
    with pytest.raises(DataError, match="nothing to rank"):
        explain(model, samples.X, samples.y, absent=list(model.feature_names))


def test_a_failed_ranking_write_leaves_an_earlier_plot_in_place(models, tmp_path, monkeypatch):
    """The plot was written first and deleted when -o failed: the plot an earlier run had left at --plot was
    gone too. Now the table is written before the new plot replaces the old one."""
    import mlpcli.predict

    plot, out = tmp_path / "genes.png", tmp_path / "genes.csv"
    plot.write_bytes(b"an earlier run's plot")

    def full_disk(frame, path, **kw):
        raise OutputError(f"cannot write {path}: no space left on device")

    monkeypatch.setattr(mlpcli.predict, "write_table", full_disk)
    res = run(["explain", *models["ensemble"], "--plot", str(plot), "-o", str(out), "--top", "2"])
    assert_clean_error(res, "no space left on device")
    assert plot.read_bytes() == b"an earlier run's plot"
    assert sorted(os.listdir(tmp_path)) == ["genes.png"]  # no temporary file, no table


def test_plot_and_table_are_both_written(models, tmp_path):
    plot, out = tmp_path / "genes.png", tmp_path / "genes.csv"
    plot.write_bytes(b"old")
    res = run(["explain", *models["ensemble"], "--plot", str(plot), "-o", str(out), "--top", "2", "-q"])
    assert res.exit_code == 0, res.output
    assert plot.read_bytes().startswith(b"\x89PNG") and len(pd.read_csv(out)) == 6
    assert sorted(os.listdir(tmp_path)) == ["genes.csv", "genes.png"]


def test_predict_explain_steps_without_explain_is_a_usage_error(models):
    """--explain-steps 5 without --explain gave predictions without a top_features column, silently."""
    res = run(["predict", *models["ensemble"], "--explain-steps", "5"])
    assert_clean_error(res, "--explain-steps", "--explain K", code=2)
    res = run(["predict", *models["ensemble"], "--explain-steps", "5", "--explain", "2", "-q"])
    assert res.exit_code == 0 and "top_features" in res.stdout.splitlines()[0]


def test_a_tol_below_float32_round_off_names_what_can_meet_it(models):
    """--tol 1e-9 on a float32 model failed with "raise --steps", which cannot help below float32 round-off."""
    model, data = models["single"]  # float32, the default
    res = run(["explain", model, data, "--tol", "1e-9", "-q"])
    assert_clean_error(res, "completeness check failed", "below the round-off of the network's float32 arithmetic",
                       "--dtype float64")
    assert "raise --steps" not in res.output


FAST = ["--epochs", "3", "--hidden", "8", "-q", "--folds", "1"]


ODD = ["P12345;Q67890", "chr1:100-200", "50%;x:y"]  # a MaxQuant protein group, an ATAC peak, both at once


def _parse(cell: str) -> list[tuple[str, float]]:
    """A top_features cell read back as the README says: split at ';', each entry at its last ':', unquote."""
    return [(unquote(name), float(score)) for name, score in (e.rsplit(":", 1) for e in cell.split(";"))] if cell else []


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A single network on 10 genes: typeA's signal in the protein group "P12345;Q67890" and its near copy
    "DUP" (a correlated decoy), the peak "chr1:100-200" carries typeB's, "50%;x:y" typeC's."""
    tmp = tmp_path_factory.mktemp("review17_explain")
    table = make_table(n_patients=30, per_patient=2, n_features=10, seed=7, signal=3.0)
    rng = np.random.default_rng(0)
    table["f09"] = table["f00"] + rng.normal(scale=0.01, size=len(table))
    table = table.rename(columns={"f00": ODD[0], "f01": ODD[1], "f02": ODD[2], "f09": "DUP"})
    data, model = tmp / "planted.csv", tmp / "planted.mlp"
    table.to_csv(data, index=False)
    res = run(["train", str(data), "-o", str(model), *FAST, "--epochs", "40"])  # enough to learn the markers
    assert res.exit_code == 0, res.output
    return str(model), str(data), tmp


def test_top_features_names_with_separators_read_back():
    values = np.array([[3.0, 2.0, 1.0, -1.0]])  # (1, 4)
    cell = top_features(values, [*ODD, "GAPDH"], 4)[0]
    assert cell.count(";") == 2  # three entries, the negative one left out
    assert _parse(cell) == [(ODD[0], 3.0), (ODD[1], 2.0), (ODD[2], 1.0)]
    assert top_features(values, ["A", "B", "C", "D"], 2)[0] == "A:3;B:2"  # plain names as before


def test_predict_explain_column_parses_and_names_the_models_genes(planted):
    model, data, tmp = planted
    out = tmp / "pred.csv"
    res = run(["predict", model, data, "--explain", "3", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    genes = set(model_io.load(model).feature_names)
    cells = pd.read_csv(out, keep_default_na=False)["top_features"]
    parsed = [_parse(c) for c in cells]
    assert all(name in genes and score > 0 for row in parsed for name, score in row)
    seen = {name for row in parsed for name, _ in row}
    assert set(ODD) <= seen  # every odd name came through whole


def test_correlated_genes_in_a_ranking_get_a_note(planted):
    model, data, _ = planted
    m = model_io.load(model)
    samples = load_samples(m, data)
    for method in ("ig", "permutation"):
        result = explain(m, samples.X, samples.y, method=method, top=5)
        typeA = result.table[result.table["class"] == "typeA"]["feature"].tolist()
        assert ODD[0] in typeA and "DUP" in typeA, (method, typeA)
        note = [n for n in result.notes if n.startswith("correlated genes")]
        assert len(note) == 1 and "DUP" in note[0] and ODD[0] in note[0], result.notes
    # the peak and the other odd gene are independent of each other: not named as a pair
    assert f"{ODD[1]} ~ {ODD[2]}" not in note[0] and f"{ODD[2]} ~ {ODD[1]}" not in note[0]


def test_no_correlated_note_without_correlated_genes(planted):
    model, data, _ = planted
    m = model_io.load(model)
    samples = load_samples(m, data)
    result = explain(m, samples.X, samples.y, classes=["typeB"], top=3)
    assert not [n for n in result.notes if n.startswith("correlated genes")], result.notes


def test_plot_axis_names_the_units(planted, monkeypatch):
    from matplotlib.axes import Axes

    model, data, tmp = planted
    labels = []
    real = Axes.set_xlabel
    monkeypatch.setattr(Axes, "set_xlabel", lambda self, text, *a, **k: (labels.append(text), real(self, text, *a, **k))[1])
    res = run(["explain", model, data, "--plot", str(tmp / "p.png"), "--output", "prob", "--top", "3", "-q"])
    assert res.exit_code == 0, res.output
    assert "mean attribution toward the class (probability)" in labels


def test_no_correlated_pairs_from_a_handful_of_samples(tmp_path):
    """explain --class R (5 samples) named a dozen pairs of independent genes "one signal" (|Spearman| >= 0.9 over
    5 samples is chance for one pair in twelve)."""
    rng = np.random.default_rng(5)
    labels = np.array(["A"] * 150 + ["B"] * 145 + ["R"] * 5)
    X = rng.normal(size=(300, 30))
    for k, c in enumerate("ABR"):
        X[labels == c, 3 * k:3 * k + 3] += 1.5
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(30)]).assign(label=labels)
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "1", "--epochs", "5", "-q",
                "-o", str(model)]).exit_code == 0
    res = run(["explain", str(model), str(tmp_path / "t.csv"), "--class", "R", "--top", "15"])
    assert res.exit_code == 0, res.output
    assert "correlated genes ranked" not in res.output
