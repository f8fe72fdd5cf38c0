-- Small key/value facts about the database file itself. `views_digest` is a hash of the schema version
-- and every view's and macro's SQL (sql/views) and `views_objects` the JSON list of the view and macro
-- names, both written when the views are (re)created: opening a database whose views already match this
-- hnm-db's SQL, with none of them dropped, skips re-creating them (hnm_db.db.Database.create_views).
CREATE TABLE meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
