"""The seeded choices: one query hash for splits and hold-outs, one random draw of distinct items."""

import numpy as np

from hnm_db.seeding import (
    SPLIT_STREAM,
    TRAIN_DEV_STREAM,
    TUNE_DEV_STREAM,
    draw_distinct,
    held_out,
    query_rng,
    unit_hash,
)
from hnm_db.sources.split import SplitParams, assign

IDS = [f"q{i}" for i in range(2000)]


def test_a_hold_out_depends_only_on_the_seed_the_stream_and_the_id():
    dev = held_out(IDS, 0.1, 0, TRAIN_DEV_STREAM)
    assert 150 <= len(dev) <= 250
    assert held_out(IDS[:500], 0.1, 0, TRAIN_DEV_STREAM) == {q for q in dev if q in set(IDS[:500])}
    assert held_out(reversed(IDS), 0.1, 0, TRAIN_DEV_STREAM) == dev
    assert held_out(IDS, 0.1, 1, TRAIN_DEV_STREAM) != dev
    assert held_out(IDS, 0.1, 0, TUNE_DEV_STREAM) != dev
    assert held_out(IDS, 0.0, 0, TRAIN_DEV_STREAM) == set()
    assert held_out(IDS, 1.0, 0, TRAIN_DEV_STREAM) == set(IDS)


def test_at_least_takes_the_lowest_hashes_when_the_ratio_picks_too_few():
    few = IDS[:3]
    chosen = held_out(few, 1e-9, 0, TUNE_DEV_STREAM, at_least=1)
    assert chosen == {min(few, key=lambda q: unit_hash(q, 0, TUNE_DEV_STREAM))}


def test_train_dev_queries_are_drawn_independently_of_the_split_of_the_same_seed():
    """With one hash for both, the dev draw of seed 0 would take u < 0.1 from queries the split of seed 0
    left in train (u >= 0.3): none. Each use has its own stream."""
    splits = assign(IDS, SplitParams(test_ratio=0.2, dev_ratio=0.1, seed=0))
    train = [q for q, s in zip(IDS, splits, strict=True) if s == "train"]
    assert all(unit_hash(q, 0, SPLIT_STREAM) >= 0.3 for q in train)
    dev = held_out(train, 0.1, 0, TRAIN_DEV_STREAM)
    assert 0.07 < len(dev) / len(train) < 0.13


def test_draw_distinct_without_a_filter_is_a_draw_without_replacement():
    picked = draw_distinct(query_rng(3, "q1", 0), 50, 10)
    assert len(set(picked)) == 10 and all(0 <= i < 50 for i in picked)
    assert picked == draw_distinct(query_rng(3, "q1", 0), 50, 10)
    assert picked != draw_distinct(query_rng(3, "q1", 1), 50, 10)
    assert sorted(draw_distinct(np.random.default_rng(0), 4, 10)) == [0, 1, 2, 3]


def test_draw_distinct_with_a_filter_keeps_only_accepted_new_items():
    picked = draw_distinct(np.random.default_rng(0), 100, 20, lambda i: i % 2 == 0)
    assert len(picked) == len(set(picked)) == 20 and all(i % 2 == 0 for i in picked)
    assert draw_distinct(np.random.default_rng(0), 100, 5, lambda i: False) == []
    assert draw_distinct(np.random.default_rng(0), 0, 5, lambda i: True) == []
