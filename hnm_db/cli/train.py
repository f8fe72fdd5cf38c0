"""``hnm-db train``: fine-tune a cross-encoder on a mining run."""

from __future__ import annotations

from typing import Any

import click

from hnm_db.cli._common import Ctx, emit_mapping, format_option, info, params_options, pass_ctx
from hnm_db.params import TrainParams


@click.command("train")
@params_options(TrainParams)
@format_option
@pass_ctx
def train_cmd(ctx: Ctx, fmt: str, **fields: Any) -> None:
    """Fine-tune a cross-encoder (fresh one-logit head on --base) on a mining run, with
    sentence-transformers' CrossEncoderTrainer.

    The run, its parameters, seed, loss curve, dev curve, output folder and model fingerprint are
    stored in training_runs. An interrupted run is left with status 'failed'; the same command again
    resumes from its newest complete checkpoint (one that a kill left half written is discarded, with a
    note). Unfinished trainings of other settings left beside --out are listed in a note.

    \b
    Examples:
      hnm-db train --run ens-top --out models/ce-ens --max-steps 200
      hnm-db train --run ens-top --out models/ce-lce --loss lce --group-size 8 --distill-steps 50
      hnm-db train --run bm25 --base minilm-l6 --loss bce --epochs 2 --seed 1 --out models/ce-bm25
    """
    notes: list[str] = []
    try:
        with ctx.open() as db:
            summary = db.train(progress=ctx.progress, notes=notes, **fields)
    finally:  # a failed run's notes too (a discarded checkpoint explains a resume that went back)
        for note in notes:
            info(ctx, f"note: {note}")
    info(
        ctx,
        f"trained {summary.name}: {summary.steps} steps in {summary.seconds:.1f}s -> {summary.output_path}",
    )
    emit_mapping(
        {
            "name": summary.name,
            "training_run_id": summary.training_run_id,
            "output_path": summary.output_path,
            "fingerprint": summary.fingerprint,
            "steps": summary.steps,
            "examples": summary.examples,
            "final_loss": summary.final_loss,
            "best_dev_ndcg@10": summary.stats.get("best_dev_ndcg@10"),
            "best_step": summary.stats.get("best_step"),
        },
        fmt,
    )


COMMANDS: list[click.Command] = [train_cmd]
