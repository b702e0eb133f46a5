"""A reference training loop over the gold tables: a small transformer fed by `carousel.loader.DayLoader`.

    python -m carousel.loader.reference --table data/pipeline/warehouse/training_examples_gold \\
        --days 2025-06-29 2025-06-30 --epochs 2 --batch-size 4096

It is the yardstick for the loader, not a model to ship: 2 encoder layers, d = 128, bf16 autocast,
`scaled_dot_product_attention`. Each impression's history (item ids and action types, a learned
position per slot) is encoded with a [CLS] slot in front; the shown item's embedding dotted with
the [CLS] output is the logit of `is_order`. Item ids are hashed into `--item-buckets` embedding
rows, so no vocabulary is needed (0 stays padding).

It logs, per day, the sequences per second, and with `--profile-steps K` (CUDA only) the GPU busy
fraction over K steps after `--profile-warmup` steps: the summed kernel time from `torch.profiler`
over the wall time.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from carousel.console import run_command
from carousel.loader import Batch, CustomerDayBatch, DayLoader, ItemVocabulary

log = logging.getLogger("carousel")

ACTION_TYPES = 4  # 0 padding, 1 click, 2 add-to-cart, 3 order


@dataclass(frozen=True)
class ModelConfig:
    """The reference model's size."""

    history_length: int = 1000
    item_buckets: int = 1 << 20
    hashed: bool = True  # False: item ids are already embedding indices below item_buckets (a vocabulary)
    d_model: int = 128
    heads: int = 4
    layers: int = 2
    feedforward: int = 512
    dropout: float = 0.0


class EncoderBlock(nn.Module):
    """Pre-norm self-attention + feed-forward, with `scaled_dot_product_attention` (fused kernels on the GPU)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.attention_norm = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.feedforward_norm = nn.LayerNorm(config.d_model)
        self.feedforward = nn.Sequential(
            nn.Linear(config.d_model, config.feedforward), nn.GELU(), nn.Linear(config.feedforward, config.d_model)
        )

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.attention_norm(x)).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        x = x + self.out(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.feedforward(self.feedforward_norm(x))


class ReferenceModel(nn.Module):
    """Scores a shown item against its customer's history: one logit of `is_order` per impression."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.items = nn.Embedding(config.item_buckets, config.d_model, padding_idx=0)
        self.types = nn.Embedding(ACTION_TYPES, config.d_model)
        self.positions = nn.Embedding(config.history_length + 1, config.d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.d_model))
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.d_model)

    def bucket(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Item id -> embedding row: 0 stays 0; others hash into 1..item_buckets-1, or are indices already."""
        ids = item_ids.long()
        if not self.config.hashed:
            return ids
        return torch.where(ids == 0, ids, 1 + torch.remainder(ids * 2654435761, self.config.item_buckets - 1))

    def forward(self, impressions: torch.Tensor, actions: torch.Tensor, action_types: torch.Tensor) -> torch.Tensor:
        """One logit per row: row i's shown item against row i's history."""
        return self.score(self.encode(actions, action_types), impressions)

    def score(self, encoded: torch.Tensor, impressions: torch.Tensor) -> torch.Tensor:
        """Logits of shown items against encoded histories, [m] from [m, d] and [m]."""
        return (encoded * self.items(self.bucket(impressions))).sum(-1)

    def encode(self, actions: torch.Tensor, action_types: torch.Tensor) -> torch.Tensor:
        """The [CLS] output per history, [b, d]: computed once per customer-day with `customer_day_batches`."""
        batch, length = actions.shape
        slots = torch.arange(length + 1, device=actions.device)
        history = self.items(self.bucket(actions)) + self.types(action_types.long())
        x = torch.cat([self.cls.expand(batch, 1, -1), history], dim=1) + self.positions(slots)
        # The [CLS] slot is always attended to, so a customer without history still gets a finite score.
        keep = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=actions.device), action_types != 0], dim=1)
        for block in self.blocks:
            x = block(x, keep)
        return self.norm(x[:, 0])


def _busy_fraction(profiler: torch.profiler.profile, wall_seconds: float) -> float:
    kernel_us = sum(event.self_device_time_total for event in profiler.key_averages())
    return kernel_us / 1e6 / wall_seconds if wall_seconds > 0 else float("nan")


# Long on purpose: the reference training loop, read as a data scientist reads one.
def train(
    loader: DayLoader,
    config: ModelConfig,
    *,
    learning_rate: float = 1e-3,
    max_steps: int | None = None,
    profile_steps: int = 0,
    profile_warmup: int | None = None,
    per_customer_day: bool = False,
    rows_per_batch: int | None = None,
) -> dict[str, float]:
    """Train the reference model on the loader's batches; return the last loss, sequences per second and GPU busy.

    The model's history length is the loader's N, read off the first batch. On CUDA with
    `profile_steps` K, the GPU busy fraction is measured over steps [W, W + K), W =
    `profile_warmup` (default K, which leaves compilation and the allocator's first growth out),
    or up to the last step when the batches run out first; `profiled_sequences_per_second` is the
    throughput over that window (warm, without the first day's read). Stopping the profiler (it
    collects the trace) is left out of every time.

    With `per_customer_day`, batches come from `loader.customer_day_batches(rows_per_batch)`: each
    history is encoded once and scored against all of its customer-day's shown items, the lever
    the layout offers. Sequences per second count scored impressions either way.
    """
    device = torch.device(loader.device)
    model = optimizer = None
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    steps, sequences, last_loss, busy, profiled_steps, profiled_sequences = 0, 0, math.nan, math.nan, 0, 0
    profiled_seconds = math.nan
    started = time.perf_counter()
    profiler = None
    warmup = profile_steps if profile_warmup is None else profile_warmup
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if profile_steps and device.type == "cuda":
        profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])
    day_started, day_sequences, current_day = started, 0, None
    batches = loader.customer_day_batches(rows_per_batch) if per_customer_day else iter(loader)
    for batch in batches:
        if model is None:
            model = ReferenceModel(replace(config, history_length=batch.actions.shape[1])).to(device)
            optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
        if batch.day != current_day:
            if current_day is not None:
                _log_day(current_day, day_sequences, time.perf_counter() - day_started)
            current_day, day_started, day_sequences = batch.day, time.perf_counter(), 0
        if profiler is not None and steps == warmup:
            torch.cuda.synchronize()
            profiler.start()
            profiled_from, profiled_steps, profiled_sequences = time.perf_counter(), 0, 0
        last_loss = _step(model, optimizer, autocast, batch)
        steps, sequences, day_sequences = steps + 1, sequences + len(batch.labels), day_sequences + len(batch.labels)
        if profiler is not None and steps > warmup:
            profiled_steps, profiled_sequences = profiled_steps + 1, profiled_sequences + len(batch.labels)
            if profiled_steps == profile_steps:
                busy, profiled_seconds, stopping = _stop_profiler(profiler, profiled_from, profiled_steps)
                started, day_started, profiler = started + stopping, day_started + stopping, None
        if max_steps is not None and steps >= max_steps:
            break
    if profiler is not None and profiled_steps:  # the batches ran out inside the window
        busy, profiled_seconds, stopping = _stop_profiler(profiler, profiled_from, profiled_steps)
        started, day_started = started + stopping, day_started + stopping
    if device.type == "cuda":
        torch.cuda.synchronize()
    if current_day is not None:
        _log_day(current_day, day_sequences, time.perf_counter() - day_started)
    seconds = time.perf_counter() - started
    return {
        "steps": steps,
        "sequences": sequences,
        "sequences_per_second": sequences / seconds if seconds > 0 else math.nan,
        "loss": float(last_loss),
        "gpu_busy_fraction": busy,
        "profiled_steps": profiled_steps,
        "profiled_sequences_per_second": profiled_sequences / profiled_seconds if profiled_steps else math.nan,
        "peak_device_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else math.nan,
    }


def _stop_profiler(
    profiler: torch.profiler.profile, profiled_from: float, profiled_steps: int
) -> tuple[float, float, float]:
    """Stop profiling; return the GPU busy fraction, the window's wall seconds and the seconds stopping took.

    The wall time ends before `stop()`, which collects the trace (seconds for a long window): that
    time is the profiler's, not the training loop's, and counting it would understate busy.
    """
    torch.cuda.synchronize()
    wall_seconds = time.perf_counter() - profiled_from
    stopping = time.perf_counter()
    profiler.stop()
    busy = _busy_fraction(profiler, wall_seconds)
    log.info("GPU busy %.1f%% over %d steps (%.1f s)", 100 * busy, profiled_steps, wall_seconds)
    return busy, wall_seconds, time.perf_counter() - stopping


def _step(
    model: ReferenceModel, optimizer: torch.optim.Optimizer, autocast, batch: Batch | CustomerDayBatch
) -> torch.Tensor:
    """One optimiser step; the loss stays a device tensor, so the step does not wait for the GPU."""
    with autocast:
        if isinstance(batch, CustomerDayBatch):
            encoded = model.encode(batch.actions, batch.action_types)
            logits = model.score(encoded.index_select(0, batch.impression_row), batch.impressions)
        else:
            logits = model(batch.impressions, batch.actions, batch.action_types)
    loss = F.binary_cross_entropy_with_logits(logits.float(), batch.labels.float())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _log_day(day: str, sequences: int, seconds: float) -> None:
    log.info("day %s: %s sequences in %.1f s (%s/s)", day, f"{sequences:,}", seconds, f"{sequences / seconds:,.0f}")


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Entry point of `python -m carousel.loader.reference`."""
    parser = argparse.ArgumentParser(prog="python -m carousel.loader.reference", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--table", required=True, help="training_examples_gold: a Delta table's path or URI, or catalog.schema.table"
    )
    parser.add_argument("--days", nargs="+", required=True, help="days to train on, in order, yyyy-MM-dd")
    parser.add_argument("--epochs", type=int, default=1, help="passes over each day (default 1)")
    parser.add_argument("--batch-size", type=int, default=4096, help="impressions per batch (default 4096)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="shuffling and initialisation seed (default 0)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument(
        "--per-customer-day",
        action="store_true",
        help="encode each history once per customer-day and score its shown items (--batch-size customer-days)",
    )
    parser.add_argument("--profile-steps", type=int, default=0, help="CUDA: measure GPU busy over K steps")
    parser.add_argument("--profile-warmup", type=int, default=None, help="steps before the measured ones (default K)")
    parser.add_argument("--item-buckets", type=int, default=1 << 20, help="hashed item embedding rows (default 2^20)")
    parser.add_argument(
        "--vocabulary", help="item_vocabulary_gold (as --table): map item ids to its indices instead of hashing"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run_command(parser.prog, lambda: _train_from_args(args))


def _train_from_args(args: argparse.Namespace) -> dict[str, float]:
    """Build the loader and the model the arguments ask for, train, log and return the result."""
    torch.manual_seed(args.seed)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    vocabulary = ItemVocabulary.read(args.vocabulary) if args.vocabulary else None
    loader = DayLoader(
        args.table,
        args.days,
        batch_size=args.batch_size,
        epochs=args.epochs,
        device=device,
        seed=args.seed,
        vocabulary=vocabulary,
    )
    config = (
        ModelConfig(item_buckets=vocabulary.num_embeddings, hashed=False)
        if vocabulary
        else ModelConfig(item_buckets=args.item_buckets)
    )
    result = train(
        loader,
        config,
        max_steps=args.max_steps,
        profile_steps=args.profile_steps,
        profile_warmup=args.profile_warmup,
        per_customer_day=args.per_customer_day,
    )
    if vocabulary:
        result["vocabulary_version"] = vocabulary.version  # what the model's indices mean
    log.info("trained %s", ", ".join(f"{key}={value:,.4g}" for key, value in result.items()))
    return result


if __name__ == "__main__":
    main()
