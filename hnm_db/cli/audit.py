"""``hnm-db audit``: what each mining run selected, and the invariant checks."""

from __future__ import annotations

from typing import Any

import click
import polars as pl

from hnm_db.cli._common import Ctx, dumps, emit_frame, format_option, info, params_options, pass_ctx
from hnm_db.params import AuditParams


@click.command("audit")
@params_options(AuditParams)
@format_option
@click.option(
    "--check", "check_", is_flag=True, help="Run the invariant checks of sql/checks; fail if any breaks."
)
@pass_ctx
def audit_cmd(ctx: Ctx, fmt: str, check_: bool, **fields: Any) -> None:
    """Summarise mining runs (coverage, scores, false-negative guard, clusters, overlap) or check rules.

    The same facts are SQL views: run_summary, run_overlap, negative_provenance, suspect_negatives,
    denoised_negatives (what each `hnm-db denoise` run dropped, with texts; printed last).
    With --check, every query in sql/checks runs on the whole database; any offending row is an error.

    \b
    Examples:
      hnm-db audit
      hnm-db audit --run ens-top --run bm25 --plot audit-plots
      hnm-db audit --check
    """
    if check_ and (fields["runs"] or fields["plot_dir"] is not None):
        raise click.UsageError("--check covers the whole database; use it without --run and --plot")
    with ctx.open(read_only=True) as db:  # reads only: works on a read-only mount and beside other readers
        if check_:
            results = db.check()
            click.echo(f"all checks passed ({len(results)} checks)")
            return
        report = db.audit(**fields)
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
            "denoised_negatives": report.dropped.to_dicts(),
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
    if report.dropped.height:
        click.echo(
            "\nnegatives dropped by denoising (view denoised_negatives has every column and full texts)"
        )
        emit_frame(_dropped_table(report.dropped), "table")


def _dropped_table(dropped: pl.DataFrame) -> pl.DataFrame:
    """The dropped negatives with the rule's probabilities and the start of each text."""
    return dropped.select(
        "run",
        "query_id",
        "negative_chunk_id",
        "rank",
        "negative_prob",
        "positive_prob",
        pl.col("query_text").str.slice(0, 50).alias("query"),
        pl.col("negative_text").str.slice(0, 70).alias("negative"),
    )


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


COMMANDS: list[click.Command] = [audit_cmd]
