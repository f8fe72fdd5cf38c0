"""Mining speed and agreement: hnm-db's three methods vs sentence-transformers' ``mine_hard_negatives``.

1. SciFact (BEIR layout, train split), one chunk per document, embeddings already cached in the bench
   database (built once with minilm-l6 through the hnm-db CLI if missing: ~5 min on 2 CPU cores):
   - wall time of ``mine`` for ``ensemble`` (a one-model ensemble of minilm-l6), ``bm25``, ``random``;
   - sentence-transformers' ``util.mine_hard_negatives`` with the same model's vectors, matching
     settings (range 0..range_max, relative_margin 0.05 == our max_score_ratio 0.95, top sampling,
     num_negatives) and its embedding cache pre-filled with our vectors, so both time mining only;
   - overlap of the two negative sets: share of ST's (query, negative text) pairs we also chose.
   Times are the best of 3 calls on each side.
2. Synthetic: N chunks x 384 dims (default 1,000,000) and M queries (default 10,000), vectors written
   straight into a temporary DuckDB (no model); ``mine --method ensemble`` runs in a fresh process whose
   wall time, CPU time and peak RSS (VmHWM, DuckDB's buffers included) are reported.

Run: ``nice -n 10 .venv/bin/python bench/mine.py [--data DIR] [--skip-scifact] [--skip-synthetic]
[--chunks N] [--queries M]``; prints a markdown table and writes bench/results/mine.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ENSEMBLE = "minilm"  # a one-model ensemble of the built-in minilm-l6
MODEL = "minilm-l6"
REPEATS = 3


def cli(db: Path, *args: str) -> None:
    cmd = [sys.executable, "-c", "from hnm_db.cli import main; main()", "--db", str(db), "--quiet", *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def prepare_scifact(db: Path, data: Path) -> None:
    """Ingest, chunk (whole documents), embed with minilm-l6 and build a one-model ensemble, once."""
    import hnm_db

    if db.exists():
        with hnm_db.open(db) as d:
            if d.scalar(
                "SELECT count(*) FROM ensemble_vectors ev JOIN ensembles e USING (ensemble_id) "
                "WHERE e.name = ?",
                [ENSEMBLE],
            ):
                return
    db.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    cli(db, "ingest", "beir", str(data), "--on-duplicate", "skip")
    cli(db, "chunk", "--strategy", "whole")
    cli(db, "embed", "-m", MODEL)
    cli(db, "ensemble", "create", ENSEMBLE, "-m", MODEL)
    print(f"prepared {db} in {time.perf_counter() - t:.0f}s", file=sys.stderr)


class CachedModel:
    """What ``mine_hard_negatives`` touches of a model once its embedding cache is warm."""

    def __init__(self) -> None:
        import torch
        from sentence_transformers import util

        self.device = torch.device("cpu")
        self.model_card_data = SimpleNamespace(base_model=None)
        self.similarity = util.cos_sim
        self.similarity_pairwise = util.pairwise_cos_sim

    def encode_query(self, *a, **k):  # noqa: ARG002 - the cache must make encoding unnecessary
        raise AssertionError("cache miss: sentence-transformers tried to encode queries")

    encode_document = encode_query


def _st_cache(folder: Path, queries: list[str], corpus: list[str], qv: np.ndarray, cv: np.ndarray) -> None:
    """Write ST's cache files under the names its ``cache_folder`` logic computes (model name '')."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind, texts, vecs in (("query", queries, qv), ("corpus", corpus, cv)):
        h = hashlib.sha256(repr(("", None, None, texts)).encode()).hexdigest()
        np.save(folder / f"{kind}_embeddings_{h}.npy", vecs.astype(np.float32))


def scifact(db_path: Path, n_neg: int, range_max: int) -> tuple[list[dict], dict]:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    import hnm_db
    from hnm_db.store.vectors import read_vectors

    rows = []
    with hnm_db.open(db_path) as db:
        for method in ("ensemble", "bm25", "random"):
            times = []
            for _ in range(REPEATS):  # best of REPEATS: the first call also pays imports
                t = time.perf_counter()
                s = db.mine(
                    method=method,
                    ensemble=ENSEMBLE if method == "ensemble" else None,
                    split="train",
                    num_negatives=n_neg,
                    range_max=range_max,
                    max_score_ratio=0.95,
                    sampling="top",
                    name=f"bench-{method}",
                    replace=True,
                )
                times.append(time.perf_counter() - t)
            rows.append(
                {
                    "what": f"hnm-db mine --method {method}",
                    "seconds": min(times),
                    "queries": s.queries_covered,
                    "triplets": s.triplets,
                }
            )
        pairs = db.sql(
            "SELECT q.text AS query, c.text AS positive FROM mining_positives p "
            "JOIN queries q USING (query_id) JOIN chunks c USING (chunk_id) WHERE p.split = 'train' "
            "ORDER BY p.query_id, p.doc_id"
        )
        corpus = db.sql("SELECT text FROM chunks ORDER BY chunk_id")["text"].to_list()
        model_id = db.scalar("SELECT model_id FROM models WHERE name = ?", [MODEL])
        qk, qm = read_vectors(
            db.store,
            "SELECT content_hash, vec FROM embeddings WHERE model_id = ? AND role = 'query'",
            [model_id],
        )
        ck, cm = read_vectors(
            db.store,
            "SELECT content_hash, vec FROM embeddings WHERE model_id = ? AND role = 'doc'",
            [model_id],
        )
        ours = db.sql(
            "SELECT q.text AS query, c.text AS negative FROM triplets t JOIN mining_runs r USING (run_id) "
            "JOIN queries q USING (query_id) JOIN chunks c ON c.chunk_id = t.negative_chunk_id "
            "WHERE r.name = 'bench-ensemble'"
        )
    from hnm_db.sources.text import content_hash

    qvec = dict(zip(qk["content_hash"], qm, strict=True))
    cvec = dict(zip(ck["content_hash"], cm, strict=True))
    queries = list(dict.fromkeys(pairs["query"].to_list()))
    full_corpus = list(dict.fromkeys(corpus + pairs["positive"].to_list()))
    with tempfile.TemporaryDirectory() as tmp:
        _st_cache(
            Path(tmp),
            queries,
            full_corpus,
            np.stack([qvec[content_hash(q)] for q in queries]),
            np.stack([cvec[content_hash(c)] for c in full_corpus]),
        )
        times = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            out = mine_hard_negatives(
                Dataset.from_polars(pairs),
                CachedModel(),
                corpus=corpus,
                range_min=0,
                range_max=range_max,
                relative_margin=0.05,
                num_negatives=n_neg,
                sampling_strategy="top",
                output_format="triplet",
                cache_folder=tmp,
                verbose=False,
            )
            times.append(time.perf_counter() - t)
        st_seconds = min(times)
    theirs = set(zip(out["query"], out["negative"], strict=True))
    mine_set = set(zip(ours["query"].to_list(), ours["negative"].to_list(), strict=True))
    rows.append(
        {
            "what": "sentence-transformers mine_hard_negatives (cache warm)",
            "seconds": st_seconds,
            "queries": len({q for q, _ in theirs}),
            "triplets": len(out),
        }
    )
    agreement = {
        "theirs": len(theirs),
        "ours": len(mine_set),
        "shared": len(theirs & mine_set),
        "overlap_of_theirs": len(theirs & mine_set) / max(1, len(theirs)),
    }
    return rows, agreement


SYNTH_CHILD = r"""
import json, resource, sys, time
import hnm_db
t = time.perf_counter()
with hnm_db.open(sys.argv[1]) as db:
    s = db.mine(method="ensemble", ensemble="syn", split="train", num_negatives=5, range_max=50, name="syn", replace=True)
ru = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM, not ru_maxrss: Linux carries the forking parent's high-water mark into a child's ru_maxrss
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"seconds": time.perf_counter() - t, "peak_rss_mb": hwm / 1024, "cpu_seconds": ru.ru_utime + ru.ru_stime,
                  "triplets": s.triplets, "queries": s.queries_covered, "durations": s.stats.get("durations")}))
"""


def build_synthetic(path: Path, n_chunks: int, n_queries: int, dim: int = 384, seed: int = 0) -> None:
    """Clustered unit vectors: 1,000 centres + noise; each query is a noisy copy of its positive chunk."""
    import pyarrow as pa

    import hnm_db
    from hnm_db.store.vectors import write_vectors

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    with hnm_db.open(path) as db:
        db.store.execute(
            "INSERT INTO models (model_id, name, source, fingerprint, dim) VALUES ('syn-m', 'syn', 'synthetic', 'fp-syn', ?)",
            [dim],
        )
        db.store.execute(
            "INSERT INTO ensembles (ensemble_id, name, members, dim) VALUES ('syn-e', 'syn', ?, ?)",
            [json.dumps([{"model_id": "syn-m", "weight": 1.0}]), dim],
        )
        positives = rng.choice(n_chunks, size=n_queries, replace=False)
        pos_vecs = {}
        step = 100_000
        for s in range(0, n_chunks, step):
            n = min(step, n_chunks - s)
            ids = np.arange(s, s + n)
            v = centres[rng.integers(0, 1000, n)] + rng.normal(size=(n, dim)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            hashes = [f"c{i:012d}" for i in ids]
            table = pa.table(
                {
                    "chunk_id": [f"k{i}" for i in ids],
                    "doc_id": [f"d{i}" for i in ids],
                    "ord": pa.array(np.zeros(n, np.int32)),
                    "text": ["t"] * n,
                    "start_char": pa.array(np.zeros(n, np.int32)),
                    "end_char": pa.array(np.ones(n, np.int32)),
                    "content_hash": hashes,
                    "chunker": ["{}"] * n,
                }
            )
            with db.store.registered("_syn", table):
                db.store.execute("INSERT INTO chunks SELECT * FROM _syn")
            write_vectors(
                db.store,
                "ensemble_vectors",
                {"ensemble_id": "syn-e", "role": "doc", "content_hash": hashes},
                v,
            )
            write_vectors(
                db.store, "embeddings", {"model_id": "syn-m", "role": "doc", "content_hash": hashes}, v
            )
            mask = (positives >= s) & (positives < s + n)
            for p in positives[mask]:
                pos_vecs[int(p)] = v[p - s]
        qv = np.stack([pos_vecs[int(p)] for p in positives]) + 0.05 * rng.normal(
            size=(n_queries, dim)
        ).astype(np.float32)
        qv /= np.linalg.norm(qv, axis=1, keepdims=True)
        qh = [f"q{i:012d}" for i in range(n_queries)]
        queries = pa.table(
            {
                "query_id": [f"q{i}" for i in range(n_queries)],
                "text": ["q"] * n_queries,
                "content_hash": qh,
                "doc_id": [f"d{p}" for p in positives],
            }
        )
        with db.store.registered("_q", queries):
            db.store.execute(
                "INSERT INTO queries (query_id, text, content_hash) SELECT query_id, text, content_hash FROM _q"
            )
            db.store.execute("INSERT INTO qrels SELECT query_id, doc_id, 1, 'train' FROM _q")
        write_vectors(
            db.store, "ensemble_vectors", {"ensemble_id": "syn-e", "role": "query", "content_hash": qh}, qv
        )
        write_vectors(db.store, "embeddings", {"model_id": "syn-m", "role": "query", "content_hash": qh}, qv)


def synthetic(n_chunks: int, n_queries: int, reuse: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(dir=os.environ.get("HNM_BENCH_TMP")) as tmp:
        path = reuse or Path(tmp) / "synthetic.duckdb"
        t = time.perf_counter()
        if not path.exists():
            build_synthetic(path, n_chunks, n_queries)
        build_s = time.perf_counter() - t
        out = subprocess.run(
            [sys.executable, "-c", SYNTH_CHILD, str(path)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["build_seconds"] = build_s
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "scifact")
    ap.add_argument("--db", type=Path, default=ROOT / "bench" / ".cache" / "scifact-mine.duckdb")
    ap.add_argument("--num-negatives", type=int, default=5)
    ap.add_argument("--range-max", type=int, default=50)
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--skip-scifact", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument(
        "--synthetic-db",
        type=Path,
        default=None,
        help="Keep the synthetic database here and reuse it when it exists (else a temp file).",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mine.md")
    args = ap.parse_args()
    lines = [
        "# Mining bench",
        "",
        f"CPU cores: {os.cpu_count()}; num_negatives {args.num_negatives}, "
        f"range 0..{args.range_max}, max_score_ratio 0.95 (relative_margin 0.05), top sampling.",
        "",
    ]
    if not args.skip_scifact:
        prepare_scifact(args.db, args.data)
        rows, agree = scifact(args.db, args.num_negatives, args.range_max)
        lines += [
            "## SciFact train split (minilm-l6 vectors cached)",
            "",
            "| what | seconds | queries | triplets |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {r['what']} | {r['seconds']:.2f} | {r['queries']} | {r['triplets']} |" for r in rows]
        lines += [
            "",
            f"Agreement with sentence-transformers (same model, same settings): "
            f"{agree['shared']} of its {agree['theirs']} (query, negative) pairs also chosen by hnm-db "
            f"= **{100 * agree['overlap_of_theirs']:.1f}%** (hnm-db chose {agree['ours']}).",
            "",
        ]
    if not args.skip_synthetic:
        r = synthetic(args.chunks, args.queries, args.synthetic_db)
        d = r.get("durations") or {}
        lines += [
            f"## Synthetic: {args.chunks:,} chunks x 384 dims, {args.queries:,} queries",
            "",
            "| what | value |",
            "|---|---:|",
            f"| mine --method ensemble, wall seconds (fresh process) | {r['seconds']:.1f} |",
            f"| of which exact blocked top-k scoring | {d.get('score_s', float('nan')):.1f} |",
            f"| CPU seconds (user + system; the machine's load inflates wall time) | {r.get('cpu_seconds', float('nan')):.0f} |",
            f"| peak RSS (MB) | {r['peak_rss_mb']:.0f} |",
            f"| triplets written | {r['triplets']:,} |",
            f"| (building the synthetic database, not mining) seconds | {r['build_seconds']:.0f} |",
            "",
        ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
