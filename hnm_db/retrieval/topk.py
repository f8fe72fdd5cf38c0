"""The one exact, deterministic top-k by dot product, used by mining, the evaluation first stages and
ensemble tuning: best score first, equal scores by lower item id, over blocks streamed from the database.

Scores are float64 dot products of the float32 vectors (:func:`exact_dots`); float32 BLAS products only
shortlist the pairs that may reach the top-k. ``bench/topk.py`` measures what this costs against a plain
float32 top-k on 1M x 10k (bench/results/topk.md). :func:`top_k_rows` applies the same order to a score
matrix already computed (BM25).

``argpartition`` alone keeps an arbitrary subset of items tied at the k-th place, which would make
results depend on block sizes or on the numpy build; this picks the tied items by id instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass
class TopK:
    """The k best items per query row, best first; index -1 (score -inf) pads rows with fewer items."""

    indices: np.ndarray  # (n_queries, k) int64
    scores: np.ndarray  # (n_queries, k) float64 (float32 where a caller ranks a float32 matrix)


def top_k_rows(scores: np.ndarray, k: int, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of the k best columns of every row, ordered by (-score, id).

    ``ids`` are the columns' item ids (default: column positions); k is capped at the column count.
    """
    n_rows, n_cols = scores.shape
    ids = np.arange(n_cols, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    k = min(k, n_cols)
    if k == 0 or n_rows == 0:
        return np.zeros((n_rows, 0), np.int64), np.zeros((n_rows, 0), scores.dtype)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
    chosen = scores > kth[:, None]
    tied = scores == kth[:, None]
    need = k - chosen.sum(axis=1)
    n_tied = tied.sum(axis=1)
    fits = n_tied == need
    chosen[fits] |= tied[fits]
    for r in np.flatnonzero(~fits):  # more items tied at the k-th place than places left: lowest ids win
        cols = np.flatnonzero(tied[r])
        chosen[r, cols[np.argsort(ids[cols], kind="stable")[: need[r]]]] = True
    cols = np.nonzero(chosen)[1].reshape(n_rows, k)
    top_s = np.take_along_axis(scores, cols, axis=1)
    top_i = ids[cols]
    order = np.lexsort((top_i, -top_s), axis=1)
    return np.take_along_axis(top_i, order, axis=1), np.take_along_axis(top_s, order, axis=1)


def merge_top_k(
    best_s: np.ndarray, best_i: np.ndarray, new_s: np.ndarray, new_i: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fold candidate (scores, ids) into a running top-k of the same rows, ordered by (-score, id)."""
    k = best_s.shape[1]
    cat_s = np.concatenate([best_s, new_s], axis=1)
    cat_i = np.concatenate([best_i, new_i], axis=1)
    order = np.lexsort((cat_i, -cat_s), axis=1)[:, :k]
    return np.take_along_axis(cat_s, order, axis=1), np.take_along_axis(cat_i, order, axis=1)


def _id_blocks(
    chunk_blocks: np.ndarray | Iterable[np.ndarray | tuple[np.ndarray, np.ndarray]],
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(item ids, rows) of each non-empty block; plain matrices are numbered consecutively."""
    if isinstance(chunk_blocks, np.ndarray):
        chunk_blocks = [chunk_blocks]
    offset = 0
    for block in chunk_blocks:
        if isinstance(block, tuple):
            col_ids, block = np.asarray(block[0], dtype=np.int64), block[1]
        else:
            col_ids = np.arange(offset, offset + len(block), dtype=np.int64)
        offset += len(block)
        if len(block):
            yield col_ids, block


# -- exact scores: the same top-k whatever the blocking or sharding ----------------------------------------
#: Pairs rescored at once by :func:`exact_dots` (bounds the float64 copies: 8,192 x dim x 16 bytes).
RESCORE_PAIRS = 8192


def exact_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two aligned float32 matrices, in float64.

    Each row's value depends only on that row's two vectors (numpy's einsum loop, no BLAS), so it is the
    same bit for bit whichever other rows share the call: the score a shard computes for a (query, chunk)
    pair is the score the driver or the local path computes for it.
    """
    out = np.empty(len(a), dtype=np.float64)
    for s in range(0, len(a), RESCORE_PAIRS):
        x = np.ascontiguousarray(a[s : s + RESCORE_PAIRS], dtype=np.float64)
        y = np.ascontiguousarray(b[s : s + RESCORE_PAIRS], dtype=np.float64)
        out[s : s + RESCORE_PAIRS] = np.einsum("ij,ij->i", x, y)
    return out


def exact_sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise squared Euclidean distances of two aligned float32 matrices, in float64, each row's
    value independent of the other rows (as :func:`exact_dots`)."""
    out = np.empty(len(a), dtype=np.float64)
    for s in range(0, len(a), RESCORE_PAIRS):
        d = np.asarray(a[s : s + RESCORE_PAIRS], dtype=np.float64) - np.asarray(
            b[s : s + RESCORE_PAIRS], dtype=np.float64
        )
        out[s : s + RESCORE_PAIRS] = np.einsum("ij,ij->i", d, d)
    return out


def _slack(queries: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Per query row, twice the worst-case error of a float32 dot product of length dim (any summation
    order, FMA or not): gamma_dim * |q| * max |d|, gamma_dim ~ dim * 2^-24."""
    dim = queries.shape[1]
    gamma = (dim + 2) * 2.0**-24
    d_max = float(np.sqrt((block.astype(np.float64) ** 2).sum(axis=1).max(initial=0.0)))
    return 2.0 * gamma * np.sqrt((queries.astype(np.float64) ** 2).sum(axis=1)) * d_max


def _merge_block_exact(
    best_s: np.ndarray,
    best_i: np.ndarray,
    queries: np.ndarray,
    block: np.ndarray,
    s32: np.ndarray,
    col_ids: np.ndarray,
) -> None:
    """Fold a block into a running float64 top-k: float32 scores (BLAS) only pick the pairs that may
    reach the top-k, within a proven error bound; those pairs are rescored exactly (:func:`exact_dots`)
    and ranked by (float64 score desc, item id asc)."""
    k = best_s.shape[1]
    slack = _slack(queries, block)
    thr = best_s.min(axis=1) - 2 * slack  # -inf until a row is full
    mask = s32 >= thr[:, None]
    if int(np.count_nonzero(mask)) > 2 * best_s.size:  # dense: also bound by the block's own k-th score
        kk = min(k, s32.shape[1])
        kth = -np.partition(-s32, kk - 1, axis=1)[:, kk - 1]
        mask &= s32 >= (kth - 2 * slack)[:, None]
    r, c = np.nonzero(mask)
    if len(r) == 0:
        return
    exact = exact_dots(queries[r], block[c])
    rows = np.concatenate([np.repeat(np.arange(len(best_s)), k), r])
    vals = np.concatenate([best_s.ravel(), exact])
    idx = np.concatenate([best_i.ravel(), col_ids[c]])
    pad = np.where(idx < 0, np.iinfo(np.int64).max, idx)
    order = np.lexsort((pad, -vals, rows))
    rows, vals, idx = rows[order], vals[order], idx[order]
    keep = (np.arange(len(rows)) - np.searchsorted(rows, rows)) < k
    best_s[:] = vals[keep].reshape(best_s.shape)
    best_i[:] = idx[keep].reshape(best_i.shape)


def score_candidates(
    queries: np.ndarray,
    chunk_blocks: np.ndarray | Iterable[np.ndarray | tuple[np.ndarray, np.ndarray]],
    k: int,
    *,
    query_block: int = 1024,
) -> TopK:
    """Exact top-k of ``queries @ chunks.T`` without materialising it, best first: scores are float64 dot
    products (:func:`exact_dots`), ranked by (score desc, item id asc).

    ``chunk_blocks`` is a matrix, or an iterable of row blocks: consecutive matrices, or
    ``(item_ids, matrix)`` pairs naming each row's item (blocks streamed from DuckDB in storage order).
    Memory stays at one query block x one chunk block plus the running (n_queries, k) arrays.

    A pair's score no longer depends on the block it was multiplied in, so the top-k of a corpus is the
    same however it is blocked or split into shards, and merging shards' top-k lists with
    :func:`merge_top_k` gives the top-k of the whole: that is what makes mining on Ray identical to
    mining in one process. BLAS float32 products still do the bulk of the work; they only select which
    pairs are rescored, with a margin twice the float32 error bound, so no pair is missed.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    nq = len(queries)
    best_s = np.full((nq, k), -np.inf, dtype=np.float64)
    best_i = np.full((nq, k), -1, dtype=np.int64)
    for col_ids, block in _id_blocks(chunk_blocks) if k else ():
        block = np.ascontiguousarray(block, dtype=np.float32)
        block_t = np.ascontiguousarray(block.T)
        for qs in range(0, nq, query_block):
            q = queries[qs : qs + query_block]
            _merge_block_exact(
                best_s[qs : qs + query_block], best_i[qs : qs + query_block], q, block, q @ block_t, col_ids
            )
    return TopK(best_i, best_s)


def merge_shard_top_k(parts: Iterable[TopK], k: int) -> TopK:
    """The top-k of a corpus from the top-k lists of its disjoint shards (exact scores), by
    (score desc, item id asc); -1 / -inf pad rows with fewer than k items, as a single pass does."""
    parts = list(parts)
    scores = np.concatenate([p.scores for p in parts], axis=1)
    ids = np.concatenate([p.indices for p in parts], axis=1)
    pad = np.where(ids < 0, np.iinfo(np.int64).max, ids)
    order = np.lexsort((pad, -scores), axis=1)[:, :k]
    top_i = np.take_along_axis(ids, order, axis=1)
    top_s = np.take_along_axis(scores, order, axis=1)
    if top_i.shape[1] < k:  # fewer items in all shards together than k
        fill = k - top_i.shape[1]
        top_i = np.concatenate([top_i, np.full((len(top_i), fill), -1, np.int64)], axis=1)
        top_s = np.concatenate([top_s, np.full((len(top_s), fill), -np.inf)], axis=1)
    return TopK(top_i, top_s)
