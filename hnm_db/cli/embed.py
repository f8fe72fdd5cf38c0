"""hnm-db commands of the embedding stage: ``models {list,add}``, ``embed``, ``ensemble {create,list,update}``."""

from __future__ import annotations

import click
import polars as pl

from hnm_db.cli._common import Ctx, emit_frame, emit_mapping, format_option, info, pass_ctx


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
    "--normalize/--no-normalize", default=True, show_default=True, help="Store unit-length vectors."
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
    default="all",
    show_default=True,
    help="Which texts to embed.",
)
@click.option(
    "--batch-size",
    type=int,
    default=64,
    show_default=True,
    help="Texts per model call; each batch is committed, so an interrupted run resumes.",
)
@click.option("--threads", type=int, default=None, help="Torch CPU threads (default: all usable CPUs).")
@format_option
@pass_ctx
def embed_cmd(
    ctx: Ctx, models: tuple[str, ...], what: str, batch_size: int, threads: int | None, fmt: str
) -> None:
    """Embed every chunk and/or query text that has no vector yet for each model.

    \b
    Examples:
      hnm-db embed -m minilm-l6 -m minilm-l3
      hnm-db embed -m mpnet-base --what queries --batch-size 32 --threads 2
    """
    with ctx.open() as db:
        summary = db.embed(
            list(models), what=what, batch_size=batch_size, threads=threads, progress=ctx.progress
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


@click.group("ensemble")
def ensemble_group() -> None:
    """Build ensemble vectors whose dot product is the weighted mean of member cosines.

    \b
    Examples:
      hnm-db ensemble create ens -m minilm-l6 -m minilm-l3
      hnm-db ensemble list
    """


def _emit_summary(summary, fmt: str) -> None:
    emit_mapping(
        {
            "ensemble_id": summary.ensemble_id,
            "members": [{"model_id": m.model_id, "weight": round(m.weight, 6)} for m in summary.members],
            "dim": summary.dim,
            "added_doc": summary.added.get("doc", 0),
            "added_query": summary.added.get("query", 0),
        },
        fmt,
    )


@ensemble_group.command("create")
@click.argument("name")
@click.option(
    "--model",
    "-m",
    "members",
    multiple=True,
    required=True,
    help="MODEL or MODEL:WEIGHT (weights default equal and are normalised to sum 1).",
)
@click.option("--replace", is_flag=True, help="Rebuild if NAME exists with other members.")
@format_option
@pass_ctx
def ensemble_create(ctx: Ctx, name: str, members: tuple[str, ...], replace: bool, fmt: str) -> None:
    """Create ensemble NAME (re-running with the same members adds vectors for new texts only).

    \b
    Examples:
      hnm-db ensemble create ens -m minilm-l6 -m minilm-l3 -m mpnet-base
      hnm-db ensemble create ens -m minilm-l6:2 -m mpnet-base:1 --replace
    """
    with ctx.open() as db:
        summary = db.create_ensemble(name, list(members), replace=replace, progress=ctx.progress)
    _emit_summary(summary, fmt)


@ensemble_group.command("update")
@click.argument("name")
@format_option
@pass_ctx
def ensemble_update(ctx: Ctx, name: str, fmt: str) -> None:
    """Add vectors for texts embedded since ensemble NAME was built.

    \b
    Examples:
      hnm-db ensemble update ens
    """
    with ctx.open() as db:
        summary = db.update_ensemble(name, progress=ctx.progress)
    _emit_summary(summary, fmt)


@ensemble_group.command("list")
@format_option
@pass_ctx
def ensemble_list(ctx: Ctx, fmt: str) -> None:
    """List ensembles with their members, dimension and vector counts.

    \b
    Examples:
      hnm-db ensemble list
      hnm-db ensemble list --format ndjson
    """
    with ctx.open(read_only=True) as db:
        df = db.list_ensembles()
    emit_frame(df, fmt, json_columns=["members"])


COMMANDS: list[click.Command] = [models_group, embed_cmd, ensemble_group]
