"""Scale benchmark: the project's build against an I/O floor and the common approach, on the same data.

    python benchmarks/scale.py run --plan targets     # the largest scale: project, floor, baseline, incremental
    python benchmarks/scale.py run --plan growth      # how cost grows: 2x customers, days, actions; N=100
    python benchmarks/scale.py run --plan smoke       # every approach on tiny data, in a minute or two
    python benchmarks/scale.py report                 # docs/benchmarks.md and docs/benchmarks.png from the results

Data is generated once per scale under --data-dir and reused. Every case runs in its own
Spark application (a fresh JVM), so memory peaks and caches are its own; results are appended
to --results (JSON lines), one line per measured step.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import REPO, append_records, child_env, raw_dir, window_start  # noqa: E402
from carousel.synthetic import SyntheticConfig  # noqa: E402

log = logging.getLogger("benchmark")

SCALES: dict[str, SyntheticConfig] = {
    "tiny": SyntheticConfig(customers=1_000),
    "base": SyntheticConfig(customers=20_000),
    "base-2x-customers": SyntheticConfig(customers=40_000),
    "base-28-days": SyntheticConfig(customers=20_000, window_days=28),
    "base-2x-actions": SyntheticConfig(customers=20_000, actions_per_customer_year=1_800.0),
    "large": SyntheticConfig(customers=100_000),
}
"""Named data sets. A year of history before a 14-day window, ~900 actions per customer-year,
one customer in ten logging in per day, unless the name says otherwise."""

APPROACHES = ("project", "floor", "baseline", "incremental")


@dataclass(frozen=True)
class Case:
    """One measured run: an approach on a scale, with N and the impression days it builds."""

    scale: str
    approach: str
    history_length: int = 1000
    impression_days: int | None = None  # the last K days of the scale's window; None = all of it

    @property
    def name(self) -> str:
        days = f"-{self.impression_days}d" if self.impression_days else ""
        return f"{self.scale}/{self.approach}/N{self.history_length}{days}"


PLANS: dict[str, tuple[Case, ...]] = {
    "smoke": tuple(Case("tiny", approach) for approach in APPROACHES),
    "targets": tuple(Case("large", approach) for approach in ("floor", "project", "incremental", "baseline")),
    "growth": (
        Case("base", "project"),
        Case("base", "floor"),
        Case("base", "baseline"),
        Case("base", "project", history_length=100),
        Case("base-2x-customers", "project"),
        Case("base-2x-customers", "floor"),
        Case("base-2x-customers", "baseline"),
        Case("base-28-days", "project", impression_days=14),
        Case("base-28-days", "project", impression_days=28),
        Case("base-2x-actions", "project"),
        Case("base-2x-actions", "floor"),
    ),
}


# ---------------------------------------------------------------------------------------------
# Data


_GENERATE_OPTIONS = (
    "customers",
    "window_days",
    "history_days",
    "window_end",
    "actions_per_customer_year",
    "dirty_rate",
    "seed",
)
"""The SyntheticConfig fields `carousel generate` takes; the benchmark scales leave the others at their defaults."""


def ensure_data(data_dir: Path, scale: str, spark_args: list[str]) -> None:
    """Generate the scale's raw data unless a finished generation of the same config is there."""
    config = SCALES[scale]
    target = raw_dir(data_dir, scale)
    marker = target / "_generated.json"
    wanted = dataclasses.asdict(config)
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        log.info("data %s: reusing %s", scale, target)
        return
    shutil.rmtree(target, ignore_errors=True)
    log.info("data %s: generating %s customers into %s", scale, f"{config.customers:,}", target)
    options = []
    for name in _GENERATE_OPTIONS:
        options += [f"--{name.replace('_', '-')}", str(wanted[name])]
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "carousel.cli", "generate", "--out", str(target), *options, *spark_args],
        check=True,
        env=child_env(),
    )
    marker.write_text(json.dumps(wanted, indent=2))
    log.info("data %s: generated in %.0f s", scale, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# One case, in its own process


def measure_case(case: Case, data_dir: Path, work_dir: Path, shuffle_partitions: int, driver_memory: str) -> list[dict]:
    """Run one case in this process and return its result records (one per measured step)."""
    from benchmarks.approaches import baseline_build, io_floor, project_build, read_raw
    from benchmarks.metrics import MEASURING_CONF, as_record, measured, memory_peaks
    from carousel.config import HistoryConfig
    from carousel.spark import local_spark

    spark = local_spark(
        f"benchmark {case.name}",
        shuffle_partitions=shuffle_partitions,
        driver_memory=driver_memory,
        extra_conf=MEASURING_CONF,
    )
    config = SCALES[case.scale]
    history = HistoryConfig(history_length=case.history_length)
    raw = read_raw(spark, str(raw_dir(data_dir, case.scale)))
    out = work_dir / case.name.replace("/", "_")
    shutil.rmtree(out, ignore_errors=True)
    from_dt = window_start(config.window_end, case.impression_days)
    costs = []
    if case.approach == "project":
        with measured(spark, str(out)) as cost:
            project_build(spark, str(raw_dir(data_dir, case.scale)), str(out), history, from_dt)
        costs.append(("build", cost))
    elif case.approach == "floor":
        with measured(spark, str(out)) as cost:
            io_floor(raw, str(out), shuffle_partitions)
        costs.append(("build", cost))
    elif case.approach == "baseline":
        with measured(spark, str(out)) as cost:
            baseline_build(raw, str(out), history, from_dt)
        costs.append(("build", cost))
    elif case.approach == "incremental":
        costs += _incremental_steps(spark, raw_dir(data_dir, case.scale), out, config, history)
    else:
        raise ValueError(f"unknown approach {case.approach!r}; choose from {', '.join(APPROACHES)}")
    peaks = memory_peaks(spark)
    spark.stop()
    shutil.rmtree(out, ignore_errors=True)
    records = []
    for step, cost in costs:
        record = {"case": case.name, **dataclasses.asdict(case), "step": step, **as_record(cost), **peaks}
        record.update(customers=config.customers, window_days=config.window_days)
        record.update(actions_per_customer_year=config.actions_per_customer_year)
        records.append(record)
    return records


def _incremental_steps(spark, raw: Path, out: Path, config: SyntheticConfig, history) -> list:
    """`carousel build` of the window's last day - 1 (the state from the whole history), then `carousel advance`."""
    from benchmarks.metrics import measured
    from carousel.batch import advance, build
    from carousel.storage import RAW_SOURCES

    sources = {name: str(raw / name) for name in RAW_SOURCES}
    day_before = (dt.date.fromisoformat(config.window_end) - dt.timedelta(days=1)).isoformat()
    with measured(spark, str(out)) as full:
        build(spark, sources, str(out), history, day_before, day_before)
    with measured(spark, str(out)) as incremental:
        advance(spark, sources, str(out), day_before, history)
    incremental.output_bytes -= full.output_bytes
    return [("state rebuild", full), ("incremental day", incremental)]


# ---------------------------------------------------------------------------------------------
# Plans and the command line


def run_plan(args: argparse.Namespace) -> int:
    cases = [case for case in PLANS[args.plan] if not args.only or case.approach in args.only]
    spark_args = ["--shuffle-partitions", str(args.shuffle_partitions), "--driver-memory", args.driver_memory]
    failures = 0
    for number, case in enumerate(cases, 1):
        ensure_data(args.data_dir, case.scale, spark_args)
        log.info("case %d/%d %s ...", number, len(cases), case.name)
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "case",
            "--scale",
            case.scale,
            "--approach",
            case.approach,
            "--history-length",
            str(case.history_length),
            "--results",
            str(args.results),
            "--data-dir",
            str(args.data_dir),
            "--work-dir",
            str(args.work_dir),
            *spark_args,
        ]
        if case.impression_days:
            command += ["--impression-days", str(case.impression_days)]
        started = time.perf_counter()
        try:
            subprocess.run(command, check=True, env=child_env(), timeout=args.case_timeout)
        except subprocess.TimeoutExpired:
            failures += 1
            append_records(
                args.results,
                [
                    {
                        "case": case.name,
                        **dataclasses.asdict(case),
                        "step": "build",
                        "timed_out_after_s": args.case_timeout,
                    }
                ],
                **_stamp(),
            )
            log.warning("case %s: stopped after the %d s limit", case.name, args.case_timeout)
            continue
        except subprocess.CalledProcessError as error:
            failures += 1
            log.error("case %s failed (exit %d)", case.name, error.returncode)
            continue
        log.info("case %d/%d %s done in %.0f s", number, len(cases), case.name, time.perf_counter() - started)
    return 1 if failures else 0


def _stamp() -> dict:
    """Where and when a record was measured."""
    return {"measured_on": dt.date.today().isoformat(), "cpus": os.cpu_count(), "machine": platform.machine()}


def run_case(args: argparse.Namespace) -> int:
    case = Case(args.scale, args.approach, args.history_length, args.impression_days)
    records = measure_case(case, args.data_dir, args.work_dir, args.shuffle_partitions, args.driver_memory)
    append_records(args.results, records, **_stamp())
    for record in records:
        log.info("%s %s: %.1f s", case.name, record["step"], record["seconds"])
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/scale.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench", help="raw data per scale")
        sub.add_argument("--work-dir", type=Path, default=REPO / "data" / "bench-out", help="outputs, deleted after")
        sub.add_argument("--results", type=Path, default=REPO / "docs" / "benchmarks.jsonl", help="JSON lines")
        sub.add_argument("--shuffle-partitions", type=int, default=16)
        sub.add_argument("--driver-memory", default="10g")

    run = commands.add_parser("run", help="run a plan's cases, generating data where missing")
    run.add_argument("--plan", choices=sorted(PLANS), required=True)
    run.add_argument("--only", nargs="*", choices=APPROACHES, help="only these approaches")
    run.add_argument("--case-timeout", type=int, default=1800, help="seconds before a case is stopped")
    common(run)

    case = commands.add_parser("case", help="measure one case in this process (what `run` calls)")
    case.add_argument("--scale", choices=sorted(SCALES), required=True)
    case.add_argument("--approach", choices=APPROACHES, required=True)
    case.add_argument("--history-length", type=int, default=1000)
    case.add_argument("--impression-days", type=int)
    common(case)

    report = commands.add_parser("report", help="write docs/benchmarks.md and the plot from the results")
    report.add_argument("--results", type=Path, default=REPO / "docs" / "benchmarks.jsonl")
    report.add_argument("--out", type=Path, default=REPO / "docs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.command == "run":
        return run_plan(args)
    if args.command == "case":
        return run_case(args)
    from benchmarks.report import write_report

    write_report(args.results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
