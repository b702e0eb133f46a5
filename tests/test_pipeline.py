"""The declarative pipeline end to end over landed Delta sources: two daily updates, one killed and run again.

Update 1 ingests the tiny dirty data; one more day is then landed (`generate_next_day`); update 2
is killed as soon as one of its streams has committed, and run again. The tables must then equal
the core functions over all raw rows (each row once: none lost, none twice), the gold tables the
rolling window of the newest two days, and the run metrics must show that update 2 took in
exactly the new day's rows.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from builders import example_tuples
from pipeline_runs import killed_once_a_stream_commits, rows_of, snapshot, without_run_id
from pyspark.sql import functions as F

from carousel import build_training_examples
from carousel.actions import unify_actions
from carousel.batch import advance, build
from carousel.config import HistoryConfig
from carousel.contract import CUSTOMER_ACTION_STATE, GOLD_PROGRESS
from carousel.gold import unpack_training_examples
from carousel.local.demo_data import generate, generate_next_day
from carousel.local.runner import (
    GOLD_STEP,
    VERSIONED_TABLES,
    read_published,
    run_recorded,
    settings_fingerprint,
    source_versions,
    unchanged_since,
)
from carousel.local.spark_pipelines import LocalPipeline
from carousel.local.summary import STORED_TABLES
from carousel.pipeline.datasets import (
    ACTIONS_SILVER,
    BRONZE,
    CUSTOMER_HISTORIES_GOLD,
    QUARANTINE,
    SOURCE_RECONCILIATION,
    TRAINING_EXAMPLES_GOLD,
)
from carousel.pipeline.settings import PipelineSettings
from carousel.quality import keep_valid, quarantine_rows
from carousel.run_metrics import ROWS_PROCESSED
from carousel.storage import RAW_SOURCES, read_source, table_version
from carousel.synthetic import SyntheticConfig

TINY = SyntheticConfig(
    customers=150,
    window_days=3,
    window_end="2025-06-30",
    history_days=15,
    actions_per_customer_year=1500,
    dirty_rate=0.1,
)
WINDOW_DAYS = 2
FIRST_WINDOW = ("2025-06-29", "2025-06-30")  # the newest two of the three generated impression days
NEXT_DAY = "2025-07-01"
SECOND_WINDOW = ("2025-06-30", NEXT_DAY)
HISTORY = HistoryConfig(history_length=5, lookback_days=7)


@pytest.fixture(scope="module")
def daily_updates(spark, tmp_path_factory):
    """Raw sources on disk; update 1; one more day landed; update 2 killed once a stream committed; update 2 again."""
    root = tmp_path_factory.mktemp("pipeline")
    raw_dir = root / "raw"
    first_rows = generate(spark, str(raw_dir), TINY)
    sources = {source: str(raw_dir / source) for source in RAW_SOURCES}
    settings = PipelineSettings(sources=sources, window_days=WINDOW_DAYS, history=HISTORY)
    pipeline = LocalPipeline(root / "work")

    first_summary = run_recorded(spark, pipeline, settings, cores=2, driver_memory="2g", shuffle_partitions=4)
    first = snapshot(spark, pipeline)
    day, landed = generate_next_day(spark, str(raw_dir), TINY)
    assert day == NEXT_DAY
    arguments = [
        "--input", str(raw_dir), "--window-days", str(WINDOW_DAYS), "--history-length", str(HISTORY.history_length),
        "--lookback-days", str(HISTORY.lookback_days), "--shuffle-partitions", "4", "--driver-memory", "2g",
    ]  # fmt: skip
    killed = killed_once_a_stream_commits(spark, pipeline, arguments)
    second_summary = run_recorded(spark, pipeline, settings, cores=2, driver_memory="2g", shuffle_partitions=4)
    raw = {source: read_source(spark, path) for source, path in sources.items()}
    return {
        "raw": raw,
        "pipeline": pipeline,
        "settings": settings,
        "first": first,
        "second": snapshot(spark, pipeline),
        "first_rows": first_rows,
        "landed": landed,
        "summaries": (first_summary, second_summary),
        "killed": killed,
    }


@pytest.mark.slow
def test_every_raw_row_is_kept_or_quarantined_once_with_its_rules(spark, daily_updates):
    raw, pipeline, second = daily_updates["raw"], daily_updates["pipeline"], daily_updates["second"]
    first_summary, second_summary = daily_updates["summaries"]
    reconciliation = {row[1]: row[2:] for row in second[SOURCE_RECONCILIATION]}
    newly_quarantined = {}
    for source in RAW_SOURCES:
        bronze, quarantine = second[BRONZE[source]], second[QUARANTINE[source]]
        assert reconciliation[source] == (raw[source].count(), len(bronze), len(quarantine))
        assert bronze == rows_of(keep_valid(raw[source], source)), source
        stored = spark.read.format("delta").load(str(pipeline.table_path(QUARANTINE[source])))
        assert without_run_id(quarantine, stored.columns) == rows_of(
            quarantine_rows(raw[source], source).drop("run_id")
        )
        # Rows are quarantined once, by the update that took them in: update 1's keep its run id.
        earlier = daily_updates["first"][QUARANTINE[source]]
        earlier_rows = {repr(row) for row in earlier}
        assert earlier_rows <= {repr(row) for row in quarantine}
        run_id = stored.columns.index("run_id")
        assert {row[run_id] for row in earlier} == {first_summary.run_id}
        assert first_summary.run_id not in {row[run_id] for row in quarantine if repr(row) not in earlier_rows}
        newly_quarantined[source] = len(quarantine) - len(earlier)
    # A day of 150 customers holds a few orders only, but dirty clicks for sure.
    assert newly_quarantined["clicks"] > 0, newly_quarantined
    assert second[ACTIONS_SILVER] == rows_of(unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"]))
    assert second_summary.rows[ACTIONS_SILVER] == len(second[ACTIONS_SILVER])


@pytest.mark.slow
def test_update_2_took_in_exactly_the_landed_day(spark, daily_updates):
    pipeline = daily_updates["pipeline"]
    first_summary, second_summary = daily_updates["summaries"]
    metrics = spark.read.format("delta").load(str(pipeline.run_metrics)).where(F.col("metric") == ROWS_PROCESSED)
    for summary, expected in ((first_summary, daily_updates["first_rows"]), (second_summary, daily_updates["landed"])):
        recorded = {row.subject: row.value for row in metrics.where(F.col("run_id") == summary.run_id).collect()}
        assert recorded == {source: float(rows) for source, rows in expected.items()}
        assert summary.rows_processed == expected
    assert all(rows > 0 for rows in daily_updates["landed"].values())


@pytest.mark.slow
def test_gold_holds_the_rolling_window_and_equals_the_core_functions(spark, daily_updates):
    raw, pipeline = daily_updates["raw"], daily_updates["pipeline"]
    for tables, window in ((daily_updates["first"], FIRST_WINDOW), (daily_updates["second"], SECOND_WINDOW)):
        assert {row[0] for row in tables[CUSTOMER_HISTORIES_GOLD]} == set(window)
        assert {row[0] for row in tables[TRAINING_EXAMPLES_GOLD]} == set(window)
    impressions = raw["impressions"].where(F.col("dt").between(*SECOND_WINDOW))
    expected = build_training_examples(
        impressions, raw["clicks"], raw["add_to_carts"], raw["orders"], HISTORY.history_length, HISTORY.lookback_days
    )
    gold = spark.read.format("delta").load(str(pipeline.table_path(TRAINING_EXAMPLES_GOLD)))
    assert example_tuples(unpack_training_examples(gold)) == example_tuples(expected)
    histories = spark.read.format("delta").load(str(pipeline.table_path(CUSTOMER_HISTORIES_GOLD)))
    assert histories.count() == gold.count()


@pytest.mark.slow
def test_carousel_build_and_advance_write_the_pipelines_gold_and_state(spark, daily_updates, tmp_path):
    """One engine: the pipeline's gold task, `carousel build` (a backfill) and `carousel advance` (the daily path)."""
    pipeline = daily_updates["pipeline"]
    sources = {source: str(pipeline.work_dir.parent / "raw" / source) for source in RAW_SOURCES}
    build(spark, sources, str(tmp_path / "built"), HISTORY, *SECOND_WINDOW)
    build(spark, sources, str(tmp_path / "advanced"), HISTORY, *FIRST_WINDOW)
    advance(spark, sources, str(tmp_path / "advanced"), FIRST_WINDOW[-1], HISTORY, WINDOW_DAYS)
    for out in ("built", "advanced"):
        for table in (CUSTOMER_HISTORIES_GOLD, TRAINING_EXAMPLES_GOLD, CUSTOMER_ACTION_STATE.name):
            built = spark.read.format("delta").load(str(tmp_path / out / table))
            published = spark.read.format("delta").load(str(pipeline.table_path(table)))
            assert built.columns == published.columns, (out, table)
            assert rows_of(built) == rows_of(published), (out, table)
            assert built.count() > 0, (out, table)
    progress = spark.read.format("delta").load(str(tmp_path / "advanced" / GOLD_PROGRESS.name))
    newest = progress.orderBy(F.col("finished_at").desc()).first()
    assert (newest.days_built, newest.state_as_of.isoformat()) == ([NEXT_DAY], NEXT_DAY)  # one day from the state


@pytest.mark.slow
def test_every_run_is_recorded_in_the_run_metrics_table(spark, daily_updates):
    raw, pipeline, second = daily_updates["raw"], daily_updates["pipeline"], daily_updates["second"]
    first_summary, second_summary = daily_updates["summaries"]
    metrics = spark.read.format("delta").load(str(pipeline.run_metrics))
    # The killed run could not record itself: the table holds the two that finished.
    assert {row.run_id for row in metrics.select("run_id").distinct().collect()} == {
        first_summary.run_id,
        second_summary.run_id,
    }
    rows = metrics.where(F.col("run_id") == second_summary.run_id).collect()
    assert {(row.command, row.status, row.error) for row in rows} == {("pipeline", "succeeded", None)}
    recorded = {(row.subject, row.metric): row.value for row in rows}
    for source in RAW_SOURCES:
        assert recorded[(source, "rows_read")] == raw[source].count()
        assert recorded[(source, "rows_kept")] == len(second[BRONZE[source]])
        assert recorded[(source, "rows_quarantined")] == len(second[QUARANTINE[source]])
    for table in STORED_TABLES:
        assert recorded[(table, "rows_written")] == len(second[table])
    assert recorded[(GOLD_STEP, "seconds")] >= 0
    assert recorded[(BRONZE["clicks"], "seconds")] >= 0


@pytest.mark.slow
def test_a_killed_update_leaves_the_published_tables_and_the_rerun_completes(spark, daily_updates):
    pipeline, first, second = daily_updates["pipeline"], daily_updates["first"], daily_updates["second"]
    for table in STORED_TABLES:
        stored = spark.read.format("delta").load(str(pipeline.table_path(table)))
        assert daily_updates["killed"][table] == without_run_id(first[table], stored.columns), table
        assert rows_of(read_published(spark, pipeline, table)) == second[table], table


@pytest.mark.slow
def test_the_summary_counts_each_updates_own_quarantined_rows_per_rule_and_no_nan(spark, daily_updates):
    pipeline = daily_updates["pipeline"]
    quarantines = {
        source: spark.read.format("delta").load(str(pipeline.table_path(QUARANTINE[source]))) for source in RAW_SOURCES
    }
    for summary in daily_updates["summaries"]:
        expected = {}
        for source, quarantine in quarantines.items():
            rules = quarantine.where(F.col("run_id") == summary.run_id).select(F.explode("broken_rules").alias("rule"))
            expected.update({(source, row["rule"]): row["count"] for row in rules.groupBy("rule").count().collect()})
        assert summary.quarantined_by_rule == expected
        assert "nan" not in "\n".join(summary.lines())
    # Update 2 does not count update 1's quarantined rows again.
    first_summary, second_summary = daily_updates["summaries"]
    every_rule_broken = sum(quarantine.select(F.explode("broken_rules")).count() for quarantine in quarantines.values())
    assert sum(first_summary.quarantined_by_rule.values()) > 0
    assert sum(second_summary.quarantined_by_rule.values()) < every_rule_broken


@pytest.mark.slow
def test_an_update_with_nothing_new_runs_nothing_and_records_itself(spark, daily_updates, tmp_path):
    """Nothing landed, same settings, tables untouched: the update is recorded from the last run, nothing is run."""
    shutil.copytree(daily_updates["pipeline"].work_dir, tmp_path / "work")  # the module's tables stay as they are
    pipeline, settings = LocalPipeline(tmp_path / "work"), daily_updates["settings"]
    second_summary = daily_updates["summaries"][1]
    versions = {table: table_version(spark, str(pipeline.table_path(table))) for table in VERSIONED_TABLES}

    idle = run_recorded(spark, pipeline, settings, cores=2, driver_memory="2g", shuffle_partitions=4)
    again = run_recorded(spark, pipeline, settings, cores=2, driver_memory="2g", shuffle_partitions=4)

    assert (idle.idle_since, again.idle_since) == (second_summary.run_id, idle.run_id)
    assert idle.rows == again.rows == second_summary.rows
    assert idle.counts == second_summary.counts
    assert idle.rows_processed == {source: 0 for source in RAW_SOURCES}
    assert f"nothing new since run {second_summary.run_id}" in "\n".join(idle.lines())
    assert {table: table_version(spark, str(pipeline.table_path(table))) for table in VERSIONED_TABLES} == versions
    metrics = spark.read.format("delta").load(str(pipeline.run_metrics)).where(F.col("run_id") == again.run_id)
    assert {(row.status, row.metric) for row in metrics.where(F.col("subject") == "clicks").collect()} == {
        ("succeeded", metric)
        for metric in ("rows_read", "rows_kept", "rows_quarantined", ROWS_PROCESSED, "source_version")
    }

    sources = source_versions(spark, settings)
    other_settings = dataclasses.replace(settings, window_days=WINDOW_DAYS + 1)
    assert unchanged_since(spark, pipeline, settings_fingerprint(other_settings), sources) is None
    moved = {**sources, "orders": sources["orders"] + 1}  # a source that landed rows since
    assert unchanged_since(spark, pipeline, settings_fingerprint(settings), moved) is None
    assert unchanged_since(spark, pipeline, settings_fingerprint(settings), sources).run_id == again.run_id
    gold = str(pipeline.table_path(TRAINING_EXAMPLES_GOLD))
    spark.sql(f"ALTER TABLE delta.`{gold}` SET TBLPROPERTIES ('carousel.touched' = 'by hand')")
    assert unchanged_since(spark, pipeline, settings_fingerprint(settings), sources) is None
