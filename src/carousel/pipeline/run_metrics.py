"""Run ids, per-source reconciliation (rows read = rows kept + rows quarantined) and the run-metrics table.

Every run, the declarative pipeline and `carousel build` alike, counts per raw source the rows
it read, kept and quarantined, and fails, naming the source and the counts, when they do not add
up. The local runners then append one row per fact to a Delta table, `run_metrics`:

    run_id, command, status, started_at, finished_at, subject, metric, value, error

with metrics `rows_read`, `rows_kept`, `rows_quarantined` (subject: a raw source; totals so
far), `rows_processed` (subject: a raw source; the rows this run's streams took in, kept or
quarantined, found as the difference from the previous succeeded run of the same command),
`rows_written` (subject: a table), `seconds` (subject: a stage or a pipeline flow) and, for a
succeeded local pipeline run, `delta_version` (subject: a table): the version of the table that
run published (see `carousel.pipeline.local.read_published`), `source_version` (subject: a raw
source landed as a Delta table: the version the run read) and `settings_fingerprint` (subject:
the command: a 48-bit hash of the run's settings), which let the next run see that nothing is new
(`carousel.pipeline.local.unchanged_since`). A failed run is recorded too, with
status `failed` and its error. On Databricks the pipeline's event log
holds the same facts; the `source_reconciliation` table is there as well.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.errors import CarouselError

log = logging.getLogger("carousel")

RUN_ID_KEY = "carousel.run_id"
"""Pipeline configuration key of the run id; the local runner sets a fresh one per run."""

RUN_METRICS_SCHEMA = (
    "run_id string, command string, status string, started_at timestamp, finished_at timestamp, "
    "subject string, metric string, value double, error string"
)

SUCCEEDED, FAILED = "succeeded", "failed"
RECONCILIATION_FAILED = "reconciliation failed"
PUBLISHED_VERSION = "delta_version"
ROWS_PROCESSED = "rows_processed"
ROWS_WRITTEN = "rows_written"
SOURCE_VERSION = "source_version"
SETTINGS_FINGERPRINT = "settings_fingerprint"


def new_run_id(now: dt.datetime | None = None) -> str:
    """A run id that sorts by start time and is unique: `20261122T213012Z-1a2b3c4d`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


@functools.cache
def process_run_id() -> str:
    """One run id per Python process: what every dataset of one pipeline update shares when no run id is configured."""
    return new_run_id()


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


@dataclass
class RunRecord:
    """Everything the run-metrics table keeps of one run."""

    run_id: str
    command: str
    started_at: dt.datetime
    counts: list[SourceCounts] = field(default_factory=list)
    rows_processed: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    source_versions: dict[str, int] = field(default_factory=dict)
    settings_fingerprint: int | None = None

    def rows(self, status: str, finished_at: dt.datetime, error: str | None = None) -> list[tuple]:
        """The run as rows of `RUN_METRICS_SCHEMA`; a run with no facts yet still gets one row."""
        facts: list[tuple[str, str, float]] = []
        for counts in self.counts:
            facts += [
                (counts.source, "rows_read", counts.rows_read),
                (counts.source, "rows_kept", counts.rows_kept),
                (counts.source, "rows_quarantined", counts.rows_quarantined),
            ]
        facts += [(source, ROWS_PROCESSED, rows) for source, rows in self.rows_processed.items()]
        facts += [(table, ROWS_WRITTEN, rows) for table, rows in self.rows_written.items()]
        facts += [(stage, "seconds", seconds) for stage, seconds in self.seconds.items()]
        facts += [(table, PUBLISHED_VERSION, version) for table, version in self.versions.items()]
        facts += [(source, SOURCE_VERSION, version) for source, version in self.source_versions.items()]
        if self.settings_fingerprint is not None:
            facts.append((self.command, SETTINGS_FINGERPRINT, self.settings_fingerprint))
        if not facts:
            facts = [(self.command, "seconds", (finished_at - self.started_at).total_seconds())]
        return [
            (self.run_id, self.command, status, self.started_at, finished_at, subject, metric, float(value), error)
            for subject, metric, value in facts
        ]


def record_run(spark: SparkSession, path: str, record: RunRecord, status: str, error: str | None = None) -> None:
    """Append `record` to the run-metrics Delta table at `path` (created when absent)."""
    finished_at = dt.datetime.now(dt.timezone.utc)
    frame = spark.createDataFrame(record.rows(status, finished_at, error), RUN_METRICS_SCHEMA)
    frame.write.format("delta").mode("append").save(path)


def counts_from_rows(rows: Iterable[Mapping]) -> list[SourceCounts]:
    """`SourceCounts` from rows with `source`, `rows_read`, `rows_kept`, `rows_quarantined` (e.g. a collected frame)."""
    return [SourceCounts(row["source"], row["rows_read"], row["rows_kept"], row["rows_quarantined"]) for row in rows]


@contextmanager
def recorded_run(spark: SparkSession, path: str, command: str, run_id: str | None = None) -> Iterator[RunRecord]:
    """Yield a `RunRecord` for the body to fill; append it to the run-metrics table at `path` when the body ends.

    A body that raises is recorded as failed, with the first line of its error, and the error propagates.
    """
    record = RunRecord(run_id or new_run_id(), command, dt.datetime.now(dt.timezone.utc))
    log.info("%s run %s", command, record.run_id)
    try:
        yield record
    except BaseException as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        try:
            record_run(spark, path, record, FAILED, reason)
        except Exception:  # the run's own error matters more than a failure to record it
            log.exception("could not record failed run %s in %s", record.run_id, path)
        raise
    record_run(spark, path, record, SUCCEEDED)
    log.info("%s run %s recorded in %s", command, record.run_id, path)


def published_version(spark: SparkSession, path: str, table: str) -> int | None:
    """The Delta version of `table` that the newest succeeded run in the run-metrics table at `path` published."""
    if not os.path.isdir(os.path.join(path, "_delta_log")):
        return None
    latest = (
        spark.read.format("delta")
        .load(path)
        .where((F.col("status") == SUCCEEDED) & (F.col("metric") == PUBLISHED_VERSION) & (F.col("subject") == table))
        .orderBy(F.col("finished_at").desc(), F.col("run_id").desc())
        .select("value")
        .first()
    )
    return None if latest is None else int(latest["value"])


@dataclass(frozen=True)
class RunFacts:
    """One recorded run: its id, its status, and its facts by (subject, metric)."""

    run_id: str
    status: str
    facts: dict[tuple[str, str], float]

    def of(self, metric: str) -> dict[str, float]:
        """The run's values of `metric`, by subject."""
        return {subject: value for (subject, name), value in self.facts.items() if name == metric}


def newest_run(spark: SparkSession, path: str, command: str) -> RunFacts | None:
    """The newest recorded run of `command` in the run-metrics table at `path`, whatever its status, or None."""
    if not os.path.isdir(os.path.join(path, "_delta_log")):
        return None
    runs = _newest_of(spark.read.format("delta").load(path).where(F.col("command") == command))
    rows = runs.select("run_id", "status", "subject", "metric", "value").collect()
    if not rows:
        return None
    facts = {(row["subject"], row["metric"]): row["value"] for row in rows}
    return RunFacts(rows[0]["run_id"], rows[0]["status"], facts)


def newest_succeeded_run(run_metrics: DataFrame, command: str | None = None) -> DataFrame:
    """The rows of the newest succeeded run (of `command`, when named) in a run-metrics frame; none without one."""
    runs = run_metrics.where(F.col("status") == SUCCEEDED)
    if command is not None:
        runs = runs.where(F.col("command") == command)
    return _newest_of(runs)


def _newest_of(runs: DataFrame) -> DataFrame:
    """The rows of the newest run (by finish, then run id) among the rows of `runs`."""
    newest = runs.orderBy(F.col("finished_at").desc(), F.col("run_id").desc()).limit(1).select("run_id")
    return runs.join(newest, "run_id")


def _newest_succeeded(spark: SparkSession, path: str, command: str) -> DataFrame | None:
    """The rows of the newest succeeded run of `command` in the run-metrics table at `path`, or None without a table."""
    if not os.path.isdir(os.path.join(path, "_delta_log")):
        return None
    return newest_succeeded_run(spark.read.format("delta").load(path), command)


def rows_processed(spark: SparkSession, path: str, command: str, counts: Iterable[SourceCounts]) -> dict[str, int]:
    """Per source, the rows kept or quarantined since the newest succeeded run of `command`: what this run took in.

    With no earlier run, every row counts as this run's.
    """
    previous = _newest_succeeded(spark, path, command)
    before: dict[str, float] = {}
    if previous is not None:
        totals = previous.where(F.col("metric").isin("rows_kept", "rows_quarantined"))
        before = {
            row["subject"]: row["total"]
            for row in totals.groupBy("subject").agg(F.sum("value").alias("total")).collect()
        }
    return {one.source: one.rows_kept + one.rows_quarantined - int(before.get(one.source, 0)) for one in counts}
