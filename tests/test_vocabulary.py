"""The item vocabulary: most frequent first from index 2, ties by item id, 0 and 1 reserved."""

from __future__ import annotations

from carousel.contract import FIRST_ITEM_INDEX
from carousel.vocabulary import item_vocabulary


def test_items_are_indexed_by_descending_frequency_then_id(spark):
    actions = spark.createDataFrame([(1, 7), (1, 7), (2, 3), (2, 9)], "customer_id int, item_id int")
    shown = spark.createDataFrame([("2025-03-10", 9), ("2025-03-10", 5), ("2025-03-11", 3)], "dt string, item_id int")
    rows = sorted(tuple(row) for row in item_vocabulary(actions, shown).collect())
    # 3, 7 and 9 occur twice (3 and 9 once as an action, once shown), 5 once.
    assert rows == [(3, 2, 2), (5, 5, 1), (7, 3, 2), (9, 4, 2)]
    assert FIRST_ITEM_INDEX == 2
