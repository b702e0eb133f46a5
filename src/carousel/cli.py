"""`carousel generate | build | run | advance | pipeline | train`: the local runner over generated or given data."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from carousel.actions import unify_actions
from carousel.baseline_run import RegisteredBaseline, add_train_options
from carousel.config import DEFAULT_HISTORY_LENGTH, DEFAULT_LOOKBACK_DAYS, HistoryConfig, check_window, parse_day
from carousel.console import add_verbose_option, configure_logging, day, knob, number, run_command, whole_number
from carousel.examples import explode_impressions, impressions_in_window
from carousel.history import build_histories, customer_days
from carousel.quality import keep_valid, quarantine_rows
from carousel.run_metrics import SourceCounts, check_reconciled, recorded_run
from carousel.schemas import conformed_columns
from carousel.storage import (
    RAW_SOURCES,
    check_source_exists,
    delta_row_count,
    read_partition,
    read_source,
    replace_days,
    replace_partition,
    write_delta,
)

log = logging.getLogger("carousel")

RUN_METRICS_TABLE = "run_metrics"
RAW_PARTITION_COLUMN = {"impressions": "dt", "clicks": "dt", "add_to_carts": "dt", "orders": "order_date"}


@contextmanager
def stage(name: str, seconds: dict[str, float] | None = None) -> Iterator[dict]:
    """Log a stage's start, and its end with seconds and whatever the body puts in the yielded dict.

    With `seconds`, the stage's duration is also stored there under `name`.
    """
    facts: dict = {}
    log.info("%s ...", name)
    started = time.perf_counter()
    yield facts
    elapsed = time.perf_counter() - started
    if seconds is not None:
        seconds[name] = elapsed
    details = ", ".join(
        f"{key}={value:,}" if isinstance(value, int) else f"{key}={value}" for key, value in facts.items()
    )
    log.info("%s done in %.1f s%s", name, elapsed, f" ({details})" if details else "")


def _spark(args: argparse.Namespace) -> SparkSession:
    from carousel.spark import local_spark

    return local_spark(
        "carousel-cli",
        shuffle_partitions=args.shuffle_partitions,
        driver_memory=args.driver_memory,
    )


def generate(spark: SparkSession, out: str, config) -> dict[str, int]:
    """Write synthetic raw sources as Delta tables under `out`; return rows written per source."""
    from carousel.synthetic import generate_raw

    written = {}
    for source, frame in generate_raw(spark, config).items():
        path = os.path.join(out, source)
        with stage(f"generate {source}") as facts:
            write_delta(frame, path, partition_by=RAW_PARTITION_COLUMN[source])
            written[source] = facts["rows"] = delta_row_count(spark, path)
    return written


def build(
    spark: SparkSession,
    sources: dict[str, str],
    out: str,
    config: HistoryConfig,
    from_dt: str | None = None,
    to_dt: str | None = None,
    run_id: str | None = None,
) -> dict[str, int]:
    """Build the training data as Delta tables under `out`, and record the run in `out`/run_metrics.

    Per raw source, the rows that break a rule go to `<source>_quarantine` (replaced, stamped with
    the run id), and rows read must equal rows kept + rows quarantined before any gold table is
    touched. Then `customer_histories` and `shown_items` (partitioned by dt) get the window's dt
    partitions replaced in one atomic commit each: days outside the window stay, a rerun gives
    the same rows, and a run killed halfway leaves the previous version readable.

    Args:
        sources: raw source per name of `RAW_SOURCES`: a table name or a path.
        out: directory of the output tables.
        config: history length and lookback days.
        from_dt, to_dt: optional inclusive bounds on the impressions' dt ('yyyy-MM-dd').
        run_id: the run's id (default: a new one).

    Returns:
        Rows written per output table.

    Raises:
        carousel.storage.SourceNotFoundError: a source does not exist.
        carousel.schemas.SchemaContractError: a source lacks a required column or has one of another type.
        carousel.run_metrics.ReconciliationError: a source's rows read != kept + quarantined.
    """
    from_dt = parse_day(from_dt).isoformat() if from_dt else None
    to_dt = parse_day(to_dt).isoformat() if to_dt else None
    with recorded_run(spark, os.path.join(out, RUN_METRICS_TABLE), "build", run_id) as record:
        raw = {name: read_source(spark, sources[name], name) for name in RAW_SOURCES}
        for name in RAW_SOURCES:
            conformed_columns(raw[name], name)  # a broken contract fails here, before anything is written
        for name in RAW_SOURCES:
            with stage(f"{name}_quarantine", record.seconds) as facts:
                path = os.path.join(out, f"{name}_quarantine")
                write_delta(quarantine_rows(raw[name], name, run_id=record.run_id), path, partition_by=None)
                counts = SourceCounts(
                    name, raw[name].count(), keep_valid(raw[name], name).count(), delta_row_count(spark, path)
                )
                record.counts.append(counts)
                record.rows_written[f"{name}_quarantine"] = counts.rows_quarantined
                facts.update(read=counts.rows_read, kept=counts.rows_kept, quarantined=counts.rows_quarantined)
        check_reconciled(record.counts)
        impressions = impressions_in_window(raw["impressions"], from_dt, to_dt)
        actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"])
        gold = {
            "customer_histories": build_histories(actions, customer_days(impressions), config),
            "shown_items": explode_impressions(impressions),
        }
        for table, frame in gold.items():
            with stage(table, record.seconds) as facts:
                path = os.path.join(out, table)
                replace_days(frame, path, from_dt, to_dt)
                record.rows_written[table] = facts["rows"] = _rows_in_window(spark, path, from_dt, to_dt)
    return dict(record.rows_written)


def _rows_in_window(spark: SparkSession, path: str, from_dt: str | None, to_dt: str | None) -> int:
    return impressions_in_window(spark.read.format("delta").load(path), from_dt, to_dt).count()


def advance(
    spark: SparkSession,
    sources: dict[str, str],
    state_path: str,
    out: str,
    day: str,
    config: HistoryConfig,
) -> dict[str, int]:
    """Add day `day`'s actions to the stored state and write the histories of the day after.

    Reads the state as of `day` from the Delta table at `state_path` (partitioned by `as_of`),
    building it from the whole history when that partition is missing (the first run), and only
    `day`'s partitions of the action sources. Writes the state as of `day` + 1, and the
    `customer_histories` and `shown_items` of `day` + 1 under `out`, each by replacing its
    partition, so a rerun gives the same tables.

    Returns:
        Rows written per table (the state counts customers).
    """
    from carousel.incremental import advance_state, histories_from_state, initial_state

    next_day = (parse_day(day) + dt.timedelta(days=1)).isoformat()
    raw = {name: read_source(spark, sources[name], name) for name in RAW_SOURCES}
    has_state = os.path.isdir(os.path.join(state_path, "_delta_log"))
    state = read_partition(spark, state_path, "as_of", day) if has_state else None
    if state is None or state.isEmpty():
        with stage(f"state as of {day} from the whole history") as facts:
            actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"])
            replace_partition(initial_state(actions, day, config), state_path, "as_of", day)
            state = read_partition(spark, state_path, "as_of", day)
            facts["customers"] = state.count()
    day_actions = unify_actions(
        raw["clicks"].where(F.col("dt") == day),
        raw["add_to_carts"].where(F.col("dt") == day),
        raw["orders"].where(F.col("order_date") == F.lit(day).cast("date")),
    )
    written = {}
    with stage(f"state as of {next_day}") as facts:
        replace_partition(advance_state(state, day_actions, day, config), state_path, "as_of", next_day)
        advanced = read_partition(spark, state_path, "as_of", next_day)
        written["state"] = facts["customers"] = advanced.count()
    impressions = impressions_in_window(raw["impressions"], next_day, next_day)
    with stage(f"customer_histories of {next_day}") as facts:
        path = os.path.join(out, "customer_histories")
        replace_partition(histories_from_state(advanced, customer_days(impressions), config), path, "dt", next_day)
        written["customer_histories"] = facts["rows"] = read_partition(spark, path, "dt", next_day).count()
    with stage(f"shown_items of {next_day}") as facts:
        path = os.path.join(out, "shown_items")
        replace_partition(explode_impressions(impressions), path, "dt", next_day)
        written["shown_items"] = facts["rows"] = read_partition(spark, path, "dt", next_day).count()
    return written


def run_local_pipeline(spark: SparkSession, args: argparse.Namespace) -> None:
    """Run the declarative pipeline over `args.input` and print its summary."""
    from carousel.local_pipeline import LocalPipeline, run_recorded
    from carousel.pipeline_settings import PipelineSettings

    settings = PipelineSettings(
        sources=_sources(args),
        window_start=args.from_dt,
        window_end=args.to_dt,
        history=HistoryConfig(history_length=args.history_length, lookback_days=args.lookback_days),
    )
    pipeline = LocalPipeline(Path(args.work_dir))
    with stage("spark-pipelines run"):
        summary = run_recorded(
            spark,
            pipeline,
            settings,
            cores=os.cpu_count() or 2,
            driver_memory=args.driver_memory,
            shuffle_partitions=args.shuffle_partitions,
        )
    for line in summary.lines():
        print(line)
    log.info("run metrics: %s", pipeline.run_metrics)


def train_locally(spark: SparkSession, args: argparse.Namespace) -> RegisteredBaseline:
    """Train and register the baseline on local gold tables: the pipeline's published ones unless named."""
    from carousel.baseline_run import MlflowTarget, baseline_config, train_and_register
    from carousel.local_pipeline import LocalPipeline, read_published
    from carousel.pipeline_datasets import ACTIONS_SILVER, TRAINING_EXAMPLES_GOLD

    if args.examples:
        packed, actions = read_source(spark, args.examples, "examples"), read_source(spark, args.actions, "actions")
    else:
        pipeline = LocalPipeline(Path(args.pipeline_dir))
        packed = read_published(spark, pipeline, TRAINING_EXAMPLES_GOLD)
        actions = read_published(spark, pipeline, ACTIONS_SILVER)
    target = MlflowTarget.local(args.mlflow_dir, args.experiment, args.model_name)
    with stage("train baseline"):
        registered = train_and_register(packed, actions, baseline_config(args), target, args.report_dir)
    print(f"registered {registered.model_name} version {registered.model_version} ({registered.model_uri})")
    print(f"report: {registered.report}")
    return registered


def _synthetic_config(args: argparse.Namespace):
    from carousel.synthetic import SyntheticConfig

    names = {field.name for field in fields(SyntheticConfig)}
    return SyntheticConfig(**{name: value for name, value in vars(args).items() if name in names and value is not None})


def _add_spark_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shuffle-partitions",
        type=knob("shuffle_partitions"),
        default=8,
        help="spark.sql.shuffle.partitions (default 8)",
    )
    parser.add_argument("--driver-memory", default="6g", help="local Spark driver memory (default 6g)")
    # Also accepted before the command; given here, it must not reset what was given there.
    add_verbose_option(parser, default=argparse.SUPPRESS)


def _add_generate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=whole_number("customers"), help="number of customers (default 20000)")
    parser.add_argument("--window-days", type=knob("window_days"), help="impression days (default 14)")
    parser.add_argument(
        "--history-days", type=whole_number("history_days", 0), help="days of actions before the window (default 365)"
    )
    parser.add_argument(
        "--window-end", type=day("window_end"), help="last impression day, yyyy-MM-dd (default 2025-06-30)"
    )
    parser.add_argument(
        "--actions-per-customer-year",
        type=number("actions_per_customer_year", 0, math.inf),
        help="mean actions per customer per year (default 900)",
    )
    parser.add_argument(
        "--dirty-rate", type=number("dirty_rate", 0, 1), help="share of extra dirty rows per source (default 0.001)"
    )
    parser.add_argument("--seed", type=int, help="random seed (default 7)")


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history-length", type=knob("history_length"), default=DEFAULT_HISTORY_LENGTH, help="N (default 1000)"
    )
    parser.add_argument(
        "--lookback-days", type=knob("lookback_days"), default=DEFAULT_LOOKBACK_DAYS, help="(default 365)"
    )
    parser.add_argument(
        "--from-dt", type=day("from_dt"), help="first impression dt to build, yyyy-MM-dd (default: all)"
    )
    parser.add_argument("--to-dt", type=day("to_dt"), help="last impression dt to build, yyyy-MM-dd (default: all)")
    for name in RAW_SOURCES:
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=name, help=f"{name}: table name or path (default INPUT/{name})"
        )


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `carousel` parser, and the parser of each command by name."""
    parser = argparse.ArgumentParser(prog="carousel", description=__doc__)
    add_verbose_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    generate_cmd = commands.add_parser("generate", help="write synthetic raw data (Delta tables) to --out")
    generate_cmd.add_argument("--out", default="data/raw", help="output directory (default data/raw)")
    _add_generate_options(generate_cmd)
    _add_spark_options(generate_cmd)

    build_cmd = commands.add_parser("build", help="build the training data from raw tables or paths")
    build_cmd.add_argument(
        "--input", default="data/raw", help="directory holding the four raw sources (default data/raw)"
    )
    build_cmd.add_argument("--out", default="data/gold", help="output directory (default data/gold)")
    _add_build_options(build_cmd)
    _add_spark_options(build_cmd)

    advance_cmd = commands.add_parser(
        "advance",
        help="incremental daily mode: add --day's actions to the stored state, write the histories of the day after",
    )
    advance_cmd.add_argument(
        "--day", required=True, type=day("day"), help="the day whose actions are added, yyyy-MM-dd"
    )
    advance_cmd.add_argument(
        "--input", default="data/raw", help="directory holding the four raw sources (default data/raw)"
    )
    advance_cmd.add_argument(
        "--state", default="data/state", help="the state's Delta table, partitioned by as_of (default data/state)"
    )
    advance_cmd.add_argument("--out", default="data/gold", help="output directory (default data/gold)")
    _add_build_options(advance_cmd)
    _add_spark_options(advance_cmd)

    pipeline_cmd = commands.add_parser(
        "pipeline",
        help="run the declarative pipeline locally with spark-pipelines (demo data generated when --input is absent)",
    )
    pipeline_cmd.add_argument("--input", default="data/raw", help="raw data directory; generated there when absent")
    pipeline_cmd.add_argument(
        "--work-dir", default="data/pipeline", help="spec, catalog and Delta warehouse (default data/pipeline)"
    )
    _add_generate_options(pipeline_cmd)
    _add_build_options(pipeline_cmd)
    _add_spark_options(pipeline_cmd)

    train_cmd = commands.add_parser(
        "train",
        help="train the baseline model on the gold data, write its evaluation report, register it in MLflow",
    )
    train_cmd.add_argument(
        "--pipeline-dir", default="data/pipeline", help="read the tables `carousel pipeline` published there"
    )
    train_cmd.add_argument("--examples", help="training_examples_gold instead: a table name or a path")
    train_cmd.add_argument("--actions", help="actions_silver instead: a table name or a path")
    train_cmd.add_argument(
        "--mlflow-dir", default="data/mlflow", help="local MLflow tracking and registry (SQLite) and artifacts"
    )
    add_train_options(train_cmd)
    _add_spark_options(train_cmd)

    run_cmd = commands.add_parser("run", help="generate raw data (unless --input has it) and build, in one go")
    run_cmd.add_argument("--input", default="data/raw", help="raw data directory; generated there when absent")
    run_cmd.add_argument("--out", default="data/gold", help="output directory (default data/gold)")
    _add_generate_options(run_cmd)
    _add_build_options(run_cmd)
    _add_spark_options(run_cmd)
    return parser, dict(commands.choices)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The `carousel` command's arguments, every one checked: a bad one is a usage error (exit 2), no Spark started."""
    parser, commands = _parsers()
    args = parser.parse_args(argv)
    command = commands[args.command]
    try:
        if args.command == "train" and bool(args.examples) != bool(args.actions):
            command.error("give both --examples and --actions, or neither (to read --pipeline-dir)")
        if hasattr(args, "from_dt"):
            check_window(args.from_dt, args.to_dt, "--from-dt", "--to-dt")
        if hasattr(args, "customers"):
            # The generator's own checks, and a window or history reaching before year 1.
            _synthetic_config(args).history_start  # noqa: B018
    except OverflowError:
        command.error("--window-days and --history-days reach back before 0001-01-01 from --window-end")
    except ValueError as error:  # KnobRangeError, DayFormatError, the generator's checks
        command.error(str(error))
    return args


def _sources(args: argparse.Namespace) -> dict[str, str]:
    return {name: getattr(args, name) or os.path.join(args.input, name) for name in RAW_SOURCES}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `carousel` command.

    An error of the project prints one line, `carousel: error: <message>`, and exits 1 (with the
    traceback first under `--verbose`); a bad option exits 2 before any Spark starts.
    """
    args = parse_args(argv)
    configure_logging(args.verbose)
    return run_command("carousel", lambda: _run(args), args.verbose)


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.command in ("build", "advance"):
        # A wrong --input or source path fails now, not after Spark has started.
        for name, source in _sources(args).items():
            check_source_exists(source, name)
    if args.command == "train" and args.examples:
        check_source_exists(args.examples, "examples")
        check_source_exists(args.actions, "actions")
    spark = _spark(args)
    if args.command in ("generate", "run", "pipeline") and (
        args.command == "generate" or not os.path.isdir(args.input)
    ):
        target = args.out if args.command == "generate" else args.input
        generate(spark, target, _synthetic_config(args))
    if args.command in ("build", "run"):
        config = HistoryConfig(history_length=args.history_length, lookback_days=args.lookback_days)
        written = build(spark, _sources(args), args.out, config, args.from_dt, args.to_dt)
        for table, rows in written.items():
            log.info("wrote %s: %s rows -> %s", table, f"{rows:,}", os.path.join(args.out, table))
    if args.command == "advance":
        config = HistoryConfig(history_length=args.history_length, lookback_days=args.lookback_days)
        written = advance(spark, _sources(args), args.state, args.out, args.day, config)
        for table, rows in written.items():
            log.info("wrote %s: %s rows", table, f"{rows:,}")
    if args.command == "pipeline":
        run_local_pipeline(spark, args)
    if args.command == "train":
        train_locally(spark, args)
    log.info("%s finished in %.1f s", args.command, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
