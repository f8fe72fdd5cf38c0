-- The queries a mining run of a split works on: those with at least one chunked, judged-relevant
-- document in that split (see mining_positives for how a query's split is decided).
CREATE OR REPLACE VIEW mining_queries AS
WITH judged AS (
    SELECT DISTINCT split, query_id
    FROM mining_positives
)
SELECT judged.split, queries.query_id, queries.text, queries.content_hash
FROM judged
JOIN queries USING (query_id);
