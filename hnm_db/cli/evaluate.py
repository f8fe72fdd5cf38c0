"""``hnm-db eval``: re-rank a first stage, compare stored results, paired tests."""

from __future__ import annotations

from dataclasses import asdict

import click
import polars as pl

from hnm_db.cli._common import Ctx, default_of, emit_frame, emit_mapping, format_option, info, pass_ctx
from hnm_db.evaluate import EvalParams


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
@click.option(
    "--first-stage",
    default=default_of(EvalParams, "first_stage"),
    show_default=True,
    help="bm25 or ensemble:NAME.",
)
@click.option(
    "--k",
    "k",
    default=default_of(EvalParams, "k"),
    show_default=True,
    type=int,
    help="Chunks re-ranked per query (>= 10).",
)
@click.option(
    "--split",
    default=default_of(EvalParams, "split"),
    show_default=True,
    help="Split whose queries and qrels are evaluated.",
)
@click.option(
    "--max-length",
    default=default_of(EvalParams, "max_length"),
    show_default=True,
    type=int,
    help="Tokens per (query, passage) pair scored.",
)
@click.option(
    "--batch-size",
    default=default_of(EvalParams, "batch_size"),
    show_default=True,
    type=int,
    help="Pairs scored per model call.",
)
@click.option(
    "--interpolate",
    "interpolate",
    multiple=True,
    type=float,
    help="Also report alpha*z(model) + (1-alpha)*z(first stage); repeatable.",
)
@click.option(
    "--head-seed",
    default=default_of(EvalParams, "head_seed"),
    show_default=True,
    type=int,
    help="Seed of the fresh head of base:.",
)
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
    from hnm_db.evaluate import METRIC_COLUMNS, evaluate, stored_results, summarize

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


COMMANDS: list[click.Command] = [eval_cmd]
