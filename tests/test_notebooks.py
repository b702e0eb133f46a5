"""The notebooks run end to end on local tables: each is executed as the file it is, with local defaults as widgets."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from carousel.batch import build
from carousel.config import HistoryConfig
from carousel.local.demo_data import generate
from carousel.storage import RAW_SOURCES
from carousel.synthetic import SyntheticConfig

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TINY = SyntheticConfig(customers=60, window_days=2, window_end="2025-06-30", history_days=10, dirty_rate=0.1)
HISTORY = HistoryConfig(history_length=5, lookback_days=7)


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory) -> Path:
    """Raw data and what `carousel build` writes from it: gold, quarantine and run_metrics under one folder."""
    root = tmp_path_factory.mktemp("notebooks")
    generate(spark, str(root / "raw"), TINY)
    build(spark, {source: str(root / "raw" / source) for source in RAW_SOURCES}, str(root / "out"), HISTORY)
    return root / "out"


def _run(notebook: str, spark) -> dict:
    return runpy.run_path(str(NOTEBOOKS / notebook), init_globals={"spark": spark})


def test_explore_gold_profiles_the_gold_table(spark, built, monkeypatch):
    monkeypatch.setenv("CAROUSEL_EXAMPLES", str(built / "training_examples_gold"))
    monkeypatch.setenv("CAROUSEL_HISTORY_LENGTH", str(HISTORY.history_length))
    ran = _run("explore_gold.py", spark)
    gold = spark.read.format("delta").load(str(built / "training_examples_gold"))
    profile = ran["profile"]
    assert profile.customer_days == gold.count() > 0
    assert profile.impressions == gold.select(F.sum(F.size("item_ids"))).first()[0]
    assert sum(customer_days for _, _, customer_days in profile.history_lengths) == profile.customer_days
    assert [axes.get_title() for axes in ran["figure"].axes[:3]] == [
        "How long the customers' histories are",
        "Which actions the histories hold",
        "Order rate by carousel position",
    ]


def test_quarantine_notebook_reconciles_every_source_and_counts_rules(spark, built, monkeypatch):
    monkeypatch.setenv("CAROUSEL_RUN_METRICS", str(built / "run_metrics"))
    monkeypatch.setenv("CAROUSEL_TABLES", str(built))
    ran = _run("quarantine_and_reconciliation.py", spark)
    rows = {row.source: row for row in ran["reconciliation"].collect()}
    assert set(rows) == set(RAW_SOURCES)
    for source, row in rows.items():
        quarantine = spark.read.format("delta").load(str(built / f"{source}_quarantine"))
        assert row.rows_quarantined == quarantine.count(), source
        assert row.rows_read == row.rows_kept + row.rows_quarantined, source
    by_rule = {(row.source, row.rule): row.rows for row in ran["by_rule"].collect()}
    clicks = spark.read.format("delta").load(str(built / "clicks_quarantine"))
    expected = {
        (("clicks", row.rule)): row["count"]
        for row in clicks.select(F.explode("broken_rules").alias("rule")).groupBy("rule").count().collect()
    }
    assert {key: value for key, value in by_rule.items() if key[0] == "clicks"} == expected
    assert expected  # the dirty rows of the tiny data include broken clicks


def test_read_a_day_hands_out_the_newest_day_as_batches(spark, built, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("CAROUSEL_EXAMPLES", str(built / "training_examples_gold"))
    ran = _run("read_a_day.py", spark)
    gold = spark.read.format("delta").load(str(built / "training_examples_gold"))
    newest = gold.agg(F.max("dt")).first()[0]
    shown = gold.where(F.col("dt") == newest).select(F.sum(F.size("item_ids"))).first()[0]
    batch = ran["batch"]
    assert batch.day == newest
    assert tuple(batch.impressions.shape) == (shown,)
    assert tuple(batch.actions.shape) == tuple(batch.action_types.shape) == (shown, HISTORY.history_length)
