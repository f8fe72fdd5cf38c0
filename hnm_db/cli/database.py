"""``hnm-db init`` and ``hnm-db sql``: the database file itself."""

from __future__ import annotations

from pathlib import Path

import click

from hnm_db.cli import _common
from hnm_db.cli._common import Ctx, emit_frame, format_option, pass_ctx
from hnm_db.db import read_text


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


class SqlCommand(click.Command):
    """``hnm-db sql``, whose QUERY may start with ``--``: a SQL comment is not an option.

    An argument that starts with ``-`` and holds whitespace is moved behind ``--``, where click reads it
    as the QUERY, unless it is one of this command's options joined to its value by ``=``
    (``--file=/a path/q.sql``): no option name holds a space, so anything else is SQL.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args:
            names = {o for p in self.get_params(ctx) for o in (*p.opts, *p.secondary_opts)}
            queries = [a for a in args if _is_sql(a, names)]
            if queries:
                args = [a for a in args if a not in queries] + ["--", *queries]
        return super().parse_args(ctx, args)


def _is_sql(arg: str, options: set[str]) -> bool:
    """Whether an argument that starts with ``-`` is SQL (a comment first) rather than an option."""
    if not arg.startswith("-") or not any(c.isspace() for c in arg):
        return False
    name, eq, _ = arg.partition("=")
    return not (eq and name in options)


def _read_sql(query: str | None, file: Path | None) -> str:
    """The SQL text: QUERY, standard input (QUERY '-') or --file; exactly one of them."""
    if (query is None) == (file is None):
        raise click.UsageError(
            "give the SQL exactly one way: as QUERY, as '-' (standard input) or with --file PATH"
        )
    if file is not None:  # the messages of every other file hnm-db reads: missing, unreadable, not UTF-8
        return read_text(file)
    return click.get_text_stream("stdin").read() if query == "-" else query


@click.command("sql", cls=SqlCommand)
@click.argument("query", required=False)
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read the SQL from this file instead of QUERY.",
)
@format_option
@click.option(
    "--write", is_flag=True, help="Allow statements that change the database or write files (COPY ... TO)."
)
@pass_ctx
def sql_cmd(ctx: Ctx, query: str | None, file: Path | None, fmt: str, write: bool) -> None:
    """Run SQL against the database and print the rows of its last statement.

    QUERY is the SQL text (it may start with a -- comment and hold several statements), or '-' to read
    it from standard input; --file PATH reads it from a file.

    Without --write the database is opened read-only and a statement runs only if it reads: SELECT,
    WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE; EXPLAIN or EXPLAIN ANALYZE of one of those; SET
    VARIABLE; and the PRAGMAs that only report (table_info, show_tables, database_size, version, ...:
    the refusal lists them). Everything else is refused before anything runs: writes, COPY, EXPORT
    DATABASE, ATTACH, INSTALL, LOAD, CALL, CHECKPOINT, SET or RESET of a setting, the PRAGMAs that
    change a setting (enable_profiling, threads), a query with DELETE, INSERT, UPDATE or MERGE in its
    WITH, and a query that calls enable_profiling(), enable_logging(), setseed(), checkpoint(), query()
    and the like (the refusal lists them). The settings are locked and extensions are neither installed
    nor loaded while it runs. JSON columns (params, stats) come out nested with --format json or
    ndjson.

    \b
    Examples:
      hnm-db sql "SELECT * FROM run_summary"
      hnm-db sql "SELECT run, params FROM negative_provenance LIMIT 3" --format ndjson
      hnm-db sql --file sql/checks/negative_is_judged_positive.sql
      echo "SELECT count(*) FROM triplets" | hnm-db sql -
      hnm-db sql --write "COPY (SELECT * FROM triplets) TO 'triplets.parquet'"
    """
    import duckdb

    text = _read_sql(query, file)
    with ctx.open(read_only=not write) as db:
        try:
            if write:
                table = db.arrow(text)
            else:
                db.lock_settings()
                table = db.read_arrow(text)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise click.ClickException(f"SQL error: {first}") from None
    if table is not None and table.num_columns:
        emit_frame(table, fmt)


COMMANDS: list[click.Command] = [init_cmd, sql_cmd]
