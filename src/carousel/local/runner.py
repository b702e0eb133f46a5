"""Runs the declarative pipeline locally with `spark-pipelines run`, and summarises what it wrote.

Everything of a local run lives under one work directory: the generated spec (configuration from
`PipelineSettings`), `conf/spark-defaults.conf` (static Spark settings: Delta, a persistent Hive
catalog on embedded Derby, so a second run finds its tables instead of failing with
LOCATION_ALREADY_EXISTS), the warehouse with the Delta tables, and the pipeline's storage.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel import contract
from carousel.engine import GOLD_STEP, GoldReport, GoldTables, Window, build_gold
from carousel.errors import CarouselError
from carousel.pipeline.datasets import (
    ACTIONS_SILVER,
    BRONZE,
    CUSTOMER_HISTORIES_GOLD,
    QUARANTINE,
    SILVER_FLOWS,
    SOURCE_RECONCILIATION,
    TRAINING_EXAMPLES_GOLD,
)
from carousel.pipeline.settings import (
    HISTORY_LENGTH_KEY,
    KAFKA_BOOTSTRAP_SERVERS_KEY,
    KAFKA_OPTION_PREFIX,
    KAFKA_TOPIC_KEYS,
    LOOKBACK_DAYS_KEY,
    RETENTION_DAYS_KEY,
    SOURCE_KEYS,
    WINDOW_DAYS_KEY,
    WINDOW_END_KEY,
    WINDOW_START_KEY,
    PipelineSettings,
)
from carousel.reconciliation import RECONCILIATION_FAILED, SourceCounts, check_reconciled, counts_from_rows, union_all
from carousel.run_metrics import (
    PUBLISHED_VERSION,
    ROWS_WRITTEN,
    RUN_ID_KEY,
    SETTINGS_FINGERPRINT,
    SOURCE_VERSION,
    SUCCEEDED,
    RunFacts,
    newest_run,
    published_version,
    recorded_run,
    rows_processed,
)
from carousel.spark import LOCAL_DELTA_DEFAULTS, delta_package, kafka_package, spark_packages
from carousel.storage import absolute_if_local, read_table, table_exists, table_version

log = logging.getLogger("carousel")
T = TypeVar("T")

TRANSFORMATIONS = Path(__file__).resolve().parents[2] / "carousel_pipeline" / "transformations"
_SESSION_VARIABLES = frozenset(
    {
        "PYSPARK_GATEWAY_PORT",
        "PYSPARK_GATEWAY_SECRET",
        "SPARK_REMOTE",
        "SPARK_LOCAL_REMOTE",
        "SPARK_CONNECT_MODE_ENABLED",
    }
)
"""What pyspark keeps in the environment of a process with a Spark session of its own."""
SPARK_PIPELINES_MAIN = Path(__file__).resolve().with_name("spark_pipelines_main.py")
"""What the runner starts where `spark-pipelines` starts pyspark's CLI: the same CLI, on a port of its own."""
PIPELINE_NAME = "carousel_training_input"
PIPELINE_COMMAND = "pipeline"
"""The command name of a local pipeline run in the run-metrics table."""
SPARK_PIPELINES = "spark_pipelines_run"
"""Subject of the seconds of the whole `spark-pipelines run`: its start, every flow, its end."""
SUMMARY = "summary"
"""Subject of the seconds the local runner spends counting what the run wrote and recording it."""
STORED_TABLES = (
    *BRONZE.values(),
    *QUARANTINE.values(),
    ACTIONS_SILVER,
    CUSTOMER_HISTORIES_GOLD,
    TRAINING_EXAMPLES_GOLD,
    contract.ITEM_VOCABULARY_GOLD.name,
    SOURCE_RECONCILIATION,
)
GOLD_STAGE_OF = {
    CUSTOMER_HISTORIES_GOLD: "days",
    TRAINING_EXAMPLES_GOLD: "days",
    contract.ITEM_VOCABULARY_GOLD.name: "vocabulary",
}
"""The gold step's stage that writes each gold table (both gold tables in one stage): its seconds in the summary."""
_RUN_STARTED = "Starting run..."
"""What pyspark's pipelines CLI prints once the graph is registered and the run begins."""
_BIND_FAILURE = re.compile(r"BindException|Address already in use|Failed to bind")
_ERROR_LINE = re.compile(r"^\s*(?:Caused by: |Exception in thread \"[^\"]*\" )?([\w.$]+(?:Exception|Error)\b(?::.*)?)$")
_FLOW_EVENT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?): Flow \S*?\.?(\w+) (?:is|has) (\w+)")


class PipelineRunError(CarouselError, RuntimeError):
    """`spark-pipelines run` exited with an error; the message holds the tail of its output.

    Attributes:
        headline: one line: the exit code, and the pipeline's own reason when it gave one.
        output_tail: the last lines of the run's output.
    """

    def __init__(self, headline: str, output_tail: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__("\n".join([headline, *output_tail]))
        self.headline = headline
        self.output_tail = tuple(output_tail)


def pipeline_configuration(settings: PipelineSettings) -> dict[str, str]:
    """The pipeline spec's configuration for `settings` (the run id aside): what the pipeline files read."""
    # The spec's folder is not the runner's working directory: relative paths would move.
    configuration = {key: absolute_if_local(settings.sources[source]) for source, key in SOURCE_KEYS.items()}
    configuration[WINDOW_START_KEY] = settings.window_start or ""
    configuration[WINDOW_END_KEY] = settings.window_end or ""
    configuration[WINDOW_DAYS_KEY] = str(settings.window_days)
    configuration[RETENTION_DAYS_KEY] = str(settings.retention_days)
    configuration[HISTORY_LENGTH_KEY] = str(settings.history.history_length)
    configuration[LOOKBACK_DAYS_KEY] = str(settings.history.lookback_days)
    if settings.kafka is not None:
        configuration[KAFKA_BOOTSTRAP_SERVERS_KEY] = settings.kafka.bootstrap_servers
        configuration.update({KAFKA_TOPIC_KEYS[source]: topic for source, topic in settings.kafka.topics.items()})
        configuration.update({KAFKA_OPTION_PREFIX + key: value for key, value in settings.kafka.options.items()})
    return configuration


@dataclass(frozen=True)
class LocalPipeline:
    """The files of a local pipeline run, all under `work_dir`."""

    work_dir: Path

    @property
    def spec(self) -> Path:
        return self.work_dir / "spark-pipeline.yml"

    @property
    def conf_dir(self) -> Path:
        return self.work_dir / "conf"

    @property
    def warehouse(self) -> Path:
        return self.work_dir / "warehouse"

    def table_path(self, table: str) -> Path:
        return self.warehouse / table

    @property
    def log_file(self) -> Path:
        """Everything `spark-pipelines` printed in the last run (Ivy, Spark and the pipeline's own events)."""
        return self.work_dir / "logs" / "spark-pipelines.log"

    @property
    def kafka_dir(self) -> Path:
        """The local Kafka broker of `carousel pipeline --kafka`: its settings, its log, what was produced to it."""
        return self.work_dir / "kafka"

    def producer_checkpoint(self, source: str) -> Path:
        """What of the landed `source` was produced to its topic already (a stream's checkpoint)."""
        return self.kafka_dir / "produced" / source

    @property
    def run_metrics(self) -> Path:
        """The run-metrics Delta table: one row per fact of every run (see `carousel.run_metrics`)."""
        return self.work_dir / contract.RUN_METRICS.name

    def write_spec(self, settings: PipelineSettings, run_id: str) -> Path:
        """Write the pipeline spec: the transformations folder, the configuration of `settings` and the run id."""
        configuration = {**pipeline_configuration(settings), RUN_ID_KEY: run_id}
        self.work_dir.mkdir(parents=True, exist_ok=True)
        include = os.path.relpath(TRANSFORMATIONS, self.work_dir)
        lines = [
            f"name: {PIPELINE_NAME}",
            f"storage: {(self.work_dir / 'storage').resolve().as_uri()}",
            "catalog: spark_catalog",
            "database: default",
            "configuration:",
            *(f'  {key}: "{value}"' for key, value in configuration.items()),
            "libraries:",
            "  - glob:",
            f"      include: {include}/**",
        ]
        self.spec.write_text("\n".join(lines) + "\n")
        return self.spec

    def write_spark_defaults(
        self,
        driver_memory: str,
        shuffle_partitions: int,
        *,
        kafka: bool = False,
        port: int = 0,
        jars: Sequence[str] | None = None,
    ) -> Path:
        """Write the static Spark settings the pipeline's local Spark Connect server starts with.

        Spark's Kafka package is loaded only with `kafka` (the run reads a topic). `jars`, the files
        of those packages already resolved (`resolved_jars`), spare the run Ivy's resolution. The
        server binds `port`; 0, the default, is a port the system picks, so runs side by side never
        collide (see `spark_pipelines_main`).
        """
        packages = {"spark.jars": ",".join(jars)} if jars else {"spark.jars.packages": spark_packages(kafka=kafka)}
        settings = {
            **packages,
            "spark.connect.grpc.binding.port": str(port),
            "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
            "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "spark.sql.sources.default": "delta",
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": str(self.warehouse.resolve()),
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={(self.work_dir / 'metastore_db').resolve()};create=true"
            ),
            "spark.driver.memory": driver_memory,
            "spark.sql.shuffle.partitions": str(shuffle_partitions),
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.enabled": "false",
            **LOCAL_DELTA_DEFAULTS,
        }
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        path = self.conf_dir / "spark-defaults.conf"
        path.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
        return path

    def run(
        self,
        settings: PipelineSettings,
        run_id: str,
        *,
        cores: int = 2,
        driver_memory: str = "6g",
        shuffle_partitions: int = 8,
        jars: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """Run the whole pipeline once as run `run_id`; return seconds per flow (dataset).

        `jars`: the Delta (and, for a run that reads a topic, Kafka) jar files, already resolved
        (`resolved_jars`); None: the run resolves the packages itself.

        Raises:
            PipelineRunError: the run failed.
        """
        self.write_spec(settings, run_id)
        kafka = settings.kafka is not None
        self.write_spark_defaults(driver_memory, shuffle_partitions, kafka=kafka, jars=jars)
        return self.run_spec(cores)

    def run_spec(self, cores: int = 2) -> dict[str, float]:
        """Run `spark-pipelines run` on the spec and the Spark settings written under `work_dir`; seconds per flow.

        Raises:
            PipelineRunError: the run failed; when it could not even start (its Spark Connect server
                could not bind its port, a pipeline file failed to import), the headline says why.
        """
        bin_dir = str(Path(sys.executable).parent)
        # Spark's Python workers are the `python` on PATH: make it this environment's. This process's
        # own Spark (its gateway, a remote it set) is none of the run's business.
        inherited = {key: value for key, value in os.environ.items() if key not in _SESSION_VARIABLES}
        environment = dict(
            inherited,
            SPARK_CONF_DIR=str(self.conf_dir.resolve()),
            SPARK_REMOTE=f"local[{cores}]",
            PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
        )
        spec = str(self.spec.resolve())
        # What `spark-pipelines --remote local[n] run` runs in the end, without its launcher JVM (a JVM
        # start and an Ivy resolution that only start Python): pyspark's CLI, on a port of its own.
        command = [sys.executable, str(SPARK_PIPELINES_MAIN), "run", "--spec", spec]
        log.info("running %s", " ".join(command))
        started: dict[str, float] = {}
        finished: dict[str, float] = {}
        seconds: dict[str, float] = {}
        tail: list[str] = []
        completed = False
        reason = None  # the pipeline's own words on a failed reconciliation, else buried in a stack trace
        before_run: list[str] = []  # the output until the run starts: where a failure to start says why
        running = False
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with (
            open(self.log_file, "w") as log_file,
            subprocess.Popen(
                command, cwd=self.work_dir, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ) as process,
        ):
            assert process.stdout is not None
            for line in process.stdout:
                log_file.write(line)
                tail = (tail + [line.rstrip()])[-40:]
                if reason is None and RECONCILIATION_FAILED in line:
                    reason = line[line.index(RECONCILIATION_FAILED) :].strip()
                running = running or _RUN_STARTED in line
                if not running:
                    before_run.append(line.rstrip())
                event = _FLOW_EVENT.match(line)
                if event:
                    log.info("pipeline: %s %s", event.group(2), event.group(3).lower())
                    moment = time.mktime(time.strptime(event.group(1)[:19], "%Y-%m-%d %H:%M:%S"))
                    # A materialized view plans before it starts; a streaming flow starts at once.
                    if event.group(3) in ("PLANNING", "STARTING"):
                        started.setdefault(event.group(2), moment)
                    elif event.group(3) == "COMPLETED" and event.group(2) in started:
                        finished[event.group(2)] = moment
                        seconds[event.group(2)] = moment - started[event.group(2)]
                elif "Run is" in line:
                    completed = completed or "Run is COMPLETED" in line
                    log.info("pipeline: %s", line.rstrip())
        # The CLI may exit 0 after a failed run; only its own "Run is COMPLETED" says it worked.
        if process.returncode != 0 or not completed:
            headline = f"spark-pipelines run failed (exit {process.returncode})"
            reason = reason or (None if running else start_failure(before_run))
            if reason:
                headline += ": " + reason
            raise PipelineRunError(headline, tail)
        log.info("spark-pipelines' own output: %s", self.log_file)
        return seconds | _append_flow_targets(started, finished)


def resolved_jars(spark: SparkSession, *, kafka: bool = False) -> list[str] | None:
    """The jar files this process's local Spark loaded for the project's packages, when they serve a pipeline run.

    Every start of a Spark with `spark.jars.packages` has Ivy resolve them again, seconds even from
    its cache; a run handed the files the caller's session already resolved (`spark.jars`) skips
    that. None when the session holds no such local files (Spark Connect, a session without
    Delta), or lacks the Kafka package that a run with `kafka` needs.
    """
    paths = [jar.removeprefix("file://") for jar in (spark.conf.get("spark.jars", None) or "").split(",") if jar]
    if not paths or not all(os.path.isfile(path) for path in paths):
        return None
    names = {os.path.basename(path) for path in paths}
    needed = [delta_package(), *([kafka_package()] if kafka else [])]
    # Ivy names a resolved jar `group_artifact-version.jar`.
    if not all("{}_{}-{}.jar".format(*coordinate.split(":")) in names for coordinate in needed):
        return None
    return paths


_APPEND_FLOW_TARGETS = {flow: ACTIONS_SILVER for flow in SILVER_FLOWS.values()}


def _append_flow_targets(started: dict[str, float], finished: dict[str, float]) -> dict[str, float]:
    """Seconds of each table its append flows fill (`datasets.SILVER_FLOWS`): first start to last end."""
    spans: dict[str, list[float]] = {}
    for flow, end in finished.items():
        target = _APPEND_FLOW_TARGETS.get(flow)
        if target:
            span = spans.setdefault(target, [started[flow], end])
            span[:] = [min(span[0], started[flow]), max(span[1], end)]
    return {table: end - start for table, (start, end) in spans.items()}


def start_failure(output: list[str]) -> str | None:
    """Why a `spark-pipelines run` that never started its run failed, in a few words, from its output; None if unsaid.

    A port already taken is named as such (its Java exception is many lines above the Python error);
    otherwise the last exception line, e.g. a pipeline file's own error.
    """
    for line in output:
        if _BIND_FAILURE.search(line):
            port = re.search(r"address \S*:(\d+)", line)
            where = f"port {port.group(1)}" if port else "its port"
            return f"its Spark Connect server could not bind {where} ({_shortened(line, 120)})"
    errors = [match.group(1) for match in map(_ERROR_LINE.match, output) if match]
    return f"the pipeline did not start: {_shortened(errors[-1])}" if errors else None


def _shortened(line: str, limit: int = 300) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass
class RunSummary:
    """What a local run wrote: rows per table and per broken rule, seconds per flow, reconciliation per source."""

    rows: dict[str, int] = field(default_factory=dict)
    quarantined_by_rule: dict[tuple[str, str], int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    counts: list[SourceCounts] = field(default_factory=list)
    rows_processed: dict[str, int] = field(default_factory=dict)
    gold: GoldReport | None = None
    run_id: str = ""
    idle_since: str | None = None
    """The run whose tables this update kept as they were, nothing new having landed since; None: it ran."""

    def seconds_of(self, table: str) -> float | None:
        """The seconds of the flow that filled `table`, or of the gold step's stage that wrote it; None if unknown."""
        if table in GOLD_STAGE_OF and self.gold is not None:
            return self.gold.seconds.get(f"{GOLD_STEP}.{GOLD_STAGE_OF[table]}")
        return self.seconds.get(table)

    def lines(self) -> list[str]:
        table_width = max(len(t) for t in self.rows)
        out = [f"run {self.run_id}"]
        if self.idle_since:
            out.append(
                f"nothing new since run {self.idle_since} (same sources, settings and tables): "
                "spark-pipelines and the gold step were not run (--force runs them)"
            )
        out.append("rows per table:")
        out += [f"  {t:<{table_width}} {n:>14,}  {_seconds(self.seconds_of(t))}" for t, n in self.rows.items()]
        out.append("rows quarantined per rule (this update):")
        out += [f"  {s}.{r}: {n:,}" for (s, r), n in sorted(self.quarantined_by_rule.items())] or ["  none"]
        out.append("reconciliation (rows read = kept + quarantined):")
        out += [f"  {counts.describe()}" for counts in self.counts]
        if self.gold is not None:
            out.append(f"gold step: {self.gold.path}: built {', '.join(self.gold.days_built) or 'no day'}")
            if self.gold.days_deleted:
                out.append(f"  deleted (left the window): {', '.join(self.gold.days_deleted)}")
        if self.rows_processed:
            out.append("rows this update took in (kept or quarantined):")
            out += [f"  {source}: {rows:,}" for source, rows in self.rows_processed.items()]
        return out


def _seconds(seconds: float | None) -> str:
    """`12.3 s`, or a dash where no time is known (an update with nothing new ran no flow and no gold step)."""
    return f"{seconds:7.1f} s" if seconds is not None and math.isfinite(seconds) else f"{'-':>7}  "


def table_rows(spark: SparkSession, path: str) -> int:
    """The rows of the Delta table at `path`, from its log's file statistics: no data file is read.

    Delta answers an unfiltered count from the `numRecords` of each file's statistics (less its
    deletion vector), so the cost is the table's log, not its rows. A file written without
    statistics would make Delta read that file; the pipeline and the gold step write them.
    """
    return spark.read.format("delta").load(path).count()


def summarize(
    spark: SparkSession, pipeline: LocalPipeline, seconds: dict[str, float], run_id: str | None = None
) -> RunSummary:
    """What a finished local run left: rows per stored table (table metadata), this update's quarantined rows per rule.

    Nothing here reads a table's history: rows come from the Delta logs' statistics (`table_rows`), the
    quarantined rows from the files of the update `run_id` (Delta skips every file whose run ids, by
    their statistics, cannot hold it), the counts from the update's own reconciliation rows. Without
    `run_id`, the rules count every quarantined row.
    """
    summary = RunSummary(seconds=seconds, run_id=run_id or "")
    summary.rows = per_table(lambda table: table_rows(spark, str(pipeline.table_path(table))), STORED_TABLES)
    quarantined = []
    for source, table in QUARANTINE.items():
        quarantine = spark.read.format("delta").load(str(pipeline.table_path(table)))
        if run_id:
            quarantine = quarantine.where(F.col("run_id") == run_id)
        quarantined.append(quarantine.select(F.lit(source).alias("source"), F.explode("broken_rules").alias("rule")))
    for row in union_all(quarantined).groupBy("source", "rule").count().collect():
        summary.quarantined_by_rule[(row["source"], row["rule"])] = row["count"]
    reconciliation = spark.read.format("delta").load(str(pipeline.table_path(SOURCE_RECONCILIATION)))
    summary.counts = counts_from_rows(reconciliation.orderBy("source").collect())
    return summary


_SIDE_BY_SIDE = 4
"""How many tables the runner asks about at once: each question is a small job that mostly waits on Delta's log."""


def per_table(answer: Callable[[str], T], tables: Iterable[str]) -> dict[str, T]:
    """`answer` of each table, asked `_SIDE_BY_SIDE` at a time, in the order of `tables`."""
    tables = list(tables)
    with ThreadPoolExecutor(max_workers=_SIDE_BY_SIDE) as pool:
        return dict(zip(tables, pool.map(answer, tables), strict=True))


VERSIONED_TABLES = (*STORED_TABLES, contract.CUSTOMER_ACTION_STATE.name, contract.GOLD_PROGRESS.name)
"""The tables a succeeded run records the Delta versions of: a later run that finds any other version must run."""
IDLE_CHECK = "idle_check"
"""Subject of the seconds the local runner spends finding whether anything is new since the last run."""


def settings_fingerprint(settings: PipelineSettings) -> int:
    """A 48-bit hash (exact in a double) of the pipeline's configuration and carousel's version."""
    configuration = {**pipeline_configuration(settings), "carousel.version": _carousel_version()}
    digest = hashlib.sha256(json.dumps(configuration, sort_keys=True).encode()).hexdigest()
    return int(digest[:12], 16)


def _carousel_version() -> str:
    try:
        return importlib.metadata.version("carousel")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "source"


def source_versions(spark: SparkSession, settings: PipelineSettings) -> dict[str, int] | None:
    """The Delta version of each raw source now; None when a source has none to compare (a Kafka topic, files)."""
    if settings.kafka is not None:
        return None  # a topic's new messages are not in any table version
    try:
        return per_table(lambda source: table_version(spark, settings.sources[source]), sorted(settings.sources))
    except Exception as error:  # not a Delta table: Spark names no single error class for it
        log.info("a raw source has no Delta version (%s): the run cannot be found idle", type(error).__name__)
        return None


def unchanged_since(
    spark: SparkSession, pipeline: LocalPipeline, fingerprint: int, sources: dict[str, int] | None
) -> RunFacts | None:
    """The newest run, when it succeeded and nothing moved since: the same settings, sources and tables' versions.

    Such a run left exactly what a run now would leave, so `run_recorded` records the update
    without running `spark-pipelines` or the gold step. None (run everything) when a source has
    no version (`source_versions`), the newest run failed or was killed, its settings differ, a
    source landed rows since, or a table it recorded is at another version (a killed run, a hand edit).
    """
    if sources is None:
        return None
    newest = newest_run(spark, str(pipeline.run_metrics), PIPELINE_COMMAND)
    if newest is None or newest.status != SUCCEEDED:
        return None
    if newest.facts.get((PIPELINE_COMMAND, SETTINGS_FINGERPRINT)) != fingerprint:
        return None
    if newest.of(SOURCE_VERSION) != sources:
        return None
    published = newest.of(PUBLISHED_VERSION)
    if any(
        table not in published or not table_exists(spark, str(pipeline.table_path(table))) for table in VERSIONED_TABLES
    ):
        return None
    versions = per_table(lambda table: table_version(spark, str(pipeline.table_path(table))), VERSIONED_TABLES)
    return newest if all(versions[table] == published[table] for table in VERSIONED_TABLES) else None


def run_recorded(
    spark: SparkSession,
    pipeline: LocalPipeline,
    settings: PipelineSettings,
    *,
    cores: int = 2,
    driver_memory: str = "6g",
    shuffle_partitions: int = 8,
    force: bool = False,
) -> RunSummary:
    """Run the pipeline once under a new run id and append the run, succeeded or failed, to its run-metrics table.

    An update with nothing new (`unchanged_since`) is recorded, with the previous run's counts and
    no row taken in, without running `spark-pipelines` or the gold step; `force` runs them anyway.

    Raises:
        PipelineRunError: the run failed (a failed reconciliation included: the pipeline fails it).
        carousel.reconciliation.ReconciliationError: the finished run's counts do not add up.
    """
    with recorded_run(spark, str(pipeline.run_metrics), PIPELINE_COMMAND) as record:
        started = time.perf_counter()
        record.settings_fingerprint = settings_fingerprint(settings)
        versions = source_versions(spark, settings)
        record.source_versions = versions or {}
        previous = None if force else unchanged_since(spark, pipeline, record.settings_fingerprint, versions)
        record.seconds[IDLE_CHECK] = time.perf_counter() - started
        if previous is not None:
            log.info("nothing new since run %s: spark-pipelines and the gold step are not run", previous.run_id)
            summary = _idle_summary(previous, record.seconds, record.run_id)
            record.counts, record.rows_written = summary.counts, summary.rows
            record.rows_processed = summary.rows_processed
            record.versions = {table: int(version) for table, version in previous.of(PUBLISHED_VERSION).items()}
            return summary
        started = time.perf_counter()
        record.seconds.update(
            pipeline.run(
                settings,
                record.run_id,
                cores=cores,
                driver_memory=driver_memory,
                shuffle_partitions=shuffle_partitions,
                jars=resolved_jars(spark, kafka=settings.kafka is not None),
            )
        )
        record.seconds[SPARK_PIPELINES] = time.perf_counter() - started
        gold = run_gold_step(spark, pipeline, settings)
        record.seconds.update(gold.seconds)
        started = time.perf_counter()
        summary = summarize(spark, pipeline, record.seconds, record.run_id)
        summary.gold = gold
        record.counts, record.rows_written = summary.counts, summary.rows
        record.rows_processed = summary.rows_processed = rows_processed(
            spark, str(pipeline.run_metrics), record.command, summary.counts
        )
        # The pipeline's source_reconciliation already fails an unbalanced update; this is the runner's own look.
        check_reconciled(summary.counts)
        stored = [table for table in VERSIONED_TABLES if table_exists(spark, str(pipeline.table_path(table)))]
        record.versions = per_table(lambda table: table_version(spark, str(pipeline.table_path(table))), stored)
        record.seconds[SUMMARY] = time.perf_counter() - started
    return summary


def _idle_summary(previous: RunFacts, seconds: dict[str, float], run_id: str) -> RunSummary:
    """The summary of an update with nothing new: the tables and totals `previous` recorded, no row taken in."""
    read, kept, quarantined = (previous.of(metric) for metric in ("rows_read", "rows_kept", "rows_quarantined"))
    counts = [SourceCounts(source, int(read[source]), int(kept[source]), int(quarantined[source])) for source in read]
    return RunSummary(
        rows={table: int(rows) for table, rows in previous.of(ROWS_WRITTEN).items()},
        seconds=seconds,
        counts=counts,
        rows_processed={one.source: 0 for one in counts},
        gold=GoldReport(),
        run_id=run_id,
        idle_since=previous.run_id,
    )


def run_gold_step(spark: SparkSession, pipeline: LocalPipeline, settings: PipelineSettings) -> GoldReport:
    """The daily job's task after the pipeline, on the local warehouse: build the gold days that are new or changed."""
    window = Window(settings.window_days, settings.window_start, settings.window_end, settings.retention_days)
    started = time.perf_counter()
    report = build_gold(spark, GoldTables.under(str(pipeline.warehouse)), window, settings.history)
    report.seconds[GOLD_STEP] = time.perf_counter() - started
    days = ", ".join(report.days_built) or "no day"
    log.info("gold step: %s (%s) in %.1f s", report.path, days, report.seconds[GOLD_STEP])
    return report


class NothingPublishedError(CarouselError, LookupError):
    """No run of the local pipeline has succeeded yet, so there is no published version to read."""


def read_published(spark: SparkSession, pipeline: LocalPipeline, table: str) -> DataFrame:
    """The table as the newest succeeded run left it, whatever a later run is doing or died doing.

    Open-source Spark Declarative Pipelines truncates every materialized view when an update
    starts and fills it when the flow runs, so a run killed halfway leaves empty tables behind.
    Each succeeded run records the Delta version it wrote in the run-metrics table; reading that
    version (Delta time travel) gives readers the previous gold until the next run succeeds.

    Raises:
        NothingPublishedError: no run has succeeded yet.
    """
    version = published_version(spark, str(pipeline.run_metrics), table)
    if version is None:
        raise NothingPublishedError(f"no succeeded run of the pipeline in {pipeline.work_dir} has published '{table}'")
    return read_table(spark, str(pipeline.table_path(table)), version)
