"""Hybrid scores: dense ensemble similarity plus W x BM25, min-max normalised per query.

For query q and candidate c:  score(q, c) = e(q) . e(c) + W * (bm25(q, c) - lo_q) / (hi_q - lo_q),
where e is the ensemble vector (so the first term is the weighted mean of the dense members' cosines)
and lo_q, hi_q are the lowest and highest BM25 score over q's candidates. The candidates of a query are
the union of its dense top-D and its BM25 top-D, so a document that only one of the two ranks high is
never missed. BM25 scores span very different ranges across queries (they grow with query length and
term rarity), so they are rescaled to [0, 1] per query before they are added to cosines; a query whose
candidates all have one BM25 score gets 0 for all of them.

A candidate scored later (a positive that is in neither list, for the mining guard) uses the same
lo_q and hi_q, so it is on the same scale as the query's candidates (and may fall outside [0, 1]).

Pure numpy over a :class:`~hnm_db.retrieval.bm25.BM25Index` and a callable that returns ensemble vectors of
candidate items; the stages supply both (mining over distinct chunk texts, evaluation over chunks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hnm_db.retrieval.bm25 import BM25Index
from hnm_db.retrieval.topk import TopK, top_k_rows

_PAD = np.iinfo(np.int64).max


def union_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the distinct non-negative ids of ``a`` and ``b`` in ascending order, padded with -1."""
    cat = np.sort(np.where(np.concatenate([a, b], axis=1) < 0, _PAD, np.concatenate([a, b], axis=1)), axis=1)
    dup = np.zeros(cat.shape, dtype=bool)
    dup[:, 1:] = cat[:, 1:] == cat[:, :-1]
    cat[dup] = _PAD
    cat = np.sort(cat, axis=1)
    width = int((cat != _PAD).sum(axis=1).max(initial=0))
    out = cat[:, :width]
    return np.where(out == _PAD, -1, out)


def minmax_bounds(raw: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, span) per row over the valid entries; span 1 where all are equal (or none is valid)."""
    lo = np.where(valid, raw, np.inf).min(axis=1)
    hi = np.where(valid, raw, -np.inf).max(axis=1)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    span = np.where(np.isfinite(hi) & (hi > lo), hi - lo, 1.0)
    return lo, span


@dataclass
class HybridScorer:
    """Scores (query, item) pairs of one run or evaluation by the hybrid formula (module docstring).

    ``query_texts`` and ``qvecs`` are aligned by query row; ``doc_vectors(items)`` returns the ensemble
    vectors of item ids. :meth:`top_k` sets each query's min-max bounds; :meth:`score` reuses them.
    """

    index: BM25Index
    weight: float
    query_texts: Sequence[str]
    qvecs: np.ndarray
    doc_vectors: Callable[[np.ndarray], np.ndarray]
    lo: np.ndarray = field(init=False)
    span: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.lo = np.zeros(len(self.query_texts))
        self.span = np.ones(len(self.query_texts))

    def _block(self) -> int:
        return max(1, min(256, 20_000_000 // max(1, self.index.n_docs)))

    def top_k(self, dense: TopK, k: int) -> TopK:
        """The k best of each query's candidates (its dense top list in ``dense`` united with its BM25
        top list of the same depth) by hybrid score, best first, ties by lower item id."""
        depth = dense.indices.shape[1]
        n_q = len(self.query_texts)
        width = min(k, 2 * depth)
        out_i = np.full((n_q, width), -1, dtype=np.int64)
        out_s = np.full((n_q, width), -np.inf, dtype=np.float64)
        block = self._block()
        for start in range(0, n_q, block):
            rows = slice(start, min(start + block, n_q))
            full = self.index.scores(list(self.query_texts[rows]))  # (block, n_docs) BM25
            bm_idx, _ = top_k_rows(full, depth)
            cand = union_rows(dense.indices[rows], bm_idx)
            valid = cand >= 0
            safe = np.where(valid, cand, 0)
            raw = np.take_along_axis(full, safe, axis=1).astype(np.float64)
            self.lo[rows], self.span[rows] = minmax_bounds(raw, valid)
            items, pos = np.unique(safe, return_inverse=True)
            sims = self.qvecs[rows] @ self.doc_vectors(items).T  # (block, distinct candidates)
            dense_s = np.take_along_axis(sims, pos.reshape(safe.shape), axis=1).astype(np.float64)
            fused = dense_s + self.weight * (raw - self.lo[rows, None]) / self.span[rows, None]
            fused = np.where(valid, fused, -np.inf)
            order = np.lexsort((np.where(valid, cand, _PAD), -fused), axis=1)[:, :width]
            n = order.shape[1]
            out_i[rows, :n] = np.where(
                np.take_along_axis(valid, order, 1), np.take_along_axis(cand, order, 1), -1
            )
            out_s[rows, :n] = np.take_along_axis(fused, order, axis=1)
        return TopK(out_i, out_s)

    def bm25(self, q_rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Raw BM25 scores of aligned (query row, item) pairs."""
        out = np.empty(len(q_rows))
        for u in np.unique(q_rows):
            sel = q_rows == u
            out[sel] = self.index.scores([str(self.query_texts[u])])[0, items[sel]]
        return out

    def score(self, q_rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Hybrid scores of aligned (query row, item) pairs, with the bounds :meth:`top_k` found."""
        if len(q_rows) == 0:
            return np.zeros(0)
        dense = np.einsum("ij,ij->i", self.qvecs[q_rows], self.doc_vectors(items)).astype(np.float64)
        norm = (self.bm25(q_rows, items) - self.lo[q_rows]) / self.span[q_rows]
        return dense + self.weight * norm
