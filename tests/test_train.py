"""Cross-encoder training on a mining run: groups, losses, dev split, warm starts, the run record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.databases import db_digest

from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams, ModelLoadError, NotFound
from hnm_db.reranker import train as T
from hnm_db.reranker.crossencoder import load_cross_encoder, model_fingerprint, score_pairs
from hnm_db.seeding import TRAIN_DEV_STREAM, held_out

FAST = {"batch_size": 4, "max_length": 48, "max_steps": 3, "head_lr": 1e-2, "lr": 1e-3, "dev_ratio": 0.0}


def _params(tmp_path: Path, base: Path, out: str = "ce", **kw) -> T.TrainParams:
    return T.TrainParams(**{"run": "mined", "base": str(base), "out": str(tmp_path / out), **FAST, **kw})


class _FixedScores:
    """Stands in for a model: ``call_model_with_columns`` returns preset logits column by column."""

    def __init__(self, columns: list[list[float]]) -> None:
        self.columns = iter(torch.tensor(c) for c in columns)

    def __call__(self, anchors, candidates, prompt=None, task=None):
        return next(self.columns)


def _group_loss(kind: str, columns: list[list[float]], margin: float = 1.0) -> float:
    loss = object.__new__(T._group_loss_class())
    torch.nn.Module.__init__(loss)
    loss.kind, loss.margin = kind, margin
    loss.call_model_with_columns = _FixedScores(columns)
    return loss.forward([["q1", "q2"]] + [["p", "p"]] * len(columns), None).item()


# -- pure parts ----------------------------------------------------------------------------------------
def test_lce_is_softmax_cross_entropy_over_the_group():
    # two groups, scores [positive, negative, negative]
    got = _group_loss("lce", [[2.0, 0.0], [0.0, 0.0], [1.0, 3.0]])
    first = -np.log(np.exp(2) / (np.exp(2) + np.exp(0) + np.exp(1)))
    second = -np.log(np.exp(0) / (np.exp(0) + np.exp(0) + np.exp(3)))
    assert got == pytest.approx((first + second) / 2, rel=1e-6)


def test_triplet_loss_is_the_hinge_on_raw_scores_averaged_over_negatives():
    # max(0, 1 - 2 + 0.5) = 0 and max(0, 1 - 2 + 1.5) = 0.5 ; max(0, 1 - 0 + 0.5) = 1.5 and 1 - 0 - 1 = 0
    got = _group_loss("triplet", [[2.0, 0.0], [0.5, 0.5], [1.5, -1.0]])
    assert got == pytest.approx((0 + 0.5 + 1.5 + 0) / 4)


def _pools(n: int = 6, negatives: int = 5) -> list[T.Pool]:
    return [
        T.Pool(
            f"q{i}",
            f"query {i}",
            f"positive {i}",
            tuple(f"neg {i}.{j}" for j in range(negatives)),
            f"qh{i}",
            f"ph{i}",
            tuple(f"nh{i}.{j}" for j in range(negatives)),
        )
        for i in range(n)
    ]


class _NoEasy:
    """EasyNegatives stand-in that hands out numbered texts."""

    chunks: list = []

    def draw(self, query_id, n, rng, avoid=()):
        return [(f"easy {query_id}.{i}", f"eh{i}") for i in range(n)]


def test_groups_redraw_negatives_each_epoch_from_the_pool_and_are_seeded():
    pools = _pools(n=6, negatives=5)
    groups, filled = T.draw_groups(pools, 4, 12, seed=0, stream=T._MAIN, easy=_NoEasy())
    assert len(groups) == 12 and filled == 0
    assert all(len(g.negatives) == 3 and len(set(g.negatives)) == 3 for g in groups)
    first, second = groups[:6], groups[6:]  # two epochs over the six pools
    assert [g.query for g in first] == [g.query for g in second]
    assert any(a.negatives != b.negatives for a, b in zip(first, second, strict=True))
    for g in groups:  # negatives stay in rank order and come from the query's own pool
        ranks = [int(n.split(".")[1]) for n in g.negatives]
        assert ranks == sorted(ranks) and all(n.startswith(f"neg {g.query.split()[1]}.") for n in g.negatives)
        assert g.passage_hashes[0] == f"ph{g.query.split()[1]}"
    again, _ = T.draw_groups(pools, 4, 12, seed=0, stream=T._MAIN, easy=_NoEasy())
    other, _ = T.draw_groups(pools, 4, 12, seed=1, stream=T._MAIN, easy=_NoEasy())
    assert again == groups and other != groups


def test_a_short_pool_is_filled_with_counted_random_negatives():
    groups, filled = T.draw_groups(_pools(n=2, negatives=1), 4, 2, seed=0, stream=T._MAIN, easy=_NoEasy())
    assert filled == 4
    assert groups[0].negatives == ("neg 0.0", "easy q0.0", "easy q0.1")


def test_easy_negatives_are_never_judged_for_the_query(train_db):
    easy = T.EasyNegatives(train_db.store)
    judged = {(q, d) for q, d in train_db.store.execute("SELECT query_id, doc_id FROM qrels").fetchall()}
    text_doc = dict(train_db.store.execute("SELECT text, doc_id FROM chunks").fetchall())
    rng = np.random.default_rng(0)
    for qid in [q for q, _ in judged]:
        drawn = easy.draw(qid, 3, rng)
        assert len({t for t, _ in drawn}) == 3
        assert not any((qid, text_doc[t]) in judged for t, _ in drawn)


def test_every_loss_reads_its_column_layout():
    groups = [T.Group("q", "p", ("n1", "n2")), T.Group("r", "s", ("m1", "m2"))]
    bce = T.group_dataset(groups, "bce")
    assert bce.column_names == ["query", "passage", "label"] and bce["label"] == [1.0, 0.0, 0.0] * 2
    listwise = T.group_dataset(groups, "lambda")
    assert listwise[0] == {"query": "q", "docs": ["p", "n1", "n2"], "label": [1.0, 0.0, 0.0]}
    ntuple = T.group_dataset(groups, "lce")
    assert ntuple.column_names == ["query", "positive", "negative_1", "negative_2"]
    distill = T.group_dataset(groups, "distill", np.array([[3.0, 1.0, 0.0], [2.0, 2.0, 1.0]]))
    assert distill[1]["label"] == [2.0, 2.0, 1.0]


def test_params_name_the_bad_field():
    for kw, field in [
        ({"batch_size": 0}, "batch_size"),
        ({"loss": "hinge"}, "loss"),
        ({"group_size": 1}, "group_size"),
        ({"dev_ratio": 1.0}, "dev_ratio"),
        ({"dev_k": 5}, "dev_k"),
        ({"distill_steps": -1}, "distill_steps"),
        ({"max_steps": 0}, "max_steps"),
    ]:
        with pytest.raises(InvalidParams, match=field):
            T.TrainParams(run="r", base="b", out="o", **kw)


# -- the stage on the fixture database ------------------------------------------------------------------
def test_training_records_the_run_and_saves_the_model(train_db, tiny_model_dir, tmp_path):
    summary = T.train(
        train_db.store, _params(tmp_path, tiny_model_dir, out="models/deeper/ce"), progress=False
    )
    row = train_db.sql("SELECT * FROM training_runs").to_dicts()
    assert len(row) == 1 and row[0]["status"] == "finished" and row[0]["name"] == "ce"
    assert row[0]["mining_run_id"] == "run-mined" and row[0]["seed"] == 0 and row[0]["loss"] == "lce"
    assert len(json.loads(row[0]["loss_curve"])) == 3 == summary.steps
    assert json.loads(row[0]["params"])["max_steps"] == 3
    stats = json.loads(row[0]["stats"])
    assert stats["groups"] == 3 * 4 and stats["pairs"] == 3 * 4 * 4 and stats["filled_random"] > 0
    out = Path(row[0]["output_path"])
    assert out == (tmp_path / "models/deeper/ce").resolve()  # parent folders were created
    assert (out / "model.safetensors").exists() and row[0]["fingerprint"] == model_fingerprint(out)
    assert not list(out.parent.glob(".ce.partial-*"))
    ce = load_cross_encoder(out, max_length=48, device="cpu")
    assert score_pairs(ce, ["a star"], ["the galaxy"]).shape == (1,)


def test_the_fresh_head_gets_its_own_learning_rate(tiny_model_dir):
    ce = load_cross_encoder(tiny_model_dir, max_length=48, device="cpu", seed=0)
    assert sorted(T.head_parameters(ce)) == ["0.model.classifier.bias", "0.model.classifier.weight"]


def test_same_seed_gives_identical_loss_curve_and_weights(train_db, tiny_model_dir, tmp_path):
    a = T.train(train_db.store, _params(tmp_path, tiny_model_dir, out="a", max_steps=4), progress=False)
    b = T.train(train_db.store, _params(tmp_path, tiny_model_dir, out="b", max_steps=4), progress=False)
    c = T.train(
        train_db.store, _params(tmp_path, tiny_model_dir, out="c", max_steps=4, seed=1), progress=False
    )
    assert a.loss_curve == b.loss_curve and a.fingerprint == b.fingerprint
    assert a.loss_curve != c.loss_curve and a.fingerprint != c.fingerprint


@pytest.mark.parametrize("loss", ["bce", "lambda", "listnet", "mnrl", "triplet"])
def test_every_loss_trains_on_the_same_budget(train_db, tiny_model_dir, tmp_path, loss):
    summary = T.train(
        train_db.store, _params(tmp_path, tiny_model_dir, loss=loss, max_steps=2), progress=False
    )
    assert summary.steps == 2 and all(np.isfinite(summary.loss_curve))
    assert summary.stats["pairs"] == 2 * 4 * 4  # every loss sees batch_size groups of group_size passages


def test_the_loss_falls_on_the_fixture(train_db, tiny_model_dir_nodrop, tmp_path):
    # two queries' groups (3 pairs): the loss of softmax over 1 + 2 starts at ln 3 and must fall
    train_db.store.execute(
        "INSERT INTO mining_runs (run_id, name, method, split, params, seed, code_version) "
        "SELECT 'run-two', 'two', method, split, params, seed, code_version FROM mining_runs WHERE name = 'mined'"
    )
    train_db.store.execute(
        "INSERT INTO triplets SELECT * REPLACE ('run-two' AS run_id) FROM triplets "
        "WHERE run_id = 'run-mined' AND query_id IN ('q-astro-0', 'q-bio-1')"
    )
    params = _params(
        tmp_path, tiny_model_dir_nodrop, run="two", max_steps=30, group_size=3, lr=3e-3, head_lr=3e-2
    )
    curve = T.train(train_db.store, params, progress=False).loss_curve
    assert np.mean(curve[:3]) == pytest.approx(np.log(3), abs=0.01)
    assert np.mean(curve[-5:]) < 0.2


def test_dev_queries_never_train_and_the_best_dev_checkpoint_is_kept(train_db, tiny_model_dir, tmp_path):
    params = _params(tmp_path, tiny_model_dir, dev_ratio=0.3, max_steps=6, eval_steps=2, group_size=3)
    pools = T.load_pools(train_db.store, "run-mined", "train")
    dev = held_out(T.judged_queries(train_db.store, "train"), 0.3, 0, TRAIN_DEV_STREAM, at_least=1)
    assert dev and dev < {p.query_id for p in pools}
    summary = T.train(train_db.store, params, progress=False)
    stats = summary.stats
    assert stats["dev_queries"] == len(dev) and stats["train_queries"] == len(
        {p.query_id for p in pools} - dev
    )
    assert [s for s, _ in stats["dev_curve"]] == [0, 2, 4, 6]
    best_step, best = max(stats["dev_curve"][1:], key=lambda x: (x[1], -x[0]))
    assert stats["best_step"] == best_step and stats["best_dev_ndcg@10"] == pytest.approx(best)
    # the saved model is the kept checkpoint: re-scoring the dev queries gives its dev nDCG@10
    evaluator = T._dev_evaluator(train_db.store, params, dev)
    ce = load_cross_encoder(Path(summary.output_path), max_length=48, device="cpu")
    assert evaluator(ce)["ndcg@10"] == pytest.approx(best)


def test_dev_qrels_come_from_the_training_split_only(train_db, tiny_model_dir, tmp_path, monkeypatch):
    seen = []
    real = T.evaluate.load_qrels

    def spy(db, split):
        seen.append(split)
        return real(db, split)

    monkeypatch.setattr(T.evaluate, "load_qrels", spy)
    T.train(train_db.store, _params(tmp_path, tiny_model_dir, dev_ratio=0.3, max_steps=2), progress=False)
    assert seen and set(seen) == {"train"}


def test_warm_starts_come_first_and_are_recorded(train_db, tiny_model_dir, tmp_path):
    summary = T.train(
        train_db.store,
        _params(tmp_path, tiny_model_dir, warmup_easy_steps=2, distill_steps=2, distill_ensemble="onehot"),
        progress=False,
    )
    assert summary.stats["warm_steps"] == 4 and summary.steps == 3 and len(summary.loss_curve) == 7
    # the distil phase's MarginMSE on onehot similarities x 20: margins of 20 -> a loss near 400 at first
    assert summary.loss_curve[0] > 50 > summary.loss_curve[-1]


def test_runs_sharing_a_distil_run_share_the_warm_start(train_db, tiny_model_dir, tmp_path):
    train_db.store.execute(
        "INSERT INTO mining_runs (run_id, name, method, split, params, seed, code_version) "
        "SELECT 'run-other', 'other', method, split, params, seed, code_version FROM mining_runs WHERE name = 'mined'"
    )
    train_db.store.execute(
        "INSERT INTO triplets SELECT * REPLACE ('run-other' AS run_id) FROM triplets "
        "WHERE run_id = 'run-mined' AND query_id NOT LIKE 'q-astro%'"
    )
    warm = {"distill_steps": 2, "distill_ensemble": "onehot", "distill_run": "mined", "max_steps": 2}
    a = T.train(train_db.store, _params(tmp_path, tiny_model_dir, out="a", **warm), progress=False)
    b = T.train(
        train_db.store, _params(tmp_path, tiny_model_dir, out="b", run="other", **warm), progress=False
    )
    assert a.loss_curve[:2] == b.loss_curve[:2]  # the same distil phase
    assert a.loss_curve[2:] != b.loss_curve[2:]  # then each run's own groups
    own = T.train(
        train_db.store,
        _params(tmp_path, tiny_model_dir, out="c", run="other", **(warm | {"distill_run": None})),
        progress=False,
    )
    assert own.loss_curve[:2] != a.loss_curve[:2]
    # b reused a's warm start from disk (not trained again) and ends where a fresh one would
    assert b.stats.get("warm_start_reused") and not a.stats.get("warm_start_reused")
    again = T.train(train_db.store, _params(tmp_path, tiny_model_dir, out="d", **warm), progress=False)
    assert again.stats["warm_start_reused"] and again.fingerprint == a.fingerprint
    assert len(list(tmp_path.glob(".hnm-warm-*"))) == 2  # mined's and other's own


def test_teacher_scores_are_scaled_ensemble_similarities(train_db):
    pools = T.load_pools(train_db.store, "run-mined", "train")
    groups, _ = T.draw_groups(pools[:2], 3, 2, 0, T._MAIN, T.EasyNegatives(train_db.store))
    teacher = T.teacher_scores(train_db.store, groups, "onehot", 20.0)
    assert teacher.shape == (2, 3) and (teacher[:, 0] == 20.0).all() and (teacher[:, 1:] == 0.0).all()


def test_bad_runs_and_folders_are_refused_before_anything_is_written(train_db, tiny_model_dir, tmp_path):
    before = db_digest(train_db)
    not_model = tmp_path / "notes"
    not_model.mkdir()
    (not_model / "readme.txt").write_text("hello")
    (tmp_path / "exists").mkdir()
    cases = [
        (EmptySelection, "no triplets for split 'train'", {"run": "empty"}),
        (EmptySelection, "split 'test'", {"split": "test"}),
        (NotFound, "unknown mining run 'nope'", {"run": "nope"}),
        (ModelLoadError, "not a transformer model folder", {"base_dir": not_model}),
        (AlreadyExists, "output folder exists", {"out": str(tmp_path / "exists")}),
        (InvalidParams, "distill_steps: mining run 'mined' has no ensemble", {"distill_steps": 2}),
        (NotFound, "no ensemble named 'nope'", {"dev_ratio": 0.3, "dev_first_stage": "ensemble:nope"}),
    ]
    for error, message, kw in cases:
        base = kw.pop("base_dir", tiny_model_dir)
        with pytest.raises(error, match=message):
            T.train(train_db.store, _params(tmp_path, base, **kw), progress=False)
    assert db_digest(train_db) == before and not (tmp_path / "ce").exists()


def _interrupt_at(monkeypatch, step: int) -> None:
    """Every Trainer made from now on raises KeyboardInterrupt (as Ctrl-C would) at the end of ``step``."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainer
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise KeyboardInterrupt

    init = CrossEncoderTrainer.__init__

    def with_stop(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(Stop())

    monkeypatch.setattr(CrossEncoderTrainer, "__init__", with_stop)


def test_an_interrupted_training_is_marked_failed_and_resumes(
    train_db, tiny_model_dir, tmp_path, monkeypatch
):
    params = _params(tmp_path, tiny_model_dir, max_steps=6, eval_steps=2, dev_ratio=0.3)
    _interrupt_at(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        T.train(train_db.store, params, progress=False)
    row = train_db.sql("SELECT status, stats FROM training_runs").to_dicts()
    assert [r["status"] for r in row] == ["failed"]
    partial = Path(json.loads(row[0]["stats"])["resume_from"])
    assert (partial / "main" / "checkpoint-2").exists() and not (tmp_path / "ce").exists()
    monkeypatch.undo()
    resumed = T.train(train_db.store, params, progress=False)  # the same command resumes and replaces the row
    assert train_db.sql("SELECT status FROM training_runs")["status"].to_list() == ["finished"]
    assert not partial.exists()
    whole = T.train(
        train_db.store,
        _params(tmp_path, tiny_model_dir, out="whole", max_steps=6, eval_steps=2, dev_ratio=0.3),
        progress=False,
    )
    assert resumed.loss_curve == whole.loss_curve and resumed.fingerprint == whole.fingerprint
    # the dev curve too: the resumed run does not evaluate its restart point a second time
    assert (
        [s for s, _ in resumed.stats["dev_curve"]] == [s for s, _ in whole.stats["dev_curve"]] == [0, 2, 4, 6]
    )


def test_a_checkpoint_left_half_written_is_discarded_and_the_one_before_resumes(
    train_db, tiny_model_dir, tmp_path, monkeypatch
):
    """A kill while the Trainer writes checkpoint-4 leaves it without trainer_state.json (written last):
    the re-run must resume from checkpoint-2, not fail on the newest folder."""
    params = _params(tmp_path, tiny_model_dir, max_steps=6, eval_steps=2, dev_ratio=0.3)
    _interrupt_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        T.train(train_db.store, params, progress=False)
    monkeypatch.undo()
    partial = Path(json.loads(train_db.scalar("SELECT stats FROM training_runs"))["resume_from"])
    assert {p.name for p in (partial / "main").glob("checkpoint-*")} == {"checkpoint-2", "checkpoint-4"}
    (partial / "main" / "checkpoint-4" / T.TRAINER_STATE).unlink()
    notes: list[str] = []  # a re-run that fails again still tells its caller what it discarded
    _interrupt_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        T.train(train_db.store, params, progress=False, notes=notes)
    monkeypatch.undo()
    assert len(notes) == 1 and notes[0].startswith("discarded 1 incomplete checkpoint(s)"), notes
    (partial / "main" / "checkpoint-4" / T.TRAINER_STATE).unlink()  # the second kill, at the same place
    other = tmp_path / ".ce-old.partial-0123"  # an unfinished training of other settings
    other.mkdir()
    resumed = T.train(train_db.store, params, progress=False)
    assert train_db.sql("SELECT status FROM training_runs")["status"].to_list() == ["finished"]
    assert resumed.notes[0].startswith("1 unfinished training(s) of other settings or outputs")
    assert ".ce-old.partial-0123" in resumed.notes[0] and other.exists()  # listed, never deleted
    assert (
        resumed.notes[1].startswith("discarded 1 incomplete checkpoint(s)")
        and "checkpoint-4" in resumed.notes[1]
    )
    whole = T.train(
        train_db.store,
        _params(tmp_path, tiny_model_dir, out="whole", max_steps=6, eval_steps=2, dev_ratio=0.3),
        progress=False,
    )
    assert resumed.loss_curve == whole.loss_curve and resumed.fingerprint == whole.fingerprint


def test_discard_incomplete_checkpoints_keeps_those_with_a_readable_state(tmp_path):
    for name, state in (("checkpoint-2", "{}"), ("checkpoint-4", '{"global_st'), ("checkpoint-6", None)):
        (tmp_path / name).mkdir()
        if state is not None:
            (tmp_path / name / T.TRAINER_STATE).write_text(state, encoding="utf-8")
    (tmp_path / "checkpoint-8").write_text("a file, not a checkpoint", encoding="utf-8")
    gone = T.discard_incomplete_checkpoints(tmp_path)
    assert [p.name for p in gone] == ["checkpoint-4", "checkpoint-6"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-8"]
    assert T.checkpoints(tmp_path) == [tmp_path / "checkpoint-2"]


def _copy_run(db, name: str, where: str) -> None:
    """A second mining run: run 'mined' restricted to the triplets matching ``where``."""
    db.store.execute(
        "INSERT INTO mining_runs (run_id, name, method, split, params, seed, code_version) "
        f"SELECT 'run-{name}', '{name}', method, split, params, seed, code_version FROM mining_runs WHERE name = 'mined'"
    )
    db.store.execute(
        f"INSERT INTO triplets SELECT * REPLACE ('run-{name}' AS run_id) FROM triplets "
        f"WHERE run_id = 'run-mined' AND {where}"
    )


def test_runs_of_different_coverage_share_dev_queries_and_common_pairs(train_db, tiny_model_dir, tmp_path):
    _copy_run(train_db, "partial", "query_id NOT LIKE 'q-astro%'")
    judged = T.judged_queries(train_db.store, "train")
    dev = held_out(judged, 0.5, 0, TRAIN_DEV_STREAM, at_least=1)
    covered = {
        q
        for (q,) in train_db.store.execute(
            "SELECT DISTINCT query_id FROM triplets WHERE run_id = 'run-mined'"
        ).fetchall()
    }
    partial = {q for q in covered if not q.startswith("q-astro")}
    assert dev & (covered - partial), "the fixture needs a dev query only the full run covers"
    opts = {"dev_ratio": 0.5, "max_steps": 1, "eval_steps": 1}
    full = T.train(
        train_db.store, _params(tmp_path, tiny_model_dir, out="full", **opts), progress=False
    ).stats
    part = T.train(
        train_db.store, _params(tmp_path, tiny_model_dir, out="part", run="partial", **opts), progress=False
    ).stats
    # the same dev set whatever the run covers, and the dev nDCG@10 at step 0 (the same base) agrees
    assert full["dev_queries"] == part["dev_queries"] == len(dev)
    assert full["dev_curve"][0] == part["dev_curve"][0]
    assert full["train_queries"] == len(covered - dev) and part["train_queries"] == len(partial - dev)
    # common_pairs trains the full run on the pairs the partial run covers, and says how many it left out
    pairs = train_db.store.execute(
        "SELECT count(DISTINCT (query_id, positive_chunk_id)) FILTER (WHERE query_id LIKE 'q-astro%'), "
        "count(DISTINCT (query_id, positive_chunk_id)) FILTER (WHERE query_id NOT IN (SELECT unnest(?))) "
        "FROM triplets WHERE run_id = 'run-mined'",
        [sorted(dev)],
    ).fetchone()
    common = T.train(
        train_db.store,
        _params(tmp_path, tiny_model_dir, out="common", common_pairs=("partial",), **opts),
        progress=False,
    ).stats
    assert common["train_queries"] == part["train_queries"] and common["pairs_not_common"] == pairs[0] > 0
    assert common["train_pairs_of_run"] == part["train_pairs_of_run"] < pairs[1]


@pytest.mark.parametrize(
    ("common", "error", "message"),
    [(("nope",), NotFound, "unknown mining run 'nope'"), (("astro",), EmptySelection, "shares no")],
)
def test_common_pairs_errors_name_the_run(train_db, tiny_model_dir, tmp_path, common, error, message):
    _copy_run(train_db, "astro", "query_id LIKE 'q-astro%'")
    _copy_run(train_db, "bio", "query_id NOT LIKE 'q-astro%'")
    before = train_db.scalar("SELECT count(*) FROM training_runs")
    with pytest.raises(error, match=message):
        T.train(
            train_db.store, _params(tmp_path, tiny_model_dir, run="bio", common_pairs=common), progress=False
        )
    assert train_db.scalar("SELECT count(*) FROM training_runs") == before
