-- Negatives a denoised run dropped (hnm_db.mining.denoise), one row per triplet of its parent run that the
-- denoised run does not keep, with the cross-encoder's scores and the texts to read.
--   negative_logit / positive_logit: the raw scores in eval_scores (model fingerprint and max length
--       recorded in the run's params.denoise); positive_logit is NULL while the positive pair is unscored
--       (a threshold rule does not score positives);
--   negative_prob / positive_prob: sigmoid of those logits, the scale the rule compares:
--       rule 'threshold': negative_prob > rule_value; rule 'relative': negative_prob > rule_value * positive_prob.
CREATE OR REPLACE VIEW denoised_negatives AS
WITH denoised AS (
    SELECT run_id, name AS run,
           json_extract_string(params, '$.denoise.parent_run_id') AS parent_run_id,
           json_extract_string(params, '$.denoise.model_fingerprint') AS reranker,
           CAST(json_extract_string(params, '$.denoise.max_length') AS INTEGER) AS max_length,
           json_extract_string(params, '$.denoise.rule') AS rule,
           CAST(coalesce(json_extract_string(params, '$.denoise.threshold'),
                         json_extract_string(params, '$.denoise.relative')) AS DOUBLE) AS rule_value
    FROM mining_runs
    WHERE json_extract_string(params, '$.denoise.parent_run_id') IS NOT NULL
),
dropped AS (
    SELECT d.run, p.name AS parent_run, d.rule, d.rule_value, d.reranker, d.max_length,
           t.query_id, t.positive_chunk_id, t.negative_chunk_id, t.negative_doc_id, t.rank, t.fallback
    FROM denoised d
    JOIN mining_runs p ON p.run_id = d.parent_run_id
    JOIN triplets t ON t.run_id = d.parent_run_id
    ANTI JOIN triplets c
      ON c.run_id = d.run_id AND c.query_id = t.query_id AND c.positive_chunk_id = t.positive_chunk_id
     AND c.negative_chunk_id = t.negative_chunk_id
),
scored AS (
    SELECT x.*, q.text AS query_text, pc.text AS positive_text, nc.text AS negative_text,
           en.score AS negative_logit, ep.score AS positive_logit
    FROM dropped x
    JOIN queries q ON q.query_id = x.query_id
    JOIN chunks pc ON pc.chunk_id = x.positive_chunk_id
    JOIN chunks nc ON nc.chunk_id = x.negative_chunk_id
    LEFT JOIN eval_scores en
      ON en.model_fingerprint = x.reranker AND en.max_length = x.max_length
     AND en.query_hash = q.content_hash AND en.passage_hash = nc.content_hash
    LEFT JOIN eval_scores ep
      ON ep.model_fingerprint = x.reranker AND ep.max_length = x.max_length
     AND ep.query_hash = q.content_hash AND ep.passage_hash = pc.content_hash
)
SELECT run, parent_run, rule, rule_value, query_id, positive_chunk_id, negative_chunk_id, negative_doc_id,
       rank, fallback, reranker, negative_logit, positive_logit,
       1 / (1 + exp(-negative_logit)) AS negative_prob, 1 / (1 + exp(-positive_logit)) AS positive_prob,
       query_text, positive_text, negative_text
FROM scored
