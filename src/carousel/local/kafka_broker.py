"""A real Apache Kafka broker on this machine (KRaft, one node, jars from Maven Central), and producing rows to it.

`carousel pipeline --kafka` starts one, produces the landed clicks and add-to-carts it has not
produced yet (each row once, even across a kill), runs the pipeline from the topics, and stops
it. The broker keeps its log in the pipeline's work directory, so a later run finds every message
of the earlier ones.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from carousel import kafka_source
from carousel.config import KafkaSettings
from carousel.errors import CarouselError
from carousel.local.spark_pipelines import LocalPipeline
from carousel.pipeline.settings import PipelineSettings
from carousel.storage import read_source, read_source_stream

log = logging.getLogger("carousel")

KAFKA_VERSION = "4.1.1"
BROKER_ARTIFACT = f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}"
JARS_ENV = "CAROUSEL_KAFKA_JARS"
"""Environment variable naming a folder that holds the broker's jars (else they live in this virtual environment)."""
TOPICS = {"clicks": "clicks", "add_to_carts": "add_to_carts"}
"""The local broker's topic per source read from Kafka."""
PARTITIONS = 2
"""Partitions of each topic the local broker creates: more than one, so offsets are per partition as in production."""
_READY_SECONDS = 120


class KafkaBrokerError(CarouselError, RuntimeError):
    """The local Kafka broker could not be fetched, started or reached; the message says which and where its log is."""


def broker_jars(folder: Path | None = None) -> Path:
    """The folder of the broker's jars, fetched with Maven into it on first use.

    Raises:
        KafkaBrokerError: Maven is missing or could not fetch the jars.
    """
    folder = folder or Path(
        os.environ.get(JARS_ENV) or Path(sys.prefix) / "share" / "carousel" / f"kafka-{KAFKA_VERSION}"
    )
    if any(folder.glob("kafka_2.13-*.jar")):
        return folder
    maven = shutil.which("mvn")
    if maven is None:
        raise KafkaBrokerError(
            f"the Kafka broker's jars are not in {folder}, and Maven (mvn) is not installed to fetch them"
        )
    group, artifact, version = BROKER_ARTIFACT.split(":")
    pom = f"""<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>carousel</groupId><artifactId>kafka-broker</artifactId><version>1</version><packaging>pom</packaging>
<dependencies><dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>
</dependency></dependencies></project>"""
    log.info("fetching %s and its dependencies with Maven into %s", BROKER_ARTIFACT, folder)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "pom.xml").write_text(pom)
        fetched = subprocess.run(
            [maven, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={folder}"],
            cwd=scratch,
            capture_output=True,
            text=True,
        )
    if fetched.returncode != 0:
        tail = (fetched.stdout + fetched.stderr).strip().splitlines()[-5:]
        raise KafkaBrokerError(f"Maven could not fetch {BROKER_ARTIFACT}: " + " | ".join(tail))
    return folder


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding, as `kafka-storage random-uuid` prints."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("localhost", port)) == 0


@dataclass
class LocalKafkaBroker:
    """One KRaft broker and controller in one JVM, its log and settings under `folder`.

    Use it as a context manager: entering starts it (formatting its storage the first time),
    leaving stops it. Its ports are chosen once and kept in `folder`, so a restart serves the same
    address and finds every earlier message.
    """

    folder: Path
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def properties(self) -> Path:
        return self.folder / "server.properties"

    @property
    def log_file(self) -> Path:
        """Everything the broker's JVM printed."""
        return self.folder / "broker.log"

    @property
    def bootstrap_servers(self) -> str:
        return f"localhost:{self._ports()[0]}"

    def _ports(self) -> tuple[int, int]:
        lines = dict(line.split("=", 1) for line in self.properties.read_text().splitlines() if "=" in line)
        return int(lines["carousel.broker.port"]), int(lines["carousel.controller.port"])

    def _write_properties(self) -> None:
        broker, controller = _free_port(), _free_port()
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@localhost:{controller}",
            "listeners": f"PLAINTEXT://localhost:{broker},CONTROLLER://localhost:{controller}",
            "advertised.listeners": f"PLAINTEXT://localhost:{broker}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str((self.folder / "log").resolve()),
            "num.partitions": str(PARTITIONS),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Kafka ignores unknown keys: the chosen ports, read back on a restart.
            "carousel.broker.port": str(broker),
            "carousel.controller.port": str(controller),
        }
        self.properties.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))

    def _java(self, main: str, *arguments: str) -> list[str]:
        return ["java", "-Xmx512m", "-cp", str(broker_jars() / "*"), main, *arguments]

    def start(self) -> str:
        """Start the broker (formatting its storage the first time); return its bootstrap servers.

        Raises:
            KafkaBrokerError: it exited or did not listen within two minutes.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.properties.exists():
            self._write_properties()
        if not (self.folder / "log" / "meta.properties").exists():
            formatted = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(self.properties)),
                capture_output=True,
                text=True,
            )
            if formatted.returncode != 0:
                raise KafkaBrokerError(
                    f"formatting the Kafka broker's storage failed: {formatted.stderr.strip()[-500:]}"
                )
        port = self._ports()[0]
        with open(self.log_file, "ab") as output:
            # In the runner's process group: killing that group stops the broker too, as a crash would.
            self._process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.properties)), stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + _READY_SECONDS
        while not _accepts(port):
            if self._process.poll() is not None:
                raise KafkaBrokerError(
                    f"the Kafka broker exited (code {self._process.returncode}); see {self.log_file}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise KafkaBrokerError(f"the Kafka broker did not listen on port {port} in time; see {self.log_file}")
            time.sleep(0.2)  # waiting for another process to open its port
        log.info("Kafka broker %s listening at %s (log %s)", KAFKA_VERSION, self.bootstrap_servers, self.log_file)
        return self.bootstrap_servers

    def stop(self) -> None:
        """Stop the broker: politely, then by force after half a minute."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> LocalKafkaBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def settings(self) -> KafkaSettings:
        """Pipeline settings that read clicks and add-to-carts from this broker's topics."""
        return KafkaSettings(self.bootstrap_servers, dict(TOPICS))


ROW_HEADER = "carousel.row"
"""Kafka header of each produced message: which landed row it is, `<micro-batch>:<n>` (see `numbered_records`)."""
_CLOCK_SLACK_MS = 60_000
"""How far before a send's start the topic is searched for what that send got through (clocks of one machine)."""


def numbered_records(rows: DataFrame, source: str, batch_id: int) -> DataFrame:
    """Kafka records of the producer's micro-batch `batch_id`: key, value and a `ROW_HEADER` header, plus `row`.

    `row` is `<batch_id>:<n>`, n numbering the rows of the batch with the same key and value: the
    same batch read again (a rerun reads the same landed files) gets the same records, and rows
    that are alike are alike, so which of them bears which number does not matter.
    """
    messages = kafka_source.messages_of(rows, source)
    occurrence = F.row_number().over(Window.partitionBy("key", "value").orderBy("key"))
    row = F.concat_ws(":", F.lit(str(batch_id)), occurrence.cast("string"))
    header = F.struct(F.lit(ROW_HEADER).alias("key"), row.cast("binary").alias("value"))
    return messages.select("key", "value", F.array(header).alias("headers"), row.alias("row"))


def records_sent_since(spark: SparkSession, kafka: KafkaSettings, source: str, since_ms: int) -> DataFrame:
    """Key, value and `row` (its `ROW_HEADER`) of the messages `source`'s topic got from `since_ms` (epoch ms) on."""
    options = {
        **kafka.reader_options(source),
        "startingTimestamp": str(since_ms),
        "startingOffsetsByTimestampStrategy": "latest",  # a partition with nothing since: none of it
        "endingOffsets": "latest",
        "includeHeaders": "true",
    }
    del options["startingOffsets"]
    held = spark.read.format("kafka").options(**options).load()
    row = F.filter("headers", lambda header: header["key"] == ROW_HEADER)[0]["value"].cast("string")
    return held.select(F.col("key").cast("string"), F.col("value").cast("string"), row.alias("row"))


def send_batch(rows: DataFrame, batch_id: int, source: str, kafka: KafkaSettings, sending: Path) -> int:
    """Send the producer's micro-batch `batch_id` to `source`'s topic, each row once across kills; return how many sent.

    Before the first send of a batch, the time is written to `sending/<batch_id>`. A batch sent
    again finds that mark: the run before was killed before the stream committed the batch, so
    the topic may hold some or all of it. Then only the records the topic did not get since the
    mark are sent. Marks of earlier batches (committed, or this batch would not run) are removed.
    """
    spark = rows.sparkSession
    records = numbered_records(rows, source, batch_id)
    mark = sending / str(batch_id)
    if mark.exists():
        since = int(mark.read_text()) - _CLOCK_SLACK_MS
        held = records_sent_since(spark, kafka, source, since)
        # Null-safe: a dirty row without a customer is a message without a key, and null = null is never true.
        same = [records[column].eqNullSafe(held[column]) for column in ("key", "value", "row")]
        records = records.join(held, same, "left_anti")
    else:
        sending.mkdir(parents=True, exist_ok=True)
        mark.write_text(str(time.time_ns() // 1_000_000))
    for earlier in sending.iterdir():
        if earlier.name.isdigit() and int(earlier.name) < batch_id:
            earlier.unlink()
    records = records.drop("row").cache()
    try:
        sent = records.count()
        records.write.format("kafka").option("kafka.bootstrap.servers", kafka.bootstrap_servers).option(
            "topic", kafka.topics[source]
        ).save()
    finally:
        records.unpersist()
    return sent


def produce_new_rows(spark: SparkSession, raw: str, source: str, kafka: KafkaSettings, checkpoint: Path) -> int:
    """Produce the rows of the landed `raw` source not produced yet to `source`'s topic, each once; return how many.

    A checkpointed stream remembers what it produced, so landing one more day and calling this
    again produces that day only. A run killed while it sends sends on its rerun only what the
    topic did not get (`send_batch`), so every landed row is in the topic exactly once.
    """
    rows = read_source_stream(spark, raw, read_source(spark, raw).schema)
    sending = checkpoint.with_name(checkpoint.name + ".sending")
    sent: list[int] = []
    query = (
        rows.writeStream.foreachBatch(
            lambda batch, batch_id: sent.append(send_batch(batch, batch_id, source, kafka, sending))
        )
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    return sum(sent)


def produce_landed(spark: SparkSession, settings: PipelineSettings, pipeline: LocalPipeline) -> dict[str, int]:
    """Produce every Kafka source's landed rows not produced yet to its topic; return how many per source.

    `settings.kafka` names the broker and the topics, `settings.sources` the landed rows; what was
    produced is remembered in `pipeline`'s producer checkpoints.
    """
    produced = {}
    for source, topic in settings.kafka.topics.items():
        checkpoint = pipeline.producer_checkpoint(source)
        produced[source] = produce_new_rows(spark, settings.sources[source], source, settings.kafka, checkpoint)
        log.info("produced %s new %s rows to topic '%s'", f"{produced[source]:,}", source, topic)
    return produced
