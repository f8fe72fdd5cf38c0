-- The whole data model of ../shared/DESIGN.md, created empty so `SHOW TABLES` shows its shape from day one.
-- No foreign keys: DuckDB implements UPDATE as delete + insert, which trips FK checks; the rules are
-- checked by the queries in sql/checks/ instead (hnm-db audit --check).
-- Texts are keyed by `content_hash`: blake2b-128 hex of the NFC, whitespace-collapsed text (hnm_db.sources.text).
-- `role` is 'query' or 'doc': the same text embedded as a query and as a passage may differ (prompts).

CREATE TABLE documents (
    doc_id       VARCHAR PRIMARY KEY,
    title        VARCHAR,
    text         VARCHAR NOT NULL,
    source       VARCHAR,
    content_hash VARCHAR NOT NULL,
    meta         JSON,
    ingested_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE queries (
    query_id     VARCHAR PRIMARY KEY,
    text         VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    meta         JSON,
    ingested_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE qrels (
    query_id VARCHAR NOT NULL,
    doc_id   VARCHAR NOT NULL,
    score    INTEGER NOT NULL,
    split    VARCHAR NOT NULL,
    PRIMARY KEY (query_id, doc_id, split)
);

-- Assignment of queries to splits for data ingested without one (hnm-db split); see views/query_splits.sql.
CREATE TABLE query_split_assignments (
    query_id VARCHAR PRIMARY KEY,
    split    VARCHAR NOT NULL,
    seed     BIGINT NOT NULL,
    ratio    DOUBLE NOT NULL
);

-- `text` is exactly what a model embeds (the title may be prepended, see `chunker`);
-- start_char/end_char locate the slice of documents.text it was cut from.
CREATE TABLE chunks (
    chunk_id     VARCHAR PRIMARY KEY,
    doc_id       VARCHAR NOT NULL,
    ord          INTEGER NOT NULL,
    text         VARCHAR NOT NULL,
    start_char   INTEGER NOT NULL,
    end_char     INTEGER NOT NULL,
    content_hash VARCHAR NOT NULL,
    chunker      JSON NOT NULL
);

-- fingerprint covers weights, tokenizer, prompts, pooling and max length: a change is a new model_id.
CREATE TABLE models (
    model_id       VARCHAR PRIMARY KEY,
    name           VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    fingerprint    VARCHAR NOT NULL UNIQUE,
    dim            INTEGER NOT NULL,
    max_seq_length INTEGER,
    query_prompt   VARCHAR,
    doc_prompt     VARCHAR,
    normalize      BOOLEAN NOT NULL DEFAULT TRUE,
    pooling        VARCHAR,
    meta           JSON,
    created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE embeddings (
    model_id     VARCHAR NOT NULL,
    role         VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    vec          FLOAT[] NOT NULL,
    PRIMARY KEY (model_id, role, content_hash)
);

-- members: [{"model_id": .., "weight": ..}] with weights summing to 1.
CREATE TABLE ensembles (
    ensemble_id VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL UNIQUE,
    members     JSON NOT NULL,
    dim         INTEGER NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- vec = concat_i sqrt(w_i) * v_i / |v_i|, so vec_a . vec_b = sum_i w_i cos_i(a, b).
CREATE TABLE ensemble_vectors (
    ensemble_id  VARCHAR NOT NULL,
    role         VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    vec          FLOAT[] NOT NULL,
    PRIMARY KEY (ensemble_id, role, content_hash)
);

CREATE TABLE cluster_runs (
    cluster_run_id VARCHAR PRIMARY KEY,
    ensemble_id    VARCHAR NOT NULL,
    k              INTEGER NOT NULL,
    seed           BIGINT NOT NULL,
    algorithm      VARCHAR NOT NULL,
    inertia        DOUBLE,
    params         JSON NOT NULL,
    created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE cluster_centroids (
    cluster_run_id VARCHAR NOT NULL,
    cluster        INTEGER NOT NULL,
    size           INTEGER NOT NULL,
    vec            FLOAT[] NOT NULL,
    PRIMARY KEY (cluster_run_id, cluster)
);

CREATE TABLE cluster_assignments (
    cluster_run_id VARCHAR NOT NULL,
    role           VARCHAR NOT NULL,
    content_hash   VARCHAR NOT NULL,
    cluster        INTEGER NOT NULL,
    distance       DOUBLE NOT NULL,
    PRIMARY KEY (cluster_run_id, role, content_hash)
);

CREATE TABLE mining_runs (
    run_id         VARCHAR PRIMARY KEY,
    name           VARCHAR NOT NULL UNIQUE,
    method         VARCHAR NOT NULL,
    split          VARCHAR NOT NULL,
    params         JSON NOT NULL,
    seed           BIGINT NOT NULL,
    ensemble_id    VARCHAR,
    cluster_run_id VARCHAR,
    models         JSON,
    code_version   VARCHAR NOT NULL,
    created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    stats          JSON
);

CREATE TABLE triplets (
    run_id            VARCHAR NOT NULL,
    query_id          VARCHAR NOT NULL,
    positive_doc_id   VARCHAR NOT NULL,
    positive_chunk_id VARCHAR NOT NULL,
    negative_doc_id   VARCHAR NOT NULL,
    negative_chunk_id VARCHAR NOT NULL,
    rank              INTEGER NOT NULL,
    score             DOUBLE,
    positive_score    DOUBLE,
    member_scores     MAP(VARCHAR, DOUBLE),
    query_cluster     INTEGER,
    negative_cluster  INTEGER,
    split             VARCHAR NOT NULL,
    PRIMARY KEY (run_id, query_id, positive_chunk_id, negative_chunk_id)
);

CREATE TABLE training_runs (
    training_run_id VARCHAR PRIMARY KEY,
    name            VARCHAR NOT NULL UNIQUE,
    mining_run_id   VARCHAR NOT NULL,
    base_model      VARCHAR NOT NULL,
    loss            VARCHAR NOT NULL,
    params          JSON NOT NULL,
    seed            BIGINT NOT NULL,
    loss_curve      JSON,
    output_path     VARCHAR,
    fingerprint     VARCHAR,
    status          VARCHAR NOT NULL,
    stats           JSON,
    started_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    finished_at     TIMESTAMP
);

-- Re-ranker scores keyed by the scoring model's fingerprint and the (query text, passage text) hashes,
-- so a repeated evaluation re-uses them.
CREATE TABLE eval_scores (
    model_fingerprint VARCHAR NOT NULL,
    query_hash        VARCHAR NOT NULL,
    passage_hash      VARCHAR NOT NULL,
    max_length        INTEGER NOT NULL,
    score             DOUBLE NOT NULL,
    PRIMARY KEY (model_fingerprint, query_hash, passage_hash, max_length)
);

CREATE TABLE eval_results (
    eval_id       VARCHAR PRIMARY KEY,
    split         VARCHAR NOT NULL,
    first_stage   VARCHAR NOT NULL,
    k             INTEGER NOT NULL,
    model         VARCHAR NOT NULL,
    model_fingerprint VARCHAR,
    training_run_id   VARCHAR,
    metrics       JSON NOT NULL,
    params        JSON,
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);
