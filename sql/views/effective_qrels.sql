-- Every judgement with the split it counts in: the split it was ingested with, or, for qrels ingested
-- without one ('unsplit'), the split `hnm-db split` assigned to its query (see query_splits). Mining
-- (mining_positives) and evaluation (hnm_db.reranker.evaluate.load_qrels) both read judgements through it.
CREATE OR REPLACE VIEW effective_qrels AS
SELECT query_splits.split, qrels.query_id, qrels.doc_id, qrels.score
FROM qrels
JOIN query_splits
  ON query_splits.query_id = qrels.query_id
 AND (qrels.split = query_splits.split
      OR (query_splits.origin = 'assigned' AND qrels.split = 'unsplit'));
