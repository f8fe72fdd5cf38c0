"""``hnm-db cluster``: K-means (or another algorithm) over an ensemble's chunk vectors."""

from __future__ import annotations

from typing import Any

import click

from hnm_db.cli._common import (
    Ctx,
    emit_frame,
    engine_options,
    format_option,
    info,
    params_options,
    pass_ctx,
    ray_params,
)
from hnm_db.params import ClusterParams


@click.command("cluster")
@params_options(ClusterParams)
@engine_options("buckets")
@format_option
@pass_ctx
def cluster_cmd(
    ctx: Ctx, engine: str, address: str | None, stage: str | None, buckets: int, fmt: str, **fields: Any
) -> None:
    """Cluster an ensemble's chunk vectors (K-means by default) and assign queries; print cluster sizes.

    \b
    Examples:
      hnm-db cluster --ensemble ens --k auto --seed 0
      hnm-db cluster --ensemble ens --k 20 --algorithm minibatch
      hnm-db cluster --ensemble ens --k 20 --algorithm gmm

    With --engine ray the centroids are fitted here and the assignment of every chunk and query to its
    nearest centroid runs on Ray workers.
    """
    ray = ray_params(engine, address=address, stage=stage, buckets=buckets)
    with ctx.open() as db:
        summary = db.cluster(ray=ray, **fields)
        sizes = db.cluster_sizes(summary.cluster_run_id)
    info(
        ctx,
        f"cluster run {summary.cluster_run_id}: k={summary.k} ({summary.algorithm}), "
        f"{summary.chunks} chunk texts, {summary.queries} queries, inertia {summary.inertia:.4f}, "
        f"{summary.seconds:.1f}s",
    )
    if summary.retention:
        info(
            ctx,
            "auto k, neighbour retention per candidate: "
            + ", ".join(f"k={k} {r:.3f}" for k, r in sorted(summary.retention.items())),
        )
    emit_frame(sizes, fmt)


COMMANDS: list[click.Command] = [cluster_cmd]
