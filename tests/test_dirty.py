"""Dirty input never crashes the run and never reaches a history or an example."""

from __future__ import annotations

from builders import at, day, example_tuples, raw_frames

from carousel import build_training_examples
from carousel.actions import unify_actions


def test_invalid_action_rows_are_left_out_of_histories(spark):
    good = ("2025-03-09", 1, 11, at("2025-03-09T10:00"))
    clicks = [
        good,
        (None, 1, 90, at("2025-03-09T10:00")),
        ("2025-02-30", 1, 91, at("2025-03-09T10:00")),
        ("not-a-date", 1, 92, at("2025-03-09T10:00")),
        ("2025-03-09", None, 93, at("2025-03-09T10:00")),
        ("2025-03-09", -1, 94, at("2025-03-09T10:00")),
        ("2025-03-09", 1, None, at("2025-03-09T10:00")),
        ("2025-03-09", 1, -95, at("2025-03-09T10:00")),
        ("2025-03-09", 1, 0, at("2025-03-09T10:00")),
        ("2025-03-09", 1, 96, None),
    ]
    add_to_carts = [("2025-03-08", 1, None, 1, at("2025-03-08T10:00")), ("", 1, 97, 1, at("2025-03-08T10:00"))]
    orders = [(None, 1, 98, 1, at("2025-03-07T10:00")), (day("2025-03-07"), 1, 99, 1, None)]
    impressions = [("2025-03-10", "r", 1, [(500, True)])]
    frames = raw_frames(spark, impressions, clicks, add_to_carts, orders)
    assert unify_actions(*frames[1:]).count() == 1
    assert example_tuples(build_training_examples(*frames, history_length=3)) == [
        ("2025-03-10", "r", 1, 0, 500, True, [11, 0, 0], [1, 0, 0])
    ]


def test_invalid_impression_rows_yield_no_examples(spark):
    impressions = [
        ("2025-03-10", "ok", 1, [(500, True)]),
        ("2025-03-10", "null-list", 2, None),
        ("2025-03-10", "empty-list", 3, []),
        ("2025-03-10", "null-item", 4, [(None, False), (501, False)]),
        ("2025-03-10", "null-label", 5, [(502, None)]),
        ("2025-03-10", "negative-item", 6, [(-1, False)]),
        ("bad-day", "bad-day", 7, [(503, False)]),
        ("2025-03-10", None, 8, [(504, False)]),
        ("2025-03-10", "no-customer", None, [(505, False)]),
        ("2025-03-10", "negative-customer", -9, [(506, False)]),
    ]
    frames = raw_frames(spark, impressions)
    assert example_tuples(build_training_examples(*frames, history_length=2)) == [
        ("2025-03-10", "ok", 1, 0, 500, True, [0, 0], [0, 0])
    ]
