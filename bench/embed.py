"""Embedding throughput of ``hnm-db embed`` against a bare ``SentenceTransformer.encode``.

For each built-in alias, on the first N SciFact documents (one chunk per document: title + abstract) and
the first N/4 queries, in one run and with the same threads and batch size:

* bare:   SentenceTransformer.encode of exactly the texts hnm-db embeds (normalised), in a fresh process;
* hnm-db: ``db.embed(models=[alias])`` in a fresh process (model already registered), excluding model load;
* no-op:  wall time of a second ``hnm-db embed --model ALIAS`` CLI run (process start included);
* peak memory: ru_maxrss of each measuring process (torch allocations included, unlike tracemalloc).

The database is filled with plain SQL inserts so the bench depends only on the embedding stage.
Run: ``nice -n 10 .venv/bin/python bench/embed.py [--data DIR] [--limit N] [--models a,b]``;
the markdown table is printed and written to bench/results/embed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LIMITS = {"mpnet-base": 300, "minilm-l6": 1000, "minilm-l3": 1000}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_texts(data: Path, limit: int) -> tuple[list[dict], list[dict]]:
    docs, queries = [], []
    with open(data / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            if len(docs) >= limit:
                break
            docs.append(json.loads(line))
    with open(data / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            if len(queries) >= max(1, limit // 4):
                break
            queries.append(json.loads(line))
    return docs, queries


def prepare_db(path: Path, data: Path, limit: int, alias: str) -> int:
    """Documents, one chunk each, queries; the alias registered. Returns the number of texts."""
    import hnm_db
    from hnm_db.sources.text import content_hash

    docs, queries = load_texts(data, limit)
    with hnm_db.open(path) as db, db.store.transaction():
        for d in docs:
            text = (d.get("title", "") + "\n" + d["text"]).strip()
            h = content_hash(text)
            db.store.execute(
                "INSERT INTO documents (doc_id, title, text, content_hash) VALUES (?, ?, ?, ?)",
                [d["_id"], d.get("title"), d["text"], content_hash(d["text"])],
            )
            db.store.execute(
                'INSERT INTO chunks VALUES (?, ?, 0, ?, 0, ?, ?, \'{"bench": "one-chunk"}\')',
                [d["_id"] + "#0", d["_id"], text, len(d["text"]), h],
            )
        for q in queries:
            db.store.execute(
                "INSERT INTO queries (query_id, text, content_hash) VALUES (?, ?, ?)",
                [q["_id"], q["text"], content_hash(q["text"])],
            )
    with hnm_db.open(path) as db:
        db.add_model(name=alias, source=alias)
        return db.scalar(
            "SELECT (SELECT count(DISTINCT content_hash) FROM chunks) "
            "+ (SELECT count(DISTINCT content_hash) FROM queries)"
        )


# -- measurements, each in its own process ----------------------------------------------------------


def _preload() -> None:
    """Import torch and sentence-transformers before any timing, identically in both measurements."""
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401


def measure_bare(db_path: str, alias: str, batch_size: int, threads: int) -> dict:
    _preload()
    import hnm_db
    from hnm_db.models import registry as models
    from hnm_db.models.embed import set_threads

    with hnm_db.open(db_path, read_only=True) as db:
        row = models.get_model(db.store, alias)
        docs = [
            r[0]
            for r in db.store.execute("SELECT any_value(text) FROM chunks GROUP BY content_hash").fetchall()
        ]
        queries = [
            r[0]
            for r in db.store.execute("SELECT any_value(text) FROM queries GROUP BY content_hash").fetchall()
        ]
    set_threads(threads)
    t0 = time.perf_counter()
    model = models.load_model(models.resolve_source(alias), max_seq_length=row.max_seq_length)
    t1 = time.perf_counter()
    for texts, prompt in ((docs, row.doc_prompt), (queries, row.query_prompt)):
        model.encode(
            texts,
            prompt=prompt,
            batch_size=batch_size,
            normalize_embeddings=row.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    t2 = time.perf_counter()
    return {"texts": len(docs) + len(queries), "load_s": t1 - t0, "encode_s": t2 - t1, "peak_mb": _peak_mb()}


def measure_hnm(db_path: str, alias: str, batch_size: int, threads: int) -> dict:
    _preload()
    import hnm_db
    from hnm_db.models import registry as models

    load = {"s": 0.0}
    real = models.load_model

    def timed_load(*a, **k):
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            load["s"] += time.perf_counter() - t

    models.load_model = timed_load
    with hnm_db.open(db_path) as db:
        t0 = time.perf_counter()
        summary = db.embed(models=[alias], batch_size=batch_size, threads=threads, progress=False)
        total = time.perf_counter() - t0
    return {
        "texts": summary.encoded,
        "load_s": load["s"],
        "encode_s": total - load["s"],
        "peak_mb": _peak_mb(),
    }


def _child(kind: str, db_path: Path, alias: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--_measure",
        kind,
        "--_db",
        str(db_path),
        "--models",
        alias,
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=_env())
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def noop_run(db_path: Path, alias: str) -> tuple[float, bool, int]:
    cli = [
        str(Path(sys.executable).with_name("hnm-db")),
        "--db",
        str(db_path),
        "--quiet",
        "embed",
        "--model",
        alias,
        "--format",
        "json",
    ]
    t0 = time.perf_counter()
    out = subprocess.run(cli, check=True, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - t0
    rows = json.loads(out.stdout)
    return wall, any(r["loaded"] for r in rows), sum(r["encoded"] for r in rows)


def bench_alias(alias: str, limit: int, args: argparse.Namespace, tmp: Path) -> dict:
    db_path = tmp / f"{alias}.duckdb"
    n = prepare_db(db_path, args.data, limit, alias)
    bare = _child("bare", db_path, alias, args)
    hnm = _child("hnm", db_path, alias, args)
    noop_s, loaded, encoded = noop_run(db_path, alias)
    assert hnm["texts"] == bare["texts"] == n, (hnm, bare, n)
    return {
        "alias": alias,
        "docs": limit,
        "texts": n,
        "bare_tps": bare["texts"] / bare["encode_s"],
        "hnm_tps": hnm["texts"] / hnm["encode_s"],
        "load_s": hnm["load_s"],
        "noop_s": noop_s,
        "noop_loaded": loaded,
        "noop_encoded": encoded,
        "bare_mb": bare["peak_mb"],
        "hnm_mb": hnm["peak_mb"],
    }


def table(rows: list[dict], args: argparse.Namespace) -> str:
    head = (
        "| alias | docs | texts | bare encode texts/s | hnm-db embed texts/s | ratio | model load s "
        "| 2nd run s (CLI, no-op) | 2nd run loads model | peak MB bare | peak MB hnm-db |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['alias']} | {r['docs']} | {r['texts']} | {r['bare_tps']:.1f} | {r['hnm_tps']:.1f} "
            f"| {r['hnm_tps'] / r['bare_tps']:.2f} | {r['load_s']:.1f} | {r['noop_s']:.2f} "
            f"| {'yes' if r['noop_loaded'] else 'no'} | {r['bare_mb']:.0f} | {r['hnm_mb']:.0f} |"
        )
    cpus = len(os.sched_getaffinity(0))
    lines += [
        "",
        f"SciFact ({args.data}): first N documents as one chunk each (title + abstract) and the "
        f"first N/4 queries; batch size {args.batch_size}, {args.threads} torch threads, {cpus} usable "
        "CPUs (shared machine: absolute figures are noisy, the ratio is measured in the same run). "
        "texts/s exclude model load; the no-op time is a whole `hnm-db embed` process. "
        "Peak MB is ru_maxrss of the measuring process.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/scifact"))
    ap.add_argument("--limit", type=int, default=None, help="Documents per alias (default: 1000, mpnet 300).")
    ap.add_argument("--models", default="minilm-l6,minilm-l3,mpnet-base")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "embed.md")
    ap.add_argument("--_measure", choices=["bare", "hnm"], help=argparse.SUPPRESS)
    ap.add_argument("--_db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._measure:
        fn = measure_bare if args._measure == "bare" else measure_hnm
        print(json.dumps(fn(args._db, args.models, args.batch_size, args.threads)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="hnm-bench-embed-") as tmp:
        for alias in args.models.split(","):
            limit = args.limit or DEFAULT_LIMITS.get(alias, 1000)
            print(f"# {alias}: {limit} documents ...", file=sys.stderr, flush=True)
            rows.append(bench_alias(alias, limit, args, Path(tmp)))
    text = table(rows, args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# hnm-db embed bench\n\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
