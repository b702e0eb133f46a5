"""Reconciliation (rows read = kept + quarantined) fails loudly, and every run lands in the run-metrics table."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from carousel.reconciliation import (
    ReconciliationError,
    SourceCounts,
    check_reconciled,
    checked_progress,
    landed_progress,
    progress_from_rows,
    progress_totals,
    reconciled,
    source_counts,
    union_all,
)
from carousel.run_metrics import new_run_id, recorded_run


def test_run_ids_sort_by_start_and_differ():
    early, late = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), dt.datetime(2026, 1, 2, 3, 4, 6)
    first, second = new_run_id(early), new_run_id(late.replace(tzinfo=dt.timezone.utc))
    assert re.fullmatch(r"20260102T030405Z-[0-9a-f]{8}", first)
    assert first < second and new_run_id(early) != first


def test_balanced_counts_pass_and_unbalanced_ones_name_source_and_counts():
    check_reconciled([SourceCounts("clicks", 10, 7, 3), SourceCounts("orders", 0, 0, 0)])
    with pytest.raises(ReconciliationError) as raised:
        check_reconciled([SourceCounts("clicks", 10, 7, 3), SourceCounts("orders", 5, 3, 1)])
    assert str(raised.value) == ("reconciliation failed: source 'orders': read 5 rows, kept 3 + quarantined 1 = 4")
    assert [counts.source for counts in raised.value.unbalanced] == ["orders"]


def test_reconciliation_frame_counts_each_source_and_fails_on_a_lost_row(spark):
    raw = spark.createDataFrame([(i,) for i in range(5)], "x int")
    kept, quarantined = raw.where("x < 3"), raw.where("x >= 3")
    counts = union_all(
        [
            source_counts(raw, kept, quarantined, "clicks"),
            source_counts(raw, kept.where("x > 0"), quarantined, "orders"),
        ]
    )
    rows = reconciled(counts.where("source = 'clicks'"), "run-1").collect()
    assert [tuple(row) for row in rows] == [("run-1", "clicks", 5, 3, 2)]
    with pytest.raises(
        Exception, match=r"reconciliation failed: source 'orders': read 5 rows, kept 2 \+ quarantined 2 = 4"
    ):
        reconciled(counts, "run-1").collect()


def test_running_totals_are_the_previous_ones_plus_each_updates_over_three_updates(spark):
    previous = ()
    seen = []
    for run, landed in (("run-1", 10), ("run-2", 16), ("run-3", 16)):  # update 3 finds nothing new
        raw = spark.range(landed).toDF("x")
        kept, quarantined = raw.where("x % 4 != 0"), raw.where("x % 4 = 0")
        progress = checked_progress(landed_progress(source_counts(raw, kept, quarantined, "orders"), previous), run)
        [row] = progress.collect()
        seen.append((row.run_id, row.update_rows_read, row.update_rows_kept, row.update_rows_quarantined))
        before = previous[0] if previous else None
        for name in ("read", "kept", "quarantined"):
            earlier = getattr(before, f"rows_{name}", 0)
            assert row[f"rows_{name}"] == earlier + row[f"update_rows_{name}"]
        assert [tuple(one) for one in progress_totals(progress).collect()] == [
            (run, "orders", row.rows_read, row.rows_kept, row.rows_quarantined)
        ]
        previous = progress_from_rows([row])["orders"]
    assert seen == [("run-1", 10, 7, 3), ("run-2", 6, 5, 1), ("run-3", 0, 0, 0)]
    assert (previous[0].rows_read, previous[0].rows_kept, previous[0].rows_quarantined) == (16, 12, 4)
    raw = spark.range(20).toDF("x")  # update 4 loses one of its four new rows
    counts = source_counts(raw, raw.where("x % 4 != 0 AND x != 17"), raw.where("x % 4 = 0"), "orders")
    with pytest.raises(
        Exception, match=r"reconciliation failed: source 'orders': read 4 rows, kept 2 \+ quarantined 1 = 3"
    ):
        checked_progress(landed_progress(counts, previous), "run-4").collect()


def test_recorded_run_appends_success_and_failure(spark, tmp_path):
    path = str(tmp_path / "run_metrics")
    with recorded_run(spark, path, "build", run_id="run-ok") as record:
        record.counts.append(SourceCounts("clicks", 4, 3, 1))
        record.rows_written["customer_histories"] = 2
        record.seconds["customer_histories"] = 1.5
    with pytest.raises(ReconciliationError), recorded_run(spark, path, "build", run_id="run-bad") as record:
        record.counts.append(SourceCounts("orders", 4, 1, 1))
        check_reconciled(record.counts)
    rows = spark.read.format("delta").load(path).collect()
    facts = sorted((r.run_id, r.status, r.subject, r.metric, r.value, r.error) for r in rows)
    assert facts == [
        (
            "run-bad",
            "failed",
            "orders",
            "rows_kept",
            1.0,
            "reconciliation failed: source 'orders': read 4 rows, kept 1 + quarantined 1 = 2",
        ),
        (
            "run-bad",
            "failed",
            "orders",
            "rows_quarantined",
            1.0,
            "reconciliation failed: source 'orders': read 4 rows, kept 1 + quarantined 1 = 2",
        ),
        (
            "run-bad",
            "failed",
            "orders",
            "rows_read",
            4.0,
            "reconciliation failed: source 'orders': read 4 rows, kept 1 + quarantined 1 = 2",
        ),
        ("run-ok", "succeeded", "clicks", "rows_kept", 3.0, None),
        ("run-ok", "succeeded", "clicks", "rows_quarantined", 1.0, None),
        ("run-ok", "succeeded", "clicks", "rows_read", 4.0, None),
        ("run-ok", "succeeded", "customer_histories", "rows_written", 2.0, None),
        ("run-ok", "succeeded", "customer_histories", "seconds", 1.5, None),
    ]
    assert all(r.started_at <= r.finished_at for r in rows)
