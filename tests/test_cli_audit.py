"""``hnm-db export`` and ``hnm-db audit`` through click's CliRunner: outputs, exit codes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from fixtures.cli import invoke

import hnm_db


def run(db_path: Path, *args: str):
    return invoke(db_path, *args, quiet=True)


def state(db_path: Path, digest) -> dict:
    with hnm_db.open(db_path) as db:
        return digest(db)


def assert_error(result, *fragments: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


def test_export_writes_a_dataset_that_loads_with_the_runs_row_count(mined_db_path, tmp_path):
    out = tmp_path / "out"
    result = run(mined_db_path, "export", "--run", "ens-top", "--to", str(out), "--parquet", "--keep-ids")
    assert result.exit_code == 0, result.output
    assert "rows" in result.stdout and "12" in result.stdout and str(out) in result.stdout
    ds = datasets.load_dataset(str(out), split="train")
    assert ds.num_rows == 12 and ds.column_names == ["anchor", "positive", "negative"]
    assert "negative_chunk_id" in datasets.load_dataset(str(out), "ids", split="train").column_names
    assert (out / "data" / "train-00000-of-00001.parquet").exists() and (out / "README.md").exists()


def test_export_unknown_run_fails_with_known_runs_and_changes_nothing(mined_db_path, tmp_path, digest):
    before = state(mined_db_path, digest)
    result = run(mined_db_path, "export", "--run", "nope", "--to", str(tmp_path / "x"))
    assert_error(result, "unknown mining run 'nope'", "known runs: bm25-top, ens-top, random")
    assert not (tmp_path / "x").exists() and state(mined_db_path, digest) == before


def test_export_into_an_existing_folder_needs_overwrite(mined_db_path, tmp_path, digest):
    out = tmp_path / "out"
    assert run(mined_db_path, "export", "--run", "random", "--to", str(out)).exit_code == 0
    before = state(mined_db_path, digest)
    assert_error(run(mined_db_path, "export", "--run", "ens-top", "--to", str(out)), "--overwrite")
    assert datasets.load_from_disk(str(out)).num_rows == 8 and state(mined_db_path, digest) == before
    result = run(mined_db_path, "export", "--run", "ens-top", "--to", str(out), "--overwrite")
    assert result.exit_code == 0, result.output
    assert datasets.load_from_disk(str(out)).num_rows == 12


def test_export_n_tuple_with_too_few_negatives_fails_unless_drop_short(mined_db_path, tmp_path, digest):
    before = state(mined_db_path, digest)
    args = [
        "export",
        "--run",
        "bm25-top",
        "--layout",
        "n-tuple",
        "--num-negatives",
        "3",
        "--to",
        str(tmp_path / "n"),
    ]
    assert_error(run(mined_db_path, *args), "1 of 3 queries", "--drop-short")
    assert state(mined_db_path, digest) == before and not (tmp_path / "n").exists()
    result = run(mined_db_path, *args, "--drop-short")
    assert result.exit_code == 0, result.output
    assert datasets.load_from_disk(str(tmp_path / "n")).column_names[-1] == "negative_3"


def test_export_rejects_n_tuple_options_for_other_formats(mined_db_path, tmp_path):
    """ExportParams alone checks it (an InvalidParams, exit 1), for the CLI and the API alike."""
    result = run(
        mined_db_path, "export", "--run", "random", "--num-negatives", "2", "--to", str(tmp_path / "y")
    )
    assert result.exit_code == 1 and "only the n-tuple layout takes a number of negatives" in result.output


def test_export_takes_layout_and_the_shared_output_format(mined_db_path, tmp_path):
    result = run(mined_db_path, "export", "--run", "random", "--layout", "labeled-pair", "--to",
                 str(tmp_path / "p"), "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == [
        {**summary[0], "layout": "labeled-pair", "rows": 12, "columns": "query, passage, label"}
    ]
    old = invoke(mined_db_path, "export", "--run", "random", "--format", "n-tuple",
                                    "--to", str(tmp_path / "n"))  # fmt: skip
    assert old.exit_code == 0, old.output
    assert "note: --format n-tuple is deprecated for the layout; use --layout n-tuple" in old.stderr
    assert datasets.load_from_disk(str(tmp_path / "n")).column_names[-1] == "negative_2"
    clash = run(mined_db_path, "export", "--run", "random", "--format", "n-tuple", "--layout", "triplet",
                "--to", str(tmp_path / "c"))  # fmt: skip
    assert clash.exit_code == 2 and "conflicts with --layout triplet" in clash.output


def test_audit_prints_one_column_per_run_and_the_overlap(mined_db_path):
    result = run(mined_db_path, "audit")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header == ["measure", "bm25-top", "ens-top", "random"]
    for measure in (
        "queries",
        "neg_per_query_median",
        "neg_score_p90",
        "dropped_false_negatives",
        "cluster_agreement",
        "changed_sources",
        "mean_jaccard",
    ):
        assert measure in result.stdout


def test_audit_json_and_csv_are_machine_readable(mined_db_path):
    data = json.loads(
        run(mined_db_path, "audit", "--format", "json", "--run", "ens-top", "--run", "bm25-top").stdout
    )
    assert [r["run"] for r in data["runs"]] == ["bm25-top", "ens-top"]
    assert data["overlap"][0]["run_a"] == "bm25-top" and data["changed_sources"] == []
    csv_out = run(mined_db_path, "audit", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("run,method,split,queries") and len(csv_out) == 4


def test_audit_plot_writes_pngs(mined_db_path, tmp_path):
    result = run(mined_db_path, "audit", "--plot", str(tmp_path / "plots"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "cluster_sizes.png", "rank_distribution.png", "score_histograms.png",
    ]  # fmt: skip


def test_audit_unknown_run_is_an_error(mined_db_path):
    assert_error(run(mined_db_path, "audit", "--run", "gone"), "unknown mining run 'gone'")


def test_audit_check_passes_on_a_clean_database(mined_db_path):
    result = run(mined_db_path, "audit", "--check")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("all checks passed")


def test_audit_check_fails_naming_the_check_and_rows(mined_db_path, digest):
    with hnm_db.open(mined_db_path) as db:
        db.store.execute("INSERT INTO qrels VALUES ('q1', 'd5', 1, 'dev')")
    before = state(mined_db_path, digest)
    result = run(mined_db_path, "audit", "--check")
    assert_error(result, "negative_is_judged_positive (2 rows)", "negative_chunk_id=d5#0")
    assert state(mined_db_path, digest) == before


def test_reingested_source_is_reported_by_audit_and_fails_check(mined_db_path):
    from hnm_db.sources.text import content_hash

    text = "Document 7 now holds different words."
    with hnm_db.open(mined_db_path) as db:
        db.store.execute(
            "UPDATE documents SET text = ?, content_hash = ? WHERE doc_id = 'd7'", [text, content_hash(text)]
        )
        db.store.execute(
            "UPDATE chunks SET text = ?, content_hash = ? WHERE doc_id = 'd7'", [text, content_hash(text)]
        )
    result = invoke(mined_db_path, "audit")
    assert result.exit_code == 0
    assert "sources changed since mining" in result.stdout and "d7#0" in result.stdout
    assert "2 source chunks changed since mining" in result.stderr
    assert_error(run(mined_db_path, "audit", "--check"), "negative_doc_changed_since_mining")


def test_audit_check_refuses_run_and_plot(mined_db_path):
    result = run(mined_db_path, "audit", "--check", "--run", "random")
    assert result.exit_code == 2 and "whole database" in result.output


def test_audit_and_check_open_read_only_so_they_run_beside_another_reader(mined_db_path, digest):
    import subprocess
    import sys

    holder = subprocess.Popen(  # a second process reading the file holds DuckDB's shared (reader) lock
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print('open', flush=True); time.sleep(60)", str(mined_db_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        result = run(mined_db_path, "audit", "--check")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("all checks passed")
        assert run(mined_db_path, "audit", "--format", "csv").exit_code == 0
    finally:
        holder.kill()
        holder.wait()
