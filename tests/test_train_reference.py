"""The reference training script runs on CPU over a gold day and learns something on an easy label."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from benchmarks.loader import DAY, generate, generate_day, run, table_days  # noqa: E402
from carousel.loader import read_day  # noqa: E402
from carousel.loader.reference import ModelConfig, ReferenceModel, main  # noqa: E402


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
        + ["--item-buckets", "4096"]
    )
    assert result["steps"] == 4
    assert result["sequences"] == 4 * 256
    assert result["sequences_per_second"] > 0 and math.isfinite(result["loss"])
    assert math.isnan(result["gpu_busy_fraction"])  # measured on CUDA only


def test_the_loader_benchmark_measures_every_step_and_trains_across_days(tmp_path):
    measured, trained = str(tmp_path / "measured"), str(tmp_path / "trained")
    generate(measured, customer_days=120, history_length=8, shown_per_day=6, seed=1)
    partitions = generate(trained, customer_days=40, history_length=8, shown_per_day=6, seed=2, days=2, workers=2)
    assert [partition.name for partition in partitions] == ["dt=2025-06-29", "dt=2025-06-30"]
    assert table_days(trained) == ["2025-06-29", "2025-06-30"]

    small = ModelConfig(item_buckets=1024, d_model=32, heads=2, feedforward=64)
    results = run(
        measured, 64, "cpu", train_table=trained, train_batch_sizes=[32], profile_warmup=0, model_config=small
    )

    assert [result["step"] for result in results] == ["read", "to_device", "gather", "gather_customer_days", "train"]
    read = results[0]
    assert (read["customer_days"], read["history_length"]) == (120, 8)
    # gather counts the two epochs after the first batch; customer-day batches hold every impression
    assert results[2]["sequences_per_second"] > 0 and results[3]["histories_per_second"] > 0
    impressions_trained = sum(len(read_day(trained, day).impressions) for day in table_days(trained))
    train_row = results[4]
    assert train_row["days"] == ["2025-06-29", "2025-06-30"] and train_row["sequences"] == impressions_trained
    assert train_row["steps"] == sum(
        -(-len(read_day(trained, day).impressions) // 32) for day in table_days(trained)
    )  # one epoch per day, a short last batch per day


def test_a_table_that_is_not_there_is_one_line_not_a_traceback(tmp_path):
    with pytest.raises(SystemExit, match=r"^python -m carousel.loader.reference: error: no Delta table at '.*nowhere'"):
        main(["--table", str(tmp_path / "nowhere"), "--days", DAY, "--device", "cpu"])


def test_the_training_side_imports_on_a_machine_without_spark():
    refuse_spark = textwrap.dedent(
        """
        import importlib.abc, sys

        class NoSpark(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("pyspark", "delta"):
                    raise ImportError("no Spark on this machine: " + name)

        sys.meta_path.insert(0, NoSpark())
        import carousel.loader, carousel.loader.reference, benchmarks.loader
        assert not any(name.split(".")[0] == "pyspark" for name in sys.modules)
        try:
            import carousel.examples
        except ImportError as error:
            assert "no Spark on this machine" in str(error)
        else:
            raise AssertionError("the guard let pyspark in")
        """
    )
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", refuse_spark], check=True, cwd=repo)


def test_encoding_once_per_customer_day_scores_like_one_history_per_impression():
    torch.manual_seed(0)
    model = ReferenceModel(ModelConfig(history_length=6, item_buckets=64, d_model=16, heads=2, feedforward=32))
    actions = torch.tensor([[5, 4, 0, 0, 0, 0], [7, 7, 2, 9, 1, 3]], dtype=torch.int32)
    types = (actions != 0).to(torch.int8)
    impressions = torch.tensor([3, 9, 4, 8, 2], dtype=torch.int32)
    impression_row = torch.tensor([0, 0, 1, 1, 1])  # customer-day 0 was shown 2 items, customer-day 1 three
    with torch.no_grad():
        once = model.score(model.encode(actions, types).index_select(0, impression_row), impressions)
        repeated = model(impressions, actions.index_select(0, impression_row), types.index_select(0, impression_row))
    torch.testing.assert_close(once, repeated)


def test_main_trains_per_customer_day_over_every_impression_of_the_day(tmp_path):
    generate_day(str(tmp_path / "gold"), customer_days=60, history_length=16, shown_per_day=8, seed=4)
    impressions = len(read_day(str(tmp_path / "gold"), DAY).impressions)
    args = ["--table", str(tmp_path / "gold"), "--days", DAY, "--batch-size", "16", "--device", "cpu"]
    result = main([*args, "--per-customer-day", "--item-buckets", "4096"])
    assert result["steps"] == 4  # 60 customer-days, 16 per batch
    assert result["sequences"] == impressions and math.isfinite(result["loss"])
