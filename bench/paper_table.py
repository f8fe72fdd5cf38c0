"""The paper's comparison, without confounds: cross-encoders trained on ensemble hard negatives vs BM25 and
random negatives, every arm mined and trained under one protocol, several seeds, paired tests over queries.

Protocol (each step skipped when its output already exists by name, so a rerun resumes and re-prints):

1. ingest a BEIR folder (``--data``; ``--quick``: a seeded subset) -> chunk whole -> embed with the
   aliases -> equal-weight ensemble -> K-means;
2. mine the train split once per method, all with the same window, false-negative guard (per pair),
   fallback depth, sampling, pool size and seed; the ensemble arm is the paper's method, so it also
   keeps only candidates in the query's K-means cluster; random has no score, so no guard applies to
   it. An extra arm mines BM25 without the guard (labelled ``bm25-noguard``);
3. train one cross-encoder per method x seed with identical settings and the same number of steps,
   each on the (query, positive) pairs its own run covers (a pair the guard left with no negative down
   to the fallback depth is absent, so coverage differs between arms and the report shows it); dev
   queries are held out by a hash of the seed and id, and the best dev checkpoint is kept;
4. evaluate every model, the untuned base and both first stages on the test split, re-ranking BM25's
   and the ensemble's top-k, alone and interpolated with the first stage; the best model once more on
   BM25's top-100; a paired randomization test and a bootstrap 95% interval over test queries (per-query
   nDCG@10 averaged over seeds) between the ensemble-negative model and each baseline;
5. ``--ablations``: one-seed variants of the ensemble arm (warm start by distillation, loss, group size,
   max length, random mix, guard), each against the main recipe on the same seed.

Prints one markdown report and writes it to bench/results/paper_table[_PROFILE].md.

    nice -n 10 .venv/bin/python bench/paper_table.py --quick            # a small subset
    nice -n 10 .venv/bin/python bench/paper_table.py                    # SciFact, hours on 2 CPU cores
    nice -n 10 .venv/bin/python bench/paper_table.py --ablations        # + the one-seed ablation table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

import hnm_db  # noqa: E402
from hnm_db.errors import NotFound  # noqa: E402
from hnm_db.params import MiningParams  # noqa: E402
from hnm_db.reranker import evaluate as E  # noqa: E402
from hnm_db.reranker import train as T  # noqa: E402
from hnm_db.reranker.crossencoder import pick_device  # noqa: E402

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
    clusters: int
    #: mining, the same for every arm: method, ensemble and split are set per arm, and cluster_filter
    #: applies to the ensemble arm only (the paper's method); random runs have no guard and no mix
    mining: MiningParams
    #: training, the same for every arm: run, distill run, out, name and seed are set per model
    training: T.TrainParams
    seeds: int
    # evaluation
    k: int
    rerank: tuple[str, ...]  # first stages whose top-k the models re-rank ("bm25", "ensemble")
    interpolate: tuple[float, ...]
    top100: bool
    methods: tuple[str, ...] = METHODS
    noguard_arm: bool = True
    # --beyond (issue 13): a tuned hybrid's negatives and denoised ensemble negatives, one seed each
    hybrid_bm25: float = 0.3
    denoise_relative: float = 1.0


#: Sized for 2 CPU cores once the aliases' vectors are cached. A step is 16 groups of 1 positive + 3
#: negatives = 64 (query, passage) pairs; minilm-l6 trains ~8 pairs/s at 128 tokens there, so 30 distil
#: + 100 main steps take ~17 minutes, plus 3 dev evaluations of ~40 s and ~4 minutes of test scoring per
#: model. Every arm starts from the same warm start: 30 steps distilling the ensemble on the ensemble
#: arm's groups (same seed, same warm-started model), then 100 steps of LCE on its own negatives.
FULL = Profile(
    name="full",
    models=("minilm-l6", "minilm-l3", "mpnet-base"),
    train_queries=None,
    test_queries=None,
    extra_docs=None,
    clusters=20,
    mining=MiningParams(
        method="ensemble",  # method and ensemble are set per arm (mining_params)
        ensemble="<per arm>",
        num_negatives=7,
        range_min=0,
        range_max=50,
        fallback_depth=200,
        max_score_ratio=0.95,
        guard="pair",
        mix_random=0,
        cluster_filter="query",
        sampling="top",
        seed=0,
    ),
    training=T.TrainParams(
        run="<arm>",
        out="<per model>",
        base="minilm-l6",
        loss="lce",
        group_size=4,
        batch_size=16,
        max_steps=100,
        max_length=128,
        lr=1e-4,
        head_lr=1e-3,
        warmup_easy_steps=0,
        distill_steps=30,
        dev_ratio=0.1,
        dev_k=20,
        eval_steps=50,
    ),
    seeds=3,
    k=20,
    rerank=("bm25", "ensemble"),
    interpolate=(0.5,),
    top100=True,
)
QUICK = replace(
    FULL,
    name="quick",
    models=("minilm-l6", "minilm-l3"),
    train_queries=150,
    test_queries=60,
    extra_docs=500,
    clusters=8,
    training=replace(FULL.training, max_steps=20, eval_steps=10),
    seeds=2,
    top100=False,
)

#: One-seed variants of the ensemble arm: (tag, what it changes, mining overrides, training overrides).
ABLATIONS: tuple[tuple[str, str, dict, dict], ...] = (
    ("no-distill", "no warm start (the fresh head starts on the mined groups)", {}, {"distill_steps": 0}),
    ("loss-triplet", "loss: triplet (the paper's) instead of LCE", {}, {"loss": "triplet"}),
    ("loss-lambda", "loss: LambdaLoss instead of LCE", {}, {"loss": "lambda"}),
    (
        "group-8",
        "group size 8 (1+7) at the same pairs per step (batch 8)",
        {},
        {"group_size": 8, "batch_size": 8},
    ),
    ("len-256", "max length 256 instead of 128", {}, {"max_length": 256}),
    ("mix-2", "2 random negatives mixed into each pair's pool", {"mix_random": 2}, {}),
    ("guard-none", "no false-negative guard", {"max_score_ratio": None}, {}),
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
@dataclass
class Context:
    db: hnm_db.Database
    profile: Profile
    device: str
    ensemble: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    report_only: bool = False

    hybrid: str = ""

    @property
    def stages(self) -> dict[str, str]:
        out = {"bm25": "bm25", "ensemble": f"ensemble:{self.ensemble}"}
        if self.hybrid:
            out["hybrid"] = f"ensemble:{self.hybrid}"
        return out


def prepare(ctx: Context, data: Path) -> None:
    """Ingest, chunk, embed, ensemble, cluster."""
    from hnm_db.sources.chunk import ChunkParams, chunk
    from hnm_db.sources.ingest import ingest_beir

    db, profile = ctx.db, ctx.profile
    start = time.perf_counter()
    if db.scalar("SELECT count(*) FROM documents") == 0:
        log(f"ingest {data}")
        ingest_beir(db.store, data)
    chunk(db.store, ChunkParams(strategy="whole"), None, progress=True)
    log(f"embed with {', '.join(profile.models)} (only texts without a vector)")
    db.embed(models=list(profile.models), what="all", progress=True)
    ctx.ensemble = "ens-" + "-".join(profile.models)
    if db.scalar("SELECT count(*) FROM ensembles WHERE name = ?", [ctx.ensemble]) == 0:
        log(f"ensemble {ctx.ensemble}")
        db.create_ensemble(name=ctx.ensemble, members=list(profile.models), progress=True)
    if cluster_run(ctx) is None:
        log(f"cluster k={profile.clusters}")
        db.cluster(ensemble=ctx.ensemble, k=profile.clusters, seed=0)
    ctx.timings["prepare"] = time.perf_counter() - start


def cluster_run(ctx: Context, ensemble: str | None = None) -> str | None:
    return ctx.db.scalar(
        "SELECT c.cluster_run_id FROM cluster_runs c JOIN ensembles e USING (ensemble_id) "
        "WHERE e.name = ? AND c.k = ? AND c.seed = 0 ORDER BY c.created_at DESC LIMIT 1",
        [ensemble or ctx.ensemble, ctx.profile.clusters],
    )


def same_settings(name: str, stored: dict, wanted: dict, skip: tuple[str, ...] = ()) -> None:
    """A cached run is reused only if it was made with the settings asked for now."""
    wanted = json.loads(json.dumps(wanted))  # tuples as the stored JSON has them (lists)
    # a setting the stored run lacks (made by older code) counts as different
    diff = {
        k: (stored.get(k), v)
        for k, v in wanted.items()
        if k not in skip and (k not in stored or stored[k] != v)
    }
    if diff:
        raise SystemExit(
            f"{name} exists with other settings {diff} (stored, wanted): pass --tag to keep both, or --db"
        )


def mining_params(ctx: Context, method: str, **overrides: object) -> MiningParams:
    """One arm's mining parameters: the profile's window, guard, fallback, pool and seed."""
    shared = ctx.profile.mining
    per_arm = {
        "method": method,
        "ensemble": ctx.ensemble,
        "split": "train",
        "max_score_ratio": shared.max_score_ratio if method != "random" else None,
        "mix_random": shared.mix_random if method != "random" else 0,
        "cluster_filter": shared.cluster_filter if method == "ensemble" else "none",
    }
    return replace(shared, **(per_arm | overrides))


def mine(ctx: Context, name: str, params: MiningParams) -> str:
    stored = ctx.db.scalar("SELECT params FROM mining_runs WHERE name = ?", [name])
    params = replace(params, name=name)
    if stored is not None:
        same_settings(name, json.loads(stored), asdict(params), skip=("cluster_run",))
        return name
    log(f"mine {name}")
    if params.cluster_filter != "none":
        params = replace(params, cluster_run=cluster_run(ctx, params.ensemble))
    ctx.db.mine(params)
    return name


def arms(ctx: Context) -> dict[str, str]:
    """label -> mining run of the main table."""
    out = {m: mine(ctx, f"{ctx.profile.name}-{m}", mining_params(ctx, m)) for m in ctx.profile.methods}
    if ctx.profile.noguard_arm:
        out["bm25-noguard"] = mine(
            ctx, f"{ctx.profile.name}-bm25-noguard", mining_params(ctx, "bm25", max_score_ratio=None)
        )
    return out


def hybrid_arm(ctx: Context) -> str:
    """--beyond: the hybrid of the dense models + ``hybrid_bm25`` x BM25, tuned on dev queries carved from
    the train split (``ensemble tune``, seed 0), clustered like the ensemble, mined like every arm."""
    p, db = ctx.profile, ctx.db
    source, tuned = f"hyb-{'-'.join(p.models)}", f"hyb-{'-'.join(p.models)}-tuned"
    if db.scalar("SELECT count(*) FROM ensembles WHERE name = ?", [source]) == 0:
        log(f"hybrid ensemble {source}")
        db.create_ensemble(name=source, members=list(p.models), bm25=p.hybrid_bm25, progress=False)
    if db.scalar("SELECT count(*) FROM ensembles WHERE name = ?", [tuned]) == 0:
        log(f"tune {source} -> {tuned}")
        db.tune_ensemble(ensemble=source, name=tuned, seed=0, progress=False)
    if cluster_run(ctx, tuned) is None:
        db.cluster(ensemble=tuned, k=p.clusters, seed=0)
    ctx.hybrid = tuned
    return mine(ctx, f"{p.name}-hybrid", mining_params(ctx, "ensemble", ensemble=tuned))


def denoised_arm(ctx: Context, parent: str, denoiser: str) -> str:
    """--beyond: the ensemble arm's run without the negatives ``denoiser`` (a trained cross-encoder)
    scores above ``denoise_relative`` x their positive, the slots refilled from deeper ranks."""
    name = f"{ctx.profile.name}-ensemble-denoised"
    stored = ctx.db.scalar("SELECT params FROM mining_runs WHERE name = ?", [name])
    if stored is not None:
        rule = json.loads(stored)["denoise"]
        if (rule.get("model"), rule.get("relative")) != (denoiser, ctx.profile.denoise_relative):
            raise SystemExit(f"{name} exists with another denoiser or rule: {rule}")
        return name
    log(f"denoise {parent} with {denoiser} -> {name}")
    ctx.db.denoise(
        run=parent,
        model=denoiser,
        relative=ctx.profile.denoise_relative,
        refill=True,
        name=name,
        max_length=ctx.profile.training.max_length,
        device=ctx.device,
        progress=True,
    )
    return name


def train_params(
    ctx: Context, run: str, name: str, seed: int, distill_run: str, **overrides: object
) -> T.TrainParams:
    p = ctx.profile
    params = replace(
        p.training,
        run=run,
        distill_run=distill_run if p.training.distill_steps else None,
        out=str(CACHE / "models" / p.name / name),
        name=name,
        seed=seed,
        device=ctx.device,
    )
    return replace(params, **overrides)


def train(ctx: Context, params: T.TrainParams) -> str:
    stored = ctx.db.scalar(
        "SELECT params FROM training_runs WHERE name = ? AND status = 'finished'", [params.run_name]
    )
    if stored is not None:
        same_settings(params.run_name, json.loads(stored), asdict(params), skip=("device", "out"))
        return params.run_name
    log(f"train {params.run_name}")
    summary = ctx.db.train(params, progress=True)
    log(
        f"  {summary.steps} steps, final loss {summary.final_loss:.4f}, best dev nDCG@10 "
        f"{summary.stats.get('best_dev_ndcg@10')}, {summary.seconds:.0f}s"
    )
    return params.run_name


def evaluate(ctx: Context, model: str | None, stage: str, k: int | None = None) -> None:
    """Evaluate one model (None: the first stage alone) on one first stage's top-k, if not stored yet;
    ``stage`` is a key of ``ctx.stages`` or a first stage itself (``ensemble:NAME``)."""
    k = k or ctx.profile.k
    first_stage = ctx.stages.get(stage, stage)
    label = model or f"first-stage:{first_stage}"
    done = ctx.db.scalar(
        "SELECT count(*) FROM eval_results WHERE split = 'test' AND first_stage = ? AND k = ? AND model = ? "
        "AND per_query IS NOT NULL",
        [first_stage, k, label],
    )
    if done or ctx.report_only:
        return
    log(f"eval {label} on {first_stage} top-{k}")
    params = E.EvalParams(
        model=model,
        first_stage=first_stage,
        k=k,
        split="test",
        max_length=ctx.profile.training.max_length,
        device=ctx.device,
        interpolate=ctx.profile.interpolate if model else (),
    )
    summary = ctx.db.evaluate(params, progress=True)
    log(f"  scored {summary.scored_pairs} new pairs, {summary.cached_pairs} cached")


# -- report ------------------------------------------------------------------------------------------
def result_ids(
    ctx: Context, models: list[str], stage: str, interpolated: bool, k: int | None = None
) -> list[str]:
    """eval_ids of the models' stored results on a first stage (standalone or interpolated); models
    without one are left out, so a partial run still reports what it has."""
    out = []
    for model in models:
        try:
            out += E.result_ids(
                ctx.db.store,
                [model],
                first_stage=ctx.stages[stage],
                k=k or ctx.profile.k,
                interpolate=ctx.profile.interpolate[0] if interpolated else None,
            )
        except NotFound:
            continue
    return out


def mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def metric_of(ctx: Context, eval_ids: list[str], metric: str = "ndcg@10") -> list[float]:
    if not eval_ids:
        return []
    rows = ctx.db.store.execute(
        f'SELECT "{metric}" FROM eval_summary WHERE eval_id IN (SELECT unnest(?))', [eval_ids]
    ).fetchall()
    return [r[0] for r in rows]


#: Published SciFact nDCG@10 of the first stages (test split): BM25 from the BEIR paper (Thakur et al.
#: 2021, Table 2; Elasticsearch BM25), the dense models from the MTEB leaderboard (Muennighoff et al. 2023).
PUBLISHED = {"bm25": 0.665, "minilm-l6": 0.6451, "mpnet-base": 0.6557}


def first_stages(ctx: Context) -> dict[str, str]:
    """label -> first stage: BM25, each model alone (a one-member ensemble) and the ensemble."""
    out = {"bm25": "bm25"}
    for model in ctx.profile.models:
        name = f"single-{model}"
        if ctx.db.scalar("SELECT count(*) FROM ensembles WHERE name = ?", [name]) == 0:
            ctx.db.create_ensemble(name=name, members=[model], progress=False)
        out[model] = f"ensemble:{name}"
    out["ensemble of " + " + ".join(ctx.profile.models)] = f"ensemble:{ctx.ensemble}"
    return out


def first_stage_table(ctx: Context, collection: str) -> str:
    """nDCG@10 and MRR@10 of every first stage; on SciFact with the published figures beside them."""
    published = PUBLISHED if collection == "scifact" else {}
    lines = ["| first stage (exact search) | nDCG@10 | MRR@10 | published nDCG@10 |", "|---|---:|---:|---:|"]
    for label, stage in first_stages(ctx).items():
        ids = [
            r[0]
            for r in ctx.db.store.execute(
                "SELECT eval_id FROM eval_summary WHERE split = 'test' AND first_stage = ? AND k = ? AND model = ?",
                [stage, ctx.profile.k, f"first-stage:{stage}"],
            ).fetchall()
        ]
        pub = published.get(label)
        lines.append(
            f"| {label} | {mean_sd(metric_of(ctx, ids))} | {mean_sd(metric_of(ctx, ids, 'mrr@10'))} | "
            f"{'–' if pub is None else f'{pub:.3f}'} |"
        )
    return "\n".join(lines)


def main_table(ctx: Context, models: dict[str, list[str]]) -> str:
    """nDCG@10 and MRR@10 (mean ± sd over seeds) per first stage, standalone and interpolated."""
    p = ctx.profile
    head = ["system"]
    for stage in p.rerank:
        head += [f"{stage} top-{p.k}: nDCG@10", "MRR@10", f"+ {stage} (α={p.interpolate[0]:g}): nDCG@10"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    rows: list[tuple[str, list[str]]] = []
    first = []
    for stage in p.rerank:
        ids = [
            r[0]
            for r in ctx.db.store.execute(
                "SELECT eval_id FROM eval_summary WHERE split = 'test' AND first_stage = ? AND k = ? AND model = ?",
                [ctx.stages[stage], p.k, f"first-stage:{ctx.stages[stage]}"],
            ).fetchall()
        ]
        first += [mean_sd(metric_of(ctx, ids)), mean_sd(metric_of(ctx, ids, "mrr@10")), "–"]
    rows.append(("first stage alone", first))
    base = f"base:{p.training.base}"
    cells = []
    for stage in p.rerank:
        cells += [
            mean_sd(metric_of(ctx, result_ids(ctx, [base], stage, False))),
            mean_sd(metric_of(ctx, result_ids(ctx, [base], stage, False), "mrr@10")),
            mean_sd(metric_of(ctx, result_ids(ctx, [base], stage, True))),
        ]
    rows.append((f"untuned {p.training.base} (fresh head)", cells))
    for label, names in models.items():
        cells = []
        for stage in p.rerank:
            cells += [
                mean_sd(metric_of(ctx, result_ids(ctx, names, stage, False))),
                mean_sd(metric_of(ctx, result_ids(ctx, names, stage, False), "mrr@10")),
                mean_sd(metric_of(ctx, result_ids(ctx, names, stage, True))),
            ]
        rows.append((f"CE on {label} negatives ({len(names)} seed{'s' if len(names) > 1 else ''})", cells))
    lines += ["| " + " | ".join([name, *cells]) + " |" for name, cells in rows]
    return "\n".join(lines)


def paired_table(ctx: Context, models: dict[str, list[str]]) -> str:
    """Ensemble-negative model minus each baseline, per first stage, standalone and interpolated."""
    lines = [
        "| first stage | scores | ensemble − baseline | Δ nDCG@10 | 95% CI | p (randomization) |",
        "|---|---|---|---:|---|---:|",
    ]
    for stage in ctx.profile.rerank:
        for interpolated in (False, True):
            a = E.per_query_values(ctx.db.store, result_ids(ctx, models["ensemble"], stage, interpolated))
            for other in [m for m in models if m != "ensemble"]:
                b = E.per_query_values(ctx.db.store, result_ids(ctx, models[other], stage, interpolated))
                t = E.paired_test(a, b)
                lines.append(
                    f"| {stage} top-{ctx.profile.k} | {'interpolated' if interpolated else 'standalone'} | "
                    f"ensemble − {other} | {t.diff:+.4f} | [{t.ci_low:+.4f}, {t.ci_high:+.4f}] | {t.p_value:.4f} |"
                )
    return "\n".join(lines)


def training_table(ctx: Context, names: list[str]) -> str:
    lines = [
        "| training run | steps (warm + main) | train pairs / queries (dev queries) | pairs processed (main) | filled random | seconds (incl. dev evaluation) | loss: first → last tenth | dev nDCG@10 (step: value) | kept step |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for name in names:
        row = ctx.db.store.execute(
            "SELECT loss_curve, stats FROM training_runs WHERE name = ? AND status = 'finished'", [name]
        ).fetchone()
        if row is None:
            continue
        curve, stats = np.array(json.loads(row[0])), json.loads(row[1])
        tenth = max(1, len(curve) // 10)
        # one value per step: runs resumed by older code evaluated their restart point twice
        dev = ", ".join(f"{s}: {v:.3f}" for s, v in dict(stats.get("dev_curve", [])).items())
        lines.append(
            f"| {name} | {stats['warm_steps']} + {stats['steps']} | "
            f"{stats.get('train_pairs_of_run')} / {stats.get('train_queries')} ({stats.get('dev_queries')}) | "
            f"{stats['pairs']} | {stats['filled_random']} | "
            f"{stats['seconds']:.0f}{' (warm start reused)' if stats.get('warm_start_reused') else ''} | "
            f"{curve[:tenth].mean():.3f} → {curve[-tenth:].mean():.3f} | "
            f"{dev} | {stats.get('best_step')} |"
        )
    return "\n".join(lines)


def audit_table(ctx: Context, runs: list[str]) -> str:
    """What each mining run selected (the run_summary view), one column per run."""
    frame = ctx.db.sql("SELECT * FROM run_summary WHERE run IN (SELECT unnest(?)) ORDER BY run", [runs])
    rows = frame.to_dicts()
    keys = [
        "queries",
        "positives",
        "triplets",
        "fallback_negatives",
        "mixed_random_negatives",
        "short_pairs",
        "short_queries",
        "dropped_false_negatives",
        "neg_score_mean",
        "pos_score_mean",
        "cluster_agreement",
    ]
    lines = ["| measure | " + " | ".join(r["run"] for r in rows) + " |", "|---|" + "---:|" * len(rows)]
    for key in keys:
        text = [
            "" if r.get(key) is None else (f"{r[key]:.3f}" if isinstance(r[key], float) else str(r[key]))
            for r in rows
        ]
        lines.append(f"| {key} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def ablation_table(ctx: Context, main_name: str, variants: list[tuple[str, str, str]]) -> str:
    """One seed each: dev nDCG@10 of the kept checkpoint, and test nDCG@10 on each first stage."""
    p = ctx.profile
    head = ["variant (seed 0)", "what changes", "dev nDCG@10"] + [f"test, {s} top-{p.k}" for s in p.rerank]
    lines = ["| " + " | ".join(head) + " |", "|---|---" + "|---:" * (len(head) - 2) + "|"]
    for tag, text, name in [("main recipe", "–", main_name), *variants]:
        stats = ctx.db.scalar(
            "SELECT stats FROM training_runs WHERE name = ? AND status = 'finished'", [name]
        )
        dev = json.loads(stats).get("best_dev_ndcg@10") if stats else None
        cells = [mean_sd(metric_of(ctx, result_ids(ctx, [name], s, False))) for s in p.rerank]
        lines.append(
            f"| {tag} | {text} | {'–' if dev is None else f'{dev:.3f}'} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def beyond_runs(ctx: Context, beyond: dict[str, str] | None) -> list[str]:
    """The mining runs the --beyond models trained on."""
    out = []
    for name in (beyond or {}).values():
        row = ctx.db.store.execute(
            "SELECT m.name FROM training_runs t JOIN mining_runs m ON m.run_id = t.mining_run_id WHERE t.name = ?",
            [name],
        ).fetchone()
        if row:
            out.append(row[0])
    return out


def beyond_table(ctx: Context, models: dict[str, list[str]], beyond: dict[str, str]) -> str:
    """Seed-0 models on ensemble, BM25, tuned-hybrid and denoised negatives, re-ranking each first stage's
    top-k (the tuned hybrid's too), alone and interpolated with it; the first stages alone on top."""
    p = ctx.profile
    stages = [*p.rerank, "hybrid"]
    head = ["system"] + [c for st in stages for c in (f"{st} top-{p.k}", f"+ {st} (α={p.interpolate[0]:g})")]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    first = []
    for st in stages:
        label = f"first-stage:{ctx.stages[st]}"
        ids = [
            r[0]
            for r in ctx.db.store.execute(
                "SELECT eval_id FROM eval_summary WHERE split = 'test' AND first_stage = ? AND k = ? AND model = ?",
                [ctx.stages[st], p.k, label],
            ).fetchall()
        ]
        first += [mean_sd(metric_of(ctx, ids)), "–"]
    lines.append("| first stage alone | " + " | ".join(first) + " |")
    rows = [
        (f"CE on {lab} negatives", names[0]) for lab, names in models.items() if lab in ("ensemble", "bm25")
    ]
    rows += [(f"CE on {lab} negatives", name) for lab, name in beyond.items()]
    for label, name in rows:
        cells = [
            mean_sd(metric_of(ctx, result_ids(ctx, [name], st, inter)))
            for st in stages
            for inter in (False, True)
        ]
        lines.append(f"| {label} (`{name}`) | " + " | ".join(cells) + " |")
    members, sparse = ctx.db.store.execute(
        "SELECT members, bm25 FROM ensembles WHERE name = ?", [ctx.hybrid]
    ).fetchone()
    weights = {m["model_id"].rsplit("-", 1)[0]: m["weight"] for m in json.loads(members)}
    weights["bm25"] = json.loads(sparse)["weight"]
    shown = ", ".join(f"{k} {v:.3f}" for k, v in weights.items())
    stats = {
        name: json.loads(ctx.db.scalar("SELECT stats FROM training_runs WHERE name = ?", [name]) or "{}")
        for _, name in rows
    }
    pairs = "; ".join(
        f"`{n}` {st.get('train_pairs_of_run')} pairs / {st.get('train_queries')} queries"
        for n, st in stats.items()
    )
    denoise = {}
    if "denoised" in beyond:
        run = beyond_runs(ctx, {"denoised": beyond["denoised"]})
        if run:
            denoise = json.loads(ctx.db.scalar("SELECT stats FROM mining_runs WHERE name = ?", [run[0]]))
    lines += [
        "",
        f"Hybrid: `{ctx.hybrid}`, tuned by `ensemble tune` (seed 0) from the dense models + "
        f"{p.hybrid_bm25:g} x BM25 (weights: dense members sum to 1, {shown}); its negatives are mined with the main arms' "
        f"window, guard, fallback and cluster filter (K-means k={p.clusters} on its dense part). Denoised: "
        f"the ensemble arm's run without the negatives that `{p.name}-ce-bm25-s0` scores above "
        f"{p.denoise_relative:g} x their positive (sigmoid of the logit), the slots refilled from deeper "
        f"ranks (`hnm-db denoise --relative {p.denoise_relative:g} --refill`): it dropped "
        f"{denoise.get('denoise_dropped')} negatives and refilled {denoise.get('denoise_refilled')} "
        f"({denoise.get('scored_pairs')} pairs scored). Every row trains from the same warm start, with the "
        f"same steps and seed, on the main arms' common pairs that its own run covers ({pairs}). One seed: "
        f"no paired test is claimed.",
    ]
    return "\n".join(lines)


def settings_table(ctx: Context, arm_runs: dict[str, str]) -> str:
    """Each arm's stored mining parameters, side by side."""
    keys = [
        "method",
        "num_negatives",
        "range_min",
        "range_max",
        "fallback_depth",
        "max_score_ratio",
        "guard",
        "cluster_filter",
        "mix_random",
        "sampling",
        "seed",
    ]
    params = {}
    for label, run in arm_runs.items():
        row = ctx.db.store.execute("SELECT method, params FROM mining_runs WHERE name = ?", [run]).fetchone()
        params[label] = {"method": row[0], **json.loads(row[1])}
    lines = ["| mining | " + " | ".join(params) + " |", "|---|" + "---|" * len(params)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(str(params[a].get(key)) for a in params) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="A subset and two small models.")
    ap.add_argument("--device", choices=["cpu", "cuda"], default=None)
    ap.add_argument("--seeds", type=int, default=None, help="Training seeds per method.")
    ap.add_argument("--db", type=Path, default=None, help="Database (default CACHE/paper_<profile>.duckdb).")
    ap.add_argument("--data", type=Path, default=SCIFACT, help="A BEIR folder (default: SciFact).")
    ap.add_argument("--tag", default=None, help="Suffix of the profile name, to keep variants apart.")
    ap.add_argument("--ablations", action="store_true", help="Also train and report the one-seed ablations.")
    ap.add_argument(
        "--beyond",
        action="store_true",
        help="Also the one-seed rows on tuned-hybrid and denoised ensemble negatives (issue 13).",
    )
    ap.add_argument(
        "--skip-main", action="store_true", help="Only seed 0 of the ensemble arm and the ablations."
    )
    ap.add_argument(
        "--report-only", action="store_true", help="Print the report from what is stored; train nothing new."
    )
    ap.add_argument("--note", default=None, help="A sentence about this run printed under Settings.")
    for name in ("max_steps", "batch_size", "group_size", "negatives", "max_length", "k", "clusters"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    ap.add_argument("--loss", choices=T.LOSSES, default=None)
    ap.add_argument("--distill-steps", type=int, default=None)
    ap.add_argument("--mix-random", type=int, default=None)
    args = ap.parse_args()

    profile = QUICK if args.quick else FULL
    given = {k: v for k, v in vars(args).items() if v is not None}
    overrides = {k: given[k] for k in ("seeds", "k", "clusters") if k in given}
    mining = {
        f: given[o] for o, f in (("negatives", "num_negatives"), ("mix_random", "mix_random")) if o in given
    }
    training = {
        k: given[k]
        for k in ("max_steps", "batch_size", "group_size", "max_length", "loss", "distill_steps")
        if k in given
    }
    if args.tag:
        overrides["name"] = f"{profile.name}-{args.tag}"
    profile = replace(
        profile,
        mining=replace(profile.mining, **mining),
        training=replace(profile.training, **training),
        **overrides,
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    collection = args.data.resolve().name
    data = (
        args.data
        if profile.train_queries is None
        else subset(args.data, CACHE / f"{collection}-{profile.name}", profile)
    )
    db_path = (
        args.db
        or CACHE / f"paper_{profile.name if args.data == SCIFACT else collection + '_' + profile.name}.duckdb"
    )
    start = time.perf_counter()
    with hnm_db.open(db_path) as db:
        ctx = Context(db, profile, pick_device(args.device), report_only=args.report_only)
        prepare(ctx, data)
        arm_runs = arms(ctx)
        # every arm trains on the (query, positive) pairs all main arms cover (TrainParams.common_pairs)
        shared = tuple(arm_runs.values())

        def others(run: str) -> tuple[str, ...]:
            """The main runs but ``run``: a variant mined anew (mix-2, guard-none) covers pairs the ensemble
            run lacks, and must still train on exactly the main arms' pairs."""
            return tuple(r for r in shared if r != run)

        def main_job(label: str, seed: int) -> tuple[str, str, Callable[[], T.TrainParams]]:
            run = arm_runs[label]
            name = f"{profile.name}-ce-{label}-s{seed}"
            return (
                "main",
                label,
                lambda: train_params(ctx, run, name, seed, arm_runs["ensemble"], common_pairs=others(run)),
            )

        models: dict[str, list[str]] = {}
        variants: list[tuple[str, str, str]] = []
        beyond: dict[str, str] = {}  # label -> training run of the --beyond rows
        # (kind, label, params made when the job's turn comes), trained and evaluated in order
        jobs: list[tuple[str, str, Callable[[], T.TrainParams]]] = []
        order = list(arm_runs)
        if args.beyond:  # the rows issue 13 asks for come right after the models they need
            order = ["ensemble", "bm25", "beyond:hybrid", "beyond:denoised"] + [
                a for a in order if a not in ("ensemble", "bm25")
            ]
            beyond_runs: dict[str, str] = {"hybrid": hybrid_arm(ctx)}

            def beyond_job(label: str) -> tuple[str, str, Callable[[], T.TrainParams]]:
                def make() -> T.TrainParams:
                    if label == "denoised":  # the denoiser: the BM25-negative model of seed 0
                        beyond_runs[label] = denoised_arm(
                            ctx, arm_runs["ensemble"], f"{profile.name}-ce-bm25-s0"
                        )
                    run, name = beyond_runs[label], f"{profile.name}-ce-{label}-s0"
                    return train_params(ctx, run, name, 0, arm_runs["ensemble"], common_pairs=shared)

                return ("beyond", label, make)

        for seed in range(0 if args.skip_main else profile.seeds):
            for label in order:
                if label.startswith("beyond:"):
                    if seed == 0:
                        jobs.append(beyond_job(label.split(":", 1)[1]))
                    continue
                if label == "bm25-noguard" and seed > 0:
                    continue  # the extra arm is one seed
                jobs.append(main_job(label, seed))
        if args.skip_main:
            jobs.append(main_job("ensemble", 0))
        if args.ablations:
            for tag, text, mine_over, train_over in ABLATIONS:
                run = arm_runs["ensemble"]
                if mine_over:
                    run = mine(
                        ctx, f"{profile.name}-ensemble-{tag}", mining_params(ctx, "ensemble", **mine_over)
                    )
                name = f"{profile.name}-abl-{tag}-s0"
                params = train_params(
                    ctx, run, name, 0, arm_runs["ensemble"], common_pairs=others(run), **train_over
                )
                jobs.append((f"ablation:{tag}:{text}", "ensemble", lambda params=params: params))
        t = time.perf_counter()
        for stage in first_stages(ctx).values():
            evaluate(ctx, None, stage)
        for stage in profile.rerank:
            evaluate(ctx, f"base:{profile.training.base}", stage)
        if ctx.hybrid:
            evaluate(ctx, None, "hybrid")
        for kind, label, make in jobs:
            if args.report_only:
                name = f"{profile.name}-ce-{label}-s0" if kind == "beyond" else make().run_name
                if not ctx.db.scalar(
                    "SELECT count(*) FROM training_runs WHERE name = ? AND status = 'finished'", [name]
                ):
                    continue
            else:
                name = train(ctx, make())
            for stage in profile.rerank:
                evaluate(ctx, name, stage)
            if (
                ctx.hybrid
                and name.endswith("-s0")
                and (kind == "beyond" or (kind == "main" and label in ("ensemble", "bm25")))
            ):
                evaluate(ctx, name, "hybrid")
            if kind == "main":
                models.setdefault(label, []).append(name)
            elif kind == "beyond":
                beyond[label] = name
            else:
                _, tag, text = kind.split(":", 2)
                variants.append((tag, text, name))
        best = None
        if profile.top100 and "bm25" in profile.rerank:
            trained = [n for names in models.values() for n in names] + [n for *_, n in variants]
            scores = {n: metric_of(ctx, result_ids(ctx, [n], "bm25", False)) for n in trained}
            best = max((n for n in scores if scores[n]), key=lambda n: scores[n][0], default=None)
            if best:
                evaluate(ctx, best, "bm25", k=100)
                evaluate(ctx, None, "bm25", k=100)
        ctx.timings["eval"] = time.perf_counter() - t
        ctx.timings["total"] = time.perf_counter() - start
        text = report(ctx, data, collection, arm_runs, models, variants, best, beyond, args.note)
    print(text)
    out = (
        ROOT
        / "bench"
        / "results"
        / (
            "paper_table.md"
            if profile.name == "full" and args.data == SCIFACT
            else f"paper_table_{collection}_{profile.name}.md"
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log(
        f"wrote {out}; re-print the stored results with: hnm-db --db {db_path} eval --compare --mean-over-seeds"
    )


def report(
    ctx: Context,
    data: Path,
    collection: str,
    arm_runs: dict[str, str],
    models: dict[str, list[str]],
    variants: list[tuple[str, str, str]],
    best: str | None,
    beyond: dict[str, str] | None = None,
    note: str | None = None,
) -> str:
    import torch

    db, p = ctx.db, ctx.profile
    counts = {t: db.scalar(f"SELECT count(*) FROM {t}") for t in ("documents", "chunks")}
    queries = dict(
        db.store.execute("SELECT split, count(DISTINCT query_id) FROM qrels GROUP BY 1").fetchall()
    )
    training = {
        k: v
        for k, v in asdict(p).items()
        if (k in T.TrainParams.__dataclass_fields__ or k == "seeds") and k != "name"
    }
    lines = [
        f"# Paper table on {collection} ({p.name} profile)",
        "",
        f"Data: `{data}`: {counts['documents']} documents ({counts['chunks']} chunks, whole), "
        f"{queries.get('train', 0)} train / {queries.get('test', 0)} test queries with qrels. First stages and "
        f"models are evaluated on the test queries; everything else reads the train split only.",
        "",
        "## First stages (test; published figures: BM25 from the BEIR paper, dense models from MTEB)",
        "",
        first_stage_table(ctx, collection),
        "",
        "## Re-rankers: test nDCG@10 and MRR@10 (mean ± sample sd over training seeds)",
        "",
        main_table(ctx, models),
        "",
    ]
    if "ensemble" in models and len(models) > 1:
        lines += [
            "## Paired tests over test queries (per-query nDCG@10 averaged over seeds)",
            "",
            "Two-sided randomization test (10,000 sign flips) and 95% percentile bootstrap interval of the "
            "mean difference (10,000 resamples), scipy.stats, seed 0.",
            "",
            paired_table(ctx, models),
            "",
        ]
    top = metric_of(ctx, result_ids(ctx, [best], "bm25", False, k=100)) if best else []
    if top:
        first = metric_of(
            ctx,
            [
                r[0]
                for r in db.store.execute(
                    "SELECT eval_id FROM eval_summary WHERE split='test' AND first_stage='bm25' AND k=100 AND model='first-stage:bm25'"
                ).fetchall()
            ],
        )
        inter = metric_of(ctx, result_ids(ctx, [best], "bm25", True, k=100))
        lines += [
            f"BM25 top-100 re-ranked by the model best on BM25 top-{p.k} (`{best}`): nDCG@10 {mean_sd(top)} "
            f"(interpolated {mean_sd(inter)}; BM25 alone {mean_sd(first)}).",
            "",
        ]
    lines += [
        "## Settings",
        "",
        "Mining (stored `mining_runs.params`; `cluster_filter` is part of the paper's ensemble method; random "
        "has no score, so no guard applies):",
        "",
        settings_table(ctx, arm_runs),
        "",
        "Training, the same for every arm and seed: "
        + ", ".join(f"{k}={v}" for k, v in training.items())
        + f". Every arm trains the same number of steps and groups, on the same (query, positive) pairs: "
        f"those every main arm's mining run covers (`common_pairs`; a pair the guard left without any "
        f"negative down to the fallback depth is absent from a run), less the dev queries. The dev queries "
        f"are the same for every arm: {p.training.dev_ratio:g} of the train split's judged queries, picked by a hash "
        f"of `dev_seed` 0 and the query id; the dev evaluation re-ranks BM25 top-{p.training.dev_k}. "
        f"`train pairs / queries` in the training table counts the distinct (query, positive) pairs and "
        f"queries each run trained on; `pairs processed` the (query, passage) pairs of its main steps.",
        "",
        f"Models: ensemble of {', '.join(p.models)} (equal weights), K-means k={p.clusters}. Device "
        f"{ctx.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()} with "
        f"{os.cpu_count()} CPUs. "
        + (
            "Re-printed from the database (--report-only); each training run's seconds are in its table."
            if ctx.report_only
            else "Stage times this run (s, cached steps ~0): "
            + ", ".join(f"{k} {v:.0f}" for k, v in ctx.timings.items())
            + "."
        )
        + (f" {note}" if note else ""),
        "",
        "## Mining runs (`run_summary`; scores are each method's own: BM25 or ensemble cosine)",
        "",
        audit_table(ctx, list(arm_runs.values()) + beyond_runs(ctx, beyond)),
        "",
        "## Training runs",
        "",
        training_table(
            ctx,
            [n for names in models.values() for n in names]
            + list((beyond or {}).values())
            + [n for *_, n in variants],
        ),
        "",
    ]
    if beyond:
        lines += [
            "## Beyond the paper: tuned-hybrid and denoised negatives (seed 0; issue 13)",
            "",
            beyond_table(ctx, models, beyond),
            "",
        ]
    if variants:
        lines += [
            "## Ablations (ensemble arm, seed 0; standalone re-ranking)",
            "",
            ablation_table(ctx, models["ensemble"][0], variants),
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
