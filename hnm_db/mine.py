"""Hard-negative mining: ensemble similarity made safe, plus the BM25 and random baselines.

The stage is ``score -> exclude -> filter -> sample -> write``; every step but the first and last is a
pure function over numpy arrays, so each rule can be tested on a 5 x 5 score matrix.

Rules, in the order they apply (all of them documented here because they are the contract):

- **Candidates are distinct chunk texts** (content hashes, one vector each): a text repeated across
  documents is one candidate, reported as its lowest ``chunk_id``; scoring a text twice would only
  produce duplicate negatives.
- **Scoring** (method ``ensemble``) is an exact top-k of query x chunk dot products of the ensemble
  vectors (= the weighted mean of the members' cosines), computed over bounded blocks of queries and
  of chunks streamed from the database, keeping a running top-(range_max + margin) per query; margin
  is the largest number of positive texts of any query, so the window is still full after they go.
  DuckDB's block cache is capped meanwhile (``buffer_limit``), so memory stays bounded on 1M chunks.
  Scores are float64 dot products of the float32 vectors (:func:`hnm_db.topk.exact_dots`), the same
  bits whatever the blocking, so the Ray engine's shards (:mod:`hnm_db.engine_ray`) find the same
  top-k, ties included (ordered by lower item id).
  ``bm25`` and ``random`` produce their ranked hits in SQL (:mod:`hnm_db.baselines`). With a
  **hybrid** ensemble, method ``ensemble`` ranks the union of the dense top list and the BM25 top list
  (each of the ensemble's depth, or deeper when the run needs more) by dense similarity + W x BM25
  min-max-normalised per query (:mod:`hnm_db.hybrid`); ``score`` and ``positive_score`` are that hybrid
  score, so the guard compares like with like.
- **Positives are excluded by document**: every chunk of every judged-relevant document of the query
  (qrels score > 0), and any candidate whose text equals one of those chunks. Positives come from the
  requested split only: mining never reads another split's queries or qrels. That is the same as
  excluding the query's judged documents "in any split" because a query has one split (see the
  ``query_splits`` view: queries are split-disjoint, as in BEIR's SciFact), and
  ``sql/checks/negative_is_judged_positive.sql`` checks the any-split rule on the written rows.
- **Ranks** are 0-based positions among the query's non-positive candidates (as in
  sentence-transformers, where positives are masked before ranking); ``[range_min, range_max)``
  keeps a window of them.
- **Positives** are the judged documents with a qrels score >= ``min_relevance`` (default 1: any
  relevant judgement); with graded qrels (TREC-style 1-4) a higher value keeps the strong ones. A
  judged document below it is no positive, but it is still excluded from negatives (previous rule).
- **Cluster filter** (needs a cluster run of the ensemble; default the latest): ``query`` keeps
  candidates in the query's K-means cluster, ``positive`` those in the cluster of any chunk of a
  positive document, ``either`` the union, ``none`` keeps all (clusters are still recorded when the
  ensemble has a cluster run).
- **Positive chunk and score**: of a multi-chunk positive document, the chunk the method scores highest
  against the query (ties and unscored methods: lowest ``ord``) is ``positive_chunk_id`` and its score
  is ``positive_score``. One (query, positive document) is a **pair**; from here on every rule works
  per pair, as sentence-transformers' ``mine_hard_negatives`` and NV-Retriever do.
- **False-negative guard** (NV-Retriever's TopK-PercPos): with ``p`` the pair's positive score
  (``guard="pair"``, the default) or the query's lowest positive score (``guard="query"``, stricter
  when a query has several positives), drop candidates scoring above ``p - (1 - max_score_ratio) * |p|``.
  For p > 0 that is ``max_score_ratio * p``; for p < 0 plain multiplication would *raise* the bar
  (0.95 x -0.5 = -0.475 > -0.5), so the margin is taken from |p|, as sentence-transformers'
  ``relative_margin`` does (ratio 0.95 == relative_margin 0.05). Skipped when the method has no score
  (random) or the ratio is None. The guard runs after the range window, so ranks keep their meaning.
- **Sampling**: ``top`` takes the first num_negatives by rank; ``random`` draws num_negatives from the
  surviving window with ``numpy.random.default_rng([seed, hash(query_id, positive_doc_id), 1])``:
  per pair, so a draw does not depend on which other queries exist.
- **Fallback** (``fallback_depth``): a pair left with fewer than num_negatives by the cluster filter or
  the guard takes the best surviving candidates of ranks ``[range_max, fallback_depth)``, which pass
  the same cluster filter and guard, in rank order; those rows have ``fallback = true``. Pairs still
  short are counted and reported (``short_pairs``, ``short_queries``), never padded.
- **Random mix** (``mix_random`` N): each pair of a hard run also gets N negatives drawn uniformly,
  seeded, from the texts that are neither judged for the query nor already chosen for the pair; those
  rows have ``negative_method = 'random'`` and no score of their own.
- **Rows**: one per (query, positive document, negative). ``score`` is the method's own score
  (ensemble similarity, BM25 score, NULL for random and mixed random rows), ``positive_score`` likewise; when an ensemble is
  given (always for ``ensemble``, optionally for baselines) ``member_scores`` maps each member's
  ``model_id`` to its cosine (from the ``embeddings`` table, normalised) plus ``"@ensemble"`` to the
  ensemble similarity, so runs of different methods can be compared on one scale.
- **One transaction**: the run record and all rows, or nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from hnm_db import baselines
from hnm_db.audit import record_run_sources
from hnm_db.cluster import latest_cluster_run
from hnm_db.ensemble import EnsembleInfo, check_chunk_vectors, get_ensemble, hybrid_depth, hybrid_scorer
from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams, MissingEmbeddings, NotFound
from hnm_db.options import param, ratio_or_none
from hnm_db.seeding import draw_distinct, query_rng
from hnm_db.store import RunRecord, Store, existing_run_id, run_record
from hnm_db.topk import TopK, exact_dots, score_candidates
from hnm_db.vectors import iter_vectors, vectors_by_hash

METHODS = ("ensemble", "bm25", "random")
CLUSTER_FILTERS = ("none", "query", "positive", "either")
SAMPLINGS = ("top", "random")
GUARDS = ("pair", "query")
ENSEMBLE_KEY = "@ensemble"
BM25_KEY = "@bm25"


@dataclass(frozen=True)
class MiningParams:
    """What one mining run asks for; stored verbatim (sorted-key JSON) in ``mining_runs.params``."""

    method: str = param("ensemble", choices=METHODS, help="How candidates are ranked.")
    ensemble: str | None = param(
        None,
        help="Ensemble to score with (required for --method ensemble; optional for baselines, where it "
        "adds ensemble and per-model scores).",
    )
    split: str = param("train", help="Split whose queries and qrels are read.")
    num_negatives: int = param(5, help="Negatives per (query, positive) pair.")
    range_min: int = param(0, help="First rank kept (0 = hardest).")
    range_max: int = param(50, help="Ranks kept are < this.")
    cluster_filter: str = param(
        "none",
        choices=CLUSTER_FILTERS,
        help="Keep only negatives in the query's / a positive's K-means cluster.",
    )
    cluster_run: str | None = param(None, help="Cluster run id (default: the ensemble's latest).")
    max_score_ratio: float | None = param(
        0.95,
        parse=ratio_or_none,
        metavar="RATIO|none",
        help="Drop candidates above this fraction of the positive's score ('none': keep all).",
    )
    guard: str = param(
        "pair",
        choices=GUARDS,
        help="Which positive --max-score-ratio compares with: the pair's own (as NV-Retriever) or the "
        "query's lowest-scoring one (stricter with several positives).",
    )
    min_relevance: int = param(
        1,
        help="Judgements with a qrels score >= this are positives (graded qrels); judged documents "
        "below it are never negatives either.",
    )
    fallback_depth: int | None = param(
        None,
        help="When the filters leave a pair short, continue down the ranking to this rank "
        "(rows marked fallback).",
    )
    mix_random: int = param(
        0, help="Also add this many seeded random negatives per pair (rows keep negative_method 'random')."
    )
    sampling: str = param(
        "top", choices=SAMPLINGS, help="Take the best ranks, or a seeded random draw from the window."
    )
    seed: int = param(0, help="Seed of every random choice.")
    name: str | None = param(None, help="Run name (default: method-ensemble-split-seedN).")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidParams(f"method: must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "ensemble" and not self.ensemble:
            raise InvalidParams("ensemble: required for method 'ensemble' (--ensemble NAME)")
        if not self.split:
            raise InvalidParams("split: a split name is required")
        _check_int("num_negatives", self.num_negatives, 1)
        _check_int("range_min", self.range_min, 0)
        _check_int("range_max", self.range_max, 1)
        if self.range_min >= self.range_max:
            raise InvalidParams(
                f"range_min: must be below range_max, got {self.range_min} >= {self.range_max}"
            )
        if self.num_negatives > self.range_max - self.range_min:
            raise InvalidParams(
                f"num_negatives: {self.num_negatives} cannot come from a window of "
                f"{self.range_max - self.range_min} ranks [{self.range_min}, {self.range_max})"
            )
        if self.cluster_filter not in CLUSTER_FILTERS:
            raise InvalidParams(
                f"cluster_filter: must be one of {', '.join(CLUSTER_FILTERS)}, got {self.cluster_filter!r}"
            )
        if (self.cluster_filter != "none" or self.cluster_run) and not self.ensemble:
            raise InvalidParams("cluster_filter: clusters belong to an ensemble; give --ensemble")
        if self.max_score_ratio is not None and not (0 < self.max_score_ratio <= 1):
            raise InvalidParams(f"max_score_ratio: must be in (0, 1] or None, got {self.max_score_ratio}")
        if self.sampling not in SAMPLINGS:
            raise InvalidParams(f"sampling: must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if self.guard not in GUARDS:
            raise InvalidParams(f"guard: must be one of {', '.join(GUARDS)}, got {self.guard!r}")
        _check_int("min_relevance", self.min_relevance, 1)
        if self.fallback_depth is not None:
            _check_int("fallback_depth", self.fallback_depth, 1)
            if self.fallback_depth <= self.range_max:
                raise InvalidParams(
                    f"fallback_depth: must be deeper than range_max ({self.range_max}), got {self.fallback_depth}"
                )
        _check_int("mix_random", self.mix_random, 0)
        if self.mix_random and self.method == "random":
            raise InvalidParams(
                "mix_random: a random run is random already; mix random negatives into a hard run"
            )
        _check_int("seed", self.seed, 0)

    @property
    def depth(self) -> int:
        """The deepest rank a run may read: the fallback depth, else the end of the window."""
        return self.fallback_depth or self.range_max

    @property
    def run_name(self) -> str:
        """The run's name: ``name`` or one derived from method, ensemble, split and seed."""
        if self.name:
            return self.name
        parts = [self.method] + ([self.ensemble] if self.ensemble else []) + [self.split, f"seed{self.seed}"]
        return "-".join(parts)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParams(f"{name}: must be an integer >= {minimum}, got {value!r}")


# -- pure steps ------------------------------------------------------------------------------------------
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
    key: np.ndarray  # str "query_id\x1fpositive_doc_id": seeds a pair's random draws

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


# -- reading the split ---------------------------------------------------------------------------------
@dataclass
class SplitData:
    """Everything mining reads for one split, with queries and candidate texts as sorted arrays."""

    query_ids: np.ndarray  # sorted
    query_texts: np.ndarray
    query_hashes: np.ndarray
    items: np.ndarray  # sorted distinct chunk content hashes
    item_chunk: np.ndarray  # representative (lowest) chunk_id of each item
    item_doc: np.ndarray
    pos_query: np.ndarray  # one row per chunk of a positive document
    pos_item: np.ndarray
    # (query, item) pairs that must never be negatives: every chunk text of every document judged relevant
    # for the query in ANY split (DESIGN: a negative is never a judged positive, whatever the split).
    excl_query: np.ndarray
    excl_item: np.ndarray
    pos_doc: np.ndarray
    pos_chunk: np.ndarray
    pos_ord: np.ndarray


def read_split(db: Store, split: str, min_relevance: int = 1) -> SplitData:
    """Queries, positives (qrels score >= ``min_relevance``) and candidate texts of ``split`` (raises
    EmptySelection for an unknown split or one with no positive at that relevance)."""
    q = db.sql(
        "SELECT query_id, text, content_hash FROM mining_queries WHERE split = ? AND query_id IN "
        "(SELECT query_id FROM mining_positives WHERE split = ? AND qrel_score >= ?) ORDER BY query_id",
        [split, split, min_relevance],
    )
    if q.height == 0:
        known = db.sql("SELECT DISTINCT split FROM qrels ORDER BY split")["split"].to_list()
        graded = f" at relevance >= {min_relevance}" if min_relevance > 1 else ""
        raise EmptySelection(
            f"split {split!r} has no qrels with a judged-relevant, chunked document{graded} "
            f"(splits with qrels: {', '.join(known) or 'none'})"
        )
    _reject_queries_in_several_splits(db, split)
    items = db.sql(
        "SELECT content_hash, min(chunk_id) AS chunk_id, arg_min(doc_id, chunk_id) AS doc_id "
        "FROM chunks GROUP BY content_hash ORDER BY content_hash"
    )
    excl = db.sql(
        "SELECT DISTINCT q.query_id, c.content_hash FROM qrels q JOIN chunks c USING (doc_id) "
        "WHERE q.score > 0 AND q.query_id IN (SELECT query_id FROM mining_queries WHERE split = ?)",
        [split],
    )
    p = db.sql(
        "SELECT query_id, doc_id, chunk_id, ord, content_hash FROM mining_positives WHERE split = ? "
        "AND qrel_score >= ? ORDER BY query_id, doc_id, ord, chunk_id",
        [split, min_relevance],
    )
    query_ids = q["query_id"].to_numpy()
    item_hashes = items["content_hash"].to_numpy()
    return SplitData(
        query_ids=query_ids,
        query_texts=q["text"].to_numpy(),
        query_hashes=q["content_hash"].to_numpy(),
        items=item_hashes,
        item_chunk=items["chunk_id"].to_numpy(),
        item_doc=items["doc_id"].to_numpy(),
        pos_query=np.searchsorted(query_ids, p["query_id"].to_numpy()).astype(np.int64),
        pos_item=np.searchsorted(item_hashes, p["content_hash"].to_numpy()).astype(np.int64),
        pos_doc=p["doc_id"].to_numpy(),
        pos_chunk=p["chunk_id"].to_numpy(),
        pos_ord=p["ord"].to_numpy(),
        excl_query=np.searchsorted(query_ids, excl["query_id"].to_numpy()).astype(np.int64),
        excl_item=np.searchsorted(item_hashes, excl["content_hash"].to_numpy()).astype(np.int64),
    )


def _reject_queries_in_several_splits(db: Store, split: str) -> None:
    """A query judged in two splits would put one split's query into the other's rows: refuse it."""
    shared = db.sql(
        "SELECT query_id, string_agg(DISTINCT split, ', ' ORDER BY split) AS splits FROM query_splits "
        "WHERE query_id IN (SELECT query_id FROM query_splits WHERE split = ?) "
        "GROUP BY query_id HAVING count(DISTINCT split) > 1 ORDER BY query_id",
        [split],
    )
    if shared.height:
        examples = ", ".join(f"{q} ({s})" for q, s in shared.head(5).rows())
        raise InvalidParams(
            f"split: {shared.height} queries of split {split!r} are judged in several splits "
            f"(e.g. {examples}); a query must belong to one split: fix its qrels before mining"
        )


def read_vectors_for(db: Store, ens: EnsembleInfo, role: str, hashes: np.ndarray) -> np.ndarray:
    """Ensemble vectors of ``hashes`` (aligned, duplicates allowed); MissingEmbeddings if any lacks one."""
    mat, missing = vectors_by_hash(db, "ensemble_vectors", "ensemble_id", ens.ensemble_id, role, hashes)
    if missing:
        what = "query" if role == "query" else "chunk"
        raise MissingEmbeddings(
            f"ensemble {ens.name!r} has no vectors for {missing} of {len(np.unique(hashes))} {what} texts "
            f"(members: {', '.join(m['name'] for m in ens.members)}): run `hnm-db ensemble update {ens.name}`"
        )
    return mat


def member_cosines(db: Store, model: dict, a_hashes: np.ndarray, b_hashes: np.ndarray) -> np.ndarray:
    """Cosine of member ``model`` between aligned query texts ``a_hashes`` and chunk texts ``b_hashes``."""
    out = []
    for r, hashes in (("query", a_hashes), ("doc", b_hashes)):
        mat, missing = vectors_by_hash(db, "embeddings", "model_id", model["model_id"], r, hashes)
        if missing:
            raise MissingEmbeddings(
                f"model {model['name']!r} has no {r} embeddings for {missing} of {len(np.unique(hashes))} "
                "texts needed for member scores: run `hnm-db embed`"
            )
        out.append(mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12))
    return np.einsum("ij,ij->i", out[0], out[1]).astype(np.float64)


# -- the stage -------------------------------------------------------------------------------------
@dataclass
class MiningSummary:
    run_id: str
    name: str
    method: str
    split: str
    triplets: int
    queries: int
    queries_covered: int
    short_queries: int
    dropped_false_negatives: int
    seconds: float
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Context:
    db: Store
    params: MiningParams
    data: SplitData
    ens: EnsembleInfo | None
    qvecs: np.ndarray | None
    cluster_run: str | None
    progress: bool
    chunk_block: int
    query_block: int
    hybrid: Any = None  # the HybridScorer of a hybrid ensemble's run, once candidates are scored
    scorer: Scorer | None = None


@dataclass(frozen=True)
class ScoreJob:
    """What the scoring step of an ``ensemble`` run needs, for an engine that scores elsewhere
    (:mod:`hnm_db.engine_ray`): the exact top-``k`` of ``queries`` against the ensemble's doc vectors
    of ``items`` (sorted content hashes; a candidate's id is its position here)."""

    db: Store
    ensemble_id: str
    items: np.ndarray
    queries: np.ndarray
    k: int
    query_block: int
    chunk_block: int


#: An engine's scoring step: a :class:`ScoreJob` in, the exact top-k (``score_candidates``) out.
Scorer = Callable[[ScoreJob], TopK]


def _margin(data: SplitData) -> int:
    if len(data.excl_query) == 0:
        return 0
    pairs = np.unique(data.excl_query * len(data.items) + data.excl_item)
    return int(np.bincount(pairs // len(data.items)).max())


def _chunk_stream(ctx: _Context) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(item ids, ensemble doc vectors) of all candidate texts, one bounded block at a time.

    Read in storage order (a plain scan: no sort of a vector payload; 3x faster than ORDER BY at
    100k rows) and mapped to item ids by content hash; vectors of texts no chunk has any more are
    skipped, and a text without a vector is an error (check_chunk_vectors has already said which).
    """

    sql = "SELECT content_hash, vec FROM ensemble_vectors WHERE ensemble_id = ? AND role = 'doc'"
    items = ctx.data.items.astype(str)
    seen = 0
    bar = tqdm(total=len(items), desc="scoring chunks", unit="chunk", disable=not ctx.progress)
    for keys, mat in iter_vectors(ctx.db, sql, [ctx.ens.ensemble_id], batch_rows=ctx.chunk_block):
        hashes = keys["content_hash"].astype(str)
        idx = np.minimum(np.searchsorted(items, hashes), len(items) - 1)
        known = items[idx] == hashes
        seen += int(known.sum())
        bar.update(int(known.sum()))
        yield idx[known], mat[known]
    bar.close()
    if seen != len(items):
        raise RuntimeError("chunk texts changed while mining; run again")


def _hits_to_candidates(data: SplitData, hits: pa.Table) -> Candidates:
    """SQL hits as candidates of the run's queries (hits of a query with no positive at the run's
    ``min_relevance`` are dropped)."""
    qid = hits.column("query_id").to_numpy(zero_copy_only=False).astype(str)
    h = hits.column("content_hash").to_numpy(zero_copy_only=False)
    score = hits.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
    rows = np.minimum(np.searchsorted(data.query_ids.astype(str), qid), max(len(data.query_ids) - 1, 0))
    known = data.query_ids.astype(str)[rows] == qid
    cands = Candidates(
        rows.astype(np.int64),
        np.searchsorted(data.items, h).astype(np.int64),
        np.where(np.isnan(score), np.nan, score),
        hits.column("hit_order").to_numpy(zero_copy_only=False).astype(np.int64),
    )
    return cands.take(known)


def _item_texts(ctx: _Context) -> list[str]:
    """The text of each candidate (distinct chunk text), aligned with ``ctx.data.items``."""
    texts = ctx.db.sql(
        "SELECT content_hash, min(text) AS text FROM chunks GROUP BY content_hash ORDER BY content_hash"
    )
    return texts["text"].to_list()


def _raw_candidates(ctx: _Context, k: int) -> tuple[Candidates, Any]:
    """Each method's ranked hits, before positives are excluded; the second value scores pairs later."""
    p, data = ctx.params, ctx.data
    if p.method == "ensemble":
        # a hybrid ranks the union of its dense top list (this deep) and its BM25 top list
        hybrid = ctx.ens.bm25 is not None
        depth = min(hybrid_depth(ctx.ens, k), len(data.items)) if hybrid else k
        if ctx.scorer is not None:
            job = ScoreJob(
                ctx.db, ctx.ens.ensemble_id, data.items, ctx.qvecs, depth, ctx.query_block, ctx.chunk_block
            )
            dense = ctx.scorer(job)
        else:
            dense = score_candidates(ctx.qvecs, _chunk_stream(ctx), depth, query_block=ctx.query_block)
        if not hybrid:
            return Candidates.from_topk(dense), None
        ctx.hybrid = hybrid_scorer(ctx.db, ctx.ens, _item_texts(ctx), data.query_texts, ctx.qvecs, data.items)
        return Candidates.from_topk(ctx.hybrid.top_k(dense, k)), None
    if p.method == "bm25":
        hits, index = baselines.bm25_hits(ctx.db, p.split, data.items, _item_texts(ctx), k)
        return _hits_to_candidates(data, hits), index
    hits = baselines.random_hits(ctx.db, p.split, data.items, k, p.seed)
    return _hits_to_candidates(data, hits), None


def _random_mix(ctx: _Context, chosen: Candidates, pairs: Pairs) -> Candidates:
    """The run's chosen rows plus ``mix_random`` MIXED rows per pair (stream 2 of the query's seed, so
    the mix is not the draw a random run with the same seed makes)."""
    data, n = ctx.data, ctx.params.mix_random
    k = min(len(data.items), n + ctx.params.num_negatives + _margin(data))
    hits = baselines.random_hits(ctx.db, ctx.params.split, data.items, k, ctx.params.seed, stream=2)
    drawn = exclude_positives(
        _hits_to_candidates(data, hits), data.excl_query, data.excl_item, len(data.items)
    )
    return mix_random_negatives(chosen, drawn, pairs, n)


def _pair_scores(
    ctx: _Context, index: Any, q_rows: np.ndarray, items: np.ndarray, *, method: str
) -> np.ndarray:
    """Scores of (query row, item) pairs by ``method`` ('ensemble' or 'bm25'); NaN for 'random'."""
    if len(q_rows) == 0 or method == "random":
        return np.full(len(q_rows), np.nan)
    if method == "ensemble" and ctx.hybrid is not None:
        return ctx.hybrid.score(q_rows, items)
    if method == "ensemble":
        docs = read_vectors_for(ctx.db, ctx.ens, "doc", ctx.data.items[items])
        return exact_dots(ctx.qvecs[q_rows], docs)
    out = np.empty(len(q_rows))
    for u in np.unique(q_rows):
        sel = q_rows == u
        out[sel] = index.scores([str(ctx.data.query_texts[u])])[0, items[sel]]
    return out


def _best_positives(ctx: _Context, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index (into the positive rows) of the best chunk per (query, document), and the per-query floor."""
    d = ctx.data
    key = np.where(np.isnan(scores), -np.inf, scores)
    order = np.lexsort((d.pos_ord, -key, d.pos_doc, d.pos_query))
    pq, pd = d.pos_query[order], d.pos_doc[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (pq[1:] != pq[:-1]) | (pd[1:] != pd[:-1])
    best = order[first]
    floor = np.full(len(d.query_ids), np.nan)
    bs = scores[best]
    for q, s in zip(d.pos_query[best], bs, strict=True):
        if not np.isnan(s):
            floor[q] = s if np.isnan(floor[q]) else min(floor[q], s)
    return best, floor


def _clusters(ctx: _Context, role: str, hashes: np.ndarray) -> np.ndarray:
    """Cluster of each hash in the run's cluster run (-1 when it has no assignment)."""
    out = np.full(len(hashes), -1, dtype=np.int64)
    if ctx.cluster_run is None or len(hashes) == 0:
        return out
    a = ctx.db.sql(
        "SELECT content_hash, cluster FROM cluster_assignments WHERE cluster_run_id = ? AND role = ? "
        "ORDER BY content_hash",
        [ctx.cluster_run, role],
    )
    known = a["content_hash"].to_numpy().astype(str)
    pos = np.clip(np.searchsorted(known, hashes.astype(str)), 0, max(len(known) - 1, 0))
    hit = (len(known) > 0) & (known[pos] == hashes.astype(str)) if len(known) else np.zeros(len(hashes), bool)
    out[hit] = a["cluster"].to_numpy()[pos[hit]]
    return out


def _resolve_cluster_run(db: Store, params: MiningParams, ens: EnsembleInfo | None) -> str | None:
    if ens is None:
        return None
    if params.cluster_run:
        owner = db.scalar(
            "SELECT ensemble_id FROM cluster_runs WHERE cluster_run_id = ?", [params.cluster_run]
        )
        if owner != ens.ensemble_id:
            raise NotFound(f"no cluster run {params.cluster_run!r} of ensemble {ens.name!r}")
        return params.cluster_run
    run = latest_cluster_run(db, ens.ensemble_id)
    if run is None and params.cluster_filter != "none":
        raise NotFound(
            f"cluster_filter {params.cluster_filter!r} needs a cluster run of ensemble {ens.name!r}: "
            f"run `hnm-db cluster --ensemble {ens.name}` first"
        )
    return run


def _query_vectors(db: Store, ens: EnsembleInfo, data: SplitData) -> np.ndarray:
    return read_vectors_for(db, ens, "query", data.query_hashes)


def _pairs(ctx: _Context, best: np.ndarray, pos_scores: np.ndarray) -> tuple[Pairs, np.ndarray]:
    """The split's pairs sorted by (query, positive chunk id), and each pair's row in the positives."""
    d = ctx.data
    order = best[np.lexsort((d.pos_chunk[best].astype(str), d.pos_query[best]))]
    keys = np.char.add(
        np.char.add(d.query_ids[d.pos_query[order]].astype(str), "\x1f"), d.pos_doc[order].astype(str)
    )
    return Pairs(d.pos_query[order], pos_scores[order], keys), order


@dataclass
class Ranked:
    """A run's pair-level candidates after window, cluster filter and guard (``kept``, in (pair, origin,
    rank) order: what sampling draws from), with what writing rows from them needs."""

    ctx: _Context
    kept: Candidates
    pairs: Pairs
    pair_rows: np.ndarray
    pos_scores: np.ndarray
    query_cluster: np.ndarray
    item_cluster: np.ndarray
    counts: FilterCounts

    def rows(self, chosen: Candidates) -> pa.Table:
        """Triplet rows (run_id left empty) of chosen candidates, with the run's full provenance."""
        return _triplet_rows(
            self.ctx, chosen, self.pair_rows, self.pos_scores, self.query_cluster, self.item_cluster
        )

    def keys(self, cands: Candidates) -> np.ndarray:
        """``query_id \x1f positive_chunk_id \x1f negative_chunk_id`` of each candidate row."""
        d = self.ctx.data
        parts = (d.query_ids[cands.query], d.pos_chunk[self.pair_rows[cands.pair]], d.item_chunk[cands.item])
        out = parts[0].astype(str)
        for part in parts[1:]:
            out = np.char.add(np.char.add(out, "\x1f"), part.astype(str))
        return out


def _filtered(ctx: _Context, raw: Candidates, index: Any) -> Ranked:
    """exclude -> score positives -> clusters -> filter, for the whole split at once."""
    params, data = ctx.params, ctx.data
    cands = exclude_positives(raw, data.excl_query, data.excl_item, len(data.items))
    cands = cands.take(cands.rank < params.depth)
    # random has no score of its own: pick the best positive chunk by the ensemble when there is one
    scorer = params.method if params.method != "random" or ctx.ens is None else "ensemble"
    pos_scores = _pair_scores(ctx, index, data.pos_query, data.pos_item, method=scorer)
    best, floor = _best_positives(ctx, pos_scores)
    if params.method == "random":
        pos_scores = np.full(len(pos_scores), np.nan)
    pairs, pair_rows = _pairs(ctx, best, pos_scores)
    item_cluster = np.full(len(data.items), -1, dtype=np.int64)
    needed = np.unique(np.concatenate([cands.item, data.pos_item]))
    item_cluster[needed] = _clusters(ctx, "doc", data.items[needed])
    query_cluster = _clusters(ctx, "query", data.query_hashes)
    if params.cluster_filter != "none":
        _require_assignments(ctx, query_cluster, item_cluster[needed])
    kept, counts = filter_candidates(
        cands,
        params,
        pairs=pairs,
        positive_floor=floor,
        query_cluster=query_cluster,
        item_cluster=item_cluster,
        positive_clusters=(data.pos_query, item_cluster[data.pos_item]),
    )
    return Ranked(ctx, kept, pairs, pair_rows, pos_scores, query_cluster, item_cluster, counts)


def _select(ctx: _Context, raw: Candidates, index: Any):
    """exclude -> score positives -> clusters -> filter -> sample -> mix, for the whole split at once."""
    r = _filtered(ctx, raw, index)
    chosen = sample_negatives(r.kept, ctx.params, r.pairs)
    if ctx.params.mix_random:
        chosen = _random_mix(ctx, chosen, r.pairs)
    return chosen, r.pairs, r.pair_rows, r.pos_scores, r.query_cluster, r.item_cluster, r.counts


def ranked_candidates(
    db: Store,
    params: MiningParams,
    *,
    query_block: int = 1024,
    chunk_block: int = 16_384,
    buffer_limit: str | None = "512MB",
) -> Ranked:
    """Every candidate a run with ``params`` may take, per pair, before sampling: the ranks below the
    chosen ones and the fallback ranks, which denoising (:mod:`hnm_db.denoise`) refills from. Reads only."""
    with bounded_buffer(db, buffer_limit):
        ctx = _context(db, params, progress=False, query_block=query_block, chunk_block=chunk_block)
        raw, index = _raw_candidates(ctx, min(params.depth + _margin(ctx.data), len(ctx.data.items)))
        return _filtered(ctx, raw, index)


def _spread(counts: np.ndarray) -> dict[str, float | int]:
    if len(counts) == 0:
        return {"mean": 0.0, "min": 0, "max": 0}
    return {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())}


def _run_stats(
    data: SplitData,
    params: MiningParams,
    chosen: Candidates,
    pairs: Pairs,
    counts: FilterCounts,
    *,
    n_rows: int,
    k: int,
) -> dict[str, Any]:
    """Coverage per pair and per query; ``negatives`` count hard (window + fallback) rows only."""
    hard = chosen.take(chosen.origin != MIXED)
    per_pair = np.bincount(hard.pair, minlength=len(pairs))
    short_pairs = per_pair < params.num_negatives
    short = np.unique(pairs.query[short_pairs])
    per_query = np.bincount(pairs.query, weights=per_pair, minlength=len(data.query_ids)).astype(int)
    return {
        "queries": len(data.query_ids),
        "queries_covered": int((np.bincount(hard.query, minlength=len(data.query_ids)) > 0).sum()),
        "positives": len(pairs),
        "triplets": n_rows,
        "negatives": len(hard),
        "negatives_per_pair": _spread(per_pair),
        "negatives_per_query": _spread(per_query),
        "candidates_considered": counts.considered,
        "dropped_cluster": counts.dropped_cluster,
        "dropped_false_negatives": counts.dropped_false_negatives,
        "fallback_negatives": int((chosen.origin == FALLBACK).sum()),
        "mixed_random_negatives": int((chosen.origin == MIXED).sum()),
        "short_pairs": int(short_pairs.sum()),
        "short_queries": len(short),
        "short_query_ids": [str(x) for x in data.query_ids[short[:20]]],
        "k_searched": k,
        "candidate_texts": len(data.items),
    }


@contextmanager
def bounded_buffer(db: Store, limit: str | None) -> Iterator[None]:
    """Cap DuckDB's memory (its cache of scanned blocks) while mining, then restore the setting.

    Mining scans every vector once (ensemble vectors for scoring, member embeddings for the chosen
    pairs); DuckDB keeps scanned blocks cached up to its memory limit (80% of RAM by default), which
    would count the whole vector tables into the process's memory for no benefit.
    """
    if limit is None:
        yield
        return
    before = db.scalar("SELECT current_setting('memory_limit')")
    db.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:  # RESET restores the default exactly; a user-set limit is re-applied from its text
        db.execute("RESET memory_limit")
        if db.scalar("SELECT current_setting('memory_limit')") != before:
            db.execute(f"SET memory_limit = '{before}'")


def mine(
    db: Store,
    params: MiningParams,
    *,
    replace: bool = False,
    progress: bool = False,
    query_block: int = 1024,
    chunk_block: int = 16_384,
    buffer_limit: str | None = "512MB",
    scorer: Scorer | None = None,
) -> MiningSummary:
    """Mine negatives for the queries of ``params.split`` and write one run (see the module docstring).

    ``query_block`` x ``chunk_block`` bounds the score matrix held at once; ``buffer_limit`` caps
    DuckDB's block cache meanwhile (see :func:`bounded_buffer`). Neither changes the result.
    ``scorer`` replaces the in-process scoring of an ``ensemble`` run (the Ray engine's shard actors);
    everything else, and the one write, stays here.
    """
    with bounded_buffer(db, buffer_limit):
        return _mine(
            db,
            params,
            replace=replace,
            progress=progress,
            query_block=query_block,
            chunk_block=chunk_block,
            scorer=scorer,
        )


def _mine(
    db: Store,
    params: MiningParams,
    *,
    replace: bool,
    progress: bool,
    query_block: int,
    chunk_block: int,
    scorer: Scorer | None = None,
) -> MiningSummary:
    started = time.perf_counter()
    if scorer is not None and params.method != "ensemble":
        raise InvalidParams(
            f"method: only 'ensemble' runs score on an engine; {params.method!r} runs locally"
        )
    name = params.run_name
    old = existing_run_id(db, name)
    if old is not None and not replace:
        raise AlreadyExists(f"mining run {name!r} already exists: choose another --name or pass --replace")
    ctx = _context(
        db, params, progress=progress, query_block=query_block, chunk_block=chunk_block, scorer=scorer
    )
    data, ens = ctx.data, ctx.ens
    timings: dict[str, float] = {}
    t = time.perf_counter()
    k = min(params.depth + _margin(data), len(data.items))
    raw, index = _raw_candidates(ctx, k)
    timings["score_s"] = time.perf_counter() - t
    t = time.perf_counter()
    chosen, pairs, pair_rows, pos_scores, query_cluster, item_cluster, counts = _select(ctx, raw, index)
    timings["filter_s"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = _triplet_rows(ctx, chosen, pair_rows, pos_scores, query_cluster, item_cluster)
    stats = _run_stats(data, params, chosen, pairs, counts, n_rows=rows.num_rows, k=k)
    if ens is not None and ens.bm25 is not None:
        stats["ensemble_bm25"] = ens.bm25  # the sparse member (weight, k1, b, ...) the run scored with
    run_id = uuid.uuid4().hex
    record = RunRecord(
        run_id=run_id,
        name=name,
        method=params.method,
        split=params.split,
        params=asdict(params),
        seed=params.seed,
        ensemble_id=ens.ensemble_id if ens else None,
        cluster_run_id=ctx.cluster_run,
        models=ens.members if ens else [],
    )
    rows = rows.set_column(0, "run_id", pa.array([run_id] * rows.num_rows, pa.string()))
    timings["prepare_rows_s"] = time.perf_counter() - t
    t = time.perf_counter()
    write_triplets(db, record, rows, stats, timings, replace_run=old, started=started)
    timings["write_s"] = time.perf_counter() - t
    stats["durations"] = {k: round(v, 4) for k, v in timings.items()}
    return MiningSummary(
        run_id=run_id,
        name=name,
        method=params.method,
        split=params.split,
        triplets=rows.num_rows,
        queries=len(data.query_ids),
        queries_covered=stats["queries_covered"],
        short_queries=stats["short_queries"],
        dropped_false_negatives=counts.dropped_false_negatives,
        seconds=time.perf_counter() - started,
        stats=stats,
    )


def _context(
    db: Store,
    params: MiningParams,
    *,
    progress: bool,
    query_block: int,
    chunk_block: int,
    scorer: Scorer | None = None,
) -> _Context:
    """Everything a run reads before scoring: the split, the ensemble and its query vectors, clusters."""
    ens = get_ensemble(db, params.ensemble) if params.ensemble else None
    data = read_split(db, params.split, params.min_relevance)
    if ens is not None:
        check_chunk_vectors(db, ens)
    return _Context(
        db,
        params,
        data,
        ens,
        _query_vectors(db, ens, data) if ens else None,
        _resolve_cluster_run(db, params, ens),
        progress,
        chunk_block,
        query_block,
        scorer=scorer,
    )


def _require_assignments(ctx: _Context, query_cluster: np.ndarray, item_cluster: np.ndarray) -> None:
    missing_q = int((query_cluster < 0).sum())
    missing_d = int((item_cluster < 0).sum())
    if missing_q or missing_d:
        raise NotFound(
            f"cluster run {ctx.cluster_run} has no cluster for {missing_q} queries and {missing_d} chunk texts "
            f"of this split (added after clustering?): run `hnm-db cluster --ensemble {ctx.ens.name}` again"
        )


def _triplet_rows(
    ctx: _Context,
    chosen: Candidates,
    pair_rows: np.ndarray,
    pos_scores: np.ndarray,
    query_cluster: np.ndarray,
    item_cluster: np.ndarray,
) -> pa.Table:
    """One row per chosen (pair, negative), in (query, positive chunk, origin, rank) order."""
    d = ctx.data
    pos = pair_rows[chosen.pair]  # pairs are sorted by (query, positive chunk id)
    q, items = chosen.query, chosen.item
    score = chosen.score
    if ctx.params.method == "random":
        score = np.full(len(chosen), np.nan)
    method = np.where(chosen.origin == MIXED, "random", ctx.params.method)
    member = _member_scores(ctx, q, items)
    return pa.table(
        {
            "run_id": pa.array([""] * len(chosen), pa.string()),
            "query_id": pa.array(d.query_ids[q].astype(str), pa.string()),
            "positive_doc_id": pa.array(d.pos_doc[pos].astype(str), pa.string()),
            "positive_chunk_id": pa.array(d.pos_chunk[pos].astype(str), pa.string()),
            "negative_doc_id": pa.array(d.item_doc[items].astype(str), pa.string()),
            "negative_chunk_id": pa.array(d.item_chunk[items].astype(str), pa.string()),
            "rank": pa.array(chosen.rank.astype(np.int32)),
            "score": pa.array(score, pa.float64(), mask=np.isnan(score)),
            "positive_score": pa.array(pos_scores[pos], pa.float64(), mask=np.isnan(pos_scores[pos])),
            "member_scores": member,
            "query_cluster": _nullable_int(query_cluster[q]),
            "negative_cluster": _nullable_int(item_cluster[items]),
            "split": pa.array([ctx.params.split] * len(chosen), pa.string()),
            "negative_method": pa.array(method.astype(str), pa.string()),
            "fallback": pa.array(chosen.origin == FALLBACK, pa.bool_()),
        }
    )


def _nullable_int(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.int32), pa.int32(), mask=values < 0)


def _slice_cosines(
    ctx: _Context, q_rows: np.ndarray, docs: np.ndarray
) -> list[tuple[str, np.ndarray]] | None:
    """Each member's cosine of (query row, doc vector) pairs, read off the ensemble vectors: member i's
    slice of an ensemble vector is sqrt(w_i) * v_i / |v_i|, so the slices' dot product over w_i is the
    member's cosine (float32 rounding, ~1e-7), without reading any member embedding again."""
    dims = [m.get("dim") for m in ctx.ens.members]
    if None in dims or sum(dims) != docs.shape[1]:
        return None
    out, start = [], 0
    for m, dim in zip(ctx.ens.members, dims, strict=True):
        part = np.einsum("ij,ij->i", ctx.qvecs[q_rows, start : start + dim], docs[:, start : start + dim])
        out.append((m["model_id"], part.astype(np.float64) / m["weight"]))
        start += dim
    return out


def _member_scores(ctx: _Context, q: np.ndarray, items: np.ndarray) -> pa.Array:
    """MAP(model_id -> cosine, '@ensemble' -> ensemble similarity) per row; NULL without an ensemble."""
    n = len(q)
    typ = pa.map_(pa.string(), pa.float64())
    if ctx.ens is None or n == 0:
        return pa.nulls(n, typ)
    # score each distinct (query, negative) pair once; a query's rows repeat it per positive
    pair_key = q * len(ctx.data.items) + items
    uniq, inverse = np.unique(pair_key, return_inverse=True)
    uq, ui = uniq // len(ctx.data.items), uniq % len(ctx.data.items)
    docs = read_vectors_for(ctx.db, ctx.ens, "doc", ctx.data.items[ui])
    columns = _slice_cosines(ctx, uq, docs)
    if columns is None:  # a member's dimension is unknown: read the member embeddings themselves
        columns = [
            (m["model_id"], member_cosines(ctx.db, m, ctx.data.query_hashes[uq], ctx.data.items[ui]))
            for m in ctx.ens.members
        ]
    columns.append((ENSEMBLE_KEY, exact_dots(ctx.qvecs[uq], docs)))
    if ctx.hybrid is not None:
        columns.append((BM25_KEY, ctx.hybrid.bm25(uq, ui)))
    m = len(columns)
    keys = np.tile(np.array([c[0] for c in columns], dtype=object), n)
    vals = np.stack([c[1][inverse] for c in columns], axis=1).ravel()
    offsets = pa.array(np.arange(0, (n + 1) * m, m, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, pa.array(keys, pa.string()), pa.array(vals, pa.float64()))


def write_triplets(
    db: Store,
    record: RunRecord,
    rows: pa.Table | None,
    stats: dict[str, Any],
    timings: dict[str, float],
    *,
    replace_run: str | None = None,
    started: float = 0.0,
) -> int:
    """The run record and all its rows in one transaction (replacing the old run of the same name).
    ``rows`` None: the caller inserted the rows itself, inside its own enclosing transaction."""
    with db.transaction():
        if replace_run is not None:
            delete_run(db, replace_run)
        if rows is not None:
            with db.registered("_hnm_triplets", rows):
                db.execute(
                    f"INSERT INTO triplets ({', '.join(rows.column_names)}) "
                    f"SELECT {', '.join(rows.column_names)} FROM _hnm_triplets"
                )
        record_run_sources(db, record.run_id)
        timings["total_s"] = time.perf_counter() - started
        stats = dict(stats, durations={k: round(v, 4) for k, v in timings.items()})
        values = record.values() | {"stats": json.dumps(stats, sort_keys=True)}
        db.execute(
            f"INSERT INTO mining_runs ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
            list(values.values()),
        )
    return 0 if rows is None else rows.num_rows


def delete_run(db: Store, run_id: str) -> None:
    """Remove a mining run and everything that hangs off it."""
    with db.transaction():
        db.execute("DELETE FROM triplets WHERE run_id = ?", [run_id])
        db.execute("DELETE FROM mining_run_sources WHERE run_id = ?", [run_id])
        db.execute("DELETE FROM mining_runs WHERE run_id = ?", [run_id])


# -- runs ---------------------------------------------------------------------------------------------
def list_runs(db: Store):
    """One row per run: name, method, split, triplets, queries, created_at (the ``runs`` command)."""
    return db.sql(
        "SELECT name, method, split, ensemble, seed, triplets, queries, negatives, created_at "
        "FROM mining_run_stats ORDER BY created_at, name"
    )


def show_run(db: Store, name: str) -> dict[str, Any]:
    """A run's record with params, stats and models decoded (the ``runs show NAME`` command)."""
    row = run_record(db, name)
    counts = db.sql(
        "SELECT triplets, queries, negatives FROM mining_run_stats WHERE run_id = ?", [row["run_id"]]
    )
    row.update(counts.row(0, named=True))
    return row
