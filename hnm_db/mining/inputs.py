"""What a run reads before scoring: the split's queries, positives and candidate texts, and vectors by
content hash."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from hnm_db.errors import EmptySelection, InvalidParams, MissingEmbeddings
from hnm_db.models.ensemble import (
    EnsembleInfo,
)
from hnm_db.store import Store
from hnm_db.store.vectors import vectors_by_hash


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
    # per positive row: whether the chunk overlaps a judged span of the query by min_overlap (None: no
    # span rule asked for)
    pos_span: np.ndarray | None = None
    #: queries of the split left out because no chunk of theirs overlaps a judged span enough
    no_span_queries: int = 0


#: Chunks of a query's positive documents that may never be negatives under same-document negatives:
#: all of them for a document without a judged span for the query, else those within ``gap`` characters
#: of one (overlapping it included).
_NEAR_SPAN_SQL = """
SELECT DISTINCT q.query_id, c.content_hash FROM qrels q JOIN chunks c USING (doc_id)
WHERE q.score > 0 AND q.query_id IN (SELECT query_id FROM mining_queries WHERE split = ?)
  AND (NOT EXISTS (SELECT 1 FROM qrel_spans s WHERE s.query_id = q.query_id AND s.doc_id = c.doc_id
                   AND s.score > 0)
       OR EXISTS (SELECT 1 FROM qrel_spans s WHERE s.query_id = q.query_id AND s.doc_id = c.doc_id
                  AND s.score > 0 AND c.start_char < s.end_char + ? AND s.start_char - ? < c.end_char))
"""


def read_split(
    db: Store,
    split: str,
    min_relevance: int = 1,
    *,
    min_overlap: float | None = None,
    span_gap: int | None = None,
) -> SplitData:
    """Queries, positives (qrels score >= ``min_relevance``) and candidate texts of ``split`` (raises
    EmptySelection for an unknown split or one with no positive at that relevance).

    ``min_overlap`` (the span rule): marks the positive chunks that overlap a judged span by that much
    (view ``chunk_qrels``) and leaves out queries with none. ``span_gap`` (same-document negatives): the
    chunks of a positive document that lie ``span_gap`` characters or more from every judged span of the
    query are not excluded from the candidates.
    """
    q = db.sql(
        "SELECT query_id, text, content_hash FROM mining_queries WHERE split = ? AND query_id IN "
        "(SELECT query_id FROM mining_positives WHERE split = ? AND qrel_score >= ?) ORDER BY query_id",
        [split, split, min_relevance],
    )
    no_span = 0
    if min_overlap is not None and q.height:
        spanned = db.sql(
            "SELECT DISTINCT query_id FROM chunk_qrels WHERE split = ? AND overlap >= ? AND score >= ?",
            [split, min_overlap, min_relevance],
        )
        kept = q.join(spanned, on="query_id", how="semi", maintain_order="left")
        no_span, q = q.height - kept.height, kept
        if q.height == 0:
            raise EmptySelection(
                f"split {split!r} has no query with a chunk overlapping a judged span by >= {min_overlap} "
                "(positive 'span' reads the spans ingested with the qrels: table qrel_spans)"
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
    if span_gap is None:
        excl = db.sql(
            "SELECT DISTINCT q.query_id, c.content_hash FROM qrels q JOIN chunks c USING (doc_id) "
            "WHERE q.score > 0 AND q.query_id IN (SELECT query_id FROM mining_queries WHERE split = ?)",
            [split],
        )
    else:
        excl = db.sql(_NEAR_SPAN_SQL, [split, span_gap, span_gap])
    excl = excl.join(q.select("query_id"), on="query_id", how="semi")
    p = db.sql(
        "SELECT query_id, doc_id, chunk_id, ord, content_hash FROM mining_positives WHERE split = ? "
        "AND qrel_score >= ? ORDER BY query_id, doc_id, ord, chunk_id",
        [split, min_relevance],
    )
    p = p.join(q.select("query_id"), on="query_id", how="semi", maintain_order="left")
    pos_span = None
    if min_overlap is not None:
        hits = db.sql(
            "SELECT query_id, chunk_id FROM chunk_qrels WHERE split = ? AND overlap >= ? AND score >= ?",
            [split, min_overlap, min_relevance],
        )
        pos_span = (
            p.join(
                hits.with_columns(pl.lit(True).alias("_hit")),
                on=["query_id", "chunk_id"],
                how="left",
                maintain_order="left",
            )["_hit"]
            .fill_null(False)
            .to_numpy()
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
        pos_span=pos_span,
        no_span_queries=no_span,
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
