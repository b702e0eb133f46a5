"""Input contracts: named errors for missing or mistyped columns; extra columns change nothing."""

from __future__ import annotations

import pytest
from builders import at, day, example_tuples, raw_frames
from pyspark.sql import functions as F

from carousel import ColumnTypeError, HistoryConfig, MissingColumnError, build_training_examples
from carousel.schemas import RAW_SCHEMAS, conform

IMPRESSION = ("2025-03-10", "r", 1, [(500, False)])
CLICK = ("2025-03-09", 1, 11, at("2025-03-09T10:00"))
ADD_TO_CART = ("2025-03-08", 1, 12, 1201, at("2025-03-08T10:00"))
ORDER = (day("2025-03-07"), 1, 13, 1301, at("2025-03-07T10:00"))


@pytest.fixture(scope="module")
def frames(spark):
    return raw_frames(spark, [IMPRESSION], [CLICK], [ADD_TO_CART], [ORDER])


@pytest.mark.parametrize("position", range(4))
def test_missing_required_column_names_table_and_column(frames, position):
    table = list(RAW_SCHEMAS)[position]
    column = RAW_SCHEMAS[table].fields[-1].name
    broken = list(frames)
    broken[position] = frames[position].drop(column)
    with pytest.raises(MissingColumnError, match=f"table '{table}' lacks required column '{column}'") as raised:
        build_training_examples(*broken)
    assert (raised.value.table, raised.value.column) == (table, column)


def test_incompatible_type_names_table_and_column(frames):
    impressions, clicks, add_to_carts, orders = frames
    clicks = clicks.withColumn("click_time", F.col("click_time").cast("string"))
    with pytest.raises(ColumnTypeError, match="table 'clicks' column 'click_time' has type string, expected timestamp"):
        build_training_examples(impressions, clicks, add_to_carts, orders)


def test_impression_struct_without_is_order_is_refused(spark):
    impressions = spark.createDataFrame(
        [("2025-03-10", "r", 1, [(500,)])],
        "dt string, ranking_id string, customer_id int, impressions array<struct<item_id:int>>",
    )
    with pytest.raises(ColumnTypeError, match="column 'impressions.is_order'"):
        conform(impressions, "impressions")


def test_extra_columns_and_compatible_types_change_nothing(spark, frames):
    impressions, clicks, add_to_carts, orders = frames
    expected = example_tuples(build_training_examples(*frames, history_length=4))
    widened = (
        impressions.withColumn("customer_id", F.col("customer_id").cast("bigint")).withColumn("extra", F.lit("x")),
        clicks.withColumn("ingested_at", F.current_timestamp()).withColumn("dt", F.to_date("dt")),
        add_to_carts.withColumn("config_id", F.col("config_id").cast("smallint")).withColumn("source", F.lit(1)),
        orders.withColumn("order_date", F.date_format("order_date", "yyyy-MM-dd")),
    )
    assert example_tuples(build_training_examples(*widened, history_length=4)) == expected
    assert expected == [("2025-03-10", "r", 1, 0, 500, False, [11, 12, 13, 0], [1, 2, 3, 0])]


def test_bigint_ids_beyond_int_range_are_rejected_rows_not_crashes(spark, frames):
    impressions, clicks, add_to_carts, orders = frames
    huge = clicks.withColumn("item_id", F.lit(2**40))
    assert example_tuples(build_training_examples(impressions, huge, add_to_carts, orders, history_length=3)) == [
        ("2025-03-10", "r", 1, 0, 500, False, [12, 13, 0], [2, 3, 0])
    ]


@pytest.mark.parametrize(("history_length", "lookback_days"), [(0, 365), (1000, 0), (1.5, 365), (True, 365)])
def test_bad_knobs_are_refused(history_length, lookback_days):
    with pytest.raises((ValueError, TypeError)):
        HistoryConfig(history_length=history_length, lookback_days=lookback_days)
