"""Train/dev/test splits for queries whose judgements came without one.

Qrels keep the split they came with. Qrels ingested without a split are stored with
``split = 'unsplit'`` (the ``UNSPLIT`` constant; ``qrels.split`` is NOT NULL). ``split`` assigns each
query that has only such qrels to test, dev or train and stores the choice in
``query_split_assignments`` (``ratio`` holds the target fraction of the row's split); the
``query_splits`` view (sql/views/query_splits.sql) gives every judged query its effective split: the
source split when there is one, else the assignment, else ``'unsplit'``.

The assignment of a query is a pure function of its id and the seed: ``u = blake2b(seed, query_id)``
read as a uniform number in [0, 1); ``u < test_ratio`` is test, ``u < test_ratio + dev_ratio`` is dev,
the rest train. A hash rather than a shuffled RNG stream keeps a query's split stable when other
queries are added or removed, so a test query never drifts into training on a re-run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow as pa

from hnm_db.errors import EmptySelection, InvalidParams
from hnm_db.options import param
from hnm_db.seeding import unit_hash
from hnm_db.store import UNSPLIT, Store


@dataclass(frozen=True)
class SplitParams:
    """Target fractions of test and dev queries (train gets the rest) and the hash seed."""

    test_ratio: float = param(0.2, cli_required=True, help="Fraction of unsplit queries for test.")
    seed: int = param(0, help="Seed of the id hash.")
    dev_ratio: float = param(0.0, help="Fraction for dev.")

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**63:
            raise InvalidParams(f"seed must be >= 0 and < 2**63 (got {self.seed})")
        if not 0.0 < self.test_ratio < 1.0:
            raise InvalidParams(f"test_ratio must be > 0 and < 1 (got {self.test_ratio})")
        if not 0.0 <= self.dev_ratio < 1.0:
            raise InvalidParams(f"dev_ratio must be >= 0 and < 1 (got {self.dev_ratio})")
        if self.test_ratio + self.dev_ratio >= 1.0:
            raise InvalidParams(
                f"test_ratio + dev_ratio must be < 1 to leave training queries "
                f"(got {self.test_ratio} + {self.dev_ratio})"
            )


@dataclass(frozen=True)
class SplitSummary:
    """Queries assigned in total and per split."""

    queries: int
    train: int
    dev: int
    test: int
    seed: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def assign(query_ids: list[str], params: SplitParams) -> list[str]:
    """The split of each query id (pure)."""
    out = []
    for qid in query_ids:
        u = unit_hash(qid, params.seed)
        out.append(
            "test"
            if u < params.test_ratio
            else "dev"
            if u < params.test_ratio + params.dev_ratio
            else "train"
        )
    return out


def unsplit_queries(db: Store) -> list[str]:
    """Queries whose qrels all came without a split, in id order."""
    rows = db.execute(
        "SELECT DISTINCT query_id FROM qrels WHERE split = ? "
        "AND query_id NOT IN (SELECT query_id FROM qrels WHERE split <> ?) ORDER BY query_id",
        [UNSPLIT, UNSPLIT],
    ).fetchall()
    return [r[0] for r in rows]


def split(db: Store, params: SplitParams) -> SplitSummary:
    """Assign every unsplit query; the previous assignment is replaced in one transaction."""
    query_ids = unsplit_queries(db)
    if not query_ids:
        raise EmptySelection(
            "no queries to split: every judged query already has a split from its source "
            f"(qrels ingested without a split get split '{UNSPLIT}')"
        )
    splits = assign(query_ids, params)
    ratio = {
        "test": params.test_ratio,
        "dev": params.dev_ratio,
        "train": 1.0 - params.test_ratio - params.dev_ratio,
    }
    table = pa.table(
        {
            "query_id": pa.array(query_ids, pa.string()),
            "split": pa.array(splits, pa.string()),
            "seed": pa.array([params.seed] * len(splits), pa.int64()),
            "ratio": pa.array([ratio[s] for s in splits], pa.float64()),
        }
    )
    with db.transaction():
        with db.registered("_split_rows", table):
            db.execute("DELETE FROM query_split_assignments")
            db.execute(
                "INSERT INTO query_split_assignments (query_id, split, seed, ratio) "
                "SELECT query_id, split, seed, ratio FROM _split_rows"
            )
    return SplitSummary(
        queries=len(splits),
        train=splits.count("train"),
        dev=splits.count("dev"),
        test=splits.count("test"),
        seed=params.seed,
    )
