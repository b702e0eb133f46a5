"""The gold step of every update: build only the impression days that are new or whose inputs changed.

Why a step after the declarative pipeline rather than a dataset of it: a new day costs far less
than the window only when its histories start from yesterday's per-customer state
(`carousel.incremental`: the state as of D is the state as of D - 1 plus the actions of D - 1).
A pipeline dataset cannot read its own previous version (the graph refuses cycles); a
materialized view is recomputed from all its inputs on open-source Spark; and a streaming flow
can only group by customer-day behind a watermark, which would hold each day back an update and
drop late rows without a trace (a foreachBatch sink could do it, but only Databricks has one). So
the pipeline ingests (streaming bronze, quarantine and silver) and this step, the daily job's
next task (locally: the runner, right after `spark-pipelines run`), keeps the gold tables.

The days it builds, all within the window:
- the window's impression days not in gold yet (in daily operation: the newest day only);
- built days whose impressions gained rows since the last step (read from the change feed);
- built days after the day of an action that arrived once the state had passed its day;
- every day of the window when both bounds are given (a backfill).
When that is exactly the day after the state's, the state advances by one day of actions and
nothing else is read; otherwise the days are built in one pass over silver and the state is
built again. Days before the window (less `retention_days`) are deleted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.config import DEFAULT_HISTORY_LENGTH, DEFAULT_LOOKBACK_DAYS, HistoryConfig, check_knob, parse_day
from carousel.console import (
    add_verbose_option,
    configure_logging,
    knob,
    optional_day,
    parse_table_location_args,
    run_command,
)
from carousel.examples import explode_impressions
from carousel.gold import pack_training_examples
from carousel.history import build_histories, customer_days
from carousel.incremental import advance_state, histories_from_state, initial_state
from carousel.locations import is_path
from carousel.pipeline.settings import DEFAULT_WINDOW_DAYS

log = logging.getLogger("carousel")

PROGRESS_SCHEMA = "finished_at timestamp, actions_version long, impressions_version long, state_as_of date"
"""One row per finished step: the versions of silver and impressions bronze it read, and its state's day."""

CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
"""The table property the step's inputs are created with: it reads only their rows new since the last step."""

DAILY, FULL, NOTHING = "one day from the state", "one pass over silver", "nothing to build"

KIND = "gold step table"
"""What the lineage page calls the tables this step writes."""

READS: dict[str, tuple[str, ...]] = {
    contract.CUSTOMER_HISTORIES_GOLD.name: (contract.ACTIONS_SILVER.name, contract.bronze("impressions")),
    contract.TRAINING_EXAMPLES_GOLD.name: (contract.CUSTOMER_HISTORIES_GOLD.name, contract.bronze("impressions")),
}
"""Gold table -> the tables the step reads to write it: the step's edges in the pipeline's graph."""


@dataclass(frozen=True)
class GoldTables:
    """Where the step reads and writes: each a catalog table name or a Delta path."""

    actions_silver: str
    impressions_bronze: str
    customer_histories_gold: str
    training_examples_gold: str
    state: str
    progress: str

    @classmethod
    def under(cls, folder: str) -> GoldTables:
        """The tables as Delta directories `folder`/<name> (the local pipeline's warehouse)."""
        return cls(*(os.path.join(os.path.abspath(folder), name) for name in _NAMES))

    @classmethod
    def in_schema(cls, catalog: str, schema: str) -> GoldTables:
        """The tables as `catalog`.`schema`.<name> (a Databricks pipeline's target schema; empty parts: the current)."""
        from carousel.pipeline.validation import qualified_name

        return cls(*(qualified_name(catalog, schema, name) for name in _NAMES))


_NAMES = (
    contract.ACTIONS_SILVER.name,
    contract.bronze("impressions"),
    contract.CUSTOMER_HISTORIES_GOLD.name,
    contract.TRAINING_EXAMPLES_GOLD.name,
    contract.CUSTOMER_ACTION_STATE,
    contract.GOLD_PROGRESS,
)


@dataclass(frozen=True)
class Window:
    """The impression days gold covers: `days` ending at `end`, else at the newest impression day.

    Both bounds given make a backfill: every day of the range is built again.
    """

    days: int = DEFAULT_WINDOW_DAYS
    start: str | None = None
    end: str | None = None
    retention_days: int = 0

    def __post_init__(self) -> None:
        check_knob("window_days", self.days)
        check_knob("retention_days", self.retention_days)

    @property
    def is_backfill(self) -> bool:
        return bool(self.start and self.end)

    def bounds(self, newest: str) -> tuple[str, str]:
        """The first and last day of the window when the newest impression day is `newest`."""
        end = self.end or newest
        return self.start or (parse_day(end) - dt.timedelta(days=self.days - 1)).isoformat(), end


@dataclass
class GoldReport:
    """What one step did: how, which days, rows per table, seconds per stage."""

    path: str = NOTHING
    days_built: list[str] = field(default_factory=list)
    days_deleted: list[str] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the seconds the body takes to `seconds[f"gold_step.{stage}"]` (the step's own profile)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            key = f"gold_step.{stage}"
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started


def _ref(location: str) -> str:
    return f"delta.`{location}`" if is_path(location) else location


def _exists(spark: SparkSession, location: str) -> bool:
    """Whether the table is there; a cloud path is taken to be (Spark says otherwise when it is read)."""
    if not is_path(location):
        return spark.catalog.tableExists(location)
    return "://" in location or os.path.isdir(os.path.join(location, "_delta_log"))


def _read(spark: SparkSession, location: str) -> DataFrame:
    return spark.read.format("delta").load(location) if is_path(location) else spark.read.table(location)


def _version(spark: SparkSession, location: str) -> int:
    return spark.sql(f"DESCRIBE HISTORY {_ref(location)} LIMIT 1").first()["version"]


def _inserted_since(spark: SparkSession, location: str, version: int, latest: int) -> DataFrame | None:
    """The rows inserted into `location` after `version` up to `latest`, or None when it has no newer version.

    Raises:
        _NoChangeFeed: the table has no change feed over those versions.
    """
    if latest <= version:
        return None
    reader = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", version + 1)
    reader = reader.option("endingVersion", latest)
    try:
        changes = reader.load(location) if is_path(location) else reader.table(location)
        return changes.where(F.col("_change_type") == "insert")
    except AnalysisException as error:
        log.warning("gold: no change feed on %s (%s): every window day is built again", location, error)
        raise _NoChangeFeed from error


class _NoChangeFeed(Exception):
    pass


def _write(frame: DataFrame, location: str, *, replace_where: str | None = None, partition_by: str | None = None):
    writer = frame.write.format("delta").mode("overwrite")
    writer = writer.option("replaceWhere", replace_where) if replace_where else writer.option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.save(location) if is_path(location) else writer.saveAsTable(location)


def _days_in(frame: DataFrame, column: str = "dt") -> set[str]:
    """The distinct days of `column`: a handful per window, so collecting them is bounded."""
    return {str(row[0]) for row in frame.select(F.col(column).cast("string")).distinct().collect()}


def _in_days(days: list[str], column: str = "dt") -> str:
    return f"{column} IN ({', '.join(repr(day) for day in days)})"


@dataclass
class _Progress:
    actions_version: int
    impressions_version: int


def _last_progress(spark: SparkSession, tables: GoldTables) -> _Progress | None:
    if not _exists(spark, tables.progress):
        return None
    row = _read(spark, tables.progress).orderBy(F.col("finished_at").desc()).first()
    if row is None:
        return None
    return _Progress(row["actions_version"], row["impressions_version"])


def _state_as_of(spark: SparkSession, location: str) -> str | None:
    """The day the stored state serves (every row holds the same), or None without a state."""
    if not _exists(spark, location):
        return None
    row = _read(spark, location).select(F.col("as_of").cast("string")).first()
    return row[0] if row else None


def build_gold_days(
    spark: SparkSession, tables: GoldTables, window: Window = Window(), config: HistoryConfig = HistoryConfig()
) -> GoldReport:
    """Bring both gold tables up to date with silver and impressions bronze; build only what changed.

    Returns:
        How the days were built, which ones, which were deleted, rows written per table.
    """
    report = GoldReport()
    with report.timed("plan"):
        plan = _plan(spark, tables, window)
    if plan is None:
        return report
    days, late_day, newest_built, in_window = plan.days, plan.late_day, plan.newest_built, plan.in_window
    stored_as_of, versions = plan.stored_as_of, plan.versions

    actions = _read(spark, tables.actions_silver)
    state_as_of = stored_as_of if late_day is None else None
    day_after_state = (parse_day(state_as_of) + dt.timedelta(days=1)).isoformat() if state_as_of else None
    if days and days == [day_after_state]:
        report.path = DAILY
        with report.timed("state"):
            _write(advance_state(_read(spark, tables.state), actions, state_as_of, config), tables.state)
        state_as_of = days[0]
        day_impressions = in_window.where(F.col("dt") == days[0])
        with report.timed("days"):
            histories = histories_from_state(_read(spark, tables.state), customer_days(day_impressions), config)
            _write_days(spark, tables, histories, day_impressions, days, report)
    elif days:
        report.path = FULL
        day_impressions = in_window.where(F.col("dt").isin(days))
        with report.timed("days"):
            histories = build_histories(actions, customer_days(day_impressions), config)
            _write_days(spark, tables, histories, day_impressions, days, report)
        if state_as_of != newest_built:
            with report.timed("state"):
                _write(initial_state(actions, newest_built, config), tables.state)
            state_as_of = newest_built
    report.days_built = days
    log.info("gold: %s: %s", report.path, ", ".join(days) or "no day")

    with report.timed("delete"):
        oldest_kept = (parse_day(plan.start) - dt.timedelta(days=window.retention_days)).isoformat()
        report.days_deleted = sorted(day for day in plan.built if day < oldest_kept)
        if report.days_deleted:
            for location in (tables.customer_histories_gold, tables.training_examples_gold):
                spark.sql(f"DELETE FROM {_ref(location)} WHERE dt < '{oldest_kept}'")
            log.info("gold: deleted %s (before the window)", ", ".join(report.days_deleted))

    row = (
        dt.datetime.now(dt.timezone.utc),
        versions.actions_version,
        versions.impressions_version,
        parse_day(state_as_of) if state_as_of else None,
    )
    writer = spark.createDataFrame([row], PROGRESS_SCHEMA).write.format("delta").mode("append")
    writer.save(tables.progress) if is_path(tables.progress) else writer.saveAsTable(tables.progress)
    return report


@dataclass(frozen=True)
class _Plan:
    """What a step found: the window, the days built and to build, and where the state and inputs stand."""

    start: str
    in_window: DataFrame
    built: set[str]
    versions: _Progress
    stored_as_of: str | None
    days: list[str]
    late_day: str | None
    newest_built: str | None


def _plan(spark: SparkSession, tables: GoldTables, window: Window) -> _Plan | None:
    """Which days to build and from what; None without impressions."""
    impressions = _read(spark, tables.impressions_bronze)
    newest = impressions.agg(F.max("dt").alias("newest")).first()["newest"]
    if newest is None:
        log.info("gold: no impressions yet")
        return None
    start, end = window.bounds(newest)
    in_window = impressions.where(F.col("dt").between(start, end))
    window_days = _days_in(in_window)
    built = (
        _days_in(_read(spark, tables.training_examples_gold))
        if _exists(spark, tables.training_examples_gold)
        else set()
    )
    versions = _Progress(_version(spark, tables.actions_silver), _version(spark, tables.impressions_bronze))
    previous = _last_progress(spark, tables)
    # The state's own day, not the progress row's: a step killed between the two writes leaves them apart.
    stored_as_of = _state_as_of(spark, tables.state) if previous is not None else None

    to_build = window_days - built
    late_day = None
    if window.is_backfill or previous is None:
        to_build = set(window_days)
    else:
        try:
            new_impressions = _inserted_since(
                spark, tables.impressions_bronze, previous.impressions_version, versions.impressions_version
            )
            if new_impressions is not None:
                to_build |= _days_in(new_impressions) & built & window_days
            new_actions = _inserted_since(
                spark, tables.actions_silver, previous.actions_version, versions.actions_version
            )
            if new_actions is not None and stored_as_of is not None:
                late = new_actions.where(F.col("action_day") < F.lit(stored_as_of).cast("date"))
                late_day = late.agg(F.min("action_day").cast("string").alias("day")).first()["day"]
                if late_day is not None:
                    log.info("gold: actions of %s arrived after the state passed that day", late_day)
                    to_build |= {day for day in built & window_days if day > late_day}
        except _NoChangeFeed:
            to_build = set(window_days)
    days = sorted(to_build)
    newest_built = max(built & window_days | to_build) if (built & window_days) | to_build else None
    return _Plan(start, in_window, built, versions, stored_as_of, days, late_day, newest_built)


def _write_days(
    spark: SparkSession,
    tables: GoldTables,
    histories: DataFrame,
    impressions: DataFrame,
    days: list[str],
    report: GoldReport,
) -> None:
    """Replace `days` of both gold tables: histories first, then the packed examples from the stored histories."""
    condition = _in_days(days)
    _write(histories, tables.customer_histories_gold, replace_where=condition, partition_by="dt")
    stored = _read(spark, tables.customer_histories_gold).where(F.col("dt").isin(days))
    packed = pack_training_examples(explode_impressions(impressions), stored)
    _write(packed, tables.training_examples_gold, replace_where=condition, partition_by="dt")
    for location, name in (
        (tables.customer_histories_gold, contract.CUSTOMER_HISTORIES_GOLD.name),
        (tables.training_examples_gold, contract.TRAINING_EXAMPLES_GOLD.name),
    ):
        report.rows_written[name] = _read(spark, location).where(F.col("dt").isin(days)).count()


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `carousel-gold`'s arguments: the daily job's task after the pipeline."""
    parser = argparse.ArgumentParser(
        prog="carousel-gold",
        description="Build the gold days that are new or whose inputs changed, from the pipeline's silver and bronze.",
    )
    parser.add_argument("--catalog", default="", help="the pipeline's catalog (empty: the current one)")
    parser.add_argument("--schema", default="", help="the pipeline's schema (empty: the current one)")
    parser.add_argument("--window-days", type=knob("window_days"), default=DEFAULT_WINDOW_DAYS, help="(default 14)")
    parser.add_argument("--window-start", type=optional_day("window_start"), default=None, help="backfill: first day")
    parser.add_argument("--window-end", type=optional_day("window_end"), default=None, help="backfill: last day")
    parser.add_argument("--retention-days", type=knob("retention_days"), default=0, help="days kept before the window")
    parser.add_argument("--history-length", type=knob("history_length"), default=DEFAULT_HISTORY_LENGTH, help="N")
    parser.add_argument("--lookback-days", type=knob("lookback_days"), default=DEFAULT_LOOKBACK_DAYS, help="L")
    add_verbose_option(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the gold step on the tables of `--catalog`.`--schema`; one line per outcome, exit 1 on an error."""
    args = parse_table_location_args(build_parser(), argv)
    configure_logging(args.verbose)
    window = Window(args.window_days, args.window_start, args.window_end, args.retention_days)
    history = HistoryConfig(args.history_length, args.lookback_days)

    def step() -> GoldReport:
        spark = SparkSession.builder.getOrCreate()
        return build_gold_days(spark, GoldTables.in_schema(args.catalog, args.schema), window, history)

    report = run_command("carousel-gold", step, args.verbose)
    print(f"gold: {report.path}: built {', '.join(report.days_built) or 'no day'}")


if __name__ == "__main__":
    main()
