"""hnm-db models / embed / ensemble through the CLI."""

from __future__ import annotations

import json

import pytest
from fixtures.cli import invoke
from fixtures.corpus import CORPUS, QUERIES

import hnm_db

DOCS = [d["text"] for d in CORPUS[:12]]
QTEXTS = [q["text"] for q in QUERIES[:4]]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HNM_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def run(db_path):
    return lambda *args: invoke(db_path, *args, quiet=True)


@pytest.fixture
def texts_db(db_path, add_texts):
    with hnm_db.open(db_path) as db:
        add_texts(db, DOCS, QTEXTS)
    return db_path


def _count(db_path, sql: str) -> int:
    with hnm_db.open(db_path) as db:
        return db.scalar(sql)


def test_add_embed_ensemble_and_list(run, texts_db, tiny_model_dir, tiny_model_dir_b):
    res = run("models", "add", "a", "--source", str(tiny_model_dir), "--format", "json")
    assert res.exit_code == 0, res.output
    added = json.loads(res.stdout)[0]
    assert added["dim"] == 32 and added["model_id"].startswith("a-") and added["created"] is True
    assert (
        run("models", "add", "b", "--source", str(tiny_model_dir_b), "--query-prompt", "q: ").exit_code == 0
    )

    res = run("embed", "--model", "a", "--model", "b", "--batch-size", "5", "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert {(r["role"], r["encoded"]) for r in rows} == {("doc", 12), ("query", 4)}
    again = json.loads(run("embed", "-m", "a", "-m", "b", "--format", "json").stdout)
    assert all(r["encoded"] == 0 and r["loaded"] is False for r in again)

    res = run("ensemble", "create", "ens", "--model", "a:1", "--model", "b:3", "--format", "json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)[0]
    assert summary["dim"] == 80 and summary["added_doc"] == 12 and summary["added_query"] == 4
    listed = json.loads(run("ensemble", "list", "--format", "json").stdout)
    assert listed[0]["name"] == "ens" and listed[0]["doc_vectors"] == 12
    models = json.loads(run("models", "list", "--format", "json").stdout)
    assert sorted((m["name"], m["doc_vectors"], m["query_vectors"]) for m in models) == [
        ("a", 12, 4),
        ("b", 12, 4),
    ]
    assert json.loads(run("ensemble", "update", "ens", "--format", "json").stdout)[0]["added_doc"] == 0


def test_unknown_alias_exits_1_with_one_line_listing_aliases(run, texts_db):
    res = run("embed", "--model", "minilm-l99")
    assert res.exit_code == 1
    assert "minilm-l6" in res.output and "mpnet-base" in res.output and "Traceback" not in res.output
    assert _count(texts_db, "SELECT count(*) FROM models") == 0


def test_hub_id_offline_exits_1_and_says_how(run, texts_db):
    res = run("models", "add", "x", "--source", "BAAI/bge-small-en-v1.5")
    assert res.exit_code == 1 and "offline" in res.output and "--source" in res.output
    assert _count(texts_db, "SELECT count(*) FROM models") == 0


def test_broken_model_folder_exits_1_naming_it(run, texts_db, tmp_path):
    bad = tmp_path / "bad-model"
    bad.mkdir()
    (bad / "config.json").write_text("{")
    res = run("models", "add", "x", "--source", str(bad))
    assert res.exit_code == 1 and str(bad) in res.output
    assert _count(texts_db, "SELECT count(*) FROM models") == 0


def test_ensemble_errors_name_the_model(run, texts_db, tiny_model_dir, tiny_model_dir_b):
    run("models", "add", "a", "--source", str(tiny_model_dir))
    run("models", "add", "b", "--source", str(tiny_model_dir_b))
    assert run("embed", "--model", "a").exit_code == 0
    res = run("ensemble", "create", "ens", "--model", "a", "--model", "b")
    assert res.exit_code == 1 and "model b" in res.output and "16 texts" in res.output
    res = run("ensemble", "create", "ens", "--model", "a:1", "--model", "b:0")
    assert res.exit_code == 1 and "'b'" in res.output and "positive" in res.output
    assert _count(texts_db, "SELECT count(*) FROM ensembles") == 0
    assert _count(texts_db, "SELECT count(*) FROM ensemble_vectors") == 0


def test_models_add_under_a_second_name_exits_1_naming_the_registered_one(run, texts_db, tiny_model_dir):
    assert run("models", "add", "tiny", "--source", str(tiny_model_dir)).exit_code == 0
    res = run("models", "add", "l3copy", "--source", str(tiny_model_dir))
    assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith("Error: model 'l3copy' would be identical to the registered model 'tiny'")
    assert _count(texts_db, "SELECT count(*) FROM models WHERE name = 'l3copy'") == 0


def test_bad_option_values_are_usage_errors(run, texts_db):
    assert run("embed", "--model", "a", "--what", "docs").exit_code == 2
    assert run("embed").exit_code == 2
