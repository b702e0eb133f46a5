"""Hand-worked cases, at least one per rule of SPEC.md, through the public API."""

from __future__ import annotations

from builders import at, day, example_tuples, raw_frames

from carousel import build_training_examples


def one_shown(dt_text: str, customer: int, ranking_id: str = "r") -> tuple:
    return (dt_text, ranking_id, customer, [(500, False)])


def history_of(spark, clicks=(), add_to_carts=(), orders=(), impression_day="2025-03-10", n=5, lookback=365):
    frames = raw_frames(spark, [one_shown(impression_day, 1)], clicks, add_to_carts, orders)
    [row] = example_tuples(build_training_examples(*frames, history_length=n, lookback_days=lookback))
    return row[6], row[7]


def test_same_day_actions_are_left_out_by_partition_day_not_timestamp(spark):
    clicks = [
        ("2025-03-10", 1, 11, at("2025-03-10T09:00")),  # same day: leaks the label
        ("2025-03-10", 1, 12, at("2025-03-09T23:50")),  # late event: timestamp the day before, dt the day itself
        ("2025-03-09", 1, 13, at("2025-03-09T08:00")),
        ("2025-03-09", 1, 14, at("2025-03-10T00:10")),  # timestamp on D, partition day before D: counts
    ]
    assert history_of(spark, clicks=clicks) == ([14, 13, 0, 0, 0], [1, 1, 0, 0, 0])


def test_orders_are_cut_by_order_date(spark):
    orders = [
        (day("2025-03-10"), 1, 21, 2101, at("2025-03-09T22:00")),  # ordered on D by order_date
        (day("2025-03-09"), 1, 22, 2201, at("2025-03-09T12:00")),
    ]
    add_to_carts = [("2025-03-10", 1, 23, 2301, at("2025-03-09T21:00"))]  # dt = D: out
    assert history_of(spark, add_to_carts=add_to_carts, orders=orders) == ([22, 0, 0, 0, 0], [3, 0, 0, 0, 0])


def test_lookback_keeps_day_d_minus_365_and_drops_d_minus_366(spark):
    clicks = [
        ("2024-03-10", 1, 31, at("2024-03-10T12:00")),  # 2025-03-10 - 365 days
        ("2024-03-09", 1, 32, at("2024-03-09T12:00")),  # - 366 days
        ("2024-03-10", 1, 33, at("2024-03-09T23:00")),  # late event of D-366 landed on D-365: counts by dt
    ]
    assert history_of(spark, clicks=clicks) == ([31, 33, 0, 0, 0], [1, 1, 0, 0, 0])


def test_short_lookback_bound(spark):
    clicks = [
        ("2025-03-07", 1, 41, at("2025-03-07T12:00")),  # D - 3: kept with lookback 3
        ("2025-03-06", 1, 42, at("2025-03-06T12:00")),  # D - 4: dropped
    ]
    assert history_of(spark, clicks=clicks, lookback=3) == ([41, 0, 0, 0, 0], [1, 0, 0, 0, 0])


def test_newest_first_by_timestamp_across_days_and_types(spark):
    clicks = [("2025-03-01", 1, 51, at("2025-03-01T10:00")), ("2025-03-08", 1, 52, at("2025-03-08T10:00"))]
    add_to_carts = [("2025-03-05", 1, 53, 5301, at("2025-03-05T10:00"))]
    orders = [(day("2025-03-03"), 1, 54, 5401, at("2025-03-03T10:00"))]
    assert history_of(spark, clicks, add_to_carts, orders) == ([52, 53, 54, 51, 0], [1, 2, 3, 1, 0])


def test_ties_break_by_type_then_item_higher_first(spark):
    same_moment = at("2025-03-05T10:00")
    clicks = [("2025-03-05", 1, 7, same_moment), ("2025-03-05", 1, 8, same_moment)]
    add_to_carts = [("2025-03-05", 1, 9, 901, same_moment), ("2025-03-05", 1, 2, 201, same_moment)]
    orders = [(day("2025-03-05"), 1, 5, 501, same_moment)]
    assert history_of(spark, clicks, add_to_carts, orders, n=6) == ([5, 9, 2, 8, 7, 0], [3, 2, 2, 1, 1, 0])


def test_truncation_keeps_the_n_newest(spark):
    clicks = [(f"2025-03-0{d}", 1, 60 + d, at(f"2025-03-0{d}T10:00")) for d in range(1, 8)]
    assert history_of(spark, clicks=clicks, n=3) == ([67, 66, 65], [1, 1, 1])


def test_padding_after_real_actions(spark):
    clicks = [("2025-03-01", 1, 71, at("2025-03-01T10:00"))]
    orders = [(day("2025-03-02"), 1, 72, 7201, at("2025-03-02T10:00"))]
    assert history_of(spark, clicks=clicks, orders=orders, n=4) == ([72, 71, 0, 0], [3, 1, 0, 0])


def test_duplicates_are_kept(spark):
    click = ("2025-03-01", 1, 81, at("2025-03-01T10:00"))
    assert history_of(spark, clicks=[click, click], n=3) == ([81, 81, 0], [1, 1, 0])


def test_customer_without_history_gets_only_padding(spark):
    clicks = [("2025-03-01", 2, 91, at("2025-03-01T10:00"))]  # another customer's
    assert history_of(spark, clicks=clicks, n=3) == ([0, 0, 0], [0, 0, 0])


def test_several_customers_and_days_one_row_per_shown_item_with_position(spark):
    impressions = [
        ("2025-03-10", "a", 1, [(100, True), (101, False)]),
        ("2025-03-12", "b", 1, [(102, False)]),
        ("2025-03-11", "c", 2, [(103, False), (104, False), (105, True)]),
    ]
    clicks = [
        ("2025-03-09", 1, 11, at("2025-03-09T10:00")),
        ("2025-03-11", 1, 12, at("2025-03-11T10:00")),  # seen on the 12th only
        ("2025-03-12", 1, 13, at("2025-03-12T10:00")),  # never seen: same day as the last impression
        ("2025-03-10", 2, 21, at("2025-03-10T10:00")),
    ]
    orders = [(day("2025-03-10"), 1, 14, 1401, at("2025-03-10T11:00"))]  # seen on the 12th only
    frames = raw_frames(spark, impressions, clicks, (), orders)
    actual = example_tuples(build_training_examples(*frames, history_length=3, lookback_days=365))
    assert actual == [
        ("2025-03-10", "a", 1, 0, 100, True, [11, 0, 0], [1, 0, 0]),
        ("2025-03-10", "a", 1, 1, 101, False, [11, 0, 0], [1, 0, 0]),
        ("2025-03-11", "c", 2, 0, 103, False, [21, 0, 0], [1, 0, 0]),
        ("2025-03-11", "c", 2, 1, 104, False, [21, 0, 0], [1, 0, 0]),
        ("2025-03-11", "c", 2, 2, 105, True, [21, 0, 0], [1, 0, 0]),
        ("2025-03-12", "b", 1, 0, 102, False, [12, 14, 11], [1, 3, 1]),
    ]


def test_window_days_and_lookback_interact_per_day(spark):
    """A customer with two impression days: an action leaves the lookback between them."""
    impressions = [("2025-03-10", "a", 1, [(100, False)]), ("2025-03-14", "b", 1, [(100, False)])]
    clicks = [
        ("2025-03-05", 1, 11, at("2025-03-05T10:00")),  # seen on the 10th (lookback 5), not on the 14th
        ("2025-03-09", 1, 12, at("2025-03-09T10:00")),  # seen on both
        ("2025-03-12", 1, 13, at("2025-03-12T10:00")),  # seen on the 14th
        ("2025-03-08", 1, 14, at("2025-03-09T23:00")),  # day 8, stamped the next day: newest, seen on the 10th only
    ]
    frames = raw_frames(spark, impressions, clicks)
    actual = example_tuples(build_training_examples(*frames, history_length=2, lookback_days=5))
    assert [(r[0], r[6], r[7]) for r in actual] == [
        ("2025-03-10", [14, 12], [1, 1]),
        ("2025-03-14", [13, 12], [1, 1]),
    ]


def test_type_codes(spark):
    clicks = [("2025-03-01", 1, 1001, at("2025-03-01T10:00"))]
    add_to_carts = [("2025-03-02", 1, 1002, 100201, at("2025-03-02T10:00"))]
    orders = [(day("2025-03-03"), 1, 1003, 100301, at("2025-03-03T10:00"))]
    assert history_of(spark, clicks, add_to_carts, orders, n=4) == ([1003, 1002, 1001, 0], [3, 2, 1, 0])


def test_output_columns_and_types(spark):
    frames = raw_frames(spark, [one_shown("2025-03-10", 1)])
    examples = build_training_examples(*frames, history_length=2, lookback_days=10)
    assert [(f.name, f.dataType.simpleString()) for f in examples.schema.fields] == [
        ("dt", "string"),
        ("ranking_id", "string"),
        ("customer_id", "int"),
        ("position", "int"),
        ("item_id", "int"),
        ("is_order", "boolean"),
        ("actions", "array<int>"),
        ("action_types", "array<tinyint>"),
    ]
