"""K-means clusters of an ensemble's chunk vectors, with queries assigned to the nearest centroid.

Clusters serve the mining stage's cluster filter (keep only negatives from the query's or a positive's
cluster, as in the paper) and the audit's "cluster agreement". They are computed on the ensemble
vectors, whose dot product is the weighted mean of the members' cosines, so one clustering reflects
every member model at once. Each distinct chunk text (content hash) is one point, so a text repeated
in many documents does not pull a centroid towards itself.

``k="auto"`` picks k by **neighbour retention**, a rule that serves what clusters are for here (the
mining cluster filter): on a seeded sample of at most ``sample_size`` chunk vectors, every candidate k in
``auto_candidates`` (only those with 2 <= k < sample size) is fitted with the same algorithm and seed,
and its retention is the mean share of each sampled chunk's ``auto_neighbours`` (10) nearest sampled
neighbours (by ensemble similarity) that fall in its own cluster. The largest k whose retention is at
least ``auto_retention`` (2/3) wins: clusters as fine as possible while they still hold most of the
candidates a query's nearest chunk would compete with. If no candidate reaches it (tiny corpora, where
a cluster is smaller than the neighbourhood), k = 1: clusters would only cut neighbourhoods apart.
Silhouette, the textbook rule, was measured and rejected: on SciFact (minilm ensemble) it is 0.03-0.07
for every k from 2 to 128 (no cluster structure to find) and its maximum is k=2, which makes the filter
nearly a no-op; retention there (`hnm-db cluster --k auto`, 5,000-text sample) falls smoothly
0.917 / 0.804 / 0.724 / 0.655 / 0.611 / 0.591 for k = 2 / 4 / 8 / 16 / 32 / 64 and picks k=8.
On data with real topics (the test fixture: 4 topics) retention stays ~1 up to the
number of topics and drops below the bar after it. A corpus of fewer than three texts gets k = 1.

**Algorithms** (``algorithm``, recorded in ``cluster_runs.algorithm``; scikit-learn; every random
choice comes from the seed):

- ``kmeans`` (Lloyd, one init) and ``minibatch`` (MiniBatchKMeans, batches of 4,096, 3 inits): every
  chunk text and query goes to its nearest centroid. ``auto`` (the default) is ``kmeans`` up to
  50,000 chunk texts and ``minibatch`` above.
- ``gmm``: a Gaussian mixture with **diagonal** covariances (a full covariance of the 1,536-d
  minilm-l6 + minilm-l3 + mpnet-base ensemble vector would be 1.2 million parameters per component),
  initialised by K-means; chunk texts and queries go to their most probable component, whose mean is
  the stored centroid and the origin of the stored distance.
- ``agglomerative``: Ward linkage, which needs O(n^2) memory (a pairwise-distance matrix: 8 bytes x
  n^2 / 2, 400 MB at 10,000 texts). It is fitted on a seeded sample of at most
  :data:`AGGLOMERATIVE_FIT_MAX` chunk texts (all of them when there are fewer); the sampled texts keep
  their linkage cluster, and every other chunk text and every query goes to the nearest cluster mean
  (the stored centroid). So k may not exceed that sample size: asking for more is an error.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from hnm_db.errors import EmptySelection, InvalidParams
from hnm_db.models.ensemble import EnsembleInfo, check_chunk_vectors, get_ensemble
from hnm_db.options import int_or_auto, param
from hnm_db.retrieval.topk import exact_sq_dists
from hnm_db.store import Store
from hnm_db.store.vectors import read_vectors, write_vectors

ALGORITHMS = ("auto", "kmeans", "minibatch", "agglomerative", "gmm")
#: Above this many distinct chunk texts ``algorithm="auto"`` switches to MiniBatchKMeans.
MINIBATCH_ABOVE = 50_000
#: Agglomerative clustering is fitted on a seeded sample of at most this many chunk texts (O(n^2) memory).
AGGLOMERATIVE_FIT_MAX = 10_000


def nearest_centroid(
    vectors: np.ndarray, centroids: np.ndarray, block: int = 65_536
) -> tuple[np.ndarray, np.ndarray]:
    """(cluster, Euclidean distance) of each row to its nearest centroid, in bounded blocks.

    float32 products (BLAS) shortlist the centroids within twice their error bound of the best; the
    shortlist is measured exactly (float64 sum of squared differences, :func:`hnm_db.retrieval.topk.exact_sq_dists`)
    and the nearest wins, ties by lower cluster. A row's result thus depends only on the row, not on
    the block it came in, which is what lets the Ray engine assign shards with the same result.
    """
    c64 = centroids.astype(np.float64)
    c2 = (c64**2).sum(1)
    c_max = float(np.sqrt(c2.max(initial=0.0)))
    gamma = (centroids.shape[1] + 2) * 2.0**-24
    labels = np.empty(len(vectors), dtype=np.int32)
    dist = np.empty(len(vectors), dtype=np.float64)
    for s in range(0, len(vectors), block):
        x = np.ascontiguousarray(vectors[s : s + block], dtype=np.float32)
        x2 = (x.astype(np.float64) ** 2).sum(1)
        approx = x2[:, None] - 2 * (x @ centroids.T) + c2[None, :]
        slack = 8 * gamma * (np.sqrt(x2) * c_max + x2 + c_max**2)
        r, c = np.nonzero(approx <= (approx.min(axis=1) + slack)[:, None])
        d2 = exact_sq_dists(x[r], centroids[c])
        first = np.lexsort((c, d2, r))
        first = first[np.r_[True, r[first][1:] != r[first][:-1]]]
        labels[s : s + block] = c[first]
        dist[s : s + block] = np.sqrt(d2[first])
    return labels, dist


# -- the stage -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterParams:
    """What ``hnm-db cluster`` asks for; stored verbatim (sorted-key JSON) in ``cluster_runs.params``."""

    ensemble: str = param(help="Ensemble whose chunk vectors are clustered.")
    k: int | str = param(
        "auto",
        parse=int_or_auto,
        metavar="K|auto",
        help="Number of clusters, or 'auto': the largest k keeping >= 2/3 of each chunk's 10 nearest "
        "neighbours in its cluster (on a sample).",
    )
    seed: int = param(0, help="Seed of K-means (same seed, same clusters).")
    algorithm: str = param(
        "auto",
        choices=ALGORITHMS,
        help="kmeans, minibatch (MiniBatchKMeans), gmm (Gaussian mixture, diagonal covariances) or "
        "agglomerative (Ward; fitted on a seeded sample of at most 10,000 chunk texts, the rest go to the "
        "nearest cluster mean); auto is kmeans, or minibatch above 50,000 chunk texts.",
    )
    auto_candidates: tuple[int, ...] = param(
        (2, 4, 8, 16, 32, 64), python_only=True, help="The k values 'auto' chooses among."
    )
    sample_size: int = param(5000, python_only=True, help="Chunk texts 'auto' measures retention on.")
    auto_neighbours: int = param(10, python_only=True, help="Nearest neighbours 'auto' counts.")
    auto_retention: float = param(
        2 / 3, python_only=True, help="Share of neighbours 'auto' keeps in the cluster."
    )

    def __post_init__(self) -> None:
        if not self.ensemble:
            raise InvalidParams("ensemble: a name is required")
        if isinstance(self.k, str):
            if self.k != "auto":
                raise InvalidParams(f"k: must be a positive integer or 'auto', got {self.k!r}")
        elif isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise InvalidParams(f"k: must be a positive integer or 'auto', got {self.k!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidParams(f"seed: must be a non-negative integer, got {self.seed!r}")
        if self.algorithm not in ALGORITHMS:
            raise InvalidParams(f"algorithm: must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        if self.algorithm == "agglomerative" and isinstance(self.k, int) and self.k > AGGLOMERATIVE_FIT_MAX:
            raise InvalidParams(
                f"k: agglomerative clustering is fitted on at most {AGGLOMERATIVE_FIT_MAX:,} chunk texts "
                f"(O(n^2) memory), so k={self.k} is too many; use kmeans, minibatch or gmm"
            )
        if not self.auto_candidates or any(c < 2 for c in self.auto_candidates):
            raise InvalidParams("auto_candidates: need at least one k, each >= 2")
        if self.sample_size < 3:
            raise InvalidParams(f"sample_size: must be >= 3, got {self.sample_size}")
        if self.auto_neighbours < 1:
            raise InvalidParams(f"auto_neighbours: must be >= 1, got {self.auto_neighbours}")
        if not 0 < self.auto_retention <= 1:
            raise InvalidParams(f"auto_retention: must be in (0, 1], got {self.auto_retention}")


@dataclass
class ClusterSummary:
    cluster_run_id: str
    ensemble: str
    k: int
    algorithm: str
    inertia: float
    chunks: int
    queries: int
    sizes: list[int] = field(default_factory=list)
    retention: dict[int, float] | None = None  # k="auto": neighbour retention per candidate k
    seconds: float = 0.0
    reused: bool = False


def _make_model(algorithm: str, k: int, seed: int):
    from sklearn.cluster import AgglomerativeClustering, KMeans, MiniBatchKMeans
    from sklearn.mixture import GaussianMixture

    if algorithm == "minibatch":
        return MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096, n_init=3)
    if algorithm == "gmm":
        return GaussianMixture(n_components=k, covariance_type="diag", random_state=seed, n_init=1)
    if algorithm == "agglomerative":
        return AgglomerativeClustering(n_clusters=k, linkage="ward")
    return KMeans(n_clusters=k, random_state=seed, n_init=1)


def _sample_neighbours(sample: np.ndarray, m: int, block: int = 1024) -> np.ndarray:
    """(n, m) indices of each row's m most similar other rows (dot product), computed in row blocks."""
    n = len(sample)
    out = np.empty((n, m), dtype=np.int64)
    for start in range(0, n, block):
        sims = sample[start : start + block] @ sample.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        out[start : start + block] = np.argpartition(-sims, m - 1, axis=1)[:, :m]
    return out


def choose_k(vectors: np.ndarray, params: ClusterParams, algorithm: str) -> tuple[int, dict[int, float]]:
    """The auto rule of the module docstring: the largest candidate k whose clusters keep at least
    ``auto_retention`` of each sampled chunk's nearest neighbours; returns (k, retention per k)."""
    rng = np.random.default_rng(params.seed)
    n = len(vectors)
    sample = vectors[np.sort(rng.choice(n, size=min(n, params.sample_size), replace=False))]
    m = min(params.auto_neighbours, len(sample) - 1)
    candidates = [k for k in sorted(set(params.auto_candidates)) if k < len(sample)]
    if m < 1 or not candidates:
        return 1, {}
    neighbours = _sample_neighbours(np.ascontiguousarray(sample, dtype=np.float32), m)
    scores: dict[int, float] = {}
    for k in candidates:
        labels = _make_model(algorithm, k, params.seed).fit_predict(sample)
        scores[k] = float((labels[neighbours] == labels[:, None]).mean())
    passing = [k for k, r in scores.items() if r >= params.auto_retention]
    return (max(passing) if passing else 1), scores


def fit_centroids(vectors: np.ndarray, k: int, algorithm: str, seed: int) -> np.ndarray:
    """Centroids (k, dim) float32 of a seeded K-means fit; same inputs and seed give the same centroids."""
    model = _make_model(algorithm, k, seed).fit(vectors)
    return np.asarray(model.cluster_centers_, dtype=np.float32)


@dataclass
class Fitted:
    """A fitted clustering: centroids (k, dim) float32 and ``assign(vectors) -> (cluster, distance)``;
    ``labels``/``dist`` are the chunk texts' own assignment (for agglomerative, the linkage's own
    clusters on the fitted sample)."""

    centroids: np.ndarray
    labels: np.ndarray
    dist: np.ndarray
    assign: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _distance_to(vectors: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    diff = vectors.astype(np.float64) - centroids[labels].astype(np.float64)
    return np.sqrt((diff**2).sum(1))


def fit(vectors: np.ndarray, k: int, algorithm: str, seed: int) -> Fitted:
    """Fit ``algorithm`` (kmeans, minibatch, gmm, agglomerative) with k clusters; the module docstring
    says how each assigns chunk texts and queries. Same inputs and seed give the same result."""
    if algorithm in ("kmeans", "minibatch"):
        centroids = fit_centroids(vectors, k, algorithm, seed)
        assign = lambda x: nearest_centroid(x, centroids)  # noqa: E731
        return Fitted(centroids, *assign(vectors), assign)
    if algorithm == "gmm":
        model = _make_model(algorithm, k, seed).fit(vectors)
        centroids = np.asarray(model.means_, dtype=np.float32)

        def by_component(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            labels = model.predict(x).astype(np.int32)
            return labels, _distance_to(x, centroids, labels)

        return Fitted(centroids, *by_component(vectors), by_component)
    rng = np.random.default_rng(seed)
    n = len(vectors)
    sample = (
        np.sort(rng.choice(n, size=AGGLOMERATIVE_FIT_MAX, replace=False))
        if n > AGGLOMERATIVE_FIT_MAX
        else np.arange(n)
    )
    sample_labels = _make_model(algorithm, k, seed).fit_predict(vectors[sample]).astype(np.int32)
    centroids = np.stack(
        [vectors[sample[sample_labels == c]].astype(np.float64).mean(0) for c in range(k)]
    ).astype(np.float32)
    assign = lambda x: nearest_centroid(x, centroids)  # noqa: E731
    labels, _ = assign(vectors)
    labels[sample] = sample_labels
    return Fitted(centroids, labels, _distance_to(vectors, centroids, labels), assign)


def _read(db: Store, ens: EnsembleInfo, role: str) -> tuple[np.ndarray, np.ndarray]:
    if role == "doc":
        sql = """SELECT content_hash, vec FROM ensemble_vectors
                 WHERE ensemble_id = ? AND role = 'doc'
                   AND content_hash IN (SELECT content_hash FROM chunks) ORDER BY content_hash"""
    else:
        sql = """SELECT content_hash, vec FROM ensemble_vectors
                 WHERE ensemble_id = ? AND role = 'query'
                   AND content_hash IN (SELECT content_hash FROM queries) ORDER BY content_hash"""
    keys, mat = read_vectors(db, sql, [ens.ensemble_id])
    return keys.get("content_hash", np.array([], dtype=object)), mat


def _run_id(ensemble_id: str, params: ClusterParams, doc_hashes: np.ndarray, q_hashes: np.ndarray) -> str:
    """Same ensemble, parameters and texts -> same id, so a repeated ``cluster`` reuses the stored run."""
    h = hashlib.blake2b(digest_size=12)
    h.update(json.dumps([ensemble_id, asdict(params)], sort_keys=True, default=list).encode())
    for hashes in (doc_hashes, q_hashes):
        h.update("\n".join(map(str, hashes)).encode())
        h.update(b"\x00")
    return h.hexdigest()


def _stored_summary(db: Store, run_id: str, ensemble: str) -> ClusterSummary | None:
    row = db.execute(
        "SELECT k, algorithm, inertia, params FROM cluster_runs WHERE cluster_run_id = ?", [run_id]
    ).fetchone()
    if row is None:
        return None
    k, algorithm, inertia, stored = row
    sizes = [
        r[0]
        for r in db.execute(
            "SELECT size FROM cluster_centroids WHERE cluster_run_id = ? ORDER BY cluster", [run_id]
        ).fetchall()
    ]
    counts = dict(
        db.execute(
            "SELECT role, count(*) FROM cluster_assignments WHERE cluster_run_id = ? GROUP BY role", [run_id]
        ).fetchall()
    )
    ret = json.loads(stored).get("auto_retention_scores")
    return ClusterSummary(
        cluster_run_id=run_id,
        ensemble=ensemble,
        k=k,
        algorithm=algorithm,
        inertia=inertia,
        chunks=counts.get("doc", 0),
        queries=counts.get("query", 0),
        sizes=sizes,
        retention={int(kk): v for kk, v in ret.items()} if ret is not None else None,
        reused=True,
    )


#: An engine's assignment step (:func:`hnm_db.engines.ray_engine.assignment_runner`): (db, ensemble_id, role,
#: sorted content hashes, centroids) -> (cluster, distance) aligned with the hashes.
Assigner = Callable[[Store, str, str, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def cluster(db: Store, params: ClusterParams, *, assigner: Assigner | None = None) -> ClusterSummary:
    """Cluster the ensemble's chunk vectors, assign queries, and store the run (one transaction).

    The run id is derived from the ensemble, the parameters and the exact set of chunk and query texts,
    so running the same command again returns the stored run instead of recomputing it; new chunks or
    queries (or other parameters) make a new run.
    """
    started = time.perf_counter()
    ens = get_ensemble(db, params.ensemble)
    n_texts = check_chunk_vectors(db, ens)
    if n_texts == 0:
        raise EmptySelection("there are no chunks to cluster: run `hnm-db chunk` first")
    if params.k != "auto" and params.k > n_texts:
        raise InvalidParams(
            f"k: {params.k} clusters asked for but there are only {n_texts} distinct chunk texts"
        )
    doc_hashes, docs = _read(db, ens, "doc")
    q_hashes, qvecs = _read(db, ens, "query")
    run_id = _run_id(ens.ensemble_id, params, doc_hashes, q_hashes)
    stored_run = _stored_summary(db, run_id, ens.name)
    if stored_run is not None:
        return stored_run
    algorithm = params.algorithm
    if algorithm == "auto":
        algorithm = "minibatch" if len(docs) > MINIBATCH_ABOVE else "kmeans"
    if assigner is not None and algorithm not in ("kmeans", "minibatch"):
        raise InvalidParams(
            f"algorithm {algorithm!r} assigns by its own rule; --engine ray assigns by nearest centroid, "
            "so it takes kmeans or minibatch (run the others with --engine local)"
        )
    retention = None
    k = params.k
    if k == "auto":
        k, retention = choose_k(docs, params, algorithm)
    if assigner is not None:  # fitted here, assigned by the engine's workers (nearest centroid)
        centroids = fit_centroids(docs, k, algorithm, params.seed)
        labels, dist = assigner(db, ens.ensemble_id, "doc", doc_hashes, centroids)
        q_labels, q_dist = assigner(db, ens.ensemble_id, "query", q_hashes, centroids)
    else:
        fitted = fit(docs, k, algorithm, params.seed)
        centroids, labels, dist = fitted.centroids, fitted.labels, fitted.dist
        q_labels, q_dist = fitted.assign(qvecs) if len(qvecs) else (np.array([], np.int32), np.array([]))
    sizes = np.bincount(labels, minlength=k).astype(int).tolist()
    inertia = float((dist**2).sum())
    stored = asdict(params)
    stored["auto_candidates"] = list(params.auto_candidates)
    if retention is not None:
        stored["auto_retention_scores"] = {str(kk): v for kk, v in retention.items()}
    with db.transaction():
        db.execute(
            "INSERT INTO cluster_runs (cluster_run_id, ensemble_id, k, seed, algorithm, inertia, params) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [run_id, ens.ensemble_id, k, params.seed, algorithm, inertia, json.dumps(stored, sort_keys=True)],
        )
        write_vectors(
            db,
            "cluster_centroids",
            {"cluster_run_id": run_id, "cluster": list(range(k)), "size": sizes},
            centroids,
        )
        _write_assignments(db, run_id, "doc", doc_hashes, labels, dist)
        _write_assignments(db, run_id, "query", q_hashes, q_labels, q_dist)
    return ClusterSummary(
        cluster_run_id=run_id,
        ensemble=ens.name,
        k=k,
        algorithm=algorithm,
        inertia=inertia,
        chunks=len(docs),
        queries=len(qvecs),
        sizes=sizes,
        retention=retention,
        seconds=time.perf_counter() - started,
    )


def _write_assignments(
    db: Store, run_id: str, role: str, hashes: np.ndarray, labels: np.ndarray, dist: np.ndarray
) -> None:

    if len(hashes) == 0:
        return
    table = pa.table(
        {
            "cluster_run_id": pa.array([run_id] * len(hashes)),
            "role": pa.array([role] * len(hashes)),
            "content_hash": pa.array(hashes.astype(str)),
            "cluster": pa.array(labels.astype(np.int32)),
            "distance": pa.array(dist.astype(np.float64)),
        }
    )
    with db.registered("_hnm_assign", table):
        db.execute("INSERT INTO cluster_assignments SELECT * FROM _hnm_assign")


def latest_cluster_run(db: Store, ensemble_id: str) -> str | None:
    """The newest cluster run of an ensemble (mining's default for the cluster filter), or None."""
    return db.scalar(
        "SELECT cluster_run_id FROM cluster_runs WHERE ensemble_id = ? ORDER BY created_at DESC, cluster_run_id "
        "LIMIT 1",
        [ensemble_id],
    )


def cluster_sizes(db: Store, cluster_run_id: str):
    """Cluster sizes of a run as a polars frame (cluster, size, queries)."""
    return db.sql(
        """
        SELECT c.cluster, c.size, count(a.content_hash) AS queries
        FROM cluster_centroids c
        LEFT JOIN cluster_assignments a
          ON a.cluster_run_id = c.cluster_run_id AND a.cluster = c.cluster AND a.role = 'query'
        WHERE c.cluster_run_id = ?
        GROUP BY c.cluster, c.size ORDER BY c.cluster
        """,
        [cluster_run_id],
    )
