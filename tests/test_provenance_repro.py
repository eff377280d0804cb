"""What a model file records for a methods section and for reproducing it: the code's own digest, the BLAS build and
CPU kind whose rounding the figures depend on, and the patient and batch columns the splits followed."""

from __future__ import annotations

import json

from cli_helpers import run
from mlpcli import model_io
from mlpcli.pipeline import blas_build, source_digest
from tables import make_table


def _train(tmp_path, table, name):
    table.to_csv(tmp_path / f"{name}.csv", index=False)
    path = tmp_path / f"{name}.mlp"
    res = run(["train", str(tmp_path / f"{name}.csv"), "--folds", "2", "--epochs", "3", "--hidden", "4", "-q",
               "-o", str(path)])
    assert res.exit_code == 0, res.output
    return path


def test_the_model_records_code_blas_machine_and_the_split_columns(tmp_path):
    table = make_table("binary", n_patients=30, per_patient=2)
    path = _train(tmp_path, table, "a")
    prov = model_io.load(path).provenance
    versions = prov["versions"]
    assert versions["mlpcli source"] == source_digest() and len(versions["mlpcli source"]) == 12
    assert versions["blas"] == (blas_build() or "unknown") and versions["machine"] and versions["scipy"]
    assert isinstance(prov["threads"], int) and len(prov["roles_sha256"]) == 64
    info = run(["info", str(path)]).output
    assert "mlpcli source" in info and "patient and batch columns sha256" in info and "CPU kind" in info

    # other patients for some samples: the same values and names, another split
    moved = table.copy()
    moved.loc[:9, "patient_id"] = "P999"
    other = model_io.load(_train(tmp_path, moved, "b")).provenance
    assert other["data_sha256"] == prov["data_sha256"] and other["roles_sha256"] != prov["roles_sha256"]
    # and the same table again: the same digest (nothing of the run's own in it)
    again = model_io.load(_train(tmp_path, table, "c")).provenance
    assert again["roles_sha256"] == prov["roles_sha256"]
    doc = json.loads(run(["info", str(path), "--json"]).stdout)
    assert doc["provenance"]["roles_sha256"] == prov["roles_sha256"]


def test_the_source_digest_follows_the_code(tmp_path, monkeypatch):
    import mlpcli.pipeline as pipeline

    copy = tmp_path / "mlpcli"
    copy.mkdir()
    (copy / "a.py").write_text("x = 1\n")
    (copy / "pipeline.py").write_text("")
    monkeypatch.setattr(pipeline, "__file__", str(copy / "pipeline.py"))
    first = pipeline.source_digest()
    (copy / "a.py").write_text("x = 2\n")
    assert pipeline.source_digest() != first


def test_info_writes_the_options_that_train_the_same_model_again(tmp_path):
    table = make_table("multiclass", n_patients=30, per_patient=2)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    for d in (first, second):  # the same file name: the model records it
        table.to_csv(d / "t.csv", index=False)
    res = run(["train", str(first / "t.csv"), "--folds", "2", "--epochs", "4", "--hidden", "8", "--l2", "0.001",
               "--decision", "argmax", "-q", "-o", str(first / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert run(["info", str(first / "m.mlp"), "--config-out", str(tmp_path / "m.toml")]).exit_code == 0
    text = (tmp_path / "m.toml").read_text()
    assert "[train]" in text and "hidden = [8]" in text and "l2 = 0.001" in text and "decision = \"argmax\"" in text
    assert "lr =" not in text  # left at its default (auto): what auto became is the model's, not an option
    res = run(["train", str(second / "t.csv"), "--config", str(tmp_path / "m.toml"), "-q", "-o", str(second / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert (first / "m.mlp").read_bytes() == (second / "m.mlp").read_bytes()
    summary = run(["info", str(first / "m.mlp")], env={"COLUMNS": "400"}).output
    assert "at most 4 epochs, patience auto (growing with the best epoch), weight decay 1 (auto), beta2 0.95" in summary
    shown = run(["info", str(first / "m.mlp"), "--config-out", "-"])
    assert shown.exit_code == 0 and shown.output == text
    bad = run(["info", str(first / "m.mlp"), "--config-out", str(tmp_path / "no" / "such" / "m.toml")])
    assert bad.exit_code == 1 and "Traceback" not in bad.output and bad.output.strip().splitlines()[-1].startswith("Error:")
    # the model itself as --config-out (by its name or a link to it): refused before anything is written; it was
    # replaced by the config text, exit 0, and the model was lost
    kept = (first / "m.mlp").read_bytes()
    (tmp_path / "link.mlp").symlink_to(first / "m.mlp")
    for target in (first / "m.mlp", tmp_path / "link.mlp"):
        res = run(["info", str(first / "m.mlp"), "--config-out", str(target)])
        assert res.exit_code == 2 and "is also the input MODEL" in res.output
    assert (first / "m.mlp").read_bytes() == kept
    # standard output holds one document: the TOML, or the JSON; a name that cannot be written is a usage error
    assert_usage = [(["--config-out", "-", "--json"], "would both write to standard output"),
                    (["--config-out", "/dev/stdout", "--json"], "would both write to standard output"),
                    (["--config-out", str(tmp_path / "x") + "/"], "--config-out: cannot write"),
                    (["--config-out", ""], "--config-out: an empty file name"),
                    (["--config-out", str(tmp_path / "c.json")], "the file is TOML")]  # TOML was written as .json
    for args, needle in assert_usage:
        res = run(["info", str(first / "m.mlp"), *args])
        assert res.exit_code == 2 and needle in res.output, (args, res.output)


def test_cv_and_tune_json_say_what_their_figures_came_from(tmp_path):
    table = make_table("binary", n_patients=30, per_patient=2)
    table.to_csv(tmp_path / "t.csv", index=False)
    model = model_io.load(_train(tmp_path, table, "m"))
    cv = json.loads(run(["cv", str(tmp_path / "t.csv"), "--folds", "2", "--member-folds", "2", "--epochs", "3",
                         "--hidden", "4", "--seed", "3", "--json"]).stdout)["provenance"]
    assert cv["data_sha256"] == model.provenance["data_sha256"] and cv["roles_sha256"] == model.provenance["roles_sha256"]
    assert cv["seed"] == 3 and cv["options"]["seed"] == 3 and cv["options"]["folds"] == 2  # train's name for it
    assert cv["options"]["hidden"] == [4] and cv["threads"] == 1 and cv["versions"]["mlpcli source"] == source_digest()
    tune = json.loads(run(["tune", str(tmp_path / "t.csv"), "--grid", "l2=1e-4,1e-3", "--folds", "2",
                           "--epochs", "3", "--json"]).stdout)["provenance"]
    assert tune["data_sha256"] == model.provenance["data_sha256"] and tune["seed"] == 0 and "seed" not in tune["options"]
