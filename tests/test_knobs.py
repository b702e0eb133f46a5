"""Every knob has a range, checked up front with an error that names the knob and the range (no Spark)."""

from __future__ import annotations

import pytest

from carousel import build_training_examples
from carousel.config import KNOBS, HistoryConfig, KnobRange, check_knob, check_window, parse_knob
from carousel.errors import CarouselError, KnobRangeError
from carousel.pipeline.settings import PipelineConfigError, PipelineSettings


def test_the_ranges():
    assert KNOBS == {
        "history_length": KnobRange(1, 1_000_000),
        "lookback_days": KnobRange(1, 3_652_059),  # 0001-01-01 .. 9999-12-31
        "window_days": KnobRange(1, 3_652_059),
        "retention_days": KnobRange(0, 3_652_059),
        "shuffle_partitions": KnobRange(1, 100_000),
    }


@pytest.mark.parametrize("knob", sorted(KNOBS))
def test_each_bound_is_inclusive_and_the_next_value_refused(knob):
    allowed = KNOBS[knob]
    assert check_knob(knob, allowed.low) == allowed.low
    assert check_knob(knob, allowed.high) == allowed.high
    for value in (allowed.low - 1, allowed.high + 1):
        with pytest.raises(KnobRangeError) as raised:
            check_knob(knob, value)
        assert str(raised.value) == (
            f"{knob} must be a whole number from {allowed.low:,} to {allowed.high:,}, got {value!r}"
        )
        assert isinstance(raised.value, CarouselError) and isinstance(raised.value, ValueError)


@pytest.mark.parametrize("value", [2**31, -1, 0, True, 2.0, "3", None])
def test_the_public_api_refuses_a_bad_lookback_before_any_spark_work(value):
    # No DataFrames needed: the knobs are checked before the inputs are touched.
    with pytest.raises(KnobRangeError, match=r"^lookback_days must be a whole number from 1 to 3,652,059, got "):
        build_training_examples(None, None, None, None, lookback_days=value)


def test_history_config_names_the_knob():
    with pytest.raises(KnobRangeError, match=r"^history_length must be a whole number from 1 to 1,000,000, got 0$"):
        HistoryConfig(history_length=0)


def test_text_knobs_parse_and_name_the_spelling_the_user_used():
    assert parse_knob("shuffle_partitions", " 16 ") == 16
    with pytest.raises(KnobRangeError, match=r"^--window-days must be a whole number from 1 to 3,652,059, got 'two'$"):
        parse_knob("window_days", "two", name="--window-days")


def test_window_bounds():
    assert check_window("2025-06-01", "2025-06-14") == ("2025-06-01", "2025-06-14")
    assert check_window(None, "9999-12-31") == (None, "9999-12-31")
    with pytest.raises(KnobRangeError, match=r"^window_end must be on or after window_start \(2025-06-14\), got"):
        check_window("2025-06-14", "2025-06-01")
    with pytest.raises(CarouselError, match=r"^window_start must be a day as 'yyyy-MM-dd', got '2025-6-1'$"):
        check_window("2025-6-1", None)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("carousel.lookback_days", "2147483648", "from 1 to 3,652,059, got 2147483648"),
        ("carousel.history_length", "1000001", "from 1 to 1,000,000, got 1000001"),
    ],
)
def test_pipeline_settings_name_the_key_and_the_range(key, value, message):
    with pytest.raises(PipelineConfigError) as raised:
        PipelineSettings.from_conf(lambda name, default: value if name == key else default)
    assert str(raised.value) == f"pipeline setting '{key}' must be a whole number {message}"
