"""Every failure a user can cause is one of these; ``hnm_db.cli`` prints it as one line and exits 1.

Anything that is not an ``HnmError`` is a bug and keeps its traceback.
Stage modules add their own subclasses here, one class per user-facing failure.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ChecksFailed",
    "DatabaseLocked",
    "DuplicateId",
    "EmptySelection",
    "HnmError",
    "InputError",
    "InvalidParams",
    "MissingBM25Statistics",
    "MissingEmbeddings",
    "ModelLoadError",
    "ModelRegisteredAs",
    "NotFound",
    "SchemaTooNew",
    "SchemaTooOld",
    "SourceUnavailable",
    "StorageTooNew",
    "TooFewNegatives",
    "UnknownIds",
    "UnknownModel",
    "WriteRefused",
]


class HnmError(Exception):
    """Base class of all user-facing errors."""


class DatabaseLocked(HnmError):
    """Another process holds the database file (DuckDB lets one writer or many readers in, not both)."""

    def __init__(self, path: str, holder: str | None = None) -> None:
        held = f" ({holder})" if holder else ""
        super().__init__(f"database is locked by another process{held}: {path}")
        self.path = path
        self.holder = holder


class SchemaTooNew(HnmError):
    """The database was written by a newer hnm-db than this one."""

    def __init__(self, path: str, found: int, known: int) -> None:
        super().__init__(
            f"{path} has schema version {found} but this hnm-db knows only up to {known}: "
            "upgrade hnm-db to open it"
        )


class StorageTooNew(HnmError):
    """The file was written by a newer DuckDB than the one installed (its storage format is unknown here)."""

    def __init__(self, path: str, installed: str) -> None:
        super().__init__(
            f"{path} was written by a newer DuckDB than the installed duckdb {installed}: "
            "upgrade duckdb (pip install -U duckdb) to open it"
        )


class SchemaTooOld(HnmError):
    """A read-only open of a file that an older hnm-db wrote: it needs migrating, which writes."""

    def __init__(self, path: str, found: int, known: int) -> None:
        super().__init__(
            f"{path} has schema version {found} and this hnm-db needs {known}: open it once for writing "
            "(e.g. `hnm-db init`) to migrate it"
        )


class WriteRefused(HnmError):
    """A statement would write (to the database or a file) where only reading was asked for."""


class InvalidParams(HnmError):
    """A parameter is out of range or conflicts with another; the message names the field."""


class InputError(HnmError):
    """Bad input data; the message names the file and line (or id) at fault."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f" line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line


class DuplicateId(InputError):
    """The same id twice in one input, or a known id with different content."""


class UnknownIds(HnmError):
    """Rows refer to ids that are not in the database (e.g. qrels naming unknown queries)."""


class SourceUnavailable(HnmError):
    """A path or URL could not be read."""


class NotFound(HnmError):
    """A named object (run, model, ensemble, ...) does not exist."""


class AlreadyExists(HnmError):
    """A named object or output folder exists and replacing it was not asked for."""


class ModelRegisteredAs(AlreadyExists):
    """A model identical to one registered under another name (same fingerprint): one model, one name."""


class UnknownModel(HnmError):
    """A model alias or path that cannot be resolved."""


class ModelLoadError(HnmError):
    """A model was found but failed to load."""


class MissingEmbeddings(HnmError):
    """Some texts have no vector for a model an operation needs."""


class EmptySelection(HnmError):
    """An operation found nothing to work on (a split without qrels, a run without triplets)."""


class ChecksFailed(HnmError):
    """One or more invariant queries of sql/checks returned rows; the message names them and the rows."""

    def __init__(self, message: str, checks: list[str]) -> None:
        super().__init__(message)
        self.checks = checks


class TooFewNegatives(HnmError):
    """An export format needs more negatives per query than a run has for some queries."""


class MissingBM25Statistics(HnmError):
    """A hybrid ensemble needs BM25 statistics of the chunk texts, and no chunk text has a BM25 term."""
