"""Histories joined to impressions, and the public `build_training_examples`."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.actions import unify_actions
from carousel.config import DEFAULT_HISTORY_LENGTH, DEFAULT_LOOKBACK_DAYS, HistoryConfig, check_knob
from carousel.contract import TRAINING_EXAMPLES
from carousel.history import build_histories
from carousel.quality import keep_valid

EXAMPLE_COLUMNS = TRAINING_EXAMPLES.column_names


def impressions_in_window(impressions: DataFrame, window_start: str | None, window_end: str | None) -> DataFrame:
    """Return the impression rows whose dt lies in [window_start, window_end]; a None bound is open."""
    if window_start:
        impressions = impressions.where(F.col("dt") >= window_start)
    if window_end:
        impressions = impressions.where(F.col("dt") <= window_end)
    return impressions


def impressions_in_rolling_window(
    impressions: DataFrame, window_days: int, window_start: str | None = None, window_end: str | None = None
) -> DataFrame:
    """Return the impression rows of the window: `window_days` days ending at `window_end`, else at the newest dt.

    An explicit `window_start` replaces the start the days give (a backfill names both bounds).
    The rows' `dt` must be 'yyyy-MM-dd' (bronze rows are), so the newest day is their greatest text.
    """
    check_knob("window_days", window_days)
    if window_end is not None:
        end = dt.date.fromisoformat(window_end)
        start = window_start or (end - dt.timedelta(days=window_days - 1)).isoformat()
        return impressions_in_window(impressions, start, window_end)
    # Column names only, no schema lookup: a pipeline resolves its datasets after defining them.
    newest = impressions.agg(F.max("dt").alias("newest_dt"))
    first = F.date_format(F.date_sub(F.to_date("newest.newest_dt"), window_days - 1), "yyyy-MM-dd")
    start = F.lit(window_start) if window_start else first
    return (
        impressions.alias("impression")
        .crossJoin(F.broadcast(newest.alias("newest")))
        .where(F.col("impression.dt") >= start)
        .select("impression.*")
    )


def explode_impressions(impressions: DataFrame, schema: T.StructType | None = None) -> DataFrame:
    """Return one row per shown item of each valid raw impression row, with its 0-based position.

    `schema` is the impressions' schema when known beforehand (see `carousel.schemas.conformed_columns`).

    Returns:
        `dt` ('yyyy-MM-dd'), `ranking_id`, `customer_id`, `position` int, `item_id` int, `is_order` boolean.
    """
    return (
        keep_valid(impressions, "impressions", schema)
        .select(
            "dt",  # dt_parsable holds: already exactly 'yyyy-MM-dd'
            "ranking_id",
            "customer_id",
            F.posexplode("impressions").alias("position", "shown"),
        )
        .select(
            "dt",
            "ranking_id",
            "customer_id",
            "position",
            F.col("shown.item_id").alias("item_id"),
            F.col("shown.is_order").alias("is_order"),
        )
    )


def impression_rows_per_customer_day(impressions: DataFrame, schema: T.StructType | None = None) -> DataFrame:
    """Return one row per (dt, customer_id) with valid impression rows, those rows' ranking ids and lists beside it.

    Returns:
        `dt` ('yyyy-MM-dd'), `customer_id`, `impression_rows` (array of struct `ranking_id`,
        `impressions`: the valid raw rows of that customer-day, usually one).
    """
    return (
        keep_valid(impressions, "impressions", schema)
        .groupBy("dt", "customer_id")  # dt_parsable holds: dt is exactly 'yyyy-MM-dd'
        .agg(F.collect_list(F.struct("ranking_id", "impressions")).alias("impression_rows"))
    )


def _shown_items_of_histories(histories: DataFrame) -> DataFrame:
    """One row per shown item of histories built over `impression_rows_per_customer_day`."""
    return (
        histories.select("*", F.explode("impression_rows").alias("impression_row"))
        .select("*", F.posexplode("impression_row.impressions").alias("position", "shown"))
        .select(
            "dt",
            F.col("impression_row.ranking_id").alias("ranking_id"),
            "customer_id",
            "position",
            F.col("shown.item_id").alias("item_id"),
            F.col("shown.is_order").alias("is_order"),
            "actions",
            "action_types",
        )
    )


def build_training_examples(
    impressions: DataFrame,
    clicks: DataFrame,
    add_to_carts: DataFrame,
    orders: DataFrame,
    history_length: int = DEFAULT_HISTORY_LENGTH,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
) -> DataFrame:
    """Return one training example per shown item of every valid impression row.

    Args:
        impressions, clicks, add_to_carts, orders: raw DataFrames with the columns of
            `carousel.schemas.RAW_SCHEMAS` (extra columns are ignored).
        history_length: N, the exact length of `actions` and `action_types`.
        lookback_days: actions of days [dt - lookback_days, dt) count.

    Returns:
        `dt`, `ranking_id`, `customer_id`, `position` (0-based), `item_id`, `is_order`,
        `actions` (N item ids, newest first, 0-padded) and `action_types` (N codes, 1 click,
        2 add-to-cart, 3 order, 0 padding). Rows breaking a rule of `carousel.quality.RULES`
        are left out: such an action is in no history, such an impression row yields no examples.

    Raises:
        carousel.errors.KnobRangeError: a knob lies outside its range in `carousel.config.KNOBS`.
        carousel.schemas.SchemaContractError: an input lacks a required column or has one of
            an incompatible type.
    """
    config = HistoryConfig(history_length=history_length, lookback_days=lookback_days)
    actions = unify_actions(clicks, add_to_carts, orders)
    # The impression rows ride along with their customer-day through the history build, so the
    # N-action arrays are never shuffled to meet the shown items: they are built where they are used.
    days = impression_rows_per_customer_day(impressions)
    histories = build_histories(actions, days, config, carry=["impression_rows"])
    return _shown_items_of_histories(histories)
