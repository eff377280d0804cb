"""The model file's layout: an ensemble's repeated member arrays stored once, the older layout still loading,
aliases and versions checked on load, damaged files named, and what `info` shows of every kind of file (its
format, BatchNorm, an ensemble's and a refit's figures, a temperature at an end of its range)."""

import json
import zipfile

import numpy as np
import pytest

from mlpcli import model_io
from mlpcli.config import TrainOptions
from mlpcli.pipeline import train
from cli_helpers import assert_clean_error, run
from model_files import model_parts, rewrite_model, with_feature_lists, without_trust
from tables import make_table, write_table


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Wide enough that the features outnumber the rows (36 samples x 60 genes): a 3-member ensemble, one
    network and a regression ensemble, 2 epochs each."""
    tmp = tmp_path_factory.mktemp("review15")
    data = write_table(tmp, n_patients=12, n_features=60)
    reg = write_table(tmp, "reg.csv", task="regression", n_patients=12, n_features=20)
    out = {"dir": tmp, "data": data}
    for key, table, options in (("ensemble", data, TrainOptions(hidden=[4], epochs=2, folds=3, scaling="standard")),
                                ("single", data, TrainOptions(hidden=[4], epochs=2, folds=1)),
                                ("regression", reg, TrainOptions(hidden=[4], epochs=2, folds=3))):
        out[key] = tmp / f"{key}.mlp"
        model_io.save(train(table, options).model, out[key])
    return out


def _old_layout(meta: dict) -> None:
    """model.json as mlpcli wrote it before repeated member arrays were stored once (format 5)."""
    meta.pop("array_aliases", None)
    with_feature_lists(meta)["format_version"] = 5


def _old_arrays(aliases: dict):
    """weights.npz's arrays as written before: every member's own copy, indices as int64."""
    def expand(arrays):
        arrays = dict(arrays)
        arrays.update({alias: arrays[target] for alias, target in aliases.items() if target in arrays})  # (offsets: format 10)
        return {k: v.astype(np.int64) if v.dtype.kind in "iu" else v for k, v in arrays.items()}
    return expand


def _write_old(path, dst):
    meta, _ = model_parts(path)
    return rewrite_model(path, dst, _old_layout, _old_arrays(meta.get("array_aliases", {})))


def _edit(path, dst, meta_fn=None, raw_fn=None):
    """A copy with model.json changed (``meta_fn`` on the parsed JSON, or ``raw_fn`` on its bytes) and the
    weights and their checksum untouched."""
    with zipfile.ZipFile(path) as zf:
        text, weights = zf.read("model.json"), zf.read("weights.npz")
    if meta_fn is not None:
        meta = json.loads(text)
        meta_fn(meta)
        text = json.dumps(meta).encode()
    if raw_fn is not None:
        text = raw_fn(text)
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr("model.json", text)
        zf.writestr("weights.npz", weights)
    return str(dst)


# ── size ─────────────────────────────────────────────────────────────────────────────────────────────────

def test_an_ensemble_stores_each_repeated_member_array_once(files, tmp_path):
    """Members fitted on the same features repeated their kept-feature indices and missing-value fills (and
    the zero shares of continuous data) in every member: 16 MB for 100,000 weights at 20,000 genes."""
    meta, arrays = model_parts(files["ensemble"])
    aliases = meta["array_aliases"]
    assert meta["format_version"] == model_io.FORMAT_VERSION
    for i in (1, 2):
        assert aliases[f"members/{i}/preprocessor/kept_index"] == "members/0/preprocessor/kept_index"
        assert aliases[f"members/{i}/preprocessor/impute_values"] == "members/0/preprocessor/impute_values"
        assert f"members/{i}/preprocessor/kept_index" not in arrays
        assert f"members/{i}/preprocessor/center" in arrays  # fitted on each member's rows: its own
    assert not set(aliases) & set(meta["array_shapes"])
    assert arrays["preprocessor/kept_index"].dtype == np.int32  # indices of at most 2**26 features
    old = _write_old(files["ensemble"], tmp_path / "old.mlp")
    npz = [zipfile.ZipFile(p).getinfo("weights.npz").file_size for p in (old, files["ensemble"])]
    assert npz[0] - npz[1] >= 2 * 3 * 60 * 8, npz  # 2 of 3 members' indices, fills and zero shares of 60 genes


def test_a_member_that_drops_a_few_constant_features_lists_only_those(tmp_path):
    """Each member of a 60,000-gene model dropped 2-6 all-zero genes of its rows, and model.json repeated the whole
    list of 59,994-59,998 names for every member (5.6 MB). Format 12 lists the few left out; the model loads and
    predicts as the whole lists give, and a list naming a feature the model does not keep is one line, exit 1."""
    table = make_table("multiclass", n_patients=30, per_patient=2, n_features=40, seed=4)
    for j in range(6):  # a gene seen in one patient only: constant on the members' rows that lack that patient
        table[f"rare{j}"] = np.where(table["patient_id"] == f"P{5 * j:03d}", 1.0, 0.0)
    table.to_csv(tmp_path / "t.csv", index=False)
    path = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--epochs", "3", "--hidden", "4", "-q", "-o", str(path)]).exit_code == 0
    meta, _ = model_parts(path)
    assert meta["format_version"] == model_io.FORMAT_VERSION == 17
    lists = [e["preprocessing"] for e in meta["members"]]
    assert all("kept_features" not in p for p in lists) and any(p.get("kept_features_left_out") for p in lists)
    model = model_io.load(path)
    for entry, member in zip(lists, model.members):
        left = set(entry.get("kept_features_left_out", []))
        assert member.preprocessor.kept_features == [n for n in model.preprocessor.kept_features if n not in left]
    whole = rewrite_model(path, tmp_path / "whole.mlp", with_feature_lists, lambda a: a)  # every list written out
    X = table[model.feature_names].to_numpy(float)
    np.testing.assert_array_equal(model_io.load(whole).predict_output(X), model.predict_output(X))

    def unknown(meta: dict) -> None:
        meta["members"][0]["preprocessing"]["kept_features_left_out"] = ["no_such_gene"]
    bad = rewrite_model(path, tmp_path / "bad.mlp", unknown, lambda a: a)
    assert_clean_error(run(["info", bad]), "bad.mlp: model.json field 'members[0].preprocessing.kept_features_left_out'")


def test_a_model_without_repeats_stores_no_aliases(files):
    """One network (or members with nothing in common) needs no aliases."""
    meta, _ = model_parts(files["single"])
    assert meta["format_version"] == model_io.FORMAT_VERSION and "array_aliases" not in meta


def test_a_model_edited_without_its_aliases_says_where_the_arrays_were(files, tmp_path):
    """model.json without array_aliases (a hand edit) was refused as "array_shapes lists no shape for the array ...",
    blaming array_shapes alone; the error says the aliases are missing too."""
    from mlpcli.errors import ModelFileError

    edited = _edit(files["ensemble"], tmp_path / "edited.mlp", meta_fn=lambda meta: meta.pop("array_aliases"))
    with pytest.raises(ModelFileError, match="lists no shape for the array .*, and array_aliases names no array it is "
                                             "stored as"):
        model_io.load(edited)


def test_the_earlier_layout_loads_and_predicts_identically_and_saves_as_today(files, tmp_path):
    """A file in the layout written before (every member's arrays, int64 indices, format 5) loads, predicts
    bit for bit as the new file, and saved again gives the new file's bytes: nothing was lost."""
    new = files["ensemble"]
    old = _write_old(new, tmp_path / "old.mlp")
    meta, arrays = model_parts(old)
    assert meta["format_version"] == 5 and "members/2/preprocessor/kept_index" in arrays
    assert arrays["preprocessor/kept_index"].dtype == np.int64
    X = make_table(n_patients=4, n_features=60, seed=3).filter(like="f").to_numpy()
    a, b = model_io.load(old), model_io.load(new)
    assert a.predict_output(X).tobytes() == b.predict_output(X).tobytes()
    assert a.training_rows is None  # format 8 added the training rows' fingerprints: the older file has none
    a.training_rows = b.training_rows
    assert a.decision is None  # format 9 added the decision rule: the older file decides by argmax
    a.decision = b.decision
    assert model_io.to_bytes(a) == new.read_bytes() == model_io.to_bytes(b)
    # and the CLI agrees
    for path, name in ((old, "a.csv"), (str(new), "b.csv")):
        assert run(["predict", path, files["data"], "-o", str(tmp_path / name), "-q"]).exit_code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_regression_ensemble_round_trips(files, tmp_path):
    model = model_io.load(files["regression"])
    X = make_table("regression", n_patients=3, n_features=20, seed=5).filter(like="f").to_numpy()
    model_io.save(model, tmp_path / "again.mlp")
    assert (tmp_path / "again.mlp").read_bytes() == files["regression"].read_bytes()
    assert model_io.load(tmp_path / "again.mlp").predict_output(X).tobytes() == model.predict_output(X).tobytes()


def _set_alias(alias, target):
    return lambda m: m["array_aliases"].__setitem__(alias, target)


ALIAS_CASES = {
    "target of another kind": (_set_alias("members/1/preprocessor/kept_index", "members/0/preprocessor/center"),
                               "array_aliases.members/1/preprocessor/kept_index", "another kind"),
    "target not stored": (_set_alias("members/1/preprocessor/kept_index", "members/9/preprocessor/kept_index"),
                          "array_aliases.members/1/preprocessor/kept_index", "not an array the file stores"),
    "an alias of an alias": (_set_alias("members/2/preprocessor/kept_index", "members/1/preprocessor/kept_index"),
                             "array_aliases.members/2/preprocessor/kept_index", "not an array the file stores"),
    "an unknown array": (_set_alias("members/7/network/dense0.W", "members/0/network/dense0.W"), "array_aliases",
                         "does not have"),
    "stored and aliased": (_set_alias("members/1/preprocessor/center", "members/0/preprocessor/center"),
                           "array_shapes", "array_aliases says is stored as 'members/0/preprocessor/center'"),
    "aliases a list": (lambda m: m.__setitem__("array_aliases", []), "array_aliases", "JSON object"),
    "aliases dropped": (lambda m: m.pop("array_aliases"), "array_shapes", "members/1/preprocessor/kept_index"),
}


@pytest.mark.parametrize("case", list(ALIAS_CASES))
def test_a_wrong_alias_is_refused_naming_it(files, tmp_path, case):
    edit, *needles = ALIAS_CASES[case]
    bad = _edit(files["ensemble"], tmp_path / "bad.mlp", edit)
    res = run(["info", bad])
    assert_clean_error(res, "bad.mlp", *needles)
    assert len(res.output.strip().splitlines()) == 1


# ── damaged files ────────────────────────────────────────────────────────────────────────────────────────

def test_a_version_no_mlpcli_wrote_is_called_damaged_not_new(files, tmp_path):
    """Version 0 or "6" was answered "upgrade mlpcli or retrain": no upgrade reads them."""
    for value in (0, "6", -3, None):
        bad = _edit(files["ensemble"], tmp_path / "bad.mlp", lambda m: m.__setitem__("format_version", value))
        res = run(["info", bad])
        assert_clean_error(res, "bad.mlp", "format_version", "edited or damaged")
        assert "upgrade" not in res.output
    newer = _edit(files["ensemble"], tmp_path / "newer.mlp", lambda m: m.__setitem__("format_version", 99))
    assert_clean_error(run(["info", newer]), "newer.mlp", "version 99", "newer mlpcli", "upgrade")


def test_json_that_does_not_parse_is_located(files, tmp_path):
    bad = _edit(files["ensemble"], tmp_path / "bad.mlp", raw_fn=lambda b: b.replace(b'"task": ', b'"task": ,', 1))
    res = run(["info", bad])
    assert_clean_error(res, "bad.mlp", "not valid JSON", "line 5, column 10", "edited or damaged")  # "task" is there


def test_truncated_and_flipped_files_name_themselves(files, tmp_path):
    data = files["ensemble"].read_bytes()
    (tmp_path / "cut.mlp").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flip.mlp").write_bytes(bytes(flipped))
    assert_clean_error(run(["info", str(tmp_path / "cut.mlp")]), "cut.mlp", "truncated")
    res = run(["info", str(tmp_path / "flip.mlp")])
    assert "flip.mlp" in res.output and res.exit_code == 1 and len(res.output.strip().splitlines()) == 1


# ── mlpcli info ──────────────────────────────────────────────────────────────────────────────────────────

def _info(path, *flags):
    res = run(["info", str(path), *flags])
    assert res.exit_code == 0, res.output
    return res.output if "--json" not in flags else json.loads(res.output)


def test_info_says_the_format_and_what_predict_can_add(files):
    """info showed neither the file's format version nor whether the model holds what --coverage and --ood need
    (a format 1-2 file made `predict --coverage` fail, with nothing in `info` to say so)."""
    doc = _info(files["ensemble"], "--json")
    assert doc["file"]["format_version"] == model_io.FORMAT_VERSION
    trust = doc["trust"]
    assert trust["applies"] and trust["absent_features_check"]
    assert trust["prediction_sets"]["source"] == "out-of-fold" and trust["prediction_sets"]["scores"] == 36
    assert trust["ood"]["features"] == 60 and trust["ood"]["class_relative"]
    text = " ".join(_info(files["ensemble"], ).split())
    assert f"model format {model_io.FORMAT_VERSION}" in text and "prediction sets (--coverage) from 36 out-of-fold scores" in text
    reg = " ".join(_info(files["regression"]).split())
    assert "for binary and multiclass models" in reg and "not stored" not in reg


def test_info_on_an_old_file_says_what_it_lacks_instead_of_guessing(files, tmp_path):
    """A format 1 file without training records was shown as "hold-out; best epochs —; optimizer —, lr —, ..."
    (a hold-out it never said), and nothing said --coverage and --ood could not be used with it."""
    def v1(meta):
        entry = meta.pop("members")[0]
        meta.update(format_version=1, architecture=entry["architecture"])
        for key in ("temperature", "conformal", "ood", "roles", "config", "fit", "split", "provenance", "extra",
                    "history", "baseline"):
            meta.pop(key, None)
        meta["preprocessing"].pop("train_rows")

    def arrays(a):
        return {k.removeprefix("members/0/"): v for k, v in without_trust(a).items() if "train_zero_share" not in k}

    old = rewrite_model(files["single"], tmp_path / "v1.mlp", v1, arrays)
    doc = _info(old, "--json")
    assert doc["file"]["format_version"] == 1
    assert doc["trust"]["prediction_sets"] is None and doc["trust"]["ood"] is None
    text = " ".join(_info(old).split())
    assert "hold-out" not in text and "training not stored" in text.replace("│", "").replace("  ", " ")
    assert ("prediction sets (--coverage), out-of-distribution flags (--ood), the absent-gene warning, recognising "
            "its training rows: not stored") in text


@pytest.mark.parametrize("T, end", [(3.0, "top"), (1 / 3, "bottom"), (1.2, None)])
def test_info_says_when_the_temperature_stopped_at_an_end_of_its_range(files, tmp_path, T, end):
    """"temperature 3" did not say that 3 is as far as calibration goes: the held-out probabilities wanted more."""
    model = model_io.load(files["ensemble"])
    model.temperature = T
    model_io.save(model, tmp_path / "t.mlp")
    text = " ".join(_info(tmp_path / "t.mlp").split())
    if end is None:
        assert "temperature 1.2" in text and "range calibration fits" not in text
    else:
        assert f"the {end} of the range calibration fits" in text


def test_a_gzipped_model_is_named_as_one(files, tmp_path):
    """A model kept as m.mlp.gz was called "gzip-compressed data (a .gz data table?)"."""
    import gzip

    (tmp_path / "m.mlp.gz").write_bytes(gzip.compress(files["ensemble"].read_bytes()))
    assert_clean_error(run(["info", str(tmp_path / "m.mlp.gz")]), "m.mlp.gz", "gzip-compressed model file",
                       "<(zcat ")
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    res = run(["info", str(tmp_path / "t.csv.gz")])
    assert_clean_error(res, "t.csv.gz", "data table")
    assert "model file;" not in res.output


FAST = ["--epochs", "3", "--folds", "1", "--seed", "0", "-q"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("gradinfo")
    paths = {}
    for task in ("binary", "multiclass"):
        paths[task] = str(d / f"{task}.csv")
        make_table(task, n_patients=30).to_csv(paths[task], index=False)
    return d, paths


def _train(d, data, name, *args):
    out = str(d / name)
    res = run(["train", data, "-o", out, *args])
    assert res.exit_code == 0, res.output
    return out


def _network_row(model: str) -> str:
    text = run(["info", model], env={"COLUMNS": "400"}).stdout
    return " ".join(line for line in text.splitlines() if "network" in line)


def test_info_names_batchnorm_and_why_a_classifier_has_no_temperature(tables):
    """A --batchnorm model's network row said "relu, dropout 0.3" (BatchNorm, which gradcheck checks in training
    mode and which changes what the network computes, was not shown), and a classifier train had not calibrated
    (24 held-out rows; --no-calibrate) showed no temperature and no word on why."""
    d, paths = tables
    bn = _train(d, paths["binary"], "bn.mlp", *FAST, "--hidden", "8", "--batchnorm")
    row = _network_row(bn)
    assert "relu, BatchNorm, dropout 0.3" in row, row
    assert "not calibrated (18 held-out rows, fewer than the 100 a temperature needs)" in row, row
    doc = json.loads(run(["info", bn, "--json"]).stdout)
    assert doc["network"]["batchnorm"] is True and doc["network"]["not_calibrated"].startswith("18 held-out rows")
    # the check of the same file runs BatchNorm's training mode, as info now says the network has it
    res = run(["gradcheck", "--model", bn, "--data", paths["binary"], "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert any("batch statistics" in r["component"] for r in json.loads(res.stdout)["results"])

    plain = _train(d, paths["binary"], "nocal.mlp", *FAST, "--hidden", "8", "--no-calibrate")
    row = _network_row(plain)
    assert "BatchNorm" not in row and "not calibrated (--no-calibrate)" in row, row
    reg = _train(d, paths["binary"], "reg.mlp", *FAST, "--hidden", "", "--task", "regression", "--target", "f00",
                 "--drop", "label")
    assert "calibrat" not in _network_row(reg)  # a regression has no probabilities to calibrate: nothing to say


def test_info_of_an_ensemble_and_its_refit_says_what_each_figure_is(tables):
    """An ensemble's row read "5 members, each 12 → 16 → 3, …; 1,405 parameters", the total, while train said
    "each … 281 parameters"; a --refit model's prediction sets were "from 90 refit scores", scores the refit
    network does not have (they are the members' out-of-fold ones), and --json counted 29.999999999999996
    patients."""
    d, paths = tables
    ensemble = ["--epochs", "3", "--folds", "3", "--hidden", "16", "--n-jobs", "1", "-q"]
    ens = _train(d, paths["multiclass"], "ens.mlp", *ensemble)
    doc = json.loads(run(["info", ens, "--json"]).stdout)
    net = doc["network"]
    assert net["members"] == 3 and net["parameters"] == 3 * net["parameters_per_member"]
    assert f"{net['parameters']:,} parameters ({net['parameters_per_member']:,} each)" in _network_row(ens)

    refit = _train(d, paths["multiclass"], "refit.mlp", *ensemble, "--refit")
    doc = json.loads(run(["info", refit, "--json"]).stdout)
    sets = doc["trust"]["prediction_sets"]
    assert sets["source"] == "refit" and sets["patients"] == 30
    text = " ".join(run(["info", refit], env={"COLUMNS": "400"}).stdout.split())
    assert (f"from {sets['scores']} out-of-fold scores of the cross-fitted members (30 patients; the refit network "
            "has no held-out rows)") in text, text
    assert "refit scores" not in text


def _set(path: str, value):
    """A model.json edit: the field at dotted ``path`` set to ``value``."""
    def edit(meta: dict) -> None:
        *parents, last = path.split(".")
        d = meta
        for key in parents:
            d = d.setdefault(key, {})
        d[last] = value
    return edit


@pytest.mark.parametrize("field, value", [
    ("extra.diagnosis", "x"), ("provenance.versions", "x"), ("provenance.data_file", 1), ("fit.portfolio", [1]),
    ("fit.portfolio", [{"hidden": "wide", "score": 0.5}]), ("config.resolved", 1), ("config.pos_weight", [1]),
    ("config.resolved", {"epochs": "many"}), ("fit.refit", [1]), ("fit.refit", {"l2": [0.1]}),
])
def test_an_edited_field_of_the_wrong_type_is_named_when_the_model_is_read(three_classes, tmp_path, field, value):
    """Fields that `info` and `evaluate` read, of the wrong type in a hand-edited model.json, passed the load-time
    checks and ended in "internal error (AttributeError ...)": now the load names the field."""
    from model_files import rewrite_model

    d, _ = three_classes
    bad = rewrite_model(d / "m.mlp", tmp_path / "bad.mlp", _set(field, value), lambda a: a)
    name = field.split(".")[0] + "." + field.split(".")[1]
    for args in (["info", bad], ["evaluate", bad, str(d / "train.csv")]):
        assert_clean_error(run(args), "bad.mlp: model.json field", f"'{name}")


@pytest.mark.parametrize("field, empty", [("loss.params", {}), ("split.class_counts_train", {}),
                                          ("fit.held_out_metrics", {}), ("history", [])])
def test_a_null_where_an_object_belongs_reads_as_absent(three_classes, tmp_path, field, empty):
    """``loss.params: null`` loaded, then predict failed with "internal error (TypeError: ... argument after ** must
    be a mapping, not NoneType)"; a null is now taken as the field absent, in every command and the library."""
    from mlpcli import model_io
    from model_files import rewrite_model

    d, df = three_classes
    path = rewrite_model(d / "m.mlp", tmp_path / "null.mlp", _set(field, None), lambda a: a)
    model = model_io.load(path)
    node = model_io.load(path)
    for key in field.split("."):
        node = node[key] if isinstance(node, dict) else getattr(node, key)
    assert node == empty
    X = df[[c for c in df.columns if c.startswith("f")]].to_numpy(np.float32)
    assert model.predict_output(X).shape == (len(df), 3)
    for args in (["info", path], ["evaluate", path, str(d / "train.csv")],
                 ["predict", path, str(d / "train.csv"), "-o", str(tmp_path / "p.csv")]):
        r = run(args)
        assert r.exit_code == 0, (args, r.output)


def test_a_key_named_twice_in_model_json_is_named(three_classes, tmp_path):
    """`"task"` given twice (a hand edit beside the old value): JSON kept the last, and the error spoke of sigmoid
    outputs not fitting task 'regression'."""
    import zipfile

    d, _ = three_classes
    with zipfile.ZipFile(d / "m.mlp") as zf:
        text, weights = zf.read("model.json").decode(), zf.read("weights.npz")
    edited = text.replace('"task": "multiclass"', '"task": "multiclass", "task": "regression"', 1)
    assert edited != text
    with zipfile.ZipFile(tmp_path / "twice.mlp", "w") as zf:
        zf.writestr("model.json", edited)
        zf.writestr("weights.npz", weights)
    assert_clean_error(run(["info", str(tmp_path / "twice.mlp")]), "model.json names the key 'task' twice")
