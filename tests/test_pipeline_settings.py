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


class _CountingConf:
    """A session's `conf` that counts its reads: `get` per key, `getAll` (a property, as in Spark 4.2) at all."""

    def __init__(self, configuration: dict[str, str]) -> None:
        self.configuration, self.gets, self.get_alls = configuration, 0, 0

    def get(self, key: str, default: str | None = None) -> str | None:
        self.gets += 1
        return self.configuration.get(key, default)

    @property
    def getAll(self) -> dict[str, str]:  # noqa: N802 - Spark's name
        self.get_alls += 1
        return dict(self.configuration)


class _Session:
    def __init__(self, configuration: dict[str, str]) -> None:
        self.conf = _CountingConf(configuration)


def test_settings_read_every_key_at_once_only_when_a_kafka_topic_is_named():
    from carousel.pipeline.datasets import settings_of

    landed = _Session({"carousel.source.clicks": "/landing/clicks"})
    assert settings_of(landed).sources["clicks"] == "/landing/clicks"
    assert landed.conf.get_alls == 0
    kafka = _Session(
        {
            "carousel.kafka.bootstrap_servers": "broker:9092",
            "carousel.kafka.topic.clicks": "shop.clicks",
            "carousel.kafka.option.maxOffsetsPerTrigger": "10",
        }
    )
    assert settings_of(kafka).kafka == KafkaSettings(
        "broker:9092", {"clicks": "shop.clicks"}, {"maxOffsetsPerTrigger": "10"}
    )
    assert kafka.conf.get_alls == 1


def test_a_raw_source_is_opened_once_per_update_and_session():
    from carousel.pipeline.datasets import RawInput

    configuration = {
        "carousel.run_id": "run-1",
        "carousel.kafka.bootstrap_servers": "broker:9092",
        "carousel.kafka.topic.clicks": "shop.clicks",
    }
    session = _Session(configuration)
    first = RawInput.open(session, "clicks")
    gets = session.conf.gets
    # The other pipeline files of the update (quarantine, reconciliation) get the same input back, in two reads.
    assert RawInput.open(session, "clicks") is first and RawInput.open(session, "clicks") is first
    assert (session.conf.gets - gets, session.conf.get_alls) == (4, 1)
    assert first.location == "kafka topic 'shop.clicks'" and first.kafka.topics == {"clicks": "shop.clicks"}
    configuration["carousel.run_id"] = "run-2"  # the next update opens it again
    assert RawInput.open(session, "clicks") is not first
    configuration["carousel.kafka.topic.clicks"] = "shop.clicks.v2"  # so does another topic
    assert RawInput.open(session, "clicks").location == "kafka topic 'shop.clicks.v2'"
    assert RawInput.open(_Session(configuration), "clicks") is not first  # and another session
