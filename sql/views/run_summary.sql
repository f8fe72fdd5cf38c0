-- One row per mining run, the one place per-run counts come from (mining_run_stats, `hnm-db runs` and
-- the demo read it): coverage, distinct (query, negative) pairs, negatives per query (distinct negative
-- chunks over all of a query's positives), mean rank and ensemble similarity of the negatives, the score distribution of negatives against positives (each query-positive
-- pair counted once), how many negatives came from the fallback ranks and from the random mix, what
-- the false-negative guard dropped and how many pairs and queries came up short (from
-- mining_runs.stats, NULL when the stage did not record them), and cluster agreement: the share of
-- negatives in the query's K-means cluster (NULL when the run has no clusters); positive_rule (mine
-- --positive), own_best_differs: the (query, positive document)s whose best chunk by the run's own
-- method is not a positive the rule used (NULL for runs that did not record it), and
-- same_document_negatives: negatives from the positive's own document (mine --same-document-negatives).
CREATE OR REPLACE VIEW run_summary AS
WITH per_query AS (
    SELECT run_id, query_id, count(DISTINCT negative_chunk_id) AS negatives
    FROM triplets
    GROUP BY run_id, query_id
),
per_query_stats AS (
    SELECT run_id, count(*) AS queries, min(negatives) AS neg_per_query_min,
           median(negatives) AS neg_per_query_median, max(negatives) AS neg_per_query_max
    FROM per_query
    GROUP BY run_id
),
negative_scores AS (
    SELECT run_id, count(*) AS triplets,
           count(DISTINCT (query_id, negative_chunk_id)) AS negatives,
           avg(rank) AS mean_rank,
           avg(member_scores['@ensemble']) AS mean_ensemble_sim,
           count(*) FILTER (WHERE fallback) AS fallback_negatives,
           count(*) FILTER (WHERE negative_doc_id = positive_doc_id) AS same_document_negatives,
           count(*) FILTER (WHERE negative_method = 'random' AND negative_method <> method)
               AS mixed_random_negatives,
           avg(score) AS neg_score_mean,
           quantile_cont(score, 0.1) AS neg_score_p10,
           quantile_cont(score, 0.5) AS neg_score_p50,
           quantile_cont(score, 0.9) AS neg_score_p90,
           avg(CASE WHEN negative_cluster = query_cluster THEN 1.0 ELSE 0.0 END)
               FILTER (WHERE negative_cluster IS NOT NULL AND query_cluster IS NOT NULL) AS cluster_agreement
    FROM triplets
    JOIN (SELECT run_id, method FROM mining_runs) USING (run_id)
    GROUP BY run_id
),
positive_pairs AS (
    SELECT run_id, query_id, positive_chunk_id, any_value(positive_score) AS positive_score
    FROM triplets
    GROUP BY run_id, query_id, positive_chunk_id
),
positive_scores AS (
    SELECT run_id, count(*) AS positives,
           avg(positive_score) AS pos_score_mean,
           quantile_cont(positive_score, 0.1) AS pos_score_p10,
           quantile_cont(positive_score, 0.5) AS pos_score_p50,
           quantile_cont(positive_score, 0.9) AS pos_score_p90
    FROM positive_pairs
    GROUP BY run_id
),
summary AS (
    SELECT r.name AS run, r.method, r.split, r.seed, e.name AS ensemble,
           coalesce(q.queries, 0) AS queries, coalesce(p.positives, 0) AS positives,
           coalesce(n.triplets, 0) AS triplets, coalesce(n.negatives, 0) AS negatives,
           n.mean_rank, n.mean_ensemble_sim,
           coalesce(n.fallback_negatives, 0) AS fallback_negatives,
           coalesce(n.mixed_random_negatives, 0) AS mixed_random_negatives,
           coalesce(n.same_document_negatives, 0) AS same_document_negatives,
           coalesce(r.params ->> 'positive', 'method') AS positive_rule,
           TRY_CAST(r.stats ->> 'positive_own_best_differs' AS BIGINT) AS own_best_differs,
           q.neg_per_query_min, q.neg_per_query_median, q.neg_per_query_max,
           n.neg_score_mean, n.neg_score_p10, n.neg_score_p50, n.neg_score_p90,
           p.pos_score_mean, p.pos_score_p10, p.pos_score_p50, p.pos_score_p90,
           TRY_CAST(r.stats ->> 'dropped_false_negatives' AS BIGINT) AS dropped_false_negatives,
           TRY_CAST(r.stats ->> 'short_pairs' AS BIGINT) AS short_pairs,
           TRY_CAST(r.stats ->> 'short_queries' AS BIGINT) AS short_queries,
           n.cluster_agreement,
           r.cluster_run_id, r.code_version, r.created_at, r.run_id
    FROM mining_runs r
    LEFT JOIN ensembles e ON e.ensemble_id = r.ensemble_id
    LEFT JOIN per_query_stats q ON q.run_id = r.run_id
    LEFT JOIN negative_scores n ON n.run_id = r.run_id
    LEFT JOIN positive_scores p ON p.run_id = r.run_id
)
SELECT * FROM summary
