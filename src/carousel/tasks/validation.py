"""`carousel-validate`: the daily job's check of the gold days the update built (the checks: `carousel.gold_checks`).

`validate_gold` reads the pipeline's gold tables (and actions_silver) from the catalog, narrows
them to the days the newest gold step built, and runs `carousel.gold_checks.check_gold`; `main`
is the command, one line naming every broken invariant and exit 1 when any breaks.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel.config import DEFAULT_HISTORY_LENGTH
from carousel.console import (
    add_table_location_options,
    add_verbose_option,
    configure_logging,
    knob,
    parse_table_location_args,
    run_command,
)
from carousel.gold_checks import (
    GOLD_PROGRESS,
    OPTIONAL_TABLES,
    REQUIRED_TABLES,
    GoldValidationError,
    InvariantFailure,
    check_gold,
    check_schemas,
    only_days,
)
from carousel.storage import qualified_name, table_exists

log = logging.getLogger("carousel")


def days_built_last(spark: SparkSession, catalog: str | None, schema: str | None) -> list[str] | None:
    """The impression days the newest gold step built (`gold_progress`), or None where no step has recorded any."""
    location = qualified_name(catalog, schema, GOLD_PROGRESS)
    if not table_exists(spark, location):
        return None
    newest = spark.table(location).orderBy(F.col("finished_at").desc()).first()
    return sorted(newest["days_built"]) if newest is not None and "days_built" in newest.asDict() else None


def validate_gold(
    spark: SparkSession,
    catalog: str | None,
    schema: str | None,
    history_length: int,
    lookback_days: int | None = None,
    days: Sequence[str] | None = None,
) -> None:
    """Read the pipeline's gold tables (and actions_silver) and raise `GoldValidationError` if any invariant breaks.

    Args:
        spark: the session that can read the pipeline's catalog.
        catalog: the pipeline's catalog; empty for the session's current one.
        schema: the pipeline's schema; empty for the session's current one (or temp views).
        history_length: N, the pipeline's history length.
        lookback_days: the pipeline's lookback; tightens the leakage bound when given.
        days: check only these impression days (`days_built_last`: what the update built); None: every day.
    """
    from pyspark.errors import AnalysisException

    tables: dict[str, DataFrame] = {}
    unreadable = []
    for name in REQUIRED_TABLES + OPTIONAL_TABLES:
        qualified = qualified_name(catalog, schema, name)
        try:
            frame = spark.table(qualified)
            frame.schema  # noqa: B018 - Spark Connect resolves tables lazily; this makes a missing one fail here
        except AnalysisException as error:
            if name in OPTIONAL_TABLES:  # only the leakage bound reads it
                continue
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            unreadable.append(InvariantFailure(name, "table_exists", 1, detail=f"{qualified} cannot be read: {reason}"))
            continue
        tables[name] = frame
    if unreadable:
        raise GoldValidationError(unreadable)
    check_schemas(tables)  # before the days are picked, by the `dt` column
    if days is not None:
        log.info("checking the gold days %s", ", ".join(days) or "(none: the update built no day)")
        tables = only_days(tables, days, lookback_days)
    check_gold(tables, history_length, lookback_days)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `carousel-validate`'s arguments."""
    parser = argparse.ArgumentParser(
        prog="carousel-validate",
        description="Check the carousel pipeline's gold tables; exit non-zero naming every broken invariant.",
    )
    add_table_location_options(parser)
    parser.add_argument("--history-length", type=knob("history_length"), default=DEFAULT_HISTORY_LENGTH, help="N")
    parser.add_argument(
        "--lookback-days",
        type=knob("lookback_days"),
        default=None,
        help="the pipeline's lookback (tightens the leakage bound)",
    )
    parser.add_argument(
        "--all-days",
        action="store_true",
        help="check every day of the gold tables, not only the days the newest gold step built (the default)",
    )
    add_verbose_option(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """`carousel-validate`'s arguments, checked: a bad one is a usage error (exit 2) before Spark starts."""
    return parse_table_location_args(build_parser(), argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Validate the gold tables named by the command line.

    Raises:
        SystemExit: 1 with the message `carousel-validate: error: gold tables break their invariants: ...`
            naming every broken invariant on one line (Python prints it to stderr); 2 on a bad option.
    """
    args = parse_args(argv)
    configure_logging(args.verbose)

    def validate() -> None:
        spark = SparkSession.builder.getOrCreate()
        days = None if args.all_days else days_built_last(spark, args.catalog, args.schema)
        validate_gold(spark, args.catalog, args.schema, args.history_length, args.lookback_days, days)

    # A failed validation exits 1, which fails the job task.
    run_command("carousel-validate", validate, args.verbose)
    print(f"gold tables in {qualified_name(args.catalog, args.schema, '*')} keep every invariant")


if __name__ == "__main__":
    main()
