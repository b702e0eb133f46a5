"""The race's data sets, its cases and which of them a scale runs (see `benchmarks/race.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from benchmarks.harness import window_start as _days_from
from carousel.synthetic import SyntheticConfig

# ---------------------------------------------------------------------------------------------
# The data

RACE_DATA = SyntheticConfig(
    customers=100_000,
    history_days=380,
    window_days=14,
    actions_per_customer_year=900.0,
    mix_clicks=88.0,
    mix_add_to_carts=10.8,
    mix_orders=1.2,
    items=200_000,
    zipf_exponent=1.3,
    items_per_impression=10,
    login_rate=0.1,
    login_activity_exponent=1.0,
    login_probability_cap=0.9,
    late_event_rate=0.0,
    dirty_rate=0.0,
    favorite_action_rate=0.0,
    favorite_shown_rate=0.0,
)
"""The issue's data: lognormal activity (sigma 1, mean 1), 900 actions a customer-year split
88 : 10.8 : 1.2, 380 days of history before a 14-day window, Zipf(1.3) items over 200,000 ids,
uniform times of day (no late events), login probability 0.1 x activity weight capped at 0.9,
10 items a login, clean rows only, no favourite items (plain Zipf draws)."""

HEAVY_SHARE = 0.002
HEAVY_ACTIONS_PER_YEAR = 30_000.0

SCALES: dict[str, SyntheticConfig] = {
    "race-tiny": replace(RACE_DATA, customers=1_000),
    "race-10k": replace(RACE_DATA, customers=10_000),
    "race-100k": RACE_DATA,
    "race-100k-heavy": replace(
        RACE_DATA, heavy_customer_share=HEAVY_SHARE, heavy_actions_per_year=HEAVY_ACTIONS_PER_YEAR
    ),
    "race-100k-2x-actions": replace(RACE_DATA, actions_per_customer_year=1_800.0),
    "race-100k-28-days": replace(RACE_DATA, window_days=28),
}
"""Named data sets; each is RACE_DATA with the one change its name says."""

GROWTH_BASE = {"race-100k-2x-actions": "race-100k"}
"""Per growth scale, the scale it doubles a dimension of (the 28-day scale is its own base: 14 vs 28 days)."""

# ---------------------------------------------------------------------------------------------
# The cases

COMPETITOR_CASES = {"competitor": False, "competitor-exploded": True}
"""The competitor's cases and the `explode` argument each passes to its build_training_inputs."""

PROJECT_CASES = ("project-per-customer-day", "project-per-impression", "baseline")
FLOOR_CASES = ("floor-scan", "floor-shuffle", "floor-collect-sort")
CASES = (*COMPETITOR_CASES, *PROJECT_CASES, *FLOOR_CASES)

SETTINGS = ("defaults", "cli")

DEFAULT_DRIVER_MEMORY = "12g"
FLOOR_REFERENCE = "floor-collect-sort"


@dataclass(frozen=True)
class Case:
    """One measured run: a case on a scale under a settings profile, over the last K impression days."""

    scale: str
    settings: str
    kind: str
    impression_days: int | None = None  # the last K days of the scale's window; None = all of it

    @property
    def name(self) -> str:
        days = f"-{self.impression_days}d" if self.impression_days else ""
        return f"{self.scale}/{self.settings}/{self.kind}{days}"

    @property
    def is_competitor(self) -> bool:
        return self.kind in COMPETITOR_CASES


def scale_cases(scale: str) -> list[tuple[str, int | None]]:
    """The (case, impression days) a scale runs by default."""
    if scale.endswith("-28-days"):
        half = SCALES[scale].window_days // 2
        return [
            (kind, days)
            for kind in ("project-per-customer-day", "project-per-impression")
            for days in (half, SCALES[scale].window_days)
        ]
    if scale.endswith("-2x-actions"):
        return [("project-per-customer-day", None), ("project-per-impression", None), (FLOOR_REFERENCE, None)]
    return [(kind, None) for kind in CASES]


def plan(scale: str, settings: Sequence[str], only: Iterable[str] | None = None) -> list[Case]:
    """The cases of a run: the scale's cases under each settings profile, floors first, competitor last.

    Raises:
        ValueError: an unknown scale, settings profile or case.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    for profile in settings:
        if profile not in SETTINGS:
            raise ValueError(f"unknown settings {profile!r}; choose from {', '.join(SETTINGS)}")
    wanted = set(only or CASES)
    for kind in wanted - set(CASES):
        raise ValueError(f"unknown case {kind!r}; choose from {', '.join(CASES)}")
    order = {kind: index for index, kind in enumerate((*FLOOR_CASES, *PROJECT_CASES, *COMPETITOR_CASES))}
    chosen = sorted(
        ((kind, days) for kind, days in scale_cases(scale) if kind in wanted),
        key=lambda pair: (order[pair[0]], pair[1] or 0),
    )
    return [Case(scale, profile, kind, days) for profile in settings for kind, days in chosen]


def window_start(config: SyntheticConfig, impression_days: int | None) -> str | None:
    """The first impression day ('yyyy-MM-dd') of the last `impression_days` of the window; None = all."""
    return _days_from(config.window_end, impression_days)
