-- Chunks that overlap a judged span (qrel_spans), one row per (query, chunk) with its best span:
--   overlap_chars: characters the chunk's range [start_char, end_char) shares with the span;
--   overlap:       overlap_chars / the shorter of chunk range and span, in (0, 1]: 1 when the chunk lies
--                  inside the span or the span inside the chunk.
-- A chunk is a positive of the query when overlap >= the run's min_overlap (mine --positive span); the
-- split is the one the span's judgement counts in (as effective_qrels does for qrels).
CREATE OR REPLACE VIEW chunk_qrels AS
WITH spans AS (
    SELECT query_splits.split, s.query_id, s.doc_id, s.start_char, s.end_char, s.score
    FROM qrel_spans s
    JOIN query_splits
      ON query_splits.query_id = s.query_id
     AND (s.split = query_splits.split OR (query_splits.origin = 'assigned' AND s.split = 'unsplit'))
), hits AS (
    SELECT spans.split, spans.query_id, c.doc_id, c.chunk_id, c.ord, c.content_hash, spans.score,
           spans.start_char AS span_start, spans.end_char AS span_end,
           least(c.end_char, spans.end_char) - greatest(c.start_char, spans.start_char) AS overlap_chars,
           least(c.end_char - c.start_char, spans.end_char - spans.start_char) AS shorter
    FROM spans
    JOIN chunks c ON c.doc_id = spans.doc_id
     AND c.start_char < spans.end_char AND spans.start_char < c.end_char
)
SELECT split, query_id, doc_id, chunk_id, ord, content_hash,
       max(score) AS score,
       max(overlap_chars) AS overlap_chars,
       max(overlap_chars::DOUBLE / shorter) AS overlap,
       arg_max(span_start, overlap_chars::DOUBLE / shorter) AS span_start,
       arg_max(span_end, overlap_chars::DOUBLE / shorter) AS span_end
FROM hits
WHERE score > 0
GROUP BY split, query_id, doc_id, chunk_id, ord, content_hash;
