"""The demo walks the whole pipeline on the packaged sample; run here with the tiny models."""

from __future__ import annotations

import yaml
from fixtures.cli import invoke

import hnm_db
from hnm_db.demo import DEMO_RUNS, run_demo


def test_demo_builds_every_stage_and_a_second_run_recomputes_nothing(
    tmp_path, tiny_model_dir, tiny_model_dir_b
):
    models = (str(tiny_model_dir), str(tiny_model_dir_b))
    with hnm_db.open(tmp_path / "demo.duckdb") as db:
        first = run_demo(db, tmp_path / "export", models=models, chunk_tokens=None, progress=False)
        counts = dict(first.tables.rows())
        assert counts["documents"] == 280 and counts["chunks"] == counts["documents"]
        assert counts["embeddings"] > 0 and counts["triplets"] > 0
        methods = {r[0] for r in db.store.execute("SELECT method FROM mining_runs").fetchall()}
        assert methods == {"ensemble", "bm25", "random"}
        assert first.checks_passed >= 4
        card = (tmp_path / "export" / "README.md").read_text(encoding="utf-8")
        meta = yaml.safe_load(card.split("---\n", 2)[1])  # from the sample's own card, through ingest
        assert (meta["license"], meta["language"], meta["source_datasets"]) == (
            "other",
            ["en"],
            ["extended|sample"],
        )
        runs_before = db.sql("SELECT name, run_id FROM mining_runs ORDER BY name").rows()

        second = run_demo(db, tmp_path / "export", models=models, chunk_tokens=None, progress=False)

        def result_of(step: str) -> str:
            return next(r for n, _, r in second.steps if n.startswith(step))

        assert result_of("embed").startswith("0 texts encoded")
        assert "reused" in result_of("cluster")
        assert result_of("chunk").startswith("0 chunks written")
        assert db.scalar("SELECT count(*) FROM cluster_runs") == 1
        assert dict(second.tables.rows()) == counts
        assert sorted(r[0] for r in runs_before) == sorted(DEMO_RUNS)


def test_demo_command_prints_steps_tables_and_runs(tmp_path, tiny_model_dir, tiny_model_dir_b):
    out, models = str(tmp_path / "out"), ["-m", str(tiny_model_dir), "-m", str(tiny_model_dir_b)]
    result = invoke(
        None,
        "--quiet",
        "demo",
        "--db",
        str(tmp_path / "d.duckdb"),
        "--out",
        out,
        *models,
        "--chunk-tokens",
        "0",
    )
    assert result.exit_code == 0, result.output
    assert "## mining runs" in result.output and "demo-ensemble" in result.output
    assert "leakage checks passed" in result.output
