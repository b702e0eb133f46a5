"""What the benchmark times, on the same raw data: the project's build, an I/O floor and the common approach.

Each approach reads the four raw sources and writes its output as Delta tables under one
directory, so wall time, shuffle bytes and output bytes compare like for like.
"""

from __future__ import annotations

import os

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from carousel.actions import raw_actions, unify_actions
from carousel.batch import build
from carousel.config import HistoryConfig
from carousel.examples import explode_impressions, impressions_in_window
from carousel.history import customer_days, padded_history
from carousel.schemas import DAY_FORMAT
from carousel.storage import RAW_SOURCES, read_source, write_table


def read_raw(spark: SparkSession, raw_dir: str) -> dict[str, DataFrame]:
    """The four raw sources under `raw_dir`, by name."""
    return {name: read_source(spark, os.path.join(raw_dir, name)) for name in RAW_SOURCES}


def project_build(
    spark: SparkSession, raw_dir: str, out: str, config: HistoryConfig, from_dt: str | None = None
) -> None:
    """The project's gold, as `carousel build` writes it: quarantine, bronze and silver, then the gold engine."""
    sources = {name: os.path.join(raw_dir, name) for name in RAW_SOURCES}
    build(spark, sources, out, config, from_dt)


def io_floor(raw: dict[str, DataFrame], out: str, shuffle_partitions: int) -> None:
    """Read the raw inputs, shuffle the actions once by customer and write them, and copy the impressions.

    The least any exact build must do: every action has to reach its customer's task, and the
    output (the year of actions per customer, about the size of the gold histories) has to be written.
    """
    actions = raw_actions(raw).repartition(shuffle_partitions, "customer_id")
    # The gold arrays hold an item id and a type code per action: write as much per shuffled action.
    payload = actions.select("item_id", F.lit(1).cast("tinyint").alias("action_type"))
    write_table(payload, os.path.join(out, "shuffled_actions"))
    impressions = raw["impressions"].select("dt", "ranking_id", "customer_id", "impressions")
    write_table(impressions, os.path.join(out, "impressions"), partition_by="dt")


def baseline_histories(actions: DataFrame, days: DataFrame, config: HistoryConfig) -> DataFrame:
    """The common approach: join each customer-day to all of the customer's actions, rank, keep N, collect.

    Same columns and rows as `carousel.history.build_histories`.
    """
    length = config.history_length
    day = F.to_date("dt", DAY_FORMAT)
    visible = days.join(actions, "customer_id").where(
        (F.col("action_day") < day) & (F.col("action_day") >= F.date_sub(day, config.lookback_days))
    )
    newest_first = Window.partitionBy("dt", "customer_id").orderBy(
        F.col("occurred_at").desc(), F.col("action_type").desc(), F.col("item_id").desc()
    )
    ranked = visible.select(
        "dt", "customer_id", "item_id", "action_type", F.row_number().over(newest_first).alias("rank")
    )
    collected = (
        ranked.where(F.col("rank") <= length)
        .groupBy("dt", "customer_id")
        .agg(F.sort_array(F.collect_list(F.struct("rank", "item_id", "action_type"))).alias("ranked"))
    )
    # `ranked` sorts by rank first, so the arrays are newest first, as padded_history expects.
    real = F.coalesce(F.col("ranked"), F.array().cast("array<struct<rank:int,item_id:int,action_type:tinyint>>"))
    return days.join(collected, ["dt", "customer_id"], "left").select(
        "dt", "customer_id", *padded_history(real, length)
    )


def baseline_build(raw: dict[str, DataFrame], out: str, config: HistoryConfig, from_dt: str | None = None) -> None:
    """The common approach's gold: histories per customer-day and the shown items."""
    impressions = impressions_in_window(raw["impressions"], from_dt, None)
    actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"])
    histories = baseline_histories(actions, customer_days(impressions), config)
    write_table(histories, os.path.join(out, "customer_histories"), partition_by="dt")
    write_table(explode_impressions(impressions), os.path.join(out, "shown_items"), partition_by="dt")
