"""Daily operation: the first update (the backfill), then simulated days, each one more update.

    python benchmarks/daily.py run [--customers 20000] [--days 7] [--history-days 365] [--kafka] [--data-dir ...]
    python benchmarks/daily.py idle [--customers 20000] [--days 7] [--kafka] [--data-dir data/bench/daily]
    python benchmarks/daily.py cli [--customers 20000] [--days 7] [--history-days 90] [--idle 3] [--data-dir ...]
    python benchmarks/daily.py report      # the tables of docs/daily.md from docs/daily.jsonl

`run` generates the demo data (a year of actions, 14 impression days) afresh under --data-dir,
runs the local pipeline once (streaming bronze, quarantine and silver, then the gold step), and
then --days times lands one more day (`carousel.local.demo_data.generate_next_day`) and runs the next
update. Every update appends one JSON line to --results: wall seconds (the `spark-pipelines`
start included), seconds per flow and per stage of the gold step, the gold step's way and days, and
the rows each source took in. `idle` runs one more update over what `run` left, with nothing new
landed: what an update costs whatever the data (its line joins that run's table). With --kafka,
clicks and add-to-carts go through a local Kafka broker: before each update the broker starts and
the rows landed since the last update are produced to it (timed apart: in production the shop's
services produce them), then the update reads the topics.

`cli` measures what a user runs, each command its own process: `carousel generate`, `carousel
pipeline` (the backfill), then --days times `carousel generate --next-day` and `carousel
pipeline`, then --idle more `carousel pipeline` with nothing new landed. Each line holds the
command's wall seconds (the Python and Spark starts included), `generate --next-day`'s seconds,
and the run's own seconds per stage from its run-metrics rows.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

log = logging.getLogger("carousel")

RESULTS = REPO / "docs" / "daily.jsonl"
PAGE = REPO / "docs" / "daily.md"
ANALYSIS = "## Where the time goes\n"
"""The hand-written part of docs/daily.md starts at this heading; `report` keeps it as it is."""
COMMAND = "python benchmarks/daily.py run --customers {customers} --days {days} --history-days {history_days}{kafka}"
CLI_COMMAND = "python benchmarks/daily.py cli --customers {customers} --days {days} --history-days {history_days}"
_GOLD_LINE = re.compile(r"^gold step: (.+?): built (.+)$")
_APPENDED = re.compile(r"appended \d{4}-\d\d-\d\d: .*")


def run(args: argparse.Namespace) -> None:
    from carousel.config import HistoryConfig
    from carousel.local.demo_data import generate, generate_next_day
    from carousel.local.spark_pipelines import LocalPipeline
    from carousel.pipeline.settings import PipelineSettings
    from carousel.spark import local_spark
    from carousel.storage import RAW_SOURCES
    from carousel.synthetic import SyntheticConfig

    data = Path(args.data_dir).resolve()
    shutil.rmtree(data, ignore_errors=True)
    spark = local_spark(
        "daily-benchmark",
        shuffle_partitions=args.shuffle_partitions,
        driver_memory=args.driver_memory,
        kafka=args.kafka,  # --kafka produces the landed rows to the topics from this session
    )
    config = SyntheticConfig(customers=args.customers, history_days=args.history_days)
    raw = data / "raw"
    generate(spark, str(raw), config)
    settings = PipelineSettings(sources={source: str(raw / source) for source in RAW_SOURCES}, history=HistoryConfig())
    pipeline = LocalPipeline(data / "work")
    label = _label(args)
    for update in range(args.days + 1):
        landed = None
        if update:
            day, landed = generate_next_day(spark, str(raw), config)
            log.info("landed %s: %s", day, landed)
        _update(spark, args, settings, pipeline, label, update, "backfill" if update == 0 else "daily", landed)


def idle(args: argparse.Namespace) -> None:
    """One more update over the data `run` left under --data-dir, with nothing new landed."""
    from carousel.config import HistoryConfig
    from carousel.local.spark_pipelines import LocalPipeline
    from carousel.pipeline.settings import PipelineSettings
    from carousel.spark import local_spark
    from carousel.storage import RAW_SOURCES

    data = Path(args.data_dir).resolve()
    raw = data / "raw"
    spark = local_spark(
        "daily-benchmark",
        shuffle_partitions=args.shuffle_partitions,
        driver_memory=args.driver_memory,
        kafka=args.kafka,  # --kafka produces the landed rows to the topics from this session
    )
    settings = PipelineSettings(sources={source: str(raw / source) for source in RAW_SOURCES}, history=HistoryConfig())
    label = _label(args)
    _update(spark, args, settings, LocalPipeline(data / "work"), label, args.days + 1, "idle", None)


def cli(args: argparse.Namespace) -> None:
    """Generate, backfill, --days daily updates and --idle idle ones, each a `carousel` command of its own."""
    data = Path(args.data_dir).resolve()
    shutil.rmtree(data, ignore_errors=True)
    raw, work = data / "raw", data / "work"
    spark_options = ["--driver-memory", args.driver_memory, "--shuffle-partitions", str(args.shuffle_partitions)]
    _carousel(["generate", "--out", str(raw), "--customers", str(args.customers)]
              + ["--history-days", str(args.history_days), *spark_options])  # fmt: skip
    pipeline = ["pipeline", "--input", str(raw), "--work-dir", str(work), *spark_options]
    label = CLI_COMMAND.format(customers=args.customers, days=args.days, history_days=args.history_days)
    kinds = ["backfill"] + ["daily"] * args.days + ["idle"] * args.idle
    for update, kind in enumerate(kinds):
        generate_s, landed = None, None
        if kind == "daily":
            generate_s, output = _carousel(["generate", "--next-day", "--out", str(raw), *spark_options])
            appended = _APPENDED.search(output)
            landed = appended.group(0) if appended else None
        wall, output = _carousel(pipeline)
        gold = [match for match in map(_GOLD_LINE.match, output.splitlines()) if match]
        path, days = (gold[-1].group(1), gold[-1].group(2)) if gold else ("-", "no day")
        line = {
            "command": label,
            "update": update,
            "kind": kind,
            "wall_s": round(wall, 1),
            "generate_s": None if generate_s is None else round(generate_s, 1),
            "generated": landed,
            "gold_path": path,
            "gold_days": [] if days == "no day" else days.split(", "),
            "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
            **_newest_run_facts(work / "run_metrics"),
        }
        with open(args.results, "a") as out:
            out.write(json.dumps(line) + "\n")
        log.info("update %d (%s): %.1f s (generate --next-day %s s)", update, kind, wall, line["generate_s"])


def _carousel(arguments: list[str]) -> tuple[float, str]:
    """Run `carousel <arguments>` in a process of its own; its wall seconds and what it printed (both streams)."""
    command = [str(Path(sys.executable).with_name("carousel")), *arguments]
    log.info("$ %s", " ".join(command))
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return wall, done.stdout + done.stderr


def _newest_run_facts(run_metrics: Path) -> dict:
    """The seconds per stage, rows taken in and rows per table of the newest run in a run-metrics table (delta-rs)."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(run_metrics)).to_pyarrow_table().to_pylist()
    newest = max(rows, key=lambda row: (row["finished_at"], row["run_id"]))["run_id"]
    facts = [row for row in rows if row["run_id"] == newest]

    def of(metric: str, cast=float) -> dict:
        return {row["subject"]: cast(row["value"]) for row in facts if row["metric"] == metric}

    return {"seconds": of("seconds"), "rows_processed": of("rows_processed", int), "rows": of("rows_written", int)}


def _label(args: argparse.Namespace) -> str:
    kafka = " --kafka" if args.kafka else ""
    return COMMAND.format(customers=args.customers, days=args.days, history_days=args.history_days, kafka=kafka)


def _update(spark, args, settings, pipeline, label: str, update: int, kind: str, landed: dict | None) -> None:
    """Run one update (with --kafka: broker up, new rows produced first) and append its line to --results."""
    from carousel.local.kafka_broker import LocalKafkaBroker, produce_landed
    from carousel.local.runner import run_recorded

    with contextlib.ExitStack() as broker_running:
        produce_s = None
        if args.kafka:
            broker = broker_running.enter_context(LocalKafkaBroker(pipeline.kafka_dir))
            settings = dataclasses.replace(settings, kafka=broker.settings())
            started = time.perf_counter()
            produce_landed(spark, settings, pipeline)
            produce_s = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        summary = run_recorded(
            spark, pipeline, settings, driver_memory=args.driver_memory, shuffle_partitions=args.shuffle_partitions
        )
        wall = time.perf_counter() - started
    line = {
        "command": label,
        "update": update,
        "kind": kind,
        "wall_s": round(wall, 1),
        "produce_s": produce_s,
        "seconds": {name: round(value, 1) for name, value in summary.seconds.items()},
        "rows_processed": summary.rows_processed,
        "landed": landed,
        "gold_path": summary.gold.path,
        "gold_days": summary.gold.days_built,
        "rows": summary.rows,
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
    }
    with open(args.results, "a") as out:
        out.write(json.dumps(line) + "\n")
    log.info("update %d (%s): %.1f s", update, kind, wall)


def _latest_runs(lines: list[dict]) -> dict[str, list[dict]]:
    """The updates of the newest run of each command, by command, in the order the commands were first run."""
    runs: dict[str, list[dict]] = {}
    for line in lines:
        if line["update"] == 0:
            runs[line["command"]] = []
        runs.setdefault(line["command"], []).append(line)
    return runs


def _cell(seconds: dict[str, float], key: str) -> str:
    return f"{seconds[key]:.1f}" if key in seconds else "-"


def _run_table(command: str, updates: list[dict]) -> list[str]:
    backfill = updates[0]["wall_s"]
    out = [
        f"## `{command}`",
        "",
        "| update | wall s | x backfill | spark-pipelines s | bronze + quarantine s | silver s "
        "| reconciliation s | gold step s (plan / state / days / vocabulary / delete) | summary s "
        "| produce s (`--kafka`) or generate --next-day s (`cli`) | gold "
        "| days built "
        "| rows taken in |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for line in updates:
        seconds = line["seconds"]
        ingest = max((v for k, v in seconds.items() if k.endswith(("_bronze", "_quarantine"))), default=0.0)
        silver = max((v for k, v in seconds.items() if k.endswith("_to_actions_silver")), default=0.0)
        stages = " / ".join(
            _cell(seconds, f"gold_step.{stage}") for stage in ("plan", "state", "days", "vocabulary", "delete")
        )
        before = line.get("produce_s") if line.get("produce_s") is not None else line.get("generate_s")
        produce = "-" if before is None else f"{before:.1f}"
        out.append(
            f"| {line['update']} ({line['kind']}) | {line['wall_s']:.1f} | {line['wall_s'] / backfill:.2f} "
            f"| {_cell(seconds, 'spark_pipelines_run')} | {ingest:.1f} | {silver:.1f} "
            f"| {_cell(seconds, 'source_reconciliation')} "
            f"| {_cell(seconds, 'gold_step')} ({stages}) | {_cell(seconds, 'summary')} | {produce} "
            f"| {line['gold_path']} | {', '.join(line['gold_days'] or []) or '-'} "
            f"| {sum(line['rows_processed'].values()):,} |"
        )
    daily = [line for line in updates[1:] if line["kind"] == "daily"]
    if daily:
        worst = max(line["wall_s"] for line in daily)
        out += ["", f"- Largest daily update / backfill: {worst / backfill:.2f} (target at most 0.25)."]
    if len(daily) >= 2:
        out.append(f"- Last day / second day: {daily[-1]['wall_s'] / daily[1]['wall_s']:.2f} (target at most 1.1).")
    out += _fixed_costs(updates)
    return out + [""]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _fixed_costs(updates: list[dict]) -> list[str]:
    """The fixed-cost targets of a `cli` run: each command's median wall seconds, the range beside it."""
    if not any(line.get("generate_s") is not None for line in updates):
        return []
    out = []
    for what, values, target in (
        ("`carousel generate --next-day`", [line["generate_s"] for line in updates if line.get("generate_s")], 30),
        ("`carousel pipeline`, one new day", [line["wall_s"] for line in updates if line["kind"] == "daily"], 90),
        ("`carousel pipeline`, nothing new", [line["wall_s"] for line in updates if line["kind"] == "idle"], 45),
    ):
        if values:
            verdict = "met" if _median(values) <= target else "MISSED"
            out.append(
                f"- {what}: median {_median(values):.1f} s of {len(values)} ({min(values):.1f} to {max(values):.1f}); "
                f"target at most {target} s: {verdict}."
            )
    return out


def _median_daily(updates: list[dict]) -> float | None:
    walls = [line["wall_s"] for line in updates if line["kind"] == "daily"]
    return _median(walls) if walls else None


def _flat_in_history(runs: dict[str, list[dict]]) -> list[str]:
    """Per pair of runs that differ only in --history-days: the median daily update of the longer over the shorter."""
    by_rest: dict[str, dict[int, list[dict]]] = {}
    for command, updates in runs.items():
        words = command.split()
        if "--history-days" not in words:
            continue
        at = words.index("--history-days")
        rest = " ".join(words[:at] + ["--history-days", "H"] + words[at + 2 :])
        by_rest.setdefault(rest, {})[int(words[at + 1])] = updates
    out = []
    for rest, by_days in by_rest.items():
        if len(by_days) < 2:
            continue
        shortest, longest = min(by_days), max(by_days)
        short, long = _median_daily(by_days[shortest]), _median_daily(by_days[longest])
        if short and long:
            out.append(
                f"| `{rest}` | {shortest}: {short:.1f} s | {longest}: {long:.1f} s "
                f"| {long / short:.2f} (target at most 1.15) |"
            )
    if not out:
        return []
    return [
        "## Flat in history",
        "",
        "| run | median daily update, shorter history | longer history | ratio |",
        "|---|---|---|---|",
        *out,
        "",
    ]


def report(args: argparse.Namespace) -> None:
    lines = [json.loads(text) for text in Path(args.results).read_text().splitlines() if text.strip()]
    out = [
        "# Daily operation: the backfill, then one update a day",
        "",
        "Each table is the newest run of its command (2 cores, one process, each update a fresh `spark-pipelines`",
        "run plus the gold step). Wall seconds cover the whole update: the `spark-pipelines` run (its start, about",
        "20 s of JVM and Spark Connect, included), the gold step and the local runner's summary. Flows run side by",
        "side, so the per-flow columns show the slowest flow of each group, not a sum. `-`: not measured by that",
        "run. Generated by `python benchmarks/daily.py report` from `docs/daily.jsonl`; the analysis below it is",
        "written by hand.",
        "",
    ]
    runs = _latest_runs(lines)
    out += _flat_in_history(runs)
    for command, updates in runs.items():
        out += _run_table(command, updates)
    analysis = PAGE.read_text().split(ANALYSIS, 1)[1] if PAGE.exists() and ANALYSIS in PAGE.read_text() else "\n"
    PAGE.write_text("\n".join(out) + "\n" + ANALYSIS + analysis)
    print(f"wrote {PAGE}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="backfill, then --days daily updates")
    idle_cmd = commands.add_parser("idle", help="one more update of a finished run, nothing new landed")
    for sub in (run_cmd, idle_cmd):
        sub.add_argument("--customers", type=int, default=20_000)
        sub.add_argument("--days", type=int, default=7)
        sub.add_argument("--history-days", type=int, default=365, help="days of actions before the impression days")
        sub.add_argument("--data-dir", default=str(REPO / "data" / "bench" / "daily"))
        sub.add_argument("--driver-memory", default="8g")
        sub.add_argument("--shuffle-partitions", type=int, default=8)
        sub.add_argument("--kafka", action="store_true", help="clicks and add-to-carts through a local Kafka broker")
    cli_cmd = commands.add_parser("cli", help="generate, backfill, daily and idle updates, each a carousel command")
    cli_cmd.add_argument("--customers", type=int, default=20_000)
    cli_cmd.add_argument("--days", type=int, default=7)
    cli_cmd.add_argument("--history-days", type=int, default=90, help="days of actions before the impression days")
    cli_cmd.add_argument("--idle", type=int, default=3, help="updates with nothing new landed, after the daily ones")
    cli_cmd.add_argument("--data-dir", default=str(REPO / "data" / "bench" / "daily_cli"))
    cli_cmd.add_argument("--driver-memory", default="8g")
    cli_cmd.add_argument("--shuffle-partitions", type=int, default=8)
    report_cmd = commands.add_parser("report", help="write docs/daily.md from the results")
    for sub in (run_cmd, idle_cmd, cli_cmd, report_cmd):
        sub.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    {"run": run, "idle": idle, "cli": cli, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
