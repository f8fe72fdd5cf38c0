"""hnm-db commands of the export / audit stage: ``export`` and ``audit``."""

from __future__ import annotations

from pathlib import Path

import click
import polars as pl

from hnm_db.cli._common import FORMATS, Ctx, dumps, emit_frame, emit_mapping, format_option, info, pass_ctx
from hnm_db.export import LAYOUTS


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
@click.option("--split", default="train", show_default=True, help="Triplet split to export (and split name).")
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
@click.option("--batch-size", type=int, default=10_000, show_default=True, help="Rows per Arrow batch.")
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
    from hnm_db.export import ExportParams, export

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


@click.command("audit")
@click.option("--run", "runs", multiple=True, help="Audit only these runs (repeatable; default all).")
@format_option
@click.option(
    "--plot", "plot_dir", type=click.Path(path_type=Path), default=None, help="Write PNG charts here."
)
@click.option(
    "--check", "check_", is_flag=True, help="Run the invariant checks of sql/checks; fail if any breaks."
)
@pass_ctx
def audit_cmd(ctx: Ctx, runs: tuple[str, ...], fmt: str, plot_dir: Path | None, check_: bool) -> None:
    """Summarise mining runs (coverage, scores, false-negative guard, clusters, overlap) or check rules.

    The same facts are SQL views: run_summary, run_overlap, negative_provenance, suspect_negatives.
    With --check, every query in sql/checks runs on the whole database; any offending row is an error.

    \b
    Examples:
      hnm-db audit
      hnm-db audit --run ens-top --run bm25 --plot audit-plots
      hnm-db audit --check
    """
    from hnm_db.audit import AuditParams, audit, check

    if check_ and (runs or plot_dir is not None):
        raise click.UsageError("--check covers the whole database; use it without --run and --plot")
    with ctx.open(read_only=True) as db:  # reads only: works on a read-only mount and beside other readers
        if check_:
            results = check(db)
            click.echo(f"all checks passed ({len(results)} checks)")
            return
        report = audit(db, AuditParams(runs=runs, plot_dir=plot_dir))
    _emit_report(report, fmt)
    for path in report.plots:
        info(ctx, f"wrote {path}")
    if report.changed_sources.height:
        info(ctx, f"warning: {report.changed_sources.height} source chunks changed since mining "
                  "(see hnm-db audit --check)")  # fmt: skip


def _emit_report(report, fmt: str) -> None:  # noqa: ANN001 (AuditReport, imported lazily)
    """json: one object with the three tables; csv and ndjson: the per-run summary rows only."""
    if fmt == "json":
        out = {
            "runs": report.runs.to_dicts(),
            "overlap": report.overlap.to_dicts(),
            "changed_sources": report.changed_sources.to_dicts(),
        }
        click.echo(dumps(out))
        return
    if fmt in ("csv", "ndjson"):
        emit_frame(report.runs, fmt)
        return
    emit_frame(_transpose(report.runs), "table")
    if report.overlap.height:
        click.echo("\noverlap of negative sets (mean Jaccard over shared queries)")
        emit_frame(report.overlap, "table")
    if report.changed_sources.height:
        click.echo("\nsources changed since mining")
        emit_frame(report.changed_sources, "table")


def _transpose(runs: pl.DataFrame) -> pl.DataFrame:
    """One column per run, one row per measure: readable on a terminal however many measures there are."""
    if runs.height == 0:
        return pl.DataFrame({"measure": ["runs"], "value": ["none"]})
    cells = {"measure": runs.columns[1:]}
    for row in runs.iter_rows(named=True):
        cells[row["run"]] = [_fmt(row[c]) for c in runs.columns[1:]]
    return pl.DataFrame(cells)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


COMMANDS: list[click.Command] = [export_cmd, audit_cmd]
