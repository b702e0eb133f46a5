"""The one builder of local SparkSessions (Delta configured) for tests, the CLI and benchmarks."""

from __future__ import annotations

import importlib.metadata
import os

import pyspark
from pyspark.sql import SparkSession

LOCAL_DELTA_DEFAULTS: dict[str, str] = {
    # Delta replays a table's log in 50 tasks by default, sized for clusters: on a laptop that is
    # most of the cost of opening a small table (4 raw tables took ~40 task-seconds at 20k customers).
    "spark.databricks.delta.snapshotPartitions": str(os.cpu_count() or 2),
}

LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    **LOCAL_DELTA_DEFAULTS,
}


def delta_package() -> str:
    """Delta Lake's Maven coordinate for the installed pyspark and delta-spark (what Spark's Ivy fetches)."""
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{importlib.metadata.version('delta-spark')}"


def local_spark(
    app_name: str = "carousel",
    *,
    cores: int | None = None,
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Return a local SparkSession with Delta Lake, UTC and the UI off.

    Args:
        app_name: shown in logs.
        cores: local[cores]; all cores when None.
        shuffle_partitions: spark.sql.shuffle.partitions; Spark's default when None.
        driver_memory: e.g. "8g"; only takes effect when no JVM is running yet.
        extra_conf: any further Spark settings, applied last.
    """
    from delta import configure_spark_with_delta_pip

    master = f"local[{cores}]" if cores else "local[*]"
    builder = SparkSession.builder.master(master).appName(app_name)
    conf = dict(LOCAL_DEFAULTS)
    if shuffle_partitions is not None:
        conf["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    if driver_memory is None:
        driver_memory = os.environ.get("CAROUSEL_DRIVER_MEMORY")
    if driver_memory:
        conf["spark.driver.memory"] = driver_memory
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = configure_spark_with_delta_pip(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
