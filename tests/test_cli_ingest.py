"""``hnm-db ingest ...`` through click's CliRunner: output formats, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from fixtures.cli import invoke
from fixtures.corpus import CORPUS, QRELS, QUERIES
from fixtures.databases import path_digest

import hnm_db


def run(db_path: Path, *args: str):
    return invoke(db_path, *args)


def ingest_rows(db_path: Path) -> dict[str, list[tuple]]:
    with hnm_db.open(db_path) as db:
        return {
            t: sorted(db.store.execute(f"SELECT * FROM {t}").fetchall(), key=str)
            for t in ("documents", "queries", "qrels")
        }


def assert_one_line_error(result, *fragments: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_ingest_group_lists_all_sources():
    result = invoke(None, "ingest", "--help")
    assert result.exit_code == 0
    for name in ("beir", "jsonl", "csv", "parquet", "files", "urls"):
        assert f"  {name} " in result.output


def test_beir_prints_counts_and_a_rerun_reports_everything_unchanged(db_path, beir_dir):
    first = run(db_path, "ingest", "beir", str(beir_dir))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[0].split() == [
        "table",
        "new",
        "unchanged",
        "replaced",
        "skipped_empty",
        "skipped_duplicate",
        "failed",
    ]
    assert f"documents: {len(CORPUS)} new, 0 unchanged" in first.stderr
    again = run(db_path, "--quiet", "ingest", "beir", str(beir_dir), "--format", "json")
    assert again.exit_code == 0 and again.stderr == ""
    rows = {r["table"]: r for r in json.loads(again.stdout)}
    assert (rows["documents"]["new"], rows["documents"]["unchanged"]) == (0, len(CORPUS))
    assert (rows["queries"]["unchanged"], rows["qrels"]["unchanged"]) == (len(QUERIES), len(QRELS))
    out = run(
        db_path,
        "sql",
        "SELECT split, count(*) AS n FROM qrels GROUP BY split ORDER BY split",
        "--format",
        "csv",
    )
    assert out.stdout.strip().splitlines() == ["split,n", "test,4", "train,20"]


def test_csv_format_of_the_summary(db_path, beir_dir):
    result = run(db_path, "ingest", "beir", str(beir_dir), "--format", "csv")
    assert result.stdout.splitlines()[1] == f"documents,{len(CORPUS)},0,0,0,0,0"


def test_bad_json_line_exits_1_with_one_line_and_leaves_the_db_unchanged(db_path, beir_dir):
    run(db_path, "ingest", "beir", str(beir_dir))
    before = path_digest(db_path)
    with open(beir_dir / "corpus.jsonl", "a") as f:
        f.write("{not json}\n")
    result = run(db_path, "ingest", "beir", str(beir_dir))
    assert_one_line_error(result, "corpus.jsonl line 41: malformed JSON")
    assert path_digest(db_path) == before


def test_changed_document_needs_on_duplicate(db_path, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "d1", "text": "first"}\n')
    assert run(db_path, "ingest", "jsonl", str(path)).exit_code == 0
    path.write_text('{"id": "d1", "text": "second"}\n')
    before = path_digest(db_path)
    assert_one_line_error(
        run(db_path, "ingest", "jsonl", str(path)), "d.jsonl line 1", "'d1'", "--on-duplicate"
    )
    assert path_digest(db_path) == before
    skipped = run(db_path, "ingest", "jsonl", str(path), "--on-duplicate", "skip", "--format", "json")
    assert json.loads(skipped.stdout)[0]["skipped_duplicate"] == 1
    replaced = run(db_path, "ingest", "jsonl", str(path), "--on-duplicate", "replace", "--format", "json")
    assert json.loads(replaced.stdout)[0]["replaced"] == 1
    assert ingest_rows(db_path)["documents"][0][2] == "second"


def test_jsonl_options_name_columns_and_meta(db_path, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"pid": "p1", "body": "Text here", "name": "Title", "lang": "de", "year": 1999}\n')
    result = run(
        db_path,
        "ingest",
        "jsonl",
        str(path),
        "--id-column",
        "pid",
        "--text-column",
        "body",
        "--title-column",
        "name",
        "--meta-column",
        "lang",
        "--meta-column",
        "year",
    )
    assert result.exit_code == 0, result.output
    row = ingest_rows(db_path)["documents"][0]
    assert row[:3] == ("p1", "Title", "Text here")
    assert json.loads(row[5]) == {"lang": "de", "year": 1999}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--meta-column", "a", "--all-meta"], "exclude each other"),
        (["--score-column", "s"], "score-column does not apply to kind 'documents'"),
    ],
)
def test_conflicting_options_are_usage_errors(db_path, tmp_path, args, fragment):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "d1", "text": "x"}\n')
    result = run(db_path, "ingest", "jsonl", str(path), *args)
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_csv_qrels_and_parquet_queries(db_path, beir_dir, tmp_path):
    run(db_path, "ingest", "beir", str(beir_dir))
    qrels = tmp_path / "extra.csv"
    qrels.write_text("qid,docid,rel\nq-cook-0,cook-9,2\n")
    result = run(
        db_path,
        "ingest",
        "csv",
        str(qrels),
        "--kind",
        "qrels",
        "--query-id-column",
        "qid",
        "--doc-id-column",
        "docid",
        "--score-column",
        "rel",
        "--split",
        "dev",
    )
    assert result.exit_code == 0, result.output
    assert ("q-cook-0", "cook-9", 2, "dev") in ingest_rows(db_path)["qrels"]
    pq = tmp_path / "q.parquet"
    pl.DataFrame({"_id": ["new-q"], "text": ["a new question?"]}).write_parquet(pq)
    result = run(db_path, "ingest", "parquet", str(pq), "--kind", "queries", "--format", "json")
    assert json.loads(result.stdout)[0]["new"] == 1


def test_unknown_qrel_ids_exit_1_with_count(db_path, tmp_path):
    qrels = tmp_path / "q.csv"
    qrels.write_text("query_id,doc_id\nqa,da\nqb,db\n")
    result = run(db_path, "ingest", "csv", str(qrels), "--kind", "qrels")
    assert_one_line_error(result, "2 qrels name unknown ids (2 unknown queries, 2 unknown documents)", "'qa'")
    assert ingest_rows(db_path) == {"documents": [], "queries": [], "qrels": []}


def test_missing_path_is_one_line_error(db_path, tmp_path):
    assert_one_line_error(run(db_path, "ingest", "csv", str(tmp_path / "nope.csv")), "nope.csv: no such file")
    assert_one_line_error(run(db_path, "ingest", "files", str(tmp_path / "nodir")), "nodir: no such folder")


def test_invalid_utf8_is_one_line_error(db_path, tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"id,text\nd1,caf\xe9\n")
    assert_one_line_error(
        run(db_path, "ingest", "csv", str(path)), "d.csv line 2: invalid UTF-8 at byte offset 14"
    )
    assert ingest_rows(db_path) == {"documents": [], "queries": [], "qrels": []}


def test_empty_texts_are_reported_on_stderr(db_path, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "d1", "text": "x"}\n{"id": "d2", "text": "  "}\n')
    result = run(db_path, "ingest", "jsonl", str(path), "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["skipped_empty"] == 1
    assert "d.jsonl line 2: empty text, id 'd2' skipped" in result.stderr


def test_files_command(db_path, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "n.md").write_text("# Heading\n\nBody text.")
    result = run(db_path, "ingest", "files", str(tmp_path / "docs"), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["new"] == 1
    assert ingest_rows(db_path)["documents"][0][:3] == ("n.md", "Heading", "# Heading\n\nBody text.")


def test_urls_partial_failure_exits_0_and_lists_failures(db_path, local_site, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{local_site.base}/a.html\n# a comment\n{local_site.base}/missing\n")
    result = run(db_path, "ingest", "urls", str(urls), "--timeout", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert (row["new"], row["failed"]) == (1, 1)
    assert f"failed: {local_site.base}/missing: HTTP 404 Not Found" in result.stderr


def test_urls_all_failing_or_strict_exit_1_and_write_nothing(db_path, local_site, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{local_site.base}/image.png\n")
    assert_one_line_error(run(db_path, "ingest", "urls", str(urls)), "all 1 URLs failed", "not HTML")
    urls.write_text(f"{local_site.base}/a.html\n{local_site.base}/image.png\n")
    assert_one_line_error(run(db_path, "ingest", "urls", str(urls), "--strict"), "1 of 2 URLs failed")
    assert ingest_rows(db_path) == {"documents": [], "queries": [], "qrels": []}
