"""Clicks and add-to-carts read from Kafka topics: the messages, their JSON parsed to the contract, and their rules.

A message's value is a JSON object with the fields of the source's raw contract
(`carousel.schemas.RAW_SCHEMAS`). Two rules come before the source's own (`MESSAGE_RULES`): the
value is a JSON object, and it has every field. A message that breaks one is quarantined with
its raw value, like any row that breaks a rule, so reading a topic loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.config import KafkaSettings
from carousel.quality import RAW_RECORD, RUN_ID, broken_rules, rule_holds
from carousel.reconciliation import Progress, previous_frame
from carousel.schemas import RAW_SCHEMAS

LINEAGE = tuple(column.name for column in contract.KAFKA_LINEAGE_COLUMNS)
_TOPIC, _PARTITION, _OFFSET, _TIMESTAMP = LINEAGE
VALUE = "kafka_value"
MISSING_FIELDS = "kafka_missing_fields"
"""The contract fields a message's JSON object lacks; NULL when the value is not one JSON object (text after it too)."""

MESSAGE_RULES: dict[str, str] = {
    "message_is_json_object": f"{MISSING_FIELDS} IS NOT NULL",
    "message_has_every_field": f"{MISSING_FIELDS} IS NULL OR size({MISSING_FIELDS}) = 0",
}
"""Rules of a Kafka message before the source's own; a value that is no JSON object breaks the first only."""


def read_messages_stream(spark: SparkSession, kafka: KafkaSettings, source: str) -> DataFrame:
    """The messages of `source`'s topic as a stream, from the earliest (a checkpointed query then reads each once)."""
    return spark.readStream.format("kafka").options(**kafka.reader_options(source)).load()


def read_messages(spark: SparkSession, kafka: KafkaSettings, source: str, starting: str | None = None) -> DataFrame:
    """The messages the topic holds now, as a batch: every one, or from `starting` (a `startingOffsets` JSON) on."""
    options = {**kafka.reader_options(source), "startingOffsets": starting or "earliest", "endingOffsets": "latest"}
    return spark.read.format("kafka").options(**options).load()


def starting_offsets(topic: str, previous: Iterable[Progress]) -> str | None:
    """`startingOffsets` of a batch read from each partition's first offset not reconciled yet; None without any."""
    offsets = {str(one.kafka_partition): one.next_offset for one in previous if one.next_offset is not None}
    return json.dumps({topic: offsets}, sort_keys=True) if offsets else None


def _json_array_length_of(value: Column, suffix: str) -> Column:
    return F.json_array_length(F.concat(F.lit("["), value, F.lit(suffix)))


def _is_one_json_object(value: Column, keys: Column) -> Column:
    """TRUE where `value` is one JSON object with nothing after it but blanks; FALSE or NULL elsewhere.

    Spark's JSON functions read the first value of a text and ignore what follows, so
    `json_object_keys` alone takes `{...} trailing` and `{...}{...}` for objects. Read inside an
    array, whatever follows the object must either continue the array or close it: as `[value]` a
    lone object is one element, and as `[value,0]` two. Text after the object that closes the
    array early gives the same length both ways (it cannot be 1 and 2), text that continues it
    adds elements to both, anything else is invalid JSON (NULL): only blanks pass both.
    """
    return keys.isNotNull() & (_json_array_length_of(value, "]") == 1) & (_json_array_length_of(value, ",0]") == 2)


def parse_messages(messages: DataFrame, source: str) -> DataFrame:
    """One row per Kafka message: the contract's fields from its JSON (NULL if absent or mistyped), lineage, value."""
    schema = RAW_SCHEMAS[source]
    value = F.col("value").cast("string")
    keys = F.json_object_keys(value)
    missing = F.when(_is_one_json_object(value, keys), F.array_except(F.array(*map(F.lit, schema.fieldNames())), keys))
    parsed = F.from_json(value, schema)
    return messages.select(
        *(parsed[name].alias(name) for name in schema.fieldNames()),
        F.col("topic").alias(_TOPIC),
        F.col("partition").alias(_PARTITION),
        F.col("offset").alias(_OFFSET),
        F.col("timestamp").alias(_TIMESTAMP),
        value.alias(VALUE),
        missing.alias(MISSING_FIELDS),
    )


def _message_rules_hold() -> Column:
    return rule_holds(MESSAGE_RULES["message_is_json_object"]) & rule_holds(MESSAGE_RULES["message_has_every_field"])


def well_formed(parsed: DataFrame, source: str) -> DataFrame:
    """The parsed messages that pass both message rules: the contract's columns, then the lineage columns.

    The bronze table's expectations then drop those that break a rule of the source.
    """
    return parsed.where(_message_rules_hold()).select(*RAW_SCHEMAS[source].fieldNames(), *LINEAGE)


def quarantined_messages(parsed: DataFrame, source: str, run_id: str | None = None) -> DataFrame:
    """The parsed messages that break a message rule or a rule of the source, each with the rules it broke.

    Returns:
        The contract's columns, the lineage columns, `raw_record` (the message as JSON: topic,
        partition, offset, timestamp and its value as it came), `broken_rules` and `run_id`.
    """
    named_failures = [F.when(~rule_holds(predicate), F.lit(name)) for name, predicate in MESSAGE_RULES.items()]
    message_failures = F.filter(F.array(*named_failures), lambda name: name.isNotNull())
    # A value that is no JSON object has no fields to judge: naming every field rule would bury the reason.
    broken = F.when(
        ~rule_holds(MESSAGE_RULES["message_is_json_object"]), F.array(F.lit("message_is_json_object"))
    ).otherwise(F.concat(message_failures, broken_rules(source)))
    raw_record = F.to_json(
        F.struct(
            F.col(_TOPIC).alias("topic"),
            F.col(_PARTITION).alias("partition"),
            F.col(_OFFSET).alias("offset"),
            F.col(_TIMESTAMP).alias("timestamp"),
            F.col(VALUE).alias("value"),
        ),
        {"ignoreNullFields": "false"},
    )
    return parsed.select(
        *RAW_SCHEMAS[source].fieldNames(),
        *LINEAGE,
        raw_record.alias(RAW_RECORD),
        broken.alias("broken_rules"),
        F.lit(run_id).cast("string").alias(RUN_ID),
    ).where(F.size("broken_rules") > 0)


def message_counts(messages: DataFrame, kept: DataFrame, quarantined: DataFrame, source: str) -> DataFrame:
    """One row as `run_metrics.source_counts`, over the offsets ingested so far that the topic still holds.

    `message_progress` with no previous update: per partition, read are the topic's messages from
    the earliest it still holds up to the last offset that bronze or quarantine holds; kept and
    quarantined are counted within the same offsets. A message lost or ingested twice unbalances
    them; one not yet ingested does not.
    """
    progress = message_progress(messages, kept, quarantined, source)
    return progress.agg(
        *(F.coalesce(F.sum(f"rows_{name}"), F.lit(0)).alias(f"rows_{name}") for name in ("read", "kept", "quarantined"))
    ).select(F.lit(source).alias("source"), "*")


def message_progress(
    messages: DataFrame, kept: DataFrame, quarantined: DataFrame, source: str, previous: Sequence[Progress] = ()
) -> DataFrame:
    """Progress rows of a Kafka source (`run_metrics.PROGRESS_COLUMNS` but run_id), one per partition of its topic.

    This update's offsets of a partition run from the first one the previous updates did not
    reconcile (`previous`; without it, the earliest the topic holds) to the last one bronze or
    quarantine holds. Read are the topic's messages at those offsets (`messages` need hold no
    earlier ones: `read_messages` from `starting_offsets(previous)`), kept and quarantined the
    rows of bronze and quarantine there: a message lost or ingested twice unbalances them, one
    not ingested yet waits for a later update. Only the files bronze and quarantine wrote since
    the lowest such offset are read (Delta skips the others by their offset statistics). The
    totals are the previous ones plus this update's; a partition with nothing new keeps both.
    """
    partition, offset = F.col(_PARTITION), F.col(_OFFSET)
    before = previous_frame(messages.sparkSession, previous).where(F.col("next_offset").isNotNull())
    held = messages.select(F.col("partition").alias(_PARTITION), F.col("offset").alias(_OFFSET))
    ingested = kept.select(_PARTITION, _OFFSET, F.lit(1).alias("is_kept")).unionByName(
        quarantined.select(_PARTITION, _OFFSET, F.lit(0).alias("is_kept"))
    )
    starts = [one.next_offset for one in previous if one.next_offset is not None]
    if starts:
        ingested = ingested.where(offset >= min(starts))
    firsts = (
        held.groupBy(_PARTITION)
        .agg(F.min(_OFFSET).alias("first_held"))
        .join(before.select(_PARTITION, "next_offset"), _PARTITION, "full")
        .select(_PARTITION, F.coalesce("next_offset", "first_held").alias("first"))
    )
    new = ingested.join(F.broadcast(firsts), _PARTITION).where(offset >= F.col("first"))
    took = new.groupBy(_PARTITION).agg(
        F.max(_OFFSET).alias("last"),
        F.sum("is_kept").alias("update_rows_kept"),
        F.sum(1 - F.col("is_kept")).alias("update_rows_quarantined"),
    )
    bounds = F.broadcast(firsts.join(took.select(_PARTITION, "last"), _PARTITION))
    read = (
        held.join(bounds, _PARTITION)
        .where(offset.between(F.col("first"), F.col("last")))
        .groupBy(_PARTITION)
        .agg(F.count(F.lit(1)).alias("update_rows_read"))
    )
    update = took.join(read, _PARTITION, "left").join(before, _PARTITION, "full")

    def count(name: str) -> Column:
        return F.coalesce(F.col(f"update_rows_{name}"), F.lit(0)).cast("bigint")

    return update.select(
        F.lit(source).alias("source"),
        partition.alias("kafka_partition"),
        F.coalesce(F.col("last") + 1, F.col("next_offset")).alias("next_offset"),
        *(
            (F.coalesce(F.col(f"previous_{name}"), F.lit(0)) + count(name)).alias(f"rows_{name}")
            for name in ("read", "kept", "quarantined")
        ),
        *(count(name).alias(f"update_rows_{name}") for name in ("read", "kept", "quarantined")),
    )


def messages_of(rows: DataFrame, source: str) -> DataFrame:
    """One Kafka record per raw row: keyed by customer (whose messages then keep their order), the row as JSON."""
    fields = RAW_SCHEMAS[source].fieldNames()
    return rows.select(
        F.col("customer_id").cast("string").alias("key"),
        F.to_json(F.struct(*fields), {"ignoreNullFields": "false"}).alias("value"),
    )
