"""Shared pieces of the click layer: the database option, output formats, error translation.

Only the ``hnm_db.cli`` package imports click; everything here formats or forwards.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import json
import math
import sys
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import polars as pl
import pyarrow as pa

import hnm_db
from hnm_db import options
from hnm_db.db import JSON_FIELD
from hnm_db.errors import HnmError
from hnm_db.params import ENGINES, RayParams

F = TypeVar("F", bound=Callable[..., Any])

#: Output formats of every command that prints rows: a text table for people (floats rounded for
#: display), and faithful machine formats: CSV (polars' writer, full precision), a JSON array, and
#: NDJSON (one object per line). JSON has no NaN or Infinity: they are written as null.
FORMATS = ("table", "csv", "json", "ndjson")


class Ctx:
    """What the top-level group hands every command: where the database is and how loud to be."""

    def __init__(self, db_path: str, quiet: bool, db_given: bool = True) -> None:
        self.db_path = db_path
        self.quiet = quiet
        self.db_given = db_given

    @property
    def progress(self) -> bool:
        """Progress bars only to a terminal (a log gets no carriage-return frames) and never with --quiet."""
        return not self.quiet and sys.stderr.isatty()

    def open(self, read_only: bool = False) -> hnm_db.Database:
        return hnm_db.open(self.db_path, read_only=read_only)


pass_ctx = click.make_pass_decorator(Ctx)


class _Parsed(click.ParamType):
    """A field's own text-to-value function (``Knob.parse``) as a click type; values that are not text
    (the default) pass through."""

    def __init__(self, parse: Callable[[str], Any], name: str) -> None:
        self.parse = parse
        self.name = name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


_CLICK_TYPES: dict[Any, Any] = {int: int, float: float, str: str, Path: click.Path(path_type=Path)}


def _item_type(f: options.Field, item: Any) -> Any:
    """The click type of one value of field ``f`` (of each value, for a repeatable option)."""
    if f.knob.parse is not None:
        return _Parsed(f.knob.parse, f.knob.metavar or f.name.upper())
    if f.knob.choices is not None:
        return click.Choice(list(f.knob.choices))
    return _CLICK_TYPES[item]


def _option(f: options.Field) -> click.Parameter:
    """The click option (or argument) of one ``*Params`` field: its flag, type, default and help from the
    field; a tuple field is a repeatable option."""
    base = f.base_type
    repeated = typing.get_origin(base) is tuple
    item = typing.get_args(base)[0] if repeated else base
    if f.knob.argument:
        return click.Argument([f.name], required=f.required, type=_item_type(f, item))
    kwargs: dict[str, Any] = {"help": f.knob.help, "metavar": f.knob.metavar}
    if f.required:
        kwargs["required"] = True
    else:
        kwargs |= {"default": f.default, "show_default": f.default not in (None, ())}
    decls = [f.flag, *([f.knob.short] if f.knob.short else []), f.name]
    if base is bool:
        if f.default is True:
            decls = [f"{f.flag}/--no-{f.flag[2:]}", f.name]
        kwargs["is_flag"] = True
        return click.Option(decls, **kwargs)
    kwargs["type"] = _item_type(f, item)
    if repeated:
        kwargs["multiple"] = True
    elif f.knob.parse is not None and not f.required and f.default is not None:
        kwargs["default"] = str(f.default)  # shown as typed, parsed like a typed value
    return click.Option(decls, **kwargs)


def params_options(
    cls: type, *, exclude: Sequence[str] = (), only: Sequence[str] | None = None
) -> Callable[[F], F]:
    """Click options generated from a ``*Params`` dataclass: one per field declared with
    :func:`hnm_db.options.param` (not the Python-only ones, nor ``exclude``; only ``only`` when given),
    in field order."""

    def decorate(fn: F) -> F:
        params = getattr(fn, "__click_params__", [])
        for f in reversed(options.fields(cls)):
            if not f.knob.python_only and f.name not in exclude and (only is None or f.name in only):
                params.append(_option(f))
        fn.__click_params__ = params  # type: ignore[attr-defined]
        return fn

    return decorate


def format_option(fn: F) -> F:
    """``--format table|csv|json|ndjson`` on every command that prints rows."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format: an aligned table (floats rounded), csv, json (an array) or ndjson (one "
        "object per line); the machine formats keep every digit, and JSON writes NaN as null.",
    )(fn)


def _set_quiet(click_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        click_ctx.ensure_object(Ctx).quiet = True
    return value


def add_quiet_option(command: click.Command) -> None:
    """``-q/--quiet`` on ``command`` (and its subcommands) as well as on the group: where users type it."""
    if not any(p.name == "quiet" for p in command.params):
        command.params.append(
            click.Option(
                ["--quiet", "-q"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_set_quiet,
                help="No progress bars or notes on stderr (as the group's --quiet).",
            )  # fmt: skip
        )
    for sub in getattr(command, "commands", {}).values():
        add_quiet_option(sub)


# -- values ----------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    """A value for the text table: floats rounded for display, nested values as JSON."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return json.dumps(json_value(value), ensure_ascii=False)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def json_value(value: Any, *, json_text: bool = False) -> Any:
    """A Python value as JSON can hold it: NaN/Infinity -> null, bytes -> base64, dates -> ISO 8601,
    decimals -> numbers, and (``json_text``) a JSON column's text -> the value it holds."""
    if value is None:
        return None
    if json_text and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)  # timedelta, UUID, ...


def dumps(value: Any) -> str:
    """Strict JSON of a (converted) value: never NaN, never a Python repr."""
    return json.dumps(json_value(value), ensure_ascii=False, allow_nan=False, sort_keys=False)


# -- tables ----------------------------------------------------------------------------------------
def _as_arrow(rows: pl.DataFrame | pa.Table) -> pa.Table:
    return rows if isinstance(rows, pa.Table) else rows.to_arrow()


def _json_columns(table: pa.Table, extra: Iterable[str] = ()) -> set[str]:
    marked = {f.name for f in table.schema if f.metadata and f.metadata.get(JSON_FIELD)}
    return marked | set(extra)


def _csv(table: pa.Table) -> str:
    """CSV through polars' writer (full float precision, NaN as NaN, NULL as an empty field); nested
    values as JSON text and binary as base64, which CSV cannot hold otherwise."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t) or _not_polars(t):
            column = pa.array([None if v is None else _cell(v) for v in column.to_pylist()], pa.string())
        columns[name] = column
    frame = pl.from_arrow(pa.table(columns)) if columns else pl.DataFrame()
    return frame.write_csv().rstrip("\n")


def _not_polars(t: pa.DataType) -> bool:
    return pa.types.is_interval(t) or pa.types.is_decimal(t) and t.precision > 38


def _json_rows(table: pa.Table, json_columns: set[str]) -> Iterator[str]:
    for row in table.to_pylist():
        yield dumps({k: json_value(v, json_text=k in json_columns) for k, v in row.items()})


def render_rows(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, *, json_columns: Iterable[str] = ()
) -> str:
    """Rows as an aligned text table, CSV, a JSON array of objects, or NDJSON."""
    rows = [list(r) for r in rows]
    if fmt in ("json", "ndjson"):
        objects = [
            dumps(
                {c: json_value(v, json_text=c in set(json_columns)) for c, v in zip(columns, r, strict=True)}
            )
            for r in rows
        ]
        return _join_json(objects, fmt)
    if fmt == "csv":
        table = pa.table({c: pa.array([_csv_value(r[i]) for r in rows]) for i, c in enumerate(columns)})
        return _csv(table) if rows else ",".join(columns)
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


def _csv_value(value: Any) -> Any:
    """A Python value for one CSV cell of a hand-built row: nested values as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dict, list, tuple)):
        return dumps(value)
    return _cell(value)


def _join_json(objects: Sequence[str], fmt: str) -> str:
    if fmt == "ndjson":
        return "\n".join(objects)
    return "[" + ",".join("\n " + o for o in objects) + ("\n]" if objects else "]")


def emit_frame(rows: pl.DataFrame | pa.Table, fmt: str, *, json_columns: Iterable[str] = ()) -> None:
    """Print a polars frame or an Arrow table in the chosen format (JSON columns come out nested)."""
    table = _as_arrow(rows)
    if fmt == "csv":
        out = _csv(table) if table.num_rows else ",".join(table.column_names)
    elif fmt in ("json", "ndjson"):
        out = _join_json(list(_json_rows(table, _json_columns(table, json_columns))), fmt)
    else:
        out = render_rows(table.column_names, (r.values() for r in table.to_pylist()), fmt)
    if out or fmt != "ndjson":
        click.echo(out)


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
    """A group that turns library errors into one stderr line and exit code 1, and gives every command
    a ``-q/--quiet`` of its own (added when the command is registered)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        add_quiet_option(cmd)
        super().add_command(cmd, name)

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


def engine_options(*widths: str) -> Callable[[F], F]:
    """``--engine local|ray`` and the :class:`hnm_db.params.RayParams` options ``--address``, ``--stage`` plus
    the given widths (``shards``, ``buckets``, ``replicas``), generated from the fields like any other."""

    def decorate(fn: F) -> F:
        fn = params_options(RayParams, only=["address", "stage", *widths])(fn)
        return click.option(
            "--engine",
            type=click.Choice(list(ENGINES)),
            default="local",
            show_default=True,
            help="Where the work runs: this process, or Ray workers (pip install 'hnm-db[ray]'); "
            "same results either way.",
        )(fn)

    return decorate


def ray_params(engine: str, **fields: Any) -> Any:
    """The :class:`hnm_db.params.RayParams` of ``--engine ray``, or None for ``--engine local``."""
    if engine == "local":
        if fields.get("address") or fields.get("stage"):
            raise click.UsageError("--address and --stage need --engine ray")
        return None
    return RayParams(**fields)
