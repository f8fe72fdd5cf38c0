"""``hnm-db demo``: the whole pipeline on the sample shipped in the package.

Every step is one library call that reuses what the database already holds, so a second run of the
demo on the same file does (almost) no work: that is the product's promise, shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hnm_db.data import sample_dir
from hnm_db.db import Database

#: The fast built-in aliases (both ship in PyPI packages, so the demo needs no network).
DEMO_MODELS = ("minilm-l6", "minilm-l3")
DEMO_ENSEMBLE = "demo-ensemble"
#: Mining runs of the demo: name -> MiningParams fields. Same split, negatives per query and seed.
DEMO_RUNS: dict[str, dict] = {
    "demo-ensemble": {"method": "ensemble", "ensemble": DEMO_ENSEMBLE, "cluster_filter": "either"},
    "demo-bm25": {"method": "bm25", "ensemble": DEMO_ENSEMBLE},
    "demo-random": {"method": "random", "ensemble": DEMO_ENSEMBLE},
}
#: The audit columns the demo prints (``hnm-db audit`` prints them all).
AUDIT_COLUMNS = [
    "run",
    "queries",
    "triplets",
    "neg_per_query_median",
    "neg_score_mean",
    "pos_score_mean",
    "dropped_false_negatives",
    "short_queries",
    "cluster_agreement",
]
DEMO_MINING = {"split": "train", "num_negatives": 3, "range_min": 0, "range_max": 30, "seed": 42}


def _registered_name(db: Database, model: str) -> str:
    """A model folder is registered under its folder name (once); aliases register themselves."""
    if not Path(model).is_dir():
        return model
    name = Path(model).name
    if not db.scalar("SELECT count(*) FROM models WHERE name = ?", [name]):
        db.add_model(name=name, source=model)
    return name


@dataclass
class DemoReport:
    """What the demo built: per-step timings, table sizes, the runs compared, the audit summary."""

    steps: list[tuple[str, float, str]] = field(default_factory=list)
    tables: pl.DataFrame | None = None
    runs: pl.DataFrame | None = None
    audit: pl.DataFrame | None = None
    export_dir: Path | None = None
    checks_passed: int = 0


def run_demo(
    db: Database,
    export_dir: Path,
    *,
    models: tuple[str, ...] = DEMO_MODELS,
    chunk_tokens: int | None = 128,
    progress: bool = True,
    log: Callable[[str], None] = lambda _m: None,
) -> DemoReport:
    """Ingest the sample, chunk, embed, ensemble, cluster, mine three ways, export, audit.

    ``models`` are aliases, registered names or folders; the first one's tokenizer cuts the chunks
    into windows of ``chunk_tokens`` (None: one chunk per document).
    """
    report = DemoReport(export_dir=export_dir)
    models = tuple(_registered_name(db, m) for m in models)

    def step(name: str, fn: Callable[[], object], describe: Callable[[object], str]) -> object:
        log(f"[demo] {name} ...")
        t0 = time.perf_counter()
        result = fn()
        report.steps.append((name, time.perf_counter() - t0, describe(result)))
        return result

    sample = Path(str(sample_dir()))
    step(
        "ingest beir (packaged SciFact sample)",
        lambda: db.ingest_beir(sample, on_duplicate="replace"),
        lambda s: s.describe(),
    )
    if chunk_tokens is None:
        chunk_step = ("chunk whole", lambda: db.chunk(strategy="whole", progress=progress))
    else:
        chunk_step = (
            f"chunk tokens ({models[0]} tokenizer, {chunk_tokens} tokens, overlap 16)",
            lambda: db.chunk(
                strategy="tokens", size=chunk_tokens, overlap=16, model=models[0], progress=progress
            ),
        )
    step(*chunk_step, lambda s: f"{s.chunks} chunks written, {s.unchanged} documents unchanged")
    step(
        f"embed {', '.join(models)}",
        lambda: db.embed(models=models, progress=progress),
        lambda s: f"{s.encoded} texts encoded",
    )
    step(
        "ensemble create",
        lambda: db.create_ensemble(name=DEMO_ENSEMBLE, members=models, progress=progress),
        lambda s: f"{s.dim}-d, vectors added {s.added}",
    )
    step(
        "cluster k=16",
        lambda: db.cluster(ensemble=DEMO_ENSEMBLE, k=16, seed=42),
        lambda s: (
            f"k={s.k} ({s.algorithm}{', reused' if s.reused else ''}), sizes {sorted(s.sizes, reverse=True)}"
        ),
    )
    for name, params in DEMO_RUNS.items():
        step(
            f"mine {params['method']} -> {name}",
            lambda n=name, p=params: db.mine(**p, **DEMO_MINING, name=n, replace=True, progress=progress),
            lambda s: (
                f"{s.triplets} triplets for {s.queries_covered} queries"
                f" ({s.dropped_false_negatives} likely false negatives dropped)"
            ),
        )
    step(
        "export triplet + parquet",
        lambda: db.export(
            runs=list(DEMO_RUNS), to=export_dir, layout="triplet", parquet=True, keep_ids=True, overwrite=True
        ),
        lambda s: f"{s.rows} rows, columns {', '.join(s.columns)}",
    )
    audit = step("audit", lambda: db.audit(runs=list(DEMO_RUNS)), lambda a: f"{a.runs.height} runs audited")
    checks = step("audit --check", db.check, lambda c: f"{len(c)} checks passed")
    report.checks_passed = len(checks)
    report.audit = audit.runs.select(AUDIT_COLUMNS)
    report.tables = db.sql(
        "SELECT 'documents' AS table_name, count(*) AS rows FROM documents UNION ALL "
        "SELECT 'queries', count(*) FROM queries UNION ALL SELECT 'qrels', count(*) FROM qrels UNION ALL "
        "SELECT 'chunks', count(*) FROM chunks UNION ALL SELECT 'embeddings', count(*) FROM embeddings "
        "UNION ALL SELECT 'ensemble_vectors', count(*) FROM ensemble_vectors UNION ALL "
        "SELECT 'cluster_assignments', count(*) FROM cluster_assignments UNION ALL "
        "SELECT 'triplets', count(*) FROM triplets"
    )
    report.runs = db.sql(
        "SELECT run, method, triplets, queries, round(mean_rank, 1) AS mean_rank, "
        "round(mean_ensemble_sim, 3) AS mean_ensemble_sim, round(cluster_agreement, 3) AS in_query_cluster "
        "FROM run_summary WHERE run IN (SELECT unnest($names)) ORDER BY run",
        {"names": list(DEMO_RUNS)},
    )
    return report
