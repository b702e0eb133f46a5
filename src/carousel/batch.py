"""The batch path behind `carousel build` and `carousel advance`: raw rows to bronze, silver and the gold engine.

Every path writes the pipeline's own gold layout (`carousel.contract`): `customer_histories_gold`
and the packed `training_examples_gold`, partitioned by `dt`, so the loader and the baseline read
the output of `carousel build`, `carousel advance` and the declarative pipeline alike.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.actions import unify_actions
from carousel.config import DEFAULT_WINDOW_DAYS, HistoryConfig, parse_day
from carousel.engine import GoldTables, Window, build_gold
from carousel.progress import stage
from carousel.quality import keep_valid, quarantine_rows
from carousel.reconciliation import SourceCounts, check_reconciled
from carousel.run_metrics import RunRecord, recorded_run
from carousel.schemas import RAW_DAY_COLUMN, conformed_columns
from carousel.storage import (
    CHANGE_FEED,
    RAW_SOURCES,
    read_source,
    read_table,
    write_table,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger("carousel")


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
