"""The Spark build against the plain-Python reference, over many random seeds and settings."""

from __future__ import annotations

import random

import pytest
from builders import example_tuples, raw_frames
from random_raw import random_raw_over_seeds
from reference import reference_examples

from carousel import build_training_examples

SEEDS = range(1, 41)


@pytest.fixture(scope="module")
def raw_rows():
    return random_raw_over_seeds(SEEDS)


@pytest.mark.parametrize(
    ("history_length", "lookback_days"),
    [(4, 5), (7, 2), (1, 30), (1000, 365)],
)
def test_matches_reference_over_many_seeds(spark, raw_rows, history_length, lookback_days):
    expected = reference_examples(*raw_rows, history_length=history_length, lookback_days=lookback_days)
    built = build_training_examples(
        *raw_frames(spark, *raw_rows), history_length=history_length, lookback_days=lookback_days
    )
    actual = example_tuples(built)
    assert len(expected) > 100 * len(SEEDS)  # a few hundred impressions per seed
    assert actual == sorted(expected, key=lambda r: (r[0], r[1], r[2], r[3]))


def test_reference_data_exercises_the_hard_cases(raw_rows):
    """Guards the generator: the comparison above is only as good as the cases it meets."""
    impressions, clicks, add_to_carts, orders = raw_rows
    examples = reference_examples(*raw_rows, history_length=4, lookback_days=5)
    assert any(all(item != 0 for item in e[6]) for e in examples)  # truncated
    assert any(0 < e[6].count(0) < 4 for e in examples)  # padded
    assert any(e[6] == [0, 0, 0, 0] for e in examples)  # empty history
    late = [c for c in clicks if c[0] and c[3] and len(c[0]) == 10 and c[0] > c[3].date().isoformat()]
    assert len(late) > 100
    moments = [c[3] for c in clicks if c[3] is not None]
    assert len(moments) - len(set(moments)) > 1000  # timestamp ties
    assert any(row[3] is None for row in impressions) and any(row[3] == [] for row in impressions)


def _examples_under(spark, raw_rows, conf: dict[str, str], shuffle_input: bool = False):
    previous = {key: spark.conf.get(key) for key in conf}
    rows = [list(bucket) for bucket in raw_rows]
    if shuffle_input:
        rng = random.Random(99)
        for bucket in rows:
            rng.shuffle(bucket)
    try:
        for key, value in conf.items():
            spark.conf.set(key, value)
        frames = [frame.repartition(3) if shuffle_input else frame for frame in raw_frames(spark, *rows)]
        return example_tuples(build_training_examples(*frames, history_length=4, lookback_days=5))
    finally:
        for key, value in previous.items():
            spark.conf.set(key, value)


@pytest.mark.parametrize(
    ("conf", "shuffle_input"),
    [
        ({"spark.sql.session.timeZone": "America/Los_Angeles"}, False),
        ({"spark.sql.session.timeZone": "Asia/Kolkata"}, False),
        ({"spark.sql.shuffle.partitions": "1"}, False),
        ({"spark.sql.shuffle.partitions": "7", "spark.sql.adaptive.enabled": "false"}, False),
        ({}, True),
    ],
    ids=["tz-los-angeles", "tz-kolkata", "one-partition", "seven-partitions-no-aqe", "shuffled-input"],
)
def test_result_does_not_depend_on_time_zone_partitions_or_input_order(spark, raw_rows, conf, shuffle_input):
    baseline = _examples_under(spark, raw_rows, {})
    assert _examples_under(spark, raw_rows, conf, shuffle_input) == baseline


@pytest.mark.parametrize("forced", ["prefix filter", "whole-array filter"])
def test_every_way_of_cutting_alone_matches_the_reference(spark, raw_rows, monkeypatch, forced):
    """The one-slice cut is checked per customer-day; its fallbacks must be exact on their own too."""
    from pyspark.sql import functions as F

    import carousel.history as history

    monkeypatch.setattr(history, "_in_order", lambda: F.lit(None).cast(history.T.ArrayType(history.ACTION_STRUCT)))
    if forced == "whole-array filter":
        monkeypatch.setattr(history, "_SEES_ENOUGH_IN_PREFIX", False)
    expected = reference_examples(*raw_rows, history_length=4, lookback_days=5)
    built = build_training_examples(*raw_frames(spark, *raw_rows), history_length=4, lookback_days=5)
    assert example_tuples(built) == sorted(expected, key=lambda r: (r[0], r[1], r[2], r[3]))
