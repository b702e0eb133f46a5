"""Small raw DataFrames from tuples, with the raw contracts as DDL strings."""

from __future__ import annotations

import datetime as dt

IMPRESSIONS_DDL = (
    "dt string, ranking_id string, customer_id int, impressions array<struct<item_id:int,is_order:boolean>>"
)
CLICKS_DDL = "dt string, customer_id int, item_id int, click_time timestamp"
ADD_TO_CARTS_DDL = "dt string, customer_id int, config_id int, simple_id int, occurred_at timestamp"
ORDERS_DDL = "order_date date, customer_id int, config_id int, simple_id int, occurred_at timestamp"


def at(text: str) -> dt.datetime:
    """A UTC instant from 'YYYY-MM-DDTHH:MM[:SS]'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def raw_frames(spark, impressions=(), clicks=(), add_to_carts=(), orders=()):
    """The four raw DataFrames, each possibly empty."""
    return (
        spark.createDataFrame(list(impressions), IMPRESSIONS_DDL),
        spark.createDataFrame(list(clicks), CLICKS_DDL),
        spark.createDataFrame(list(add_to_carts), ADD_TO_CARTS_DDL),
        spark.createDataFrame(list(orders), ORDERS_DDL),
    )


def example_tuples(df) -> list[tuple]:
    """Collected examples as plain tuples in a stable order, for exact comparison."""
    rows = [
        (r.dt, r.ranking_id, r.customer_id, r.position, r.item_id, r.is_order, list(r.actions), list(r.action_types))
        for r in df.collect()
    ]
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], r[3]))
