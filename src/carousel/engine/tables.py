"""The gold engine's vocabulary of its own: the tables it keeps, the window it builds, the report it returns."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from carousel import contract
from carousel.config import DEFAULT_WINDOW_DAYS, check_knob, parse_day
from carousel.progress import stage
from carousel.storage import qualified_name

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
