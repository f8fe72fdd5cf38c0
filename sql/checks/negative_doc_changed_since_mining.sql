-- Rule: the texts a mining run chose from are still the texts its triplets point at.
-- Triplets store ids, not texts: if a document is re-ingested (or re-chunked) with different text
-- after mining, its old rows silently mean something else. One row per (run, chunk) that changed,
-- for negatives and positives alike, with how many triplets of the run use it in each role.
-- Exact for runs with a hash snapshot in mining_run_sources (written by the mining stage through
-- hnm_db.audit.checks.record_run_sources): a chunk's or its document's content_hash differs from the one
-- recorded. For runs (or chunks of a run) without a snapshot it falls back to time: a document
-- ingested after the run was created (ingest re-stamps ingested_at only when a document's text
-- changes, so this is exact for whole re-ingests, but misses a re-chunking that kept the document).
-- Deleted chunks and documents are reported by triplet_chunk_or_doc_missing instead.
WITH snapshot_changes AS (
    SELECT s.run_id, s.chunk_id, s.doc_id,
           CASE
               WHEN c.content_hash <> s.chunk_hash THEN 'chunk text changed since mining'
               WHEN d.content_hash <> s.doc_hash THEN 'document text changed since mining'
           END AS change
    FROM mining_run_sources s
    JOIN chunks c ON c.chunk_id = s.chunk_id
    JOIN documents d ON d.doc_id = c.doc_id
),
run_chunks AS (
    SELECT run_id, positive_chunk_id AS chunk_id FROM triplets
    UNION
    SELECT run_id, negative_chunk_id FROM triplets
),
unsnapshotted_chunks AS (
    SELECT rc.run_id, rc.chunk_id FROM run_chunks rc
    ANTI JOIN mining_run_sources s ON s.run_id = rc.run_id AND s.chunk_id = rc.chunk_id
),
time_changes AS (
    SELECT u.run_id, u.chunk_id, d.doc_id,
           'document ingested after the run (no hash snapshot)' AS change
    FROM unsnapshotted_chunks u
    JOIN mining_runs r ON r.run_id = u.run_id
    JOIN chunks c ON c.chunk_id = u.chunk_id
    JOIN documents d ON d.doc_id = c.doc_id
    WHERE d.ingested_at > r.created_at
),
changes AS (
    SELECT * FROM snapshot_changes WHERE change IS NOT NULL
    UNION ALL
    SELECT * FROM time_changes
),
usage AS (
    SELECT ch.run_id, ch.chunk_id,
           count(*) FILTER (WHERE t.negative_chunk_id = ch.chunk_id) AS negative_triplets,
           count(*) FILTER (WHERE t.positive_chunk_id = ch.chunk_id) AS positive_triplets
    FROM changes ch
    JOIN triplets t
      ON t.run_id = ch.run_id
     AND (t.negative_chunk_id = ch.chunk_id OR t.positive_chunk_id = ch.chunk_id)
    GROUP BY ch.run_id, ch.chunk_id
)
SELECT r.name AS run, ch.chunk_id, ch.doc_id, ch.change, u.negative_triplets, u.positive_triplets
FROM changes ch
JOIN usage u ON u.run_id = ch.run_id AND u.chunk_id = ch.chunk_id
LEFT JOIN mining_runs r ON r.run_id = ch.run_id
ORDER BY run, ch.chunk_id
