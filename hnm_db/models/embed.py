"""Embed every distinct chunk and query text once per model, in committed, resumable batches.

Work is decided by content hash: an anti-join lists the hashes of a role that have no vector for the
model yet, so a re-run encodes only what is new and a run on an unchanged corpus loads no model at all.
Texts stream from DuckDB sorted by length (less padding per batch); each batch is encoded, written
through Arrow and committed, so killing the process loses at most one batch.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from hnm_db.errors import InvalidParams
from hnm_db.models import registry
from hnm_db.options import param
from hnm_db.store import Store
from hnm_db.store.vectors import write_vectors

WHAT = ("chunks", "queries", "all")
# role -> the table whose texts it embeds; chunks (never whole documents) are what documents become.
ROLE_TABLES = {"doc": "chunks", "query": "queries"}


@dataclass(frozen=True)
class EmbedParams:
    """Which models embed which texts, and how many texts go through the model at once."""

    models: tuple[str, ...] = param(
        flag="--model", short="-m", help="A registered name or built-in alias (repeat for several models)."
    )
    what: str = param("all", choices=WHAT, help="Which texts to embed.")
    batch_size: int = param(
        64, help="Texts per model call; each batch is committed, so an interrupted run resumes."
    )
    threads: int | None = param(
        None, help="Torch CPU threads (default: all usable CPUs; with --engine ray, 1 per replica)."
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "models", (self.models,) if isinstance(self.models, str) else tuple(self.models)
        )
        if not self.models:
            raise InvalidParams("models: name at least one model")
        if len(set(self.models)) != len(self.models):
            raise InvalidParams(f"models: a model is named twice in {list(self.models)}")
        if self.what not in WHAT:
            raise InvalidParams(f"what: must be one of {', '.join(WHAT)}, got {self.what!r}")
        if self.batch_size < 1:
            raise InvalidParams(f"batch_size: must be at least 1, got {self.batch_size}")
        if self.threads is not None and self.threads < 1:
            raise InvalidParams(f"threads: must be at least 1, got {self.threads}")

    @property
    def roles(self) -> tuple[str, ...]:
        return {"chunks": ("doc",), "queries": ("query",), "all": ("doc", "query")}[self.what]


@dataclass
class ModelReport:
    """What one model did: texts encoded per role, whether it was loaded, and notes for the user."""

    name: str
    model_id: str
    encoded: dict[str, int] = field(default_factory=dict)
    already: dict[str, int] = field(default_factory=dict)
    loaded: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class EmbedSummary:
    models: list[ModelReport]

    @property
    def encoded(self) -> int:
        return sum(sum(m.encoded.values()) for m in self.models)


def _missing_sql(role: str) -> str:
    """Distinct texts of a role lacking a vector for the model (params: model_id, role), shortest first."""
    table = ROLE_TABLES[role]
    return f"""
        WITH texts AS (
            SELECT content_hash, any_value(text) AS text FROM {table} GROUP BY content_hash
        ),
        done AS (
            SELECT content_hash FROM embeddings WHERE model_id = ? AND role = ?
        )
        SELECT t.content_hash, t.text
        FROM texts t ANTI JOIN done d ON t.content_hash = d.content_hash
        ORDER BY length(t.text), t.content_hash
    """


def count_missing(db: Store, model_id: str, role: str) -> tuple[int, int]:
    """(texts lacking a vector, texts with one) for a model and role."""
    table = ROLE_TABLES[role]
    row = db.execute(
        f"""
        WITH texts AS (SELECT DISTINCT content_hash FROM {table}),
        done AS (SELECT content_hash FROM embeddings WHERE model_id = ? AND role = ?)
        SELECT count(*) FILTER (WHERE d.content_hash IS NULL), count(d.content_hash)
        FROM texts t LEFT JOIN done d ON t.content_hash = d.content_hash
        """,
        [model_id, role],
    ).fetchone()
    return int(row[0]), int(row[1])


def iter_missing(
    db: Store, model_id: str, role: str, batch_size: int
) -> Iterator[tuple[list[str], list[str]]]:
    """Batches of (hashes, texts) to encode, streamed through a second cursor.

    The cursor reads a snapshot taken when the query starts, so the batches committed meanwhile on the
    main connection neither disturb it nor reappear in it.
    """
    cur = db.cursor()
    try:
        reader = db.arrow_batches(_missing_sql(role), [model_id, role], batch_rows=batch_size, con=cur)
        for batch in reader:
            yield batch.column(0).to_pylist(), batch.column(1).to_pylist()
    finally:
        cur.close()


def encode_texts(
    model, texts: list[str], *, prompt: str | None, normalize: bool, batch_size: int
) -> np.ndarray:
    """One batch through the model (a seam tests replace to simulate a crash)."""
    return model.encode(
        texts,
        prompt=prompt or None,
        batch_size=batch_size,
        normalize_embeddings=normalize,
        convert_to_numpy=True,
        show_progress_bar=False,
    ).astype(np.float32, copy=False)


def set_threads(threads: int | None) -> None:
    """Torch intra-op threads: the CPUs this process may use unless told otherwise."""
    import torch

    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)


def _embed_role(
    db: Store, model, row: registry.ModelRow, role: str, total: int, params: EmbedParams, progress: bool
) -> int:

    prompt = row.query_prompt if role == "query" else row.doc_prompt
    done = 0
    with tqdm(
        total=total,
        desc=f"{row.name} {role}",
        unit="text",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        for hashes, texts in iter_missing(db, row.model_id, role, params.batch_size):
            vecs = encode_texts(
                model, texts, prompt=prompt, normalize=row.normalize, batch_size=params.batch_size
            )
            with db.transaction():
                write_vectors(
                    db, "embeddings", {"model_id": row.model_id, "role": role, "content_hash": hashes}, vecs
                )
            done += len(hashes)
            bar.update(len(hashes))
    return done


#: An engine's way to embed one role's missing texts (:func:`hnm_db.engines.ray_engine.embed_runner`):
#: (db, model row, role, params, progress) -> vectors added. The driver still owns every write.
RoleRunner = Callable[[Store, registry.ModelRow, str, EmbedParams, bool], int]


def embed_model(
    db: Store, name: str, params: EmbedParams, *, progress: bool = True, runner: RoleRunner | None = None
) -> ModelReport:
    """Embed the missing texts of ``params.roles`` with one model; load it only if something is missing
    (with a ``runner``, the engine's workers load it instead)."""
    start = time.perf_counter()
    reg, versions = registry.current_model(db, name)
    row = reg.row
    report = ModelReport(name=name, model_id=row.model_id)
    if reg.created and versions > 1:
        report.notes.append(f"{name}: files or settings changed, registered new version {row.model_id}")
    elif versions > 1:
        report.notes.append(f"{name} has {versions} versions; using the newest, {row.model_id}")
    missing = {}
    for role in params.roles:
        missing[role], report.already[role] = count_missing(db, row.model_id, role)
    if runner is not None:
        for role in params.roles:
            report.encoded[role] = runner(db, row, role, params, progress) if missing[role] else 0
        report.seconds = time.perf_counter() - start
        return report
    model = reg.model
    if sum(missing.values()):
        set_threads(params.threads)
        if model is None:
            model = registry.load_model(
                registry.resolve_source(row.source), max_seq_length=row.max_seq_length
            )
    report.loaded = model is not None
    for role in params.roles:
        report.encoded[role] = (
            _embed_role(db, model, row, role, missing[role], params, progress) if missing[role] else 0
        )
    report.seconds = time.perf_counter() - start
    return report


def embed(
    db: Store, params: EmbedParams, *, progress: bool = True, runner: RoleRunner | None = None
) -> EmbedSummary:
    """Embed chunks and/or queries with every model in ``params`` (stage entry point).

    Commits batch by batch (that is what makes it resumable), so it must not run inside an open
    ``db.transaction()``: the streaming cursor would not see the caller's uncommitted rows.
    """
    if db.in_transaction:
        raise RuntimeError("embed commits batch by batch: call it outside db.transaction()")
    return EmbedSummary(
        [embed_model(db, name, params, progress=progress, runner=runner) for name in params.models]
    )
