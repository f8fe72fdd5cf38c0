"""Audit: convince yourself (and a reviewer) that a run's negatives are sound.

Every fact printed here is also a SQL view (``run_summary``, ``run_overlap``, ``negative_provenance``,
``suspect_negatives``), and every rule of the data model (docs/data-model.md) is one query in ``sql/checks/`` that returns the
offending rows and is empty when the rule holds; ``audit --check``, CI and the tests run the same files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from hnm_db import resources
from hnm_db.errors import ChecksFailed, InvalidParams
from hnm_db.options import param
from hnm_db.store import Store, resolve_runs

#: How many offending rows of each failed check an error message shows.
SHOWN_ROWS = 10

#: The columns of ``run_summary`` the audit prints (the view has a few more: run_id, created_at).
SUMMARY_COLUMNS = [
    "run", "method", "split", "queries", "positives", "triplets",
    "neg_per_query_min", "neg_per_query_median", "neg_per_query_max",
    "neg_score_mean", "neg_score_p10", "neg_score_p50", "neg_score_p90",
    "pos_score_mean", "pos_score_p10", "pos_score_p50", "pos_score_p90",
    "fallback_negatives", "mixed_random_negatives", "same_document_negatives", "positive_rule",
    "own_best_differs", "dropped_false_negatives", "short_pairs", "short_queries", "cluster_agreement",
]  # fmt: skip

CHANGED_CHECK = "negative_doc_changed_since_mining"


# -- provenance snapshot -----------------------------------------------------------------------------
def record_run_sources(db: Store, run_id: str) -> int:
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


def run_checks(db: Store) -> list[CheckResult]:
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


def check(db: Store) -> list[CheckResult]:
    """Run all checks; raise :class:`ChecksFailed` naming the broken rules and rows, else return them."""
    results = run_checks(db)
    if any(not r.passed for r in results):
        raise ChecksFailed(describe_failures(results), [r.name for r in results if not r.passed])
    return results


# -- summary -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditParams:
    """Which runs to audit (empty: all) and where to draw charts (None: no charts)."""

    runs: tuple[str, ...] = param((), flag="--run", help="Audit only these runs (repeatable; default all).")
    plot_dir: Path | None = param(None, flag="--plot", help="Write PNG charts here.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "runs", (self.runs,) if isinstance(self.runs, str) else tuple(self.runs))
        if self.plot_dir is not None:
            object.__setattr__(self, "plot_dir", Path(self.plot_dir))
        if len(set(self.runs)) != len(self.runs):
            raise InvalidParams(f"runs: a run is named twice: {list(self.runs)}")


@dataclass(frozen=True)
class AuditReport:
    """Per-run summary, pairwise overlap, sources changed since mining, and the charts written."""

    runs: pl.DataFrame
    overlap: pl.DataFrame
    changed_sources: pl.DataFrame
    plots: list[Path] = field(default_factory=list)
    dropped: pl.DataFrame = field(default_factory=pl.DataFrame)  # denoised_negatives of the runs


def audit(db: Store, params: AuditParams | None = None) -> AuditReport:
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
    dropped = db.sql(
        "SELECT * FROM denoised_negatives "
        + ("WHERE run IN (SELECT unnest($r)) OR parent_run IN (SELECT unnest($r)) " if names else "")
        + "ORDER BY run, query_id, positive_chunk_id, rank",
        {"r": names} if names else None,
    )
    return AuditReport(summary, overlap, changed, plots, dropped)


# -- charts --------------------------------------------------------------------------------------------
#: Resolution of the PNG charts (dots per inch): sharp enough to read when zoomed or printed.
PLOT_DPI = 150


def write_plots(db: Store, names: list[str] | None, folder: Path) -> list[Path]:
    """PNG charts (matplotlib, Agg), one panel or one bar group per run: scores of negatives beside
    their positives, on the ensemble cosine every run shares when mined with an ensemble; ranks;
    cluster sizes. Axes are labelled; bars stand side by side, never blended."""
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
        "score_histograms.png": score_figure(plt, plot_scores(db, names)),
        "rank_distribution.png": _plot_ranks(plt, rows),
        "cluster_sizes.png": _plot_clusters(plt, db, rows, names),
    }
    written = []
    for name, fig in figures.items():
        fig.savefig(folder / name, dpi=PLOT_DPI)
        plt.close(fig)
        written.append(folder / name)
    return written


@dataclass(frozen=True)
class RunScores:
    """One run's negative and positive scores on one scale, and the scale's name for the axis."""

    run: str
    method: str
    scale: str | None  # None: the run has no score at all (random, mined without an ensemble)
    negatives: list[float]
    positives: list[float]


def plot_scores(db: Store, names: list[str] | None) -> list[RunScores]:
    """Per run (ordered by name): the ensemble cosine of its negatives and of its query-positive pairs
    when it has one (the ensemble method's own score, or the '@ensemble' member score and vectors a
    baseline mined with --ensemble stores), else its own score (BM25), else nothing."""
    filt, args = ("WHERE r.name IN (SELECT unnest($names))", {"names": names}) if names else ("", None)
    runs = db.sql(
        f"""
        WITH picked AS (SELECT r.run_id, r.name AS run, r.method, e.name AS ensemble
                        FROM mining_runs r LEFT JOIN ensembles e USING (ensemble_id) {filt}),
        negatives AS (
            SELECT t.run_id,
                   list(coalesce(t.member_scores['@ensemble'], CASE WHEN p.method = 'ensemble' THEN t.score END)
                        ORDER BY t.query_id, t.rank) FILTER (WHERE coalesce(t.member_scores['@ensemble'],
                        CASE WHEN p.method = 'ensemble' THEN t.score END) IS NOT NULL) AS neg_cos,
                   list(t.score ORDER BY t.query_id, t.rank) FILTER (WHERE t.score IS NOT NULL) AS neg_own
            FROM triplets t JOIN picked p USING (run_id) GROUP BY t.run_id
        ),
        pairs AS (  -- a positive counts once per query, not once per negative
            SELECT DISTINCT t.run_id, t.query_id, t.positive_chunk_id, t.positive_score FROM triplets t
            JOIN picked USING (run_id)
        ),
        positives AS (
            SELECT a.run_id,
                   list(CASE WHEN p.method = 'ensemble' THEN a.positive_score
                             ELSE list_inner_product(qv.vec, cv.vec) END ORDER BY a.query_id, a.positive_chunk_id)
                       FILTER (WHERE p.method = 'ensemble' AND a.positive_score IS NOT NULL
                               OR p.method <> 'ensemble' AND qv.vec IS NOT NULL AND cv.vec IS NOT NULL) AS pos_cos,
                   list(a.positive_score ORDER BY a.query_id, a.positive_chunk_id)
                       FILTER (WHERE a.positive_score IS NOT NULL) AS pos_own
            FROM pairs a
            JOIN picked p USING (run_id)
            JOIN mining_runs r USING (run_id)
            LEFT JOIN queries q ON q.query_id = a.query_id
            LEFT JOIN chunks c ON c.chunk_id = a.positive_chunk_id
            LEFT JOIN ensemble_vectors qv
              ON qv.ensemble_id = r.ensemble_id AND qv.role = 'query' AND qv.content_hash = q.content_hash
            LEFT JOIN ensemble_vectors cv
              ON cv.ensemble_id = r.ensemble_id AND cv.role = 'doc' AND cv.content_hash = c.content_hash
            GROUP BY a.run_id
        )
        SELECT p.run, p.method, p.ensemble, n.neg_cos, n.neg_own, s.pos_cos, s.pos_own
        FROM picked p LEFT JOIN negatives n USING (run_id) LEFT JOIN positives s USING (run_id)
        ORDER BY p.run
        """,
        args,
    )
    out = []
    for r in runs.iter_rows(named=True):
        if r["neg_cos"]:
            out.append(RunScores(r["run"], r["method"], f"ensemble cosine ({r['ensemble']})",
                                 r["neg_cos"], r["pos_cos"] or []))  # fmt: skip
        elif r["neg_own"]:
            out.append(
                RunScores(r["run"], r["method"], f"{r['method']} score", r["neg_own"], r["pos_own"] or [])
            )
        else:
            out.append(RunScores(r["run"], r["method"], None, [], []))
    return out


def score_figure(plt, scores: list[RunScores]):  # noqa: ANN001, ANN202 (matplotlib types)
    """One panel per run: side-by-side bars of negatives and positives; runs on the same scale share
    the bins, so their panels compare at a glance."""
    from matplotlib.ticker import MaxNLocator

    cols = max(1, min(3, len(scores)))
    rows = max(1, -(-len(scores) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    bins: dict[str, np.ndarray] = {}
    for scale in {s.scale for s in scores if s.scale}:
        values = [v for s in scores if s.scale == scale for v in (*s.negatives, *s.positives)]
        lo, hi = min(values), max(values)
        bins[scale] = np.linspace(lo, hi if hi > lo else lo + 1e-6, 21)
    for ax, item in zip(axes.flat, scores, strict=False):
        ax.set_title(f"{item.run} ({item.method})", fontsize=9)
        if item.scale is None:
            ax.text(0.5, 0.5, "no scores: mine with --ensemble\nto compare on the ensemble cosine",
                    ha="center", va="center", fontsize=8, transform=ax.transAxes)  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        ax.hist([item.negatives, item.positives], bins=bins[item.scale], label=["negatives", "positives"])
        ax.set_xlabel(item.scale)
        ax.set_ylabel("count (each positive once)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(scores) :]:
        ax.axis("off")
    if not scores:
        axes[0][0].text(0.5, 0.5, "no runs", ha="center", va="center")
    fig.tight_layout()
    return fig


def _plot_ranks(plt, rows: pl.DataFrame):  # noqa: ANN001, ANN202
    """How deep in the candidate list each run's negatives were taken (rank 0 = hardest kept); one bar
    per run in each rank bin, side by side."""

    fig, ax = plt.subplots(figsize=(6, 3.4))
    runs = sorted(rows["run"].unique().to_list())
    if runs:
        ranks = [rows.filter(pl.col("run") == run)["rank"].to_numpy() for run in runs]
        top = max(int(r.max()) for r in ranks if len(r)) + 1
        ax.hist(ranks, bins=np.linspace(0, top, min(30, top) + 1), label=runs)
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no runs", ha="center", va="center")
    ax.set_xlabel("rank of the negative among the candidates (0 = hardest)")
    ax.set_ylabel("negatives")
    fig.tight_layout()
    return fig


def _plot_clusters(plt, db: Store, rows: pl.DataFrame, names: list[str] | None):  # noqa: ANN001, ANN202
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    _bars(left, sizes, "cluster_run_id", "cluster", "chunks per cluster", "chunks")
    _bars(right, negatives, "run", "negative_cluster", "negatives per cluster of the negative", "negatives")
    fig.tight_layout()
    return fig


def _bars(ax, frame: pl.DataFrame, series: str, x: str, title: str, ylabel: str) -> None:  # noqa: ANN001
    """Grouped bars: one group per cluster, one bar per series side by side (not drawn over each other)."""
    keys = frame[series].unique(maintain_order=True).to_list()
    clusters = sorted(frame[x].unique().to_list())
    width = 0.8 / max(1, len(keys))
    for i, key in enumerate(keys):
        part = frame.filter(pl.col(series) == key)
        where = {c: j for j, c in enumerate(clusters)}
        ax.bar([where[c] + (i - (len(keys) - 1) / 2) * width for c in part[x].to_list()], part["n"].to_list(),
               width=width, label=str(key))  # fmt: skip
    if frame.height:
        ax.set_xticks(range(len(clusters)), [str(c) for c in clusters])
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no clusters", ha="center", va="center")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("cluster")
    ax.set_ylabel(ylabel)
