"""Runs `spark-pipelines run` on this machine: the work directory's files, the run itself, why one failed to start.

Everything of a local run lives under one work directory: the generated spec (configuration from
`PipelineSettings`), `conf/spark-defaults.conf` (static Spark settings: Delta, a persistent Hive
catalog on embedded Derby, so a second run finds its tables instead of failing with
LOCATION_ALREADY_EXISTS), the warehouse with the Delta tables, and the pipeline's storage.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from carousel import contract
from carousel.errors import CarouselError
from carousel.pipeline.datasets import (
    ACTIONS_SILVER,
    SILVER_FLOWS,
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
from carousel.reconciliation import RECONCILIATION_FAILED
from carousel.run_metrics import (
    RUN_ID_KEY,
)
from carousel.spark import LOCAL_DELTA_DEFAULTS, holds_packages, jar_files, spark_packages
from carousel.storage import absolute_if_local

log = logging.getLogger("carousel")

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

    # Long on purpose: it reads the run's output line by line as it comes; parts would pass that state around.
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
    paths = jar_files(spark)
    return paths if holds_packages(paths, spark_packages(kafka=kafka)) else None


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
