"""Ingest: sources (BEIR folders, JSONL/CSV/Parquet tables, files, URLs) -> documents, queries, qrels.

Every command works in two phases so that bad input never leaves a half-written database:

1. *read and validate* without touching the database: parse each file, name the file and line of any
   malformed record, reject duplicate ids inside the input, skip (and count) empty texts;
2. *one transaction*: compare with what is stored (by ``content_hash`` for texts, ``score`` for qrels),
   check that qrels name known queries and documents, apply the ``on_duplicate`` policy, then bulk
   insert/update through Arrow (never a Python loop of ``INSERT`` statements).

Stored text is NFC-normalised and stripped but keeps its line breaks (chunkers split on them); the
hash is :func:`hnm_db.sources.text.content_hash` of the text (for documents: of title and text together, so a
changed title counts as a change). Re-ingesting the same data therefore changes nothing.
"""

from __future__ import annotations

import io
import json
import math
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
import yaml
from tqdm import tqdm

from hnm_db.errors import DuplicateId, InputError, InvalidParams, SourceUnavailable, UnknownIds
from hnm_db.options import param
from hnm_db.sources.extract import (
    SUFFIXES,
    Extracted,
    check_readable,
    clean_text,
    decode_utf8,
    extract_file,
    extract_html,
    one_line,
    read_bytes,
)
from hnm_db.sources.text import content_hash
from hnm_db.store import UNSPLIT, Store

KINDS = ("documents", "queries", "qrels", "spans")
#: The table each kind is written to.
_TABLES = {"documents": "documents", "queries": "queries", "qrels": "qrels", "spans": "qrel_spans"}
#: Kinds that are judgements (no text, no ingested_at), not texts.
_JUDGEMENTS = ("qrels", "spans")
POLICIES = ("error", "skip", "replace")

_KEYS = {
    "documents": ("doc_id",),
    "queries": ("query_id",),
    "qrels": ("query_id", "doc_id", "split"),
    "spans": ("query_id", "doc_id", "start_char", "end_char", "split"),
}
_VERSION = {"documents": "content_hash", "queries": "content_hash", "qrels": "score", "spans": "score"}
_COLUMNS = {
    "documents": ("doc_id", "title", "text", "source", "content_hash", "meta"),
    "queries": ("query_id", "text", "content_hash", "meta"),
    "qrels": ("query_id", "doc_id", "score", "split"),
    "spans": ("query_id", "doc_id", "start_char", "end_char", "score", "split"),
}
_LOC_SCHEMA = {"_file": pl.String, "_unit": pl.String, "_line": pl.Int64}
_SCHEMAS = {
    # _lead: where the stored text starts in the source's text (None: cleaning changed more than its
    # ends); _raw_len: the source text's length (span offsets count in it)
    "documents": {c: pl.String for c in _COLUMNS["documents"]}
    | _LOC_SCHEMA
    | {"_lead": pl.Int64, "_raw_len": pl.Int64},
    "queries": {c: pl.String for c in _COLUMNS["queries"]} | _LOC_SCHEMA,
    "qrels": {"query_id": pl.String, "doc_id": pl.String, "score": pl.Int64, "split": pl.String}
    | _LOC_SCHEMA,
    "spans": {
        "query_id": pl.String,
        "doc_id": pl.String,
        "start_char": pl.Int64,
        "end_char": pl.Int64,
        "score": pl.Int64,
        "split": pl.String,
    }
    | _LOC_SCHEMA,
}
#: Column names tried, in order, when an option does not name one.
_CANDIDATES = {
    "documents.id": ("_id", "id", "doc_id", "docid", "corpus-id", "corpus_id"),
    "queries.id": ("_id", "id", "query_id", "qid", "query-id"),
    "text": ("text",),
    "title": ("title",),
    "qrels.query_id": ("query-id", "query_id", "qid"),
    "qrels.doc_id": ("corpus-id", "corpus_id", "doc_id", "docid"),
    "score": ("score",),
    "spans.start": ("start", "start_char", "begin"),
    "spans.end": ("end", "end_char", "stop"),
    "split": ("split",),
}
#: At most this many ids or places are named in one error message.
EXAMPLES = 5
HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_PAGE_BYTES = 50 * 1024 * 1024


# -- results ----------------------------------------------------------------------------------------
@dataclass
class KindCounts:
    """What one command did to one table."""

    new: int = 0
    unchanged: int = 0
    replaced: int = 0
    skipped_empty: int = 0
    skipped_duplicate: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Failure:
    """A source (URL) that could not be ingested, and why."""

    source: str
    reason: str


@dataclass
class IngestSummary:
    """Counts per table, plus the failures (URLs) and the places where empty texts were skipped.

    ``warnings`` name parts of the source that were missing. ``empty`` maps kind -> id -> where, for the documents and queries skipped as empty: a qrel naming
    one of them is skipped too (and noted), rather than failing the ingest as an unknown id.
    """

    counts: dict[str, KindCounts] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: Parts of the source that were expected and not found (e.g. a BEIR folder without queries.jsonl).
    warnings: list[str] = field(default_factory=list)
    empty: dict[str, dict[str, str]] = field(default_factory=dict)

    def kind(self, kind: str) -> KindCounts:
        return self.counts.setdefault(kind, KindCounts())

    def rows(self) -> list[dict[str, Any]]:
        """One row per table touched, in pipeline order (what the CLI prints)."""
        return [{"table": k} | asdict(self.counts[k]) for k in KINDS if k in self.counts]

    def describe(self) -> str:
        """One line for humans: 'documents: 3 new, 37 unchanged; qrels: ...'."""
        parts = []
        for row in self.rows():
            nums = ", ".join(
                f"{v} {k.replace('_', ' ')}"
                for k, v in row.items()
                if k != "table" and (v or k in ("new", "unchanged"))
            )
            parts.append(f"{row['table']}: {nums}")
        return "; ".join(parts) or "nothing to ingest"


# -- parameters -------------------------------------------------------------------------------------
def check_policy(on_duplicate: str) -> str:
    if on_duplicate not in POLICIES:
        raise InvalidParams(f"on_duplicate must be one of {', '.join(POLICIES)}, not {on_duplicate!r}")
    return on_duplicate


# The fields every ingest command shares, declared once (each *Params class below calls them).
def _on_duplicate() -> Any:
    return param(
        "error",
        choices=POLICIES,
        help="What a known id with different content does: fail, keep the stored row, or replace it.",
    )


def _license() -> Any:
    return param(
        None,
        help="License of the documents (a Hub license id, e.g. cc-by-4.0); kept in each new document's "
        "meta for the export's dataset card.",
    )


def _language() -> Any:
    return param(
        None,
        help="Language code(s) of the documents, comma-separated (e.g. en); kept in each new document's "
        "meta for the export's dataset card.",
    )


def _numbers_as_text() -> Any:
    return param(
        False,
        help="Store a number found in an id, text or title field as its text (refused by default: a number"
        " there is most often the wrong column).",
    )


@dataclass(frozen=True)
class BeirParams:
    """``ingest beir``: what a known id with new content does, and the documents' license and language
    (else the folder's dataset card's)."""

    on_duplicate: str = _on_duplicate()
    license: str | None = _license()
    language: str | None = _language()
    numbers_as_text: bool = _numbers_as_text()

    def __post_init__(self) -> None:
        check_policy(self.on_duplicate)


@dataclass(frozen=True)
class FilesParams:
    """``ingest files``: what a known id (a relative path) with new content does."""

    on_duplicate: str = _on_duplicate()

    def __post_init__(self) -> None:
        check_policy(self.on_duplicate)


@dataclass(frozen=True)
class UrlParams:
    """``ingest urls``: how long and how wide to fetch, and what a failed URL does."""

    timeout: float = param(10.0, help="Seconds to wait for each URL.")
    workers: int = param(8, help="URLs fetched at the same time.")
    strict: bool = param(False, help="Fail (and write nothing) if any URL fails.")
    on_duplicate: str = _on_duplicate()

    def __post_init__(self) -> None:
        check_policy(self.on_duplicate)
        if (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, (int, float))
            or not self.timeout > 0
        ):
            raise InvalidParams(f"timeout must be a number of seconds > 0, not {self.timeout!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise InvalidParams(f"workers must be an integer >= 1, not {self.workers!r}")


@dataclass(frozen=True)
class TableSpec:
    """Which columns of a JSONL/CSV/Parquet table hold what; unset names fall back to the usual ones.

    Documents and queries need an id and a text (title optional); qrels need a query id and a doc id,
    the score defaults to 1 and the split to ``split`` (or a ``split`` column, else ``UNSPLIT``,
    which ``hnm-db split`` assigns). Spans are qrels with a character range ``[start, end)`` of the
    document's text.
    Extra columns go to ``meta`` only when named (``meta_columns``) or with ``all_meta``.
    An id, text or title must be a string: a number there (JSON ``"text": 5``, a Parquet Int64 column),
    or a text column whose every value is a number (a CSV's wrong column), is refused unless
    ``numbers_as_text`` stores numbers as their text.
    """

    kind: str = param(
        "documents",
        choices=KINDS,
        help="Which table the rows go to.",
    )
    id_column: str | None = param(
        None,
        help="Id column (documents/queries; default _id, id, doc_id / query_id).",
    )
    text_column: str | None = param(None, help="Text column (default text).")
    title_column: str | None = param(None, help="Title column (documents; default title if present).")
    query_id_column: str | None = param(
        None, help="Query id column (qrels, spans; default query-id or query_id)."
    )
    doc_id_column: str | None = param(
        None, help="Document id column (qrels, spans; default corpus-id or doc_id)."
    )
    score_column: str | None = param(
        None, help="Relevance score column (qrels, spans; default score, else 1)."
    )
    start_column: str | None = param(
        None, help="Span start column: a character offset into the document's text (spans; default start)."
    )
    end_column: str | None = param(
        None, help="Span end column: the offset just past the span (spans; default end)."
    )
    split: str | None = param(
        None,
        help="Split of these qrels or spans (default: a split column, else 'unsplit', which `hnm-db split` "
        "assigns).",
    )
    meta_columns: tuple[str, ...] = param(
        (),
        flag="--meta-column",
        help="Column to keep in meta (repeatable).",
    )
    all_meta: bool = param(False, help="Keep every other column in meta.")
    on_duplicate: str = _on_duplicate()
    license: str | None = _license()
    language: str | None = _language()
    numbers_as_text: bool = _numbers_as_text()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidParams(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        check_policy(self.on_duplicate)
        if self.meta_columns and self.all_meta:
            raise InvalidParams("meta_columns and all_meta exclude each other")
        if self.split is not None and not self.split.strip():
            raise InvalidParams("split must not be empty")
        only = {
            "judgements": ("query_id_column", "doc_id_column", "score_column", "split"),
            "spans": ("start_column", "end_column"),
            "text": ("id_column", "text_column"),
            "documents": ("title_column", "license", "language"),
        }
        for owner, names in only.items():
            allowed = (
                self.kind == owner
                or (owner == "text" and self.kind not in _JUDGEMENTS)
                or (owner == "judgements" and self.kind in _JUDGEMENTS)
            )
            for name in names:
                if getattr(self, name) is not None and not allowed:
                    raise InvalidParams(f"{name} does not apply to kind {self.kind!r}")


# -- reading ----------------------------------------------------------------------------------------
class Loc(NamedTuple):
    """Where a record came from: file, 'line' or 'row' (or '' for a whole file), 1-based number."""

    file: str
    unit: str = ""
    n: int = 0

    def error(self, cls: type[InputError], message: str) -> InputError:
        if self.unit == "line":
            return cls(message, path=self.file, line=self.n)
        return cls(message, path=str(self))

    def __str__(self) -> str:
        return f"{self.file} {self.unit} {self.n}" if self.unit else self.file


Record = tuple[Loc, dict[str, Any]]


def _lines(path: Path) -> list[str]:
    return decode_utf8(read_bytes(path), str(path)).split("\n")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate(value: Any, name: str | None = None) -> tuple[str | None, str] | None:
    """(field, character) of the first lone surrogate in a decoded JSON value, keys included.

    JSON's ``\\ud800`` escapes decode to such halves of a UTF-16 pair, which are not Unicode text:
    they cannot be hashed, stored or written back, so they are refused where the line is still known.
    """
    if isinstance(value, str):
        m = _SURROGATE.search(value)
        return (name, m.group()) if m else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and _SURROGATE.search(key):
            return key, _SURROGATE.search(key).group()
        found = _surrogate(item, name if name is not None else str(key))
        if found:
            return found
    return None


def _no_records(path: Path, what: str) -> InputError:
    """An input without a single record is a mistake (a wrong or truncated file), never '0 new'."""
    return InputError(f"no records: {what}", path=str(path))


def read_jsonl(path: Path) -> list[Record]:
    """One JSON object per line; blank lines are ignored; errors name the file and line."""
    records = []
    for i, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        loc = Loc(str(path), "line", i)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise loc.error(InputError, f"malformed JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise loc.error(InputError, f"expected a JSON object, found {type(obj).__name__}")
        bad = _surrogate(obj)
        if bad:
            field, char = bad
            where = f"field {field!r}" if field is not None else "a key"
            raise loc.error(
                InputError, f"{where} holds a lone surrogate \\u{ord(char):04x}, which is not Unicode text"
            )
        records.append((loc, obj))
    if not records:
        raise _no_records(path, "the file is empty" if not path.stat().st_size else "only blank lines")
    return records


def read_csv(path: Path, *, header: bool = True, names: Sequence[str] = ()) -> list[Record]:
    """A CSV (or .tsv) file; every value is read as text, empty cells as missing.

    With a header (the default) its first line names the columns; without one, ``names`` does.
    """
    text = decode_utf8(read_bytes(path), str(path))
    if not text.strip():
        raise _no_records(path, "the file is empty" if not text else "only blank lines")
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        frame = pl.read_csv(
            io.StringIO(text), separator=sep, infer_schema=False, has_header=header,
            new_columns=list(names) or None,
        )  # fmt: skip
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
        raise InputError(f"malformed CSV: {str(exc).splitlines()[0]}", path=str(path)) from None
    if not frame.height:
        raise _no_records(path, "a header line and no rows")
    # Line numbers assume no quoted newlines inside cells (the header, when there is one, is line 1).
    first = 2 if header else 1
    return [(Loc(str(path), "line", i + first), row) for i, row in enumerate(frame.iter_rows(named=True))]


#: Column names that mark a qrels file's first line as a header (so a header is known by what it says).
QRELS_HEADER_NAMES = frozenset({"query-id", "query_id", "qid", "corpus-id", "corpus_id", "doc_id", "docid",
                                "score", "split", "relevance"})  # fmt: skip
#: The columns of a qrels file without a header, in BEIR's order (a 4th column is the split).
QRELS_POSITIONAL = ("query-id", "corpus-id", "score", "split")


def read_qrels_csv(path: Path, spec: TableSpec) -> list[Record]:
    """A qrels CSV/TSV, with or without a header: the first line is a header when it names a column.

    BEIR's qrels are usually written with a header but not always; a one-line file whose only line is a
    judgement must not be swallowed as a header (and ingest nothing).
    """
    text = decode_utf8(read_bytes(path), str(path))
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    first = next((line for line in text.split("\n") if line.strip()), "")
    named = {c for c in (spec.query_id_column, spec.doc_id_column, spec.score_column) if c}
    fields = {f.strip().strip('"').lower() for f in first.rstrip("\r").split(sep)}
    if not first or fields & (QRELS_HEADER_NAMES | {n.lower() for n in named}):
        return read_csv(path)
    width = len(first.rstrip("\r").split(sep))
    if not 2 <= width <= len(QRELS_POSITIONAL) or named:
        raise InputError(
            f"the first line names no qrels column ({', '.join(sorted(QRELS_HEADER_NAMES))}); add a header "
            f"line, or give 2-4 columns in the order {', '.join(QRELS_POSITIONAL)}",
            path=str(path),
            line=1,
        )
    return read_csv(path, header=False, names=QRELS_POSITIONAL[:width])


def read_parquet(path: Path) -> list[Record]:
    """A Parquet table; errors name the row (1-based)."""
    check_readable(path)  # the same missing/unreadable messages as the other formats
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise InputError(f"not a readable Parquet file: {str(exc).splitlines()[0]}", path=str(path)) from None
    if not frame.height:
        raise _no_records(path, "the table has no rows")
    return [(Loc(str(path), "row", i + 1), row) for i, row in enumerate(frame.iter_rows(named=True))]


#: Column names that mark a spans file's first line as a header.
SPANS_HEADER_NAMES = QRELS_HEADER_NAMES | {"start", "end", "start_char", "end_char"}


def _read_beir_tsv(path: Path, names: tuple[str, ...], header: frozenset[str], what: str) -> list[Record]:
    """Tab-separated ``names`` per line; the first line is a header when it names a column of ``header``
    (by what it says, not where it is); ``what`` is what a file without any record lacks."""
    records = []
    for i, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        loc = Loc(str(path), "line", i)
        fields = line.rstrip("\r").split("\t")
        if not records and {f.strip().lower() for f in fields} & header:
            continue
        if len(fields) != len(names):
            raise loc.error(
                InputError,
                f"expected {len(names)} tab-separated fields ({', '.join(names)}), found {len(fields)}",
            )
        records.append((loc, dict(zip(names, fields, strict=True))))
    if not records:
        raise _no_records(path, f"no {what} (an empty file or a header line only)")
    return records


def read_beir_spans(path: Path) -> list[Record]:
    """Span judgements in BEIR's style (QMSum's ``spans/<split>.tsv``): query-id, corpus-id, start, end,
    score; split = file stem."""
    return _read_beir_tsv(
        path, ("query-id", "corpus-id", "start", "end", "score"), SPANS_HEADER_NAMES, "spans"
    )


def read_beir_qrels(path: Path) -> list[Record]:
    """BEIR qrels: query-id, corpus-id, score; split = file stem."""
    return _read_beir_tsv(path, ("query-id", "corpus-id", "score"), QRELS_HEADER_NAMES, "judgements")


READERS: dict[str, Callable[[Path], list[Record]]] = {
    "jsonl": read_jsonl,
    "csv": read_csv,
    "parquet": read_parquet,
}


# -- records -> validated frames --------------------------------------------------------------------
def _column(
    records: Sequence[Record], explicit: str | None, candidates: Iterable[str], label: str, required: bool
) -> str | None:
    """The column to read: the named one, else the first usual name present in the input."""
    seen: set[str] = set()
    for _, rec in records:
        seen.update(rec)
    if explicit is not None:
        if records and explicit not in seen:
            raise records[0][0].error(InputError, f"missing required field {explicit!r} (no such column)")
        return explicit
    for name in candidates:
        if name in seen:
            return name
    if required and records:
        first = next(iter(candidates))
        raise records[0][0].error(InputError, f"missing required field {first!r} ({label})")
    return None


def _value(loc: Loc, rec: dict[str, Any], name: str, *, what: str, numbers: bool = False) -> str:
    """A required id or text value as a string; a number only with ``numbers`` (written as text)."""
    value = rec.get(name)
    if value is None:
        raise loc.error(InputError, f"missing required field {name!r}")
    text = _scalar_text(loc, name, value, numbers=numbers)
    if what == "id":
        text = text.strip()
        if not text:
            raise loc.error(InputError, f"field {name!r} is an empty id")
        if "\x00" in text:
            raise loc.error(InputError, f"field {name!r} holds a NUL character, which an id cannot hold")
    return text


#: What the refusal of a number says a user can do.
NUMBERS_HINT = "pass --numbers-as-text (numbers_as_text=True) to store numbers as their text"


def _scalar_text(loc: Loc, name: str, value: Any, *, numbers: bool = False) -> str:
    """A string, or (with ``numbers``) a finite number written as text. Anything else would be stored as
    its Python repr ('nan', "['a', 1]", 'True'), which is never what the source meant; a number in an
    id, text or title column is most often the wrong column, so it is refused unless asked for."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise loc.error(InputError, f"field {name!r} must be a string, found {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise loc.error(InputError, f"field {name!r} must be a string, found the number {value!r}")
    if not numbers:
        raise loc.error(
            InputError,
            f"field {name!r} must be a string, found the {type(value).__name__} {value!r}; {NUMBERS_HINT}",
        )
    return str(value)


#: A number as a CSV cell writes it (ASCII digits only: a column of other scripts' numerals is text).
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _check_not_all_numbers(records: Sequence[Record], name: str, spec: TableSpec) -> None:
    """A CSV text or title column whose every value is a number is the wrong column (a CSV has no types,
    so a number arrives as a string that the type check of :func:`_scalar_text` cannot catch): refused,
    naming the column and its first value, unless ``numbers_as_text``."""
    if spec.numbers_as_text:
        return
    values = [(loc, rec.get(name)) for loc, rec in records if rec.get(name) is not None]
    texts = [(loc, v.strip()) for loc, v in values if isinstance(v, str) and v.strip()]
    if texts and len(texts) == len(values) and all(_NUMBER.fullmatch(v) for _, v in texts):
        loc, first = texts[0]
        raise loc.error(
            InputError,
            f"column {name!r} holds only numbers (first {first!r}), not text; name the text column with "
            f"--text-column, or {NUMBERS_HINT}",
        )


def _meta(loc: Loc, rec: dict[str, Any], used: set[str], spec: TableSpec) -> str | None:
    """The record's meta JSON; a source's license and language (option or card) fill in missing keys,
    so an export's dataset card can carry them."""
    names = [k for k in rec if k not in used] if spec.all_meta else list(spec.meta_columns)
    meta = {k: rec[k] for k in names if rec.get(k) is not None}
    for key in ("license", "language"):
        if getattr(spec, key) and meta.get(key) is None:
            meta[key] = getattr(spec, key)
    if not meta:
        return None
    try:  # NaN and Infinity are not JSON: DuckDB's JSON column would refuse them
        return json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        field = next(k for k in sorted(meta) if "NaN" in json.dumps(meta[k], default=str)
                     or "Infinity" in json.dumps(meta[k], default=str))  # fmt: skip
        raise loc.error(
            InputError, f"field {field!r} holds NaN or Infinity, which JSON cannot store"
        ) from None


def _check_meta_columns(records: Sequence[Record], spec: TableSpec) -> None:
    seen: set[str] = set()
    for _, rec in records:
        seen.update(rec)
    for name in spec.meta_columns:
        if records and name not in seen:
            raise records[0][0].error(InputError, f"meta column {name!r} is not in the input")


def document_hash(title: str | None, text: str) -> str:
    """Documents hash title and text together, so a changed title is a change."""
    return content_hash(f"{title}\n\n{text}" if title else text)


def text_rows(
    records: Sequence[Record],
    spec: TableSpec,
    source: str | None,
    summary: IngestSummary,
    *,
    untyped: bool = False,
) -> pl.DataFrame:
    """Documents or queries from records; empty texts are skipped and counted, not errors. ``untyped``
    records (CSV) hold every value as a string, so a text or title column of numbers only is refused."""
    kind = spec.kind
    id_col = _column(records, spec.id_column, _CANDIDATES[f"{kind}.id"], "the id", True)
    text_col = _column(records, spec.text_column, _CANDIDATES["text"], "the text", True)
    title_col = (
        _column(records, spec.title_column, _CANDIDATES["title"], "the title", False)
        if kind == "documents"
        else None
    )
    _check_meta_columns(records, spec)
    if untyped:
        for name in (text_col, title_col):
            if name:
                _check_not_all_numbers(records, name, spec)
    used = {c for c in (id_col, text_col, title_col) if c}
    numbers = spec.numbers_as_text
    rows = []
    for loc, rec in records:
        rid = _value(loc, rec, id_col, what="id", numbers=numbers)
        raw = _value(loc, rec, text_col, what="text", numbers=numbers)
        text = clean_text(raw)
        row = {
            _KEYS[kind][0]: rid,
            "text": text,
            "meta": _meta(loc, rec, used, spec),
            "_file": loc.file,
            "_unit": loc.unit,
            "_line": loc.n,
        }
        if kind == "documents":
            raw_title = rec.get(title_col) if title_col else None
            title = one_line(
                None if raw_title is None else _scalar_text(loc, title_col, raw_title, numbers=numbers)
            )
            row |= {"title": title, "source": source or loc.file, "content_hash": document_hash(title, text)}
            lead = len(raw) - len(raw.lstrip())
            row["_lead"] = lead if raw[lead : lead + len(text)] == text else None
            row["_raw_len"] = len(raw)
        else:
            row["content_hash"] = content_hash(text)
        rows.append(row)
    return _finish(kind, rows, summary)


def _score(loc: Loc, value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise loc.error(InputError, f"field {name!r} must be an integer, found {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise loc.error(InputError, f"field {name!r} must be an integer, found {value!r}") from None
    if not number.is_integer():
        raise loc.error(InputError, f"field {name!r} must be an integer, found {value!r}")
    return int(number)


def qrel_rows(
    records: Sequence[Record], spec: TableSpec, summary: IngestSummary, split: str | None = None
) -> pl.DataFrame:
    """Qrels from records: query id, doc id, integer score (default 1), split (option, column, 'train')."""
    q_col = _column(records, spec.query_id_column, _CANDIDATES["qrels.query_id"], "the query id", True)
    d_col = _column(records, spec.doc_id_column, _CANDIDATES["qrels.doc_id"], "the document id", True)
    s_col = _column(records, spec.score_column, _CANDIDATES["score"], "the score", False)
    split = split or spec.split
    split_col = None if split else _column(records, None, _CANDIDATES["split"], "the split", False)
    numbers = spec.numbers_as_text
    rows = []
    for loc, rec in records:
        row_split = (
            _value(loc, rec, split_col, what="id", numbers=numbers) if split_col else (split or UNSPLIT)
        )
        score = _score(loc, rec.get(s_col), s_col) if s_col and rec.get(s_col) is not None else 1
        rows.append(
            {
                "query_id": _value(loc, rec, q_col, what="id", numbers=numbers),
                "doc_id": _value(loc, rec, d_col, what="id", numbers=numbers),
                "score": score,
                "split": row_split,
                "_file": loc.file,
                "_unit": loc.unit,
                "_line": loc.n,
            }
        )
    return _finish("qrels", rows, summary)


def _offset(loc: Loc, value: Any, name: str) -> int:
    if value is None:
        raise loc.error(InputError, f"missing required field {name!r}")
    number = _score(loc, value, name)
    if number < 0:
        raise loc.error(InputError, f"field {name!r} must be a character offset >= 0, found {number}")
    return number


def span_rows(
    records: Sequence[Record], spec: TableSpec, summary: IngestSummary, split: str | None = None
) -> pl.DataFrame:
    """Spans from records: query id, doc id, ``[start, end)`` character offsets into the document's text
    (integers, start < end), integer score (default 1), split (as for qrels)."""
    q_col = _column(records, spec.query_id_column, _CANDIDATES["qrels.query_id"], "the query id", True)
    d_col = _column(records, spec.doc_id_column, _CANDIDATES["qrels.doc_id"], "the document id", True)
    a_col = _column(records, spec.start_column, _CANDIDATES["spans.start"], "the span start", True)
    b_col = _column(records, spec.end_column, _CANDIDATES["spans.end"], "the span end", True)
    s_col = _column(records, spec.score_column, _CANDIDATES["score"], "the score", False)
    split = split or spec.split
    split_col = None if split else _column(records, None, _CANDIDATES["split"], "the split", False)
    numbers = spec.numbers_as_text
    rows = []
    for loc, rec in records:
        start, end = _offset(loc, rec.get(a_col), a_col), _offset(loc, rec.get(b_col), b_col)
        if start >= end:
            raise loc.error(
                InputError, f"span start {start} is not before its end {end} (a range is [start, end))"
            )
        rows.append(
            {
                "query_id": _value(loc, rec, q_col, what="id", numbers=numbers),
                "doc_id": _value(loc, rec, d_col, what="id", numbers=numbers),
                "start_char": start,
                "end_char": end,
                "score": _score(loc, rec.get(s_col), s_col) if s_col and rec.get(s_col) is not None else 1,
                "split": _value(loc, rec, split_col, what="id", numbers=numbers)
                if split_col
                else (split or UNSPLIT),
                "_file": loc.file,
                "_unit": loc.unit,
                "_line": loc.n,
            }
        )
    return _finish("spans", rows, summary)


def _finish(kind: str, rows: list[dict[str, Any]], summary: IngestSummary) -> pl.DataFrame:
    """Frame of validated rows: duplicates inside the input are errors, empty texts are skipped."""
    frame = (
        pl.DataFrame(rows, schema=_SCHEMAS[kind], orient="row")
        if rows
        else pl.DataFrame(schema=_SCHEMAS[kind])
    )
    _reject_duplicates(kind, frame)
    counts = summary.kind(kind)
    if kind in _JUDGEMENTS:
        return frame
    empty = frame.filter(pl.col("text") == "")  # texts are stripped: empty means whitespace-only
    counts.skipped_empty += empty.height
    key = _KEYS[kind][0]
    summary.skipped += [
        f"{Loc(r['_file'], r['_unit'], r['_line'])}: empty text, id {r[key]!r} skipped"
        for r in empty.iter_rows(named=True)
    ]
    summary.empty.setdefault(kind, {}).update(
        {r[key]: str(Loc(r["_file"], r["_unit"], r["_line"])) for r in empty.iter_rows(named=True)}
    )
    return frame.join(empty.select(key), on=key, how="anti", maintain_order="left")


def _reject_duplicates(kind: str, frame: pl.DataFrame) -> None:
    keys = list(_KEYS[kind])
    dups = frame.filter(pl.struct(keys).is_duplicated())
    if not dups.height:
        return
    groups = dups.group_by(keys, maintain_order=True).agg(pl.col("_line"), pl.col("_file"), pl.col("_unit"))
    first = groups.row(0, named=True)
    where = Loc(first["_file"][1], first["_unit"][1], first["_line"][1])
    earlier = Loc(first["_file"][0], first["_unit"][0], first["_line"][0])
    earlier_txt = f"{earlier.unit} {earlier.n}" if earlier.file == where.file else str(earlier)
    what = ", ".join(f"{k} {first[k]!r}" for k in keys) if kind in _JUDGEMENTS else f"id {first[keys[0]]!r}"
    more = f" (and {groups.height - 1} more duplicated)" if groups.height > 1 else ""
    raise where.error(DuplicateId, f"duplicate {what}, first at {earlier_txt}{more}")


# -- the database phase -----------------------------------------------------------------------------
def _classify(db: Store, kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``_old``: the stored version (hash or score) of each incoming key, null when the key is new."""
    keys, version = _KEYS[kind], _VERSION[kind]
    on = " AND ".join(f"t.{k} = i.{k}" for k in keys)
    with db.registered("_hnm_incoming_keys", frame.select(keys).to_arrow()) as name:
        old = db.sql(
            f"SELECT {', '.join('t.' + k for k in keys)}, t.{version} AS _old FROM {_TABLES[kind]} t "
            f"JOIN {name} i ON {on}"
        )
    old = old.with_columns(pl.col("_old").cast(frame.schema[version]))
    return frame.join(old, on=list(keys), how="left", maintain_order="left")


def _check_references(
    db: Store, kind: str, qrels: pl.DataFrame, incoming: dict[str, pl.DataFrame], summary: IngestSummary
) -> pl.DataFrame:
    """Qrels (or spans, ``kind``) must name queries and documents in the database or in this same ingest.

    Returns the judgements to store: one naming a text this same ingest skipped as empty is skipped too,
    counted and noted (real collections hold empty documents that their qrels still name).
    """
    qrels = _skip_qrels_of_empty_texts(db, kind, qrels, incoming, summary)
    unknown = _unknown_references(db, qrels, incoming)
    bad = pl.concat([unknown["query_id"], unknown["doc_id"]]).unique(maintain_order=True)
    if not bad.height:
        return qrels
    examples = []
    for col, label in (("query_id", "query"), ("doc_id", "document")):
        for r in unknown[col].head(EXAMPLES).iter_rows(named=True):
            examples.append(f"{label} {r[col]!r} ({Loc(r['_file'], r['_unit'], r['_line'])})")
    raise UnknownIds(
        f"{bad.height} {kind} name unknown ids ({unknown['query_id']['query_id'].n_unique()} unknown queries, "
        f"{unknown['doc_id']['doc_id'].n_unique()} unknown documents), e.g. {'; '.join(examples[:EXAMPLES])}; "
        "ingest the queries and documents first (or in the same command)"
    )


def _unknown_references(
    db: Store, qrels: pl.DataFrame, incoming: dict[str, pl.DataFrame]
) -> dict[str, pl.DataFrame]:
    """query_id / doc_id -> the qrels rows whose id is neither stored nor in this ingest."""
    unknown = {}
    for col, table in (("query_id", "queries"), ("doc_id", "documents")):
        wanted = qrels.select(col).unique()
        with db.registered("_hnm_wanted", wanted.to_arrow()) as name:
            known = db.sql(f"SELECT t.{col} FROM {table} t JOIN {name} w ON t.{col} = w.{col}")
        if table in incoming:
            known = pl.concat([known, incoming[table].select(col)])
        unknown[col] = qrels.join(known, on=col, how="anti", maintain_order="left")
    return unknown


def _skip_qrels_of_empty_texts(
    db: Store, judged: str, qrels: pl.DataFrame, incoming: dict[str, pl.DataFrame], summary: IngestSummary
) -> pl.DataFrame:
    """Drop (count, note) the unknown-id qrels whose query or document this ingest skipped as empty."""
    unknown = _unknown_references(db, qrels, incoming)
    skip = []
    for col, kind, label in (("doc_id", "documents", "document"), ("query_id", "queries", "query")):
        empty = summary.empty.get(kind, {})
        for r in unknown[col].filter(pl.col(col).is_in(list(empty))).iter_rows(named=True):
            where = Loc(r["_file"], r["_unit"], r["_line"])
            summary.skipped.append(
                f"{where}: {judged[:-1]} ({r['query_id']!r}, {r['doc_id']!r}) skipped: {label} {r[col]!r} has an "
                f"empty text ({empty[r[col]]})"
            )
            skip.append((r["_file"], r["_line"]))
    if not skip:
        return qrels
    summary.kind(judged).skipped_empty += len(set(skip))
    gone = pl.DataFrame(sorted(set(skip)), schema={"_file": pl.String, "_line": pl.Int64}, orient="row")
    return qrels.join(gone, on=["_file", "_line"], how="anti", maintain_order="left")


def _check_span_ranges(db: Store, spans: pl.DataFrame, incoming: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Spans on the stored texts: every range must lie inside its document's text.

    Offsets count in the text as the source gives it. Stored texts are stripped (and NFC, ``\n`` line
    ends), so for a document of this same ingest a range is moved by the characters stripped at the
    start and cut at the stored end (QMSum's last turns end in a space); a span on a document whose
    cleaning changed more than its ends is refused, as is one outside the text. For a document already
    stored, offsets count in its stored text.
    """
    wanted = spans.select("doc_id").unique()
    with db.registered("_hnm_wanted", wanted.to_arrow()) as name:
        docs = db.sql(
            f"SELECT d.doc_id, length(d.text)::BIGINT AS n, 0::BIGINT AS lead, length(d.text)::BIGINT AS raw_n "
            f"FROM documents d JOIN {name} w USING (doc_id)"
        )
    if "documents" in incoming:
        new = incoming["documents"].select(
            "doc_id",
            pl.col("text").str.len_chars().cast(pl.Int64).alias("n"),
            pl.col("_lead").alias("lead"),
            pl.col("_raw_len").alias("raw_n"),
        )
        docs = pl.concat([docs.join(new, on="doc_id", how="anti"), new])
    rows = spans.join(docs, on="doc_id", how="left")
    unmapped = rows.filter(pl.col("lead").is_null())
    if unmapped.height:
        r = unmapped.row(0, named=True)
        raise Loc(r["_file"], r["_unit"], r["_line"]).error(
            InputError,
            f"span of query {r['query_id']!r} names document {r['doc_id']!r}, whose text changed inside when "
            "stored (Unicode NFC or \\r\\n line ends), so its character offsets cannot be mapped; give spans "
            "in the stored text's offsets (ingest them after the documents)",
        )
    rows = rows.with_columns(
        (pl.col("start_char") - pl.col("lead")).clip(lower_bound=0).alias("start_char"),
        pl.min_horizontal(pl.col("end_char") - pl.col("lead"), pl.col("n")).alias("end_char"),
        pl.col("end_char").alias("_end"),
    )
    bad = rows.filter((pl.col("end_char") <= pl.col("start_char")) | (pl.col("_end") > pl.col("raw_n")))
    if bad.height:
        r = bad.row(0, named=True)
        more = f" (and {bad.height - 1} more)" if bad.height > 1 else ""
        raise Loc(r["_file"], r["_unit"], r["_line"]).error(
            InputError,
            f"span of query {r['query_id']!r} lies outside the text of document {r['doc_id']!r} "
            f"({r['n']} characters){more}",
        )
    return rows.select(spans.columns)


def _plan(kind: str, frame: pl.DataFrame, on_duplicate: str, counts: KindCounts) -> tuple[pl.DataFrame, ...]:
    """Split classified rows into (new, changed-to-write); apply the policy to changed rows."""
    version = _VERSION[kind]
    new = frame.filter(pl.col("_old").is_null())
    same = frame.filter(pl.col("_old").is_not_null() & (pl.col("_old") == pl.col(version)))
    changed = frame.filter(pl.col("_old").is_not_null() & (pl.col("_old") != pl.col(version)))
    counts.new += new.height
    counts.unchanged += same.height
    if changed.height and on_duplicate == "error":
        first = changed.row(0, named=True)
        ids = ", ".join(repr(v) for v in changed.select(_KEYS[kind][0]).to_series().head(EXAMPLES))
        loc = Loc(first["_file"], first["_unit"], first["_line"])
        raise loc.error(
            DuplicateId,
            f"{changed.height} known {kind} ids have different content ({ids}); "
            "use --on-duplicate skip or replace",
        )
    if on_duplicate == "skip":
        counts.skipped_duplicate += changed.height
        changed = changed.clear()
    counts.replaced += changed.height
    return new, changed


def _write(db: Store, kind: str, new: pl.DataFrame, changed: pl.DataFrame) -> None:
    """Bulk insert new rows and update changed ones (ingested_at is refreshed on replace)."""
    cols = _COLUMNS[kind]
    select = ", ".join(f"{c}::JSON" if c == "meta" else c for c in cols)
    if new.height:
        with db.registered("_hnm_new_rows", new.select(cols).to_arrow()) as name:
            db.execute(f"INSERT INTO {_TABLES[kind]} ({', '.join(cols)}) SELECT {select} FROM {name}")
    if changed.height:
        keys = _KEYS[kind]
        sets = [f"{c} = r.{c}" + ("::JSON" if c == "meta" else "") for c in cols if c not in keys]
        if kind not in _JUDGEMENTS:
            sets.append("ingested_at = current_timestamp::TIMESTAMP")
        table = _TABLES[kind]
        on = " AND ".join(f"{table}.{k} = r.{k}" for k in keys)
        with db.registered("_hnm_changed_rows", changed.select(cols).to_arrow()) as name:
            db.execute(f"UPDATE {table} SET {', '.join(sets)} FROM {name} r WHERE {on}")


def store(
    db: Store, frames: dict[str, pl.DataFrame], on_duplicate: str, summary: IngestSummary
) -> IngestSummary:
    """Phase 2: classify against the database, check qrels, apply the policy, write; one transaction."""
    check_policy(on_duplicate)
    with db.transaction():
        texts = {k: f for k, f in frames.items() if k not in _JUDGEMENTS}
        for kind in _JUDGEMENTS:
            if kind in frames and frames[kind].height:
                frames = {**frames, kind: _check_references(db, kind, frames[kind], texts, summary)}
        if "spans" in frames and frames["spans"].height:
            frames = {**frames, "spans": _check_span_ranges(db, frames["spans"], texts)}
        classified = {k: _classify(db, k, f) for k, f in frames.items()}
        plans = {k: _plan(k, classified[k], on_duplicate, summary.kind(k)) for k in KINDS if k in classified}
        for kind, (new, changed) in plans.items():
            _write(db, kind, new, changed)
    return summary


# -- entry points -----------------------------------------------------------------------------------
def _folder(path: str | Path) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise SourceUnavailable(f"{folder}: no such folder")
    if not folder.is_dir():
        raise SourceUnavailable(f"{folder}: not a folder")
    return folder


#: The three parts of a BEIR folder; a folder with none of them is not one.
BEIR_PARTS = ("corpus.jsonl", "queries.jsonl", "qrels/")


def ingest_beir(db: Store, folder: str | Path, params: BeirParams | None = None) -> IngestSummary:
    """A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (split = file stem), and span
    judgements in spans/<split>.tsv when the folder has them (query-id, corpus-id, start, end, score).

    Keys other than _id/title/text go to ``meta``. queries.jsonl and qrels/ may be missing (a corpus
    alone is a valid source), and each missing part is named in ``summary.warnings``; corpus.jsonl
    must be there, and a folder with none of the three is refused as not a BEIR folder. The license and
    language of the documents come from the options, else from the folder's dataset card (README.md
    front matter, as on the Hub), and are kept in each document's meta unless its record has its own.
    """
    params = params or BeirParams()
    numbers_as_text = params.numbers_as_text
    root = _folder(folder)
    summary = IngestSummary()
    corpus, queries, qrels = root / "corpus.jsonl", root / "queries.jsonl", root / "qrels"
    qrel_files = sorted(qrels.glob("*.tsv")) if qrels.is_dir() else []
    if not (corpus.exists() or queries.exists() or qrels.exists()):
        raise InputError(f"not a BEIR folder: it holds none of {', '.join(BEIR_PARTS)}", path=str(root))
    if not queries.exists():
        summary.warnings.append(f"{queries}: no such file; no queries ingested")
    if not qrels.is_dir():
        summary.warnings.append(f"{qrels}/: no such folder; no qrels ingested")
    elif not qrel_files:
        summary.warnings.append(f"{qrels}/: no .tsv files; no qrels ingested")
    card = read_card_metadata(root / "README.md")
    spec = TableSpec(
        "documents", id_column="_id", text_column="text", all_meta=True, numbers_as_text=numbers_as_text,
        license=params.license or card.get("license"), language=params.language or card.get("language"),
    )  # fmt: skip
    frames = {"documents": text_rows(read_jsonl(corpus), spec, str(corpus.resolve()), summary)}
    if queries.exists():
        spec = TableSpec(
            "queries", id_column="_id", text_column="text", all_meta=True, numbers_as_text=numbers_as_text
        )
        frames["queries"] = text_rows(read_jsonl(queries), spec, None, summary)
    if qrel_files:
        spec = TableSpec("qrels", numbers_as_text=numbers_as_text)
        parts = [qrel_rows(read_beir_qrels(p), spec, summary, split=p.stem) for p in qrel_files]
        frames["qrels"] = pl.concat(parts)
    span_files = sorted((root / "spans").glob("*.tsv")) if (root / "spans").is_dir() else []
    if span_files:
        spec = TableSpec("spans", numbers_as_text=numbers_as_text)
        frames["spans"] = pl.concat(
            [span_rows(read_beir_spans(p), spec, summary, split=p.stem) for p in span_files]
        )
    return store(db, frames, params.on_duplicate, summary)


def read_card_metadata(path: Path) -> dict[str, str]:
    """``license`` and ``language`` of a dataset card's YAML front matter (a list becomes a comma-separated
    text); empty when there is no card or it has no front matter. A card that is not valid YAML is an
    error naming it: it says something about the data, so it is not skipped silently."""

    if not path.is_file():
        return {}
    text = decode_utf8(read_bytes(path), str(path))
    if not text.startswith("---"):
        return {}
    head = text.split("---", 2)[1] if text.count("---") >= 2 else ""
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        raise InputError(
            f"dataset card front matter is not YAML: {one_line(str(exc))}", path=str(path)
        ) from None
    out = {}
    for key in ("license", "language"):
        value = meta.get(key) if isinstance(meta, dict) else None
        if isinstance(value, list):
            value = ",".join(str(v) for v in value if v is not None)
        if value:
            out[key] = str(value)
    return out


def ingest_table(db: Store, path: str | Path, spec: TableSpec, fmt: str | None = None) -> IngestSummary:
    """A JSONL, CSV or Parquet file of documents, queries, qrels or spans (``spec`` names the columns)."""
    path = Path(path)
    fmt = fmt or {
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".csv": "csv",
        ".tsv": "csv",
        ".parquet": "parquet",
    }.get(path.suffix.lower())
    if fmt not in READERS:
        raise InvalidParams(f"format must be one of {', '.join(READERS)} (cannot tell from {path.name!r})")
    records = read_qrels_csv(path, spec) if fmt == "csv" and spec.kind == "qrels" else READERS[fmt](path)
    summary = IngestSummary()
    if spec.kind == "qrels":
        frame = qrel_rows(records, spec, summary)
    elif spec.kind == "spans":
        frame = span_rows(records, spec, summary)
    else:
        frame = text_rows(records, spec, str(path.resolve()), summary, untyped=fmt == "csv")
    return store(db, {spec.kind: frame}, spec.on_duplicate, summary)


def _progress(items: Iterable[Any], progress: bool, desc: str, total: int | None = None) -> Iterable[Any]:
    """tqdm on stderr when asked (the CLI asks unless --quiet) and stderr is a terminal."""
    if not progress:
        return items

    return tqdm(items, desc=desc, total=total, unit="item", leave=False, disable=None)


def _extracted_rows(items: Iterable[tuple[str, str, Loc, Extracted]], summary: IngestSummary) -> pl.DataFrame:
    """Documents from (doc_id, source, where, extracted) tuples."""
    rows = []
    for doc_id, source, loc, found in items:
        rows.append(
            {
                "doc_id": doc_id,
                "title": found.title,
                "text": found.text,
                "source": source,
                "content_hash": document_hash(found.title, found.text),
                "meta": None,
                "_file": loc.file,
                "_unit": loc.unit,
                "_line": loc.n,
            }
        )
    return _finish("documents", rows, summary)


def list_files(folder: Path) -> list[Path]:
    """Supported files under ``folder``, recursively, sorted; hidden files and folders are skipped."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() not in SUFFIXES:
            continue
        if path.is_file():
            found.append(path)
    return found


def ingest_files(
    db: Store, folder: str | Path, params: FilesParams | None = None, *, progress: bool = False
) -> IngestSummary:
    """Every .txt/.md/.html/.htm/.pdf under a folder; doc_id = relative path, source = absolute path."""
    params = params or FilesParams()
    root = _folder(folder)
    summary = IngestSummary()
    files = list_files(root)
    if not files:
        raise InputError(f"no records: no {', '.join(SUFFIXES)} files in the folder", path=str(root))
    items = []
    for path in _progress(files, progress, "extract"):
        rel = path.relative_to(root).as_posix()
        items.append((rel, str(path.resolve()), Loc(str(path)), extract_file(path)))
    return store(db, {"documents": _extracted_rows(items, summary)}, params.on_duplicate, summary)


# -- URLs -------------------------------------------------------------------------------------------
class FetchError(Exception):
    """One URL failed; the message is the reason shown to the user."""


def read_url_list(path: Path) -> list[tuple[Loc, str]]:
    """One URL per line; blank lines and lines starting with '#' are ignored; duplicates are errors."""
    urls: list[tuple[Loc, str]] = []
    seen: dict[str, int] = {}
    for i, line in enumerate(_lines(path), start=1):
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        loc = Loc(str(path), "line", i)
        if url in seen:
            raise loc.error(DuplicateId, f"duplicate URL {url!r}, first at line {seen[url]}")
        seen[url] = i
        urls.append((loc, url))
    if not urls:
        raise _no_records(
            path, "no URLs (only blank lines and # comments)" if path.stat().st_size else "the file is empty"
        )
    return urls


def fetch_url(url: str, timeout: float) -> Extracted:
    """GET one URL and extract its main text; anything but an HTML page is a FetchError."""
    if not url.lower().startswith(("http://", "https://")):
        raise FetchError("not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": "hnm-db (+https://github.com/hnm-db)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            ctype = response.headers.get_content_type()
            if ctype not in HTML_TYPES:
                raise FetchError(f"not HTML (content type {ctype})")
            body = response.read(MAX_PAGE_BYTES)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise FetchError(_reason(exc.reason, timeout)) from None
    except (TimeoutError, OSError) as exc:
        raise FetchError(_reason(exc, timeout)) from None
    except ValueError as exc:
        raise FetchError(f"invalid URL: {exc}") from None
    return extract_html(body, url=url)


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"timed out after {timeout:g}s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def _try_fetch(url: str, timeout: float) -> Extracted | Failure:
    try:
        return fetch_url(url, timeout)
    except FetchError as exc:
        return Failure(url, str(exc))


def ingest_urls(
    db: Store, path: str | Path, params: UrlParams | None = None, *, progress: bool = False
) -> IngestSummary:
    """Fetch each URL of a list and store its clean text (the paper's step 1); doc_id = source = URL.

    A URL that fails (timeout, HTTP error, not HTML, refused) is reported in ``failures`` and the rest
    are ingested; the command fails (writing nothing) only when every URL failed, or on any failure
    with ``strict``.
    """
    params = params or UrlParams()
    urls = read_url_list(Path(path))
    with ThreadPoolExecutor(max_workers=min(params.workers, max(len(urls), 1))) as pool:
        results = pool.map(lambda u: _try_fetch(u[1], params.timeout), urls)
        fetched = list(_progress(results, progress, "fetch", total=len(urls)))
    summary = IngestSummary()
    summary.failures = [f for f in fetched if isinstance(f, Failure)]
    summary.kind("documents").failed = len(summary.failures)
    if summary.failures and (params.strict or len(summary.failures) == len(urls)):
        head = "; ".join(f"{f.source} ({f.reason})" for f in summary.failures[:EXAMPLES])
        label = "all" if len(summary.failures) == len(urls) else f"{len(summary.failures)} of"
        raise SourceUnavailable(f"{label} {len(urls)} URLs failed: {head}")
    items = [
        (url, url, loc, Extracted(found.title or url, found.text))
        for (loc, url), found in zip(urls, fetched, strict=True)
        if isinstance(found, Extracted)
    ]
    return store(db, {"documents": _extracted_rows(items, summary)}, params.on_duplicate, summary)
