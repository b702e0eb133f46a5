"""Find the Parquet files of a Delta table's version without Spark: replay its log (checkpoint + JSON commits).

Refuses what it cannot read correctly (deletion vectors, column mapping). Only local paths are supported.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from carousel.errors import CarouselError

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("carousel")

PARTITION_COLUMN = "dt"

_COMMIT = re.compile(r"(\d{20})\.json")
_CHECKPOINT = re.compile(r"(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet")


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
            f"table '{table}' uses {feature}, which carousel.loader cannot read without Spark ({detail}); "
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
        version: Delta only: the version to read (e.g. the one `carousel.pipeline.local.read_published`
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
