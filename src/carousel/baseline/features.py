"""The baseline's features of an impression: the shown item in the customer's history, the history itself,
the item's popularity before the day, and the position."""

from __future__ import annotations

from pyspark.ml.feature import SQLTransformer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from carousel.contract import ADD_TO_CART, CLICK, ORDER

LABEL = "label"
SCORE = "order_probability"
FEATURE_DESCRIPTIONS = {
    "item_clicks": "clicks on the shown item among the customer's last N actions",
    "item_add_to_carts": "add-to-carts of the shown item among the customer's last N actions",
    "item_orders": "orders of the shown item among the customer's last N actions",
    "item_last_slot": "how many actions ago the customer last touched the shown item (1 = the newest; N + 1 = never)",
    "history_clicks": "clicks among the customer's last N actions",
    "history_add_to_carts": "add-to-carts among the customer's last N actions",
    "history_orders": "orders among the customer's last N actions",
    "history_length": "real (non-padding) actions in the history, at most N",
    "item_actions_before": "actions of all customers on the shown item in the popularity days before the day",
    "item_orders_before": "orders of all customers of the shown item in the popularity days before the day",
    "position": "position of the item in the carousel (0 = first)",
}
FEATURES = tuple(FEATURE_DESCRIPTIONS)


HISTORY_FEATURES_SQL = f"""
SELECT *,
  CAST(size(filter(shown_item_hits, h -> h.type = {CLICK})) AS DOUBLE) AS item_clicks,
  CAST(size(filter(shown_item_hits, h -> h.type = {ADD_TO_CART})) AS DOUBLE) AS item_add_to_carts,
  CAST(size(filter(shown_item_hits, h -> h.type = {ORDER})) AS DOUBLE) AS item_orders,
  CAST(IF(size(shown_item_hits) > 0, shown_item_hits[0].slot, size(actions) + 1) AS DOUBLE) AS item_last_slot,
  CAST(size(filter(action_types, t -> t = {CLICK})) AS DOUBLE) AS history_clicks,
  CAST(size(filter(action_types, t -> t = {ADD_TO_CART})) AS DOUBLE) AS history_add_to_carts,
  CAST(size(filter(action_types, t -> t = {ORDER})) AS DOUBLE) AS history_orders,
  CAST(size(filter(action_types, t -> t <> 0)) AS DOUBLE) AS history_length,
  CAST(position AS DOUBLE) AS position_feature
FROM (
  SELECT *,
    filter(
      transform(actions, (a, i) -> IF(a = item_id, named_struct('slot', i + 1, 'type', action_types[i]), NULL)),
      h -> h IS NOT NULL
    ) AS shown_item_hits
  FROM __THIS__
)
"""


def item_popularity(actions: DataFrame, shown: DataFrame, popularity_days: int) -> DataFrame:
    """One row per distinct (dt, item_id) of `shown`: the item's actions and orders in the days before dt.

    An action of day A counts for day D when D - popularity_days <= A < D: the day itself never
    counts, so the feature holds nothing the model could not know the morning of D.

    Args:
        actions: unified actions (`actions_silver`): `item_id`, `action_type`, `action_day`.
        shown: impressions with `dt` ('yyyy-MM-dd') and `item_id`.
        popularity_days: how many days before D count.
    """
    daily = actions.groupBy("item_id", "action_day").agg(
        F.count(F.lit(1)).alias("day_actions"),
        F.count(F.when(F.col("action_type") == ORDER, 1)).alias("day_orders"),
    )
    keys = shown.select("dt", "item_id").distinct().withColumn("impression_day", F.to_date("dt"))
    in_range = (
        (keys["item_id"] == daily["item_id"])
        & (daily["action_day"] >= F.date_sub(keys["impression_day"], popularity_days))
        & (daily["action_day"] < keys["impression_day"])
    )
    return (
        keys.join(daily, in_range, "left")
        .groupBy(keys["dt"], keys["item_id"])
        .agg(
            F.coalesce(F.sum("day_actions"), F.lit(0)).cast("double").alias("item_actions_before"),
            F.coalesce(F.sum("day_orders"), F.lit(0)).cast("double").alias("item_orders_before"),
        )
    )


def add_item_popularity(examples: DataFrame, actions: DataFrame, popularity_days: int) -> DataFrame:
    """The examples (one row per impression), each with its item's popularity before its day."""
    return examples.join(item_popularity(actions, examples, popularity_days), ["dt", "item_id"], "left")


def with_label(examples: DataFrame) -> DataFrame:
    """The examples with `label` = is_order as 0.0 / 1.0 (what Spark ML's classifiers read)."""
    return examples.withColumn(LABEL, F.col("is_order").cast("double"))


def history_features() -> SQLTransformer:
    """The stage that adds the history features (FEATURES but popularity and position) to each impression."""
    return SQLTransformer(statement=HISTORY_FEATURES_SQL)


def assembled_columns() -> list[str]:
    """The columns the pipeline's VectorAssembler reads, one per feature, in `FEATURES` order."""
    return ["position_feature" if name == "position" else name for name in FEATURES]
