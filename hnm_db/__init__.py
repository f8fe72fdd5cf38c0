"""hnm-db: an embedded, SQL-backed dataset builder for training retrieval re-rankers.

``hnm_db.open(path)`` returns a :class:`Database`; its methods mirror the ``hnm-db`` commands.
"""

from __future__ import annotations

__version__ = "0.1.0"

from hnm_db.db import Database, open  # noqa: E402,A004
from hnm_db.errors import HnmError  # noqa: E402

__all__ = ["Database", "HnmError", "__version__", "open"]
