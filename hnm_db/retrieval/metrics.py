"""Ranking metrics for re-ranker evaluation: pure functions over ranked document ids and qrels.

Conventions (BEIR / trec_eval): a document is relevant when its qrels score is > 0; nDCG uses the
graded qrels score as a linear gain (gain = score, so binary qrels give 0/1 gains) with the standard
``1 / log2(rank + 1)`` discount, and the ideal DCG is computed from *all* judged-relevant documents of
the query, not only the retrieved ones. Queries that have relevant documents but retrieve none of them
count as 0 (they are never dropped from the mean).

Retrieval is over chunks but the metrics are per document: :func:`doc_ranking` turns chunk scores into
a document ranking by an aggregate of its retrieved chunks' scores (Dai & Callan 2019): ``max`` (MaxP,
the default), ``first`` (FirstP: the score of its earliest retrieved chunk) or ``sum-top-K`` (SumP over
its K best chunks, scores shifted per query so the lowest candidate counts 0: more retrieved chunks
never lower a document). With passage judgements (spans) there are chunk-level metrics too
(:func:`passage_metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

#: Metric names in the order tables print them; ``recall@k`` uses the evaluation's k.
METRIC_NAMES = ("mrr@10", "ndcg@10", "p@1", "p@5", "recall@k")


#: The chunk-score aggregates of :func:`doc_ranking` (``sum-top-K`` with any K >= 1).
AGGREGATES = ("first", "max", "sum-top-K")
#: The chunk-level metrics of queries with judged spans, in the order tables print them.
PASSAGE_METRIC_NAMES = ("span_recall@10", "chunk_ndcg@10")


def parse_aggregate(text: str) -> tuple[str, int]:
    """``first`` / ``max`` / ``sum-top-K`` -> (kind, K); ValueError naming the accepted forms."""
    if text in ("first", "max"):
        return text, 1
    head, _, tail = text.rpartition("-")
    if head == "sum-top" and tail.isdigit() and int(tail) >= 1:
        return "sum", int(tail)
    raise ValueError(f"aggregate must be first, max or sum-top-K with K >= 1 (e.g. sum-top-3), not {text!r}")


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
    for name in PASSAGE_METRIC_NAMES:  # over the queries that have judged spans
        have = [m[name] for m in values if name in m]
        if have:
            out[name] = float(np.mean(have))
            out["span_queries"] = len(have)
    return out


def doc_ranking(
    doc_ids: Sequence[str],
    scores: Sequence[float] | np.ndarray,
    aggregate: str = "max",
    ords: Sequence[int] | np.ndarray | None = None,
) -> list[str]:
    """Documents ordered by an aggregate of their chunks' scores (see the module docstring); ``first``
    needs the chunks' ``ords``. Ties are broken by doc id for stability."""
    kind, top = parse_aggregate(aggregate)
    values = np.asarray(scores, dtype=np.float64)
    if kind == "first" and ords is None:
        raise ValueError("aggregate 'first' needs the chunks' ords")
    floor = float(values.min()) if kind == "sum" and len(values) else 0.0
    by_doc: dict[str, list[tuple[float, int]]] = {}
    for i, doc in enumerate(doc_ids):
        by_doc.setdefault(doc, []).append((float(values[i]), int(ords[i]) if ords is not None else 0))
    agg: dict[str, float] = {}
    for doc, items in by_doc.items():
        if kind == "max":
            agg[doc] = max(v for v, _ in items)
        elif kind == "first":
            agg[doc] = min(items, key=lambda item: (item[1], -item[0]))[0]
        else:
            agg[doc] = sum(sorted((v - floor for v, _ in items), reverse=True)[:top])
    return [d for d, _ in sorted(agg.items(), key=lambda item: (-item[1], item[0]))]


def passage_metrics(ranked_chunks: Sequence[str], relevant: set[str]) -> dict[str, float]:
    """Chunk-level metrics of one query with judged spans: ``span_recall@10`` (1 when a chunk that
    overlaps a judged span is among the top 10 chunks) and ``chunk_ndcg@10`` (binary gains; the ideal
    ranks every such chunk first)."""
    top = list(ranked_chunks[:10])
    ideal = dcg([1.0] * min(len(relevant), 10))
    return {
        "span_recall@10": float(any(c in relevant for c in top)),
        "chunk_ndcg@10": dcg([1.0 if c in relevant else 0.0 for c in top]) / ideal if ideal else 0.0,
    }


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
