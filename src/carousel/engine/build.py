"""`build_gold`: one step of the gold engine (see `carousel.engine`)."""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.config import HistoryConfig, parse_day
from carousel.engine.plan import Plan, in_days, last_progress, plan_step, progress_in_old_layout, restore_to_progress
from carousel.engine.tables import (
    DAILY,
    FULL,
    STATE_COLUMNS,
    GoldReport,
    GoldTables,
    Window,
)
from carousel.engine.vocabulary_step import grow_vocabulary
from carousel.errors import CarouselError
from carousel.examples import explode_impressions
from carousel.gold import pack_training_examples
from carousel.history import build_histories, customer_days
from carousel.incremental import histories_from_state, initial_state, state_changes
from carousel.storage import (
    DELETION_VECTORS,
    merge_table,
    read_table,
    table_exists,
    table_ref,
    table_version,
    write_table,
)

log = logging.getLogger("carousel")


# Long on purpose: the step's stages in the order they run, each a call, sharing the plan.
def build_gold(
    spark: SparkSession, tables: GoldTables, window: Window = Window(), config: HistoryConfig = HistoryConfig()
) -> GoldReport:
    """Bring the gold tables, the vocabulary and the state up to date with silver and impressions bronze.

    Builds only what changed (see `carousel.engine`); a backfill window builds its every day.

    Returns:
        How the days were built, which ones, which were deleted, rows written per table.

    Raises:
        MissingGoldInputError: silver or impressions bronze does not exist yet.
    """
    missing = [
        location for location in (tables.actions_silver, tables.impressions_bronze) if not table_exists(spark, location)
    ]
    if missing:
        raise MissingGoldInputError(
            f"the gold step reads {' and '.join(missing)}, which the pipeline has not written yet: "
            "run an update of the pipeline first (locally: `carousel pipeline`)"
        )
    report = GoldReport()
    with report.timed("plan", spark):
        previous = last_progress(spark, tables)
        if previous is not None:
            restore_to_progress(spark, tables.state, previous.state_version)
            restore_to_progress(spark, tables.item_vocabulary_gold, previous.vocabulary_version)
        plan = plan_step(spark, tables, window, previous)
    if plan is None:
        return report
    days = plan.days
    state_as_of = plan.state_as_of if _state_in_layout(spark, tables.state) else None
    day_after_state = (parse_day(state_as_of) + dt.timedelta(days=1)).isoformat() if state_as_of else None
    impressions = read_table(spark, tables.impressions_bronze)
    actions = read_table(spark, tables.actions_silver)
    if days and days == [day_after_state] and not window.is_backfill:
        report.path = DAILY
        with report.timed("state", spark):
            merge_day_into_state(spark, tables.state, state_as_of, actions, config)
        state_as_of = days[0]
        day_impressions = impressions.where(F.col("dt") == days[0])
        with report.timed("days", spark):
            state = _state_as_of(read_table(spark, tables.state), state_as_of)
            histories = histories_from_state(state, customer_days(day_impressions), config)
            _write_days(spark, tables, histories, day_impressions, days, report)
    elif days:
        report.path = FULL
        day_impressions = impressions.where(F.col("dt").isin(days))
        with report.timed("days", spark):
            histories = build_histories(actions, customer_days(day_impressions), config)
            _write_days(spark, tables, histories, day_impressions, days, report)
        if window.is_backfill or state_as_of != plan.newest_built:
            with report.timed("state", spark):
                state = initial_state(actions, plan.newest_built, config).select(*STATE_COLUMNS)
                write_table(
                    state, tables.state, properties=DELETION_VECTORS, described_by=contract.CUSTOMER_ACTION_STATE
                )
            state_as_of = plan.newest_built
    report.days_built = days
    log.info("gold: %s: %s", report.path, ", ".join(days) or "no day")

    with report.timed("vocabulary", spark):
        report.vocabulary_version = grow_vocabulary(spark, tables, plan)

    with report.timed("delete", spark):
        oldest_kept = (parse_day(plan.start) - dt.timedelta(days=window.retention_days)).isoformat()
        report.days_deleted = sorted(day for day in plan.built if day < oldest_kept)
        if report.days_deleted:
            for location in (tables.customer_histories_gold, tables.training_examples_gold):
                spark.sql(f"DELETE FROM {table_ref(location)} WHERE dt < '{oldest_kept}'")
            log.info("gold: deleted %s (before the window)", ", ".join(report.days_deleted))

    _record_progress(spark, tables, plan, state_as_of, days)
    return report


def merge_day_into_state(
    spark: SparkSession, location: str, state_as_of: str, actions: DataFrame, config: HistoryConfig
) -> None:
    """Advance the stored state at `location` by the actions of its day: a MERGE of only the customers that change."""
    stored = _state_as_of(read_table(spark, location), state_as_of)
    day_actions = actions.where(F.col("action_day") == F.lit(state_as_of).cast("date"))
    changes = state_changes(stored, day_actions, state_as_of, config)
    merge_table(spark, changes, location, "customer_id", delete_when="changes.actions IS NULL")


def _state_as_of(stored: DataFrame, as_of: str) -> DataFrame:
    """The stored state (`customer_action_state`) as the transformations take it: with its day on every row."""
    return stored.select("customer_id", F.lit(parse_day(as_of)).alias("as_of"), "actions")


def _state_in_layout(spark: SparkSession, location: str) -> bool:
    """Whether the state is there in this release's layout; an earlier one (an `as_of` column) is built again."""
    if not table_exists(spark, location):
        return False
    columns = read_table(spark, location).columns
    if "as_of" in columns:
        log.warning("gold: %s holds an `as_of` per row (an earlier release's layout): building it again", location)
        return False
    return True


def _write_days(
    spark: SparkSession,
    tables: GoldTables,
    histories: DataFrame,
    impressions: DataFrame,
    days: list[str],
    report: GoldReport,
) -> None:
    """Replace `days` of both gold tables: histories first, then the packed examples from the stored histories."""
    condition = in_days(days)
    write_table(
        histories,
        tables.customer_histories_gold,
        replace_where=condition,
        partition_by="dt",
        described_by=contract.CUSTOMER_HISTORIES_GOLD,
    )
    stored = read_table(spark, tables.customer_histories_gold).where(F.col("dt").isin(days))
    packed = pack_training_examples(explode_impressions(impressions), stored)
    write_table(
        packed,
        tables.training_examples_gold,
        replace_where=condition,
        partition_by="dt",
        described_by=contract.TRAINING_EXAMPLES_GOLD,
    )
    for location, name in (
        (tables.customer_histories_gold, contract.CUSTOMER_HISTORIES_GOLD.name),
        (tables.training_examples_gold, contract.TRAINING_EXAMPLES_GOLD.name),
    ):
        report.rows_written[name] = read_table(spark, location).where(F.col("dt").isin(days)).count()


def _record_progress(spark: SparkSession, tables: GoldTables, plan: Plan, state_as_of: str | None, days: list[str]):
    """Append the step's progress row: the last write of a step, so a step killed before it is done again."""
    row = (
        dt.datetime.now(dt.timezone.utc),
        plan.actions_version,
        plan.impressions_version,
        parse_day(state_as_of) if state_as_of else None,
        table_version(spark, tables.state) if table_exists(spark, tables.state) else None,
        table_version(spark, tables.item_vocabulary_gold),
        plan.newest,
        plan.start,
        days,
    )
    frame = spark.createDataFrame([row], contract.GOLD_PROGRESS.ddl())
    old_layout = table_exists(spark, tables.progress) and progress_in_old_layout(spark, tables)
    write_table(
        frame,
        tables.progress,
        mode="overwrite" if old_layout else "append",
        described_by=contract.GOLD_PROGRESS,
    )


class MissingGoldInputError(CarouselError, LookupError):
    """The gold step found no silver or impressions bronze to read; the message names them and what to run first."""
