"""The rolling window of impression days: window_days ending at the newest day, or explicit bounds."""

from __future__ import annotations

import pytest

from carousel.errors import KnobRangeError
from carousel.examples import impressions_in_rolling_window

DAYS = ["2025-06-01", "2025-06-09", "2025-06-10", "2025-06-14", "2025-06-15", "2025-06-15"]


@pytest.fixture(scope="module")
def impressions(spark):
    return spark.createDataFrame([(day, index) for index, day in enumerate(DAYS)], "dt string, ranking_id int")


def _ids(frame) -> list[int]:
    return sorted(row.ranking_id for row in frame.collect())


def test_the_window_ends_at_the_newest_day(impressions):
    # newest 2025-06-15; 7 days back to 2025-06-09 inclusive
    rolled = impressions_in_rolling_window(impressions, 7)
    assert _ids(rolled) == [1, 2, 3, 4, 5]
    assert rolled.columns == ["dt", "ranking_id"]


def test_one_day_keeps_only_the_newest(impressions):
    assert _ids(impressions_in_rolling_window(impressions, 1)) == [4, 5]


def test_an_explicit_end_moves_the_window(impressions):
    # 2025-06-10 back 2 days: 2025-06-09 and 2025-06-10
    assert _ids(impressions_in_rolling_window(impressions, 2, window_end="2025-06-10")) == [1, 2]


def test_explicit_bounds_backfill_a_range(impressions):
    assert _ids(impressions_in_rolling_window(impressions, 1, "2025-06-01", "2025-06-10")) == [0, 1, 2]


def test_an_explicit_start_with_the_newest_day_as_end(impressions):
    assert _ids(impressions_in_rolling_window(impressions, 1, window_start="2025-06-14")) == [3, 4, 5]


def test_a_window_of_no_days_is_refused(impressions):
    with pytest.raises(KnobRangeError, match="window_days"):
        impressions_in_rolling_window(impressions, 0)
