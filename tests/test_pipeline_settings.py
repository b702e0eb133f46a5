"""Pipeline configuration: defaults, overrides, and errors that name the key (no Spark needed)."""

from __future__ import annotations

import pytest

from carousel.config import HistoryConfig
from carousel.pipeline.settings import DEFAULT_SOURCES, KafkaSettings, PipelineConfigError, PipelineSettings


def settings_from(configuration: dict[str, str]) -> PipelineSettings:
    return PipelineSettings.from_conf(lambda key, default: configuration.get(key, default))


def test_defaults_when_nothing_is_configured():
    assert settings_from({}) == PipelineSettings(
        sources=DEFAULT_SOURCES,
        window_start=None,
        window_end=None,
        window_days=14,
        retention_days=0,
        history=HistoryConfig(1000, 365),
    )


def test_every_key_overrides_its_default():
    settings = settings_from(
        {
            "carousel.source.impressions": "main.raw.impressions",
            "carousel.source.clicks": "/landing/clicks",
            "carousel.window_start": "2025-06-17",
            "carousel.window_end": " 2025-06-30 ",
            "carousel.window_days": "7",
            "carousel.history_length": "100",
            "carousel.lookback_days": "30",
        }
    )
    assert settings.sources["impressions"] == "main.raw.impressions"
    assert settings.sources["clicks"] == "/landing/clicks"
    assert settings.sources["orders"] == DEFAULT_SOURCES["orders"]
    assert (settings.window_start, settings.window_end) == ("2025-06-17", "2025-06-30")
    assert settings.window_days == 7
    assert settings.history == HistoryConfig(100, 30)


def test_empty_window_settings_mean_the_default_rolling_window():
    settings = settings_from({"carousel.window_start": "", "carousel.window_end": "", "carousel.window_days": ""})
    assert (settings.window_start, settings.window_end, settings.window_days) == (None, None, 14)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("carousel.window_start", "2025-13-01"),
        ("carousel.window_end", "yesterday"),
        ("carousel.history_length", "ten"),
        ("carousel.history_length", "0"),
        ("carousel.lookback_days", "-3"),
        ("carousel.window_days", "0"),
        ("carousel.window_days", "two weeks"),
    ],
)
def test_malformed_value_names_the_key(key, value):
    with pytest.raises(PipelineConfigError, match=f"'{key}'"):
        settings_from({key: value})


def test_window_ending_before_it_starts_is_refused():
    with pytest.raises(PipelineConfigError, match="ends"):
        settings_from({"carousel.window_start": "2025-06-30", "carousel.window_end": "2025-06-01"})


def test_kafka_settings_name_the_topics_servers_and_pass_through_options():
    configuration = {
        "carousel.kafka.bootstrap_servers": " broker-1:9093,broker-2:9093 ",
        "carousel.kafka.topic.clicks": "shop.clicks",
        "carousel.kafka.topic.add_to_carts": "",
        "carousel.kafka.option.kafka.security.protocol": "SASL_SSL",
        "carousel.kafka.option.maxOffsetsPerTrigger": "100000",
        "carousel.kafka.option.kafka.sasl.jaas.config": " ",
        "carousel.window_days": "7",
    }
    settings = PipelineSettings.from_conf(lambda key, default: configuration.get(key, default), configuration)
    assert settings.kafka == KafkaSettings(
        "broker-1:9093,broker-2:9093",
        {"clicks": "shop.clicks"},
        {"kafka.security.protocol": "SASL_SSL", "maxOffsetsPerTrigger": "100000"},
    )
    assert (settings.from_kafka("clicks"), settings.from_kafka("add_to_carts")) == (True, False)
    assert settings.kafka.reader_options("clicks") == {
        "kafka.bootstrap.servers": "broker-1:9093,broker-2:9093",
        "subscribe": "shop.clicks",
        "startingOffsets": "earliest",
        "kafka.security.protocol": "SASL_SSL",
        "maxOffsetsPerTrigger": "100000",
    }


def test_no_topic_means_every_source_is_a_table():
    settings = settings_from({"carousel.kafka.bootstrap_servers": "broker:9092"})
    assert settings.kafka is None
    assert not settings.from_kafka("clicks")


def test_a_topic_without_bootstrap_servers_is_refused_naming_both_keys():
    with pytest.raises(PipelineConfigError) as raised:
        settings_from({"carousel.kafka.topic.add_to_carts": "carts"})
    message = str(raised.value)
    assert "carousel.kafka.bootstrap_servers" in message and "carousel.kafka.topic.add_to_carts" in message
