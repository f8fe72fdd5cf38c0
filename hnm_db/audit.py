"""Audit: convince yourself (and a reviewer) that a run's negatives are sound.

Every fact printed here is also a SQL view (``run_summary``, ``run_overlap``, ``negative_provenance``,
``suspect_negatives``), and every rule of DESIGN.md is one query in ``sql/checks/`` that returns the
offending rows and is empty when the rule holds; ``audit --check``, CI and the tests run the same files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hnm_db import resources
from hnm_db.db import Database
from hnm_db.errors import ChecksFailed, InvalidParams, NotFound

#: How many offending rows of each failed check an error message shows.
SHOWN_ROWS = 10

#: The columns of ``run_summary`` the audit prints (the view has a few more: run_id, created_at).
SUMMARY_COLUMNS = [
    "run", "method", "split", "queries", "positives", "triplets",
    "neg_per_query_min", "neg_per_query_median", "neg_per_query_max",
    "neg_score_mean", "neg_score_p10", "neg_score_p50", "neg_score_p90",
    "pos_score_mean", "pos_score_p10", "pos_score_p50", "pos_score_p90",
    "fallback_negatives", "mixed_random_negatives",
    "dropped_false_negatives", "short_pairs", "short_queries", "cluster_agreement",
]  # fmt: skip

CHANGED_CHECK = "negative_doc_changed_since_mining"


# -- provenance snapshot -----------------------------------------------------------------------------
def record_run_sources(db: Database, run_id: str) -> int:
    """Snapshot the content hashes of every chunk (and its document) a run's triplets name.

    The mining stage calls this in its write transaction, right after inserting the triplets, so
    ``sql/checks/negative_doc_changed_since_mining.sql`` can later tell exactly whether a source was
    re-ingested with other text. Re-recording a run replaces its snapshot. Returns the chunk count.
    """
    with db.transaction():
        db.execute("DELETE FROM mining_run_sources WHERE run_id = ?", [run_id])
        db.execute(
            """
            INSERT INTO mining_run_sources (run_id, chunk_id, doc_id, chunk_hash, doc_hash)
            WITH used AS (
                SELECT positive_chunk_id AS chunk_id FROM triplets WHERE run_id = $run
                UNION
                SELECT negative_chunk_id FROM triplets WHERE run_id = $run
            )
            SELECT $run, c.chunk_id, c.doc_id, c.content_hash, d.content_hash
            FROM used u
            JOIN chunks c ON c.chunk_id = u.chunk_id
            JOIN documents d ON d.doc_id = c.doc_id
            """,
            {"run": run_id},
        )
        return int(db.scalar("SELECT count(*) FROM mining_run_sources WHERE run_id = ?", [run_id]))


# -- checks --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """One invariant query and the rows that break it (empty frame when the rule holds)."""

    name: str
    rows: pl.DataFrame

    @property
    def passed(self) -> bool:
        return self.rows.height == 0


def run_checks(db: Database) -> list[CheckResult]:
    """Run every ``sql/checks/*.sql`` query (read-only), in file-name order."""
    return [CheckResult(name, db.sql(sql)) for name, sql in resources.sql_files("checks").items()]


def describe_failures(results: list[CheckResult], shown: int = SHOWN_ROWS) -> str:
    """A report naming each failed check, its row count and up to ``shown`` offending rows."""
    failed = [r for r in results if not r.passed]
    names = ", ".join(f"{r.name} ({r.rows.height} rows)" for r in failed)
    lines = [f"{len(failed)} of {len(results)} checks failed: {names}"]
    for r in failed:
        lines.append(f"{r.name}:")
        for row in r.rows.head(shown).iter_rows(named=True):
            lines.append("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
        if r.rows.height > shown:
            lines.append(f"  ... and {r.rows.height - shown} more")
    return "\n".join(lines)


def check(db: Database) -> list[CheckResult]:
    """Run all checks; raise :class:`ChecksFailed` naming the broken rules and rows, else return them."""
    results = run_checks(db)
    if any(not r.passed for r in results):
        raise ChecksFailed(describe_failures(results), [r.name for r in results if not r.passed])
    return results


# -- summary -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditParams:
    """Which runs to audit (empty: all) and where to draw charts (None: no charts)."""

    runs: tuple[str, ...] = ()
    plot_dir: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.runs, str):
            raise InvalidParams("runs: give a tuple of run names, not one string")
        if len(set(self.runs)) != len(self.runs):
            raise InvalidParams(f"runs: a run is named twice: {list(self.runs)}")


@dataclass(frozen=True)
class AuditReport:
    """Per-run summary, pairwise overlap, sources changed since mining, and the charts written."""

    runs: pl.DataFrame
    overlap: pl.DataFrame
    changed_sources: pl.DataFrame
    plots: list[Path] = field(default_factory=list)


def resolve_runs(db: Database, names: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(run_id, name) for each name in the order given; NotFound lists the known runs."""
    known = dict(db.execute("SELECT name, run_id FROM mining_runs ORDER BY name").fetchall())
    missing = [n for n in names if n not in known]
    if missing:
        listing = ", ".join(known) if known else "none (run hnm-db mine first)"
        raise NotFound(f"unknown mining run {', '.join(map(repr, missing))}; known runs: {listing}")
    return [(known[n], n) for n in names]


def audit(db: Database, params: AuditParams | None = None) -> AuditReport:
    """Summarise the chosen runs from the views; draw charts if asked. Reads only."""
    params = params or AuditParams()
    names = [n for _, n in resolve_runs(db, params.runs)] if params.runs else None
    where, args = ("WHERE run IN (SELECT unnest(?))", [names]) if names else ("", None)
    summary = db.sql(f"SELECT * FROM run_summary {where} ORDER BY run", args)
    changed = db.sql(
        f"SELECT * FROM ({resources.sql_file('checks', CHANGED_CHECK)}) {where} ORDER BY run, chunk_id", args
    )
    counts = changed.group_by("run").agg(pl.len().alias("changed_sources"))
    summary = (
        summary.select(SUMMARY_COLUMNS)
        .join(counts, on="run", how="left")
        .with_columns(pl.col("changed_sources").fill_null(0))
    )
    overlap_where = "WHERE run_a IN (SELECT unnest($r)) AND run_b IN (SELECT unnest($r))" if names else ""
    overlap = db.sql(
        f"SELECT * FROM run_overlap {overlap_where} ORDER BY run_a, run_b", {"r": names} if names else None
    )
    plots = write_plots(db, names, params.plot_dir) if params.plot_dir is not None else []
    return AuditReport(summary, overlap, changed, plots)


# -- charts --------------------------------------------------------------------------------------------
def write_plots(db: Database, names: list[str] | None, folder: Path) -> list[Path]:
    """PNG charts (matplotlib, Agg): score histograms per method, rank distribution, cluster sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    filt, args = ("WHERE run IN (SELECT unnest(?))", [names]) if names else ("", None)
    rows = db.sql(
        f"SELECT run, method, query_id, positive_chunk_id, rank, score, positive_score, negative_cluster "
        f"FROM negative_provenance {filt}",
        args,
    )
    figures = {
        "score_histograms.png": _plot_scores(plt, rows),
        "rank_distribution.png": _plot_ranks(plt, rows),
        "cluster_sizes.png": _plot_clusters(plt, db, rows, names),
    }
    written = []
    for name, fig in figures.items():
        fig.savefig(folder / name, dpi=80)
        plt.close(fig)
        written.append(folder / name)
    return written


def _plot_scores(plt, rows: pl.DataFrame):  # noqa: ANN001, ANN202 (matplotlib types)
    """One panel per method: histogram of negative scores against positive scores."""
    methods = sorted(rows["method"].unique().to_list()) or ["(no runs)"]
    fig, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 3), squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        part = rows.filter(pl.col("method") == method)
        neg = part["score"].drop_nulls().to_numpy() if part.height else []
        pairs = part.unique(
            ["run", "query_id", "positive_chunk_id"]
        )  # a positive counts once, not per negative
        pos = pairs["positive_score"].drop_nulls().to_numpy() if part.height else []
        if len(neg) or len(pos):
            ax.hist([neg, pos], bins=20, label=["negatives", "positives"])
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no scores", ha="center", va="center")
        ax.set_title(method)
        ax.set_xlabel("score")
    fig.tight_layout()
    return fig


def _plot_ranks(plt, rows: pl.DataFrame):  # noqa: ANN001, ANN202
    """How deep in the candidate list each run's negatives were taken (rank 0 = hardest kept)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for run in sorted(rows["run"].unique().to_list()):
        ranks = rows.filter(pl.col("run") == run)["rank"].to_numpy()
        ax.hist(ranks, bins=min(30, max(1, int(ranks.max()) + 1)), histtype="step", label=run)
    ax.set_xlabel("rank")
    ax.set_ylabel("negatives")
    if rows.height:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _plot_clusters(plt, db: Database, rows: pl.DataFrame, names: list[str] | None):  # noqa: ANN001, ANN202
    """Left: chunks per K-means cluster of each cluster run the runs used; right: negatives per cluster."""
    filt, args = ("AND r.name IN (SELECT unnest(?))", [names]) if names else ("", None)
    sizes = db.sql(
        f"""
        SELECT a.cluster_run_id, a.cluster, count(*) AS n
        FROM cluster_assignments a
        WHERE a.role = 'doc' AND a.cluster_run_id IN (
            SELECT r.cluster_run_id FROM mining_runs r WHERE r.cluster_run_id IS NOT NULL {filt})
        GROUP BY ALL ORDER BY ALL
        """,
        args,
    )
    negatives = (
        rows.drop_nulls("negative_cluster")
        .group_by("run", "negative_cluster")
        .agg(pl.len().alias("n"))
        .sort("run", "negative_cluster")
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    _bars(left, sizes, "cluster_run_id", "cluster", "chunks per cluster")
    _bars(right, negatives, "run", "negative_cluster", "negatives per cluster of the negative")
    fig.tight_layout()
    return fig


def _bars(ax, frame: pl.DataFrame, series: str, x: str, title: str) -> None:  # noqa: ANN001
    for key in frame[series].unique(maintain_order=True).to_list():
        part = frame.filter(pl.col(series) == key)
        ax.bar(part[x].cast(pl.Utf8).to_list(), part["n"].to_list(), label=str(key), alpha=0.6)
    if frame.height:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no clusters", ha="center", va="center")
    ax.set_title(title, fontsize=9)
