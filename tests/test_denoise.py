"""Denoising a mining run with a cross-encoder: the rule, the score cache, provenance, audit, refill,
bad input. The cross-encoder is the tiny random BERT with a fresh seeded head (``base:PATH``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures.cli import invoke
from fixtures.databases import ENSEMBLE, db_digest, path_digest, populate_mining_db

import hnm_db
from hnm_db.errors import AlreadyExists, InvalidParams, NotFound, UnknownModel
from hnm_db.mining.denoise import DenoiseParams, sigmoid

MAX_LEN = 48


#: The parent run `par`: 3 negatives per pair from ranks 0..4, fallback to 30.
PARENT = dict(
    ensemble=ENSEMBLE, num_negatives=3, range_max=4, fallback_depth=30, max_score_ratio=None, name="par"
)


@pytest.fixture
def mined(mining_db):
    """The mining fixture with the parent run `par` (``PARENT``)."""
    mining_db.mine(method="ensemble", **PARENT)
    return mining_db


@pytest.fixture
def ce(tiny_model_dir):
    return f"base:{tiny_model_dir}"


def _keys(db, run):
    return set(
        db.store.execute(
            "SELECT query_id, positive_chunk_id, negative_chunk_id FROM triplets t JOIN mining_runs r "
            "USING (run_id) WHERE r.name = ?",
            [run],
        ).fetchall()
    )


def _probs(db, run, fingerprint, side="negative"):
    """(query, positive chunk, negative chunk) -> sigmoid of the cached logit of the run's negative (or
    of its positive)."""
    rows = db.store.execute(
        f"""SELECT t.query_id, t.positive_chunk_id, t.negative_chunk_id, s.score
            FROM triplets t JOIN mining_runs r USING (run_id) JOIN queries q USING (query_id)
            JOIN chunks c ON c.chunk_id = t.{side}_chunk_id
            JOIN eval_scores s ON s.query_hash = q.content_hash AND s.passage_hash = c.content_hash
             AND s.model_fingerprint = ? AND s.max_length = ?
            WHERE r.name = ?""",
        [fingerprint, MAX_LEN, run],
    ).fetchall()
    return {r[:3]: float(sigmoid(np.array([r[3]]))[0]) for r in rows}


def _fingerprint(db):
    return json.loads(db.scalar("SELECT params FROM mining_runs WHERE name = 'all'"))["denoise"][
        "model_fingerprint"
    ]


def _score_all(db, ce):
    """A denoise that keeps everything (threshold just below 1) scores and caches every negative."""
    return db.denoise(run="par", model=ce, threshold=1 - 1e-12, max_length=MAX_LEN, name="all")


def test_threshold_drops_exactly_the_negatives_scored_above_it(mined, ce):
    everything = _score_all(mined, ce)
    assert everything.dropped == 0 and _keys(mined, "all") == _keys(mined, "par")
    probs = _probs(mined, "par", _fingerprint(mined))
    assert len(probs) == everything.parent_triplets
    t = float(np.median(list(probs.values())))
    s = mined.denoise(run="par", model=ce, threshold=t, max_length=MAX_LEN, name="half")
    expected = {k for k, p in probs.items() if p <= t}
    assert _keys(mined, "half") == expected
    assert 0 < s.dropped == len(probs) - len(expected) and s.triplets == len(expected)
    records = mined.sql(
        "SELECT name, method, split, seed, ensemble_id, cluster_run_id, models FROM mining_runs "
        "WHERE name IN ('par', 'half') ORDER BY name DESC"
    ).rows()
    assert records[0][1:] == records[1][1:]  # the child's record is the parent's, models text and all


def test_a_second_denoise_scores_no_new_pairs(mined, ce):
    first = _score_all(mined, ce)
    assert first.scored_pairs > 0 and first.cached_pairs == 0
    again = mined.denoise(run="par", model=ce, threshold=0.5, max_length=MAX_LEN, name="again")
    assert again.scored_pairs == 0 and again.cached_pairs == first.scored_pairs
    n = mined.scalar("SELECT count(*) FROM eval_scores")
    rel = mined.denoise(run="par", model=ce, relative=1.0, max_length=MAX_LEN, name="rel")
    rel_again = mined.denoise(run="par", model=ce, relative=0.9, max_length=MAX_LEN, name="rel2")
    assert rel.scored_pairs > 0  # the positives, which a threshold never needed
    assert (
        rel_again.scored_pairs == 0
        and mined.scalar("SELECT count(*) FROM eval_scores") == n + rel.scored_pairs
    )


def test_relative_compares_the_negative_with_its_own_positive_on_the_probability_scale(mined, ce):
    s = mined.denoise(run="par", model=ce, relative=1.0, max_length=MAX_LEN, name="all")
    fp = _fingerprint(mined)
    neg, pos = _probs(mined, "par", fp), _probs(mined, "par", fp, side="positive")
    expected = {k for k in neg if neg[k] <= 1.0 * pos[k]}
    assert _keys(mined, "all") == expected and s.dropped == len(neg) - len(expected)


def test_the_new_run_records_its_parent_model_and_rule_and_the_parent_is_unchanged(mined, ce, tiny_model_dir):
    parent_rows = sorted(mined.store.execute("SELECT * FROM triplets").fetchall(), key=repr)
    s = mined.denoise(run="par", model=ce, threshold=0.5, max_length=MAX_LEN, name="clean")
    assert sorted(
        mined.store.execute("SELECT * FROM triplets WHERE run_id <> ?", [s.run_id]).fetchall(), key=repr
    ) == (parent_rows)
    par, child = (mined.run(n) for n in ("par", "clean"))
    d = child["params"].pop("denoise")
    assert child["params"] == par["params"]  # the mining parameters it inherits, unchanged
    assert d["parent_run"] == "par" and d["parent_run_id"] == par["run_id"]
    assert d["rule"] == "threshold" and d["threshold"] == 0.5 and d["relative"] is None
    assert d["scale"] == "sigmoid(logit)" and d["max_length"] == MAX_LEN and d["model"] == ce
    from hnm_db.reranker.evaluate import resolve_model

    assert d["model_fingerprint"] == resolve_model(mined.store, ce).fingerprint
    assert (child["method"], child["split"], child["seed"]) == (par["method"], par["split"], par["seed"])
    assert child["stats"]["denoise_dropped"] == s.dropped and child["triplets"] == s.triplets
    mined.check()  # every invariant of sql/checks still holds


def test_audit_shows_what_was_dropped_with_texts(mined, ce, db_path):
    _score_all(mined, ce)
    s = mined.denoise(run="par", model=ce, threshold=0.5, max_length=MAX_LEN, name="clean")
    dropped = mined.audit(runs=["clean"]).dropped
    assert dropped.height == s.dropped > 0
    assert set(
        zip(dropped["query_id"], dropped["positive_chunk_id"], dropped["negative_chunk_id"], strict=True)
    ) == (_keys(mined, "par") - _keys(mined, "clean"))
    assert (dropped["negative_prob"] > 0.5).all() and dropped["negative_text"].str.len_chars().min() > 0
    assert dropped["query_text"].null_count() == 0 and set(dropped["parent_run"]) == {"par"}
    suspects = mined.sql("SELECT * FROM suspect_negatives WHERE reason = 'dropped by denoised run clean'")
    assert suspects.height == s.dropped and set(suspects["run"]) == {"par"}
    mined.close()
    res = invoke(db_path, "audit", "--run", "clean")  # the CLI prints them too
    assert "negatives dropped by denoising" in res.output


def test_refill_takes_unused_candidates_that_pass_the_rule_until_pairs_are_full(mined, ce):
    _score_all(mined, ce)
    t = float(np.median(list(_probs(mined, "par", _fingerprint(mined)).values())))
    plain = mined.denoise(run="par", model=ce, threshold=t, max_length=MAX_LEN, name="plain")
    s = mined.denoise(run="par", model=ce, threshold=t, max_length=MAX_LEN, name="full", refill=True)
    assert s.dropped == plain.dropped and s.refilled > 0 and s.triplets == plain.triplets + s.refilled
    parent, kept, full = _keys(mined, "par"), _keys(mined, "plain"), _keys(mined, "full")
    assert kept <= full and not (full - kept) & parent  # refills are new, never a dropped negative
    probs = _probs(mined, "full", _fingerprint(mined))
    assert all(probs[k] <= t for k in full)  # the rule holds for every row, refills included
    per_pair = mined.sql(
        "SELECT query_id, positive_chunk_id, count(*) AS n FROM triplets JOIN mining_runs USING (run_id) "
        "WHERE name = 'full' GROUP BY ALL"
    )
    assert per_pair["n"].max() <= 3 and s.short_pairs < plain.short_pairs
    refills = mined.sql(
        "SELECT t.* FROM triplets t JOIN mining_runs r USING (run_id) WHERE r.name = 'full' AND NOT EXISTS "
        "(SELECT 1 FROM triplets p JOIN mining_runs pr USING (run_id) WHERE pr.name = 'par' "
        "AND p.query_id = t.query_id AND p.positive_chunk_id = t.positive_chunk_id "
        "AND p.negative_chunk_id = t.negative_chunk_id)"
    )
    assert refills.height == s.refilled and refills["member_scores"].null_count() == 0
    assert (refills["fallback"] == (refills["rank"] >= 4)).all()  # ranks past range_max are fallback rows
    mined.check()  # no refilled negative is a judged positive
    again = mined.denoise(
        run="par", model=ce, threshold=t, max_length=MAX_LEN, name="full", refill=True, replace=True
    )
    assert again.scored_pairs == 0 and _keys(mined, "full") == full  # same rows, nothing rescored


def test_refill_uses_the_parents_clusters_even_after_a_newer_cluster_run(mining_db, ce):
    first = mining_db.cluster(ensemble=ENSEMBLE, k=4, seed=0)
    mining_db.mine(method="ensemble", cluster_filter="query", **PARENT)
    newer = mining_db.cluster(ensemble=ENSEMBLE, k=2, seed=1)  # now the latest run of the ensemble
    assert newer.cluster_run_id != first.cluster_run_id
    mining_db.denoise(run="par", model=ce, threshold=1 - 1e-12, max_length=MAX_LEN, name="all")
    t = float(np.median(list(_probs(mining_db, "par", _fingerprint(mining_db)).values())))
    s = mining_db.denoise(run="par", model=ce, threshold=t, max_length=MAX_LEN, name="full", refill=True)
    assert s.refilled > 0
    rows = mining_db.sql(
        "SELECT t.query_cluster, t.negative_cluster, a.cluster AS in_first_run FROM triplets t "
        "JOIN mining_runs r USING (run_id) JOIN chunks c ON c.chunk_id = t.negative_chunk_id "
        "JOIN cluster_assignments a ON a.content_hash = c.content_hash AND a.role = 'doc' "
        "AND a.cluster_run_id = ? WHERE r.name = 'full'",
        [first.cluster_run_id],
    )
    assert (rows["query_cluster"] == rows["negative_cluster"]).all()  # the filter held, refills included
    assert (rows["negative_cluster"] == rows["in_first_run"]).all()  # ... with the parent's clusters


# -- bad input: one clear error, database unchanged ---------------------------------------------------
def test_refill_needs_a_parent_mined_with_a_fallback(mining_db, ce):
    mining_db.mine(method="ensemble", ensemble=ENSEMBLE, num_negatives=2, range_max=4, name="nofb")
    before = db_digest(mining_db)
    with pytest.raises(InvalidParams, match="refill: run 'nofb' was mined without --fallback-depth"):
        mining_db.denoise(run="nofb", model=ce, threshold=0.5, refill=True)
    assert db_digest(mining_db) == before


def test_missing_model_folder_unknown_run_and_taken_name_change_nothing(mined, ce, tmp_path):
    before = db_digest(mined)
    with pytest.raises(UnknownModel, match="unknown model .*no-such-model.*not a registered name"):
        mined.denoise(run="par", model=str(tmp_path / "no-such-model"), threshold=0.5)
    with pytest.raises(NotFound, match="unknown mining run 'nope'; known runs: par"):
        mined.denoise(run="nope", model=ce, threshold=0.5)
    assert db_digest(mined) == before
    mined.denoise(run="par", model=ce, threshold=0.5, max_length=MAX_LEN, name="taken")
    before = db_digest(mined)
    with pytest.raises(AlreadyExists, match="'taken' already exists"):
        mined.denoise(run="par", model=ce, threshold=0.5, max_length=MAX_LEN, name="taken")
    assert db_digest(mined) == before


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(), "give exactly one"),
        (dict(threshold=0.5, relative=1.0), "give exactly one"),
        (dict(threshold=1.5), "threshold: a probability"),
        (dict(threshold=0.0), "threshold: a probability"),
        (dict(relative=0.0), "relative: must be > 0"),
        (dict(relative=1.0, name="par"), "name: the denoised run needs a name other"),
    ],
)
def test_bad_rules_are_refused(kw, match):
    with pytest.raises(InvalidParams, match=match):
        DenoiseParams(run="par", model="m", **kw)


# -- the command ------------------------------------------------------------------------------------
@pytest.fixture
def path(db_path):
    with hnm_db.open(db_path) as db:
        populate_mining_db(db)
        db.mine(
            method="ensemble", ensemble=ENSEMBLE, num_negatives=3, range_max=4, fallback_depth=30, name="par"
        )
    return db_path


def test_cli_denoise_writes_a_run_and_reports_the_cache(path, ce):
    args = ["denoise", "--run", "par", "--model", ce, "--threshold", "0.5", "--max-length", "48"]
    res = invoke(path, *args, "--format", "json", quiet=True)
    assert res.exit_code == 0, res.output
    (out,) = json.loads(res.output)
    assert out["run"] == "par-denoised" and out["triplets"] + out["dropped"] == out["parent_triplets"]
    again = invoke(path, *args, "--replace", "--format", "json", quiet=True)
    assert json.loads(again.output)[0]["scored_pairs"] == 0


@pytest.mark.parametrize(
    "extra,code,message",
    [
        ([], 1, "threshold, relative: give exactly one of them"),
        (["--threshold", "0.5", "--relative", "1"], 1, "threshold, relative: give exactly one of them"),
        (
            ["--threshold", "0.5", "--model", "/no/such/folder"],
            1,
            "unknown model '/no/such/folder'",
        ),
        (["--threshold", "0.5", "--run", "nope"], 1, "unknown mining run 'nope'"),
    ],
)
def test_cli_denoise_bad_input_is_one_line_and_changes_nothing(path, ce, extra, code, message):
    before = path_digest(path)
    args = ["denoise", "--run", "par", "--model", ce, *extra]  # a later --run / --model wins
    res = invoke(path, *args, quiet=True)
    assert res.exit_code == code and message in res.stderr
    if code == 1:
        assert res.stderr.strip().count("\n") == 0
    assert path_digest(path) == before


def test_cli_cluster_unknown_algorithm_and_agglomerative_limit(path):
    before = path_digest(path)
    res = invoke(path, "cluster", "--ensemble", ENSEMBLE, "--algorithm", "dbscan", quiet=True)
    assert res.exit_code == 2 and "'dbscan' is not one of" in res.stderr
    res = invoke(
        path, "cluster", "--ensemble", ENSEMBLE, "--algorithm", "agglomerative", "--k", "20000", quiet=True
    )
    assert res.exit_code == 1 and "agglomerative clustering is fitted on at most 10,000" in res.stderr
    assert res.stderr.strip().count("\n") == 0
    assert path_digest(path) == before
    res = invoke(path, "cluster", "--ensemble", ENSEMBLE, "--algorithm", "gmm", "--k", "4", quiet=True)
    assert res.exit_code == 0, res.output
