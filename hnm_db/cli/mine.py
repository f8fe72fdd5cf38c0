"""``hnm-db mine`` and ``hnm-db runs``: mining runs, written and listed."""

from __future__ import annotations

import click
import polars as pl

from hnm_db.cli._common import (
    Ctx,
    default_of,
    dumps,
    emit_frame,
    emit_mapping,
    engine_options,
    format_option,
    info,
    pass_ctx,
    ray_params,
)
from hnm_db.mine import CLUSTER_FILTERS, GUARDS, METHODS, SAMPLINGS, MiningParams


def _ratio_value(value: str) -> float | None:
    if value.lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"must be a number in (0, 1] or 'none', got {value!r}") from None


@click.command("mine")
@click.option(
    "--method",
    type=click.Choice(list(METHODS)),
    default=default_of(MiningParams, "method"),
    show_default=True,
    help="How candidates are ranked.",
)
@click.option(
    "--ensemble",
    default=None,
    help="Ensemble to score with (required for --method ensemble; "
    "optional for baselines, where it adds ensemble and per-model scores).",
)
@click.option(
    "--split",
    default=default_of(MiningParams, "split"),
    show_default=True,
    help="Split whose queries and qrels are read.",
)
@click.option(
    "--num-negatives",
    default=default_of(MiningParams, "num_negatives"),
    show_default=True,
    type=int,
    help="Negatives per (query, positive) pair.",
)
@click.option(
    "--range-min",
    default=default_of(MiningParams, "range_min"),
    show_default=True,
    type=int,
    help="First rank kept (0 = hardest).",
)
@click.option(
    "--range-max",
    default=default_of(MiningParams, "range_max"),
    show_default=True,
    type=int,
    help="Ranks kept are < this.",
)
@click.option(
    "--cluster-filter",
    type=click.Choice(list(CLUSTER_FILTERS)),
    default=default_of(MiningParams, "cluster_filter"),
    show_default=True,
    help="Keep only negatives in the query's / a positive's K-means cluster.",
)
@click.option("--cluster-run", default=None, help="Cluster run id (default: the ensemble's latest).")
@click.option(
    "--max-score-ratio",
    default=str(default_of(MiningParams, "max_score_ratio")),
    show_default=True,
    help="Drop candidates above this fraction of the positive's score ('none': keep all).",
)
@click.option(
    "--guard",
    type=click.Choice(list(GUARDS)),
    default=default_of(MiningParams, "guard"),
    show_default=True,
    help="Which positive --max-score-ratio compares with: the pair's own (as NV-Retriever) or the "
    "query's lowest-scoring one (stricter with several positives).",
)
@click.option(
    "--min-relevance",
    default=default_of(MiningParams, "min_relevance"),
    show_default=True,
    type=int,
    help="Judgements with a qrels score >= this are positives (graded qrels); judged documents "
    "below it are never negatives either.",
)
@click.option(
    "--fallback-depth",
    default=None,
    type=int,
    help="When the filters leave a pair short, continue down the ranking to this rank "
    "(rows marked fallback).",
)
@click.option(
    "--mix-random",
    default=default_of(MiningParams, "mix_random"),
    show_default=True,
    type=int,
    help="Also add this many seeded random negatives per pair (rows keep negative_method 'random').",
)
@click.option(
    "--sampling",
    type=click.Choice(list(SAMPLINGS)),
    default=default_of(MiningParams, "sampling"),
    show_default=True,
    help="Take the best ranks, or a seeded random draw from the window.",
)
@click.option(
    "--seed",
    default=default_of(MiningParams, "seed"),
    show_default=True,
    type=int,
    help="Seed of every random choice.",
)
@click.option("--name", default=None, help="Run name (default: method-ensemble-split-seedN).")
@click.option("--replace", is_flag=True, help="Replace an existing run of the same name.")
@engine_options("shards")
@format_option
@pass_ctx
def mine_cmd(
    ctx: Ctx,
    method: str,
    ensemble: str | None,
    split: str,
    num_negatives: int,
    range_min: int,
    range_max: int,
    cluster_filter: str,
    cluster_run: str | None,
    max_score_ratio: str,
    guard: str,
    min_relevance: int,
    fallback_depth: int | None,
    mix_random: int,
    sampling: str,
    seed: int,
    name: str | None,
    replace: bool,
    engine: str,
    address: str | None,
    stage: str | None,
    shards: int,
    fmt: str,
) -> None:
    """Mine hard negatives (or a baseline) for one split into the triplets table.

    \b
    Examples:
      hnm-db mine --method ensemble --ensemble ens --num-negatives 3 --cluster-filter query --name ens-top
      hnm-db mine --method bm25 --ensemble ens --num-negatives 3 --seed 0 --name bm25
      hnm-db mine --method random --num-negatives 3 --sampling random --seed 1 --name random
      hnm-db mine --method ensemble --ensemble ens --engine ray --shards 8 --stage /shared/hnm-stage

    With --engine ray (method ensemble) each of --shards Ray actors scores every query against one
    slice of the chunk vectors; the rest runs here, and the triplets are the local path's.
    """
    from hnm_db.mine import mine

    if method == "ensemble" and not ensemble:
        raise click.UsageError("--method ensemble needs --ensemble NAME")
    if engine == "ray" and method != "ensemble":
        raise click.UsageError(
            "--engine ray scores --method ensemble; bm25 and random run with --engine local"
        )
    ray = ray_params(ctx, engine, address, stage, shards=shards)
    params = MiningParams(
        method=method,
        ensemble=ensemble,
        split=split,
        num_negatives=num_negatives,
        range_min=range_min,
        range_max=range_max,
        cluster_filter=cluster_filter,
        cluster_run=cluster_run,
        max_score_ratio=_ratio_value(max_score_ratio),
        guard=guard,
        min_relevance=min_relevance,
        fallback_depth=fallback_depth,
        mix_random=mix_random,
        sampling=sampling,
        seed=seed,
        name=name,
    )
    with ctx.open() as db:
        scorer = None
        if ray is not None:
            from hnm_db.engine_ray import mining_scorer

            scorer = mining_scorer(ray)
        summary = mine(db, params, replace=replace, progress=ctx.progress, scorer=scorer)
    if summary.short_queries:
        ids = ", ".join(summary.stats["short_query_ids"])
        info(
            ctx,
            f"{summary.short_queries} queries ({summary.stats['short_pairs']} query-positive pairs) got "
            f"fewer than {num_negatives} negatives (not padded): {ids}"
            f"{' ...' if summary.short_queries > 20 else ''}",
        )
    emit_mapping(
        {
            "run": summary.name,
            "run_id": summary.run_id,
            "method": summary.method,
            "split": summary.split,
            "triplets": summary.triplets,
            "queries": summary.queries,
            "queries_covered": summary.queries_covered,
            "short_queries": summary.short_queries,
            "short_pairs": summary.stats["short_pairs"],
            "fallback_negatives": summary.stats["fallback_negatives"],
            "mixed_random_negatives": summary.stats["mixed_random_negatives"],
            "dropped_false_negatives": summary.dropped_false_negatives,
            "seconds": round(summary.seconds, 3),
        },
        fmt,
    )


@click.group("runs", invoke_without_command=True)
@format_option
@click.pass_context
def runs_group(click_ctx: click.Context, fmt: str) -> None:
    """List mining runs (default) or show one.

    \b
    Examples:
      hnm-db runs
      hnm-db runs show ens-top --format json
    """
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(runs_list, fmt=fmt)


@runs_group.command("list")
@format_option
@pass_ctx
def runs_list(ctx: Ctx, fmt: str) -> None:
    """List mining runs: name, method, split, triplets, queries, created_at.

    \b
    Examples:
      hnm-db runs list
      hnm-db runs list --format csv
    """
    from hnm_db.mine import list_runs

    with ctx.open(read_only=True) as db:
        emit_frame(list_runs(db), fmt)


@runs_group.command("show")
@click.argument("name")
@format_option
@pass_ctx
def runs_show(ctx: Ctx, name: str, fmt: str) -> None:
    """Show one mining run: parameters, stats, models, counts.

    \b
    Examples:
      hnm-db runs show ens-top
      hnm-db runs show ens-top --format json
    """
    from hnm_db.mine import show_run

    with ctx.open(read_only=True) as db:
        row = show_run(db, name)
    if fmt in ("json", "ndjson"):
        click.echo(dumps(dict(sorted(row.items()))))
        return
    flat = {k: v for k, v in row.items() if k not in ("params", "stats", "models")}
    flat.update({f"params.{k}": v for k, v in sorted(row["params"].items())})
    flat.update({f"stats.{k}": v for k, v in sorted((row["stats"] or {}).items())})
    flat["models"] = row["models"]
    if fmt == "csv":
        emit_frame(pl.DataFrame({"key": list(flat), "value": [str(v) for v in flat.values()]}), fmt)
    else:
        emit_mapping(flat, fmt)


COMMANDS: list[click.Command] = [mine_cmd, runs_group]
