"""Time the competitor's `build_training_inputs` once; runs in the competitor's own virtual environment.

    COMPETITOR_VENV/bin/python benchmarks/competitor_driver.py REQUEST.json

`benchmarks/race.py` writes REQUEST.json: the competitor's checkout (its `src` goes on the path;
nothing of it is copied), the raw Parquet directory and the contract schemas to read it with,
the Spark settings, `explode`, an optional first impression day, and where the measurements go.
This script imports only PySpark, the checkout and `benchmarks/metrics.py` (which imports only
PySpark), never `carousel`.

The clock covers the call of `build_training_inputs` and the write of its result to Spark's
`noop` sink; the session's start and the opening of the raw Parquet come before it. With
`output_dir` set, the result is written there as Parquet instead, untimed (for the agreement
check of `race.py check`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    sys.path.insert(0, str(Path(request["checkout"]) / "src"))
    sys.path.insert(0, request["metrics_dir"])

    from challenge import build_training_inputs
    from metrics import as_record, measured, memory_peaks
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    assert "carousel" not in sys.modules, "the competitor's driver must not import the project"
    builder = SparkSession.builder.master("local[*]").appName(request["app_name"])
    for key, value in request["conf"].items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")

    raw_dir = Path(request["raw_dir"])
    raw = {
        name: spark.read.schema(StructType.fromJson(json.loads(schema))).parquet(str(raw_dir / name))
        for name, schema in request["schemas"].items()
    }
    impressions = raw["impressions"]
    if request.get("window_start"):
        impressions = impressions.where(F.col("dt") >= request["window_start"])
    inputs = (impressions, raw["clicks"], raw["add_to_carts"], raw["orders"])

    if request.get("output_dir"):
        result = build_training_inputs(*inputs, explode=request["explode"])
        result.write.mode("overwrite").parquet(request["output_dir"])
        record: dict = {}
    else:
        with measured(spark) as cost:
            result = build_training_inputs(*inputs, explode=request["explode"])
            result.write.format("noop").mode("overwrite").save()
        record = {**as_record(cost), **memory_peaks(spark)}
    conf = spark.conf
    record.update(
        spark_version=spark.version,
        shuffle_partitions=int(conf.get("spark.sql.shuffle.partitions")),
        aqe=conf.get("spark.sql.adaptive.enabled"),
        session_time_zone=conf.get("spark.sql.session.timeZone"),
        driver_memory=spark.sparkContext.getConf().get("spark.driver.memory", "1g"),
        explode=request["explode"],
    )
    spark.stop()
    Path(request["record_out"]).write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: competitor_driver.py REQUEST.json")
    raise SystemExit(main(sys.argv[1]))
