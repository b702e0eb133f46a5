"""Random raw inputs that make the hard cases frequent: ties, boundary days, late events, dirty rows."""

from __future__ import annotations

import datetime as dt
import random

FIRST_DAY = dt.date(2025, 1, 1)
HISTORY_DAYS = 24
WINDOW_DAYS = 8
CUSTOMERS_PER_SEED = 20


def _day_text(day: dt.date, rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.02:
        return None
    if roll < 0.04:
        return rng.choice(["not-a-date", "2025-13-45", ""])
    return day.isoformat()


def _customer(seed: int, rng: random.Random) -> int | None:
    roll = rng.random()
    if roll < 0.02:
        return None
    if roll < 0.04:
        return -rng.randint(1, 5)
    return seed * 100 + rng.randint(1, CUSTOMERS_PER_SEED)


def _item(rng: random.Random) -> int | None:
    roll = rng.random()
    if roll < 0.02:
        return None
    if roll < 0.04:
        return -rng.randint(0, 3)
    return rng.randint(1, 6)  # few items: ties on (time, type) often meet equal and unequal items


def _event(rng: random.Random) -> tuple[dt.datetime | None, dt.date]:
    """A coarse timestamp (frequent exact ties) and the day whose partition holds it."""
    event_day = FIRST_DAY + dt.timedelta(days=rng.randrange(HISTORY_DAYS))
    moment = dt.datetime.combine(event_day, dt.time(rng.choice([0, 12, 23]), rng.choice([0, 59])), dt.timezone.utc)
    # Late events land up to three days after their timestamp's day.
    landed = event_day + dt.timedelta(days=rng.choice([0, 0, 0, 0, 1, 1, 2, 3]))
    return (None if rng.random() < 0.02 else moment), landed


def random_raw(seed: int, actions: int = 240) -> tuple[list, list, list, list]:
    """One seed's raw impressions, clicks, add-to-carts and orders as tuples in contract order."""
    rng = random.Random(seed)
    clicks, add_to_carts, orders = [], [], []
    for _ in range(actions):
        moment, landed = _event(rng)
        kind = rng.random()
        if kind < 0.6:
            clicks.append((_day_text(landed, rng), _customer(seed, rng), _item(rng), moment))
        elif kind < 0.85:
            config = _item(rng)
            add_to_carts.append((_day_text(landed, rng), _customer(seed, rng), config, rng.randint(1, 9), moment))
        else:
            order_date = None if rng.random() < 0.02 else landed
            orders.append((order_date, _customer(seed, rng), _item(rng), rng.randint(1, 9), moment))
        if rng.random() < 0.05 and clicks:
            clicks.append(clicks[-1])  # an exact duplicate
    impressions = []
    first_window_day = FIRST_DAY + dt.timedelta(days=HISTORY_DAYS - WINDOW_DAYS)
    for customer in range(1, CUSTOMERS_PER_SEED + 1):
        for offset in range(WINDOW_DAYS + 1):
            if rng.random() < 0.55:
                shown_day = first_window_day + dt.timedelta(days=offset)
                ranking_id = f"{seed}-{customer}-{offset}"
                shown = [(rng.randint(1, 50), rng.random() < 0.2) for _ in range(rng.randint(1, 3))]
                roll = rng.random()
                if roll < 0.03:
                    shown = None
                elif roll < 0.06:
                    shown = []
                elif roll < 0.08:
                    shown[0] = (None, False)
                impressions.append((_day_text(shown_day, rng), ranking_id, seed * 100 + customer, shown))
    return impressions, clicks, add_to_carts, orders


def random_raw_over_seeds(seeds: range) -> tuple[list, list, list, list]:
    """Many seeds in one input: customer ids never overlap between seeds, so one Spark job checks all."""
    merged: tuple[list, list, list, list] = ([], [], [], [])
    for seed in seeds:
        for bucket, rows in zip(merged, random_raw(seed), strict=False):
            bucket.extend(rows)
    return merged
