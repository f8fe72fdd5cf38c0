"""Ranking metrics for re-ranker evaluation: pure functions over ranked document ids and qrels.

Conventions (BEIR / trec_eval): a document is relevant when its qrels score is > 0; nDCG uses the
graded qrels score as a linear gain (gain = score, so binary qrels give 0/1 gains) with the standard
``1 / log2(rank + 1)`` discount, and the ideal DCG is computed from *all* judged-relevant documents of
the query, not only the retrieved ones. Queries that have relevant documents but retrieve none of them
count as 0 (they are never dropped from the mean).

Retrieval is over chunks but the metrics are per document: :func:`doc_ranking` turns chunk scores into
a document ranking with a document's score = the max over its retrieved chunks (MaxP).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

#: Metric names in the order tables print them; ``recall@k`` uses the evaluation's k.
METRIC_NAMES = ("mrr@10", "ndcg@10", "p@1", "p@5", "recall@k")


def _relevant(qrels: Mapping[str, int]) -> set[str]:
    return {d for d, s in qrels.items() if s > 0}


def reciprocal_rank(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document within the top k, 0 if none."""
    rel = _relevant(qrels)
    for i, doc in enumerate(ranked[:k]):
        if doc in rel:
            return 1.0 / (i + 1)
    return 0.0


def dcg(gains: Sequence[float]) -> float:
    """Sum of gain_i / log2(i + 2) over 0-based positions i."""
    return float(sum(g / math.log2(i + 2) for i, g in enumerate(gains)))


def ndcg(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """DCG@k of the ranking divided by the DCG@k of the ideal ordering of all judged documents."""
    ideal = sorted((s for s in qrels.values() if s > 0), reverse=True)[:k]
    best = dcg(ideal)
    if best == 0:
        return 0.0
    gains = [max(qrels.get(doc, 0), 0) for doc in ranked[:k]]
    return dcg(gains) / best


def precision(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Relevant documents among the top k, divided by k (a short list is not rewarded)."""
    rel = _relevant(qrels)
    return sum(1 for doc in ranked[:k] if doc in rel) / k


def recall(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Share of the query's relevant documents found in the top k."""
    rel = _relevant(qrels)
    if not rel:
        return 0.0
    return len(rel.intersection(ranked[:k])) / len(rel)


def query_metrics(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> dict[str, float]:
    """All reported metrics for one query; ``recall@k`` is measured at the evaluation's k documents."""
    return {
        "mrr@10": reciprocal_rank(ranked, qrels, 10),
        "ndcg@10": ndcg(ranked, qrels, 10),
        "p@1": precision(ranked, qrels, 1),
        "p@5": precision(ranked, qrels, 5),
        "recall@k": recall(ranked, qrels, k),
    }


def per_query_metrics(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int
) -> dict[str, dict[str, float]]:
    """:func:`query_metrics` of every query of ``qrels`` with a relevant document, by query id.

    A query missing from ``rankings`` gets an empty ranking (all metrics 0).
    """
    queries = sorted(q for q, judged in qrels.items() if _relevant(judged))
    if not queries:
        raise ValueError("no query has a relevant document")
    return {q: query_metrics(rankings.get(q, ()), qrels[q], k) for q in queries}


def mean_metrics(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int
) -> dict[str, float]:
    """Mean of :func:`query_metrics` over every query of ``qrels`` with a relevant document."""
    return summarize(per_query_metrics(rankings, qrels, k))


def summarize(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The mean of each metric over the queries of :func:`per_query_metrics`, plus their count."""
    values = list(per_query.values())
    out = {name: float(np.mean([m[name] for m in values])) for name in METRIC_NAMES}
    out["queries"] = len(values)
    return out


def doc_ranking(doc_ids: Sequence[str], scores: Sequence[float] | np.ndarray) -> list[str]:
    """Documents ordered by their best chunk's score (MaxP); ties broken by doc id for stability."""
    best: dict[str, float] = {}
    for doc, s in zip(doc_ids, scores, strict=True):
        s = float(s)
        if doc not in best or s > best[doc]:
            best[doc] = s
    return [d for d, _ in sorted(best.items(), key=lambda item: (-item[1], item[0]))]


def zscore(scores: np.ndarray) -> np.ndarray:
    """(x - mean) / std over one query's candidates; a constant list maps to zeros."""
    scores = np.asarray(scores, dtype=np.float64)
    std = scores.std()
    if scores.size == 0 or std == 0:
        return np.zeros_like(scores)
    return (scores - scores.mean()) / std


def interpolate(first_stage: np.ndarray, reranker: np.ndarray, alpha: float) -> np.ndarray:
    """alpha * z(reranker) + (1 - alpha) * z(first stage), per query: the scales of BM25, cosine and
    logits differ, so each is standardised over the query's candidates before mixing."""
    return alpha * zscore(reranker) + (1.0 - alpha) * zscore(first_stage)
