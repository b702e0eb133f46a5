"""One day of `training_examples_gold` read into flat numpy arrays on the host (`HostDay`), with pyarrow only."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from carousel.contract import LOADER_COLUMNS
from carousel.loader.delta_log import (
    GoldLayoutError,
    MissingDayError,
    live_files,
)

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("carousel")

_ALIGNMENT = 256  # bytes; every array in a day's flat buffer starts on this boundary


@dataclass(frozen=True)
class HostDay:
    """One day of the gold table as flat arrays: R customer-days, N history entries, M impressions.

    Memory: R*N*5 + M*9 bytes (`nbytes`). Read by `read_day`, the integer arrays are views of the
    Arrow buffers pyarrow decoded into when the day is one record batch (no copy), else one copy;
    `labels` is always a copy (Arrow packs booleans into bits).

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
    """One record batch of a day as numpy views: its histories, shown items, labels and items per row."""

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


def read_arrow_day(table_path: str | os.PathLike[str], day: str, version: int | None) -> _ArrowDay:
    """Read the four needed columns of one day with pyarrow, check the layout, and view them as numpy."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    table = os.path.abspath(os.fspath(table_path))
    files = live_files(table, day, version)
    dataset = ds.dataset(files, format="parquet")
    for column in LOADER_COLUMNS:
        if column not in dataset.schema.names:
            raise GoldLayoutError(table, day, column, f"is missing (columns: {', '.join(dataset.schema.names)})")
    read = dataset.to_table(columns=list(LOADER_COLUMNS))
    if read.num_rows == 0:
        raise MissingDayError(table, day, f"its {len(files)} file(s) hold no rows")
    pieces, length = [], None
    for batch in read.to_batches():
        if batch.num_rows == 0:
            continue
        actions, action_types, item_ids, labels = (batch.column(name) for name in LOADER_COLUMNS)
        action_lengths, action_values = _list_parts(table, day, "actions", actions)
        type_lengths, type_values = _list_parts(table, day, "action_types", action_types)
        if length is None:
            length = int(action_lengths[0])  # N: the first history's length; every other must match it
        shown, items = _list_parts(table, day, "item_ids", item_ids)
        label_counts, label_values = _list_parts(table, day, "labels", labels)
        if not np.array_equal(shown, label_counts):
            raise GoldLayoutError(table, day, "labels", "does not have one entry per entry of item_ids")
        pieces.append(
            _Piece(
                actions=_history(table, day, "actions", action_lengths, action_values, length, pa.int32()),
                action_types=_history(table, day, "action_types", type_lengths, type_values, length, pa.int8()),
                impressions=_values_numpy(table, day, "item_ids", items, pa.int32()),
                labels=_values_numpy(table, day, "labels", label_values, pa.bool_()),
                shown_per_row=shown,
            )
        )
    return _ArrowDay(
        table, day, pieces, read.num_rows, length, int(sum(piece.impressions.shape[0] for piece in pieces))
    )


def _history_rows(pieces: list[_Piece]) -> list[np.ndarray]:
    """Per piece, the day-wide row index of each of its impressions."""
    rows, first = [], 0
    for piece in pieces:
        count = piece.shown_per_row.shape[0]
        rows.append(np.repeat(np.arange(first, first + count, dtype=np.int32), piece.shown_per_row))
        first += count
    return rows


def fill_host_day(arrow_day: _ArrowDay, out: dict[str, np.ndarray]) -> HostDay:
    """Copy the day's pieces into the given arrays (one copy each) and return them as a `HostDay`."""
    pieces = arrow_day.pieces
    for name in ("actions", "action_types", "impressions", "labels"):
        np.concatenate([getattr(piece, name) for piece in pieces], axis=0, out=out[name])
    np.concatenate(_history_rows(pieces), out=out["history_row"])
    return HostDay(arrow_day.table, arrow_day.day, **out)


def read_day(table_path: str | os.PathLike[str], day: str, version: int | None = None) -> HostDay:
    """Read one day of `training_examples_gold` into flat numpy arrays: R*N*5 + M*9 bytes.

    Only `actions`, `action_types`, `item_ids` and `labels` are read. When pyarrow returns the
    day as one record batch, the integer arrays are views of its buffers (no copy); otherwise each
    array is one concatenation.

    Args:
        table_path: the table: a Delta table or a Parquet directory partitioned by `dt`.
        day: 'yyyy-MM-dd'.
        version: Delta only: the table version to read; the latest when None.

    Raises:
        MissingDayError: no files or no rows for the day.
        GoldLayoutError: a history that is not N entries long, nulls, unaligned item_ids and labels.
        UnsupportedTableFeatureError, DeltaLogError: see `live_files`.
    """
    arrow_day = read_arrow_day(table_path, day, version)
    if len(arrow_day.pieces) == 1:
        (piece,) = arrow_day.pieces
        return HostDay(
            arrow_day.table,
            arrow_day.day,
            piece.actions,
            piece.action_types,
            piece.impressions,
            piece.labels,
            _history_rows(arrow_day.pieces)[0],
        )
    layout, _ = day_layout(arrow_day.rows, arrow_day.history_length, arrow_day.impression_count)
    return fill_host_day(arrow_day, {name: np.empty(shape, dtype) for name, (_, shape, dtype) in layout.items()})
