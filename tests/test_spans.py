"""Passage-level judgements (issue 23): span ingest, the chunk_qrels overlap rule, ``mine --positive``
rules and same-document negatives, on a hand-made long-document corpus whose chunk offsets are real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures.databases import db_digest

import hnm_db
from hnm_db.errors import InputError, InvalidParams, UnknownIds
from hnm_db.store.vectors import write_vectors

TOPICS = ["comet", "pasta", "violin", "glacier", "tennis", "orchid", "bridge", "falcon"]


def _sentence(topic: str, n: int) -> str:
    return f"The {topic} note {n} talks about {topic} matters only here."


def _doc(i: int) -> str:
    """Eight sentences, one per topic, rotated per document (so each document is about everything)."""
    return " ".join(_sentence(TOPICS[(i + j) % len(TOPICS)], i) for j in range(len(TOPICS)))


DOCS = {f"d{i}": _doc(i) for i in range(4)}
#: query -> (document, topic): the sentence of that topic in that document answers it.
ANSWERS = {"q0": ("d0", "pasta"), "q1": ("d1", "glacier"), "q2": ("d2", "falcon"), "q3": ("d3", "comet")}


def _span(doc: str, topic: str) -> tuple[int, int]:
    text = DOCS[doc]
    start = text.index(f"The {topic} note")
    return start, text.index(".", start) + 1


def write_folder(root: Path, spans: list[str] | None = None, docs: dict[str, str] | None = None) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "spans").mkdir()
    docs = DOCS if docs is None else docs
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(
            json.dumps({"_id": q, "text": f"what about the {t}?"}) + "\n" for q, (_, t) in ANSWERS.items()
        )
    )
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (d, _) in ANSWERS.items())
    )
    if spans is None:
        spans = [f"{q}\t{d}\t{a}\t{b}\t1" for q, (d, t) in ANSWERS.items() for a, b in [_span(d, t)]]
    (root / "spans" / "train.tsv").write_text(
        "query-id\tcorpus-id\tstart\tend\tscore\n" + "\n".join(spans) + "\n"
    )
    return root


@pytest.fixture
def span_db(db, tmp_path):
    db.ingest_beir(write_folder(tmp_path / "beir"))
    db.chunk(strategy="sentences", size=70)
    return db


def test_beir_spans_are_ingested_and_chunk_qrels_finds_the_answering_chunk(span_db):
    rows = span_db.sql("SELECT * FROM qrel_spans ORDER BY query_id").rows(named=True)
    assert [(r["query_id"], r["doc_id"], r["split"]) for r in rows] == [
        (q, d, "train") for q, (d, _) in ANSWERS.items()
    ]
    for r in rows:
        assert DOCS[r["doc_id"]][r["start_char"] : r["end_char"]].startswith("The ")
    hits = span_db.sql(
        "SELECT q.query_id, c.text FROM chunk_qrels q JOIN chunks c USING (chunk_id) WHERE q.overlap = 1"
    ).rows()
    assert sorted((q, ANSWERS[q][1] in text) for q, text in hits) == [(q, True) for q in sorted(ANSWERS)]


def test_overlapping_spans_of_a_query_are_kept_and_a_chunk_counts_once(db, tmp_path):
    a, b = _span("d0", "pasta")
    spans = [f"q0\td0\t{a}\t{b}\t1", f"q0\td0\t{a + 5}\t{b + 20}\t1"]
    db.ingest_beir(write_folder(tmp_path / "beir", spans))
    db.chunk(strategy="sentences", size=70)
    assert db.scalar("SELECT count(*) FROM qrel_spans") == 2
    per_chunk = db.sql("SELECT chunk_id, count(*) AS n FROM chunk_qrels GROUP BY 1")
    assert per_chunk["n"].to_list() == [1] * per_chunk.height


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("q0\td0\t10\t100000\t1", "lies outside the text of document 'd0'"),
        ("q0\td0\t50\t40\t1", "span start 50 is not before its end 40"),
        ("q0\td0\t-3\t40\t1", "must be a character offset >= 0"),
        ("q0\td0\tten\t40\t1", "'start' must be an integer"),
        ("q0\td0\t10\t40", "expected 5 tab-separated fields"),
    ],
)
def test_a_bad_span_names_its_line_and_changes_nothing(db, tmp_path, line, message):
    before = db_digest(db)
    folder = write_folder(tmp_path / "beir", ["q1\td1\t0\t10\t1", line])
    with pytest.raises(InputError, match=message) as info:
        db.ingest_beir(folder)
    assert "spans/train.tsv" in str(info.value) and "line 3" in str(info.value)
    assert db_digest(db) == before


@pytest.mark.parametrize(
    ("line", "what"), [("qX\td0\t0\t10\t1", "query 'qX'"), ("q0\tdX\t0\t10\t1", "document 'dX'")]
)
def test_a_span_naming_an_unknown_query_or_document_is_refused(db, tmp_path, line, what):
    before = db_digest(db)
    with pytest.raises(UnknownIds, match=what):
        db.ingest_beir(write_folder(tmp_path / "beir", [line]))
    assert db_digest(db) == before


def test_offsets_count_in_the_source_text_and_move_with_the_stripped_start(db, tmp_path):
    """A text with leading blanks is stored stripped: a span given on the source moves with it, and an
    end in the stripped tail is cut at the stored end."""
    text = "   " + DOCS["d0"] + "  "
    a, b = _span("d0", "pasta")
    end = len(text)  # the last character of the source, a stripped blank
    spans = [f"q0\td0\t{a + 3}\t{b + 3}\t1", f"q1\td0\t{len(text) - 30}\t{end}\t1"]
    db.ingest_beir(write_folder(tmp_path / "beir", spans, docs={**DOCS, "d0": text}))
    stored = db.scalar("SELECT text FROM documents WHERE doc_id = 'd0'")
    rows = dict(db.sql("SELECT query_id, [start_char, end_char] FROM qrel_spans").rows())
    assert stored[rows["q0"][0] : rows["q0"][1]] == DOCS["d0"][a:b]
    assert rows["q1"][1] == len(stored)


def test_spans_from_a_table_with_column_options(db, tmp_path):
    db.ingest_beir(write_folder(tmp_path / "beir", ["q0\td0\t0\t10\t1"]))
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps({"qid": "q1", "doc": "d1", "from": 5, "to": 25, "split": "train"}) + "\n")
    summary = db.ingest_table(
        path, kind="spans", query_id_column="qid", doc_id_column="doc", start_column="from", end_column="to"
    )
    assert summary.counts["spans"].new == 1
    assert db.sql("SELECT * FROM qrel_spans WHERE query_id = 'q1'").rows() == [
        ("q1", "d1", 5, 25, 1, "train")
    ]
    with pytest.raises(InvalidParams, match="start_column does not apply"):
        db.ingest_table(path, kind="qrels", start_column="from")


def test_the_overlap_is_shared_characters_over_the_shorter_range(db):
    """Hand-made offsets: chunk [0, 100) and [100, 200) of one document; spans [50, 120) and [150, 160)."""
    s = db.store
    s.execute(
        "INSERT INTO documents (doc_id, title, text, content_hash) VALUES ('d', '', ?, 'h')", ["x" * 200]
    )
    s.execute("INSERT INTO queries (query_id, text, content_hash) VALUES ('q', 'q', 'hq'), ('r', 'r', 'hr')")
    s.execute("INSERT INTO qrels VALUES ('q', 'd', 1, 'train'), ('r', 'd', 1, 'train')")
    for i, (a, b) in enumerate([(0, 100), (100, 200)]):
        s.execute("INSERT INTO chunks VALUES (?, 'd', ?, 'x', ?, ?, ?, '{}')", [f"d#{i}", i, a, b, f"c{i}"])
    s.execute(
        "INSERT INTO qrel_spans VALUES ('q', 'd', 50, 120, 1, 'train'), ('r', 'd', 150, 160, 1, 'train')"
    )
    got = {(q, c): (n, round(o, 4)) for q, c, n, o in db.sql(
        "SELECT query_id, chunk_id, overlap_chars, overlap FROM chunk_qrels").rows()}  # fmt: skip
    assert got == {
        ("q", "d#0"): (50, round(50 / 70, 4)),
        ("q", "d#1"): (20, round(20 / 70, 4)),
        ("r", "d#1"): (10, 1.0),
    }


# -- mining -----------------------------------------------------------------------------------------
def _ensemble(db, seed: int = 0) -> None:
    """One member model with seeded vectors for every chunk and query text, and the ensemble 'ens' on it:
    each query lies near its answering sentence's topic, so methods disagree on other chunks."""
    s = db.store
    rng = np.random.default_rng(seed)
    topic_vec = {t: rng.normal(size=16) for t in TOPICS}
    chunks = db.sql("SELECT DISTINCT content_hash, text FROM chunks ORDER BY 1").rows()
    queries = db.sql("SELECT DISTINCT content_hash, text FROM queries ORDER BY 1").rows()

    def vec(text: str) -> np.ndarray:
        v = rng.normal(size=16) * 0.5
        for t in TOPICS:
            v += text.count(t) * topic_vec[t]
        return v

    dv = np.array([vec(t) for _, t in chunks], dtype=np.float32)
    qv = np.array([vec(t) for _, t in queries], dtype=np.float32)
    s.execute(
        "INSERT INTO models (model_id, name, source, fingerprint, dim) VALUES ('m', 'm', 't', 'fp', 16)"
    )
    s.execute(
        """INSERT INTO ensembles (ensemble_id, name, members, dim) VALUES ('e1', 'ens', '[{"model_id": "m", "weight": 1.0}]', 16)"""
    )
    for table, key, val in (("embeddings", "model_id", "m"), ("ensemble_vectors", "ensemble_id", "e1")):
        for role, rows, mat in (("doc", chunks, dv), ("query", queries, qv)):
            if table == "ensemble_vectors":
                mat = mat / np.linalg.norm(mat, axis=1, keepdims=True)
            write_vectors(s, table, {key: val, "role": role, "content_hash": [h for h, _ in rows]}, mat)


def _positives(db, name: str) -> set[tuple[str, str]]:
    return set(
        db.sql(
            "SELECT DISTINCT query_id, positive_chunk_id FROM negative_provenance WHERE run = ?", [name]
        ).rows()
    )


MINE = dict(split="train", num_negatives=2, range_max=20, max_score_ratio=None, seed=3)


@pytest.mark.parametrize("rule", ["best", "first", "span", "all"])
def test_each_positive_rule_picks_the_same_chunks_for_every_method(span_db, rule):
    _ensemble(span_db)
    runs = {}
    for method in ("ensemble", "bm25", "random"):
        span_db.mine(method=method, ensemble="ens", positive=rule, name=f"{method}-{rule}", **MINE)
        runs[method] = _positives(span_db, f"{method}-{rule}")
    assert runs["ensemble"] == runs["bm25"] == runs["random"] and runs["ensemble"]
    if rule == "span":
        expected = set(span_db.sql("SELECT query_id, chunk_id FROM chunk_qrels WHERE overlap >= 0.5").rows())
        assert runs["ensemble"] == expected
    if rule == "first":
        assert {c.split("#")[1] for _, c in runs["ensemble"]} == {"0"}
    stats = json.loads(span_db.scalar("SELECT stats FROM mining_runs WHERE name = ?", [f"bm25-{rule}"]))
    assert "positive_own_best_differs" in stats
    assert (
        span_db.scalar(
            "SELECT DISTINCT positive_rule FROM negative_provenance WHERE run = ?", [f"bm25-{rule}"]
        )
        == rule
    )


def test_the_method_rule_is_each_methods_own_favourite_and_the_run_says_how_often_it_differs(span_db):
    _ensemble(span_db)
    span_db.mine(method="bm25", ensemble="ens", positive="method", name="own", **MINE)
    span_db.mine(method="bm25", ensemble="ens", positive="best", name="ens-best", **MINE)
    own, best = _positives(span_db, "own"), _positives(span_db, "ens-best")
    stats = json.loads(span_db.scalar("SELECT stats FROM mining_runs WHERE name = 'ens-best'"))
    assert stats["positive_own_best_differs"] == len(own - best)
    assert (
        json.loads(span_db.scalar("SELECT stats FROM mining_runs WHERE name = 'own'"))[
            "positive_own_best_differs"
        ]
        == 0
    )


@pytest.mark.parametrize("gap", [0, 40])
def test_same_document_negatives_lie_away_from_every_span_of_the_query(span_db, gap):
    _ensemble(span_db)
    span_db.mine(
        method="ensemble", ensemble="ens", positive="span", same_document_negatives=True, span_gap=gap,
        name="same", **{**MINE, "num_negatives": 6},
    )  # fmt: skip
    rows = span_db.sql(
        "SELECT p.query_id, c.start_char, c.end_char, p.same_document FROM negative_provenance p "
        "JOIN chunks c ON c.chunk_id = p.negative_chunk_id WHERE p.run = 'same'"
    ).rows()
    same = [r for r in rows if r[3]]
    assert same, "no same-document negative was chosen"
    spans = {q: s for q, *s in span_db.sql("SELECT query_id, start_char, end_char FROM qrel_spans").rows()}
    for q, a, b, _ in same:
        sa, sb = spans[q]
        assert b + gap <= sa or sb + gap <= a, (q, a, b, spans[q])
    span_db.mine(
        method="ensemble", ensemble="ens", positive="span", name="off", **{**MINE, "num_negatives": 6}
    )
    assert not span_db.scalar("SELECT bool_or(same_document) FROM negative_provenance WHERE run = 'off'")


def test_same_document_negatives_need_the_span_rule():
    with pytest.raises(InvalidParams, match="needs --positive span"):
        hnm_db.MiningParams(method="bm25", same_document_negatives=True)
    with pytest.raises(InvalidParams, match="give --ensemble"):
        hnm_db.MiningParams(method="bm25", positive="best")


# -- evaluation ---------------------------------------------------------------------------------------
def test_eval_aggregates_are_stored_apart_and_span_metrics_follow_the_chunk_ranking(span_db):
    from hnm_db.reranker.evaluate import result_ids

    _ensemble(span_db)
    by_agg = {}
    for agg in ("max", "first", "sum-top-2"):
        summary = span_db.evaluate(model=None, first_stage="ensemble:ens", k=10, split="train", aggregate=agg)
        by_agg[agg] = summary.rows[0]
    assert {r["span_recall@10"] for r in by_agg.values()} == {by_agg["max"]["span_recall@10"]}  # chunk-level
    ids = {
        agg: result_ids(span_db.store, ["first-stage:ensemble:ens"], first_stage="ensemble:ens", k=10, split="train", aggregate=agg)
        for agg in by_agg
    }  # fmt: skip
    assert len({i for v in ids.values() for i in v}) == 3
    cands = summary.candidates
    relevant = {}
    for q, c in span_db.sql("SELECT query_id, chunk_id FROM chunk_qrels WHERE overlap >= 0.5").rows():
        relevant.setdefault(q, set()).add(c)
    hits = []
    for q in sorted(relevant):
        top = cands.filter(cands["query_id"] == q).sort(["first_score", "chunk_id"], descending=[True, False])
        hits.append(any(c in relevant[q] for c in top["chunk_id"].to_list()[:10]))
    assert by_agg["max"]["span_recall@10"] == pytest.approx(np.mean(hits))
    aggs = span_db.sql("SELECT DISTINCT aggregate FROM eval_summary ORDER BY 1")["aggregate"].to_list()
    assert aggs == ["first", "max", "sum-top-2"]


def test_a_span_on_a_document_whose_text_changed_inside_is_refused(db, tmp_path):
    before = db_digest(db)
    docs = {**DOCS, "d0": DOCS["d0"].replace(". ", ".\r\n", 1)}  # stored with \n: offsets move
    with pytest.raises(InputError, match="cannot be mapped") as info:
        db.ingest_beir(write_folder(tmp_path / "beir", ["q0\td0\t0\t10\t1"], docs=docs))
    assert "spans/train.tsv" in str(info.value)
    assert db_digest(db) == before


def test_the_span_rule_without_spans_is_an_empty_selection_and_writes_nothing(db, tmp_path):
    from hnm_db.errors import EmptySelection

    db.ingest_beir(write_folder(tmp_path / "beir", ["q0\td0\t0\t10\t1"]))
    db.store.execute("DELETE FROM qrel_spans")
    db.chunk(strategy="sentences", size=70)
    before = db_digest(db)
    with pytest.raises(EmptySelection, match="judged span"):
        db.mine(method="bm25", positive="span", name="x", **MINE)
    assert db_digest(db) == before


@pytest.mark.parametrize(
    ("fields", "message"), [({"timeout": 0}, "timeout must be"), ({"workers": 0}, "workers must be")]
)
def test_bad_url_settings_are_refused_before_anything_is_fetched(db, tmp_path, fields, message):
    path = tmp_path / "urls.txt"
    path.write_text("http://127.0.0.1:9/x\n")
    before = db_digest(db)
    with pytest.raises(InvalidParams, match=message):
        db.ingest_urls(path, **fields)
    assert db_digest(db) == before


@pytest.mark.parametrize("bad", ["mean", "sum-top-0"])
def test_a_bad_aggregate_is_refused_by_eval_and_train(bad):
    with pytest.raises(InvalidParams, match="first, max or sum-top-K"):
        hnm_db.EvalParams(aggregate=bad)
    with pytest.raises(InvalidParams, match="first, max or sum-top-K"):
        hnm_db.TrainParams(run="r", out="o", dev_aggregate=bad)


def test_an_in_memory_database_needs_a_ray_stage_folder():
    with pytest.raises(InvalidParams, match="in-memory"):
        hnm_db.RayParams().staged_beside(":memory:")
