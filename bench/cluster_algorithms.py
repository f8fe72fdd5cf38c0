"""Clustering algorithms compared on SciFact: what each does to the mining cluster filter.

On a database that already holds SciFact with an ensemble's vectors (default: the paper table's
database, `bench/paper_table.py`; pass a COPY while another process writes the original), for each
algorithm of ``hnm-db cluster --algorithm`` with the same k and seed:

- cluster sizes (chunk texts per cluster: min / median / max);
- neighbour retention: the mean share of each train query's 10 nearest chunks (exact ensemble top-10)
  that lie in the query's own cluster, i.e. how much of a query's hardest candidates the cluster filter
  ``query`` keeps;
- mining coverage: ``mine --method ensemble --cluster-filter query`` on the train split with this run's
  clusters (3 negatives, ranks 0..50, max_score_ratio 0.95, no fallback, top sampling, seed 0):
  queries with a full set of negatives (every positive pair got all 3) and queries with any negative;
- seconds of the ``cluster`` call (fit, assignment of chunk texts and queries, write).

A ``none`` row mines without the cluster filter, for reference. The default (``kmeans``) fit is also
compared with the cluster run stored before ``--algorithm`` had more choices, when the database has one
with the same ensemble, k and seed.

Run: ``nice -n 19 .venv/bin/python bench/cluster_algorithms.py --db /tmp/copy.duckdb [--k 20]``;
prints a markdown table and writes bench/results/cluster_algorithms.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ALGORITHMS = ("kmeans", "minibatch", "gmm", "agglomerative")
NEIGHBOURS = 10
MINING = dict(num_negatives=3, range_max=50, max_score_ratio=0.95, sampling="top", seed=0, split="train")


def _drop_cluster_run(db, run_id: str) -> None:
    with db.store.transaction():
        for table in ("cluster_assignments", "cluster_centroids", "cluster_runs"):
            db.store.execute(f"DELETE FROM {table} WHERE cluster_run_id = ?", [run_id])


def _cluster_timed(db, ensemble: str, k: int, seed: int, algorithm: str):
    """A fresh ``cluster`` call (a stored run of the same parameters is dropped first, so it is timed)."""
    summary = db.cluster(ensemble=ensemble, k=k, seed=seed, algorithm=algorithm)
    if summary.reused:
        _drop_cluster_run(db, summary.cluster_run_id)
        summary = db.cluster(ensemble=ensemble, k=k, seed=seed, algorithm=algorithm)
    return summary


def _query_neighbours(db, ensemble: str) -> tuple[list[str], np.ndarray]:
    """Train query hashes and the content hashes of each one's exact top-10 chunks."""
    from hnm_db.reranker.evaluate import ensemble_top_k

    hashes = [
        r[0]
        for r in db.store.execute(
            "SELECT DISTINCT q.content_hash FROM queries q JOIN effective_qrels r USING (query_id) "
            "WHERE r.split = 'train' AND r.score > 0 ORDER BY 1"
        ).fetchall()
    ]
    chunk_ids, idx, _ = ensemble_top_k(db.store, ensemble, hashes, NEIGHBOURS)
    hash_of = dict(db.store.execute("SELECT chunk_id, content_hash FROM chunks").fetchall())
    return hashes, np.vectorize(hash_of.get, otypes=[object])(chunk_ids[idx])


def _retention(db, run_id: str, q_hashes: list[str], neighbours: np.ndarray) -> float:
    cl = dict(
        db.store.execute(
            "SELECT role || ':' || content_hash, cluster FROM cluster_assignments WHERE cluster_run_id = ?",
            [run_id],
        ).fetchall()
    )
    q = np.array([cl[f"query:{h}"] for h in q_hashes])
    n = np.vectorize(lambda h: cl[f"doc:{h}"])(neighbours)
    return float((n == q[:, None]).mean())


def _coverage(db, ensemble: str, run_id: str | None, name: str) -> tuple[int, int, int]:
    """(queries, queries with a full set of negatives, queries with any negative) of a mining run."""
    kw = dict(cluster_filter="query", cluster_run=run_id) if run_id else dict(cluster_filter="none")
    s = db.mine(method="ensemble", ensemble=ensemble, name=name, replace=True, **MINING, **kw)
    return s.queries, s.queries - s.short_queries, s.queries_covered


def _same_as_stored(db, ensemble: str, k: int, seed: int, new_run: str) -> str:
    """Whether the new kmeans run's assignments equal a stored run made before (algorithm 'auto')."""
    old = db.scalar(
        "SELECT c.cluster_run_id FROM cluster_runs c JOIN ensembles e USING (ensemble_id) WHERE e.name = ? "
        "AND c.k = ? AND c.seed = ? AND json_extract_string(c.params, '$.algorithm') = 'auto' "
        "AND c.cluster_run_id <> ?",
        [ensemble, k, seed, new_run],
    )
    if old is None:
        return "no earlier run to compare with"
    sql = "SELECT role, content_hash, cluster FROM cluster_assignments WHERE cluster_run_id = ? ORDER BY 1, 2"
    same = db.store.execute(sql, [old]).fetchall() == db.store.execute(sql, [new_run]).fetchall()
    return f"assignments {'identical to' if same else 'DIFFERENT from'} the stored run {old}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="a SciFact database (a copy: runs are written)")
    ap.add_argument("--ensemble", default="ens-minilm-l6-minilm-l3-mpnet-base")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cluster_algorithms.md")
    args = ap.parse_args()

    import hnm_db

    rows, notes = [], []
    with hnm_db.open(args.db) as db:
        q_hashes, neighbours = _query_neighbours(db, args.ensemble)
        n_q, full, covered = _coverage(db, args.ensemble, None, "bench-cluster-none")
        rows.append(["none (no cluster filter)", "", "", "", "", f"{full} / {n_q}", f"{covered}", ""])
        for algorithm in args.algorithms.split(","):
            started = time.perf_counter()
            s = _cluster_timed(db, args.ensemble, args.k, args.seed, algorithm)
            seconds = time.perf_counter() - started
            sizes = np.array(s.sizes)
            retention = _retention(db, s.cluster_run_id, q_hashes, neighbours)
            n_q, full, covered = _coverage(db, args.ensemble, s.cluster_run_id, f"bench-cluster-{algorithm}")
            rows.append(
                [
                    algorithm,
                    str(s.k),
                    f"{sizes.min()} / {int(np.median(sizes))} / {sizes.max()}",
                    str(int((sizes == 0).sum())),
                    f"{retention:.3f}",
                    f"{full} / {n_q}",
                    f"{covered}",
                    f"{seconds:.1f}",
                ]
            )
            if algorithm == "kmeans":
                notes.append(
                    f"kmeans: {_same_as_stored(db, args.ensemble, args.k, args.seed, s.cluster_run_id)}"
                )
            print(" | ".join(rows[-1]), file=sys.stderr)
        texts = db.scalar("SELECT count(DISTINCT content_hash) FROM chunks")
    head = [
        "algorithm",
        "k",
        "cluster sizes min / median / max",
        "empty clusters",
        f"neighbour retention (top-{NEIGHBOURS})",
        "queries with all 3 negatives",
        "queries with any negative",
        "seconds",
    ]
    table = "\n".join(
        ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        + ["| " + " | ".join(r) + " |" for r in rows]
    )
    text = (
        f"SciFact, {texts} chunk texts, {len(q_hashes)} distinct train query texts, ensemble {args.ensemble}, "
        f"k={args.k}, seed {args.seed}; mining: --cluster-filter query, {MINING['num_negatives']} negatives, "
        f"ranks 0..{MINING['range_max']}, max_score_ratio {MINING['max_score_ratio']}, no fallback.\n\n"
        + table
        + "\n\n"
        + "\n".join(notes)
        + "\n"
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
