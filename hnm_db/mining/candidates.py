"""The pure steps of mining, over numpy arrays: exclude positives, expand to pairs, the window, the
cluster filter, the false-negative guard, the fallback, sampling and the random mix (each testable on
a 5 x 5 score matrix; the rules are in :mod:`hnm_db.mining.mine`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hnm_db.mining.params import MiningParams
from hnm_db.retrieval.topk import TopK
from hnm_db.seeding import draw_distinct, query_rng

#: Candidates.origin codes: inside the window, from the fallback ranks, a random negative mixed in.
WINDOW, FALLBACK, MIXED = 0, 1, 2


@dataclass
class Candidates:
    """Aligned flat arrays, sorted by (query, rank), or by (pair, origin, rank) once expanded to pairs:
    one row per (query or pair, candidate text)."""

    query: np.ndarray  # int64 row in the run's sorted query list
    item: np.ndarray  # int64 index in the run's sorted candidate texts
    score: np.ndarray  # float64, NaN when the method has no score
    rank: np.ndarray  # int64 order within the query (raw hit order before exclude_positives)
    pair: np.ndarray | None = None  # int64 index into Pairs once expanded (filter_candidates)
    origin: np.ndarray | None = None  # int8 WINDOW / FALLBACK / MIXED once expanded

    def take(self, mask: np.ndarray) -> Candidates:
        return Candidates(
            self.query[mask],
            self.item[mask],
            self.score[mask],
            self.rank[mask],
            None if self.pair is None else self.pair[mask],
            None if self.origin is None else self.origin[mask],
        )

    def __len__(self) -> int:
        return len(self.query)

    @classmethod
    def from_topk(cls, topk: TopK) -> Candidates:
        nq, k = topk.indices.shape
        q = np.repeat(np.arange(nq, dtype=np.int64), k)
        rank = np.tile(np.arange(k, dtype=np.int64), nq)
        keep = topk.indices.ravel() >= 0
        return cls(
            q[keep],
            topk.indices.ravel()[keep].astype(np.int64),
            topk.scores.ravel()[keep].astype(np.float64),
            rank[keep],
        )

    @classmethod
    def concat(cls, parts: list[Candidates]) -> Candidates:
        """Rows of pair-level parts, re-sorted by (pair, origin, rank)."""
        fields = ("query", "item", "score", "rank", "pair", "origin")
        joined = cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))
        return joined.take(np.lexsort((joined.rank, joined.origin, joined.pair)))


@dataclass
class Pairs:
    """The (query, positive document) pairs of a split, sorted by query; every rule after the cluster
    filter works per pair (module docstring)."""

    query: np.ndarray  # int64 query row
    score: np.ndarray  # float64 the positive's score by the method (NaN: none)
    key: np.ndarray  # str "query_id\x1fpositive_doc_id" (+ "\x1fchunk_id" when a document has several positives): seeds a pair's random draws

    def __len__(self) -> int:
        return len(self.query)


def exclude_positives(
    raw: Candidates, pos_query: np.ndarray, pos_item: np.ndarray, n_items: int
) -> Candidates:
    """Drop (query, item) pairs that are positives and re-rank each query's rest 0, 1, 2, ..."""
    keys = raw.query * n_items + raw.item
    bad = np.isin(keys, pos_query.astype(np.int64) * n_items + pos_item.astype(np.int64))
    kept = raw.take(~bad)
    order = np.lexsort((kept.rank, kept.query))
    kept = kept.take(order)
    kept.rank = np.arange(len(kept)) - np.searchsorted(kept.query, kept.query)
    return kept


@dataclass
class FilterCounts:
    """How many candidates each filter removed (reported in the run's stats). ``considered`` and
    ``dropped_cluster`` count (query, candidate) rows of the window; ``dropped_false_negatives`` counts
    (pair, candidate) rows of the window, since the guard compares with each pair's positive."""

    considered: int = 0
    dropped_cluster: int = 0
    dropped_false_negatives: int = 0


def false_negative_threshold(positive_floor: np.ndarray, ratio: float) -> np.ndarray:
    """``p - (1 - ratio) * |p|``: ratio * p for p > 0, and still below p when p < 0 (module docstring)."""
    return positive_floor - (1.0 - ratio) * np.abs(positive_floor)


def expand_to_pairs(cands: Candidates, pairs: Pairs, range_max: int) -> Candidates:
    """One row per (pair, candidate) of the candidate's query, sorted by (pair, origin, rank); ranks at
    or past ``range_max`` are FALLBACK rows."""
    n_q = int(max(cands.query.max(initial=-1), pairs.query.max(initial=-1))) + 1
    per_query = np.bincount(pairs.query, minlength=n_q)
    first = np.concatenate([[0], np.cumsum(per_query)[:-1]])
    reps = per_query[cands.query]
    rows = np.repeat(np.arange(len(cands)), reps)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(reps) - reps, reps)
    out = cands.take(rows)
    out.pair = np.repeat(first[cands.query], reps) + within
    out.origin = np.where(out.rank >= range_max, FALLBACK, WINDOW).astype(np.int8)
    return out.take(np.lexsort((out.rank, out.origin, out.pair)))


def filter_candidates(
    cands: Candidates,
    params: MiningParams,
    *,
    pairs: Pairs,
    positive_floor: np.ndarray | None = None,
    query_cluster: np.ndarray | None = None,
    item_cluster: np.ndarray | None = None,
    positive_clusters: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Candidates, FilterCounts]:
    """Range window (plus the fallback ranks), cluster filter, expansion to pairs, false-negative guard
    (see the module docstring). Returns pair-level candidates.

    pairs: the split's (query, positive) pairs with their positive scores.
    positive_floor: (n_queries,) lowest positive score per query, for ``guard="query"`` (NaN: no guard).
    query_cluster: (n_queries,), item_cluster: (n_items,), -1 where unknown.
    positive_clusters: (query rows, clusters) pairs of every chunk of every positive document.
    """
    counts = FilterCounts()
    window = cands.take((cands.rank >= params.range_min) & (cands.rank < params.depth))
    in_window = window.rank < params.range_max
    counts.considered = int(in_window.sum())
    if params.cluster_filter != "none":
        neg_cl = item_cluster[window.item]
        in_query = neg_cl == query_cluster[window.query]
        pq, pcl = positive_clusters
        n_cl = int(max(neg_cl.max(initial=0), pcl.max(initial=0))) + 1
        in_positive = np.isin(window.query * n_cl + neg_cl, pq.astype(np.int64) * n_cl + pcl)
        keep = {"query": in_query, "positive": in_positive, "either": in_query | in_positive}[
            params.cluster_filter
        ]
        keep &= neg_cl >= 0
        counts.dropped_cluster = int((~keep & in_window).sum())
        window = window.take(keep)
    expanded = expand_to_pairs(window, pairs, params.range_max)
    if params.max_score_ratio is not None:
        p = pairs.score[expanded.pair] if params.guard == "pair" else positive_floor[expanded.query]
        limit = false_negative_threshold(p, params.max_score_ratio)
        drop = ~np.isnan(expanded.score) & ~np.isnan(limit) & (expanded.score > limit)
        counts.dropped_false_negatives = int((drop & (expanded.origin == WINDOW)).sum())
        expanded = expanded.take(~drop)
    return expanded, counts


def _position_in_group(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted ``group`` array."""
    return np.arange(len(group)) - np.searchsorted(group, group)


def sample_negatives(cands: Candidates, params: MiningParams, pairs: Pairs) -> Candidates:
    """num_negatives per pair from its WINDOW rows: the best ranks (``top``) or a seeded draw
    (``random``); a pair left short takes its FALLBACK rows in rank order. Kept in (pair, origin, rank)
    order."""
    window = cands.take(cands.origin == WINDOW)
    if params.sampling == "top":
        chosen = window.take(_position_in_group(window.pair) < params.num_negatives)
    else:
        keep = np.zeros(len(window), dtype=bool)
        starts = np.searchsorted(window.pair, np.unique(window.pair))
        for s, e in zip(starts, np.append(starts[1:], len(window)), strict=True):
            n = e - s
            if n <= params.num_negatives:
                keep[s:e] = True
                continue
            rng = query_rng(params.seed, str(pairs.key[window.pair[s]]), 1)
            keep[s + np.asarray(draw_distinct(rng, n, params.num_negatives), dtype=np.int64)] = True
        chosen = window.take(keep)
    extra = cands.take(cands.origin == FALLBACK)
    if len(extra) == 0:
        return chosen
    missing = params.num_negatives - np.bincount(chosen.pair, minlength=len(pairs))
    extra = extra.take(_position_in_group(extra.pair) < missing[extra.pair])
    return Candidates.concat([chosen, extra])


def mix_random_negatives(
    chosen: Candidates, random_cands: Candidates, pairs: Pairs, count: int
) -> Candidates:
    """``count`` MIXED rows per pair from a query's random draw (``random_cands``: positives excluded,
    in draw order), skipping texts already chosen for the pair."""
    expanded = expand_to_pairs(random_cands, pairs, np.iinfo(np.int64).max)
    n_items = int(max(expanded.item.max(initial=0), chosen.item.max(initial=0))) + 1
    taken = np.isin(expanded.pair * n_items + expanded.item, chosen.pair * n_items + chosen.item)
    expanded = expanded.take(~taken)
    mixed = expanded.take(_position_in_group(expanded.pair) < count)
    mixed.origin = np.full(len(mixed), MIXED, dtype=np.int8)
    mixed.score = np.full(len(mixed), np.nan)
    return Candidates.concat([chosen, mixed])
