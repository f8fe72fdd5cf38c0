"""Fit an ensemble's member weights, BM25 included, on dev queries carved from the train split.

``hnm-db ensemble tune NAME`` never reads the test split: the only judgements it reads are those of
``TuneParams.split`` (default ``train``, and ``test`` is refused), from which the seeded hold-out
(:func:`hnm_db.seeding.held_out`, about ``dev_ratio`` of the judged queries, at least one) is the dev set. The fitted weights become a **new** ensemble
(default name ``NAME-tuned``) with its own vectors; the source ensemble is left as it was, so every
mining run and evaluation that used the old weights keeps pointing at the weights it used. The tuning
(source, dev queries, settings, best and source dev nDCG@10, the whole search trace) is one
``ensemble_tunings`` row.

Search. Weights live on the simplex (dense members and BM25 sum to 1; the hybrid score is the same
ranking as the ensemble convention of dense weights summing to 1 and BM25 weight W = w_bm25 / sum of the
dense ones). nDCG@10 is a step function of the weights (it changes only when two candidates swap), so
it has no useful gradient, and there are only a handful of members. We therefore (1) score the source's
weights and equal weights, (2) draw ``samples`` points uniformly from the simplex (numpy's
``Dirichlet(1, ..., 1)``), which covers it evenly whatever the number of members and cannot get stuck
on a plateau, and (3) refine the best point by coordinate steps: multiply one weight by a factor f or
1/f and renormalise, keeping a step only when it strictly improves, with f = 2, sqrt 2, 2^(1/4), ...
over ``rounds`` rounds. Multiplicative steps keep every weight positive (a member is never dropped,
since a zero weight is not a valid member). Strict improvement and a fixed visiting order make the
search deterministic for a seed; Nelder-Mead or other local optimisers in scipy stall on the plateaus.

Scoring a weight vector must be cheap, so each dev query's candidate **pool** is fixed once: the union of
every dense member's top-``depth`` list (cosine) and BM25's top-``depth`` list, with each member's cosine
and the BM25 score of every pool item. A trial is then a weighted sum, per-query min-max normalisation of
BM25 over the pool, MaxP document ranking and nDCG@10 (:mod:`hnm_db.retrieval.metrics`), as in ``hnm-db eval``.
The pool contains both lists a hybrid of any weights ranks, up to the few items that only a
mix of members puts in its dense top list, so dev scores are close to, not identical with, an
``hnm-db eval`` of the tuned ensemble on the same queries.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hnm_db.errors import EmptySelection, InvalidParams, MissingEmbeddings
from hnm_db.models.ensemble import (
    EnsembleInfo,
    EnsembleParams,
    EnsembleSummary,
    bm25_index,
    create_ensemble,
    get_ensemble,
)
from hnm_db.options import param
from hnm_db.retrieval import metrics
from hnm_db.retrieval.hybrid import minmax_bounds, union_rows
from hnm_db.retrieval.topk import score_candidates, top_k_rows
from hnm_db.seeding import TUNE_DEV_STREAM, held_out
from hnm_db.store import Store, effective_qrels
from hnm_db.store.vectors import iter_vectors, vectors_by_hash

BM25_MEMBER = "bm25"


@dataclass(frozen=True)
class TuneParams:
    """What ``hnm-db ensemble tune`` fits and how (module docstring)."""

    ensemble: str = param(argument=True, help="The ensemble whose weights are fitted.")
    name: str | None = param(None, flag="--out", help="Name of the tuned ensemble [default: NAME-tuned].")
    split: str = param("train", help="Split the dev queries are carved from (never test).")
    dev_ratio: float = param(0.2, help="Share of the split's judged queries drawn as dev queries.")
    seed: int = param(0, help="Seed of the dev draw and the search.")
    samples: int = param(64, help="Weight vectors drawn uniformly from the simplex before refining.")
    rounds: int = param(4, help="Rounds of coordinate refinement (step factors 2, 2^(1/2), 2^(1/4), ...).")
    depth: int = param(
        100, help="Each member's (and BM25's) top list that makes up a dev query's candidate pool."
    )
    replace: bool = param(False, help="Rebuild the tuned ensemble if it exists with other weights.")

    def __post_init__(self) -> None:
        if not self.ensemble:
            raise InvalidParams("ensemble: name the ensemble to tune")
        if self.split == "test":
            raise InvalidParams(
                "split: weights are tuned on train queries; the test split is for evaluation only"
            )
        if not 0 < self.dev_ratio <= 1:
            raise InvalidParams(f"dev_ratio: must be in (0, 1], got {self.dev_ratio}")
        for field_name in ("seed", "samples", "rounds"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidParams(f"{field_name}: must be an integer >= 0, got {value!r}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 10:
            raise InvalidParams(
                f"depth: must be an integer >= 10 (nDCG@10 needs 10 documents), got {self.depth!r}"
            )
        if self.name is not None and self.name == self.ensemble:
            raise InvalidParams(
                "name: tune writes a new ensemble (runs mined with the old weights keep them); choose another name"
            )

    @property
    def out_name(self) -> str:
        return self.name or f"{self.ensemble}-tuned"


@dataclass
class TuneSummary:
    name: str
    ensemble_id: str
    source: str
    dev_queries: int
    weights: dict[str, float]
    dev_score: float
    source_dev_score: float
    trials: int
    ensemble: EnsembleSummary


@dataclass
class DevPool:
    """Each dev query's fixed candidates: member cosines, raw BM25, the candidates' documents."""

    cos: np.ndarray  # (n_queries, width, n_dense)
    bm25: np.ndarray | None  # (n_queries, width) BM25 min-max normalised over the pool, or None
    valid: np.ndarray  # (n_queries, width)
    docs: list[np.ndarray]  # per query, the doc ids of its valid candidates
    qrels: list[dict[str, int]]

    def ndcg(self, weights: np.ndarray) -> float:
        """Mean nDCG@10 over the dev queries of the hybrid with simplex ``weights`` (dense..., bm25)."""
        n_dense = self.cos.shape[2]
        scores = self.cos @ weights[:n_dense]
        if self.bm25 is not None:
            scores = scores + weights[n_dense] * self.bm25
        total = 0.0
        for i, docs in enumerate(self.docs):
            ranked = metrics.doc_ranking(docs, scores[i, self.valid[i]])
            total += metrics.ndcg(ranked, self.qrels[i], 10)
        return total / len(self.docs)


def dev_qrels(db: Store, params: TuneParams) -> dict[str, dict[str, int]]:
    """query -> judgements of the seeded dev draw from ``params.split`` (the only qrels tune reads)."""
    qrels = effective_qrels(db, params.split)
    judged = [q for q, j in qrels.items() if any(s > 0 for s in j.values())]
    if not judged:
        raise EmptySelection(
            f"ensemble {params.ensemble!r} cannot be tuned: split {params.split!r} has no query with a "
            "relevant judgement to carve dev queries from"
        )
    chosen = held_out(judged, params.dev_ratio, params.seed, TUNE_DEV_STREAM, at_least=1)
    return {q: qrels[q] for q in sorted(chosen)}


def _unit(mat: np.ndarray) -> np.ndarray:
    return mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)


def _member_top(db: Store, member: dict, qhashes: np.ndarray, n_chunks: int, depth: int):
    """(query unit vectors, top-depth chunk indices by cosine) of one dense member."""
    qmat, missing = vectors_by_hash(db, "embeddings", "model_id", member["model_id"], "query", qhashes)
    if missing:
        raise MissingEmbeddings(
            f"model {member['name']!r} has no query vector for {missing} dev queries: run `hnm-db embed`"
        )
    sql = (
        "SELECT c.chunk_id, e.vec FROM chunks c JOIN embeddings e ON e.content_hash = c.content_hash "
        "AND e.model_id = ? AND e.role = 'doc' ORDER BY c.chunk_id"
    )
    seen = [0]

    def blocks():
        for _, mat in iter_vectors(db, sql, [member["model_id"]]):
            seen[0] += len(mat)
            yield _unit(mat)

    q = _unit(qmat)
    top = score_candidates(q, blocks(), min(depth, n_chunks))
    if seen[0] != n_chunks:
        raise MissingEmbeddings(
            f"model {member['name']!r} lacks doc vectors for {n_chunks - seen[0]} chunks: run `hnm-db embed`"
        )
    return q, top.indices


def build_pool(db: Store, ens: EnsembleInfo, qrels: dict[str, dict[str, int]], depth: int) -> DevPool:
    """The dev queries' candidate pools with every member's score (module docstring)."""
    qids = sorted(qrels)
    queries = db.sql(
        "SELECT query_id, text, content_hash FROM queries WHERE list_contains(?, query_id) ORDER BY query_id",
        [qids],
    )
    if queries.height != len(qids):
        raise EmptySelection(
            f"{len(qids) - queries.height} dev queries are judged but missing from the queries table"
        )
    chunks = db.sql("SELECT chunk_id, doc_id, text, content_hash FROM chunks ORDER BY chunk_id")
    if chunks.height == 0:
        raise EmptySelection("there are no chunks to rank (run hnm-db chunk)")
    qhashes = queries["content_hash"].to_numpy()
    tops, qvecs = [], []
    for m in ens.members:
        q, idx = _member_top(db, m, qhashes, chunks.height, depth)
        qvecs.append(q)
        tops.append(idx)
    full_bm25 = None
    if ens.bm25 is not None:
        full_bm25 = bm25_index(ens, chunks["text"].to_list()).scores(queries["text"].to_list())
        tops.append(top_k_rows(full_bm25, min(depth, chunks.height))[0])
    cand = tops[0]
    for other in tops[1:]:
        cand = union_rows(cand, other)
    valid = cand >= 0
    safe = np.where(valid, cand, 0)
    cos = np.zeros((*cand.shape, len(ens.members)))
    hashes = chunks["content_hash"].to_numpy()
    items = np.unique(safe)
    for j, m in enumerate(ens.members):
        dmat, missing = vectors_by_hash(db, "embeddings", "model_id", m["model_id"], "doc", hashes[items])
        if missing:
            raise MissingEmbeddings(
                f"model {m['name']!r} lacks doc vectors for {missing} chunks: run `hnm-db embed`"
            )
        sims = qvecs[j] @ _unit(dmat).T
        cos[:, :, j] = np.take_along_axis(sims, np.searchsorted(items, safe), axis=1)
    bm25 = None
    if full_bm25 is not None:
        raw = np.take_along_axis(full_bm25, safe, axis=1).astype(np.float64)
        lo, span = minmax_bounds(raw, valid)
        bm25 = (raw - lo[:, None]) / span[:, None]
    doc_ids = chunks["doc_id"].to_numpy()
    docs = [doc_ids[cand[i, valid[i]]] for i in range(len(qids))]
    return DevPool(cos, bm25, valid, docs, [qrels[q] for q in qids])


def _names(ens: EnsembleInfo) -> list[str]:
    return [m["name"] for m in ens.members] + ([BM25_MEMBER] if ens.bm25 is not None else [])


def source_weights(ens: EnsembleInfo) -> np.ndarray:
    """The source ensemble's weights on the simplex (dense weights and BM25 weight W, rescaled)."""
    w = [float(m["weight"]) for m in ens.members]
    if ens.bm25 is not None:
        w.append(float(ens.bm25["weight"]))
    w = np.asarray(w)
    return w / w.sum()


def search(pool: DevPool, start: np.ndarray, params: TuneParams) -> tuple[np.ndarray, float, list[dict]]:
    """Best simplex weights by nDCG@10 on the pool, and the trace of every point tried (module docstring)."""
    n = len(start)
    trace: list[dict[str, Any]] = []

    def trial(w: np.ndarray, phase: str) -> float:
        score = pool.ndcg(w)
        trace.append({"step": len(trace), "phase": phase, "weights": w.tolist(), "ndcg@10": score})
        return score

    best_w, best = start, trial(start, "source")
    candidates = [(np.full(n, 1.0 / n), "equal")]
    rng = np.random.default_rng([params.seed, 17])
    candidates += [(w, "dirichlet") for w in rng.dirichlet(np.ones(n), size=params.samples)]
    for w, phase in candidates:
        score = trial(w, phase)
        if score > best:
            best_w, best = w, score
    for r in range(params.rounds):
        factor = 2.0 ** (1.0 / 2**r)
        for j in range(n):
            for f in (factor, 1.0 / factor):
                w = best_w.copy()
                w[j] *= f
                w /= w.sum()
                score = trial(w, f"refine-{r}")
                if score > best:
                    best_w, best = w, score
    return best_w, best, trace


def tune(db: Store, params: TuneParams, *, progress: bool = False) -> TuneSummary:
    """Fit the weights, write the tuned ensemble (its vectors commit batch by batch, the ensemble row
    last, as ``create_ensemble`` does) and its ``ensemble_tunings`` row."""
    ens = get_ensemble(db, params.ensemble)
    names = _names(ens)
    if len(names) < 2:
        raise InvalidParams(f"ensemble {ens.name!r} has one member: there are no weights to tune")
    qrels = dev_qrels(db, params)
    pool = build_pool(db, ens, qrels, params.depth)
    start = source_weights(ens)
    best_w, best, trace = search(pool, start, params)
    for t in trace:
        t["weights"] = dict(zip(names, t["weights"], strict=True))
    n_dense = len(ens.members)
    dense = best_w[:n_dense] / best_w[:n_dense].sum()
    members = tuple((m["model_id"], float(w)) for m, w in zip(ens.members, dense, strict=True))
    sparse: dict[str, Any] = {}
    if ens.bm25 is not None:
        spec = ens.bm25
        sparse = {"bm25": float(best_w[n_dense] / best_w[:n_dense].sum()), "bm25_k1": spec["k1"]}
        sparse.update(bm25_b=spec["b"], depth=spec["depth"])
    out = EnsembleParams(params.out_name, members, replace=params.replace, **sparse)
    summary = create_ensemble(db, out, progress=progress)
    weights = dict(zip(names, best_w.tolist(), strict=True))
    with db.transaction():
        db.execute(  # this ensemble's earlier tuning, and that of one --replace removed
            "DELETE FROM ensemble_tunings WHERE ensemble_id = ? OR ensemble_id NOT IN (SELECT ensemble_id FROM ensembles)",
            [summary.ensemble_id],
        )
        db.execute(
            "INSERT INTO ensemble_tunings (ensemble_id, source_ensemble_id, split, dev_queries, params, weights, "
            "dev_score, source_dev_score, trace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                summary.ensemble_id,
                ens.ensemble_id,
                params.split,
                len(qrels),
                json.dumps({**asdict(params), "dev_query_ids": sorted(qrels)}, sort_keys=True),
                json.dumps(weights, sort_keys=True),
                best,
                trace[0]["ndcg@10"],
                json.dumps(trace),
            ],
        )
    return TuneSummary(
        params.out_name,
        summary.ensemble_id,
        ens.name,
        len(qrels),
        weights,
        best,
        trace[0]["ndcg@10"],
        len(trace),
        summary,
    )
