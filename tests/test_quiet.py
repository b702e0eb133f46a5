"""A command's own lines stay on the terminal; Spark's, Ivy's and spark-pipelines' output goes to a log file."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from types import SimpleNamespace

from carousel import progress
from carousel.cli import _spark_log, parse_args
from carousel.spark import child_output_to


def test_a_child_started_inside_writes_to_the_log_file_and_this_process_keeps_its_output(tmp_path, capfd):
    log_file = tmp_path / "logs" / "spark.log"
    child = "import sys; print('child out', flush=True); print('child err', file=sys.stderr)"
    with child_output_to(log_file):
        subprocess.run([sys.executable, "-c", child], check=True)
    print("after")
    captured = capfd.readouterr()
    assert log_file.read_text().splitlines() == ["child out", "child err"]
    assert (captured.out, captured.err) == ("after\n", "")


def test_each_command_names_its_log_file_under_its_own_folder():
    assert _spark_log(parse_args(["pipeline", "--work-dir", "w"])) == "w/logs/spark.log"
    assert _spark_log(parse_args(["build", "--out", "g"])) == "g/logs/spark.log"
    assert _spark_log(parse_args(["train", "--mlflow-dir", "m"])) == "m/logs/spark.log"
    generated = _spark_log(parse_args(["generate", "--out", "/data/raw"]))
    assert generated == "/data/logs/spark.log"  # beside the raw data, not among its tables


class _Tracker:
    """Two running stages, 3 of 8 and 1 of 2 tasks done; sets `asked` on the second poll."""

    def __init__(self) -> None:
        self.asked, self.polls = threading.Event(), 0

    def getActiveStageIds(self):  # noqa: N802 - Spark's name
        self.polls += 1
        if self.polls == 2:
            self.asked.set()
        return [4, 5]

    def getStageInfo(self, stage):  # noqa: N802 - Spark's name
        return {
            4: SimpleNamespace(numTasks=8, numCompletedTasks=3),
            5: SimpleNamespace(numTasks=2, numCompletedTasks=1),
        }[stage]


def test_a_long_stage_logs_the_share_of_its_running_tasks_done(monkeypatch, caplog):
    tracker = _Tracker()
    spark = SimpleNamespace(sparkContext=SimpleNamespace(statusTracker=lambda: tracker))
    monkeypatch.setattr(progress, "PROGRESS_EVERY_S", 0.001)
    with caplog.at_level(logging.INFO, logger="carousel"), progress.stage("generate clicks", spark=spark):
        assert tracker.asked.wait(timeout=30)
    assert "generate clicks: 40% of the running tasks done (4 of 10)" in caplog.messages
    assert caplog.messages[-1].startswith("generate clicks done in")
