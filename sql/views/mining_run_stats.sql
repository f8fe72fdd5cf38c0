-- One row per mining run: what it was asked for and what it wrote (counted from triplets, not trusted
-- from the run's own stats). Kept for SQL written against it; the counts come from run_summary.
CREATE OR REPLACE VIEW mining_run_stats AS
SELECT run_id, run AS name, method, split, seed, ensemble, cluster_run_id, triplets, queries, negatives,
       code_version, created_at
FROM run_summary;
