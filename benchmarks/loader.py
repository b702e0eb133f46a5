"""Loader benchmark: a synthetic gold day from disk to the device, gather throughput, and the training loop's GPU busy.

    python -m benchmarks.loader generate --out data/bench/loader --customer-days 1000000
    python -m benchmarks.loader generate --out data/bench/loader_days --customer-days 50000 --days 3
    python -m benchmarks.loader run --table data/bench/loader --train-table data/bench/loader_days \
        --device cuda --train-batch-sizes 1024 4096

`generate` writes days of `training_examples_gold` in the pipeline's layout (a Delta table
partitioned by `dt`, one row per customer-day, N actions each, about 10 shown items each) with
pyarrow and numpy, one process per Parquet file, then commits the files with deltalake's
`convert_to_deltalake`, so a million customer-days need no Spark. The last day is 2025-06-30.
`run` measures, on the table's last day:
- `read`: disk -> host arrays (`carousel.loader.read_day`), seconds and bytes (after dropping
  the page cache with `--drop-caches`, where the OS allows it);
- `to_device`: the first batch of a `DayLoader`, i.e. read + pinned copy + transfer;
- `gather`: sequences per second of two epochs of batches (B = --batch-size), synchronised;
- `gather_customer_days`: the same through `customer_day_batches` (one history per customer-day);
and, per `--train-batch-sizes` B, `train`: the reference model fed by a loader over every day of
`--train-table`, one epoch each, so the next day loads in the background while one trains:
sequences per second, peak device memory and, on CUDA, the GPU busy fraction (kernel time over
wall time, torch.profiler) from step `--profile-warmup` to the end.
Each result is one JSON line appended to `docs/loader_benchmarks.jsonl`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from carousel.loader import DayLoader, read_day, table_days
from carousel.loader.delta_table import DAY_COLUMN

if TYPE_CHECKING:
    from carousel.loader.reference import ModelConfig

DAY = "2025-06-30"
RESULTS = Path("docs/loader_benchmarks.jsonl")
ROWS_PER_FILE = 100_000
log = logging.getLogger("carousel")


def _write_file(
    path: Path, first_customer: int, rows: int, history_length: int, shown_per_day: int, seed: tuple[int, ...]
) -> None:
    """Write one Parquet file of `rows` synthetic customer-days (runs in a worker process)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    real = rng.integers(0, history_length + 1, rows)  # real actions per history, the rest padding
    slot = np.arange(history_length)[None, :]
    items = np.where(slot < real[:, None], rng.zipf(1.3, (rows, history_length)) % 2_000_000 + 1, 0)
    types = np.where(slot < real[:, None], rng.choice([1, 2, 3], (rows, history_length), p=[0.9, 0.09, 0.01]), 0)
    shown = rng.integers(max(1, shown_per_day - 5), shown_per_day + 6, rows)
    offsets = np.concatenate([[0], np.cumsum(shown)]).astype(np.int32)
    total = int(offsets[-1])
    flat_offsets = pa.array(np.arange(0, rows * history_length + 1, history_length, dtype=np.int32))
    table = pa.table(
        {
            "customer_id": pa.array(np.arange(first_customer, first_customer + rows, dtype=np.int32)),
            "actions": pa.ListArray.from_arrays(flat_offsets, pa.array(items.astype(np.int32).ravel())),
            "action_types": pa.ListArray.from_arrays(flat_offsets, pa.array(types.astype(np.int8).ravel())),
            "ranking_ids": pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(np.repeat(np.arange(rows), shown).astype(str))
            ),
            "positions": pa.ListArray.from_arrays(
                pa.array(offsets), pa.array((np.arange(total) - np.repeat(offsets[:-1], shown)).astype(np.int32))
            ),
            "item_ids": pa.ListArray.from_arrays(
                pa.array(offsets), pa.array((rng.zipf(1.3, total) % 2_000_000 + 1).astype(np.int32))
            ),
            "labels": pa.ListArray.from_arrays(pa.array(offsets), pa.array(rng.random(total) < 0.02)),
        }
    )
    pq.write_table(table, path)


def generate(
    out: str,
    customer_days: int,
    history_length: int,
    shown_per_day: int,
    seed: int,
    days: int = 1,
    workers: int | None = None,
) -> list[Path]:
    """Write `days` synthetic gold days ending on DAY as a new Delta table (the pipeline's layout); return partitions.

    Raises:
        FileExistsError: `out` exists and is not empty (the files are committed as a new table).
    """
    if Path(out).exists() and any(Path(out).iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; generate writes a new table there")
    last = dt.date.fromisoformat(DAY)
    partitions, jobs = [], []
    for day_index in range(days):
        partition = Path(out) / f"{DAY_COLUMN}={last - dt.timedelta(days=days - 1 - day_index)}"
        partition.mkdir(parents=True, exist_ok=True)
        partitions.append(partition)
        for start in range(0, customer_days, ROWS_PER_FILE):
            rows = min(ROWS_PER_FILE, customer_days - start)
            path = partition / f"part-{start // ROWS_PER_FILE:05d}.parquet"
            jobs.append((path, start + 1, rows, history_length, shown_per_day, (seed, day_index, start)))
    if len(jobs) == 1 or workers == 1:
        for job in jobs:
            _write_file(*job)
    else:
        with ProcessPoolExecutor(max_workers=min(len(jobs), workers or os.cpu_count() or 1)) as pool:
            for done in pool.map(_write_file, *zip(*jobs, strict=True)):
                del done
    from deltalake import Field, Schema, convert_to_deltalake

    convert_to_deltalake(out, partition_by=Schema([Field(DAY_COLUMN, "string")]), partition_strategy="hive")
    return partitions


def generate_day(out: str, customer_days: int, history_length: int, shown_per_day: int, seed: int) -> Path:
    """Write one synthetic gold day, DAY, as a new Delta table, in one process; return its partition directory."""
    return generate(out, customer_days, history_length, shown_per_day, seed, days=1, workers=1)[0]


def _drop_page_cache() -> bool:
    """Ask Linux to drop its page cache (root only), so the next read comes from the disk; True when it did."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# Long on purpose: one measured run, top to bottom: the warm-up, the timed epochs, the record.
def run(
    table: str,
    batch_size: int,
    device: str,
    train_table: str | None = None,
    train_batch_sizes: Sequence[int] = (),
    train_steps: int | None = None,
    profile_warmup: int = 20,
    drop_caches: bool = False,
    model_config: ModelConfig | None = None,
    train_modes: Sequence[str] = ("impression",),
) -> list[dict]:
    """Measure read, transfer and gather on the table's last day, then training on `train_table`; return the rows."""
    import torch

    results = []
    day = table_days(table)[-1]
    machine = {"device": device, "host": platform.node()}
    if device.startswith("cuda"):
        machine["gpu"] = torch.cuda.get_device_name()
    common = {"table": table, "day": day, "batch_size": batch_size, **machine}

    cold = _drop_page_cache() if drop_caches else False
    started = time.perf_counter()
    host = read_day(table, day)
    seconds = time.perf_counter() - started
    customer_days, history_length = host.actions.shape
    impressions = len(host.impressions)
    common.update(customer_days=customer_days, impressions=impressions, history_length=history_length)
    results.append({**common, "step": "read", "cold_page_cache": cold, "seconds": seconds, "bytes": host.nbytes})
    del host

    loader = DayLoader(table, [day], batch_size=batch_size, epochs=2, device=device, seed=0)
    started = time.perf_counter()
    iterator = iter(loader)
    next(iterator)
    _synchronize(device)
    results.append({**common, "step": "to_device", "seconds": time.perf_counter() - started})
    sequences, started = 0, time.perf_counter()
    for batch in iterator:  # the rest of epoch 0 and all of epoch 1
        sequences += len(batch.labels)
    _synchronize(device)
    seconds = time.perf_counter() - started
    results.append({**common, "step": "gather", "seconds": seconds, "sequences_per_second": sequences / seconds})
    del iterator, batch

    rows_per_batch = max(1, round(batch_size * customer_days / impressions))  # about B impressions per batch
    loader = DayLoader(table, [day], batch_size=rows_per_batch, epochs=2, device=device, seed=0)
    iterator = loader.customer_day_batches()
    next(iterator)
    sequences, histories, started = 0, 0, time.perf_counter()
    for batch in iterator:
        sequences, histories = sequences + len(batch.labels), histories + len(batch.actions)
    _synchronize(device)
    seconds = time.perf_counter() - started
    results.append(
        {
            **common,
            "step": "gather_customer_days",
            "rows_per_batch": rows_per_batch,
            "seconds": seconds,
            "sequences_per_second": sequences / seconds,
            "histories_per_second": histories / seconds,
        }
    )
    del iterator, batch, loader

    if train_batch_sizes:
        from carousel.loader import reference as train_reference

        train_table = train_table or table
        days = table_days(train_table)
        for train_batch_size, mode in [(size, mode) for size in train_batch_sizes for mode in train_modes]:
            loader = DayLoader(train_table, days, batch_size=train_batch_size, epochs=1, device=device, seed=0)
            # Customer-day batches of about the same number of scored impressions as B.
            per_day_rows = max(1, round(train_batch_size * customer_days / impressions))
            try:
                trained = train_reference.train(
                    loader,
                    model_config or train_reference.ModelConfig(),
                    max_steps=train_steps,
                    profile_steps=1 << 30,  # to the last step
                    profile_warmup=profile_warmup,
                    per_customer_day=mode == "customer_day",
                    rows_per_batch=per_day_rows,
                )
            except torch.cuda.OutOfMemoryError as error:
                trained = {"error": f"out of device memory: {str(error).splitlines()[0]}"}
            results.append(
                {
                    "table": train_table,
                    **machine,
                    "step": "train",
                    "mode": mode,
                    "days": days,
                    "batch_size": train_batch_size,
                    "profile_warmup": profile_warmup,
                    **trained,
                }
            )
            del loader
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    return results


# Long on purpose: the argparse declarations of every subcommand, one after another.
def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m benchmarks.loader`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loader", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate_parser = commands.add_parser("generate", help="write synthetic gold days")
    generate_parser.add_argument("--out", default="data/bench/loader")
    generate_parser.add_argument("--customer-days", type=int, default=1_000_000, help="customer-days per day")
    generate_parser.add_argument("--days", type=int, default=1, help="days, ending on " + DAY)
    generate_parser.add_argument("--history-length", type=int, default=1000)
    generate_parser.add_argument("--shown-per-day", type=int, default=10)
    generate_parser.add_argument("--seed", type=int, default=7)
    generate_parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    measure_parser = commands.add_parser("run", help="measure the loader (and the training loop)")
    measure_parser.add_argument("--table", default="data/bench/loader", help="the loader is measured on its last day")
    measure_parser.add_argument("--batch-size", type=int, default=4096)
    measure_parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    measure_parser.add_argument("--train-table", default=None, help="train over all its days (default: --table)")
    measure_parser.add_argument("--train-batch-sizes", type=int, nargs="*", default=[], help="one training run each")
    measure_parser.add_argument("--train-steps", type=int, default=None, help="stop each training run after these")
    measure_parser.add_argument(
        "--train-modes",
        nargs="+",
        choices=("impression", "customer_day"),
        default=["impression"],
        help="impression: a history per impression; customer_day: encoded once per customer-day",
    )
    measure_parser.add_argument("--profile-warmup", type=int, default=20, help="CUDA: steps before busy is measured")
    measure_parser.add_argument("--drop-caches", action="store_true", help="drop the page cache before the read (root)")
    measure_parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "generate":
        started = time.perf_counter()
        try:
            partitions = generate(
                args.out,
                args.customer_days,
                args.history_length,
                args.shown_per_day,
                args.seed,
                args.days,
                args.workers,
            )
        except FileExistsError as error:
            parser.exit(2, f"{error}\n")
        log.info("wrote %d day(s) under %s in %.1f s", len(partitions), args.out, time.perf_counter() - started)
        return
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    results = run(
        args.table,
        args.batch_size,
        device,
        train_table=args.train_table,
        train_batch_sizes=args.train_batch_sizes,
        train_steps=args.train_steps,
        profile_warmup=args.profile_warmup,
        drop_caches=args.drop_caches,
        train_modes=args.train_modes,
    )
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results, "a") as out:
        for result in results:
            print(json.dumps(result))
            out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
