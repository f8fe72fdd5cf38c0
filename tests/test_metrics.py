"""Ranking metrics against hand-computed values, and the BM25 first stage on a tiny case."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hnm_db.reranker.evaluate import bm25_top_k
from hnm_db.retrieval import metrics
from hnm_db.sources.text import content_hash


def test_metrics_of_one_binary_query_match_hand_values():
    ranked = ["a", "b", "c"]
    qrels = {"b": 1}
    m = metrics.query_metrics(ranked, qrels, k=30)
    assert m["mrr@10"] == 0.5
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert m["p@1"] == 0.0
    assert m["p@5"] == pytest.approx(0.2)  # a short list is divided by 5, not by its length
    assert m["recall@k"] == 1.0


def test_ndcg_uses_graded_gains_and_ideal_from_all_judged_documents():
    # DCG = 1/log2(2) + 2/log2(4) = 2; ideal = 2/log2(2) + 1/log2(3) (c judged but ranked, a too)
    assert metrics.ndcg(["c", "x", "a"], {"a": 2, "c": 1}, 10) == pytest.approx(2 / (2 + 1 / math.log2(3)))
    # an unretrieved judged document still counts in the ideal
    assert metrics.ndcg(["a"], {"a": 1, "z": 1}, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_relevance_needs_a_positive_score():
    assert metrics.reciprocal_rank(["a", "b"], {"a": 0, "b": 1}) == 0.5
    assert metrics.recall(["a"], {"a": 0, "b": 2}, 10) == 0.0


def test_cutoffs_only_look_at_the_top():
    ranked = [f"d{i}" for i in range(12)]
    qrels = {"d11": 1}
    assert metrics.reciprocal_rank(ranked, qrels, 10) == 0.0
    assert metrics.ndcg(ranked, qrels, 10) == 0.0
    assert metrics.recall(ranked, qrels, 12) == 1.0
    assert metrics.recall(ranked, qrels, 11) == 0.0


def test_mean_counts_queries_without_a_ranking_as_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}  # q3 has no relevant document: not counted
    m = metrics.mean_metrics({"q1": ["a"]}, qrels, k=10)
    assert m["queries"] == 2
    assert m["mrr@10"] == 0.5 and m["p@1"] == 0.5 and m["recall@k"] == 0.5


def test_document_score_is_the_best_chunk_and_ties_go_by_id():
    docs = ["d2", "d1", "d2", "d3"]
    scores = [0.1, 0.5, 0.9, 0.5]
    assert metrics.doc_ranking(docs, scores) == ["d2", "d1", "d3"]


def test_interpolation_standardises_each_score_list():
    first = np.array([10.0, 20.0, 30.0])
    model = np.array([3.0, 2.0, 1.0])
    assert np.allclose(metrics.interpolate(first, model, 0.0), metrics.zscore(first))
    assert np.allclose(metrics.interpolate(first, model, 1.0), metrics.zscore(model))
    assert np.allclose(metrics.interpolate(first, model, 0.5), 0.0)  # opposite orders cancel
    assert np.all(metrics.zscore(np.array([4.0, 4.0])) == 0)


def test_bm25_first_stage_ranks_the_matching_chunk_first(db):
    texts = {
        "c1": "cooking pasta with tomato sauce",
        "c2": "the orbit of a comet around the sun",
        "c3": "a comet tail points away from the sun",
        "c4": "football league results of the season",
        "c5": "enzymes fold proteins inside the cell",
        "c6": "bread dough rises in a warm oven",
    }
    for cid, text in texts.items():
        db.store.execute(
            "INSERT INTO chunks VALUES (?, ?, 0, ?, 0, 1, ?, '{}')", [cid, cid, text, content_hash(text)]
        )
    chunk_ids, idx, scores = bm25_top_k(db.store, ["comet tail", "tomato pasta"], 6)
    assert [chunk_ids[i] for i in idx[0][:2]] == ["c3", "c2"]  # both terms beat one term
    assert scores[0][1] > 0 and scores[0][2] == 0  # documents without a query term score 0
    assert chunk_ids[idx[1][0]] == "c1"
    assert [chunk_ids[i] for i in idx[0][2:]] == ["c1", "c4", "c5", "c6"]  # zero-score ties by chunk id


# -- chunk scores -> document scores (issue 23) -------------------------------------------------------
AGG_DOCS = ["A", "A", "B", "B", "B", "C"]
AGG_ORDS = [0, 3, 0, 1, 2, 5]
AGG_SCORES = [1.0, 5.0, 0.5, 4.0, 3.0, 4.5]


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [
        ("max", ["A", "C", "B"]),  # A 5.0, C 4.5, B 4.0
        (
            "first",
            ["C", "A", "B"],
        ),  # the earliest retrieved chunk: A ord 0 (1.0), B ord 0 (0.5), C ord 5 (4.5)
        # shifted by the lowest candidate (0.5): A 0.5 + 4.5 = 5.0, B 3.5 + 2.5 = 6.0 (top 2 of 3), C 4.0
        ("sum-top-2", ["B", "A", "C"]),
        ("sum-top-1", ["A", "C", "B"]),  # the max, shifted: the same order
    ],
)
def test_document_scores_from_chunk_scores_by_hand(aggregate, expected):
    assert metrics.doc_ranking(AGG_DOCS, AGG_SCORES, aggregate, AGG_ORDS) == expected


@pytest.mark.parametrize("bad", ["sum", "sum-top-0", "sum-top-x", "mean", "top-3"])
def test_an_unknown_aggregate_names_the_accepted_forms(bad):
    with pytest.raises(ValueError, match="first, max or sum-top-K"):
        metrics.parse_aggregate(bad)


def test_passage_metrics_by_hand():
    got = metrics.passage_metrics(["x", "r1", "y", "r2"], {"r1", "r2", "r3"})
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert got["span_recall@10"] == 1.0
    assert got["chunk_ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert metrics.passage_metrics(["x"] * 3, {"r"}) == {"span_recall@10": 0.0, "chunk_ndcg@10": 0.0}
