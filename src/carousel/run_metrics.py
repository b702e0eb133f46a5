"""Run ids and the run-metrics table: one row per fact of every local run.

Every run, the declarative pipeline and `carousel build` alike, counts per raw source the rows
it read, kept and quarantined, and fails, naming the source and the counts, when they do not add
up. The local runners then append one row per fact to a Delta table, `run_metrics`:

    run_id, command, status, started_at, finished_at, subject, metric, value, error

with metrics `rows_read`, `rows_kept`, `rows_quarantined` (subject: a raw source; totals so
far), `rows_processed` (subject: a raw source; the rows this run's streams took in, kept or
quarantined, found as the difference from the previous succeeded run of the same command),
`rows_written` (subject: a table), `seconds` (subject: a stage or a pipeline flow) and, for a
succeeded local pipeline run, `delta_version` (subject: a table): the version of the table that
run published (see `carousel.local.runner.read_published`), `source_version` (subject: a raw
source landed as a Delta table: the version the run read) and `settings_fingerprint` (subject:
the command: a 48-bit hash of the run's settings), which let the next run see that nothing is new
(`carousel.local.runner.unchanged_since`). A failed run is recorded too, with
status `failed` and its error. On Databricks the pipeline's event log
holds the same facts; the `source_reconciliation` table is there as well.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.reconciliation import SourceCounts

log = logging.getLogger("carousel")

RUN_ID_KEY = "carousel.run_id"
"""Pipeline configuration key of the run id; the local runner sets a fresh one per run."""

SUCCEEDED, FAILED = "succeeded", "failed"
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
        """The run as rows of `contract.RUN_METRICS`; a run with no facts yet still gets one row."""
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
    frame = spark.createDataFrame(record.rows(status, finished_at, error), contract.RUN_METRICS.ddl())
    frame.write.format("delta").mode("append").save(path)


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
