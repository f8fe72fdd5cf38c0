"""``hnm-db embed``: per-model vectors of chunks and queries."""

from __future__ import annotations

from typing import Any

import click
import polars as pl

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
from hnm_db.params import EmbedParams


@click.command("embed")
@params_options(EmbedParams)
@engine_options("replicas", "buckets")
@format_option
@pass_ctx
def embed_cmd(
    ctx: Ctx,
    engine: str,
    address: str | None,
    stage: str | None,
    replicas: int,
    buckets: int,
    fmt: str,
    **fields: Any,
) -> None:
    """Embed every chunk and/or query text that has no vector yet for each model.

    \b
    Examples:
      hnm-db embed -m minilm-l6 -m minilm-l3
      hnm-db embed -m mpnet-base --what queries --batch-size 32 --threads 2
      hnm-db embed -m minilm-l6 --engine ray --address HEAD:6379 --stage /shared/hnm-stage --replicas 4
    """
    ray = ray_params(engine, address=address, stage=stage, replicas=replicas, buckets=buckets)
    with ctx.open() as db:
        summary = db.embed(progress=ctx.progress, ray=ray, **fields)
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
