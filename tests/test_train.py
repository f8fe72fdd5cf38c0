"""Cross-encoder training on a mining run's triplets: losses, batching, reproducibility, the run record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hnm_db import train as T
from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams, ModelLoadError, NotFound

FAST = {"batch_size": 4, "max_length": 48, "max_steps": 3, "head_lr": 1e-2, "lr": 1e-3}


def _params(tmp_path: Path, base: Path, out: str = "ce", **kw) -> T.TrainParams:
    return T.TrainParams(**{"run": "mined", "base": str(base), "out": str(tmp_path / out), **FAST, **kw})


def _snapshot(db) -> dict:
    return {
        t: db.scalar(f"SELECT count(*) FROM {t}") for t in ("training_runs", "eval_scores", "eval_results")
    }


def test_triplet_loss_is_the_hinge_on_raw_scores():
    scores = torch.tensor([[2.0, 0.5], [0.0, 0.5]])
    mask = torch.ones_like(scores)
    # max(0, 1 - 2 + 0.5) = 0 ; max(0, 1 - 0 + 0.5) = 1.5 -> mean 0.75
    assert T.batch_loss(scores, mask, "triplet", 1.0).item() == pytest.approx(0.75)


def test_bce_counts_every_labelled_pair_once():
    scores = torch.tensor([[0.0, 0.0]])
    assert T.batch_loss(scores, torch.ones_like(scores), "bce", 1.0).item() == pytest.approx(np.log(2))


def test_mnrl_ignores_padded_negatives():
    scores = torch.tensor([[1.0, 0.0, 99.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    expected = -np.log(np.exp(1) / (np.exp(1) + 1))
    assert T.batch_loss(scores, mask, "mnrl", 1.0).item() == pytest.approx(expected, rel=1e-5)


def test_length_batches_cover_every_example_once_with_similar_lengths():
    lengths = np.array([5, 100, 7, 98, 6, 99, 8, 97])
    batches = T.length_batches(lengths, 2, np.random.default_rng(0))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(8))
    assert all(np.ptp(lengths[b]) <= 3 for b in batches)  # short with short, long with long
    again = T.length_batches(lengths, 2, np.random.default_rng(0))
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))


def test_params_name_the_bad_field():
    with pytest.raises(InvalidParams, match="batch_size"):
        T.TrainParams(run="r", base="b", out="o", batch_size=0)
    with pytest.raises(InvalidParams, match="loss"):
        T.TrainParams(run="r", base="b", out="o", loss="hinge")


def test_training_records_the_run_and_saves_the_model(train_db, tiny_model_dir, tmp_path):
    summary = T.train(train_db, _params(tmp_path, tiny_model_dir), progress=False)
    row = train_db.sql("SELECT * FROM training_runs").to_dicts()
    assert len(row) == 1 and row[0]["status"] == "finished" and row[0]["name"] == "ce"
    assert row[0]["mining_run_id"] == "run-mined" and row[0]["seed"] == 0 and row[0]["loss"] == "triplet"
    assert len(json.loads(row[0]["loss_curve"])) == 3 == summary.steps
    assert json.loads(row[0]["params"])["max_steps"] == 3
    out = Path(row[0]["output_path"])
    assert (out / "model.safetensors").exists() and row[0]["fingerprint"] == T.model_fingerprint(out)
    assert not list(tmp_path.glob(".ce.partial-*"))
    ce = T.load_cross_encoder(out, max_length=48, device="cpu")
    assert T.score_pairs(ce, ["a star"], ["the galaxy"], max_length=48).shape == (1,)


def test_same_seed_gives_identical_loss_curve_and_weights(train_db, tiny_model_dir, tmp_path):
    a = T.train(train_db, _params(tmp_path, tiny_model_dir, out="a", max_steps=4), progress=False)
    b = T.train(train_db, _params(tmp_path, tiny_model_dir, out="b", max_steps=4), progress=False)
    c = T.train(train_db, _params(tmp_path, tiny_model_dir, out="c", max_steps=4, seed=1), progress=False)
    assert a.loss_curve == b.loss_curve and a.fingerprint == b.fingerprint
    assert a.loss_curve != c.loss_curve and a.fingerprint != c.fingerprint


@pytest.mark.parametrize("loss", ["bce", "mnrl"])
def test_every_loss_trains_and_lowers_nothing_to_nan(train_db, tiny_model_dir, tmp_path, loss):
    summary = T.train(train_db, _params(tmp_path, tiny_model_dir, loss=loss, max_steps=2), progress=False)
    assert summary.steps == 2 and all(np.isfinite(summary.loss_curve))
    if loss == "mnrl":  # one example per (query, positive) with both of its negatives
        assert summary.examples == train_db.scalar(
            "SELECT count(DISTINCT (query_id, positive_chunk_id)) FROM triplets WHERE run_id = 'run-mined'"
        )


def test_easy_negatives_come_first_and_are_never_judged(train_db, tiny_model_dir, tmp_path):
    easy = T.easy_examples(train_db, "run-mined", "train", 40, np.random.default_rng(0))
    judged = {(q, d) for q, d in train_db.execute("SELECT query_id, doc_id FROM qrels").fetchall()}
    text_doc = dict(train_db.execute("SELECT text, doc_id FROM chunks").fetchall())
    query_id = dict(train_db.execute("SELECT text, query_id FROM queries").fetchall())
    assert len(easy) == 40
    assert not any((query_id[e.query], text_doc[e.negatives[0]]) in judged for e in easy)
    summary = T.train(
        train_db, _params(tmp_path, tiny_model_dir, warmup_easy_steps=2, max_steps=3), progress=False
    )
    stats = json.loads(train_db.scalar("SELECT stats FROM training_runs"))
    assert stats["easy_steps"] == 2 and summary.steps == 3


def test_a_run_with_no_triplets_for_the_split_is_refused(train_db, tiny_model_dir, tmp_path):
    before = _snapshot(train_db)
    with pytest.raises(EmptySelection, match="no triplets for split 'train'"):
        T.train(train_db, _params(tmp_path, tiny_model_dir, run="empty"), progress=False)
    with pytest.raises(EmptySelection, match="split 'test'"):
        T.train(train_db, _params(tmp_path, tiny_model_dir, split="test"), progress=False)
    with pytest.raises(NotFound, match="no mining run named 'nope'"):
        T.train(train_db, _params(tmp_path, tiny_model_dir, run="nope"), progress=False)
    assert _snapshot(train_db) == before and not (tmp_path / "ce").exists()


def test_a_base_that_is_not_a_transformer_folder_is_refused(train_db, tmp_path):
    not_model = tmp_path / "notes"
    not_model.mkdir()
    (not_model / "readme.txt").write_text("hello")
    before = _snapshot(train_db)
    with pytest.raises(ModelLoadError, match="not a transformer model folder"):
        T.train(train_db, _params(tmp_path, not_model), progress=False)
    assert _snapshot(train_db) == before and not (tmp_path / "ce").exists()


def test_an_existing_output_folder_is_refused(train_db, tiny_model_dir, tmp_path):
    (tmp_path / "ce").mkdir()
    before = _snapshot(train_db)
    with pytest.raises(AlreadyExists, match="output folder exists"):
        T.train(train_db, _params(tmp_path, tiny_model_dir), progress=False)
    assert _snapshot(train_db) == before


def test_an_interrupted_training_leaves_a_failed_row_and_no_model(
    train_db, tiny_model_dir, tmp_path, monkeypatch
):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "train_loop", boom)
    with pytest.raises(KeyboardInterrupt):
        T.train(train_db, _params(tmp_path, tiny_model_dir), progress=False)
    assert train_db.sql("SELECT status FROM training_runs")["status"].to_list() == ["failed"]
    assert not (tmp_path / "ce").exists() and not list(tmp_path.glob(".ce.partial-*"))
    monkeypatch.undo()
    T.train(train_db, _params(tmp_path, tiny_model_dir), progress=False)  # the retry replaces the failed row
    assert train_db.sql("SELECT status FROM training_runs")["status"].to_list() == ["finished"]
