"""The gold step: each update builds only the days that are new or whose inputs changed, and stays exact.

Silver and impressions bronze are Delta tables with a change feed, as the pipeline makes them;
days land one at a time. After every step, gold must equal one full build over the window from
everything landed so far, and the step must have taken the expected way and built the expected days.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from pyspark.sql import functions as F

from carousel import contract
from carousel.actions import unify_actions
from carousel.config import HistoryConfig
from carousel.contract import ACTIONS_SILVER, CUSTOMER_HISTORIES_GOLD, TRAINING_EXAMPLES_GOLD
from carousel.engine import DAILY, FULL, NOTHING, GoldTables, Window, build_gold, rerank_vocabulary
from carousel.examples import explode_impressions
from carousel.gold import pack_training_examples
from carousel.history import build_histories, customer_days
from carousel.incremental import initial_state
from carousel.quality import keep_valid
from carousel.storage import CHANGE_FEED, write_table
from carousel.synthetic import SyntheticConfig, generate_raw

SMALL = SyntheticConfig(customers=60, window_days=4, window_end="2025-06-30", history_days=10, dirty_rate=0.05)
HISTORY = HistoryConfig(history_length=5, lookback_days=7)
WINDOW = Window(days=2)


def _rows(frame) -> list[tuple]:
    return sorted(map(tuple, frame.collect()), key=repr)


@pytest.fixture(scope="module")
def landed(spark, tmp_path_factory):
    """Silver and impressions bronze of SMALL, and a function that lands them up to a day into the tables."""
    root = tmp_path_factory.mktemp("gold_step")
    raw = generate_raw(spark, SMALL)
    actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"]).cache()
    impressions = keep_valid(raw["impressions"], "impressions").cache()
    tables = GoldTables.under(str(root))
    for frame, location in ((actions, tables.actions_silver), (impressions, tables.impressions_bronze)):
        frame.limit(0).write.format("delta").save(location)
        spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES (delta.enableChangeDataFeed = true)")

    def land(first: str, last: str) -> None:
        """Append the actions and impressions of days [first, last]: what one update's ingestion adds."""
        day_range = (F.lit(first).cast("date"), F.lit(last).cast("date"))
        actions.where(F.col("action_day").between(*day_range)).write.format("delta").mode("append").save(
            tables.actions_silver
        )
        impressions.where(F.col("dt").between(first, last)).write.format("delta").mode("append").save(
            tables.impressions_bronze
        )

    return tables, land


def _expected(spark, tables: GoldTables, days: list[str]):
    """Both gold tables as one full build over `days` from everything landed."""
    silver = spark.read.format("delta").load(tables.actions_silver)
    impressions = spark.read.format("delta").load(tables.impressions_bronze).where(F.col("dt").isin(days))
    histories = build_histories(silver, customer_days(impressions), HISTORY)
    return histories, pack_training_examples(explode_impressions(impressions), histories)


def _assert_gold_is_a_full_build(spark, tables: GoldTables, days: list[str]) -> None:
    """Gold as one full build over `days`; the state as one built from all of silver as of the newest day."""
    histories, examples = _expected(spark, tables, days)
    silver = spark.read.format("delta").load(tables.actions_silver)
    state = spark.read.format("delta").load(tables.state)
    expected_state = initial_state(silver, days[-1], HISTORY).select("customer_id", "actions")
    assert _rows(state) == _rows(expected_state)
    stored_histories = spark.read.format("delta").load(tables.customer_histories_gold)
    stored_examples = spark.read.format("delta").load(tables.training_examples_gold)
    assert sorted({row.dt for row in stored_examples.select("dt").collect()}) == days
    assert _rows(stored_histories) == _rows(histories.select(*stored_histories.columns))
    assert _rows(stored_examples) == _rows(examples.select(*stored_examples.columns))
    assert stored_examples.count() > 0


def _step(spark, tables):
    return build_gold(spark, tables, WINDOW, HISTORY)


@pytest.mark.slow
def test_each_update_builds_only_what_changed(spark, landed):
    tables, land = landed

    land("2025-06-01", "2025-06-28")  # the first update: everything up to the 28th
    first = _step(spark, tables)
    assert (first.path, first.days_built) == (FULL, ["2025-06-27", "2025-06-28"])
    _assert_gold_is_a_full_build(spark, tables, ["2025-06-27", "2025-06-28"])
    given = _assert_vocabulary_counts_everything(spark, tables, {})

    land("2025-06-29", "2025-06-29")  # a day: its impressions and its actions
    daily = _step(spark, tables)
    assert (daily.path, daily.days_built, daily.days_deleted) == (DAILY, ["2025-06-29"], ["2025-06-27"])
    assert daily.rows_written[TRAINING_EXAMPLES_GOLD.name] == daily.rows_written[CUSTOMER_HISTORIES_GOLD.name] > 0
    _assert_gold_is_a_full_build(spark, tables, ["2025-06-28", "2025-06-29"])
    given = _assert_vocabulary_counts_everything(spark, tables, given)

    versions_before = spark.sql(f"DESCRIBE HISTORY delta.`{tables.training_examples_gold}`").count()
    idle = _step(spark, tables)  # nothing landed
    assert (idle.path, idle.days_built, idle.days_deleted) == (NOTHING, [], [])
    assert spark.sql(f"DESCRIBE HISTORY delta.`{tables.training_examples_gold}`").count() == versions_before

    land("2025-06-30", "2025-06-30")
    assert _step(spark, tables).path == DAILY
    _assert_gold_is_a_full_build(spark, tables, ["2025-06-29", "2025-06-30"])
    _assert_vocabulary_counts_everything(spark, tables, given)
    _assert_tables_carry_the_contracts_comments(spark, tables)


def _assert_tables_carry_the_contracts_comments(spark, tables: GoldTables) -> None:
    """What `DESCRIBE TABLE` shows of every table the engine writes: the contract's column comments."""
    for location, spec in (
        (tables.customer_histories_gold, contract.CUSTOMER_HISTORIES_GOLD),
        (tables.training_examples_gold, contract.TRAINING_EXAMPLES_GOLD),
        (tables.item_vocabulary_gold, contract.ITEM_VOCABULARY_GOLD),
        (tables.state, contract.CUSTOMER_ACTION_STATE),
        (tables.progress, contract.GOLD_PROGRESS),
    ):
        described = spark.sql(f"DESCRIBE TABLE delta.`{location}`").collect()
        comments = {row.col_name: row.comment for row in described if row.col_name in spec.descriptions}
        assert comments == spec.descriptions, spec.name


def _assert_vocabulary_counts_everything(spark, tables: GoldTables, given: dict[int, int]) -> dict[int, int]:
    """The vocabulary counts every action and shown item landed; indices in `given` kept; new ones after them."""
    silver = spark.read.format("delta").load(tables.actions_silver)
    shown = explode_impressions(spark.read.format("delta").load(tables.impressions_bronze))
    counts = Counter(row.item_id for row in silver.select("item_id").union(shown.select("item_id")).collect())
    vocabulary = {row.item_id: row for row in spark.read.format("delta").load(tables.item_vocabulary_gold).collect()}
    assert {item: row.occurrences for item, row in vocabulary.items()} == counts
    assert {row.vocabulary_version for row in vocabulary.values()} == {1}
    indices = {item: row.item_index for item, row in vocabulary.items()}
    assert {item: indices[item] for item in given} == given  # every item keeps its index
    new = sorted((index, item) for item, index in indices.items() if item not in given)
    # New items take the indices right after the ones given (0 padding and 1 unknown are never given),
    # the update's most frequent first.
    assert [index for index, _ in new] == list(range(max(given.values(), default=1) + 1, len(indices) + 2))
    assert sorted(indices.values()) == list(range(2, len(indices) + 2))
    return indices


@pytest.mark.slow
def test_a_late_action_rebuilds_the_days_after_it_and_new_impressions_their_day(spark, landed):
    tables, _ = landed  # continues where the test above left off: gold holds the 29th and 30th
    silver = spark.read.format("delta").load(tables.actions_silver)
    customer = (
        spark.read.format("delta")
        .load(tables.impressions_bronze)
        .where(F.col("dt") == "2025-06-30")
        .first()
        .customer_id
    )
    # An order of the 28th lands only now; its time stamp makes it the customer's newest action.
    late = silver.limit(1).select(
        F.lit(customer).alias("customer_id"),
        F.lit(424242).alias("item_id"),
        F.lit(3).cast("tinyint").alias("action_type"),
        F.lit(dt.datetime(2025, 6, 29, 23, 59)).alias("occurred_at"),
        F.lit(dt.date(2025, 6, 28)).alias("action_day"),
    )
    late.select(*silver.columns).write.format("delta").mode("append").save(tables.actions_silver)
    rebuilt = _step(spark, tables)
    assert (rebuilt.path, rebuilt.days_built) == (FULL, ["2025-06-29", "2025-06-30"])
    _assert_gold_is_a_full_build(spark, tables, ["2025-06-29", "2025-06-30"])
    gold = spark.read.format("delta").load(tables.customer_histories_gold)
    assert 424242 in gold.where((F.col("customer_id") == customer) & (F.col("dt") == "2025-06-30")).first().actions

    impressions = spark.read.format("delta").load(tables.impressions_bronze)
    extra = impressions.where(F.col("dt") == "2025-06-29").limit(1).withColumn("ranking_id", F.lit("late-ranking"))
    extra.write.format("delta").mode("append").save(tables.impressions_bronze)
    again = _step(spark, tables)
    assert (again.path, again.days_built) == (FULL, ["2025-06-29"])
    _assert_gold_is_a_full_build(spark, tables, ["2025-06-29", "2025-06-30"])

    # The state followed: the next day is one day from the state again.
    assert _step(spark, tables).path == NOTHING


@pytest.mark.slow
def test_a_backfill_builds_every_day_of_its_range(spark, landed):
    tables, _ = landed
    report = build_gold(spark, tables, Window(days=1, start="2025-06-28", end="2025-06-30"), HISTORY)
    assert (report.path, report.days_built) == (FULL, ["2025-06-28", "2025-06-29", "2025-06-30"])
    _assert_gold_is_a_full_build(spark, tables, ["2025-06-28", "2025-06-29", "2025-06-30"])


@pytest.mark.slow
def test_a_rerank_writes_the_next_version_which_the_next_steps_and_the_loader_keep(spark, landed):
    tables, _ = landed
    before = spark.read.format("delta").load(tables.item_vocabulary_gold).collect()
    assert rerank_vocabulary(spark, tables) == 2
    after = {row.item_id: row for row in spark.read.format("delta").load(tables.item_vocabulary_gold).collect()}
    by_frequency = sorted(before, key=lambda row: (-row.occurrences, row.item_id))
    assert {row.item_id: after[row.item_id].item_index for row in by_frequency} == {
        row.item_id: index for index, row in enumerate(by_frequency, start=2)
    }
    assert {row.vocabulary_version for row in after.values()} == {2}

    assert _step(spark, tables).path == NOTHING  # the step keeps the re-ranked version: no restore, no re-rank
    kept = {
        row.item_id: row.item_index for row in spark.read.format("delta").load(tables.item_vocabulary_gold).collect()
    }
    assert kept == {item: row.item_index for item, row in after.items()}

    loader = pytest.importorskip("carousel.loader")
    assert loader.ItemVocabulary.read(tables.item_vocabulary_gold).version == 2


def test_the_tables_of_the_release_before_are_upgraded_keeping_the_vocabularys_indices(spark, tmp_path):
    tables = GoldTables.under(str(tmp_path))
    silver = spark.createDataFrame(
        [
            (1, 7, 1, dt.datetime(2025, 6, 1, 10), dt.date(2025, 6, 1)),
            (1, 8, 1, dt.datetime(2025, 6, 1, 11), dt.date(2025, 6, 1)),
            (2, 9, 3, dt.datetime(2025, 6, 1, 12), dt.date(2025, 6, 1)),
        ],
        ACTIONS_SILVER.ddl(),
    )
    impressions = spark.createDataFrame(
        [("2025-06-02", "r1", 1, [(8, False), (5, True)])],
        "dt string, ranking_id string, customer_id int, impressions array<struct<item_id:int,is_order:boolean>>",
    )
    for frame, location in ((silver, tables.actions_silver), (impressions, tables.impressions_bronze)):
        write_table(frame, location, properties=CHANGE_FEED)
    # What the release before left: its vocabulary (no version; 9 had index 2), a state with `as_of` on every
    # row, a progress table of four columns.
    old_vocabulary = spark.createDataFrame([(9, 2, 1), (7, 3, 1)], "item_id int, item_index int, occurrences bigint")
    old_vocabulary.write.format("delta").save(tables.item_vocabulary_gold)
    initial_state(silver, "2025-06-02", HISTORY).write.format("delta").save(tables.state)
    spark.createDataFrame(
        [(dt.datetime(2025, 6, 2), 0, 0, dt.date(2025, 6, 2))],
        "finished_at timestamp, actions_version long, impressions_version long, state_as_of date",
    ).write.format("delta").save(tables.progress)

    report = build_gold(spark, tables, Window(days=1), HISTORY)

    assert (report.path, report.days_built, report.vocabulary_version) == (FULL, ["2025-06-02"], 1)
    vocabulary = sorted(tuple(row) for row in spark.read.format("delta").load(tables.item_vocabulary_gold).collect())
    # 9 and 7 keep 2 and 3; 8 (twice: an action and a shown item) then 5 (once) come after; all recounted.
    assert vocabulary == [(5, 5, 1, 1), (7, 3, 1, 1), (8, 4, 2, 1), (9, 2, 1, 1)]
    state = spark.read.format("delta").load(tables.state)
    assert state.columns == ["customer_id", "actions"]
    assert _rows(state) == _rows(initial_state(silver, "2025-06-02", HISTORY).select("customer_id", "actions"))
    progress = spark.read.format("delta").load(tables.progress)
    assert progress.count() == 1 and progress.first().days_built == ["2025-06-02"]
