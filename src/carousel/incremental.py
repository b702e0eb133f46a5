"""Incremental daily histories: a per-customer state advanced one day at a time, exact as `build_histories`.

The state as of day D holds, per customer, the actions of days [D - L, D) that may still appear in
the history of D or of a later day, sorted newest first (N = history length, L = lookback days).

Why dropping actions is exact: an action x of day d can be in the history of a day after D only while
fewer than N actions are newer than x among the actions of days >= d. Those "dominating" actions never
leave the lookback before x does (their day is >= d) and are never hidden by rule 1 when x is visible
(their day is < D), so once x has N of them it can never be shown again. The state therefore keeps, per
customer, the first N actions of its sorted array plus every further one whose day is later than the
earliest day among those first N: an action beyond the first N whose day is <= that day has all N of
them newer and of a day >= its own, so it is dominated N times. This is a superset of what is needed
(cheap with array functions, no window), and it stays one when the state advances: the dominators of
a kept action within [d, D) remain its dominators within [d, D + 1), so its count only grows, and the
day's new actions are judged by the same rule against the merged array. Hence the first N actions of
the state that fall in [D - L, D) are exactly the first N of all actions of [D - L, D).

Actions beyond the first N survive only when they are late events (their day later than that of newer
actions), so the state stays close to N actions per customer.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.config import HistoryConfig, parse_day
from carousel.history import ACTION_STRUCT, collect_actions, or_empty, padded_history
from carousel.schemas import DAY_FORMAT

STATE_SCHEMA = T.StructType(
    [
        T.StructField("customer_id", T.IntegerType()),
        T.StructField("as_of", T.DateType()),
        T.StructField("actions", T.ArrayType(ACTION_STRUCT)),
    ]
)
"""One row per customer: `as_of` (the state covers action days < as_of) and its kept actions, newest first."""

STATE_COLUMNS = tuple(STATE_SCHEMA.fieldNames())


def _pruned(column: str, history_length: int) -> Column:
    """The first N actions of `column`, and any later one whose day is after the earliest day among those N."""
    return _pruned_expression(F.col(column), history_length)


def _pruned_expression(actions: Column, history_length: int) -> Column:
    earliest_of_first = F.array_min(F.transform(F.slice(actions, 1, history_length), lambda a: a["action_day"]))
    # The bound rides along with each element: a row expression used inside a lambda is evaluated
    # again for every element (Spark's CollapseProject inlines it there), which made this quadratic.
    paired = F.arrays_zip(actions.alias("action"), F.array_repeat(earliest_of_first, F.size(actions)).alias("bound"))
    kept = F.filter(
        paired, lambda pair, index: (index < history_length) | (pair["action"]["action_day"] > pair["bound"])
    )
    # Most customers have no more than N actions: nothing to prune, and no pass over the array.
    return F.when(F.size(actions) <= history_length, actions).otherwise(F.transform(kept, lambda pair: pair["action"]))


def _kept(
    customers: DataFrame, newest_first: Column, as_of: dt.date, config: HistoryConfig, *carried: str
) -> DataFrame:
    """`customer_id`, the `carried` columns and `actions`: `newest_first` expired before as_of - L, then pruned.

    `actions` is empty for a customer whose actions all left the lookback.
    """
    earliest = as_of - dt.timedelta(days=config.lookback_days)
    in_lookback = F.filter(newest_first, lambda a: a["action_day"] >= F.lit(earliest))
    # Two projections: the pruning reads its input several times, which must not recompute the filter each time.
    return customers.select("customer_id", *carried, in_lookback.alias("in_lookback")).select(
        "customer_id", *carried, _pruned("in_lookback", config.history_length).alias("actions")
    )


def _state(customers: DataFrame, newest_first: Column, as_of: dt.date, config: HistoryConfig) -> DataFrame:
    """Expire the actions before as_of - L, prune, and drop the customers left without actions."""
    # Pruning keeps the first N, so it empties no array that was not empty already.
    kept = _kept(customers, newest_first, as_of, config).where(F.size("actions") > 0)
    return kept.select("customer_id", F.lit(as_of).alias("as_of"), "actions")


def initial_state(actions: DataFrame, as_of: str, config: HistoryConfig = HistoryConfig()) -> DataFrame:
    """Return one row per customer with actions of days [as_of - L, as_of): the state as of `as_of`.

    Args:
        actions: unified actions (`carousel.actions.unify_actions`).
        as_of: the first day the state can serve ('yyyy-MM-dd').
        config: history length N and lookback days L.

    Returns:
        `STATE_COLUMNS`: `customer_id`, `as_of` (date), `actions` (array of `ACTION_STRUCT`, newest
        first, pruned to the actions that may still be shown on `as_of` or later).
    """
    as_of_day = parse_day(as_of)
    earliest = as_of_day - dt.timedelta(days=config.lookback_days)
    scoped = actions.where((F.col("action_day") >= F.lit(earliest)) & (F.col("action_day") < F.lit(as_of_day)))
    collected = collect_actions(scoped, "collected")
    return _state(collected, F.sort_array("collected", asc=False), as_of_day, config)


def _checked_as_of(state: DataFrame, day: dt.date, caller: str) -> Column:
    """The state's `actions`, or a runtime error when its row is not as of `day`."""
    found = F.coalesce(F.col("as_of").cast("string"), F.lit("null"))
    message = F.concat(
        F.lit(f"{caller}: expected a state as of {day.isoformat()}, found one as of "),
        found,
        F.lit(" (customer_id "),
        F.col("customer_id").cast("string"),
        F.lit(")"),
    )
    return F.when(~F.col("as_of").eqNullSafe(F.lit(day)), F.raise_error(message)).otherwise(F.col("actions"))


def _advanced(state: DataFrame, actions: DataFrame, day: str, config: HistoryConfig) -> DataFrame:
    """Per customer of the state or of the day's actions: `previous` (null for a new one), `added`, and `advanced`.

    `advanced` holds the customer's kept actions as of day + 1, empty where all of them left the lookback.
    """
    current = parse_day(day)
    previous = state.select("customer_id", _checked_as_of(state, current, "advance_state").alias("previous"))
    day_actions = actions.where(F.col("action_day") == F.lit(current))
    added = collect_actions(day_actions, "collected").select(
        "customer_id", F.sort_array("collected", asc=False).alias("added")
    )
    # A left join of the state with the day's (small) arrays, plus the day's new customers, rather
    # than one full outer join: Spark can then broadcast the day's side and leave the state where it
    # is, where a full outer join always shuffles both sides.
    known = previous.join(added, "customer_id", "left")
    new = added.join(previous.select("customer_id"), "customer_id", "left_anti").select(
        "customer_id", F.lit(None).cast(T.ArrayType(ACTION_STRUCT)).alias("previous"), "added"
    )
    # The day's actions are usually all newer than the stored ones: then prepending keeps the order.
    merged = (
        F.when(F.col("added").isNull(), F.col("previous"))
        .when(F.col("previous").isNull(), F.col("added"))
        .when(F.element_at("added", -1) > F.element_at("previous", 1), F.concat("added", "previous"))
        .otherwise(F.sort_array(F.concat("previous", "added"), asc=False))
    )
    # `merged` is its own projection too: the expiry and the pruning read it several times.
    customers = known.unionByName(new).select("customer_id", "previous", "added", merged.alias("merged"))
    as_of = current + dt.timedelta(days=1)
    return _kept(customers, F.col("merged"), as_of, config, "previous", "added").withColumnRenamed(
        "actions", "advanced"
    )


def advance_state(state: DataFrame, actions: DataFrame, day: str, config: HistoryConfig = HistoryConfig()) -> DataFrame:
    """Return one row per customer with kept actions after `day`: the state as of `day` + 1.

    Args:
        state: the state as of `day` (`initial_state` or a previous `advance_state`); a row with
            another `as_of` fails the query when it runs.
        actions: unified actions; only those whose `action_day` is `day` are used, so all actions
            or only the day's partitions will do.
        day: the day whose actions are added ('yyyy-MM-dd').
        config: history length N and lookback days L, the same as the state was built with.

    Returns:
        `STATE_COLUMNS` as of `day` + 1: new customers appear, customers whose actions all left the
        lookback disappear.
    """
    as_of = parse_day(day) + dt.timedelta(days=1)
    return (
        _advanced(state, actions, day, config)
        .where(F.size("advanced") > 0)
        .select("customer_id", F.lit(as_of).alias("as_of"), F.col("advanced").alias("actions"))
    )


def state_changes(state: DataFrame, actions: DataFrame, day: str, config: HistoryConfig = HistoryConfig()) -> DataFrame:
    """Return one row per customer whose state changes when `day`'s actions are added: what a MERGE must write.

    Args: as `advance_state`.

    Returns:
        `customer_id` and `actions`: the customer's actions as of `day` + 1, or null where all of
        them left the lookback (its row goes). A customer with no action that day and none leaving
        the lookback keeps its row as it is, so it is not here: pruning and expiry only ever drop
        actions, so an unchanged size means an unchanged array.
    """
    changed = F.col("added").isNotNull() | (F.size("advanced") != F.size("previous"))
    return (
        _advanced(state, actions, day, config)
        .where(changed)
        .select("customer_id", F.when(F.size("advanced") > 0, F.col("advanced")).alias("actions"))
    )


def histories_from_state(state: DataFrame, days: DataFrame, config: HistoryConfig = HistoryConfig()) -> DataFrame:
    """Return one row per row of `days`: its N newest actions of days [dt - L, dt), as `build_histories` does.

    Args:
        state: the state as of the day of `days` (`initial_state` / `advance_state`).
        days: customer-days of that one day, `dt` ('yyyy-MM-dd') and `customer_id`; a row whose
            customer is in the state with another `as_of` fails the query when it runs (a customer
            absent from the state cannot be checked and gets an empty history).
        config: history length N and lookback days L, the same as the state was built with.

    Returns:
        `dt`, `customer_id`, `actions` (array<int>, N item ids, newest first, 0-padded) and
        `action_types` (array<tinyint>, N codes, 0-padded): the columns and types of `build_histories`.
    """
    length = config.history_length
    day = F.to_date("dt", DAY_FORMAT)
    found = F.coalesce(F.col("as_of").cast("string"), F.lit("null"))
    message = F.concat(
        F.lit("histories_from_state: customer-day "),
        F.col("dt"),
        F.lit(" / "),
        F.col("customer_id").cast("string"),
        F.lit(" needs a state as of its day, found one as of "),
        found,
    )
    checked = F.when(F.col("as_of").isNotNull() & ~F.col("as_of").eqNullSafe(day), F.raise_error(message)).otherwise(
        F.slice(or_empty("actions"), 1, length)
    )
    visible = (
        days.select("dt", "customer_id")
        .join(state.select("customer_id", "as_of", "actions"), "customer_id", "left")
        .select("dt", "customer_id", checked.alias("visible"))
    )
    return visible.select("dt", "customer_id", *padded_history("visible", length))
