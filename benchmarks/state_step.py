"""The gold step's daily state update: the engine's MERGE against rewriting the whole state.

    python benchmarks/state_step.py run --warehouse /tmp/bench/daily_cli/work/warehouse [--repeats 3]

Works on the warehouse a `benchmarks/daily.py cli` (or `carousel pipeline`) run left: its state
(`customer_action_state`, one row per customer) and the actions of the state's day in
`actions_silver`. Each measurement is a process of its own on a fresh copy of the state: one
warm-up read, then the day's actions added, either by the engine's MERGE of the customers that
change (`carousel.engine.merge_day_into_state`) or by `carousel.incremental.advance_state` written
over the whole table (the layout before issue 24). Both at the day's own share of active
customers, and with the day cut to every 20th customer (5%, nearer a shop where most customers
are idle on a given day). Approaches alternate; the line printed is the median of --repeats.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARES = {"day": None, "5%": 20}
"""The day's actions as landed, or only every n-th customer's."""
APPROACHES = ("merge", "rewrite")


def one(args: argparse.Namespace) -> None:
    """Time one approach once on a fresh copy of the state; print a JSON line."""
    from pyspark.sql import functions as F

    from carousel.config import HistoryConfig
    from carousel.contract import ACTIONS_SILVER, CUSTOMER_ACTION_STATE, GOLD_PROGRESS
    from carousel.engine import merge_day_into_state
    from carousel.incremental import advance_state
    from carousel.spark import local_spark
    from carousel.storage import read_table, write_table

    warehouse = Path(args.warehouse)
    spark = local_spark("state-step-benchmark", shuffle_partitions=8, driver_memory="8g")
    progress = read_table(spark, str(warehouse / GOLD_PROGRESS.name))
    as_of = str(progress.agg(F.max("state_as_of")).first()[0])
    state = Path(args.scratch) / f"state_{args.approach}"
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(warehouse / CUSTOMER_ACTION_STATE.name, state)
    actions = read_table(spark, str(warehouse / ACTIONS_SILVER.name))
    if SHARES[args.share]:
        actions = actions.where(F.col("customer_id") % SHARES[args.share] == 0)
    day = actions.where(F.col("action_day") == F.lit(as_of).cast("date"))
    customers_before = read_table(spark, str(state)).count()  # the warm-up: a first query pays the JVM's start
    active = day.select("customer_id").distinct().count()
    config = HistoryConfig()
    started = time.perf_counter()
    if args.approach == "merge":
        merge_day_into_state(spark, str(state), as_of, actions, config)
    else:
        day_of_state = F.lit(as_of).cast("date").alias("as_of")
        stored = read_table(spark, str(state)).select("customer_id", day_of_state, "actions")
        write_table(advance_state(stored, day, as_of, config).select(*CUSTOMER_ACTION_STATE.column_names), str(state))
    seconds = time.perf_counter() - started
    line = {"approach": args.approach, "share": args.share, "seconds": round(seconds, 2), "as_of": as_of}
    line |= {"customers_in": customers_before, "active": active, "customers_out": read_table(spark, str(state)).count()}
    print(json.dumps(line), flush=True)


def run(args: argparse.Namespace) -> None:
    """Every approach at every share, --repeats times, alternating; a median per approach and share."""
    for share in SHARES:
        seconds: dict[str, list[float]] = {approach: [] for approach in APPROACHES}
        for repeat in range(args.repeats):
            for approach in APPROACHES if repeat % 2 == 0 else reversed(APPROACHES):
                command = [sys.executable, __file__, "one", "--warehouse", args.warehouse, "--scratch", args.scratch]
                done = subprocess.run(
                    [*command, "--approach", approach, "--share", share],
                    capture_output=True, text=True, check=True, cwd=REPO,
                )  # fmt: skip
                line = json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps(line), flush=True)
                seconds[approach].append(line["seconds"])
        medians = {approach: statistics.median(values) for approach, values in seconds.items()}
        print(
            f"share {share} (active customers {line['active']:,} of {line['customers_in']:,}): "
            + ", ".join(f"{approach} median {median:.1f} s {seconds[approach]}" for approach, median in medians.items())
            + f"; merge / rewrite {medians['merge'] / medians['rewrite']:.2f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="both approaches at both shares, alternating, each its own process")
    one_cmd = commands.add_parser("one", help="one approach once (what `run` starts)")
    for sub in (run_cmd, one_cmd):
        sub.add_argument("--warehouse", required=True, help="a pipeline run's warehouse folder")
        sub.add_argument("--scratch", default="/tmp/state_step", help="where the copies of the state go")
    run_cmd.add_argument("--repeats", type=int, default=3)
    one_cmd.add_argument("--approach", choices=APPROACHES, required=True)
    one_cmd.add_argument("--share", choices=list(SHARES), required=True)
    args = parser.parse_args(argv)
    {"run": run, "one": one}[args.command](args)


if __name__ == "__main__":
    main()
