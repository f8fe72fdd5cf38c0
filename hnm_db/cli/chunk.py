"""``hnm-db chunk``: cut documents into chunks."""

from __future__ import annotations

import click

from hnm_db.chunk import STRATEGIES, ChunkParams
from hnm_db.cli._common import Ctx, default_of, emit_mapping, format_option, pass_ctx


class SizeType(click.ParamType):
    """A positive whole number, or 'max' (the model's whole capacity: stored as no size, the default)."""

    name = "N|max"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if value is None or value == MAX or isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither a whole number nor 'max'", param, ctx)


#: ``--size max``: as many tokens as the model takes.
MAX = "max"


@click.command("chunk")
@click.option(
    "--strategy",
    type=click.Choice(list(STRATEGIES)),
    default=default_of(ChunkParams, "strategy"),
    show_default=True,
    help="whole: one chunk per document; tokens: token windows of --model's tokenizer; "
    "sentences: whole sentences packed up to --size.",
)
@click.option(
    "--size",
    type=SizeType(),
    default=None,
    help="Chunk size: tokens of the chunk text (title included, special tokens not) for --strategy tokens "
    "and for sentences with --model; characters for sentences without --model. With --model it is at "
    "most the model's max_seq_length minus its special tokens, which is also the default and what "
    "'--size max' asks for: 254 for minilm-l6, 126 for minilm-l3, 382 for mpnet-base (max_seq_length "
    "256, 128, 384, minus 2). Default without --model: 1000 characters.",
)
@click.option(
    "--overlap",
    type=int,
    default=default_of(ChunkParams, "overlap"),
    show_default=True,
    help="Tokens shared by consecutive windows (tokens), or sentences carried over (sentences).",
)
@click.option(
    "--model",
    default=None,
    help="Model name, built-in alias or folder whose tokenizer counts tokens (required by tokens; with "
    "sentences it makes --size count tokens and splits an overlong sentence into token windows).",
)
@click.option(
    "--title/--no-title",
    default=True,
    show_default=True,
    help="Prepend the document title and a newline to each chunk (when it takes at most half of --size).",
)
@click.option("--doc-id", "doc_ids", multiple=True, help="Chunk only these documents (repeatable).")
@format_option
@pass_ctx
def chunk_cmd(
    ctx: Ctx,
    strategy: str,
    size: int | str | None,
    overlap: int,
    model: str | None,
    title: bool,
    doc_ids: tuple[str, ...],
    fmt: str,
) -> None:
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
    from hnm_db.chunk import chunk

    if size == MAX:
        if not model:
            raise click.UsageError("--size max needs --model (the model's capacity is the size)")
        size = None
    params = ChunkParams(strategy=strategy, size=size, overlap=overlap, model=model, title=title)
    with ctx.open() as db:
        summary = chunk(db, params, list(doc_ids) or None, progress=ctx.progress)
    emit_mapping(summary.as_dict(), fmt)


COMMANDS: list[click.Command] = [chunk_cmd]
