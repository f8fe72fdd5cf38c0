"""``hnm-db ensemble {create,update,list}``: ensemble vectors."""

from __future__ import annotations

import click

from hnm_db.cli._common import Ctx, emit_frame, emit_mapping, format_option, pass_ctx


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


COMMANDS: list[click.Command] = [ensemble_group]
