"""What the demo data looks like: `SyntheticConfig`, the action mix, the dirty kinds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from carousel.errors import ConfigError

EXTRA_COLUMN = "_ingested_at"
"""The one column outside the contract that every generated source carries (a timestamp)."""

ACTIVITY_SIGMA = 1.0
"""Sigma of the lognormal customer activity weight; its mean is 1."""

LOGIN_ACTIVITY_EXPONENT = 0.5
"""Login odds grow with activity weight ** this; 0 would make logins independent of activity."""

ACTION_MIX: dict[str, float] = {"clicks": 75.0, "add_to_carts": 7.5, "orders": 1.0}
"""Relative volumes of the action sources (the production ratio of the spec); `SyntheticConfig`'s `mix_*` defaults."""

SIZES_PER_ITEM = 6
"""simple_id = config_id * 100 + size, size in 1..SIZES_PER_ITEM."""

BAD_DAY_STRINGS = ("2025-13-45", "not-a-date", "")
"""The unparsable `dt` values the dirty rows use."""

DIRTY_KINDS: dict[str, tuple[str, ...]] = {
    "clicks": (
        "null_customer_id",
        "negative_customer_id",
        "null_item_id",
        "negative_item_id",
        "null_click_time",
        "click_time_days_after_dt",
        "null_dt",
        "bad_dt_month",
        "bad_dt_text",
        "bad_dt_empty",
        "duplicate",
    ),
    "add_to_carts": (
        "null_customer_id",
        "negative_customer_id",
        "null_config_id",
        "negative_config_id",
        "null_occurred_at",
        "occurred_at_days_after_dt",
        "null_dt",
        "bad_dt_month",
        "bad_dt_text",
        "bad_dt_empty",
        "duplicate",
    ),
    "orders": (
        "null_customer_id",
        "negative_customer_id",
        "null_config_id",
        "negative_config_id",
        "null_occurred_at",
        "occurred_at_days_after_order_date",
        "null_order_date",
        "duplicate",
    ),
    "impressions": (
        "null_customer_id",
        "negative_customer_id",
        "null_dt",
        "bad_dt_month",
        "bad_dt_text",
        "bad_dt_empty",
        "null_impressions",
        "empty_impressions",
        "null_item_id_in_list",
        "negative_item_id_in_list",
        "duplicate",
    ),
}
"""Per source, the kinds of dirty rows, in the order a dirty row's kind index refers to."""

# The largest item count whose item ids, times the sizes per item, still fit a Java int.
MAX_ITEMS = (2**31 - 1 - SIZES_PER_ITEM) // 100


@dataclass(frozen=True)
class SyntheticConfig:
    """Scale and shape of the generated raw data.

    Attributes:
        customers: customer ids are 1..customers.
        window_days: impression days, ending on `window_end`.
        history_days: days of actions before the window; actions also continue through it.
        window_end: last impression day (inclusive), 'yyyy-MM-dd'.
        actions_per_customer_year: mean actions per customer per year, all sources together,
            split clicks : add-to-carts : orders = 75 : 7.5 : 1.
        items: item ids are 1..items, id 1 the most popular.
        items_per_impression: distinct items in each impression row.
        login_rate: mean fraction of customers with an impression row on a window day.
        order_rate: mean P(is_order) of a shown item.
        favorite_items: items each customer keeps coming back to (Zipf-popular draws of their own).
        favorite_action_rate: share of a customer's actions that are on one of their favorites.
        favorite_shown_rate: share of the shown-item candidates that are one of the customer's favorites.
        favorite_order_lift: how many times likelier a shown favorite is ordered than another item;
            this is the signal a model can learn from the history (1 = none).
        late_event_rate: fraction of actions whose day partition is the day after their timestamp's.
        dirty_rate: extra dirty rows per source, as a fraction of its clean rows (0 = clean).
        seed: same seed and config, same rows.
        draw: which draw of the seed the rows are (0: the seed's own). Another value draws other
            rows of the same customers: their activity, heaviness and favorites come from `seed`
            alone and stay. `carousel.local.demo_data.generate_next_day` passes the day's ordinal, so each
            landed day gets rows of its own, and the same day from the same seed the same rows.
        mix_clicks, mix_add_to_carts, mix_orders: relative volumes of the three action sources
            (three numbers rather than one tuple, so the config survives a JSON round trip).
        zipf_exponent: s of the item popularity law, P(item k) roughly proportional to k ** -s
            (1 = the classic 1/k; larger s concentrates the actions on fewer items).
        login_activity_exponent: a customer's login odds grow with its activity weight ** this:
            0 = logins independent of activity, 1 = login probability proportional to activity.
        login_probability_cap: the most P(login on a day) can be, however active the customer.
        heavy_customer_share: share of customers (picked at random) who are heavy: they act
            `heavy_actions_per_year` times a year instead of their lognormal share (0 = none).
        heavy_actions_per_year: mean actions a year of a heavy customer, all sources together;
            their logins follow it like anyone's (weight = heavy / mean actions a year).
    """

    customers: int = 20_000
    window_days: int = 14
    history_days: int = 365
    window_end: str = "2025-06-30"
    actions_per_customer_year: float = 900.0
    items: int = 50_000
    items_per_impression: int = 10
    login_rate: float = 0.1
    order_rate: float = 0.02
    favorite_items: int = 5
    favorite_action_rate: float = 0.3
    favorite_shown_rate: float = 0.2
    favorite_order_lift: float = 5.0
    late_event_rate: float = 0.01
    dirty_rate: float = 0.001
    seed: int = 7
    draw: int = 0
    mix_clicks: float = ACTION_MIX["clicks"]
    mix_add_to_carts: float = ACTION_MIX["add_to_carts"]
    mix_orders: float = ACTION_MIX["orders"]
    zipf_exponent: float = 1.0
    login_activity_exponent: float = LOGIN_ACTIVITY_EXPONENT
    login_probability_cap: float = 1.0
    heavy_customer_share: float = 0.0
    heavy_actions_per_year: float = 30_000.0

    def __post_init__(self) -> None:
        if not 1 <= self.customers <= 2**31 - 1:
            raise ConfigError(f"customers must be in 1..2**31-1, got {self.customers}")
        if self.window_days < 1:
            raise ConfigError(f"window_days must be at least 1, got {self.window_days}")
        if self.history_days < 0:
            raise ConfigError(f"history_days must be at least 0, got {self.history_days}")
        dt.date.fromisoformat(self.window_end)
        if self.actions_per_customer_year < 0:
            raise ConfigError(f"actions_per_customer_year must be >= 0, got {self.actions_per_customer_year}")
        if not 1 <= self.items <= MAX_ITEMS:
            raise ConfigError(f"items must be in 1..{MAX_ITEMS}, got {self.items}")
        if not 1 <= self.items_per_impression <= self.items:
            raise ConfigError(f"items_per_impression must be in 1..items, got {self.items_per_impression}")
        if self.favorite_items < 1:
            raise ConfigError(f"favorite_items must be at least 1, got {self.favorite_items}")
        if self.favorite_order_lift < 1:
            raise ConfigError(f"favorite_order_lift must be at least 1, got {self.favorite_order_lift}")
        for name in (
            "login_rate",
            "order_rate",
            "late_event_rate",
            "dirty_rate",
            "favorite_action_rate",
            "favorite_shown_rate",
            "login_probability_cap",
            "heavy_customer_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if min(self.action_mix.values()) < 0 or sum(self.action_mix.values()) <= 0:
            raise ConfigError(f"the mix_* volumes must be >= 0 with a positive sum, got {self.action_mix}")
        if self.zipf_exponent <= 0:
            raise ConfigError(f"zipf_exponent must be > 0, got {self.zipf_exponent}")
        if self.login_activity_exponent < 0:
            raise ConfigError(f"login_activity_exponent must be >= 0, got {self.login_activity_exponent}")
        if not 0 <= self.draw <= 2**31 - 1:
            raise ConfigError(f"draw must be in 0..2**31-1, got {self.draw}")
        if self.heavy_actions_per_year < 0:
            raise ConfigError(f"heavy_actions_per_year must be >= 0, got {self.heavy_actions_per_year}")
        if self.heavy_customer_share > 0 and self.actions_per_customer_year <= 0:
            raise ConfigError("heavy customers need actions_per_customer_year > 0 (their weight is relative to it)")

    @property
    def window_start(self) -> dt.date:
        """First impression day."""
        return dt.date.fromisoformat(self.window_end) - dt.timedelta(days=self.window_days - 1)

    @property
    def history_start(self) -> dt.date:
        """First day an action can happen on."""
        return self.window_start - dt.timedelta(days=self.history_days)

    @property
    def action_days(self) -> int:
        """Number of days actions are spread over: history plus window."""
        return self.history_days + self.window_days

    @property
    def action_mix(self) -> dict[str, float]:
        """Relative volume per action source, in the order of `ACTION_MIX`."""
        return {"clicks": self.mix_clicks, "add_to_carts": self.mix_add_to_carts, "orders": self.mix_orders}

    def source_share(self, source: str) -> float:
        """The share of all actions that `source` holds, from the `mix_*` volumes."""
        mix = self.action_mix
        return mix[source] / sum(mix.values())

    @property
    def heavy_weight(self) -> float:
        """A heavy customer's activity weight: its actions a year over the mean of the others."""
        if self.actions_per_customer_year <= 0:
            return 0.0
        return self.heavy_actions_per_year / self.actions_per_customer_year

    def _unit_weight_actions(self, source: str) -> float:
        """Clean rows of an action source over the whole period if every customer had activity weight 1."""
        return self.customers * self.actions_per_customer_year * self.action_days / 365.0 * self.source_share(source)

    def expected_actions(self, source: str) -> float:
        """Mean number of clean rows of an action source over the whole period (heavy customers included)."""
        if self.heavy_customer_share == 0:
            return self._unit_weight_actions(source)
        mean_weight = 1.0 + self.heavy_customer_share * (self.heavy_weight - 1.0)
        return self._unit_weight_actions(source) * mean_weight

    def typical_actions(self, source: str) -> float:
        """Mean clean rows of an action source over the whole period for one customer of activity weight 1."""
        return self._unit_weight_actions(source) / self.customers
