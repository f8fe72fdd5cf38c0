"""Ensemble vectors: one vector per text whose dot products average the members' cosines.

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

from hnm_db import models as registry
from hnm_db.embed import ROLE_TABLES
from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams, MissingEmbeddings, NotFound
from hnm_db.store import Store
from hnm_db.vectors import from_arrow_list, iter_vectors, write_vectors


@dataclass(frozen=True)
class EnsembleParams:
    """An ensemble's name and members as (model name or id, weight or None for 'equal share')."""

    name: str
    members: tuple[tuple[str, float | None], ...]
    replace: bool = False
    batch_rows: int = 4096

    def __post_init__(self) -> None:
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

    def weights(self) -> list[float]:
        """Weights normalised to sum 1; a member without a weight counts as 1."""
        raw = [1.0 if w is None else float(w) for _, w in self.members]
        total = sum(raw)
        return [w / total for w in raw]


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


def _ensemble_id(name: str, members: Sequence[Member]) -> str:
    key = json.dumps([[m.model_id, round(m.weight, 12)] for m in members])
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
    """model_id -> role -> number of texts (in chunks/queries or embedded by another member) it lacks."""
    ids = [m.model_id for m in members]
    out: dict[str, dict[str, int]] = {m: {} for m in ids}
    for role, table in ROLE_TABLES.items():
        rows = db.execute(
            f"""
            WITH universe AS (
                SELECT content_hash FROM {table}
                UNION
                SELECT content_hash FROM embeddings WHERE role = ? AND list_contains(?, model_id)
            ),
            members AS (SELECT unnest(?::VARCHAR[]) AS model_id)
            SELECT m.model_id, count(*) FILTER (WHERE e.content_hash IS NULL)
            FROM members m CROSS JOIN universe u
            LEFT JOIN embeddings e
              ON e.model_id = m.model_id AND e.role = ? AND e.content_hash = u.content_hash
            GROUP BY m.model_id
            """,
            [role, ids, ids, role],
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


def find_ensemble(db: Store, name: str) -> EnsembleInfo | None:
    """The ensemble called ``name`` (or with that id) with its members' model names, fingerprints and
    dimensions; None when there is none."""
    row = db.execute(
        "SELECT ensemble_id, name, members, dim FROM ensembles WHERE name = ? OR ensemble_id = ? "
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
    return EnsembleInfo(row[0], row[1], out, int(row[3]))


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


def _same_members(stored: list[dict], members: Sequence[Member]) -> bool:
    return len(stored) == len(members) and all(
        s["model_id"] == m.model_id and abs(float(s["weight"]) - m.weight) < 1e-9
        for s, m in zip(stored, members, strict=True)
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
    if existing and not _same_members(existing.members, members) and not params.replace:
        raise AlreadyExists(
            f"ensemble {params.name} exists with other members ({existing.ensemble_id}): "
            "pass --replace to rebuild it"
        )
    if check_coverage(db, members) == 0:
        raise EmptySelection("no texts are embedded yet: run `hnm-db embed` before building an ensemble")
    ensemble_id = _ensemble_id(params.name, members)
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
                "INSERT INTO ensembles (ensemble_id, name, members, dim) VALUES (?, ?, ?, ?)",
                [ensemble_id, params.name, _members_json(members), dim],
            )
    return EnsembleSummary(ensemble_id, params.name, members, dim, added, created)


def _build_role(
    db: Store, ensemble_id: str, role: str, members: Sequence[Member], batch_rows: int, progress: bool
) -> int:
    from tqdm import tqdm

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
    return create_ensemble(db, EnsembleParams(existing.name, members), progress=progress)


def list_ensembles(db: Store):
    """Ensembles with member names, weights, dimension and vector counts per role (a polars frame)."""
    return db.sql(
        """
        WITH counts AS (
            SELECT ensemble_id,
                   count(*) FILTER (WHERE role = 'doc') AS doc_vectors,
                   count(*) FILTER (WHERE role = 'query') AS query_vectors
            FROM ensemble_vectors GROUP BY ensemble_id
        )
        SELECT e.name, e.ensemble_id, e.members, e.dim,
               coalesce(c.doc_vectors, 0) AS doc_vectors, coalesce(c.query_vectors, 0) AS query_vectors,
               e.created_at
        FROM ensembles e LEFT JOIN counts c USING (ensemble_id)
        ORDER BY e.name
        """
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
