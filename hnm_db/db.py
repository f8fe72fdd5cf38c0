"""The typed facade: :class:`Database` holds a :class:`~hnm_db.store.Store` and has one method per
``hnm-db`` command, each a thin call into the stage module that does the work (``hnm_db.open(path)``
returns one).

Layers go one way: the store at the bottom, the stage modules above it (they take a ``Store``), this
facade above them and the click CLI on top; ``just lint`` checks it (import-linter, pyproject.toml).

A command's parameters are one ``*Params`` object or its fields as keywords (:func:`_params`); defaults
live in the dataclass alone, and the CLI reads them from there too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa

from hnm_db.audit.checks import AuditParams, AuditReport, audit, check
from hnm_db.engines.ray_engine import RayParams, assignment_runner, embed_runner, mining_scorer
from hnm_db.errors import InvalidParams
from hnm_db.export.datasets import ExportParams, ExportSummary, export
from hnm_db.mining.cluster import ClusterParams, ClusterSummary, cluster, cluster_sizes
from hnm_db.mining.denoise import DenoiseParams, DenoiseSummary, denoise
from hnm_db.mining.mine import MiningSummary, list_runs, mine, show_run
from hnm_db.mining.params import MiningParams
from hnm_db.models.embed import EmbedParams, EmbedSummary, embed
from hnm_db.models.ensemble import (
    EnsembleParams,
    EnsembleSummary,
    create_ensemble,
    list_ensembles,
    read_ensemble_vectors,
    update_ensemble,
)
from hnm_db.models.registry import ModelParams, Registration, add_model, models_frame, resolve_model_path
from hnm_db.models.tune import TuneParams, TuneSummary, tune
from hnm_db.reranker.evaluate import (
    EvalParams,
    EvalSummary,
    PairedTest,
    evaluate,
    paired_test,
    per_query_values,
    result_ids,
    seed_summary,
    stored_results,
)
from hnm_db.reranker.train import TrainParams, TrainSummary, train
from hnm_db.sources import chunk, ingest
from hnm_db.sources import split as stage
from hnm_db.sources.chunk import ChunkParams, ChunkSummary
from hnm_db.sources.extract import decode_utf8, read_bytes
from hnm_db.sources.ingest import BeirParams, FilesParams, IngestSummary, TableSpec, UrlParams
from hnm_db.sources.split import SplitParams, SplitSummary
from hnm_db.store import DEFAULT_PATH, JSON_FIELD, Store

__all__ = ["DEFAULT_PATH", "JSON_FIELD", "Database", "open", "read_text"]

P = TypeVar("P")


def _params(cls: type[P], params: P | None, fields: dict[str, Any]) -> P:
    """A ``*Params`` object: the one given, or one built from its fields (not both)."""
    if params is None:
        return cls(**fields)
    if fields:
        raise InvalidParams(
            f"give a {cls.__name__} or its fields, not both (got {', '.join(sorted(fields))})"
        )
    if not isinstance(params, cls):
        raise InvalidParams(f"expected a {cls.__name__}, got {type(params).__name__}")
    return params


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


class Database:
    """An open hnm-db database whose methods mirror the CLI commands.

    Beside the commands it runs SQL (:meth:`sql`, :meth:`arrow`, :meth:`scalar`); :attr:`store` is the
    layer below, the connection and transactions that the stage functions take.
    """

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH, *, read_only: bool = False) -> None:
        self.store = Store(path, read_only=read_only)

    # -- the file and SQL -----------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self.store.path

    @property
    def read_only(self) -> bool:
        return self.store.read_only

    def sql(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run SQL and return its rows as a polars DataFrame (empty for a statement without rows)."""
        return self.store.sql(sql, params)

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table | None:
        """Run SQL and return its rows as an Arrow table (None for a statement without rows)."""
        return self.store.arrow(sql, params)

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        return self.store.scalar(sql, params)

    def read_query(self, sql: str) -> pl.DataFrame:
        """SQL that only reads (anything else is refused, running nothing): ``hnm-db sql`` without --write."""
        return self.store.read_query(sql)

    def read_arrow(self, sql: str) -> pa.Table | None:
        """:meth:`read_query` as an Arrow table."""
        return self.store.read_arrow(sql)

    def lock_settings(self) -> None:
        """Lock the connection's settings (extension install and load off) for the rest of its life."""
        self.store.lock_settings()

    def tables(self) -> list[str]:
        """Base tables of the schema, sorted."""
        return self.store.tables()

    def schema_version(self) -> int:
        """The highest migration applied to the file."""
        return self.store.schema_version()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.path!r}{', read_only=True' if self.read_only else ''})"

    # -- ingest / chunk / split ---------------------------------------------------------------------
    def ingest_beir(
        self, folder: str | os.PathLike[str], params: BeirParams | None = None, /, **fields: Any
    ) -> IngestSummary:
        """``hnm-db ingest beir``: corpus.jsonl, queries.jsonl, qrels/<split>.tsv, given a
        :class:`~hnm_db.sources.ingest.BeirParams` or its fields (``on_duplicate``, ``license``, ...)."""
        return ingest.ingest_beir(self.store, folder, _params(BeirParams, params, fields))

    def ingest_table(
        self,
        path: str | os.PathLike[str],
        spec: TableSpec | None = None,
        /,
        *,
        fmt: str | None = None,
        **fields: Any,
    ) -> IngestSummary:
        """``hnm-db ingest jsonl|csv|parquet``: which columns hold what is a
        :class:`~hnm_db.sources.ingest.TableSpec` or its fields (``kind``, ``id_column``, ...); ``fmt`` is the
        file format (default: from the suffix)."""
        return ingest.ingest_table(self.store, path, _params(ingest.TableSpec, spec, fields), fmt=fmt)

    def ingest_files(
        self,
        folder: str | os.PathLike[str],
        params: FilesParams | None = None,
        /,
        *,
        progress: bool = False,
        **fields: Any,
    ) -> IngestSummary:
        """``hnm-db ingest files``: .txt/.md/.html/.pdf under a folder -> documents, given a
        :class:`~hnm_db.sources.ingest.FilesParams` or its fields."""
        return ingest.ingest_files(
            self.store, folder, _params(FilesParams, params, fields), progress=progress
        )

    def ingest_urls(
        self,
        path: str | os.PathLike[str],
        params: UrlParams | None = None,
        /,
        *,
        progress: bool = False,
        **fields: Any,
    ) -> IngestSummary:
        """``hnm-db ingest urls``: fetch each listed URL and store its clean text, given a
        :class:`~hnm_db.sources.ingest.UrlParams` or its fields (``timeout``, ``workers``, ``strict``, ...)."""
        return ingest.ingest_urls(self.store, path, _params(UrlParams, params, fields), progress=progress)

    def chunk(
        self,
        params: ChunkParams | None = None,
        /,
        *,
        doc_ids: Sequence[str] | None = None,
        progress: bool = False,
        **fields: Any,
    ) -> ChunkSummary:
        """``hnm-db chunk``: (re)chunk documents that need it (see :mod:`hnm_db.sources.chunk`), given as a
        :class:`~hnm_db.sources.chunk.ChunkParams` or its fields; ``doc_ids`` limits it to those documents."""
        return chunk.chunk(self.store, _params(chunk.ChunkParams, params, fields), doc_ids, progress=progress)

    def split(self, params: SplitParams | None = None, /, **fields: Any) -> SplitSummary:
        """``hnm-db split``: assign queries without a source split (see :mod:`hnm_db.sources.split`), given as a
        :class:`~hnm_db.sources.split.SplitParams` or its fields."""
        return stage.split(self.store, _params(stage.SplitParams, params, fields))

    # -- models / embed / ensemble ------------------------------------------------------------------
    def resolve_model_path(self, name_or_path: str) -> str:
        """Local folder of a registered model name, a built-in alias or a model folder."""
        return resolve_model_path(self.store, name_or_path)

    def add_model(self, params: ModelParams | None = None, /, **fields: Any) -> Registration:
        """``hnm-db models add``: register a model folder or alias under a name, given as a
        :class:`~hnm_db.models.registry.ModelParams` or its fields (``name``, ``source``, prompts, ...)."""
        return add_model(self.store, **asdict(_params(ModelParams, params, fields)))

    def list_models(self) -> pl.DataFrame:
        """Registered models with vector counts (``hnm-db models list``)."""
        return models_frame(self.store)

    def embed(
        self,
        params: EmbedParams | None = None,
        /,
        *,
        progress: bool = True,
        ray: RayParams | None = None,
        **fields: Any,
    ) -> EmbedSummary:
        """``hnm-db embed``: embed the texts each model has no vector for yet, given as a
        :class:`~hnm_db.models.embed.EmbedParams` or its fields (``models``: a name or several); on Ray workers
        when ``ray`` is given (:mod:`hnm_db.engines.ray_engine`, same vectors)."""
        runner = None
        if ray is not None:
            runner = embed_runner(ray.staged_beside(self.path))
        return embed(self.store, _params(EmbedParams, params, fields), progress=progress, runner=runner)

    def create_ensemble(
        self, params: EnsembleParams | None = None, /, *, progress: bool = True, **fields: Any
    ) -> EnsembleSummary:
        """``hnm-db ensemble create``, given as a :class:`~hnm_db.models.ensemble.EnsembleParams` or its fields:
        ``members`` are "MODEL[:WEIGHT]" strings or (model, weight) pairs; ``bm25`` (a weight) makes a
        hybrid."""
        return create_ensemble(self.store, _params(EnsembleParams, params, fields), progress=progress)

    def tune_ensemble(
        self, params: TuneParams | None = None, /, *, progress: bool = True, **fields: Any
    ) -> TuneSummary:
        """``hnm-db ensemble tune``: fit member weights (BM25 included) on dev queries carved from the
        train split into a new ensemble, given as a :class:`~hnm_db.models.tune.TuneParams` or its fields."""
        return tune(self.store, _params(TuneParams, params, fields), progress=progress)

    def update_ensemble(self, name: str, *, progress: bool = True) -> EnsembleSummary:
        """``hnm-db ensemble update``: add vectors for newly embedded texts."""
        return update_ensemble(self.store, name, progress=progress)

    def list_ensembles(self) -> pl.DataFrame:
        """``hnm-db ensemble list``: ensembles with members and vector counts."""
        return list_ensembles(self.store)

    def ensemble_vectors(
        self, name: str, role: str = "doc", *, batch_rows: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Batches of (content_hashes, float32 matrix) of an ensemble's vectors for one role."""
        return read_ensemble_vectors(self.store, name, role, batch_rows=batch_rows)

    # -- cluster / mine / runs ----------------------------------------------------------------------
    def cluster(
        self,
        params: ClusterParams | None = None,
        /,
        *,
        ray: RayParams | None = None,
        **fields: Any,
    ) -> ClusterSummary:
        """``hnm-db cluster``: K-means over the ensemble's chunk vectors (:func:`hnm_db.mining.cluster.cluster`),
        given as a :class:`~hnm_db.mining.cluster.ClusterParams` or its fields; with ``ray``, the assignment to
        the fitted centroids runs on Ray workers (same result)."""
        assigner = None
        if ray is not None:
            assigner = assignment_runner(ray.staged_beside(self.path))
        return cluster(self.store, _params(ClusterParams, params, fields), assigner=assigner)

    def cluster_sizes(self, cluster_run_id: str) -> pl.DataFrame:
        """Chunk texts and queries per cluster of one cluster run (what ``hnm-db cluster`` prints)."""
        return cluster_sizes(self.store, cluster_run_id)

    def mine(
        self,
        params: MiningParams | None = None,
        /,
        *,
        replace: bool = False,
        progress: bool = False,
        ray: RayParams | None = None,
        **fields: Any,
    ) -> MiningSummary:
        """``hnm-db mine``: one mining run, given as a :class:`~hnm_db.mining.params.MiningParams` or its fields
        (the class says what each does); with ``ray``, an ensemble run scores on Ray shard actors (same
        triplets)."""
        params = _params(MiningParams, params, fields)
        scorer = None
        if ray is not None:
            if params.method != "ensemble":
                raise InvalidParams(
                    "--engine ray scores --method ensemble; bm25 and random run with --engine local"
                )
            scorer = mining_scorer(ray.staged_beside(self.path))
        return mine(self.store, params, replace=replace, progress=progress, scorer=scorer)

    def denoise(
        self,
        params: DenoiseParams | None = None,
        /,
        *,
        replace: bool = False,
        progress: bool = False,
        **fields: Any,
    ) -> DenoiseSummary:
        """``hnm-db denoise``: a new run without the negatives a cross-encoder scores above a threshold or
        a ratio of their positive, given as a :class:`~hnm_db.mining.denoise.DenoiseParams` or its fields
        (:mod:`hnm_db.mining.denoise` states the rule)."""
        return denoise(self.store, _params(DenoiseParams, params, fields), replace=replace, progress=progress)

    def runs(self) -> pl.DataFrame:
        """``hnm-db runs``: one row per mining run."""
        return list_runs(self.store)

    def run(self, name: str) -> dict[str, Any]:
        """``hnm-db runs show NAME``: a run's record with params, stats and models decoded."""
        return show_run(self.store, name)

    # -- export / audit -----------------------------------------------------------------------------
    def export(
        self, params: ExportParams | None = None, /, *, progress: bool = False, **fields: Any
    ) -> ExportSummary:
        """``hnm-db export``: write runs as a HuggingFace dataset folder, given as a
        :class:`~hnm_db.export.datasets.ExportParams` or its fields (``runs`` a name or several, ``to`` a folder)."""
        return export(self.store, _params(ExportParams, params, fields), progress=progress)

    def audit(self, params: AuditParams | None = None, /, **fields: Any) -> AuditReport:
        """``hnm-db audit``: per-run summary, overlap, changed sources (and charts), given as an
        :class:`~hnm_db.audit.checks.AuditParams` or its fields (``runs``: a name or several, none for all)."""
        return audit(self.store, _params(AuditParams, params, fields))

    def check(self) -> list[str]:
        """``hnm-db audit --check``: run sql/checks; raise ChecksFailed naming broken rules and rows."""
        return check(self.store)

    # -- train / eval -------------------------------------------------------------------------------
    def train(
        self,
        params: TrainParams | None = None,
        /,
        *,
        progress: bool = False,
        notes: list[str] | None = None,
        **fields: Any,
    ) -> TrainSummary:
        """``hnm-db train``: fine-tune a cross-encoder on a mining run, given as a
        :class:`~hnm_db.reranker.train.TrainParams` or its fields (the class says what each does); ``notes``
        receives what the user should know as it arises (see :func:`hnm_db.reranker.train.train`)."""
        if "out" in fields:
            fields["out"] = str(fields["out"])
        return train(self.store, _params(TrainParams, params, fields), progress=progress, notes=notes)

    def evaluate(
        self, params: EvalParams | None = None, /, *, progress: bool = False, **fields: Any
    ) -> EvalSummary:
        """``hnm-db eval``: re-rank the first stage's top-k, given as a :class:`~hnm_db.reranker.evaluate.EvalParams`
        or its fields (``model``: folder, training run name or ``base:ALIAS``; None = the first stage
        alone)."""
        return evaluate(self.store, _params(EvalParams, params, fields), progress=progress)

    def compare(self, split: str = "test", *, mean_over_seeds: bool = False) -> pl.DataFrame:
        """``hnm-db eval --compare``: stored results of a split (or their mean/sd over training seeds)."""
        results = stored_results(self.store, split)
        return seed_summary(results) if mean_over_seeds else results

    def paired(
        self,
        a: str | Sequence[str],
        b: str | Sequence[str],
        *,
        metric: str = "ndcg@10",
        first_stage: str = "bm25",
        k: int = 30,
        split: str = "test",
        interpolate: float | None = None,
        aggregate: str = "max",
    ) -> PairedTest:
        """``hnm-db eval --paired A --paired B``: a paired randomization test and a bootstrap 95% interval
        of A - B over the split's queries, from stored results (a system is a training run name or model
        label; several are averaged per query, e.g. one system's seeds). Computes no scores."""
        where = {"first_stage": first_stage, "k": k, "split": split, "interpolate": interpolate}
        where["aggregate"] = aggregate
        va, vb = (
            per_query_values(self.store, result_ids(self.store, _names(s), **where), metric) for s in (a, b)
        )
        return paired_test(va, vb, metric=metric)


def read_text(path: str | os.PathLike[str]) -> str:
    """A UTF-8 text file's contents, with the messages of every file hnm-db reads (missing, unreadable,
    not UTF-8: :class:`~hnm_db.errors.InputError` naming the file)."""
    return decode_utf8(read_bytes(Path(path)), str(path))


def open(path: str | os.PathLike[str] = DEFAULT_PATH, *, read_only: bool = False) -> Database:  # noqa: A001
    """Open (creating and migrating if needed) the database at ``path``."""
    return Database(path, read_only=read_only)
