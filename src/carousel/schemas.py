"""The raw input contracts and the named errors raised when an input breaks one.

`conform` is the one gate every raw DataFrame passes: it checks the required columns,
drops extra ones and casts compatible types to the contract's types. It never filters
rows; bad values (null or negative ids, unparsable days) are left for `carousel.quality`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from carousel.errors import CarouselError

IMPRESSION_STRUCT = T.StructType(
    [T.StructField("item_id", T.IntegerType()), T.StructField("is_order", T.BooleanType())]
)

RAW_SCHEMAS: dict[str, T.StructType] = {
    "impressions": T.StructType(
        [
            T.StructField("dt", T.StringType()),
            T.StructField("ranking_id", T.StringType()),
            T.StructField("customer_id", T.IntegerType()),
            T.StructField("impressions", T.ArrayType(IMPRESSION_STRUCT)),
        ]
    ),
    "clicks": T.StructType(
        [
            T.StructField("dt", T.StringType()),
            T.StructField("customer_id", T.IntegerType()),
            T.StructField("item_id", T.IntegerType()),
            T.StructField("click_time", T.TimestampType()),
        ]
    ),
    "add_to_carts": T.StructType(
        [
            T.StructField("dt", T.StringType()),
            T.StructField("customer_id", T.IntegerType()),
            T.StructField("config_id", T.IntegerType()),
            T.StructField("simple_id", T.IntegerType()),
            T.StructField("occurred_at", T.TimestampType()),
        ]
    ),
    "orders": T.StructType(
        [
            T.StructField("order_date", T.DateType()),
            T.StructField("customer_id", T.IntegerType()),
            T.StructField("config_id", T.IntegerType()),
            T.StructField("simple_id", T.IntegerType()),
            T.StructField("occurred_at", T.TimestampType()),
        ]
    ),
}

RAW_DAY_COLUMN = {"impressions": "dt", "clicks": "dt", "add_to_carts": "dt", "orders": "order_date"}
"""The day column of each raw source: what landed data is partitioned by and a day's rows are selected by."""

DAY_FORMAT = "yyyy-MM-dd"

_INTEGRAL_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


class SchemaContractError(CarouselError, ValueError):
    """A raw input DataFrame does not meet its contract in `RAW_SCHEMAS`."""

    def __init__(self, table: str, column: str, message: str) -> None:
        super().__init__(message)
        self.table = table
        self.column = column


class MissingColumnError(SchemaContractError):
    """A required column is absent from a raw input."""

    def __init__(self, table: str, column: str, present: list[str]) -> None:
        super().__init__(
            table,
            column,
            f"table '{table}' lacks required column '{column}' (columns present: {', '.join(present) or 'none'})",
        )


class ColumnTypeError(SchemaContractError):
    """A required column has a type that cannot be read as the contract's type."""

    def __init__(self, table: str, column: str, found: T.DataType, expected: T.DataType) -> None:
        super().__init__(
            table,
            column,
            f"table '{table}' column '{column}' has type {found.simpleString()}, expected {expected.simpleString()}",
        )


def _integral_as_int(column: Column, found: T.DataType) -> Column:
    # A bigint id beyond the int range becomes NULL, which the quality rules then reject,
    # instead of failing the whole run under ANSI casts.
    return column if isinstance(found, T.IntegerType) else column.try_cast(T.IntegerType())


def _conform_impression_list(table: str, column: str, found: T.DataType) -> Column:
    expected = RAW_SCHEMAS[table][column].dataType
    element = found.elementType if isinstance(found, T.ArrayType) else None
    if not isinstance(element, T.StructType):
        raise ColumnTypeError(table, column, found, expected)
    fields = {field.name: field.dataType for field in element.fields}
    for name, wanted in (("item_id", _INTEGRAL_TYPES), ("is_order", (T.BooleanType,))):
        if name not in fields or not isinstance(fields[name], wanted):
            raise ColumnTypeError(table, f"{column}.{name}", found, expected)
    if [(field.name, field.dataType) for field in element.fields] == [
        (field.name, field.dataType) for field in expected.elementType.fields
    ]:
        # Already the contract's shape: a `transform` would rebuild every element in an
        # interpreted lambda, the costliest step of reading the impressions.
        return F.col(column)
    return F.transform(
        F.col(column),
        lambda shown: F.struct(
            _integral_as_int(shown["item_id"], fields["item_id"]).alias("item_id"),
            shown["is_order"].alias("is_order"),
        ),
    )


def _conform_column(table: str, column: str, found: T.DataType) -> Column:
    expected = RAW_SCHEMAS[table][column].dataType
    source = F.col(f"`{column}`")
    if isinstance(expected, T.ArrayType):
        return _conform_impression_list(table, column, found)
    if isinstance(expected, T.IntegerType) and isinstance(found, _INTEGRAL_TYPES):
        return _integral_as_int(source, found)
    if isinstance(expected, T.StringType) and isinstance(found, T.StringType):
        return source
    if column == "dt" and isinstance(found, T.DateType):
        return F.date_format(source, DAY_FORMAT)
    if isinstance(expected, T.DateType) and isinstance(found, T.DateType):
        return source
    if isinstance(expected, T.DateType) and isinstance(found, T.StringType):
        return F.try_to_date(source, DAY_FORMAT)
    # timestamp_ntz is refused on purpose: turning it into an instant depends on the
    # session time zone, and the result must not.
    if isinstance(expected, T.TimestampType) and isinstance(found, T.TimestampType):
        return source
    raise ColumnTypeError(table, column, found, expected)


def conformed_columns(df: DataFrame, table: str, schema: T.StructType | None = None) -> list[Column]:
    """The contract's columns of a raw input as expressions over `df`, in contract order and types.

    Args:
        df: the raw input.
        table: one of `RAW_SCHEMAS`' keys.
        schema: `df`'s schema when known beforehand. Inside a pipeline's dataset function a
            DataFrame must not be analysed, so the pipeline reads it outside (or passes
            `RAW_SCHEMAS[table]` for tables it conformed itself).

    Raises:
        KeyError: `table` is not a known raw input.
        MissingColumnError: a required column is absent.
        ColumnTypeError: a required column has a type that cannot be read as the contract's.
    """
    if table not in RAW_SCHEMAS:
        raise KeyError(f"unknown raw table '{table}', expected one of {sorted(RAW_SCHEMAS)}")
    found_types = {field.name: field.dataType for field in (schema or df.schema).fields}
    columns = []
    for field in RAW_SCHEMAS[table].fields:
        if field.name not in found_types:
            raise MissingColumnError(table, field.name, list(found_types))
        columns.append(_conform_column(table, field.name, found_types[field.name]).alias(field.name))
    return columns


def conform(df: DataFrame, table: str, schema: T.StructType | None = None) -> DataFrame:
    """Return the contract's columns of a raw input, in contract order and types; same rows.

    Args:
        df: a raw input with at least the columns of `RAW_SCHEMAS[table]`; extra columns are dropped.
        table: one of `RAW_SCHEMAS`' keys: impressions, clicks, add_to_carts, orders.
        schema: `df`'s schema when known beforehand (see `conformed_columns`).

    Raises:
        KeyError: `table` is not a known raw input.
        MissingColumnError: a required column is absent.
        ColumnTypeError: a required column has a type that cannot be read as the contract's.
    """
    return df.select(*conformed_columns(df, table, schema))
