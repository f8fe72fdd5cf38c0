"""hnm-db: an embedded, SQL-backed dataset builder for training retrieval re-rankers.

``hnm_db.open(path)`` returns a :class:`Database`; its methods mirror the ``hnm-db`` commands.
"""

from __future__ import annotations

from hnm_db._version import __version__
from hnm_db.db import Database, open  # noqa: A004
from hnm_db.errors import HnmError

__all__ = ["Database", "HnmError", "__version__", "open"]
