"""What the baseline's evaluation report shows, as small plain-Python values, and how its numbers read.

`carousel.baseline.model` computes everything in Spark and hands over these results (bounded by
bins, positions and features, never by rows); `plots` draws them and `report` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAIN_METRICS = ("roc_auc", "pr_auc", "log_loss")


@dataclass(frozen=True)
class Curve:
    """Points of a curve, in threshold order (highest score first): x[i], y[i]."""

    x: list[float]
    y: list[float]


@dataclass(frozen=True)
class CalibrationBin:
    """Impressions whose predicted probability fell in one bin: their mean prediction and observed order rate."""

    mean_predicted: float
    observed_rate: float
    impressions: int


@dataclass(frozen=True)
class DataProfile:
    """What the training input looks like (all days of the split together unless said otherwise).

    history_lengths: (first, last, customer-days) per bin of real actions per history, bins in order;
        `last` is inclusive (e.g. (0, 0, n) = empty histories, (1, 50, n), (51, 100, n), ...).
    action_type_counts: action type name ("click", "add_to_cart", "order") -> actions in histories.
    label_rate_by_position: (position, impressions, orders) per carousel position, positions in order.
    """

    customer_days: int
    impressions: int
    orders: int
    history_lengths: list[tuple[int, int, int]]
    action_type_counts: dict[str, int]
    label_rate_by_position: list[tuple[int, int, int]]


@dataclass(frozen=True)
class EvaluationSummary:
    """Everything the report shows.

    metrics: on the evaluation days: "roc_auc", "pr_auc", "log_loss" (and may hold more).
    base_rate: the order rate of the evaluation impressions (the PR AUC of a random score).
    single_feature_roc_auc: feature name -> ROC AUC of that feature alone as the score (higher =
        more likely an order), on the evaluation days: what each signal is worth by itself.
    feature_importances: (feature name, importance) in descending importance; importances sum to 1.
    roc: false positive rate (x) vs true positive rate (y); pr: recall (x) vs precision (y).
    params: the model's parameters as logged to MLflow (name -> value).
    model: how to load it, e.g. {"name": "carousel_baseline", "version": "3", "uri": "models:/..."}.
    """

    classifier: str
    train_days: list[str]
    eval_days: list[str]
    train_impressions: int
    eval_impressions: int
    metrics: dict[str, float]
    base_rate: float
    single_feature_roc_auc: dict[str, float]
    feature_importances: list[tuple[str, float]]
    roc: Curve
    pr: Curve
    calibration: list[CalibrationBin]
    profile: DataProfile
    params: dict[str, str] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)
    feature_descriptions: dict[str, str] = field(default_factory=dict)


def format_count(value: int) -> str:
    """A count with thousands separators: 12345 -> "12,345"."""
    return f"{value:,}"


def format_percent(rate: float) -> str:
    """A rate as a percentage with 2 decimals (rates here are small): 0.04 -> "4.00%"."""
    return f"{100 * rate:.2f}%"


def format_ratio(numerator: int, denominator: int) -> str:
    """`numerator / denominator` as a percentage, or "n/a" when there is nothing to divide by."""
    return format_percent(numerator / denominator) if denominator else "n/a"


def format_metric(metrics: dict[str, float], name: str) -> str:
    """A metric to 4 decimals, or "n/a" when it was not computed."""
    value = metrics.get(name)
    return "n/a" if value is None else f"{value:.4f}"


def bin_label(first: int, last: int) -> str:
    """A history-length bin as a reader writes it: (0, 0) -> "0", (1, 50) -> "1-50"."""
    return str(first) if first == last else f"{first}-{last}"
