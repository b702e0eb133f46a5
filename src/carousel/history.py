"""The algorithm: actions + customer-days -> each customer-day's N newest earlier actions.

Cost grows with actions + customer-days x N, never with actions x impression days:

1. Per customer, the first and last impression day (a small frame).
2. Actions are scoped to [first_day - L, last_day): the days any of the customer's impression
   days may see. One shuffle by customer collects them into one array, sorted once, newest
   first, as the per-customer floor of any exact build must; one marker row per customer-day,
   unioned into the actions, brings the customer's days into the same group (no join of the
   arrays with the customer-days afterwards). The same aggregation lists the day
   numbers of the few actions that some impression day of the customer cannot see: those on or
   after its first impression day (too new for the earlier days) and those before its last
   impression day - L (too old for the later days).
3. Per customer-day D, those short lists count the actions too new (k) and too old (o) for D, so
   D sees size - k - o actions. In the usual case the k newest actions are the too-new ones and
   the next min(N, size - k - o) are all recent enough: the history is then one `slice`, checked
   with `array_min` over exactly the sliced days (native, generated code, O(N)). Where a late
   event breaks that order, a higher-order `filter` runs over the first k + N actions only; over
   the whole array only where actions too old for D sit among them. Then zero padding.

Days are compared as epoch-day numbers in 64-bit arithmetic, so every day Spark can hold, from
0001-01-01 to 9999-12-31, with any lookback up to the whole range, works without an overflow
under ANSI mode and without a wrapped value without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.config import HistoryConfig
from carousel.contract import PADDING
from carousel.quality import keep_valid
from carousel.schemas import DAY_FORMAT

_SEES_ENOUGH_IN_PREFIX = True
"""Whether the filter over the first k + N candidates may serve (a test turns it off to prove the last way alone)."""

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
        # Not `distinct()`: Spark Connect analyses its input eagerly, which a declarative
        # pipeline refuses while it registers a dataset. dt_parsable holds: dt is exactly 'yyyy-MM-dd'.
        .groupBy("dt", "customer_id")
        .agg(F.count(F.lit(1)).alias("impression_rows"))
        .select("dt", "customer_id")
    )


def day_number(day: Column | str) -> Column:
    """Days since 1970-01-01 of a date, as a bigint: day arithmetic that cannot overflow."""
    return F.unix_date(F.col(day) if isinstance(day, str) else day).cast("long")


def action_struct() -> Column:
    """The action columns as one `ACTION_STRUCT` value."""
    return F.struct(*(F.col(field.name) for field in ACTION_STRUCT.fields))


def collect_actions(actions: DataFrame, name: str) -> DataFrame:
    """Return one row per customer with its actions as an (unsorted) array of `ACTION_STRUCT` called `name`."""
    return actions.groupBy("customer_id").agg(F.collect_list(action_struct()).alias(name))


def or_empty(column: str) -> Column:
    """The array of `ACTION_STRUCT` in `column`, or an empty one where it is null."""
    return F.coalesce(F.col(column), F.array().cast(T.ArrayType(ACTION_STRUCT)))


def _impression_day() -> Column:
    """The day number of a customer-day's `dt`, as `day`."""
    return day_number(F.to_date("dt", DAY_FORMAT)).alias("day")


def _impression_day_bounds(days: DataFrame) -> DataFrame:
    return (
        days.select("customer_id", _impression_day())
        .groupBy("customer_id")
        .agg(F.min("day").alias("first_day"), F.max("day").alias("last_day"))
    )


def _day_list(condition: Column) -> Column:
    """The day numbers of the actions meeting `condition` (collect_list skips the nulls of the others)."""
    return F.collect_list(F.when(condition, F.col("day")))


def candidate_histories(
    actions: DataFrame, days: DataFrame, config: HistoryConfig, carry: Sequence[str] = ()
) -> DataFrame:
    """Return one row per customer of `days`: its days, and every action any of them may show, newest first.

    Args:
        actions: unified actions (`carousel.actions.unify_actions`).
        days: customer-days with `dt` ('yyyy-MM-dd') and `customer_id`.
        config: lookback days L (the history length does not change the candidates).
        carry: further columns of `days` to keep with each day.

    Returns:
        `customer_id`; `days` (array of struct `dt`, `day` (its day number) and the `carry`
        columns: the customer's rows of `days`); `candidates` (array of `ACTION_STRUCT`, the
        actions of days [first_day - L, last_day), where first_day and last_day bound the
        customer's impression days, newest first; empty for a customer without actions in scope);
        `late_days` (day numbers of the candidates of days >= first_day) and `early_days` (those
        of days < last_day - L), both empty for a customer with one impression day.
    """
    bounds = _impression_day_bounds(days)
    lookback = config.lookback_days
    scoped = (
        actions.select("*", day_number("action_day").alias("day"))
        .join(bounds, "customer_id")
        .where((F.col("day") >= F.col("first_day") - lookback) & (F.col("day") < F.col("last_day")))
        .select("customer_id", action_struct().alias("action"), "day", "first_day", "last_day")
    )
    # One marker row per customer-day brings the day into the same group as the customer's
    # actions: no join of the (large) arrays with the customer-days after the aggregation, and a
    # customer without actions in scope still gets its group. Each row's missing columns are
    # NULL, which collect_list skips. (Markers grouped by customer first would be partitioned by
    # customer_id, and Spark would then shuffle the raw actions to match them, before the scope.)
    markers = days.select("customer_id", F.struct("dt", _impression_day(), *carry).alias("day_entry"))
    together = scoped.unionByName(markers, allowMissingColumns=True)
    # Grouped by customer_id alone: the one shuffle of the actions.
    return together.groupBy("customer_id").agg(
        F.collect_list("day_entry").alias("days"),
        F.sort_array(F.collect_list("action"), asc=False).alias("candidates"),
        _day_list(F.col("day") >= F.col("first_day")).alias("late_days"),
        _day_list(F.col("day") < F.col("last_day") - lookback).alias("early_days"),
    )


def _sees(action: Column) -> Column:
    """The row's day D may see `action`: its day lies in [D - L, D) (bounds precomputed per row)."""
    action_day = F.unix_date(action["action_day"])
    return (action_day < F.col("day")) & (action_day >= F.col("oldest_day"))


def _all_days_at_least(actions: Column, bound: Column) -> Column:
    """Every action of the array is of day number >= `bound` (TRUE for an empty array)."""
    return F.coalesce(F.unix_date(F.array_min(actions.getField("action_day"))) >= bound, F.lit(True))


def _in_order() -> Column:
    """The row's history as one slice of its candidates where their order allows it, else NULL.

    The k = `too_new` newest candidates must be exactly those of days >= D, and the next `seen`
    = min(N, what D sees) must all be of days >= D - L (see the module docstring).
    """
    too_new, seen = F.col("too_new"), F.col("seen")
    first_newer = F.slice("candidates", 1, too_new)
    in_order = F.slice("candidates", too_new + 1, seen)
    return F.when(
        _all_days_at_least(first_newer, F.col("day")) & _all_days_at_least(in_order, F.col("oldest_day")), in_order
    )


def padded_history(visible: Column | str, length: int) -> list[Column]:
    """`actions` and `action_types` of an array of `ACTION_STRUCT` (at most N, newest first), zero-padded to N."""
    visible = F.col(visible) if isinstance(visible, str) else visible
    return [
        _padded(visible.getField("item_id"), length, F.lit(PADDING)).alias("actions"),
        _padded(visible.getField("action_type"), length, F.lit(PADDING).cast("tinyint")).alias("action_types"),
    ]


def _padded(values: Column, length: int, pad: Column) -> Column:
    return F.concat(values, F.array_repeat(pad, F.lit(length) - F.size(values)))


def build_histories(
    actions: DataFrame, days: DataFrame, config: HistoryConfig = HistoryConfig(), carry: Sequence[str] = ()
) -> DataFrame:
    """Return one row per row of `days`: its N newest actions of days [dt - L, dt), zero-padded.

    Args:
        actions: unified actions (`carousel.actions.unify_actions`).
        days: distinct customer-days, `dt` ('yyyy-MM-dd') and `customer_id` (`customer_days`).
        config: history length N and lookback days L.
        carry: further columns of `days` that ride along unchanged (named, not read from `days`:
            a declarative pipeline refuses to analyse a DataFrame while it registers a dataset).

    Returns:
        `dt`, `customer_id`, `actions` (array<int>, N item ids, newest first, 0 after the last
        real one), `action_types` (array<tinyint>, N codes: 1 click, 2 add-to-cart, 3 order, 0
        padding), then the `carry` columns.
    """
    length = config.history_length
    extra = list(carry)
    candidates = candidate_histories(actions, days, config, extra)
    each_day = candidates.select("customer_id", "candidates", "late_days", "early_days", F.explode("days").alias("d"))
    # The day's bounds are columns, not expressions inside a lambda: a lambda runs once per element.
    day, oldest_day = F.col("d.day"), F.col("d.day") - config.lookback_days
    too_new = F.size(F.filter("late_days", lambda late: late >= day))
    too_old = F.size(F.filter("early_days", lambda early: early < oldest_day))
    # Two projections read a customer's array per customer-day, and only the first copies it
    # (into the row it makes of the exploded day): every further projection carrying it would
    # copy tens of kilobytes per customer-day again, most for the active customers who log in most.
    counted = each_day.select(
        F.col("d.dt").alias("dt"),
        "customer_id",
        *(F.col(f"d.{name}").alias(name) for name in extra),
        day.alias("day"),
        oldest_day.alias("oldest_day"),
        "candidates",
        too_new.alias("too_new"),
        F.least(F.size("candidates") - too_new - too_old, F.lit(length)).alias("seen"),
    )
    # Where the slice's check fails (NULL), a filter over the first k + N candidates finds the
    # first N seen ones, unless candidates too old for D sit among them; only then the whole array.
    prefix_seen = F.filter(F.slice("candidates", 1, F.col("too_new") + length), _sees)
    enough_in_prefix = (F.size(prefix_seen) >= F.col("seen")) & F.lit(_SEES_ENOUGH_IN_PREFIX)
    visible = F.coalesce(
        _in_order(),
        F.when(enough_in_prefix, F.slice(prefix_seen, 1, F.col("seen"))).otherwise(
            F.slice(F.filter("candidates", _sees), 1, length)
        ),
    )
    return counted.select("dt", "customer_id", *extra, visible.alias("visible")).select(
        "dt", "customer_id", *padded_history("visible", length), *extra
    )
