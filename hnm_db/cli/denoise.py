"""``hnm-db denoise``: a mining run without the negatives a cross-encoder finds relevant, as a new run."""

from __future__ import annotations

from typing import Any

import click

from hnm_db.cli._common import Ctx, emit_mapping, format_option, info, params_options, pass_ctx
from hnm_db.params import DenoiseParams


@click.command("denoise")
@params_options(DenoiseParams)
@click.option("--replace", is_flag=True, help="Replace an existing run of that name.")
@format_option
@pass_ctx
def denoise_cmd(ctx: Ctx, replace: bool, fmt: str, **fields: Any) -> None:
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
    with ctx.open() as db:
        summary = db.denoise(replace=replace, progress=ctx.progress, **fields)
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
