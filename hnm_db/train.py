"""Fine-tune a cross-encoder re-ranker on a mining run's triplets (the paper's last step).

The model is a sentence-transformers ``CrossEncoder`` built from an embedding model folder with a fresh
one-logit head. The training loop is our own, small and explicit, rather than ``CrossEncoder.fit``:

* **Less padding.** Examples are grouped by token length (shuffled mega-batches, each sorted by length,
  cut into batches whose order is then shuffled), so a batch pads to a similar length.
* **Learning rates that move in few steps.** The fresh head has its own, higher learning rate
  (``head_lr``), and the body's default is 1e-4: measured on SciFact (minilm-l6, triplet loss, 40 steps
  of 8 triplets, max length 96, random negatives) lr 2e-5 / head 1e-3 only went from 0.998 to 0.968,
  lr 1e-4 / head 1e-3 from 0.982 to 0.266 (with one shared 2e-5 LR and hard negatives BCE stayed at
  0.693 for 115 steps). Linear warm-up then linear decay, gradient clipping at ``max_grad_norm``.
* **Optional curriculum.** ``warmup_easy_steps`` first trains on random (easy) negatives drawn, seeded,
  from chunks of documents not judged for the query, before the mined hard negatives.
* **Reproducible.** ``torch.manual_seed(seed)`` before the head is created and before the loop, batch
  order from ``numpy.random.default_rng(seed)``: two runs with one seed on one device give the same loss
  curve and the same weights.

Losses (scores are raw logits s(q, d)):
``triplet`` mean max(0, margin - s(q, p) + s(q, n)) (the paper); ``bce`` binary cross-entropy on the
labelled pairs (q, p, 1) and (q, n, 0) of every triplet (the positive pair is repeated once per negative,
so the classes are balanced); ``mnrl`` cross-entropy over [s(q, p), s(q, n_1) ... s(q, n_k)] per
(query, positive) with all of its mined negatives (listwise).

Interrupted training: the ``training_runs`` row is committed with status ``running`` before the first
step, and set to ``failed`` (with the error) if training raises or is interrupted; the model is written to
a temporary sibling folder and renamed to ``out`` only when complete, so ``out`` never holds a half model.
SIGTERM counts as an interrupt; only a hard kill (SIGKILL, power loss) leaves a stale ``running`` row.
A ``running``/``failed`` row of the same name is replaced by the next attempt; a ``finished`` one is not.
Training does not resume mid-run (a rerun starts over): runs are minutes to an hour, and a bit-identical
resume would need the optimizer, scheduler and RNG states checkpointed too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hnm_db.db import Database
from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams, ModelLoadError, NotFound, UnknownModel
from hnm_db.models import quiet_transformers

LOSSES = ("triplet", "bce", "mnrl")


@dataclass(frozen=True)
class TrainParams:
    """Everything that decides a training run; stored verbatim (sorted-key JSON) in ``training_runs``."""

    run: str
    base: str
    out: str
    loss: str = "triplet"
    epochs: int = 1
    batch_size: int = 16
    max_length: int = 256
    lr: float = 1e-4
    head_lr: float = 1e-3
    seed: int = 0
    max_steps: int | None = None
    margin: float = 1.0
    warmup_ratio: float = 0.1
    warmup_easy_steps: int = 0
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    split: str = "train"
    name: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InvalidParams(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        for name in ("epochs", "batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise InvalidParams(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise InvalidParams(f"max_steps must be >= 1, got {self.max_steps}")
        for name in ("lr", "head_lr", "margin", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise InvalidParams(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise InvalidParams(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.warmup_easy_steps < 0 or self.weight_decay < 0:
            raise InvalidParams("warmup_easy_steps and weight_decay must be >= 0")
        if self.device not in (None, "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise InvalidParams(f"device must be cpu or cuda, not {self.device!r}")

    @property
    def run_name(self) -> str:
        """The training run's name: ``name`` or the output folder's name."""
        return self.name or Path(self.out).name

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Example:
    """One training unit: a query, its positive passage and one (triplet, bce) or more (mnrl) negatives."""

    query: str
    positive: str
    negatives: tuple[str, ...]


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


# -- models ------------------------------------------------------------------------------------------
def resolve_base(db: Database | None, name_or_path: str) -> Path:
    """The local transformer folder behind an alias, registered name or path; errors say what is wrong."""
    from hnm_db.models import resolve_model_path

    path = Path(resolve_model_path(db, name_or_path))
    check_transformer_folder(path)
    return path


def check_transformer_folder(path: Path) -> None:
    """A Hugging Face model folder has a config.json naming a model type; anything else is refused."""
    config = path / "config.json"
    if not path.is_dir():
        raise UnknownModel(f"model folder does not exist: {path}")
    if not config.is_file():
        raise ModelLoadError(
            f"{path} is not a transformer model folder (no config.json); pass a sentence-transformers or "
            "Hugging Face model folder, or an alias such as minilm-l6"
        )
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{config} is not a valid model config: {exc}") from None
    if not model_type:
        raise ModelLoadError(f"{config} names no model_type, so {path} is not a transformer model folder")


def load_cross_encoder(path: Path, *, max_length: int, device: str, seed: int | None = None) -> Any:
    """A CrossEncoder with one output logit; an embedding model gets a fresh head, seeded by ``seed``."""
    import torch
    from sentence_transformers import CrossEncoder

    if seed is not None:
        torch.manual_seed(seed)
    try:
        with quiet_transformers():
            return CrossEncoder(
                str(path), num_labels=1, max_length=max_length, device=device, local_files_only=True
            )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load {path} as a cross-encoder: {first}") from None


def pick_device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidParams("device cuda was asked for but no CUDA GPU is available")
    return device


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "merges.txt", "sentencepiece.bpe.model", "spiece.model")


def model_fingerprint(folder: Path) -> str:
    """sha256 over the weight and tokenizer files (relative name + bytes).

    config files are left out on purpose: they carry the folder's own path (``_name_or_path``), which
    would make two identical trainings written to different folders look different.
    """
    h = hashlib.sha256()
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name in _TOKENIZER_FILES)
    )
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in files):
        raise ModelLoadError(f"{folder} holds no weight files")
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


# -- batching ----------------------------------------------------------------------------------------
def token_lengths(tokenizer: Any, texts: Sequence[str]) -> dict[str, int]:
    """Token count (without special tokens) of each distinct text, tokenised once."""
    unique = sorted(set(texts))
    if not unique:
        return {}
    ids = tokenizer(unique, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return {t: len(i) for t, i in zip(unique, ids, strict=True)}


def pair_length(lengths: dict[str, int], query: str, passage: str, max_length: int) -> int:
    return min(max_length, lengths[query] + lengths[passage] + 3)


def length_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, *, pool: int = 32
) -> list[np.ndarray]:
    """Indices cut into batches of similar length: shuffle, sort within mega-batches of ``pool`` batches,
    cut, shuffle the batches. Padding drops, yet every epoch sees a different order (from ``rng``)."""
    perm = rng.permutation(len(lengths))
    batches = []
    mega = batch_size * pool
    for start in range(0, len(perm), mega):
        part = perm[start : start + mega]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def tokenize_pairs(
    tokenizer: Any, queries: Sequence[str], passages: Sequence[str], max_length: int, device: str
) -> Any:
    enc = tokenizer(
        list(queries),
        list(passages),
        padding=True,
        truncation="longest_first",
        max_length=max_length,
        return_tensors="pt",
    )
    return enc.to(device)


# -- losses ------------------------------------------------------------------------------------------
def batch_loss(scores: Any, mask: Any, loss: str, margin: float) -> Any:
    """Loss of a (batch, 1 + negatives) logit matrix whose column 0 is the positive; ``mask`` marks real
    negatives (groups of unequal size are padded)."""
    import torch
    import torch.nn.functional as F

    pos, neg = scores[:, :1], scores[:, 1:]
    nmask = mask[:, 1:]
    if loss == "triplet":
        hinge = F.relu(margin - pos + neg)
        return (hinge * nmask).sum() / nmask.sum()
    if loss == "bce":
        pos_l = F.binary_cross_entropy_with_logits(
            pos.squeeze(1), torch.ones_like(pos.squeeze(1)), reduction="sum"
        )
        neg_l = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="none")
        return (pos_l + (neg_l * nmask).sum()) / (pos.shape[0] + nmask.sum())
    logits = scores.masked_fill(~mask.bool(), float("-inf"))
    return F.cross_entropy(logits, torch.zeros(len(scores), dtype=torch.long, device=scores.device))


def forward_scores(
    model: Any, tokenizer: Any, batch: Sequence[Example], max_length: int, device: str
) -> tuple[Any, Any]:
    """Raw logits as a (batch, 1 + max negatives) matrix plus its validity mask."""
    import torch

    width = 1 + max(len(e.negatives) for e in batch)
    queries, passages, slots = [], [], []
    for i, e in enumerate(batch):
        for j, passage in enumerate((e.positive, *e.negatives)):
            queries.append(e.query)
            passages.append(passage)
            slots.append(i * width + j)
    enc = tokenize_pairs(tokenizer, queries, passages, max_length, device)
    logits = model(**enc).logits.view(-1).float()
    flat = torch.zeros(len(batch) * width, device=logits.device)
    mask = torch.zeros(len(batch) * width, device=logits.device)
    idx = torch.tensor(slots, device=logits.device)
    flat = flat.index_put((idx,), logits)
    mask[idx] = 1.0
    return flat.view(len(batch), width), mask.view(len(batch), width)


# -- the loop ----------------------------------------------------------------------------------------
def _optimizer(model: Any, params: TrainParams) -> Any:
    """AdamW; the classification head (fresh) gets ``head_lr``, the body ``lr``; no decay on bias/LayerNorm."""
    import torch

    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        head = name.startswith(("classifier", "score")) or ".classifier." in name
        decay = not (name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name)
        groups.setdefault((head, decay), []).append(p)
    param_groups = [
        {
            "params": ps,
            "lr": params.head_lr if head else params.lr,
            "weight_decay": params.weight_decay if decay else 0.0,
        }
        for (head, decay), ps in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups)


def _schedule(optimizer: Any, total: int, warmup_ratio: float) -> Any:
    import torch

    warm = math.ceil(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def plan_batches(
    hard: Sequence[Example], easy: Sequence[Example], lengths: dict[str, int], params: TrainParams
) -> list[tuple[Sequence[Example], np.ndarray]]:
    """The whole step plan: easy batches first, then ``epochs`` passes over the hard examples, capped
    at ``max_steps``. Deterministic given the seed."""
    rng = np.random.default_rng(params.seed)

    def lens(examples: Sequence[Example]) -> np.ndarray:
        return np.array(
            [
                max(pair_length(lengths, e.query, p, params.max_length) for p in (e.positive, *e.negatives))
                for e in examples
            ]
        )

    plan: list[tuple[Sequence[Example], np.ndarray]] = []
    if easy:
        plan += [(easy, b) for b in length_batches(lens(easy), params.batch_size, rng)][
            : params.warmup_easy_steps
        ]
    hard_lens = lens(hard)
    for _ in range(params.epochs):
        plan += [(hard, b) for b in length_batches(hard_lens, params.batch_size, rng)]
    return plan[: params.max_steps] if params.max_steps else plan


def train_loop(
    ce: Any,
    hard: Sequence[Example],
    params: TrainParams,
    *,
    easy: Sequence[Example] = (),
    device: str = "cpu",
    progress: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``ce`` in place; returns the loss of every step."""
    import torch
    from tqdm.auto import tqdm

    model, tokenizer = ce.model, ce.tokenizer
    texts = [t for e in (*hard, *easy) for t in (e.query, e.positive, *e.negatives)]
    lengths = token_lengths(tokenizer, texts)
    plan = plan_batches(hard, easy, lengths, params)
    optimizer = _optimizer(model, params)
    scheduler = _schedule(optimizer, len(plan), params.warmup_ratio)
    torch.manual_seed(params.seed)
    model.train()
    curve: list[float] = []
    bar = tqdm(plan, desc="train", unit="step", disable=not progress)
    for step, (pool, idx) in enumerate(bar):
        batch = [pool[i] for i in idx]
        scores, mask = forward_scores(model, tokenizer, batch, params.max_length, device)
        loss = batch_loss(scores, mask, params.loss, params.margin)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        curve.append(float(loss.detach().cpu()))
        if progress:
            bar.set_postfix(loss=f"{np.mean(curve[-20:]):.4f}", refresh=False)
        if on_step:
            on_step(step, curve[-1])
    model.eval()
    return curve


# -- scoring -----------------------------------------------------------------------------------------
def score_pairs(
    ce: Any,
    queries: Sequence[str],
    passages: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Raw logits s(q, p) for aligned lists, scored in batches sorted by token length (less padding)."""
    import torch
    from tqdm.auto import tqdm

    n = len(queries)
    out = np.zeros(n, dtype=np.float64)
    if n == 0:
        return out
    model, tokenizer = ce.model, ce.tokenizer
    lengths = token_lengths(tokenizer, [*queries, *passages])
    order = np.argsort(
        [-pair_length(lengths, q, p, max_length) for q, p in zip(queries, passages, strict=True)],
        kind="stable",
    )
    model.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch_size), desc="score", unit="batch", disable=not progress):
            idx = order[start : start + batch_size]
            enc = tokenize_pairs(
                tokenizer, [queries[i] for i in idx], [passages[i] for i in idx], max_length, device
            )
            out[idx] = model(**enc).logits.view(-1).float().cpu().numpy()
    return out


# -- reading the data --------------------------------------------------------------------------------
def mining_run_id(db: Database, name: str) -> str:
    run_id = db.scalar("SELECT run_id FROM mining_runs WHERE name = ?", [name])
    if run_id is None:
        raise NotFound(f"no mining run named {name!r} (hnm-db runs lists them)")
    return run_id


def load_examples(db: Database, run_id: str, split: str, loss: str) -> list[Example]:
    """Triplets of the run and split as examples: one per triplet, or one per (query, positive) for mnrl."""
    rows = db.execute(
        """
        SELECT t.query_id, t.positive_chunk_id, q.text, p.text, n.text
        FROM triplets t
        JOIN queries q ON q.query_id = t.query_id
        JOIN chunks p ON p.chunk_id = t.positive_chunk_id
        JOIN chunks n ON n.chunk_id = t.negative_chunk_id
        WHERE t.run_id = ? AND t.split = ?
        ORDER BY t.query_id, t.positive_chunk_id, t.rank, t.negative_chunk_id
        """,
        [run_id, split],
    ).fetchall()
    if loss != "mnrl":
        return [Example(q, p, (n,)) for _, _, q, p, n in rows]
    groups: dict[tuple[str, str], list] = {}
    for qid, pid, q, p, n in rows:
        groups.setdefault((qid, pid), [q, p, []])[2].append(n)
    return [Example(q, p, tuple(ns)) for q, p, ns in groups.values()]


def easy_examples(
    db: Database, run_id: str, split: str, count: int, rng: np.random.Generator
) -> list[Example]:
    """``count`` (query, positive, random chunk) examples; the random chunk's document is never judged
    for the query in any split, so an easy negative is never a false negative."""
    if count <= 0:
        return []
    pairs = db.execute(
        """
        SELECT DISTINCT t.query_id, q.text, p.text
        FROM triplets t JOIN queries q ON q.query_id = t.query_id JOIN chunks p ON p.chunk_id = t.positive_chunk_id
        WHERE t.run_id = ? AND t.split = ? ORDER BY 1, 2, 3
        """,
        [run_id, split],
    ).fetchall()
    chunks = db.execute("SELECT doc_id, text FROM chunks ORDER BY chunk_id").fetchall()
    judged: dict[str, set[str]] = {}
    for qid, doc in db.execute("SELECT query_id, doc_id FROM qrels WHERE score > 0").fetchall():
        judged.setdefault(qid, set()).add(doc)
    out = []
    for i in rng.integers(0, len(pairs), size=count):
        qid, q, p = pairs[i]
        for _ in range(100):
            doc, text = chunks[int(rng.integers(0, len(chunks)))]
            if doc not in judged.get(qid, ()):
                out.append(Example(q, p, (text,)))
                break
    return out


# -- the stage ---------------------------------------------------------------------------------------
def _claim_name(db: Database, name: str) -> None:
    """A finished run of that name is kept (error); a running/failed leftover is replaced."""
    status = db.scalar("SELECT status FROM training_runs WHERE name = ?", [name])
    if status == "finished":
        raise AlreadyExists(f"a training run named {name!r} exists; pass another --name")
    if status is not None:
        db.execute("DELETE FROM training_runs WHERE name = ?", [name])


@contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill PID``) raises KeyboardInterrupt, so a killed training still marks its row failed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _validate(db: Database, params: TrainParams) -> tuple[str, Path, list[Example]]:
    """Every check that can fail on user input, before anything is written."""
    out = Path(params.out)
    if out.exists():
        raise AlreadyExists(f"output folder exists: {out}; pass a new --out or remove it")
    if not out.parent.exists():
        raise InvalidParams(f"parent folder of --out does not exist: {out.parent}")
    run_id = mining_run_id(db, params.run)
    examples = load_examples(db, run_id, params.split, params.loss)
    if not examples:
        raise EmptySelection(f"mining run {params.run!r} has no triplets for split {params.split!r}")
    status = db.scalar("SELECT status FROM training_runs WHERE name = ?", [params.run_name])
    if status == "finished":
        raise AlreadyExists(f"a training run named {params.run_name!r} exists; pass another --name")
    base = resolve_base(db, params.base)
    return run_id, base, examples


def train(db: Database, params: TrainParams, *, progress: bool = True) -> TrainSummary:
    """Fine-tune ``params.base`` on the triplets of mining run ``params.run`` and record the run."""
    run_id, base, hard = _validate(db, params)
    device = pick_device(params.device)
    easy = easy_examples(
        db,
        run_id,
        params.split,
        params.warmup_easy_steps * params.batch_size,
        np.random.default_rng(params.seed),
    )
    ce = load_cross_encoder(base, max_length=params.max_length, device=device, seed=params.seed)
    training_run_id = uuid.uuid4().hex
    with db.transaction():
        _claim_name(db, params.run_name)
        db.execute(
            "INSERT INTO training_runs (training_run_id, name, mining_run_id, base_model, loss, params, seed, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
            [
                training_run_id,
                params.run_name,
                run_id,
                params.base,
                params.loss,
                params.to_json(),
                params.seed,
            ],
        )
    out = Path(params.out)
    tmp = out.with_name(f".{out.name}.partial-{training_run_id[:8]}")
    started = time.perf_counter()
    try:
        with _term_as_interrupt():
            curve = train_loop(ce, hard, params, easy=easy, device=device, progress=progress)
        with quiet_transformers():
            ce.save_pretrained(str(tmp))
        (tmp / "hnm_training.json").write_text(
            json.dumps(
                {"training_run_id": training_run_id, "mining_run": params.run, "params": asdict(params)},
                sort_keys=True,
                indent=1,
            ),
            encoding="utf-8",
        )
        fingerprint = model_fingerprint(tmp)
        os.replace(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        db.execute(
            "UPDATE training_runs SET status = 'failed', finished_at = current_timestamp, stats = ? "
            "WHERE training_run_id = ?",
            [json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}), training_run_id],
        )
        raise
    seconds = time.perf_counter() - started
    stats = {
        "steps": len(curve),
        "easy_steps": min(len(curve), params.warmup_easy_steps),
        "examples": len(hard),
        "pairs": sum(1 + len(e.negatives) for e in hard),
        "device": device,
        "seconds": round(seconds, 3),
        "final_loss": float(np.mean(curve[-20:])) if curve else None,
    }
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
    return TrainSummary(
        training_run_id,
        params.run_name,
        str(out.resolve()),
        fingerprint,
        len(curve),
        len(hard),
        stats["final_loss"] or 0.0,
        seconds,
        curve,
    )
