"""Moving vectors between DuckDB ``FLOAT[]`` columns and numpy in bounded batches.

Vectors never travel as Python lists of floats: reads go through Arrow (a list column's flat values
reshaped to ``(n, dim)``), writes register an Arrow table built from the numpy buffer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from hnm_db.store.connection import Store


def to_arrow_list(matrix: np.ndarray) -> pa.ListArray:
    """A float32 (n, dim) matrix as an Arrow list<float> array without per-row Python objects."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    n, dim = matrix.shape
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1)))


def from_arrow_list(column: pa.ChunkedArray | pa.ListArray) -> np.ndarray:
    """An Arrow list<float> column of equal-length rows as a float32 (n, dim) matrix."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    n = len(column)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    if column.null_count:
        raise ValueError("vector column has NULL rows")
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if flat.size % n:
        raise ValueError("vectors of unequal length in one column")
    return flat.reshape(n, flat.size // n)


def write_vectors(
    db: Store,
    table: str,
    key_columns: dict[str, Sequence[Any] | Any],
    matrix: np.ndarray,
    *,
    vec_column: str = "vec",
) -> int:
    """Insert rows (keys..., vec) into ``table``; scalar keys are broadcast to every row.

    ``table`` and column names come from code, never from users. Returns the number of rows written.
    """
    n = matrix.shape[0]
    if n == 0:
        return 0
    cols = {}
    for name, value in key_columns.items():
        if isinstance(value, (str, int, float)) or value is None:
            cols[name] = pa.array([value] * n)
        else:
            if len(value) != n:
                raise ValueError(f"column {name} has {len(value)} values for {n} vectors")
            cols[name] = pa.array(value)
    cols[vec_column] = to_arrow_list(matrix)
    batch = pa.table(cols)
    names = ", ".join(cols)
    with db.registered("_hnm_vec_batch", batch):
        db.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _hnm_vec_batch")
    return n


def read_vectors(
    db: Store,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    vec_column: str = "vec",
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run ``sql`` (selecting ``vec_column`` and any key columns) and return (keys, matrix).

    keys maps each other column to a numpy array aligned with the matrix rows.
    """
    table = db.arrow(sql, params or [])
    keys = {
        name: table.column(name).to_numpy(zero_copy_only=False)
        for name in table.column_names
        if name != vec_column
    }
    return keys, from_arrow_list(table.column(vec_column))


def iter_vectors(
    db: Store,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    batch_rows: int = 50_000,
    vec_column: str = "vec",
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Like :func:`read_vectors` but yields bounded batches, for corpora that do not fit at once."""
    reader = db.arrow_batches(sql, params or [], batch_rows=batch_rows)
    for batch in reader:
        keys = {
            name: batch.column(name).to_numpy(zero_copy_only=False)
            for name in batch.schema.names
            if name != vec_column
        }
        yield keys, from_arrow_list(batch.column(vec_column))


def vectors_by_hash(
    db: Store, table: str, owner_column: str, owner: str, role: str, hashes: np.ndarray
) -> tuple[np.ndarray, int]:
    """Vectors of ``table`` rows (owner, role, hash) aligned with ``hashes`` (duplicates allowed).

    Returns (matrix, number of distinct hashes without a vector); when some are missing the matrix is
    empty and the caller raises the error that names what to run. ``table``/``owner_column`` come from code.
    """
    uniq, inverse = np.unique(hashes.astype(str), return_inverse=True)
    with db.registered("_hnm_want", pa.table({"content_hash": pa.array(uniq, pa.string())})):
        _, mat = read_vectors(
            db,
            f"SELECT t.content_hash, t.vec FROM {table} t JOIN _hnm_want w USING (content_hash) "
            f"WHERE t.{owner_column} = ? AND t.role = ? ORDER BY t.content_hash",
            [owner, role],
        )
    if len(mat) != len(uniq):
        return np.zeros((0, 0), np.float32), len(uniq) - len(mat)
    return mat[inverse], 0
