"""The ``hnm-db`` command: a thin click layer over the library.

Each stage keeps its commands in a module named after it (``hnm_db.cli.<stage>``, a ``COMMANDS``
list; ``database`` holds ``init`` and ``sql``); a command parses options, opens the database, calls one
library function and formats the result.
"""

from __future__ import annotations

import click

import hnm_db
from hnm_db.cli._common import Ctx, HnmGroup
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


def _register() -> None:
    """One module per stage (or group of commands), each with a ``COMMANDS`` list, in pipeline order."""
    from hnm_db.cli import (
        audit,
        chunk,
        cluster,
        database,
        demo,
        denoise,
        embed,
        ensemble,
        evaluate,
        export,
        ingest,
        mine,
        models,
        split,
        train,
    )

    for module in (database, ingest, chunk, split, models, embed, ensemble, cluster, mine, export, audit,
                   train, evaluate, denoise, demo):  # fmt: skip
        for command in module.COMMANDS:
            main.add_command(command)


_register()
