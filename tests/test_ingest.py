"""Ingest (hnm_db.sources.ingest): BEIR folders, tables, files and URLs into documents, queries, qrels.

Every bad-input test checks the message and that the database is exactly as before.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import polars as pl
import pytest
from fixtures.corpus import CORPUS, QRELS, QUERIES, article_html, write_pdf
from fixtures.databases import db_digest

import hnm_db
from hnm_db.errors import DuplicateId, InputError, InvalidParams, SourceUnavailable, UnknownIds
from hnm_db.sources.ingest import (
    TableSpec,
    document_hash,
    ingest_beir,
    ingest_files,
    ingest_table,
    ingest_urls,
)
from hnm_db.sources.text import content_hash


def ingest_rows(db: hnm_db.Database) -> dict[str, list[tuple]]:
    """Every row of the three ingest tables, sorted (timestamps included)."""
    return {
        t: sorted(db.store.execute(f"SELECT * FROM {t}").fetchall(), key=str)
        for t in ("documents", "queries", "qrels")
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def loaded(db: hnm_db.Database, beir_dir: Path) -> hnm_db.Database:
    """The tiny BEIR corpus ingested once."""
    ingest_beir(db.store, beir_dir)
    return db


# -- BEIR ---------------------------------------------------------------------------------------------
def test_beir_folder_gives_documents_queries_and_qrels_split_by_file_name(db, beir_dir):
    summary = ingest_beir(db.store, beir_dir)
    assert (summary.counts["documents"].new, summary.counts["queries"].new) == (len(CORPUS), len(QUERIES))
    splits = dict(db.store.execute("SELECT split, count(*) FROM qrels GROUP BY split").fetchall())
    assert splits == {
        "train": sum(s == "train" for *_, s in QRELS),
        "test": sum(s == "test" for *_, s in QRELS),
    }
    doc = db.store.execute(
        "SELECT title, text, content_hash, source FROM documents WHERE doc_id = 'astro-0'"
    ).fetchone()
    assert doc[0] == "Astro note 0" and doc[1] == CORPUS[0]["text"]
    assert doc[2] == content_hash("Astro note 0\n\n" + CORPUS[0]["text"])
    assert doc[3].endswith("corpus.jsonl")
    q = db.store.execute("SELECT text, content_hash FROM queries WHERE query_id = 'q-bio-1'").fetchone()
    assert q[1] == content_hash(q[0])


def test_reingesting_the_same_data_changes_nothing(loaded, beir_dir):
    before = db_digest(loaded)
    summary = ingest_beir(loaded.store, beir_dir)
    assert {k: (c.new, c.unchanged, c.replaced) for k, c in summary.counts.items()} == {
        "documents": (0, len(CORPUS), 0),
        "queries": (0, len(QUERIES), 0),
        "qrels": (0, len(QRELS), 0),
    }
    assert db_digest(loaded) == before
    assert "documents: 0 new, 40 unchanged" in summary.describe()


def test_extra_keys_go_to_meta(db, tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    write_jsonl(
        folder / "corpus.jsonl", [{"_id": "d1", "title": "T", "text": "x y", "lang": "en", "year": 2020}]
    )
    ingest_beir(db.store, folder)
    assert json.loads(db.scalar("SELECT meta FROM documents")) == {"lang": "en", "year": 2020}


def _changed_corpus(beir_dir: Path, doc_id: str = "astro-1", **change: str) -> None:
    rows = [json.loads(line) for line in (beir_dir / "corpus.jsonl").read_text().splitlines()]
    for r in rows:
        if r["_id"] == doc_id:
            r.update(change)
    write_jsonl(beir_dir / "corpus.jsonl", rows)


def test_changed_document_fails_by_default_naming_id_and_file(loaded, beir_dir):
    _changed_corpus(beir_dir, text="A completely different text.")
    before = db_digest(loaded)
    with pytest.raises(
        DuplicateId,
        match=r"corpus\.jsonl line 2: 1 known documents ids have different "
        r"content \('astro-1'\); use --on-duplicate skip or replace",
    ):
        ingest_beir(loaded.store, beir_dir)
    assert db_digest(loaded) == before


def test_on_duplicate_skip_keeps_the_stored_row(loaded, beir_dir):
    _changed_corpus(beir_dir, text="A completely different text.")
    before = db_digest(loaded)
    summary = loaded.ingest_beir(beir_dir, on_duplicate="skip")
    assert summary.counts["documents"].skipped_duplicate == 1
    assert summary.counts["documents"].unchanged == len(CORPUS) - 1
    assert db_digest(loaded) == before


def test_on_duplicate_replace_updates_the_row_and_its_ingested_at(loaded, beir_dir):
    old_at = loaded.scalar("SELECT ingested_at FROM documents WHERE doc_id = 'astro-1'")
    _changed_corpus(beir_dir, text="A completely different text.\nWith a second line.")
    time.sleep(0.01)
    summary = loaded.ingest_beir(beir_dir, on_duplicate="replace")
    assert (summary.counts["documents"].replaced, summary.counts["documents"].new) == (1, 0)
    text, h, at = loaded.store.execute(
        "SELECT text, content_hash, ingested_at FROM documents WHERE doc_id = 'astro-1'"
    ).fetchone()
    assert text == "A completely different text.\nWith a second line."
    assert h == document_hash("Astro note 1", text)
    assert at > old_at
    assert loaded.scalar("SELECT count(*) FROM documents") == len(CORPUS)


def test_a_changed_title_counts_as_a_change(loaded, beir_dir):
    _changed_corpus(beir_dir, title="A new title")
    with pytest.raises(DuplicateId, match="astro-1"):
        ingest_beir(loaded.store, beir_dir)
    loaded.ingest_beir(beir_dir, on_duplicate="replace")
    assert loaded.scalar("SELECT title FROM documents WHERE doc_id = 'astro-1'") == "A new title"


def test_stored_text_is_nfc_and_stripped_but_keeps_line_breaks(db, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": "d1", "text": "  cafe\u0301\r\n\nsecond  line \n"}])
    ingest_table(db.store, path, TableSpec("documents"))
    assert db.scalar("SELECT text FROM documents") == "caf\u00e9\n\nsecond  line"


def test_missing_beir_folder_is_reported(db, tmp_path):
    with pytest.raises(SourceUnavailable, match="nowhere: no such folder"):
        ingest_beir(db.store, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: not a BEIR folder"):
        ingest_beir(db.store, tmp_path / "empty")
    (tmp_path / "empty" / "queries.jsonl").write_text('{"_id": "q", "text": "t"}\n', encoding="utf-8")
    with pytest.raises(SourceUnavailable, match=r"corpus\.jsonl: no such file"):
        ingest_beir(db.store, tmp_path / "empty")


# -- bad input ------------------------------------------------------------------------------------------
def test_malformed_json_line_names_file_and_line(loaded, beir_dir):
    lines = (beir_dir / "queries.jsonl").read_text().splitlines()
    lines[4] = '{"_id": "q-new", "text": "unterminated'
    (beir_dir / "queries.jsonl").write_text("\n".join(lines) + "\n")
    before = db_digest(loaded)
    with pytest.raises(InputError, match=r"queries\.jsonl line 5: malformed JSON"):
        ingest_beir(loaded.store, beir_dir)
    assert db_digest(loaded) == before


def test_missing_required_field_names_file_line_and_field(loaded, tmp_path):
    path = write_jsonl(
        tmp_path / "docs.jsonl", [{"id": "n1", "text": "fine"}, {"id": "n2", "body": "no text"}]
    )
    before = db_digest(loaded)
    with pytest.raises(InputError, match=r"docs\.jsonl line 2: missing required field 'text'"):
        ingest_table(loaded.store, path, TableSpec("documents"))
    assert db_digest(loaded) == before


def test_missing_id_column_names_the_field(db, tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("question\nwhat is a star?\n")
    with pytest.raises(InputError, match=r"q\.csv line 2: missing required field '_id'"):
        ingest_table(db.store, path, TableSpec("queries", text_column="question"))
    assert ingest_rows(db) == {"documents": [], "queries": [], "qrels": []}


def test_duplicate_ids_in_one_file_name_the_id_and_both_lines(loaded, tmp_path):
    rows = [{"_id": "x1", "text": "a"}, {"_id": "x2", "text": "b"}, {"_id": "x1", "text": "c"}]
    path = write_jsonl(tmp_path / "docs.jsonl", rows)
    before = db_digest(loaded)
    with pytest.raises(DuplicateId, match=r"docs\.jsonl line 3: duplicate id 'x1', first at line 1"):
        ingest_table(loaded.store, path, TableSpec("documents"))
    assert db_digest(loaded) == before


def test_duplicate_qrel_in_one_file_names_both_lines(loaded, beir_dir):
    with open(beir_dir / "qrels" / "test.tsv", "a") as f:
        f.write("q-astro-3\tastro-3\t1\n")
    before = db_digest(loaded)
    with pytest.raises(
        DuplicateId,
        match=r"test\.tsv line 6: duplicate query_id 'q-astro-3', doc_id 'astro-3', "
        r"split 'test', first at line 2",
    ):
        ingest_beir(loaded.store, beir_dir)
    assert db_digest(loaded) == before


def test_qrels_naming_unknown_ids_fail_with_a_count_and_at_most_five_examples(loaded, tmp_path):
    path = tmp_path / "qrels.csv"
    lines = ["query_id,doc_id,score", "q-astro-0,astro-0,1"]
    lines += [f"q-ghost-{i},astro-1,1" for i in range(7)] + ["q-astro-1,no-such-doc,1"]
    path.write_text("\n".join(lines) + "\n")
    before = db_digest(loaded)
    with pytest.raises(UnknownIds) as info:
        ingest_table(loaded.store, path, TableSpec("qrels", split="dev"))
    message = str(info.value)
    assert message.startswith("8 qrels name unknown ids (7 unknown queries, 1 unknown documents), e.g. ")
    assert "query 'q-ghost-0' (" in message and "qrels.csv line 3)" in message
    assert message.count("'q-ghost-") == 5
    assert db_digest(loaded) == before


def test_qrels_may_name_ids_from_the_same_ingest_or_already_stored(db, tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "text": "one"}, {"_id": "d2", "text": "two"}])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "which one?"}])
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\n")
    ingest_beir(db.store, tmp_path)
    extra = tmp_path / "more.csv"
    extra.write_text("query-id,corpus-id\nq1,d2\n")
    summary = ingest_table(db.store, extra, TableSpec("qrels"))
    assert summary.counts["qrels"].new == 1
    assert sorted(db.store.execute("SELECT doc_id, score, split FROM qrels").fetchall()) == [
        ("d1", 2, "dev"),
        ("d2", 1, "unsplit"),
    ]


def test_empty_and_whitespace_texts_are_skipped_counted_and_reported(db, tmp_path):
    rows = [{"_id": "d1", "text": "real text"}, {"_id": "d2", "text": "   \n\t "}, {"_id": "d3", "text": ""}]
    summary = ingest_table(db.store, write_jsonl(tmp_path / "d.jsonl", rows), TableSpec("documents"))
    assert (summary.counts["documents"].new, summary.counts["documents"].skipped_empty) == (1, 2)
    assert summary.skipped[0].endswith("d.jsonl line 2: empty text, id 'd2' skipped")
    assert "1 new, 0 unchanged, 2 skipped empty" in summary.describe()
    assert db.store.execute("SELECT doc_id FROM documents").fetchall() == [("d1",)]


def test_invalid_utf8_names_file_line_and_byte_offset(loaded, beir_dir):
    data = (beir_dir / "queries.jsonl").read_bytes().split(b"\n")
    data[2] = data[2].replace(b"what", b"wh\xe9t")
    (beir_dir / "queries.jsonl").write_bytes(b"\n".join(data))
    before = db_digest(loaded)
    with pytest.raises(
        InputError, match=r"queries\.jsonl line 3: invalid UTF-8 at byte offset \d+ \(byte 0xe9\)"
    ):
        ingest_beir(loaded.store, beir_dir)
    assert db_digest(loaded) == before


def test_missing_or_unreadable_path_is_reported(loaded, tmp_path, monkeypatch):
    before = db_digest(loaded)
    with pytest.raises(SourceUnavailable, match=r"absent\.jsonl: no such file"):
        ingest_table(loaded.store, tmp_path / "absent.jsonl", TableSpec("documents"))
    with pytest.raises(SourceUnavailable, match=r"absent\.parquet: no such file"):
        ingest_table(loaded.store, tmp_path / "absent.parquet", TableSpec("documents"))
    folder = tmp_path / "looks-like.jsonl"
    folder.mkdir()
    with pytest.raises(SourceUnavailable, match="is a folder, not a file"):
        ingest_table(loaded.store, folder, TableSpec("documents"))
    locked = write_jsonl(tmp_path / "locked.jsonl", [{"_id": "z", "text": "z"}])

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(SourceUnavailable, match=r"locked\.jsonl: cannot read: Permission denied"):
        ingest_table(loaded.store, locked, TableSpec("documents"))
    assert db_digest(loaded) == before


def test_error_in_qrels_rolls_back_documents_and_queries_of_the_same_command(db, beir_dir):
    with open(beir_dir / "qrels" / "train.tsv", "a") as f:
        f.write("q-astro-0\tnot-a-doc\t1\n")
    with pytest.raises(UnknownIds, match="1 qrels name unknown ids"):
        ingest_beir(db.store, beir_dir)
    assert ingest_rows(db) == {"documents": [], "queries": [], "qrels": []}


# -- tables ---------------------------------------------------------------------------------------------
def test_jsonl_columns_and_meta_are_chosen_by_options(db, tmp_path):
    rows = [{"pid": 7, "body": "Stars burn.", "head": "On stars", "lang": "en", "src": "wiki", "noise": 1}]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    spec = TableSpec(
        "documents", id_column="pid", text_column="body", title_column="head", meta_columns=("lang", "src"),
        numbers_as_text=True,
    )  # fmt: skip
    ingest_table(db.store, path, spec)
    row = db.store.execute("SELECT doc_id, title, text, meta FROM documents").fetchone()
    assert row[:3] == ("7", "On stars", "Stars burn.")
    assert json.loads(row[3]) == {"lang": "en", "src": "wiki"}
    ingest_table(
        db.store,
        write_jsonl(tmp_path / "q.jsonl", [{"id": "q", "text": "t", "a": 1, "b": [1]}]),
        TableSpec("queries", all_meta=True),
    )
    assert json.loads(db.scalar("SELECT meta FROM queries")) == {"a": 1, "b": [1]}


def test_a_named_column_that_does_not_exist_is_an_error(db, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "1", "text": "x"}])
    with pytest.raises(InputError, match="missing required field 'body'"):
        ingest_table(db.store, path, TableSpec("documents", text_column="body"))
    with pytest.raises(InputError, match="meta column 'lang' is not in the input"):
        ingest_table(db.store, path, TableSpec("documents", meta_columns=("lang",)))


def test_csv_and_parquet_tables_ingest_queries_and_documents(db, tmp_path):
    csv_path = tmp_path / "docs.csv"
    csv_path.write_text('doc_id,title,text,year\nd1,First,"Line one\nline two",2020\nd2,,Second doc,2021\n')
    ingest_table(db.store, csv_path, TableSpec("documents", meta_columns=("year",)))
    assert db.store.execute("SELECT doc_id, title, text, meta FROM documents ORDER BY doc_id").fetchall() == [
        ("d1", "First", "Line one\nline two", '{"year": "2020"}'),
        ("d2", None, "Second doc", '{"year": "2021"}'),
    ]
    pq = tmp_path / "queries.parquet"
    pl.DataFrame({"qid": ["a", "b"], "question": ["why?", "how?"]}).write_parquet(pq)
    summary = ingest_table(db.store, pq, TableSpec("queries", id_column="qid", text_column="question"))
    assert summary.counts["queries"].new == 2


def test_parquet_errors_name_the_row(db, tmp_path):
    pq = tmp_path / "queries.parquet"
    pl.DataFrame({"id": ["a", None], "text": ["why?", "how?"]}).write_parquet(pq)
    with pytest.raises(InputError, match=r"queries\.parquet row 2: missing required field 'id'"):
        ingest_table(db.store, pq, TableSpec("queries"))


def test_changed_qrel_score_follows_the_duplicate_policy(loaded, tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("query-id,corpus-id,score\nq-astro-0,astro-0,2\n")
    with pytest.raises(DuplicateId, match="known qrels ids have different content"):
        ingest_table(loaded.store, path, TableSpec("qrels", split="train"))
    ingest_table(loaded.store, path, TableSpec("qrels", split="train", on_duplicate="replace"))
    assert loaded.scalar("SELECT score FROM qrels WHERE query_id = 'q-astro-0' AND doc_id = 'astro-0'") == 2


def test_non_integer_score_is_an_input_error(db, beir_dir):
    with open(beir_dir / "qrels" / "train.tsv", "a") as f:
        f.write("q-astro-0\tastro-9\thigh\n")
    with pytest.raises(
        InputError, match=r"train\.tsv line \d+: field 'score' must be an integer, found 'high'"
    ):
        ingest_beir(db.store, beir_dir)
    assert ingest_rows(db) == {"documents": [], "queries": [], "qrels": []}


def test_table_spec_rejects_options_of_another_kind():
    with pytest.raises(InvalidParams, match="score_column does not apply to kind 'documents'"):
        TableSpec("documents", score_column="s")
    with pytest.raises(InvalidParams, match="title_column does not apply to kind 'queries'"):
        TableSpec("queries", title_column="t")
    with pytest.raises(InvalidParams, match="meta_columns and all_meta"):
        TableSpec("documents", meta_columns=("a",), all_meta=True)
    with pytest.raises(InvalidParams, match="on_duplicate must be one of"):
        TableSpec("documents", on_duplicate="merge")


# -- files ------------------------------------------------------------------------------------------------
@pytest.fixture
def docs_folder(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("Plain text about ovens.\nSecond line.", encoding="utf-8")
    (root / "sub" / "b.md").write_text("# Dough notes\n\nKnead the dough.", encoding="utf-8")
    (root / "sub" / "c.html").write_text(article_html("comets"), encoding="utf-8")
    write_pdf(root / "d.pdf", "Hello PDF world", title="PDF Title")
    (root / "ignored.png").write_bytes(b"\x89PNG")
    (root / ".hidden.txt").write_text("hidden")
    (root / "blank.txt").write_text("  \n")
    return root


def test_files_are_extracted_with_relative_ids_titles_and_paths(db, docs_folder):
    summary = ingest_files(db.store, docs_folder)
    assert (summary.counts["documents"].new, summary.counts["documents"].skipped_empty) == (4, 1)
    rows = {
        r[0]: r[1:] for r in db.store.execute("SELECT doc_id, title, text, source FROM documents").fetchall()
    }
    assert sorted(rows) == ["a.txt", "d.pdf", "sub/b.md", "sub/c.html"]
    assert rows["a.txt"][:2] == ("a", "Plain text about ovens.\nSecond line.")
    assert rows["sub/b.md"][0] == "Dough notes"
    assert rows["sub/c.html"][0] == "Stars and Galaxies"
    assert "Paragraph 1 explains how comets form" in rows["sub/c.html"][1]
    assert "Home page link" not in rows["sub/c.html"][1]
    assert rows["d.pdf"][:2] == ("PDF Title", "Hello PDF world")
    assert rows["sub/b.md"][2] == str((docs_folder / "sub" / "b.md").resolve())
    again = ingest_files(db.store, docs_folder)
    assert (again.counts["documents"].new, again.counts["documents"].unchanged) == (0, 4)


def test_invalid_utf8_text_file_fails_the_whole_folder(loaded, docs_folder):
    (docs_folder / "sub" / "bad.txt").write_bytes(b"ok\nbad \xc3\x28 byte")
    before = db_digest(loaded)
    with pytest.raises(InputError, match=r"bad\.txt line 2: invalid UTF-8 at byte offset 7"):
        ingest_files(loaded.store, docs_folder)
    assert db_digest(loaded) == before


def test_files_from_a_missing_folder_are_reported(db, tmp_path):
    with pytest.raises(SourceUnavailable, match="no such folder"):
        ingest_files(db.store, tmp_path / "nope")


# -- URLs -------------------------------------------------------------------------------------------------
def write_urls(path: Path, urls: list[str]) -> Path:
    path.write_text("# pages to fetch\n\n" + "\n".join(urls) + "\n", encoding="utf-8")
    return path


def test_urls_are_fetched_cleaned_and_failures_reported_per_url(db, local_site, tmp_path):
    site = local_site.base
    urls = [
        f"{site}/a.html",
        f"{site}/slow",
        f"{site}/missing.html",
        f"{site}/image.png",
        local_site.refused,
        f"{site}/b.html",
        f"{site}/empty.html",
    ]
    summary = db.ingest_urls(write_urls(tmp_path / "urls.txt", urls), timeout=0.5)
    reasons = {f.source.rsplit("/", 1)[1]: f.reason for f in summary.failures}
    assert reasons == {
        "slow": "timed out after 0.5s",
        "missing.html": "HTTP 404 Not Found",
        "image.png": "not HTML (content type image/png)",
        "gone.html": "connection refused",
    }
    docs = dict(db.store.execute("SELECT doc_id, text FROM documents").fetchall())
    assert sorted(docs) == [f"{site}/a.html", f"{site}/b.html"]
    assert "Paragraph 0 explains how planets form" in docs[f"{site}/b.html"]
    assert "trackingPixel" not in docs[f"{site}/a.html"]
    counts = summary.counts["documents"]
    assert (counts.new, counts.failed, counts.skipped_empty) == (2, 4, 1)
    assert db.scalar(f"SELECT source FROM documents WHERE doc_id = '{site}/a.html'") == f"{site}/a.html"
    assert db.scalar(f"SELECT title FROM documents WHERE doc_id = '{site}/a.html'") == "Stars and Galaxies"


def test_all_urls_failing_is_an_error_and_writes_nothing(loaded, local_site, tmp_path):
    before = db_digest(loaded)
    path = write_urls(tmp_path / "urls.txt", [f"{local_site.base}/missing.html", local_site.refused])
    with pytest.raises(SourceUnavailable, match=r"all 2 URLs failed: .*missing\.html \(HTTP 404 Not Found\)"):
        loaded.ingest_urls(path, timeout=1)
    assert db_digest(loaded) == before


def test_strict_fails_on_any_url_failure_and_writes_nothing(loaded, local_site, tmp_path):
    before = db_digest(loaded)
    path = write_urls(tmp_path / "urls.txt", [f"{local_site.base}/a.html", f"{local_site.base}/image.png"])
    with pytest.raises(SourceUnavailable, match=r"1 of 2 URLs failed: .*image\.png \(not HTML"):
        loaded.ingest_urls(path, timeout=1, strict=True)
    assert db_digest(loaded) == before


def test_changed_page_follows_the_duplicate_policy(db, local_site, tmp_path):
    path = write_urls(tmp_path / "urls.txt", [f"{local_site.base}/a.html"])
    ingest_urls(db.store, path)
    local_site.pages["/a.html"] = (200, "text/html", article_html("nebulae"))
    before = db_digest(db)
    with pytest.raises(DuplicateId, match=r"urls\.txt line 3: 1 known documents ids"):
        ingest_urls(db.store, path)
    assert db_digest(db) == before
    assert db.ingest_urls(path, on_duplicate="replace").counts["documents"].replaced == 1


def test_duplicate_url_in_the_list_names_both_lines(db, local_site, tmp_path):
    path = write_urls(tmp_path / "urls.txt", [f"{local_site.base}/a.html", f"{local_site.base}/a.html"])
    with pytest.raises(DuplicateId, match=r"urls\.txt line 4: duplicate URL .*, first at line 3"):
        ingest_urls(db.store, path)
    assert ingest_rows(db) == {"documents": [], "queries": [], "qrels": []}


def test_database_api_mirrors_the_commands(db, beir_dir, tmp_path):
    assert db.ingest_beir(beir_dir).counts["documents"].new == len(CORPUS)
    path = write_jsonl(tmp_path / "more.jsonl", [{"id": "extra", "text": "extra doc"}])
    assert db.ingest_table(path, kind="documents").counts["documents"].new == 1


# -- issue 11: bad values, empty inputs, qrels of empty documents --------------------------------------
@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"_id": "s1", "text": "a\\ud800b"}', "'text'"),
        ('{"_id": "s\\udfff1", "text": "fine"}', "'_id'"),
        ('{"_id": "s1", "text": "fine", "tags": ["x", "\\ud83d"]}', "'tags'"),
        ('{"_id": "s1", "text": "fine", "\\ud800": 1}', "'\\ud800'"),
    ],
)
def test_lone_surrogate_escape_names_file_line_and_field(loaded, tmp_path, digest, line, field):
    path = tmp_path / "s.jsonl"
    path.write_text('{"_id": "ok", "text": "fine"}\n' + line + "\n", encoding="utf-8")
    before = digest(loaded)
    with pytest.raises(InputError, match=r"s\.jsonl line 2: .*holds a lone surrogate \\u[0-9a-f]{4}") as exc:
        ingest_table(loaded.store, path, TableSpec("documents", all_meta=True))
    assert (field in str(exc.value) or "a key" in str(exc.value)) and "\n" not in str(exc.value)
    assert digest(loaded) == before


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"_id": "d1", "text": NaN}', "field 'text' must be a string, found the number nan"),
        ('{"_id": "d1", "text": Infinity}', "field 'text' must be a string, found the number inf"),
        ('{"_id": "d1", "title": ["a", 1], "text": "t"}', "field 'title' must be a string, found list"),
        ('{"_id": "d1", "title": {"x": 1}, "text": "t"}', "field 'title' must be a string, found dict"),
        ('{"_id": "d\\u00001", "text": "t"}', "field '_id' holds a NUL character"),
        ('{"_id": NaN, "text": "t"}', "field '_id' must be a string, found the number nan"),
        ('{"_id": "d1", "text": "t", "year": NaN}', "field 'year' holds NaN or Infinity"),
    ],
)
def test_values_that_would_be_converted_silently_are_refused(loaded, tmp_path, digest, row, message):
    path = tmp_path / "v.jsonl"
    path.write_text(row + "\n", encoding="utf-8")
    before = digest(loaded)
    with pytest.raises(InputError, match=r"v\.jsonl line 1: ") as exc:
        ingest_table(loaded.store, path, TableSpec("documents", all_meta=True))
    assert message in str(exc.value)
    assert digest(loaded) == before


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "content", "kind", "why"),
    [
        ("e.jsonl", "", "documents", "the file is empty"),
        ("b.jsonl", "\n  \n\t\n", "queries", "only blank lines"),
        ("e.csv", "", "documents", "the file is empty"),
        ("h.csv", "_id,text\n", "documents", "a header line and no rows"),
        ("h.tsv", "query-id\tcorpus-id\tscore\n", "qrels", "a header line and no rows"),
    ],
)
def test_an_empty_input_is_an_error_naming_the_file(loaded, tmp_path, digest, name, content, kind, why):
    before = digest(loaded)
    with pytest.raises(InputError, match=re.escape(f"{name}: no records: {why}") + "$"):
        ingest_table(loaded.store, _write(tmp_path / name, content), TableSpec(kind))
    assert digest(loaded) == before


def test_empty_parquet_url_list_folder_and_beir_qrels_are_errors(loaded, tmp_path, digest):
    before = digest(loaded)
    empty_pq = tmp_path / "z.parquet"
    pl.DataFrame(schema={"_id": pl.String, "text": pl.String}).write_parquet(empty_pq)
    with pytest.raises(InputError, match=r"z\.parquet: no records: the table has no rows"):
        ingest_table(loaded.store, empty_pq, TableSpec("documents"))
    with pytest.raises(InputError, match=r"urls\.txt: no records: no URLs"):
        ingest_urls(loaded.store, _write(tmp_path / "urls.txt", "# nothing yet\n\n"))
    (tmp_path / "nofiles").mkdir()
    _write(tmp_path / "nofiles" / "notes.csv", "not a supported suffix")
    with pytest.raises(InputError, match=r"nofiles: no records: no \.txt, \.md"):
        ingest_files(loaded.store, tmp_path / "nofiles")
    beir = tmp_path / "beir-empty-qrels"
    beir.mkdir()
    write_jsonl(beir / "corpus.jsonl", [{"_id": "x1", "text": "one"}])
    (beir / "qrels").mkdir()
    _write(beir / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\n")
    with pytest.raises(InputError, match=r"test\.tsv: no records: no judgements"):
        ingest_beir(loaded.store, beir)
    assert digest(loaded) == before


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_a_qrels_header_is_recognised_by_its_content_not_its_position(loaded, tmp_path, suffix):
    sep = "\t" if suffix == ".tsv" else ","
    one = _write(tmp_path / f"one{suffix}", sep.join(["q-astro-0", "astro-1", "2"]) + "\n")
    summary = ingest_table(loaded.store, one, TableSpec("qrels", split="dev"))
    assert summary.counts["qrels"].new == 1
    assert loaded.store.execute("SELECT * FROM qrels WHERE split = 'dev'").fetchall() == [
        ("q-astro-0", "astro-1", 2, "dev")
    ]
    named = _write(
        tmp_path / f"named{suffix}", sep.join(["qid", "docid"]) + "\n" + sep.join(["q-bio-0", "bio-2"])
    )
    assert ingest_table(loaded.store, named, TableSpec("qrels", split="dev")).counts["qrels"].new == 1


def test_qrels_naming_an_empty_document_are_skipped_with_a_note(db, beir_dir):
    with open(beir_dir / "corpus.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"_id": "title-only", "title": "Only a title", "text": ""}) + "\n")
    with open(beir_dir / "qrels" / "train.tsv", "a", encoding="utf-8") as f:
        f.write("q-astro-0\ttitle-only\t1\n")
    summary = ingest_beir(db.store, beir_dir)
    assert summary.counts["documents"].skipped_empty == 1
    assert (summary.counts["qrels"].new, summary.counts["qrels"].skipped_empty) == (len(QRELS), 1)
    note = next(n for n in summary.skipped if "skipped: document" in n)
    assert note.endswith(
        "qrel ('q-astro-0', 'title-only') skipped: document 'title-only' has an empty text "
        f"({(beir_dir / 'corpus.jsonl').resolve()} line {len(CORPUS) + 1})"
    )
    assert "train.tsv line" in note
    assert db.scalar("SELECT count(*) FROM qrels WHERE doc_id = 'title-only'") == 0


def test_license_and_language_come_from_the_folder_card_or_the_options(db, beir_dir, tmp_path):
    (beir_dir / "README.md").write_text("---\nlicense: cc-by-sa-4.0\nlanguage:\n- en\n---\n# A corpus\n")
    ingest_beir(db.store, beir_dir)
    metas = {json.loads(m)["license"] for (m,) in db.store.execute("SELECT meta FROM documents").fetchall()}
    assert metas == {"cc-by-sa-4.0"}
    assert db.scalar("SELECT DISTINCT meta ->> 'language' FROM documents") == "en"
    other = write_jsonl(
        tmp_path / "more.jsonl", [{"_id": "m1", "text": "more", "license": "mit"}, {"_id": "m2", "text": "x"}]
    )
    ingest_table(db.store, other, TableSpec("documents", all_meta=True, license="odc-by", language="de"))
    rows = dict(
        db.store.execute("SELECT doc_id, meta ->> 'license' FROM documents WHERE doc_id LIKE 'm%'").fetchall()
    )
    assert rows == {"m1": "mit", "m2": "odc-by"}  # a record's own license wins over the option
    (beir_dir / "README.md").write_text("---\nlicense: [unclosed\n---\n")
    with pytest.raises(InputError, match=r"README\.md: dataset card front matter is not YAML"):
        ingest_beir(db.store, beir_dir)
