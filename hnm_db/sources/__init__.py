"""Documents in: ingest (BEIR folders, tables, files, URLs; tables ``documents``, ``queries``, ``qrels``),
text extraction (HTML, PDF), chunking (``chunks``) and the seeded query split
(``query_split_assignments``)."""
