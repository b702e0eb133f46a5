"""Data-quality rules as data: per raw source, rule name -> SQL predicate over conformed columns.

A row is kept when every predicate of its source is TRUE; a predicate that is FALSE or NULL
counts as broken, so every row is either kept or rejected, never both and never neither.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.schemas import conform, conformed_columns

RAW_RECORD = "raw_record"
RUN_ID = "run_id"
MICROS_PER_DAY = 86_400_000_000


def _positive(column: str) -> str:
    return f"{column} IS NOT NULL AND {column} > 0"


def _cast_day(column: str) -> str:
    # A cast is lenient ('2025-3-2', ' 2025-03-02', '2025-03-02T10:00' all parse), so alone it
    # is not the rule; with `_has_day_shape` it is exactly `yyyy-MM-dd`, at a fraction of the
    # cost of `try_to_date(dt, 'yyyy-MM-dd')` (a formatter parse per row).
    return f"try_cast({column} AS DATE)"


def _has_day_shape(column: str) -> str:
    """A text that casts to a date is exactly `yyyy-MM-dd`: checks that allocate nothing per row.

    A regex (or `substr`) costs about as much per row as reading the row; these cost a fraction.
    Why they suffice once the lenient cast succeeded: ten bytes with the first '-' at 5 leave four
    year digits (a sign, a blank or a shorter year leave fewer, which the cast refuses); the next
    '-' at 8 leaves two month characters, which must then be digits; the ninth character must be
    a digit. Only the tenth may still be a blank or a 'T' that the cast skips, and it is a digit
    exactly when the day has two digits (day >= 10) or the ninth is '0' (a day cannot be 0). A
    Java regex would also let a trailing newline through its '$'; these do not.
    """
    return (
        f"(octet_length({column}) = 10 AND instr({column}, '-') = 5 AND locate('-', {column}, 6) = 8 "
        f"AND (dayofmonth({_cast_day(column)}) >= 10 OR locate('0', {column}, 9) = 9))"
    )


def _parsable_day(column: str) -> str:
    """A `yyyy-MM-dd` text naming a real day; the cast first, so a text that does not cast skips the shape checks."""
    return f"{_cast_day(column)} IS NOT NULL AND {_has_day_shape(column)}"


def checked_day(column: str) -> Column:
    """The date of a day text that passed its `dt_parsable` rule (there a plain cast is exact)."""
    return F.expr(_cast_day(column))


def _bound(day: str) -> str:
    return f"(CAST(unix_date({day}) AS BIGINT) + 2) * {MICROS_PER_DAY}"


def _by_end_of_next_day(timestamp: str, day: str) -> str:
    """`timestamp` is before midnight UTC ending the day after the date `day`; TRUE when either is missing.

    A late event may land in the next day's partition, never later. A missing or unparsable
    value is another rule's to report, so this rule names only a timestamp that is too late.
    The bound is computed from epoch days, so it does not depend on the session time zone, and
    in 64-bit microseconds: seconds in a 32-bit int overflow after 2038 (a crash under ANSI, a
    wrapped bound without it), and the bound of 9999-12-31 lies past the last timestamp Spark has.
    """
    return f"{timestamp} IS NULL OR {day} IS NULL OR unix_micros({timestamp}) < {_bound(day)}"


def _by_end_of_next_day_of_text(timestamp: str, day_text: str) -> str:
    """`_by_end_of_next_day` of a `yyyy-MM-dd` text; TRUE when the text is not of that shape.

    The same predicate as over the strictly parsed day, ordered so that the usual row (a
    timestamp in time) is settled by the cast and never reaches the shape checks.
    """
    # One cast, not two: where the text does not cast, the comparison is NULL, and NULL reads TRUE.
    in_time = f"coalesce(unix_micros({timestamp}) < {_bound(_cast_day(day_text))}, TRUE)"
    return f"{timestamp} IS NULL OR {in_time} OR NOT {_has_day_shape(day_text)}"


RULES: dict[str, dict[str, str]] = {
    "impressions": {
        "dt_parsable": _parsable_day("dt"),
        "ranking_id_present": "ranking_id IS NOT NULL",
        "customer_id_positive": _positive("customer_id"),
        "impressions_not_empty": "impressions IS NOT NULL AND size(impressions) > 0",
        "impressions_items_valid": (
            "forall(impressions, shown -> shown.item_id IS NOT NULL AND shown.item_id > 0 "
            "AND shown.is_order IS NOT NULL)"
        ),
    },
    "clicks": {
        "dt_parsable": _parsable_day("dt"),
        "customer_id_positive": _positive("customer_id"),
        "item_id_positive": _positive("item_id"),
        "click_time_present": "click_time IS NOT NULL",
        "click_time_by_end_of_next_day": _by_end_of_next_day_of_text("click_time", "dt"),
    },
    "add_to_carts": {
        "dt_parsable": _parsable_day("dt"),
        "customer_id_positive": _positive("customer_id"),
        "config_id_positive": _positive("config_id"),
        "occurred_at_present": "occurred_at IS NOT NULL",
        "occurred_at_by_end_of_next_day": _by_end_of_next_day_of_text("occurred_at", "dt"),
    },
    "orders": {
        "order_date_present": "order_date IS NOT NULL",
        "customer_id_positive": _positive("customer_id"),
        "config_id_positive": _positive("config_id"),
        "occurred_at_present": "occurred_at IS NOT NULL",
        "occurred_at_by_end_of_next_day": _by_end_of_next_day("occurred_at", "order_date"),
    },
}


def null_safe_rules(source: str) -> dict[str, str]:
    """The rules of `source` rewritten so that NULL reads as broken, for expectation decorators."""
    return {name: f"coalesce(({predicate}), false)" for name, predicate in RULES[source].items()}


def rule_holds(predicate: str) -> Column:
    """TRUE where the SQL predicate is TRUE; FALSE where it is FALSE or NULL."""
    return F.coalesce(F.expr(predicate), F.lit(False))


def all_rules_hold(source: str) -> Column:
    """TRUE where a conformed row of `source` passes every rule of that source."""
    return reduce(lambda left, right: left & right, (rule_holds(p) for p in RULES[source].values()))


def keep_valid(df: DataFrame, source: str, schema: T.StructType | None = None) -> DataFrame:
    """Return the rows of a raw `source` that pass all its rules, conformed to the contract.

    `schema` is `df`'s schema when known beforehand (see `carousel.schemas.conformed_columns`).
    """
    return conform(df, source, schema).where(all_rules_hold(source))


def broken_rules(source: str) -> Column:
    """The names of the rules of `source` a conformed row breaks, as array<string> (empty when none)."""
    named_failures = [F.when(~rule_holds(p), F.lit(name)) for name, p in RULES[source].items()]
    return F.filter(F.array(*named_failures), lambda name: name.isNotNull())


def quarantine_rows(
    df: DataFrame, source: str, schema: T.StructType | None = None, run_id: str | None = None
) -> DataFrame:
    """Return the rows of a raw `source` that break at least one rule, each with the rules it broke.

    Args:
        df: the raw rows.
        source: one of `RULES`' keys.
        schema: `df`'s schema when known beforehand (see `carousel.schemas.conformed_columns`).
        run_id: the run that quarantined the rows (see `carousel.run_metrics.new_run_id`).

    Returns:
        The contract's columns (conformed), `broken_rules` array<string>, `raw_record` (the
        whole raw row, extra columns included, as JSON, so nothing of a rejected row is lost)
        and `run_id`.
    """
    schema = schema or df.schema
    whole_row = F.to_json(
        F.struct(*(F.col(f"`{name}`") for name in schema.fieldNames())), {"ignoreNullFields": "false"}
    ).alias(RAW_RECORD)
    conformed = df.select(*conformed_columns(df, source, schema), whole_row)
    return conformed.select(
        "*", broken_rules(source).alias("broken_rules"), F.lit(run_id).cast("string").alias(RUN_ID)
    ).where(F.size("broken_rules") > 0)
