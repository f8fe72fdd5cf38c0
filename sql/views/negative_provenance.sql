-- One row per triplet with every fact behind its choice: the run (method, split, seed, parameters,
-- ensemble and cluster run), the texts of query, positive and negative, the rank and scores
-- (margin = positive_score - score; ratio = score / positive_score, what the false-negative guard
-- compared against max_score_ratio, per pair or against the query's lowest positive as `guard` says),
-- per-model scores, the clusters of query and negative, and where the negative came from
-- (negative_method: the run's method or 'random' for a mixed-in random negative; fallback: taken from
-- below range_max because the window left the pair short; same_document: the negative is a chunk of the
-- positive's own document, which mine --same-document-negatives allows away from the judged spans;
-- positive_rule: which chunks of a judged document the run took as positives, mine --positive).
-- Parameters the mining stage may not set come back NULL.
CREATE OR REPLACE VIEW negative_provenance AS
WITH runs AS (
    SELECT run_id, name AS run, method, split AS run_split, seed, params, ensemble_id, cluster_run_id,
           code_version, created_at AS mined_at,
           params ->> 'sampling' AS sampling,
           params ->> 'cluster_filter' AS cluster_filter,
           TRY_CAST(params ->> 'max_score_ratio' AS DOUBLE) AS max_score_ratio,
           coalesce(params ->> 'guard', 'query') AS guard,
           TRY_CAST(params ->> 'range_min' AS INTEGER) AS range_min,
           TRY_CAST(params ->> 'range_max' AS INTEGER) AS range_max,
           coalesce(params ->> 'positive', 'method') AS positive_rule
    FROM mining_runs
),
provenance AS (
    SELECT r.run, r.method, r.run_split, r.seed, r.sampling, r.cluster_filter, r.max_score_ratio,
           r.guard, r.range_min, r.range_max, r.positive_rule,
           t.query_id, q.text AS query_text,
           t.positive_doc_id, t.positive_chunk_id, pc.text AS positive_text,
           t.negative_doc_id, t.negative_chunk_id, nc.text AS negative_text,
           t.negative_doc_id = t.positive_doc_id AS same_document,
           t.negative_method, t.fallback, t.rank, t.score, t.positive_score,
           t.positive_score - t.score AS margin,
           CASE WHEN t.positive_score <> 0 THEN t.score / t.positive_score END AS score_ratio,
           t.member_scores, t.query_cluster, t.negative_cluster,
           t.negative_cluster = t.query_cluster AS same_cluster,
           t.split, t.run_id, r.params, r.ensemble_id, r.cluster_run_id, r.code_version, r.mined_at
    FROM triplets t
    JOIN runs r ON r.run_id = t.run_id
    LEFT JOIN queries q ON q.query_id = t.query_id
    LEFT JOIN chunks pc ON pc.chunk_id = t.positive_chunk_id
    LEFT JOIN chunks nc ON nc.chunk_id = t.negative_chunk_id
)
SELECT * FROM provenance
