"""The cluster, mine and runs commands through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from fixtures.cli import invoke
from fixtures.databases import path_digest, populate_mining_db

import hnm_db


@pytest.fixture
def path(db_path):
    with hnm_db.open(db_path) as db:
        populate_mining_db(db)
    return db_path


def run(path, *args):
    return invoke(path, *args, quiet=True)


def test_cluster_prints_cluster_sizes(path):
    res = run(path, "cluster", "--ensemble", "ens", "--k", "4", "--seed", "1", "--format", "json")
    assert res.exit_code == 0, res.output
    sizes = json.loads(res.output)
    assert len(sizes) == 4 and sum(r["size"] for r in sizes) == 54 and sum(r["queries"] for r in sizes) == 16


def test_cluster_with_too_many_clusters_fails_cleanly(path):
    before = path_digest(path)
    res = run(path, "cluster", "--ensemble", "ens", "--k", "99")
    assert res.exit_code == 1 and "k: 99 clusters asked for but there are only 54" in res.output
    assert path_digest(path) == before
    assert run(path, "cluster", "--ensemble", "ens", "--k", "lots").exit_code == 2


def test_all_three_methods_write_runs_listed_by_runs(path):
    assert run(path, "cluster", "--ensemble", "ens", "--k", "4").exit_code == 0
    for method, extra in (("ensemble", ["--cluster-filter", "either"]), ("bm25", []), ("random", [])):
        res = run(
            path,
            "mine",
            "--method",
            method,
            "--ensemble",
            "ens",
            "--num-negatives",
            "3",
            "--range-max",
            "12",
            "--name",
            method,
            "--format",
            "json",
            *extra,
        )
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)[0]["triplets"] > 0
    listed = json.loads(run(path, "runs", "--format", "json").output)
    assert [r["method"] for r in listed] == ["ensemble", "bm25", "random"]
    assert all(r["queries"] >= 11 and r["split"] == "train" for r in listed)
    assert "ensemble" in run(path, "runs", "list").output
    with hnm_db.open(path) as db:
        methods = db.store.execute(
            "SELECT method, count(*), count(DISTINCT query_id) FROM triplets "
            "JOIN mining_runs USING (run_id) GROUP BY method ORDER BY method"
        ).fetchall()
    assert [m[0] for m in methods] == ["bm25", "ensemble", "random"]


def test_runs_show_prints_params_stats_and_models(path):
    assert (
        run(
            path, "mine", "--ensemble", "ens", "--num-negatives", "2", "--range-max", "8", "--name", "one"
        ).exit_code
        == 0
    )
    res = run(path, "runs", "show", "one", "--format", "json")
    shown = json.loads(res.output)
    assert shown["params"]["range_max"] == 8 and shown["stats"]["queries"] == 12
    assert [m["name"] for m in shown["models"]] == ["model-a", "model-b"]
    table = run(path, "runs", "show", "one").output
    assert "params.num_negatives" in table and "stats.short_queries" in table
    missing = run(path, "runs", "show", "nope")
    assert missing.exit_code == 1 and "unknown mining run 'nope'" in missing.output


#: A window so narrow that the false-negative guard leaves some queries short.
NARROW = ("mine", "--ensemble", "ens", "--num-negatives", "3", "--range-max", "4", "--max-score-ratio", "0.9")


def test_mine_reports_short_queries_on_stderr(path):
    res = invoke(path, *NARROW)
    assert res.exit_code == 0
    assert "got fewer than 3 negatives (not padded)" in res.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--split", "dev"], "split 'dev' has no qrels"),
        (["--range-min", "5", "--range-max", "5"], "range_min: must be below range_max"),
        (["--num-negatives", "0"], "num_negatives: must be an integer >= 1"),
        (["--num-negatives", "-2"], "num_negatives: must be an integer >= 1"),
        (["--cluster-filter", "query"], "needs a cluster run of ensemble 'ens'"),
        (
            ["--fallback-depth", "40", "--range-max", "50"],
            "fallback_depth: must be deeper than range_max (50)",
        ),
        (["--mix-random", "-1"], "mix_random: must be an integer >= 0"),
        (["--min-relevance", "0"], "min_relevance: must be an integer >= 1"),
        (
            ["--min-relevance", "2"],
            "split 'train' has no qrels with a judged-relevant, chunked document at relevance >= 2",
        ),
    ],
)
def test_bad_mining_input_exits_1_and_changes_nothing(path, args, message):
    before = path_digest(path)
    res = run(path, "mine", "--ensemble", "ens", *args)
    assert res.exit_code == 1, res.output
    assert message in res.output
    assert path_digest(path) == before


def test_run_name_used_needs_replace(path):
    assert run(path, "mine", "--ensemble", "ens", "--name", "x", "--num-negatives", "2").exit_code == 0
    before = path_digest(path)
    res = run(path, "mine", "--method", "random", "--name", "x", "--num-negatives", "2")
    assert res.exit_code == 1 and "'x' already exists" in res.output and "--replace" in res.output
    assert path_digest(path) == before
    assert (
        run(path, "mine", "--method", "random", "--name", "x", "--num-negatives", "2", "--replace").exit_code
        == 0
    )
    listed = json.loads(run(path, "runs", "--format", "json").output)
    assert [(r["name"], r["method"]) for r in listed] == [("x", "random")]


def test_ensemble_method_without_ensemble_is_refused_by_the_params(path):
    """The check lives in MiningParams alone: the CLI reports it as every InvalidParams (exit 1)."""
    res = run(path, "mine", "--method", "ensemble")
    assert res.exit_code == 1 and "--ensemble NAME" in res.stderr


def test_max_score_ratio_none_disables_the_guard(path):
    res = run(
        path,
        "mine",
        "--ensemble",
        "ens",
        "--max-score-ratio",
        "none",
        "--num-negatives",
        "3",
        "--range-max",
        "6",
        "--format",
        "json",
    )
    assert res.exit_code == 0 and json.loads(res.output)[0]["dropped_false_negatives"] == 0


def test_fallback_random_mix_and_guard_options_reach_the_run(path):
    res = run(
        path,
        *NARROW,
        "--guard",
        "query",
        "--fallback-depth",
        "40",
        "--mix-random",
        "1",
        "--name",
        "full",
        "--format",
        "json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)[0]
    assert out["short_queries"] == 0 and out["fallback_negatives"] > 0 and out["mixed_random_negatives"] > 0
    shown = json.loads(run(path, "runs", "show", "full", "--format", "json").output)
    assert shown["params"]["guard"] == "query" and shown["params"]["fallback_depth"] == 40
    assert shown["stats"]["short_pairs"] == 0
    assert shown["stats"]["mixed_random_negatives"] == out["mixed_random_negatives"]
    res = run(
        path,
        "sql",
        "SELECT negative_method, fallback, count(*) AS n FROM negative_provenance GROUP BY ALL ORDER BY ALL",
        "--format",
        "json",
    )
    kinds = {(r["negative_method"], r["fallback"]) for r in json.loads(res.output)}
    assert kinds == {("ensemble", False), ("ensemble", True), ("random", False)}
