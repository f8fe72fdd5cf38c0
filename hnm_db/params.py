"""The public types beside the facade: every ``*Params`` (what a command asks for), the summaries and
reports the facade returns, and the few named values their options offer.

The CLI imports from here, from :mod:`hnm_db.db` and from :mod:`hnm_db.errors` only (import-linter's
"CLI through the facade" contract), so a stage module can move without touching a command;
``hnm_db`` re-exports all of it.
"""

from __future__ import annotations

import inspect

from hnm_db.audit import AuditParams, AuditReport
from hnm_db.chunk import ChunkParams, ChunkSummary
from hnm_db.cluster import ClusterParams, ClusterSummary
from hnm_db.denoise import DenoiseParams, DenoiseSummary
from hnm_db.embed import EmbedParams, EmbedSummary, ModelReport
from hnm_db.engine_ray import ENGINES, RayParams
from hnm_db.ensemble import EnsembleParams, EnsembleSummary
from hnm_db.evaluate import EvalParams, EvalSummary, PairedTest
from hnm_db.export import LAYOUTS, ExportParams, ExportSummary
from hnm_db.ingest import POLICIES, IngestSummary, KindCounts, TableSpec, ingest_urls
from hnm_db.metrics import METRIC_NAMES
from hnm_db.mine import MiningParams, MiningSummary
from hnm_db.models import ModelParams, Registration
from hnm_db.split import SplitParams, SplitSummary
from hnm_db.train import TrainParams, TrainSummary
from hnm_db.tune import TuneParams, TuneSummary

#: ``ingest urls`` defaults: seconds per URL and URLs fetched at once (the stage function's keywords).
URL_TIMEOUT = inspect.signature(ingest_urls).parameters["timeout"].default
URL_WORKERS = inspect.signature(ingest_urls).parameters["workers"].default

__all__ = [
    "ENGINES", "LAYOUTS", "METRIC_NAMES", "POLICIES", "URL_TIMEOUT", "URL_WORKERS",
    "AuditParams", "AuditReport", "ChunkParams", "ChunkSummary", "ClusterParams", "ClusterSummary",
    "DenoiseParams", "DenoiseSummary", "EmbedParams", "EmbedSummary", "EnsembleParams", "EnsembleSummary",
    "EvalParams", "EvalSummary", "ExportParams", "ExportSummary", "IngestSummary", "KindCounts",
    "MiningParams", "MiningSummary", "ModelParams", "ModelReport", "PairedTest", "RayParams",
    "Registration", "SplitParams", "SplitSummary", "TableSpec", "TrainParams", "TrainSummary",
    "TuneParams", "TuneSummary",
]  # fmt: skip
