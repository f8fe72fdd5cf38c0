"""The paper's comparison on SciFact: a cross-encoder trained on ensemble hard negatives vs BM25 and random
negatives, with the untuned base and both first stages as rows.

Pipeline (each step skipped when its output already exists by name, so a rerun only prints):
ingest (BEIR folder; --quick: a seeded subset) -> chunk whole -> embed with the aliases -> ensemble ->
K-means clusters -> mine ensemble / bm25 / random negatives for the train split with the same number
of negatives per query and the same seed -> train one cross-encoder per method x seed with identical
settings -> evaluate every model, the untuned base and both first stages on the test split.
Prints ONE markdown table (mean ± sample sd over training seeds) with the settings and writes it to
bench/results/paper_table[_quick].md. `hnm-db --db DB eval --compare --mean-over-seeds` re-prints it.

    nice -n 10 .venv/bin/python bench/paper_table.py --quick            # ~10 min on 2 CPU cores
    nice -n 10 .venv/bin/python bench/paper_table.py --device cuda       # the full table on a GPU
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
from hnm_db import evaluate as E  # noqa: E402
from hnm_db import train as T  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = (ROOT / ".." / "shared" / "datasets" / "scifact").resolve()
#: Databases, the --quick subset and trained models (outside the checkout: $HNM_CACHE or ~/.cache/hnm-db).
CACHE = Path(os.environ.get("HNM_CACHE") or Path.home() / ".cache" / "hnm-db") / "paper_table"
METHODS = ("ensemble", "bm25", "random")


@dataclass(frozen=True)
class Profile:
    """Every setting of one table; printed beside the figures."""

    name: str
    models: tuple[str, ...]
    train_queries: int | None  # None: all (a subset keeps judged docs plus `extra_docs` random ones)
    test_queries: int | None
    extra_docs: int | None
    k: int
    max_length: int
    epochs: int
    batch_size: int
    negatives: int
    clusters: int
    cluster_filter: str
    range_min: int
    range_max: int
    max_score_ratio: float
    loss: str
    lr: float
    head_lr: float
    warmup_easy_steps: int
    base: str
    seeds: int
    interpolate: tuple[float, ...]
    rerank: tuple[str, ...]  # first stages whose top-k the models re-rank ("bm25", "ensemble")
    methods: tuple[str, ...] = METHODS  # negative sources mined and trained on (a knob variant may pick one)


#: Sized for 2 CPU cores once the three aliases' vectors are cached: measured 85 minutes (minilm-l6
#: cross-encoder at 128 tokens trains ~8-9 pairs/s and scores ~40 pairs/s there; 6 trainings of ~11 min). Every method gets the
#: same 30 warm-up steps on random (easy) negatives before its own: with a fresh head, hard negatives alone
#: barely moved the loss in the first profile (0.99 -> 0.97 in 22 steps; random negatives 0.99 -> 0.75).
FULL = Profile(
    name="full",
    models=("minilm-l6", "minilm-l3", "mpnet-base"),
    train_queries=None,
    test_queries=None,
    extra_docs=None,
    k=20,
    max_length=128,
    epochs=1,
    batch_size=16,
    negatives=3,
    clusters=20,
    cluster_filter="query",
    range_min=0,
    range_max=50,
    max_score_ratio=0.95,
    loss="triplet",
    lr=1e-4,
    head_lr=1e-3,
    warmup_easy_steps=30,
    base="minilm-l6",
    seeds=2,
    interpolate=(0.5,),
    rerank=("bm25",),
)
QUICK = replace(
    FULL,
    name="quick",
    models=("minilm-l6", "minilm-l3"),
    train_queries=150,
    test_queries=60,
    extra_docs=500,
    k=10,
    negatives=2,
    clusters=8,
    warmup_easy_steps=0,
    interpolate=(),
)


def log(msg: str) -> None:
    print(f"[paper-table {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- data --------------------------------------------------------------------------------------------
def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _read_qrels(path: Path) -> list[tuple[str, str, str]]:
    with open(path, encoding="utf-8") as f:
        next(f)
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]


def subset(data: Path, out: Path, profile: Profile, seed: int = 0) -> Path:
    """A BEIR folder with the first N train / M test queries (by id), their judged documents and a seeded
    sample of other documents (so retrieval is not trivial). Written once, reused afterwards."""
    if (out / "corpus.jsonl").exists():
        return out
    corpus = _read_jsonl(data / "corpus.jsonl")
    queries = {q["_id"]: q for q in _read_jsonl(data / "queries.jsonl")}
    keep_q: dict[str, set[str]] = {}
    qrels = {}
    for split, limit in (("train", profile.train_queries), ("test", profile.test_queries)):
        rows = _read_qrels(data / "qrels" / f"{split}.tsv")
        ids = sorted({r[0] for r in rows if r[0] in queries})[:limit]
        keep_q[split] = set(ids)
        qrels[split] = [r for r in rows if r[0] in keep_q[split]]
    judged = {r[1] for rows in qrels.values() for r in rows}
    others = sorted(d["_id"] for d in corpus if d["_id"] not in judged)
    rng = np.random.default_rng(seed)
    extra = set(rng.choice(others, size=min(profile.extra_docs or 0, len(others)), replace=False).tolist())
    tmp = out.with_name(out.name + ".partial")
    (tmp / "qrels").mkdir(parents=True, exist_ok=True)
    with open(tmp / "corpus.jsonl", "w", encoding="utf-8") as f:
        for d in corpus:
            if d["_id"] in judged or d["_id"] in extra:
                f.write(json.dumps(d) + "\n")
    with open(tmp / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid in sorted(keep_q["train"] | keep_q["test"]):
            f.write(json.dumps(queries[qid]) + "\n")
    for split, rows in qrels.items():
        with open(tmp / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            f.writelines("\t".join(r) + "\n" for r in rows)
    tmp.rename(out)
    return out


# -- pipeline steps (each skips what exists) ---------------------------------------------------------
def prepare(db: hnm_db.Database, data: Path, profile: Profile, timings: dict[str, float]) -> str:
    """Ingest, chunk, embed, ensemble, cluster; returns the ensemble's name."""
    from hnm_db.chunk import ChunkParams, chunk
    from hnm_db.ingest import ingest_beir

    start = time.perf_counter()
    if db.scalar("SELECT count(*) FROM documents") == 0:
        log(f"ingest {data}")
        ingest_beir(db, data)
    chunk(db, ChunkParams(strategy="whole"), None, progress=True)
    timings["ingest+chunk"] = time.perf_counter() - start
    start = time.perf_counter()
    log(f"embed with {', '.join(profile.models)} (only texts without a vector)")
    db.embed(list(profile.models), what="all", progress=True)
    timings["embed"] = time.perf_counter() - start
    start = time.perf_counter()
    ensemble = "ens-" + "-".join(profile.models)
    if db.scalar("SELECT count(*) FROM ensembles WHERE name = ?", [ensemble]) == 0:
        log(f"ensemble {ensemble}")
        db.create_ensemble(ensemble, list(profile.models), progress=True)
    ensemble_id = db.scalar("SELECT ensemble_id FROM ensembles WHERE name = ?", [ensemble])
    if (
        db.scalar(
            "SELECT count(*) FROM cluster_runs WHERE ensemble_id = ? AND k = ? AND seed = 0",
            [ensemble_id, profile.clusters],
        )
        == 0
    ):
        log(f"cluster k={profile.clusters}")
        db.cluster(ensemble, k=profile.clusters, seed=0, progress=True)
    timings["ensemble+cluster"] = time.perf_counter() - start
    return ensemble


def same_settings(name: str, stored: dict, wanted: dict, skip: tuple[str, ...] = ()) -> None:
    """A cached run is reused only if it was made with the settings asked for now."""
    diff = {k: (stored.get(k), v) for k, v in wanted.items() if k not in skip and stored.get(k, v) != v}
    if diff:
        raise SystemExit(
            f"{name} exists with other settings {diff} (stored, wanted): pass --tag to keep both, or --db"
        )


def mining_name(profile: Profile, method: str) -> str:
    return f"{profile.name}-{method}"


def mine_all(db: hnm_db.Database, ensemble: str, profile: Profile, timings: dict[str, float]) -> None:
    start = time.perf_counter()
    ensemble_id = db.scalar("SELECT ensemble_id FROM ensembles WHERE name = ?", [ensemble])
    cluster_run = db.scalar(
        "SELECT cluster_run_id FROM cluster_runs WHERE ensemble_id = ? AND k = ? AND seed = 0 "
        "ORDER BY created_at DESC LIMIT 1",
        [ensemble_id, profile.clusters],
    )
    for method in profile.methods:
        name = mining_name(profile, method)
        params = dict(split="train", num_negatives=profile.negatives, seed=0, name=name, ensemble=ensemble)
        if method != "random":
            params.update(
                range_min=profile.range_min,
                range_max=profile.range_max,
                max_score_ratio=profile.max_score_ratio if method == "ensemble" else None,
                cluster_filter=profile.cluster_filter if method == "ensemble" else "none",
                cluster_run=cluster_run if method == "ensemble" else None,
            )
        stored = db.scalar("SELECT params FROM mining_runs WHERE name = ?", [name])
        if stored is not None:
            same_settings(name, json.loads(stored), params, skip=("cluster_run",))
            continue
        log(f"mine {name}")
        db.mine(method, **params)
    timings["mine"] = time.perf_counter() - start


def train_all(db: hnm_db.Database, profile: Profile, device: str, timings: dict[str, float]) -> list[str]:
    """One model per method x seed; returns the training run names."""
    start = time.perf_counter()
    names = []
    models = CACHE / "models" / profile.name
    models.mkdir(parents=True, exist_ok=True)
    for seed in range(profile.seeds):
        for method in profile.methods:
            name = f"{profile.name}-ce-{method}-s{seed}"
            names.append(name)
            params = T.TrainParams(
                run=mining_name(profile, method),
                base=profile.base,
                out=str(models / name),
                name=name,
                loss=profile.loss,
                epochs=profile.epochs,
                batch_size=profile.batch_size,
                max_length=profile.max_length,
                lr=profile.lr,
                head_lr=profile.head_lr,
                seed=seed,
                warmup_easy_steps=profile.warmup_easy_steps,
                device=device,
            )
            stored = db.scalar(
                "SELECT params FROM training_runs WHERE name = ? AND status = 'finished'", [name]
            )
            if stored is not None:
                same_settings(name, json.loads(stored), asdict(params), skip=("device", "out"))
                continue
            log(f"train {name}")
            summary = T.train(db, params, progress=True)
            log(f"  {summary.steps} steps, final loss {summary.final_loss:.4f}, {summary.seconds:.0f}s")
    timings["train"] = time.perf_counter() - start
    return names


def evaluate_all(
    db: hnm_db.Database,
    ensemble: str,
    profile: Profile,
    runs: list[str],
    device: str,
    timings: dict[str, float],
) -> None:
    start = time.perf_counter()
    stages = {"bm25": "bm25", "ensemble": f"ensemble:{ensemble}"}
    for key, first_stage in stages.items():
        models = [f"base:{profile.base}", *runs] if key in profile.rerank else [None]
        for model in models:
            label = model or f"first-stage:{first_stage}"
            done = db.scalar(
                "SELECT count(*) FROM eval_results WHERE split = 'test' AND first_stage = ? AND k = ? "
                "AND model = ?",
                [first_stage, profile.k, label],
            )
            if done:
                continue
            log(f"eval {label} on {first_stage} top-{profile.k}")
            params = E.EvalParams(
                model=model,
                first_stage=first_stage,
                k=profile.k,
                split="test",
                max_length=profile.max_length,
                device=device,
                interpolate=profile.interpolate if model else (),
            )
            summary = E.evaluate(db, params, progress=True)
            log(f"  scored {summary.scored_pairs} new pairs, {summary.cached_pairs} cached")
    timings["eval"] = time.perf_counter() - start


# -- report ------------------------------------------------------------------------------------------
def loss_table(db: hnm_db.Database, runs: list[str], points: int = 8) -> str:
    """Each training run's loss curve as the mean loss of ``points`` equal stretches of its steps."""
    lines = [
        "| training run | steps | pairs/s (hard pairs / whole run) | loss curve (mean over each eighth of the steps) |",
        "|---|---:|---:|---|",
    ]
    for name in runs:
        row = db.execute(
            "SELECT loss_curve, stats FROM training_runs WHERE name = ? AND status = 'finished'", [name]
        ).fetchone()
        if row is None:
            continue
        curve, stats = np.array(json.loads(row[0])), json.loads(row[1])
        parts = [float(p.mean()) for p in np.array_split(curve, min(points, len(curve)))]
        rate = stats["pairs"] / stats["seconds"] if stats.get("seconds") else float("nan")
        lines.append(
            f"| {name} | {len(curve)} | {rate:.1f} | " + " → ".join(f"{v:.3f}" for v in parts) + " |"
        )
    return "\n".join(lines)


def audit_table(db: hnm_db.Database, profile: Profile) -> str:
    """What each mining run selected (the audit's run_summary), one column per run."""
    from hnm_db.audit import AuditParams, audit

    names = [mining_name(profile, m) for m in profile.methods]
    summary = audit(db, AuditParams(runs=tuple(names))).runs
    rows = summary.to_dicts()
    keys = [
        "queries",
        "triplets",
        "neg_score_mean",
        "pos_score_mean",
        "dropped_false_negatives",
        "short_queries",
        "cluster_agreement",
    ]
    lines = ["| measure | " + " | ".join(r["run"] for r in rows) + " |", "|---|" + "---:|" * len(rows)]
    for key in keys:
        cells = [r.get(key) for r in rows]
        text = ["" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)) for v in cells]
        lines.append(f"| {key} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def report(
    db: hnm_db.Database,
    profile: Profile,
    data: Path,
    device: str,
    timings: dict[str, float],
    runs: list[str],
) -> str:
    import torch

    counts = {t: db.scalar(f"SELECT count(*) FROM {t}") for t in ("documents", "chunks")}
    queries = dict(db.execute("SELECT split, count(DISTINCT query_id) FROM qrels GROUP BY 1").fetchall())
    triplets = dict(
        db.execute(
            "SELECT m.name, count(*) FROM triplets t JOIN mining_runs m USING (run_id) GROUP BY 1"
        ).fetchall()
    )
    table = E.markdown_table(E.summarize(E.stored_results(db, "test")))
    settings = {k: v for k, v in asdict(profile).items() if k != "name"}
    lines = [
        f"# Paper table on SciFact ({profile.name} profile)",
        "",
        table,
        "",
        f"Data: `{data}`: {counts['documents']} documents ({counts['chunks']} chunks, whole), "
        f"{queries.get('train', 0)} train / {queries.get('test', 0)} test queries with qrels. "
        f"Triplets per mining run: {', '.join(f'{k} {v}' for k, v in sorted(triplets.items()))}.",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + ".",
        f"Device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.machine()} with {os.cpu_count()} CPUs. Stage times this run (s, cached steps ~0): "
        + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
        + ".",
        "",
        "Rows: `first-stage:*` = the first stage alone; `base:*` = the untuned base with a fresh (seeded) "
        "head; `ce[RUN, LOSS]` = a cross-encoder fine-tuned on mining run RUN, mean ± sample sd over "
        "training seeds (`seeds` column). Metrics per document (max over chunks), MRR@10 / nDCG@10 / P@1 / "
        "P@5, Recall@k at the re-ranked depth k; `interpolate` rows mix z-scored model and first-stage "
        "scores per query (alpha = model weight).",
        "",
        "Training loss (every run of this profile; the first `warmup_easy_steps` steps use random negatives):",
        "",
        loss_table(db, runs),
        "",
        "Mining runs (`hnm-db audit`; scores are each method's own: BM25 or ensemble cosine):",
        "",
        audit_table(db, profile),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Subset + two small models: ~10 minutes on 2 cores.")
    ap.add_argument("--device", choices=["cpu", "cuda"], default=None)
    ap.add_argument("--seeds", type=int, default=None, help="Training seeds per method (default 2).")
    ap.add_argument("--db", type=Path, default=None, help="Database (default CACHE/paper_<profile>.duckdb).")
    ap.add_argument("--data", type=Path, default=SCIFACT)
    for name in (
        "k",
        "max_length",
        "epochs",
        "batch_size",
        "negatives",
        "clusters",
        "warmup_easy_steps",
        "range_min",
        "range_max",
    ):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    for name in ("lr", "head_lr", "max_score_ratio"):
        ap.add_argument("--" + name.replace("_", "-"), type=float, default=None)
    ap.add_argument("--loss", choices=T.LOSSES, default=None)
    ap.add_argument("--cluster-filter", choices=["none", "query", "positive", "either"], default=None)
    ap.add_argument(
        "--interpolate", type=float, action="append", default=None, help="Also z-mix rows (repeat)."
    )
    ap.add_argument(
        "--rerank",
        default=None,
        help="First stages the models re-rank: bm25, ensemble or both (comma-separated; default bm25).",
    )
    ap.add_argument(
        "--methods",
        default=None,
        help="Negative sources to mine and train on (comma-separated; default ensemble,bm25,random).",
    )
    ap.add_argument("--tag", default=None, help="Suffix of the profile name, to keep variants (knobs) apart.")
    args = ap.parse_args()

    profile = QUICK if args.quick else FULL
    overrides = {k: v for k, v in vars(args).items() if v is not None and k in Profile.__dataclass_fields__}
    if args.interpolate:
        overrides["interpolate"] = tuple(args.interpolate)
    if args.rerank:
        overrides["rerank"] = tuple(s.strip() for s in args.rerank.split(","))
    if args.methods:
        overrides["methods"] = tuple(m.strip() for m in args.methods.split(","))
        unknown = set(overrides["methods"]) - set(METHODS)
        if unknown:
            ap.error(f"--methods: unknown {sorted(unknown)}; choose from {', '.join(METHODS)}")
    if args.tag:
        overrides["name"] = f"{profile.name}-{args.tag}"
    profile = replace(profile, **overrides)
    device = T.pick_device(args.device)
    CACHE.mkdir(parents=True, exist_ok=True)
    data = (
        args.data
        if profile.train_queries is None
        else subset(args.data, CACHE / f"scifact-{profile.name}", profile)
    )
    db_path = args.db or CACHE / f"paper_{profile.name}.duckdb"
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with hnm_db.open(db_path) as db:
        ensemble = prepare(db, data, profile, timings)
        mine_all(db, ensemble, profile, timings)
        runs = train_all(db, profile, device, timings)
        evaluate_all(db, ensemble, profile, runs, device, timings)
        timings["total"] = time.perf_counter() - start
        text = report(db, profile, data, device, timings, runs)
    print(text)
    out = (
        ROOT
        / "bench"
        / "results"
        / ("paper_table.md" if profile.name == "full" else f"paper_table_{profile.name}.md")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log(f"wrote {out}; re-print with: hnm-db --db {db_path} eval --compare --mean-over-seeds")


if __name__ == "__main__":
    main()
