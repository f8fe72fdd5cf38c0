"""Scoring a run: its context, the ranked hits of each method (the exact top-k of the ensemble, or an
engine's; BM25 and random in SQL), positive scores, clusters, and the filtered candidates per pair
(:class:`Ranked`) that sampling draws from and denoising refills from."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from hnm_db.errors import NotFound
from hnm_db.mining import baselines
from hnm_db.mining.candidates import (
    Candidates,
    FilterCounts,
    Pairs,
    exclude_positives,
    filter_candidates,
    mix_random_negatives,
    sample_negatives,
)
from hnm_db.mining.cluster import latest_cluster_run
from hnm_db.mining.inputs import SplitData, read_split, read_vectors_for
from hnm_db.mining.params import MiningParams
from hnm_db.models.ensemble import (
    EnsembleInfo,
    check_chunk_vectors,
    get_ensemble,
    hybrid_depth,
    hybrid_scorer,
)
from hnm_db.retrieval.topk import TopK, exact_dots, score_candidates
from hnm_db.store import Store
from hnm_db.store.vectors import iter_vectors


@dataclass
class Context:
    db: Store
    params: MiningParams
    data: SplitData
    ens: EnsembleInfo | None
    qvecs: np.ndarray | None
    cluster_run: str | None
    progress: bool
    chunk_block: int
    query_block: int
    scorer: Scorer | None = None


@dataclass(frozen=True)
class ScoreJob:
    """What the scoring step of an ``ensemble`` run needs, for an engine that scores elsewhere
    (:mod:`hnm_db.engines.ray_engine`): the exact top-``k`` of ``queries`` against the ensemble's doc vectors
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


def margin(data: SplitData) -> int:
    if len(data.excl_query) == 0:
        return 0
    pairs = np.unique(data.excl_query * len(data.items) + data.excl_item)
    return int(np.bincount(pairs // len(data.items)).max())


def chunk_stream(ctx: Context) -> Iterable[tuple[np.ndarray, np.ndarray]]:
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


def hits_to_candidates(data: SplitData, hits: pa.Table) -> Candidates:
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


def item_texts(ctx: Context) -> list[str]:
    """The text of each candidate (distinct chunk text), aligned with ``ctx.data.items``."""
    texts = ctx.db.sql(
        "SELECT content_hash, min(text) AS text FROM chunks GROUP BY content_hash ORDER BY content_hash"
    )
    return texts["text"].to_list()


@dataclass(frozen=True)
class Scored:
    """A method's ranked hits, before positives are excluded, and what scores pairs later: the BM25
    index of a ``bm25`` run, the HybridScorer of a hybrid ensemble's run (else None)."""

    raw: Candidates
    index: Any = None
    hybrid: Any = None


def raw_candidates(ctx: Context, k: int) -> Scored:
    """Each method's ranked hits, the top ``k`` per query, before positives are excluded."""
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
            dense = score_candidates(ctx.qvecs, chunk_stream(ctx), depth, query_block=ctx.query_block)
        if not hybrid:
            return Scored(Candidates.from_topk(dense))
        scorer = hybrid_scorer(ctx.db, ctx.ens, item_texts(ctx), data.query_texts, ctx.qvecs, data.items)
        return Scored(Candidates.from_topk(scorer.top_k(dense, k)), hybrid=scorer)
    if p.method == "bm25":
        hits, index = baselines.bm25_hits(ctx.db, p.split, data.items, item_texts(ctx), k)
        return Scored(hits_to_candidates(data, hits), index=index)
    hits = baselines.random_hits(ctx.db, p.split, data.items, k, p.seed)
    return Scored(hits_to_candidates(data, hits))


def random_mix(ctx: Context, chosen: Candidates, pairs: Pairs) -> Candidates:
    """The run's chosen rows plus ``mix_random`` MIXED rows per pair (stream 2 of the query's seed, so
    the mix is not the draw a random run with the same seed makes)."""
    data, n = ctx.data, ctx.params.mix_random
    k = min(len(data.items), n + ctx.params.num_negatives + margin(data))
    hits = baselines.random_hits(ctx.db, ctx.params.split, data.items, k, ctx.params.seed, stream=2)
    drawn = exclude_positives(
        hits_to_candidates(data, hits), data.excl_query, data.excl_item, len(data.items)
    )
    return mix_random_negatives(chosen, drawn, pairs, n)


def pair_scores(
    ctx: Context, scored: Scored, q_rows: np.ndarray, items: np.ndarray, *, method: str
) -> np.ndarray:
    """Scores of (query row, item) pairs by ``method`` ('ensemble' or 'bm25'); NaN for 'random'."""
    if len(q_rows) == 0 or method == "random":
        return np.full(len(q_rows), np.nan)
    if method == "ensemble" and scored.hybrid is not None:
        return scored.hybrid.score(q_rows, items)
    if method == "ensemble":
        docs = read_vectors_for(ctx.db, ctx.ens, "doc", ctx.data.items[items])
        return exact_dots(ctx.qvecs[q_rows], docs)
    out = np.empty(len(q_rows))
    for u in np.unique(q_rows):
        sel = q_rows == u
        out[sel] = scored.index.scores([str(ctx.data.query_texts[u])])[0, items[sel]]
    return out


def best_positives(ctx: Context, scores: np.ndarray) -> np.ndarray:
    """Index (into the positive rows) of the best chunk by ``scores`` per (query, document); ties and
    unscored chunks go to the earlier chunk."""
    d = ctx.data
    key = np.where(np.isnan(scores), -np.inf, scores)
    order = np.lexsort((d.pos_ord, -key, d.pos_doc, d.pos_query))
    pq, pd = d.pos_query[order], d.pos_doc[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (pq[1:] != pq[:-1]) | (pd[1:] != pd[:-1])
    return order[first]


def chosen_positives(
    ctx: Context, rule_scores: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The positive rows the run's rule (``MiningParams.positive``) picks, and the per-query floor of
    their ``scores`` (the run's method's, which the guard compares with).

    method and best pick the best chunk per (query, document) by ``rule_scores`` (the method's, or the
    ensemble's for best); first the lowest ``ord``; all every chunk; span every chunk that overlaps a
    judged span enough (``SplitData.pos_span``).
    """
    d, rule = ctx.data, ctx.params.positive
    if rule in ("method", "best"):
        chosen = best_positives(ctx, rule_scores)
    elif rule == "first":
        chosen = best_positives(ctx, np.full(len(d.pos_query), np.nan))
    elif rule == "all":
        chosen = np.arange(len(d.pos_query))
    else:
        assert d.pos_span is not None
        chosen = np.flatnonzero(d.pos_span)
    return chosen, positive_floor(ctx, chosen, scores)


def positive_floor(ctx: Context, best: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per query, the lowest score among its chosen positives (NaN: none scored)."""
    d = ctx.data
    floor = np.full(len(d.query_ids), np.nan)
    bs = scores[best]
    for q, s in zip(d.pos_query[best], bs, strict=True):
        if not np.isnan(s):
            floor[q] = s if np.isnan(floor[q]) else min(floor[q], s)
    return floor


def clusters_of(ctx: Context, role: str, hashes: np.ndarray) -> np.ndarray:
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


def resolve_cluster_run(db: Store, params: MiningParams, ens: EnsembleInfo | None) -> str | None:
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


def query_vectors(db: Store, ens: EnsembleInfo, data: SplitData) -> np.ndarray:
    return read_vectors_for(db, ens, "query", data.query_hashes)


def pairs_of(ctx: Context, best: np.ndarray, pos_scores: np.ndarray) -> tuple[Pairs, np.ndarray]:
    """The split's pairs sorted by (query, positive chunk id), and each pair's row in the positives."""
    d = ctx.data
    order = best[np.lexsort((d.pos_chunk[best].astype(str), d.pos_query[best]))]
    keys = np.char.add(
        np.char.add(d.query_ids[d.pos_query[order]].astype(str), "\x1f"), d.pos_doc[order].astype(str)
    )
    if ctx.params.positive in ("all", "span"):  # several positives of one document: each draws its own
        keys = np.char.add(np.char.add(keys, "\x1f"), d.pos_chunk[order].astype(str))
    return Pairs(d.pos_query[order], pos_scores[order], keys), order


@dataclass
class Ranked:
    """A run's pair-level candidates after window, cluster filter and guard (``kept``, in (pair, origin,
    rank) order: what sampling draws from), with what writing rows from them needs."""

    ctx: Context
    kept: Candidates
    pairs: Pairs
    pair_rows: np.ndarray
    pos_scores: np.ndarray
    query_cluster: np.ndarray
    item_cluster: np.ndarray
    counts: FilterCounts
    hybrid: Any = None  # the HybridScorer of a hybrid ensemble's run
    #: (query, positive document)s whose best chunk by the run's method is not a positive it used
    own_best_differs: int = 0

    def keys(self, cands: Candidates) -> np.ndarray:
        """``query_id \x1f positive_chunk_id \x1f negative_chunk_id`` of each candidate row."""
        d = self.ctx.data
        parts = (d.query_ids[cands.query], d.pos_chunk[self.pair_rows[cands.pair]], d.item_chunk[cands.item])
        out = parts[0].astype(str)
        for part in parts[1:]:
            out = np.char.add(np.char.add(out, "\x1f"), part.astype(str))
        return out


def filtered(ctx: Context, scored: Scored) -> Ranked:
    """exclude -> score positives -> clusters -> filter, for the whole split at once."""
    params, data = ctx.params, ctx.data
    cands = exclude_positives(scored.raw, data.excl_query, data.excl_item, len(data.items))
    cands = cands.take(cands.rank < params.depth)
    # random has no score of its own: pick the best positive chunk by the ensemble when there is one
    scorer = params.method if params.method != "random" or ctx.ens is None else "ensemble"
    pos_scores = pair_scores(ctx, scored, data.pos_query, data.pos_item, method=scorer)
    rule_scores = pos_scores
    if params.positive == "best" and scorer != "ensemble":
        rule_scores = pair_scores(ctx, scored, data.pos_query, data.pos_item, method="ensemble")
    best, floor = chosen_positives(ctx, rule_scores, pos_scores)
    # (query, document)s where the method's own favourite chunk is not a positive the rule picked
    own_differs = int(np.isin(best_positives(ctx, pos_scores), best, invert=True).sum())
    if params.method == "random":
        pos_scores = np.full(len(pos_scores), np.nan)
    pairs, pair_rows = pairs_of(ctx, best, pos_scores)
    item_cluster = np.full(len(data.items), -1, dtype=np.int64)
    needed = np.unique(np.concatenate([cands.item, data.pos_item]))
    item_cluster[needed] = clusters_of(ctx, "doc", data.items[needed])
    query_cluster = clusters_of(ctx, "query", data.query_hashes)
    if params.cluster_filter != "none":
        require_assignments(ctx, query_cluster, item_cluster[needed])
    kept, counts = filter_candidates(
        cands,
        params,
        pairs=pairs,
        positive_floor=floor,
        query_cluster=query_cluster,
        item_cluster=item_cluster,
        positive_clusters=(data.pos_query, item_cluster[data.pos_item]),
    )
    return Ranked(
        ctx,
        kept,
        pairs,
        pair_rows,
        pos_scores,
        query_cluster,
        item_cluster,
        counts,
        scored.hybrid,
        own_differs,
    )


def select(ranked: Ranked) -> Candidates:
    """sample -> mix: the run's chosen candidates out of the filtered ones."""
    chosen = sample_negatives(ranked.kept, ranked.ctx.params, ranked.pairs)
    if ranked.ctx.params.mix_random:
        chosen = random_mix(ranked.ctx, chosen, ranked.pairs)
    return chosen


def context(
    db: Store,
    params: MiningParams,
    *,
    progress: bool,
    query_block: int,
    chunk_block: int,
    scorer: Scorer | None = None,
) -> Context:
    """Everything a run reads before scoring: the split, the ensemble and its query vectors, clusters."""
    ens = get_ensemble(db, params.ensemble) if params.ensemble else None
    data = read_split(
        db,
        params.split,
        params.min_relevance,
        min_overlap=params.min_overlap if params.positive == "span" else None,
        span_gap=params.span_gap if params.same_document_negatives else None,
    )
    if ens is not None:
        check_chunk_vectors(db, ens)
    return Context(
        db,
        params,
        data,
        ens,
        query_vectors(db, ens, data) if ens else None,
        resolve_cluster_run(db, params, ens),
        progress,
        chunk_block,
        query_block,
        scorer=scorer,
    )


def require_assignments(ctx: Context, query_cluster: np.ndarray, item_cluster: np.ndarray) -> None:
    missing_q = int((query_cluster < 0).sum())
    missing_d = int((item_cluster < 0).sum())
    if missing_q or missing_d:
        raise NotFound(
            f"cluster run {ctx.cluster_run} has no cluster for {missing_q} queries and {missing_d} chunk texts "
            f"of this split (added after clustering?): run `hnm-db cluster --ensemble {ctx.ens.name}` again"
        )
