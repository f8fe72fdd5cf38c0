-- Rule: every triplet points at rows that exist: its run, query, both chunks and both documents,
-- and each chunk belongs to the document the triplet names. Empty when the rule holds.
WITH refs AS (
    SELECT t.run_id, t.query_id, 'positive' AS role, t.positive_chunk_id AS chunk_id,
           t.positive_doc_id AS doc_id, t.negative_chunk_id
    FROM triplets t
    UNION ALL
    SELECT t.run_id, t.query_id, 'negative', t.negative_chunk_id, t.negative_doc_id, t.negative_chunk_id
    FROM triplets t
),
problems AS (
    SELECT f.run_id, f.query_id, f.role, f.chunk_id, f.doc_id, f.negative_chunk_id,
           CASE
               WHEN r.run_id IS NULL THEN 'mining run missing'
               WHEN q.query_id IS NULL THEN 'query missing'
               WHEN c.chunk_id IS NULL THEN 'chunk missing'
               WHEN d.doc_id IS NULL THEN 'document missing'
               WHEN c.doc_id <> f.doc_id THEN 'chunk belongs to document ' || c.doc_id
           END AS problem
    FROM refs f
    LEFT JOIN mining_runs r ON r.run_id = f.run_id
    LEFT JOIN queries q ON q.query_id = f.query_id
    LEFT JOIN chunks c ON c.chunk_id = f.chunk_id
    LEFT JOIN documents d ON d.doc_id = f.doc_id
)
SELECT coalesce(r.name, p.run_id) AS run, p.query_id, p.role, p.chunk_id, p.doc_id,
       p.negative_chunk_id, p.problem
FROM problems p
LEFT JOIN mining_runs r ON r.run_id = p.run_id
WHERE p.problem IS NOT NULL
ORDER BY run, p.query_id, p.negative_chunk_id, p.role
