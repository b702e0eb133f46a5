"""The item vocabulary: an item keeps its index once given, new items after every index given, re-rank on demand."""

from __future__ import annotations

from carousel.contract import FIRST_ITEM_INDEX, FIRST_VOCABULARY_VERSION, ITEM_VOCABULARY_GOLD
from carousel.vocabulary import item_counts, reranked_vocabulary, vocabulary_changes

VOCABULARY = ITEM_VOCABULARY_GOLD.ddl()


def _counts(spark):
    # Actions 3, 9, 9, 5 and shown items 5, 11, 9 (and a null id, which no embedding needs): 3 once, 9 three times,
    # 5 twice, 11 once.
    actions = spark.createDataFrame([(1, 3), (1, 9), (2, 9), (2, 5)], "customer_id int, item_id int")
    shown = spark.createDataFrame(
        [("2025-03-10", 5), ("2025-03-10", 11), ("2025-03-11", 9), ("2025-03-11", None)], "dt string, item_id int"
    )
    return item_counts(actions, shown)


def test_items_are_counted_over_actions_and_shown_items(spark):
    assert sorted(tuple(row) for row in _counts(spark).collect()) == [(3, 1), (5, 2), (9, 3), (11, 1)]


def test_a_first_vocabulary_indexes_by_descending_count_then_id(spark):
    empty = spark.createDataFrame([], VOCABULARY)
    rows = sorted(tuple(row) for row in vocabulary_changes(empty, _counts(spark)).collect())
    # 9 (3 times) first, then 5 (twice), then 3 and 11 (once each) by ascending id; version 1.
    assert rows == [(3, 4, 1, 1), (5, 3, 2, 1), (9, 2, 3, 1), (11, 5, 1, 1)]
    assert (FIRST_ITEM_INDEX, FIRST_VOCABULARY_VERSION) == (2, 1)


def test_known_items_keep_their_index_and_new_ones_come_after_every_index_given(spark):
    stored = spark.createDataFrame([(7, 2, 5, 1), (3, 3, 4, 1)], VOCABULARY)
    rows = sorted(tuple(row) for row in vocabulary_changes(stored, _counts(spark)).collect())
    # 3 is known: index 3 kept, 4 + 1 occurrences. 7 did not occur: not a change. New: 9 (3), 5 (2), 11 (1) -> 4, 5, 6.
    assert rows == [(3, 3, 5, 1), (5, 5, 2, 1), (9, 4, 3, 1), (11, 6, 1, 1)]


def test_new_items_keep_the_stored_version(spark):
    stored = spark.createDataFrame([(7, 2, 5, 3)], VOCABULARY)
    assert {row.vocabulary_version for row in vocabulary_changes(stored, _counts(spark)).collect()} == {3}


def test_a_rerank_gives_indices_by_all_time_frequency_as_the_next_version(spark):
    stored = spark.createDataFrame([(7, 2, 5, 1), (3, 3, 4, 1), (9, 4, 6, 1), (11, 5, 4, 1)], VOCABULARY)
    rows = sorted(tuple(row) for row in reranked_vocabulary(stored).collect())
    # 9 (6), 7 (5), then 3 and 11 (4 each) by ascending id.
    assert rows == [(3, 4, 4, 2), (7, 3, 5, 2), (9, 2, 6, 2), (11, 5, 4, 2)]
