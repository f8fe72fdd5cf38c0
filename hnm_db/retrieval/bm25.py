"""BM25 (Okapi) over chunk texts, shared by the BM25 negative baseline and the BM25 first stage.

Tokenisation (documented contract): lowercase, words are runs of ``[a-z0-9]`` (Unicode letters and
digits via ``\\w`` minus underscore), English stop words (scikit-learn's list) removed.
Corpus statistics (idf with rank-bm25's epsilon floor, average length) come from
``rank_bm25.BM25Okapi``; scores are then computed as one sparse matrix product per block of queries,
equal to ``BM25Okapi.get_scores`` term by term but without a Python loop over documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from rank_bm25 import BM25Okapi
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from hnm_db.retrieval.topk import top_k_rows

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

#: Okapi constants (rank-bm25's defaults) and the name of :func:`tokenize`'s rules, recorded with every
#: hybrid ensemble so a later change of either is visible in the ``ensembles`` row.
K1, B, EPSILON = 1.5, 0.75, 0.25
TOKENIZER = "lower-words-en-stop"
_EMPTY = "\x00"  # the placeholder token of a text without tokens (never produced by tokenize)


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens with English stop words removed."""
    return [t for t in _WORD.findall(text.lower()) if t not in ENGLISH_STOP_WORDS]


@dataclass
class BM25Index:
    """A BM25Okapi index over a fixed list of texts, scored with sparse matrix products."""

    vocab: dict[str, int]
    weights: sp.csr_matrix  # (n_docs, n_terms): tf*(k1+1) / (tf + k1*(1-b+b*dl/avgdl))
    idf: np.ndarray  # (n_terms,)

    @classmethod
    def build(
        cls, texts: Sequence[str], *, k1: float = K1, b: float = B, epsilon: float = EPSILON
    ) -> BM25Index:
        tokens = [tokenize(t) for t in texts]
        # rank-bm25 divides by zero on an all-empty corpus; a placeholder keeps statistics defined.
        okapi = BM25Okapi([t or [_EMPTY] for t in tokens], k1=k1, b=b, epsilon=epsilon)
        vocab = {term: i for i, term in enumerate(sorted(okapi.idf))}
        rows, cols, vals = [], [], []
        for d, freqs in enumerate(okapi.doc_freqs):
            for term, tf in freqs.items():
                rows.append(d)
                cols.append(vocab[term])
                vals.append(tf)
        tf = np.asarray(vals, dtype=np.float64)
        dl = np.asarray(okapi.doc_len, dtype=np.float64)[np.asarray(rows, dtype=np.int64)]
        w = tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / okapi.avgdl))
        weights = sp.csr_matrix((w, (rows, cols)), shape=(len(tokens), len(vocab)))
        idf = np.zeros(len(vocab))
        for term, i in vocab.items():
            idf[i] = okapi.idf[term]
        return cls(vocab=vocab, weights=weights, idf=idf)

    @property
    def n_docs(self) -> int:
        return int(self.weights.shape[0])

    def has_terms(self) -> bool:
        """Whether any text has a token (an all-stop-word corpus gives BM25 nothing to score)."""
        return len(self.vocab) > (_EMPTY in self.vocab)

    def query_matrix(self, queries: Sequence[str]) -> sp.csr_matrix:
        """(n_terms, n_queries): idf x count of each query token (repeated tokens count twice, as in rank-bm25)."""
        rows, cols, vals = [], [], []
        for j, q in enumerate(queries):
            for term in tokenize(q):
                i = self.vocab.get(term)
                if i is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append(self.idf[i])
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(self.vocab), len(queries)))

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """Dense (n_queries, n_docs) BM25 scores; call on bounded blocks of queries."""
        return np.asarray((self.weights @ self.query_matrix(queries)).T.todense(), dtype=np.float32)

    def top_k(self, queries: Sequence[str], k: int, *, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores) of the k best documents per query, best first; ties by lower index."""
        n_docs = self.weights.shape[0]
        k = min(k, n_docs)
        all_idx = np.zeros((len(queries), k), dtype=np.int64)
        all_sc = np.zeros((len(queries), k), dtype=np.float32)
        for start in range(0, len(queries), block):
            idx, sc = top_k_rows(self.scores(queries[start : start + block]), k)
            all_idx[start : start + len(idx)] = idx
            all_sc[start : start + len(idx)] = sc
        return all_idx, all_sc
