"""What each pipeline dataset computes, as plain functions the thin pipeline files call.

A dataset function of a declarative pipeline must not analyse a DataFrame (no `.schema`,
`.count()`, ...): the graph is resolved after all functions are registered. So raw inputs are
opened once at import of the pipeline file (`RawInput.open`, where reading a schema is allowed
and a broken contract fails fast, naming the table and column), and everything downstream of
bronze passes the contract's own schemas instead of asking the DataFrame.

Three pipeline files open each raw source (its bronze, its quarantine, the reconciliation): an
update opens it once, the others get that opening back (`RawInput.open` keeps it per session,
update and location), and only the keys a source needs are read from the configuration.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from carousel import contract, kafka_source
from carousel.actions import add_to_carts_to_actions, clicks_to_actions, orders_to_actions
from carousel.pipeline.settings import (
    DEFAULT_SOURCES,
    KAFKA_TOPIC_KEYS,
    SOURCE_KEYS,
    KafkaSettings,
    PipelineSettings,
)
from carousel.quality import quarantine_rows
from carousel.reconciliation import (
    Progress,
    checked_progress,
    landed_progress,
    progress_from_rows,
    progress_totals,
    source_counts,
    union_all,
)
from carousel.run_metrics import RUN_ID_KEY, process_run_id
from carousel.schemas import RAW_SCHEMAS, conform, conformed_columns
from carousel.storage import absolute_if_local, read_source, read_source_stream

log = logging.getLogger("carousel")

TableReader = Callable[[str], DataFrame]
"""Reads a dataset of the pipeline by name: `spark.read.table` inside a pipeline run."""

BRONZE = {source: contract.bronze(source) for source in RAW_SCHEMAS}
QUARANTINE = {source: contract.quarantine(source) for source in RAW_SCHEMAS}
ACTIONS_SILVER = contract.ACTIONS_SILVER.name
SILVER_FLOWS = {source: f"{source}_to_{ACTIONS_SILVER}" for source in ("clicks", "add_to_carts", "orders")}
"""The append flow of `actions_silver` per action source, by name: the pipeline declares them, the runner times them."""
CUSTOMER_HISTORIES_GOLD = contract.CUSTOMER_HISTORIES_GOLD.name
TRAINING_EXAMPLES_GOLD = contract.TRAINING_EXAMPLES_GOLD.name
SOURCE_RECONCILIATION = contract.SOURCE_RECONCILIATION
RECONCILIATION_PROGRESS = contract.RECONCILIATION_PROGRESS


def settings_of(spark: SparkSession) -> PipelineSettings:
    """The pipeline settings of the running pipeline (its configuration, else the defaults).

    Every setting is read at once (`getAll`) only when a Kafka topic is named: the Kafka reader's
    pass-through options are found there by prefix.
    """
    return PipelineSettings.from_conf(lambda key, default: spark.conf.get(key, default), lambda: _all_conf(spark))


def _all_conf(spark: SparkSession) -> Mapping[str, str]:
    # `getAll` (Spark 4.0+; a property in 4.2, a method in some releases).
    conf = getattr(spark.conf, "getAll", {})
    return conf() if callable(conf) else conf


def _where_from(spark: SparkSession, source: str) -> tuple[str, bool]:
    """Where `source` comes from, in the fewest configuration reads: (topic, True), else (table or path, False)."""
    topic_key = KAFKA_TOPIC_KEYS.get(source)
    topic = (spark.conf.get(topic_key, None) or "").strip() if topic_key else ""
    if topic:
        return f"kafka topic '{topic}'", True
    # A relative path is relative to where the pipeline loads its files: the spec's folder.
    return absolute_if_local(spark.conf.get(SOURCE_KEYS[source], None) or DEFAULT_SOURCES[source]), False


_OPENED: weakref.WeakKeyDictionary[SparkSession, dict[tuple[str, str, str], RawInput]] = weakref.WeakKeyDictionary()
"""The raw inputs opened per session, by (run id, source, where from): each pipeline file of an update asks again."""


def run_id_of(spark: SparkSession) -> str:
    """The run id of the running pipeline update: its configuration's, else one per Python process."""
    return spark.conf.get(RUN_ID_KEY, None) or process_run_id()


@dataclass(frozen=True)
class RawInput:
    """One raw source of the pipeline, with its schema read once, outside any dataset function.

    A landed source (a table or a path) is read as its rows; a source from Kafka as its topic's
    messages, parsed by `carousel.kafka_source`.
    """

    spark: SparkSession
    source: str
    location: str
    schema: T.StructType | None
    kafka: KafkaSettings | None = None

    @classmethod
    def open(cls, spark: SparkSession, source: str) -> RawInput:
        """Locate `source` from the pipeline settings and check its contract now.

        Opened once per update: a second call in the same session, for the same update (run id) and
        the same table, path or topic, returns the first one's input without reading the schema again.

        Raises:
            carousel.schemas.SchemaContractError: a required column of a landed source is missing or mistyped.
            carousel.pipeline.settings.PipelineConfigError: a Kafka topic is named without bootstrap servers.
        """
        location, from_kafka = _where_from(spark, source)
        key = (run_id_of(spark), source, location)
        try:
            opened = _OPENED.setdefault(spark, {})
        except TypeError:  # a session that cannot be weakly referenced: opened each time
            opened = {}
        if key not in opened:
            opened[key] = cls._open(spark, source, location, from_kafka)
        return opened[key]

    @classmethod
    def _open(cls, spark: SparkSession, source: str, location: str, from_kafka: bool) -> RawInput:
        if from_kafka:
            # A topic has no schema to check: each message is judged by the message rules instead.
            return cls(spark, source, location, None, settings_of(spark).kafka)
        raw = read_source(spark, location)
        conformed_columns(raw, source)  # raises now, before the graph runs, on a broken contract
        return cls(spark, source, location, raw.schema)

    def read(self, previous: Sequence[Progress] = ()) -> DataFrame:
        """Every raw row landed so far, as a batch; from Kafka the messages the topic holds from `previous` on."""
        if self.kafka:
            starting = kafka_source.starting_offsets(self.kafka.topics[self.source], previous)
            return kafka_source.read_messages(self.spark, self.kafka, self.source, starting)
        return read_source(self.spark, self.location)

    def read_stream(self) -> DataFrame:
        """The raw rows as a stream (messages parsed): each update reads only the rows landed since the last."""
        if self.kafka:
            messages = kafka_source.read_messages_stream(self.spark, self.kafka, self.source)
            return kafka_source.parse_messages(messages, self.source)
        return read_source_stream(self.spark, self.location, self.schema)

    def conformed(self) -> DataFrame:
        """Every new raw row, typed to the contract (the bronze table's expectations then drop the broken ones).

        From Kafka: the well-formed messages, with the Kafka lineage columns after the contract's.
        """
        if self.kafka:
            return kafka_source.well_formed(self.read_stream(), self.source)
        return conform(self.read_stream(), self.source, self.schema)

    def quarantined(self) -> DataFrame:
        """The new raw rows that break a rule, with the rules' names, the whole raw row and the update's run id."""
        if self.kafka:
            return kafka_source.quarantined_messages(self.read_stream(), self.source, run_id=run_id_of(self.spark))
        return quarantine_rows(self.read_stream(), self.source, self.schema, run_id=run_id_of(self.spark))

    def progress(self, read: TableReader, previous: Sequence[Progress] = ()) -> DataFrame:
        """This source's progress rows: totals so far and this update's counts (see `reconciliation_progress`).

        From Kafka, over the offsets this update ingested (`kafka_source.message_progress`); landed,
        from the row counts now, which Delta answers from its file statistics, less the previous ones.
        """
        kept, quarantined = read(BRONZE[self.source]), read(QUARANTINE[self.source])
        if self.kafka:
            return kafka_source.message_progress(self.read(previous), kept, quarantined, self.source, previous)
        return landed_progress(source_counts(self.read(), kept, quarantined, self.source), previous)


def reconciliation_progress(
    read: TableReader, raw_inputs: dict[str, RawInput], previous: Mapping[str, Sequence[Progress]] | None = None
) -> DataFrame:
    """Per raw source and Kafka partition: run id, where the next update starts, totals so far and this update's counts.

    `previous` is what the previous update stored (`previous_progress`); without it every row
    counts as this update's. Fails when a source's rows read in this update differ from its rows
    kept plus quarantined in it (`run_metrics.checked_progress`).
    """
    previous = previous or {}
    progress = union_all(raw.progress(read, previous.get(source, ())) for source, raw in raw_inputs.items())
    return checked_progress(progress, run_id_of(next(iter(raw_inputs.values())).spark))


def source_reconciliation(
    read: TableReader, raw_inputs: dict[str, RawInput], previous: Mapping[str, Sequence[Progress]] | None = None
) -> DataFrame:
    """One row per raw source: run id, rows read, kept (bronze), quarantined so far; fails when this update's differ."""
    return progress_totals(reconciliation_progress(read, raw_inputs, previous))


def previous_progress(spark: SparkSession, raw_inputs: dict[str, RawInput]) -> dict[str, tuple[Progress, ...]]:
    """What the previous update stored in `reconciliation_progress`, read when the pipeline file is imported.

    Empty (every row then counts again, as in a first update) when there is none: a first update,
    a full refresh, a killed run whose refresh emptied the table. A Kafka source's progress is
    left out (its topic then read from the earliest offset) when a batch read from it fails now,
    for example because the topic gained a partition.
    """
    try:
        rows = spark.read.table(RECONCILIATION_PROGRESS).collect()
    except Exception as error:  # no table yet, or one of another layout: reconcile from the start
        log.info("no previous reconciliation progress (%s): every row counts as this update's", type(error).__name__)
        return {}
    progress = progress_from_rows(rows)
    for source, raw in raw_inputs.items():
        if raw.kafka and progress.get(source):
            try:
                raw.read(progress[source]).limit(1).collect()
            except Exception as error:  # Spark's Kafka reader names no error class of its own
                log.warning("reconciling %s from its earliest offset: %s", source, str(error).splitlines()[0])
                del progress[source]
    return progress


_TO_ACTIONS = {"clicks": clicks_to_actions, "add_to_carts": add_to_carts_to_actions, "orders": orders_to_actions}


def actions_of(read_stream: TableReader, source: str) -> DataFrame:
    """One row per valid action among the rows new in `source`'s bronze table: one append flow of `actions_silver`."""
    return _TO_ACTIONS[source](read_stream(BRONZE[source]), RAW_SCHEMAS[source])
