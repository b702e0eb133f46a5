"""Open the gold tables with delta-rs (`deltalake`), without Spark: local paths, cloud URIs and `uc://` names.

delta-rs lists a version's files, applies deletion vectors and maps column-mapped names, so the
loader reads what Spark and Databricks write. A `catalog.schema.table` name is read through Unity
Catalog (`uc://`), which vends short-lived storage credentials for the table.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from carousel.contract import TRAINING_EXAMPLES_GOLD
from carousel.errors import CarouselError
from carousel.locations import is_path

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

DAY_COLUMN = TRAINING_EXAMPLES_GOLD.partition_by[0]
UNITY_CATALOG_SCHEME = "uc://"


class TrainingTableError(CarouselError, ValueError):
    """The table cannot be read as `training_examples_gold` (or `item_vocabulary_gold`) by this reader."""

    def __init__(self, table: str, message: str) -> None:
        super().__init__(message)
        self.table = table


class MissingTableError(TrainingTableError, FileNotFoundError):
    """There is no Delta table at the location (or no access to it)."""


class UnsupportedTableFeatureError(TrainingTableError):
    """The Delta table needs a reader feature delta-rs does not implement (reading it would give wrong rows)."""

    def __init__(self, table: str, detail: str) -> None:
        super().__init__(table, f"table '{table}' uses a Delta feature carousel.loader cannot read: {detail}")


class TableVersionError(TrainingTableError):
    """The asked version of the table does not exist or can no longer be read."""


class MissingDayError(TrainingTableError, LookupError):
    """The table has no data for the asked day."""

    def __init__(self, table: str, day: str, detail: str) -> None:
        super().__init__(table, f"table '{table}' has no data for day {DAY_COLUMN}={day}: {detail}")
        self.day = day


class GoldLayoutError(TrainingTableError):
    """A column breaks the gold layout: missing, null, a history not of N entries, unaligned shown-item arrays."""

    def __init__(self, table: str, day: str, column: str, message: str) -> None:
        super().__init__(table, f"table '{table}' day {DAY_COLUMN}={day} column '{column}': {message}")
        self.day = day
        self.column = column


def table_uri(table: str | os.PathLike[str]) -> str:
    """Where delta-rs finds the table: `uc://` for a `catalog.schema.table` name, an absolute local path, or the URI."""
    location = os.fspath(table)
    if not is_path(location):
        if location.count(".") != 2 or "" in location.split("."):
            raise MissingTableError(
                location, f"'{location}' is neither a path nor a Unity Catalog name catalog.schema.table"
            )
        return UNITY_CATALOG_SCHEME + location
    return location if "://" in location else os.path.abspath(location)


def unity_catalog_options(uri: str, storage_options: Mapping[str, str] | None) -> dict[str, str] | None:
    """The options delta-rs needs for a `uc://` table: the workspace and a token from Databricks' unified auth.

    Given options win. Otherwise, where `databricks-sdk` is installed, its configuration (the
    `DATABRICKS_*` variables, a `~/.databrickscfg` profile, OAuth for a service principal, or the
    runtime's own credentials on Databricks compute) gives the workspace URL and a bearer token.
    Without it, delta-rs reads `DATABRICKS_HOST` and `DATABRICKS_TOKEN` from the environment itself.
    """
    if storage_options is not None or not uri.startswith(UNITY_CATALOG_SCHEME):
        return dict(storage_options) if storage_options is not None else None
    try:
        from databricks.sdk.core import Config
    except ImportError:
        return None
    try:
        config = Config()
        authorization = config.authenticate().get("Authorization", "")
    except Exception as error:  # the SDK raises its own ValueError subclasses for every auth problem
        raise TrainingTableError(
            uri, f"cannot authenticate to Databricks to read '{uri}' (databricks-sdk: {error})"
        ) from error
    if not authorization.startswith("Bearer "):
        raise TrainingTableError(uri, f"cannot read '{uri}': the Databricks auth in use gives no bearer token")
    return {"DATABRICKS_HOST": config.host, "DATABRICKS_TOKEN": authorization.removeprefix("Bearer ")}


def open_table(
    table: str | os.PathLike[str], version: int | None = None, storage_options: Mapping[str, str] | None = None
) -> DeltaTable:
    """The Delta table at `version` (the latest when None).

    Raises:
        MissingTableError: no Delta table there (a plain Parquet directory included), or no access.
        TableVersionError: the version does not exist or its log is gone.
        UnsupportedTableFeatureError: the version needs a reader feature delta-rs lacks.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    uri = table_uri(table)
    options = unity_catalog_options(uri, storage_options)
    try:
        return DeltaTable(uri, version=version, storage_options=options)
    except TableNotFoundError as error:
        raise MissingTableError(uri, f"no Delta table at '{uri}': {_first_line(error)}") from error
    except DeltaError as error:
        if version is None or _unsupported(error):
            raise _read_error(uri, "cannot open the Delta table", error) from error
        versions = _versions(uri, options)
        if versions is not None and not 0 <= version <= versions:
            raise TableVersionError(
                uri, f"table '{uri}' has versions 0..{versions}; there is no version {version}"
            ) from error
        raise TableVersionError(
            uri, f"table '{uri}': cannot read version {version} (log retention?): {_first_line(error)}"
        ) from error


def _versions(uri: str, options: dict[str, str] | None) -> int | None:
    """The newest version, to explain why an older one failed; None when the latest cannot be opened either."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    try:
        return DeltaTable(uri, storage_options=options).version()
    except DeltaError:
        return None


def latest_version(table: str | os.PathLike[str], storage_options: Mapping[str, str] | None = None) -> int:
    """The newest version of the Delta table."""
    return open_table(table, storage_options=storage_options).version()


def table_days(
    table: str | os.PathLike[str], version: int | None = None, storage_options: Mapping[str, str] | None = None
) -> list[str]:
    """The days (`dt` values) the table holds at `version`, sorted."""
    opened = open_table(table, version, storage_options)
    if DAY_COLUMN in opened.metadata().partition_columns:
        return sorted({partition[DAY_COLUMN] for partition in opened.partitions()})
    import pyarrow as pa
    import pyarrow.compute as pc

    days = pa.table(opened.scan(columns=[DAY_COLUMN])).column(DAY_COLUMN)
    return sorted(str(day) for day in pc.unique(days).to_pylist() if day is not None)


def scan(
    opened: DeltaTable, uri: str, columns: Sequence[str], day: str | None = None, label: str = ""
) -> pa.RecordBatchReader:
    """A stream of record batches of `columns` (of one day when given), deletion vectors applied; order not fixed.

    Raises:
        GoldLayoutError / TrainingTableError: a column is missing (the error names it).
        UnsupportedTableFeatureError: delta-rs cannot read the table's reader features.
    """
    import pyarrow as pa
    from deltalake.exceptions import DeltaError

    present = set(opened.schema().to_arrow().names)
    needed = list(columns) + ([DAY_COLUMN] if day is not None else [])
    for column in needed:
        if column not in present:
            detail = f"is missing (columns: {', '.join(sorted(present))})"
            if day is not None:
                raise GoldLayoutError(uri, day, column, detail)
            raise TrainingTableError(uri, f"{label or 'table'} '{uri}' column '{column}' {detail}")
    predicate = f"{DAY_COLUMN} = '{_checked_day(uri, day)}'" if day is not None else None
    try:
        return pa.RecordBatchReader.from_stream(opened.scan(columns=list(columns), predicate=predicate))
    except DeltaError as error:
        raise _read_error(uri, "cannot read the Delta table", error) from error


def _checked_day(uri: str, day: str) -> str:
    """The day, checked to be yyyy-MM-dd (it goes into the scan's predicate)."""
    try:
        if len(day) == 10:
            return dt.date.fromisoformat(day).isoformat()
    except (TypeError, ValueError):
        pass
    raise TrainingTableError(uri, f"day {day!r} of table '{uri}' is not a date yyyy-MM-dd")


def _unsupported(error: BaseException) -> bool:
    """delta-rs names a reader feature it lacks ("Unsupported: Feature ...") but gives it no error class of its own."""
    return "Unsupported" in str(error)


def _read_error(uri: str, doing: str, error: BaseException) -> TrainingTableError:
    if _unsupported(error):
        return UnsupportedTableFeatureError(uri, _first_line(error))
    return TrainingTableError(uri, f"{doing} '{uri}': {_first_line(error)}")


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
