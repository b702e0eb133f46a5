"""The algorithm: actions + customer-days -> each customer-day's N newest earlier actions.

Cost grows with actions + customer-days, never with actions x impression days:

1. Per customer, the first and last impression day of the window (a small frame).
2. Actions are scoped to [first_day - L, last_day): the days any of the customer's impression
   days may see. One shuffle by customer collects them into one array, sorted once, newest first.
3. Per customer-day, the array is cut to the first N. A customer with one impression day sees
   exactly that scope, so a `slice` does it; otherwise a higher-order `filter` first keeps the
   days that day may see. Then zero padding.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
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
        config: lookback days L (the history length does not change the candidates).

    Returns:
        `customer_id`, `first_day` and `last_day` (its impression days' bounds) and `candidates`
        (array of `ACTION_STRUCT`, the actions of days [first_day - L, last_day), newest first;
        empty when none).
    """
    bounds = _impression_day_bounds(days)
    scoped = actions.join(bounds, "customer_id").where(
        (F.col("action_day") >= F.date_sub("first_day", config.lookback_days))
        & (F.col("action_day") < F.col("last_day"))
    )
    # The left join onto the bounds keeps the aggregate's hash partitioning by customer_id, so the
    # arrays are never shuffled again; it also gives customers without actions an (empty) row.
    return bounds.join(_collect_actions(scoped, "collected"), "customer_id", "left").select(
        "customer_id", "first_day", "last_day", F.sort_array(_or_empty("collected"), asc=False).alias("candidates")
    )


def _padded(values: Column, length: int, pad: Column) -> Column:
    return F.concat(values, F.array_repeat(pad, F.lit(length) - F.size(values)))


def padded_history(visible: Column | str, length: int) -> list[Column]:
    """`actions` and `action_types` of an array of `ACTION_STRUCT` (at most N, newest first), zero-padded to N."""
    return [
        _padded(F.transform(visible, lambda a: a["item_id"]), length, F.lit(PADDING)).alias("actions"),
        _padded(F.transform(visible, lambda a: a["action_type"]), length, F.lit(PADDING).cast("tinyint")).alias(
            "action_types"
        ),
    ]


def _visible(length: int) -> Column:
    """The first N candidates the row's `day` may see: those of days [oldest_day, day)."""
    only_day = F.col("first_day") == F.col("last_day")
    in_lookback = F.filter(
        "candidates",
        lambda action: (action["action_day"] < F.col("day")) & (action["action_day"] >= F.col("oldest_day")),
    )
    # A customer with one impression day has candidates of exactly that day's lookback: no filter needed.
    return F.slice(F.when(only_day, F.col("candidates")).otherwise(in_lookback), 1, length)


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
    # The day's bounds are columns, not expressions inside the lambda: a lambda runs once per array element.
    days_with_bounds = days.select(
        "dt", "customer_id", day.alias("day"), F.date_sub(day, config.lookback_days).alias("oldest_day")
    )
    return (
        days_with_bounds.join(candidate_histories(actions, days, config), "customer_id")
        .select("dt", "customer_id", _visible(length).alias("visible"))
        .select("dt", "customer_id", *padded_history("visible", length))
    )
