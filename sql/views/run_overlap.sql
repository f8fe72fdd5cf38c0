-- How much two mining runs agree: for every pair of runs and every query both cover, the Jaccard
-- index of their negative sets (distinct negative chunks over all the query's positives; also on
-- documents), averaged over those shared queries. 1.0 = the same negatives, 0.0 = disjoint.
-- Each unordered pair appears once (run_a sorts before run_b by name).
CREATE OR REPLACE VIEW run_overlap AS
WITH negative_sets AS (
    SELECT r.name AS run, t.query_id,
           list(DISTINCT t.negative_chunk_id) AS chunks,
           list(DISTINCT t.negative_doc_id) AS docs
    FROM triplets t
    JOIN mining_runs r ON r.run_id = t.run_id
    GROUP BY r.name, t.query_id
),
per_query AS (
    SELECT a.run AS run_a, b.run AS run_b, a.query_id,
           len(list_intersect(a.chunks, b.chunks))
               / len(list_distinct(list_concat(a.chunks, b.chunks))) AS chunk_jaccard,
           len(list_intersect(a.docs, b.docs))
               / len(list_distinct(list_concat(a.docs, b.docs))) AS doc_jaccard
    FROM negative_sets a
    JOIN negative_sets b ON b.query_id = a.query_id AND a.run < b.run
),
overlap AS (
    SELECT run_a, run_b, count(*) AS shared_queries,
           avg(chunk_jaccard) AS mean_jaccard, avg(doc_jaccard) AS mean_doc_jaccard
    FROM per_query
    GROUP BY run_a, run_b
)
SELECT * FROM overlap
