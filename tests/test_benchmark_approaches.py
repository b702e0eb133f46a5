"""The benchmark compares like with like: its baseline returns exactly the project's histories."""

from __future__ import annotations

import pytest
from builders import raw_frames
from random_raw import random_raw_over_seeds

from benchmarks.approaches import baseline_histories
from carousel.actions import unify_actions
from carousel.config import HistoryConfig
from carousel.history import build_histories, customer_days


def _rows(df) -> list[tuple]:
    return sorted((r.dt, r.customer_id, list(r.actions), list(r.action_types)) for r in df.collect())


@pytest.mark.parametrize("config", [HistoryConfig(4, 5), HistoryConfig(1000, 365)], ids=["N4-L5", "N1000-L365"])
def test_baseline_equals_the_project(spark, config):
    impressions, clicks, add_to_carts, orders = raw_frames(spark, *random_raw_over_seeds(range(1, 11)))
    actions, days = unify_actions(clicks, add_to_carts, orders), customer_days(impressions)
    expected = build_histories(actions, days, config)
    baseline = baseline_histories(actions, days, config)
    assert baseline.dtypes == expected.dtypes
    project_rows = _rows(expected)
    assert len(project_rows) > 500
    assert _rows(baseline) == project_rows
