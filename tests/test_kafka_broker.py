"""The local Kafka broker: it starts, serves the same address after a restart, keeps its messages, fails clearly.

A batch produced again after a kill sends only what the topic did not get.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from pyspark.sql import functions as F

from carousel.errors import CarouselError
from carousel.kafka_source import messages_of, read_messages
from carousel.local import kafka_broker
from carousel.local.kafka_broker import (
    KafkaBrokerError,
    LocalKafkaBroker,
    broker_jars,
    numbered_records,
    send_batch,
)


def test_a_restarted_broker_serves_the_same_address_and_every_earlier_message(spark, tmp_path):
    folder = tmp_path / "kafka"
    with LocalKafkaBroker(folder) as broker:
        first_address = broker.bootstrap_servers
        messages = spark.createDataFrame([("1", "one"), ("2", "two")], "key string, value string")
        messages.write.format("kafka").option("kafka.bootstrap.servers", first_address).option("topic", "clicks").save()
    assert not kafka_broker._accepts(int(first_address.split(":")[1]))
    with LocalKafkaBroker(folder) as broker:
        assert broker.bootstrap_servers == first_address
        held = read_messages(spark, broker.settings(), "clicks").selectExpr("CAST(value AS STRING)")
        assert sorted(row[0] for row in held.collect()) == ["one", "two"]


def test_missing_jars_without_maven_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(kafka_broker.shutil, "which", lambda name: None)
    with pytest.raises(KafkaBrokerError) as raised:
        broker_jars(tmp_path / "nothing-here")
    missing = tmp_path / "nothing-here"
    assert (
        str(raised.value)
        == f"the Kafka broker's jars are not in {missing}, and Maven (mvn) is not installed to fetch them"
    )
    assert isinstance(raised.value, CarouselError)


def _clicks(spark):
    at = dt.datetime(2025, 6, 30, 10, 0, tzinfo=dt.timezone.utc)
    rows = [("2025-06-30", customer, 100 + customer % 3, at) for customer in range(1, 9)]
    rows.append(rows[0])  # the same click twice: two messages, by design
    rows.append(("2025-06-30", None, 100, at))  # a dirty click without a customer: a message without a key
    return spark.createDataFrame(rows, "dt string, customer_id int, item_id int, click_time timestamp")


def test_a_batch_sent_again_after_a_kill_sends_only_what_the_topic_did_not_get(spark, tmp_path):
    rows, sending = _clicks(spark), tmp_path / "clicks.sending"
    with LocalKafkaBroker(tmp_path / "kafka") as broker:
        kafka = broker.settings()
        # A killed first try of micro-batch 3: its mark written, three of its ten records sent (the one
        # without a key among them, which a plain join would never find in the topic), no commit.
        sending.mkdir()
        (sending / "3").write_text(str(time.time_ns() // 1_000_000))
        (sending / "2").write_text("0")  # an earlier batch's mark: committed, so it goes
        records = numbered_records(rows, "clicks", 3)
        assert sorted(row.row for row in records.collect()) == ["3:1"] * 9 + ["3:2"]
        first_three = records.orderBy(F.col("key").asc_nulls_first(), "row").limit(3).drop("row")
        first_three.write.format("kafka").option("kafka.bootstrap.servers", kafka.bootstrap_servers).option(
            "topic", "clicks"
        ).save()
        assert send_batch(rows, 3, "clicks", kafka, sending) == 7
        assert send_batch(rows, 3, "clicks", kafka, sending) == 0  # killed after sending, before the commit
        assert sorted(path.name for path in sending.iterdir()) == ["3"]
        held = read_messages(spark, kafka, "clicks").selectExpr("CAST(value AS STRING)")
        expected = messages_of(rows, "clicks").select("value")
        assert sorted(row[0] for row in held.collect()) == sorted(row[0] for row in expected.collect())
        # A new batch starts afresh: its rows are sent even though they equal earlier ones.
        assert send_batch(rows.limit(1), 4, "clicks", kafka, sending) == 1
        assert sorted(path.name for path in sending.iterdir()) == ["4"]
