"""``hnm-db ensemble {create,update,tune,list}``: ensemble vectors, hybrids and tuned weights."""

from __future__ import annotations

from typing import Any

import click

from hnm_db.cli._common import Ctx, emit_frame, emit_mapping, format_option, info, params_options, pass_ctx
from hnm_db.params import EnsembleParams, TuneParams


@click.group("ensemble")
def ensemble_group() -> None:
    """Build ensemble vectors whose dot product is the weighted mean of member cosines.

    \b
    Examples:
      hnm-db ensemble create ens -m minilm-l6 -m minilm-l3
      hnm-db ensemble create hyb -m minilm-l6 -m minilm-l3 --bm25 0.3
      hnm-db ensemble tune hyb
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
@params_options(EnsembleParams)
@format_option
@pass_ctx
def ensemble_create(ctx: Ctx, fmt: str, **fields: Any) -> None:
    """Create ensemble NAME (re-running with the same members adds vectors for new texts only).

    \b
    Examples:
      hnm-db ensemble create ens -m minilm-l6 -m minilm-l3 -m mpnet-base
      hnm-db ensemble create ens -m minilm-l6:2 -m mpnet-base:1 --replace
      hnm-db ensemble create hyb -m minilm-l6 -m minilm-l3 -m mpnet-base --bm25 0.3
    """
    with ctx.open() as db:
        summary = db.create_ensemble(progress=ctx.progress, **fields)
    _emit_summary(summary, fmt)


@ensemble_group.command("tune")
@params_options(TuneParams)
@format_option
@pass_ctx
def ensemble_tune(ctx: Ctx, fmt: str, **fields: Any) -> None:
    """Fit the weights of ensemble NAME (BM25 included) on dev queries carved from the train split,
    maximising nDCG@10, into a new ensemble; NAME is left as it was.

    \b
    Examples:
      hnm-db ensemble tune hyb
      hnm-db ensemble tune hyb --out hyb-t1 --seed 1 --dev-ratio 0.3
    """
    with ctx.open() as db:
        summary = db.tune_ensemble(progress=ctx.progress, **fields)
    info(
        ctx,
        f"tuned {summary.source} on {summary.dev_queries} dev queries ({summary.trials} weight vectors): "
        f"nDCG@10 {summary.source_dev_score:.4f} -> {summary.dev_score:.4f}",
    )
    emit_mapping(
        {
            "name": summary.name,
            "ensemble_id": summary.ensemble_id,
            "tuned_from": summary.source,
            "dev_queries": summary.dev_queries,
            "weights": {k: round(v, 6) for k, v in summary.weights.items()},
            "dev_ndcg10": summary.dev_score,
            "source_dev_ndcg10": summary.source_dev_score,
        },
        fmt,
    )


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
    """List ensembles, tuned and untuned side by side: weights (BM25 included), what a tuned one was tuned
    from and its dev nDCG@10 beside the source's, dimension and vector counts.

    \b
    Examples:
      hnm-db ensemble list
      hnm-db ensemble list --format ndjson
    """
    with ctx.open(read_only=True) as db:
        df = db.list_ensembles()
    emit_frame(df, fmt, json_columns=["members", "bm25"])


COMMANDS: list[click.Command] = [ensemble_group]
