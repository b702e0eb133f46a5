"""Every raw row is kept or quarantined with the rules it broke: never both, never neither."""

from __future__ import annotations

import json

import pytest
from builders import at, day, raw_frames
from pyspark.sql import functions as F
from reference import reference_day

from carousel.pipeline.expectations import expect_all, expect_all_or_drop, expect_all_or_fail, expect_or_drop
from carousel.quality import RULES, keep_valid, null_safe_rules, quarantine_rows
from carousel.storage import RAW_SOURCES

IMPRESSIONS = [
    ("2025-03-10", "ok", 1, [(500, True)]),
    ("2025-03-10", "null-list", 2, None),
    ("2025-03-10", "empty-list", 3, []),
    ("2025-03-10", "null-item", 4, [(None, False)]),
    ("bad-day", None, -5, [(503, None)]),
]
CLICKS = [
    ("2025-03-09", 1, 11, at("2025-03-09T10:00")),
    ("2025-03-09", 1, 11, at("2025-03-09T10:00")),
    (None, None, None, None),
    ("2025-13-45", 1, -3, at("2025-03-09T10:00")),
]
ADD_TO_CARTS = [("2025-03-08", 1, 12, 1201, at("2025-03-08T10:00")), ("", 0, 12, 1201, None)]
ORDERS = [(day("2025-03-07"), 1, 13, 1301, at("2025-03-07T10:00")), (None, 1, None, 1, at("2025-03-07T10:00"))]

EXPECTED_BROKEN = {
    "impressions": [
        ["impressions_not_empty", "impressions_items_valid"],  # null list: size and forall are NULL
        ["impressions_not_empty"],
        ["impressions_items_valid"],
        ["dt_parsable", "ranking_id_present", "customer_id_positive", "impressions_items_valid"],
    ],
    "clicks": [
        ["dt_parsable", "customer_id_positive", "item_id_positive", "click_time_present"],
        ["dt_parsable", "item_id_positive"],
    ],
    "add_to_carts": [["dt_parsable", "customer_id_positive", "occurred_at_present"]],
    "orders": [["order_date_present", "config_id_positive"]],
}


@pytest.fixture(scope="module")
def frames(spark):
    raw = raw_frames(spark, IMPRESSIONS, CLICKS, ADD_TO_CARTS, ORDERS)
    return {name: frame.withColumn("extra", F.lit("x")) for name, frame in zip(RAW_SOURCES, raw, strict=False)}


@pytest.mark.parametrize("source", RAW_SOURCES)
def test_rows_in_equal_rows_kept_plus_rows_quarantined(frames, source):
    raw = frames[source]
    kept, quarantined = keep_valid(raw, source), quarantine_rows(raw, source)
    assert raw.count() == kept.count() + quarantined.count()
    broken = sorted((row.broken_rules for row in quarantined.collect()), key=lambda names: (len(names), names))
    assert broken == sorted(EXPECTED_BROKEN[source], key=lambda names: (len(names), names))


def test_quarantine_keeps_the_whole_raw_row(frames):
    [row] = quarantine_rows(frames["orders"], "orders").collect()
    assert json.loads(row.raw_record) == {
        "order_date": None,
        "customer_id": 1,
        "config_id": None,
        "simple_id": 1,
        "occurred_at": "2025-03-07T10:00:00.000Z",
        "extra": "x",
    }


def test_every_rule_is_a_valid_sql_predicate(spark, frames):
    for source, rules in RULES.items():
        for _name, predicate in rules.items():
            keep_valid(frames[source], source).where(predicate).count()  # raises on a malformed rule


def test_local_expectations_drop_keep_and_fail(spark, frames):
    rules = null_safe_rules("clicks")

    @expect_all_or_drop(rules)
    def clicks_bronze():
        return frames["clicks"]

    @expect_all(rules)
    def clicks_all():
        return frames["clicks"]

    @expect_or_drop("item_positive", "coalesce(item_id > 0, false)")
    def positive_items():
        return frames["clicks"]

    @expect_all_or_fail(rules)
    def clicks_strict():
        return frames["clicks"]

    assert clicks_bronze.__name__ == "clicks_bronze"
    assert clicks_bronze().count() == 2
    assert clicks_all().count() == 4
    assert positive_items().count() == 2
    with pytest.raises(Exception, match="expectation 'dt_parsable' failed"):
        clicks_strict().collect()


def _broken_by_key(quarantined, key: str) -> dict:
    return {row[key]: row.broken_rules for row in quarantined.collect()}


@pytest.mark.parametrize("time_zone", ["UTC", "Pacific/Kiritimati", "America/Los_Angeles"])
def test_timestamps_may_reach_the_end_of_the_day_after_dt_and_no_further(spark, time_zone):
    clicks = spark.createDataFrame(
        [
            ("2025-03-09", 1, 1, at("2025-03-08T00:00")),  # before its day: allowed
            ("2025-03-09", 1, 2, at("2025-03-10T23:59:59")),  # a late event, last second: allowed
            ("2025-03-09", 1, 3, at("2025-03-11T00:00")),  # one second later: too late
            ("bad-day", 1, 4, at("2025-03-11T00:00")),  # no day to judge against: only dt_parsable
            ("2025-03-09", 1, 5, None),  # missing: only click_time_present
        ],
        "dt string, customer_id int, item_id int, click_time timestamp",
    )
    orders = spark.createDataFrame(
        [(day("2025-03-09"), 1, 6, 601, at("2025-03-10T23:59:59")), (day("2025-03-09"), 1, 7, 701, at("2025-03-11"))],
        "order_date date, customer_id int, config_id int, simple_id int, occurred_at timestamp",
    )
    carts = spark.createDataFrame(
        [("2025-03-09", 1, 8, 801, at("2025-03-10T12:00")), ("2025-03-09", 1, 9, 901, at("2025-03-12"))],
        "dt string, customer_id int, config_id int, simple_id int, occurred_at timestamp",
    )
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", time_zone)
    try:
        assert sorted(row.item_id for row in keep_valid(clicks, "clicks").collect()) == [1, 2]
        assert _broken_by_key(quarantine_rows(clicks, "clicks"), "item_id") == {
            3: ["click_time_by_end_of_next_day"],
            4: ["dt_parsable"],
            5: ["click_time_present"],
        }
        assert _broken_by_key(quarantine_rows(orders, "orders"), "config_id") == {7: ["occurred_at_by_end_of_next_day"]}
        assert _broken_by_key(quarantine_rows(carts, "add_to_carts"), "config_id") == {
            9: ["occurred_at_by_end_of_next_day"]
        }
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)


def test_quarantine_rows_carry_the_run_id(frames):
    quarantined = quarantine_rows(frames["clicks"], "clicks", run_id="20251122T000000Z-0000abcd")
    assert {row.run_id for row in quarantined.collect()} == {"20251122T000000Z-0000abcd"}


@pytest.mark.parametrize("source", ["clicks", "add_to_carts"])
def test_day_texts_a_lenient_cast_reads_are_unparsable_and_judge_no_timestamp(spark, source):
    # A plain cast to DATE reads each of these texts as 2025-03-02; yyyy-MM-dd reads none of them.
    # Each row's timestamp is far past the day the cast reads, so a rule built on the cast alone
    # would also report the timestamp as too late.
    lenient = [
        "2025-3-02",
        "2025-03-2",
        " 2025-03-02",
        "2025-03-02 ",
        "2025-03-02T10:00",
        "2025-03-02 10:00",
        "+2025-03-02",
    ]
    exact = [("2025-03-02", 100), ("2025-02-29", 101), ("0001-01-01", 102)]
    late = at("2025-03-20T00:00")
    rows = [(text, 1, index, late) for index, text in enumerate(lenient, start=1)] + [
        (text, 1, key, late) for text, key in exact
    ]
    time_column, item_column = ("click_time", "item_id") if source == "clicks" else ("occurred_at", "config_id")
    extra = "" if source == "clicks" else ", simple_id int"
    frame = spark.createDataFrame(
        [row if source == "clicks" else (*row[:3], 1, row[3]) for row in rows],
        f"dt string, customer_id int, {item_column} int{extra}, {time_column} timestamp",
    )
    late_rule = f"{time_column}_by_end_of_next_day"
    expected = {index: ["dt_parsable"] for index in range(1, len(lenient) + 1)}
    expected |= {
        100: [late_rule],
        101: ["dt_parsable"],
    }  # 2025-02-29 is no day; 0001-01-01 is one, and the time is late
    expected |= {102: [late_rule]}
    assert _broken_by_key(quarantine_rows(frame, source), item_column) == expected
    assert keep_valid(frame, source).count() == 0


def _day_text_mutations() -> list[str]:
    """Each of a few day texts with one character inserted, replaced or deleted, and cut at each position.

    The characters are those a lenient cast treats specially (signs, blanks, 'T', control and
    Unicode blanks) and a few it refuses. Year 0000 is left out: Spark has that day, Python has not.
    """
    days = ["2025-03-02", "2025-12-31", "0001-01-01", "9999-12-31", "2024-02-29", "2025-10-10", "2025-01-09"]
    characters = [*"0123456789-+ T:Z/.", "\t", "\n", "\r", "\x00", "\x1f", "\x7f", "\x85", "\u00a0", "\u3000", "é"]
    texts = set(days)
    for text in days:
        for position in range(len(text) + 1):
            texts |= {text[:position], text[position:], text[:position] + text[position + 1 :]}
            for character in characters:
                texts.add(text[:position] + character + text[position:])
                texts.add(text[:position] + character + text[position + 1 :])
    return sorted(text for text in texts if not text.startswith("0000"))


def test_dt_parsable_agrees_with_a_strict_parse_on_every_mutation_of_a_day_text(spark):
    # About 4,000 texts; the independent reference is Python's fullmatch of [0-9]{4}-[0-9]{2}-[0-9]{2}
    # and a real calendar day (a Java regex's '$' would let "2025-03-02\n" through).
    texts = _day_text_mutations()
    frame = spark.createDataFrame(
        # A time before every day: only dt_parsable can reject a row (a time earlier than its day is allowed).
        [(text, 1, index, at("0001-01-01T00:00")) for index, text in enumerate(texts, start=1)],
        "dt string, customer_id int, item_id int, click_time timestamp",
    )
    kept = {row.item_id for row in keep_valid(frame, "clicks").select("item_id").collect()}
    expected = {index for index, text in enumerate(texts, start=1) if reference_day(text) is not None}
    assert {texts[i - 1] for i in kept - expected} == set()
    assert {texts[i - 1] for i in expected - kept} == set()
    kept_texts = {texts[index - 1] for index in kept}
    assert {"2025-03-02", "0001-01-01", "2024-02-29", "2025-03-12"} <= kept_texts
    lenient_only = {
        "2025-03-02\n",
        "2025-10-1 ",
        "2025-10-1T",
        "2025-3-02",
        " 2025-03-02",
        "12025-03-02",
        "+2025-03-02",
    }
    assert lenient_only <= set(texts) and not lenient_only & kept_texts
