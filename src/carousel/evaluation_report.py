"""The baseline model's evaluation report: Markdown with PNG plots, for a reader who did not build the model.

`carousel.baseline` computes everything in Spark and hands over small, plain-Python results
(bounded by bins, positions and features, never by rows); this module only draws and writes.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path


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
_MAIN_METRICS = ("roc_auc", "pr_auc", "log_loss")


def write_report(summary: EvaluationSummary, out_dir: str | Path) -> Path:
    """Write `report.md` and the PNG plots (`PLOTS`) into `out_dir` (created if missing); return the report's path."""
    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    _draw_plots(summary, out_path)
    report_path = out_path / "report.md"
    report_path.write_text(_report_markdown(summary), encoding="utf-8")
    return report_path


# ----------------------------------------------------------------------------------------------------------------------
# Numbers for humans


def _count(value: int) -> str:
    """A count with thousands separators: 12345 -> "12,345"."""
    return f"{value:,}"


def _percent(rate: float) -> str:
    """A rate as a percentage with 2 decimals (rates here are small): 0.04 -> "4.00%"."""
    return f"{100 * rate:.2f}%"


def _ratio(numerator: int, denominator: int) -> str:
    """`numerator / denominator` as a percentage, or "n/a" when there is nothing to divide by."""
    return _percent(numerator / denominator) if denominator else "n/a"


def _metric(metrics: dict[str, float], name: str) -> str:
    """A metric to 4 decimals, or "n/a" when it was not computed."""
    value = metrics.get(name)
    return "n/a" if value is None else f"{value:.4f}"


def _constant_predictor_log_loss(base_rate: float) -> float:
    """The log loss of always predicting `base_rate`, on data whose order rate is `base_rate`."""
    # With only one class the constant predictor is exactly right; log(0) would otherwise be taken.
    if base_rate <= 0.0 or base_rate >= 1.0:
        return 0.0
    return -(base_rate * math.log(base_rate) + (1.0 - base_rate) * math.log(1.0 - base_rate))


def _bin_label(first: int, last: int) -> str:
    """A history-length bin as a reader writes it: (0, 0) -> "0", (1, 50) -> "1-50"."""
    return str(first) if first == last else f"{first}-{last}"


def _days_text(days: list[str]) -> str:
    """Days as a short phrase: a range when they run without gaps, else every day listed."""
    if not days:
        return "none"
    ordered = sorted(days)
    if len(ordered) == 1:
        return ordered[0]
    # A range would hide a missing day, so only ISO dates that follow each other are shortened.
    try:
        dates = [datetime.date.fromisoformat(day) for day in ordered]
    except ValueError:
        return ", ".join(ordered)
    consecutive = all((later - earlier).days == 1 for earlier, later in zip(dates, dates[1:], strict=False))
    if consecutive and len(ordered) > 2:
        return f"{ordered[0]} to {ordered[-1]} ({len(ordered)} days)"
    return ", ".join(ordered)


def _cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    lines = ["| " + " | ".join(_cell(title) for title in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


# ----------------------------------------------------------------------------------------------------------------------
# Plots


def _draw_plots(summary: EvaluationSummary, out_dir: Path) -> None:
    """Each file in `PLOTS`, drawn into `out_dir`."""
    # Figure + the Agg canvas directly, not pyplot: no global figure registry to leak into, no GUI backend chosen.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawers = {
        "roc.png": _draw_roc,
        "precision_recall.png": _draw_precision_recall,
        "calibration.png": _draw_calibration,
        "feature_importance.png": _draw_feature_importance,
        "history_length.png": _draw_history_length,
        "action_types.png": _draw_action_types,
        "label_rate_by_position.png": _draw_label_rate_by_position,
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
        label=f"Model (ROC AUC {_metric(summary.metrics, 'roc_auc')})",
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
        summary.pr.x, summary.pr.y, color=_MODEL_COLOUR, label=f"Model (PR AUC {_metric(summary.metrics, 'pr_auc')})"
    )
    axes.axhline(
        summary.base_rate,
        linestyle="--",
        color=_REFERENCE_COLOUR,
        label=f"Random score (precision = base rate {_percent(summary.base_rate)})",
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
    for x, y, count in zip(predicted, observed, impressions, strict=True):
        axes.annotate(_count(count), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7)
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


def _draw_history_length(axes, summary: EvaluationSummary) -> None:
    """Bars of customer-days per history-length bin."""
    bins = summary.profile.history_lengths
    positions = list(range(len(bins)))
    axes.bar(positions, [customer_days for _, _, customer_days in bins], color=_MODEL_COLOUR)
    axes.set_xticks(positions, labels=[_bin_label(first, last) for first, last, _ in bins])
    _thousands_axis(axes.yaxis)
    axes.set_xlabel("Actions in the customer's history")
    axes.set_ylabel("Customer-days")
    axes.set_title("How long the customers' histories are")


def _draw_action_types(axes, summary: EvaluationSummary) -> None:
    """Bars of actions per action type, each labelled with its share."""
    counts = summary.profile.action_type_counts
    total = sum(counts.values())
    positions = list(range(len(counts)))
    bars = axes.bar(positions, list(counts.values()), color=_MODEL_COLOUR)
    axes.bar_label(bars, labels=[_ratio(count, total) for count in counts.values()], fontsize=8)
    axes.set_xticks(positions, labels=list(counts))
    axes.margins(y=0.12)  # room for the share above the tallest bar
    _thousands_axis(axes.yaxis)
    axes.set_xlabel("Action type")
    axes.set_ylabel("Actions in histories")
    axes.set_title("Which actions the histories hold")


def _draw_label_rate_by_position(axes, summary: EvaluationSummary) -> None:
    """Bars of order rate per carousel position, with impressions per position on a second axis."""
    rows = summary.profile.label_rate_by_position
    positions = list(range(len(rows)))
    rates = [100 * orders / impressions if impressions else 0.0 for _, impressions, orders in rows]
    bars = axes.bar(positions, rates, color=_MODEL_COLOUR, label="Order rate")
    axes.bar_label(bars, labels=[_ratio(orders, impressions) for _, impressions, orders in rows], fontsize=7)
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


# ----------------------------------------------------------------------------------------------------------------------
# Markdown


def _report_markdown(summary: EvaluationSummary) -> str:
    """The whole report as Markdown, sections in reading order."""
    sections = [
        _introduction(summary),
        _headline_numbers(summary),
        _split(summary),
        _ranking(summary),
        _calibration(summary),
        _drivers(summary),
        _training_data(summary),
        _parameters(summary),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def _model_sentence(model: dict[str, str]) -> str:
    """Where the model is registered and how to load it, in one sentence."""
    if not model:
        return "No registered model was recorded for this run."
    name, version, uri = model.get("name"), model.get("version"), model.get("uri")
    parts = []
    if name:
        parts.append(f"registered as `{name}`" + (f" version {version}" if version else ""))
    elif version:
        parts.append(f"registered as version {version}")
    if uri:
        parts.append(f"loaded with `{uri}`")
    others = {key: value for key, value in model.items() if key not in ("name", "version", "uri")}
    if others:
        parts.append("recorded with " + ", ".join(f"{key} `{value}`" for key, value in sorted(others.items())))
    return "The model is " + " and ".join(parts) + "."


def _introduction(summary: EvaluationSummary) -> list[str]:
    """Title and what the model is."""
    return [
        "# Baseline model: evaluation report",
        "",
        'The model predicts whether an item shown in the "Our choices for you" carousel gets ordered '
        f"(the label `is_order`). It is a {summary.classifier}, trained on {_days_text(summary.train_days)} "
        f"and evaluated on {_days_text(summary.eval_days)}: later days it never saw. " + _model_sentence(summary.model),
    ]


def _headline_numbers(summary: EvaluationSummary) -> list[str]:
    """The metrics table, each with a plain explanation."""
    constant_log_loss = _constant_predictor_log_loss(summary.base_rate)
    rows = [
        [
            "ROC AUC",
            _metric(summary.metrics, "roc_auc"),
            "The chance that a random ordered impression scores above a random non-ordered one; "
            "0.5 is a coin toss, 1 is perfect.",
        ],
        [
            "PR AUC",
            _metric(summary.metrics, "pr_auc"),
            f"Average precision over all recall levels; compare with the base rate ({_percent(summary.base_rate)}), "
            "which is what a random score gets.",
        ],
        [
            "Log loss",
            _metric(summary.metrics, "log_loss"),
            "How far the predicted probabilities are from what happened; lower is better; "
            f"a model that always predicts the base rate scores {constant_log_loss:.4f}.",
        ],
        [
            "Base rate",
            _percent(summary.base_rate),
            "The order rate on the evaluation days: the share of shown items that were ordered.",
        ],
    ]
    rows += [
        [name, _metric(summary.metrics, name), ""] for name in sorted(summary.metrics) if name not in _MAIN_METRICS
    ]
    return ["## Headline numbers", "", *_table(["Measure", "Value", "What it means"], rows)]


def _split(summary: EvaluationSummary) -> list[str]:
    """Training and evaluation days, and whether the split is clean."""
    rows = [
        ["Training", _days_text(summary.train_days), _count(summary.train_impressions)],
        ["Evaluation", _days_text(summary.eval_days), _count(summary.eval_impressions)],
    ]
    # The sentence is a claim about the data, so it is checked rather than assumed.
    shared_days = sorted(set(summary.train_days) & set(summary.eval_days))
    if shared_days:
        sentence = f"Warning: these days are in both training and evaluation: {', '.join(shared_days)}."
    elif summary.train_days and summary.eval_days and max(summary.train_days) >= min(summary.eval_days):
        sentence = "No evaluation day is used for training, but some evaluation days come before training days."
    else:
        sentence = (
            "The split is by time: the evaluation days come after the training days, and none is used for training."
        )
    return ["## Split", "", *_table(["Part", "Days", "Impressions"], rows), "", sentence]


def _ranking(summary: EvaluationSummary) -> list[str]:
    """The ROC and precision-recall plots with how to read them."""
    return [
        "## How the model ranks",
        "",
        "![ROC curve](roc.png)",
        "",
        "For every score threshold, the ROC curve shows the share of orders scored above it (true positive rate) "
        "against the share of non-orders scored above it (false positive rate); the further it bows above the "
        "diagonal, the better the model separates orders from non-orders.",
        "",
        "![Precision-recall curve](precision_recall.png)",
        "",
        "For every score threshold, the precision-recall curve shows how many of the items scored above it were "
        "ordered (precision) against how many of all orders they catch (recall); a random score stays on the "
        f"base rate line ({_percent(summary.base_rate)}).",
    ]


def _calibration(summary: EvaluationSummary) -> list[str]:
    """The calibration plot and its bins."""
    lines = [
        "## Calibration",
        "",
        "![Calibration plot](calibration.png)",
        "",
        "Each point groups evaluation impressions with similar predicted probabilities: where the model is well "
        "calibrated, the observed order rate equals the mean prediction and the point sits on the diagonal; "
        "above it the model under-predicts, below it over-predicts.",
        "",
    ]
    if not summary.calibration:
        return [*lines, "No calibration bins were computed."]
    rows = [
        [str(number), _percent(bin_.mean_predicted), _percent(bin_.observed_rate), _count(bin_.impressions)]
        for number, bin_ in enumerate(summary.calibration, start=1)
    ]
    return [*lines, *_table(["Bin", "Mean predicted", "Observed order rate", "Impressions"], rows)]


def _drivers(summary: EvaluationSummary) -> list[str]:
    """The feature importance plot and table."""
    lines = [
        "## What drives the predictions",
        "",
        "![Feature importance](feature_importance.png)",
        "",
        "Importance is the model's own measure of how much each feature contributes to its predictions, as a share "
        "of the total.",
    ]
    if summary.single_feature_roc_auc:
        lines[-1] += (
            " ROC AUC alone is how well the feature ranks orders when used by itself as the score (0.5 = no signal)."
        )
    lines.append("")
    if not summary.feature_importances:
        return [*lines, "No feature importances were recorded."]
    header = ["Feature", "Importance"]
    if summary.single_feature_roc_auc:
        header.append("ROC AUC alone")
    if summary.feature_descriptions:
        header.append("Description")
    rows = []
    for name, importance in sorted(summary.feature_importances, key=lambda item: item[1], reverse=True):
        row = [f"`{name}`", _percent(importance)]
        if summary.single_feature_roc_auc:
            row.append(_metric(summary.single_feature_roc_auc, name))
        if summary.feature_descriptions:
            row.append(summary.feature_descriptions.get(name, ""))
        rows.append(row)
    return [*lines, *_table(header, rows)]


def _training_data(summary: EvaluationSummary) -> list[str]:
    """Size of the data and the three profile plots with their tables."""
    profile = summary.profile
    totals = [
        ["Customer-days", _count(profile.customer_days)],
        ["Impressions", _count(profile.impressions)],
        ["Orders", _count(profile.orders)],
        ["Order rate (orders / impressions)", _ratio(profile.orders, profile.impressions)],
    ]
    total_customer_days = sum(customer_days for _, _, customer_days in profile.history_lengths)
    history_rows = [
        [_bin_label(first, last), _count(customer_days), _ratio(customer_days, total_customer_days)]
        for first, last, customer_days in profile.history_lengths
    ]
    total_actions = sum(profile.action_type_counts.values())
    action_rows = [
        [name, _count(count), _ratio(count, total_actions)] for name, count in profile.action_type_counts.items()
    ]
    position_rows = [
        [str(position), _count(impressions), _count(orders), _ratio(orders, impressions)]
        for position, impressions, orders in profile.label_rate_by_position
    ]
    return [
        "## The training data",
        "",
        "What the model's input looks like over all days of the split (training and evaluation together). "
        "A customer-day is one customer on one day, with the history of actions before it; "
        "an impression is one item shown to them in the carousel.",
        "",
        *_table(["Quantity", "Value"], totals),
        "",
        "### History length",
        "",
        "![History length](history_length.png)",
        "",
        "How many past actions each customer-day's history holds; with an empty history the model knows nothing "
        "about the customer.",
        "",
        *_table(["Actions in history", "Customer-days", "Share"], history_rows),
        "",
        "### Action types",
        "",
        "![Action types](action_types.png)",
        "",
        "Which kinds of action the histories are made of.",
        "",
        *_table(["Action type", "Actions", "Share"], action_rows),
        "",
        "### Order rate by position",
        "",
        "![Order rate by position](label_rate_by_position.png)",
        "",
        "The order rate of the items shown at each carousel position, with how many impressions each position had; "
        "a rate that falls with position shows how much placement alone matters.",
        "",
        *_table(["Position", "Impressions", "Orders", "Order rate"], position_rows),
    ]


def _parameters(summary: EvaluationSummary) -> list[str]:
    """The model's logged parameters, sorted by name."""
    if not summary.params:
        return ["## Parameters", "", "No parameters were logged."]
    rows = [[name, f"`{summary.params[name]}`"] for name in sorted(summary.params)]
    return ["## Parameters", "", *_table(["Parameter", "Value"], rows)]
