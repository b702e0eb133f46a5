"""Feed `training_examples_gold` to PyTorch one day at a time: the day on the device once, batches gathered there.

The gold table holds one row per customer-day: the history (`actions`, `action_types`, N entries
each) once, and the items shown that day as aligned arrays (`item_ids`, `labels`, ...). A training
example is one impression, so a day of R customer-days and M impressions is read into five flat
arrays (`HostDay`), R*N*5 + M*9 bytes:

- `actions` [R, N] int32 and `action_types` [R, N] int8: the histories, once per customer-day;
- `impressions` [M] int32 (the shown item ids), `labels` [M] bool (`is_order`), and
  `history_row` [M] int32: the customer-day row of each impression.

`DayLoader` copies a day into one reused pinned host buffer and onto the device in one transfer,
then, per epoch, draws a permutation of the M impressions on the device and gathers each batch by
index: `actions[history_row[idx]]`. Nothing per sample runs in Python, and the next day is read on
a background thread while the current one is trained on.

The reader needs no Spark: `live_files` replays a Delta table's log (checkpoint + JSON commits)
to find the Parquet files of one `dt` partition, and refuses what it cannot read correctly
(deletion vectors, column mapping). Only local paths are supported.

This module needs numpy and pyarrow; `DayLoader` needs torch (imported when first used).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlparse

import numpy as np

from carousel.contract import LOADER_COLUMNS, UNKNOWN_INDEX
from carousel.errors import CarouselError

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

log = logging.getLogger("carousel")

PARTITION_COLUMN = "dt"
READ_COLUMNS = LOADER_COLUMNS

_COMMIT = re.compile(r"(\d{20})\.json")
_CHECKPOINT = re.compile(r"(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet")
_ALIGNMENT = 256  # bytes; every array in a day's flat buffer starts on this boundary
_GROWTH = 1.125  # a grown pinned buffer gets this much headroom, so a slightly bigger next day reuses it


class TrainingTableError(CarouselError, ValueError):
    """The table cannot be read as `training_examples_gold` by this reader."""

    def __init__(self, table: str, message: str) -> None:
        super().__init__(message)
        self.table = table


class UnsupportedTableFeatureError(TrainingTableError):
    """The Delta table uses a feature this reader does not implement (reading it would give wrong rows)."""

    def __init__(self, table: str, feature: str, detail: str) -> None:
        super().__init__(
            table,
            f"table '{table}' uses {feature}, which carousel.training cannot read without Spark ({detail}); "
            f"rewrite the table without it or read it with Spark",
        )
        self.feature = feature


class DeltaLogError(TrainingTableError):
    """The Delta log cannot be replayed to the asked version."""


class MissingDayError(TrainingTableError, LookupError):
    """The table has no data for the asked day."""

    def __init__(self, table: str, day: str, detail: str) -> None:
        super().__init__(table, f"table '{table}' has no data for day {PARTITION_COLUMN}={day}: {detail}")
        self.day = day


class GoldLayoutError(TrainingTableError):
    """A column breaks the gold layout: missing, null, a history not of N entries, unaligned shown-item arrays."""

    def __init__(self, table: str, day: str, column: str, message: str) -> None:
        super().__init__(table, f"table '{table}' day {PARTITION_COLUMN}={day} column '{column}': {message}")
        self.day = day
        self.column = column


# --- which files: the Delta log without Spark -------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    """A Delta table at one version: its live files ((path, deletion vector) -> add action) and metadata."""

    version: int
    files: dict[tuple[str, str | None], dict[str, Any]]
    metadata: dict[str, Any]


def _dv_key(deletion_vector: dict[str, Any] | None) -> str | None:
    """The deletion vector's identity; Delta reconciles file actions by (path, deletion vector)."""
    if not deletion_vector:
        return None
    return "|".join(str(deletion_vector.get(field)) for field in ("storageType", "pathOrInlineDv", "offset"))


def _as_dict(value: Any) -> dict[str, Any]:
    """A Delta map as a dict: JSON commits give dicts, Parquet checkpoints lists of (key, value)."""
    if value is None:
        return {}
    return dict(value)


def _log_entries(log_dir: str) -> tuple[set[int], dict[int, list[str]]]:
    """The commit versions, and the complete classic checkpoints (version -> its part files), in a log directory."""
    commits: set[int] = set()
    parts: dict[tuple[int, int], list[tuple[int, str]]] = {}
    for name in os.listdir(log_dir):
        if match := _COMMIT.fullmatch(name):
            commits.add(int(match[1]))
        elif match := _CHECKPOINT.fullmatch(name):
            part, total = (int(match[2]), int(match[3])) if match[2] else (1, 1)
            parts.setdefault((int(match[1]), total), []).append((part, name))
    checkpoints = {
        version: [name for _, name in sorted(found)]
        for (version, total), found in parts.items()
        if len(found) == total  # a multi-part checkpoint with a part missing is ignored, as Delta does
    }
    return commits, checkpoints


def _last_checkpoint(log_dir: str, checkpoints: dict[int, list[str]]) -> int | None:
    """The version `_last_checkpoint` names, when that checkpoint is complete on disk."""
    try:
        with open(os.path.join(log_dir, "_last_checkpoint")) as hint:
            version = int(json.load(hint)["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or torn: listing finds the checkpoints
    return version if version in checkpoints else None


def _read_checkpoint(table: str, log_dir: str, names: list[str]) -> _Snapshot:
    """The live files and metadata a classic (single- or multi-part) Parquet checkpoint holds."""
    import pyarrow.parquet as pq

    paths = [os.path.join(log_dir, name) for name in names]
    present = set(pq.read_schema(paths[0]).names)
    if "sidecar" in present:
        raise UnsupportedTableFeatureError(table, "v2 checkpoints", f"checkpoint {names[0]} may refer to sidecar files")
    columns = [column for column in ("add", "metaData") if column in present]
    checkpoint = pq.read_table(paths, columns=columns)
    files: dict[tuple[str, str | None], dict[str, Any]] = {}
    if "add" in present:
        add = checkpoint.column("add").combine_chunks()
        # flatten() applies the struct's own validity: rows that hold another action give null paths.
        fields = dict(zip([field.name for field in add.type], add.flatten(), strict=True))
        paths_, values = fields["path"].to_pylist(), fields["partitionValues"].to_pylist()
        vectors = fields["deletionVector"].to_pylist() if "deletionVector" in fields else [None] * len(paths_)
        for path, partition_values, vector in zip(paths_, values, vectors, strict=True):
            if path is not None:
                action = {"path": path, "partitionValues": _as_dict(partition_values), "deletionVector": vector}
                files[(path, _dv_key(vector))] = action
    metadata = _first_non_null(checkpoint, "metaData")
    metadata["configuration"] = _as_dict(metadata.get("configuration"))
    return _Snapshot(-1, files, metadata)


def _first_non_null(table: pa.Table, column: str) -> dict[str, Any]:
    if column not in table.column_names:
        return {}
    return next((value for value in table.column(column).to_pylist() if value is not None), {})


def _replay(table: str, version: int | None) -> _Snapshot:
    """Replay the Delta log of `table` up to `version` (the latest when None): the newest checkpoint, then commits.

    Raises:
        DeltaLogError: the version does not exist, or a commit between the checkpoint and it is gone.
    """
    log_dir = os.path.join(table, "_delta_log")
    commits, checkpoints = _log_entries(log_dir)
    if not commits and not checkpoints:
        raise DeltaLogError(table, f"table '{table}' has an empty Delta log: no version to read")
    latest = max(commits | checkpoints.keys())
    if version is not None and not 0 <= version <= latest:
        raise DeltaLogError(table, f"table '{table}' has versions 0..{latest}; there is no version {version}")
    target = latest if version is None else version
    start = _last_checkpoint(log_dir, checkpoints) if version is None else None
    if start is None:
        start = max((found for found in checkpoints if found <= target), default=None)
    if start is None:
        snapshot, first = _Snapshot(-1, {}, {}), 0
    else:
        snapshot, first = _read_checkpoint(table, log_dir, checkpoints[start]), start + 1
    missing = [found for found in range(first, target + 1) if found not in commits]
    if missing:
        raise DeltaLogError(
            table,
            f"table '{table}': cannot replay its Delta log to version {target}: commit(s) {missing[:5]} are gone "
            f"(log retention) and no checkpoint covers them",
        )
    files, metadata = dict(snapshot.files), snapshot.metadata
    for commit in range(first, target + 1):
        with open(os.path.join(log_dir, f"{commit:020d}.json")) as actions:
            for line in actions:
                if not line.strip():
                    continue
                action = json.loads(line)
                if "add" in action:
                    add = action["add"]
                    add["partitionValues"] = _as_dict(add.get("partitionValues"))
                    files[(add["path"], _dv_key(add.get("deletionVector")))] = add
                elif "remove" in action:
                    remove = action["remove"]
                    files.pop((remove["path"], _dv_key(remove.get("deletionVector"))), None)
                elif "metaData" in action:
                    metadata = action["metaData"]
                    metadata["configuration"] = _as_dict(metadata.get("configuration"))
    return _Snapshot(target, files, metadata)


def _check_readable(table: str, snapshot: _Snapshot, partitioned: bool = True) -> None:
    """Refuse what this reader would read wrong: deletion vectors, column mapping, no `dt` partitions (if needed)."""
    mode = snapshot.metadata.get("configuration", {}).get("delta.columnMapping.mode", "none")
    if mode not in (None, "none"):
        raise UnsupportedTableFeatureError(
            table, "column mapping", f"delta.columnMapping.mode = {mode}: Parquet column names differ from the table's"
        )
    with_vectors = [path for path, vector in snapshot.files if vector is not None]
    if with_vectors:
        raise UnsupportedTableFeatureError(
            table,
            "deletion vectors",
            f"{len(with_vectors)} live file(s) have rows deleted by a deletion vector, e.g. {with_vectors[0]}",
        )
    partitions = snapshot.metadata.get("partitionColumns") or []
    if partitioned and PARTITION_COLUMN not in partitions:
        raise TrainingTableError(
            table, f"table '{table}' is not partitioned by '{PARTITION_COLUMN}' (partition columns: {partitions})"
        )


def _data_path(table: str, path: str) -> str:
    """A Delta add's path as a local file path: relative paths are URL-encoded and relative to the table."""
    parsed = urlparse(path)
    if parsed.scheme:
        if parsed.scheme != "file":
            raise TrainingTableError(table, f"table '{table}' refers to a non-local file {path}")
        return unquote(parsed.path)
    return os.path.join(table, unquote(path))


def _parquet_day_files(table: str, day: str) -> list[str]:
    """The Parquet files of `dt=day/` in a plain (Hive-partitioned) Parquet directory."""
    directory = os.path.join(table, f"{PARTITION_COLUMN}={day}")
    if not os.path.isdir(directory):
        return []
    return [
        os.path.join(directory, name)
        for name in sorted(os.listdir(directory))
        if name.endswith(".parquet") and not name.startswith(("_", "."))
    ]


def live_files(table_path: str | os.PathLike[str], day: str, version: int | None = None) -> list[str]:
    """The Parquet files that hold partition `dt=day` of a Delta table (at `version`) or a Parquet directory.

    A Delta table (it has `_delta_log/`) is read from its log, without Spark: the newest checkpoint
    (`_last_checkpoint`, or the newest one on disk at or before `version`), then the JSON commits
    after it, keeping added minus removed files. Files that an overwrite removed stay on disk until
    VACUUM; they are not returned.

    Args:
        table_path: the table's directory (local).
        day: the partition value, 'yyyy-MM-dd'.
        version: Delta only: the version to read (e.g. the one `carousel.local_pipeline.read_published`
            reads); the latest when None.

    Returns:
        Absolute paths, sorted.

    Raises:
        FileNotFoundError: no table at `table_path`.
        UnsupportedTableFeatureError: deletion vectors or column mapping.
        DeltaLogError: `version` does not exist or cannot be replayed.
        MissingDayError: the day has no files.
    """
    table = os.path.abspath(os.fspath(table_path))
    delta = _delta_files(table, version, day)
    if delta is not None:
        files, where = delta[0], f"Delta version {delta[1]}"
    else:
        files, where = _parquet_day_files(table, day), f"directory {PARTITION_COLUMN}={day}/"
    if not files:
        raise MissingDayError(table, day, f"no Parquet files in {where}")
    return files


def table_files(table_path: str | os.PathLike[str], version: int | None = None) -> list[str]:
    """Every live Parquet file of a Delta table (at `version`) or of a Parquet directory (no partitions needed).

    Raises:
        FileNotFoundError: no table at `table_path`.
        UnsupportedTableFeatureError: deletion vectors or column mapping.
        DeltaLogError: `version` does not exist or cannot be replayed.
    """
    table = os.path.abspath(os.fspath(table_path))
    delta = _delta_files(table, version, day=None)
    if delta is not None:
        return delta[0]
    return sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(table)
        for name in names
        if name.endswith(".parquet") and not name.startswith(("_", "."))
    )


def _delta_files(table: str, version: int | None, day: str | None) -> tuple[list[str], int] | None:
    """The live files (of partition dt=`day` when given) and the version read; None for a Parquet directory."""
    if not os.path.isdir(table):
        raise FileNotFoundError(f"no table at '{table}'")
    if not os.path.isdir(os.path.join(table, "_delta_log")):
        if version is not None:
            raise TrainingTableError(table, f"table '{table}' is a Parquet directory, not Delta: no version {version}")
        return None
    snapshot = _replay(table, version)
    _check_readable(table, snapshot, partitioned=day is not None)
    files = sorted(
        _data_path(table, add["path"])
        for add in snapshot.files.values()
        if day is None or add["partitionValues"].get(PARTITION_COLUMN) == day
    )
    return files, snapshot.version


def latest_version(table_path: str | os.PathLike[str]) -> int | None:
    """The newest version of a Delta table (by listing its log); None for a plain Parquet directory."""
    table = os.path.abspath(os.fspath(table_path))
    log_dir = os.path.join(table, "_delta_log")
    if not os.path.isdir(log_dir):
        return None
    commits, checkpoints = _log_entries(log_dir)
    if not commits and not checkpoints:
        raise DeltaLogError(table, f"table '{table}' has an empty Delta log: no version to read")
    return max(commits | checkpoints.keys())


# --- the day on the host ------------------------------------------------------------------------


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


def _layout(rows: int, history_length: int, impressions: int) -> tuple[dict[str, tuple[int, tuple, np.dtype]], int]:
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


def _read_arrow_day(table_path: str | os.PathLike[str], day: str, version: int | None) -> _ArrowDay:
    """Read the four needed columns of one day with pyarrow, check the layout, and view them as numpy."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    table = os.path.abspath(os.fspath(table_path))
    files = live_files(table, day, version)
    dataset = ds.dataset(files, format="parquet")
    for column in READ_COLUMNS:
        if column not in dataset.schema.names:
            raise GoldLayoutError(table, day, column, f"is missing (columns: {', '.join(dataset.schema.names)})")
    read = dataset.to_table(columns=list(READ_COLUMNS))
    if read.num_rows == 0:
        raise MissingDayError(table, day, f"its {len(files)} file(s) hold no rows")
    pieces, length = [], None
    for batch in read.to_batches():
        if batch.num_rows == 0:
            continue
        actions, action_types, item_ids, labels = (batch.column(name) for name in READ_COLUMNS)
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


def _fill(arrow_day: _ArrowDay, out: dict[str, np.ndarray]) -> HostDay:
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
    arrow_day = _read_arrow_day(table_path, day, version)
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
    layout, _ = _layout(arrow_day.rows, arrow_day.history_length, arrow_day.impression_count)
    return _fill(arrow_day, {name: np.empty(shape, dtype) for name, (_, shape, dtype) in layout.items()})


# --- the day on the device: DayLoader ------------------------------------------------------------


class Batch(NamedTuple):
    """One batch of impressions of one day, on the loader's device.

    `impressions` [B] int32 (shown item ids), `actions` [B, N] int32, `action_types` [B, N] int8,
    `labels` [B] bool (`is_order`; `.float()` for a loss). Row i of every tensor is one impression.
    """

    day: str
    epoch: int
    impressions: torch.Tensor
    actions: torch.Tensor
    action_types: torch.Tensor
    labels: torch.Tensor


class CustomerDayBatch(NamedTuple):
    """A batch of customer-days with all their impressions: encode each history once, score its items.

    `actions` / `action_types` [b, N]: one history per customer-day. Its impressions are ragged:
    `impressions` / `labels` [m] hold those of row 0, then row 1, ...; the ones of row i are
    `offsets[i]:offsets[i + 1]` (`offsets` [b + 1] int64), and `impression_row` [m] int64 is the row
    of each, so `encoded[impression_row]` lines the encoded histories up with the impressions.
    """

    day: str
    epoch: int
    actions: torch.Tensor
    action_types: torch.Tensor
    impressions: torch.Tensor
    labels: torch.Tensor
    offsets: torch.Tensor
    impression_row: torch.Tensor


@dataclass
class _DeviceDay:
    """A day's arrays on the device: views of one flat device buffer (`flat`), which owns the memory."""

    day: str
    flat: torch.Tensor
    actions: torch.Tensor
    action_types: torch.Tensor
    impressions: torch.Tensor
    labels: torch.Tensor
    history_row: torch.Tensor

    @property
    def impression_count(self) -> int:
        return self.impressions.shape[0]

    @property
    def rows(self) -> int:
        return self.actions.shape[0]


@dataclass(frozen=True)
class ItemVocabulary:
    """Item id -> embedding index, from the pipeline's `item_vocabulary_gold` (see `carousel.vocabulary`).

    0 stays 0 (padding), an id the vocabulary does not know becomes 1, a known one its index (2, 3,
    ... by frequency). `num_embeddings` is the size an embedding table needs.
    """

    item_ids: np.ndarray  # sorted, int32
    indices: np.ndarray  # aligned with item_ids, int32

    @classmethod
    def read(cls, table_path: str | os.PathLike[str], version: int | None = None) -> ItemVocabulary:
        """Read the vocabulary table (Delta or Parquet) with pyarrow.

        Raises:
            TrainingTableError: the table is empty or holds an id twice.
        """
        import pyarrow.parquet as pq

        table = os.path.abspath(os.fspath(table_path))
        files = table_files(table, version)
        if not files:
            raise TrainingTableError(table, f"vocabulary table '{table}' has no rows")
        columns = pq.read_table(files, columns=["item_id", "item_index"])
        ids = columns["item_id"].to_numpy().astype(np.int32)
        indices = columns["item_index"].to_numpy().astype(np.int32)
        order = np.argsort(ids, kind="stable")
        ids, indices = ids[order], indices[order]
        if len(ids) > 1 and (np.diff(ids) == 0).any():
            raise TrainingTableError(table, f"vocabulary table '{table}' holds an item id more than once")
        return cls(ids, indices)

    @property
    def num_embeddings(self) -> int:
        return int(max(self.indices.max(initial=UNKNOWN_INDEX), UNKNOWN_INDEX)) + 1

    def lookup(self, item_ids: torch.Tensor) -> torch.Tensor:
        """The embedding indices of `item_ids` (any shape, on any device), as int32."""
        import torch

        known = torch.from_numpy(self.item_ids).to(item_ids.device)
        indices = torch.from_numpy(self.indices).to(item_ids.device)
        position = torch.searchsorted(known, item_ids).clamp_(max=len(known) - 1)
        found = known[position] == item_ids
        mapped = torch.where(found, indices[position], torch.full_like(item_ids, UNKNOWN_INDEX))
        return torch.where(item_ids == 0, item_ids, mapped).to(torch.int32)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def epoch_seed(seed: int, day: str, epoch: int) -> int:
    """The seed of one (day, epoch)'s permutation: a hash of the three, the same on every run and machine."""
    digest = hashlib.sha256(f"{seed}/{day}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class DayLoader:
    """Batches of impressions, one day at a time, each day on the device once and sampled there.

    Order: for each day in `days` (in the given order), `epochs` passes; each pass is a fresh random
    permutation of the day's impressions, drawn on the device with a generator seeded from
    (seed, day, epoch), so a run is reproducible (on the same kind of device: CPU and CUDA draw
    different permutations). A batch never mixes days; the last batch of a pass is short unless
    `drop_last`.

    Per day: pyarrow reads the day (`read_day`'s columns) into ONE reused host buffer (pinned when
    the device is CUDA; it grows when a day is bigger, with some headroom, and is reused otherwise),
    which is copied to a fresh device buffer in one `non_blocking` transfer on a side stream. While
    the current day is trained on, a background thread (one worker) reads and transfers the next,
    so the device holds at most two days (R*N*5 + M*9 bytes each) plus the batches; an error there
    is raised by the iterator when it reaches that day. Batches are gathered on the device by index
    (`actions[history_row[idx]]`): no per-sample Python, no collate, no torch DataLoader.

    On CPU the day is read straight into a fresh buffer per day (no pinned copy) and batches are
    the same gathers; that path is what the tests run.

    One iteration at a time per loader (they share the pinned buffer).

    Args:
        table_path: `training_examples_gold`: a Delta table or a Parquet directory partitioned by `dt`.
        days: the days to train on, in order, 'yyyy-MM-dd'.
        batch_size: impressions per batch (customer-days per batch in `customer_day_batches`).
        epochs: passes over each day before the next day.
        device: "cuda" when available, else "cpu".
        seed: the shuffling seed.
        drop_last: skip each pass's last batch when it is short.
        version: Delta only: the table version to read (e.g. the one `read_published` reads); when
            None, the latest version when an iteration starts, for all of its days.
        vocabulary: when given, item ids (shown items and actions) are replaced by their embedding
            indices once per day on the device (`ItemVocabulary.lookup`), so batches hold indices.
    """

    def __init__(
        self,
        table_path: str | os.PathLike[str],
        days: Sequence[str],
        batch_size: int = 4096,
        epochs: int = 1,
        device: str | torch.device | None = None,
        seed: int = 0,
        drop_last: bool = False,
        version: int | None = None,
        vocabulary: ItemVocabulary | None = None,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if epochs < 0:
            raise ValueError(f"epochs must be at least 0, got {epochs}")
        if isinstance(days, str):
            raise TypeError("days must be a sequence of 'yyyy-MM-dd' strings, not one string")
        self.table_path = os.path.abspath(os.fspath(table_path))
        self.days = list(days)
        self.batch_size = batch_size
        self.epochs = epochs
        self.device = torch.device(device if device is not None else _default_device())
        self.seed = seed
        self.drop_last = drop_last
        self.version = version
        self.vocabulary = vocabulary
        self._cuda = self.device.type == "cuda"
        self._pinned: torch.Tensor | None = None
        self._stream = torch.cuda.Stream(device=self.device) if self._cuda else None
        self._iterating = threading.Lock()

    def __iter__(self) -> Iterator[Batch]:
        """Batches of `batch_size` impressions: day by day, `epochs` shuffled passes per day."""
        for staged in self._device_days():
            count = staged.impression_count
            for epoch in range(self.epochs):
                order = self._permutation(count, staged.day, epoch)
                for start in range(0, count, self.batch_size):
                    index = order[start : start + self.batch_size]
                    if self.drop_last and index.shape[0] < self.batch_size:
                        break
                    rows = staged.history_row.index_select(0, index)
                    yield Batch(
                        staged.day,
                        epoch,
                        staged.impressions.index_select(0, index),
                        staged.actions.index_select(0, rows),
                        staged.action_types.index_select(0, rows),
                        staged.labels.index_select(0, index),
                    )
            del staged  # the day's device memory can go before the day after next is allocated

    def customer_day_batches(self, rows_per_batch: int | None = None) -> Iterator[CustomerDayBatch]:
        """Batches of customer-days with their impressions: for a model that encodes each history once.

        A customer-day with k impressions appears once per pass, with its k shown items; encoding
        its history once and scoring the k items against the encoding does 1/k of the encoder work
        of `__iter__` (which repeats the history per impression). Same days, epochs, seeding and
        drop_last as iterating the loader, but the permutation is over customer-days.

        Args:
            rows_per_batch: customer-days per batch; `batch_size` when None. The number of
                impressions per batch varies with the rows drawn.
        """
        import torch

        size = rows_per_batch or self.batch_size
        for staged in self._device_days():
            counts = torch.bincount(staged.history_row.long(), minlength=staged.rows)
            starts = torch.cumsum(counts, 0) - counts  # a row's impressions are contiguous in the flat arrays
            # The ragged batch size is summed on the host from copies made once per day and per
            # epoch, so no batch waits for the device to say how many impressions it holds.
            counts_on_host = counts.cpu()
            for epoch in range(self.epochs):
                order = self._permutation(staged.rows, staged.day, epoch)
                order_on_host = order.cpu()
                for first in range(0, staged.rows, size):
                    rows = order[first : first + size]
                    if self.drop_last and rows.shape[0] < size:
                        break
                    shown = counts.index_select(0, rows)
                    offsets = torch.cat([torch.zeros(1, dtype=torch.int64, device=self.device), torch.cumsum(shown, 0)])
                    total = int(counts_on_host.index_select(0, order_on_host[first : first + size]).sum())
                    impression_row = torch.repeat_interleave(
                        torch.arange(rows.shape[0], device=self.device), shown, output_size=total
                    )
                    within = torch.arange(total, device=self.device) - offsets[:-1].index_select(0, impression_row)
                    index = starts.index_select(0, rows).index_select(0, impression_row) + within
                    yield CustomerDayBatch(
                        staged.day,
                        epoch,
                        staged.actions.index_select(0, rows),
                        staged.action_types.index_select(0, rows),
                        staged.impressions.index_select(0, index),
                        staged.labels.index_select(0, index),
                        offsets,
                        impression_row,
                    )
            del staged

    def _permutation(self, count: int, day: str, epoch: int) -> torch.Tensor:
        import torch

        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, day, epoch))
        return torch.randperm(count, generator=generator, device=self.device)

    def _device_days(self) -> Iterator[_DeviceDay]:
        """The days on the device, in order; the next one is read and transferred while the current one is used."""
        import torch

        if not self._iterating.acquire(blocking=False):
            raise RuntimeError("this DayLoader is already being iterated; make a second DayLoader for a second pass")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carousel-day-loader")
        pending: Future[_DeviceDay] | None = None
        try:
            # Every day of one pass comes from the same table version, even if a pipeline run commits meanwhile.
            version = self.version if self.version is not None else latest_version(self.table_path)
            if self.days:
                pending = executor.submit(self._stage, self.days[0], version)
            for position in range(len(self.days)):
                staged = pending.result()
                following = self.days[position + 1] if position + 1 < len(self.days) else None
                pending = executor.submit(self._stage, following, version) if following is not None else None
                if self._cuda:
                    # The buffer was allocated on the side stream: tell the allocator the current stream uses it
                    # too, so its memory is not handed out again before this stream's gathers are done.
                    staged.flat.record_stream(torch.cuda.current_stream(self.device))
                yield staged
                del staged
        finally:
            if pending is not None:
                pending.cancel()
            executor.shutdown(wait=True, cancel_futures=True)
            self._iterating.release()

    def _host_buffer(self, nbytes: int) -> torch.Tensor:
        """A host byte buffer of at least `nbytes`: the reused pinned one on CUDA, the day's own fresh one on CPU."""
        import torch

        if not self._cuda:
            return torch.empty(nbytes, dtype=torch.uint8)
        if self._pinned is None or self._pinned.numel() < nbytes:
            self._pinned = None  # release the old pinned buffer before pinning the bigger one
            self._pinned = torch.empty(int(nbytes * _GROWTH), dtype=torch.uint8, pin_memory=True)
            log.info("pinned host buffer of %.1f MiB for %s", self._pinned.numel() / 2**20, self.table_path)
        return self._pinned

    @staticmethod
    def _views(flat: torch.Tensor, layout: dict[str, tuple[int, tuple, np.dtype]]) -> dict[str, torch.Tensor]:
        import torch

        return {
            name: flat[offset : offset + int(np.prod(shape)) * dtype.itemsize]
            .view(getattr(torch, dtype.name))  # int32, int8, bool: numpy's names are torch's
            .view(shape)
            for name, (offset, shape, dtype) in layout.items()
        }

    def _map_items(self, views: dict[str, torch.Tensor]) -> None:
        """Item ids -> embedding indices in place, once per day, when the loader has a vocabulary."""
        if self.vocabulary is not None:
            for name in ("impressions", "actions"):
                views[name].copy_(self.vocabulary.lookup(views[name]))

    def _stage(self, day: str, version: int | None) -> _DeviceDay:
        """Read one day into the host buffer and copy it to the device (runs on the background thread)."""
        import torch

        started = time.perf_counter()
        arrow_day = _read_arrow_day(self.table_path, day, version)
        layout, nbytes = _layout(arrow_day.rows, arrow_day.history_length, arrow_day.impression_count)
        host = self._host_buffer(nbytes)
        host_bytes = host[:nbytes].numpy()
        _fill(
            arrow_day,
            {
                name: host_bytes[offset : offset + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)
                for name, (offset, shape, dtype) in layout.items()
            },
        )
        del arrow_day  # the Arrow buffers: the day is in the host buffer now
        read_seconds = time.perf_counter() - started
        if self._cuda:
            with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
                flat = torch.empty(nbytes, dtype=torch.uint8, device=self.device)
                flat.copy_(host[:nbytes], non_blocking=True)
                views = self._views(flat, layout)
                self._map_items(views)
            self._stream.synchronize()  # the pinned buffer may be refilled, and the day used, only after this
        else:
            flat = host[:nbytes]
            views = self._views(flat, layout)
            self._map_items(views)
        copy_seconds = time.perf_counter() - started - read_seconds
        staged = _DeviceDay(day, flat, **views)
        log.info(
            "day %s: %s customer-days, %s impressions, %.1f MiB; read %.2f s, to %s %.2f s",
            day,
            f"{staged.rows:,}",
            f"{staged.impression_count:,}",
            nbytes / 2**20,
            read_seconds,
            self.device,
            copy_seconds,
        )
        return staged
