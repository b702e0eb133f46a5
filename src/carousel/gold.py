"""The GPU layout: one row per customer-day, the history once, the shown items as arrays beside it."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from carousel.contract import TRAINING_EXAMPLES_GOLD
from carousel.examples import EXAMPLE_COLUMNS

SHOWN_FIELDS = ("ranking_id", "position", "item_id", "is_order")


def pack_training_examples(shown_items: DataFrame, histories: DataFrame) -> DataFrame:
    """Return one row per customer-day with impressions: its history and the items it was shown.

    Args:
        shown_items: one row per impression (`carousel.examples.explode_impressions`).
        histories: one row per customer-day (`carousel.history.build_histories`).

    Returns:
        `dt`, `customer_id`, `actions`, `action_types`, and four aligned arrays, ordered by
        (ranking_id, position): `ranking_ids`, `positions`, `item_ids`, `labels` (is_order).
    """
    shown = (
        shown_items.groupBy("dt", "customer_id")
        .agg(F.sort_array(F.collect_list(F.struct(*SHOWN_FIELDS))).alias("shown"))
        .select(
            "dt",
            "customer_id",
            F.col("shown.ranking_id").alias("ranking_ids"),
            F.col("shown.position").alias("positions"),
            F.col("shown.item_id").alias("item_ids"),
            F.col("shown.is_order").alias("labels"),
        )
    )
    return histories.join(shown, ["dt", "customer_id"]).select(*TRAINING_EXAMPLES_GOLD.column_names)


def unpack_training_examples(packed: DataFrame) -> DataFrame:
    """Return one row per shown item of the packed layout: the public API's logical view."""
    return (
        packed.select(
            "dt",
            "customer_id",
            "actions",
            "action_types",
            F.explode(F.arrays_zip("ranking_ids", "positions", "item_ids", "labels")).alias("shown"),
        )
        .select(
            "dt",
            F.col("shown.ranking_ids").alias("ranking_id"),
            "customer_id",
            F.col("shown.positions").alias("position"),
            F.col("shown.item_ids").alias("item_id"),
            F.col("shown.labels").alias("is_order"),
            "actions",
            "action_types",
        )
        .select(*EXAMPLE_COLUMNS)
    )
