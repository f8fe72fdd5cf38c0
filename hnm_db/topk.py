"""Exact, deterministic row-wise top-k: best score first, equal scores by lower item id.

``argpartition`` alone keeps an arbitrary subset of items tied at the k-th place, which would make
results depend on block sizes or on the numpy build; this picks the tied items by id instead.
"""

from __future__ import annotations

import numpy as np


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
