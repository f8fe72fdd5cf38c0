"""Exact, deterministic top-k by dot product, the one used by mining and by the ensemble first stage:
best score first, equal scores by lower item id, over blocks streamed from the database.

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
    scores: np.ndarray  # (n_queries, k) float32


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


def _merge_block(best_s: np.ndarray, best_i: np.ndarray, s: np.ndarray, col_ids: np.ndarray) -> None:
    """Fold a (queries x chunks) score block, whose columns are items ``col_ids``, into the running top-k.

    Ties are ordered by item id (``hnm_db.topk``), so the result does not depend on block sizes.
    """
    k = best_s.shape[1]
    floor = best_s.min(axis=1)
    mask = s >= floor[:, None]  # >=: an item tied with the k-th may still win on a lower id
    hits = int(np.count_nonzero(mask))
    if hits == 0:
        return
    if hits > 2 * best_s.size:  # dense: exact top-k of the block, then merge with the running one
        part_i, part_s = top_k_rows(s, k, col_ids)
        best_s[:], best_i[:] = merge_top_k(best_s, best_i, part_s.astype(best_s.dtype), part_i)
        return
    r, c = np.nonzero(mask)  # sparse: only scores that reach a row's current k-th compete
    rows = np.concatenate([np.repeat(np.arange(len(best_s)), k), r])
    vals = np.concatenate([best_s.ravel(), s[r, c]])
    idx = np.concatenate([best_i.ravel(), col_ids[c]])
    order = np.lexsort((idx, -vals, rows))
    rows, vals, idx = rows[order], vals[order], idx[order]
    pos = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = pos < k
    best_s[:] = vals[keep].reshape(best_s.shape)
    best_i[:] = idx[keep].reshape(best_i.shape)


def score_candidates(
    queries: np.ndarray,
    chunk_blocks: np.ndarray | Iterable[np.ndarray | tuple[np.ndarray, np.ndarray]],
    k: int,
    *,
    query_block: int = 1024,
) -> TopK:
    """Exact top-k of ``queries @ chunks.T`` without materialising it, best first.

    Equal scores are ordered by item index, also across blocks, so exact ties do not depend on how the
    chunks are blocked or streamed (tests/test_topk.py); BLAS may still round a dot product differently
    for another block shape, in the last bit.

    ``chunk_blocks`` is a matrix, or an iterable of row blocks: consecutive matrices, or
    ``(item_ids, matrix)`` pairs naming each row's item (blocks streamed from DuckDB in storage order).
    Memory stays at one query block x one chunk block plus the running (n_queries, k) arrays.
    """
    if isinstance(chunk_blocks, np.ndarray):
        chunk_blocks = [chunk_blocks]
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    nq = len(queries)
    best_s = np.full((nq, k), -np.inf, dtype=np.float32)
    best_i = np.full((nq, k), -1, dtype=np.int64)
    offset = 0
    for block in chunk_blocks:
        if isinstance(block, tuple):
            col_ids, block = np.asarray(block[0], dtype=np.int64), block[1]
        else:
            col_ids = np.arange(offset, offset + len(block), dtype=np.int64)
        offset += len(block)
        if len(block) == 0:
            continue
        block_t = np.ascontiguousarray(np.asarray(block, dtype=np.float32).T)
        for qs in range(0, nq, query_block):
            scores = queries[qs : qs + query_block] @ block_t
            _merge_block(best_s[qs : qs + query_block], best_i[qs : qs + query_block], scores, col_ids)
    order = np.lexsort((np.where(best_i < 0, np.iinfo(np.int64).max, best_i), -best_s), axis=-1)
    return TopK(np.take_along_axis(best_i, order, axis=1), np.take_along_axis(best_s, order, axis=1))
