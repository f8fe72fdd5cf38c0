"""`hnm-db train` and `hnm-db eval` through the click layer."""

from __future__ import annotations

import json

import pytest
from fixtures.cli import invoke
from fixtures.databases import path_digest

import hnm_db


@pytest.fixture
def filled(db_path):
    from fixtures.databases import populate_training_db

    with hnm_db.open(db_path) as database:
        populate_training_db(database)
    return db_path


def _run(db_path, *args):
    return invoke(db_path, *args, quiet=True)


def test_train_then_eval_then_compare(filled, tiny_model_dir, tmp_path):
    out = tmp_path / "model"
    res = _run(
        filled,
        "train",
        "--run",
        "mined",
        "--base",
        str(tiny_model_dir),
        "--out",
        str(out),
        "--batch-size",
        "4",
        "--max-length",
        "48",
        "--max-steps",
        "2",
        "--dev-ratio",
        "0.3",
        "--eval-steps",
        "1",
        "--format",
        "json",
    )
    assert res.exit_code == 0, res.output
    trained = json.loads(res.output)[0]
    assert trained["name"] == "model" and trained["steps"] == 2 and trained["best_step"] in (1, 2)
    res = _run(
        filled,
        "eval",
        "--model",
        str(out),
        "--k",
        "10",
        "--max-length",
        "48",
        "--interpolate",
        "0.5",
        "--format",
        "json",
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["model"] for r in rows] == ["first-stage:bm25", "model", "model + bm25 (alpha=0.5)"]
    res = _run(filled, "eval", "--compare")
    assert res.exit_code == 0 and "first-stage:bm25" in res.output and "ndcg@10" in res.output
    assert len(res.output.strip().splitlines()) == 2 + 3
    res = _run(filled, "eval", "--compare", "--mean-over-seeds")
    assert res.exit_code == 0 and "ce[mined, lce]" in res.output
    res = _run(
        filled, "eval", "--paired", "model", "--paired", "first-stage:bm25", "--k", "10", "--format", "json"
    )
    assert res.exit_code == 0, res.output
    test = json.loads(res.output)[0]
    ndcg = {r["model"]: r["ndcg@10"] for r in rows}
    assert test["queries"] == 4 and test["diff"] == pytest.approx(ndcg["model"] - ndcg["first-stage:bm25"])
    assert 0 <= test["p_value"] <= 1 and test["ci_low"] <= test["diff"] <= test["ci_high"]
    res = _run(
        filled,
        "eval",
        "--paired",
        "model",
        "--paired",
        "first-stage:bm25",
        "--k",
        "10",
        "--interpolate",
        "0.5",
    )
    assert res.exit_code == 1 and "no stored result of 'first-stage:bm25'" in res.output
    assert _run(filled, "eval", "--paired", "model").exit_code == 2


def test_eval_of_the_first_stage_alone(filled):
    res = _run(filled, "eval", "--first-stage", "ensemble:onehot", "--k", "10", "--format", "csv")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1].startswith("first-stage:ensemble:onehot,ensemble:onehot,10,")


def test_bad_inputs_exit_1_with_one_line_and_change_nothing(filled, tiny_model_dir, tmp_path):
    before = path_digest(filled)
    (tmp_path / "exists").mkdir()
    train_x = ["train", "--run", "mined", "--base", str(tiny_model_dir), "--out", str(tmp_path / "x")]
    cases = [
        (
            ["train", "--run", "empty", "--base", str(tiny_model_dir), "--out", str(tmp_path / "x")],
            "no triplets",
        ),
        (
            ["train", "--run", "mined", "--base", str(tmp_path), "--out", str(tmp_path / "x")],
            "not a transformer",
        ),
        (
            ["train", "--run", "mined", "--base", str(tiny_model_dir), "--out", str(tmp_path / "exists")],
            "output folder exists",
        ),
        ([*train_x, "--loss", "lce", "--distill-steps", "2"], "has no ensemble to distil"),
        ([*train_x, "--group-size", "1"], "group_size must be >= 2"),
        (["eval", "--split", "dev"], "has no qrels"),
        (["eval", "--k", "5"], "nDCG@10"),
    ]
    for args, message in cases:
        res = _run(filled, *args)
        assert res.exit_code == 1, (args, res.output)
        assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert path_digest(filled) == before


def test_option_conflicts_are_usage_errors(filled):
    """Conflicts among the command's own options are usage errors (exit 2); those EvalParams checks are
    its InvalidParams (exit 1), as in the API."""
    interpolate = _run(filled, "eval", "--interpolate", "0.5")
    assert interpolate.exit_code == 1 and "interpolate needs a model" in interpolate.output
    assert _run(filled, "eval", "--mean-over-seeds").exit_code == 2
