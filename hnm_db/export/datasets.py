"""Export mining runs as HuggingFace ``datasets`` in sentence-transformers' column conventions.

Two folder layouts, each loading one way (``datasets.load_dataset`` refuses a folder holding
``save_to_disk``'s ``state.json``, so one folder cannot serve both):

* default: ``save_to_disk`` files plus the card, for ``datasets.load_from_disk(DIR)``;
* ``parquet``: a Hub dataset folder (``README.md`` whose ``configs`` name ``data/<split>-*.parquet``),
  for ``datasets.load_dataset(DIR)`` and for uploading as is.

The main dataset holds only the columns a trainer reads: sentence-transformers' trainers take every
column but ``label``/``score`` as a text input, so ids, ranks and scores (``keep_ids``) go to a second
dataset ``ids`` with the same rows plus those columns (``DIR/ids`` for ``load_from_disk``; config
``ids`` for ``load_dataset(DIR, "ids")``). Two exports of the same rows are byte-identical: the
``datasets`` fingerprint in ``state.json`` is the content hash of the rows instead of a random one.

Rows stream from DuckDB as Arrow record batches into an Arrow file (and Parquet files) on disk, so a
large run never becomes one Python object per row; ``datasets`` then memory-maps that file and
``save_to_disk`` writes the dataset. The ordered query runs over consecutive slices of query ids, so
DuckDB sorts one slice at a time (500,000 triplets with ~500-character texts: about 190 MB of
anonymous memory above the interpreter's, against 750 MB with one ORDER BY over everything). Everything is written into a temporary folder beside the target
and moved into place at the end, so a failed export leaves no half-written folder behind and
``--overwrite`` replaces an old export in one rename.

Layouts (https://sbert.net/docs/sentence_transformer/training_overview.html#dataset-format):

* ``triplet``: ``anchor, positive, negative``, one row per triplet;
* ``n-tuple``: ``anchor, positive, negative_1 .. negative_n``, one row per query-positive pair,
  negatives in rank order;
* ``labeled-pair``: ``query, passage, label``, per query-positive pair first the positive (1.0), then
  its negatives (0.0) in rank order.

Rows are ordered by query_id, positive_chunk_id, rank, negative_chunk_id. When several runs are
exported together, a (query, positive, negative) triple found by more than one run is written once,
attributed to the first run given.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams, NotFound, TooFewNegatives
from hnm_db.models.ensemble import find_ensemble
from hnm_db.options import param
from hnm_db.store import Store, publish, resolve_runs

LAYOUTS = ("triplet", "n-tuple", "labeled-pair")
#: The config (and folder) of the rows with ids, ranks and scores (``keep_ids``).
IDS_CONFIG = "ids"

#: Files ``save_to_disk`` writes; a folder holding one of them may be replaced by ``overwrite``.
_EXPORT_MARKERS = ("state.json", "dataset_info.json")

_SPLIT_NAME = re.compile(r"^\w+$")


@dataclass(frozen=True)
class ExportParams:
    """What to export and where; validated here so the CLI and the Python API fail the same way."""

    runs: tuple[str, ...] = param(flag="--run", help="Mining run name (repeat for several).")
    to: Path = param(help="Output folder.")
    layout: str = param(
        "triplet",
        choices=LAYOUTS,
        help="sentence-transformers column layout: triplet (anchor, positive, negative), n-tuple "
        "(negative_1..n per query-positive pair) or labeled-pair (query, passage, label).",
    )
    split: str = param("train", help="Triplet split to export (and split name).")
    parquet: bool = param(
        False,
        help="Write a Hub dataset folder (README.md + data/<split>-*.parquet) for load_dataset(DIR), "
        "instead of save_to_disk files for load_from_disk(DIR).",
    )
    keep_ids: bool = param(
        False,
        help="Also write the dataset 'ids': the same rows with query/chunk ids, ranks, scores and run "
        "names (DIR/ids, or config 'ids'); the main dataset keeps only what a trainer reads.",
    )
    overwrite: bool = param(False, help="Replace an earlier export in the folder.")
    num_negatives: int | None = param(None, help="n-tuple: negatives per row (default: the most).")
    drop_short: bool = param(False, help="n-tuple: skip query-positive pairs with fewer negatives.")
    license: str | None = param(None, help="Card license (default: from the corpus metadata).")
    language: tuple[str, ...] = param(
        (), help="Card language code, repeatable (default: from the corpus metadata, e.g. a source's card)."
    )
    batch_size: int = param(10_000, help="Rows per Arrow batch.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "runs", (self.runs,) if isinstance(self.runs, str) else tuple(self.runs))
        object.__setattr__(self, "to", Path(self.to))
        if isinstance(self.language, str):
            object.__setattr__(self, "language", (self.language,))
        if not self.runs:
            raise InvalidParams("runs: name at least one mining run")
        if len(set(self.runs)) != len(self.runs):
            raise InvalidParams(f"runs: a run is named twice: {list(self.runs)}")
        if self.layout not in LAYOUTS:
            raise InvalidParams(f"layout: must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")
        if not _SPLIT_NAME.match(self.split):
            raise InvalidParams(f"split: must be letters, digits or '_', not {self.split!r}")
        if self.num_negatives is not None and self.layout != "n-tuple":
            raise InvalidParams("num_negatives: only the n-tuple layout takes a number of negatives")
        if self.num_negatives is not None and self.num_negatives < 1:
            raise InvalidParams(f"num_negatives: must be >= 1, not {self.num_negatives}")
        if self.drop_short and self.layout != "n-tuple":
            raise InvalidParams("drop_short: only the n-tuple layout drops short query-positive pairs")
        if self.batch_size < 1:
            raise InvalidParams(f"batch_size: must be >= 1, not {self.batch_size}")


@dataclass(frozen=True)
class ExportSummary:
    """What was written: folder, rows, the trainer's columns (and those of the ``ids`` dataset), the
    Parquet files, and for n-tuple the size and dropped pairs."""

    path: Path
    layout: str
    split: str
    runs: list[str]
    rows: int
    columns: list[str]
    parquet_files: list[Path]
    num_negatives: int | None = None
    dropped_pairs: int = 0
    id_columns: list[str] | None = None


def export(db: Store, params: ExportParams, *, progress: bool = False) -> ExportSummary:
    """Write the runs' triplets as a dataset folder with a dataset card. Reads the database only."""
    target = Path(params.to)
    _check_target(target, params.overwrite)
    runs = resolve_runs(db, params.runs)
    args: dict[str, Any] = {"runs": [rid for rid, _ in runs], "split": params.split}
    _check_selection(db, params, runs, args)
    n, dropped = _negatives_per_row(db, params, runs, args) if params.layout == "n-tuple" else (None, 0)
    sql = build_query(params.layout, params.keep_ids, n, params.drop_short)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        out = staging / "dataset"
        rows, schema = _write_dataset(db, sql, args, out, params, progress)
        out.mkdir(exist_ok=True)
        columns = _train_columns(list(schema.names), params.layout)
        card = dataset_card(
            db, params, runs, rows, columns, list(schema.names) if params.keep_ids else None, n
        )
        (out / "README.md").write_text(card.text, encoding="utf-8")
        if not params.parquet:
            _save_to_disk(staging / "rows.arrow", out, params, columns, card, progress)
        try:  # an old export is swapped out first and removed after
            publish(out, target, existing="replace" if params.overwrite else "refuse")
        except AlreadyExists:  # appeared while we were writing
            raise AlreadyExists(f"export folder exists: {target} (pass --overwrite to replace it)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    parquet = [target / folder / _parquet_name(params.split) for folder in _parquet_folders(params)]
    return ExportSummary(
        target, params.layout, params.split, [name for _, name in runs], rows, columns,
        parquet if params.parquet else [], n, dropped, list(schema.names) if params.keep_ids else None,
    )  # fmt: skip


# -- the queries ---------------------------------------------------------------------------------------
# $runs is the list of run ids in the order given; a triple found by several runs keeps the first.
_SELECTED_TEMPLATE = """
WITH picked AS (
    SELECT t.*, r.name AS run, list_position($runs, t.run_id) AS run_ord
    FROM triplets t
    JOIN mining_runs r ON r.run_id = t.run_id
    WHERE list_contains($runs, t.run_id) AND t.split = $split {slice}
),
selected AS (
    SELECT * FROM picked
    QUALIFY row_number() OVER (
        PARTITION BY query_id, positive_chunk_id, negative_chunk_id ORDER BY run_ord) = 1
)"""
_SELECTED = _SELECTED_TEMPLATE.format(slice="")
# The export query reads one slice of queries at a time ($lo <= query_id <= $hi), so DuckDB never
# sorts more than about one slice of rows (texts included) in memory.
_SELECTED_SLICE = _SELECTED_TEMPLATE.format(slice="AND t.query_id BETWEEN $lo AND $hi")

#: Rows per slice = this many Arrow batches.
_BATCHES_PER_SLICE = 8

_NEGATIVE_ORDER = "rank, negative_chunk_id, run_ord"


def build_query(fmt: str, keep_ids: bool, n: int | None = None, drop_short: bool = False) -> str:
    """The SELECT that yields the export's rows, in order, for one format."""
    if fmt == "triplet":
        ids = (
            ", s.query_id, s.positive_doc_id, s.positive_chunk_id, s.negative_doc_id, s.negative_chunk_id,"
            " s.rank, s.score, s.positive_score, s.run"
        )
        return f"""{_SELECTED_SLICE}
SELECT q.text AS anchor, pc.text AS positive, nc.text AS negative{ids if keep_ids else ""}
FROM selected s
JOIN queries q ON q.query_id = s.query_id
JOIN chunks pc ON pc.chunk_id = s.positive_chunk_id
JOIN chunks nc ON nc.chunk_id = s.negative_chunk_id
ORDER BY s.query_id, s.positive_chunk_id, s.rank, s.negative_chunk_id, s.run_ord"""
    if fmt == "n-tuple":
        return _ntuple_query(keep_ids, int(n or 1), drop_short)
    return _labeled_pair_query(keep_ids)


def _ntuple_query(keep_ids: bool, n: int, drop_short: bool) -> str:
    negatives = ", ".join(f"g.texts[{i}] AS negative_{i}" for i in range(1, n + 1))
    ids = (
        f", g.query_id, g.positive_doc_id, g.positive_chunk_id, g.chunk_ids[1:{n}] AS negative_chunk_ids,"
        f" g.doc_ids[1:{n}] AS negative_doc_ids, g.ranks[1:{n}] AS ranks, g.scores[1:{n}] AS scores,"
        f" g.positive_score, g.runs[1:{n}] AS runs"
    )
    having = f"HAVING count(*) >= {n}" if drop_short else ""
    return f"""{_SELECTED_SLICE},
groups AS (
    SELECT s.query_id, s.positive_doc_id, s.positive_chunk_id,
           arg_min(s.positive_score, s.run_ord) AS positive_score,
           list(nc.text ORDER BY {_NEGATIVE_ORDER}) AS texts,
           list(s.negative_chunk_id ORDER BY {_NEGATIVE_ORDER}) AS chunk_ids,
           list(s.negative_doc_id ORDER BY {_NEGATIVE_ORDER}) AS doc_ids,
           list(s.rank ORDER BY {_NEGATIVE_ORDER}) AS ranks,
           list(s.score ORDER BY {_NEGATIVE_ORDER}) AS scores,
           list(s.run ORDER BY {_NEGATIVE_ORDER}) AS runs
    FROM selected s
    JOIN chunks nc ON nc.chunk_id = s.negative_chunk_id
    GROUP BY s.query_id, s.positive_doc_id, s.positive_chunk_id
    {having}
)
SELECT q.text AS anchor, pc.text AS positive, {negatives}{ids if keep_ids else ""}
FROM groups g
JOIN queries q ON q.query_id = g.query_id
JOIN chunks pc ON pc.chunk_id = g.positive_chunk_id
ORDER BY g.query_id, g.positive_chunk_id"""


def _labeled_pair_query(keep_ids: bool) -> str:
    ids = ", p.query_id, p.positive_chunk_id, p.passage_doc_id, p.passage_chunk_id, p.rank, p.score, p.run"
    return f"""{_SELECTED_SLICE},
pairs AS (
    SELECT query_id, positive_chunk_id, 0 AS kind, CAST(NULL AS INTEGER) AS rank,
           positive_doc_id AS passage_doc_id, positive_chunk_id AS passage_chunk_id,
           CAST(1.0 AS DOUBLE) AS label, arg_min(positive_score, run_ord) AS score,
           arg_min(run, run_ord) AS run, min(run_ord) AS run_ord
    FROM selected
    GROUP BY query_id, positive_doc_id, positive_chunk_id
    UNION ALL
    SELECT query_id, positive_chunk_id, 1, rank, negative_doc_id, negative_chunk_id,
           CAST(0.0 AS DOUBLE), score, run, run_ord
    FROM selected
)
SELECT q.text AS query, c.text AS passage, p.label{ids if keep_ids else ""}
FROM pairs p
JOIN queries q ON q.query_id = p.query_id
JOIN chunks c ON c.chunk_id = p.passage_chunk_id
ORDER BY p.query_id, p.positive_chunk_id, p.kind, p.rank, p.passage_chunk_id, p.run_ord"""


# -- checks before writing -----------------------------------------------------------------------------
def _check_target(target: Path, overwrite: bool) -> None:
    """A present target is an error unless overwrite; even then only an old export or an empty folder."""
    if not target.exists():
        return
    if not overwrite:
        raise AlreadyExists(f"export folder exists: {target} (pass --overwrite to replace it)")
    if not _is_earlier_export(target):
        raise AlreadyExists(f"{target} exists and is not an earlier export; refusing to replace it")


def _is_earlier_export(folder: Path) -> bool:
    """An empty folder, a save_to_disk folder, or a Hub folder whose card hnm-db wrote (tag hnm-db)."""
    if not folder.is_dir():
        return False
    if not any(folder.iterdir()) or any((folder / m).exists() for m in _EXPORT_MARKERS):
        return True
    card = folder / "README.md"
    head = card.read_text(encoding="utf-8", errors="replace")[:4000] if card.is_file() else ""
    return head.startswith("---") and "\n- hnm-db\n" in head


def _check_selection(db: Store, params: ExportParams, runs: list[tuple[str, str]], args: dict) -> None:
    """The runs have rows in the split, and every row's query and chunks still exist."""
    total, broken = db.execute(
        f"""{_SELECTED}
        SELECT count(*), count(*) FILTER (
            WHERE q.query_id IS NULL OR pc.chunk_id IS NULL OR nc.chunk_id IS NULL)
        FROM selected s
        LEFT JOIN queries q ON q.query_id = s.query_id
        LEFT JOIN chunks pc ON pc.chunk_id = s.positive_chunk_id
        LEFT JOIN chunks nc ON nc.chunk_id = s.negative_chunk_id""",
        args,
    ).fetchone()
    names = ", ".join(name for _, name in runs)
    if total == 0:
        splits = db.execute(
            "SELECT DISTINCT split FROM triplets WHERE list_contains($runs, run_id) ORDER BY 1",
            {"runs": args["runs"]},
        ).fetchall()
        found = ", ".join(s for (s,) in splits) or "none"
        raise EmptySelection(f"run(s) {names} have no triplets in split {params.split!r} (splits: {found})")
    if broken:
        raise NotFound(
            f"{broken} triplets of run(s) {names} point at queries or chunks that no longer exist; "
            "see hnm-db audit --check"
        )


def _negatives_per_row(
    db: Store, params: ExportParams, runs: list[tuple[str, str]], args: dict
) -> tuple[int, int]:
    """n for n-tuple (given, or the most any pair has) and how many pairs fall short of it."""
    counts = f"{_SELECTED} SELECT query_id, count(*) AS n FROM selected GROUP BY query_id, positive_chunk_id"
    most, fewest = db.execute(f"SELECT max(n), min(n) FROM ({counts})", args).fetchone()
    n = params.num_negatives or int(most)
    short_pairs, short_queries, queries = db.execute(
        f"SELECT count(*) FILTER (WHERE n < $n), count(DISTINCT query_id) FILTER (WHERE n < $n), "
        f"count(DISTINCT query_id) FROM ({counts})",
        {**args, "n": n},
    ).fetchone()
    if short_pairs and not params.drop_short:
        names = ", ".join(name for _, name in runs)
        raise TooFewNegatives(
            f"n-tuple with {n} negatives: {short_queries} of {queries} queries ({short_pairs} query-positive "
            f"pairs) have fewer in run(s) {names} (fewest: {fewest}); lower --num-negatives or pass --drop-short"
        )
    if short_pairs == int(db.scalar(f"SELECT count(*) FROM ({counts})", args)):
        raise EmptySelection(f"no query-positive pair has {n} negatives; nothing left after --drop-short")
    return n, int(short_pairs)


# -- writing -------------------------------------------------------------------------------------------
def _parquet_name(split: str) -> str:
    return f"{split}-00000-of-00001.parquet"


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """DuckDB names list children 'l'; use pyarrow's default so ``datasets`` sees plain sequences."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            t = pa.list_(t.value_type)
        fields.append(pa.field(f.name, t))
    return pa.schema(fields)


def _slices(db: Store, args: dict, rows_per_slice: int) -> list[tuple[str, str]]:
    """(first, last) query_id of consecutive query ranges holding about ``rows_per_slice`` triplets."""
    return db.execute(
        f"""{_SELECTED},
        per_query AS (SELECT query_id, count(*) AS n FROM selected GROUP BY query_id),
        numbered AS (
            SELECT query_id, sum(n) OVER (ORDER BY query_id ROWS UNBOUNDED PRECEDING) - n AS before
            FROM per_query)
        SELECT min(query_id), max(query_id) FROM numbered GROUP BY before // $size ORDER BY 1""",
        {**args, "size": rows_per_slice},
    ).fetchall()


def _train_columns(columns: list[str], layout: str) -> list[str]:
    """The columns a trainer reads: the layout's texts (and label), never ids, ranks or scores."""
    if layout == "labeled-pair":
        return ["query", "passage", "label"]
    return [c for c in columns if c in ("anchor", "positive", "negative") or re.fullmatch(r"negative_\d+", c)]


def _parquet_folders(params: ExportParams) -> list[str]:
    """Hub-layout folders: ``data`` (the trainer's columns), and ``ids`` with ``keep_ids``."""
    return ["data", IDS_CONFIG] if params.keep_ids else ["data"]


def _write_dataset(
    db: Store, sql: str, args: dict, out: Path, params: ExportParams, progress: bool
) -> tuple[int, pa.Schema]:
    """Stream the rows slice by slice into an Arrow file (and with ``parquet`` the Hub-layout files)."""

    slices = _slices(db, args, params.batch_size * _BATCHES_PER_SLICE)
    whole = {**args, "lo": slices[0][0], "hi": slices[-1][1]}
    total = int(db.scalar(f"SELECT count(*) FROM ({sql})", whole))
    schema = _plain_schema(db.arrow_batches(f"{sql} LIMIT 0", whole, batch_rows=1).schema)
    train = _train_columns(list(schema.names), params.layout)
    rows = 0
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(pa.OSFile(str(out.parent / "rows.arrow"), "wb"))
        writer = stack.enter_context(pa.ipc.new_stream(sink, schema))
        parquet: list[tuple[Any, list[str]]] = []
        for folder in _parquet_folders(params) if params.parquet else []:
            path = out / folder / _parquet_name(params.split)
            path.parent.mkdir(parents=True)
            cols = train if folder == "data" else list(schema.names)
            parquet.append((stack.enter_context(pq.ParquetWriter(str(path), schema_of(schema, cols))), cols))
        bar = stack.enter_context(tqdm(total=total, disable=not progress, unit="rows", desc="export"))
        for lo, hi in slices:
            for batch in db.arrow_batches(sql, {**args, "lo": lo, "hi": hi}, batch_rows=params.batch_size):
                batch = zero_null_slots(batch.cast(schema))
                writer.write_batch(batch)
                for pq_writer, cols in parquet:
                    pq_writer.write_batch(batch.select(cols))
                rows += batch.num_rows
                bar.update(batch.num_rows)
    return rows, schema


def zero_null_slots(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with every NULL slot's bytes zeroed, so equal rows are equal files.

    DuckDB leaves whatever memory held under a NULL (a random run's NULL scores): valid Arrow, but two
    exports of the same rows would differ. Columns holding a NULL at any depth are rebuilt by
    pyarrow's builders, which write zeros; the others are kept as they are (most columns, no copy).
    """

    def has_nulls(arr: pa.Array) -> bool:
        if arr.null_count:
            return True
        if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
            return has_nulls(arr.flatten())
        if pa.types.is_struct(arr.type):
            return any(has_nulls(arr.field(i)) for i in range(arr.type.num_fields))
        return False

    columns = [pa.array(c.to_pylist(), type=c.type) if has_nulls(c) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def schema_of(schema: pa.Schema, columns: list[str]) -> pa.Schema:
    """The fields of ``schema`` named in ``columns``, in that order."""
    return pa.schema([schema.field(c) for c in columns])


def _save_to_disk(
    arrow_path: Path, out: Path, params: ExportParams, columns: list[str], card: Card, progress: bool
) -> None:
    """``save_to_disk`` the trainer's columns into ``out`` (and every column into ``out/ids``).

    The fingerprint ``datasets`` writes into state.json is the rows' content hash, not a random one,
    so two exports of the same rows are byte-identical; dataset_info.json carries the card's
    description and license.
    """
    import datasets

    info = datasets.DatasetInfo(description=card.description, license=card.license)
    with _progress_bars(progress):
        full = datasets.Dataset.from_file(str(arrow_path), info=info, split=datasets.NamedSplit(params.split))
        full._fingerprint = file_digest(arrow_path)
        main = full.select_columns(columns) if full.column_names != columns else full
        main.save_to_disk(str(out))
        if params.keep_ids:
            full.save_to_disk(str(out / IDS_CONFIG))
    del full, main


def file_digest(path: Path) -> str:
    """blake2b-128 of a file's bytes (hashlib.file_digest reads it in blocks), hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    """``datasets`` keeps its progress-bar switch globally; set it for this call and restore it."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    (datasets.enable_progress_bars if enabled else datasets.disable_progress_bars)()
    try:
        yield
    finally:
        (datasets.disable_progress_bars if was_disabled else datasets.enable_progress_bars)()


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove the hidden ``.NAME.tmp-PID-*`` / ``.NAME.old-PID-*`` folders a killed export left beside
    ``target``; those of a process still running are kept (an export in progress). Returns the removed.
    """
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:tmp|old)-(\d+)-[\w-]+$")
    removed = []
    for path in sorted(target.parent.glob(f".{glob_escape(target.name)}.*")):
        m = pattern.match(path.name)
        if not m or not path.is_dir() or _running(int(m.group(1))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped (an export folder may be called ``run[1]``)."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _running(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except PermissionError:  # it exists, and belongs to another user
        return True
    except (ProcessLookupError, OverflowError, OSError):
        return False
    return True


# -- the dataset card ----------------------------------------------------------------------------------
_SIZE_CATEGORIES = [
    (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
]  # fmt: skip

_COLUMNS = {  # per layout
    "triplet": "`anchor` (query text), `positive` (a judged-relevant passage), `negative` (a mined hard negative)",
    "n-tuple": "`anchor`, `positive`, `negative_1` .. `negative_n` (hard negatives, hardest first)",
    "labeled-pair": "`query`, `passage`, `label` (1.0 for the judged-relevant passage, 0.0 for a negative)",
}


def size_category(rows: int) -> str:
    """The Hub's size_categories bucket for a row count."""
    for limit, name in _SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>1B"


def _corpus_facts(db: Store, run_ids: list[str], split: str) -> tuple[list[str], list[str], list[str]]:
    """Distinct licenses, languages (documents.meta ->> 'license' / 'language') and sources of the
    documents the rows use: ingest records them from a source's dataset card or its options."""
    rows = db.execute(
        """
        WITH docs AS (
            SELECT positive_doc_id AS doc_id FROM triplets WHERE list_contains($runs, run_id) AND split = $split
            UNION
            SELECT negative_doc_id FROM triplets WHERE list_contains($runs, run_id) AND split = $split
        )
        SELECT list(DISTINCT lower(trim(d.meta ->> 'license'))) FILTER (WHERE d.meta ->> 'license' <> ''),
               list(DISTINCT lower(trim(d.meta ->> 'language'))) FILTER (WHERE d.meta ->> 'language' <> ''),
               list(DISTINCT d.source) FILTER (WHERE d.source IS NOT NULL)
        FROM docs JOIN documents d USING (doc_id)
        """,
        {"runs": run_ids, "split": split},
    ).fetchall()[0]
    languages = sorted({code.strip() for text in rows[1] or [] for code in text.split(",") if code.strip()})
    return sorted(rows[0] or []), languages, sorted(rows[2] or [])


@dataclass(frozen=True)
class Card:
    """The dataset card (README.md) and the two facts dataset_info.json repeats from it."""

    text: str
    description: str
    license: str


def dataset_card(
    db: Store, params: ExportParams, runs: list[tuple[str, str]], rows: int, columns: list[str],
    id_columns: list[str] | None, n: int | None,
) -> Card:  # fmt: skip
    """README.md: Hub metadata (``huggingface_hub.DatasetCardData``), how to load it, and where every
    row came from (each run's method, models with fingerprints, parameters, seed, counts)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    run_ids = [rid for rid, _ in runs]
    licenses, languages, sources = _corpus_facts(db, run_ids, params.split)
    license_ = params.license or (licenses[0] if len(licenses) == 1 else "other" if licenses else "unknown")
    names = ", ".join(name for _, name in runs)
    pretty = f"Hard negatives mined by hnm-db: {names} ({params.layout})"
    description = (
        f"{rows} {params.layout} rows of hard negatives for training re-rankers, mined by hnm-db from "
        f"{', '.join(sorted({source_name(x) for x in sources})) or 'a corpus'} (runs: {names})."
    )
    data = DatasetCardData(
        pretty_name=pretty,
        language=list(params.language) or languages or None,
        license=license_,
        task_categories=["sentence-similarity", "text-ranking"],
        tags=["sentence-transformers", "hard-negatives", "hnm-db", params.layout],
        size_categories=[size_category(rows)],
        # Hub convention: 'extended|<source>' for data derived from another dataset
        source_datasets=[f"extended|{x}" for x in sorted({source_name(x) for x in sources})[:_MAX_SOURCES]]
        or None,
        configs=_configs(params) if params.parquet else None,
    )
    shown_ids = [c for c in id_columns or [] if c not in columns]
    parts = [
        f"# {pretty}\n",
        description,
        f"{rows} rows in the `{params.split}` split, layout `{params.layout}`"
        + (f" with {n} negatives per row" if n else "")
        + f". Columns: {_COLUMNS[params.layout]}.",
        "All columns: " + ", ".join(f"`{c}`" for c in columns) + ": what sentence-transformers' trainers read, "
        "unchanged.\n",
        *([f"The `{IDS_CONFIG}` dataset holds the same rows, in the same order, with "
           + ", ".join(f"`{c}`" for c in shown_ids)
           + " added: the key of the `negative_provenance` view in the hnm-db database. It is for joining back, "
           "not for training (a trainer would read the ids as texts).\n"] if id_columns else []),
        _usage(Path(params.to).name, params.split, params.parquet, params.keep_ids),
        _sources_line(sources),
        f"Corpus license: {', '.join(licenses) if licenses else 'not recorded in the corpus metadata'}"
        + (f" (card license set to `{params.license}`)" if params.license else "") + ".",
        f"Language: {', '.join(list(params.language) or languages) or 'not recorded (export --language sets it)'}.",
        "Rows are ordered by query id, positive chunk id, rank, negative chunk id."
        + (" A triple mined by several runs appears once, attributed to the first run listed." if len(runs) > 1 else ""),
        "\n## Provenance\n",
    ]  # fmt: skip
    parts += [_run_section(db, rid, params.split, run_ids) for rid in run_ids]
    body = "\n".join(parts).rstrip() + "\n"
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}")
    return Card(str(card), description, license_)


def _configs(params: ExportParams) -> list[dict[str, Any]]:
    """The Hub's ``configs``: ``default`` (the trainer's columns) and, with ids, ``ids``."""
    configs = [
        {
            "config_name": "default",
            "data_files": [{"split": params.split, "path": f"data/{params.split}-*.parquet"}],
        }
    ]
    if params.keep_ids:
        configs.append(
            {
                "config_name": IDS_CONFIG,
                "data_files": [{"split": params.split, "path": f"{IDS_CONFIG}/{params.split}-*.parquet"}],
            }
        )
    return configs


_MAX_SOURCES = 20
_GENERIC_STEMS = {"corpus", "documents", "docs", "data", "collection", "passages"}


def source_name(source: str) -> str:
    """A short, path-free name for documents.source: a URL's host, a file's stem or its folder's name."""
    if "://" in source:
        return urlparse(source).netloc or source
    path = PurePath(source)
    name = path.stem if path.suffix else path.name
    if name.lower() in _GENERIC_STEMS and path.parent.name:
        name = path.parent.name
    return name or source


def _sources_line(raw: list[str]) -> str:
    """Sources by short name: a card is often published, local paths are not for the public."""
    if not raw:
        return "Documents: source not recorded."
    sources = sorted({source_name(x) for x in raw})
    shown = ", ".join(f"`{x}`" for x in sources[:_MAX_SOURCES])
    more = f" and {len(sources) - _MAX_SOURCES} more" if len(sources) > _MAX_SOURCES else ""
    return f"Documents from {shown}{more}."


def _usage(folder: str, split: str, parquet: bool, keep_ids: bool) -> str:
    if parquet:
        lines = [
            "```python",
            "from datasets import load_dataset",
            "",
            f'ds = load_dataset("{folder}", split="{split}")',
        ]
        if keep_ids:
            lines.append(f'ids = load_dataset("{folder}", "{IDS_CONFIG}", split="{split}")')
    else:
        lines = ["```python", "from datasets import load_from_disk", "", f'ds = load_from_disk("{folder}")']
        if keep_ids:
            lines.append(f'ids = load_from_disk("{folder}/{IDS_CONFIG}")')
    return "\n".join(lines) + "\n```\n"


def _run_section(db: Store, run_id: str, split: str, run_ids: list[str]) -> str:
    """One mining run: method, models with fingerprints, parameters, seed, counts, date, code version."""
    row = db.execute(
        """
        SELECT name, method, split, seed, ensemble_id, cluster_run_id, models, params, stats,
               code_version, created_at,
               (SELECT count(*) FROM triplets t WHERE t.run_id = r.run_id),
               (SELECT count(DISTINCT query_id) FROM triplets t WHERE t.run_id = r.run_id)
        FROM mining_runs r WHERE run_id = ?
        """,
        [run_id],
    ).fetchone()
    name, method, run_split, seed, ens, cl, models, params, stats, version, created, triplets, queries = row
    exported = db.scalar(
        f"{_SELECTED} SELECT count(*) FROM selected WHERE run_id = $run",
        {"runs": run_ids, "split": split, "run": run_id},
    )
    lines = [
        f"### Run `{name}`\n",
        f"- method: `{method}`; mined on split `{run_split}`; seed {seed}",
        f"- created {created} with hnm-db {version}; run id `{run_id}`",
        f"- {triplets} triplets over {queries} queries; {exported} of them in this export",
    ]
    if ens:
        lines.append(f"- ensemble `{ens}`" + (f", cluster run `{cl}`" if cl else ""))
    model_rows = run_models(db, models, ens)
    if model_rows:
        lines += ["", "| model_id | name | fingerprint | weight |", "|---|---|---|---|"]
        lines += [
            f"| {m['model_id']} | {m['name']} | `{m['fingerprint']}` | {m['weight']} |" for m in model_rows
        ]
    lines += ["", "Parameters:", "", "```json", _pretty(params), "```"]
    if stats:
        lines += ["", "Statistics recorded by the mining stage:", "", "```json", _pretty(stats), "```"]
    return "\n".join(lines) + "\n"


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def run_models(db: Store, models_json: Any, ensemble_id: str | None) -> list[dict[str, Any]]:
    """The models behind a run, joined to the models table for name and fingerprint.

    ``mining_runs.models`` holds the ensemble's members as mining wrote them (a JSON list of objects
    with ``model_id`` and ``weight``; empty for a baseline mined without an ensemble), else the
    ensemble's members are read.
    """
    entries = json.loads(models_json) if isinstance(models_json, str) else list(models_json or [])
    ens = find_ensemble(db, ensemble_id) if not entries and ensemble_id else None
    if ens is not None:
        entries = ens.members
    known = {
        r[0]: (r[1], r[2]) for r in db.execute("SELECT model_id, name, fingerprint FROM models").fetchall()
    }
    out = []
    for e in entries:
        name, fingerprint = known.get(e["model_id"], (e.get("name", "?"), e.get("fingerprint", "?")))
        out.append({"model_id": e["model_id"], "name": name, "fingerprint": fingerprint,
                    "weight": e.get("weight", "")})  # fmt: skip
    return out
