"""Table I/O: read, write, merge and version a Delta table given as a path or a catalog name.

Every module that touches a stored table goes through here: the raw sources (`read_source`), the
gold engine's inputs and outputs (`read_table`, `write_table`, `merge_table`, `table_version`,
`inserted_since`), the local runner's published versions.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.contract import TableSpec, sql_text
from carousel.errors import CarouselError, ConfigError
from carousel.locations import is_path
from carousel.schemas import RAW_SCHEMAS

log = logging.getLogger("carousel")

RAW_SOURCES = tuple(RAW_SCHEMAS)

CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
"""The table property the gold engine's inputs are created with: it reads only their rows new since its last step."""
DELETION_VECTORS = {"delta.enableDeletionVectors": "true"}
"""The property of tables the engine merges into: a MERGE then marks replaced rows instead of rewriting their files."""

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


def qualified_name(catalog: str | None, schema: str | None, table: str) -> str:
    """Return `catalog`.`schema`.`table`, `schema`.`table` or `table`, leaving out the empty parts."""
    if catalog and not schema:
        raise ConfigError(f"a catalog ({catalog!r}) needs a schema to name table {table!r}")
    return ".".join(f"`{part}`" for part in (catalog, schema, table) if part)


def table_ref(location: str) -> str:
    """How SQL names the table: delta.`path` for a path (a local one made absolute), else the catalog name.

    Delta resolves `delta.`path`` only for an absolute path: a relative one is looked up as a table
    named `delta`.`path` (seen from a pool thread, where `DESCRIBE HISTORY` of `data/pipeline/...` failed).
    """
    return f"delta.`{absolute_if_local(location)}`" if is_path(location) else location


def table_exists(spark: SparkSession, location: str) -> bool:
    """Whether the Delta table is there; a cloud path is taken to be (Spark says otherwise when it is read)."""
    if not is_path(location):
        return spark.catalog.tableExists(location)
    return "://" in location or os.path.isdir(os.path.join(location, "_delta_log"))


def read_table(spark: SparkSession, location: str, version: int | None = None) -> DataFrame:
    """The Delta table at `location` (a path or a catalog name), at `version` when given."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(location) if is_path(location) else reader.table(location)


def write_table(
    frame: DataFrame,
    location: str,
    *,
    replace_where: str | None = None,
    partition_by: str | None = None,
    properties: dict[str, str] | None = None,
    mode: str = "overwrite",
    described_by: TableSpec | None = None,
) -> None:
    """Write `frame` to the Delta table at `location`: replace it, only the rows of `replace_where`, or append.

    `properties` (Delta table properties) are set when the write creates the table. With
    `described_by` (the table's entry in `carousel.contract`), its columns carry the contract's
    comments and a table it creates the contract's table comment.
    """
    spark = frame.sparkSession
    if described_by is not None:
        frame = with_comments(frame, described_by.descriptions)
        properties = {"comment": described_by.comment, **(properties or {})}
    created = bool(properties) and not table_exists(spark, location)
    writer = frame.write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = (
            writer.option("replaceWhere", replace_where) if replace_where else writer.option("overwriteSchema", "true")
        )
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.save(location) if is_path(location) else writer.saveAsTable(location)
    if created:
        assignments = ", ".join(f"'{key}' = '{sql_text(value)}'" for key, value in properties.items())
        spark.sql(f"ALTER TABLE {table_ref(location)} SET TBLPROPERTIES ({assignments})")


def with_comments(frame: DataFrame, descriptions: Mapping[str, str]) -> DataFrame:
    """`frame` with each column of `descriptions` carrying its sentence as the column comment Delta stores."""
    return frame.select(
        *(
            F.col(name).alias(name, metadata={"comment": descriptions[name]}) if name in descriptions else F.col(name)
            for name in frame.columns
        )
    )


def merge_table(
    spark: SparkSession, changes: DataFrame, location: str, key: str, delete_when: str | None = None
) -> None:
    """Upsert `changes` into the Delta table at `location` by `key`; rows matching `delete_when` delete theirs instead.

    Only the files holding changed keys are touched (with deletion vectors, not even rewritten).
    """
    view = f"carousel_changes_{secrets.token_hex(6)}"
    changes.createOrReplaceTempView(view)
    deleted = f"WHEN MATCHED AND ({delete_when}) THEN DELETE " if delete_when else ""
    inserted = (
        f"WHEN NOT MATCHED AND NOT ({delete_when}) THEN INSERT *" if delete_when else "WHEN NOT MATCHED THEN INSERT *"
    )
    updates = ", ".join(f"target.{name} = changes.{name}" for name in changes.columns if name != key)
    try:
        spark.sql(
            f"MERGE INTO {table_ref(location)} AS target USING {view} AS changes "
            f"ON target.{key} = changes.{key} {deleted}WHEN MATCHED THEN UPDATE SET {updates} {inserted}"
        )
    finally:
        spark.catalog.dropTempView(view)


def table_version(spark: SparkSession, location: str) -> int:
    """The newest committed version of the Delta table at `location`."""
    return spark.sql(f"DESCRIBE HISTORY {table_ref(location)} LIMIT 1").first()["version"]


def rows_written_by_last_commit(spark: SparkSession, location: str) -> int:
    """The rows the newest commit of the Delta table at `location` wrote: its `numOutputRows`, no scan of the table."""
    metrics = spark.sql(f"DESCRIBE HISTORY {table_ref(location)} LIMIT 1").first()["operationMetrics"]
    return int(metrics["numOutputRows"])


def restore_table(spark: SparkSession, location: str, version: int) -> None:
    """Bring the Delta table at `location` back to `version` (a new commit; the later ones stay in its history)."""
    spark.sql(f"RESTORE TABLE {table_ref(location)} TO VERSION AS OF {version}")


class NoChangeFeedError(Exception):
    """The table has no change feed over the versions asked for (created without it, or vacuumed)."""


def inserted_since(spark: SparkSession, location: str, version: int, latest: int) -> DataFrame | None:
    """The rows inserted into `location` after `version` up to `latest`, or None when it has no newer version.

    Raises:
        NoChangeFeedError: the table has no change feed over those versions.
    """
    from pyspark.errors import AnalysisException

    if latest <= version:
        return None
    reader = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", version + 1)
    reader = reader.option("endingVersion", latest)
    try:
        changes = reader.load(location) if is_path(location) else reader.table(location)
        return changes.where(F.col("_change_type") == "insert").drop(
            "_change_type", "_commit_version", "_commit_timestamp"
        )
    except AnalysisException as error:
        raise NoChangeFeedError(f"{location}: {error}") from error
