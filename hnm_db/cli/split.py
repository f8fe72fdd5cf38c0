"""``hnm-db split``: assign queries ingested without a split to test/dev/train."""

from __future__ import annotations

import click

from hnm_db.cli._common import Ctx, default_of, emit_mapping, format_option, pass_ctx
from hnm_db.split import SplitParams


@click.command("split")
@click.option("--test-ratio", type=float, required=True, help="Fraction of unsplit queries for test.")
@click.option(
    "--seed",
    type=int,
    default=default_of(SplitParams, "seed"),
    show_default=True,
    help="Seed of the id hash.",
)
@click.option(
    "--dev-ratio",
    type=float,
    default=default_of(SplitParams, "dev_ratio"),
    show_default=True,
    help="Fraction for dev.",
)
@format_option
@pass_ctx
def split_cmd(ctx: Ctx, test_ratio: float, seed: int, dev_ratio: float, fmt: str) -> None:
    """Assign queries whose qrels came without a split to test/dev/train (hash of id and seed).

    Qrels keep the split they came with; the view query_splits shows each query's effective split.
    Re-running replaces the previous assignment.

    \b
    Examples:
      hnm-db split --test-ratio 0.2 --seed 0
      hnm-db split --test-ratio 0.1 --dev-ratio 0.1 --seed 7
    """
    from hnm_db.split import split

    params = SplitParams(test_ratio=test_ratio, seed=seed, dev_ratio=dev_ratio)
    with ctx.open() as db:
        summary = split(db, params)
    emit_mapping(summary.as_dict(), fmt)


COMMANDS: list[click.Command] = [split_cmd]
