"""Shared fixtures: a tiny corpus, a temporary database, and a tiny random BERT that loads offline.

Nothing here downloads anything: the tokenizer is trained on the fixture text and the model weights
are random (seeded), so tests are hermetic and fast. Real models run only under the `integration` marker.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hnm_db  # noqa: E402

TOPICS = {
    "astro": ["star", "galaxy", "orbit", "telescope", "planet", "nebula", "comet", "gravity"],
    "bio": ["cell", "protein", "gene", "enzyme", "membrane", "tissue", "virus", "mutation"],
    "cook": ["flour", "oven", "butter", "sugar", "dough", "recipe", "knife", "spice"],
    "sport": ["goal", "match", "league", "coach", "striker", "stadium", "referee", "season"],
}


def _make_corpus() -> tuple[list[dict], list[dict], list[tuple[str, str, str]]]:
    """40 documents in 4 topics, 16 queries (12 train, 4 test) each judged against 1-2 documents."""
    docs, queries, qrels = [], [], []
    for topic, words in TOPICS.items():
        for i in range(10):
            w = [words[(i + j) % len(words)] for j in range(6)]
            text = (
                f"The {w[0]} and the {w[1]} are studied here. "
                f"Every {w[2]} relates to a {w[3]} in document {topic} {i}. "
                f"Results about {w[4]} and {w[5]} follow from these observations."
            )
            docs.append({"_id": f"{topic}-{i}", "title": f"{topic.title()} note {i}", "text": text})
        for q in range(4):
            qid = f"q-{topic}-{q}"
            queries.append({"_id": qid, "text": f"what links the {words[q]} to the {words[q + 1]}?"})
            split = "test" if q == 3 else "train"
            qrels.append((qid, f"{topic}-{q}", split))
            if q % 2 == 0:
                qrels.append((qid, f"{topic}-{q + 5}", split))
    return docs, queries, qrels


CORPUS, QUERIES, QRELS = _make_corpus()


def write_beir(folder: Path) -> Path:
    """Write the tiny corpus in BEIR layout and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for d in CORPUS:
            f.write(json.dumps(d) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for q in QUERIES:
            f.write(json.dumps(q) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    for split in ("train", "test"):
        with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for qid, did, s in QRELS:
                if s == split:
                    f.write(f"{qid}\t{did}\t1\n")
    return folder


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "beir")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


@pytest.fixture
def db(db_path: Path):
    database = hnm_db.open(db_path)
    yield database
    database.close()


def _all_fixture_text() -> list[str]:
    texts = [d["title"] + " " + d["text"] for d in CORPUS] + [q["text"] for q in QUERIES]
    return texts * 3


def build_tiny_model(
    folder: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2, dropout: float = 0.1
) -> Path:
    """A sentence-transformers folder: WordPiece tokenizer trained on the fixture text + random BERT
    (``dropout`` 0: the untrained model's near-constant outputs are not drowned by dropout noise, so
    a few training steps show)."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece
    from tokenizers.processors import TemplateProcessing
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(_all_fixture_text(), WordPieceTrainer(vocab_size=400, special_tokens=special))
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    hf_tok.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    BertModel(config).save_pretrained(folder)
    transformer = models.Transformer(str(folder), max_seq_length=64)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-d, 2-layer random BERT sentence-transformers folder (session-wide, built once)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-a", seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir_nodrop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first tiny model without dropout, for tests that watch a few training steps move the loss."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-nodrop", seed=0, dropout=0.0)


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model (48-d, other seed) so ensembles can mix dimensions."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-b", seed=1, hidden=48)


# -- a mined database for the export / audit tests (issue 5) -------------------------------------------
# Rows are inserted directly, so these tests do not depend on the mining stage. Three runs over the
# same queries with overlapping negatives: ensemble (clusters, per-model scores, one negative scoring
# above its positive), bm25 (one query with only 2 negatives) and random (no scores).
MINED_RUNS = {"ens-top": "run-ens", "bm25-top": "run-bm25", "random": "run-rnd"}


def _mined_triplets() -> dict[str, list[tuple]]:
    """run_id -> (query, positive chunk, negative chunk, rank, score, positive score, q cluster, n cluster)."""
    ens = []
    for q, pos, pscore, qc, negs in [
        ("q1", "d1#0", 0.90, 0, [("d5#0", 0.80, 0), ("d6#0", 0.70, 0), ("d7#0", 0.60, 1)]),
        ("q2", "d2#0", 0.80, 1, [("d1#0", 0.85, 1), ("d5#1", 0.70, 0), ("d3#0", 0.50, 1)]),
        ("q3", "d3#0", 0.88, 2, [("d6#0", 0.75, 2), ("d7#0", 0.65, 2), ("d2#0", 0.55, 0)]),
        ("q3", "d4#0", 0.82, 2, [("d6#0", 0.75, 2), ("d7#0", 0.65, 2), ("d2#0", 0.55, 0)]),
    ]:
        ens += [(q, pos, n, r, s, pscore, qc, nc) for r, (n, s, nc) in enumerate(negs)]
    bm25 = []
    for q, pos, pscore, negs in [
        ("q1", "d1#0", 15.0, [("d5#0", 12.0), ("d8#0", 10.0), ("d6#0", 8.0)]),
        ("q2", "d2#0", 11.0, [("d5#0", 9.0), ("d6#0", 7.0)]),
        ("q3", "d3#0", 9.0, [("d1#0", 6.0), ("d2#0", 5.0), ("d5#1", 4.0)]),
        ("q3", "d4#0", 7.0, [("d1#0", 6.0), ("d2#0", 5.0), ("d5#1", 4.0)]),
    ]:
        bm25 += [(q, pos, n, r, s, pscore, None, None) for r, (n, s) in enumerate(negs)]
    rnd = []
    for q, pos, negs in [
        ("q1", "d1#0", ["d7#0", "d8#0"]),
        ("q2", "d2#0", ["d3#0", "d6#0"]),
        ("q3", "d3#0", ["d5#0", "d1#0"]),
        ("q3", "d4#0", ["d8#0", "d2#0"]),
    ]:
        rnd += [(q, pos, n, r, None, None, None, None) for r, n in enumerate(negs)]
    return {"run-ens": ens, "run-bm25": bm25, "run-rnd": rnd}


def populate_mined(db: hnm_db.Database) -> None:
    """8 documents (9 chunks), 4 queries (q4 is a test query), 3 mining runs with hash snapshots."""
    from hnm_db.audit import record_run_sources
    from hnm_db.text import content_hash

    texts = {
        f"d{i}": f"Document {i} talks about subject {i} using words w{i}a and w{i}b." for i in range(1, 9)
    }
    chunks = {f"{d}#0": (d, t) for d, t in texts.items()}
    chunks["d5#1"] = ("d5", "A second passage of document 5 about w5c.")
    with db.transaction():
        for d, t in texts.items():
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, 'tiny-corpus', ?, ?, TIMESTAMP '2024-12-31 00:00:00')",
                [d, f"Title {d}", t, content_hash(t), json.dumps({"license": "cc-by-4.0"})],
            )
        for cid, (d, t) in chunks.items():
            ord_ = int(cid.split("#")[1])
            db.execute(
                'INSERT INTO chunks VALUES (?, ?, ?, ?, 0, ?, ?, \'{"kind": "whole"}\')',
                [cid, d, ord_, t, len(t), content_hash(t)],
            )
        for i in range(1, 5):
            qt = f"question {i} about w{i}a?"
            db.execute(
                "INSERT INTO queries (query_id, text, content_hash) VALUES (?, ?, ?)",
                [f"q{i}", qt, content_hash(qt)],
            )
        for q, d, split in [
            ("q1", "d1", "train"),
            ("q2", "d2", "train"),
            ("q3", "d3", "train"),
            ("q3", "d4", "train"),
            ("q4", "d8", "test"),
        ]:
            db.execute("INSERT INTO qrels VALUES (?, ?, 1, ?)", [q, d, split])
        db.execute(
            "INSERT INTO models (model_id, name, source, fingerprint, dim) VALUES "
            "('m1', 'tiny-a', 'test', 'fp-aaaa', 32), ('m2', 'tiny-b', 'test', 'fp-bbbb', 48)"
        )
        members = json.dumps([{"model_id": "m1", "weight": 0.5}, {"model_id": "m2", "weight": 0.5}])
        db.execute(
            "INSERT INTO ensembles (ensemble_id, name, members, dim) VALUES ('e1', 'ab', ?, 80)", [members]
        )
        db.execute(
            "INSERT INTO cluster_runs (cluster_run_id, ensemble_id, k, seed, algorithm, params) "
            "VALUES ('c1', 'e1', 3, 0, 'kmeans', '{}')"
        )
        for i, (_, t) in enumerate(v for _, v in sorted(chunks.items())):
            db.execute(
                "INSERT INTO cluster_assignments VALUES ('c1', 'doc', ?, ?, 0.1)", [content_hash(t), i % 3]
            )
        run_rows = [
            (
                "run-ens",
                "ens-top",
                "ensemble",
                1,
                "e1",
                "c1",
                members,
                {
                    "num_negatives": 3,
                    "range_min": 0,
                    "range_max": 20,
                    "max_score_ratio": 0.95,
                    "sampling": "top",
                    "cluster_filter": "none",
                },
                {"queries": 3, "candidates": 60, "dropped_false_negatives": 2, "short_queries": 0},
                "01",
            ),
            (
                "run-bm25",
                "bm25-top",
                "bm25",
                2,
                None,
                None,
                None,
                {"num_negatives": 3, "range_min": 0, "range_max": 20, "sampling": "top"},
                {"queries": 3, "dropped_false_negatives": 0, "short_queries": 1},
                "02",
            ),
            ("run-rnd", "random", "random", 7, None, None, None, {"num_negatives": 2}, {}, "03"),
        ]
        for run_id, name, method, seed, ens, cl, models, params, stats, day in run_rows:
            db.execute(
                "INSERT INTO mining_runs VALUES (?, ?, ?, 'train', ?, ?, ?, ?, ?, '0.1.0', "
                "CAST(? AS TIMESTAMP), ?)",
                [
                    run_id,
                    name,
                    method,
                    json.dumps(params, sort_keys=True),
                    seed,
                    ens,
                    cl,
                    models,
                    f"2025-01-{day} 00:00:00",
                    json.dumps(stats, sort_keys=True),
                ],
            )
        for run_id, rows in _mined_triplets().items():
            for q, pos, neg, rank, score, pscore, qc, nc in rows:
                members_map = {"m1": score + 0.02, "m2": score - 0.02} if run_id == "run-ens" else None
                db.execute(
                    "INSERT INTO triplets (run_id, query_id, positive_doc_id, positive_chunk_id, negative_doc_id, "
                    "negative_chunk_id, rank, score, positive_score, member_scores, query_cluster, "
                    "negative_cluster, split, negative_method) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'train', "
                    "(SELECT method FROM mining_runs WHERE run_id = ?))",
                    [
                        run_id,
                        q,
                        pos.split("#")[0],
                        pos,
                        neg.split("#")[0],
                        neg,
                        rank,
                        score,
                        pscore,
                        members_map,
                        qc,
                        nc,
                        run_id,
                    ],
                )
            record_run_sources(db, run_id)


@pytest.fixture(scope="session")
def _mined_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mined") / "mined.duckdb"
    with hnm_db.open(path) as database:
        populate_mined(database)
    return path


@pytest.fixture
def mined_db_path(_mined_template: Path, tmp_path: Path) -> Path:
    """A closed database file holding the three mined runs of ``populate_mined`` (a fresh copy per test)."""
    import shutil

    path = tmp_path / "mined.duckdb"
    shutil.copyfile(_mined_template, path)
    return path


@pytest.fixture
def mined_db(mined_db_path: Path):
    database = hnm_db.open(mined_db_path)
    yield database
    database.close()


def db_digest(database: hnm_db.Database) -> dict[str, tuple[int, str]]:
    """(row count, md5 of the sorted rows) of every table: equal digests mean an unchanged database."""
    out = {}
    for table in database.tables():
        out[table] = database.execute(
            f"SELECT count(*), md5(coalesce(string_agg(x::VARCHAR, chr(10) ORDER BY x::VARCHAR), '')) "
            f'FROM "{table}" x'
        ).fetchone()
    return out


@pytest.fixture
def digest():
    """The ``db_digest`` function, for tests that assert a failed command changed nothing."""
    return db_digest


def insert_texts(database, docs: list[str] = (), queries: list[str] = (), *, prefix: str = "") -> None:
    """Rows in chunks (one chunk per text, chunker '{}') and queries, inserted directly with SQL.

    For stages after chunking whose tests should not depend on ingest/chunk.
    """
    from hnm_db.text import content_hash

    for i, text in enumerate(docs):
        database.execute(
            "INSERT INTO chunks (chunk_id, doc_id, ord, text, start_char, end_char, content_hash, chunker) "
            "VALUES (?, ?, 0, ?, 0, ?, ?, '{}')",
            [f"{prefix}c{i}", f"{prefix}d{i}", text, len(text), content_hash(text)],
        )
    for i, text in enumerate(queries):
        database.execute(
            "INSERT INTO queries (query_id, text, content_hash) VALUES (?, ?, ?)",
            [f"{prefix}q{i}", text, content_hash(text)],
        )


@pytest.fixture
def add_texts():
    """``add_texts(db, docs, queries, prefix=..)``: see :func:`insert_texts`."""
    return insert_texts


# -- a local web site for the URL-ingest tests (issue 2, ingest) ---------------------------------------
ARTICLE_HTML = """<html><head><title>Stars and Galaxies</title><script>var trackingPixel = 1;</script>
<style>.menu {{ color: red }}</style></head><body>
<header><nav><ul><li><a href="/">Home page link</a></li><li><a href="/about">About us link</a></li></ul></nav></header>
<main><article><h1>Stars and galaxies</h1>{paragraphs}</article></main>
<footer>Copyright footer text 2024</footer></body></html>"""


def article_html(topic: str = "stars", n: int = 3) -> str:
    """A page with navigation, a script, a style and a footer around a few real paragraphs."""
    paras = "".join(
        f"<p>Paragraph {i} explains how {topic} form inside clouds of gas and dust over millions of years.</p>"
        for i in range(n)
    )
    return ARTICLE_HTML.format(paragraphs=paras)


@pytest.fixture
def local_site():
    """A threaded HTTP server on 127.0.0.1; ``site.pages[path] = (status, content_type, body)``.

    ``/slow`` answers after 1.5 s (for timeouts); ``site.refused`` is a URL on a closed port.
    """
    import http.server
    import socket
    import threading
    import time
    from types import SimpleNamespace

    pages = {
        "/a.html": (200, "text/html; charset=utf-8", article_html("stars")),
        "/b.html": (200, "text/html", article_html("planets")),
        "/slow": (200, "text/html", article_html("comets")),
        "/image.png": (200, "image/png", "\x89PNG not really"),
        "/empty.html": (200, "text/html", "<html><head><title>Nothing</title></head><body></body></html>"),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            if self.path == "/slow":
                time.sleep(1.5)
            if self.path not in pages:
                self.send_error(404, "Not Found")
                return
            status, ctype, body = pages[self.path]
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield SimpleNamespace(base=base, pages=pages, refused=f"http://127.0.0.1:{closed_port}/gone.html")
    server.shutdown()
    server.server_close()


def write_pdf(path: Path, text: str, title: str | None = None) -> Path:
    """A minimal one-page PDF (Helvetica, one line of text), written by hand so no PDF writer is needed."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title or ''}) >>".encode("latin-1"),
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    info = b" /Info 6 0 R" if title else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref)
    path.write_bytes(bytes(out))
    return path


# -- issue 6 (train / eval): a database with chunks, qrels, a mining run and triplets, built by SQL ----
def populate_training_db(database) -> None:
    """One chunk per fixture document, the fixture queries and qrels, a mining run `mined` whose
    train triplets pair every (train query, positive) with 2 negatives from other topics, an empty
    mining run `empty`, and an ensemble `onehot` whose vectors are one-hot topic indicators."""
    import numpy as np

    from hnm_db.text import content_hash
    from hnm_db.vectors import write_vectors

    con = database.con
    for d in CORPUS:
        con.execute(
            "INSERT INTO documents (doc_id, title, text, content_hash) VALUES (?, ?, ?, ?)",
            [d["_id"], d["title"], d["text"], content_hash(d["text"])],
        )
        con.execute(
            'INSERT INTO chunks VALUES (?, ?, 0, ?, 0, ?, ?, \'{"method": "whole"}\')',
            [f"{d['_id']}#0", d["_id"], d["text"], len(d["text"]), content_hash(d["text"])],
        )
    for q in QUERIES:
        con.execute(
            "INSERT INTO queries (query_id, text, content_hash) VALUES (?, ?, ?)",
            [q["_id"], q["text"], content_hash(q["text"])],
        )
    for qid, did, split in QRELS:
        con.execute("INSERT INTO qrels VALUES (?, ?, 1, ?)", [qid, did, split])
    for name in ("mined", "empty"):
        con.execute(
            "INSERT INTO mining_runs (run_id, name, method, split, params, seed, code_version) "
            "VALUES (?, ?, 'bm25', 'train', '{}', 0, 'test')",
            [f"run-{name}", name],
        )
    topics = list(TOPICS)
    for qid, did, split in QRELS:
        if split != "train":
            continue
        topic = qid.split("-")[1]
        other = topics[(topics.index(topic) + 1) % len(topics)]
        for rank, i in enumerate((int(qid[-1]), int(qid[-1]) + 1), start=1):
            neg = f"{other}-{i}"
            con.execute(
                "INSERT INTO triplets (run_id, query_id, positive_doc_id, positive_chunk_id, negative_doc_id, "
                "negative_chunk_id, rank, split) VALUES ('run-mined', ?, ?, ?, ?, ?, ?, 'train')",
                [qid, did, f"{did}#0", neg, f"{neg}#0", rank],
            )
    con.execute("INSERT INTO ensembles VALUES ('ens-1', 'onehot', '[]', 4, current_timestamp)")
    doc_vecs = np.array([np.eye(4)[topics.index(d["_id"].split("-")[0])] for d in CORPUS], dtype=np.float32)
    write_vectors(
        database,
        "ensemble_vectors",
        {"ensemble_id": "ens-1", "role": "doc", "content_hash": [content_hash(d["text"]) for d in CORPUS]},
        doc_vecs,
    )
    q_vecs = np.array([np.eye(4)[topics.index(q["_id"].split("-")[1])] for q in QUERIES], dtype=np.float32)
    write_vectors(
        database,
        "ensemble_vectors",
        {"ensemble_id": "ens-1", "role": "query", "content_hash": [content_hash(q["text"]) for q in QUERIES]},
        q_vecs,
    )


@pytest.fixture
def train_db(db):
    """`db` filled by :func:`populate_training_db`."""
    populate_training_db(db)
    return db


@pytest.fixture
def mining_db(db):
    """`db` ready for clustering and mining without models: chunks, queries, qrels, two member models with
    hand-made embeddings and the ensemble ``ens`` (built by tests/_mining_fixture.py)."""
    from _mining_fixture import populate_mining_db

    populate_mining_db(db)
    return db
