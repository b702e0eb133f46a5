"""Reruns replace instead of appending, and a build killed while writing gold leaves the previous gold intact."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carousel.batch import build
from carousel.config import HistoryConfig
from carousel.contract import CUSTOMER_HISTORIES_GOLD, TRAINING_EXAMPLES_GOLD
from carousel.local.demo_data import generate
from carousel.storage import RAW_SOURCES
from carousel.synthetic import SyntheticConfig

pytestmark = pytest.mark.local_only  # kills local processes mid-write

SMALL = SyntheticConfig(customers=60, window_days=3, history_days=15, actions_per_customer_year=3000, dirty_rate=0.05)
GOLD = (CUSTOMER_HISTORIES_GOLD.name, TRAINING_EXAMPLES_GOLD.name)
CONFIG = HistoryConfig(history_length=6, lookback_days=10)


@pytest.fixture(scope="module")
def raw_sources(spark, tmp_path_factory) -> dict[str, str]:
    raw = tmp_path_factory.mktemp("recovery") / "raw"
    generate(spark, str(raw), SMALL)
    return {name: str(raw / name) for name in RAW_SOURCES}


@pytest.fixture(scope="module")
def full_build(spark, raw_sources, tmp_path_factory) -> dict[str, list[tuple]]:
    """The gold rows of one build of every day with `CONFIG`: what any sequence of runs must end with."""
    out = tmp_path_factory.mktemp("full") / "gold"
    build(spark, raw_sources, str(out), CONFIG)
    return _snapshot(spark, out)


def _days() -> list[str]:
    return [(SMALL.window_start + dt.timedelta(days=offset)).isoformat() for offset in range(SMALL.window_days)]


def _snapshot(spark, out: Path) -> dict[str, list[tuple]]:
    """Every gold row, arrays as lists, sorted: what a reader of the gold tables sees."""
    snapshot = {}
    for table in GOLD:
        rows = spark.read.format("delta").load(str(out / table)).collect()
        snapshot[table] = sorted(tuple(list(v) if isinstance(v, list) else v for v in row) for row in rows)
    return snapshot


def _commits(out: Path, table: str) -> list[str]:
    return sorted(p.name for p in (out / table / "_delta_log").glob("*.json"))


def _data_files(out: Path, table: str) -> set[str]:
    return {str(p) for p in (out / table).rglob("*.parquet")}


@pytest.mark.slow
def test_rerunning_windows_in_any_order_gives_the_full_build(spark, raw_sources, full_build, tmp_path):
    first, second, third = _days()
    assert {row[0] for row in full_build[CUSTOMER_HISTORIES_GOLD.name]} == {first, second, third}
    pieces = tmp_path / "pieces"
    build(spark, raw_sources, str(pieces), CONFIG, from_dt=second, to_dt=third)
    build(spark, raw_sources, str(pieces), CONFIG, from_dt=first, to_dt=first)
    assert _snapshot(spark, pieces) == full_build  # the second window left the first one's days alone
    commits = _commits(pieces, CUSTOMER_HISTORIES_GOLD.name)
    build(spark, raw_sources, str(pieces), CONFIG, from_dt=first, to_dt=first)
    assert _snapshot(spark, pieces) == full_build  # rerun: the same rows, not twice the rows
    assert len(_commits(pieces, CUSTOMER_HISTORIES_GOLD.name)) == len(commits) + 1  # one atomic commit per run


def _build_command(raw_dir: str, out: Path, history_length: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "carousel.cli",
        "build",
        "--input",
        raw_dir,
        "--out",
        str(out),
        "--history-length",
        str(history_length),
        "--lookback-days",
        str(CONFIG.lookback_days),
        "--shuffle-partitions",
        "16",
        "--driver-memory",
        "1g",
    ]


def _kill_once_gold_files_appear(process: subprocess.Popen, out: Path, before: set[str], limit_s: float) -> set[str]:
    """SIGKILL the build's process group as soon as it has written a gold data file; return the new files."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and process.poll() is None:
        new_files = _data_files(out, CUSTOMER_HISTORIES_GOLD.name) - before
        if new_files:
            os.killpg(process.pid, signal.SIGKILL)  # the JVM too: it is in the same group
            process.wait()
            return new_files
        time.sleep(0.005)  # polling the file system, not waiting for time to pass
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    pytest.fail(f"the build exited ({process.returncode}) or timed out before writing any gold file")


@pytest.mark.slow
def test_a_build_killed_while_writing_gold_leaves_the_previous_gold_and_the_next_run_completes(
    spark, raw_sources, full_build, tmp_path
):
    out = tmp_path / "gold"
    raw_dir = str(Path(raw_sources["clicks"]).parent)
    build(spark, raw_sources, str(out), HistoryConfig(history_length=3, lookback_days=CONFIG.lookback_days))
    previous = _snapshot(spark, out)
    commits = {table: _commits(out, table) for table in GOLD}
    files_before = _data_files(out, CUSTOMER_HISTORIES_GOLD.name)

    # The killed run would change every history (N 3 -> 6), so an unchanged table means an untouched one.
    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    with subprocess.Popen(
        _build_command(raw_dir, out, CONFIG.history_length),
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as process:
        orphans = _kill_once_gold_files_appear(process, out, files_before, limit_s=240)

    assert orphans, "the kill came before the gold write started"
    assert {table: _commits(out, table) for table in GOLD} == commits  # killed before its commit
    assert _snapshot(spark, out) == previous  # readable, and unchanged

    build(spark, raw_sources, str(out), CONFIG)
    assert _snapshot(spark, out) == full_build
    metrics = spark.read.format("delta").load(str(out / "run_metrics"))
    # The killed run could not record itself; the two finished ones did.
    assert metrics.select("run_id").distinct().count() == 2
