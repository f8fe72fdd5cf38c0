-- One row per mining run: what it was asked for and what it wrote (counted from triplets, not trusted
-- from the run's own stats).
CREATE OR REPLACE VIEW mining_run_stats AS
WITH written AS (
    SELECT run_id,
           count(*) AS triplets,
           count(DISTINCT query_id) AS queries,
           count(DISTINCT (query_id, negative_chunk_id)) AS negatives
    FROM triplets
    GROUP BY run_id
),
runs AS (
    SELECT mining_runs.*, ensembles.name AS ensemble
    FROM mining_runs
    LEFT JOIN ensembles USING (ensemble_id)
)
SELECT runs.run_id, runs.name, runs.method, runs.split, runs.seed, runs.ensemble, runs.cluster_run_id,
       coalesce(written.triplets, 0) AS triplets,
       coalesce(written.queries, 0) AS queries,
       coalesce(written.negatives, 0) AS negatives,
       runs.code_version, runs.created_at
FROM runs
LEFT JOIN written USING (run_id);
