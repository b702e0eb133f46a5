"""One project or floor case of the race, in its own process: its Spark settings, its session, its measurement."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.harness import (
    raw_dir,
)
from benchmarks.race_cases import SCALES, SETTINGS, Case, window_start
from benchmarks.race_data import read_raw

# ---------------------------------------------------------------------------------------------
# Settings


def cli_shuffle_partitions() -> int:
    """The `--shuffle-partitions` default of the project's CLI (`carousel build`)."""
    from carousel.cli import add_spark_options

    parser = argparse.ArgumentParser()
    add_spark_options(parser)
    return int(parser.get_default("shuffle_partitions"))


def spark_conf(settings: str, driver_memory: str, shuffle_partitions: int | None = None) -> dict[str, str]:
    """The Spark settings of a profile, as the competitor's session gets them (no Delta).

    `defaults`: only the driver memory (and the status API the metrics read); `cli`: the project's
    `carousel.spark.LOCAL_DEFAULTS` without the Delta classes, and `shuffle_partitions`.
    """
    from benchmarks.metrics import MEASURING_CONF

    if settings == "defaults":
        conf = {"spark.driver.memory": driver_memory}
    elif settings == "cli":
        from carousel.spark import LOCAL_DEFAULTS

        delta_classes = ("spark.sql.extensions", "spark.sql.catalog.spark_catalog")
        conf = {key: value for key, value in LOCAL_DEFAULTS.items() if key not in delta_classes}
        conf["spark.driver.memory"] = driver_memory
        conf["spark.sql.shuffle.partitions"] = str(shuffle_partitions or cli_shuffle_partitions())
    else:
        raise ValueError(f"unknown settings {settings!r}; choose from {', '.join(SETTINGS)}")
    return {**conf, **MEASURING_CONF}


# ---------------------------------------------------------------------------------------------
# One project or floor case, in its own process


def case_frame(kind: str, raw: dict, from_dt: str | None):
    """The DataFrame a project or floor case writes to the noop sink."""
    from pyspark.sql import functions as F

    import carousel
    from carousel.actions import raw_actions, unify_actions
    from carousel.config import HistoryConfig
    from carousel.examples import impressions_in_window
    from carousel.history import build_histories, customer_days

    impressions = impressions_in_window(raw["impressions"], from_dt, None)
    actions = raw["clicks"], raw["add_to_carts"], raw["orders"]
    if kind == "project-per-customer-day":
        return build_histories(unify_actions(*actions), customer_days(impressions), HistoryConfig())
    if kind == "project-per-impression":
        return carousel.build_training_examples(impressions, *actions)
    if kind == "baseline":
        from benchmarks.approaches import baseline_histories

        return baseline_histories(unify_actions(*actions), customer_days(impressions), HistoryConfig())
    columns = raw_actions(raw)
    if kind == "floor-scan":
        return columns
    if kind == "floor-shuffle":
        return columns.repartition("customer_id")
    if kind == "floor-collect-sort":
        collected = F.collect_list(F.struct("occurred_at", "action_type", "item_id", "action_day"))
        return columns.groupBy("customer_id").agg(F.sort_array(collected, asc=False).alias("actions"))
    raise ValueError(f"not a project or floor case: {kind!r}")


def project_session(settings: str, driver_memory: str, shuffle_partitions: int | None, app_name: str):
    """The session of a project or floor case: Spark's defaults, or the CLI's `local_spark`."""
    from benchmarks.metrics import MEASURING_CONF

    if settings == "cli":
        from carousel.spark import local_spark

        return local_spark(
            app_name,
            shuffle_partitions=shuffle_partitions or cli_shuffle_partitions(),
            driver_memory=driver_memory,
            extra_conf=MEASURING_CONF,
        )
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[*]").appName(app_name)
    for key, value in spark_conf(settings, driver_memory).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def session_facts(spark) -> dict:
    """The settings a record should carry, read back from the running session."""
    conf = spark.conf
    return {
        "spark_version": spark.version,
        "shuffle_partitions": int(conf.get("spark.sql.shuffle.partitions")),
        "aqe": conf.get("spark.sql.adaptive.enabled"),
        "session_time_zone": conf.get("spark.sql.session.timeZone"),
        "driver_memory": spark.sparkContext.getConf().get("spark.driver.memory", "1g"),
    }


def measure_case(case: Case, data_dir: Path, driver_memory: str, shuffle_partitions: int | None) -> dict:
    """Run one project or floor case in this process; return its measurements."""
    from benchmarks.metrics import as_record, measured, memory_peaks

    spark = project_session(case.settings, driver_memory, shuffle_partitions, f"race {case.name}")
    raw = read_raw(spark, raw_dir(data_dir, case.scale))
    from_dt = window_start(SCALES[case.scale], case.impression_days)
    with measured(spark) as cost:
        case_frame(case.kind, raw, from_dt).write.format("noop").mode("overwrite").save()
    record = {**as_record(cost), **memory_peaks(spark), **session_facts(spark)}
    spark.stop()
    return record
