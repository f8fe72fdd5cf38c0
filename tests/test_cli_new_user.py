"""Inputs a new user gives (issue 21): SQL with comments, from a file or stdin, empty SQL, settings
without --write, numbers where text belongs, BEIR folders with parts missing, a broken PDF, --size max.

Each test feeds the input through the CLI, checks the message and exit code, and that the database is
as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
from fixtures.cli import invoke
from fixtures.corpus import CORPUS
from fixtures.databases import path_digest

import hnm_db
from hnm_db.errors import WriteRefused
from hnm_db.sources.chunk import load_tokenizer

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "sql" / "checks" / "negative_is_judged_positive.sql"


def one_line_error(result, *fragments: str, code: int = 1) -> str:
    """An error (exit 1) is one line; a usage error (exit 2) is click's usage lines and one error line."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    if code == 2:
        assert lines[0].startswith("Usage: ") and len(lines) == 4, result.stderr
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def filled(db_path: Path, beir_dir: Path) -> Path:
    assert invoke(db_path, "--quiet", "ingest", "beir", str(beir_dir)).exit_code == 0
    return db_path


# -- 1. SQL that starts with a comment, from a file, from stdin ------------------------------------------
def test_a_query_starting_with_a_comment_runs_as_given_from_a_file_and_from_stdin(mined_db_path):
    text = CHECK.read_text(encoding="utf-8")
    assert text.startswith("--")
    direct = invoke(mined_db_path, "sql", text, "--format", "csv")
    assert direct.exit_code == 0, direct.output
    assert direct.stdout.splitlines()[0].startswith("run,query_id,positive_chunk_id")
    from_file = invoke(mined_db_path, "sql", "--file", str(CHECK), "--format", "csv")
    from_stdin = invoke(mined_db_path, "sql", "-", "--format", "csv", input=text)
    assert from_file.exit_code == from_stdin.exit_code == 0
    assert direct.stdout == from_file.stdout == from_stdin.stdout


def test_options_after_a_comment_query_still_apply(mined_db_path):
    result = invoke(mined_db_path, "sql", "-- count them\nSELECT 41 + 1 AS n", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 42}]


def test_sql_from_a_missing_file_or_from_both_places_is_an_error(mined_db_path, tmp_path):
    before = path_digest(mined_db_path)
    one_line_error(invoke(mined_db_path, "sql", "--file", str(tmp_path / "no.sql")), "no.sql", "no such file")
    one_line_error(invoke(mined_db_path, "sql", "SELECT 1", "--file", str(CHECK)), "exactly one", code=2)
    one_line_error(invoke(mined_db_path, "sql"), "QUERY", code=2)
    assert path_digest(mined_db_path) == before


# -- 2. empty SQL ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["", "   ", "\n\t", "-- only a comment", "/* a block */"])
def test_an_empty_query_is_a_one_line_error(mined_db_path, query):
    before = path_digest(mined_db_path)
    one_line_error(invoke(mined_db_path, "sql", query), "empty query")
    one_line_error(invoke(mined_db_path, "sql", "-", input=query), "empty query")
    assert path_digest(mined_db_path) == before


# -- 3. the read-only guard, per statement class -----------------------------------------------------------
READS = [
    "SELECT 1",
    "WITH a AS (SELECT 1 AS x) SELECT * FROM a",
    "FROM queries",
    "VALUES (1), (2)",
    "DESCRIBE queries",
    "SHOW TABLES",
    "SUMMARIZE queries",
    "EXPLAIN SELECT * FROM queries",
    "EXPLAIN ANALYZE SELECT * FROM queries",
    "EXPLAIN (ANALYZE, FORMAT json) SELECT 1",
    "EXPLAIN SELECT 1; EXPLAIN ANALYZE SELECT 2",
    "PRAGMA table_info('queries')",
    "PRAGMA database_size",
    "PRAGMA version",
    "SET VARIABLE n = 1; SELECT getvariable('n') AS n",
    "/* lead */ -- and a line\nSELECT '-- not a comment' AS s; SELECT 2",
    "EXPLAIN (SELECT 1)",
    "SELECT 'checkpoint() and (DELETE FROM queries)' AS s",
    'SELECT "delete", "query" FROM (SELECT 1 AS "delete", 2 AS "query")',
    "SELECT (update) FROM (SELECT 1 AS update)",
]
REFUSED = [
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("PRAGMA enable_profiling; SELECT 1", "PRAGMA"),
    ("SELECT 1; PRAGMA threads = 1", "statement 2"),
    ("SET threads = 1", "SET"),
    ("RESET threads", "SET"),
    ("-- a comment first\nSET memory_limit = '1GB'", "SET"),
    ("CALL pragma_version()", "CALL"),
    ("CHECKPOINT", "CALL"),
    ("LOAD json", "LOAD"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'", "EXPLAIN"),
    ("/* c */ EXPLAIN /* d */ ANALYZE COPY queries TO '{out}'", "EXPLAIN"),
    ("EXPLAIN ANALYZE DELETE FROM queries", "EXPLAIN"),
    ("SELECT 1; COPY queries TO '{out}'", "statement 2"),
    ("SELECT * FROM enable_profiling()", "calls enable_profiling()"),
    ("SELECT * FROM main.enable_logging(storage = 'file', storage_path = '{out}')", "calls enable_logging()"),
    ("SELECT setseed(0.5)", "calls setseed()"),
    ("SELECT * FROM checkpoint()", "calls checkpoint()"),
    ("SELECT * FROM query('SELECT 1')", "calls query()"),
    ("WITH d AS (DELETE FROM queries RETURNING *) SELECT count(*) FROM d", "runs DELETE inside the query"),
    ("WITH i AS (INSERT INTO queries SELECT * FROM queries RETURNING *) FROM i", "runs INSERT"),
    ("EXPLAIN ANALYZE SELECT * FROM enable_profiling(format := 'json', save_location := '{out}')", "EXPLAIN"),
]


@pytest.mark.parametrize("query", READS)
def test_statements_that_only_read_run_without_write(filled, query):
    before = path_digest(filled)
    result = invoke(filled, "sql", query)
    assert result.exit_code == 0, (query, result.output)
    assert path_digest(filled) == before


@pytest.mark.parametrize(("query", "fragment"), REFUSED)
def test_settings_and_writes_are_refused_without_write_and_change_nothing(filled, tmp_path, query, fragment):
    out = tmp_path / "written.csv"
    before = path_digest(filled)
    result = invoke(filled, "sql", query.format(out=out))
    line = one_line_error(result, fragment, "only queries run without --write")
    assert "table_info" in line  # the refusal says what may run
    assert result.stdout == "" and not out.exists()
    assert path_digest(filled) == before


def test_settings_stay_locked_and_extensions_unloaded_whatever_a_query_calls(filled, tmp_path):
    """Behind the list of refused functions, the lock: a setting's table function (here called through
    the API, past the check) cannot change it, and no extension is loaded."""
    out = tmp_path / "log"
    with hnm_db.open(filled, read_only=True) as db:
        db.lock_settings()
        with pytest.raises(duckdb.Error, match="configuration has been locked"):
            db.arrow(f"SELECT * FROM enable_logging(storage = 'file', storage_path = '{out}')")
        with pytest.raises(duckdb.Error, match="httpfs"):
            db.read_arrow("SELECT * FROM 'https://example.invalid/q.parquet'")
        assert db.scalar("SELECT current_setting('autoload_known_extensions')") is False
    assert not out.exists()


def test_the_api_read_query_refuses_dml_in_a_with_and_restores_extension_loading(db):
    db.store.execute("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1), (2)")
    with pytest.raises(WriteRefused, match="runs DELETE inside the query"):
        db.read_query("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d")
    assert db.scalar("SELECT count(*) FROM t") == 2
    with pytest.raises(duckdb.Error, match="httpfs"):
        db.read_query("SELECT * FROM 'https://example.invalid/q.parquet'")
    assert db.scalar("SELECT current_setting('autoload_known_extensions')") is True
    assert db.read_query("SELECT sum(a) AS s FROM t")["s"].to_list() == [3]


def test_an_option_joined_to_a_path_with_a_space_is_the_option(mined_db_path, tmp_path):
    folder = tmp_path / "a folder"
    folder.mkdir()
    path = folder / "count it.sql"
    path.write_text("-- how many\nSELECT count(*) AS n FROM triplets", encoding="utf-8")
    result = invoke(mined_db_path, "sql", f"--file={path}", "--format=json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["n"] > 0


def test_the_help_lists_the_refused_and_allowed_statement_classes():
    text = " ".join(invoke(None, "sql", "--help").output.split())
    for word in (
        "SET VARIABLE",
        "EXPLAIN ANALYZE",
        "enable_profiling",
        "table_info",
        "CALL",
        "--file",
        "'-'",
    ):
        assert word in text


# -- 4. numbers where a string belongs ---------------------------------------------------------------------
ONE_ROW = ("title.parquet", "text.jsonl")


def _parquet(path: Path, **columns) -> Path:
    pl.DataFrame(columns).write_parquet(path)
    return path


@pytest.mark.parametrize(
    ("name", "write", "fragment"),
    [
        ("text.parquet", lambda p: _parquet(p, id=["a", "b"], text=[5, 6]), "field 'text' must be a string, found the int 5"),
        ("id.parquet", lambda p: _parquet(p, id=[1, 2], text=["x", "y"]), "field 'id' must be a string, found the int 1"),
        ("title.parquet", lambda p: _parquet(p, id=["a"], title=[2.5], text=["x"]), "field 'title' must be a string, found the float 2.5"),
        ("text.jsonl", lambda p: p.write_text('{"_id": "a", "text": 5}\n'), "line 1: field 'text' must be a string, found the int 5"),
        ("text.csv", lambda p: p.write_text("id,text\na,5\nb,6.5\n"), "line 2: column 'text' holds only numbers (first '5')"),
        ("title.csv", lambda p: p.write_text("id,title,text\na,1,x\nb,2,y\n"), "line 2: column 'title' holds only numbers (first '1')"),
    ],
)  # fmt: skip
def test_a_number_in_an_id_text_or_title_column_is_refused_naming_the_column(
    filled, tmp_path, name, write, fragment
):
    path = tmp_path / name
    write(path)
    fmt = name.rsplit(".", 1)[1]
    before = path_digest(filled)
    line = one_line_error(invoke(filled, "ingest", fmt, str(path)), fragment)
    assert name in line and "--numbers-as-text" in line
    assert path_digest(filled) == before
    ok = invoke(filled, "--quiet", "ingest", fmt, str(path), "--numbers-as-text")
    assert ok.exit_code == 0, ok.output
    with hnm_db.open(filled) as db:
        assert db.scalar("SELECT count(*) FROM documents") == len(CORPUS) + (1 if name in ONE_ROW else 2)


def test_a_csv_text_column_with_some_words_is_text(filled, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("id,text\na,5\nb,five apples\n", encoding="utf-8")
    assert invoke(filled, "--quiet", "ingest", "csv", str(path)).exit_code == 0


def test_only_csv_columns_are_judged_by_their_text_and_only_ascii_digits_make_a_number(filled, tmp_path):
    """JSON strings are typed as strings by their writer: "5" is the text 5. Digits of other scripts
    (Arabic-Indic, full-width) are words, not numbers a CSV column was mistaken for."""
    jsonl = tmp_path / "strings.jsonl"
    jsonl.write_text('{"_id": "s1", "text": "5"}\n{"_id": "s2", "text": "6"}\n', encoding="utf-8")
    assert invoke(filled, "--quiet", "ingest", "jsonl", str(jsonl)).exit_code == 0
    csv = tmp_path / "numerals.csv"
    csv.write_text("id,text\nn1,\u0665\nn2,\uff16\n", encoding="utf-8")
    result = invoke(filled, "--quiet", "ingest", "csv", str(csv))
    assert result.exit_code == 0, result.output
    with hnm_db.open(filled) as db:
        texts = db.sql("SELECT text FROM documents WHERE doc_id IN ('s1', 's2', 'n1', 'n2') ORDER BY doc_id")
    assert texts["text"].to_list() == ["\u0665", "\uff16", "5", "6"]


# -- 5. BEIR folders with parts missing --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("remove", "warnings"),
    [
        (("queries.jsonl", "qrels"), ["{q}: no such file; no queries ingested", "{r}/: no such folder; no qrels ingested"]),
        (("qrels",), ["{r}/: no such folder; no qrels ingested"]),
        (("qrels/*",), ["{r}/: no .tsv files; no qrels ingested"]),
    ],
)  # fmt: skip
def test_a_beir_folder_without_queries_or_qrels_says_what_was_missing(db_path, beir_dir, remove, warnings):
    for part in remove:
        for target in beir_dir.glob(part):
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    result = invoke(db_path, "--quiet", "ingest", "beir", str(beir_dir))  # warnings show with --quiet too
    assert result.exit_code == 0, result.output
    q, r = beir_dir / "queries.jsonl", beir_dir / "qrels"
    assert result.stderr.splitlines() == ["warning: " + w.format(q=q, r=r) for w in warnings]
    with hnm_db.open(db_path) as db:
        assert db.scalar("SELECT count(*) FROM documents") == len(CORPUS)
        assert db.scalar("SELECT count(*) FROM qrels") == 0


def test_a_folder_with_no_beir_part_is_refused(db_path, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x", encoding="utf-8")
    assert invoke(db_path, "init").exit_code == 0
    before = path_digest(db_path)
    one_line_error(
        invoke(db_path, "ingest", "beir", str(tmp_path / "empty")),
        "empty: not a BEIR folder",
        "corpus.jsonl, queries.jsonl, qrels/",
    )
    assert path_digest(db_path) == before


# -- 6. a library's warning stays out of stderr ------------------------------------------------------------
def test_a_broken_pdf_prints_only_hnm_dbs_line(filled, tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")
    before = path_digest(filled)
    line = one_line_error(invoke(filled, "ingest", "files", str(folder)), "broken.pdf", "not a readable PDF")
    assert "(pypdf: EOF marker not found)" in line  # the library's word is in the message, not above it
    assert path_digest(filled) == before


# -- 7. --size max ----------------------------------------------------------------------------------------
def test_size_max_is_the_models_capacity_and_a_bigger_size_names_it(filled, tiny_model_dir):
    capacity = load_tokenizer(None, str(tiny_model_dir)).capacity
    model = ["--strategy", "tokens", "--model", str(tiny_model_dir)]
    before = path_digest(filled)
    line = one_line_error(invoke(filled, "chunk", *model, "--size", str(capacity + 1)))
    assert f"pass --size {capacity} or --size max" in line
    one_line_error(invoke(filled, "chunk", "--strategy", "sentences", "--size", "max"), "needs a model")
    one_line_error(
        invoke(filled, "chunk", *model, "--size", "most"), "neither a whole number nor 'max'", code=2
    )
    assert path_digest(filled) == before
    assert invoke(filled, "--quiet", "chunk", *model, "--size", "max").exit_code == 0
    with hnm_db.open(filled) as db:
        assert json.loads(db.scalar("SELECT DISTINCT chunker FROM chunks"))["size"] == capacity


@pytest.mark.integration
def test_the_chunk_help_states_each_built_in_models_limit():
    text = " ".join(invoke(None, "chunk", "--help").output.split())
    for alias in ("minilm-l6", "minilm-l3", "mpnet-base"):
        tok = load_tokenizer(None, alias)
        assert f"{tok.capacity} for {alias}" in text
        assert str(tok.max_length) in text
