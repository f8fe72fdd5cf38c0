"""Ensemble vectors: one vector per text whose dot products average the members' cosines.

A **hybrid** ensemble adds BM25 as a sparse member of weight W (``EnsembleParams.bm25``): its vectors are
the dense part alone (so K-means and the SQL macros see the dense part), and the stages that rank with
it (mining, the ``ensemble:NAME`` first stage) add W x per-query min-max-normalised BM25 over the union
of the dense and BM25 top lists (:mod:`hnm_db.retrieval.hybrid`). BM25 statistics are computed from the current
chunk texts whenever they are used (as the BM25 baseline and first stage do); the ``ensembles`` row
records the weight, k1, b, epsilon, tokenizer and list depth.

For members with weights w_i (sum 1) the ensemble vector of a text is the concatenation of
sqrt(w_i) * v_i / |v_i|, so  e(a) . e(b) = sum_i w_i cos_i(a, b)  -- the paper's averaged similarity --
and K-means or top-k search work on a single vector. Members may have different dimensions.
Vectors are built in bounded Arrow batches, committed one by one; re-running adds new hashes only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from tqdm import tqdm

from hnm_db.errors import (
    AlreadyExists,
    EmptySelection,
    InvalidParams,
    MissingBM25Statistics,
    MissingEmbeddings,
    NotFound,
)
from hnm_db.models import registry
from hnm_db.models.embed import ROLE_TABLES
from hnm_db.options import param
from hnm_db.retrieval import bm25
from hnm_db.retrieval.bm25 import K1 as BM25_K1
from hnm_db.retrieval.bm25 import B as BM25_B
from hnm_db.retrieval.bm25 import BM25Index, tokenize
from hnm_db.retrieval.hybrid import HybridScorer
from hnm_db.store import Store
from hnm_db.store.vectors import from_arrow_list, iter_vectors, vectors_by_hash, write_vectors


def parse_member(spec: str) -> tuple[str, float | None]:
    """``NAME`` or ``NAME:WEIGHT`` (the weight after the last colon, so names may contain colons)."""
    name, sep, weight = spec.rpartition(":")
    if not sep:
        return spec, None
    try:
        return name, float(weight)
    except ValueError:
        return spec, None


@dataclass(frozen=True)
class EnsembleParams:
    """An ensemble's name and members as (model name or id, weight or None for 'equal share').

    ``bm25`` makes it a hybrid: the weight W of BM25 beside the dense members, whose weights are
    normalised to sum 1 (so ``-m A -m B --bm25 0.3`` scores 0.5 cos_A + 0.5 cos_B + 0.3 BM25');
    ``bm25_k1`` and ``bm25_b`` are the Okapi constants (rank-bm25's defaults, as in
    :mod:`hnm_db.retrieval.bm25`) and ``depth`` the length of the dense and of the BM25 candidate list whose union
    is ranked (a run or evaluation that needs more candidates reads deeper lists).
    """

    name: str = param(argument=True, help="The ensemble's name.")
    members: tuple[tuple[str, float | None], ...] = param(
        flag="--model",
        short="-m",
        parse=parse_member,
        metavar="MODEL[:WEIGHT]",
        help="MODEL or MODEL:WEIGHT (weights default equal and are normalised to sum 1).",
    )
    replace: bool = param(False, help="Rebuild if NAME exists with other members.")
    batch_rows: int = param(4096, python_only=True, help="Vectors combined per batch.")
    bm25: float | None = param(
        None,
        help="Make a hybrid: add W x BM25 (min-max normalised per query over the union of the dense and "
        "BM25 top lists) to the dense score, whose weights sum to 1.",
    )
    bm25_k1: float = param(BM25_K1, help="BM25 k1.")
    bm25_b: float = param(BM25_B, help="BM25 b.")
    depth: int = param(
        100,
        help="Hybrid: length of the dense and of the BM25 candidate list (deeper when more are needed).",
    )

    def __post_init__(self) -> None:
        object.__setattr__(  # "MODEL[:WEIGHT]" strings or (model, weight) pairs
            self,
            "members",
            tuple(parse_member(m) if isinstance(m, str) else (m[0], m[1]) for m in self.members),
        )
        if not self.name or not self.name.strip():
            raise InvalidParams("name: must not be empty")
        if not self.members:
            raise InvalidParams("members: name at least one model")
        names = [m for m, _ in self.members]
        if len(set(names)) != len(names):
            raise InvalidParams(f"members: a model is named twice in {names}")
        for model, weight in self.members:
            if weight is not None and not (math.isfinite(weight) and weight > 0):
                raise InvalidParams(f"members: weight of model {model!r} must be positive, got {weight}")
        if self.batch_rows < 1:
            raise InvalidParams(f"batch_rows: must be at least 1, got {self.batch_rows}")
        if self.bm25 is not None and not (math.isfinite(self.bm25) and self.bm25 > 0):
            raise InvalidParams(f"bm25: weight of BM25 must be positive, got {self.bm25}")
        if not (math.isfinite(self.bm25_k1) and self.bm25_k1 >= 0):
            raise InvalidParams(f"bm25_k1: must be >= 0, got {self.bm25_k1}")
        if not 0 <= self.bm25_b <= 1:
            raise InvalidParams(f"bm25_b: must be in [0, 1], got {self.bm25_b}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise InvalidParams(f"depth: must be an integer >= 1, got {self.depth!r}")

    def bm25_spec(self) -> dict | None:
        """The sparse member as stored in ``ensembles.bm25`` (None for a dense ensemble)."""
        if self.bm25 is None:
            return None
        return {
            "weight": float(self.bm25),
            "k1": float(self.bm25_k1),
            "b": float(self.bm25_b),
            "epsilon": bm25.EPSILON,
            "tokenizer": bm25.TOKENIZER,
            "depth": self.depth,
        }

    def weights(self) -> list[float]:
        """Weights normalised to sum 1; a member without a weight counts as 1."""
        raw = [1.0 if w is None else float(w) for _, w in self.members]
        total = sum(raw)
        return [w / total for w in raw]


@dataclass(frozen=True)
class Member:
    model_id: str
    name: str
    weight: float
    dim: int


@dataclass
class EnsembleSummary:
    ensemble_id: str
    name: str
    members: list[Member]
    dim: int
    added: dict[str, int]
    created: bool


def _ensemble_id(name: str, members: Sequence[Member], bm25: dict | None = None) -> str:
    parts: list = [[m.model_id, round(m.weight, 12)] for m in members]
    if bm25 is not None:  # a dense ensemble keeps the id it had before hybrids existed
        parts.append(["@bm25", json.dumps(bm25, sort_keys=True)])
    key = json.dumps(parts)
    return f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _members_json(members: Sequence[Member]) -> str:
    return json.dumps([{"model_id": m.model_id, "weight": m.weight} for m in members])


def resolve_members(db: Store, params: EnsembleParams) -> list[Member]:
    """Registered models (newest version of a name) with their normalised weights."""
    out = []
    for (name, _), weight in zip(params.members, params.weights(), strict=True):
        row = registry.get_model(db, name)
        out.append(Member(row.model_id, row.name, weight, row.dim))
    return out


def missing_counts(db: Store, members: Sequence[Member]) -> dict[str, dict[str, int]]:
    """model_id -> role -> number of the texts now in chunks/queries that it has no vector for.

    Only current texts count: vectors outlive the chunks they were made for (a re-chunk with other
    parameters keeps them, so going back costs nothing), and a member added after a re-chunk never
    embedded the old texts; the ensemble is built over the texts every member has (:func:`_pending_sql`).
    """
    ids = [m.model_id for m in members]
    out: dict[str, dict[str, int]] = {m: {} for m in ids}
    for role, table in ROLE_TABLES.items():
        rows = db.execute(
            f"""
            WITH universe AS (SELECT DISTINCT content_hash FROM {table}),
            members AS (SELECT unnest(?::VARCHAR[]) AS model_id)
            SELECT m.model_id, count(*) FILTER (WHERE e.content_hash IS NULL)
            FROM members m CROSS JOIN universe u
            LEFT JOIN embeddings e
              ON e.model_id = m.model_id AND e.role = ? AND e.content_hash = u.content_hash
            GROUP BY m.model_id
            """,
            [ids, role],
        ).fetchall()
        for model_id, n in rows:
            out[model_id][role] = int(n)
    return out


def check_coverage(db: Store, members: Sequence[Member]) -> int:
    """Raise MissingEmbeddings naming the first member that lacks vectors; return the universe size."""
    counts = missing_counts(db, members)
    for m in members:
        lack = counts[m.model_id]
        total = sum(lack.values())
        if total:
            detail = ", ".join(
                f"{n} {'chunk' if r == 'doc' else 'query'} texts" for r, n in lack.items() if n
            )
            raise MissingEmbeddings(
                f"model {m.name} ({m.model_id}) lacks vectors for {total} texts ({detail}): "
                f"run `hnm-db embed --model {m.name}` first"
            )
    n = db.scalar("SELECT count(*) FROM embeddings WHERE model_id = ?", [members[0].model_id])
    return int(n or 0)


def combine(matrices: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """concat_i sqrt(w_i) * v_i / |v_i| (a zero vector stays zero)."""
    parts = []
    for mat, w in zip(matrices, weights, strict=True):
        mat = np.asarray(mat, dtype=np.float32)
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        parts.append(mat * (np.float32(math.sqrt(w)) / norms))
    return np.ascontiguousarray(np.hstack(parts), dtype=np.float32)


def _pending_sql(n_members: int) -> str:
    """Hashes every member has for a role but the ensemble lacks, with one vec column per member.

    Named params: $role, $first (the first member), $ens (the ensemble), $m0.. (each member).
    """
    joins = "\n".join(
        f"JOIN embeddings e{i} ON e{i}.model_id = $m{i} AND e{i}.role = p.role AND e{i}.content_hash = p.content_hash"
        for i in range(n_members)
    )
    cols = ", ".join(f"e{i}.vec AS v{i}" for i in range(n_members))
    return f"""
        WITH pending AS (
            SELECT DISTINCT role, content_hash FROM embeddings WHERE role = $role AND model_id = $first
            EXCEPT
            SELECT role, content_hash FROM ensemble_vectors WHERE ensemble_id = $ens AND role = $role
        )
        SELECT p.content_hash, {cols}
        FROM pending p
        {joins}
        ORDER BY p.content_hash
    """


def _iter_pending(
    db: Store, ensemble_id: str, role: str, members: Sequence[Member], batch_rows: int
) -> Iterator[tuple[list[str], list[np.ndarray]]]:
    sql = _pending_sql(len(members))
    params = {"role": role, "first": members[0].model_id, "ens": ensemble_id}
    params.update({f"m{i}": m.model_id for i, m in enumerate(members)})
    cur = db.cursor()
    try:
        reader = db.arrow_batches(sql, params, batch_rows=batch_rows, con=cur)
        for batch in reader:
            mats = [from_arrow_list(batch.column(f"v{i}")) for i in range(len(members))]
            yield batch.column("content_hash").to_pylist(), mats
    finally:
        cur.close()


# -- lookup (every stage finds an ensemble here) ---------------------------------------------------
@dataclass(frozen=True)
class EnsembleInfo:
    ensemble_id: str
    name: str
    members: list[dict]  # [{"model_id", "weight", "name", "fingerprint", "dim"}]
    dim: int
    bm25: dict | None = None  # the sparse member of a hybrid (EnsembleParams.bm25_spec)


def find_ensemble(db: Store, name: str) -> EnsembleInfo | None:
    """The ensemble called ``name`` (or with that id) with its members' model names, fingerprints and
    dimensions; None when there is none."""
    row = db.execute(
        "SELECT ensemble_id, name, members, dim, bm25 FROM ensembles WHERE name = ? OR ensemble_id = ? "
        "ORDER BY name = ? DESC LIMIT 1",
        [name, name, name],
    ).fetchone()
    if row is None:
        return None
    members = json.loads(row[2]) if isinstance(row[2], str) else list(row[2])
    out = []
    for m in members:
        found = db.execute(
            "SELECT name, fingerprint, dim FROM models WHERE model_id = ?", [m["model_id"]]
        ).fetchone()
        out.append(
            {
                "model_id": m["model_id"],
                "weight": float(m["weight"]),
                "name": found[0] if found else m["model_id"],
                "fingerprint": found[1] if found else None,
                "dim": int(found[2]) if found else None,
            }
        )
    bm25 = json.loads(row[4]) if isinstance(row[4], str) else row[4]
    return EnsembleInfo(row[0], row[1], out, int(row[3]), bm25)


def get_ensemble(db: Store, name: str) -> EnsembleInfo:
    """:func:`find_ensemble`, or NotFound naming the ensembles there are."""
    ens = find_ensemble(db, name)
    if ens is None:
        known = [r[0] for r in db.execute("SELECT name FROM ensembles ORDER BY name").fetchall()]
        raise NotFound(
            f"no ensemble named {name!r} (known: {', '.join(known) or 'none'}; hnm-db ensemble create makes one)"
        )
    return ens


def check_chunk_vectors(db: Store, ens: EnsembleInfo) -> int:
    """Raise MissingEmbeddings unless every distinct chunk text has a doc vector; return how many texts.

    The message names the ensemble, the count, and for each member model how many of those texts it
    has not embedded, which is what the user has to fix.
    """
    total, missing = db.execute(
        """
        WITH texts AS (SELECT DISTINCT content_hash FROM chunks)
        SELECT count(*), count(*) FILTER (WHERE ev.content_hash IS NULL)
        FROM texts LEFT JOIN ensemble_vectors ev
          ON ev.ensemble_id = ? AND ev.role = 'doc' AND ev.content_hash = texts.content_hash
        """,
        [ens.ensemble_id],
    ).fetchone()
    if missing:
        per_model = []
        for m in ens.members:
            n = db.scalar(
                """
                SELECT count(*) FROM (SELECT DISTINCT content_hash FROM chunks) t
                WHERE t.content_hash NOT IN
                      (SELECT content_hash FROM embeddings WHERE model_id = ? AND role = 'doc')
                """,
                [m["model_id"]],
            )
            per_model.append(f"model {m['name']!r} lacks {n}")
        raise MissingEmbeddings(
            f"ensemble {ens.name!r} has no vectors for {missing} of {total} chunk texts "
            f"({'; '.join(per_model)}): run `hnm-db ensemble update {ens.name}` "
            "(after `hnm-db embed` for a model that lacks some)"
        )
    return int(total)


def check_bm25_statistics(db: Store, name: str) -> None:
    """Raise MissingBM25Statistics unless some chunk text has a BM25 term (BM25 statistics are built
    from the chunk texts; with no chunks, or only stop words, there are none to add to the dense part)."""
    cur = db.cursor()
    try:
        cur.execute("SELECT text FROM chunks")
        while rows := cur.fetchmany(4096):
            if any(tokenize(r[0] or "") for r in rows):
                return
    finally:
        cur.close()
    n = db.scalar("SELECT count(*) FROM chunks")
    what = (
        "there are no chunks" if not n else f"none of the {n} chunk texts has a BM25 term (only stop words)"
    )
    raise MissingBM25Statistics(
        f"hybrid ensemble {name!r} needs BM25 statistics of the chunk texts, but {what}: "
        "run `hnm-db chunk` first, or create it without --bm25"
    )


def bm25_index(ens: EnsembleInfo, texts: Sequence[str]) -> BM25Index:
    """The :class:`~hnm_db.retrieval.bm25.BM25Index` of a hybrid's BM25 member (its stored k1, b, epsilon) over ``texts``."""
    spec = ens.bm25
    return BM25Index.build(texts, k1=spec["k1"], b=spec["b"], epsilon=spec["epsilon"])


def hybrid_scorer(
    db: Store,
    ens: EnsembleInfo,
    item_texts: Sequence[str],
    query_texts: Sequence[str],
    qvecs: np.ndarray,
    item_hashes: np.ndarray,
) -> HybridScorer:
    """The :class:`~hnm_db.retrieval.hybrid.HybridScorer` of a hybrid ensemble over candidate items whose texts and
    content hashes are ``item_texts`` / ``item_hashes`` (aligned); BM25 statistics from those texts."""
    spec = ens.bm25
    index = bm25_index(ens, item_texts)
    if not index.has_terms():
        check_bm25_statistics(db, ens.name)  # raises, naming the reason

    def doc_vectors(items: np.ndarray) -> np.ndarray:
        mat, missing = vectors_by_hash(
            db, "ensemble_vectors", "ensemble_id", ens.ensemble_id, "doc", item_hashes[items]
        )
        if missing:
            raise MissingEmbeddings(
                f"ensemble {ens.name!r} has no vectors for {missing} chunk texts: run `hnm-db ensemble update {ens.name}`"
            )
        return mat

    return HybridScorer(index, float(spec["weight"]), query_texts, qvecs, doc_vectors)


def hybrid_depth(ens: EnsembleInfo, k: int) -> int:
    """Length of the dense and BM25 lists a hybrid unites when ``k`` candidates are needed."""
    return max(int(ens.bm25["depth"]), k)


def _same_members(existing: EnsembleInfo, members: Sequence[Member], bm25: dict | None) -> bool:
    stored = existing.members
    return (
        existing.bm25 == bm25
        and len(stored) == len(members)
        and all(
            s["model_id"] == m.model_id and abs(float(s["weight"]) - m.weight) < 1e-9
            for s, m in zip(stored, members, strict=True)
        )
    )


def create_ensemble(db: Store, params: EnsembleParams, *, progress: bool = True) -> EnsembleSummary:
    """Create (or extend, when the members are unchanged) the ensemble ``params.name``.

    Like embed, commits batch by batch, so it must not run inside an open ``db.transaction()``, and a
    killed run resumes: the vectors are keyed by the ensemble id (a hash of name, members and weights),
    and the ``ensembles`` row is written after the last batch, so a half-built ensemble does not exist
    for ``cluster`` or ``mine`` (which would otherwise report missing vectors and suggest ``embed``).
    """
    if db.in_transaction:
        raise RuntimeError("create_ensemble commits batch by batch: call it outside db.transaction()")
    members = resolve_members(db, params)
    existing = find_ensemble(db, params.name)
    if existing and existing.name != params.name:  # an id that happens to equal the new name
        existing = None
    bm25 = params.bm25_spec()
    if existing and not _same_members(existing, members, bm25) and not params.replace:
        raise AlreadyExists(
            f"ensemble {params.name} exists with other members ({existing.ensemble_id}): "
            "pass --replace to rebuild it"
        )
    if check_coverage(db, members) == 0:
        raise EmptySelection("no texts are embedded yet: run `hnm-db embed` before building an ensemble")
    if bm25 is not None:
        check_bm25_statistics(db, params.name)
    ensemble_id = _ensemble_id(params.name, members, bm25)
    dim = sum(m.dim for m in members)
    created = existing is None or existing.ensemble_id != ensemble_id
    with db.transaction():
        if existing and created:  # --replace: the old members' ensemble goes first
            db.execute("DELETE FROM ensemble_vectors WHERE ensemble_id = ?", [existing.ensemble_id])
            db.execute("DELETE FROM ensembles WHERE ensemble_id = ?", [existing.ensemble_id])
        # vectors of a killed creation with other members, which no ensemble row will ever name
        db.execute(
            "DELETE FROM ensemble_vectors WHERE ensemble_id <> ? AND ensemble_id NOT IN "
            "(SELECT ensemble_id FROM ensembles)",
            [ensemble_id],
        )
    added = {
        role: _build_role(db, ensemble_id, role, members, params.batch_rows, progress) for role in ROLE_TABLES
    }
    if created:  # the row last: an ensemble is visible (to cluster, mine) only once all its vectors are
        with db.transaction():
            db.execute(
                "INSERT INTO ensembles (ensemble_id, name, members, dim, bm25) VALUES (?, ?, ?, ?, ?)",
                [
                    ensemble_id,
                    params.name,
                    _members_json(members),
                    dim,
                    None if bm25 is None else json.dumps(bm25),
                ],
            )
    return EnsembleSummary(ensemble_id, params.name, members, dim, added, created)


def _build_role(
    db: Store, ensemble_id: str, role: str, members: Sequence[Member], batch_rows: int, progress: bool
) -> int:

    weights = [m.weight for m in members]
    n = 0
    with tqdm(desc=f"ensemble {role}", unit="vec", disable=not progress) as bar:
        for hashes, mats in _iter_pending(db, ensemble_id, role, members, batch_rows):
            with db.transaction():
                write_vectors(
                    db,
                    "ensemble_vectors",
                    {"ensemble_id": ensemble_id, "role": role, "content_hash": hashes},
                    combine(mats, weights),
                )
            n += len(hashes)
            bar.update(len(hashes))
    return n


def update_ensemble(db: Store, name: str, *, progress: bool = True) -> EnsembleSummary:
    """Add vectors for texts embedded since the ensemble was built (same members)."""
    existing = get_ensemble(db, name)
    members = tuple((m["model_id"], m["weight"]) for m in existing.members)
    return create_ensemble(db, params_of(existing, existing.name, members), progress=progress)


def params_of(ens: EnsembleInfo, name: str, members: tuple[tuple[str, float | None], ...]) -> EnsembleParams:
    """EnsembleParams for ``members`` with ``ens``'s sparse member (none for a dense ensemble)."""
    if ens.bm25 is None:
        return EnsembleParams(name, members)
    b = ens.bm25
    return EnsembleParams(name, members, bm25=b["weight"], bm25_k1=b["k1"], bm25_b=b["b"], depth=b["depth"])


def list_ensembles(db: Store):
    """Ensembles with their weights in one readable column (dense members by model name, then BM25),
    the BM25 weight, what a tuned one was tuned from and its dev nDCG@10 beside the source's on the same
    dev queries, dimension and vector counts per role (a polars frame)."""

    frame = db.sql(
        """
        WITH counts AS (
            SELECT ensemble_id,
                   count(*) FILTER (WHERE role = 'doc') AS doc_vectors,
                   count(*) FILTER (WHERE role = 'query') AS query_vectors
            FROM ensemble_vectors GROUP BY ensemble_id
        )
        SELECT e.name, e.ensemble_id, e.members, e.bm25, e.dim,
               src.name AS tuned_from, t.dev_score AS dev_ndcg10, t.source_dev_score AS source_dev_ndcg10,
               coalesce(c.doc_vectors, 0) AS doc_vectors, coalesce(c.query_vectors, 0) AS query_vectors,
               e.created_at
        FROM ensembles e LEFT JOIN counts c USING (ensemble_id)
        LEFT JOIN ensemble_tunings t USING (ensemble_id)
        LEFT JOIN ensembles src ON src.ensemble_id = t.source_ensemble_id
        ORDER BY e.name
        """
    )
    names = dict(db.execute("SELECT model_id, name FROM models").fetchall())
    weights, bm25_weight = [], []
    for members, sparse in zip(frame["members"].to_list(), frame["bm25"].to_list(), strict=True):
        parts = [f"{names.get(m['model_id'], m['model_id'])} {m['weight']:.3f}" for m in json.loads(members)]
        spec = json.loads(sparse) if sparse else None
        if spec:
            parts.append(f"bm25 {spec['weight']:.3f}")
        weights.append(", ".join(parts))
        bm25_weight.append(spec["weight"] if spec else None)
    return frame.with_columns(
        pl.Series("weights", weights, pl.String), pl.Series("bm25_weight", bm25_weight, pl.Float64)
    ).select(
        "name",
        "weights",
        "bm25_weight",
        "tuned_from",
        "dev_ndcg10",
        "source_dev_ndcg10",
        "ensemble_id",
        "members",
        "bm25",
        "dim",
        "doc_vectors",
        "query_vectors",
        "created_at",
    )


def read_ensemble_vectors(
    db: Store, name: str, role: str, *, batch_rows: int = 50_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of (content_hashes, float32 matrix) of one role of an ensemble, ordered by hash."""
    if role not in ROLE_TABLES:
        raise InvalidParams(f"role: must be 'doc' or 'query', got {role!r}")
    ensemble_id = get_ensemble(db, name).ensemble_id
    sql = (
        "SELECT content_hash, vec FROM ensemble_vectors WHERE ensemble_id = ? AND role = ? "
        "ORDER BY content_hash"
    )
    for keys, mat in iter_vectors(db, sql, [ensemble_id, role], batch_rows=batch_rows):
        yield keys["content_hash"], mat
