"""Schema drift per run: extra columns are ignored and kept in quarantine; a broken contract stops a run early."""

from __future__ import annotations

import json

import pytest
from builders import at, day, raw_frames
from pyspark.sql import functions as F

from carousel.batch import build
from carousel.config import HistoryConfig
from carousel.contract import CUSTOMER_HISTORIES_GOLD
from carousel.pipeline.datasets import BRONZE, QUARANTINE, RawInput, source_reconciliation
from carousel.pipeline.settings import SOURCE_KEYS
from carousel.quality import keep_valid, quarantine_rows
from carousel.run_metrics import RUN_ID_KEY
from carousel.schemas import ColumnTypeError, MissingColumnError
from carousel.storage import RAW_SOURCES

IMPRESSIONS = [("2025-03-10", "r", 1, [(500, False)]), ("2025-03-10", "r2", -1, [(501, False)])]
CLICKS = [("2025-03-09", 1, 11, at("2025-03-09T10:00")), ("2025-03-09", 1, None, at("2025-03-09T11:00"))]
ADD_TO_CARTS = [("2025-03-08", 1, 12, 1201, at("2025-03-08T10:00"))]
ORDERS = [(day("2025-03-07"), 1, 13, 1301, at("2025-03-07T10:00"))]


@pytest.fixture()
def raw_dir(spark, tmp_path):
    """The four raw sources as Delta tables, each with an extra column the contract does not know."""
    frames = raw_frames(spark, IMPRESSIONS, CLICKS, ADD_TO_CARTS, ORDERS)
    for name, frame in zip(RAW_SOURCES, frames, strict=True):
        frame.withColumn("ingested_by", F.lit("kafka-connect")).write.format("delta").save(str(tmp_path / name))
    return tmp_path


def _sources(raw_dir) -> dict[str, str]:
    return {name: str(raw_dir / name) for name in RAW_SOURCES}


def test_an_extra_column_is_ignored_by_gold_and_kept_in_the_quarantined_raw_record(spark, raw_dir, tmp_path):
    out = tmp_path / "out"
    written = build(spark, _sources(raw_dir), str(out), HistoryConfig(history_length=3, lookback_days=5))
    assert written[CUSTOMER_HISTORIES_GOLD.name] == 1 and written["clicks_quarantine"] == 1
    histories = spark.read.format("delta").load(str(out / CUSTOMER_HISTORIES_GOLD.name))
    assert [(r.dt, r.customer_id, list(r.actions)) for r in histories.collect()] == [("2025-03-10", 1, [11, 12, 13])]
    assert "ingested_by" not in histories.columns
    [rejected] = spark.read.format("delta").load(str(out / "clicks_quarantine")).collect()
    assert rejected.broken_rules == ["item_id_positive"]
    assert json.loads(rejected.raw_record)["ingested_by"] == "kafka-connect"


@pytest.mark.parametrize(
    ("change", "error", "column"),
    [
        (lambda frame: frame.drop("click_time"), MissingColumnError, "click_time"),
        (lambda frame: frame.withColumn("item_id", F.col("item_id").cast("string")), ColumnTypeError, "item_id"),
    ],
)
def test_a_broken_contract_fails_the_build_before_any_table_is_written(spark, raw_dir, tmp_path, change, error, column):
    clicks = spark.read.format("delta").load(str(raw_dir / "clicks"))
    change(clicks).write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(str(raw_dir / "c2"))
    sources = {**_sources(raw_dir), "clicks": str(raw_dir / "c2")}
    out = tmp_path / "out"
    with pytest.raises(error, match=f"table 'clicks'.*'{column}'") as raised:
        build(spark, sources, str(out), HistoryConfig(history_length=3, lookback_days=5))
    assert (raised.value.table, raised.value.column) == ("clicks", column)
    assert sorted(p.name for p in out.iterdir()) == ["run_metrics"]  # nothing else was written
    [status] = {(r.status, r.error) for r in spark.read.format("delta").load(str(out / "run_metrics")).collect()}
    assert status == ("failed", str(raised.value))


def test_the_pipeline_opens_a_raw_source_by_checking_its_contract_at_once(spark, raw_dir):
    spark.conf.set(SOURCE_KEYS["clicks"], str(raw_dir / "clicks"))
    try:
        opened = RawInput.open(spark, "clicks")
        assert "ingested_by" in opened.schema.fieldNames()
        assert opened.conformed().columns == ["dt", "customer_id", "item_id", "click_time"]
        spark.read.format("delta").load(str(raw_dir / "clicks")).drop("dt").write.format("delta").save(
            str(raw_dir / "no_dt")
        )
        spark.conf.set(SOURCE_KEYS["clicks"], str(raw_dir / "no_dt"))
        with pytest.raises(MissingColumnError, match="table 'clicks' lacks required column 'dt'"):
            RawInput.open(spark, "clicks")
    finally:
        spark.conf.unset(SOURCE_KEYS["clicks"])


def test_the_pipelines_reconciliation_fails_naming_the_source_and_counts(spark, raw_dir):
    raw_inputs = {}
    for name in RAW_SOURCES:
        frame = spark.read.format("delta").load(str(raw_dir / name))
        raw_inputs[name] = RawInput(spark, name, str(raw_dir / name), frame.schema)
    tables = {}
    for name, raw in raw_inputs.items():
        tables[BRONZE[name]] = keep_valid(raw.read(), name, raw.schema)
        tables[QUARANTINE[name]] = quarantine_rows(raw.read(), name, raw.schema, run_id="r")
    spark.conf.set(RUN_ID_KEY, "run-7")
    try:
        rows = source_reconciliation(tables.__getitem__, raw_inputs).orderBy("source").collect()
        assert [tuple(row) for row in rows] == [
            ("run-7", "add_to_carts", 1, 1, 0),
            ("run-7", "clicks", 2, 1, 1),
            ("run-7", "impressions", 2, 1, 1),
            ("run-7", "orders", 1, 1, 0),
        ]
        tables[BRONZE["orders"]] = tables[BRONZE["orders"]].limit(0)  # a lost row
        with pytest.raises(Exception, match=r"source 'orders': read 1 rows, kept 0 \+ quarantined 0 = 0"):
            source_reconciliation(tables.__getitem__, raw_inputs).collect()
    finally:
        spark.conf.unset(RUN_ID_KEY)
