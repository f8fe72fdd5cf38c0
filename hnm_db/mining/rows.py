"""Triplet rows with their provenance (member cosines, clusters, ranks), and the one write of a run:
rows and record in one transaction."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pyarrow as pa

from hnm_db.audit.checks import record_run_sources
from hnm_db.mining.candidates import FALLBACK, MIXED, Candidates
from hnm_db.mining.inputs import member_cosines, read_vectors_for
from hnm_db.mining.params import BM25_KEY, ENSEMBLE_KEY
from hnm_db.mining.scoring import Context, Ranked
from hnm_db.retrieval.topk import exact_dots
from hnm_db.store import RunRecord, Store


def triplet_rows(ranked: Ranked, chosen: Candidates) -> pa.Table:
    """One row per chosen (pair, negative), in (query, positive chunk, origin, rank) order, with the
    run's full provenance; ``run_id`` is left empty for the caller to set."""
    ctx, d = ranked.ctx, ranked.ctx.data
    pair_rows, pos_scores = ranked.pair_rows, ranked.pos_scores
    query_cluster, item_cluster = ranked.query_cluster, ranked.item_cluster
    pos = pair_rows[chosen.pair]  # pairs are sorted by (query, positive chunk id)
    q, items = chosen.query, chosen.item
    score = chosen.score
    if ctx.params.method == "random":
        score = np.full(len(chosen), np.nan)
    method = np.where(chosen.origin == MIXED, "random", ctx.params.method)
    member = member_scores(ranked, q, items)
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
            "query_cluster": nullable_int(query_cluster[q]),
            "negative_cluster": nullable_int(item_cluster[items]),
            "split": pa.array([ctx.params.split] * len(chosen), pa.string()),
            "negative_method": pa.array(method.astype(str), pa.string()),
            "fallback": pa.array(chosen.origin == FALLBACK, pa.bool_()),
        }
    )


def nullable_int(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.int32), pa.int32(), mask=values < 0)


def slice_cosines(ctx: Context, q_rows: np.ndarray, docs: np.ndarray) -> list[tuple[str, np.ndarray]] | None:
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


def member_scores(ranked: Ranked, q: np.ndarray, items: np.ndarray) -> pa.Array:
    """MAP(model_id -> cosine, '@ensemble' -> ensemble similarity) per row; NULL without an ensemble."""
    ctx = ranked.ctx
    n = len(q)
    typ = pa.map_(pa.string(), pa.float64())
    if ctx.ens is None or n == 0:
        return pa.nulls(n, typ)
    # score each distinct (query, negative) pair once; a query's rows repeat it per positive
    pair_key = q * len(ctx.data.items) + items
    uniq, inverse = np.unique(pair_key, return_inverse=True)
    uq, ui = uniq // len(ctx.data.items), uniq % len(ctx.data.items)
    docs = read_vectors_for(ctx.db, ctx.ens, "doc", ctx.data.items[ui])
    columns = slice_cosines(ctx, uq, docs)
    if columns is None:  # a member's dimension is unknown: read the member embeddings themselves
        columns = [
            (m["model_id"], member_cosines(ctx.db, m, ctx.data.query_hashes[uq], ctx.data.items[ui]))
            for m in ctx.ens.members
        ]
    columns.append((ENSEMBLE_KEY, exact_dots(ctx.qvecs[uq], docs)))
    if ranked.hybrid is not None:
        columns.append((BM25_KEY, ranked.hybrid.bm25(uq, ui)))
    m = len(columns)
    keys = np.tile(np.array([c[0] for c in columns], dtype=object), n)
    vals = np.stack([c[1][inverse] for c in columns], axis=1).ravel()
    offsets = pa.array(np.arange(0, (n + 1) * m, m, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, pa.array(keys, pa.string()), pa.array(vals, pa.float64()))


def insert_triplets(db: Store, rows: pa.Table) -> int:
    """Insert triplet rows (their ``run_id`` set); call inside the transaction that records the run."""
    with db.registered("_hnm_triplets", rows):
        db.execute(
            f"INSERT INTO triplets ({', '.join(rows.column_names)}) "
            f"SELECT {', '.join(rows.column_names)} FROM _hnm_triplets"
        )
    return rows.num_rows


def record_run(
    db: Store,
    record: RunRecord,
    stats: dict[str, Any],
    timings: dict[str, float],
    *,
    replace_run: str | None = None,
    started: float = 0.0,
) -> None:
    """The run record, its source snapshot and its stats (replacing the old run of the same name), in
    one transaction: the caller inserts the run's rows inside it first (:func:`insert_triplets`), so a
    run is recorded with all its rows or not at all."""
    with db.transaction():
        if replace_run is not None:
            delete_run(db, replace_run)
        record_run_sources(db, record.run_id)
        timings["total_s"] = time.perf_counter() - started
        stats = dict(stats, durations={k: round(v, 4) for k, v in timings.items()})
        values = record.values() | {"stats": json.dumps(stats, sort_keys=True)}
        db.execute(
            f"INSERT INTO mining_runs ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
            list(values.values()),
        )


def delete_run(db: Store, run_id: str) -> None:
    """Remove a mining run and everything that hangs off it."""
    with db.transaction():
        db.execute("DELETE FROM triplets WHERE run_id = ?", [run_id])
        db.execute("DELETE FROM mining_run_sources WHERE run_id = ?", [run_id])
        db.execute("DELETE FROM mining_runs WHERE run_id = ?", [run_id])
