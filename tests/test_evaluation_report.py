"""The evaluation report: plots written as PNGs, Markdown numbers worked out by hand. No Spark."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from carousel.baseline.report import PLOTS, write_report  # noqa: E402
from carousel.baseline.summary import CalibrationBin, Curve, DataProfile, EvaluationSummary  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def small_summary() -> EvaluationSummary:
    """A summary small enough that every number in the report can be worked out by hand."""
    return EvaluationSummary(
        classifier="GBTClassifier",
        train_days=["2024-03-01", "2024-03-02", "2024-03-03"],
        eval_days=["2024-03-04", "2024-03-05"],
        train_impressions=12345,
        eval_impressions=5000,
        metrics={"roc_auc": 0.73124, "pr_auc": 0.1234, "log_loss": 0.15},
        base_rate=0.04,
        single_feature_roc_auc={"recent_clicks": 0.65, "item_popularity": 0.6},
        # Not handed over in order, so the report's own ranking is what the test sees.
        feature_importances=[("item_popularity", 0.3), ("position", 0.2), ("recent_clicks", 0.5)],
        roc=Curve(x=[0.0, 0.2, 0.5, 1.0], y=[0.0, 0.5, 0.8, 1.0]),
        pr=Curve(x=[0.0, 0.25, 0.6, 1.0], y=[1.0, 0.3, 0.1, 0.04]),
        calibration=[
            CalibrationBin(mean_predicted=0.01, observed_rate=0.012, impressions=1000),
            CalibrationBin(mean_predicted=0.04, observed_rate=0.035, impressions=800),
            CalibrationBin(mean_predicted=0.09, observed_rate=0.1, impressions=200),
        ],
        profile=DataProfile(
            customer_days=2000,
            impressions=150,
            orders=7,
            history_lengths=[(0, 0, 200), (1, 50, 1500), (51, 100, 300)],
            action_type_counts={"click": 800, "add_to_cart": 150, "order": 50},
            label_rate_by_position=[(1, 100, 5), (2, 50, 2), (3, 0, 0)],
        ),
        params={"maxIter": "20", "maxDepth": "5"},
        model={"name": "carousel_baseline", "version": "3", "uri": "models:/carousel_baseline/3"},
        feature_descriptions={"recent_clicks": "Clicks in the last 7 days", "position": "Slot in the carousel"},
    )


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of `small_summary`, written once for all tests (drawing is the slow part)."""
    out = tmp_path_factory.mktemp("report") / "nested" / "dir"
    assert write_report(small_summary(), out) == out / "report.md"
    return out


@pytest.fixture(scope="module")
def report(out_dir: Path) -> str:
    return (out_dir / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", PLOTS)
def test_every_plot_is_a_600_by_400_png(out_dir: Path, name: str) -> None:
    data = (out_dir / name).read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    # The IHDR chunk: width and height as big-endian 4-byte integers; 6 x 4 inches at 100 dpi.
    assert int.from_bytes(data[16:20], "big") == 600
    assert int.from_bytes(data[20:24], "big") == 400
    assert len(data) > 10_000  # axes, labels and data drawn, not a blank canvas


def test_report_embeds_every_plot_with_a_relative_link(report: str) -> None:
    for name in PLOTS:
        assert f"]({name})" in report


def test_sections_come_in_reading_order(report: str) -> None:
    headings = [line for line in report.splitlines() if line.startswith("#")]
    assert headings == [
        "# Baseline model: evaluation report",
        "## Headline numbers",
        "## Split",
        "## How the model ranks",
        "## Calibration",
        "## What drives the predictions",
        "## The training data",
        "### History length",
        "### Action types",
        "### Order rate by position",
        "## Parameters",
    ]


def test_introduction_names_the_label_classifier_days_and_model(report: str) -> None:
    introduction = report.split("## Headline numbers")[0]
    assert "`is_order`" in introduction
    assert "GBTClassifier" in introduction
    assert "trained on 2024-03-01 to 2024-03-03 (3 days)" in introduction
    assert "evaluated on 2024-03-04, 2024-03-05" in introduction
    assert "`carousel_baseline` version 3" in introduction
    assert "`models:/carousel_baseline/3`" in introduction


def test_headline_table_holds_the_metrics_to_four_decimals(report: str) -> None:
    lines = report.splitlines()
    assert any(line.startswith("| ROC AUC | 0.7312 | ") for line in lines)
    assert any(line.startswith("| PR AUC | 0.1234 | ") for line in lines)
    assert any(line.startswith("| Log loss | 0.1500 | ") for line in lines)
    assert any(line.startswith("| Base rate | 4.00% | ") for line in lines)


def test_log_loss_is_compared_with_the_constant_base_rate_predictor(report: str) -> None:
    # -(0.04 * ln 0.04 + 0.96 * ln 0.96) = -(0.04 * -3.218876 + 0.96 * -0.040822) = 0.128755 + 0.039189 = 0.167944
    assert "a model that always predicts the base rate scores 0.1679." in report


def test_split_shows_days_and_impressions(report: str) -> None:
    assert "| Training | 2024-03-01 to 2024-03-03 (3 days) | 12,345 |" in report
    assert "| Evaluation | 2024-03-04, 2024-03-05 | 5,000 |" in report
    assert "none is used for training" in report


def test_calibration_table_has_one_row_per_bin(report: str) -> None:
    assert "| 1 | 1.00% | 1.20% | 1,000 |" in report
    assert "| 2 | 4.00% | 3.50% | 800 |" in report
    assert "| 3 | 9.00% | 10.00% | 200 |" in report


def test_features_are_listed_by_descending_importance(report: str) -> None:
    rows = [line for line in report.splitlines() if line.startswith("| `")]
    assert rows == [
        "| `recent_clicks` | 50.00% | 0.6500 | Clicks in the last 7 days |",
        "| `item_popularity` | 30.00% | 0.6000 |  |",
        "| `position` | 20.00% | n/a | Slot in the carousel |",
    ]


def test_training_data_tables(report: str) -> None:
    assert "| Customer-days | 2,000 |" in report
    assert "| Order rate (orders / impressions) | 4.67% |" in report  # 7 / 150
    assert "| 0 | 200 | 10.00% |" in report
    assert "| 1-50 | 1,500 | 75.00% |" in report
    assert "| 51-100 | 300 | 15.00% |" in report
    assert "| click | 800 | 80.00% |" in report
    assert "| add_to_cart | 150 | 15.00% |" in report
    assert "| order | 50 | 5.00% |" in report


def test_order_rate_by_position_shows_na_without_impressions(report: str) -> None:
    assert "| 1 | 100 | 5 | 5.00% |" in report
    assert "| 2 | 50 | 2 | 4.00% |" in report
    assert "| 3 | 0 | 0 | n/a |" in report


def test_parameters_are_sorted_by_name(report: str) -> None:
    parameters = report.split("## Parameters")[1]
    assert parameters.index("| maxDepth | `5` |") < parameters.index("| maxIter | `20` |")


@pytest.mark.parametrize("base_rate", [0.0, 1.0])
def test_degenerate_summary_does_not_crash(tmp_path: Path, base_rate: float) -> None:
    summary = dataclasses.replace(
        small_summary(),
        base_rate=base_rate,
        metrics={},
        single_feature_roc_auc={},
        feature_importances=[],
        roc=Curve(x=[], y=[]),
        pr=Curve(x=[], y=[]),
        calibration=[CalibrationBin(mean_predicted=base_rate, observed_rate=base_rate, impressions=10)],
        profile=DataProfile(
            customer_days=0,
            impressions=0,
            orders=0,
            history_lengths=[],
            action_type_counts={},
            label_rate_by_position=[(1, 0, 0)],
        ),
        params={},
        model={},
        feature_descriptions={},
    )
    report = write_report(summary, tmp_path).read_text(encoding="utf-8")
    assert "a model that always predicts the base rate scores 0.0000." in report
    assert "| ROC AUC | n/a | " in report
    assert "| Order rate (orders / impressions) | n/a |" in report
    assert "No parameters were logged." in report
    for name in PLOTS:
        assert (tmp_path / name).read_bytes().startswith(PNG_SIGNATURE)


def test_module_imports_without_spark_or_matplotlib() -> None:
    source = Path(__file__).resolve().parents[1] / "src"
    check = (
        "import sys, carousel.baseline.report; "
        "assert 'pyspark' not in sys.modules and 'matplotlib' not in sys.modules, sorted(sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(source)}
    subprocess.run([sys.executable, "-c", check], env=env, check=True)
