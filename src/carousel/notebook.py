"""What the thin notebooks in `notebooks/` share: parameters as widgets on Databricks, defaults locally.

A notebook calls `parameters(globals(), name=default, ...)`: on Databricks, where the notebook has
`dbutils`, each becomes a text widget (created with its default, read back as set); elsewhere
each is the environment variable `CAROUSEL_<NAME>` when set, else its default. `session(globals())`
is the notebook's `spark` where it has one, else a local session.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel.locations import is_path
from carousel.reconciliation import union_all
from carousel.run_metrics import ROWS_PROCESSED, newest_succeeded_run


def parameters(namespace: Mapping[str, object], **defaults: str) -> dict[str, str]:
    """Each named parameter's value: a widget's on Databricks, else `CAROUSEL_<NAME>` or the default."""
    dbutils = namespace.get("dbutils")
    values = {}
    for name, default in defaults.items():
        if dbutils is not None:
            dbutils.widgets.text(name, default)
            values[name] = dbutils.widgets.get(name)
        else:
            values[name] = os.environ.get(f"CAROUSEL_{name.upper()}", default)
    return values


def session(namespace: Mapping[str, object]) -> SparkSession:
    """The notebook's `spark` (Databricks, or a test that hands one in), else a local session."""
    spark = namespace.get("spark")
    if spark is not None:
        return spark
    from carousel.spark import local_spark

    return local_spark("carousel-notebook")


def table_in(container: str, table: str) -> str:
    """`table` inside `container`: a folder of Delta tables (a path) or a `catalog.schema`."""
    return f"{container.rstrip('/')}/{table}" if is_path(container) else f"{container}.{table}"


def latest_reconciliation(run_metrics: DataFrame) -> DataFrame:
    """One row per raw source of the newest succeeded run: run id, rows read, kept, quarantined, and taken in."""
    metrics = ["rows_read", "rows_kept", "rows_quarantined", ROWS_PROCESSED]
    return (
        newest_succeeded_run(run_metrics)
        .where(F.col("metric").isin(metrics))
        .groupBy("run_id", F.col("subject").alias("source"))
        .pivot("metric", metrics)
        .agg(F.first("value").cast("bigint"))
        .orderBy("source")
    )


def quarantined_by_rule(quarantines: Mapping[str, DataFrame]) -> DataFrame:
    """One row per raw source and broken rule: how many quarantined rows broke it (a row may break several)."""
    broken = union_all(
        quarantine.select(F.lit(source).alias("source"), F.explode("broken_rules").alias("rule"))
        for source, quarantine in quarantines.items()
    )
    return broken.groupBy("source", "rule").agg(F.count(F.lit(1)).alias("rows")).orderBy("source", F.desc("rows"))
