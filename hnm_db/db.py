"""The one DuckDB file: opening it, migrating it, transactions and SQL access.

Every entry point (CLI, Python API, tests) opens through :class:`Database`, so every caller sees the
current schema and views. Stage modules take a ``Database`` and read and write tables through it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from hnm_db import resources
from hnm_db.errors import DatabaseLocked, HnmError, SchemaTooNew

#: The default database file of the CLI (``--db`` or env ``HNM_DB`` override it there).
DEFAULT_PATH = "hnm.duckdb"


def schema_target() -> int:
    """The highest migration number this code ships."""
    return resources.migrations()[-1][0]


class Database:
    """An open hnm-db database: a DuckDB connection plus the schema, views and transaction helper."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH, *, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not read_only and not parent.exists():
                raise HnmError(f"folder of the database does not exist: {parent}")
        try:
            self.con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise DatabaseLocked(self.path) from None
            raise HnmError(f"cannot open database {self.path}: {exc}") from None
        self._depth = 0
        try:
            self._check_version()
            if not read_only:
                self.migrate()
                self.create_views()
        except BaseException:
            self.con.close()
            raise

    # -- schema -------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The highest applied migration, -1 for an empty file."""
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()[0]
        if not exists:
            return -1
        v = self.con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        return -1 if v is None else int(v)

    def _check_version(self) -> None:
        found, known = self.schema_version(), schema_target()
        if found > known:
            raise SchemaTooNew(self.path, found, known)

    def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in one transaction with its ledger row."""
        current = self.schema_version()
        applied = []
        for version, name, sql in resources.migrations():
            if version <= current:
                continue
            with self.transaction():
                self.con.execute(sql)
                self.con.execute(
                    "INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name]
                )
            applied.append(version)
        return applied

    def create_views(self) -> None:
        """(Re)create every view in sql/views; a view may read another, so retry until all resolve."""
        pending = resources.sql_files("views")
        with self.transaction():
            while pending:
                failed = {}
                for name, sql in pending.items():
                    try:
                        self.con.execute(sql)
                    except duckdb.CatalogException as exc:
                        failed[name] = (sql, exc)
                if len(failed) == len(pending):
                    name, (_, exc) = next(iter(failed.items()))
                    raise RuntimeError(f"view {name} cannot be created: {exc}")
                pending = {n: s for n, (s, _) in failed.items()}

    # -- access ---------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction; nested uses join the outer one (DuckDB has no savepoints)."""
        if self._depth:
            self._depth += 1
            try:
                yield self.con
            finally:
                self._depth -= 1
            return
        self.con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self.con
        except BaseException:
            self._depth = 0
            self.con.execute("ROLLBACK")
            raise
        self._depth = 0
        self.con.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run one statement on the connection (parameters bound, never formatted in)."""
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def sql(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a query and return its rows as a polars DataFrame (empty frame for statements)."""
        cur = self.execute(sql, params)
        if cur.description is None:
            return pl.DataFrame()
        return cur.pl()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def tables(self) -> list[str]:
        """Base tables of the schema, sorted."""
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.path!r})"

    # Stage methods (the Python API mirroring the CLI) are added below by each stage.
    # -- ingest / chunk / split (issue 2) -------------------------------------------------------
    # -- models / embed / ensemble (issue 3) ----------------------------------------------------
    # -- cluster / mine / runs (issue 4) --------------------------------------------------------
    # -- export / audit (issue 5) ---------------------------------------------------------------
    # -- train / eval (issue 6) -----------------------------------------------------------------


def open(path: str | os.PathLike[str] = DEFAULT_PATH, *, read_only: bool = False) -> Database:  # noqa: A001
    """Open (creating and migrating if needed) the database at ``path``."""
    return Database(path, read_only=read_only)
