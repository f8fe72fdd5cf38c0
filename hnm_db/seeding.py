"""Every seeded choice of hnm-db: the query hash behind splits and hold-outs, and the random draws.

- :func:`unit_hash` maps (query id, seed, stream) to a uniform number in [0, 1). ``hnm-db split`` cuts it
  into test/dev/train; :func:`held_out` keeps the queries below a ratio (the dev queries of ``train`` and
  of ``tune``). A query's fate depends on its id and the seed only, never on the other queries, the
  method that mined them or the order they arrive in; each use has its own ``stream``, so the dev
  queries of a training run are not the lowest hashes of the split that already took the test ones.
- :func:`query_rng` is the Generator of one query (or pair key) in one run, and :func:`draw_distinct`
  the one random draw of distinct items from it: the random baseline, the random mix of a hard run,
  random sampling inside the mining window and the random (easy) negatives of training all use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import numpy as np

#: Streams of :func:`unit_hash`: one per use, so two uses of one seed draw independently.
SPLIT_STREAM = ""
TRAIN_DEV_STREAM = "train-dev"
TUNE_DEV_STREAM = "tune-dev"


def unit_hash(query_id: str, seed: int, stream: str = SPLIT_STREAM) -> float:
    """A uniform number in [0, 1) that depends only on the query id, the seed and the stream."""
    key = f"{seed}\x1f{query_id}" if stream == SPLIT_STREAM else f"{seed}\x1f{stream}\x1f{query_id}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def held_out(
    query_ids: Iterable[str], ratio: float, seed: int, stream: str, *, at_least: int = 0
) -> set[str]:
    """The queries whose :func:`unit_hash` falls below ``ratio`` (about that share of them); when fewer
    than ``at_least`` do, the ``at_least`` with the lowest hashes."""
    if ratio <= 0:
        return set()
    hashed = sorted((unit_hash(q, seed, stream), q) for q in set(query_ids))
    chosen = {q for u, q in hashed if u < ratio}
    if len(chosen) < at_least:
        chosen = {q for _, q in hashed[:at_least]}
    return chosen


def query_key(query_id: str) -> int:
    """A stable 64-bit integer for a query id or pair key (part of per-query random seeds)."""
    return int.from_bytes(hashlib.blake2b(query_id.encode("utf-8"), digest_size=8).digest(), "little")


def query_rng(seed: int, query_id: str, stream: int) -> np.random.Generator:
    """The Generator of one query in one run; ``stream`` separates independent uses (draw, sampling)."""
    return np.random.default_rng([seed, query_key(query_id), stream])


def draw_distinct(
    rng: np.random.Generator, n: int, k: int, accept: Callable[[int], bool] | None = None
) -> list[int]:
    """Up to ``k`` distinct item positions in ``range(n)``, uniformly at random.

    Without ``accept``, a draw without replacement (``Generator.choice``). With it, items are drawn one
    at a time and kept when ``accept(i)`` holds and ``i`` is new, for at most ``100 * k`` tries: the
    excluded items (a query's judged documents, texts already in a group) are few against the corpus,
    so this costs k draws where building the allowed set would cost n.
    """
    if accept is None:
        return rng.choice(n, size=min(k, n), replace=False).tolist()
    out: list[int] = []
    seen: set[int] = set()
    for _ in range(100 * max(k, 1)):
        if len(out) == k or n == 0:
            break
        i = int(rng.integers(0, n))
        if i not in seen and accept(i):
            out.append(i)
            seen.add(i)
    return out
