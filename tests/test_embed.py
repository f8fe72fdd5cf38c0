"""embed: each distinct text once per model and role, batched, committed, resumable."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from fixtures.corpus import CORPUS, QUERIES

import hnm_db
from hnm_db.errors import InvalidParams, ModelLoadError, UnknownModel
from hnm_db.models import embed as embed_mod
from hnm_db.models import registry as models
from hnm_db.models.embed import EmbedParams, embed
from hnm_db.sources.text import content_hash
from hnm_db.store.vectors import read_vectors

DOCS = [d["text"] for d in CORPUS]
QTEXTS = [q["text"] for q in QUERIES]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HNM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def _template(tmp_path_factory, tiny_model_dir):
    """A database file with the fixture corpus and the tiny model registered, nothing embedded."""
    from fixtures.databases import insert_texts

    path = tmp_path_factory.mktemp("embed") / "template.duckdb"
    with hnm_db.open(path) as db:
        insert_texts(db, DOCS, QTEXTS)
        models.add_model(db.store, "tiny", str(tiny_model_dir))
    return path


@pytest.fixture
def corpus_db(_template, tmp_path):
    path = tmp_path / "copy.duckdb"
    shutil.copy(_template, path)
    with hnm_db.open(path) as db:
        yield db


def _vectors(db, role: str) -> tuple[list[str], np.ndarray]:
    keys, mat = read_vectors(
        db.store, "SELECT content_hash, vec FROM embeddings WHERE role = ? ORDER BY content_hash", [role]
    )
    return list(keys.get("content_hash", [])), mat


def test_every_distinct_text_gets_one_vector_per_role(db, add_texts, tiny_model_dir):
    add_texts(db, DOCS + DOCS[:5], QTEXTS, prefix="")  # 5 chunks repeat a text
    add_texts(db, [], [DOCS[0]], prefix="dup")  # a query identical to a chunk text is its own role
    models.add_model(db.store, "tiny", str(tiny_model_dir))
    summary = embed(db.store, EmbedParams(("tiny",), batch_size=16), progress=False)
    assert summary.models[0].encoded == {"doc": len(DOCS), "query": len(QTEXTS) + 1}
    counts = db.sql(
        "SELECT role, count(*) AS n, count(DISTINCT content_hash) AS d FROM embeddings "
        "GROUP BY role ORDER BY role"
    ).rows()
    assert counts == [("doc", len(DOCS), len(DOCS)), ("query", len(QTEXTS) + 1, len(QTEXTS) + 1)]


def test_vectors_equal_a_direct_encode_of_the_same_texts(corpus_db, tiny_model_dir):
    embed(corpus_db.store, EmbedParams(("tiny",), what="chunks", batch_size=7), progress=False)
    hashes, mat = _vectors(corpus_db, "doc")
    by_hash = {content_hash(t): t for t in DOCS}
    direct = models.load_model(tiny_model_dir).encode([by_hash[h] for h in hashes], normalize_embeddings=True)
    np.testing.assert_allclose(mat, direct, atol=1e-5)
    assert np.allclose(np.linalg.norm(mat, axis=1), 1.0, atol=1e-5)


def test_query_and_doc_prompts_are_applied_to_their_role(db, add_texts, tiny_model_dir):
    add_texts(db, ["the star and the galaxy"], ["the star and the galaxy"])
    models.add_model(db.store, "p", str(tiny_model_dir), query_prompt="query: ", doc_prompt="passage: ")
    embed(db.store, EmbedParams(("p",)), progress=False)
    model = models.load_model(tiny_model_dir)
    for role, prompt in (("query", "query: "), ("doc", "passage: ")):
        _, mat = _vectors(db, role)
        expected = model.encode(["the star and the galaxy"], prompt=prompt, normalize_embeddings=True)
        np.testing.assert_allclose(mat, expected, atol=1e-5)


def test_what_limits_the_roles_embedded(corpus_db):
    embed(corpus_db.store, EmbedParams(("tiny",), what="queries"), progress=False)
    assert corpus_db.sql("SELECT DISTINCT role FROM embeddings").rows() == [("query",)]


def test_batches_are_sorted_by_length_and_bounded(corpus_db, monkeypatch):
    seen: list[list[str]] = []
    real = embed_mod.encode_texts

    def spy(model, texts, **kw):
        seen.append(list(texts))
        return real(model, texts, **kw)

    monkeypatch.setattr(embed_mod, "encode_texts", spy)
    embed(corpus_db.store, EmbedParams(("tiny",), what="chunks", batch_size=8), progress=False)
    lengths = [len(t) for batch in seen for t in batch]
    assert lengths == sorted(lengths)
    assert max(len(b) for b in seen) <= 8 and sum(len(b) for b in seen) == len(DOCS)


def test_second_run_encodes_nothing_and_does_not_load_the_model(corpus_db, monkeypatch):
    embed(corpus_db.store, EmbedParams(("tiny",)), progress=False)

    def boom(*a, **k):
        raise AssertionError("model loaded on a no-op run")

    monkeypatch.setattr(models, "load_model", boom)
    summary = embed(corpus_db.store, EmbedParams(("tiny",)), progress=False)
    assert summary.encoded == 0 and not summary.models[0].loaded
    assert summary.models[0].already == {"doc": len(DOCS), "query": len(QTEXTS)}


def test_new_chunks_alone_are_encoded_on_the_next_run(corpus_db, add_texts):
    embed(corpus_db.store, EmbedParams(("tiny",)), progress=False)
    add_texts(corpus_db, ["a brand new chunk about comets", DOCS[0]], prefix="new")
    summary = embed(corpus_db.store, EmbedParams(("tiny",)), progress=False)
    assert summary.models[0].encoded == {"doc": 1, "query": 0}


def test_interrupted_run_resumes_without_duplicates_or_holes(corpus_db, monkeypatch):
    calls = {"n": 0}
    real = embed_mod.encode_texts

    def crash_on_second_batch(model, texts, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real(model, texts, **kw)

    monkeypatch.setattr(embed_mod, "encode_texts", crash_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        embed(corpus_db.store, EmbedParams(("tiny",), what="chunks", batch_size=10), progress=False)
    assert corpus_db.scalar("SELECT count(*) FROM embeddings") == 10  # the first batch survived

    encoded: list[int] = []
    monkeypatch.setattr(
        embed_mod, "encode_texts", lambda m, t, **kw: encoded.append(len(t)) or real(m, t, **kw)
    )
    summary = embed(corpus_db.store, EmbedParams(("tiny",), what="chunks", batch_size=10), progress=False)
    assert summary.models[0].encoded == {"doc": len(DOCS) - 10} and sum(encoded) == len(DOCS) - 10
    hashes, _ = _vectors(corpus_db, "doc")
    assert sorted(hashes) == sorted({content_hash(t) for t in DOCS})  # no holes, no duplicates


def test_several_models_each_embed_at_their_own_dimension(corpus_db, tiny_model_dir_b):
    models.add_model(corpus_db.store, "tiny-b", str(tiny_model_dir_b))
    embed(corpus_db.store, EmbedParams(("tiny", "tiny-b")), progress=False)
    dims = corpus_db.sql(
        "SELECT m.name, min(len(e.vec)), max(len(e.vec)), count(*) FROM embeddings e "
        "JOIN models m USING (model_id) GROUP BY 1 ORDER BY 1"
    ).rows()
    n = len(DOCS) + len(QTEXTS)
    assert dims == [("tiny", 32, 32, n), ("tiny-b", 48, 48, n)]


def test_a_name_with_several_versions_uses_the_newest_and_says_so(corpus_db, tiny_model_dir):
    newer = models.add_model(corpus_db.store, "tiny", str(tiny_model_dir), query_prompt="q: ").row
    summary = embed(corpus_db.store, EmbedParams(("tiny",), what="queries"), progress=False)
    rep = summary.models[0]
    assert rep.model_id == newer.model_id
    assert any("2 versions" in note and newer.model_id in note for note in rep.notes)


def test_an_edited_model_folder_becomes_a_new_version(db, add_texts, tiny_model_dir, tmp_path):
    import shutil

    folder = shutil.copytree(tiny_model_dir, tmp_path / "editable")
    add_texts(db, DOCS[:3])
    old = models.add_model(db.store, "m", str(folder)).row
    embed(db.store, EmbedParams(("m",)), progress=False)
    with open(folder / "tokenizer_config.json", "a") as f:
        f.write("\n")
    summary = embed(db.store, EmbedParams(("m",)), progress=False)
    rep = summary.models[0]
    assert rep.model_id != old.model_id and rep.encoded["doc"] == 3
    assert any("new version" in n for n in rep.notes)


def test_unknown_model_name_lists_aliases_and_changes_nothing(corpus_db):
    with pytest.raises(UnknownModel, match="minilm-l6"):
        embed(corpus_db.store, EmbedParams(("no-such-model",)), progress=False)
    assert corpus_db.scalar("SELECT count(*) FROM embeddings") == 0
    assert corpus_db.scalar("SELECT count(*) FROM models") == 1


def test_an_unregistered_folder_asks_to_register_it(corpus_db, tiny_model_dir_b):
    with pytest.raises(UnknownModel, match="models add"):
        embed(corpus_db.store, EmbedParams((str(tiny_model_dir_b),)), progress=False)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"models": ()}, "models"),
        ({"models": ("a", "a")}, "models"),
        ({"models": ("a",), "what": "docs"}, "what"),
        ({"models": ("a",), "batch_size": 0}, "batch_size"),
        ({"models": ("a",), "threads": 0}, "threads"),
    ],
)
def test_bad_params_name_the_field(kwargs, field):
    with pytest.raises(InvalidParams, match=field):
        EmbedParams(**kwargs)


@pytest.mark.integration
def test_builtin_alias_is_registered_on_first_use(db, add_texts):
    add_texts(db, DOCS[:4], QTEXTS[:2])
    summary = embed(db.store, EmbedParams(("minilm-l6",)), progress=False)
    rep = summary.models[0]
    assert rep.model_id.startswith("minilm-l6-") and rep.encoded == {"doc": 4, "query": 2}
    assert db.sql("SELECT source, dim, pooling FROM models").rows() == [("minilm-l6", 384, "mean")]
    assert embed(db.store, EmbedParams(("minilm-l6",)), progress=False).encoded == 0


def test_a_registered_folder_that_disappeared_is_a_clear_load_error(db, add_texts, tiny_model_dir, tmp_path):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "gone")
    add_texts(db, DOCS[:2])
    row = models.add_model(db.store, "gone", str(folder)).row
    shutil.rmtree(folder)
    with pytest.raises(ModelLoadError, match=row.model_id):
        embed(db.store, EmbedParams(("gone",)), progress=False)
    assert db.scalar("SELECT count(*) FROM embeddings") == 0


def test_embed_refuses_to_run_inside_an_open_transaction(corpus_db):
    with corpus_db.store.transaction(), pytest.raises(RuntimeError, match="outside"):
        embed(corpus_db.store, EmbedParams(("tiny",)), progress=False)
