"""Embedding models: the registry and built-ins (``models``), embedding (``embeddings``), ensembles
(``ensembles``, ``ensemble_vectors``) and their tuning on dev queries (``ensemble_tunings``)."""
