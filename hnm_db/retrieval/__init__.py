"""Pure ranking helpers, no tables: the one exact top-k, BM25, the hybrid (dense + min-max BM25) scorer
and the ranking metrics."""
