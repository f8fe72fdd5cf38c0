"""The cross-encoder re-ranker: loading and scoring, training on a mining run (``training_runs``) and
evaluation against BM25 and dense first stages (``eval_results``, ``eval_scores``)."""
