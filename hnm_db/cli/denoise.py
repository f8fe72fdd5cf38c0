"""``hnm-db denoise``: a mining run without the negatives a cross-encoder finds relevant, as a new run."""

from __future__ import annotations

import click

from hnm_db.cli._common import Ctx, default_of, emit_mapping, format_option, info, pass_ctx
from hnm_db.denoise import DenoiseParams


@click.command("denoise")
@click.option("--run", required=True, help="The mining run to denoise (it is left unchanged).")
@click.option(
    "--model",
    required=True,
    help="The cross-encoder: a model folder, a finished training run's name, or base:ALIAS|PATH (an "
    "untuned base with a fresh head seeded by --head-seed), as for `hnm-db eval --model`.",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="Drop a negative when sigmoid(logit) > T, i.e. the model's probability that it is relevant "
    "(0 < T < 1).",
)
@click.option(
    "--relative",
    type=float,
    default=None,
    help="Drop a negative when sigmoid(logit of the negative) > r x sigmoid(logit of the triplet's own "
    "positive chunk for that query); r = 1 drops negatives the model scores above their positive. "
    "Probabilities, not raw logits, are compared: a ratio of logits is undefined for logits <= 0.",
)
@click.option(
    "--refill",
    is_flag=True,
    help="Refill dropped slots from the parent's unused candidates (the ranks below those it took, then "
    "its fallback ranks), keeping only those the rule keeps; needs a parent mined with --fallback-depth.",
)
@click.option("--name", default=None, help="Name of the new run (default RUN-denoised).")
@click.option("--replace", is_flag=True, help="Replace an existing run of that name.")
@click.option(
    "--max-length",
    default=default_of(DenoiseParams, "max_length"),
    show_default=True,
    type=int,
    help="Tokens per (query, passage) pair; scores are cached per model and max length.",
)
@click.option(
    "--batch-size",
    default=default_of(DenoiseParams, "batch_size"),
    show_default=True,
    type=int,
    help="Pairs per forward pass.",
)
@click.option(
    "--head-seed",
    default=default_of(DenoiseParams, "head_seed"),
    show_default=True,
    type=int,
    help="Seed of the fresh head of a base:ALIAS model.",
)
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@format_option
@pass_ctx
def denoise_cmd(
    ctx: Ctx,
    run: str,
    model: str,
    threshold: float | None,
    relative: float | None,
    refill: bool,
    name: str | None,
    replace: bool,
    max_length: int,
    batch_size: int,
    head_seed: int,
    device: str | None,
    fmt: str,
) -> None:
    """Write a new mining run without the negatives a cross-encoder scores as relevant (RocketQA's
    denoising), with exactly one rule: --threshold T or --relative r.

    The new run records its parent run, the model's fingerprint and the rule in its params (`hnm-db runs
    show NAME`). Scores are cached in eval_scores, shared with `hnm-db eval`: no pair is scored twice.
    `hnm-db audit` lists what was dropped, with texts (view denoised_negatives).

    \b
    Examples:
      hnm-db denoise --run ens-top --model models/ce-ens --threshold 0.9
      hnm-db denoise --run ens-top --model models/ce-ens --relative 1.0 --refill --name ens-top-clean
    """
    if (threshold is None) == (relative is None):
        raise click.UsageError("give exactly one of --threshold T and --relative r")
    with ctx.open() as db:
        summary = db.denoise(
            run,
            model=model,
            threshold=threshold,
            relative=relative,
            refill=refill,
            name=name,
            max_length=max_length,
            batch_size=batch_size,
            head_seed=head_seed,
            device=device,
            replace=replace,
            progress=ctx.progress,
        )
    info(
        ctx,
        f"run {summary.name}: {summary.triplets} triplets from {summary.parent_triplets} of {summary.parent} "
        f"({summary.dropped} dropped, {summary.refilled} refilled); {summary.scored_pairs} pairs scored, "
        f"{summary.cached_pairs} read from the cache",
    )
    emit_mapping(
        {
            "run": summary.name,
            "run_id": summary.run_id,
            "parent": summary.parent,
            "parent_triplets": summary.parent_triplets,
            "triplets": summary.triplets,
            "dropped": summary.dropped,
            "refilled": summary.refilled,
            "short_pairs": summary.short_pairs,
            "scored_pairs": summary.scored_pairs,
            "cached_pairs": summary.cached_pairs,
            "seconds": round(summary.seconds, 3),
        },
        fmt,
    )


COMMANDS: list[click.Command] = [denoise_cmd]
