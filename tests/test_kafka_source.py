"""Kafka messages: JSON parsed to the contract, the two message rules, lineage, and the offset-bounded counts.

The messages are built as Spark's Kafka reader returns them (no broker needed); the broker
itself is exercised end to end in `test_kafka_pipeline.py`.
"""

from __future__ import annotations

import datetime as dt

import pytest

from carousel.contract import KAFKA_LINEAGE_COLUMNS
from carousel.kafka_source import (
    MISSING_FIELDS,
    message_counts,
    message_progress,
    messages_of,
    parse_messages,
    quarantined_messages,
    starting_offsets,
    well_formed,
)
from carousel.quality import all_rules_hold
from carousel.reconciliation import checked_progress, progress_from_rows

UTC = dt.timezone.utc
PRODUCED = dt.datetime(2025, 7, 1, 6, 0, tzinfo=UTC)
VALID_0 = '{"dt":"2025-06-30","customer_id":7,"item_id":11,"click_time":"2025-06-30T10:00:00.000Z"}'
VALID_1 = '{"dt":"2025-06-30","customer_id":8,"item_id":13,"click_time":"2025-06-30T11:30:00.000Z"}'
NO_CLICK_TIME = '{"dt":"2025-06-30","customer_id":7,"item_id":12}'
NEGATIVE_CUSTOMER = '{"dt":"2025-06-30","customer_id":-3,"item_id":12,"click_time":"2025-06-30T10:00:00.000Z"}'
TEXT_CUSTOMER = '{"dt":"2025-06-30","customer_id":"abc","item_id":12,"click_time":"2025-06-30T10:00:00.000Z"}'
MESSAGES = [  # (partition, offset, value)
    (0, 0, VALID_0),
    (0, 1, "not json"),
    (0, 2, "[1, 2]"),
    (1, 0, NO_CLICK_TIME),
    (1, 1, NEGATIVE_CUSTOMER),
    (1, 2, TEXT_CUSTOMER),
    (1, 3, VALID_1),
]


@pytest.fixture(scope="module")
def messages(spark):
    """The topic as Spark's Kafka reader gives it: key, value, topic, partition, offset, timestamp, timestampType."""
    rows = [(b"k", value.encode(), "clicks", partition, offset, PRODUCED, 0) for partition, offset, value in MESSAGES]
    schema = (
        "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp, timestampType int"
    )
    return spark.createDataFrame(rows, schema)


def _lineage(partition: int, offset: int) -> tuple:
    return ("clicks", partition, offset, PRODUCED.replace(tzinfo=None))


def test_well_formed_messages_keep_the_contract_columns_and_their_lineage(spark, messages):
    parsed = parse_messages(messages, "clicks")
    kept = well_formed(parsed, "clicks")
    assert kept.columns == [
        "dt",
        "customer_id",
        "item_id",
        "click_time",
        *(column.name for column in KAFKA_LINEAGE_COLUMNS),
    ]
    at_ten = dt.datetime(2025, 6, 30, 10, 0)
    assert sorted(map(tuple, kept.collect()), key=repr) == sorted(
        [
            ("2025-06-30", 7, 11, at_ten, *_lineage(0, 0)),
            ("2025-06-30", -3, 12, at_ten, *_lineage(1, 1)),
            ("2025-06-30", None, 12, at_ten, *_lineage(1, 2)),  # a mistyped field reads NULL: its rule judges it
            ("2025-06-30", 8, 13, dt.datetime(2025, 6, 30, 11, 30), *_lineage(1, 3)),
        ],
        key=repr,
    )


def test_every_broken_message_is_quarantined_with_its_rules_and_the_raw_value(spark, messages):
    quarantined = quarantined_messages(parse_messages(messages, "clicks"), "clicks", run_id="run-1")
    rows = {(row.kafka_partition, row.kafka_offset): row for row in quarantined.collect()}
    assert {key: row.broken_rules for key, row in rows.items()} == {
        (0, 1): ["message_is_json_object"],
        (0, 2): ["message_is_json_object"],
        (1, 0): ["message_has_every_field", "click_time_present"],
        (1, 1): ["customer_id_positive"],
        (1, 2): ["customer_id_positive"],
    }
    assert rows[(0, 1)].raw_record == (
        '{"topic":"clicks","partition":0,"offset":1,"timestamp":"2025-07-01T06:00:00.000Z","value":"not json"}'
    )
    assert rows[(1, 2)].raw_record.endswith(',"value":' + '"' + TEXT_CUSTOMER.replace('"', '\\"') + '"}')
    assert {row.run_id for row in rows.values()} == {"run-1"}


@pytest.mark.parametrize(
    ("value", "is_object"),
    [
        (VALID_0, True),
        ("  " + VALID_0 + " \n\t", True),  # blanks around one object are JSON
        ('{"dt":"}{", "item_id":"]"}', True),  # brackets inside a string are text
        (VALID_0 + " trailing", False),
        (VALID_0 + VALID_1, False),  # two objects back to back
        (VALID_0 + " " + VALID_1, False),
        (VALID_0 + ", " + VALID_1, False),
        (VALID_0 + "}", False),
        (VALID_0 + "]", False),  # would close the array `[value]`
        (VALID_0 + ",0]", False),  # would close the array `[value,0]`
        (VALID_0 + "] [", False),
        (VALID_0 + ",0] x", False),
        ("[" + VALID_0 + "]", False),
        ("", False),
    ],
)
def test_a_value_is_a_json_object_only_when_nothing_but_blanks_follows_it(spark, value, is_object):
    message = spark.createDataFrame(
        [(b"k", value.encode(), "clicks", 0, 0, PRODUCED, 0)],
        "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp, timestampType int",
    )
    parsed = parse_messages(message, "clicks")
    assert (parsed.first()[MISSING_FIELDS] is not None) is is_object
    if not is_object:
        broken = [row.broken_rules for row in quarantined_messages(parsed, "clicks").collect()]
        assert broken == [["message_is_json_object"]]


def _counts(frame) -> tuple:
    row = frame.first()
    return row.rows_read, row.rows_kept, row.rows_quarantined


def test_counts_cover_the_offsets_ingested_so_far(spark, messages):
    parsed = parse_messages(messages, "clicks")
    bronze = well_formed(parsed, "clicks").where(all_rules_hold("clicks"))
    quarantine = quarantined_messages(parsed, "clicks")
    assert _counts(message_counts(messages, bronze, quarantine, "clicks")) == (7, 2, 5)
    # Mid-stream: partition 0 read to its end, partition 1 to offset 0 only; the rest is not read yet.
    assert _counts(
        message_counts(
            messages,
            bronze.where("kafka_partition = 0"),
            quarantine.where("kafka_offset <= 0 OR kafka_partition = 0"),
            "clicks",
        )
    ) == (4, 1, 3)
    # A message ingested twice unbalances them.
    assert _counts(message_counts(messages, bronze.unionByName(bronze), quarantine, "clicks")) == (7, 4, 5)


def test_counts_skip_offsets_the_topic_no_longer_holds(spark, messages):
    parsed = parse_messages(messages, "clicks")
    bronze = well_formed(parsed, "clicks").where(all_rules_hold("clicks"))
    quarantine = quarantined_messages(parsed, "clicks")
    after_retention = messages.where("NOT (partition = 0 AND offset = 0)")
    assert _counts(message_counts(after_retention, bronze, quarantine, "clicks")) == (6, 1, 5)


def _by_partition(progress) -> dict[int, tuple]:
    """Per partition: next offset, totals read / kept / quarantined, this update's read / kept / quarantined."""
    return {
        row.kafka_partition: (row.next_offset, *row[4:7], *row[7:10])
        for row in progress.collect()
        if row.source == "clicks"
    }


def test_each_update_is_reconciled_over_the_offsets_it_took_in_and_the_totals_add_up(spark, messages):
    parsed = parse_messages(messages, "clicks")
    bronze = well_formed(parsed, "clicks").where(all_rules_hold("clicks"))
    quarantine = quarantined_messages(parsed, "clicks")
    # Update 1 took in offsets 0 and 1 of each partition; update 2 the rest; update 3 nothing.
    first = checked_progress(
        message_progress(messages, bronze.where("kafka_offset <= 1"), quarantine.where("kafka_offset <= 1"), "clicks"),
        "run-1",
    )
    assert _by_partition(first) == {0: (2, 2, 1, 1, 2, 1, 1), 1: (2, 2, 0, 2, 2, 0, 2)}
    previous = progress_from_rows(first.collect())["clicks"]
    assert starting_offsets("clicks", previous) == '{"clicks": {"0": 2, "1": 2}}'
    since = messages.where("offset >= 2")  # what `read_messages` from those offsets returns
    second = checked_progress(message_progress(since, bronze, quarantine, "clicks", previous), "run-2")
    assert _by_partition(second) == {0: (3, 3, 1, 2, 1, 0, 1), 1: (4, 4, 1, 3, 2, 1, 1)}
    previous = progress_from_rows(second.collect())["clicks"]
    third = message_progress(messages.where("offset >= 4"), bronze, quarantine, "clicks", previous)
    assert _by_partition(checked_progress(third, "run-3")) == {0: (3, 3, 1, 2, 0, 0, 0), 1: (4, 4, 1, 3, 0, 0, 0)}


def test_a_message_lost_or_ingested_twice_within_an_update_fails_that_update(spark, messages):
    parsed = parse_messages(messages, "clicks")
    bronze = well_formed(parsed, "clicks").where(all_rules_hold("clicks"))
    quarantine = quarantined_messages(parsed, "clicks")
    first = message_progress(
        messages, bronze.where("kafka_offset <= 1"), quarantine.where("kafka_offset <= 1"), "clicks"
    )
    previous = progress_from_rows(checked_progress(first, "run-1").collect())["clicks"]
    since = messages.where("offset >= 2")
    lost = quarantine.where("NOT (kafka_partition = 1 AND kafka_offset = 2)")  # within update 2's offsets
    with pytest.raises(
        Exception, match=r"reconciliation failed: source 'clicks': read 3 rows, kept 1 \+ quarantined 1 = 2"
    ):
        checked_progress(message_progress(since, bronze, lost, "clicks", previous), "run-2").collect()
    twice = quarantine.unionByName(quarantine.where("kafka_partition = 0 AND kafka_offset = 2"))
    with pytest.raises(
        Exception, match=r"reconciliation failed: source 'clicks': read 3 rows, kept 1 \+ quarantined 3 = 4"
    ):
        checked_progress(message_progress(since, bronze, twice, "clicks", previous), "run-2").collect()
    # Update 1's offsets are not read again: a duplicate among them does not fail update 2.
    old_twice = quarantine.unionByName(quarantine.where("kafka_partition = 0 AND kafka_offset = 1"))
    assert _by_partition(checked_progress(message_progress(since, bronze, old_twice, "clicks", previous), "run-2"))


def test_landed_rows_become_json_messages_that_parse_back_to_the_same_rows(spark):
    rows = spark.createDataFrame(
        [("2025-06-30", 7, 11, dt.datetime(2025, 6, 30, 10, 0, 0, 123000, tzinfo=UTC), "extra")],
        "dt string, customer_id int, item_id int, click_time timestamp, ignored string",
    )
    records = messages_of(rows, "clicks")
    assert [tuple(row) for row in records.collect()] == [
        ("7", '{"dt":"2025-06-30","customer_id":7,"item_id":11,"click_time":"2025-06-30T10:00:00.123Z"}')
    ]
    as_read = records.selectExpr(
        "key", "value", "'clicks' AS topic", "0 AS partition", "5L AS offset", "current_timestamp() AS timestamp"
    )
    parsed = well_formed(parse_messages(as_read, "clicks"), "clicks")
    assert [tuple(row)[:4] for row in parsed.collect()] == [
        ("2025-06-30", 7, 11, dt.datetime(2025, 6, 30, 10, 0, 0, 123000))
    ]
