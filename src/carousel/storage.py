"""Reading raw sources (a table name or a path) and writing outputs as Delta tables."""

from __future__ import annotations

import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.errors import CarouselError
from carousel.locations import is_path
from carousel.schemas import RAW_SCHEMAS

RAW_SOURCES = tuple(RAW_SCHEMAS)

_NOT_FOUND_CONDITIONS = frozenset({"PATH_NOT_FOUND", "TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND"})
"""Spark's error conditions for a path, a table or its schema that does not exist."""


class SourceNotFoundError(CarouselError, FileNotFoundError):
    """A source (a path or a catalog table) does not exist; the message names the source and where it was looked for."""

    def __init__(self, source: str, name: str | None = None) -> None:
        kind = "path" if is_path(source) else "table or view"
        label = f"source '{name}'" if name else "source"
        super().__init__(f"{label} not found: no {kind} '{source}'")
        self.source = source
        self.name = name


def absolute_if_local(source: str) -> str:
    """A local path made absolute (Spark resolves paths against its own working directory); else `source`."""
    return os.path.abspath(source) if is_path(source) and "://" not in source else source


def check_source_exists(source: str, name: str | None = None) -> None:
    """Raise `SourceNotFoundError` when `source` is a local path with nothing there; needs no Spark.

    A table, or a path with a URI scheme, is left to Spark (see `read_source`).
    """
    if is_path(source) and "://" not in source and not os.path.exists(source):
        raise SourceNotFoundError(absolute_if_local(source), name)


def _error_condition(error: Exception) -> str | None:
    # getCondition() since PySpark 4.0; getErrorClass() before (a Databricks runtime may be older).
    getter = getattr(error, "getCondition", None) or getattr(error, "getErrorClass", None)
    return getter() if getter else None


def read_source(spark: SparkSession, source: str, name: str | None = None) -> DataFrame:
    """Return a raw source: a catalog table, a Delta directory, or a Parquet directory or file.

    Args:
        spark: the session.
        source: a table name or a path.
        name: what the source is (e.g. 'clicks'), for the error message.

    Raises:
        SourceNotFoundError: nothing is at the path, or no such table (as far as Spark says so when
            asked: Spark Connect resolves a table only when the DataFrame is analyzed).
    """
    from pyspark.errors import AnalysisException

    check_source_exists(source, name)
    try:
        if not is_path(source):
            return spark.table(source)
        if os.path.isdir(os.path.join(source, "_delta_log")):
            return spark.read.format("delta").load(source)
        # A Parquet `dt=` partition may come back as a date: `carousel.schemas.conform` accepts both.
        return spark.read.parquet(source)
    except AnalysisException as error:
        if _error_condition(error) in _NOT_FOUND_CONDITIONS:
            raise SourceNotFoundError(source, name) from error
        raise


def read_source_stream(spark: SparkSession, source: str, schema: T.StructType) -> DataFrame:
    """Return a raw source as a stream: a catalog table, a Delta directory, or a Parquet directory.

    Told apart as `read_source` does. `schema` is the source's schema (from `read_source`): a
    Parquet stream cannot infer it.
    A checkpointed query over this stream reads each landed row once, across updates and restarts.
    """
    if not is_path(source):
        return spark.readStream.table(source)
    if os.path.isdir(os.path.join(source, "_delta_log")):
        return spark.readStream.format("delta").load(source)
    return spark.readStream.schema(schema).parquet(source)


def write_delta(df: DataFrame, path: str, partition_by: str | None = "dt") -> None:
    """Replace the Delta table at `path` with `df`, partitioned by `partition_by`."""
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.save(path)


def replace_partition(df: DataFrame, path: str, column: str, value: str) -> None:
    """Replace the rows of `column` = `value` in the Delta table at `path` (created when absent) with `df`.

    Rerunning with the same `df` leaves the same table: what the daily incremental mode relies on.
    """
    (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{column} = '{value}'")
        .partitionBy(column)
        .save(path)
    )


def replace_days(df: DataFrame, path: str, first: str | None, last: str | None, column: str = "dt") -> None:
    """Replace the rows whose `column` lies in [`first`, `last`] of the Delta table at `path` with `df`, atomically.

    A None bound is open; with neither, the whole table is replaced. Days outside the range stay
    as they are, so building one window never touches another, and rerunning a window replaces
    its days instead of appending them twice. Delta refuses a `df` row outside the range.
    """
    bounds = [f"{column} >= '{first}'" if first else None, f"{column} <= '{last}'" if last else None]
    condition = " AND ".join(bound for bound in bounds if bound)
    writer = df.write.format("delta").mode("overwrite").partitionBy(column)
    writer = writer.option("replaceWhere", condition) if condition else writer.option("overwriteSchema", "true")
    writer.save(path)


def read_partition(spark: SparkSession, path: str, column: str, value: str) -> DataFrame:
    """The rows of `column` = `value` of the Delta table at `path` (a date column compares as 'yyyy-MM-dd')."""
    # A filter on partition columns alone still prunes partitions, cast or not.
    return spark.read.format("delta").load(path).where(F.col(column).cast("string") == value)


def delta_row_count(spark: SparkSession, path: str) -> int:
    """Rows in the Delta table at `path` (answered from Delta's file statistics where it can)."""
    return spark.read.format("delta").load(path).count()
