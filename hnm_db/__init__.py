"""hnm-db: an embedded, SQL-backed dataset builder for training retrieval re-rankers.

``hnm_db.open(path)`` returns a :class:`Database`; its methods mirror the ``hnm-db`` commands and take
a ``*Params`` object (exported here, with the summaries they return) or its fields.

Modules import what they use at module level, except torch, sentence-transformers, transformers,
datasets, onnx and the optional ray, trafilatura, pypdf and matplotlib, imported by the functions that
need them: on the 2-core machine ``import sentence_transformers`` takes 11.9 s, ``torch`` 2.3 s and
``datasets`` 1.4 s, which every ``hnm-db sql`` would pay (``import hnm_db.cli`` takes 3.2 s).
"""

from __future__ import annotations

from hnm_db import errors, params
from hnm_db._version import __version__
from hnm_db.db import Database, open  # noqa: A004
from hnm_db.errors import *  # noqa: F403 - every error type
from hnm_db.params import *  # noqa: F403 - every *Params and summary type

__all__ = ["Database", "__version__", "open", *errors.__all__, *params.__all__]
