-- The text every mining run read: one row per chunk a run's triplets name (as positive or negative),
-- with the chunk's and its document's content_hash at the moment the run was written
-- (hnm_db.audit.checks.record_run_sources, called by the mining stage inside its write transaction).
-- Triplets store ids, not texts, so without this snapshot a document re-ingested with different
-- text would silently change what an old run's rows mean; sql/checks/negative_doc_changed_since_mining.sql
-- compares these hashes with the current ones.
-- A separate table rather than extra triplets columns: one row per chunk instead of per triplet, and
-- no change to the column list that writers of `triplets` rely on.
CREATE TABLE mining_run_sources (
    run_id     VARCHAR NOT NULL,
    chunk_id   VARCHAR NOT NULL,
    doc_id     VARCHAR NOT NULL,
    chunk_hash VARCHAR NOT NULL,
    doc_hash   VARCHAR NOT NULL,
    PRIMARY KEY (run_id, chunk_id)
);
