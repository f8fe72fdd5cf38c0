-- Every chunk of every judged-relevant document (qrels score > 0), per split and query.
-- A query's split comes from query_splits: the split its qrels came with, or the one `hnm-db split`
-- assigned to a query whose qrels are 'unsplit' (then those qrels are its judgments in that split).
-- Mining reads it filtered to the split it was asked for: these are the positives and, by content hash,
-- the candidates that must never become negatives (all chunks of a positive document, and any chunk
-- whose text is identical to one of them).
CREATE OR REPLACE VIEW mining_positives AS
WITH relevant AS (
    SELECT query_splits.split, qrels.query_id, qrels.doc_id, max(qrels.score) AS qrel_score
    FROM qrels
    JOIN query_splits
      ON query_splits.query_id = qrels.query_id
     AND (qrels.split = query_splits.split
          OR (query_splits.origin = 'assigned' AND qrels.split = 'unsplit'))
    WHERE qrels.score > 0
    GROUP BY query_splits.split, qrels.query_id, qrels.doc_id
)
SELECT relevant.split, relevant.query_id, relevant.doc_id, relevant.qrel_score,
       chunks.chunk_id, chunks.ord, chunks.content_hash
FROM relevant
JOIN chunks USING (doc_id);
