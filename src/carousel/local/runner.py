"""`carousel pipeline`: one update and its gold step, recorded in the run-metrics table; idle when nothing is new.

The update runs `spark-pipelines` (`carousel.local.spark_pipelines`), then the gold engine on the
local warehouse, then summarises what it wrote (`carousel.local.summary`). An update with nothing
new since the last succeeded run is recorded without running either (`unchanged_since`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from carousel import contract
from carousel.engine import GOLD_STEP, GoldReport, GoldTables, Window, build_gold
from carousel.errors import CarouselError
from carousel.local.spark_pipelines import LocalPipeline, pipeline_configuration, resolved_jars
from carousel.local.summary import STORED_TABLES, SUMMARY, RunSummary, per_table, summarize
from carousel.pipeline.settings import PipelineSettings
from carousel.progress import stage
from carousel.reconciliation import SourceCounts, check_reconciled
from carousel.run_metrics import (
    PUBLISHED_VERSION,
    ROWS_WRITTEN,
    SETTINGS_FINGERPRINT,
    SOURCE_VERSION,
    SUCCEEDED,
    RunFacts,
    newest_run,
    published_version,
    recorded_run,
    rows_processed,
)
from carousel.storage import read_table, table_exists, table_version

log = logging.getLogger("carousel")

PIPELINE_COMMAND = "pipeline"
"""The command name of a local pipeline run in the run-metrics table."""

SPARK_PIPELINES = "spark_pipelines_run"
"""Subject of the seconds of the whole `spark-pipelines run`: its start, every flow, its end."""


VERSIONED_TABLES = (*STORED_TABLES, contract.CUSTOMER_ACTION_STATE.name, contract.GOLD_PROGRESS.name)
"""The tables a succeeded run records the Delta versions of: a later run that finds any other version must run."""

IDLE_CHECK = "idle_check"
"""Subject of the seconds the local runner spends finding whether anything is new since the last run."""


def settings_fingerprint(settings: PipelineSettings) -> int:
    """A 48-bit hash (exact in a double) of the pipeline's configuration and carousel's version."""
    configuration = {**pipeline_configuration(settings), "carousel.version": _carousel_version()}
    digest = hashlib.sha256(json.dumps(configuration, sort_keys=True).encode()).hexdigest()
    return int(digest[:12], 16)


def _carousel_version() -> str:
    try:
        return importlib.metadata.version("carousel")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "source"


def source_versions(spark: SparkSession, settings: PipelineSettings) -> dict[str, int] | None:
    """The Delta version of each raw source now; None when a source has none to compare (a Kafka topic, files)."""
    if settings.kafka is not None:
        return None  # a topic's new messages are not in any table version
    try:
        return per_table(lambda source: table_version(spark, settings.sources[source]), sorted(settings.sources))
    except Exception as error:  # not a Delta table: Spark names no single error class for it
        log.info("a raw source has no Delta version (%s): the run cannot be found idle", type(error).__name__)
        return None


def unchanged_since(
    spark: SparkSession, pipeline: LocalPipeline, fingerprint: int, sources: dict[str, int] | None
) -> RunFacts | None:
    """The newest run, when it succeeded and nothing moved since: the same settings, sources and tables' versions.

    Such a run left exactly what a run now would leave, so `run_recorded` records the update
    without running `spark-pipelines` or the gold step. None (run everything) when a source has
    no version (`source_versions`), the newest run failed or was killed, its settings differ, a
    source landed rows since, or a table it recorded is at another version (a killed run, a hand edit).
    """
    if sources is None:
        return None
    newest = newest_run(spark, str(pipeline.run_metrics), PIPELINE_COMMAND)
    if newest is None or newest.status != SUCCEEDED:
        return None
    if newest.facts.get((PIPELINE_COMMAND, SETTINGS_FINGERPRINT)) != fingerprint:
        return None
    if newest.of(SOURCE_VERSION) != sources:
        return None
    published = newest.of(PUBLISHED_VERSION)
    if any(
        table not in published or not table_exists(spark, str(pipeline.table_path(table))) for table in VERSIONED_TABLES
    ):
        return None
    versions = per_table(lambda table: table_version(spark, str(pipeline.table_path(table))), VERSIONED_TABLES)
    return newest if all(versions[table] == published[table] for table in VERSIONED_TABLES) else None


def run_recorded(
    spark: SparkSession,
    pipeline: LocalPipeline,
    settings: PipelineSettings,
    *,
    cores: int = 2,
    driver_memory: str = "6g",
    shuffle_partitions: int = 8,
    force: bool = False,
) -> RunSummary:
    """Run the pipeline once under a new run id and append the run, succeeded or failed, to its run-metrics table.

    An update with nothing new (`unchanged_since`) is recorded, with the previous run's counts and
    no row taken in, without running `spark-pipelines` or the gold step; `force` runs them anyway.

    Raises:
        PipelineRunError: the run failed (a failed reconciliation included: the pipeline fails it).
        carousel.reconciliation.ReconciliationError: the finished run's counts do not add up.
    """
    with recorded_run(spark, str(pipeline.run_metrics), PIPELINE_COMMAND) as record:
        started = time.perf_counter()
        record.settings_fingerprint = settings_fingerprint(settings)
        versions = source_versions(spark, settings)
        record.source_versions = versions or {}
        previous = None if force else unchanged_since(spark, pipeline, record.settings_fingerprint, versions)
        record.seconds[IDLE_CHECK] = time.perf_counter() - started
        if previous is not None:
            log.info("nothing new since run %s: spark-pipelines and the gold step are not run", previous.run_id)
            summary = _idle_summary(previous, record.seconds, record.run_id)
            record.counts, record.rows_written = summary.counts, summary.rows
            record.rows_processed = summary.rows_processed
            record.versions = {table: int(version) for table, version in previous.of(PUBLISHED_VERSION).items()}
            return summary
        started = time.perf_counter()
        record.seconds.update(
            pipeline.run(
                settings,
                record.run_id,
                cores=cores,
                driver_memory=driver_memory,
                shuffle_partitions=shuffle_partitions,
                jars=resolved_jars(spark, kafka=settings.kafka is not None),
            )
        )
        record.seconds[SPARK_PIPELINES] = time.perf_counter() - started
        gold = run_gold_step(spark, pipeline, settings)
        record.seconds.update(gold.seconds)
        started = time.perf_counter()
        summary = summarize(spark, pipeline, record.seconds, record.run_id)
        summary.gold = gold
        record.counts, record.rows_written = summary.counts, summary.rows
        record.rows_processed = summary.rows_processed = rows_processed(
            spark, str(pipeline.run_metrics), record.command, summary.counts
        )
        # The pipeline's source_reconciliation already fails an unbalanced update; this is the runner's own look.
        check_reconciled(summary.counts)
        stored = [table for table in VERSIONED_TABLES if table_exists(spark, str(pipeline.table_path(table)))]
        record.versions = per_table(lambda table: table_version(spark, str(pipeline.table_path(table))), stored)
        record.seconds[SUMMARY] = time.perf_counter() - started
    return summary


def _idle_summary(previous: RunFacts, seconds: dict[str, float], run_id: str) -> RunSummary:
    """The summary of an update with nothing new: the tables and totals `previous` recorded, no row taken in."""
    read, kept, quarantined = (previous.of(metric) for metric in ("rows_read", "rows_kept", "rows_quarantined"))
    counts = [SourceCounts(source, int(read[source]), int(kept[source]), int(quarantined[source])) for source in read]
    return RunSummary(
        rows={table: int(rows) for table, rows in previous.of(ROWS_WRITTEN).items()},
        seconds=seconds,
        counts=counts,
        rows_processed={one.source: 0 for one in counts},
        gold=GoldReport(),
        run_id=run_id,
        idle_since=previous.run_id,
    )


def run_gold_step(spark: SparkSession, pipeline: LocalPipeline, settings: PipelineSettings) -> GoldReport:
    """The daily job's task after the pipeline, on the local warehouse: build the gold days that are new or changed."""
    window = Window(settings.window_days, settings.window_start, settings.window_end, settings.retention_days)
    started = time.perf_counter()
    report = build_gold(spark, GoldTables.under(str(pipeline.warehouse)), window, settings.history)
    report.seconds[GOLD_STEP] = time.perf_counter() - started
    days = ", ".join(report.days_built) or "no day"
    log.info("gold step: %s (%s) in %.1f s", report.path, days, report.seconds[GOLD_STEP])
    return report


class NothingPublishedError(CarouselError, LookupError):
    """No run of the local pipeline has succeeded yet, so there is no published version to read."""


def read_published(spark: SparkSession, pipeline: LocalPipeline, table: str) -> DataFrame:
    """The table as the newest succeeded run left it, whatever a later run is doing or died doing.

    Open-source Spark Declarative Pipelines truncates every materialized view when an update
    starts and fills it when the flow runs, so a run killed halfway leaves empty tables behind.
    Each succeeded run records the Delta version it wrote in the run-metrics table; reading that
    version (Delta time travel) gives readers the previous gold until the next run succeeds.

    Raises:
        NothingPublishedError: no run has succeeded yet.
    """
    version = published_version(spark, str(pipeline.run_metrics), table)
    if version is None:
        raise NothingPublishedError(f"no succeeded run of the pipeline in {pipeline.work_dir} has published '{table}'")
    return read_table(spark, str(pipeline.table_path(table)), version)


def run_local_pipeline(
    spark: SparkSession,
    settings: PipelineSettings,
    work_dir: str,
    driver_memory: str,
    shuffle_partitions: int,
    kafka: bool = False,
    force: bool = False,
) -> list[str]:
    """Run the declarative pipeline under `work_dir` with `settings`; return the lines of its summary.

    With `kafka`, a local Kafka broker runs for the while: the landed clicks and add-to-carts not
    produced to it yet are produced to their topics, and the pipeline reads those two from there.
    An update with nothing new runs neither `spark-pipelines` nor the gold step, unless `force`
    (see `run_recorded`).
    """
    pipeline = LocalPipeline(Path(work_dir))
    if not kafka:
        return _run_recorded(spark, pipeline, settings, driver_memory, shuffle_partitions, force)
    from carousel.local.kafka_broker import LocalKafkaBroker, produce_landed

    with LocalKafkaBroker(pipeline.kafka_dir) as broker:
        settings = dataclasses.replace(settings, kafka=broker.settings())
        with stage("producing the new clicks and add-to-carts to Kafka"):
            produce_landed(spark, settings, pipeline)
        return _run_recorded(spark, pipeline, settings, driver_memory, shuffle_partitions, force)


def _run_recorded(
    spark: SparkSession,
    pipeline: LocalPipeline,
    settings: PipelineSettings,
    driver_memory: str,
    shuffle_partitions: int,
    force: bool,
) -> list[str]:
    with stage("spark-pipelines run"):
        summary = run_recorded(
            spark,
            pipeline,
            settings,
            cores=os.cpu_count() or 2,
            driver_memory=driver_memory,
            shuffle_partitions=shuffle_partitions,
            force=force,
        )
    log.info("run metrics: %s", pipeline.run_metrics)
    return summary.lines()
