"""The gold engine: build the gold tables for a window from one per-customer state, reading only what is new.

One function, `build_gold`, serves every caller: the daily job's gold task after the declarative
pipeline (`carousel-gold`), the local runner, `carousel build` (a backfill), `carousel advance`
(the rolling update) and the benchmarks. Its inputs are `actions_silver` and `impressions_bronze`
(created with a change feed); it keeps five tables:

- `customer_histories_gold` and `training_examples_gold`, partitioned by `dt`;
- `item_vocabulary_gold`: stable embedding indices, grown by each update's new rows (`carousel.vocabulary`);
- `customer_action_state`: one row per customer, its actions that a later day can still show,
  as of one day (`carousel.incremental`);
- `gold_progress`: one row per finished step, what it read and left (the versions of its inputs
  and of the two tables it changes in place, the state's day, the days it built).

Why a step after the declarative pipeline rather than a dataset of it: a new day costs far less
than the window only when its histories start from yesterday's state. A pipeline dataset cannot
read its own previous version (the graph refuses cycles); a materialized view is recomputed from
all its inputs on open-source Spark; and a streaming flow can only group by customer-day behind a
watermark, which would hold each day back an update and drop late rows without a trace.

The days a step builds, all within the window:
- the window's impression days not in gold yet (in daily operation: the newest day only);
- built days whose impressions gained rows since the last step (read from the change feed);
- built days after the day of an action that arrived once the state had passed its day;
- every day of the window when both bounds are given (a backfill).
When that is exactly the day after the state's, the state advances by one day of actions with a
MERGE of the customers that changed, and nothing else is read; otherwise the days are built in one
pass over silver and the state is built again. Days before the window (less `retention_days`) are
deleted. What the step reads to plan comes from the change feed since the last step and from its
own progress, never from a scan of the history.

A step killed halfway leaves the progress of the last finished one: the next step first brings
the state and the vocabulary back to the versions that progress names (Delta RESTORE), then does
the work again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.config import DEFAULT_WINDOW_DAYS, HistoryConfig, check_knob, parse_day
from carousel.errors import CarouselError
from carousel.examples import explode_impressions
from carousel.gold import pack_training_examples
from carousel.history import build_histories, customer_days
from carousel.incremental import histories_from_state, initial_state, state_changes
from carousel.progress import stage
from carousel.storage import (
    DELETION_VECTORS,
    NoChangeFeedError,
    inserted_since,
    merge_table,
    qualified_name,
    read_table,
    restore_table,
    table_exists,
    table_ref,
    table_version,
    write_table,
)
from carousel.vocabulary import VOCABULARY_COLUMNS, item_counts, reranked_vocabulary, vocabulary_changes

log = logging.getLogger("carousel")

DAILY, FULL, NOTHING = "one day from the state", "one pass over silver", "nothing to build"
GOLD_STEP = "gold_step"
"""The subject of the step's own seconds, and the prefix of its stages' (`gold_step.plan`, `gold_step.state`, ...)."""

STATE_COLUMNS = contract.CUSTOMER_ACTION_STATE.column_names
PROGRESS_COLUMNS = contract.GOLD_PROGRESS.column_names


@dataclass(frozen=True)
class GoldTables:
    """Where the engine reads and writes: each a catalog table name or a Delta path."""

    actions_silver: str
    impressions_bronze: str
    customer_histories_gold: str
    training_examples_gold: str
    item_vocabulary_gold: str
    state: str
    progress: str

    @classmethod
    def under(cls, folder: str) -> GoldTables:
        """The tables as Delta directories `folder`/<name> (the local pipeline's warehouse, `carousel build`'s out)."""
        return cls(*(os.path.join(os.path.abspath(folder), name) for name in _NAMES))

    @classmethod
    def in_schema(cls, catalog: str, schema: str) -> GoldTables:
        """The tables as `catalog`.`schema`.<name> (a Databricks pipeline's target schema; empty parts: the current)."""
        return cls(*(qualified_name(catalog, schema, name) for name in _NAMES))


_NAMES = (
    contract.ACTIONS_SILVER.name,
    contract.bronze("impressions"),
    contract.CUSTOMER_HISTORIES_GOLD.name,
    contract.TRAINING_EXAMPLES_GOLD.name,
    contract.ITEM_VOCABULARY_GOLD.name,
    contract.CUSTOMER_ACTION_STATE.name,
    contract.GOLD_PROGRESS.name,
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
    """What one step did: how, which days, rows per table, the vocabulary's version, seconds per stage."""

    path: str = NOTHING
    days_built: list[str] = field(default_factory=list)
    days_deleted: list[str] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)
    vocabulary_version: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str, spark: SparkSession | None = None) -> Iterator[None]:
        """Add the seconds the body takes to `seconds[f"gold_step.{name}"]` (the step's own profile), and log them.

        With `spark`, a long stage logs its Spark tasks done too, as the other long stages do.
        """
        seconds: dict[str, float] = {}
        try:
            with stage(f"gold: {name}", seconds, spark):
                yield
        finally:
            key = f"{GOLD_STEP}.{name}"
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds.get(f"gold: {name}", 0.0)


@dataclass(frozen=True)
class _Progress:
    """The newest `gold_progress` row: what the last finished step read and left."""

    actions_version: int
    impressions_version: int
    state_as_of: str | None
    state_version: int | None
    vocabulary_version: int | None
    newest_day: str | None
    window_start: str | None


def _last_progress(spark: SparkSession, tables: GoldTables) -> _Progress | None:
    """The newest progress row, or None without one (a first step, or progress in the old layout: built again)."""
    if not table_exists(spark, tables.progress):
        return None
    if _progress_in_old_layout(spark, tables):
        log.warning("gold: %s is in an earlier release's layout: the window is built again", tables.progress)
        return None
    row = read_table(spark, tables.progress).orderBy(F.col("finished_at").desc()).first()
    if row is None:
        return None
    as_of = row["state_as_of"]
    return _Progress(
        row["actions_version"],
        row["impressions_version"],
        as_of.isoformat() if as_of else None,
        row["state_version"],
        row["vocabulary_version"],
        row["newest_day"],
        row["window_start"],
    )


def _progress_in_old_layout(spark: SparkSession, tables: GoldTables) -> bool:
    """Whether the stored progress lacks columns of this release's (an earlier release wrote it)."""
    return bool(set(PROGRESS_COLUMNS) - set(read_table(spark, tables.progress).columns))


def _restore_to_progress(spark: SparkSession, location: str, version: int | None) -> None:
    """Undo what a step killed after `version` of the table and before its progress row did to it."""
    if version is None or not table_exists(spark, location):
        return
    current = table_version(spark, location)
    if current != version:
        log.warning(
            "gold: %s is at version %d, the last finished step left %d: restoring it", location, current, version
        )
        restore_table(spark, location, version)


def _days_in(frame: DataFrame, column: str = "dt") -> set[str]:
    """The distinct days of `column`: a handful per update or window, so collecting them is bounded."""
    return {str(row[0]) for row in frame.select(F.col(column).cast("string")).distinct().collect()}


def _in_days(days: list[str], column: str = "dt") -> str:
    return f"{column} IN ({', '.join(repr(day) for day in days)})"


@dataclass(frozen=True)
class _Plan:
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


def _plan(spark: SparkSession, tables: GoldTables, window: Window, previous: _Progress | None) -> _Plan | None:
    """Which days to build and from what; None without impressions."""
    actions_version = table_version(spark, tables.actions_silver)
    impressions_version = table_version(spark, tables.impressions_bronze)
    impressions = read_table(spark, tables.impressions_bronze)
    actions = read_table(spark, tables.actions_silver)
    built = (
        _days_in(read_table(spark, tables.training_examples_gold))
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

    new_days = _days_in(new_impressions) if not recount else set()
    if recount or window.is_backfill or previous is None or previous.newest_day is None:
        newest = window.end or impressions.agg(F.max("dt").alias("newest")).first()["newest"]
    else:
        newest = max([previous.newest_day, *new_days])
    if newest is None:
        log.info("gold: no impressions yet")
        return None
    start, end = window.bounds(newest)

    if recount or window.is_backfill or previous is None:
        window_days = _days_in(impressions.where(F.col("dt").between(start, end)))
        to_build = set(window_days)
    else:
        window_days = {day for day in built | new_days if start <= day <= end}
        if previous.window_start is None or start < previous.window_start:
            # The window reaches further back than the last step's: its days there are read once.
            before = previous.window_start or end
            window_days |= _days_in(impressions.where((F.col("dt") >= start) & (F.col("dt") < before)))
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
    return _Plan(
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


def build_gold(
    spark: SparkSession, tables: GoldTables, window: Window = Window(), config: HistoryConfig = HistoryConfig()
) -> GoldReport:
    """Bring the gold tables, the vocabulary and the state up to date with silver and impressions bronze.

    Builds only what changed (see the module's docstring); a backfill window builds its every day.

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
        previous = _last_progress(spark, tables)
        if previous is not None:
            _restore_to_progress(spark, tables.state, previous.state_version)
            _restore_to_progress(spark, tables.item_vocabulary_gold, previous.vocabulary_version)
        plan = _plan(spark, tables, window, previous)
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
        report.vocabulary_version = _grow_vocabulary(spark, tables, plan)

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
    condition = _in_days(days)
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


def _stored_vocabulary(spark: SparkSession, location: str) -> DataFrame | None:
    """The stored vocabulary; one of an earlier release (no version) is adopted as it is, its indices kept."""
    if not table_exists(spark, location):
        return None
    stored = read_table(spark, location)
    if "vocabulary_version" not in stored.columns:
        log.warning("gold: %s has no vocabulary_version (an earlier release's): kept as version %d", location, 1)
        adopted = stored.select(
            "item_id", "item_index", "occurrences", F.lit(contract.FIRST_VOCABULARY_VERSION).alias("vocabulary_version")
        )
        write_table(adopted, location, properties=DELETION_VECTORS, described_by=contract.ITEM_VOCABULARY_GOLD)
        stored = read_table(spark, location)
    return stored


def _grow_vocabulary(spark: SparkSession, tables: GoldTables, plan: _Plan) -> int:
    """Add the step's new rows to the vocabulary: known items keep their index, new ones get the next; its version."""
    location = tables.item_vocabulary_gold
    if plan.nothing_new and table_exists(spark, location):
        return _vocabulary_version(spark, location)
    counts = item_counts(plan.new_actions, explode_impressions(plan.new_impressions))
    stored = _stored_vocabulary(spark, location)
    if stored is not None and not plan.recount and counts.isEmpty():
        return _vocabulary_version(spark, location)  # new versions without new rows: a MERGE would only cost
    if stored is None:
        empty = spark.createDataFrame([], contract.ITEM_VOCABULARY_GOLD.ddl())
        write_table(
            vocabulary_changes(empty, counts),
            location,
            properties=DELETION_VECTORS,
            described_by=contract.ITEM_VOCABULARY_GOLD,
        )
    else:
        # Counting every row again keeps the indices: only the counts of known items are replaced.
        base = stored.withColumn("occurrences", F.lit(0).cast("bigint")) if plan.recount else stored
        merge_table(spark, vocabulary_changes(base, counts), location, "item_id")
    return _vocabulary_version(spark, location)


def _vocabulary_version(spark: SparkSession, location: str) -> int:
    """The `vocabulary_version` of the stored vocabulary (the same on every row)."""
    version = read_table(spark, location).agg(F.max("vocabulary_version")).first()[0]
    return int(version) if version is not None else contract.FIRST_VOCABULARY_VERSION


def _record_progress(spark: SparkSession, tables: GoldTables, plan: _Plan, state_as_of: str | None, days: list[str]):
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
    old_layout = table_exists(spark, tables.progress) and _progress_in_old_layout(spark, tables)
    write_table(
        frame,
        tables.progress,
        mode="overwrite" if old_layout else "append",
        described_by=contract.GOLD_PROGRESS,
    )


def rerank_vocabulary(spark: SparkSession, tables: GoldTables) -> int:
    """Give every item its index again by all-time frequency, as the vocabulary's next version; return that version.

    The one operation that moves known items' indices (see `carousel.vocabulary`). The step's
    progress records the new table version, so the next step keeps it.

    Raises:
        MissingVocabularyError: no vocabulary yet (no gold step has run).
    """
    previous = _last_progress(spark, tables)
    stored = _stored_vocabulary(spark, tables.item_vocabulary_gold)
    if stored is None or previous is None:
        raise MissingVocabularyError(
            f"no vocabulary at {tables.item_vocabulary_gold}: run the gold step (carousel pipeline or build) first"
        )
    _restore_to_progress(spark, tables.item_vocabulary_gold, previous.vocabulary_version)
    reranked = reranked_vocabulary(read_table(spark, tables.item_vocabulary_gold))
    write_table(
        reranked.select(*VOCABULARY_COLUMNS), tables.item_vocabulary_gold, described_by=contract.ITEM_VOCABULARY_GOLD
    )
    version = _vocabulary_version(spark, tables.item_vocabulary_gold)
    row = read_table(spark, tables.progress).orderBy(F.col("finished_at").desc()).limit(1)
    moved = row.select(
        F.current_timestamp().alias("finished_at"),
        *[c for c in PROGRESS_COLUMNS if c not in ("finished_at", "vocabulary_version", "days_built")],
        F.lit(table_version(spark, tables.item_vocabulary_gold)).cast("bigint").alias("vocabulary_version"),
        F.array().cast("array<string>").alias("days_built"),
    ).select(*PROGRESS_COLUMNS)
    write_table(moved, tables.progress, mode="append", described_by=contract.GOLD_PROGRESS)
    log.info("gold: vocabulary re-ranked as version %d", version)
    return version


class MissingGoldInputError(CarouselError, LookupError):
    """The gold step found no silver or impressions bronze to read; the message names them and what to run first."""


class MissingVocabularyError(CarouselError, LookupError):
    """A re-rank found no vocabulary to re-rank; the message names the table and what to run first."""
