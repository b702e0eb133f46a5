"""The local Kafka broker: it starts, serves the same address after a restart, keeps its messages, and fails clearly."""

from __future__ import annotations

import pytest

from carousel.errors import CarouselError
from carousel.kafka_source import read_messages
from carousel.pipeline import kafka_broker
from carousel.pipeline.kafka_broker import KafkaBrokerError, LocalKafkaBroker, broker_jars


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
