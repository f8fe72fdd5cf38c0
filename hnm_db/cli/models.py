"""``hnm-db models {list,add}``: the model registry."""

from __future__ import annotations

from typing import Any

import click

from hnm_db.cli._common import Ctx, emit_frame, emit_mapping, format_option, info, params_options, pass_ctx
from hnm_db.params import ModelParams


@click.group("models")
def models_group() -> None:
    """Register embedding models and list them (built-in aliases: minilm-l6, minilm-l3, mpnet-base).

    \b
    Examples:
      hnm-db models add e5 --source ~/models/e5-small-v2 --query-prompt 'query: ' --doc-prompt 'passage: '
      hnm-db models list
    """


@models_group.command("list")
@format_option
@pass_ctx
def models_list(ctx: Ctx, fmt: str) -> None:
    """List registered models, newest first, with how many vectors each has.

    \b
    Examples:
      hnm-db models list
      hnm-db models list --format json
    """
    with ctx.open(read_only=True) as db:
        df = db.list_models()
    emit_frame(df, fmt)


@models_group.command("add")
@params_options(ModelParams)
@format_option
@pass_ctx
def models_add(ctx: Ctx, fmt: str, **fields: Any) -> None:
    """Register model SOURCE under NAME (loads it once to check it and learn its dimension).

    \b
    Examples:
      hnm-db models add mini --source minilm-l6 --max-seq-length 128
      hnm-db models add e5 --source ~/models/e5-small-v2 --query-prompt 'query: '
    """
    with ctx.open() as db:
        reg = db.add_model(**fields)
    row = reg.row
    if not reg.created:
        info(ctx, f"identical model already registered as {row.model_id}")
    emit_mapping(
        {
            "model_id": row.model_id,
            "name": row.name,
            "dim": row.dim,
            "max_seq_length": row.max_seq_length,
            "pooling": row.pooling,
            "fingerprint": row.fingerprint,
            "created": reg.created,
        },
        fmt,
    )


COMMANDS: list[click.Command] = [models_group]
