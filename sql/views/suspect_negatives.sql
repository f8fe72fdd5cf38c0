-- Negatives worth a human look, one row per (triplet, reason):
--   'score >= positive': the run's own score puts the negative at or above its positive (a likely
--       false negative the guard let through, e.g. with max_score_ratio >= 1 or random sampling);
--   'reranker: negative >= positive': a cross-encoder with scores in eval_scores (same model
--       fingerprint and max_length for both pairs) scores the negative at or above the positive;
--   'reranker score >= threshold': that cross-encoder's score for the negative reaches a threshold
--       you set first with  SET VARIABLE suspect_reranker_threshold = 0.9;  (off when unset);
--   'dropped by denoised run NAME': `hnm-db denoise` wrote run NAME without this negative (view
--       denoised_negatives); score and reference_score are that cross-encoder's logits of the negative
--       and of its positive (NULL while the positive pair is unscored).
-- Reranker scores are looked up by the texts' content hashes, so they apply to any run.
CREATE OR REPLACE VIEW suspect_negatives AS
WITH scored AS (
    SELECT t.*, q.content_hash AS query_hash, pc.content_hash AS positive_hash,
           nc.content_hash AS negative_hash
    FROM triplets t
    JOIN queries q ON q.query_id = t.query_id
    JOIN chunks pc ON pc.chunk_id = t.positive_chunk_id
    JOIN chunks nc ON nc.chunk_id = t.negative_chunk_id
),
own_score AS (
    SELECT run_id, query_id, positive_chunk_id, negative_chunk_id, negative_doc_id, rank,
           'score >= positive' AS reason, NULL AS reranker, score, positive_score AS reference_score
    FROM triplets
    WHERE score >= positive_score
),
reranker_pairs AS (
    SELECT s.run_id, s.query_id, s.positive_chunk_id, s.negative_chunk_id, s.negative_doc_id, s.rank,
           en.model_fingerprint AS reranker, en.score AS negative_score, ep.score AS positive_score
    FROM scored s
    JOIN eval_scores en ON en.query_hash = s.query_hash AND en.passage_hash = s.negative_hash
    LEFT JOIN eval_scores ep
      ON ep.query_hash = s.query_hash AND ep.passage_hash = s.positive_hash
     AND ep.model_fingerprint = en.model_fingerprint AND ep.max_length = en.max_length
),
reranker_vs_positive AS (
    SELECT run_id, query_id, positive_chunk_id, negative_chunk_id, negative_doc_id, rank,
           'reranker: negative >= positive' AS reason, reranker, negative_score, positive_score
    FROM reranker_pairs
    WHERE negative_score >= positive_score
),
reranker_threshold AS (
    SELECT run_id, query_id, positive_chunk_id, negative_chunk_id, negative_doc_id, rank,
           'reranker score >= threshold' AS reason, reranker, negative_score,
           CAST(getvariable('suspect_reranker_threshold') AS DOUBLE)
    FROM reranker_pairs
    WHERE negative_score >= CAST(getvariable('suspect_reranker_threshold') AS DOUBLE)
),
denoised AS (
    SELECT p.run_id, d.query_id, d.positive_chunk_id, d.negative_chunk_id, d.negative_doc_id, d.rank,
           'dropped by denoised run ' || d.run AS reason, d.reranker, d.negative_logit, d.positive_logit
    FROM denoised_negatives d
    JOIN mining_runs p ON p.name = d.parent_run
),
suspects AS (
    SELECT * FROM own_score
    UNION ALL
    SELECT * FROM reranker_vs_positive
    UNION ALL
    SELECT * FROM reranker_threshold
    UNION ALL
    SELECT * FROM denoised
)
SELECT r.name AS run, r.method, s.query_id, s.positive_chunk_id, s.negative_chunk_id, s.negative_doc_id,
       s.rank, s.reason, s.reranker, s.score, s.reference_score,
       q.text AS query_text, nc.text AS negative_text
FROM suspects s
JOIN mining_runs r ON r.run_id = s.run_id
LEFT JOIN queries q ON q.query_id = s.query_id
LEFT JOIN chunks nc ON nc.chunk_id = s.negative_chunk_id
