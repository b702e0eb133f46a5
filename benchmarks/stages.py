"""Where one race case spends its time: each Spark stage's wall, task and CPU seconds, shuffle and spill.

    python benchmarks/stages.py --scale race-100k --case project-per-customer-day [--settings defaults] [--plan]

Runs the case (a project or floor case of `benchmarks/race.py`) once in this process on the
race data, writes it to the `noop` sink and prints one line per stage, in stage order; `--plan`
adds the final adaptive plan. A profiling aid: the timings that count come from `race.py run`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from benchmarks import harness, race_cases, race_data, race_measure  # noqa: E402

_MIB = 1 << 20


def _instant(text: str) -> dt.datetime:
    return dt.datetime.strptime(text[:23], "%Y-%m-%dT%H:%M:%S.%f")


def stage_line(stage: dict) -> str:
    """A stage of Spark's status API (`/stages`) as a line: wall from first task to completion, sums over tasks."""
    started = stage.get("firstTaskLaunchedTime")
    wall = (_instant(stage["completionTime"]) - _instant(started)).total_seconds() if started else 0.0
    return (
        f"stage {stage['stageId']:>3}  tasks {stage['numTasks']:>4}  wall {wall:6.1f} s"
        f"  task {stage['executorRunTime'] / 1000:6.1f} s  cpu {stage['executorCpuTime'] / 1e9:6.1f} s"
        f"  shuffle write {stage['shuffleWriteBytes'] / _MIB:7.0f} MiB"
        f"  read {stage['shuffleReadBytes'] / _MIB:7.0f} MiB"
        f"  spill {stage['diskBytesSpilled'] / _MIB:5.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", required=True, choices=sorted(race_cases.SCALES))
    parser.add_argument("--case", required=True, choices=[*race_cases.PROJECT_CASES, *race_cases.FLOOR_CASES])
    parser.add_argument("--settings", default="defaults", choices=race_cases.SETTINGS)
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench")
    parser.add_argument("--driver-memory", default=race_cases.DEFAULT_DRIVER_MEMORY)
    parser.add_argument("--plan", action="store_true", help="print the final adaptive plan too")
    args = parser.parse_args(argv)

    from benchmarks.metrics import _api

    race_data.ensure_data(args.data_dir, args.scale, args.driver_memory)
    spark = race_measure.project_session(args.settings, args.driver_memory, None, f"stages {args.case}")
    raw = race_data.read_raw(spark, harness.raw_dir(args.data_dir, args.scale))
    frame = race_measure.case_frame(args.case, raw, race_cases.window_start(race_cases.SCALES[args.scale], None))
    started = time.perf_counter()
    frame.write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - started
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty()
    print(f"{args.scale} {args.settings} {args.case}: {seconds:.1f} s")
    for stage in sorted(_api(spark, "stages?status=complete"), key=lambda stage: stage["stageId"]):
        print(stage_line(stage))
    if args.plan:
        executions = _api(spark, "sql?details=true&planDescription=true")
        print(json.dumps(executions[-1].get("planDescription", ""))[1:-1].replace("\\n", "\n"))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
