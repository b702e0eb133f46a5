"""Knobs of the history algorithm, as one frozen dataclass."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

DEFAULT_HISTORY_LENGTH = 1000
DEFAULT_LOOKBACK_DAYS = 365


@dataclass(frozen=True)
class HistoryConfig:
    """How long each action sequence is and how far back in days it reaches.

    Attributes:
        history_length: N, the exact length of every `actions` / `action_types` array.
        lookback_days: an action of day A counts for impression day D when D - lookback_days <= A < D.
    """

    history_length: int = DEFAULT_HISTORY_LENGTH
    lookback_days: int = DEFAULT_LOOKBACK_DAYS

    def __post_init__(self) -> None:
        if isinstance(self.history_length, bool) or not isinstance(self.history_length, int):
            raise TypeError(f"history_length must be an int, got {self.history_length!r}")
        if isinstance(self.lookback_days, bool) or not isinstance(self.lookback_days, int):
            raise TypeError(f"lookback_days must be an int, got {self.lookback_days!r}")
        if self.history_length < 1:
            raise ValueError(f"history_length must be at least 1, got {self.history_length}")
        if self.lookback_days < 1:
            raise ValueError(f"lookback_days must be at least 1, got {self.lookback_days}")


def parse_day(day: str) -> dt.date:
    """A 'yyyy-MM-dd' day given on the command line or to a function, as a date.

    Raises:
        ValueError: `day` is not a valid day in that format (the message quotes it).
    """
    try:
        if isinstance(day, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            return dt.date.fromisoformat(day)
    except ValueError:
        pass
    raise ValueError(f"expected a day as 'yyyy-MM-dd', got {day!r}")
