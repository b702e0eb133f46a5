"""The generated raw data: contract schemas, determinism, realistic shape, and dirty rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from functools import reduce

import pytest
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from carousel.schemas import RAW_SCHEMAS
from carousel.synthetic import ACTION_MIX, BAD_DAY_STRINGS, DIRTY_KINDS, EXTRA_COLUMN, SyntheticConfig, generate_raw

SMALL = SyntheticConfig(
    customers=200, history_days=30, window_days=3, items=2_000, late_event_rate=0.05, dirty_rate=0.0
)
SOURCES = ("impressions", "clicks", "add_to_carts", "orders")


@pytest.fixture(scope="module")
def small_raw(spark) -> dict[str, DataFrame]:
    """The clean SMALL sources, built once: building the plans costs more than running them."""
    return generate_raw(spark, SMALL)


def _utc_day(timestamp: Column) -> Column:
    """The UTC calendar day of an instant, whatever the session time zone."""
    return F.date_from_unix_date(F.floor(F.unix_seconds(timestamp) / 86_400).cast("int"))


def _event_time(source: str) -> str:
    return "click_time" if source == "clicks" else "occurred_at"


def _item(source: str) -> str:
    return "item_id" if source == "clicks" else "config_id"


def test_config_rejects_impossible_values() -> None:
    with pytest.raises(ValueError):
        SyntheticConfig(login_rate=1.5)
    with pytest.raises(ValueError):
        SyntheticConfig(customers=0)
    with pytest.raises(ValueError):
        SyntheticConfig(items=5, items_per_impression=10)
    with pytest.raises(ValueError):
        SyntheticConfig(window_end="2025-02-30")


def test_schemas_are_the_contract_plus_one_extra_column(spark, small_raw) -> None:
    dirty_raw = generate_raw(spark, replace(SMALL, dirty_rate=0.01))
    assert set(small_raw) == set(dirty_raw) == set(SOURCES)
    for source, df in [*small_raw.items(), *dirty_raw.items()]:
        contract = RAW_SCHEMAS[source]
        assert df.columns == [*contract.fieldNames(), EXTRA_COLUMN], source
        for field in contract.fields:
            assert df.schema[field.name].dataType == field.dataType, (source, field.name)
        assert df.schema[EXTRA_COLUMN].dataType.simpleString() == "timestamp"


def _fingerprint(df: DataFrame) -> tuple[int, int]:
    """(rows, order-independent checksum of every column): equal fingerprints mean equal rows."""
    # Instants enter as epoch micros so the checksum does not read the session time zone.
    columns = [
        F.unix_micros(c) if df.schema[c].dataType.simpleString() == "timestamp" else F.col(c) for c in df.columns
    ]
    row = df.agg(F.count("*"), F.sum(F.xxhash64(*columns).cast("decimal(38,0)"))).first()
    return row[0], int(row[1])


def test_same_config_gives_same_rows_and_another_seed_does_not(spark) -> None:
    config = replace(SMALL, dirty_rate=0.05)
    first, second = generate_raw(spark, config), generate_raw(spark, config)
    for source in SOURCES:
        assert _fingerprint(first[source]) == _fingerprint(second[source]), source
    assert sorted(first["orders"].collect(), key=repr) == sorted(second["orders"].collect(), key=repr)
    other = generate_raw(spark, replace(config, seed=config.seed + 1))["clicks"]
    assert _fingerprint(other) != _fingerprint(first["clicks"])


def test_rows_do_not_depend_on_the_session_time_zone(spark) -> None:
    config = replace(SMALL, dirty_rate=0.05)
    original = spark.conf.get("spark.sql.session.timeZone")
    utc = {source: _fingerprint(df) for source, df in generate_raw(spark, config).items()}
    try:
        spark.conf.set("spark.sql.session.timeZone", "Pacific/Kiritimati")
        shifted = {source: _fingerprint(df) for source, df in generate_raw(spark, config).items()}
    finally:
        spark.conf.set("spark.sql.session.timeZone", original)
    assert utc == shifted


def test_each_window_day_has_about_login_rate_customers_once_each(spark) -> None:
    config = replace(SMALL, customers=2_000, login_rate=0.2, order_rate=0.1)
    impressions = generate_raw(spark, config)["impressions"]
    shown = F.col("impressions")
    per_day = {
        row["dt"]: row
        for row in impressions.groupBy("dt")
        .agg(
            F.count("*").alias("rows"),
            F.countDistinct("customer_id").alias("customers"),
            F.countDistinct("ranking_id").alias("rankings"),
            F.min(F.size(shown)).alias("min_size"),
            F.max(F.size(shown)).alias("max_size"),
            F.min(F.size(F.array_distinct(shown["item_id"]))).alias("min_distinct"),
            F.sum(F.aggregate(shown, F.lit(0), lambda acc, x: acc + x["is_order"].cast("int"))).alias("orders"),
            F.min(F.length("ranking_id")).alias("min_id_length"),
        )
        .collect()
    }
    window = [(config.window_start + dt.timedelta(days=d)).isoformat() for d in range(config.window_days)]
    assert sorted(per_day) == window
    for day, row in per_day.items():
        assert row["rows"] == row["customers"] == row["rankings"], day  # one row per (dt, customer)
        assert 0.15 * config.customers <= row["customers"] <= 0.25 * config.customers, day
        assert row["min_size"] == row["max_size"] == row["min_distinct"] == config.items_per_impression, day
        assert 0.05 <= row["orders"] / (row["rows"] * config.items_per_impression) <= 0.15, day
        assert row["min_id_length"] == 32, day
    assert impressions.select("ranking_id").distinct().count() == impressions.count()


def test_item_ids_are_in_range_and_zipf_popular(small_raw) -> None:
    raw = small_raw
    for source in ("clicks", "add_to_carts", "orders"):
        bounds = raw[source].agg(F.min(_item(source)), F.max(_item(source))).first()
        assert 1 <= bounds[0] and bounds[1] <= SMALL.items, source
    counts = dict(
        raw["clicks"]
        .where(F.col("item_id").isin(1, 1000))
        .groupBy("item_id")
        .count()
        .select("item_id", "count")
        .collect()
    )
    assert counts[1] >= 20 * max(counts.get(1000, 0), 1)
    shown = raw["impressions"].select(F.explode("impressions.item_id").alias("item_id"))
    low, high = shown.agg(F.min("item_id"), F.max("item_id")).first()
    assert 1 <= low and high <= SMALL.items
    top = shown.groupBy("item_id").count().orderBy(F.desc("count"), "item_id").first()
    assert top["item_id"] <= 3
    sizes = raw["add_to_carts"].agg(F.min(F.col("simple_id") - F.col("config_id") * 100)).first()[0]
    assert sizes >= 1


def test_action_volumes_mix_and_skew(spark) -> None:
    config = replace(SMALL, customers=1_000)
    raw = generate_raw(spark, config)
    counts = {source: raw[source].count() for source in ("clicks", "add_to_carts", "orders")}
    assert 8.0 <= counts["clicks"] / counts["add_to_carts"] <= 12.0
    assert 55.0 <= counts["clicks"] / counts["orders"] <= 100.0
    per_year = sum(counts.values()) / config.customers * 365 / config.action_days
    assert 0.75 * config.actions_per_customer_year <= per_year <= 1.25 * config.actions_per_customer_year

    per_customer = [row[0] for row in raw["clicks"].groupBy("customer_id").count().select("count").collect()]
    per_customer.sort(reverse=True)
    top_tenth = sum(per_customer[: config.customers // 10]) / sum(per_customer)
    assert top_tenth > 0.25  # uniform activity would give about 0.1

    days = raw["clicks"].agg(F.min(_utc_day(F.col("click_time"))), F.max(_utc_day(F.col("click_time")))).first()
    assert days[0] >= config.history_start
    assert days[1] <= dt.date.fromisoformat(config.window_end)


def test_late_events_land_in_the_next_days_partition(spark, small_raw) -> None:
    for source in ("clicks", "add_to_carts", "orders"):
        df = small_raw[source]
        time = F.col(_event_time(source))
        day = F.col("order_date") if source == "orders" else F.to_date("dt", "yyyy-MM-dd")
        shift = F.date_diff(day, _utc_day(time))
        seconds_in_day = F.pmod(F.unix_seconds(time), F.lit(86_400))
        stats = df.agg(
            F.count("*").alias("rows"),
            F.count_if(shift == 1).alias("late"),
            F.count_if((shift == 1) & (seconds_in_day < 23 * 3_600)).alias("late_not_23h"),
            F.count_if((shift != 0) & (shift != 1)).alias("other"),
        ).first()
        assert stats["other"] == 0, source
        assert stats["late"] > 0, source
        assert stats["late"] <= 0.15 * stats["rows"], source
        assert stats["late_not_23h"] == 0, source
    clicks = generate_raw(spark, replace(SMALL, late_event_rate=0.0))["clicks"]
    assert clicks.where(F.col("dt") != F.date_format(_utc_day(F.col("click_time")), "yyyy-MM-dd")).count() == 0


def _dirty_conditions(source: str) -> dict[str, Column]:
    """Per dirty kind, a condition only the rows of that kind meet (duplicates are counted apart)."""
    customer = F.col("customer_id")
    conditions = {"null_customer_id": customer.isNull(), "negative_customer_id": customer < 0}
    day = "order_date" if source == "orders" else "dt"
    conditions[f"null_{day}"] = F.col(day).isNull()
    if source != "orders":
        for kind, text in zip(("bad_dt_month", "bad_dt_text", "bad_dt_empty"), BAD_DAY_STRINGS, strict=False):
            conditions[kind] = F.col("dt") == text
    if source == "impressions":
        shown = F.col("impressions")
        conditions["null_impressions"] = shown.isNull()
        conditions["empty_impressions"] = F.size(shown) == 0
        conditions["null_item_id_in_list"] = F.exists(shown, lambda x: x["item_id"].isNull())
        conditions["negative_item_id_in_list"] = F.exists(shown, lambda x: x["item_id"] < 0)
    else:
        item, time = _item(source), _event_time(source)
        conditions[f"null_{item}"] = F.col(item).isNull()
        conditions[f"negative_{item}"] = F.col(item) < 0
        conditions[f"null_{time}"] = F.col(time).isNull()
        partition_day = F.try_to_date(F.col(day).cast("string"), "yyyy-MM-dd")
        end_of_next_day = F.timestamp_seconds((F.unix_date(partition_day) + 2) * 86400)
        conditions[f"{time}_days_after_{day}"] = F.col(time) >= end_of_next_day
    return conditions


def _multiset_compare(before: DataFrame, after: DataFrame) -> dict[str, int]:
    """Rows of each, clean rows missing from `after`, and rows repeated in `after`, in one job."""
    tagged = before.withColumn("_before", F.lit(1)).unionByName(after.withColumn("_before", F.lit(0)))
    grouped = tagged.groupBy(*before.columns).agg(
        F.sum("_before").alias("in_before"), F.sum(1 - F.col("_before")).alias("in_after")
    )
    return (
        grouped.agg(
            F.sum("in_before").alias("before_rows"),
            F.sum("in_after").alias("after_rows"),
            F.count_if(F.col("in_before") > F.col("in_after")).alias("missing"),
            F.count_if(F.col("in_after") > 1).alias("repeated"),
        )
        .first()
        .asDict()
    )


def test_dirty_rows_of_every_kind_are_appended_to_untouched_clean_rows(spark) -> None:
    config = replace(SMALL, customers=300, login_rate=0.5)
    clean = generate_raw(spark, config)
    dirty = generate_raw(spark, replace(config, dirty_rate=0.5))
    for source in SOURCES:
        conditions = _dirty_conditions(source)
        assert set(conditions) | {"duplicate"} == set(DIRTY_KINDS[source]), source
        found = dirty[source].agg(*[F.count_if(c).alias(kind) for kind, c in conditions.items()]).first().asDict()
        assert all(n > 0 for n in found.values()), (source, found)
        compared = _multiset_compare(clean[source], dirty[source])
        # Appended, not replaced: every clean row is still there, as often as before.
        assert compared["missing"] == 0, source
        assert compared["repeated"] > 0, source  # the exact duplicates
        extra = compared["after_rows"] - compared["before_rows"]
        assert 0.35 <= extra / compared["before_rows"] <= 0.65, source


def test_no_dirty_rate_means_only_valid_rows(small_raw) -> None:
    config, raw = SMALL, small_raw
    for source in SOURCES:
        df = raw[source]
        checks = {kind: F.count_if(c) for kind, c in _dirty_conditions(source).items()}
        checks["any_null"] = F.count_if(reduce(Column.__or__, [F.col(c).isNull() for c in df.columns]))
        if source == "impressions":
            shown = F.col("impressions")
            checks["bad_shown"] = F.count_if(
                F.exists(
                    shown, lambda x: x["item_id"].isNull() | x["is_order"].isNull() | (x["item_id"] > config.items)
                )
            )
        else:
            checks["item_too_big"] = F.count_if(F.col(_item(source)) > config.items)
        if source != "orders":
            checks["unparsable_dt"] = F.count_if(F.try_to_date("dt", "yyyy-MM-dd").isNull())
        if source in ("add_to_carts", "orders"):
            checks["bad_simple_id"] = F.count_if(F.col("simple_id") <= 0)
        found = df.agg(*[check.alias(name) for name, check in checks.items()]).first().asDict()
        assert not any(found.values()), (source, found)
        assert _multiset_compare(df, df)["repeated"] == 0, source


# ---------------------------------------------------------------------------------------------
# The shape knobs the race benchmark needs (benchmarks/race.py): defaults leave the rows as they were.


def test_new_shape_knobs_reject_impossible_values() -> None:
    for bad in (
        {"mix_add_to_carts": -1.0},
        {"mix_clicks": 0.0, "mix_add_to_carts": 0.0, "mix_orders": 0.0},
        {"zipf_exponent": 0.0},
        {"login_activity_exponent": -0.5},
        {"login_probability_cap": 1.5},
        {"heavy_customer_share": -0.1},
        {"heavy_customer_share": 0.1, "actions_per_customer_year": 0.0},
        {"heavy_actions_per_year": -1.0},
    ):
        with pytest.raises(ValueError):
            SyntheticConfig(**bad)


def test_action_mix_sets_the_volumes_of_the_sources() -> None:
    assert SyntheticConfig().action_mix == ACTION_MIX
    config = SyntheticConfig(mix_clicks=88.0, mix_add_to_carts=10.8, mix_orders=1.2)
    assert config.expected_actions("clicks") / config.expected_actions("orders") == pytest.approx(88.0 / 1.2)
    total = sum(config.expected_actions(source) for source in ("clicks", "add_to_carts", "orders"))
    assert total == pytest.approx(config.customers * config.actions_per_customer_year * config.action_days / 365)
    heavy = replace(config, heavy_customer_share=0.01, heavy_actions_per_year=config.actions_per_customer_year * 11)
    assert heavy.expected_actions("clicks") == pytest.approx(1.1 * config.expected_actions("clicks"))


def test_a_larger_zipf_exponent_concentrates_the_actions_on_the_top_items(spark) -> None:
    config = replace(SMALL, favorite_action_rate=0.0)
    shares = {}
    for exponent in (1.0, 1.3):
        clicks = generate_raw(spark, replace(config, zipf_exponent=exponent))["clicks"]
        row = clicks.agg(F.count_if(F.col("item_id") == 1), F.count("*"), F.max("item_id")).first()
        assert row[2] <= config.items
        shares[exponent] = row[0] / row[1]
    # P(1) = 1 - 2^(1-s) / normaliser: about 0.09 for s = 1 over 2,000 items, about 0.19 for s = 1.3.
    assert 0.06 <= shares[1.0] <= 0.12
    assert 0.15 <= shares[1.3] <= 0.24


def test_heavy_customers_act_tens_of_times_more_and_log_in_almost_daily(spark) -> None:
    config = replace(
        SMALL,
        customers=400,
        window_days=10,
        heavy_customer_share=0.05,
        heavy_actions_per_year=36_500.0,
        login_activity_exponent=1.0,
        login_probability_cap=0.9,
    )
    raw = generate_raw(spark, config)
    actions = raw["clicks"].groupBy("customer_id").agg(F.count("*").alias("actions"))
    logins = raw["impressions"].groupBy("customer_id").agg(F.count("*").alias("logins"))
    heavy_clicks = 100 * config.action_days * config.source_share("clicks")  # 100 actions a day
    rows = actions.join(logins, "customer_id", "left").fillna(0, ["logins"]).collect()
    heavy = [row for row in rows if row["actions"] > heavy_clicks / 2]
    assert 0.02 * config.customers <= len(heavy) <= 0.09 * config.customers
    assert all(abs(row["actions"] - heavy_clicks) < 0.1 * heavy_clicks for row in heavy)
    heavy_login_rate = sum(row["logins"] for row in heavy) / (len(heavy) * config.window_days)
    assert 0.8 <= heavy_login_rate <= 0.97  # capped at 0.9
    others = config.customers - len(heavy)
    other_logins = sum(row["logins"] for row in rows if row["actions"] <= heavy_clicks / 2)
    assert other_logins / (others * config.window_days) < 0.2


def test_login_activity_exponent_one_makes_logins_proportional_to_activity(spark) -> None:
    config = replace(SMALL, customers=3_000, window_days=10, login_activity_exponent=1.0)
    raw = generate_raw(spark, config)
    actions = raw["clicks"].groupBy("customer_id").agg(F.count("*").alias("actions"))
    logins = raw["impressions"].groupBy("customer_id").agg(F.count("*").alias("logins"))
    joined = actions.join(logins, "customer_id", "left").fillna(0, ["logins"])
    # Customers by activity quartile: the top quartile's logins per action stay about those of the
    # middle ones when logins are proportional to activity (with exponent 0.5 they would halve).
    quartile = F.ntile(4).over(Window.orderBy("actions"))
    per = {
        row["q"]: row["logins"] / row["actions"]
        for row in joined.select(quartile.alias("q"), "actions", "logins")
        .groupBy("q")
        .agg(F.sum("actions").alias("actions"), F.sum("logins").alias("logins"))
        .collect()
    }
    assert 0.6 <= per[4] / per[3] <= 1.4
    mean_rate = joined.agg(F.sum("logins")).first()[0] / (config.customers * config.window_days)
    assert 0.07 <= mean_rate <= 0.13


def test_next_day_needs_impressions_to_follow(spark, tmp_path):
    from carousel.local.demo_data import NoDataYetError, generate_next_day

    with pytest.raises(NoDataYetError, match="run `carousel generate` first"):
        generate_next_day(spark, str(tmp_path), SyntheticConfig(customers=10))


def test_next_day_appends_exactly_the_day_after_the_newest_impressions(spark, tmp_path):
    from carousel.local.demo_data import generate_next_day
    from carousel.schemas import RAW_DAY_COLUMN

    config = SyntheticConfig(customers=40, window_days=2, history_days=3, window_end="2025-06-30", dirty_rate=0.0)
    for source, frame in generate_raw(spark, config).items():
        frame.write.format("delta").partitionBy(RAW_DAY_COLUMN[source]).save(str(tmp_path / source))
    before = {source: spark.read.format("delta").load(str(tmp_path / source)).count() for source in RAW_SCHEMAS}
    day, appended = generate_next_day(spark, str(tmp_path), config)
    assert day == "2025-07-01"
    for source in RAW_SCHEMAS:
        frame = spark.read.format("delta").load(str(tmp_path / source))
        assert frame.count() == before[source] + appended[source]
    impressions = spark.read.format("delta").load(str(tmp_path / "impressions"))
    assert {row.dt for row in impressions.select("dt").distinct().collect()} == {"2025-06-29", "2025-06-30", day}
    clicks = spark.read.format("delta").load(str(tmp_path / "clicks"))
    # A late event of the new day lands in the partition after it, as the generator's late events do.
    assert {row.dt for row in clicks.where(F.col("dt") > "2025-06-30").select("dt").distinct().collect()} <= {
        day,
        "2025-07-02",
    }
    assert appended["impressions"] > 0 and appended["clicks"] > 0


def _day_rows(spark, folder, source: str, day: str) -> list[tuple]:
    """The rows of `source` under `folder` whose day is `day`, without the day itself (dt, order_date) or any time."""
    frame = spark.read.format("delta").load(str(folder / source))
    day_column = "order_date" if source == "orders" else "dt"
    keys = {
        "impressions": ["customer_id", "impressions"],
        "clicks": ["customer_id", "item_id"],
        "add_to_carts": ["customer_id", "config_id", "simple_id"],
        "orders": ["customer_id", "config_id", "simple_id"],
    }[source]
    return sorted(map(tuple, frame.where(F.col(day_column).cast("string") == day).select(*keys).collect()), key=repr)


def test_each_next_day_is_a_draw_of_its_own_and_the_same_day_draws_the_same_rows(spark, tmp_path):
    from carousel.local.demo_data import generate_next_day
    from carousel.schemas import RAW_DAY_COLUMN

    config = SyntheticConfig(customers=60, window_days=1, history_days=2, window_end="2025-06-30", dirty_rate=0.0)
    for folder in (tmp_path / "a", tmp_path / "b"):
        for source, frame in generate_raw(spark, config).items():
            frame.write.format("delta").partitionBy(RAW_DAY_COLUMN[source]).save(str(folder / source))
    first, _ = generate_next_day(spark, str(tmp_path / "a"), config)
    second, _ = generate_next_day(spark, str(tmp_path / "a"), config)
    again, _ = generate_next_day(spark, str(tmp_path / "b"), config)
    assert (first, second, again) == ("2025-07-01", "2025-07-02", "2025-07-01")
    for source in ("impressions", "clicks"):
        # Two successive days: other customers logged in, other items clicked (not the same draw moved a day).
        one, two = _day_rows(spark, tmp_path / "a", source, first), _day_rows(spark, tmp_path / "a", source, second)
        assert one and two and one != two, source
    for source in SOURCES:
        # The same day from the same seed, in another folder: the same rows.
        assert _day_rows(spark, tmp_path / "a", source, first) == _day_rows(spark, tmp_path / "b", source, first)


def test_a_draw_keeps_the_customers_traits_and_changes_their_rows(spark, small_raw) -> None:
    other = generate_raw(spark, replace(SMALL, draw=12))
    assert sorted(map(tuple, small_raw["clicks"].collect()), key=repr) != sorted(
        map(tuple, other["clicks"].collect()), key=repr
    )
    # A customer's activity comes from the seed alone: busy customers stay busy in another draw.
    counts = [raw["clicks"].groupBy("customer_id").count() for raw in (small_raw, other)]
    joined = counts[0].join(counts[1].withColumnRenamed("count", "other"), "customer_id")
    assert joined.agg(F.corr("count", "other")).first()[0] > 0.8


def test_next_day_follows_the_newest_day_with_a_valid_impression(spark, tmp_path):
    from carousel.local.demo_data import generate_next_day
    from carousel.schemas import RAW_DAY_COLUMN

    config = SyntheticConfig(customers=20, window_days=1, history_days=1, window_end="2025-06-30", dirty_rate=0.0)
    for source, frame in generate_raw(spark, config).items():
        frame.write.format("delta").partitionBy(RAW_DAY_COLUMN[source]).save(str(tmp_path / source))
    impressions = spark.read.format("delta").load(str(tmp_path / "impressions"))
    # A newer partition holding only a broken row (no customer) does not count as a landed day.
    broken = impressions.limit(1).select(
        F.lit("2025-07-09").alias("dt"), "ranking_id", F.lit(None).cast("int").alias("customer_id"), "impressions",
        EXTRA_COLUMN,
    )  # fmt: skip
    broken.write.format("delta").mode("append").partitionBy("dt").save(str(tmp_path / "impressions"))
    day, _ = generate_next_day(spark, str(tmp_path), config)
    assert day == "2025-07-01"
