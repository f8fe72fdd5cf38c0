"""Chunking: offsets, titles, token limits, sentence packing, incremental and atomic replacement."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from fixtures.corpus import CORPUS
from fixtures.databases import db_digest

from hnm_db.errors import EmptySelection, InvalidParams, UnknownIds
from hnm_db.sources import chunk as chunk_mod
from hnm_db.sources.chunk import ChunkParams, chunk, split_lines, split_paragraphs, split_sentences
from hnm_db.sources.text import content_hash


def long_docs() -> list[tuple[str, str, str]]:
    """(doc_id, title, text): one long document per topic of the fixture corpus, plus a short one."""
    docs = []
    for topic in ("astro", "bio", "cook", "sport"):
        texts = [d["text"] for d in CORPUS if d["_id"].startswith(topic)]
        docs.append((f"long-{topic}", f"{topic.title()} review", " ".join(texts)))
    docs.append(("short", "Short note", "A star."))
    return docs


def insert_docs(db, docs) -> None:
    for doc_id, title, text in docs:
        db.store.execute(
            "INSERT INTO documents (doc_id, title, text, content_hash) VALUES (?, ?, ?, ?)",
            [doc_id, title, text, content_hash(text)],
        )


def chunk_rows(db) -> list[dict]:
    return db.sql(
        "SELECT c.*, d.text AS doc_text, d.title FROM chunks c JOIN documents d USING (doc_id) "
        "ORDER BY c.doc_id, c.ord"
    ).to_dicts()


@pytest.fixture
def docs_db(db):
    insert_docs(db, long_docs())
    return db


@pytest.fixture
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def all_params(model: Path) -> list[ChunkParams]:
    return [
        ChunkParams("whole"),
        ChunkParams("tokens", 24, 6, str(model)),
        ChunkParams("sentences", 160, 1),
        ChunkParams("sentences", 30, 1, str(model)),
    ]


def test_whole_gives_one_chunk_per_document_titled(docs_db):
    summary = chunk(docs_db.store, ChunkParams("whole"))
    rows = chunk_rows(docs_db)
    assert summary.documents == len(rows) == 5 and summary.chunks == 5
    for r in rows:
        assert r["chunk_id"] == f"{r['doc_id']}#0"
        assert r["text"] == r["title"] + "\n" + r["doc_text"]
        assert (r["start_char"], r["end_char"]) == (0, len(r["doc_text"]))


@pytest.mark.parametrize("which", range(4))
def test_offsets_locate_each_slice_and_text_is_what_is_embedded(docs_db, tiny_model_dir, which):
    params = all_params(tiny_model_dir)[which]
    chunk(docs_db.store, params)
    rows = chunk_rows(docs_db)
    for r in rows:
        piece = r["doc_text"][r["start_char"] : r["end_char"]]
        assert piece and piece == piece.strip()
        assert r["text"] == r["title"] + "\n" + piece
        assert r["content_hash"] == content_hash(r["text"])
        assert r["chunk_id"] == f"{r['doc_id']}#{r['ord']}"
        stored = json.loads(r["chunker"])
        assert stored["strategy"] == params.strategy and stored["title"] is True
        assert stored["doc_hash"] == content_hash(r["doc_text"])
    by_doc = {}
    for r in rows:
        by_doc.setdefault(r["doc_id"], []).append(r)
    for doc_rows in by_doc.values():
        assert [r["ord"] for r in doc_rows] == list(range(len(doc_rows)))
        assert doc_rows[0]["start_char"] == 0
        assert doc_rows[-1]["end_char"] == len(doc_rows[0]["doc_text"].rstrip())


@pytest.mark.parametrize("which", range(4))
def test_short_document_is_one_chunk_with_every_strategy(docs_db, tiny_model_dir, which):
    chunk(docs_db.store, all_params(tiny_model_dir)[which])
    assert docs_db.sql("SELECT text FROM chunks WHERE doc_id = 'short'").rows() == [("Short note\nA star.",)]


def test_token_chunks_fit_size_and_model(docs_db, tiny_model_dir, tokenizer):
    chunk(docs_db.store, ChunkParams("tokens", 24, 6, str(tiny_model_dir)))
    rows = chunk_rows(docs_db)
    assert len(rows) > 10
    for r in rows:
        assert len(tokenizer(r["text"], add_special_tokens=False)["input_ids"]) <= 24
        assert len(tokenizer(r["text"])["input_ids"]) <= 64


def test_default_token_size_fills_the_model(docs_db, tiny_model_dir, tokenizer):
    chunk(docs_db.store, ChunkParams("tokens", model=str(tiny_model_dir)))
    rows = chunk_rows(docs_db)
    assert json.loads(rows[0]["chunker"])["size"] == 62  # max_seq_length 64 minus [CLS] and [SEP]
    counts = [len(tokenizer(r["text"])["input_ids"]) for r in rows]
    assert max(counts) <= 64 and max(counts) > 50


def test_token_windows_overlap_by_about_overlap_tokens(docs_db, tiny_model_dir, tokenizer):
    chunk(docs_db.store, ChunkParams("tokens", 24, 6, str(tiny_model_dir), title=False))
    rows = [r for r in chunk_rows(docs_db) if r["doc_id"] == "long-bio"]
    assert len(rows) >= 3
    for a, b in zip(rows, rows[1:], strict=False):
        assert a["start_char"] < b["start_char"] < a["end_char"]
        shared = a["doc_text"][b["start_char"] : a["end_char"]]
        assert 4 <= len(tokenizer(shared, add_special_tokens=False)["input_ids"]) <= 6


def test_no_title_gives_the_bare_slice(docs_db):
    chunk(docs_db.store, ChunkParams("sentences", 160, 0, title=False))
    for r in chunk_rows(docs_db):
        assert r["text"] == r["doc_text"][r["start_char"] : r["end_char"]]
        assert json.loads(r["chunker"])["titled"] is False


def test_title_longer_than_half_the_size_is_left_out(db):
    insert_docs(db, [("d", "A very long title that eats the budget", "One. Two. Three.")])
    chunk(db.store, ChunkParams("sentences", 60, 0))
    assert [r["text"] for r in chunk_rows(db)] == ["One. Two. Three."]


def test_sentences_keep_sentences_whole_and_within_size(docs_db):
    chunk(docs_db.store, ChunkParams("sentences", 160, 0))
    for r in chunk_rows(docs_db):
        spans = split_sentences(r["doc_text"])
        assert r["start_char"] in {s for s, _ in spans}
        assert r["end_char"] in {e for _, e in spans}
        assert len(r["text"]) <= 160


def test_sentence_overlap_carries_the_last_sentence(docs_db):
    chunk(docs_db.store, ChunkParams("sentences", 200, 1, title=False))
    rows = [r for r in chunk_rows(docs_db) if r["doc_id"] == "long-astro"]
    assert len(rows) >= 3
    for a, b in zip(rows, rows[1:], strict=False):
        last = split_sentences(a["text"])[-1]
        assert b["text"].startswith(a["text"][last[0] : last[1]])


def test_long_sentence_is_own_chunk_in_chars_and_token_split_with_model(db, tiny_model_dir, tokenizer):
    long_sentence = "The " + " ".join(["star and the galaxy"] * 20) + "."
    insert_docs(db, [("d", None, f"A star. {long_sentence} A cell.")])
    chunk(db.store, ChunkParams("sentences", 50, 0))
    assert [r["text"] for r in chunk_rows(db)] == ["A star.", long_sentence, "A cell."]
    chunk(db.store, ChunkParams("sentences", 20, 0, str(tiny_model_dir)))
    rows = chunk_rows(db)
    assert len(rows) > 4
    assert all(len(tokenizer(r["text"], add_special_tokens=False)["input_ids"]) <= 20 for r in rows)


def test_split_sentences_keeps_abbreviations_intact():
    text = (
        "Results are shown in Fig. 3 of the paper. Cells (e.g. HeLa) grew, i.e. Fast. "
        "Smith et al. Found it!\n"
        "Was it in the U.S. Army data? Yes. Doses of 3.5 mg were used."
    )
    got = [text[a:b] for a, b in split_sentences(text)]
    assert got == [
        "Results are shown in Fig. 3 of the paper.",
        "Cells (e.g. HeLa) grew, i.e. Fast.",
        "Smith et al. Found it!",
        "Was it in the U.S. Army data?",
        "Yes.",
        "Doses of 3.5 mg were used.",
    ]


def test_rechunking_with_the_same_params_changes_nothing(docs_db):
    chunk(docs_db.store, ChunkParams("sentences", 160, 1))
    before = db_digest(docs_db)
    summary = chunk(docs_db.store, ChunkParams("sentences", 160, 1))
    assert (summary.documents, summary.chunks, summary.unchanged, summary.removed) == (0, 0, 5, 0)
    assert db_digest(docs_db) == before


def test_rechunking_with_other_params_replaces_the_old_chunks(docs_db):
    first = chunk(docs_db.store, ChunkParams("sentences", 160, 1))
    second = chunk(docs_db.store, ChunkParams("whole"))
    assert second.documents == 5 and second.removed == first.chunks
    assert docs_db.scalar("SELECT count(*) FROM chunks") == 5
    assert docs_db.scalar("SELECT count(*) FROM chunks WHERE chunker->>'strategy' <> 'whole'") == 0


def test_only_new_or_changed_documents_are_rechunked(docs_db):
    chunk(docs_db.store, ChunkParams("sentences", 160, 0))
    insert_docs(docs_db, [("new", "New", "A new star. A new cell.")])
    docs_db.store.execute(
        "UPDATE documents SET text = 'Changed text.', content_hash = ? WHERE doc_id = 'long-cook'",
        [content_hash("Changed text.")],
    )
    untouched = docs_db.sql("SELECT * FROM chunks WHERE doc_id = 'long-bio' ORDER BY ord").rows()
    summary = chunk(docs_db.store, ChunkParams("sentences", 160, 0))
    assert (summary.documents, summary.unchanged) == (2, 4)
    assert docs_db.sql("SELECT text FROM chunks WHERE doc_id = 'long-cook'").rows() == [
        ("Cook review\nChanged text.",)
    ]
    assert docs_db.sql("SELECT * FROM chunks WHERE doc_id = 'long-bio' ORDER BY ord").rows() == untouched


def test_doc_ids_restrict_the_run_and_unknown_ids_fail(docs_db):
    summary = chunk(docs_db.store, ChunkParams("whole"), ["long-bio", "short"])
    assert summary.documents == 2
    assert sorted(docs_db.sql("SELECT doc_id FROM chunks")["doc_id"]) == ["long-bio", "short"]
    before = db_digest(docs_db)
    with pytest.raises(UnknownIds, match="2 unknown document ids, e.g. nope-1, nope-2"):
        chunk(docs_db.store, ChunkParams("sentences", 100, 0), ["long-bio", "nope-1", "nope-2"])
    assert db_digest(docs_db) == before


def test_chunks_of_vanished_documents_are_removed(docs_db):
    chunk(docs_db.store, ChunkParams("whole"))
    docs_db.store.execute("DELETE FROM documents WHERE doc_id = 'short'")
    summary = chunk(docs_db.store, ChunkParams("whole"))
    assert summary.removed == 1 and summary.unchanged == 4
    assert docs_db.scalar("SELECT count(*) FROM chunks WHERE doc_id = 'short'") == 0


def test_failed_write_leaves_previous_chunks(docs_db, monkeypatch):
    chunk(docs_db.store, ChunkParams("whole"))
    before = db_digest(docs_db)
    real = chunk_mod.build_rows

    def broken(*args):  # a NULL text violates NOT NULL after the old chunks were deleted
        table = real(*args)
        return table.set_column(3, "text", pa.array([None] * table.num_rows, pa.string()))

    monkeypatch.setattr(chunk_mod, "build_rows", broken)
    with pytest.raises(Exception, match="NOT NULL"):
        chunk(docs_db.store, ChunkParams("sentences", 100, 0))
    assert db_digest(docs_db) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "tokens", "size": 0, "model": "m"}, "size must be > 0"),
        ({"strategy": "sentences", "size": 10, "overlap": 10}, "overlap must be < size"),
        ({"strategy": "sentences", "overlap": -1}, "overlap must be >= 0"),
        ({"strategy": "tokens", "size": 10}, "model is required"),
        ({"strategy": "whole", "model": "m"}, "model is not used"),
        ({"strategy": "chapters"}, "strategy must be one of"),
    ],
)
def test_invalid_params_name_the_field(kwargs, message):
    with pytest.raises(InvalidParams, match=message):
        ChunkParams(**kwargs)


def test_size_beyond_the_model_fails_and_leaves_db_unchanged(docs_db, tiny_model_dir):
    chunk(docs_db.store, ChunkParams("whole"))
    before = db_digest(docs_db)
    with pytest.raises(InvalidParams, match="size 100 is more than the 62 content tokens"):
        chunk(docs_db.store, ChunkParams("tokens", 100, 0, str(tiny_model_dir)))
    with pytest.raises(InvalidParams, match="overlap must be < size"):
        chunk(docs_db.store, ChunkParams("tokens", None, 70, str(tiny_model_dir)))
    assert db_digest(docs_db) == before


def test_no_documents_is_an_empty_selection(db):
    with pytest.raises(EmptySelection, match="no documents"):
        chunk(db.store, ChunkParams("whole"))


def test_sample_data_is_beir_and_chunks_whole(db):
    from hnm_db.data import sample_dir

    folder = sample_dir()
    docs = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = {json.loads(line)["_id"] for line in (folder / "queries.jsonl").read_text().splitlines()}
    doc_ids = {d["_id"] for d in docs}
    assert 250 <= len(docs) <= 350 and len(doc_ids) == len(docs)
    for split in ("train", "test"):
        lines = (folder / "qrels" / f"{split}.tsv").read_text().splitlines()
        assert lines[0] == "query-id\tcorpus-id\tscore"
        for line in lines[1:]:
            qid, did, _ = line.split("\t")
            assert qid in queries and did in doc_ids
    table = pa.table(
        {
            "doc_id": [d["_id"] for d in docs],
            "title": [d["title"] for d in docs],
            "text": [d["text"] for d in docs],
            "content_hash": [content_hash(d["text"]) for d in docs],
        }
    )
    with db.store.registered("sample_docs", table):
        db.store.execute(
            "INSERT INTO documents (doc_id, title, text, content_hash) SELECT * FROM sample_docs"
        )
    assert chunk(db.store, ChunkParams("whole")).chunks == len(docs)


def words_tokens(text: str) -> chunk_mod.DocTokens:
    """One token per whitespace-separated word: a tokenizer stand-in for the pure window function."""
    import re

    offsets = [m.span() for m in re.finditer(r"\S+", text)]
    return chunk_mod.DocTokens(offsets, list(range(len(offsets))))


def test_token_windows_cover_every_token_with_the_asked_overlap():
    text = " ".join(f"w{i}" for i in range(23))
    toks = words_tokens(text)
    spans = chunk_mod.token_windows(toks, 0, 23, 8, 3)
    words = [text[a:b].split() for a, b in spans]
    assert [len(w) for w in words] == [8, 8, 8, 8]
    assert [w[0] for w in words] == ["w0", "w5", "w10", "w15"]
    assert words[-1][-1] == "w22"


def test_a_vetoed_window_shrinks_until_it_fits():
    text = " ".join(["aaaaaaaaaa", "b", "c", "d", "e", "f"])
    spans = chunk_mod.token_windows(words_tokens(text), 0, 6, 4, 0, fits=lambda a, b: b - a <= 12)
    assert [text[a:b] for a, b in spans] == ["aaaaaaaaaa b", "c d e f"]


def test_pack_sentences_carries_overlap_only_when_it_leaves_room():
    lengths = [3, 3, 3, 3, 9]

    def measure(i: int, j: int) -> int:
        return sum(lengths[i:j])

    assert chunk_mod.pack_sentences(5, measure, 9, 1) == [(0, 3), (2, 4), (4, 5)]
    assert chunk_mod.pack_sentences(5, measure, 9, 0) == [(0, 3), (3, 4), (4, 5)]


def test_checked_windows_equal_the_fast_ones_for_a_wordpiece_tokenizer(docs_db, tiny_model_dir):
    tok = chunk_mod.load_tokenizer(None, str(tiny_model_dir))
    config = chunk_mod.resolve_config(ChunkParams("tokens", 20, 5, str(tiny_model_dir)), tok)
    for _, title, text in long_docs():
        ((prefix, units),) = chunk_mod.title_prefixes([title], config, tok)
        toks = tok.encode_many([text])[0]
        fast = chunk_mod.chunk_spans(text, units, config, toks)
        checked = chunk_mod.chunk_spans(
            text, units, config, toks, fits=lambda a, b, t=text, p=prefix: tok.count(p + t[a:b]) <= 20
        )
        assert fast == checked


def test_database_method_mirrors_the_command(docs_db):
    summary = docs_db.chunk(strategy="sentences", size=160, overlap=1, doc_ids=["long-bio"])
    assert summary.documents == 1 and summary.chunks > 1


TRANSCRIPT = (
    "Project Manager: Good morning, everyone. Let us start.\n"
    "Marketing: The remote should be yellow.\n"
    "  \n"
    "Industrial Designer: Rubber buttons cost more. " + "Much more. " * 12 + "\n"
    "Project Manager: Then we decide on Friday.\n"
    "\n"
    "Marketing: Agreed."
)


@pytest.mark.parametrize("strategy", ["lines", "paragraphs"])
@pytest.mark.parametrize("size", [60, 120, 400])
def test_structural_chunks_are_whole_lines_or_paragraphs_and_offsets_reproduce_the_text(db, strategy, size):
    insert_docs(db, [("meeting", None, TRANSCRIPT)])
    chunk(db.store, ChunkParams(strategy, size, 0, title=False))
    rows = chunk_rows(db)
    units = (split_lines if strategy == "lines" else split_paragraphs)(TRANSCRIPT)
    starts, ends = {a for a, _ in units}, {b for _, b in units}
    for r in rows:
        assert r["text"] == TRANSCRIPT[r["start_char"] : r["end_char"]]
        assert r["start_char"] in starts and r["end_char"] in ends  # never cut inside a unit
        assert len(r["text"]) <= size or (r["start_char"], r["end_char"]) in set(units)  # an overlong unit
    # together the chunks cover every unit, in order
    covered = [u for u in units if any(r["start_char"] <= u[0] and u[1] <= r["end_char"] for r in rows)]
    assert covered == units
    assert [r["start_char"] for r in rows] == sorted(r["start_char"] for r in rows)


def test_lines_and_paragraphs_split_where_the_text_says():
    assert [TRANSCRIPT[a:b] for a, b in split_lines(TRANSCRIPT)][:2] == [
        "Project Manager: Good morning, everyone. Let us start.",
        "Marketing: The remote should be yellow.",
    ]
    paragraphs = [TRANSCRIPT[a:b] for a, b in split_paragraphs(TRANSCRIPT)]
    assert len(paragraphs) == 3 and paragraphs[-1] == "Marketing: Agreed."
    assert paragraphs[1].startswith("Industrial Designer:") and paragraphs[1].endswith("on Friday.")


def test_line_overlap_carries_the_last_line_and_a_model_budget_counts_tokens(db, tiny_model_dir, tokenizer):
    insert_docs(db, [("meeting", None, TRANSCRIPT)])
    chunk(db.store, ChunkParams("lines", 250, 1, title=False))
    rows = chunk_rows(db)
    assert len(rows) >= 3
    for a, b in zip(rows, rows[1:], strict=False):
        last = split_lines(a["text"])[-1]
        assert b["text"].startswith(a["text"][last[0] : last[1]])
    chunk(db.store, ChunkParams("lines", 16, 0, str(tiny_model_dir), title=False))
    rows = chunk_rows(db)
    assert all(len(tokenizer(r["text"], add_special_tokens=False)["input_ids"]) <= 16 for r in rows)
    assert all(r["text"] == TRANSCRIPT[r["start_char"] : r["end_char"]] for r in rows)
