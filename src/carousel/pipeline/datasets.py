"""What each pipeline dataset computes, as plain functions the thin pipeline files call.

A dataset function of a declarative pipeline must not analyse a DataFrame (no `.schema`,
`.count()`, ...): the graph is resolved after all functions are registered. So raw inputs are
opened once at import of the pipeline file (`RawInput.open`, where reading a schema is allowed
and a broken contract fails fast, naming the table and column), and everything downstream of
bronze passes the contract's own schemas instead of asking the DataFrame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from carousel import contract, kafka_source
from carousel.actions import add_to_carts_to_actions, clicks_to_actions, orders_to_actions
from carousel.pipeline.run_metrics import RUN_ID_KEY, process_run_id, reconciled, source_counts, union_all
from carousel.pipeline.settings import KafkaSettings, PipelineSettings
from carousel.quality import quarantine_rows
from carousel.schemas import RAW_SCHEMAS, conform, conformed_columns
from carousel.storage import absolute_if_local, read_source, read_source_stream

TableReader = Callable[[str], DataFrame]
"""Reads a dataset of the pipeline by name: `spark.read.table` inside a pipeline run."""

BRONZE = {source: contract.bronze(source) for source in RAW_SCHEMAS}
QUARANTINE = {source: contract.quarantine(source) for source in RAW_SCHEMAS}
ACTIONS_SILVER = contract.ACTIONS_SILVER.name
CUSTOMER_HISTORIES_GOLD = contract.CUSTOMER_HISTORIES_GOLD.name
TRAINING_EXAMPLES_GOLD = contract.TRAINING_EXAMPLES_GOLD.name
SOURCE_RECONCILIATION = contract.SOURCE_RECONCILIATION


def settings_of(spark: SparkSession) -> PipelineSettings:
    """The pipeline settings of the running pipeline (its configuration, else the defaults)."""
    # `getAll` (Spark 4.0+; a property in 4.2, a method in some releases) holds the Kafka reader's pass-through options.
    conf = getattr(spark.conf, "getAll", {})
    conf = conf() if callable(conf) else conf
    return PipelineSettings.from_conf(lambda key, default: spark.conf.get(key, default), conf)


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

        Raises:
            carousel.schemas.SchemaContractError: a required column of a landed source is missing or mistyped.
        """
        settings = settings_of(spark)
        if settings.from_kafka(source):
            # A topic has no schema to check: each message is judged by the message rules instead.
            return cls(spark, source, f"kafka topic '{settings.kafka.topics[source]}'", None, settings.kafka)
        # A relative path is relative to where the pipeline loads its files: the spec's folder.
        location = absolute_if_local(settings.sources[source])
        raw = read_source(spark, location)
        conformed_columns(raw, source)  # raises now, before the graph runs, on a broken contract
        return cls(spark, source, location, raw.schema)

    def read(self) -> DataFrame:
        """Every raw row landed so far (every message the topic holds), as a batch."""
        if self.kafka:
            return kafka_source.read_messages(self.spark, self.kafka, self.source)
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

    def counts(self, read: TableReader) -> DataFrame:
        """One row: this source's rows read so far, kept (bronze) and quarantined (see `run_metrics.source_counts`)."""
        kept, quarantined = read(BRONZE[self.source]), read(QUARANTINE[self.source])
        if self.kafka:
            return kafka_source.message_counts(self.read(), kept, quarantined, self.source)
        return source_counts(self.read(), kept, quarantined, self.source)


def source_reconciliation(read: TableReader, raw_inputs: dict[str, RawInput]) -> DataFrame:
    """One row per raw source: run id, rows read, kept (bronze), quarantined; fails when they do not add up."""
    counts = [raw.counts(read) for raw in raw_inputs.values()]
    run_id = run_id_of(next(iter(raw_inputs.values())).spark)
    return reconciled(union_all(counts), run_id)


_TO_ACTIONS = {"clicks": clicks_to_actions, "add_to_carts": add_to_carts_to_actions, "orders": orders_to_actions}


def actions_of(read_stream: TableReader, source: str) -> DataFrame:
    """One row per valid action among the rows new in `source`'s bronze table: one append flow of `actions_silver`."""
    return _TO_ACTIONS[source](read_stream(BRONZE[source]), RAW_SCHEMAS[source])

