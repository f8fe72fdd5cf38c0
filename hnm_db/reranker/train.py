"""Fine-tune a cross-encoder re-ranker on a mining run (the paper's last step), with sentence-transformers'
``CrossEncoderTrainer``.

The model is a sentence-transformers ``CrossEncoder`` built from an embedding model folder with a fresh
one-logit head, trained by ``CrossEncoderTrainer`` (the Hugging Face Trainer underneath: checkpoints,
resume, evaluation during training, multi-GPU through ``accelerate``). hnm-db adds what the trainer
cannot know: which texts form a training group, which queries are held out, and the record of the run.

* **Groups.** The unit of training is a group: one (query, positive) pair of the mining run with
  ``group_size - 1`` of its negatives. Each epoch draws a pair's negatives afresh from all the run
  mined for it (``numpy.random.default_rng([seed, stream, epoch])``), so a run mined with more
  negatives than a group holds shows different ones each epoch. A pair with fewer negatives than a
  group needs is filled with random negatives (chunks of documents not judged for the query in any
  split), counted in the run's stats as ``filled_random``.
* **Losses** (``loss``), all fed the same groups: ``lce`` Localized Contrastive Estimation (Gao et al.
  2021): softmax cross-entropy over the raw logits of [positive, negatives]; ``bce`` sentence-
  transformers' BinaryCrossEntropyLoss over the group's labelled pairs with ``pos_weight`` = negatives
  per positive; ``lambda`` LambdaLoss (NDCGLoss2++) and ``listnet`` ListNetLoss over the group as a
  list labelled [1, 0, ...]; ``mnrl`` sentence-transformers' MultipleNegativesRankingLoss (the group
  plus in-batch negatives); ``triplet`` the paper's mean max(0, margin - s(q, p) + s(q, n)) over the
  group's negatives (with ``group_size`` 2: one triplet per row, as in the paper).
* **One budget.** A step is ``batch_size`` groups, i.e. ``batch_size * group_size`` (query, passage)
  pairs, for every loss. ``max_steps`` fixes the number of steps whatever the run's size, so methods
  whose runs differ in size get equal compute; without it, ``epochs`` passes over the pairs.
* **The fresh head learns at its own rate**: ``learning_rate_mapping`` gives parameters whose name
  matches the head (``classifier``/``score``) ``head_lr``; the body learns at ``lr``. Measured on
  SciFact with the earlier loop (minilm-l6, triplet loss, 40 steps): lr 2e-5 / head 1e-3 moved the
  loss from 0.998 to 0.968, lr 1e-4 / head 1e-3 from 0.982 to 0.266; so the body default is 1e-4.
* **Warm starts** before the mined negatives, each with its own step count, optimizer and schedule:
  ``warmup_easy_steps`` trains the loss on groups of random (easy) negatives; ``distill_steps``
  distils the first stage into the fresh cross-encoder with MarginMSELoss, the teacher margin being
  ``distill_scale`` x the difference of ensemble similarities (a re-ranker grown from a bi-encoder
  backbone starts below the retriever it should improve on). Its groups come from ``distill_run``
  (default: the run trained on), so runs compared against each other can share one warm start: the
  same distil run and seed give the same warm-started model whatever run is trained on next. It is
  kept in a hidden folder ``.hnm-warm-<digest>`` beside ``out`` and reused by every later run with the
  same warm-start settings (``TrainParams.warm_start_digest``) instead of being trained again.
* **Dev split and the kept checkpoint.** ``dev_ratio`` of the split's queries with a relevant
  judgement (:func:`hnm_db.seeding.held_out`: a hash of ``dev_seed`` and the query id, at least one
  query, among all of the split's judged
  queries, not only those the run covers, so every method and training seed holds out the same
  queries and is scored on the same dev set) never train; their first-stage top-``dev_k`` is
  re-ranked every ``eval_steps`` and the checkpoint kept is the one with the best dev nDCG@10 (the
  Trainer's ``load_best_model_at_end``). Dev qrels come from the training split; test qrels are never
  read here.
* **Equal training sets** (``common_pairs``): runs mined by different methods cover different
  (query, positive) pairs (a guard can leave a pair with no negative). Naming the other runs of a
  comparison trains, and warm-starts, only on the pairs every one of them covers, so the compared
  models see the same queries and positives and differ only in their negatives.
* **Reproducible.** ``torch.manual_seed(seed)`` before the head is created, the Trainer seeded with
  ``seed``, the groups drawn from ``seed``: two runs with one seed on one device give the same loss
  curve and weights (tests/test_train.py).

Interrupted training: the ``training_runs`` row is committed with status ``running`` before the first
step and set to ``failed`` (with the error) if training raises or is interrupted (SIGTERM counts as an
interrupt). Checkpoints go to a hidden sibling of ``out`` named after the parameters; running the same
command again resumes from its last checkpoint (a finished warm start is reused), and the model is
renamed to ``out`` only when complete, so ``out`` never holds a half model. A ``running``/``failed`` row
of the same name is replaced by the next attempt; a ``finished`` one is not.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams
from hnm_db.models.ensemble import get_ensemble
from hnm_db.models.registry import quiet_transformers
from hnm_db.options import param
from hnm_db.reranker import evaluate
from hnm_db.reranker.crossencoder import (
    load_cross_encoder,
    pick_device,
    record_digests,
    resolve_base,
    score_pairs,
)
from hnm_db.retrieval import metrics
from hnm_db.seeding import TRAIN_DEV_STREAM, draw_distinct, held_out
from hnm_db.store import Store, publish, run_id_of
from hnm_db.store.vectors import vectors_by_hash

LOSSES = ("lce", "bce", "lambda", "listnet", "mnrl", "triplet")
#: Parameters of the fresh one-logit head: BERT-style ``classifier``, decoder-style ``score``.
HEAD_PATTERN = r"(^|\.)(classifier|score)\."
#: Random streams of the group draws, so phases never share a draw.
_MAIN, _EASY, _DISTILL, _FILL = 0, 1, 2, 3


@dataclass(frozen=True)
class TrainParams:
    """Everything that decides a training run; stored verbatim (sorted-key JSON) in ``training_runs``."""

    run: str = param(help="Mining run whose triplets to train on.")
    out: str = param(help="Output folder for the model (must not exist; parent folders are created).")
    base: str = param("minilm-l6", help="Base model: alias, registered name or folder.")
    loss: str = param(
        "lce",
        choices=LOSSES,
        help="lce: softmax over the group; bce: labelled pairs, pos_weight = negatives; lambda, listnet: "
        "the group as a ranked list; mnrl: group + in-batch negatives; triplet: max(0, margin - "
        "s(q,p) + s(q,n)).",
    )
    group_size: int = param(
        4,
        help="Passages per training group: 1 positive + GROUP_SIZE-1 negatives, re-drawn each epoch.",
    )
    batch_size: int = param(16, help="Groups per step.")
    epochs: int = param(
        2,
        help="Passes over the run's (query, positive) pairs (ignored when --max-steps is given).",
    )
    max_steps: int | None = param(
        None,
        help="The budget: exactly this many optimizer steps, whatever the run's size.",
    )
    max_length: int = param(256, help="Tokens per (query, passage) pair.")
    lr: float = param(1e-4, help="Learning rate of the transformer body.")
    head_lr: float = param(1e-3, help="Learning rate of the fresh head.")
    seed: int = param(0, help="Seed of the head, the group draws and the Trainer (same seed, same model).")
    margin: float = param(1.0, help="Margin of the triplet loss.")
    warmup_ratio: float = param(0.1, help="Share of steps of LR warm-up.")
    warmup_easy_steps: int = param(
        0,
        help="First train this many steps on groups of random (easy) negatives.",
    )
    distill_steps: int = param(
        0,
        help="First distil the ensemble's similarities into the fresh model (MarginMSE) for this many steps.",
    )
    distill_run: str | None = param(
        None,
        help="Mining run whose groups the distil phase reads (default: --run); share one across compared "
        "runs.",
    )
    distill_ensemble: str | None = param(
        None,
        help="Ensemble to distil (default: the one the distil run was mined with).",
    )
    distill_scale: float = param(
        20.0,
        help="Teacher margin = this x the difference of ensemble similarities.",
    )
    dev_ratio: float = param(
        0.1,
        help="Share of the split's judged queries held out as a dev set (the same for every run); the kept"
        " checkpoint is the best by dev nDCG@10 (0: no dev set, keep the last).",
    )
    dev_seed: int = param(0, help="Seed of the dev choice.")
    dev_first_stage: str = param(
        "bm25",
        help="First stage whose top-k the dev queries re-rank: bm25 or ensemble:NAME.",
    )
    dev_k: int = param(20, help="Chunks re-ranked per dev query.")
    dev_aggregate: str = param(
        "max",
        help="How dev documents are scored from their chunks: max, first or sum-top-K (as eval --aggregate).",
    )
    common_pairs: tuple[str, ...] = param(
        (),
        metavar="RUN",
        help="Train only on the (query, positive) pairs that --run and every RUN given (repeatable) cover,"
        " so models compared across mining runs see the same pairs.",
    )
    eval_steps: int | None = param(
        None,
        help="Evaluate the dev set every N steps (default: 4 times per run).",
    )
    weight_decay: float = param(0.01, python_only=True, help="AdamW weight decay of the body and the head.")
    max_grad_norm: float = param(1.0, python_only=True, help="Gradient norm clipped to.")
    split: str = param("train", help="Split of the triplets to train on.")
    name: str | None = param(None, help="Name of the training run (default: the output folder's name).")
    device: str | None = param(
        None, help="Where to train: cpu, cuda or cuda:N (default: cuda when available)."
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "common_pairs", tuple(self.common_pairs))
        if self.loss not in LOSSES:
            raise InvalidParams(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        for name in ("epochs", "batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise InvalidParams(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise InvalidParams(f"group_size must be >= 2 (a positive and a negative), got {self.group_size}")
        for name in ("max_steps", "eval_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidParams(f"{name} must be >= 1, got {value}")
        for name in ("lr", "head_lr", "margin", "max_grad_norm", "distill_scale"):
            if not getattr(self, name) > 0:
                raise InvalidParams(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise InvalidParams(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.dev_ratio < 1:
            raise InvalidParams(f"dev_ratio must be in [0, 1), got {self.dev_ratio}")
        for name in ("warmup_easy_steps", "distill_steps", "weight_decay"):
            if getattr(self, name) < 0:
                raise InvalidParams(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.dev_k < 10:
            raise InvalidParams(f"dev_k must be >= 10 (dev nDCG@10 needs the top 10), got {self.dev_k}")
        try:
            metrics.parse_aggregate(self.dev_aggregate)
        except ValueError as exc:
            raise InvalidParams(f"dev_{exc}") from None
        if self.device not in (None, "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise InvalidParams(f"device must be cpu or cuda, not {self.device!r}")

    @property
    def run_name(self) -> str:
        """The training run's name: ``name`` or the output folder's name."""
        return self.name or Path(self.out).name

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def digest(self) -> str:
        """What a resumable partial folder is keyed on: every parameter but where and on what it runs."""
        keep = {k: v for k, v in asdict(self).items() if k not in ("device", "out", "name")}
        return hashlib.blake2b(json.dumps(keep, sort_keys=True).encode(), digest_size=6).hexdigest()

    def warm_start_digest(self, distill_run_id: str, device: str) -> str:
        """What decides the distilled warm start: the run it reads (by id), the teacher, the held-out
        queries and the optimisation settings; not the run trained on afterwards."""
        keys = (
            "base", "distill_steps", "distill_ensemble", "distill_scale", "seed", "group_size", "batch_size",
            "max_length", "lr", "head_lr", "warmup_ratio", "weight_decay", "max_grad_norm", "dev_ratio",
            "dev_seed", "split", "common_pairs",
        )  # fmt: skip
        keep = {k: getattr(self, k) for k in keys} | {"distill_run": distill_run_id, "device": device}
        keep["dev_from"] = "split"  # dev queries drawn among the split's judged queries, not the run's
        return hashlib.blake2b(json.dumps(keep, sort_keys=True).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Pool:
    """One (query, positive) pair of a mining run with every negative mined for it, in rank order."""

    query_id: str
    query: str
    positive: str
    negatives: tuple[str, ...]
    query_hash: str = ""
    positive_hash: str = ""
    negative_hashes: tuple[str, ...] = ()
    positive_id: str = ""  # the positive's chunk id


@dataclass(frozen=True)
class Group:
    """One training unit: a query, its positive and ``group_size - 1`` negatives (text and hash)."""

    query: str
    positive: str
    negatives: tuple[str, ...]
    query_hash: str = ""
    passage_hashes: tuple[str, ...] = ()  # positive first


@dataclass
class TrainSummary:
    training_run_id: str
    name: str
    output_path: str
    fingerprint: str
    steps: int
    examples: int
    final_loss: float
    seconds: float
    loss_curve: list[float] = field(repr=False, default_factory=list)
    stats: dict[str, Any] = field(repr=False, default_factory=dict)
    #: What the user should know about the folders: checkpoints discarded as incomplete, unfinished
    #: trainings of other settings left beside the output (``hnm-db train`` prints them).
    notes: list[str] = field(repr=False, default_factory=list)


# -- reading the run ----------------------------------------------------------------------------------
def load_pools(db: Store, run_id: str, split: str) -> list[Pool]:
    """The run's (query, positive) pairs of ``split`` with their negatives, sorted by query and positive."""
    rows = db.execute(
        """
        SELECT t.query_id, t.positive_chunk_id, q.text, q.content_hash, p.text, p.content_hash,
               list(n.text ORDER BY t.fallback, t.negative_method <> m.method, t.rank, t.negative_chunk_id),
               list(n.content_hash ORDER BY t.fallback, t.negative_method <> m.method, t.rank, t.negative_chunk_id)
        FROM triplets t
        JOIN mining_runs m ON m.run_id = t.run_id
        JOIN queries q ON q.query_id = t.query_id
        JOIN chunks p ON p.chunk_id = t.positive_chunk_id
        JOIN chunks n ON n.chunk_id = t.negative_chunk_id
        WHERE t.run_id = ? AND t.split = ?
        GROUP BY ALL
        ORDER BY t.query_id, t.positive_chunk_id
        """,
        [run_id, split],
    ).fetchall()
    return [
        Pool(qid, q, p, tuple(ns), qh, ph, tuple(nh), positive_id=pid)
        for qid, pid, q, qh, p, ph, ns, nh in rows
    ]


def common_pairs(db: Store, run_ids: Sequence[str], split: str) -> set[tuple[str, str]]:
    """The (query id, positive chunk id) pairs of ``split`` that every run in ``run_ids`` has triplets for."""
    rows = db.execute(
        "SELECT query_id, positive_chunk_id FROM triplets WHERE run_id IN (SELECT unnest(?)) AND split = ? "
        "GROUP BY ALL HAVING count(DISTINCT run_id) = ?",
        [list(run_ids), split, len(set(run_ids))],
    ).fetchall()
    return {(q, p) for q, p in rows}


def judged_queries(db: Store, split: str) -> list[str]:
    """The queries of ``split`` with at least one relevant judgement, sorted: the population dev queries
    are drawn from, so every run trained on the split holds out the same ones."""
    return sorted(
        q for q, judged in evaluate.load_qrels(db, split).items() if any(s > 0 for s in judged.values())
    )


class EasyNegatives:
    """Random chunks of documents not judged for the query in any split (so never false negatives)."""

    def __init__(self, db: Store) -> None:
        self.chunks = db.execute("SELECT doc_id, text, content_hash FROM chunks ORDER BY chunk_id").fetchall()
        self.judged: dict[str, set[str]] = {}
        for qid, doc in db.execute("SELECT DISTINCT query_id, doc_id FROM qrels WHERE score > 0").fetchall():
            self.judged.setdefault(qid, set()).add(doc)

    def draw(
        self, query_id: str, n: int, rng: np.random.Generator, avoid: Sequence[str] = ()
    ) -> list[tuple[str, str]]:
        """``n`` distinct (text, hash) pairs, none of them in ``avoid`` (texts already in the group)."""
        seen = set(avoid)
        judged = self.judged.get(query_id, set())

        def accept(i: int) -> bool:
            doc, text, _ = self.chunks[i]
            if doc in judged or text in seen:
                return False
            seen.add(text)
            return True

        return [self.chunks[i][1:] for i in draw_distinct(rng, len(self.chunks), n, accept)]


def draw_groups(
    pools: Sequence[Pool],
    size: int,
    count: int,
    seed: int,
    stream: int,
    easy: EasyNegatives,
    *,
    only_easy: bool = False,
) -> tuple[list[Group], int]:
    """``count`` groups: passes over ``pools`` (epoch e draws with ``default_rng([seed, stream, e])``),
    ``size - 1`` negatives each (all random when ``only_easy``). Returns the groups and how many
    negative slots were filled with random negatives because a pool was short."""
    groups: list[Group] = []
    filled = 0
    need = size - 1
    epoch = 0
    while len(groups) < count:
        rng = np.random.default_rng([seed, stream, epoch])
        fill_rng = np.random.default_rng([seed, _FILL, stream, epoch])
        for pool in pools:
            if len(groups) == count:
                break
            pairs = [] if only_easy else list(zip(pool.negatives, pool.negative_hashes, strict=True))
            if len(pairs) > need:
                pairs = [pairs[i] for i in np.sort(rng.choice(len(pairs), size=need, replace=False))]
            if len(pairs) < need:
                extra = easy.draw(
                    pool.query_id, need - len(pairs), fill_rng, [pool.positive, *(t for t, _ in pairs)]
                )
                filled += 0 if only_easy else len(extra)
                pairs += extra
            groups.append(
                Group(
                    pool.query,
                    pool.positive,
                    tuple(t for t, _ in pairs),
                    pool.query_hash,
                    (pool.positive_hash, *(h for _, h in pairs)),
                )
            )
        epoch += 1
    return groups, filled


# -- datasets and losses ---------------------------------------------------------------------------------
def group_dataset(groups: Sequence[Group], loss: str, teacher: np.ndarray | None = None) -> Any:
    """The groups in the column layout ``loss`` reads (sentence-transformers' conventions)."""
    from datasets import Dataset

    if loss == "bce":
        rows = [(g.query, p, float(i == 0)) for g in groups for i, p in enumerate((g.positive, *g.negatives))]
        return Dataset.from_dict(
            {"query": [r[0] for r in rows], "passage": [r[1] for r in rows], "label": [r[2] for r in rows]}
        )
    if loss in ("lambda", "listnet"):
        return Dataset.from_dict(
            {
                "query": [g.query for g in groups],
                "docs": [[g.positive, *g.negatives] for g in groups],
                "label": [[1.0] + [0.0] * len(g.negatives) for g in groups],
            }
        )
    columns: dict[str, list] = {"query": [g.query for g in groups], "positive": [g.positive for g in groups]}
    for j in range(len(groups[0].negatives)):
        columns[f"negative_{j + 1}"] = [g.negatives[j] for g in groups]
    if teacher is not None:
        columns["label"] = [list(map(float, row)) for row in teacher]
    return Dataset.from_dict(columns)


def make_loss(ce: Any, params: TrainParams, *, distill: bool = False) -> Any:
    """The sentence-transformers loss module of ``params.loss`` (MarginMSELoss for a distil phase)."""
    import torch
    from sentence_transformers.cross_encoder import losses

    if distill:
        return losses.MarginMSELoss(ce)
    if params.loss == "bce":
        return losses.BinaryCrossEntropyLoss(ce, pos_weight=torch.tensor(float(params.group_size - 1)))
    if params.loss == "lambda":
        return losses.LambdaLoss(ce)
    if params.loss == "listnet":
        return losses.ListNetLoss(ce)
    if params.loss == "mnrl":
        return losses.MultipleNegativesRankingLoss(ce)
    return _GroupLoss(ce, params.loss, params.margin)


def _group_loss_class() -> type:
    """Built on first use: sentence-transformers is imported lazily (the CLI starts without torch)."""
    import torch
    import torch.nn.functional as F
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss

    class GroupLoss(MultipleNegativesRankingLoss):
        """LCE or triplet over (query, positive, negative_1..n) columns: the group's own passages only
        (no in-batch negatives), raw logits (no activation, no scale)."""

        def __init__(self, model: Any, kind: str, margin: float) -> None:
            super().__init__(model, num_negatives=None, scale=1.0, activation_fn=None)
            self.kind, self.margin = kind, margin

        def forward(
            self, inputs: list[list[str]], labels: Any, prompt: str | None = None, task: str | None = None
        ) -> Any:
            del labels  # sentence-transformers' loss interface: the groups' order is the label
            anchors = inputs[0]
            scores = torch.stack(
                [self.call_model_with_columns(anchors, col, prompt=prompt, task=task) for col in inputs[1:]],
                dim=1,
            )
            if self.kind == "triplet":
                return F.relu(self.margin - scores[:, :1] + scores[:, 1:]).mean()
            return F.cross_entropy(scores, torch.zeros(len(anchors), dtype=torch.long, device=scores.device))

        def get_config_dict(self) -> dict[str, Any]:
            return {"kind": self.kind, "margin": self.margin}

    return GroupLoss


def _GroupLoss(model: Any, kind: str, margin: float) -> Any:  # noqa: N802 - a class built lazily
    return _group_loss_class()(model, kind, margin)


def teacher_scores(db: Store, groups: Sequence[Group], ensemble: str, scale: float) -> np.ndarray:
    """``scale`` x ensemble similarity of each group's (query, passage) pairs, positive first."""
    ens = get_ensemble(db, ensemble)
    q, missing_q = vectors_by_hash(
        db,
        "ensemble_vectors",
        "ensemble_id",
        ens.ensemble_id,
        "query",
        np.array([g.query_hash for g in groups]),
    )
    width = len(groups[0].passage_hashes)
    flat = np.array([h for g in groups for h in g.passage_hashes])
    d, missing_d = vectors_by_hash(db, "ensemble_vectors", "ensemble_id", ens.ensemble_id, "doc", flat)
    if missing_q or missing_d:
        raise EmptySelection(
            f"ensemble {ensemble!r} has no vectors for {missing_q} queries and {missing_d} passages of the "
            "training groups: distil from the ensemble the run was mined with, or re-create it"
        )
    sims = np.einsum("ij,ij->i", np.repeat(q, width, axis=0), d).reshape(len(groups), width)
    return scale * sims


# -- dev evaluation ----------------------------------------------------------------------------------------
def _dev_evaluator(db: Store, params: TrainParams, dev: set[str]) -> Any:
    """An evaluator re-ranking the dev queries' first-stage top-k with hnm-db's metrics (per document,
    as ``hnm-db eval`` reports them); None when there are no dev queries."""
    if not dev:
        return None
    from sentence_transformers.base.evaluation import BaseEvaluator

    qrels = {q: j for q, j in evaluate.load_qrels(db, params.split).items() if q in dev}
    queries = evaluate.query_frame(db, sorted(qrels))
    eval_params = evaluate.EvalParams(
        model=None, first_stage=params.dev_first_stage, k=params.dev_k, split=params.split
    )
    cands = evaluate.first_stage_candidates(db, eval_params, queries)
    texts = dict(zip(queries["query_id"].to_list(), queries["text"].to_list(), strict=True))
    query_texts = [texts[q] for q in cands["query_id"].to_list()]
    passages = cands["passage"].to_list()

    class DevEvaluator(BaseEvaluator):
        """nDCG@10 (primary) and MRR@10 of the dev queries, re-ranked by the model in training."""

        def __init__(self) -> None:
            super().__init__()
            self.primary_metric = "ndcg@10"

        def __call__(
            self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
        ) -> dict:
            del output_path, epoch, steps  # the Trainer's evaluator interface; nothing is written
            scores = score_pairs(
                model,
                query_texts,
                passages,
                batch_size=64,
            )
            ranked = evaluate.rankings(cands, scores, params.dev_aggregate)
            values = metrics.mean_metrics(ranked, qrels, params.dev_k)
            return {"ndcg@10": values["ndcg@10"], "mrr@10": values["mrr@10"]}

    return DevEvaluator()


# -- one phase on the Trainer --------------------------------------------------------------------------
def _quiet_progress() -> type:
    from transformers.trainer_callback import ProgressCallback

    class QuietProgress(ProgressCallback):
        """The Trainer's progress bar without its log lines (they would go to stdout, which is for data)."""

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any
        ) -> None:
            del args, state, control, kwargs  # transformers' TrainerCallback interface
            if self.training_bar is not None and logs and "loss" in logs:
                self.training_bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

    return QuietProgress


def run_phase(
    ce: Any,
    dataset: Any,
    loss: Any,
    params: TrainParams,
    steps: int,
    folder: Path,
    *,
    batch_rows: int,
    device: str,
    evaluator: Any = None,
    progress: bool = False,
    notes: list[str] | None = None,
) -> tuple[list[float], dict[str, Any]]:
    """Train ``ce`` for ``steps`` steps on ``dataset`` with the Trainer, checkpointing into ``folder`` and
    resuming from its newest complete checkpoint (incomplete ones are discarded and named in ``notes``);
    with an evaluator, keep the best checkpoint by dev nDCG@10.
    Returns the loss of every step and the dev record: the (step, nDCG@10) curve, the step kept."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    every = params.eval_steps or max(1, math.ceil(steps / 4))
    discarded = discard_incomplete_checkpoints(folder)
    if notes is not None and discarded:
        notes.append(
            f"discarded {len(discarded)} incomplete checkpoint(s) of an interrupted run: "
            f"{', '.join(str(p) for p in discarded)}"
        )
    resume = bool(checkpoints(folder))
    args = CrossEncoderTrainingArguments(
        output_dir=str(folder),
        max_steps=steps,
        per_device_train_batch_size=batch_rows,
        learning_rate=params.lr,
        learning_rate_mapping={HEAD_PATTERN: params.head_lr},
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm,
        warmup_steps=params.warmup_ratio,
        lr_scheduler_type="linear",
        seed=params.seed,
        data_seed=params.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=2,
        eval_strategy="steps" if evaluator is not None else "no",
        eval_steps=every,
        eval_on_start=evaluator is not None and not resume,  # a resumed run has its start on record
        load_best_model_at_end=evaluator is not None,
        metric_for_best_model="ndcg@10" if evaluator is not None else None,
        greater_is_better=True,
        report_to="none",
        disable_tqdm=not progress,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
    )
    with quiet_transformers():
        trainer = CrossEncoderTrainer(
            model=ce, args=args, train_dataset=dataset, loss=loss, evaluator=evaluator
        )
    trainer.remove_callback(PrinterCallback)
    if progress:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(_quiet_progress()())
    with quiet_transformers():
        trainer.train(resume_from_checkpoint=True if resume else None)
    state = trainer.state
    curve = [float(h["loss"]) for h in state.log_history if "loss" in h and "step" in h]
    dev = {
        "dev_curve": [
            (int(h["step"]), float(h["eval_ndcg@10"])) for h in state.log_history if "eval_ndcg@10" in h
        ],
        "best_step": state.best_global_step if evaluator is not None else None,
        "best_dev_ndcg@10": state.best_metric if evaluator is not None else None,
    }
    return curve, dev


#: The file the Trainer writes last into a checkpoint (after weights, optimizer, scheduler and RNG state).
TRAINER_STATE = "trainer_state.json"


def discard_incomplete_checkpoints(folder: Path) -> list[Path]:
    """Remove the ``checkpoint-*`` folders of ``folder`` that a kill left half written; returns them.

    The Trainer resumes from the highest-numbered checkpoint whatever it holds, and writes
    ``trainer_state.json`` last: a checkpoint without it (or with a truncated one) is incomplete, and the
    one before it is what a resume must read.
    """
    gone = []
    for checkpoint in checkpoints(folder):
        state = checkpoint / TRAINER_STATE
        try:
            json.loads(state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            shutil.rmtree(checkpoint, ignore_errors=True)
            gone.append(checkpoint)
    return gone


def checkpoints(folder: Path) -> list[Path]:
    """The ``checkpoint-*`` folders of ``folder``, sorted (a file of that name is not one: the Trainer
    lists folders only)."""
    return sorted(p for p in folder.glob("checkpoint-*") if p.is_dir())


def leftover_partials(out: Path, partial: Path) -> list[Path]:
    """Unfinished trainings beside ``out`` other than ``partial`` (other settings or other outputs): they
    resume when their command runs again, and otherwise only take disk space."""
    return sorted(p for p in out.parent.glob(".*.partial-*") if p.is_dir() and p != partial)


# -- the stage ---------------------------------------------------------------------------------------------
def _claim_name(db: Store, name: str) -> None:
    """A finished run of that name is kept (error); a running/failed leftover is replaced."""
    status = db.scalar("SELECT status FROM training_runs WHERE name = ?", [name])
    if status == "finished":
        raise AlreadyExists(f"a training run named {name!r} exists; pass another --name")
    if status is not None:
        db.execute("DELETE FROM training_runs WHERE name = ?", [name])


@contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill PID``) raises KeyboardInterrupt, so a killed training still marks its row failed."""

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        del frame  # signal.signal's handler interface
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _Plan:
    """What :func:`_validate` read: the run, the base folder, the training pools and the dev queries."""

    run_id: str
    base: Path
    pools: list[Pool]
    dev: set[str]
    distill_pools: list[Pool]
    distill_ensemble: str | None
    distill_run_id: str | None
    not_common: int = 0  # the run's pairs left out because another run of common_pairs lacks them


def _validate(db: Store, params: TrainParams) -> _Plan:
    """Every check that can fail on user input, before anything is written."""
    out = Path(params.out)
    if out.exists():
        raise AlreadyExists(f"output folder exists: {out}; pass a new --out or remove it")
    run_id = run_id_of(db, params.run)
    pools = load_pools(db, run_id, params.split)
    if not pools:
        raise EmptySelection(f"mining run {params.run!r} has no triplets for split {params.split!r}")
    shared, before = None, len(pools)
    if params.common_pairs:
        shared = common_pairs(db, [run_id, *(run_id_of(db, r) for r in params.common_pairs)], params.split)
        pools = [p for p in pools if (p.query_id, p.positive_id) in shared]
        if not pools:
            raise EmptySelection(
                f"mining run {params.run!r} shares no (query, positive) pair with {', '.join(params.common_pairs)}"
            )
    dev = (
        held_out(
            judged_queries(db, params.split), params.dev_ratio, params.dev_seed, TRAIN_DEV_STREAM, at_least=1
        )
        if params.dev_ratio
        else set()
    )
    train_pools = [p for p in pools if p.query_id not in dev]
    if not train_pools:
        raise EmptySelection(f"dev_ratio {params.dev_ratio} left no query of run {params.run!r} to train on")
    status = db.scalar("SELECT status FROM training_runs WHERE name = ?", [params.run_name])
    if status == "finished":
        raise AlreadyExists(f"a training run named {params.run_name!r} exists; pass another --name")
    ensemble, distill_pools, distill_id = params.distill_ensemble, train_pools, None
    if params.distill_steps:
        distill_run = params.distill_run or params.run
        distill_id = run_id_of(db, distill_run)
        if distill_run != params.run:
            distill_pools = [
                p
                for p in load_pools(db, distill_id, params.split)
                if p.query_id not in dev and (shared is None or (p.query_id, p.positive_id) in shared)
            ]
            if not distill_pools:
                raise EmptySelection(
                    f"distill_run {distill_run!r} has no triplets for split {params.split!r}"
                )
        if ensemble is None:
            ensemble = db.scalar(
                "SELECT e.name FROM mining_runs m JOIN ensembles e USING (ensemble_id) WHERE m.run_id = ?",
                [distill_id],
            )
        if ensemble is None:
            raise InvalidParams(
                f"distill_steps: mining run {distill_run!r} has no ensemble to distil; pass --distill-ensemble"
            )
        get_ensemble(db, ensemble)
    if dev:
        evaluate.check_first_stage(db, params.dev_first_stage)
    base = resolve_base(db, params.base)
    return _Plan(run_id, base, train_pools, dev, distill_pools, ensemble, distill_id, before - len(pools))


def _main_steps(params: TrainParams, n_pools: int) -> int:
    return params.max_steps or math.ceil(params.epochs * n_pools / params.batch_size)


@dataclass
class _Phase:
    """What every phase of one training shares."""

    db: Store
    params: TrainParams
    plan: _Plan
    partial: Path
    device: str
    progress: bool
    easy: EasyNegatives
    notes: list[str] = field(default_factory=list)


def _warm_start(ph: _Phase, ce: Any, steps: int, distill: bool) -> tuple[Any, list[float], bool]:
    """A distil (MarginMSE on the ensemble) or easy-negative phase before the mined groups; a phase that
    finished before (an interruption; for distilling, any run with the same settings) is reused.
    Returns the model, the phase's loss curve and whether it was reused."""
    params, plan = ph.params, ph.plan
    if distill:  # shared by every run with the same warm-start settings (module docstring)
        folder = ph.partial.parent / f".hnm-warm-{params.warm_start_digest(plan.distill_run_id, ph.device)}"
    else:
        folder = ph.partial / "easy"
    done = folder / "model"
    if (done / "phase.json").exists():
        phase = json.loads((done / "phase.json").read_text(encoding="utf-8"))
        return (
            load_cross_encoder(done, max_length=params.max_length, device=ph.device),
            phase["loss_curve"],
            True,
        )
    size, batch = params.group_size, params.batch_size
    pools = plan.distill_pools if distill else plan.pools
    stream = _DISTILL if distill else _EASY
    groups, _ = draw_groups(pools, size, steps * batch, params.seed, stream, ph.easy, only_easy=not distill)
    if distill:
        teacher = teacher_scores(ph.db, groups, plan.distill_ensemble, params.distill_scale)
        data, rows = group_dataset(groups, "distill", teacher), batch
    else:
        data, rows = group_dataset(groups, params.loss), _batch_rows(params)
    loss = make_loss(ce, params, distill=distill)
    curve, _ = run_phase(
        ce, data, loss, params, steps, folder, batch_rows=rows, device=ph.device, progress=ph.progress,
        notes=ph.notes,
    )  # fmt: skip
    with quiet_transformers():
        ce.save_pretrained(str(done))
    (done / "phase.json").write_text(json.dumps({"loss_curve": curve}), encoding="utf-8")
    for checkpoint in folder.glob("checkpoint-*"):  # the finished phase is all a later run reads
        shutil.rmtree(checkpoint, ignore_errors=True)
    return ce, curve, False


def _batch_rows(params: TrainParams) -> int:
    """Dataset rows per step: BCE reads (query, passage) pairs, the other losses whole groups."""
    return params.batch_size * params.group_size if params.loss == "bce" else params.batch_size


def _train_phases(
    db: Store,
    params: TrainParams,
    plan: _Plan,
    ce: Any,
    partial: Path,
    device: str,
    progress: bool,
    notes: list[str],
) -> tuple[Any, list[float], dict[str, Any]]:
    """Warm starts, then the mined groups; returns the trained model, the loss curve and stats."""
    ph = _Phase(db, params, plan, partial, device, progress, EasyNegatives(db), notes)
    curve: list[float] = []
    stats: dict[str, Any] = {"warm_steps": 0}
    for steps, distill, reused_key in (
        (params.distill_steps, True, "warm_start_reused"),
        (params.warmup_easy_steps, False, "easy_reused"),
    ):
        if steps:
            ce, part, reused = _warm_start(ph, ce, steps, distill)
            curve += part
            stats["warm_steps"] += len(part)
            if reused:
                stats[reused_key] = True
    steps = _main_steps(params, len(plan.pools))
    groups, filled = draw_groups(
        plan.pools, params.group_size, steps * params.batch_size, params.seed, _MAIN, ph.easy
    )
    evaluator = _dev_evaluator(db, params, plan.dev)
    data, loss = group_dataset(groups, params.loss), make_loss(ce, params)
    part, dev = run_phase(
        ce, data, loss, params, steps, partial / "main", batch_rows=_batch_rows(params), device=device,
        evaluator=evaluator, progress=progress, notes=notes,
    )  # fmt: skip
    stats |= {
        "steps": len(part),
        "groups": len(groups),
        "pairs": len(groups) * params.group_size,
        "train_pairs_of_run": len(plan.pools),
        "pairs_not_common": plan.not_common,
        "train_queries": len({p.query_id for p in plan.pools}),
        "dev_queries": len(plan.dev),
        "filled_random": filled,
        **dev,
    }
    return ce, curve + part, stats


def _start_run(db: Store, params: TrainParams, plan: _Plan) -> str:
    """Commit the run's ``running`` row (replacing a failed or stale one of the same name); its id."""
    training_run_id = uuid.uuid4().hex
    with db.transaction():
        _claim_name(db, params.run_name)
        db.execute(
            "INSERT INTO training_runs (training_run_id, name, mining_run_id, base_model, loss, params, seed, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
            [
                training_run_id,
                params.run_name,
                plan.run_id,
                params.base,
                params.loss,
                params.to_json(),
                params.seed,
            ],
        )
    return training_run_id


def _publish_model(ce: Any, partial: Path, out: Path, training_run_id: str, params: TrainParams) -> str:
    """Save the model inside ``partial``, then rename it to ``out`` in one step (``out`` never holds
    half a model) and drop the checkpoints; returns its fingerprint."""
    final = partial / "model"
    shutil.rmtree(final, ignore_errors=True)
    with quiet_transformers():
        ce.save_pretrained(str(final))
    record = {"training_run_id": training_run_id, "mining_run": params.run, "params": asdict(params)}
    (final / "hnm_training.json").write_text(json.dumps(record, sort_keys=True, indent=1), encoding="utf-8")
    fingerprint = record_digests(final)
    publish(final, out)  # out was checked to be absent; one that appeared since is not overwritten
    shutil.rmtree(partial, ignore_errors=True)
    return fingerprint


def _fail_run(db: Store, training_run_id: str, exc: BaseException, partial: Path) -> None:
    error = f"{type(exc).__name__}: {exc}"[:500]
    db.execute(
        "UPDATE training_runs SET status = 'failed', finished_at = current_timestamp, stats = ? "
        "WHERE training_run_id = ?",
        [json.dumps({"error": error, "resume_from": str(partial)}), training_run_id],
    )


def _finish_run(
    db: Store, training_run_id: str, curve: list[float], out: Path, fingerprint: str, stats: dict[str, Any]
) -> None:
    db.execute(
        "UPDATE training_runs SET status = 'finished', finished_at = current_timestamp, loss_curve = ?, "
        "output_path = ?, fingerprint = ?, stats = ? WHERE training_run_id = ?",
        [
            json.dumps(curve),
            str(out.resolve()),
            fingerprint,
            json.dumps(stats, sort_keys=True),
            training_run_id,
        ],
    )


def train(
    db: Store, params: TrainParams, *, progress: bool = True, notes: list[str] | None = None
) -> TrainSummary:
    """Fine-tune ``params.base`` on the mining run ``params.run`` and record the run (module docstring:
    validation before any write, a ``running`` row, resumable phases, atomic publish, the record).

    Notes for the user (checkpoints discarded, unfinished trainings left beside ``out``) are appended to
    ``notes`` as they arise, so a caller sees them when the run fails too, and returned in the summary.
    """
    plan = _validate(db, params)
    device = pick_device(params.device)
    ce = load_cross_encoder(plan.base, max_length=params.max_length, device=device, seed=params.seed)
    training_run_id = _start_run(db, params, plan)
    out = Path(params.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{params.digest()}")
    notes = [] if notes is None else notes
    others = leftover_partials(out, partial)
    if others:
        notes.append(
            f"{len(others)} unfinished training(s) of other settings or outputs in {out.parent}: "
            f"{', '.join(p.name for p in others)}; each resumes when its command runs again, or delete it"
        )
    started = time.perf_counter()
    try:
        with _term_as_interrupt():
            ce, curve, stats = _train_phases(db, params, plan, ce, partial, device, progress, notes)
        fingerprint = _publish_model(ce, partial, out, training_run_id, params)
    except BaseException as exc:
        _fail_run(db, training_run_id, exc, partial)
        raise
    final_loss = float(np.mean(curve[-20:])) if curve else None
    stats |= {
        "device": device,
        "seconds": round(time.perf_counter() - started, 3),
        "final_loss": final_loss,
        "examples": stats["groups"],
    }
    _finish_run(db, training_run_id, curve, out, fingerprint, stats)
    path = str(out.resolve())
    return TrainSummary(
        training_run_id, params.run_name, path, fingerprint, stats["steps"], stats["groups"], final_loss or 0.0,
        stats["seconds"], curve, stats, notes,
    )  # fmt: skip


def head_parameters(ce: Any) -> list[str]:
    """Names of the parameters ``head_lr`` applies to (for tests and the docs)."""
    return [n for n, _ in ce.named_parameters() if re.search(HEAD_PATTERN, n)]
