"""The race's raw data: generated once per scale as Parquet, reused, read back with the contract's schemas."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import (
    child_env,
    raw_dir,
)
from benchmarks.race_cases import SCALES
from carousel.schemas import RAW_DAY_COLUMN
from carousel.synthetic import SyntheticConfig

log = logging.getLogger("race")


# ---------------------------------------------------------------------------------------------
# Data

ROWS_PER_FILE = 2_000_000


def _marker_content(config: SyntheticConfig) -> dict:
    """What `_generated.json` holds: the config and the file layout (data of another layout is made anew)."""
    layout = {"layout": f"unpartitioned, range-partitioned by day, {ROWS_PER_FILE:,} rows a file"}
    # Through JSON and back, so tuples compare equal to the lists a marker file holds.
    return json.loads(json.dumps({**dataclasses.asdict(config), **layout}))


def ensure_data(data_dir: Path, scale: str, driver_memory: str) -> None:
    """Generate the scale's raw Parquet (in a child process) unless the same config was generated there already."""
    target = raw_dir(data_dir, scale)
    marker = target / "_generated.json"
    if marker.exists() and json.loads(marker.read_text()) == _marker_content(SCALES[scale]):
        log.info("data %s: reusing %s", scale, target)
        return
    log.info("data %s: generating %s customers into %s", scale, f"{SCALES[scale].customers:,}", target)
    started = time.perf_counter()
    command = [sys.executable, str(Path(__file__).resolve()), "generate", "--scale", scale]
    command += ["--data-dir", str(data_dir), "--driver-memory", driver_memory]
    subprocess.run(command, check=True, env=child_env())
    log.info("data %s: generated in %.0f s", scale, time.perf_counter() - started)


def expected_rows(config: SyntheticConfig, source: str) -> float:
    """About how many rows the generator makes for `source` (impressions: the login rate's mean, uncapped)."""
    if source == "impressions":
        return config.customers * config.window_days * config.login_rate
    return config.expected_actions(source)


def generate(scale: str, data_dir: Path, driver_memory: str) -> None:
    """Write the scale's four raw sources as Parquet in time order: files of consecutive days, ~ROWS_PER_FILE rows each.

    Not partitioned by day: a day's directory of a few thousand rows would make the scan of the
    small scales a matter of opening files. Range-partitioned by day instead, as daily logs
    appended in time order would be.
    """
    from pyspark.sql import SparkSession

    from carousel.synthetic import generate_raw

    config = SCALES[scale]
    target = raw_dir(data_dir, scale)
    shutil.rmtree(target, ignore_errors=True)
    spark = (
        SparkSession.builder.master("local[*]")
        .appName(f"race generate {scale}")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for source, frame in generate_raw(spark, config).items():
        files = max(1, math.ceil(expected_rows(config, source) / ROWS_PER_FILE))
        started = time.perf_counter()
        frame.repartitionByRange(files, RAW_DAY_COLUMN[source]).write.mode("overwrite").parquet(str(target / source))
        log.info("generated %s in %.0f s", source, time.perf_counter() - started)
    spark.stop()
    (target / "_generated.json").write_text(json.dumps(_marker_content(config), indent=2))


def raw_schemas_json() -> dict[str, str]:
    """The raw contract schemas as Spark JSON, for the competitor's driver (which cannot import carousel)."""
    from carousel.schemas import RAW_SCHEMAS

    return {name: schema.json() for name, schema in RAW_SCHEMAS.items()}


def read_raw(spark, raw: Path) -> dict:
    """The four raw sources, read with the contract schemas (so every case sees the same column types)."""
    from carousel.schemas import RAW_SCHEMAS

    return {name: spark.read.schema(schema).parquet(str(raw / name)) for name, schema in RAW_SCHEMAS.items()}
