"""What one measured step cost: wall time, shuffle and spill bytes (Spark's status API), memory peaks, output bytes."""

from __future__ import annotations

import json
import os
import resource
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from pyspark.sql import SparkSession

MEASURING_CONF = {
    # The status API behind the UI is where stage metrics and executor memory peaks are read.
    "spark.ui.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.executor.metrics.pollingInterval": "500ms",
    "spark.executor.processTreeMetrics.enabled": "true",
}

_STAGE_SUMS = {
    "shuffle_read_bytes": "shuffleReadBytes",
    "shuffle_write_bytes": "shuffleWriteBytes",
    "input_bytes": "inputBytes",
    "spill_memory_bytes": "memoryBytesSpilled",
    "spill_disk_bytes": "diskBytesSpilled",
    "task_seconds": "executorRunTime",
}


@dataclass
class StepCost:
    """The cost of one measured step; byte counts summed over the stages that ran inside it."""

    seconds: float = 0.0
    stages: int = 0
    shuffle_read_bytes: int = 0
    shuffle_write_bytes: int = 0
    input_bytes: int = 0
    spill_memory_bytes: int = 0
    spill_disk_bytes: int = 0
    task_seconds: float = 0.0
    output_bytes: int = 0
    extra: dict = field(default_factory=dict)


def _api(spark: SparkSession, path: str) -> list[dict]:
    base = spark.sparkContext.uiWebUrl
    if not base:
        raise RuntimeError("the Spark UI is off: start the session with MEASURING_CONF to read stage metrics")
    url = f"{base}/api/v1/applications/{spark.sparkContext.applicationId}/{path}"
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def _finished_stages(spark: SparkSession) -> dict[tuple[int, int], dict]:
    stages = _api(spark, "stages?status=complete") + _api(spark, "stages?status=failed")
    return {(stage["stageId"], stage["attemptId"]): stage for stage in stages}


def directory_bytes(path: str) -> int:
    """Bytes of every file under `path` (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


@contextmanager
def measured(spark: SparkSession, output_dir: str | None = None) -> Iterator[StepCost]:
    """Time the body and sum the metrics of the Spark stages it ran; `output_dir`'s size is taken after it."""
    before = set(_finished_stages(spark))
    cost = StepCost()
    started = time.perf_counter()
    yield cost
    cost.seconds = round(time.perf_counter() - started, 2)
    # Stage metrics reach the status store through the listener bus, a moment after the job ends.
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty()
    new = [stage for key, stage in _finished_stages(spark).items() if key not in before]
    cost.stages = len(new)
    for name, api_name in _STAGE_SUMS.items():
        setattr(cost, name, sum(stage.get(api_name, 0) for stage in new))
    cost.task_seconds = round(cost.task_seconds / 1000.0, 1)
    if output_dir:
        cost.output_bytes = directory_bytes(output_dir)


def memory_peaks(spark: SparkSession) -> dict[str, int]:
    """Peak bytes of the JVM heap (Spark's executor metrics), the JVM's resident set and this Python process."""
    peaks: dict[str, int] = {}
    for executor in _api(spark, "allexecutors"):
        memory = executor.get("peakMemoryMetrics") or {}
        peaks["jvm_heap_peak_bytes"] = max(peaks.get("jvm_heap_peak_bytes", 0), memory.get("JVMHeapMemory", 0))
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peaks["jvm_rss_peak_bytes"] = int(line.split()[1]) * 1024
    peaks["python_rss_peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return peaks


def as_record(cost: StepCost) -> dict:
    """A StepCost as a flat dict for the results file."""
    record = asdict(cost)
    record.update(record.pop("extra"))
    return record
