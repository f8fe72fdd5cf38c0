"""``hnm-db ensemble {create,update,tune,list}``: ensemble vectors, hybrids and tuned weights."""

from __future__ import annotations

import click

from hnm_db.cli._common import Ctx, default_of, emit_frame, emit_mapping, format_option, info, pass_ctx
from hnm_db.ensemble import EnsembleParams
from hnm_db.tune import TuneParams


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
@click.option(
    "--bm25",
    "bm25",
    type=float,
    default=default_of(EnsembleParams, "bm25"),
    help="Make a hybrid: add W x BM25 (min-max normalised per query over the union of the dense and "
    "BM25 top lists) to the dense score, whose weights sum to 1.",
)
@click.option(
    "--bm25-k1", type=float, default=default_of(EnsembleParams, "bm25_k1"), show_default=True, help="BM25 k1."
)
@click.option(
    "--bm25-b", type=float, default=default_of(EnsembleParams, "bm25_b"), show_default=True, help="BM25 b."
)
@click.option(
    "--depth",
    type=int,
    default=default_of(EnsembleParams, "depth"),
    show_default=True,
    help="Hybrid: length of the dense and of the BM25 candidate list (deeper when more are needed).",
)
@format_option
@pass_ctx
def ensemble_create(
    ctx: Ctx,
    name: str,
    members: tuple[str, ...],
    replace: bool,
    bm25: float | None,
    bm25_k1: float,
    bm25_b: float,
    depth: int,
    fmt: str,
) -> None:
    """Create ensemble NAME (re-running with the same members adds vectors for new texts only).

    \b
    Examples:
      hnm-db ensemble create ens -m minilm-l6 -m minilm-l3 -m mpnet-base
      hnm-db ensemble create ens -m minilm-l6:2 -m mpnet-base:1 --replace
      hnm-db ensemble create hyb -m minilm-l6 -m minilm-l3 -m mpnet-base --bm25 0.3
    """
    with ctx.open() as db:
        summary = db.create_ensemble(
            name,
            list(members),
            replace=replace,
            bm25=bm25,
            bm25_k1=bm25_k1,
            bm25_b=bm25_b,
            depth=depth,
            progress=ctx.progress,
        )
    _emit_summary(summary, fmt)


@ensemble_group.command("tune")
@click.argument("name")
@click.option("--out", "out", default=None, help="Name of the tuned ensemble [default: NAME-tuned].")
@click.option(
    "--split",
    default=default_of(TuneParams, "split"),
    show_default=True,
    help="Split the dev queries are carved from (never test).",
)
@click.option(
    "--dev-ratio",
    type=float,
    default=default_of(TuneParams, "dev_ratio"),
    show_default=True,
    help="Share of the split's judged queries drawn as dev queries.",
)
@click.option(
    "--seed",
    type=int,
    default=default_of(TuneParams, "seed"),
    show_default=True,
    help="Seed of the dev draw and the search.",
)
@click.option(
    "--samples",
    type=int,
    default=default_of(TuneParams, "samples"),
    show_default=True,
    help="Weight vectors drawn uniformly from the simplex before refining.",
)
@click.option(
    "--rounds",
    type=int,
    default=default_of(TuneParams, "rounds"),
    show_default=True,
    help="Rounds of coordinate refinement (step factors 2, 2^(1/2), 2^(1/4), ...).",
)
@click.option(
    "--depth",
    type=int,
    default=default_of(TuneParams, "depth"),
    show_default=True,
    help="Each member's (and BM25's) top list that makes up a dev query's candidate pool.",
)
@click.option("--replace", is_flag=True, help="Rebuild the tuned ensemble if it exists with other weights.")
@format_option
@pass_ctx
def ensemble_tune(
    ctx: Ctx,
    name: str,
    out: str | None,
    split: str,
    dev_ratio: float,
    seed: int,
    samples: int,
    rounds: int,
    depth: int,
    replace: bool,
    fmt: str,
) -> None:
    """Fit the weights of ensemble NAME (BM25 included) on dev queries carved from the train split,
    maximising nDCG@10, into a new ensemble; NAME is left as it was.

    \b
    Examples:
      hnm-db ensemble tune hyb
      hnm-db ensemble tune hyb --out hyb-t1 --seed 1 --dev-ratio 0.3
    """
    with ctx.open() as db:
        summary = db.tune_ensemble(
            name,
            name=out,
            split=split,
            dev_ratio=dev_ratio,
            seed=seed,
            samples=samples,
            rounds=rounds,
            depth=depth,
            replace=replace,
            progress=ctx.progress,
        )
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
