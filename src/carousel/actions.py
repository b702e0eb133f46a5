"""Clicks, add-to-carts and orders unified into one frame of actions.

An action row: `customer_id` int, `item_id` int, `action_type` tinyint (1 click,
2 add-to-cart, 3 order), `occurred_at` timestamp (orders the history) and `action_day`
date (decides leakage: the click's or add-to-cart's `dt`, the order's `order_date`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.contract import ACTION_SOURCES
from carousel.quality import checked_day, keep_valid
from carousel.reconciliation import union_all


def _as_actions(frame: DataFrame, source: str, action_day: Column) -> DataFrame:
    """`frame`'s rows as actions of `source` (`contract.ACTION_SOURCES`), with `action_day` as their day."""
    fields = ACTION_SOURCES[source]
    return frame.select(
        "customer_id",
        F.col(fields.item_id).alias("item_id"),
        F.lit(fields.action_type).cast("tinyint").alias("action_type"),
        F.col(fields.occurred_at).alias("occurred_at"),
        action_day.alias("action_day"),
    )


def clicks_to_actions(clicks: DataFrame, schema: T.StructType | None = None) -> DataFrame:
    """Return one action of type 1 per valid raw click row."""
    return _as_actions(keep_valid(clicks, "clicks", schema), "clicks", checked_day("dt"))


def add_to_carts_to_actions(add_to_carts: DataFrame, schema: T.StructType | None = None) -> DataFrame:
    """Return one action of type 2 per valid raw add-to-cart row (the item is its config_id)."""
    return _as_actions(keep_valid(add_to_carts, "add_to_carts", schema), "add_to_carts", checked_day("dt"))


def orders_to_actions(orders: DataFrame, schema: T.StructType | None = None) -> DataFrame:
    """Return one action of type 3 per valid raw order row (the item is its config_id)."""
    return _as_actions(keep_valid(orders, "orders", schema), "orders", F.col("order_date"))


def raw_actions(raw: Mapping[str, DataFrame]) -> DataFrame:
    """Return every raw click, add-to-cart and order row as an action, no rule applied (the benchmarks' floors).

    The day is the source's day column cast to a date; nothing is checked or left out.
    """
    return union_all(
        _as_actions(raw[source], source, F.col(fields.day).cast("date")) for source, fields in ACTION_SOURCES.items()
    )


def unify_actions(
    clicks: DataFrame,
    add_to_carts: DataFrame,
    orders: DataFrame,
    schemas: Mapping[str, T.StructType] | None = None,
) -> DataFrame:
    """Return every valid click, add-to-cart and order as one action row each; duplicates kept.

    Rows that break a rule of `carousel.quality.RULES` (null or non-positive ids, missing
    timestamps, unparsable days) are left out. `schemas` holds the inputs' schemas by source
    name when known beforehand (see `carousel.schemas.conformed_columns`).
    """
    schemas = schemas or {}
    return (
        clicks_to_actions(clicks, schemas.get("clicks"))
        .unionByName(add_to_carts_to_actions(add_to_carts, schemas.get("add_to_carts")))
        .unionByName(orders_to_actions(orders, schemas.get("orders")))
    )
