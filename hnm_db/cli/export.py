"""``hnm-db export``: mining runs as a HuggingFace dataset folder."""

from __future__ import annotations

from pathlib import Path

import click

from hnm_db.cli._common import FORMATS, Ctx, default_of, emit_mapping, info, pass_ctx
from hnm_db.export import LAYOUTS, ExportParams


@click.command("export")
@click.option("--run", "runs", multiple=True, required=True, help="Mining run name (repeat for several).")
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default=None,
    help="sentence-transformers column layout: triplet (anchor, positive, negative), n-tuple "
    "(negative_1..n per query-positive pair) or labeled-pair (query, passage, label). Default: triplet.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*FORMATS, *LAYOUTS]),
    default="table",
    show_default=True,
    help="Output format of the printed summary (table, csv, json, ndjson). A layout name here is the "
    "deprecated spelling of --layout.",
)
@click.option("--to", "to", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option(
    "--parquet",
    is_flag=True,
    help="Write a Hub dataset folder (README.md + data/<split>-*.parquet) for load_dataset(DIR), instead of "
    "save_to_disk files for load_from_disk(DIR).",
)
@click.option(
    "--keep-ids",
    is_flag=True,
    help="Also write the dataset 'ids': the same rows with query/chunk ids, ranks, scores and run names "
    "(DIR/ids, or config 'ids'); the main dataset keeps only what a trainer reads.",
)
@click.option(
    "--split",
    default=default_of(ExportParams, "split"),
    show_default=True,
    help="Triplet split to export (and split name).",
)
@click.option("--overwrite", is_flag=True, help="Replace an earlier export in the folder.")
@click.option(
    "--num-negatives", type=int, default=None, help="n-tuple: negatives per row (default: the most)."
)
@click.option("--drop-short", is_flag=True, help="n-tuple: skip query-positive pairs with fewer negatives.")
@click.option("--license", "license_", default=None, help="Card license (default: from the corpus metadata).")
@click.option(
    "--language",
    multiple=True,
    help="Card language code, repeatable (default: from the corpus metadata, e.g. a source's card).",
)
@click.option(
    "--batch-size",
    type=int,
    default=default_of(ExportParams, "batch_size"),
    show_default=True,
    help="Rows per Arrow batch.",
)
@pass_ctx
def export_cmd(
    ctx: Ctx, runs: tuple[str, ...], layout: str | None, fmt: str, to: Path, parquet: bool, keep_ids: bool,
    split: str, overwrite: bool, num_negatives: int | None, drop_short: bool, license_: str | None,
    language: tuple[str, ...], batch_size: int,
) -> None:  # fmt: skip
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
    from hnm_db.export import export

    if fmt in LAYOUTS:
        if layout is not None and layout != fmt:
            raise click.UsageError(
                f"--format {fmt} (the old spelling of --layout) conflicts with --layout {layout}"
            )
        info(ctx, f"note: --format {fmt} is deprecated for the layout; use --layout {fmt}")
        layout, fmt = fmt, "table"
    layout = layout or "triplet"
    if layout != "n-tuple" and (num_negatives is not None or drop_short):
        raise click.UsageError("--num-negatives and --drop-short apply only to --layout n-tuple")
    params = ExportParams(
        runs=runs, to=to, layout=layout, split=split, parquet=parquet, keep_ids=keep_ids, overwrite=overwrite,
        num_negatives=num_negatives, drop_short=drop_short, license=license_, language=language,
        batch_size=batch_size,
    )  # fmt: skip
    with ctx.open(read_only=True) as db:  # export reads only
        summary = export(db, params, progress=ctx.progress)
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
