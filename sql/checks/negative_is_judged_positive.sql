-- Rule: a negative is never a judged-relevant document for its query (qrels score > 0), in ANY split,
-- whichever chunk of the document was taken. The document is read both from the triplet and from the
-- chunk it names, so a triplet whose negative_doc_id disagrees with its chunk cannot hide a positive.
-- Empty when the rule holds; otherwise one row per offending triplet and judgement.
WITH negatives AS (
    SELECT t.run_id, t.query_id, t.positive_chunk_id, t.negative_chunk_id, t.negative_doc_id,
           c.doc_id AS chunk_doc_id
    FROM triplets t
    LEFT JOIN chunks c ON c.chunk_id = t.negative_chunk_id
),
judged_negatives AS (
    SELECT n.*, q.doc_id AS judged_doc_id, q.split AS judged_in_split, q.score AS qrel_score
    FROM negatives n
    JOIN qrels q
      ON q.query_id = n.query_id
     AND q.score > 0
     AND (q.doc_id = n.negative_doc_id OR q.doc_id = n.chunk_doc_id)
)
SELECT r.name AS run, j.query_id, j.positive_chunk_id, j.negative_chunk_id, j.negative_doc_id,
       j.judged_doc_id, j.judged_in_split, j.qrel_score
FROM judged_negatives j
LEFT JOIN mining_runs r ON r.run_id = j.run_id
ORDER BY run, j.query_id, j.negative_chunk_id
