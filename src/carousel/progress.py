"""What a long stage tells the user: a line at its start, one at its end with its seconds, its Spark tasks between."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession

log = logging.getLogger("carousel")

PROGRESS_EVERY_S = 10.0


@contextmanager
def stage(name: str, seconds: dict[str, float] | None = None, spark: SparkSession | None = None) -> Iterator[dict]:
    """Log a stage's start, and its end with seconds and whatever the body puts in the yielded dict.

    With `seconds`, the stage's duration is also stored there under `name`. With `spark`, a long
    stage also logs how far its running Spark tasks have got, every `PROGRESS_EVERY_S` seconds
    (where the session exposes its tasks: not over Spark Connect).
    """
    facts: dict = {}
    log.info("%s ...", name)
    started = time.perf_counter()
    tracker = _status_tracker(spark) if spark is not None else None
    ticker = _TaskProgress(tracker, name) if tracker is not None else None
    if ticker:
        ticker.start()
    try:
        yield facts
    finally:
        if ticker:
            ticker.stop()
    elapsed = time.perf_counter() - started
    if seconds is not None:
        seconds[name] = elapsed
    details = ", ".join(
        f"{key}={value:,}" if isinstance(value, int) else f"{key}={value}" for key, value in facts.items()
    )
    log.info("%s done in %.1f s%s", name, elapsed, f" ({details})" if details else "")


def _status_tracker(spark: SparkSession) -> Any | None:
    """The session's Spark status tracker, or None where it has none to give (Spark Connect has no SparkContext)."""
    try:
        return spark.sparkContext.statusTracker()
    except Exception:  # Connect raises its own not-implemented error; a shared cluster may refuse the JVM call
        return None


class _TaskProgress(threading.Thread):
    """Logs the share of finished tasks of the running Spark stages, until stopped."""

    def __init__(self, tracker: Any, name: str) -> None:
        super().__init__(name=f"progress of {name}", daemon=True)
        self._tracker = tracker
        self._stage = name
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(PROGRESS_EVERY_S):
            running = [self._tracker.getStageInfo(stage) for stage in self._tracker.getActiveStageIds()]
            tasks = sum(info.numTasks for info in running if info)
            done = sum(info.numCompletedTasks for info in running if info)
            if tasks:
                log.info("%s: %d%% of the running tasks done (%d of %d)", self._stage, 100 * done // tasks, done, tasks)

    def stop(self) -> None:
        self._stopped.set()
        self.join()
