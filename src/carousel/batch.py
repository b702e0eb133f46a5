"""The batch runs behind the command line: generate raw data, build the gold tables, advance them a day.

Every path writes the pipeline's own gold layout (`carousel.contract`): `customer_histories_gold`
and the packed `training_examples_gold`, partitioned by `dt`, so the loader and the baseline read
the output of `carousel build`, `carousel advance` and the declarative pipeline alike.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.actions import unify_actions
from carousel.config import DEFAULT_WINDOW_DAYS, HistoryConfig, parse_day
from carousel.engine import GoldTables, Window, build_gold
from carousel.errors import CarouselError
from carousel.progress import stage
from carousel.quality import keep_valid, quarantine_rows
from carousel.reconciliation import SourceCounts, check_reconciled
from carousel.run_metrics import RunRecord, recorded_run
from carousel.schemas import conformed_columns
from carousel.storage import (
    CHANGE_FEED,
    RAW_SOURCES,
    read_source,
    read_table,
    write_table,
)

if TYPE_CHECKING:
    from carousel.baseline.model import BaselineConfig
    from carousel.baseline.run import MlflowTarget, RegisteredBaseline
    from carousel.local.spark_pipelines import LocalPipeline
    from carousel.pipeline.settings import PipelineSettings

log = logging.getLogger("carousel")

RAW_PARTITION_COLUMN = {"impressions": "dt", "clicks": "dt", "add_to_carts": "dt", "orders": "order_date"}


def generate(spark: SparkSession, out: str, config) -> dict[str, int]:
    """Write synthetic raw sources as Delta tables under `out`; return rows written per source."""
    from carousel.synthetic import generate_raw

    written = {}
    for source, frame in generate_raw(spark, config).items():
        path = os.path.join(out, source)
        with stage(f"generate {source}", spark=spark) as facts:
            write_table(frame, path, partition_by=RAW_PARTITION_COLUMN[source])
            written[source] = facts["rows"] = read_table(spark, path).count()
    return written


class NoDataYetError(CarouselError, FileNotFoundError):
    """`generate --next-day` found no raw impressions to follow; the message names the folder."""


def newest_impression_day(spark: SparkSession, impressions: str) -> str | None:
    """The newest `dt` among the valid rows of the raw impressions at `impressions`, or None when it has none."""
    valid = keep_valid(read_source(spark, impressions, "impressions"), "impressions")
    return valid.agg(F.max("dt").alias("newest")).first()["newest"]


def _newest_landed_day(spark: SparkSession, impressions: str) -> str | None:
    """`newest_impression_day` of generated impressions, reading only their newest day partitions, not the history.

    `carousel generate` partitions the impressions by `dt` (`dt=yyyy-MM-dd` folders): the days are
    tried newest first, each partition read alone, until one holds a valid row. Without such
    folders every row is read.
    """
    days = sorted((name[3:] for name in os.listdir(impressions) if _DAY_FOLDER.match(name)), reverse=True)
    if not days:
        return newest_impression_day(spark, impressions)
    raw = read_source(spark, impressions, "impressions")
    for day in days:
        if not keep_valid(raw.where(F.col("dt") == day), "impressions").isEmpty():
            return day
    return None


_DAY_FOLDER = re.compile(r"^dt=\d{4}-\d\d-\d\d$")


def generate_next_day(spark: SparkSession, out: str, config) -> tuple[str, dict[str, int]]:
    """Append one more day of synthetic raw data to the Delta tables under `out`: the day after the newest impressions.

    The day is generated as a one-day period of `config` (its customers, rates and seed), so a
    dirty rate gives that day its dirty rows, and its late events land in the following partition.
    Each day is a draw of its own (`SyntheticConfig.draw` is the day's ordinal): two days differ,
    and the same day from the same seed gives the same rows.

    Returns:
        The new day ('yyyy-MM-dd') and the rows appended per source.

    Raises:
        NoDataYetError: `out` holds no raw impressions with a valid day.
    """
    from carousel.synthetic import generate_raw

    impressions = os.path.join(out, "impressions")
    newest = _newest_landed_day(spark, impressions) if os.path.isdir(impressions) else None
    if newest is None:
        raise NoDataYetError(f"no raw impressions with a valid day under {out}: run `carousel generate` first")
    day = (parse_day(newest) + dt.timedelta(days=1)).isoformat()
    one_day = dataclasses.replace(
        config, window_end=day, window_days=1, history_days=0, draw=dt.date.fromisoformat(day).toordinal()
    )
    appended = {}
    for source, frame in generate_raw(spark, one_day).items():
        path = os.path.join(out, source)
        with stage(f"generate {source} of {day}", spark=spark) as facts:
            before = read_table(spark, path).count()
            frame.write.format("delta").mode("append").partitionBy(RAW_PARTITION_COLUMN[source]).save(path)
            appended[source] = facts["rows"] = read_table(spark, path).count() - before
    return day, appended


RAW_DAY_COLUMN = {"impressions": "dt", "clicks": "dt", "add_to_carts": "dt", "orders": "order_date"}
"""The day column of each raw source: what `carousel advance` selects a day's rows by."""


def _ingest(
    spark: SparkSession,
    raw: dict[str, DataFrame],
    out: str,
    record: RunRecord,
    days: dict[str, str] | None = None,
) -> None:
    """Quarantine the bad rows of `raw`; write the good ones as `impressions_bronze` and `actions_silver` under `out`.

    What the declarative pipeline does in streaming, done in batch: the gold engine then reads the
    same two tables. Without `days` every table is replaced; with `days` (source -> 'yyyy-MM-dd'),
    only the rows of that day of each source are replaced, so a rerun of the day gives the same tables.
    Rows read must equal rows kept + rows quarantined before anything else is written.

    Raises:
        carousel.reconciliation.ReconciliationError: a source's rows read != kept + quarantined.
    """

    def day_only(source: str) -> str | None:
        return f"{RAW_DAY_COLUMN[source]} = '{days[source]}'" if days else None

    for name in RAW_SOURCES:
        with stage(contract.quarantine(name), record.seconds) as facts:
            path = os.path.join(out, contract.quarantine(name))
            write_table(quarantine_rows(raw[name], name, run_id=record.run_id), path, replace_where=day_only(name))
            stored = read_table(spark, path)
            stored = stored.where(day_only(name)) if days else stored
            counts = SourceCounts(name, raw[name].count(), keep_valid(raw[name], name).count(), stored.count())
            record.counts.append(counts)
            record.rows_written[contract.quarantine(name)] = counts.rows_quarantined
            facts.update(read=counts.rows_read, kept=counts.rows_kept, quarantined=counts.rows_quarantined)
    check_reconciled(record.counts)
    bronze = keep_valid(raw["impressions"], "impressions")
    actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"])
    action_days = f"action_day = '{days['clicks']}'" if days else None
    for frame, table, condition in (
        (bronze, contract.bronze("impressions"), day_only("impressions")),
        (actions, contract.ACTIONS_SILVER.name, action_days),
    ):
        with stage(table, record.seconds):
            write_table(frame, os.path.join(out, table), replace_where=condition, properties=CHANGE_FEED)


def build(
    spark: SparkSession,
    sources: dict[str, str],
    out: str,
    config: HistoryConfig,
    from_dt: str | None = None,
    to_dt: str | None = None,
    run_id: str | None = None,
) -> dict[str, int]:
    """Build the training data as Delta tables under `out`, and record the run in `out`/run_metrics.

    Per raw source, the rows that break a rule go to `<source>_quarantine` (replaced, stamped with
    the run id), and rows read must equal rows kept + rows quarantined before any other table is
    touched. The good rows become `impressions_bronze` and `actions_silver`, the tables the
    declarative pipeline writes, and the gold engine builds every impression day of [from_dt,
    to_dt] from them (a backfill, `carousel.engine.build_gold`): the gold tables' days replaced in
    one atomic commit each, the item vocabulary and the per-customer state, as the pipeline's gold
    task keeps them. Days outside the range stay, a rerun gives the same rows, and a run killed
    halfway leaves the previous version readable.

    Args:
        sources: raw source per name of `RAW_SOURCES`: a table name or a path.
        out: directory of the output tables.
        config: history length and lookback days.
        from_dt, to_dt: optional inclusive bounds on the impressions' dt ('yyyy-MM-dd'; default: every day).
        run_id: the run's id (default: a new one).

    Returns:
        Rows written per output table.

    Raises:
        carousel.storage.SourceNotFoundError: a source does not exist.
        carousel.schemas.SchemaContractError: a source lacks a required column or has one of another type.
        carousel.reconciliation.ReconciliationError: a source's rows read != kept + quarantined.
    """
    from_dt = parse_day(from_dt).isoformat() if from_dt else None
    to_dt = parse_day(to_dt).isoformat() if to_dt else None
    with recorded_run(spark, os.path.join(out, contract.RUN_METRICS.name), "build", run_id) as record:
        raw = {name: read_source(spark, sources[name], name) for name in RAW_SOURCES}
        for name in RAW_SOURCES:
            conformed_columns(raw[name], name)  # a broken contract fails here, before anything is written
        _ingest(spark, raw, out, record)
        tables = GoldTables.under(out)
        bounds = read_table(spark, tables.impressions_bronze).agg(F.min("dt"), F.max("dt")).first()
        if bounds[0] is None:
            log.info("no valid impressions: no gold day to build")
            return dict(record.rows_written)
        report = build_gold(spark, tables, Window(start=from_dt or bounds[0], end=to_dt or bounds[1]), config)
        record.seconds.update(report.seconds)
        record.rows_written.update(report.rows_written)
    return dict(record.rows_written)


def advance(
    spark: SparkSession,
    sources: dict[str, str],
    out: str,
    day: str,
    config: HistoryConfig,
    window_days: int = DEFAULT_WINDOW_DAYS,
    run_id: str | None = None,
) -> dict[str, int]:
    """Take in day `day`'s raw actions and the next day's impressions, then let the gold engine advance under `out`.

    The raw rows of those days replace the same days of the quarantine, `impressions_bronze` and
    `actions_silver` under `out` (as `build` writes them), and the gold engine then runs its rolling
    update over a window of `window_days` ending the day after `day`: from yesterday's state it
    writes that day's gold, as the pipeline's gold task does each day.

    Returns:
        Rows written per table.
    """
    next_day = (parse_day(day) + dt.timedelta(days=1)).isoformat()
    with recorded_run(spark, os.path.join(out, contract.RUN_METRICS.name), "advance", run_id) as record:
        raw = {name: read_source(spark, sources[name], name) for name in RAW_SOURCES}
        days = {name: day for name in RAW_SOURCES} | {"impressions": next_day}
        one_day = {
            name: frame.where(F.col(RAW_DAY_COLUMN[name]).cast("string") == days[name]) for name, frame in raw.items()
        }
        _ingest(spark, one_day, out, record, days)
        report = build_gold(spark, GoldTables.under(out), Window(days=window_days, end=next_day), config)
        record.seconds.update(report.seconds)
        record.rows_written.update(report.rows_written)
    return dict(record.rows_written)


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
    (see `carousel.local.runner.run_recorded`).
    """
    from carousel.local.spark_pipelines import LocalPipeline

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
    from carousel.local.runner import run_recorded

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


def train_locally(
    spark: SparkSession,
    config: BaselineConfig,
    target: MlflowTarget,
    report_dir: str,
    pipeline_dir: str,
    examples: str | None = None,
    actions: str | None = None,
) -> RegisteredBaseline:
    """Train and register the baseline on local gold tables: the pipeline's under `pipeline_dir`, unless named.

    Args:
        config: the baseline's settings.
        target: the MLflow tracking and registry.
        report_dir: where the evaluation report goes.
        pipeline_dir: the work directory of `carousel pipeline`.
        examples, actions: `training_examples_gold` and `actions_silver` instead (names or paths), both or neither.

    Returns:
        The registered model, its version and report.
    """
    from carousel.baseline.run import train_and_register
    from carousel.local.runner import read_published
    from carousel.local.spark_pipelines import LocalPipeline

    if examples and actions:
        packed, actions_frame = read_source(spark, examples, "examples"), read_source(spark, actions, "actions")
    else:
        pipeline = LocalPipeline(Path(pipeline_dir))
        packed = read_published(spark, pipeline, contract.TRAINING_EXAMPLES_GOLD.name)
        actions_frame = read_published(spark, pipeline, contract.ACTIONS_SILVER.name)
    with stage("train baseline"):
        return train_and_register(packed, actions_frame, config, target, report_dir)
