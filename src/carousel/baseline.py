"""The baseline model: a Spark ML pipeline that predicts `is_order` of an impression from the gold data.

It is the number to beat and the proof that the training input carries signal. Per impression
(one shown item of `training_examples_gold`), the features are:
- the shown item in the customer's N-action history: how often, by action type, and how recently
  (`item_last_slot`: the slot of the newest action on it, 1 = the newest action; N + 1 if absent);
- the customer's history: actions by type among the N, and how many of the N are real;
- the item's popularity before the day: actions and orders of all customers on it in the
  `popularity_days` days before the impression day (never the day itself);
- the position in the carousel.

The history features are computed inside the fitted `PipelineModel` (a `SQLTransformer` over
`actions`, `action_types` and `item_id`), so the registered model scores rows of the
`training_examples` view that carry the two popularity columns (`add_item_popularity`).
The split is by time: the last `eval_days` days are evaluated on, the days before them trained
on; no evaluation day is ever seen in training.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator, MulticlassClassificationEvaluator
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from carousel.contract import ADD_TO_CART, CLICK, ORDER
from carousel.errors import CarouselError
from carousel.evaluation_report import CalibrationBin, Curve, DataProfile, EvaluationSummary
from carousel.gold import unpack_training_examples

log = logging.getLogger("carousel")

LABEL = "label"
SCORE = "order_probability"
POPULARITY_FEATURES = ("item_actions_before", "item_orders_before")
FEATURE_DESCRIPTIONS = {
    "item_clicks": "clicks on the shown item among the customer's last N actions",
    "item_add_to_carts": "add-to-carts of the shown item among the customer's last N actions",
    "item_orders": "orders of the shown item among the customer's last N actions",
    "item_last_slot": "how many actions ago the customer last touched the shown item (1 = the newest; N + 1 = never)",
    "history_clicks": "clicks among the customer's last N actions",
    "history_add_to_carts": "add-to-carts among the customer's last N actions",
    "history_orders": "orders among the customer's last N actions",
    "history_length": "real (non-padding) actions in the history, at most N",
    "item_actions_before": "actions of all customers on the shown item in the popularity days before the day",
    "item_orders_before": "orders of all customers of the shown item in the popularity days before the day",
    "position": "position of the item in the carousel (0 = first)",
}
FEATURES = tuple(FEATURE_DESCRIPTIONS)
CLASSIFIERS = ("gbt", "logistic")
CLASSIFIER_NAMES = {
    "gbt": "gradient-boosted tree classifier (Spark ML GBTClassifier)",
    "logistic": "logistic regression (Spark ML LogisticRegression)",
}

# One pass over the history per impression finds the slots where the shown item occurs; the
# per-type counts and the recency then read that (short) list, not the N actions again.
HISTORY_FEATURES_SQL = f"""
SELECT *,
  CAST(size(filter(shown_item_hits, h -> h.type = {CLICK})) AS DOUBLE) AS item_clicks,
  CAST(size(filter(shown_item_hits, h -> h.type = {ADD_TO_CART})) AS DOUBLE) AS item_add_to_carts,
  CAST(size(filter(shown_item_hits, h -> h.type = {ORDER})) AS DOUBLE) AS item_orders,
  CAST(IF(size(shown_item_hits) > 0, shown_item_hits[0].slot, size(actions) + 1) AS DOUBLE) AS item_last_slot,
  CAST(size(filter(action_types, t -> t = {CLICK})) AS DOUBLE) AS history_clicks,
  CAST(size(filter(action_types, t -> t = {ADD_TO_CART})) AS DOUBLE) AS history_add_to_carts,
  CAST(size(filter(action_types, t -> t = {ORDER})) AS DOUBLE) AS history_orders,
  CAST(size(filter(action_types, t -> t <> 0)) AS DOUBLE) AS history_length,
  CAST(position AS DOUBLE) AS position_feature
FROM (
  SELECT *,
    filter(
      transform(actions, (a, i) -> IF(a = item_id, named_struct('slot', i + 1, 'type', action_types[i]), NULL)),
      h -> h IS NOT NULL
    ) AS shown_item_hits
  FROM __THIS__
)
"""


class BaselineInputError(CarouselError, ValueError):
    """The gold data cannot be split or trained on as asked (too few days, no orders, ...)."""


@dataclass(frozen=True)
class BaselineConfig:
    """How the baseline is trained and evaluated."""

    eval_days: int = 1
    classifier: str = "logistic"
    max_iter: int | None = None  # logistic: 100 solver iterations; gbt: 30 boosting rounds
    max_depth: int = 5
    popularity_days: int = 28
    sample_fraction: float = 1.0
    seed: int = 7

    def __post_init__(self) -> None:
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {self.classifier!r}")
        if self.eval_days < 1:
            raise ValueError(f"eval_days must be at least 1, got {self.eval_days}")
        if self.popularity_days < 1:
            raise ValueError(f"popularity_days must be at least 1, got {self.popularity_days}")
        if self.max_iter is not None and self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}")
        if not 0 < self.sample_fraction <= 1:
            raise ValueError(f"sample_fraction must be in (0, 1], got {self.sample_fraction}")

    @property
    def iterations(self) -> int:
        """max_iter, or the classifier's default: 100 solver iterations (logistic), 30 rounds (gbt)."""
        if self.max_iter is not None:
            return self.max_iter
        return 100 if self.classifier == "logistic" else 30

    def params(self) -> dict[str, str]:
        """The configuration as MLflow parameters."""
        return {**{name: str(value) for name, value in asdict(self).items()}, "max_iter": str(self.iterations)}


@dataclass(frozen=True)
class TrainedBaseline:
    """The fitted model and everything its evaluation found."""

    model: PipelineModel
    summary: EvaluationSummary
    model_input_sample: DataFrame  # a few evaluation rows of the model's input, for the MLflow signature


def item_popularity(actions: DataFrame, shown: DataFrame, popularity_days: int) -> DataFrame:
    """One row per distinct (dt, item_id) of `shown`: the item's actions and orders in the days before dt.

    An action of day A counts for day D when D - popularity_days <= A < D: the day itself never
    counts, so the feature holds nothing the model could not know the morning of D.

    Args:
        actions: unified actions (`actions_silver`): `item_id`, `action_type`, `action_day`.
        shown: impressions with `dt` ('yyyy-MM-dd') and `item_id`.
        popularity_days: how many days before D count.
    """
    daily = actions.groupBy("item_id", "action_day").agg(
        F.count(F.lit(1)).alias("day_actions"),
        F.count(F.when(F.col("action_type") == ORDER, 1)).alias("day_orders"),
    )
    keys = shown.select("dt", "item_id").distinct().withColumn("impression_day", F.to_date("dt"))
    in_range = (
        (keys["item_id"] == daily["item_id"])
        & (daily["action_day"] >= F.date_sub(keys["impression_day"], popularity_days))
        & (daily["action_day"] < keys["impression_day"])
    )
    return (
        keys.join(daily, in_range, "left")
        .groupBy(keys["dt"], keys["item_id"])
        .agg(
            F.coalesce(F.sum("day_actions"), F.lit(0)).cast("double").alias("item_actions_before"),
            F.coalesce(F.sum("day_orders"), F.lit(0)).cast("double").alias("item_orders_before"),
        )
    )


def add_item_popularity(examples: DataFrame, actions: DataFrame, popularity_days: int) -> DataFrame:
    """The examples (one row per impression), each with its item's popularity before its day."""
    return examples.join(item_popularity(actions, examples, popularity_days), ["dt", "item_id"], "left")


def with_label(examples: DataFrame) -> DataFrame:
    """The examples with `label` = is_order as 0.0 / 1.0 (what Spark ML's classifiers read)."""
    return examples.withColumn(LABEL, F.col("is_order").cast("double"))


def history_features() -> SQLTransformer:
    """The stage that adds the history features (FEATURES but popularity and position) to each impression."""
    return SQLTransformer(statement=HISTORY_FEATURES_SQL)


def _assembled_columns() -> list[str]:
    return ["position_feature" if name == "position" else name for name in FEATURES]


def baseline_pipeline(config: BaselineConfig) -> Pipeline:
    """The unfitted Spark ML pipeline: history features, VectorAssembler, then the classifier."""
    assembler = VectorAssembler(inputCols=_assembled_columns(), outputCol="features")
    if config.classifier == "gbt":
        classifier = GBTClassifier(
            labelCol=LABEL,
            featuresCol="features",
            maxIter=config.iterations,
            maxDepth=config.max_depth,
            seed=config.seed,
        )
    else:
        classifier = LogisticRegression(labelCol=LABEL, featuresCol="features", maxIter=config.iterations)
    return Pipeline(stages=[history_features(), assembler, classifier])


def fit_baseline(train: DataFrame, config: BaselineConfig) -> tuple[PipelineModel, list[float]]:
    """Fit `baseline_pipeline(config)` on the training rows: the PipelineModel, and each feature's std in training.

    The model is the one `Pipeline.fit` returns, found faster: the feature stages are transformers
    (nothing to fit), so they run once and only the feature vectors and labels are cached for the
    classifier's many passes, not the N-action arrays of every impression.
    """
    from pyspark.ml.stat import Summarizer

    *feature_stages, classifier = baseline_pipeline(config).getStages()
    features = PipelineModel(feature_stages).transform(train).select("features", LABEL).cache()
    try:
        fitted = classifier.fit(features)
        stds = features.select(Summarizer.std(F.col("features")).alias("std")).first()["std"]
    finally:
        features.unpersist()
    return PipelineModel([*feature_stages, fitted]), [float(value) for value in stds]


def split_days(examples: DataFrame, eval_days: int) -> tuple[list[str], list[str]]:
    """The training days and the evaluation days (the last `eval_days`), both in order.

    Raises:
        BaselineInputError: fewer than eval_days + 1 days.
    """
    # One row per day: a few dozen at most, whatever the volume.
    days = sorted(row.dt for row in examples.select("dt").distinct().collect())
    if len(days) <= eval_days:
        raise BaselineInputError(
            f"a time-based split needs at least {eval_days + 1} days ({eval_days} to evaluate on and one "
            f"before them to train on), but the training examples hold {len(days)}: {', '.join(days) or 'none'}"
        )
    return days[:-eval_days], days[-eval_days:]


def time_split(
    examples: DataFrame, eval_days: int, days_of: DataFrame | None = None
) -> tuple[DataFrame, DataFrame, list[str], list[str]]:
    """The training rows (days before the evaluation days), the evaluation rows, and both lists of days.

    The days are read from `days_of` when given: any frame with the examples' `dt` values, such as
    the packed table (a row per customer-day), which is cheaper to scan than exploded, joined rows.
    """
    train_days, evaluation_days = split_days(examples if days_of is None else days_of, eval_days)
    first_eval_day = evaluation_days[0]
    return (
        examples.where(F.col("dt") < F.lit(first_eval_day)),
        examples.where(F.col("dt") >= F.lit(first_eval_day)),
        train_days,
        evaluation_days,
    )


def sample_customer_days(packed: DataFrame, fraction: float, seed: int) -> DataFrame:
    """The customer-days whose (dt, customer_id, seed) hash falls under `fraction`: the same rows on every run."""
    if fraction >= 1:
        return packed
    bucket = F.pmod(F.xxhash64("dt", "customer_id", F.lit(seed)), F.lit(1_000_000))
    return packed.where(bucket < F.lit(int(fraction * 1_000_000)))


def profile_training_data(packed: DataFrame, history_length: int) -> DataProfile:
    """What the training input looks like: history lengths, action-type mix and the order rate by position."""
    real = F.size(F.filter("action_types", lambda t: t != 0))
    width = max(1, history_length // 20)
    first = F.when(real == 0, 0).otherwise(F.floor((real - 1) / width) * width + 1)
    lengths = packed.select(first.cast("int").alias("first")).groupBy("first").count().collect()
    history_lengths = sorted(
        (row["first"], 0 if row["first"] == 0 else min(row["first"] + width - 1, history_length), row["count"])
        for row in lengths
    )
    types = packed.agg(
        *[
            F.sum(F.size(F.filter("action_types", _is_action_type(code)))).alias(name)
            for name, code in (("click", CLICK), ("add_to_cart", ADD_TO_CART), ("order", ORDER))
        ],
        F.count(F.lit(1)).alias("customer_days"),
    ).first()
    shown = packed.select(F.explode(F.arrays_zip("positions", "labels")).alias("shown")).select(
        F.col("shown.positions").alias("position"), F.col("shown.labels").alias("is_order")
    )
    by_position = (
        shown.groupBy("position")
        .agg(F.count(F.lit(1)).alias("impressions"), F.count(F.when(F.col("is_order"), 1)).alias("orders"))
        .collect()
    )
    label_rate_by_position = sorted((row.position, row.impressions, row.orders) for row in by_position)
    return DataProfile(
        customer_days=int(types["customer_days"]),
        impressions=sum(row[1] for row in label_rate_by_position),
        orders=sum(row[2] for row in label_rate_by_position),
        history_lengths=history_lengths,
        action_type_counts={name: int(types[name] or 0) for name in ("click", "add_to_cart", "order")},
        label_rate_by_position=label_rate_by_position,
    )


def _is_action_type(code: int):
    # One parameter: `F.filter` passes the element index to a lambda that takes two.
    return lambda action_type: action_type == code


def score_histogram(predictions: DataFrame, buckets: int = 10_000) -> list[tuple[int, int, int, float]]:
    """(bucket, impressions, orders, summed score) per score bucket of width 1/buckets, highest bucket first.

    ROC, precision-recall and calibration are drawn from this: at most buckets + 1 rows, whatever
    the number of predictions.
    """
    bucket = F.least(F.floor(F.col(SCORE) * buckets), F.lit(buckets)).cast("int").alias("bucket")
    rows = (
        predictions.groupBy(bucket)
        .agg(F.count(F.lit(1)).alias("n"), F.sum(LABEL).alias("orders"), F.sum(SCORE).alias("score_sum"))
        .collect()
    )
    return sorted(((row.bucket, row.n, int(row.orders), float(row.score_sum)) for row in rows), reverse=True)


def curves(histogram: list[tuple[int, int, int, float]], max_points: int = 200) -> tuple[Curve, Curve]:
    """The ROC curve (false vs true positive rate) and the precision-recall curve, thresholds from high to low."""
    positives = sum(row[2] for row in histogram)
    negatives = sum(row[1] - row[2] for row in histogram)
    fpr, tpr, recall, precision = [0.0], [0.0], [], []
    true_positives = false_positives = 0
    for _, count, orders, _ in histogram:
        true_positives += orders
        false_positives += count - orders
        fpr.append(false_positives / negatives if negatives else 0.0)
        tpr.append(true_positives / positives if positives else 0.0)
        recall.append(true_positives / positives if positives else 0.0)
        precision.append(true_positives / (true_positives + false_positives))
    step = max(1, math.ceil(len(fpr) / max_points))
    keep = sorted(set(range(0, len(fpr), step)) | {len(fpr) - 1})
    keep_pr = sorted(set(range(0, len(recall), step)) | ({len(recall) - 1} if recall else set()))
    return (
        Curve([fpr[i] for i in keep], [tpr[i] for i in keep]),
        Curve([recall[i] for i in keep_pr], [precision[i] for i in keep_pr]),
    )


def calibration(histogram: list[tuple[int, int, int, float]], bins: int = 10) -> list[CalibrationBin]:
    """About `bins` groups of equally many impressions, lowest scores first: mean prediction vs order rate."""
    total = sum(row[1] for row in histogram)
    groups: list[CalibrationBin] = []
    count = orders = 0
    score_sum = 0.0
    for _, n, bucket_orders, bucket_score in reversed(histogram):  # lowest scores first
        count, orders, score_sum = count + n, orders + bucket_orders, score_sum + bucket_score
        if count >= total / bins:
            groups.append(CalibrationBin(score_sum / count, orders / count, count))
            count = orders = 0
            score_sum = 0.0
    if count:
        groups.append(CalibrationBin(score_sum / count, orders / count, count))
    return groups


def feature_importances(model: PipelineModel, feature_stds: list[float]) -> list[tuple[str, float]]:
    """(feature, share) by descending share: GBT's importances, or |coefficient| x feature std (logistic)."""
    classifier = model.stages[-1]
    if hasattr(classifier, "featureImportances"):
        raw = list(classifier.featureImportances.toArray())
    else:
        raw = [abs(c) * std for c, std in zip(classifier.coefficients, feature_stds, strict=True)]
    total = sum(raw) or 1.0
    return sorted(((name, value / total) for name, value in zip(FEATURES, raw, strict=True)), key=lambda p: -p[1])


def single_feature_roc_auc(predictions: DataFrame) -> dict[str, float]:
    """Per feature, the ROC AUC of the feature alone as the score, in its better direction (at least 0.5)."""
    evaluator = BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderROC")
    aucs = {}
    for name, column in zip(FEATURES, _assembled_columns(), strict=True):
        auc = evaluator.setRawPredictionCol(column).evaluate(predictions)
        aucs[name] = max(auc, 1 - auc)
    return aucs


def train_baseline(packed: DataFrame, actions: DataFrame, config: BaselineConfig = BaselineConfig()) -> TrainedBaseline:
    """Fit the baseline on the earlier days of `training_examples_gold` and evaluate it on the last ones.

    Args:
        packed: `training_examples_gold`: one row per customer-day (`carousel.gold`).
        actions: `actions_silver` (`carousel.actions.unify_actions`), for the items' popularity.
        config: split, classifier and sampling.

    Raises:
        BaselineInputError: too few days, or no order (or only orders) among the training or the
            evaluation impressions.
    """
    started = time.perf_counter()
    packed = sample_customer_days(packed, config.sample_fraction, config.seed)
    history_length = _history_length(packed)
    examples = with_label(add_item_popularity(unpack_training_examples(packed), actions, config.popularity_days))
    train, evaluation, train_days, evaluation_days = time_split(examples, config.eval_days, days_of=packed)
    train_counts = train.agg(F.count(F.lit(1)).alias("n"), F.sum(LABEL).alias("orders")).first()
    if not train_counts.n or not train_counts.orders or train_counts.orders == train_counts.n:
        raise BaselineInputError(
            f"the training days {train_days[0]}..{train_days[-1]} hold {train_counts.n} impressions with "
            f"{int(train_counts.orders or 0)} orders: a classifier needs both orders and non-orders"
        )
    log.info(
        "training the %s baseline on %s impressions of %s..%s; evaluating on %s",
        config.classifier,
        f"{train_counts.n:,}",
        train_days[0],
        train_days[-1],
        ", ".join(evaluation_days),
    )
    model, feature_stds = fit_baseline(train, config)
    log.info("fitted, %.1f s since the start", time.perf_counter() - started)

    predictions = (
        model.transform(evaluation)
        .withColumn(SCORE, vector_to_array("probability")[1])
        .select(LABEL, SCORE, "probability", "rawPrediction", "prediction", *_assembled_columns())
        .cache()
    )
    evaluation_count = predictions.count()
    metrics = {
        "roc_auc": BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderROC").evaluate(predictions),
        "pr_auc": BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderPR").evaluate(predictions),
        "log_loss": MulticlassClassificationEvaluator(labelCol=LABEL, metricName="logLoss").evaluate(predictions),
    }
    histogram = score_histogram(predictions)
    orders = sum(row[2] for row in histogram)
    if not orders or orders == evaluation_count:
        predictions.unpersist()
        raise BaselineInputError(
            f"the evaluation days {', '.join(evaluation_days)} hold {evaluation_count} impressions with {orders} "
            "orders: ROC and PR AUC need both orders and non-orders (evaluate on more days: --eval-days)"
        )
    roc, pr = curves(histogram)
    summary = EvaluationSummary(
        classifier=CLASSIFIER_NAMES[config.classifier],
        train_days=train_days,
        eval_days=evaluation_days,
        train_impressions=int(train_counts.n),
        eval_impressions=evaluation_count,
        metrics=metrics,
        base_rate=orders / evaluation_count if evaluation_count else float("nan"),
        single_feature_roc_auc=single_feature_roc_auc(predictions),
        feature_importances=feature_importances(model, feature_stds),
        roc=roc,
        pr=pr,
        calibration=calibration(histogram),
        profile=profile_training_data(packed, history_length),
        params={**config.params(), "history_length": str(history_length), "features": ",".join(FEATURES)},
        feature_descriptions=dict(FEATURE_DESCRIPTIONS),
    )
    log.info(
        "evaluation on %s impressions: ROC AUC %.4f, PR AUC %.4f (base rate %.4f), log loss %.4f; %.1f s in all",
        f"{evaluation_count:,}",
        metrics["roc_auc"],
        metrics["pr_auc"],
        summary.base_rate,
        metrics["log_loss"],
        time.perf_counter() - started,
    )
    sample = evaluation.drop(LABEL).limit(5)
    predictions.unpersist()
    return TrainedBaseline(model, summary, sample)


def _history_length(packed: DataFrame) -> int:
    row = packed.select(F.size("actions").alias("n")).first()
    if row is None:
        raise BaselineInputError("the training examples are empty: nothing to train on")
    return int(row.n)
