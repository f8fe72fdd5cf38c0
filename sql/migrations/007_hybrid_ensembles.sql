-- Hybrid ensembles and tuned weights (hnm_db.models.ensemble, hnm_db.models.tune).
--   ensembles.bm25: NULL for a dense ensemble; for a hybrid, the sparse member as JSON
--                   {"weight": W, "k1": .., "b": .., "epsilon": .., "tokenizer": .., "depth": D}:
--                   score = ensemble cosine + W x BM25 min-max normalised per query over the union of
--                   the dense and BM25 top-D lists. The dense members and their weights stay in
--                   `members`, and `ensemble_vectors` hold the dense part only (K-means works on it).
-- Rows written before this migration are dense ensembles (bm25 NULL).
ALTER TABLE ensembles ADD COLUMN bm25 JSON;

-- One row per ensemble whose weights `hnm-db ensemble tune` fitted: the ensemble it was tuned from, the
-- dev queries (carved, seeded, from the train split only), the search settings, the best dev nDCG@10 and
-- the source's own dev nDCG@10 on the same queries, and every weight vector tried
-- (trace: [{"step", "phase", "weights": {member: w}, "ndcg@10"}]). Weights here are on the simplex
-- (dense members and BM25 sum to 1); the tuned ensemble's row holds the same weights rescaled to the
-- ensemble convention (dense weights sum to 1, BM25 weight relative to them).
CREATE TABLE ensemble_tunings (
    ensemble_id        VARCHAR PRIMARY KEY,
    source_ensemble_id VARCHAR NOT NULL,
    split              VARCHAR NOT NULL,
    dev_queries        INTEGER NOT NULL,
    params             JSON NOT NULL,
    weights            JSON NOT NULL,
    dev_score          DOUBLE NOT NULL,
    source_dev_score   DOUBLE NOT NULL,
    trace              JSON NOT NULL,
    created_at         TIMESTAMP NOT NULL DEFAULT current_timestamp
);
