"""Days anywhere in Spark's date range, under ANSI on and off: kept where the rules allow, never a crash.

Placeholder days (1900-01-01, 9999-12-31), typos far in the future (2052-06-09 for 2025-06-09)
and the range's own ends (0001-01-01) once made the late-event rule overflow 32-bit seconds.
"""

from __future__ import annotations

import datetime as dt

import pytest
from builders import at, day, example_tuples, raw_frames

from carousel import build_training_examples
from carousel.quality import keep_valid, quarantine_rows

UTC = dt.timezone.utc
LAST_INSTANT = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.fixture(params=["true", "false"], ids=["ansi", "no-ansi"])
def ansi(spark, request):
    before = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", request.param)
    yield request.param
    spark.conf.set("spark.sql.ansi.enabled", before)


def test_far_days_are_kept_and_used_where_the_rules_allow(spark, ansi):
    impressions = [
        ("9999-12-31", "last", 1, [(500, True)]),
        ("1900-01-02", "placeholder", 2, [(501, False)]),
        ("0001-01-02", "first", 3, [(502, False)]),
        ("2052-06-10", "typo", 4, [(503, True)]),
    ]
    clicks = [
        ("9999-12-30", 1, 11, dt.datetime(9999, 12, 30, 10, tzinfo=UTC)),
        ("9999-12-31", 1, 12, LAST_INSTANT),  # the impression's own day: not in its history
        ("9999-12-30", 1, 13, LAST_INSTANT),  # a late event of the day before, at the last instant
        ("1900-01-01", 2, 21, at("1900-01-01T10:00")),
        ("0001-01-01", 3, 31, dt.datetime(1, 1, 1, tzinfo=UTC)),
        ("2052-06-09", 4, 41, at("2052-06-09T12:00")),
        ("2025-06-09", 4, 42, at("2025-06-09T12:00")),  # more than 365 days before 2052-06-10
    ]
    orders = [(day("9999-12-29"), 1, 14, 1401, dt.datetime(9999, 12, 29, 9, tzinfo=UTC))]
    frames = raw_frames(spark, impressions, clicks, (), orders)
    assert example_tuples(build_training_examples(*frames, history_length=3)) == [
        ("0001-01-02", "first", 3, 0, 502, False, [31, 0, 0], [1, 0, 0]),
        ("1900-01-02", "placeholder", 2, 0, 501, False, [21, 0, 0], [1, 0, 0]),
        ("2052-06-10", "typo", 4, 0, 503, True, [41, 0, 0], [1, 0, 0]),
        ("9999-12-31", "last", 1, 0, 500, True, [13, 11, 14], [1, 1, 3]),
    ]


def test_the_late_event_rule_holds_at_the_ends_of_the_range(spark, ansi):
    clicks = [
        ("9999-12-31", 1, 1, LAST_INSTANT),
        ("9999-12-30", 1, 2, LAST_INSTANT),  # within the end of the next day
        ("9999-12-29", 1, 3, LAST_INSTANT),  # two days after its day: too late
        ("0001-01-01", 1, 4, dt.datetime(1, 1, 2, 23, 59, 59, 999999, tzinfo=UTC)),
        ("0001-01-01", 1, 5, dt.datetime(1, 1, 3, tzinfo=UTC)),  # too late
        ("2052-06-09", 1, 6, at("2052-06-11T00:00")),  # too late, past 2038's 32-bit seconds
    ]
    frame = raw_frames(spark, clicks=clicks)[1]
    assert sorted(row.item_id for row in keep_valid(frame, "clicks").collect()) == [1, 2, 4]
    quarantined = {row.item_id: list(row.broken_rules) for row in quarantine_rows(frame, "clicks").collect()}
    assert quarantined == {item: ["click_time_by_end_of_next_day"] for item in (3, 5, 6)}


def test_lookback_over_the_whole_date_range(spark, ansi):
    clicks = [("0001-01-01", 1, 11, dt.datetime(1, 1, 1, 12, tzinfo=UTC))]
    frames = raw_frames(spark, [("9999-12-31", "r", 1, [(500, True)]), ("0001-01-01", "s", 1, [(501, True)])], clicks)
    examples = build_training_examples(*frames, history_length=2, lookback_days=3_652_059)
    assert [(row[0], row[6], row[7]) for row in example_tuples(examples)] == [
        ("0001-01-01", [0, 0], [0, 0]),
        ("9999-12-31", [11, 0], [1, 0]),
    ]


def test_each_way_of_cutting_a_history_gives_the_rules_result(spark):
    """One customer, impression days 03-08 and 03-10, lookback 3; each day takes another way.

    Candidates newest first [day]: a [03-09] 03-09T12, c [03-08] 03-08T12, q [03-07] 03-07T23:30,
    p [03-08] 03-07T23:00 (a late event), d [03-06] 03-06T12, e [03-05] 03-05T12.
    - 03-08 sees days [03-05, 03-08): q, d, e. Its k = 3 too-new actions a, c, p are not the three
      newest (q is among them), so the filter over the first k + N candidates finds them.
    - 03-10 sees days [03-07, 03-10): a, c, q, p; d and e are too old but come last: one slice.
    """
    clicks = [
        ("2025-03-09", 1, 1, at("2025-03-09T12:00")),
        ("2025-03-08", 1, 2, at("2025-03-07T23:00")),
        ("2025-03-08", 1, 3, at("2025-03-08T12:00")),
        ("2025-03-07", 1, 4, at("2025-03-07T23:30")),
        ("2025-03-06", 1, 5, at("2025-03-06T12:00")),
        ("2025-03-05", 1, 6, at("2025-03-05T12:00")),
    ]
    impressions = [("2025-03-08", "r", 1, [(500, False)]), ("2025-03-10", "s", 1, [(501, True)])]
    frames = raw_frames(spark, impressions, clicks)
    two = example_tuples(build_training_examples(*frames, history_length=2, lookback_days=3))
    assert [(row[0], row[6]) for row in two] == [("2025-03-08", [4, 5]), ("2025-03-10", [1, 3])]
    three = example_tuples(build_training_examples(*frames, history_length=3, lookback_days=3))
    assert [(row[0], row[6]) for row in three] == [("2025-03-08", [4, 5, 6]), ("2025-03-10", [1, 3, 4])]
    five = example_tuples(build_training_examples(*frames, history_length=5, lookback_days=3))
    assert [(row[0], row[6]) for row in five] == [("2025-03-08", [4, 5, 6, 0, 0]), ("2025-03-10", [1, 3, 4, 2, 0])]


def test_an_old_action_among_the_newest_needs_the_whole_array(spark):
    """Impression days 03-08 and 03-10, N = 2, lookback 2: 03-10 sees days [03-08, 03-10).

    Newest first: x [03-07] 03-08T12 (too old for 03-10, landed late), y [03-09] 03-08T10,
    z [03-08] 03-01T00 (an early timestamp). 03-10's first k + N = 2 candidates x, y hold one
    seen action; it sees two (y, z), so only the whole array gives y, z. 03-08 sees [03-06, 03-08): x.
    """
    clicks = [
        ("2025-03-07", 1, 7, at("2025-03-08T12:00")),
        ("2025-03-09", 1, 8, at("2025-03-08T10:00")),
        ("2025-03-08", 1, 9, at("2025-03-01T00:00")),
    ]
    impressions = [("2025-03-08", "r", 1, [(500, False)]), ("2025-03-10", "s", 1, [(501, True)])]
    frames = raw_frames(spark, impressions, clicks)
    examples = example_tuples(build_training_examples(*frames, history_length=2, lookback_days=2))
    assert [(row[0], row[6], row[7]) for row in examples] == [
        ("2025-03-08", [7, 0], [1, 0]),
        ("2025-03-10", [8, 9], [1, 1]),
    ]
