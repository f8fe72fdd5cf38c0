"""Hybrid ensembles (dense + W x min-max BM25) and tuned weights: scoring, every stage that ranks with an
ensemble, provenance, and bad input that leaves the database unchanged."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fixtures.cli import invoke
from fixtures.databases import db_digest, populate_mining_db

import hnm_db
from hnm_db.errors import EmptySelection, InvalidParams, MissingBM25Statistics, NotFound
from hnm_db.models.ensemble import EnsembleParams, create_ensemble, get_ensemble
from hnm_db.models.tune import TuneParams, tune
from hnm_db.retrieval import bm25 as bm25_module
from hnm_db.retrieval.bm25 import BM25Index
from hnm_db.retrieval.hybrid import HybridScorer, minmax_bounds, union_rows
from hnm_db.retrieval.topk import score_candidates
from hnm_db.store.vectors import read_vectors

W = 0.3


def _hybrid(db, name: str = "hyb", weight: float = W, **kw):
    return create_ensemble(
        db.store,
        EnsembleParams(name, (("model-a", None), ("model-b", None)), bm25=weight, **kw),
        progress=False,
    )


def _vectors(db, ensemble_id: str, role: str) -> dict[str, np.ndarray]:
    keys, mat = read_vectors(
        db.store,
        "SELECT content_hash, vec FROM ensemble_vectors WHERE ensemble_id = ? AND role = ?",
        [ensemble_id, role],
    )
    return dict(zip(keys["content_hash"], mat, strict=True))


# -- the pure scoring ---------------------------------------------------------------------------------
def test_union_rows_keeps_each_id_once_and_pads():
    a = np.array([[3, 1, -1], [0, 2, 4]])
    b = np.array([[1, 5, 3], [4, 0, 2]])
    assert union_rows(a, b).tolist() == [[1, 3, 5], [0, 2, 4]]


def test_minmax_bounds_ignore_invalid_entries_and_constant_rows_map_to_zero():
    raw = np.array([[2.0, 4.0, 100.0], [3.0, 3.0, 3.0]])
    lo, span = minmax_bounds(raw, np.array([[True, True, False], [True, True, True]]))
    assert lo.tolist() == [2.0, 3.0] and span.tolist() == [2.0, 1.0]


def test_hybrid_top_k_is_dense_plus_weighted_minmax_bm25_over_the_union_of_both_lists():
    texts = ["red apple pie", "green apple", "blue sky", "red car", "apple apple cake", "sky high"]
    texts += ["fast train", "old house", "quiet river", "big city", "apple tree"]
    queries = ["apple", "red sky"]
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(len(texts), 4)).astype(np.float32)
    qv = rng.normal(size=(2, 4)).astype(np.float32)
    index = BM25Index.build(texts)
    scorer = HybridScorer(index, 0.5, queries, qv, lambda items: docs[items])
    depth = 3
    dense = score_candidates(qv, docs, depth)
    got = scorer.top_k(dense, 3)
    full = index.scores(queries)
    for q in range(2):
        bm_top = np.argsort(-full[q], kind="stable")[:depth]
        cands = sorted(set(dense.indices[q].tolist()) | set(bm_top.tolist()))
        raw = full[q, cands]
        assert raw.max() > raw.min()
        norm = (raw - raw.min()) / (raw.max() - raw.min())
        expected = qv[q] @ docs[cands].T + 0.5 * norm
        order = np.lexsort((cands, -expected))[:3]
        assert got.indices[q].tolist() == [cands[i] for i in order]
        np.testing.assert_allclose(got.scores[q], expected[order], rtol=1e-5)
        # a pair scored later uses the same per-query bounds
        np.testing.assert_allclose(
            scorer.score(np.array([q, q]), np.array(cands[:2])), expected[:2], rtol=1e-5
        )


# -- create -------------------------------------------------------------------------------------------
def test_hybrid_row_records_weights_and_bm25_parameters_and_vectors_are_the_dense_part(mining_db):
    db = mining_db
    s = _hybrid(db, bm25_k1=1.2, bm25_b=0.5, depth=30)
    ens = get_ensemble(db.store, "hyb")
    assert [m["weight"] for m in ens.members] == [0.5, 0.5]
    assert ens.bm25 == {
        "weight": W,
        "k1": 1.2,
        "b": 0.5,
        "epsilon": bm25_module.EPSILON,
        "tokenizer": bm25_module.TOKENIZER,
        "depth": 30,
    }
    dense_id = get_ensemble(db.store, "ens").ensemble_id  # the fixture's ensemble: the same members, 0.5 each
    for role in ("doc", "query"):
        mine, plain = _vectors(db, s.ensemble_id, role), _vectors(db, dense_id, role)
        assert mine.keys() == plain.keys()
        for h in mine:
            np.testing.assert_allclose(mine[h], plain[h], atol=1e-6)
    # an ensemble of the same dense members without BM25 is another ensemble (its id covers the sparse member)
    assert (
        s.ensemble_id
        != create_ensemble(
            db.store, EnsembleParams("hyb2", (("model-a", None), ("model-b", None))), progress=False
        ).ensemble_id
    )


def test_params_defaults_are_the_bm25_modules():
    p = EnsembleParams("x", (("a", None),))
    assert (p.bm25_k1, p.bm25_b) == (bm25_module.K1, bm25_module.B)


def test_sql_macro_of_a_hybrid_gives_its_dense_part(mining_db):
    db = mining_db
    _hybrid(db)
    q, d = db.store.execute(
        "SELECT q.content_hash, c.content_hash FROM queries q, chunks c LIMIT 1"
    ).fetchone()
    assert db.scalar("SELECT ensemble_sim('hyb', ?, ?)", [q, d]) == pytest.approx(
        db.scalar("SELECT ensemble_sim('ens', ?, ?)", [q, d]), abs=1e-6
    )


# -- eval and mine ------------------------------------------------------------------------------------
def _brute_force(db, query_ids: list[str]) -> dict[str, dict[str, float]]:
    """query -> chunk_id -> hybrid score, with every chunk a candidate (depth >= chunks)."""
    chunks = db.sql("SELECT chunk_id, text, content_hash FROM chunks ORDER BY chunk_id")
    queries = db.sql("SELECT query_id, text, content_hash FROM queries ORDER BY query_id")
    queries = queries.filter(queries["query_id"].is_in(query_ids))
    ens = get_ensemble(db.store, "hyb")
    docs, qv = _vectors(db, ens.ensemble_id, "doc"), _vectors(db, ens.ensemble_id, "query")
    full = BM25Index.build(chunks["text"].to_list()).scores(queries["text"].to_list())
    out = {}
    for i, (qid, qh) in enumerate(zip(queries["query_id"], queries["content_hash"], strict=True)):
        norm = (full[i] - full[i].min()) / (full[i].max() - full[i].min())
        dense = np.array([qv[qh] @ docs[h] for h in chunks["content_hash"]])
        out[qid] = dict(zip(chunks["chunk_id"], dense + W * norm, strict=True))
    return out


def test_eval_first_stage_of_a_hybrid_ranks_by_the_hybrid_score(mining_db):
    db = mining_db
    _hybrid(db)
    summary = db.evaluate(None, first_stage="ensemble:hyb", k=10, split="test")
    cands = summary.candidates
    expected = _brute_force(db, sorted(set(cands["query_id"])))
    for qid, chunk, score in zip(cands["query_id"], cands["chunk_id"], cands["first_score"], strict=True):
        assert score == pytest.approx(expected[qid][chunk], abs=1e-5)
    for qid, part in cands.group_by("query_id"):
        best = sorted(expected[qid[0]].values(), reverse=True)[:10]
        np.testing.assert_allclose(sorted(part["first_score"], reverse=True), best, atol=1e-5)
    assert summary.rows[0]["model"] == "first-stage:ensemble:hyb"


def test_mining_with_a_hybrid_scores_by_it_and_records_bm25_in_member_scores(mining_db):
    db = mining_db
    _hybrid(db)
    run = db.mine(
        method="ensemble", ensemble="hyb", num_negatives=3, range_max=10, max_score_ratio=0.99, name="h"
    )
    assert run.triplets > 0 and run.stats["ensemble_bm25"]["weight"] == W
    rows = db.sql(
        "SELECT t.query_id, t.negative_chunk_id, t.positive_chunk_id, t.score, t.positive_score, "
        "t.member_scores FROM triplets t JOIN mining_runs USING (run_id) WHERE name = 'h'"
    )
    chunks = db.sql("SELECT chunk_id, text, content_hash FROM chunks")
    text_of = dict(zip(chunks["chunk_id"], chunks["text"], strict=True))
    distinct = db.sql("SELECT content_hash, min(text) AS text FROM chunks GROUP BY 1 ORDER BY 1")
    index = BM25Index.build(distinct["text"].to_list())  # mining's candidates are distinct texts
    queries = dict(db.store.execute("SELECT query_id, text FROM queries").fetchall())
    for r in rows.iter_rows(named=True):
        full = index.scores([queries[r["query_id"]]])[0]
        members = r["member_scores"]
        raw = index.scores([queries[r["query_id"]]])[0][
            list(distinct["text"]).index(text_of[r["negative_chunk_id"]])
        ]
        assert members["@bm25"] == pytest.approx(raw, rel=1e-6)
        norm = (raw - full.min()) / (full.max() - full.min())
        assert r["score"] == pytest.approx(members["@ensemble"] + W * norm, abs=1e-5)
        assert members["@ensemble"] == pytest.approx(0.5 * members["m-a"] + 0.5 * members["m-b"], abs=1e-5)
        assert r["score"] <= 0.99 * r["positive_score"] + 1e-9  # the guard compares hybrid with hybrid
    db.check()  # raises ChecksFailed if a negative were a judged positive


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("members", "bm25", "error", "message"),
    [
        ((("model-a", None), ("nope", None)), 0.3, NotFound, "model 'nope' is not registered"),
        (
            (("model-a", 0.0), ("model-b", None)),
            0.3,
            InvalidParams,
            "weight of model 'model-a' must be positive",
        ),
        ((("model-a", -1.0),), None, InvalidParams, "must be positive"),
        ((("model-a", None),), 0.0, InvalidParams, "bm25: weight of BM25 must be positive, got 0.0"),
        ((("model-a", None),), -0.5, InvalidParams, "bm25: weight of BM25 must be positive"),
    ],
)
def test_bad_members_and_weights_fail_and_change_nothing(mining_db, members, bm25, error, message):
    before = db_digest(mining_db)
    with pytest.raises(error, match=message):
        create_ensemble(mining_db.store, EnsembleParams("bad", members, bm25=bm25), progress=False)
    assert db_digest(mining_db) == before


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("UPDATE chunks SET text = 'the of and it is'", "none of the 55 chunk texts has a BM25 term"),
        ("DELETE FROM chunks", "there are no chunks"),
    ],
)
def test_a_hybrid_over_a_corpus_without_bm25_statistics_fails_and_changes_nothing(mining_db, setup, message):
    db = mining_db
    db.store.execute(setup)
    before = db_digest(db)
    with pytest.raises(MissingBM25Statistics, match=message):
        _hybrid(db)
    assert db_digest(db) == before


def test_cli_errors_are_one_line_and_change_nothing(db_path):
    with hnm_db.open(db_path) as db:
        populate_mining_db(db)
        db.store.execute("UPDATE chunks SET text = 'the of and'")
        before = db_digest(db)
    cases = [
        (["-m", "model-a", "-m", "nope", "--bm25", "0.3"], "model 'nope' is not registered"),
        (["-m", "model-a:0", "--bm25", "0.3"], "must be positive"),
        (["-m", "model-a", "--bm25", "0"], "bm25: weight of BM25 must be positive"),
        (["-m", "model-a", "--bm25", "0.3"], "needs BM25 statistics of the chunk texts"),
    ]
    for args, message in cases:
        res = invoke(db_path, "ensemble", "create", "bad", *args, quiet=True)
        assert res.exit_code == 1, res.output
        assert res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
    with hnm_db.open(db_path, read_only=True) as db:
        assert db_digest(db) == before


# -- tune ---------------------------------------------------------------------------------------------
def _tune(db, **kw):
    return tune(db.store, TuneParams("hyb", samples=kw.pop("samples", 12), rounds=kw.pop("rounds", 2), **kw))


def test_tune_writes_a_new_ensemble_with_the_best_weights_and_leaves_the_source_alone(mining_db):
    db = mining_db
    src = _hybrid(db)
    run = db.mine(method="ensemble", ensemble="hyb", num_negatives=2, range_max=5, name="before-tune")
    s = _tune(db)
    assert s.name == "hyb-tuned" and s.ensemble_id != src.ensemble_id
    assert sum(s.weights.values()) == pytest.approx(1.0) and set(s.weights) == {"model-a", "model-b", "bm25"}
    tuned = get_ensemble(db.store, "hyb-tuned")
    dense = s.weights["model-a"] + s.weights["model-b"]
    assert [m["weight"] for m in tuned.members] == pytest.approx(
        [s.weights["model-a"] / dense, s.weights["model-b"] / dense]
    )
    assert tuned.bm25["weight"] == pytest.approx(s.weights["bm25"] / dense)
    row = db.store.execute(
        "SELECT source_ensemble_id, split, dev_queries, dev_score, source_dev_score, trace, weights "
        "FROM ensemble_tunings WHERE ensemble_id = ?",
        [s.ensemble_id],
    ).fetchone()
    trace = json.loads(row[5])
    assert row[:3] == (src.ensemble_id, "train", 2)  # 20% of the 12 train queries
    assert len(trace) == 1 + 1 + 12 + 2 * 2 * 3 == s.trials
    assert row[3] == max(t["ndcg@10"] for t in trace) >= row[4] == trace[0]["ndcg@10"]
    assert json.loads(row[6]) == pytest.approx(s.weights)
    # the source and the run mined with it still say which weights they used
    assert get_ensemble(db.store, "hyb").bm25["weight"] == W
    assert (
        db.run("before-tune")["ensemble_id"] == src.ensemble_id == get_ensemble(db.store, "hyb").ensemble_id
    )
    # tuned and untuned side by side
    listed = {r["name"]: r for r in db.list_ensembles().iter_rows(named=True)}
    assert listed["hyb-tuned"]["tuned_from"] == "hyb" and listed["hyb-tuned"]["dev_ndcg10"] == row[3]
    assert listed["hyb"]["tuned_from"] is None and listed["hyb"]["dev_ndcg10"] is None
    assert listed["hyb"]["weights"] == "model-a 0.500, model-b 0.500, bm25 0.300"
    assert run.triplets > 0


def test_tune_again_with_the_same_seed_changes_nothing(mining_db):
    db = mining_db
    _hybrid(db)
    first = _tune(db)
    digest = db_digest(db)
    again = _tune(db)
    assert (again.ensemble_id, again.weights) == (first.ensemble_id, first.weights)
    after = db_digest(db)
    after.pop("ensemble_tunings"), digest.pop("ensemble_tunings")  # created_at differs
    assert after == digest
    assert db.scalar("SELECT count(*) FROM ensemble_tunings") == 1


def test_tune_never_reads_test_qrels(mining_db, tmp_path):
    """Deleting the test judgements, or pointing them at other documents, changes nothing tune does."""
    db = mining_db
    _hybrid(db)
    path = tmp_path / "other.duckdb"
    db.store.execute("CHECKPOINT")
    shutil.copy(db.path, path)
    trace_sql = "SELECT trace FROM ensemble_tunings"
    outcomes = [(_tune(db, dev_ratio=0.5), json.loads(db.scalar(trace_sql)))]
    with hnm_db.open(path) as other:
        other.store.execute("UPDATE qrels SET doc_id = 'cook-9' WHERE split = 'test'")
        outcomes.append((_tune(other, dev_ratio=0.5), json.loads(other.scalar(trace_sql))))
        other.store.execute("DELETE FROM qrels WHERE split = 'test'")
        outcomes.append((_tune(other, dev_ratio=0.5, replace=True), json.loads(other.scalar(trace_sql))))
    first, first_trace = outcomes[0]
    for summary, trace in outcomes[1:]:
        assert summary.weights == first.weights and trace == first_trace
        assert (summary.dev_score, summary.source_dev_score, summary.dev_queries) == (
            first.dev_score,
            first.source_dev_score,
            first.dev_queries,
        )


def test_tune_refuses_the_test_split_and_its_own_name():
    with pytest.raises(InvalidParams, match="test split is for evaluation only"):
        TuneParams("hyb", split="test")
    with pytest.raises(InvalidParams, match="tune writes a new ensemble"):
        TuneParams("hyb", name="hyb")


def test_tune_without_train_queries_fails_and_changes_nothing(mining_db):
    db = mining_db
    _hybrid(db)
    db.store.execute("DELETE FROM qrels WHERE split = 'train'")
    before = db_digest(db)
    with pytest.raises(EmptySelection, match="split 'train' has no query with a relevant judgement"):
        _tune(db)
    assert db_digest(db) == before


def test_cli_create_tune_list(db_path):
    with hnm_db.open(db_path) as db:
        populate_mining_db(db)
    res = invoke(
        db_path, "ensemble", "create", "hyb", "-m", "model-a", "-m", "model-b", "--bm25", "0.3", quiet=True
    )
    assert res.exit_code == 0, res.output
    res = invoke(
        db_path, "ensemble", "tune", "hyb", "--samples", "4", "--rounds", "1", "--format", "json", quiet=True
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)[0]
    assert (
        out["name"] == "hyb-tuned"
        and out["tuned_from"] == "hyb"
        and set(out["weights"]) == {"model-a", "model-b", "bm25"}
    )
    res = invoke(db_path, "ensemble", "list", "--format", "json", quiet=True)
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["hyb"]["bm25"]["weight"] == 0.3 and rows["ens"]["bm25"] is None
    assert rows["hyb-tuned"]["dev_ndcg10"] == out["dev_ndcg10"]
    res = invoke(
        db_path, "eval", "--first-stage", "ensemble:hyb-tuned", "--k", "10", "--format", "json", quiet=True
    )
    assert res.exit_code == 0, res.output
    with hnm_db.open(db_path) as db:
        db.store.execute("DELETE FROM qrels WHERE split = 'train'")
        before = db_digest(db)
    res = invoke(db_path, "ensemble", "tune", "hyb", "--out", "again", quiet=True)
    assert (
        res.exit_code == 1
        and res.stderr.count("\n") == 1
        and "has no query with a relevant judgement" in res.stderr
    )
    with hnm_db.open(db_path, read_only=True) as db:
        assert db_digest(db) == before
