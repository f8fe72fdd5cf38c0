-- Rule: mining reads only the split it is asked for; test queries and their qrels never reach
-- training rows. A query's split is its query_splits split (the split its qrels came with, or the one
-- `hnm-db split` assigned to an unsplit query). Offending rows: a row of a run mined for another split
-- whose query is a test query, or a row whose split differs from its run's split.
-- (A positive judged in the test split makes its query a test query, so the first case covers it.)
-- Empty when the rule holds.
WITH test_queries AS (
    SELECT DISTINCT query_id FROM query_splits WHERE split = 'test'
),
rows_with_run AS (
    SELECT t.run_id, r.name AS run, t.query_id, t.positive_chunk_id, t.negative_chunk_id,
           t.split AS row_split, r.split AS run_split
    FROM triplets t
    JOIN mining_runs r ON r.run_id = t.run_id
),
offending AS (
    SELECT run, query_id, positive_chunk_id, negative_chunk_id, row_split, run_split,
           CASE WHEN row_split <> run_split THEN 'row split differs from run split'
                ELSE 'test query in a non-test run' END AS problem
    FROM rows_with_run
    WHERE row_split <> run_split
       OR (run_split <> 'test' AND query_id IN (SELECT query_id FROM test_queries))
)
SELECT * FROM offending
ORDER BY run, query_id, positive_chunk_id, negative_chunk_id
