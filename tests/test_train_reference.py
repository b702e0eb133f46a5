"""The reference training script runs on CPU over a gold day and learns something on an easy label."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from benchmarks.loader import DAY, generate_day  # noqa: E402
from carousel.train_reference import ModelConfig, ReferenceModel, main  # noqa: E402


def test_the_model_scores_every_impression_even_without_history():
    model = ReferenceModel(ModelConfig(history_length=6, item_buckets=64, d_model=16, heads=2, feedforward=32))
    actions = torch.tensor([[5, 4, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.int32)
    types = (actions != 0).to(torch.int8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.tensor([3, 9], dtype=torch.int32), actions, types)
    assert logits.shape == (2,) and torch.isfinite(logits).all()


def test_main_trains_a_few_steps_on_a_day_and_reports_throughput(tmp_path):
    generate_day(str(tmp_path / "gold"), customer_days=300, history_length=16, shown_per_day=8, seed=3)
    result = main(
        ["--table", str(tmp_path / "gold"), "--days", DAY, "--batch-size", "256", "--max-steps", "4", "--device", "cpu"]
    )
    assert result["steps"] == 4
    assert result["sequences"] == 4 * 256
    assert result["sequences_per_second"] > 0 and math.isfinite(result["loss"])
    assert math.isnan(result["gpu_busy_fraction"])  # measured on CUDA only
