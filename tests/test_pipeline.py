"""The declarative pipeline end to end: `spark-pipelines run` twice on tiny dirty data."""

from __future__ import annotations

import pytest
from builders import example_tuples
from pyspark.sql import functions as F

from carousel import build_training_examples
from carousel.config import HistoryConfig
from carousel.gold import unpack_training_examples
from carousel.local_pipeline import STORED_TABLES, LocalPipeline, summarize
from carousel.pipeline_datasets import BRONZE, QUARANTINE
from carousel.pipeline_settings import PipelineSettings
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
        return {
            table: sorted(
                map(tuple, spark.read.format("delta").load(str(pipeline.table_path(table))).collect()), key=repr
            )
            for table in STORED_TABLES
        }

    first_seconds = pipeline.run(settings, cores=2, driver_memory="2g", shuffle_partitions=4)
    first = snapshot()
    summary = summarize(spark, pipeline, first_seconds)
    pipeline.run(settings, cores=2, driver_memory="2g", shuffle_partitions=4)
    second = snapshot()
    raw = {source: read_source(spark, path) for source, path in sources.items()}
    return raw, pipeline, first, second, summary


@pytest.mark.slow
def test_every_raw_row_is_kept_or_quarantined_with_its_rules(spark, pipeline_runs):
    raw, pipeline, first, _, summary = pipeline_runs
    for source in RAW_SOURCES:
        bronze, quarantine = first[BRONZE[source]], first[QUARANTINE[source]]
        assert raw[source].count() == len(bronze) + len(quarantine), source
        assert len(quarantine) > 0, f"the tiny data should hold dirty {source}"
        assert bronze == sorted(map(tuple, keep_valid(raw[source], source).collect()), key=repr)
        assert quarantine == sorted(map(tuple, quarantine_rows(raw[source], source).collect()), key=repr)
        assert summary.rows[QUARANTINE[source]] == len(quarantine)
    assert sum(n for (source, _), n in summary.quarantined_by_rule.items() if source == "clicks") >= len(
        first[QUARANTINE["clicks"]]
    )


@pytest.mark.slow
def test_gold_equals_the_core_functions(spark, pipeline_runs):
    raw, pipeline, _, _, _ = pipeline_runs
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
    _, _, first, second, _ = pipeline_runs
    assert {table: len(rows) for table, rows in second.items()} == {table: len(rows) for table, rows in first.items()}
    assert second == first
