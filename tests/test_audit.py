"""Audit: the run summary, the views behind it, charts, and the invariant checks of sql/checks."""

from __future__ import annotations

import numpy as np
import pytest

from hnm_db.audit.checks import AuditParams, audit, check, record_run_sources, run_checks
from hnm_db.errors import ChecksFailed, InvalidParams, NotFound
from hnm_db.sources.text import content_hash

MY_CHECKS = {
    "negative_is_judged_positive",
    "test_query_in_training_rows",
    "triplet_chunk_or_doc_missing",
    "negative_doc_changed_since_mining",
}


def _reingest(db, doc_id: str, text: str) -> None:
    """What ingest --on-duplicate replace plus re-chunking do to a document whose text changed."""
    db.store.execute(
        "UPDATE documents SET text = ?, content_hash = ?, ingested_at = current_timestamp::TIMESTAMP "
        "WHERE doc_id = ?",
        [text, content_hash(text), doc_id],
    )
    db.store.execute(
        "UPDATE chunks SET text = ?, content_hash = ? WHERE doc_id = ?", [text, content_hash(text), doc_id]
    )


def test_run_summary_reports_coverage_negatives_scores_guard_and_clusters(mined_db):
    runs = {r["run"]: r for r in audit(mined_db.store).runs.to_dicts()}
    assert list(runs) == ["bm25-top", "ens-top", "random"]
    ens = runs["ens-top"]
    assert (ens["queries"], ens["positives"], ens["triplets"]) == (3, 4, 12)
    assert (ens["neg_per_query_min"], ens["neg_per_query_median"], ens["neg_per_query_max"]) == (3, 3, 3)
    assert (ens["dropped_false_negatives"], ens["short_queries"]) == (2, 0)
    assert ens["cluster_agreement"] == pytest.approx(8 / 12)
    scores = np.array(
        [
            r[0]
            for r in mined_db.store.execute("SELECT score FROM triplets WHERE run_id = 'run-ens'").fetchall()
        ]
    )
    assert ens["neg_score_mean"] == pytest.approx(scores.mean())
    assert [ens["neg_score_p10"], ens["neg_score_p50"], ens["neg_score_p90"]] == pytest.approx(
        np.quantile(scores, [0.1, 0.5, 0.9]).tolist()
    )
    assert ens["pos_score_mean"] == pytest.approx(np.mean([0.90, 0.80, 0.88, 0.82]))  # each positive once
    rnd = runs["random"]
    assert (
        rnd["neg_per_query_max"] == 4
        and rnd["neg_score_mean"] is None
        and rnd["dropped_false_negatives"] is None
    )
    assert rnd["cluster_agreement"] is None and runs["bm25-top"]["short_queries"] == 1
    assert {r["changed_sources"] for r in runs.values()} == {0}


def test_overlap_is_mean_jaccard_of_negative_sets_over_shared_queries(mined_db):
    overlap = {(r["run_a"], r["run_b"]): r for r in audit(mined_db.store).overlap.to_dicts()}
    assert set(overlap) == {("bm25-top", "ens-top"), ("bm25-top", "random"), ("ens-top", "random")}
    pair = overlap[("ens-top", "random")]
    assert pair["shared_queries"] == 3
    assert pair["mean_jaccard"] == pytest.approx((1 / 4 + 1 / 4 + 1 / 6) / 3)


def test_audit_of_chosen_runs_shows_only_them_and_unknown_run_is_not_found(mined_db):
    report = audit(mined_db.store, AuditParams(runs=("random", "ens-top")))
    assert report.runs["run"].to_list() == ["ens-top", "random"]
    assert report.overlap.select("run_a", "run_b").rows() == [("ens-top", "random")]
    assert audit(mined_db.store, AuditParams(runs=("random",))).overlap.height == 0
    with pytest.raises(NotFound, match="unknown mining run 'gone'; known runs: bm25-top, ens-top, random"):
        audit(mined_db.store, AuditParams(runs=("gone",)))
    with pytest.raises(InvalidParams, match="^runs:"):
        AuditParams(runs=("a", "a"))


def test_plots_are_png_files(mined_db, tmp_path):
    report = audit(mined_db.store, AuditParams(plot_dir=tmp_path / "plots"))
    assert sorted(p.name for p in report.plots) == [
        "cluster_sizes.png",
        "rank_distribution.png",
        "score_histograms.png",
    ]
    for path in report.plots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_negative_provenance_has_one_row_per_triplet_with_texts_and_reasons(mined_db):
    assert mined_db.scalar("SELECT count(*) FROM negative_provenance") == mined_db.scalar(
        "SELECT count(*) FROM triplets"
    )
    row = mined_db.sql(
        "SELECT * FROM negative_provenance WHERE run = 'ens-top' AND query_id = 'q1' AND rank = 0"
    ).to_dicts()[0]
    assert row["method"] == "ensemble" and row["seed"] == 1 and row["sampling"] == "top"
    assert row["max_score_ratio"] == 0.95 and row["negative_chunk_id"] == "d5#0"
    assert row["query_text"] == "question 1 about w1a?" and row["negative_text"].startswith("Document 5")
    assert row["score_ratio"] == pytest.approx(0.80 / 0.90) and row["margin"] == pytest.approx(0.10)
    assert row["same_cluster"] is True and row["member_scores"] is not None


def test_suspect_negatives_flag_scores_at_or_above_the_positive_and_reranker_scores(mined_db):
    own = mined_db.sql("SELECT run, query_id, negative_chunk_id, reason FROM suspect_negatives").rows()
    assert own == [("ens-top", "q2", "d1#0", "score >= positive")]
    q3, pos, neg = (
        mined_db.scalar(f"SELECT content_hash FROM {t} WHERE {k} = ?", [v])
        for t, k, v in [
            ("queries", "query_id", "q3"),
            ("chunks", "chunk_id", "d3#0"),
            ("chunks", "chunk_id", "d6#0"),
        ]
    )
    mined_db.store.execute(
        "INSERT INTO eval_scores VALUES ('ce', ?, ?, 256, 0.4), ('ce', ?, ?, 256, 0.7)", [q3, pos, q3, neg]
    )
    flagged = mined_db.sql(
        "SELECT DISTINCT run, positive_chunk_id, negative_chunk_id, reason FROM suspect_negatives "
        "WHERE reason LIKE 'reranker%' ORDER BY ALL"
    ).rows()
    assert ("ens-top", "d3#0", "d6#0", "reranker: negative >= positive") in flagged
    assert not [r for r in flagged if r[3] == "reranker score >= threshold"]  # threshold unset
    mined_db.store.execute("SET VARIABLE suspect_reranker_threshold = 0.5")
    n = mined_db.scalar("SELECT count(*) FROM suspect_negatives WHERE reason = 'reranker score >= threshold'")
    assert n == mined_db.scalar(
        "SELECT count(*) FROM triplets WHERE query_id = 'q3' AND negative_chunk_id = 'd6#0'"
    )


def test_clean_database_passes_every_check(mined_db):
    results = check(mined_db.store)
    assert MY_CHECKS <= {r.name for r in results}
    assert all(r.passed for r in results)


PLANTED = {
    "negative_is_judged_positive": ["INSERT INTO qrels VALUES ('q1', 'd5', 2, 'dev')"],
    # any chunk of a judged document: the ensemble run took d5#1, a second chunk of d5, for q2
    "negative_is_judged_positive#chunk": ["INSERT INTO qrels VALUES ('q2', 'd5', 1, 'train')"],
    "test_query_in_training_rows": ["INSERT INTO qrels VALUES ('q3', 'd8', 0, 'test')"],  # judged in test too
    "test_query_in_training_rows#split": [
        "UPDATE triplets SET split = 'dev' WHERE run_id = 'run-rnd' AND query_id = 'q1' AND rank = 0"
    ],
    "triplet_chunk_or_doc_missing": ["DELETE FROM chunks WHERE chunk_id = 'd7#0'"],
    "triplet_chunk_or_doc_missing#doc": ["DELETE FROM documents WHERE doc_id = 'd8'"],
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_each_check_detects_its_planted_violation_without_changing_the_db(mined_db, digest, case):
    name = case.split("#")[0]
    for statement in PLANTED[case]:
        mined_db.store.execute(statement)
    before = digest(mined_db)
    results = {r.name: r for r in run_checks(mined_db.store)}
    assert not results[name].passed
    assert all(results[other].passed for other in MY_CHECKS - {name}), case
    with pytest.raises(ChecksFailed) as err:
        check(mined_db.store)
    assert name in err.value.checks
    assert f"{name} ({results[name].rows.height} rows)" in str(err.value)
    assert digest(mined_db) == before


def test_failure_message_shows_at_most_ten_rows_per_check(mined_db):
    mined_db.store.execute("DELETE FROM chunks WHERE chunk_id IN ('d6#0', 'd7#0', 'd5#0')")
    with pytest.raises(ChecksFailed) as err:
        check(mined_db.store)
    lines = [line for line in str(err.value).splitlines() if line.startswith("  run=")]
    assert len(lines) == 10
    assert "... and" in str(err.value)


def test_reingested_document_with_new_text_is_reported_and_fails_the_check(mined_db, digest):
    _reingest(mined_db, "d6", "Document 6 was rewritten and now says something else entirely.")
    before = digest(mined_db)
    report = audit(mined_db.store)
    changed = {r["run"]: r["changed_sources"] for r in report.runs.to_dicts()}
    assert changed == {"bm25-top": 1, "ens-top": 1, "random": 1}
    row = report.changed_sources.filter(report.changed_sources["run"] == "ens-top").to_dicts()[0]
    assert (row["chunk_id"], row["change"]) == ("d6#0", "chunk text changed since mining")
    assert row["negative_triplets"] == 3 and row["positive_triplets"] == 0
    with pytest.raises(ChecksFailed, match="negative_doc_changed_since_mining"):
        check(mined_db.store)
    assert digest(mined_db) == before


def test_document_text_change_is_caught_even_when_chunks_were_not_rebuilt(mined_db):
    mined_db.store.execute("UPDATE documents SET content_hash = 'other' WHERE doc_id = 'd1'")
    rows = {r.name: r.rows for r in run_checks(mined_db.store)}["negative_doc_changed_since_mining"]
    assert set(rows["change"]) == {"document text changed since mining"}
    assert set(rows["run"]) == {"bm25-top", "ens-top", "random"}


def test_snapshot_makes_the_check_exact_and_re_recording_accepts_new_text(mined_db):
    mined_db.store.execute(
        "UPDATE documents SET ingested_at = current_timestamp::TIMESTAMP"
    )  # same text re-stamped
    assert {r.name: r for r in run_checks(mined_db.store)}["negative_doc_changed_since_mining"].passed
    _reingest(mined_db, "d8", "New text for document 8.")
    assert record_run_sources(mined_db.store, "run-rnd") == 8
    rows = {r.name: r.rows for r in run_checks(mined_db.store)}["negative_doc_changed_since_mining"]
    assert rows["run"].to_list() == ["bm25-top"]  # random now vouches for the new text


def test_runs_without_a_snapshot_fall_back_to_ingest_time(mined_db):
    mined_db.store.execute("DELETE FROM mining_run_sources WHERE run_id = 'run-rnd'")
    assert {r.name: r for r in run_checks(mined_db.store)}["negative_doc_changed_since_mining"].passed
    mined_db.store.execute("UPDATE documents SET ingested_at = TIMESTAMP '2025-02-01' WHERE doc_id = 'd7'")
    rows = {r.name: r.rows for r in run_checks(mined_db.store)}["negative_doc_changed_since_mining"]
    assert rows.select("run", "chunk_id").rows() == [("random", "d7#0")]
    assert rows["change"][0] == "document ingested after the run (no hash snapshot)"


def test_python_api_mirrors_the_commands(mined_db, tmp_path):
    summary = mined_db.export(runs="random", to=tmp_path / "api", layout="labeled-pair", keep_ids=True)
    assert summary.rows == 12 and summary.columns[:3] == ["query", "passage", "label"]
    assert mined_db.audit(runs=["ens-top"]).runs["run"].to_list() == ["ens-top"]
    assert all(r.passed for r in mined_db.check())
    assert record_run_sources(mined_db.store, "run-ens") == 8


def _with_ensemble_scores(db) -> None:
    """Give the random run an ensemble (e1) and its '@ensemble' member scores, plus the ensemble vectors
    of its queries and positives, as `mine --method random --ensemble ab` stores them; and add a second
    ensemble run over the same queries with a deeper window."""
    import numpy as np

    from hnm_db.store.vectors import write_vectors

    db.store.execute("UPDATE mining_runs SET ensemble_id = 'e1' WHERE run_id = 'run-rnd'")
    db.store.execute(
        "UPDATE triplets SET member_scores = MAP {'@ensemble': 0.1 + rank / 10} WHERE run_id = 'run-rnd'"
    )
    hashes = db.store.execute(
        "SELECT 'query', content_hash FROM queries UNION ALL SELECT 'doc', content_hash FROM chunks"
    ).fetchall()
    rng = np.random.default_rng(0)
    for role in ("query", "doc"):
        keys = [h for r, h in hashes if r == role]
        vecs = rng.normal(size=(len(keys), 4)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        write_vectors(
            db.store, "ensemble_vectors", {"ensemble_id": "e1", "role": role, "content_hash": keys}, vecs
        )
    db.store.execute(
        "INSERT INTO mining_runs SELECT 'run-deep', 'ens-deep', method, split, "
        "json_merge_patch(params, '{\"range_min\": 10}'), seed, ensemble_id, cluster_run_id, models, "
        "code_version, created_at, stats FROM mining_runs WHERE run_id = 'run-ens'"
    )
    db.store.execute(
        "INSERT INTO triplets SELECT 'run-deep', * EXCLUDE (run_id) REPLACE (score - 0.2 AS score) "
        "FROM triplets WHERE run_id = 'run-ens'"
    )


def test_score_chart_has_a_panel_per_run_on_the_ensemble_cosine_they_share(mined_db):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hnm_db.audit.checks import plot_scores, score_figure

    _with_ensemble_scores(mined_db)
    scores = plot_scores(mined_db.store, None)
    assert [(s.run, s.scale) for s in scores] == [
        ("bm25-top", "bm25 score"),  # no ensemble: its own score, labelled so
        ("ens-deep", "ensemble cosine (ab)"),  # two ensemble runs with other windows: two panels
        ("ens-top", "ensemble cosine (ab)"),
        ("random", "ensemble cosine (ab)"),  # the stored ensemble cosine, not "no scores"
    ]
    rnd = next(s for s in scores if s.run == "random")
    assert sorted(rnd.negatives) == pytest.approx([0.1] * 4 + [0.2] * 4) and len(rnd.positives) == 4
    fig = score_figure(plt, scores)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        "bm25-top (bm25)", "ens-deep (ensemble)", "ens-top (ensemble)", "random (random)",
    ]  # fmt: skip
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in panels)
    shared = [ax for ax in panels if ax.get_xlabel() == "ensemble cosine (ab)"]
    assert len({ax.get_xlim() for ax in shared}) == 1  # same bins, same scale
    for ax in panels:  # negatives beside positives: no two bars start at the same x
        starts = [round(bar.get_x(), 9) for bar in ax.patches]
        assert len(starts) == len(set(starts))
    plt.close(fig)


def test_charts_are_150_dpi_with_labelled_axes_and_side_by_side_cluster_bars(mined_db, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from hnm_db.audit.checks import _plot_clusters

    report = audit(mined_db.store, AuditParams(plot_dir=tmp_path / "plots"))
    for path in report.plots:
        assert Image.open(path).info["dpi"] == pytest.approx((150, 150), abs=1)
    rows = mined_db.sql("SELECT run, rank, negative_cluster FROM negative_provenance")
    fig = _plot_clusters(plt, mined_db, rows, None)
    for ax in fig.axes:
        assert ax.get_xlabel() == "cluster" and ax.get_ylabel()
        starts = [round(bar.get_x(), 9) for bar in ax.patches]
        assert len(starts) == len(set(starts))
    plt.close(fig)
