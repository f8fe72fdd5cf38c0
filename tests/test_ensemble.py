"""Ensemble vectors: dot product = weighted mean of member cosines; coverage and weight checks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fixtures.corpus import CORPUS, QUERIES

import hnm_db
from hnm_db.errors import AlreadyExists, EmptySelection, InvalidParams, MissingEmbeddings, NotFound
from hnm_db.models import registry as models
from hnm_db.models.embed import EmbedParams, embed
from hnm_db.models.ensemble import EnsembleParams, combine, create_ensemble, parse_member, update_ensemble
from hnm_db.store.vectors import read_vectors

DOCS = [d["text"] for d in CORPUS]
QTEXTS = [q["text"] for q in QUERIES]


@pytest.fixture(scope="module")
def _embedded_template(tmp_path_factory, tiny_model_dir, tiny_model_dir_b):
    """A database file with the fixture corpus embedded by a 32-d and a 48-d model (built once)."""
    from fixtures.databases import insert_texts

    path = tmp_path_factory.mktemp("ens") / "template.duckdb"
    with hnm_db.open(path) as db:
        insert_texts(db, DOCS, QTEXTS)
        models.add_model(db.store, "a", str(tiny_model_dir))
        models.add_model(db.store, "b", str(tiny_model_dir_b), query_prompt="query: ")
        embed(db.store, EmbedParams(("a", "b")), progress=False)
    return path


@pytest.fixture
def two_model_db(_embedded_template, tmp_path):
    """A private copy of the embedded template."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(_embedded_template, path)
    with hnm_db.open(path) as db:
        yield db


def _state(db) -> tuple:
    return (db.scalar("SELECT count(*) FROM ensembles"), db.scalar("SELECT count(*) FROM ensemble_vectors"))


def _vecs(db, table: str, where: str, params: list) -> dict[tuple[str, str], np.ndarray]:
    keys, mat = read_vectors(db.store, f"SELECT role, content_hash, vec FROM {table} WHERE {where}", params)
    return {(r, h): mat[i] for i, (r, h) in enumerate(zip(keys["role"], keys["content_hash"], strict=True))}


def _cos(u: np.ndarray, v: np.ndarray) -> float:
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def test_dot_product_equals_weighted_mean_of_member_cosines(two_model_db):
    db = two_model_db
    summary = create_ensemble(db.store, EnsembleParams("ens", (("a", 1.0), ("b", 3.0))), progress=False)
    assert summary.dim == 80 and [m.weight for m in summary.members] == [0.25, 0.75]
    ens = _vecs(db, "ensemble_vectors", "ensemble_id = ?", [summary.ensemble_id])
    va = _vecs(db, "embeddings", "model_id = ?", [summary.members[0].model_id])
    vb = _vecs(db, "embeddings", "model_id = ?", [summary.members[1].model_id])
    assert set(ens) == set(va) == set(vb)
    rng = np.random.default_rng(0)
    keys = list(ens)
    for _ in range(200):
        x, y = (keys[i] for i in rng.choice(len(keys), 2))
        expected = 0.25 * _cos(va[x], va[y]) + 0.75 * _cos(vb[x], vb[y])
        assert abs(float(ens[x] @ ens[y]) - expected) < 1e-5


def test_sql_macro_gives_the_same_similarity(two_model_db):
    db = two_model_db
    summary = create_ensemble(db.store, EnsembleParams("ens", (("a", None), ("b", None))), progress=False)
    q, d = db.store.execute(
        "SELECT q.content_hash, c.content_hash FROM queries q, chunks c LIMIT 1"
    ).fetchone()
    ens = _vecs(db, "ensemble_vectors", "ensemble_id = ?", [summary.ensemble_id])
    got = db.scalar("SELECT ensemble_sim('ens', ?, ?)", [q, d])
    assert abs(got - float(ens[("query", q)] @ ens[("doc", d)])) < 1e-5
    same = db.scalar("SELECT ensemble_similarity('ens', 'doc', ?, 'doc', ?)", [d, d])
    assert abs(same - 1.0) < 1e-5
    assert db.scalar("SELECT ensemble_sim('nope', ?, ?)", [q, d]) is None


def test_weights_default_equal_and_are_normalised():
    assert EnsembleParams("e", (("a", None), ("b", None))).weights() == [0.5, 0.5]
    assert EnsembleParams("e", (("a", 2.0), ("b", 6.0))).weights() == [0.25, 0.75]
    assert parse_member("a:2.5") == ("a", 2.5) and parse_member("a") == ("a", None)


@pytest.mark.parametrize("weight", [0.0, -1.0, float("nan")])
def test_zero_or_negative_weight_names_the_model_and_changes_nothing(two_model_db, weight):
    with pytest.raises(InvalidParams, match="'b'"):
        create_ensemble(
            two_model_db.store, EnsembleParams("ens", (("a", 1.0), ("b", weight))), progress=False
        )
    assert _state(two_model_db) == (0, 0)


def test_member_lacking_vectors_is_named_with_the_count(two_model_db, add_texts):
    db = two_model_db
    add_texts(db, ["a new chunk about comets", "another about enzymes"], ["new query?"], prefix="n")
    embed(db.store, EmbedParams(("a",)), progress=False)
    with pytest.raises(MissingEmbeddings) as exc:
        create_ensemble(db.store, EnsembleParams("ens", (("a", None), ("b", None))), progress=False)
    msg = str(exc.value)
    assert "model b " in msg and "3 texts" in msg and "hnm-db embed --model b" in msg
    assert _state(db) == (0, 0)


def test_only_texts_chunks_hold_now_must_have_every_members_vector(
    db, add_texts, tiny_model_dir, tiny_model_dir_b
):
    """After a re-chunk, the old chunks' vectors outlive them; a member embedded afterwards lacks those and
    the ensemble is still built, over the current texts (the README's pipeline on a demo database)."""
    add_texts(db, DOCS[:4])
    models.add_model(db.store, "a", str(tiny_model_dir))
    models.add_model(db.store, "b", str(tiny_model_dir_b))
    embed(db.store, EmbedParams(("a", "b")), progress=False)
    stale = db.scalar("SELECT content_hash FROM chunks WHERE chunk_id = 'c0'")
    db.store.execute("DELETE FROM chunks WHERE chunk_id = 'c0'")  # a's and b's vectors outlive the chunk
    db.store.execute("DELETE FROM embeddings WHERE model_id LIKE 'b-%' AND content_hash = ?", [stale])
    summary = create_ensemble(db.store, EnsembleParams("ens", (("a", None), ("b", None))), progress=False)
    assert summary.added["doc"] == 3
    db.store.execute("DELETE FROM embeddings WHERE model_id LIKE 'b-%' AND role = 'doc' AND content_hash = "
               "(SELECT min(content_hash) FROM chunks)")  # fmt: skip
    with pytest.raises(MissingEmbeddings, match="model b .* 1 texts"):  # a text a chunk holds: refused
        create_ensemble(db.store, EnsembleParams("ens2", (("a", None), ("b", None))), progress=False)


def test_rerun_with_same_members_adds_only_new_texts(two_model_db, add_texts):
    db = two_model_db
    params = EnsembleParams("ens", (("a", None), ("b", None)))
    first = create_ensemble(db.store, params, progress=False)
    assert first.added == {"doc": len(DOCS), "query": len(QTEXTS)}
    add_texts(db, ["fresh chunk on orbits"], prefix="n")
    embed(db.store, EmbedParams(("a", "b")), progress=False)
    again = create_ensemble(db.store, params, progress=False)
    assert again.ensemble_id == first.ensemble_id and again.added == {"doc": 1, "query": 0}
    assert update_ensemble(db.store, "ens", progress=False).added == {"doc": 0, "query": 0}
    assert db.scalar("SELECT count(*) FROM ensemble_vectors") == len(DOCS) + 1 + len(QTEXTS)


def test_same_name_with_other_members_needs_replace(two_model_db):
    db = two_model_db
    first = create_ensemble(db.store, EnsembleParams("ens", (("a", None), ("b", None))), progress=False)
    other = EnsembleParams("ens", (("a", 1.0), ("b", 2.0)))
    with pytest.raises(AlreadyExists, match="--replace"):
        create_ensemble(db.store, other, progress=False)
    assert _state(db) == (1, len(DOCS) + len(QTEXTS))
    replaced = create_ensemble(db.store, EnsembleParams("ens", other.members, replace=True), progress=False)
    assert replaced.ensemble_id != first.ensemble_id
    rows = db.sql("SELECT ensemble_id, members FROM ensembles").rows()
    assert rows[0][0] == replaced.ensemble_id and len(rows) == 1
    assert [round(m["weight"], 6) for m in json.loads(rows[0][1])] == [0.333333, 0.666667]
    assert db.scalar("SELECT count(DISTINCT ensemble_id) FROM ensemble_vectors") == 1


def test_unregistered_member_is_not_found(two_model_db):
    with pytest.raises(NotFound, match="zzz"):
        create_ensemble(
            two_model_db.store, EnsembleParams("ens", (("a", None), ("zzz", None))), progress=False
        )
    assert _state(two_model_db) == (0, 0)


def test_nothing_embedded_is_an_empty_selection(db, tiny_model_dir):
    models.add_model(db.store, "a", str(tiny_model_dir))
    with pytest.raises(EmptySelection):
        create_ensemble(db.store, EnsembleParams("ens", (("a", None),)), progress=False)


def test_same_model_twice_is_rejected():
    with pytest.raises(InvalidParams, match="twice"):
        EnsembleParams("e", (("a", 1.0), ("a", 2.0)))


def test_combine_scales_unit_parts_and_keeps_zero_vectors_zero():
    a = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    b = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    out = combine([a, b], [0.36, 0.64])
    np.testing.assert_allclose(out[0], [0.6 * 0.6, 0.6 * 0.8, 0.0, 0.8, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[1], [0.0, 0.0, 0.8, 0.0, 0.0], atol=1e-6)


def test_ensemble_vectors_are_read_in_batches(two_model_db):
    db = two_model_db
    create_ensemble(db.store, EnsembleParams("ens", (("a", None), ("b", None))), progress=False)
    batches = list(db.ensemble_vectors("ens", "doc", batch_rows=16))
    assert sum(len(h) for h, _ in batches) == len(DOCS) and all(m.shape[1] == 80 for _, m in batches)


def test_an_interrupted_create_leaves_no_ensemble_and_a_rerun_resumes(two_model_db, monkeypatch):
    """A kill after some batches: no half-built ensemble for cluster/mine to trip over (they would ask
    for `embed`, which is not needed); running create again adds only what is missing."""
    import hnm_db.models.ensemble as ensemble_mod
    from hnm_db.models.ensemble import get_ensemble

    db = two_model_db
    params = EnsembleParams("ens", (("a", None), ("b", None)), batch_rows=8)
    real_write, calls = ensemble_mod.write_vectors, []

    def write_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what a kill looks like to the database: batches 1-2 committed
        return real_write(*args, **kwargs)

    monkeypatch.setattr(ensemble_mod, "write_vectors", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        create_ensemble(db.store, params, progress=False)
    assert _state(db) == (0, 16)  # two committed batches of 8 doc vectors, no ensemble row
    with pytest.raises(NotFound, match=r"no ensemble named 'ens' \(known: none;"):
        get_ensemble(db.store, "ens")
    monkeypatch.setattr(ensemble_mod, "write_vectors", real_write)
    resumed = create_ensemble(db.store, params, progress=False)
    assert resumed.created and resumed.added == {"doc": len(DOCS) - 16, "query": len(QTEXTS)}
    assert _state(db) == (1, len(DOCS) + len(QTEXTS))


def test_vectors_of_an_abandoned_creation_are_removed_by_the_next_create(two_model_db, monkeypatch):
    import hnm_db.models.ensemble as ensemble_mod

    db = two_model_db
    monkeypatch.setattr(
        ensemble_mod, "write_vectors", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        create_ensemble(
            db.store, EnsembleParams("ens", (("a", 2.0), ("b", 1.0)), batch_rows=8), progress=False
        )
    monkeypatch.undo()
    db.store.execute(
        "INSERT INTO ensemble_vectors SELECT 'gone-1234', role, content_hash, vec FROM embeddings LIMIT 3"
    )
    create_ensemble(db.store, EnsembleParams("ens", (("a", None), ("b", None))), progress=False)
    assert db.scalar("SELECT count(DISTINCT ensemble_id) FROM ensemble_vectors") == 1
