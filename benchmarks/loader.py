"""Loader benchmark: a synthetic gold day from disk to the device, gather throughput, and the training loop's GPU busy.

    python -m benchmarks.loader generate --out data/bench/loader --customer-days 1000000
    python -m benchmarks.loader run --table data/bench/loader --device cuda --train-steps 200

`generate` writes one day of `training_examples_gold` in the pipeline's layout (Parquet under
`dt=2025-06-30/`, one row per customer-day, N actions each, about 10 shown items each) with
pyarrow and numpy, so a million customer-days need no Spark. `run` measures, on that day:
- `read`: disk -> host arrays (`carousel.training.read_day`), seconds and bytes;
- `to_device`: the first batch of a `DayLoader`, i.e. read + pinned copy + transfer;
- `gather`: sequences per second of one epoch of batches (B = --batch-size), synchronised;
- `train` (with --train-steps): the reference model fed by the loader, sequences per second and,
  on CUDA, the GPU busy fraction (kernel time over wall time, torch.profiler).
Each result is one JSON line appended to `docs/loader_benchmarks.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from carousel.training import DayLoader, read_day

DAY = "2025-06-30"
RESULTS = Path("docs/loader_benchmarks.jsonl")
log = logging.getLogger("carousel")


def generate_day(out: str, customer_days: int, history_length: int, shown_per_day: int, seed: int) -> Path:
    """Write one synthetic gold day (Parquet, the pipeline's column layout); return its partition directory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    partition = Path(out) / f"dt={DAY}"
    partition.mkdir(parents=True, exist_ok=True)
    rows_per_file = 100_000
    for start in range(0, customer_days, rows_per_file):
        rows = min(rows_per_file, customer_days - start)
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
                "customer_id": pa.array(np.arange(start + 1, start + rows + 1, dtype=np.int32)),
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
        pq.write_table(table, partition / f"part-{start // rows_per_file:05d}.parquet")
    return partition


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(table: str, batch_size: int, device: str, train_steps: int, profile_steps: int) -> list[dict]:
    """Measure read, transfer, gather and (optionally) training on the benchmark day; return the results."""
    import torch

    results = []
    common = {"table": table, "batch_size": batch_size, "device": device, "host": platform.node()}
    if device.startswith("cuda"):
        common["gpu"] = torch.cuda.get_device_name()

    started = time.perf_counter()
    host = read_day(table, DAY)
    seconds = time.perf_counter() - started
    customer_days, history_length = host.actions.shape
    impressions = len(host.impressions)
    common.update(customer_days=customer_days, impressions=impressions, history_length=history_length)
    results.append({**common, "step": "read", "seconds": seconds, "bytes": host.nbytes})
    del host

    loader = DayLoader(table, [DAY], batch_size=batch_size, epochs=2, device=device, seed=0)
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

    if train_steps:
        from carousel.train_reference import ModelConfig, train

        loader = DayLoader(table, [DAY], batch_size=batch_size, epochs=100, device=device, seed=0)
        trained = train(loader, ModelConfig(), max_steps=train_steps, profile_steps=profile_steps)
        results.append({**common, "step": "train", **trained})
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m benchmarks.loader`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loader", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write one synthetic gold day")
    generate.add_argument("--out", default="data/bench/loader")
    generate.add_argument("--customer-days", type=int, default=1_000_000)
    generate.add_argument("--history-length", type=int, default=1000)
    generate.add_argument("--shown-per-day", type=int, default=10)
    generate.add_argument("--seed", type=int, default=7)
    measure = commands.add_parser("run", help="measure the loader (and the training loop) on the day")
    measure.add_argument("--table", default="data/bench/loader")
    measure.add_argument("--batch-size", type=int, default=4096)
    measure.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    measure.add_argument("--train-steps", type=int, default=0, help="also train the reference model this many steps")
    measure.add_argument("--profile-steps", type=int, default=50, help="CUDA: GPU busy measured over this many steps")
    measure.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "generate":
        started = time.perf_counter()
        partition = generate_day(args.out, args.customer_days, args.history_length, args.shown_per_day, args.seed)
        log.info("wrote %s in %.1f s", partition, time.perf_counter() - started)
        return
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    results = run(args.table, args.batch_size, device, args.train_steps, args.profile_steps)
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results, "a") as out:
        for result in results:
            print(json.dumps(result))
            out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
