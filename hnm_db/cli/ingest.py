"""``hnm-db ingest {beir,jsonl,csv,parquet,files,urls}``: load sources into documents, queries, qrels.

Each subcommand reads its options, calls one function of :mod:`hnm_db.sources.ingest` and prints the summary
(one row per table: new, unchanged, replaced, skipped, failed); notes go to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import polars as pl

from hnm_db.cli._common import Ctx, emit_frame, format_option, info, params_options, pass_ctx
from hnm_db.errors import InvalidParams
from hnm_db.params import BeirParams, FilesParams, IngestSummary, KindCounts, TableSpec, UrlParams

#: Notes about skipped empty texts (and the qrels naming them) printed at most; the counts are complete.
MAX_NOTES = 10


def report(ctx: Ctx, summary: IngestSummary, fmt: str) -> None:
    """Counts to stdout in the chosen format; warnings (always), failures, skipped rows and a one-line
    total (not with --quiet) to stderr."""
    columns = ["table", *KindCounts.__dataclass_fields__]
    schema = {c: (pl.String if c == "table" else pl.Int64) for c in columns}
    emit_frame(pl.DataFrame(summary.rows(), schema=schema), fmt)
    for warning in summary.warnings:  # shown with --quiet too: something the user expected is missing
        click.echo(f"warning: {warning}", err=True)
    for failure in summary.failures:
        info(ctx, f"failed: {failure.source}: {failure.reason}")
    for note in summary.skipped[:MAX_NOTES]:
        info(ctx, f"skipped: {note}")
    if len(summary.skipped) > MAX_NOTES:
        info(ctx, f"skipped: ... and {len(summary.skipped) - MAX_NOTES} more")
    info(ctx, summary.describe())


@click.group("ingest")
def ingest() -> None:
    """Load documents, queries and qrels (BEIR folders, tables, files, URLs).

    Re-ingesting the same data changes nothing; a known id whose content changed follows
    --on-duplicate. Every command is one transaction: on any error the database is unchanged.

    \b
    Examples:
      hnm-db ingest beir ../datasets/scifact
      hnm-db ingest jsonl corpus.jsonl --id-column doc_id --all-meta
      hnm-db ingest csv judgements.tsv --kind qrels --split test
    """


@ingest.command("beir")
@click.argument("folder", type=click.Path(path_type=Path))
@params_options(BeirParams)
@format_option
@pass_ctx
def beir_cmd(ctx: Ctx, folder: Path, fmt: str, **fields: Any) -> None:
    """Ingest a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (split = file name).

    corpus.jsonl is required; a missing queries.jsonl or qrels/ is named in a warning line on stderr
    (also with --quiet), and a folder with none of the three is refused.

    The documents' license and language come from --license / --language, else from the folder's
    dataset card (README.md with YAML front matter, as on the Hub).

    \b
    Examples:
      hnm-db ingest beir ../datasets/scifact
      hnm-db ingest beir data/fiqa --on-duplicate replace --license cc-by-sa-4.0 --language en
    """
    with ctx.open() as db:
        summary = db.ingest_beir(folder, **fields)
    report(ctx, summary, fmt)


_TABLE_EXAMPLES = {
    "jsonl": [
        "corpus.jsonl --id-column doc_id --all-meta",
        "questions.jsonl --kind queries --text-column question",
    ],
    "csv": ["docs.csv --title-column headline --meta-column year", "qrels.tsv --kind qrels --split test"],
    "parquet": ["passages.parquet --id-column pid --text-column passage", "judged.parquet --kind qrels"],
}


def _table_command(fmt_name: str) -> click.Command:
    """One command per table format; they share every option."""

    @click.command(
        fmt_name,
        help=f"Ingest documents, queries or qrels from a {fmt_name.upper()} file.\n\n"
        "Columns not named by an option are ignored unless --meta-column or --all-meta "
        "puts them into meta (JSON). A qrels CSV/TSV may come without a header: its first line is a "
        "header when it names a column (query-id, corpus-id, score, ...).\n\n"
        "\b\nExamples:\n" + "".join(f"  hnm-db ingest {fmt_name} {x}\n" for x in _TABLE_EXAMPLES[fmt_name]),
    )
    @click.argument("file", type=click.Path(path_type=Path))
    @params_options(TableSpec)
    @format_option
    @pass_ctx
    def command(ctx: Ctx, file: Path, fmt: str, **fields: Any) -> None:
        try:
            spec = TableSpec(**fields)
        except InvalidParams as exc:  # in the CLI's words: the options, not the fields
            message = str(exc).replace("_column", "-column").replace("all_meta", "--all-meta")
            raise click.UsageError(
                message.replace("license ", "--license ").replace("language ", "--language ")
            ) from None
        with ctx.open() as db:
            summary = db.ingest_table(file, spec, fmt=fmt_name)
        report(ctx, summary, fmt)

    return command


@ingest.command("files")
@click.argument("folder", type=click.Path(path_type=Path))
@params_options(FilesParams)
@format_option
@pass_ctx
def files_cmd(ctx: Ctx, folder: Path, fmt: str, **fields: Any) -> None:
    """Ingest every .txt, .md, .html, .htm and .pdf file under FOLDER (recursively).

    HTML boilerplate (scripts, navigation, footers) is removed; the title comes from <title>, the
    first heading or the file name; doc_id is the path relative to FOLDER.

    \b
    Examples:
      hnm-db ingest files ~/notes
      hnm-db ingest files site-dump/ --on-duplicate skip
    """
    with ctx.open() as db:
        summary = db.ingest_files(folder, progress=ctx.progress, **fields)
    report(ctx, summary, fmt)


@ingest.command("urls")
@click.argument("file", type=click.Path(path_type=Path))
@params_options(UrlParams)
@format_option
@pass_ctx
def urls_cmd(ctx: Ctx, file: Path, fmt: str, **fields: Any) -> None:
    """Fetch every URL listed in FILE (one per line, # comments) and ingest its main text.

    Failed URLs (timeouts, HTTP errors, non-HTML pages) are reported and the others ingested; the
    command fails only if all failed, or with --strict if any failed.

    \b
    Examples:
      hnm-db ingest urls urls.txt
      hnm-db ingest urls urls.txt --timeout 5 --workers 4 --strict
    """
    with ctx.open() as db:
        summary = db.ingest_urls(file, progress=ctx.progress, **fields)
    report(ctx, summary, fmt)


for _name in ("jsonl", "csv", "parquet"):
    ingest.add_command(_table_command(_name))

COMMANDS: list[click.Command] = [ingest]
