"""Per-source reconciliation: rows read = rows kept + rows quarantined, per update and in total.

Every run, the declarative pipeline and `carousel build` alike, counts per raw source the rows it
read, kept and quarantined, and fails, naming the source and the counts, when they do not add up.
The declarative pipeline keeps its progress per update (`reconciliation_progress`): the totals so
far and this update's counts, per source and, from Kafka, per topic partition. Only transformations
live here; `carousel.run_metrics` records the counts of each run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.errors import CarouselError

RECONCILIATION_FAILED = "reconciliation failed"


@dataclass(frozen=True)
class SourceCounts:
    """What a run did with the rows of one raw source."""

    source: str
    rows_read: int
    rows_kept: int
    rows_quarantined: int

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_kept + self.rows_quarantined

    def describe(self) -> str:
        return (
            f"source '{self.source}': read {self.rows_read:,} rows, kept {self.rows_kept:,} + "
            f"quarantined {self.rows_quarantined:,} = {self.rows_kept + self.rows_quarantined:,}"
        )


class ReconciliationError(CarouselError, RuntimeError):
    """Rows of a raw source were lost or counted twice: read != kept + quarantined."""

    def __init__(self, unbalanced: list[SourceCounts]) -> None:
        super().__init__(f"{RECONCILIATION_FAILED}: " + "; ".join(counts.describe() for counts in unbalanced))
        self.unbalanced = unbalanced


def check_reconciled(counts: Iterable[SourceCounts]) -> None:
    """Raise `ReconciliationError` naming every source whose rows read != rows kept + rows quarantined."""
    unbalanced = [one for one in counts if not one.balanced]
    if unbalanced:
        raise ReconciliationError(unbalanced)


def _row_count(df: DataFrame, name: str) -> DataFrame:
    return df.agg(F.count(F.lit(1)).alias(name))


def source_counts(raw: DataFrame, kept: DataFrame, quarantined: DataFrame, source: str) -> DataFrame:
    """One row: `source`, `rows_read`, `rows_kept`, `rows_quarantined` of one raw source."""
    return (
        _row_count(raw, "rows_read")
        .crossJoin(_row_count(kept, "rows_kept"))
        .crossJoin(_row_count(quarantined, "rows_quarantined"))
        .select(F.lit(source).alias("source"), "rows_read", "rows_kept", "rows_quarantined")
    )


PROGRESS_COLUMNS = (
    "run_id",
    "source",
    "kafka_partition",
    "next_offset",
    "rows_read",
    "rows_kept",
    "rows_quarantined",
    "update_rows_read",
    "update_rows_kept",
    "update_rows_quarantined",
)
"""Columns of `reconciliation_progress`: totals so far and this update's counts, per source and Kafka partition."""

_PREVIOUS_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType()),
        T.StructField("kafka_partition", T.IntegerType()),
        *(
            T.StructField(name, T.LongType())
            for name in ("next_offset", "previous_read", "previous_kept", "previous_quarantined")
        ),
    ]
)
"""A `StructType`, not DDL: Spark Connect parses DDL on the server, which a pipeline query function may not ask."""

_UPDATE_COUNTS = ("update_rows_read", "update_rows_kept", "update_rows_quarantined")


@dataclass(frozen=True)
class Progress:
    """What the updates so far reconciled of one raw source (of one partition of its topic, for a Kafka source).

    Attributes:
        source: the raw source.
        kafka_partition: the topic's partition; None for a landed source.
        next_offset: the first offset of the partition not reconciled yet; None for a landed source.
        rows_read, rows_kept, rows_quarantined: the totals so far.
    """

    source: str
    kafka_partition: int | None
    next_offset: int | None
    rows_read: int
    rows_kept: int
    rows_quarantined: int


def progress_from_rows(rows: Iterable[Mapping]) -> dict[str, tuple[Progress, ...]]:
    """Per source, its `Progress` rows, from rows of the `reconciliation_progress` table (e.g. a collected frame)."""
    progress: dict[str, list[Progress]] = {}
    for row in rows:
        one = Progress(*(row[name] for name in ("source", "kafka_partition", "next_offset")), *map(int, _totals(row)))
        progress.setdefault(one.source, []).append(one)
    return {source: tuple(rows) for source, rows in progress.items()}


def _totals(row: Mapping) -> tuple:
    return row["rows_read"], row["rows_kept"], row["rows_quarantined"]


def previous_frame(spark: SparkSession, previous: Iterable[Progress]) -> DataFrame:
    """`previous` as a small frame: source, kafka_partition, next_offset, previous_read, _kept, _quarantined."""
    rows = [
        (one.source, one.kafka_partition, one.next_offset, one.rows_read, one.rows_kept, one.rows_quarantined)
        for one in previous
    ]
    return spark.createDataFrame(rows, _PREVIOUS_SCHEMA)


def landed_progress(totals: DataFrame, previous: Iterable[Progress]) -> DataFrame:
    """The progress row of a landed source from its totals now (one row as `source_counts`) and the previous update's.

    This update's counts are the totals now less the previous ones (none: the totals): the rows of
    the versions landed since, and what bronze and quarantine took in since.
    """
    before = {(one.rows_read, one.rows_kept, one.rows_quarantined) for one in previous}
    read, kept, quarantined = before.pop() if len(before) == 1 else (0, 0, 0)
    return totals.select(
        "source",
        F.lit(None).cast("int").alias("kafka_partition"),
        F.lit(None).cast("bigint").alias("next_offset"),
        "rows_read",
        "rows_kept",
        "rows_quarantined",
        (F.col("rows_read") - read).alias("update_rows_read"),
        (F.col("rows_kept") - kept).alias("update_rows_kept"),
        (F.col("rows_quarantined") - quarantined).alias("update_rows_quarantined"),
    )


def checked_progress(progress: DataFrame, run_id: str) -> DataFrame:
    """`PROGRESS_COLUMNS` of progress rows (one per source, or per Kafka partition); fails on an unbalanced update.

    A source is unbalanced when this update's rows read differ from its rows kept plus quarantined,
    summed over the source's partitions. The failure is Spark's `raise_error`, so it fails a
    pipeline update too, before the progress is stored; its message names the source and the
    update's counts, as `ReconciliationError` does.
    """
    per_source = Window.partitionBy("source")
    read, kept, quarantined = (F.sum(column).over(per_source) for column in _UPDATE_COUNTS)
    message = F.format_string(
        f"{RECONCILIATION_FAILED}: source '%s': read %d rows, kept %d + quarantined %d = %d",
        F.col("source"),
        read,
        kept,
        quarantined,
        kept + quarantined,
    )
    return progress.select(
        F.lit(run_id).alias("run_id"),
        "source",
        "kafka_partition",
        "next_offset",
        F.when(read == kept + quarantined, F.col("rows_read")).otherwise(F.raise_error(message)).alias("rows_read"),
        "rows_kept",
        "rows_quarantined",
        *_UPDATE_COUNTS,
    )


def progress_totals(progress: DataFrame) -> DataFrame:
    """One row per source of progress rows: run_id, source, rows_read, rows_kept, rows_quarantined (totals so far)."""
    return progress.groupBy("run_id", "source").agg(
        *(F.sum(column).alias(column) for column in ("rows_read", "rows_kept", "rows_quarantined"))
    )


def reconciled(counts: DataFrame, run_id: str) -> DataFrame:
    """The rows of `source_counts` frames, with `run_id`; evaluating it fails on an unbalanced source.

    The failure is Spark's `raise_error`, so it works inside a pipeline too, and its message names
    the source and the three counts.
    """
    balanced = F.col("rows_read") == F.col("rows_kept") + F.col("rows_quarantined")
    message = F.format_string(
        f"{RECONCILIATION_FAILED}: source '%s': read %d rows, kept %d + quarantined %d = %d",
        "source",
        "rows_read",
        "rows_kept",
        "rows_quarantined",
        F.col("rows_kept") + F.col("rows_quarantined"),
    )
    return counts.select(
        F.lit(run_id).alias("run_id"),
        "source",
        F.when(balanced, F.col("rows_read")).otherwise(F.raise_error(message)).alias("rows_read"),
        "rows_kept",
        "rows_quarantined",
    )


def union_all(frames: Iterable[DataFrame]) -> DataFrame:
    """The rows of all `frames`, which share their columns."""
    return reduce(DataFrame.unionByName, frames)


def counts_from_rows(rows: Iterable[Mapping]) -> list[SourceCounts]:
    """`SourceCounts` from rows with `source`, `rows_read`, `rows_kept`, `rows_quarantined` (e.g. a collected frame)."""
    return [SourceCounts(row["source"], row["rows_read"], row["rows_kept"], row["rows_quarantined"]) for row in rows]
