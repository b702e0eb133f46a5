"""What a gold step builds: the window's days, from the change feed since the last step and the step's own progress."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel.engine.tables import PROGRESS_COLUMNS, GoldTables, Window
from carousel.storage import (
    NoChangeFeedError,
    inserted_since,
    read_table,
    restore_table,
    table_exists,
    table_version,
)

log = logging.getLogger("carousel")


@dataclass(frozen=True)
class Progress:
    """The newest `gold_progress` row: what the last finished step read and left."""

    actions_version: int
    impressions_version: int
    state_as_of: str | None
    state_version: int | None
    vocabulary_version: int | None
    newest_day: str | None
    window_start: str | None


def last_progress(spark: SparkSession, tables: GoldTables) -> Progress | None:
    """The newest progress row, or None without one (a first step, or progress in the old layout: built again)."""
    if not table_exists(spark, tables.progress):
        return None
    if progress_in_old_layout(spark, tables):
        log.warning("gold: %s is in an earlier release's layout: the window is built again", tables.progress)
        return None
    row = read_table(spark, tables.progress).orderBy(F.col("finished_at").desc()).first()
    if row is None:
        return None
    as_of = row["state_as_of"]
    return Progress(
        row["actions_version"],
        row["impressions_version"],
        as_of.isoformat() if as_of else None,
        row["state_version"],
        row["vocabulary_version"],
        row["newest_day"],
        row["window_start"],
    )


def progress_in_old_layout(spark: SparkSession, tables: GoldTables) -> bool:
    """Whether the stored progress lacks columns of this release's (an earlier release wrote it)."""
    return bool(set(PROGRESS_COLUMNS) - set(read_table(spark, tables.progress).columns))


def restore_to_progress(spark: SparkSession, location: str, version: int | None) -> None:
    """Undo what a step killed after `version` of the table and before its progress row did to it."""
    if version is None or not table_exists(spark, location):
        return
    current = table_version(spark, location)
    if current != version:
        log.warning(
            "gold: %s is at version %d, the last finished step left %d: restoring it", location, current, version
        )
        restore_table(spark, location, version)


def days_in(frame: DataFrame, column: str = "dt") -> set[str]:
    """The distinct days of `column`: a handful per update or window, so collecting them is bounded."""
    return {str(row[0]) for row in frame.select(F.col(column).cast("string")).distinct().collect()}


def in_days(days: list[str], column: str = "dt") -> str:
    return f"{column} IN ({', '.join(repr(day) for day in days)})"


@dataclass(frozen=True)
class Plan:
    """What a step found: the window, the days built and to build, where the state and inputs stand, what is new."""

    start: str
    newest: str
    built: set[str]
    actions_version: int
    impressions_version: int
    state_as_of: str | None
    days: list[str]
    newest_built: str | None
    new_actions: DataFrame
    new_impressions: DataFrame
    recount: bool
    """The vocabulary counts every row again (a first step, a backfill, a table without change feed)."""
    nothing_new: bool
    """Neither input has a version since the last step: the vocabulary has nothing to add."""


# Long on purpose: one decision whose steps share the versions and days read at its start.
def plan_step(spark: SparkSession, tables: GoldTables, window: Window, previous: Progress | None) -> Plan | None:
    """Which days to build and from what; None without impressions."""
    actions_version = table_version(spark, tables.actions_silver)
    impressions_version = table_version(spark, tables.impressions_bronze)
    impressions = read_table(spark, tables.impressions_bronze)
    actions = read_table(spark, tables.actions_silver)
    built = (
        days_in(read_table(spark, tables.training_examples_gold))
        if table_exists(spark, tables.training_examples_gold)
        else set()
    )
    state_as_of = previous.state_as_of if previous else None

    # A backfill may follow a rewrite of its inputs (`carousel build` replaces silver): it counts every row again.
    new_actions, new_impressions, recount, nothing_new = actions, impressions, True, False
    if previous is not None and not window.is_backfill:
        try:
            added_impressions = inserted_since(
                spark, tables.impressions_bronze, previous.impressions_version, impressions_version
            )
            added_actions = inserted_since(spark, tables.actions_silver, previous.actions_version, actions_version)
            new_impressions = added_impressions if added_impressions is not None else impressions.limit(0)
            new_actions = added_actions if added_actions is not None else actions.limit(0)
            recount, nothing_new = False, added_impressions is None and added_actions is None
        except NoChangeFeedError as error:
            log.warning("gold: no change feed (%s): every window day is built again", error)

    new_days = days_in(new_impressions) if not recount else set()
    if recount or window.is_backfill or previous is None or previous.newest_day is None:
        newest = window.end or impressions.agg(F.max("dt").alias("newest")).first()["newest"]
    else:
        newest = max([previous.newest_day, *new_days])
    if newest is None:
        log.info("gold: no impressions yet")
        return None
    start, end = window.bounds(newest)

    if recount or window.is_backfill or previous is None:
        window_days = days_in(impressions.where(F.col("dt").between(start, end)))
        to_build = set(window_days)
    else:
        window_days = {day for day in built | new_days if start <= day <= end}
        if previous.window_start is None or start < previous.window_start:
            # The window reaches further back than the last step's: its days there are read once.
            before = previous.window_start or end
            window_days |= days_in(impressions.where((F.col("dt") >= start) & (F.col("dt") < before)))
        to_build = (window_days - built) | (new_days & built & window_days)
        late_day = None
        if state_as_of is not None:
            late = new_actions.where(F.col("action_day") < F.lit(state_as_of).cast("date"))
            late_day = late.agg(F.min("action_day").cast("string").alias("day")).first()["day"]
        if late_day is not None:
            log.info("gold: actions of %s arrived after the state passed that day", late_day)
            to_build |= {day for day in built & window_days if day > late_day}
            state_as_of = None
    days = sorted(to_build)
    kept = (built & window_days) | to_build
    return Plan(
        start,
        newest,
        built,
        actions_version,
        impressions_version,
        state_as_of,
        days,
        max(kept) if kept else None,
        new_actions,
        new_impressions,
        recount,
        nothing_new,
    )
