"""hnm_db.store.vectors: FLOAT[] columns <-> numpy through Arrow, in bounded batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from hnm_db.store.vectors import from_arrow_list, iter_vectors, read_vectors, to_arrow_list, write_vectors


def _matrix(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_arrow_round_trip_is_exact_and_float32():
    mat = _matrix(7, 5)
    arr = to_arrow_list(mat)
    assert isinstance(arr, pa.ListArray) and len(arr) == 7
    back = from_arrow_list(arr)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, mat)


def test_float64_input_is_stored_as_float32():
    mat = _matrix(3, 4).astype(np.float64)
    np.testing.assert_array_equal(from_arrow_list(to_arrow_list(mat)), mat.astype(np.float32))


def test_empty_column_gives_empty_matrix():
    assert from_arrow_list(pa.chunked_array([], type=pa.list_(pa.float32()))).shape == (0, 0)


def test_rows_of_unequal_length_are_rejected():
    with pytest.raises(ValueError, match="unequal length"):
        from_arrow_list(pa.array([[1.0, 2.0], [3.0]], type=pa.list_(pa.float32())))


def test_null_rows_are_rejected():
    with pytest.raises(ValueError, match="NULL"):
        from_arrow_list(pa.array([[1.0, 2.0], None], type=pa.list_(pa.float32())))


def test_written_vectors_read_back_with_their_keys(db):
    mat = _matrix(6, 8)
    hashes = [f"h{i}" for i in range(6)]
    n = write_vectors(db.store, "embeddings", {"model_id": "m", "role": "doc", "content_hash": hashes}, mat)
    assert n == 6
    assert db.scalar("SELECT count(DISTINCT model_id) FROM embeddings") == 1  # scalar key broadcast
    keys, back = read_vectors(db.store, "SELECT content_hash, vec FROM embeddings ORDER BY content_hash")
    assert list(keys["content_hash"]) == hashes
    np.testing.assert_array_equal(back, mat)


def test_writing_zero_rows_is_a_no_op(db):
    assert (
        write_vectors(
            db.store,
            "embeddings",
            {"model_id": "m", "role": "doc", "content_hash": []},
            np.zeros((0, 4), np.float32),
        )
        == 0
    )
    assert db.scalar("SELECT count(*) FROM embeddings") == 0


def test_key_column_of_wrong_length_is_rejected_and_nothing_written(db):
    with pytest.raises(ValueError, match="content_hash has 2 values for 3 vectors"):
        write_vectors(
            db.store,
            "embeddings",
            {"model_id": "m", "role": "doc", "content_hash": ["a", "b"]},
            _matrix(3, 4),
        )
    assert db.scalar("SELECT count(*) FROM embeddings") == 0


def test_iter_vectors_yields_bounded_batches_covering_all_rows(db):
    mat = _matrix(25, 3)
    hashes = [f"h{i:02d}" for i in range(25)]
    write_vectors(db.store, "embeddings", {"model_id": "m", "role": "doc", "content_hash": hashes}, mat)
    batches = list(
        iter_vectors(
            db.store, "SELECT content_hash, vec FROM embeddings ORDER BY content_hash", batch_rows=10
        )
    )
    assert all(len(k["content_hash"]) <= 10 for k, _ in batches)
    got = np.vstack([m for _, m in batches])
    assert [h for k, _ in batches for h in k["content_hash"]] == hashes
    np.testing.assert_array_equal(got, mat)
