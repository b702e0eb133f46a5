"""`DayLoader`: a day on the device once, an epoch's permutation drawn there, batches gathered by index."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from carousel.loader.delta_table import latest_version, table_uri
from carousel.loader.host_day import day_layout, fill_host_day, read_arrow_day
from carousel.loader.vocabulary import ItemVocabulary

if TYPE_CHECKING:
    import torch

log = logging.getLogger("carousel")

_GROWTH = 1.125  # a grown pinned buffer gets this much headroom, so a slightly bigger next day reuses it

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

    Per day: delta-rs reads the day (`read_day`'s columns, rows in customer order) into ONE reused
    host buffer (pinned when the device is CUDA; it grows when a day is bigger, with some headroom,
    and is reused otherwise),
    which is copied to a fresh device buffer in one `non_blocking` transfer on a side stream. While
    the current day is trained on, a background thread (one worker) reads and transfers the next,
    so the device holds at most two days (R*N*5 + M*9 bytes each) plus the batches; an error there
    is raised by the iterator when it reaches that day. Batches are gathered on the device by index
    (`actions[history_row[idx]]`): no per-sample Python, no collate, no torch DataLoader.

    On CPU the day is read straight into a fresh buffer per day (no pinned copy) and batches are
    the same gathers; that path is what the tests run.

    One iteration at a time per loader (they share the pinned buffer).

    Args:
        table_path: `training_examples_gold`: a local path, a cloud URI or a Unity Catalog name
            `catalog.schema.table` (see `read_day`).
        days: the days to train on, in order, 'yyyy-MM-dd'.
        batch_size: impressions per batch (customer-days per batch in `customer_day_batches`).
        epochs: passes over each day before the next day.
        device: "cuda" when available, else "cpu".
        seed: the shuffling seed.
        drop_last: skip each pass's last batch when it is short.
        version: the table version to read (e.g. the one `read_published` reads); when None, the
            latest version when an iteration starts, for all of its days.
        vocabulary: when given, item ids (shown items and actions) are replaced by their embedding
            indices once per day on the device (`ItemVocabulary.lookup`), so batches hold indices.
        storage_options: delta-rs storage options (credentials, region); for `uc://` see `resolve_location`.
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
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if epochs < 0:
            raise ValueError(f"epochs must be at least 0, got {epochs}")
        if isinstance(days, str):
            raise TypeError("days must be a sequence of 'yyyy-MM-dd' strings, not one string")
        self.table_path = table_uri(table_path)
        self.days = list(days)
        self.batch_size = batch_size
        self.epochs = epochs
        self.device = torch.device(device if device is not None else _default_device())
        self.seed = seed
        self.drop_last = drop_last
        self.version = version
        self.vocabulary = vocabulary
        self.storage_options = storage_options
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
            version = (
                self.version if self.version is not None else latest_version(self.table_path, self.storage_options)
            )
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
        arrow_day = read_arrow_day(self.table_path, day, version, self.storage_options)
        layout, nbytes = day_layout(arrow_day.rows, arrow_day.history_length, arrow_day.impression_count)
        host = self._host_buffer(nbytes)
        host_bytes = host[:nbytes].numpy()
        fill_host_day(
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
