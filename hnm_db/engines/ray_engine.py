"""The Ray engine: embedding, cluster assignment and mining past one process, same results as local.

The DuckDB file keeps one writer, the driver (the process that runs the command); Ray workers never
open it. Work leaves the driver as Parquet shards written with DuckDB's ``COPY`` into a staging folder
(``--stage DIR``: on a real cluster a path every node sees), workers write their results beside them
as Parquet, and the driver ingests those. Each stage keeps the local path's rules and reuses its code,
so its output is the same bits:

- **Embedding** (:func:`embed_role`): the driver plans the texts a model lacks exactly as the local
  path batches them (``hnm_db.models.embed.iter_missing``: length-sorted batches of ``batch_size``), and
  writes the plan as shards of whole batches (batch number modulo ``buckets``): a text's vector
  depends, in the last bits, on the texts padded into its batch, so batches are never split. Ray Data
  ``map_batches`` with an ``ActorPoolStrategy`` of model replicas encodes each shard with the same
  ``encode_texts`` call and writes an output shard (write to a temporary name, then rename). The driver
  ingests each output shard in one transaction with ``INSERT ... SELECT ... FROM read_parquet(...)
  WHERE NOT EXISTS``, so ingesting twice adds nothing. A killed run leaves the plan and the finished
  output shards in the stage; the next run reuses that plan (so the batches, and the vectors, stay
  the same), ingests what is there and encodes only the shards that have no output yet.
- **Cluster assignment** (:func:`assign_clusters`): centroids are fitted on the driver; the vectors go
  out as shards bucketed by ``hash(content_hash) % buckets`` and a Ray Data map assigns each to the
  nearest centroid with :func:`hnm_db.mining.cluster.nearest_centroid`, whose result for a vector does not
  depend on the other vectors in its batch.
- **Mining** (:func:`mining_scorer`): ``shards`` actors each load one slice of the ensemble's chunk
  vectors (bucketed by ``hash(content_hash) % shards``), score every query against it with
  :func:`hnm_db.retrieval.topk.score_candidates` and return their top-k; the driver merges them
  (:func:`hnm_db.retrieval.topk.merge_shard_top_k`, float64 scores, ties by lower id), then filters, samples
  and writes as the local path does. Identical triplets for any number of shards.

Ray is an optional extra (``pip install 'hnm-db[ray]'``), imported only when this engine runs.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hnm_db.errors import HnmError, InvalidParams
from hnm_db.mining.cluster import nearest_centroid
from hnm_db.mining.scoring import ScoreJob, Scorer
from hnm_db.models import registry
from hnm_db.models.embed import EmbedParams, encode_texts, iter_missing, set_threads
from hnm_db.options import param
from hnm_db.retrieval.topk import TopK, merge_shard_top_k, score_candidates
from hnm_db.store import Store, publish
from hnm_db.store.vectors import from_arrow_list, to_arrow_list

ENGINES = ("local", "ray")


class RayUnavailable(HnmError):
    """``--engine ray`` without Ray installed."""


@dataclass(frozen=True)
class RayParams:
    """Where and how wide the Ray engine runs; results do not depend on any of these.

    ``num_cpus`` caps the local instance that ``ray.init()`` starts when no cluster is found;
    ``cpus_per_actor`` is the CPU share each actor or task asks for (0.5 lets two share a core; whole
    CPUs can starve a small machine's pool).
    """

    address: str | None = param(
        None, help="Ray: a running cluster's address (default: RAY_ADDRESS, else a local cluster)."
    )
    stage: str | None = param(
        None,
        help="Ray: the exchange folder every node sees (default: DB.stage beside the database).",
    )
    shards: int = param(4, help="Ray: mining actors, each holding one slice of the chunk vectors.")
    buckets: int = param(8, help="Ray: Parquet shards the work is cut into.")
    replicas: int = param(2, help="Ray: embedding model replicas (an actor pool).")
    cpus_per_actor: float = param(0.5, python_only=True, help="CPU share each actor or task asks for.")
    gpus_per_replica: float = param(0.0, python_only=True, help="GPU share of an embedding replica (0: CPU).")
    threads_per_replica: int = param(1, python_only=True, help="Torch threads of an embedding replica.")
    num_cpus: int | None = param(None, python_only=True, help="CPUs of a local Ray instance started here.")

    def __post_init__(self) -> None:
        if self.stage is not None and not self.stage:
            raise InvalidParams("stage: an empty folder name (leave it unset for DB.stage)")
        for name in ("shards", "buckets", "replicas", "threads_per_replica"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidParams(f"{name}: must be a positive integer, got {value!r}")
        if not 0 < self.cpus_per_actor <= 64:
            raise InvalidParams(f"cpus_per_actor: must be in (0, 64], got {self.cpus_per_actor}")
        if self.gpus_per_replica < 0:
            raise InvalidParams(f"gpus_per_replica: must be >= 0, got {self.gpus_per_replica}")

    def staged_beside(self, db_path: str) -> RayParams:
        """These params with ``stage`` set: the one given, else ``DB.stage`` beside the database file."""
        if self.stage is not None:
            return self
        if db_path == ":memory:":
            raise InvalidParams("stage: an in-memory database has no folder; give a staging folder")
        return dataclasses.replace(self, stage=f"{db_path}.stage")


def _stage_folder(params: RayParams) -> Path:
    if params.stage is None:  # the facade sets it (RayParams.staged_beside); a direct caller must
        raise InvalidParams("stage: the Ray engine needs a staging folder every node sees")
    return Path(params.stage)


def connect(params: RayParams) -> Any:
    """The ``ray`` module, connected: an existing connection of this process is reused."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(
            "--engine ray needs Ray: pip install 'hnm-db[ray]' (or use --engine local)"
        ) from None
    if not ray.is_initialized():
        ray.init(
            address=params.address,
            num_cpus=params.num_cpus if params.address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    return ray


def _sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _fresh(folder: Path) -> Path:
    """An empty temporary sibling of ``folder``; renamed onto it when complete (atomic on one file system)."""
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return tmp


def _write_parquet(table: pa.Table, path: Path) -> None:
    """A worker's output shard: written under a temporary name, then renamed, so a reader never sees half."""

    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    pq.write_table(table, tmp)
    publish(tmp, path, existing="replace")


def _partitions(folder: Path, key: str) -> dict[int, Path]:
    """``{n: folder/key=n}`` of a DuckDB ``PARTITION_BY`` export."""
    if not folder.exists():
        return {}
    return {int(p.name.split("=", 1)[1]): p for p in folder.iterdir() if p.name.startswith(f"{key}=")}


def _read_partition(path: Path) -> pa.Table:

    return pq.read_table(sorted(path.glob("*.parquet")))


# -- mining --------------------------------------------------------------------------------------------
class _ShardScorer:
    """A Ray actor holding one slice of the chunk vectors: their candidate ids and vectors."""

    def __init__(self, path: str, items: np.ndarray) -> None:
        table = _read_partition(Path(path))
        hashes = table.column("content_hash").to_numpy(zero_copy_only=False).astype(str)
        # candidate id = position in the run's sorted content hashes; vectors of texts no chunk has any
        # more are skipped, as the local path's stream skips them
        idx = np.minimum(np.searchsorted(items, hashes), len(items) - 1)
        known = items[idx] == hashes
        order = np.argsort(idx[known], kind="stable")
        self.ids = idx[known][order].astype(np.int64)
        self.vectors = from_arrow_list(table.column("vec").filter(pa.array(known)))[order]

    def top_k(self, queries: np.ndarray, k: int, query_block: int, chunk_block: int) -> TopK:
        blocks = [
            (self.ids[s : s + chunk_block], self.vectors[s : s + chunk_block])
            for s in range(0, len(self.ids), chunk_block)
        ]
        return score_candidates(queries, blocks, k, query_block=query_block)


def export_mining_shards(job: ScoreJob, folder: Path, shards: int) -> dict[int, Path]:
    """The ensemble's chunk vectors as ``shards`` Parquet slices (``hash(content_hash) % shards``), in one
    streamed pass of ``job.chunk_block`` rows, each block split among one Parquet writer per shard.

    Not one DuckDB ``COPY ... PARTITION_BY``, as the other exports: under mining's memory cap
    (``hnm_db.mining.mine.bounded_buffer``, 512 MB) that ran out of memory on 1M x 384 vectors, even with
    row groups of 8,192 rows and no insertion order; a plain ``COPY`` per shard fits but scans the
    vectors once per shard. The stream holds one block at a time whatever the corpus size.
    """

    tmp = _fresh(folder)
    sql = (
        f"SELECT content_hash, vec, hash(content_hash) % {int(shards)} AS shard FROM ensemble_vectors "
        "WHERE ensemble_id = ? AND role = 'doc'"
    )
    writers: dict[int, Any] = {}
    try:
        for batch in job.db.arrow_batches(sql, [job.ensemble_id], batch_rows=job.chunk_block):
            shard = batch.column("shard").to_numpy(zero_copy_only=False)
            rows = pa.Table.from_batches([batch]).drop_columns(["shard"])
            for n in np.unique(shard).tolist():
                part = rows.filter(pa.array(shard == n))
                if n not in writers:
                    (tmp / f"shard={n}").mkdir(parents=True)
                    writers[n] = pq.ParquetWriter(tmp / f"shard={n}" / "part-0.parquet", part.schema)
                writers[n].write_table(part)
    finally:
        for writer in writers.values():
            writer.close()
    tmp.mkdir(parents=True, exist_ok=True)
    publish(tmp, folder, existing="replace")
    return _partitions(folder, "shard")


def mining_scorer(params: RayParams) -> Scorer:
    """A :data:`hnm_db.mining.scoring.Scorer` that scores on ``params.shards`` Ray actors (module docstring)."""

    def score(job: ScoreJob) -> TopK:
        ray = connect(params)
        folder = _stage_folder(params) / "mine" / uuid.uuid4().hex[:12]
        try:
            parts = export_mining_shards(job, folder, params.shards)
            actor = ray.remote(_ShardScorer)
            items = ray.put(np.asarray(job.items).astype(str))
            actors = [
                actor.options(num_cpus=params.cpus_per_actor).remote(str(p), items) for p in parts.values()
            ]
            queries = ray.put(np.ascontiguousarray(job.queries, dtype=np.float32))
            refs = [a.top_k.remote(queries, job.k, job.query_block, job.chunk_block) for a in actors]
            results = ray.get(refs)
            for a in actors:
                ray.kill(a)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return merge_shard_top_k(results, job.k)

    return score


# -- embedding -----------------------------------------------------------------------------------------
class _EmbedReplica:
    """One model replica of the Ray Data actor pool: encodes whole plan shards, writes output shards."""

    def __init__(
        self, source: str, max_seq_length: int | None, prompt: str | None, normalize: bool, **kw: Any
    ) -> None:
        set_threads(kw["threads"])
        self.model = registry.load_model(source, max_seq_length=max_seq_length)
        self.prompt, self.normalize = prompt, normalize
        self.batch_size, self.plan, self.out = kw["batch_size"], Path(kw["plan"]), Path(kw["out"])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for shard in batch["shard"].tolist():
            table = _read_partition(self.plan / f"shard={shard}").sort_by("ord")
            hashes, texts = table.column("content_hash"), table.column("text").to_pylist()
            group = table.column("batch").to_numpy()
            starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
            vecs = [
                encode_texts(
                    self.model,
                    texts[s:e],
                    prompt=self.prompt,
                    normalize=self.normalize,
                    batch_size=self.batch_size,
                )
                for s, e in zip(starts, np.r_[starts[1:], len(texts)], strict=True)
            ]
            mat = np.concatenate(vecs) if vecs else np.zeros((0, 0), np.float32)
            _write_parquet(
                pa.table({"content_hash": hashes, "vec": to_arrow_list(mat)}),
                self.out / f"shard-{shard}.parquet",
            )
            rows.append(len(texts))
        return {"shard": batch["shard"], "rows": np.asarray(rows, dtype=np.int64)}


def _write_plan(db: Store, row: registry.ModelRow, role: str, params: EmbedParams, buckets: int, plan: Path):
    """The missing texts in the local path's batches (``iter_missing``), as shards of whole batches."""
    parts, n = [], 0
    for b, (hashes, texts) in enumerate(iter_missing(db, row.model_id, role, params.batch_size)):
        parts.append(
            pa.table(
                {
                    "content_hash": pa.array(hashes, pa.string()),
                    "text": pa.array(texts, pa.string()),
                    "ord": pa.array(np.arange(n, n + len(hashes), dtype=np.int64)),
                    "batch": pa.array(np.full(len(hashes), b, dtype=np.int64)),
                    "shard": pa.array(np.full(len(hashes), b % buckets, dtype=np.int64)),
                }
            )
        )
        n += len(hashes)
    if not parts:
        return
    tmp = _fresh(plan)
    with db.registered("_hnm_plan", pa.concat_tables(parts)):
        db.execute(f"COPY _hnm_plan TO {_sql_text(str(tmp))} (FORMAT parquet, PARTITION_BY (shard))")
    publish(tmp, plan, existing="replace")


def ingest_embeddings(db: Store, model_id: str, role: str, path: Path) -> int:
    """One output shard into ``embeddings``, in one transaction; rows already there are skipped, so a
    shard ingested twice (a resumed run) adds nothing. Returns the rows added."""
    before = db.scalar("SELECT count(*) FROM embeddings WHERE model_id = ? AND role = ?", [model_id, role])
    with db.transaction():
        db.execute(
            f"""INSERT INTO embeddings (model_id, role, content_hash, vec)
                SELECT ?, ?, s.content_hash, s.vec FROM read_parquet({_sql_text(str(path))}) s
                WHERE NOT EXISTS (
                    SELECT 1 FROM embeddings e
                    WHERE e.model_id = ? AND e.role = ? AND e.content_hash = s.content_hash
                )""",
            [model_id, role, model_id, role],
        )
    after = db.scalar("SELECT count(*) FROM embeddings WHERE model_id = ? AND role = ?", [model_id, role])
    return int(after - before)


def embed_runner(params: RayParams):
    """A role runner for :func:`hnm_db.models.embed.embed`: plan, encode on replicas, ingest (module docstring)."""

    def run(db: Store, row: registry.ModelRow, role: str, params_e: EmbedParams, progress: bool) -> int:
        del progress  # embed's runner interface: Ray's own progress shows on the driver
        return embed_role(db, row, role, params_e, params)

    return run


def embed_role(db: Store, row: registry.ModelRow, role: str, params_e: EmbedParams, params: RayParams) -> int:
    """Embed the texts ``role`` lacks for model ``row`` on Ray; returns the vectors added."""
    folder = _stage_folder(params) / "embed" / row.model_id / role
    plan, out = folder / "plan", folder / "out"
    if not plan.exists():
        _write_plan(db, row, role, params_e, params.buckets, plan)
        shutil.rmtree(out, ignore_errors=True)
    shards = _partitions(plan, "shard")
    out.mkdir(parents=True, exist_ok=True)
    added = 0
    for n in sorted(shards):  # a resumed run: output shards a killed run left behind
        if (out / f"shard-{n}.parquet").exists():
            added += ingest_embeddings(db, row.model_id, role, out / f"shard-{n}.parquet")
    todo = [n for n in sorted(shards) if not (out / f"shard-{n}.parquet").exists()]
    if todo:
        ray = connect(params)
        prompt = row.query_prompt if role == "query" else row.doc_prompt
        ds = ray.data.from_items([{"shard": n} for n in todo], override_num_blocks=len(todo))
        ds = ds.map_batches(
            _EmbedReplica,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(params.replicas, len(todo))),
            num_cpus=params.cpus_per_actor,
            num_gpus=params.gpus_per_replica or None,
            fn_constructor_kwargs={
                "source": str(registry.resolve_source(row.source)),
                "max_seq_length": row.max_seq_length,
                "prompt": prompt or None,
                "normalize": row.normalize,
                "batch_size": params_e.batch_size,
                "threads": params_e.threads or params.threads_per_replica,
                "plan": str(plan),
                "out": str(out),
            },
        )
        for done in ds.iter_rows():  # ingest each shard as soon as its replica has written it
            added += ingest_embeddings(db, row.model_id, role, out / f"shard-{int(done['shard'])}.parquet")
    shutil.rmtree(folder, ignore_errors=True)
    return added


# -- cluster assignment ----------------------------------------------------------------------------------
def _assign_shards(batch: dict[str, np.ndarray], centroids: np.ndarray, out: str) -> dict[str, np.ndarray]:
    """A Ray Data task: nearest centroids of whole vector shards, each written as one output shard."""
    for path in batch["path"].tolist():
        table = _read_partition(Path(path))
        labels, dist = nearest_centroid(from_arrow_list(table.column("vec")), centroids)
        result = pa.table({"content_hash": table.column("content_hash"), "cluster": labels, "distance": dist})
        _write_parquet(result, Path(out) / f"{Path(path).name}.parquet")
    return {"path": batch["path"]}


def assignment_runner(params: RayParams):
    """An assigner for :func:`hnm_db.mining.cluster.cluster`: nearest centroids of one role on Ray."""

    def run(db: Store, ensemble_id: str, role: str, hashes: np.ndarray, centroids: np.ndarray):
        return assign_clusters(db, ensemble_id, role, hashes, centroids, params)

    return run


def assign_clusters(
    db: Store, ensemble_id: str, role: str, hashes: np.ndarray, centroids: np.ndarray, params: RayParams
) -> tuple[np.ndarray, np.ndarray]:
    """(cluster, distance) of each of ``hashes`` (the role's vectors of the ensemble), computed on Ray
    from Parquet shards; aligned with ``hashes``."""
    if len(hashes) == 0:
        return np.array([], np.int32), np.array([], np.float64)
    ray = connect(params)
    folder = _stage_folder(params) / "cluster" / uuid.uuid4().hex[:12]
    vectors, out = folder / "vectors", folder / "out"
    try:
        tmp = _fresh(vectors)
        want = pa.table({"content_hash": pa.array(hashes.astype(str))})
        with db.registered("_hnm_want", want):
            db.execute(
                f"""COPY (
                    SELECT v.content_hash, v.vec, hash(v.content_hash) % {int(params.buckets)} AS bucket
                    FROM ensemble_vectors v JOIN _hnm_want w USING (content_hash)
                    WHERE v.ensemble_id = {_sql_text(ensemble_id)} AND v.role = {_sql_text(role)}
                ) TO {_sql_text(str(tmp))} (FORMAT parquet, PARTITION_BY (bucket))"""
            )
        publish(tmp, vectors, existing="replace")
        out.mkdir(parents=True)
        shards = [str(p) for _, p in sorted(_partitions(vectors, "bucket").items())]
        ds = ray.data.from_items([{"path": p} for p in shards], override_num_blocks=len(shards))
        ds = ds.map_batches(
            _assign_shards,
            batch_size=1,
            batch_format="numpy",
            fn_kwargs={"centroids": np.asarray(centroids, dtype=np.float32), "out": str(out)},
            num_cpus=params.cpus_per_actor,
        )
        ds.materialize()
        got = db.sql(
            f"SELECT content_hash, cluster, distance FROM read_parquet({_sql_text(str(out / '*.parquet'))}) "
            "ORDER BY content_hash"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    keys = got["content_hash"].to_numpy().astype(str)
    pos = np.searchsorted(keys, hashes.astype(str))
    if len(keys) != len(np.unique(hashes)) or not np.array_equal(
        keys[np.minimum(pos, len(keys) - 1)], hashes.astype(str)
    ):
        raise RuntimeError("cluster assignment shards do not cover the vectors sent out; run again")
    return got["cluster"].to_numpy()[pos].astype(np.int32), got["distance"].to_numpy()[pos].astype(np.float64)
