-- Where each negative came from inside its run, for runs that mix sources (hnm_db.mining.mine):
--   negative_method: the method that produced this row's negative: the run's own method, or 'random'
--                    for the seeded random negatives a hard run mixes in (MiningParams.mix_random);
--   fallback:        true when the negative lies below range_max and was taken only because the
--                    window left its (query, positive) pair short (MiningParams.fallback_depth).
-- Rows written before this migration came from the run's method and its window.
ALTER TABLE triplets ADD COLUMN negative_method VARCHAR;
ALTER TABLE triplets ADD COLUMN fallback BOOLEAN DEFAULT false;
UPDATE triplets SET negative_method = (SELECT m.method FROM mining_runs m WHERE m.run_id = triplets.run_id),
                    fallback = false;

-- Each evaluation's metrics per query ({query_id: {metric: value}}), so two systems can be compared
-- with a paired test over queries (hnm_db.reranker.evaluate.paired_test). NULL for results stored before.
ALTER TABLE eval_results ADD COLUMN per_query JSON;
