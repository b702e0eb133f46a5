"""Property-based fuzz test: random dirty rows of every kind fed to every source.

Per generated input, in one Spark job:

1. nothing crashes: quarantine, keep, reconciliation and the build all evaluate;
2. every raw row is either kept or quarantined, exactly once; each quarantined row names the rules
   it broke and the run; the run's own reconciliation agrees (and does not raise);
3. the rules keep exactly the rows the plain-Python reference (`tests/reference.py`) considers
   valid, and the examples built from the raw (dirty) frames equal the reference run on the kept rows.

Derandomized, with no example database, so every run (and CI) sees the same inputs. A hand-picked
input holds every kind of dirt; the random inputs must meet every kind too (the last assertion).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass
from functools import reduce

from builders import ADD_TO_CARTS_DDL, CLICKS_DDL, IMPRESSIONS_DDL, ORDERS_DDL
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql import types as T
from reference import reference_actions, reference_day, reference_examples

from carousel import build_training_examples
from carousel.quality import RULES, keep_valid, quarantine_rows
from carousel.reconciliation import reconciled, source_counts, union_all
from carousel.schemas import RAW_SCHEMAS

SOURCES = ("impressions", "clicks", "add_to_carts", "orders")
EXTRA = "extra"
DDL = {
    name: f"{ddl}, {EXTRA} string"
    for name, ddl in zip(SOURCES, (IMPRESSIONS_DDL, CLICKS_DDL, ADD_TO_CARTS_DDL, ORDERS_DDL), strict=True)
}
RUN_ID = "fuzz-run"
# Each example costs one Spark job of about 30 stages (3-4 s on 2 cores), whatever its size: the
# default keeps this file under a minute; raise it for a longer search (CAROUSEL_FUZZ_EXAMPLES=200).
MAX_EXAMPLES = int(os.environ.get("CAROUSEL_FUZZ_EXAMPLES", "12"))

UTC = dt.timezone.utc
FIRST_DAY = dt.date(2025, 3, 1)
DAYS = 6
# Each input's rows lie within DAYS days of one anchor, so histories interact: FIRST_DAY, or a day
# near the ends of Spark's date range or a placeholder day (32-bit seconds cover only 1901-12-13
# .. 2038-01-19); one row in ten lies anywhere in the range instead.
FAR_ANCHORS = (dt.date(1, 1, 1), dt.date(1900, 1, 1), dt.date(2052, 6, 9), dt.date(9999, 12, 26))
FIRST_INSTANT = dt.datetime(1, 1, 1, tzinfo=UTC)
LAST_INSTANT = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# A few times of day, so exact timestamp ties are frequent; the last is 1 microsecond before midnight.
TIMES = (dt.time(12), dt.time(12), dt.time(12), dt.time(0), dt.time(23, 59, 59, 999999))
# Days from the partition's day to the timestamp's. A timestamp may lie days before its partition
# (a late event) or in the next day; two days after is beyond the end of the next day.
KEPT_OFFSETS = (0, 0, 0, 0, 0, -1, 1, -2)
TOO_LATE_OFFSET = 2
FAR_MOMENTS = (
    dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
    dt.datetime(2100, 1, 1, tzinfo=UTC),
    FIRST_INSTANT,
    LAST_INSTANT,
)
CUSTOMERS = (1, 2, 3, 4, 5, 6)  # few items and, per customer, many actions: histories interact
ITEMS = (1, 2, 3, 4)
ODD_IDS = (None, 0, -1, -(2**31), 2**31 - 1)  # the last one is valid
BAD_DAY_TEXTS = (
    None,
    "",
    "not-a-date",
    "2025-13-45",
    "2025-02-29",
    "2025-1-5",
    "2025-03-1",
    "2025/03/02",
    "20250302",
    " 2025-03-02",
    "2025-03-02 ",
    "2025-03-02T00:00",
    "2025-W10-1",  # an ISO week date: Python's fromisoformat reads it, yyyy-MM-dd does not
)


def _maybe(clean: st.SearchStrategy, dirty: st.SearchStrategy, is_dirty: bool) -> st.SearchStrategy:
    return dirty if is_dirty else clean


def _dirty_fields(*fields: str) -> st.SearchStrategy:
    """Which fields of a row are dirty: none (shrinks to it), one, or two, so each rule is met alone too."""
    return st.sets(st.sampled_from(fields), max_size=2)


anchors = st.sampled_from((FIRST_DAY,) * 3 + FAR_ANCHORS)


def _day(anchor: dt.date, first: int = 0) -> st.SearchStrategy:
    near_anchor = st.integers(first, DAYS - 1).map(lambda i: anchor + dt.timedelta(days=i))
    anywhere = st.dates(dt.date.min, dt.date.max)
    return st.integers(0, 9).flatmap(lambda roll: anywhere if roll == 0 else near_anchor)


def _instant(day: dt.date, offset: int, time: dt.time) -> dt.datetime:
    """`time` on `day` + `offset` days, clamped to the range of instants Spark holds."""
    ordinal = day.toordinal() + offset
    if ordinal < 1:
        return FIRST_INSTANT
    if ordinal > dt.date.max.toordinal():
        return LAST_INSTANT
    return dt.datetime.combine(dt.date.fromordinal(ordinal), time, UTC)


def _ids(clean: tuple[int, ...], is_dirty: bool) -> st.SearchStrategy:
    return _maybe(st.sampled_from(clean), st.sampled_from(ODD_IDS), is_dirty)


def _day_text(day: dt.date, is_dirty: bool) -> st.SearchStrategy:
    return _maybe(st.just(day.isoformat()), st.sampled_from(BAD_DAY_TEXTS), is_dirty)


def _moment(day: dt.date, is_dirty: bool) -> st.SearchStrategy:
    def near(offsets: tuple[int, ...]) -> st.SearchStrategy:
        return st.builds(
            lambda offset, time: _instant(day, offset, time), st.sampled_from(offsets), st.sampled_from(TIMES)
        )

    anywhere = st.datetimes(
        FIRST_INSTANT.replace(tzinfo=None), LAST_INSTANT.replace(tzinfo=None), timezones=st.just(UTC)
    )
    odd = st.one_of(near((TOO_LATE_OFFSET,)), st.sampled_from((None, *FAR_MOMENTS)), anywhere)
    return _maybe(near(KEPT_OFFSETS), odd, is_dirty)


extras = st.one_of(st.none(), st.text(max_size=3))


@st.composite
def clicks(draw, anchor: dt.date) -> tuple:
    dirty, day = draw(_dirty_fields("dt", "customer", "item", "time")), draw(_day(anchor))
    return (
        draw(_day_text(day, "dt" in dirty)),
        draw(_ids(CUSTOMERS, "customer" in dirty)),
        draw(_ids(ITEMS, "item" in dirty)),
        draw(_moment(day, "time" in dirty)),
        draw(extras),
    )


@st.composite
def add_to_carts(draw, anchor: dt.date) -> tuple:
    dirty, day = draw(_dirty_fields("dt", "customer", "config", "simple", "time")), draw(_day(anchor))
    return (
        draw(_day_text(day, "dt" in dirty)),
        draw(_ids(CUSTOMERS, "customer" in dirty)),
        draw(_ids(ITEMS, "config" in dirty)),
        draw(_ids((7, 8), "simple" in dirty)),  # no rule on simple_id
        draw(_moment(day, "time" in dirty)),
        draw(extras),
    )


@st.composite
def orders(draw, anchor: dt.date) -> tuple:
    dirty, day = draw(_dirty_fields("order_date", "customer", "config", "time")), draw(_day(anchor))
    return (
        draw(_maybe(st.just(day), st.none(), "order_date" in dirty)),
        draw(_ids(CUSTOMERS, "customer" in dirty)),
        draw(_ids(ITEMS, "config" in dirty)),
        draw(st.sampled_from((7, 8))),
        draw(_moment(day, "time" in dirty)),
        draw(extras),
    )


dirty_shown_items = st.one_of(
    st.none(), st.tuples(st.sampled_from(ODD_IDS), st.booleans()), st.tuples(st.sampled_from(ITEMS), st.none())
)


@st.composite
def impressions(draw, anchor: dt.date) -> tuple:
    dirty = draw(_dirty_fields("dt", "ranking_id", "customer", "list", "shown item"))
    day = draw(_day(anchor, first=2))  # from the third day on, so most impressions have earlier actions
    shown = draw(st.lists(st.tuples(st.sampled_from(ITEMS), st.booleans()), min_size=1, max_size=3))
    if "shown item" in dirty:
        shown[draw(st.integers(0, len(shown) - 1))] = draw(dirty_shown_items)
    return (
        draw(_day_text(day, "dt" in dirty)),
        draw(_maybe(st.sampled_from(("r1", "r2", "")), st.none(), "ranking_id" in dirty)),
        draw(_ids(CUSTOMERS, "customer" in dirty)),
        draw(_maybe(st.just(shown), st.sampled_from((None, [])), "list" in dirty)),
        draw(extras),
    )


@st.composite
def dirty_rows(draw, rows: st.SearchStrategy, max_size: int) -> list[tuple]:
    """Rows, some repeated exactly, in a drawn order."""
    size = draw(st.integers(0, max_size))  # uniform: st.lists alone draws about 5 rows on average
    drawn = draw(st.lists(rows, min_size=size, max_size=size))
    if drawn:
        drawn += draw(st.lists(st.sampled_from(drawn), max_size=2))
    return draw(st.permutations(drawn))


@dataclass(frozen=True)
class RawInputs:
    """One fuzz input: raw rows of every source (contract columns, then `extra`) and the knobs."""

    impressions: list[tuple]
    clicks: list[tuple]
    add_to_carts: list[tuple]
    orders: list[tuple]
    history_length: int
    lookback_days: int

    def rows(self, source: str) -> list[tuple]:
        return getattr(self, source)

    def contract_rows(self, source: str) -> list[tuple]:
        return [row[:-1] for row in self.rows(source)]


@st.composite
def _raw_inputs(draw) -> RawInputs:
    anchor = draw(anchors)
    clicks_ = draw(dirty_rows(clicks(anchor), 60))
    add_to_carts_ = draw(dirty_rows(add_to_carts(anchor), 36))
    orders_ = draw(dirty_rows(orders(anchor), 30))
    # Ties on purpose: an add-to-cart or an order of the same customer at a click's very instant.
    for day_text, customer, _item, moment, extra in (
        draw(st.lists(st.sampled_from(clicks_), max_size=12)) if clicks_ else []
    ):
        item = draw(st.sampled_from(ITEMS))
        if draw(st.booleans()):
            add_to_carts_.append((day_text, customer, item, 7, moment, extra))
        else:
            order_date = reference_day(day_text)
            orders_.append((order_date, customer, item, 7, moment, extra))
    return RawInputs(
        impressions=draw(dirty_rows(impressions(anchor), 36)),
        clicks=clicks_,
        add_to_carts=add_to_carts_,
        orders=orders_,
        history_length=draw(st.integers(1, 4)),
        lookback_days=draw(st.integers(1, 4)),
    )


raw_inputs = _raw_inputs()


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def _hand_picked() -> RawInputs:
    """Every dirty kind at least once, next to clean rows that build real histories."""
    click = ("2025-03-05", 1, 2, _at("2025-03-05T12:00"), "x")
    return RawInputs(
        impressions=[
            ("2025-03-06", "r1", 1, [(1, True), (2, False)], None),
            ("2025-03-05", "r4", 1, [(4, False)], None),
            ("2025-03-06", "r2", 2, [(3, False)], "extra"),
            ("2025-03-06", "r2", 2, [(3, False)], "extra"),
            ("2025-03-06", None, 1, [(1, True)], None),
            ("2025-1-5", "r3", 1, [(1, True)], None),
            ("2025-03-06", "r3", -1, [(1, True)], None),
            ("2025-03-06", "r3", 3, None, None),
            ("2025-03-06", "r3", 3, [], None),
            ("2025-03-06", "r3", 3, [None], None),
            ("2025-03-06", "r3", 3, [(0, True)], None),
            ("2025-03-06", "r3", 3, [(None, True)], None),
            ("2025-03-06", "r3", 3, [(2, None)], None),
            ("9999-12-31", "r5", 5, [(1, True)], None),
            ("1900-01-02", "r5", 5, [(2, False)], None),
        ],
        clicks=[
            click,
            click,
            ("2025-03-05", 1, 3, _at("2025-03-05T12:00"), None),
            ("2025-03-03", 1, 3, _at("2025-03-03T00:00"), None),
            ("2025-03-05", 1, 1, _at("2025-03-04T23:59:59.999999"), None),
            ("2025-03-04", 1, 4, _at("2025-03-05T23:59:59.999999"), None),
            ("2025-03-04", 1, 4, _at("2025-03-06T00:00"), None),
            ("2025-03-05", None, 1, _at("2025-03-05T12:00"), None),
            ("2025-03-05", 0, 1, _at("2025-03-05T12:00"), None),
            ("2025-03-05", 1, -1, _at("2025-03-05T12:00"), None),
            (None, 1, 1, _at("2025-03-05T12:00"), None),
            ("2025-13-45", 1, 1, _at("2025-03-05T12:00"), None),
            ("2025-03-05", 1, 1, None, None),
            ("9999-12-30", 5, 2, LAST_INSTANT, None),
            ("1900-01-01", 5, 3, _at("1900-01-01T00:00"), None),
        ],
        add_to_carts=[
            ("2025-03-05", 1, 2, 7, _at("2025-03-05T12:00"), None),
            ("2025-03-05", 2, 2, None, _at("2025-03-03T00:00"), None),
            ("2025-03-05", 2, None, 7, _at("2025-03-05T12:00"), None),
            ("", 2, 2, 7, _at("2025-03-05T12:00"), None),
            ("2025-03-05", 2, 2, 7, _at("2100-01-01T00:00"), None),
        ],
        orders=[
            (dt.date(2025, 3, 5), 1, 2, 7, _at("2025-03-05T12:00"), None),
            (dt.date(2025, 3, 5), 2, 4, 7, _at("2025-03-04T12:00"), None),
            (None, 2, 4, 7, _at("2025-03-05T12:00"), None),
            (dt.date(2025, 3, 5), 2, 4, 7, None, None),
            (dt.date(2025, 3, 4), 2, 4, 7, _at("2025-03-06T00:00"), None),
        ],
        history_length=3,
        lookback_days=2,
    )


HAND_PICKED = _hand_picked()


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC instant; `collect()` gives naive local times, the generated rows aware ones."""
    if moment is None:
        return None
    # Naive: the process's zone, UTC in the tests (tests/conftest.py); astimezone() fails on 0001-01-01.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _plain(source: str, row) -> tuple:
    """A raw or collected contract row as a hashable tuple, timestamps in UTC, impression lists as tuples.

    A null shown item reads as (None, None): conforming the impressions list rebuilds each struct,
    so a quarantined row shows a null element that way (its `raw_record` keeps the null).
    """
    values = tuple(_utc(v) if isinstance(v, dt.datetime) else v for v in row)
    if source == "impressions" and values[3] is not None:
        values = (*values[:3], tuple((None, None) if s is None else tuple(s) for s in values[3]))
    return values


def _as_reference_input(source: str, row) -> tuple:
    """A collected contract row in the reference's input form (impression lists as lists of tuples)."""
    if source == "impressions" and row[3] is not None:
        return (*row[:3], [None if s is None else tuple(s) for s in row[3]])
    return tuple(row)


def _collect_in_one_job(frames: dict[str, DataFrame]) -> dict[str, list]:
    """The rows of several frames, collected by one Spark job (each frame packed in a struct column of its name).

    Timestamps travel as epoch microseconds and come back as aware UTC datetimes: PySpark's own
    conversion goes through local time and fails on 0001-01-01.
    """
    instants = {
        name: {field.name for field in frame.schema.fields if isinstance(field.dataType, T.TimestampType)}
        for name, frame in frames.items()
    }

    def packed_column(name: str, column: str) -> Column:
        return F.unix_micros(F.col(f"`{column}`")).alias(column) if column in instants[name] else F.col(f"`{column}`")

    packed = [
        frame.select(F.lit(name).alias("frame"), F.struct(*(packed_column(name, c) for c in frame.columns)).alias(name))
        for name, frame in frames.items()
    ]
    collected: dict[str, list] = {name: [] for name in frames}
    for row in reduce(lambda left, right: left.unionByName(right, allowMissingColumns=True), packed).collect():
        values = row[row.frame].asDict()
        for column in instants[row.frame]:
            micros = values[column]
            values[column] = None if micros is None else EPOCH + dt.timedelta(microseconds=micros)
        collected[row.frame].append(Row(**values))
    return collected


def _actions(rows: dict[str, list[tuple]]) -> Counter:
    per_customer = reference_actions(rows["clicks"], rows["add_to_carts"], rows["orders"])
    return Counter((customer, _utc(a[0]), *a[1:]) for customer, actions in per_customer.items() for a in actions)


def check_properties(spark, raw: RawInputs) -> None:
    knobs = {"history_length": raw.history_length, "lookback_days": raw.lookback_days}
    frames = {source: spark.createDataFrame(raw.rows(source), DDL[source]) for source in SOURCES}
    kept_frames = {source: keep_valid(frames[source], source) for source in SOURCES}
    quarantined_frames = {source: quarantine_rows(frames[source], source, run_id=RUN_ID) for source in SOURCES}
    counts = union_all(
        source_counts(frames[source], kept_frames[source], quarantined_frames[source], source) for source in SOURCES
    )
    # Never crashes: one job evaluates quality, reconciliation (which raises on imbalance) and the build.
    collected = _collect_in_one_job(
        {
            **{f"kept {source}": kept_frames[source] for source in SOURCES},
            **{f"quarantined {source}": quarantined_frames[source] for source in SOURCES},
            "reconciliation": reconciled(counts, RUN_ID),
            "examples": build_training_examples(*frames.values(), **knobs),
        }
    )

    # Every raw row is kept or quarantined, exactly once; quarantined rows say why, which run, and keep the raw row.
    kept = {source: [_as_reference_input(source, r) for r in collected[f"kept {source}"]] for source in SOURCES}
    for source in SOURCES:
        quarantined = collected[f"quarantined {source}"]
        for row in quarantined:
            assert row.broken_rules, row
            assert set(row.broken_rules) <= set(RULES[source]), row
            assert row.run_id == RUN_ID, row
            assert f'"{EXTRA}":' in row.raw_record, row
        split = Counter(_plain(source, r) for r in kept[source] + [r[: len(RAW_SCHEMAS[source])] for r in quarantined])
        assert split == Counter(_plain(source, r) for r in raw.contract_rows(source)), source
    assert {
        row.source: (row.run_id, row.rows_read, row.rows_kept, row.rows_quarantined)
        for row in collected["reconciliation"]
    } == {
        source: (RUN_ID, len(raw.rows(source)), len(kept[source]), len(collected[f"quarantined {source}"]))
        for source in SOURCES
    }

    # The rules keep exactly the rows the reference considers valid: it accepts every kept row
    # (each kept action row is an action, each kept impression row gives one example per shown item),
    # and on all raw rows it finds the same actions and examples as on the kept rows.
    expected = sorted(reference_examples(*kept.values(), **knobs))
    assert sum(_actions(kept).values()) == sum(len(kept[source]) for source in SOURCES[1:])
    assert len(expected) == sum(len(row[3]) for row in kept["impressions"])
    raw_rows = {source: raw.contract_rows(source) for source in SOURCES}
    assert _actions(kept) == _actions(raw_rows)
    assert expected == sorted(reference_examples(*raw_rows.values(), **knobs))

    # The build on the dirty frames equals the reference on the kept rows.
    built = sorted(tuple(list(v) if isinstance(v, list) else v for v in row) for row in collected["examples"])
    assert built == expected


def dirty_kinds(raw: RawInputs) -> set[str]:
    """The kinds of dirt (and hard cases) an input holds, to guard the generator."""
    kinds = set()
    for source in SOURCES:
        rows = raw.contract_rows(source)
        if len(set(map(repr, rows))) < len(rows):
            kinds.add("duplicate row")
        for row in rows:
            ids = row[2:3] if source == "impressions" else row[1:3]
            kinds |= {"null id" for i in ids if i is None} | {"non-positive id" for i in ids if i is not None and i < 1}
            if source == "orders":
                day = row[0]
                kinds |= {"null order_date"} if day is None else set()
            else:
                kinds |= {"null dt"} if row[0] is None else set()
                kinds |= {"unparsable dt"} if row[0] in BAD_DAY_TEXTS[1:] else set()
                day = dt.date.fromisoformat(row[0]) if row[0] and row[0] not in BAD_DAY_TEXTS else None
            if source == "impressions":
                shown = row[3]
                kinds |= {"null ranking_id"} if row[1] is None else set()
                kinds |= {"null list"} if shown is None else {"empty list"} if shown == [] else set()
                for item in shown or []:
                    if item is None:
                        kinds.add("null shown item")
                    elif item[0] is None or item[0] < 1:
                        kinds.add("bad item in list")
                    elif item[1] is None:
                        kinds.add("null is_order")
                continue
            moment = row[-1]
            if moment is None:
                kinds.add("null timestamp")
            elif day is not None and moment.date() < day:
                kinds.add("late event")
            elif day is not None and moment.date().toordinal() > day.toordinal() + 1:
                kinds.add("beyond the next day")
            if day is not None and not dt.date(1902, 1, 1) <= day <= dt.date(2037, 12, 31):
                kinds.add("day outside 32-bit seconds")
    moments = [row[-1] for source in SOURCES[1:] for row in set(raw.contract_rows(source)) if row[-1] is not None]
    if len(set(moments)) < len(moments):
        kinds.add("timestamp tie")
    examples = reference_examples(
        *(raw.contract_rows(source) for source in SOURCES), raw.history_length, raw.lookback_days
    )
    if any(0 not in e[7] for e in examples):
        kinds.add("full history")
    if any(e[7][0] != 0 and 0 in e[7] for e in examples):
        kinds.add("padded history")
    impression_days: dict[int, set[dt.date]] = {}
    for e in examples:
        impression_days.setdefault(e[2], set()).add(dt.date.fromisoformat(e[0]))
    actions = reference_actions(*(raw.contract_rows(source) for source in SOURCES[1:]))
    for customer, shown_days in impression_days.items():
        action_days = {a[3] for a in actions.get(customer, [])}
        far_shown = {day for day in shown_days if not dt.date(1902, 1, 1) <= day <= dt.date(2037, 12, 31)}
        if far_shown and any(
            e[2] == customer and e[0] in {d.isoformat() for d in far_shown} and e[7][0] for e in examples
        ):
            kinds.add("far day in a history")
        if action_days & (shown_days - {max(shown_days)}):
            kinds.add("action on an earlier impression day")  # must not leak into that day's history
        if {day.toordinal() for day in action_days} & {day.toordinal() - raw.lookback_days for day in shown_days}:
            kinds.add("action on the first lookback day")
    return kinds


ALL_KINDS = {
    "null id",
    "non-positive id",
    "null dt",
    "unparsable dt",
    "null order_date",
    "null timestamp",
    "late event",
    "beyond the next day",
    "null ranking_id",
    "null list",
    "empty list",
    "null shown item",
    "bad item in list",
    "null is_order",
    "duplicate row",
    "timestamp tie",
    "full history",
    "padded history",
    "action on an earlier impression day",
    "action on the first lookback day",
    "day outside 32-bit seconds",
    "far day in a history",
}


def test_hand_picked_input_holds_every_kind():
    assert dirty_kinds(HAND_PICKED) == ALL_KINDS


def test_dirty_rows_of_every_kind_match_the_reference(spark):
    generated: Counter = Counter()

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(raw=raw_inputs)
    @example(raw=HAND_PICKED)
    def check(raw: RawInputs) -> None:
        if raw is not HAND_PICKED:
            generated.update(dirty_kinds(raw))
        check_properties(spark, raw)

    check()
    # Guards the generator: the random inputs alone met every kind.
    assert set(generated) == ALL_KINDS, (sorted(ALL_KINDS - set(generated)), generated)
