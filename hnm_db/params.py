"""The public types beside the facade: every ``*Params`` (what a command asks for), the summaries and
reports the facade returns, and the few named values their options offer.

The CLI imports from here, from :mod:`hnm_db.db` and from :mod:`hnm_db.errors` only (import-linter's
"CLI through the facade" contract), so a stage module can move without touching a command;
``hnm_db`` re-exports all of it.
"""

from __future__ import annotations

from hnm_db.audit.checks import AuditParams, AuditReport
from hnm_db.engines.ray_engine import ENGINES, RayParams
from hnm_db.export.datasets import LAYOUTS, ExportParams, ExportSummary
from hnm_db.mining.cluster import ClusterParams, ClusterSummary
from hnm_db.mining.denoise import DenoiseParams, DenoiseSummary
from hnm_db.mining.mine import MiningSummary
from hnm_db.mining.params import MiningParams
from hnm_db.models.embed import EmbedParams, EmbedSummary, ModelReport
from hnm_db.models.ensemble import EnsembleParams, EnsembleSummary
from hnm_db.models.registry import ModelParams, Registration
from hnm_db.models.tune import TuneParams, TuneSummary
from hnm_db.reranker.evaluate import EvalParams, EvalSummary, PairedTest
from hnm_db.reranker.train import TrainParams, TrainSummary
from hnm_db.retrieval.metrics import METRIC_NAMES, PASSAGE_METRIC_NAMES
from hnm_db.sources.chunk import ChunkParams, ChunkSummary
from hnm_db.sources.ingest import (
    POLICIES,
    BeirParams,
    FilesParams,
    IngestSummary,
    KindCounts,
    TableSpec,
    UrlParams,
)
from hnm_db.sources.split import SplitParams, SplitSummary

__all__ = [
    "ENGINES", "LAYOUTS", "METRIC_NAMES", "PASSAGE_METRIC_NAMES", "POLICIES",
    "AuditParams", "AuditReport", "BeirParams", "ChunkParams", "ChunkSummary", "ClusterParams", "ClusterSummary",
    "DenoiseParams", "DenoiseSummary", "EmbedParams", "EmbedSummary", "EnsembleParams", "EnsembleSummary",
    "EvalParams", "EvalSummary", "ExportParams", "ExportSummary", "FilesParams", "IngestSummary", "KindCounts",
    "MiningParams", "MiningSummary", "ModelParams", "ModelReport", "PairedTest", "RayParams",
    "Registration", "SplitParams", "SplitSummary", "TableSpec", "TrainParams", "TrainSummary",
    "TuneParams", "TuneSummary", "UrlParams",
]  # fmt: skip
