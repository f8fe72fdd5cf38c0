"""Mining: the pure steps on tiny score matrices, then the rules of the data model (docs/data-model.md) on the fixture database."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures.databases import DUPLICATE_DOC, ENSEMBLE, db_digest, run_rows

import hnm_db.mining.inputs as inputs_mod
import hnm_db.mining.mine as mine_mod
import hnm_db.mining.rows as rows_mod
from hnm_db import resources
from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams, MissingEmbeddings, NotFound
from hnm_db.mining.candidates import (
    FALLBACK,
    MIXED,
    WINDOW,
    Candidates,
    Pairs,
    exclude_positives,
    false_negative_threshold,
    filter_candidates,
    mix_random_negatives,
    sample_negatives,
)
from hnm_db.mining.cluster import ClusterParams, cluster
from hnm_db.mining.mine import mine
from hnm_db.mining.params import MiningParams
from hnm_db.retrieval.topk import TopK, score_candidates
from hnm_db.store.vectors import read_vectors

# 5 queries x 5 chunks; row q is best at column q, and column 4 ties with column 3 for query 0.
SCORES = np.array(
    [
        [0.90, 0.80, 0.70, 0.60, 0.60],
        [0.10, 0.95, 0.50, 0.40, 0.30],
        [0.20, 0.30, 0.85, 0.70, 0.75],
        [-0.10, -0.20, -0.30, -0.40, -0.50],
        [0.50, 0.40, 0.30, 0.20, 0.10],
    ],
    dtype=np.float32,
)


def _candidates(scores: np.ndarray, k: int = 5) -> Candidates:
    order = np.lexsort((np.tile(np.arange(scores.shape[1]), (len(scores), 1)), -scores), axis=-1)[:, :k]
    return Candidates.from_topk(TopK(order, np.take_along_axis(scores, order, axis=1)))


def _pairs(queries=(0, 1, 2, 3, 4), scores=None) -> Pairs:
    """One pair per query row in ``queries`` (repeat a row for a query with two positives)."""
    q = np.array(queries, dtype=np.int64)
    sc = np.full(len(q), np.nan) if scores is None else np.array(scores, dtype=np.float64)
    return Pairs(q, sc, np.array([f"q{i}\x1fp{j}" for j, i in enumerate(q)]))


def _params(**kw) -> MiningParams:
    base = dict(
        method="ensemble", ensemble="e", num_negatives=2, range_min=0, range_max=5, max_score_ratio=None
    )
    return MiningParams(**(base | kw))


# -- pure steps --------------------------------------------------------------------------------------
def test_score_candidates_ranks_5x5_best_first_with_ties_to_lower_index():
    eye = np.eye(5, dtype=np.float32)
    topk = score_candidates(SCORES, eye, 3)  # queries @ I = the score matrix itself
    assert topk.indices[0].tolist() == [0, 1, 2]
    assert topk.indices[3].tolist() == [0, 1, 2]
    top4 = score_candidates(SCORES, eye, 5)
    assert top4.indices[0].tolist() == [0, 1, 2, 3, 4]  # 0.60 tie: column 3 before 4


@pytest.mark.parametrize("query_block,chunk_block", [(7, 13), (64, 500), (3, 1)])
def test_blocked_top_k_equals_full_sort(query_block, chunk_block):
    rng = np.random.default_rng(0)
    q, c = rng.normal(size=(40, 16)).astype(np.float32), rng.normal(size=(300, 16)).astype(np.float32)
    blocks = [c[s : s + chunk_block] for s in range(0, len(c), chunk_block)]
    topk = score_candidates(q, blocks, 12, query_block=query_block)
    full = q @ c.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :12]
    assert np.array_equal(topk.indices, expected)
    assert np.allclose(topk.scores, np.take_along_axis(full, expected, axis=1))


def test_top_k_larger_than_corpus_pads_with_minus_one():
    topk = score_candidates(SCORES[:2], np.eye(5, dtype=np.float32), 7)
    assert topk.indices[0, 5:].tolist() == [-1, -1]
    assert len(Candidates.from_topk(topk)) == 10


def test_ranks_are_counted_after_positives_are_removed():
    # query 1's positive is its best column (1): chunk 2 becomes rank 0
    kept = exclude_positives(_candidates(SCORES), np.array([1]), np.array([1]), 5)
    q1 = kept.take(kept.query == 1)
    assert q1.item.tolist() == [2, 3, 4, 0]
    assert q1.rank.tolist() == [0, 1, 2, 3]
    assert 1 not in q1.item


def test_range_window_keeps_ranks_min_to_max_exclusive():
    cands = exclude_positives(_candidates(SCORES), np.array([], int), np.array([], int), 5)
    kept, counts = filter_candidates(
        cands, _params(range_min=1, range_max=3, num_negatives=1), pairs=_pairs()
    )
    assert kept.take(kept.query == 0).item.tolist() == [1, 2]
    assert counts.considered == 10
    assert (kept.origin == WINDOW).all() and kept.pair.tolist() == kept.query.tolist()


def test_false_negative_threshold_is_below_a_negative_positive_score():
    thr = false_negative_threshold(np.array([0.8, -0.5, 0.0]), 0.95)
    assert np.allclose(thr, [0.76, -0.525, 0.0])
    assert thr[1] < -0.5  # plain multiplication would give -0.475, above the positive


def test_false_negative_guard_drops_candidates_close_to_the_pairs_positive():
    cands = exclude_positives(_candidates(SCORES), np.array([0, 3]), np.array([0, 0]), 5)
    pairs = _pairs((0, 3), [0.75, -0.12])
    kept, counts = filter_candidates(cands, _params(max_score_ratio=0.95), pairs=pairs)
    # query 0: threshold 0.7125 drops 0.80 (rank 0), keeps 0.70 and below
    assert kept.take(kept.query == 0).item.tolist() == [2, 3, 4]
    # query 3: positive -0.12 -> threshold -0.126; -0.2 and lower stay
    assert kept.take(kept.query == 3).item.tolist() == [1, 2, 3, 4]
    assert counts.dropped_false_negatives == 1


def test_pair_guard_compares_with_each_positive_and_query_guard_with_the_lowest():
    # query 0 has two positives scoring 0.95 and 0.75: each pair keeps what is below its own positive
    cands = exclude_positives(_candidates(SCORES), np.array([0]), np.array([0]), 5)
    pairs = _pairs((0, 0), [0.95, 0.75])
    kept, counts = filter_candidates(cands.take(cands.query == 0), _params(max_score_ratio=0.95), pairs=pairs)
    assert kept.take(kept.pair == 0).item.tolist() == [1, 2, 3, 4]  # threshold 0.9025 keeps 0.80
    assert kept.take(kept.pair == 1).item.tolist() == [2, 3, 4]  # threshold 0.7125 drops 0.80
    assert counts.dropped_false_negatives == 1
    floor = np.array([0.75, np.nan, np.nan, np.nan, np.nan])
    strict, _ = filter_candidates(
        cands.take(cands.query == 0),
        _params(max_score_ratio=0.95, guard="query"),
        pairs=pairs,
        positive_floor=floor,
    )
    assert strict.take(strict.pair == 0).item.tolist() == [2, 3, 4]  # the query's lowest positive rules
    assert strict.take(strict.pair == 1).item.tolist() == [2, 3, 4]


def test_cluster_filter_query_positive_and_either():
    cands = exclude_positives(_candidates(SCORES), np.array([0]), np.array([0]), 5)
    item_cluster = np.array([0, 1, 0, 2, 1])
    query_cluster = np.array([1, 1, 0, 2, 2])
    pos = (np.array([0]), np.array([0]))  # query 0's positive chunk is in cluster 0

    def run(mode):
        kept, _ = filter_candidates(
            cands,
            _params(cluster_filter=mode),
            pairs=_pairs(),
            query_cluster=query_cluster,
            item_cluster=item_cluster,
            positive_clusters=pos,
        )
        return kept.take(kept.query == 0).item.tolist()

    assert run("query") == [1, 4]
    assert run("positive") == [2]
    assert sorted(run("either")) == [1, 2, 4]
    assert run("none") == [1, 2, 3, 4]


def _expanded(params: MiningParams, pairs: Pairs | None = None) -> tuple[Candidates, Pairs]:
    pairs = pairs or _pairs()
    cands = exclude_positives(_candidates(SCORES), np.array([], int), np.array([], int), 5)
    kept, _ = filter_candidates(cands, params, pairs=pairs)
    return kept, pairs


def test_top_sampling_takes_best_ranks_and_random_is_seeded():
    params = _params(num_negatives=2)
    kept, pairs = _expanded(params)
    top = sample_negatives(kept, params, pairs)
    assert top.take(top.query == 2).item.tolist() == [2, 4]

    def draw(seed):
        p = _params(num_negatives=2, sampling="random", seed=seed)
        kept, pairs = _expanded(p)
        return sample_negatives(kept, p, pairs)

    r1, r2 = draw(5), draw(5)
    assert np.array_equal(r1.item, r2.item) and len(r1) == 10
    assert np.all(np.diff(r1.rank)[np.diff(r1.pair) == 0] > 0)  # kept in rank order
    assert len({tuple(draw(s).item) for s in range(8)}) > 1


def test_fallback_fills_a_pair_the_guard_left_short_from_deeper_ranks():
    # query 0, window [0, 2): the guard (positive 0.75) drops 0.80, leaving one; ranks 2-3 refill
    cands = exclude_positives(_candidates(SCORES), np.array([0]), np.array([0]), 5)
    pairs = _pairs((0,), [0.75])
    q0 = cands.take(cands.query == 0)
    no_fallback = _params(num_negatives=2, range_max=2, max_score_ratio=0.95)
    kept, _ = filter_candidates(q0, no_fallback, pairs=pairs)
    assert sample_negatives(kept, no_fallback, pairs).item.tolist() == [2]  # short: not padded
    params = _params(num_negatives=2, range_max=2, max_score_ratio=0.95, fallback_depth=4)
    kept, counts = filter_candidates(q0, params, pairs=pairs)
    chosen = sample_negatives(kept, params, pairs)
    assert chosen.item.tolist() == [2, 3]
    assert chosen.origin.tolist() == [WINDOW, FALLBACK]
    assert counts.considered == 2 and counts.dropped_false_negatives == 1
    # a pair the window fills takes nothing from the fallback ranks
    full = _params(num_negatives=1, range_max=2, max_score_ratio=0.95, fallback_depth=4)
    kept, _ = filter_candidates(q0, full, pairs=pairs)
    assert sample_negatives(kept, full, pairs).origin.tolist() == [WINDOW]


def test_random_mix_adds_unchosen_texts_per_pair():
    params = _params(num_negatives=2)
    kept, pairs = _expanded(params)
    chosen = sample_negatives(kept, params, pairs)
    # a "random draw" of query 2 in the order 4, 2, 1, 0 (3 is its positive, excluded)
    drawn = Candidates(np.array([2, 2, 2, 2]), np.array([4, 2, 1, 0]), np.full(4, np.nan), np.arange(4))
    mixed = mix_random_negatives(chosen, drawn, _pairs(), 2)
    q2 = mixed.take(mixed.query == 2)
    assert q2.item.tolist() == [2, 4, 1, 0]  # 4 and 2 were chosen already: skipped
    assert q2.origin.tolist() == [WINDOW, WINDOW, MIXED, MIXED]
    assert np.isnan(q2.score[2:]).all()


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(range_min=5, range_max=5), "range_min"),
        (dict(range_min=6, range_max=5), "range_min"),
        (dict(num_negatives=0), "num_negatives"),
        (dict(num_negatives=-3), "num_negatives"),
        (dict(num_negatives=9, range_max=5), "num_negatives"),
        (dict(method="ensemble", ensemble=None), "ensemble"),
        (dict(cluster_filter="query", ensemble=None, method="bm25"), "cluster_filter"),
        (dict(max_score_ratio=1.5), "max_score_ratio"),
        (dict(sampling="best"), "sampling"),
        (dict(guard="lowest"), "guard"),
        (dict(min_relevance=0), "min_relevance"),
        (dict(fallback_depth=5, range_max=5), "fallback_depth"),
        (dict(mix_random=-1), "mix_random"),
        (dict(mix_random=2, method="random", ensemble=None), "mix_random"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_params_name_the_field(kw, field):
    with pytest.raises(InvalidParams, match=field):
        _params(**kw)


# -- the stage on the fixture database -----------------------------------------------------------------
def _check(db, name: str) -> list:
    return db.store.execute(resources.sql_file("checks", name)).fetchall()


def test_negative_is_never_a_judged_positive(mining_db):
    for method in ("ensemble", "bm25", "random"):
        mine(
            mining_db.store,
            MiningParams(
                method=method,
                ensemble=ENSEMBLE,
                num_negatives=5,
                range_max=40,
                max_score_ratio=None,
                name=method,
            ),
        )
    assert mining_db.scalar("SELECT count(DISTINCT run_id) FROM triplets") == 3
    assert _check(mining_db, "negative_is_judged_positive") == []
    assert _check(mining_db, "negative_text_is_positive_text") == []
    # a judged doc of the query in ANY split, checked directly too
    bad = mining_db.scalar(
        "SELECT count(*) FROM triplets t JOIN qrels q ON q.query_id = t.query_id "
        "AND q.doc_id = t.negative_doc_id"
    )
    assert bad == 0


def test_duplicate_text_of_a_positive_is_never_its_negative(mining_db):
    # dup-astro-0 repeats astro-0's first chunk, the positive of q-astro-0, and is its nearest text
    mine(
        mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=5, range_max=40, max_score_ratio=None)
    )
    assert (
        mining_db.scalar(
            "SELECT count(*) FROM triplets WHERE query_id = 'q-astro-0' AND negative_doc_id = ?",
            [DUPLICATE_DOC],
        )
        == 0
    )


def test_train_mining_never_reads_test_queries(mining_db):
    # remove everything a test query would need: mining train must not notice
    test_hashes = [
        r[0]
        for r in mining_db.store.execute(
            "SELECT content_hash FROM queries WHERE query_id IN (SELECT query_id FROM qrels WHERE split = 'test')"
        ).fetchall()
    ]
    mining_db.store.execute(
        "DELETE FROM ensemble_vectors WHERE role = 'query' AND content_hash IN (SELECT unnest(?))",
        [test_hashes],
    )
    summary = mine(mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=20))
    assert summary.queries == 12
    test_ids = {
        r[0] for r in mining_db.store.execute("SELECT query_id FROM qrels WHERE split = 'test'").fetchall()
    }
    used = {r[0] for r in mining_db.store.execute("SELECT DISTINCT query_id FROM triplets").fetchall()}
    assert used and not (used & test_ids)
    assert _check(mining_db, "test_query_in_training_rows") == []
    with pytest.raises(MissingEmbeddings, match="4 of 4 query texts"):
        mine(mining_db.store, MiningParams(ensemble=ENSEMBLE, split="test", num_negatives=3, range_max=20))


@pytest.mark.parametrize(
    "kw",
    [
        dict(method="ensemble", sampling="top"),
        dict(method="ensemble", sampling="random", cluster_filter="either"),
        dict(method="bm25", sampling="random"),
        dict(method="random"),
    ],
)
def test_same_inputs_and_seed_give_identical_triplets(mining_db, kw):
    cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=4, seed=0))
    for name in ("first", "second"):
        mine(
            mining_db.store,
            MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=12, seed=7, name=name, **kw),
        )
    first, second = run_rows(mining_db, "first"), run_rows(mining_db, "second")
    assert first and first == second


def test_failed_write_leaves_no_partial_rows(mining_db, monkeypatch):
    def boom(db, run_id):
        assert db.scalar("SELECT count(*) FROM triplets") > 0  # rows were inserted, then the write fails
        raise RuntimeError("disk full")

    before = db_digest(mining_db)
    monkeypatch.setattr(rows_mod, "record_run_sources", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        mine(mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=10))
    assert db_digest(mining_db) == before


def test_used_run_name_is_rejected_unless_replace(mining_db):
    params = MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=10, name="run")
    first = mine(mining_db.store, params)
    before = db_digest(mining_db)
    with pytest.raises(AlreadyExists, match="'run' already exists"):
        mine(mining_db.store, MiningParams(method="random", num_negatives=3, range_max=10, name="run"))
    assert db_digest(mining_db) == before
    second = mine(
        mining_db.store,
        MiningParams(method="random", num_negatives=3, range_max=10, name="run"),
        replace=True,
    )
    assert mining_db.scalar("SELECT count(*) FROM mining_runs") == 1
    assert mining_db.scalar("SELECT count(*) FROM triplets WHERE run_id = ?", [first.run_id]) == 0
    assert (
        mining_db.scalar("SELECT count(*) FROM triplets WHERE run_id = ?", [second.run_id]) == second.triplets
    )


def test_split_without_qrels_is_rejected(mining_db):
    before = db_digest(mining_db)
    with pytest.raises(EmptySelection, match="split 'dev' has no qrels.*test, train"):
        mine(mining_db.store, MiningParams(ensemble=ENSEMBLE, split="dev", num_negatives=3, range_max=10))
    assert db_digest(mining_db) == before


def test_missing_chunk_vectors_name_the_ensemble_model_and_count(mining_db):
    mining_db.store.execute(
        "DELETE FROM ensemble_vectors WHERE role = 'doc' AND content_hash IN "
        "(SELECT content_hash FROM chunks ORDER BY content_hash LIMIT 3)"
    )
    mining_db.store.execute(
        "DELETE FROM embeddings WHERE model_id = 'm-b' AND role = 'doc' AND content_hash IN "
        "(SELECT content_hash FROM chunks ORDER BY content_hash LIMIT 3)"
    )
    before = db_digest(mining_db)
    with pytest.raises(
        MissingEmbeddings,
        match=r"ensemble 'ens' has no vectors for 3 of 54 chunk texts.*"
        r"model 'model-a' lacks 0; model 'model-b' lacks 3",
    ):
        mine(mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=10))
    assert db_digest(mining_db) == before


def test_cluster_filter_without_a_cluster_run_is_an_error(mining_db):
    with pytest.raises(NotFound, match="needs a cluster run of ensemble 'ens'.*hnm-db cluster"):
        mine(
            mining_db.store,
            MiningParams(ensemble=ENSEMBLE, cluster_filter="query", num_negatives=3, range_max=10),
        )


def test_query_cluster_filter_keeps_only_the_query_cluster(mining_db):
    cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=4, seed=0))
    s = mine(
        mining_db.store,
        MiningParams(
            ensemble=ENSEMBLE, cluster_filter="query", num_negatives=3, range_max=30, max_score_ratio=None
        ),
    )
    clusters = mining_db.store.execute("SELECT query_cluster, negative_cluster FROM triplets").fetchall()
    assert clusters and all(q == n and q is not None for q, n in clusters)
    assert s.stats["dropped_cluster"] > 0


def test_scores_ranks_and_member_scores_are_the_recorded_provenance(mining_db):
    mine(
        mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=4, range_max=20, max_score_ratio=None)
    )
    keys, q = read_vectors(
        mining_db.store,
        "SELECT q.query_id, ev.vec FROM queries q JOIN ensemble_vectors ev "
        "ON ev.content_hash = q.content_hash AND ev.role = 'query' ORDER BY q.query_id",
    )
    qv = dict(zip(keys["query_id"], q, strict=True))
    keys, d = read_vectors(
        mining_db.store,
        "SELECT c.chunk_id, ev.vec FROM chunks c JOIN ensemble_vectors ev "
        "ON ev.content_hash = c.content_hash AND ev.role = 'doc'",
    )
    dv = dict(zip(keys["chunk_id"], d, strict=True))
    rows = mining_db.sql("SELECT * FROM triplets ORDER BY query_id, positive_chunk_id, rank").rows(named=True)
    for r in rows:
        assert r["score"] == pytest.approx(float(qv[r["query_id"]] @ dv[r["negative_chunk_id"]]), abs=1e-5)
        assert r["positive_score"] == pytest.approx(
            float(qv[r["query_id"]] @ dv[r["positive_chunk_id"]]), abs=1e-5
        )
        m = r["member_scores"]
        assert set(m) == {"m-a", "m-b", "@ensemble"}
        assert 0.5 * m["m-a"] + 0.5 * m["m-b"] == pytest.approx(r["score"], abs=1e-5)
    ranks = {}
    for r in rows:
        ranks.setdefault((r["query_id"], r["positive_chunk_id"]), []).append(r["rank"])
    assert all(v == sorted(v) and len(v) == 4 for v in ranks.values())


def test_member_scores_equal_cosines_of_the_member_embeddings(mining_db, monkeypatch):
    """Member scores are read off the ensemble vector slices; they must equal the cosines of the raw
    member embeddings, and the fallback that reads those embeddings must give the same rows."""
    mine(mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=10, name="slices"))
    rows = mining_db.sql(
        "SELECT q.content_hash AS qh, c.content_hash AS ch, t.member_scores FROM triplets t "
        "JOIN queries q USING (query_id) JOIN chunks c ON c.chunk_id = t.negative_chunk_id "
        "ORDER BY t.query_id, t.positive_chunk_id, t.rank"
    )
    qh, ch = rows["qh"].to_numpy(), rows["ch"].to_numpy()
    for model in ("m-a", "m-b"):
        member = {"model_id": model, "name": model}
        expected = inputs_mod.member_cosines(mining_db.store, member, qh, ch)
        got = np.array([dict(m)[model] for m in rows["member_scores"].to_list()])
        assert np.allclose(got, expected, atol=1e-5)
    monkeypatch.setattr(rows_mod, "slice_cosines", lambda *a: None)
    mine(mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=10, name="raw"))
    both = mining_db.sql(
        "SELECT a.member_scores AS a, b.member_scores AS b FROM triplets a JOIN triplets b "
        "USING (query_id, positive_chunk_id, negative_chunk_id) "
        "WHERE a.run_id = (SELECT run_id FROM mining_runs WHERE name = 'slices') "
        "AND b.run_id = (SELECT run_id FROM mining_runs WHERE name = 'raw')"
    )
    assert both.height == rows.height
    for a, b in zip(both["a"].to_list(), both["b"].to_list(), strict=True):
        a, b = dict(a), dict(b)
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-5 for k in a)


def test_multi_chunk_positive_uses_its_best_chunk(mining_db):
    # astro-0 has two chunks (every third doc is split): the positive chunk must be the higher-scoring one
    mine(
        mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=2, range_max=10, max_score_ratio=None)
    )
    keys, q = read_vectors(
        mining_db.store,
        "SELECT ev.vec FROM queries q JOIN ensemble_vectors ev ON ev.content_hash = "
        "q.content_hash AND ev.role = 'query' WHERE q.query_id = 'q-astro-0'",
    )
    keys, d = read_vectors(
        mining_db.store,
        "SELECT c.chunk_id, ev.vec FROM chunks c JOIN ensemble_vectors ev ON "
        "ev.content_hash = c.content_hash AND ev.role = 'doc' WHERE c.doc_id = 'astro-0' "
        "ORDER BY c.chunk_id",
    )
    best = keys["chunk_id"][int(np.argmax(d @ q[0]))]
    chosen = {
        r[0]
        for r in mining_db.store.execute(
            "SELECT positive_chunk_id FROM triplets WHERE positive_doc_id = 'astro-0'"
        ).fetchall()
    }
    assert chosen == {best}


def test_short_queries_are_counted_not_padded(mining_db):
    s = mine(
        mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=4, max_score_ratio=0.9)
    )
    per_pair = mining_db.store.execute(
        "SELECT query_id, positive_doc_id, count(*) FROM triplets GROUP BY ALL"
    ).fetchall()
    assert all(n <= 3 for _, _, n in per_pair)
    short = s.stats["short_query_ids"]
    assert s.short_queries == len(short) > 0 and s.stats["short_pairs"] >= len(short)
    counts = {(q, d): n for q, d, n in per_pair}
    pairs = mining_db.store.execute(
        "SELECT DISTINCT query_id, doc_id FROM mining_positives WHERE split = 'train'"
    ).fetchall()
    assert set(short) == {q for q, d in pairs if counts.get((q, d), 0) < 3}  # some pair has < 3
    assert s.stats["dropped_false_negatives"] > 0


def test_fallback_and_random_mix_cover_every_query_with_provenance(mining_db):
    short = mine(
        mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=4, max_score_ratio=0.9)
    )
    assert short.short_queries > 0
    s = mine(
        mining_db.store,
        MiningParams(
            ensemble=ENSEMBLE,
            num_negatives=3,
            range_max=4,
            max_score_ratio=0.9,
            fallback_depth=40,
            mix_random=2,
            name="covered",
        ),
    )
    assert s.short_queries == 0 and s.stats["short_pairs"] == 0
    assert s.stats["negatives_per_pair"] == {"mean": 3.0, "min": 3, "max": 3}  # hard ones; + 2 mixed each
    rows = mining_db.store.execute(
        "SELECT t.negative_method, t.fallback, count(*), min(t.rank), bool_and(t.score IS NULL) "
        "FROM triplets t JOIN mining_runs r USING (run_id) WHERE r.name = 'covered' GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    by_kind = {(m, f): (n, lowest, null) for m, f, n, lowest, null in rows}
    assert by_kind[("ensemble", True)][1] >= 4  # fallback rows come from below the window
    assert by_kind[("ensemble", True)][0] == s.stats["fallback_negatives"] > 0
    assert by_kind[("random", False)][0] == s.stats["mixed_random_negatives"] == 2 * s.stats["positives"]
    assert by_kind[("random", False)][2] is True  # mixed rows have no score of their own
    summary = mining_db.sql("SELECT * FROM run_summary WHERE run = 'covered'").row(0, named=True)
    assert summary["fallback_negatives"] == s.stats["fallback_negatives"]
    assert summary["mixed_random_negatives"] == s.stats["mixed_random_negatives"]
    assert summary["short_queries"] == 0
    assert _check(mining_db, "negative_is_judged_positive") == []


def test_run_record_keeps_params_seed_models_and_stats(mining_db):
    s = mine(
        mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=3, range_max=10, seed=4, name="prov")
    )
    run = mine_mod.show_run(mining_db.store, "prov")
    assert run["params"]["range_max"] == 10 and run["seed"] == 4 and run["code_version"]
    assert [m["fingerprint"] for m in run["models"]] == ["fp-m-a", "fp-m-b"]
    for key in (
        "queries_covered",
        "negatives_per_query",
        "dropped_false_negatives",
        "short_queries",
        "candidates_considered",
        "durations",
    ):
        assert key in run["stats"]
    assert run["triplets"] == s.triplets


def test_duckdb_memory_limit_is_restored_after_mining(mining_db):
    before = mining_db.scalar("SELECT current_setting('memory_limit')")
    mine(mining_db.store, MiningParams(ensemble=ENSEMBLE, num_negatives=2, range_max=5))
    with pytest.raises(EmptySelection):
        mine(mining_db.store, MiningParams(ensemble=ENSEMBLE, split="dev", num_negatives=2, range_max=5))
    assert mining_db.scalar("SELECT current_setting('memory_limit')") == before


def test_documents_judged_in_another_ingest_are_never_negatives(mining_db):
    """Qrels added later without a split still count: their documents are excluded from every run."""
    q = "q-astro-0"
    judged = {
        r[0] for r in mining_db.store.execute("SELECT doc_id FROM qrels WHERE query_id = ?", [q]).fetchall()
    }
    extra = [d for d in ("astro-1", "astro-2", "astro-3", "astro-4", "astro-6") if d not in judged]
    for doc in extra:
        mining_db.store.execute("INSERT INTO qrels VALUES (?, ?, 1, 'unsplit')", [q, doc])
    for method in ("ensemble", "bm25", "random"):
        mine(
            mining_db.store,
            MiningParams(method=method, ensemble=ENSEMBLE, num_negatives=5, name=f"x-{method}"),
        )
    negatives = {
        r[0]
        for r in mining_db.store.execute(
            "SELECT negative_doc_id FROM triplets WHERE query_id = ?", [q]
        ).fetchall()
    }
    assert negatives and not negatives & set(extra)
    assert _check(mining_db, "negative_is_judged_positive") == []


def test_a_query_judged_in_two_splits_is_refused_before_mining(mining_db):
    before = db_digest(mining_db)
    mining_db.store.execute("INSERT INTO qrels VALUES ('q-astro-0', 'astro-7', 1, 'test')")
    with pytest.raises(
        InvalidParams, match=r"1 queries of split 'train' are judged in several splits.*q-astro-0"
    ):
        mine(mining_db.store, MiningParams(method="random", ensemble=ENSEMBLE, name="both"))
    mining_db.store.execute("DELETE FROM qrels WHERE query_id = 'q-astro-0' AND split = 'test'")
    assert db_digest(mining_db) == before


def test_min_relevance_keeps_strong_judgements_as_positives_and_weak_ones_out_of_negatives(mining_db):
    # grade the fixture: a query's first judged document 2, its second (when there is one) 1
    mining_db.store.execute(
        "UPDATE qrels SET score = 2 WHERE (query_id, doc_id) IN "
        "(SELECT query_id, min(doc_id) FROM qrels GROUP BY query_id)"
    )
    weak = set(
        mining_db.store.execute(
            "SELECT query_id, doc_id FROM qrels WHERE score = 1 AND split = 'train'"
        ).fetchall()
    )
    assert weak
    mine(
        mining_db.store,
        MiningParams(ensemble=ENSEMBLE, num_negatives=5, range_max=40, min_relevance=2, name="strong"),
    )
    rows = run_rows(mining_db, "strong")
    positives = {(r[0], r[1]) for r in rows}
    negatives = {(r[0], r[3]) for r in rows}
    assert positives and not positives & weak  # weak judgements are no positives...
    assert not negatives & weak  # ...and never negatives
    assert (
        json.loads(mining_db.scalar("SELECT params FROM mining_runs WHERE name = 'strong'"))["min_relevance"]
        == 2
    )
    assert _check(mining_db, "negative_is_judged_positive") == []
