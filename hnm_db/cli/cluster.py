"""``hnm-db cluster``: K-means (or another algorithm) over an ensemble's chunk vectors."""

from __future__ import annotations

import click

from hnm_db.cli._common import (
    Ctx,
    default_of,
    emit_frame,
    engine_options,
    format_option,
    info,
    pass_ctx,
    ray_params,
)
from hnm_db.cluster import ALGORITHMS, ClusterParams


def _k_value(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"must be a positive integer or 'auto', got {value!r}") from None


@click.command("cluster")
@click.option("--ensemble", required=True, help="Ensemble whose chunk vectors are clustered.")
@click.option(
    "--k",
    "k",
    default=default_of(ClusterParams, "k"),
    show_default=True,
    help="Number of clusters, or 'auto': the largest k keeping >= 2/3 of each chunk's 10 nearest "
    "neighbours in its cluster (on a sample).",
)
@click.option(
    "--seed",
    default=default_of(ClusterParams, "seed"),
    show_default=True,
    type=int,
    help="Seed of K-means (same seed, same clusters).",
)
@click.option(
    "--algorithm",
    type=click.Choice(list(ALGORITHMS)),
    default=default_of(ClusterParams, "algorithm"),
    show_default=True,
    help="kmeans, minibatch (MiniBatchKMeans), gmm (Gaussian mixture, diagonal covariances) or "
    "agglomerative (Ward; fitted on a seeded sample of at most 10,000 chunk texts, the rest go to the "
    "nearest cluster mean); auto is kmeans, or minibatch above 50,000 chunk texts.",
)
@engine_options("buckets")
@format_option
@pass_ctx
def cluster_cmd(
    ctx: Ctx,
    ensemble: str,
    k: str,
    seed: int,
    algorithm: str,
    engine: str,
    address: str | None,
    stage: str | None,
    buckets: int,
    fmt: str,
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
    from hnm_db.cluster import cluster, cluster_sizes

    params = ClusterParams(ensemble=ensemble, k=_k_value(k), seed=seed, algorithm=algorithm)
    ray = ray_params(ctx, engine, address, stage, buckets=buckets)
    assigner = None
    if ray is not None:
        from hnm_db.engine_ray import assignment_runner

        assigner = assignment_runner(ray)
    with ctx.open() as db:
        summary = cluster(db, params, progress=ctx.progress, assigner=assigner)
        sizes = cluster_sizes(db, summary.cluster_run_id)
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
