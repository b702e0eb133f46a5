"""The physical plan has the shape the README promises."""

from __future__ import annotations

import pytest
from builders import at, raw_frames

from carousel.actions import unify_actions
from carousel.config import HistoryConfig
from carousel.history import build_histories, customer_days

pytestmark = pytest.mark.local_only  # reads the local JVM's query plans


def _shuffles_above_the_action_scan(plan: str) -> int:
    """Shuffle exchanges on the path from the plan's root down to the Union of the three action sources.

    A broadcast exchange on that path is not a shuffle of the actions: AQE may broadcast the
    (small, in a test) per-customer arrays into the join with the customer-days.
    """
    lines = plan.splitlines()
    union = next(number for number, line in enumerate(lines) if "Union" in line)
    indent = len(lines[union]) - len(lines[union].lstrip(" :|+-"))
    exchanges = 0
    for line in reversed(lines[:union]):
        depth = len(line) - len(line.lstrip(" :|+-"))
        if depth < indent:
            indent = depth
            exchanges += "Exchange" in line and "BroadcastExchange" not in line
    return exchanges


def test_actions_are_shuffled_once_and_never_ranked_by_a_window(spark):
    impressions, clicks, add_to_carts, orders = raw_frames(
        spark,
        [("2025-03-10", "r", 1, [(500, False)]), ("2025-03-12", "s", 1, [(501, True)])],
        [("2025-03-09", 1, 11, at("2025-03-09T10:00"))],
    )
    histories = build_histories(
        unify_actions(clicks, add_to_carts, orders), customer_days(impressions), HistoryConfig()
    )
    histories.collect()  # the adaptive plan is final only once it has run
    plan = histories._jdf.queryExecution().executedPlan().toString()
    assert _shuffles_above_the_action_scan(plan) == 1, plan
    assert "Window" not in plan
    assert "collect_list" in plan
    # The sort is the aggregate's result expression, which the physical plan's text does not print.
    assert "sort_array(collect_list(" in histories._jdf.queryExecution().optimizedPlan().toString()
    assert "BatchEvalPython" not in plan and "ArrowEvalPython" not in plan  # no Python UDFs
