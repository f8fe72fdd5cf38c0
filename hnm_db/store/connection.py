"""The store, the bottom layer: the one DuckDB file, opened, migrated, its views created, and SQL access
inside transactions.

Every entry point (CLI, Python API, tests) opens a :class:`Store` (the facade
:class:`hnm_db.db.Database` is one), so every caller sees the current schema and views. Stage modules
take a ``Store`` and read and write tables through its methods; the DuckDB connection itself stays
private: Arrow tables reach SQL through :meth:`Store.registered`, Python UDFs through
:meth:`Store.udf`, and a second cursor through :meth:`Store.cursor`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from hnm_db import resources
from hnm_db.errors import (
    DatabaseLocked,
    HnmError,
    InvalidParams,
    SchemaTooNew,
    SchemaTooOld,
    StorageTooNew,
    WriteRefused,
)

#: ``qrels.split`` of judgements ingested without one; ``hnm-db split`` assigns them a split.
UNSPLIT = "unsplit"
#: The default database file of the CLI (``--db`` or env ``HNM_DB`` override it there).
DEFAULT_PATH = "hnm.duckdb"
#: What SQL without a statement (only blanks or comments) is told.
EMPTY_SQL = "empty query: the SQL holds no statement (only blanks or comments)"
#: Arrow field metadata key that :meth:`Database.arrow` sets on columns of DuckDB's JSON type.
JSON_FIELD = b"hnm.json"


def schema_target() -> int:
    """The highest migration number this code ships."""
    return resources.migrations()[-1][0]


class Store:
    """An open hnm-db database file: a DuckDB connection plus the schema, views and transactions."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH, *, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not read_only and not parent.exists():
                raise HnmError(f"folder of the database does not exist: {parent}")
        try:
            self._con = Connection(duckdb.connect(self.path, read_only=read_only))
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise DatabaseLocked(self.path, holder_of(str(exc))) from None
            if "newer version of DuckDB" in str(exc):
                raise StorageTooNew(self.path, duckdb.__version__) from None
            raise HnmError(f"cannot open database {self.path}: {first_line(exc)}") from None
        self._depth = 0
        self._settings_locked = False
        # Progress is ours to show (tqdm, silenced by --quiet); DuckDB's own bar would interleave with it.
        self._con.execute("SET enable_progress_bar = false")
        try:
            self._check_version()
            if not read_only:
                applied = self.migrate()
                self.create_views(force=bool(applied))
        except BaseException:
            self._con.close()
            raise

    # -- schema -------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The highest applied migration, -1 for an empty file."""
        exists = self._con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()[0]
        if not exists:
            return -1
        v = self._con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        return -1 if v is None else int(v)

    def _check_version(self) -> None:
        found, known = self.schema_version(), schema_target()
        if found > known:
            raise SchemaTooNew(self.path, found, known)
        if self.read_only and found < known:  # a read-only file cannot be migrated: say how, not a SQL error
            raise SchemaTooOld(self.path, found, known)

    def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in one transaction with its ledger row."""
        current = self.schema_version()
        applied = []
        for version, name, sql in resources.migrations():
            if version <= current:
                continue
            with self.transaction():
                self._con.execute(sql)
                self._con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name])
            applied.append(version)
        return applied

    def create_views(self, *, force: bool = False) -> bool:
        """(Re)create every view in sql/views; a view may read another, so retry until all resolve.

        Skipped (returns False) when the stored ``views_digest`` matches this hnm-db's view SQL and every
        view exists, so opening a database costs no DDL transaction; ``force`` re-creates regardless.
        """
        pending = resources.sql_files("views")
        digest = hashlib.blake2b(  # the schema version too: views read the tables it shapes
            "\0".join([str(self.schema_version()), *(f"{n}\0{sql}" for n, sql in pending.items())]).encode(),
            digest_size=16,
        ).hexdigest()
        if not force and self._views_current(digest):
            return False
        with self.transaction():
            # Dependencies first: a failed statement aborts a DuckDB 2 transaction, so no trial and error.
            for sql in view_order(pending):
                self._con.execute(sql)
            self._con.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [["views_digest", digest], ["views_objects", json.dumps(self._view_objects())]],
            )
        return True

    def _view_objects(self) -> list[str]:
        """Names of the user views and macros in the database, sorted."""
        rows = self._con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' "
            "UNION SELECT function_name FROM duckdb_functions() "
            "WHERE NOT internal AND schema_name = 'main' AND function_type IN ('macro', 'table_macro')"
        ).fetchall()
        return sorted(r[0] for r in rows)

    def _views_current(self, digest: str) -> bool:
        stored = dict(
            self._con.execute(
                "SELECT key, value FROM meta WHERE key IN ('views_digest', 'views_objects')"
            ).fetchall()
        )
        if stored.get("views_digest") != digest or "views_objects" not in stored:
            return False
        return set(json.loads(stored["views_objects"])) <= set(self._view_objects())

    # -- access ---------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """One transaction; nested uses join the outer one (DuckDB has no savepoints)."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._con.execute("ROLLBACK")
            raise
        self._depth = 0
        self._con.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def execute(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> duckdb.DuckDBPyConnection:
        """Run one statement on the connection (parameters bound, never formatted in); fetch from the result."""
        return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    def sql(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a query and return its rows as a polars DataFrame (empty frame for statements)."""
        table = self.arrow(sql, params)
        return pl.DataFrame() if table is None else polars_frame(table)

    def read_query(self, sql: str) -> pl.DataFrame:
        """Run SQL that only reads and return the last statement's rows (``hnm-db sql`` without --write);
        see :meth:`read_arrow`."""
        table = self.read_arrow(sql)
        return pl.DataFrame() if table is None else polars_frame(table)

    def read_arrow(self, sql: str) -> pa.Table | None:
        """:meth:`arrow` for SQL that only reads: refused unless :meth:`check_read_only` passes it, and run
        with DuckDB's install and load of known extensions off (a query that names an ``https://`` or
        ``s3://`` path would otherwise install httpfs, a write to the user's extension folder)."""
        self.check_read_only(sql)
        if self._settings_locked:
            return self.arrow(sql)
        names = ("autoinstall_known_extensions", "autoload_known_extensions")
        saved = [self.scalar(f"SELECT current_setting('{name}')") for name in names]
        for name in names:
            self._con.execute(f"SET {name} = false")
        try:
            return self.arrow(sql)
        finally:
            with suppress(duckdb.Error):  # in a transaction the query aborted, they stay off: the safe side
                for name, value in zip(names, saved, strict=True):
                    self._con.execute(f"SET {name} = {'true' if value else 'false'}")

    def lock_settings(self) -> None:
        """Lock this connection's settings for the rest of its life, extension install and load off: no
        query can change one (``SELECT * FROM enable_logging(storage := 'file', ...)`` included, whatever
        function it goes through). ``hnm-db sql`` without --write does this before it runs anything."""
        for name in ("autoinstall_known_extensions", "autoload_known_extensions"):
            self._con.execute(f"SET {name} = false")
        self._con.execute("SET lock_configuration = true")
        self._settings_locked = True

    def check_read_only(self, sql: str) -> None:
        """Raise :class:`WriteRefused` unless every statement of ``sql`` only reads; runs nothing.

        A read-only connection still lets DuckDB write files (COPY ... TO, EXPORT DATABASE, ATTACH of a
        new file, INSTALL, a log or profile path set with SET or PRAGMA, EXPLAIN ANALYZE of a COPY) and
        change the session (SET, PRAGMA enable_profiling), so "read-only" is checked per statement: see
        :func:`read_only_reason` (a query that calls a setting's table function or holds a DML statement
        in its WITH is refused too). Comments and several statements in one string are handled.
        """
        for i, stmt in enumerate(self._con.extract_statements(sql), start=1):
            reason = read_only_reason(self._con.raw, stmt.type.name, stmt.query)
            if reason is not None:
                words = _code_tokens(stmt.query)
                first = " ".join(words[: words.index(";") if ";" in words else None][:3])
                raise WriteRefused(
                    f"statement {i} ({stmt.type.name}: {first} ...) {reason}; only queries run without "
                    f"--write: {READ_ONLY_SUMMARY}"
                )

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table | None:
        """Run a query and return its rows as an Arrow table (None for a statement without rows); SQL
        with no statement (blanks, comments) is :class:`InvalidParams`.

        Through ``execute`` and ``to_arrow_table``, which duckdb 1.5 and 2.x share (2.x dropped the
        cursor's ``.pl()``, ``fetch_arrow_table`` and ``fetch_record_batch``). Not through the relation
        API: with parameters duckdb 1.5 materialises a whole relation before streaming it, and a
        relation left half read can stall the next query on the connection.
        """
        statement = _is_statement(self._con, sql)
        cur = self.execute(sql, params)
        if cur.description is None or statement and _counts_only(cur.description):
            return None
        with _no_copy_warning():
            table = cur.to_arrow_table()
        types = [str(d[1]) for d in cur.description]
        if "JSON" not in types:
            return table
        fields = [  # JSON columns arrive as text: mark them, so output can nest them (hnm-db sql --format json)
            f.with_metadata({JSON_FIELD: b"1"}) if t == "JSON" else f
            for f, t in zip(table.schema, types, strict=True)
        ]
        return pa.Table.from_arrays(table.columns, schema=pa.schema(fields))

    def arrow_batches(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        batch_rows: int = 100_000,
        con: duckdb.DuckDBPyConnection | Connection | None = None,
    ) -> pa.RecordBatchReader:
        """Stream a query's rows as Arrow batches of at most ``batch_rows`` (on ``con``, e.g. a second
        cursor that reads a snapshot while the main connection commits). Read it to the end before
        running anything else on the same connection."""
        con = con or self._con
        cur = con.execute(sql, params) if params is not None else con.execute(sql)
        with _no_copy_warning():
            return cur.to_arrow_reader(batch_rows)

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def tables(self) -> list[str]:
        """Base tables of the schema, sorted."""
        rows = self._con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    # -- what stages hand to SQL --------------------------------------------------------------------
    @contextmanager
    def registered(self, name: str, table: pa.Table | Any) -> Iterator[str]:
        """``table`` (Arrow, or anything DuckDB can register: polars, pandas) visible to SQL as ``name``
        for the block; dropped afterwards, also when the block fails."""
        self._con.register(name, table)
        try:
            yield name
        finally:
            self._con.unregister(name)

    @contextmanager
    def udf(self, name: str, fn: Any, params: list[str], return_type: str) -> Iterator[str]:
        """A vectorised (Arrow) Python function callable from SQL as ``name`` for the block."""
        self._con.create_function(
            name, fn, params, duckdb.sqltype(return_type), type="arrow", side_effects=False
        )
        try:
            yield name
        finally:
            self._con.remove_function(name)

    def cursor(self) -> Connection:
        """A second cursor on the same connection: it reads a snapshot while this one writes."""
        return Connection(self._con.raw.cursor())

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement over many parameter rows."""
        self._con.executemany(sql, rows)


def view_order(views: dict[str, str]) -> list[str]:
    """The view SQL of ``views`` (name -> SQL) ordered so that every view comes after those it reads.

    A view reads another when the other's name appears in its SQL (outside comments) as a word; ties
    keep name order.
    """

    code = {name: re.sub(r"--[^\n]*", "", sql) for name, sql in views.items()}  # comments name views too
    deps = {
        name: {o for o in views if o != name and re.search(rf"\b{re.escape(o)}\b", code[name])}
        for name in views
    }
    ordered: list[str] = []
    while len(ordered) < len(views):
        ready = [n for n in views if n not in ordered and deps[n] <= set(ordered)]
        if not ready:
            stuck = sorted(set(views) - set(ordered))
            raise RuntimeError(f"views read each other in a cycle: {', '.join(stuck)}")
        ordered += ready
    return [views[n] for n in ordered]


class Connection:
    """A DuckDB connection that behaves alike on duckdb 1.5 and 2.x; everything else is delegated.

    duckdb 2.x refuses ``register``, ``sql`` and other non-``execute`` work while an ``execute()`` result
    is half read (``scalar`` reads one row), where 1.5 dropped that result silently: this settles it
    first. And ``unregister`` in a ``finally`` after a failed statement no longer hides that statement's
    error behind 2.x's "transaction is aborted" (the rollback drops the registration anyway).
    """

    #: Methods that read or replace the current result, or need no settling.
    _AS_IS = frozenset(
        {"execute", "executemany", "cursor", "close", "complete", "abort", "description", "rowcount"}
    )

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    @property
    def raw(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection itself."""
        return self._con

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._con, name)
        if name in self._AS_IS or name.startswith("fetch") or not callable(attr):
            return attr

        def settled(*args: Any, **kwargs: Any) -> Any:
            settle(self._con)
            return attr(*args, **kwargs)

        return settled

    def unregister(self, name: str) -> None:
        """Drop a registered Arrow table; inside a failed transaction the rollback drops it."""
        try:
            settle(self._con)
            self._con.unregister(name)
        except duckdb.TransactionException:
            pass


#: Statement types ``read_query`` runs as they are: they read the database and write nothing.
READ_STATEMENTS = frozenset({"SELECT"})
#: PRAGMAs that only report (each is also a table function, e.g. ``pragma_table_info``); the others change
#: a setting (enable_profiling, threads), write (copy_database, force_checkpoint) or run SQL of their own.
INFO_PRAGMAS = frozenset({
    "collations", "database_list", "database_size", "extension_versions", "functions", "metadata_info",
    "platform", "show_databases", "show_tables", "show_tables_expanded", "storage_info",
    "table_info", "user_agent", "version",
})  # fmt: skip
#: Functions a query may call that change the session or the file (profiling, logging, the random seed, a
#: checkpoint, the grammar), or that run SQL given as a string, which no check here reads (query).
SIDE_EFFECT_FUNCTIONS = frozenset({
    "add_grammar_extension", "checkpoint", "disable_logging", "disable_profiling", "enable_logging",
    "enable_profiling", "force_checkpoint", "query", "remove_grammar_extension", "setseed",
    "truncate_duckdb_logs", "write_log",
})  # fmt: skip
#: Statements DuckDB runs inside a query's WITH (``WITH d AS (DELETE FROM t RETURNING *) SELECT ...``).
DML_WORDS = frozenset({"DELETE", "INSERT", "MERGE", "UPDATE"})


#: What runs without --write, in words (``hnm-db sql --help`` and the refusal say it).
READ_ONLY_SUMMARY = (
    "SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE (none holding DELETE, INSERT, UPDATE or MERGE, "
    "or calling " + ", ".join(f"{f}()" for f in sorted(SIDE_EFFECT_FUNCTIONS)) + "); EXPLAIN [ANALYZE] of "
    "one of those; SET VARIABLE; PRAGMA " + ", ".join(sorted(INFO_PRAGMAS))
)


def _code(sql: str) -> list[tuple[int, str, str]]:
    """(offset, text, kind) of each word and symbol of ``sql`` outside comments, by DuckDB's own tokenizer
    (so a string that holds ``--`` or ``/*`` is not mistaken for a comment); kind is the token type's name
    (keyword, identifier, string_const, operator, ...)."""
    tokens = duckdb.tokenize(sql)
    ends = [start for start, _ in tokens[1:]] + [len(sql)]
    return [
        (start, sql[start:end].strip(), kind.name)
        for (start, kind), end in zip(tokens, ends, strict=True)
        if kind != duckdb.token_type.comment
    ]


def _code_tokens(sql: str) -> list[str]:
    return [text for _, text, _ in _code(sql)]


def _query_reason(text: str) -> str | None:
    """Why a statement typed as a query may still write or change the session: a DML statement in
    parentheses (a WITH clause's), or a call of one of :data:`SIDE_EFFECT_FUNCTIONS`; None when neither.

    By token, not by parse tree: DuckDB's Python API exposes none. A column named like a DML keyword is
    read as one only in ``(update t ...)`` form; quote it (``"update"``) to be sure.
    """
    code = _code(text)
    for i, (_, word, kind) in enumerate(code[:-1]):
        after = code[i + 1]
        if word == "(" and after[1].upper() in DML_WORDS and i + 2 < len(code):
            if code[i + 2][2] in ("keyword", "identifier"):
                return f"runs {after[1].upper()} inside the query"
        if after[1] == "(" and kind in ("keyword", "identifier"):
            name = word.strip('"').lower()
            if name in SIDE_EFFECT_FUNCTIONS:
                return f"calls {name}(), which changes the session or the file, or runs unchecked SQL"
    return None


def read_only_reason(con: duckdb.DuckDBPyConnection, kind: str, text: str) -> str | None:
    """None when one parsed statement (its type and text) only reads; else why it may not run read-only.

    Queries read. ``SET VARIABLE`` names a value for later statements (duckdb 1.5 types it SET, 2.x
    VARIABLE_SET). A PRAGMA must be one of :data:`INFO_PRAGMAS`. ``EXPLAIN ANALYZE`` runs its statement,
    so an EXPLAIN is checked by what it explains. Everything else (writes, COPY, EXPORT, ATTACH, INSTALL,
    LOAD, SET and RESET of a setting, CALL, CHECKPOINT) is refused.
    """
    words = [t.upper() for t in _code_tokens(text)]
    if kind in READ_STATEMENTS:
        return _query_reason(text)
    if kind in ("SET", "VARIABLE_SET") and words[:2] == ["SET", "VARIABLE"]:
        return None
    if kind == "PRAGMA":
        name = words[1].lower() if len(words) > 1 else ""
        if name in INFO_PRAGMAS and "=" not in words:
            return None
        return "changes a setting or writes"
    if kind == "EXPLAIN":
        inner = _explained(text)
        try:
            statements = con.extract_statements(inner) if inner else []
        except duckdb.Error:
            statements = []
        inner_reason = (
            read_only_reason(con, statements[0].type.name, inner)
            if len(statements) == 1
            else "not one statement"
        )
        if inner_reason is None:
            return None
        return f"explains a statement that may write (EXPLAIN ANALYZE runs it): {inner_reason}"
    return "may write to the database or a file, or change a setting"


#: The options DuckDB's ``EXPLAIN (option, ...)`` list takes.
EXPLAIN_OPTIONS = frozenset({"ANALYZE", "FORMAT"})


def _explained(text: str) -> str:
    """The statement an EXPLAIN names: what follows EXPLAIN, an optional ANALYZE and an option list."""
    code = [(start, word.upper()) for start, word, _ in _code(text)]
    i = 1  # past EXPLAIN
    if i < len(code) and code[i][1] == "ANALYZE":
        i += 1
    # an option list, not a statement in parentheses (EXPLAIN (SELECT 1))
    if i + 1 < len(code) and code[i][1] == "(" and code[i + 1][1] in EXPLAIN_OPTIONS:
        depth = 0
        while i < len(code):
            depth += code[i][1] == "("
            depth -= code[i][1] == ")"
            i += 1
            if depth == 0:
                break
    return text[code[i][0] :] if i < len(code) else ""


def settle(con: duckdb.DuckDBPyConnection | Connection) -> None:
    """Run a half-read ``execute()`` result to its end (e.g. after ``fetchone``): duckdb 2.x refuses
    relation queries on a connection that holds one. A no-op on 1.5, which has no ``complete``."""
    complete = getattr(con, "complete", None)
    if complete is not None:
        complete()


def _is_statement(con: Connection | duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Whether the last statement of ``sql`` is one that returns no rows of its own (INSERT, CREATE, SET,
    ...): duckdb 2.x answers those with a one-column ``Count`` / ``Success`` result, 1.5 with none."""
    raw = con.raw if isinstance(con, Connection) else con
    settle(raw)  # a half-read earlier result would block parsing on 2.x; execute drops it anyway
    try:
        statements = raw.extract_statements(sql)
    except duckdb.Error:
        return False  # let execute report the error
    if not statements:
        raise InvalidParams(EMPTY_SQL)
    return statements[-1].type.name not in ("SELECT", "EXPLAIN", "PRAGMA", "CALL")


def _counts_only(description: Sequence[Any]) -> bool:
    return len(description) == 1 and description[0][0] in ("Count", "Success")


@contextmanager
def _no_copy_warning() -> Iterator[None]:
    """duckdb 2.x warns that Arrow output of an ``execute()`` result copies the rows (once, batch by batch
    for a reader); that is the price of the one API both versions stream through, so it is not news."""

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        yield


def polars_frame(table: pa.Table) -> pl.DataFrame:
    """An Arrow table as a polars frame; columns polars cannot import (INTERVAL) become text."""
    for i, field in enumerate(table.schema):
        if pa.types.is_interval(field.type):
            text = pa.array([interval_text(v) for v in table.column(i).to_pylist()], pa.string())
            table = table.set_column(i, field.name, text)
    return pl.from_arrow(table)


def interval_text(value: Any) -> str | None:
    """An Arrow month-day-nano interval as DuckDB prints it: '1 year 2 months 3 days 04:05:06'."""
    if value is None:
        return None
    years, months = divmod(value.months, 12)
    parts = [f"{n} {unit}{'s' if abs(n) != 1 else ''}" for n, unit in
             ((years, "year"), (months, "month"), (value.days, "day")) if n]  # fmt: skip
    if value.nanoseconds or not parts:
        seconds, nanos = divmod(abs(value.nanoseconds), 1_000_000_000)
        clock = f"{'-' if value.nanoseconds < 0 else ''}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        parts.append(clock + (f".{nanos // 1000:06d}" if nanos else ""))
    return " ".join(parts)


def holder_of(message: str) -> str | None:
    """'PID 123, /usr/bin/python3' from DuckDB's lock message ('... is held in PATH (PID 123) ...')."""

    m = re.search(r"held in (.+?) \(PID (\d+)\)", message)
    if m:
        return f"PID {m.group(2)}, {m.group(1)}"
    m = re.search(r"PID (\d+)", message)
    return f"PID {m.group(1)}" if m else None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (DuckDB appends hints on later lines)."""
    return (str(exc).strip().splitlines() or [""])[0]
