"""Data shipped inside the package: the small SciFact sample that ``hnm-db demo`` builds from."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable


def sample_dir() -> Traversable:
    """The sample corpus folder in BEIR layout (corpus.jsonl, queries.jsonl, qrels/{train,test}.tsv).

    A ``Traversable``: a real folder (``pathlib.Path``) for normal installs; use
    ``importlib.resources.as_file`` where a filesystem path is required and the package may be zipped.
    """
    return resources.files("hnm_db.data") / "sample"
