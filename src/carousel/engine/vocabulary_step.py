"""The vocabulary's step: grown by the update's new rows (indices kept), re-ranked only on demand as a new version."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.engine.plan import Plan, last_progress, restore_to_progress
from carousel.engine.tables import PROGRESS_COLUMNS, GoldTables
from carousel.errors import CarouselError
from carousel.examples import explode_impressions
from carousel.storage import (
    DELETION_VECTORS,
    merge_table,
    read_table,
    table_exists,
    table_version,
    write_table,
)
from carousel.vocabulary import VOCABULARY_COLUMNS, item_counts, reranked_vocabulary, vocabulary_changes

log = logging.getLogger("carousel")


def _stored_vocabulary(spark: SparkSession, location: str) -> DataFrame | None:
    """The stored vocabulary; one of an earlier release (no version) is adopted as it is, its indices kept."""
    if not table_exists(spark, location):
        return None
    stored = read_table(spark, location)
    if "vocabulary_version" not in stored.columns:
        log.warning("gold: %s has no vocabulary_version (an earlier release's): kept as version %d", location, 1)
        adopted = stored.select(
            "item_id", "item_index", "occurrences", F.lit(contract.FIRST_VOCABULARY_VERSION).alias("vocabulary_version")
        )
        write_table(adopted, location, properties=DELETION_VECTORS, described_by=contract.ITEM_VOCABULARY_GOLD)
        stored = read_table(spark, location)
    return stored


def grow_vocabulary(spark: SparkSession, tables: GoldTables, plan: Plan) -> int:
    """Add the step's new rows to the vocabulary: known items keep their index, new ones get the next; its version."""
    location = tables.item_vocabulary_gold
    if plan.nothing_new and table_exists(spark, location):
        return vocabulary_version_of(spark, location)
    counts = item_counts(plan.new_actions, explode_impressions(plan.new_impressions))
    stored = _stored_vocabulary(spark, location)
    if stored is not None and not plan.recount and counts.isEmpty():
        return vocabulary_version_of(spark, location)  # new versions without new rows: a MERGE would only cost
    if stored is None:
        empty = spark.createDataFrame([], contract.ITEM_VOCABULARY_GOLD.ddl())
        write_table(
            vocabulary_changes(empty, counts),
            location,
            properties=DELETION_VECTORS,
            described_by=contract.ITEM_VOCABULARY_GOLD,
        )
    else:
        # Counting every row again keeps the indices: only the counts of known items are replaced.
        base = stored.withColumn("occurrences", F.lit(0).cast("bigint")) if plan.recount else stored
        merge_table(spark, vocabulary_changes(base, counts), location, "item_id")
    return vocabulary_version_of(spark, location)


def vocabulary_version_of(spark: SparkSession, location: str) -> int:
    """The `vocabulary_version` of the stored vocabulary (the same on every row)."""
    version = read_table(spark, location).agg(F.max("vocabulary_version")).first()[0]
    return int(version) if version is not None else contract.FIRST_VOCABULARY_VERSION


def rerank_vocabulary(spark: SparkSession, tables: GoldTables) -> int:
    """Give every item its index again by all-time frequency, as the vocabulary's next version; return that version.

    The one operation that moves known items' indices (see `carousel.vocabulary`). The step's
    progress records the new table version, so the next step keeps it.

    Raises:
        MissingVocabularyError: no vocabulary yet (no gold step has run).
    """
    previous = last_progress(spark, tables)
    stored = _stored_vocabulary(spark, tables.item_vocabulary_gold)
    if stored is None or previous is None:
        raise MissingVocabularyError(
            f"no vocabulary at {tables.item_vocabulary_gold}: run the gold step (carousel pipeline or build) first"
        )
    restore_to_progress(spark, tables.item_vocabulary_gold, previous.vocabulary_version)
    reranked = reranked_vocabulary(read_table(spark, tables.item_vocabulary_gold))
    write_table(
        reranked.select(*VOCABULARY_COLUMNS), tables.item_vocabulary_gold, described_by=contract.ITEM_VOCABULARY_GOLD
    )
    version = vocabulary_version_of(spark, tables.item_vocabulary_gold)
    row = read_table(spark, tables.progress).orderBy(F.col("finished_at").desc()).limit(1)
    moved = row.select(
        F.current_timestamp().alias("finished_at"),
        *[c for c in PROGRESS_COLUMNS if c not in ("finished_at", "vocabulary_version", "days_built")],
        F.lit(table_version(spark, tables.item_vocabulary_gold)).cast("bigint").alias("vocabulary_version"),
        F.array().cast("array<string>").alias("days_built"),
    ).select(*PROGRESS_COLUMNS)
    write_table(moved, tables.progress, mode="append", described_by=contract.GOLD_PROGRESS)
    log.info("gold: vocabulary re-ranked as version %d", version)
    return version


class MissingVocabularyError(CarouselError, LookupError):
    """A re-rank found no vocabulary to re-rank; the message names the table and what to run first."""
