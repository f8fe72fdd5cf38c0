"""A tiny database ready for clustering and mining, built without any model.

The conftest corpus (40 documents in 4 topics, 12 train + 4 test queries) is written straight into the
tables: every third document is cut into two chunks, one extra unjudged document repeats the text of
``astro-0`` (a duplicate that must never become astro-0's query's negative), and two member models get
hand-made vectors (topic centroid + seeded noise) from which the ensemble vectors are built exactly as
the schema defines them: concat_i sqrt(w_i) * v_i / |v_i|.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from conftest import CORPUS, QRELS, QUERIES, TOPICS

from hnm_db.text import content_hash
from hnm_db.vectors import write_vectors

MEMBERS = [("m-a", "model-a", 8, 0.5), ("m-b", "model-b", 6, 0.5)]
ENSEMBLE = "ens"
DUPLICATE_DOC = "dup-astro-0"


def chunk_rows() -> list[tuple[str, str, int, str]]:
    """(chunk_id, doc_id, ord, text) of every chunk."""
    rows = []
    docs = CORPUS + [{"_id": DUPLICATE_DOC, "title": "", "text": CORPUS[0]["text"].split(". ")[0] + "."}]
    for i, d in enumerate(docs):
        if i % 3 == 0 and d["_id"] != DUPLICATE_DOC:
            first, rest = d["text"].split(". ", 1)
            rows += [(f"{d['_id']}#0", d["_id"], 0, first + "."), (f"{d['_id']}#1", d["_id"], 1, rest)]
        else:
            rows.append((f"{d['_id']}#0", d["_id"], 0, d["text"]))
    return rows


def _topic(doc_or_query_id: str) -> int:
    parts = doc_or_query_id.replace("dup-", "").split("-")
    name = parts[1] if parts[0] == "q" else parts[0]
    return list(TOPICS).index(name)


def _insert(db, table: str, columns: list[str], rows: list, extra: dict | None = None) -> None:
    data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    data.update({k: [v] * len(rows) for k, v in (extra or {}).items()})
    db.con.register("_fixture_rows", pa.table(data))
    db.con.execute(f"INSERT INTO {table} ({', '.join(data)}) SELECT {', '.join(data)} FROM _fixture_rows")
    db.con.unregister("_fixture_rows")


def populate_mining_db(db, *, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    con = db.con
    dup_text = chunk_rows()[-1][3]
    docs = [(d["_id"], d["title"], d["text"], content_hash(d["text"])) for d in CORPUS]
    docs.append((DUPLICATE_DOC, "", dup_text, content_hash(dup_text)))
    _insert(db, "documents", ["doc_id", "title", "text", "content_hash"], docs)
    _insert(
        db,
        "queries",
        ["query_id", "text", "content_hash"],
        [(q["_id"], q["text"], content_hash(q["text"])) for q in QUERIES],
    )
    _insert(db, "qrels", ["query_id", "doc_id", "split"], QRELS, extra={"score": 1})
    chunks = chunk_rows()
    _insert(
        db,
        "chunks",
        ["chunk_id", "doc_id", "ord", "text", "end_char", "content_hash"],
        [(cid, did, o, text, len(text), content_hash(text)) for cid, did, o, text in chunks],
        extra={"start_char": 0, "chunker": "{}"},
    )
    doc_hashes = sorted({content_hash(c[3]) for c in chunks})
    doc_topic = {content_hash(c[3]): _topic(c[1]) for c in chunks}
    positives: dict[str, list[str]] = {}
    for qid, did, _ in QRELS:
        positives.setdefault(qid, []).append(did)
    members = []
    ens_doc, ens_query = [], []
    for model_id, name, dim, weight in MEMBERS:
        con.execute(
            "INSERT INTO models (model_id, name, source, fingerprint, dim) VALUES (?, ?, 'test', ?, ?)",
            [model_id, name, f"fp-{model_id}", dim],
        )
        members.append({"model_id": model_id, "weight": weight})
        centroids = rng.normal(size=(len(TOPICS), dim)) * 2
        dv = np.array([centroids[doc_topic[h]] + rng.normal(size=dim) for h in doc_hashes], dtype=np.float32)
        by_hash = dict(zip(doc_hashes, dv, strict=True))
        qv = []
        for q in QUERIES:
            pos = [by_hash[content_hash(c[3])] for c in chunks if c[1] in positives[q["_id"]]]
            qv.append(np.mean(pos, axis=0) + 0.3 * rng.normal(size=dim))
        qv = np.asarray(qv, dtype=np.float32)
        write_vectors(db, "embeddings", {"model_id": model_id, "role": "doc", "content_hash": doc_hashes}, dv)
        write_vectors(
            db,
            "embeddings",
            {
                "model_id": model_id,
                "role": "query",
                "content_hash": [content_hash(q["text"]) for q in QUERIES],
            },
            qv,
        )
        ens_doc.append(np.sqrt(weight) * dv / np.linalg.norm(dv, axis=1, keepdims=True))
        ens_query.append(np.sqrt(weight) * qv / np.linalg.norm(qv, axis=1, keepdims=True))
    con.execute(
        "INSERT INTO ensembles (ensemble_id, name, members, dim) VALUES ('ens-1', ?, ?, ?)",
        [ENSEMBLE, json.dumps(members), sum(m[2] for m in MEMBERS)],
    )
    write_vectors(
        db,
        "ensemble_vectors",
        {"ensemble_id": "ens-1", "role": "doc", "content_hash": doc_hashes},
        np.concatenate(ens_doc, axis=1),
    )
    write_vectors(
        db,
        "ensemble_vectors",
        {"ensemble_id": "ens-1", "role": "query", "content_hash": [content_hash(q["text"]) for q in QUERIES]},
        np.concatenate(ens_query, axis=1),
    )


def table_snapshot(db) -> dict[str, list]:
    """Every row of the tables mining and clustering write, for 'database unchanged' checks."""
    out = {}
    for t in ("mining_runs", "triplets", "cluster_runs", "cluster_centroids", "cluster_assignments"):
        out[t] = sorted(map(repr, db.con.execute(f"SELECT * FROM {t}").fetchall()))
    return out
