"""The database file: migrations and their ledger, version checks, locking, transactions, ``hnm-db sql``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from fixtures.cli import invoke

import hnm_db
from hnm_db import resources
from hnm_db.errors import InvalidParams, SchemaTooNew
from hnm_db.store import Store, schema_target

DATA_MODEL = {
    "documents",
    "queries",
    "qrels",
    "chunks",
    "models",
    "embeddings",
    "ensembles",
    "ensemble_vectors",
    "cluster_runs",
    "cluster_assignments",
    "mining_runs",
    "triplets",
    "schema_version",
}


def ledger(db: hnm_db.Database) -> list[tuple]:
    return db.store.execute(
        "SELECT version, name, applied_at FROM schema_version ORDER BY version"
    ).fetchall()


def test_fresh_open_creates_every_table_and_records_each_migration(db):
    assert DATA_MODEL <= set(db.tables())
    versions = [row[0] for row in ledger(db)]
    assert versions[:2] == [0, 1]
    assert versions == [v for v, _, _ in resources.migrations()]
    assert db.schema_version() == schema_target()


def test_empty_tables_are_visible_with_show_tables(db):
    shown = {row[0] for row in db.store.execute("SHOW TABLES").fetchall()}
    assert DATA_MODEL <= shown
    assert db.scalar("SELECT count(*) FROM triplets") == 0


def test_reopening_applies_nothing(db_path):
    with hnm_db.open(db_path) as db:
        first = ledger(db)
    with hnm_db.open(db_path) as db:
        assert db.store.migrate() == []
        assert ledger(db) == first


def test_a_newer_schema_is_refused_with_a_clear_message(db_path):
    with hnm_db.open(db_path) as db:
        db.store.execute(
            "INSERT INTO schema_version (version, name) VALUES (?, 'from_the_future')", [schema_target() + 1]
        )
    with pytest.raises(SchemaTooNew) as info:
        hnm_db.open(db_path)
    assert str(info.value) == (
        f"{db_path} has schema version {schema_target() + 1} but this hnm-db knows only up "
        f"to {schema_target()}: upgrade hnm-db to open it"
    )
    result = invoke(db_path, "init")
    assert result.exit_code == 1
    assert "upgrade hnm-db to open it" in result.stderr and "Traceback" not in result.output


def test_a_failing_migration_rolls_back_and_leaves_no_ledger_row(db_path, monkeypatch):
    with hnm_db.open(db_path) as db:
        before_ledger, before_tables = ledger(db), db.tables()
    real = resources.migrations()
    broken = (
        schema_target() + 1,
        "broken",
        "CREATE TABLE half_done (x INTEGER);\nSELECT * FROM no_such_table;",
    )
    monkeypatch.setattr(resources, "migrations", lambda: [*real, broken])
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        hnm_db.open(db_path)
    monkeypatch.undo()
    with hnm_db.open(db_path) as db:
        assert ledger(db) == before_ledger
        assert db.tables() == before_tables
        assert "half_done" not in db.tables()


def test_a_failing_migration_on_a_fresh_file_leaves_nothing_half_applied(db_path, monkeypatch):
    real = resources.migrations()
    broken = (real[-1][0] + 1, "broken", "CREATE TABLE half_done (x INTEGER); SELECT nonsense FROM nowhere;")
    monkeypatch.setattr(resources, "migrations", lambda: [*real, broken])
    with pytest.raises(duckdb.Error):
        hnm_db.open(db_path)
    monkeypatch.undo()
    con = duckdb.connect(str(db_path))
    try:
        versions = [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    finally:
        con.close()
    assert versions == [v for v, _, _ in real]
    assert "half_done" not in tables


def test_transaction_rolls_back_on_error_and_nested_use_joins_the_outer_one(db):
    with pytest.raises(RuntimeError):
        with db.store.transaction():
            db.store.execute("INSERT INTO queries (query_id, text, content_hash) VALUES ('q', 't', 'h')")
            with db.store.transaction():
                db.store.execute("INSERT INTO queries (query_id, text, content_hash) VALUES ('r', 't', 'h')")
            raise RuntimeError("boom")
    assert db.scalar("SELECT count(*) FROM queries") == 0
    assert not db.store.in_transaction


def _cli(db_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in another process (the venv's interpreter, same as the hnm-db script)."""
    code = "from hnm_db.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, "--db", str(db_path), *args], capture_output=True, text=True, timeout=120
    )


def test_a_second_process_gets_database_is_locked_naming_the_holder_pid(db_path):
    with hnm_db.open(db_path):
        for args in (["sql", "select 1"], ["init"], ["runs"]):
            result = _cli(db_path, *args)
            assert result.returncode == 1
            assert result.stderr.startswith(
                f"Error: database is locked by another process (PID {os.getpid()}, "
            )
            assert result.stderr.endswith(f"): {db_path}\n") and result.stderr.count("\n") == 1
            assert result.stdout == ""
    assert _cli(db_path, "sql", "select 1 AS one", "--format", "csv").stdout == "one\n1\n"


@pytest.fixture
def filled_path(db_path: Path) -> Path:
    with hnm_db.open(db_path) as db:
        db.store.execute(
            "INSERT INTO queries (query_id, text, content_hash) VALUES ('q1', 'why?', 'h1'), "
            "('q2', 'how, then?', 'h2')"
        )
    return db_path


def test_sql_prints_table_csv_and_json(filled_path):
    query = "SELECT query_id, text FROM queries ORDER BY query_id"
    table = invoke(filled_path, "sql", query)
    assert table.exit_code == 0
    assert table.stdout.splitlines() == [
        "query_id  text",
        "--------  ----------",
        "q1        why?",
        "q2        how, then?",
    ]
    csv_out = invoke(filled_path, "sql", query, "--format", "csv")
    assert csv_out.stdout.splitlines() == ["query_id,text", "q1,why?", 'q2,"how, then?"']
    js = invoke(filled_path, "sql", query, "--format", "json")
    assert json.loads(js.stdout) == [
        {"query_id": "q1", "text": "why?"},
        {"query_id": "q2", "text": "how, then?"},
    ]


def test_sql_is_read_only_unless_write_is_given(filled_path):
    denied = invoke(filled_path, "sql", "DELETE FROM queries")
    assert denied.exit_code == 1
    assert denied.stderr.startswith("Error: statement 1 (DELETE: DELETE FROM queries ...) may write")
    assert len(denied.stderr.strip().splitlines()) == 1
    allowed = invoke(filled_path, "sql", "--write", "DELETE FROM queries")
    assert allowed.exit_code == 0
    with hnm_db.open(filled_path) as db:
        assert db.scalar("SELECT count(*) FROM queries") == 0


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("COPY queries TO '{out}'", "COPY"),
        ("SELECT 1; COPY (SELECT * FROM queries) TO '{out}' (FORMAT parquet)", "COPY"),
        ("EXPORT DATABASE '{out}'", "EXPORT"),
        ("ATTACH '{out}' AS other", "ATTACH"),
        ("SET log_query_path = '{out}'", "SET"),
        ("PRAGMA profiling_output = '{out}'", "SET"),
        ("INSTALL json", "LOAD"),
    ],
)
def test_sql_without_write_writes_no_file(filled_path, tmp_path, digest, statement, kind):
    out = tmp_path / "written"
    with hnm_db.open(filled_path) as db:
        before = digest(db)
    result = invoke(filled_path, "sql", statement.format(out=out))
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert f"({kind}: " in result.stderr and "only queries run without --write" in result.stderr
    assert not out.exists()
    with hnm_db.open(filled_path) as db:
        assert digest(db) == before
    written = invoke(filled_path, "sql", "--write", f"COPY queries TO '{out}'")
    assert written.exit_code == 0 and out.exists()


def test_sql_without_write_runs_queries_variables_and_explain(filled_path):
    query = "SET VARIABLE n = 1; SELECT count(*) + getvariable('n') AS n FROM queries"
    result = invoke(filled_path, "sql", query, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "n\n3\n"
    for query in ("EXPLAIN SELECT * FROM queries", "PRAGMA table_info('queries')", "FROM queries"):
        assert invoke(filled_path, "sql", query).exit_code == 0, query


def test_bad_sql_is_one_line_error(filled_path):
    result = invoke(filled_path, "sql", "SELECT * FROM no_such_table")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: SQL error:") and "no_such_table" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_opening_in_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(hnm_db.HnmError, match="folder of the database does not exist"):
        hnm_db.open(tmp_path / "no" / "such" / "db.duckdb")


def test_views_are_recreated_only_when_their_sql_changed_or_one_is_missing(tmp_path):
    path = tmp_path / "v.duckdb"
    with hnm_db.open(path) as db:
        objects = json.loads(db.scalar("SELECT value FROM meta WHERE key = 'views_objects'"))
        assert {"run_summary", "query_splits", "ensemble_similarity", "ensemble_sim"} <= set(objects)
        assert db.store.create_views() is False  # unchanged SQL, every object present: no DDL
    with hnm_db.open(path) as db:
        db.store.execute("DROP VIEW run_summary")
    with hnm_db.open(path) as db:  # a missing view is noticed and re-created
        assert db.scalar("SELECT count(*) FROM duckdb_views() WHERE view_name = 'run_summary'") == 1
        db.store.execute("UPDATE meta SET value = 'stale' WHERE key = 'views_digest'")
        db.store.execute("CREATE OR REPLACE VIEW run_summary AS SELECT 1 AS x")
    with hnm_db.open(path) as db:  # another hnm-db's SQL (digest differs): re-created from sql/views
        assert "x" not in db.sql("SELECT * FROM run_summary LIMIT 0").columns
        assert db.store.create_views() is False
        assert db.store.create_views(force=True) is True


def test_a_version_5_database_with_runs_migrates_to_the_current_schema(db_path, monkeypatch):
    """A file written before triplets knew where their negative came from (migration 006) keeps its rows:
    each negative is its run's method, none from a fallback; old results have no per-query metrics."""
    real = resources.migrations()
    monkeypatch.setattr(resources, "migrations", lambda: [m for m in real if m[0] <= 5])
    monkeypatch.setattr(Store, "create_views", lambda self, force=False: False)
    with hnm_db.open(db_path) as old:
        assert old.schema_version() == 5
        old.store.execute(
            "INSERT INTO mining_runs (run_id, name, method, split, params, seed, code_version) "
            "VALUES ('r1', 'bm25-run', 'bm25', 'train', '{}', 0, '0.1.0')"
        )
        old.store.execute(
            "INSERT INTO triplets VALUES ('r1', 'q1', 'd1', 'd1#0', 'd2', 'd2#0', 0, 3.5, 4.0, NULL, NULL, NULL, 'train')"
        )
        old.store.execute(
            "INSERT INTO eval_results (eval_id, split, first_stage, k, model, metrics) "
            "VALUES ('e1', 'test', 'bm25', 10, 'first-stage:bm25', '{\"ndcg@10\": 0.5}')"
        )
    monkeypatch.undo()
    with hnm_db.open(db_path) as db:
        assert db.schema_version() == schema_target() >= 6
        assert db.store.execute("SELECT negative_method, fallback FROM triplets").fetchall() == [
            ("bm25", False)
        ]
        assert db.scalar("SELECT per_query FROM eval_results") is None
        summary = db.sql("SELECT fallback_negatives, mixed_random_negatives, triplets FROM run_summary").row(
            0
        )
        assert summary == (0, 0, 1)


# An empty database file written by duckdb 2.0.1 (storage version 69), gzip + base64: 12 KB on disk.
DUCKDB2_FILE = (
    "H4sIAAAAAAACA+3XsQpBARQGYGGw2qXuC8jVrXsNJtckNgsrr6BrJQ/gGcyewisoysDmMRgkpciiDN+3/J3O6QxnO7to2dp3F8N00O5e"
    "CrmvTBu1ei1830/GcRKG0aRZ/7xnPaueypuoH8yD83Z1zOcAAACAnzjEWVYZpb1HfX3xnCzeo3SPjtMBAACA/x8AAAD4GzeakVpZADAAAA=="
)


def test_a_file_from_duckdb_2_opens_or_gets_a_clear_error(tmp_path):
    import base64
    import gzip

    path = tmp_path / "from-duckdb-2.duckdb"
    path.write_bytes(gzip.decompress(base64.b64decode(DUCKDB2_FILE)))
    if int(duckdb.__version__.split(".")[0]) >= 2:
        with hnm_db.open(path) as db:
            assert db.schema_version() == schema_target()
        return
    result = invoke(path, "init")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {path} was written by a newer DuckDB than the installed duckdb {duckdb.__version__}: "
        "upgrade duckdb (pip install -U duckdb) to open it\n"
    )


def test_rows_read_through_the_api_duckdb_1_5_and_2_share(db):
    db.store.execute("CREATE TABLE t AS SELECT range AS a, 'x' || range AS b FROM range(7)")
    assert (
        db.scalar("SELECT count(*) FROM t") == 7
    )  # a half-read result (fetchone) must not block what follows
    assert db.sql("SELECT a, b FROM t ORDER BY a").rows()[:2] == [(0, "x0"), (1, "x1")]
    assert db.arrow("SELECT sum(a) AS s FROM t").to_pylist() == [{"s": 21}]
    assert [b.num_rows for b in db.store.arrow_batches("SELECT a FROM t", batch_rows=3)] == [3, 3, 1]
    assert db.sql("INSERT INTO t VALUES (7, 'x7')").shape == (0, 0)  # a statement gives no rows
    assert db.arrow("SELECT $n AS n", {"n": 5}).to_pylist() == [{"n": 5}]
    intervals = db.sql("SELECT INTERVAL 1 DAY AS i UNION ALL SELECT INTERVAL '14 months 2 hours' ORDER BY 1")
    assert intervals["i"].to_list() == ["1 day", "1 year 2 months 02:00:00"]  # polars reads no INTERVAL


def test_views_are_created_after_the_views_they_read():
    from hnm_db.store import view_order

    views = {"a_top": "SELECT * FROM m_mid", "m_mid": "SELECT * FROM z_base", "z_base": "SELECT 1"}
    assert view_order(views) == ["SELECT 1", "SELECT * FROM z_base", "SELECT * FROM m_mid"]
    with pytest.raises(RuntimeError, match="cycle: a, b"):
        view_order({"a": "SELECT * FROM b", "b": "SELECT * FROM a"})


@pytest.mark.parametrize("sql", ["", "  \n", "-- nothing", "/* nothing */"])
def test_sql_without_a_statement_is_an_invalid_params_error_in_the_api(db, sql):
    with pytest.raises(InvalidParams, match="empty query"):
        db.sql(sql)
    with pytest.raises(InvalidParams, match="empty query"):
        db.read_query(sql)


# -- the one publish -------------------------------------------------------------------------------
def _folder(path, text):
    path.mkdir()
    (path / "f.txt").write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("existing", ["refuse", "replace", "keep"])
def test_publish_moves_a_folder_into_an_absent_target_whatever_the_mode(tmp_path, existing):
    from hnm_db.store import publish

    staged = _folder(tmp_path / ".staged", "new")
    assert publish(staged, tmp_path / "out", existing=existing) == tmp_path / "out"
    assert (tmp_path / "out" / "f.txt").read_text() == "new" and not staged.exists()


def test_publish_refuses_replaces_or_keeps_an_existing_target(tmp_path):
    from hnm_db.errors import AlreadyExists
    from hnm_db.store import publish

    target = _folder(tmp_path / "out", "old")
    staged = _folder(tmp_path / ".a", "new")
    with pytest.raises(AlreadyExists, match="exists"):
        publish(staged, target)
    assert (target / "f.txt").read_text() == "old" and staged.exists()  # both left as they were
    publish(staged, target, existing="keep")
    assert (target / "f.txt").read_text() == "old" and not staged.exists()
    publish(_folder(tmp_path / ".b", "newer"), target, existing="replace")
    assert (target / "f.txt").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the old one is gone, no leftovers


def test_publish_puts_the_old_target_back_when_the_swap_fails(tmp_path, monkeypatch):
    import os

    from hnm_db.store import files as store

    target = _folder(tmp_path / "out", "old")
    staged = _folder(tmp_path / ".a", "new")
    real = os.rename

    def failing(src, dst):
        if str(src) == str(staged):
            raise OSError("disk gone")
        return real(src, dst)

    monkeypatch.setattr(store.os, "rename", failing)
    with pytest.raises(OSError, match="disk gone"):
        store.publish(staged, target, existing="replace")
    assert (target / "f.txt").read_text() == "old" and staged.exists()
