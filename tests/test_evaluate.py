"""Evaluation: first stages, re-ranking with the score cache, stored results and their comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.databases import db_digest

from hnm_db.errors import EmptySelection, InvalidParams, MissingEmbeddings, NotFound
from hnm_db.reranker import crossencoder as C
from hnm_db.reranker import evaluate as E
from hnm_db.reranker import train as T


@pytest.fixture
def trained(train_db, tiny_model_dir, tmp_path):
    """A tiny model trained for 2 steps on the fixture run (label 'ce-a')."""
    params = T.TrainParams(
        run="mined",
        base=str(tiny_model_dir),
        out=str(tmp_path / "ce-a"),
        batch_size=4,
        max_length=48,
        max_steps=2,
        dev_ratio=0.0,
    )
    return T.train(train_db.store, params, progress=False)


def test_first_stage_alone_is_a_stored_row(train_db):
    summary = E.evaluate(train_db.store, E.EvalParams(model=None, k=10), progress=False)
    assert [r["model"] for r in summary.rows] == ["first-stage:bm25"]
    assert summary.queries == 4  # the test queries only
    assert summary.candidates["query_id"].n_unique() == 4 and summary.candidates.height == 40
    stored = train_db.sql("SELECT * FROM eval_results").to_dicts()
    assert len(stored) == 1 and stored[0]["split"] == "test" and stored[0]["model_fingerprint"] is None
    assert json.loads(stored[0]["metrics"])["queries"] == 4


def test_ensemble_first_stage_retrieves_the_query_topic(train_db):
    summary = E.evaluate(
        train_db.store, E.EvalParams(model=None, first_stage="ensemble:onehot", k=10), progress=False
    )
    cands = summary.candidates
    topics = cands.with_columns(
        q=cands["query_id"].str.split("-").list.get(1), d=cands["doc_id"].str.split("-").list.get(0)
    )
    assert (topics["q"] == topics["d"]).all()  # one-hot topic vectors: all top 10 from the query's topic
    assert summary.rows[0]["recall@k"] == 1.0


def test_repeated_evaluation_scores_no_new_pairs(train_db, trained):
    params = E.EvalParams(model=trained.output_path, k=10, max_length=48)
    first = E.evaluate(train_db.store, params, progress=False)
    assert first.scored_pairs == 40 and first.cached_pairs == 0
    assert [r["model"] for r in first.rows] == ["first-stage:bm25", "ce-a"]  # labelled by its training run
    again = E.evaluate(train_db.store, params, progress=False)
    assert again.scored_pairs == 0 and again.cached_pairs == 40
    assert again.rows == first.rows
    assert train_db.scalar("SELECT count(*) FROM eval_results") == 2  # replaced, not duplicated
    row = train_db.sql("SELECT * FROM eval_results WHERE model = 'ce-a'").to_dicts()[0]
    assert (
        row["training_run_id"] == trained.training_run_id and row["model_fingerprint"] == trained.fingerprint
    )


def test_cached_scores_equal_fresh_scores(train_db, trained):
    params = E.EvalParams(model="ce-a", k=10, max_length=48)  # a training run's name works too
    summary = E.evaluate(train_db.store, params, progress=False)
    scored = E.attach_scores(
        train_db.store, trained.fingerprint, 48, summary.candidates.with_columns(query=None, passage=None)
    ).head(3)
    ce = C.load_cross_encoder(Path(trained.output_path), max_length=48, device="cpu")
    texts = train_db.store.execute(
        "SELECT q.text, c.text FROM queries q, chunks c WHERE q.query_id = ? AND c.chunk_id = ?",
        [scored["query_id"][0], scored["chunk_id"][0]],
    ).fetchone()
    assert C.score_pairs(ce, [texts[0]], [texts[1]])[0] == pytest.approx(scored["model_score"][0], abs=1e-5)


def test_interpolation_rows_bracket_first_stage_and_model(train_db, trained):
    params = E.EvalParams(model=trained.output_path, k=10, max_length=48, interpolate=(0.0, 1.0))
    rows = E.evaluate(train_db.store, params, progress=False).rows
    metrics = ["mrr@10", "ndcg@10", "p@1", "p@5", "recall@k"]
    assert [rows[2][m] for m in metrics] == pytest.approx(
        [rows[0][m] for m in metrics]
    )  # alpha 0 = first stage
    assert [rows[3][m] for m in metrics] == pytest.approx([rows[1][m] for m in metrics])  # alpha 1 = model
    assert rows[3]["model"] == "ce-a + bm25 (alpha=1)"


def test_untuned_base_is_scored_under_its_own_fingerprint(train_db, tiny_model_dir, trained):
    a = E.evaluate(
        train_db.store, E.EvalParams(model=f"base:{tiny_model_dir}", k=10, max_length=48), progress=False
    )
    b = E.evaluate(
        train_db.store,
        E.EvalParams(model=f"base:{tiny_model_dir}", k=10, max_length=48, head_seed=1),
        progress=False,
    )
    assert a.scored_pairs == 40 and b.scored_pairs == 40  # another head seed is another model
    assert train_db.scalar("SELECT count(DISTINCT model_fingerprint) FROM eval_scores") == 2


def test_compare_summarises_seeds(train_db, tiny_model_dir, trained, tmp_path):
    params = T.TrainParams(
        run="mined",
        base=str(tiny_model_dir),
        out=str(tmp_path / "ce-b"),
        batch_size=4,
        max_length=48,
        max_steps=2,
        seed=7,
        dev_ratio=0.0,
    )
    other = T.train(train_db.store, params, progress=False)
    for model in (trained.output_path, other.output_path):
        E.evaluate(train_db.store, E.EvalParams(model=model, k=10, max_length=48), progress=False)
    results = E.stored_results(train_db.store, "test")
    assert set(results["model"]) == {"first-stage:bm25", "ce-a", "ce-b"}
    assert set(results.filter(results["method"].is_not_null())["seed"]) == {0, 7}
    summary = E.seed_summary(results)
    row = summary.filter(summary["system"] == "ce[mined, lce]").to_dicts()[0]
    mine = results.filter(results["method"].is_not_null())["ndcg@10"]
    assert row["seeds"] == 2 and row["ndcg@10"] == pytest.approx(mine.mean())
    assert row["ndcg@10 sd"] == pytest.approx(mine.std())
    table = E.markdown_table(summary)
    assert "| bm25 | 10 | ce[mined, lce] | 2 |" in table and "±" in table


def test_a_split_without_qrels_is_refused(train_db):
    before = db_digest(train_db)
    with pytest.raises(EmptySelection, match="split 'dev' has no qrels"):
        E.evaluate(train_db.store, E.EvalParams(model=None, split="dev"), progress=False)
    assert db_digest(train_db) == before


def test_k_below_ten_is_refused_because_ndcg_at_10_needs_ten():
    with pytest.raises(InvalidParams, match="nDCG@10"):
        E.EvalParams(model=None, k=5)


def test_missing_vectors_and_unknown_ensembles_are_named(train_db):
    train_db.store.execute(
        "DELETE FROM ensemble_vectors WHERE role = 'doc' AND content_hash IN "
        "(SELECT content_hash FROM chunks WHERE doc_id IN ('astro-1', 'bio-2'))"
    )
    before = db_digest(train_db)
    with pytest.raises(MissingEmbeddings, match="no vector for 2 chunks"):
        E.evaluate(train_db.store, E.EvalParams(model=None, first_stage="ensemble:onehot"), progress=False)
    with pytest.raises(NotFound, match="no ensemble named 'nope'"):
        E.evaluate(train_db.store, E.EvalParams(model=None, first_stage="ensemble:nope"), progress=False)
    assert db_digest(train_db) == before


def test_python_api_mirrors_the_commands(train_db, tiny_model_dir, tmp_path):
    trained = train_db.train(
        run="mined", base=str(tiny_model_dir), out=tmp_path / "api", batch_size=4, max_length=48, max_steps=1
    )
    summary = train_db.evaluate(model="api", k=10, max_length=48, interpolate=[0.5])
    assert [r["model"] for r in summary.rows] == ["first-stage:bm25", "api", "api + bm25 (alpha=0.5)"]
    assert train_db.compare().height == 3
    grouped = train_db.compare(mean_over_seeds=True)
    assert grouped.filter(grouped["system"] == "ce[mined, lce]")["seeds"].to_list() == [1]
    assert trained.steps == 1


def test_an_embedding_model_without_head_needs_the_base_prefix(train_db, tiny_model_dir):
    with pytest.raises(InvalidParams, match="base:"):
        E.evaluate(train_db.store, E.EvalParams(model=str(tiny_model_dir), k=10), progress=False)


def test_evaluation_reads_the_split_that_hnm_db_split_assigned(db):
    from hnm_db.reranker.evaluate import load_qrels
    from hnm_db.sources.split import SplitParams, split

    for i in range(20):
        db.store.execute(
            "INSERT INTO queries (query_id, text, content_hash) VALUES (?, ?, ?)", [f"q{i}", f"t{i}", f"h{i}"]
        )
        db.store.execute("INSERT INTO qrels VALUES (?, ?, 1, 'unsplit')", [f"q{i}", f"d{i}"])
    split(db.store, SplitParams(test_ratio=0.3, seed=1))
    assigned = {
        r[0] for r in db.store.execute("SELECT query_id FROM query_splits WHERE split = 'test'").fetchall()
    }
    assert assigned and set(load_qrels(db.store, "test")) == assigned
    assert not set(load_qrels(db.store, "train")) & assigned


def test_per_query_metrics_are_stored_and_average_to_the_result(train_db, trained):
    E.evaluate(train_db.store, E.EvalParams(model="ce-a", k=10, max_length=48), progress=False)
    for metrics_json, per_query_json in train_db.store.execute(
        "SELECT metrics, per_query FROM eval_results"
    ).fetchall():
        means, per_query = json.loads(metrics_json), json.loads(per_query_json)
        assert len(per_query) == means["queries"] == 4  # the fixture's test queries
        for name in E.METRIC_COLUMNS:
            assert sum(m[name] for m in per_query.values()) / len(per_query) == pytest.approx(means[name])


def test_paired_test_over_queries():
    import numpy as np

    rng = np.random.default_rng(0)
    a = {f"q{i}": float(v) for i, v in enumerate(rng.random(200))}
    same = E.paired_test(a, dict(a))
    assert same.diff == 0 and same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0
    better = E.paired_test(a, {q: v - 0.05 + rng.normal(0, 0.05) for q, v in a.items()})
    assert better.diff == pytest.approx(0.05, abs=0.01) and better.p_value < 0.001
    assert 0 < better.ci_low < better.diff < better.ci_high
    noise = E.paired_test(a, {q: v + rng.normal(0, 0.05) for q, v in a.items()})
    assert noise.p_value > 0.05 and noise.ci_low < 0 < noise.ci_high
    assert E.paired_test(a, {"q0": 0.0, "q1": 0.5, "x": 1.0}).queries == 2  # only queries of both count
    with pytest.raises(EmptySelection, match="at least two queries"):
        E.paired_test(a, {"q0": 0.0})


def test_seeds_average_per_query_before_the_test(train_db, trained, tiny_model_dir, tmp_path):
    E.evaluate(train_db.store, E.EvalParams(model="ce-a", k=10, max_length=48), progress=False)
    E.evaluate(
        train_db.store, E.EvalParams(model=f"base:{tiny_model_dir}", k=10, max_length=48), progress=False
    )
    ids = dict(train_db.store.execute("SELECT model, eval_id FROM eval_results").fetchall())
    one = E.per_query_values(train_db.store, [ids["ce-a"]])
    both = E.per_query_values(train_db.store, [ids["ce-a"], ids[f"base:{tiny_model_dir}"]])
    base = E.per_query_values(train_db.store, [ids[f"base:{tiny_model_dir}"]])
    assert both == {q: pytest.approx((one[q] + base[q]) / 2) for q in one}
    with pytest.raises(NotFound, match="no per-query metrics"):
        E.per_query_values(train_db.store, ["nope"])
