"""The declarative pipeline end to end: `spark-pipelines run` twice on tiny dirty data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from builders import example_tuples
from pyspark.sql import functions as F

from carousel import build_training_examples
from carousel.batch import build
from carousel.config import HistoryConfig
from carousel.gold import unpack_training_examples
from carousel.pipeline.datasets import (
    BRONZE,
    CUSTOMER_HISTORIES_GOLD,
    QUARANTINE,
    SOURCE_RECONCILIATION,
    TRAINING_EXAMPLES_GOLD,
)
from carousel.pipeline.local import STORED_TABLES, LocalPipeline, read_published, run_recorded
from carousel.pipeline.settings import PipelineSettings
from carousel.quality import keep_valid, quarantine_rows
from carousel.storage import RAW_SOURCES, read_source
from carousel.synthetic import SyntheticConfig, generate_raw

TINY = SyntheticConfig(
    customers=150,
    window_days=3,
    window_end="2025-06-30",
    history_days=15,
    actions_per_customer_year=1500,
    dirty_rate=0.1,
)
WINDOW_START, WINDOW_END = "2025-06-29", "2025-06-30"  # leaves the first window day out
HISTORY = HistoryConfig(history_length=5, lookback_days=7)


@pytest.fixture(scope="module")
def pipeline_runs(spark, tmp_path_factory):
    """Raw sources on disk, and the tables of two pipeline runs in a row over them."""
    root = tmp_path_factory.mktemp("pipeline")
    for source, frame in generate_raw(spark, TINY).items():
        frame.write.format("delta").save(str(root / "raw" / source))
    sources = {source: str(root / "raw" / source) for source in RAW_SOURCES}
    settings = PipelineSettings(sources=sources, window_start=WINDOW_START, window_end=WINDOW_END, history=HISTORY)
    pipeline = LocalPipeline(root / "work")

    def snapshot() -> dict[str, list[tuple]]:
        """Every stored table's rows; the run id, which differs on purpose, is compared apart."""
        tables = {}
        for table in STORED_TABLES:
            frame = spark.read.format("delta").load(str(pipeline.table_path(table)))
            tables[table] = sorted(map(tuple, frame.drop("run_id").collect()), key=repr)
            if "run_id" in frame.columns:
                tables[f"{table}.run_id"] = sorted({row.run_id for row in frame.select("run_id").collect()})
        return tables

    first_summary = run_recorded(spark, pipeline, settings, cores=2, driver_memory="2g", shuffle_partitions=4)
    first = snapshot()
    killed = _killed_while_writing_gold(spark, root, pipeline)
    second_summary = run_recorded(spark, pipeline, settings, cores=2, driver_memory="2g", shuffle_partitions=4)
    second = snapshot()
    raw = {source: read_source(spark, path) for source, path in sources.items()}
    return raw, pipeline, first, second, first_summary, second_summary, killed


def _killed_while_writing_gold(spark, root, pipeline: LocalPipeline) -> dict[str, list[tuple]]:
    """Start `carousel pipeline` on the same data, SIGKILL it once the gold flow runs; what readers then see."""
    command = [
        sys.executable, "-m", "carousel.cli", "pipeline", "--input", str(root / "raw"), "--work-dir",
        str(pipeline.work_dir), "--from-dt", WINDOW_START, "--to-dt", WINDOW_END,
        "--history-length", str(HISTORY.history_length), "--lookback-days", str(HISTORY.lookback_days),
        "--shuffle-partitions", "4", "--driver-memory", "2g",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if f"pipeline: {CUSTOMER_HISTORIES_GOLD} running" in line:
                os.killpg(process.pid, signal.SIGKILL)  # the runner, spark-pipelines and its JVM
                break
        else:
            pytest.fail(f"the pipeline ended (exit {process.wait()}) before its gold flow ran")
        process.wait()
    return {
        table: sorted(map(tuple, read_published(spark, pipeline, table).drop("run_id").collect()), key=repr)
        for table in STORED_TABLES
    }


@pytest.mark.slow
def test_every_raw_row_is_kept_or_quarantined_with_its_rules(spark, pipeline_runs):
    raw, pipeline, first, _, summary, _, _ = pipeline_runs
    reconciliation = {row[0]: row[1:] for row in first[SOURCE_RECONCILIATION]}
    for source in RAW_SOURCES:
        bronze, quarantine = first[BRONZE[source]], first[QUARANTINE[source]]
        assert raw[source].count() == len(bronze) + len(quarantine), source
        assert reconciliation[source] == (raw[source].count(), len(bronze), len(quarantine))
        assert len(quarantine) > 0, f"the tiny data should hold dirty {source}"
        assert bronze == sorted(map(tuple, keep_valid(raw[source], source).collect()), key=repr)
        expected_quarantine = quarantine_rows(raw[source], source).drop("run_id")
        assert quarantine == sorted(map(tuple, expected_quarantine.collect()), key=repr)
        assert first[f"{QUARANTINE[source]}.run_id"] == [summary.run_id]
        assert summary.rows[QUARANTINE[source]] == len(quarantine)
    assert sum(n for (source, _), n in summary.quarantined_by_rule.items() if source == "clicks") >= len(
        first[QUARANTINE["clicks"]]
    )


@pytest.mark.slow
def test_carousel_build_writes_the_pipelines_gold_rows(spark, pipeline_runs, tmp_path):
    _, pipeline, *_ = pipeline_runs
    sources = {source: str(pipeline.work_dir.parent / "raw" / source) for source in RAW_SOURCES}
    build(spark, sources, str(tmp_path / "gold"), HISTORY, WINDOW_START, WINDOW_END)
    for table in (CUSTOMER_HISTORIES_GOLD, TRAINING_EXAMPLES_GOLD):
        built = spark.read.format("delta").load(str(tmp_path / "gold" / table))
        published = spark.read.format("delta").load(str(pipeline.table_path(table)))
        assert built.columns == published.columns, table
        assert sorted(map(tuple, built.collect()), key=repr) == sorted(map(tuple, published.collect()), key=repr)
        assert built.count() > 0, table


@pytest.mark.slow
def test_gold_equals_the_core_functions(spark, pipeline_runs):
    raw, pipeline, _, _, _, _, _ = pipeline_runs
    impressions = raw["impressions"].where(F.col("dt").between(WINDOW_START, WINDOW_END))
    expected = build_training_examples(
        impressions, raw["clicks"], raw["add_to_carts"], raw["orders"], HISTORY.history_length, HISTORY.lookback_days
    )
    gold = spark.read.format("delta").load(str(pipeline.table_path("training_examples_gold")))
    actual = example_tuples(unpack_training_examples(gold))
    assert actual == example_tuples(expected)
    assert {row[0] for row in actual} == {WINDOW_START, WINDOW_END}
    histories = spark.read.format("delta").load(str(pipeline.table_path("customer_histories_gold")))
    assert histories.count() == gold.count()


@pytest.mark.slow
def test_second_run_gives_the_same_tables(pipeline_runs):
    _, _, first, second, first_summary, second_summary, _ = pipeline_runs
    assert first_summary.run_id != second_summary.run_id
    run_ids = {table for table in first if table.endswith(".run_id")}
    assert run_ids == {f"{table}.run_id" for table in (*QUARANTINE.values(), SOURCE_RECONCILIATION)}
    assert all(first[table] == [first_summary.run_id] for table in run_ids)
    assert all(second[table] == [second_summary.run_id] for table in run_ids)
    first = {table: rows for table, rows in first.items() if table not in run_ids}
    second = {table: rows for table, rows in second.items() if table not in run_ids}
    assert {table: len(rows) for table, rows in second.items()} == {table: len(rows) for table, rows in first.items()}
    assert second == first


@pytest.mark.slow
def test_every_run_is_recorded_in_the_run_metrics_table(spark, pipeline_runs):
    raw, pipeline, first, _, first_summary, second_summary, _ = pipeline_runs
    metrics = spark.read.format("delta").load(str(pipeline.run_metrics))
    for summary in (first_summary, second_summary):
        rows = metrics.where(F.col("run_id") == summary.run_id).collect()
        assert {(row.command, row.status, row.error) for row in rows} == {("pipeline", "succeeded", None)}
        recorded = {(row.subject, row.metric): row.value for row in rows}
        for source in RAW_SOURCES:
            assert recorded[(source, "rows_read")] == raw[source].count()
            assert recorded[(source, "rows_kept")] == len(first[BRONZE[source]])
            assert recorded[(source, "rows_quarantined")] == len(first[QUARANTINE[source]])
        for table in STORED_TABLES:
            assert recorded[(table, "rows_written")] == len(first[table])
        assert recorded[("customer_histories_gold", "seconds")] >= 0


@pytest.mark.slow
def test_a_run_killed_while_writing_gold_leaves_the_published_tables_and_the_next_run_completes(spark, pipeline_runs):
    _, pipeline, first, second, first_summary, second_summary, killed = pipeline_runs
    published_first = {table: rows for table, rows in first.items() if not table.endswith(".run_id")}
    assert killed == published_first  # readable, and unchanged
    assert all(killed[table] for table in (CUSTOMER_HISTORIES_GOLD, "training_examples_gold"))
    # The killed run could not record itself: the run-metrics table holds the two that finished.
    metrics = spark.read.format("delta").load(str(pipeline.run_metrics))
    assert {row.run_id for row in metrics.select("run_id").distinct().collect()} == {
        first_summary.run_id,
        second_summary.run_id,
    }
    for table in STORED_TABLES:
        assert (
            sorted(map(tuple, read_published(spark, pipeline, table).drop("run_id").collect()), key=repr)
            == (second[table])
        )
