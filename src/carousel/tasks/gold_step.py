"""`carousel-gold`: the daily job's task after the declarative pipeline, running the gold engine on its tables.

The engine (`carousel.engine`) builds the gold days that are new or whose inputs changed, grows the
item vocabulary and advances the per-customer state; this module only names the tables of the
pipeline's schema and turns the arguments into the engine's window and history settings.
`--rerank-vocabulary` runs the one operation that gives known items new indices.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pyspark.sql import SparkSession

from carousel import contract
from carousel.config import DEFAULT_HISTORY_LENGTH, DEFAULT_LOOKBACK_DAYS, DEFAULT_WINDOW_DAYS, HistoryConfig
from carousel.console import (
    add_table_location_options,
    add_verbose_option,
    configure_logging,
    knob,
    optional_day,
    parse_table_location_args,
    run_command,
)
from carousel.engine import GoldReport, GoldTables, Window, build_gold, rerank_vocabulary

KIND = "gold step table"
"""What the lineage page calls the tables this step writes."""

READS: dict[str, tuple[str, ...]] = {
    contract.CUSTOMER_HISTORIES_GOLD.name: (contract.ACTIONS_SILVER.name, contract.bronze("impressions")),
    contract.TRAINING_EXAMPLES_GOLD.name: (contract.CUSTOMER_HISTORIES_GOLD.name, contract.bronze("impressions")),
    contract.ITEM_VOCABULARY_GOLD.name: (contract.ACTIONS_SILVER.name, contract.bronze("impressions")),
}
"""Gold table -> the tables the step reads to write it: the step's edges in the pipeline's graph."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `carousel-gold`'s arguments: the daily job's task after the pipeline."""
    parser = argparse.ArgumentParser(
        prog="carousel-gold",
        description="Build the gold days that are new or whose inputs changed, from the pipeline's silver and bronze.",
    )
    add_table_location_options(parser)
    parser.add_argument("--window-days", type=knob("window_days"), default=DEFAULT_WINDOW_DAYS, help="(default 14)")
    parser.add_argument("--window-start", type=optional_day("window_start"), default=None, help="backfill: first day")
    parser.add_argument("--window-end", type=optional_day("window_end"), default=None, help="backfill: last day")
    parser.add_argument("--retention-days", type=knob("retention_days"), default=0, help="days kept before the window")
    parser.add_argument("--history-length", type=knob("history_length"), default=DEFAULT_HISTORY_LENGTH, help="N")
    parser.add_argument("--lookback-days", type=knob("lookback_days"), default=DEFAULT_LOOKBACK_DAYS, help="L")
    parser.add_argument(
        "--rerank-vocabulary",
        action="store_true",
        help="instead of a step: give every item its index again by frequency, as the vocabulary's next version",
    )
    add_verbose_option(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the gold step on the tables of `--catalog`.`--schema`; one line per outcome, exit 1 on an error."""
    args = parse_table_location_args(build_parser(), argv)
    configure_logging(args.verbose)
    tables = GoldTables.in_schema(args.catalog, args.schema)
    if args.rerank_vocabulary:
        version = run_command(
            "carousel-gold", lambda: rerank_vocabulary(SparkSession.builder.getOrCreate(), tables), args.verbose
        )
        print(f"gold: item vocabulary re-ranked as version {version}")
        return
    window = Window(args.window_days, args.window_start, args.window_end, args.retention_days)
    history = HistoryConfig(args.history_length, args.lookback_days)

    def step() -> GoldReport:
        return build_gold(SparkSession.builder.getOrCreate(), tables, window, history)

    report = run_command("carousel-gold", step, args.verbose)
    print(f"gold: {report.path}: built {', '.join(report.days_built) or 'no day'}")


if __name__ == "__main__":
    main()
