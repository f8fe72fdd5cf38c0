-- BM25 baseline candidates: the registered UDF hnm_bm25_top_k(text, k) ranks every distinct chunk text
-- for a block of queries at once (sparse matrix product, hnm_db.retrieval.bm25) and returns the k best as a list
-- of (content_hash, score), best first. One row per (query, hit), hit_order 0 = best.
-- Parameters: $split, $k.
WITH split_queries AS (
    SELECT query_id, text
    FROM mining_queries
    WHERE split = $split
),
ranked AS (
    SELECT query_id, hnm_bm25_top_k(text, $k) AS hits
    FROM split_queries
)
SELECT query_id,
       unnest(generate_series(0, len(hits) - 1)) AS hit_order,
       unnest(hits) AS hit
FROM ranked
ORDER BY query_id, hit_order;
