"""``hnm-db export``: mining runs as a HuggingFace dataset folder."""

from __future__ import annotations

from typing import Any

import click

from hnm_db.cli._common import FORMATS, Ctx, emit_mapping, info, params_options, pass_ctx
from hnm_db.params import LAYOUTS, ExportParams


@click.command("export")
@params_options(ExportParams)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*FORMATS, *LAYOUTS]),
    default="table",
    show_default=True,
    help="Output format of the printed summary (table, csv, json, ndjson). A layout name here is the "
    "deprecated spelling of --layout.",
)
@pass_ctx
@click.pass_context
def export_cmd(click_ctx: click.Context, ctx: Ctx, fmt: str, **fields: Any) -> None:
    """Export mining runs as a HuggingFace dataset folder with a dataset card (README.md).

    Without --parquet the folder loads with datasets.load_from_disk(DIR); with --parquet it is a Hub
    dataset folder that loads with datasets.load_dataset(DIR) and uploads as is. Either way the
    dataset trains unchanged with sentence-transformers' trainers: ids and scores (--keep-ids) go to
    a second dataset, 'ids'. Two exports of the same rows are byte-identical.

    \b
    Examples:
      hnm-db export --run ens-top --to out/ens-top
      hnm-db export --run ens-top --layout n-tuple --num-negatives 3 --parquet --to out/ens-ntuple
      hnm-db export --run ens-top --run bm25 --keep-ids --parquet --to out/mixed --format json
    """
    if fmt in LAYOUTS:  # the deprecated spelling; --layout given too must agree
        given = click_ctx.get_parameter_source("layout") is not click.core.ParameterSource.DEFAULT
        if given and fields["layout"] != fmt:
            raise click.UsageError(
                f"--format {fmt} (the old spelling of --layout) conflicts with --layout {fields['layout']}"
            )
        info(ctx, f"note: --format {fmt} is deprecated for the layout; use --layout {fmt}")
        fields["layout"], fmt = fmt, "table"
    with ctx.open(read_only=True) as db:  # export reads only
        summary = db.export(progress=ctx.progress, **fields)
    if summary.dropped_pairs:
        info(ctx, f"dropped {summary.dropped_pairs} query-positive pairs with fewer than "
                  f"{summary.num_negatives} negatives")  # fmt: skip
    emit_mapping(
        {
            "path": str(summary.path),
            "layout": summary.layout,
            "split": summary.split,
            "runs": ", ".join(summary.runs),
            "rows": summary.rows,
            "columns": ", ".join(summary.columns),
            **({"ids_columns": ", ".join(summary.id_columns)} if summary.id_columns else {}),
            **({"parquet": ", ".join(map(str, summary.parquet_files))} if summary.parquet_files else {}),
        },
        fmt,
    )


COMMANDS: list[click.Command] = [export_cmd]
