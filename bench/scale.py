"""Scaling out on Ray (``--engine ray``) against the local path, on one machine.

1. Embedding throughput: ``embed`` of the first N SciFact abstracts (one chunk each) plus N/4 queries with
   one model, local (torch threads = --threads) against Ray with 1 and 2 model replicas (1 torch thread
   each, 0.5 CPU asked per replica); every Ray run must give the local run's vectors (digest compared).
2. Mining wall time against shard count: ``mine --method ensemble`` on a synthetic set (clustered unit
   vectors, bench/mine.py's generator) locally and with S shard actors; the triplets' digest must be the
   same for every S.
3. Shard ingest: the synthetic set's vectors exported as Parquet shards with DuckDB's COPY, then ingested
   with ``hnm_db.engines.ray_engine.ingest_embeddings`` (INSERT ... WHERE NOT EXISTS), once and once more (a
   resumed run re-reading shards that are already in).

The local Ray cluster is started once (``ray.init(num_cpus=--cpus)``); its start-up is reported apart
and not counted in any row. Run: ``nice -n 19 .venv/bin/python bench/scale.py [--docs N] [--chunks N]
[--queries M] [--shards 1,2,4]``; prints a markdown table and writes bench/results/scale.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _digest(db, sql: str) -> str:
    h = hashlib.blake2b(digest_size=8)
    for batch in db.store.arrow_batches(sql, batch_rows=50_000):
        for row in batch.to_pylist():
            h.update(repr(tuple(row.values())).encode())
    return h.hexdigest()


EMB_SQL = "SELECT role, content_hash, vec FROM embeddings ORDER BY role, content_hash"
TRIPLETS_SQL = (
    "SELECT t.* EXCLUDE (run_id) FROM triplets t JOIN mining_runs r USING (run_id) "
    "WHERE r.name = '{name}' ORDER BY ALL"
)


def embedding(data: Path, work: Path, model: str, n_docs: int, threads: int, stage: Path) -> list[dict]:
    import hnm_db
    from hnm_db.engines.ray_engine import RayParams

    template = work / "embed-template.duckdb"
    with hnm_db.open(template) as db:
        db.ingest_beir(str(data))
        db.store.execute(
            f"DELETE FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM documents ORDER BY doc_id LIMIT {n_docs})"
        )
        db.store.execute(
            f"DELETE FROM queries WHERE query_id NOT IN (SELECT query_id FROM queries ORDER BY query_id LIMIT {n_docs // 4})"
        )
        db.chunk(strategy="whole", progress=False)
        n_texts = db.scalar("SELECT count(DISTINCT content_hash) FROM chunks") + db.scalar(
            "SELECT count(DISTINCT content_hash) FROM queries"
        )
    rows = []
    runs = [("local", None, threads)] + [
        (f"ray, {r} replica{'s' if r > 1 else ''}", RayParams(stage=str(stage), replicas=r, buckets=8), 1)
        for r in (1, 2)
    ]
    reference = None
    for label, ray, th in runs:
        path = work / "embed.duckdb"
        shutil.copy(template, path)
        with hnm_db.open(path) as db:
            t = time.perf_counter()
            db.embed(models=[model], batch_size=32, threads=th, progress=False, ray=ray)
            seconds = time.perf_counter() - t
            digest = _digest(db, EMB_SQL)
        reference = reference or digest
        rows.append(
            {
                "what": f"embed {model}: {label} ({th} torch thread{'s' if th > 1 else ''} each)",
                "seconds": seconds,
                "rate": f"{n_texts / seconds:.1f} texts/s",
                "same": "reference" if label == "local" else ("yes" if digest == reference else "NO"),
            }
        )
        path.unlink()
    return rows


def mining(work: Path, n_chunks: int, n_queries: int, shards: list[int], stage: Path) -> list[dict]:
    from mine import build_synthetic

    import hnm_db
    from hnm_db.engines.ray_engine import RayParams

    path = work / "synthetic.duckdb"
    t = time.perf_counter()
    build_synthetic(path, n_chunks, n_queries)
    build_s = time.perf_counter() - t
    rows = []
    reference = None
    kw = dict(ensemble="syn", split="train", num_negatives=5, range_max=50, seed=0)
    with hnm_db.open(path) as db:
        for s in [0, *shards]:
            ray = None if s == 0 else RayParams(stage=str(stage), shards=s, cpus_per_actor=min(0.5, 2 / s))
            name = "local" if s == 0 else f"ray-{s}"
            t = time.perf_counter()
            summary = db.mine(method="ensemble", name=name, ray=ray, **kw)
            seconds = time.perf_counter() - t
            digest = _digest(db, TRIPLETS_SQL.format(name=name))
            reference = reference or digest
            rows.append(
                {
                    "what": f"mine {n_chunks:,} x 384 / {n_queries:,} queries: "
                    + ("local" if s == 0 else f"ray, {s} shard{'s' if s > 1 else ''}"),
                    "seconds": seconds,
                    "rate": f"{summary.triplets:,} triplets",
                    "same": "reference" if s == 0 else ("yes" if digest == reference else "NO"),
                }
            )
    rows.append(
        {"what": "(building the synthetic set, not timed above)", "seconds": build_s, "rate": "", "same": ""}
    )
    return rows


def ingest(work: Path, buckets: int) -> list[dict]:
    import hnm_db
    from hnm_db.engines.ray_engine import ingest_embeddings

    path = work / "synthetic.duckdb"
    shards = work / "ingest-shards"
    rows = []
    with hnm_db.open(path) as db:
        n = db.scalar("SELECT count(*) FROM embeddings WHERE model_id = 'syn-m'")
        t = time.perf_counter()
        db.store.execute(
            f"COPY (SELECT content_hash, vec, hash(content_hash) % {buckets} AS bucket FROM embeddings "
            f"WHERE model_id = 'syn-m') TO '{shards}' (FORMAT parquet, PARTITION_BY (bucket))"
        )
        rows.append(
            {"what": f"COPY {n:,} vectors to {buckets} Parquet shards", "seconds": time.perf_counter() - t}
        )
        files = sorted(shards.rglob("*.parquet"))
        for label in (
            "ingest the shards (INSERT ... WHERE NOT EXISTS)",
            "ingest them again (resume: adds 0 rows)",
        ):
            t = time.perf_counter()
            added = sum(ingest_embeddings(db.store, "syn-copy", "doc", f) for f in files)
            rows.append({"what": f"{label}: {added:,} rows", "seconds": time.perf_counter() - t})
    for r in rows:
        r.update(rate=f"{n / r['seconds']:,.0f} vectors/s", same="")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "scifact")
    ap.add_argument("--model", default="minilm-l3")
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the local embedding run")
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=2_000)
    ap.add_argument("--shards", default="1,2,4")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    ap.add_argument("--skip-embedding", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.md")
    args = ap.parse_args()
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    start_s = time.perf_counter() - t
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("HNM_BENCH_TMP")) as tmp:
        work = Path(tmp)
        stage = work / "stage"
        if not args.skip_embedding:
            rows += embedding(args.data, work, args.model, args.docs, args.threads, stage)
        rows += mining(work, args.chunks, args.queries, [int(s) for s in args.shards.split(",")], stage)
        rows += ingest(work, 8)
    ray.shutdown()
    load = os.getloadavg()
    lines = [
        "| what | seconds | rate | same result as local |",
        "|---|---:|---|---|",
        *(f"| {r['what']} | {r['seconds']:.2f} | {r['rate']} | {r['same']} |" for r in rows),
        "",
        f"Local Ray cluster: ray.init(num_cpus={args.cpus}), started in {start_s:.1f} s (not in the rows). "
        f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs.",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# bench/scale.py\n\n" + " ".join(sys.argv[1:]) + "\n\n" + text + "\n")


if __name__ == "__main__":
    main()
