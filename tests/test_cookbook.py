"""Every recipe of the SQL cookbook (docs/sql-cookbook.md) runs on a mined database and returns rows (the docs cannot rot)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from fixtures.cli import invoke

import hnm_db

COOKBOOK = Path(__file__).resolve().parent.parent / "docs" / "sql-cookbook.md"
#: The cookbook section: from its heading to the next second-level heading.
TEXT = COOKBOOK.read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return [b.strip() for b in re.findall(rf"```{language}\n(.*?)```", TEXT, flags=re.S)]


def commands() -> list[list[str]]:
    """Every ``hnm-db ...`` line of the bash blocks, as argument lists."""
    return [
        shlex.split(line)[1:] for b in blocks("bash") for line in b.splitlines() if line.startswith("hnm-db ")
    ]


def test_the_cookbook_has_the_recipes_the_issue_asks_for():
    assert len(blocks("sql")) >= 6
    for title in (
        "Negatives of one query",
        "Methods compared per query",
        "Hardest negatives overall",
        "Triplets per cluster",
        "Joining exported rows back",
    ):
        assert f"### {title}" in TEXT


@pytest.fixture
def cookbook_dir(mined_db_path, tmp_path, monkeypatch):
    """The mined database, with the cookbook's shell commands run in the working folder first."""
    monkeypatch.chdir(tmp_path)
    for args in commands():
        result = invoke(mined_db_path, *args, quiet=True)
        if args[:2] == ["audit", "--check"] or args[:1] == ["export"]:
            assert result.exit_code == 0, (args, result.output)
    return mined_db_path


def test_every_sql_recipe_runs_and_returns_rows(cookbook_dir):
    empty = []
    with hnm_db.open(cookbook_dir) as db:
        for sql in blocks("sql"):
            if db.sql(sql).height == 0:
                empty.append(sql)
    assert not empty, empty


def test_exported_rows_join_back_to_every_provenance_row(cookbook_dir):
    with hnm_db.open(cookbook_dir) as db:
        joined = db.scalar(
            "SELECT count(p.rank) FROM read_parquet('hnm-export/ids/train-*.parquet') e "
            "LEFT JOIN negative_provenance p USING (run, query_id, positive_chunk_id, negative_chunk_id)"
        )
        assert joined == db.scalar("SELECT count(*) FROM triplets WHERE run_id = 'run-ens'")
