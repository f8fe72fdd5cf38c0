"""``hnm-db embed``: per-model vectors of chunks and queries."""

from __future__ import annotations

import click
import polars as pl

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
from hnm_db.embed import EmbedParams


@click.command("embed")
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    required=True,
    help="A registered name or built-in alias (repeat for several models).",
)
@click.option(
    "--what",
    type=click.Choice(["chunks", "queries", "all"]),
    default=default_of(EmbedParams, "what"),
    show_default=True,
    help="Which texts to embed.",
)
@click.option(
    "--batch-size",
    type=int,
    default=default_of(EmbedParams, "batch_size"),
    show_default=True,
    help="Texts per model call; each batch is committed, so an interrupted run resumes.",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="Torch CPU threads (default: all usable CPUs; with --engine ray, 1 per replica).",
)
@engine_options("replicas", "buckets")
@format_option
@pass_ctx
def embed_cmd(
    ctx: Ctx,
    models: tuple[str, ...],
    what: str,
    batch_size: int,
    threads: int | None,
    engine: str,
    address: str | None,
    stage: str | None,
    replicas: int,
    buckets: int,
    fmt: str,
) -> None:
    """Embed every chunk and/or query text that has no vector yet for each model.

    \b
    Examples:
      hnm-db embed -m minilm-l6 -m minilm-l3
      hnm-db embed -m mpnet-base --what queries --batch-size 32 --threads 2
      hnm-db embed -m minilm-l6 --engine ray --address HEAD:6379 --stage /shared/hnm-stage --replicas 4
    """
    ray = ray_params(ctx, engine, address, stage, replicas=replicas, buckets=buckets)
    with ctx.open() as db:
        summary = db.embed(
            list(models), what=what, batch_size=batch_size, threads=threads, progress=ctx.progress, ray=ray
        )
    rows = []
    for rep in summary.models:
        for note in rep.notes:
            info(ctx, note)
        for role, n in rep.encoded.items():
            rows.append(
                {
                    "model_id": rep.model_id,
                    "role": role,
                    "encoded": n,
                    "already": rep.already.get(role, 0),
                    "loaded": rep.loaded,
                    "seconds": round(rep.seconds, 2),
                }
            )
    emit_frame(pl.DataFrame(rows), fmt)


COMMANDS: list[click.Command] = [embed_cmd]
