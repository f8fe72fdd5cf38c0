"""--engine ray: the same embeddings, ensemble vectors, cluster assignments and triplets as the local path,
on a local Ray cluster of 2 CPUs (``pytest -m ray``; needs the ray extra)."""

from __future__ import annotations

import shutil

import pytest
from fixtures.corpus import CORPUS, QUERIES
from fixtures.databases import ENSEMBLE, insert_texts, run_rows

import hnm_db
from hnm_db.engines import ray_engine as engine_ray
from hnm_db.engines.ray_engine import RayParams
from hnm_db.errors import InvalidParams
from hnm_db.mining.cluster import ClusterParams, cluster
from hnm_db.mining.mine import mine
from hnm_db.mining.params import MiningParams
from hnm_db.models import registry as models
from hnm_db.models.ensemble import EnsembleParams, create_ensemble

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

DOCS = [d["text"] for d in CORPUS]
QTEXTS = [q["text"] for q in QUERIES]


@pytest.fixture(scope="module", autouse=True)
def _ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HNM_CACHE", str(tmp_path / "cache"))


def _params(tmp_path, **kw) -> RayParams:
    return RayParams(stage=str(tmp_path / "stage"), **kw)


def _table(db, sql: str):
    return db.store.execute(sql).fetchall()


# -- mining --------------------------------------------------------------------------------------------
def test_mining_on_1_3_and_7_shards_writes_the_local_triplets(mining_db, tmp_path):
    cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=4, seed=0))
    common = dict(
        ensemble=ENSEMBLE,
        num_negatives=3,
        range_max=8,
        fallback_depth=14,
        sampling="random",
        cluster_filter="either",
        max_score_ratio=0.9,
        seed=7,
    )
    mine(mining_db.store, MiningParams(name="local", **common))
    local = run_rows(mining_db, "local")
    assert local
    for shards in (1, 3, 7):
        scorer = engine_ray.mining_scorer(_params(tmp_path, shards=shards, cpus_per_actor=0.25))
        mine(mining_db.store, MiningParams(name=f"ray-{shards}", **common), scorer=scorer)
        assert run_rows(mining_db, f"ray-{shards}") == local, shards
    assert not list((tmp_path / "stage" / "mine").iterdir())  # exchange shards are removed


def test_hybrid_mining_on_ray_writes_the_local_triplets(mining_db, tmp_path):
    # a hybrid's dense top list comes from the shard actors; BM25, the union and the hybrid score stay here
    create_ensemble(
        mining_db.store,
        EnsembleParams("hyb", (("model-a", None), ("model-b", None)), bm25=0.5),
        progress=False,
    )
    common = dict(
        ensemble="hyb", num_negatives=3, range_max=8, fallback_depth=14, max_score_ratio=0.95, seed=3
    )
    mine(mining_db.store, MiningParams(name="hyb-local", **common))
    local = run_rows(mining_db, "hyb-local")
    assert local
    scorer = engine_ray.mining_scorer(_params(tmp_path, shards=3, cpus_per_actor=0.25))
    mine(mining_db.store, MiningParams(name="hyb-ray", **common), scorer=scorer)
    assert run_rows(mining_db, "hyb-ray") == local


def test_ray_assignment_refuses_algorithms_with_their_own_rule(mining_db, tmp_path):
    assigner = engine_ray.assignment_runner(_params(tmp_path))
    with pytest.raises(InvalidParams, match="nearest centroid"):
        cluster(
            mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=4, seed=0, algorithm="gmm"), assigner=assigner
        )
    assert mining_db.scalar("SELECT count(*) FROM cluster_runs") == 0


def test_ray_params_are_validated(tmp_path):
    with pytest.raises(InvalidParams, match="stage"):
        RayParams(stage="")
    with pytest.raises(InvalidParams, match="shards"):
        _params(tmp_path, shards=0)


# -- cluster assignment ------------------------------------------------------------------------------
def test_cluster_assignments_on_ray_equal_local(mining_db, tmp_path):
    local = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=4, seed=0))
    rows = _table(
        mining_db,
        f"SELECT role, content_hash, cluster, distance FROM cluster_assignments "
        f"WHERE cluster_run_id = '{local.cluster_run_id}' ORDER BY ALL",
    )
    mining_db.store.execute("DELETE FROM cluster_assignments")
    mining_db.store.execute("DELETE FROM cluster_centroids")
    mining_db.store.execute("DELETE FROM cluster_runs")
    again = cluster(
        mining_db.store,
        ClusterParams(ensemble=ENSEMBLE, k=4, seed=0),
        assigner=engine_ray.assignment_runner(_params(tmp_path, buckets=3)),
    )
    assert again.cluster_run_id == local.cluster_run_id and again.sizes == local.sizes
    assert again.inertia == local.inertia
    assert rows == _table(
        mining_db,
        f"SELECT role, content_hash, cluster, distance FROM cluster_assignments "
        f"WHERE cluster_run_id = '{again.cluster_run_id}' ORDER BY ALL",
    )


# -- embedding ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def _template(tmp_path_factory, tiny_model_dir, tiny_model_dir_b):
    path = tmp_path_factory.mktemp("engine") / "template.duckdb"
    with hnm_db.open(path) as db:
        insert_texts(db, DOCS, QTEXTS)
        models.add_model(db.store, "tiny", str(tiny_model_dir))
        models.add_model(db.store, "tiny-b", str(tiny_model_dir_b), query_prompt="query: ")
    return path


def _copy(template, path):
    shutil.copy(template, path)
    return hnm_db.open(path)


EMB = "SELECT model_id, role, content_hash, vec FROM embeddings ORDER BY model_id, role, content_hash"
ENS = "SELECT role, content_hash, vec FROM ensemble_vectors ORDER BY role, content_hash"


def test_embeddings_and_ensemble_vectors_on_ray_equal_local(_template, tmp_path):
    with _copy(_template, tmp_path / "local.duckdb") as db:
        db.embed(models=["tiny", "tiny-b"], batch_size=8, threads=1, progress=False)
        db.create_ensemble(name="ens", members=["tiny", "tiny-b:0.3"], progress=False)
        local, local_ens = _table(db, EMB), _table(db, ENS)
    with _copy(_template, tmp_path / "ray.duckdb") as db:
        summary = db.embed(
            models=["tiny", "tiny-b"],
            batch_size=8,
            threads=1,
            progress=False,
            ray=_params(tmp_path, buckets=3),
        )
        assert summary.encoded == len(local)
        db.create_ensemble(name="ens", members=["tiny", "tiny-b:0.3"], progress=False)
        assert _table(db, EMB) == local
        assert _table(db, ENS) == local_ens
        again = db.embed(models=["tiny"], batch_size=8, progress=False, ray=_params(tmp_path))
        assert again.encoded == 0
    assert not (tmp_path / "stage" / "embed").exists() or not any(
        (tmp_path / "stage" / "embed").rglob("*.parquet")
    )


def test_a_run_with_half_its_output_shards_deleted_resumes_without_duplicates(
    _template, tmp_path, monkeypatch
):
    with _copy(_template, tmp_path / "local.duckdb") as db:
        db.embed(models=["tiny"], batch_size=4, threads=1, progress=False)
        local = _table(db, EMB)
    params = _params(tmp_path, buckets=6)
    with _copy(_template, tmp_path / "ray.duckdb") as db:
        # the driver dies after the replicas wrote every output shard, before ingesting any
        monkeypatch.setattr(engine_ray, "ingest_embeddings", lambda *a, **k: 0)
        monkeypatch.setattr(engine_ray.shutil, "rmtree", lambda *a, **k: None)
        db.embed(models=["tiny"], batch_size=4, threads=1, progress=False, ray=params)
        monkeypatch.undo()
        out = sorted((tmp_path / "stage" / "embed").rglob("out/shard-*.parquet"))
        assert len(out) == 6 + 4  # 40 chunk texts: 10 batches of 4 in 6 shards; 16 queries: 4 batches
        for path in out[::2]:
            path.unlink()
        # an output shard ingested twice adds nothing
        model_id, role = out[1].parts[-4], out[1].parts[-3]
        assert engine_ray.ingest_embeddings(db.store, model_id, role, out[1]) > 0
        assert engine_ray.ingest_embeddings(db.store, model_id, role, out[1]) == 0
        db.embed(models=["tiny"], batch_size=4, threads=1, progress=False, ray=params)
        assert _table(db, EMB) == local
        dup = db.scalar("SELECT count(*) - count(DISTINCT (model_id, role, content_hash)) FROM embeddings")
        assert dup == 0
