"""Row-wise top-k: exact, best first, and ties broken by lower id whatever the blocking."""

import numpy as np
import pytest

from hnm_db.retrieval.bm25 import BM25Index
from hnm_db.retrieval.topk import (
    exact_dots,
    merge_shard_top_k,
    merge_top_k,
    score_candidates,
    top_k_rows,
)


def test_top_k_rows_orders_by_score_then_lower_id():
    s = np.array([[0.5, 0.9, 0.5, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    ids, sc = top_k_rows(s, 3, ids=np.array([40, 30, 20, 10, 0]))
    assert ids.tolist() == [[30, 10, 20], [0, 10, 20]]
    assert sc[0].tolist() == [np.float32(0.9), np.float32(0.5), np.float32(0.5)]


def test_merge_keeps_the_k_best_with_lower_ids_on_ties():
    s, i = merge_top_k(np.array([[0.9, 0.5]]), np.array([[7, 9]]), np.array([[0.5, 0.2]]), np.array([[3, 1]]))
    assert i.tolist() == [[7, 3]] and s.tolist() == [[0.9, 0.5]]


def test_ensemble_top_k_with_exact_ties_does_not_depend_on_block_size():
    rng = np.random.default_rng(0)
    # small integers: every dot product is exact, so equal vectors tie exactly whatever the BLAS kernel
    chunks = np.repeat(rng.integers(-3, 4, size=(30, 8)).astype(np.float32), 10, axis=0)  # each vector 10x
    queries = rng.integers(-3, 4, size=(7, 8)).astype(np.float32)
    ids = np.arange(len(chunks))
    results = []
    for block in (1000, 16, 64, 100, 299):
        blocks = [(ids[a : a + block], chunks[a : a + block]) for a in range(0, len(chunks), block)]
        top = score_candidates(queries, blocks, 5)
        results.append(top.indices.tolist())
    assert all(r == results[0] for r in results)
    # all five winners of a row share one score: the lowest ids of that duplicated vector
    assert all(row == sorted(row) for row in results[0])


def test_bm25_top_k_fills_zero_score_ties_with_the_lowest_indices():
    texts = ["star galaxy"] * 3 + ["flour butter"] * 5000
    idx, sc = BM25Index.build(texts).top_k(["star"], k=6)
    assert idx[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert sc[0][3:].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("shards", [1, 3, 7])
def test_exact_top_k_of_shards_merged_equals_one_pass_bit_for_bit(shards):
    rng = np.random.default_rng(1)
    chunks = rng.normal(size=(500, 24)).astype(np.float32)
    chunks[100:110] = chunks[5]  # exact ties across shards: lower ids win
    queries = rng.normal(size=(33, 24)).astype(np.float32)
    ids = np.arange(len(chunks))
    whole = score_candidates(queries, [(ids[a : a + 64], chunks[a : a + 64]) for a in range(0, 500, 64)], 20)
    bucket = ids % shards
    parts = [
        score_candidates(queries, [(ids[bucket == s], chunks[bucket == s])], 20, query_block=5)
        for s in range(shards)
    ]
    merged = merge_shard_top_k(parts, 20)
    assert np.array_equal(merged.indices, whole.indices)
    assert merged.scores.tobytes() == whole.scores.tobytes()
    expected = exact_dots(np.repeat(queries, 20, axis=0), chunks[whole.indices.ravel()]).reshape(33, 20)
    assert whole.scores.tobytes() == expected.tobytes()


def test_shards_smaller_than_k_pad_with_minus_one():
    rng = np.random.default_rng(2)
    chunks, queries = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    parts = [
        score_candidates(queries, chunks[:2], 8),
        score_candidates(queries, [(np.arange(2, 5), chunks[2:])], 8),
    ]
    merged = merge_shard_top_k(parts, 8)
    assert np.array_equal(merged.indices, score_candidates(queries, chunks, 8).indices)
    assert merged.indices[:, 5:].tolist() == [[-1] * 3] * 2
