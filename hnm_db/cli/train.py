"""``hnm-db train``: fine-tune a cross-encoder on a mining run."""

from __future__ import annotations

import click

from hnm_db.cli._common import Ctx, default_of, emit_mapping, format_option, info, pass_ctx
from hnm_db.train import LOSSES, TrainParams


@click.command("train")
@click.option("--run", "run", required=True, help="Mining run whose triplets to train on.")
@click.option(
    "--base",
    default=default_of(TrainParams, "base"),
    show_default=True,
    help="Base model: alias, registered name or folder.",
)
@click.option(
    "--loss",
    type=click.Choice(list(LOSSES)),
    default=default_of(TrainParams, "loss"),
    show_default=True,
    help="lce: softmax over the group; bce: labelled pairs, pos_weight = negatives; lambda, listnet: the "
    "group as a ranked list; mnrl: group + in-batch negatives; triplet: max(0, margin - s(q,p) + s(q,n)).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="Output folder for the model (must not exist; parent folders are created).",
)
@click.option(
    "--group-size",
    default=default_of(TrainParams, "group_size"),
    show_default=True,
    type=int,
    help="Passages per training group: 1 positive + GROUP_SIZE-1 negatives, re-drawn each epoch.",
)
@click.option(
    "--batch-size",
    default=default_of(TrainParams, "batch_size"),
    show_default=True,
    type=int,
    help="Groups per step.",
)
@click.option(
    "--epochs",
    default=default_of(TrainParams, "epochs"),
    show_default=True,
    type=int,
    help="Passes over the run's (query, positive) pairs (ignored when --max-steps is given).",
)
@click.option(
    "--max-steps", type=int, help="The budget: exactly this many optimizer steps, whatever the run's size."
)
@click.option(
    "--max-length",
    default=default_of(TrainParams, "max_length"),
    show_default=True,
    type=int,
    help="Tokens per (query, passage) pair.",
)
@click.option(
    "--lr",
    default=default_of(TrainParams, "lr"),
    show_default=True,
    type=float,
    help="Learning rate of the transformer body.",
)
@click.option(
    "--head-lr",
    default=default_of(TrainParams, "head_lr"),
    show_default=True,
    type=float,
    help="Learning rate of the fresh head.",
)
@click.option(
    "--seed",
    default=default_of(TrainParams, "seed"),
    show_default=True,
    type=int,
    help="Seed of the head, the group draws and the Trainer (same seed, same model).",
)
@click.option(
    "--margin",
    default=default_of(TrainParams, "margin"),
    show_default=True,
    type=float,
    help="Margin of the triplet loss.",
)
@click.option(
    "--warmup-ratio",
    default=default_of(TrainParams, "warmup_ratio"),
    show_default=True,
    type=float,
    help="Share of steps of LR warm-up.",
)
@click.option(
    "--warmup-easy-steps",
    default=default_of(TrainParams, "warmup_easy_steps"),
    show_default=True,
    type=int,
    help="First train this many steps on groups of random (easy) negatives.",
)
@click.option(
    "--distill-steps",
    default=default_of(TrainParams, "distill_steps"),
    show_default=True,
    type=int,
    help="First distil the ensemble's similarities into the fresh model (MarginMSE) for this many steps.",
)
@click.option(
    "--distill-run",
    default=None,
    help="Mining run whose groups the distil phase reads (default: --run); share one across compared runs.",
)
@click.option(
    "--distill-ensemble",
    default=None,
    help="Ensemble to distil (default: the one the distil run was mined with).",
)
@click.option(
    "--distill-scale",
    default=default_of(TrainParams, "distill_scale"),
    show_default=True,
    type=float,
    help="Teacher margin = this x the difference of ensemble similarities.",
)
@click.option(
    "--dev-ratio",
    default=default_of(TrainParams, "dev_ratio"),
    show_default=True,
    type=float,
    help="Share of the split's judged queries held out as a dev set (the same for every run); the kept "
    "checkpoint is the best by dev nDCG@10 (0: no dev set, keep the last).",
)
@click.option(
    "--dev-seed",
    default=default_of(TrainParams, "dev_seed"),
    show_default=True,
    type=int,
    help="Seed of the dev choice.",
)
@click.option(
    "--dev-first-stage",
    default=default_of(TrainParams, "dev_first_stage"),
    show_default=True,
    help="First stage whose top-k the dev queries re-rank: bm25 or ensemble:NAME.",
)
@click.option(
    "--dev-k",
    default=default_of(TrainParams, "dev_k"),
    show_default=True,
    type=int,
    help="Chunks re-ranked per dev query.",
)
@click.option(
    "--common-pairs",
    multiple=True,
    metavar="RUN",
    help="Train only on the (query, positive) pairs that --run and every RUN given (repeatable) cover, "
    "so models compared across mining runs see the same pairs.",
)
@click.option("--eval-steps", type=int, help="Evaluate the dev set every N steps (default: 4 times per run).")
@click.option(
    "--split",
    default=default_of(TrainParams, "split"),
    show_default=True,
    help="Split of the triplets to train on.",
)
@click.option("--name", help="Name of the training run (default: the output folder's name).")
@click.option(
    "--device", type=click.Choice(["cpu", "cuda"]), help="Where to train (default: cuda when available)."
)
@format_option
@pass_ctx
def train_cmd(ctx: Ctx, fmt: str, **options: object) -> None:
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
    from hnm_db.train import train

    params = TrainParams(**options)  # type: ignore[arg-type]
    notes: list[str] = []
    try:
        with ctx.open() as db:
            summary = train(db, params, progress=ctx.progress, notes=notes)
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
