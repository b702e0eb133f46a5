"""Gold-table invariants: sound tables pass, each broken invariant is named on exactly its rows."""

from __future__ import annotations

import datetime as dt

import pytest
from builders import at, day, raw_frames
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from carousel import HistoryConfig
from carousel.actions import unify_actions
from carousel.contract import GOLD_PROGRESS
from carousel.examples import explode_impressions
from carousel.gold import pack_training_examples
from carousel.gold_checks import (
    ACTIONS_SILVER,
    CUSTOMER_HISTORIES_GOLD,
    TRAINING_EXAMPLES_GOLD,
    GoldValidationError,
    InvariantFailure,
    check_gold,
    gold_violations,
    leakage_violations,
    only_days,
    schema_problems,
    training_examples_violations,
)
from carousel.history import build_histories, customer_days
from carousel.storage import qualified_name
from carousel.tasks.validation import build_parser, days_built_last, main, validate_gold

HISTORIES_DDL = "dt string, customer_id int, actions array<int>, action_types array<tinyint>"
TRAINING_DDL = (
    HISTORIES_DDL + ", ranking_ids array<string>, positions array<int>, item_ids array<int>, labels array<boolean>"
)
SILVER_DDL = "customer_id int, item_id int, action_type tinyint, occurred_at timestamp, action_day date"
VIOLATIONS_DDL = "dt string, customer_id int, invariant string"


def violations(spark, rows):
    return spark.createDataFrame(rows, VIOLATIONS_DDL)


def test_sound_histories_break_nothing(spark):
    histories = spark.createDataFrame(
        [
            ("2025-03-10", 1, [5, 6, 7], [1, 2, 3]),  # full
            ("2025-03-10", 2, [5, 0, 0], [3, 0, 0]),  # padded
            ("2025-03-11", 2, [0, 0, 0], [0, 0, 0]),  # no earlier action at all
        ],
        HISTORIES_DDL,
    )
    assert gold_violations(histories, 3).count() == 0


def test_each_broken_invariant_is_named_on_exactly_its_rows(spark):
    histories = spark.createDataFrame(
        [
            ("2025-03-10", 1, [5, 6, 0, 0], [1, 3, 0, 0]),  # sound
            ("2025-03-10", 2, [5, 6, 0], [1, 3, 0]),  # both arrays too short
            ("2025-03-10", 3, [5, 6, 0, 0, 0], [1, 3, 0, 0]),  # actions too long
            ("2025-03-10", 4, [5, 6, 7, 0], [1, 4, 2, 0]),  # type 4
            ("2025-03-10", 5, [5, 0, 6, 0], [1, 0, 2, 0]),  # padding in the middle
            ("2025-03-10", 6, [0, 6, 0, 0], [1, 2, 0, 0]),  # item 0 for a click
            ("2025-03-10", 7, [5, -6, 0, 0], [1, 2, 0, 0]),  # negative item for an add-to-cart
            ("2025-03-10", 8, [5, 6, 7, 0], [1, 1, 0, 0]),  # an item in a padding slot
            ("2025-03-10", 9, None, [0, 0, 0, 0]),  # NULL array: reported once, as a length
            ("2025-03-10", 10, [5, 0, 0, 0], [1, None, 0, 0]),  # NULL type
            ("2025-3-10", 11, [0, 0, 0, 0], [0, 0, 0, 0]),  # not a 'yyyy-MM-dd' day
            ("2025-03-10", None, [0, 0, 0, 0], [0, 0, 0, 0]),  # no customer
            ("2025-03-11", 1, [0, 0, 0, 0], [0, 0, 0, 0]),  # twice the same customer-day
            ("2025-03-11", 1, [0, 0, 0, 0], [0, 0, 0, 0]),
        ],
        HISTORIES_DDL,
    )
    expected = violations(
        spark,
        [
            ("2025-03-10", 2, "actions_length"),
            ("2025-03-10", 2, "action_types_length"),
            ("2025-03-10", 3, "actions_length"),
            ("2025-03-10", 4, "action_type_known"),
            ("2025-03-10", 5, "padding_at_end"),
            ("2025-03-10", 6, "real_action_item_positive"),
            ("2025-03-10", 7, "real_action_item_positive"),
            ("2025-03-10", 8, "padding_item_is_zero"),
            ("2025-03-10", 9, "actions_length"),
            ("2025-03-10", 10, "action_type_known"),
            ("2025-3-10", 11, "key_valid"),
            ("2025-03-10", None, "key_valid"),
            ("2025-03-11", 1, "one_row_per_customer_day"),
        ],
    )
    assertDataFrameEqual(gold_violations(histories, 4), expected)


def test_training_examples_need_aligned_non_empty_shown_arrays(spark):
    history = ([5, 0], [1, 0])
    training = spark.createDataFrame(
        [
            ("2025-03-10", 1, *history, ["a", "a"], [0, 1], [100, 101], [False, True]),  # sound
            ("2025-03-10", 2, *history, ["a", "a"], [0, 1], [100], [False, True]),  # an item id short
            ("2025-03-10", 3, *history, ["a"], [0], [100], []),  # labels empty
            ("2025-03-10", 4, *history, [], [], [], []),  # shows nothing
            ("2025-03-10", 5, [5, 0], [0, 0], ["a"], [0], [100], [True]),  # history invariants apply too
        ],
        TRAINING_DDL,
    )
    expected = violations(
        spark,
        [
            ("2025-03-10", 2, "shown_arrays_aligned"),
            ("2025-03-10", 3, "shown_arrays_aligned"),
            ("2025-03-10", 4, "shown_items_present"),
            ("2025-03-10", 5, "padding_item_is_zero"),
        ],
    )
    assertDataFrameEqual(training_examples_violations(training, 2), expected)


def test_histories_hold_no_more_actions_than_came_before_their_day(spark):
    silver = spark.createDataFrame(
        [
            (1, 11, 1, at("2025-03-08T10:00"), day("2025-03-08")),
            (1, 12, 1, at("2025-03-09T10:00"), day("2025-03-09")),
            (1, 13, 2, at("2025-03-09T11:00"), day("2025-03-09")),
            (1, 14, 3, at("2025-03-10T09:00"), day("2025-03-10")),
        ],
        SILVER_DDL,
    )
    histories = spark.createDataFrame(
        [
            ("2025-03-08", 1, [0, 0, 0, 0], [0, 0, 0, 0]),  # nothing before: sound
            ("2025-03-09", 1, [14, 12, 11, 0], [3, 1, 1, 0]),  # 3 real, 1 before 03-09: leaked
            ("2025-03-10", 1, [13, 12, 11, 0], [2, 1, 1, 0]),  # 3 real, 3 before: sound unless lookback is 1 day
            ("2025-03-10", 2, [21, 0, 0, 0], [1, 0, 0, 0]),  # customer 2 has no actions at all
        ],
        HISTORIES_DDL,
    )
    leaked = [("2025-03-09", 1, "no_more_actions_than_before_dt"), ("2025-03-10", 2, "no_more_actions_than_before_dt")]
    assertDataFrameEqual(leakage_violations(histories, silver), violations(spark, leaked))
    too_far_back = [("2025-03-10", 1, "no_more_actions_than_before_dt")]
    assertDataFrameEqual(
        leakage_violations(histories, silver, lookback_days=1), violations(spark, leaked + too_far_back)
    )


def test_schema_problems_name_missing_and_mistyped_columns(spark):
    frame = spark.createDataFrame([], "dt string, customer_id bigint, actions array<int>, extra int")
    expected = {"dt": "string", "customer_id": "int", "actions": "array<int>", "action_types": "array<tinyint>"}
    assert schema_problems(frame, expected) == [
        "column 'customer_id' is bigint, expected int",
        "column 'action_types' is missing",
    ]


@pytest.fixture(scope="module")
def gold(spark):
    """The package's own gold tables (and silver), built from raw rows with late and same-day events.

    Collected once and re-created from the rows, so the checks below scan small local data
    instead of re-running the history algorithm for every query.
    """
    impressions, clicks, add_to_carts, orders = raw_frames(
        spark,
        impressions=[
            ("2025-03-10", "r1", 1, [(100, True), (101, False)]),
            ("2025-03-11", "r2", 1, [(102, False)]),
            ("2025-03-11", "r3", 2, [(103, True)]),
        ],
        clicks=[
            ("2025-03-09", 1, 11, at("2025-03-09T10:00")),
            ("2025-03-10", 1, 12, at("2025-03-09T23:59")),  # late: lands in the next day's partition
            ("2025-03-10", 1, 13, at("2025-03-10T08:00")),  # same day as the first impression
            ("2025-03-10", 2, 21, at("2025-03-10T12:00")),
        ],
        add_to_carts=[("2025-03-08", 1, 14, 1, at("2025-03-08T10:00"))],
        orders=[(day("2025-03-07"), 1, 15, 1, at("2025-03-07T10:00"))],
    )

    def local(frame):
        return spark.createDataFrame(frame.collect(), frame.schema)

    actions = local(unify_actions(clicks, add_to_carts, orders))
    histories = local(build_histories(actions, customer_days(impressions), HistoryConfig(3, 30)))
    packed = local(pack_training_examples(explode_impressions(impressions), histories))
    return {
        CUSTOMER_HISTORIES_GOLD: histories,
        TRAINING_EXAMPLES_GOLD: packed,
        ACTIONS_SILVER: actions,
    }


def test_the_packages_own_gold_tables_pass(gold):
    assert gold[CUSTOMER_HISTORIES_GOLD].count() == 3  # the fixture is not vacuous
    check_gold(gold, history_length=3, lookback_days=30)


def test_check_gold_names_table_invariant_count_and_five_examples(spark):
    bad = [(f"2025-03-1{d}", 1, [7, 8], [1, 4]) for d in range(7)]  # 7 rows with type 4
    tables = {
        CUSTOMER_HISTORIES_GOLD: spark.createDataFrame(bad, HISTORIES_DDL),
        TRAINING_EXAMPLES_GOLD: spark.createDataFrame(
            [("2025-03-10", 1, [7, 0], [1, 0], ["a"], [0, 1], [100], [True])], TRAINING_DDL
        ),
    }
    with pytest.raises(GoldValidationError) as raised:
        check_gold(tables, history_length=2)
    examples = tuple((f"2025-03-1{d}", 1) for d in range(5))
    assert raised.value.failures == (
        InvariantFailure(CUSTOMER_HISTORIES_GOLD, "action_type_known", 7, examples),
        InvariantFailure(TRAINING_EXAMPLES_GOLD, "shown_arrays_aligned", 1, (("2025-03-10", 1),)),
    )
    message = str(raised.value)
    assert "customer_histories_gold: 7 row(s) break 'action_type_known'" in message
    assert "(2025-03-14, 1)" in message and "(2025-03-15, 1)" not in message


def test_check_gold_stops_at_a_wrong_schema(gold):
    tables = dict(gold)
    tables[CUSTOMER_HISTORIES_GOLD] = tables[CUSTOMER_HISTORIES_GOLD].drop("action_types")
    with pytest.raises(GoldValidationError) as raised:
        check_gold(tables, history_length=3)
    assert raised.value.failures == (
        InvariantFailure(CUSTOMER_HISTORIES_GOLD, "schema", 1, detail="column 'action_types' is missing"),
    )


def test_qualified_name_leaves_out_empty_parts():
    assert qualified_name("main", "carousel", "actions_silver") == "`main`.`carousel`.`actions_silver`"
    assert qualified_name(None, "carousel", "actions_silver") == "`carousel`.`actions_silver`"
    assert qualified_name("", "", "actions_silver") == "`actions_silver`"
    with pytest.raises(ValueError):
        qualified_name("main", "", "actions_silver")


def test_validate_gold_names_tables_it_cannot_read(spark):
    with pytest.raises(GoldValidationError) as raised:
        validate_gold(spark, None, "no_such_schema_for_carousel_tests", history_length=3)
    # The optional table (actions_silver) is skipped when absent.
    assert {failure.table for failure in raised.value.failures} == {CUSTOMER_HISTORIES_GOLD, TRAINING_EXAMPLES_GOLD}
    assert {failure.invariant for failure in raised.value.failures} == {"table_exists"}


@pytest.fixture
def gold_views(spark, gold):
    """The package's gold tables as temp views under the pipeline's table names."""
    for name, frame in gold.items():
        frame.createOrReplaceTempView(name)
    yield gold
    for name in gold:
        spark.catalog.dropTempView(name)


def test_main_passes_on_sound_tables_and_exits_non_zero_on_broken_ones(spark, gold_views, capsys):
    main(["--history-length", "3", "--lookback-days", "30"])
    assert "keep every invariant" in capsys.readouterr().out

    with pytest.raises(SystemExit) as raised:
        main(["--history-length", "4"])  # the tables hold N = 3
    assert raised.value.code != 0
    assert "customer_histories_gold" in str(raised.value.code) and "'actions_length'" in str(raised.value.code)


def test_the_cli_rejects_a_non_positive_history_length(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--history-length", "0"])
    assert "history_length must be a whole number from 1 to 1,000,000, got 0" in capsys.readouterr().err


def test_only_days_keeps_those_days_and_the_actions_their_customers_histories_can_reach(gold):
    newest = only_days(gold, ["2025-03-11"], lookback_days=30)
    assert {row.dt for row in newest[CUSTOMER_HISTORIES_GOLD].collect()} == {"2025-03-11"}
    # Customers 1 and 2 showed up on the 11th: all their actions are of days before it.
    assert sorted(row.item_id for row in newest[ACTIONS_SILVER].collect()) == [11, 12, 13, 14, 15, 21]
    first = only_days(gold, ["2025-03-10"], lookback_days=30)
    # Only customer 1 showed up on the 10th; of its actions, those of the 10th itself cannot count.
    assert sorted(row.item_id for row in first[ACTIONS_SILVER].collect()) == [11, 14, 15]
    two_days = only_days(gold, ["2025-03-10"], lookback_days=2)[ACTIONS_SILVER]
    assert sorted(row.item_id for row in two_days.collect()) == [11, 14]  # the 8th and 9th only


def test_the_daily_check_reads_the_days_the_newest_gold_step_built(spark, gold, capsys):
    # The 10th is broken (a history one entry short); the newest step built only the 11th.
    histories = gold[CUSTOMER_HISTORIES_GOLD]
    broken = histories.withColumn(
        "action_types",
        F.when(F.col("dt") == "2025-03-10", F.slice("action_types", 1, 2)).otherwise(F.col("action_types")),
    )
    views = {**gold, CUSTOMER_HISTORIES_GOLD: broken}
    progress = spark.createDataFrame(
        [(dt.datetime(2025, 3, 12, 1), ["2025-03-10", "2025-03-11"]), (dt.datetime(2025, 3, 12, 2), ["2025-03-11"])],
        "finished_at timestamp, days_built array<string>",
    )
    for name, frame in {**views, GOLD_PROGRESS.name: progress}.items():
        frame.createOrReplaceTempView(name)
    try:
        assert days_built_last(spark, None, None) == ["2025-03-11"]
        main(["--history-length", "3", "--lookback-days", "30"])
        assert "keep every invariant" in capsys.readouterr().out
        with pytest.raises(SystemExit) as raised:
            main(["--history-length", "3", "--lookback-days", "30", "--all-days"])
        assert "(2025-03-10, 1)" in str(raised.value.code) and "'action_types_length'" in str(raised.value.code)
    finally:
        for name in (*views, GOLD_PROGRESS.name):
            spark.catalog.dropTempView(name)
