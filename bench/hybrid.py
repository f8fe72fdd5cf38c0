"""First-stage nDCG@10 on SciFact: each model, the dense ensemble, the hybrid, the tuned hybrid.

Needs a database with SciFact ingested, one chunk per document (title + text) and all three models
embedded (minilm-l6, minilm-l3, mpnet-base), e.g. a copy of the paper-table database
(``bench/paper_table.py``); no model is loaded, nothing is trained.

1. **SciFact test** (300 queries, BEIR's split) in ``--db``: creates (or reuses) one-model ensembles,
   the equal-weight dense ensemble of the three, the hybrid (the same + ``--bm25`` x BM25), and tunes the
   hybrid on dev queries carved from the 809 train queries (``ensemble tune``, seed ``--seed``); every
   first stage is evaluated with ``hnm-db eval`` (no model), k = ``--k``.
2. **Check split** (against weights that only fit their dev queries): a copy of the database in which the
   test judgements are deleted and the train queries re-split by ``hnm-db split --test-ratio 0.3 --seed
   1``, so 30% of the train queries become the test split of the copy; the hybrid is tuned again on dev
   queries carved from the remaining 70% and every first stage is evaluated on that 30%.

Run: ``nice -n 19 .venv/bin/python bench/hybrid.py --db /tmp/h13a.duckdb``; prints a markdown table and
writes bench/results/hybrid.md. Modifies ``--db`` (adds ensembles and eval results): use a copy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODELS = ("minilm-l6", "minilm-l3", "mpnet-base")


def first_stages(db, args) -> dict[str, dict]:
    """Create the ensembles, tune the hybrid, and return {label: ensemble name or 'bm25'} with tuning info."""
    stages: dict[str, dict] = {"BM25": {"first_stage": "bm25"}}
    for m in MODELS:
        db.create_ensemble(name=f"single-{m}", members=[m], progress=False)
        stages[m] = {"first_stage": f"ensemble:single-{m}"}
    db.create_ensemble(name="h13-dense", members=list(MODELS), progress=False)
    stages["dense ensemble (equal weights)"] = {"first_stage": "ensemble:h13-dense"}
    db.create_ensemble(name="h13-hybrid", members=list(MODELS), bm25=args.bm25, progress=False)
    stages[f"hybrid (dense equal + {args.bm25:g} BM25)"] = {"first_stage": "ensemble:h13-hybrid"}
    t = time.perf_counter()
    tuned = db.tune_ensemble(ensemble="h13-hybrid", seed=args.seed, replace=True, progress=False)
    seconds = time.perf_counter() - t
    stages["tuned hybrid"] = {
        "first_stage": f"ensemble:{tuned.name}",
        "weights": tuned.weights,
        "dev": (tuned.source_dev_score, tuned.dev_score, tuned.dev_queries, tuned.trials, seconds),
    }
    return stages


def evaluate(db, stages: dict[str, dict], k: int) -> dict[str, float]:
    out = {}
    for label, s in stages.items():
        row = db.evaluate(model=None, first_stage=s["first_stage"], k=k, split="test").rows[0]
        out[label] = row["ndcg@10"]
        print(f"  {label}: nDCG@10 {row['ndcg@10']:.4f} ({row['queries']} queries)", file=sys.stderr)
    return out


def make_check_copy(src: Path, dst: Path, seed: int, ratio: float) -> None:
    """``dst``: ``src`` without test judgements, its train queries re-split by ``hnm-db split``."""
    import hnm_db

    for suffix in ("", ".wal"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    shutil.copy(src, dst)
    if Path(str(src) + ".wal").exists():
        shutil.copy(str(src) + ".wal", str(dst) + ".wal")
    with hnm_db.open(dst) as db:
        with db.store.transaction():
            db.store.execute("DELETE FROM qrels WHERE split = 'test'")
            db.store.execute("UPDATE qrels SET split = 'unsplit' WHERE split = 'train'")
        db.split(test_ratio=ratio, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="a COPY of a SciFact database with 3 models")
    ap.add_argument("--bm25", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0, help="seed of the dev draw and of the weight search")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--check-seed", type=int, default=1)
    ap.add_argument("--check-ratio", type=float, default=0.3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hybrid.md")
    args = ap.parse_args()
    import hnm_db

    started = time.perf_counter()
    load = os.getloadavg()[0]
    print("SciFact test:", file=sys.stderr)
    with hnm_db.open(args.db) as db:
        stages = first_stages(db, args)
        test = evaluate(db, stages, args.k)
        n_train = db.scalar("SELECT count(DISTINCT query_id) FROM effective_qrels WHERE split = 'train'")
    check_db = args.db.with_name(args.db.stem + "-check.duckdb")
    make_check_copy(args.db, check_db, args.check_seed, args.check_ratio)
    print("check split:", file=sys.stderr)
    with hnm_db.open(check_db) as db:
        check_stages = first_stages(db, args)
        check = evaluate(db, check_stages, args.k)
        n_check = db.scalar("SELECT count(DISTINCT query_id) FROM effective_qrels WHERE split = 'test'")
        n_rest = db.scalar("SELECT count(DISTINCT query_id) FROM effective_qrels WHERE split = 'train'")
    for suffix in ("", ".wal"):
        Path(str(check_db) + suffix).unlink(missing_ok=True)

    def weights(w: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.3f}" for k, v in w.items())

    t, c = stages["tuned hybrid"], check_stages["tuned hybrid"]
    lines = [
        f"| first stage | SciFact test ({int(n_train)} train queries tune) | check split: "
        f"{int(n_check)} of the train queries (`split --test-ratio {args.check_ratio:g} --seed "
        f"{args.check_seed}`; the other {int(n_rest)} tune) |",
        "|---|---:|---:|",
        *(f"| {label} | {test[label]:.3f} | {check[label]:.3f} |" for label in test),
        "",
        "Tuned weights on the simplex (dense members and BM25 sum to 1) and dev nDCG@10 (source hybrid -> tuned):",
        "",
        f"- SciFact test run: {weights(t['weights'])}; dev {t['dev'][0]:.3f} -> {t['dev'][1]:.3f} on "
        f"{t['dev'][2]} dev queries, {t['dev'][3]} weight vectors, {t['dev'][4]:.0f} s",
        f"- check-split run: {weights(c['weights'])}; dev {c['dev'][0]:.3f} -> {c['dev'][1]:.3f} on "
        f"{c['dev'][2]} dev queries, {c['dev'][3]} weight vectors, {c['dev'][4]:.0f} s",
        "",
        f"nDCG@10, exact search, first stage alone (k={args.k}); BM25 weight of the hybrid {args.bm25:g}; "
        f"tune seed {args.seed}. Total {time.perf_counter() - started:.0f} s; load average {load:.1f} at the "
        f"start on {os.cpu_count()} CPU cores (above the core count: shared with other jobs, seconds inflated).",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# First-stage nDCG@10: models, dense ensemble, hybrid, tuned hybrid (bench/hybrid.py)\n\n"
        + text
        + "\n"
    )
    print(json.dumps({"test": test, "check": check}), file=sys.stderr)


if __name__ == "__main__":
    main()
