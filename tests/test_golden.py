"""Golden digests: the demo pipeline's outputs, byte for byte, as the code of 2026-12-07 wrote them.

A refactor that moves code (issue 22) must change no output. The demo runs here on the tiny test models
(built with a fixed vocabulary; whole chunks); its triplets, the training rows a training run draws from them, and the exported files
are hashed and compared with digests recorded before the refactor. Run ids are random (uuid4), so rows
name their run; scores are rounded to 6 decimals, so a different CPU's last float bits do not count, and
torch is capped at its AVX2 kernels (tests/conftest.py): its AVX-512 kernels round the tiny models'
embeddings differently, which reorders their near-ties (the digests were recorded on an AVX2 machine).

A change that is meant to change outputs updates the digests in the same commit, saying why.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from pathlib import Path

import pytest
from fixtures.models import build_tiny_model

import hnm_db
from hnm_db.demo import DEMO_MINING, DEMO_RUNS, run_demo
from hnm_db.reranker.train import EasyNegatives, draw_groups, load_pools
from hnm_db.store import run_id_of

#: Mining runs beyond the demo's (same split, negatives per query, window and seed).
GOLDEN_RUNS = {
    "golden-ensemble": {"method": "ensemble", "max_score_ratio": None, "cluster_filter": "query"},
    "golden-sampled": {
        "method": "ensemble", "max_score_ratio": 0.999, "sampling": "random", "mix_random": 1,
        "fallback_depth": 60, "guard": "query",
    },
    "golden-bm25": {"method": "bm25", "max_score_ratio": None, "cluster_filter": "positive"},
}  # fmt: skip
#: blake2b-128 digests of the demo's outputs, recorded on main at c818d79 (before issue 22). Issue 23
#: changed the export's digest only: the dataset cards list every mining parameter and stat of a run,
#: and runs now record four more (positive, min_overlap, same_document_negatives, span_gap) and the
#: stat positive_own_best_differs; the data files are byte-identical (diff -r of both builds' exports).
GOLDEN = {
    "triplets": "d5af49497389721917d1d6c645209846",
    "training_rows": "0d1124b80382acda766711ad0fab2e58",
    "export": "42dc9c531ea3a44dc752bc8417d637bc",
}


#: What a dataset card holds that differs between two identical builds.
_VARYING = re.compile(rb"created [0-9-]+ [0-9:.]+|run id `[0-9a-f]{32}`|\"\w+_s\": [0-9.e-]+")


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _rounded(row: tuple) -> list:
    return [round(v, 6) if isinstance(v, float) else _rounded_map(v) for v in row]


def _rounded_map(value: object) -> object:
    if isinstance(value, dict):
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in sorted(value.items())}
    return value


def demo_digests(tmp_path: Path, models: tuple[str, ...]) -> dict[str, str]:
    out = tmp_path / "export"
    with hnm_db.open(tmp_path / "golden.duckdb") as db:
        run_demo(db, out, models=models, chunk_tokens=None, progress=False)
        # The tiny models score every chunk alike, so the demo's ensemble run drops all candidates as
        # likely false negatives: these runs reach the rest of the mining code.
        for name, extra in GOLDEN_RUNS.items():
            summary = db.mine(**DEMO_MINING, ensemble="demo-ensemble", name=name, progress=False, **extra)
            assert summary.triplets > 100, (name, summary)
        db.export(
            runs=list(GOLDEN_RUNS),
            to=out / "n-tuple",
            layout="n-tuple",
            num_negatives=3,
            keep_ids=True,
            progress=False,
        )
        db.export(runs=list(GOLDEN_RUNS), to=out / "labeled-pair", layout="labeled-pair", progress=False)
        triplets = db.store.execute(
            "SELECT m.name, t.* EXCLUDE (run_id) FROM triplets t JOIN mining_runs m USING (run_id) "
            "ORDER BY ALL"
        ).fetchall()
        rows = {}
        for name in sorted([*DEMO_RUNS, *GOLDEN_RUNS]):
            pools = load_pools(db.store, run_id_of(db.store, name), "train")
            groups, filled = draw_groups(pools, 4, 2 * len(pools), 42, 0, EasyNegatives(db.store))
            rows[name] = [
                filled,
                [[g.query, g.positive, list(g.negatives), list(g.passage_hashes)] for g in groups],
            ]
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".md":  # the card: creation time, run ids and stage timings vary per build
            data = _VARYING.sub(b"<varies>", data)
        files[path.relative_to(out).as_posix()] = hashlib.blake2b(data, digest_size=16).hexdigest()
    return {
        "triplets": _digest([_rounded(r) for r in triplets]),
        "training_rows": _digest(rows),
        "export": _digest(files),
    }


@pytest.fixture(scope="module")
def fixed_models(tmp_path_factory) -> tuple[str, str]:
    """The two tiny models of the suite, with a vocabulary that is the same in every process."""
    root = tmp_path_factory.mktemp("golden-models")
    return (
        str(build_tiny_model(root / "tiny-a", seed=0, fixed_vocab=True)),
        str(build_tiny_model(root / "tiny-b", seed=1, hidden=48, fixed_vocab=True)),
    )


@pytest.mark.skipif(
    platform.machine().lower() not in {"x86_64", "amd64"}, reason="digests of torch's x86-64 AVX2 kernels"
)
def test_the_demo_outputs_are_those_recorded_before_the_refactor(tmp_path, fixed_models):
    assert demo_digests(tmp_path, fixed_models) == GOLDEN


def test_the_digests_do_not_depend_on_the_folder_or_the_run_ids(tmp_path, fixed_models):
    """What makes the golden test mean something: two builds in two folders hash alike."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert demo_digests(tmp_path / "a", fixed_models) == demo_digests(tmp_path / "b", fixed_models)
