"""Hard-negative mining: parameters, the pure candidate steps, scoring (ensemble, BM25 and random
baselines), triplet rows (``mining_runs``, ``triplets``, ``mining_run_sources``), K-means clustering
(``cluster_runs``, ``cluster_assignments``, ``cluster_centroids``) and cross-encoder denoising of a run."""
