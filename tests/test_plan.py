"""The physical plan has the shape the README promises."""

from __future__ import annotations

from builders import at, raw_frames

from carousel import build_training_examples


def test_newest_before_window_uses_window_group_limit(spark):
    frames = raw_frames(
        spark, [("2025-03-10", "r", 1, [(500, False)])], [("2025-03-09", 1, 11, at("2025-03-09T10:00"))]
    )
    plan = build_training_examples(*frames, history_length=1000)._jdf.queryExecution().executedPlan().toString()
    assert "WindowGroupLimit" in plan
    assert "row_number(), 1000" in plan
    assert "BatchEvalPython" not in plan and "ArrowEvalPython" not in plan  # no Python UDFs
