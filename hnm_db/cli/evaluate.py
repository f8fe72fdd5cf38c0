"""``hnm-db eval``: re-rank a first stage, compare stored results, paired tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import click
import polars as pl

from hnm_db.cli._common import Ctx, emit_frame, emit_mapping, format_option, info, params_options, pass_ctx
from hnm_db.params import METRIC_NAMES, PASSAGE_METRIC_NAMES, EvalParams


def _with_spread(frame: pl.DataFrame, metrics: Sequence[str]) -> pl.DataFrame:
    """Metrics as 'mean ± sd' strings for the text table."""
    cols = []
    for m in metrics:
        cols.append(
            pl.when(pl.col(f"{m} sd").is_null())
            .then(pl.col(m).round(4).cast(pl.String))
            .otherwise(pl.format("{} ± {}", pl.col(m).round(4), pl.col(f"{m} sd").round(4)))
            .alias(m)
        )
    return frame.with_columns(cols).select("first_stage", "k", "aggregate", "system", "seeds", *metrics)


@click.command("eval")
@params_options(EvalParams)
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
    type=click.Choice(list(METRIC_NAMES)),
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
    **fields: Any,
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
    if paired:
        if len(paired) != 2 or compare:
            raise click.UsageError(
                "--paired takes exactly two systems (--paired A --paired B) and no --compare"
            )
        if len(fields["interpolate"]) > 1:
            raise click.UsageError("--paired compares at one --interpolate weight")
        systems = [[s.strip() for s in group.split(",") if s.strip()] for group in paired]
        with ctx.open(read_only=True) as db:
            test = db.paired(
                *systems, metric=metric, first_stage=fields["first_stage"], k=fields["k"],
                split=fields["split"], interpolate=fields["interpolate"][0] if fields["interpolate"] else None,
                aggregate=fields["aggregate"],
            )  # fmt: skip
        emit_mapping({"a": paired[0], "b": paired[1], **asdict(test)}, fmt)
        return
    if compare:
        with ctx.open(read_only=True) as db:
            results = db.compare(fields["split"])
            summary = db.compare(fields["split"], mean_over_seeds=True) if results.height else None
        if summary is None:
            info(ctx, f"no stored results for split {fields['split']!r}")
        elif mean_over_seeds:
            emit_frame(_with_spread(summary, METRIC_NAMES) if fmt == "table" else summary, fmt)
        else:
            cols = [
                "model",
                "first_stage",
                "k",
                "aggregate",
                "method",
                "loss",
                "seed",
                *METRIC_NAMES,
                "queries",
            ]
            emit_frame(results.select(cols), fmt)
        return
    if mean_over_seeds:
        raise click.UsageError("--mean-over-seeds only goes with --compare")
    with ctx.open() as db:
        summary = db.evaluate(progress=ctx.progress, **fields)
    info(
        ctx,
        f"{summary.queries} queries; scored {summary.scored_pairs} new pairs, {summary.cached_pairs} cached",
    )
    frame = pl.DataFrame(summary.rows)
    passage = [c for c in PASSAGE_METRIC_NAMES if c in frame.columns]  # only when the split has spans
    spans = ["span_queries"] if passage else []
    frame = frame.select("model", "first_stage", "k", "aggregate", *METRIC_NAMES, *passage, "queries", *spans)
    emit_frame(frame, fmt)


COMMANDS: list[click.Command] = [eval_cmd]
