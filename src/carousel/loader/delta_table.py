"""Open the gold tables with delta-rs (`deltalake`), without Spark: local paths, cloud URIs and `uc://` names.

delta-rs lists a version's files, applies deletion vectors and maps column-mapped names, so the
loader reads what Spark and Databricks write. A `catalog.schema.table` name (`uc://`) is looked up in
Unity Catalog, which names the table's storage location and vends short-lived credentials for it.
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
    """The loader's name for a table: `uc://` + a `catalog.schema.table` name, an absolute local path, or the URI."""
    location = os.fspath(table)
    if not is_path(location):
        if location.count(".") != 2 or "" in location.split("."):
            raise MissingTableError(
                location, f"'{location}' is neither a path nor a Unity Catalog name catalog.schema.table"
            )
        return UNITY_CATALOG_SCHEME + location
    return location if "://" in location else os.path.abspath(location)


def resolve_location(uri: str, storage_options: Mapping[str, str] | None) -> tuple[str, dict[str, str] | None]:
    """Where delta-rs reads `uri`, and with which storage options: a `uc://` name becomes its vended location.

    For `uc://catalog.schema.table`, Unity Catalog (through databricks-sdk's unified auth: the
    `DATABRICKS_*` variables, a `~/.databrickscfg` profile, OAuth for a service principal, or the
    runtime's own credentials on Databricks compute) names the table's storage location and vends
    short-lived READ credentials for it; `storage_options` are added to them (e.g. `aws_region`).
    delta-rs's own `uc://` support is not used: in deltalake 1.6.6 its first open in a process can
    hang for good (a lock it holds while registering the cloud stores), and it asks for READ_WRITE.
    """
    if not uri.startswith(UNITY_CATALOG_SCHEME):
        return uri, dict(storage_options) if storage_options is not None else None
    location, vended = _vended(uri)
    return location, {**vended, **(storage_options or {})}


def _vended(uri: str) -> tuple[str, dict[str, str]]:
    """The storage location of a Unity Catalog table and delta-rs options holding its vended READ credentials."""
    name = uri.removeprefix(UNITY_CATALOG_SCHEME)
    try:
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied
        from databricks.sdk.service.catalog import TableOperation
    except ImportError as error:
        raise TrainingTableError(uri, f"reading '{uri}' needs databricks-sdk (the `torch` extra): {error}") from error
    try:
        client = WorkspaceClient()
        table = client.tables.get(name)
        vended = client.temporary_table_credentials.generate_temporary_table_credentials(
            operation=TableOperation.READ, table_id=table.table_id
        )
    except NotFound as error:
        raise MissingTableError(uri, f"Unity Catalog has no table {name} you can see: {_first_line(error)}") from error
    except PermissionDenied as error:
        raise TrainingTableError(
            uri,
            f"Unity Catalog refused to vend credentials for {name}: {_first_line(error)} (reading it outside "
            "Spark needs EXTERNAL USE SCHEMA on its schema and external data access enabled on the metastore)",
        ) from error
    except (DatabricksError, ValueError) as error:  # ValueError: the SDK finds no usable authentication
        raise TrainingTableError(uri, f"cannot resolve '{uri}' through Unity Catalog: {_first_line(error)}") from error
    location = vended.url or table.storage_location
    if not location:
        raise TrainingTableError(uri, f"Unity Catalog gives no storage location for {name}")
    return location, _credential_options(uri, vended)


def _credential_options(uri: str, vended: object) -> dict[str, str]:
    """Vended credentials as delta-rs (object_store) storage options, for S3 and Azure storage."""
    aws = getattr(vended, "aws_temp_credentials", None)
    if aws is not None:
        options = {"aws_access_key_id": aws.access_key_id, "aws_secret_access_key": aws.secret_access_key}
        return options | ({"aws_session_token": aws.session_token} if aws.session_token else {})
    sas = getattr(vended, "azure_user_delegation_sas", None)
    if sas is not None:
        return {"azure_storage_sas_key": sas.sas_token}
    aad = getattr(vended, "azure_aad", None)
    if aad is not None:
        return {"azure_storage_token": aad.aad_token}
    kinds = [kind for kind in ("gcp_oauth_token", "r2_temp_credentials") if getattr(vended, kind, None) is not None]
    raise TrainingTableError(
        uri,
        f"Unity Catalog vended {kinds or 'no'} credentials for '{uri}'; the loader reads S3 and Azure storage "
        "(pass storage_options that reach the table's location instead)",
    )


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
    location, options = resolve_location(uri, storage_options)
    try:
        return DeltaTable(location, version=version, storage_options=options)
    except TableNotFoundError as error:
        raise MissingTableError(uri, f"no Delta table at '{uri}': {_first_line(error)}") from error
    except DeltaError as error:
        if version is None or _unsupported(error):
            raise _read_error(uri, "cannot open the Delta table", error) from error
        versions = _versions(location, options)
        if versions is not None and not 0 <= version <= versions:
            raise TableVersionError(
                uri, f"table '{uri}' has versions 0..{versions}; there is no version {version}"
            ) from error
        raise TableVersionError(
            uri, f"table '{uri}': cannot read version {version} (log retention?): {_first_line(error)}"
        ) from error


def _versions(location: str, options: dict[str, str] | None) -> int | None:
    """The newest version, to explain why an older one failed; None when the latest cannot be opened either."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    try:
        return DeltaTable(location, storage_options=options).version()
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
