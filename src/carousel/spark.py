"""The one builder of local SparkSessions (Delta configured) for tests, the CLI and benchmarks."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

LOCAL_DELTA_DEFAULTS: dict[str, str] = {
    # Delta replays a table's log in 50 tasks by default, sized for clusters: on a laptop that is
    # most of the cost of opening a small table (4 raw tables took ~40 task-seconds at 20k customers).
    "spark.databricks.delta.snapshotPartitions": str(os.cpu_count() or 2),
}

LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    **LOCAL_DELTA_DEFAULTS,
}


def delta_package() -> str:
    """Delta Lake's Maven coordinate for the installed pyspark and delta-spark (what Spark's Ivy fetches)."""
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{importlib.metadata.version('delta-spark')}"


def kafka_package() -> str:
    """Spark's Kafka source and sink for the installed pyspark, as a Maven coordinate."""
    return f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}"


def spark_packages(*, kafka: bool = False) -> str:
    """The packages a local Spark of this project loads, comma-separated (`spark.jars.packages`).

    Delta always; Spark's Kafka source and sink only with `kafka`: resolving a package costs a
    session's start seconds (Ivy reads its cache and writes a report), so a session that reads no
    topic does not load it.
    """
    return ",".join((delta_package(), kafka_package()) if kafka else (delta_package(),))


def local_spark(
    app_name: str = "carousel",
    *,
    cores: int | None = None,
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
    extra_conf: dict[str, str] | None = None,
    log_file: str | os.PathLike[str] | None = None,
    kafka: bool = False,
) -> SparkSession:
    """Return a local SparkSession with Delta Lake, UTC and the UI off (and Spark's Kafka source with `kafka`).

    Args:
        app_name: shown in logs.
        cores: local[cores]; all cores when None.
        shuffle_partitions: spark.sql.shuffle.partitions; Spark's default when None.
        driver_memory: e.g. "8g"; only takes effect when no JVM is running yet.
        extra_conf: any further Spark settings, applied last.
        log_file: where the JVM's own output goes (Ivy's resolution report, Spark's warnings), when
            this call starts the JVM; by default it shares this process's terminal.
        kafka: load Spark's Kafka source and sink too (reading or producing a topic needs it); only
            takes effect when no JVM is running yet.
    """
    from delta import configure_spark_with_delta_pip

    master = f"local[{cores}]" if cores else "local[*]"
    builder = SparkSession.builder.master(master).appName(app_name)
    conf = dict(LOCAL_DEFAULTS)
    if shuffle_partitions is not None:
        conf["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    if driver_memory is None:
        driver_memory = os.environ.get("CAROUSEL_DRIVER_MEMORY")
    if driver_memory:
        conf["spark.driver.memory"] = driver_memory
    conf.update(extra_conf or {})
    packages = spark_packages(kafka=kafka)
    known = known_jars(packages)
    if known:
        conf["spark.jars"] = ",".join(known)
    for key, value in conf.items():
        builder = builder.config(key, value)
    with child_output_to(log_file):
        if not known:
            builder = configure_spark_with_delta_pip(builder, extra_packages=[kafka_package()] if kafka else [])
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if not known:
        remember_jars(spark, packages)
    return spark


def jar_files(spark: SparkSession) -> list[str]:
    """The local jar files the session's JVM loaded through `spark.jars` (Ivy's resolved packages among them)."""
    return [jar.removeprefix("file://") for jar in (spark.conf.get("spark.jars", None) or "").split(",") if jar]


def holds_packages(jars: list[str], packages: str) -> bool:
    """Whether `jars` are files on this machine and include the jar of each Maven coordinate in `packages`."""
    if not jars or not all(os.path.isfile(jar) for jar in jars):
        return False
    names = {os.path.basename(jar) for jar in jars}
    # Ivy names a resolved jar `group_artifact-version.jar`.
    return all("{}_{}-{}.jar".format(*coordinate.split(":")) in names for coordinate in packages.split(","))


def _jar_list(packages: str) -> Path:
    digest = hashlib.sha256(packages.encode()).hexdigest()[:12]
    return Path(sys.prefix) / "share" / "carousel" / f"spark-jars-{digest}.txt"


def known_jars(packages: str) -> list[str] | None:
    """The jar files an earlier session resolved for `packages` (`remember_jars`), when they are all still there.

    Handing them to a new session as `spark.jars` spares its start Ivy's resolution (seconds, even
    from Ivy's cache). None when no session of this environment resolved them yet, or a file is gone.
    """
    try:
        jars = _jar_list(packages).read_text().split()
    except OSError:
        return None
    return jars if holds_packages(jars, packages) else None


def remember_jars(spark: SparkSession, packages: str) -> None:
    """Note the jar files Ivy resolved for `packages` in this session, for `known_jars`; nothing when it cannot."""
    jars = jar_files(spark)
    if not holds_packages(jars, packages):
        return
    target = _jar_list(packages)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_suffix(f".{os.getpid()}.tmp")
        staged.write_text("\n".join(jars) + "\n")
        staged.replace(target)  # atomic: a session starting beside this one reads the old list or the new
    except OSError:
        pass  # a read-only environment resolves with Ivy every time, as before


@contextmanager
def child_output_to(log_file: str | os.PathLike[str] | None) -> Iterator[None]:
    """Point this process's stdout and stderr at `log_file` while the body starts child processes, then back.

    A child (the JVM spark-submit starts) keeps the file as its output; this process's own output
    returns to where it was, so the project's lines stay on the terminal and Spark's go to the file.
    """
    if log_file is None:
        yield
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(log_file, "ab") as target:
            os.dup2(target.fileno(), 1)
            os.dup2(target.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
