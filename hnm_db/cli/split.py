"""``hnm-db split``: assign queries ingested without a split to test/dev/train."""

from __future__ import annotations

from typing import Any

import click

from hnm_db.cli._common import Ctx, emit_mapping, format_option, params_options, pass_ctx
from hnm_db.params import SplitParams


@click.command("split")
@params_options(SplitParams)
@format_option
@pass_ctx
def split_cmd(ctx: Ctx, fmt: str, **fields: Any) -> None:
    """Assign queries whose qrels came without a split to test/dev/train (hash of id and seed).

    Qrels keep the split they came with; the view query_splits shows each query's effective split.
    Re-running replaces the previous assignment.

    \b
    Examples:
      hnm-db split --test-ratio 0.2 --seed 0
      hnm-db split --test-ratio 0.1 --dev-ratio 0.1 --seed 7
    """
    with ctx.open() as db:
        summary = db.split(**fields)
    emit_mapping(summary.as_dict(), fmt)


COMMANDS: list[click.Command] = [split_cmd]
