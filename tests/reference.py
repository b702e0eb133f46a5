"""An independent plain-Python reference of SPEC.md's rules: no Spark, one impression at a time.

Inputs are lists of tuples in the raw column order of `carousel.schemas.RAW_SCHEMAS`;
timestamps are timezone-aware datetimes, order dates are `datetime.date`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

CLICK, ADD_TO_CART, ORDER = 1, 2, 3


def reference_day(text: str | None) -> dt.date | None:
    """The day a 'yyyy-MM-dd' text names, or None when it names none."""
    # fromisoformat alone would also take ISO week dates ('2025-W10-1'); yyyy-MM-dd does not.
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _positive(value: int | None) -> bool:
    return value is not None and value > 0


def _in_time(at: dt.datetime | None, day: dt.date) -> bool:
    """Present, and before midnight UTC ending the day after `day` (a late event lands one day later at most)."""
    if at is None:
        return False
    # Spark's collect() gives naive times of the process's zone, UTC in the tests (tests/conftest.py).
    at = at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at.astimezone(dt.timezone.utc)
    # Ordinals, not `day + 2 days`: that date does not exist after 9999-12-29.
    return at.date().toordinal() < day.toordinal() + 2


def reference_actions(clicks, add_to_carts, orders) -> dict[int, list[tuple]]:
    """Valid actions per customer as (timestamp, type, item, day)."""
    per_customer: dict[int, list[tuple]] = defaultdict(list)
    for day_text, customer, item, at in clicks:
        day = reference_day(day_text)
        if day and _positive(customer) and _positive(item) and _in_time(at, day):
            per_customer[customer].append((at, CLICK, item, day))
    for day_text, customer, config, _simple, at in add_to_carts:
        day = reference_day(day_text)
        if day and _positive(customer) and _positive(config) and _in_time(at, day):
            per_customer[customer].append((at, ADD_TO_CART, config, day))
    for day, customer, config, _simple, at in orders:
        if day is not None and _positive(customer) and _positive(config) and _in_time(at, day):
            per_customer[customer].append((at, ORDER, config, day))
    return per_customer


def reference_history(actions: list[tuple], day: dt.date, history_length: int, lookback_days: int):
    """The N newest actions of days [day - lookback, day): (items, types), zero-padded to N."""
    # Ordinals, not `day - lookback days`: that date does not exist before 0001-01-01.
    earliest = day.toordinal() - lookback_days
    visible = [a for a in actions if earliest <= a[3].toordinal() < day.toordinal()]
    visible.sort(key=lambda a: (a[0], a[1], a[2]), reverse=True)
    visible = visible[:history_length]
    padding = [0] * (history_length - len(visible))
    return [a[2] for a in visible] + padding, [a[1] for a in visible] + padding


def _valid_impression_row(day, ranking_id, customer, shown) -> bool:
    return (
        day is not None
        and ranking_id is not None
        and _positive(customer)
        and bool(shown)
        and all(s is not None and _positive(s[0]) and s[1] is not None for s in shown)
    )


def reference_examples(impressions, clicks, add_to_carts, orders, history_length=1000, lookback_days=365):
    """One tuple per shown item of each valid impression row, in the public API's column order."""
    actions = reference_actions(clicks, add_to_carts, orders)
    examples = []
    for day_text, ranking_id, customer, shown in impressions:
        day = reference_day(day_text)
        if not _valid_impression_row(day, ranking_id, customer, shown):
            continue
        items, types = reference_history(actions.get(customer, []), day, history_length, lookback_days)
        for position, (item, is_order) in enumerate(shown):
            examples.append((day.isoformat(), ranking_id, customer, position, item, is_order, items, types))
    return examples
