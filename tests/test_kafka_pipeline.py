"""The declarative pipeline end to end with a real Kafka broker: clicks and add-to-carts read from their topics.

Update 1 produces the tiny dirty data's clicks and add-to-carts to a local KRaft broker and runs
the pipeline; one more day is landed and three malformed messages produced (cut off, text after
the object, two objects back to back); `carousel pipeline
--kafka` is killed (broker included) while it produces the new day, killed again at its first
streaming commit, and run again. Every message
must then sit in bronze or quarantine exactly once, with its topic, partition and offset; the
gold tables must equal the core functions over the window; update 2 must have taken in exactly
the new day's messages.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from builders import example_tuples
from pipeline_runs import killed_once_a_stream_commits, killed_when, rows_of, snapshot, without_run_id
from pyspark.sql import functions as F
from test_pipeline import HISTORY, NEXT_DAY, SECOND_WINDOW, TINY, WINDOW_DAYS

from carousel import build_training_examples
from carousel.contract import KAFKA_LINEAGE_COLUMNS, KAFKA_SOURCES
from carousel.gold import unpack_training_examples
from carousel.kafka_source import read_messages
from carousel.local.demo_data import generate, generate_next_day
from carousel.local.kafka_broker import LocalKafkaBroker, produce_landed
from carousel.local.runner import read_published, run_recorded
from carousel.local.spark_pipelines import LocalPipeline
from carousel.local.summary import STORED_TABLES
from carousel.pipeline.datasets import BRONZE, QUARANTINE, SOURCE_RECONCILIATION, TRAINING_EXAMPLES_GOLD
from carousel.pipeline.settings import PipelineSettings
from carousel.quality import keep_valid, quarantine_rows
from carousel.storage import RAW_SOURCES, read_source

LINEAGE = [column.name for column in KAFKA_LINEAGE_COLUMNS]
_CLICK = '{"dt": "2025-07-01", "customer_id": 12, "item_id": 3, "click_time": "2025-07-01T09:00:00Z"}'
MALFORMED = [
    '{"dt": "2025-07-01", "customer_id": 12, "item_id": 3, "click_time": ',  # cut off: not JSON
    _CLICK + " trailing",  # text after the object
    _CLICK + _CLICK,  # two objects back to back
]


def _update(spark, pipeline: LocalPipeline, settings: PipelineSettings):
    """One daily update as `carousel pipeline --kafka` runs it: broker up, new rows produced, pipeline run."""
    with LocalKafkaBroker(pipeline.kafka_dir) as broker:
        kafka = broker.settings()
        settings = dataclasses.replace(settings, kafka=kafka)
        produced = produce_landed(spark, settings, pipeline)
        summary = run_recorded(spark, pipeline, settings, cores=2, driver_memory="2g", shuffle_partitions=4)
        topics = {
            source: rows_of(read_messages(spark, kafka, source).select("partition", "offset"))
            for source in KAFKA_SOURCES
        }
    return summary, produced, topics


@pytest.fixture(scope="module")
def kafka_updates(spark, tmp_path_factory):
    """Update 1 from Kafka; one more day landed and three malformed clicks produced; update 2 killed, then run again."""
    root = tmp_path_factory.mktemp("kafka_pipeline")
    raw_dir = root / "raw"
    first_rows = generate(spark, str(raw_dir), TINY)
    sources = {source: str(raw_dir / source) for source in RAW_SOURCES}
    settings = PipelineSettings(sources=sources, window_days=WINDOW_DAYS, history=HISTORY)
    pipeline = LocalPipeline(root / "work")

    first_summary, first_produced, _ = _update(spark, pipeline, settings)
    first = snapshot(spark, pipeline)
    day, landed = generate_next_day(spark, str(raw_dir), TINY)
    assert day == NEXT_DAY
    with LocalKafkaBroker(pipeline.kafka_dir) as broker:
        malformed = spark.createDataFrame([("12", value) for value in MALFORMED], "key string, value string")
        malformed.write.format("kafka").option("kafka.bootstrap.servers", broker.bootstrap_servers).option(
            "topic", broker.settings().topics["clicks"]
        ).save()
    arguments = [
        "--kafka", "--input", str(raw_dir), "--window-days", str(WINDOW_DAYS),
        "--history-length", str(HISTORY.history_length), "--lookback-days", str(HISTORY.lookback_days),
        "--shuffle-partitions", "4", "--driver-memory", "2g",
    ]  # fmt: skip
    # Killed while it produces: once the clicks topic has some of the new day, before the producer commits it.
    producer_commits = pipeline.producer_checkpoint("clicks") / "commits"
    commits_before = sorted(path.name for path in producer_commits.iterdir())
    clicks_before = _topic_bytes(pipeline, "clicks")
    killed_when(pipeline, arguments, lambda: _topic_bytes(pipeline, "clicks") > clicks_before, "clicks were sent")
    uncommitted = sorted(path.name for path in producer_commits.iterdir()) == commits_before
    killed = killed_once_a_stream_commits(spark, pipeline, arguments)
    second_summary, second_produced, topics = _update(spark, pipeline, settings)
    return {
        "raw": {source: read_source(spark, path) for source, path in sources.items()},
        "pipeline": pipeline,
        "first": first,
        "second": snapshot(spark, pipeline),
        "first_rows": first_rows,
        "landed": landed,
        "produced": (first_produced, second_produced),
        "topics": topics,
        "summaries": (first_summary, second_summary),
        "killed": killed,
        "killed_before_the_producer_committed": uncommitted,
    }


def _topic_bytes(pipeline: LocalPipeline, topic: str) -> int:
    """The bytes the local broker holds of `topic`'s messages (its partitions' log segments)."""
    return sum(segment.stat().st_size for segment in (pipeline.kafka_dir / "log").glob(f"{topic}-*/*.log"))


def _stored(spark, pipeline: LocalPipeline, table: str):
    return spark.read.format("delta").load(str(pipeline.table_path(table)))


@pytest.mark.slow
def test_every_message_is_in_bronze_or_quarantine_exactly_once_with_its_lineage(spark, kafka_updates):
    pipeline, topics = kafka_updates["pipeline"], kafka_updates["topics"]
    first_produced, second_produced = kafka_updates["produced"]
    # The first killed run died with part of the new day's clicks sent and none of it committed.
    assert kafka_updates["killed_before_the_producer_committed"]
    for source in KAFKA_SOURCES:
        # The killed runs produced the new day; the last run found nothing left to produce.
        assert second_produced[source] == 0
        assert first_produced[source] == kafka_updates["first_rows"][source]
        # Every landed row in its topic once, whatever the kills: none sent twice.
        malformed = len(MALFORMED) if source == "clicks" else 0
        landed = kafka_updates["first_rows"][source] + kafka_updates["landed"][source]
        assert len(topics[source]) == landed + malformed, source
        ingested = rows_of(
            _stored(spark, pipeline, BRONZE[source])
            .select("kafka_partition", "kafka_offset")
            .unionAll(_stored(spark, pipeline, QUARANTINE[source]).select("kafka_partition", "kafka_offset"))
        )
        assert ingested == topics[source], source  # every offset once: none lost, none twice
        assert {row.kafka_topic for row in _stored(spark, pipeline, BRONZE[source]).collect()} == {source}


@pytest.mark.slow
def test_bronze_and_quarantine_hold_what_the_rules_say_and_the_malformed_message(spark, kafka_updates):
    raw, pipeline = kafka_updates["raw"], kafka_updates["pipeline"]
    for source in KAFKA_SOURCES:
        bronze = _stored(spark, pipeline, BRONZE[source])
        assert bronze.columns[-len(LINEAGE) :] == LINEAGE
        assert rows_of(bronze.drop(*LINEAGE)) == rows_of(keep_valid(raw[source], source))
        quarantine = _stored(spark, pipeline, QUARANTINE[source])
        from_rows = quarantine.where(~F.array_contains("broken_rules", "message_is_json_object"))
        expected = quarantine_rows(raw[source], source).drop("raw_record", "run_id")
        assert rows_of(from_rows.drop(*LINEAGE, "raw_record", "run_id")) == rows_of(expected), source
    malformed = (
        _stored(spark, pipeline, QUARANTINE["clicks"])
        .where(F.array_contains("broken_rules", "message_is_json_object"))
        .collect()
    )
    assert [(row.broken_rules, row.kafka_topic) for row in malformed] == [(["message_is_json_object"], "clicks")] * 3
    values = sorted(json.loads(row.raw_record)["value"] for row in malformed)
    assert values == sorted(MALFORMED)


@pytest.mark.slow
def test_update_2_took_in_exactly_the_new_days_messages(kafka_updates):
    first_summary, second_summary = kafka_updates["summaries"]
    assert first_summary.rows_processed == kafka_updates["first_rows"]
    expected = dict(kafka_updates["landed"])
    expected["clicks"] += len(MALFORMED)  # the malformed messages
    assert second_summary.rows_processed == expected
    reconciliation = {row[1]: row[2:] for row in kafka_updates["second"][SOURCE_RECONCILIATION]}
    for source in KAFKA_SOURCES:
        read, kept, quarantined = reconciliation[source]
        assert read == kept + quarantined == len(kafka_updates["topics"][source])


@pytest.mark.slow
def test_gold_equals_the_core_functions_over_the_window(spark, kafka_updates):
    raw, pipeline = kafka_updates["raw"], kafka_updates["pipeline"]
    expected = build_training_examples(
        raw["impressions"].where(F.col("dt").between(*SECOND_WINDOW)),
        raw["clicks"],
        raw["add_to_carts"],
        raw["orders"],
        HISTORY.history_length,
        HISTORY.lookback_days,
    )
    gold = _stored(spark, pipeline, TRAINING_EXAMPLES_GOLD)
    assert example_tuples(unpack_training_examples(gold)) == example_tuples(expected)
    assert example_tuples(expected)


@pytest.mark.slow
def test_a_killed_update_leaves_the_published_tables_and_the_rerun_completes(spark, kafka_updates):
    pipeline, first, second = kafka_updates["pipeline"], kafka_updates["first"], kafka_updates["second"]
    for table in STORED_TABLES:
        stored = _stored(spark, pipeline, table)
        assert kafka_updates["killed"][table] == without_run_id(first[table], stored.columns), table
        assert rows_of(read_published(spark, pipeline, table)) == second[table], table
