"""The baseline model: features worked out by hand, a time split without leaks, and `carousel train` end to end."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from carousel.actions import unify_actions
from carousel.baseline.features import FEATURES, add_item_popularity, history_features, item_popularity
from carousel.baseline.metrics import calibration, curves
from carousel.baseline.model import BaselineConfig, BaselineInputError, split_days, time_split, train_baseline
from carousel.baseline.report import PLOTS
from carousel.config import HistoryConfig
from carousel.examples import EXAMPLE_COLUMNS, explode_impressions
from carousel.gold import pack_training_examples, unpack_training_examples
from carousel.history import build_histories, customer_days
from carousel.quality import keep_valid
from carousel.synthetic import SyntheticConfig, generate_raw

EXAMPLE_SCHEMA = (
    "dt string, ranking_id string, customer_id int, position int, item_id int, is_order boolean, "
    "actions array<int>, action_types array<tinyint>"
)
ACTION_SCHEMA = "customer_id int, item_id int, action_type tinyint, occurred_at timestamp, action_day date"


def test_history_features_count_the_shown_item_by_type_and_find_its_newest_slot(spark):
    history = [5, 3, 5, 7, 0, 0]  # newest first, N = 6, two padding slots
    types = [1, 2, 3, 1, 0, 0]
    rows = [
        ("2025-06-30", "r", 1, 0, 5, True, history, types),  # item 5: a click (slot 1) and an order (slot 3)
        ("2025-06-30", "r", 1, 1, 7, False, history, types),  # item 7: a click at slot 4
        ("2025-06-30", "r", 1, 2, 3, False, history, types),  # item 3: an add-to-cart at slot 2
        ("2025-06-30", "r", 1, 3, 9, False, history, types),  # item 9: never, so slot N + 1 = 7
        ("2025-06-30", "s", 2, 0, 9, False, [0] * 6, [0] * 6),  # an empty history
    ]
    examples = spark.createDataFrame(rows, EXAMPLE_SCHEMA)
    assert examples.columns == list(EXAMPLE_COLUMNS)
    names = ["item_clicks", "item_add_to_carts", "item_orders", "item_last_slot"]
    names += ["history_clicks", "history_add_to_carts", "history_orders", "history_length", "position_feature"]
    featured = history_features().transform(examples).orderBy("customer_id", "position").select(*names).collect()
    assert [tuple(row) for row in featured] == [
        (1.0, 0.0, 1.0, 1.0, 2.0, 1.0, 1.0, 4.0, 0.0),
        (1.0, 0.0, 0.0, 4.0, 2.0, 1.0, 1.0, 4.0, 1.0),
        (0.0, 1.0, 0.0, 2.0, 2.0, 1.0, 1.0, 4.0, 2.0),
        (0.0, 0.0, 0.0, 7.0, 2.0, 1.0, 1.0, 4.0, 3.0),
        (0.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ]


def test_item_popularity_counts_only_the_days_before_the_impression_day(spark):
    day = dt.date(2025, 6, 30)
    at = dt.datetime(2025, 6, 1)

    def action(item: int, action_type: int, days_before: int) -> tuple:
        return (1, item, action_type, at, day - dt.timedelta(days=days_before))

    actions = spark.createDataFrame(
        [
            action(5, 1, 1),  # the day before: counts
            action(5, 3, 1),  # an order the day before: counts twice (action and order)
            action(5, 1, 3),  # 3 days before, the last day of a 3-day popularity window: counts
            action(5, 3, 4),  # 4 days before: outside
            action(5, 1, 0),  # the impression day itself: never
            action(6, 3, 0),  # item 6 only on the day itself
        ],
        ACTION_SCHEMA,
    )
    shown = spark.createDataFrame([("2025-06-30", 5), ("2025-06-30", 6), ("2025-06-30", 8)], "dt string, item_id int")
    popularity = item_popularity(actions, shown, popularity_days=3)
    assert sorted(tuple(row) for row in popularity.collect()) == [
        ("2025-06-30", 5, 3.0, 1.0),
        ("2025-06-30", 6, 0.0, 0.0),
        ("2025-06-30", 8, 0.0, 0.0),
    ]


def test_the_split_keeps_the_last_days_for_evaluation_and_refuses_too_few_days(spark):
    examples = spark.createDataFrame([(day,) for day in ("2025-06-29", "2025-06-27", "2025-06-28")], "dt string")
    train, evaluation, train_days, eval_days = time_split(examples, eval_days=1)
    assert (train_days, eval_days) == (["2025-06-27", "2025-06-28"], ["2025-06-29"])
    assert sorted(row.dt for row in train.collect()) == ["2025-06-27", "2025-06-28"]
    assert [row.dt for row in evaluation.collect()] == ["2025-06-29"]
    assert split_days(examples, eval_days=2) == (["2025-06-27"], ["2025-06-28", "2025-06-29"])
    with pytest.raises(BaselineInputError, match=r"needs at least 4 days.*hold 3: 2025-06-27, 2025-06-28, 2025-06-29"):
        split_days(examples, eval_days=3)


def test_curves_and_calibration_from_a_score_histogram_worked_by_hand():
    # (bucket, impressions, orders, summed score), highest scores first: 3 orders, 7 non-orders
    histogram = [(9000, 2, 2, 1.8), (5000, 4, 1, 2.0), (1000, 4, 0, 0.4)]
    roc, pr = curves(histogram)
    assert roc.x == [0.0, 0.0, 3 / 7, 1.0] and roc.y == [0.0, 2 / 3, 1.0, 1.0]
    assert pr.x == [2 / 3, 1.0, 1.0] and pr.y == [1.0, 3 / 6, 3 / 10]
    bins = calibration(histogram, bins=2)  # 5 impressions per bin: lowest scores first
    assert [(b.impressions, b.observed_rate) for b in bins] == [(8, 1 / 8), (2, 1.0)]
    assert bins[0].mean_predicted == pytest.approx(2.4 / 8) and bins[1].mean_predicted == pytest.approx(0.9)


@pytest.fixture(scope="module")
def gold(spark):
    """Packed gold and actions over 4 generated days, as the pipeline computes them (no dirty rows)."""
    # A strong favorite signal (shown favorites ordered 10x as often), so a small evaluation day shows it.
    config = SyntheticConfig(
        customers=600,
        window_days=4,
        history_days=30,
        actions_per_customer_year=3000,
        login_rate=0.5,
        dirty_rate=0.0,
        favorite_shown_rate=0.3,
        favorite_order_lift=10.0,
    )
    raw = generate_raw(spark, config)
    actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"]).cache()
    impressions = keep_valid(raw["impressions"], "impressions")
    histories = build_histories(actions, customer_days(impressions), HistoryConfig(history_length=20, lookback_days=30))
    packed = pack_training_examples(explode_impressions(impressions), histories).cache()
    return packed, actions


@pytest.mark.slow
def test_no_evaluation_day_reaches_the_training(spark, gold):
    packed, actions = gold
    config = BaselineConfig(classifier="logistic", max_iter=20)
    trained = train_baseline(packed, actions, config)
    last_day = trained.summary.eval_days[-1]
    assert trained.summary.train_days == ["2025-06-27", "2025-06-28", "2025-06-29"] and last_day == "2025-06-30"

    # Flip every label of the evaluation day and pile orders of every shown item onto it: a model
    # that never saw that day fits to the same coefficients.
    flipped = packed.withColumn(
        "labels",
        F.when(F.col("dt") == last_day, F.transform("labels", lambda label: ~label)).otherwise(F.col("labels")),
    )
    shown_that_day = packed.where(F.col("dt") == last_day).select(F.explode("item_ids").alias("item_id"))
    piled = shown_that_day.select(
        F.lit(1).alias("customer_id"),
        "item_id",
        F.lit(3).cast("tinyint").alias("action_type"),
        F.lit(dt.datetime(2025, 6, 30, 12)).alias("occurred_at"),
        F.lit(dt.date(2025, 6, 30)).alias("action_day"),
    )
    retrained = train_baseline(flipped, actions.unionByName(piled), config)
    assert list(retrained.model.stages[-1].coefficients) == list(trained.model.stages[-1].coefficients)
    assert retrained.model.stages[-1].intercept == trained.model.stages[-1].intercept
    assert retrained.summary.train_impressions == trained.summary.train_impressions

    # Logistic importances: |coefficient| x the feature's std over the training rows, as shares.
    featured = history_features().transform(add_item_popularity(unpack_training_examples(packed), actions, 28))
    stds = (
        featured.where(F.col("dt") < last_day)
        .agg(*[F.stddev("position_feature" if name == "position" else name).alias(name) for name in FEATURES])
        .first()
    )
    raw = {name: abs(c) * stds[name] for name, c in zip(FEATURES, trained.model.stages[-1].coefficients, strict=True)}
    expected = {name: value / sum(raw.values()) for name, value in raw.items()}
    assert dict(trained.summary.feature_importances) == pytest.approx(expected, rel=1e-6)
    assert [name for name, _ in trained.summary.feature_importances] == sorted(expected, key=lambda n: -expected[n])


def test_the_history_carries_signal_the_baseline_finds(gold):
    packed, actions = gold
    trained = train_baseline(packed, actions, BaselineConfig(classifier="gbt", max_iter=10, max_depth=3))
    summary = trained.summary
    # Shown favorites are ordered 10x as often and fill 30% of the history: the model must beat chance.
    assert summary.metrics["roc_auc"] > 0.6 and summary.metrics["pr_auc"] > summary.base_rate
    assert summary.single_feature_roc_auc["item_clicks"] > 0.6
    assert set(dict(summary.feature_importances)) == set(FEATURES)
    assert sum(share for _, share in summary.feature_importances) == pytest.approx(1.0)
    profile = summary.profile
    assert profile.customer_days == packed.count()
    assert profile.impressions == summary.train_impressions + summary.eval_impressions
    assert sum(count for _, _, count in profile.history_lengths) == profile.customer_days
    slots = packed.select(F.explode("action_types").alias("type")).groupBy("type").count().collect()
    counted = {row.type: row["count"] for row in slots}
    assert profile.action_type_counts == {"click": counted[1], "add_to_cart": counted[2], "order": counted[3]}
    assert summary.classifier == "gradient-boosted tree classifier (Spark ML GBTClassifier)"
    assert sum(group.impressions for group in summary.calibration) == summary.eval_impressions


def test_too_few_days_or_no_orders_are_named(spark, gold):
    packed, actions = gold
    one_day = packed.where(F.col("dt") == "2025-06-30")
    with pytest.raises(BaselineInputError, match="needs at least 2 days"):
        train_baseline(one_day, actions)
    no_orders = packed.withColumn("labels", F.transform("labels", lambda label: F.lit(False)))
    with pytest.raises(BaselineInputError, match="0 orders: a classifier needs both"):
        train_baseline(no_orders, actions, BaselineConfig(classifier="logistic"))
    quiet_last_day = packed.withColumn(
        "labels",
        F.when(F.col("dt") == "2025-06-30", F.transform("labels", lambda label: F.lit(False))).otherwise(
            F.col("labels")
        ),
    )
    with pytest.raises(BaselineInputError, match=r"evaluation days 2025-06-30 hold \d+ impressions with 0 orders"):
        train_baseline(quiet_last_day, actions, BaselineConfig(classifier="logistic", max_iter=5))
    with pytest.raises(ValueError, match="classifier must be one of gbt, logistic, got 'forest'"):
        BaselineConfig(classifier="forest")


@pytest.mark.slow
def test_carousel_train_registers_a_new_model_version_and_writes_the_report(spark, gold, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from carousel.cli import main

    packed, actions = gold
    packed.write.format("delta").save(str(tmp_path / "training_examples_gold"))
    actions.write.format("delta").save(str(tmp_path / "actions_silver"))
    mlflow_dir, report_dir = tmp_path / "mlflow", tmp_path / "report"
    args = ["train", "--examples", str(tmp_path / "training_examples_gold")]
    args += ["--actions", str(tmp_path / "actions_silver"), "--mlflow-dir", str(mlflow_dir)]
    args += ["--report-dir", str(report_dir), "--max-iter", "5"]
    assert main(args) == 0
    assert main(args) == 0  # a second run registers version 2

    database = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=database, registry_uri=database)
    versions = sorted(int(v.version) for v in client.search_model_versions("name='carousel_baseline'"))
    assert versions == [1, 2]
    latest = client.get_model_version("carousel_baseline", "2")
    run = client.get_run(latest.run_id)
    assert {"roc_auc", "pr_auc", "log_loss", "base_rate"} <= set(run.data.metrics)
    assert run.data.params["evaluated_days"] == "2025-06-30" and run.data.params["classifier"] == "logistic"
    assert run.data.params["max_iter"] == "5"
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id, "report")}
    assert {f"report/{name}" for name in (*PLOTS, "report.md")} <= artifacts

    report = (report_dir / "report.md").read_text()
    assert "carousel_baseline" in report and "models:/carousel_baseline/2" in report
    for plot in PLOTS:
        assert (report_dir / plot).read_bytes().startswith(b"\x89PNG")

    # The registered model scores rows of the training_examples view that carry the popularity columns.
    mlflow.set_tracking_uri(database)
    mlflow.set_registry_uri(database)
    model = mlflow.spark.load_model("models:/carousel_baseline/2", dfs_tmpdir=str(tmp_path / "load"))
    rows = add_item_popularity(unpack_training_examples(packed), actions, 28).limit(20)
    scored = model.transform(rows).select("probability", "prediction").collect()
    assert len(scored) == 20 and all(0 <= row.probability[1] <= 1 for row in scored)
