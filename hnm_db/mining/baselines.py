"""The paper's baselines as SQL over the same tables: BM25 top-k and seeded uniform random negatives.

Each baseline is a Python UDF registered on the run's DuckDB connection for the length of one mining
run and called from a query file in ``sql/mining/`` that reads the ``mining_queries`` view of the
requested split. The UDF returns every query's ranked hits as ``LIST(STRUCT(content_hash, score))``;
the query unnests them into one row per (query, hit). From there the baselines take exactly the path
of ensemble mining in :mod:`hnm_db.mining.mine` (positive exclusion, range, cluster filter, false-negative
guard, sampling, writing ``triplets``), so every method is filtered and queried the same way.

- ``hnm_bm25_top_k(text, k)``: BM25Okapi (rank-bm25's statistics, :mod:`hnm_db.retrieval.bm25`, whose docstring
  documents the tokenisation) over the distinct chunk texts; scores a whole vector of query texts per
  call with one sparse product per block, best first, ties to the smaller content hash.
- ``hnm_random_draw(query_id, k)``: k distinct chunk texts drawn uniformly by
  ``numpy.random.default_rng([seed, hash(query_id), 0])``; the score is NULL. Seeding by query id
  makes a query's draw independent of the other queries and of DuckDB's evaluation order.

A candidate is a distinct chunk text (content hash); see :mod:`hnm_db.mining.mine` for why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hnm_db import resources
from hnm_db.retrieval.bm25 import BM25Index
from hnm_db.seeding import draw_distinct, query_rng
from hnm_db.store import Store

HIT_TYPE = pa.list_(pa.struct([("content_hash", pa.string()), ("score", pa.float64())]))
_HIT_SQL_TYPE = "STRUCT(content_hash VARCHAR, score DOUBLE)[]"


def _hits_array(indices: np.ndarray, scores: np.ndarray | None, hashes: np.ndarray) -> pa.ListArray:
    """Per-row hit lists (rows of ``indices`` with -1 padding dropped) as LIST(STRUCT)."""
    valid = indices >= 0
    counts = valid.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    flat_idx = indices[valid]
    flat_scores = scores[valid].astype(np.float64) if scores is not None else None
    struct = pa.StructArray.from_arrays(
        [
            pa.array(hashes[flat_idx], type=pa.string()),
            pa.array(flat_scores, type=pa.float64())
            if flat_scores is not None
            else pa.nulls(len(flat_idx), type=pa.float64()),
        ],
        names=["content_hash", "score"],
    )
    return pa.ListArray.from_arrays(pa.array(offsets), struct)


def bm25_hits(db: Store, split: str, hashes: np.ndarray, texts: list[str], k: int) -> tuple[pa.Table, Any]:
    """(query_id, hit_order, content_hash, score) of the BM25 top-k of every query of ``split``, and the index."""
    index = BM25Index.build(texts)
    block = max(1, min(256, 20_000_000 // max(1, len(hashes))))

    def top_k(query_texts: pa.Array, ks: pa.Array) -> pa.Array:
        kk = int(pc.max(ks).as_py() or 0)
        idx, sc = index.top_k(query_texts.to_pylist(), kk, block=block)
        return _hits_array(idx, sc, hashes)

    with db.udf("hnm_bm25_top_k", top_k, ["VARCHAR", "INTEGER"], _HIT_SQL_TYPE):
        table = _run_hits(db, "bm25_hits", split, k)
    return table, index


def random_hits(db: Store, split: str, hashes: np.ndarray, k: int, seed: int, *, stream: int = 0) -> pa.Table:
    """(query_id, hit_order, content_hash, NULL score) of k uniform draws per query of ``split``;
    ``stream`` picks an independent draw of the same seed (the random mix of a hard run uses 2)."""
    n = len(hashes)

    def draw(query_ids: pa.Array, ks: pa.Array) -> pa.Array:
        kk = min(int(pc.max(ks).as_py() or 0), n)
        rows = [draw_distinct(query_rng(seed, q, stream), n, kk) for q in query_ids.to_pylist()]
        idx = np.asarray(rows, dtype=np.int64).reshape(len(rows), kk)
        return _hits_array(idx, None, hashes)

    with db.udf("hnm_random_draw", draw, ["VARCHAR", "INTEGER"], _HIT_SQL_TYPE):
        return _run_hits(db, "random_hits", split, k)


def _run_hits(db: Store, name: str, split: str, k: int) -> pa.Table:
    sql = resources.sql_file("mining", name)
    table = db.arrow(sql, {"split": split, "k": k})
    hit = table.column("hit").combine_chunks() if table.num_rows else None
    return pa.table(
        {
            "query_id": table.column("query_id"),
            "hit_order": table.column("hit_order"),
            "content_hash": hit.field("content_hash") if hit is not None else pa.array([], pa.string()),
            "score": hit.field("score") if hit is not None else pa.array([], pa.float64()),
        }
    )
