"""`carousel generate`, `build` and `advance` end to end on tiny generated data, and the loader on their output."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from builders import example_tuples
from pyspark.sql import functions as F
from reference import reference_examples

from carousel import build_training_examples
from carousel.batch import advance, build
from carousel.config import HistoryConfig
from carousel.contract import CUSTOMER_ACTION_STATE, CUSTOMER_HISTORIES_GOLD, TRAINING_EXAMPLES_GOLD
from carousel.engine import DAILY
from carousel.gold import unpack_training_examples
from carousel.local.demo_data import generate
from carousel.quality import keep_valid
from carousel.schemas import RAW_SCHEMAS
from carousel.storage import RAW_SOURCES, read_source
from carousel.synthetic import SyntheticConfig

HISTORIES, EXAMPLES = CUSTOMER_HISTORIES_GOLD.name, TRAINING_EXAMPLES_GOLD.name
TINY = SyntheticConfig(customers=80, window_days=3, history_days=20, actions_per_customer_year=2000, dirty_rate=0.05)
CONFIG = HistoryConfig(history_length=6, lookback_days=10)
FIRST, SECOND, THIRD = ((TINY.window_start + dt.timedelta(days=offset)).isoformat() for offset in (0, 1, 2))


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    """TINY generated once; a full `build`; the first day built, then `advance` day by day and the last day again."""
    root = tmp_path_factory.mktemp("cli")
    raw_dir, full, daily = root / "raw", root / "full", root / "daily"
    generated = generate(spark, str(raw_dir), TINY)
    sources = {name: str(raw_dir / name) for name in RAW_SOURCES}
    written_full = build(spark, sources, str(full), CONFIG)
    build(spark, sources, str(daily), CONFIG, FIRST, FIRST)  # the first day from the whole history
    carousel_log, messages = logging.getLogger("carousel"), _Messages()
    level = carousel_log.level
    carousel_log.addHandler(messages)
    carousel_log.setLevel(logging.INFO)
    try:
        advance(spark, sources, str(daily), FIRST, CONFIG)
        written = advance(spark, sources, str(daily), SECOND, CONFIG)
        daily_paths = sum(f"gold: {DAILY}:" in message for message in messages.messages)
        rerun = advance(spark, sources, str(daily), SECOND, CONFIG)
    finally:
        carousel_log.removeHandler(messages)
        carousel_log.setLevel(level)
    return {
        "sources": sources,
        "generated": generated,
        "full": full,
        "written_full": written_full,
        "daily": daily,
        "written": written,
        "rerun": rerun,
        "daily_paths": daily_paths,
    }


@pytest.mark.slow
def test_generate_then_build_writes_the_training_data(spark, built):
    generated, sources, out_dir, written = built["generated"], built["sources"], built["full"], built["written_full"]
    assert set(generated) == set(RAW_SOURCES) and all(rows > 0 for rows in generated.values())

    histories = spark.read.format("delta").load(str(out_dir / HISTORIES))
    packed = spark.read.format("delta").load(str(out_dir / EXAMPLES))
    quarantines = {name: spark.read.format("delta").load(str(out_dir / f"{name}_quarantine")) for name in RAW_SOURCES}
    assert written == {
        **{f"{name}_quarantine": quarantine.count() for name, quarantine in quarantines.items()},
        HISTORIES: histories.count(),
        EXAMPLES: packed.count(),
    }
    assert packed.columns == list(TRAINING_EXAMPLES_GOLD.column_names)
    assert packed.count() == histories.count()  # one row per customer-day, the shown items beside the history
    # Nothing lost: every raw row is kept or quarantined, and the run metrics say so.
    metrics = spark.read.format("delta").load(str(out_dir / "run_metrics"))
    [run_id] = [row.run_id for row in metrics.select("run_id").distinct().collect()]
    assert {row.status for row in metrics.collect()} == {"succeeded"}
    recorded = {(row.subject, row.metric): row.value for row in metrics.collect()}
    for name in RAW_SOURCES:
        raw_rows = read_source(spark, sources[name]).count()
        kept = keep_valid(read_source(spark, sources[name]), name).count()
        assert quarantines[name].count() > 0, name  # TINY has dirty rows of every source
        assert raw_rows == kept + quarantines[name].count(), name
        assert recorded[(name, "rows_read")] == raw_rows
        assert recorded[(name, "rows_kept")] == kept
        assert recorded[(name, "rows_quarantined")] == quarantines[name].count()
        assert {row.run_id for row in quarantines[name].select("run_id").distinct().collect()} == {run_id}
    assert recorded[(HISTORIES, "rows_written")] == histories.count()
    assert recorded[("gold_step.days", "seconds")] > 0
    assert histories.where(F.size("actions") != 6).count() == 0
    assert histories.where(F.size("action_types") != 6).count() == 0
    assert histories.where(F.exists("action_types", lambda t: (t < 0) | (t > 3))).count() == 0

    raw = {name: read_source(spark, path) for name, path in sources.items()}
    raw_rows = [
        [tuple(row) for row in raw[name].select(*RAW_SCHEMAS[name].fieldNames()).collect()] for name in RAW_SOURCES
    ]
    raw_rows[0] = [
        (dt, ranking_id, customer, None if shown is None else [tuple(s) if s else None for s in shown])
        for dt, ranking_id, customer, shown in raw_rows[0]
    ]
    expected = reference_examples(*raw_rows, history_length=6, lookback_days=10)
    assert example_tuples(unpack_training_examples(packed)) == sorted(expected, key=lambda r: r[:4])
    public_api = build_training_examples(*(raw[name] for name in RAW_SOURCES), history_length=6, lookback_days=10)
    assert example_tuples(public_api) == sorted(expected, key=lambda r: r[:4])
    assert histories.select("dt", "customer_id").distinct().count() == histories.count()


def _rows(df, day: str) -> list[tuple]:
    return sorted(
        tuple(list(v) if isinstance(v, list) else v for v in row) for row in df.where(F.col("dt") == day).collect()
    )


@pytest.mark.slow
def test_advance_day_by_day_writes_what_a_full_build_writes(spark, built):
    out, full, written, rerun = built["daily"], built["full"], built["written"], built["rerun"]
    assert built["daily_paths"] == 2  # each day from the day before's state
    assert rerun == written and written[HISTORIES] > 0 and written[EXAMPLES] == written[HISTORIES]
    for table in (HISTORIES, EXAMPLES):
        daily = spark.read.format("delta").load(str(out / table))
        expected = spark.read.format("delta").load(str(full / table))
        for day in (FIRST, SECOND, THIRD):
            assert _rows(daily, day) == _rows(expected, day), (table, day)
        assert daily.count() == expected.count()
    # One state, one row per customer, as of the newest day: what a build of the same days keeps.
    for table in (CUSTOMER_ACTION_STATE.name, "actions_silver", "impressions_bronze"):
        daily = sorted(map(repr, spark.read.format("delta").load(str(out / table)).collect()))
        assert daily == sorted(map(repr, spark.read.format("delta").load(str(full / table)).collect())), table


def test_advance_names_a_bad_day(spark, tmp_path):
    with pytest.raises(ValueError, match="'2025-02-30'"):
        advance(spark, {}, str(tmp_path / "out"), "2025-02-30", HistoryConfig())


def _train_a_few_steps(table: str, days: list[str]) -> dict:
    train_reference = pytest.importorskip("carousel.loader.reference")
    arguments = ["--table", table, "--days", *days, "--batch-size", "16", "--max-steps", "3", "--device", "cpu"]
    return train_reference.main([*arguments, "--item-buckets", "1024"])


@pytest.mark.slow
def test_the_loader_trains_on_what_build_and_advance_write(built):
    for out in (built["full"], built["daily"]):
        result = _train_a_few_steps(str(out / EXAMPLES), [SECOND])
        assert result["steps"] == 3 and result["sequences"] == 3 * 16, out.name
