"""The pipeline's configuration: sources, training window and history knobs, with defaults.

Keys are read from the pipeline configuration (`spark.conf` inside a pipeline run), so the same
dataset files serve `spark-pipelines run` locally and a Databricks pipeline deployed by the bundle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from carousel import contract
from carousel.config import (
    DEFAULT_HISTORY_LENGTH,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_WINDOW_DAYS,
    HistoryConfig,
    KafkaSettings,
    parse_knob,
)
from carousel.errors import CarouselError
from carousel.storage import RAW_SOURCES

PREFIX = "carousel."
SOURCE_KEYS = {source: f"{PREFIX}source.{source}" for source in RAW_SOURCES}
WINDOW_START_KEY = f"{PREFIX}window_start"
WINDOW_END_KEY = f"{PREFIX}window_end"
HISTORY_LENGTH_KEY = f"{PREFIX}history_length"
LOOKBACK_DAYS_KEY = f"{PREFIX}lookback_days"
WINDOW_DAYS_KEY = f"{PREFIX}window_days"
RETENTION_DAYS_KEY = f"{PREFIX}retention_days"
DEFAULT_SOURCES = {source: f"data/raw/{source}" for source in RAW_SOURCES}
KAFKA_BOOTSTRAP_SERVERS_KEY = f"{PREFIX}kafka.bootstrap_servers"
KAFKA_TOPIC_KEYS = {source: f"{PREFIX}kafka.topic.{source}" for source in contract.KAFKA_SOURCES}
KAFKA_OPTION_PREFIX = f"{PREFIX}kafka.option."
"""Every key under it goes to Spark's Kafka reader without the prefix (e.g. `...option.kafka.security.protocol`)."""


class PipelineConfigError(CarouselError, ValueError):
    """A pipeline configuration value is malformed; the message names the key."""


def _day_or_none(key: str, value: str | None) -> str | None:
    if value is None or value.strip() == "":
        return None
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise PipelineConfigError(
            f"pipeline setting '{key}' must be a day 'yyyy-MM-dd' or empty, got {value!r}"
        ) from None


AllSettings = Mapping[str, str] | Callable[[], Mapping[str, str]]
"""Every setting (e.g. `spark.conf.getAll`), or a function that reads them: called only when a Kafka topic is named."""


def _kafka_settings(get: Callable[[str, str | None], str | None], conf: AllSettings) -> KafkaSettings | None:
    topics = {source: (get(key, None) or "").strip() for source, key in KAFKA_TOPIC_KEYS.items()}
    topics = {source: topic for source, topic in topics.items() if topic}
    if not topics:
        return None
    servers = (get(KAFKA_BOOTSTRAP_SERVERS_KEY, None) or "").strip()
    if not servers:
        named = ", ".join(KAFKA_TOPIC_KEYS[source] for source in topics)
        raise PipelineConfigError(
            f"pipeline setting '{KAFKA_BOOTSTRAP_SERVERS_KEY}' is empty, but {named} names a topic"
        )
    # An empty value is a setting left unset (a bundle variable's empty default), not an empty option.
    conf = conf() if callable(conf) else conf
    options = {
        key[len(KAFKA_OPTION_PREFIX) :]: value
        for key, value in conf.items()
        if key.startswith(KAFKA_OPTION_PREFIX) and value.strip()
    }
    return KafkaSettings(servers, topics, options)


def _knob(knob: str, key: str, value: str) -> int:
    try:
        return parse_knob(knob, value, name=f"pipeline setting '{key}'")
    except ValueError as error:
        raise PipelineConfigError(str(error)) from None


@dataclass(frozen=True)
class PipelineSettings:
    """Everything a pipeline run is configured by.

    Attributes:
        sources: raw source per name of `RAW_SOURCES`, a table name or a path.
        window_days: how many impression days gold covers, ending at `window_end`, else at the newest
            impression day: a rolling window.
        retention_days: impression days gold keeps before the window (0: the window only).
        window_start, window_end: inclusive bounds on the impressions' dt (a backfill names both); an
            explicit start replaces the one `window_days` gives.
        history: history length N and lookback days L.
        kafka: where clicks and add-to-carts come from when they come from Kafka topics (None: every
            source is a table or a path).
    """

    sources: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SOURCES))
    window_start: str | None = None
    window_end: str | None = None
    window_days: int = DEFAULT_WINDOW_DAYS
    retention_days: int = 0
    history: HistoryConfig = HistoryConfig()
    kafka: KafkaSettings | None = None

    def from_kafka(self, source: str) -> bool:
        """Whether `source` is read from a Kafka topic rather than a table or a path."""
        return self.kafka is not None and source in self.kafka.topics

    @classmethod
    def from_conf(
        cls, get: Callable[[str, str | None], str | None], conf: AllSettings | None = None
    ) -> PipelineSettings:
        """Read the settings through `get(key, default)`, e.g. `spark.conf.get`.

        `conf` is every setting (e.g. `spark.conf.getAll()`), or a function that reads them: the Kafka
        reader options are found there by prefix, so it is read only when a Kafka topic is named.

        Raises:
            PipelineConfigError: a value is malformed or out of its range in `carousel.config.KNOBS`, the
                window ends before it starts, or a Kafka topic is named without bootstrap servers.
        """
        sources = {
            source: get(key, DEFAULT_SOURCES[source]) or DEFAULT_SOURCES[source] for source, key in SOURCE_KEYS.items()
        }
        window_start = _day_or_none(WINDOW_START_KEY, get(WINDOW_START_KEY, None))
        window_end = _day_or_none(WINDOW_END_KEY, get(WINDOW_END_KEY, None))
        if window_start and window_end and window_end < window_start:
            raise PipelineConfigError(f"pipeline window ends ({window_end}) before it starts ({window_start})")
        window_days = _knob("window_days", WINDOW_DAYS_KEY, get(WINDOW_DAYS_KEY, None) or str(DEFAULT_WINDOW_DAYS))
        retention_days = _knob("retention_days", RETENTION_DAYS_KEY, get(RETENTION_DAYS_KEY, None) or "0")
        history_length = get(HISTORY_LENGTH_KEY, str(DEFAULT_HISTORY_LENGTH))
        lookback_days = get(LOOKBACK_DAYS_KEY, str(DEFAULT_LOOKBACK_DAYS))
        history = HistoryConfig(
            history_length=_knob("history_length", HISTORY_LENGTH_KEY, history_length),
            lookback_days=_knob("lookback_days", LOOKBACK_DAYS_KEY, lookback_days),
        )
        return cls(
            sources=sources,
            window_start=window_start,
            window_end=window_end,
            window_days=window_days,
            retention_days=retention_days,
            history=history,
            kafka=_kafka_settings(get, conf or {}),
        )
