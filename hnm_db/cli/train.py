"""``hnm-db train`` and ``hnm-db eval``: fine-tune a cross-encoder on a mining run, evaluate re-rankers."""

from __future__ import annotations

import click
import polars as pl

from hnm_db.cli._common import Ctx, emit_frame, emit_mapping, format_option, info, pass_ctx


@click.command("train")
@click.option("--run", "run", required=True, help="Mining run whose triplets to train on.")
@click.option(
    "--base", default="minilm-l6", show_default=True, help="Base model: alias, registered name or folder."
)
@click.option(
    "--loss",
    type=click.Choice(["triplet", "bce", "mnrl"]),
    default="triplet",
    show_default=True,
    help="triplet: max(0, margin - s(q,p) + s(q,n)); bce: labelled pairs; mnrl: listwise per query.",
)
@click.option("--out", required=True, type=click.Path(), help="Output folder for the model (must not exist).")
@click.option("--epochs", default=1, show_default=True, type=int, help="Passes over the run's triplets.")
@click.option(
    "--batch-size", default=16, show_default=True, type=int, help="Triplets (or query groups) per step."
)
@click.option(
    "--max-length", default=256, show_default=True, type=int, help="Tokens per (query, passage) pair."
)
@click.option(
    "--lr", default=1e-4, show_default=True, type=float, help="Learning rate of the transformer body."
)
@click.option(
    "--head-lr", default=1e-3, show_default=True, type=float, help="Learning rate of the fresh head."
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the fresh head's weights, the batch order and dropout.",
)
@click.option("--max-steps", type=int, help="Stop after this many optimizer steps.")
@click.option("--margin", default=1.0, show_default=True, type=float, help="Margin of the triplet loss.")
@click.option(
    "--warmup-ratio", default=0.1, show_default=True, type=float, help="Share of steps of LR warm-up."
)
@click.option(
    "--warmup-easy-steps",
    default=0,
    show_default=True,
    type=int,
    help="First train this many steps on random (easy) negatives.",
)
@click.option("--split", default="train", show_default=True, help="Split of the triplets to train on.")
@click.option("--name", help="Name of the training run (default: the output folder's name).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Default: cuda when available.")
@format_option
@pass_ctx
def train_cmd(ctx: Ctx, fmt: str, **options: object) -> None:
    """Fine-tune a cross-encoder (fresh one-logit head on --base) on a mining run's triplets.

    The run, its parameters, seed, loss curve, output folder and model fingerprint are stored in
    training_runs. An interrupted run is left with status 'failed' and is replaced by the next attempt.

    \b
    Examples:
      hnm-db train --run ens-top --out models/ce-ens --max-steps 200
      hnm-db train --run bm25 --base minilm-l6 --loss bce --epochs 2 --seed 1 --out models/ce-bm25
    """
    from hnm_db.train import TrainParams, train

    params = TrainParams(**options)  # type: ignore[arg-type]
    with ctx.open() as db:
        summary = train(db, params, progress=ctx.progress)
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
        },
        fmt,
    )


def _with_spread(frame: pl.DataFrame, metrics: list[str]) -> pl.DataFrame:
    """Metrics as 'mean ± sd' strings for the text table."""
    cols = []
    for m in metrics:
        cols.append(
            pl.when(pl.col(f"{m} sd").is_null())
            .then(pl.col(m).round(4).cast(pl.String))
            .otherwise(pl.format("{} ± {}", pl.col(m).round(4), pl.col(f"{m} sd").round(4)))
            .alias(m)
        )
    return frame.with_columns(cols).select("first_stage", "k", "system", "seeds", *metrics)


@click.command("eval")
@click.option("--model", help="A model folder, a training run's name, or base:ALIAS for the untuned base.")
@click.option("--first-stage", default="bm25", show_default=True, help="bm25 or ensemble:NAME.")
@click.option("--k", "k", default=30, show_default=True, type=int, help="Chunks re-ranked per query (>= 10).")
@click.option(
    "--split", default="test", show_default=True, help="Split whose queries and qrels are evaluated."
)
@click.option(
    "--max-length", default=256, show_default=True, type=int, help="Tokens per (query, passage) pair scored."
)
@click.option("--batch-size", default=32, show_default=True, type=int, help="Pairs scored per model call.")
@click.option(
    "--interpolate",
    "interpolate",
    multiple=True,
    type=float,
    help="Also report alpha*z(model) + (1-alpha)*z(first stage); repeatable.",
)
@click.option("--head-seed", default=0, show_default=True, type=int, help="Seed of the fresh head of base:.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Default: cuda when available.")
@click.option("--compare", is_flag=True, help="Print the stored results of the split; computes nothing.")
@click.option("--mean-over-seeds", is_flag=True, help="With --compare: mean ± sd over training seeds.")
@format_option
@pass_ctx
def eval_cmd(ctx: Ctx, fmt: str, compare: bool, mean_over_seeds: bool, **options: object) -> None:
    """Re-rank a first stage's top-k per query and report MRR@10, nDCG@10, P@1, P@5, Recall@k.

    The first stage alone is always a row. Pair scores are cached by model fingerprint, so a repeated
    evaluation scores only new pairs; results go to eval_results (see the eval_summary view).

    \b
    Examples:
      hnm-db eval --model models/ce-ens --first-stage bm25 --k 30
      hnm-db eval --model base:minilm-l6 --interpolate 0.5
      hnm-db eval --compare --mean-over-seeds --format csv
    """
    from hnm_db.evaluate import METRIC_COLUMNS, EvalParams, evaluate, stored_results, summarize

    if compare:
        with ctx.open(read_only=True) as db:
            results = stored_results(db, str(options["split"]))
        if results.height == 0:
            info(ctx, f"no stored results for split {options['split']!r}")
            return
        if mean_over_seeds:
            summary = summarize(results)
            emit_frame(_with_spread(summary, METRIC_COLUMNS) if fmt == "table" else summary, fmt)
        else:
            cols = ["model", "first_stage", "k", "method", "loss", "seed", *METRIC_COLUMNS, "queries"]
            emit_frame(results.select(cols), fmt)
        return
    if mean_over_seeds:
        raise click.UsageError("--mean-over-seeds only goes with --compare")
    if options["model"] is None and options["interpolate"]:
        raise click.UsageError("--interpolate needs --model")
    params = EvalParams(**{**options, "interpolate": tuple(options["interpolate"])})  # type: ignore[arg-type]
    with ctx.open() as db:
        summary = evaluate(db, params, progress=ctx.progress)
    info(
        ctx,
        f"{summary.queries} queries; scored {summary.scored_pairs} new pairs, {summary.cached_pairs} cached",
    )
    frame = pl.DataFrame(summary.rows).select("model", "first_stage", "k", *METRIC_COLUMNS, "queries")
    emit_frame(frame, fmt)


COMMANDS: list[click.Command] = [train_cmd, eval_cmd]
