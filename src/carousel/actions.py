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

from carousel.contract import ADD_TO_CART, CLICK, ORDER
from carousel.quality import checked_day, keep_valid


def _action_type(code: int) -> Column:
    return F.lit(code).cast("tinyint").alias("action_type")


def _day_of_partition(dt: str) -> Column:
    return checked_day(dt).alias("action_day")


def clicks_to_actions(clicks: DataFrame, schema: T.StructType | None = None) -> DataFrame:
    """Return one action of type 1 per valid raw click row."""
    return keep_valid(clicks, "clicks", schema).select(
        "customer_id",
        "item_id",
        _action_type(CLICK),
        F.col("click_time").alias("occurred_at"),
        _day_of_partition("dt"),
    )


def add_to_carts_to_actions(add_to_carts: DataFrame, schema: T.StructType | None = None) -> DataFrame:
    """Return one action of type 2 per valid raw add-to-cart row (the item is its config_id)."""
    return keep_valid(add_to_carts, "add_to_carts", schema).select(
        "customer_id",
        F.col("config_id").alias("item_id"),
        _action_type(ADD_TO_CART),
        "occurred_at",
        _day_of_partition("dt"),
    )


def orders_to_actions(orders: DataFrame, schema: T.StructType | None = None) -> DataFrame:
    """Return one action of type 3 per valid raw order row (the item is its config_id)."""
    return keep_valid(orders, "orders", schema).select(
        "customer_id",
        F.col("config_id").alias("item_id"),
        _action_type(ORDER),
        "occurred_at",
        F.col("order_date").alias("action_day"),
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
