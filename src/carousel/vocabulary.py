"""The item vocabulary: item id -> embedding index, most frequent items first, 0 kept for padding.

The data scientists map item ids to embedding rows; the pipeline offers the mapping as a table so
every training run and every serving path uses the same one. Index 1 is for items the vocabulary
does not know (new items after the table was built); known items get 2, 3, ... by descending
number of occurrences (actions and shown items together), ties by ascending item id, so the
mapping is the same on every run over the same data.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from carousel.contract import FIRST_ITEM_INDEX


def item_vocabulary(actions: DataFrame, shown_items: DataFrame) -> DataFrame:
    """One row per distinct item id of the actions and the shown items: `item_id`, `item_index`, `occurrences`.

    Args:
        actions: unified actions (`carousel.actions.unify_actions`), with `item_id`.
        shown_items: one row per shown item (`carousel.examples.explode_impressions`), with `item_id`.
    """
    occurrences = (
        actions.select("item_id")
        .unionByName(shown_items.select("item_id"))
        .groupBy("item_id")
        .agg(F.count(F.lit(1)).alias("occurrences"))
    )
    # A global order needs one partition; the vocabulary has one row per item (millions, not billions).
    by_frequency = Window.orderBy(F.col("occurrences").desc(), F.col("item_id"))
    return occurrences.select(
        "item_id",
        (F.row_number().over(by_frequency) + F.lit(FIRST_ITEM_INDEX - 1)).cast("int").alias("item_index"),
        "occurrences",
    )
