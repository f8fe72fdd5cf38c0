-- Random baseline candidates: the registered UDF hnm_random_draw(query_id, k) draws k distinct chunk
-- texts uniformly from a numpy Generator seeded by (run seed, query id), so the draw of a query does
-- not depend on which other queries exist or on the order DuckDB evaluates rows in.
-- Parameters: $split, $k.
WITH split_queries AS (
    SELECT query_id
    FROM mining_queries
    WHERE split = $split
),
drawn AS (
    SELECT query_id, hnm_random_draw(query_id, $k) AS hits
    FROM split_queries
)
SELECT query_id,
       unnest(generate_series(0, len(hits) - 1)) AS hit_order,
       unnest(hits) AS hit
FROM drawn
ORDER BY query_id, hit_order;
