"""One day of `training_examples_gold` read into flat numpy arrays on the host (`HostDay`), with delta-rs and numpy."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from carousel.contract import LOADER_COLUMNS, LOADER_ORDER_COLUMN
from carousel.loader.delta_table import (
    GoldLayoutError,
    MissingDayError,
    TrainingTableError,
    open_table,
    scan,
    table_uri,
)

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("carousel")

_ALIGNMENT = 256  # bytes; every array in a day's flat buffer starts on this boundary


@dataclass(frozen=True)
class HostDay:
    """One day of the gold table as flat arrays: R customer-days, N history entries, M impressions.

    Memory: R*N*5 + M*9 bytes (`nbytes`). Rows are in customer order, whatever order delta-rs read
    them in, so a seed gives the same batches on every run; filling them is one copy of the Arrow
    buffers delta-rs decoded into.

    Attributes:
        table, day: where it came from.
        actions: [R, N] int32 item ids, newest first, 0 padding.
        action_types: [R, N] int8: 1 click, 2 add-to-cart, 3 order, 0 padding.
        impressions: [M] int32 shown item ids, the customer-days' `item_ids` one after the other.
        labels: [M] bool, `is_order` of each impression.
        history_row: [M] int32, the row of `actions` that holds each impression's history.
    """

    table: str
    day: str
    actions: np.ndarray
    action_types: np.ndarray
    impressions: np.ndarray
    labels: np.ndarray
    history_row: np.ndarray

    @property
    def rows(self) -> int:
        return self.actions.shape[0]

    @property
    def history_length(self) -> int:
        return self.actions.shape[1]

    @property
    def impression_count(self) -> int:
        return self.impressions.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self._arrays())

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.actions, self.action_types, self.impressions, self.labels, self.history_row


def day_layout(rows: int, history_length: int, impressions: int) -> tuple[dict[str, tuple[int, tuple, np.dtype]], int]:
    """Where each `HostDay` array sits in one flat byte buffer (offset, shape, dtype), and the buffer's size."""
    shapes = {
        "actions": ((rows, history_length), np.dtype(np.int32)),
        "action_types": ((rows, history_length), np.dtype(np.int8)),
        "impressions": ((impressions,), np.dtype(np.int32)),
        "labels": ((impressions,), np.dtype(np.bool_)),
        "history_row": ((impressions,), np.dtype(np.int32)),
    }
    layout, offset = {}, 0
    for name, (shape, dtype) in shapes.items():
        layout[name] = (offset, shape, dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        offset += -(-nbytes // _ALIGNMENT) * _ALIGNMENT
    return layout, offset


@dataclass(frozen=True)
class _Piece:
    """One record batch of a day as numpy views: its customers, histories, shown items, labels and items per row."""

    customer_ids: np.ndarray
    actions: np.ndarray
    action_types: np.ndarray
    impressions: np.ndarray
    labels: np.ndarray
    shown_per_row: np.ndarray


@dataclass(frozen=True)
class _ArrowDay:
    """A day read and checked, not yet laid out: its record batches as numpy views, and the sizes."""

    table: str
    day: str
    pieces: list[_Piece]
    rows: int
    history_length: int
    impression_count: int


def _list_parts(table: str, day: str, column: str, array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """The list lengths and the flat values of a list column's record-batch slice; nulls refused."""
    import pyarrow as pa

    if not (pa.types.is_list(array.type) or pa.types.is_large_list(array.type)):
        raise GoldLayoutError(table, day, column, f"has type {array.type}, expected an array")
    if array.null_count:
        raise GoldLayoutError(table, day, column, f"{array.null_count} row(s) hold null instead of an array")
    offsets = array.offsets.to_numpy()  # this slice's offsets: len(array) + 1 of them
    values = array.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    if values.null_count:
        raise GoldLayoutError(table, day, column, f"{values.null_count} null element(s)")
    return np.diff(offsets), values


def _values_numpy(table: str, day: str, column: str, values: pa.Array, target: pa.DataType) -> np.ndarray:
    """Flat list values as numpy: a zero-copy view when the type already matches, else a safe Arrow cast."""
    import pyarrow as pa

    if values.type != target:
        try:
            values = values.cast(target)  # safe: an item id beyond int32 raises instead of wrapping
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise GoldLayoutError(table, day, column, f"values of {values.type} are not {target}: {error}") from error
    return values.to_numpy(zero_copy_only=not pa.types.is_boolean(target))


def _history(
    table: str, day: str, column: str, lengths: np.ndarray, values: pa.Array, length: int, target: pa.DataType
) -> np.ndarray:
    """A history column's flat values as [rows, N], after checking that every row holds exactly N entries."""
    wrong = np.flatnonzero(lengths != length)
    if wrong.size:
        raise GoldLayoutError(
            table,
            day,
            column,
            f"{wrong.size} row(s) hold {sorted(set(lengths[wrong].tolist()))[:5]} entries instead of N = {length}",
        )
    return _values_numpy(table, day, column, values, target).reshape(lengths.shape[0], length)


def read_arrow_day(
    table_path: str | os.PathLike[str],
    day: str,
    version: int | None,
    storage_options: Mapping[str, str] | None = None,
) -> _ArrowDay:
    """Read the needed columns of one day with delta-rs, check the layout, and view them as numpy."""
    import pyarrow as pa

    table = table_uri(table_path)
    batches = scan(open_table(table, version, storage_options), table, (LOADER_ORDER_COLUMN, *LOADER_COLUMNS), day=day)
    pieces, length, rows = [], None, 0
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            piece = _piece(table, day, batch, length)
            length = piece.actions.shape[1]
            pieces.append(piece)
            rows += batch.num_rows
    except (OSError, pa.ArrowException) as error:
        raise TrainingTableError(table, f"table '{table}' day {day}: reading failed: {error}") from error
    if not pieces:
        raise MissingDayError(table, day, "the table holds no rows for it")
    return _ArrowDay(table, day, pieces, rows, length, int(sum(piece.impressions.shape[0] for piece in pieces)))


def _piece(table: str, day: str, batch: pa.RecordBatch, length: int | None) -> _Piece:
    """One record batch as numpy views, checked: N entries per history (N: the first one's), aligned labels."""
    import pyarrow as pa

    customer_ids = batch.column(LOADER_ORDER_COLUMN)
    if customer_ids.null_count:
        raise GoldLayoutError(table, day, LOADER_ORDER_COLUMN, f"{customer_ids.null_count} null value(s)")
    actions, action_types, item_ids, labels = (batch.column(name) for name in LOADER_COLUMNS)
    action_lengths, action_values = _list_parts(table, day, "actions", actions)
    type_lengths, type_values = _list_parts(table, day, "action_types", action_types)
    length = int(action_lengths[0]) if length is None else length
    shown, items = _list_parts(table, day, "item_ids", item_ids)
    label_counts, label_values = _list_parts(table, day, "labels", labels)
    if not np.array_equal(shown, label_counts):
        raise GoldLayoutError(table, day, "labels", "does not have one entry per entry of item_ids")
    return _Piece(
        customer_ids=customer_ids.to_numpy(zero_copy_only=False),
        actions=_history(table, day, "actions", action_lengths, action_values, length, pa.int32()),
        action_types=_history(table, day, "action_types", type_lengths, type_values, length, pa.int8()),
        impressions=_values_numpy(table, day, "item_ids", items, pa.int32()),
        labels=_values_numpy(table, day, "labels", label_values, pa.bool_()),
        shown_per_row=shown,
    )


def _customer_order(arrow_day: _ArrowDay) -> np.ndarray:
    """Each read row's place in the day's layout: rows sorted by customer, so the layout does not depend on read order.

    Raises:
        GoldLayoutError: a customer has more than one row (the gold table holds one per customer-day).
    """
    customers = np.concatenate([piece.customer_ids for piece in arrow_day.pieces])
    order = np.argsort(customers, kind="stable")
    repeated = np.flatnonzero(np.diff(customers[order]) == 0)
    if repeated.size:
        examples = sorted(set(customers[order][repeated].tolist()))[:5]
        raise GoldLayoutError(
            arrow_day.table,
            arrow_day.day,
            LOADER_ORDER_COLUMN,
            f"{repeated.size} customer(s) have more than one row that day, e.g. {examples}",
        )
    place = np.empty_like(order)
    place[order] = np.arange(order.size)
    return place


def fill_host_day(arrow_day: _ArrowDay, out: dict[str, np.ndarray]) -> HostDay:
    """Copy the day into the given arrays, rows in customer order (one scattered copy each); return them as a `HostDay`.

    Each piece's rows go to their places in `out["actions"]` / `out["action_types"]`, and each row's
    shown items to that row's span of `out["impressions"]` / `out["labels"]`.
    """
    pieces = arrow_day.pieces
    place = _customer_order(arrow_day)
    shown = np.concatenate([piece.shown_per_row for piece in pieces])
    shown_in_place = np.empty_like(shown)
    shown_in_place[place] = shown
    starts = np.zeros(shown.size, dtype=np.int64)  # where each placed row's shown items begin
    np.cumsum(shown_in_place[:-1], out=starts[1:])
    first = 0
    for piece in pieces:
        rows = place[first : first + piece.shown_per_row.size]
        first += rows.size
        out["actions"][rows] = piece.actions
        out["action_types"][rows] = piece.action_types
        # item k of a row goes to its row's start + k
        within = np.arange(piece.impressions.size) - np.repeat(
            np.cumsum(piece.shown_per_row) - piece.shown_per_row, piece.shown_per_row
        )
        positions = np.repeat(starts[rows], piece.shown_per_row) + within
        out["impressions"][positions] = piece.impressions
        out["labels"][positions] = piece.labels
    out["history_row"][:] = np.repeat(np.arange(shown.size, dtype=np.int32), shown_in_place)
    return HostDay(arrow_day.table, arrow_day.day, **out)


def read_day(
    table_path: str | os.PathLike[str],
    day: str,
    version: int | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> HostDay:
    """Read one day of `training_examples_gold` into flat numpy arrays, rows in customer order: R*N*5 + M*9 bytes.

    Only `customer_id`, `actions`, `action_types`, `item_ids` and `labels` are read, with delta-rs
    (deletion vectors applied, column-mapped names resolved).

    Args:
        table_path: the Delta table: a local path, a cloud URI (s3://, abfss://, gs://), or a Unity
            Catalog name `catalog.schema.table` (read as `uc://catalog.schema.table`).
        day: 'yyyy-MM-dd'.
        version: the table version to read; the latest when None.
        storage_options: delta-rs storage options (credentials, region); for `uc://` see `resolve_location`.

    Raises:
        MissingTableError, TableVersionError, UnsupportedTableFeatureError: see `open_table` and `scan`.
        MissingDayError: no rows for the day.
        GoldLayoutError: a missing column, a history that is not N entries long, nulls, unaligned
            item_ids and labels, a customer twice in the day.
    """
    arrow_day = read_arrow_day(table_path, day, version, storage_options)
    layout, _ = day_layout(arrow_day.rows, arrow_day.history_length, arrow_day.impression_count)
    return fill_host_day(arrow_day, {name: np.empty(shape, dtype) for name, (_, shape, dtype) in layout.items()})
