"""Pytest fixtures over the helpers of ``tests/fixtures/``: a tiny corpus, temporary databases, tiny
random BERTs that load offline, a local web site.

Nothing here downloads anything: the tokenizer is trained on the fixture text and the model weights
are random (seeded), so tests are hermetic and fast. Real models run only under the `integration` marker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# torch picks its CPU kernels by instruction set (AVX2, AVX-512, ...), and their float sums differ in the
# last bits; the tiny models score chunks nearly alike, so such bits reorder near-ties. Capping torch at
# AVX2 (set before torch loads) makes the suite's outputs the same on every x86-64 machine that has it:
# the golden digests (tests/test_golden.py) were recorded so.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

from fixtures.corpus import article_html, write_beir  # noqa: E402
from fixtures.databases import (  # noqa: E402
    db_digest,
    insert_texts,
    populate_mined,
    populate_mining_db,
    populate_training_db,
)
from fixtures.models import build_tiny_model  # noqa: E402

import hnm_db  # noqa: E402


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


@pytest.fixture
def digest():
    """The ``db_digest`` function, for tests that assert a failed command changed nothing."""
    return db_digest


@pytest.fixture
def add_texts():
    """``add_texts(db, docs, queries, prefix=..)``: see :func:`insert_texts`."""
    return insert_texts


# -- a local web site for the URL-ingest tests (issue 2, ingest) ---------------------------------------
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


# -- issue 6 (train / eval): a database with chunks, qrels, a mining run and triplets, built by SQL ----
@pytest.fixture
def train_db(db):
    """`db` filled by :func:`populate_training_db`."""
    populate_training_db(db)
    return db


@pytest.fixture
def mining_db(db):
    """`db` ready for clustering and mining without models: chunks, queries, qrels, two member models with
    hand-made embeddings and the ensemble ``ens`` (built by tests/_mining_fixture.py)."""
    populate_mining_db(db)
    return db
