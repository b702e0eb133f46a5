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
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (  # noqa: E402
    REPO,
    append_records,
    child_env,
    fmt_ratio,
    fmt_seconds,
    gib,
    mib,
    ratio,
    raw_dir,
    seconds_of,
)
from benchmarks.harness import window_start as _days_from  # noqa: E402
from carousel.synthetic import SyntheticConfig  # noqa: E402

log = logging.getLogger("race")

# ---------------------------------------------------------------------------------------------
# The data

RACE_DATA = SyntheticConfig(
    customers=100_000,
    history_days=380,
    window_days=14,
    actions_per_customer_year=900.0,
    mix_clicks=88.0,
    mix_add_to_carts=10.8,
    mix_orders=1.2,
    items=200_000,
    zipf_exponent=1.3,
    items_per_impression=10,
    login_rate=0.1,
    login_activity_exponent=1.0,
    login_probability_cap=0.9,
    late_event_rate=0.0,
    dirty_rate=0.0,
    favorite_action_rate=0.0,
    favorite_shown_rate=0.0,
)
"""The issue's data: lognormal activity (sigma 1, mean 1), 900 actions a customer-year split
88 : 10.8 : 1.2, 380 days of history before a 14-day window, Zipf(1.3) items over 200,000 ids,
uniform times of day (no late events), login probability 0.1 x activity weight capped at 0.9,
10 items a login, clean rows only, no favourite items (plain Zipf draws)."""

HEAVY_SHARE = 0.002
HEAVY_ACTIONS_PER_YEAR = 30_000.0

SCALES: dict[str, SyntheticConfig] = {
    "race-tiny": replace(RACE_DATA, customers=1_000),
    "race-10k": replace(RACE_DATA, customers=10_000),
    "race-100k": RACE_DATA,
    "race-100k-heavy": replace(
        RACE_DATA, heavy_customer_share=HEAVY_SHARE, heavy_actions_per_year=HEAVY_ACTIONS_PER_YEAR
    ),
    "race-100k-2x-actions": replace(RACE_DATA, actions_per_customer_year=1_800.0),
    "race-100k-28-days": replace(RACE_DATA, window_days=28),
}
"""Named data sets; each is RACE_DATA with the one change its name says."""

GROWTH_BASE = {"race-100k-2x-actions": "race-100k"}
"""Per growth scale, the scale it doubles a dimension of (the 28-day scale is its own base: 14 vs 28 days)."""

# ---------------------------------------------------------------------------------------------
# The cases

COMPETITOR_CASES = {"competitor": False, "competitor-exploded": True}
"""The competitor's cases and the `explode` argument each passes to its build_training_inputs."""

PROJECT_CASES = ("project-per-customer-day", "project-per-impression", "baseline")
FLOOR_CASES = ("floor-scan", "floor-shuffle", "floor-collect-sort")
CASES = (*COMPETITOR_CASES, *PROJECT_CASES, *FLOOR_CASES)

SETTINGS = ("defaults", "cli")

DEFAULT_DRIVER_MEMORY = "12g"
FLOOR_REFERENCE = "floor-collect-sort"


@dataclass(frozen=True)
class Case:
    """One measured run: a case on a scale under a settings profile, over the last K impression days."""

    scale: str
    settings: str
    kind: str
    impression_days: int | None = None  # the last K days of the scale's window; None = all of it

    @property
    def name(self) -> str:
        days = f"-{self.impression_days}d" if self.impression_days else ""
        return f"{self.scale}/{self.settings}/{self.kind}{days}"

    @property
    def is_competitor(self) -> bool:
        return self.kind in COMPETITOR_CASES


def scale_cases(scale: str) -> list[tuple[str, int | None]]:
    """The (case, impression days) a scale runs by default."""
    if scale.endswith("-28-days"):
        half = SCALES[scale].window_days // 2
        return [
            (kind, days)
            for kind in ("project-per-customer-day", "project-per-impression")
            for days in (half, SCALES[scale].window_days)
        ]
    if scale.endswith("-2x-actions"):
        return [("project-per-customer-day", None), ("project-per-impression", None), (FLOOR_REFERENCE, None)]
    return [(kind, None) for kind in CASES]


def plan(scale: str, settings: Sequence[str], only: Iterable[str] | None = None) -> list[Case]:
    """The cases of a run: the scale's cases under each settings profile, floors first, competitor last.

    Raises:
        ValueError: an unknown scale, settings profile or case.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    for profile in settings:
        if profile not in SETTINGS:
            raise ValueError(f"unknown settings {profile!r}; choose from {', '.join(SETTINGS)}")
    wanted = set(only or CASES)
    for kind in wanted - set(CASES):
        raise ValueError(f"unknown case {kind!r}; choose from {', '.join(CASES)}")
    order = {kind: index for index, kind in enumerate((*FLOOR_CASES, *PROJECT_CASES, *COMPETITOR_CASES))}
    chosen = sorted(
        ((kind, days) for kind, days in scale_cases(scale) if kind in wanted),
        key=lambda pair: (order[pair[0]], pair[1] or 0),
    )
    return [Case(scale, profile, kind, days) for profile in settings for kind, days in chosen]


# ---------------------------------------------------------------------------------------------
# Settings


def cli_shuffle_partitions() -> int:
    """The `--shuffle-partitions` default of the project's CLI (`carousel build`)."""
    from carousel.cli import _add_spark_options

    parser = argparse.ArgumentParser()
    _add_spark_options(parser)
    return int(parser.get_default("shuffle_partitions"))


def spark_conf(settings: str, driver_memory: str, shuffle_partitions: int | None = None) -> dict[str, str]:
    """The Spark settings of a profile, as the competitor's session gets them (no Delta).

    `defaults`: only the driver memory (and the status API the metrics read); `cli`: the project's
    `carousel.spark.LOCAL_DEFAULTS` without the Delta classes, and `shuffle_partitions`.
    """
    from benchmarks.metrics import MEASURING_CONF

    if settings == "defaults":
        conf = {"spark.driver.memory": driver_memory}
    elif settings == "cli":
        from carousel.spark import LOCAL_DEFAULTS

        delta_classes = ("spark.sql.extensions", "spark.sql.catalog.spark_catalog")
        conf = {key: value for key, value in LOCAL_DEFAULTS.items() if key not in delta_classes}
        conf["spark.driver.memory"] = driver_memory
        conf["spark.sql.shuffle.partitions"] = str(shuffle_partitions or cli_shuffle_partitions())
    else:
        raise ValueError(f"unknown settings {settings!r}; choose from {', '.join(SETTINGS)}")
    return {**conf, **MEASURING_CONF}


def window_start(config: SyntheticConfig, impression_days: int | None) -> str | None:
    """The first impression day ('yyyy-MM-dd') of the last `impression_days` of the window; None = all."""
    return _days_from(config.window_end, impression_days)


# ---------------------------------------------------------------------------------------------
# Data

RAW_DAY_COLUMN = {"impressions": "dt", "clicks": "dt", "add_to_carts": "dt", "orders": "order_date"}
ROWS_PER_FILE = 2_000_000


def _marker_content(config: SyntheticConfig) -> dict:
    """What `_generated.json` holds: the config and the file layout (data of another layout is made anew)."""
    layout = {"layout": f"unpartitioned, range-partitioned by day, {ROWS_PER_FILE:,} rows a file"}
    # Through JSON and back, so tuples compare equal to the lists a marker file holds.
    return json.loads(json.dumps({**dataclasses.asdict(config), **layout}))


def ensure_data(data_dir: Path, scale: str, driver_memory: str) -> None:
    """Generate the scale's raw Parquet (in a child process) unless the same config was generated there already."""
    target = raw_dir(data_dir, scale)
    marker = target / "_generated.json"
    if marker.exists() and json.loads(marker.read_text()) == _marker_content(SCALES[scale]):
        log.info("data %s: reusing %s", scale, target)
        return
    log.info("data %s: generating %s customers into %s", scale, f"{SCALES[scale].customers:,}", target)
    started = time.perf_counter()
    command = [sys.executable, str(Path(__file__).resolve()), "generate", "--scale", scale]
    command += ["--data-dir", str(data_dir), "--driver-memory", driver_memory]
    subprocess.run(command, check=True, env=child_env())
    log.info("data %s: generated in %.0f s", scale, time.perf_counter() - started)


def expected_rows(config: SyntheticConfig, source: str) -> float:
    """About how many rows the generator makes for `source` (impressions: the login rate's mean, uncapped)."""
    if source == "impressions":
        return config.customers * config.window_days * config.login_rate
    return config.expected_actions(source)


def generate(scale: str, data_dir: Path, driver_memory: str) -> None:
    """Write the scale's four raw sources as Parquet in time order: files of consecutive days, ~ROWS_PER_FILE rows each.

    Not partitioned by day: a day's directory of a few thousand rows would make the scan of the
    small scales a matter of opening files. Range-partitioned by day instead, as daily logs
    appended in time order would be.
    """
    from pyspark.sql import SparkSession

    from carousel.synthetic import generate_raw

    config = SCALES[scale]
    target = raw_dir(data_dir, scale)
    shutil.rmtree(target, ignore_errors=True)
    spark = (
        SparkSession.builder.master("local[*]")
        .appName(f"race generate {scale}")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for source, frame in generate_raw(spark, config).items():
        files = max(1, math.ceil(expected_rows(config, source) / ROWS_PER_FILE))
        started = time.perf_counter()
        frame.repartitionByRange(files, RAW_DAY_COLUMN[source]).write.mode("overwrite").parquet(str(target / source))
        log.info("generated %s in %.0f s", source, time.perf_counter() - started)
    spark.stop()
    (target / "_generated.json").write_text(json.dumps(_marker_content(config), indent=2))


def raw_schemas_json() -> dict[str, str]:
    """The raw contract schemas as Spark JSON, for the competitor's driver (which cannot import carousel)."""
    from carousel.schemas import RAW_SCHEMAS

    return {name: schema.json() for name, schema in RAW_SCHEMAS.items()}


def read_raw(spark, raw: Path) -> dict:
    """The four raw sources, read with the contract schemas (so every case sees the same column types)."""
    from carousel.schemas import RAW_SCHEMAS

    return {name: spark.read.schema(schema).parquet(str(raw / name)) for name, schema in RAW_SCHEMAS.items()}


# ---------------------------------------------------------------------------------------------
# One project or floor case, in its own process


def _action_columns(raw: dict):
    """The actions' columns of the three sources, renamed alike and unioned: no validation, no logic."""
    from pyspark.sql import functions as F

    def day(column: str):
        return F.col(column).cast("date").alias("action_day")

    def kind(code: int):
        return F.lit(code).cast("tinyint").alias("action_type")

    return (
        raw["clicks"]
        .select("customer_id", F.col("click_time").alias("occurred_at"), kind(1), "item_id", day("dt"))
        .unionByName(
            raw["add_to_carts"].select(
                "customer_id", "occurred_at", kind(2), F.col("config_id").alias("item_id"), day("dt")
            )
        )
        .unionByName(
            raw["orders"].select(
                "customer_id", "occurred_at", kind(3), F.col("config_id").alias("item_id"), day("order_date")
            )
        )
    )


def case_frame(kind: str, raw: dict, from_dt: str | None):
    """The DataFrame a project or floor case writes to the noop sink."""
    from pyspark.sql import functions as F

    import carousel
    from carousel.actions import unify_actions
    from carousel.config import HistoryConfig
    from carousel.examples import impressions_in_window
    from carousel.history import build_histories, customer_days

    impressions = impressions_in_window(raw["impressions"], from_dt, None)
    actions = raw["clicks"], raw["add_to_carts"], raw["orders"]
    if kind == "project-per-customer-day":
        return build_histories(unify_actions(*actions), customer_days(impressions), HistoryConfig())
    if kind == "project-per-impression":
        return carousel.build_training_examples(impressions, *actions)
    if kind == "baseline":
        from benchmarks.approaches import baseline_histories

        return baseline_histories(unify_actions(*actions), customer_days(impressions), HistoryConfig())
    columns = _action_columns(raw)
    if kind == "floor-scan":
        return columns
    if kind == "floor-shuffle":
        return columns.repartition("customer_id")
    if kind == "floor-collect-sort":
        collected = F.collect_list(F.struct("occurred_at", "action_type", "item_id", "action_day"))
        return columns.groupBy("customer_id").agg(F.sort_array(collected, asc=False).alias("actions"))
    raise ValueError(f"not a project or floor case: {kind!r}")


def project_session(settings: str, driver_memory: str, shuffle_partitions: int | None, app_name: str):
    """The session of a project or floor case: Spark's defaults, or the CLI's `local_spark`."""
    from benchmarks.metrics import MEASURING_CONF

    if settings == "cli":
        from carousel.spark import local_spark

        return local_spark(
            app_name,
            shuffle_partitions=shuffle_partitions or cli_shuffle_partitions(),
            driver_memory=driver_memory,
            extra_conf=MEASURING_CONF,
        )
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[*]").appName(app_name)
    for key, value in spark_conf(settings, driver_memory).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def session_facts(spark) -> dict:
    """The settings a record should carry, read back from the running session."""
    conf = spark.conf
    return {
        "spark_version": spark.version,
        "shuffle_partitions": int(conf.get("spark.sql.shuffle.partitions")),
        "aqe": conf.get("spark.sql.adaptive.enabled"),
        "session_time_zone": conf.get("spark.sql.session.timeZone"),
        "driver_memory": spark.sparkContext.getConf().get("spark.driver.memory", "1g"),
    }


def measure_case(case: Case, data_dir: Path, driver_memory: str, shuffle_partitions: int | None) -> dict:
    """Run one project or floor case in this process; return its measurements."""
    from benchmarks.metrics import as_record, measured, memory_peaks

    spark = project_session(case.settings, driver_memory, shuffle_partitions, f"race {case.name}")
    raw = read_raw(spark, raw_dir(data_dir, case.scale))
    from_dt = window_start(SCALES[case.scale], case.impression_days)
    with measured(spark) as cost:
        case_frame(case.kind, raw, from_dt).write.format("noop").mode("overwrite").save()
    record = {**as_record(cost), **memory_peaks(spark), **session_facts(spark)}
    spark.stop()
    return record


# ---------------------------------------------------------------------------------------------
# Running a plan


def _competitor_env(venv: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SPARK_HOME", "VIRTUAL_ENV")}
    env["TZ"] = "UTC"
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = str(venv / "bin" / "python")
    return env


def ensure_competitor_venv(checkout: Path, venv: Path) -> None:
    """Create or check the competitor's virtual environment (idempotent)."""
    subprocess.run(["bash", str(REPO / "benchmarks" / "competitor.sh"), str(checkout), str(venv)], check=True)


def competitor_commit(checkout: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        )
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    return done.stdout.strip()


def competitor_request(case: Case, args: argparse.Namespace, record_out: Path, output_dir: Path | None = None) -> dict:
    """What `competitor_driver.py` needs for one case, as a JSON-able dict."""
    return {
        "checkout": str(Path(args.competitor).resolve()),
        "raw_dir": str(raw_dir(args.data_dir, case.scale).resolve()),
        "schemas": raw_schemas_json(),
        "conf": spark_conf(case.settings, args.driver_memory, args.shuffle_partitions),
        "explode": COMPETITOR_CASES[case.kind],
        "window_start": window_start(SCALES[case.scale], case.impression_days),
        "app_name": f"race {case.name}",
        "metrics_dir": str(REPO / "benchmarks"),
        "record_out": str(record_out),
        "output_dir": str(output_dir) if output_dir else None,
    }


def case_command(case: Case, args: argparse.Namespace, record_out: Path) -> tuple[list[str], dict[str, str]]:
    """The command (and environment) that measures `case` in a fresh process."""
    if case.is_competitor:
        request = record_out.with_suffix(".request.json")
        request.write_text(json.dumps(competitor_request(case, args, record_out)))
        python = Path(args.competitor_venv) / "bin" / "python"
        return [str(python), str(REPO / "benchmarks" / "competitor_driver.py"), str(request)], _competitor_env(
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
# Reporting

START = "<!-- race:start -->"
END = "<!-- race:end -->"
SECTION = "## Against the best public solution"


@dataclass(frozen=True)
class Target:
    """A target of the issue: `case` against `reference` on `scale`.

    `faster`: the reference's seconds over the case's must be at least `bound`;
    otherwise the case's seconds over the reference's must be at most `bound`.
    """

    name: str
    scale: str
    case: str
    reference: str
    bound: float
    faster: bool


TARGETS = (
    Target(
        name="per customer-day >= 3x faster than the competitor",
        scale="race-100k",
        case="project-per-customer-day",
        reference="competitor",
        bound=3.0,
        faster=True,
    ),
    Target(
        name="per customer-day <= 1.25x the collect-sort floor",
        scale="race-100k",
        case="project-per-customer-day",
        reference=FLOOR_REFERENCE,
        bound=1.25,
        faster=False,
    ),
    Target(
        name="per impression >= 2x faster than the competitor exploded (same rows: one per shown item)",
        scale="race-10k",
        case="project-per-impression",
        reference="competitor-exploded",
        bound=2.0,
        faster=True,
    ),
    Target(
        name="per impression >= 2x faster than the competitor's default (one row per impression row)",
        scale="race-10k",
        case="project-per-impression",
        reference="competitor",
        bound=2.0,
        faster=True,
    ),
)
GROWTH_BOUNDS = {"2x actions": 2.1, "2x impression days": 1.3}


def load(results: Path) -> dict[str, dict]:
    """The newest record per case name."""
    latest: dict[str, dict] = {}
    if results.exists():
        for line in results.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                latest[record["case"]] = record
    return latest


def case_table(records: dict[str, dict], scale: str, settings: str) -> list[str]:
    """The table of one scale under one settings profile; ratios are this case's seconds over the reference's."""

    def at(kind: str, days: int | None = None) -> dict | None:
        return records.get(Case(scale, settings, kind, days).name)

    competitor, exploded = seconds_of(at("competitor")), seconds_of(at("competitor-exploded"))
    floor = seconds_of(at(FLOOR_REFERENCE))
    lines = [
        "| case | seconds | / competitor | / competitor exploded | / collect-sort floor | shuffle write MiB "
        "| JVM heap peak GiB |",
        "|---|---|---|---|---|---|---|",
    ]
    present = [
        (kind, days)
        for kind, days in sorted(scale_cases(scale), key=lambda pair: (CASES.index(pair[0]), pair[1] or 0))
        if at(kind, days) is not None
    ]
    for kind, days in present:
        record = at(kind, days)
        seconds = seconds_of(record)
        label = kind + (f" ({days} of {SCALES[scale].window_days} days)" if days else "")
        lines.append(
            f"| {label} | {fmt_seconds(record)} | {fmt_ratio(ratio(seconds, competitor))} "
            f"| {fmt_ratio(ratio(seconds, exploded))} | {fmt_ratio(ratio(seconds, floor))} "
            f"| {mib(record.get('shuffle_write_bytes'))} | {gib(record.get('jvm_heap_peak_bytes'))} |"
        )
    return lines


def growth_rows(records: dict[str, dict], settings: str) -> list[tuple[str, str, float | None, float | None]]:
    """(what doubled, case, seconds before, seconds after) for each growth measurement."""
    rows = []
    for scale, base in GROWTH_BASE.items():
        for kind in ("project-per-customer-day", "project-per-impression", FLOOR_REFERENCE):
            before = seconds_of(records.get(Case(base, settings, kind).name))
            after = seconds_of(records.get(Case(scale, settings, kind).name))
            if before is not None or after is not None:
                rows.append(("2x actions (900 -> 1800 a year)", kind, before, after))
    scale = "race-100k-28-days"
    full = SCALES[scale].window_days
    for kind in ("project-per-customer-day", "project-per-impression"):
        before = seconds_of(records.get(Case(scale, settings, kind, full // 2).name))
        after = seconds_of(records.get(Case(scale, settings, kind, full).name))
        if before is not None or after is not None:
            rows.append((f"2x impression days ({full // 2} -> {full})", kind, before, after))
    return rows


def _verdict(value: float | None, bound: float, at_least: bool) -> str:
    if value is None:
        return "not run"
    return "met" if (value >= bound if at_least else value <= bound) else "MISSED"


def target_rows(records: dict[str, dict], settings: str) -> list[tuple[str, float | None, str]]:
    """(target, measured ratio, verdict) per target and growth bound, under one settings profile."""
    rows = []
    for target in TARGETS:
        seconds = seconds_of(records.get(Case(target.scale, settings, target.case).name))
        reference = seconds_of(records.get(Case(target.scale, settings, target.reference).name))
        value = ratio(reference, seconds) if target.faster else ratio(seconds, reference)
        rows.append((f"{target.name} ({target.scale})", value, _verdict(value, target.bound, target.faster)))
    for what, kind, before, after in growth_rows(records, settings):
        if kind == FLOOR_REFERENCE:
            continue
        bound = next(bound for prefix, bound in GROWTH_BOUNDS.items() if what.startswith(prefix))
        value = ratio(after, before)
        rows.append((f"{what}, {kind}: <= {bound}x", value, _verdict(value, bound, at_least=False)))
    return rows


def _scale_line(scale: str) -> str:
    config = SCALES[scale]
    changes = [
        f"{label} {getattr(config, name):,g}"
        for name, label in (
            ("window_days", "impression days"),
            ("actions_per_customer_year", "actions a customer-year"),
            ("heavy_customer_share", "heavy customers' share"),
        )
        if getattr(config, name) != getattr(RACE_DATA, name)
    ]
    if config.heavy_customer_share:
        changes.append(f"a heavy customer acts {config.heavy_actions_per_year:,g} times a year")
    return f"| {scale} | {config.customers:,} | {', '.join(changes) or 'none'} |"


def render(records: dict[str, dict]) -> str:
    """The generated part of the race section, from the newest record of every case."""
    scales = [scale for scale in SCALES if any(record.get("scale") == scale for record in records.values())]
    profiles = [profile for profile in SETTINGS if any(r.get("settings") == profile for r in records.values())]
    lines = ["### Race data sets", "", "| scale | customers | differs from the issue's data by |", "|---|---|---|"]
    lines += [_scale_line(scale) for scale in SCALES]
    lines.append("")
    if not records:
        return "\n".join([*lines, "No race has been run yet.", ""])
    lines += ["### Race targets", ""]
    for profile in profiles:
        lines += [f"Settings `{profile}`:", "", "| target | measured | verdict |", "|---|---|---|"]
        rows = target_rows(records, profile)
        lines += [f"| {name} | {fmt_ratio(value)} | {verdict} |" for name, value, verdict in rows]
        lines.append("")
    lines += ["### Race growth", "", "| settings | doubling | case | before s | after s | ratio |"]
    lines.append("|---|---|---|---|---|---|")
    growth = [(profile, row) for profile in profiles for row in growth_rows(records, profile)]
    for profile, (what, kind, before, after) in growth:
        lines.append(
            f"| {profile} | {what} | {kind} | {'' if before is None else f'{before:.1f}'} "
            f"| {'' if after is None else f'{after:.1f}'} | {fmt_ratio(ratio(after, before))} |"
        )
    if not growth:
        lines.append("| | not run yet | | | | |")
    lines.append("")
    for scale in scales:
        config = SCALES[scale]
        lines += [f"### {scale}: {config.customers:,} customers, {config.window_days} impression days", ""]
        for profile in profiles:
            if any(r.get("scale") == scale and r.get("settings") == profile for r in records.values()):
                lines += [f"Settings `{profile}`:", "", *case_table(records, scale, profile), ""]
    stamps = sorted({(r.get("measured_on"), r.get("cpus"), r.get("machine")) for r in records.values()}, key=str)
    versions = sorted(
        {(r["kind"] in COMPETITOR_CASES, r["spark_version"]) for r in records.values() if r.get("spark_version")}
    )
    commits = sorted({r["competitor_commit"] for r in records.values() if r.get("competitor_commit")})
    memories = sorted({r.get("driver_memory") for r in records.values() if r.get("driver_memory")})
    lines.append(
        "Measured on "
        + "; ".join(f"{day}, {cpus} cores ({machine})" for day, cpus, machine in stamps)
        + f"; driver memory {', '.join(memories) or 'n/a'}; Spark "
        + ", ".join(f"{version} ({'competitor' if competitor else 'project'})" for competitor, version in versions)
        + (f"; competitor at commit {', '.join(commit[:12] for commit in commits)}" if commits else "")
        + ". Ratios divide this case's seconds by the reference's (below 1 = faster); the targets' "
        "\"faster\" ratios are the competitor's seconds over the project's."
    )
    return "\n".join(lines) + "\n"


SECTION_TEMPLATE = f"""
{SECTION}

Written by `python benchmarks/race.py report` from `docs/race.jsonl`; see `benchmarks/race.py`.

{START}
{END}
"""


def write_report(results: Path, markdown: Path) -> None:
    """Rewrite the race section's generated part (between START and END) of `markdown`; add the section if absent."""
    text = markdown.read_text() if markdown.exists() else "# Benchmarks\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + "\n" + SECTION_TEMPLATE
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    markdown.write_text(f"{before}{START}\n{render(load(results))}{END}{after}")


def summary(records: list[dict]) -> str:
    """A short table of what a run just measured, for the console."""
    lines = [f"{'case':<60} {'seconds':>10}"]
    for record in records:
        lines.append(f"{record['case']:<60} {fmt_seconds(record):>10}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Do the outputs agree?


def run_check(args: argparse.Namespace) -> int:
    """Build both outputs on one scale, store them as Parquet, and compare them per customer-day and impression."""
    ensure_competitor_venv(Path(args.competitor), Path(args.competitor_venv))
    ensure_data(args.data_dir, args.scale, args.driver_memory)
    out = args.work_dir / f"check-{args.scale}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    case = Case(args.scale, "cli", "competitor")
    request = out / "competitor.request.json"
    request.write_text(json.dumps(competitor_request(case, args, out / "competitor.json", out / "competitor")))
    python = str(Path(args.competitor_venv) / "bin" / "python")
    subprocess.run(
        [python, str(REPO / "benchmarks" / "competitor_driver.py"), str(request)],
        check=True,
        env=_competitor_env(Path(args.competitor_venv)),
    )
    facts = compare_outputs(args, out)
    (out / "agreement.json").write_text(json.dumps(facts, indent=2))
    print(json.dumps(facts, indent=2))
    return 0


def compare_outputs(args: argparse.Namespace, out: Path) -> dict:
    from pyspark.sql import functions as F

    import carousel
    from carousel.actions import unify_actions
    from carousel.config import HistoryConfig
    from carousel.history import build_histories, customer_days

    spark = project_session("cli", args.driver_memory, args.shuffle_partitions, f"race check {args.scale}")
    raw = read_raw(spark, raw_dir(args.data_dir, args.scale))
    theirs = spark.read.parquet(str(out / "competitor"))
    actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"])
    ours = build_histories(actions, customer_days(raw["impressions"]), HistoryConfig())
    examples = carousel.build_training_examples(raw["impressions"], raw["clicks"], raw["add_to_carts"], raw["orders"])

    pairs = F.arrays_zip(F.col("actions").alias("item"), F.col("action_types").cast("array<int>").alias("type"))
    no_orders = F.filter(pairs, lambda pair: pair["type"] != 3)
    theirs_days = theirs.select(
        F.date_format("as_of_date", "yyyy-MM-dd").alias("dt"),
        F.col("customer_id").cast("int").alias("customer_id"),
        pairs.alias("theirs"),
        no_orders.alias("theirs_no_orders"),
    ).dropDuplicates(["dt", "customer_id"])
    ours_days = ours.select("dt", "customer_id", pairs.alias("ours"), no_orders.alias("ours_no_orders"))
    joined = theirs_days.join(ours_days, ["dt", "customer_id"], "full_outer")
    differ = F.col("ours") != F.col("theirs")
    beyond_orders = differ & (F.col("ours_no_orders") != F.col("theirs_no_orders"))
    full = ~F.exists("ours", lambda pair: pair["type"] == 0)  # N real actions: the cut at N decides
    counts = (
        joined.agg(
            F.count("*").alias("customer_days"),
            F.count_if(F.col("ours").isNull()).alias("only_competitor"),
            F.count_if(F.col("theirs").isNull()).alias("only_project"),
            F.count_if(F.col("ours") == F.col("theirs")).alias("identical"),
            F.count_if(differ).alias("differing"),
            F.count_if(differ & (F.sort_array("ours") == F.sort_array("theirs"))).alias("same_actions_other_order"),
            F.count_if(differ & ~beyond_orders).alias("same_once_orders_are_left_out"),
            F.count_if(beyond_orders).alias("differ_beyond_orders"),
            F.count_if(beyond_orders & full).alias("differ_beyond_orders_with_n_actions"),
            F.count_if(F.exists("ours", lambda pair: pair["type"] == 3)).alias("histories_with_orders"),
        )
        .first()
        .asDict()
    )
    differing = joined.where(F.col("ours") != F.col("theirs")).orderBy("dt", "customer_id").limit(1).collect()
    example = None
    if differing:
        row = differing[0]
        ours_list = [(p["item"], p["type"]) for p in row["ours"]]
        theirs_list = [(p["item"], p["type"]) for p in row["theirs"]]
        first = next(i for i, (a, b) in enumerate(zip(ours_list, theirs_list, strict=True)) if a != b)
        example = {
            "dt": row["dt"],
            "customer_id": row["customer_id"],
            "first_difference_at": first,
            "project": ours_list[first : first + 5],
            "competitor": theirs_list[first : first + 5],
        }
    per_impression = (
        theirs.select("ranking_id", F.size("impressions").alias("theirs"))
        .join(examples.groupBy("ranking_id").agg(F.count("*").alias("ours")), "ranking_id", "full_outer")
        .agg(
            F.count("*").alias("impression_rows"),
            F.sum("theirs").alias("competitor_exploded_rows"),
            F.sum("ours").alias("project_example_rows"),
            F.count_if(F.col("theirs").eqNullSafe(F.col("ours")) == F.lit(False)).alias("rows_differing"),
        )
        .first()
        .asDict()
    )
    spark.stop()
    return {"scale": args.scale, "per_customer_day": counts, "per_impression": per_impression, "example": example}


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
