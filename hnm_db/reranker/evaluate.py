"""Evaluate re-rankers: re-rank a first stage's top-k chunks for every query of a split.

First stages: ``bm25`` (hnm_db.retrieval.bm25 over chunk texts) and ``ensemble:NAME`` (exact dot-product top-k
over the ensemble's chunk vectors, read in bounded batches; for a hybrid ensemble, its dense and BM25
top lists united and ranked by the hybrid score, :mod:`hnm_db.retrieval.hybrid`). Retrieval is over chunks; metrics are per
document, a document's score being its best retrieved chunk's (see hnm_db.retrieval.metrics). The first stage
alone is always a result row (``first-stage:<name>``).

Cross-encoder scores are raw logits cached in ``eval_scores`` by (model fingerprint, query hash, passage
hash, max length), so evaluating the same model again scores only pairs it has not seen, and a repeat
run does not even load the model. Missing scores are committed in batches: an interrupted evaluation
resumes where it stopped. ``eval_results`` rows have a deterministic id over (split, first stage, k,
model fingerprint, settings), so re-running an evaluation replaces its row instead of adding another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from hnm_db.errors import EmptySelection, InvalidParams, MissingEmbeddings, NotFound
from hnm_db.models.ensemble import get_ensemble, hybrid_depth, hybrid_scorer
from hnm_db.options import param
from hnm_db.reranker.crossencoder import (
    load_cross_encoder,
    model_fingerprint,
    pick_device,
    resolve_base,
    score_pairs,
)
from hnm_db.retrieval import metrics
from hnm_db.retrieval.bm25 import BM25Index
from hnm_db.retrieval.topk import score_candidates
from hnm_db.store import Store, effective_qrels
from hnm_db.store.vectors import iter_vectors, read_vectors

BASE_PREFIX = "base:"


@dataclass(frozen=True)
class EvalParams:
    """What an evaluation re-ranks and how; ``model`` None evaluates the first stage alone."""

    model: str | None = param(
        None, help="A model folder, a training run's name, or base:ALIAS for the untuned base."
    )
    first_stage: str = param("bm25", help="bm25 or ensemble:NAME.")
    k: int = param(30, help="Chunks re-ranked per query (>= 10).")
    split: str = param("test", help="Split whose queries and qrels are evaluated.")
    max_length: int = param(256, help="Tokens per (query, passage) pair scored.")
    batch_size: int = param(32, help="Pairs scored per model call.")
    interpolate: tuple[float, ...] = param(
        (),
        help="Also report alpha*z(model) + (1-alpha)*z(first stage); repeatable.",
    )
    aggregate: str = param(
        "max",
        help="How a document's score comes from its retrieved chunks' scores: max (MaxP), first (its "
        "earliest chunk, FirstP) or sum-top-K (its K best, SumP).",
    )
    min_overlap: float = param(
        0.5,
        help="Span metrics: a chunk is relevant when it shares this share of the shorter of itself and a "
        "judged span (view chunk_qrels).",
    )
    head_seed: int = param(0, help="Seed of the fresh head of base:.")
    device: str | None = param(None, help="cpu, cuda or cuda:N (default: cuda when available).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "interpolate", tuple(self.interpolate))
        if self.k < 10:
            raise InvalidParams(
                f"k={self.k} is smaller than 10, but nDCG@10 and MRR@10 need the top 10 documents"
            )
        if self.first_stage != "bm25" and not (
            self.first_stage.startswith("ensemble:") and len(self.first_stage) > len("ensemble:")
        ):
            raise InvalidParams(f"first_stage must be bm25 or ensemble:NAME, not {self.first_stage!r}")
        if self.max_length < 8 or self.batch_size < 1:
            raise InvalidParams("max_length must be >= 8 and batch_size >= 1")
        for alpha in self.interpolate:
            if not 0 <= alpha <= 1:
                raise InvalidParams(f"interpolate weights must be in [0, 1], got {alpha}")
        if self.interpolate and self.model is None:
            raise InvalidParams("interpolate needs a model to mix with the first stage")
        try:
            metrics.parse_aggregate(self.aggregate)
        except ValueError as exc:
            raise InvalidParams(str(exc)) from None
        if not 0 < self.min_overlap <= 1:
            raise InvalidParams(f"min_overlap must be in (0, 1], got {self.min_overlap}")


@dataclass
class EvalSummary:
    rows: list[dict[str, Any]]
    scored_pairs: int
    cached_pairs: int
    queries: int
    candidates: pl.DataFrame = field(repr=False, default_factory=pl.DataFrame)


# -- inputs ------------------------------------------------------------------------------------------
def load_qrels(db: Store, split: str) -> dict[str, dict[str, int]]:
    """query -> {doc: graded score} for the split; a split without relevant judgements is an error.

    Judgements count in their effective split (the ``effective_qrels`` view): qrels ingested without a split
    count in the split ``hnm-db split`` assigned to their query.
    """
    qrels = effective_qrels(db, split)
    if not any(s > 0 for judged in qrels.values() for s in judged.values()):
        splits = [r[0] for r in db.execute("SELECT DISTINCT split FROM qrels ORDER BY 1").fetchall()]
        raise EmptySelection(
            f"split {split!r} has no qrels to evaluate against (splits with qrels: {splits or 'none'})"
        )
    return qrels


def query_frame(db: Store, query_ids: list[str]) -> pl.DataFrame:
    """(query_id, text, content_hash) of the given queries, by id."""
    with db.registered("_hnm_eval_q", pa.table({"query_id": query_ids})):
        return db.sql(
            "SELECT q.query_id, q.text, q.content_hash FROM queries q JOIN _hnm_eval_q USING (query_id) "
            "ORDER BY q.query_id"
        )


# -- first stages ------------------------------------------------------------------------------------
def bm25_top_k(db: Store, query_texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chunk ids, per-query chunk indices, scores) of BM25 over all chunk texts (ordered by chunk_id)."""
    chunks = db.sql("SELECT chunk_id, text FROM chunks ORDER BY chunk_id")
    if chunks.height == 0:
        raise EmptySelection("there are no chunks to retrieve from (run hnm-db chunk)")
    index = BM25Index.build(chunks["text"].to_list())
    idx, scores = index.top_k(query_texts, k)
    return chunks["chunk_id"].to_numpy(), idx, scores


def ensemble_top_k(
    db: Store,
    name: str,
    query_hashes: list[str],
    k: int,
    *,
    batch_rows: int = 50_000,
    query_texts: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-k by dot product of ensemble vectors, chunk vectors streamed in bounded batches; for a
    hybrid ensemble (which needs ``query_texts``), the top k of the union of its dense and BM25 lists by
    hybrid score."""
    ens = get_ensemble(db, name)
    ensemble_id = ens.ensemble_id
    keys, qmat = read_vectors(
        db,
        "SELECT content_hash, vec FROM ensemble_vectors WHERE ensemble_id = ? AND role = 'query'",
        [ensemble_id],
    )
    row_of = {h: i for i, h in enumerate(keys.get("content_hash", []))}
    lacking = sum(1 for h in query_hashes if h not in row_of)
    if lacking:
        raise MissingEmbeddings(
            f"ensemble {name!r} has no query vector for {lacking} evaluation queries; embed them"
        )
    q = qmat[[row_of[h] for h in query_hashes]]
    missing = db.scalar(
        "SELECT count(*) FROM chunks c ANTI JOIN ensemble_vectors v ON v.content_hash = c.content_hash "
        "AND v.ensemble_id = ? AND v.role = 'doc'",
        [ensemble_id],
    )
    if missing:
        raise MissingEmbeddings(f"ensemble {name!r} has no vector for {missing} chunks; embed them first")
    n_chunks = db.scalar("SELECT count(*) FROM chunks")
    if n_chunks == 0:
        raise EmptySelection("there are no chunks to retrieve from (run hnm-db chunk)")
    ids: list[np.ndarray] = []
    sql = (
        "SELECT c.chunk_id, v.vec FROM chunks c JOIN ensemble_vectors v ON v.content_hash = c.content_hash "
        "AND v.ensemble_id = ? AND v.role = 'doc' ORDER BY c.chunk_id"
    )

    def blocks() -> Iterator[np.ndarray]:  # in chunk_id order: item i is the i-th chunk
        for batch_keys, mat in iter_vectors(db, sql, [ensemble_id], batch_rows=batch_rows):
            ids.append(batch_keys["chunk_id"])
            yield mat

    if ens.bm25 is None:
        top = score_candidates(q, blocks(), min(k, n_chunks))
        return np.concatenate(ids), top.indices, top.scores
    if query_texts is None:
        raise InvalidParams(f"ensemble {name!r} is a hybrid: its first stage needs the query texts")
    dense = score_candidates(q, blocks(), min(hybrid_depth(ens, k), n_chunks))
    chunks = db.sql("SELECT chunk_id, text, content_hash FROM chunks ORDER BY chunk_id")
    scorer = hybrid_scorer(
        db, ens, chunks["text"].to_list(), query_texts, q, chunks["content_hash"].to_numpy()
    )
    top = scorer.top_k(dense, min(k, n_chunks))
    return np.concatenate(ids), top.indices, top.scores


def check_first_stage(db: Store, first_stage: str) -> None:
    """``bm25`` or ``ensemble:NAME`` of an ensemble that exists (InvalidParams / NotFound otherwise)."""
    EvalParams(model=None, first_stage=first_stage)
    if first_stage.startswith("ensemble:"):
        get_ensemble(db, first_stage.split(":", 1)[1])


def first_stage_candidates(db: Store, params: EvalParams, queries: pl.DataFrame) -> pl.DataFrame:
    """(query_id, query_hash, chunk_id, doc_id, passage_hash, rank, first_score) for every query's top k."""
    if params.first_stage == "bm25":
        chunk_ids, idx, scores = bm25_top_k(db, queries["text"].to_list(), params.k)
    else:
        name = params.first_stage.split(":", 1)[1]
        chunk_ids, idx, scores = ensemble_top_k(
            db, name, queries["content_hash"].to_list(), params.k, query_texts=queries["text"].to_list()
        )
    n, width = idx.shape
    frame = pl.DataFrame(
        {
            "query_id": np.repeat(queries["query_id"].to_numpy(), width),
            "query_hash": np.repeat(queries["content_hash"].to_numpy(), width),
            "chunk_id": chunk_ids[idx.reshape(-1)],
            "rank": np.tile(np.arange(1, width + 1, dtype=np.int32), n),
            "first_score": scores.reshape(-1).astype(np.float64),
        }
    )
    with db.registered("_hnm_eval_c", frame.to_arrow()):
        return db.sql(
            "SELECT c.query_id, c.query_hash, c.chunk_id, ch.doc_id, ch.ord, ch.content_hash AS passage_hash, "
            "ch.text AS passage, c.rank, c.first_score FROM _hnm_eval_c c JOIN chunks ch USING (chunk_id) "
            "ORDER BY c.query_id, c.rank"
        )


# -- models and the score cache ----------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A re-ranker to evaluate: its label in tables, the fingerprint its scores are cached under."""

    label: str
    fingerprint: str
    path: Path
    training_run_id: str | None = None
    head_seed: int | None = None


def resolve_model(db: Store, spec: str, head_seed: int = 0) -> ModelSpec:
    """``base:ALIAS|PATH`` (untuned base, fresh head seeded by ``head_seed``), a model folder, or the name
    of a finished training run. A folder produced by a training run is labelled with the run's name."""
    if spec.startswith(BASE_PREFIX):
        path = resolve_base(db, spec[len(BASE_PREFIX) :])
        fp = hashlib.sha256(f"base:{model_fingerprint(path)}:head-seed={head_seed}".encode()).hexdigest()
        return ModelSpec(spec, fp, path, None, head_seed)
    path = Path(spec)
    if not path.exists():
        row = db.execute(
            "SELECT output_path FROM training_runs WHERE name = ? AND status = 'finished'", [spec]
        ).fetchone()
        if row is not None:
            path = Path(row[0])
    resolve_base(None, str(path))  # the same checks as a base: an existing transformer folder
    architectures = json.loads((path / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise InvalidParams(
            f"{spec} has no trained cross-encoder head (architectures: {architectures or 'none'}); "
            f"evaluate an untuned base with --model base:{spec}"
        )
    fp = model_fingerprint(path)
    run = db.execute(
        "SELECT training_run_id, name FROM training_runs WHERE fingerprint = ? AND status = 'finished' "
        "ORDER BY finished_at DESC LIMIT 1",
        [fp],
    ).fetchone()
    if run is not None:
        return ModelSpec(run[1], fp, path, run[0])
    return ModelSpec(str(path), fp, path)


def _pairs_frame(cands: pl.DataFrame) -> pl.DataFrame:
    return cands.select("query_hash", "passage_hash", "query", "passage").unique(
        ["query_hash", "passage_hash"], keep="first", maintain_order=True
    )


def missing_pairs(db: Store, fingerprint: str, max_length: int, cands: pl.DataFrame) -> pl.DataFrame:
    """Distinct (query, passage) pairs of the candidates that have no cached score yet."""
    with db.registered("_hnm_eval_p", _pairs_frame(cands).to_arrow()):
        return db.sql(
            "SELECT p.* FROM _hnm_eval_p p ANTI JOIN eval_scores s ON s.model_fingerprint = ? "
            "AND s.max_length = ? AND s.query_hash = p.query_hash AND s.passage_hash = p.passage_hash "
            "ORDER BY p.query_hash, p.passage_hash",
            [fingerprint, max_length],
        )


def score_missing(
    db: Store,
    spec: ModelSpec,
    params: EvalParams,
    todo: pl.DataFrame,
    *,
    progress: bool,
    commit_every: int = 2048,
) -> int:
    """Score the pairs with the cross-encoder and store them, one transaction per ``commit_every`` pairs."""
    if todo.height == 0:
        return 0
    device = pick_device(params.device)
    ce = load_cross_encoder(spec.path, max_length=params.max_length, device=device, seed=spec.head_seed)
    for start in range(0, todo.height, commit_every):
        part = todo.slice(start, commit_every)
        scores = score_pairs(
            ce,
            part["query"].to_list(),
            part["passage"].to_list(),
            batch_size=params.batch_size,
            progress=progress,
        )
        rows = pa.table(
            {
                "model_fingerprint": [spec.fingerprint] * part.height,
                "query_hash": part["query_hash"].to_arrow(),
                "passage_hash": part["passage_hash"].to_arrow(),
                "max_length": pa.array([params.max_length] * part.height, pa.int32()),
                "score": pa.array(scores, pa.float64()),
            }
        )
        with db.transaction():
            with db.registered("_hnm_eval_s", rows):
                db.execute("INSERT INTO eval_scores SELECT * FROM _hnm_eval_s ON CONFLICT DO NOTHING")
    return todo.height


def attach_scores(
    db: Store, fingerprint: str, max_length: int, cands: pl.DataFrame, order_by: str = "c.query_id, c.rank"
) -> pl.DataFrame:
    """The candidates (without their texts) with a ``model_score`` column read back from the cache; pairs
    not in the cache are left out."""
    with db.registered("_hnm_eval_c", cands.drop("query", "passage", strict=False).to_arrow()):
        return db.sql(
            "SELECT c.*, s.score AS model_score FROM _hnm_eval_c c JOIN eval_scores s "
            "ON s.model_fingerprint = ? AND s.max_length = ? AND s.query_hash = c.query_hash "
            f"AND s.passage_hash = c.passage_hash ORDER BY {order_by}",
            [fingerprint, max_length],
        )


# -- metrics and result rows -------------------------------------------------------------------------
def rankings(cands: pl.DataFrame, scores: np.ndarray, aggregate: str = "max") -> dict[str, list[str]]:
    """query -> documents ranked by ``aggregate`` of their chunks' ``scores`` (aligned with ``cands``
    rows; see :func:`hnm_db.retrieval.metrics.doc_ranking`)."""
    out: dict[str, list[str]] = {}
    qids = cands["query_id"].to_numpy()
    docs = cands["doc_id"].to_numpy()
    ords = cands["ord"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, qids[1:] != qids[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        out[str(qids[a])] = metrics.doc_ranking(docs[a:b], scores[a:b], aggregate, ords[a:b])
    return out


def span_chunks(db: Store, split: str, min_overlap: float) -> dict[str, set[str]]:
    """query -> the chunks that overlap one of its judged spans by ``min_overlap`` (empty: no spans)."""
    rows = db.execute(
        "SELECT query_id, chunk_id FROM chunk_qrels WHERE split = ? AND overlap >= ?", [split, min_overlap]
    ).fetchall()
    out: dict[str, set[str]] = {}
    for q, c in rows:
        out.setdefault(q, set()).add(c)
    return out


def ranked_metrics(
    cands: pl.DataFrame,
    scores: np.ndarray,
    qrels: dict[str, dict[str, int]],
    params: EvalParams,
    spans: dict[str, set[str]],
) -> dict[str, dict[str, float]]:
    """Per-query document metrics of one scoring, plus the passage metrics of queries with spans."""
    values = metrics.per_query_metrics(rankings(cands, scores, params.aggregate), qrels, params.k)
    if spans:
        qids, chunk_ids = cands["query_id"].to_numpy(), cands["chunk_id"].to_numpy()
        bounds = np.flatnonzero(np.r_[True, qids[1:] != qids[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            q = str(qids[a])
            if q in spans and q in values:
                order = np.lexsort((chunk_ids[a:b].astype(str), -scores[a:b]))
                values[q].update(metrics.passage_metrics(chunk_ids[a:b][order].tolist(), spans[q]))
        for q in values.keys() & spans.keys() - set(qids.tolist()):  # nothing retrieved: zeros
            values[q].update(metrics.passage_metrics([], spans[q]))
    return values


def interpolated(cands: pl.DataFrame, alpha: float) -> np.ndarray:
    """Per-query z-score mix of first-stage and model scores (aligned with ``cands`` rows)."""
    qids = cands["query_id"].to_numpy()
    first, model = cands["first_score"].to_numpy(), cands["model_score"].to_numpy()
    out = np.zeros(len(qids))
    bounds = np.flatnonzero(np.r_[True, qids[1:] != qids[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        out[a:b] = metrics.interpolate(first[a:b], model[a:b], alpha)
    return out


def write_result(
    db: Store,
    params: EvalParams,
    model: str,
    fingerprint: str | None,
    training_run_id: str | None,
    per_query: dict[str, dict[str, float]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Insert (or replace) one eval_results row with its mean and per-query metrics; its id is a hash
    of what makes the result."""
    values = metrics.summarize(per_query)
    settings = {"max_length": params.max_length if fingerprint else None, **extra}
    key = json.dumps(
        [params.split, params.first_stage, params.k, model, fingerprint, settings], sort_keys=True
    )
    eval_id = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    with db.transaction():
        db.execute("DELETE FROM eval_results WHERE eval_id = ?", [eval_id])
        db.execute(
            "INSERT INTO eval_results (eval_id, split, first_stage, k, model, model_fingerprint, training_run_id, "
            "metrics, params, per_query) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                eval_id,
                params.split,
                params.first_stage,
                params.k,
                model,
                fingerprint,
                training_run_id,
                json.dumps(values, sort_keys=True),
                json.dumps(settings, sort_keys=True),
                json.dumps(per_query, sort_keys=True),
            ],
        )
    return {
        "model": model,
        "first_stage": params.first_stage,
        "k": params.k,
        "aggregate": params.aggregate,
        **values,
    }


def evaluate(db: Store, params: EvalParams, *, progress: bool = True) -> EvalSummary:
    """Evaluate the first stage alone and, if ``params.model`` is given, the re-ranked (and interpolated)
    rankings; every result is stored in eval_results and returned as a row."""
    qrels = load_qrels(db, params.split)
    spec = resolve_model(db, params.model, params.head_seed) if params.model else None
    queries = query_frame(db, sorted(qrels))
    if queries.height == 0:
        raise EmptySelection(f"no query of split {params.split!r} is in the queries table")
    cands = first_stage_candidates(db, params, queries)
    cands = cands.join(queries.select("query_id", pl.col("text").alias("query")), on="query_id", how="left")
    spans = span_chunks(db, params.split, params.min_overlap)
    common: dict[str, Any] = {} if params.aggregate == "max" else {"aggregate": params.aggregate}
    if spans:
        common["min_overlap"] = params.min_overlap
    rows = [
        write_result(
            db,
            params,
            f"first-stage:{params.first_stage}",
            None,
            None,
            ranked_metrics(cands, cands["first_score"].to_numpy(), qrels, params, spans),
            common,
        )
    ]
    scored = cached = 0
    if spec is not None:
        todo = missing_pairs(db, spec.fingerprint, params.max_length, cands)
        scored = score_missing(db, spec, params, todo, progress=progress)
        cached = _pairs_frame(cands).height - scored
        scored_cands = attach_scores(db, spec.fingerprint, params.max_length, cands)
        extra = {**common, **({"head_seed": spec.head_seed} if spec.head_seed is not None else {})}
        values = ranked_metrics(scored_cands, scored_cands["model_score"].to_numpy(), qrels, params, spans)
        rows.append(
            write_result(db, params, spec.label, spec.fingerprint, spec.training_run_id, values, extra)
        )
        for alpha in params.interpolate:
            mixed = interpolated(scored_cands, alpha)
            values = ranked_metrics(scored_cands, mixed, qrels, params, spans)
            rows.append(
                write_result(
                    db,
                    params,
                    f"{spec.label} + {params.first_stage} (alpha={alpha:g})",
                    spec.fingerprint,
                    spec.training_run_id,
                    values,
                    {**extra, "interpolate": alpha},
                )
            )
    return EvalSummary(rows, scored, cached, queries.height, cands.drop("query", "passage"))


# -- comparing stored results ------------------------------------------------------------------------
METRIC_COLUMNS = list(metrics.METRIC_NAMES)


@dataclass(frozen=True)
class PairedTest:
    """System A minus system B on one metric, paired over the queries both were evaluated on."""

    metric: str
    queries: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float


def per_query_values(db: Store, eval_ids: Sequence[str], metric: str = "ndcg@10") -> dict[str, float]:
    """Per-query ``metric`` of the given results averaged over them (e.g. one system's training seeds);
    only queries present in every result count."""
    rows = db.execute(
        "SELECT eval_id, per_query FROM eval_results WHERE eval_id IN (SELECT unnest(?))", [list(eval_ids)]
    ).fetchall()
    missing = set(eval_ids) - {r[0] for r in rows if r[1] is not None}
    if missing:
        raise NotFound(f"no per-query metrics stored for {len(missing)} results (evaluate them again)")
    tables = [json.loads(r[1]) for r in rows]
    common = set.intersection(*(set(t) for t in tables))
    return {q: float(np.mean([t[q][metric] for t in tables])) for q in sorted(common)}


def result_ids(
    db: Store,
    systems: Sequence[str],
    *,
    first_stage: str,
    k: int,
    split: str = "test",
    interpolate: float | None = None,
    aggregate: str = "max",
) -> list[str]:
    """eval_ids of the stored results of ``systems`` (training run names or model labels such as
    ``base:minilm-l6`` or ``first-stage:bm25``) on one first stage, k and aggregate, standalone or at
    one interpolation weight; NotFound names a system with no such result."""
    rows = db.execute(  # an interpolated row's model label is "<system> + <first stage> (alpha=...)"
        "WITH r AS (SELECT coalesce(training_run, split_part(model, ' + ', 1)) AS system, eval_id, split, "
        "first_stage, k, interpolate, aggregate FROM eval_summary) "
        "SELECT system, eval_id FROM r WHERE split = ? AND first_stage = ? AND k = ? AND aggregate = ? "
        "AND system IN (SELECT unnest(?)) AND (interpolate = ? OR (interpolate IS NULL AND ? IS NULL))",
        [split, first_stage, k, aggregate, list(systems), interpolate, interpolate],
    ).fetchall()
    found = {name for name, _ in rows}
    missing = [s for s in systems if s not in found]
    if missing:
        how = "standalone" if interpolate is None else f"interpolated at alpha {interpolate:g}"
        raise NotFound(
            f"no stored result of {', '.join(map(repr, missing))} on {first_stage} top-{k} ({split}, {how}, "
            f"aggregate {aggregate}): "
            "run hnm-db eval first (hnm-db eval --compare lists what is stored)"
        )
    return [eval_id for _, eval_id in rows]


def paired_test(
    a: dict[str, float],
    b: dict[str, float],
    *,
    metric: str = "ndcg@10",
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedTest:
    """Two-sided paired randomization test (sign flips of the per-query differences) and a 95% percentile
    bootstrap interval of the mean difference, both from scipy.stats, over the queries of both."""
    from scipy import stats

    queries = sorted(set(a) & set(b))
    if len(queries) < 2:
        raise EmptySelection("a paired test needs at least two queries evaluated by both systems")
    x = np.array([a[q] for q in queries])
    y = np.array([b[q] for q in queries])
    d = x - y
    mean = lambda u, axis=-1: np.mean(u, axis=axis)  # noqa: E731
    perm = stats.permutation_test(
        (d,),
        mean,
        permutation_type="samples",
        n_resamples=resamples,
        alternative="two-sided",
        random_state=seed,
    )
    if np.allclose(d, 0):
        low = high = 0.0
    else:
        ci = stats.bootstrap(
            (d,), mean, n_resamples=resamples, confidence_level=0.95, method="percentile", random_state=seed
        ).confidence_interval
        low, high = float(ci.low), float(ci.high)
    return PairedTest(
        metric, len(queries), float(x.mean()), float(y.mean()), float(d.mean()), low, high, float(perm.pvalue)
    )


def stored_results(db: Store, split: str = "test") -> pl.DataFrame:
    """Every stored result of the split (the eval_summary view), best nDCG@10 first per first stage."""
    return db.sql(
        'SELECT * FROM eval_summary WHERE split = ? ORDER BY first_stage, k, "ndcg@10" DESC, model',
        [split],
    )


def _system(row: dict[str, Any]) -> str:
    """Seed-independent name of what produced a result: the mining run and loss of a trained model."""
    if row["mining_run"] is None:
        return row["model"].split(" + ")[0]
    return f"ce[{row['mining_run']}, {row['loss']}]"


def _settings(row: dict[str, Any]) -> str:
    if row["training_params"] is None:
        return ""
    params = json.loads(row["training_params"])
    for key in ("seed", "name", "out", "device"):
        params.pop(key, None)
    return hashlib.blake2b(json.dumps(params, sort_keys=True).encode(), digest_size=3).hexdigest()


def seed_summary(results: pl.DataFrame) -> pl.DataFrame:
    """Mean, sample standard deviation and count over seeds of each (first stage, k, system,
    interpolation); two trainings differ only by seed when all their other parameters are equal."""
    if results.height == 0:
        return pl.DataFrame()
    rows = results.to_dicts()
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        key = (
            r["first_stage"], r["k"], r["aggregate"], _system(r), _settings(r), r["interpolate"], r["method"], r["loss"]
        )  # fmt: skip
        groups.setdefault(key, []).append(r)
    variants: dict[str, set[str]] = {}
    for key in groups:
        variants.setdefault(key[3], set()).add(key[4])
    out = []
    for (first_stage, k, aggregate, system, settings, alpha, method, loss), members in groups.items():
        label = system if len(variants[system]) == 1 else f"{system}#{settings}"
        if alpha is not None:
            label += f" + {first_stage} (alpha={alpha:g})"
        row: dict[str, Any] = {
            "first_stage": first_stage,
            "k": k,
            "aggregate": aggregate,
            "system": label,
            "method": method,
            "loss": loss,
            "seeds": len(members),
        }
        for m in METRIC_COLUMNS:
            vals = np.array([x[m] for x in members], dtype=np.float64)
            row[m] = float(vals.mean())
            row[f"{m} sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else None
        out.append(row)
    frame = pl.DataFrame(out)
    return frame.sort(["first_stage", "k", "ndcg@10"], descending=[False, False, True])


def markdown_table(summary: pl.DataFrame, *, digits: int = 3) -> str:
    """A summary as a markdown table, each metric ``mean ± sd`` (sd only when there are several seeds)."""
    head = ["first stage", "k", "system", "seeds", *METRIC_COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.to_dicts():
        cells = [r["first_stage"], str(r["k"]), r["system"], str(r["seeds"])]
        for m in METRIC_COLUMNS:
            sd = r.get(f"{m} sd")
            cells.append(f"{r[m]:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
