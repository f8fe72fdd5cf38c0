-- Passage-level judgements (hnm_db.sources.ingest, kind 'spans'): the character range
-- [start_char, end_char) of documents.text that answers the query, e.g. QMSum's spans/<split>.tsv.
-- Ingest checks 0 <= start_char < end_char <= length of the document's text; ranges of one query may
-- overlap (annotators do that). The view chunk_qrels joins them to chunks through chunks' offsets.
CREATE TABLE qrel_spans (
    query_id   VARCHAR NOT NULL,
    doc_id     VARCHAR NOT NULL,
    start_char INTEGER NOT NULL,
    end_char   INTEGER NOT NULL,
    score      INTEGER NOT NULL,
    split      VARCHAR NOT NULL,
    PRIMARY KEY (query_id, doc_id, start_char, end_char, split)
);
