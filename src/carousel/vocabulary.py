"""The item vocabulary: item id -> embedding index, stable once given, 0 kept for padding and 1 for unknown items.

The data scientists map item ids to embedding rows; a model trained on Monday's indices must read
the same embeddings on Tuesday's data, and the serving path must agree with both. So an item keeps
its index for good: each update adds the items it is the first to see, after every index already
given, the update's most frequent first (ties by ascending item id, so every run over the same
data gives the same indices), and only raises the counts of known items. The cost of an update
grows with its own rows and the number of items, never with the history.

Frequency order drifts as the shop changes; `reranked_vocabulary` gives every item its index
again by all-time frequency. It is an explicit operation (`carousel rerank-vocabulary`), never a
side effect of an update, and it writes the next `vocabulary_version`, which every reader records.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from carousel.contract import FIRST_ITEM_INDEX, FIRST_VOCABULARY_VERSION, ITEM_VOCABULARY_GOLD

VOCABULARY_COLUMNS = ITEM_VOCABULARY_GOLD.column_names


def item_counts(actions: DataFrame, shown_items: DataFrame) -> DataFrame:
    """One row per distinct item id of the actions and the shown items: `item_id`, `added` (its occurrences).

    Args:
        actions: unified actions (`carousel.actions.unify_actions`), with `item_id`.
        shown_items: one row per shown item (`carousel.examples.explode_impressions`), with `item_id`.
    """
    return (
        actions.select("item_id")
        .unionByName(shown_items.select("item_id"))
        .where(F.col("item_id").isNotNull())
        .groupBy("item_id")
        .agg(F.count(F.lit(1)).alias("added"))
    )


def _indexed_by_count(counts: Column, after: Column) -> Column:
    """Index `after` + 1, + 2, ... by descending `counts`, ties by ascending item id."""
    # A global order needs one partition: it holds the update's new items (or, to re-rank, every item).
    by_count = Window.orderBy(counts.desc(), F.col("item_id"))
    return (F.row_number().over(by_count) + after).cast("int")


def vocabulary_changes(vocabulary: DataFrame, counts: DataFrame) -> DataFrame:
    """One row per item of `counts`: a known item with its index and its count raised, a new one with a fresh index.

    Args:
        vocabulary: the stored vocabulary (`ITEM_VOCABULARY_GOLD`'s columns), possibly empty.
        counts: `item_counts` of the rows new since the vocabulary was last grown.

    Returns:
        `ITEM_VOCABULARY_GOLD`'s columns. New items get the indices after the largest one given
        (from `FIRST_ITEM_INDEX` in an empty vocabulary), by descending count then ascending item id,
        under the vocabulary's version (`FIRST_VOCABULARY_VERSION` when empty). Merged into the
        stored table by item id, they make the vocabulary as of the new rows.
    """
    known = counts.join(vocabulary, "item_id").select(
        "item_id", "item_index", (F.col("occurrences") + F.col("added")).alias("occurrences"), "vocabulary_version"
    )
    top = vocabulary.agg(
        F.coalesce(F.max("item_index"), F.lit(FIRST_ITEM_INDEX - 1)).alias("top"),
        F.coalesce(F.max("vocabulary_version"), F.lit(FIRST_VOCABULARY_VERSION)).cast("int").alias("version"),
    )
    new = counts.join(vocabulary.select("item_id"), "item_id", "left_anti").crossJoin(top)
    fresh = new.select(
        "item_id",
        _indexed_by_count(F.col("added"), F.col("top")).alias("item_index"),
        F.col("added").alias("occurrences"),
        F.col("version").alias("vocabulary_version"),
    )
    return known.unionByName(fresh).select(*VOCABULARY_COLUMNS)


def reranked_vocabulary(vocabulary: DataFrame) -> DataFrame:
    """One row per item of `vocabulary`: indices given again from `FIRST_ITEM_INDEX` by descending occurrences.

    Ties by ascending item id; every row gets the next `vocabulary_version`. Readers of the old
    version keep reading it by Delta time travel; models trained on it need its indices.
    """
    version = vocabulary.agg((F.max("vocabulary_version") + 1).cast("int").alias("next_version"))
    return vocabulary.crossJoin(version).select(
        "item_id",
        _indexed_by_count(F.col("occurrences"), F.lit(FIRST_ITEM_INDEX - 1)).alias("item_index"),
        "occurrences",
        F.col("next_version").alias("vocabulary_version"),
    )
