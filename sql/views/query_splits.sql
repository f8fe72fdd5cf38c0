-- The effective split of every judged query: the split its qrels came with (origin 'source'), else the
-- one `hnm-db split` assigned (origin 'assigned'), else 'unsplit' (origin 'unassigned': run `split`).
-- Qrels ingested without a split carry split = 'unsplit'; a query with source splits ignores assignments.
CREATE OR REPLACE VIEW query_splits AS
WITH source_splits AS (
    SELECT DISTINCT query_id, split
    FROM qrels
    WHERE split <> 'unsplit'
),

unsplit_queries AS (
    SELECT DISTINCT query_id
    FROM qrels
    WHERE split = 'unsplit'
      AND query_id NOT IN (SELECT query_id FROM source_splits)
),

assigned AS (
    SELECT u.query_id, coalesce(a.split, 'unsplit') AS split,
           CASE WHEN a.split IS NULL THEN 'unassigned' ELSE 'assigned' END AS origin
    FROM unsplit_queries u
    LEFT JOIN query_split_assignments a USING (query_id)
),

effective AS (
    SELECT query_id, split, 'source' AS origin FROM source_splits
    UNION ALL
    SELECT query_id, split, origin FROM assigned
)

SELECT query_id, split, origin
FROM effective
