"""Helpers of the end-to-end pipeline tests: snapshots, a `carousel pipeline` killed at a chosen moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from carousel.local.runner import read_published
from carousel.local.spark_pipelines import LocalPipeline
from carousel.local.summary import STORED_TABLES
from carousel.pipeline.datasets import ACTIONS_SILVER, BRONZE, QUARANTINE

STREAMED = (*BRONZE.values(), *QUARANTINE.values(), ACTIONS_SILVER)


def rows_of(frame) -> list[tuple]:
    """The rows of `frame` as tuples, in a fixed order."""
    return sorted(map(tuple, frame.collect()), key=repr)


def snapshot(spark, pipeline: LocalPipeline) -> dict[str, list[tuple]]:
    """Every stored table's rows as they are now."""
    return {table: rows_of(spark.read.format("delta").load(str(pipeline.table_path(table)))) for table in STORED_TABLES}


def without_run_id(rows: list[tuple], frame_columns: list[str]) -> list[tuple]:
    """`rows` of a table with columns `frame_columns`, its run_id left out."""
    keep = [index for index, name in enumerate(frame_columns) if name != "run_id"]
    return sorted((tuple(row[index] for index in keep) for row in rows), key=repr)


def _commits(pipeline: LocalPipeline) -> set[str]:
    return {
        f"{table}/{name}"
        for table in STREAMED
        if (pipeline.table_path(table) / "_delta_log").is_dir()
        for name in os.listdir(pipeline.table_path(table) / "_delta_log")
        if name.endswith(".json")
    }


def killed_once_a_stream_commits(spark, pipeline: LocalPipeline, arguments: Sequence[str]) -> dict[str, list[tuple]]:
    """Run `carousel pipeline <arguments>`, kill its process group at its first streaming commit; what readers see."""
    before = _commits(pipeline)
    killed_when(pipeline, arguments, lambda: bool(_commits(pipeline) - before), "a stream committed")
    return {table: rows_of(read_published(spark, pipeline, table).drop("run_id")) for table in STORED_TABLES}


def killed_when(pipeline: LocalPipeline, arguments: Sequence[str], happened: Callable[[], bool], what: str) -> None:
    """Run `carousel pipeline <arguments>` and kill its whole process group as soon as `happened()` (`what`) holds."""
    command = [sys.executable, "-m", "carousel.cli", "pipeline", "--work-dir", str(pipeline.work_dir), *arguments]
    deadline = time.monotonic() + 300
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    ) as process:
        while process.poll() is None and time.monotonic() < deadline and not happened():
            time.sleep(0.002)  # polling the file system, not waiting for time to pass
        caught = happened()
        os.killpg(process.pid, signal.SIGKILL)  # the runner, spark-pipelines, its JVM and any Kafka broker
        process.wait()
    assert caught, f"the pipeline ended or timed out before {what}"
