"""Long documents (issue 23): which chunking and which chunk-to-document aggregate make the best first
stage, and the paper's comparison of re-rankers trained on ensemble, BM25 and random negatives when the
documents are long and the positives come from judged spans.

Part 1, first stages (``--part first``): for every chunking of ``CHUNKINGS`` (its own database, since a
database holds one chunking), ingest the BEIR folder (spans/ included), chunk, embed with ``--models``,
build one single-model ensemble per model, their equal-weight ensemble and the hybrid (ensemble + 0.3 x
min-max BM25), and evaluate BM25 and those on ``--split`` (first stage alone, top ``--k`` chunks) with each
aggregate: first (FirstP), max (MaxP), sum-top-3 (SumP); plus the hybrid with weights tuned by
``ensemble tune`` on dev queries carved from the train split (seed 0; never the reported split). Reports document nDCG@10 and recall@k, and
span recall@10 (a chunk overlapping a judged span in the top 10) with the chunks and embedding seconds.

Part 2, re-rankers (``--part rerank``): on ``--rerank-chunking`` (default: the chunking whose best first
stage scored highest in part 1), mine the train split once per arm with the same window, guard, pool
and seed, every arm's positives being the chunks that overlap a judged span (``--positive span``):
ensemble (the paper's method: K-means cluster of the query), bm25, random, and the ensemble with
same-document negatives (chunks of the positive meeting ``--span-gap`` characters from every judged
span). One cross-encoder per arm and seed (same base, steps, pairs per step, dev queries carved from
train), evaluated on ``--split`` re-ranking the best first stage's top ``--rerank-k`` with the best
aggregate, with paired randomization tests (per-query nDCG@10, seeds averaged) against each baseline
and against the first stage alone.

Every step is skipped when its output exists (by name, with the same settings), so a rerun resumes and
re-prints. Prints one markdown report and writes it to bench/results/long_docs.md.

    nice -n 10 .venv/bin/python bench/long_docs.py --part first     # QMSum: ~10k-20k chunks per chunking
    nice -n 10 .venv/bin/python bench/long_docs.py                  # both parts (hours on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

import hnm_db  # noqa: E402
from hnm_db.params import ChunkParams, MiningParams, TrainParams  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QMSUM = (ROOT / ".." / "shared" / "datasets" / "qmsum").resolve()
CACHE = Path(os.environ.get("HNM_CACHE") or Path.home() / ".cache" / "hnm-db") / "long_docs"
OUT = ROOT / "bench" / "results" / "long_docs.md"

#: name -> how documents are cut (token budgets in minilm-l6's tokenizer, which minilm-l3 shares).
CHUNKINGS: dict[str, ChunkParams] = {
    "whole": ChunkParams("whole"),
    "tokens-254-32": ChunkParams("tokens", 254, 32, "minilm-l6"),
    "tokens-254-0": ChunkParams("tokens", 254, 0, "minilm-l6"),
    "tokens-128-32": ChunkParams("tokens", 128, 32, "minilm-l6"),
    "tokens-128-0": ChunkParams("tokens", 128, 0, "minilm-l6"),
    "sentences-254": ChunkParams("sentences", 254, 0, "minilm-l6"),
    "lines-254": ChunkParams("lines", 254, 0, "minilm-l6"),
    "lines-128": ChunkParams("lines", 128, 0, "minilm-l6"),
}
AGGREGATES = ("first", "max", "sum-top-3")
HYBRID_BM25 = 0.3
#: Mining, the same for every arm (method, ensemble, cluster filter and same-document negatives per arm).
MINING = MiningParams(
    method="ensemble",
    ensemble="ens",
    split="train",
    num_negatives=7,
    range_max=50,
    fallback_depth=200,
    max_score_ratio=0.95,
    guard="pair",
    positive="span",
    min_overlap=0.5,
    seed=0,
)
#: Training, the same for every arm (run, out, name, seed per model); ``--steps``/``--max-length`` override.
TRAINING = TrainParams(
    run="<arm>",
    out="<per model>",
    base="minilm-l6",
    loss="lce",
    group_size=4,
    batch_size=16,
    max_steps=60,
    max_length=160,
    lr=1e-4,
    head_lr=1e-3,
    distill_steps=0,
    dev_ratio=0.1,
    dev_k=20,
    eval_steps=30,
)


def log(msg: str) -> None:
    print(f"[long-docs {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Setup:
    data: Path
    split: str
    models: tuple[str, ...]
    k: int
    timings: dict

    def db_path(self, chunking: str) -> Path:
        return CACHE / f"{self.data.name}_{chunking}.duckdb"


def _timings_path() -> Path:
    return CACHE / "timings.json"


def prepare(setup: Setup, chunking: str) -> hnm_db.Database:
    """The database of one chunking: ingested, chunked, embedded, with the single, ensemble and hybrid
    first stages; seconds of chunking and embedding are kept in CACHE/timings.json (first run only)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    db = hnm_db.open(setup.db_path(chunking))
    t = setup.timings.setdefault(f"{setup.data.name}/{chunking}", {})
    if db.scalar("SELECT count(*) FROM documents") == 0:
        log(f"{chunking}: ingest {setup.data}")
        db.ingest_beir(setup.data)
    start = time.perf_counter()
    summary = db.chunk(CHUNKINGS[chunking], progress=True)
    if summary.documents:
        t["chunk_s"] = round(time.perf_counter() - start, 1)
    t["chunks"] = db.scalar("SELECT count(*) FROM chunks")
    for model in setup.models:
        start = time.perf_counter()
        embedded = db.embed(models=[model], what="all", progress=True)
        if embedded.encoded:
            t.setdefault("embed_s", {})[model] = round(time.perf_counter() - start, 1)
            log(f"{chunking}: {model} embedded {embedded.encoded} texts in {t['embed_s'][model]:.0f}s")
        if not _has_ensemble(db, model):
            db.create_ensemble(name=model, members=[model], progress=False)
    if len(setup.models) > 1 and not _has_ensemble(db, "ens"):
        db.create_ensemble(name="ens", members=list(setup.models), progress=False)
    if not _has_ensemble(db, "hyb"):
        db.create_ensemble(name="hyb", members=list(setup.models), bm25=HYBRID_BM25, progress=False)
    if not _has_ensemble(db, "hyb-tuned"):  # weights fitted on dev queries carved from train, seed 0
        start = time.perf_counter()
        tuned = db.tune_ensemble(ensemble="hyb", seed=0, progress=False)
        t["tune_s"] = round(time.perf_counter() - start, 1)
        t["tuned_weights"] = tuned.weights
    _timings_path().write_text(json.dumps(setup.timings, indent=1, sort_keys=True))
    return db


def _has_ensemble(db: hnm_db.Database, name: str) -> bool:
    return bool(db.scalar("SELECT count(*) FROM ensembles WHERE name = ?", [name]))


def stages(setup: Setup) -> dict[str, str]:
    out = {"BM25": "bm25", **{m: f"ensemble:{m}" for m in setup.models}}
    if len(setup.models) > 1:
        out["ensemble"] = "ensemble:ens"
    out[f"hybrid (+{HYBRID_BM25:g} BM25)"] = "ensemble:hyb"
    out["tuned hybrid"] = "ensemble:hyb-tuned"
    return out


def stored(
    db: hnm_db.Database, split: str, first_stage: str, k: int, model: str, aggregate: str
) -> dict | None:
    """The metrics of a stored result with these settings, or None."""
    row = db.scalar(
        "SELECT metrics FROM eval_results WHERE split = ? AND first_stage = ? AND k = ? AND model = ? "
        "AND coalesce(params ->> 'aggregate', 'max') = ? AND per_query IS NOT NULL "
        "ORDER BY created_at DESC LIMIT 1",
        [split, first_stage, k, model, aggregate],
    )
    return None if row is None else json.loads(row)


def first_stage_rows(setup: Setup, chunking: str) -> list[dict]:
    db = prepare(setup, chunking)
    rows = []
    try:
        for label, stage in stages(setup).items():
            for agg in AGGREGATES:
                values = stored(db, setup.split, stage, setup.k, f"first-stage:{stage}", agg)
                if values is None:
                    log(f"{chunking}: eval {stage} ({agg})")
                    db.evaluate(model=None, first_stage=stage, k=setup.k, split=setup.split, aggregate=agg)
                    values = stored(db, setup.split, stage, setup.k, f"first-stage:{stage}", agg)
                rows.append(
                    {"chunking": chunking, "stage": label, "first_stage": stage, "aggregate": agg, **values}
                )
    finally:
        db.close()
    return rows


def fmt(x: object, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def first_stage_table(setup: Setup, rows: list[dict]) -> str:
    lines = [
        f"| chunking | chunks | embed s ({', '.join(setup.models)}) | first stage | "
        + " | ".join(f"nDCG@10 {a}" for a in AGGREGATES)
        + f" | recall@{setup.k} (max) | span recall@10 (max) |",
        "|---|---:|---:|---|" + "---:|" * (len(AGGREGATES) + 2),
    ]
    by = {}
    for r in rows:
        by.setdefault((r["chunking"], r["stage"]), {})[r["aggregate"]] = r
    for (chunking, stage), aggs in by.items():
        t = setup.timings.get(f"{setup.data.name}/{chunking}", {})
        embed = " + ".join(fmt(t.get("embed_s", {}).get(m), 0) or "?" for m in setup.models)
        m = aggs["max"]
        lines.append(
            f"| {chunking} | {t.get('chunks', '')} | {embed} | {stage} | "
            + " | ".join(fmt(aggs[a]["ndcg@10"]) for a in AGGREGATES)
            + f" | {fmt(m['recall@k'])} | {fmt(m.get('span_recall@10'))} |"
        )
    return "\n".join(lines)


def best_first_stage(rows: list[dict], stage_filter: str | None = None) -> dict:
    cands = [r for r in rows if stage_filter is None or r["stage"] == stage_filter]
    return max(cands, key=lambda r: r["ndcg@10"])


# -- part 2 ------------------------------------------------------------------------------------------
ARMS = ("ensemble", "bm25", "random", "ensemble-samedoc")


def arm_params(arm: str, span_gap: int, cluster_run: str) -> MiningParams:
    method = arm.split("-")[0]
    return replace(
        MINING,
        method=method,
        cluster_filter="query" if method == "ensemble" else "none",
        cluster_run=cluster_run if method == "ensemble" else None,
        max_score_ratio=MINING.max_score_ratio if method != "random" else None,
        same_document_negatives=arm.endswith("samedoc"),
        span_gap=span_gap if arm.endswith("samedoc") else 0,
        name=f"long-{arm}",
    )


def rerank_part(args: argparse.Namespace, setup: Setup, chunking: str, best: dict) -> str:
    db = prepare(setup, chunking)
    try:
        run = db.scalar(
            "SELECT c.cluster_run_id FROM cluster_runs c JOIN ensembles e USING (ensemble_id) "
            "WHERE e.name = 'ens' AND c.k = ? AND c.seed = 0 ORDER BY c.created_at DESC LIMIT 1",
            [args.clusters],
        )
        if run is None:
            log(f"cluster ens k={args.clusters}")
            run = db.cluster(ensemble="ens", k=args.clusters, seed=0).cluster_run_id
        mined = {}
        for arm in ARMS:
            params = arm_params(arm, args.span_gap, run)
            old = db.scalar("SELECT params FROM mining_runs WHERE name = ?", [params.run_name])
            if old is None:
                log(f"mine {params.run_name}")
                db.mine(params)
            mined[arm] = params.run_name
        training = replace(TRAINING, max_steps=args.steps, max_length=args.max_length)
        models: dict[str, list[str]] = {}
        for arm in ARMS:
            for seed in range(args.seeds):
                name = f"long-ce-{arm}-s{seed}"
                params = replace(
                    training,
                    run=mined[arm],
                    out=str(CACHE / "models" / name),
                    name=name,
                    seed=seed,
                    device=args.device,
                )
                done = db.scalar(
                    "SELECT count(*) FROM training_runs WHERE name = ? AND status = 'finished'", [name]
                )
                if not done:
                    log(f"train {name}")
                    s = db.train(params, progress=True)
                    log(f"  {s.steps} steps in {s.seconds:.0f}s")
                models.setdefault(arm, []).append(name)
        stage, agg, k = best["first_stage"], best["aggregate"], args.rerank_k
        for names in models.values():
            for name in names:
                if stored(db, setup.split, stage, k, name, agg) is None:
                    log(f"eval {name} on {stage} top-{k} ({agg})")
                    db.evaluate(
                        model=name, first_stage=stage, k=k, split=setup.split, aggregate=agg,
                        max_length=args.max_length, device=args.device,
                    )  # fmt: skip
        first = stored(db, setup.split, stage, k, f"first-stage:{stage}", agg)
        if first is None:
            db.evaluate(model=None, first_stage=stage, k=k, split=setup.split, aggregate=agg)
            first = stored(db, setup.split, stage, k, f"first-stage:{stage}", agg)
        return rerank_report(db, args, setup, chunking, stage, agg, mined, models, first)
    finally:
        db.close()


def rerank_report(db, args, setup, chunking, stage, agg, mined, models, first) -> str:
    k = args.rerank_k
    lines = [
        f"Re-ranking `{stage}` top-{k} chunks of chunking `{chunking}` on {setup.split}, documents by `{agg}`; "
        f"{args.seeds} seed(s) per arm; mean (sd over seeds).",
        "",
        "| system | triplets | pairs | nDCG@10 | MRR@10 | span recall@10 | own-best differs |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| first stage alone | | | {fmt(first['ndcg@10'])} | {fmt(first['mrr@10'])} | "
        f"{fmt(first.get('span_recall@10'))} | |",
    ]
    for arm, names in models.items():
        vals = [stored(db, setup.split, stage, k, n, agg) for n in names]
        summary = db.sql(
            "SELECT triplets, positives, own_best_differs FROM run_summary WHERE run = ?", [mined[arm]]
        ).row(0)

        def ms(key: str, vals: list = vals) -> str:
            xs = [v[key] for v in vals if v and v.get(key) is not None]
            if not xs:
                return ""
            return f"{np.mean(xs):.3f}" + (f" ({np.std(xs, ddof=1):.3f})" if len(xs) > 1 else "")

        lines.append(
            f"| {arm} negatives | {summary[0]} | {summary[1]} | {ms('ndcg@10')} | {ms('mrr@10')} | "
            f"{ms('span_recall@10')} | {summary[2]} |"
        )
    lines += ["", "Paired randomization tests over queries (nDCG@10, seeds averaged per query):", ""]
    lines += ["| A | B | queries | A - B | 95% CI | p |", "|---|---|---:|---:|---|---:|"]
    pairs = [("ensemble", other) for other in ("bm25", "random", "ensemble-samedoc")]
    pairs += [("ensemble-samedoc", "bm25")]
    for a, b in pairs:
        t = db.paired(models[a], models[b], first_stage=stage, k=k, split=setup.split, aggregate=agg)
        lines.append(
            f"| {a} | {b} | {t.queries} | {t.diff:+.3f} | [{t.ci_low:+.3f}, {t.ci_high:+.3f}] | {t.p_value:.3g} |"
        )
    for a in ("ensemble", "ensemble-samedoc"):
        t = db.paired(
            models[a], f"first-stage:{stage}", first_stage=stage, k=k, split=setup.split, aggregate=agg
        )
        lines.append(
            f"| {a} | first stage | {t.queries} | {t.diff:+.3f} | [{t.ci_low:+.3f}, {t.ci_high:+.3f}] | {t.p_value:.3g} |"
        )
    training = replace(TRAINING, max_steps=args.steps, max_length=args.max_length)
    lines += [
        "",
        "Settings per arm (all arms alike unless named): mining "
        + json.dumps({k: v for k, v in asdict(MINING).items() if k not in ("name", "method", "ensemble")})
        + f"; ensemble arm cluster_filter=query (K-means k={args.clusters}), random arm no guard; "
        f"same-document arm span_gap={args.span_gap}. Training "
        + json.dumps(
            {k: v for k, v in asdict(training).items() if k not in ("run", "out", "name", "seed", "device")}
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", type=Path, default=QMSUM, help="A BEIR folder, spans/ optional (default: QMSum)."
    )
    ap.add_argument("--split", default="dev", help="Split reported (default dev).")
    ap.add_argument("--part", choices=["first", "rerank", "all"], default="all")
    ap.add_argument("--chunkings", nargs="+", default=list(CHUNKINGS), choices=list(CHUNKINGS))
    ap.add_argument("--models", nargs="+", default=["minilm-l6", "minilm-l3"])
    ap.add_argument("--k", type=int, default=100, help="Chunks per query of the first-stage table.")
    ap.add_argument("--rerank-chunking", default=None, help="Default: the best chunking of part 1.")
    ap.add_argument("--rerank-k", type=int, default=30)
    ap.add_argument("--clusters", type=int, default=20)
    ap.add_argument("--span-gap", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=TRAINING.max_steps)
    ap.add_argument("--max-length", type=int, default=TRAINING.max_length)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--note", default=None, help="A sentence about this run printed under Settings.")
    args = ap.parse_args()
    timings = json.loads(_timings_path().read_text()) if _timings_path().exists() else {}
    setup = Setup(args.data.resolve(), args.split, tuple(args.models), args.k, timings)
    started = time.perf_counter()
    rows = [r for c in args.chunkings for r in first_stage_rows(setup, c)]
    parts = [
        f"# Long documents: {setup.data.name} ({args.split})",
        "",
        "## First stages: chunking x aggregate",
        "",
        first_stage_table(setup, rows),
    ]
    best = best_first_stage(rows)
    whole = [
        r for r in rows if r["chunking"] == "whole" and r["stage"] == "ensemble" and r["aggregate"] == "max"
    ]
    bm25 = [r for r in rows if r["chunking"] == "whole" and r["stage"] == "BM25"]
    parts += [
        "",
        f"Best: {best['stage']} on `{best['chunking']}` by `{best['aggregate']}`, nDCG@10 {best['ndcg@10']:.3f}"
        + (f"; whole-document (truncated) ensemble {whole[0]['ndcg@10']:.3f}" if whole else "")
        + (f"; whole-document BM25 {bm25[0]['ndcg@10']:.3f}" if bm25 else "")
        + ".",
    ]
    tuned = {c: setup.timings.get(f"{setup.data.name}/{c}", {}).get("tuned_weights") for c in args.chunkings}
    parts.append(
        "Tuned hybrid weights (on the simplex: the members and BM25 sum to 1): "
        + "; ".join(
            f"{c}: " + ", ".join(f"{m} {w:.2f}" for m, w in ws.items()) for c, ws in tuned.items() if ws
        )
        + "."
    )
    if args.part in ("rerank", "all"):
        chunking = args.rerank_chunking or best["chunking"]
        in_chunking = [r for r in rows if r["chunking"] == chunking]
        if not in_chunking:
            in_chunking = first_stage_rows(setup, chunking)
        parts += ["", "## Re-rankers: ensemble vs BM25 vs random negatives, span positives", ""]
        parts.append(rerank_part(args, setup, chunking, best_first_stage(in_chunking)))
    parts += [
        "",
        "## Settings",
        "",
        f"Data {setup.data} ({args.split}); models {', '.join(setup.models)}; first-stage k={args.k}; "
        f"aggregates {', '.join(AGGREGATES)} (sum-top-3: scores shifted per query to start at 0); hybrid = "
        f"equal-weight ensemble + {HYBRID_BM25:g} x min-max BM25. Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch threads default; this invocation took {time.perf_counter() - started:.0f}s "
        "(cached steps skipped). Embedding seconds are those of the run that embedded (the machine may not "
        "have been quiet).",
    ]
    if args.note:
        parts.append(args.note)
    report = "\n".join(parts) + "\n"
    print(report)
    OUT.write_text(report)


if __name__ == "__main__":
    main()
