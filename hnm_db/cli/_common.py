"""Shared pieces of the click layer: the database option, output formats, error translation.

Only the ``hnm_db.cli`` package imports click; everything here formats or forwards.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click
import polars as pl

import hnm_db
from hnm_db.errors import HnmError

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "csv", "json")


class Ctx:
    """What the top-level group hands every command: where the database is and how loud to be."""

    def __init__(self, db_path: str, quiet: bool) -> None:
        self.db_path = db_path
        self.quiet = quiet

    def open(self, read_only: bool = False) -> hnm_db.Database:
        return hnm_db.open(self.db_path, read_only=read_only)


pass_ctx = click.make_pass_decorator(Ctx)


def format_option(fn: F) -> F:
    """``--format table|csv|json`` on every command that prints rows."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format for the printed rows.",
    )(fn)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return str(value)


def render_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str) -> str:
    """Rows as an aligned text table, CSV, or a JSON array of objects."""
    rows = [list(r) for r in rows]
    if fmt == "json":
        return json.dumps(
            [dict(zip(columns, r, strict=False)) for r in rows], default=_json_default, indent=1
        )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in r] for r in rows])
        return buf.getvalue().rstrip("\n")
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [len(c) for c in columns]
    for r in cells:
        for i, v in enumerate(r):
            widths[i] = min(max(widths[i], len(v)), 80)

    def line(vals: Sequence[str]) -> str:
        return "  ".join(v[:80].ljust(w) for v, w in zip(vals, widths, strict=False)).rstrip()

    out = [line(columns), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def emit_frame(df: pl.DataFrame, fmt: str) -> None:
    """Print a polars frame in the chosen format."""
    click.echo(render_rows(df.columns, df.rows(), fmt))


def emit_mapping(mapping: dict[str, Any], fmt: str) -> None:
    """Print a small key/value summary (one row) in the chosen format."""
    if fmt == "table":
        click.echo(render_rows(["key", "value"], list(mapping.items()), fmt))
    else:
        click.echo(render_rows(list(mapping), [list(mapping.values())], fmt))


def info(ctx: Ctx, message: str) -> None:
    """Progress and notes go to stderr, so stdout stays machine-readable; --quiet silences them."""
    if not ctx.quiet:
        click.echo(message, err=True)


class HnmGroup(click.Group):
    """A group that turns library errors into one stderr line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HnmError as exc:
            raise click.ClickException(str(exc)) from None


def fail(message: str) -> None:
    """Abort a command with one line on stderr."""
    raise click.ClickException(message)


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()
