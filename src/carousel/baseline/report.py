"""The baseline model's evaluation report: Markdown with PNG plots, for a reader who did not build the model.

`carousel.baseline.model` computes everything in Spark and hands over small, plain-Python results
(bounded by bins, positions and features, never by rows); this module only draws and writes.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path

from carousel.baseline.plots import PLOTS, draw_plots
from carousel.baseline.summary import (
    MAIN_METRICS,
    EvaluationSummary,
    bin_label,
    format_count,
    format_metric,
    format_percent,
    format_ratio,
)

__all__ = ["PLOTS", "write_report"]


def write_report(summary: EvaluationSummary, out_dir: str | Path) -> Path:
    """Write `report.md` and the PNG plots (`PLOTS`) into `out_dir` (created if missing); return the report's path."""
    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    draw_plots(summary, out_path)
    report_path = out_path / "report.md"
    report_path.write_text(_report_markdown(summary), encoding="utf-8")
    return report_path


def _constant_predictor_log_loss(base_rate: float) -> float:
    """The log loss of always predicting `base_rate`, on data whose order rate is `base_rate`."""
    # With only one class the constant predictor is exactly right; log(0) would otherwise be taken.
    if base_rate <= 0.0 or base_rate >= 1.0:
        return 0.0
    return -(base_rate * math.log(base_rate) + (1.0 - base_rate) * math.log(1.0 - base_rate))


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
            format_metric(summary.metrics, "roc_auc"),
            "The chance that a random ordered impression scores above a random non-ordered one; "
            "0.5 is a coin toss, 1 is perfect.",
        ],
        [
            "PR AUC",
            format_metric(summary.metrics, "pr_auc"),
            "Average precision over all recall levels; compare with the base rate "
            f"({format_percent(summary.base_rate)}), which is what a random score gets.",
        ],
        [
            "Log loss",
            format_metric(summary.metrics, "log_loss"),
            "How far the predicted probabilities are from what happened; lower is better; "
            f"a model that always predicts the base rate scores {constant_log_loss:.4f}.",
        ],
        [
            "Base rate",
            format_percent(summary.base_rate),
            "The order rate on the evaluation days: the share of shown items that were ordered.",
        ],
    ]
    rows += [
        [name, format_metric(summary.metrics, name), ""] for name in sorted(summary.metrics) if name not in MAIN_METRICS
    ]
    return ["## Headline numbers", "", *_table(["Measure", "Value", "What it means"], rows)]


def _split(summary: EvaluationSummary) -> list[str]:
    """Training and evaluation days, and whether the split is clean."""
    rows = [
        ["Training", _days_text(summary.train_days), format_count(summary.train_impressions)],
        ["Evaluation", _days_text(summary.eval_days), format_count(summary.eval_impressions)],
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
        f"base rate line ({format_percent(summary.base_rate)}).",
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
        [
            str(number),
            format_percent(bin_.mean_predicted),
            format_percent(bin_.observed_rate),
            format_count(bin_.impressions),
        ]
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
        row = [f"`{name}`", format_percent(importance)]
        if summary.single_feature_roc_auc:
            row.append(format_metric(summary.single_feature_roc_auc, name))
        if summary.feature_descriptions:
            row.append(summary.feature_descriptions.get(name, ""))
        rows.append(row)
    return [*lines, *_table(header, rows)]


def _training_data(summary: EvaluationSummary) -> list[str]:
    """Size of the data and the three profile plots with their tables."""
    profile = summary.profile
    totals = [
        ["Customer-days", format_count(profile.customer_days)],
        ["Impressions", format_count(profile.impressions)],
        ["Orders", format_count(profile.orders)],
        ["Order rate (orders / impressions)", format_ratio(profile.orders, profile.impressions)],
    ]
    total_customer_days = sum(customer_days for _, _, customer_days in profile.history_lengths)
    history_rows = [
        [bin_label(first, last), format_count(customer_days), format_ratio(customer_days, total_customer_days)]
        for first, last, customer_days in profile.history_lengths
    ]
    total_actions = sum(profile.action_type_counts.values())
    action_rows = [
        [name, format_count(count), format_ratio(count, total_actions)]
        for name, count in profile.action_type_counts.items()
    ]
    position_rows = [
        [str(position), format_count(impressions), format_count(orders), format_ratio(orders, impressions)]
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
