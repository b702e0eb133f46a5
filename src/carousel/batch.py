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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.actions import unify_actions
from carousel.config import HistoryConfig, parse_day
from carousel.errors import CarouselError
from carousel.examples import explode_impressions, impressions_in_window
from carousel.gold import pack_training_examples
from carousel.history import build_histories, customer_days
from carousel.pipeline.run_metrics import SourceCounts, check_reconciled, recorded_run
from carousel.quality import keep_valid, quarantine_rows
from carousel.schemas import conformed_columns
from carousel.storage import (
    RAW_SOURCES,
    delta_row_count,
    read_partition,
    read_source,
    replace_days,
    replace_partition,
    write_delta,
)

if TYPE_CHECKING:
    from carousel.baseline.model import BaselineConfig
    from carousel.baseline.run import MlflowTarget, RegisteredBaseline
    from carousel.pipeline.local import LocalPipeline
    from carousel.pipeline.settings import PipelineSettings

log = logging.getLogger("carousel")

RAW_PARTITION_COLUMN = {"impressions": "dt", "clicks": "dt", "add_to_carts": "dt", "orders": "order_date"}


@contextmanager
def stage(name: str, seconds: dict[str, float] | None = None, spark: SparkSession | None = None) -> Iterator[dict]:
    """Log a stage's start, and its end with seconds and whatever the body puts in the yielded dict.

    With `seconds`, the stage's duration is also stored there under `name`. With `spark`, a long
    stage also logs how far its running Spark tasks have got, every `PROGRESS_EVERY_S` seconds.
    """
    facts: dict = {}
    log.info("%s ...", name)
    started = time.perf_counter()
    progress = _Progress(spark, name) if spark is not None else None
    if progress:
        progress.start()
    try:
        yield facts
    finally:
        if progress:
            progress.stop()
    elapsed = time.perf_counter() - started
    if seconds is not None:
        seconds[name] = elapsed
    details = ", ".join(
        f"{key}={value:,}" if isinstance(value, int) else f"{key}={value}" for key, value in facts.items()
    )
    log.info("%s done in %.1f s%s", name, elapsed, f" ({details})" if details else "")


PROGRESS_EVERY_S = 10.0


class _Progress(threading.Thread):
    """Logs the share of finished tasks of the running Spark stages, until stopped."""

    def __init__(self, spark: SparkSession, name: str) -> None:
        super().__init__(name=f"progress of {name}", daemon=True)
        self._tracker = spark.sparkContext.statusTracker()
        self._stage = name
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(PROGRESS_EVERY_S):
            running = [self._tracker.getStageInfo(stage) for stage in self._tracker.getActiveStageIds()]
            tasks = sum(info.numTasks for info in running if info)
            done = sum(info.numCompletedTasks for info in running if info)
            if tasks:
                log.info("%s: %d%% of the running tasks done (%d of %d)", self._stage, 100 * done // tasks, done, tasks)

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def generate(spark: SparkSession, out: str, config) -> dict[str, int]:
    """Write synthetic raw sources as Delta tables under `out`; return rows written per source."""
    from carousel.synthetic import generate_raw

    written = {}
    for source, frame in generate_raw(spark, config).items():
        path = os.path.join(out, source)
        with stage(f"generate {source}", spark=spark) as facts:
            write_delta(frame, path, partition_by=RAW_PARTITION_COLUMN[source])
            written[source] = facts["rows"] = delta_row_count(spark, path)
    return written


class NoDataYetError(CarouselError, FileNotFoundError):
    """`generate --next-day` found no raw impressions to follow; the message names the folder."""


def newest_impression_day(spark: SparkSession, impressions: str) -> str | None:
    """The newest `dt` among the valid rows of the raw impressions at `impressions`, or None when it has none."""
    valid = keep_valid(read_source(spark, impressions, "impressions"), "impressions")
    return valid.agg(F.max("dt").alias("newest")).first()["newest"]


def generate_next_day(spark: SparkSession, out: str, config) -> tuple[str, dict[str, int]]:
    """Append one more day of synthetic raw data to the Delta tables under `out`: the day after the newest impressions.

    Each day is a draw of its own (`SyntheticConfig.draw` is the day's ordinal): two days differ,
    and the same day from the same seed gives the same rows.
    The day is generated as a one-day period of `config` (its customers, rates and seed), so a
    dirty rate gives that day its dirty rows, and its late events land in the following partition.

    Returns:
        The new day ('yyyy-MM-dd') and the rows appended per source.

    Raises:
        NoDataYetError: `out` holds no raw impressions with a valid day.
    """
    from carousel.synthetic import generate_raw

    impressions = os.path.join(out, "impressions")
    newest = newest_impression_day(spark, impressions) if os.path.isdir(impressions) else None
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
            before = delta_row_count(spark, path)
            frame.write.format("delta").mode("append").partitionBy(RAW_PARTITION_COLUMN[source]).save(path)
            appended[source] = facts["rows"] = delta_row_count(spark, path) - before
    return day, appended


def write_gold(
    spark: SparkSession,
    out: str,
    histories: DataFrame,
    impressions: DataFrame,
    from_dt: str | None,
    to_dt: str | None,
    seconds: dict[str, float] | None = None,
) -> dict[str, int]:
    """Replace the days [from_dt, to_dt] of both gold tables under `out`; return the rows they now hold there.

    `customer_histories_gold` is written first and read back, so the packed
    `training_examples_gold` joins the stored histories with the shown items, as the pipeline does.
    """
    written = {}
    histories_path = os.path.join(out, contract.CUSTOMER_HISTORIES_GOLD.name)
    examples_path = os.path.join(out, contract.TRAINING_EXAMPLES_GOLD.name)
    with stage(contract.CUSTOMER_HISTORIES_GOLD.name, seconds) as facts:
        replace_days(histories, histories_path, from_dt, to_dt)
        written[contract.CUSTOMER_HISTORIES_GOLD.name] = facts["rows"] = _rows_in_window(
            spark, histories_path, from_dt, to_dt
        )
    with stage(contract.TRAINING_EXAMPLES_GOLD.name, seconds) as facts:
        stored = impressions_in_window(spark.read.format("delta").load(histories_path), from_dt, to_dt)
        replace_days(pack_training_examples(explode_impressions(impressions), stored), examples_path, from_dt, to_dt)
        written[contract.TRAINING_EXAMPLES_GOLD.name] = facts["rows"] = _rows_in_window(
            spark, examples_path, from_dt, to_dt
        )
    return written


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
    the run id), and rows read must equal rows kept + rows quarantined before any gold table is
    touched. Then `customer_histories_gold` and `training_examples_gold` (the pipeline's layout,
    partitioned by dt) get the window's dt partitions replaced in one atomic commit each: days
    outside the window stay, a rerun gives the same rows, and a run killed halfway leaves the
    previous version readable.

    Args:
        sources: raw source per name of `RAW_SOURCES`: a table name or a path.
        out: directory of the output tables.
        config: history length and lookback days.
        from_dt, to_dt: optional inclusive bounds on the impressions' dt ('yyyy-MM-dd').
        run_id: the run's id (default: a new one).

    Returns:
        Rows written per output table.

    Raises:
        carousel.storage.SourceNotFoundError: a source does not exist.
        carousel.schemas.SchemaContractError: a source lacks a required column or has one of another type.
        carousel.pipeline.run_metrics.ReconciliationError: a source's rows read != kept + quarantined.
    """
    from_dt = parse_day(from_dt).isoformat() if from_dt else None
    to_dt = parse_day(to_dt).isoformat() if to_dt else None
    with recorded_run(spark, os.path.join(out, contract.RUN_METRICS), "build", run_id) as record:
        raw = {name: read_source(spark, sources[name], name) for name in RAW_SOURCES}
        for name in RAW_SOURCES:
            conformed_columns(raw[name], name)  # a broken contract fails here, before anything is written
        for name in RAW_SOURCES:
            with stage(contract.quarantine(name), record.seconds) as facts:
                path = os.path.join(out, contract.quarantine(name))
                write_delta(quarantine_rows(raw[name], name, run_id=record.run_id), path, partition_by=None)
                counts = SourceCounts(
                    name, raw[name].count(), keep_valid(raw[name], name).count(), delta_row_count(spark, path)
                )
                record.counts.append(counts)
                record.rows_written[contract.quarantine(name)] = counts.rows_quarantined
                facts.update(read=counts.rows_read, kept=counts.rows_kept, quarantined=counts.rows_quarantined)
        check_reconciled(record.counts)
        impressions = impressions_in_window(raw["impressions"], from_dt, to_dt)
        actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"])
        histories = build_histories(actions, customer_days(impressions), config)
        record.rows_written.update(write_gold(spark, out, histories, impressions, from_dt, to_dt, record.seconds))
    return dict(record.rows_written)


def _rows_in_window(spark: SparkSession, path: str, from_dt: str | None, to_dt: str | None) -> int:
    return impressions_in_window(spark.read.format("delta").load(path), from_dt, to_dt).count()


def advance(
    spark: SparkSession,
    sources: dict[str, str],
    state_path: str,
    out: str,
    day: str,
    config: HistoryConfig,
) -> dict[str, int]:
    """Add day `day`'s actions to the stored state and write the histories of the day after.

    Reads the state as of `day` from the Delta table at `state_path` (partitioned by `as_of`),
    building it from the whole history when that partition is missing (the first run), and only
    `day`'s partitions of the action sources. Writes the state as of `day` + 1, and the
    `customer_histories_gold` and `training_examples_gold` of `day` + 1 under `out` (the
    pipeline's layout), each by replacing its partition, so a rerun gives the same tables.

    Returns:
        Rows written per table (the state counts customers).
    """
    from carousel.incremental import advance_state, histories_from_state, initial_state

    next_day = (parse_day(day) + dt.timedelta(days=1)).isoformat()
    raw = {name: read_source(spark, sources[name], name) for name in RAW_SOURCES}
    has_state = os.path.isdir(os.path.join(state_path, "_delta_log"))
    state = read_partition(spark, state_path, "as_of", day) if has_state else None
    if state is None or state.isEmpty():
        with stage(f"state as of {day} from the whole history") as facts:
            actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"])
            replace_partition(initial_state(actions, day, config), state_path, "as_of", day)
            state = read_partition(spark, state_path, "as_of", day)
            facts["customers"] = state.count()
    day_actions = unify_actions(
        raw["clicks"].where(F.col("dt") == day),
        raw["add_to_carts"].where(F.col("dt") == day),
        raw["orders"].where(F.col("order_date") == F.lit(day).cast("date")),
    )
    written = {}
    with stage(f"state as of {next_day}") as facts:
        replace_partition(advance_state(state, day_actions, day, config), state_path, "as_of", next_day)
        advanced = read_partition(spark, state_path, "as_of", next_day)
        written["state"] = facts["customers"] = advanced.count()
    impressions = impressions_in_window(raw["impressions"], next_day, next_day)
    histories = histories_from_state(advanced, customer_days(impressions), config)
    written.update(write_gold(spark, out, histories, impressions, next_day, next_day))
    return written


def run_local_pipeline(
    spark: SparkSession,
    settings: PipelineSettings,
    work_dir: str,
    driver_memory: str,
    shuffle_partitions: int,
    kafka: bool = False,
) -> list[str]:
    """Run the declarative pipeline under `work_dir` with `settings`; return the lines of its summary.

    With `kafka`, a local Kafka broker runs for the while: the landed clicks and add-to-carts not
    produced to it yet are produced to their topics, and the pipeline reads those two from there.
    """
    from carousel.pipeline.local import LocalPipeline

    pipeline = LocalPipeline(Path(work_dir))
    if not kafka:
        return _run_recorded(spark, pipeline, settings, driver_memory, shuffle_partitions)
    from carousel.pipeline.kafka_broker import LocalKafkaBroker, produce_landed

    with LocalKafkaBroker(pipeline.kafka_dir) as broker:
        settings = dataclasses.replace(settings, kafka=broker.settings())
        with stage("producing the new clicks and add-to-carts to Kafka"):
            produce_landed(spark, settings, pipeline)
        return _run_recorded(spark, pipeline, settings, driver_memory, shuffle_partitions)


def _run_recorded(
    spark: SparkSession,
    pipeline: LocalPipeline,
    settings: PipelineSettings,
    driver_memory: str,
    shuffle_partitions: int,
) -> list[str]:
    from carousel.pipeline.local import run_recorded

    with stage("spark-pipelines run"):
        summary = run_recorded(
            spark,
            pipeline,
            settings,
            cores=os.cpu_count() or 2,
            driver_memory=driver_memory,
            shuffle_partitions=shuffle_partitions,
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
    from carousel.pipeline.local import LocalPipeline, read_published

    if examples and actions:
        packed, actions_frame = read_source(spark, examples, "examples"), read_source(spark, actions, "actions")
    else:
        pipeline = LocalPipeline(Path(pipeline_dir))
        packed = read_published(spark, pipeline, contract.TRAINING_EXAMPLES_GOLD.name)
        actions_frame = read_published(spark, pipeline, contract.ACTIONS_SILVER.name)
    with stage("train baseline"):
        return train_and_register(packed, actions_frame, config, target, report_dir)
