"""What a local run wrote: rows per table (from the Delta logs), quarantined rows per rule, seconds, reconciliation."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.engine import GOLD_STEP, GoldReport
from carousel.local.spark_pipelines import LocalPipeline
from carousel.pipeline.datasets import (
    ACTIONS_SILVER,
    BRONZE,
    CUSTOMER_HISTORIES_GOLD,
    QUARANTINE,
    SOURCE_RECONCILIATION,
    TRAINING_EXAMPLES_GOLD,
)
from carousel.reconciliation import SourceCounts, counts_from_rows, union_all

T = TypeVar("T")

SUMMARY = "summary"
"""Subject of the seconds the local runner spends counting what the run wrote and recording it."""


STORED_TABLES = (
    *BRONZE.values(),
    *QUARANTINE.values(),
    ACTIONS_SILVER,
    CUSTOMER_HISTORIES_GOLD,
    TRAINING_EXAMPLES_GOLD,
    contract.ITEM_VOCABULARY_GOLD.name,
    SOURCE_RECONCILIATION,
)

GOLD_STAGE_OF = {
    CUSTOMER_HISTORIES_GOLD: "days",
    TRAINING_EXAMPLES_GOLD: "days",
    contract.ITEM_VOCABULARY_GOLD.name: "vocabulary",
}
"""The gold step's stage that writes each gold table (both gold tables in one stage): its seconds in the summary."""


@dataclass
class RunSummary:
    """What a local run wrote: rows per table and per broken rule, seconds per flow, reconciliation per source."""

    rows: dict[str, int] = field(default_factory=dict)
    quarantined_by_rule: dict[tuple[str, str], int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    counts: list[SourceCounts] = field(default_factory=list)
    rows_processed: dict[str, int] = field(default_factory=dict)
    gold: GoldReport | None = None
    run_id: str = ""
    idle_since: str | None = None
    """The run whose tables this update kept as they were, nothing new having landed since; None: it ran."""

    def seconds_of(self, table: str) -> float | None:
        """The seconds of the flow that filled `table`, or of the gold step's stage that wrote it; None if unknown."""
        if table in GOLD_STAGE_OF and self.gold is not None:
            return self.gold.seconds.get(f"{GOLD_STEP}.{GOLD_STAGE_OF[table]}")
        return self.seconds.get(table)

    def lines(self) -> list[str]:
        table_width = max(len(t) for t in self.rows)
        out = [f"run {self.run_id}"]
        if self.idle_since:
            out.append(
                f"nothing new since run {self.idle_since} (same sources, settings and tables): "
                "spark-pipelines and the gold step were not run (--force runs them)"
            )
        out.append("rows per table:")
        out += [f"  {t:<{table_width}} {n:>14,}  {_seconds(self.seconds_of(t))}" for t, n in self.rows.items()]
        out.append("rows quarantined per rule (this update):")
        out += [f"  {s}.{r}: {n:,}" for (s, r), n in sorted(self.quarantined_by_rule.items())] or ["  none"]
        out.append("reconciliation (rows read = kept + quarantined):")
        out += [f"  {counts.describe()}" for counts in self.counts]
        if self.gold is not None:
            out.append(f"gold step: {self.gold.path}: built {', '.join(self.gold.days_built) or 'no day'}")
            if self.gold.days_deleted:
                out.append(f"  deleted (left the window): {', '.join(self.gold.days_deleted)}")
        if self.rows_processed:
            out.append("rows this update took in (kept or quarantined):")
            out += [f"  {source}: {rows:,}" for source, rows in self.rows_processed.items()]
        return out


def _seconds(seconds: float | None) -> str:
    """`12.3 s`, or a dash where no time is known (an update with nothing new ran no flow and no gold step)."""
    return f"{seconds:7.1f} s" if seconds is not None and math.isfinite(seconds) else f"{'-':>7}  "


def table_rows(spark: SparkSession, path: str) -> int:
    """The rows of the Delta table at `path`, from its log's file statistics: no data file is read.

    Delta answers an unfiltered count from the `numRecords` of each file's statistics (less its
    deletion vector), so the cost is the table's log, not its rows. A file written without
    statistics would make Delta read that file; the pipeline and the gold step write them.
    """
    return spark.read.format("delta").load(path).count()


def summarize(
    spark: SparkSession, pipeline: LocalPipeline, seconds: dict[str, float], run_id: str | None = None
) -> RunSummary:
    """What a finished local run left: rows per stored table (table metadata), this update's quarantined rows per rule.

    Nothing here reads a table's history: rows come from the Delta logs' statistics (`table_rows`), the
    quarantined rows from the files of the update `run_id` (Delta skips every file whose run ids, by
    their statistics, cannot hold it), the counts from the update's own reconciliation rows. Without
    `run_id`, the rules count every quarantined row.
    """
    summary = RunSummary(seconds=seconds, run_id=run_id or "")
    summary.rows = per_table(lambda table: table_rows(spark, str(pipeline.table_path(table))), STORED_TABLES)
    quarantined = []
    for source, table in QUARANTINE.items():
        quarantine = spark.read.format("delta").load(str(pipeline.table_path(table)))
        if run_id:
            quarantine = quarantine.where(F.col("run_id") == run_id)
        quarantined.append(quarantine.select(F.lit(source).alias("source"), F.explode("broken_rules").alias("rule")))
    for row in union_all(quarantined).groupBy("source", "rule").count().collect():
        summary.quarantined_by_rule[(row["source"], row["rule"])] = row["count"]
    reconciliation = spark.read.format("delta").load(str(pipeline.table_path(SOURCE_RECONCILIATION)))
    summary.counts = counts_from_rows(reconciliation.orderBy("source").collect())
    return summary


_SIDE_BY_SIDE = 4
"""How many tables the runner asks about at once: each question is a small job that mostly waits on Delta's log."""


def per_table(answer: Callable[[str], T], tables: Iterable[str]) -> dict[str, T]:
    """`answer` of each table, asked `_SIDE_BY_SIDE` at a time, in the order of `tables`."""
    tables = list(tables)
    with ThreadPoolExecutor(max_workers=_SIDE_BY_SIDE) as pool:
        return dict(zip(tables, pool.map(answer, tables), strict=True))
