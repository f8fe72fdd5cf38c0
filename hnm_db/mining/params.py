"""What a mining run is given: :class:`MiningParams` (every knob, its help and its CLI option) and the
values its fields take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hnm_db.errors import InvalidParams
from hnm_db.options import param, ratio_or_none

METHODS = ("ensemble", "bm25", "random")


CLUSTER_FILTERS = ("none", "query", "positive", "either")


SAMPLINGS = ("top", "random")


GUARDS = ("pair", "query")


#: Which chunk of a judged-relevant document is a query's positive (MiningParams.positive).
POSITIVES = ("method", "best", "first", "all", "span")


ENSEMBLE_KEY = "@ensemble"


BM25_KEY = "@bm25"


@dataclass(frozen=True)
class MiningParams:
    """What one mining run asks for; stored verbatim (sorted-key JSON) in ``mining_runs.params``."""

    method: str = param("ensemble", choices=METHODS, help="How candidates are ranked.")
    ensemble: str | None = param(
        None,
        help="Ensemble to score with (required for --method ensemble; optional for baselines, where it "
        "adds ensemble and per-model scores).",
    )
    split: str = param("train", help="Split whose queries and qrels are read.")
    num_negatives: int = param(5, help="Negatives per (query, positive) pair.")
    range_min: int = param(0, help="First rank kept (0 = hardest).")
    range_max: int = param(50, help="Ranks kept are < this.")
    cluster_filter: str = param(
        "none",
        choices=CLUSTER_FILTERS,
        help="Keep only negatives in the query's / a positive's K-means cluster.",
    )
    cluster_run: str | None = param(None, help="Cluster run id (default: the ensemble's latest).")
    max_score_ratio: float | None = param(
        0.95,
        parse=ratio_or_none,
        metavar="RATIO|none",
        help="Drop candidates above this fraction of the positive's score ('none': keep all).",
    )
    guard: str = param(
        "pair",
        choices=GUARDS,
        help="Which positive --max-score-ratio compares with: the pair's own (as NV-Retriever) or the "
        "query's lowest-scoring one (stricter with several positives).",
    )
    positive: str = param(
        "method",
        choices=POSITIVES,
        help="Which chunks of a judged document are positives: method: the one this run's method scores "
        "highest; best: the one the ensemble scores highest (the same chunks for every method); first: "
        "the first; all: every chunk; span: those overlapping a judged span by --min-overlap.",
    )
    min_overlap: float = param(
        0.5,
        help="--positive span: the share of the shorter of chunk and span that they must have in common "
        "(view chunk_qrels).",
    )
    same_document_negatives: bool = param(
        False,
        help="Let chunks of a positive document be negatives when they lie --span-gap characters or more "
        "from every judged span of the query (needs --positive span).",
    )
    span_gap: int = param(
        0, help="Characters between a same-document negative and the nearest judged span of the query."
    )
    min_relevance: int = param(
        1,
        help="Judgements with a qrels score >= this are positives (graded qrels); judged documents "
        "below it are never negatives either.",
    )
    fallback_depth: int | None = param(
        None,
        help="When the filters leave a pair short, continue down the ranking to this rank "
        "(rows marked fallback).",
    )
    mix_random: int = param(
        0, help="Also add this many seeded random negatives per pair (rows keep negative_method 'random')."
    )
    sampling: str = param(
        "top", choices=SAMPLINGS, help="Take the best ranks, or a seeded random draw from the window."
    )
    seed: int = param(0, help="Seed of every random choice.")
    name: str | None = param(None, help="Run name (default: method-ensemble-split-seedN).")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidParams(f"method: must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "ensemble" and not self.ensemble:
            raise InvalidParams("ensemble: required for method 'ensemble' (--ensemble NAME)")
        if not self.split:
            raise InvalidParams("split: a split name is required")
        _check_int("num_negatives", self.num_negatives, 1)
        _check_int("range_min", self.range_min, 0)
        _check_int("range_max", self.range_max, 1)
        if self.range_min >= self.range_max:
            raise InvalidParams(
                f"range_min: must be below range_max, got {self.range_min} >= {self.range_max}"
            )
        if self.num_negatives > self.range_max - self.range_min:
            raise InvalidParams(
                f"num_negatives: {self.num_negatives} cannot come from a window of "
                f"{self.range_max - self.range_min} ranks [{self.range_min}, {self.range_max})"
            )
        if self.cluster_filter not in CLUSTER_FILTERS:
            raise InvalidParams(
                f"cluster_filter: must be one of {', '.join(CLUSTER_FILTERS)}, got {self.cluster_filter!r}"
            )
        if (self.cluster_filter != "none" or self.cluster_run) and not self.ensemble:
            raise InvalidParams("cluster_filter: clusters belong to an ensemble; give --ensemble")
        if self.max_score_ratio is not None and not (0 < self.max_score_ratio <= 1):
            raise InvalidParams(f"max_score_ratio: must be in (0, 1] or None, got {self.max_score_ratio}")
        if self.sampling not in SAMPLINGS:
            raise InvalidParams(f"sampling: must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if self.guard not in GUARDS:
            raise InvalidParams(f"guard: must be one of {', '.join(GUARDS)}, got {self.guard!r}")
        if self.positive not in POSITIVES:
            raise InvalidParams(f"positive: must be one of {', '.join(POSITIVES)}, got {self.positive!r}")
        if self.positive == "best" and not self.ensemble:
            raise InvalidParams("positive: 'best' is the ensemble's best chunk; give --ensemble")
        if not 0 < self.min_overlap <= 1:
            raise InvalidParams(f"min_overlap: must be in (0, 1], got {self.min_overlap}")
        if self.same_document_negatives and self.positive != "span":
            raise InvalidParams(
                "same_document_negatives: needs --positive span (a negative must lie away from the judged spans)"
            )
        _check_int("span_gap", self.span_gap, 0)
        _check_int("min_relevance", self.min_relevance, 1)
        if self.fallback_depth is not None:
            _check_int("fallback_depth", self.fallback_depth, 1)
            if self.fallback_depth <= self.range_max:
                raise InvalidParams(
                    f"fallback_depth: must be deeper than range_max ({self.range_max}), got {self.fallback_depth}"
                )
        _check_int("mix_random", self.mix_random, 0)
        if self.mix_random and self.method == "random":
            raise InvalidParams(
                "mix_random: a random run is random already; mix random negatives into a hard run"
            )
        _check_int("seed", self.seed, 0)

    @property
    def depth(self) -> int:
        """The deepest rank a run may read: the fallback depth, else the end of the window."""
        return self.fallback_depth or self.range_max

    @property
    def run_name(self) -> str:
        """The run's name: ``name`` or one derived from method, ensemble, split and seed."""
        if self.name:
            return self.name
        parts = [self.method] + ([self.ensemble] if self.ensemble else []) + [self.split, f"seed{self.seed}"]
        return "-".join(parts)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParams(f"{name}: must be an integer >= {minimum}, got {value!r}")
