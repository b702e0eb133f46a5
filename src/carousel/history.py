"""The algorithm: actions + customer-days -> each customer-day's N newest earlier actions.

Cost grows with actions + customer-days, never with actions x impression days:

1. Per customer, the first and last impression day of the window (a small frame).
2. Actions are scoped to [first_day - L, last_day). Those in [last_day - L, first_day) are in
   the history scope of *every* impression day of the customer, so only their N newest can
   ever appear: `row_number() <= N`, which Spark 4 turns into a WindowGroupLimit that also
   runs before the shuffle. The rest (the window days and the days that leave the lookback
   during the window) are kept whole.
3. One shuffle by customer: the two parts are collected per customer and sorted once,
   newest first.
4. Per customer-day, higher-order functions `filter` the sorted array to the days that day
   may see and `slice` the first N, then pad with zeros.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.actions import PADDING
from carousel.config import HistoryConfig
from carousel.quality import keep_valid
from carousel.schemas import DAY_FORMAT

ACTION_STRUCT = T.StructType(
    [
        T.StructField("occurred_at", T.TimestampType()),
        T.StructField("action_type", T.ByteType()),
        T.StructField("item_id", T.IntegerType()),
        T.StructField("action_day", T.DateType()),
    ]
)
"""Field order is the sort order: newest timestamp, then higher type, then higher item id."""


def _newest_first() -> list[Column]:
    return [F.col(field.name).desc() for field in ACTION_STRUCT.fields]


def customer_days(impressions: DataFrame, schema: T.StructType | None = None) -> DataFrame:
    """Return one row per distinct (dt, customer_id) among the valid raw impression rows.

    `schema` is the impressions' schema when known beforehand (see `carousel.schemas.conformed_columns`).
    """
    return (
        keep_valid(impressions, "impressions", schema)
        .select(F.try_to_date("dt", DAY_FORMAT).alias("impression_day"), "customer_id")
        # Not `distinct()`: Spark Connect analyses its input eagerly, which a declarative
        # pipeline refuses while it registers a dataset.
        .groupBy("impression_day", "customer_id")
        .agg(F.count(F.lit(1)).alias("impression_rows"))
        .select(F.date_format("impression_day", DAY_FORMAT).alias("dt"), "customer_id")
    )


def _action_struct() -> Column:
    return F.struct(*(F.col(field.name) for field in ACTION_STRUCT.fields))


def _collect_actions(actions: DataFrame, name: str) -> DataFrame:
    return actions.groupBy("customer_id").agg(F.collect_list(_action_struct()).alias(name))


def _or_empty(column: str) -> Column:
    return F.coalesce(F.col(column), F.array().cast(T.ArrayType(ACTION_STRUCT)))


def _impression_day_bounds(days: DataFrame) -> DataFrame:
    return (
        days.select("customer_id", F.to_date("dt", DAY_FORMAT).alias("day"))
        .groupBy("customer_id")
        .agg(F.min("day").alias("first_day"), F.max("day").alias("last_day"))
    )


def candidate_histories(actions: DataFrame, days: DataFrame, config: HistoryConfig) -> DataFrame:
    """Return one row per customer of `days`: every action any of its days may show, newest first.

    Args:
        actions: unified actions (`carousel.actions.unify_actions`).
        days: customer-days with `dt` ('yyyy-MM-dd') and `customer_id`.
        config: history length N and lookback days L.

    Returns:
        `customer_id`, `candidates` (array of `ACTION_STRUCT`, sorted newest first; empty when none).
    """
    lookback = config.lookback_days
    bounds = _impression_day_bounds(days)
    scoped = actions.join(bounds, "customer_id").where(
        (F.col("action_day") >= F.date_sub("first_day", lookback)) & (F.col("action_day") < F.col("last_day"))
    )
    seen_by_every_day = (F.col("action_day") >= F.date_sub("last_day", lookback)) & (
        F.col("action_day") < F.col("first_day")
    )
    newest_rank = F.row_number().over(Window.partitionBy("customer_id").orderBy(*_newest_first()))
    newest_before_window = (
        scoped.where(seen_by_every_day)
        # select("*", ...) rather than withColumn: on a pipeline dataset, withColumn hides the
        # dependency from open-source Spark Declarative Pipelines on reruns (it then reads an empty table).
        .select("*", newest_rank.alias("newest_rank"))
        .where(F.col("newest_rank") <= config.history_length)
    )
    rest_of_scope = scoped.where(~seen_by_every_day)
    # Left joins onto the per-customer bounds keep its hash partitioning by customer_id, so the
    # sorted arrays are never shuffled again (a full outer join would lose it).
    return (
        bounds.join(_collect_actions(newest_before_window, "before_window"), "customer_id", "left")
        .join(_collect_actions(rest_of_scope, "rest"), "customer_id", "left")
        .select(
            "customer_id",
            F.sort_array(F.concat(_or_empty("before_window"), _or_empty("rest")), asc=False).alias("candidates"),
        )
    )


def _padded(values: Column, length: int, pad: Column) -> Column:
    return F.concat(values, F.array_repeat(pad, F.lit(length) - F.size(values)))


def build_histories(actions: DataFrame, days: DataFrame, config: HistoryConfig = HistoryConfig()) -> DataFrame:
    """Return one row per row of `days`: its N newest actions of days [dt - L, dt), zero-padded.

    Args:
        actions: unified actions (`carousel.actions.unify_actions`).
        days: distinct customer-days, `dt` ('yyyy-MM-dd') and `customer_id` (`customer_days`).
        config: history length N and lookback days L.

    Returns:
        `dt`, `customer_id`, `actions` (array<int>, N item ids, newest first, 0 after the last
        real one) and `action_types` (array<tinyint>, N codes: 1 click, 2 add-to-cart, 3 order, 0 padding).
    """
    length = config.history_length
    day = F.to_date("dt", DAY_FORMAT)
    visible = F.slice(
        F.filter(
            "candidates",
            lambda action: (
                (action["action_day"] < day) & (action["action_day"] >= F.date_sub(day, config.lookback_days))
            ),
        ),
        1,
        length,
    )
    return (
        days.join(candidate_histories(actions, days, config), "customer_id")
        .select("dt", "customer_id", visible.alias("visible"))
        .select(
            "dt",
            "customer_id",
            _padded(F.transform("visible", lambda a: a["item_id"]), length, F.lit(PADDING)).alias("actions"),
            _padded(F.transform("visible", lambda a: a["action_type"]), length, F.lit(PADDING).cast("tinyint")).alias(
                "action_types"
            ),
        )
    )
