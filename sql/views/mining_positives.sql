-- Every chunk of every judged-relevant document (qrels score > 0), per split and query.
-- A query's split is the one its judgements count in (effective_qrels).
-- Mining reads it filtered to the split it was asked for: these are the positives and, by content hash,
-- the candidates that must never become negatives (all chunks of a positive document, and any chunk
-- whose text is identical to one of them).
CREATE OR REPLACE VIEW mining_positives AS
WITH relevant AS (
    SELECT split, query_id, doc_id, max(score) AS qrel_score
    FROM effective_qrels
    WHERE score > 0
    GROUP BY split, query_id, doc_id
)
SELECT relevant.split, relevant.query_id, relevant.doc_id, relevant.qrel_score,
       chunks.chunk_id, chunks.ord, chunks.content_hash
FROM relevant
JOIN chunks USING (doc_id);
