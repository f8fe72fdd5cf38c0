"""Denoising: a cross-encoder removes likely false negatives from a mining run, into a new run.

RocketQA found about 70% of the top-ranked unlabeled passages of a dense retriever to be relevant in
fact, and trained on the negatives a cross-encoder did not score as relevant. ``denoise`` does that to
a stored mining run (the *parent*) and writes the result as a new run (the *child*); the parent is
never changed.

**The rule.** A cross-encoder's raw output is a logit ``s`` (what ``eval_scores`` caches, see
:mod:`hnm_db.reranker.crossencoder`). Both rules compare the probability ``sigmoid(s)``, which is what
sentence-transformers' ``CrossEncoder.predict`` returns by default for a one-logit model, is bounded in
(0, 1), and keeps the order of the logits:

- ``threshold`` T (0 < T < 1): drop a negative when ``sigmoid(s_neg) > T``;
- ``relative`` r (r > 0): drop a negative when ``sigmoid(s_neg) > r * sigmoid(s_pos)``, with ``s_pos``
  the logit of the triplet's own positive chunk for the same query (the (query, positive) pair, as the
  mining guard works per pair). r = 1 drops the negatives the cross-encoder prefers to their positive.

A ratio of raw logits would not be well defined: logits may be negative or zero, and a ratio changes
when a constant is added to every logit, which leaves the ranking (what the model learnt) unchanged.

**Scores** are read from and written to ``eval_scores`` under the model's fingerprint and max length,
the cache ``hnm-db eval`` uses, so no (query, passage) pair is scored twice by the same model, whether
by an evaluation or a denoising (``scored_pairs`` and ``cached_pairs`` say which).

**Refill** (``refill``; only for a parent mined with ``fallback_depth``): the parent's mining is
re-run up to sampling with its stored parameters (:func:`hnm_db.mining.mine.ranked_candidates`; refused when
the candidates no longer contain the parent's rows, i.e. texts changed since mining), and each pair
that lost negatives takes, in order (window ranks first, then the fallback ranks, each by rank), the
candidates the parent did not use, as long as the cross-encoder's rule keeps them, until the pair has
the parent's ``num_negatives`` again or the candidates run out. Candidates are scored in rounds, each
round scoring as many of a pair's next candidates as the pair still lacks, so only what is needed is
scored. Random negatives a parent mixed in
(``mix_random``) are dropped by the same rule but not refilled.

**The child run** keeps the parent's method, split, seed, ensemble and cluster run; its ``params`` are
the parent's plus a ``denoise`` object: parent run (name and id), model (as given), model fingerprint,
max length, the rule and its value, refill. Its rows are the parent's surviving rows, unchanged, plus
refilled rows with the same provenance columns a mining run writes. The ``denoised_negatives`` view
lists what each child dropped, with the texts and both scores; ``hnm-db audit`` prints it. One
transaction writes the child run (the scores are committed before it, as an evaluation commits them).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from hnm_db.errors import AlreadyExists, InvalidParams, NotFound
from hnm_db.mining.candidates import Candidates
from hnm_db.mining.mine import ranked_candidates
from hnm_db.mining.params import MiningParams
from hnm_db.mining.rows import insert_triplets, record_run, triplet_rows
from hnm_db.mining.scoring import Ranked
from hnm_db.options import param
from hnm_db.reranker.evaluate import (
    EvalParams,
    ModelSpec,
    attach_scores,
    missing_pairs,
    resolve_model,
    score_missing,
)
from hnm_db.store import RunRecord, Store, existing_run_id, run_record

KEY_SEP = "\x1f"


@dataclass(frozen=True)
class DenoiseParams:
    """What ``hnm-db denoise`` asks for; the run, model and rule are stored in the child run's
    ``params.denoise``."""

    run: str = param(help="The mining run to denoise (it is left unchanged).")
    model: str = param(
        help="The cross-encoder: a model folder, a finished training run's name, or base:ALIAS|PATH (an "
        "untuned base with a fresh head seeded by --head-seed), as for `hnm-db eval --model`.",
    )
    threshold: float | None = param(
        None,
        help="Drop a negative when sigmoid(logit) > T, i.e. the model's probability that it is relevant (0"
        " < T < 1).",
    )
    relative: float | None = param(
        None,
        help="Drop a negative when sigmoid(logit of the negative) > r x sigmoid(logit of the triplet's own"
        " positive chunk for that query); r = 1 drops negatives the model scores above their "
        "positive. Probabilities, not raw logits, are compared: a ratio of logits is undefined for "
        "logits <= 0.",
    )
    refill: bool = param(
        False,
        help="Refill dropped slots from the parent's unused candidates (the ranks below those it took, "
        "then its fallback ranks), keeping only those the rule keeps; needs a parent mined with "
        "--fallback-depth.",
    )
    name: str | None = param(None, help="Name of the new run (default RUN-denoised).")
    max_length: int = param(
        256,
        help="Tokens per (query, passage) pair; scores are cached per model and max length.",
    )
    batch_size: int = param(32, help="Pairs per forward pass.")
    head_seed: int = param(0, help="Seed of the fresh head of a base:ALIAS model.")
    device: str | None = param(None, help="cpu or cuda (default: cuda when available).")

    def __post_init__(self) -> None:
        if not self.run:
            raise InvalidParams("run: the name of the mining run to denoise is required")
        if not self.model:
            raise InvalidParams("model: a cross-encoder folder, training run name or base:ALIAS is required")
        if (self.threshold is None) == (self.relative is None):
            raise InvalidParams("threshold, relative: give exactly one of them")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise InvalidParams(f"threshold: a probability strictly between 0 and 1, got {self.threshold}")
        if self.relative is not None and not self.relative > 0:
            raise InvalidParams(f"relative: must be > 0, got {self.relative}")
        if self.max_length < 8 or self.batch_size < 1:
            raise InvalidParams("max_length must be >= 8 and batch_size >= 1")
        if self.name is not None and self.name == self.run:
            raise InvalidParams("name: the denoised run needs a name other than its parent's")

    @property
    def rule(self) -> str:
        return "threshold" if self.threshold is not None else "relative"

    @property
    def run_name(self) -> str:
        return self.name or f"{self.run}-denoised"


@dataclass
class DenoiseSummary:
    run_id: str
    name: str
    parent: str
    parent_triplets: int
    triplets: int
    dropped: int
    refilled: int
    scored_pairs: int
    cached_pairs: int
    short_pairs: int
    seconds: float


# -- the rule (pure) -----------------------------------------------------------------------------------
def sigmoid(logits: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-s)), without overflow for large |s|."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, dtype=np.float64)))


def drop_mask(params: DenoiseParams, negative: np.ndarray, positive: np.ndarray | None) -> np.ndarray:
    """True where the rule of the module docstring drops the negative (logits in, aligned)."""
    p_neg = sigmoid(negative)
    if params.threshold is not None:
        return p_neg > params.threshold
    return p_neg > params.relative * sigmoid(positive)


# -- scores through the eval_scores cache ------------------------------------------------------------
@dataclass
class _Scorer:
    db: Store
    spec: ModelSpec
    params: DenoiseParams
    progress: bool
    scored: int = 0
    cached: int = 0

    def __call__(self, query_hash, query, passage_hash, passage) -> np.ndarray:
        """Logits of aligned (query, passage) pairs: cached ones read, the rest scored and cached."""
        frame = pl.DataFrame(
            {"query_hash": query_hash, "passage_hash": passage_hash, "query": query, "passage": passage},
            schema={c: pl.Utf8 for c in ("query_hash", "passage_hash", "query", "passage")},
        )
        todo = missing_pairs(self.db, self.spec.fingerprint, self.params.max_length, frame)
        ev = EvalParams(
            model=self.params.model,
            max_length=self.params.max_length,
            batch_size=self.params.batch_size,
            head_seed=self.params.head_seed,
            device=self.params.device,
        )
        new = score_missing(self.db, self.spec, ev, todo, progress=self.progress)
        self.scored += new
        self.cached += frame.unique(["query_hash", "passage_hash"]).height - new
        keyed = frame.select("query_hash", "passage_hash").with_row_index("i")
        got = attach_scores(self.db, self.spec.fingerprint, self.params.max_length, keyed, order_by="c.i")
        out = np.full(frame.height, np.nan)
        out[got["i"].to_numpy()] = got["model_score"].to_numpy()
        return out


# -- reading the parent ---------------------------------------------------------------------------------
def _parent(db: Store, name: str) -> dict[str, Any]:
    out = run_record(db, name)
    out["params"], out["stats"] = out["params"] or {}, out["stats"] or {}
    return out


def _parent_rows(db: Store, parent: dict[str, Any]) -> pl.DataFrame:
    """The parent's triplets with the texts and hashes scoring needs, and whether each is a mixed random row."""
    rows = db.sql(
        """
        SELECT t.query_id, t.positive_doc_id, t.positive_chunk_id, t.negative_chunk_id,
               coalesce(t.negative_method = 'random' AND r.method <> 'random', false) AS mixed,
               q.content_hash AS query_hash, q.text AS query,
               pc.content_hash AS positive_hash, pc.text AS positive,
               nc.content_hash AS negative_hash, nc.text AS negative
        FROM triplets t
        JOIN mining_runs r ON r.run_id = t.run_id
        JOIN queries q ON q.query_id = t.query_id
        JOIN chunks pc ON pc.chunk_id = t.positive_chunk_id
        JOIN chunks nc ON nc.chunk_id = t.negative_chunk_id
        WHERE t.run_id = ?
        ORDER BY t.query_id, t.positive_chunk_id, t.negative_chunk_id
        """,
        [parent["run_id"]],
    )
    total = db.scalar("SELECT count(*) FROM triplets WHERE run_id = ?", [parent["run_id"]])
    if rows.height != total:
        raise NotFound(
            f"{total - rows.height} triplets of run {parent['name']!r} name a query or chunk that no longer "
            "exists: see `hnm-db audit --check`"
        )
    return rows.with_columns(
        key=pl.concat_str(["query_id", "positive_chunk_id", "negative_chunk_id"], separator=KEY_SEP),
        pair=pl.concat_str(["query_id", "positive_chunk_id"], separator=KEY_SEP),
    )


def _mining_params(parent: dict[str, Any]) -> MiningParams:
    stored = {k: v for k, v in parent["params"].items() if k != "denoise"}
    if stored.get("cluster_run") is None and parent["cluster_run_id"] is not None:
        stored["cluster_run"] = parent["cluster_run_id"]  # the clusters it used, not the newest ones
    try:
        return MiningParams(**stored)
    except TypeError as exc:
        raise InvalidParams(
            f"run {parent['name']!r} has no complete mining parameters to refill from: {exc}"
        ) from None


# -- refill ---------------------------------------------------------------------------------------------
def _texts(db: Store, chunk_ids: np.ndarray) -> dict[str, tuple[str, str]]:
    with db.registered("_hnm_dn_chunks", pa.table({"chunk_id": pa.array(np.unique(chunk_ids).astype(str))})):
        rows = db.execute(
            "SELECT c.chunk_id, c.content_hash, c.text FROM chunks c JOIN _hnm_dn_chunks USING (chunk_id)"
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _refill(
    db: Store,
    parent: dict[str, Any],
    kept: pl.DataFrame,
    dropped: pl.DataFrame,
    params: DenoiseParams,
    score: _Scorer,
) -> pa.Table | None:
    """Rows that refill the pairs' dropped slots from the parent's unused candidates (module docstring)."""
    mparams = _mining_params(parent)
    ranked: Ranked = ranked_candidates(db, mparams)
    cand_keys = ranked.keys(ranked.kept)
    parent_keys = set(_parent_keys(db, parent["run_id"]))
    hard_parent = set(pl.concat([kept, dropped]).filter(~pl.col("mixed"))["key"].to_list())
    if not hard_parent <= set(cand_keys.tolist()):
        raise InvalidParams(
            f"run {parent['name']!r} cannot be refilled: re-ranking its candidates no longer yields its "
            "negatives (texts or clusters changed since it was mined)"
        )
    d = ranked.ctx.data
    pair_keys = np.char.add(
        np.char.add(d.query_ids[ranked.pairs.query].astype(str), KEY_SEP),
        d.pos_chunk[ranked.pair_rows].astype(str),
    )
    have = kept.filter(~pl.col("mixed")).group_by("pair").len()
    count = dict(zip(have["pair"].to_list(), have["len"].to_list(), strict=True))
    need = np.array([mparams.num_negatives - count.get(k, 0) for k in pair_keys.tolist()], dtype=np.int64)
    need[~np.isin(pair_keys, dropped["pair"].unique().to_list())] = 0  # untouched pairs keep what they had
    avail = ranked.kept.take(~np.isin(cand_keys, list(parent_keys)))
    accepted: list[Candidates] = []
    while True:
        position = np.arange(len(avail)) - np.searchsorted(avail.pair, avail.pair)
        take_mask = position < np.maximum(need, 0)[avail.pair]
        if not take_mask.any():
            break
        take, avail = avail.take(take_mask), avail.take(~take_mask)
        pos_chunk = d.pos_chunk[ranked.pair_rows[take.pair]].astype(str)
        neg_chunk = d.item_chunk[take.item].astype(str)
        texts = _texts(db, np.concatenate([pos_chunk, neg_chunk]))
        q_hash, q_text = d.query_hashes[take.query].astype(str), d.query_texts[take.query].astype(str)
        neg_logit = score(q_hash, q_text, [texts[c][0] for c in neg_chunk], [texts[c][1] for c in neg_chunk])
        pos_logit = None
        if params.relative is not None:
            pos_logit = score(
                q_hash, q_text, [texts[c][0] for c in pos_chunk], [texts[c][1] for c in pos_chunk]
            )
        good = take.take(~drop_mask(params, neg_logit, pos_logit))
        accepted.append(good)
        need -= np.bincount(good.pair, minlength=len(need))
    chosen = Candidates.concat(accepted) if accepted else None
    return triplet_rows(ranked, chosen) if chosen is not None and len(chosen) else None


def _parent_keys(db: Store, run_id: str) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            "SELECT concat_ws(?, query_id, positive_chunk_id, negative_chunk_id) FROM triplets WHERE run_id = ?",
            [KEY_SEP, run_id],
        ).fetchall()
    ]


# -- the stage ------------------------------------------------------------------------------------------
def denoise(
    db: Store, params: DenoiseParams, *, replace: bool = False, progress: bool = False
) -> DenoiseSummary:
    """Write the child run of ``params.run`` without the negatives the cross-encoder's rule drops
    (module docstring); returns counts, including how many pairs were scored anew and read from cache."""
    started = time.perf_counter()
    parent = _parent(db, params.run)
    name = params.run_name
    old = existing_run_id(db, name)
    if old is not None and not replace:
        raise AlreadyExists(f"mining run {name!r} already exists: choose another --name or pass --replace")
    if old == parent["run_id"]:
        raise InvalidParams(f"name: {name!r} is the run being denoised")
    if params.refill and not parent["params"].get("fallback_depth"):
        raise InvalidParams(
            f"refill: run {params.run!r} was mined without --fallback-depth, so it has no deeper ranks to "
            "refill from; denoise it without --refill, or mine it again with --fallback-depth"
        )
    spec = resolve_model(db, params.model, params.head_seed)
    rows = _parent_rows(db, parent)
    score = _Scorer(db, spec, params, progress)
    neg = score(rows["query_hash"], rows["query"], rows["negative_hash"], rows["negative"])
    pos = (
        score(rows["query_hash"], rows["query"], rows["positive_hash"], rows["positive"])
        if params.relative is not None
        else None
    )
    drop = drop_mask(params, neg, pos)
    kept, dropped = rows.filter(pl.Series(~drop)), rows.filter(pl.Series(drop))
    refill = _refill(db, parent, kept, dropped, params, score) if params.refill and dropped.height else None
    n_refill = 0 if refill is None else refill.num_rows
    return _write(db, parent, params, spec, kept, dropped, refill, old, score, started, n_refill)


def _write(db, parent, params, spec, kept, dropped, refill, old, score, started, n_refill) -> DenoiseSummary:  # noqa: ANN001, PLR0913
    run_id = uuid.uuid4().hex
    stored = dict(parent["params"])
    stored["denoise"] = {
        "parent_run": parent["name"],
        "parent_run_id": parent["run_id"],
        "model": params.model,
        "model_fingerprint": spec.fingerprint,
        "max_length": params.max_length,
        "rule": params.rule,
        "threshold": params.threshold,
        "relative": params.relative,
        "scale": "sigmoid(logit)",
        "refill": params.refill,
        "head_seed": spec.head_seed,
    }
    record = RunRecord(
        run_id=run_id,
        name=params.run_name,
        method=parent["method"],
        split=parent["split"],
        params=stored,
        seed=parent["seed"],
        ensemble_id=parent["ensemble_id"],
        cluster_run_id=parent["cluster_run_id"],
        models=parent["models"] or [],
    )
    stats = {
        k: parent["stats"][k]
        for k in ("queries", "positives", "candidate_texts", "dropped_false_negatives")
        if k in parent["stats"]
    }
    stats |= {
        "parent_triplets": kept.height + dropped.height,
        "denoise_dropped": dropped.height,
        "denoise_refilled": n_refill,
        "triplets": kept.height + n_refill,
        "scored_pairs": score.scored,
        "cached_pairs": score.cached,
    }
    stats |= _coverage(db, parent, kept, refill)
    if refill is not None:
        refill = refill.set_column(0, "run_id", pa.array([run_id] * refill.num_rows, pa.string()))
    with db.transaction():
        with db.registered("_hnm_dn_kept", pa.table({"key": pa.array(kept["key"].to_list(), pa.string())})):
            db.execute(
                "INSERT INTO triplets SELECT * REPLACE (? AS run_id) FROM triplets WHERE run_id = ? AND "
                "concat_ws(?, query_id, positive_chunk_id, negative_chunk_id) IN (SELECT key FROM _hnm_dn_kept)",
                [run_id, parent["run_id"], KEY_SEP],
            )
        if refill is not None:
            insert_triplets(db, refill)
        record_run(db, record, stats, {}, replace_run=old, started=started)
    return DenoiseSummary(
        run_id=run_id,
        name=params.run_name,
        parent=parent["name"],
        parent_triplets=kept.height + dropped.height,
        triplets=kept.height + n_refill,
        dropped=dropped.height,
        refilled=n_refill,
        scored_pairs=score.scored,
        cached_pairs=score.cached,
        short_pairs=stats["short_pairs"],
        seconds=time.perf_counter() - started,
    )


def _coverage(
    db: Store, parent: dict[str, Any], kept: pl.DataFrame, refill: pa.Table | None
) -> dict[str, Any]:
    """Coverage of the child as mining counts it: (query, positive document) pairs of the split with
    fewer hard negatives than the parent's ``num_negatives`` (its largest per-pair count when its
    parameters do not say), and the queries with such a pair."""
    hard = kept.filter(~pl.col("mixed")).select("query_id", "positive_doc_id")
    if refill is not None:
        hard = pl.concat([hard, pl.from_arrow(refill.select(["query_id", "positive_doc_id"]))])
    per_pair = hard.group_by("query_id", "positive_doc_id").len()
    n = parent["params"].get("num_negatives") or int(per_pair["len"].max() or 0)
    positives = db.sql(
        "SELECT DISTINCT query_id, doc_id AS positive_doc_id FROM mining_positives "
        "WHERE split = ? AND qrel_score >= ?",
        [parent["split"], parent["params"].get("min_relevance", 1)],
    )
    full = positives.join(per_pair.filter(pl.col("len") >= n), on=["query_id", "positive_doc_id"])
    short = positives.join(full, on=["query_id", "positive_doc_id"], how="anti")
    return {
        "num_negatives": n,
        "short_pairs": short.height,
        "short_queries": short["query_id"].n_unique(),
        "queries_covered": hard["query_id"].n_unique(),
    }
