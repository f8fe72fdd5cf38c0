"""Splits: deterministic hash assignment, the query_splits view, replacement in one transaction."""

from __future__ import annotations

import pytest

from hnm_db.errors import EmptySelection, InvalidParams
from hnm_db.sources import split as split_mod
from hnm_db.sources.split import SplitParams, assign, split
from hnm_db.sources.text import content_hash
from hnm_db.store import UNSPLIT


def add_judged(db, query_ids: list[str], qrel_split: str) -> None:
    """Queries with one qrel each (to a shared document) in ``qrel_split``."""
    db.store.execute(
        "INSERT OR IGNORE INTO documents (doc_id, text, content_hash) VALUES ('d', 'x', ?)",
        [content_hash("x")],
    )
    db.store.execute(
        "INSERT INTO queries (query_id, text, content_hash) "
        "SELECT q, 'query ' || q, md5(q) FROM unnest($ids::VARCHAR[]) t(q)",
        {"ids": query_ids},
    )
    db.store.execute(
        "INSERT INTO qrels SELECT q, 'd', 1, $split FROM unnest($ids::VARCHAR[]) t(q)",
        {"ids": query_ids, "split": qrel_split},
    )


def assignments(db) -> list[tuple]:
    return db.sql("SELECT * FROM query_split_assignments ORDER BY query_id").rows()


def effective(db) -> dict[str, tuple[str, str]]:
    return {q: (s, o) for q, s, o in db.sql("SELECT * FROM query_splits").rows()}


@pytest.fixture
def unsplit_db(db):
    add_judged(db, [f"u{i}" for i in range(400)], UNSPLIT)
    add_judged(db, ["src-train"], "train")
    add_judged(db, ["src-test"], "test")
    return db


def test_same_seed_gives_the_same_assignment_and_another_seed_differs():
    ids = [f"q{i}" for i in range(200)]
    a = assign(ids, SplitParams(0.3, seed=1))
    assert a == assign(ids, SplitParams(0.3, seed=1))
    b = assign(ids, SplitParams(0.3, seed=2))
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 40


def test_a_query_keeps_its_split_when_others_are_added():
    small = dict(
        zip([f"q{i}" for i in range(50)], assign([f"q{i}" for i in range(50)], SplitParams(0.3)), strict=True)
    )
    big_ids = [f"q{i}" for i in range(500)]
    big = dict(zip(big_ids, assign(big_ids, SplitParams(0.3)), strict=True))
    assert all(big[q] == s for q, s in small.items())


def test_ratios_are_roughly_honoured():
    ids = [f"query-{i}" for i in range(5000)]
    got = assign(ids, SplitParams(0.2, seed=7, dev_ratio=0.1))
    assert abs(got.count("test") / 5000 - 0.2) < 0.02
    assert abs(got.count("dev") / 5000 - 0.1) < 0.02
    assert got.count("train") + got.count("test") + got.count("dev") == 5000


def test_split_stores_assignments_of_unsplit_queries_only(unsplit_db):
    summary = split(unsplit_db.store, SplitParams(0.25, seed=3))
    rows = assignments(unsplit_db)
    assert summary.queries == len(rows) == 400
    assert summary.test + summary.train == 400 and summary.dev == 0
    assert 60 < summary.test < 140
    assert {r[0] for r in rows}.isdisjoint({"src-train", "src-test"})
    assert all(r[2] == 3 and r[3] == (0.25 if r[1] == "test" else 0.75) for r in rows)


def test_view_gives_source_split_else_assignment_else_unsplit(unsplit_db):
    before = effective(unsplit_db)
    assert before["src-train"] == ("train", "source") and before["src-test"] == ("test", "source")
    assert before["u0"] == ("unsplit", "unassigned")
    split(unsplit_db.store, SplitParams(0.25, seed=3))
    after = effective(unsplit_db)
    assert len(after) == 402
    assert after["src-train"] == ("train", "source")
    stored = dict(unsplit_db.sql("SELECT query_id, split FROM query_split_assignments").rows())
    assert all(after[q] == (s, "assigned") for q, s in stored.items())


def test_qrels_keep_the_split_they_came_with(unsplit_db):
    before = unsplit_db.sql("SELECT * FROM qrels ORDER BY ALL").rows()
    split(unsplit_db.store, SplitParams(0.5, seed=1))
    assert unsplit_db.sql("SELECT * FROM qrels ORDER BY ALL").rows() == before


def test_rerunning_replaces_the_previous_assignment(unsplit_db):
    split(unsplit_db.store, SplitParams(0.2, seed=1))
    first = assignments(unsplit_db)
    split(unsplit_db.store, SplitParams(0.2, seed=2, dev_ratio=0.2))
    second = assignments(unsplit_db)
    assert len(second) == 400 and {r[2] for r in second} == {2}
    assert "dev" in {r[1] for r in second} and first != second
    split(unsplit_db.store, SplitParams(0.2, seed=1))
    assert assignments(unsplit_db) == first


def test_failed_write_keeps_the_previous_assignment(unsplit_db, monkeypatch):
    split(unsplit_db.store, SplitParams(0.2, seed=1))
    before = assignments(unsplit_db)
    # a duplicate id violates the primary key after the old rows were deleted
    monkeypatch.setattr(split_mod, "unsplit_queries", lambda db: ["u0", "u0"])
    with pytest.raises(Exception, match="(?i)duplicate key"):
        split(unsplit_db.store, SplitParams(0.2, seed=5))
    assert assignments(unsplit_db) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_ratio": 0.0}, "test_ratio must be > 0 and < 1"),
        ({"test_ratio": 1.0}, "test_ratio must be > 0 and < 1"),
        ({"test_ratio": 0.2, "dev_ratio": -0.1}, "dev_ratio must be >= 0"),
        ({"test_ratio": 0.6, "dev_ratio": 0.4}, "test_ratio \\+ dev_ratio must be < 1"),
        ({"test_ratio": 0.2, "seed": -1}, "seed must be >= 0"),
    ],
)
def test_invalid_params_name_the_field(kwargs, message):
    with pytest.raises(InvalidParams, match=message):
        SplitParams(**kwargs)


def test_nothing_to_split_is_an_empty_selection_and_changes_nothing(db):
    add_judged(db, ["a", "b"], "train")
    with pytest.raises(EmptySelection, match="already has a split"):
        split(db.store, SplitParams(0.2))
    assert assignments(db) == []


def test_database_method_mirrors_the_command(unsplit_db):
    summary = unsplit_db.split(test_ratio=0.25, seed=3)
    assert summary.queries == 400 and summary.seed == 3
