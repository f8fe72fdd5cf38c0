"""BM25 and random baselines: SQL over UDFs registered on the connection, written like ensemble runs."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.databases import ENSEMBLE
from rank_bm25 import BM25Okapi

from hnm_db.mining import baselines
from hnm_db.mining.inputs import read_split
from hnm_db.mining.mine import mine
from hnm_db.mining.params import MiningParams
from hnm_db.retrieval.bm25 import tokenize


def _negatives(db, name, query_id):
    return [
        r[0]
        for r in db.store.execute(
            "SELECT DISTINCT negative_chunk_id, rank FROM triplets JOIN mining_runs USING (run_id) "
            "WHERE name = ? AND query_id = ? ORDER BY rank",
            [name, query_id],
        ).fetchall()
    ]


def test_bm25_negatives_are_rank_bm25_top_k_minus_positives(mining_db):
    mine(
        mining_db.store,
        MiningParams(method="bm25", num_negatives=4, range_max=10, max_score_ratio=None, name="b"),
    )
    texts = mining_db.store.execute(
        "SELECT content_hash, min(text), min(chunk_id), arg_min(doc_id, chunk_id) FROM chunks "
        "GROUP BY content_hash ORDER BY content_hash"
    ).fetchall()
    okapi = BM25Okapi([tokenize(t[1]) for t in texts])
    for qid, qtext in mining_db.store.execute(
        "SELECT query_id, text FROM mining_queries WHERE split = 'train' ORDER BY query_id LIMIT 4"
    ).fetchall():
        positive_hashes = {
            r[0]
            for r in mining_db.store.execute(
                "SELECT content_hash FROM mining_positives WHERE query_id = ?", [qid]
            ).fetchall()
        }
        scores = okapi.get_scores(tokenize(qtext))
        order = sorted(range(len(texts)), key=lambda i: (-scores[i], texts[i][0]))
        expected = [texts[i][2] for i in order if texts[i][0] not in positive_hashes][:4]
        assert _negatives(mining_db, "b", qid) == expected
    row = mining_db.store.execute(
        "SELECT score, positive_score, member_scores FROM triplets LIMIT 1"
    ).fetchone()
    assert row[0] > 0 and row[1] is not None and row[2] is None  # BM25 scores; no ensemble given


def test_random_negatives_are_seeded_per_query_and_never_positive(mining_db):
    p = dict(method="random", num_negatives=5, range_max=20)
    mine(mining_db.store, MiningParams(seed=3, name="r1", **p))
    mine(mining_db.store, MiningParams(seed=3, name="r2", **p))
    mine(mining_db.store, MiningParams(seed=4, name="r3", **p))
    q = "q-cook-1"
    assert _negatives(mining_db, "r1", q) == _negatives(mining_db, "r2", q) != _negatives(mining_db, "r3", q)
    assert (
        mining_db.scalar(
            "SELECT count(*) FROM triplets WHERE score IS NOT NULL OR positive_score IS NOT NULL"
        )
        == 0
    )
    assert (
        mining_db.scalar(
            "SELECT count(*) FROM triplets t JOIN qrels q ON q.query_id = t.query_id "
            "AND q.doc_id = t.negative_doc_id"
        )
        == 0
    )


def test_random_draw_of_a_query_does_not_depend_on_other_queries(mining_db):
    data = read_split(mining_db.store, "train")
    full = baselines.random_hits(mining_db.store, "train", data.items, 6, seed=9)
    mining_db.store.execute("DELETE FROM qrels WHERE query_id = 'q-astro-0'")
    fewer = baselines.random_hits(mining_db.store, "train", data.items, 6, seed=9)

    def of(t, q):
        ids, hashes = t.column("query_id").to_pylist(), t.column("content_hash").to_pylist()
        return [h for qid, h in zip(ids, hashes, strict=True) if qid == q]

    assert of(full, "q-sport-2") == of(fewer, "q-sport-2") and len(of(full, "q-sport-2")) == 6
    assert len(set(of(full, "q-sport-2"))) == 6


def test_udfs_are_registered_only_during_the_run(mining_db):
    mine(mining_db.store, MiningParams(method="bm25", num_negatives=2, range_max=5, name="b"))
    with pytest.raises(Exception, match="hnm_bm25_top_k"):
        mining_db.store.execute("SELECT hnm_bm25_top_k('x', 3)")


def test_baseline_with_an_ensemble_records_ensemble_and_member_scores(mining_db):
    mine(
        mining_db.store,
        MiningParams(method="bm25", ensemble=ENSEMBLE, num_negatives=3, range_max=10, name="b"),
    )
    rows = mining_db.store.execute("SELECT score, member_scores FROM triplets").fetchall()
    for score, members in rows:
        assert set(members) == {"m-a", "m-b", "@ensemble"}
        assert members["@ensemble"] == pytest.approx(0.5 * members["m-a"] + 0.5 * members["m-b"], abs=1e-5)
        assert not np.isclose(score, members["@ensemble"])  # score stays the BM25 score
