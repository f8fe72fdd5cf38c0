"""``hnm-db init`` and ``hnm-db sql``: the database file itself."""

from __future__ import annotations

import click

from hnm_db.cli import _common
from hnm_db.cli._common import Ctx, emit_frame, format_option, pass_ctx


@click.command("init")
@pass_ctx
def init_cmd(ctx: Ctx) -> None:
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


@click.command("sql")
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


COMMANDS: list[click.Command] = [init_cmd, sql_cmd]
