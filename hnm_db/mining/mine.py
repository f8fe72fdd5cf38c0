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
  Scores are float64 dot products of the float32 vectors (:func:`hnm_db.retrieval.topk.exact_dots`), the same
  bits whatever the blocking, so the Ray engine's shards (:mod:`hnm_db.engines.ray_engine`) find the same
  top-k, ties included (ordered by lower item id).
  ``bm25`` and ``random`` produce their ranked hits in SQL (:mod:`hnm_db.mining.baselines`). With a
  **hybrid** ensemble, method ``ensemble`` ranks the union of the dense top list and the BM25 top list
  (each of the ensemble's depth, or deeper when the run needs more) by dense similarity + W x BM25
  min-max-normalised per query (:mod:`hnm_db.retrieval.hybrid`); ``score`` and ``positive_score`` are that hybrid
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

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from hnm_db.errors import AlreadyExists, InvalidParams
from hnm_db.mining.candidates import FALLBACK, MIXED, Candidates, FilterCounts, Pairs
from hnm_db.mining.inputs import SplitData
from hnm_db.mining.params import MiningParams
from hnm_db.mining.rows import insert_triplets, record_run, triplet_rows
from hnm_db.mining.scoring import Ranked, Scorer, context, filtered, margin, raw_candidates, select
from hnm_db.store import RunRecord, Store, existing_run_id, run_record


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
    ctx = context(
        db, params, progress=progress, query_block=query_block, chunk_block=chunk_block, scorer=scorer
    )
    data, ens = ctx.data, ctx.ens
    timings: dict[str, float] = {}
    t = time.perf_counter()
    k = min(params.depth + margin(data), len(data.items))
    scored = raw_candidates(ctx, k)
    timings["score_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ranked = filtered(ctx, scored)
    chosen = select(ranked)
    timings["filter_s"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = triplet_rows(ranked, chosen)
    stats = _run_stats(data, params, chosen, ranked.pairs, ranked.counts, n_rows=rows.num_rows, k=k)
    stats["positive_own_best_differs"] = ranked.own_best_differs
    if params.positive == "span":
        stats["queries_without_span"] = data.no_span_queries
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
    with db.transaction():
        insert_triplets(db, rows)
        record_run(db, record, stats, timings, replace_run=old, started=started)
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
        dropped_false_negatives=ranked.counts.dropped_false_negatives,
        seconds=time.perf_counter() - started,
        stats=stats,
    )


def ranked_candidates(
    db: Store,
    params: MiningParams,
    *,
    query_block: int = 1024,
    chunk_block: int = 16_384,
    buffer_limit: str | None = "512MB",
) -> Ranked:
    """Every candidate a run with ``params`` may take, per pair, before sampling: the ranks below the
    chosen ones and the fallback ranks, which denoising (:mod:`hnm_db.mining.denoise`) refills from. Reads only."""
    with bounded_buffer(db, buffer_limit):
        ctx = context(db, params, progress=False, query_block=query_block, chunk_block=chunk_block)
        return filtered(ctx, raw_candidates(ctx, min(params.depth + margin(ctx.data), len(ctx.data.items))))


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
