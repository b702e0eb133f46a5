"""The evaluation report's PNG plots, drawn with matplotlib from an `EvaluationSummary`."""

from __future__ import annotations

from pathlib import Path

from carousel.baseline.summary import (
    DataProfile,
    EvaluationSummary,
    format_count,
    format_metric,
    format_percent,
    format_ratio,
)

PLOTS = (
    "roc.png",
    "precision_recall.png",
    "calibration.png",
    "feature_importance.png",
    "history_length.png",
    "action_types.png",
    "label_rate_by_position.png",
)


# Small figures: the report is read in a browser or a notebook, side by side with its tables.
_FIGURE_SIZE_INCHES = (6.0, 4.0)
_DPI = 100
_MODEL_COLOUR = "tab:blue"
_REFERENCE_COLOUR = "tab:gray"
_SECONDARY_COLOUR = "tab:orange"
_LABEL_SPACING = 0.08
"""Least distance, in fractions of the axes (|dx| + |dy|), between two count labels of the calibration plot."""


# ----------------------------------------------------------------------------------------------------------------------
# Plots


def draw_plots(summary: EvaluationSummary, out_dir: Path) -> None:
    """Each file in `PLOTS`, drawn into `out_dir`."""
    # Figure + the Agg canvas directly, not pyplot: no global figure registry to leak into, no GUI backend chosen.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawers = {
        "roc.png": _draw_roc,
        "precision_recall.png": _draw_precision_recall,
        "calibration.png": _draw_calibration,
        "feature_importance.png": _draw_feature_importance,
        "history_length.png": lambda axes, summary: draw_history_length(axes, summary.profile),
        "action_types.png": lambda axes, summary: draw_action_types(axes, summary.profile),
        "label_rate_by_position.png": lambda axes, summary: draw_label_rate_by_position(axes, summary.profile),
    }
    for name in PLOTS:
        figure = Figure(figsize=_FIGURE_SIZE_INCHES, dpi=_DPI, layout="constrained")
        FigureCanvasAgg(figure)
        drawers[name](figure.add_subplot(), summary)
        figure.savefig(out_dir / name)
        figure.clear()


def _thousands_axis(axis) -> None:
    """Tick labels of a count axis with thousands separators."""
    from matplotlib.ticker import StrMethodFormatter

    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _draw_roc(axes, summary: EvaluationSummary) -> None:
    """The ROC curve against the diagonal of a random score."""
    axes.plot(
        summary.roc.x,
        summary.roc.y,
        color=_MODEL_COLOUR,
        label=f"Model (ROC AUC {format_metric(summary.metrics, 'roc_auc')})",
    )
    axes.plot([0, 1], [0, 1], linestyle="--", color=_REFERENCE_COLOUR, label="Random score (ROC AUC 0.5)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("False positive rate (share of non-orders scored above the threshold)")
    axes.set_ylabel("True positive rate (share of orders)")
    axes.set_title("ROC curve on the evaluation days")
    axes.legend(loc="lower right")


def _draw_precision_recall(axes, summary: EvaluationSummary) -> None:
    """The precision-recall curve against the base rate a random score gets."""
    axes.plot(
        summary.pr.x,
        summary.pr.y,
        color=_MODEL_COLOUR,
        label=f"Model (PR AUC {format_metric(summary.metrics, 'pr_auc')})",
    )
    axes.axhline(
        summary.base_rate,
        linestyle="--",
        color=_REFERENCE_COLOUR,
        label=f"Random score (precision = base rate {format_percent(summary.base_rate)})",
    )
    # Orders are rare, so a fixed 0..1 precision axis would squash the whole curve onto the bottom.
    highest = max([*summary.pr.y, summary.base_rate], default=0.0)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, min(1.0, highest * 1.1) if highest > 0 else 1.0)
    axes.set_xlabel("Recall (share of orders found)")
    axes.set_ylabel("Precision (share of flagged items ordered)")
    axes.set_title("Precision-recall curve on the evaluation days")
    axes.legend(loc="upper right")


def _draw_calibration(axes, summary: EvaluationSummary) -> None:
    """Observed order rate against mean prediction per bin, points sized by impressions."""
    bins = summary.calibration
    predicted = [calibration_bin.mean_predicted for calibration_bin in bins]
    observed = [calibration_bin.observed_rate for calibration_bin in bins]
    impressions = [calibration_bin.impressions for calibration_bin in bins]
    # Predictions are small probabilities: limits from the data keep the points apart.
    highest = max([*predicted, *observed], default=0.0)
    top = highest * 1.1 if highest > 0 else 1.0
    axes.plot([0, top], [0, top], linestyle="--", color=_REFERENCE_COLOUR, label="Perfectly calibrated")
    largest = max(impressions, default=0) or 1
    sizes = [20 + 280 * count / largest for count in impressions]
    axes.plot(predicted, observed, color=_MODEL_COLOUR, alpha=0.4)
    axes.scatter(predicted, observed, s=sizes, color=_MODEL_COLOUR, alpha=0.7, label="Bins (size = impressions)")
    # Bins crowd together where predictions cluster: label the largest first, and skip a label that
    # would sit on one already drawn (the report's calibration table lists every bin's count).
    labelled: list[tuple[float, float]] = []
    for x, y, count in sorted(zip(predicted, observed, impressions, strict=True), key=lambda point: -point[2]):
        spot = (x / top, y / top)
        if all(abs(spot[0] - other[0]) + abs(spot[1] - other[1]) >= _LABEL_SPACING for other in labelled):
            axes.annotate(format_count(count), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7)
            labelled.append(spot)
    axes.set_xlim(0, top)
    axes.set_ylim(0, top)
    axes.set_xlabel("Mean predicted order probability")
    axes.set_ylabel("Observed order rate")
    axes.set_title("Calibration on the evaluation days")
    axes.legend(loc="upper left")


def _draw_feature_importance(axes, summary: EvaluationSummary) -> None:
    """Horizontal bars of feature importance, the most important on top."""
    ranked = sorted(summary.feature_importances, key=lambda item: item[1], reverse=True)
    positions = list(range(len(ranked)))
    axes.barh(positions, [100 * importance for _, importance in ranked], color=_MODEL_COLOUR)
    axes.set_yticks(positions, labels=[name for name, _ in ranked])
    axes.invert_yaxis()
    axes.set_xlabel("Importance (% of the total)")
    axes.set_title("What drives the predictions")


def profile_figure(profile: DataProfile):
    """One matplotlib Figure of the training data's profile: history lengths, action types, order rate by position."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = _FIGURE_SIZE_INCHES
    figure = Figure(figsize=(3 * width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    history, types, positions = figure.subplots(1, 3)
    draw_history_length(history, profile)
    draw_action_types(types, profile)
    draw_label_rate_by_position(positions, profile)
    return figure


def draw_history_length(axes, profile: DataProfile) -> None:
    """A histogram of customer-days over the number of actions in the history, on a numeric axis."""
    from matplotlib.ticker import MaxNLocator

    bins = profile.history_lengths
    widths = [last - first + 1 for first, last, _ in bins]
    widest = max(widths, default=1)
    for (first, last, customer_days), width in zip(bins, widths, strict=True):
        if first == last == 0:
            # Width 1 on an axis of hundreds would vanish: empty histories get a bar of their own left of 0.
            axes.bar(-widest, customer_days, width=widest * 0.9, align="edge", color=_SECONDARY_COLOUR,
                     label=f"No action yet ({format_count(customer_days)} customer-days)")  # fmt: skip
        else:
            axes.bar(first, customer_days, width=width, align="edge", color=_MODEL_COLOUR, edgecolor="white")
    highest = max((last + 1 for _, last, _ in bins), default=1)
    ticks = [tick for tick in MaxNLocator(nbins=6, integer=True).tick_values(0, highest) if 0 <= tick <= highest]
    axes.set_xticks(ticks, labels=[f"{tick:,.0f}" for tick in ticks])
    axes.set_xlim(-widest * 1.1, highest)
    _thousands_axis(axes.yaxis)
    if any(first == last == 0 for first, last, _ in bins):
        axes.legend(loc="upper right")
    axes.set_xlabel("Actions in the customer's history")
    axes.set_ylabel("Customer-days")
    axes.set_title("How long the customers' histories are")


def draw_action_types(axes, profile: DataProfile) -> None:
    """Bars of actions per action type, each labelled with its share."""
    counts = profile.action_type_counts
    total = sum(counts.values())
    positions = list(range(len(counts)))
    bars = axes.bar(positions, list(counts.values()), color=_MODEL_COLOUR)
    axes.bar_label(bars, labels=[format_ratio(count, total) for count in counts.values()], fontsize=8)
    axes.set_xticks(positions, labels=list(counts))
    axes.margins(y=0.12)  # room for the share above the tallest bar
    _thousands_axis(axes.yaxis)
    axes.set_xlabel("Action type")
    axes.set_ylabel("Actions in histories")
    axes.set_title("Which actions the histories hold")


def draw_label_rate_by_position(axes, profile: DataProfile) -> None:
    """Bars of order rate per carousel position, with impressions per position on a second axis."""
    rows = profile.label_rate_by_position
    positions = list(range(len(rows)))
    rates = [100 * orders / impressions if impressions else 0.0 for _, impressions, orders in rows]
    bars = axes.bar(positions, rates, color=_MODEL_COLOUR, label="Order rate")
    axes.bar_label(bars, labels=[format_ratio(orders, impressions) for _, impressions, orders in rows], fontsize=7)
    axes.set_xticks(positions, labels=[str(position) for position, _, _ in rows])
    # Headroom above the bars and the line, so the legend on top covers neither.
    axes.set_ylim(0, 1.45 * max(rates, default=0.0) or 1.0)
    axes.set_xlabel("Position in the carousel")
    axes.set_ylabel("Order rate (%)")
    impressions_axes = axes.twinx()
    impressions_axes.plot(
        positions,
        [impressions for _, impressions, _ in rows],
        color=_SECONDARY_COLOUR,
        marker="o",
        label="Impressions",
    )
    impressions_axes.set_ylim(0, 1.45 * max((impressions for _, impressions, _ in rows), default=0) or 1)
    _thousands_axis(impressions_axes.yaxis)
    impressions_axes.set_ylabel("Impressions")
    axes.set_title("Order rate by carousel position")
    handles = axes.get_legend_handles_labels()[0] + impressions_axes.get_legend_handles_labels()[0]
    axes.legend(handles=handles, loc="upper center", ncols=2)
