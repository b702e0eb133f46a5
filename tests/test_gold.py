"""The packed GPU layout holds exactly the public API's examples, one history per customer-day."""

from __future__ import annotations

from builders import at, example_tuples, raw_frames

from carousel import HistoryConfig, build_training_examples, contract
from carousel.actions import unify_actions
from carousel.examples import explode_impressions
from carousel.gold import pack_training_examples, unpack_training_examples
from carousel.history import build_histories, customer_days

IMPRESSIONS = [
    ("2025-03-10", "b", 1, [(100, True), (101, False)]),
    ("2025-03-10", "a", 1, [(102, False)]),  # a second ranking for the same customer-day
    ("2025-03-11", "c", 2, [(103, False)]),
]
CLICKS = [("2025-03-09", 1, 11, at("2025-03-09T10:00")), ("2025-03-10", 2, 21, at("2025-03-10T10:00"))]


def packed_and_frames(spark):
    frames = raw_frames(spark, IMPRESSIONS, CLICKS)
    impressions, clicks, add_to_carts, orders = frames
    histories = build_histories(
        unify_actions(clicks, add_to_carts, orders), customer_days(impressions), HistoryConfig(3, 30)
    )
    return pack_training_examples(explode_impressions(impressions), histories), frames


def test_one_row_per_customer_day_with_aligned_shown_arrays(spark):
    packed, _ = packed_and_frames(spark)
    rows = sorted(tuple(row) for row in packed.collect())
    assert rows == [
        ("2025-03-10", 1, [11, 0, 0], [1, 0, 0], ["a", "b", "b"], [0, 0, 1], [102, 100, 101], [False, True, False]),
        ("2025-03-11", 2, [21, 0, 0], [1, 0, 0], ["c"], [0], [103], [False]),
    ]


def test_unpacked_equals_the_public_api(spark):
    packed, frames = packed_and_frames(spark)
    expected = example_tuples(build_training_examples(*frames, history_length=3, lookback_days=30))
    assert example_tuples(unpack_training_examples(packed)) == expected
    assert len(expected) == 4


def test_unpacked_rows_have_the_contracts_per_impression_columns(spark):
    packed, _ = packed_and_frames(spark)
    unpacked = unpack_training_examples(packed)
    columns = [(field.name, field.dataType.simpleString()) for field in unpacked.schema]
    assert columns == list(contract.TRAINING_EXAMPLES.types.items())
