"""The dirty rows of the demo data: each dirty kind of `DIRTY_KINDS` as overrides of a clean row's columns."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from carousel.schemas import RAW_SCHEMAS
from carousel.synthetic.config import (
    BAD_DAY_STRINGS,
    DIRTY_KINDS,
    EXTRA_COLUMN,
)


def _null_of(source: str, column: str) -> Column:
    return F.lit(None).cast(RAW_SCHEMAS[source][column].dataType)


def _day_overrides(source: str) -> dict[str, dict[str, Column]]:
    day_column = "order_date" if source == "orders" else "dt"
    overrides = {f"null_{day_column}": {day_column: _null_of(source, day_column)}}
    if source != "orders":
        # order_date is a DATE, so only the string day partitions can hold unparsable text.
        for kind, text in zip(("bad_dt_month", "bad_dt_text", "bad_dt_empty"), BAD_DAY_STRINGS, strict=False):
            overrides[kind] = {"dt": F.lit(text)}
    return overrides


def _first_item_replaced(new_id: Callable[[Column], Column]) -> Column:
    """The impression list with its first item's id replaced by `new_id(old_id)`."""
    return F.transform(
        F.col("impressions"),
        lambda shown, position: F.when(
            position == 0,
            F.struct(new_id(shown["item_id"]).alias("item_id"), shown["is_order"].alias("is_order")),
        ).otherwise(shown),
    )


def _dirty_overrides(source: str) -> dict[str, dict[str, Column]]:
    """Per dirty kind, the columns it replaces (a duplicate replaces none)."""
    overrides: dict[str, dict[str, Column]] = {
        "null_customer_id": {"customer_id": _null_of(source, "customer_id")},
        "negative_customer_id": {"customer_id": -F.col("customer_id")},
        "duplicate": {},
    }
    overrides.update(_day_overrides(source))
    if source == "impressions":
        overrides["null_impressions"] = {"impressions": _null_of(source, "impressions")}
        empty = F.array().cast(RAW_SCHEMAS[source]["impressions"].dataType)
        overrides["empty_impressions"] = {"impressions": empty}
        no_id = _first_item_replaced(lambda old: F.lit(None).cast("int"))
        overrides["null_item_id_in_list"] = {"impressions": no_id}
        overrides["negative_item_id_in_list"] = {"impressions": _first_item_replaced(lambda old: -old)}
        return overrides
    item = "item_id" if source == "clicks" else "config_id"
    time = "click_time" if source == "clicks" else "occurred_at"
    overrides[f"null_{item}"] = {item: _null_of(source, item)}
    overrides[f"negative_{item}"] = {item: -F.col(item)}
    overrides[f"null_{time}"] = {time: _null_of(source, time)}
    # Three days on lands after the end of the day after the partition day even for a late event.
    day = "order_date" if source == "orders" else "dt"
    overrides[f"{time}_days_after_{day}"] = {time: F.col(time) + F.expr("INTERVAL 3 DAYS")}
    return overrides


def corrupted(rows: DataFrame, source: str) -> DataFrame:
    """Apply the override of each row's `dirty_kind`; clean rows (kind -1) pass unchanged."""
    overrides = _dirty_overrides(source)
    kinds = DIRTY_KINDS[source]
    assert set(kinds) == set(overrides), f"dirty kinds of {source} and their overrides disagree"
    columns = []
    for column in [*RAW_SCHEMAS[source].fieldNames(), EXTRA_COLUMN]:
        expression = None
        for index, kind in enumerate(kinds):
            if column in overrides[kind]:
                condition = F.col("dirty_kind") == index
                value = overrides[kind][column]
                expression = F.when(condition, value) if expression is None else expression.when(condition, value)
        columns.append(F.col(column) if expression is None else expression.otherwise(F.col(column)).alias(column))
    return rows.select(*columns)


def with_contract_types(rows: DataFrame, source: str) -> DataFrame:
    # Casting to the contract's types also makes nested nullability match it exactly.
    return rows.select(
        *[F.col(field.name).cast(field.dataType).alias(field.name) for field in RAW_SCHEMAS[source].fields],
        F.col(EXTRA_COLUMN),
    )
