"""The incremental daily state gives exactly the histories of `build_histories`, day after day."""

from __future__ import annotations

import datetime as dt
from functools import reduce

import pytest
from builders import at, day, raw_frames
from pyspark.errors import SparkRuntimeException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from random_raw import FIRST_DAY, HISTORY_DAYS, WINDOW_DAYS, random_raw_over_seeds
from reference import reference_actions, reference_history

from carousel.actions import unify_actions
from carousel.config import HistoryConfig
from carousel.history import build_histories, customer_days
from carousel.incremental import STATE_COLUMNS, advance_state, histories_from_state, initial_state

SEEDS = range(1, 11)
WINDOW = [FIRST_DAY + dt.timedelta(days=HISTORY_DAYS - WINDOW_DAYS + offset) for offset in range(7)]  # of 9 days
CONFIGS = [HistoryConfig(history_length=5, lookback_days=6), HistoryConfig(history_length=3, lookback_days=4)]


def _history_rows(histories) -> list[tuple]:
    rows = [(r.dt, r.customer_id, list(r.actions), list(r.action_types)) for r in histories.collect()]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _state_items(state) -> dict[int, tuple[dt.date, list[int]]]:
    return {r.customer_id: (r.as_of, [a.item_id for a in r.actions]) for r in state.collect()}


@pytest.fixture(scope="module")
def raw_rows():
    return random_raw_over_seeds(SEEDS)


@pytest.fixture(scope="module")
def actions_and_days(spark, raw_rows):
    impressions, clicks, add_to_carts, orders = raw_frames(spark, *raw_rows)
    days = customer_days(impressions).where(F.col("dt").isin([d.isoformat() for d in WINDOW]))
    return unify_actions(clicks, add_to_carts, orders).localCheckpoint(), days.localCheckpoint()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"N{c.history_length}-L{c.lookback_days}")
def test_daily_state_matches_build_histories(actions_and_days, config):
    """Initial state on the first window day, then one advance per day; every day equal to the full build."""
    actions, days = actions_and_days
    expected_frame = build_histories(actions, days, config)
    state = initial_state(actions, WINDOW[0].isoformat(), config).localCheckpoint()
    states, histories = [], []
    for current in WINDOW:
        states.append(state)
        histories.append(histories_from_state(state, days.where(F.col("dt") == current.isoformat()), config))
        state = advance_state(state, actions, current.isoformat(), config).localCheckpoint()
    all_histories = reduce(DataFrame.unionByName, histories)
    expected = _history_rows(expected_frame)
    assert all_histories.dtypes == expected_frame.dtypes
    assert _history_rows(all_histories) == expected
    assert {row[0] for row in expected} == {window_day.isoformat() for window_day in WINDOW}
    assert len(expected) > 50 * len(SEEDS)
    largest_state = reduce(DataFrame.unionByName, states).agg(F.max(F.size("actions"))).first()[0]
    assert largest_state > config.history_length  # the pruning rule kept actions beyond the first N


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"N{c.history_length}-L{c.lookback_days}")
def test_random_data_exercises_the_hard_cases(raw_rows, config):
    """Guards the data of the test above: a state of only the N newest actions would fail on it."""
    impressions, clicks, add_to_carts, orders = raw_rows
    per_customer = reference_actions(clicks, add_to_carts, orders)
    impression_days = {(row[0], row[2]) for row in impressions}
    length, lookback = config.history_length, config.lookback_days
    naive_wrong = bound_cut_full = 0
    for customer, actions in per_customer.items():
        newest = sorted(actions, reverse=True)  # (timestamp, type, item, day): the spec's order
        naive = [a for a in newest if WINDOW[0] - dt.timedelta(days=lookback) <= a[3] < WINDOW[0]][:length]
        for current in WINDOW:
            if (current.isoformat(), customer) in impression_days:
                expected = reference_history(actions, current, length, lookback)
                items = [a[2] for a in naive]
                naive_wrong += items + [0] * (length - len(items)) != expected[0]
                unbounded = reference_history(actions, current, length, 10_000)
                bound_cut_full += unbounded != expected and 0 not in unbounded[0]
            earliest = current + dt.timedelta(days=1 - lookback)
            kept = naive + [a for a in newest if a[3] == current]
            naive = sorted((a for a in kept if a[3] >= earliest), reverse=True)[:length]
    assert naive_wrong > 2
    assert bound_cut_full > 100


def test_late_event_at_the_bound_by_hand(spark):
    """N=2, L=3; item 13 is a late event: timestamp Jan 6, landed Jan 9, older than items 11 and 12.

    Jan 10 sees [12, 11]. On Jan 11 item 11 (day Jan 7) leaves the lookback and the late item 13
    comes back: [12, 13]. A state of only the 2 newest actions lost it on Jan 10 and shows [12, 0].
    Item 14 (day Jan 7, older than 11 and 12, both of day >= Jan 7) can never come back: pruned.
    """
    clicks = [
        ("2025-01-07", 1, 11, at("2025-01-07T10:00")),
        ("2025-01-08", 1, 12, at("2025-01-08T10:00")),
        ("2025-01-07", 1, 14, at("2025-01-05T09:00")),
    ]
    add_to_carts = [("2025-01-09", 1, 13, 4, at("2025-01-06T09:00"))]
    impressions = [(f"2025-01-{d}", f"r{d}", 1, [(99, False)]) for d in (10, 11, 12, 13)]
    impression_frame, click_frame, cart_frame, order_frame = raw_frames(spark, impressions, clicks, add_to_carts)
    actions = unify_actions(click_frame, cart_frame, order_frame)
    days = customer_days(impression_frame)
    config = HistoryConfig(history_length=2, lookback_days=3)

    state = initial_state(actions, "2025-01-10", config)
    assert _state_items(state) == {1: (day("2025-01-10"), [12, 11, 13])}
    naive = state.select("customer_id", "as_of", F.slice("actions", 1, 2).alias("actions"))
    expected = {
        "2025-01-10": ([12, 11], [1, 1]),
        "2025-01-11": ([12, 13], [1, 2]),
        "2025-01-12": ([13, 0], [2, 0]),
        "2025-01-13": ([0, 0], [0, 0]),
    }
    built = {r[0]: (r[2], r[3]) for r in _history_rows(build_histories(actions, days, config))}
    assert built == expected
    histories = []
    for current in expected:
        histories.append(histories_from_state(state, days.where(F.col("dt") == current), config))
        state = advance_state(state, actions, current, config).localCheckpoint()
    assert _history_rows(reduce(DataFrame.unionByName, histories)) == [
        (current, 1, items, types) for current, (items, types) in expected.items()
    ]
    assert _state_items(state) == {}  # item 13 (day Jan 9) left the lookback of Jan 13
    naive = advance_state(naive, actions, "2025-01-10", config)
    naive_days = days.where(F.col("dt") == "2025-01-11")
    assert _history_rows(histories_from_state(naive, naive_days, config)) == [("2025-01-11", 1, [12, 0], [1, 0])]


def test_state_of_another_day_is_refused(spark):
    clicks = [("2025-01-08", 1, 11, at("2025-01-08T10:00"))]
    impressions, click_frame, cart_frame, order_frame = raw_frames(spark, [("2025-01-11", "r", 1, [(5, True)])], clicks)
    actions = unify_actions(click_frame, cart_frame, order_frame)
    config = HistoryConfig(history_length=2, lookback_days=3)
    state = initial_state(actions, "2025-01-10", config)
    with pytest.raises(SparkRuntimeException, match="expected a state as of 2025-01-11, found one as of 2025-01-10"):
        advance_state(state, actions, "2025-01-11", config).collect()
    with pytest.raises(SparkRuntimeException, match="needs a state as of its day, found one as of 2025-01-10"):
        histories_from_state(state, customer_days(impressions), config).collect()
    with pytest.raises(ValueError, match="yyyy-MM-dd"):
        advance_state(state, actions, "2025-1-10", config)
    with pytest.raises(ValueError, match="yyyy-MM-dd"):
        initial_state(actions, "10/01/2025", config)


def test_new_customers_idle_customers_and_expired_ones(spark):
    """Customer 1 has no action on Jan 10, customer 2 first acts on Jan 10, customer 3's only action expires."""
    clicks = [
        ("2025-01-08", 1, 21, at("2025-01-08T10:00")),
        ("2025-01-09", 1, 22, at("2025-01-09T10:00")),
        ("2025-01-07", 3, 31, at("2025-01-07T10:00")),
        ("2025-01-10", 2, 41, at("2025-01-10T10:00")),
        ("2025-01-11", 1, 23, at("2025-01-11T10:00")),  # of a later day: not added on Jan 10
    ]
    orders = [(day("2025-01-10"), 2, 42, 1, at("2025-01-10T10:00"))]  # ties item 41: the order comes first
    impressions = [("2025-01-11", f"r{c}", c, [(5, False)]) for c in (1, 2, 3, 4)]
    impression_frame, click_frame, cart_frame, order_frame = raw_frames(spark, impressions, clicks, (), orders)
    actions = unify_actions(click_frame, cart_frame, order_frame)
    days = customer_days(impression_frame)
    config = HistoryConfig(history_length=2, lookback_days=3)

    state = initial_state(actions, "2025-01-10", config)
    assert _state_items(state) == {1: (day("2025-01-10"), [22, 21]), 3: (day("2025-01-10"), [31])}
    advanced = advance_state(state, actions, "2025-01-10", config)
    assert advanced.columns == list(STATE_COLUMNS)
    assert _state_items(advanced) == {1: (day("2025-01-11"), [22, 21]), 2: (day("2025-01-11"), [42, 41])}
    assert _history_rows(histories_from_state(advanced, days, config)) == [
        ("2025-01-11", 1, [22, 21], [1, 1]),
        ("2025-01-11", 2, [42, 41], [3, 1]),
        ("2025-01-11", 3, [0, 0], [0, 0]),
        ("2025-01-11", 4, [0, 0], [0, 0]),
    ]
    assert _history_rows(histories_from_state(advanced, days, config)) == _history_rows(
        build_histories(actions, days, config)
    )
