"""``hnm-db chunk`` and ``hnm-db split`` through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from fixtures.cli import invoke
from fixtures.databases import insert_documents

import hnm_db
from hnm_db.sources.text import content_hash


@pytest.fixture
def path(db_path):
    with hnm_db.open(db_path) as db:
        insert_documents(db)
        db.store.execute(
            "INSERT INTO queries VALUES ('q1', 'a', ?, NULL, now()), ('q2', 'b', ?, NULL, now())",
            [content_hash("a"), content_hash("b")],
        )
        db.store.execute(
            "INSERT INTO qrels VALUES ('q1', 'astro-0', 1, 'unsplit'), ('q2', 'bio-0', 1, 'unsplit')"
        )
    return db_path


def run(path, *args):
    return invoke(path, *args, quiet=True)


def chunks(path) -> list[tuple]:
    with hnm_db.open(path) as db:
        return db.sql("SELECT * FROM chunks ORDER BY chunk_id").rows()


def test_chunk_whole_prints_a_summary(path):
    result = run(path, "chunk", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"documents": 40, "chunks": 40, "unchanged": 0, "removed": 0}]
    again = run(path, "chunk", "--format", "json")
    assert json.loads(again.output)[0]["unchanged"] == 40


def test_chunk_tokens_with_a_model_folder(path, tiny_model_dir):
    result = run(
        path,
        "chunk",
        "--strategy",
        "tokens",
        "--size",
        "16",
        "--overlap",
        "4",
        "--model",
        str(tiny_model_dir),
        "--no-title",
        "--doc-id",
        "astro-0",
        "--doc-id",
        "bio-1",
    )
    assert result.exit_code == 0, result.output
    rows = chunks(path)
    assert {r[1] for r in rows} == {"astro-0", "bio-1"} and len(rows) > 2
    assert all(json.loads(r[7])["title"] is False for r in rows)


def test_chunk_sentences_by_characters(path):
    result = run(path, "chunk", "--strategy", "sentences", "--size", "120", "--overlap", "1")
    assert result.exit_code == 0, result.output
    assert len(chunks(path)) > 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "sentences", "--size", "10", "--overlap", "10"], "overlap must be < size"),
        (["--strategy", "sentences", "--size", "0"], "size must be > 0"),
        (["--strategy", "tokens"], "model is required"),
        (["--doc-id", "nope"], "1 unknown document ids, e.g. nope"),
        (["--strategy", "tokens", "--model", "/no/such/model"], "model"),
    ],
)
def test_bad_chunk_options_fail_with_one_line_and_change_nothing(path, args, message):
    run(path, "chunk")
    before = chunks(path)
    result = run(path, "chunk", *args)
    assert result.exit_code == 1
    assert message in result.output and result.output.strip().count("\n") == 0
    assert chunks(path) == before


def test_split_assigns_unsplit_queries_and_the_view_shows_them(path):
    result = run(path, "split", "--test-ratio", "0.5", "--seed", "3", "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)[0]
    assert summary["queries"] == 2 and summary["seed"] == 3
    view = run(
        path, "sql", "SELECT origin, count(*) AS n FROM query_splits GROUP BY origin", "--format", "csv"
    )
    assert view.output.splitlines() == ["origin,n", "assigned,2"]


def test_split_with_a_bad_ratio_fails_and_changes_nothing(path):
    run(path, "split", "--test-ratio", "0.5")
    with hnm_db.open(path) as db:
        before = db.sql("SELECT * FROM query_split_assignments ORDER BY ALL").rows()
    result = run(path, "split", "--test-ratio", "1.5")
    assert result.exit_code == 1 and "test_ratio must be > 0 and < 1" in result.output
    with hnm_db.open(path) as db:
        assert db.sql("SELECT * FROM query_split_assignments ORDER BY ALL").rows() == before
