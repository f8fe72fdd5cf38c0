"""``hnm-db chunk``: cut documents into chunks."""

from __future__ import annotations

from typing import Any

import click

from hnm_db.cli._common import Ctx, emit_mapping, format_option, params_options, pass_ctx
from hnm_db.params import ChunkParams


@click.command("chunk")
@params_options(ChunkParams)
@click.option("--doc-id", "doc_ids", multiple=True, help="Chunk only these documents (repeatable).")
@format_option
@pass_ctx
def chunk_cmd(ctx: Ctx, doc_ids: tuple[str, ...], fmt: str, **fields: Any) -> None:
    """Cut documents into chunks, the units that are embedded and mined.

    Only documents without chunks, whose text changed, or chunked with other parameters are (re)chunked;
    their old chunks are replaced in one transaction. A document too short to split is one chunk.
    With sentences, a sentence longer than --size is a chunk of its own (characters) or is split into
    token windows (with --model, so every chunk fits the model).

    \b
    Examples:
      hnm-db chunk --strategy whole
      hnm-db chunk --strategy tokens --model minilm-l6 --size 128 --overlap 16
      hnm-db chunk --strategy tokens --model minilm-l6 --size max --overlap 32
      hnm-db chunk --strategy sentences --size 800
    """
    with ctx.open() as db:
        summary = db.chunk(doc_ids=list(doc_ids) or None, progress=ctx.progress, **fields)
    emit_mapping(summary.as_dict(), fmt)


COMMANDS: list[click.Command] = [chunk_cmd]
