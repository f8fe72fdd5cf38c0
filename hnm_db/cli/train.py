"""``hnm-db train`` and ``hnm-db eval``: fine-tune a cross-encoder on a mining run, evaluate re-rankers."""

from __future__ import annotations

from dataclasses import asdict

import click
import polars as pl

from hnm_db.cli._common import Ctx, emit_frame, emit_mapping, format_option, info, pass_ctx


def _default(name: str) -> object:
    """A TrainParams field's default: options and the dataclass never disagree."""
    from hnm_db.train import TrainParams

    return TrainParams.__dataclass_fields__[name].default


@click.command("train")
@click.option("--run", "run", required=True, help="Mining run whose triplets to train on.")
@click.option(
    "--base",
    default=_default("base"),
    show_default=True,
    help="Base model: alias, registered name or folder.",
)
@click.option(
    "--loss",
    type=click.Choice(["lce", "bce", "lambda", "listnet", "mnrl", "triplet"]),
    default=_default("loss"),
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
    default=_default("group_size"),
    show_default=True,
    type=int,
    help="Passages per training group: 1 positive + GROUP_SIZE-1 negatives, re-drawn each epoch.",
)
@click.option(
    "--batch-size", default=_default("batch_size"), show_default=True, type=int, help="Groups per step."
)
@click.option(
    "--epochs",
    default=_default("epochs"),
    show_default=True,
    type=int,
    help="Passes over the run's (query, positive) pairs (ignored when --max-steps is given).",
)
@click.option(
    "--max-steps", type=int, help="The budget: exactly this many optimizer steps, whatever the run's size."
)
@click.option(
    "--max-length",
    default=_default("max_length"),
    show_default=True,
    type=int,
    help="Tokens per (query, passage) pair.",
)
@click.option(
    "--lr",
    default=_default("lr"),
    show_default=True,
    type=float,
    help="Learning rate of the transformer body.",
)
@click.option(
    "--head-lr",
    default=_default("head_lr"),
    show_default=True,
    type=float,
    help="Learning rate of the fresh head.",
)
@click.option(
    "--seed",
    default=_default("seed"),
    show_default=True,
    type=int,
    help="Seed of the head, the group draws and the Trainer (same seed, same model).",
)
@click.option(
    "--margin", default=_default("margin"), show_default=True, type=float, help="Margin of the triplet loss."
)
@click.option(
    "--warmup-ratio",
    default=_default("warmup_ratio"),
    show_default=True,
    type=float,
    help="Share of steps of LR warm-up.",
)
@click.option(
    "--warmup-easy-steps",
    default=_default("warmup_easy_steps"),
    show_default=True,
    type=int,
    help="First train this many steps on groups of random (easy) negatives.",
)
@click.option(
    "--distill-steps",
    default=_default("distill_steps"),
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
    default=_default("distill_scale"),
    show_default=True,
    type=float,
    help="Teacher margin = this x the difference of ensemble similarities.",
)
@click.option(
    "--dev-ratio",
    default=_default("dev_ratio"),
    show_default=True,
    type=float,
    help="Share of the run's queries held out as a dev set; the kept checkpoint is the best by dev "
    "nDCG@10 (0: no dev set, keep the last).",
)
@click.option(
    "--dev-seed", default=_default("dev_seed"), show_default=True, type=int, help="Seed of the dev choice."
)
@click.option(
    "--dev-first-stage",
    default=_default("dev_first_stage"),
    show_default=True,
    help="First stage whose top-k the dev queries re-rank: bm25 or ensemble:NAME.",
)
@click.option(
    "--dev-k", default=_default("dev_k"), show_default=True, type=int, help="Chunks re-ranked per dev query."
)
@click.option("--eval-steps", type=int, help="Evaluate the dev set every N steps (default: 4 times per run).")
@click.option("--split", default="train", show_default=True, help="Split of the triplets to train on.")
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
    resumes from its last checkpoint.

    \b
    Examples:
      hnm-db train --run ens-top --out models/ce-ens --max-steps 200
      hnm-db train --run ens-top --out models/ce-lce --loss lce --group-size 8 --distill-steps 50
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
            "best_dev_ndcg@10": summary.stats.get("best_dev_ndcg@10"),
            "best_step": summary.stats.get("best_step"),
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
@click.option(
    "--paired",
    multiple=True,
    help="Twice: systems A and B (training run names or model labels, comma-separated to average seeds); "
    "prints a paired randomization test and a bootstrap 95%% interval of A - B over the split's queries, "
    "from stored results of --first-stage at --k (with --interpolate: at that weight). Computes no scores.",
)
@click.option(
    "--metric",
    type=click.Choice(["ndcg@10", "mrr@10", "p@1", "p@5", "recall@k"]),
    default="ndcg@10",
    show_default=True,
    help="Metric of --paired.",
)
@click.option("--mean-over-seeds", is_flag=True, help="With --compare: mean ± sd over training seeds.")
@format_option
@pass_ctx
def eval_cmd(
    ctx: Ctx,
    fmt: str,
    compare: bool,
    mean_over_seeds: bool,
    paired: tuple[str, ...],
    metric: str,
    **options: object,
) -> None:
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

    if paired:
        if len(paired) != 2 or compare:
            raise click.UsageError(
                "--paired takes exactly two systems (--paired A --paired B) and no --compare"
            )
        if len(options["interpolate"]) > 1:
            raise click.UsageError("--paired compares at one --interpolate weight")
        _paired(ctx, fmt, paired, metric, options)
        return
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


def _paired(ctx: Ctx, fmt: str, paired: tuple[str, ...], metric: str, options: dict) -> None:
    from hnm_db.evaluate import paired_test, per_query_values, result_ids

    systems = [[s.strip() for s in group.split(",") if s.strip()] for group in paired]
    alpha = options["interpolate"][0] if options["interpolate"] else None
    where = {
        "first_stage": options["first_stage"],
        "k": options["k"],
        "split": options["split"],
        "interpolate": alpha,
    }
    with ctx.open(read_only=True) as db:
        a, b = (per_query_values(db, result_ids(db, group, **where), metric) for group in systems)
    test = paired_test(a, b, metric=metric)
    emit_mapping({"a": paired[0], "b": paired[1], **asdict(test)}, fmt)


COMMANDS: list[click.Command] = [train_cmd, eval_cmd]
