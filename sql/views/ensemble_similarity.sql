-- Ensemble similarity of two texts: the dot product of their ensemble vectors, which equals the
-- weighted mean of the member models' cosine similarities (see hnm_db/ensemble.py).
-- ensemble_similarity(ensemble_name, role_a, hash_a, role_b, hash_b) for any roles ('query' | 'doc');
-- ensemble_sim(ensemble_name, query_hash, doc_hash) for the usual query-to-chunk case.
-- For a hybrid ensemble (ensembles.bm25 set) this is its dense part only: the BM25 term is min-max
-- normalised over a query's whole candidate list, which one pair of texts does not have.
-- NULL when the ensemble or either vector is missing. Example:
--   SELECT c.chunk_id, ensemble_sim('ens', q.content_hash, c.content_hash) AS score
--   FROM queries q, chunks c WHERE q.query_id = 'q1' ORDER BY score DESC LIMIT 10;
CREATE OR REPLACE MACRO ensemble_similarity(ensemble_name, role_a, hash_a, role_b, hash_b) AS (
    WITH ens AS (
        SELECT ensemble_id FROM ensembles WHERE name = ensemble_name
    ),
    vec_a AS (
        SELECT v.vec FROM ensemble_vectors v JOIN ens USING (ensemble_id)
        WHERE v.role = role_a AND v.content_hash = hash_a
    ),
    vec_b AS (
        SELECT v.vec FROM ensemble_vectors v JOIN ens USING (ensemble_id)
        WHERE v.role = role_b AND v.content_hash = hash_b
    )
    SELECT list_inner_product(vec_a.vec, vec_b.vec) FROM vec_a, vec_b
);

CREATE OR REPLACE MACRO ensemble_sim(ensemble_name, query_hash, doc_hash) AS
    ensemble_similarity(ensemble_name, 'query', query_hash, 'doc', doc_hash);
