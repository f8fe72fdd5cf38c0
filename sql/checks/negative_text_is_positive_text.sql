-- Rule: a negative's text is never identical to the text of a chunk of a judged-relevant document for
-- its query (a duplicate document under another id is still a positive). Any split.
-- Returns the offending triplet rows; empty when the rule holds.
WITH negative_texts AS (
    SELECT triplets.run_id, triplets.query_id, triplets.negative_chunk_id, chunks.content_hash
    FROM triplets
    JOIN chunks ON chunks.chunk_id = triplets.negative_chunk_id
)
SELECT DISTINCT negative_texts.run_id, negative_texts.query_id, negative_texts.negative_chunk_id,
       mining_positives.doc_id AS positive_doc_id, mining_positives.split AS judged_in_split
FROM negative_texts
JOIN mining_positives
  ON mining_positives.query_id = negative_texts.query_id
 AND mining_positives.content_hash = negative_texts.content_hash;
