"""The store, the bottom layer: the DuckDB file and what every stage shares in it.

- :mod:`~hnm_db.store.connection`: :class:`Store` (open, migrate, views, transactions, the read-only
  guard of ``hnm-db sql``);
- :mod:`~hnm_db.store.runs`: the one qrels read, the mining-run record and the one lookup by name;
- :mod:`~hnm_db.store.files`: the one atomic publish of a finished folder or file;
- :mod:`~hnm_db.store.vectors`: FLOAT[] columns to numpy and back, in bounded batches.
"""

from hnm_db.store.connection import DEFAULT_PATH, JSON_FIELD, UNSPLIT, Store, schema_target, view_order
from hnm_db.store.files import EXISTING, publish
from hnm_db.store.runs import RunRecord, effective_qrels, existing_run_id, resolve_runs, run_id_of, run_record

__all__ = [
    "DEFAULT_PATH",
    "EXISTING",
    "JSON_FIELD",
    "UNSPLIT",
    "RunRecord",
    "Store",
    "effective_qrels",
    "existing_run_id",
    "publish",
    "resolve_runs",
    "run_id_of",
    "run_record",
    "schema_target",
    "view_order",
]
