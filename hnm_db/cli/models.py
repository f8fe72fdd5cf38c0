"""``hnm-db models {list,add}``: the model registry."""

from __future__ import annotations

import click

from hnm_db.cli._common import Ctx, default_of, emit_frame, emit_mapping, format_option, info, pass_ctx
from hnm_db.models import add_model


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
@click.argument("name")
@click.option("--source", required=True, help="A built-in alias or a local sentence-transformers folder.")
@click.option("--query-prompt", default=None, help="Text prepended to every query before encoding.")
@click.option("--doc-prompt", default=None, help="Text prepended to every chunk before encoding.")
@click.option("--max-seq-length", type=int, default=None, help="Truncate inputs to this many tokens.")
@click.option(
    "--normalize/--no-normalize",
    default=default_of(add_model, "normalize"),
    show_default=True,
    help="Store unit-length vectors.",
)
@format_option
@pass_ctx
def models_add(
    ctx: Ctx,
    name: str,
    source: str,
    query_prompt: str | None,
    doc_prompt: str | None,
    max_seq_length: int | None,
    normalize: bool,
    fmt: str,
) -> None:
    """Register model SOURCE under NAME (loads it once to check it and learn its dimension).

    \b
    Examples:
      hnm-db models add mini --source minilm-l6 --max-seq-length 128
      hnm-db models add e5 --source ~/models/e5-small-v2 --query-prompt 'query: '
    """
    with ctx.open() as db:
        reg = db.add_model(
            name,
            source,
            query_prompt=query_prompt,
            doc_prompt=doc_prompt,
            max_seq_length=max_seq_length,
            normalize=normalize,
        )
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
