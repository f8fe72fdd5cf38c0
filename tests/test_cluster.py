"""K-means clusters of ensemble chunk vectors: stored runs, reproducibility, query assignment, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures.databases import ENSEMBLE, db_digest

from hnm_db.errors import InvalidParams, MissingEmbeddings, NotFound
from hnm_db.mining.cluster import ClusterParams, cluster, latest_cluster_run, nearest_centroid
from hnm_db.store.vectors import read_vectors


def _assignments(db, run_id):
    return db.store.execute(
        "SELECT role, content_hash, cluster, distance FROM cluster_assignments "
        "WHERE cluster_run_id = ? ORDER BY role, content_hash",
        [run_id],
    ).fetchall()


def test_same_seed_gives_the_same_assignments(mining_db):
    a = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=3, seed=11))
    first = _assignments(mining_db, a.cluster_run_id)
    for table in ("cluster_runs", "cluster_centroids", "cluster_assignments"):
        mining_db.store.execute(f"DELETE FROM {table}")
    b = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=3, seed=11))
    assert not b.reused and b.cluster_run_id == a.cluster_run_id
    assert _assignments(mining_db, b.cluster_run_id) == first


def test_repeating_a_cluster_command_reuses_the_stored_run(mining_db):
    a = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=3, seed=11))
    b = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=3, seed=11))
    assert b.reused and b.cluster_run_id == a.cluster_run_id
    assert (b.k, b.sizes, b.chunks, b.queries) == (a.k, a.sizes, a.chunks, a.queries)
    assert mining_db.scalar("SELECT count(*) FROM cluster_runs") == 1
    c = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=3, seed=12))
    assert not c.reused and c.cluster_run_id != a.cluster_run_id


def test_run_stores_centroids_sizes_and_every_chunk_text_and_query(mining_db):
    s = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=4, seed=0))
    texts = mining_db.scalar("SELECT count(DISTINCT content_hash) FROM chunks")
    assert s.chunks == texts and sum(s.sizes) == texts and s.queries == 16
    assert (
        mining_db.scalar(
            "SELECT count(*) FROM cluster_centroids WHERE cluster_run_id = ?", [s.cluster_run_id]
        )
        == 4
    )
    sizes = mining_db.store.execute(
        "SELECT size FROM cluster_centroids WHERE cluster_run_id = ? ORDER BY cluster", [s.cluster_run_id]
    ).fetchall()
    assert [r[0] for r in sizes] == s.sizes
    run = mining_db.store.execute("SELECT k, seed, algorithm, inertia, params FROM cluster_runs").fetchone()
    assert run[:3] == (4, 0, "kmeans") and run[3] == pytest.approx(s.inertia)
    assert latest_cluster_run(mining_db.store, "ens-1") == s.cluster_run_id


def test_queries_are_assigned_to_the_nearest_centroid(mining_db):
    s = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=4, seed=0))
    _, cent = read_vectors(
        mining_db.store,
        "SELECT vec FROM cluster_centroids WHERE cluster_run_id = ? ORDER BY cluster",
        [s.cluster_run_id],
    )
    keys, q = read_vectors(
        mining_db.store,
        "SELECT a.cluster, a.distance, ev.vec FROM cluster_assignments a "
        "JOIN ensemble_vectors ev ON ev.content_hash = a.content_hash AND ev.role = 'query' "
        "WHERE a.role = 'query' ORDER BY a.content_hash",
    )
    d = np.linalg.norm(q[:, None, :] - cent[None, :, :], axis=2)
    assert np.array_equal(d.argmin(1), keys["cluster"])
    assert np.allclose(d.min(1), keys["distance"], atol=1e-5)


def test_auto_k_picks_the_four_topics_by_neighbour_retention(mining_db):
    s = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k="auto", seed=0))
    assert s.k == 4
    assert s.retention[4] >= 2 / 3 > s.retention[8]
    stored = json.loads(
        mining_db.scalar("SELECT params FROM cluster_runs WHERE cluster_run_id = ?", [s.cluster_run_id])
    )
    assert {int(k): v for k, v in stored["auto_retention_scores"].items()} == s.retention
    again = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k="auto", seed=0))
    assert again.reused and again.k == 4 and again.retention == s.retention


def test_auto_k_takes_the_largest_k_that_keeps_neighbours_together():
    """No cluster structure (one Gaussian blob): retention falls smoothly with k and the rule picks the
    largest candidate above the bar, not the smallest k as silhouette does on such data."""
    from hnm_db.mining.cluster import choose_k

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # unit vectors, like ensemble vectors
    params = ClusterParams(ensemble="e", k="auto", seed=0, auto_candidates=(2, 4, 8, 16, 32, 64))
    k, retention = choose_k(x, params, "kmeans")
    ks = sorted(retention)
    assert all(retention[a] >= retention[b] - 0.02 for a, b in zip(ks[:-1], ks[1:], strict=True))
    assert k == max(c for c in ks if retention[c] >= 2 / 3)
    assert 2 < k < 64
    strict = ClusterParams(ensemble="e", k="auto", seed=0, auto_retention=1.0)
    assert choose_k(x, strict, "kmeans")[0] == 1  # nothing keeps every neighbour: one cluster


def test_auto_k_parameters_are_validated():
    with pytest.raises(InvalidParams, match="auto_retention"):
        ClusterParams(ensemble="e", auto_retention=0)
    with pytest.raises(InvalidParams, match="auto_neighbours"):
        ClusterParams(ensemble="e", auto_neighbours=0)


def test_minibatch_algorithm_runs_and_is_recorded(mining_db):
    s = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=2, seed=0, algorithm="minibatch"))
    assert s.algorithm == "minibatch" and sum(s.sizes) == s.chunks


def test_nearest_centroid_in_blocks_matches_brute_force():
    rng = np.random.default_rng(1)
    x, c = rng.normal(size=(50, 5)).astype(np.float32), rng.normal(size=(6, 5)).astype(np.float32)
    labels, dist = nearest_centroid(x, c, block=7)
    d = np.linalg.norm(x[:, None] - c[None], axis=2)
    assert np.array_equal(labels, d.argmin(1)) and np.allclose(dist, d.min(1), atol=1e-5)


def test_k_larger_than_the_number_of_chunks_is_rejected(mining_db):
    before = db_digest(mining_db)
    with pytest.raises(
        InvalidParams, match="k: 500 clusters asked for but there are only 54 distinct chunk texts"
    ):
        cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=500))
    assert db_digest(mining_db) == before


def test_missing_vectors_name_the_ensemble_models_and_count(mining_db):
    mining_db.store.execute(
        "DELETE FROM ensemble_vectors WHERE role = 'doc' AND content_hash IN "
        "(SELECT content_hash FROM chunks ORDER BY content_hash LIMIT 2)"
    )
    mining_db.store.execute(
        "DELETE FROM embeddings WHERE model_id = 'm-a' AND role = 'doc' AND content_hash IN "
        "(SELECT content_hash FROM chunks ORDER BY content_hash LIMIT 2)"
    )
    before = db_digest(mining_db)
    with pytest.raises(MissingEmbeddings, match="no vectors for 2 of 54 chunk texts.*'model-a' lacks 2"):
        cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=2))
    assert db_digest(mining_db) == before


def test_unknown_ensemble_lists_the_known_ones(mining_db):
    with pytest.raises(NotFound, match="no ensemble named 'nope' \\(known: ens;"):
        cluster(mining_db.store, ClusterParams(ensemble="nope", k=2))


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(k=0), "k"),
        (dict(k="many"), "k"),
        (dict(seed=-1), "seed"),
        (dict(algorithm="dbscan"), "algorithm"),
    ],
)
def test_bad_params_name_the_field(kw, field):
    with pytest.raises(InvalidParams, match=field):
        ClusterParams(ensemble=ENSEMBLE, **kw)


@pytest.mark.parametrize("algorithm", ["kmeans", "minibatch", "agglomerative", "gmm"])
def test_every_algorithm_is_recorded_assigns_everything_and_finds_the_topics(mining_db, algorithm):
    s = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=4, seed=0, algorithm=algorithm))
    texts = mining_db.scalar("SELECT count(DISTINCT content_hash) FROM chunks")
    assert s.algorithm == algorithm and s.chunks == texts and sum(s.sizes) == texts and s.queries == 16
    row = mining_db.store.execute(
        "SELECT algorithm, json_extract_string(params, '$.algorithm') FROM cluster_runs "
        "WHERE cluster_run_id = ?",
        [s.cluster_run_id],
    ).fetchone()
    assert row == (algorithm, algorithm)
    # the fixture's 4 topics are 4 clusters: every query shares its cluster with its positives' chunks
    agree = mining_db.scalar(
        """SELECT avg(CASE WHEN qa.cluster = ca.cluster THEN 1.0 ELSE 0.0 END)
           FROM qrels r JOIN queries q USING (query_id) JOIN chunks c USING (doc_id)
           JOIN cluster_assignments qa ON qa.content_hash = q.content_hash AND qa.role = 'query'
           JOIN cluster_assignments ca ON ca.content_hash = c.content_hash AND ca.role = 'doc'
           WHERE qa.cluster_run_id = ? AND ca.cluster_run_id = qa.cluster_run_id AND r.score > 0""",
        [s.cluster_run_id],
    )
    assert agree == 1.0
    again = cluster(mining_db.store, ClusterParams(ensemble=ENSEMBLE, k=4, seed=0, algorithm=algorithm))
    assert again.reused and again.sizes == s.sizes


def test_default_algorithm_is_kmeans_with_the_same_clusters():
    """The default (auto, below 50,000 texts) is exactly the K-means fit of before: nearest centroid of
    sklearn's KMeans(n_init=1) with the seed."""
    from sklearn.cluster import KMeans

    from hnm_db.mining.cluster import fit

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    fitted = fit(x, 5, "kmeans", 7)
    ref = KMeans(n_clusters=5, random_state=7, n_init=1).fit(x)
    assert np.array_equal(fitted.centroids, ref.cluster_centers_.astype(np.float32))
    assert np.array_equal(fitted.labels, nearest_centroid(x, fitted.centroids)[0])
    assert ClusterParams(ensemble="e").algorithm == "auto"


def test_agglomerative_fits_a_seeded_sample_and_assigns_the_rest_to_the_nearest_mean(monkeypatch):
    import hnm_db.mining.cluster as C

    monkeypatch.setattr(C, "AGGLOMERATIVE_FIT_MAX", 40)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    a = C.fit(x, 3, "agglomerative", 5)
    b = C.fit(x, 3, "agglomerative", 5)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.centroids, b.centroids)
    assert np.bincount(a.labels, minlength=3).sum() == 100
    sample = np.sort(np.random.default_rng(5).choice(100, size=40, replace=False))
    rest = np.setdiff1d(np.arange(100), sample)
    assert np.array_equal(a.labels[rest], nearest_centroid(x[rest], a.centroids)[0])
    for c in range(3):  # centroids are the means of the sampled members of each linkage cluster
        assert np.allclose(a.centroids[c], x[sample][a.labels[sample] == c].mean(0), atol=1e-5)


def test_agglomerative_k_above_its_fit_sample_is_rejected_before_any_work(mining_db):
    from hnm_db.mining.cluster import AGGLOMERATIVE_FIT_MAX

    before = db_digest(mining_db)
    with pytest.raises(InvalidParams, match="agglomerative clustering is fitted on at most 10,000"):
        cluster(
            mining_db.store,
            ClusterParams(ensemble=ENSEMBLE, k=AGGLOMERATIVE_FIT_MAX + 1, algorithm="agglomerative"),
        )
    assert db_digest(mining_db) == before
