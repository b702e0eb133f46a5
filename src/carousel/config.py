"""Knobs of the history algorithm, as one frozen dataclass, the allowed range of every knob, and Kafka's settings.

Every entry point (the public API, the command lines, the pipeline configuration) checks its
knobs against `KNOBS` before any Spark work starts, so an out-of-range value fails at once
with a `KnobRangeError` naming the knob and its range, never deep inside a Spark plan.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from carousel.errors import CarouselError, KnobRangeError

DEFAULT_HISTORY_LENGTH = 1000
DEFAULT_LOOKBACK_DAYS = 365
DEFAULT_WINDOW_DAYS = 14
"""Impression days the gold tables cover by default: the 14 days training reads."""

DAYS_IN_DATE_RANGE = (dt.date.max - dt.date.min).days + 1
"""Days from 0001-01-01 to 9999-12-31, inclusive: Spark's (and Python's) whole date range."""


@dataclass(frozen=True)
class KnobRange:
    """The inclusive range of a whole-number knob."""

    low: int
    high: int

    def describe(self) -> str:
        return f"a whole number from {self.low:,} to {self.high:,}"


KNOBS: dict[str, KnobRange] = {
    # A history row holds 2 x N values; a million (5 MB a row) is far past any model's context.
    "history_length": KnobRange(1, 1_000_000),
    # Reaching back over the whole date range is the longest lookback that means anything.
    "lookback_days": KnobRange(1, DAYS_IN_DATE_RANGE),
    "window_days": KnobRange(1, DAYS_IN_DATE_RANGE),
    "retention_days": KnobRange(0, DAYS_IN_DATE_RANGE),
    "shuffle_partitions": KnobRange(1, 100_000),
}
"""Every whole-number knob of the project with its allowed range, by name."""


def check_knob(knob: str, value: object, name: str | None = None) -> int:
    """`value` when it is a whole number within `KNOBS[knob]`.

    Args:
        knob: a key of `KNOBS`.
        value: the value given.
        name: how the user spelled the knob (a command-line flag, a pipeline key); default `knob`.

    Raises:
        KnobRangeError: `value` is not an int (bools refused) or lies outside the range.
    """
    allowed = KNOBS[knob]
    if isinstance(value, bool) or not isinstance(value, int) or not allowed.low <= value <= allowed.high:
        raise KnobRangeError(name or knob, value, allowed.describe())
    return value


def parse_knob(knob: str, text: str, name: str | None = None) -> int:
    """The whole number written in `text` (command line, pipeline configuration), checked against `KNOBS[knob]`.

    Raises:
        KnobRangeError: `text` is not a whole number, or lies outside the range.
    """
    try:
        value = int(str(text).strip())
    except ValueError:
        raise KnobRangeError(name or knob, text, KNOBS[knob].describe()) from None
    return check_knob(knob, value, name)


@dataclass(frozen=True)
class HistoryConfig:
    """How long each action sequence is and how far back in days it reaches.

    Attributes:
        history_length: N, the exact length of every `actions` / `action_types` array.
        lookback_days: an action of day A counts for impression day D when D - lookback_days <= A < D.

    Raises:
        KnobRangeError: a knob is not a whole number within its range in `KNOBS`.
    """

    history_length: int = DEFAULT_HISTORY_LENGTH
    lookback_days: int = DEFAULT_LOOKBACK_DAYS

    def __post_init__(self) -> None:
        check_knob("history_length", self.history_length)
        check_knob("lookback_days", self.lookback_days)


class DayFormatError(CarouselError, ValueError):
    """A day given to a command or a function is not a valid 'yyyy-MM-dd' day."""


def parse_day(day: str, name: str = "day") -> dt.date:
    """A 'yyyy-MM-dd' day given on the command line or to a function, as a date.

    Raises:
        DayFormatError: `day` is not a valid day in that format (the message names and quotes it).
    """
    try:
        if isinstance(day, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            return dt.date.fromisoformat(day)
    except ValueError:
        pass
    raise DayFormatError(f"{name} must be a day as 'yyyy-MM-dd', got {day!r}")


def check_window(start: str | None, end: str | None, start_name: str = "window_start", end_name: str = "window_end"):
    """The window's bounds as 'yyyy-MM-dd' strings (None = open), checked: valid days, end not before start.

    Raises:
        DayFormatError: a bound is not a valid day.
        KnobRangeError: the window ends before it starts.
    """
    first = parse_day(start, start_name).isoformat() if start else None
    last = parse_day(end, end_name).isoformat() if end else None
    if first and last and last < first:
        raise KnobRangeError(end_name, last, f"on or after {start_name} ({first})")
    return first, last


@dataclass(frozen=True)
class KafkaSettings:
    """Where the sources read from Kafka come from.

    Attributes:
        bootstrap_servers: the brokers, `host:port[,host:port...]`.
        topics: topic per source of `contract.KAFKA_SOURCES` read from Kafka; the others stay tables.
        options: options passed to Spark's Kafka reader as they are: authentication
            (`kafka.security.protocol`, `kafka.sasl.jaas.config`, ...) or `maxOffsetsPerTrigger`.
    """

    bootstrap_servers: str
    topics: dict[str, str]
    options: dict[str, str] = field(default_factory=dict)

    def reader_options(self, source: str) -> dict[str, str]:
        """Spark's Kafka reader options for `source`'s topic: from the earliest message, then the pass-through ones."""
        return {
            "kafka.bootstrap.servers": self.bootstrap_servers,
            "subscribe": self.topics[source],
            "startingOffsets": "earliest",
            **self.options,
        }
