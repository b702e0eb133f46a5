"""`carousel generate | build | run | advance | pipeline | train | rerank-vocabulary`: parse arguments, dispatch."""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import fields

from pyspark.sql import SparkSession

from carousel.baseline.run import add_train_options
from carousel.config import (
    DEFAULT_HISTORY_LENGTH,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_WINDOW_DAYS,
    HistoryConfig,
    check_window,
)
from carousel.console import add_verbose_option, configure_logging, day, knob, number, run_command, whole_number
from carousel.contract import ITEM_VOCABULARY_GOLD as VOCABULARY_TABLE
from carousel.errors import CarouselError
from carousel.storage import RAW_SOURCES, check_source_exists

log = logging.getLogger("carousel")


def _spark_log(args: argparse.Namespace) -> str:
    """Where the JVM's own output goes: a log file under the command's work or output directory."""
    if args.command == "generate":  # not inside the raw data's own folder
        return os.path.join(os.path.dirname(os.path.abspath(args.out)), "logs", "spark.log")
    folder = {"pipeline": "work_dir", "train": "mlflow_dir"}.get(args.command, "out")
    return os.path.join(getattr(args, folder), "logs", "spark.log")


def _spark(args: argparse.Namespace) -> SparkSession:
    from carousel.spark import local_spark

    return local_spark(
        "carousel-cli",
        shuffle_partitions=args.shuffle_partitions,
        driver_memory=args.driver_memory,
        log_file=_spark_log(args),
        kafka=getattr(args, "kafka", False),  # only `pipeline --kafka` produces to a topic from this session
    )


def _synthetic_config(args: argparse.Namespace):
    from carousel.synthetic import SyntheticConfig

    names = {field.name for field in fields(SyntheticConfig)}
    return SyntheticConfig(**{name: value for name, value in vars(args).items() if name in names and value is not None})


def add_spark_options(parser: argparse.ArgumentParser) -> None:
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


# Long on purpose: the declarations of every command's options, one after another.
def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `carousel` parser, and the parser of each command by name."""
    parser = argparse.ArgumentParser(prog="carousel", description=__doc__)
    add_verbose_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    generate_cmd = commands.add_parser("generate", help="write synthetic raw data (Delta tables) to --out")
    generate_cmd.add_argument("--out", default="data/raw", help="output directory (default data/raw)")
    generate_cmd.add_argument(
        "--next-day",
        action="store_true",
        help="append one more day (the day after the newest impressions in --out) instead of writing a new data set",
    )
    _add_generate_options(generate_cmd)
    add_spark_options(generate_cmd)

    build_cmd = commands.add_parser("build", help="build the training data from raw tables or paths")
    build_cmd.add_argument(
        "--input", default="data/raw", help="directory holding the four raw sources (default data/raw)"
    )
    build_cmd.add_argument("--out", default="data/gold", help="output directory (default data/gold)")
    _add_build_options(build_cmd)
    add_spark_options(build_cmd)

    advance_cmd = commands.add_parser(
        "advance",
        help="daily mode: take in --day's actions and the next day's impressions, then build that next day from "
        "the state under --out (what `carousel build` wrote there)",
    )
    advance_cmd.add_argument(
        "--day", required=True, type=day("day"), help="the day whose actions are added, yyyy-MM-dd"
    )
    advance_cmd.add_argument(
        "--input", default="data/raw", help="directory holding the four raw sources (default data/raw)"
    )
    advance_cmd.add_argument("--out", default="data/gold", help="output directory (default data/gold)")
    advance_cmd.add_argument(
        "--window-days",
        type=knob("window_days"),
        help="impression days gold keeps, ending the day after --day (default 14)",
    )
    _add_build_options(advance_cmd)
    add_spark_options(advance_cmd)

    pipeline_cmd = commands.add_parser(
        "pipeline",
        help="run the declarative pipeline locally with spark-pipelines (demo data generated when --input is absent)",
    )
    pipeline_cmd.add_argument("--input", default="data/raw", help="raw data directory; generated there when absent")
    pipeline_cmd.add_argument(
        "--work-dir", default="data/pipeline", help="spec, catalog and Delta warehouse (default data/pipeline)"
    )
    pipeline_cmd.add_argument(
        "--kafka",
        action="store_true",
        help="read clicks and add-to-carts from a local Kafka broker (started and stopped here, its log in the work "
        "dir) after producing to it the landed rows not produced yet",
    )
    pipeline_cmd.add_argument(
        "--force",
        action="store_true",
        help="run spark-pipelines and the gold step even when nothing is new since the last run (same sources, "
        "settings and tables), which an update otherwise only records",
    )
    _add_generate_options(pipeline_cmd)
    _add_build_options(pipeline_cmd)
    add_spark_options(pipeline_cmd)

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
    add_spark_options(train_cmd)

    rerank_cmd = commands.add_parser(
        "rerank-vocabulary",
        help="give every item its embedding index again by frequency, as the vocabulary's next version "
        "(the only operation that moves known items' indices)",
    )
    rerank_cmd.add_argument(
        "--tables",
        default="data/pipeline/warehouse",
        help="the folder of the gold tables: a pipeline's warehouse or `carousel build`'s --out "
        "(default data/pipeline/warehouse)",
    )
    add_spark_options(rerank_cmd)

    run_cmd = commands.add_parser("run", help="generate raw data (unless --input has it) and build, in one go")
    run_cmd.add_argument("--input", default="data/raw", help="raw data directory; generated there when absent")
    run_cmd.add_argument("--out", default="data/gold", help="output directory (default data/gold)")
    _add_generate_options(run_cmd)
    _add_build_options(run_cmd)
    add_spark_options(run_cmd)
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
    except CarouselError as error:  # KnobRangeError, DayFormatError, the generator's ConfigError
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


def _history(args: argparse.Namespace) -> HistoryConfig:
    return HistoryConfig(history_length=args.history_length, lookback_days=args.lookback_days)


def _run(args: argparse.Namespace) -> int:
    from carousel import batch
    from carousel.local import demo_data

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
        if getattr(args, "next_day", False):
            day, appended = demo_data.generate_next_day(spark, target, _synthetic_config(args))
            log.info("appended %s: %s", day, ", ".join(f"{rows:,} {source}" for source, rows in appended.items()))
        else:
            demo_data.generate(spark, target, _synthetic_config(args))
    if args.command in ("build", "run"):
        written = batch.build(spark, _sources(args), args.out, _history(args), args.from_dt, args.to_dt)
        for table, rows in written.items():
            log.info("wrote %s: %s rows -> %s", table, f"{rows:,}", os.path.join(args.out, table))
    if args.command == "advance":
        window_days = args.window_days or DEFAULT_WINDOW_DAYS
        written = batch.advance(spark, _sources(args), args.out, args.day, _history(args), window_days)
        for table, rows in written.items():
            log.info("wrote %s: %s rows", table, f"{rows:,}")
    if args.command == "rerank-vocabulary":
        from carousel.engine import GoldTables, rerank_vocabulary

        version = rerank_vocabulary(spark, GoldTables.under(args.tables))
        print(f"item vocabulary re-ranked as version {version}: {os.path.join(args.tables, VOCABULARY_TABLE.name)}")
    if args.command == "pipeline":
        _pipeline(spark, args)
    if args.command == "train":
        _train(spark, args)
    log.info(
        "%s finished in %.1f s; Spark's own output: %s", args.command, time.perf_counter() - started, _spark_log(args)
    )
    return 0


def _pipeline(spark: SparkSession, args: argparse.Namespace) -> None:
    from carousel.local.runner import run_local_pipeline
    from carousel.pipeline.settings import PipelineSettings

    settings = PipelineSettings(
        sources=_sources(args),
        window_start=args.from_dt,
        window_end=args.to_dt,
        window_days=args.window_days or DEFAULT_WINDOW_DAYS,
        history=_history(args),
    )
    lines = run_local_pipeline(
        spark, settings, args.work_dir, args.driver_memory, args.shuffle_partitions, kafka=args.kafka, force=args.force
    )
    for line in lines:
        print(line)


def _train(spark: SparkSession, args: argparse.Namespace) -> None:
    from carousel.baseline.run import MlflowTarget, baseline_config
    from carousel.local.training import train_locally

    target = MlflowTarget.local(args.mlflow_dir, args.experiment, args.model_name)
    registered = train_locally(
        spark, baseline_config(args), target, args.report_dir, args.pipeline_dir, args.examples, args.actions
    )
    print(f"registered {registered.model_name} version {registered.model_version} ({registered.model_uri})")
    print(f"report: {registered.report}")


if __name__ == "__main__":
    raise SystemExit(main())
