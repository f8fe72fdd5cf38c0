"""``hnm-db mine`` and ``hnm-db runs``: mining runs, written and listed."""

from __future__ import annotations

from typing import Any

import click
import polars as pl

from hnm_db.cli._common import (
    Ctx,
    dumps,
    emit_frame,
    emit_mapping,
    engine_options,
    format_option,
    info,
    params_options,
    pass_ctx,
    ray_params,
)
from hnm_db.params import MiningParams


@click.command("mine")
@params_options(MiningParams)
@click.option("--replace", is_flag=True, help="Replace an existing run of the same name.")
@engine_options("shards")
@format_option
@pass_ctx
def mine_cmd(
    ctx: Ctx,
    replace: bool,
    engine: str,
    address: str | None,
    stage: str | None,
    shards: int,
    fmt: str,
    **fields: Any,
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
    ray = ray_params(engine, address=address, stage=stage, shards=shards)
    with ctx.open() as db:
        summary = db.mine(replace=replace, progress=ctx.progress, ray=ray, **fields)
    if summary.short_queries:
        ids = ", ".join(summary.stats["short_query_ids"])
        info(
            ctx,
            f"{summary.short_queries} queries ({summary.stats['short_pairs']} query-positive pairs) got "
            f"fewer than {fields['num_negatives']} negatives (not padded): {ids}"
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
    with ctx.open(read_only=True) as db:
        emit_frame(db.runs(), fmt)


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
    with ctx.open(read_only=True) as db:
        row = db.run(name)
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
