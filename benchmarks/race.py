"""Race: the project against the best public solution and the floors, on the same data, in one run.

    python benchmarks/race.py run --scale race-100k --competitor PATH [--settings defaults,cli] [--cases ...]
    python benchmarks/race.py check --scale race-tiny --competitor PATH   # do the two outputs agree?
    python benchmarks/race.py report                                      # the race section of docs/benchmarks.md

PATH is a checkout of github.com/onkolahmet/pyspark-coding-challenge. Its `build_training_inputs`
runs in its own virtual environment (`benchmarks/competitor.sh` makes it, with the PySpark the
checkout pins) through `benchmarks/competitor_driver.py`, which imports the checkout and never
this project; its code is never copied here.

Every case runs in its own process (a fresh JVM) and writes its result to Spark's `noop` sink,
so only the transformation is timed: the clock starts after the session is up and the raw
Parquet is opened, and stops when the noop write returns. Data is generated once per scale
under --data-dir (Parquet, by `carousel.synthetic`) and reused. Each case appends one JSON line
to --results.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (  # noqa: E402
    REPO,
    append_records,
    child_env,
)
from benchmarks.race_cases import CASES, DEFAULT_DRIVER_MEMORY, FLOOR_CASES, PROJECT_CASES, SCALES, SETTINGS, Case, plan  # noqa: E402
from benchmarks.race_check import run_check  # noqa: E402
from benchmarks.race_competitor import competitor_commit, competitor_env, competitor_request, ensure_competitor_venv  # noqa: E402
from benchmarks.race_data import ensure_data, generate  # noqa: E402
from benchmarks.race_measure import measure_case  # noqa: E402
from benchmarks.race_report import summary, write_report  # noqa: E402

log = logging.getLogger("race")


# ---------------------------------------------------------------------------------------------
# Running a plan


def case_command(case: Case, args: argparse.Namespace, record_out: Path) -> tuple[list[str], dict[str, str]]:
    """The command (and environment) that measures `case` in a fresh process."""
    if case.is_competitor:
        request = record_out.with_suffix(".request.json")
        request.write_text(json.dumps(competitor_request(case, args, record_out)))
        python = Path(args.competitor_venv) / "bin" / "python"
        return [str(python), str(REPO / "benchmarks" / "competitor_driver.py"), str(request)], competitor_env(
            Path(args.competitor_venv)
        )
    command = [sys.executable, str(Path(__file__).resolve()), "case", "--scale", case.scale]
    command += ["--settings", case.settings, "--kind", case.kind, "--data-dir", str(args.data_dir)]
    command += ["--driver-memory", args.driver_memory, "--record-out", str(record_out)]
    if case.impression_days:
        command += ["--impression-days", str(case.impression_days)]
    if args.shuffle_partitions:
        command += ["--shuffle-partitions", str(args.shuffle_partitions)]
    return command, child_env()


def make_record(case: Case, measured: dict, extra: dict | None = None) -> dict:
    """One results line: the case, its data, what the child measured, and where and when."""
    config = SCALES[case.scale]
    record = {
        "case": case.name,
        **dataclasses.asdict(case),
        "customers": config.customers,
        "window_days": config.window_days,
        "actions_per_customer_year": config.actions_per_customer_year,
        "heavy_customer_share": config.heavy_customer_share,
        **measured,
        **(extra or {}),
    }
    record.update(measured_on=dt.date.today().isoformat(), cpus=os.cpu_count(), machine=platform.machine())
    return record


def run_plan(args: argparse.Namespace) -> int:
    cases = plan(args.scale, args.settings, args.cases)
    extra: dict = {}
    if any(case.is_competitor for case in cases):
        ensure_competitor_venv(Path(args.competitor), Path(args.competitor_venv))
        extra["competitor_commit"] = competitor_commit(Path(args.competitor))
    ensure_data(args.data_dir, args.scale, args.driver_memory)
    failures, done = 0, []
    with tempfile.TemporaryDirectory(prefix="race-") as scratch:
        for number, case in enumerate(cases, 1):
            log.info("case %d/%d %s ...", number, len(cases), case.name)
            record_out = Path(scratch) / f"case-{number}.json"
            command, env = case_command(case, args, record_out)
            started = time.perf_counter()
            try:
                subprocess.run(command, check=True, env=env, timeout=args.case_timeout)
                measured = json.loads(record_out.read_text())
            except subprocess.TimeoutExpired:
                failures += 1
                measured = {"timed_out_after_s": args.case_timeout}
                log.warning("case %s: stopped after the %d s limit", case.name, args.case_timeout)
            except subprocess.CalledProcessError as error:
                failures += 1
                measured = {"failed_exit_code": error.returncode}
                log.error("case %s failed (exit %d)", case.name, error.returncode)
            record = make_record(case, measured, extra if case.is_competitor else None)
            append_records(args.results, [record])
            done.append(record)
            if "seconds" in measured:
                log.info(
                    "case %d/%d %s: %.1f s measured (%.0f s with start-up)",
                    number,
                    len(cases),
                    case.name,
                    measured["seconds"],
                    time.perf_counter() - started,
                )
    print(summary(done))
    return 1 if failures else 0


def run_case(args: argparse.Namespace) -> int:
    case = Case(args.scale, args.settings, args.kind, args.impression_days)
    record = measure_case(case, args.data_dir, args.driver_memory, args.shuffle_partitions)
    Path(args.record_out).write_text(json.dumps(record))
    return 0


# ---------------------------------------------------------------------------------------------
# The command line


def _settings_list(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    for profile in chosen:
        if profile not in SETTINGS:
            raise argparse.ArgumentTypeError(f"unknown settings {profile!r}; choose from {', '.join(SETTINGS)}")
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/race.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def spark_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench", help="raw data per scale")
        sub.add_argument("--driver-memory", default=DEFAULT_DRIVER_MEMORY, help="spark.driver.memory (default 12g)")
        sub.add_argument(
            "--shuffle-partitions", type=int, help="shuffle partitions of the cli settings (default: the CLI's)"
        )

    def competitor_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--competitor",
            type=Path,
            default=REPO / "data" / "bench" / "competitor-src",
            help="checkout of onkolahmet/pyspark-coding-challenge (default data/bench/competitor-src)",
        )
        sub.add_argument(
            "--competitor-venv",
            type=Path,
            default=REPO / "data" / "bench" / "competitor-venv",
            help="its virtual environment, made by benchmarks/competitor.sh when missing",
        )

    run = commands.add_parser("run", help="time a scale's cases, each in a fresh process")
    run.add_argument("--scale", choices=list(SCALES), required=True)
    run.add_argument("--settings", type=_settings_list, default=list(SETTINGS), help="defaults,cli (default both)")
    run.add_argument("--cases", nargs="*", choices=CASES, help="only these cases")
    run.add_argument("--case-timeout", type=int, default=3600, help="seconds before a case is stopped")
    run.add_argument("--results", type=Path, default=REPO / "docs" / "race.jsonl", help="JSON lines")
    spark_options(run)
    competitor_options(run)

    check = commands.add_parser("check", help="compare the competitor's output with the project's on one scale")
    check.add_argument("--scale", choices=list(SCALES), default="race-tiny")
    check.add_argument("--work-dir", type=Path, default=REPO / "data" / "bench-out" / "race")
    spark_options(check)
    competitor_options(check)

    case = commands.add_parser("case", help="measure one project or floor case in this process (what `run` calls)")
    case.add_argument("--scale", choices=list(SCALES), required=True)
    case.add_argument("--settings", choices=SETTINGS, required=True)
    case.add_argument("--kind", choices=(*PROJECT_CASES, *FLOOR_CASES), required=True)
    case.add_argument("--impression-days", type=int)
    case.add_argument("--record-out", type=Path, required=True)
    spark_options(case)

    gen = commands.add_parser("generate", help="write a scale's raw Parquet (what `run` calls when it is missing)")
    gen.add_argument("--scale", choices=list(SCALES), required=True)
    spark_options(gen)

    report = commands.add_parser("report", help="rewrite the race section of docs/benchmarks.md")
    report.add_argument("--results", type=Path, default=REPO / "docs" / "race.jsonl")
    report.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.command == "run":
        return run_plan(args)
    if args.command == "check":
        return run_check(args)
    if args.command == "case":
        return run_case(args)
    if args.command == "generate":
        generate(args.scale, args.data_dir, args.driver_memory)
        return 0
    write_report(args.results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
