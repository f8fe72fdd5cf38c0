-- One row per stored evaluation result, metrics unpacked, with the training and mining provenance of
-- trained models (NULL for first stages and untuned bases). `hnm-db eval --compare` prints this view.
-- aggregate: how document scores came from chunk scores (eval --aggregate; 'max' for results stored
-- before it existed); span_recall@10 and chunk_ndcg@10: passage-level metrics over the queries with
-- judged spans (NULL without spans).
CREATE OR REPLACE VIEW eval_summary AS
WITH results AS (
    SELECT
        e.eval_id,
        e.split,
        e.first_stage,
        e.k,
        e.model,
        e.model_fingerprint,
        e.training_run_id,
        e.created_at,
        CAST(e.params ->> 'interpolate' AS DOUBLE) AS interpolate,
        coalesce(e.params ->> 'aggregate', 'max') AS aggregate,
        CAST(e.metrics ->> 'mrr@10' AS DOUBLE) AS "mrr@10",
        CAST(e.metrics ->> 'ndcg@10' AS DOUBLE) AS "ndcg@10",
        CAST(e.metrics ->> 'p@1' AS DOUBLE) AS "p@1",
        CAST(e.metrics ->> 'p@5' AS DOUBLE) AS "p@5",
        CAST(e.metrics ->> 'recall@k' AS DOUBLE) AS "recall@k",
        CAST(e.metrics ->> 'queries' AS INTEGER) AS queries,
        CAST(e.metrics ->> 'span_recall@10' AS DOUBLE) AS "span_recall@10",
        CAST(e.metrics ->> 'chunk_ndcg@10' AS DOUBLE) AS "chunk_ndcg@10"
    FROM eval_results e
),
provenance AS (
    SELECT t.training_run_id, t.name AS training_run, t.loss, t.seed, t.params AS training_params,
           m.name AS mining_run, m.method
    FROM training_runs t
    LEFT JOIN mining_runs m ON m.run_id = t.mining_run_id
),
summary AS (
    SELECT r.split, r.first_stage, r.k, r.model, p.mining_run, p.method, p.loss, p.seed, r.interpolate,
           r."mrr@10", r."ndcg@10", r."p@1", r."p@5", r."recall@k", r.queries,
           p.training_run, p.training_params, r.model_fingerprint, r.eval_id, r.created_at,
           r.aggregate, r."span_recall@10", r."chunk_ndcg@10"
    FROM results r
    LEFT JOIN provenance p USING (training_run_id)
)
SELECT * FROM summary
